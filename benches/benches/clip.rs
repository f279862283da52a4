//! CLIP model-only throughput (images/s) on the CPU, ViT-B/32 fp32 (and bf16), on the seeded
//! random checkpoint `weights/test/clip/vit-b-32` (the architecture, not the weights, sets the
//! cost). Peer: `benches/peers/clip.py`, transformers `CLIPModel` on the same checkpoint, same
//! batch, same threads (`DUPIFY_BENCH_THREADS`). Run both with
//! `python benches/run.py clip_vit_b32_cpu`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dupify_core::{ClipModel, ClipOptions, Precision};

const BATCH: usize = 8;

fn model(precision: Precision) -> ClipModel {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../weights/test/clip/vit-b-32");
    let mut opts = ClipOptions::cpu().with_precision(precision);
    if let Some(n) = std::env::var("DUPIFY_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        opts = opts.with_intra_op_threads(n);
    }
    ClipModel::from_dir(&dir, &opts)
        .unwrap_or_else(|e| panic!("{e}: run scripts/setup.sh (weights/gen_clip.py) first"))
}

/// Deterministic pixels in CLIP's normalised range; content does not change the cost.
fn pixels(n: usize, side: usize) -> Vec<f32> {
    (0..n * 3 * side * side)
        .map(|i| (i.wrapping_mul(2654435761) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("cpu_clip");
    g.sample_size(10);
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, precision) in [
        ("vit_b32_fp32", Precision::F32),
        ("vit_b32_bf16", Precision::Bf16),
    ] {
        let m = model(precision);
        let px = pixels(BATCH, m.image_size());
        g.bench_function(name, |b| b.iter(|| m.embed_pixels(&px, BATCH).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
