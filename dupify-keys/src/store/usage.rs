//! Usage counting: calls are counted in memory per key, per UTC day and per scope (plus the
//! requests admitted by the rate limiter), written to SQLite in one transaction per flush, and
//! reported per day and per month with the unflushed counts included.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLockReadGuard};

use rusqlite::{params, TransactionBehavior};
use serde::Serialize;

use super::schema::to_db_i64;
use super::{lock, Inner};
use crate::clock::{day_label, month_label, month_of_day};
use crate::error::{DbContext, Result};
use crate::scope::Scope;

/// Usage kind stored for requests admitted by
/// [`KeyStore::check_rate`](super::KeyStore::check_rate).
pub(super) const REQUESTS_KIND: &str = "requests";
/// Counter slots per day: requests + one per scope.
const SLOTS: usize = 1 + Scope::ALL.len();

/// Counts for one day or month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageCounts {
    /// Requests admitted by [`KeyStore::check_rate`](super::KeyStore::check_rate).
    pub requests: u64,
    /// Calls per scope, counted by [`KeyStore::authorize`](super::KeyStore::authorize) (a
    /// batch counts `batch` and each scope inside it once).
    pub by_scope: BTreeMap<Scope, u64>,
}

/// Usage of one key: per UTC day (`YYYY-MM-DD`) and per month (`YYYY-MM`), including counts
/// this process has not flushed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyUsage {
    /// The key.
    pub key_id: i64,
    /// Unix seconds.
    pub last_used_at: Option<i64>,
    /// Per day.
    pub daily: BTreeMap<String, UsageCounts>,
    /// Per month.
    pub monthly: BTreeMap<String, UsageCounts>,
}

/// Buffered (day, counts) pairs of one key.
type Pending = Vec<(i64, [u64; SLOTS])>;
/// One key's share of a flush: id, state, taken counts, last use.
type FlushItem = (i64, Arc<KeyState>, Pending, i64);

/// Per-key usage buffered in memory.
pub(super) struct KeyState {
    /// Unix seconds of the last verification (0 = none).
    last_used: AtomicI64,
    /// The value last written to the database.
    flushed_last_used: AtomicI64,
    /// (day, counts) pairs not yet flushed; counts[0] = requests, counts[1 + scope] = calls.
    pending: Mutex<Pending>,
}

impl KeyState {
    fn add(&self, day: i64, slot: usize, n: u64) {
        let mut p = lock(&self.pending);
        if let Some((_, c)) = p.iter_mut().find(|(d, _)| *d == day) {
            c[slot] += n;
        } else {
            let mut c = [0u64; SLOTS];
            c[slot] = n;
            p.push((day, c));
        }
    }

    /// Takes back one buffered request of `day`; false when none is buffered (flushed).
    pub(super) fn take_back_request(&self, day: i64) -> bool {
        let mut p = lock(&self.pending);
        match p.iter_mut().find(|(d, c)| *d == day && c[0] > 0) {
            Some((_, c)) => {
                c[0] -= 1;
                true
            }
            None => false,
        }
    }
}

