//! Decode + CLIP preprocessing throughput on real photos (images/s).
//!
//! Each iteration takes every photo from its encoded JPEG bytes (in memory) to its normalised
//! 3×224×224 tensor in a shared batch buffer: decode once, bicubic resize + centre crop,
//! normalise. Photos are spread over a rayon pool of `DUPIFY_BENCH_THREADS` threads (default:
//! all cores). The peer, `benches/peers/preprocess.py`, does the same with PIL + torchvision
//! transforms on the same files and thread count; `benches/run.py preprocess` runs both.
//!
//! `decode_clip224_reduced` decodes JPEGs at a reduced scale in the inverse DCT while the short
//! side stays at least 224 (the extractor's rule), as `benches/peers/preprocess.py --draft 224`
//! does with PIL's draft mode; `decode_clip224_reduced_2x` keeps it at least 448 (`--draft
//! 448`). On the committed ~400-px photos both decode at full size.
//!
//! Photos: the 40 committed CC0 photos, or every `*.jpg` under `DUPIFY_BENCH_PHOTOS` when set
//! (e.g. the test split of the CC0 clothing-dataset-small, or the 3000-px photos that
//! `benches/large_photos.py` makes).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dupify_core::input::{
    decode_bytes_reduced, ClipPreprocess, InputLimits, MinDecodedSize, ResizeMode,
};
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
    for (id, mode, margin) in [
        ("decode_clip224", ResizeMode::CenterCrop, 0),
        ("decode_clip224_pad", ResizeMode::PadToSquare, 0),
        ("decode_clip224_reduced", ResizeMode::CenterCrop, 1),
        ("decode_clip224_reduced_2x", ResizeMode::CenterCrop, 2),
    ] {
        let pre = ClipPreprocess::default().with_mode(mode);
        // `_reduced`: the extractor's rule (and PIL's draft rule), decode reduced while the
        // short side stays >= 224; `_reduced_2x`: with a 2x margin, >= 448.
        let min = match margin {
            0 => MinDecodedSize::FULL,
            m => pre.min_decoded_size().times(m),
        };
        let mut batch = vec![0f32; files.len() * pre.tensor_len()];
        group.bench_function(id, |b| {
            b.iter(|| {
                pool.install(|| {
                    batch
                        .par_chunks_mut(pre.tensor_len())
                        .zip(files.par_iter())
                        .for_each(|(slot, bytes)| {
                            let img =
                                decode_bytes_reduced(bytes, &limits, min).expect("photo decodes");
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
