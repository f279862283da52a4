//! Dominant colours on the 40 committed clothing photos (working images, long side 256).
//!
//! `cpu_colors/extract_40_photos` runs `extract_colors` with default options (border
//! background model, k = 5) over all 40 photos on one thread; throughput is images/s. Decoding
//! and resizing happen once, outside the timed loop, exactly as in the peer script
//! `benches/peers/colors.py` (colorthief and scikit-learn k-means on the same resized images).

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dupify_core::colors::{extract_colors, ColorOptions};
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
    let opts = ColorOptions::default();
    let mut g = c.benchmark_group("cpu_colors");
    g.throughput(Throughput::Elements(imgs.len() as u64));
    g.bench_function("extract_40_photos", |b| {
        b.iter(|| {
            for img in &imgs {
                black_box(extract_colors(black_box(img), None, &opts).expect("colours"));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
