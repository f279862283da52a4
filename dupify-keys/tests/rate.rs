//! Rate limits and monthly quotas on SQLite beyond the behaviour shared with PostgreSQL
//! (`tests/behaviour`): free-tier headers, tier presets, the free quota over a month, custom
//! limits, and admission accuracy under concurrent callers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dupify_keys::{
    Environment, Error, KeySpec, KeyStore, Limits, ManualClock, Principal, RateDecision,
    StoreOptions, Tier,
};

const PEPPER: &[u8] = b"rate test pepper";
/// 2026-11-27T00:00:00Z and the first second of December 2026 (from Python's calendar.timegm).
const T0: u64 = 1_795_737_600;
const DEC_1: i64 = 1_796_083_200;

fn store_at(path: Option<&std::path::Path>) -> (KeyStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at(T0));
    let opts = StoreOptions::default()
        .with_clock(clock.clone())
        .with_flush_interval(Duration::from_secs(3600));
    let store = match path {
        Some(p) => KeyStore::open_with(p, PEPPER, opts).unwrap(),
        None => KeyStore::open_in_memory_with(PEPPER, opts).unwrap(),
    };
    (store, clock)
}

fn principal(store: &KeyStore, limits: Limits) -> (Principal, i64, String) {
    let k = store
        .create(KeySpec::new("k", Environment::Live).with_limits(limits))
        .unwrap();
    let p = store.authenticate([("X-API-Key", k.key.expose())]).unwrap();
    (p, k.record.id, k.key.expose().to_string())
}

#[test]
fn free_tier_per_minute_limit_with_headers() {
    let (store, clock) = store_at(None);
    let (p, _, _) = principal(&store, Limits::tier(Tier::Free));
    for i in 0..10u32 {
        match store.check_rate(&p) {
            RateDecision::Allowed { headers } => {
                assert_eq!(headers.limit, 10);
                assert_eq!(headers.remaining, 9 - i);
                assert_eq!(headers.monthly_limit, Some(50));
                assert_eq!(headers.monthly_remaining, Some(49 - u64::from(i)));
                // The whole allowance is free again 60 s after the newest admission.
                assert_eq!(headers.reset, T0 as i64 + 60);
            }
            other => panic!("request {i}: {other:?}"),
        }
    }
    let d = store.check_rate(&p);
    match &d {
        RateDecision::RateLimited {
            retry_after_secs,
            headers,
        } => {
            // All ten were admitted at T0: the next slot frees when they turn 60 s old.
            assert_eq!(*retry_after_secs, 60);
            assert_eq!(headers.remaining, 0);
            assert_eq!(headers.monthly_remaining, Some(40));
        }
        other => panic!("{other:?}"),
    }
    let pairs = d.headers().pairs();
    assert_eq!(pairs[0], ("X-RateLimit-Limit", "10".to_string()));
    assert_eq!(pairs[1], ("X-RateLimit-Remaining", "0".to_string()));
    assert_eq!(pairs[3], ("X-Monthly-Limit", "50".to_string()));
    assert_eq!(pairs[4], ("X-Monthly-Remaining", "40".to_string()));
    let e = d.into_result().unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("rate_limit_exceeded", 429));
    assert_eq!(e.retry_after_secs(), Some(60));
    clock.advance(Duration::from_millis(59_999));
    assert!(!store.check_rate(&p).is_allowed());
    clock.advance(Duration::from_millis(1));
    assert!(store.check_rate(&p).is_allowed());
}

#[test]
fn tier_presets_set_the_headers() {
    let (store, _) = store_at(None);
    for (tier, per_min, monthly) in [
        (Tier::Free, 10, Some(50)),
        (Tier::Starter, 60, Some(1_000)),
        (Tier::Pro, 200, Some(10_000)),
        (Tier::Unlimited, 1_000, None),
    ] {
        let (p, _, _) = principal(&store, Limits::tier(tier));
        let d = store.check_rate(&p);
        let h = d.headers();
        assert_eq!((h.limit, h.remaining), (per_min, per_min - 1));
        assert_eq!(h.monthly_limit, monthly);
        assert_eq!(h.monthly_remaining, monthly.map(|m| m - 1));
        assert_eq!(h.pairs().len(), if monthly.is_some() { 5 } else { 3 });
    }
}

