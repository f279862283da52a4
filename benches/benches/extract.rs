//! End-to-end extraction throughput (images/s): files on disk → features, through the public
//! batch API (`Extractor::extract_batch` with `ImageInput::Path`), the way a host indexes a
//! folder. Every iteration reads, decodes, preprocesses and embeds every photo; the result
//! cache is off, so nothing is reused between iterations.
//!
//! * `<dev>_extract/embed_files`: CLIP ViT-B/32 embedding only (read, decode, resize, crop,
//!   normalise, model). Peer: `benches/peers/e2e.py` (`images_per_s`), transformers
//!   `CLIPImageProcessor` + `CLIPModel` on the same files with the same threads.
//! * `<dev>_extract/all_ops_files`: every operation (`Ops::ALL`: embedding, colours,
//!   silhouette, cut-out PNG, attributes, quality) from one decode. Peer: the same script's
//!   `all_ops_images_per_s`, transformers embedding + colorthief palette summed. Ours does
//!   strictly more work than that peer (silhouette, cut-out, attributes and quality have no
//!   peer), so the ratio understates us.
//!
//! * `cpu_extract/embed_files_int8`: the embedding with `Precision::Int8` (CPU only). Peers:
//!   `e2e.py` (fp32) and `e2e.py --quant int8` (PyTorch's own dynamic int8 quantization).
//!
//! `<dev>` is `cpu` or, with `DUPIFY_BENCH_DEVICE=cuda`, `cuda` (fp16, batch 256, CPU stages
//! of the next chunk overlapped with the model on the current one). Model: the seeded
//! `weights/test/clip/vit-b-32` (same FLOPs as the real one). Photos: the 40 committed, or
//! every `*.jpg` under `DUPIFY_BENCH_PHOTOS`, cycled to `DUPIFY_BENCH_IMAGES` when set.
//! Threads: `DUPIFY_BENCH_THREADS` for both the rayon pool and LibTorch.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use dupify_benches::{
    assert_every_item_extracts, bench_device, bench_image_list, bench_threads, set_torch_threads,
    vit_b32_dir,
};
use dupify_core::{BatchOptions, Device, Extractor, ImageInput, Ops, Precision};

fn bench(c: &mut Criterion) {
    let threads = bench_threads();
    set_torch_threads(threads);
    let device = bench_device();
    let cuda = matches!(device, Device::Cuda(_));
    let extractor = Extractor::builder()
        .model_dir(vit_b32_dir())
        .device(device)
        .precision(if cuda { Precision::F16 } else { Precision::F32 })
        .threads(threads)
        .batch_size(if cuda { 256 } else { 32 })
        .build()
        .expect("extractor");
    extractor.warm_up().expect("model and attribute heads load");
    let inputs: Vec<ImageInput> = bench_image_list()
        .into_iter()
        .map(ImageInput::Path)
        .collect();

    let mut g = c.benchmark_group(if cuda { "cuda_extract" } else { "cpu_extract" });
    // Seconds per iteration: flat sampling runs sample_size iterations, not 55.
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(inputs.len() as u64));
    // CPU only: the same embedding with `Precision::Int8`. Loaded by the untimed first pass
    // of its benchmark, so filtering it out costs nothing.
    let int8 = (!cuda).then(|| {
        Extractor::builder()
            .model_dir(vit_b32_dir())
            .device(device)
            .precision(Precision::Int8)
            .threads(threads)
            .batch_size(32)
            .build()
            .expect("int8 extractor")
    });
    let mut runs = vec![
        ("embed_files", &extractor, Ops::EMBED),
        ("all_ops_files", &extractor, Ops::ALL),
    ];
    if let Some(x) = &int8 {
        runs.push(("embed_files_int8", x, Ops::EMBED));
    }
    for (id, extractor, ops) in runs {
        let mut checked = false;
        g.bench_function(id, |b| {
            // One untimed pass proves every photo goes through (a failed item would be a fast
            // no-op and inflate the figure). Here, not before, so a filtered-out id costs
            // nothing.
            if !checked {
                assert_every_item_extracts(extractor, &inputs, ops);
                checked = true;
            }
            b.iter(|| {
                extractor
                    .extract_batch(&inputs, ops, &BatchOptions::default())
                    .expect("batch")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
