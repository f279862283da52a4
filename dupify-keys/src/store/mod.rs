//! The hashed key store on SQLite, usage counting and rate/quota checks.
//!
//! ## Storage
//! Only `HMAC-SHA-256(pepper, key)` is stored (unique index `api_keys_hash`), plus a non-secret
//! preview (`fe_live_…` + last 4 characters). The pepper comes from the host (see
//! [`crate::Pepper`] for the convention every host shares) and never touches the database, so
//! a stolen database file alone cannot be used to test candidate keys. The database runs in
//! WAL mode with `synchronous=FULL` (a committed revocation survives a power cut), every write
//! is one `BEGIN IMMEDIATE` transaction.
//!
//! ## Verification and revocation
//! Every verification re-reads the key's row through the hash index, so a revocation committed
//! by any thread or process is seen by the next request after `revoke` returns: there is no
//! in-memory cache of key status to go stale. To keep that cheap (the target is ≥ 200k
//! verifications per second on one core), each read connection of a file store keeps the
//! lookup statement prepared for its whole life (no SQL parsing, no statement-cache lookup),
//! connections are pooled, and the hot path allocates nothing on the Rust heap: header
//! parsing borrows, the HMAC tag lives on the stack, the row is read in place. After the row
//! is found by its hash, the tag is checked again with `ring::hmac::verify` (constant time).
//! An in-memory store (tests, demos) shares its single connection and uses `prepare_cached`.
//!
//! ## Usage
//! Calls are counted in memory (per key, per UTC day, per scope, plus admitted requests) and
//! written to SQLite in one transaction per flush: every `flush_interval` by a background
//! thread, on [`KeyStore::flush`], and when the last handle to the store is dropped. Counting
//! writes nothing on a request. `last_used_at` is kept the same way (seconds resolution).
//!
//! ## Monthly quotas
//! Admissions against a monthly quota spend calls reserved in the database a block at a time
//! ([`reservation_block`]: one call for quotas under 200), so no crash and no number of
//! processes sharing the database can admit more than the quota in a month; a SIGKILL costs at
//! most the unspent part of a block. Keys without a monthly quota never write on a request.
//!
//! ## Backends
//! [`KeyStore::open`] with a `postgres://` or `postgresql://` URL opens the same store on
//! PostgreSQL (cargo feature `postgres`), for several app servers sharing one key store: the
//! per-minute window and the monthly quota then live in the database and are updated
//! atomically per request, so the limits hold across every process (see the `pg` module).
//! Anything else is a SQLite file path. Every public method dispatches on the backend.

mod conn;
#[cfg(feature = "postgres")]
mod pg;
mod rate;
mod schema;
mod types;
mod usage;
mod verify;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use ring::hmac;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::clock::{day_of, Clock};
use crate::error::{DbContext, Error, Result};
use crate::headers::key_from_headers;
use crate::key::{ParsedKey, SecretKey};
use crate::limits::{Limits, RateDecision};
use crate::scope::Operation;

use conn::{open_file_writer, Conns};
pub use rate::reservation_block;
use rate::LineageState;
use schema::{get_record, init_schema, record_from_row, to_db_i64, RECORD_COLS};
pub use types::{CreatedKey, KeyRecord, KeySpec, KeyStatus, Principal, StoreOptions};
use usage::KeyState;
pub use usage::{KeyUsage, UsageCounts};

/// The state shared by every clone of a [`KeyStore`].
struct Inner {
    mac: hmac::Key,
    writer: Mutex<Connection>,
    conns: Conns,
    clock: Arc<dyn Clock>,
    keys: RwLock<HashMap<i64, Arc<KeyState>>>,
    lineages: RwLock<HashMap<i64, Arc<LineageState>>>,
    flush_lock: Mutex<()>,
    /// Dropping it stops the background flusher.
    _stop: Option<mpsc::Sender<()>>,
}

