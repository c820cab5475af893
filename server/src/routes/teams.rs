//! Team chains: creation from the first link, appends that must extend the current head, reads
//! from any sequence number, and head attestations.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sotto_core::device::DeviceKind;
use sotto_core::team::attestation::HeadAttestation;
use sotto_core::team::{Change, Link, TeamId, TeamState};
use sotto_core::wire::WireObject;
use sqlx::Row;

use crate::audit::{self, AuditEvent};
use crate::auth::Caller;
use crate::db::{int, now};
use crate::error::{ApiError, ApiResult, is_unique_violation};
use crate::events;
use crate::extract::{ApiJson, ApiPath, ApiQuery, from_b64, from_hex, to_b64, to_hex};
use crate::state::AppState;
use crate::teams::{TeamEntry, Teams, is_manager_anywhere, may_read_chain, role_of};

/// Most bytes of links returned by one read (at least one link is always returned).
const MAX_LINKS_BYTES: usize = 8 * 1024 * 1024;

/// A team as the relay sees it.
#[derive(Serialize)]
pub struct TeamInfo {
    /// The team id (hex).
    pub team_id: String,
    /// The hash of the first link (hex): what the widget snippet pins.
    pub fingerprint: String,
    /// Sequence number of the head.
    pub seq: u64,
    /// Hash of the head (hex).
    pub head: String,
    /// Whether a DeleteTeam link ended the chain.
    pub deleted: bool,
}

fn team_info(s: &TeamState) -> TeamInfo {
    TeamInfo {
        team_id: to_hex(&s.team().0),
        fingerprint: to_hex(&s.fingerprint().0),
        seq: s.seq(),
        head: to_hex(&s.head().0),
        deleted: s.is_deleted(),
    }
}

/// A body holding one chain link.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// The link's wire bytes (base64).
    pub link: String,
}

fn decode_link(body: &LinkBody) -> ApiResult<(Link, Vec<u8>)> {
    let bytes = from_b64("link", &body.link)?;
    let link = Link::from_wire(&bytes).map_err(|e| ApiError::invalid_wire("chain link", e))?;
    Ok((link, bytes))
}

/// The team `team_id` (hex) of the caller's tenant, or 404.
pub async fn find_team(
    state: &AppState,
    caller: &Caller,
    team_id: &str,
) -> ApiResult<Arc<TeamEntry>> {
    let team_id = TeamId(from_hex("team_id", team_id)?);
    state
        .teams
        .get(&state.db, caller.tenant_id, &team_id)
        .await?
        .ok_or_else(|| ApiError::not_found("team"))
}

/// [`find_team`], first applying links another relay node stored since the cached head, for
/// reads that report the head.
pub async fn find_team_fresh(
    state: &AppState,
    caller: &Caller,
    team_id: &str,
) -> ApiResult<Arc<TeamEntry>> {
    let entry = find_team(state, caller, team_id).await?;
    {
        let _guard = entry.append_lock.lock().await;
        state.teams.refresh(&state.db, &entry).await?;
    }
    Ok(entry)
}

fn check_chain_reader(s: &TeamState, caller: &Caller) -> ApiResult<()> {
    if may_read_chain(s, caller) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this device is not in the team's chain",
        ))
    }
}

