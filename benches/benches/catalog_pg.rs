//! The catalog on PostgreSQL + pgvector at size, on the same vectors and queries as the
//! embedded catalog's benchmark (`catalog.rs`, `dupify_benches::vectors::clip_like`).
//!
//! Measures, in one run:
//! - **Ingest** through `Catalog::upsert_batch` (binary COPY into a temporary table and one
//!   upsert statement per batch): first `DUPIFY_PG_BENCH_INDEXED` products (default 20,000)
//!   with the HNSW index in place, as a live catalog takes them, then the rest with the index
//!   dropped, as an initial bulk load should run.
//! - **HNSW build**: the catalog's own index definition (read back from `pg_indexes` before
//!   the drop), rebuilt with `maintenance_work_mem` = `DUPIFY_PG_BENCH_MEM` (default 8GB) and
//!   `max_parallel_maintenance_workers` = `DUPIFY_PG_BENCH_WORKERS` (default 1, so leader +
//!   1 worker on 2 cores).
//! - **Disk per vector**: table (heap + TOAST) and index bytes over `n`. The index is what
//!   has to stay in memory (shared buffers or the OS page cache) for index-speed search.
//! - **Search** through `Catalog::search` for a sweep of `ef_search` values
//!   (`DUPIFY_PG_BENCH_EF`, default 40,100,200,400), unfiltered and with a 2% category filter
//!   (50 categories): recall@10 against exact search over the same vectors with the same
//!   filter (in memory, `vectors::exact_top_k`), queries/s of one client, p50/p99. Beside
//!   them: exact search in PostgreSQL itself (index scans off) and in memory, in the same run.
//! - With `DUPIFY_PG_BENCH_HALFVEC=1`, a second HNSW index on `clip::halfvec(512)` (half
//!   the bytes per dimension): its build time, size, and recall/QPS by plain SQL next to the
//!   same SQL on the `vector` index.
//!
//! Run it on a cluster of its own, with durable writes and buffers sized for the index:
//!
//! ```sh
//! export DUPIFY_PG_DIR=target/pg-bench DUPIFY_PG_SETTINGS="-c fsync=on -c shared_buffers=4GB"
//! scripts/pg.sh start
//! DUPIFY_PG_BENCH_URL=$(scripts/pg.sh createdb bench_1m) DUPIFY_CATALOG_BENCH_N=1000000 \
//!     cargo bench -p dupify-benches --features postgres --bench catalog_pg
//! scripts/pg.sh stop
//! ```
//!
//! The database must be empty, or hold exactly this benchmark's `n` products (then ingest
//! and build are skipped and only the searches run again). Prints tables and, as its last
//! line, a JSON object.

use std::time::Instant;

use dupify_benches::vectors::{self, quantile, DIM};
use dupify_core::catalog::*;
use postgres::{Client, NoTls};

/// Products are spread over this many categories: one category is a 2% filter.
const CATEGORIES: usize = 50;
/// The category the filtered searches ask for.
const FILTER_CATEGORY: usize = 7;
const INDEX: &str = "catalog_products_clip_hnsw";
const HALF_INDEX: &str = "bench_clip_halfvec_hnsw";

