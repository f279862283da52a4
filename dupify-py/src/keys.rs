//! `dupify.KeyStore` and the key system's objects: creating, listing, revoking and regenerating
//! keys; authenticating requests from their headers; scope checks; rate limits and quotas.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dupify_keys::{
    parse_key, Clock, CreatedKey, Environment, KeyRecord, KeySpec, KeyStore, KeyUsage, Limits,
    ManualClock, Operation, Principal, RateDecision, RateHeaders, Scope, StoreOptions, Tier,
    UsageCounts,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::convert::{from_name, serde_name};
use crate::error::{detached, Failure, Result};
use crate::results::result_class;

fn parse_scope(name: &str) -> Result<Scope> {
    Ok(name.parse::<Scope>()?)
}

fn scope_names(s: dupify_keys::ScopeSet) -> Vec<String> {
    if s.is_all() {
        vec!["all".to_string()]
    } else {
        s.listed().map(|s| s.as_str().to_string()).collect()
    }
}

/// A key's limits: requests in any 60-second window and an optional monthly quota.
#[pyclass(name = "Limits", module = "dupify", frozen)]
#[derive(Clone)]
pub struct PyLimits(pub Limits);

#[pymethods]
impl PyLimits {
    /// Custom limits; a zero rate or a zero monthly quota is refused.
    #[new]
    #[pyo3(signature = (per_minute, monthly=None))]
    fn new(per_minute: u32, monthly: Option<u64>) -> Result<Self> {
        Ok(PyLimits(Limits::custom(per_minute, monthly)?))
    }
    /// The limits of a hosted tier: `free`, `starter`, `pro` or `unlimited`.
    #[staticmethod]
    fn tier(name: &str) -> Result<Self> {
        let t: Tier = from_name(name, "tier")?;
        Ok(PyLimits(Limits::tier(t)))
    }
    /// Requests per minute.
    #[getter]
    fn per_minute(&self) -> u32 {
        self.0.per_minute
    }
    /// Requests per calendar month (UTC); `None` = no cap.
    #[getter]
    fn monthly(&self) -> Option<u64> {
        self.0.monthly
    }
    /// The limits as the core's JSON.
    fn to_dict(&self, py: Python<'_>) -> Result<Py<PyAny>> {
        crate::convert::to_dict(py, &self.0)
    }
    fn __repr__(&self) -> String {
        format!(
            "Limits(per_minute={}, monthly={:?})",
            self.0.per_minute, self.0.monthly
        )
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyLimits>().is_ok_and(|o| o.get().0 == self.0)
    }
}

/// A clock that moves only when told to, for tests and simulations of the key store.
#[pyclass(name = "ManualClock", module = "dupify", frozen)]
pub struct PyManualClock(Arc<ManualClock>);

#[pymethods]
impl PyManualClock {
    /// A clock set to `unix_secs`.
    #[new]
    fn new(unix_secs: u64) -> Self {
        PyManualClock(Arc::new(ManualClock::at(unix_secs)))
    }
    /// Moves the clock forward by `seconds`.
    fn advance(&self, seconds: f64) -> Result<()> {
        let d = Duration::try_from_secs_f64(seconds)
            .map_err(|e| Failure::invalid("seconds", format!("{e}")))?;
        self.0.advance(d);
        Ok(())
    }
    /// Sets the clock to `unix_secs`.
    fn set(&self, unix_secs: u64) {
        self.0.set(unix_secs);
    }
    /// The clock's time in Unix seconds.
    #[getter]
    fn now(&self) -> f64 {
        self.0.now().as_secs_f64()
    }
}

result_class! {
    /// What the dashboard lists about a key. Holds nothing secret.
    PyKeyRecord = "KeyRecord" (KeyRecord) {
        /// Stable id.
        id(r, py) -> i64 { r.id }
        /// Id of the first key of this key's regeneration chain.
        lineage_id(r, py) -> i64 { r.lineage_id }
        /// Descriptive name.
        name(r, py) -> String { r.name.clone() }
        /// `live` or `test`.
        environment(r, py) -> &'static str { r.env.as_str() }
        /// Scope names, or `["all"]` for a key created without a selection.
        scopes(r, py) -> Vec<String> { scope_names(r.scopes) }
        /// Limits.
        limits(r, py) -> PyLimits { PyLimits(r.limits) }
        /// Unix seconds.
        created_at(r, py) -> i64 { r.created_at }
        /// Unix seconds of the last use.
        last_used_at(r, py) -> Option<i64> { r.last_used_at }
        /// Unix seconds.
        expires_at(r, py) -> Option<i64> { r.expires_at }
        /// Unix seconds (in the future during a regeneration grace period).
        revoked_at(r, py) -> Option<i64> { r.revoked_at }
        /// The key that replaced this one, if regenerated.
        replaced_by(r, py) -> Option<i64> { r.replaced_by }
        /// `fe_live_…` + the last 4 characters.
        preview(r, py) -> String { r.preview.clone() }
        /// `active`, `rotating`, `expired` or `revoked`.
        status(r, py) -> String { serde_name(&r.status) }
    }
}

