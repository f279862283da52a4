//! CLIP model-only throughput (images/s), ViT-B/32, on the seeded random checkpoint
//! `weights/test/clip/vit-b-32` (the architecture, not the weights, sets the cost).
//!
//! * `cpu_clip/vit_b32_fp32`, `cpu_clip/vit_b32_bf16`, `cpu_clip/vit_b32_int8`: batch 8 on
//!   the CPU with `DUPIFY_BENCH_THREADS` LibTorch threads.
//! * `cuda_clip/vit_b32_fp16`: batch `DUPIFY_BENCH_CUDA_BATCH` (default 256) on CUDA device 0,
//!   only when CUDA is usable: host RGB8 crops in (`ClipModel::embed_rgb8`, as the Extractor
//!   feeds a GPU: copied to the device, normalised there), embeddings copied back to the host,
//!   which synchronises the device before the clock stops. The peer does the same
//!   (`--host-u8`).
//!
//! Peer: `benches/peers/clip.py`, transformers `CLIPModel` on the same checkpoint, batch and
//! threads (`--device cuda --dtype fp16` for the CUDA row, `--quant int8` for PyTorch's own
//! dynamic int8 quantization, the like-for-like peer of the int8 row). Run both with
//! `python benches/run.py clip_vit_b32_cpu`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dupify_benches::{bench_threads, cuda_available, set_torch_threads, vit_b32_dir};
use dupify_core::{ClipModel, ClipOptions, ClipPreprocess, Device, Precision};

const CPU_BATCH: usize = 8;

fn model(device: Device, precision: Precision, max_batch: usize) -> ClipModel {
    let opts = ClipOptions::cpu()
        .with_device(device)
        .with_precision(precision)
        .with_intra_op_threads(bench_threads())
        .with_max_batch(max_batch);
    ClipModel::from_dir(vit_b32_dir(), &opts)
        .unwrap_or_else(|e| panic!("{e}: run scripts/setup.sh (weights/gen_clip.py) first"))
}

/// Deterministic pixels in CLIP's normalised range; content does not change the cost.
fn pixels(n: usize, side: usize) -> Vec<f32> {
    (0..n * 3 * side * side)
        .map(|i| (i.wrapping_mul(2654435761) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

fn bench(c: &mut Criterion) {
    set_torch_threads(bench_threads());
    let mut g = c.benchmark_group("cpu_clip");
    g.sample_size(10);
    g.throughput(Throughput::Elements(CPU_BATCH as u64));
    for (name, precision) in [
        ("vit_b32_fp32", Precision::F32),
        ("vit_b32_bf16", Precision::Bf16),
        ("vit_b32_int8", Precision::Int8),
    ] {
        let m = model(Device::Cpu, precision, CPU_BATCH);
        let px = pixels(CPU_BATCH, m.image_size());
        g.bench_function(name, |b| {
            b.iter(|| m.embed_pixels(&px, CPU_BATCH).expect("forward"))
        });
    }
    g.finish();

    if cuda_available() {
        let batch: usize = std::env::var("DUPIFY_BENCH_CUDA_BATCH")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(256);
        let mut g = c.benchmark_group("cuda_clip");
        g.sample_size(20);
        g.throughput(Throughput::Elements(batch as u64));
        let m = model(Device::Cuda(0), Precision::F16, batch);
        let side = m.image_size();
        // What the Extractor sends a GPU: host RGB8 crops, normalised on the device.
        let rgb: Vec<u8> = (0..batch * side * side * 3)
            .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
            .collect();
        let pre = ClipPreprocess::new(side as u32);
        // `embed_rgb8` returns host vectors: the device→host copy waits for the kernels.
        g.bench_function("vit_b32_fp16", |b| {
            b.iter(|| m.embed_rgb8(&rgb, batch, &pre).expect("forward"))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
