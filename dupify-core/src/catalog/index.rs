//! One namespace's nearest-neighbour index over CLIP embeddings: exact brute force while the
//! namespace is small, an HNSW graph ([`super::graph`], usearch) from
//! [`IndexParams::brute_force_below`] on, plus the in-memory ranking data of every live
//! product.
//!
//! - A deleted or re-embedded product leaves a *tombstone* in the graph (its ANN id is no
//!   longer in the live set) that is filtered at query time; the graph is rebuilt when
//!   tombstones pass [`IndexParams::rebuild_tombstone_ratio`].
//! - Small catalogs are searched exactly (exact *and* faster below a few thousand vectors).
//! - The search breadth is measured, not guessed (see [`calibrate`]).
//!
//! ANN ids are the catalog's `vec_id`s: a number assigned (never reused) each time a product's
//! embedding is written, so an updated embedding gets a fresh id and the old one becomes a
//! tombstone.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::calibrate::{self, Calibration};
use super::filter::ProductFilter;
use super::graph::{Graph, GraphFile};
pub(crate) use super::score::dot;
use super::ColorSwatch;
use crate::error::{Error, Result};

/// The per-product data ranking and filtering need, as read from SQLite or taken from an
/// upsert, before its strings are interned.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HotSource {
    pub id: String,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub currency: String,
    pub price: Option<f64>,
    pub shape: Option<Vec<f32>>,
    pub colors: Vec<ColorSwatch>,
}

/// What search needs of one live product, kept in memory next to the graph so a query never
/// touches SQLite until it has its final page: the filterable fields (strings interned per
/// namespace) and the non-CLIP ranking channels. The CLIP vector itself lives in the graph
/// (or in the flat list while the namespace is small).
#[derive(Debug)]
pub(crate) struct HotRow {
    /// Product id (tie-break of equal scores, as in the SQL path).
    pub id: Box<str>,
    brand: Option<u32>,
    category: Option<u32>,
    currency: u32,
    price: Option<f64>,
    pub shape: Option<Box<[f32]>>,
    pub colors: Box<[ColorSwatch]>,
}

/// The ranking data of the products in a saved graph, interned and keyed by ANN id: built
/// by [`LiveRows::new`] on the thread that reads SQLite while another loads the graph, so
/// [`NsIndex::load`] only attaches the two.
pub(crate) struct LiveRows {
    live: HashMap<usize, HotRow>,
    strings: Interner,
}

impl LiveRows {
    pub(crate) fn new(rows: Vec<(usize, HotSource)>) -> Self {
        let mut strings = Interner::default();
        let mut live = HashMap::with_capacity(rows.len());
        for (id, h) in rows {
            live.insert(id, strings.hot(h));
        }
        LiveRows { live, strings }
    }
}

/// Interned strings of one namespace (brands, categories, currencies repeat a lot).
#[derive(Default)]
struct Interner {
    names: HashMap<Box<str>, u32>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(i) = self.names.get(s) {
            return *i;
        }
        let i = self.names.len() as u32;
        self.names.insert(s.into(), i);
        i
    }
    fn get(&self, s: &str) -> Option<u32> {
        self.names.get(s).copied()
    }
    /// Interns `h`'s strings into a [`HotRow`].
    fn hot(&mut self, h: HotSource) -> HotRow {
        HotRow {
            id: h.id.into(),
            brand: h.brand.as_deref().map(|b| self.intern(b)),
            category: h.category.as_deref().map(|c| self.intern(c)),
            currency: self.intern(&h.currency),
            price: h.price,
            shape: h.shape.map(Vec::into_boxed_slice),
            colors: h.colors.into_boxed_slice(),
        }
    }
}

/// A [`ProductFilter`]'s in-memory fields compiled against one namespace's interned strings.
/// `Some(None)` is a wanted value no product has: nothing matches. `metadata_eq` is not
/// here: it is answered by SQLite (see `Catalog::ann_candidates`).
pub(crate) struct HotFilter {
    category: Option<Option<u32>>,
    brand: Option<Option<u32>>,
    exclude_brands: Vec<u32>,
    min_price: Option<f64>,
    max_price: Option<f64>,
    currency: Option<Option<u32>>,
    /// Whether any field is set.
    active: bool,
}

