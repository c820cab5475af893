//! Teams: creating one, following its chain, and changing its membership.
//!
//! Every change is a link this device proposes and signs with the core's
//! [`TeamState::propose`]; the relay appends it only on the current head, so a proposal that
//! lost a race is rebuilt on the new head and retried. Every link the relay serves is verified
//! from the pinned fingerprint before it changes anything here.

use std::fmt;

use serde::Deserialize;
use sotto_core::device::{Device, DeviceId, DeviceKind, DeviceRecord};
use sotto_core::sorted_map::SortedMap;
use sotto_core::team::attestation::HeadAttestation;
use sotto_core::team::{
    Change, Link, LinkHash, MemberId, Policy, Role, TeamId, TeamKeyring, TeamState,
};
use sotto_core::wire::WireObject;

use super::api::{b64, unb64};
use super::bodies;
use super::events::{Event, TeamChange, Warning};
use super::records::{self, TeamRecord};
use super::{Client, TeamView, parse_hex};
use crate::rng::os_rng;
use crate::store::{EncryptedStore, Expect, Query, Store, Transaction};
use crate::transport::{Method, Transport};
use crate::{Error, Result};

/// Links fetched per request.
const LINK_PAGE: usize = 500;
/// Attempts at appending a link when other members keep moving the head.
const PROPOSE_ATTEMPTS: usize = 4;

/// What identifies a team out of band: its id and the hash of its first link, and optionally
/// the key of its freshness witness. The widget snippet and invitations carry it; a client
/// verifies the whole chain from the fingerprint, so the relay cannot substitute another team.
///
/// A pinned witness key closes what a chain alone cannot (PROTOCOL §6.8): a visitor verifies
/// the chain afresh, so without the pin a relay could serve it a prefix that ends before the
/// owner's SetWitness link. With the pin the client refuses any chain that does not name that
/// witness (`chain_withheld` when it names none).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TeamRef {
    /// The team id.
    pub team: TeamId,
    /// The hash of the team's first link.
    pub fingerprint: LinkHash,
    /// The Ed25519 key of the team's freshness witness, if the reference pins one.
    pub witness: Option<[u8; 32]>,
}

impl TeamRef {
    /// Parses `team_id:fingerprint` or `team_id:fingerprint:witness_key` (32, 64 and 64 hex
    /// digits), the forms [`fmt::Display`] writes.
    pub fn parse(s: &str) -> Result<Self> {
        let mut parts = s.splitn(3, ':');
        let team = parts.next().ok_or(Error::InvalidInput("team reference"))?;
        let fingerprint = parts.next().ok_or(Error::InvalidInput("team reference"))?;
        let witness = parts
            .next()
            .map(|k| parse_hex(k, "witness key"))
            .transpose()?;
        Ok(TeamRef {
            team: TeamId(parse_hex(team, "team id")?),
            fingerprint: LinkHash(parse_hex(fingerprint, "team fingerprint")?),
            witness,
        })
    }

    /// This reference with the team's witness key pinned (what the widget snippet should carry
    /// once an owner set a witness).
    pub fn with_witness(self, key: &sotto_core::crypto::sign::VerifyingKey) -> Self {
        TeamRef {
            witness: Some(*key.as_bytes()),
            ..self
        }
    }
}

impl fmt::Display for TeamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            hex::encode(self.team.0),
            hex::encode(self.fingerprint.0)
        )?;
        match &self.witness {
            Some(key) => write!(f, ":{}", hex::encode(key)),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for TeamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TeamRef({self})")
    }
}

/// A member of a team as the verified chain shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member id.
    pub member: MemberId,
    /// Their role.
    pub role: Role,
    /// Their active devices.
    pub devices: Vec<DeviceId>,
}

#[derive(Deserialize)]
struct StoredLink {
    seq: u64,
    link: String,
}

#[derive(Deserialize)]
struct LinkPage {
    links: Vec<StoredLink>,
    head_seq: u64,
}

#[derive(Deserialize)]
struct AttestationOut {
    attestation: String,
}

#[derive(Deserialize)]
struct DeviceInfo {
    record: String,
}

