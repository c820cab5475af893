//! Conversations and their epoch records.
//!
//! A conversation is created by its first epoch record (epoch 0), which the visitor signs; later
//! records must carry the next epoch number. The relay checks each record the way a client
//! checks history (`EpochRecord::verify` against the verified team chain, with the visitor
//! devices it already knows), so only the visitor's own devices and the team's read-permitted
//! devices can open epochs. Who may read a conversation follows: the team's active devices whose
//! role reads, and the visitor devices named in its records.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sotto_core::conversation::ConversationDeletion;
use sotto_core::conversation::epoch::{EpochAuthor, EpochRecord};
use sotto_core::device::{DeviceId, DeviceKind, DeviceRecord};
use sotto_core::team::{Role, TeamId};
use sotto_core::wire::WireObject;
use sqlx::Row;

use crate::audit::{self, AuditEvent};
use crate::auth::Caller;
use crate::db::{int, now};
use crate::error::{ApiError, ApiResult, is_unique_violation};
use crate::events;
use crate::extract::{ApiJson, ApiPath, ApiQuery, from_b64, from_hex, to_b64, to_hex};
use crate::state::AppState;
use crate::teams::{TeamEntry, Teams, role_of};

/// A conversation of the caller's tenant, with its team and visitor devices.
pub struct Conversation {
    /// Row id.
    pub conv_ref: i64,
    /// The 16-byte id.
    pub id: [u8; 16],
    /// The team.
    pub team: Arc<TeamEntry>,
    /// Cursor of the newest stored envelope (0 when none).
    pub last_cursor: i64,
    /// The newest epoch.
    pub last_epoch: i64,
    /// Creation time.
    pub created_at: i64,
    /// The visitor devices named in its epoch records.
    pub visitors: Vec<DeviceId>,
}

/// How the caller takes part in a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Participant {
    /// One of the visitor's devices.
    Visitor,
    /// A team device with this role (one that reads).
    Member(Role),
}

impl Conversation {
    /// The caller's part, if it may read the conversation.
    pub fn participant(&self, caller: &Caller) -> Option<Participant> {
        if self.visitors.contains(&caller.device) {
            return Some(Participant::Visitor);
        }
        role_of(&self.team.state(), &caller.device)
            .filter(|r| r.can_read())
            .map(Participant::Member)
    }

    /// The caller's part, or 403.
    pub fn require_reader(&self, caller: &Caller) -> ApiResult<Participant> {
        self.participant(caller).ok_or_else(|| {
            ApiError::forbidden("this device does not take part in the conversation")
        })
    }

    /// The public summary.
    pub fn info(&self) -> ConversationInfo {
        ConversationInfo {
            conversation_id: to_hex(&self.id),
            team_id: to_hex(&self.team.team_id.0),
            last_cursor: self.last_cursor,
            last_epoch: self.last_epoch,
            created_at: self.created_at,
        }
    }
}

/// Loads conversation `id` of the caller's tenant, or 404.
pub async fn find(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Conversation> {
    let id: [u8; 16] = from_hex("conversation_id", id)?;
    let row = sqlx::query(
        "SELECT c.id, c.last_cursor, c.last_epoch, c.created_at, t.team_id FROM conversations c \
         JOIN teams t ON t.id = c.team_ref WHERE c.tenant_id = $1 AND c.conversation_id = $2",
    )
    .bind(caller.tenant_id)
    .bind(id.to_vec())
    .fetch_optional(state.db.pool())
    .await?;
    let Some(row) = row else {
        return Err(match tombstone(state, caller.tenant_id, &id).await? {
            Some(_) => gone(),
            None => ApiError::not_found("conversation"),
        });
    };
    let conv_ref: i64 = row.try_get("id")?;
    let team_id: Vec<u8> = row.try_get("team_id")?;
    let team_id = TeamId(team_id.try_into().map_err(|_| ApiError::internal())?);
    let team = state
        .teams
        .get(&state.db, caller.tenant_id, &team_id)
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))?;
    let visitors =
        sqlx::query("SELECT device_id FROM conversation_visitors WHERE conversation_ref = $1")
            .bind(conv_ref)
            .fetch_all(state.db.pool())
            .await?
            .into_iter()
            .map(|r| {
                let b: Vec<u8> = r.try_get("device_id")?;
                Ok(DeviceId(b.try_into().map_err(|_| ApiError::internal())?))
            })
            .collect::<ApiResult<Vec<_>>>()?;
    Ok(Conversation {
        conv_ref,
        id,
        team,
        last_cursor: row.try_get("last_cursor")?,
        last_epoch: row.try_get("last_epoch")?,
        created_at: row.try_get("created_at")?,
        visitors,
    })
}

