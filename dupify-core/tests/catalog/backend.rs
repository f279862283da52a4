//! The catalog's storage seam: a second backend (a plain in-memory map with exact search,
//! written here against the public `CatalogBackend` trait, nothing else) gets the same
//! validation, model binding, scores, filters and pages as the SQLite backend, because all of
//! those live in `Catalog`, not in a backend.

use std::collections::HashMap;
use std::sync::Mutex;

use dupify_core::catalog::*;
use dupify_core::Error;

#[derive(Default)]
struct State {
    dim: Option<usize>,
    next: i64,
    /// Per namespace: (position, product), in insertion order.
    rows: HashMap<Namespace, Vec<(i64, Product)>>,
    models: HashMap<Namespace, String>,
    /// Queued products: the job and whether it is still pending.
    jobs: Vec<(IngestJob, bool)>,
    /// Job id -> when its claim ends.
    claims: HashMap<i64, std::time::Instant>,
}

impl State {
    /// Sets the stored product's status and drops its jobs (`keep` pending: keeps that one).
    fn set_status(&mut self, ns: &Namespace, id: &str, status: EmbeddingStatus) {
        if let Some(rows) = self.rows.get_mut(ns) {
            for (_, p) in rows.iter_mut().filter(|(_, p)| p.id == id) {
                p.embedding_status = status.clone();
            }
        }
    }

    /// The namespace's rows in insertion order (none for a namespace never written).
    fn rows_of<'a>(&'a self, ns: &Namespace) -> impl Iterator<Item = &'a (i64, Product)> {
        self.rows.get(ns).into_iter().flatten()
    }
}

/// Everything in one mutex; search is exact over every row.
#[derive(Default)]
struct MapBackend(Mutex<State>);

fn matches(p: &Product, f: &ProductFilter) -> bool {
    let price_ok = |bound: Option<f64>, ok: fn(f64, f64) -> bool| match bound {
        None => true,
        Some(b) => p.price.is_some_and(|v| ok(v, b)),
    };
    f.category
        .as_ref()
        .is_none_or(|c| p.category.as_ref() == Some(c))
        && f.brand.as_ref().is_none_or(|b| p.brand.as_ref() == Some(b))
        && !p
            .brand
            .as_ref()
            .is_some_and(|b| f.exclude_brands.contains(b))
        && price_ok(f.min_price, |v, b| v >= b)
        && price_ok(f.max_price, |v, b| v <= b)
        && f.currency
            .as_ref()
            .is_none_or(|c| c.eq_ignore_ascii_case(&p.currency))
        && f.metadata_eq
            .iter()
            .all(|(k, v)| match (p.metadata.get(k), v) {
                // JSON numbers compare by value (`1` equals `1.0`), as SQL does.
                (Some(a), b) if a.is_number() && b.is_number() => a.as_f64() == b.as_f64(),
                (a, b) => a == Some(b),
            })
}

impl CatalogBackend for MapBackend {
    fn dim(&self) -> Option<usize> {
        self.0.lock().unwrap().dim
    }

    fn upsert(
        &self,
        ns: &Namespace,
        products: &[NewProduct],
        dim: Option<usize>,
        bind: &BindFn<'_>,
    ) -> dupify_core::Result<Vec<Product>> {
        let mut st = self.0.lock().unwrap();
        if let Some(m) = bind(st.models.get(ns).map(String::as_str))? {
            st.models.insert(ns.clone(), m);
        }
        st.dim = st.dim.or(dim);
        let mut saved = Vec::new();
        for p in products {
            st.next += 1;
            let pos = st.next;
            let rows = st.rows.entry(ns.clone()).or_default();
            let old = rows
                .iter()
                .position(|(_, r)| r.external_id == p.external_id);
            let (pos, id) = match old {
                Some(i) => {
                    let (pos, r) = rows.remove(i);
                    (pos, r.id)
                }
                None => (pos, format!("map-{pos}")),
            };
            let product = p.to_product(id, ns, 0, 0);
            rows.push((pos, product.clone()));
            rows.sort_by_key(|(pos, _)| *pos);
            st.jobs.retain(|(j, _)| j.product_id != product.id);
            saved.push(product);
        }
        Ok(saved)
    }

