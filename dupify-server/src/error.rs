//! The hosted error envelope: `{"error": {"code", "message", "details"}}` with the hosted HTTP
//! status, plus the rate-limit headers and `Retry-After` where they apply.
//!
//! Every failure of the server goes through [`ApiError`], built from the library errors
//! (`dupify_keys::Error`, `dupify_core::Error`), which already know their hosted code and
//! status, so nothing here matches on message strings.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dupify_core::ErrorCode;
use dupify_keys::RateHeaders;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// The error body: a code from the hosted table, a message for people, structured details.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"code": "missing_parameter", "message": "missing parameter `image_base64`",
                          "details": {"parameter": "image_base64"}}))]
pub(crate) struct ErrorBody {
    /// One of the hosted error codes (the table `dupify_types::ERROR_CODES`).
    #[schema(schema_with = error_code_schema)]
    pub code: &'static str,
    /// Human-readable; do not match on it.
    pub message: String,
    /// Structured context: the parameter at fault, missing scopes, limits (`{}` when none).
    #[schema(value_type = Object)]
    pub details: Value,
}

/// Every error answer: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// `code` as an enum of the table's codes, so the document can never drift from the table.
fn error_code_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(dupify_core::ERROR_CODES.iter().map(|c| c.code)))
        .build()
}

/// One error response of the v1 API.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Hosted error code (`invalid_api_key`, `invalid_base64`, …).
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Structured context (missing scopes, the parameter at fault, limits); `{}` when none.
    pub details: Value,
    /// `Retry-After` seconds (429 responses).
    pub retry_after: Option<u64>,
    /// Rate-limit headers, when the caller was authenticated (boxed: keeps `Result<_, ApiError>`
    /// small on the happy path).
    pub rate: Option<Box<RateHeaders>>,
    /// Answer with `Connection: close` (the request body was left unread).
    pub close: bool,
}

impl ApiError {
    /// An error answering with one entry of the hosted error-code table (its code and status).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::from_u16(code.http_status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: code.code,
            message: message.into(),
            details: json!({}),
            retry_after: None,
            rate: None,
            close: false,
        }
    }

    /// Marks the error as one sent before the body was fully read: the connection closes.
    pub fn close_connection(mut self) -> Self {
        self.close = true;
        self
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// `missing_parameter` (400) for `name`.
    pub fn missing(name: &str) -> Self {
        ApiError::new(
            ErrorCode::MISSING_PARAMETER,
            format!("missing parameter `{name}`"),
        )
        .with_details(json!({ "parameter": name }))
    }

    /// `invalid_parameter` (400) for `name`.
    pub fn invalid(name: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        ApiError::new(
            ErrorCode::INVALID_PARAMETER,
            format!("invalid parameter `{name}`: {reason}"),
        )
        .with_details(json!({ "parameter": name }))
    }

    /// The envelope's body (also a batch item's `error`).
    pub(crate) fn body(self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message,
            details: self.details,
        }
    }

    /// `internal_error` (500). The cause is logged on the server, never sent: it can hold
    /// paths and library internals.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        eprintln!("dupify-server: internal error: {cause}");
        ApiError::new(ErrorCode::INTERNAL_ERROR, "internal error")
    }
}

impl From<dupify_keys::Error> for ApiError {
    fn from(e: dupify_keys::Error) -> Self {
        use dupify_keys::Error as K;
        // Server-side failures (database, pepper, files) are logged, never sent: their
        // messages can hold paths and library internals.
        if e.error_code() == ErrorCode::INTERNAL_ERROR {
            return ApiError::internal(&e);
        }
        let mut out = ApiError::new(e.error_code(), e.to_string());
        out.retry_after = e.retry_after_secs();
        match &e {
            K::InsufficientScope { missing } => {
                out.details = json!({ "missing_scopes": missing });
            }
            K::ExpiredApiKey { expired_at } => {
                out.details = json!({ "expired_at": expired_at });
            }
            K::RateLimitExceeded {
                retry_after_secs,
                headers,
            } => {
                out.details = json!({ "retry_after": retry_after_secs, "limit": headers.limit });
                out.rate = Some(Box::new(*headers));
            }
            K::QuotaExceeded {
                used,
                limit,
                resets_at,
                retry_after_secs,
                headers,
            } => {
                out.details = json!({
                    "current_usage": used, "limit": limit, "resets_at": resets_at,
                    "retry_after": retry_after_secs,
                });
                out.rate = Some(Box::new(*headers));
            }
            K::InvalidParameter { name, .. } => out.details = json!({ "parameter": name }),
            _ => {}
        }
        out
    }
}

impl From<dupify_core::Error> for ApiError {
    fn from(e: dupify_core::Error) -> Self {
        use dupify_core::Error as C;
        // The library's own failures (storage, LibTorch, SQLite, model files) are logged,
        // never sent: their messages hold paths and internals.
        if matches!(
            e.error_code(),
            ErrorCode::INTERNAL_ERROR | ErrorCode::MODEL_ERROR
        ) {
            return ApiError::internal(&e);
        }
        let details = match &e {
            C::MissingParameter { name } | C::InvalidParameter { name, .. } => {
                json!({ "parameter": name })
            }
            C::ImageTooLarge {
                what,
                actual,
                limit,
            } => json!({ "what": what, "actual": actual, "limit": limit }),
            C::InvalidImageUrl { url, .. } | C::ImageFetchFailed { url, .. } => {
                json!({ "image_url": url })
            }
            C::NotFound { what, id } => json!({ "resource": what, "id": id }),
            _ => json!({}),
        };
        ApiError::new(e.error_code(), e.to_string()).with_details(details)
    }
}

/// Writes the rate-limit headers (`X-RateLimit-*`, `X-Monthly-*`) into `headers`.
pub fn put_rate_headers(headers: &mut HeaderMap, rate: &RateHeaders) {
    for (name, value) in rate.pairs() {
        // `from_bytes` lower-cases the mixed-case names `pairs` uses.
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(n, v);
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        let (status, rate, close, retry_after) =
            (self.status, self.rate.take(), self.close, self.retry_after);
        let mut resp = (status, Json(ErrorEnvelope { error: self.body() })).into_response();
        if let Some(rate) = &rate {
            put_rate_headers(resp.headers_mut(), rate);
        }
        if close {
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                HeaderValue::from_static("close"),
            );
        }
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
