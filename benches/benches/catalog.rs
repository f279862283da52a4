//! Catalog search benchmark: ANN (hnsw_rs through `Catalog::search`) against exact brute
//! force over the same vectors in the same run.
//!
//! Data: synthetic L2-normalised 512-d vectors drawn around 1,000 random centres (CLIP
//! embeddings of products are clustered, not uniform on the sphere). Queries are fresh draws
//! from the same distribution. Measures: build time (SQLite ingest + graph), recall@10 vs
//! exact, queries/s of both, p50/p99 latency, reopen time, and index memory per vector
//! beyond the raw vectors (RSS growth on reopen minus `n * dim * 4`).
//!
//! Run: `DUPIFY_CATALOG_BENCH_N=100000 cargo bench -p dupify-benches --bench catalog`
//! (N defaults to 100,000). Prints a table and, as its last line, a JSON object.

use std::time::Instant;

use dupify_core::catalog::*;

const DIM: usize = 512;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Approximately standard normal (sum of 4 uniforms, rescaled).
    fn gauss(&mut self) -> f32 {
        let s: f32 = (0..4)
            .map(|_| (self.next() >> 11) as f32 / (1u64 << 53) as f32)
            .sum();
        (s - 2.0) * 1.732
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn draw(rng: &mut Rng, centres: &[Vec<f32>]) -> Vec<f32> {
    let c = &centres[(rng.next() % centres.len() as u64) as usize];
    unit(c.iter().map(|x| x + 0.06 * rng.gauss()).collect())
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn main() {
    // criterion-style args (`--bench`) are ignored.
    let n: usize = std::env::var("DUPIFY_CATALOG_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let nq = 500;
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let centres: Vec<Vec<f32>> = (0..1000)
        .map(|_| unit((0..DIM).map(|_| rng.gauss()).collect()))
        .collect();
    let data: Vec<Vec<f32>> = (0..n).map(|_| draw(&mut rng, &centres)).collect();
    let queries: Vec<Vec<f32>> = (0..nq).map(|_| draw(&mut rng, &centres)).collect();

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let opts = CatalogOptions {
        synchronous_full: false,
        ..CatalogOptions::default().with_dim(DIM)
    };
    let ns = Namespace::new("bench", Environment::Test).expect("ns");

    let t = Instant::now();
    let build_s;
    {
        let cat = Catalog::open(&path, opts.clone()).expect("open");
        for (b, chunk) in data.chunks(10_000).enumerate() {
            let batch = chunk
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let mut p = NewProduct::new(format!("p{}", b * 10_000 + i));
                    p.features.clip = Some(v.clone());
                    p
                })
                .collect();
            cat.upsert_batch(&ns, batch).expect("ingest");
        }
        build_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        cat.flush().expect("flush");
        eprintln!(
            "build {build_s:.1}s, save {:.2}s",
            t.elapsed().as_secs_f64()
        );
    }

    let rss0 = rss_bytes();
    let t = Instant::now();
    let cat = Catalog::open(&path, opts).expect("reopen");
    let reopen_s = t.elapsed().as_secs_f64();
    let rss1 = rss_bytes();
    let report = cat.index_report().expect("report");
    let raw = (n * DIM * 4) as f64;
    let overhead_per_vec = (rss1.saturating_sub(rss0) as f64 - raw) / n as f64;

    // Exact brute force over the same vectors (same thread count: one).
    let t = Instant::now();
    let truth: Vec<Vec<usize>> = queries
        .iter()
        .map(|q| {
            let mut s: Vec<(usize, f32)> = data
                .iter()
                .enumerate()
                .map(|(i, v)| (i, dot(q, v)))
                .collect();
            s.select_nth_unstable_by(10, |a, b| b.1.total_cmp(&a.1));
            s.truncate(10);
            s.into_iter().map(|(i, _)| i).collect()
        })
        .collect();
    let exact_qps = nq as f64 / t.elapsed().as_secs_f64();

    let mut lat = Vec::with_capacity(nq);
    let mut hit = 0usize;
    let t = Instant::now();
    for (q, want) in queries.iter().zip(&truth) {
        let t1 = Instant::now();
        let res = cat
            .search(&ns, &SearchQuery::by_embedding(q.clone()))
            .expect("search");
        lat.push(t1.elapsed().as_secs_f64() * 1e3);
        let got: Vec<usize> = res
            .iter()
            .filter_map(|h| h.product.external_id[1..].parse().ok())
            .collect();
        hit += want.iter().filter(|w| got.contains(w)).count();
    }
    let ann_qps = nq as f64 / t.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    let recall = hit as f64 / (nq * 10) as f64;

    println!("| metric | value |\n|---|---|");
    println!("| vectors | {n} × {DIM} |");
    println!("| index | {:?} / {:?} |", report[0].mode, report[0].source);
    println!("| build (ingest + graph) | {build_s:.1} s |");
    println!("| reopen | {reopen_s:.2} s |");
    println!(
        "| index memory beyond vectors | {:.0} B/vector |",
        overhead_per_vec
    );
    println!("| recall@10 vs exact | {recall:.3} |");
    println!("| ANN QPS (Catalog::search, 1 thread) | {ann_qps:.0} |");
    println!("| exact brute-force QPS (1 thread) | {exact_qps:.1} |");
    println!("| speed-up | {:.1}× |", ann_qps / exact_qps);
    println!("| latency p50 / p99 | {:.2} / {:.2} ms |", p(0.5), p(0.99));
    println!(
        "{{\"n\":{n},\"build_s\":{build_s:.2},\"reopen_s\":{reopen_s:.3},\"overhead_bytes_per_vector\":{overhead_per_vec:.0},\"recall_at_10\":{recall:.4},\"ann_qps\":{ann_qps:.1},\"exact_qps\":{exact_qps:.2},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        p(0.5),
        p(0.99)
    );
}
