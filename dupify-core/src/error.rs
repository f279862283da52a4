//! The one error type of `dupify-core`.
//!
//! Every variant maps to an error code of the hosted Dupify API and an HTTP status, so a host
//! application can turn any failure into the hosted error envelope 1:1 without string
//! matching. Variants carry the context needed to act on them (which tensor, which limit,
//! which parameter) because "invalid input" alone is useless at 3 a.m.

use std::path::PathBuf;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use dupify_types::{ErrorCode, ERROR_CODES};

/// Hosted error code for every "image could not be processed" failure (too large, corrupt,
/// zero-sized): the hosted API reports all of them under this one code.
pub const IMAGE_PROCESSING_FAILED: &str = ErrorCode::IMAGE_PROCESSING_FAILED.code;

/// A failure of a library underneath (LibTorch, SQLite), kept opaque so that those crates'
/// types are not part of this crate's API; its `Display` and `source()` are the original's.
pub type ForeignError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in `dupify-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required parameter is absent.
    #[error("missing parameter `{name}`")]
    MissingParameter { name: String },

    /// A parameter has a value outside its documented domain.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter { name: String, reason: String },

    /// The base64 payload could not be decoded.
    #[error("invalid base64 image data: {reason}")]
    InvalidBase64 { reason: String },

    /// The bytes are not an image format we accept (jpeg, png, webp, gif, bmp).
    #[error("unsupported image format: {detail}")]
    UnsupportedFormat { detail: String },

    /// The image exceeds a configured limit (bytes, pixels or side length). Checked from the
    /// header before decoding, so a decompression bomb never allocates.
    #[error("image could not be processed: {what} is {actual}, the limit is {limit}")]
    ImageTooLarge {
        what: &'static str,
        actual: u64,
        limit: u64,
    },

    /// The image has zero width or height, or the input is empty.
    #[error("image could not be processed: {reason}")]
    EmptyImage { reason: String },

    /// The image is truncated or corrupt.
    #[error("image could not be processed: {reason}")]
    CorruptImage { reason: String },

    /// An `image_url` was refused before any request was made (scheme, address, syntax).
    #[error("invalid image url `{url}`: {reason}")]
    InvalidImageUrl { url: String, reason: String },

    /// An `image_url` could not be fetched (network error, status, size or time limit).
    #[error("could not fetch image `{url}`: {reason}")]
    ImageFetchFailed { url: String, reason: String },

    /// A file the caller named as input could not be read (missing, unreadable): the
    /// caller's mistake, `invalid_parameter`.
    #[error("cannot read `{}`: {source}", path.display())]
    InputFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file of the library's own (model, tokenizer, head, cache, index graph) could not be
    /// read or written: a deployment problem, `internal_error`.
    #[error("cannot access `{}`: {source}", path.display())]
    Storage {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A model or head could not be loaded: bad config, missing or mis-shaped tensor,
    /// truncated file, wrong model hash.
    #[error("cannot load model from `{}`: {reason}", path.display())]
    ModelLoad { path: PathBuf, reason: String },

    /// A required model file or operation is not available in this extractor.
    #[error("not available: {what}")]
    NotAvailable { what: String },

    /// A LibTorch call failed at run time.
    #[error("libtorch error: {source}")]
    Torch {
        #[source]
        source: ForeignError,
    },

    /// A requested record does not exist.
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },

    /// A write would break a uniqueness rule.
    #[error("conflict: {reason}")]
    Conflict { reason: String },

    /// The catalog's SQLite database failed.
    #[error("database error: {source}")]
    Database {
        #[source]
        source: ForeignError,
    },

    /// The catalog's PostgreSQL database failed while doing `context` (connecting, reading a
    /// product, …); `source` is the driver's error, which carries the server's message and
    /// never the connection URL.
    #[error("catalog database error while {context}: {source}")]
    DatabaseOp {
        context: &'static str,
        #[source]
        source: ForeignError,
    },

    /// A catalog database URL could not be understood. `url` has any password replaced by
    /// `***`; `reason` is the driver's parse error.
    #[error("invalid catalog database URL `{url}`: {reason}")]
    InvalidDatabaseUrl { url: String, reason: String },

    /// A catalog location names a backend this build of `dupify-core` leaves out (a
    /// `postgres://` URL without the cargo feature `postgres`): a deployment mistake, told
    /// apart from a bad path so that the fix (rebuild with the feature) is in the message.
    #[error("the catalog `{location}` needs dupify-core built with the cargo feature `{feature}`")]
    BackendNotBuilt {
        /// The location with any password replaced by `***`.
        location: String,
        feature: &'static str,
    },

    /// The catalog database's schema was migrated by a newer `dupify-core` than this one:
    /// refused rather than writing rows the newer code would misread. Upgrade this host.
    #[error(
        "the catalog database's schema is version {found}, newer than version {supported} \
         that this build knows: upgrade dupify-core on this host"
    )]
    SchemaTooNew { found: i64, supported: i64 },

    /// The operation was cancelled by the caller.
    #[error("operation cancelled")]
    Cancelled,

    /// A bug or an unexpected state; the message says where.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Error::Torch {
            source: Box::new(e),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Database {
            source: Box::new(e),
        }
    }
}

