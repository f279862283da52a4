//! The key store on PostgreSQL (feature `postgres`): the backend behaviour tests of
//! `tests/behaviour/`, then what only a shared database gives: limits shared by separate
//! stores and separate processes, admissions that survive SIGKILL, versioned migrations, and
//! URLs whose password never reaches an error.
//!
//! Needs a server: `DUPIFY_TEST_PG_URL` (a superuser URL, e.g. from `scripts/pg.sh start`).
//! With the feature on and the variable missing every test here fails, so a run that was
//! meant to cover PostgreSQL cannot pass without it. Each test creates its own database and
//! drops it at the end. Child processes re-execute this test binary (`current_exe()`) with
//! `DUPIFY_KEYS_PG_CHILD` naming the role; the same test function runs the child role.

#![cfg(feature = "postgres")]

mod behaviour;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use behaviour::{auth, open, open_on, PEPPER, T0};
use dupify_keys::{Environment, Error, KeySpec, KeyStore, Limits, ManualClock, RateDecision};
use postgres::{Client, NoTls};

const URL_ENV: &str = "DUPIFY_TEST_PG_URL";
const ROLE: &str = "DUPIFY_KEYS_PG_CHILD";
const DB_ENV: &str = "DUPIFY_KEYS_PG_DB";
const KEY_ENV: &str = "DUPIFY_KEYS_PG_KEY";

fn admin_url() -> String {
    std::env::var(URL_ENV).unwrap_or_else(|_| {
        panic!(
            "{URL_ENV} is not set: the `postgres` feature's tests need a PostgreSQL server \
             (`scripts/pg.sh start` prints a URL; scripts/test.sh does this for you)"
        )
    })
}

/// A database of its own for one test, dropped (with its connections) at the end.
struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    fn new(test: &str) -> TestDb {
        let admin = admin_url();
        let name = format!("dupify_keys_{}_{test}", std::process::id());
        let mut c = Client::connect(&admin, NoTls).expect("connecting to DUPIFY_TEST_PG_URL");
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let mut url = url::Url::parse(&admin).expect("DUPIFY_TEST_PG_URL is a URL");
        url.set_path(&name);
        TestDb {
            name,
            url: url.to_string(),
        }
    }

    fn client(&self) -> Client {
        Client::connect(&self.url, NoTls).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&admin_url(), NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let db = TestDb::new(stringify!($name));
            behaviour::$name(&db.url);
        }
    )*};
}

on_postgres!(
    polling_never_sees_more_than_the_limit_in_any_minute,
    create_authenticate_revoke,
    revocation_is_seen_by_another_handle,
    regenerate_with_grace,
    scopes_and_the_batch_rule,
    usage_after_flush,
    per_minute_limit_with_headers,
    monthly_quota_and_reset,
    quota_survives_reopen_and_regeneration,
    released_requests_do_not_consume_the_quota,
);