impl HotFilter {
    pub(crate) fn matches(&self, r: &HotRow) -> bool {
        if !self.active {
            return true;
        }
        let eq = |want: Option<Option<u32>>, have: Option<u32>| match want {
            None => true,
            Some(w) => w.is_some() && w == have,
        };
        eq(self.category, r.category)
            && eq(self.brand, r.brand)
            && eq(self.currency, Some(r.currency))
            && r.brand.is_none_or(|b| !self.exclude_brands.contains(&b))
            && self
                .min_price
                .is_none_or(|lo| r.price.is_some_and(|p| p >= lo))
            && self
                .max_price
                .is_none_or(|hi| r.price.is_some_and(|p| p <= hi))
    }
    pub(crate) fn is_active(&self) -> bool {
        self.active
    }
}

/// The only `max_layers` accepted (see [`IndexParams::max_layers`]).
pub(crate) const HNSW_LAYERS: usize = 16;

/// The largest `ef_search` accepted (and the top of the calibration ladder).
pub(crate) const MAX_EF_SEARCH: usize = 4096;

/// HNSW and brute-force parameters, with documented defaults.
///
/// Defaults: `m = 16`, `ef_construction = 200` (the usual HNSW build settings for 512-d CLIP
/// vectors), and a search breadth each namespace picks itself: `target_recall = 0.95` makes
/// every graph measure its recall@10 against exact search on a sample of its own vectors
/// and search with the smallest `ef_search` (from 32 up) that reaches it, measured again as
/// the graph grows (see `Catalog::index_report` for what each namespace chose). Why: the
/// breadth a recall needs grows with the catalog; on the `catalog` bench's CLIP-shaped
/// vectors ef 32 gives recall@10 0.99 at 100k and 0.56 at 1M. `target_recall = 0` turns
/// this off and searches with `ef_search` as given; `Catalog::set_ef_search` fixes it on an
/// open catalog.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct IndexParams {
    /// Links per node and layer (usearch `connectivity`; the bottom layer keeps twice as
    /// many). 2..=256. Default 16.
    pub m: usize,
    /// Candidate list size while building. ≥ `m`, ≤ 4096. Default 200.
    pub ef_construction: usize,
    /// Candidate list size while searching (raised to the number of results asked for):
    /// the smallest value calibration may choose, or, with `target_recall = 0`, the value
    /// every search uses. 1..=4096. Default 32.
    pub ef_search: usize,
    /// The recall@10 against exact search each graph calibrates its `ef_search` for (a 99%
    /// lower confidence bound on a 200-query sample must reach it). 0 turns calibration
    /// off. In [0, 1). Default 0.95.
    pub target_recall: f32,
    /// Maximum number of graph layers. Must be 16 (the default). The graph draws each
    /// node's layer from the usual exponential law and needs no cap (at m = 16 a billion
    /// points reach about 8 layers), so the field does not change the graph; it stays so
    /// saved options and bindings that name it keep working, and any other value is refused
    /// by `validate` rather than silently ignored.
    pub max_layers: usize,
    /// Namespaces with fewer live vectors than this are searched exactly by brute force and
    /// get no graph. Default 4096.
    pub brute_force_below: usize,
    /// Rebuild the graph when tombstones exceed this fraction of its points. (0, 1].
    /// Default 0.25.
    pub rebuild_tombstone_ratio: f32,
}

impl Default for IndexParams {
    fn default() -> Self {
        IndexParams {
            m: 16,
            ef_construction: 200,
            ef_search: 32,
            target_recall: 0.95,
            max_layers: HNSW_LAYERS,
            brute_force_below: 4096,
            rebuild_tombstone_ratio: 0.25,
        }
    }
}

