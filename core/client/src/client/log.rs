//! The team chain in plain words, for an audit page: every link this client verified, replayed
//! again from the pinned fingerprint and described as a sentence.

use sotto_core::device::DeviceId;
use sotto_core::team::{Change, Link, MemberId, Role, TeamId, TeamState};
use sotto_core::wire::WireObject;

use super::Client;
use super::records;
use crate::store::{Query, Store};
use crate::transport::Transport;
use crate::{Error, Result};

/// One verified link of a team chain, described.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamLogEntry {
    /// The link's position in the chain (0 is the team's creation).
    pub seq: u64,
    /// The author's clock when it made the link, in seconds since the Unix epoch.
    pub at: u64,
    /// The device that signed the link.
    pub author: DeviceId,
    /// What the link did, in words (ids shortened to their first 8 hex digits).
    pub description: String,
}

fn short(bytes: &[u8]) -> String {
    hex::encode(bytes.get(..4).unwrap_or(bytes))
}

fn role(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Agent => "agent",
        Role::Viewer => "viewer",
        Role::Billing => "billing",
        Role::Bot => "bot",
    }
}

fn member(id: &MemberId) -> String {
    format!("member {}", short(&id.0))
}

/// A sentence for one link: who did what, and whether the team key rotated with it.
pub fn describe_link(link: &Link) -> String {
    let by = format!("device {}", short(&link.author.0));
    let what = match &link.change {
        Change::CreateTeam { owner, devices, .. } => format!(
            "{by} created the team with owner {} ({} device{})",
            member(owner),
            devices.len(),
            if devices.len() == 1 { "" } else { "s" }
        ),
        Change::AddMember {
            member: m, role: r, ..
        } => format!("{by} added {} as {}", member(m), role(*r)),
        Change::RemoveMember { member: m } => format!("{by} removed {}", member(m)),
        Change::ChangeRole { member: m, role: r } => {
            format!("{by} made {} {}", member(m), role(*r))
        }
        Change::AddDevice { member: m, device } => format!(
            "{by} approved device {} of {}",
            short(&device.id().0),
            member(m)
        ),
        Change::RevokeDevice { member: m, device } => {
            format!("{by} revoked device {} of {}", short(&device.0), member(m))
        }
        Change::RotateKey => format!("{by} rotated the team key"),
        Change::SetPolicy { .. } => format!("{by} changed the team policy"),
        Change::AddIntegrationKey { name, .. } => {
            format!("{by} added the integration key \"{name}\"")
        }
        Change::DeleteTeam => format!("{by} deleted the team"),
        Change::RevokeIntegrationKey { key } => {
            format!("{by} revoked the integration key {}", short(key.as_bytes()))
        }
        Change::SetWitness { url, key } => format!(
            "{by} set the freshness witness to {url} (key {})",
            short(key.as_bytes())
        ),
    };
    match &link.rotation {
        Some(rotation) if !matches!(link.change, Change::CreateTeam { .. }) => {
            format!(
                "{what}; the team key moved to generation {}",
                rotation.generation
            )
        }
        _ => what,
    }
}

impl<S: Store, T: Transport> Client<S, T> {
    /// The followed team's chain, oldest first, each link described in words. The stored links
    /// are verified again from the team's fingerprint; a chain that no longer verifies is an
    /// error rather than a partial log.
    pub async fn team_log(&self, team: &TeamId) -> Result<Vec<TeamLogEntry>> {
        let fingerprint = {
            let teams = self.inner.teams.lock().await;
            teams
                .get(team)
                .ok_or(Error::UnknownTeam)?
                .state
                .fingerprint()
        };
        let stored = self
            .inner
            .store
            .list(
                &records::ns(records::LINK)?,
                &Query::prefix(team.0.to_vec()),
            )
            .await?;
        let mut state: Option<TeamState> = None;
        let mut out = Vec::with_capacity(stored.len());
        for (_, entry) in stored {
            let link = Link::from_wire(&entry.value)?;
            match state.as_mut() {
                None => state = Some(TeamState::from_genesis(&link, &fingerprint)?),
                Some(s) => s.apply(&link)?,
            }
            out.push(TeamLogEntry {
                seq: link.seq,
                at: link.created_at,
                author: link.author,
                description: describe_link(&link),
            });
        }
        Ok(out)
    }
}
