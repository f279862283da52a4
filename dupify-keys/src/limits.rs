//! Rate limits and monthly quotas.
//!
//! The per-minute limit is a sliding-window log: a key with `per_minute = n` is admitted
//! when it had fewer than `n` requests admitted in the 60 s before, so no 60-second window
//! ever holds more than `n` (it may send all `n` at once, then waits for the oldest to turn
//! 60 s old). `X-RateLimit-Reset` is when the whole allowance is free again. The monthly quota counts admitted requests per calendar month (UTC) and
//! resets at 00:00 UTC on the first day of the next month.
//!
//! Limits are enforced per *lineage*: a regenerated key shares the counters of the key it
//! replaced, so regenerating never resets a quota. The per-minute state lives in the process
//! (each process enforces its own window); the monthly quota is reserved in the database a
//! block at a time before calls are admitted (see [`crate::reservation_block`]), so several
//! processes on one database, or a process killed and restarted, never admit more than the
//! quota in a month.
//!
//! On PostgreSQL (a store opened with a `postgres://` URL) both live in the database instead:
//! every check locks the lineage's limiter row, so the window and the quota are exact across
//! all processes, and each admission is committed before it is reported.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The hosted plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// 50 calls a month, 10 a minute.
    Free,
    /// 1,000 calls a month, 60 a minute.
    Starter,
    /// 10,000 calls a month, 200 a minute.
    Pro,
    /// No monthly cap, 1,000 a minute.
    Unlimited,
}

/// A key's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limits {
    /// Requests in any 60-second window (all of them may come at once). At least 1.
    pub per_minute: u32,
    /// Requests per calendar month (UTC); `None` = no cap.
    pub monthly: Option<u64>,
}

impl Limits {
    /// The hosted tier's limits.
    pub const fn tier(tier: Tier) -> Limits {
        match tier {
            Tier::Free => Limits {
                per_minute: 10,
                monthly: Some(50),
            },
            Tier::Starter => Limits {
                per_minute: 60,
                monthly: Some(1_000),
            },
            Tier::Pro => Limits {
                per_minute: 200,
                monthly: Some(10_000),
            },
            Tier::Unlimited => Limits {
                per_minute: 1_000,
                monthly: None,
            },
        }
    }

    /// Custom limits; refuses a zero rate or a zero monthly quota (revoke the key instead).
    pub fn custom(per_minute: u32, monthly: Option<u64>) -> Result<Limits> {
        let l = Limits {
            per_minute,
            monthly,
        };
        l.validate()?;
        Ok(l)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.per_minute == 0 {
            return Err(Error::invalid("per_minute", "must be at least 1"));
        }
        if self.monthly == Some(0) {
            return Err(Error::invalid(
                "monthly",
                "must be at least 1 (None means no cap)",
            ));
        }
        if self.monthly.is_some_and(|m| m > i64::MAX as u64) {
            return Err(Error::invalid("monthly", "too large"));
        }
        Ok(())
    }
}

impl Default for Limits {
    /// The Free tier, like a new hosted account.
    fn default() -> Limits {
        Limits::tier(Tier::Free)
    }
}

/// Values for the rate-limit response headers.
///
/// `X-RateLimit-Reset` is the Unix time (seconds) at which the per-minute allowance is full
/// again. The `X-Monthly-*` headers are absent for keys without a monthly cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateHeaders {
    /// `X-RateLimit-Limit`: requests per minute.
    pub limit: u32,
    /// `X-RateLimit-Remaining`: requests that may be sent right now.
    pub remaining: u32,
    /// `X-RateLimit-Reset`: Unix seconds when the allowance is full again.
    pub reset: i64,
    /// `X-Monthly-Limit`.
    pub monthly_limit: Option<u64>,
    /// `X-Monthly-Remaining`.
    pub monthly_remaining: Option<u64>,
}

impl RateHeaders {
    /// `(header name, value)` pairs ready to send.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("X-RateLimit-Limit", self.limit.to_string()),
            ("X-RateLimit-Remaining", self.remaining.to_string()),
            ("X-RateLimit-Reset", self.reset.to_string()),
        ];
        if let (Some(l), Some(r)) = (self.monthly_limit, self.monthly_remaining) {
            v.push(("X-Monthly-Limit", l.to_string()));
            v.push(("X-Monthly-Remaining", r.to_string()));
        }
        v
    }
}

