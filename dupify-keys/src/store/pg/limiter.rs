//! The rate limit and the monthly quota on PostgreSQL, shared by every process: each check
//! is one transaction on the lineage's `api_key_limiter` row.
//!
//! 1. [`LOCK_SQL`] creates the row if needed and locks it (`INSERT … ON CONFLICT DO UPDATE`
//!    takes the row lock and returns the latest committed version, whatever the snapshot);
//!    every other check of the lineage, in any process, now waits.
//! 2. The decision is taken here, with the same sliding-window log as the SQLite store
//!    ([`Window`]): admissions older than 60 s are dropped, the rest counted.
//! 3. On admission [`ADMIT_SQL`] writes the window (with this admission), the month's count
//!    and the day's `requests` counter in one statement, and the transaction commits: the
//!    quota is durable per admission. A refusal writes nothing.
//!
//! The window row holds at most `per_minute` times (8 bytes each), read and written per
//! admission: cheap for the hosted tiers (up to 1,000 a minute).

use super::schema::to_db_i64;
use super::{PgConn, PgInner};
use crate::clock::{day_of, month_day_range, month_of_day};
use crate::error::{DbContext, Result};
use crate::limits::{ceil_secs, RateDecision, RateHeaders, Step, Window};
use crate::store::Principal;

/// `$1` lineage, `$2` month: the lineage's row, created empty for this month if missing, and
/// locked until the transaction ends.
pub(super) const LOCK_SQL: &str = "\
    INSERT INTO api_key_limiter (lineage_id, admitted, month, used) \
    VALUES ($1, '{}', $2, 0) \
    ON CONFLICT (lineage_id) DO UPDATE SET used = api_key_limiter.used \
    RETURNING admitted, month, used";

/// `$1` lineage, `$2` window, `$3` month, `$4` month's count, `$5` key, `$6` day.
pub(super) const ADMIT_SQL: &str = "\
    WITH w AS ( \
        UPDATE api_key_limiter SET admitted = $2, month = $3, used = $4 WHERE lineage_id = $1 \
    ) \
    INSERT INTO api_key_usage (key_id, day, kind, calls) VALUES ($5, $6, 'requests', 1) \
    ON CONFLICT (key_id, day, kind) DO UPDATE SET calls = api_key_usage.calls + 1";

/// `$1` lineage, `$2` month, `$3` key, `$4` day: gives one admission back to the quota and
/// the usage, never below zero, in one statement. The window keeps it (see `release`).
pub(super) const RELEASE_SQL: &str = "\
    WITH q AS ( \
        UPDATE api_key_limiter SET used = used - 1 \
        WHERE lineage_id = $1 AND month = $2 AND used > 0 \
    ) \
    UPDATE api_key_usage SET calls = calls - 1 \
    WHERE key_id = $3 AND day = $4 AND kind = 'requests' AND calls > 0";

const CTX: &str = "checking the rate limit";

impl PgInner {
    /// See [`KeyStore::check_rate`](crate::KeyStore::check_rate): a database failure refuses
    /// the request for a second (failing closed keeps the limits).
    pub(in crate::store) fn check_rate(&self, principal: &Principal) -> RateDecision {
        self.try_check_rate(principal).unwrap_or_else(|_| {
            let now_s = i64::try_from(self.clock.now().as_secs()).unwrap_or(i64::MAX);
            RateDecision::RateLimited {
                retry_after_secs: 1,
                headers: RateHeaders {
                    limit: principal.limits.per_minute,
                    remaining: 0,
                    reset: now_s.saturating_add(1),
                    monthly_limit: principal.limits.monthly,
                    monthly_remaining: None,
                },
            }
        })
    }