impl From<dupify_types::ParseEnvironmentError> for Error {
    fn from(e: dupify_types::ParseEnvironmentError) -> Self {
        Error::invalid("environment", e.to_string())
    }
}

impl Error {
    /// The entry of the hosted error-code table ([`ERROR_CODES`]) this error answers with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Error::MissingParameter { .. } => ErrorCode::MISSING_PARAMETER,
            Error::InvalidParameter { .. } | Error::InputFile { .. } => {
                ErrorCode::INVALID_PARAMETER
            }
            Error::InvalidBase64 { .. } => ErrorCode::INVALID_BASE64,
            Error::UnsupportedFormat { .. } => ErrorCode::UNSUPPORTED_FORMAT,
            Error::ImageTooLarge { .. } | Error::EmptyImage { .. } | Error::CorruptImage { .. } => {
                ErrorCode::IMAGE_PROCESSING_FAILED
            }
            Error::InvalidImageUrl { .. } => ErrorCode::INVALID_IMAGE_URL,
            Error::ImageFetchFailed { .. } => ErrorCode::IMAGE_FETCH_FAILED,
            Error::ModelLoad { .. } => ErrorCode::MODEL_ERROR,
            Error::NotAvailable { .. } => ErrorCode::NOT_AVAILABLE,
            Error::NotFound { .. } => ErrorCode::NOT_FOUND,
            Error::Conflict { .. } => ErrorCode::CONFLICT,
            Error::Cancelled => ErrorCode::CANCELLED,
            Error::Storage { .. }
            | Error::Torch { .. }
            | Error::Database { .. }
            | Error::DatabaseOp { .. }
            | Error::InvalidDatabaseUrl { .. }
            | Error::BackendNotBuilt { .. }
            | Error::SchemaTooNew { .. }
            | Error::Internal(_) => ErrorCode::INTERNAL_ERROR,
        }
    }

    /// The hosted API's error code for this error.
    pub fn code(&self) -> &'static str {
        self.error_code().code
    }

    /// The HTTP status the hosted API answers this error with.
    pub fn http_status(&self) -> u16 {
        self.error_code().http_status
    }

    pub(crate) fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_failures_share_the_hosted_code_and_status() {
        let errs = [
            Error::ImageTooLarge {
                what: "pixels",
                actual: 10,
                limit: 5,
            },
            Error::EmptyImage {
                reason: "zero width".into(),
            },
            Error::CorruptImage {
                reason: "truncated".into(),
            },
        ];
        for e in errs {
            assert_eq!(e.code(), IMAGE_PROCESSING_FAILED);
            assert_eq!(e.http_status(), 422);
            assert!(e.to_string().starts_with("image could not be processed"));
        }
    }

    #[test]
    fn input_errors_are_client_errors() {
        let e = Error::InvalidBase64 {
            reason: "bad padding".into(),
        };
        assert_eq!((e.code(), e.http_status()), ("invalid_base64", 400));
        let e = Error::UnsupportedFormat {
            detail: "tiff".into(),
        };
        assert_eq!((e.code(), e.http_status()), ("unsupported_format", 422));
        let e = Error::invalid("k", "must be > 0");
        assert_eq!(e.to_string(), "invalid parameter `k`: must be > 0");
    }

    #[test]
    fn a_callers_bad_path_is_a_client_error_the_librarys_own_file_a_server_error() {
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let input = Error::InputFile {
            path: "photo.jpg".into(),
            source: io(),
        };
        assert_eq!(
            (input.code(), input.http_status()),
            ("invalid_parameter", 400)
        );
        let own = Error::Storage {
            path: "weights/model.safetensors".into(),
            source: io(),
        };
        assert_eq!((own.code(), own.http_status()), ("internal_error", 500));
    }

    #[test]
    fn foreign_errors_keep_their_message_and_source() {
        let e = Error::from(rusqlite::Error::InvalidQuery);
        assert_eq!(e.code(), "internal_error");
        assert!(e.to_string().starts_with("database error: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
