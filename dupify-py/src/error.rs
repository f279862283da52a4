//! All error mapping of the binding, in one place: core and keys errors become instances of
//! the `dupify.DupifyError` hierarchy (defined in `dupify/errors.py`) carrying the hosted error
//! `code`, the HTTP status and, for rate limits, `retry_after_secs` and the header values.
//!
//! Heavy calls run through [`detached`]: the GIL is released, and a Rust panic is caught and
//! turned into an `internal_error`, so no panic ever unwinds into Python.

use std::panic::{catch_unwind, AssertUnwindSafe};

use dupify_keys::RateHeaders;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

/// A failure described in the hosted API's vocabulary, not yet a Python object (so it can be
/// produced without the GIL).
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: &'static str,
    pub http_status: u16,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    pub headers: Option<RateHeaders>,
}

impl Failure {
    /// `invalid_parameter` for a value the binding cannot convert.
    pub fn invalid(name: &str, reason: impl std::fmt::Display) -> Self {
        Failure::from(dupify_core::Error::InvalidParameter {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    }

    /// `internal_error` (a caught panic, an impossible state).
    pub fn internal(message: impl Into<String>) -> Self {
        Failure::from(dupify_core::Error::Internal(message.into()))
    }

    /// The matching `DupifyError` subclass instance (not raised).
    pub fn to_exception<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static FACTORY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let factory = FACTORY.get_or_try_init(py, || {
            py.import("dupify.errors")?
                .getattr("_from_native")
                .map(Bound::unbind)
        })?;
        let headers = match &self.headers {
            Some(h) => {
                let d = PyDict::new(py);
                for (name, value) in h.pairs() {
                    d.set_item(name, value)?;
                }
                Some(d)
            }
            None => None,
        };
        factory.bind(py).call1((
            self.code,
            self.message.as_str(),
            self.http_status,
            self.retry_after_secs,
            headers,
        ))
    }

    /// The exception to raise.
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self.to_exception(py) {
            Ok(e) => PyErr::from_value(e),
            Err(e) => e,
        }
    }
}

impl From<dupify_core::Error> for Failure {
    fn from(e: dupify_core::Error) -> Self {
        Failure {
            code: e.code(),
            http_status: e.http_status(),
            message: e.to_string(),
            retry_after_secs: None,
            headers: None,
        }
    }
}

impl From<dupify_keys::Error> for Failure {
    fn from(e: dupify_keys::Error) -> Self {
        let headers = match &e {
            dupify_keys::Error::RateLimitExceeded { headers, .. }
            | dupify_keys::Error::QuotaExceeded { headers, .. } => Some(*headers),
            _ => None,
        };
        Failure {
            code: e.code(),
            http_status: e.http_status(),
            message: e.to_string(),
            retry_after_secs: e.retry_after_secs(),
            headers,
        }
    }
}

/// The binding's error: a native failure, or a Python exception already raised by a callback
/// or a conversion.
#[derive(Debug)]
pub enum Error {
    Native(Failure),
    Python(PyErr),
}

/// `Result` of the binding's functions; converts into `PyResult` at the boundary.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        Error::Native(f)
    }
}
impl From<dupify_core::Error> for Error {
    fn from(e: dupify_core::Error) -> Self {
        Error::Native(e.into())
    }
}
impl From<dupify_keys::Error> for Error {
    fn from(e: dupify_keys::Error) -> Self {
        Error::Native(e.into())
    }
}
impl From<dupify_types::ParseEnvironmentError> for Error {
    fn from(e: dupify_types::ParseEnvironmentError) -> Self {
        Error::Native(dupify_core::Error::from(e).into())
    }
}
impl From<PyErr> for Error {
    fn from(e: PyErr) -> Self {
        Error::Python(e)
    }
}
impl From<Error> for PyErr {
    fn from(e: Error) -> Self {
        match e {
            Error::Python(e) => e,
            Error::Native(f) => Python::attach(|py| f.into_pyerr(py)),
        }
    }
}

/// The message of a caught panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs `f` with the GIL released; a panic becomes an `internal_error` failure.
pub fn detached<T, E, F>(py: Python<'_>, f: F) -> Result<T>
where
    T: Send,
    E: Into<Failure> + Send,
    F: FnOnce() -> std::result::Result<T, E> + Send,
{
    py.detach(|| match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::Native(e.into())),
        Err(payload) => Err(Error::Native(Failure::internal(format!(
            "panic in dupify: {}",
            panic_message(payload.as_ref())
        )))),
    })
}

/// Every hosted error code with its HTTP status, from the one table of the Rust crates
/// (`dupify_core::ERROR_CODES`): the Python hierarchy is tested against it.
#[pyfunction]
pub fn error_codes() -> Vec<(&'static str, u16)> {
    dupify_core::ERROR_CODES
        .iter()
        .map(|c| (c.code, c.http_status))
        .collect()
}
