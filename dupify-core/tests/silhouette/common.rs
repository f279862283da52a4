//! Shared helpers of the silhouette tests: procedurally drawn garment outlines, rasterised
//! with anti-aliasing, and composites onto the committed background patches.
#![allow(dead_code)]

use std::path::PathBuf;

use dupify_core::raster::{Mask, WorkingImage};

/// Garment outlines as polygons in a unit box (x right, y down).
pub fn trouser() -> Vec<(f32, f32)> {
    vec![
        (0.15, 0.0),
        (0.85, 0.0),
        (0.95, 1.0),
        (0.60, 1.0),
        (0.50, 0.33),
        (0.40, 1.0),
        (0.05, 1.0),
    ]
}
pub fn dress() -> Vec<(f32, f32)> {
    vec![
        (0.32, 0.0),
        (0.42, 0.0),
        (0.50, 0.06),
        (0.58, 0.0),
        (0.68, 0.0),
        (0.72, 0.12),
        (0.63, 0.36),
        (1.0, 1.0),
        (0.0, 1.0),
        (0.37, 0.36),
        (0.28, 0.12),
    ]
}
/// A shoe in side view (toe to the right): not mirror-symmetric, so it tests mirroring.
pub fn shoe() -> Vec<(f32, f32)> {
    vec![
        (0.0, 0.95),
        (0.0, 0.35),
        (0.10, 0.0),
        (0.38, 0.0),
        (0.48, 0.35),
        (0.78, 0.50),
        (0.96, 0.64),
        (1.0, 0.85),
        (0.95, 1.0),
        (0.05, 1.0),
    ]
}
pub fn tshirt() -> Vec<(f32, f32)> {
    vec![
        (0.30, 0.0),
        (0.40, 0.06),
        (0.60, 0.06),
        (0.70, 0.0),
        (1.0, 0.16),
        (0.90, 0.40),
        (0.78, 0.33),
        (0.78, 1.0),
        (0.22, 1.0),
        (0.22, 0.33),
        (0.10, 0.40),
        (0.0, 0.16),
    ]
}

/// A named garment outline and its box aspect (width / height).
pub type Garment = (&'static str, Vec<(f32, f32)>, f32);

/// (name, polygon, box width / box height).
pub fn shapes() -> Vec<Garment> {
    vec![
        ("trouser", trouser(), 0.45),
        ("dress", dress(), 0.7),
        ("shoe", shoe(), 2.2),
        ("t-shirt", tshirt(), 1.05),
    ]
}

fn inside(poly: &[(f32, f32)], x: f32, y: f32) -> bool {
    let mut c = false;
    let n = poly.len();
    for i in 0..n {
        let (xi, yi) = poly[i];
        let (xj, yj) = poly[(i + n - 1) % n];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            c = !c;
        }
    }
    c
}

/// Coverage (0..1, 4×4 supersampled) of `poly` placed in the box `(x0, y0, bw, bh)` on a
/// `w × h` canvas, optionally mirrored left-right inside its box.
pub fn coverage(
    poly: &[(f32, f32)],
    w: u32,
    h: u32,
    (x0, y0, bw, bh): (f32, f32, f32, f32),
    mirror: bool,
) -> Vec<f32> {
    let mut out = vec![0f32; (w * h) as usize];
    for py in 0..h {
        for px in 0..w {
            let mut hits = 0;
            for sy in 0..4 {
                for sx in 0..4 {
                    let x = px as f32 + (sx as f32 + 0.5) / 4.0;
                    let y = py as f32 + (sy as f32 + 0.5) / 4.0;
                    let mut u = (x - x0) / bw;
                    let v = (y - y0) / bh;
                    if mirror {
                        u = 1.0 - u;
                    }
                    if (0.0..=1.0).contains(&u) && (0.0..=1.0).contains(&v) && inside(poly, u, v) {
                        hits += 1;
                    }
                }
            }
            out[(py * w + px) as usize] = hits as f32 / 16.0;
        }
    }
    out
}