/// An authenticated caller: key id, environment, scopes and limits.
#[pyclass(name = "Principal", module = "dupify", frozen)]
#[derive(Clone)]
pub struct PyPrincipal(pub Principal);

#[pymethods]
impl PyPrincipal {
    /// The key's id.
    #[getter]
    fn key_id(&self) -> i64 {
        self.0.key_id()
    }
    /// The key's regeneration chain (limits are counted per chain).
    #[getter]
    fn lineage_id(&self) -> i64 {
        self.0.lineage_id()
    }
    /// `live` or `test`: keep test data apart from live data.
    #[getter]
    fn environment(&self) -> &'static str {
        self.0.environment().as_str()
    }
    /// Scope names, or `["all"]`.
    #[getter]
    fn scopes(&self) -> Vec<String> {
        scope_names(self.0.scopes())
    }
    /// The key's limits.
    #[getter]
    fn limits(&self) -> PyLimits {
        PyLimits(self.0.limits())
    }
    /// The principal as the core's JSON.
    fn to_dict(&self, py: Python<'_>) -> Result<Py<PyAny>> {
        crate::convert::to_dict(py, &self.0)
    }
    fn __repr__(&self) -> String {
        format!(
            "Principal(key_id={}, environment='{}', scopes={:?})",
            self.0.key_id(),
            self.0.environment().as_str(),
            scope_names(self.0.scopes())
        )
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyPrincipal>()
            .is_ok_and(|o| o.get().0 == self.0)
    }
}

/// A key as returned once by `create()` and `regenerate()`: the plaintext and its record.
#[pyclass(name = "CreatedKey", module = "dupify", frozen)]
pub struct PyCreatedKey {
    key: String,
    record: KeyRecord,
}

impl From<CreatedKey> for PyCreatedKey {
    fn from(c: CreatedKey) -> Self {
        PyCreatedKey {
            key: c.key.expose().to_string(),
            record: c.record,
        }
    }
}

#[pymethods]
impl PyCreatedKey {
    /// The plaintext key: show it once, it cannot be retrieved again.
    #[getter]
    fn key(&self) -> &str {
        &self.key
    }
    /// The stored record.
    #[getter]
    fn record(&self) -> PyKeyRecord {
        PyKeyRecord(self.record.clone())
    }
    /// `{"key": …, "record": {…}}` (contains the plaintext key).
    fn to_dict(&self, py: Python<'_>) -> Result<Py<PyAny>> {
        let d = PyDict::new(py);
        d.set_item("key", &self.key)?;
        d.set_item("record", crate::convert::to_dict(py, &self.record)?)?;
        Ok(d.into_any().unbind())
    }
    fn __repr__(&self) -> String {
        format!(
            "CreatedKey(key='{}…', id={})",
            self.record.preview, self.record.id
        )
    }
}

result_class! {
    /// Values of the rate-limit response headers.
    PyRateHeaders = "RateHeaders" (RateHeaders) {
        /// `X-RateLimit-Limit`.
        limit(h, py) -> u32 { h.limit }
        /// `X-RateLimit-Remaining`.
        remaining(h, py) -> u32 { h.remaining }
        /// `X-RateLimit-Reset` (Unix seconds).
        reset(h, py) -> i64 { h.reset }
        /// `X-Monthly-Limit`.
        monthly_limit(h, py) -> Option<u64> { h.monthly_limit }
        /// `X-Monthly-Remaining`.
        monthly_remaining(h, py) -> Option<u64> { h.monthly_remaining }
    }
}