impl IndexParams {
    /// Rejects values that make no sense or that the graph cannot honour.
    pub fn validate(&self) -> Result<()> {
        if !(2..=256).contains(&self.m) {
            return Err(Error::invalid("index.m", "must be in 2..=256"));
        }
        if self.ef_construction < self.m || self.ef_construction > 4096 {
            return Err(Error::invalid(
                "index.ef_construction",
                "must be in m..=4096",
            ));
        }
        if !(1..=MAX_EF_SEARCH).contains(&self.ef_search) {
            return Err(Error::invalid("index.ef_search", "must be in 1..=4096"));
        }
        if !(0.0..1.0).contains(&self.target_recall) {
            return Err(Error::invalid(
                "index.target_recall",
                "must be in [0, 1) (0 turns calibration off)",
            ));
        }
        if self.max_layers != HNSW_LAYERS {
            return Err(Error::invalid(
                "index.max_layers",
                "must be 16: the graph caps its layers on its own",
            ));
        }
        if !(self.rebuild_tombstone_ratio > 0.0 && self.rebuild_tombstone_ratio <= 1.0) {
            return Err(Error::invalid(
                "index.rebuild_tombstone_ratio",
                "must be in (0, 1]",
            ));
        }
        Ok(())
    }
}

/// `(ANN id, normalised vector, ranking data)` of one product.
pub(crate) type Entry = (usize, Vec<f32>, HotSource);

/// A graph read from disk, not yet attached to its ranking data.
pub(crate) struct SavedGraph(Graph);

/// How one namespace's index answers queries right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexMode {
    /// Exact brute force over in-memory vectors (small namespace).
    Exact,
    /// HNSW graph.
    Ann,
}

/// Where an index came from when the catalog was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexSource {
    /// Built in memory (small namespace, or new since open).
    Memory,
    /// Loaded from disk and exactly up to date with the database.
    Loaded,
    /// Loaded from disk, then brought up to date with rows committed after it was saved.
    Reconciled,
    /// Missing, stale or unreadable on disk: rebuilt from the database.
    Rebuilt,
}

/// One namespace's vector index: brute force or graph, plus the live set.
pub(crate) struct NsIndex {
    dim: usize,
    params: IndexParams,
    /// Live ANN ids and their ranking data (every other id in the graph is a tombstone).
    live: HashMap<usize, HotRow>,
    strings: Interner,
    /// Vectors for exact search while the namespace is small (no graph).
    flat: Vec<(usize, Vec<f32>)>,
    graph: Option<Graph>,
    /// The graph's measured search breadth (see [`calibrate`]).
    calibration: Option<Calibration>,
    /// `calibration` changed since the graph's metadata was last written.
    pub(crate) calibration_unsaved: bool,
    /// Highest ANN id in the graph (or in `flat`).
    pub(crate) max_id: usize,
    /// Changed since it was last saved.
    pub(crate) dirty: bool,
    pub(crate) source: IndexSource,
}

impl NsIndex {
    pub(crate) fn new(dim: usize, params: IndexParams) -> Self {
        NsIndex {
            dim,
            params,
            live: HashMap::new(),
            strings: Interner::default(),
            flat: Vec::new(),
            graph: None,
            calibration: None,
            calibration_unsaved: false,
            max_id: 0,
            dirty: false,
            source: IndexSource::Memory,
        }
    }

    /// Builds from `(id, vector, ranking data)`: exact when small, a graph otherwise.
    pub(crate) fn build(dim: usize, params: IndexParams, items: Vec<Entry>) -> Result<Self> {
        let mut ix = NsIndex::new(dim, params);
        ix.insert(items)?;
        ix.dirty = true;
        Ok(ix)
    }

    pub(crate) fn mode(&self) -> IndexMode {
        if self.graph.is_some() {
            IndexMode::Ann
        } else {
            IndexMode::Exact
        }
    }
    fn hot(&mut self, h: HotSource) -> HotRow {
        self.strings.hot(h)
    }

    /// Compiles `f`'s in-memory fields for this namespace.
    pub(crate) fn compile(&self, f: &ProductFilter) -> HotFilter {
        let s = &self.strings;
        HotFilter {
            category: f.category.as_deref().map(|c| s.get(c)),
            brand: f.brand.as_deref().map(|b| s.get(b)),
            exclude_brands: f.exclude_brands.iter().filter_map(|b| s.get(b)).collect(),
            min_price: f.min_price,
            max_price: f.max_price,
            currency: f
                .currency
                .as_deref()
                .map(|c| s.get(&c.to_ascii_uppercase())),
            active: f.category.is_some()
                || f.brand.is_some()
                || !f.exclude_brands.is_empty()
                || f.min_price.is_some()
                || f.max_price.is_some()
                || f.currency.is_some(),
        }
    }

