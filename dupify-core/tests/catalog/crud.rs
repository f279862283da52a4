//! Catalog behaviour: CRUD and upsert, namespaces, filters, deletion, persistence, and
//! concurrent readers.

use std::sync::Arc;

use dupify_core::catalog::*;
use dupify_core::Error;
use serde_json::json;

const DIM: usize = 16;

/// Deterministic pseudo-random unit vector (xorshift), independent of the code under test.
fn vec_for(seed: u64) -> Vec<f32> {
    crate::common::unit_vector(seed, DIM)
}

fn product(ext: &str, seed: u64) -> NewProduct {
    let mut p = NewProduct::new(ext);
    p.title = Some(format!("title {ext}"));
    p.features.clip = Some(vec_for(seed));
    p.features.model_id = Some("test-model".into());
    p
}

fn ns(account: &str, env: Environment) -> Namespace {
    Namespace::new(account, env).unwrap()
}

fn mem() -> Catalog {
    Catalog::open_in_memory(CatalogOptions::default()).unwrap()
}

#[test]
fn crud_and_upsert_by_external_id() {
    let cat = mem();
    let n = ns("acme", Environment::Live);
    let mut p = product("ext-1", 1);
    p.price = Some(19.5);
    p.metadata = json!({"color": "red"});
    let a = cat.upsert(&n, p.clone()).unwrap();
    assert_eq!(a.currency, "USD");
    assert_eq!(uuid::Uuid::parse_str(&a.id).unwrap().get_version_num(), 4);
    assert_eq!(cat.get(&n, &a.id).unwrap(), a);
    assert_eq!(cat.get_by_external_id(&n, "ext-1").unwrap().id, a.id);
    assert_eq!(a.features.model_id.as_deref(), Some("test-model"));

    // upsert keeps id and created_at, replaces fields
    p.title = Some("renamed".into());
    p.currency = Some("eur".into());
    let b = cat.upsert(&n, p).unwrap();
    assert_eq!(b.id, a.id);
    assert_eq!(b.created_at_ms, a.created_at_ms);
    assert_eq!(b.currency, "EUR");
    let got = cat.get(&n, &a.id).unwrap();
    assert_eq!(got.title.as_deref(), Some("renamed"));
    let page = cat
        .list(&n, &Page::default(), &ProductFilter::default())
        .unwrap();
    assert_eq!(page.items.len(), 1);

    cat.delete(&n, &a.id).unwrap();
    assert!(matches!(cat.get(&n, &a.id), Err(Error::NotFound { .. })));
    assert!(matches!(cat.delete(&n, &a.id), Err(Error::NotFound { .. })));
}

#[test]
fn batch_is_all_or_nothing_and_bad_input_is_typed() {
    let cat = mem();
    let n = ns("acme", Environment::Live);
    cat.upsert(&n, product("first", 1)).unwrap();
    let mut bad = product("b", 3);
    bad.features.clip = Some(vec![1.0; DIM + 1]);
    let err = cat
        .upsert_batch(&n, vec![product("a", 2), bad])
        .unwrap_err();
    assert_eq!(err.code(), "invalid_parameter");
    assert!(err.to_string().contains("dimension"), "{err}");
    assert!(cat.get_by_external_id(&n, "a").is_err());

    for (field, p) in [
        ("price", {
            let mut p = product("x", 1);
            p.price = Some(f64::NAN);
            p
        }),
        ("currency", {
            let mut p = product("x", 1);
            p.currency = Some("dollars".into());
            p
        }),
        ("external_id", product("", 1)),
        ("metadata", {
            let mut p = product("x", 1);
            p.metadata = json!([1, 2]);
            p
        }),
        ("features.clip", {
            let mut p = product("x", 1);
            p.features.clip = Some(vec![0.0; DIM]);
            p
        }),
    ] {
        let e = cat.upsert(&n, p).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidParameter { name, .. } if name == field),
            "{field}: {e}"
        );
    }
    let saved = cat
        .upsert_batch(&n, (0..10).map(|i| product(&format!("p{i}"), i)).collect())
        .unwrap();
    assert_eq!(saved.len(), 10);
}

