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

mod filter;
mod index;
mod ingest;
mod search;
mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use serde::{Deserialize, Serialize};

pub use filter::ProductFilter;
pub use index::{IndexMode, IndexParams, IndexSource};
pub use ingest::{IngestFailure, IngestItem, IngestOptions, IngestReport};
pub use search::{palette_similarity, ChannelScores, ChannelWeights};

use crate::error::{Error, Result};
use index::{GraphChecksums, LiveRows, NsIndex};

/// Live or test data. Test keys never see or change live products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Production data (`fe_live_` keys).
    Live,
    /// Test data (`fe_test_` keys).
    Test,
}

impl Environment {
    /// `"live"` or `"test"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }
}

impl FromStr for Environment {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "live" => Ok(Environment::Live),
            "test" => Ok(Environment::Test),
            _ => Err(Error::invalid("environment", "must be `live` or `test`")),
        }
    }
}

/// Whose products: one account in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Namespace {
    /// Account id (opaque, non-empty, at most 256 bytes).
    pub account: String,
    /// Live or test.
    pub environment: Environment,
}

impl Namespace {
    /// Validated constructor.
    pub fn new(account: impl Into<String>, environment: Environment) -> Result<Self> {
        let ns = Namespace {
            account: account.into(),
            environment,
        };
        ns.validate()?;
        Ok(ns)
    }
    fn validate(&self) -> Result<()> {
        if self.account.is_empty() || self.account.len() > 256 {
            return Err(Error::invalid("account", "must be 1..=256 bytes"));
        }
        Ok(())
    }
}

/// One dominant colour: CIELAB coordinates and its share of the product (0..1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColorSwatch {
    /// CIELAB (D65) L*, a*, b*.
    pub lab: [f32; 3],
    /// Fraction of the product's pixels, 0..=1.
    pub share: f32,
}

/// Extracted features of a product image, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductFeatures {
    /// CLIP image embedding (normalised on ingest). Its dimension is fixed per catalog.
    pub clip: Option<Vec<f32>>,
    /// Silhouette shape embedding (compared by cosine).
    pub shape: Option<Vec<f32>>,
    /// Dominant colours.
    #[serde(default)]
    pub colors: Vec<ColorSwatch>,
    /// Attribute predictions, stored as given.
    pub attributes: Option<serde_json::Value>,
    /// The model that made the features (e.g. "openai/clip-vit-base-patch32").
    pub model_id: Option<String>,
}

/// A product to insert or replace (matched by `external_id` within the namespace).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewProduct {
    /// The caller's id; unique per namespace; upserts match on it. 1..=512 bytes.
    pub external_id: String,
    pub title: Option<String>,
    pub sku: Option<String>,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    /// Price in `currency` units; finite and ≥ 0.
    pub price: Option<f64>,
    /// ISO 4217 code, 3 ASCII letters (upper-cased). Default "USD".
    pub currency: Option<String>,
    pub image_url: Option<String>,
    pub product_url: Option<String>,
    /// Free-form JSON object.
    #[serde(default)]
    pub metadata: serde_json::Value,
    #[serde(default)]
    pub features: ProductFeatures,
    /// Content hash of the source image (to skip re-extraction of unchanged images).
    pub image_hash: Option<String>,
}

impl NewProduct {
    /// A product with only its external id set.
    pub fn new(external_id: impl Into<String>) -> Self {
        NewProduct {
            external_id: external_id.into(),
            metadata: serde_json::Value::Object(Default::default()),
            ..Default::default()
        }
    }
}

/// A stored product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// Catalog id (UUID v4).
    pub id: String,
    pub external_id: String,
    pub title: Option<String>,
    pub sku: Option<String>,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub price: Option<f64>,
    pub currency: String,
    pub image_url: Option<String>,
    pub product_url: Option<String>,
    pub metadata: serde_json::Value,
    pub features: ProductFeatures,
    pub image_hash: Option<String>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds.
    pub updated_at_ms: i64,
    pub namespace: Namespace,
}

/// A page request for [`Catalog::list`]: keyset pagination (stable under inserts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// 1..=1000. 0 means the default, 50.
    pub limit: usize,
    /// `next_cursor` of the previous page; `None` for the first.
    pub cursor: Option<String>,
}

/// One page of products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListPage {
    pub items: Vec<Product>,
    /// Pass back in [`Page::cursor`] for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// A similarity search. Set `embedding` or `by_product` (or, for shape/colour-only search,
