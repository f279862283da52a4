//! The unified `Extractor` on the seeded tiny CLIP test model and the real fixture photos.
//!
//! Needs `weights/test/clip/tiny` (made by `scripts/setup.sh`); fails, never skips, without it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dupify_core::extractor::{BatchOptions, CancelToken, Features, Ops};
use dupify_core::{Extractor, ImageInput};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tiny_model() -> PathBuf {
    let dir = root().join("weights/test/clip/tiny");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: run scripts/setup.sh",
        dir.display()
    );
    dir
}

fn photos(n: usize) -> Vec<PathBuf> {
    let base = root().join("dupify-core/tests/assets/clothing");
    let mut all: Vec<PathBuf> = std::fs::read_dir(&base)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    all.sort();
    all.truncate(n);
    assert_eq!(all.len(), n, "not enough fixture photos");
    all
}

fn extractor(cache: usize, batch: usize) -> Extractor {
    Extractor::builder()
        .model_dir(tiny_model())
        .device(dupify_core::Device::Cpu)
        .threads(2)
        .batch_size(batch)
        .cache_capacity(cache)
        .build()
        .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn batch_results_equal_single_results() {
    let x = extractor(0, 3);
    let inputs: Vec<ImageInput> = photos(7).into_iter().map(ImageInput::Path).collect();
    let batch = x
        .extract_batch(&inputs, Ops::ALL, &BatchOptions::default())
        .unwrap();
    assert_eq!(batch.len(), inputs.len());
    for (input, b) in inputs.iter().zip(&batch) {
        let b = b.as_ref().unwrap();
        let s = x.extract(input, Ops::ALL).unwrap();
        let (eb, es) = (b.embedding.as_ref().unwrap(), s.embedding.as_ref().unwrap());
        assert!(
            max_diff(eb, es) <= 1e-5,
            "batch and single embeddings differ"
        );
        let norm: f32 = eb.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "embedding not normalised: {norm}"
        );
        assert_eq!(b.colors, s.colors);
        assert_eq!(b.silhouette, s.silhouette);
        assert_eq!(b.quality, s.quality);
        assert_eq!(b.cutout_png, s.cutout_png);
        // Embeddings agree to 1e-5, so the softmaxes agree to the same order, labels exactly.
        let (ab, as_) = (
            b.attributes.as_ref().unwrap(),
            s.attributes.as_ref().unwrap(),
        );
        assert_eq!(ab.attributes.len(), as_.attributes.len());
        for (pb, ps) in ab.attributes.iter().zip(&as_.attributes) {
            assert_eq!(pb.label, ps.label);
            for (lb, ls) in pb.distribution.iter().zip(&ps.distribution) {
                assert_eq!(lb.label, ls.label);
                assert!((lb.probability - ls.probability).abs() <= 1e-5);
            }
        }
        assert!(b.cutout_png.as_ref().unwrap().starts_with(b"\x89PNG"));
        assert!(!b.cached && !s.cached);
    }
}

#[test]
fn int8_batches_equal_singles() {
    // Int8 quantizes activations per image, so batching (here into threes, each image with
    // other companions than when alone) must not change an embedding; see
    // `clip_int8::int8_embeddings_do_not_depend_on_batch_companions` for the model-level bound.
    let x = Extractor::builder()
        .model_dir(tiny_model())
        .device(dupify_core::Device::Cpu)
        .precision(dupify_core::Precision::Int8)
        .threads(2)
        .batch_size(3)
        .build()
        .unwrap();
    let f32x = extractor(0, 3);
    let inputs: Vec<ImageInput> = photos(7).into_iter().map(ImageInput::Path).collect();
    let batch = x
        .extract_batch(&inputs, Ops::EMBED, &BatchOptions::default())
        .unwrap();
    for (input, b) in inputs.iter().zip(&batch) {
        let b = b.as_ref().unwrap().embedding.clone().unwrap();
        let s = x.extract(input, Ops::EMBED).unwrap().embedding.unwrap();
        assert!(max_diff(&b, &s) <= 1e-4, "int8 batch and single differ");
        // and it is the int8 model that ran: not the fp32 result
        let f = f32x.extract(input, Ops::EMBED).unwrap().embedding.unwrap();
        assert!(
            max_diff(&b, &f) > 1e-4,
            "int8 extractor gave the fp32 embedding"
        );
    }
}