/// Rebuilds every followed team from its stored links, verifying each chain again from its
/// fingerprint and collecting this device's team keys from the wraps.
pub(crate) async fn load_teams<S: Store>(
    store: &EncryptedStore<S>,
    device: &Device,
) -> Result<SortedMap<TeamId, TeamView>> {
    let mut out = SortedMap::new();
    for (id, entry) in store
        .list(&records::ns(records::TEAM)?, &Query::default())
        .await?
    {
        let team = TeamId(
            id.key()
                .try_into()
                .map_err(|_| Error::Corrupt("malformed team key"))?,
        );
        let record = TeamRecord::decode(&entry.value)?;
        let links = store
            .list(
                &records::ns(records::LINK)?,
                &Query::prefix(team.0.to_vec()),
            )
            .await?;
        // Start from the stored verified state when it is readable and of this team; else
        // verify the chain from the fingerprint.
        let mut view: Option<TeamView> = record.verified.as_ref().and_then(|(state, keyring)| {
            let state = TeamState::import(state).ok()?;
            let keyring = TeamKeyring::import(keyring).ok()?;
            (state.fingerprint() == record.fingerprint).then_some(TeamView {
                state,
                keyring,
                witness_pin: record.witness_pin,
            })
        });
        for (_, link) in links {
            let link = Link::from_wire(&link.value)?;
            if view.as_ref().is_some_and(|v| link.seq <= v.state.seq()) {
                continue;
            }
            match view.as_mut() {
                None => {
                    let state = TeamState::from_genesis(&link, &record.fingerprint)?;
                    let mut keyring = TeamKeyring::new();
                    // A bad wrap was reported when the link first arrived.
                    let _reported = state.absorb_keys(&link, device, &mut keyring);
                    view = Some(TeamView {
                        state,
                        keyring,
                        witness_pin: record.witness_pin,
                    });
                }
                Some(v) => {
                    v.state.apply(&link)?;
                    let _reported = v.state.absorb_keys(&link, device, &mut v.keyring);
                }
            }
        }
        if let Some(v) = view {
            out.insert(team, v);
        }
    }
    Ok(out)
}

fn path(team: &TeamId, rest: &str) -> String {
    format!("/v1/teams/{}{rest}", hex::encode(team.0))
}

impl<S: Store, T: Transport> Client<S, T> {
    /// Creates a team with this device as its owner and `policy`, and attests its head so
    /// visitors can open conversations. Returns what the widget snippet should carry.
    pub async fn create_team(&self, policy: Policy) -> Result<TeamRef> {
        let inner = &self.inner;
        if inner.device.kind() != DeviceKind::Member {
            return Err(Error::NotPermitted("only member devices create teams"));
        }
        let (link, state, keyring) =
            TeamState::create(&mut os_rng()?, &inner.device, &[], policy, self.now())?;
        self.call(
            Method::Post,
            "/v1/teams",
            Some(bodies::encode(&bodies::Link {
                link: &b64(&link.to_wire()),
            })?),
        )
        .await?;
        let team = TeamRef {
            team: state.team(),
            fingerprint: state.fingerprint(),
            witness: None,
        };
        let mut txn = Transaction::new();
        txn.put(
            records::team_id(&team.team)?,
            &TeamRecord {
                fingerprint: team.fingerprint,
                verified: None,
                witness_pin: None,
            }
            .encode(),
            Expect::Absent,
        );
        txn.put(
            records::link_id(&team.team, 0)?,
            &link.to_wire(),
            Expect::Any,
        );
        inner.store.commit(txn).await?;
        let mut teams = inner.teams.lock().await;
        let view = teams.get_or_insert_with(team.team, || TeamView {
            state,
            keyring,
            witness_pin: None,
        });
        self.attest(view, true).await?;
        Ok(team)
    }

