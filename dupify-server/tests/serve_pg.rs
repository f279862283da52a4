//! The `dupify-server` binary with its catalog and its keys in PostgreSQL (feature
//! `postgres`): two servers started on one database (keys and catalog in it side by side,
//! each component with its own `schema_version` rows) serve one catalog and one key set: a
//! product uploaded through one is found through the other with a key the first printed;
//! four servers sharing one key hold its per-minute limit together.
//!
//! Needs `DUPIFY_TEST_PG_URL` (`scripts/pg.sh start` prints one; scripts/test.sh exports it)
//! and the tiny seeded test model; fails, never skips, without either.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use serde_json::{json, Value};

const PASSWORD: &str = "s3cret-never-shown";
const PEPPER: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tiny() -> PathBuf {
    let d = root().join("weights/test/clip/tiny");
    assert!(
        d.join("model.safetensors").is_file(),
        "{} is missing: run scripts/setup.sh to generate the test models",
        d.display()
    );
    d
}

/// A fresh database on the test server; its URL with a password added (the test server
/// trusts local connections: the password only has to stay out of every message).
fn fresh_database() -> String {
    let url = std::env::var("DUPIFY_TEST_PG_URL").expect(
        "DUPIFY_TEST_PG_URL is not set: start a cluster with `scripts/pg.sh start` and export \
         its URL (scripts/test.sh does both)",
    );
    let name = format!(
        "dupify_server_{}_{}",
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
    let base = url.split('?').next().expect("url");
    let (server, _db) = base.rsplit_once('/').expect("URL with a database");
    let (scheme, rest) = server.split_once("://").expect("scheme");
    let (user, host) = rest.split_once('@').expect("user@host");
    let user = user.split(':').next().unwrap_or(user);
    format!("{scheme}://{user}:{PASSWORD}@{host}/{name}")
}

/// Starts the binary on a free port with both stores at `url`; returns it, its URL and
/// everything it printed up to its web page line.
fn start(data_dir: &Path, url: &str, pepper: Option<&str>) -> (Child, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dupify-server"));
    cmd.args(["--port", "0", "--device", "cpu", "--data-dir"])
        .arg(data_dir)
        .arg("--model")
        .arg(tiny())
        .args(["--catalog-url", url])
        .env("DUPIFY_KEYS_URL", url)
        .env_remove("DUPIFY_PEPPER")
        .env_remove("DUPIFY_CATALOG_URL")
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = pepper {
        cmd.env("DUPIFY_PEPPER", p);
    }
    let mut child = cmd.spawn().expect("start dupify-server");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = String::new();
    let mut listening = None;
    for line in out.by_ref() {
        let line = line.expect("stdout line");
        printed.push_str(&line);
        printed.push('\n');
        if let Some(u) = line.strip_prefix("listening: ") {
            listening = Some(u.to_string());
        }
        if line.starts_with("web page: ") {
            break;
        }
    }
    std::thread::spawn(move || out.for_each(drop));
    match listening {
        Some(u) => (child, u, printed),
        None => {
            let o = child.wait_with_output().expect("wait");
            panic!(
                "the server did not start: {printed}{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

fn call(agent: &ureq::Agent, method: &str, url: &str, key: &str, body: Option<Value>) -> Value {
    let r = match (method, body) {
        ("POST", Some(b)) => agent
            .post(url)
            .header("X-API-Key", key)
            .config()
            .http_status_as_error(false)
            .build()
            .send_json(b),
        _ => agent
            .get(url)
            .header("X-API-Key", key)
            .config()
            .http_status_as_error(false)
            .build()
            .call(),
    }
    .expect("request");
    let status = r.status().as_u16();
    let body: Value = r.into_body().read_json().expect("JSON answer");
    assert!(status < 300, "{method} {url}: {status} {body}");
    body
}

#[test]
fn two_servers_share_keys_and_catalog_in_postgres() {
    let url = fresh_database();
    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");

    // Without the pepper in the environment the key store is refused, password hidden.
    let o = Command::new(env!("CARGO_BIN_EXE_dupify-server"))
        .args(["--port", "0", "--device", "cpu", "--data-dir"])
        .arg(dir_a.path())
        .arg("--model")
        .arg(tiny())
        .args(["--keys-url", &url])
        .env_remove("DUPIFY_PEPPER")
        .current_dir(root())
        .output()
        .expect("run dupify-server");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("DUPIFY_PEPPER"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");

    let (mut a, url_a, printed) = start(dir_a.path(), &url, Some(PEPPER));
    assert!(!printed.contains(PASSWORD), "{printed}");
    let key = printed
        .lines()
        .find_map(|l| l.strip_prefix("live key: "))
        .expect("a new key store prints its first keys")
        .to_string();
    let (mut b, url_b, printed_b) = start(dir_b.path(), &url, Some(PEPPER));
    assert!(
        !printed_b.contains("live key: "),
        "the second server finds the keys: {printed_b}"
    );

    let agent = ureq::Agent::new_with_defaults();
    let photo =
        std::fs::read(root().join(
            "dupify-core/tests/assets/clothing/dress/06a00c0f-5f9a-410d-a7da-3881a9df3a71.jpg",
        ))
        .expect("photo");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&photo);
    let created = call(
        &agent,
        "POST",
        &format!("{url_a}/v1/catalog/products"),
        &key,
        Some(json!({"external_id": "dress-1", "price": 30, "image_base64": b64})),
    );
    let id = created["id"].as_str().expect("product id").to_string();
    let found = call(
        &agent,
        "POST",
        &format!("{url_b}/v1/catalog/search"),
        &key,
        Some(json!({"image_base64": b64, "limit": 3})),
    );
    assert_eq!(found["results"][0]["product"]["id"], id.as_str(), "{found}");
    let listed = call(
        &agent,
        "GET",
        &format!("{url_b}/v1/catalog/products"),
        &key,
        None,
    );
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    assert_eq!(listed["total"], 1, "{listed}");

    for child in [&mut a, &mut b] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let components: Vec<String> = c
        .query(
            "SELECT DISTINCT component FROM schema_version ORDER BY component",
            &[],
        )
        .expect("schema_version")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(components, ["catalog", "keys"]);
}

/// One key with a per-minute limit of 20, hammered through four servers on one database for
/// a bit over a minute (70 s; `DUPIFY_TEST_RATE_SECS` shortens it): the limit is decided in
/// the database, so in every 60-second window the four together admit at most 20 (+1 for a
/// request whose decision and our clock straddle the window's edge). Counting per server
/// would let each admit 20. The endpoint is a cheap authenticated list, so the servers' CPU
/// is not what limits the rate.
#[test]
fn four_servers_hold_one_keys_per_minute_limit() {
    const LIMIT: u32 = 20;
    let secs: u64 = std::env::var("DUPIFY_TEST_RATE_SECS")
        .map(|s| s.parse().expect("DUPIFY_TEST_RATE_SECS: seconds"))
        .unwrap_or(70);
    let url = fresh_database();
    let dirs: Vec<_> = (0..4)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    // The first server creates the schemas; the others start on them.
    let mut servers = Vec::new();
    for d in &dirs {
        let (child, u, _) = start(d.path(), &url, Some(PEPPER));
        servers.push((child, u));
    }
    // The limited key, created in the shared store with the servers' pepper.
    let pepper = dupify_keys::Pepper::parse(PEPPER.as_bytes()).expect("pepper");
    let store = dupify_keys::KeyStore::open(&url, pepper.as_bytes()).expect("key store");
    let mut spec = dupify_keys::KeySpec::new("limited", dupify_keys::Environment::Live);
    spec.limits = dupify_keys::Limits {
        per_minute: LIMIT,
        monthly: None,
    };
    let key = store
        .create(spec)
        .expect("create key")
        .key
        .expose()
        .to_string();

    let t0 = std::time::Instant::now();
    let deadline = t0 + std::time::Duration::from_secs(secs);
    let clients: Vec<_> = servers
        .iter()
        .map(|(_, base)| {
            let (u, key) = (format!("{base}/v1/catalog/products"), key.clone());
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                // (seconds since t0 when sent, admitted)
                let mut seen: Vec<(f64, bool)> = Vec::new();
                while std::time::Instant::now() < deadline {
                    let sent = t0.elapsed().as_secs_f64();
                    let r = agent
                        .get(&u)
                        .header("X-API-Key", &key)
                        .config()
                        .http_status_as_error(false)
                        .build()
                        .call()
                        .expect("request");
                    let status = r.status().as_u16();
                    let body = r.into_body().read_to_string().expect("body");
                    match status {
                        200 => seen.push((sent, true)),
                        429 => {
                            assert!(body.contains("rate_limit_exceeded"), "{body}");
                            seen.push((sent, false));
                        }
                        _ => panic!("{u}: {status} {body}"),
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                seen
            })
        })
        .collect();
    let per_server: Vec<Vec<(f64, bool)>> =
        clients.into_iter().map(|c| c.join().unwrap()).collect();
    for (child, _) in &mut servers {
        let _ = child.kill();
        let _ = child.wait();
    }
    for (i, s) in per_server.iter().enumerate() {
        assert!(
            s.iter().any(|(_, ok)| !ok),
            "server {i} never refused: it was not hammered"
        );
    }
    let mut admitted: Vec<f64> = per_server
        .iter()
        .flatten()
        .filter(|(_, ok)| *ok)
        .map(|(t, _)| *t)
        .collect();
    admitted.sort_by(f64::total_cmp);
    let requests: usize = per_server.iter().map(Vec::len).sum();
    // The most admissions in any 60 s window (each window starting at an admission).
    let worst = (0..admitted.len())
        .map(|i| {
            admitted[i..]
                .iter()
                .take_while(|t| **t < admitted[i] + 60.0)
                .count()
        })
        .max()
        .unwrap_or(0);
    println!(
        "{requests} requests through 4 servers in {secs} s: {} admitted, at most {worst} in \
         any 60 s window (limit {LIMIT}/min)",
        admitted.len()
    );
    assert!(
        worst <= LIMIT as usize + 1,
        "{worst} admitted within 60 s for a limit of {LIMIT}/min"
    );
    // The limit admits, too: a full minute's worth in the first window.
    assert!(
        worst >= LIMIT as usize,
        "only {worst} admitted in the busiest minute"
    );
}
