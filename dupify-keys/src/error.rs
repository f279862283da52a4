//! The one error type of `dupify-keys`. Every variant knows the hosted API's error code and
//! HTTP status, so a host maps it to the hosted error envelope without string matching.

use std::path::PathBuf;

use dupify_types::ErrorCode;

use crate::limits::RateHeaders;
use crate::scope::Scope;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a string is not a well-formed key. Never echoes the input (it may be a real secret
/// with a typo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The key is the empty string.
    #[error("the key is empty")]
    Empty,
    /// The key does not start with `fe_`.
    #[error("the key does not start with `fe_`")]
    WrongPrefix,
    /// `fe_` is not followed by `live_` or `test_`.
    #[error("the key's environment is not `live_` or `test_`")]
    UnknownEnvironment,
    /// The random part has the wrong number of characters.
    #[error("the key's random part has {actual} characters, expected {expected}")]
    WrongLength { expected: usize, actual: usize },
    /// A character of the random part is outside `[A-Za-z0-9]`.
    #[error("the key has a character outside [A-Za-z0-9] at position {position}")]
    BadCharacter { position: usize },
}

/// Everything that can go wrong in `dupify-keys`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Neither `X-API-Key` nor `Authorization: Bearer` carries a key.
    #[error("no API key: send it in `X-API-Key` or `Authorization: Bearer <key>`")]
    MissingApiKey,

    /// The presented key is not a well-formed Dupify key.
    #[error("malformed API key: {0}")]
    MalformedApiKey(#[from] FormatError),

    /// The request carries two different keys (`X-API-Key` and `Authorization: Bearer`, or a
    /// repeated header). Refused rather than guessing which one the client meant.
    #[error("the request carries two different API keys; send exactly one")]
    ConflictingApiKeys,

    /// The key is well formed but no stored key has it.
    #[error("unknown API key")]
    UnknownApiKey,

    /// The key was revoked (or its regeneration grace period ended).
    #[error("the API key was revoked")]
    RevokedApiKey,

    /// The key passed its expiry time (unix seconds).
    #[error("the API key expired at {expired_at} (unix seconds)")]
    ExpiredApiKey { expired_at: i64 },

    /// The key lacks scopes the operation needs.
    #[error("the API key lacks the scope(s) {}", list(missing))]
    InsufficientScope { missing: Vec<Scope> },

    /// Too many requests in the per-minute window. Retry after `retry_after_secs`.
    #[error("rate limit exceeded: retry after {retry_after_secs} s")]
    RateLimitExceeded {
        retry_after_secs: u64,
        headers: RateHeaders,
    },

    /// The monthly quota is used up until `resets_at` (unix seconds).
    #[error("monthly quota exceeded: {used} of {limit} calls used, resets at {resets_at}")]
    QuotaExceeded {
        used: u64,
        limit: u64,
        resets_at: i64,
        retry_after_secs: u64,
        headers: RateHeaders,
    },

    /// No key with this id.
    #[error("API key {id} not found")]
    KeyNotFound { id: i64 },

    /// The operation needs an active key (for example regenerating a revoked one).
    #[error("API key {id} is {status}, not active")]
    KeyNotActive { id: i64, status: &'static str },

    /// A caller-supplied value is out of its domain (empty pepper, empty name, zero rate…).
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter { name: &'static str, reason: String },

    /// The keys database failed while doing `context` ("creating a key", "flushing usage"…).
    /// The source is the database driver's error, kept opaque so that the driver is not part
    /// of this crate's API.
    #[error("keys database error while {context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The key pepper from `origin` (a file, the environment variable, a supplied value) is
    /// not valid pepper text; `reason` says why without echoing it. A server
    /// misconfiguration: `internal_error`, 500.
    #[error("invalid key pepper in {origin}: {reason}")]
    InvalidPepper { origin: String, reason: String },

    /// No key pepper was supplied and none may be generated (see [`crate::Pepper::resolve`]).
    /// A server misconfiguration: `internal_error`, 500.
    #[error(
        "no key pepper: pass a pepper file, set the environment variable {env}, or keep the \
         pepper in {} next to the key database (a new one is generated there only when a new \
         database is created)",
        default_path.display(),
        env = crate::pepper::PEPPER_ENV
    )]
    MissingPepper { default_path: PathBuf },

    /// Reading or writing a file (a pepper file) failed. `internal_error`, 500.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A key store location names a backend this build of `dupify-keys` leaves out (a
    /// `postgres://` URL without the cargo feature `postgres`). A deployment mistake, told
    /// apart from a bad path so that the fix (rebuild with the feature) is in the message.
    #[error(
        "the key store `{location}` needs dupify-keys built with the cargo feature `{feature}`"
    )]
    BackendNotBuilt {
        /// The location with any password replaced by `***`.
        location: String,
        feature: &'static str,
    },

    /// A database URL could not be understood. `url` is the URL with any password replaced by
    /// `***`; `reason` is the driver's parse error.
    #[error("invalid key database URL `{url}`: {reason}")]
    InvalidDatabaseUrl { url: String, reason: String },

    /// The database's schema was migrated by a newer `dupify-keys` (its `schema_version` is
    /// above what this build knows): refused rather than writing rows the newer code would
    /// misread. Upgrade this host.
    #[error(
        "the key database's schema is version {found}, newer than version {supported} that this \
         build knows: upgrade dupify-keys on this host"
    )]
    SchemaTooNew { found: i64, supported: i64 },

    /// An unexpected state (RNG failure, corrupt row); the message says which.
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

