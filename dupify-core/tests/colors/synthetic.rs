//! Dominant colours on synthetic scenes with known colours and shares.
//!
//! Expected colours are the sRGB values the scenes are painted with; shares are the painted
//! pixel counts. Recovered colours must be within ΔE2000 < 2 and shares within ±2 points.

use crate::common::{render, Lcg};
use dupify_core::colors::{
    delta_e2000, extract_colors, palette_distance, srgb_to_lab, ColorFamily, ColorOptions,
    ColorReport, DominantColor, ForegroundSource,
};
use dupify_core::{Mask, WorkingImage};

const WALL: [u8; 3] = [244, 242, 238];
const RED: [u8; 3] = [190, 30, 45];
const BLUE: [u8; 3] = [30, 60, 160];
const GREEN: [u8; 3] = [40, 130, 70];

fn assert_color(c: &DominantColor, rgb: [u8; 3], share: f32) {
    let de = delta_e2000(c.lab, srgb_to_lab(rgb));
    assert!(de < 2.0, "{c:?}: ΔE2000 {de} from {rgb:?}");
    assert!(
        (c.share - share).abs() <= 2.0,
        "{c:?}: share {} vs {share}",
        c.share
    );
    assert_eq!(
        c.hex,
        format!("#{:02x}{:02x}{:02x}", c.rgb[0], c.rgb[1], c.rgb[2])
    );
}

/// A 160×128 two-colour garment (70% red over 30% blue) on a wall, 256×192 frame.
fn two_tone(amp: i32) -> WorkingImage {
    render(256, 192, amp, |x, y| {
        if (48..208).contains(&x) && (32..160).contains(&y) {
            // rows 32..121.6 red: 90 of 128 rows ≈ 70.3%
            if y < 122 {
                RED
            } else {
                BLUE
            }
        } else {
            WALL
        }
    })
}

#[test]
fn border_model_recovers_colours_and_shares_and_ignores_the_wall() {
    let img = two_tone(4);
    let r = extract_colors(&img, None, &ColorOptions::default()).unwrap();
    assert_eq!(r.foreground, ForegroundSource::BorderModel);
    assert_eq!(r.colors.len(), 2, "{:#?}", r.colors);
    assert_color(&r.colors[0], RED, 90.0 / 128.0 * 100.0);
    assert_color(&r.colors[1], BLUE, 38.0 / 128.0 * 100.0);
    assert_eq!(r.colors[0].family, ColorFamily::Red);
    assert_eq!(r.colors[1].family, ColorFamily::Blue);
    assert_eq!(r.family, Some(ColorFamily::Red));
    let truth = 160.0 * 128.0 / (256.0 * 192.0);
    assert!(
        (r.product_fraction - truth).abs() < 0.01,
        "{}",
        r.product_fraction
    );
    assert_eq!(r.background.len(), 1, "{:#?}", r.background);
    assert_color(&r.background[0], WALL, 100.0);
    assert_eq!(r.background[0].family, ColorFamily::White);
}

#[test]
fn mask_selects_the_product_over_a_busy_background() {
    // Background: loud stripes in the garment's own colours; only the mask can tell.
    let (w, h) = (200u32, 200u32);
    let inside = |x: u32, y: u32| {
        let (dx, dy) = (x as i32 - 100, y as i32 - 100);
        dx * dx + dy * dy < 70 * 70
    };
    let img = render(w, h, 3, |x, y| {
        if inside(x, y) {
            match x {
                0..=79 => GREEN,
                80..=119 => RED,
                _ => BLUE,
            }
        } else if (x / 10) % 2 == 0 {
            RED
        } else {
            [250, 220, 0]
        }
    });
    let mut data = vec![0u8; (w * h) as usize];
    let mut counts = [0f32; 3];
    for y in 0..h {
        for x in 0..w {
            if inside(x, y) {
                data[(y * w + x) as usize] = 255;
                counts[match x {
                    0..=79 => 0,
                    80..=119 => 1,
                    _ => 2,
                }] += 1.0;
            }
        }
    }
    let total: f32 = counts.iter().sum();
    let mask = Mask::new(w, h, data).unwrap();
    let r = extract_colors(&img, Some(&mask), &ColorOptions::default()).unwrap();
    assert_eq!(r.foreground, ForegroundSource::Mask);
    assert_eq!(r.colors.len(), 3, "{:#?}", r.colors);
    let want = [
        (GREEN, counts[0] / total * 100.0),
        (BLUE, counts[2] / total * 100.0),
        (RED, counts[1] / total * 100.0),
    ];
    let mut want = want.to_vec();
    want.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (c, (rgb, share)) in r.colors.iter().zip(want) {
        assert_color(c, rgb, share);
    }
    assert!((r.product_fraction - total / (w * h) as f32).abs() < 1e-6);
    // The stripes are the background colours.
    assert!(r
        .background
        .iter()
        .any(|c| delta_e2000(c.lab, srgb_to_lab([250, 220, 0])) < 2.0));
}

