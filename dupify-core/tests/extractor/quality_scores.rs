//! Image quality scores move the right way on synthetic variants of the committed real
//! photos (`tests/assets/clothing`, 40 CC0 product photos, resized to a 256-px long side):
//! blurred → lower sharpness, darkened → lower brightness, product shifted to a corner or
//! cut off by the frame → lower composition. Masks for composition are composed here (the
//! photo pasted as an elliptical product on a plain canvas), not taken from the segmenter.

use std::path::PathBuf;
use std::sync::OnceLock;

use dupify_core::{quality_score, Mask, QualityScore, WorkingImage};
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

/// The fixture photos, decoded and resized once per test binary.
fn fixtures() -> &'static [(String, RgbImage)] {
    static FIXTURES: OnceLock<Vec<(String, RgbImage)>> = OnceLock::new();
    FIXTURES.get_or_init(load_fixtures)
}

fn load_fixtures() -> Vec<(String, RgbImage)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/assets/clothing");
    let mut paths = Vec::new();
    for cat in std::fs::read_dir(&root).expect("tests/assets/clothing") {
        let cat = cat.unwrap().path();
        if cat.is_dir() {
            for f in std::fs::read_dir(&cat).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "jpg") {
                    paths.push(f);
                }
            }
        }
    }
    paths.sort();
    assert_eq!(paths.len(), 40, "expected the 40 committed fixture photos");
    paths
        .into_iter()
        .map(|p| {
            let img = image::open(&p).unwrap().to_rgb8();
            let (w, h) = img.dimensions();
            let s = 256.0 / w.max(h) as f32;
            let (nw, nh) = (
                ((w as f32 * s).round() as u32).max(1),
                ((h as f32 * s).round() as u32).max(1),
            );
            let name = p.strip_prefix(&root).unwrap().display().to_string();
            (name, imageops::resize(&img, nw, nh, FilterType::Triangle))
        })
        .collect()
}

fn working(img: &RgbImage) -> WorkingImage {
    WorkingImage::new(img.width(), img.height(), img.as_raw().clone(), None).unwrap()
}

fn score(img: &RgbImage, mask: Option<&Mask>) -> QualityScore {
    let q = quality_score(&working(img), mask).unwrap();
    for v in [q.overall, q.sharpness, q.brightness, q.composition] {
        assert!((0.0..=1.0).contains(&v), "{q:?}");
    }
    q
}

#[test]
fn blurred_photos_score_lower_sharpness() {
    let mut drops = Vec::new();
    for (name, img) in fixtures() {
        let orig = score(img, None);
        let mild = score(&imageops::blur(img, 1.0), None);
        let blurred = score(&imageops::blur(img, 2.0), None);
        assert!(
            mild.sharpness < orig.sharpness && blurred.sharpness < mild.sharpness,
            "{name}: {orig:?} vs blurred σ=1 {mild:?}, σ=2 {blurred:?}"
        );
        drops.push(orig.sharpness - blurred.sharpness);
    }
    let mean = drops.iter().sum::<f32>() / drops.len() as f32;
    assert!(mean > 0.2, "mean sharpness drop only {mean}");
}

fn darken(img: &RgbImage, factor: f32) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = (f32::from(*c) * factor).round() as u8;
        }
    }
    out
}

#[test]
fn darkened_photos_score_lower_brightness() {
    for (name, img) in fixtures() {
        let orig = score(img, None);
        let dark = score(&darken(img, 0.4), None);
        assert!(
            dark.brightness < orig.brightness,
            "{name}: {orig:?} vs darkened {dark:?}"
        );
        assert!(dark.overall < orig.overall, "{name}: {orig:?} vs {dark:?}");
        // Darker still is darker still.
        let darker = score(&darken(img, 0.15), None);
        assert!(darker.brightness < dark.brightness, "{name}");
    }
}

