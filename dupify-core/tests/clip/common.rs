//! Shared by the CLIP integration tests: the seeded checkpoints and the reference outputs
//! `weights/gen_clip.py` (and, for int8, `weights/gen_quant_reference.py`) wrote beside them.
// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::Tensor;

/// `weights/test/clip/<name>`, checked to hold every file of `needs`: the tests fail, never
/// skip, when the generated assets are missing.
pub fn model_dir(name: &str, needs: &[&str]) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../weights/test/clip")
        .join(name);
    for f in needs {
        assert!(
            d.join(f).is_file(),
            "missing {}: run scripts/setup.sh (it runs weights/gen_*.py) first",
            d.join(f).display()
        );
    }
    d
}

/// The tensors of a safetensors file by name.
pub fn tensors(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A `[N, D]` tensor as N rows.
pub fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    let (n, d) = t.size2().unwrap();
    let flat = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
    assert_eq!(flat.len() as i64, n * d);
    flat.chunks(d as usize).map(|c| c.to_vec()).collect()
}

/// transformers' fp32 outputs on the fixture photos and texts (`reference.safetensors` and
/// `reference.json`).
pub struct Reference {
    /// `CLIPImageProcessor` output, `[n_images, 3, S, S]` flattened.
    pub pixels: Vec<f32>,
    pub n_images: usize,
    pub image_embeds: Vec<Vec<f32>>,
    pub input_ids: Vec<Vec<u32>>,
    pub text_embeds: Vec<Vec<f32>>,
    pub logit_scale: f32,
    pub texts: Vec<String>,
}

pub fn reference(dir: &Path) -> Reference {
    let m = tensors(&dir.join("reference.safetensors"));
    let px = &m["pixel_values"];
    let ids = &m["input_ids"];
    let (_, ctx) = ids.size2().unwrap();
    let meta = json(&dir.join("reference.json"));
    Reference {
        n_images: px.size()[0] as usize,
        pixels: Vec::<f32>::try_from(px.flatten(0, -1)).unwrap(),
        image_embeds: rows(&m["image_embeds"]),
        input_ids: Vec::<i64>::try_from(ids.flatten(0, -1))
            .unwrap()
            .chunks(ctx as usize)
            .map(|r| r.iter().map(|&x| x as u32).collect())
            .collect(),
        text_embeds: rows(&m["text_embeds"]),
        logit_scale: m["logit_scale"].double_value(&[0]) as f32,
        texts: meta["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect(),
    }
}

/// Cosine similarity, accumulated in f64.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
