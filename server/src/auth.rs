//! Device authentication: challenge-response with the device's identity key, then short-lived
//! bearer tokens.
//!
//! 1. `POST /v1/auth/challenge` returns 32 random bytes, valid for 60 seconds and one attempt.
//! 2. The device signs [`auth_message`] with its Ed25519 identity key under the `RelayAuth`
//!    context: `"sotto/v1/sig/relay-auth\0" || challenge[32] || device_id[32] || widget_id[16]
//!    || u16 origin_len || origin`. Binding the tenant's widget id and the relay's public origin
//!    means a signature made for one relay or tenant is useless at another.
//! 3. `POST /v1/auth/token` consumes the challenge (whatever the outcome), checks the signature
//!    against the registered device record, and returns a random 32-byte token (hex), valid for
//!    15 minutes by default. Only the SHA-256 of challenges and tokens is stored.
//!
//! Neither step tells whether a device is registered: a challenge is issued and stored alike for
//! any device id, and every failure of the token request is the same 401.
//!
//! Every later request carries `Authorization: Bearer <token>`; the [`Caller`] extractor
//! resolves it to the device and its tenant, and applies the per-device rate limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sotto_core::crypto::sign::{Signature, SignatureContext, VerifyingKey};
use sotto_core::device::{DeviceId, DeviceKind, DeviceRecord};
use sotto_core::wire::WireObject;
use sqlx::Row;

use crate::audit::{self, AuditEvent};
use crate::db::now;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, from_b64, from_hex, to_b64, to_hex};
use crate::random::{hash, random_for_request};
use crate::state::AppState;

/// Most tokens kept in the in-memory cache before it is cleared.
const TOKEN_CACHE_CAPACITY: usize = 100_000;

/// The message a device signs to answer a challenge (without the `RelayAuth` label, which the
/// signing function prepends).
pub fn auth_message(
    challenge: &[u8; 32],
    device: &DeviceId,
    widget_id: &[u8; 16],
    origin: &str,
) -> Vec<u8> {
    let origin = origin.as_bytes();
    let len = u16::try_from(origin.len()).unwrap_or(u16::MAX);
    let origin = origin.get(..usize::from(len)).unwrap_or(origin);
    let mut m = Vec::with_capacity(32 + 32 + 16 + 2 + origin.len());
    m.extend_from_slice(challenge);
    m.extend_from_slice(&device.0);
    m.extend_from_slice(widget_id);
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(origin);
    m
}

/// An authenticated device, resolved from its bearer token.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The device's tenant (internal id).
    pub tenant_id: i64,
    /// The device.
    pub device: DeviceId,
    /// Its kind.
    pub kind: DeviceKind,
    /// Its identity key, which signs its messages and links.
    pub identity: VerifyingKey,
    /// When the token expires, seconds since the Unix epoch.
    pub expires_at: i64,
}

/// Recently seen tokens by hash, so a request costs no database read for authentication.
/// Entries are immutable facts (a token's device and expiry), so the cache is safe with several
/// relay nodes; expired entries are dropped by the sweeper.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], Caller>>,
}

impl TokenCache {
    fn get(&self, hash: &[u8; 32]) -> Option<Caller> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .cloned()
    }

    fn insert(&self, hash: [u8; 32], caller: Caller) {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if e.len() >= TOKEN_CACHE_CAPACITY {
            e.clear();
        }
        e.insert(hash, caller);
    }

    /// Drops expired tokens.
    pub fn prune(&self, now: i64) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, c| c.expires_at > now);
    }

    /// Drops every token of a device (for example when its registration changes).
    pub fn forget_device(&self, tenant_id: i64, device: &DeviceId) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, c| !(c.tenant_id == tenant_id && c.device == *device));
    }
}

/// The device id of an authenticated request, for the access log. The logging middleware puts
/// an empty slot in the request; authentication fills it.
#[derive(Clone, Default)]
pub struct LogSlot(pub Arc<OnceLock<DeviceId>>);

