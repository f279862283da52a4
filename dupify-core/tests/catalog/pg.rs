//! The catalog on PostgreSQL + pgvector (feature `postgres`): the shared behaviour checks
//! against SQLite, the queue contract, filtered-search recall against exact search, several
//! servers on one database, migrations and URL handling.
//!
//! Needs `DUPIFY_TEST_PG_URL` (a database where the test user may create databases and
//! pgvector ≥ 0.8 is installed in `template1`; `scripts/pg.sh start` prints one) and fails
//! without it: a silently skipped backend test would pass CI with nothing tested. Each test
//! works in a database of its own, created here.

use dupify_core::catalog::*;
use dupify_core::Error;

use crate::common::unit_vector;

use crate::pg_server::fresh_database;

fn connect(url: &str, opts: CatalogOptions) -> Catalog {
    Catalog::connect(url, opts).expect("connect the catalog")
}

#[test]
fn postgres_gets_the_same_validation_scores_filters_and_pages_as_sqlite() {
    let sqlite = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
    // Through `Catalog::open`, which dispatches on the URL.
    let pg = Catalog::open(fresh_database(), CatalogOptions::default()).unwrap();
    crate::common::behaves_like(&sqlite, &pg);
}

#[test]
fn the_queue_contract_holds_on_postgres() {
    let pg = connect(&fresh_database(), CatalogOptions::default());
    crate::common::queue_behaviour(&pg);
}

#[test]
fn workers_on_separate_connections_never_claim_the_same_job() {
    let url = fresh_database();
    crate::common::concurrent_claims_hand_out_each_job_once(
        || connect(&url, CatalogOptions::default()),
        300,
        4,
    );
}

const RECALL_DIM: usize = 32;

/// `n` products of namespace `account` in three categories, embeddings scattered around a
/// few cluster centres (as real catalogs are).
fn clustered(account_seed: u64, n: usize) -> Vec<NewProduct> {
    let centres: Vec<Vec<f32>> = (0..6)
        .map(|c| unit_vector(account_seed * 100 + c, RECALL_DIM))
        .collect();
    (0..n)
        .map(|i| {
            let noise = unit_vector(account_seed * 100_000 + i as u64, RECALL_DIM);
            let c = &centres[i % centres.len()];
            let mut p = NewProduct::new(format!("item-{i}"));
            p.features.clip = Some(c.iter().zip(&noise).map(|(a, b)| a + 0.6 * b).collect());
            p.category = Some(["dress", "shoes", "hat"][i % 3].into());
            p.brand = Some(format!("brand-{}", i % 7));
            p.price = Some(5.0 + (i % 50) as f64);
            p
        })
        .collect()
}

fn ids(hits: &[SearchHit]) -> Vec<String> {
    hits.iter().map(|h| h.product.external_id.clone()).collect()
}

