//! The README demo: index the bundled sample photos into a fresh catalog, then search with a
//! held-back photo and print its top dupes with per-channel scores, its colours and its
//! attributes.
//!
//! ```text
//! $ cargo run -p dupify-examples --example demo
//! ```
//! Uses real CLIP weights from `weights/real/clip-vit-base-patch32` when present (see
//! `weights/README.md`), otherwise the seeded random ViT-B/32 test model made by
//! `scripts/setup.sh` — with a warning, because random weights are not semantic: the CLIP
//! channel and the attributes are then noise, while colours and silhouette are real.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use dupify_core::catalog::{
    Catalog, CatalogOptions, Environment, Namespace, NewProduct, SearchQuery,
};
use dupify_core::extractor::{BatchOptions, Ops};
use dupify_core::{Device, Extractor, ImageInput};

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let real = root.join("weights/real/clip-vit-base-patch32");
    let model = if real.join("model.safetensors").is_file() {
        real
    } else {
        let test = root.join("weights/test/clip/vit-b-32");
        if !test.join("model.safetensors").is_file() {
            bail!("no model in weights/: run scripts/setup.sh first");
        }
        eprintln!(
            "WARNING: no real CLIP weights in weights/real/; using the seeded RANDOM ViT-B/32 test \
             model. Its embeddings and attributes are NOT semantic (colours and silhouette are). \
             See weights/README.md to fetch real weights."
        );
        test
    };

    let photos = sample_photos(&root.join("dupify-core/tests/assets/clothing"))?;
    let (query, indexed) = photos.split_first().context("no sample photos found")?;
    let x = Extractor::builder()
        .model_dir(&model)
        .device(Device::Auto)
        .build()?;
    let dir = root.join("target/demo");
    std::fs::create_dir_all(&dir)?;
    for f in ["shop.db", "shop.db-wal", "shop.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let catalog = Catalog::open(dir.join("shop.db"), CatalogOptions::default())?;
    let ns = Namespace::new("demo", Environment::Test)?;

    println!(
        "indexing {} photos with {} ...",
        indexed.len(),
        model.display()
    );
    let inputs: Vec<ImageInput> = indexed
        .iter()
        .map(|(p, _)| ImageInput::Path(p.clone()))
        .collect();
    let ops: Ops = "embed,colors,silhouette,attributes".parse()?;
    let results = x.extract_batch(&inputs, ops, &BatchOptions::default())?;
    let mut products = Vec::new();
    for (i, ((path, category), r)) in indexed.iter().zip(results).enumerate() {
        let f = match r {
            Ok(f) => f,
            Err(e) => {
                eprintln!("  skipped {}: {e}", path.display());
                continue;
            }
        };
        let mut p = NewProduct::new(path.file_name().unwrap_or_default().to_string_lossy());
        p.title = Some(format!("{category} #{i}"));
        p.category = Some(category.clone());
        p.price = Some(19.0 + (i as f64 * 7.0) % 80.0);
        p.image_hash = Some(f.content_hash.clone());
        p.features = f.to_product_features();
        products.push(p);
    }
    catalog.upsert_batch(&ns, products)?;

    let (qpath, qcat) = query;
    println!("\nquery: {} (a {qcat})", qpath.display());
    let q = x.extract(&ImageInput::Path(qpath.clone()), Ops::ALL)?;
    let pf = q.to_product_features();
    let hits = catalog.search(
        &ns,
        &SearchQuery {
            embedding: pf.clip.clone(),
            shape: pf.shape.clone(),
            colors: pf.colors.clone(),
            limit: 5,
            ..SearchQuery::default()
        },
    )?;
    println!("\ntop dupes            category    price   score   clip  shape  color");
    for h in &hits {
        let s = &h.scores;
        println!(
            "  {:<18} {:<10} {:>6.2}  {:>6.3}  {}  {}  {}",
            h.product.title.as_deref().unwrap_or("-"),
            h.product.category.as_deref().unwrap_or("-"),
            h.product.price.unwrap_or(0.0),
            h.score,
            fmt(s.clip),
            fmt(s.shape),
            fmt(s.color)
        );
    }
    if let Some(c) = &q.colors {
        println!(
            "\ncolours of the query product ({:.0}% of the frame):",
            c.product_fraction * 100.0
        );
        for d in &c.colors {
            println!(
                "  {:>5.1}%  {}  {:<16} ({:?})",
                d.share, d.hex, d.name, d.family
            );
        }
    }
    if let Some(s) = &q.silhouette {
        println!(
            "\nsilhouette: bbox {}x{} at ({}, {}), area {:.0}%, confidence {:.2}",
            s.bbox.width,
            s.bbox.height,
            s.bbox.x,
            s.bbox.y,
            s.area_fraction * 100.0,
            s.confidence
        );
    }
    if let Some(a) = &q.attributes {
        println!("\nattributes (category: {}):", a.category);
        for p in &a.attributes {
            println!(
                "  {:<14} {:<14} p={:.2}",
                p.attribute, p.label, p.probability
            );
        }
    }
    if let Some(qs) = &q.quality {
        println!(
            "\nquality: overall {:.2} (sharpness {:.2}, brightness {:.2}, composition {:.2})",
            qs.overall, qs.sharpness, qs.brightness, qs.composition
        );
    }
    Ok(())
}

fn fmt(v: Option<f32>) -> String {
    v.map_or_else(|| "  -  ".to_string(), |v| format!("{v:.3}"))
}

/// Every `<category>/<photo>.jpg` under `dir`, sorted, as (path, category).
fn sample_photos(dir: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for cat in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let cat = cat?.path();
        if !cat.is_dir() {
            continue;
        }
        let name = cat
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        for f in std::fs::read_dir(&cat)? {
            let f = f?.path();
            if f.extension().is_some_and(|e| e == "jpg") {
                out.push((f, name.clone()));
            }
        }
    }
    out.sort();
    Ok(out)
}
