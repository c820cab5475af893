//! Blobs: opaque encrypted bytes for attachments and backups.
//!
//! An attachment belongs to a conversation: anyone who reads the conversation may fetch it, and
//! it is deleted with the conversation (and its team) or by the attachment retention. A backup
//! belongs to the device that uploaded it and to the devices it names as readers (typically the
//! owner's recovery device, whose keys the recovery words re-create); it is kept until its owner
//! deletes it or the backup retention expires. Sizes are capped; ids are 16 random bytes.
//!
//! Storage is bounded per device and per tenant, because any visitor can register itself with a
//! tenant's public widget id: a device keeps only its latest backup (a new one replaces the
//! previous ones), a visitor's backup is small (`--visitor-backup-max-bytes`), and an upload that
//! would take the device's or the tenant's stored bytes over `--quota-device-bytes` or
//! `--quota-tenant-bytes` is refused with 413 `quota_exceeded`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sotto_core::device::{DeviceId, DeviceKind};
use sqlx::Row;

use crate::audit::{self, AuditEvent};
use crate::auth::Caller;
use crate::db::now;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, from_b64, from_hex, to_b64, to_hex};
use crate::random::random_for_request;
use crate::routes::conversations::{self, Participant};
use crate::state::AppState;

/// Most reader devices a backup may name.
const MAX_READERS: usize = 16;
/// Stored kind of an attachment.
pub const KIND_ATTACHMENT: i64 = 1;
/// Stored kind of a backup.
pub const KIND_BACKUP: i64 = 2;

/// Body of `POST /v1/blobs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// `attachment` or `backup`.
    pub kind: String,
    /// For an attachment: its conversation (hex).
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// For a backup: devices besides the uploader that may fetch it (hex ids).
    #[serde(default)]
    pub readers: Option<Vec<String>>,
    /// The encrypted bytes (base64).
    pub data: String,
}

/// Response of `POST /v1/blobs`.
#[derive(Serialize)]
pub struct Uploaded {
    /// The blob id (hex).
    pub blob_id: String,
    /// Its size in bytes.
    pub size: i64,
}

