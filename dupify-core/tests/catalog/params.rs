//! Index parameters on an open catalog: `set_ef_search` changes the HNSW candidate list size
//! without a rebuild (and with `ef_search` above the graph size the search is exhaustive, so
//! it must find the exact top 10), bad values get `invalid_parameter`, and `max_layers`
//! other than 16 is refused at open instead of failing later in `flush`.

use dupify_core::catalog::*;

const DIM: usize = 16;

use crate::common::rng::XorShift as Rng;

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn set_ef_search_applies_to_the_open_graph_and_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cat.db");
    let opts = CatalogOptions::default().with_index(
        IndexParams::default()
            .with_brute_force_below(100)
            .with_ef_search(20),
    );
    let ns = Namespace::new("acme", Environment::Test).unwrap();
    let mut r = Rng(0xC0FFEE);
    let n = 1500;
    let vecs: Vec<Vec<f32>> = (0..n).map(|_| r.unit(DIM)).collect();
    let cat = Catalog::open(&path, opts.clone()).unwrap();
    let batch = vecs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut p = NewProduct::new(format!("p{i}"));
            p.features.clip = Some(v.clone());
            p
        })
        .collect();
    cat.upsert_batch(&ns, batch).unwrap();
    assert_eq!(cat.index_report().unwrap()[0].mode, IndexMode::Ann);
    assert_eq!(cat.ef_search(), 20);

    for bad in [0, 4097] {
        let e = cat.set_ef_search(bad).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter", "{bad}: {e}");
    }
    assert_eq!(cat.ef_search(), 20, "a refused value changes nothing");

    // ef above the number of points: the graph search visits every reachable point, so the
    // answer is the exact top 10 by cosine.
    cat.set_ef_search(4096).unwrap();
    assert_eq!(cat.ef_search(), 4096);
    for _ in 0..20 {
        let q = r.unit(DIM);
        let mut truth: Vec<(usize, f32)> = vecs
            .iter()
            .enumerate()
            .map(|(i, v)| (i, dot(&q, v)))
            .collect();
        truth.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut want: Vec<String> = truth[..10].iter().map(|(i, _)| format!("p{i}")).collect();
        let mut got: Vec<String> = cat
            .search(&ns, &SearchQuery::by_embedding(q))
            .unwrap()
            .into_iter()
            .map(|h| h.product.external_id)
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got, want);
    }

    // Not persisted: a reopen starts again from the options.
    cat.flush().unwrap();
    drop(cat);
    let cat = Catalog::open(&path, opts).unwrap();
    assert_eq!(cat.index_report().unwrap()[0].source, IndexSource::Loaded);
    assert_eq!(cat.ef_search(), 20);
}

#[test]
fn max_layers_other_than_16_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    for layers in [4, 15, 17] {
        let opts = CatalogOptions::default().with_index(
            IndexParams::default()
                .with_brute_force_below(10)
                .with_max_layers(layers),
        );
        let e = match Catalog::open(dir.path().join(format!("c{layers}.db")), opts) {
            Ok(_) => panic!("max_layers {layers} accepted"),
            Err(e) => e,
        };
        assert_eq!(e.code(), "invalid_parameter", "{e}");
        assert!(e.to_string().contains("max_layers"), "{e}");
    }
    // The default (16) builds a graph that flush can save and a reopen can load.
    let path = dir.path().join("ok.db");
    let ns = Namespace::new("acme", Environment::Test).unwrap();
    let opts =
        CatalogOptions::default().with_index(IndexParams::default().with_brute_force_below(10));
    let mut r = Rng(7);
    {
        let cat = Catalog::open(&path, opts.clone()).unwrap();
        let batch = (0..50)
            .map(|i| {
                let mut p = NewProduct::new(format!("p{i}"));
                p.features.clip = Some(r.unit(DIM));
                p
            })
            .collect();
        cat.upsert_batch(&ns, batch).unwrap();
        cat.flush().unwrap();
    }
    let cat = Catalog::open(&path, opts).unwrap();
    let rep = &cat.index_report().unwrap()[0];
    assert_eq!(
        (rep.mode, rep.source),
        (IndexMode::Ann, IndexSource::Loaded)
    );
}