/// 410 `conversation_deleted`: the conversation was deleted; its signed deletion is at
/// `GET /v1/conversations/{id}/deletion`.
fn gone() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "conversation_deleted",
        "the conversation was deleted; fetch its signed deletion",
    )
}

/// A deleted conversation's tombstone: its team, its visitor devices and the deletion's wire
/// bytes.
struct Tombstone {
    team_ref: i64,
    visitors: Vec<DeviceId>,
    deletion: Vec<u8>,
}

async fn tombstone(
    state: &AppState,
    tenant_id: i64,
    id: &[u8; 16],
) -> ApiResult<Option<Tombstone>> {
    let Some(row) = sqlx::query(
        "SELECT team_ref, visitors, deletion FROM conversation_deletions \
         WHERE tenant_id = $1 AND conversation_id = $2",
    )
    .bind(tenant_id)
    .bind(id.to_vec())
    .fetch_optional(state.db.pool())
    .await?
    else {
        return Ok(None);
    };
    let visitors: Vec<u8> = row.try_get("visitors")?;
    let visitors = visitors
        .chunks(32)
        .map(|c| Ok(DeviceId(c.try_into().map_err(|_| ApiError::internal())?)))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Some(Tombstone {
        team_ref: row.try_get("team_ref")?,
        visitors,
        deletion: row.try_get("deletion")?,
    }))
}

/// The visitor device records stored for a conversation.
async fn known_visitors(state: &AppState, conv_ref: i64) -> ApiResult<Vec<DeviceRecord>> {
    sqlx::query("SELECT record FROM conversation_visitors WHERE conversation_ref = $1")
        .bind(conv_ref)
        .fetch_all(state.db.pool())
        .await?
        .into_iter()
        .map(|r| {
            let b: Vec<u8> = r.try_get("record")?;
            DeviceRecord::from_wire(&b).map_err(|_| {
                tracing::error!("stored visitor record does not decode");
                ApiError::internal()
            })
        })
        .collect()
}

/// A conversation as listed.
#[derive(Serialize)]
pub struct ConversationInfo {
    /// The conversation id (hex).
    pub conversation_id: String,
    /// Its team (hex).
    pub team_id: String,
    /// Cursor of the newest stored envelope.
    pub last_cursor: i64,
    /// The newest epoch.
    pub last_epoch: i64,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: i64,
}

/// A body holding one epoch record.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordBody {
    /// The epoch record's wire bytes (base64).
    pub record: String,
}

fn decode_record(body: &RecordBody) -> ApiResult<(EpochRecord, Vec<u8>)> {
    let bytes = from_b64("record", &body.record)?;
    let record =
        EpochRecord::from_wire(&bytes).map_err(|e| ApiError::invalid_wire("epoch record", e))?;
    Ok((record, bytes))
}

