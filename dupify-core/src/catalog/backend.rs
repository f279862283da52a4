//! The storage seam of the catalog: what [`super::Catalog`] needs of a place that keeps
//! products and finds nearest embeddings. Everything a backend must not decide stays in
//! `Catalog`: validation of products, vectors, options and queries; the namespace's model
//! binding rules; the channel scores and their fusion; `by_product`, price and brand
//! semantics; sorting, `min_score` and paging. A backend stores rows, keeps its ANN index in
//! step with them, applies [`ProductFilter`]s exactly as documented there, and answers
//! candidate queries.
//!
//! [`SqliteBackend`](super::sqlite::SqliteBackend) (SQLite in WAL mode + an in-memory HNSW
//! graph per namespace, saved next to the database) is the implementation the crate ships.

use std::collections::HashMap;

use super::{
    ChannelScores, ColorSwatch, IndexReport, IngestJob, Namespace, NewProduct, Product,
    ProductFilter,
};
use crate::error::Result;

/// Which unique key a product is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductKey<'a> {
    /// The catalog's id.
    Id(&'a str),
    /// The caller's external id.
    ExternalId(&'a str),
}

/// What the scoring needs of a candidate, borrowed from the backend while it ranks.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The product's catalog id.
    pub id: &'a str,
    /// Its silhouette shape embedding.
    pub shape: Option<&'a [f32]>,
    /// Its palette (shares in percent).
    pub colors: &'a [ColorSwatch],
}

/// A scored candidate whose row has not been read yet: [`CatalogBackend::resolve`] reads the
/// ones on the final page.
#[derive(Debug, Clone)]
pub struct Ranked {
    /// The product's catalog id (ties are broken by it).
    pub id: String,
    /// The backend's own handle for reading the row back.
    pub handle: u64,
    /// Fused score.
    pub score: f32,
    /// Per-channel scores.
    pub scores: ChannelScores,
}

/// Scores a candidate given its cosine to the query embedding; `None` drops it.
pub type ScoreFn<'a> = dyn Fn(&Candidate<'_>, f32) -> Option<(f32, ChannelScores)> + 'a;

/// Decides the namespace's model binding inside the write: given the model recorded now
/// (`None`: none yet), returns the model to record (`Some` only when it changes) or refuses
/// the write.
pub type BindFn<'a> = dyn Fn(Option<&str>) -> Result<Option<String>> + 'a;

/// A catalog backend. Every method takes the namespace it works on; none crosses namespaces.
/// Writes are atomic (all or none) and durable when they return, and later reads and
/// searches see them.
pub trait CatalogBackend: Send + Sync {
    /// The embedding dimension fixed for this catalog, once known.
    fn dim(&self) -> Option<usize>;

    /// Inserts or replaces (by `external_id`) `products` in one transaction. Products arrive
    /// validated, embeddings normalised to `dim` (persisted as the catalog's dimension when
    /// none was). `bind` runs inside the transaction with the namespace's recorded model.
    fn upsert(
        &self,
        ns: &Namespace,
        products: &[NewProduct],
        dim: Option<usize>,
        bind: &BindFn<'_>,
    ) -> Result<Vec<Product>>;

    /// Stores `product` (as `upsert` does, features empty) and queues it for feature
    /// extraction from `image_url`, in one transaction. Any earlier job of the product is
    /// replaced; every `upsert` of the product (and its deletion) drops its job.
    fn enqueue(&self, ns: &Namespace, product: &NewProduct, image_url: &str) -> Result<Product>;

    /// Up to `limit` jobs still `processing`, claimed or not, oldest first, across
    /// namespaces.
    fn pending_jobs(&self, limit: usize) -> Result<Vec<IngestJob>>;

    /// Claims up to `limit` jobs still `processing` whose last claim has ended, oldest first,
    /// for `lease_ms` milliseconds: atomically with respect to every other claim on the same
    /// storage (other processes included), so no two claimers get the same job while its
    /// lease runs. Completing or failing a job ends its claim for good.
    fn claim_jobs(&self, limit: usize, lease_ms: i64) -> Result<Vec<IngestJob>>;

    /// Stores the product with its features (as `upsert` of one product) if `job` is still
    /// the product's pending job, in one transaction; `None` (nothing written) when it was
    /// superseded (uploaded again, deleted) since.
    fn complete_job(
        &self,
        job: &IngestJob,
        product: &NewProduct,
        dim: Option<usize>,
        bind: &BindFn<'_>,
    ) -> Result<Option<Product>>;

    /// Marks `job` failed with a hosted error code and message, if it is still pending;
    /// returns whether it was.
    fn fail_job(&self, job: &IngestJob, code: &str, message: &str) -> Result<bool>;

    /// The model recorded for the namespace's embeddings.
    fn namespace_model(&self, ns: &Namespace) -> Result<Option<String>>;

    /// Drops every embedding of the namespace and its model binding; returns how many.
    fn clear_embeddings(&self, ns: &Namespace) -> Result<usize>;

    /// Deletes a product by catalog id; `false` when there was none.
    fn delete(&self, ns: &Namespace, id: &str) -> Result<bool>;

    /// One product by a unique key.
    fn get(&self, ns: &Namespace, key: ProductKey<'_>) -> Result<Option<Product>>;

    /// Up to `limit` products after position `after` in insertion order, with their
    /// positions (the paging cursor), matching `filter`.
    fn list(
        &self,
        ns: &Namespace,
        after: i64,
        limit: usize,
        filter: &ProductFilter,
    ) -> Result<Vec<(i64, Product)>>;

    /// How many products match `filter`.
    fn count(&self, ns: &Namespace, filter: &ProductFilter) -> Result<u64>;

    /// Stored image hashes by external id, for the given external ids (resumable ingest).
    fn image_hashes(
        &self,
        ns: &Namespace,
        external_ids: &[String],
    ) -> Result<HashMap<String, String>>;

    /// Every product matching `filter` (a search without an embedding query).
    fn scan(&self, ns: &Namespace, filter: &ProductFilter) -> Result<Vec<Product>>;

    /// About `k` candidates nearest the normalised `query` among products matching `filter`,
    /// each scored by `score` (with its cosine to the query) while the index is read.
    fn nearest(
        &self,
        ns: &Namespace,
        query: &[f32],
        k: usize,
        filter: &ProductFilter,
        score: &ScoreFn<'_>,
    ) -> Result<Vec<Ranked>>;

    /// The row behind a ranked candidate; `None` when it was deleted since.
    fn resolve(&self, ns: &Namespace, ranked: &Ranked) -> Result<Option<Product>>;

    /// The rows behind a page of ranked candidates, in their order (`None` for one deleted
    /// since). The default reads them one by one with [`CatalogBackend::resolve`]; a backend
    /// across a network reads them in one round trip instead.
    fn resolve_many(&self, ns: &Namespace, ranked: &[&Ranked]) -> Result<Vec<Option<Product>>> {
        ranked.iter().map(|r| self.resolve(ns, r)).collect()
    }

    /// Changes the ANN search breadth for every namespace (see `Catalog::set_ef_search`).
    fn set_ef_search(&self, ef: usize) -> Result<()>;

    /// The ANN search breadth when one value serves every namespace; `None` where each
    /// namespace calibrates its own (see `Catalog::ef_search`).
    fn ef_search(&self) -> Option<usize>;

    /// Persists what is only in memory (saved index graphs); a no-op where nothing is.
    fn flush(&self) -> Result<()>;

    /// The state of every namespace's index.
    fn index_report(&self) -> Result<Vec<IndexReport>>;
}
