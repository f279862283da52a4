//! Rate limit and monthly quota: per-lineage limiter state (the sliding window and the month's admitted
//! requests), seeded from the database and re-based on it after every flush.

use std::sync::{Arc, Mutex};

use rusqlite::params;

use super::usage::{KeyState, REQUESTS_KIND};
use super::{lock, Inner, Principal};
use crate::clock::{day_of, month_day_range, month_of_day};
use crate::error::{DbContext, Result};
use crate::limits::{ceil_secs, RateDecision, RateHeaders, Step, Window};

/// Per-lineage limiter state.
pub(super) struct LineageState {
    inner: Mutex<LineageInner>,
}

struct LineageInner {
    window: Window,
    /// Month id the count belongs to.
    month: i64,
    /// Requests admitted this month (database total at last refresh + admitted since).
    used: u64,
}

impl Inner {
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
                    window: Window::default(),
                    month,
                    used,
                }),
            })
        }))
    }

    fn month_requests_in_db(&self, lineage_id: i64, month: i64) -> Result<u64> {
        let (start, end) = month_day_range(month);
        let n: i64 = self.with_conn(|c| {
            c.prepare_cached(
                "SELECT COALESCE(SUM(u.calls), 0) FROM api_key_usage u \
                 JOIN api_keys k ON k.id = u.key_id \
                 WHERE k.lineage_id = ?1 AND u.kind = ?2 AND u.day >= ?3 AND u.day < ?4",
            )
            .and_then(|mut st| {
                st.query_row(params![lineage_id, REQUESTS_KIND, start, end], |r| r.get(0))
            })
            .db("counting the month's requests")
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
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
        let lineage = self.lineage_state(principal.lineage_id, month);
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
                let available = l.window.available(limits.per_minute, now_ns);
                return RateDecision::QuotaExceeded {
                    used: l.used,
                    limit,
                    resets_at,
                    retry_after_secs: u64::try_from(resets_at - now_s).unwrap_or(0),
                    headers: header(available, l.window.full_at(now_ns), Some(0)),
                };
            }
        }
        match l.window.peek(limits.per_minute, now_ns) {
            Step::Denied {
                retry_after_ns,
                reset_ns,
            } => RateDecision::RateLimited {
                retry_after_secs: u64::try_from(ceil_secs(retry_after_ns)).unwrap_or(0).max(1),
                headers: header(0, reset_ns, monthly_remaining),
            },
            Step::Allowed {
                remaining,
                reset_ns,
            } => {
                l.window.take(now_ns);
                l.used += 1;
                self.count_request(principal.key_id, principal.lineage_id, day);
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

    /// See [`KeyStore::release`](super::KeyStore::release).
    pub(super) fn release(&self, principal: &Principal) {
        let day = day_of(i64::try_from(self.clock.now().as_secs()).unwrap_or(i64::MAX));
        let taken_back = self
            .key_state(principal.key_id, principal.lineage_id)
            .take_back_request(day);
        if taken_back {
            let lineage = self.lineage_state(principal.lineage_id, month_of_day(day));
            let mut l = lock(&lineage.inner);
            l.used = l.used.saturating_sub(1);
        }
    }

    /// After a flush the database holds every process's flushed requests: re-base each
    /// lineage's monthly count on it plus what this process has buffered since.
    pub(super) fn refresh_quotas(&self, states: &[(i64, Arc<KeyState>)]) -> Result<()> {
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
                .map(|(_, s)| s.buffered_requests(start, end))
                .sum();
            l.used = in_db + buffered;
        }
        Ok(())
    }
}
