//! Catalog search benchmark: ANN (the catalog's usearch graph through `Catalog::search`)
//! against exact brute force over the same vectors in the same run.
//!
//! Data: `dupify_benches::vectors::clip_like` (CLIP-shaped synthetic 512-d vectors; the
//! PostgreSQL benchmark `catalog_pg.rs` searches the same ones). Measures: build time
//! (SQLite ingest + graph), recall@10 vs exact, queries/s of both, p50/p99 latency, reopen
//! time, and index memory per vector beyond the raw vectors: the RSS growth of the reopen
//! minus `n * dim * 4`, divided by `n` (everything: the graph's C++ allocations, the ranking
//! rows, allocator slack). The Rust heap the reopen holds is printed beside it (counted by a
//! global allocator wrapper: ranking rows and interned strings, not the graph).
//!
//! Exact brute force uses the same 8-accumulator (auto-vectorised) dot product as the
//! catalog (`vectors::dot`), over the same in-memory vectors, one thread, one query at a time.
//!
//! With `DUPIFY_CATALOG_BENCH_RAW=1` it also builds two bare graphs with the catalog's
//! parameters (m, ef_construction, the default ef_search 32) over the same vectors, on all
//! cores: usearch, the catalog's own graph library, so the catalog's overhead (filters,
//! scoring, reading the final page from SQLite) shows next to it, and hnsw_rs, the library
//! the catalog used before, so the two libraries' build time and search are compared in one
//! run.
//!
//! Search is measured first with the catalog's default, the `ef_search` it calibrated for
//! `IndexParams::target_recall` (0.95), on the bench's fresh queries (not the catalog's own
//! sample), then for a sweep of fixed `ef_search` values on the one reopened index
//! (`Catalog::set_ef_search`; the graph does not depend on it), so
//! one build gives the whole recall/speed curve. Values: `DUPIFY_CATALOG_BENCH_EF=16,32,...`
//! (default 16,24,32,48,64,96,128).
//!
//! Run: `DUPIFY_CATALOG_BENCH_N=100000 cargo bench -p dupify-benches --bench catalog`
//! (N defaults to 100,000). Prints a table and, as its last line, a JSON object.
//!
//! Building the 100k catalog takes minutes; to work on reopen alone, set
//! `DUPIFY_CATALOG_BENCH_DIR=/some/dir`: the first run builds the catalog there and keeps it,
//! later runs with the same N reuse it (the vectors are regenerated from the fixed seed, so
//! recall is still measured against the same data). `DUPIFY_CATALOG_BENCH_REOPEN=k` times `k`
//! reopens (default 1) and reports their median; `DUPIFY_CATALOG_BENCH_SWEEP=0` skips the
//! search sweep.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use dupify_benches::vectors::{self, cpu_seconds, dot, rss_bytes, DIM};
use dupify_core::catalog::*;
use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::prelude::Hnsw;

/// Counts live heap bytes, to measure what the reopened index holds.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to the system allocator unchanged; the counter is only
// arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `1 - a·b` for normalised vectors, as the catalog's distance (for the bare hnsw_rs peer).
#[derive(Default, Clone, Copy)]
struct NormCos;