/// `POST /v1/teams`: creates a team from its first link (CreateTeam), authored by the caller.
/// The caller must be the tenant's bootstrap device or an owner or admin device of another team.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<LinkBody>,
) -> ApiResult<(StatusCode, Json<TeamInfo>)> {
    let (link, bytes) = decode_link(&body)?;
    if link.author != caller.device {
        return Err(ApiError::forbidden("a link is uploaded by its author"));
    }
    let fingerprint = link.hash();
    let team = TeamState::from_genesis(&link, &fingerprint)
        .map_err(|e| ApiError::refused("first link", e))?;
    let bootstrap: i64 =
        sqlx::query("SELECT bootstrap FROM devices WHERE tenant_id = $1 AND device_id = $2")
            .bind(caller.tenant_id)
            .bind(caller.device.0.to_vec())
            .fetch_optional(state.db.pool())
            .await?
            .map(|r| r.try_get("bootstrap"))
            .transpose()?
            .unwrap_or(0);
    if caller.kind == DeviceKind::Visitor
        || (bootstrap == 0 && !is_manager_anywhere(&state, &caller).await?)
    {
        return Err(ApiError::forbidden(
            "teams are created by the bootstrap device or an owner or admin of another team",
        ));
    }
    let now = now();
    let mut tx = state.db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO teams (tenant_id, team_id, fingerprint, head_seq, head, retention_secs, created_at) \
         VALUES ($1, $2, $3, 0, $4, $5, $6) RETURNING id",
    )
    .bind(caller.tenant_id)
    .bind(team.team().0.to_vec())
    .bind(fingerprint.0.to_vec())
    .bind(team.head().0.to_vec())
    .bind(int(team.policy().retention_secs))
    .bind(now)
    .fetch_one(&mut *tx)
    .await;
    let team_ref: i64 = match inserted {
        Ok(row) => row.try_get("id")?,
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                "team_exists",
                "a team with this id exists",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    sqlx::query("INSERT INTO chain_links (team_ref, seq, link, created_at) VALUES ($1, 0, $2, $3)")
        .bind(team_ref)
        .bind(bytes.clone())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        caller.tenant_id,
        Some(team_ref),
        AuditEvent::TeamCreated,
        Some(&caller.device),
        Some(&to_hex(&team.team().0)),
    )
    .await?;
    tx.commit().await?;

    let info = team_info(&team);
    let event = events::link(caller.tenant_id, team_ref, &team, &team, 0, &bytes);
    state
        .teams
        .insert(Arc::new(TeamEntry::new(team_ref, caller.tenant_id, team)));
    state.metrics.link_appended();
    state.fanout.publish(event);
    Ok((StatusCode::CREATED, Json(info)))
}

/// Response of `GET /v1/teams`.
#[derive(Serialize)]
pub struct TeamList {
    /// Teams whose chain the caller may read.
    pub teams: Vec<TeamInfo>,
}

/// `GET /v1/teams`: the teams the caller is a device of (all of the tenant's teams for a
/// visitor, which picks the one its widget pins).
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<TeamList>> {
    let mut teams = Vec::new();
    for id in Teams::ids_of_tenant(&state.db, caller.tenant_id).await? {
        if let Some(entry) = state.teams.get(&state.db, caller.tenant_id, &id).await? {
            let s = entry.state();
            if may_read_chain(&s, &caller) {
                teams.push(team_info(&s));
            }
        }
    }
    Ok(Json(TeamList { teams }))
}

/// `GET /v1/teams/{team_id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(team_id): ApiPath<String>,
) -> ApiResult<Json<TeamInfo>> {
    let entry = find_team_fresh(&state, &caller, &team_id).await?;
    let s = entry.state();
    check_chain_reader(&s, &caller)?;
    Ok(Json(team_info(&s)))
}

/// Query of `GET /v1/teams/{team_id}/links`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksQuery {
    /// First sequence number (default 0).
    pub from: Option<u64>,
    /// Most links (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// One stored link.
#[derive(Serialize)]
pub struct StoredLink {
    /// Its sequence number.
    pub seq: i64,
    /// Its wire bytes (base64).
    pub link: String,
}

/// Response of `GET /v1/teams/{team_id}/links`.
#[derive(Serialize)]
pub struct LinkPage {
    /// Links in increasing sequence order.
    pub links: Vec<StoredLink>,
    /// The head's sequence number.
    pub head_seq: u64,
}