    /// The ranking data of a live id.
    pub(crate) fn row(&self, id: usize) -> Option<&HotRow> {
        self.live.get(&id)
    }

    /// Sorted live ids whose rows match `f`.
    pub(crate) fn matching(&self, f: &HotFilter) -> Vec<usize> {
        let mut ids: Vec<usize> = self
            .live
            .iter()
            .filter(|(_, r)| f.matches(r))
            .map(|(i, _)| *i)
            .collect();
        ids.sort_unstable();
        ids
    }

    pub(crate) fn live_len(&self) -> usize {
        self.live.len()
    }
    pub(crate) fn tombstones(&self) -> usize {
        if self.graph.is_some() {
            self.graph_points().saturating_sub(self.live.len())
        } else {
            0
        }
    }

    /// Inserts vectors (already normalised, of the index dimension) under fresh ids. An
    /// error (the graph could not allocate) leaves the index behind the database; the
    /// caller rebuilds it.
    pub(crate) fn insert(&mut self, entries: Vec<Entry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.dirty = true;
        let mut items = Vec::with_capacity(entries.len());
        for (id, v, h) in entries {
            let row = self.hot(h);
            self.live.insert(id, row);
            self.max_id = self.max_id.max(id);
            items.push((id, v));
        }
        if self.graph.is_some() {
            // When this batch makes a calibration due, part of it is held out: inserted
            // after the graph has been measured with it as queries.
            let held = if self.calibration_due(self.graph_points() + items.len()) {
                let n = items.len() / 2;
                hold_out(&mut items, n, self.graph_points() as u64)
            } else {
                Vec::new()
            };
            self.insert_into_graph(&items)?;
            self.calibrate_with(&held);
            return self.insert_into_graph(&held);
        }
        self.flat.extend(items);
        if self.flat.len() >= self.params.brute_force_below {
            let mut flat = std::mem::take(&mut self.flat);
            let held = if self.params.target_recall > 0.0 {
                let n = flat.len() / 4;
                hold_out(&mut flat, n, n as u64)
            } else {
                Vec::new()
            };
            self.graph = Some(Graph::new(self.dim, &self.params, flat.len() + held.len())?);
            self.insert_into_graph(&flat)?;
            self.calibrate_with(&held);
            self.insert_into_graph(&held)?;
        }
        Ok(())
    }

    fn insert_into_graph(&mut self, items: &[(usize, Vec<f32>)]) -> Result<()> {
        match &mut self.graph {
            Some(graph) => graph.insert(items),
            None => Ok(()),
        }
    }

    /// Whether the graph, once it holds `points`, needs a calibration.
    fn calibration_due(&self, points: usize) -> bool {
        self.graph.is_some()
            && self.params.target_recall > 0.0
            && !self
                .calibration
                .is_some_and(|c| c.current(&self.params, points))
    }

    /// The `ef_search` graph searches use: the calibrated one unless calibration is off.
    pub(crate) fn ef_search(&self) -> usize {
        match self.calibration {
            Some(c) if self.params.target_recall > 0.0 => c.ef_search,
            _ => self.params.ef_search,
        }
    }

    /// The graph's calibration, to save with it (kept while `ef_search` is pinned, so a
    /// reopen need not measure again).
    pub(crate) fn calibration(&self) -> Option<Calibration> {
        self.calibration.filter(|_| self.graph.is_some())
    }

    /// The recall@10 the calibration measured at the `ef_search` searches use, when they
    /// use the calibrated one.
    pub(crate) fn calibrated_recall(&self) -> Option<f32> {
        self.calibration()
            .filter(|_| self.params.target_recall > 0.0)
            .map(|c| c.recall)
    }

    /// Measures the graph's `ef_search` when it has none for the current parameters or has
    /// grown by a quarter since (see [`calibrate`]), with perturbed stored vectors as queries (a
    /// reopened graph has no held-out ones).
    pub(crate) fn recalibrate_if_due(&mut self) {
        if self.calibration_due(self.graph_points()) {
            self.calibrate_with(&[]);
        }
    }

