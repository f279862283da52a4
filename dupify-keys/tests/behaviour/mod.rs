//! Behaviour every key store backend must have, written once and run against each: SQLite by
//! `tests/backend_sqlite.rs`, PostgreSQL by `tests/pg.rs`. Each function gets a fresh, empty
//! store location (a SQLite file path or a `postgres://` URL of an empty database) and opens
//! it with `KeyStore::open_with`, so the public API decides the backend, as a host's would.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use dupify_keys::{
    Environment, Error, KeySpec, KeyStatus, KeyStore, Limits, ManualClock, Operation, Principal,
    RateDecision, Scope, StoreOptions, Tier,
};

pub const PEPPER: &[u8] = b"backend behaviour pepper, 32+ bytes";
/// 2026-11-27T00:00:00Z and the first second of December 2026.
pub const T0: u64 = 1_795_737_600;
pub const DEC_1: i64 = 1_796_083_200;

/// A store at `loc` on a manual clock at `T0` that flushes only when asked (or dropped).
pub fn open(loc: &str) -> (KeyStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at(T0));
    (open_on(loc, clock.clone()), clock)
}

/// A store at `loc` on `clock`, flushing only when asked (or dropped).
pub fn open_on(loc: &str, clock: Arc<ManualClock>) -> KeyStore {
    let opts = StoreOptions::default()
        .with_clock(clock)
        .with_flush_interval(Duration::from_secs(3600));
    KeyStore::open_with(loc, PEPPER, opts).unwrap()
}

pub fn auth(store: &KeyStore, key: &str) -> Result<Principal, Error> {
    store.authenticate([("X-API-Key", key)])
}

pub fn create_authenticate_revoke(loc: &str) {
    let (store, clock) = open(loc);
    let a = store
        .create(KeySpec::new("Production", Environment::Live).with_scopes([Scope::Embed]))
        .unwrap();
    let b = store
        .create(KeySpec::new("Development", Environment::Test).with_limits(Limits::tier(Tier::Pro)))
        .unwrap();
    assert!(a.key.expose().starts_with("fe_live_"));
    assert!(b.key.expose().starts_with("fe_test_"));
    assert_eq!(a.record.lineage_id, a.record.id);
    assert_eq!(
        a.record.preview,
        format!("fe_live_…{}", &a.key.expose()[36..])
    );
    let list = store.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].id, list[1].id), (a.record.id, b.record.id));
    assert_eq!(list[0].name, "Production");
    assert_eq!(
        list[0].scopes.listed().collect::<Vec<_>>(),
        vec![Scope::Embed]
    );
    assert!(list[1].scopes.is_all());
    assert_eq!(list[1].limits, Limits::tier(Tier::Pro));
    assert_eq!(list[0].created_at, T0 as i64);
    assert_eq!(list[0].status, KeyStatus::Active);
    assert_eq!(list[0], a.record);

    let p = auth(&store, a.key.expose()).unwrap();
    assert_eq!(p.key_id(), a.record.id);
    assert_eq!(p.environment(), Environment::Live);
    let bearer = format!("Bearer {}", b.key.expose());
    let p = store
        .authenticate([("Authorization", bearer.as_str())])
        .unwrap();
    assert_eq!(p.limits(), Limits::tier(Tier::Pro));
    assert_eq!(
        store.get(a.record.id).unwrap().last_used_at,
        Some(T0 as i64)
    );

    // Unknown keys, the same secret under the other environment, no key at all.
    let unknown = format!("fe_live_{}", "A".repeat(32));
    assert!(matches!(auth(&store, &unknown), Err(Error::UnknownApiKey)));
    let flipped = format!("fe_test_{}", &a.key.expose()[8..]);
    assert!(matches!(auth(&store, &flipped), Err(Error::UnknownApiKey)));
    let e = store.authenticate([("Accept", "*/*")]).unwrap_err();
    assert_eq!(e.code(), "missing_api_key");
    assert!(matches!(
        store.get(999_999),
        Err(Error::KeyNotFound { id: 999_999 })
    ));
    assert!(store.create(KeySpec::new("  ", Environment::Live)).is_err());

    // Revocation: refused at once, idempotent; an unknown id is an error.
    store.revoke(a.record.id).unwrap();
    let e = auth(&store, a.key.expose()).unwrap_err();
    assert!(matches!(e, Error::RevokedApiKey));
    assert_eq!((e.code(), e.http_status()), ("invalid_api_key", 401));
    assert_eq!(store.get(a.record.id).unwrap().status, KeyStatus::Revoked);
    store.revoke(a.record.id).unwrap();
    assert!(matches!(
        store.revoke(999_999),
        Err(Error::KeyNotFound { .. })
    ));
    assert!(auth(&store, b.key.expose()).is_ok());

    // Expiry.
    let short = store
        .create(KeySpec::new("short", Environment::Test).with_expiry(T0 as i64 + 100))
        .unwrap();
    assert!(auth(&store, short.key.expose()).is_ok());
    clock.advance(Duration::from_secs(100));
    let e = auth(&store, short.key.expose()).unwrap_err();
    assert!(matches!(e, Error::ExpiredApiKey { expired_at } if expired_at == T0 as i64 + 100));
    assert!(matches!(
        store.regenerate(short.record.id, None),
        Err(Error::KeyNotActive {
            status: "expired",
            ..
        })
    ));

    // Another pepper derives other hashes: the key is unknown there.
    let other = KeyStore::open(loc, b"another pepper").unwrap();
    assert!(matches!(
        auth(&other, b.key.expose()),
        Err(Error::UnknownApiKey)
    ));
}

