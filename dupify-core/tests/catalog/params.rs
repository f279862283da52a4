//! Index parameters on an open catalog: `ef_search` is calibrated to `target_recall`
//! (checked on fresh queries, saved with the graph, measured again as the graph grows);
//! `set_ef_search` fixes the HNSW candidate list size without a rebuild (and with
//! `ef_search` above the graph size the search is exhaustive, so it must find the exact top
//! 10), bad values get `invalid_parameter`, and `max_layers` other than 16 is refused at
//! open instead of failing later in `flush`.

use std::ops::Range;

use dupify_core::catalog::*;

const DIM: usize = 16;

use crate::common::rng::XorShift as Rng;

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Upserts `vecs[i]` as product `p{i}` for every `i` in `range`, in one batch.
fn upsert_range(cat: &Catalog, ns: &Namespace, vecs: &[Vec<f32>], range: Range<usize>) {
    let batch = range
        .map(|i| {
            let mut p = NewProduct::new(format!("p{i}"));
            p.features.clip = Some(vecs[i].clone());
            p
        })
        .collect();
    cat.upsert_batch(ns, batch).unwrap();
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
    upsert_range(&cat, &ns, &vecs, 0..n);
    assert_eq!(cat.index_report().unwrap()[0].mode, IndexMode::Ann);
    assert_eq!(cat.ef_search(), None, "calibrated per namespace");
    let calibrated = cat.index_report().unwrap()[0].ef_search.unwrap();
    assert!(
        calibrated >= 20,
        "the options' ef_search is the floor: {calibrated}"
    );

    for bad in [0, 4097] {
        let e = cat.set_ef_search(bad).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter", "{bad}: {e}");
    }
    assert_eq!(cat.ef_search(), None, "a refused value changes nothing");

    // ef above the number of points: the graph search visits every reachable point, so the
    // answer is the exact top 10 by cosine.
    cat.set_ef_search(4096).unwrap();
    assert_eq!(cat.ef_search(), Some(4096));
    assert_eq!(cat.index_report().unwrap()[0].ef_search, Some(4096));
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

    // Not persisted: a reopen uses the calibrated breadth again.
    cat.flush().unwrap();
    drop(cat);
    let cat = Catalog::open(&path, opts).unwrap();
    let rep = &cat.index_report().unwrap()[0];
    assert_eq!(rep.source, IndexSource::Loaded);
    assert_eq!((cat.ef_search(), rep.ef_search), (None, Some(calibrated)));
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
        let vecs: Vec<Vec<f32>> = (0..50).map(|_| r.unit(DIM)).collect();
        upsert_range(&cat, &ns, &vecs, 0..50);
        cat.flush().unwrap();
    }
    let cat = Catalog::open(&path, opts).unwrap();
    let rep = &cat.index_report().unwrap()[0];
    assert_eq!(
        (rep.mode, rep.source),
        (IndexMode::Ann, IndexSource::Loaded)
    );
}

/// Clustered unit vectors (a shared direction, one of 16 centres, isotropic noise): the
/// shape of CLIP embeddings in the `catalog` bench, small enough for a test.
fn clustered(r: &mut Rng, n: usize, centres: &[Vec<f32>]) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| {
            let c = &centres[(r.next_u64() % centres.len() as u64) as usize];
            crate::common::rng::normalised(c.iter().map(|x| x + 0.15 * r.gauss()).collect())
        })
        .collect()
}

/// Recall@10 of `cat`'s searches for `queries` against exact search over `vecs`: the mean
/// over queries and its standard error.
fn recall(cat: &Catalog, ns: &Namespace, vecs: &[Vec<f32>], queries: &[Vec<f32>]) -> Recall {
    let mut per_query = Vec::with_capacity(queries.len());
    for q in queries {
        let mut truth: Vec<(usize, f32)> = vecs
            .iter()
            .enumerate()
            .map(|(i, v)| (i, dot(q, v)))
            .collect();
        truth.sort_by(|a, b| b.1.total_cmp(&a.1));
        let got: Vec<String> = cat
            .search(ns, &SearchQuery::by_embedding(q.clone()))
            .unwrap()
            .into_iter()
            .map(|h| h.product.external_id)
            .collect();
        let hit = truth[..10]
            .iter()
            .filter(|(i, _)| got.contains(&format!("p{i}")))
            .count();
        per_query.push(hit as f64 / 10.0);
    }
    let n = per_query.len() as f64;
    let mean = per_query.iter().sum::<f64>() / n;
    let var = per_query.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Recall {
        mean,
        se: (var / n).sqrt(),
    }
}

#[derive(Debug)]
struct Recall {
    mean: f64,
    se: f64,
}

impl Recall {
    /// Whether this sample is consistent with a true recall of at least `target`: the
    /// calibration promises its target with 95% confidence, and this measurement has its own
    /// sampling error, so "below" means more than 3 standard errors below.
    fn consistent_with(&self, target: f64) -> bool {
        self.mean + 3.0 * self.se >= target
    }
}