    /// Applies the monthly quota and the per-minute limit in one transaction (module docs).
    pub(in crate::store) fn try_check_rate(&self, principal: &Principal) -> Result<RateDecision> {
        let now = self.clock.now();
        let now_ns = i64::try_from(now.as_nanos()).unwrap_or(i64::MAX);
        let now_s = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let day = day_of(now_s);
        let month = month_of_day(day);
        let mut conn = self.conn(CTX)?;
        let PgConn { client, st } = &mut *conn;
        let mut tx = client.transaction().db(CTX)?;
        let row = tx
            .query_one(&st.lock_limiter, &[&principal.lineage_id, &month])
            .db(CTX)?;
        let admitted: Vec<i64> = row.try_get(0).db(CTX)?;
        let row_month: i64 = row.try_get(1).db(CTX)?;
        let row_used: i64 = row.try_get(2).db(CTX)?;
        // A new month starts the count again; the window carries over.
        let used = if row_month == month {
            u64::try_from(row_used).unwrap_or(0)
        } else {
            0
        };
        let mut window = Window::from_admitted(admitted);
        let decision = decide(principal, &mut window, used, now_ns, now_s, month);
        if decision.is_allowed() {
            let admitted = window.admitted();
            tx.execute(
                &st.admit,
                &[
                    &principal.lineage_id,
                    &admitted,
                    &month,
                    &to_db_i64(used + 1),
                    &principal.key_id,
                    &day,
                ],
            )
            .db(CTX)?;
            tx.commit().db(CTX)?;
            self.admitted(principal.key_id, day);
        } else {
            // A refusal wrote nothing: end the transaction, releasing the row lock.
            tx.rollback().db(CTX)?;
        }
        Ok(decision)
    }

    /// See [`KeyStore::release`](crate::KeyStore::release): gives back, in the database, one
    /// request this process admitted for the key today and has not given back yet. A
    /// database error leaves it counted (and releasable again).
    pub(in crate::store) fn release(&self, principal: &Principal) {
        let day = day_of(i64::try_from(self.clock.now().as_secs()).unwrap_or(i64::MAX));
        if !self.take_releasable(principal.key_id, day) {
            return;
        }
        let done = self.conn("releasing a request").and_then(|mut conn| {
            let PgConn { client, st } = &mut *conn;
            client
                .execute(
                    &st.release,
                    &[
                        &principal.lineage_id,
                        &month_of_day(day),
                        &principal.key_id,
                        &day,
                    ],
                )
                .db("releasing a request")
        });
        if done.is_err() {
            self.admitted(principal.key_id, day);
        }
    }
}

/// The quota, then the window, as the SQLite store decides (same headers). When it allows,
/// the window has taken `now_ns`; the caller writes it and counts the request.
fn decide(
    principal: &Principal,
    window: &mut Window,
    used: u64,
    now_ns: i64,
    now_s: i64,
    month: i64,
) -> RateDecision {
    let limits = principal.limits;
    let resets_at = month_day_range(month).1 * 86_400;
    let header = |remaining: u32, reset_ns: i64, monthly_remaining: Option<u64>| RateHeaders {
        limit: limits.per_minute,
        remaining,
        reset: ceil_secs(reset_ns),
        monthly_limit: limits.monthly,
        monthly_remaining,
    };
    if let Some(limit) = limits.monthly {
        if used >= limit {
            let available = window.available(limits.per_minute, now_ns);
            return RateDecision::QuotaExceeded {
                used,
                limit,
                resets_at,
                retry_after_secs: u64::try_from(resets_at - now_s).unwrap_or(0),
                headers: header(available, window.full_at(now_ns), Some(0)),
            };
        }
    }
    match window.peek(limits.per_minute, now_ns) {
        Step::Denied {
            retry_after_ns,
            reset_ns,
        } => RateDecision::RateLimited {
            retry_after_secs: u64::try_from(ceil_secs(retry_after_ns)).unwrap_or(0).max(1),
            headers: header(0, reset_ns, limits.monthly.map(|m| m.saturating_sub(used))),
        },
        Step::Allowed {
            remaining,
            reset_ns,
        } => {
            window.take(now_ns);
            RateDecision::Allowed {
                headers: header(
                    remaining,
                    reset_ns,
                    limits.monthly.map(|m| m.saturating_sub(used + 1)),
                ),
            }
        }
    }
}
