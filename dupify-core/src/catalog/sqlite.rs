//! The backend the crate ships: SQLite (WAL) is the truth, and an in-memory HNSW graph
//! per namespace, saved next to the database, answers nearest-embedding queries.
//!
//! Durability model: every write is one `BEGIN IMMEDIATE` transaction that also bumps its
//! namespace's generation counter; the in-memory index is updated after the commit. The
//! graph files are a cache, saved by `flush` (and on drop) with their metadata written
//! atomically (temp + fsync + rename); on open each namespace's graph is loaded and
//! reconciled with rows committed after it was saved, or rebuilt when missing, unreadable or
//! from another database. Killing the process at any point therefore loses no committed
//! product and never exposes a half-written one.
//!
//! Reopen cost: loading a saved graph (one file read into usearch's node tapes, after its
//! length and CRC-32 are checked) runs on its own thread while the ranking data are read
//! from SQLite and interned; the two are then attached. A graph file that is torn, damaged
//! or from another save is refused before usearch reads it, and the graph is rebuilt.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use rusqlite::{Connection, OpenFlags};

use rusqlite::TransactionBehavior;
use serde::{Deserialize, Serialize};

use super::backend::{BindFn, Candidate, CatalogBackend, ProductKey, Ranked, ScoreFn};
use super::calibrate::Calibration;
use super::graph::GraphFile;
use super::index::{self, LiveRows, NsIndex};
use super::{
    lock, now_ms, store, CatalogOptions, EmbeddingStatus, IndexMode, IndexParams, IndexReport,
    IndexSource, IngestJob, Namespace, NewProduct, Product, ProductFilter,
};
use crate::error::{Error, Result};

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
    /// Of the graph file in `dir` as saved; checked before the graph is read.
    checksums: GraphFile,
    /// The graph's measured `ef_search` (absent in files saved before calibration existed:
    /// measured on the next open).
    #[serde(default)]
    calibration: Option<Calibration>,
}

impl IndexMeta {
    fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| index::io_err(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Internal(format!("index metadata: {e}")))
    }

    /// Written atomically (see `index::write_atomic`): a crash leaves the old file or this.
    fn write(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| Error::Internal(format!("index metadata: {e}")))?;
        index::write_atomic(path, &bytes)
    }
}

/// 2: `checksums` added. 3: the graph is one usearch file (hnsw_rs before). An older file
/// is rebuilt once.
const INDEX_FORMAT: u32 = 3;

/// SQLite + usearch. `Send + Sync`. Writers serialise on one connection; readers use a pool
/// of read-only connections (WAL lets them read while a write is in progress) and a read lock
/// on the index that writers hold only to apply a committed change.
pub struct SqliteBackend {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    path: Option<PathBuf>,
    opts: CatalogOptions,
    db_id: String,
    dim: RwLock<Option<usize>>,
    indexes: RwLock<HashMap<i64, NsIndex>>,
    /// The `ef_search` fixed by `set_ef_search` (0: none, each graph calibrates its own).
    /// Written only while `indexes` is write-locked, so every index agrees with it.
    pinned_ef: AtomicUsize,
}

