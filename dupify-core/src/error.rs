//! The one error type of `dupify-core`.
//!
//! Every variant maps to an error code of the hosted Dupify API and an HTTP status, so a host
//! application can turn any failure into the hosted error envelope 1:1 without string
//! matching. Variants carry the context needed to act on them (which tensor, which limit,
//! which parameter) because "invalid input" alone is useless at 3 a.m.

use std::path::PathBuf;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Hosted error code for every "image could not be processed" failure (too large, corrupt,
/// zero-sized): the hosted API reports all of them under this one code.
pub const IMAGE_PROCESSING_FAILED: &str = "image_processing_failed";

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

    /// A file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
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
    #[error("libtorch error: {0}")]
    Torch(#[from] tch::TchError),

    /// A requested record does not exist.
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },

    /// A write would break a uniqueness rule.
    #[error("conflict: {reason}")]
    Conflict { reason: String },

    /// The catalog's SQLite database failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),

    /// The operation was cancelled by the caller.
    #[error("operation cancelled")]
    Cancelled,

    /// A bug or an unexpected state; the message says where.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The hosted API's error code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingParameter { .. } => "missing_parameter",
            Error::InvalidParameter { .. } => "invalid_parameter",
            Error::InvalidBase64 { .. } => "invalid_base64",
            Error::UnsupportedFormat { .. } => "unsupported_format",
            Error::ImageTooLarge { .. } | Error::EmptyImage { .. } | Error::CorruptImage { .. } => {
                IMAGE_PROCESSING_FAILED
            }
            Error::InvalidImageUrl { .. } => "invalid_image_url",
            Error::ImageFetchFailed { .. } => "image_fetch_failed",
            Error::Io { .. } => "invalid_parameter",
            Error::ModelLoad { .. } => "model_error",
            Error::NotAvailable { .. } => "not_available",
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::Cancelled => "cancelled",
            Error::Torch(_) | Error::Database(_) | Error::Internal(_) => "internal_error",
        }
    }

    /// The HTTP status the hosted API answers this error with.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::MissingParameter { .. }
            | Error::InvalidParameter { .. }
            | Error::InvalidBase64 { .. }
            | Error::InvalidImageUrl { .. }
            | Error::Io { .. } => 400,
            Error::UnsupportedFormat { .. } => 415,
            Error::ImageTooLarge { .. } | Error::EmptyImage { .. } | Error::CorruptImage { .. } => {
                422
            }
            Error::ImageFetchFailed { .. } => 502,
            Error::NotFound { .. } => 404,
            Error::Conflict { .. } => 409,
            Error::Cancelled => 499,
            Error::NotAvailable { .. } => 501,
            Error::ModelLoad { .. } | Error::Torch(_) | Error::Database(_) | Error::Internal(_) => {
                500
            }
        }
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
        assert_eq!((e.code(), e.http_status()), ("unsupported_format", 415));
        let e = Error::invalid("k", "must be > 0");
        assert_eq!(e.to_string(), "invalid parameter `k`: must be > 0");
    }
}