result_class! {
    /// The answer of `KeyStore.check_rate()`: allowed, rate-limited or over quota, with the
    /// response header values either way.
    PyRateDecision = "RateDecision" (RateDecision) {
        /// Whether the request may proceed (it was counted).
        allowed(d, py) -> bool { d.is_allowed() }
        /// `allowed`, `rate_limited` or `quota_exceeded`.
        decision(d, py) -> &'static str {
            match d {
                RateDecision::Allowed { .. } => "allowed",
                RateDecision::RateLimited { .. } => "rate_limited",
                RateDecision::QuotaExceeded { .. } => "quota_exceeded",
            }
        }
        /// Seconds to wait (`Retry-After`) when denied.
        retry_after_secs(d, py) -> Option<u64> {
            match d {
                RateDecision::RateLimited { retry_after_secs, .. }
                | RateDecision::QuotaExceeded { retry_after_secs, .. } => Some(*retry_after_secs),
                RateDecision::Allowed { .. } => None,
            }
        }
        /// The header values.
        headers(d, py) -> PyRateHeaders { PyRateHeaders(*d.headers()) }
        /// `(name, value)` header pairs ready to send.
        header_pairs(d, py) -> Vec<(&'static str, String)> { d.headers().pairs() }
    }
    methods {
    /// Raises `RateLimitError` (`rate_limit_exceeded` or `quota_exceeded`) when denied.
    fn raise_for_status(&self) -> Result<()> {
        self.0.clone().into_result()?;
        Ok(())
    }
    }
}

result_class! {
    /// Counts for one day or month.
    PyUsageCounts = "UsageCounts" (UsageCounts) {
        /// Requests admitted by `check_rate()`.
        requests(u, py) -> u64 { u.requests }
        /// Calls per scope counted by `authorize()`.
        by_scope(u, py) -> std::collections::BTreeMap<String, u64> {
            u.by_scope.iter().map(|(s, n)| (s.as_str().to_string(), *n)).collect()
        }
    }
}

result_class! {
    /// Usage of one key per UTC day (`YYYY-MM-DD`) and month (`YYYY-MM`).
    PyKeyUsage = "KeyUsage" (KeyUsage) {
        /// The key.
        key_id(u, py) -> i64 { u.key_id }
        /// Unix seconds of the last use.
        last_used_at(u, py) -> Option<i64> { u.last_used_at }
        /// Per day.
        daily(u, py) -> std::collections::BTreeMap<String, PyUsageCounts> {
            u.daily.iter().map(|(k, v)| (k.clone(), PyUsageCounts(v.clone()))).collect()
        }
        /// Per month.
        monthly(u, py) -> std::collections::BTreeMap<String, PyUsageCounts> {
            u.monthly.iter().map(|(k, v)| (k.clone(), PyUsageCounts(v.clone()))).collect()
        }
    }
}

/// A key that passed the format check (the secret is not kept).
#[pyclass(name = "ParsedKey", module = "dupify", frozen)]
pub struct PyParsedKey {
    environment: Environment,
    preview: String,
}

#[pymethods]
impl PyParsedKey {
    /// `live` or `test`.
    #[getter]
    fn environment(&self) -> &'static str {
        self.environment.as_str()
    }
    /// `fe_live_…` + the last 4 characters.
    #[getter]
    fn preview(&self) -> &str {
        &self.preview
    }
    fn __repr__(&self) -> String {
        format!("ParsedKey('{}')", self.preview)
    }
}

/// Checks a key's format (`fe_live_`/`fe_test_` + 32 characters from `[A-Za-z0-9]`); raises
/// `AuthenticationError` (`invalid_api_key`) saying why it is malformed, never echoing it.
#[pyfunction(name = "parse_key")]
pub fn py_parse_key(key: &str) -> Result<PyParsedKey> {
    let k = parse_key(key).map_err(dupify_keys::Error::from)?;
    Ok(PyParsedKey {
        environment: k.environment(),
        preview: k.preview(),
    })
}

/// `(name, value)` header pairs from a mapping (anything with `items()`) or an iterable of
/// pairs.
fn header_pairs(headers: &Bound<'_, PyAny>) -> Result<Vec<(String, String)>> {
    let items = if headers.hasattr("items")? && headers.cast::<PyString>().is_err() {
        headers.call_method0("items")?
    } else {
        headers.clone()
    };
    let iter = items.try_iter().map_err(|_| {
        Failure::invalid(
            "headers",
            "must be a mapping or (name, value) pairs of strings",
        )
    })?;
    let mut out = Vec::new();
    for item in iter {
        let (k, v): (String, String) = item?.extract().map_err(|_| {
            Failure::invalid(
                "headers",
                "must be a mapping or (name, value) pairs of strings",
            )
        })?;
        out.push((k, v));
    }
    Ok(out)
}

/// The API-key store: keys kept as HMAC-SHA-256 with the host's pepper in SQLite (WAL), usage
/// counted in memory and flushed periodically, per-minute rate limits and monthly quotas as in
/// the hosted tiers. Thread-safe; every call releases the GIL.
#[pyclass(name = "KeyStore", module = "dupify", frozen)]
pub struct PyKeyStore {
    inner: Arc<KeyStore>,
}

