//! Attribute heads: probabilities, determinism, the hash-tied zero-shot cache, applicability
//! gating, and trained linear heads surviving a save/load round trip.
//!
//! These tests use `HashEncoder`, a deterministic stand-in for the CLIP text tower that maps
//! each prompt to a pseudo-random unit vector seeded by the prompt's SHA-256. Its "semantics"
//! are meaningless on purpose: it exercises the cache, hash, gating and probability logic
//! only. Tests of the heads against the real (seeded) CLIP test model are added when the
//! CLIP model implements `TextEncoder`.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;

use dupify_core::attributes::taxonomy::{self, Attribute, CategoryGroup};
use dupify_core::attributes::{
    evaluate_linear_head, split_holdout, train_linear_head, AttributePredictor, CacheStatus,
    CategorySource, HeadKind, LinearHead, TextEncoder, TrainOptions, ZeroShotHeads,
};
use dupify_core::Result;
use sha2::{Digest, Sha256};

struct HashEncoder {
    hash: String,
    dim: usize,
    scale: f32,
    calls: Cell<usize>,
}

impl HashEncoder {
    fn new(hash: &str) -> Self {
        Self {
            hash: hash.to_string(),
            dim: 64,
            scale: 100.0,
            calls: Cell::new(0),
        }
    }
}

/// SplitMix64 stream → uniform values in [-1, 1).
fn seeded_vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut s = seed;
    (0..dim)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
        })
        .collect()
}

impl TextEncoder for HashEncoder {
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.calls.set(self.calls.get() + 1);
        Ok(texts
            .iter()
            .map(|t| {
                let mut h = Sha256::new();
                h.update(self.hash.as_bytes());
                h.update(t.as_bytes());
                let d = h.finalize();
                let seed = u64::from_le_bytes(d[..8].try_into().unwrap());
                seeded_vector(seed, self.dim)
            })
            .collect())
    }
    fn model_hash(&self) -> String {
        self.hash.clone()
    }
    fn logit_scale(&self) -> f32 {
        self.scale
    }
    fn embed_dim(&self) -> usize {
        self.dim
    }
}

fn image_embeddings(n: usize, dim: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|i| seeded_vector(1000 + i as u64, dim))
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

#[test]
fn zero_shot_probabilities_sum_to_one_and_are_deterministic() {
    let enc = HashEncoder::new("model-a");
    let heads = ZeroShotHeads::build(&enc).unwrap();
    assert_eq!(
        heads,
        ZeroShotHeads::build(&enc).unwrap(),
        "build is deterministic"
    );
    for e in image_embeddings(5, 64) {
        for a in Attribute::ALL {
            let p = heads.predict(a, &e).unwrap();
            let sum: f32 = p.distribution.iter().map(|s| s.probability).sum();
            assert!((sum - 1.0).abs() < 1e-5, "{} sums to {sum}", a.name());
            assert!(p
                .distribution
                .iter()
                .all(|s| (0.0..=1.0).contains(&s.probability)));
            assert_eq!(p.distribution.len(), a.def().labels().len());
            let max = p
                .distribution
                .iter()
                .map(|s| s.probability)
                .fold(0.0, f32::max);
            assert_eq!(p.probability, max);
            assert_eq!(p.head, HeadKind::ZeroShot);
            assert_eq!(p, heads.predict(a, &e).unwrap(), "same input, same output");
        }
    }
}

