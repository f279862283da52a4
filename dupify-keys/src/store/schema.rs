//! The database layout: the tables and indexes (created on open), and how their rows map to
//! the store's types.

use rusqlite::{Connection, OptionalExtension};

use super::{KeyRecord, KeyStatus};
use crate::error::{DbContext, Error, Result};
use crate::key::Environment;
use crate::limits::Limits;
use crate::scope::ScopeSet;

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
CREATE TABLE IF NOT EXISTS api_key_quota_claims (
    lineage_id INTEGER NOT NULL,
    month      INTEGER NOT NULL,
    claimed    INTEGER NOT NULL CHECK (claimed >= 0),
    PRIMARY KEY (lineage_id, month)
) WITHOUT ROWID;
PRAGMA user_version = 2;
";

pub(super) const RECORD_COLS: &str = "id, lineage_id, name, env, preview, all_scopes, scopes, \
     rate_per_minute, monthly_quota, created_at, expires_at, revoked_at, last_used_at, replaced_by";

pub(super) fn init_schema(conn: &Connection) -> Result<()> {
    conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))
        .db("creating the schema")?;
    Ok(())
}

pub(super) fn get_record(c: &Connection, id: i64, now: i64) -> Result<KeyRecord> {
    let mut st = c
        .prepare_cached(&format!("SELECT {RECORD_COLS} FROM api_keys WHERE id = ?1"))
        .db("reading a key")?;
    st.query_row([id], |r| record_from_row(r, now))
        .optional()
        .db("reading a key")?
        .ok_or(Error::KeyNotFound { id })
}

pub(super) fn env_from_db(s: &str) -> rusqlite::Result<Environment> {
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

pub(super) fn limits_from_db(rate: i64, monthly: Option<i64>) -> Limits {
    Limits {
        per_minute: u32::try_from(rate).unwrap_or(u32::MAX).max(1),
        monthly: monthly.map(|m| u64::try_from(m).unwrap_or(0)),
    }
}

pub(super) fn record_from_row(r: &rusqlite::Row<'_>, now: i64) -> rusqlite::Result<KeyRecord> {
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

pub(super) fn to_db_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