#[test]
fn namespaces_are_isolated() {
    let cat = mem();
    let live = ns("acme", Environment::Live);
    let test = ns("acme", Environment::Test);
    let other = ns("globex", Environment::Live);
    let a = cat.upsert(&live, product("same-ext", 1)).unwrap();
    let b = cat.upsert(&test, product("same-ext", 2)).unwrap();
    assert_ne!(a.id, b.id);
    // test cannot read, delete or search live
    assert!(cat.get(&test, &a.id).is_err());
    assert!(matches!(
        cat.delete(&test, &a.id),
        Err(Error::NotFound { .. })
    ));
    assert!(cat.get(&live, &a.id).is_ok());
    let hits = cat
        .search(&test, &SearchQuery::by_embedding(vec_for(1)))
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].product.id, b.id);
    assert!(cat
        .search(&other, &SearchQuery::by_embedding(vec_for(1)))
        .unwrap()
        .is_empty());
    assert!(matches!(
        cat.search(&test, &SearchQuery::dupes_of(a.id.clone())),
        Err(Error::NotFound { .. })
    ));
    let stored = cat
        .get_by_external_id(&live, "same-ext")
        .unwrap()
        .features
        .clip;
    let stored = stored.unwrap();
    assert!(stored
        .iter()
        .zip(vec_for(1))
        .all(|(a, b)| (a - b).abs() < 1e-6));
}

