//! Dominant colours on the 40 committed clothing photos (working images, long side 256).
//!
//! `cpu_colors/extract_40_photos` runs `extract_colors` with default options (border
//! background model, k = 5) over all 40 photos on one thread; throughput is images/s. Decoding
//! and resizing happen once, outside the timed loop, exactly as in the peer script
//! `benches/peers/colors.py` (colorthief and scikit-learn k-means on the same resized images).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dupify_core::colors::{extract_colors, ColorOptions};

fn bench(c: &mut Criterion) {
    let imgs = dupify_benches::fixture_working_images();
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