impl SqliteBackend {
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
        store::upgrade(&conn)?;
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
        let cat = SqliteBackend {
            pinned_ef: AtomicUsize::new(0),
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

    /// The `ef_search` fixed by `set_ef_search`, if any.
    fn pinned_ef(&self) -> Option<usize> {
        Some(self.pinned_ef.load(Ordering::Relaxed)).filter(|&ef| ef > 0)
    }

    /// The configured index parameters, or a fixed `ef_search` without calibration once
    /// `set_ef_search` has run.
    fn index_params(&self) -> IndexParams {
        match self.pinned_ef() {
            Some(ef_search) => IndexParams {
                ef_search,
                target_recall: 0.0,
                ..self.opts.index
            },
            None => self.opts.index,
        }
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
                NsIndex::build(dim, params, store::entries(&conn, ns_id, 0)?)?
            } else {
                match self.load_saved(&conn, ns_id, dim, last_vec) {
                    Ok(ix) => ix,
                    Err(_) => {
                        let mut ix = NsIndex::build(dim, params, store::entries(&conn, ns_id, 0)?)?;
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
        let meta = IndexMeta::read(&ann.join(format!("ns-{ns_id}.json")))?;
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
            let g =
                sc.spawn(|| NsIndex::load_graph(&graph_dir, dim, &p, meta.points, meta.checksums));
            let rows = store::hot_rows(conn, ns_id, meta.max_vec_id).map(LiveRows::new);
            let g = g
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("graph load thread panicked".into())));
            (g, rows)
        });
        let mut ix = NsIndex::load(graph?, dim, p, in_graph?, meta.max_vec_id, meta.calibration);
        let newer = store::entries(conn, ns_id, meta.max_vec_id)?;
        let fresh = newer.is_empty() && store::generation(conn, ns_id)? == meta.generation;
        ix.insert(newer)?;
        if ix.remove(&[]) {
            return Err(Error::Internal("too many tombstones; rebuild".into()));
        }
        ix.recalibrate_if_due();
        ix.source = if fresh {
            ix.dirty = false;
            IndexSource::Loaded
        } else {
            IndexSource::Reconciled
        };
        Ok(ix)
    }

    /// Runs `f` with a read connection and the namespace's row id; a namespace with no row
    /// yet (it exists from its first write) holds nothing, so the answer is `R::default()`.
    fn read_ns<R: Default>(
        &self,
        ns: &Namespace,
        f: impl FnOnce(&Connection, i64) -> Result<R>,
    ) -> Result<R> {
        self.read(|conn| match store::ns_id(conn, ns)? {
            Some(id) => f(conn, id),
            None => Ok(R::default()),
        })
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
            // A graph that could not take the rows (allocation) is rebuilt from the database.
            let failed = ix.insert(added).is_err();
            rebuild
                || failed
                || (ix.mode() == IndexMode::Ann
                    && ix.live_len() < self.opts.index.brute_force_below / 2)
        };
        if rebuild {
            // Built outside the index lock so searches keep running meanwhile.
            let mut fresh =
                NsIndex::build(dim, self.index_params(), store::entries(conn, ns_id, 0)?)?;
            let mut indexes = self.indexes.write().unwrap_or_else(|p| p.into_inner());
            // A `set_ef_search` may have run while the graph was being built.
            if let Some(ef) = self.pinned_ef() {
                fresh.pin_ef_search(ef);
            }
            indexes.insert(ns_id, fresh);
        }
        Ok(())
    }
}

