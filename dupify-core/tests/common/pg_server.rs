//! The PostgreSQL server the `postgres` tests run against: `DUPIFY_TEST_PG_URL`, and a fresh
//! database on it per test. Shared by `catalog/pg.rs` and `catalog_pg_processes.rs`.

/// The server's URL from the environment; panics (fails the test) when it is missing.
fn server_url() -> String {
    std::env::var("DUPIFY_TEST_PG_URL").expect(
        "DUPIFY_TEST_PG_URL is not set: start a cluster with `scripts/pg.sh start` and export \
         its URL (scripts/test.sh does both)",
    )
}

/// A fresh, empty database on the test server; returns its URL.
pub fn fresh_database() -> String {
    let url = server_url();
    let name = format!("dupify_catalog_{}", uuid_like());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (url.clone(), String::new()),
    };
    let (server, _db) = base.rsplit_once('/').expect("URL with a database");
    format!("{server}/{name}{query}")
}

/// A name part unique across tests and runs: the process id and a per-process counter.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}