#[pymethods]
impl PyKeyStore {
    /// Opens (creating if needed) the store at `path`, or an in-memory store when `path` is
    /// `None`. `pepper` (non-empty bytes from the host's secret store) keys the stored hashes.
    /// `clock` (a `ManualClock`) replaces the system clock in tests.
    #[new]
    #[pyo3(signature = (path=None, *, pepper, flush_interval_secs=10.0, busy_timeout_secs=5.0, clock=None))]
    fn new(
        py: Python<'_>,
        path: Option<PathBuf>,
        pepper: Vec<u8>,
        flush_interval_secs: f64,
        busy_timeout_secs: f64,
        clock: Option<PyRef<'_, PyManualClock>>,
    ) -> Result<Self> {
        let secs = |v: f64, name: &str| {
            Duration::try_from_secs_f64(v).map_err(|e| Failure::invalid(name, format!("{e}")))
        };
        let mut opts = StoreOptions::default()
            .with_flush_interval(secs(flush_interval_secs, "flush_interval_secs")?)
            .with_busy_timeout(secs(busy_timeout_secs, "busy_timeout_secs")?);
        if let Some(c) = clock {
            let c: Arc<dyn Clock> = c.0.clone();
            opts = opts.with_clock(c);
        }
        let store = detached(py, move || match path {
            Some(p) => KeyStore::open_with(p, &pepper, opts),
            None => KeyStore::open_in_memory_with(&pepper, opts),
        })?;
        Ok(PyKeyStore {
            inner: Arc::new(store),
        })
    }

    /// Creates a key and returns it once. `scopes`: scope names (`embed`, `colors`,
    /// `silhouette`, `attributes`, `batch`, `catalog`); none = all scopes. `limits`: a `Limits`
    /// or a tier name (default `free`). `expires_at`: Unix seconds.
    #[pyo3(signature = (name, environment="live", *, scopes=None, limits=None, expires_at=None))]
    fn create(
        &self,
        py: Python<'_>,
        name: String,
        environment: &str,
        scopes: Option<Vec<String>>,
        limits: Option<&Bound<'_, PyAny>>,
        expires_at: Option<i64>,
    ) -> Result<PyCreatedKey> {
        let env: Environment = environment.parse()?;
        let mut spec = KeySpec::new(name, env);
        if let Some(s) = scopes {
            let s = s
                .iter()
                .map(|n| parse_scope(n))
                .collect::<Result<Vec<_>>>()?;
            spec = spec.with_scopes(s);
        }
        if let Some(l) = limits {
            spec = spec.with_limits(limits_arg(l)?);
        }
        if let Some(e) = expires_at {
            spec = spec.with_expiry(e);
        }
        let ks = self.inner.clone();
        detached(py, move || ks.create(spec)).map(PyCreatedKey::from)
    }

    /// Every key (oldest first), revoked ones included.
    fn list(&self, py: Python<'_>) -> Result<Vec<PyKeyRecord>> {
        let ks = self.inner.clone();
        let r = detached(py, move || ks.list())?;
        Ok(r.into_iter().map(PyKeyRecord).collect())
    }

    /// One key's record (`NotFoundError` if absent).
    fn get(&self, py: Python<'_>, id: i64) -> Result<PyKeyRecord> {
        let ks = self.inner.clone();
        detached(py, move || ks.get(id)).map(PyKeyRecord)
    }

    /// Revokes a key, immediately.
    fn revoke(&self, py: Python<'_>, id: i64) -> Result<()> {
        let ks = self.inner.clone();
        detached(py, move || ks.revoke(id))
    }

    /// Issues a new secret for an active key (same name, scopes, limits, expiry and counters);
    /// the old key is revoked now, or after `grace_secs`.
    #[pyo3(signature = (id, grace_secs=None))]
    fn regenerate(&self, py: Python<'_>, id: i64, grace_secs: Option<u64>) -> Result<PyCreatedKey> {
        let ks = self.inner.clone();
        detached(py, move || {
            ks.regenerate(id, grace_secs.map(Duration::from_secs))
        })
        .map(PyCreatedKey::from)
    }

    /// Changes a key's limits (a `Limits` or a tier name).
    fn set_limits(&self, py: Python<'_>, id: i64, limits: &Bound<'_, PyAny>) -> Result<()> {
        let l = limits_arg(limits)?;
        let ks = self.inner.clone();
        detached(py, move || ks.set_limits(id, l))
    }