impl Inner {
    pub(super) fn read_keys(&self) -> RwLockReadGuard<'_, HashMap<i64, Arc<KeyState>>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn key_state(&self, id: i64) -> Arc<KeyState> {
        if let Some(s) = self.read_keys().get(&id) {
            return Arc::clone(s);
        }
        let mut w = self.keys.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(w.entry(id).or_insert_with(|| {
            Arc::new(KeyState {
                last_used: AtomicI64::new(0),
                flushed_last_used: AtomicI64::new(0),
                pending: Mutex::new(Vec::new()),
            })
        }))
    }

    /// Records a verification of key `id` at `now` (unix seconds) for `last_used_at`.
    pub(super) fn touch(&self, id: i64, now: i64) {
        self.key_state(id)
            .last_used
            .fetch_max(now, Ordering::Relaxed);
    }

    /// The last use of key `id` seen by this process, flushed or not.
    pub(super) fn last_used_in_memory(&self, id: i64) -> Option<i64> {
        let mem = self.read_keys().get(&id)?.last_used.load(Ordering::Relaxed);
        (mem > 0).then_some(mem)
    }

    /// Counts one request admitted by the rate limiter.
    pub(super) fn count_request(&self, id: i64, day: i64) {
        self.key_state(id).add(day, 0, 1);
    }

    /// Counts one call for each scope in `scopes`.
    pub(super) fn count_scopes(&self, id: i64, day: i64, scopes: impl IntoIterator<Item = Scope>) {
        let st = self.key_state(id);
        for s in scopes {
            st.add(day, 1 + s.index(), 1);
        }
    }

    /// Usage of key `id` per day and per month, flushed and buffered counts together.
    /// `last_used_at` is the key's record value (the caller has read it).
    pub(super) fn usage(&self, id: i64, last_used_at: Option<i64>) -> Result<KeyUsage> {
        let rows = self.with_conn(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT day, kind, calls FROM api_key_usage WHERE key_id = ?1 ORDER BY day",
                )
                .db("reading usage")?;
            let rows = st
                .query_map([id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .db("reading usage")?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .db("reading usage")
        })?;
        let mut per_day: BTreeMap<i64, [u64; SLOTS]> = BTreeMap::new();
        for (day, kind, calls) in rows {
            let slot = if kind == REQUESTS_KIND {
                0
            } else if let Ok(s) = kind.parse::<Scope>() {
                1 + s.index()
            } else {
                continue;
            };
            per_day.entry(day).or_insert([0; SLOTS])[slot] += u64::try_from(calls).unwrap_or(0);
        }
        if let Some(st) = self.read_keys().get(&id) {
            for (day, counts) in lock(&st.pending).iter() {
                let e = per_day.entry(*day).or_insert([0; SLOTS]);
                for (a, b) in e.iter_mut().zip(counts) {
                    *a += b;
                }
            }
        }
        let mut daily = BTreeMap::new();
        let mut monthly: BTreeMap<String, UsageCounts> = BTreeMap::new();
        for (day, counts) in per_day {
            let add = |u: &mut UsageCounts| {
                u.requests += counts[0];
                for s in Scope::ALL {
                    let n = counts[1 + s.index()];
                    if n > 0 {
                        *u.by_scope.entry(s).or_insert(0) += n;
                    }
                }
            };
            add(daily.entry(day_label(day)).or_default());
            add(monthly.entry(month_label(month_of_day(day))).or_default());
        }
        Ok(KeyUsage {
            key_id: id,
            last_used_at,
            daily,
            monthly,
        })
    }

    pub(super) fn flush(&self) -> Result<()> {
        let _g = lock(&self.flush_lock);
        let states: Vec<(i64, Arc<KeyState>)> = self
            .read_keys()
            .iter()
            .map(|(id, s)| (*id, Arc::clone(s)))
            .collect();
        let mut batch = Vec::new();
        for (id, st) in &states {
            let pending = std::mem::take(&mut *lock(&st.pending));
            let last_used = st.last_used.load(Ordering::Relaxed);
            if pending.is_empty() && last_used <= st.flushed_last_used.load(Ordering::Relaxed) {
                continue;
            }
            batch.push((*id, Arc::clone(st), pending, last_used));
        }
        if batch.is_empty() {
            return Ok(());
        }
        let written = self.write_batch(&batch);
        match written {
            Ok(()) => {
                for (_, st, _, last_used) in &batch {
                    st.flushed_last_used
                        .fetch_max(*last_used, Ordering::Relaxed);
                }
            }
            Err(e) => {
                // Put the counts back; the next flush retries.
                for (_, st, pending, _) in batch {
                    for (day, counts) in pending {
                        for (slot, n) in counts.iter().enumerate() {
                            if *n > 0 {
                                st.add(day, slot, *n);
                            }
                        }
                    }
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn write_batch(&self, batch: &[FlushItem]) -> Result<()> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db("flushing usage")?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO api_key_usage (key_id, day, kind, calls) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (key_id, day, kind) DO UPDATE SET calls = calls + excluded.calls",
                )
                .db("flushing usage")?;
            let mut touch = tx
                .prepare_cached(
                    "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) \
                 WHERE id = ?1",
                )
                .db("flushing usage")?;
            for (id, _, pending, last_used) in batch {
                for (day, counts) in pending {
                    for (slot, n) in counts.iter().enumerate() {
                        if *n == 0 {
                            continue;
                        }
                        let kind = if slot == 0 {
                            REQUESTS_KIND
                        } else {
                            Scope::ALL[slot - 1].as_str()
                        };
                        upsert
                            .execute(params![id, day, kind, to_db_i64(*n)])
                            .db("flushing usage")?;
                    }
                }
                if *last_used > 0 {
                    touch.execute(params![id, last_used]).db("flushing usage")?;
                }
            }
        }
        tx.commit().db("flushing usage")?;
        Ok(())
    }
}
