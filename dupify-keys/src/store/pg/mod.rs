//! The key store on PostgreSQL (cargo feature `postgres`): the same behaviour as the SQLite
//! store, for several app servers sharing one database.
//!
//! ## What differs from SQLite, and why
//! - **Limits are shared by every process.** The per-minute window (the admission times of the
//!   last 60 s, in `api_key_admissions`) and the month's admitted count of a lineage are
//!   guarded by one row of `api_key_limiter`. Each check locks that row, drops the expired
//!   admissions, decides, and on admission records it with the counts, in one transaction:
//!   N processes together never admit more than the limit in any 60 s, nor past the quota.
//! - **Admissions are durable.** The quota count and the `requests` usage counter are
//!   committed with each admission, so a process killed with SIGKILL loses none of them.
//!   Scope counters and `last_used_at` are still buffered and flushed like SQLite's (they
//!   limit nothing).
//! - **Time comes from the store's clock**, as on SQLite (so a host's `ManualClock` works): app
//!   servers sharing a database must keep their clocks in sync (NTP). A process whose clock
//!   runs δ ahead sees admissions leave the window δ early: the limit then holds for any
//!   60 s − δ, which with NTP's milliseconds is the limit as documented.
//! - **A database failure never admits.** `check_rate` answers a failed check with a
//!   one-second `RateLimited` (a request that could not be counted must not run);
//!   `try_check_rate` hands the error to hosts that prefer a 500.
//! - Connections come from an `r2d2` pool; each connection prepares the statements of the hot
//!   path (key lookup, limiter) once, when it is opened, and is checked with an empty query
//!   when it is lent, so a server restart costs no failed request. Connections are plain TCP
//!   or unix sockets (no TLS in this build): keep the database on a private network.

mod limiter;
mod schema;
mod usage;

use std::sync::{mpsc, Arc, Mutex, Weak};
use std::time::Duration;

use postgres::{Client, NoTls, Statement};
use ring::hmac;

use super::{CreatedKey, KeyRecord, KeySpec, KeyStatus, Principal, StoreOptions};
use crate::clock::Clock;
use crate::error::{DbContext, Error, Result};
use crate::key::{ParsedKey, SecretKey};
use crate::limits::Limits;
use crate::scope::ScopeSet;
use dupify_types::location::redact_url;

use schema::{env_from_db, limits_from_db, record_from_row, to_db_i64, RECORD_COLS};
use usage::Buffer;

/// The state shared by every clone of a PostgreSQL-backed [`super::KeyStore`].
pub(in crate::store) struct PgInner {
    mac: hmac::Key,
    pool: r2d2::Pool<Manager>,
    clock: Arc<dyn Clock>,
    /// Scope counters and last uses not yet flushed, and this process's releasable admissions.
    buffer: Mutex<Buffer>,
    flush_lock: Mutex<()>,
    /// Dropping it stops the background flusher.
    _stop: Option<mpsc::Sender<()>>,
}

/// A pooled connection with the hot path's statements prepared on it.
pub(super) struct PgConn {
    client: Client,
    st: Statements,
}

/// Statements prepared once per connection.
struct Statements {
    lookup: Statement,
    record: Statement,
    lock_limiter: Statement,
    window: Statement,
    admit: Statement,
    release: Statement,
}

impl Statements {
    fn prepare(c: &mut Client) -> std::result::Result<Statements, postgres::Error> {
        Ok(Statements {
            lookup: c.prepare(
                "SELECT id, lineage_id, env, hash, all_scopes, scopes, rate_per_minute, \
                 monthly_quota, expires_at, revoked_at FROM api_keys WHERE hash = $1",
            )?,
            record: c.prepare(&format!("SELECT {RECORD_COLS} FROM api_keys WHERE id = $1"))?,
            lock_limiter: c.prepare(limiter::LOCK_SQL)?,
            window: c.prepare(limiter::WINDOW_SQL)?,
            admit: c.prepare(limiter::ADMIT_SQL)?,
            release: c.prepare(limiter::RELEASE_SQL)?,
        })
    }
}

