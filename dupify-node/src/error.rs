//! All error mapping of the binding, in one place.
//!
//! Every failure reaches JavaScript as an `Error` whose `.code` is the hosted API's error code
//! (`invalid_base64`, `image_processing_failed`, `invalid_api_key`, …), `.status` the HTTP
//! status the hosted API answers with, and, for rate-limit and quota errors, `.retryAfterSecs`.
//! Errors are first captured as plain data ([`ErrInfo`], `Send`, built on any thread) and only
//! turned into a JS object on the JS thread. Panics are caught at the boundary ([`guard`]) and
//! become `internal_error`: no panic ever unwinds into Node.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, Unknown};
use napi::{sys, Env};

/// An error as data: what the JS `Error` will carry.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrInfo {
    /// Hosted error code, the JS error's `.code`.
    pub code: String,
    /// HTTP status of the hosted API for this error, the JS error's `.status`.
    pub status: u16,
    /// Human-readable message.
    pub message: String,
    /// `Retry-After` seconds for `rate_limit_exceeded` / `quota_exceeded`.
    pub retry_after_secs: Option<u64>,
}

pub type Res<T> = std::result::Result<T, ErrInfo>;

impl ErrInfo {
    /// `invalid_parameter` (400) about argument `name`.
    pub fn invalid(name: &str, reason: impl std::fmt::Display) -> Self {
        dupify_core::Error::InvalidParameter {
            name: name.into(),
            reason: reason.to_string(),
        }
        .into()
    }

    /// `missing_parameter` (400) for argument `name`.
    pub fn missing(name: &str) -> Self {
        dupify_core::Error::MissingParameter { name: name.into() }.into()
    }

    /// `internal_error` (500).
    pub fn internal(message: impl Into<String>) -> Self {
        dupify_core::Error::Internal(message.into()).into()
    }

    /// Builds the JS `Error` object (on the JS thread).
    ///
    /// # Safety
    /// `env` must be the current, valid napi environment.
    pub unsafe fn to_js(&self, env: sys::napi_env) -> napi::Result<sys::napi_value> {
        let code = unsafe { String::to_napi_value(env, self.code.clone())? };
        let msg = unsafe { String::to_napi_value(env, self.message.clone())? };
        let mut err = ptr::null_mut();
        napi::check_status!(
            unsafe { sys::napi_create_error(env, code, msg, &mut err) },
            "cannot create an Error"
        )?;
        let status = unsafe { u32::to_napi_value(env, u32::from(self.status))? };
        napi::check_status!(
            unsafe { sys::napi_set_named_property(env, err, c"status".as_ptr(), status) },
            "cannot set Error.status"
        )?;
        if let Some(s) = self.retry_after_secs {
            let v = unsafe { f64::to_napi_value(env, s as f64)? };
            napi::check_status!(
                unsafe { sys::napi_set_named_property(env, err, c"retryAfterSecs".as_ptr(), v) },
                "cannot set Error.retryAfterSecs"
            )?;
        }
        Ok(err)
    }

    /// A `napi::Error` that, thrown or used to reject a promise, is exactly the JS `Error`
    /// built by [`ErrInfo::to_js`] (napi keeps a reference to the original object).
    pub fn into_napi(self, env: &Env) -> napi::Error {
        let raw = env.raw();
        match unsafe { self.to_js(raw) }.and_then(|v| unsafe { Unknown::from_napi_value(raw, v) }) {
            Ok(obj) => napi::Error::from(obj),
            // Creating the error object itself failed (out of memory, a pending exception):
            // fall back to napi's own error, which still carries the message.
            Err(_) => napi::Error::new(napi::Status::GenericFailure, self.message),
        }
    }
}

impl From<dupify_core::Error> for ErrInfo {
    fn from(e: dupify_core::Error) -> Self {
        ErrInfo {
            code: e.code().to_string(),
            status: e.http_status(),
            message: e.to_string(),
            retry_after_secs: None,
        }
    }
}

impl From<dupify_keys::Error> for ErrInfo {
    fn from(e: dupify_keys::Error) -> Self {
        ErrInfo {
            code: e.code().to_string(),
            status: e.http_status(),
            message: e.to_string(),
            retry_after_secs: e.retry_after_secs(),
        }
    }
}

/// Runs `f`, turning a panic into `internal_error` so it never crosses into JavaScript.
pub(crate) fn guard<T>(f: impl FnOnce() -> Res<T>) -> Res<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(ErrInfo::internal(format!("panic in dupify: {what}")))
        }
    }
}

/// For synchronous methods: runs `f` under [`guard`] and throws its error as a coded JS error.
pub(crate) fn sync<T>(env: &Env, f: impl FnOnce() -> Res<T>) -> napi::Result<T> {
    guard(f).map_err(|e| e.into_napi(env))
}