/// `POST /v1/conversations`: opens a conversation with its first epoch record (epoch 0),
/// authored by one of the visitor devices it lists (the caller).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RecordBody>,
) -> ApiResult<(StatusCode, Json<ConversationInfo>)> {
    let (record, bytes) = decode_record(&body)?;
    if record.epoch != 0 {
        return Err(ApiError::bad_request(
            "bad_request",
            "a conversation opens with epoch 0",
        ));
    }
    let team = state
        .teams
        .get(&state.db, caller.tenant_id, &record.team)
        .await?
        .ok_or_else(|| ApiError::not_found("team"))?;
    if record.author != caller.device {
        return Err(ApiError::forbidden(
            "an epoch record is uploaded by its author",
        ));
    }
    let s = team.state();
    if s.is_deleted() {
        return Err(ApiError::conflict("team_deleted", "the team was deleted"));
    }
    record
        .verify(&s, None, u64::try_from(now()).unwrap_or_default())
        .map_err(|e| ApiError::refused("epoch record", e))?;

    let quota = state.settings.limits.quota_visitor_conversations;
    if caller.kind == DeviceKind::Visitor && quota > 0 {
        // A visitor registers itself and each conversation is stored state: bounded per device.
        let open: i64 = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM conversation_visitors v \
             JOIN conversations c ON c.id = v.conversation_ref \
             WHERE v.device_id = $1 AND c.tenant_id = $2",
        )
        .bind(caller.device.0.to_vec())
        .bind(caller.tenant_id)
        .fetch_one(state.db.pool())
        .await?
        .try_get("n")?;
        if u64::try_from(open).unwrap_or(0) >= quota {
            state.metrics.quota_refused();
            return Err(ApiError::quota_exceeded(
                "this visitor device takes part in as many conversations as it may",
            ));
        }
    }
    let now = now();
    let id = record.conversation.0;
    if tombstone(&state, caller.tenant_id, &id).await?.is_some() {
        return Err(ApiError::conflict(
            "conversation_exists",
            "a conversation with this id was deleted",
        ));
    }
    let mut tx = state.db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO conversations (tenant_id, conversation_id, team_ref, last_cursor, last_epoch, created_at) \
         VALUES ($1, $2, $3, 0, 0, $4) RETURNING id",
    )
    .bind(caller.tenant_id)
    .bind(id.to_vec())
    .bind(team.team_ref)
    .bind(now)
    .fetch_one(&mut *tx)
    .await;
    let conv_ref: i64 = match inserted {
        Ok(row) => row.try_get("id")?,
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                "conversation_exists",
                "a conversation with this id exists",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    sqlx::query(
        "INSERT INTO epochs (conversation_ref, epoch, record, created_at) VALUES ($1, 0, $2, $3)",
    )
    .bind(conv_ref)
    .bind(bytes.clone())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    insert_visitors(&mut tx, conv_ref, &record.visitor_devices).await?;
    audit::record(
        &mut *tx,
        caller.tenant_id,
        Some(team.team_ref),
        AuditEvent::ConversationCreated,
        Some(&caller.device),
        Some(&to_hex(&id)),
    )
    .await?;
    tx.commit().await?;

    let visitors: Vec<DeviceId> = record
        .visitor_devices
        .iter()
        .map(DeviceRecord::id)
        .collect();
    let audience = events::conversation_audience(&s, &visitors, Some(caller.device));
    state.fanout.publish(events::epoch(
        caller.tenant_id,
        conv_ref,
        &id,
        0,
        &bytes,
        audience,
    ));
    Ok((
        StatusCode::CREATED,
        Json(ConversationInfo {
            conversation_id: to_hex(&id),
            team_id: to_hex(&record.team.0),
            last_cursor: 0,
            last_epoch: 0,
            created_at: now,
        }),
    ))
}