#[test]
fn zero_shot_is_clip_softmax_over_scaled_cosines() {
    let enc = HashEncoder::new("model-a");
    let heads = ZeroShotHeads::build(&enc).unwrap();
    let e = image_embeddings(1, 64).remove(0);
    let norm = dot(&e, &e).sqrt();
    let p = heads.predict(Attribute::Pattern, &e).unwrap();
    // Independent recomputation: rows must be unit vectors; p_i ∝ exp(100 · cos(row_i, e)).
    let logits: Vec<f64> = heads
        .labels(Attribute::Pattern)
        .iter()
        .map(|l| {
            let row = heads.label_embedding(Attribute::Pattern, l).unwrap();
            assert!((dot(row, row) - 1.0).abs() < 1e-5);
            100.0 * dot(row, &e) / norm
        })
        .collect();
    let m = logits.iter().copied().fold(f64::MIN, f64::max);
    let z: f64 = logits.iter().map(|&l| (l - m).exp()).sum();
    for (s, &l) in p.distribution.iter().zip(&logits) {
        let expected = ((l - m).exp() / z) as f32;
        assert!(
            (s.probability - expected).abs() < 1e-5,
            "{s:?} vs {expected}"
        );
    }
    // An image embedding equal to a label's text embedding picks that label confidently.
    let target = heads
        .label_embedding(Attribute::Pattern, "floral")
        .unwrap()
        .to_vec();
    let p = heads.predict(Attribute::Pattern, &target).unwrap();
    assert_eq!(p.label, "floral");
    assert!(p.probability > 0.99, "{}", p.probability);
    // Scaling the embedding does not change the result (it is normalised).
    let scaled: Vec<f32> = target.iter().map(|x| x * 7.5).collect();
    let q = heads.predict(Attribute::Pattern, &scaled).unwrap();
    assert_eq!(q.label, p.label);
    assert!((q.probability - p.probability).abs() < 1e-6);
}

#[test]
fn prompt_ensemble_averages_normalised_template_embeddings() {
    let enc = HashEncoder::new("model-a");
    let heads = ZeroShotHeads::build(&enc).unwrap();
    let def = Attribute::Material.def();
    let (label, phrase) = def.labels()[3];
    let prompts = def.prompts_for(phrase);
    assert!(prompts.len() >= 3);
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let mut mean = vec![0f64; 64];
    for v in enc.embed_texts(&refs).unwrap() {
        let n = dot(&v, &v).sqrt();
        for (m, x) in mean.iter_mut().zip(v) {
            *m += f64::from(x) / n;
        }
    }
    let n = mean.iter().map(|m| m * m).sum::<f64>().sqrt();
    let row = heads.label_embedding(Attribute::Material, label).unwrap();
    for (r, m) in row.iter().zip(&mean) {
        assert!((f64::from(*r) - m / n).abs() < 1e-6);
    }
}

#[test]
fn logit_scale_sharpens_the_distribution() {
    let sharp = HashEncoder::new("model-a");
    let mut soft = HashEncoder::new("model-a");
    soft.scale = 1.0;
    let (hs, hf) = (
        ZeroShotHeads::build(&sharp).unwrap(),
        ZeroShotHeads::build(&soft).unwrap(),
    );
    let e = image_embeddings(1, 64).remove(0);
    let (ps, pf) = (
        hs.predict(Attribute::Category, &e).unwrap(),
        hf.predict(Attribute::Category, &e).unwrap(),
    );
    assert_eq!(ps.label, pf.label, "same argmax");
    assert!(ps.probability > pf.probability);
    // With scale 1 the logits are cosines (|cos| ≪ 1 for unrelated random vectors), so the
    // distribution stays close to uniform.
    assert!(pf.probability < 3.0 / taxonomy::CATEGORIES.len() as f32);
}

#[test]
fn bad_embeddings_are_invalid_parameter() {
    let heads = ZeroShotHeads::build(&HashEncoder::new("m")).unwrap();
    for bad in [vec![0.0; 64], vec![1.0; 63], {
        let mut v = vec![1.0; 64];
        v[3] = f32::NAN;
        v
    }] {
        let e = heads.predict(Attribute::Style, &bad).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter", "{e}");
    }
}

