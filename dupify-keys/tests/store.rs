//! The hashed store: create/list/get, authentication outcomes, revocation across threads,
//! regeneration, expiry, pepper rules, no plaintext on disk, usage buffering.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use dupify_keys::{
    Environment, Error, KeySpec, KeyStatus, KeyStore, Limits, ManualClock, Operation, Scope,
    StoreOptions, Tier,
};

const PEPPER: &[u8] = b"test pepper: 32+ bytes of server-side secret";
/// 2026-11-27T00:00:00Z.
const T0: u64 = 1_796_083_200 - 4 * 86_400;

fn manual_store(path: &Path) -> (KeyStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at(T0));
    let opts = StoreOptions::default()
        .with_clock(clock.clone())
        .with_flush_interval(Duration::from_secs(3600));
    (KeyStore::open_with(path, PEPPER, opts).unwrap(), clock)
}

fn auth(store: &KeyStore, key: &str) -> Result<dupify_keys::Principal, Error> {
    store.authenticate([("X-API-Key", key)])
}

#[test]
fn create_list_get_and_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock) = manual_store(&dir.path().join("keys.db"));
    let a = store
        .create(KeySpec::new("Production", Environment::Live).with_scopes([Scope::Embed]))
        .unwrap();
    let b = store
        .create(KeySpec::new("Development", Environment::Test).with_limits(Limits::tier(Tier::Pro)))
        .unwrap();
    assert!(a.key.expose().starts_with("fe_live_"));
    assert!(b.key.expose().starts_with("fe_test_"));
    assert_eq!(
        a.record.preview,
        format!("fe_live_…{}", &a.key.expose()[36..])
    );

    let list = store.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].name, "Production");
    assert_eq!(list[0].env, Environment::Live);
    assert_eq!(
        list[0].scopes.listed().collect::<Vec<_>>(),
        vec![Scope::Embed]
    );
    assert!(list[1].scopes.is_all());
    assert_eq!(list[1].limits, Limits::tier(Tier::Pro));
    assert_eq!(list[0].created_at, T0 as i64);
    assert_eq!(list[0].last_used_at, None);
    assert_eq!(list[0].status, KeyStatus::Active);
    let listed_json = serde_json::to_string(&list).unwrap();
    assert!(!listed_json.contains(&a.key.expose()[8..]));
    assert!(!format!("{a:?}").contains(&a.key.expose()[8..]));

    let p = auth(&store, a.key.expose()).unwrap();
    assert_eq!(p.key_id(), a.record.id);
    assert_eq!(p.environment(), Environment::Live);
    let p = store
        .authenticate([(
            "Authorization",
            format!("Bearer {}", b.key.expose()).as_str(),
        )])
        .unwrap();
    assert_eq!(p.environment(), Environment::Test);
    assert_eq!(p.limits(), Limits::tier(Tier::Pro));
    assert_eq!(
        store.get(a.record.id).unwrap().last_used_at,
        Some(T0 as i64)
    );

    // Well-formed but unknown; same random part under the other environment.
    let unknown = format!("fe_live_{}", "A".repeat(32));
    let e = auth(&store, &unknown).unwrap_err();
    assert!(matches!(e, Error::UnknownApiKey));
    assert_eq!((e.code(), e.http_status()), ("invalid_api_key", 401));
    let flipped = format!("fe_test_{}", &a.key.expose()[8..]);
    assert!(matches!(auth(&store, &flipped), Err(Error::UnknownApiKey)));
    let e = store.authenticate([("Accept", "*/*")]).unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("missing_api_key", 401));
    assert!(matches!(
        store.get(999),
        Err(Error::KeyNotFound { id: 999 })
    ));
    assert!(store.create(KeySpec::new("  ", Environment::Live)).is_err());
}

