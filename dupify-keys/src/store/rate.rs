//! Rate limit and monthly quota: per-lineage limiter state (the sliding window, and the
//! monthly quota reserved in the database a block at a time).
//!
//! ## Why reservations
//! Usage counts are buffered in memory and written every flush interval, so a process killed
//! with SIGKILL (or by the OOM killer, or a power cut) loses up to one interval of counts. If
//! the quota were checked against those counts, a restart would hand out the lost calls
//! again. Instead every admission against a monthly quota spends a *reservation*: a process
//! reserves a block of calls in `api_key_quota_claims` in one committed transaction
//! (`synchronous=FULL`) before it admits any of them, and no reservation ever takes the
//! lineage's claimed total past its quota. So whatever happens to any process, the calls
//! admitted in a month never exceed the quota, across restarts and across processes sharing
//! the database. What a crash can lose is the other way round: the unspent part of each
//! block the dead process held, at most [`reservation_block`] calls per process and lineage,
//! which the customer then cannot use that month. A graceful stop
//! ([`KeyStore::shutdown`](super::KeyStore::shutdown), or dropping the store) hands the
//! unspent part back.

use std::sync::{Arc, Mutex};

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::usage::REQUESTS_KIND;
use super::{lock, Inner, Principal};
use crate::clock::{day_of, month_day_range, month_of_day};
use crate::error::{DbContext, Result};
use crate::limits::{ceil_secs, RateDecision, RateHeaders, Step, Window};

/// The calls reserved at once for a monthly quota of `limit`: 1% of it, between 1 and 64.
/// One calls per reservation for small quotas (a free tier's 50 loses nothing to a crash),
/// and at most one committed write per 64 admissions for large ones.
pub const fn reservation_block(limit: u64) -> u64 {
    let b = limit / 100;
    if b < 1 {
        1
    } else if b > 64 {
        64
    } else {
        b
    }
}

/// Per-lineage limiter state.
pub(super) struct LineageState {
    inner: Mutex<LineageInner>,
}

#[derive(Default)]
struct LineageInner {
    window: Window,
    /// Month id the reservation belongs to.
    month: i64,
    /// Reserved calls this process has not spent yet (for `month`).
    tokens: u64,
    /// The lineage's claimed total as of this process's last reservation.
    claimed: u64,
}

impl LineageInner {
    /// Calls of the month that count as used: every reservation made, less what this process
    /// still holds. Unspent reservations of other processes count as used until they are
    /// handed back, which errs on the side of the quota.
    fn consumed(&self) -> u64 {
        self.claimed.saturating_sub(self.tokens)
    }
}