/// Opens connections for the pool: connects, sets the lock timeout, prepares the statements.
struct Manager {
    config: postgres::Config,
    /// `lock_timeout` in ms: how long a statement waits for a row another connection holds
    /// (the store's `busy_timeout`, as SQLite's busy timeout).
    lock_timeout_ms: u128,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<PgConn, postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        client.batch_execute(&format!("SET lock_timeout = {}", self.lock_timeout_ms))?;
        let st = Statements::prepare(&mut client)?;
        Ok(PgConn { client, st })
    }

    fn is_valid(&self, conn: &mut PgConn) -> std::result::Result<(), postgres::Error> {
        conn.client.batch_execute("")
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        // A connection that failed mid-request is closed: discard it on its return.
        conn.client.is_closed()
    }
}

impl PgInner {
    /// Connects, creates or migrates the schema, and starts the pool and the flusher.
    pub(in crate::store) fn open(
        url: &str,
        pepper: &[u8],
        options: StoreOptions,
    ) -> Result<Arc<PgInner>> {
        let mut config: postgres::Config =
            url.parse()
                .map_err(|e: postgres::Error| Error::InvalidDatabaseUrl {
                    url: redact_url(url),
                    reason: e.to_string(),
                })?;
        if config.get_application_name().is_none() {
            config.application_name("dupify-keys");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let mut first = config.connect(NoTls).db("connecting to the key database")?;
        schema::migrate(&mut first)?;
        drop(first);
        let manager = Manager {
            config,
            lock_timeout_ms: options.busy_timeout.as_millis().max(1),
        };
        let pool = r2d2::Pool::builder()
            .max_size(options.max_connections.max(1))
            .min_idle(Some(1))
            // One empty query per checkout: after the server restarts or drops connections,
            // the dead ones are replaced before a request uses them, rather than failing one
            // request each.
            .test_on_check_out(true)
            .connection_timeout(options.busy_timeout.max(Duration::from_secs(1)))
            .build(manager)
            .db("opening the connection pool")?;
        let (tx, rx) = mpsc::channel::<()>();
        let inner = Arc::new(PgInner {
            mac: hmac::Key::new(hmac::HMAC_SHA256, pepper),
            pool,
            clock: options.clock,
            buffer: Mutex::new(Buffer::default()),
            flush_lock: Mutex::new(()),
            _stop: Some(tx),
        });
        let weak: Weak<PgInner> = Arc::downgrade(&inner);
        let interval = options.flush_interval;
        // As on SQLite: a weak handle, stopped when the store is dropped; a failed flush keeps
        // its counts and is retried at the next tick.
        std::thread::Builder::new()
            .name("dupify-keys-pg-flush".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(interval) {
                    match weak.upgrade() {
                        Some(inner) => {
                            let _ = inner.flush();
                        }
                        None => break,
                    }
                }
            })
            .map_err(|e| Error::Internal {
                reason: format!("could not start the usage flusher thread: {e}"),
            })?;
        Ok(inner)
    }

    /// A pooled connection.
    fn conn(&self, context: &'static str) -> Result<r2d2::PooledConnection<Manager>> {
        self.pool.get().db(context)
    }

    fn now_secs(&self) -> i64 {
        i64::try_from(self.clock.now().as_secs()).unwrap_or(i64::MAX)
    }

    fn sign(&self, secret: &[u8]) -> hmac::Tag {
        hmac::sign(&self.mac, secret)
    }

