//! The hashed key store on SQLite, usage counting and rate/quota checks.
//!
//! ## Storage
//! Only `HMAC-SHA-256(pepper, key)` is stored (unique index `api_keys_hash`), plus a non-secret
//! preview (`fe_live_…` + last 4 characters). The pepper comes from the host (an environment
//! variable or a secrets manager) and never touches the database, so a stolen database file
//! alone cannot be used to test candidate keys. The database runs in WAL mode with
//! `synchronous=FULL` (a committed revocation survives a power cut), every write is one
//! `BEGIN IMMEDIATE` transaction.
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
//! thread, on [`KeyStore::flush`], and when the last handle to the store is dropped. No request
//! writes to disk. `last_used_at` is kept the same way (seconds resolution).

use std::collections::{BTreeMap, HashMap};
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use ring::hmac;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Statement, TransactionBehavior};
use serde::Serialize;

use crate::clock::{
    day_label, day_of, month_day_range, month_label, month_of_day, Clock, SystemClock,
};
use crate::error::{Error, Result};
use crate::headers::key_from_headers;
use crate::key::{Environment, ParsedKey, SecretKey};
use crate::limits::{ceil_secs, Gcra, GcraStep, Limits, RateDecision, RateHeaders};
use crate::scope::{Operation, Scope, ScopeSet};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS api_keys (
    id              INTEGER PRIMARY KEY,
    lineage_id      INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    env             TEXT    NOT NULL CHECK (env IN ('live', 'test')),
    hash            BLOB    NOT NULL CHECK (length(hash) = 32),
    preview         TEXT    NOT NULL,
    all_scopes      INTEGER NOT NULL CHECK (all_scopes IN (0, 1)),
    scopes          TEXT    NOT NULL,
    rate_per_minute INTEGER NOT NULL CHECK (rate_per_minute > 0),
    monthly_quota   INTEGER CHECK (monthly_quota IS NULL OR monthly_quota > 0),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER,
    revoked_at      INTEGER,
    last_used_at    INTEGER,
    replaced_by     INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_hash ON api_keys (hash);
CREATE INDEX IF NOT EXISTS api_keys_lineage ON api_keys (lineage_id);
CREATE TABLE IF NOT EXISTS api_key_usage (
    key_id INTEGER NOT NULL,
    day    INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    calls  INTEGER NOT NULL,
    PRIMARY KEY (key_id, day, kind)
) WITHOUT ROWID;
PRAGMA user_version = 1;
";

const LOOKUP_SQL: &str = "SELECT id, lineage_id, env, hash, all_scopes, scopes, rate_per_minute, \
     monthly_quota, expires_at, revoked_at FROM api_keys WHERE hash = ?1";

const RECORD_COLS: &str = "id, lineage_id, name, env, preview, all_scopes, scopes, \
     rate_per_minute, monthly_quota, created_at, expires_at, revoked_at, last_used_at, replaced_by";

/// Usage kind stored for requests admitted by [`KeyStore::check_rate`].
const REQUESTS_KIND: &str = "requests";
/// Counter slots per day: requests + one per scope.
const SLOTS: usize = 1 + Scope::ALL.len();

/// Store settings. Defaults: flush usage every 10 s, the system clock, wait up to 5 s for a
/// database lock held by another connection.
#[derive(Clone)]
pub struct StoreOptions {
    /// How often buffered usage is written to SQLite.
    pub flush_interval: Duration,
    /// Time source (a [`crate::ManualClock`] in tests).
    pub clock: Arc<dyn Clock>,
    /// SQLite busy timeout.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            flush_interval: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl StoreOptions {
    /// Sets the flush interval (at least 1 ms).
    pub fn with_flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d.max(Duration::from_millis(1));
        self
    }

    /// Sets the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the busy timeout.
    pub fn with_busy_timeout(mut self, d: Duration) -> Self {
        self.busy_timeout = d;
        self
    }
}

/// What to create: name, environment, scopes (empty = all), optional expiry, limits
/// (default: the Free tier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// Descriptive name ("Production"). 1 to 200 characters.
    pub name: String,
    /// `live` or `test`.
    pub env: Environment,
    /// Scopes; [`ScopeSet::all`] for a key created with none selected.
    pub scopes: ScopeSet,
    /// Unix seconds after which the key is refused with `expired_api_key`.
    pub expires_at: Option<i64>,
    /// Rate limit and monthly quota.
    pub limits: Limits,
}

