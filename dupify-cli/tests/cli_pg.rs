//! `dupify` with its catalog and its key store on PostgreSQL (feature `postgres`): index,
//! resume and search against a `postgres://` catalog, keys in a `postgres://` key store, and
//! no message ever shows the URL's password.
//!
//! Needs `DUPIFY_TEST_PG_URL` (`scripts/pg.sh start` prints one; scripts/test.sh exports it)
//! and the tiny seeded test model; fails, never skips, without either.

use std::process::Output;

use serde_json::Value;

mod common;
use common::root;

const PHOTOS: [&str; 4] = [
    "dress/06a00c0f-5f9a-410d-a7da-3881a9df3a71.jpg",
    "dress/28b09463-6bbb-491d-9ffc-f36df5c6b211.jpg",
    "hat/2a12baab-f020-42e3-8e6b-5d82e3ed0b55.jpg",
    "shoes/07d88b75-85a4-407b-aa73-12294a2ff9a8.jpg",
];

const PASSWORD: &str = "s3cret-never-shown";

/// A fresh database on the test server; its URL with a password added (the test server
/// trusts local connections, so the password is sent and ignored: it only has to stay out
/// of every message).
fn fresh_database() -> String {
    let url = std::env::var("DUPIFY_TEST_PG_URL").expect(
        "DUPIFY_TEST_PG_URL is not set: start a cluster with `scripts/pg.sh start` and export \
         its URL (scripts/test.sh does both)",
    );
    let name = format!(
        "dupify_cli_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    );
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let (server, _db) = url
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .expect("URL with a database");
    let (scheme, rest) = server.split_once("://").expect("scheme");
    let (user, host) = rest.split_once('@').expect("user@host");
    let user = user.split(':').next().unwrap_or(user);
    format!("{scheme}://{user}:{PASSWORD}@{host}/{name}")
}

fn dupify(args: &[&str], env: &[(&str, &str)]) -> Output {
    common::dupify_with(args, env)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

#[test]
fn index_resume_and_search_on_a_postgres_catalog() {
    let shop = tempfile::tempdir().expect("temp dir");
    for rel in PHOTOS {
        let dst = shop.path().join(rel);
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        std::fs::copy(
            root().join("dupify-core/tests/assets/clothing").join(rel),
            &dst,
        )
        .expect("copy photo");
    }
    let folder = shop.path().to_str().expect("utf-8 path");
    let url = fresh_database();

    let o = dupify(&["index", folder, "--catalog", &url], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("indexed 4"), "{out}");
    assert!(
        out.contains(":***@"),
        "the catalog is named, password hidden: {out}"
    );
    assert!(!out.contains(PASSWORD), "{out}");

    // Resume: the hashes stored in PostgreSQL say nothing changed.
    let o = dupify(&["index", folder, "--catalog", &url, "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = json(&o);
    assert_eq!(
        (r["indexed"].as_u64(), r["skipped"].as_u64()),
        (Some(0), Some(4)),
        "{r}"
    );

    // Dupes of a stored product, never itself, from the database.
    let o = dupify(
        &[
            "search",
            "--product",
            PHOTOS[0],
            "--catalog",
            &url,
            "--json",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let hits = json(&o);
    let hits = hits.as_array().expect("array");
    assert_eq!(hits.len(), 3);
    assert!(hits
        .iter()
        .all(|h| h["product"]["external_id"] != PHOTOS[0]));
    let o = dupify(&["search", "--product", PHOTOS[0], "--catalog", &url], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!text(&o).contains(PASSWORD), "{}", text(&o));

    // A server that is not there: a runtime error naming the URL without its password.
    let o = dupify(
        &[
            "search",
            "--product",
            PHOTOS[0],
            "--catalog",
            &format!("postgres://app:{PASSWORD}@127.0.0.1:1/none?connect_timeout=2"),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("postgres://app:***@127.0.0.1:1"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains(PASSWORD), "{}", text(&o));
}

#[test]
fn keys_on_a_postgres_store_need_a_given_pepper() {
    let url = fresh_database();
    // No pepper file can live next to a database server: refused, nothing generated.
    let o = dupify(&["keys", "--db", &url, "create", "--name", "CI"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("DUPIFY_PEPPER"), "{}", text(&o));
    assert!(!text(&o).contains(PASSWORD), "{}", text(&o));

    let pepper = [("DUPIFY_PEPPER", "00112233445566778899aabbccddeeff")];
    let o = dupify(&["keys", "--db", &url, "create", "--name", "CI"], &pepper);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let key = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(key.starts_with("fe_test_"), "{key:?}");
    let o = dupify(&["keys", "--db", &url, "list", "--json"], &pepper);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let listed = json(&o);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["name"], "CI");
}
