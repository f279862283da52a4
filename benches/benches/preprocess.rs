//! Decode + CLIP preprocessing throughput on real photos (images/s).
//!
//! Each iteration takes every photo from its encoded JPEG bytes (in memory) to its normalised
//! 3×224×224 tensor in a shared batch buffer: decode once, bicubic resize + centre crop,
//! normalise. Photos are spread over a rayon pool of `DUPIFY_BENCH_THREADS` threads (default:
//! all cores). The peer, `benches/peers/preprocess.py`, does the same with PIL + torchvision
//! transforms on the same files and thread count; `benches/run.py preprocess` runs both.
//!
//! Photos: the 40 committed CC0 photos, or every `*.jpg` under `DUPIFY_BENCH_PHOTOS` when set
//! (e.g. the test split of the CC0 clothing-dataset-small).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dupify_core::input::{decode_bytes, ClipPreprocess, InputLimits, ResizeMode};
use rayon::prelude::*;

fn bench(c: &mut Criterion) {
    let threads = dupify_benches::bench_threads();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");
    let paths = dupify_benches::bench_photo_paths();
    let files: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).expect("read photo"))
        .collect();
    let limits = InputLimits::default();

    let mut group = c.benchmark_group("cpu_preprocess");
    group.throughput(Throughput::Elements(files.len() as u64));
    for (id, mode) in [
        ("decode_clip224", ResizeMode::CenterCrop),
        ("decode_clip224_pad", ResizeMode::PadToSquare),
    ] {
        let pre = ClipPreprocess::default().with_mode(mode);
        let mut batch = vec![0f32; files.len() * pre.tensor_len()];
        group.bench_function(id, |b| {
            b.iter(|| {
                pool.install(|| {
                    batch
                        .par_chunks_mut(pre.tensor_len())
                        .zip(files.par_iter())
                        .for_each(|(slot, bytes)| {
                            let img = decode_bytes(bytes, &limits).expect("photo decodes");
                            pre.preprocess_into(&img, slot).expect("preprocess");
                        })
                });
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
