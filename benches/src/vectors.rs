//! The synthetic catalog both catalog benchmarks search (`benches/catalog.rs` on the embedded
//! SQLite + usearch catalog, `benches/catalog_pg.rs` on PostgreSQL + pgvector): the same seed
//! gives the same vectors and queries in both, so their figures compare like for like.
//!
//! L2-normalised 512-d vectors shaped like CLIP image embeddings: a shared direction (CLIP
//! vectors of photos sit in a narrow cone: unrelated photos have cosine ≈ 0.4–0.5), one of
//! 1,000 random cluster centres (products of a kind), and isotropic noise of
//! `DUPIFY_CATALOG_BENCH_NOISE` per dimension (default 0.02: same-cluster cosine ≈ 0.9).
//! With `DUPIFY_CATALOG_BENCH_CONE=0 DUPIFY_CATALOG_BENCH_NOISE=0.06` it is the earlier,
//! nearly isotropic generator (noise norm 1.36 > centre norm), on which any graph index has
//! to visit most points: useful as a worst case, not as a model of CLIP. Queries are fresh
//! draws from the same distribution.

#[path = "../../dupify-core/tests/common/rng.rs"]
mod rng;
use rng::{normalised as unit, XorShift as Rng};

/// The embedding dimension of the synthetic catalog (CLIP ViT-B/32's).
pub const DIM: usize = 512;

/// The generator's shape parameters (see the module docs).
pub struct Shape {
    pub cone_weight: f32,
    pub noise: f32,
}

/// `n` catalog vectors and `nq` queries from the fixed seed, with the shape from the
/// environment (see the module docs).
pub fn clip_like(n: usize, nq: usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>, Shape) {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let centres: Vec<Vec<f32>> = (0..1000)
        .map(|_| unit((0..DIM).map(|_| rng.gauss()).collect()))
        .collect();
    let env_f = |k: &str, d: f32| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse::<f32>().ok())
            .unwrap_or(d)
    };
    let cone = unit((0..DIM).map(|_| rng.gauss()).collect());
    let shape = Shape {
        cone_weight: env_f("DUPIFY_CATALOG_BENCH_CONE", 1.0),
        noise: env_f("DUPIFY_CATALOG_BENCH_NOISE", 0.02),
    };
    let draw = |rng: &mut Rng| {
        let c = &centres[(rng.next_u64() % centres.len() as u64) as usize];
        unit(
            c.iter()
                .zip(&cone)
                .map(|(x, m)| x + shape.cone_weight * m + shape.noise * rng.gauss())
                .collect(),
        )
    };
    let data: Vec<Vec<f32>> = (0..n).map(|_| draw(&mut rng)).collect();
    let queries: Vec<Vec<f32>> = (0..nq).map(|_| draw(&mut rng)).collect();
    (data, queries, shape)
}

/// 8 independent accumulators so the compiler vectorises it (as the catalog's own `dot`):
/// the exact baseline is an honest one, not a strawman.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f32>()
}

/// The indices of the `k` vectors of `data` nearest to `q` (largest dot product), best
/// first, among those `keep` admits: exact brute force, one thread.
pub fn exact_top_k(
    data: &[Vec<f32>],
    q: &[f32],
    k: usize,
    keep: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let mut s: Vec<(usize, f32)> = data
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(i, v)| (i, dot(q, v)))
        .collect();
    if s.len() > k {
        s.select_nth_unstable_by(k, |a, b| b.1.total_cmp(&a.1));
        s.truncate(k);
    }
    s.sort_by(|a, b| b.1.total_cmp(&a.1));
    s.into_iter().map(|(i, _)| i).collect()
}

/// CPU seconds (user + system) this process has used so far, from `/proc/self/stat`
/// (fields 14 and 15, in clock ticks of 1/100 s, the Linux x86-64 value). Next to a wall
/// time it shows how much of a build on a shared machine was this process's own work.
pub fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // the command name (field 2) may hold spaces; count fields after its ')'
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// Resident set size of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// The `p` quantile (0..=1) of sorted latencies.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}
