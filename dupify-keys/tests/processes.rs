//! Several processes on one database file: revocation seen by another process right after
//! `revoke` returns, and a writer killed with SIGKILL mid-stream loses no committed change.
//!
//! Child processes re-execute this test binary (`current_exe()`) with `DUPIFY_KEYS_CHILD`
//! naming the role and `--exact <test>`; the same test function runs the child role.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use dupify_keys::{Environment, Error, KeySpec, KeyStatus, KeyStore};

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