#[test]
fn list_paginates_with_cursor_and_filter() {
    let cat = mem();
    let n = ns("acme", Environment::Live);
    for i in 0..25u64 {
        let mut p = product(&format!("p{i:02}"), i);
        p.category = Some(if i % 2 == 0 { "dress" } else { "shoe" }.into());
        cat.upsert(&n, p).unwrap();
    }
    let mut seen = Vec::new();
    let mut page = Page {
        limit: 10,
        cursor: None,
    };
    loop {
        let res = cat.list(&n, &page, &ProductFilter::default()).unwrap();
        seen.extend(res.items.into_iter().map(|p| p.external_id));
        match res.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    let want: Vec<String> = (0..25).map(|i| format!("p{i:02}")).collect();
    assert_eq!(seen, want);
    let f = ProductFilter {
        category: Some("dress".into()),
        ..Default::default()
    };
    let res = cat
        .list(
            &n,
            &Page {
                limit: 100,
                cursor: None,
            },
            &f,
        )
        .unwrap();
    assert_eq!(res.items.len(), 13);
    let bad = Page {
        limit: 10,
        cursor: Some("nonsense".into()),
    };
    assert_eq!(
        cat.list(&n, &bad, &ProductFilter::default())
            .unwrap_err()
            .code(),
        "invalid_parameter"
    );
}

/// A catalog where product i has category/brand/price/metadata from i, so every filter's
/// expected result set is computable independently.
fn filter_fixture(cat: &Catalog, n: &Namespace) -> Vec<Product> {
    let products: Vec<NewProduct> = (0..40u64)
        .map(|i| {
            let mut p = product(&format!("p{i}"), i);
            p.category = Some(["dress", "shoe"][(i % 2) as usize].into());
            p.brand = Some(["zara", "gucci", "hm"][(i % 3) as usize].into());
            p.price = Some(10.0 * (i + 1) as f64);
            p.currency = Some(if i % 5 == 0 { "EUR" } else { "USD" }.into());
            p.metadata = json!({"season": if i % 4 == 0 {"summer"} else {"winter"}, "size": i % 3, "eco": i % 2 == 0});
            p
        })
        .collect();
    cat.upsert_batch(n, products).unwrap()
}

fn search_all(cat: &Catalog, n: &Namespace, mut q: SearchQuery) -> Vec<SearchHit> {
    q.limit = 1000;
    cat.search(n, &q).unwrap()
}

#[test]
fn every_filter_restricts_search_results() {
    for brute_below in [4096usize, 8] {
        let opts = CatalogOptions::default()
            .with_index(IndexParams::default().with_brute_force_below(brute_below));
        let cat = Catalog::open_in_memory(opts).unwrap();
        let n = ns("acme", Environment::Live);
        let all = filter_fixture(&cat, &n);
        let check = |f: ProductFilter, pred: &dyn Fn(&Product) -> bool| {
            let q = SearchQuery {
                embedding: Some(vec_for(3)),
                filter: f.clone(),
                ..Default::default()
            };
            let mut got: Vec<String> = search_all(&cat, &n, q)
                .into_iter()
                .map(|h| h.product.external_id)
                .collect();
            let mut want: Vec<String> = all
                .iter()
                .filter(|p| pred(p))
                .map(|p| p.external_id.clone())
                .collect();
            got.sort();
            want.sort();
            assert!(!want.is_empty(), "{f:?}");
            assert_eq!(got, want, "filter {f:?}");
        };
        check(
            ProductFilter {
                category: Some("shoe".into()),
                ..Default::default()
            },
            &|p| p.category.as_deref() == Some("shoe"),
        );
        check(
            ProductFilter {
                brand: Some("gucci".into()),
                ..Default::default()
            },
            &|p| p.brand.as_deref() == Some("gucci"),
        );
        check(
            ProductFilter {
                min_price: Some(100.0),
                max_price: Some(250.0),
                ..Default::default()
            },
            &|p| (100.0..=250.0).contains(&p.price.unwrap()),
        );
        check(
            ProductFilter {
                currency: Some("eur".into()),
                ..Default::default()
            },
            &|p| p.currency == "EUR",
        );
        check(
            ProductFilter {
                metadata_eq: vec![("season".into(), json!("summer"))],
                ..Default::default()
            },
            &|p| p.metadata["season"] == "summer",
        );
        check(
            ProductFilter {
                metadata_eq: vec![("size".into(), json!(2)), ("eco".into(), json!(true))],
                ..Default::default()
            },
            &|p| p.metadata["size"] == 2 && p.metadata["eco"] == true,
        );
        check(
            ProductFilter {
                category: Some("dress".into()),
                brand: Some("zara".into()),
                max_price: Some(300.0),
                ..Default::default()
            },
            &|p| {
                p.category.as_deref() == Some("dress")
                    && p.brand.as_deref() == Some("zara")
                    && p.price.unwrap() <= 300.0
            },
        );
        let bad = ProductFilter {
            metadata_eq: vec![("a".into(), json!({"nested": 1}))],
            ..Default::default()
        };
        let q = SearchQuery {
            embedding: Some(vec_for(3)),
            filter: bad,
            ..Default::default()
        };
        assert_eq!(cat.search(&n, &q).unwrap_err().code(), "invalid_parameter");
    }
}

#[test]
fn relative_price_dupe_query() {
    let cat = mem();
    let n = ns("acme", Environment::Live);
    let all = filter_fixture(&cat, &n);
    let src = &all[29]; // price 300, USD
    assert_eq!((src.price, src.currency.as_str()), (Some(300.0), "USD"));
    let q = SearchQuery {
        by_product: Some(src.id.clone()),
        cheaper_by_percent: Some(40.0),
        ..Default::default()
    };
    let got = search_all(&cat, &n, q);
    let mut want: Vec<&str> = all
        .iter()
        .filter(|p| p.currency == "USD" && p.price.unwrap() <= 180.0 && p.id != src.id)
        .map(|p| p.external_id.as_str())
        .collect();
    let mut ids: Vec<&str> = got.iter().map(|h| h.product.external_id.as_str()).collect();
    want.sort();
    ids.sort();
    assert_eq!(ids, want);
    // without the price rule, the source itself is never a dupe of itself, and results are
    // sorted by score
    let got = search_all(&cat, &n, SearchQuery::dupes_of(src.id.clone()));
    assert_eq!(got.len(), 39);
    assert!(got.iter().all(|h| h.product.id != src.id));
    assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
    // missing by_product or price → typed errors
    let q = SearchQuery {
        embedding: Some(vec_for(1)),
        cheaper_by_percent: Some(10.0),
        ..Default::default()
    };
    assert_eq!(cat.search(&n, &q).unwrap_err().code(), "missing_parameter");
    let no_price = cat.upsert(&n, product("np", 77)).unwrap();
    let q = SearchQuery {
        by_product: Some(no_price.id),
        cheaper_by_percent: Some(10.0),
        ..Default::default()
    };
    assert_eq!(cat.search(&n, &q).unwrap_err().code(), "invalid_parameter");
}

#[test]
fn channel_scores_and_weights() {
    let cat = mem();
    let n = ns("acme", Environment::Live);
    let red = ColorSwatch {
        lab: [53.2, 80.1, 67.2],
        share: 1.0,
    };
    let blue = ColorSwatch {
        lab: [32.3, 79.2, -107.9],
        share: 1.0,
    };
    let mut a = product("a", 1);
    a.features.colors = vec![red];
    a.features.shape = Some(vec![1.0, 0.0, 0.0]);
    let mut b = product("b", 1); // same CLIP as a
    b.features.colors = vec![blue];
    b.features.shape = Some(vec![0.0, 1.0, 0.0]);
    cat.upsert_batch(&n, vec![a, b]).unwrap();
    let q = SearchQuery {
        embedding: Some(vec_for(1)),
        colors: vec![red],
        shape: Some(vec![1.0, 0.0, 0.0]),
        weights: Some(ChannelWeights {
            clip: 1.0,
            shape: 1.0,
            color: 1.0,
        }),
        ..Default::default()
    };
    let hits = cat.search(&n, &q).unwrap();
    assert_eq!(hits[0].product.external_id, "a");
    let s = hits[0].scores;
    assert!((s.clip.unwrap() - 1.0).abs() < 1e-5);
    assert!((s.shape.unwrap() - 1.0).abs() < 1e-5);
    assert_eq!(s.color, Some(1.0));
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    let s = hits[1].scores;
    assert!(s.shape.unwrap().abs() < 1e-6);
    assert!(s.color.unwrap() < 0.5);
    // colour-only search (no embedding) also works
    let q = SearchQuery {
        colors: vec![blue],
        ..Default::default()
    };
    assert_eq!(cat.search(&n, &q).unwrap()[0].product.external_id, "b");
    let q = SearchQuery::default();
    assert_eq!(cat.search(&n, &q).unwrap_err().code(), "missing_parameter");
}

#[test]
fn deleted_and_replaced_products_are_never_returned() {
    for brute_below in [4096usize, 16] {
        let opts = CatalogOptions::default()
            .with_index(IndexParams::default().with_brute_force_below(brute_below));
        let cat = Catalog::open_in_memory(opts).unwrap();
        let n = ns("acme", Environment::Live);
        let saved = cat
            .upsert_batch(&n, (0..200).map(|i| product(&format!("p{i}"), i)).collect())
            .unwrap();
        for p in saved.iter().step_by(3) {
            cat.delete(&n, &p.id).unwrap();
        }
        // re-embed p1: its old vector must not find it any more
        cat.upsert(&n, product("p1", 10_001)).unwrap();
        for (i, p) in saved.iter().enumerate() {
            let hits = cat
                .search(
                    &n,
                    &SearchQuery {
                        embedding: Some(vec_for(i as u64)),
                        limit: 50,
                        ..Default::default()
                    },
                )
                .unwrap();
            let gone = i % 3 == 0;
            if gone {
                assert!(hits.iter().all(|h| h.product.id != p.id));
            } else if i == 1 {
                assert_ne!(hits[0].product.id, p.id);
            } else {
                assert_eq!(hits[0].product.id, p.id, "product {i}");
            }
        }
        let hits = cat
            .search(
                &n,
                &SearchQuery {
                    embedding: Some(vec_for(10_001)),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(hits[0].product.external_id, "p1");
    }
}

#[test]
fn reopen_gives_identical_search_results() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cat.db");
    let opts =
        CatalogOptions::default().with_index(IndexParams::default().with_brute_force_below(64));
    let n = ns("acme", Environment::Live);
    let queries: Vec<SearchQuery> = (0..20)
        .map(|i| SearchQuery {
            embedding: Some(vec_for(5000 + i)),
            limit: 20,
            ..Default::default()
        })
        .collect();
    let before: Vec<Vec<(String, f32)>>;
    {
        let cat = Catalog::open(&path, opts.clone()).unwrap();
        let saved = cat
            .upsert_batch(&n, (0..500).map(|i| product(&format!("p{i}"), i)).collect())
            .unwrap();
        cat.delete(&n, &saved[7].id).unwrap();
        before = queries
            .iter()
            .map(|q| {
                cat.search(&n, q)
                    .unwrap()
                    .into_iter()
                    .map(|h| (h.product.id, h.score))
                    .collect()
            })
            .collect();
        cat.flush().unwrap();
    }
    let cat = Catalog::open(&path, opts.clone()).unwrap();
    let rep = cat.index_report().unwrap();
    assert_eq!(rep.len(), 1);
    assert_eq!(rep[0].mode, IndexMode::Ann);
    assert_eq!(rep[0].source, IndexSource::Loaded);
    assert_eq!(rep[0].live, 499);
    assert_eq!(rep[0].tombstones, 1);
    let after: Vec<Vec<(String, f32)>> = queries
        .iter()
        .map(|q| {
            cat.search(&n, q)
                .unwrap()
                .into_iter()
                .map(|h| (h.product.id, h.score))
                .collect()
        })
        .collect();
    assert_eq!(before, after);

    // A change committed after the last save is reconciled on open, not lost.
    let late = cat.upsert(&n, product("late", 9999)).unwrap();
    // simulate a crash: the graph on disk is not re-saved
    std::mem::forget(cat);
    let cat = Catalog::open(&path, opts.clone()).unwrap();
    assert_eq!(
        cat.index_report().unwrap()[0].source,
        IndexSource::Reconciled
    );
    let hits = cat
        .search(&n, &SearchQuery::by_embedding(vec_for(9999)))
        .unwrap();
    assert_eq!(hits[0].product.id, late.id);
    drop(cat);

    // A corrupt graph is rebuilt from the database.
    let ann = dir.path().join("cat.db.ann");
    for entry in std::fs::read_dir(&ann).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            for f in std::fs::read_dir(&p).unwrap() {
                std::fs::write(f.unwrap().path(), b"corrupt").unwrap();
            }
        }
    }
    let cat = Catalog::open(&path, opts).unwrap();
    assert_eq!(cat.index_report().unwrap()[0].source, IndexSource::Rebuilt);
    let hits = cat
        .search(&n, &SearchQuery::by_embedding(vec_for(9999)))
        .unwrap();
    assert_eq!(hits[0].product.id, late.id);
}