/// Revocation through one handle is seen by a second, separately opened handle (its own
/// connections) on its very next verification.
pub fn revocation_is_seen_by_another_handle(loc: &str) {
    let (store, _) = open(loc);
    let k = store.create(KeySpec::new("k", Environment::Live)).unwrap();
    let (other, _) = open(loc);
    for _ in 0..20 {
        auth(&other, k.key.expose()).unwrap();
    }
    store.revoke(k.record.id).unwrap();
    assert!(matches!(
        auth(&other, k.key.expose()),
        Err(Error::RevokedApiKey)
    ));
}

pub fn regenerate_with_grace(loc: &str) {
    let (store, clock) = open(loc);
    let limits = Limits::custom(7, Some(70)).unwrap();
    let old = store
        .create(
            KeySpec::new("Prod", Environment::Live)
                .with_scopes([Scope::Colors, Scope::Batch])
                .with_limits(limits)
                .with_expiry(T0 as i64 + 86_400 * 365),
        )
        .unwrap();
    let new = store.regenerate(old.record.id, None).unwrap();
    assert_ne!(new.key.expose(), old.key.expose());
    assert_ne!(new.record.id, old.record.id);
    assert_eq!(new.record.name, "Prod");
    assert_eq!(new.record.scopes, old.record.scopes);
    assert_eq!(new.record.limits, limits);
    assert_eq!(new.record.expires_at, old.record.expires_at);
    assert_eq!(new.record.lineage_id, old.record.lineage_id);
    assert!(matches!(
        auth(&store, old.key.expose()),
        Err(Error::RevokedApiKey)
    ));
    let p = auth(&store, new.key.expose()).unwrap();
    assert_eq!(p.lineage_id(), old.record.id);
    let old_rec = store.get(old.record.id).unwrap();
    assert_eq!(old_rec.replaced_by, Some(new.record.id));
    assert_eq!(old_rec.status, KeyStatus::Revoked);
    assert!(matches!(
        store.regenerate(old.record.id, None),
        Err(Error::KeyNotActive { .. })
    ));
    assert!(matches!(
        store.regenerate(999_999, None),
        Err(Error::KeyNotFound { .. })
    ));

    // With a grace period both keys work until it ends, to the second.
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
    // A key in its grace period can be revoked at once.
    let newest = store
        .regenerate(newer.record.id, Some(Duration::from_secs(600)))
        .unwrap();
    store.revoke(newer.record.id).unwrap();
    assert!(matches!(
        auth(&store, newer.key.expose()),
        Err(Error::RevokedApiKey)
    ));
    assert!(auth(&store, newest.key.expose()).is_ok());
}