    /// Follows a team: fetches its chain, verifies it from the fingerprint, and keeps it (with
    /// the team keys addressed to this device, if it is a member). Visitors do this implicitly
    /// when they open a conversation; an invited member calls it once the admin added it.
    pub async fn join_team(&self, team: TeamRef) -> Result<()> {
        let inner = &self.inner;
        let mut teams = inner.teams.lock().await;
        if let Some(view) = teams.get_mut(&team.team) {
            if view.state.fingerprint() != team.fingerprint {
                return Err(Error::Core(
                    sotto_core::ChainError::FingerprintMismatch.into(),
                ));
            }
            if team.witness.is_some() && team.witness != view.witness_pin {
                // A newer reference pins a witness (or another one): keep the newest given.
                let mut txn = Transaction::new();
                txn.put(
                    records::team_id(&team.team)?,
                    &TeamRecord {
                        fingerprint: team.fingerprint,
                        witness_pin: team.witness,
                        verified: None,
                    }
                    .encode(),
                    Expect::Any,
                );
                inner.store.commit(txn).await?;
                view.witness_pin = team.witness;
            }
            return self.sync_locked(&team.team, view).await;
        }
        let page: LinkPage = self
            .call_json(
                Method::Get,
                &format!("{}?from=0&limit=1", path(&team.team, "/links")),
                None,
            )
            .await?;
        let first = page
            .links
            .first()
            .filter(|l| l.seq == 0)
            .ok_or(Error::BadResponse("the chain has no first link"))?;
        let link = Link::from_wire(&unb64(&first.link)?)?;
        let state = TeamState::from_genesis(&link, &team.fingerprint)?;
        if state.team() != team.team {
            return Err(Error::Core(sotto_core::ChainError::WrongTeam.into()));
        }
        let mut keyring = TeamKeyring::new();
        let refused = state.absorb_keys(&link, &inner.device, &mut keyring);
        self.report_bad_wraps(&team.team, &link, &refused);
        let mut txn = Transaction::new();
        txn.put(
            records::team_id(&team.team)?,
            &TeamRecord {
                fingerprint: team.fingerprint,
                verified: None,
                witness_pin: team.witness,
            }
            .encode(),
            Expect::Any,
        );
        txn.put(
            records::link_id(&team.team, 0)?,
            &link.to_wire(),
            Expect::Any,
        );
        inner.store.commit(txn).await?;
        let view = teams.get_or_insert_with(team.team, || TeamView {
            state,
            keyring,
            witness_pin: team.witness,
        });
        self.sync_locked(&team.team, view).await
    }

    /// The teams this client follows.
    pub async fn teams(&self) -> Vec<TeamRef> {
        self.inner
            .teams
            .lock()
            .await
            .values()
            .map(|v| TeamRef {
                team: v.state.team(),
                fingerprint: v.state.fingerprint(),
                witness: v.witness_pin,
            })
            .collect()
    }

    /// The team's members, from the verified chain.
    pub async fn members(&self, team: &TeamId) -> Result<Vec<MemberInfo>> {
        let teams = self.inner.teams.lock().await;
        let view = teams.get(team).ok_or(Error::UnknownTeam)?;
        Ok(view
            .state
            .members()
            .iter()
            .map(|(id, m)| MemberInfo {
                member: *id,
                role: m.role,
                devices: m.devices.keys().copied().collect(),
            })
            .collect())
    }

    /// This device's member id and role in the team, if it is an active device of a member.
    pub async fn membership(&self, team: &TeamId) -> Result<Option<(MemberId, Role)>> {
        let teams = self.inner.teams.lock().await;
        let view = teams.get(team).ok_or(Error::UnknownTeam)?;
        Ok(view.state.member_of(&self.inner.device.id()))
    }

    /// Adds the registered member device `device` as a new member with `role`. The device must
    /// have registered with the relay (its record is fetched there and checked against the id,
    /// which the invitee gave out of band). Returns the new member's id.
    pub async fn invite_member(
        &self,
        team: &TeamId,
        device: &DeviceId,
        role: Role,
    ) -> Result<MemberId> {
        let record = self.fetch_device(device).await?;
        let member = MemberId::random(&mut os_rng()?);
        self.propose(
            team,
            Change::AddMember {
                member,
                role,
                devices: vec![record],
            },
        )
        .await?;
        Ok(member)
    }