/// Four stores, each with its own connection pool (as four app servers), hammer one key of
/// 10/min from four threads at one instant: together they admit exactly 10. When the window
/// has moved on, exactly 10 more; the quota count and the usage agree with the admissions.
#[test]
fn separate_stores_share_the_per_minute_limit() {
    let db = TestDb::new("separate_stores_share_the_per_minute_limit");
    let clock = Arc::new(ManualClock::at(T0));
    let store = open_on(&db.url, clock.clone());
    let k = store
        .create(
            KeySpec::new("k", Environment::Live)
                .with_limits(Limits::custom(10, Some(1000)).unwrap()),
        )
        .unwrap();
    let stores: Vec<KeyStore> = (0..4).map(|_| open_on(&db.url, clock.clone())).collect();
    let round = |stores: &[KeyStore]| -> u64 {
        let start = Arc::new(Barrier::new(stores.len()));
        let workers: Vec<_> = stores
            .iter()
            .map(|s| {
                let (s, start, key) = (s.clone(), start.clone(), k.key.expose().to_string());
                std::thread::spawn(move || {
                    let p = auth(&s, &key).unwrap();
                    start.wait();
                    (0..25).filter(|_| s.check_rate(&p).is_allowed()).count() as u64
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    };
    assert_eq!(round(&stores), 10);
    clock.advance(Duration::from_secs(30));
    assert_eq!(round(&stores), 0, "the window still holds 10");
    clock.advance(Duration::from_secs(30));
    assert_eq!(round(&stores), 10);
    let p = auth(&store, k.key.expose()).unwrap();
    match store.check_rate(&p) {
        RateDecision::RateLimited { headers, .. } => {
            assert_eq!(headers.monthly_remaining, Some(980));
        }
        other => panic!("{other:?}"),
    }
    let u = store.usage(k.record.id).unwrap();
    assert_eq!(u.daily["2026-11-27"].requests, 20);
}

fn spawn_child(test: &str, role: &str, db: &TestDb, key: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DB_ENV, &db.url)
        .env(KEY_ENV, key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads child lines until one contains `prefix` and returns what follows it. (libtest
/// prints `test name ... ` without a newline, so the first marker shares a line with it.)
fn read_until(child: &mut Child, prefix: &str) -> String {
    let out = child.stdout.take().unwrap();
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        if let Some(at) = line.find(prefix) {
            return line[at + prefix.len()..].trim().to_string();
        }
    }
    panic!("child exited before printing `{prefix}`");
}

/// In a child: the store on a clock stopped at `T0`, and the key's principal.
fn child_store() -> (KeyStore, dupify_keys::Principal) {
    let url = std::env::var(DB_ENV).unwrap();
    let store = open_on(&url, Arc::new(ManualClock::at(T0)));
    let p = auth(&store, &std::env::var(KEY_ENV).unwrap()).unwrap();
    (store, p)
}

/// Three processes, each with its own store, call one key of 10/min 30 times each at the
/// same (stopped) instant: 10 admissions in all, however the calls interleave.
#[test]
fn separate_processes_share_the_per_minute_limit() {
    const TEST: &str = "separate_processes_share_the_per_minute_limit";
    if std::env::var(ROLE).as_deref() == Ok("hammer") {
        let (store, p) = child_store();
        let n = (0..30)
            .filter(|_| store.check_rate(&p).is_allowed())
            .count();
        let mut out = std::io::stdout().lock();
        writeln!(out, "ADMITTED {n}").unwrap();
        out.flush().unwrap();
        return;
    }
    let db = TestDb::new(TEST);
    let (store, _) = open(&db.url);
    let k = store
        .create(KeySpec::new("k", Environment::Live).with_limits(Limits::custom(10, None).unwrap()))
        .unwrap();
    // All three start before any is waited for, so their calls interleave.
    let children: Vec<Child> = (0..3)
        .map(|_| spawn_child(TEST, "hammer", &db, k.key.expose()))
        .collect();
    let mut admitted = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let at = text
            .find("ADMITTED ")
            .expect("the child reports its admissions");
        let n: u64 = text[at + 9..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        admitted += n;
    }
    assert_eq!(admitted, 10);
    let u = store.usage(k.record.id).unwrap();
    assert_eq!(u.daily["2026-11-27"].requests, 10);
}

/// A process admits three requests of a key with a monthly quota of 5 and is killed with
/// SIGKILL (no flush, no drop): the three stay counted, so only two more are admitted.
#[test]
fn admissions_survive_sigkill_without_a_flush() {
    const TEST: &str = "admissions_survive_sigkill_without_a_flush";
    if std::env::var(ROLE).as_deref() == Ok("admit-and-hang") {
        let (store, p) = child_store();
        for _ in 0..3 {
            assert!(store.check_rate(&p).is_allowed());
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "DONE").unwrap();
        out.flush().unwrap();
        // Wait to be killed (stdin stays open until then).
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        return;
    }
    let db = TestDb::new(TEST);
    let (store, _) = open(&db.url);
    let k = store
        .create(
            KeySpec::new("k", Environment::Live)
                .with_limits(Limits::custom(1000, Some(5)).unwrap()),
        )
        .unwrap();
    let mut child = spawn_child(TEST, "admit-and-hang", &db, k.key.expose());
    read_until(&mut child, "DONE");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let p = auth(&store, k.key.expose()).unwrap();
    assert!(store.check_rate(&p).is_allowed());
    assert!(store.check_rate(&p).is_allowed());
    assert!(matches!(
        store.check_rate(&p),
        RateDecision::QuotaExceeded {
            used: 5,
            limit: 5,
            ..
        }
    ));
    assert_eq!(
        store.usage(k.record.id).unwrap().daily["2026-11-27"].requests,
        5
    );
}

/// The schema is created once, recorded in `schema_version`, and left alone by later opens,
/// also when several stores open a new database at the same time; a database migrated by a
/// newer build is refused.
#[test]
fn schema_is_versioned_and_migrated_once() {
    let db = TestDb::new("schema_is_versioned_and_migrated_once");
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || KeyStore::open(&url, PEPPER).map(drop))
        })
        .collect();
    for o in openers {
        o.join().unwrap().unwrap();
    }
    let (store, _) = open(&db.url);
    store.create(KeySpec::new("k", Environment::Live)).unwrap();
    drop(store);
    let mut c = db.client();
    let versions: Vec<(String, i64)> = c
        .query(
            "SELECT component, version FROM schema_version ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(versions, vec![("keys".to_string(), 1)]);
    c.execute(
        "INSERT INTO schema_version (component, version) VALUES ('keys', 99)",
        &[],
    )
    .unwrap();
    let err = KeyStore::open(&db.url, PEPPER)
        .err()
        .expect("a newer schema is refused");
    assert!(
        matches!(
            err,
            Error::SchemaTooNew {
                found: 99,
                supported: 1
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "internal_error");
    // The keys were left as they were.
    let n: i64 = c
        .query_one("SELECT count(*) FROM api_keys", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// Only HMAC tags and previews are stored: no column of any table holds an 8-character run
/// of a key's random part.
#[test]
fn the_database_holds_no_plaintext_secret() {
    let db = TestDb::new("the_database_holds_no_plaintext_secret");
    let (store, _) = open(&db.url);
    let mut secrets = Vec::new();
    for i in 0..10 {
        let k = store
            .create(KeySpec::new(format!("key {i}"), Environment::Live))
            .unwrap();
        let p = auth(&store, k.key.expose()).unwrap();
        store.check_rate(&p);
        let r = store
            .regenerate(k.record.id, Some(Duration::from_secs(60)))
            .unwrap();
        secrets.push(k.key.expose().to_string());
        secrets.push(r.key.expose().to_string());
    }
    store.flush().unwrap();
    let mut c = db.client();
    let mut dump = String::new();
    for table in [
        "api_keys",
        "api_key_usage",
        "api_key_limiter",
        "api_key_admissions",
        "schema_version",
    ] {
        for r in c
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .unwrap()
        {
            dump.push_str(r.get::<_, &str>(0));
        }
    }
    assert!(dump.contains(&secrets[0][36..]), "the previews are there");
    for s in &secrets {
        for w in s.as_bytes()[8..].windows(8) {
            assert!(
                !dump.contains(std::str::from_utf8(w).unwrap()),
                "part of a secret stored"
            );
        }
    }
    let short: i64 = c
        .query_one(
            "SELECT count(*) FROM api_keys WHERE length(hash) <> 32",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(short, 0);
}

/// Errors about a URL name the problem, never the password.
#[test]
fn url_errors_never_show_the_password() {
    // Port 1 on loopback: nothing listens there.
    let err = KeyStore::open(
        "postgres://app:s3cretpw@127.0.0.1:1/keys?connect_timeout=5",
        PEPPER,
    )
    .err()
    .expect("no server on port 1");
    assert!(
        matches!(
            &err,
            Error::Database {
                context: "connecting to the key database",
                ..
            }
        ),
        "{err:?}"
    );
    let err2 = KeyStore::open("postgresql://app:s3cretpw@127.0.0.1:notaport/keys", PEPPER)
        .err()
        .expect("a bad port is refused");
    match &err2 {
        Error::InvalidDatabaseUrl { url, .. } => {
            assert_eq!(url, "postgresql://app:***@127.0.0.1:notaport/keys")
        }
        other => panic!("{other:?}"),
    }
    for e in [&err, &err2] {
        assert_eq!(e.code(), "internal_error");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("s3cretpw"), "{shown}");
    }
}

/// When the server drops every connection (a restart, a failover), the next requests get
/// fresh connections and succeed: dead pooled connections are never handed out.
#[test]
fn dropped_connections_are_replaced() {
    let db = TestDb::new("dropped_connections_are_replaced");
    let (store, _) = open(&db.url);
    let k = store.create(KeySpec::new("k", Environment::Live)).unwrap();
    let p = auth(&store, k.key.expose()).unwrap();
    assert!(store.check_rate(&p).is_allowed());
    let mut admin = Client::connect(&admin_url(), NoTls).unwrap();
    let killed: i64 = admin
        .query_one(
            // Waits (up to 10 s) until each backend has exited, so no connection the store
            // checks afterwards is still alive.
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) \
             FROM pg_stat_activity WHERE datname = $1",
            &[&db.name],
        )
        .unwrap()
        .get(0);
    assert!(killed >= 1, "the store had connections open");
    auth(&store, k.key.expose()).unwrap();
    assert!(matches!(
        store.try_check_rate(&p),
        Ok(RateDecision::Allowed { .. })
    ));
    assert_eq!(
        store.usage(k.record.id).unwrap().daily["2026-11-27"].requests,
        2
    );
}

/// With the database gone, every operation is an `internal_error` (500) naming what it was
/// doing, and `check_rate` fails closed: a refusal with a one-second `Retry-After`, never an
/// admission that could not be counted.
#[test]
fn database_failures_are_internal_errors_and_check_rate_fails_closed() {
    let db = TestDb::new("database_failures_are_internal_errors_and_check_rate_fails_closed");
    let opts = dupify_keys::StoreOptions::default()
        .with_clock(Arc::new(ManualClock::at(T0)))
        .with_busy_timeout(Duration::from_secs(1))
        .with_max_connections(2);
    let store = KeyStore::open_with(&db.url, PEPPER, opts).unwrap();
    let k = store
        .create(
            KeySpec::new("k", Environment::Live).with_limits(Limits::custom(10, Some(50)).unwrap()),
        )
        .unwrap();
    let p = auth(&store, k.key.expose()).unwrap();
    let mut admin = Client::connect(&admin_url(), NoTls).unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", db.name))
        .unwrap();
    let e = auth(&store, k.key.expose()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Database {
                context: "looking up a key",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!((e.code(), e.http_status()), ("internal_error", 500));
    match store.check_rate(&p) {
        RateDecision::RateLimited {
            retry_after_secs,
            headers,
        } => {
            assert_eq!(retry_after_secs, 1);
            assert_eq!((headers.limit, headers.remaining), (10, 0));
        }
        other => panic!("a failed check admitted or misreported: {other:?}"),
    }
    let e = store.try_check_rate(&p).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Database {
                context: "checking the rate limit",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(store.revoke(k.record.id).is_err());
}

/// A store keeps at most `max_connections` connections, however many threads share it (the
/// others wait for one), and a zero is taken as one.
#[test]
fn the_pool_keeps_at_most_max_connections() {
    let db = TestDb::new("the_pool_keeps_at_most_max_connections");
    let opts = |n| {
        dupify_keys::StoreOptions::default()
            .with_clock(Arc::new(ManualClock::at(T0)))
            .with_max_connections(n)
    };
    let store = KeyStore::open_with(&db.url, PEPPER, opts(2)).unwrap();
    let k = store
        .create(
            KeySpec::new("k", Environment::Live).with_limits(Limits::custom(1000, None).unwrap()),
        )
        .unwrap();
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (store, key) = (store.clone(), k.key.expose().to_string());
            std::thread::spawn(move || {
                (0..20)
                    .filter(|_| {
                        let p = auth(&store, &key).unwrap();
                        store.check_rate(&p).is_allowed()
                    })
                    .count()
            })
        })
        .collect();
    let admitted: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(admitted, 120);
    let mut admin = Client::connect(&admin_url(), NoTls).unwrap();
    let open: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'dupify-keys'",
            &[&db.name],
        )
        .unwrap()
        .get(0);
    assert!((1..=2).contains(&open), "{open} connections open");
    drop(store);
    let one = KeyStore::open_with(&db.url, PEPPER, opts(0)).unwrap();
    assert!(auth(&one, k.key.expose()).is_ok());
}