#[test]
fn pepper_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let e = KeyStore::open(&path, b"").err().unwrap();
    assert_eq!(e.code(), "invalid_parameter");
    assert!(KeyStore::open_in_memory(b"").is_err());
    let store = KeyStore::open(&path, PEPPER).unwrap();
    let k = store.create(KeySpec::new("k", Environment::Live)).unwrap();
    drop(store);
    // Another pepper derives other hashes: the key is unknown there.
    let other = KeyStore::open(&path, b"another pepper").unwrap();
    assert!(matches!(
        auth(&other, k.key.expose()),
        Err(Error::UnknownApiKey)
    ));
    drop(other);
    let same = KeyStore::open(&path, PEPPER).unwrap();
    assert!(auth(&same, k.key.expose()).is_ok());
}

#[test]
fn revocation_is_seen_by_another_thread_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path().join("keys.db"), PEPPER).unwrap();
    let k = store.create(KeySpec::new("k", Environment::Live)).unwrap();
    let plain = k.key.expose().to_string();
    let warm = Arc::new(Barrier::new(2));
    let revoked = Arc::new(Barrier::new(2));
    let t = {
        let (store, warm, revoked, plain) =
            (store.clone(), warm.clone(), revoked.clone(), plain.clone());
        std::thread::spawn(move || {
            // Warm: this thread's read connection has seen the key as valid many times.
            for _ in 0..100 {
                auth(&store, &plain).unwrap();
            }
            warm.wait();
            revoked.wait();
            auth(&store, &plain).err()
        })
    };
    warm.wait();
    store.revoke(k.record.id).unwrap();
    revoked.wait();
    let seen = t.join().unwrap();
    assert!(matches!(seen, Some(Error::RevokedApiKey)), "{seen:?}");
    assert_eq!(store.get(k.record.id).unwrap().status, KeyStatus::Revoked);
    // Idempotent; unknown id is an error.
    store.revoke(k.record.id).unwrap();
    assert!(matches!(
        store.revoke(12345),
        Err(Error::KeyNotFound { .. })
    ));
}

#[test]
fn regenerate_keeps_settings_and_kills_the_old_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = manual_store(&dir.path().join("keys.db"));
    let limits = Limits::custom(7, Some(70)).unwrap();
    let old = store
        .create(
            KeySpec::new("Prod", Environment::Live)
                .with_scopes([Scope::Colors, Scope::Batch])
                .with_limits(limits)
                .with_expiry(T0 as i64 + 86_400 * 365),
        )
        .unwrap();
    auth(&store, old.key.expose()).unwrap();
    let new = store.regenerate(old.record.id, None).unwrap();
    assert_ne!(new.key.expose(), old.key.expose());
    assert_ne!(new.record.id, old.record.id);
    assert_eq!(new.record.name, "Prod");
    assert_eq!(new.record.env, Environment::Live);
    assert_eq!(new.record.scopes, old.record.scopes);
    assert_eq!(new.record.limits, limits);
    assert_eq!(new.record.expires_at, old.record.expires_at);
    assert_eq!(new.record.lineage_id, old.record.lineage_id);
    assert!(matches!(
        auth(&store, old.key.expose()),
        Err(Error::RevokedApiKey)
    ));
    let p = auth(&store, new.key.expose()).unwrap();
    assert!(store
        .authorize(&p, &Operation::batch([Scope::Colors]))
        .is_ok());
    assert!(store.authorize(&p, &Operation::Embed).is_err());
    let old_rec = store.get(old.record.id).unwrap();
    assert_eq!(old_rec.replaced_by, Some(new.record.id));
    assert_eq!(old_rec.status, KeyStatus::Revoked);
    // A revoked key cannot be regenerated.
    let e = store.regenerate(old.record.id, None).unwrap_err();
    assert!(matches!(e, Error::KeyNotActive { .. }));

    // With a grace period both keys work until it ends.
    let newer = store
        .regenerate(new.record.id, Some(Duration::from_secs(600)))
        .unwrap();
    assert!(auth(&store, new.key.expose()).is_ok());
    assert!(auth(&store, newer.key.expose()).is_ok());
    assert_eq!(
        store.get(new.record.id).unwrap().status,
        KeyStatus::Rotating
    );
    clock.advance(Duration::from_secs(599));
    assert!(auth(&store, new.key.expose()).is_ok());
    clock.advance(Duration::from_secs(1));
    assert!(matches!(
        auth(&store, new.key.expose()),
        Err(Error::RevokedApiKey)
    ));
    assert!(auth(&store, newer.key.expose()).is_ok());
}

