//! Usage on PostgreSQL. Admitted requests are written with each admission (see `limiter`);
//! scope counters and `last_used_at` are buffered per process and written in one transaction
//! per flush, as on SQLite, since they limit nothing and a write per call would double the
//! database's load. Reports add the buffered counts to the stored ones.

use std::collections::{BTreeMap, HashMap};

use super::PgInner;
use crate::clock::{day_label, day_of, month_label, month_of_day};
use crate::error::{DbContext, Result};
use crate::scope::Scope;
use crate::store::{lock, KeyUsage, UsageCounts};

/// The `kind` of admitted requests in `api_key_usage`.
const REQUESTS_KIND: &str = "requests";

/// What this process has not written yet.
#[derive(Default)]
pub(super) struct Buffer {
    keys: HashMap<i64, KeyBuffer>,
    /// Requests this process admitted per (key, day) and may still give back (`release`).
    /// Counts only, pruned to today at each flush.
    releasable: HashMap<(i64, i64), u64>,
}

#[derive(Default)]
struct KeyBuffer {
    /// Calls per (day, scope) not yet written.
    calls: BTreeMap<(i64, Scope), u64>,
    /// Unix seconds of the last verification seen here (0 = none).
    last_used: i64,
    /// The value last written.
    flushed_last_used: i64,
}

/// One key's share of a flush.
struct FlushItem {
    key_id: i64,
    calls: BTreeMap<(i64, Scope), u64>,
    last_used: i64,
}

impl PgInner {
    /// Records a verification of key `id` at `now` (unix seconds) for `last_used_at`.
    pub(super) fn touch(&self, id: i64, now: i64) {
        let mut b = lock(&self.buffer);
        let k = b.keys.entry(id).or_default();
        k.last_used = k.last_used.max(now);
    }

    /// The last use of key `id` seen by this process, written or not.
    pub(super) fn last_used_in_memory(&self, id: i64) -> Option<i64> {
        let b = lock(&self.buffer);
        let mem = b.keys.get(&id)?.last_used;
        (mem > 0).then_some(mem)
    }

    /// Counts one call for each scope in `scopes`, today.
    pub(in crate::store) fn count_scopes(&self, id: i64, scopes: impl IntoIterator<Item = Scope>) {
        let day = day_of(self.now_secs());
        let mut b = lock(&self.buffer);
        let k = b.keys.entry(id).or_default();
        for s in scopes {
            *k.calls.entry((day, s)).or_insert(0) += 1;
        }
    }

    /// Notes a request admitted (and written) for key `id` on `day`, which `release` may give
    /// back.
    pub(super) fn admitted(&self, id: i64, day: i64) {
        *lock(&self.buffer).releasable.entry((id, day)).or_insert(0) += 1;
    }

    /// Takes one releasable request of key `id` on `day`; false when there is none.
    pub(super) fn take_releasable(&self, id: i64, day: i64) -> bool {
        let mut b = lock(&self.buffer);
        match b.releasable.get_mut(&(id, day)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                if *n == 0 {
                    b.releasable.remove(&(id, day));
                }
                true
            }
            _ => false,
        }
    }

    /// Usage of key `id` per day and per month: the stored counts plus this process's
    /// buffered scope counts. `last_used_at` is the record's value (the caller read it).
    pub(in crate::store) fn usage(&self, id: i64, last_used_at: Option<i64>) -> Result<KeyUsage> {
        const CTX: &str = "reading usage";
        let rows = self
            .conn(CTX)?
            .client
            .query(
                "SELECT day, kind, calls FROM api_key_usage WHERE key_id = $1 ORDER BY day",
                &[&id],
            )
            .db(CTX)?;
        let mut per_day: BTreeMap<i64, UsageCounts> = BTreeMap::new();
        for r in &rows {
            let day: i64 = r.try_get(0).db(CTX)?;
            let kind: &str = r.try_get(1).db(CTX)?;
            let calls = u64::try_from(r.try_get::<_, i64>(2).db(CTX)?).unwrap_or(0);
            let counts = per_day.entry(day).or_default();
            if kind == REQUESTS_KIND {
                counts.requests += calls;
            } else if let Ok(s) = kind.parse::<Scope>() {
                *counts.by_scope.entry(s).or_insert(0) += calls;
            }
        }
        if let Some(k) = lock(&self.buffer).keys.get(&id) {
            for ((day, s), n) in &k.calls {
                *per_day
                    .entry(*day)
                    .or_default()
                    .by_scope
                    .entry(*s)
                    .or_insert(0) += n;
            }
        }
        let mut daily = BTreeMap::new();
        let mut monthly: BTreeMap<String, UsageCounts> = BTreeMap::new();
        for (day, counts) in per_day {
            let m = monthly.entry(month_label(month_of_day(day))).or_default();
            m.requests += counts.requests;
            for (s, n) in &counts.by_scope {
                *m.by_scope.entry(*s).or_insert(0) += n;
            }
            daily.insert(day_label(day), counts);
        }
        Ok(KeyUsage {
            key_id: id,
            last_used_at,
            daily,
            monthly,
        })
    }

    /// Writes the buffered scope counters and last uses in one transaction. On failure they
    /// go back into the buffer for the next flush.
    pub(in crate::store) fn flush(&self) -> Result<()> {
        let _g = lock(&self.flush_lock);
        let today = day_of(self.now_secs());
        let batch: Vec<FlushItem> = {
            let mut b = lock(&self.buffer);
            b.releasable.retain(|(_, day), _| *day >= today);
            b.keys
                .iter_mut()
                .filter(|(_, k)| !k.calls.is_empty() || k.last_used > k.flushed_last_used)
                .map(|(id, k)| FlushItem {
                    key_id: *id,
                    calls: std::mem::take(&mut k.calls),
                    last_used: k.last_used,
                })
                .collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        match self.write_batch(&batch) {
            Ok(()) => {
                let mut b = lock(&self.buffer);
                for item in &batch {
                    if let Some(k) = b.keys.get_mut(&item.key_id) {
                        k.flushed_last_used = k.flushed_last_used.max(item.last_used);
                    }
                }
                Ok(())
            }
            Err(e) => {
                let mut b = lock(&self.buffer);
                for item in batch {
                    let k = b.keys.entry(item.key_id).or_default();
                    for (slot, n) in item.calls {
                        *k.calls.entry(slot).or_insert(0) += n;
                    }
                }
                Err(e)
            }
        }
    }

    fn write_batch(&self, batch: &[FlushItem]) -> Result<()> {
        const CTX: &str = "flushing usage";
        let mut conn = self.conn(CTX)?;
        let mut tx = conn.client.transaction().db(CTX)?;
        let upsert = tx
            .prepare(
                "INSERT INTO api_key_usage (key_id, day, kind, calls) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key_id, day, kind) DO UPDATE SET calls = api_key_usage.calls + \
                 EXCLUDED.calls",
            )
            .db(CTX)?;
        let touch = tx
            .prepare(
                "UPDATE api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $2) \
                 WHERE id = $1",
            )
            .db(CTX)?;
        for item in batch {
            for ((day, scope), n) in &item.calls {
                let n = i64::try_from(*n).unwrap_or(i64::MAX);
                tx.execute(&upsert, &[&item.key_id, day, &scope.as_str(), &n])
                    .db(CTX)?;
            }
            if item.last_used > 0 {
                tx.execute(&touch, &[&item.key_id, &item.last_used])
                    .db(CTX)?;
            }
        }
        tx.commit().db(CTX)
    }
}
