//! CLIP preprocessing parity with Hugging Face.
//!
//! Reference tensors come from `weights/gen_preprocess_reference.py` (run by
//! `scripts/setup.sh` → `weights/setup_weights.sh`), which runs transformers 5.24's PIL-backed
//! `CLIPImageProcessorPil` (the original CLIPImageProcessor implementation; the class named
//! `CLIPImageProcessor` is torchvision-backed since 5.x) on the committed photos. Our code
//! decodes the same files and must match within a mean |diff| ≤ 0.01 and a 99th percentile
//! ≤ 0.05 in normalised units, per image, on every photo (40 real photos + 5 fixtures).

use std::path::PathBuf;

use dupify_core::input::{decode, ClipPreprocess, ImageInput, InputLimits};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifest() -> serde_json::Value {
    let p = root().join("../weights/test/preprocess/manifest.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "missing reference tensors {} ({e}): run scripts/setup.sh (or weights/setup_weights.sh)",
            p.display()
        )
    });
    serde_json::from_str(&text).expect("manifest.json parses")
}

#[test]
fn center_crop_matches_clip_image_processor_on_real_photos() {
    let m = manifest();
    assert_eq!(
        m["processor"], "CLIPImageProcessorPil",
        "reference must be the PIL backend"
    );
    assert_eq!(m["size"], 224);
    let pre = ClipPreprocess::default();
    for (c, (mean, std)) in pre.mean.iter().zip(pre.std).enumerate() {
        assert!((m["mean"][c].as_f64().unwrap() as f32 - mean).abs() < 1e-7);
        assert!((m["std"][c].as_f64().unwrap() as f32 - std).abs() < 1e-7);
    }
    let entries = m["entries"].as_array().expect("entries");
    let photos = entries
        .iter()
        .filter(|e| e["image"].as_str().unwrap().starts_with("clothing/"))
        .count();
    assert!(
        photos >= 20,
        "need at least 20 real photos, manifest has {photos}"
    );

    let assets = root().join("tests/assets");
    let mut worst_mean = 0.0f64;
    let mut worst_p99 = 0.0f32;
    for e in entries {
        let image = e["image"].as_str().unwrap();
        let bytes = std::fs::read(assets.join(image)).unwrap();
        let sha = e["source_sha256"].as_str().unwrap();
        assert_eq!(
            sha256_hex(&bytes),
            sha,
            "{image} changed since the reference was generated: run weights/setup_weights.sh"
        );
        let raw = std::fs::read(
            root()
                .join("../weights/test/preprocess")
                .join(e["tensor"].as_str().unwrap()),
        )
        .unwrap();
        let want: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(want.len(), 3 * 224 * 224, "{image}");

        let img = decode(&ImageInput::Bytes(bytes), &InputLimits::default()).unwrap();
        let got = pre.preprocess(&img).unwrap();
        let mut diffs: Vec<f32> = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).collect();
        let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
        diffs.sort_by(f32::total_cmp);
        let p99 = diffs[(diffs.len() as f64 * 0.99) as usize];
        assert!(mean <= 0.01, "{image}: mean |diff| {mean:.5} > 0.01");
        assert!(p99 <= 0.05, "{image}: p99 |diff| {p99:.5} > 0.05");
        worst_mean = worst_mean.max(mean);
        worst_p99 = worst_p99.max(p99);
    }
    eprintln!(
        "parity over {} images: worst mean {worst_mean:.5}, worst p99 {worst_p99:.5}",
        entries.len()
    );
}

/// SHA-256 of the fixture bytes, to tie reference tensors to the exact files.
fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