impl KeySpec {
    /// A key with all scopes, no expiry and Free-tier limits.
    pub fn new(name: impl Into<String>, env: Environment) -> KeySpec {
        KeySpec {
            name: name.into(),
            env,
            scopes: ScopeSet::all(),
            expires_at: None,
            limits: Limits::default(),
        }
    }

    /// Restricts the key to `scopes` (an empty list keeps all scopes, as in the dashboard).
    pub fn with_scopes<I: IntoIterator<Item = Scope>>(mut self, scopes: I) -> Self {
        self.scopes = ScopeSet::from_selection(scopes);
        self
    }

    /// Sets an expiry (Unix seconds).
    pub fn with_expiry(mut self, unix_secs: i64) -> Self {
        self.expires_at = Some(unix_secs);
        self
    }

    /// Sets the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// A key's status at the time it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Usable.
    Active,
    /// Usable until `revoked_at` (regenerated with a grace period).
    Rotating,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl KeyStatus {
    fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Rotating => "rotating",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        }
    }

    fn of(now: i64, expires_at: Option<i64>, revoked_at: Option<i64>) -> KeyStatus {
        match (revoked_at, expires_at) {
            (Some(r), _) if r <= now => KeyStatus::Revoked,
            (_, Some(e)) if e <= now => KeyStatus::Expired,
            (Some(_), _) => KeyStatus::Rotating,
            _ => KeyStatus::Active,
        }
    }
}

/// What the dashboard lists about a key. Holds nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRecord {
    /// Stable id.
    pub id: i64,
    /// Id of the first key in this key's regeneration chain (limits are shared along it).
    pub lineage_id: i64,
    /// Descriptive name.
    pub name: String,
    /// `live` or `test`.
    pub env: Environment,
    /// Scopes (`"all"` when created with none).
    pub scopes: ScopeSet,
    /// Limits.
    pub limits: Limits,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, including uses not yet flushed by this process.
    pub last_used_at: Option<i64>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    /// Unix seconds (in the future during a regeneration grace period).
    pub revoked_at: Option<i64>,
    /// The key that replaced this one, if regenerated.
    pub replaced_by: Option<i64>,
    /// `fe_live_…` + last 4 characters.
    pub preview: String,
    /// Status at read time.
    pub status: KeyStatus,
}

/// Returned once by [`KeyStore::create`] and [`KeyStore::regenerate`]: the plaintext key and
/// its record. The plaintext cannot be retrieved again.
#[derive(Debug)]
pub struct CreatedKey {
    /// The plaintext key (redacted in `Debug`).
    pub key: SecretKey,
    /// The stored record.
    pub record: KeyRecord,
}

/// An authenticated caller. Copyable and allocation-free; carries what the request needs:
/// the key id, its environment (keep test data apart from live data), scopes and limits as
/// read from the database during this verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Principal {
    key_id: i64,
    lineage_id: i64,
    env: Environment,
    scopes: ScopeSet,
    limits: Limits,
}

impl Principal {
    /// The key's id.
    pub fn key_id(&self) -> i64 {
        self.key_id
    }
    /// The regeneration chain the key belongs to (rate/quota counters are kept per lineage).
    pub fn lineage_id(&self) -> i64 {
        self.lineage_id
    }
    /// `live` or `test`: the catalog keeps the two apart.
    pub fn environment(&self) -> Environment {
        self.env
    }
    /// The key's scopes.
    pub fn scopes(&self) -> ScopeSet {
        self.scopes
    }
    /// The key's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

/// Counts for one day or month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageCounts {
    /// Requests admitted by [`KeyStore::check_rate`].
    pub requests: u64,
    /// Calls per scope, counted by [`KeyStore::authorize`] (a batch counts `batch` and each
    /// scope inside it once).
    pub by_scope: BTreeMap<Scope, u64>,
}

/// Usage of one key: per UTC day (`YYYY-MM-DD`) and per month (`YYYY-MM`), including counts
/// this process has not flushed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyUsage {
    /// The key.
    pub key_id: i64,
    /// Unix seconds.
    pub last_used_at: Option<i64>,
    /// Per day.
    pub daily: BTreeMap<String, UsageCounts>,
    /// Per month.
    pub monthly: BTreeMap<String, UsageCounts>,
}

