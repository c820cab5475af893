//! The per-tenant audit log of account events.
//!
//! An entry records what happened (a fixed event name), when, which device did it, and the id of
//! what it happened to (a team, conversation, blob or device id in hex, or a device kind). It
//! never holds content: no wire bytes, no blob data, no token. The tenant's owner and admin
//! devices (by their role in a verified team chain) read it with `GET /v1/audit`.

use serde::{Deserialize, Serialize};
use sotto_core::device::DeviceId;
use sqlx::{Any, Executor, Row};

use axum::Json;
use axum::extract::State;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, to_hex};
use crate::state::AppState;

/// What an audit entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditEvent {
    /// A device registered with the tenant.
    DeviceRegistered,
    /// A device obtained a token.
    DeviceAuthenticated,
    /// A device rotated its key-agreement key.
    KeyRotated,
    /// A team was created (its first link stored).
    TeamCreated,
    /// A link was appended to a team chain.
    LinkAppended,
    /// A team was deleted by its DeleteTeam link, with all its conversations.
    TeamDeleted,
    /// A conversation was opened.
    ConversationCreated,
    /// A conversation and its data were deleted.
    ConversationDeleted,
    /// A blob was stored.
    BlobStored,
    /// A blob was fetched.
    BlobFetched,
    /// A blob was deleted.
    BlobDeleted,
}

impl AuditEvent {
    /// The event's stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::DeviceRegistered => "device_registered",
            AuditEvent::DeviceAuthenticated => "device_authenticated",
            AuditEvent::KeyRotated => "key_rotated",
            AuditEvent::TeamCreated => "team_created",
            AuditEvent::LinkAppended => "link_appended",
            AuditEvent::TeamDeleted => "team_deleted",
            AuditEvent::ConversationCreated => "conversation_created",
            AuditEvent::ConversationDeleted => "conversation_deleted",
            AuditEvent::BlobStored => "blob_stored",
            AuditEvent::BlobFetched => "blob_fetched",
            AuditEvent::BlobDeleted => "blob_deleted",
        }
    }
}

/// Appends an entry, inside the caller's transaction when given one.
pub async fn record<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    tenant_id: i64,
    event: AuditEvent,
    device: Option<&DeviceId>,
    subject: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, at, event, device_id, subject) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant_id)
    .bind(crate::db::now())
    .bind(event.as_str())
    .bind(device.map(|d| d.0.to_vec()))
    .bind(subject.map(str::to_owned))
    .execute(executor)
    .await?;
    Ok(())
}

/// Query of `GET /v1/audit`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries with an id greater than this (default 0).
    pub after: Option<u64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// One entry.
#[derive(Serialize)]
pub struct AuditEntry {
    /// Increasing id, for paging.
    pub id: i64,
    /// Seconds since the Unix epoch.
    pub at: i64,
    /// The event name.
    pub event: String,
    /// The device that acted, in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// What it acted on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// Response of `GET /v1/audit`.
#[derive(Serialize)]
pub struct AuditPage {
    /// Entries in increasing id order.
    pub events: Vec<AuditEntry>,
}

/// `GET /v1/audit`: the tenant's audit log, for its owner and admin devices.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    if !crate::teams::is_manager_anywhere(&state, &caller).await? {
        return Err(ApiError::forbidden(
            "the audit log is for owner and admin devices",
        ));
    }
    let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 1000));
    let rows = sqlx::query(
        "SELECT id, at, event, device_id, subject FROM audit_log \
         WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(caller.tenant_id)
    .bind(crate::db::int(q.after.unwrap_or(0)))
    .bind(limit)
    .fetch_all(state.db.pool())
    .await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let device: Option<Vec<u8>> = row.try_get("device_id")?;
        events.push(AuditEntry {
            id: row.try_get("id")?,
            at: row.try_get("at")?,
            event: row.try_get("event")?,
            device_id: device.map(|d| to_hex(&d)),
            subject: row.try_get("subject")?,
        });
    }
    Ok(Json(AuditPage { events }))
}
