//! Verification: keys are stored as `HMAC-SHA-256(pepper, key)`, found through the unique hash
//! index with a statement prepared once per read connection, and re-checked in constant time.

use ring::hmac;
use rusqlite::{OptionalExtension, Statement};

use super::schema::{env_from_db, limits_from_db};
use super::{Inner, KeyStatus, Principal};
use crate::error::{DbContext, Error, Result};
use crate::key::{Environment, ParsedKey};
use crate::limits::Limits;
use crate::scope::ScopeSet;

pub(super) const LOOKUP_SQL: &str =
    "SELECT id, lineage_id, env, hash, all_scopes, scopes, rate_per_minute, \
     monthly_quota, expires_at, revoked_at FROM api_keys WHERE hash = ?1";

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

impl Inner {
    /// `HMAC-SHA-256(pepper, secret)`: what the database stores for a key.
    pub(super) fn sign(&self, secret: &[u8]) -> hmac::Tag {
        hmac::sign(&self.mac, secret)
    }

    /// Verifies a format-checked key against its row (see [`super::KeyStore::verify`]).
    pub(super) fn verify(&self, key: ParsedKey<'_>) -> Result<Principal> {
        let secret = key.expose().as_bytes();
        let tag = self.sign(secret);
        let row = self
            .with_lookup(|st| lookup(st, tag.as_ref()).db("looking up a key"))?
            .ok_or(Error::UnknownApiKey)?;
        // The index found the row by the tag; confirm in constant time.
        hmac::verify(&self.mac, secret, &row.hash).map_err(|_| Error::UnknownApiKey)?;
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
        self.touch(row.id, now);
        Ok(Principal {
            key_id: row.id,
            lineage_id: row.lineage_id,
            env: row.env,
            scopes: row.scopes,
            limits: row.limits,
        })
    }
}
