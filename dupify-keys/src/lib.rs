//! API keys for the Dupify API, as a library a host application uses to guard its endpoints:
//! the complete key system of the hosted service (format, headers, scopes, hashed storage,
//! revocation, regeneration, usage, rate limits and quotas). No LibTorch dependency: this crate
//! builds and tests in seconds.
//!
//! # Key format
//! `fe_live_` or `fe_test_` + exactly 32 characters from `[A-Za-z0-9]`, drawn from
//! `ring::rand::SystemRandom` by rejection sampling (no modulo bias). [`parse_key`] reports
//! *why* a string is not a key ([`FormatError`]: empty, wrong prefix, unknown environment,
//! wrong length, bad character). Plaintext keys live in [`SecretKey`], whose `Debug` and
//! `Display` are redacted; they are returned once at creation and never stored.
//!
//! # Request flow
//! ```
//! use dupify_keys::{Environment, KeySpec, KeyStore, Limits, Operation, RateDecision, Scope, Tier};
//! let store = KeyStore::open_in_memory(b"pepper from the host's secret store")?;
//! let created = store.create(
//!     KeySpec::new("Production", Environment::Live)
//!         .with_scopes([Scope::Colors, Scope::Batch])
//!         .with_limits(Limits::tier(Tier::Starter)),
//! )?;
//! let bearer = format!("Bearer {}", created.key.expose());
//! // 1. who is calling (401 on failure)
//! let who = store.authenticate([("authorization", bearer.as_str())])?;
//! // 2. rate limit (429 on failure) and monthly quota (403), with the response headers
//! let decision = store.check_rate(&who);
//! assert!(decision.is_allowed());
//! assert_eq!(decision.headers().limit, 60);
//! // 3. may it run this operation (403 on failure)
//! store.authorize(&who, &Operation::batch([Scope::Colors]))?;
//! let err = store.authorize(&who, &Operation::batch([Scope::Embed])).unwrap_err();
//! assert_eq!((err.code(), err.http_status()), ("insufficient_scope", 403));
//! // the catalog keys its data by the principal's environment
//! assert_eq!(who.environment(), Environment::Live);
//! # Ok::<(), dupify_keys::Error>(())
//! ```
//!
//! # Headers
//! `X-API-Key: <key>` or `Authorization: Bearer <key>`; header names and the scheme are
//! case-insensitive, whitespace around values is trimmed. No key → `missing_api_key`; two
//! different keys → [`Error::ConflictingApiKeys`] (`invalid_api_key`); malformed →
//! `invalid_api_key`. An `Authorization` header with another scheme is ignored.
//!
//! # Scopes and the batch rule
//! Scopes: `embed`, `colors`, `silhouette`, `attributes`, `batch`, `catalog`. A key created
//! with no scopes may call everything; this is stored as an explicit *all-scopes* flag, so a
//! scope added in a later version is granted to such keys but never to a restricted key.
//! **A batch needs the `batch` scope and the scope of every operation inside it**
//! ([`Operation::Batch`]): `batch` alone grants nothing else.
//!
//! # Storage
//! [`KeyStore`] keeps keys in SQLite (WAL, `synchronous=FULL`, `BEGIN IMMEDIATE` writes) as
//! `HMAC-SHA-256(pepper, key)` looked up through a unique index and re-checked with
//! `ring::hmac::verify` (constant time). The pepper is supplied by the host (see
//! [Pepper](#pepper)); [`KeyStore::open`] refuses an empty one. Revocation is immediate for
//! every thread and process on the same file: each verification re-reads the key's row
//! (through a statement prepared once per pooled read connection; no status cache can go
//! stale). Regeneration issues a new secret with the same
//! name, environment, scopes, limits and expiry, and revokes the old key now or after a grace
//! period. Expired keys get `expired_api_key`, revoked ones `invalid_api_key`.
//!
//! With the cargo feature `postgres`, [`KeyStore::open`] given a `postgres://` (or
//! `postgresql://`) URL keeps the same keys on PostgreSQL, for several app servers sharing
//! one store: same API and behaviour, with the per-minute limit and the monthly quota decided
//! in the database (exact across processes, each admission committed). Without the feature
//! such a URL is [`Error::BackendNotBuilt`].
//!
//! # Pepper
//! The pepper is the server-side secret the stored hashes are keyed with; it never touches the
//! database. Every host of the same database must use the same one, so there is one
//! convention ([`Pepper`], module [`pepper`]): hex text, at least 32 digits, whitespace at
//! both ends ignored, and the HMAC key is that trimmed text (not the decoded bytes).
//! [`Pepper::resolve`] looks for it in an explicit file, then the environment variable
//! [`PEPPER_ENV`] (`DUPIFY_PEPPER`), then `<db>.pepper` next to the database, and generates
//! that file only for a database that does not exist yet:
//! ```
//! use dupify_keys::{KeyStore, Pepper, PepperSource};
//! # let dir = tempfile::tempdir()?;
//! # let db = dir.path().join("keys.db");
//! let explicit_file: Option<&std::path::Path> = None; // e.g. from `--pepper-file`
//! let may_create = true; // e.g. only for the command that creates keys
//! let (pepper, source) = Pepper::resolve(explicit_file, &db, may_create)?;
//! if let PepperSource::Generated(path) = &source {
//!     eprintln!("new pepper in {}: keep it secret, keep it with the database", path.display());
//! }
//! let store = KeyStore::open(&db, pepper.as_bytes())?;
//! # drop(store);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Usage, rate limits, quotas
//! Calls are counted in memory per key, per UTC day and per scope, and flushed to SQLite in one
//! transaction periodically, on [`KeyStore::flush`] and on drop: no disk write per request.
//! [`KeyStore::usage`] reports per-day and per-month counts. [`KeyStore::check_rate`] applies
//! the per-minute limit (a sliding window: never more than the limit in any 60 s) and the
//! monthly quota; the hosted
//! tiers are presets ([`Tier`]): Free 50/month at 10/min, Starter 1,000 at 60/min, Pro 10,000
//! at 200/min, Unlimited no cap at 1,000/min. See [`limits`] for multi-process behaviour.
//!
//! # Errors
//! One enum, [`Error`]; [`Error::code`] gives the hosted code (`missing_api_key`,
//! `invalid_api_key`, `expired_api_key`, `insufficient_scope`, `rate_limit_exceeded`,
//! `quota_exceeded`, …) and [`Error::http_status`] the status. Server-side failures (the
//! database, a missing or malformed pepper, a pepper file that cannot be read or written) are
//! `internal_error`, 500.

pub mod clock;
pub mod error;
pub mod headers;
pub mod key;
pub mod limits;
pub mod pepper;
pub mod scope;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, FormatError, Result};
pub use headers::key_from_headers;
pub use key::{
    parse_key, Environment, ParsedKey, SecretKey, ALPHABET, KEY_LEN, KEY_PREFIX, SECRET_LEN,
};
pub use limits::{Limits, RateDecision, RateHeaders, Tier};
pub use pepper::{Pepper, PepperSource, PEPPER_ENV};
pub use scope::{Operation, Scope, ScopeSet};
pub use store::{
    reservation_block, CreatedKey, KeyRecord, KeySpec, KeyStatus, KeyStore, KeyUsage, Principal,
    StoreOptions, UsageCounts,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<KeyStore>();
        assert_send_sync::<Principal>();
    }
}
