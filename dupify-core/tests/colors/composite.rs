//! A garment of known colour composited onto real floor/wall/sheet textures cropped from the
//! clothing photos (`tests/assets/colors/*.png`, made by `make_textures.py` there): the
//! garment's colour, not the floor's, must come first, within ΔE2000 < 2.

use crate::common::{add, assets, Lcg};
use dupify_core::colors::{
    delta_e2000, extract_colors, srgb_to_lab, ColorOptions, ForegroundSource,
};
use dupify_core::WorkingImage;

const TEXTURES: [&str; 6] = [
    "carpet_brown",
    "wood_floor_a",
    "wood_floor_b",
    "tile_floor",
    "bedspread_beige",
    "white_sheet",
];

const GARMENTS: [(&str, [u8; 3]); 4] = [
    ("navy", [28, 36, 84]),
    ("red", [178, 34, 52]),
    ("green", [46, 120, 72]),
    ("black", [30, 30, 32]),
];

/// A t-shirt silhouette (body + sleeves) in a 256×192 frame.
fn in_tshirt(x: u32, y: u32) -> bool {
    let body = (88..168).contains(&x) && (40..176).contains(&y);
    // Sleeves: slanted bands from the shoulders.
    let sleeve_l = (48..88).contains(&x) && y >= 40 + (88 - x) / 3 && y < 84 + (88 - x) / 3;
    let sleeve_r = (168..208).contains(&x) && y >= 40 + (x - 167) / 3 && y < 84 + (x - 167) / 3;
    let neck = (112..144).contains(&x) && y < 52;
    (body || sleeve_l || sleeve_r) && !neck
}

fn texture(name: &str) -> image::RgbImage {
    let p = assets().join("colors").join(format!("{name}.png"));
    image::open(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .to_rgb8()
}

/// Mirror-tiles the texture over the frame and paints the garment with ±6 noise on top.
fn composite(tex: &image::RgbImage, garment: [u8; 3]) -> (WorkingImage, f32) {
    let (w, h) = (256u32, 192u32);
    let (tw, th) = tex.dimensions();
    let mirror = |v: u32, n: u32| {
        let p = v % (2 * n);
        if p < n {
            p
        } else {
            2 * n - 1 - p
        }
    };
    let mut rng = Lcg(7);
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    let mut inside = 0u32;
    for y in 0..h {
        for x in 0..w {
            if in_tshirt(x, y) {
                inside += 1;
                let d = [rng.jitter(6), rng.jitter(6), rng.jitter(6)];
                rgb.extend_from_slice(&add(garment, d));
            } else {
                rgb.extend_from_slice(&tex.get_pixel(mirror(x, tw), mirror(y, th)).0);
            }
        }
    }
    let img = WorkingImage::new(w, h, rgb, None).unwrap();
    (img, inside as f32 / (w * h) as f32)
}

#[test]
fn garment_colour_comes_first_on_every_real_texture() {
    for t in TEXTURES {
        let tex = texture(t);
        for (g, rgb) in GARMENTS {
            let (img, truth) = composite(&tex, rgb);
            let r = extract_colors(&img, None, &ColorOptions::default()).unwrap();
            let ctx = format!("{g} on {t}: {r:#?}");
            assert_eq!(r.foreground, ForegroundSource::BorderModel, "{ctx}");
            let first = &r.colors[0];
            let de = delta_e2000(first.lab, srgb_to_lab(rgb));
            assert!(de < 2.0, "ΔE2000 {de}; {ctx}");
            assert!(first.share > 90.0, "{ctx}");
            assert!((r.product_fraction - truth).abs() < 0.03, "{ctx}");
            // The floor is reported as background, and it is not the garment.
            assert!(!r.background.is_empty(), "{ctx}");
            assert!(
                delta_e2000(r.background[0].lab, srgb_to_lab(rgb)) > 10.0,
                "{ctx}"
            );
        }
    }
}

#[test]
fn without_exclusion_the_floor_can_win_which_is_why_exclusion_is_on() {
    // Control: the t-shirt covers ~40% of the frame, so with background exclusion off the
    // texture's colours must show up among the reported colours.
    let tex = texture("wood_floor_b");
    let (img, truth) = composite(&tex, [28, 36, 84]);
    assert!(truth < 0.5);
    let opts = ColorOptions::default().with_exclude_background(false);
    let r = extract_colors(&img, None, &opts).unwrap();
    let navy_share: f32 = r
        .colors
        .iter()
        .filter(|c| delta_e2000(c.lab, srgb_to_lab([28, 36, 84])) < 5.0)
        .map(|c| c.share)
        .sum();
    assert!(navy_share < 50.0, "{r:#?}");
}
