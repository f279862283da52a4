//! Search answers filters and ranking from memory (no per-candidate SQLite reads); these
//! tests hold it to the SQL truth: every filter selects exactly the rows `list`/`count`
//! (SQLite) select, in exact mode and on the graph, and the in-memory ranking data survive a
//! reopen from the saved graph unchanged.

use dupify_core::catalog::*;
use serde_json::json;

const DIM: usize = 12;

use crate::common::rng::XorShift as Rng;

const BRANDS: [Option<&str>; 4] = [Some("acme"), Some("bolt"), Some("cargo"), None];
const CATS: [&str; 3] = ["dress", "shoes", "hat"];
const CURRENCIES: [&str; 2] = ["USD", "EUR"];

fn products(n: usize, seed: u64) -> Vec<NewProduct> {
    let mut r = Rng(seed);
    (0..n)
        .map(|i| {
            let mut p = NewProduct::new(format!("p{i}"));
            p.brand = BRANDS[i % 4].map(String::from);
            p.category = Some(CATS[(i / 4) % 3].into());
            p.currency = Some(CURRENCIES[i % 2].to_lowercase());
            p.price = (i % 7 != 0).then_some((i % 50) as f64 + 0.5);
            p.metadata = json!({"size": if i % 3 == 0 { "M" } else { "L" }});
            p.features.clip = Some(r.unit(DIM));
            p.features.shape = Some(r.unit(6));
            p.features.colors = vec![ColorSwatch {
                lab: [
                    r.unif() * 100.0,
                    r.unif() * 60.0 - 30.0,
                    r.unif() * 60.0 - 30.0,
                ],
                share: 1.0,
            }];
            p
        })
        .collect()
}

fn filters() -> Vec<ProductFilter> {
    let f = ProductFilter::default;
    vec![
        f(),
        ProductFilter {
            brand: Some("acme".into()),
            ..f()
        },
        ProductFilter {
            brand: Some("nobody".into()),
            ..f()
        },
        ProductFilter {
            exclude_brands: vec!["acme".into(), "bolt".into(), "nobody".into()],
            ..f()
        },
        ProductFilter {
            category: Some("shoes".into()),
            currency: Some("eur".into()),
            ..f()
        },
        ProductFilter {
            min_price: Some(10.0),
            max_price: Some(20.5),
            ..f()
        },
        ProductFilter {
            max_price: Some(5.0),
            category: Some("hat".into()),
            ..f()
        },
        ProductFilter {
            metadata_eq: vec![("size".into(), json!("M"))],
            exclude_brands: vec!["cargo".into()],
            ..f()
        },
        ProductFilter {
            metadata_eq: vec![("size".into(), json!("L"))],
            brand: Some("bolt".into()),
            min_price: Some(3.0),
            ..f()
        },
    ]
}

fn listed(cat: &Catalog, ns: &Namespace, filter: &ProductFilter) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = cat
            .list(
                ns,
                &Page {
                    limit: 1000,
                    cursor,
                },
                filter,
            )
            .unwrap();
        out.extend(page.items.into_iter().map(|p| p.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    out.sort();
    out
}

fn searched(cat: &Catalog, ns: &Namespace, q: &[f32], filter: &ProductFilter) -> Vec<String> {
    let mut sq = SearchQuery::by_embedding(q.to_vec());
    sq.filter = filter.clone();
    sq.limit = 1000;
    let mut ids: Vec<String> = cat
        .search(ns, &sq)
        .unwrap()
        .into_iter()
        .map(|h| h.product.id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn exact_mode_filters_select_what_sql_selects() {
    let cat = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
    let ns = Namespace::new("acme", Environment::Live).unwrap();
    cat.upsert_batch(&ns, products(240, 11)).unwrap();
    assert_eq!(cat.index_report().unwrap()[0].mode, IndexMode::Exact);
    let q = Rng(5).unit(DIM);
    for f in filters() {
        let want = listed(&cat, &ns, &f);
        assert_eq!(cat.count(&ns, &f).unwrap(), want.len() as u64, "{f:?}");
        assert_eq!(searched(&cat, &ns, &q, &f), want, "{f:?}");
    }
}

#[test]
fn graph_mode_filters_never_leak_and_selective_ones_are_exact() {
    let opts =
        CatalogOptions::default().with_index(IndexParams::default().with_brute_force_below(40));
    let cat = Catalog::open_in_memory(opts).unwrap();
    let ns = Namespace::new("acme", Environment::Live).unwrap();
    cat.upsert_batch(&ns, products(240, 12)).unwrap();
    assert_eq!(cat.index_report().unwrap()[0].mode, IndexMode::Ann);
    let q = Rng(6).unit(DIM);
    let mut selective = 0;
    for f in filters() {
        let want = listed(&cat, &ns, &f);
        let got = searched(&cat, &ns, &q, &f);
        assert!(got.iter().all(|id| want.binary_search(id).is_ok()), "{f:?}");
        if want.len() < 40 {
            selective += 1;
            assert_eq!(got, want, "{f:?}");
        }
    }
    assert!(
        selective >= 3,
        "the filter set must exercise the exact path"
    );
}

#[test]
fn reopened_catalog_ranks_exactly_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cat.db");
    let opts =
        CatalogOptions::default().with_index(IndexParams::default().with_brute_force_below(50));
    let ns = Namespace::new("acme", Environment::Test).unwrap();
    let mut r = Rng(9);
    let queries: Vec<SearchQuery> = (0..8)
        .map(|i| {
            let mut q = SearchQuery::by_embedding(r.unit(DIM));
            q.shape = Some(r.unit(6));
            q.colors = vec![ColorSwatch {
                lab: [50.0, 10.0, -10.0],
                share: 1.0,
            }];
            q.filter = filters()[i % 7].clone();
            q
        })
        .collect();
    let before: Vec<Vec<SearchHit>> = {
        let cat = Catalog::open(&path, opts.clone()).unwrap();
        cat.upsert_batch(&ns, products(300, 13)).unwrap();
        let hits = queries
            .iter()
            .map(|q| cat.search(&ns, q).unwrap())
            .collect();
        cat.flush().unwrap();
        hits
    };
    let cat = Catalog::open(&path, opts).unwrap();
    assert_eq!(cat.index_report().unwrap()[0].source, IndexSource::Loaded);
    for (q, b) in queries.iter().zip(&before) {
        let a = cat.search(&ns, q).unwrap();
        assert_eq!(&a, b);
        assert!(a
            .iter()
            .all(|h| h.scores.shape.is_some() && h.scores.color.is_some()));
    }
}
