//! The Dupify API's shared vocabulary, in one place for every crate and binding:
//!
//! - [`ERROR_CODES`]: every error code the hosted API answers with, its HTTP status and what
//!   it means. `dupify-core` and `dupify-keys` map their error variants onto these entries
//!   (never onto string literals of their own), the HTTP server builds its envelope from them,
//!   and the Python and Node bindings test their error classes against this table, so a code
//!   that exists in one place only fails a test.
//! - [`Environment`]: live or test, shared by API keys (`fe_live_`/`fe_test_`) and catalog
//!   namespaces (a test key reads and writes only test products).
//! - [`location`]: telling a `postgres://` URL from a SQLite path, and the URL with its
//!   password hidden, for the catalog and the key store alike.
//!
//! No dependencies beyond `serde`: the key crate, which must build without LibTorch, uses it
//! as well as the core crate.

pub mod location;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One hosted error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ErrorCode {
    /// The code in the error envelope, e.g. `invalid_parameter`.
    pub code: &'static str,
    /// The HTTP status the hosted API answers it with.
    pub http_status: u16,
    /// When it is returned.
    pub meaning: &'static str,
}

macro_rules! codes {
    ($($name:ident = ($code:literal, $status:literal, $meaning:literal);)*) => {
        impl ErrorCode {
            $(
                #[doc = $meaning]
                pub const $name: ErrorCode =
                    ErrorCode { code: $code, http_status: $status, meaning: $meaning };
            )*
        }

        /// Every hosted error code, each once.
        pub const ERROR_CODES: &[ErrorCode] = &[$(ErrorCode::$name),*];
    };
}

codes! {
    MISSING_PARAMETER = ("missing_parameter", 400, "A required parameter is absent.");
    INVALID_PARAMETER = ("invalid_parameter", 400, "A parameter has a value outside its documented domain.");
    INVALID_BASE64 = ("invalid_base64", 400, "The base64 image payload does not decode.");
    UNSUPPORTED_FORMAT = ("unsupported_format", 422, "The bytes are not an accepted image format (JPEG, PNG, WebP, GIF, BMP).");
    IMAGE_PROCESSING_FAILED = ("image_processing_failed", 422, "The image is too large, empty or corrupt.");
    INVALID_IMAGE_URL = ("invalid_image_url", 400, "The image URL was refused before any request (scheme, syntax, private address).");
    IMAGE_FETCH_FAILED = ("image_fetch_failed", 422, "The image URL could not be fetched (network, status, size or time limit).");
    MISSING_API_KEY = ("missing_api_key", 401, "No API key in `X-API-Key` or `Authorization: Bearer`.");
    INVALID_API_KEY = ("invalid_api_key", 401, "The API key is malformed, unknown, revoked, or the request carries two different keys.");
    EXPIRED_API_KEY = ("expired_api_key", 401, "The API key passed its expiry time.");
    INSUFFICIENT_SCOPE = ("insufficient_scope", 403, "The API key lacks a scope the operation needs.");
    RATE_LIMIT_EXCEEDED = ("rate_limit_exceeded", 429, "Too many requests in the per-minute window; see Retry-After.");
    QUOTA_EXCEEDED = ("quota_exceeded", 403, "The monthly call quota is used up until it resets.");
    NOT_FOUND = ("not_found", 404, "The product, key or route does not exist.");
    CONFLICT = ("conflict", 409, "The write would break a uniqueness rule or the record is not in a state that allows it.");
    METHOD_NOT_ALLOWED = ("method_not_allowed", 405, "The route exists but not with this HTTP method.");
    PAYLOAD_TOO_LARGE = ("payload_too_large", 413, "The request body exceeds the server's limit.");
    REQUEST_TIMEOUT = ("request_timeout", 408, "The client stopped sending the request body before it was complete.");
    NOT_AVAILABLE = ("not_available", 501, "The operation needs something this deployment lacks (a text tower, a cargo feature).");
    MODEL_ERROR = ("model_error", 500, "A model or attribute head could not be loaded.");
    CANCELLED = ("cancelled", 499, "The caller cancelled the operation.");
    INTERNAL_ERROR = ("internal_error", 500, "A bug, a storage failure or an unexpected state; details are logged, not sent.");
}

impl ErrorCode {
    /// The entry for `code`, if the hosted API has it.
    pub fn lookup(code: &str) -> Option<&'static ErrorCode> {
        ERROR_CODES.iter().find(|c| c.code == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// Live or test data, as the key prefix (`fe_live_` / `fe_test_`) says. Test keys never see
/// or change live products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Production: `fe_live_…`.
    Live,
    /// Development and testing: `fe_test_…`.
    Test,
}

impl Environment {
    /// `"live"` or `"test"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }

    /// The full key prefix, `fe_live_` or `fe_test_`.
    pub fn key_prefix(self) -> &'static str {
        match self {
            Environment::Live => "fe_live_",
            Environment::Test => "fe_test_",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is neither `live` nor `test`. Each crate turns it into its own
/// `invalid_parameter` error naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEnvironmentError {
    /// What was given.
    pub given: String,
}

impl fmt::Display for ParseEnvironmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not `live` or `test`", self.given)
    }
}

impl std::error::Error for ParseEnvironmentError {}

impl FromStr for Environment {
    type Err = ParseEnvironmentError;
    fn from_str(s: &str) -> Result<Self, ParseEnvironmentError> {
        match s {
            "live" => Ok(Environment::Live),
            "test" => Ok(Environment::Test),
            other => Err(ParseEnvironmentError {
                given: other.to_string(),
            }),
        }
    }
}

/// `with_*` builder setters for the option structs of every Dupify crate, one line each
/// instead of a five-line method: the parameter is named after the field it sets.
///
/// ```
/// #[derive(Default)]
/// struct Opts {
///     n: usize,
///     on: bool,
/// }
/// dupify_types::setters! { Opts {
///     /// Sets `n`.
///     with_n(n: usize),
///     /// Turns it on or off.
///     with_on(on: bool),
/// } }
/// let o = Opts::default().with_n(3).with_on(true);
/// assert_eq!((o.n, o.on), (3, true));
/// ```
#[macro_export]
macro_rules! setters {
    ($ty:ty { $( $(#[$doc:meta])* $name:ident($field:ident: $t:ty) ),* $(,)? }) => {
        impl $ty {
            $(
                $(#[$doc])*
                pub fn $name(mut self, $field: $t) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_snake_case_with_an_http_error_status() {
        let mut seen = std::collections::HashSet::new();
        for c in ERROR_CODES {
            assert!(seen.insert(c.code), "{} twice", c.code);
            assert!(
                c.code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                c.code
            );
            assert!((400..600).contains(&c.http_status), "{}", c.code);
            assert!(c.meaning.ends_with('.'), "{}", c.code);
            assert_eq!(ErrorCode::lookup(c.code), Some(c));
        }
        assert_eq!(ErrorCode::lookup("no_such_code"), None);
    }

    #[test]
    fn environment_round_trips_through_text_and_serde() {
        for env in [Environment::Live, Environment::Test] {
            assert_eq!(env.as_str().parse::<Environment>(), Ok(env));
            assert_eq!(env.key_prefix(), format!("fe_{env}_"));
            let json = serde_json::to_string(&env).unwrap();
            assert_eq!(json, format!("\"{env}\""));
            assert_eq!(serde_json::from_str::<Environment>(&json).unwrap(), env);
        }
        let e = "prod".parse::<Environment>().unwrap_err();
        assert_eq!(e.to_string(), "`prod` is not `live` or `test`");
    }
}
