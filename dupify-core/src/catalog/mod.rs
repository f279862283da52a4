//! The product catalog: durable storage (SQLite, WAL), an ANN index over CLIP embeddings
//! (hnsw_rs, persisted next to the database), and dupe search with filters and a per-channel
//! score breakdown.
//!
//! Durability model: SQLite is the truth. Every mutation is one `BEGIN IMMEDIATE` transaction
//! that also bumps its namespace's generation counter; the in-memory index is updated after
//! the commit. The graph files are a cache, saved by [`Catalog::flush`] (and on drop) with
//! their metadata written atomically (temp + fsync + rename); on open each namespace's graph
//! is loaded and reconciled with rows committed after it was saved, or rebuilt when missing,
//! unreadable or from another database. Killing the process at any point therefore loses no
//! committed product and never exposes a half-written one.
//!
//! Reopen cost: loading a saved graph (hnsw_rs's loader, one thread, dominated by linking
//! every edge: random `Arc` increments across the whole graph) runs on its own thread while
//! the ranking data are read from SQLite and interned; the two are then attached. A graph
//! data file of the wrong length is refused before hnsw_rs reads it (its loader exits the
//! process on a short data file) and the graph is rebuilt.
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

mod crud;
mod filter;
mod index;
mod ingest;
mod lifecycle;
mod score;
mod search;
mod store;
mod types;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

pub use filter::ProductFilter;
pub use index::{IndexMode, IndexParams, IndexSource};
pub use ingest::{IngestFailure, IngestItem, IngestOptions, IngestReport};
pub use score::{palette_similarity, ChannelScores, ChannelWeights};
pub use types::{
    CatalogOptions, ColorSwatch, Environment, IndexReport, ListPage, Namespace, NewProduct, Page,
    Product, ProductFeatures, SearchHit, SearchQuery,
};

use crud::validate_new;
use index::{GraphChecksums, NsIndex};

#[derive(Serialize, Deserialize)]
struct IndexMeta {
    format: u32,
    db_id: String,
    ns_id: i64,
    generation: u64,
    max_vec_id: usize,
    points: usize,
    dim: usize,
    m: usize,
    ef_construction: usize,
    dir: String,
    /// Of the files in `dir` as saved; checked before the graph is read.
    checksums: GraphChecksums,
}

/// 2: `checksums` added (a format-1 file is rebuilt once).
const INDEX_FORMAT: u32 = 2;

/// The product catalog. `Send + Sync`: share it in an `Arc`. Writers serialise on one
/// connection; readers use a pool of read-only connections (WAL lets them read while a write
/// is in progress) and a read lock on the index that writers hold only to apply a committed
/// change.
pub struct Catalog {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    path: Option<PathBuf>,
    opts: CatalogOptions,
    db_id: String,
    dim: RwLock<Option<usize>>,
    indexes: RwLock<HashMap<i64, NsIndex>>,
    /// The live `ef_search` (starts as `opts.index.ef_search`; see [`Catalog::set_ef_search`]).
    /// Written only while `indexes` is write-locked, so every index agrees with it.
    ef_search: AtomicUsize,
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

    #[test]
    fn bad_options_are_rejected_before_hnsw_sees_them() {
        let o = CatalogOptions::default().with_index(IndexParams::default().with_m(1000));
        assert!(matches!(
            Catalog::open_in_memory(o),
            Err(Error::InvalidParameter { .. })
        ));
    }
}
