//! Envelopes: store-and-forward of encrypted messages, with a cursor per conversation and an
//! acknowledgement cursor per device.
//!
//! The relay reads only the message header (conversation, epoch, sender, kind) and checks the
//! sender's signature with the caller's identity key; the content stays ciphertext. Durable
//! kinds are stored under the conversation's next cursor (a per-conversation counter advanced in
//! the inserting transaction, so cursors are gap-free and commit in order even with several relay
//! nodes; [`crate::envelope_store`] groups concurrent envelopes into one commit) and pushed; ephemeral kinds (typing, receipts) are pushed and never stored.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sotto_core::conversation::{EpochRecord, MessageContext, ParsedMessage};
use sotto_core::wire::WireObject;
use sqlx::Row;

use crate::auth::Caller;
use crate::db::{int, now};
use crate::error::{ApiError, ApiResult};
use crate::events;
use crate::extract::{ApiJson, ApiPath, ApiQuery, from_b64, to_b64};
use crate::routes::conversations::{Participant, find};
use crate::state::AppState;

/// Body of `POST /v1/conversations/{conversation_id}/envelopes`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeBody {
    /// The message's wire bytes (base64).
    pub message: String,
}

/// Response of `POST /v1/conversations/{conversation_id}/envelopes`.
#[derive(Serialize)]
pub struct Posted {
    /// Whether the message was stored (durable kinds) or only forwarded (ephemeral kinds).
    pub stored: bool,
    /// The stored envelope's cursor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<i64>,
}

/// `POST /v1/conversations/{conversation_id}/envelopes`: 201 with the cursor for a stored
/// message, 202 for an ephemeral one. The response is sent after the commit: an acknowledged
/// envelope is durable.
pub async fn post(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<EnvelopeBody>,
) -> ApiResult<(StatusCode, Json<Posted>)> {
    let conv = find(&state, &caller, &id).await?;
    let participant = conv.require_reader(&caller)?;
    let bytes = from_b64("message", &body.message)?;
    let parsed = ParsedMessage::decode(&bytes).map_err(|e| ApiError::invalid_wire("message", e))?;
    let header = *parsed.header();
    if header.conversation.0 != conv.id {
        return Err(ApiError::bad_request(
            "bad_request",
            "the message names another conversation",
        ));
    }
    if header.sender != caller.device {
        return Err(ApiError::forbidden("a message is posted by its sender"));
    }
    let ephemeral = header.kind.is_ephemeral();
    if let Participant::Member(role) = participant
        && !ephemeral
        && !role.can_send()
    {
        return Err(ApiError::forbidden("this device's role does not send"));
    }
    if i64::from(header.epoch) > conv.last_epoch {
        return Err(ApiError::bad_request(
            "unknown_epoch",
            "the message's epoch has no record yet; post the epoch record first",
        ));
    }
    // A durable message in an epoch a newer record closed would arrive after that close and be
    // refused by every receiver: the sender seals it again in the newest epoch (PROTOCOL §10.2).
    if !ephemeral && i64::from(header.epoch) < conv.last_epoch {
        return Err(ApiError::conflict(
            "epoch_closed",
            "a newer epoch of this conversation is open; seal the message in it",
        ));
    }
    // The signature binds the epoch record (its hash) and the team: check it against the
    // record this relay stores for the message's epoch.
    let record: Option<Vec<u8>> =
        sqlx::query("SELECT record FROM epochs WHERE conversation_ref = $1 AND epoch = $2")
            .bind(conv.conv_ref)
            .bind(i64::from(header.epoch))
            .fetch_optional(state.db.pool())
            .await?
            .map(|row| row.try_get("record"))
            .transpose()?;
    let record = record.ok_or_else(|| {
        ApiError::bad_request(
            "unknown_epoch",
            "the message's epoch has no record yet; post the epoch record first",
        )
    })?;
    let record = EpochRecord::from_wire(&record).map_err(|e| ApiError::refused("message", e))?;
    parsed
        .verify(&caller.identity, &MessageContext::of(&record))
        .map_err(|e| ApiError::refused("message", e))?;

    let audience =
        events::conversation_audience(&conv.team.state(), &conv.visitors, Some(caller.device));
    if ephemeral {
        state.metrics.ephemeral_forwarded();
        state.fanout.publish(events::envelope(
            caller.tenant_id,
            conv.conv_ref,
            &conv.id,
            None,
            bytes,
            audience,
        ));
        return Ok((
            StatusCode::ACCEPTED,
            Json(Posted {
                stored: false,
                cursor: None,
            }),
        ));
    }

    // Envelopes are stored in cursor order and deleted oldest first, so the stored count is
    // the newest cursor minus the oldest stored one, plus one: one index lookup, no count.
    // Posts racing this check can pass it together; the overshoot is bounded by concurrency.
    // No more can be stored than were ever posted: below the quota in cursors, no lookup.
    let quota = state.settings.limits.quota_conversation_envelopes;
    if quota > 0 && u64::try_from(conv.last_cursor).unwrap_or(0) >= quota {
        let oldest: Option<i64> =
            sqlx::query("SELECT MIN(cursor) AS m FROM envelopes WHERE conversation_ref = $1")
                .bind(conv.conv_ref)
                .fetch_one(state.db.pool())
                .await?
                .try_get("m")?;
        let stored = oldest.map_or(0, |o| conv.last_cursor.saturating_sub(o).saturating_add(1));
        if u64::try_from(stored).unwrap_or(0) >= quota {
            state.metrics.quota_refused();
            return Err(ApiError::quota_exceeded(
                "the conversation holds as many stored messages as it may",
            ));
        }
    }
    let cursor = state
        .envelopes
        .store(conv.conv_ref, bytes.clone(), now())
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))?;
    state.metrics.envelope_stored();
    state.fanout.publish(events::envelope(
        caller.tenant_id,
        conv.conv_ref,
        &conv.id,
        Some(cursor),
        bytes,
        audience,
    ));
    Ok((
        StatusCode::CREATED,
        Json(Posted {
            stored: true,
            cursor: Some(cursor),
        }),
    ))
}

