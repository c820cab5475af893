//! The relay's one error type and its JSON form.
//!
//! Every error leaves the relay as `{"error":{"code":"...","message":"..."}}` with a stable,
//! machine-readable `code` (listed in `docs/RELAY-API.md`) and the matching HTTP status. Messages
//! name what was wrong with a request, never the data it carried: no body, key or token ever
//! appears in an error, so errors are safe to log and to show.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    retry_after: Option<u64>,
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with an explicit status, code and message.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the request is malformed (JSON, base64, ids, query, wire bytes).
    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400 `invalid_wire`: a wire object failed to decode; carries the core's error code.
    pub fn invalid_wire(what: &str, err: sotto_core::Error) -> Self {
        Self::bad_request(
            "invalid_wire",
            format!("{what} does not decode: {}", err.code()),
        )
    }

    /// 400 `verification_failed`: a wire object decoded but the protocol rules refuse it;
    /// carries the core's error code.
    pub fn refused(what: &str, err: sotto_core::Error) -> Self {
        Self::bad_request(
            "verification_failed",
            format!("{what} refused: {}", err.code()),
        )
    }

    /// 401: no valid token, or a failed challenge-response.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: the caller's tenant holds the resource but the caller may not do this.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: no such resource for this caller (also for other tenants' resources).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409: the request conflicts with the current state (a moved chain head, an existing id).
    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 413: the body or a payload in it exceeds a size limit.
    pub fn too_large(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 413 `quota_exceeded`: storing this would take the device or tenant over a storage quota
    /// (what is stored stays readable; deleting something frees room).
    pub fn quota_exceeded(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded", message)
    }

    /// 408 `request_timeout`: the request (its body, or the relay's answer) took longer than
    /// the request timeout.
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took too long",
        )
    }

    /// 429 `too_many_connections`: a cap on open WebSockets (per device, per address or in
    /// total) is reached; retry after closing one or later.
    pub fn too_many_connections(message: impl Into<Cow<'static, str>>) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            message,
        );
        e.retry_after = Some(5);
        e
    }

    /// 429 `registration_throttled`: too many device registrations from this address or for
    /// this tenant; retry after `seconds`.
    pub fn registration_throttled(seconds: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "registration_throttled",
            "too many device registrations; retry later",
        );
        e.retry_after = Some(seconds.max(1));
        e
    }

    /// 429 with a `Retry-After` of `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry later",
        );
        e.retry_after = Some(seconds.max(1));
        e
    }

    /// 500: something failed inside the relay. The cause is logged (without data), not sent.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        // sqlx errors carry SQL text and constraint names, never bound values; still, only the
        // kind is logged so that no driver's detail line can leak a value.
        let kind = match &e {
            sqlx::Error::Database(db) => format!("database error {:?}", db.kind()),
            sqlx::Error::PoolTimedOut => "pool timed out".to_owned(),
            sqlx::Error::Io(_) => "database i/o error".to_owned(),
            sqlx::Error::RowNotFound => "row not found".to_owned(),
            sqlx::Error::ColumnDecode { index, .. } => format!("column decode error in {index}"),
            _ => "database error".to_owned(),
        };
        tracing::error!(error = %kind, "database operation failed");
        ApiError::internal()
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// Whether a database error is a unique-constraint violation (a lost race for an id or a
/// sequence number).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// 404 for routes that do not exist.
pub async fn not_found_fallback() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// 405 for known routes called with another method.
pub async fn method_not_allowed_fallback() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}