#[test]
fn transparent_pixels_are_background_whatever_their_rgb() {
    let (w, h) = (100u32, 80u32);
    let mut rgba = Vec::new();
    for y in 0..h {
        for x in 0..w {
            if (20..80).contains(&x) && (10..70).contains(&y) {
                rgba.extend_from_slice(&[BLUE[0], BLUE[1], BLUE[2], 255]);
            } else {
                rgba.extend_from_slice(&[0, 0, 0, 0]); // transparent black
            }
        }
    }
    let img = WorkingImage::from_rgba(w, h, &rgba).unwrap();
    let r = extract_colors(&img, None, &ColorOptions::default()).unwrap();
    assert_eq!(r.foreground, ForegroundSource::Alpha);
    assert_eq!(r.colors.len(), 1);
    assert_color(&r.colors[0], BLUE, 100.0);
    assert!(r.background.is_empty());
    assert!((r.product_fraction - 0.45).abs() < 1e-6);
}

#[test]
fn plain_image_reports_its_one_colour() {
    let c = [128, 40, 150];
    let img = render(64, 48, 2, |_, _| c);
    let r = extract_colors(&img, None, &ColorOptions::default()).unwrap();
    assert_eq!(r.foreground, ForegroundSource::WholeImage);
    assert_eq!(r.colors.len(), 1);
    assert_color(&r.colors[0], c, 100.0);
    assert_eq!(r.product_fraction, 1.0);
    assert!(r.background.is_empty());
    assert_eq!(r.family, Some(ColorFamily::Purple));
}

#[test]
fn fully_transparent_and_one_pixel_images_do_not_fail() {
    let img = WorkingImage::from_rgba(3, 2, &[9u8; 24].map(|_| 0)).unwrap();
    let r = extract_colors(&img, None, &ColorOptions::default()).unwrap();
    assert!(r.colors.is_empty() && r.background.is_empty());
    assert_eq!((r.product_fraction, r.family), (0.0, None));

    let img = WorkingImage::new(1, 1, vec![10, 200, 30], None).unwrap();
    let r = extract_colors(&img, None, &ColorOptions::default()).unwrap();
    assert_eq!(r.colors.len(), 1);
    assert_eq!(r.colors[0].rgb, [10, 200, 30]);
}

#[test]
fn exclusion_off_counts_the_wall() {
    let img = two_tone(0);
    let opts = ColorOptions::default().with_exclude_background(false);
    let r = extract_colors(&img, None, &opts).unwrap();
    assert_eq!(r.foreground, ForegroundSource::WholeImage);
    let wall_share = 100.0 * (1.0 - 160.0 * 128.0 / (256.0 * 192.0));
    assert_color(&r.colors[0], WALL, wall_share);
    assert!(r.background.is_empty());
}

#[test]
fn min_share_and_num_colors_limit_the_output() {
    // 94% green, 6% red patch, on the wall.
    let img = render(200, 200, 0, |x, y| {
        if (50..150).contains(&x) && (50..150).contains(&y) {
            if x < 56 {
                RED
            } else {
                GREEN
            }
        } else {
            WALL
        }
    });
    let r = extract_colors(&img, None, &ColorOptions::default()).unwrap();
    assert_eq!(r.colors.len(), 2);
    assert_color(&r.colors[0], GREEN, 94.0);
    assert_color(&r.colors[1], RED, 6.0);
    let r = extract_colors(&img, None, &ColorOptions::default().with_min_share(10.0)).unwrap();
    assert_eq!(r.colors.len(), 1);
    let r = extract_colors(&img, None, &ColorOptions::default().with_num_colors(1)).unwrap();
    assert_eq!(r.colors.len(), 1);
    assert_eq!(r.colors[0].family, ColorFamily::Green);
}