    /// Authenticates a request from its headers (`X-API-Key: <key>` or
    /// `Authorization: Bearer <key>`; a mapping or `(name, value)` pairs). Raises
    /// `AuthenticationError` with `missing_api_key`, `invalid_api_key` or `expired_api_key`.
    fn authenticate(&self, py: Python<'_>, headers: &Bound<'_, PyAny>) -> Result<PyPrincipal> {
        let pairs = header_pairs(headers)?;
        let ks = self.inner.clone();
        detached(py, move || {
            ks.authenticate(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        })
        .map(PyPrincipal)
    }

    /// Verifies a bare key string (format, then the store).
    fn verify(&self, py: Python<'_>, key: String) -> Result<PyPrincipal> {
        let ks = self.inner.clone();
        detached(py, move || {
            let parsed = parse_key(&key).map_err(dupify_keys::Error::from)?;
            ks.verify(parsed)
        })
        .map(PyPrincipal)
    }

    /// Checks that `principal` may run `operation` (`embed`, `colors`, `silhouette`,
    /// `attributes`, `catalog`, or `batch` with the scopes of the operations inside it in
    /// `contains`) and counts the call. Raises `PermissionDeniedError`
    /// (`insufficient_scope`).
    #[pyo3(signature = (principal, operation, contains=None))]
    fn authorize(
        &self,
        py: Python<'_>,
        principal: PyRef<'_, PyPrincipal>,
        operation: &str,
        contains: Option<Vec<String>>,
    ) -> Result<()> {
        let op = match (operation, contains) {
            ("batch", Some(inner)) => Operation::batch(
                inner
                    .iter()
                    .map(|n| parse_scope(n))
                    .collect::<Result<Vec<_>>>()?,
            ),
            ("batch", None) => {
                return Err(Failure::from(dupify_core::Error::MissingParameter {
                    name: "contains".into(),
                })
                .into())
            }
            (_, Some(_)) => {
                return Err(Failure::invalid("contains", "is only meaningful for `batch`").into())
            }
            (name, None) => match parse_scope(name)? {
                Scope::Embed => Operation::Embed,
                Scope::Colors => Operation::Colors,
                Scope::Silhouette => Operation::Silhouette,
                Scope::Attributes => Operation::Attributes,
                Scope::Catalog => Operation::Catalog,
                other => {
                    return Err(Failure::invalid(
                        "operation",
                        format!("`{}` is not an operation", other.as_str()),
                    )
                    .into())
                }
            },
        };
        let p = principal.0;
        let ks = self.inner.clone();
        detached(py, move || ks.authorize(&p, &op))
    }

    /// Applies the monthly quota and the per-minute rate limit to one request (counting it
    /// when allowed). Returns a `RateDecision`; call `raise_for_status()` on it to raise.
    fn check_rate(
        &self,
        py: Python<'_>,
        principal: PyRef<'_, PyPrincipal>,
    ) -> Result<PyRateDecision> {
        let p = principal.0;
        let ks = self.inner.clone();
        detached(py, move || Ok::<_, Failure>(ks.check_rate(&p))).map(PyRateDecision)
    }

    /// Gives back the call the last allowed `check_rate` counted, for a request refused
    /// before any work (a malformed body): it then counts against neither the monthly quota
    /// nor the usage, but keeps its place in the per-minute window.
    fn release(&self, py: Python<'_>, principal: PyRef<'_, PyPrincipal>) -> Result<()> {
        let p = principal.0;
        let ks = self.inner.clone();
        detached(py, move || {
            ks.release(&p);
            Ok::<_, Failure>(())
        })
    }

    /// Usage of one key per day and month, including counts not yet flushed.
    fn usage(&self, py: Python<'_>, id: i64) -> Result<PyKeyUsage> {
        let ks = self.inner.clone();
        detached(py, move || ks.usage(id)).map(PyKeyUsage)
    }

    /// Writes buffered usage to the database now.
    fn flush(&self, py: Python<'_>) -> Result<()> {
        let ks = self.inner.clone();
        detached(py, move || ks.flush())
    }

    /// For a graceful stop: writes buffered usage and hands back the monthly-quota calls this
    /// process reserved but did not spend. The store stays usable.
    fn shutdown(&self, py: Python<'_>) -> Result<()> {
        let ks = self.inner.clone();
        detached(py, move || ks.shutdown())
    }

    fn __repr__(&self) -> String {
        "KeyStore(…)".to_string()
    }
}

fn limits_arg(obj: &Bound<'_, PyAny>) -> Result<Limits> {
    if let Ok(l) = obj.cast::<PyLimits>() {
        return Ok(l.get().0);
    }
    if let Ok(s) = obj.extract::<String>() {
        return Ok(PyLimits::tier(&s)?.0);
    }
    Err(Failure::invalid("limits", "must be a dupify.Limits or a tier name").into())
}