async fn insert_visitors(
    conn: &mut sqlx::AnyConnection,
    conv_ref: i64,
    devices: &[DeviceRecord],
) -> Result<(), sqlx::Error> {
    for d in devices {
        sqlx::query(
            "INSERT INTO conversation_visitors (conversation_ref, device_id, record) VALUES ($1, $2, $3) \
             ON CONFLICT (conversation_ref, device_id) DO NOTHING",
        )
        .bind(conv_ref)
        .bind(d.id().0.to_vec())
        .bind(d.to_wire())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Query of `GET /v1/conversations`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this team's conversations (hex).
    pub team_id: Option<String>,
    /// Most conversations (default 100, at most 1000), newest first.
    pub limit: Option<u32>,
}

/// Response of `GET /v1/conversations`.
#[derive(Serialize)]
pub struct ConversationList {
    /// Newest first.
    pub conversations: Vec<ConversationInfo>,
}

fn row_info(r: &sqlx::any::AnyRow) -> ApiResult<ConversationInfo> {
    let id: Vec<u8> = r.try_get("conversation_id")?;
    let team: Vec<u8> = r.try_get("team_id")?;
    Ok(ConversationInfo {
        conversation_id: to_hex(&id),
        team_id: to_hex(&team),
        last_cursor: r.try_get("last_cursor")?,
        last_epoch: r.try_get("last_epoch")?,
        created_at: r.try_get("created_at")?,
    })
}

/// `GET /v1/conversations`: for a visitor device its own conversations; for a member device the
/// conversations of the teams where its role reads.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<ConversationList>> {
    let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 1000));
    let filter = q
        .team_id
        .as_deref()
        .map(|t| from_hex::<16>("team_id", t))
        .transpose()?;
    const COLUMNS: &str = "c.conversation_id, t.team_id, c.last_cursor, c.last_epoch, c.created_at";
    let mut out = Vec::new();
    if caller.kind == sotto_core::device::DeviceKind::Visitor {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM conversations c JOIN teams t ON t.id = c.team_ref \
             JOIN conversation_visitors v ON v.conversation_ref = c.id \
             WHERE c.tenant_id = $1 AND v.device_id = $2 ORDER BY c.id DESC LIMIT $3"
        ))
        .bind(caller.tenant_id)
        .bind(caller.device.0.to_vec())
        .bind(limit)
        .fetch_all(state.db.pool())
        .await?;
        for r in &rows {
            let info = row_info(r)?;
            if filter.is_none_or(|f| info.team_id == to_hex(&f)) {
                out.push(info);
            }
        }
    } else {
        for team_id in Teams::ids_of_tenant(&state.db, caller.tenant_id).await? {
            if filter.is_some_and(|f| f != team_id.0) {
                continue;
            }
            let Some(entry) = state
                .teams
                .get(&state.db, caller.tenant_id, &team_id)
                .await?
            else {
                continue;
            };
            if !role_of(&entry.state(), &caller.device).is_some_and(|r| r.can_read()) {
                continue;
            }
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM conversations c JOIN teams t ON t.id = c.team_ref \
                 WHERE c.team_ref = $1 ORDER BY c.id DESC LIMIT $2"
            ))
            .bind(entry.team_ref)
            .bind(limit)
            .fetch_all(state.db.pool())
            .await?;
            for r in &rows {
                out.push(row_info(r)?);
            }
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        out.truncate(usize::try_from(limit).unwrap_or(100));
    }
    Ok(Json(ConversationList { conversations: out }))
}

/// `GET /v1/conversations/{conversation_id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ConversationInfo>> {
    let conv = find(&state, &caller, &id).await?;
    conv.require_reader(&caller)?;
    Ok(Json(conv.info()))
}

/// Body of `DELETE /v1/conversations/{conversation_id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionBody {
    /// The caller's signed `ConversationDeletion` of this conversation (base64 wire bytes).
    pub deletion: String,
}

