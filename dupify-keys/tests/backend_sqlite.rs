//! The backend behaviour tests (`tests/behaviour/`) on SQLite, each on a new database file;
//! `tests/pg.rs` runs the same ones on PostgreSQL.

mod behaviour;

/// A fresh database file location (the directory lives as long as the guard).
fn fresh() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path().join("keys.db").to_str().unwrap().to_string();
    (dir, loc)
}

macro_rules! on_sqlite {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let (_dir, loc) = fresh();
            behaviour::$name(&loc);
        }
    )*};
}

on_sqlite!(
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

/// Without the `postgres` feature a PostgreSQL URL is refused with an error that names the
/// feature, and the URL's password does not appear in it.
#[cfg(not(feature = "postgres"))]
#[test]
fn a_postgres_url_needs_the_feature() {
    for url in [
        "postgres://app:s3cretpw@db.internal/keys",
        "postgresql://app:s3cretpw@db.internal/keys",
    ] {
        let err = dupify_keys::KeyStore::open(url, behaviour::PEPPER)
            .err()
            .expect("a postgres URL without the feature fails");
        assert!(
            matches!(
                &err,
                dupify_keys::Error::BackendNotBuilt {
                    feature: "postgres",
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("cargo feature `postgres`"), "{msg}");
        assert!(msg.contains("app:***@db.internal"), "{msg}");
        assert!(!msg.contains("s3cretpw") && !format!("{err:?}").contains("s3cretpw"));
        assert_eq!((err.code(), err.http_status()), ("internal_error", 500));
    }
}