/// `POST /v1/blobs`.
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<Upload>,
) -> ApiResult<(StatusCode, Json<Uploaded>)> {
    // Cheap size check before decoding: base64 is 4 characters per 3 bytes.
    if req.data.len() / 4 * 3 > state.settings.max_blob_bytes.saturating_add(3) {
        return Err(ApiError::too_large("the blob exceeds the size limit"));
    }
    let (kind, conversation, readers) = match req.kind.as_str() {
        "attachment" => {
            if req.readers.is_some() {
                return Err(ApiError::bad_request(
                    "bad_request",
                    "an attachment's readers are its conversation's participants",
                ));
            }
            let id = req.conversation_id.as_deref().ok_or_else(|| {
                ApiError::bad_request("bad_request", "an attachment names its conversation")
            })?;
            let conv = conversations::find(&state, &caller, id).await?;
            conv.require_reader(&caller)?;
            (
                KIND_ATTACHMENT,
                Some((conv.conv_ref, conv.team.team_ref)),
                Vec::new(),
            )
        }
        "backup" => {
            if req.conversation_id.is_some() {
                return Err(ApiError::bad_request(
                    "bad_request",
                    "a backup belongs to a device, not a conversation",
                ));
            }
            let readers = req.readers.unwrap_or_default();
            if readers.len() > MAX_READERS {
                return Err(ApiError::bad_request(
                    "bad_request",
                    "a backup names at most 16 readers",
                ));
            }
            let readers = readers
                .iter()
                .map(|r| from_hex::<32>("readers", r).map(DeviceId))
                .collect::<ApiResult<Vec<_>>>()?;
            (KIND_BACKUP, None, readers)
        }
        _ => {
            return Err(ApiError::bad_request(
                "bad_request",
                "kind is `attachment` or `backup`",
            ));
        }
    };
    let data = from_b64("data", &req.data)?;
    if data.len() > state.settings.max_blob_bytes {
        return Err(ApiError::too_large("the blob exceeds the size limit"));
    }
    let size = i64::try_from(data.len()).unwrap_or(i64::MAX);
    let limits = &state.settings.limits;
    if kind == KIND_BACKUP
        && caller.kind == DeviceKind::Visitor
        && data.len() as u64 > limits.visitor_backup_max_bytes
    {
        state.metrics.quota_refused();
        return Err(ApiError::quota_exceeded(
            "a visitor device's backup exceeds the visitor backup limit",
        ));
    }
    let (conversation, team_ref) = match conversation {
        Some((c, t)) => (Some(c), Some(t)),
        None => (None, None),
    };
    let blob_id: [u8; 16] = random_for_request()?;
    let mut tx = state.db.begin_write().await?;
    // Under the write transaction, so concurrent uploads on SQLite cannot both pass the check
    // (on PostgreSQL two concurrent uploads may overshoot a quota by one blob). The cast: SUM of
    // a BIGINT is NUMERIC in PostgreSQL.
    // A new backup replaces the device's previous ones: they do not count.
    let replaced = |k: i64| if kind == KIND_BACKUP { k } else { 0 };
    let device_used: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS n FROM blobs \
         WHERE tenant_id = $1 AND owner_device = $2 AND kind <> $3",
    )
    .bind(caller.tenant_id)
    .bind(caller.device.0.to_vec())
    .bind(replaced(KIND_BACKUP))
    .fetch_one(&mut *tx)
    .await?
    .try_get("n")?;
    let tenant_used: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS n FROM blobs WHERE tenant_id = $1 \
         AND NOT (owner_device = $2 AND kind = $3)",
    )
    .bind(caller.tenant_id)
    .bind(caller.device.0.to_vec())
    .bind(replaced(KIND_BACKUP))
    .fetch_one(&mut *tx)
    .await?
    .try_get("n")?;
    let over = |used: i64, quota: u64| {
        u64::try_from(used.saturating_add(size)).unwrap_or(u64::MAX) > quota
    };
    if over(device_used, limits.quota_device_bytes) {
        tx.rollback().await?;
        state.metrics.quota_refused();
        return Err(ApiError::quota_exceeded(
            "this device's stored blobs would exceed its quota; delete some first",
        ));
    }
    if over(tenant_used, limits.quota_tenant_bytes) {
        tx.rollback().await?;
        state.metrics.quota_refused();
        return Err(ApiError::quota_exceeded(
            "the tenant's stored blobs would exceed its quota",
        ));
    }
    if kind == KIND_BACKUP {
        sqlx::query("DELETE FROM blobs WHERE tenant_id = $1 AND owner_device = $2 AND kind = $3")
            .bind(caller.tenant_id)
            .bind(caller.device.0.to_vec())
            .bind(KIND_BACKUP)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO blobs (blob_id, tenant_id, owner_device, kind, conversation_ref, size, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(blob_id.to_vec())
    .bind(caller.tenant_id)
    .bind(caller.device.0.to_vec())
    .bind(kind)
    .bind(conversation)
    .bind(size)
    .bind(data)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    for r in &readers {
        sqlx::query(
            "INSERT INTO blob_readers (blob_id, device_id) VALUES ($1, $2) \
             ON CONFLICT (blob_id, device_id) DO NOTHING",
        )
        .bind(blob_id.to_vec())
        .bind(r.0.to_vec())
        .execute(&mut *tx)
        .await?;
    }
    audit::record(
        &mut *tx,
        caller.tenant_id,
        team_ref,
        AuditEvent::BlobStored,
        Some(&caller.device),
        Some(&to_hex(&blob_id)),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(Uploaded {
            blob_id: to_hex(&blob_id),
            size,
        }),
    ))
}

/// A stored blob's metadata, loaded for an access decision.
struct BlobMeta {
    owner: DeviceId,
    kind: i64,
    conversation_ref: Option<i64>,
    /// The team of an attachment's conversation, for the audit log.
    team_ref: Option<i64>,
}

