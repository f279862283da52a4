//! Shared by the catalog integration tests.

#[path = "../common/rng.rs"]
pub mod rng;

pub use rng::unit_vector;

use dupify_core::catalog::{
    Catalog, ColorSwatch, EmbeddingStatus, Environment, Namespace, NewProduct, Page,
    ProductFeatures, ProductFilter, SearchHit, SearchQuery,
};
use dupify_core::Error;

/// The embedding dimension of [`products`].
pub const DIM: usize = 8;

/// The queue's contract, for any backend: a queued product is listed at once as
/// `processing` and not searchable; completing its job stores the features (`ready`,
/// searchable); a failed job leaves the product `failed` with the code; a product uploaded
/// again supersedes its job; bad queue requests are refused.
#[allow(dead_code)]
pub fn queue_behaviour(cat: &Catalog) {
    let ns = Namespace::new("queue", Environment::Live).unwrap();
    let mut p = NewProduct::new("q1");
    p.title = Some("Queued".into());
    p.image_url = Some("https://shop.example/q1.jpg".into());
    let queued = cat.enqueue(&ns, p.clone()).unwrap();
    assert_eq!(queued.embedding_status, EmbeddingStatus::Processing);
    let stored = cat.get(&ns, &queued.id).unwrap();
    assert_eq!(stored.embedding_status, EmbeddingStatus::Processing);
    assert_eq!(stored.title.as_deref(), Some("Queued"));
    let q = unit_vector(3, 8);
    assert!(cat
        .search(&ns, &SearchQuery::by_embedding(q.clone()))
        .unwrap()
        .is_empty());
    let jobs = cat.pending_jobs(10).unwrap();
    assert_eq!(jobs.len(), 1);
    let job = jobs[0].clone();
    assert_eq!(
        (job.product_id.as_str(), job.image_url.as_str()),
        (queued.id.as_str(), "https://shop.example/q1.jpg")
    );

    let features = ProductFeatures {
        clip: Some(q.clone()),
        model_id: Some("model-q".into()),
        ..ProductFeatures::default()
    };
    let done = cat
        .complete_job(&job, features.clone(), Some("hash-q1".into()))
        .unwrap()
        .expect("pending job completes");
    assert_eq!(done.embedding_status, EmbeddingStatus::Ready);
    assert_eq!(done.id, queued.id);
    assert_eq!(done.title.as_deref(), Some("Queued"));
    assert!(cat.pending_jobs(10).unwrap().is_empty());
    let hits = cat
        .search(&ns, &SearchQuery::by_embedding(q.clone()))
        .unwrap();
    assert_eq!(hits[0].product.id, queued.id);
    assert_eq!(
        cat.get(&ns, &queued.id).unwrap().embedding_status,
        EmbeddingStatus::Ready
    );
    // Completing it again writes nothing.
    assert!(cat
        .complete_job(&job, features.clone(), None)
        .unwrap()
        .is_none());

    // A failure is recorded with its code; the product stays.
    let mut p2 = NewProduct::new("q2");
    p2.image_url = Some("https://shop.example/q2.jpg".into());
    let q2 = cat.enqueue(&ns, p2.clone()).unwrap();
    let job2 = cat.pending_jobs(10).unwrap().pop().unwrap();
    let err = dupify_core::Error::ImageFetchFailed {
        url: "https://shop.example/q2.jpg".into(),
        reason: "HTTP 404".into(),
    };
    assert!(cat.fail_job(&job2, &err).unwrap());
    assert!(!cat.fail_job(&job2, &err).unwrap());
    match cat.get(&ns, &q2.id).unwrap().embedding_status {
        EmbeddingStatus::Failed { code, message } => {
            assert_eq!(code, "image_fetch_failed");
            assert!(message.contains("404"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // Uploaded again while queued: the old job is superseded.
    let mut p3 = NewProduct::new("q3");
    p3.image_url = Some("https://shop.example/q3.jpg".into());
    cat.enqueue(&ns, p3.clone()).unwrap();
    let job3 = cat.pending_jobs(10).unwrap().pop().unwrap();
    let mut direct = NewProduct::new("q3");
    direct.features.clip = Some(unit_vector(4, 8));
    direct.features.model_id = Some("model-q".into());
    let direct = cat.upsert(&ns, direct).unwrap();
    assert!(cat.pending_jobs(10).unwrap().is_empty());
    assert!(cat
        .complete_job(&job3, features.clone(), None)
        .unwrap()
        .is_none());
    assert_eq!(
        cat.get(&ns, &direct.id).unwrap().features.clip,
        direct.features.clip
    );

    // Refusals.
    assert_eq!(
        cat.enqueue(&ns, NewProduct::new("no-url"))
            .unwrap_err()
            .code(),
        "invalid_parameter"
    );
    let mut with_features = p.clone();
    with_features.features.clip = Some(q);
    assert_eq!(
        cat.enqueue(&ns, with_features).unwrap_err().code(),
        "invalid_parameter"
    );
    assert_eq!(cat.pending_jobs(0).unwrap_err().code(), "invalid_parameter");
    claim_behaviour(cat);
}

/// Queues product `id` of `ns` for extraction from `https://shop.example/<id>.jpg`.
#[allow(dead_code)]
pub fn enqueue_one(cat: &Catalog, ns: &Namespace, id: &str) -> dupify_core::catalog::Product {
    let mut p = NewProduct::new(id);
    p.image_url = Some(format!("https://shop.example/{id}.jpg"));
    cat.enqueue(ns, p).unwrap()
}

/// Job claims, for any backend: a claim leases the oldest unclaimed jobs; while the lease
/// runs no other claim returns them (the listing still does); an ended lease makes a job
/// claimable again; a completed or failed job is never claimed; bad limits and leases are
/// refused.
pub fn claim_behaviour(cat: &Catalog) {
    use std::time::Duration;
    let ns = Namespace::new("claims", Environment::Test).unwrap();
    // Whatever the caller left pending is cleared out of the way first.
    let hour = Duration::from_secs(3600);
    cat.claim_jobs(1000, hour).unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(enqueue_one(cat, &ns, &format!("c{i}")).id);
    }
    let first = cat.claim_jobs(2, hour).unwrap();
    assert_eq!(
        first
            .iter()
            .map(|j| j.product_id.clone())
            .collect::<Vec<_>>(),
        ids[..2].to_vec(),
        "the oldest jobs first"
    );
    let second = cat.claim_jobs(10, hour).unwrap();
    assert_eq!(
        second
            .iter()
            .map(|j| j.product_id.clone())
            .collect::<Vec<_>>(),
        ids[2..].to_vec(),
        "claimed jobs are not handed out again"
    );
    assert!(cat.claim_jobs(10, hour).unwrap().is_empty());
    let listed = cat.pending_jobs(1000).unwrap();
    assert!(ids
        .iter()
        .all(|id| listed.iter().any(|j| &j.product_id == id)));

    // A short lease ends and the job comes back; a finished job never does.
    let short = enqueue_one(cat, &ns, "short");
    let leased = cat.claim_jobs(10, Duration::from_millis(50)).unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].product_id, short.id);
    assert!(cat.claim_jobs(10, hour).unwrap().is_empty());
    std::thread::sleep(Duration::from_millis(120));
    let again = cat.claim_jobs(10, Duration::from_millis(50)).unwrap();
    assert_eq!(again.len(), 1, "an ended lease makes the job claimable");
    assert_eq!(again[0].job_id, leased[0].job_id);
    let err = dupify_core::Error::ImageFetchFailed {
        url: "https://shop.example/short.jpg".into(),
        reason: "HTTP 404".into(),
    };
    assert!(cat.fail_job(&again[0], &err).unwrap());
    std::thread::sleep(Duration::from_millis(120));
    assert!(cat.claim_jobs(10, hour).unwrap().is_empty());

    assert_eq!(
        cat.claim_jobs(0, hour).unwrap_err().code(),
        "invalid_parameter"
    );
    assert_eq!(
        cat.claim_jobs(1, Duration::ZERO).unwrap_err().code(),
        "invalid_parameter"
    );
    assert_eq!(
        cat.claim_jobs(1, Duration::from_secs(2 * 86_400))
            .unwrap_err()
            .code(),
        "invalid_parameter"
    );
}

/// `threads` claimers on their own handles to one catalog (`open` gives each a handle),
/// claiming `jobs` queued jobs in small batches: every job is claimed exactly once.
#[allow(dead_code)] // not every test binary that includes this file races claims
pub fn concurrent_claims_hand_out_each_job_once(
    open: impl Fn() -> Catalog,
    jobs: usize,
    threads: usize,
) {
    use std::collections::HashSet;
    use std::time::Duration;
    let ns = Namespace::new("claim-race", Environment::Test).unwrap();
    let setup = open();
    for i in 0..jobs {
        enqueue_one(&setup, &ns, &format!("r{i}"));
    }
    // Every handle is open before any claims, and all start together.
    let cats: Vec<Catalog> = (0..threads).map(|_| open()).collect();
    let start = std::sync::Barrier::new(threads);
    let claimed: Vec<Vec<i64>> = std::thread::scope(|s| {
        let handles: Vec<_> = cats
            .iter()
            .map(|cat| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    let mut mine = Vec::new();
                    loop {
                        let got = cat.claim_jobs(3, Duration::from_secs(3600)).unwrap();
                        if got.is_empty() {
                            break mine;
                        }
                        mine.extend(got.iter().map(|j| j.job_id));
                        // A worker works between claims; without the pause one SQLite
                        // handle re-takes the write lock before the others' busy handlers
                        // wake up, and nothing races.
                        std::thread::sleep(Duration::from_millis(2));
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<i64> = claimed.iter().flatten().copied().collect();
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "a job was claimed twice");
    assert_eq!(unique.len(), jobs, "every job is claimed");
    assert!(
        claimed.iter().filter(|c| !c.is_empty()).count() > 1,
        "the claimers raced (one took everything)"
    );
}

/// 24 products of three categories, two brands and two currencies, with metadata, all
/// embedded by `model-a`.
#[allow(dead_code)]
pub fn products() -> Vec<NewProduct> {
    (0..24)
        .map(|i| {
            let mut p = NewProduct::new(format!("p{i}"));
            p.category = Some(["dress", "shoes", "hat"][i % 3].into());
            p.brand = Some(["acme", "bolt"][i % 2].into());
            p.price = Some(10.0 + i as f64);
            p.features.clip = Some(unit_vector(i as u64 + 1, DIM));
            p.features.shape = Some(unit_vector(i as u64 + 100, 6));
            p.features.colors = vec![ColorSwatch {
                lab: [40.0 + i as f32, 10.0, -5.0],
                share: 100.0,
            }];
            p.features.model_id = Some("model-a".into());
            p.currency = Some(["usd", "eur", "usd"][i % 3].into());
            let size = ["S", "M", "L", "M"][i % 4];
            p.metadata = serde_json::json!({
                "size": size,
                "sale": i % 5 == 0,
                "stock": i % 4,
            });
            p
        })
        .collect()
}

/// `(external id, score)` of each hit.
#[allow(dead_code)]
fn summary(hits: &[SearchHit]) -> Vec<(String, f32)> {
    hits.iter()
        .map(|h| (h.product.external_id.clone(), h.score))
        .collect()
}

/// The same products, queries, pages and refusals give the same answers from `reference`
/// and `other` (both empty to start with): whatever stores the rows, validation, model
/// binding, scores, filters and pages come out alike.
#[allow(dead_code)]
pub fn behaves_like(reference: &Catalog, other: &Catalog) {
    let ns = Namespace::new("acme", Environment::Test).unwrap();
    for cat in [reference, other] {
        cat.upsert_batch(&ns, products()).unwrap();
    }

    let q = unit_vector(7, DIM);
    let queries = [
        SearchQuery::by_embedding(q.clone()),
        SearchQuery {
            filter: ProductFilter {
                category: Some("dress".into()),
                ..ProductFilter::default()
            },
            limit: 4,
            offset: 2,
            ..SearchQuery::by_embedding(q.clone())
        },
        SearchQuery {
            cheaper_by_percent: Some(30.0),
            exclude_own_brand: true,
            ..SearchQuery::dupes_of("PLACEHOLDER")
        },
        SearchQuery {
            shape: Some(unit_vector(105, 6)),
            min_score: Some(0.2),
            ..SearchQuery::default()
        },
        SearchQuery {
            filter: ProductFilter {
                currency: Some("usd".into()),
                exclude_brands: vec!["bolt".into()],
                min_price: Some(12.0),
                max_price: Some(30.0),
                metadata_eq: vec![("size".into(), serde_json::json!("L"))],
                ..ProductFilter::default()
            },
            ..SearchQuery::by_embedding(q.clone())
        },
        SearchQuery {
            filter: ProductFilter {
                metadata_eq: vec![
                    ("sale".into(), serde_json::json!(true)),
                    ("stock".into(), serde_json::json!(0.0)),
                ],
                ..ProductFilter::default()
            },
            ..SearchQuery::by_embedding(q.clone())
        },
    ];
    for mut query in queries {
        // `by_product` names each backend's own id for the same external id.
        let (mut qa, mut qb) = (query.clone(), query.clone());
        if query.by_product.is_some() {
            qa.by_product = Some(reference.get_by_external_id(&ns, "p20").unwrap().id);
            qb.by_product = Some(other.get_by_external_id(&ns, "p20").unwrap().id);
            query.by_product = None;
        }
        let a = summary(&reference.search(&ns, &qa).unwrap());
        let b = summary(&other.search(&ns, &qb).unwrap());
        assert!(!a.is_empty(), "{query:?}");
        assert_eq!(a.len(), b.len(), "{query:?}");
        for ((ea, sa), (eb, sb)) in a.iter().zip(&b) {
            assert_eq!(ea, eb, "{query:?}");
            assert!((sa - sb).abs() < 1e-5, "{query:?}: {sa} vs {sb}");
        }
    }

    // Pages, counts and refusals come from `Catalog`, whichever backend stores the rows.
    let filter = ProductFilter {
        brand: Some("acme".into()),
        ..ProductFilter::default()
    };
    for cat in [reference, other] {
        let mut seen = Vec::new();
        let mut page = Page {
            limit: 5,
            cursor: None,
        };
        loop {
            let p = cat.list(&ns, &page, &filter).unwrap();
            seen.extend(p.items.into_iter().map(|p| p.external_id));
            match p.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        let want: Vec<String> = (0..24).step_by(2).map(|i| format!("p{i}")).collect();
        assert_eq!(seen, want);
        assert_eq!(cat.count(&ns, &filter).unwrap(), 12);

        let refused = [
            cat.search(&ns, &SearchQuery::by_embedding(vec![0.0; DIM])),
            cat.search(&ns, &SearchQuery::by_embedding(vec![1.0; DIM + 1])),
            cat.search(
                &ns,
                &SearchQuery {
                    limit: 5000,
                    ..SearchQuery::by_embedding(q.clone())
                },
            ),
        ];
        for r in refused {
            assert!(matches!(r, Err(Error::InvalidParameter { .. })), "{r:?}");
        }
        // The namespace is bound to the model of its first embeddings.
        let mut other = NewProduct::new("other-model");
        other.features.clip = Some(q.clone());
        other.features.model_id = Some("model-b".into());
        let e = cat.upsert(&ns, other).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
        assert!(e.to_string().contains("model-a"), "{e}");
        assert!(matches!(
            cat.delete(&ns, "no-such-id"),
            Err(Error::NotFound { .. })
        ));
        // `true` is not the number 1, and a missing key matches nothing.
        let sale_as_number = ProductFilter {
            metadata_eq: vec![("sale".into(), serde_json::json!(1))],
            ..ProductFilter::default()
        };
        assert_eq!(cat.count(&ns, &sale_as_number).unwrap(), 0);
        let eur = ProductFilter {
            currency: Some("EUR".into()),
            ..ProductFilter::default()
        };
        assert_eq!(cat.count(&ns, &eur).unwrap(), 8);
        // Deleted products are gone from gets, lists and searches.
        let gone = cat.get_by_external_id(&ns, "p7").unwrap();
        cat.delete(&ns, &gone.id).unwrap();
        assert!(cat.get(&ns, &gone.id).is_err());
        assert_eq!(cat.count(&ns, &ProductFilter::default()).unwrap(), 23);
        let near = cat
            .search(&ns, &SearchQuery::by_embedding(unit_vector(8, DIM)))
            .unwrap();
        assert!(near.iter().all(|h| h.product.external_id != "p7"));
        // Switching models: embeddings and the binding go, the products stay.
        assert_eq!(cat.clear_embeddings(&ns).unwrap(), 23);
        assert_eq!(cat.namespace_model(&ns).unwrap(), None);
        assert_eq!(cat.count(&ns, &ProductFilter::default()).unwrap(), 23);
        let mut switched = NewProduct::new("p1");
        switched.features.clip = Some(q.clone());
        switched.features.model_id = Some("model-b".into());
        cat.upsert(&ns, switched).unwrap();
        assert_eq!(
            cat.namespace_model(&ns).unwrap().as_deref(),
            Some("model-b")
        );
        let hits = cat
            .search(&ns, &SearchQuery::by_embedding(q.clone()))
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].product.external_id, "p1");
    }
}