    pub(in crate::store) fn create(
        &self,
        name: &str,
        spec: &KeySpec,
        key: SecretKey,
    ) -> Result<CreatedKey> {
        const CTX: &str = "creating a key";
        let tag = self.sign(key.expose().as_bytes());
        let now = self.now_secs();
        let mut conn = self.conn(CTX)?;
        // The first key of a lineage is its own lineage: take the id first, in the statement.
        let row = conn
            .client
            .query_one(
                &format!(
                    "WITH n AS (SELECT nextval(pg_get_serial_sequence('api_keys', 'id')) AS id) \
                     INSERT INTO api_keys (id, lineage_id, name, env, hash, preview, all_scopes, \
                     scopes, rate_per_minute, monthly_quota, created_at, expires_at) \
                     SELECT n.id, n.id, $1::text, $2::text, $3::bytea, $4::text, $5::boolean, \
                     $6::text, $7::bigint, $8::bigint, $9::bigint, $10::bigint FROM n \
                     RETURNING {RECORD_COLS}"
                ),
                &[
                    &name,
                    &spec.env.as_str(),
                    &tag.as_ref(),
                    &key.preview(),
                    &spec.scopes.is_all(),
                    &spec.scopes.to_db(),
                    &i64::from(spec.limits.per_minute),
                    &spec.limits.monthly.map(to_db_i64),
                    &now,
                    &spec.expires_at,
                ],
            )
            .db(CTX)?;
        let record = record_from_row(&row, now)?;
        Ok(CreatedKey { key, record })
    }

    pub(in crate::store) fn list(&self) -> Result<Vec<KeyRecord>> {
        const CTX: &str = "listing keys";
        let now = self.now_secs();
        let rows = self
            .conn(CTX)?
            .client
            .query(
                &format!("SELECT {RECORD_COLS} FROM api_keys ORDER BY id"),
                &[],
            )
            .db(CTX)?;
        rows.iter()
            .map(|r| {
                let mut rec = record_from_row(r, now)?;
                self.merge_last_used(&mut rec);
                Ok(rec)
            })
            .collect()
    }

    pub(in crate::store) fn get(&self, id: i64) -> Result<KeyRecord> {
        const CTX: &str = "reading a key";
        let now = self.now_secs();
        let mut conn = self.conn(CTX)?;
        let PgConn { client, st } = &mut *conn;
        let row = client
            .query_opt(&st.record, &[&id])
            .db(CTX)?
            .ok_or(Error::KeyNotFound { id })?;
        let mut rec = record_from_row(&row, now)?;
        self.merge_last_used(&mut rec);
        Ok(rec)
    }

    fn merge_last_used(&self, r: &mut KeyRecord) {
        if let Some(mem) = self.last_used_in_memory(r.id) {
            if r.last_used_at.is_none_or(|d| d < mem) {
                r.last_used_at = Some(mem);
            }
        }
    }

    pub(in crate::store) fn revoke(&self, id: i64) -> Result<()> {
        const CTX: &str = "revoking a key";
        let now = self.now_secs();
        let mut conn = self.conn(CTX)?;
        // One statement: revoke unless already revoked by then, and tell an unknown id apart.
        let exists: bool = conn
            .client
            .query_one(
                "WITH r AS (UPDATE api_keys SET revoked_at = $2 \
                 WHERE id = $1 AND (revoked_at IS NULL OR revoked_at > $2)) \
                 SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $1)",
                &[&id, &now],
            )
            .and_then(|r| r.try_get(0))
            .db(CTX)?;
        if exists {
            Ok(())
        } else {
            Err(Error::KeyNotFound { id })
        }
    }

