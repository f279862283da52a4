//! One namespace's HNSW graph (Malkov & Yashunin 2016, <https://arxiv.org/abs/1603.09320>)
//! over its normalised CLIP vectors: a thin wrapper around [`usearch`].
//!
//! Why usearch: the graph is rebuilt and reloaded far more often than it is designed, and
//! usearch keeps each node's links in one flat tape, so a saved graph is one file that loads
//! at the speed of reading it (the catalog bench: a 100k graph loads several times faster
//! than hnsw_rs, which links every edge one allocation at a time, single-threaded), and it
//! inserts from many threads with SIMD distances picked at run time (AVX2/AVX-512).
//!
//! What the wrapper adds:
//! - usearch serves a call only when one of the per-thread contexts reserved up front is
//!   free and *fails* it otherwise, so every call is admitted through [`Contexts`] (callers
//!   beyond the reserved count wait instead of failing);
//! - usearch trusts its files (a damaged one can crash the process inside C++), so a saved
//!   graph carries its length and CRC-32 ([`GraphFile`]) and nothing reaches usearch's
//!   loader until both match;
//! - the search breadth is one setting of the index, not an argument of each query:
//!   [`Graph::set_ef`] changes it while the namespace is write-locked, and usearch raises it
//!   to the number of results asked for on its own.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::{Condvar, Mutex};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use super::index::{io_err, IndexParams};
use crate::error::{Error, Result};

/// The graph file's name inside its directory.
pub(crate) const GRAPH_FILE: &str = "graph.usearch";

/// The length and CRC-32 of a saved graph file, kept in the index metadata when the graph is
/// saved and compared before usearch reads it. Why both: the length catches a torn write
/// without reading the file, the CRC a damaged or half-overwritten file of the right size.
/// CRC-32 (crc32fast, SIMD) runs at the speed of reading the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GraphFile {
    pub(crate) bytes: u64,
    pub(crate) crc32: u32,
}

impl GraphFile {
    /// Of the graph file in `dir`.
    pub(crate) fn of(dir: &Path) -> Result<Self> {
        let path = dir.join(GRAPH_FILE);
        let mut f = fs::File::open(&path).map_err(|e| io_err(&path, e))?;
        let mut h = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(|e| io_err(&path, e))?;
            if n == 0 {
                return Ok(GraphFile {
                    bytes,
                    crc32: h.finalize(),
                });
            }
            bytes += n as u64;
            h.update(&buf[..n]);
        }
    }
}

/// Points a graph takes one at a time before inserts go parallel. Why: concurrent inserts
/// into a small graph all link around the same few nodes and can prune away every link *to*
/// one of them, leaving a point no search reaches. Measured on 300 random unit vectors
/// (20 graphs each, every point searched for with `ef` 512): parallel inserts left 30 of
/// 6,000 searches without their own point at 8 dimensions, one at a time none; on 20,000
/// 512-d vectors, 6 misses in parallel from the start, none with the first 2,000 inserted
/// one at a time. The first 2,048 inserts take about a second at 512-d.
pub(crate) const SEQUENTIAL_BELOW: usize = 2048;

/// Admits at most `n` concurrent calls into usearch (one per reserved context).
struct Contexts {
    free: Mutex<usize>,
    freed: Condvar,
    n: usize,
}

impl Contexts {
    fn new() -> Self {
        // The host's threads (a server's workers, Python threads) are not rayon's, so the
        // count covers both; a waiting caller costs nothing but the wait.
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        let n = cores.max(rayon::current_num_threads()).max(2);
        Contexts {
            free: Mutex::new(n),
            freed: Condvar::new(),
            n,
        }
    }

    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Release<'a>(&'a Contexts);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                self.0.freed.notify_one();
            }
        }
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        drop(free);
        let _release = Release(self);
        f()
    }
}

/// usearch takes paths as `&str`.
fn utf8(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| Error::Internal(format!("{} is not UTF-8", path.display())))
}

fn usearch_err(op: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("usearch {op}: {e}"))
}

