//! The store's public types: options, what to create, what is read back, who is calling.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::key::{Environment, SecretKey};
use crate::limits::Limits;
use crate::scope::{Scope, ScopeSet};

/// Store settings. Defaults: flush usage every 10 s, the system clock, wait up to 5 s for a
/// database lock held by another connection, at most 8 PostgreSQL connections.
#[derive(Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// How often buffered usage is written to the database.
    pub flush_interval: Duration,
    /// Time source (a [`crate::ManualClock`] in tests).
    pub clock: Arc<dyn Clock>,
    /// SQLite busy timeout; on PostgreSQL the `lock_timeout` of each connection and the
    /// longest wait for a pooled connection.
    pub busy_timeout: Duration,
    /// PostgreSQL: connections one store keeps at most (at least 1); a request beyond them
    /// waits up to `busy_timeout` for one. Size it so that every app server's stores together
    /// stay under the server's `max_connections`. The SQLite store opens its readers on demand
    /// and ignores it.
    pub max_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            flush_interval: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
            busy_timeout: Duration::from_secs(5),
            max_connections: 8,
        }
    }
}

impl StoreOptions {
    /// Sets the flush interval (at least 1 ms).
    pub fn with_flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d.max(Duration::from_millis(1));
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
    pub(super) fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Rotating => "rotating",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        }
    }

    pub(super) fn of(now: i64, expires_at: Option<i64>, revoked_at: Option<i64>) -> KeyStatus {
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

/// Returned once by [`KeyStore::create`](super::KeyStore::create) and
/// [`KeyStore::regenerate`](super::KeyStore::regenerate): the plaintext key and its record.
/// The plaintext cannot be retrieved again.
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
    pub(super) key_id: i64,
    pub(super) lineage_id: i64,
    pub(super) env: Environment,
    pub(super) scopes: ScopeSet,
    pub(super) limits: Limits,
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

dupify_types::setters! { StoreOptions {
    /// Sets the clock.
    with_clock(clock: Arc<dyn Clock>),
    /// Sets the busy timeout.
    with_busy_timeout(busy_timeout: Duration),
    /// Sets the most PostgreSQL connections a store keeps.
    with_max_connections(max_connections: u32),
} }

dupify_types::setters! { KeySpec {
    /// Sets the limits.
    with_limits(limits: Limits),
} }
