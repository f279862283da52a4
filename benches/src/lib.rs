//! Shared fixtures for the Dupify benchmarks.

use std::path::{Path, PathBuf};

use dupify_core::input::{decode_bytes, InputLimits, DEFAULT_WORKING_SIDE};
use dupify_core::WorkingImage;

/// The committed clothing photos (`dupify-core/tests/assets/clothing/<category>/*.jpg`),
/// sorted.
pub fn fixture_photo_paths() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dupify-core/tests/assets/clothing");
    let mut paths = Vec::new();
    for cat in std::fs::read_dir(&root).expect("clothing fixtures") {
        let cat = cat.expect("entry").path();
        if cat.is_dir() {
            for f in std::fs::read_dir(&cat).expect("category") {
                let f = f.expect("entry").path();
                if f.extension().is_some_and(|e| e == "jpg") {
                    paths.push(f);
                }
            }
        }
    }
    paths.sort();
    paths
}

/// The fixture photos as working images, made the way the extractor makes them (decode, then
/// resize to the default working side).
pub fn fixture_working_images() -> Vec<WorkingImage> {
    fixture_photo_paths()
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).expect("readable fixture");
            decode_bytes(&bytes, &InputLimits::default())
                .and_then(|d| d.working(DEFAULT_WORKING_SIDE))
                .expect("fixture decodes")
        })
        .collect()
}
