//! `KeyStore` and `Principal` for JavaScript: argument conversion around [`dupify_keys`].
//!
//! The per-request path (`authenticate`, `verify`, `authorize`, `checkRate`) is synchronous:
//! it is a hash, one indexed read and a few atomics (the core verifies ≥ 200k keys/s), far
//! cheaper than a trip through the worker pool. Management calls that write (`create`,
//! `revoke`, `regenerate`, `setLimits`, `flush`) or scan (`list`, `usage`) are async.

use std::sync::Arc;
use std::time::Duration;

use dupify_keys::{parse_key, Environment, KeySpec, Limits, Operation, Scope, StoreOptions, Tier};
use napi::bindgen_prelude::{AsyncTask, ClassInstance, Unknown};
use napi::Env;
use napi_derive::napi;
use serde::Deserialize;

use crate::convert::{arg, arg_or_default, from_value, is_nullish, string_arg, to_json, Js};
use crate::error::{sync, ErrInfo, Res};
use crate::task::{Job, Opener};

/// Options of `KeyStore.open` / `openInMemory`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoreOpts {
    /// How often buffered usage is written to SQLite. Default 10 000.
    flush_interval_ms: Option<u64>,
    /// SQLite busy timeout. Default 5 000.
    busy_timeout_ms: Option<u64>,
}

impl StoreOpts {
    fn into_core(self) -> StoreOptions {
        let mut o = StoreOptions::default();
        if let Some(ms) = self.flush_interval_ms {
            o = o.with_flush_interval(Duration::from_millis(ms));
        }
        if let Some(ms) = self.busy_timeout_ms {
            o = o.with_busy_timeout(Duration::from_millis(ms));
        }
        o
    }
}

/// `keyStore.create(spec)`: what to create.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeySpecJs {
    name: String,
    environment: Environment,
    #[serde(default)]
    scopes: Vec<Scope>,
    expires_at: Option<i64>,
    limits: Option<LimitsJs>,
}

/// A hosted tier name or custom `{ per_minute, monthly }` limits.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LimitsJs {
    Tier(Tier),
    Custom(Limits),
}

impl LimitsJs {
    fn into_core(self) -> Res<Limits> {
        Ok(match self {
            LimitsJs::Tier(t) => Limits::tier(t),
            LimitsJs::Custom(l) => Limits::custom(l.per_minute, l.monthly)?,
        })
    }
}

/// The pepper: a non-empty string (UTF-8) or bytes.
fn pepper_arg(v: Option<&Unknown<'_>>) -> Res<Vec<u8>> {
    let Some(v) = v.filter(|v| !is_nullish(v)) else {
        return Err(ErrInfo::missing("pepper"));
    };
    match to_json(v, "pepper")? {
        serde_json::Value::String(s) => Ok(s.into_bytes()),
        other => from_value::<Vec<u8>>(other, "pepper"),
    }
}

fn key_id(v: Option<&Unknown<'_>>) -> Res<i64> {
    arg(v, "id")
}

/// The API-key store: hashed keys, scopes, usage, rate limits and quotas.
#[napi]
pub struct KeyStore {
    inner: Arc<dupify_keys::KeyStore>,
}

/// An authenticated caller, as returned by `authenticate`/`verify`; pass it back to
/// `authorize` and `checkRate`.
#[napi]
pub struct Principal {
    inner: dupify_keys::Principal,
}

#[napi]
impl Principal {
    /// The key's id.
    #[napi(getter)]
    pub fn key_id(&self) -> i64 {
        self.inner.key_id()
    }

    /// The key's regeneration chain (rate and quota are counted per lineage).
    #[napi(getter)]
    pub fn lineage_id(&self) -> i64 {
        self.inner.lineage_id()
    }

    /// `'live'` or `'test'`: which catalog namespace the caller may touch.
    #[napi(getter, ts_return_type = "'live' | 'test'")]
    pub fn environment(&self) -> String {
        self.inner.environment().as_str().to_string()
    }

    /// The principal as the core's JSON (`key_id`, `lineage_id`, `env`, `scopes`, `limits`).
    #[napi(js_name = "toJSON", ts_return_type = "PrincipalJson")]
    pub fn to_json(&self, env: Env) -> napi::Result<Js> {
        sync(&env, || Js::from_serde(&self.inner))
    }
}