/// `GET /v1/teams/{team_id}/links?from=&limit=`.
pub async fn links(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(team_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<LinksQuery>,
) -> ApiResult<Json<LinkPage>> {
    let entry = find_team_fresh(&state, &caller, &team_id).await?;
    let s = entry.state();
    check_chain_reader(&s, &caller)?;
    let rows = sqlx::query(
        "SELECT seq, link FROM chain_links WHERE team_ref = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
    )
    .bind(entry.team_ref)
    .bind(int(q.from.unwrap_or(0)))
    .bind(i64::from(q.limit.unwrap_or(100).clamp(1, 1000)))
    .fetch_all(state.db.pool())
    .await?;
    let mut links = Vec::with_capacity(rows.len());
    let mut total = 0usize;
    for r in rows {
        let bytes: Vec<u8> = r.try_get("link")?;
        total = total.saturating_add(bytes.len());
        if total > MAX_LINKS_BYTES && !links.is_empty() {
            break;
        }
        links.push(StoredLink {
            seq: r.try_get("seq")?,
            link: to_b64(&bytes),
        });
    }
    Ok(Json(LinkPage {
        links,
        head_seq: s.seq(),
    }))
}

/// Response of `POST /v1/teams/{team_id}/links`.
#[derive(Serialize)]
pub struct Appended {
    /// The new head's sequence number.
    pub seq: u64,
    /// The new head's hash (hex).
    pub head: String,
}

/// `POST /v1/teams/{team_id}/links`: appends a link authored by the caller, if it extends the
/// current head and the chain rules accept it. Of two appends on the same head exactly one
/// wins; the other gets 409 `head_moved`. A DeleteTeam link deletes the team's conversations,
/// envelopes and blobs in the same transaction that stores it.
pub async fn append(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(team_id): ApiPath<String>,
    ApiJson(body): ApiJson<LinkBody>,
) -> ApiResult<(StatusCode, Json<Appended>)> {
    let entry = find_team(&state, &caller, &team_id).await?;
    if role_of(&entry.state(), &caller.device).is_none() {
        return Err(ApiError::forbidden("only the team's devices append links"));
    }
    let (link, bytes) = decode_link(&body)?;
    if link.author != caller.device {
        return Err(ApiError::forbidden("a link is uploaded by its author"));
    }

    let _guard = entry.append_lock.lock().await;
    state.teams.refresh(&state.db, &entry).await?;
    let before = entry.state();
    if link.team != before.team() {
        return Err(ApiError::bad_request(
            "verification_failed",
            "chain link refused: chain_wrong_team",
        ));
    }
    if Some(link.seq) != before.seq().checked_add(1) || link.previous != before.head() {
        return Err(head_moved(&before));
    }
    let mut after = (*before).clone();
    after
        .apply(&link)
        .map_err(|e| ApiError::refused("chain link", e))?;
    let deletes = link.change == Change::DeleteTeam;
    let team_hex = to_hex(&after.team().0);

    let mut tx = state.db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO chain_links (team_ref, seq, link, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(entry.team_ref)
    .bind(int(link.seq))
    .bind(bytes.clone())
    .bind(now())
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        // Another relay node stored this sequence number first.
        Err(e) if is_unique_violation(&e) => return Err(head_moved(&before)),
        Err(e) => return Err(e.into()),
    }
    sqlx::query(
        "UPDATE teams SET head_seq = $1, head = $2, deleted = $3, retention_secs = $4, \
         attestation = NULL WHERE id = $5",
    )
    .bind(int(after.seq()))
    .bind(after.head().0.to_vec())
    .bind(i64::from(after.is_deleted()))
    .bind(int(after.policy().retention_secs))
    .bind(entry.team_ref)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        caller.tenant_id,
        Some(entry.team_ref),
        AuditEvent::LinkAppended,
        Some(&caller.device),
        Some(&format!("{team_hex}:{}", link.seq)),
    )
    .await?;
    if deletes {
        // Envelopes, epochs, acks, visitors and attachment blobs go with their conversations
        // (ON DELETE CASCADE); the chain itself stays, ending in the DeleteTeam link.
        sqlx::query("DELETE FROM conversations WHERE team_ref = $1")
            .bind(entry.team_ref)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut *tx,
            caller.tenant_id,
            Some(entry.team_ref),
            AuditEvent::TeamDeleted,
            Some(&caller.device),
            Some(&team_hex),
        )
        .await?;
    }
    tx.commit().await?;

    let event = events::link(
        caller.tenant_id,
        entry.team_ref,
        &before,
        &after,
        link.seq,
        &bytes,
    );
    let response = Appended {
        seq: after.seq(),
        head: to_hex(&after.head().0),
    };
    entry.set_state(after);
    state.metrics.link_appended();
    state.fanout.publish(event);
    Ok((StatusCode::CREATED, Json(response)))
}