#[test]
fn one_bad_image_fails_only_its_item() {
    let x = extractor(0, 4);
    let good = photos(2);
    let inputs = vec![
        ImageInput::Path(good[0].clone()),
        ImageInput::Bytes(b"definitely not an image".to_vec()),
        ImageInput::Base64("***not base64***".into()),
        ImageInput::Path(root().join("no/such/file.jpg")),
        ImageInput::Path(good[1].clone()),
    ];
    let out = x
        .extract_batch(
            &inputs,
            "embed,colors".parse().unwrap(),
            &BatchOptions::default(),
        )
        .unwrap();
    assert!(out[0].is_ok() && out[4].is_ok());
    assert_eq!(out[1].as_ref().unwrap_err().code(), "unsupported_format");
    assert_eq!(out[2].as_ref().unwrap_err().code(), "invalid_base64");
    assert_eq!(out[3].as_ref().unwrap_err().code(), "invalid_parameter");
    assert!(out[0].as_ref().unwrap().embedding.is_some());
    assert!(
        out[0].as_ref().unwrap().silhouette.is_none(),
        "not requested"
    );
}

#[test]
fn cancellation_stops_early_and_progress_counts() {
    let x = extractor(0, 2);
    let inputs: Vec<ImageInput> = photos(10).into_iter().map(ImageInput::Path).collect();
    let cancel = CancelToken::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let (c2, s2) = (cancel.clone(), seen.clone());
    let opts = BatchOptions::default()
        .with_progress(move |done, total| {
            assert_eq!(total, 10);
            s2.store(done, Ordering::SeqCst);
            if done == 2 {
                c2.cancel();
            }
        })
        .with_cancel(cancel);
    let out = x.extract_batch(&inputs, Ops::EMBED, &opts).unwrap();
    assert_eq!(
        seen.load(Ordering::SeqCst),
        10,
        "every item reports progress"
    );
    assert!(out[..2].iter().all(|r| r.is_ok()));
    let cancelled = out
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code() == "cancelled"))
        .count();
    assert_eq!(cancelled, 8, "items after the cancel never ran");
}

#[test]
fn cache_hit_returns_identical_features_marked_cached() {
    let x = extractor(16, 4);
    let bytes = std::fs::read(&photos(1)[0]).unwrap();
    let first = x
        .extract(&ImageInput::Bytes(bytes.clone()), Ops::ALL)
        .unwrap();
    assert!(!first.cached);
    // Same bytes through another input kind: the key is the content, not the wrapper.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let second = x.extract(&ImageInput::Base64(b64), Ops::ALL).unwrap();
    assert!(second.cached);
    assert_eq!(
        Features {
            cached: false,
            ..second
        },
        first
    );
    // Another operation set is another entry.
    let third = x.extract(&ImageInput::Bytes(bytes), Ops::EMBED).unwrap();
    assert!(!third.cached);
}