fn principal_arg<'a>(v: Option<&Unknown<'a>>) -> Res<dupify_keys::Principal> {
    match v {
        Some(v) if !is_nullish(v) => {
            let p: ClassInstance<Principal> = unsafe { v.cast() }
                .map_err(|_| ErrInfo::invalid("principal", "must be a Principal"))?;
            Ok(p.inner)
        }
        _ => Err(ErrInfo::missing("principal")),
    }
}

/// `'embed' | 'colors' | 'silhouette' | 'attributes' | 'catalog'` or `{ batch: [...] }`.
fn operation_arg(v: Option<&Unknown<'_>>) -> Res<Operation> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Batch {
        batch: Vec<Scope>,
    }
    let json = match v {
        Some(v) if !is_nullish(v) => to_json(v, "operation")?,
        _ => return Err(ErrInfo::missing("operation")),
    };
    if let serde_json::Value::String(s) = &json {
        return match s.as_str() {
            "embed" => Ok(Operation::Embed),
            "colors" => Ok(Operation::Colors),
            "silhouette" => Ok(Operation::Silhouette),
            "attributes" => Ok(Operation::Attributes),
            "catalog" => Ok(Operation::Catalog),
            other => Err(ErrInfo::invalid(
                "operation",
                format!(
                    "unknown operation `{other}` (expected embed, colors, silhouette, \
                     attributes, catalog or {{ batch: [...] }})"
                ),
            )),
        };
    }
    let b: Batch = from_value(json, "operation")?;
    Ok(Operation::batch(b.batch))
}

/// Request headers: `{ name: value | value[] }` (Node's `req.headers`) or `[name, value][]`.
fn headers_arg(v: Option<&Unknown<'_>>) -> Res<Vec<(String, String)>> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum One {
        One(String),
        Many(Vec<String>),
    }
    let Some(v) = v.filter(|v| !is_nullish(v)) else {
        return Err(ErrInfo::missing("headers"));
    };
    match to_json(v, "headers")? {
        serde_json::Value::Array(pairs) => {
            from_value::<Vec<(String, String)>>(serde_json::Value::Array(pairs), "headers")
        }
        json => {
            let map: std::collections::BTreeMap<String, One> = from_value(json, "headers")?;
            Ok(map
                .into_iter()
                .flat_map(|(k, v)| match v {
                    One::One(s) => vec![(k, s)],
                    One::Many(list) => list.into_iter().map(|s| (k.clone(), s)).collect(),
                })
                .collect())
        }
    }
}

fn created_js(c: dupify_keys::CreatedKey) -> Res<Js> {
    Ok(Js::Obj(vec![
        ("key".into(), Js::Str(c.key.expose().to_string())),
        ("record".into(), Js::from_serde(&c.record)?),
    ]))
}