fn env_usize(k: &str, default: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn category(i: usize) -> String {
    format!("c{:02}", i % CATEGORIES)
}

fn product(i: usize, v: &[f32]) -> NewProduct {
    let mut p = NewProduct::new(format!("p{i}"));
    p.category = Some(category(i));
    p.features.clip = Some(v.to_vec());
    p
}

/// A vector as pgvector's text form, for the plain-SQL queries.
fn literal(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// The product index in `p123`.
fn index_of(external_id: &str) -> Option<usize> {
    external_id.strip_prefix('p')?.parse().ok()
}

fn recall(want: &[Vec<usize>], got: &[Vec<usize>]) -> f64 {
    let hit: usize = want
        .iter()
        .zip(got)
        .map(|(w, g)| w.iter().filter(|i| g.contains(i)).count())
        .sum();
    let total: usize = want.iter().map(Vec::len).sum();
    hit as f64 / total.max(1) as f64
}

/// One measured configuration.
struct Row {
    what: String,
    ef: usize,
    recall: f64,
    qps: f64,
    p50: f64,
    p99: f64,
}

impl Row {
    fn json(&self) -> String {
        format!(
            "{{\"what\":\"{}\",\"ef_search\":{},\"recall_at_10\":{:.4},\"qps\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
            self.what, self.ef, self.recall, self.qps, self.p50, self.p99
        )
    }
}

/// Runs `search` over the queries (20 untimed first, to warm the caches) and measures it.
fn measure(
    what: &str,
    ef: usize,
    queries: &[Vec<f32>],
    truth: &[Vec<usize>],
    mut search: impl FnMut(&[f32]) -> Vec<usize>,
) -> Row {
    for q in queries.iter().take(20) {
        search(q);
    }
    let mut lat = Vec::with_capacity(queries.len());
    let mut got = Vec::with_capacity(queries.len());
    let t = Instant::now();
    for q in queries {
        let t1 = Instant::now();
        got.push(search(q));
        lat.push(t1.elapsed().as_secs_f64() * 1e3);
    }
    let qps = queries.len() as f64 / t.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let row = Row {
        what: what.to_string(),
        ef,
        recall: recall(truth, &got),
        qps,
        p50: quantile(&lat, 0.5),
        p99: quantile(&lat, 0.99),
    };
    eprintln!(
        "{what} ef {ef}: recall@10 {:.3}, {:.0} q/s, p50 {:.2} ms, p99 {:.2} ms",
        row.recall, row.qps, row.p50, row.p99
    );
    row
}

/// Exact top 10 in PostgreSQL (index scans off, so a scan of every matching row), for
/// `queries`: queries/s.
fn pg_exact(sql: &mut Client, queries: &[Vec<f32>], filter: Option<&str>) -> f64 {
    let cond = if filter.is_some() {
        "WHERE category = $2"
    } else {
        ""
    };
    let stmt = format!(
        "SELECT id FROM catalog_products {cond} ORDER BY clip <=> $1::text::vector LIMIT 10"
    );
    let t = Instant::now();
    for q in queries {
        let mut tx = sql.transaction().expect("begin");
        tx.batch_execute("SET LOCAL enable_indexscan = off")
            .expect("set");
        let lit = literal(q);
        let rows = match filter {
            Some(c) => tx.query(&stmt, &[&lit, &c]),
            None => tx.query(&stmt, &[&lit]),
        }
        .expect("exact query");
        assert_eq!(rows.len(), 10);
        tx.commit().expect("commit");
    }
    queries.len() as f64 / t.elapsed().as_secs_f64()
}

/// Top 10 by plain SQL on one of the two HNSW indexes (`cast` = `vector` or `halfvec`).
fn pg_ann(sql: &mut Client, q: &[f32], ef: usize, cast: &str) -> Vec<usize> {
    let mut tx = sql.transaction().expect("begin");
    tx.batch_execute(&format!(
        "SET LOCAL hnsw.ef_search = {ef}; SET LOCAL hnsw.iterative_scan = relaxed_order"
    ))
    .expect("set");
    let rows = tx
        .query(
            &format!(
                "SELECT external_id FROM catalog_products \
                 ORDER BY clip::{cast}({DIM}) <=> $1::text::{cast}({DIM}) LIMIT 10"
            ),
            &[&literal(q)],
        )
        .expect("ann query");
    tx.commit().expect("commit");
    rows.iter()
        .filter_map(|r| index_of(r.get::<_, &str>(0)))
        .collect()
}

fn main() {
    // criterion-style args (`--bench`) are ignored.
    let url = std::env::var("DUPIFY_PG_BENCH_URL")
        .expect("set DUPIFY_PG_BENCH_URL to a database of its own (scripts/pg.sh createdb NAME)");
    let n = env_usize("DUPIFY_CATALOG_BENCH_N", 100_000);
    let nq = env_usize("DUPIFY_PG_BENCH_QUERIES", 200).min(500);
    let indexed_n = env_usize("DUPIFY_PG_BENCH_INDEXED", 20_000).min(n);
    let mem = std::env::var("DUPIFY_PG_BENCH_MEM").unwrap_or_else(|_| "8GB".into());
    let workers = env_usize("DUPIFY_PG_BENCH_WORKERS", 1);
    let efs: Vec<usize> = std::env::var("DUPIFY_PG_BENCH_EF")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![40, 100, 200, 400]);
    let halfvec = std::env::var("DUPIFY_PG_BENCH_HALFVEC").is_ok_and(|v| v == "1");

    let t = Instant::now();
    // The same 500 queries as the embedded benchmark draws; the first `nq` are used.
    let (data, queries, shape) = vectors::clip_like(n, 500);
    let queries = &queries[..nq];
    eprintln!("generated {n} vectors in {:.1}s", t.elapsed().as_secs_f64());

    let cat = Catalog::connect(&url, CatalogOptions::default().with_dim(DIM)).expect("connect");
    let mut sql = Client::connect(&url, NoTls).expect("plain SQL connection");
    let ns = Namespace::new("bench", Environment::Test).expect("namespace");
    let have: i64 = sql
        .query_one("SELECT count(*) FROM catalog_products", &[])
        .expect("count")
        .get(0);
    let reuse = have as usize == n;
    assert!(
        have == 0 || reuse,
        "the database holds {have} products, not 0 or {n}: give the benchmark a database of its own"
    );

    let mut indexed_rate = f64::NAN;
    let mut bulk_rate = f64::NAN;
    let mut build_s = f64::NAN;
    if reuse {
        eprintln!("reusing the {n} products already in the database");
    } else {
        // 1. Live ingest: the HNSW index is maintained row by row.
        let t = Instant::now();
        for start in (0..indexed_n).step_by(1_000) {
            let end = (start + 1_000).min(indexed_n);
            let batch = (start..end).map(|i| product(i, &data[i])).collect();
            cat.upsert_batch(&ns, batch).expect("indexed ingest");
        }
        indexed_rate = indexed_n as f64 / t.elapsed().as_secs_f64();
        eprintln!("ingest with the index: {indexed_rate:.0} products/s");

        // 2. Bulk load: the index dropped, every batch a COPY.
        let indexdef: String = sql
            .query_one(
                "SELECT indexdef FROM pg_indexes WHERE indexname = $1",
                &[&INDEX],
            )
            .expect("the catalog's HNSW index exists after its first embeddings")
            .get(0);
        sql.batch_execute(&format!("DROP INDEX {INDEX}"))
            .expect("drop index");
        let t = Instant::now();
        for start in (indexed_n..n).step_by(10_000) {
            let end = (start + 10_000).min(n);
            let batch = (start..end).map(|i| product(i, &data[i])).collect();
            cat.upsert_batch(&ns, batch).expect("bulk ingest");
        }
        bulk_rate = (n - indexed_n) as f64 / t.elapsed().as_secs_f64();
        eprintln!("bulk ingest without the index: {bulk_rate:.0} products/s");

        // 3. The same index, built once over everything.
        let t = Instant::now();
        sql.batch_execute(&format!(
            "SET maintenance_work_mem = '{mem}'; \
             SET max_parallel_maintenance_workers = {workers}; {indexdef}; \
             RESET maintenance_work_mem; RESET max_parallel_maintenance_workers"
        ))
        .expect("index build");
        build_s = t.elapsed().as_secs_f64();
        eprintln!("HNSW build: {build_s:.1}s ({indexdef})");
        sql.batch_execute("VACUUM ANALYZE catalog_products")
            .expect("analyze");
    }

    let mut half_build_s = f64::NAN;
    if halfvec {
        let exists = sql
            .query_opt(
                "SELECT 1 FROM pg_indexes WHERE indexname = $1",
                &[&HALF_INDEX],
            )
            .expect("look up the halfvec index")
            .is_some();
        if !exists {
            let p = IndexParams::default();
            let t = Instant::now();
            sql.batch_execute(&format!(
                "SET maintenance_work_mem = '{mem}'; \
                 SET max_parallel_maintenance_workers = {workers}; \
                 CREATE INDEX {HALF_INDEX} ON catalog_products USING hnsw \
                 ((clip::halfvec({DIM})) halfvec_cosine_ops) \
                 WITH (m = {}, ef_construction = {}); \
                 RESET maintenance_work_mem; RESET max_parallel_maintenance_workers",
                p.m, p.ef_construction
            ))
            .expect("halfvec index build");
            half_build_s = t.elapsed().as_secs_f64();
            eprintln!("halfvec HNSW build: {half_build_s:.1}s");
        }
    }

    let size = |sql: &mut Client, q: &str| -> i64 { sql.query_one(q, &[]).expect(q).get(0) };
    let table_bytes = size(&mut sql, "SELECT pg_table_size('catalog_products')");
    let index_bytes = size(&mut sql, &format!("SELECT pg_relation_size('{INDEX}')"));
    let half_bytes = if halfvec {
        size(
            &mut sql,
            &format!("SELECT pg_relation_size('{HALF_INDEX}')"),
        )
    } else {
        0
    };
    let per = |b: i64| b as f64 / n as f64;
    let shared_buffers: String = sql
        .query_one("SHOW shared_buffers", &[])
        .expect("show")
        .get(0);

    // Exact answers, in memory, and their speed (one thread, as the embedded benchmark).
    let in_filter = |i: usize| i % CATEGORIES == FILTER_CATEGORY;
    let t = Instant::now();
    let truth: Vec<Vec<usize>> = queries
        .iter()
        .map(|q| vectors::exact_top_k(&data, q, 10, |_| true))
        .collect();
    let mem_exact_qps = nq as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let truth_f: Vec<Vec<usize>> = queries
        .iter()
        .map(|q| vectors::exact_top_k(&data, q, 10, in_filter))
        .collect();
    let mem_exact_f_qps = nq as f64 / t.elapsed().as_secs_f64();

    // Exact in PostgreSQL: a scan of every (matching) row per query; 10 queries suffice.
    let sample = &queries[..nq.min(10)];
    let pg_exact_qps = pg_exact(&mut sql, sample, None);
    let fc = category(FILTER_CATEGORY);
    let pg_exact_f_qps = pg_exact(&mut sql, sample, Some(&fc));
    eprintln!(
        "exact: PostgreSQL {pg_exact_qps:.2} q/s ({pg_exact_f_qps:.1} filtered), \
         in memory {mem_exact_qps:.1} q/s ({mem_exact_f_qps:.0} filtered)"
    );

    let mut rows: Vec<Row> = Vec::new();
    let hits = |res: Vec<SearchHit>| -> Vec<usize> {
        res.iter()
            .filter_map(|h| index_of(&h.product.external_id))
            .collect()
    };
    for &ef in &efs {
        cat.set_ef_search(ef).expect("ef_search");
        rows.push(measure("catalog", ef, queries, &truth, |q| {
            hits(
                cat.search(&ns, &SearchQuery::by_embedding(q.to_vec()))
                    .expect("search"),
            )
        }));
        rows.push(measure("catalog, 2% filter", ef, queries, &truth_f, |q| {
            let mut s = SearchQuery::by_embedding(q.to_vec());
            s.filter.category = Some(fc.clone());
            hits(cat.search(&ns, &s).expect("filtered search"))
        }));
        if halfvec {
            rows.push(measure("SQL, vector", ef, queries, &truth, |q| {
                pg_ann(&mut sql, q, ef, "vector")
            }));
            rows.push(measure("SQL, halfvec", ef, queries, &truth, |q| {
                pg_ann(&mut sql, q, ef, "halfvec")
            }));
        }
    }

    let opt = |v: f64| {
        if v.is_finite() {
            format!("{v:.3}")
        } else {
            "null".into()
        }
    };
    println!("| metric | value |\n|---|---|");
    println!(
        "| vectors | {n} × {DIM} (cone {}, noise {}/dim), {CATEGORIES} categories |",
        shape.cone_weight, shape.noise
    );
    println!(
        "| ingest with the HNSW index ({indexed_n} products) | {indexed_rate:.0} products/s |"
    );
    println!("| bulk ingest, COPY, index dropped | {bulk_rate:.0} products/s |");
    println!("| HNSW build ({workers} parallel worker(s) + leader, maintenance_work_mem {mem}) | {build_s:.1} s |");
    println!(
        "| table (heap + TOAST) | {:.0} B/vector |",
        per(table_bytes)
    );
    println!(
        "| HNSW index on vector | {:.0} B/vector |",
        per(index_bytes)
    );
    if halfvec {
        println!(
            "| HNSW index on halfvec | {:.0} B/vector (build {half_build_s:.1} s) |",
            per(half_bytes)
        );
    }
    println!("| shared_buffers | {shared_buffers} |");
    println!("| exact, PostgreSQL (1 client) | {pg_exact_qps:.2} q/s, {pg_exact_f_qps:.1} q/s with the filter |");
    println!("| exact, in memory (1 thread) | {mem_exact_qps:.1} q/s, {mem_exact_f_qps:.0} q/s with the filter |");
    println!();
    println!(
        "| search | ef_search | recall@10 | QPS (1 client) | vs PostgreSQL exact | p50 / p99 ms |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let exact = if r.what.contains("filter") {
            pg_exact_f_qps
        } else {
            pg_exact_qps
        };
        println!(
            "| {} | {} | {:.3} | {:.0} | {:.1}× | {:.2} / {:.2} |",
            r.what,
            r.ef,
            r.recall,
            r.qps,
            r.qps / exact,
            r.p50,
            r.p99
        );
    }
    let rows_json: Vec<String> = rows.iter().map(Row::json).collect();
    println!(
        "{{\"n\":{n},\"indexed_ingest_per_s\":{},\"bulk_ingest_per_s\":{},\"hnsw_build_s\":{},\"halfvec_build_s\":{},\"table_bytes_per_vector\":{:.0},\"index_bytes_per_vector\":{:.0},\"halfvec_index_bytes_per_vector\":{:.0},\"pg_exact_qps\":{:.3},\"pg_exact_filtered_qps\":{:.3},\"mem_exact_qps\":{:.3},\"mem_exact_filtered_qps\":{:.3},\"searches\":[{}]}}",
        opt(indexed_rate),
        opt(bulk_rate),
        opt(build_s),
        opt(half_build_s),
        per(table_bytes),
        per(index_bytes),
        per(half_bytes),
        pg_exact_qps,
        pg_exact_f_qps,
        mem_exact_qps,
        mem_exact_f_qps,
        rows_json.join(",")
    );
}
