//! Key verification throughput on one core with a warm file store (the project's target: ≥
//! 200k verifications/s, zero allocations on the hot path), plus a latency percentile pass
//! (p50/p99 printed; criterion reports means, not tails).
//!
//! `cargo bench -p dupify-benches --bench keys`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dupify_keys::{Environment, KeySpec, KeyStore, Operation};

const KEYS: usize = 10_000;

fn warm_store() -> (tempfile::TempDir, KeyStore, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::open(
        dir.path().join("keys.db"),
        b"bench pepper, 32 bytes or more!!",
    )
    .expect("open store");
    let keys: Vec<String> = (0..KEYS)
        .map(|i| {
            store
                .create(KeySpec::new(format!("key {i}"), Environment::Live))
                .expect("create")
                .key
                .expose()
                .to_string()
        })
        .collect();
    for k in &keys {
        store
            .authenticate([("X-API-Key", k.as_str())])
            .expect("warm");
    }
    (dir, store, keys)
}

fn latency_pass(store: &KeyStore, keys: &[String]) {
    let n = 200_000;
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let k = keys[(i * 7919) % keys.len()].as_str();
        let t = Instant::now();
        black_box(store.authenticate([("X-API-Key", k)]).expect("verify"));
        samples.push(t.elapsed());
    }
    let total = start.elapsed();
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "cpu_keys/latency: {n} verifications over {KEYS} keys, one thread: {:.0}/s, \
         p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}",
        n as f64 / total.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(0.999),
        samples.last().copied().unwrap_or(Duration::ZERO)
    );
}

fn bench(c: &mut Criterion) {
    let (_dir, store, keys) = warm_store();
    latency_pass(&store, &keys);
    let mut g = c.benchmark_group("cpu_keys");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("verify_warm_file_store", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(
                store
                    .authenticate([("X-API-Key", keys[i].as_str())])
                    .expect("verify"),
            )
        })
    });
    g.bench_function("verify_authorize_check_rate", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let p = store
                .authenticate([("X-API-Key", keys[i].as_str())])
                .expect("verify");
            store.authorize(&p, &Operation::Embed).expect("scope");
            black_box(store.check_rate(&p))
        })
    });
    g.bench_function("reject_unknown_key", |b| {
        let unknown = format!("fe_live_{}", "Z".repeat(32));
        b.iter(|| {
            black_box(
                store
                    .authenticate([("X-API-Key", unknown.as_str())])
                    .is_err(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