#[test]
fn monthly_quota_exhausts_and_resets_next_month() {
    let (store, clock) = store_at(None);
    let (p, _, _) = principal(&store, Limits::tier(Tier::Free));
    for i in 0..50 {
        assert!(store.check_rate(&p).is_allowed(), "call {i}");
        clock.advance(Duration::from_secs(6));
    }
    let now = T0 as i64 + 300;
    match store.check_rate(&p) {
        RateDecision::QuotaExceeded {
            used,
            limit,
            resets_at,
            retry_after_secs,
            headers,
        } => {
            assert_eq!((used, limit, resets_at), (50, 50, DEC_1));
            assert_eq!(retry_after_secs, (DEC_1 - now) as u64);
            assert_eq!(headers.monthly_remaining, Some(0));
            let e = store.check_rate(&p).into_result().unwrap_err();
            assert_eq!((e.code(), e.http_status()), ("quota_exceeded", 403));
            assert!(matches!(
                e,
                Error::QuotaExceeded {
                    used: 50,
                    limit: 50,
                    ..
                }
            ));
        }
        other => panic!("{other:?}"),
    }
    clock.set(DEC_1 as u64 - 1);
    assert!(!store.check_rate(&p).is_allowed());
    clock.set(DEC_1 as u64);
    match store.check_rate(&p) {
        RateDecision::Allowed { headers } => assert_eq!(headers.monthly_remaining, Some(49)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn custom_limits_apply_at_next_verification() {
    let (store, _) = store_at(None);
    let (_, id, plain) = principal(&store, Limits::tier(Tier::Free));
    store
        .set_limits(id, Limits::custom(3, None).unwrap())
        .unwrap();
    let p = store.authenticate([("X-API-Key", plain.as_str())]).unwrap();
    assert_eq!(p.limits(), Limits::custom(3, None).unwrap());
    assert!(store.check_rate(&p).is_allowed());
    assert!(store.check_rate(&p).is_allowed());
    assert!(store.check_rate(&p).is_allowed());
    // Three within the minute: the fourth waits until the first is 60 s old.
    assert!(matches!(
        store.check_rate(&p),
        RateDecision::RateLimited {
            retry_after_secs: 60,
            ..
        }
    ));
    assert!(store
        .set_limits(
            id,
            Limits {
                per_minute: 0,
                monthly: None
            }
        )
        .is_err());
    assert!(store.set_limits(999, Limits::tier(Tier::Pro)).is_err());
}

/// Four threads call `check_rate` as fast as they can while simulated time advances 119 s in
/// 10 ms steps. At 600/min the exact admission count is 600 at the start and 600 more once
/// those turn 60 s old (taken within a few seconds, as the callers call): 1200, and not one
/// more before 120 s. The limiter must land within 5 % of it. A racy limiter (lost updates)
/// over-admits.
#[test]
fn concurrent_callers_are_admitted_at_the_configured_rate() {
    let (store, clock) = store_at(None);
    let (p, _, _) = principal(&store, Limits::custom(600, None).unwrap());
    let admitted = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (store, admitted, calls, stop) =
                (store.clone(), admitted.clone(), calls.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if store.check_rate(&p).is_allowed() {
                        admitted.fetch_add(1, Ordering::SeqCst);
                    }
                    calls.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for _ in 0..11_900 {
        // Let the callers run between steps so the bucket never sits full.
        let seen = calls.load(Ordering::SeqCst);
        while calls.load(Ordering::SeqCst) < seen + 2 {
            std::thread::yield_now();
        }
        clock.advance(Duration::from_millis(10));
    }
    let seen = calls.load(Ordering::SeqCst);
    while calls.load(Ordering::SeqCst) < seen + 8 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let n = admitted.load(Ordering::SeqCst) as f64;
    let expected = 1200.0;
    assert!(
        (n - expected).abs() <= expected * 0.05,
        "admitted {n}, expected {expected} ± 5%"
    );
    assert!(calls.load(Ordering::SeqCst) > 23_800);
    // The request counter matches what was admitted.
    let u = store.usage(p.key_id()).unwrap();
    assert_eq!(u.daily["2026-11-27"].requests as f64, n);
}
