//! Helpers shared by the colour tests: synthetic scenes and fixture loading.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dupify_core::WorkingImage;

/// Deterministic noise source (a 64-bit LCG), so synthetic images are identical on every run.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    /// Uniform integer in -amp..=amp (symmetric, so the mean colour is unchanged).
    pub fn jitter(&mut self, amp: i32) -> i32 {
        if amp == 0 {
            return 0;
        }
        (self.next() % (2 * amp as u32 + 1)) as i32 - amp
    }
}

pub fn add(c: [u8; 3], d: [i32; 3]) -> [u8; 3] {
    [
        (c[0] as i32 + d[0]).clamp(0, 255) as u8,
        (c[1] as i32 + d[1]).clamp(0, 255) as u8,
        (c[2] as i32 + d[2]).clamp(0, 255) as u8,
    ]
}

/// Renders `f(x, y)` with per-channel uniform noise of ±`amp`.
pub fn render(w: u32, h: u32, amp: i32, f: impl Fn(u32, u32) -> [u8; 3]) -> WorkingImage {
    let mut rng = Lcg(0x5eed);
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let d = [rng.jitter(amp), rng.jitter(amp), rng.jitter(amp)];
            rgb.extend_from_slice(&add(f(x, y), d));
        }
    }
    WorkingImage::new(w, h, rgb, None).expect("valid synthetic image")
}

pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets")
}

/// Decodes a fixture and resizes it to long side 256 (what the input stage produces).
pub fn working_image(path: &Path) -> WorkingImage {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("cannot decode {}: {e}", path.display()))
        .to_rgb8();
    let (w, h) = img.dimensions();
    let s = 256.0 / w.max(h) as f32;
    let (nw, nh) = (
        ((w as f32 * s).round() as u32).max(1),
        ((h as f32 * s).round() as u32).max(1),
    );
    let small = image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle);
    WorkingImage::new(nw, nh, small.into_raw(), None).expect("valid working image")
}

/// The 40 committed clothing photos, sorted.
pub fn clothing_photos() -> Vec<PathBuf> {
    let root = assets().join("clothing");
    let mut out = Vec::new();
    for cat in std::fs::read_dir(&root).expect("tests/assets/clothing exists") {
        let cat = cat.expect("dir entry").path();
        if cat.is_dir() {
            for f in std::fs::read_dir(&cat).expect("category dir") {
                let f = f.expect("dir entry").path();
                if f.extension().is_some_and(|e| e == "jpg") {
                    out.push(f);
                }
            }
        }
    }
    out.sort();
    assert_eq!(out.len(), 40, "expected the 40 committed clothing fixtures");
    out
}