#[test]
fn cache_is_reused_then_rebuilt_when_the_model_hash_changes() {
    let dir = tempfile::tempdir().unwrap();
    let a = HashEncoder::new("hash-a");
    let (built, st) = ZeroShotHeads::load_or_build(&a, dir.path()).unwrap();
    assert!(
        matches!(&st, CacheStatus::Built { reason, cache_error: None } if reason.contains("no cache")),
        "{st:?}"
    );
    let calls = a.calls.get();
    assert_eq!(
        calls,
        Attribute::ALL.len(),
        "one text-tower call per attribute"
    );
    let path = ZeroShotHeads::cache_path(dir.path());
    assert!(path.exists());

    let (loaded, st) = ZeroShotHeads::load_or_build(&a, dir.path()).unwrap();
    assert_eq!(st, CacheStatus::Loaded);
    assert_eq!(a.calls.get(), calls, "text tower not run again");
    assert_eq!(loaded, built, "exact round trip");

    // A changed model (new hash) rebuilds, and the cache now belongs to the new model.
    let b = HashEncoder::new("hash-b");
    let (rebuilt, st) = ZeroShotHeads::load_or_build(&b, dir.path()).unwrap();
    match &st {
        CacheStatus::Built { reason, .. } => {
            assert!(
                reason.contains("hash-a") && reason.contains("hash-b"),
                "{reason}"
            )
        }
        other => panic!("expected a rebuild, got {other:?}"),
    }
    assert!(b.calls.get() > 0);
    assert_eq!(rebuilt.model_hash(), "hash-b");
    assert_ne!(
        rebuilt.label_embedding(Attribute::Fit, "slim"),
        built.label_embedding(Attribute::Fit, "slim")
    );
    assert!(ZeroShotHeads::load(&path, "hash-b").is_ok());

    // The predictor entry point goes through the same cache.
    let (pred, st) = AttributePredictor::load_or_build(&b, dir.path()).unwrap();
    assert_eq!(st, CacheStatus::Loaded);
    assert_eq!(pred.model_hash(), "hash-b");
}

#[test]
fn a_head_built_for_another_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heads.safetensors");
    ZeroShotHeads::build(&HashEncoder::new("hash-a"))
        .unwrap()
        .save(&path)
        .unwrap();
    let err = ZeroShotHeads::load(&path, "hash-b").unwrap_err();
    assert_eq!(err.code(), "model_error");
    let msg = err.to_string();
    assert!(msg.contains("hash-a") && msg.contains("hash-b"), "{msg}");
    assert!(ZeroShotHeads::load(&path, "hash-a").is_ok());
}

/// Rewrites one metadata entry of a safetensors file, keeping its tensors.
fn rewrite_metadata(path: &Path, key: &str, value: &str) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut md: HashMap<String, String> = meta.metadata().clone().unwrap();
    md.insert(key.to_string(), value.to_string());
    let out = safetensors::serialize(st.tensors(), Some(md)).unwrap();
    std::fs::write(path, out).unwrap();
}

#[test]
fn changed_prompts_or_corrupt_cache_rebuild_and_strict_load_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let enc = HashEncoder::new("hash-a");
    let path = ZeroShotHeads::cache_path(dir.path());
    ZeroShotHeads::load_or_build(&enc, dir.path()).unwrap();

    rewrite_metadata(&path, "prompt_hash", "0123");
    let err = ZeroShotHeads::load(&path, "hash-a").unwrap_err();
    assert!(err.to_string().contains("prompt set"), "{err}");
    let (_, st) = ZeroShotHeads::load_or_build(&enc, dir.path()).unwrap();
    assert!(matches!(st, CacheStatus::Built { .. }), "{st:?}");
    assert!(ZeroShotHeads::load(&path, "hash-a").is_ok(), "rewritten");

    // Truncated file: a typed error for strict load, a rebuild for load_or_build.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(
        ZeroShotHeads::load(&path, "hash-a").unwrap_err().code(),
        "model_error"
    );
    let (_, st) = ZeroShotHeads::load_or_build(&enc, dir.path()).unwrap();
    assert!(matches!(st, CacheStatus::Built { .. }), "{st:?}");

    // Garbage that is not safetensors at all.
    std::fs::write(&path, b"\xff\xff\xff\xff\xff\xff\xff\x7fjunk").unwrap();
    assert_eq!(
        ZeroShotHeads::load(&path, "hash-a").unwrap_err().code(),
        "model_error"
    );
}

#[test]
fn unwritable_cache_dir_still_gives_heads_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("does/not/exist");
    let enc = HashEncoder::new("hash-a");
    let (heads, st) = ZeroShotHeads::load_or_build(&enc, &missing).unwrap();
    assert!(
        matches!(
            &st,
            CacheStatus::Built {
                cache_error: Some(_),
                ..
            }
        ),
        "{st:?}"
    );
    assert_eq!(heads, ZeroShotHeads::build(&enc).unwrap());
}

fn names(report: &dupify_core::AttributeReport) -> Vec<&str> {
    report
        .attributes
        .iter()
        .map(|p| p.attribute.as_str())
        .collect()
}

