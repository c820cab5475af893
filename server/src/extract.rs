//! Request extractors and encodings whose failures are JSON errors.
//!
//! axum's own extractors answer bad input with plain-text rejections; these wrappers turn every
//! rejection into an [`ApiError`] so that a client, or a fuzzer, only ever sees the documented
//! JSON error shape. Binary values travel as standard base64 (RFC 4648 §4, padded); fixed-size
//! identifiers (devices, teams, conversations, blobs, widgets) as lowercase hex.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body. The content type is not checked (any body is parsed as JSON); unknown fields,
/// wrong types and trailing data are 400, a body over the route's limit 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large("request body exceeds the size limit")
            } else {
                ApiError::bad_request("bad_request", "request body could not be read")
            }
        })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            // serde_json's own messages may quote the input; only the position is reported.
            let what = match e.classify() {
                serde_json::error::Category::Data => "JSON body does not match the schema",
                _ => "malformed JSON body",
            };
            ApiError::bad_request(
                "bad_request",
                format!("{what} (line {}, column {})", e.line(), e.column()),
            )
        })
    }
}

/// A query string; anything unparsable is 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|_| ApiError::bad_request("bad_request", "invalid query string"))
    }
}

/// Path parameters; anything unparsable is 400.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| ApiError::bad_request("invalid_id", "invalid path parameter"))
    }
}

/// Decodes a base64 field.
pub fn from_b64(field: &str, value: &str) -> Result<Vec<u8>, ApiError> {
    STANDARD.decode(value).map_err(|_| {
        ApiError::bad_request("invalid_base64", format!("{field} is not valid base64"))
    })
}

/// Encodes bytes as base64.
pub fn to_b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes a fixed-size hex identifier.
pub fn from_hex<const N: usize>(field: &str, value: &str) -> Result<[u8; N], ApiError> {
    let mut out = [0u8; N];
    if value.len() != 2 * N {
        return Err(ApiError::bad_request(
            "invalid_id",
            format!("{field} must be {} hex digits", 2 * N),
        ));
    }
    hex::decode_to_slice(value, &mut out)
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{field} is not valid hex")))?;
    Ok(out)
}

/// Encodes an identifier as lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_have_exact_length() {
        assert_eq!(from_hex::<2>("x", "0aFF").unwrap(), [0x0a, 0xff]);
        assert!(from_hex::<2>("x", "0a").is_err());
        assert!(from_hex::<2>("x", "0aff00").is_err());
        assert!(from_hex::<2>("x", "zzzz").is_err());
        // Multi-byte characters must not panic on length arithmetic.
        assert!(from_hex::<2>("x", "ééé").is_err());
    }

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        assert_eq!(from_b64("x", &to_b64(b"abc")).unwrap(), b"abc");
        assert_eq!(from_b64("x", "***").unwrap_err().code(), "invalid_base64");
    }
}
