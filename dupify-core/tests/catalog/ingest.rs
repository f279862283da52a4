//! Catalog ingest (resume, per-item failures, progress, cancel), search by image and by text
//! on the seeded tiny CLIP test model and the committed fixture photos, plus the filter and
//! ranking options `exclude_brands`, `exclude_own_brand`, `min_score` and `count`.
//!
//! Needs `weights/test/clip/tiny` (made by `scripts/setup.sh`); fails, never skips, without it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use dupify_core::catalog::*;
use dupify_core::extractor::CancelToken;
use dupify_core::{Error, Extractor, ImageInput};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn extractor() -> Extractor {
    let dir = root().join("weights/test/clip/tiny");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: run scripts/setup.sh",
        dir.display()
    );
    Extractor::builder()
        .model_dir(dir)
        .device(dupify_core::Device::Cpu)
        .threads(2)
        .batch_size(3)
        .cache_capacity(0)
        .build()
        .unwrap()
}

/// The first `n` fixture photos, sorted, one per category first.
fn photos(n: usize) -> Vec<PathBuf> {
    let base = root().join("dupify-core/tests/assets/clothing");
    let mut cats: Vec<PathBuf> = std::fs::read_dir(&base)
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cats.sort();
    let mut per_cat: Vec<Vec<PathBuf>> = cats
        .iter()
        .map(|c| {
            let mut v: Vec<PathBuf> = std::fs::read_dir(c)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
                .collect();
            v.sort();
            v
        })
        .collect();
    let mut out = Vec::new();
    'outer: for round in 0.. {
        let mut any = false;
        for v in &mut per_cat {
            if round < v.len() {
                any = true;
                out.push(v[round].clone());
                if out.len() == n {
                    break 'outer;
                }
            }
        }
        assert!(any, "not enough fixture photos");
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn ns() -> Namespace {
    Namespace::new("acme", Environment::Test).unwrap()
}

fn items(paths: &[PathBuf]) -> Vec<IngestItem> {
    paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut prod = NewProduct::new(format!("sku-{i}"));
            prod.brand = Some(if i % 2 == 0 { "even" } else { "odd" }.into());
            prod.price = Some(10.0 + i as f64);
            IngestItem::new(prod, ImageInput::Path(p.clone()))
        })
        .collect()
}

type Calls = Arc<Mutex<Vec<(usize, usize)>>>;

fn recording() -> (IngestOptions, Calls) {
    let calls: Calls = Arc::new(Mutex::new(Vec::new()));
    let c = calls.clone();
    let opts = IngestOptions::default()
        .with_progress(move |d, t| c.lock().unwrap().push((d, t)))
        .with_cancel(CancelToken::new());
    (opts, calls)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn ingest_extracts_stores_and_resumes() {
    let ex = extractor();
    let cat = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
    let n = ns();
    let paths = photos(7);
    let (opts, calls) = recording();
    let r = cat.ingest(&n, &ex, items(&paths), &opts).unwrap();
    assert_eq!((r.indexed, r.skipped, r.failed.len()), (7, 0, 0), "{r:?}");
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls, (1..=7).map(|d| (d, 7)).collect::<Vec<_>>());
    assert_eq!(cat.count(&n, &ProductFilter::default()).unwrap(), 7);

    let dim = ex.embed_dim().unwrap();
    for (i, p) in paths.iter().enumerate() {
        let got = cat.get_by_external_id(&n, &format!("sku-{i}")).unwrap();
        let bytes = std::fs::read(p).unwrap();
        assert_eq!(got.image_hash.as_deref(), Some(sha256_hex(&bytes).as_str()));
        let clip = got.features.clip.as_ref().expect("clip stored");
        assert_eq!(clip.len(), dim);
        assert!((dot(clip, clip) - 1.0).abs() < 1e-4);
        assert!(got.features.shape.as_ref().is_some_and(|s| !s.is_empty()));
        assert!(!got.features.colors.is_empty());
        assert_eq!(
            got.brand.as_deref(),
            Some(if i % 2 == 0 { "even" } else { "odd" })
        );
        // stored embedding is the extractor's embedding of that photo
        let f = ex
            .extract(&ImageInput::Path(p.clone()), dupify_core::Ops::EMBED)
            .unwrap();
        let e = f.embedding.unwrap();
        assert!(dot(clip, &e) > 0.9999, "{}", dot(clip, &e));
    }

    // Resume: the same items again are all skipped, nothing rewritten.
    let before = cat.get_by_external_id(&n, "sku-0").unwrap();
    let r = cat
        .ingest(&n, &ex, items(&paths), &IngestOptions::default())
        .unwrap();
    assert_eq!((r.indexed, r.skipped, r.failed.len()), (0, 7, 0), "{r:?}");
    assert_eq!(cat.get_by_external_id(&n, "sku-0").unwrap(), before);

    // A changed image under an existing external_id is re-extracted; the rest skipped.
    let mut again = items(&paths);
    again[2].image = ImageInput::Path(paths[5].clone());
    let r = cat
        .ingest(&n, &ex, again, &IngestOptions::default())
        .unwrap();
    assert_eq!((r.indexed, r.skipped, r.failed.len()), (1, 6, 0), "{r:?}");
    let changed = cat.get_by_external_id(&n, "sku-2").unwrap();
    assert_eq!(
        changed.image_hash.as_deref(),
        Some(sha256_hex(&std::fs::read(&paths[5]).unwrap()).as_str())
    );
    assert_eq!(cat.count(&n, &ProductFilter::default()).unwrap(), 7);
}