pub fn scopes_and_the_batch_rule(loc: &str) {
    let (store, _) = open(loc);
    let restricted = store
        .create(KeySpec::new("r", Environment::Live).with_scopes([Scope::Colors, Scope::Batch]))
        .unwrap();
    let all = store.create(KeySpec::new("a", Environment::Live)).unwrap();
    let every = store
        .create(KeySpec::new("e", Environment::Live).with_scopes(Scope::ALL))
        .unwrap();
    let p = auth(&store, restricted.key.expose()).unwrap();
    assert!(store.authorize(&p, &Operation::Colors).is_ok());
    assert!(store
        .authorize(&p, &Operation::batch([Scope::Colors]))
        .is_ok());
    let e = store
        .authorize(&p, &Operation::batch([Scope::Colors, Scope::Embed]))
        .unwrap_err();
    assert!(matches!(&e, Error::InsufficientScope { missing } if missing == &[Scope::Embed]));
    assert_eq!((e.code(), e.http_status()), ("insufficient_scope", 403));
    assert!(store.authorize(&p, &Operation::Embed).is_err());
    // `batch` alone grants nothing inside.
    let batch_only = store
        .create(KeySpec::new("b", Environment::Live).with_scopes([Scope::Batch]))
        .unwrap();
    let pb = auth(&store, batch_only.key.expose()).unwrap();
    assert!(store
        .authorize(&pb, &Operation::batch([Scope::Colors]))
        .is_err());
    // No scopes at creation = all, stored as the explicit flag; listing every scope is not.
    let pa = auth(&store, all.key.expose()).unwrap();
    assert!(pa.scopes().is_all());
    for s in Scope::ALL {
        assert!(store.authorize(&pa, &Operation::batch([s])).is_ok());
    }
    assert!(!store.get(every.record.id).unwrap().scopes.is_all());
    assert!(store.get(all.record.id).unwrap().scopes.is_all());
}

pub fn usage_after_flush(loc: &str) {
    let (store, clock) = open(loc);
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
    // The handle that counted sees everything, flushed or not.
    let u = store.usage(id).unwrap();
    let day = &u.daily["2026-11-27"];
    assert_eq!(day.requests, 30);
    assert_eq!(day.by_scope[&Scope::Embed], 30);
    assert_eq!(day.by_scope[&Scope::Batch], 10);
    assert_eq!(day.by_scope[&Scope::Colors], 10);
    assert_eq!(u.last_used_at, Some(T0 as i64));
    store.flush().unwrap();
    assert_eq!(store.usage(id).unwrap(), u);
    // Another handle reads the same from the database.
    let (other, _) = open(loc);
    assert_eq!(other.usage(id).unwrap(), u);
    assert_eq!(other.get(id).unwrap().last_used_at, Some(T0 as i64));

    // The next day; dropping the store flushes the rest.
    clock.advance(Duration::from_secs(86_400));
    let p = auth(&store, k.key.expose()).unwrap();
    assert!(store.check_rate(&p).is_allowed());
    store.authorize(&p, &Operation::Catalog).unwrap();
    drop(store);
    let u = other.usage(id).unwrap();
    assert_eq!(u.daily.len(), 2);
    assert_eq!(u.daily["2026-11-28"].requests, 1);
    assert_eq!(u.daily["2026-11-28"].by_scope[&Scope::Catalog], 1);
    let month = &u.monthly["2026-11"];
    assert_eq!(month.requests, 31);
    assert_eq!(month.by_scope[&Scope::Embed], 30);
    assert_eq!(u.last_used_at, Some(T0 as i64 + 86_400));
    assert!(other.usage(777_777).is_err());

    // A graceful stop writes the buffered counts too, and leaves the store usable.
    let p = auth(&other, k.key.expose()).unwrap();
    other.authorize(&p, &Operation::Attributes).unwrap();
    other.shutdown().unwrap();
    let (third, _) = open(loc);
    assert_eq!(
        third.usage(id).unwrap().daily["2026-11-27"].by_scope[&Scope::Attributes],
        1
    );
    assert!(other.check_rate(&p).is_allowed());
}