    fn enqueue(
        &self,
        ns: &Namespace,
        product: &NewProduct,
        image_url: &str,
    ) -> dupify_core::Result<Product> {
        let mut saved = self.upsert(ns, std::slice::from_ref(product), None, &|_| Ok(None))?;
        let mut p = saved
            .pop()
            .ok_or_else(|| Error::Internal("enqueue stored nothing".into()))?;
        let mut st = self.0.lock().unwrap();
        st.next += 1;
        let job = IngestJob {
            job_id: st.next,
            namespace: ns.clone(),
            product_id: p.id.clone(),
            external_id: p.external_id.clone(),
            image_url: image_url.to_string(),
            enqueued_at_ms: 0,
        };
        st.jobs.push((job, true));
        st.set_status(ns, &p.id, EmbeddingStatus::Processing);
        p.embedding_status = EmbeddingStatus::Processing;
        Ok(p)
    }

    fn pending_jobs(&self, limit: usize) -> dupify_core::Result<Vec<IngestJob>> {
        let st = self.0.lock().unwrap();
        Ok(st
            .jobs
            .iter()
            .filter(|(_, pending)| *pending)
            .map(|(j, _)| j.clone())
            .take(limit)
            .collect())
    }

    fn claim_jobs(&self, limit: usize, lease_ms: i64) -> dupify_core::Result<Vec<IngestJob>> {
        let mut st = self.0.lock().unwrap();
        let now = std::time::Instant::now();
        let until = now + std::time::Duration::from_millis(lease_ms as u64);
        let claimable: Vec<IngestJob> = st
            .jobs
            .iter()
            .filter(|(j, pending)| *pending && st.claims.get(&j.job_id).is_none_or(|t| *t <= now))
            .map(|(j, _)| j.clone())
            .take(limit)
            .collect();
        for j in &claimable {
            st.claims.insert(j.job_id, until);
        }
        Ok(claimable)
    }

    fn complete_job(
        &self,
        job: &IngestJob,
        product: &NewProduct,
        dim: Option<usize>,
        bind: &BindFn<'_>,
    ) -> dupify_core::Result<Option<Product>> {
        let pending = {
            let st = self.0.lock().unwrap();
            st.jobs.iter().any(|(j, p)| *p && j.job_id == job.job_id)
        };
        if !pending {
            return Ok(None);
        }
        let mut saved = self.upsert(&job.namespace, std::slice::from_ref(product), dim, bind)?;
        Ok(saved.pop())
    }

    fn fail_job(&self, job: &IngestJob, code: &str, message: &str) -> dupify_core::Result<bool> {
        let mut st = self.0.lock().unwrap();
        let Some(entry) = st
            .jobs
            .iter_mut()
            .find(|(j, p)| *p && j.job_id == job.job_id)
        else {
            return Ok(false);
        };
        entry.1 = false;
        let failed = EmbeddingStatus::Failed {
            code: code.into(),
            message: message.into(),
        };
        st.set_status(&job.namespace, &job.product_id, failed);
        Ok(true)
    }

    fn namespace_model(&self, ns: &Namespace) -> dupify_core::Result<Option<String>> {
        Ok(self.0.lock().unwrap().models.get(ns).cloned())
    }

    fn clear_embeddings(&self, ns: &Namespace) -> dupify_core::Result<usize> {
        let mut st = self.0.lock().unwrap();
        st.models.remove(ns);
        let rows = st.rows.entry(ns.clone()).or_default();
        Ok(rows
            .iter_mut()
            .filter_map(|(_, p)| p.features.clip.take())
            .count())
    }

    fn delete(&self, ns: &Namespace, id: &str) -> dupify_core::Result<bool> {
        let mut st = self.0.lock().unwrap();
        let rows = st.rows.entry(ns.clone()).or_default();
        let before = rows.len();
        rows.retain(|(_, p)| p.id != id);
        let gone = rows.len() < before;
        st.jobs.retain(|(j, _)| j.product_id != id);
        Ok(gone)
    }

    fn get(&self, ns: &Namespace, key: ProductKey<'_>) -> dupify_core::Result<Option<Product>> {
        let st = self.0.lock().unwrap();
        Ok(st.rows.get(ns).and_then(|rows| {
            rows.iter()
                .map(|(_, p)| p)
                .find(|p| match key {
                    ProductKey::Id(v) => p.id == v,
                    ProductKey::ExternalId(v) => p.external_id == v,
                })
                .cloned()
        }))
    }

    fn list(
        &self,
        ns: &Namespace,
        after: i64,
        limit: usize,
        filter: &ProductFilter,
    ) -> dupify_core::Result<Vec<(i64, Product)>> {
        let st = self.0.lock().unwrap();
        Ok(st
            .rows_of(ns)
            .filter(|(pos, p)| *pos > after && matches(p, filter))
            .take(limit)
            .cloned()
            .collect())
    }

