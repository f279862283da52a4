//! Shared by the catalog integration tests.

#[path = "../rng_common/mod.rs"]
mod rng_common;

pub use rng_common::unit_vector;

use dupify_core::catalog::{
    Catalog, EmbeddingStatus, Environment, Namespace, NewProduct, ProductFeatures, SearchQuery,
};

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
}