/// A graph of L2-normalised vectors searched by inner product (distance `1 - a·b`). ANN ids
/// are the usearch keys. `Send + Sync`.
pub(crate) struct Graph {
    index: Index,
    contexts: Contexts,
}

impl Graph {
    fn options(dim: usize, params: &IndexParams) -> IndexOptions {
        IndexOptions {
            dimensions: dim,
            metric: MetricKind::IP,
            quantization: ScalarKind::F32,
            connectivity: params.m,
            expansion_add: params.ef_construction,
            expansion_search: params.ef_search,
            multi: false,
        }
    }

    /// An empty graph with room for `capacity` points.
    pub(crate) fn new(dim: usize, params: &IndexParams, capacity: usize) -> Result<Self> {
        Self::with_room(Self::empty_index(dim, params)?, capacity)
    }

    fn empty_index(dim: usize, params: &IndexParams) -> Result<Index> {
        Index::new(&Self::options(dim, params)).map_err(|e| usearch_err("new", e))
    }

    /// `index` with its thread contexts and room for `capacity` points (at least 1,024).
    fn with_room(index: Index, capacity: usize) -> Result<Self> {
        let g = Graph {
            index,
            contexts: Contexts::new(),
        };
        g.reserve(capacity.max(1024))?;
        Ok(g)
    }

    fn reserve(&self, capacity: usize) -> Result<()> {
        self.index
            .reserve_capacity_and_threads(capacity, self.contexts.n)
            .map_err(|e| usearch_err("reserve", e))
    }

    /// Points in the graph (live and tombstones).
    pub(crate) fn len(&self) -> usize {
        self.index.size()
    }

    /// Inserts `(id, vector)` pairs: one at a time until the graph holds
    /// [`SEQUENTIAL_BELOW`] points, then in parallel on the rayon pool. The capacity grows
    /// by doubling, so a stream of small upserts does not reallocate every time.
    pub(crate) fn insert(&mut self, items: &[(usize, Vec<f32>)]) -> Result<()> {
        let need = self.len() + items.len();
        if need > self.index.capacity() {
            self.reserve(need.max(self.index.capacity() * 2))?;
        }
        let add = |(id, v): &(usize, Vec<f32>)| {
            self.contexts
                .run(|| self.index.add(*id as u64, v))
                .map_err(|e| usearch_err("add", e))
        };
        let one_by_one = SEQUENTIAL_BELOW.saturating_sub(self.len()).min(items.len());
        items[..one_by_one].iter().try_for_each(add)?;
        items[one_by_one..].par_iter().try_for_each(add)
    }

    /// Sets the candidate list size of later searches.
    pub(crate) fn set_ef(&mut self, ef: usize) {
        self.index.change_expansion_search(ef);
    }

    /// The `k` nearest points as `(id, cosine similarity)`, best first, among those `pass`
    /// accepts (the filter is applied inside the search, so the graph is still walked
    /// through rejected points).
    pub(crate) fn search(
        &self,
        q: &[f32],
        k: usize,
        pass: Option<&(dyn Fn(usize) -> bool + Sync)>,
    ) -> Result<Vec<(usize, f32)>> {
        let found = self.contexts.run(|| match pass {
            None => self.index.search(q, k),
            Some(p) => self.index.filtered_search(q, k, |key| p(key as usize)),
        });
        let m = found.map_err(|e| usearch_err("search", e))?;
        Ok(m.keys
            .into_iter()
            .zip(m.distances)
            .map(|(id, d)| (id as usize, (1.0 - d).min(1.0)))
            .collect())
    }

    /// Copies the stored vector of `id` into `out`; false when the graph has no such point.
    pub(crate) fn vector(&self, id: usize, out: &mut [f32]) -> bool {
        matches!(self.index.get(id as u64, out), Ok(1))
    }