impl Inner {
    fn lineage_state(&self, lineage_id: i64) -> Arc<LineageState> {
        if let Some(s) = self
            .lineages
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&lineage_id)
        {
            return Arc::clone(s);
        }
        let mut w = self.lineages.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(w.entry(lineage_id).or_insert_with(|| {
            Arc::new(LineageState {
                inner: Mutex::new(LineageInner::default()),
            })
        }))
    }

    /// Reserves up to `want` calls of `month` for `lineage_id` without taking the claimed
    /// total past `limit`, in one committed transaction. Returns (granted, claimed total).
    /// A lineage's first reservation of a month starts from the requests already recorded in
    /// its usage (stores written before reservations existed, or counts flushed by then).
    fn reserve(&self, lineage_id: i64, month: i64, limit: u64, want: u64) -> Result<(u64, u64)> {
        let (start, end) = month_day_range(month);
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db("reserving quota")?;
        let claimed: Option<i64> = tx
            .query_row(
                "SELECT claimed FROM api_key_quota_claims WHERE lineage_id = ?1 AND month = ?2",
                params![lineage_id, month],
                |r| r.get(0),
            )
            .optional()
            .db("reserving quota")?;
        let claimed = match claimed {
            Some(c) => u64::try_from(c).unwrap_or(0),
            None => {
                let recorded: i64 = tx
                    .query_row(
                        "SELECT COALESCE(SUM(u.calls), 0) FROM api_key_usage u \
                         JOIN api_keys k ON k.id = u.key_id \
                         WHERE k.lineage_id = ?1 AND u.kind = ?2 AND u.day >= ?3 AND u.day < ?4",
                        params![lineage_id, REQUESTS_KIND, start, end],
                        |r| r.get(0),
                    )
                    .db("reserving quota")?;
                u64::try_from(recorded).unwrap_or(0)
            }
        };
        let granted = want.min(limit.saturating_sub(claimed));
        let total = claimed + granted;
        tx.execute(
            "INSERT INTO api_key_quota_claims (lineage_id, month, claimed) VALUES (?1, ?2, ?3) \
             ON CONFLICT (lineage_id, month) DO UPDATE SET claimed = excluded.claimed",
            params![lineage_id, month, i64::try_from(total).unwrap_or(i64::MAX)],
        )
        .db("reserving quota")?;
        tx.commit().db("reserving quota")?;
        Ok((granted, total))
    }

    /// Applies the monthly quota and the per-minute rate limit to one request (see
    /// [`KeyStore::check_rate`](super::KeyStore::check_rate)).
    pub(super) fn check_rate(&self, principal: &Principal) -> RateDecision {
        let now = self.clock.now();
        let now_ns = i64::try_from(now.as_nanos()).unwrap_or(i64::MAX);
        let now_s = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let day = day_of(now_s);
        let month = month_of_day(day);
        let limits = principal.limits;
        let lineage = self.lineage_state(principal.lineage_id);
        let mut l = lock(&lineage.inner);
        if l.month != month {
            // A new month: last month's reservation is spent or void.
            l.month = month;
            l.tokens = 0;
            l.claimed = 0;
        }
        let header = |remaining: u32, reset_ns: i64, monthly_remaining: Option<u64>| RateHeaders {
            limit: limits.per_minute,
            remaining,
            reset: ceil_secs(reset_ns),
            monthly_limit: limits.monthly,
            monthly_remaining,
        };
        if let Some(limit) = limits.monthly {
            if l.tokens == 0 {
                match self.reserve(principal.lineage_id, month, limit, reservation_block(limit)) {
                    Ok((granted, claimed)) => {
                        l.tokens = granted;
                        l.claimed = claimed;
                    }
                    // The database cannot be written (locked past the busy timeout, disk
                    // full): admit on what this process knows, without a reservation, so an
                    // outage of the key database does not stop a key that has calls left.
                    Err(_) if l.consumed() < limit => {
                        l.tokens = 1;
                        l.claimed += 1;
                    }
                    Err(_) => {}
                }
            }
            if l.tokens == 0 {
                let resets_at = month_day_range(month).1 * 86_400;
                let available = l.window.available(limits.per_minute, now_ns);
                return RateDecision::QuotaExceeded {
                    used: l.consumed().max(limit),
                    limit,
                    resets_at,
                    retry_after_secs: u64::try_from(resets_at - now_s).unwrap_or(0),
                    headers: header(available, l.window.full_at(now_ns), Some(0)),
                };
            }
        }
        let monthly_remaining =
            |l: &LineageInner| limits.monthly.map(|m| m.saturating_sub(l.consumed()));
        match l.window.peek(limits.per_minute, now_ns) {
            Step::Denied {
                retry_after_ns,
                reset_ns,
            } => RateDecision::RateLimited {
                retry_after_secs: u64::try_from(ceil_secs(retry_after_ns)).unwrap_or(0).max(1),
                headers: header(0, reset_ns, monthly_remaining(&l)),
            },
            Step::Allowed {
                remaining,
                reset_ns,
            } => {
                l.window.take(now_ns);
                if limits.monthly.is_some() {
                    l.tokens -= 1;
                }
                self.count_request(principal.key_id, day);
                RateDecision::Allowed {
                    headers: header(remaining, reset_ns, monthly_remaining(&l)),
                }
            }
        }
    }

    /// See [`KeyStore::release`](super::KeyStore::release).
    pub(super) fn release(&self, principal: &Principal) {
        let day = day_of(i64::try_from(self.clock.now().as_secs()).unwrap_or(i64::MAX));
        let taken_back = self.key_state(principal.key_id).take_back_request(day);
        if taken_back && principal.limits.monthly.is_some() {
            let lineage = self.lineage_state(principal.lineage_id);
            let mut l = lock(&lineage.inner);
            if l.month == month_of_day(day) {
                // The call was spent from this process's reservation: it is unspent again.
                l.tokens += 1;
            }
        }
    }

    /// Hands every unspent reservation back to the database (graceful stop). Each lineage's
    /// claimed total goes down by what this process holds; the process can reserve again.
    pub(super) fn return_reservations(&self) -> Result<()> {
        let held: Vec<(i64, i64, u64)> = {
            let map = self.lineages.read().unwrap_or_else(|e| e.into_inner());
            map.iter()
                .filter_map(|(id, s)| {
                    let mut l = lock(&s.inner);
                    let t = std::mem::take(&mut l.tokens);
                    l.claimed = l.claimed.saturating_sub(t);
                    (t > 0).then_some((*id, l.month, t))
                })
                .collect()
        };
        if held.is_empty() {
            return Ok(());
        }
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db("returning quota reservations")?;
        for (lineage_id, month, tokens) in &held {
            tx.execute(
                "UPDATE api_key_quota_claims SET claimed = MAX(claimed - ?3, 0) \
                 WHERE lineage_id = ?1 AND month = ?2",
                params![
                    lineage_id,
                    month,
                    i64::try_from(*tokens).unwrap_or(i64::MAX)
                ],
            )
            .db("returning quota reservations")?;
        }
        tx.commit().db("returning quota reservations")
    }
}
