//! Device registration and key-agreement rotation.
//!
//! A device registers its `DeviceRecord` (wire bytes, self-certifying) with a tenant named by its
//! public widget id. Visitors, recovery devices and later member devices need only the widget id;
//! member devices get no access to a team until they appear in its chain. The tenant's first
//! owner device registers with the one-time bootstrap code printed by `sotto-relay tenant
//! create`, which lets it create the tenant's first team.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sotto_core::device::{DeviceId, DeviceKind, DeviceRecord, KeyAgreementRecord};
use sotto_core::wire::WireObject;
use sqlx::Row;

use crate::audit::{self, AuditEvent};
use crate::auth::{Caller, tenant_by_widget};
use crate::db::now;
use crate::error::{ApiError, ApiResult, is_unique_violation};
use crate::extract::{ApiJson, ApiPath, from_b64, from_hex, to_b64, to_hex};
use crate::random::hash;
use crate::rate_limit::ClientAddress;
use crate::state::AppState;

/// The name of a device kind in the API.
pub fn kind_name(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Member => "member",
        DeviceKind::Visitor => "visitor",
        DeviceKind::Recovery => "recovery",
    }
}

/// Body of `POST /v1/devices`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The tenant's widget id (hex).
    pub widget_id: String,
    /// The device record's wire bytes (base64).
    pub record: String,
    /// The tenant's bootstrap code (hex), for its first owner device only.
    #[serde(default)]
    pub bootstrap_code: Option<String>,
}

/// A registered device.
#[derive(Serialize)]
pub struct DeviceInfo {
    /// The device id (hex).
    pub device_id: String,
    /// `member`, `visitor` or `recovery`.
    pub kind: &'static str,
    /// The current device record (base64 wire bytes).
    pub record: String,
    /// Registration time, seconds since the Unix epoch.
    pub registered_at: i64,
}

fn info(record: &DeviceRecord, registered_at: i64) -> DeviceInfo {
    DeviceInfo {
        device_id: to_hex(&record.id().0),
        kind: kind_name(record.kind()),
        record: to_b64(&record.to_wire()),
        registered_at,
    }
}

/// `POST /v1/devices`: registers a device. 201 both when new and when the same record was
/// already registered, with `registered_at` the time of this request either way: the answer
/// must not tell whoever holds a device's public record whether, or since when, it is
/// registered. 409 when another record holds the id (only the holder of the identity key can
/// make one).
///
/// Visitor registrations are throttled per client address and per tenant (429
/// `registration_throttled`): anyone with the public widget id can make one, for free, and each
/// is a stored row. (Member devices are few and useless until a team's chain names them.)
pub async fn register(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<DeviceInfo>)> {
    let bytes = from_b64("record", &req.record)?;
    let record =
        DeviceRecord::from_wire(&bytes).map_err(|e| ApiError::invalid_wire("device record", e))?;
    let bootstrap = match &req.bootstrap_code {
        Some(code) => {
            if record.kind() != DeviceKind::Member {
                return Err(ApiError::bad_request(
                    "bad_request",
                    "only a member device registers with a bootstrap code",
                ));
            }
            Some(from_hex::<32>("bootstrap_code", code)?)
        }
        None => None,
    };
    let tenant = tenant_by_widget(&state, &req.widget_id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let throttled = |wait: u64| {
        state.metrics.quota_refused();
        ApiError::registration_throttled(wait)
    };
    if record.kind() == DeviceKind::Visitor {
        state
            .registrations_per_address
            .check(&address)
            .map_err(throttled)?;
        state
            .registrations_per_tenant
            .check(&tenant.id)
            .map_err(throttled)?;
    }
    let id = record.id();
    let now = now();

    let mut tx = state.db.begin_write().await?;
    let existing = sqlx::query(
        "SELECT record, registered_at FROM devices WHERE tenant_id = $1 AND device_id = $2",
    )
    .bind(tenant.id)
    .bind(id.0.to_vec())
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = existing {
        let stored: Vec<u8> = row.try_get("record")?;
        tx.rollback().await?;
        if stored == bytes && bootstrap.is_none() {
            return Ok((StatusCode::CREATED, Json(info(&record, now))));
        }
        return Err(ApiError::conflict(
            "already_registered",
            "this device id is registered with another record",
        ));
    }
    if let Some(code) = bootstrap {
        let consumed = sqlx::query(
            "UPDATE tenants SET bootstrap_hash = NULL WHERE id = $1 AND bootstrap_hash = $2",
        )
        .bind(tenant.id)
        .bind(hash(&code).to_vec())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if consumed != 1 {
            tx.rollback().await?;
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "bootstrap_invalid",
                "the bootstrap code is wrong or already used",
            ));
        }
    }
    let inserted = sqlx::query(
        "INSERT INTO devices (tenant_id, device_id, kind, record, bootstrap, registered_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant.id)
    .bind(id.0.to_vec())
    .bind(i64::from(record.kind().to_byte()))
    .bind(bytes)
    .bind(i64::from(bootstrap.is_some()))
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        // A concurrent registration of the same id on another node won.
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                "already_registered",
                "this device id was registered concurrently; retry",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    audit::record(
        &mut *tx,
        tenant.id,
        None,
        AuditEvent::DeviceRegistered,
        Some(&id),
        Some(kind_name(record.kind())),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(info(&record, now))))
}