/// The API-key store. Cheap to clone (one shared handle), `Send + Sync`. Backed by SQLite, or
/// by PostgreSQL when opened with a `postgres://` URL (cargo feature `postgres`).
///
/// ```
/// use dupify_keys::{Environment, KeySpec, KeyStore, Operation, Scope};
/// let store = KeyStore::open_in_memory(b"a long random server-side pepper")?;
/// let created = store.create(KeySpec::new("Production", Environment::Live)
///     .with_scopes([Scope::Embed, Scope::Batch]))?;
/// let headers = [("X-API-Key", created.key.expose())];
/// let principal = store.authenticate(headers)?;
/// store.authorize(&principal, &Operation::batch([Scope::Embed]))?;
/// assert!(store.authorize(&principal, &Operation::Colors).is_err());
/// assert!(store.check_rate(&principal).is_allowed());
/// # Ok::<(), dupify_keys::Error>(())
/// ```
#[derive(Clone)]
pub struct KeyStore {
    backend: Backend,
}

/// The store behind a [`KeyStore`]; the last handle dropped flushes buffered usage.
#[derive(Clone)]
enum Backend {
    Sqlite(Arc<Inner>),
    #[cfg(feature = "postgres")]
    Postgres(Arc<pg::PgInner>),
}

/// Runs `$call` on the store's backend, whichever it is (`$inner` names it in `$call`): one
/// line per public method instead of a `match` with an arm per backend.
macro_rules! dispatch {
    ($self:ident, $inner:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($inner) => $call,
            #[cfg(feature = "postgres")]
            Backend::Postgres($inner) => $call,
        }
    };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain counters behind; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl KeyStore {
    /// Opens (creating if needed) the store at `path`. `pepper` is the HMAC key for stored
    /// hashes: keep it out of the database and stable (changing it invalidates every key).
    /// An empty pepper is refused. Hosts should get it from [`crate::Pepper`]
    /// (`pepper.as_bytes()`) so that every host of a database agrees on it.
    ///
    /// A `path` that starts with `postgres://` or `postgresql://` is a PostgreSQL connection
    /// URL: the schema is created or migrated on open (versions in the table
    /// `schema_version`). That needs the cargo feature `postgres`; without it such a URL is
    /// [`Error::BackendNotBuilt`]. Anything else is a SQLite database file.
    pub fn open(path: impl AsRef<Path>, pepper: &[u8]) -> Result<KeyStore> {
        KeyStore::open_with(path, pepper, StoreOptions::default())
    }

    /// [`KeyStore::open`] with options.
    pub fn open_with(
        path: impl AsRef<Path>,
        pepper: &[u8],
        options: StoreOptions,
    ) -> Result<KeyStore> {
        check_pepper(pepper)?;
        if let Some(url) = dupify_types::location::postgres_url(path.as_ref()) {
            return KeyStore::open_postgres(url, pepper, options);
        }
        let path = path.as_ref().to_path_buf();
        let writer = open_file_writer(&path, options.busy_timeout)?;
        init_schema(&writer)?;
        let conns = Conns::file(path, options.busy_timeout);
        Ok(KeyStore::build(pepper, writer, conns, options))
    }

    /// A store that lives in memory (tests, demos). Same behaviour, nothing persisted.
    pub fn open_in_memory(pepper: &[u8]) -> Result<KeyStore> {
        KeyStore::open_in_memory_with(pepper, StoreOptions::default())
    }

    /// [`KeyStore::open_in_memory`] with options.
    pub fn open_in_memory_with(pepper: &[u8], options: StoreOptions) -> Result<KeyStore> {
        check_pepper(pepper)?;
        let writer = Connection::open_in_memory().db("opening the in-memory database")?;
        init_schema(&writer)?;
        Ok(KeyStore::build(pepper, writer, Conns::Memory, options))
    }

    #[cfg(feature = "postgres")]
    fn open_postgres(url: &str, pepper: &[u8], options: StoreOptions) -> Result<KeyStore> {
        Ok(KeyStore {
            backend: Backend::Postgres(pg::PgInner::open(url, pepper, options)?),
        })
    }

    #[cfg(not(feature = "postgres"))]
    fn open_postgres(url: &str, _pepper: &[u8], _options: StoreOptions) -> Result<KeyStore> {
        Err(Error::BackendNotBuilt {
            location: dupify_types::location::redact_url(url),
            feature: "postgres",
        })
    }

    fn build(pepper: &[u8], writer: Connection, conns: Conns, options: StoreOptions) -> KeyStore {
        let (tx, rx) = mpsc::channel::<()>();
        let inner = Arc::new(Inner {
            mac: hmac::Key::new(hmac::HMAC_SHA256, pepper),
            writer: Mutex::new(writer),
            conns,
            clock: options.clock,
            keys: RwLock::new(HashMap::new()),
            lineages: RwLock::new(HashMap::new()),
            flush_lock: Mutex::new(()),
            _stop: Some(tx),
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        let interval = options.flush_interval;
        // The flusher holds only a weak handle and stops when the store is dropped (the
        // sender goes away). A flush error is retried at the next tick; counts stay buffered.
        let _ = std::thread::Builder::new()
            .name("dupify-keys-flush".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(interval) {
                    match weak.upgrade() {
                        Some(inner) => {
                            let _ = inner.flush();
                        }
                        None => break,
                    }
                }
            });
        KeyStore {
            backend: Backend::Sqlite(inner),
        }
    }

    /// Creates a key. Returns the plaintext once, with its record.
    pub fn create(&self, spec: KeySpec) -> Result<CreatedKey> {
        let name = spec.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::invalid("name", "must be 1 to 200 characters"));
        }
        spec.limits.validate()?;
        let key = SecretKey::generate(spec.env)?;
        dispatch!(self, inner => inner.create(name, &spec, key))
    }

    /// Lists every key (oldest first), revoked ones included.
    pub fn list(&self) -> Result<Vec<KeyRecord>> {
        dispatch!(self, inner => inner.list())
    }

    /// One key's record.
    pub fn get(&self, id: i64) -> Result<KeyRecord> {
        dispatch!(self, inner => inner.get(id))
    }

    /// Revokes a key now. When this returns, every thread and every process using the same
    /// database refuses the key. Revoking a revoked key is a no-op; an unknown id is
    /// [`Error::KeyNotFound`]. A key in a regeneration grace period is revoked at once.
    pub fn revoke(&self, id: i64) -> Result<()> {
        dispatch!(self, inner => inner.revoke(id))
    }

    /// Replaces a key's secret: a new key with the same name, environment, scopes, limits
    /// and expiry (and the same rate/quota counters, through its lineage). The old key is
    /// revoked at once, or after `grace` (both keys work during the grace period). Only an
    /// active key can be regenerated ([`Error::KeyNotActive`] otherwise).
    pub fn regenerate(&self, id: i64, grace: Option<Duration>) -> Result<CreatedKey> {
        let grace_secs = grace.map_or(0, |g| i64::try_from(g.as_secs()).unwrap_or(i64::MAX));
        dispatch!(self, inner => inner.regenerate(id, grace_secs))
    }

    /// Changes a key's limits (takes effect at the key's next verification).
    pub fn set_limits(&self, id: i64, limits: Limits) -> Result<()> {
        limits.validate()?;
        dispatch!(self, inner => inner.set_limits(id, limits))
    }

    /// Authenticates a request from its headers (`X-API-Key` or `Authorization: Bearer`, see
    /// [`crate::key_from_headers`]) and verifies the key against the store.
    pub fn authenticate<'a, I>(&self, headers: I) -> Result<Principal>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let key = key_from_headers(headers)?;
        self.verify(key)
    }

    /// Verifies a format-checked key: unknown → `invalid_api_key`, revoked → `invalid_api_key`,
    /// expired → `expired_api_key`. Reads the key's row on every call (see the module docs).
    pub fn verify(&self, key: ParsedKey<'_>) -> Result<Principal> {
        dispatch!(self, inner => inner.verify(key))
    }

    /// Checks that the principal may run `op` (see the batch rule in [`crate::scope`]) and,
    /// when it may, counts one call for each scope the operation needs.
    pub fn authorize(&self, principal: &Principal, op: &Operation) -> Result<()> {
        principal.scopes.permits(op)?;
        let scopes = op.required();
        match &self.backend {
            Backend::Sqlite(inner) => {
                let day = day_of(inner.now_secs());
                inner.count_scopes(principal.key_id, day, scopes.listed());
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(inner) => inner.count_scopes(principal.key_id, scopes.listed()),
        }
        Ok(())
    }

    /// Applies the monthly quota and the per-minute rate limit to one request. When allowed,
    /// the request is counted (quota and usage). Denied requests are not counted.
    ///
    /// On PostgreSQL the decision is taken in the database; when the database fails, the
    /// request is refused as `RateLimited` with a one-second `Retry-After` (failing closed
    /// keeps the limits). [`try_check_rate`](Self::try_check_rate) reports that error instead.
    pub fn check_rate(&self, principal: &Principal) -> RateDecision {
        dispatch!(self, inner => inner.check_rate(principal))
    }

    /// [`check_rate`](Self::check_rate) that reports a database failure as an error (500)
    /// rather than a refusal. The SQLite store never reports one: when its database cannot
    /// take a quota reservation it admits on the count this process knows, so that an outage
    /// of the key file does not stop a key with calls left. The PostgreSQL store keeps no
    /// count of its own to fall back on, so there the host chooses: a refusal from
    /// `check_rate` or this error.
    pub fn try_check_rate(&self, principal: &Principal) -> Result<RateDecision> {
        match &self.backend {
            Backend::Sqlite(inner) => Ok(inner.check_rate(principal)),
            #[cfg(feature = "postgres")]
            Backend::Postgres(inner) => inner.try_check_rate(principal),
        }
    }

    /// Gives back the request the last allowed [`check_rate`](Self::check_rate) counted, for
    /// a request refused before any work was done (a malformed body, a missing parameter):
    /// such a request does not count against the monthly quota or the usage. It keeps its
    /// place in the per-minute window, so a flood of bad requests is still rate limited.
    /// Best effort by design: on SQLite, once the count was flushed to the database (every
    /// flush interval) it stays, which errs on the side of the quota, never past it; on
    /// PostgreSQL a request admitted by this process today is given back in the database
    /// (a database error leaves it counted).
    pub fn release(&self, principal: &Principal) {
        dispatch!(self, inner => inner.release(principal))
    }

    /// Usage of one key per day and per month (flushed and buffered counts together).
    pub fn usage(&self, id: i64) -> Result<KeyUsage> {
        let record = self.get(id)?;
        dispatch!(self, inner => inner.usage(id, record.last_used_at))
    }

    /// Writes buffered usage and `last_used_at` to the database now (one transaction).
    pub fn flush(&self) -> Result<()> {
        dispatch!(self, inner => inner.flush())
    }

    /// For a graceful stop: flushes usage and hands back the monthly-quota calls this process
    /// reserved but did not spend (see [`reservation_block`]), so a restart does not cost the
    /// keys any quota. The store stays usable; the next request reserves again. Dropping the
    /// last handle does the same. (The PostgreSQL store reserves nothing: each admission is
    /// counted in the database as it happens, so there it only flushes.)
    pub fn shutdown(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(inner) => {
                inner.flush()?;
                inner.return_reservations()
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(inner) => inner.flush(),
        }
    }
}

