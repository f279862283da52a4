//! Rate limits and monthly quotas.
//!
//! The per-minute limit is a GCRA (generic cell rate algorithm, the token bucket written as one
//! timestamp): a key with `per_minute = n` may send a burst of `n` requests and then one every
//! `60/n` seconds. The monthly quota counts admitted requests per calendar month (UTC) and
//! resets at 00:00 UTC on the first day of the next month.
//!
//! Limits are enforced per *lineage*: a regenerated key shares the counters of the key it
//! replaced, so regenerating never resets a quota. The per-minute state lives in the process
//! (each process enforces its own window); the monthly count starts from the database and is
//! re-read after every usage flush, so several processes on one database converge on the
//! shared total within one flush interval.

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
    /// Requests per minute (also the burst size). At least 1.
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

/// GCRA state of one lineage: the theoretical arrival time in nanoseconds.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Gcra {
    tat: i64,
}

/// Result of one GCRA step.
pub(crate) enum GcraStep {
    Allowed { remaining: u32, reset_ns: i64 },
    Denied { retry_after_ns: i64, reset_ns: i64 },
}

impl Gcra {
    /// Emission interval for `per_minute` (ns per request).
    fn interval(per_minute: u32) -> i64 {
        MINUTE_NS / i64::from(per_minute.max(1))
    }

    /// Whether one more request fits at `now` (without taking it).
    pub(crate) fn peek(&self, per_minute: u32, now: i64) -> GcraStep {
        let t = Gcra::interval(per_minute);
        let new_tat = self.tat.max(now) + t;
        let burst_window = t * i64::from(per_minute.max(1));
        if new_tat - now <= burst_window {
            let remaining = (burst_window - (new_tat - now)) / t;
            GcraStep::Allowed {
                remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                reset_ns: new_tat,
            }
        } else {
            GcraStep::Denied {
                retry_after_ns: new_tat - burst_window - now,
                reset_ns: self.tat.max(now),
            }
        }
    }

    /// Takes one request (call after an `Allowed` peek).
    pub(crate) fn take(&mut self, per_minute: u32, now: i64) {
        self.tat = self.tat.max(now) + Gcra::interval(per_minute);
    }

    /// When the allowance is full again (ns).
    pub(crate) fn full_at(&self, now: i64) -> i64 {
        self.tat.max(now)
    }

    /// Requests available right now without taking one (for headers on a denial).
    pub(crate) fn available(&self, per_minute: u32, now: i64) -> u32 {
        let t = Gcra::interval(per_minute);
        let burst_window = t * i64::from(per_minute.max(1));
        let used = (self.tat - now).max(0);
        u32::try_from((burst_window - used).max(0) / t).unwrap_or(u32::MAX)
    }
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
    fn gcra_burst_then_steady_rate() {
        let mut g = Gcra::default();
        let now = 1_000 * SEC_NS;
        // 10/min: a burst of 10, then one every 6 s.
        for i in 0..10 {
            match g.peek(10, now) {
                GcraStep::Allowed { remaining, .. } => assert_eq!(remaining, 9 - i),
                GcraStep::Denied { .. } => panic!("request {i} denied"),
            }
            g.take(10, now);
        }
        match g.peek(10, now) {
            GcraStep::Denied { retry_after_ns, .. } => assert_eq!(retry_after_ns, 6 * SEC_NS),
            GcraStep::Allowed { .. } => panic!("11th request admitted"),
        }
        assert!(matches!(
            g.peek(10, now + 6 * SEC_NS - 1),
            GcraStep::Denied { .. }
        ));
        assert!(matches!(
            g.peek(10, now + 6 * SEC_NS),
            GcraStep::Allowed { .. }
        ));
        assert_eq!(g.available(10, now + 60 * SEC_NS), 10);
        assert_eq!(ceil_secs(1), 1);
        assert_eq!(ceil_secs(SEC_NS), 1);
        assert_eq!(ceil_secs(SEC_NS + 1), 2);
    }
}
