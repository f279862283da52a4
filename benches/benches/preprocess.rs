//! Decode + CLIP preprocessing throughput on real photos (images/s).
//!
//! Each iteration takes every photo from its encoded JPEG bytes (in memory) to its normalised
//! 3×224×224 tensor in a shared batch buffer: decode once, bicubic resize + centre crop,
//! normalise. Photos are spread over a rayon pool of `DUPIFY_BENCH_THREADS` threads (default:
//! all cores). The peer, `benches/peers/preprocess.py`, does the same with PIL + torchvision
//! transforms on the same files and thread count; `benches/run.py preprocess` runs both.
//!
//! Photos: the 40 committed CC0 photos, or every `*.jpg` under `DUPIFY_BENCH_PHOTOS` when set
//! (e.g. `../shared/data/clothing-small/test`).

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dupify_core::input::{decode_bytes, ClipPreprocess, InputLimits, ResizeMode};
use rayon::prelude::*;

fn photo_dir() -> PathBuf {
    std::env::var_os("DUPIFY_BENCH_PHOTOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dupify-core/tests/assets/clothing")
        })
}

fn jpegs(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            jpegs(&p, out);
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")) {
            out.push(p);
        }
    }
}

fn bench(c: &mut Criterion) {
    let threads = std::env::var("DUPIFY_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");
    let mut paths = Vec::new();
    jpegs(&photo_dir(), &mut paths);
    assert!(
        !paths.is_empty(),
        "no photos under {}",
        photo_dir().display()
    );
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