/// Query of `GET /v1/conversations/{conversation_id}/envelopes`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Envelopes with a cursor greater than this (default 0: from the start).
    pub after: Option<u64>,
    /// Most envelopes (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// One stored envelope.
#[derive(Serialize)]
pub struct StoredEnvelope {
    /// Its cursor.
    pub cursor: i64,
    /// The message's wire bytes (base64).
    pub message: String,
    /// When the relay stored it, seconds since the Unix epoch.
    pub received_at: i64,
}

/// Response of `GET /v1/conversations/{conversation_id}/envelopes`.
#[derive(Serialize)]
pub struct EnvelopePage {
    /// Envelopes in increasing cursor order.
    pub envelopes: Vec<StoredEnvelope>,
    /// The conversation's newest cursor.
    pub last_cursor: i64,
}

/// `GET /v1/conversations/{conversation_id}/envelopes?after=&limit=`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<EnvelopePage>> {
    let conv = find(&state, &caller, &id).await?;
    conv.require_reader(&caller)?;
    let rows = sqlx::query(
        "SELECT cursor, message, received_at FROM envelopes \
         WHERE conversation_ref = $1 AND cursor > $2 ORDER BY cursor LIMIT $3",
    )
    .bind(conv.conv_ref)
    .bind(int(q.after.unwrap_or(0)))
    .bind(i64::from(q.limit.unwrap_or(100).clamp(1, 1000)))
    .fetch_all(state.db.pool())
    .await?;
    let envelopes = rows
        .iter()
        .map(|r| {
            let message: Vec<u8> = r.try_get("message")?;
            Ok(StoredEnvelope {
                cursor: r.try_get("cursor")?,
                message: to_b64(&message),
                received_at: r.try_get("received_at")?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(EnvelopePage {
        envelopes,
        last_cursor: conv.last_cursor,
    }))
}

/// The body and response of the acknowledgement routes.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// Every envelope up to this cursor was received.
    pub cursor: u64,
}

/// `PUT /v1/conversations/{conversation_id}/ack`: records that the caller received every
/// envelope up to `cursor`. The stored cursor only moves forward; the response holds it.
pub async fn put_ack(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(ack): ApiJson<Ack>,
) -> ApiResult<Json<Ack>> {
    let conv = find(&state, &caller, &id).await?;
    conv.require_reader(&caller)?;
    let cursor = int(ack.cursor);
    if cursor > conv.last_cursor {
        return Err(ApiError::bad_request(
            "cursor_out_of_range",
            "the cursor is beyond the newest envelope",
        ));
    }
    let row = state
        .db
        .write(async |c| {
            sqlx::query(
                "INSERT INTO acks (conversation_ref, device_id, cursor) VALUES ($1, $2, $3) \
                 ON CONFLICT (conversation_ref, device_id) DO UPDATE SET cursor = \
                 CASE WHEN excluded.cursor > acks.cursor THEN excluded.cursor ELSE acks.cursor END \
                 RETURNING cursor",
            )
            .bind(conv.conv_ref)
            .bind(caller.device.0.to_vec())
            .bind(cursor)
            .fetch_one(c)
            .await
        })
        .await?;
    let stored: i64 = row.try_get("cursor")?;
    Ok(Json(Ack {
        cursor: u64::try_from(stored).unwrap_or(0),
    }))
}

/// `GET /v1/conversations/{conversation_id}/ack`: the caller's acknowledgement cursor (0 when
/// none).
pub async fn get_ack(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Ack>> {
    let conv = find(&state, &caller, &id).await?;
    conv.require_reader(&caller)?;
    let stored: i64 =
        sqlx::query("SELECT cursor FROM acks WHERE conversation_ref = $1 AND device_id = $2")
            .bind(conv.conv_ref)
            .bind(caller.device.0.to_vec())
            .fetch_optional(state.db.pool())
            .await?
            .map(|r| r.try_get("cursor"))
            .transpose()?
            .unwrap_or(0);
    Ok(Json(Ack {
        cursor: u64::try_from(stored).unwrap_or(0),
    }))
}