/// What a write does besides storing rows.
enum Write<'a> {
    /// An upsert.
    Plain,
    /// Also queues the (single) product for extraction from this URL.
    Enqueue(&'a str),
    /// Only if this job is still the product's pending one (then the upsert drops it).
    Complete(&'a IngestJob),
}

impl SqliteBackend {
    /// One write transaction: the namespace's model binding, the rows, the queue, the
    /// generation bump; then the in-memory index. `None` when a `Complete` job was superseded
    /// (nothing written).
    fn write(
        &self,
        ns: &Namespace,
        products: &[NewProduct],
        dim: Option<usize>,
        bind: &BindFn<'_>,
        what: Write<'_>,
    ) -> Result<Option<Vec<Product>>> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Write::Complete(job) = what {
            if !store::job_pending(&tx, job.job_id, &job.product_id)? {
                return Ok(None);
            }
        }
        let ns_id = store::ensure_ns(&tx, ns)?;
        let bound = store::ns_model(&tx, ns_id)?;
        if let Some(m) = bind(bound.as_deref())? {
            store::set_ns_model(&tx, ns_id, Some(&m))?;
        }
        if let (Some(d), None) = (dim, self.dim()) {
            store::meta_set(&tx, "dim", &d.to_string())?;
        }
        let now = now_ms();
        let mut saved = Vec::with_capacity(products.len());
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for p in products {
            let mut u = store::upsert(&tx, ns_id, ns, p, now)?;
            if let Write::Enqueue(url) = what {
                store::enqueue(&tx, u.pk, url, now)?;
                u.product.embedding_status = EmbeddingStatus::Processing;
            }
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
        Ok(Some(saved))
    }
}

impl Drop for SqliteBackend {
    fn drop(&mut self) {
        // Best effort: a failed save only means the next open reconciles or rebuilds.
        let _ = self.flush();
    }
}

impl CatalogBackend for SqliteBackend {
    fn dim(&self) -> Option<usize> {
        *self.dim.read().unwrap_or_else(|p| p.into_inner())
    }

    fn upsert(
        &self,
        ns: &Namespace,
        products: &[NewProduct],
        dim: Option<usize>,
        bind: &BindFn<'_>,
    ) -> Result<Vec<Product>> {
        let written = self.write(ns, products, dim, bind, Write::Plain)?;
        Ok(written.unwrap_or_default())
    }

    fn enqueue(&self, ns: &Namespace, product: &NewProduct, image_url: &str) -> Result<Product> {
        let no_model = |_: Option<&str>| Ok(None);
        let mut saved = self
            .write(
                ns,
                std::slice::from_ref(product),
                self.dim(),
                &no_model,
                Write::Enqueue(image_url),
            )?
            .unwrap_or_default();
        saved
            .pop()
            .ok_or_else(|| Error::Internal("enqueue stored nothing".into()))
    }

    fn pending_jobs(&self, limit: usize) -> Result<Vec<IngestJob>> {
        self.read(|c| store::pending_jobs(c, limit))
    }

    fn claim_jobs(&self, limit: usize, lease_ms: i64) -> Result<Vec<IngestJob>> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        let jobs = store::claim_jobs(&tx, limit, now, now.saturating_add(lease_ms))?;
        tx.commit()?;
        Ok(jobs)
    }

    fn complete_job(
        &self,
        job: &IngestJob,
        product: &NewProduct,
        dim: Option<usize>,
        bind: &BindFn<'_>,
    ) -> Result<Option<Product>> {
        let saved = self.write(
            &job.namespace,
            std::slice::from_ref(product),
            dim,
            bind,
            Write::Complete(job),
        )?;
        Ok(saved.and_then(|mut v| v.pop()))
    }

    fn fail_job(&self, job: &IngestJob, code: &str, message: &str) -> Result<bool> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let failed = store::fail_job(&tx, job.job_id, code, message, now_ms())?;
        tx.commit()?;
        Ok(failed)
    }

    fn namespace_model(&self, ns: &Namespace) -> Result<Option<String>> {
        self.read_ns(ns, store::ns_model)
    }

    fn clear_embeddings(&self, ns: &Namespace) -> Result<usize> {
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

    fn delete(&self, ns: &Namespace, id: &str) -> Result<bool> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(ns_id) = store::ns_id(&tx, ns)? else {
            return Ok(false);
        };
        let Some(vec) = store::delete(&tx, ns_id, id)? else {
            return Ok(false);
        };
        store::bump_generation(&tx, ns_id)?;
        tx.commit()?;
        if let (Some(v), Some(d)) = (vec, self.dim()) {
            self.apply(&conn, ns_id, d, &[v], Vec::new())?;
        }
        Ok(true)
    }

    fn get(&self, ns: &Namespace, key: ProductKey<'_>) -> Result<Option<Product>> {
        let (column, value) = match key {
            ProductKey::Id(v) => ("id", v),
            ProductKey::ExternalId(v) => ("external_id", v),
        };
        let found = self.read_ns(ns, |c, n| store::get_by(c, n, column, value))?;
        Ok(found.map(|(p, _)| p))
    }

    fn list(
        &self,
        ns: &Namespace,
        after: i64,
        limit: usize,
        filter: &ProductFilter,
    ) -> Result<Vec<(i64, Product)>> {
        self.read_ns(ns, |c, n| store::list(c, n, after, limit, filter))
    }

    fn count(&self, ns: &Namespace, filter: &ProductFilter) -> Result<u64> {
        self.read_ns(ns, |c, n| store::count(c, n, filter))
    }

    fn image_hashes(
        &self,
        ns: &Namespace,
        external_ids: &[String],
    ) -> Result<HashMap<String, String>> {
        let ids: Vec<&str> = external_ids.iter().map(String::as_str).collect();
        let stored = self.read_ns(ns, |c, n| store::image_hashes(c, n, &ids))?;
        Ok(stored
            .into_iter()
            .filter_map(|(ext, hash)| hash.map(|h| (ext, h)))
            .collect())
    }

    fn scan(&self, ns: &Namespace, filter: &ProductFilter) -> Result<Vec<Product>> {
        self.read_ns(ns, |c, n| store::all_filtered(c, n, filter))
    }

    /// Filters on product fields are evaluated in memory; `metadata_eq` asks SQLite for the
    /// matching ids. Selective filters (fewer matches than `brute_force_below`) are answered
    /// exactly over the matching rows; broad ones by the graph with the filter applied inside
    /// the search.
    fn nearest(
        &self,
        ns: &Namespace,
        query: &[f32],
        k: usize,
        filter: &ProductFilter,
        score: &ScoreFn<'_>,
    ) -> Result<Vec<Ranked>> {
        self.read_ns(ns, |conn, ns_id| {
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
                        .map(|(i, v)| (i, index::dot(query, &v)))
                        .collect();
                    index::top_k(&mut exact, k);
                    hits = Some(exact);
                }
            }
            let hits = match hits {
                Some(h) => h,
                None => ix.search(query, k, &hf, allowed.as_deref())?,
            };
            Ok(hits
                .into_iter()
                .filter_map(|(v, clip)| {
                    let row = ix.row(v)?;
                    let candidate = Candidate {
                        id: &row.id,
                        shape: row.shape.as_deref(),
                        colors: &row.colors,
                    };
                    let (total, scores) = score(&candidate, clip)?;
                    Some(Ranked {
                        id: row.id.to_string(),
                        handle: v as u64,
                        score: total,
                        scores,
                    })
                })
                .collect())
        })
    }

    fn resolve(&self, ns: &Namespace, ranked: &Ranked) -> Result<Option<Product>> {
        self.read_ns(ns, |c, n| store::by_vec_id(c, n, ranked.handle as usize))
    }
    /// `ef` arrives validated by `Catalog::set_ef_search`.
    fn set_ef_search(&self, ef: usize) -> Result<()> {
        let mut indexes = self.indexes.write().unwrap_or_else(|p| p.into_inner());
        self.pinned_ef.store(ef, Ordering::Relaxed);
        for ix in indexes.values_mut() {
            ix.pin_ef_search(ef);
        }
        Ok(())
    }

    /// Fixed by `set_ef_search`, or by options without calibration; otherwise `None`.
    fn ef_search(&self) -> Option<usize> {
        let p = self.index_params();
        (p.target_recall <= 0.0).then_some(p.ef_search)
    }

    fn flush(&self) -> Result<()> {
        let (Some(ann), true) = (self.ann_dir(), self.opts.persist_index) else {
            return Ok(());
        };
        let conn = lock(&self.writer);
        let mut indexes = self.indexes.write().unwrap_or_else(|p| p.into_inner());
        for (ns_id, ix) in indexes.iter_mut() {
            let meta_path = ann.join(format!("ns-{ns_id}.json"));
            if !ix.dirty {
                // A graph calibrated on open: only its metadata changes.
                if ix.calibration_unsaved && ix.mode() == IndexMode::Ann {
                    if let Ok(mut meta) = IndexMeta::read(&meta_path) {
                        meta.calibration = ix.calibration();
                        meta.write(&meta_path)?;
                    }
                }
                ix.calibration_unsaved = false;
                continue;
            }
            let old = IndexMeta::read(&meta_path).ok();
            if ix.mode() == IndexMode::Ann {
                let dir_name = format!("ns-{ns_id}-{}", uuid::Uuid::new_v4().simple());
                let dir = ann.join(&dir_name);
                ix.dump(&dir)?;
                index::sync_dir(&dir)?;
                let checksums = GraphFile::of(&dir)?;
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
                    calibration: ix.calibration(),
                };
                meta.write(&meta_path)?;
            } else if old.is_some() {
                std::fs::remove_file(&meta_path).map_err(|e| index::io_err(&meta_path, e))?;
            }
            if let Some(old) = old {
                if !old.dir.contains(['/', '\\']) && !old.dir.is_empty() {
                    let _ = std::fs::remove_dir_all(ann.join(old.dir));
                }
            }
            ix.dirty = false;
            ix.calibration_unsaved = false;
        }
        Ok(())
    }

    fn index_report(&self) -> Result<Vec<IndexReport>> {
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
                    ef_search: (ix.mode() == IndexMode::Ann).then(|| ix.ef_search()),
                    recall_at_10: ix.calibrated_recall(),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.namespace.account, a.namespace.environment.as_str())
                .cmp(&(&b.namespace.account, b.namespace.environment.as_str()))
        });
        Ok(out)
    }
}