#[test]
fn half_and_half_product_is_multicolour() {
    let img = render(200, 200, 0, |x, y| {
        if (40..160).contains(&x) && (40..160).contains(&y) {
            // Three equal vertical blocks: black, white, green.
            match x {
                40..=79 => [20, 20, 24],
                80..=119 => [250, 250, 250],
                _ => GREEN,
            }
        } else {
            [150, 150, 155]
        }
    });
    let r = extract_colors(&img, None, &ColorOptions::default()).unwrap();
    assert_eq!(r.colors.len(), 3, "{:#?}", r.colors);
    assert_eq!(r.family, Some(ColorFamily::Multicolour));
}

#[test]
fn separate_skin_region_is_removed_only_when_asked() {
    let skin = [224, 172, 140];
    // A navy dress with bare arms and a face.
    let img = render(200, 240, 2, |x, y| {
        let dress = (60..140).contains(&x) && (60..220).contains(&y);
        let arms = ((40..60).contains(&x) || (140..160).contains(&x)) && (60..140).contains(&y);
        let face = (85..115).contains(&x) && (20..60).contains(&y);
        if dress {
            [28, 36, 84]
        } else if arms || face {
            skin
        } else {
            WALL
        }
    });
    let r = extract_colors(&img, None, &ColorOptions::default()).unwrap();
    assert_eq!(r.colors.len(), 1, "{:#?}", r.colors);
    assert_color(&r.colors[0], [28, 36, 84], 100.0);
    assert!(
        r.skin_share > 10.0 && r.skin_share < 25.0,
        "{}",
        r.skin_share
    );
    assert_eq!(r.family, Some(ColorFamily::Navy));
    let r = extract_colors(
        &img,
        None,
        &ColorOptions::default().with_suppress_skin(false),
    )
    .unwrap();
    assert_eq!(r.colors.len(), 2);
    assert!(delta_e2000(r.colors[1].lab, srgb_to_lab(skin)) < 2.0);
    assert_eq!(r.skin_share, 0.0);
}

#[test]
fn a_beige_garment_is_not_taken_for_skin() {
    let beige = [224, 172, 140];
    let img = render(200, 200, 2, |x, y| {
        if (40..160).contains(&x) && (40..160).contains(&y) {
            beige
        } else {
            [40, 40, 45]
        }
    });
    let r = extract_colors(&img, None, &ColorOptions::default()).unwrap();
    assert_color(&r.colors[0], beige, 100.0);
    assert_eq!(r.skin_share, 0.0);
}

#[test]
fn same_input_gives_identical_output() {
    let img = two_tone(6);
    let a = extract_colors(&img, None, &ColorOptions::default()).unwrap();
    let b = extract_colors(&img.clone(), None, &ColorOptions::default()).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    let back: ColorReport = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
    assert_eq!(back, a);
}

#[test]
fn bad_options_and_mismatched_masks_are_typed_errors() {
    let img = two_tone(0);
    let bad = [
        ColorOptions::default().with_num_colors(0),
        ColorOptions::default().with_num_colors(17),
        ColorOptions::default().with_min_share(-1.0),
        ColorOptions::default().with_min_share(101.0),
        ColorOptions::default().with_min_share(f32::NAN),
        ColorOptions::default().with_merge_delta_e(60.0),
        ColorOptions::default().with_merge_delta_e(f32::NAN),
        ColorOptions::default().with_num_background_colors(17),
    ];
    for o in bad {
        let e = extract_colors(&img, None, &o).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter", "{o:?}");
        assert_eq!(e.http_status(), 400);
    }
    let mask = Mask::new(10, 10, vec![255; 100]).unwrap();
    let e = extract_colors(&img, Some(&mask), &ColorOptions::default()).unwrap_err();
    assert_eq!(e.code(), "invalid_parameter");
    assert!(e.to_string().contains("mask"));
}

