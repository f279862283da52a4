//! The product catalog: durable storage (SQLite, WAL), an ANN index over CLIP embeddings
//! (an HNSW graph by usearch, persisted next to the database), and dupe search with filters and a per-channel
//! score breakdown.
//!
//! Storage sits behind [`CatalogBackend`]: validation, the model-binding rules, scoring,
//! filters' meaning and paging live here, once; a backend stores rows and answers
//! nearest-embedding queries. [`SqliteBackend`] (SQLite in WAL mode + HNSW graphs saved
//! next to the database; its docs give the durability model: a kill at any point loses no
//! committed product) is the one [`Catalog::open`] uses for a file path. With the cargo
//! feature `postgres`, `PgBackend` keeps the catalog in PostgreSQL + pgvector, shared by many
//! app servers: [`Catalog::open`] given a `postgres://` URL, or `Catalog::connect`.
//! [`Catalog::with_backend`] takes any other.
//!
//! Namespaces (account × live/test environment) are fully separate: separate rows, separate
//! indexes; no call takes more than one namespace.
//!
//! ```
//! use dupify_core::catalog::*;
//! let cat = Catalog::open_in_memory(CatalogOptions::default()).unwrap();
//! let ns = Namespace::new("acme", Environment::Test).unwrap();
//! let mut p = NewProduct::new("sku-1");
//! p.features.clip = Some(vec![1.0, 0.0, 0.0]);
//! let saved = cat.upsert(&ns, p).unwrap();
//! let hits = cat.search(&ns, &SearchQuery::by_embedding(vec![0.9, 0.1, 0.0])).unwrap();
//! assert_eq!(hits[0].product.id, saved.id);
//! ```

mod backend;
mod calibrate;
mod crud;
mod filter;
mod graph;
mod index;
mod ingest;
#[cfg(feature = "postgres")]
mod pg;
mod queue;
mod score;
mod search;
mod sqlite;
mod store;
mod types;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

pub use backend::{BindFn, Candidate, CatalogBackend, ProductKey, Ranked, ScoreFn};
pub use dupify_types::location::{postgres_url, redact_url};
#[cfg(feature = "postgres")]
pub use pg::PgBackend;
pub use sqlite::SqliteBackend;

pub use filter::ProductFilter;
pub use index::{IndexMode, IndexParams, IndexSource};
pub use ingest::{IngestFailure, IngestItem, IngestOptions, IngestReport};
pub use score::{palette_similarity, ChannelScores, ChannelWeights};
pub use types::{
    CatalogOptions, ColorSwatch, EmbeddingStatus, Environment, IndexReport, IngestJob, ListPage,
    Namespace, NewProduct, Page, Product, ProductFeatures, SearchHit, SearchQuery,
};

use crate::error::Result;
use crud::validate_new;

/// The product catalog. `Send + Sync`: share it in an `Arc`.
pub struct Catalog {
    backend: Box<dyn CatalogBackend>,
}

impl Catalog {
    /// Opens (or creates) a catalog: a file path opens the SQLite backend (ANN graphs live in
    /// `<path>.ann/`); a `postgres://` or `postgresql://` URL connects to PostgreSQL (see
    /// `Catalog::connect`), which needs the cargo feature `postgres`: without it such a URL
    /// is refused with [`crate::Error::BackendNotBuilt`] rather than taken for a file name.
    pub fn open(path: impl AsRef<Path>, opts: CatalogOptions) -> Result<Self> {
        opts.validate()?;
        if let Some(url) = postgres_url(path.as_ref()) {
            #[cfg(feature = "postgres")]
            return Self::connect(url, opts);
            #[cfg(not(feature = "postgres"))]
            return Err(crate::Error::BackendNotBuilt {
                location: redact_url(url),
                feature: "postgres",
            });
        }
        Ok(Self::with_backend(SqliteBackend::open(path, opts)?))
    }

    /// Connects to a catalog in PostgreSQL (`postgres://user@host:5432/db`; libpq's URL
    /// syntax), creating or migrating its tables. Many app servers may share one database:
    /// every write is one transaction, and the vector index lives in the database. See
    /// [`PgBackend`] for what differs from SQLite. Errors name the URL with its password
    /// hidden.
    #[cfg(feature = "postgres")]
    pub fn connect(url: &str, opts: CatalogOptions) -> Result<Self> {
        opts.validate()?;
        Ok(Self::with_backend(PgBackend::connect(url, opts)?))
    }

    /// An in-memory catalog (tests, ephemeral use); nothing is persisted.
    pub fn open_in_memory(opts: CatalogOptions) -> Result<Self> {
        opts.validate()?;
        Ok(Self::with_backend(SqliteBackend::open_in_memory(opts)?))
    }

    /// A catalog over another storage backend.
    pub fn with_backend(backend: impl CatalogBackend + 'static) -> Self {
        Catalog {
            backend: Box::new(backend),
        }
    }

    /// Fixes `ef_search` (the HNSW candidate list size per query) on the open catalog, for
    /// every namespace, without reopening or rebuilding: the graph does not depend on it. It overrides the breadth each namespace calibrated for
    /// `IndexParams::target_recall` (and stops further calibration on this handle). Larger
    /// values raise recall and latency; use it to tune the recall/speed trade-off on a live
    /// catalog (the benchmark sweeps it this way). Not persisted: the next open calibrates
    /// again (or uses `CatalogOptions::index.ef_search` when `target_recall` is 0).
    ///
    /// Errors: `invalid_parameter` unless `1 <= ef <= 4096`.
    pub fn set_ef_search(&self, ef: usize) -> Result<()> {
        IndexParams::default().with_ef_search(ef).validate()?;
        self.backend.set_ef_search(ef)
    }

    /// The `ef_search` every search uses, when one is fixed (by `set_ef_search`, by
    /// `target_recall = 0`, or on PostgreSQL); `None` while each namespace uses the breadth it
    /// calibrated, which `index_report` lists.
    pub fn ef_search(&self) -> Option<usize> {
        self.backend.ef_search()
    }

    /// Saves changed ANN graphs next to the database (no-op in memory or with
    /// `persist_index = false`). Also done on drop; call it after bulk loads so a crash does
    /// not force a rebuild on the next open.
    pub fn flush(&self) -> Result<()> {
        self.backend.flush()
    }

    /// The state of every namespace's index.
    pub fn index_report(&self) -> Result<Vec<IndexReport>> {
        self.backend.index_report()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn catalog_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Catalog>();
    }

    #[test]
    fn environment_parses() {
        assert_eq!("live".parse::<Environment>().unwrap(), Environment::Live);
        assert_eq!("test".parse::<Environment>().unwrap(), Environment::Test);
        assert!("prod".parse::<Environment>().is_err());
    }

    #[cfg(not(feature = "postgres"))]
    #[test]
    fn a_postgres_url_without_the_feature_is_refused_not_taken_for_a_file() {
        let e = match Catalog::open("postgres://app:s3cret@db/shop", CatalogOptions::default()) {
            Err(e) => e,
            Ok(_) => panic!("a URL opened as a file"),
        };
        assert!(matches!(e, Error::BackendNotBuilt { .. }), "{e}");
        assert!(e.to_string().contains("postgres://app:***@db/shop"), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn bad_options_are_rejected_before_the_graph_sees_them() {
        let o = CatalogOptions::default().with_index(IndexParams::default().with_m(1000));
        assert!(matches!(
            Catalog::open_in_memory(o),
            Err(Error::InvalidParameter { .. })
        ));
    }
}
