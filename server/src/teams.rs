//! Verified team chain states, cached in memory.
//!
//! The relay decides who may read and write a team's data from the team's chain, verified the
//! way a client verifies it (`TeamState`). The state of a team is built on first use from the
//! stored links and kept; appends go through [`TeamEntry::append_lock`], which first applies any
//! links another relay node stored meanwhile ([`Teams::refresh`]), so the verification always
//! starts from the newest stored head. The relay's checks protect its storage and its users'
//! quotas; clients never rely on them and verify every link themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use sotto_core::device::{DeviceId, DeviceKind};
use sotto_core::team::{Link, LinkHash, Role, TeamId, TeamState};
use sotto_core::wire::WireObject;
use sqlx::Row;

use crate::auth::Caller;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// One team's cached state.
#[derive(Debug)]
pub struct TeamEntry {
    /// The team's row id.
    pub team_ref: i64,
    /// The tenant.
    pub tenant_id: i64,
    /// The team id.
    pub team_id: TeamId,
    /// Held while a link is verified and stored, so appends on this node are serialized.
    pub append_lock: tokio::sync::Mutex<()>,
    state: RwLock<Arc<TeamState>>,
}

impl TeamEntry {
    /// An entry for a team whose chain was verified up to `state`.
    pub fn new(team_ref: i64, tenant_id: i64, state: TeamState) -> Self {
        TeamEntry {
            team_ref,
            tenant_id,
            team_id: state.team(),
            append_lock: tokio::sync::Mutex::new(()),
            state: RwLock::new(Arc::new(state)),
        }
    }

    /// The newest verified state.
    pub fn state(&self) -> Arc<TeamState> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the state after a verified append.
    pub fn set_state(&self, state: TeamState) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
    }
}

/// The cache of team states, keyed by tenant and team id.
#[derive(Debug, Default)]
pub struct Teams {
    entries: Mutex<HashMap<(i64, TeamId), Arc<TeamEntry>>>,
}

fn decode_stored_link(bytes: &[u8]) -> ApiResult<Link> {
    Link::from_wire(bytes).map_err(|e| {
        tracing::error!(code = e.code(), "stored chain link does not decode");
        ApiError::internal()
    })
}

impl Teams {
    /// The team `team_id` of `tenant_id`, loading and verifying its chain on first use.
    pub async fn get(
        &self,
        db: &Db,
        tenant_id: i64,
        team_id: &TeamId,
    ) -> ApiResult<Option<Arc<TeamEntry>>> {
        if let Some(e) = self.cached(tenant_id, team_id) {
            return Ok(Some(e));
        }
        let Some(row) =
            sqlx::query("SELECT id, fingerprint FROM teams WHERE tenant_id = $1 AND team_id = $2")
                .bind(tenant_id)
                .bind(team_id.0.to_vec())
                .fetch_optional(db.pool())
                .await?
        else {
            return Ok(None);
        };
        let team_ref: i64 = row.try_get("id")?;
        let fingerprint: Vec<u8> = row.try_get("fingerprint")?;
        let fingerprint = LinkHash(fingerprint.try_into().map_err(|_| ApiError::internal())?);
        let rows = sqlx::query("SELECT link FROM chain_links WHERE team_ref = $1 ORDER BY seq")
            .bind(team_ref)
            .fetch_all(db.pool())
            .await?;
        let mut links = Vec::with_capacity(rows.len());
        for r in rows {
            let bytes: Vec<u8> = r.try_get("link")?;
            links.push(decode_stored_link(&bytes)?);
        }
        let state = TeamState::verify_chain(&links, &fingerprint).map_err(|e| {
            tracing::error!(code = e.code(), "stored team chain does not verify");
            ApiError::internal()
        })?;
        if state.team() != *team_id {
            tracing::error!("stored team chain names another team");
            return Err(ApiError::internal());
        }
        Ok(Some(self.insert(Arc::new(TeamEntry::new(
            team_ref, tenant_id, state,
        )))))
    }