/// Filtered search through the HNSW index returns the exact top-k: the namespace and the
/// category are conditions on one index shared by every namespace, and another namespace
/// holds the vectors nearest the query (the filtered-HNSW trap: a plain HNSW scan would spend
/// its `ef_search` candidates there and come back short).
#[test]
fn filtered_ann_search_returns_the_exact_top_k() {
    let url = fresh_database();
    // Searches go through the index from 16 matching products up.
    let ann_opts =
        CatalogOptions::default().with_index(IndexParams::default().with_brute_force_below(16));
    let pg = connect(&url, ann_opts);
    let exact = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
    let shop = Namespace::new("shop", Environment::Live).unwrap();
    let crowd = Namespace::new("crowd", Environment::Live).unwrap();
    let products = clustered(1, 450);
    for cat in [&pg, &exact] {
        cat.upsert_batch(&shop, products.clone()).unwrap();
    }
    // The other namespace: 900 vectors right around the queries.
    let queries: Vec<Vec<f32>> = (0..8).map(|s| unit_vector(9000 + s, RECALL_DIM)).collect();
    let crowd_products: Vec<NewProduct> = (0..900)
        .map(|i| {
            let q = &queries[i % queries.len()];
            let noise = unit_vector(50_000 + i as u64, RECALL_DIM);
            let mut p = NewProduct::new(format!("crowd-{i}"));
            p.features.clip = Some(q.iter().zip(&noise).map(|(a, b)| a + 0.1 * b).collect());
            p.category = Some("dress".into());
            p
        })
        .collect();
    pg.upsert_batch(&crowd, crowd_products).unwrap();
    pg.set_ef_search(100).unwrap();

    let filters = [
        ProductFilter::default(),
        ProductFilter {
            category: Some("dress".into()),
            ..ProductFilter::default()
        },
        ProductFilter {
            category: Some("shoes".into()),
            max_price: Some(30.0),
            exclude_brands: vec!["brand-3".into()],
            ..ProductFilter::default()
        },
    ];
    let mut compared = 0;
    for q in &queries {
        for filter in &filters {
            let query = SearchQuery {
                filter: filter.clone(),
                limit: 10,
                ..SearchQuery::by_embedding(q.clone())
            };
            let want = ids(&exact.search(&shop, &query).unwrap());
            let got = pg.search(&shop, &query).unwrap();
            assert_eq!(want.len(), 10, "{filter:?}");
            assert_eq!(ids(&got), want, "{filter:?}");
            assert!(got.iter().all(|h| h.product.namespace == shop));
            compared += 1;
        }
    }
    assert_eq!(compared, queries.len() * filters.len());

    // A small `ef_search` still fills the page: the iterative scan goes on past it.
    pg.set_ef_search(5).unwrap();
    let query = SearchQuery {
        filter: filters[2].clone(),
        limit: 40,
        ..SearchQuery::by_embedding(queries[0].clone())
    };
    let hits = pg.search(&shop, &query).unwrap();
    let matching = exact.search(&shop, &query).unwrap();
    assert_eq!(matching.len(), 40);
    assert_eq!(hits.len(), 40);
    assert!(hits.iter().all(|h| {
        h.product.category.as_deref() == Some("shoes")
            && h.product.price.is_some_and(|p| p <= 30.0)
            && h.product.brand.as_deref() != Some("brand-3")
    }));

    // The searches above went through the HNSW index (not an exact scan): its scan count
    // moved. Statistics reach other sessions when the searching ones report them, at the
    // latest when they exit: the catalog is closed, then the count polled for a while.
    drop(pg);
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut scans = 0i64;
    for _ in 0..100 {
        c.batch_execute("SELECT pg_stat_clear_snapshot()").unwrap();
        scans = c
            .query_one(
                "SELECT idx_scan FROM pg_stat_user_indexes \
                 WHERE indexrelname = 'catalog_products_clip_hnsw'",
                &[],
            )
            .unwrap()
            .get(0);
        if scans > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(scans > 0, "the HNSW index was never scanned");

    // And the index is on the cast the queries order by.
    let q = format!(
        "[{}]",
        queries[0]
            .iter()
            .map(f32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    c.batch_execute("SET enable_seqscan = off").unwrap();
    let plan: Vec<String> = c
        .query(
            &format!(
                "EXPLAIN SELECT p.pk FROM catalog_products p WHERE p.clip IS NOT NULL \
                 ORDER BY (p.clip::vector({RECALL_DIM})) <=> '{q}'::vector({RECALL_DIM}) LIMIT 10"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.iter()
            .any(|l| l.contains("catalog_products_clip_hnsw")),
        "{plan:?}"
    );
}

/// Two app servers on one database see each other's writes at once, share the namespace's
/// model binding and the catalog's dimension, and a job finished by both is written once.
#[test]
fn several_servers_share_one_catalog() {
    let url = fresh_database();
    let a = connect(&url, CatalogOptions::default());
    let b = connect(&url, CatalogOptions::default());
    let ns = Namespace::new("shared", Environment::Test).unwrap();
    let mut p = NewProduct::new("x1");
    p.features.clip = Some(unit_vector(1, 16));
    p.features.model_id = Some("model-a".into());
    let saved = a.upsert(&ns, p).unwrap();
    assert_eq!(b.get(&ns, &saved.id).unwrap().external_id, "x1");
    let hits = b
        .search(&ns, &SearchQuery::by_embedding(unit_vector(1, 16)))
        .unwrap();
    assert_eq!(hits[0].product.id, saved.id);
    assert!((hits[0].scores.clip.unwrap() - 1.0).abs() < 1e-5);

    // B learned the dimension from the database: a 4-d embedding is refused there too.
    let mut wrong_dim = NewProduct::new("x2");
    wrong_dim.features.clip = Some(unit_vector(2, 4));
    let e = b.upsert(&ns, wrong_dim).unwrap_err();
    assert_eq!(e.code(), "invalid_parameter", "{e}");
    // And the model A bound.
    let mut other_model = NewProduct::new("x3");
    other_model.features.clip = Some(unit_vector(3, 16));
    other_model.features.model_id = Some("model-b".into());
    let e = b.upsert(&ns, other_model).unwrap_err();
    assert!(e.to_string().contains("model-a"), "{e}");

    // A batch that fails half-way stores nothing (all or none).
    let mut batch: Vec<NewProduct> = (0..3)
        .map(|i| {
            let mut p = NewProduct::new(format!("batch-{i}"));
            p.features.clip = Some(unit_vector(10 + i, 16));
            p.features.model_id = Some("model-a".into());
            p
        })
        .collect();
    batch[2].features.model_id = Some("model-b".into());
    assert!(a.upsert_batch(&ns, batch).is_err());
    assert_eq!(b.count(&ns, &ProductFilter::default()).unwrap(), 1);

    // One queued job, completed by both servers: written once.
    let mut queued = NewProduct::new("q");
    queued.image_url = Some("https://shop.example/q.jpg".into());
    a.enqueue(&ns, queued).unwrap();
    let job = b.pending_jobs(10).unwrap().pop().unwrap();
    let features = ProductFeatures {
        clip: Some(unit_vector(20, 16)),
        model_id: Some("model-a".into()),
        ..ProductFeatures::default()
    };
    let done: Vec<bool> = std::thread::scope(|s| {
        let ha = s.spawn(|| a.complete_job(&job, features.clone(), None).unwrap());
        let hb = s.spawn(|| b.complete_job(&job, features.clone(), None).unwrap());
        vec![ha.join().unwrap().is_some(), hb.join().unwrap().is_some()]
    });
    assert_eq!(done.iter().filter(|d| **d).count(), 1, "{done:?}");
    assert!(a.pending_jobs(10).unwrap().is_empty());

    // Pages and image hashes (resumable ingest) read the same rows from either server.
    let mut hashed = NewProduct::new("h1");
    hashed.image_hash = Some("hash-h1".into());
    a.upsert(&ns, hashed).unwrap();
    let mut seen = Vec::new();
    let mut page = Page {
        limit: 2,
        cursor: None,
    };
    loop {
        let got = b.list(&ns, &page, &ProductFilter::default()).unwrap();
        seen.extend(got.items.into_iter().map(|p| p.external_id));
        match got.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ["x1", "q", "h1"]);
    let report = a.index_report().unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].live, 2);
}

#[test]
fn the_schema_is_versioned_and_a_newer_one_is_refused() {
    let url = fresh_database();
    drop(connect(&url, CatalogOptions::default()));
    // Opening again migrates nothing and keeps the rows.
    let cat = connect(&url, CatalogOptions::default());
    let ns = Namespace::new("v", Environment::Live).unwrap();
    cat.upsert(&ns, NewProduct::new("kept")).unwrap();
    drop(cat);
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let versions: Vec<i64> = c
        .query(
            "SELECT version FROM schema_version WHERE component = 'catalog' ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    let storage: i8 = c
        .query_one(
            "SELECT attstorage FROM pg_attribute \
             WHERE attrelid = 'catalog_products'::regclass AND attname = 'clip'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(storage as u8, b'm', "embeddings are stored in the row");
    let cat = connect(&url, CatalogOptions::default());
    assert_eq!(cat.count(&ns, &ProductFilter::default()).unwrap(), 1);
    drop(cat);

    c.execute(
        "INSERT INTO schema_version (component, version) VALUES ('catalog', 99)",
        &[],
    )
    .unwrap();
    match Catalog::connect(&url, CatalogOptions::default()) {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (99, 3));
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
}

/// A database at schema version 1 (before job claims) with a job queued: opening it adds the
/// claim column, and the job is claimable.
#[test]
fn a_version_1_database_is_migrated_and_its_queued_jobs_claimable() {
    let url = fresh_database();
    let cat = connect(&url, CatalogOptions::default());
    let ns = Namespace::new("v1", Environment::Live).unwrap();
    let queued = crate::common::enqueue_one(&cat, &ns, "queued");
    drop(cat);
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute(
        "ALTER TABLE catalog_ingest_jobs DROP COLUMN claimed_until; \
         DELETE FROM schema_version WHERE component = 'catalog' AND version >= 2",
    )
    .unwrap();
    let cat = connect(&url, CatalogOptions::default());
    let jobs = cat
        .claim_jobs(10, std::time::Duration::from_secs(60))
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].product_id, queued.id);
}

#[test]
fn the_dimension_in_the_options_must_match_the_stored_one() {
    let url = fresh_database();
    let cat = connect(&url, CatalogOptions::default());
    let ns = Namespace::new("d", Environment::Live).unwrap();
    let mut p = NewProduct::new("a");
    p.features.clip = Some(unit_vector(1, 12));
    cat.upsert(&ns, p).unwrap();
    drop(cat);
    let e = Catalog::connect(&url, CatalogOptions::default().with_dim(24))
        .err()
        .expect("refused");
    assert_eq!(e.code(), "invalid_parameter", "{e}");
    assert!(connect(&url, CatalogOptions::default().with_dim(12))
        .search(&ns, &SearchQuery::by_embedding(unit_vector(1, 12)))
        .is_ok_and(|h| h.len() == 1));
}

#[test]
fn errors_never_show_the_urls_password() {
    // Unparseable (a port that is not a number).
    let e = Catalog::connect(
        "postgres://app:s3cret@127.0.0.1:notaport/db",
        CatalogOptions::default(),
    )
    .err()
    .expect("refused");
    assert!(matches!(e, Error::InvalidDatabaseUrl { .. }), "{e}");
    assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
    // Nothing listens on port 1.
    let e = Catalog::open(
        "postgresql://app:s3cret@127.0.0.1:1/db?connect_timeout=2",
        CatalogOptions::default(),
    )
    .err()
    .expect("refused");
    assert_eq!(e.code(), "internal_error");
    assert!(e.to_string().contains("connecting"), "{e}");
    assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
}

/// Writers on several connections at once (upserting overlapping batches in opposite orders,
/// queueing, completing, deleting, clearing, and storing a new namespace's first embeddings
/// while the dimension is being fixed) all succeed: the backend takes its locks in one order,
/// so PostgreSQL never has to break a deadlock by failing one of them.
#[test]
fn concurrent_writers_never_deadlock() {
    let url = fresh_database();
    let cats: Vec<Catalog> = (0..4)
        .map(|_| connect(&url, CatalogOptions::default()))
        .collect();
    let shared = Namespace::new("busy", Environment::Test).unwrap();
    std::thread::scope(|s| {
        for (t, cat) in cats.iter().enumerate() {
            let shared = shared.clone();
            s.spawn(move || {
                let own = Namespace::new(format!("own-{t}"), Environment::Live).unwrap();
                for round in 0..12u64 {
                    // The first round stores every thread's first embedding at once.
                    let mut first = NewProduct::new(format!("first-{round}"));
                    first.features.clip = Some(unit_vector(t as u64 * 100 + round, 24));
                    cat.upsert(&own, first).unwrap();

                    let mut batch: Vec<NewProduct> = (0..6)
                        .map(|i| {
                            let mut p = NewProduct::new(format!("p{i}"));
                            p.features.clip = Some(unit_vector(round * 10 + i, 24));
                            p.price = Some(i as f64);
                            p
                        })
                        .collect();
                    if t % 2 == 1 {
                        batch.reverse();
                    }
                    cat.upsert_batch(&shared, batch).unwrap();

                    let mut queued = NewProduct::new(format!("p{}", (round + t as u64) % 6));
                    queued.image_url = Some("https://shop.example/x.jpg".into());
                    cat.enqueue(&shared, queued).unwrap();
                    for job in cat.pending_jobs(5).unwrap() {
                        let features = ProductFeatures {
                            clip: Some(unit_vector(round, 24)),
                            ..ProductFeatures::default()
                        };
                        cat.complete_job(&job, features, None).unwrap();
                    }
                    if let Ok(p) = cat.get_by_external_id(&shared, &format!("p{}", round % 6)) {
                        match cat.delete(&shared, &p.id) {
                            Ok(()) => {}
                            // Another thread deleted it first.
                            Err(Error::NotFound { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    if round % 4 == 3 {
                        cat.clear_embeddings(&shared).unwrap();
                    }
                    cat.search(&shared, &SearchQuery::by_embedding(unit_vector(round, 24)))
                        .unwrap();
                }
            });
        }
    });
    let cat = &cats[0];
    for t in 0..4 {
        let own = Namespace::new(format!("own-{t}"), Environment::Live).unwrap();
        assert_eq!(cat.count(&own, &ProductFilter::default()).unwrap(), 12);
    }
    // Every job left points at a product that still exists.
    for job in cat.pending_jobs(100).unwrap() {
        assert!(cat.get(&job.namespace, &job.product_id).is_ok());
    }
    assert!(cat.count(&shared, &ProductFilter::default()).unwrap() <= 6);
}

/// A batch large enough to be copied in (`COPY … FORMAT binary`) stores what the row-by-row
/// path and SQLite store: the last of a repeated external id, updates of existing products
/// (keeping their ids, dropping their queued jobs), insertion order for paging, and the same
/// search results; and it is still all or none.
#[test]
fn large_batches_are_copied_in_with_the_same_results() {
    let sqlite = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
    let pg = connect(&fresh_database(), CatalogOptions::default());
    let ns = Namespace::new("bulk", Environment::Live).unwrap();
    let mut queued = NewProduct::new("b-3");
    queued.image_url = Some("https://shop.example/b3.jpg".into());
    let mut before = std::collections::HashMap::new();
    for cat in [&sqlite, &pg] {
        let q = cat.enqueue(&ns, queued.clone()).unwrap();
        before.insert(std::ptr::from_ref(cat) as usize, q.id);
    }
    let mut batch: Vec<NewProduct> = (0..300u64)
        .map(|i| {
            let mut p = NewProduct::new(format!("b-{i}"));
            p.title = Some(format!("Bulk {i}"));
            p.brand = (i % 3 != 0).then(|| format!("brand-{}", i % 5));
            p.category = Some(["dress", "shoes"][(i % 2) as usize].into());
            p.price = (i % 7 != 0).then_some(i as f64 / 3.0);
            p.currency = Some("eur".into());
            p.metadata = serde_json::json!({"n": i, "tag": format!("t{}", i % 4)});
            p.features.clip = Some(unit_vector(i + 1, 16));
            p.features.shape = (i % 2 == 0).then(|| unit_vector(i + 1000, 6));
            p.features.colors = vec![ColorSwatch {
                lab: [50.0, i as f32 / 10.0, -3.0],
                share: 60.0,
            }];
            p.features.attributes = Some(serde_json::json!({"category": "dress"}));
            p.features.model_id = Some("model-bulk".into());
            p.image_hash = Some(format!("hash-{i}"));
            p
        })
        .collect();
    // A repeated external id: the last one wins.
    let mut again = batch[5].clone();
    again.title = Some("Bulk 5, corrected".into());
    batch.push(again);
    for cat in [&sqlite, &pg] {
        let saved = cat.upsert_batch(&ns, batch.clone()).unwrap();
        assert_eq!(saved.len(), batch.len());
        assert_eq!(saved[5].id, saved[300].id);
        let b3 = cat.get_by_external_id(&ns, "b-3").unwrap();
        assert_eq!(b3.id, before[&(std::ptr::from_ref(cat) as usize)]);
        assert_eq!(b3.embedding_status, EmbeddingStatus::Ready);
        assert!(cat.pending_jobs(10).unwrap().is_empty());
        assert_eq!(
            cat.get_by_external_id(&ns, "b-5").unwrap().title.as_deref(),
            Some("Bulk 5, corrected")
        );
        assert_eq!(cat.count(&ns, &ProductFilter::default()).unwrap(), 300);
    }
    // Every stored field alike (ids and times are each backend's own).
    let all = |cat: &Catalog| -> Vec<Product> {
        let mut out = Vec::new();
        let mut page = Page {
            limit: 1000,
            cursor: None,
        };
        loop {
            let got = cat.list(&ns, &page, &ProductFilter::default()).unwrap();
            out.extend(got.items);
            match got.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => return out,
            }
        }
    };
    let (a, b) = (all(&sqlite), all(&pg));
    assert_eq!(a.len(), 300);
    for (x, y) in a.iter().zip(&b) {
        let strip = |p: &Product| Product {
            id: String::new(),
            created_at_ms: 0,
            updated_at_ms: 0,
            ..p.clone()
        };
        let (sx, sy) = (strip(x), strip(y));
        assert_eq!(sx.external_id, sy.external_id, "insertion order");
        assert_eq!(sx.metadata, sy.metadata);
        // SQLite stores shares as fractions (a rounding away from the percent given).
        assert_eq!(sx.features.colors.len(), sy.features.colors.len());
        for (cx, cy) in sx.features.colors.iter().zip(&sy.features.colors) {
            assert_eq!(cx.lab, cy.lab);
            assert!((cx.share - cy.share).abs() < 1e-3, "{cx:?} {cy:?}");
        }
        let close = |u: &Option<Vec<f32>>, v: &Option<Vec<f32>>| match (u, v) {
            (Some(u), Some(v)) => u.iter().zip(v).all(|(a, b)| (a - b).abs() < 1e-6),
            (None, None) => true,
            _ => false,
        };
        assert!(
            close(&sx.features.clip, &sy.features.clip),
            "{}",
            sx.external_id
        );
        assert!(
            close(&sx.features.shape, &sy.features.shape),
            "{}",
            sx.external_id
        );
        let no_vectors = |p: Product| Product {
            features: ProductFeatures {
                clip: None,
                shape: None,
                colors: Vec::new(),
                ..p.features
            },
            ..p
        };
        assert_eq!(no_vectors(sx), no_vectors(sy));
    }
    let query = SearchQuery {
        filter: ProductFilter {
            category: Some("shoes".into()),
            metadata_eq: vec![("tag".into(), serde_json::json!("t1"))],
            ..ProductFilter::default()
        },
        limit: 8,
        ..SearchQuery::by_embedding(unit_vector(42, 16))
    };
    assert_eq!(
        ids(&sqlite.search(&ns, &query).unwrap()),
        ids(&pg.search(&ns, &query).unwrap())
    );

    // All or none: a large batch that breaks the model binding stores nothing.
    let mut bad: Vec<NewProduct> = (0..100u64)
        .map(|i| {
            let mut p = NewProduct::new(format!("c-{i}"));
            p.features.clip = Some(unit_vector(i + 500, 16));
            p.features.model_id = Some("model-bulk".into());
            p
        })
        .collect();
    bad[99].features.model_id = Some("model-other".into());
    assert!(pg.upsert_batch(&ns, bad).is_err());
    assert_eq!(pg.count(&ns, &ProductFilter::default()).unwrap(), 300);
}

/// pgvector indexes `vector` up to 2,000 dimensions: a 2,100-d catalog is indexed through
/// `halfvec`, a 4,100-d one not at all, and both still find the exact nearest product.
#[test]
fn large_dimensions_get_a_halfvec_index_or_exact_search() {
    for (dim, index) in [(2100usize, Some("halfvec_cosine_ops")), (4100, None)] {
        let url = fresh_database();
        let opts =
            CatalogOptions::default().with_index(IndexParams::default().with_brute_force_below(4));
        let cat = connect(&url, opts);
        let ns = Namespace::new("wide", Environment::Test).unwrap();
        let products: Vec<NewProduct> = (0..20u64)
            .map(|i| {
                let mut p = NewProduct::new(format!("w{i}"));
                p.features.clip = Some(unit_vector(i + 1, dim));
                p
            })
            .collect();
        cat.upsert_batch(&ns, products).unwrap();
        for i in [3u64, 17] {
            let hits = cat
                .search(&ns, &SearchQuery::by_embedding(unit_vector(i + 1, dim)))
                .unwrap();
            assert_eq!(hits[0].product.external_id, format!("w{i}"), "{dim}-d");
            assert!((hits[0].scores.clip.unwrap() - 1.0).abs() < 1e-4, "{dim}-d");
        }
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let defs: Vec<String> = c
            .query(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'catalog_products_clip_hnsw'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        match index {
            Some(ops) => {
                assert_eq!(defs.len(), 1, "{dim}-d");
                assert!(defs[0].contains(ops), "{defs:?}");
            }
            None => assert!(defs.is_empty(), "{defs:?}"),
        }
    }
}

/// Connections the server drops (a restart, an administrator, a failover) are replaced
/// before a request uses them: the pool checks each connection when it lends it.
#[test]
fn dropped_connections_cost_no_failed_request() {
    let url = fresh_database();
    let cat = connect(&url, CatalogOptions::default());
    let ns = Namespace::new("drop", Environment::Live).unwrap();
    let mut p = NewProduct::new("d1");
    p.features.clip = Some(unit_vector(1, 8));
    cat.upsert(&ns, p).unwrap();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let killed: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'dupify-catalog' AND datname = current_database()) k",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(killed >= 1, "the catalog's connections were found");
    // Terminated backends leave pg_stat_activity once they have exited.
    for _ in 0..100 {
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = 'dupify-catalog' AND datname = current_database()",
                &[],
            )
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let hits = cat
        .search(&ns, &SearchQuery::by_embedding(unit_vector(1, 8)))
        .unwrap();
    assert_eq!(hits[0].product.external_id, "d1");
    let mut p = NewProduct::new("d2");
    p.features.clip = Some(unit_vector(2, 8));
    cat.upsert(&ns, p).unwrap();
    assert_eq!(cat.count(&ns, &ProductFilter::default()).unwrap(), 2);
}

/// `CatalogOptions::max_connections` bounds the pool: many threads searching at once all get
/// their answers, through no more connections than that.
#[test]
fn the_pool_never_opens_more_connections_than_allowed() {
    let url = fresh_database();
    assert_eq!(
        Catalog::connect(&url, CatalogOptions::default().with_max_connections(0))
            .err()
            .map(|e| e.code()),
        Some("invalid_parameter")
    );
    let cat = connect(&url, CatalogOptions::default().with_max_connections(2));
    let ns = Namespace::new("pool", Environment::Live).unwrap();
    let products: Vec<NewProduct> = (0..30u64)
        .map(|i| {
            let mut p = NewProduct::new(format!("p{i}"));
            p.features.clip = Some(unit_vector(i + 1, 8));
            p
        })
        .collect();
    cat.upsert_batch(&ns, products).unwrap();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let most_seen = std::sync::atomic::AtomicI64::new(0);
    std::thread::scope(|s| {
        for t in 0..6u64 {
            let cat = &cat;
            let ns = &ns;
            s.spawn(move || {
                for round in 0..10 {
                    let hits = cat
                        .search(
                            ns,
                            &SearchQuery::by_embedding(unit_vector(t * 10 + round, 8)),
                        )
                        .unwrap();
                    assert_eq!(hits.len(), 10);
                }
            });
        }
        for _ in 0..20 {
            let open: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE application_name = 'dupify-catalog' AND datname = current_database()",
                    &[],
                )
                .unwrap()
                .get(0);
            most_seen.fetch_max(open, std::sync::atomic::Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    let most = most_seen.into_inner();
    assert!((1..=2).contains(&most), "{most} connections open at once");
}