#[test]
fn expired_keys_get_expired_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = manual_store(&dir.path().join("keys.db"));
    let k = store
        .create(KeySpec::new("short-lived", Environment::Test).with_expiry(T0 as i64 + 100))
        .unwrap();
    assert!(auth(&store, k.key.expose()).is_ok());
    clock.advance(Duration::from_secs(99));
    assert!(auth(&store, k.key.expose()).is_ok());
    clock.advance(Duration::from_secs(1));
    let e = auth(&store, k.key.expose()).unwrap_err();
    assert!(matches!(e, Error::ExpiredApiKey { expired_at } if expired_at == T0 as i64 + 100));
    assert_eq!((e.code(), e.http_status()), ("expired_api_key", 401));
    assert_eq!(store.get(k.record.id).unwrap().status, KeyStatus::Expired);
    assert!(matches!(
        store.regenerate(k.record.id, None),
        Err(Error::KeyNotActive {
            status: "expired",
            ..
        })
    ));
}

fn db_files(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn database_files_hold_no_plaintext_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let store = KeyStore::open(&path, PEPPER).unwrap();
    let mut secrets = Vec::new();
    for i in 0..40 {
        let env = if i % 2 == 0 {
            Environment::Live
        } else {
            Environment::Test
        };
        let k = store.create(KeySpec::new(format!("key {i}"), env)).unwrap();
        let p = auth(&store, k.key.expose()).unwrap();
        store.check_rate(&p);
        store.authorize(&p, &Operation::Colors).ok();
        if i % 5 == 0 {
            let r = store.regenerate(k.record.id, None).unwrap();
            secrets.push(r.key.expose().to_string());
        }
        secrets.push(k.key.expose().to_string());
    }
    store.flush().unwrap();
    // Look at the WAL as written (before and after a checkpoint).
    let before = db_files(dir.path());
    drop(store);
    let after = db_files(dir.path());
    assert!(before.len() > 4096 && after.len() > 4096);
    for bytes in [&before, &after] {
        assert!(!contains(bytes, PEPPER), "pepper on disk");
        let windows: HashSet<&[u8]> = bytes.windows(8).collect();
        for s in &secrets {
            // No 8-character run of the random part (the preview shows only the last 4), so
            // no full key either.
            for w in s.as_bytes()[8..].windows(8) {
                assert!(!windows.contains(w), "part of a secret on disk");
            }
        }
    }
    // The scan can find what is there: the previews are on disk.
    assert!(contains(&after, &secrets[0].as_bytes()[36..]));
}

fn usage_rows(path: &Path) -> i64 {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("SELECT COUNT(*) FROM api_key_usage", [], |r| r.get(0))
        .unwrap()
}

