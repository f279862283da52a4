//! Silhouette on the 40 committed clothing photos (working images, long side 256).
//!
//! `cpu_silhouette/segment_embed_40_photos` runs the default `ClassicalSegmenter` and
//! `shape_embedding` over all 40 photos on one thread (mask + embedding, the hosted
//! `silhouette` operation); `cpu_silhouette/embed_40_masks` times the embedding alone.
//! Decoding and resizing happen once, outside the timed loop. There is no Python peer: no
//! comparable classical segmenter ships in the project venv (rembg/U²-Net need weights that
//! cannot be downloaded here).

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dupify_core::silhouette::{shape_embedding, ClassicalSegmenter, Segmenter};
use dupify_core::WorkingImage;

fn photos() -> Vec<WorkingImage> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dupify-core/tests/assets/clothing");
    let mut paths = Vec::new();
    for cat in std::fs::read_dir(&root).expect("clothing fixtures") {
        let cat = cat.expect("entry").path();
        if cat.is_dir() {
            for f in std::fs::read_dir(&cat).expect("category") {
                let f = f.expect("entry").path();
                if f.extension().is_some_and(|e| e == "jpg") {
                    paths.push(f);
                }
            }
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let img = image::open(p).expect("decodes").to_rgb8();
            let (w, h) = img.dimensions();
            let s = 256.0 / w.max(h) as f32;
            let (nw, nh) = ((w as f32 * s).round() as u32, (h as f32 * s).round() as u32);
            let small =
                image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle);
            WorkingImage::new(nw, nh, small.into_raw(), None).expect("working image")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let imgs = photos();
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