/// A binary mask (coverage ≥ 0.5).
pub fn mask_from(cov: &[f32], w: u32, h: u32) -> Mask {
    Mask::new(
        w,
        h,
        cov.iter()
            .map(|&c| if c >= 0.5 { 255 } else { 0 })
            .collect(),
    )
    .expect("mask size")
}

pub fn assets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/assets")
}

pub const BACKGROUNDS: [&str; 6] = [
    "light_wood",
    "knit_beige",
    "dark_wood",
    "terrazzo",
    "wall",
    "quilt",
];

/// A `w × h` canvas filled by mirror-tiling a committed background patch.
pub fn background(name: &str, w: u32, h: u32) -> Vec<u8> {
    let path = assets().join(format!("backgrounds/{name}.jpg"));
    let patch = image::open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
        .to_rgb8();
    let (pw, ph) = patch.dimensions();
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        let ty = y % (2 * ph);
        let sy = if ty < ph { ty } else { 2 * ph - 1 - ty };
        for x in 0..w {
            let tx = x % (2 * pw);
            let sx = if tx < pw { tx } else { 2 * pw - 1 - tx };
            out.extend_from_slice(&patch.get_pixel(sx, sy).0);
        }
    }
    out
}

#[path = "../common/rng.rs"]
mod rng;

/// The tests' one deterministic PRNG (xorshift), for textures.
pub use rng::XorShift as Rng;

/// Composites a garment of `colour` (with stripes and grain) onto `bg`, casting a soft
/// shadow down-right as on a floor shot with a phone. Returns the image and the true mask.
pub fn composite(
    bg: &[u8],
    w: u32,
    h: u32,
    poly: &[(f32, f32)],
    rect: (f32, f32, f32, f32),
    colour: [u8; 3],
    seed: u64,
) -> (WorkingImage, Mask) {
    let cov = coverage(poly, w, h, rect, false);
    let shadow = coverage(
        poly,
        w,
        h,
        (rect.0 + 4.0, rect.1 + 5.0, rect.2, rect.3),
        false,
    );
    let mut rng = Rng(seed | 1);
    let mut rgb = bg.to_vec();
    for i in 0..(w * h) as usize {
        let y = i as u32 / w;
        let shade = 1.0 - 0.3 * shadow[i];
        let stripe = if (y / 6).is_multiple_of(2) { 1.0 } else { 0.85 };
        let grain = 0.92 + 0.16 * rng.unif24();
        for c in 0..3 {
            let b = bg[i * 3 + c] as f32 * shade;
            let f = (colour[c] as f32 * stripe * grain).min(255.0);
            rgb[i * 3 + c] = (b * (1.0 - cov[i]) + f * cov[i]).round() as u8;
        }
    }
    (
        WorkingImage::new(w, h, rgb, None).expect("image"),
        mask_from(&cov, w, h),
    )
}

/// Intersection over union of the foreground (≥ 128) of two equal-size masks.
pub fn iou(a: &Mask, b: &Mask) -> f32 {
    assert_eq!((a.width, a.height), (b.width, b.height));
    let (mut inter, mut uni) = (0usize, 0usize);
    for (x, y) in a.data.iter().zip(&b.data) {
        let (x, y) = (*x >= 128, *y >= 128);
        inter += (x && y) as usize;
        uni += (x || y) as usize;
    }
    inter as f32 / uni.max(1) as f32
}

/// Decodes a photo and resizes it to a long side of 256 px (bilinear).
pub fn working_image_from_file(path: &std::path::Path) -> WorkingImage {
    use fast_image_resize::images::Image;
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
    let rgb = image::open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
        .to_rgb8();
    let (w, h) = rgb.dimensions();
    let s = 256.0 / w.max(h) as f32;
    let (nw, nh) = ((w as f32 * s).round() as u32, (h as f32 * s).round() as u32);
    let src = Image::from_vec_u8(w, h, rgb.into_raw(), PixelType::U8x3).expect("src");
    let mut dst = Image::new(nw, nh, PixelType::U8x3);
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        )
        .expect("resize");
    WorkingImage::new(nw, nh, dst.into_vec(), None).expect("working image")
}