#[test]
fn attributes_that_do_not_apply_are_not_reported() {
    let heads = ZeroShotHeads::build(&HashEncoder::new("m")).unwrap();
    let pred = AttributePredictor::new(heads.clone());
    let e = image_embeddings(1, 64).remove(0);

    let shoes = pred.predict_for_category(&e, "shoes").unwrap();
    assert_eq!(shoes.group, CategoryGroup::Footwear);
    assert_eq!(shoes.category_source, CategorySource::Given);
    assert_eq!(
        names(&shoes),
        ["pattern", "color_family", "material", "style", "occasion"]
    );

    let tee = pred.predict_for_category(&e, "t-shirt").unwrap();
    for a in ["sleeve_length", "neckline", "length", "fit"] {
        assert!(names(&tee).contains(&a), "t-shirt lacks {a}");
    }
    let pants = pred.predict_for_category(&e, "pants").unwrap();
    assert!(!names(&pants).contains(&"sleeve_length"));
    assert!(!names(&pants).contains(&"neckline"));
    assert!(names(&pants).contains(&"length"));
    let sofa = pred.predict_for_category(&e, "sofa").unwrap();
    assert_eq!(
        names(&sofa),
        ["pattern", "color_family", "material", "style"]
    );
    let hat = pred.predict_for_category(&e, "hat").unwrap();
    assert!(hat.get(Attribute::SleeveLength).is_none() && hat.get(Attribute::Fit).is_none());

    let err = pred.predict_for_category(&e, "spaceship").unwrap_err();
    assert_eq!(err.code(), "invalid_parameter");

    // Predicted category drives the gating: an embedding equal to the "sneakers" text
    // embedding is classified as sneakers and gets no sleeve length.
    let sneaker = heads
        .label_embedding(Attribute::Category, "sneakers")
        .unwrap()
        .to_vec();
    let r = pred.predict(&sneaker).unwrap();
    assert_eq!(
        (r.category.as_str(), r.group),
        ("sneakers", CategoryGroup::Footwear)
    );
    assert_eq!(r.category_source, CategorySource::Predicted);
    assert_eq!(r.attributes[0].attribute, "category");
    assert!(r.get(Attribute::SleeveLength).is_none());
    let dress = heads
        .label_embedding(Attribute::Category, "dress")
        .unwrap()
        .to_vec();
    let r = pred.predict(&dress).unwrap();
    assert_eq!(r.category, "dress");
    assert!(r.get(Attribute::SleeveLength).is_some() && r.get(Attribute::Neckline).is_some());
    // Serialises as plain JSON (the hosted response shape).
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["category_source"], "predicted");
    assert_eq!(json["attributes"][0]["head"], "zero_shot");
}

/// Well-separated clusters: class c around a seeded centre, 20 examples each.
fn clusters(k: usize, per: usize, dim: usize) -> (Vec<Vec<f32>>, Vec<usize>) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for c in 0..k {
        let centre = seeded_vector(77 + c as u64, dim);
        for j in 0..per {
            let noise = seeded_vector(10_000 + (c * per + j) as u64, dim);
            xs.push(
                centre
                    .iter()
                    .zip(&noise)
                    .map(|(m, n)| m + 0.3 * n)
                    .collect(),
            );
            ys.push(c);
        }
    }
    (xs, ys)
}