    /// Measures the graph's `ef_search` (see [`calibrate`]) with `held` (vectors not in the
    /// graph, ids already live) as queries, or perturbed stored vectors when there are fewer
    /// than [`calibrate::MIN_HELD_OUT`]. No-op unless a calibration is due. Runs with the
    /// index write-locked (searches wait): one matrix product over the live vectors and up
    /// to 11 rounds of 200 graph searches.
    fn calibrate_with(&mut self, held: &[(usize, Vec<f32>)]) {
        let points = self.graph_points();
        if !self.calibration_due(points + held.len()) {
            return;
        }
        let Some(graph) = &mut self.graph else { return };
        let held_out = held.len() >= calibrate::MIN_HELD_OUT;
        let live = &self.live;
        // `held` is live already but not in the graph yet.
        let tombstones = points + held.len() != live.len();
        let params = self.params;
        let held_ids: HashSet<usize> = held.iter().map(|(i, _)| *i).collect();
        let mut ids: Vec<usize> = live
            .keys()
            .copied()
            .filter(|i| !held_ids.contains(i))
            .collect();
        ids.sort_unstable();
        let only_live = |id: usize| live.contains_key(&id);
        let view = calibrate::Live {
            ids: &ids,
            dim: self.dim,
            pass: tombstones.then_some(&only_live as &(dyn Fn(usize) -> bool + Sync)),
        };
        let found = if held_out {
            let queries: Vec<Vec<f32>> = held.iter().map(|(_, v)| v.clone()).collect();
            calibrate::calibrate(graph, &view, &params, points, &queries, true)
        } else {
            let ef = params.ef_search.max(calibrate::K);
            calibrate::perturbed_queries(graph, &view, ef, points as u64).and_then(|queries| {
                calibrate::calibrate(graph, &view, &params, points, &queries, false)
            })
        };
        // A failed calibration (LibTorch could not allocate the exact pass, or a search
        // failed) leaves the previous one, or the floor, in place; the next growth tries again.
        if let Ok(found) = found {
            self.calibration = Some(found);
            self.calibration_unsaved = true;
        }
        self.apply_ef();
    }

    /// Gives the graph the breadth searches use now.
    fn apply_ef(&mut self) {
        let ef = self.ef_search();
        if let Some(g) = &mut self.graph {
            g.set_ef(ef);
        }
    }

    /// Marks ids deleted. Returns true when the graph now holds too many tombstones and
    /// should be rebuilt from the database.
    pub(crate) fn remove(&mut self, ids: &[usize]) -> bool {
        for id in ids {
            if self.live.remove(id).is_some() {
                self.dirty = true;
            }
        }
        if self.graph.is_none() {
            let gone: HashSet<usize> = ids.iter().copied().collect();
            self.flat.retain(|(i, _)| !gone.contains(i));
            return false;
        }
        let t = self.tombstones();
        t > 0 && t as f32 > self.params.rebuild_tombstone_ratio * self.graph_points() as f32
    }