#[test]
fn dimension_is_fixed_by_options_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cat.db");
    let n = ns("acme", Environment::Live);
    {
        let cat = Catalog::open(&path, CatalogOptions::default()).unwrap();
        cat.upsert(&n, product("a", 1)).unwrap();
        let e = cat
            .search(&n, &SearchQuery::by_embedding(vec![1.0; 7]))
            .unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
    }
    assert!(Catalog::open(&path, CatalogOptions::default().with_dim(DIM)).is_ok());
    assert!(matches!(
        Catalog::open(&path, CatalogOptions::default().with_dim(512)),
        Err(Error::InvalidParameter { .. })
    ));
}

#[test]
fn readers_keep_working_during_writes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = CatalogOptions::default()
        .with_index(IndexParams::default().with_brute_force_below(100))
        .with_synchronous_full(false);
    let cat = Arc::new(Catalog::open(dir.path().join("cat.db"), opts).unwrap());
    let n = ns("acme", Environment::Live);
    let seed = cat
        .upsert_batch(&n, (0..150).map(|i| product(&format!("s{i}"), i)).collect())
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|t| {
            let (cat, n, stop, seed) = (cat.clone(), n.clone(), stop.clone(), seed.clone());
            std::thread::spawn(move || {
                let mut reads = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || reads < 20 {
                    let i = (reads * 7 + t) % seed.len();
                    let hits = cat
                        .search(&n, &SearchQuery::by_embedding(vec_for(i as u64)))
                        .unwrap();
                    assert_eq!(hits[0].product.id, seed[i].id);
                    assert_eq!(cat.get(&n, &seed[i].id).unwrap().id, seed[i].id);
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for b in 0..10u64 {
        cat.upsert_batch(
            &n,
            (0..20)
                .map(|i| product(&format!("w{b}-{i}"), 1000 + b * 20 + i))
                .collect(),
        )
        .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() >= 20);
    }
    let page = cat
        .list(
            &n,
            &Page {
                limit: 1000,
                cursor: None,
            },
            &ProductFilter::default(),
        )
        .unwrap();
    assert_eq!(page.items.len(), 350);
}

/// The saved graph's file, found through the directory the catalog wrote.
fn graph_file(ann: &std::path::Path) -> std::path::PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(ann)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "one saved graph expected: {dirs:?}");
    let files: Vec<_> = std::fs::read_dir(&dirs[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one graph file expected: {files:?}");
    files[0].clone()
}

fn cut(path: &std::path::Path, bytes: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let len = f.metadata().unwrap().len();
    assert!(len > bytes, "{} is only {len} bytes", path.display());
    f.set_len(len - bytes).unwrap();
}

#[test]
fn a_torn_graph_file_is_rebuilt_with_the_same_results() {
    // The graph library trusts its files (a damaged one can crash it inside C++): a torn
    // file, and a damaged file of the right length, must instead give a rebuild from SQLite.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cat.db");
    let ann = dir.path().join("cat.db.ann");
    // ef_search above the point count: the graph search is exhaustive, so exact
    let opts = CatalogOptions::default().with_index(
        IndexParams::default()
            .with_brute_force_below(64)
            .with_ef_search(512),
    );
    let n = ns("acme", Environment::Live);
    let queries: Vec<SearchQuery> = (0..10)
        .map(|i| SearchQuery {
            embedding: Some(vec_for(7000 + i)),
            limit: 10,
            ..Default::default()
        })
        .collect();
    let ids = |cat: &Catalog| -> Vec<Vec<String>> {
        queries
            .iter()
            .map(|q| {
                cat.search(&n, q)
                    .unwrap()
                    .into_iter()
                    .map(|h| h.product.external_id)
                    .collect()
            })
            .collect()
    };
    // exact answers, from the same vectors searched by brute force
    let exact = {
        let cat = Catalog::open_in_memory(
            CatalogOptions::default()
                .with_index(IndexParams::default().with_brute_force_below(10_000)),
        )
        .unwrap();
        cat.upsert_batch(&n, (0..300).map(|i| product(&format!("p{i}"), i)).collect())
            .unwrap();
        assert_eq!(cat.index_report().unwrap()[0].mode, IndexMode::Exact);
        ids(&cat)
    };
    {
        let cat = Catalog::open(&path, opts.clone()).unwrap();
        cat.upsert_batch(&n, (0..300).map(|i| product(&format!("p{i}"), i)).collect())
            .unwrap();
        cat.flush().unwrap();
    }
    // the file loses its last 100 bytes (a torn write)
    cut(&graph_file(&ann), 100);
    {
        let cat = Catalog::open(&path, opts.clone()).unwrap();
        let rep = cat.index_report().unwrap();
        assert_eq!(rep[0].source, IndexSource::Rebuilt);
        assert_eq!(rep[0].mode, IndexMode::Ann);
        assert_eq!(rep[0].live, 300);
        assert_eq!(ids(&cat), exact);
    } // the rebuilt graph is saved on drop
    let cat = Catalog::open(&path, opts.clone()).unwrap();
    assert_eq!(cat.index_report().unwrap()[0].source, IndexSource::Loaded);
    assert_eq!(ids(&cat), exact);
    drop(cat);
    // now it loses most of itself
    let len = std::fs::metadata(graph_file(&ann)).unwrap().len();
    cut(&graph_file(&ann), len - 64);
    let cat = Catalog::open(&path, opts.clone()).unwrap();
    assert_eq!(cat.index_report().unwrap()[0].source, IndexSource::Rebuilt);
    assert_eq!(ids(&cat), exact);
    drop(cat);
    // files of the right length with changed bytes (the header's first byte, the middle):
    // checksums refuse them before the graph library reads them
    for at in [0usize, usize::MAX] {
        // each reopen below saves a rebuilt graph in a new directory on drop
        let file = graph_file(&ann);
        let mut bytes = std::fs::read(&file).unwrap();
        let at = at.min(bytes.len() / 2);
        bytes[at] ^= 0xff;
        std::fs::write(&file, &bytes).unwrap();
        let cat = Catalog::open(&path, opts.clone()).unwrap();
        assert_eq!(cat.index_report().unwrap()[0].source, IndexSource::Rebuilt);
        assert_eq!(ids(&cat), exact);
    }
}

/// A namespace never mixes two models' embeddings: the first tagged embedding binds it;
/// another model's embedding is refused on upsert and as a query; `clear_embeddings` is the
/// explicit switch; other namespaces are independent.
#[test]
fn a_namespace_is_bound_to_one_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let cat = Catalog::open(&path, CatalogOptions::default()).unwrap();
    let n = ns("acme", Environment::Test);
    assert_eq!(cat.namespace_model(&n).unwrap(), None);
    cat.upsert(&n, product("a", 1)).unwrap();
    assert_eq!(
        cat.namespace_model(&n).unwrap().as_deref(),
        Some("test-model")
    );

    let mut other = product("b", 2);
    other.features.model_id = Some("another-model".into());
    let e = cat.upsert(&n, other.clone()).unwrap_err();
    assert_eq!(e.code(), "invalid_parameter");
    assert!(e.to_string().contains("never mixes"), "{e}");
    assert!(
        cat.get_by_external_id(&n, "b").is_err(),
        "refused upsert stored nothing"
    );

    let mut q = SearchQuery::by_embedding(vec_for(1));
    q.model_id = Some("another-model".into());
    assert_eq!(cat.search(&n, &q).unwrap_err().code(), "invalid_parameter");
    q.model_id = Some("test-model".into());
    assert_eq!(cat.search(&n, &q).unwrap()[0].product.external_id, "a");
    // A query that does not say its model is the caller's responsibility.
    q.model_id = None;
    assert_eq!(cat.search(&n, &q).unwrap().len(), 1);

    // Another namespace binds on its own.
    let m = ns("acme", Environment::Live);
    cat.upsert(&m, other.clone()).unwrap();
    assert_eq!(
        cat.namespace_model(&m).unwrap().as_deref(),
        Some("another-model")
    );

    // The binding survives a reopen, and the switch is explicit.
    drop(cat);
    let cat = Catalog::open(&path, CatalogOptions::default()).unwrap();
    assert!(cat.upsert(&n, other.clone()).is_err());
    assert_eq!(cat.clear_embeddings(&n).unwrap(), 1);
    assert_eq!(cat.namespace_model(&n).unwrap(), None);
    let kept = cat.get_by_external_id(&n, "a").unwrap();
    assert!(
        kept.features.clip.is_none(),
        "embedding dropped, product kept"
    );
    cat.upsert(&n, other).unwrap();
    assert_eq!(
        cat.namespace_model(&n).unwrap().as_deref(),
        Some("another-model")
    );
    let hits = cat
        .search(&n, &SearchQuery::by_embedding(vec_for(2)))
        .unwrap();
    assert_eq!(hits[0].product.external_id, "b");
}

/// A catalog written before namespaces recorded their model gets the binding once, at open,
/// from its stored model-tagged embeddings.
#[test]
fn a_catalog_from_before_model_binding_is_bound_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let n = ns("acme", Environment::Test);
    let cat = Catalog::open(&path, CatalogOptions::default()).unwrap();
    cat.upsert(&n, product("a", 1)).unwrap();
    drop(cat);
    // What an older version left: the products, no recorded models.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let removed = conn
        .execute(
            "DELETE FROM catalog_meta WHERE key LIKE 'model:%' OR key = 'ns_models_recorded'",
            [],
        )
        .unwrap();
    assert_eq!(removed, 2);
    drop(conn);
    let cat = Catalog::open(&path, CatalogOptions::default()).unwrap();
    assert_eq!(
        cat.namespace_model(&n).unwrap().as_deref(),
        Some("test-model")
    );
    let mut other = product("b", 2);
    other.features.model_id = Some("another-model".into());
    assert_eq!(
        cat.upsert(&n, other).unwrap_err().code(),
        "invalid_parameter"
    );
}