#[test]
fn linear_head_trained_saved_and_reloaded_gives_identical_outputs() {
    let labels: Vec<String> = ["solid", "striped", "floral", "checked"]
        .map(String::from)
        .to_vec();
    let (xs, ys) = clusters(4, 20, 64);
    let (tr, ho) = split_holdout(&ys, 0.25, 3);
    let pick = |idx: &[usize]| -> (Vec<Vec<f32>>, Vec<usize>) {
        (
            idx.iter().map(|&i| xs[i].clone()).collect(),
            idx.iter().map(|&i| ys[i]).collect(),
        )
    };
    let ((trx, tryy), (hox, hoy)) = (pick(&tr), pick(&ho));
    let head = train_linear_head(
        "pattern",
        &trx,
        &tryy,
        &labels,
        "hash-a",
        &TrainOptions::default(),
    )
    .unwrap();
    let ev = evaluate_linear_head(&head, &hox, &hoy).unwrap();
    assert!(ev.accuracy >= 0.95, "{ev:?}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pattern.safetensors");
    head.save(&path).unwrap();
    let back = LinearHead::load_for_model(&path, "hash-a").unwrap();
    assert_eq!(back.weight(), head.weight());
    assert_eq!(back.bias(), head.bias());
    assert_eq!(back.labels(), head.labels());
    assert_eq!(back.attribute(), "pattern");
    for e in xs.iter().chain(&image_embeddings(10, 64)) {
        let (a, b) = (head.predict(e).unwrap(), back.predict(e).unwrap());
        assert_eq!(a, b, "identical outputs after reload");
        assert_eq!(a.head, HeadKind::Linear);
        let sum: f32 = a.distribution.iter().map(|s| s.probability).sum();
        assert!((sum - 1.0).abs() < 1e-5);
    }

    // Trained twice on the same data: the same head (zero init, full batch).
    let again = train_linear_head(
        "pattern",
        &trx,
        &tryy,
        &labels,
        "hash-a",
        &TrainOptions::default(),
    )
    .unwrap();
    assert_eq!(again.weight(), head.weight());

    // Refused for another model, both on load and when attached to a predictor.
    let err = LinearHead::load_for_model(&path, "hash-b").unwrap_err();
    assert_eq!(err.code(), "model_error");
    assert!(err.to_string().contains("hash-a"));
    let other = ZeroShotHeads::build(&HashEncoder::new("hash-b")).unwrap();
    let err = AttributePredictor::new(other)
        .with_linear_head(back.clone())
        .unwrap_err();
    assert_eq!(err.code(), "model_error");

    // Attached to its own model's predictor, it replaces the zero-shot pattern head.
    let own = ZeroShotHeads::build(&HashEncoder::new("hash-a")).unwrap();
    let pred = AttributePredictor::new(own).with_linear_head(back).unwrap();
    let r = pred.predict_for_category(&xs[25], "shirt").unwrap();
    let p = r.get(Attribute::Pattern).unwrap();
    assert_eq!(p.head, HeadKind::Linear);
    assert_eq!(p.label, labels[ys[25]]);
    assert_eq!(r.get(Attribute::Style).unwrap().head, HeadKind::ZeroShot);
}

#[test]
fn category_linear_heads_must_use_taxonomy_labels_and_bad_files_are_refused() {
    let own = ZeroShotHeads::build(&HashEncoder::new("h")).unwrap();
    let bad = LinearHead::new(
        "category",
        vec!["shoes".into(), "starship".into()],
        vec![0.0; 128],
        vec![0.0; 2],
        "h",
    )
    .unwrap();
    let err = AttributePredictor::new(own.clone())
        .with_linear_head(bad)
        .unwrap_err();
    assert_eq!(err.code(), "invalid_parameter");
    let wrong_dim = LinearHead::new(
        "fit",
        vec!["a".into(), "b".into()],
        vec![0.0; 6],
        vec![0.0; 2],
        "h",
    )
    .unwrap();
    assert_eq!(
        AttributePredictor::new(own)
            .with_linear_head(wrong_dim)
            .unwrap_err()
            .code(),
        "model_error"
    );
    assert!(LinearHead::new("fit", vec!["a".into()], vec![0.0; 3], vec![0.0], "h").is_err());
    assert!(LinearHead::new(
        "fit",
        vec!["a".into(), "b".into()],
        vec![f32::NAN, 0.0],
        vec![0.0; 2],
        "h"
    )
    .is_err());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.safetensors");
    std::fs::write(&path, b"not a head").unwrap();
    assert_eq!(LinearHead::load(&path).unwrap_err().code(), "model_error");
    let missing = LinearHead::load(&dir.path().join("nope.safetensors")).unwrap_err();
    assert!(
        matches!(missing, dupify_core::Error::Storage { .. }),
        "{missing}"
    );
    // A zero-shot cache is not a linear head.
    let zs = dir.path().join("zs.safetensors");
    ZeroShotHeads::build(&HashEncoder::new("h"))
        .unwrap()
        .save(&zs)
        .unwrap();
    assert!(LinearHead::load(&zs)
        .unwrap_err()
        .to_string()
        .contains("format"));
}