#[test]
fn an_empty_mask_falls_back_to_the_border_model() {
    let img = two_tone(2);
    let mask = Mask::new(256, 192, vec![0; 256 * 192]).unwrap();
    let r = extract_colors(&img, Some(&mask), &ColorOptions::default()).unwrap();
    assert_eq!(r.foreground, ForegroundSource::BorderModel);
    assert_color(&r.colors[0], RED, 90.0 / 128.0 * 100.0);
}

#[test]
fn random_images_never_fail() {
    let mut rng = Lcg(99);
    for _ in 0..30 {
        let w = 1 + rng.next() % 40;
        let h = 1 + rng.next() % 40;
        let rgb: Vec<u8> = (0..w * h * 3).map(|_| rng.next() as u8).collect();
        let alpha = rng
            .next()
            .is_multiple_of(2)
            .then(|| (0..w * h).map(|_| rng.next() as u8).collect::<Vec<u8>>());
        let img = WorkingImage::new(w, h, rgb, alpha).unwrap();
        let mdata: Vec<u8> = (0..w * h).map(|_| rng.next() as u8).collect();
        let mask = Mask::new(w, h, mdata).unwrap();
        for m in [None, Some(&mask)] {
            let r = extract_colors(&img, m, &ColorOptions::default()).unwrap();
            let sum: f32 = r.colors.iter().map(|c| c.share).sum();
            assert!(sum <= 100.0 + 1e-3);
            assert!(r.colors.windows(2).all(|p| p[0].share >= p[1].share));
            assert!((0.0..=1.0).contains(&r.product_fraction));
        }
    }
}

fn pal(cs: &[([u8; 3], f32)]) -> Vec<DominantColor> {
    cs.iter()
        .map(|&(rgb, s)| DominantColor::from_lab(srgb_to_lab(rgb), s))
        .collect()
}

#[test]
fn palette_distance_behaves_like_a_metric_on_test_palettes() {
    let navy_white = pal(&[([20, 30, 80], 70.0), ([245, 245, 245], 30.0)]);
    let navy_white_2 = pal(&[([24, 34, 86], 68.0), ([240, 240, 240], 32.0)]);
    let white_navy = pal(&[([20, 30, 80], 30.0), ([245, 245, 245], 70.0)]);
    let red = pal(&[([200, 20, 30], 100.0)]);
    let red_green = pal(&[([200, 20, 30], 50.0), ([30, 140, 60], 50.0)]);
    let all = [&navy_white, &navy_white_2, &white_navy, &red, &red_green];
    for a in all {
        assert_eq!(palette_distance(a, a), 0.0);
        for b in all {
            let d = palette_distance(a, b);
            assert_eq!(d, palette_distance(b, a), "symmetry");
            assert!(d >= 0.0);
            if !std::ptr::eq(a, b) {
                assert!(d > 0.0);
            }
            for c in all {
                assert!(
                    palette_distance(a, c) <= d + palette_distance(b, c) + 1e-3,
                    "triangle"
                );
            }
        }
    }
    // Same colours, similar shares: close; shares swapped: farther; different hues: far.
    let near = palette_distance(&navy_white, &navy_white_2);
    let swapped = palette_distance(&navy_white, &white_navy);
    let far = palette_distance(&navy_white, &red);
    assert!(near < 3.0, "{near}");
    assert!(swapped > 3.0 * near, "{swapped} vs {near}");
    assert!(far > swapped && far > 20.0, "{far}");
    // Scale of shares does not matter (palettes are normalised).
    let halved = pal(&[([20, 30, 80], 35.0), ([245, 245, 245], 15.0)]);
    assert!(palette_distance(&navy_white, &halved) < 1e-4);
    // Moving one whole colour costs its ΔE2000.
    let r2 = pal(&[([190, 20, 30], 100.0)]);
    let de = delta_e2000(red[0].lab, r2[0].lab);
    assert!((palette_distance(&red, &r2) - de).abs() < 1e-4);
    assert_eq!(palette_distance::<DominantColor>(&[], &[]), 0.0);
    assert_eq!(palette_distance(&red, &[]), 100.0);
}
