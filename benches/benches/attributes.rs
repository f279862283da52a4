//! Attribute heads on image embeddings (images/s): `AttributePredictor::predict` (category,
//! then every attribute that applies to its group) for the CLIP ViT-B/32 embeddings of the 40
//! committed photos, on one thread.
//!
//! The embeddings are computed once, outside the timed loop, with the seeded
//! `weights/test/clip/vit-b-32`; the zero-shot heads load from (or are built into) that
//! model directory's cache, as the extractor does. This is the cost `attributes` adds on top
//! of `embed`; there is no peer (no off-the-shelf tool runs this taxonomy), so `run.py`
//! reports it without a ratio.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dupify_benches::{fixture_photo_paths, set_torch_threads, vit_b32_dir};
use dupify_core::{
    AttributePredictor, BatchOptions, ClipModel, ClipOptions, Extractor, ImageInput, Ops,
};

fn bench(c: &mut Criterion) {
    set_torch_threads(1);
    let dir = vit_b32_dir();
    let clip = ClipModel::from_dir(&dir, &ClipOptions::cpu().with_intra_op_threads(1))
        .expect("CLIP test model loads");
    let (predictor, _status) =
        AttributePredictor::load_or_build(&clip, &dir).expect("attribute heads");
    let extractor = Extractor::builder()
        .model_dir(&dir)
        .device(dupify_core::Device::Cpu)
        .build()
        .expect("extractor");
    let inputs: Vec<ImageInput> = fixture_photo_paths()
        .into_iter()
        .map(ImageInput::Path)
        .collect();
    let embeddings: Vec<Vec<f32>> = extractor
        .extract_batch(&inputs, Ops::EMBED, &BatchOptions::default())
        .expect("batch")
        .into_iter()
        .map(|r| {
            r.expect("photo embeds")
                .embedding
                .expect("embedding requested")
        })
        .collect();

    let mut g = c.benchmark_group("cpu_attributes");
    g.throughput(Throughput::Elements(embeddings.len() as u64));
    g.bench_function("predict_40_photos", |b| {
        b.iter(|| {
            for e in &embeddings {
                black_box(predictor.predict(black_box(e)).expect("prediction"));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
