//! Automatic `ef_search`: each namespace's graph measures its own recall and picks the
//! smallest search breadth that reaches [`IndexParams::target_recall`].
//!
//! Why: the breadth HNSW needs for a given recall grows with the catalog and depends on how
//! the embeddings cluster. On the `catalog` bench's CLIP-shaped vectors, `ef_search = 32`
//! finds 99% of the true top 10 at 100k products and 56% at 1M; a fixed default is either
//! wasteful on small catalogs or silently wrong on large ones.
//!
//! How: up to [`SAMPLE`] query vectors are searched exactly (one matrix product over every
//! live vector), then through the graph for a ladder of `ef` values: doubling from
//! [`IndexParams::ef_search`] until the recall's one-sided 99% lower bound reaches the target,
//! then two bisection steps between the last miss and the first hit. The queries are, where
//! the index has them, *held out*: products of the batch being added (or of the graph being
//! built), searched before they are inserted, so they are real new products, not graph
//! nodes. Where it has none (a graph reopened from a save without a calibration, or growth
//! by batches too small to hold out [`MIN_HELD_OUT`]), stored vectors are moved off their own
//! node by a random step as long as their nearest-neighbour distance (a stored vector as its
//! own query would land on its node, whose links point straight at its neighbours, and
//! overstate recall: on a test graph it read 0.98 where new queries found 0.83); on the
//! `catalog` bench's 1M vectors these are harder than new products (they asked for ef 3072
//! where 512 gave new queries 0.957), so that fallback errs towards a larger `ef`. The result
//! is stored with the saved graph and measured again when the graph has grown by a quarter
//! since. Why a quarter: recall at a fixed `ef` falls as the graph grows; on the `catalog`
//! bench, with the measurement repeated at each growth by half, a 1M graph last measured at
//! 930k points (sample recall 0.978) found 0.950 of fresh queries' true top 10, the target
//! with no margin. Each measurement is one exact pass over the live vectors (a few seconds at
//! 1M on 2 cores) and a few thousand graph searches.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use tch::Tensor;

use super::graph::Graph;
use super::index::{dot, IndexParams, MAX_EF_SEARCH};
use crate::error::{Error, Result};

/// Query vectors per calibration. 200 queries × 10 neighbours put the standard error of the
/// recall estimate near 0.005 at recall 0.95.
pub(crate) const SAMPLE: usize = 200;
/// The recall is recall@10, what a search page shows.
pub(crate) const K: usize = 10;
/// One-sided 99% normal quantile. The ladder looks at up to 10 `ef` values and keeps the
/// first whose bound passes, which favours a sample that happened to do well; a 99% bound
/// per look, rather than 95%, pays for the several looks made near the threshold.
const Z: f64 = 2.326;
/// Bisection steps after the doubling ladder (the chosen `ef` is within 25% of the least
/// that passes).
const BISECT: usize = 2;
/// Fewer held-out vectors than this and the perturbed stored vectors are used instead.
pub(crate) const MIN_HELD_OUT: usize = 50;
/// Vectors per matrix product of the exact pass (16 Ki × 512-d = 32 MB).
const EXACT_CHUNK: usize = 16 * 1024;

/// What a calibration found, saved with the graph.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Calibration {
    /// The `ef_search` searches use.
    pub ef_search: usize,
    /// Mean recall@10 of the sample at that `ef_search`.
    pub recall: f32,
    /// Graph points (live and tombstones) when it was measured.
    pub points: usize,
    /// The `target_recall` and `ef_search` floor it was measured for: other settings
    /// measure again.
    pub target_recall: f32,
    pub floor: usize,
    /// Whether the queries were held-out new vectors (else perturbed stored ones).
    #[serde(default)]
    pub held_out: bool,
}

impl Calibration {
    /// Whether it still answers for `params` on a graph of `points`.
    pub(crate) fn current(&self, params: &IndexParams, points: usize) -> bool {
        self.target_recall == params.target_recall
            && self.floor == params.ef_search
            && points < self.points.saturating_add(self.points / 4)
    }
}

/// The graph's live points and how searches see them.
pub(crate) struct Live<'a> {
    /// Live ids in the graph (sorted).
    pub ids: &'a [usize],
    pub dim: usize,
    /// What searches pass through: tombstones filtered out when there are any.
    pub pass: Option<&'a (dyn Fn(usize) -> bool + Sync)>,
}