    /// Approves another device of `member` (for example the member's new phone), by its id.
    pub async fn approve_device(
        &self,
        team: &TeamId,
        member: &MemberId,
        device: &DeviceId,
    ) -> Result<()> {
        let record = self.fetch_device(device).await?;
        self.propose(
            team,
            Change::AddDevice {
                member: *member,
                device: record,
            },
        )
        .await
    }

    /// Removes a member; the team key rotates in the same link, so they read nothing new.
    pub async fn remove_member(&self, team: &TeamId, member: &MemberId) -> Result<()> {
        self.propose(team, Change::RemoveMember { member: *member })
            .await
    }

    /// Revokes one device of a member (rotating the team key if it could read).
    pub async fn revoke_device(
        &self,
        team: &TeamId,
        member: &MemberId,
        device: &DeviceId,
    ) -> Result<()> {
        self.propose(
            team,
            Change::RevokeDevice {
                member: *member,
                device: *device,
            },
        )
        .await
    }

    /// Changes a member's role.
    pub async fn change_role(&self, team: &TeamId, member: &MemberId, role: Role) -> Result<()> {
        self.propose(
            team,
            Change::ChangeRole {
                member: *member,
                role,
            },
        )
        .await
    }

    /// Replaces the team's policy.
    pub async fn set_policy(&self, team: &TeamId, policy: Policy) -> Result<()> {
        self.propose(team, Change::SetPolicy { policy }).await
    }

    /// Registers a key of the company's backend that signs visitor identity assertions.
    pub async fn add_integration_key(
        &self,
        team: &TeamId,
        name: &str,
        key: sotto_core::crypto::sign::VerifyingKey,
    ) -> Result<()> {
        self.propose(
            team,
            Change::AddIntegrationKey {
                name: name.to_owned(),
                key,
            },
        )
        .await
    }

    /// Revokes an integration key (for example after it leaked): from the new head on, it
    /// vouches for no visitor and opens no history grant, and it cannot be added again.
    pub async fn revoke_integration_key(
        &self,
        team: &TeamId,
        key: sotto_core::crypto::sign::VerifyingKey,
    ) -> Result<()> {
        self.propose(team, Change::RevokeIntegrationKey { key })
            .await
    }

    /// Names the team's freshness witness (owner only; PROTOCOL §6.8): the service at `url`
    /// (`https`, or `http` on loopback) whose statements are signed with `key`. From then on
    /// clients refuse to send when it vouches for links the relay does not serve them. When it
    /// replaces another witness, the old one is sent the replacing link too, and an error here
    /// means it was not: stop the old witness before relying on the new one.
    pub async fn set_witness(
        &self,
        team: &TeamId,
        url: &str,
        key: sotto_core::crypto::sign::VerifyingKey,
    ) -> Result<()> {
        crate::transport::RelayUrl::parse(url)?;
        let replaced = self
            .team_state(team)
            .await?
            .witness()
            .map(|(old, _)| old.to_owned())
            .filter(|old| old != url);
        self.propose(
            team,
            Change::SetWitness {
                url: url.to_owned(),
                key,
            },
        )
        .await?;
        if let Some(old) = replaced {
            let state = self.team_state(team).await?;
            self.update_witness_at(&old, &state).await?;
        }
        Ok(())
    }

    /// Rotates the team key.
    pub async fn rotate_team_key(&self, team: &TeamId) -> Result<()> {
        self.propose(team, Change::RotateKey).await
    }

    /// Deletes the team for everyone (owner only): the relay deletes its conversations, every
    /// member wipes its keys, and this client forgets the team and its conversations.
    pub async fn delete_team(&self, team: &TeamId) -> Result<()> {
        self.propose(team, Change::DeleteTeam).await?;
        self.forget_team(team).await
    }

    /// Fetches and verifies the links appended since this client's head.
    pub async fn sync_team(&self, team: &TeamId) -> Result<()> {
        let mut teams = self.inner.teams.lock().await;
        let view = teams.get_mut(team).ok_or(Error::UnknownTeam)?;
        self.sync_locked(team, view).await
    }