async fn load(
    state: &AppState,
    tenant_id: i64,
    device: &DeviceId,
) -> ApiResult<Option<(DeviceRecord, Vec<u8>, i64)>> {
    let row = sqlx::query(
        "SELECT record, registered_at FROM devices WHERE tenant_id = $1 AND device_id = $2",
    )
    .bind(tenant_id)
    .bind(device.0.to_vec())
    .fetch_optional(state.db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let bytes: Vec<u8> = row.try_get("record")?;
    let record = DeviceRecord::from_wire(&bytes).map_err(|_| {
        tracing::error!("stored device record does not decode");
        ApiError::internal()
    })?;
    Ok(Some((record, bytes, row.try_get("registered_at")?)))
}

/// `GET /v1/devices/me`.
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<DeviceInfo>> {
    let (record, _, at) = load(&state, caller.tenant_id, &caller.device)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?;
    Ok(Json(info(&record, at)))
}

/// `GET /v1/devices/{device_id}`: a member device of the same tenant (public keys only), or the
/// caller itself. Visitor and recovery devices are not listed to anyone else: the answer is the
/// same 404 as for an unregistered id, so one visitor cannot learn whether another exists, or
/// its keys (the team learns a visitor's record from the conversation's epoch records).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(device_id): ApiPath<String>,
) -> ApiResult<Json<DeviceInfo>> {
    let device = DeviceId(from_hex("device_id", &device_id)?);
    let (record, _, at) = load(&state, caller.tenant_id, &device)
        .await?
        .filter(|(r, _, _)| r.kind() == DeviceKind::Member || device == caller.device)
        .ok_or_else(|| ApiError::not_found("device"))?;
    Ok(Json(info(&record, at)))
}

/// Body of `PUT /v1/devices/me/key-agreement`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// The new key-agreement record's wire bytes (base64).
    pub record: String,
}

/// `PUT /v1/devices/me/key-agreement`: replaces the device's key-agreement key with a newer one
/// signed by its identity key.
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<RotateRequest>,
) -> ApiResult<Json<DeviceInfo>> {
    let new = KeyAgreementRecord::from_wire(&from_b64("record", &req.record)?)
        .map_err(|e| ApiError::invalid_wire("key-agreement record", e))?;
    let (mut record, old_bytes, at) = load(&state, caller.tenant_id, &caller.device)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?;
    new.verify(record.identity())
        .map_err(|e| ApiError::refused("key-agreement record", e))?;
    if new.generation <= record.key_agreement().generation {
        return Err(ApiError::conflict(
            "not_newer",
            "the key-agreement record is not newer than the registered one",
        ));
    }
    let generation = new.generation;
    record
        .rotate_to(new)
        .map_err(|e| ApiError::refused("key-agreement record", e))?;
    let mut tx = state.db.begin_write().await?;
    let updated = sqlx::query(
        "UPDATE devices SET record = $1 WHERE tenant_id = $2 AND device_id = $3 AND record = $4",
    )
    .bind(record.to_wire())
    .bind(caller.tenant_id)
    .bind(caller.device.0.to_vec())
    .bind(old_bytes)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated != 1 {
        tx.rollback().await?;
        return Err(ApiError::conflict(
            "not_newer",
            "the registration changed concurrently; retry",
        ));
    }
    audit::record(
        &mut *tx,
        caller.tenant_id,
        None,
        AuditEvent::KeyRotated,
        Some(&caller.device),
        Some(&generation.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(info(&record, at)))
}