/// `DELETE /v1/conversations/{conversation_id}` `{"deletion"}`: deletes the conversation with
/// its epochs, envelopes, acknowledgements and attachment blobs, keeping a tombstone with the
/// signed deletion that clients verify before they erase their copies (PROTOCOL §7.13).
/// Allowed to the visitor's devices and to the team devices whose role may delete
/// conversations (owners and admins); the deletion must be the caller's, for this conversation,
/// and pass `ConversationDeletion::verify` against the relay's chain and visitor devices.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DeletionBody>,
) -> ApiResult<StatusCode> {
    let conv = find(&state, &caller, &id).await?;
    match conv.require_reader(&caller)? {
        Participant::Visitor => {}
        Participant::Member(role) if role.can_delete_conversations() => {}
        Participant::Member(_) => {
            return Err(ApiError::forbidden(
                "conversations are deleted by their visitor or a team owner or admin",
            ));
        }
    }
    let bytes = from_b64("deletion", &body.deletion)?;
    let deletion = ConversationDeletion::from_wire(&bytes)
        .map_err(|e| ApiError::invalid_wire("conversation deletion", e))?;
    if deletion.author != caller.device {
        return Err(ApiError::forbidden(
            "a conversation deletion is uploaded by its author",
        ));
    }
    let visitors = known_visitors(&state, conv.conv_ref).await?;
    deletion
        .verify(
            &conv.team.state(),
            &sotto_core::conversation::ConversationId(conv.id),
            &visitors,
        )
        .map_err(|e| ApiError::refused("conversation deletion", e))?;
    let visitor_ids: Vec<u8> = conv.visitors.iter().flat_map(|d| d.0).collect();
    let mut tx = state.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO conversation_deletions \
         (tenant_id, conversation_id, team_ref, visitors, deletion, deleted_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(caller.tenant_id)
    .bind(conv.id.to_vec())
    .bind(conv.team.team_ref)
    .bind(visitor_ids)
    .bind(bytes)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM conversations WHERE id = $1")
        .bind(conv.conv_ref)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        caller.tenant_id,
        Some(conv.team.team_ref),
        AuditEvent::ConversationDeleted,
        Some(&caller.device),
        Some(&to_hex(&conv.id)),
    )
    .await?;
    tx.commit().await?;
    let audience =
        events::conversation_audience(&conv.team.state(), &conv.visitors, Some(caller.device));
    state.fanout.publish(events::conversation_deleted(
        caller.tenant_id,
        conv.team.team_ref,
        &conv.id,
        conv.visitors.clone(),
        caller.device,
        audience,
    ));
    Ok(StatusCode::NO_CONTENT)
}

/// Response of `GET /v1/conversations/{conversation_id}/deletion`.
#[derive(Serialize)]
pub struct DeletionStored {
    /// The signed `ConversationDeletion` (base64 wire bytes).
    pub deletion: String,
}

