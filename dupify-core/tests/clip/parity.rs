//! Rust CLIP vs Hugging Face `transformers` `CLIPModel` on the seeded random checkpoints and
//! reference outputs written by `weights/gen_clip.py`: same checkpoint, same preprocessed
//! pixels (the `CLIPImageProcessor` output saved by the generator), same token ids.
//! fp32 on CPU: cosine ≥ 0.9999 and max |diff| ≤ 1e-4 per embedding.

use std::path::PathBuf;
use std::sync::Arc;

use dupify_core::{ClipModel, ClipOptions, Device, Precision};

use crate::common::{cosine, max_abs_diff, reference, Reference};

fn model_dir(name: &str) -> PathBuf {
    crate::common::model_dir(name, &["reference.safetensors"])
}

/// Asserts each row's cosine and max |diff| against the reference.
fn assert_parity(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], min_cos: f64, max_diff: f32) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}[{i}]: dimension");
        let norm: f32 = g.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{what}[{i}]: norm {norm}");
        let c = cosine(g, w);
        let d = max_abs_diff(g, w);
        assert!(c >= min_cos, "{what}[{i}]: cosine {c} < {min_cos}");
        assert!(d <= max_diff, "{what}[{i}]: max |diff| {d} > {max_diff}");
    }
}

fn check_model(name: &str) -> (ClipModel, Reference) {
    let dir = model_dir(name);
    let r = reference(&dir);
    let m = ClipModel::from_dir(&dir, &ClipOptions::cpu()).unwrap();
    let img = m.embed_pixels(&r.pixels, r.n_images).unwrap();
    assert_parity(
        &format!("{name} image"),
        &img,
        &r.image_embeds,
        0.9999,
        1e-4,
    );
    let txt = m.embed_token_ids(&r.input_ids).unwrap();
    assert_parity(
        &format!("{name} text (ids)"),
        &txt,
        &r.text_embeds,
        0.9999,
        1e-4,
    );
    // The whole text path: our tokenizer + model vs open_clip ids + transformers.
    let texts: Vec<&str> = r.texts.iter().map(String::as_str).collect();
    let txt = m.embed_texts(&texts).unwrap();
    assert_parity(&format!("{name} text"), &txt, &r.text_embeds, 0.9999, 1e-4);
    assert!((m.logit_scale() - r.logit_scale).abs() < 1e-6);
    assert_eq!(m.embed_dim(), r.image_embeds[0].len());
    (m, r)
}

#[test]
fn tiny_matches_transformers() {
    let (m, r) = check_model("tiny");
    assert_eq!(m.image_size(), 32);
    // Batched and one-by-one calls agree.
    let per = r.pixels.len() / r.n_images;
    let batched = m.embed_pixels(&r.pixels, r.n_images).unwrap();
    for (i, b) in batched.iter().enumerate() {
        let one = m
            .embed_pixels(&r.pixels[i * per..(i + 1) * per], 1)
            .unwrap();
        assert!(
            max_abs_diff(&one[0], b) <= 1e-5,
            "image {i}: batch vs single"
        );
    }
    let texts: Vec<&str> = r.texts.iter().map(String::as_str).collect();
    let batched = m.embed_texts(&texts).unwrap();
    for (t, b) in texts.iter().zip(&batched) {
        let one = m.embed_texts(&[t]).unwrap();
        assert!(
            max_abs_diff(&one[0], b) <= 1e-5,
            "text {t:?}: batch vs single"
        );
    }
}

#[test]
fn vit_b_32_matches_transformers() {
    let (m, _) = check_model("vit-b-32");
    assert_eq!((m.image_size(), m.embed_dim()), (224, 512));
    assert!(m.name().starts_with("clip-vit-p32-224px-512d@"));
    assert_eq!(m.content_hash().len(), 64);
}

#[test]
fn small_max_batch_splits_without_changing_results() {
    let dir = model_dir("tiny");
    let r = reference(&dir);
    let m = ClipModel::from_dir(&dir, &ClipOptions::cpu().with_max_batch(3)).unwrap();
    let img = m.embed_pixels(&r.pixels, r.n_images).unwrap();
    assert_parity(
        "tiny image, max_batch 3",
        &img,
        &r.image_embeds,
        0.9999,
        1e-4,
    );
    let txt = m.embed_token_ids(&r.input_ids).unwrap();
    assert_parity("tiny text, max_batch 3", &txt, &r.text_embeds, 0.9999, 1e-4);
}

#[test]
fn bf16_on_cpu_stays_close_to_fp32() {
    let dir = model_dir("tiny");
    let r = reference(&dir);
    let m = ClipModel::from_dir(&dir, &ClipOptions::cpu().with_precision(Precision::Bf16)).unwrap();
    let img = m.embed_pixels(&r.pixels, r.n_images).unwrap();
    for (i, (g, w)) in img.iter().zip(&r.image_embeds).enumerate() {
        let c = cosine(g, w);
        assert!(c >= 0.999, "bf16 image {i}: cosine {c}");
    }
    let txt = m.embed_token_ids(&r.input_ids).unwrap();
    for (i, (g, w)) in txt.iter().zip(&r.text_embeds).enumerate() {
        let c = cosine(g, w);
        assert!(c >= 0.999, "bf16 text {i}: cosine {c}");
    }
}