impl Distance<f32> for NormCos {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

fn main() {
    // criterion-style args (`--bench`) are ignored.
    let n: usize = std::env::var("DUPIFY_CATALOG_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let nq = 500;
    let (data, queries, shape) = vectors::clip_like(n, nq);

    // A kept directory (reused when it already holds a catalog of this N) or a temporary one.
    let kept = std::env::var_os("DUPIFY_CATALOG_BENCH_DIR").map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = kept.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join(format!("bench-{n}.db"));
    let opts = CatalogOptions::default()
        .with_dim(DIM)
        .with_synchronous_full(false);
    let ns = Namespace::new("bench", Environment::Test).expect("ns");
    let reuse = kept.is_some() && path.exists();

    let t = Instant::now();
    let cpu0 = cpu_seconds();
    let mut build_s = f64::NAN;
    let mut build_cpu_s = f64::NAN;
    if reuse {
        eprintln!("reusing the catalog at {}", path.display());
    } else {
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
        build_cpu_s = cpu_seconds() - cpu0;
        let t = Instant::now();
        cat.flush().expect("flush");
        eprintln!(
            "build {build_s:.1}s ({build_cpu_s:.0} CPU s), save {:.2}s",
            t.elapsed().as_secs_f64()
        );
    }

    // Extra reopens first (each dropped again) so the median is of warm-cache runs like the
    // last one, which is kept for the memory figures and the sweep.
    let reopens: usize = std::env::var("DUPIFY_CATALOG_BENCH_REOPEN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut reopen_times = Vec::with_capacity(reopens);
    for _ in 1..reopens {
        let t = Instant::now();
        let cat = Catalog::open(&path, opts.clone()).expect("reopen");
        reopen_times.push(t.elapsed().as_secs_f64());
        // a reopen that had to rebuild or reconcile would have saved again on drop
        assert_eq!(
            cat.index_report().expect("report")[0].source,
            IndexSource::Loaded
        );
        drop(cat);
    }
    let rss0 = rss_bytes();
    let heap0 = LIVE.load(Ordering::Relaxed);
    let t = Instant::now();
    let cat = Catalog::open(&path, opts).expect("reopen");
    reopen_times.push(t.elapsed().as_secs_f64());
    let heap1 = LIVE.load(Ordering::Relaxed);
    let rss1 = rss_bytes();
    let all_reopens = reopen_times.clone();
    reopen_times.sort_by(f64::total_cmp);
    let reopen_s = reopen_times[reopen_times.len() / 2];
    eprintln!("reopen times (s): {all_reopens:.3?}");
    let report = cat.index_report().expect("report");
    let raw = (n * DIM * 4) as f64;
    let heap_per_vec = heap1.saturating_sub(heap0) as f64 / n as f64;
    let rss_overhead_per_vec = (rss1.saturating_sub(rss0) as f64 - raw) / n as f64;

    // Exact brute force over the same vectors (same thread count: one); skipped with the
    // sweep, which is all it is for.
    let sweep_on = !std::env::var("DUPIFY_CATALOG_BENCH_SWEEP").is_ok_and(|v| v == "0");
    let t = Instant::now();
    let truth: Vec<Vec<usize>> = queries
        .iter()
        .take(if sweep_on { nq } else { 0 })
        .map(|q| vectors::exact_top_k(&data, q, 10, |_| true))
        .collect();
    let exact_qps = nq as f64 / t.elapsed().as_secs_f64();

    // The ef_search sweep runs on the one reopened index: `Catalog::set_ef_search` changes
    // it without a rebuild.
    let efs: Vec<usize> = std::env::var("DUPIFY_CATALOG_BENCH_EF")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![16, 24, 32, 48, 64, 96, 128]);
    // First the default: the ef_search the namespace calibrated for itself (the reopened
    // graph's saved one, or measured on open); then the fixed values of the sweep.
    let auto_ef = report[0].ef_search;
    let efs: Vec<Option<usize>> = if sweep_on {
        std::iter::once(None)
            .chain(efs.into_iter().map(Some))
            .collect()
    } else {
        Vec::new()
    };
    let mut sweep: Vec<Sweep> = Vec::new();
    for &fixed in &efs {
        if let Some(ef) = fixed {
            cat.set_ef_search(ef).expect("ef_search");
        }
        // one untimed pass over a few queries so every ef starts with warm caches
        for q in queries.iter().take(20) {
            cat.search(&ns, &SearchQuery::by_embedding(q.clone()))
                .expect("search");
        }
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
        let qps = nq as f64 / t.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        let pct = |q: f64| vectors::quantile(&lat, q);
        sweep.push(Sweep {
            ef: fixed.or(auto_ef).unwrap_or(0),
            auto: fixed.is_none(),
            recall: hit as f64 / (nq * 10) as f64,
            qps,
            p50: pct(0.5),
            p99: pct(0.99),
        });
    }

    // Optional: the bare graphs, same parameters, same vectors, same queries.
    let raw_graph = std::env::var("DUPIFY_CATALOG_BENCH_RAW").is_ok_and(|v| v == "1");
    let recall_of = |search: &dyn Fn(&[f32]) -> Vec<usize>| {
        let mut hit = 0usize;
        let t = Instant::now();
        for (q, want) in queries.iter().zip(&truth) {
            let got = search(q);
            hit += want.iter().filter(|w| got.contains(w)).count();
        }
        let qps = nq as f64 / t.elapsed().as_secs_f64();
        (qps, hit as f64 / (nq * 10) as f64)
    };
    let mut raw: Vec<(&str, f64, f64, f64)> = Vec::new();
    if raw_graph {
        use rayon::prelude::*;
        let p = IndexParams::default();
        let t = Instant::now();
        let opts = usearch::IndexOptions {
            dimensions: DIM,
            metric: usearch::MetricKind::IP,
            quantization: usearch::ScalarKind::F32,
            connectivity: p.m,
            expansion_add: p.ef_construction,
            expansion_search: p.ef_search,
            multi: false,
        };
        let u = usearch::Index::new(&opts).expect("usearch");
        u.reserve_capacity_and_threads(n, rayon::current_num_threads())
            .expect("reserve");
        data.par_iter()
            .enumerate()
            .for_each(|(i, v)| u.add(i as u64, v).expect("add"));
        let build = t.elapsed().as_secs_f64();
        let (qps, recall) = recall_of(&|q| {
            let m = u.search(q, 10).expect("search");
            m.keys.iter().map(|k| *k as usize).collect()
        });
        raw.push(("usearch", build, qps, recall));
        drop(u);
        let t = Instant::now();
        let g = Hnsw::<f32, NormCos>::new(p.m, n, p.max_layers, p.ef_construction, NormCos);
        let refs: Vec<(&Vec<f32>, usize)> = data.iter().zip(0..).collect();
        g.parallel_insert(&refs);
        let build = t.elapsed().as_secs_f64();
        let (qps, recall) = recall_of(&|q| {
            g.search(q, 10, p.ef_search)
                .iter()
                .map(|n| n.d_id)
                .collect()
        });
        raw.push(("hnsw_rs", build, qps, recall));
    }

    println!("| metric | value |\n|---|---|");
    println!(
        "| vectors | {n} × {DIM} (cone {}, noise {}/dim) |",
        shape.cone_weight, shape.noise
    );
    println!("| index | {:?} / {:?} |", report[0].mode, report[0].source);
    println!(
        "| calibrated ef_search (sample recall@10) | {} ({}) |",
        auto_ef.map_or("-".into(), |e| e.to_string()),
        report[0]
            .recall_at_10
            .map_or("-".into(), |r| format!("{r:.3}"))
    );
    println!("| build (ingest + graph) | {build_s:.1} s wall, {build_cpu_s:.0} CPU s |");
    println!(
        "| reopen (median of {}) | {reopen_s:.2} s |",
        reopen_times.len()
    );
    println!(
        "| index memory beyond vectors (RSS growth of the reopen) | {:.0} B/vector |",
        rss_overhead_per_vec
    );
    println!(
        "| of which Rust heap (ranking rows, strings; vectors and graph are usearch's) | {:.0} B/vector |",
        heap_per_vec
    );
    if sweep_on {
        println!("| exact brute-force QPS (1 thread) | {exact_qps:.1} |");
    }
    for (name, build, q, r) in &raw {
        println!(
            "| bare {name}: build (all cores) / search QPS / recall@10 at ef 32 | {build:.1} s / {q:.0} / {r:.3} |"
        );
    }
    println!();
    println!("| ef_search | recall@10 | ANN QPS (Catalog::search, 1 thread) | speed-up vs exact | p50 / p99 ms |");
    println!("|---|---|---|---|---|");
    for s in &sweep {
        println!(
            "| {}{} | {:.3} | {:.0} | {:.1}× | {:.2} / {:.2} |",
            s.ef,
            if s.auto { " (default: calibrated)" } else { "" },
            s.recall,
            s.qps,
            s.qps / exact_qps,
            s.p50,
            s.p99
        );
    }
    let opt = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.3}"));
    let sweep_json: Vec<String> = sweep
        .iter()
        .map(|s| {
            format!(
                "{{\"ef_search\":{},\"auto\":{},\"recall_at_10\":{:.4},\"ann_qps\":{:.1},\"speedup\":{:.2},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
                s.ef,
                s.auto,
                s.recall,
                s.qps,
                s.qps / exact_qps,
                s.p50,
                s.p99
            )
        })
        .collect();
    println!(
        "{{\"n\":{n},\"build_s\":{},\"build_cpu_s\":{},\"reopen_s\":{reopen_s:.3},\"reopen_times_s\":[{}],\"auto_ef_search\":{},\"auto_sample_recall\":{},\"rust_heap_bytes_per_vector\":{heap_per_vec:.0},\"rss_overhead_bytes_per_vector\":{rss_overhead_per_vec:.0},\"exact_qps\":{},\"ann_qps\":{},\"raw\":[{}],\"sweep\":[{}]}}",
        opt(build_s.is_finite().then_some(build_s)),
        opt(build_cpu_s.is_finite().then_some(build_cpu_s)),
        all_reopens
            .iter()
            .map(|t| format!("{t:.3}"))
            .collect::<Vec<_>>()
            .join(","),
        auto_ef.map_or("null".into(), |e| e.to_string()),
        opt(report[0].recall_at_10.map(f64::from)),
        opt(sweep_on.then_some(exact_qps)),
        // the default (calibrated) breadth: what `benches/run.py`'s `catalog_search` reads
        opt(sweep.iter().find(|s| s.auto).map(|s| s.qps)),
        raw.iter()
            .map(|(name, build, q, r)| format!(
                "{{\"graph\":\"{name}\",\"build_s\":{build:.1},\"qps\":{q:.1},\"recall_at_10\":{r:.4}}}"
            ))
            .collect::<Vec<_>>()
            .join(","),
        sweep_json.join(",")
    );
}

/// One `ef_search` setting's measurements.
struct Sweep {
    ef: usize,
    /// The catalog's own (calibrated) choice rather than a `set_ef_search` value.
    auto: bool,
    recall: f64,
    qps: f64,
    p50: f64,
    p99: f64,
}