/// The answer of [`crate::KeyStore::check_rate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum RateDecision {
    /// Go ahead; the request was counted.
    Allowed { headers: RateHeaders },
    /// `rate_limit_exceeded`: wait `retry_after_secs` (send it as `Retry-After`).
    RateLimited {
        retry_after_secs: u64,
        headers: RateHeaders,
    },
    /// `quota_exceeded`: `used` of `limit` calls this month, resets at `resets_at` (Unix s).
    QuotaExceeded {
        used: u64,
        limit: u64,
        resets_at: i64,
        retry_after_secs: u64,
        headers: RateHeaders,
    },
}

impl RateDecision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, RateDecision::Allowed { .. })
    }

    /// The header values, whatever the decision.
    pub fn headers(&self) -> &RateHeaders {
        match self {
            RateDecision::Allowed { headers }
            | RateDecision::RateLimited { headers, .. }
            | RateDecision::QuotaExceeded { headers, .. } => headers,
        }
    }

    /// `Ok(headers)` when allowed, else the matching [`Error`].
    pub fn into_result(self) -> Result<RateHeaders> {
        match self {
            RateDecision::Allowed { headers } => Ok(headers),
            RateDecision::RateLimited {
                retry_after_secs,
                headers,
            } => Err(Error::RateLimitExceeded {
                retry_after_secs,
                headers,
            }),
            RateDecision::QuotaExceeded {
                used,
                limit,
                resets_at,
                retry_after_secs,
                headers,
            } => Err(Error::QuotaExceeded {
                used,
                limit,
                resets_at,
                retry_after_secs,
                headers,
            }),
        }
    }
}

const MINUTE_NS: i64 = 60_000_000_000;
const SEC_NS: i64 = 1_000_000_000;

/// The per-minute limiter of one lineage: the admission times (ns) of the last minute, at
/// most `per_minute` of them. A request is admitted when fewer than `per_minute` were
/// admitted in the 60 s before it, so **no 60-second window ever holds more than
/// `per_minute` admissions** — the documented guarantee. (A GCRA with a burst of
/// `per_minute` admits a full burst and then keeps refilling: up to twice the limit in some
/// 60 s window.) Memory: one `i64` per admission in the window.
#[derive(Debug, Default, Clone)]
pub(crate) struct Window {
    admitted: std::collections::VecDeque<i64>,
}

/// Result of one limiter step.
pub(crate) enum Step {
    Allowed { remaining: u32, reset_ns: i64 },
    Denied { retry_after_ns: i64, reset_ns: i64 },
}

impl Window {
    /// Forgets admissions that left the window ending at `now`: those at or before
    /// `now - 60 s`.
    fn expire(&mut self, now: i64) {
        while self
            .admitted
            .front()
            .is_some_and(|&t| t <= window_start(now))
        {
            self.admitted.pop_front();
        }
    }

    /// What the decisions read of the window: count, oldest and newest admission.
    fn view(&self) -> WindowView {
        WindowView {
            len: self.admitted.len() as u64,
            oldest: self.admitted.front().copied(),
            newest: self.admitted.back().copied(),
        }
    }

    /// Whether one more request fits at `now` (without taking it). `reset_ns` is when the
    /// whole allowance is free again, `retry_after_ns` when the next slot frees.
    pub(crate) fn peek(&mut self, per_minute: u32, now: i64) -> Step {
        self.expire(now);
        self.view().peek(per_minute, now)
    }

    /// Takes one request (call after an `Allowed` peek).
    pub(crate) fn take(&mut self, now: i64) {
        self.admitted.push_back(now);
    }

    /// When the allowance is full again (ns).
    pub(crate) fn full_at(&self, now: i64) -> i64 {
        self.view().full_at(now)
    }

    /// Requests available right now without taking one (for headers on a denial).
    pub(crate) fn available(&mut self, per_minute: u32, now: i64) -> u32 {
        self.expire(now);
        self.view().available(per_minute)
    }
}