/// Calibrates `graph`. `queries` are the held-out vectors (not in the graph) or, when
/// `held_out` is false, from [`perturbed_queries`]. Leaves the graph's breadth at the last
/// one measured: the caller sets the one searches use.
pub(crate) fn calibrate(
    graph: &mut Graph,
    live: &Live<'_>,
    params: &IndexParams,
    points: usize,
    queries: &[Vec<f32>],
    held_out: bool,
) -> Result<Calibration> {
    let truth = exact_top_k(graph, live, queries)?;
    let mut measure = |ef: usize| -> Result<(f64, f64)> {
        graph.set_ef(ef);
        let g = &*graph;
        let per_query: Vec<f64> = queries
            .par_iter()
            .zip(&truth)
            .map(|(q, want)| {
                let got = g.search(q, K, live.pass)?;
                let hit = want
                    .iter()
                    .filter(|w| got.iter().any(|(id, _)| id == *w))
                    .count();
                Ok(hit as f64 / want.len().max(1) as f64)
            })
            .collect::<Result<_>>()?;
        Ok(lower_bound(&per_query))
    };
    let target = f64::from(params.target_recall);
    let mut ef = params.ef_search.max(K);
    let mut miss = None;
    let mut hit = loop {
        let (mean, low) = measure(ef)?;
        if low >= target || ef >= MAX_EF_SEARCH {
            break (ef, mean);
        }
        miss = Some(ef);
        ef = (ef * 2).min(MAX_EF_SEARCH);
    };
    for _ in 0..BISECT {
        let Some(lo) = miss else { break };
        let mid = (lo + hit.0) / 2;
        if mid <= lo {
            break;
        }
        let (mean, low) = measure(mid)?;
        if low >= target {
            hit = (mid, mean);
        } else {
            miss = Some(mid);
        }
    }
    Ok(Calibration {
        ef_search: hit.0,
        recall: hit.1 as f32,
        points,
        target_recall: params.target_recall,
        floor: params.ef_search,
        held_out,
    })
}

/// Up to [`SAMPLE`] queries when no held-out vectors are at hand: stored vectors, each moved
/// in a random direction by its distance to its nearest other vector (`near(v, id)`: the
/// similarity of the best live vector other than `id`, searched at `ef`), so none sits on
/// its own graph node.
pub(crate) fn perturbed_queries(
    graph: &mut Graph,
    live: &Live<'_>,
    ef: usize,
    seed: u64,
) -> Result<Vec<Vec<f32>>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let picks: Vec<usize> = if live.ids.len() <= SAMPLE {
        live.ids.to_vec()
    } else {
        rand::seq::index::sample(&mut rng, live.ids.len(), SAMPLE)
            .into_iter()
            .map(|j| live.ids[j])
            .collect()
    };
    graph.set_ef(ef);
    let g = &*graph;
    let near = |q: &[f32], own: usize| -> Result<Option<f32>> {
        Ok(g.search(q, 2, live.pass)?
            .into_iter()
            .find(|n| n.0 != own)
            .map(|n| n.1))
    };
    let mut v = vec![0.0f32; live.dim];
    let mut out = Vec::with_capacity(picks.len());
    for id in picks {
        if !g.vector(id, &mut v) {
            return Err(missing(id));
        }
        // unit vectors: |a - b| = sqrt(2 (1 - a·b))
        let step = near(&v, id)?.map_or(0.0, |s| (2.0 * (1.0 - s)).max(0.0).sqrt());
        let dir: Vec<f32> = (0..v.len()).map(|_| rng.sample(StandardNormal)).collect();
        let norm = dot(&dir, &dir).sqrt().max(f32::MIN_POSITIVE);
        let q: Vec<f32> = v
            .iter()
            .zip(&dir)
            .map(|(x, d)| x + step * d / norm)
            .collect();
        let n = dot(&q, &q).sqrt().max(f32::MIN_POSITIVE);
        out.push(q.into_iter().map(|x| x / n).collect());
    }
    Ok(out)
}

fn missing(id: usize) -> Error {
    Error::Internal(format!("calibration: live id {id} is not in the graph"))
}