/// `GET /v1/conversations/{conversation_id}/deletion`: the signed deletion of a deleted
/// conversation, for its visitor devices and the team's devices whose role reads; 404 when
/// the conversation was not deleted through `DELETE` (or the caller may not see it).
pub async fn deletion(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeletionStored>> {
    let id: [u8; 16] = from_hex("conversation_id", &id)?;
    let not_found = || ApiError::not_found("conversation deletion");
    let stone = tombstone(&state, caller.tenant_id, &id)
        .await?
        .ok_or_else(not_found)?;
    let reader = if stone.visitors.contains(&caller.device) {
        true
    } else {
        let team_id = sqlx::query("SELECT team_id FROM teams WHERE id = $1")
            .bind(stone.team_ref)
            .fetch_optional(state.db.pool())
            .await?
            .map(|r| r.try_get::<Vec<u8>, _>("team_id"))
            .transpose()?
            .and_then(|t| <[u8; 16]>::try_from(t).ok());
        match team_id {
            Some(team_id) => state
                .teams
                .get(&state.db, caller.tenant_id, &TeamId(team_id))
                .await?
                .is_some_and(|t| role_of(&t.state(), &caller.device).is_some_and(|r| r.can_read())),
            None => false,
        }
    };
    if !reader {
        return Err(not_found());
    }
    Ok(Json(DeletionStored {
        deletion: to_b64(&stone.deletion),
    }))
}

/// Query of `GET /v1/conversations/{conversation_id}/epochs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochQuery {
    /// First epoch (default 0).
    pub from: Option<u64>,
    /// Most records (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// One stored epoch record.
#[derive(Serialize)]
pub struct StoredEpoch {
    /// The epoch number.
    pub epoch: i64,
    /// The record's wire bytes (base64).
    pub record: String,
}

/// Response of `GET /v1/conversations/{conversation_id}/epochs`.
#[derive(Serialize)]
pub struct EpochPage {
    /// Records in increasing epoch order.
    pub epochs: Vec<StoredEpoch>,
}

/// `GET /v1/conversations/{conversation_id}/epochs?from=&limit=`.
pub async fn epochs(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<EpochQuery>,
) -> ApiResult<Json<EpochPage>> {
    let conv = find(&state, &caller, &id).await?;
    conv.require_reader(&caller)?;
    let rows = sqlx::query(
        "SELECT epoch, record FROM epochs WHERE conversation_ref = $1 AND epoch >= $2 \
         ORDER BY epoch LIMIT $3",
    )
    .bind(conv.conv_ref)
    .bind(int(q.from.unwrap_or(0)))
    .bind(i64::from(q.limit.unwrap_or(100).clamp(1, 1000)))
    .fetch_all(state.db.pool())
    .await?;
    let epochs = rows
        .iter()
        .map(|r| {
            let record: Vec<u8> = r.try_get("record")?;
            Ok(StoredEpoch {
                epoch: r.try_get("epoch")?,
                record: to_b64(&record),
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(EpochPage { epochs }))
}

/// Response of `POST /v1/conversations/{conversation_id}/epochs`.
#[derive(Serialize)]
pub struct EpochStored {
    /// The conversation (hex).
    pub conversation_id: String,
    /// The stored epoch.
    pub epoch: i64,
}

/// `POST /v1/conversations/{conversation_id}/epochs`: stores the next epoch record, authored by
/// the caller (a visitor device of the conversation or a read-permitted team device).
pub async fn add_epoch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RecordBody>,
) -> ApiResult<(StatusCode, Json<EpochStored>)> {
    let conv = find(&state, &caller, &id).await?;
    conv.require_reader(&caller)?;
    let (record, bytes) = decode_record(&body)?;
    if record.conversation.0 != conv.id || record.team != conv.team.team_id {
        return Err(ApiError::bad_request(
            "bad_request",
            "the record names another conversation or team",
        ));
    }
    if record.author != caller.device {
        return Err(ApiError::forbidden(
            "an epoch record is uploaded by its author",
        ));
    }
    let expected = conv.last_epoch.saturating_add(1);
    if i64::from(record.epoch) != expected {
        return Err(ApiError::conflict(
            "epoch_conflict",
            format!("the next epoch of this conversation is {expected}"),
        ));
    }
    let known = known_visitors(&state, conv.conv_ref).await?;
    let s = conv.team.state();
    let verified = record
        .verify(&s, Some(&known), u64::try_from(now()).unwrap_or_default())
        .map_err(|e| ApiError::refused("epoch record", e))?;
    // A device removed from the team opens no epoch, whatever head it names.
    if verified.author == EpochAuthor::Former {
        return Err(ApiError::forbidden("the author was removed from the team"));
    }

    let mut tx = state.db.begin_write().await?;
    let moved =
        sqlx::query("UPDATE conversations SET last_epoch = $1 WHERE id = $2 AND last_epoch = $3")
            .bind(expected)
            .bind(conv.conv_ref)
            .bind(conv.last_epoch)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if moved != 1 {
        return Err(ApiError::conflict(
            "epoch_conflict",
            "another epoch record was stored first; fetch it and retry",
        ));
    }
    match sqlx::query(
        "INSERT INTO epochs (conversation_ref, epoch, record, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(conv.conv_ref)
    .bind(expected)
    .bind(bytes.clone())
    .bind(now())
    .execute(&mut *tx)
    .await
    {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                "epoch_conflict",
                "another epoch record was stored first; fetch it and retry",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    insert_visitors(&mut tx, conv.conv_ref, &record.visitor_devices).await?;
    tx.commit().await?;

    let visitors: Vec<DeviceId> = record
        .visitor_devices
        .iter()
        .map(DeviceRecord::id)
        .collect();
    let audience = events::conversation_audience(&s, &visitors, Some(caller.device));
    state.fanout.publish(events::epoch(
        caller.tenant_id,
        conv.conv_ref,
        &conv.id,
        expected,
        &bytes,
        audience,
    ));
    Ok((
        StatusCode::CREATED,
        Json(EpochStored {
            conversation_id: to_hex(&conv.id),
            epoch: expected,
        }),
    ))
}