    /// The `k` nearest live vectors as `(id, cosine similarity)`, best first, among those
    /// matching `filter` and, when given, in `allowed` (sorted ids).
    pub(crate) fn search(
        &self,
        q: &[f32],
        k: usize,
        filter: &HotFilter,
        allowed: Option<&[usize]>,
    ) -> Result<Vec<(usize, f32)>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        match &self.graph {
            None => {
                let mut hits: Vec<(usize, f32)> = self
                    .flat
                    .iter()
                    .filter(|(i, _)| {
                        allowed.is_none_or(|a| a.binary_search(i).is_ok())
                            && self.live.get(i).is_some_and(|r| filter.matches(r))
                    })
                    .map(|(i, v)| (*i, dot(q, v)))
                    .collect();
                top_k(&mut hits, k);
                Ok(hits)
            }
            Some(graph) => {
                let live = &self.live;
                let pass = |id: usize| {
                    allowed.is_none_or(|a| a.binary_search(&id).is_ok())
                        && live.get(&id).is_some_and(|r| filter.matches(r))
                };
                // No tombstones and no restriction: skip the per-candidate filter calls.
                let restricted =
                    allowed.is_some() || filter.is_active() || graph.len() != self.live.len();
                graph.search(
                    q,
                    k,
                    restricted.then_some(&pass as &(dyn Fn(usize) -> bool + Sync)),
                )
            }
        }
    }

    /// Writes the graph as `<dir>/graph.usearch`. Exact indexes have nothing to save (they
    /// are rebuilt from the database in milliseconds).
    pub(crate) fn dump(&self, dir: &Path) -> Result<bool> {
        let Some(graph) = &self.graph else {
            return Ok(false);
        };
        graph.save(dir)?;
        Ok(true)
    }

    /// Reads a graph saved by [`NsIndex::dump`] (see [`Graph::load`] for the checks that
    /// keep a torn or damaged file from the loader). Separate from [`NsIndex::load`] so the
    /// file read can run on another thread while the ranking data come from SQLite (reopen
    /// time is the larger of the two, not their sum).
    pub(crate) fn load_graph(
        dir: &Path,
        dim: usize,
        params: &IndexParams,
        points: usize,
        want: GraphFile,
    ) -> Result<SavedGraph> {
        Graph::load(dir, dim, params, points, want).map(SavedGraph)
    }

    /// An index over a graph read by [`NsIndex::load_graph`], the ranking data of the
    /// products in it and the calibration saved with it (measured again by
    /// [`NsIndex::recalibrate_if_due`] when it no longer answers).
    pub(crate) fn load(
        graph: SavedGraph,
        dim: usize,
        params: IndexParams,
        in_graph: LiveRows,
        max_id: usize,
        calibration: Option<Calibration>,
    ) -> Self {
        let mut ix = NsIndex {
            dim,
            params,
            live: in_graph.live,
            strings: in_graph.strings,
            flat: Vec::new(),
            graph: Some(graph.0),
            calibration,
            calibration_unsaved: false,
            max_id,
            dirty: false,
            source: IndexSource::Loaded,
        };
        ix.apply_ef();
        ix
    }

    /// Fixes the candidate list size later searches use, calibration or not (the graph
    /// does not depend on it).
    pub(crate) fn pin_ef_search(&mut self, ef: usize) {
        self.params.ef_search = ef;
        self.params.target_recall = 0.0;
        self.apply_ef();
    }

    /// Points in the graph (live and tombstones); 0 without one.
    pub(crate) fn graph_points(&self) -> usize {
        self.graph.as_ref().map_or(0, Graph::len)
    }
    pub(crate) fn dim(&self) -> usize {
        self.dim
    }
}

/// Moves up to `n` (at most [`calibrate::SAMPLE`]) entries, picked at random from `seed`, out
/// of `items` and returns them: the held-out queries of a calibration.
fn hold_out(items: &mut Vec<(usize, Vec<f32>)>, n: usize, seed: u64) -> Vec<(usize, Vec<f32>)> {
    let n = n.min(calibrate::SAMPLE);
    if n < calibrate::MIN_HELD_OUT {
        return Vec::new();
    }
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut at = rand::seq::index::sample(&mut rng, items.len(), n).into_vec();
    at.sort_unstable_by(|a, b| b.cmp(a));
    at.into_iter().map(|i| items.swap_remove(i)).collect()
}

/// Keeps the best `k` by similarity, sorted best first (ties by id, so results are stable).
pub(crate) fn top_k(hits: &mut Vec<(usize, f32)>, k: usize) {
    let cmp = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if hits.len() > k {
        hits.select_nth_unstable_by(k, cmp);
        hits.truncate(k);
    }
    hits.sort_unstable_by(cmp);
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Storage {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync,
/// rename, fsync of the directory. A crash leaves either the old file or the new one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("meta"),
        uuid::Uuid::new_v4().simple()
    ));
    let res = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    res.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(path, e)
    })
}

/// fsyncs every file in `dir` and the directory itself, so a graph is on disk before the
/// metadata that points at it.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let p = entry.map_err(|e| io_err(dir, e))?.path();
        fs::File::open(&p)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_err(&p, e))?;
    }
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(dir, e))
}