pub fn per_minute_limit_with_headers(loc: &str) {
    let (store, clock) = open(loc);
    let k = store
        .create(KeySpec::new("k", Environment::Live).with_limits(Limits::tier(Tier::Free)))
        .unwrap();
    let p = auth(&store, k.key.expose()).unwrap();
    for i in 0..10u32 {
        match store.check_rate(&p) {
            RateDecision::Allowed { headers } => {
                assert_eq!(headers.limit, 10);
                assert_eq!(headers.remaining, 9 - i);
                assert_eq!(headers.monthly_limit, Some(50));
                assert_eq!(headers.monthly_remaining, Some(49 - u64::from(i)));
                // Full again 60 s after this admission, rounded up to the second.
                assert_eq!(headers.reset, T0 as i64 + 60 + i64::from(i > 0));
            }
            other => panic!("request {i}: {other:?}"),
        }
        clock.advance(Duration::from_millis(100));
    }
    match store.check_rate(&p) {
        RateDecision::RateLimited {
            retry_after_secs,
            headers,
        } => {
            // The first admission (at T0) turns 60 s old 59 s from now.
            assert_eq!(retry_after_secs, 59);
            assert_eq!(headers.remaining, 0);
            assert_eq!(headers.monthly_remaining, Some(40));
        }
        other => panic!("{other:?}"),
    }
    let e = store.check_rate(&p).into_result().unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("rate_limit_exceeded", 429));
    // Exactly when the oldest admission leaves the window, one slot frees; not before.
    clock.set(T0 + 59);
    clock.advance(Duration::from_millis(999));
    assert!(!store.check_rate(&p).is_allowed());
    clock.set(T0 + 60);
    assert!(store.check_rate(&p).is_allowed());
    assert!(!store.check_rate(&p).is_allowed());
    // Custom limits apply at the next verification.
    store
        .set_limits(k.record.id, Limits::custom(100, None).unwrap())
        .unwrap();
    let p = auth(&store, k.key.expose()).unwrap();
    match store.check_rate(&p) {
        RateDecision::Allowed { headers } => {
            assert_eq!(headers.limit, 100);
            assert_eq!(headers.monthly_limit, None);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.set_limits(999_999, Limits::tier(Tier::Pro)),
        Err(Error::KeyNotFound { .. })
    ));
}