fn check_pepper(pepper: &[u8]) -> Result<()> {
    if pepper.is_empty() {
        return Err(Error::invalid(
            "pepper",
            "must not be empty (use at least 32 random bytes kept outside the database)",
        ));
    }
    Ok(())
}

/// The SQLite store's operations behind [`KeyStore`]'s public methods.
impl Inner {
    fn create(&self, name: &str, spec: &KeySpec, key: SecretKey) -> Result<CreatedKey> {
        let tag = self.sign(key.expose().as_bytes());
        let now = self.now_secs();
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db("creating a key")?;
        tx.execute(
            "INSERT INTO api_keys (lineage_id, name, env, hash, preview, all_scopes, scopes, \
             rate_per_minute, monthly_quota, created_at, expires_at) \
             VALUES (0, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                name,
                spec.env.as_str(),
                tag.as_ref(),
                key.preview(),
                spec.scopes.is_all(),
                spec.scopes.to_db(),
                spec.limits.per_minute,
                spec.limits.monthly.map(to_db_i64),
                now,
                spec.expires_at,
            ],
        )
        .db("creating a key")?;
        let id = tx.last_insert_rowid();
        tx.execute("UPDATE api_keys SET lineage_id = id WHERE id = ?1", [id])
            .db("creating a key")?;
        let record = get_record(&tx, id, now)?;
        tx.commit().db("creating a key")?;
        Ok(CreatedKey { key, record })
    }

    fn list(&self) -> Result<Vec<KeyRecord>> {
        let now = self.now_secs();
        let mut out = self.with_conn(|c| {
            let mut st = c
                .prepare_cached(&format!("SELECT {RECORD_COLS} FROM api_keys ORDER BY id"))
                .db("listing keys")?;
            let rows = st
                .query_map([], |r| record_from_row(r, now))
                .db("listing keys")?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .db("listing keys")
        })?;
        for r in &mut out {
            self.merge_last_used(r);
        }
        Ok(out)
    }

    fn get(&self, id: i64) -> Result<KeyRecord> {
        let now = self.now_secs();
        let mut r = self.with_conn(|c| get_record(c, id, now))?;
        self.merge_last_used(&mut r);
        Ok(r)
    }

    fn merge_last_used(&self, r: &mut KeyRecord) {
        if let Some(mem) = self.last_used_in_memory(r.id) {
            if r.last_used_at.is_none_or(|d| d < mem) {
                r.last_used_at = Some(mem);
            }
        }
    }

    fn revoke(&self, id: i64) -> Result<()> {
        let now = self.now_secs();
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db("revoking a key")?;
        let exists = tx
            .query_row("SELECT 1 FROM api_keys WHERE id = ?1", [id], |_| Ok(()))
            .optional()
            .db("revoking a key")?
            .is_some();
        if !exists {
            return Err(Error::KeyNotFound { id });
        }
        tx.execute(
            "UPDATE api_keys SET revoked_at = ?2 \
             WHERE id = ?1 AND (revoked_at IS NULL OR revoked_at > ?2)",
            params![id, now],
        )
        .db("revoking a key")?;
        tx.commit().db("revoking a key")?;
        Ok(())
    }

    fn regenerate(&self, id: i64, grace_secs: i64) -> Result<CreatedKey> {
        let now = self.now_secs();
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db("regenerating a key")?;
        let old = get_record(&tx, id, now)?;
        if old.status != KeyStatus::Active {
            return Err(Error::KeyNotActive {
                id,
                status: old.status.as_str(),
            });
        }
        let key = SecretKey::generate(old.env)?;
        let tag = self.sign(key.expose().as_bytes());
        tx.execute(
            "INSERT INTO api_keys (lineage_id, name, env, hash, preview, all_scopes, scopes, \
             rate_per_minute, monthly_quota, created_at, expires_at) \
             SELECT lineage_id, name, env, ?2, ?3, all_scopes, scopes, rate_per_minute, \
             monthly_quota, ?4, expires_at FROM api_keys WHERE id = ?1",
            params![id, tag.as_ref(), key.preview(), now],
        )
        .db("regenerating a key")?;
        let new_id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE api_keys SET revoked_at = ?2, replaced_by = ?3 WHERE id = ?1",
            params![id, now.saturating_add(grace_secs), new_id],
        )
        .db("regenerating a key")?;
        let record = get_record(&tx, new_id, now)?;
        tx.commit().db("regenerating a key")?;
        Ok(CreatedKey { key, record })
    }

    fn set_limits(&self, id: i64, limits: Limits) -> Result<()> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db("setting a key's limits")?;
        let n = tx
            .execute(
                "UPDATE api_keys SET rate_per_minute = ?2, monthly_quota = ?3 WHERE id = ?1",
                params![id, limits.per_minute, limits.monthly.map(to_db_i64)],
            )
            .db("setting a key's limits")?;
        if n == 0 {
            return Err(Error::KeyNotFound { id });
        }
        tx.commit().db("setting a key's limits")?;
        Ok(())
    }

    fn now_secs(&self) -> i64 {
        i64::try_from(self.clock.now().as_secs()).unwrap_or(i64::MAX)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Last handle gone: write what is buffered and hand back unspent reservations. Errors
        // cannot be reported from drop.
        let _ = self.flush();
        let _ = self.return_reservations();
    }
}