dupify_types::setters! { IndexParams {
    /// Sets `m`.
    with_m(m: usize),
    /// Sets `ef_construction`.
    with_ef_construction(ef_construction: usize),
    /// Sets `ef_search`.
    with_ef_search(ef_search: usize),
    /// Sets `target_recall`.
    with_target_recall(target_recall: f32),
    /// Sets `brute_force_below`.
    with_brute_force_below(brute_force_below: usize),
    /// Sets `max_layers`.
    with_max_layers(max_layers: usize),
    /// Sets `rebuild_tombstone_ratio`.
    with_rebuild_tombstone_ratio(rebuild_tombstone_ratio: f32),
} }

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::graph::GRAPH_FILE;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = dot(&v, &v).sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    fn hot(id: usize, brand: &str) -> HotSource {
        HotSource {
            id: format!("p{id}"),
            brand: Some(brand.into()),
            currency: "USD".into(),
            price: Some(id as f64),
            ..Default::default()
        }
    }

    fn entries(items: &[(usize, Vec<f32>)]) -> Vec<Entry> {
        items
            .iter()
            .map(|(i, v)| {
                (
                    *i,
                    v.clone(),
                    hot(*i, if i % 2 == 0 { "even" } else { "odd" }),
                )
            })
            .collect()
    }

    fn none() -> HotFilter {
        NsIndex::new(1, IndexParams::default()).compile(&ProductFilter::default())
    }

    fn rand_vecs(n: usize, dim: usize, seed: u64) -> Vec<(usize, Vec<f32>)> {
        let mut s = seed;
        (0..n)
            .map(|i| {
                let v = (0..dim)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        (s >> 11) as f32 / (1u64 << 53) as f32 - 0.5
                    })
                    .collect();
                (i + 1, unit(v))
            })
            .collect()
    }

    #[test]
    fn params_reject_values_the_graph_cannot_honour() {
        assert!(IndexParams::default().validate().is_ok());
        let e = IndexParams::default().with_m(300).validate().unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
        assert!(IndexParams::default().with_m(1).validate().is_err());
        assert!(IndexParams::default()
            .with_ef_construction(4)
            .validate()
            .is_err());
        assert!(IndexParams::default().with_ef_search(0).validate().is_err());
        // max_layers does not change the graph: any value but 16 is refused, not ignored
        for layers in [1, 8, 15, 17] {
            let e = IndexParams {
                max_layers: layers,
                ..Default::default()
            }
            .validate()
            .unwrap_err();
            assert_eq!(e.code(), "invalid_parameter");
            assert!(e.to_string().contains("max_layers"), "{e}");
        }
        let p = IndexParams {
            rebuild_tombstone_ratio: 0.0,
            ..Default::default()
        };
        assert!(p.validate().is_err());
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.05).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
        // The embedding size, through whichever vector build this CPU dispatches to, against
        // an f64 sum.
        let a: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let b: Vec<f32> = (0..512)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0)
            .collect();
        let exact: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        assert!((f64::from(dot(&a, &b)) - exact).abs() < 1e-3, "{exact}");
    }

    #[test]
    fn exact_and_graph_find_the_query_itself_and_skip_tombstones() {
        let items = rand_vecs(300, 16, 7);
        for below in [1000, 50] {
            let params = IndexParams::default().with_brute_force_below(below);
            let mut ix = NsIndex::build(16, params, entries(&items)).unwrap();
            assert_eq!(
                ix.mode(),
                if below == 1000 {
                    IndexMode::Exact
                } else {
                    IndexMode::Ann
                }
            );
            for (id, v) in items.iter().take(20) {
                let hits = ix.search(v, 3, &none(), None).unwrap();
                assert_eq!(hits[0].0, *id);
                assert!((hits[0].1 - 1.0).abs() < 1e-4);
            }
            let (id0, v0) = &items[0];
            ix.remove(&[*id0]);
            let hits = ix.search(v0, 10, &none(), None).unwrap();
            assert!(hits.iter().all(|(i, _)| i != id0));
            assert_eq!(hits.len(), 10);
            let allowed = vec![5usize, 9, 11];
            let hits = ix.search(v0, 10, &none(), Some(&allowed)).unwrap();
            assert!(hits.iter().all(|(i, _)| allowed.contains(i)));
            // in-memory filters: brand, price bounds, unknown values match nothing
            let f = ix.compile(&ProductFilter {
                brand: Some("even".into()),
                max_price: Some(100.0),
                ..Default::default()
            });
            let hits = ix.search(v0, 300, &f, None).unwrap();
            let expected: Vec<usize> = (2..=100).step_by(2).collect();
            let mut got: Vec<usize> = hits.iter().map(|(i, _)| *i).collect();
            got.sort_unstable();
            if below == 1000 {
                assert_eq!(got, expected);
            } else {
                assert!(got.iter().all(|i| expected.contains(i)), "{got:?}");
            }
            assert_eq!(ix.matching(&f), expected);
            let f = ix.compile(&ProductFilter {
                exclude_brands: vec!["even".into(), "unknown".into()],
                ..Default::default()
            });
            assert!(ix
                .search(v0, 50, &f, None)
                .unwrap()
                .iter()
                .all(|(i, _)| i % 2 == 1));
            let f = ix.compile(&ProductFilter {
                brand: Some("nobody".into()),
                ..Default::default()
            });
            assert!(ix.search(v0, 10, &f, None).unwrap().is_empty());
            assert!(ix.matching(&f).is_empty());
        }
    }

    #[test]
    fn dump_and_load_give_identical_results() {
        let dir = tempfile::tempdir().unwrap();
        let items = rand_vecs(400, 24, 3);
        let params = IndexParams::default().with_brute_force_below(100);
        let ix = NsIndex::build(24, params, entries(&items)).unwrap();
        assert!(ix.dump(dir.path()).unwrap());
        let sums = GraphFile::of(dir.path()).unwrap();
        let live = || {
            entries(&items)
                .into_iter()
                .map(|(i, _, h)| (i, h))
                .collect::<Vec<_>>()
        };
        let load = |d: &Path, dim: usize, points: usize, want: GraphFile| {
            NsIndex::load_graph(d, dim, &params, points, want)
        };
        let g = load(dir.path(), 24, 400, sums).unwrap();
        let mut re = NsIndex::load(g, 24, params, LiveRows::new(live()), 400, ix.calibration());
        // a file that does not hold what the metadata says is refused
        assert!(load(dir.path(), 24, 401, sums).is_err());
        assert!(load(dir.path(), 25, 400, sums).is_err());
        let mut other = sums;
        other.crc32 ^= 1;
        assert!(load(dir.path(), 24, 400, other).is_err());
        for (_, v) in items.iter().step_by(17) {
            assert_eq!(
                ix.search(v, 10, &none(), None).unwrap(),
                re.search(v, 10, &none(), None).unwrap()
            );
        }
        assert_eq!(re.row(7).map(|r| &*r.id), Some("p7"));
        // a reloaded graph accepts new points
        let extra = rand_vecs(5, 24, 99)
            .into_iter()
            .map(|(i, v)| (i + 1000, v))
            .collect::<Vec<_>>();
        re.insert(entries(&extra)).unwrap();
        let hit = re.search(&extra[2].1, 1, &none(), None).unwrap();
        assert_eq!(hit[0].0, extra[2].0);
        let file = dir.path().join(GRAPH_FILE);
        let bytes = fs::read(&file).unwrap();
        // a torn write is refused (by its length, before the file is read), not a crash
        for keep in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            let torn = tempfile::tempdir().unwrap();
            fs::write(torn.path().join(GRAPH_FILE), &bytes[..keep]).unwrap();
            let e = load(torn.path(), 24, 400, sums).err();
            assert!(e.is_some(), "cut to {keep} bytes was accepted");
        }
        // one byte changed anywhere (same length: the header usearch trusts, a neighbour
        // id, a vector) is refused before usearch reads the file
        for at in [0, 8, 64, bytes.len() / 2, bytes.len() - 1] {
            let bad = tempfile::tempdir().unwrap();
            let mut b = bytes.clone();
            b[at] ^= 0x5a;
            fs::write(bad.path().join(GRAPH_FILE), &b).unwrap();
            let e = load(bad.path(), 24, 400, sums).err();
            assert!(e.is_some(), "changed at byte {at} was accepted");
        }
        // garbage and a missing file are refused, not a crash
        let bad = tempfile::tempdir().unwrap();
        assert!(load(bad.path(), 24, 400, sums).is_err());
        fs::write(bad.path().join(GRAPH_FILE), b"garbage").unwrap();
        assert!(load(bad.path(), 24, 400, sums).is_err());
    }
}