/// Resolves a bearer token (hex) to its device.
pub async fn authenticate(state: &AppState, token: &str) -> ApiResult<Caller> {
    let token: [u8; 32] =
        from_hex("token", token).map_err(|_| ApiError::unauthorized("invalid token"))?;
    let token_hash = hash(&token);
    let now = now();
    if let Some(c) = state.tokens.get(&token_hash) {
        return if c.expires_at > now {
            Ok(c)
        } else {
            Err(ApiError::unauthorized("token expired"))
        };
    }
    let row = sqlx::query(
        "SELECT t.tenant_id, t.device_id, t.expires_at, d.record FROM auth_tokens t \
         JOIN devices d ON d.tenant_id = t.tenant_id AND d.device_id = t.device_id \
         WHERE t.token_hash = $1",
    )
    .bind(token_hash.to_vec())
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(|| ApiError::unauthorized("unknown token"))?;
    let expires_at: i64 = row.try_get("expires_at")?;
    if expires_at <= now {
        return Err(ApiError::unauthorized("token expired"));
    }
    let record: Vec<u8> = row.try_get("record")?;
    let record = DeviceRecord::from_wire(&record).map_err(|_| {
        tracing::error!("stored device record does not decode");
        ApiError::internal()
    })?;
    let caller = Caller {
        tenant_id: row.try_get("tenant_id")?,
        device: record.id(),
        kind: record.kind(),
        identity: *record.identity(),
        expires_at,
    };
    state.tokens.insert(token_hash, caller.clone());
    Ok(caller)
}

/// Per-device rate limit and access-log slot, after authentication.
pub fn admit(state: &AppState, caller: &Caller, slot: Option<&LogSlot>) -> ApiResult<()> {
    if let Some(slot) = slot {
        let _ = slot.0.set(caller.device);
    }
    state
        .device_limits
        .check(&(caller.tenant_id, caller.device))
        .map_err(ApiError::rate_limited)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("expected `Authorization: Bearer <token>`"))?;
        let caller = authenticate(state, token.trim()).await?;
        admit(state, &caller, parts.extensions.get::<LogSlot>())?;
        Ok(caller)
    }
}

/// A tenant found by its public widget id.
pub struct Tenant {
    /// Internal id.
    pub id: i64,
    /// Public widget id.
    pub widget_id: [u8; 16],
}

/// Looks a tenant up by widget id (hex).
pub async fn tenant_by_widget(state: &AppState, widget_id: &str) -> ApiResult<Option<Tenant>> {
    let widget_id: [u8; 16] = from_hex("widget_id", widget_id)?;
    let row = sqlx::query("SELECT id FROM tenants WHERE widget_id = $1")
        .bind(widget_id.to_vec())
        .fetch_optional(state.db.pool())
        .await?;
    Ok(match row {
        Some(r) => Some(Tenant {
            id: r.try_get("id")?,
            widget_id,
        }),
        None => None,
    })
}

/// Body of `POST /v1/auth/challenge`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// The tenant's widget id (hex).
    pub widget_id: String,
    /// The device id (hex).
    pub device_id: String,
}

/// Response of `POST /v1/auth/challenge`.
#[derive(Serialize)]
pub struct ChallengeResponse {
    /// 32 random bytes, base64.
    pub challenge: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: i64,
    /// The origin the relay expects in the signed message.
    pub origin: String,
}