/// The photo squeezed into a `size`×`size` ellipse pasted with its top-left corner at
/// `(x0, y0)` (may be negative or overflow: the product is then cut off by the frame) on a
/// 256×256 canvas of the photo's mean border colour; returns the image and the product mask.
fn paste(photo: &RgbImage, size: u32, x0: i64, y0: i64) -> (RgbImage, Mask) {
    let (w, h) = photo.dimensions();
    let border: Vec<&Rgb<u8>> = photo
        .enumerate_pixels()
        .filter(|(x, y, _)| *x == 0 || *y == 0 || *x == w - 1 || *y == h - 1)
        .map(|(_, _, p)| p)
        .collect();
    let mut bg = [0u8; 3];
    for (c, b) in bg.iter_mut().enumerate() {
        *b = (border.iter().map(|p| u32::from(p.0[c])).sum::<u32>() / border.len() as u32) as u8;
    }
    let product = imageops::resize(photo, size, size, FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(256, 256, Rgb(bg));
    let mut mask = vec![0u8; 256 * 256];
    let r = size as f64 / 2.0;
    for (px, py, p) in product.enumerate_pixels() {
        let (dx, dy) = (px as f64 + 0.5 - r, py as f64 + 0.5 - r);
        if dx * dx + dy * dy > r * r {
            continue;
        }
        let (x, y) = (x0 + i64::from(px), y0 + i64::from(py));
        if (0..256).contains(&x) && (0..256).contains(&y) {
            canvas.put_pixel(x as u32, y as u32, *p);
            mask[y as usize * 256 + x as usize] = 255;
        }
    }
    (canvas, Mask::new(256, 256, mask).unwrap())
}

#[test]
fn product_in_a_corner_or_cut_off_scores_lower_composition() {
    for (name, img) in fixtures() {
        let (centred, m_centred) = paste(img, 140, 58, 58);
        let (corner, m_corner) = paste(img, 140, 4, 4);
        let (cut, m_cut) = paste(img, 140, -70, 150);
        let (zoomed, m_zoomed) = paste(img, 330, -37, -37);

        let c = score(&centred, Some(&m_centred));
        assert!(c.composition > 0.95, "{name}: centred {c:?}");
        for (what, v) in [
            ("corner", score(&corner, Some(&m_corner))),
            ("cut off", score(&cut, Some(&m_cut))),
            ("zoomed past the frame", score(&zoomed, Some(&m_zoomed))),
        ] {
            assert!(
                v.composition < c.composition - 0.2,
                "{name} {what}: {v:?} vs centred {c:?}"
            );
        }

        // Without a mask, the gradient-energy fallback sees the same shift.
        let c = score(&centred, None);
        for (what, v) in [
            ("corner", score(&corner, None)),
            ("cut off", score(&cut, None)),
        ] {
            assert!(
                v.composition < c.composition,
                "{name} {what} (no mask): {v:?} vs centred {c:?}"
            );
        }
    }
}

#[test]
fn alpha_plane_stands_in_for_the_mask() {
    let (_, img) = &fixtures()[0];
    let (corner, m) = paste(img, 140, 4, 4);
    let rgba: Vec<u8> = corner
        .pixels()
        .zip(&m.data)
        .flat_map(|(p, &a)| [p.0[0], p.0[1], p.0[2], a])
        .collect();
    let with_alpha = WorkingImage::from_rgba(256, 256, &rgba).unwrap();
    let via_alpha = quality_score(&with_alpha, None).unwrap();
    let via_mask = quality_score(&working(&corner), Some(&m)).unwrap();
    assert_eq!(via_alpha, via_mask);
}

#[test]
fn scores_are_deterministic_and_serialise() {
    let (_, img) = &fixtures()[5];
    let a = score(img, None);
    assert_eq!(a, score(img, None));
    let json = serde_json::to_value(a).unwrap();
    for k in ["overall", "sharpness", "brightness", "composition"] {
        assert!(json[k].is_number(), "{json}");
    }
}