#[test]
fn ef_search_is_calibrated_to_the_target_recall_on_fresh_queries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cat.db");
    // A sparser graph than the default (m 12, ef_construction 32) and a small floor (ef 10):
    // on this data the floor finds about 83% of the true top 10, so calibration has to
    // raise it. Batches of thousands, so the products held out as the calibration's queries
    // (200) change the graph little once they are inserted.
    let opts = CatalogOptions::default().with_index(
        IndexParams::default()
            .with_brute_force_below(100)
            .with_m(12)
            .with_ef_construction(32)
            .with_ef_search(10),
    );
    let ns = Namespace::new("acme", Environment::Test).unwrap();
    let (dim, first, more) = (128, 3000, 1500);
    let mut r = Rng(0x5EED);
    let centres: Vec<Vec<f32>> = (0..16).map(|_| r.unit(dim)).collect();
    let vecs = clustered(&mut r, first + more, &centres);
    let queries = clustered(&mut r, 500, &centres);
    let cat = Catalog::open(&path, opts.clone()).unwrap();
    upsert_range(&cat, &ns, &vecs, 0..first);
    let rep = cat.index_report().unwrap()[0].clone();
    assert_eq!(cat.ef_search(), None, "each namespace calibrates");
    let (ef, est) = (rep.ef_search.unwrap(), rep.recall_at_10.unwrap());
    assert!(ef > 10 && est >= 0.95, "{rep:?}");

    // Fresh queries (not the calibration's own) reach the target at the calibrated
    // breadth, and not at the floor.
    let calibrated = recall(&cat, &ns, &vecs[..first], &queries);
    cat.set_ef_search(10).unwrap();
    let fixed = recall(&cat, &ns, &vecs[..first], &queries);
    eprintln!("ef {ef} (estimate {est:.3}): fresh recall {calibrated:?}, at ef 10 {fixed:?}");
    assert!(calibrated.consistent_with(0.95), "{calibrated:?}");
    assert!(!fixed.consistent_with(0.95), "{fixed:?}");
    assert_eq!(cat.index_report().unwrap()[0].ef_search, Some(10));
    assert_eq!(cat.index_report().unwrap()[0].recall_at_10, None);

    // Saved with the graph: a reopen uses it without measuring again.
    cat.flush().unwrap();
    drop(cat);
    let cat = Catalog::open(&path, opts.clone()).unwrap();
    let again = cat.index_report().unwrap()[0].clone();
    assert_eq!(again.source, IndexSource::Loaded);
    assert_eq!((again.ef_search, again.recall_at_10), (Some(ef), Some(est)));

    // The graph grows by half (a quarter makes a measurement due): measured again, and the
    // target still holds on fresh queries.
    upsert_range(&cat, &ns, &vecs, first..first + more);
    let grown = cat.index_report().unwrap()[0].clone();
    assert!(grown.recall_at_10.unwrap() >= 0.95, "{grown:?}");
    let fresh = recall(&cat, &ns, &vecs, &queries);
    eprintln!("grown: {grown:?}, fresh recall {fresh:?}");
    assert!(fresh.consistent_with(0.95), "{fresh:?}");
    cat.flush().unwrap();
    drop(cat);
    let meta_path = dir.path().join("cat.db.ann").join("ns-1.json");
    let read_meta = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap()
    };
    // measured after the growth, with products of the new batch held out as queries
    let cal = read_meta()["calibration"].clone();
    assert!(cal["points"].as_u64().unwrap() > first as u64, "{cal}");
    assert_eq!(cal["held_out"], true);

    // A graph saved before calibration existed (no `calibration` in its metadata) is
    // measured on open (with perturbed stored vectors: nothing is held out), not rebuilt, and
    // the measurement is saved.
    let mut meta = read_meta();
    meta.as_object_mut().unwrap().remove("calibration").unwrap();
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let cat = Catalog::open(&path, opts.clone()).unwrap();
    let rep = cat.index_report().unwrap()[0].clone();
    assert_eq!(rep.source, IndexSource::Loaded);
    assert!(rep.ef_search.unwrap() >= 10, "{rep:?}");
    assert!(rep.recall_at_10.unwrap() >= 0.95, "{rep:?}");
    drop(cat);
    let cal = read_meta()["calibration"].clone();
    assert_eq!(
        (cal["points"].as_u64(), &cal["held_out"]),
        (Some((first + more) as u64), &false.into())
    );

    // target_recall 0: the options' ef_search as given.
    let fixed_opts =
        CatalogOptions::default().with_index(opts.index.with_target_recall(0.0).with_ef_search(40));
    let cat = Catalog::open(&path, fixed_opts).unwrap();
    assert_eq!(cat.ef_search(), Some(40));
    assert_eq!(cat.index_report().unwrap()[0].ef_search, Some(40));
}