    fn cached(&self, tenant_id: i64, team_id: &TeamId) -> Option<Arc<TeamEntry>> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(tenant_id, *team_id))
            .cloned()
    }

    /// Caches an entry unless one is already there; returns the cached one.
    pub fn insert(&self, entry: Arc<TeamEntry>) -> Arc<TeamEntry> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((entry.tenant_id, entry.team_id))
            .or_insert(entry)
            .clone()
    }

    /// Applies links stored after the cached head (by another relay node). Call with the
    /// entry's append lock held when about to append; a multi-node fan-out calls it when it
    /// hears of a link from another node.
    pub async fn refresh(&self, db: &Db, entry: &TeamEntry) -> ApiResult<()> {
        let mut state = (*entry.state()).clone();
        let rows = sqlx::query(
            "SELECT link FROM chain_links WHERE team_ref = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(entry.team_ref)
        .bind(crate::db::int(state.seq()))
        .fetch_all(db.pool())
        .await?;
        if rows.is_empty() {
            return Ok(());
        }
        for r in rows {
            let bytes: Vec<u8> = r.try_get("link")?;
            state.apply(&decode_stored_link(&bytes)?).map_err(|e| {
                tracing::error!(code = e.code(), "stored chain link does not verify");
                ApiError::internal()
            })?;
        }
        entry.set_state(state);
        Ok(())
    }

    /// Team ids of a tenant.
    pub async fn ids_of_tenant(db: &Db, tenant_id: i64) -> ApiResult<Vec<TeamId>> {
        let rows = sqlx::query("SELECT team_id FROM teams WHERE tenant_id = $1 ORDER BY id")
            .bind(tenant_id)
            .fetch_all(db.pool())
            .await?;
        let mut ids = Vec::with_capacity(rows.len());
        for r in rows {
            let b: Vec<u8> = r.try_get("team_id")?;
            ids.push(TeamId(b.try_into().map_err(|_| ApiError::internal())?));
        }
        Ok(ids)
    }

    /// Drops cached entries of a tenant's team (tests and operators deleting rows by hand).
    pub fn forget(&self, tenant_id: i64, team_id: &TeamId) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(tenant_id, *team_id));
    }
}

/// The role of an active device in a team, if it is one.
pub fn role_of(state: &TeamState, device: &DeviceId) -> Option<Role> {
    state.member_of(device).map(|(_, role)| role)
}

/// Whether `caller` may read the chain of a team: an active device of it, or a visitor device
/// of the same tenant (a visitor verifies the chain before it seals an epoch to the team).
pub fn may_read_chain(state: &TeamState, caller: &Caller) -> bool {
    caller.kind == DeviceKind::Visitor || role_of(state, &caller.device).is_some()
}

/// Devices of a team whose role may read conversations.
pub fn readers(state: &TeamState) -> impl Iterator<Item = DeviceId> + '_ {
    state
        .members()
        .values()
        .filter(|m| m.role.can_read())
        .flat_map(|m| m.devices.keys().copied())
}

/// Every active device of a team.
pub fn all_devices(state: &TeamState) -> impl Iterator<Item = DeviceId> + '_ {
    state
        .members()
        .values()
        .flat_map(|m| m.devices.keys().copied())
}

/// Whether the caller is an owner or admin device of some team of its tenant (not deleted):
/// who may read the audit log and create further teams.
pub async fn is_manager_anywhere(state: &AppState, caller: &Caller) -> ApiResult<bool> {
    if caller.kind == DeviceKind::Visitor {
        return Ok(false);
    }
    for id in Teams::ids_of_tenant(&state.db, caller.tenant_id).await? {
        if let Some(entry) = state.teams.get(&state.db, caller.tenant_id, &id).await? {
            let s = entry.state();
            if !s.is_deleted()
                && role_of(&s, &caller.device).is_some_and(|r| r.can_manage_members())
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The teams a device manages (as owner or admin, not deleted) and every device of those teams:
/// what it may see of the audit log.
#[derive(Debug, Default)]
pub struct ManagedScope {
    /// Internal ids of the managed teams.
    pub teams: std::collections::HashSet<i64>,
    /// The devices of those teams (the caller included).
    pub devices: std::collections::HashSet<DeviceId>,
}

/// The caller's [`ManagedScope`] (empty for a visitor or a device that manages no team).
pub async fn managed_scope(state: &AppState, caller: &Caller) -> ApiResult<ManagedScope> {
    let mut scope = ManagedScope::default();
    if caller.kind == DeviceKind::Visitor {
        return Ok(scope);
    }
    for id in Teams::ids_of_tenant(&state.db, caller.tenant_id).await? {
        if let Some(entry) = state.teams.get(&state.db, caller.tenant_id, &id).await? {
            let s = entry.state();
            if !s.is_deleted()
                && role_of(&s, &caller.device).is_some_and(|r| r.can_manage_members())
            {
                scope.teams.insert(entry.team_ref);
                scope.devices.extend(all_devices(&s));
            }
        }
    }
    if !scope.teams.is_empty() {
        scope.devices.insert(caller.device);
    }
    Ok(scope)
}