/// "10 per minute" means at most 10 in any 60 s: a client polling once a second for 150 s
/// is admitted 30 times (the window slides past expired admissions again and again), never
/// more than 10 within any 60 s, and `Retry-After` on a refusal is exactly when the next
/// request is admitted.
pub fn polling_never_sees_more_than_the_limit_in_any_minute(loc: &str) {
    let (store, clock) = open(loc);
    let k = store
        .create(KeySpec::new("k", Environment::Live).with_limits(Limits::custom(10, None).unwrap()))
        .unwrap();
    let p = auth(&store, k.key.expose()).unwrap();
    let mut admitted: Vec<u64> = Vec::new();
    let mut retry_at: Option<u64> = None;
    for t in 0..150u64 {
        match store.check_rate(&p) {
            RateDecision::Allowed { .. } => {
                if let Some(r) = retry_at.take() {
                    assert_eq!(t, r, "admitted at {t}, Retry-After said {r}");
                }
                admitted.push(t);
            }
            RateDecision::RateLimited {
                retry_after_secs, ..
            } => {
                retry_at.get_or_insert(t + retry_after_secs);
            }
            other => panic!("{other:?}"),
        }
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(admitted.len(), 30, "{admitted:?}");
    for &start in &admitted {
        let in_window = admitted
            .iter()
            .filter(|&&t| t >= start && t < start + 60)
            .count();
        assert!(
            in_window <= 10,
            "{in_window} admitted in [{start}, {start}+60)"
        );
    }
}

pub fn monthly_quota_and_reset(loc: &str) {
    let (store, clock) = open(loc);
    let k = store
        .create(
            KeySpec::new("k", Environment::Live)
                .with_limits(Limits::custom(1000, Some(5)).unwrap()),
        )
        .unwrap();
    let p = auth(&store, k.key.expose()).unwrap();
    for i in 0..5 {
        assert!(store.check_rate(&p).is_allowed(), "call {i}");
    }
    match store.check_rate(&p) {
        RateDecision::QuotaExceeded {
            used,
            limit,
            resets_at,
            retry_after_secs,
            headers,
        } => {
            assert_eq!((used, limit, resets_at), (5, 5, DEC_1));
            assert_eq!(retry_after_secs, (DEC_1 - T0 as i64) as u64);
            assert_eq!(headers.monthly_remaining, Some(0));
        }
        other => panic!("{other:?}"),
    }
    let e = store.check_rate(&p).into_result().unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("quota_exceeded", 403));
    clock.set(DEC_1 as u64 - 1);
    assert!(!store.check_rate(&p).is_allowed());
    clock.set(DEC_1 as u64);
    match store.check_rate(&p) {
        RateDecision::Allowed { headers } => assert_eq!(headers.monthly_remaining, Some(4)),
        other => panic!("{other:?}"),
    }
}

/// The quota is per lineage and outlives the handle: a regenerated key in a new handle
/// continues the count.
pub fn quota_survives_reopen_and_regeneration(loc: &str) {
    let (store, _) = open(loc);
    let k = store
        .create(
            KeySpec::new("k", Environment::Live)
                .with_limits(Limits::custom(1000, Some(5)).unwrap()),
        )
        .unwrap();
    let p = auth(&store, k.key.expose()).unwrap();
    for _ in 0..3 {
        assert!(store.check_rate(&p).is_allowed());
    }
    drop(store);
    let (store, _) = open(loc);
    let again = store.regenerate(k.record.id, None).unwrap();
    let p2 = auth(&store, again.key.expose()).unwrap();
    assert_eq!(p2.lineage_id(), p.lineage_id());
    assert!(store.check_rate(&p2).is_allowed());
    assert!(store.check_rate(&p2).is_allowed());
    match store.check_rate(&p2) {
        RateDecision::QuotaExceeded { used, limit, .. } => assert_eq!((used, limit), (5, 5)),
        other => panic!("regeneration reset the quota: {other:?}"),
    }
}

pub fn released_requests_do_not_consume_the_quota(loc: &str) {
    let (store, _) = open(loc);
    let k = store
        .create(
            KeySpec::new("k", Environment::Live).with_limits(Limits::custom(100, Some(3)).unwrap()),
        )
        .unwrap();
    let p = auth(&store, k.key.expose()).unwrap();
    // Nothing admitted yet: nothing to give back.
    store.release(&p);
    for _ in 0..3 {
        assert!(store.check_rate(&p).is_allowed());
    }
    assert!(matches!(
        store.check_rate(&p),
        RateDecision::QuotaExceeded { .. }
    ));
    store.release(&p);
    assert!(
        store.check_rate(&p).is_allowed(),
        "the released call is available again"
    );
    assert!(matches!(
        store.check_rate(&p),
        RateDecision::QuotaExceeded { used: 3, .. }
    ));
    let month: u64 = store
        .usage(k.record.id)
        .unwrap()
        .monthly
        .values()
        .map(|c| c.requests)
        .sum();
    assert_eq!(month, 3);
}
