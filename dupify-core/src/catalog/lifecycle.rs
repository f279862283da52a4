//! Opening (schema, read pool, loading or rebuilding every namespace's graph), the search
//! breadth, flushing graphs to disk and dropping.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use rusqlite::{Connection, OpenFlags};

use super::index::{self, GraphChecksums, LiveRows, NsIndex};
use super::{
    lock, store, Catalog, CatalogOptions, IndexMeta, IndexMode, IndexParams, IndexReport,
    IndexSource, Namespace, INDEX_FORMAT,
};
use crate::error::{Error, Result};

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

    pub(super) fn init(
        mut conn: Connection,
        path: Option<PathBuf>,
        opts: CatalogOptions,
    ) -> Result<Self> {
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

    pub(super) fn ann_dir(&self) -> Option<PathBuf> {
        self.path.as_ref().map(|p| {
            let mut s = p.as_os_str().to_owned();
            s.push(".ann");
            PathBuf::from(s)
        })
    }

    /// Runs `f` on a read connection: from the pool for file catalogs (never blocked by the
    /// writer, thanks to WAL), the single connection for in-memory ones.
    pub(super) fn read<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
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

    pub(super) fn dim(&self) -> Option<usize> {
        *self.dim.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The configured index parameters with the live `ef_search`.
    pub(super) fn index_params(&self) -> IndexParams {
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
    pub(super) fn load_indexes(&self) -> Result<()> {
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

    pub(super) fn load_saved(
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
}

impl Drop for Catalog {
    fn drop(&mut self) {
        // Best effort: a failed save only means the next open reconciles or rebuilds.
        let _ = self.flush();
    }
}