#[test]
fn features_round_trip_through_json() {
    let x = extractor(0, 4);
    let f = x
        .extract(&ImageInput::Path(photos(1)[0].clone()), Ops::ALL)
        .unwrap();
    let json = serde_json::to_string(&f).unwrap();
    let back: Features = serde_json::from_str(&json).unwrap();
    assert_eq!(back, f);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        v["cutout_png"].as_str().unwrap().len() > 100,
        "cut-out serialised as base64"
    );
    assert_eq!(v["content_hash"].as_str().unwrap().len(), 64);
    // The hosted API's field names.
    let dims = v["dimensions"].as_u64().unwrap() as usize;
    assert_eq!(dims, v["embedding"].as_array().unwrap().len());
    assert_eq!(v["model"].as_str(), Some(x.model_id().unwrap().as_str()));
    assert!(v["processing_time_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(v["cached"], serde_json::Value::Bool(false));
    for k in ["overall", "sharpness", "brightness", "composition"] {
        assert!(v["quality"][k].is_number(), "quality.{k}");
    }
}

#[test]
fn text_embeddings_are_normalised_and_match_the_model() {
    let x = extractor(0, 4);
    let model =
        dupify_core::ClipModel::from_dir(tiny_model(), &dupify_core::ClipOptions::cpu()).unwrap();
    let ours = x.embed_text("a red floral summer dress").unwrap();
    let direct = model.embed_texts(&["a red floral summer dress"]).unwrap();
    assert!(max_diff(&ours, &direct[0]) <= 1e-6);
    assert_eq!(x.model_id().unwrap(), model.content_hash());
}

/// A 3× Lanczos upscale of a fixture photo as a quality-90 JPEG: large enough that the
/// extractor decodes it reduced.
fn large_jpeg() -> Vec<u8> {
    let src = image::open(&photos(1)[0]).unwrap().to_rgb8();
    let big = image::imageops::resize(
        &src,
        src.width() * 3,
        src.height() * 3,
        image::imageops::FilterType::Lanczos3,
    );
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&big)
        .unwrap();
    out.into_inner()
}

#[test]
fn large_photos_decode_reduced_yet_report_their_own_frame() {
    let bytes = ImageInput::Bytes(large_jpeg());
    let full_size = image::load_from_memory(match &bytes {
        ImageInput::Bytes(b) => b,
        _ => unreachable!(),
    })
    .unwrap();
    let (w, h) = (full_size.width(), full_size.height());
    let on = extractor(0, 8);
    let off = Extractor::builder()
        .model_dir(tiny_model())
        .device(dupify_core::Device::Cpu)
        .threads(2)
        .reduced_decode_margin(0)
        .build()
        .unwrap();
    let ops: Ops = "embed,colors,silhouette,quality".parse().unwrap();
    let a = on.extract(&bytes, ops).unwrap();
    let b = off.extract(&bytes, ops).unwrap();
    assert_eq!(
        (a.width, a.height),
        (w, h),
        "the photo's size, not the decode's"
    );
    assert_eq!((b.width, b.height), (w, h));
    // The box is in the photo's frame: within 2% of each side of the full decode's box.
    let (sa, sb) = (a.silhouette.unwrap().bbox, b.silhouette.unwrap().bbox);
    for (x, y, side) in [
        (sa.x, sb.x, w),
        (sa.y, sb.y, h),
        (sa.width, sb.width, w),
        (sa.height, sb.height, h),
    ] {
        assert!(x.abs_diff(y) * 50 <= side, "bbox {sa:?} vs {sb:?}");
    }
    let (ea, eb) = (a.embedding.unwrap(), b.embedding.unwrap());
    let cos: f32 = ea.iter().zip(&eb).map(|(x, y)| x * y).sum();
    assert!(cos > 0.99, "embedding cosine {cos}");
    // What is decoded depends on the extractor, never on the operations asked for: the
    // embedding alone, or with a full-size cut-out, is the embedding above.
    let alone = on.extract(&bytes, Ops::EMBED).unwrap();
    assert_eq!(alone.embedding.as_deref(), Some(&ea[..]));
    let cut = on.extract(&bytes, "embed,cutout".parse().unwrap()).unwrap();
    assert_eq!(cut.embedding.as_deref(), Some(&ea[..]));
    let png = image::load_from_memory(&cut.cutout_png.unwrap()).unwrap();
    assert_eq!((png.width(), png.height()), (w, h));
}
