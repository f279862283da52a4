//! The `dupify-server` binary stopped with SIGTERM (what `kill`, systemd and container
//! runtimes send) drains and flushes: every admitted call is in the key database afterwards,
//! so a restart cannot hand out a quota again. Without the signal handled, the process dies
//! with up to 10 s of usage buffered in memory and the counts are lost. SIGKILL cannot be
//! handled: there the monthly quota holds because admissions spend calls reserved in the
//! database beforehand.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dupify_keys::{Environment, KeySpec, KeyStore, Limits, Pepper};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Starts the binary on a free loopback port; returns it and its URL.
fn start(data_dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dupify-server"))
        .args(["--port", "0", "--device", "cpu", "--data-dir"])
        .arg(data_dir)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dupify-server");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut url = None;
    for line in out.by_ref() {
        let line = line.expect("stdout line");
        if let Some(u) = line.strip_prefix("listening: ") {
            url = Some(u.to_string());
        }
        if line.starts_with("web page: ") {
            break;
        }
    }
    // Keep reading, as a supervisor would, so the server's last lines have somewhere to go.
    std::thread::spawn(move || out.for_each(drop));
    (child, url.expect("the server printed its URL"))
}

#[test]
fn sigterm_drains_and_flushes_usage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("keys.db");
    let pepper = Pepper::generate().expect("pepper");
    pepper
        .write_new_file(Pepper::default_path(&db))
        .expect("pepper file");
    let created = {
        let keys = KeyStore::open(&db, pepper.as_bytes()).expect("key store");
        keys.create(
            KeySpec::new("quota", Environment::Live)
                .with_limits(Limits::custom(1000, Some(20)).expect("limits")),
        )
        .expect("key")
    };

    let (mut child, url) = start(dir.path());
    let agent = ureq::Agent::new_with_defaults();
    for _ in 0..7 {
        let r = agent
            .get(format!("{url}/v1/catalog/products"))
            .header("X-API-Key", created.key.expose())
            .call()
            .expect("call");
        assert_eq!(r.status().as_u16(), 200);
    }
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within 60 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");

    let keys = KeyStore::open(&db, pepper.as_bytes()).expect("reopen");
    let usage = keys.usage(created.record.id).expect("usage");
    let month: u64 = usage.monthly.values().map(|c| c.requests).sum();
    assert_eq!(month, 7, "{usage:?}");
}

/// Calls until the quota answers 403; returns the number of 200s.
fn spend(agent: &ureq::Agent, url: &str, key: &str, cap: u32) -> u32 {
    let mut ok = 0;
    loop {
        let r = agent
            .get(format!("{url}/v1/catalog/products"))
            .header("X-API-Key", key)
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .expect("call");
        match r.status().as_u16() {
            200 => ok += 1,
            403 => return ok,
            s => panic!("status {s}"),
        }
        assert!(ok <= cap, "more than {cap} calls admitted");
    }
}

#[test]
fn sigkill_and_restart_never_admit_more_than_the_monthly_quota() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("keys.db");
    let pepper = Pepper::generate().expect("pepper");
    pepper
        .write_new_file(Pepper::default_path(&db))
        .expect("pepper file");
    let cap = 20;
    let created = {
        let keys = KeyStore::open(&db, pepper.as_bytes()).expect("key store");
        keys.create(
            KeySpec::new("quota", Environment::Live)
                .with_limits(Limits::custom(1000, Some(u64::from(cap))).expect("limits")),
        )
        .expect("key")
    };
    let key = created.key.expose();
    let agent = ureq::Agent::new_with_defaults();
    let mut admitted = 0;
    // Three lives, each killed with SIGKILL after some calls (usage still buffered), then one
    // that spends what is left.
    for calls in [7, 5, 4] {
        let (mut child, url) = start(dir.path());
        for _ in 0..calls {
            let r = agent
                .get(format!("{url}/v1/catalog/products"))
                .header("X-API-Key", key)
                .call()
                .expect("call");
            assert_eq!(r.status().as_u16(), 200);
        }
        admitted += calls;
        child.kill().expect("SIGKILL");
        assert!(!child.wait().expect("wait").success());
    }
    let (mut child, url) = start(dir.path());
    admitted += spend(&agent, &url, key, cap);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert_eq!(admitted, cap, "calls admitted over four lives");
}