    /// Applies a pushed link if it is the next one; false if it is not (then sync instead).
    pub(crate) async fn apply_pushed_link(
        &self,
        team: &TeamId,
        seq: u64,
        wire: &[u8],
    ) -> Result<bool> {
        let mut teams = self.inner.teams.lock().await;
        let view = teams.get_mut(team).ok_or(Error::UnknownTeam)?;
        if view.state.is_deleted() || seq != view.state.seq().saturating_add(1) {
            return Ok(seq <= view.state.seq());
        }
        let link = Link::from_wire(wire)?;
        if link.seq != seq {
            return Err(Error::BadResponse("pushed link out of sequence"));
        }
        self.accept_link(team, view, &link).await?;
        if view.state.is_deleted() {
            self.forget_team_data(team).await?;
        } else {
            self.save_verified(team, view).await?;
        }
        Ok(true)
    }

    /// A copy of the verified state of a team.
    pub(crate) async fn team_state(&self, team: &TeamId) -> Result<TeamState> {
        let teams = self.inner.teams.lock().await;
        Ok(teams.get(team).ok_or(Error::UnknownTeam)?.state.clone())
    }

    async fn fetch_device(&self, device: &DeviceId) -> Result<DeviceRecord> {
        let info: DeviceInfo = self
            .call_json(
                Method::Get,
                &format!("/v1/devices/{}", hex::encode(device.0)),
                None,
            )
            .await?;
        let record = DeviceRecord::from_wire(&unb64(&info.record)?)?;
        // The relay could answer with another device: only the id given out of band counts.
        if record.id() != *device {
            return Err(Error::BadResponse("the relay returned another device"));
        }
        if record.kind() != DeviceKind::Member {
            return Err(Error::NotPermitted("only member devices join a team"));
        }
        Ok(record)
    }

