//! EfficientNet-Lite throughput (images/s) on the CPU, on the real ImageNet checkpoints that
//! `scripts/setup.sh` installs in `weights/real/efficientnet-lite{0,2}`.
//!
//! * `cpu_efficientnet/lite0_fp32`, `lite2_fp32`, `lite2_bf16`: model-only, batch 8 of
//!   normalised pixels (`EfficientNetModel::embed_pixels`: forward, pooling, L2 norm).
//! * `cpu_efficientnet/lite0_files`, `lite2_files`: end to end through the public batch API
//!   (`Extractor::extract_batch` with `ImageInput::Path`, `Ops::EMBED`): read, decode, resize,
//!   crop, normalise, model, for every photo, no cache.
//!
//! Threads: `DUPIFY_BENCH_THREADS` for LibTorch and the rayon pool. Photos: the 40 committed,
//! or every `*.jpg` under `DUPIFY_BENCH_PHOTOS`. Peer: `benches/peers/efficientnet.py`, the
//! reference `efficientnet-lite-pytorch` in PyTorch eager with PIL + torchvision
//! preprocessing, same weights, batch, photos and threads (`--mode model|files`). Run both
//! with `python benches/run.py efficientnet_lite2_cpu efficientnet_lite2_files`.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use dupify_benches::{
    assert_every_item_extracts, bench_image_list, bench_threads, repo_root, set_torch_threads,
};
use dupify_core::{
    BatchOptions, Device, EfficientNetModel, Extractor, ImageInput, ModelOptions, Ops, Precision,
};

const CPU_BATCH: usize = 8;

fn dir(name: &str) -> std::path::PathBuf {
    repo_root().join("weights/real").join(name)
}

fn bench(c: &mut Criterion) {
    let threads = bench_threads();
    set_torch_threads(threads);
    let mut g = c.benchmark_group("cpu_efficientnet");
    g.sample_size(10);
    g.throughput(Throughput::Elements(CPU_BATCH as u64));
    for (id, name, precision) in [
        ("lite0_fp32", "efficientnet-lite0", Precision::F32),
        ("lite2_fp32", "efficientnet-lite2", Precision::F32),
        ("lite2_bf16", "efficientnet-lite2", Precision::Bf16),
    ] {
        let opts = ModelOptions::cpu()
            .with_precision(precision)
            .with_intra_op_threads(threads)
            .with_max_batch(CPU_BATCH);
        let m = EfficientNetModel::from_dir(dir(name), &opts)
            .unwrap_or_else(|e| panic!("{e}: run scripts/setup.sh first"));
        let s = m.image_size();
        // Deterministic pixels in the normalised range; content does not change the cost.
        let px: Vec<f32> = (0..CPU_BATCH * 3 * s * s)
            .map(|i| (i.wrapping_mul(2654435761) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        g.bench_function(id, |b| {
            b.iter(|| m.embed_pixels(&px, CPU_BATCH).expect("forward"))
        });
    }
    g.finish();

    let inputs: Vec<ImageInput> = bench_image_list()
        .into_iter()
        .map(ImageInput::Path)
        .collect();
    let mut g = c.benchmark_group("cpu_efficientnet");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(inputs.len() as u64));
    for (id, name) in [
        ("lite0_files", "efficientnet-lite0"),
        ("lite2_files", "efficientnet-lite2"),
    ] {
        let x = Extractor::builder()
            .model_dir(dir(name))
            .device(Device::Cpu)
            .threads(threads)
            .batch_size(32)
            .build()
            .expect("extractor");
        let mut checked = false;
        g.bench_function(id, |b| {
            // One untimed pass proves every photo goes through (a failed item would be a
            // fast no-op and inflate the figure).
            if !checked {
                assert_every_item_extracts(&x, &inputs, Ops::EMBED);
                checked = true;
            }
            b.iter(|| {
                x.extract_batch(&inputs, Ops::EMBED, &BatchOptions::default())
                    .expect("batch")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