/// Loads a blob of the caller's tenant (404 otherwise) and checks the caller may use it (403).
async fn authorize(state: &AppState, caller: &Caller, blob_id: &[u8; 16]) -> ApiResult<BlobMeta> {
    let row = sqlx::query(
        "SELECT b.owner_device, b.kind, b.conversation_ref, c.team_ref FROM blobs b \
         LEFT JOIN conversations c ON c.id = b.conversation_ref \
         WHERE b.blob_id = $1 AND b.tenant_id = $2",
    )
    .bind(blob_id.to_vec())
    .bind(caller.tenant_id)
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(|| ApiError::not_found("blob"))?;
    let owner: Vec<u8> = row.try_get("owner_device")?;
    let meta = BlobMeta {
        owner: DeviceId(owner.try_into().map_err(|_| ApiError::internal())?),
        kind: row.try_get("kind")?,
        conversation_ref: row.try_get("conversation_ref")?,
        team_ref: row.try_get("team_ref")?,
    };
    if meta.owner == caller.device {
        return Ok(meta);
    }
    let allowed = match (meta.kind, meta.conversation_ref) {
        (KIND_ATTACHMENT, Some(conv_ref)) => participant(state, caller, conv_ref).await?.is_some(),
        (KIND_BACKUP, _) => {
            sqlx::query("SELECT 1 AS one FROM blob_readers WHERE blob_id = $1 AND device_id = $2")
                .bind(blob_id.to_vec())
                .bind(caller.device.0.to_vec())
                .fetch_optional(state.db.pool())
                .await?
                .is_some()
        }
        _ => false,
    };
    if allowed {
        Ok(meta)
    } else {
        Err(ApiError::forbidden("this device may not use the blob"))
    }
}

/// The caller's part in the conversation of an attachment.
async fn participant(
    state: &AppState,
    caller: &Caller,
    conv_ref: i64,
) -> ApiResult<Option<Participant>> {
    let Some(row) =
        sqlx::query("SELECT conversation_id FROM conversations WHERE id = $1 AND tenant_id = $2")
            .bind(conv_ref)
            .bind(caller.tenant_id)
            .fetch_optional(state.db.pool())
            .await?
    else {
        return Ok(None);
    };
    let id: Vec<u8> = row.try_get("conversation_id")?;
    let conv = conversations::find(state, caller, &to_hex(&id)).await?;
    Ok(conv.participant(caller))
}

/// A fetched blob.
#[derive(Serialize)]
pub struct BlobOut {
    /// The blob id (hex).
    pub blob_id: String,
    /// `attachment` or `backup`.
    pub kind: &'static str,
    /// Size in bytes.
    pub size: i64,
    /// Upload time, seconds since the Unix epoch.
    pub created_at: i64,
    /// The bytes (base64).
    pub data: String,
}

/// `GET /v1/blobs/{blob_id}`.
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(blob_id): ApiPath<String>,
) -> ApiResult<Json<BlobOut>> {
    let id: [u8; 16] = from_hex("blob_id", &blob_id)?;
    let meta = authorize(&state, &caller, &id).await?;
    let row = sqlx::query("SELECT size, data, created_at FROM blobs WHERE blob_id = $1")
        .bind(id.to_vec())
        .fetch_optional(state.db.pool())
        .await?
        .ok_or_else(|| ApiError::not_found("blob"))?;
    let data: Vec<u8> = row.try_get("data")?;
    state
        .db
        .write(async |c| {
            audit::record(
                c,
                caller.tenant_id,
                meta.team_ref,
                AuditEvent::BlobFetched,
                Some(&caller.device),
                Some(&to_hex(&id)),
            )
            .await
        })
        .await?;
    Ok(Json(BlobOut {
        blob_id: to_hex(&id),
        kind: if meta.kind == KIND_BACKUP {
            "backup"
        } else {
            "attachment"
        },
        size: row.try_get("size")?,
        created_at: row.try_get("created_at")?,
        data: to_b64(&data),
    }))
}

/// `DELETE /v1/blobs/{blob_id}`: by its uploader, or for an attachment also by the visitor or a
/// team owner or admin device of its conversation.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(blob_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id: [u8; 16] = from_hex("blob_id", &blob_id)?;
    let meta = authorize(&state, &caller, &id).await?;
    if meta.owner != caller.device {
        let may = match meta.conversation_ref {
            Some(conv_ref) => match participant(&state, &caller, conv_ref).await? {
                Some(Participant::Visitor) => true,
                Some(Participant::Member(role)) => role.can_manage_members(),
                None => false,
            },
            None => false,
        };
        if !may {
            return Err(ApiError::forbidden("this device may not delete the blob"));
        }
    }
    let mut tx = state.db.begin_write().await?;
    sqlx::query("DELETE FROM blobs WHERE blob_id = $1")
        .bind(id.to_vec())
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        caller.tenant_id,
        meta.team_ref,
        AuditEvent::BlobDeleted,
        Some(&caller.device),
        Some(&to_hex(&id)),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
