//! The rate limit and the monthly quota on PostgreSQL, shared by every process: each check
//! is one transaction under the lineage's `api_key_limiter` row lock.
//!
//! 1. [`LOCK_SQL`] creates the row if needed and locks it (`INSERT … ON CONFLICT DO UPDATE`
//!    takes the row lock and returns the latest committed version, whatever the snapshot);
//!    every other check of the lineage, in any process, now waits.
//! 2. [`WINDOW_SQL`] drops the lineage's admissions older than 60 s from
//!    `api_key_admissions` and reads the oldest and newest of the rest; with the count kept
//!    in the limiter row that is all the sliding-window decision needs ([`WindowView`], the
//!    same decision the SQLite store takes on its in-memory log). Index look-ups only: the
//!    cost does not grow with the limit.
//! 3. On admission [`ADMIT_SQL`] inserts the admission and writes the count, the month's
//!    quota count and the day's `requests` counter in one statement, and the transaction
//!    commits: the quota is durable per admission. A refusal rolls back and writes nothing.

use super::schema::to_db_i64;
use super::{PgConn, PgInner};
use crate::clock::{day_of, month_day_range, month_of_day};
use crate::error::{DbContext, Result};
use crate::limits::{ceil_secs, window_start, RateDecision, RateHeaders, Step, WindowView};
use crate::store::Principal;

/// `$1` lineage, `$2` month: the lineage's row (admissions in the window, month, month's
/// count), created empty for this month if missing, and locked until the transaction ends.
pub(super) const LOCK_SQL: &str = "\
    INSERT INTO api_key_limiter (lineage_id, in_window, month, used) \
    VALUES ($1, 0, $2, 0) \
    ON CONFLICT (lineage_id) DO UPDATE SET used = api_key_limiter.used \
    RETURNING in_window, month, used";

/// `$1` lineage, `$2` window start (ns): deletes the admissions at or before it and returns
/// how many went, and the oldest and newest admission left. (The sub-queries see the rows as
/// before the delete, hence their own `at_ns > $2`.)
pub(super) const WINDOW_SQL: &str = "\
    WITH gone AS ( \
        DELETE FROM api_key_admissions WHERE lineage_id = $1 AND at_ns <= $2 RETURNING 1 \
    ) \
    SELECT (SELECT count(*) FROM gone), \
        (SELECT min(at_ns) FROM api_key_admissions WHERE lineage_id = $1 AND at_ns > $2), \
        (SELECT max(at_ns) FROM api_key_admissions WHERE lineage_id = $1 AND at_ns > $2)";

/// `$1` lineage, `$2` admissions in the window (this one included), `$3` month, `$4` month's
/// count, `$5` key, `$6` day, `$7` this admission (ns).
pub(super) const ADMIT_SQL: &str = "\
    WITH l AS ( \
        UPDATE api_key_limiter SET in_window = $2, month = $3, used = $4 \
        WHERE lineage_id = $1 \
    ), a AS ( \
        INSERT INTO api_key_admissions (lineage_id, at_ns) VALUES ($1, $7) \
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
        let in_window: i64 = row.try_get(0).db(CTX)?;
        let row_month: i64 = row.try_get(1).db(CTX)?;
        let row_used: i64 = row.try_get(2).db(CTX)?;
        // A new month starts the count again; the window carries over.
        let used = if row_month == month {
            u64::try_from(row_used).unwrap_or(0)
        } else {
            0
        };
        let row = tx
            .query_one(&st.window, &[&principal.lineage_id, &window_start(now_ns)])
            .db(CTX)?;
        let gone: i64 = row.try_get(0).db(CTX)?;
        let view = WindowView {
            len: u64::try_from(in_window.saturating_sub(gone)).unwrap_or(0),
            oldest: row.try_get(1).db(CTX)?,
            newest: row.try_get(2).db(CTX)?,
        };
        let decision = decide(principal, view, used, now_ns, now_s, month);
        if decision.is_allowed() {
            tx.execute(
                &st.admit,
                &[
                    &principal.lineage_id,
                    &to_db_i64(view.len + 1),
                    &month,
                    &to_db_i64(used + 1),
                    &principal.key_id,
                    &day,
                    &now_ns,
                ],
            )
            .db(CTX)?;
            tx.commit().db(CTX)?;
            self.admitted(principal.key_id, day);
        } else {
            // A refusal writes nothing (the expired admissions go with the next admission):
            // end the transaction, releasing the row lock.
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

/// The quota, then the window, as the SQLite store decides (same headers); `view` holds the
/// admissions of the window ending at `now_ns`. When it allows, the caller records the
/// admission and counts the request.
fn decide(
    principal: &Principal,
    view: WindowView,
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
            return RateDecision::QuotaExceeded {
                used,
                limit,
                resets_at,
                retry_after_secs: u64::try_from(resets_at - now_s).unwrap_or(0),
                headers: header(
                    view.available(limits.per_minute),
                    view.full_at(now_ns),
                    Some(0),
                ),
            };
        }
    }
    match view.peek(limits.per_minute, now_ns) {
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
        } => RateDecision::Allowed {
            headers: header(
                remaining,
                reset_ns,
                limits.monthly.map(|m| m.saturating_sub(used + 1)),
            ),
        },
    }
}