/// `POST /v1/auth/challenge`.
pub async fn challenge(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ChallengeRequest>,
) -> ApiResult<Json<ChallengeResponse>> {
    let device: [u8; 32] = from_hex("device_id", &req.device_id)?;
    let tenant = tenant_by_widget(&state, &req.widget_id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let challenge: [u8; 32] = random_for_request()?;
    let expires_at = now().saturating_add(state.settings.challenge_ttl_secs);
    // Stored whether or not the device is registered, so the answer and the work behind it
    // (one insert) are the same: neither the response nor its timing tells whether a device is
    // registered. The token request then fails alike for both. Unused challenges are swept.
    state
        .db
        .write(async |c| {
            sqlx::query(
                "INSERT INTO auth_challenges (challenge_hash, tenant_id, device_id, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(hash(&challenge).to_vec())
            .bind(tenant.id)
            .bind(device.to_vec())
            .bind(expires_at)
            .execute(c)
            .await
        })
        .await?;
    Ok(Json(ChallengeResponse {
        challenge: to_b64(&challenge),
        expires_at,
        origin: state.settings.origin.clone(),
    }))
}

/// Body of `POST /v1/auth/token`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The tenant's widget id (hex).
    pub widget_id: String,
    /// The device id (hex).
    pub device_id: String,
    /// The challenge, base64, as returned.
    pub challenge: String,
    /// The Ed25519 signature (64 bytes, base64) over [`auth_message`] under `RelayAuth`.
    pub signature: String,
}

/// Response of `POST /v1/auth/token`.
#[derive(Serialize)]
pub struct TokenResponse {
    /// The bearer token (hex).
    pub token: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: i64,
}

/// `POST /v1/auth/token`.
pub async fn token(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenRequest>,
) -> ApiResult<(StatusCode, Json<TokenResponse>)> {
    let device = DeviceId(from_hex("device_id", &req.device_id)?);
    let challenge: [u8; 32] = from_b64("challenge", &req.challenge)?
        .try_into()
        .map_err(|_| ApiError::bad_request("bad_request", "challenge must be 32 bytes"))?;
    let signature = Signature::from_slice(&from_b64("signature", &req.signature)?)
        .map_err(|_| ApiError::bad_request("bad_request", "signature must be 64 bytes"))?;
    // One answer for every failure (unknown tenant, unknown, used or expired challenge,
    // unregistered device, bad signature): which one it was would tell an outsider whether a
    // device is registered.
    let failed = || ApiError::unauthorized("authentication failed");
    let tenant = tenant_by_widget(&state, &req.widget_id)
        .await?
        .ok_or_else(failed)?;
    let now = now();

    // Single use: the challenge is deleted by this attempt whether or not it succeeds.
    let row = state
        .db
        .write(async |c| {
            sqlx::query(
                "DELETE FROM auth_challenges \
                 WHERE challenge_hash = $1 AND tenant_id = $2 AND device_id = $3 \
                 RETURNING expires_at",
            )
            .bind(hash(&challenge).to_vec())
            .bind(tenant.id)
            .bind(device.0.to_vec())
            .fetch_optional(c)
            .await
        })
        .await?
        .ok_or_else(failed)?;
    let expires_at: i64 = row.try_get("expires_at")?;
    if expires_at <= now {
        return Err(failed());
    }

    let record: Vec<u8> =
        sqlx::query("SELECT record FROM devices WHERE tenant_id = $1 AND device_id = $2")
            .bind(tenant.id)
            .bind(device.0.to_vec())
            .fetch_optional(state.db.pool())
            .await?
            .ok_or_else(failed)?
            .try_get("record")?;
    let record = DeviceRecord::from_wire(&record).map_err(|_| {
        tracing::error!("stored device record does not decode");
        ApiError::internal()
    })?;
    // A device signs the origin it reached: the API's, or the console listener's.
    let signed_for = |origin: &str| {
        let message = auth_message(&challenge, &device, &tenant.widget_id, origin);
        record
            .identity()
            .verify(SignatureContext::RelayAuth, &message, &signature)
            .is_ok()
    };
    if !(signed_for(&state.settings.origin)
        || state
            .settings
            .console_origin
            .as_deref()
            .is_some_and(signed_for))
    {
        return Err(failed());
    }

    let token: [u8; 32] = random_for_request()?;
    let token_expires = now.saturating_add(state.settings.token_ttl_secs);
    let mut tx = state.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO auth_tokens (token_hash, tenant_id, device_id, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(hash(&token).to_vec())
    .bind(tenant.id)
    .bind(device.0.to_vec())
    .bind(token_expires)
    .execute(&mut *tx)
    .await?;
    // What the sweep of idle visitor devices goes by.
    sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE tenant_id = $2 AND device_id = $3")
        .bind(now)
        .bind(tenant.id)
        .bind(device.0.to_vec())
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        tenant.id,
        None,
        AuditEvent::DeviceAuthenticated,
        Some(&device),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::OK,
        Json(TokenResponse {
            token: to_hex(&token),
            expires_at: token_expires,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_message_layout() {
        let m = auth_message(&[1; 32], &DeviceId([2; 32]), &[3; 16], "http://a");
        assert_eq!(m.len(), 32 + 32 + 16 + 2 + 8);
        assert_eq!(&m[..32], &[1; 32]);
        assert_eq!(&m[32..64], &[2; 32]);
        assert_eq!(&m[64..80], &[3; 16]);
        assert_eq!(&m[80..82], &[0, 8]);
        assert_eq!(&m[82..], b"http://a");
    }
}