#[napi]
impl KeyStore {
    /// Opens (or creates) the keys database at `path`. `pepper` (non-empty string or bytes)
    /// is the server-side secret the keys are hashed with: keep it out of the database.
    #[napi(
        ts_args_type = "path: string, pepper: string | Uint8Array, options?: KeyStoreOptions",
        ts_return_type = "Promise<KeyStore>"
    )]
    pub fn open(
        path: Option<Unknown>,
        pepper: Option<Unknown>,
        options: Option<Unknown>,
    ) -> AsyncTask<Opener<KeyStore>> {
        let args = (|| {
            let path = string_arg(path.as_ref(), "path")?;
            let pepper = pepper_arg(pepper.as_ref())?;
            let opts: StoreOpts = arg_or_default(options.as_ref(), "options")?;
            Ok((path, pepper, opts))
        })();
        Opener::try_run(args, |(path, pepper, opts)| {
            Ok(KeyStore {
                inner: Arc::new(dupify_keys::KeyStore::open_with(
                    path,
                    &pepper,
                    opts.into_core(),
                )?),
            })
        })
    }

    /// An in-memory store (tests, ephemeral use).
    #[napi(
        factory,
        ts_args_type = "pepper: string | Uint8Array, options?: KeyStoreOptions"
    )]
    pub fn open_in_memory(
        env: Env,
        pepper: Option<Unknown>,
        options: Option<Unknown>,
    ) -> napi::Result<KeyStore> {
        sync(&env, || {
            let pepper = pepper_arg(pepper.as_ref())?;
            let opts: StoreOpts = arg_or_default(options.as_ref(), "options")?;
            Ok(KeyStore {
                inner: Arc::new(dupify_keys::KeyStore::open_in_memory_with(
                    &pepper,
                    opts.into_core(),
                )?),
            })
        })
    }

    /// Creates a key. The plaintext `key` is in the result once and never again.
    #[napi(ts_args_type = "spec: KeySpec", ts_return_type = "Promise<CreatedKey>")]
    pub fn create(&self, spec: Option<Unknown>) -> AsyncTask<Job> {
        let s = self.inner.clone();
        let args = (|| {
            let spec: KeySpecJs = arg(spec.as_ref(), "spec")?;
            let mut k = KeySpec::new(spec.name, spec.environment).with_scopes(spec.scopes);
            if let Some(t) = spec.expires_at {
                k = k.with_expiry(t);
            }
            if let Some(l) = spec.limits {
                k = k.with_limits(l.into_core()?);
            }
            Ok(k)
        })();
        Job::try_run(args, move |k| created_js(s.create(k)?))
    }

    /// Every key's record (nothing secret).
    #[napi(ts_return_type = "Promise<KeyRecord[]>")]
    pub fn list(&self) -> AsyncTask<Job> {
        let s = self.inner.clone();
        Job::run(move || Js::from_serde(&s.list()?))
    }

    /// One key's record (`not_found` when absent).
    #[napi(ts_args_type = "id: number", ts_return_type = "Promise<KeyRecord>")]
    pub fn get(&self, id: Option<Unknown>) -> AsyncTask<Job> {
        let s = self.inner.clone();
        Job::try_run(key_id(id.as_ref()), move |id| Js::from_serde(&s.get(id)?))
    }

    /// Revokes a key, immediately.
    #[napi(ts_args_type = "id: number", ts_return_type = "Promise<void>")]
    pub fn revoke(&self, id: Option<Unknown>) -> AsyncTask<Job> {
        let s = self.inner.clone();
        Job::try_run(key_id(id.as_ref()), move |id| {
            s.revoke(id)?;
            Ok(Js::Undefined)
        })
    }

    /// Issues a new secret for the key (same name, scopes, limits, expiry) and revokes the
    /// old one now, or after `graceSecs`.
    #[napi(
        ts_args_type = "id: number, graceSecs?: number",
        ts_return_type = "Promise<CreatedKey>"
    )]
    pub fn regenerate(&self, id: Option<Unknown>, grace_secs: Option<Unknown>) -> AsyncTask<Job> {
        let s = self.inner.clone();
        let args = (|| {
            let id = key_id(id.as_ref())?;
            let grace: Option<f64> = arg_or_default(grace_secs.as_ref(), "graceSecs")?;
            let grace = match grace {
                Some(g) if !(g.is_finite() && g >= 0.0) => {
                    return Err(ErrInfo::invalid("graceSecs", "must be a number ≥ 0"))
                }
                g => g.map(Duration::from_secs_f64),
            };
            Ok((id, grace))
        })();
        Job::try_run(args, move |(id, grace)| {
            created_js(s.regenerate(id, grace)?)
        })
    }

    /// Replaces a key's limits: a tier name or `{ per_minute, monthly }`.
    #[napi(
        ts_args_type = "id: number, limits: Tier | Limits",
        ts_return_type = "Promise<void>"
    )]
    pub fn set_limits(&self, id: Option<Unknown>, limits: Option<Unknown>) -> AsyncTask<Job> {
        let s = self.inner.clone();
        let args = (|| {
            let id = key_id(id.as_ref())?;
            let l: LimitsJs = arg(limits.as_ref(), "limits")?;
            Ok((id, l.into_core()?))
        })();
        Job::try_run(args, move |(id, l)| {
            s.set_limits(id, l)?;
            Ok(Js::Undefined)
        })
    }

    /// Usage per UTC day and month, including counts not yet flushed.
    #[napi(ts_args_type = "id: number", ts_return_type = "Promise<KeyUsage>")]
    pub fn usage(&self, id: Option<Unknown>) -> AsyncTask<Job> {
        let s = self.inner.clone();
        Job::try_run(key_id(id.as_ref()), move |id| Js::from_serde(&s.usage(id)?))
    }

    /// Writes buffered usage to the database now.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn flush(&self) -> AsyncTask<Job> {
        let s = self.inner.clone();
        Job::run(move || {
            s.flush()?;
            Ok(Js::Undefined)
        })
    }

    /// For a graceful stop: writes buffered usage and hands back the monthly-quota calls this
    /// process reserved but did not spend. The store stays usable.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn shutdown(&self) -> AsyncTask<Job> {
        let s = self.inner.clone();
        Job::run(move || {
            s.shutdown()?;
            Ok(Js::Undefined)
        })
    }

    /// Authenticates a request from its headers (`X-API-Key` or `Authorization: Bearer`).
    /// Throws `missing_api_key`, `invalid_api_key` or `expired_api_key`.
    #[napi(ts_args_type = "headers: Headers")]
    pub fn authenticate(&self, env: Env, headers: Option<Unknown>) -> napi::Result<Principal> {
        sync(&env, || {
            let h = headers_arg(headers.as_ref())?;
            let p = self
                .inner
                .authenticate(h.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
            Ok(Principal { inner: p })
        })
    }

    /// Verifies a bare key string (already taken out of the request).
    #[napi(ts_args_type = "key: string")]
    pub fn verify(&self, env: Env, key: Option<Unknown>) -> napi::Result<Principal> {
        sync(&env, || {
            let k = string_arg(key.as_ref(), "key")?;
            let parsed = parse_key(&k).map_err(dupify_keys::Error::from)?;
            Ok(Principal {
                inner: self.inner.verify(parsed)?,
            })
        })
    }

    /// Checks that the principal may run `operation` (a batch needs `batch` plus the scope of
    /// every operation in it) and counts the call. Throws `insufficient_scope`.
    #[napi(ts_args_type = "principal: Principal, operation: Operation")]
    pub fn authorize(
        &self,
        env: Env,
        principal: Option<Unknown>,
        operation: Option<Unknown>,
    ) -> napi::Result<()> {
        sync(&env, || {
            let p = principal_arg(principal.as_ref())?;
            let op = operation_arg(operation.as_ref())?;
            Ok(self.inner.authorize(&p, &op)?)
        })
    }

    /// Applies the per-minute rate limit and the monthly quota to one request and returns
    /// the decision with the rate-limit header values (`decision`: `allowed`,
    /// `rate_limited` or `quota_exceeded`). An allowed request is counted.
    #[napi(ts_args_type = "principal: Principal", ts_return_type = "RateDecision")]
    pub fn check_rate(&self, env: Env, principal: Option<Unknown>) -> napi::Result<Js> {
        sync(&env, || {
            let p = principal_arg(principal.as_ref())?;
            Js::from_serde(&self.inner.check_rate(&p))
        })
    }

    /// Gives back the call the last allowed `checkRate` counted, for a request refused before
    /// any work (a malformed body): it then counts against neither the monthly quota nor the
    /// usage, but keeps its place in the per-minute window.
    #[napi(ts_args_type = "principal: Principal")]
    pub fn release(&self, env: Env, principal: Option<Unknown>) -> napi::Result<()> {
        sync(&env, || {
            let p = principal_arg(principal.as_ref())?;
            self.inner.release(&p);
            Ok(())
        })
    }

    /// `checkRate`, throwing `rate_limit_exceeded` / `quota_exceeded` (with `.retryAfterSecs`)
    /// when denied; returns the header values when allowed.
    #[napi(ts_args_type = "principal: Principal", ts_return_type = "RateHeaders")]
    pub fn enforce_rate(&self, env: Env, principal: Option<Unknown>) -> napi::Result<Js> {
        sync(&env, || {
            let p = principal_arg(principal.as_ref())?;
            Js::from_serde(&self.inner.check_rate(&p).into_result()?)
        })
    }
}

/// `[name, value]` pairs of the rate-limit response headers for a `checkRate` result's
/// `headers` (the `X-Monthly-*` pair only for capped keys).
#[napi(
    ts_args_type = "headers: RateHeaders",
    ts_return_type = "Array<[string, string]>"
)]
pub fn rate_limit_header_pairs(env: Env, headers: Option<Unknown>) -> napi::Result<Js> {
    #[derive(Deserialize)]
    struct H {
        limit: u32,
        remaining: u32,
        reset: i64,
        monthly_limit: Option<u64>,
        monthly_remaining: Option<u64>,
    }
    sync(&env, || {
        let h: H = arg(headers.as_ref(), "headers")?;
        let core = dupify_keys::RateHeaders {
            limit: h.limit,
            remaining: h.remaining,
            reset: h.reset,
            monthly_limit: h.monthly_limit,
            monthly_remaining: h.monthly_remaining,
        };
        Ok(Js::Arr(
            core.pairs()
                .into_iter()
                .map(|(k, v)| Js::Arr(vec![Js::Str(k.to_string()), Js::Str(v)]))
                .collect(),
        ))
    })
}