fn last_used_in_db(path: &Path, id: i64) -> Option<i64> {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row(
        "SELECT last_used_at FROM api_keys WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn usage_is_buffered_then_flushed_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let (store, clock) = manual_store(&path);
    let k = store
        .create(KeySpec::new("k", Environment::Live).with_limits(Limits::tier(Tier::Unlimited)))
        .unwrap();
    let id = k.record.id;
    for i in 0..30 {
        let p = auth(&store, k.key.expose()).unwrap();
        assert!(store.check_rate(&p).is_allowed());
        let op = if i % 3 == 0 {
            Operation::batch([Scope::Embed, Scope::Colors])
        } else {
            Operation::Embed
        };
        store.authorize(&p, &op).unwrap();
    }
    // Nothing on disk yet: no write per request.
    assert_eq!(usage_rows(&path), 0);
    assert_eq!(last_used_in_db(&path, id), None);
    // But the API sees the buffered counts.
    let u = store.usage(id).unwrap();
    let day = &u.daily["2026-11-27"];
    assert_eq!(day.requests, 30);
    assert_eq!(day.by_scope[&Scope::Embed], 30);
    assert_eq!(day.by_scope[&Scope::Batch], 10);
    assert_eq!(day.by_scope[&Scope::Colors], 10);
    assert_eq!(u.last_used_at, Some(T0 as i64));

    store.flush().unwrap();
    assert_eq!(usage_rows(&path), 4);
    assert_eq!(last_used_in_db(&path, id), Some(T0 as i64));
    assert_eq!(store.usage(id).unwrap(), u);

    // Next day, then dropping the store flushes the rest.
    clock.advance(Duration::from_secs(86_400));
    let p = auth(&store, k.key.expose()).unwrap();
    assert!(store.check_rate(&p).is_allowed());
    store.authorize(&p, &Operation::Catalog).unwrap();
    drop(store);
    let (store, _) = manual_store(&path);
    let u = store.usage(id).unwrap();
    assert_eq!(u.daily.len(), 2);
    assert_eq!(u.daily["2026-11-28"].requests, 1);
    assert_eq!(u.daily["2026-11-28"].by_scope[&Scope::Catalog], 1);
    let month = &u.monthly["2026-11"];
    assert_eq!(month.requests, 31);
    assert_eq!(month.by_scope[&Scope::Embed], 30);
    assert_eq!(month.by_scope[&Scope::Catalog], 1);
    assert_eq!(u.last_used_at, Some(T0 as i64 + 86_400));
    assert!(store.usage(777).is_err());
}

#[test]
fn periodic_flush_writes_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let opts = StoreOptions::default().with_flush_interval(Duration::from_millis(20));
    let store = KeyStore::open_with(&path, PEPPER, opts).unwrap();
    let k = store.create(KeySpec::new("k", Environment::Live)).unwrap();
    let p = auth(&store, k.key.expose()).unwrap();
    store.authorize(&p, &Operation::Silhouette).unwrap();
    // Poll (not a timing assertion: generous deadline for a loaded machine).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while usage_rows(&path) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "background flush never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(last_used_in_db(&path, k.record.id).is_some());
}

#[test]
fn all_scope_flag_is_stored_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let store = KeyStore::open(&path, PEPPER).unwrap();
    let all = store
        .create(KeySpec::new("all", Environment::Live))
        .unwrap();
    let every = store
        .create(KeySpec::new("every", Environment::Live).with_scopes(Scope::ALL))
        .unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    let row = |id: i64| -> (i64, String) {
        c.query_row(
            "SELECT all_scopes, scopes FROM api_keys WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    assert_eq!(row(all.record.id), (1, String::new()));
    assert_eq!(
        row(every.record.id),
        (
            0,
            "embed,colors,silhouette,attributes,batch,catalog".to_string()
        )
    );
    // A scope from a later version written into the row does not widen the restricted key.
    c.execute(
        "UPDATE api_keys SET scopes = 'colors,video' WHERE id = ?1",
        [every.record.id],
    )
    .unwrap();
    let p = auth(&store, every.key.expose()).unwrap();
    assert!(store.authorize(&p, &Operation::Colors).is_ok());
    assert!(store.authorize(&p, &Operation::Embed).is_err());
}

#[test]
fn database_failures_are_opaque_internal_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A directory is not a database file.
    let err = KeyStore::open(dir.path(), PEPPER)
        .err()
        .expect("opening a directory fails");
    assert_eq!((err.code(), err.http_status()), ("internal_error", 500));
    match &err {
        Error::Database { context, .. } => assert_eq!(*context, "opening the database"),
        other => panic!("expected a database error, got {other:?}"),
    }
    // The driver's error is still there for logs, as the source.
    let source = std::error::Error::source(&err).expect("a source");
    assert!(err.to_string().contains(&source.to_string()), "{err}");
    assert!(
        err.to_string()
            .starts_with("keys database error while opening the database: "),
        "{err}"
    );
}
