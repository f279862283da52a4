//! Several processes on one database file: revocation seen by another process right after
//! `revoke` returns, a writer killed with SIGKILL mid-stream loses no committed change, and
//! a process killed with SIGKILL while spending a monthly quota cannot make a restart admit
//! more than the quota.
//!
//! Child processes re-execute this test binary (`current_exe()`) with `DUPIFY_KEYS_CHILD`
//! naming the role and `--exact <test>`; the same test function runs the child role.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use std::time::Duration;

use dupify_keys::{
    reservation_block, Environment, Error, KeySpec, KeyStatus, KeyStore, Limits, StoreOptions,
};

const PEPPER: &[u8] = b"multi-process pepper";
const ROLE: &str = "DUPIFY_KEYS_CHILD";

fn spawn_child(test: &str, role: &str, db: &Path, extra: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env("DUPIFY_KEYS_DB", db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Reads child lines until one contains `prefix` and returns what follows it. (libtest
/// prints `test name ... ` without a newline, so the first marker shares a line with it.)
fn read_until(lines: &mut impl Iterator<Item = std::io::Result<String>>, prefix: &str) -> String {
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(at) = line.find(prefix) {
            return line[at + prefix.len()..].to_string();
        }
    }
    panic!("child exited before printing `{prefix}`");
}

fn child_role() -> Option<String> {
    std::env::var(ROLE).ok()
}

#[test]
fn revocation_is_seen_by_another_process() {
    if child_role().as_deref() == Some("verifier") {
        // Child: warm up with the valid key, then verify again each time the parent asks.
        let store = KeyStore::open(std::env::var("DUPIFY_KEYS_DB").unwrap(), PEPPER).unwrap();
        let key = std::env::var("DUPIFY_KEYS_KEY").unwrap();
        for _ in 0..50 {
            store.authenticate([("X-API-Key", key.as_str())]).unwrap();
        }
        // Direct writes: libtest's capture only intercepts the print macros.
        let mut out = std::io::stdout().lock();
        writeln!(out, "READY").unwrap();
        out.flush().unwrap();
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            if line.unwrap() != "CHECK" {
                break;
            }
            let r = store.authenticate([("X-API-Key", key.as_str())]);
            let shown = match r {
                Ok(_) => "ok".to_string(),
                Err(Error::RevokedApiKey) => "revoked".to_string(),
                Err(e) => format!("other {e}"),
            };
            writeln!(out, "RESULT {shown}").unwrap();
            out.flush().unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db");
    let store = KeyStore::open(&db, PEPPER).unwrap();
    let k = store
        .create(KeySpec::new("shared", Environment::Live))
        .unwrap();
    let mut child = spawn_child(
        "revocation_is_seen_by_another_process",
        "verifier",
        &db,
        &[("DUPIFY_KEYS_KEY", k.key.expose())],
    );
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    read_until(&mut lines, "READY");
    writeln!(stdin, "CHECK").unwrap();
    assert_eq!(read_until(&mut lines, "RESULT "), "ok");
    store.revoke(k.record.id).unwrap();
    // The very next verification in the other process, right after revoke returned.
    writeln!(stdin, "CHECK").unwrap();
    assert_eq!(read_until(&mut lines, "RESULT "), "revoked");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn sigkill_mid_writes_keeps_every_committed_change() {
    if child_role().as_deref() == Some("writer") {
        // Child: create keys and revoke every third one, forever; report each change after
        // its call returned (= committed).
        let store = KeyStore::open(std::env::var("DUPIFY_KEYS_DB").unwrap(), PEPPER).unwrap();
        let mut out = std::io::stdout().lock();
        for i in 0u64.. {
            let k = store
                .create(KeySpec::new(format!("key {i}"), Environment::Test))
                .unwrap();
            writeln!(out, "CREATED {} {}", k.record.id, k.key.expose()).unwrap();
            out.flush().unwrap();
            if i % 3 == 2 {
                store.revoke(k.record.id - 1).unwrap();
                writeln!(out, "REVOKED {}", k.record.id - 1).unwrap();
                out.flush().unwrap();
            }
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db");
    let mut child = spawn_child(
        "sigkill_mid_writes_keeps_every_committed_change",
        "writer",
        &db,
        &[],
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut created: Vec<(i64, String)> = Vec::new();
    let mut revoked: Vec<i64> = Vec::new();
    while created.len() < 150 {
        let line = lines.next().expect("child stopped early").unwrap();
        let at = line
            .find("CREATED ")
            .or_else(|| line.find("REVOKED "))
            .unwrap_or(0);
        let parts: Vec<&str> = line[at..].split(' ').collect();
        match parts.as_slice() {
            ["CREATED", id, key] => created.push((id.parse().unwrap(), key.to_string())),
            ["REVOKED", id] => revoked.push(id.parse().unwrap()),
            _ => {}
        }
    }
    // SIGKILL while it is still writing.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());

    let store = KeyStore::open(&db, PEPPER).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let list = store.list().unwrap();
    assert!(list.len() >= created.len());
    for (id, key) in &created {
        let r = store.authenticate([("X-API-Key", key.as_str())]);
        if revoked.contains(id) {
            assert!(matches!(r, Err(Error::RevokedApiKey)), "key {id}: {r:?}");
            assert_eq!(store.get(*id).unwrap().status, KeyStatus::Revoked);
        } else if let Ok(p) = r {
            assert_eq!(p.key_id(), *id);
        } else {
            // Revoked after our last read line, but then the revoke had committed: allowed
            // only for the key right before the last created one.
            let last = created.last().unwrap().0;
            assert!(*id == last - 1 || *id == last, "key {id} lost: {r:?}");
        }
    }
    // Every row is complete (no half-written key).
    for rec in &list {
        assert!(rec.name.starts_with("key "));
        assert_eq!(rec.env, Environment::Test);
        assert!(rec.preview.starts_with("fe_test_…"));
    }
    let bad: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM api_keys WHERE length(hash) != 32 OR lineage_id != id",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);
}

/// Calls `check_rate` until the quota refuses; returns how many were admitted.
fn admit_until_refused(store: &KeyStore, key: &str, cap: u64) -> u64 {
    let p = store.authenticate([("X-API-Key", key)]).unwrap();
    let mut admitted = 0;
    while admitted <= cap {
        match store.check_rate(&p).into_result() {
            Ok(_) => admitted += 1,
            Err(Error::QuotaExceeded { limit, .. }) => {
                assert_eq!(limit, cap);
                return admitted;
            }
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
    panic!("more than {cap} calls admitted");
}

#[test]
fn sigkill_while_spending_a_quota_never_admits_more_than_the_quota() {
    if child_role().as_deref() == Some("spender") {
        // Child: usage is flushed only every hour, so the counts die with the process; spend
        // the calls the parent asks for on each key and report each admission.
        let opts = StoreOptions::default().with_flush_interval(Duration::from_secs(3600));
        let store =
            KeyStore::open_with(std::env::var("DUPIFY_KEYS_DB").unwrap(), PEPPER, opts).unwrap();
        let mut out = std::io::stdout().lock();
        for (var, n) in [("DUPIFY_KEYS_SMALL", 13), ("DUPIFY_KEYS_LARGE", 415)] {
            let key = std::env::var(var).unwrap();
            let p = store.authenticate([("X-API-Key", key.as_str())]).unwrap();
            for _ in 0..n {
                assert!(store.check_rate(&p).is_allowed());
            }
            writeln!(out, "SPENT {var} {n}").unwrap();
        }
        writeln!(out, "DONE").unwrap();
        out.flush().unwrap();
        // Wait to be killed.
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db");
    let store = KeyStore::open(&db, PEPPER).unwrap();
    // A small quota (reserved one call at a time) and a large one (reserved in blocks).
    let (small_cap, large_cap) = (20u64, 1_000u64);
    let small = store
        .create(
            KeySpec::new("small", Environment::Live)
                .with_limits(Limits::custom(100_000, Some(small_cap)).unwrap()),
        )
        .unwrap();
    let large = store
        .create(
            KeySpec::new("large", Environment::Live)
                .with_limits(Limits::custom(100_000, Some(large_cap)).unwrap()),
        )
        .unwrap();
    drop(store);
    let mut child = spawn_child(
        "sigkill_while_spending_a_quota_never_admits_more_than_the_quota",
        "spender",
        &db,
        &[
            ("DUPIFY_KEYS_SMALL", small.key.expose()),
            ("DUPIFY_KEYS_LARGE", large.key.expose()),
        ],
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    read_until(&mut lines, "DONE");
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());

    // The restarted process: its usage counts were lost with the child, its reservations
    // were not.
    let store = KeyStore::open(&db, PEPPER).unwrap();
    let usage: u64 = store
        .usage(small.record.id)
        .unwrap()
        .monthly
        .values()
        .map(|c| c.requests)
        .sum();
    assert_eq!(usage, 0, "the child's usage was buffered, not flushed");
    let after_small = admit_until_refused(&store, small.key.expose(), small_cap);
    assert_eq!(
        13 + after_small,
        small_cap,
        "one call per reservation: nothing lost"
    );
    let after_large = admit_until_refused(&store, large.key.expose(), large_cap);
    let block = reservation_block(large_cap);
    assert_eq!(block, 10);
    assert!(
        415 + after_large <= large_cap,
        "{after_large} admitted after the crash"
    );
    assert!(
        415 + after_large > large_cap - block,
        "the crash cost more than one block: {after_large} admitted after it"
    );
}

#[test]
fn processes_sharing_a_database_share_one_quota() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db");
    // Two stores on one file behave as two processes: separate memory, one database.
    let a = KeyStore::open(&db, PEPPER).unwrap();
    let b = KeyStore::open(&db, PEPPER).unwrap();
    let cap = 500u64;
    let k = a
        .create(
            KeySpec::new("shared", Environment::Live)
                .with_limits(Limits::custom(100_000, Some(cap)).unwrap()),
        )
        .unwrap();
    let key = k.key.expose();
    let (pa, pb) = (
        a.authenticate([("X-API-Key", key)]).unwrap(),
        b.authenticate([("X-API-Key", key)]).unwrap(),
    );
    let mut admitted = 0u64;
    let mut refused = [false, false];
    while !(refused[0] && refused[1]) {
        for (i, (s, p)) in [(&a, &pa), (&b, &pb)].into_iter().enumerate() {
            if s.check_rate(p).is_allowed() {
                admitted += 1;
                assert!(admitted <= cap, "{admitted} admitted with a quota of {cap}");
            } else {
                refused[i] = true;
            }
        }
    }
    // Each held at most one unspent block when the other ran dry; together they used it all.
    assert_eq!(admitted, cap);
}

#[test]
fn a_graceful_stop_hands_back_unspent_reservations() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db");
    let cap = 1_000u64;
    let key = {
        let store = KeyStore::open(&db, PEPPER).unwrap();
        let k = store
            .create(
                KeySpec::new("k", Environment::Live)
                    .with_limits(Limits::custom(100_000, Some(cap)).unwrap()),
            )
            .unwrap();
        let p = store.authenticate([("X-API-Key", k.key.expose())]).unwrap();
        for _ in 0..3 {
            assert!(store.check_rate(&p).is_allowed());
        }
        store.shutdown().unwrap();
        // Usable after shutdown: it reserves again; dropping it hands that back too.
        for _ in 0..4 {
            assert!(store.check_rate(&p).is_allowed());
        }
        k.key.expose().to_string()
    };
    let store = KeyStore::open(&db, PEPPER).unwrap();
    assert_eq!(admit_until_refused(&store, &key, cap), cap - 7);
}
