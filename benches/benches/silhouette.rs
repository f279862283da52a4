//! Silhouette on the 40 committed clothing photos (working images, long side 256).
//!
//! `cpu_silhouette/segment_embed_40_photos` runs the default `ClassicalSegmenter` and
//! `shape_embedding` over all 40 photos on one thread (mask + embedding, the hosted
//! `silhouette` operation); `cpu_silhouette/embed_40_masks` times the embedding alone.
//! Decoding and resizing happen once, outside the timed loop. There is no Python peer: no
//! comparable classical segmenter ships in the project venv (rembg/U²-Net need weights that
//! cannot be downloaded here).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dupify_core::silhouette::{shape_embedding, ClassicalSegmenter, Segmenter};

fn bench(c: &mut Criterion) {
    let imgs = dupify_benches::fixture_working_images();
    let seg = ClassicalSegmenter::new();
    let masks: Vec<_> = imgs
        .iter()
        .filter_map(|i| seg.segment(i).ok().map(|s| s.mask))
        .collect();
    let mut g = c.benchmark_group("cpu_silhouette");
    g.throughput(Throughput::Elements(imgs.len() as u64));
    g.bench_function("segment_embed_40_photos", |b| {
        b.iter(|| {
            for img in &imgs {
                if let Ok(s) = seg.segment(black_box(img)) {
                    black_box(shape_embedding(&s.mask).expect("embedding"));
                }
            }
        })
    });
    g.throughput(Throughput::Elements(masks.len() as u64));
    g.bench_function("embed_40_masks", |b| {
        b.iter(|| {
            for m in &masks {
                black_box(shape_embedding(black_box(m)).expect("embedding"));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
