//! `GET /openapi.json`: the OpenAPI 3 description of the HTTP API.
//!
//! The document is written by hand in `openapi.json` next to this file and embedded at build
//! time; `tests/openapi.rs` checks that it parses, that every route of the router is in it and
//! that every operation documents its error statuses.

use axum::http::header;
use axum::response::IntoResponse;

/// The document.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /openapi.json`.
pub async fn handler() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
