//! The JSON bodies the client sends to the relay (docs/RELAY-API.md), one type per shape.
//!
//! Typed bodies instead of `serde_json::Value` trees: nothing is allocated per field, and the
//! browser package carries no JSON value type (its map and its drop glue).

use serde::Serialize;

use crate::{Error, Result};

/// A body as the bytes a request carries.
pub(crate) fn encode<B: Serialize>(body: &B) -> Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|_| Error::InvalidInput("request body"))
}

/// `POST /v1/devices`.
#[derive(Serialize)]
pub(crate) struct Registration<'a> {
    pub widget_id: &'a str,
    pub record: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_code: Option<&'a str>,
}

/// `POST /v1/auth/challenge`.
#[derive(Serialize)]
pub(crate) struct ChallengeRequest<'a> {
    pub widget_id: &'a str,
    pub device_id: &'a str,
}

/// `POST /v1/auth/token`.
#[derive(Serialize)]
pub(crate) struct TokenRequest<'a> {
    pub widget_id: &'a str,
    pub device_id: &'a str,
    pub challenge: &'a str,
    pub signature: &'a str,
}

/// A conversation or epoch record (base64 of its wire form).
#[derive(Serialize)]
pub(crate) struct Record<'a> {
    pub record: &'a str,
}

/// A conversation deletion (base64), `DELETE /v1/conversations/{id}`.
#[derive(Serialize)]
pub(crate) struct Deletion<'a> {
    pub deletion: &'a str,
}

/// A chain link (base64).
#[derive(Serialize)]
pub(crate) struct Link<'a> {
    pub link: &'a str,
}

/// A head attestation (base64).
#[derive(Serialize)]
pub(crate) struct Attestation<'a> {
    pub attestation: &'a str,
}

/// A sealed message (base64).
#[derive(Serialize)]
pub(crate) struct Message<'a> {
    pub message: &'a str,
}

/// A delivery acknowledgement up to a cursor.
#[derive(Serialize)]
pub(crate) struct Ack {
    pub cursor: u64,
}

/// `POST /v1/blobs`: an attachment (of a conversation) or a backup (for readers).
#[derive(Serialize)]
pub(crate) struct Blob<'a> {
    pub kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readers: Option<&'a [String]>,
    pub data: &'a str,
}