#[test]
fn the_queue_is_durable_and_deleting_a_product_drops_its_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let ns = Namespace::new("acme", Environment::Live).unwrap();
    let (kept, gone) = {
        let cat = Catalog::open(&path, CatalogOptions::default()).unwrap();
        let mut a = NewProduct::new("a");
        a.image_url = Some("https://shop.example/a.jpg".into());
        let mut b = NewProduct::new("b");
        b.image_url = Some("https://shop.example/b.jpg".into());
        (cat.enqueue(&ns, a).unwrap(), cat.enqueue(&ns, b).unwrap())
        // Dropped without completing: as a process that stopped mid-queue.
    };
    let cat = Catalog::open(&path, CatalogOptions::default()).unwrap();
    let jobs = cat.pending_jobs(10).unwrap();
    let ids: Vec<&str> = jobs.iter().map(|j| j.product_id.as_str()).collect();
    assert_eq!(ids, [kept.id.as_str(), gone.id.as_str()]);
    assert_eq!(
        cat.get(&ns, &kept.id).unwrap().embedding_status,
        EmbeddingStatus::Processing
    );
    cat.delete(&ns, &gone.id).unwrap();
    let jobs = cat.pending_jobs(10).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].product_id, kept.id);
    // Listing shows queued products with their status.
    let page = cat
        .list(&ns, &Page::default(), &ProductFilter::default())
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].embedding_status, EmbeddingStatus::Processing);
}