    /// Writes the graph as `<dir>/graph.usearch` ([`GraphFile::of`] then gives its length
    /// and checksum).
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let path = dir.join(GRAPH_FILE);
        self.index
            .save(utf8(&path)?)
            .map_err(|e| usearch_err("save", e))
    }

    /// Reads a graph written by [`Graph::save`], refusing it before usearch sees it unless
    /// the file has the length and CRC-32 `want` recorded when it was saved, and after
    /// loading unless it holds `points` vectors of dimension `dim`. Every refusal is an error
    /// the caller answers by rebuilding from the database.
    pub(crate) fn load(
        dir: &Path,
        dim: usize,
        params: &IndexParams,
        points: usize,
        want: GraphFile,
    ) -> Result<Self> {
        let path = dir.join(GRAPH_FILE);
        let len = fs::metadata(&path).map_err(|e| io_err(&path, e))?.len();
        if len != want.bytes {
            return Err(Error::Internal(format!(
                "{} holds {len} bytes, {} when it was saved",
                path.display(),
                want.bytes
            )));
        }
        let got = GraphFile::of(dir)?;
        if got != want {
            return Err(Error::Internal(format!(
                "{} changed since it was saved (crc32 {:08x}, saved {:08x})",
                path.display(),
                got.crc32,
                want.crc32
            )));
        }
        let index = Self::empty_index(dim, params)?;
        index
            .load(utf8(&path)?)
            .map_err(|e| usearch_err("load", e))?;
        let (n, d) = (index.size(), index.dimensions());
        if n != points || d != dim {
            return Err(Error::Internal(format!(
                "graph file holds {n} points of dimension {d}, metadata says {points} of {dim}"
            )));
        }
        // Not stored in the file.
        index.change_expansion_add(params.ef_construction);
        index.change_expansion_search(params.ef_search);
        Self::with_room(index, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn contexts_admit_at_most_n_calls_at_once() {
        let c = Contexts::new();
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 * c.n {
                s.spawn(|| {
                    c.run(|| {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        inside.fetch_sub(1, Ordering::SeqCst);
                    })
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= c.n);
        assert_eq!(*c.free.lock().unwrap(), c.n);
    }

    #[test]
    fn every_accepted_parameter_builds_a_working_graph() {
        // the bounds `IndexParams::validate` lets through, at the smallest dimension
        for (m, efc, ef) in [(2, 2, 1), (256, 256, 4096), (16, 4096, 1), (2, 4096, 4096)] {
            let p = IndexParams::default()
                .with_m(m)
                .with_ef_construction(efc)
                .with_ef_search(ef);
            p.validate().unwrap();
            let mut g = Graph::new(1, &p, 10).unwrap();
            let items: Vec<(usize, Vec<f32>)> = (0..40)
                .map(|i| (i, vec![if i % 2 == 0 { 1.0 } else { -1.0 }]))
                .collect();
            g.insert(&items).unwrap();
            assert_eq!(g.len(), 40);
            let hits = g.search(&[1.0], 5, None).unwrap();
            assert_eq!(hits.len(), 5, "m {m} efc {efc} ef {ef}");
            assert!(hits.iter().all(|(id, s)| id % 2 == 0 && *s > 0.99));
        }
    }

    #[test]
    fn more_concurrent_searches_than_contexts_all_succeed() {
        let dim = 8;
        let mut g = Graph::new(dim, &IndexParams::default(), 64).unwrap();
        let items: Vec<(usize, Vec<f32>)> = (0..64)
            .map(|i| {
                let mut v = vec![0.0f32; dim];
                v[i % dim] = 1.0;
                v[(i / dim) % dim] += 0.5;
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                (i + 1, v.into_iter().map(|x| x / n).collect())
            })
            .collect();
        g.insert(&items).unwrap();
        assert_eq!(g.len(), 64);
        let n = g.contexts.n;
        std::thread::scope(|s| {
            for t in 0..4 * n {
                let (g, items) = (&g, &items);
                s.spawn(move || {
                    for (id, v) in items.iter().skip(t % 8).step_by(8) {
                        let hits = g.search(v, 1, None).unwrap();
                        assert!((hits[0].1 - 1.0).abs() < 1e-5, "{id}: {hits:?}");
                    }
                });
            }
        });
        let mut out = vec![0.0; dim];
        assert!(g.vector(5, &mut out));
        assert_eq!(out, items[4].1);
        assert!(!g.vector(999, &mut out));
    }
}