/// A read connection of a file store with its lookup statement prepared for life.
///
/// The statement borrows the connection, which is why this struct owns the connection through
/// a raw pointer: `Drop` finalises the statement before freeing the connection, and the two
/// only ever move and are used together, on one thread at a time (the pool hands the whole
/// struct to one caller).
struct ReadConn {
    lookup: ManuallyDrop<Statement<'static>>,
    conn: NonNull<Connection>,
}

// SAFETY: `Connection` is `Send`; the statement refers only to the connection owned by the same
// struct, and the struct is used by one thread at a time (it is moved in and out of a
// `Mutex<Vec<_>>`), which is what SQLite's multi-thread mode (`NO_MUTEX`) requires.
unsafe impl Send for ReadConn {}

impl ReadConn {
    fn open(path: &Path, busy: Duration) -> Result<ReadConn> {
        let conn = open_connection(path, busy)?;
        let ptr = NonNull::from(Box::leak(Box::new(conn)));
        // SAFETY: `ptr` stays valid until `Drop`, which drops the statement first.
        let conn_ref: &'static Connection = unsafe { &*ptr.as_ptr() };
        match conn_ref.prepare(LOOKUP_SQL) {
            Ok(stmt) => Ok(ReadConn {
                lookup: ManuallyDrop::new(stmt),
                conn: ptr,
            }),
            Err(e) => {
                // SAFETY: no statement borrows the connection; reclaim the box.
                drop(unsafe { Box::from_raw(ptr.as_ptr()) });
                Err(e.into())
            }
        }
    }

    fn conn(&self) -> &Connection {
        // SAFETY: valid for the life of `self`.
        unsafe { self.conn.as_ref() }
    }
}

impl Drop for ReadConn {
    fn drop(&mut self) {
        // SAFETY: the statement is dropped exactly once, before its connection.
        unsafe {
            ManuallyDrop::drop(&mut self.lookup);
            drop(Box::from_raw(self.conn.as_ptr()));
        }
    }
}

fn open_connection(path: &Path, busy: Duration) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(busy)?;
    Ok(conn)
}

/// Buffered (day, counts) pairs of one key.
type Pending = Vec<(i64, [u64; SLOTS])>;
/// One key's share of a flush: id, state, taken counts, last use.
type FlushItem = (i64, Arc<KeyState>, Pending, i64);

/// Per-key usage buffered in memory.
struct KeyState {
    lineage_id: i64,
    /// Unix seconds of the last verification (0 = none).
    last_used: AtomicI64,
    /// The value last written to the database.
    flushed_last_used: AtomicI64,
    /// (day, counts) pairs not yet flushed; counts[0] = requests, counts[1 + scope] = calls.
    pending: Mutex<Pending>,
}

impl KeyState {
    fn add(&self, day: i64, slot: usize, n: u64) {
        let mut p = lock(&self.pending);
        if let Some((_, c)) = p.iter_mut().find(|(d, _)| *d == day) {
            c[slot] += n;
        } else {
            let mut c = [0u64; SLOTS];
            c[slot] = n;
            p.push((day, c));
        }
    }
}

/// Per-lineage limiter state.
struct LineageState {
    inner: Mutex<LineageInner>,
}

struct LineageInner {
    gcra: Gcra,
    /// Month id the count belongs to.
    month: i64,
    /// Requests admitted this month (database total at last refresh + admitted since).
    used: u64,
}

enum Conns {
    /// File store: a writer and a pool of readers.
    File {
        path: PathBuf,
        busy: Duration,
        readers: Mutex<Vec<ReadConn>>,
    },
    /// In-memory store: everything on the writer connection.
    Memory,
}

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

