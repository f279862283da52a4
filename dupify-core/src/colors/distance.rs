//! Perceptual distance between two palettes: the earth mover's distance (Rubner, Tomasi &
//! Guibas 2000) between the palettes' share distributions, with CIEDE2000 as ground distance.
//!
//! Each palette's shares are normalised to sum to 1, so the distance compares what the product
//! is made of (70% navy + 30% white vs 50/50), in ΔE2000 units: moving all of a palette's
//! weight by ΔE 10 costs 10. EMD over a metric ground distance is a metric on normalised
//! distributions. CIEDE2000 itself is not a strict metric (its triangle inequality can fail by
//! small amounts for some triples), so the palette distance is a metric up to those rare
//! violations; identity (0 on identical palettes) and exact symmetry hold always — the problem
//! is solved in a canonical orientation so swapping the arguments gives bit-identical results.
//!
//! The transport problem is solved exactly by successive shortest paths (Bellman–Ford on the
//! residual graph); palettes are small (≤ a few dozen colours), so this costs microseconds.

use std::cmp::Ordering;

use super::lab::delta_e2000_f64;
use super::DominantColor;

/// Distance between an empty and a non-empty palette: the ΔE2000 between black and white.
/// Any constant at least half the largest possible distance keeps the triangle inequality.
pub const EMPTY_PALETTE_DISTANCE: f32 = 100.0;

/// A palette entry as the distance sees it: a CIELAB (D65) colour and its share of the
/// palette, in percent like every share in the crate (the distance normalises shares, so only
/// their ratios matter). Implemented by the colour stage's [`DominantColor`] and the
/// catalog's stored swatches, so extraction and dupe search compare palettes the same way.
pub trait PaletteEntry {
    /// CIELAB L*, a*, b*.
    fn lab(&self) -> [f32; 3];
    /// Share of the palette, percent.
    fn share(&self) -> f32;
}

impl PaletteEntry for DominantColor {
    fn lab(&self) -> [f32; 3] {
        self.lab
    }
    fn share(&self) -> f32 {
        self.share
    }
}

/// Earth mover's distance between two palettes in ΔE2000 units (see the module docs).
/// Colours with a non-positive or non-finite share are ignored; two empty palettes are at 0.
pub fn palette_distance<C: PaletteEntry>(a: &[C], b: &[C]) -> f32 {
    let pa = normalise(a);
    let pb = normalise(b);
    match (pa.is_empty(), pb.is_empty()) {
        (true, true) => return 0.0,
        (true, false) | (false, true) => return EMPTY_PALETTE_DISTANCE,
        _ => {}
    }
    let (x, y) = if cmp_palettes(&pa, &pb) == Ordering::Greater {
        (pb, pa)
    } else {
        (pa, pb)
    };
    if x == y {
        return 0.0;
    }
    emd(&x, &y) as f32
}

type Dist = Vec<(f64, [f64; 3])>;

fn normalise<C: PaletteEntry>(p: &[C]) -> Dist {
    let usable = || {
        p.iter()
            .filter(|c| c.share().is_finite() && c.share() > 0.0)
    };
    let total: f64 = usable().map(|c| c.share() as f64).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    usable()
        .map(|c| {
            let lab = c.lab();
            (
                c.share() as f64 / total,
                [lab[0] as f64, lab[1] as f64, lab[2] as f64],
            )
        })
        .collect()
}

fn cmp_palettes(a: &Dist, b: &Dist) -> Ordering {
    for (p, q) in a.iter().zip(b) {
        let o =
            p.0.total_cmp(&q.0)
                .then(p.1[0].total_cmp(&q.1[0]))
                .then(p.1[1].total_cmp(&q.1[1]))
                .then(p.1[2].total_cmp(&q.1[2]));
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

struct Edge {
    to: usize,
    cap: f64,
    cost: f64,
}

/// Min-cost transport of `x`'s mass onto `y`'s (both sum to 1), divided by the mass moved.
fn emd(x: &Dist, y: &Dist) -> f64 {
    const EPS: f64 = 1e-12;
    let (n, m) = (x.len(), y.len());
    let (s, t) = (n + m, n + m + 1);
    let nodes = n + m + 2;
    let mut edges: Vec<Edge> = Vec::with_capacity(2 * (n + m + n * m));
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    let mut add = |edges: &mut Vec<Edge>, u: usize, v: usize, cap: f64, cost: f64| {
        adj[u].push(edges.len());
        edges.push(Edge { to: v, cap, cost });
        adj[v].push(edges.len());
        edges.push(Edge {
            to: u,
            cap: 0.0,
            cost: -cost,
        });
    };
    for (i, p) in x.iter().enumerate() {
        add(&mut edges, s, i, p.0, 0.0);
    }
    for (j, q) in y.iter().enumerate() {
        add(&mut edges, n + j, t, q.0, 0.0);
    }
    for (i, p) in x.iter().enumerate() {
        for (j, q) in y.iter().enumerate() {
            add(
                &mut edges,
                i,
                n + j,
                f64::INFINITY,
                delta_e2000_f64(p.1, q.1),
            );
        }
    }
    let (mut moved, mut cost) = (0.0f64, 0.0f64);
    // Every augmentation empties a source or sink edge or a reverse edge; bound the loop anyway.
    for _ in 0..4 * nodes * nodes {
        // Bellman–Ford from s over edges with residual capacity.
        let mut dist = vec![f64::INFINITY; nodes];
        let mut via = vec![usize::MAX; nodes];
        dist[s] = 0.0;
        for _ in 0..nodes {
            let mut relaxed = false;
            for u in 0..nodes {
                if dist[u] == f64::INFINITY {
                    continue;
                }
                for &e in &adj[u] {
                    let ed = &edges[e];
                    if ed.cap > EPS && dist[u] + ed.cost < dist[ed.to] - 1e-12 {
                        dist[ed.to] = dist[u] + ed.cost;
                        via[ed.to] = e;
                        relaxed = true;
                    }
                }
            }
            if !relaxed {
                break;
            }
        }
        if dist[t] == f64::INFINITY {
            break;
        }
        let mut push = f64::INFINITY;
        let mut v = t;
        while v != s {
            let e = via[v];
            push = push.min(edges[e].cap);
            v = edges[e ^ 1].to;
        }
        let mut v = t;
        while v != s {
            let e = via[v];
            edges[e].cap -= push;
            edges[e ^ 1].cap += push;
            v = edges[e ^ 1].to;
        }
        moved += push;
        cost += push * dist[t];
    }
    if moved <= EPS {
        0.0
    } else {
        (cost / moved).max(0.0)
    }
}