/// A window's admissions as the decisions need them: how many are in the window ending now,
/// and the oldest and newest of them (ns). The in-memory [`Window`] derives it from its log;
/// the PostgreSQL store reads it from its admissions table, so both decide the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowView {
    pub(crate) len: u64,
    pub(crate) oldest: Option<i64>,
    pub(crate) newest: Option<i64>,
}

impl WindowView {
    /// See [`Window::peek`]; the view holds only admissions after `now - 60 s`.
    pub(crate) fn peek(&self, per_minute: u32, now: i64) -> Step {
        let cap = u64::from(per_minute.max(1));
        if self.len < cap {
            Step::Allowed {
                remaining: u32::try_from(cap - self.len - 1).unwrap_or(u32::MAX),
                reset_ns: now + MINUTE_NS,
            }
        } else {
            Step::Denied {
                retry_after_ns: self.oldest.unwrap_or(now) + MINUTE_NS - now,
                reset_ns: self.newest.unwrap_or(now) + MINUTE_NS,
            }
        }
    }

    /// See [`Window::full_at`].
    pub(crate) fn full_at(&self, now: i64) -> i64 {
        self.newest.map_or(now, |t| (t + MINUTE_NS).max(now))
    }

    /// See [`Window::available`].
    pub(crate) fn available(&self, per_minute: u32) -> u32 {
        u32::try_from(u64::from(per_minute).saturating_sub(self.len)).unwrap_or(0)
    }
}

/// The start of the window ending at `now` (ns): admissions at or before it no longer count.
pub(crate) fn window_start(now: i64) -> i64 {
    now - MINUTE_NS
}

/// Nanoseconds → whole seconds, rounded up.
pub(crate) fn ceil_secs(ns: i64) -> i64 {
    if ns <= 0 {
        0
    } else {
        (ns + SEC_NS - 1) / SEC_NS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_match_the_hosted_plans() {
        assert_eq!(
            Limits::tier(Tier::Free),
            Limits::custom(10, Some(50)).unwrap()
        );
        assert_eq!(
            Limits::tier(Tier::Starter),
            Limits::custom(60, Some(1000)).unwrap()
        );
        assert_eq!(
            Limits::tier(Tier::Pro),
            Limits::custom(200, Some(10_000)).unwrap()
        );
        assert_eq!(
            Limits::tier(Tier::Unlimited),
            Limits::custom(1000, None).unwrap()
        );
        assert!(Limits::custom(0, None).is_err());
        assert!(Limits::custom(5, Some(0)).is_err());
    }

    #[test]
    fn window_admits_the_limit_then_waits_for_the_oldest_to_leave() {
        let mut w = Window::default();
        let now = 1_000 * SEC_NS;
        // 10/min: ten now, then nothing until the first of them is 60 s old.
        for i in 0..10 {
            match w.peek(10, now + i64::from(i) * SEC_NS) {
                Step::Allowed { remaining, .. } => assert_eq!(remaining, 9 - i),
                Step::Denied { .. } => panic!("request {i} denied"),
            }
            w.take(now + i64::from(i) * SEC_NS);
        }
        match w.peek(10, now + 10 * SEC_NS) {
            Step::Denied {
                retry_after_ns,
                reset_ns,
            } => {
                assert_eq!(retry_after_ns, 50 * SEC_NS);
                assert_eq!(reset_ns, now + 69 * SEC_NS);
            }
            Step::Allowed { .. } => panic!("11th request admitted"),
        }
        assert!(matches!(
            w.peek(10, now + 60 * SEC_NS - 1),
            Step::Denied { .. }
        ));
        assert!(matches!(
            w.peek(10, now + 60 * SEC_NS),
            Step::Allowed { remaining: 0, .. }
        ));
        assert_eq!(w.available(10, now + 69 * SEC_NS), 10);
        assert_eq!(ceil_secs(1), 1);
        assert_eq!(ceil_secs(SEC_NS), 1);
        assert_eq!(ceil_secs(SEC_NS + 1), 2);
    }
}