fn head_moved(current: &TeamState) -> ApiError {
    ApiError::conflict(
        "head_moved",
        format!(
            "the link does not extend the current head (seq {}); fetch the newer links and retry",
            current.seq()
        ),
    )
}

/// A body holding a head attestation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationBody {
    /// The attestation's wire bytes (base64).
    pub attestation: String,
}

/// Response of `PUT /v1/teams/{team_id}/attestation`.
#[derive(Serialize)]
pub struct AttestationStored {
    /// The attested head's sequence number.
    pub seq: u64,
    /// The attestation's time.
    pub time: u64,
}

/// `PUT /v1/teams/{team_id}/attestation`: stores the caller's attestation of the current head,
/// if it names exactly that head, is signed by an active read-permitted device (the caller) and
/// is fresh by the relay's clock. Appending a link clears the stored attestation.
pub async fn put_attestation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(team_id): ApiPath<String>,
    ApiJson(body): ApiJson<AttestationBody>,
) -> ApiResult<Json<AttestationStored>> {
    let entry = find_team(&state, &caller, &team_id).await?;
    if role_of(&entry.state(), &caller.device).is_none() {
        return Err(ApiError::forbidden(
            "only the team's devices attest its head",
        ));
    }
    let bytes = from_b64("attestation", &body.attestation)?;
    let a = HeadAttestation::from_wire(&bytes)
        .map_err(|e| ApiError::invalid_wire("head attestation", e))?;
    if a.author != caller.device {
        return Err(ApiError::forbidden(
            "an attestation is uploaded by its author",
        ));
    }
    let _guard = entry.append_lock.lock().await;
    let s = entry.state();
    if a.team == s.team() && (a.seq != s.seq() || a.head != s.head()) {
        return Err(ApiError::conflict(
            "head_moved",
            format!(
                "the attestation does not name the current head (seq {})",
                s.seq()
            ),
        ));
    }
    let now = u64::try_from(now()).unwrap_or(0);
    a.check_fresh(&s, now)
        .map_err(|e| ApiError::refused("head attestation", e))?;
    state
        .db
        .write(async |c| {
            sqlx::query("UPDATE teams SET attestation = $1 WHERE id = $2")
                .bind(bytes)
                .bind(entry.team_ref)
                .execute(c)
                .await
        })
        .await?;
    Ok(Json(AttestationStored {
        seq: a.seq,
        time: a.time,
    }))
}

/// Response of `GET /v1/teams/{team_id}/attestation`.
#[derive(Serialize)]
pub struct AttestationOut {
    /// The newest attestation of the current head (base64 wire bytes).
    pub attestation: String,
}

/// `GET /v1/teams/{team_id}/attestation`: 404 until a device attested the current head.
pub async fn get_attestation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(team_id): ApiPath<String>,
) -> ApiResult<Json<AttestationOut>> {
    let entry = find_team(&state, &caller, &team_id).await?;
    check_chain_reader(&entry.state(), &caller)?;
    let stored: Option<Vec<u8>> = sqlx::query("SELECT attestation FROM teams WHERE id = $1")
        .bind(entry.team_ref)
        .fetch_optional(state.db.pool())
        .await?
        .map(|r| r.try_get("attestation"))
        .transpose()?
        .flatten();
    let bytes = stored.ok_or_else(|| ApiError::not_found("attestation"))?;
    Ok(Json(AttestationOut {
        attestation: to_b64(&bytes),
    }))
}