#[test]
fn f16_on_cpu_is_refused() {
    let e = ClipModel::from_dir(
        model_dir("tiny"),
        &ClipOptions::cpu().with_precision(Precision::F16),
    )
    .unwrap_err();
    assert_eq!(e.code(), "invalid_parameter");
}

#[test]
fn one_model_serves_many_threads() {
    let dir = model_dir("tiny");
    let r = Arc::new(reference(&dir));
    let m = Arc::new(
        ClipModel::from_dir(&dir, &ClipOptions::default().with_device(Device::Cpu)).unwrap(),
    );
    let handles: Vec<_> = (0..4)
        .map(|k| {
            let (m, r) = (Arc::clone(&m), Arc::clone(&r));
            std::thread::spawn(move || {
                let per = r.pixels.len() / r.n_images;
                let i = k * 3;
                let e = m
                    .embed_pixels(&r.pixels[i * per..(i + 1) * per], 1)
                    .unwrap();
                let t = m.embed_texts(&[r.texts[k].as_str()]).unwrap();
                (i, e, k, t)
            })
        })
        .collect();
    for h in handles {
        let (i, e, k, t) = h.join().unwrap();
        assert_parity("threaded image", &e, &r.image_embeds[i..=i], 0.9999, 1e-4);
        assert_parity("threaded text", &t, &r.text_embeds[k..=k], 0.9999, 1e-4);
    }
}

#[test]
fn bad_inputs_get_typed_errors() {
    let m = ClipModel::from_dir(model_dir("tiny"), &ClipOptions::cpu()).unwrap();
    let e = m.embed_pixels(&[0.0; 10], 1).unwrap_err();
    assert_eq!(e.code(), "invalid_parameter");
    assert!(m.embed_pixels(&[], 0).unwrap().is_empty());
    let e = m.embed_token_ids(&[vec![49406, 60000, 49407]]).unwrap_err();
    assert_eq!(e.code(), "invalid_parameter");
    let e = m.embed_token_ids(&[vec![]]).unwrap_err();
    assert_eq!(e.code(), "invalid_parameter");
    let e = m.embed_token_ids(&[vec![1; 78]]).unwrap_err();
    assert_eq!(e.code(), "invalid_parameter");
}

/// The byte path (`embed_rgb8`: RGB8 crops normalised by the model's device through the
/// preprocessing table) gives exactly what the f32 path gives for the same photos, batched
/// and one by one, in both resize modes; mismatched sizes are typed errors.
#[test]
fn rgb8_path_equals_f32_path_bit_for_bit() {
    use dupify_core::{ClipPreprocess, ImageInput, InputLimits, ResizeMode};
    let m = ClipModel::from_dir(model_dir("tiny"), &ClipOptions::cpu()).unwrap();
    let s = m.image_size() as u32;
    let photos = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/assets/clothing");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&photos)
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|d| d.is_dir())
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|x| x == "jpg"))
        .collect();
    files.sort();
    files.truncate(6);
    assert_eq!(
        files.len(),
        6,
        "committed photos under {}",
        photos.display()
    );
    let images: Vec<_> = files
        .iter()
        .map(|f| {
            dupify_core::decode(&ImageInput::Path(f.clone()), &InputLimits::default()).unwrap()
        })
        .collect();
    for mode in [ResizeMode::CenterCrop, ResizeMode::PadToSquare] {
        let pre = ClipPreprocess::new(s).with_mode(mode);
        let mut rgb = Vec::new();
        let mut px = Vec::new();
        for img in &images {
            rgb.extend(pre.square_rgb(img).unwrap());
            px.extend(pre.preprocess(img).unwrap());
        }
        let n = images.len();
        assert_eq!(
            m.embed_rgb8(&rgb, n, &pre).unwrap(),
            m.embed_pixels(&px, n).unwrap(),
            "{mode:?}: batched"
        );
        let per = (s * s * 3) as usize;
        let one = m.embed_rgb8(&rgb[..per], 1, &pre).unwrap();
        assert_eq!(
            one,
            m.embed_pixels(&px[..px.len() / n], 1).unwrap(),
            "{mode:?}: single"
        );
    }
    let pre = ClipPreprocess::new(s);
    let e = m.embed_rgb8(&[0u8; 10], 1, &pre).unwrap_err();
    assert!(e.to_string().contains("bytes"), "{e}");
    let other = s + 8;
    let e = m
        .embed_rgb8(
            &vec![0u8; (3 * other * other) as usize],
            1,
            &ClipPreprocess::new(other),
        )
        .unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");
}