/// The ids of each query's [`K`] most similar live vectors. All queries against a chunk of
/// vectors are one matrix product (LibTorch's GEMM: 200 queries × 1M × 512-d is 10^11
/// multiply-adds, work for a tuned kernel, not a loop of dot products), then each row's
/// top `K`.
fn exact_top_k(graph: &Graph, live: &Live<'_>, queries: &[Vec<f32>]) -> Result<Vec<Vec<usize>>> {
    let mut tops = vec![Vec::<(usize, f32)>::with_capacity(K + 1); queries.len()];
    if queries.is_empty() {
        return Ok(Vec::new());
    }
    let dim = live.dim;
    let torch = |e: tch::TchError| Error::Internal(format!("calibration's exact search: {e}"));
    let q: Vec<f32> = queries.iter().flatten().copied().collect();
    let q = Tensor::f_from_slice(&q)
        .and_then(|t| t.f_view([queries.len() as i64, dim as i64]))
        .map_err(torch)?;
    let mut buf = Vec::with_capacity(EXACT_CHUNK.min(live.ids.len()) * dim);
    for chunk in live.ids.chunks(EXACT_CHUNK) {
        buf.resize(chunk.len() * dim, 0.0);
        buf.par_chunks_mut(dim)
            .zip(chunk)
            .try_for_each(|(out, id)| {
                graph
                    .vector(*id, out)
                    .then_some(())
                    .ok_or_else(|| missing(*id))
            })?;
        let k = K.min(chunk.len()) as i64;
        let (sims, at) = Tensor::f_from_slice(&buf)
            .and_then(|x| x.f_view([chunk.len() as i64, dim as i64]))
            .and_then(|x| q.f_mm(&x.f_tr()?))
            .and_then(|s| s.f_topk(k, 1, true, true))
            .map_err(torch)?;
        let sims = Vec::<f32>::try_from(sims.flatten(0, -1)).map_err(torch)?;
        let at = Vec::<i64>::try_from(at.flatten(0, -1)).map_err(torch)?;
        for (row, top) in tops.iter_mut().enumerate() {
            for j in row * k as usize..(row + 1) * k as usize {
                push_top(top, (chunk[at[j] as usize], sims[j]));
            }
        }
    }
    Ok(tops
        .into_iter()
        .map(|top| top.into_iter().map(|(id, _)| id).collect())
        .collect())
}

/// Keeps `top` the best [`K`] by similarity, best first (ties by id).
fn push_top(top: &mut Vec<(usize, f32)>, hit: (usize, f32)) {
    let better = |a: &(usize, f32), b: &(usize, f32)| a.1 > b.1 || (a.1 == b.1 && a.0 < b.0);
    if top.len() == K && !better(&hit, &top[K - 1]) {
        return;
    }
    let at = top
        .iter()
        .position(|t| better(&hit, t))
        .unwrap_or(top.len());
    top.insert(at, hit);
    top.truncate(K);
}

/// Mean of per-query recalls and its one-sided 99% lower confidence bound.
fn lower_bound(per_query: &[f64]) -> (f64, f64) {
    let n = per_query.len().max(1) as f64;
    let mean = per_query.iter().sum::<f64>() / n;
    let var = per_query.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, mean - Z * (var / n).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_best_in_order() {
        let mut top = Vec::new();
        for (i, s) in [
            0.1f32, 0.9, 0.5, 0.9, 0.3, 0.8, 0.2, 0.7, 0.6, 0.4, 0.05, 0.95,
        ]
        .into_iter()
        .enumerate()
        {
            push_top(&mut top, (i, s));
        }
        let ids: Vec<usize> = top.iter().map(|t| t.0).collect();
        assert_eq!(ids, vec![11, 1, 3, 5, 7, 8, 2, 9, 4, 6]);
    }

    #[test]
    fn lower_bound_is_below_the_mean_and_tightens_with_agreement() {
        let (m, lo) = lower_bound(&[1.0; 50]);
        assert_eq!((m, lo), (1.0, 1.0));
        let mixed: Vec<f64> = (0..100)
            .map(|i| if i % 10 == 0 { 0.5 } else { 1.0 })
            .collect();
        let (m, lo) = lower_bound(&mixed);
        assert!((m - 0.95).abs() < 1e-12);
        // sd 0.15 over 100 queries: 2.326 * 0.015 below the mean
        assert!((m - lo - 2.326 * 0.15 / 10.0).abs() < 1e-3, "{m} {lo}");
    }
}