fn list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<dupify_types::ParseEnvironmentError> for Error {
    fn from(e: dupify_types::ParseEnvironmentError) -> Self {
        Error::InvalidParameter {
            name: "environment",
            reason: e.to_string(),
        }
    }
}

impl Error {
    /// The entry of the hosted error-code table this error answers with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Error::MissingApiKey => ErrorCode::MISSING_API_KEY,
            Error::MalformedApiKey(_)
            | Error::ConflictingApiKeys
            | Error::UnknownApiKey
            | Error::RevokedApiKey => ErrorCode::INVALID_API_KEY,
            Error::ExpiredApiKey { .. } => ErrorCode::EXPIRED_API_KEY,
            Error::InsufficientScope { .. } => ErrorCode::INSUFFICIENT_SCOPE,
            Error::RateLimitExceeded { .. } => ErrorCode::RATE_LIMIT_EXCEEDED,
            Error::QuotaExceeded { .. } => ErrorCode::QUOTA_EXCEEDED,
            Error::KeyNotFound { .. } => ErrorCode::NOT_FOUND,
            Error::KeyNotActive { .. } => ErrorCode::CONFLICT,
            Error::InvalidParameter { .. } => ErrorCode::INVALID_PARAMETER,
            Error::Database { .. }
            | Error::InvalidPepper { .. }
            | Error::MissingPepper { .. }
            | Error::Io { .. }
            | Error::BackendNotBuilt { .. }
            | Error::InvalidDatabaseUrl { .. }
            | Error::SchemaTooNew { .. }
            | Error::Internal { .. } => ErrorCode::INTERNAL_ERROR,
        }
    }

    /// The hosted API's error code.
    pub fn code(&self) -> &'static str {
        self.error_code().code
    }

    /// The HTTP status the hosted API answers with.
    pub fn http_status(&self) -> u16 {
        self.error_code().http_status
    }

    /// `Retry-After` seconds for rate-limit errors.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::RateLimitExceeded {
                retry_after_secs, ..
            }
            | Error::QuotaExceeded {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }
}

/// `.db("doing what")?` turns a database driver error into [`Error::Database`] with that
/// context. A trait rather than `From<rusqlite::Error>`: a `From` impl would be public and put
/// the driver's error type back into this crate's API.
pub(crate) trait DbContext<T> {
    /// Maps the error to [`Error::Database`] with `context`.
    fn db(self, context: &'static str) -> Result<T>;
}

impl<T> DbContext<T> for rusqlite::Result<T> {
    fn db(self, context: &'static str) -> Result<T> {
        self.map_err(|e| Error::Database {
            context,
            source: Box::new(e),
        })
    }
}

#[cfg(feature = "postgres")]
impl<T> DbContext<T> for std::result::Result<T, postgres::Error> {
    fn db(self, context: &'static str) -> Result<T> {
        // The driver's errors carry the server's message, never the connection URL.
        self.map_err(|e| Error::Database {
            context,
            source: Box::new(e),
        })
    }
}

#[cfg(feature = "postgres")]
impl<T> DbContext<T> for std::result::Result<T, r2d2::Error> {
    fn db(self, context: &'static str) -> Result<T> {
        // A pool timeout: the message is the last connection error, which names no password.
        self.map_err(|e| Error::Database {
            context,
            source: Box::new(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_carry_context_and_an_opaque_source() {
        let r: rusqlite::Result<()> = Err(rusqlite::Error::QueryReturnedNoRows);
        let err = r.db("reading a key").unwrap_err();
        assert_eq!((err.code(), err.http_status()), ("internal_error", 500));
        assert_eq!(err.retry_after_secs(), None);
        assert!(
            err.to_string()
                .starts_with("keys database error while reading a key: "),
            "{err}"
        );
        let source = std::error::Error::source(&err).expect("source");
        // Opaque in the API, but a host that depends on the driver can still look inside.
        assert!(source.downcast_ref::<rusqlite::Error>().is_some());
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
    }
}
