//! Queued products: stored at once from an image URL, their features extracted later by a
//! worker, durably — the queue is a table of the catalog database, so a restart resumes it.
//!
//! The flow a server runs: [`Catalog::enqueue`] when a product arrives with only an
//! `image_url` (the product is listed at once, `embedding_status` `processing`, not yet
//! searchable by image); a worker loops over [`Catalog::claim_jobs`], fetches and extracts
//! each image, and calls [`Catalog::complete_job`] (features stored, `ready`, searchable) or
//! [`Catalog::fail_job`] (`failed` with the error code). Uploading the product again, with an
//! image or another URL, supersedes its job: completing the old one writes nothing. Several
//! workers may share a database: a claim leases its jobs to one worker, a worker that dies
//! loses its claims when their lease ends, and a job finished twice is written once.

use std::time::Duration;

use super::crud::{prepare_batch, validate_new};
use super::{Catalog, IngestJob, Namespace, NewProduct, Product, ProductFeatures};
use crate::error::{Error, Result};

/// The longest lease [`Catalog::claim_jobs`] takes: one day.
const MAX_LEASE_MS: i64 = 24 * 3600 * 1000;

fn check_limit(limit: usize) -> Result<()> {
    if (1..=1000).contains(&limit) {
        Ok(())
    } else {
        Err(Error::invalid("limit", "must be in 1..=1000"))
    }
}

impl Catalog {
    /// Stores `product` without features and queues it for extraction from its
    /// `image_url`, in one transaction (replacing a product with its `external_id`, whose
    /// features go until the job completes). Refuses a product without `image_url` or with
    /// features (store those with [`Catalog::upsert`]).
    pub fn enqueue(&self, ns: &Namespace, product: NewProduct) -> Result<Product> {
        ns.validate()?;
        let url = product
            .image_url
            .clone()
            .ok_or_else(|| Error::invalid("image_url", "a queued product needs an image URL"))?;
        if product.features != ProductFeatures::default() || product.image_hash.is_some() {
            return Err(Error::invalid(
                "features",
                "a queued product gets its features from its image; store features with upsert",
            ));
        }
        validate_new(&product)?;
        let (mut products, _) = prepare_batch(vec![product], None)?;
        let product = products
            .pop()
            .ok_or_else(|| Error::Internal("enqueue prepared nothing".into()))?;
        self.backend.enqueue(ns, &product, &url)
    }

    /// Up to `limit` (1..=1000) queued jobs, oldest first, across namespaces, whether a
    /// worker has claimed them or not: the queue as it stands, for inspection. Workers use
    /// [`Catalog::claim_jobs`].
    pub fn pending_jobs(&self, limit: usize) -> Result<Vec<IngestJob>> {
        check_limit(limit)?;
        self.backend.pending_jobs(limit)
    }

    /// Claims up to `limit` (1..=1000) queued jobs, oldest first, for `lease` (1 ms to 1
    /// day): until the lease ends no other claim returns them — from this process or any
    /// other sharing the catalog database (PostgreSQL: `FOR UPDATE SKIP LOCKED`, the
    /// database's clock; SQLite: one write transaction) — so several workers never fetch
    /// the same image. A job neither completed nor failed when its lease ends (its worker
    /// died or gave up) is claimed again by the next worker: choose a lease longer than a
    /// fetch plus an extraction takes.
    pub fn claim_jobs(&self, limit: usize, lease: Duration) -> Result<Vec<IngestJob>> {
        check_limit(limit)?;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        if !(1..=MAX_LEASE_MS).contains(&lease_ms) {
            return Err(Error::invalid("lease", "must be from 1 ms to 1 day"));
        }
        self.backend.claim_jobs(limit, lease_ms)
    }

    /// Stores the features extracted for `job` (with the image's content hash) on its
    /// product, under the same validation and model binding as [`Catalog::upsert`]. `None`
    /// when the job was superseded or its product deleted: nothing is written.
    pub fn complete_job(
        &self,
        job: &IngestJob,
        features: ProductFeatures,
        image_hash: Option<String>,
    ) -> Result<Option<Product>> {
        let Ok(current) = self.get(&job.namespace, &job.product_id) else {
            return Ok(None);
        };
        let mut p = NewProduct::from_product(current);
        p.features = features;
        p.image_hash = image_hash;
        validate_new(&p)?;
        let (products, dim) = prepare_batch(vec![p], self.backend.dim())?;
        let bind = |recorded: Option<&str>| super::crud::bind_model(recorded, &products);
        let product = products
            .first()
            .ok_or_else(|| Error::Internal("complete_job prepared nothing".into()))?;
        self.backend.complete_job(job, product, dim, &bind)
    }

    /// Records that `job` failed with `error` (its hosted code and message); the product
    /// stays, without features, `failed`. Returns whether the job was still pending.
    pub fn fail_job(&self, job: &IngestJob, error: &Error) -> Result<bool> {
        self.backend
            .fail_job(job, error.error_code().code, &error.to_string())
    }
}