    fn count(&self, ns: &Namespace, filter: &ProductFilter) -> dupify_core::Result<u64> {
        Ok(self.scan(ns, filter)?.len() as u64)
    }

    fn image_hashes(
        &self,
        ns: &Namespace,
        external_ids: &[String],
    ) -> dupify_core::Result<HashMap<String, String>> {
        let st = self.0.lock().unwrap();
        Ok(st
            .rows_of(ns)
            .filter(|(_, p)| external_ids.contains(&p.external_id))
            .filter_map(|(_, p)| Some((p.external_id.clone(), p.image_hash.clone()?)))
            .collect())
    }

    fn scan(&self, ns: &Namespace, filter: &ProductFilter) -> dupify_core::Result<Vec<Product>> {
        let st = self.0.lock().unwrap();
        Ok(st
            .rows_of(ns)
            .filter(|(_, p)| matches(p, filter))
            .map(|(_, p)| p.clone())
            .collect())
    }

    fn nearest(
        &self,
        ns: &Namespace,
        query: &[f32],
        k: usize,
        filter: &ProductFilter,
        score: &ScoreFn<'_>,
    ) -> dupify_core::Result<Vec<Ranked>> {
        let st = self.0.lock().unwrap();
        let mut near: Vec<(f32, usize, &Product)> = st
            .rows_of(ns)
            .filter(|(_, p)| matches(p, filter))
            .filter_map(|(pos, p)| {
                let v = p.features.clip.as_ref()?;
                Some((
                    v.iter().zip(query).map(|(a, b)| a * b).sum(),
                    *pos as usize,
                    p,
                ))
            })
            .collect();
        near.sort_by(|a, b| b.0.total_cmp(&a.0));
        near.truncate(k);
        Ok(near
            .into_iter()
            .filter_map(|(clip, pos, p)| {
                let c = Candidate {
                    id: &p.id,
                    shape: p.features.shape.as_deref(),
                    colors: &p.features.colors,
                };
                let (total, scores) = score(&c, clip)?;
                Some(Ranked {
                    id: p.id.clone(),
                    handle: pos as u64,
                    score: total,
                    scores,
                })
            })
            .collect())
    }

    fn resolve(&self, ns: &Namespace, ranked: &Ranked) -> dupify_core::Result<Option<Product>> {
        self.get(ns, ProductKey::Id(&ranked.id))
    }

    fn set_ef_search(&self, _ef: usize) -> dupify_core::Result<()> {
        Ok(())
    }

    fn ef_search(&self) -> Option<usize> {
        None
    }

    fn flush(&self) -> dupify_core::Result<()> {
        Ok(())
    }

    fn index_report(&self) -> dupify_core::Result<Vec<IndexReport>> {
        Ok(Vec::new())
    }
}

#[test]
fn a_second_backend_gets_the_same_validation_scores_filters_and_pages() {
    let sqlite = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
    let map = Catalog::with_backend(MapBackend::default());
    crate::common::behaves_like(&sqlite, &map);
}

#[test]
fn queued_products_behave_alike_on_both_backends() {
    let sqlite = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
    let map = Catalog::with_backend(MapBackend::default());
    for cat in [&sqlite, &map] {
        crate::common::queue_behaviour(cat);
    }
}

/// A catalog file written before job claims existed (no `claimed_until` column) with a job
/// queued: opening it adds the column and the job is claimable.
#[test]
fn an_sqlite_file_without_claims_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let ns = Namespace::new("old", Environment::Live).unwrap();
    let queued = {
        let cat = Catalog::open(&path, CatalogOptions::default()).unwrap();
        crate::common::enqueue_one(&cat, &ns, "queued")
    };
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("ALTER TABLE ingest_jobs DROP COLUMN claimed_until")
        .unwrap();
    let cat = Catalog::open(&path, CatalogOptions::default()).unwrap();
    let jobs = cat
        .claim_jobs(10, std::time::Duration::from_secs(60))
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].product_id, queued.id);
}

#[test]
fn handles_on_one_sqlite_file_never_claim_the_same_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claims.db");
    crate::common::concurrent_claims_hand_out_each_job_once(
        || Catalog::open(&path, CatalogOptions::default()).unwrap(),
        300,
        4,
    );
}