/// The API-key store. Cheap to clone (one shared handle), `Send + Sync`.
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
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain counters behind; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Row of the lookup statement.
struct LookupRow {
    id: i64,
    lineage_id: i64,
    env: Environment,
    hash: [u8; 32],
    scopes: ScopeSet,
    limits: Limits,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

fn env_from_db(s: &str) -> rusqlite::Result<Environment> {
    match s {
        "live" => Ok(Environment::Live),
        "test" => Ok(Environment::Test),
        _ => Err(rusqlite::Error::InvalidColumnType(
            0,
            "env".into(),
            rusqlite::types::Type::Text,
        )),
    }
}

fn limits_from_db(rate: i64, monthly: Option<i64>) -> Limits {
    Limits {
        per_minute: u32::try_from(rate).unwrap_or(u32::MAX).max(1),
        monthly: monthly.map(|m| u64::try_from(m).unwrap_or(0)),
    }
}

fn lookup(stmt: &mut Statement<'_>, tag: &[u8]) -> rusqlite::Result<Option<LookupRow>> {
    stmt.query_row([tag], |r| {
        let hash_ref = r.get_ref(3)?.as_blob()?;
        let mut hash = [0u8; 32];
        if hash_ref.len() == 32 {
            hash.copy_from_slice(hash_ref);
        }
        Ok(LookupRow {
            id: r.get(0)?,
            lineage_id: r.get(1)?,
            env: env_from_db(r.get_ref(2)?.as_str()?)?,
            hash,
            scopes: ScopeSet::from_db(r.get::<_, i64>(4)? != 0, r.get_ref(5)?.as_str()?),
            limits: limits_from_db(r.get(6)?, r.get(7)?),
            expires_at: r.get(8)?,
            revoked_at: r.get(9)?,
        })
    })
    .optional()
}

fn record_from_row(r: &rusqlite::Row<'_>, now: i64) -> rusqlite::Result<KeyRecord> {
    let expires_at: Option<i64> = r.get(10)?;
    let revoked_at: Option<i64> = r.get(11)?;
    Ok(KeyRecord {
        id: r.get(0)?,
        lineage_id: r.get(1)?,
        name: r.get(2)?,
        env: env_from_db(r.get_ref(3)?.as_str()?)?,
        preview: r.get(4)?,
        scopes: ScopeSet::from_db(r.get::<_, i64>(5)? != 0, r.get_ref(6)?.as_str()?),
        limits: limits_from_db(r.get(7)?, r.get(8)?),
        created_at: r.get(9)?,
        expires_at,
        revoked_at,
        last_used_at: r.get(12)?,
        replaced_by: r.get(13)?,
        status: KeyStatus::of(now, expires_at, revoked_at),
    })
}

fn to_db_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl KeyStore {
    /// Opens (creating if needed) the store at `path`. `pepper` is the HMAC key for stored
    /// hashes: keep it out of the database and stable (changing it invalidates every key).
    /// An empty pepper is refused.
    pub fn open(path: impl AsRef<Path>, pepper: &[u8]) -> Result<KeyStore> {
        KeyStore::open_with(path, pepper, StoreOptions::default())
    }

    /// [`KeyStore::open`] with options.
    pub fn open_with(
        path: impl AsRef<Path>,
        pepper: &[u8],
        options: StoreOptions,
    ) -> Result<KeyStore> {
        let path = path.as_ref().to_path_buf();
        check_pepper(pepper)?;
        let writer = open_connection(&path, options.busy_timeout)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Internal {
                reason: format!("could not switch the keys database to WAL (got `{mode}`)"),
            });
        }
        writer.execute_batch("PRAGMA synchronous = FULL;")?;
        init_schema(&writer)?;
        let conns = Conns::File {
            path,
            busy: options.busy_timeout,
            readers: Mutex::new(Vec::new()),
        };
        Ok(KeyStore::build(pepper, writer, conns, options))
    }

    /// A store that lives in memory (tests, demos). Same behaviour, nothing persisted.
    pub fn open_in_memory(pepper: &[u8]) -> Result<KeyStore> {
        KeyStore::open_in_memory_with(pepper, StoreOptions::default())
    }

    /// [`KeyStore::open_in_memory`] with options.
    pub fn open_in_memory_with(pepper: &[u8], options: StoreOptions) -> Result<KeyStore> {
        check_pepper(pepper)?;
        let writer = Connection::open_in_memory()?;
        init_schema(&writer)?;
        Ok(KeyStore::build(pepper, writer, Conns::Memory, options))
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
        KeyStore { inner }
    }

    /// Creates a key. Returns the plaintext once, with its record.
    pub fn create(&self, spec: KeySpec) -> Result<CreatedKey> {
        let name = spec.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::invalid("name", "must be 1 to 200 characters"));
        }
        spec.limits.validate()?;
        let key = SecretKey::generate(spec.env)?;
        let tag = hmac::sign(&self.inner.mac, key.expose().as_bytes());
        let now = self.now_secs();
        let mut conn = lock(&self.inner.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
        )?;
        let id = tx.last_insert_rowid();
        tx.execute("UPDATE api_keys SET lineage_id = id WHERE id = ?1", [id])?;
        let record = get_record(&tx, id, now)?;
        tx.commit()?;
        Ok(CreatedKey { key, record })
    }

    /// Lists every key (oldest first), revoked ones included.
    pub fn list(&self) -> Result<Vec<KeyRecord>> {
        let now = self.now_secs();
        let mut out = self.inner.with_conn(|c| {
            let mut st =
                c.prepare_cached(&format!("SELECT {RECORD_COLS} FROM api_keys ORDER BY id"))?;
            let rows = st.query_map([], |r| record_from_row(r, now))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        for r in &mut out {
            self.merge_last_used(r);
        }
        Ok(out)
    }

    /// One key's record.
    pub fn get(&self, id: i64) -> Result<KeyRecord> {
        let now = self.now_secs();
        let mut r = self.inner.with_conn(|c| get_record(c, id, now))?;
        self.merge_last_used(&mut r);
        Ok(r)
    }

    fn merge_last_used(&self, r: &mut KeyRecord) {
        if let Some(st) = self.inner.read_keys().get(&r.id) {
            let mem = st.last_used.load(Ordering::Relaxed);
            if mem > 0 && r.last_used_at.is_none_or(|d| d < mem) {
                r.last_used_at = Some(mem);
            }
        }
    }

    /// Revokes a key now. When this returns, every thread and every process using the same
    /// database file refuses the key. Revoking a revoked key is a no-op; an unknown id is
    /// [`Error::KeyNotFound`]. A key in a regeneration grace period is revoked at once.
    pub fn revoke(&self, id: i64) -> Result<()> {
        let now = self.now_secs();
        let mut conn = lock(&self.inner.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = tx
            .query_row("SELECT 1 FROM api_keys WHERE id = ?1", [id], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            return Err(Error::KeyNotFound { id });
        }
        tx.execute(
            "UPDATE api_keys SET revoked_at = ?2 \
             WHERE id = ?1 AND (revoked_at IS NULL OR revoked_at > ?2)",
            params![id, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces a key's secret: a new key with the same name, environment, scopes, limits
    /// and expiry (and the same rate/quota counters, through its lineage). The old key is
    /// revoked at once, or after `grace` (both keys work during the grace period). Only an
    /// active key can be regenerated ([`Error::KeyNotActive`] otherwise).
    pub fn regenerate(&self, id: i64, grace: Option<Duration>) -> Result<CreatedKey> {
        let now = self.now_secs();
        let grace_secs = grace.map_or(0, |g| i64::try_from(g.as_secs()).unwrap_or(i64::MAX));
        let mut conn = lock(&self.inner.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old = get_record(&tx, id, now)?;
        if old.status != KeyStatus::Active {
            return Err(Error::KeyNotActive {
                id,
                status: old.status.as_str(),
            });
        }
        let key = SecretKey::generate(old.env)?;
        let tag = hmac::sign(&self.inner.mac, key.expose().as_bytes());
        tx.execute(
            "INSERT INTO api_keys (lineage_id, name, env, hash, preview, all_scopes, scopes, \
             rate_per_minute, monthly_quota, created_at, expires_at) \
             SELECT lineage_id, name, env, ?2, ?3, all_scopes, scopes, rate_per_minute, \
             monthly_quota, ?4, expires_at FROM api_keys WHERE id = ?1",
            params![id, tag.as_ref(), key.preview(), now],
        )?;
        let new_id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE api_keys SET revoked_at = ?2, replaced_by = ?3 WHERE id = ?1",
            params![id, now.saturating_add(grace_secs), new_id],
        )?;
        let record = get_record(&tx, new_id, now)?;
        tx.commit()?;
        Ok(CreatedKey { key, record })
    }

    /// Changes a key's limits (takes effect at the key's next verification).
    pub fn set_limits(&self, id: i64, limits: Limits) -> Result<()> {
        limits.validate()?;
        let mut conn = lock(&self.inner.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE api_keys SET rate_per_minute = ?2, monthly_quota = ?3 WHERE id = ?1",
            params![id, limits.per_minute, limits.monthly.map(to_db_i64)],
        )?;
        if n == 0 {
            return Err(Error::KeyNotFound { id });
        }
        tx.commit()?;
        Ok(())
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
        let secret = key.expose().as_bytes();
        let tag = hmac::sign(&self.inner.mac, secret);
        let row = self
            .inner
            .with_lookup(|st| Ok(lookup(st, tag.as_ref())?))?
            .ok_or(Error::UnknownApiKey)?;
        // The index found the row by the tag; confirm in constant time.
        hmac::verify(&self.inner.mac, secret, &row.hash).map_err(|_| Error::UnknownApiKey)?;
        if row.env != key.environment() {
            return Err(Error::UnknownApiKey);
        }
        let now = self.now_secs();
        match KeyStatus::of(now, row.expires_at, row.revoked_at) {
            KeyStatus::Revoked => return Err(Error::RevokedApiKey),
            KeyStatus::Expired => {
                return Err(Error::ExpiredApiKey {
                    expired_at: row.expires_at.unwrap_or(now),
                })
            }
            KeyStatus::Active | KeyStatus::Rotating => {}
        }
        self.inner
            .key_state(row.id, row.lineage_id)
            .last_used
            .fetch_max(now, Ordering::Relaxed);
        Ok(Principal {
            key_id: row.id,
            lineage_id: row.lineage_id,
            env: row.env,
            scopes: row.scopes,
            limits: row.limits,
        })
    }

    /// Checks that the principal may run `op` (see the batch rule in [`crate::scope`]) and,
    /// when it may, counts one call for each scope the operation needs.
    pub fn authorize(&self, principal: &Principal, op: &Operation) -> Result<()> {
        principal.scopes.permits(op)?;
        let day = day_of(self.now_secs());
        let st = self.inner.key_state(principal.key_id, principal.lineage_id);
        for s in op.required().listed() {
            st.add(day, 1 + s.index(), 1);
        }
        Ok(())
    }

    /// Applies the monthly quota and the per-minute rate limit to one request. When allowed,
    /// the request is counted (quota and usage). Denied requests are not counted.
    pub fn check_rate(&self, principal: &Principal) -> RateDecision {
        let now = self.inner.clock.now();
        let now_ns = i64::try_from(now.as_nanos()).unwrap_or(i64::MAX);
        let now_s = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let day = day_of(now_s);
        let month = month_of_day(day);
        let limits = principal.limits;
        let lineage = self.inner.lineage_state(principal.lineage_id, month);
        let mut l = lock(&lineage.inner);
        if l.month != month {
            l.month = month;
            l.used = 0;
        }
        let resets_at = month_day_range(month).1 * 86_400;
        let monthly_remaining = limits.monthly.map(|m| m.saturating_sub(l.used));
        let header = |remaining: u32, reset_ns: i64, monthly_remaining: Option<u64>| RateHeaders {
            limit: limits.per_minute,
            remaining,
            reset: ceil_secs(reset_ns),
            monthly_limit: limits.monthly,
            monthly_remaining,
        };
        if let Some(limit) = limits.monthly {
            if l.used >= limit {
                let available = l.gcra.available(limits.per_minute, now_ns);
                return RateDecision::QuotaExceeded {
                    used: l.used,
                    limit,
                    resets_at,
                    retry_after_secs: u64::try_from(resets_at - now_s).unwrap_or(0),
                    headers: header(available, l.gcra.full_at(now_ns), Some(0)),
                };
            }
        }
        match l.gcra.peek(limits.per_minute, now_ns) {
            GcraStep::Denied {
                retry_after_ns,
                reset_ns,
            } => RateDecision::RateLimited {
                retry_after_secs: u64::try_from(ceil_secs(retry_after_ns)).unwrap_or(0).max(1),
                headers: header(0, reset_ns, monthly_remaining),
            },
            GcraStep::Allowed {
                remaining,
                reset_ns,
            } => {
                l.gcra.take(limits.per_minute, now_ns);
                l.used += 1;
                self.inner
                    .key_state(principal.key_id, principal.lineage_id)
                    .add(day, 0, 1);
                RateDecision::Allowed {
                    headers: header(
                        remaining,
                        reset_ns,
                        limits.monthly.map(|m| m.saturating_sub(l.used)),
                    ),
                }
            }
        }
    }

    /// Usage of one key per day and per month (flushed and buffered counts together).
    pub fn usage(&self, id: i64) -> Result<KeyUsage> {
        let record = self.get(id)?;
        let rows = self.inner.with_conn(|c| {
            let mut st = c.prepare_cached(
                "SELECT day, kind, calls FROM api_key_usage WHERE key_id = ?1 ORDER BY day",
            )?;
            let rows = st.query_map([id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        let mut per_day: BTreeMap<i64, [u64; SLOTS]> = BTreeMap::new();
        for (day, kind, calls) in rows {
            let slot = if kind == REQUESTS_KIND {
                0
            } else if let Ok(s) = kind.parse::<Scope>() {
                1 + s.index()
            } else {
                continue;
            };
            per_day.entry(day).or_insert([0; SLOTS])[slot] += u64::try_from(calls).unwrap_or(0);
        }
        if let Some(st) = self.inner.read_keys().get(&id) {
            for (day, counts) in lock(&st.pending).iter() {
                let e = per_day.entry(*day).or_insert([0; SLOTS]);
                for (a, b) in e.iter_mut().zip(counts) {
                    *a += b;
                }
            }
        }
        let mut daily = BTreeMap::new();
        let mut monthly: BTreeMap<String, UsageCounts> = BTreeMap::new();
        for (day, counts) in per_day {
            let add = |u: &mut UsageCounts| {
                u.requests += counts[0];
                for s in Scope::ALL {
                    let n = counts[1 + s.index()];
                    if n > 0 {
                        *u.by_scope.entry(s).or_insert(0) += n;
                    }
                }
            };
            add(daily.entry(day_label(day)).or_default());
            add(monthly.entry(month_label(month_of_day(day))).or_default());
        }
        Ok(KeyUsage {
            key_id: id,
            last_used_at: record.last_used_at,
            daily,
            monthly,
        })
    }

    /// Writes buffered usage and `last_used_at` to the database now (one transaction).
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn now_secs(&self) -> i64 {
        self.inner.now_secs()
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

fn init_schema(conn: &Connection) -> Result<()> {
    conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))?;
    Ok(())
}

fn get_record(c: &Connection, id: i64, now: i64) -> Result<KeyRecord> {
    let mut st = c.prepare_cached(&format!("SELECT {RECORD_COLS} FROM api_keys WHERE id = ?1"))?;
    st.query_row([id], |r| record_from_row(r, now))
        .optional()?
        .ok_or(Error::KeyNotFound { id })
}

impl Inner {
    fn now_secs(&self) -> i64 {
        i64::try_from(self.clock.now().as_secs()).unwrap_or(i64::MAX)
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, HashMap<i64, Arc<KeyState>>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    fn key_state(&self, id: i64, lineage_id: i64) -> Arc<KeyState> {
        if let Some(s) = self.read_keys().get(&id) {
            return Arc::clone(s);
        }
        let mut w = self.keys.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(w.entry(id).or_insert_with(|| {
            Arc::new(KeyState {
                lineage_id,
                last_used: AtomicI64::new(0),
                flushed_last_used: AtomicI64::new(0),
                pending: Mutex::new(Vec::new()),
            })
        }))
    }

    fn lineage_state(&self, lineage_id: i64, month: i64) -> Arc<LineageState> {
        if let Some(s) = self
            .lineages
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&lineage_id)
        {
            return Arc::clone(s);
        }
        // First request of this lineage in this process: start from the database's count.
        // A database error here starts from 0 and is corrected at the next flush.
        let used = self.month_requests_in_db(lineage_id, month).unwrap_or(0);
        let mut w = self.lineages.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(w.entry(lineage_id).or_insert_with(|| {
            Arc::new(LineageState {
                inner: Mutex::new(LineageInner {
                    gcra: Gcra::default(),
                    month,
                    used,
                }),
            })
        }))
    }

    fn month_requests_in_db(&self, lineage_id: i64, month: i64) -> Result<u64> {
        let (start, end) = month_day_range(month);
        let n: i64 = self.with_conn(|c| {
            Ok(c.prepare_cached(
                "SELECT COALESCE(SUM(u.calls), 0) FROM api_key_usage u \
                 JOIN api_keys k ON k.id = u.key_id \
                 WHERE k.lineage_id = ?1 AND u.kind = ?2 AND u.day >= ?3 AND u.day < ?4",
            )?
            .query_row(params![lineage_id, REQUESTS_KIND, start, end], |r| r.get(0))?)
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Runs `f` with the lookup statement: a pooled read connection's prepared statement for a
    /// file store, the writer's cached statement in memory.
    fn with_lookup<T>(&self, f: impl FnOnce(&mut Statement<'_>) -> Result<T>) -> Result<T> {
        match &self.conns {
            Conns::File {
                path,
                busy,
                readers,
            } => {
                let mut rc = match lock(readers).pop() {
                    Some(rc) => rc,
                    None => ReadConn::open(path, *busy)?,
                };
                let out = f(&mut rc.lookup);
                lock(readers).push(rc);
                out
            }
            Conns::Memory => {
                let conn = lock(&self.writer);
                let mut st = conn.prepare_cached(LOOKUP_SQL)?;
                f(&mut st)
            }
        }
    }

    /// Runs a read with a pooled read connection (file) or the writer (memory).
    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        match &self.conns {
            Conns::File {
                path,
                busy,
                readers,
            } => {
                let rc = match lock(readers).pop() {
                    Some(rc) => rc,
                    None => ReadConn::open(path, *busy)?,
                };
                let out = f(rc.conn());
                lock(readers).push(rc);
                out
            }
            Conns::Memory => f(&lock(&self.writer)),
        }
    }

    fn flush(&self) -> Result<()> {
        let _g = lock(&self.flush_lock);
        let states: Vec<(i64, Arc<KeyState>)> = self
            .read_keys()
            .iter()
            .map(|(id, s)| (*id, Arc::clone(s)))
            .collect();
        let mut batch = Vec::new();
        for (id, st) in &states {
            let pending = std::mem::take(&mut *lock(&st.pending));
            let last_used = st.last_used.load(Ordering::Relaxed);
            if pending.is_empty() && last_used <= st.flushed_last_used.load(Ordering::Relaxed) {
                continue;
            }
            batch.push((*id, Arc::clone(st), pending, last_used));
        }
        if batch.is_empty() {
            return Ok(());
        }
        let written = self.write_batch(&batch);
        match written {
            Ok(()) => {
                for (_, st, _, last_used) in &batch {
                    st.flushed_last_used
                        .fetch_max(*last_used, Ordering::Relaxed);
                }
            }
            Err(e) => {
                // Put the counts back; the next flush retries.
                for (_, st, pending, _) in batch {
                    for (day, counts) in pending {
                        for (slot, n) in counts.iter().enumerate() {
                            if *n > 0 {
                                st.add(day, slot, *n);
                            }
                        }
                    }
                }
                return Err(e);
            }
        }
        self.refresh_quotas(&states)
    }

    fn write_batch(&self, batch: &[FlushItem]) -> Result<()> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO api_key_usage (key_id, day, kind, calls) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (key_id, day, kind) DO UPDATE SET calls = calls + excluded.calls",
            )?;
            let mut touch = tx.prepare_cached(
                "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) \
                 WHERE id = ?1",
            )?;
            for (id, _, pending, last_used) in batch {
                for (day, counts) in pending {
                    for (slot, n) in counts.iter().enumerate() {
                        if *n == 0 {
                            continue;
                        }
                        let kind = if slot == 0 {
                            REQUESTS_KIND
                        } else {
                            Scope::ALL[slot - 1].as_str()
                        };
                        upsert.execute(params![id, day, kind, to_db_i64(*n)])?;
                    }
                }
                if *last_used > 0 {
                    touch.execute(params![id, last_used])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// After a flush the database holds every process's flushed requests: re-base each
    /// lineage's monthly count on it plus what this process has buffered since.
    fn refresh_quotas(&self, states: &[(i64, Arc<KeyState>)]) -> Result<()> {
        let lineages: Vec<(i64, Arc<LineageState>)> = self
            .lineages
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, s)| (*id, Arc::clone(s)))
            .collect();
        for (lineage_id, ls) in lineages {
            let mut l = lock(&ls.inner);
            let month = l.month;
            let (start, end) = month_day_range(month);
            let in_db = self.month_requests_in_db(lineage_id, month)?;
            let buffered: u64 = states
                .iter()
                .filter(|(_, s)| s.lineage_id == lineage_id)
                .map(|(_, s)| {
                    lock(&s.pending)
                        .iter()
                        .filter(|(d, _)| *d >= start && *d < end)
                        .map(|(_, c)| c[0])
                        .sum::<u64>()
                })
                .sum();
            l.used = in_db + buffered;
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Last handle gone: write what is buffered. Errors cannot be reported from drop.
        let _ = self.flush();
    }
}