/// `shape`/`colors`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchQuery {
    /// CLIP query vector (image or text embedding) of the catalog dimension.
    pub embedding: Option<Vec<f32>>,
    /// Silhouette shape vector of the query.
    pub shape: Option<Vec<f32>>,
    /// Colour palette of the query.
    #[serde(default)]
    pub colors: Vec<ColorSwatch>,
    /// Find dupes of this stored product (its id); its features are the query and it is never
    /// in the results.
    pub by_product: Option<String>,
    #[serde(default)]
    pub filter: ProductFilter,
    /// Only products at least this many percent cheaper than `by_product`, in its currency.
    pub cheaper_by_percent: Option<f64>,
    /// Leave out products of `by_product`'s own brand (a dupe is another brand's look-alike).
    /// Needs `by_product`; a query product without a brand excludes nothing.
    #[serde(default)]
    pub exclude_own_brand: bool,
    /// Drop hits whose combined score is below this (applied before `offset`/`limit`).
    pub min_score: Option<f32>,
    /// Channel weights; `None` = defaults.
    pub weights: Option<ChannelWeights>,
    /// Results wanted, 1..=1000. 0 means 10.
    pub limit: usize,
    /// Results to skip (pagination), ≤ 10,000.
    pub offset: usize,
    /// The model `embedding` came from (`Features::model_id`). When set, a namespace whose
    /// embeddings come from another model refuses the query (`invalid_parameter`) instead of
    /// ranking vectors of two spaces against each other. `search_image`/`search_text` set it.
    #[serde(default)]
    pub model_id: Option<String>,
}

impl SearchQuery {
    /// Nearest products to a CLIP embedding.
    pub fn by_embedding(embedding: Vec<f32>) -> Self {
        SearchQuery {
            embedding: Some(embedding),
            ..Default::default()
        }
    }
    /// Dupes of a stored product.
    pub fn dupes_of(product_id: impl Into<String>) -> Self {
        SearchQuery {
            by_product: Some(product_id.into()),
            ..Default::default()
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub product: Product,
    /// Weighted combination of `scores`.
    pub score: f32,
    pub scores: ChannelScores,
}

/// Catalog configuration, with documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogOptions {
    /// CLIP dimension; `None` = taken from the first embedding stored, then fixed.
    pub dim: Option<usize>,
    /// ANN and brute-force parameters.
    pub index: IndexParams,
    /// Save ANN graphs next to the database on `flush` and drop. Default true.
    pub persist_index: bool,
    /// `synchronous=FULL` (a commit survives power loss) instead of NORMAL (survives a process
    /// crash). Default true.
    pub synchronous_full: bool,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        CatalogOptions {
            dim: None,
            index: IndexParams::default(),
            persist_index: true,
            synchronous_full: true,
        }
    }
}

impl CatalogOptions {
    /// Sets the index parameters.
    pub fn with_index(mut self, index: IndexParams) -> Self {
        self.index = index;
        self
    }
    /// Fixes the embedding dimension.
    pub fn with_dim(mut self, dim: usize) -> Self {
        self.dim = Some(dim);
        self
    }
    /// Rejects bad values.
    pub fn validate(&self) -> Result<()> {
        self.index.validate()?;
        if let Some(d) = self.dim {
            if !(1..=65_536).contains(&d) {
                return Err(Error::invalid("dim", "must be in 1..=65536"));
            }
        }
        Ok(())
    }
}

/// State of one namespace's index, for monitoring and tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexReport {
    pub namespace: Namespace,
    pub mode: IndexMode,
    pub source: IndexSource,
    pub live: usize,
    pub tombstones: usize,
}

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

fn normalise(name: &str, v: &[f32], dim: usize) -> Result<Vec<f32>> {
    if v.len() != dim {
        return Err(Error::invalid(
            name,
            format!("has dimension {}, the catalog's is {dim}", v.len()),
        ));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(Error::invalid(name, "contains NaN or infinity"));
    }
    let n = index::dot(v, v).sqrt();
    if n == 0.0 {
        return Err(Error::invalid(name, "is the zero vector"));
    }
    Ok(v.iter().map(|x| x / n).collect())
}

fn validate_new(p: &NewProduct) -> Result<()> {
    if p.external_id.is_empty() || p.external_id.len() > 512 {
        return Err(Error::invalid("external_id", "must be 1..=512 bytes"));
    }
    if let Some(pr) = p.price {
        if !pr.is_finite() || pr < 0.0 {
            return Err(Error::invalid("price", "must be a finite number ≥ 0"));
        }
    }
    if let Some(c) = &p.currency {
        if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Error::invalid(
                "currency",
                "must be a 3-letter ISO 4217 code",
            ));
        }
    }
    if !p.metadata.is_object() && !p.metadata.is_null() {
        return Err(Error::invalid("metadata", "must be a JSON object"));
    }
    if let Some(s) = &p.features.shape {
        if s.is_empty() || s.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid(
                "features.shape",
                "must be non-empty and finite",
            ));
        }
    }
    for c in &p.features.colors {
        if c.lab.iter().any(|x| !x.is_finite()) || !(0.0..=1.0).contains(&c.share) {
            return Err(Error::invalid(
                "features.colors",
                "lab must be finite and share in 0..=1",
            ));
        }
    }
    Ok(())
}

