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

/// Appends an entry, inside the caller's transaction when given one. `team_ref` is the team
/// the event concerns (a team's link, a conversation or attachment of the team), `None` for
/// device-level events; it decides who may read the entry.
pub async fn record<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    tenant_id: i64,
    team_ref: Option<i64>,
    event: AuditEvent,
    device: Option<&DeviceId>,
    subject: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, at, event, device_id, subject, team_ref) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant_id)
    .bind(crate::db::now())
    .bind(event.as_str())
    .bind(device.map(|d| d.0.to_vec()))
    .bind(subject.map(str::to_owned))
    .bind(team_ref)
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
    /// The `after` for the next page: the last entry id examined, which may be past the last
    /// entry returned (entries of other teams are skipped). Absent when nothing is left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

/// Rows read per scan step, and most scan steps per request: entries of teams the caller does
/// not manage are skipped, so one request examines a bounded number of rows.
const SCAN_BATCH: i64 = 500;
const SCAN_STEPS: usize = 8;

/// `GET /v1/audit`: the audit entries of the teams the caller manages. An owner or admin device
/// of a team reads that team's entries (its links, conversations and attachments) and the
/// device-level entries (registrations, authentications, rotations, backups) of that team's
/// devices; it never reads another team's entries or a visitor's device-level entries, so
/// an admin of one team learns nothing of the tenant's other teams.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let scope = crate::teams::managed_scope(&state, &caller).await?;
    if scope.teams.is_empty() {
        return Err(ApiError::forbidden(
            "the audit log is for owner and admin devices",
        ));
    }
    let limit = usize::try_from(q.limit.unwrap_or(100).clamp(1, 1000)).unwrap_or(100);
    let mut after = crate::db::int(q.after.unwrap_or(0));
    let mut events = Vec::new();
    let mut exhausted = false;
    for _ in 0..SCAN_STEPS {
        let rows = sqlx::query(
            "SELECT id, at, event, device_id, subject, team_ref FROM audit_log \
             WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(caller.tenant_id)
        .bind(after)
        .bind(SCAN_BATCH)
        .fetch_all(state.db.pool())
        .await?;
        exhausted = i64::try_from(rows.len()).unwrap_or(0) < SCAN_BATCH;
        for row in rows {
            let id: i64 = row.try_get("id")?;
            after = id;
            let device: Option<Vec<u8>> = row.try_get("device_id")?;
            let team_ref: Option<i64> = row.try_get("team_ref")?;
            let visible = match team_ref {
                Some(t) => scope.teams.contains(&t),
                None => device
                    .as_deref()
                    .and_then(|d| <[u8; 32]>::try_from(d).ok())
                    .is_some_and(|d| scope.devices.contains(&DeviceId(d))),
            };
            if !visible {
                continue;
            }
            events.push(AuditEntry {
                id,
                at: row.try_get("at")?,
                event: row.try_get("event")?,
                device_id: device.map(|d| to_hex(&d)),
                subject: row.try_get("subject")?,
            });
            if events.len() >= limit {
                exhausted = false;
                break;
            }
        }
        if exhausted || events.len() >= limit {
            break;
        }
    }
    Ok(Json(AuditPage {
        events,
        next_after: (!exhausted).then_some(after),
    }))
}