#[test]
fn ingest_keeps_per_item_failures_and_goes_on() {
    let ex = extractor();
    let cat = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
    let n = ns();
    let paths = photos(4);
    let mut its = items(&paths);
    // corrupt image
    its[1].image = ImageInput::Bytes(b"this is not an image in any format".to_vec());
    // invalid product field
    its[2].product.currency = Some("dollars".into());
    // missing file
    its.push(IngestItem::new(
        NewProduct::new("missing"),
        ImageInput::Path(root().join("no/such/file.jpg")),
    ));
    let (opts, calls) = recording();
    let r = cat.ingest(&n, &ex, its, &opts).unwrap();
    assert_eq!(r.indexed, 2, "{r:?}");
    assert_eq!(r.skipped, 0);
    let mut failed: Vec<(&str, &str)> = r
        .failed
        .iter()
        .map(|f| (f.external_id.as_str(), f.code.as_str()))
        .collect();
    failed.sort();
    assert_eq!(failed.len(), 3, "{r:?}");
    assert_eq!(failed[0], ("missing", "invalid_parameter"));
    assert_eq!(failed[1], ("sku-1", "unsupported_format"));
    assert_eq!(failed[2], ("sku-2", "invalid_parameter"));
    assert!(r.failed.iter().all(|f| !f.message.is_empty()));
    assert_eq!(calls.lock().unwrap().last(), Some(&(5, 5)));
    assert!(cat.get_by_external_id(&n, "sku-0").is_ok());
    assert!(cat.get_by_external_id(&n, "sku-3").is_ok());
    assert!(matches!(
        cat.get_by_external_id(&n, "sku-1"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn cancelled_ingest_reports_every_item_and_stores_nothing() {
    let ex = extractor();
    let cat = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
    let n = ns();
    let (opts, calls) = recording();
    opts.cancel.cancel();
    let r = cat.ingest(&n, &ex, items(&photos(5)), &opts).unwrap();
    assert_eq!((r.indexed, r.skipped), (0, 0));
    assert_eq!(r.failed.len(), 5);
    assert!(r.failed.iter().all(|f| f.code == "cancelled"));
    assert_eq!(calls.lock().unwrap().last(), Some(&(5, 5)));
    assert_eq!(cat.count(&n, &ProductFilter::default()).unwrap(), 0);
}

#[test]
fn ingest_refuses_a_model_of_another_dimension() {
    let ex = extractor();
    let cat = Catalog::open_in_memory(CatalogOptions::default().with_dim(3)).unwrap();
    let e = cat
        .ingest(&ns(), &ex, items(&photos(1)), &IngestOptions::default())
        .unwrap_err();
    assert_eq!(e.code(), "invalid_parameter");
}

#[test]
fn search_image_finds_the_ingested_photo_first() {
    let ex = extractor();
    let cat = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
    let n = ns();
    let paths = photos(10);
    let r = cat
        .ingest(&n, &ex, items(&paths), &IngestOptions::default())
        .unwrap();
    assert_eq!(r.indexed, 10, "{r:?}");
    for (i, p) in paths.iter().enumerate().step_by(3) {
        let hits = cat
            .search_image(
                &n,
                &ex,
                &ImageInput::Path(p.clone()),
                SearchQuery::default(),
            )
            .unwrap();
        assert_eq!(hits.len(), 10);
        assert_eq!(hits[0].product.external_id, format!("sku-{i}"));
        let s = hits[0].scores;
        assert!(s.clip.unwrap() > 0.9999, "{s:?}");
        assert!(s.shape.unwrap() > 0.9999, "{s:?}");
        assert!(s.color.unwrap() > 0.9999, "{s:?}");
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }
    // filters apply to image search too
    let q = SearchQuery {
        filter: ProductFilter {
            exclude_brands: vec!["even".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let hits = cat
        .search_image(&n, &ex, &ImageInput::Path(paths[0].clone()), q)
        .unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits
        .iter()
        .all(|h| h.product.brand.as_deref() == Some("odd")));
}

#[test]
fn search_text_ranks_by_text_embedding() {
    let ex = extractor();
    let cat = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
    let n = ns();
    let r = cat
        .ingest(&n, &ex, items(&photos(6)), &IngestOptions::default())
        .unwrap();
    assert_eq!(r.indexed, 6);
    let text = "a photo of a red dress";
    let t = ex.embed_text(text).unwrap();
    let hits = cat
        .search_text(&n, &ex, text, SearchQuery::default())
        .unwrap();
    assert_eq!(hits.len(), 6);
    // clip channel = cosine to the text embedding, computed here from the stored vectors
    let mut expected: Vec<(String, f32)> = hits
        .iter()
        .map(|h| {
            let c = h.product.features.clip.as_ref().unwrap();
            (h.product.external_id.clone(), dot(c, &t))
        })
        .collect();
    for (h, (_, e)) in hits.iter().zip(&expected) {
        assert!((h.scores.clip.unwrap() - e).abs() < 1e-4);
        assert_eq!(h.scores.shape, None);
        assert_eq!(h.scores.color, None);
    }
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(hits[0].product.external_id, expected[0].0);
    assert!(matches!(
        cat.search_text(&n, &ex, "  ", SearchQuery::default()),
        Err(Error::MissingParameter { .. })
    ));
}

// ---- filter and ranking options on synthetic vectors (no model needed) ----

const DIM: usize = 8;

fn unit(seed: u64) -> Vec<f32> {
    crate::common::unit_vector(seed, DIM)
}

fn seeded() -> (Catalog, Namespace, Vec<Product>) {
    let cat = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
    let n = ns();
    let brands = [
        Some("acme"),
        Some("bolt"),
        None,
        Some("acme"),
        Some("cargo"),
    ];
    let ps: Vec<NewProduct> = (0..20)
        .map(|i| {
            let mut p = NewProduct::new(format!("p{i}"));
            p.brand = brands[i % brands.len()].map(String::from);
            p.category = Some(if i < 10 { "dress" } else { "shoes" }.into());
            p.price = Some(5.0 * (i + 1) as f64);
            p.features.clip = Some(unit(i as u64 + 1));
            p
        })
        .collect();
    let saved = cat.upsert_batch(&n, ps).unwrap();
    (cat, n, saved)
}

#[test]
fn exclude_brands_filters_search_list_and_count() {
    let (cat, n, saved) = seeded();
    let f = ProductFilter {
        exclude_brands: vec!["acme".into(), "cargo".into()],
        ..Default::default()
    };
    let expected: usize = saved
        .iter()
        .filter(|p| !matches!(p.brand.as_deref(), Some("acme" | "cargo")))
        .count();
    assert_eq!(expected, 8); // bolt ×4, no brand ×4
    assert_eq!(cat.count(&n, &f).unwrap(), expected as u64);
    let page = cat
        .list(
            &n,
            &Page {
                limit: 100,
                cursor: None,
            },
            &f,
        )
        .unwrap();
    assert_eq!(page.items.len(), expected);
    let mut q = SearchQuery::by_embedding(unit(1));
    q.filter = f.clone();
    q.limit = 100;
    let hits = cat.search(&n, &q).unwrap();
    assert_eq!(hits.len(), expected);
    assert!(hits
        .iter()
        .all(|h| !matches!(h.product.brand.as_deref(), Some("acme" | "cargo"))));
    // combined with other fields
    let f2 = ProductFilter {
        category: Some("dress".into()),
        ..f
    };
    assert_eq!(cat.count(&n, &f2).unwrap(), 4);
}

#[test]
fn exclude_own_brand_drops_the_query_products_brand() {
    let (cat, n, saved) = seeded();
    let src = &saved[0]; // brand acme
    let mut q = SearchQuery::dupes_of(src.id.clone());
    q.exclude_own_brand = true;
    q.limit = 100;
    let hits = cat.search(&n, &q).unwrap();
    let others = saved
        .iter()
        .filter(|p| p.brand.as_deref() != Some("acme"))
        .count();
    assert_eq!(hits.len(), others);
    assert!(hits
        .iter()
        .all(|h| h.product.brand.as_deref() != Some("acme")));
    assert!(hits.iter().any(|h| h.product.brand.is_none()));
    // a query product without a brand excludes nothing but itself
    let nobrand = &saved[2];
    let mut q = SearchQuery::dupes_of(nobrand.id.clone());
    q.exclude_own_brand = true;
    q.limit = 100;
    assert_eq!(cat.search(&n, &q).unwrap().len(), saved.len() - 1);
    // needs by_product
    let mut q = SearchQuery::by_embedding(unit(1));
    q.exclude_own_brand = true;
    assert!(matches!(
        cat.search(&n, &q),
        Err(Error::MissingParameter { .. })
    ));
}

#[test]
fn min_score_drops_weak_hits_before_paging() {
    let (cat, n, saved) = seeded();
    let query = unit(1);
    // expected scores computed here: clip only, so score = cosine
    let mut sims: Vec<f32> = saved
        .iter()
        .map(|p| dot(p.features.clip.as_ref().unwrap(), &query))
        .collect();
    sims.sort_by(|a, b| b.total_cmp(a));
    let threshold = (sims[4] + sims[5]) / 2.0;
    let mut q = SearchQuery::by_embedding(query.clone());
    q.min_score = Some(threshold);
    q.limit = 100;
    let hits = cat.search(&n, &q).unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h.score >= threshold));
    q.offset = 3;
    assert_eq!(cat.search(&n, &q).unwrap().len(), 2);
    q.min_score = Some(f32::NAN);
    assert!(matches!(
        cat.search(&n, &q),
        Err(Error::InvalidParameter { .. })
    ));
}

#[test]
fn count_follows_filters_and_namespaces() {
    let (cat, n, _) = seeded();
    assert_eq!(cat.count(&n, &ProductFilter::default()).unwrap(), 20);
    let f = ProductFilter {
        category: Some("shoes".into()),
        min_price: Some(60.0),
        ..Default::default()
    };
    // shoes are p10..p19 priced 55..100 → 60..100 is p11..p19
    assert_eq!(cat.count(&n, &f).unwrap(), 9);
    let other = Namespace::new("acme", Environment::Live).unwrap();
    assert_eq!(cat.count(&other, &ProductFilter::default()).unwrap(), 0);
    let bad = ProductFilter {
        min_price: Some(f64::NAN),
        ..Default::default()
    };
    assert!(matches!(
        cat.count(&other, &bad),
        Err(Error::InvalidParameter { .. })
    ));
}