impl Catalog {
    /// Opens (or creates) a catalog database at `path`; ANN graphs live in `<path>.ann/`.
    pub fn open(path: impl AsRef<Path>, opts: CatalogOptions) -> Result<Self> {
        opts.validate()?;
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path)?;
        Self::init(conn, Some(path), opts)
    }

    /// An in-memory catalog (tests, ephemeral use); nothing is persisted.
    pub fn open_in_memory(opts: CatalogOptions) -> Result<Self> {
        opts.validate()?;
        Self::init(Connection::open_in_memory()?, None, opts)
    }

    fn init(mut conn: Connection, path: Option<PathBuf>, opts: CatalogOptions) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        if path.is_some() {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(
            None,
            "synchronous",
            if opts.synchronous_full {
                "FULL"
            } else {
                "NORMAL"
            },
        )?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(store::SCHEMA)?;
        store::record_legacy_ns_models(&mut conn)?;
        let db_id = match store::meta_get(&conn, "db_id")? {
            Some(id) => id,
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                store::meta_set(&conn, "db_id", &id)?;
                id
            }
        };
        let stored_dim: Option<usize> = store::meta_get(&conn, "dim")?.and_then(|d| d.parse().ok());
        let dim = match (stored_dim, opts.dim) {
            (Some(s), Some(o)) if s != o => {
                return Err(Error::invalid(
                    "dim",
                    format!("the catalog stores {s}-d embeddings, options ask for {o}"),
                ))
            }
            (Some(s), _) => Some(s),
            (None, o) => o,
        };
        let ef_search = AtomicUsize::new(opts.index.ef_search);
        let cat = Catalog {
            ef_search,
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            path,
            opts,
            db_id,
            dim: RwLock::new(dim),
            indexes: RwLock::new(HashMap::new()),
        };
        cat.load_indexes()?;
        Ok(cat)
    }

    fn ann_dir(&self) -> Option<PathBuf> {
        self.path.as_ref().map(|p| {
            let mut s = p.as_os_str().to_owned();
            s.push(".ann");
            PathBuf::from(s)
        })
    }

    /// Runs `f` on a read connection: from the pool for file catalogs (never blocked by the
    /// writer, thanks to WAL), the single connection for in-memory ones.
    fn read<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let Some(path) = &self.path else {
            return f(&lock(&self.writer));
        };
        let conn = lock(&self.readers).pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(30))?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = lock(&self.readers);
        if pool.len() < 16 {
            pool.push(conn);
        }
        out
    }

    fn dim(&self) -> Option<usize> {
        *self.dim.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The configured index parameters with the live `ef_search`.
    fn index_params(&self) -> IndexParams {
        IndexParams {
            ef_search: self.ef_search.load(Ordering::Relaxed),
            ..self.opts.index
        }
    }

    /// Changes `ef_search` (the HNSW candidate list size per query) on the open catalog, for
    /// every namespace, without reopening or rebuilding: hnsw_rs takes it per query, and the
    /// graph does not depend on it. Larger values raise recall and latency; use it to tune
    /// the recall/speed trade-off on a live catalog (the benchmark sweeps it this way). Not
    /// persisted: the next open starts from `CatalogOptions::index.ef_search`.
    ///
    /// Errors: `invalid_parameter` unless `1 <= ef <= 4096`.
    pub fn set_ef_search(&self, ef: usize) -> Result<()> {
        IndexParams {
            ef_search: ef,
            ..self.opts.index
        }
        .validate()?;
        let mut indexes = self.indexes.write().unwrap_or_else(|p| p.into_inner());
        self.ef_search.store(ef, Ordering::Relaxed);
        for ix in indexes.values_mut() {
            ix.set_ef_search(ef);
        }
        Ok(())
    }

    /// The `ef_search` searches use now.
    pub fn ef_search(&self) -> usize {
        self.ef_search.load(Ordering::Relaxed)
    }

    /// Builds every namespace's index from SQLite and the saved graphs (see module docs).
    fn load_indexes(&self) -> Result<()> {
        let conn = lock(&self.writer);
        let Some(dim) = self.dim() else {
            return Ok(());
        };
        let params = self.index_params();
        let last_vec = store::last_vec_id(&conn)?;
        let mut map = HashMap::new();
        for (ns_id, _) in store::namespaces(&conn)? {
            let live = store::live_count(&conn, ns_id)?;
            let ix = if live < params.brute_force_below {
                NsIndex::build(dim, params, store::entries(&conn, ns_id, 0)?)
            } else {
                match self.load_saved(&conn, ns_id, dim, last_vec) {
                    Ok(ix) => ix,
                    Err(_) => {
                        let mut ix = NsIndex::build(dim, params, store::entries(&conn, ns_id, 0)?);
                        ix.source = IndexSource::Rebuilt;
                        ix
                    }
                }
            };
            map.insert(ns_id, ix);
        }
        *self.indexes.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
    }

    fn load_saved(
        &self,
        conn: &Connection,
        ns_id: i64,
        dim: usize,
        last_vec: usize,
    ) -> Result<NsIndex> {
        let ann = self
            .ann_dir()
            .ok_or_else(|| Error::Internal("no index dir".into()))?;
        let meta_path = ann.join(format!("ns-{ns_id}.json"));
        let bytes = std::fs::read(&meta_path).map_err(|e| index::io_err(&meta_path, e))?;
        let meta: IndexMeta = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("index metadata: {e}")))?;
        let p = self.index_params();
        if meta.format != INDEX_FORMAT
            || meta.db_id != self.db_id
            || meta.ns_id != ns_id
            || meta.dim != dim
            || meta.m != p.m
            || meta.ef_construction != p.ef_construction
            || meta.max_vec_id > last_vec
            || meta.dir.contains(['/', '\\'])
        {
            return Err(Error::Internal("index metadata does not match".into()));
        }
        // The graph file is read on a second thread while the ranking data come from SQLite.
        let graph_dir = ann.join(&meta.dir);
        let (graph, in_graph) = std::thread::scope(|sc| {
            let g = sc.spawn(|| NsIndex::load_graph(&graph_dir, dim, meta.points, meta.checksums));
            let rows = store::hot_rows(conn, ns_id, meta.max_vec_id).map(LiveRows::new);
            let g = g
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("hnsw load thread panicked".into())));
            (g, rows)
        });
        let mut ix = NsIndex::load(graph?, dim, p, in_graph?, meta.max_vec_id);
        let newer = store::entries(conn, ns_id, meta.max_vec_id)?;
        let fresh = newer.is_empty() && store::generation(conn, ns_id)? == meta.generation;
        ix.insert(newer);
        if ix.remove(&[]) {
            return Err(Error::Internal("too many tombstones; rebuild".into()));
        }
        ix.source = if fresh {
            ix.dirty = false;
            IndexSource::Loaded
        } else {
            IndexSource::Reconciled
        };
        Ok(ix)
    }

    /// Saves changed ANN graphs next to the database (no-op in memory or with
    /// `persist_index = false`). Called on drop too; call it after bulk loads so a crash does
    /// not force a rebuild on the next open.
    pub fn flush(&self) -> Result<()> {
        let (Some(ann), true) = (self.ann_dir(), self.opts.persist_index) else {
            return Ok(());
        };
        let conn = lock(&self.writer);
        let mut indexes = self.indexes.write().unwrap_or_else(|p| p.into_inner());
        for (ns_id, ix) in indexes.iter_mut() {
            if !ix.dirty {
                continue;
            }
            let meta_path = ann.join(format!("ns-{ns_id}.json"));
            let old: Option<IndexMeta> = std::fs::read(&meta_path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if ix.mode() == IndexMode::Ann {
                let dir_name = format!("ns-{ns_id}-{}", uuid::Uuid::new_v4().simple());
                let dir = ann.join(&dir_name);
                ix.dump(&dir)?;
                index::sync_dir(&dir)?;
                let checksums = GraphChecksums::of(&dir)?;
                let meta = IndexMeta {
                    format: INDEX_FORMAT,
                    db_id: self.db_id.clone(),
                    ns_id: *ns_id,
                    generation: store::generation(&conn, *ns_id)?,
                    max_vec_id: ix.max_id,
                    points: ix.graph_points(),
                    dim: ix.dim(),
                    m: self.opts.index.m,
                    ef_construction: self.opts.index.ef_construction,
                    dir: dir_name,
                    checksums,
                };
                let bytes = serde_json::to_vec(&meta)
                    .map_err(|e| Error::Internal(format!("index metadata: {e}")))?;
                index::write_atomic(&meta_path, &bytes)?;
            } else if old.is_some() {
                std::fs::remove_file(&meta_path).map_err(|e| index::io_err(&meta_path, e))?;
            }
            if let Some(old) = old {
                if !old.dir.contains(['/', '\\']) && !old.dir.is_empty() {
                    let _ = std::fs::remove_dir_all(ann.join(old.dir));
                }
            }
            ix.dirty = false;
        }
        Ok(())
    }

    /// Inserts or replaces one product (matched by `external_id`).
    pub fn upsert(&self, ns: &Namespace, product: NewProduct) -> Result<Product> {
        let mut out = self.upsert_batch(ns, vec![product])?;
        out.pop()
            .ok_or_else(|| Error::Internal("upsert returned nothing".into()))
    }

    /// Inserts or replaces many products in one transaction: all or none. A batch with the
    /// same `external_id` twice keeps the last.
    pub fn upsert_batch(&self, ns: &Namespace, products: Vec<NewProduct>) -> Result<Vec<Product>> {
        ns.validate()?;
        let mut products = products;
        for p in &mut products {
            validate_new(p)?;
            if p.metadata.is_null() {
                p.metadata = serde_json::Value::Object(Default::default());
            }
            if let Some(c) = &mut p.currency {
                c.make_ascii_uppercase();
            }
        }
        let mut conn = lock(&self.writer);
        // The dimension is fixed by options, by the database, or by this first embedding.
        let dim = match self.dim() {
            Some(d) => Some(d),
            None => products
                .iter()
                .find_map(|p| p.features.clip.as_ref().map(Vec::len)),
        };
        if let Some(dim) = dim {
            for p in &mut products {
                if let Some(v) = &p.features.clip {
                    p.features.clip = Some(normalise("features.clip", v, dim)?);
                }
            }
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ns_id = store::ensure_ns(&tx, ns)?;
        bind_model(&tx, ns_id, &products)?;
        if let (Some(d), None) = (dim, self.dim()) {
            store::meta_set(&tx, "dim", &d.to_string())?;
        }
        let now = now_ms();
        let mut saved = Vec::with_capacity(products.len());
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for p in &products {
            let u = store::upsert(&tx, ns_id, ns, p, now)?;
            removed.extend(u.old_vec);
            added.extend(u.new_vec);
            saved.push(u.product);
        }
        store::bump_generation(&tx, ns_id)?;
        tx.commit()?;
        if let Some(d) = dim {
            *self.dim.write().unwrap_or_else(|p| p.into_inner()) = Some(d);
            self.apply(&conn, ns_id, d, &removed, added)?;
        }
        Ok(saved)
    }

    /// Applies a committed change to the in-memory index (writer lock held by the caller).
    fn apply(
        &self,
        conn: &Connection,
        ns_id: i64,
        dim: usize,
        removed: &[usize],
        added: Vec<index::Entry>,
    ) -> Result<()> {
        let rebuild = {
            let mut indexes = self.indexes.write().unwrap_or_else(|p| p.into_inner());
            let ix = indexes
                .entry(ns_id)
                .or_insert_with(|| NsIndex::new(dim, self.index_params()));
            let rebuild = ix.remove(removed);
            ix.insert(added);
            rebuild
                || (ix.mode() == IndexMode::Ann
                    && ix.live_len() < self.opts.index.brute_force_below / 2)
        };
        if rebuild {
            // Built outside the index lock so searches keep running meanwhile.
            let mut fresh =
                NsIndex::build(dim, self.index_params(), store::entries(conn, ns_id, 0)?);
            let mut indexes = self.indexes.write().unwrap_or_else(|p| p.into_inner());
            // A `set_ef_search` may have run while the graph was being built.
            fresh.set_ef_search(self.ef_search.load(Ordering::Relaxed));
            indexes.insert(ns_id, fresh);
        }
        Ok(())
    }

    /// The model (`Features::model_id`) the namespace's embeddings come from, once one was
    /// stored with a model id; upserts and queries with another model's embedding are refused.
    pub fn namespace_model(&self, ns: &Namespace) -> Result<Option<String>> {
        ns.validate()?;
        self.read(|conn| match store::ns_id(conn, ns)? {
            Some(id) => store::ns_model(conn, id),
            None => Ok(None),
        })
    }

    /// Drops every image embedding of a namespace and forgets its model, keeping the products
    /// and their shape and colour channels: the explicit first step of switching a namespace
    /// to another image model. Re-ingest the images afterwards (`Catalog::ingest` with an
    /// extractor on the new model, matched by external id); until then searches rank by the
    /// shape and colour channels alone. Returns the number of embeddings dropped.
    pub fn clear_embeddings(&self, ns: &Namespace) -> Result<usize> {
        ns.validate()?;
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(ns_id) = store::ns_id(&tx, ns)? else {
            return Ok(0);
        };
        let removed = store::clear_embeddings(&tx, ns_id)?;
        store::set_ns_model(&tx, ns_id, None)?;
        store::bump_generation(&tx, ns_id)?;
        tx.commit()?;
        if let Some(d) = self.dim() {
            self.apply(&conn, ns_id, d, &removed, Vec::new())?;
        }
        Ok(removed.len())
    }

    /// Deletes a product by id. Deleted products are never returned again.
    pub fn delete(&self, ns: &Namespace, id: &str) -> Result<()> {
        ns.validate()?;
        let mut conn = lock(&self.writer);
        let not_found = || Error::NotFound {
            what: "product",
            id: id.to_string(),
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(ns_id) = store::ns_id(&tx, ns)? else {
            return Err(not_found());
        };
        let Some(vec) = store::delete(&tx, ns_id, id)? else {
            return Err(not_found());
        };
        store::bump_generation(&tx, ns_id)?;
        tx.commit()?;
        if let (Some(v), Some(d)) = (vec, self.dim()) {
            self.apply(&conn, ns_id, d, &[v], Vec::new())?;
        }
        Ok(())
    }

    /// A product by catalog id.
    pub fn get(&self, ns: &Namespace, id: &str) -> Result<Product> {
        self.get_by(ns, "id", id)
    }

    /// A product by the caller's external id.
    pub fn get_by_external_id(&self, ns: &Namespace, external_id: &str) -> Result<Product> {
        self.get_by(ns, "external_id", external_id)
    }

    fn get_by(&self, ns: &Namespace, column: &'static str, value: &str) -> Result<Product> {
        ns.validate()?;
        let found = self.read(|c| match store::ns_id(c, ns)? {
            Some(n) => store::get_by(c, n, column, value),
            None => Ok(None),
        })?;
        found.map(|(p, _)| p).ok_or_else(|| Error::NotFound {
            what: "product",
            id: value.to_string(),
        })
    }

    /// Products in insertion order, one page at a time, optionally filtered.
    pub fn list(&self, ns: &Namespace, page: &Page, filter: &ProductFilter) -> Result<ListPage> {
        ns.validate()?;
        let limit = match page.limit {
            0 => 50,
            l if l <= 1000 => l,
            _ => return Err(Error::invalid("limit", "must be ≤ 1000")),
        };
        let after: i64 = match &page.cursor {
            None => 0,
            Some(c) => c
                .parse()
                .ok()
                .filter(|v: &i64| *v >= 0)
                .ok_or_else(|| Error::invalid("cursor", "not a cursor from this catalog"))?,
        };
        let rows = self.read(|c| match store::ns_id(c, ns)? {
            Some(n) => store::list(c, n, after, limit + 1, filter),
            None => {
                // still validate the filter
                filter.push_sql(&mut String::new(), &mut Vec::new())?;
                Ok(Vec::new())
            }
        })?;
        let more = rows.len() > limit;
        let items: Vec<(i64, Product)> = rows.into_iter().take(limit).collect();
        let next_cursor = if more {
            items.last().map(|(pk, _)| pk.to_string())
        } else {
            None
        };
        Ok(ListPage {
            items: items.into_iter().map(|(_, p)| p).collect(),
            next_cursor,
        })
    }

    /// Products in `ns` matching `filter`.
    pub fn count(&self, ns: &Namespace, filter: &ProductFilter) -> Result<u64> {
        ns.validate()?;
        filter.push_sql(&mut String::new(), &mut Vec::new())?;
        self.read(|c| match store::ns_id(c, ns)? {
            Some(n) => store::count(c, n, filter),
            None => Ok(0),
        })
    }

    /// The state of every namespace's index.
    pub fn index_report(&self) -> Result<Vec<IndexReport>> {
        let names: HashMap<i64, Namespace> = self.read(store::namespaces)?.into_iter().collect();
        let indexes = self.indexes.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<IndexReport> = indexes
            .iter()
            .filter_map(|(id, ix)| {
                names.get(id).map(|ns| IndexReport {
                    namespace: ns.clone(),
                    mode: ix.mode(),
                    source: ix.source,
                    live: ix.live_len(),
                    tombstones: ix.tombstones(),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.namespace.account, a.namespace.environment.as_str())
                .cmp(&(&b.namespace.account, b.namespace.environment.as_str()))
        });
        Ok(out)
    }

    /// Similarity search; see [`SearchQuery`]. Results are sorted by combined score.
    pub fn search(&self, ns: &Namespace, q: &SearchQuery) -> Result<Vec<SearchHit>> {
        ns.validate()?;
        let limit = match q.limit {
            0 => 10,
            l if l <= 1000 => l,
            _ => return Err(Error::invalid("limit", "must be ≤ 1000")),
        };
        if q.offset > 10_000 {
            return Err(Error::invalid("offset", "must be ≤ 10000"));
        }
        let weights = q.weights.unwrap_or_default();
        for w in [weights.clip, weights.shape, weights.color] {
            if !w.is_finite() || w < 0.0 {
                return Err(Error::invalid("weights", "must be finite and ≥ 0"));
            }
        }
        if let Some(p) = q.cheaper_by_percent {
            if !(0.0..100.0).contains(&p) {
                return Err(Error::invalid("cheaper_by_percent", "must be in [0, 100)"));
            }
            if q.by_product.is_none() {
                return Err(Error::MissingParameter {
                    name: "by_product (needed by cheaper_by_percent)".into(),
                });
            }
        }
        if q.exclude_own_brand && q.by_product.is_none() {
            return Err(Error::MissingParameter {
                name: "by_product (needed by exclude_own_brand)".into(),
            });
        }
        if q.min_score.is_some_and(|m| !m.is_finite()) {
            return Err(Error::invalid("min_score", "must be a finite number"));
        }
        if let Some(s) = &q.shape {
            if s.iter().any(|x| !x.is_finite()) {
                return Err(Error::invalid("shape", "contains NaN or infinity"));
            }
        }
        let dim = self.dim();
        let mut embedding = match (&q.embedding, dim) {
            (Some(e), Some(d)) => Some(normalise("embedding", e, d)?),
            (Some(e), None) => {
                // Empty catalog: still validate, nothing can match.
                normalise("embedding", e, e.len())?;
                return Ok(Vec::new());
            }
            (None, _) => None,
        };
        let mut shape = q.shape.clone();
        let mut colors = q.colors.clone();
        let mut filter = q.filter.clone();
        filter.push_sql(&mut String::new(), &mut Vec::new())?;

        self.read(|conn| {
            let Some(ns_id) = store::ns_id(conn, ns)? else {
                if let Some(id) = &q.by_product {
                    return Err(Error::NotFound {
                        what: "product",
                        id: id.clone(),
                    });
                }
                return Ok(Vec::new());
            };
            if let (Some(want), Some(_)) = (&q.model_id, &q.embedding) {
                if let Some(have) = store::ns_model(conn, ns_id)? {
                    if &have != want {
                        return Err(model_mismatch("model_id", want, &have));
                    }
                }
            }
            let mut exclude = None;
            if let Some(pid) = &q.by_product {
                let (src, _) =
                    store::get_by(conn, ns_id, "id", pid)?.ok_or_else(|| Error::NotFound {
                        what: "product",
                        id: pid.clone(),
                    })?;
                embedding = embedding.or(src.features.clip.clone());
                shape = shape.or(src.features.shape.clone());
                if colors.is_empty() {
                    colors = src.features.colors.clone();
                }
                if let Some(pct) = q.cheaper_by_percent {
                    let Some(price) = src.price else {
                        return Err(Error::invalid(
                            "cheaper_by_percent",
                            "the query product has no price",
                        ));
                    };
                    let bound = price * (1.0 - pct / 100.0);
                    filter.max_price = Some(filter.max_price.map_or(bound, |m| m.min(bound)));
                    match &filter.currency {
                        Some(c) if !c.eq_ignore_ascii_case(&src.currency) => return Ok(Vec::new()),
                        _ => filter.currency = Some(src.currency.clone()),
                    }
                    if filter.min_price.is_some_and(|lo| lo > bound) {
                        return Ok(Vec::new());
                    }
                }
                if q.exclude_own_brand {
                    if let Some(b) = &src.brand {
                        filter.exclude_brands.push(b.clone());
                    }
                }
                exclude = Some(src.id);
            }
            if embedding.is_none() && shape.is_none() && colors.is_empty() {
                return Err(Error::MissingParameter {
                    name: "embedding, by_product, shape or colors".into(),
                });
            }
            let want = q.offset + limit + usize::from(exclude.is_some());
            let reranks = (weights.shape > 0.0 && shape.is_some())
                || (weights.color > 0.0 && !colors.is_empty());
            let mut scored: Vec<Scored> = match &embedding {
                // No CLIP query: every matching row, scored on shape and colour (rare; SQL).
                None => store::all_filtered(conn, ns_id, &filter)?
                    .into_iter()
                    .filter(|p| exclude.as_deref() != Some(p.id.as_str()))
                    .map(|product| {
                        let scores = ChannelScores {
                            clip: None,
                            shape: match (&shape, &product.features.shape) {
                                (Some(a), Some(b)) => search::cosine(a, b),
                                _ => None,
                            },
                            color: search::palette_similarity(&colors, &product.features.colors),
                        };
                        Scored {
                            vec_id: None,
                            id: product.id.clone(),
                            score: scores.combined(&weights),
                            scores,
                            product: Some(product),
                        }
                    })
                    .collect(),
                // The hot path: candidates and their scores come from memory only.
                Some(e) => {
                    let k = if reranks { (want * 4).max(50) } else { want };
                    self.ann_scored(conn, ns_id, e, k, &filter, |row, clip| {
                        if exclude.as_deref() == Some(&*row.id) {
                            return None;
                        }
                        let scores = ChannelScores {
                            clip: Some(clip),
                            shape: match (&shape, &row.shape) {
                                (Some(a), Some(b)) => search::cosine(a, b),
                                _ => None,
                            },
                            color: search::palette_similarity(&colors, &row.colors),
                        };
                        Some((scores.combined(&weights), scores))
                    })?
                }
            };
            if let Some(m) = q.min_score {
                scored.retain(|h| h.score >= m);
            }
            scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
            // Only the final page is read from SQLite. A row deleted since the index was read
            // is left out (the page is then one shorter), never returned half-read.
            let mut hits = Vec::with_capacity(limit);
            for s in scored.into_iter().skip(q.offset).take(limit) {
                let product = match (s.product, s.vec_id) {
                    (Some(p), _) => Some(p),
                    (None, Some(v)) => store::by_vec_id(conn, ns_id, v)?,
                    (None, None) => None,
                };
                if let Some(product) = product {
                    hits.push(SearchHit {
                        product,
                        score: s.score,
                        scores: s.scores,
                    });
                }
            }
            Ok(hits)
        })
    }

    /// ANN (or exact) candidates for a normalised query that match `filter`, scored by
    /// `score(row, clip cosine)` (which returns `None` to drop one) while the index is read.
    /// Filters on product fields are evaluated in memory; `metadata_eq` asks SQLite for the
    /// matching ids. Selective filters (fewer matches than `brute_force_below`) are answered
    /// exactly over the matching rows; broad ones by the graph with the filter applied inside
    /// the search.
    fn ann_scored(
        &self,
        conn: &Connection,
        ns_id: i64,
        q: &[f32],
        k: usize,
        filter: &ProductFilter,
        score: impl Fn(&index::HotRow, f32) -> Option<(f32, ChannelScores)>,
    ) -> Result<Vec<Scored>> {
        let allowed = if filter.metadata_eq.is_empty() {
            None
        } else {
            Some(store::filtered_vec_ids(conn, ns_id, filter)?)
        };
        let indexes = self.indexes.read().unwrap_or_else(|p| p.into_inner());
        let Some(ix) = indexes.get(&ns_id) else {
            return Ok(Vec::new());
        };
        let hf = ix.compile(filter);
        let mut hits = None;
        if ix.mode() == IndexMode::Ann && (hf.is_active() || allowed.is_some()) {
            let ids: Vec<usize> = match &allowed {
                Some(a) => a
                    .iter()
                    .copied()
                    .filter(|i| ix.row(*i).is_some_and(|r| hf.matches(r)))
                    .collect(),
                None => ix.matching(&hf),
            };
            if ids.len() < self.opts.index.brute_force_below {
                let mut exact: Vec<(usize, f32)> = store::vectors_for(conn, ns_id, &ids)?
                    .into_iter()
                    .map(|(i, v)| (i, index::dot(q, &v)))
                    .collect();
                index::top_k(&mut exact, k);
                hits = Some(exact);
            }
        }
        let hits = match hits {
            Some(h) => h,
            None => ix.search(q, k, &hf, allowed.as_deref()),
        };
        Ok(hits
            .into_iter()
            .filter_map(|(v, clip)| {
                let row = ix.row(v)?;
                let (total, scores) = score(row, clip)?;
                Some(Scored {
                    vec_id: Some(v),
                    id: row.id.to_string(),
                    score: total,
                    scores,
                    product: None,
                })
            })
            .collect())
    }
}

/// A ranked candidate before its row is read.
struct Scored {
    vec_id: Option<usize>,
    id: String,
    score: f32,
    scores: ChannelScores,
    product: Option<Product>,
}

impl Drop for Catalog {
    fn drop(&mut self) {
        // Best effort: a failed save only means the next open reconciles or rebuilds.
        let _ = self.flush();
    }
}

/// Refuses a batch whose embeddings come from a model other than the namespace's (or from
/// two models at once), and records the model on the namespace's first tagged embedding.
/// Embeddings without a model id are the caller's responsibility and pass.
fn bind_model(tx: &rusqlite::Transaction<'_>, ns_id: i64, products: &[NewProduct]) -> Result<()> {
    let mut bound = store::ns_model(tx, ns_id)?;
    let recorded = bound.is_some();
    for p in products {
        let (Some(_), Some(m)) = (&p.features.clip, &p.features.model_id) else {
            continue;
        };
        match &bound {
            Some(b) if b != m => return Err(model_mismatch("features.model_id", m, b)),
            Some(_) => {}
            None => bound = Some(m.clone()),
        }
    }
    if let (false, Some(m)) = (recorded, &bound) {
        store::set_ns_model(tx, ns_id, Some(m))?;
    }
    Ok(())
}

pub(crate) fn model_mismatch(field: &str, got: &str, have: &str) -> Error {
    Error::invalid(
        field,
        format!(
            "embedding from model {got}, but this namespace holds embeddings of model {have}; \
             a namespace never mixes two models' embeddings (to switch models, call \
             Catalog::clear_embeddings and re-ingest the images with the new model)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
