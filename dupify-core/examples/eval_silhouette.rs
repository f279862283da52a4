//! Retrieval quality of the silhouette shape embedding on real photos.
//!
//! Segments every photo of a category-labelled folder tree (`<dir>/<category>/*.jpg`) with
//! the default [`ClassicalSegmenter`], embeds the mask with [`shape_embedding`], and for each
//! photo ranks all others by cosine: precision@10 is the share of the 10 nearest that have
//! the query's category. A photo whose segmentation fails counts as a query with precision 0
//! and is left out of the gallery.
//!
//! ```text
//! DUPIFY_CLOTHING_DIR=<clothing-dataset-small>/test \
//!     cargo run --release -p dupify-core --features train --example eval_silhouette
//! ```
//!
//! `DUPIFY_CLOTHING_DIR` is the test split of the CC0 clothing-dataset-small (one folder per
//! category; the photos are not in this repository).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dupify_core::raster::WorkingImage;
use dupify_core::silhouette::{shape_cosine, shape_embedding, ClassicalSegmenter, Segmenter};
use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use rayon::prelude::*;

const LONG_SIDE: u32 = 256;
const K: usize = 10;

/// Decodes a photo and resizes it to a long side of 256 px (bilinear, like the working image).
fn working_image(path: &Path) -> Result<WorkingImage, String> {
    let rgb = image::open(path).map_err(|e| e.to_string())?.to_rgb8();
    let (w, h) = rgb.dimensions();
    let scale = LONG_SIDE as f32 / w.max(h) as f32;
    let (nw, nh) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    let src =
        Image::from_vec_u8(w, h, rgb.into_raw(), PixelType::U8x3).map_err(|e| e.to_string())?;
    let mut dst = Image::new(nw, nh, PixelType::U8x3);
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        )
        .map_err(|e| e.to_string())?;
    WorkingImage::new(nw, nh, dst.into_vec(), None).map_err(|e| e.to_string())
}

fn main() {
    let Some(dir) = std::env::var_os("DUPIFY_CLOTHING_DIR").map(PathBuf::from) else {
        eprintln!("set DUPIFY_CLOTHING_DIR to the test split of clothing-dataset-small");
        std::process::exit(2);
    };
    let mut items: Vec<(String, PathBuf)> = Vec::new();
    let Ok(cats) = std::fs::read_dir(&dir) else {
        eprintln!("cannot read {}: set DUPIFY_CLOTHING_DIR", dir.display());
        std::process::exit(2);
    };
    for cat in cats.flatten().filter(|e| e.path().is_dir()) {
        let name = cat.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(cat.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            items.push((name.clone(), f.path()));
        }
    }
    items.sort();
    println!("{} photos in {}", items.len(), dir.display());

    let images: Vec<Option<WorkingImage>> = items
        .par_iter()
        .map(|(_, p)| {
            working_image(p)
                .map_err(|e| eprintln!("{}: {e}", p.display()))
                .ok()
        })
        .collect();
    let seg = ClassicalSegmenter::new();
    let t0 = Instant::now();
    let results: Vec<Option<(Vec<f32>, f32, f32)>> = images
        .iter()
        .zip(&items)
        .map(|(img, (_, p))| {
            let img = img.as_ref()?;
            let s = seg
                .segment(img)
                .map_err(|e| eprintln!("segment {}: {e}", p.display()))
                .ok()?;
            let e = shape_embedding(&s.mask)
                .map_err(|e| eprintln!("embed {}: {e}", p.display()))
                .ok()?;
            Some((e, s.area_fraction, s.confidence))
        })
        .collect();
    let elapsed = t0.elapsed();
    let n_ok = results.iter().filter(|r| r.is_some()).count();
    println!(
        "mask + embedding: {:.2} ms/image (single thread, {} images, {} failed)",
        elapsed.as_secs_f64() * 1000.0 / images.len().max(1) as f64,
        images.len(),
        images.len() - n_ok
    );
    let (sum_area, sum_conf) = results
        .iter()
        .flatten()
        .fold((0f32, 0f32), |(a, c), r| (a + r.1, c + r.2));
    println!(
        "mean area fraction {:.3}, mean confidence {:.3}",
        sum_area / n_ok.max(1) as f32,
        sum_conf / n_ok.max(1) as f32
    );

    let mut per_cat: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    let mut total = 0f64;
    for (i, (cat, _)) in items.iter().enumerate() {
        let p = match &results[i] {
            None => 0.0,
            Some((q, _, _)) => {
                let mut scored: Vec<(f32, &str)> = results
                    .iter()
                    .enumerate()
                    .filter(|(j, r)| *j != i && r.is_some())
                    .filter_map(|(j, r)| {
                        r.as_ref()
                            .map(|r| (shape_cosine(q, &r.0), items[j].0.as_str()))
                    })
                    .collect();
                scored.sort_by(|a, b| b.0.total_cmp(&a.0));
                scored.iter().take(K).filter(|(_, c)| *c == cat).count() as f64 / K as f64
            }
        };
        let e = per_cat.entry(cat.as_str()).or_default();
        e.0 += p;
        e.1 += 1;
        total += p;
    }
    let mut random = 0f64;
    for (cat, (sum, n)) in &per_cat {
        let base = (*n as f64 - 1.0) / (items.len() as f64 - 1.0);
        random += base * *n as f64;
        println!(
            "{cat:>12}: P@{K} = {:.3}  (n = {n}, random ≈ {base:.3})",
            sum / *n as f64
        );
    }
    println!(
        "     overall: P@{K} = {:.3}  (random ≈ {:.3})",
        total / items.len().max(1) as f64,
        random / items.len().max(1) as f64
    );
}