    pub(in crate::store) fn regenerate(&self, id: i64, grace_secs: i64) -> Result<CreatedKey> {
        const CTX: &str = "regenerating a key";
        let now = self.now_secs();
        let mut conn = self.conn(CTX)?;
        let mut tx = conn.client.transaction().db(CTX)?;
        // Lock the old key: two concurrent regenerations of one key cannot both succeed.
        let old = tx
            .query_opt(
                &format!("SELECT {RECORD_COLS} FROM api_keys WHERE id = $1 FOR UPDATE"),
                &[&id],
            )
            .db(CTX)?
            .ok_or(Error::KeyNotFound { id })?;
        let old = record_from_row(&old, now)?;
        if old.status != KeyStatus::Active {
            return Err(Error::KeyNotActive {
                id,
                status: old.status.as_str(),
            });
        }
        let key = SecretKey::generate(old.env)?;
        let tag = self.sign(key.expose().as_bytes());
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO api_keys (lineage_id, name, env, hash, preview, all_scopes, \
                     scopes, rate_per_minute, monthly_quota, created_at, expires_at) \
                     SELECT lineage_id, name, env, $2::bytea, $3::text, all_scopes, scopes, \
                     rate_per_minute, monthly_quota, $4::bigint, expires_at \
                     FROM api_keys WHERE id = $1 RETURNING {RECORD_COLS}"
                ),
                &[&id, &tag.as_ref(), &key.preview(), &now],
            )
            .db(CTX)?;
        let record = record_from_row(&row, now)?;
        tx.execute(
            "UPDATE api_keys SET revoked_at = $2, replaced_by = $3 WHERE id = $1",
            &[&id, &now.saturating_add(grace_secs), &record.id],
        )
        .db(CTX)?;
        tx.commit().db(CTX)?;
        Ok(CreatedKey { key, record })
    }

    pub(in crate::store) fn set_limits(&self, id: i64, limits: Limits) -> Result<()> {
        const CTX: &str = "setting a key's limits";
        let n = self
            .conn(CTX)?
            .client
            .execute(
                "UPDATE api_keys SET rate_per_minute = $2, monthly_quota = $3 WHERE id = $1",
                &[
                    &id,
                    &i64::from(limits.per_minute),
                    &limits.monthly.map(to_db_i64),
                ],
            )
            .db(CTX)?;
        if n == 0 {
            return Err(Error::KeyNotFound { id });
        }
        Ok(())
    }

    /// Verifies a format-checked key against its row, read on every call (no status cache, so
    /// a revocation committed by any process is seen by the next request), found by its HMAC
    /// tag through the unique index and re-checked in constant time.
    pub(in crate::store) fn verify(&self, key: ParsedKey<'_>) -> Result<Principal> {
        const CTX: &str = "looking up a key";
        let secret = key.expose().as_bytes();
        let tag = self.sign(secret);
        let row = {
            let mut conn = self.conn(CTX)?;
            let PgConn { client, st } = &mut *conn;
            client.query_opt(&st.lookup, &[&tag.as_ref()]).db(CTX)?
        }
        .ok_or(Error::UnknownApiKey)?;
        let id: i64 = row.try_get(0).db(CTX)?;
        let hash: &[u8] = row.try_get(3).db(CTX)?;
        hmac::verify(&self.mac, secret, hash).map_err(|_| Error::UnknownApiKey)?;
        let env = env_from_db(id, row.try_get(2).db(CTX)?)?;
        if env != key.environment() {
            return Err(Error::UnknownApiKey);
        }
        let expires_at: Option<i64> = row.try_get(8).db(CTX)?;
        let revoked_at: Option<i64> = row.try_get(9).db(CTX)?;
        let now = self.now_secs();
        match KeyStatus::of(now, expires_at, revoked_at) {
            KeyStatus::Revoked => return Err(Error::RevokedApiKey),
            KeyStatus::Expired => {
                return Err(Error::ExpiredApiKey {
                    expired_at: expires_at.unwrap_or(now),
                })
            }
            KeyStatus::Active | KeyStatus::Rotating => {}
        }
        self.touch(id, now);
        Ok(Principal {
            key_id: id,
            lineage_id: row.try_get(1).db(CTX)?,
            env,
            scopes: ScopeSet::from_db(row.try_get(4).db(CTX)?, row.try_get(5).db(CTX)?),
            limits: limits_from_db(row.try_get(6).db(CTX)?, row.try_get(7).db(CTX)?),
        })
    }
}

impl Drop for PgInner {
    fn drop(&mut self) {
        // Last handle gone: write the buffered scope counters. Errors cannot be reported here.
        let _ = self.flush();
    }
}