    /// Proposes `change`, appends it on the current head (rebuilding it when another member
    /// moved the head first), applies it here and attests the new head.
    async fn propose(&self, team: &TeamId, change: Change) -> Result<()> {
        let inner = &self.inner;
        let mut teams = inner.teams.lock().await;
        let view = teams.get_mut(team).ok_or(Error::UnknownTeam)?;
        for _ in 0..PROPOSE_ATTEMPTS {
            self.sync_locked(team, view).await?;
            let mut keyring = view.keyring.clone();
            let link = view.state.propose(
                &mut os_rng()?,
                &inner.device,
                &mut keyring,
                change.clone(),
                false,
                self.now(),
            )?;
            let posted = self
                .call(
                    Method::Post,
                    &path(team, "/links"),
                    Some(bodies::encode(&bodies::Link {
                        link: &b64(&link.to_wire()),
                    })?),
                )
                .await;
            match posted {
                Ok(_) => {
                    view.keyring = keyring;
                    self.accept_link(team, view, &link).await?;
                    if !view.state.is_deleted() {
                        self.save_verified(team, view).await?;
                    }
                    if !view.state.is_deleted() {
                        self.attest(view, true).await?;
                        // The witness bounds how long the relay can hide this link from
                        // others only once it holds it. Best effort: the link is appended
                        // already, and every later check of this or another member's client
                        // pushes what the witness lacks.
                        let _ = self.update_witness(&view.state).await;
                    }
                    return Ok(());
                }
                Err(e) if e.relay_code() == Some("head_moved") => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Relay {
            status: 409,
            code: "head_moved".into(),
        })
    }

    /// Fetches, verifies and applies every link after the view's head.
    pub(crate) async fn sync_locked(&self, team: &TeamId, view: &mut TeamView) -> Result<()> {
        if view.state.is_deleted() {
            return Ok(());
        }
        let start = view.state.seq();
        loop {
            let from = view.state.seq().saturating_add(1);
            let page: LinkPage = self
                .call_json(
                    Method::Get,
                    &format!("{}?from={from}&limit={LINK_PAGE}", path(team, "/links")),
                    None,
                )
                .await?;
            if page.head_seq < view.state.seq() {
                self.inner
                    .events
                    .emit(Event::Warning(Warning::Rollback { team: *team }));
            }
            let count = page.links.len();
            for stored in page.links {
                let link = Link::from_wire(&unb64(&stored.link)?)?;
                if stored.seq != link.seq || link.seq != view.state.seq().saturating_add(1) {
                    return Err(Error::BadResponse("links out of sequence"));
                }
                if link.previous != view.state.head() {
                    self.inner
                        .events
                        .emit(Event::Warning(Warning::Fork { team: *team }));
                }
                self.accept_link(team, view, &link).await?;
                if view.state.is_deleted() {
                    self.forget_team_data(team).await?;
                    return Ok(());
                }
            }
            if count < LINK_PAGE {
                break;
            }
        }
        if view.state.seq() != start {
            self.save_verified(team, view).await?;
        }
        self.attest(view, false).await
    }

    /// Stores the verified state and keyring at the view's head (PROTOCOL §6.9), so the next
    /// start applies only the links after it.
    async fn save_verified(&self, team: &TeamId, view: &TeamView) -> Result<()> {
        let record = TeamRecord {
            fingerprint: view.state.fingerprint(),
            witness_pin: view.witness_pin,
            verified: Some((view.state.export(), view.keyring.export())),
        };
        let mut txn = Transaction::new();
        txn.put(records::team_id(team)?, &record.encode(), Expect::Any);
        self.inner.store.commit(txn).await?;
        Ok(())
    }

    /// Verifies and applies one link, collects its keys, stores it, and tells the application.
    async fn accept_link(&self, team: &TeamId, view: &mut TeamView, link: &Link) -> Result<()> {
        let me = self.inner.device.id();
        let was_member = view.state.member_of(&me).is_some();
        let mut next = view.state.clone();
        next.apply(link)?;
        let refused = next.absorb_keys(link, &self.inner.device, &mut view.keyring);
        self.report_bad_wraps(team, link, &refused);
        let mut txn = Transaction::new();
        txn.put(
            records::link_id(team, link.seq)?,
            &link.to_wire(),
            Expect::Any,
        );
        self.inner.store.commit(txn).await?;
        view.state = next;
        let events = &self.inner.events;
        events.emit(Event::TeamChanged {
            team: *team,
            seq: link.seq,
            change: TeamChange::of(&link.change),
        });
        if was_member && view.state.member_of(&me).is_none() {
            self.inner.secrets_forget_team(team);
            events.emit(Event::RemovedFromTeam { team: *team });
        }
        Ok(())
    }

    /// Raises a warning naming the author of a link whose wraps to this device were bad.
    fn report_bad_wraps(&self, team: &TeamId, link: &Link, refused: &[u32]) {
        if !refused.is_empty() {
            self.inner.events.emit(Event::Warning(Warning::BadKeyWrap {
                team: *team,
                author: link.author,
                seq: link.seq,
            }));
        }
    }

    /// Renews this device's head attestations that are due (see [`Client::run`]).
    pub(crate) async fn renew_attestations(&self) -> Result<()> {
        let teams = self.inner.teams.lock().await;
        for view in teams.values() {
            match self.attest(view, false).await {
                Err(e) if e.is_transient() => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Puts a fresh head attestation if this device may attest and its last one is for an
    /// older head or half-way to the freshness limit (`force` for a head it just appended).
    async fn attest(&self, view: &TeamView, force: bool) -> Result<()> {
        let state = &view.state;
        let readable = state
            .member_of(&self.inner.device.id())
            .is_some_and(|(_, role)| role.can_read());
        if !readable || state.is_deleted() {
            return Ok(());
        }
        let now = self.now();
        let half = u64::from(state.policy().freshness_limit_secs / 2);
        let recent = self
            .inner
            .attested
            .lock()
            .ok()
            .and_then(|a| a.get(&state.team()).copied())
            .is_some_and(|(seq, at)| seq == state.seq() && now.saturating_sub(at) < half);
        if recent && !force {
            return Ok(());
        }
        let attestation = HeadAttestation::sign(state, &self.inner.device, now);
        let put = self
            .call(
                Method::Put,
                &path(&state.team(), "/attestation"),
                Some(bodies::encode(&bodies::Attestation {
                    attestation: &b64(&attestation.to_wire()),
                })?),
            )
            .await;
        match put {
            Ok(_) => {
                if let Ok(mut a) = self.inner.attested.lock() {
                    a.insert(state.team(), (state.seq(), now));
                }
                Ok(())
            }
            // Someone appended meanwhile; the next sync attests the new head.
            Err(e) if e.relay_code() == Some("head_moved") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Checks that the relay serves a fresh attestation of the head this client verified, as a
    /// visitor must before sealing to the team (syncing the chain once if the head moved).
    ///
    /// When the chain names a freshness witness, its statement replaces the attestation: the
    /// relay cannot get the witness to vouch for an old head by hiding links from a member.
    pub(crate) async fn check_fresh_head(&self, team: &TeamId) -> Result<TeamState> {
        self.sync_team(team).await?;
        if self.check_witness(team).await? {
            return self.team_state(team).await;
        }
        let mut last = None;
        for _ in 0..2 {
            self.sync_team(team).await?;
            let state = self.team_state(team).await?;
            let out: AttestationOut = self
                .call_json(Method::Get, &path(team, "/attestation"), None)
                .await?;
            let attestation = HeadAttestation::from_wire(&unb64(&out.attestation)?)?;
            let now = self.now();
            match attestation.check_fresh(&state, now) {
                Ok(()) => {
                    if let Ok(mut checked) = self.inner.head_checked.lock() {
                        checked.insert(*team, now);
                    }
                    return Ok(state);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or(Error::BadResponse("attestation"), Error::Core))
    }

    /// Whether a visitor must see a fresh head attestation (or witness statement) again before
    /// it seals anything to the team, or a member must check the witness again before it
    /// sends: after half the policy's freshness limit since the last check. So a relay that
    /// hides a removal (and the rotation with it) can keep a client writing to the old key for
    /// at most one and a half times the limit (PROTOCOL §6.8 for the exact bound); sending
    /// fails rather than skip the check.
    pub(crate) async fn head_check_due(&self, team: &TeamId) -> Result<bool> {
        let state = self.team_state(team).await?;
        let half = u64::from(state.policy().freshness_limit_secs / 2);
        let now = self.now();
        Ok(self
            .inner
            .head_checked
            .lock()
            .ok()
            .and_then(|c| c.get(team).copied())
            .is_none_or(|at| now.saturating_sub(at) >= half))
    }

    /// Whether the team's verified chain names a freshness witness (without copying the state:
    /// members ask on every send).
    pub(crate) async fn has_witness(&self, team: &TeamId) -> bool {
        let teams = self.inner.teams.lock().await;
        teams
            .get(team)
            .is_some_and(|v| v.state.witness().is_some() || v.witness_pin.is_some())
    }

    /// The witness key the team reference pinned, if any.
    pub(crate) async fn witness_pin(&self, team: &TeamId) -> Option<[u8; 32]> {
        let teams = self.inner.teams.lock().await;
        teams.get(team).and_then(|v| v.witness_pin)
    }

    /// Forgets a team: its conversations, chain and keys.
    async fn forget_team(&self, team: &TeamId) -> Result<()> {
        self.forget_team_data(team).await?;
        self.inner.teams.lock().await.remove(team);
        Ok(())
    }

    /// Deletes a team's local records and conversations (the in-memory view is the caller's).
    async fn forget_team_data(&self, team: &TeamId) -> Result<()> {
        for (conversation, record) in self.conversation_records().await? {
            if record.team == *team {
                self.forget_conversation(&conversation).await?;
            }
        }
        let store = &self.inner.store;
        let mut txn = Transaction::new();
        txn.delete(records::team_id(team)?, Expect::Any);
        for (id, _) in store
            .list(
                &records::ns(records::LINK)?,
                &Query::prefix(team.0.to_vec()),
            )
            .await?
        {
            txn.delete(id, Expect::Any);
        }
        store.commit(txn).await?;
        self.inner.secrets_forget_team(team);
        Ok(())
    }
}

impl<S, T> super::Inner<S, T> {
    /// Drops cached epoch secrets of a team's conversations (all of them: the cache is small
    /// and refilled from the store).
    pub(crate) fn secrets_forget_team(&self, _team: &TeamId) {
        if let Ok(mut s) = self.secrets.lock() {
            s.clear();
        }
    }
}
