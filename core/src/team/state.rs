//! The verified state of a team, and the rules every client enforces when it applies a link.

use super::generations::GenerationSet;
use super::ids::{LinkHash, MemberId, TeamId};
use super::keys::{self, TeamKeyring};
use super::link::{
    Change, KeyWrap, Link, MAX_DEVICES_PER_LINK, MAX_NAME_LEN, MAX_WITNESS_URL_LEN, NewGeneration,
};
use super::policy::Policy;
use super::role::Role;
use super::rules;
use crate::Result;
use crate::crypto::agreement::AgreementPublicKey;
use crate::crypto::secret::SecretBytes;
use crate::crypto::sign::{Signature, VerifyingKey};
use crate::device::{Device, DeviceId, DeviceKind, DeviceRecord};
use crate::error::ChainError;
use crate::sorted_map::SortedMap;

/// A member as the chain defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's role.
    pub role: Role,
    /// The member's active devices.
    pub devices: SortedMap<DeviceId, DeviceRecord>,
}

/// The state of a team after verifying its chain up to `head`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamState {
    pub(super) team: TeamId,
    pub(super) fingerprint: LinkHash,
    pub(super) head: LinkHash,
    pub(super) seq: u64,
    pub(super) members: SortedMap<MemberId, Member>,
    pub(super) device_member: SortedMap<DeviceId, MemberId>,
    /// Which generations each device has been sent in the chain.
    pub(super) held: SortedMap<DeviceId, GenerationSet>,
    pub(super) generations: Vec<AgreementPublicKey>,
    pub(super) policy: Policy,
    pub(super) integration_keys: Vec<(String, VerifyingKey)>,
    /// Integration keys revoked by the chain: refused for assertions, never added again.
    pub(super) revoked_integration_keys: Vec<VerifyingKey>,
    /// The freshness witness the chain names (PROTOCOL §6.8): its URL and statement key.
    pub(super) witness: Option<(String, VerifyingKey)>,
    pub(super) deleted: bool,
    /// The hash of every verified link, by sequence number, to place heads named by peers.
    pub(super) link_hashes: Vec<LinkHash>,
    /// Each verified link's author-given creation time, by sequence number.
    pub(super) link_times: Vec<u64>,
    /// The current key generation after each link, by sequence number, to check history.
    pub(super) generation_by_seq: Vec<u32>,
    /// Devices since revoked or removed, to verify what they wrote while active.
    pub(super) former_devices: SortedMap<DeviceId, FormerDevice>,
}

/// A device that was revoked or removed, as the chain left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormerDevice {
    /// Its record.
    pub record: DeviceRecord,
    /// Its member's role when it went.
    pub role: Role,
    /// The sequence number of the link that revoked or removed it: it was active at every
    /// earlier head.
    pub removed_at: u64,
}

/// Where a chain head named by a peer (in an epoch record) stands relative to ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadRelation {
    /// It is our head.
    Current,
    /// It is an earlier link of our chain: the peer had not seen the newest links (a rollback
    /// if the relay withheld them).
    Behind,
    /// It is beyond our head: we must fetch and verify the newer links first.
    Ahead,
    /// Our chain has a different link at that position: someone was shown another history.
    Fork,
}

/// What applying a change did, beyond the membership itself.
struct ChangeEffect {
    /// The change needs a new key generation in the same link: someone lost read access
    /// (removal, revocation of a keyed device, downgrade to no read), someone gained read access
    /// without history access (a viewer or bot added, a billing member made a viewer: they
    /// must not open what was sealed before they arrived), or it is a RotateKey.
    rotation_required: bool,
}

/// The part of the state that a link's change touches, saved before applying a link so that
/// a refused link leaves the state as it was. The per-link histories (hashes, times,
/// generations) are only appended after every check passed, so they need no copy: applying a
/// link costs the size of the team, not the length of the chain.
struct Roster {
    members: SortedMap<MemberId, Member>,
    device_member: SortedMap<DeviceId, MemberId>,
    held: SortedMap<DeviceId, GenerationSet>,
    generations: usize,
    policy: Policy,
    integration_keys: Vec<(String, VerifyingKey)>,
    revoked_integration_keys: Vec<VerifyingKey>,
    witness: Option<(String, VerifyingKey)>,
    deleted: bool,
    former_devices: SortedMap<DeviceId, FormerDevice>,
}

impl TeamState {
    /// Verifies the first link against the fingerprint the client was given out of band (the
    /// widget snippet, an invite) and returns the team's initial state.
    pub fn from_genesis(link: &Link, fingerprint: &LinkHash) -> Result<Self> {
        if link.hash() != *fingerprint {
            return Err(ChainError::FingerprintMismatch.into());
        }
        if link.seq != 0 || link.previous != LinkHash([0; 32]) {
            return Err(ChainError::BadSequence.into());
        }
        let Change::CreateTeam {
            owner,
            devices,
            policy,
        } = &link.change
        else {
            return Err(ChainError::BadSequence.into());
        };
        let mut state = TeamState {
            team: link.team,
            fingerprint: *fingerprint,
            head: LinkHash([0; 32]),
            seq: 0,
            members: SortedMap::new(),
            device_member: SortedMap::new(),
            held: SortedMap::new(),
            generations: Vec::new(),
            policy: policy.clone(),
            integration_keys: Vec::new(),
            revoked_integration_keys: Vec::new(),
            witness: None,
            deleted: false,
            link_hashes: vec![*fingerprint],
            link_times: vec![link.created_at],
            generation_by_seq: vec![0],
            former_devices: SortedMap::new(),
        };
        state.insert_member(*owner, Role::Owner, devices)?;
        let author = devices
            .iter()
            .find(|d| d.id() == link.author)
            .ok_or(ChainError::UnknownAuthor)?;
        link.verify_signature(author.identity())?;
        match &link.rotation {
            Some(g) if g.generation == 0 => state.generations.push(g.public_key),
            _ => return Err(ChainError::BadRotation.into()),
        }
        state.check_wraps(&link.wraps)?;
        state.head = *fingerprint;
        Ok(state)
    }

    /// Verifies a whole chain from its first link.
    pub fn verify_chain(links: &[Link], fingerprint: &LinkHash) -> Result<Self> {
        let (first, rest) = links.split_first().ok_or(ChainError::BadSequence)?;
        let mut state = Self::from_genesis(first, fingerprint)?;
        for link in rest {
            state.apply(link)?;
        }
        Ok(state)
    }

    /// Verifies `link` as the next link and applies it. On error the state is unchanged.
    pub fn apply(&mut self, link: &Link) -> Result<()> {
        if self.deleted {
            return Err(ChainError::TeamDeleted.into());
        }
        if link.team != self.team {
            return Err(ChainError::WrongTeam.into());
        }
        if Some(link.seq) != self.seq.checked_add(1) {
            return Err(ChainError::BadSequence.into());
        }
        if link.previous != self.head {
            return Err(ChainError::BadPrevious.into());
        }
        let (author_member, author_role, author_key) = self.author(&link.author)?;
        link.verify_signature(&author_key)?;

        let saved = self.save_roster();
        let applied = self.apply_verified(author_member, author_role, link);
        if applied.is_err() {
            self.restore_roster(saved);
        }
        applied
    }

    /// Applies a link whose place and signature are checked. May leave the roster half changed
    /// on error (the caller restores it), but appends to the per-link histories only once every
    /// rule passed.
    fn apply_verified(&mut self, author: MemberId, author_role: Role, link: &Link) -> Result<()> {
        let effect = self.apply_change(author, author_role, &link.change)?;
        self.apply_rotation(link.rotation.as_ref(), author_role, &effect)?;
        self.check_wraps(&link.wraps)?;
        let current = self.current_generation().ok_or(ChainError::BadRotation)?;
        self.seq = link.seq;
        self.head = link.hash();
        self.link_hashes.push(self.head);
        self.link_times.push(link.created_at);
        self.generation_by_seq.push(current);
        Ok(())
    }

    fn save_roster(&self) -> Roster {
        Roster {
            members: self.members.clone(),
            device_member: self.device_member.clone(),
            held: self.held.clone(),
            generations: self.generations.len(),
            policy: self.policy.clone(),
            integration_keys: self.integration_keys.clone(),
            revoked_integration_keys: self.revoked_integration_keys.clone(),
            witness: self.witness.clone(),
            deleted: self.deleted,
            former_devices: self.former_devices.clone(),
        }
    }

    fn restore_roster(&mut self, saved: Roster) {
        self.members = saved.members;
        self.device_member = saved.device_member;
        self.held = saved.held;
        self.generations.truncate(saved.generations);
        self.policy = saved.policy;
        self.integration_keys = saved.integration_keys;
        self.revoked_integration_keys = saved.revoked_integration_keys;
        self.witness = saved.witness;
        self.deleted = saved.deleted;
        self.former_devices = saved.former_devices;
    }

    fn author(&self, device: &DeviceId) -> Result<(MemberId, Role, VerifyingKey)> {
        let member_id = self
            .device_member
            .get(device)
            .ok_or(ChainError::UnknownAuthor)?;
        let member = self
            .members
            .get(member_id)
            .ok_or(ChainError::UnknownAuthor)?;
        let record = member
            .devices
            .get(device)
            .ok_or(ChainError::UnknownAuthor)?;
        Ok((*member_id, member.role, *record.identity()))
    }

    fn insert_member(&mut self, id: MemberId, role: Role, devices: &[DeviceRecord]) -> Result<()> {
        if self.members.contains_key(&id)
            || devices.is_empty()
            || devices.len() > MAX_DEVICES_PER_LINK
        {
            return Err(ChainError::MembershipConflict.into());
        }
        self.members.insert(
            id,
            Member {
                role,
                devices: SortedMap::new(),
            },
        );
        for d in devices {
            self.insert_device(id, d)?;
        }
        Ok(())
    }

    fn insert_device(&mut self, member: MemberId, device: &DeviceRecord) -> Result<()> {
        // Visitors are never team devices; recovery devices may only belong to owners.
        let kind_ok = match device.kind() {
            DeviceKind::Member => true,
            DeviceKind::Recovery => self.members.get(&member).map(|m| m.role) == Some(Role::Owner),
            DeviceKind::Visitor => false,
        };
        if !kind_ok || self.device_member.contains_key(&device.id()) {
            return Err(ChainError::MembershipConflict.into());
        }
        let m = self
            .members
            .get_mut(&member)
            .ok_or(ChainError::MembershipConflict)?;
        m.devices.insert(device.id(), device.clone());
        self.device_member.insert(device.id(), member);
        Ok(())
    }

    fn remove_device(&mut self, device: &DeviceId) -> bool {
        if let Some(member) = self.device_member.remove(device)
            && let Some(m) = self.members.get_mut(&member)
            && let Some(record) = m.devices.remove(device)
        {
            let former = FormerDevice {
                record,
                role: m.role,
                // The link being applied comes right after the current head.
                removed_at: self.seq.saturating_add(1),
            };
            self.former_devices.insert(*device, former);
        }
        self.held.remove(device).is_some_and(|g| !g.is_empty())
    }

    /// The current role of the member a change names, for the permission rules.
    fn target_role(&self, change: &Change) -> Option<Role> {
        match change {
            Change::RemoveMember { member }
            | Change::ChangeRole { member, .. }
            | Change::AddDevice { member, .. }
            | Change::RevokeDevice { member, .. } => self.members.get(member).map(|m| m.role),
            _ => None,
        }
    }

    /// Whether a member of `role` reads the current generation but not earlier ones.
    fn reads_without_history(&self, role: Role) -> bool {
        role.can_read() && !role.can_read_history(&self.policy)
    }

    fn apply_change(
        &mut self,
        author: MemberId,
        author_role: Role,
        change: &Change,
    ) -> Result<ChangeEffect> {
        if !rules::permitted(&author, author_role, change, self.target_role(change)) {
            return Err(ChainError::NotPermitted.into());
        }
        let mut read_lost = false;
        let mut reader_without_history = false;
        match change {
            Change::CreateTeam { .. } => return Err(ChainError::BadSequence.into()),
            Change::AddMember {
                member,
                role,
                devices,
            } => {
                reader_without_history = self.reads_without_history(*role);
                self.insert_member(*member, *role, devices)?;
            }
            Change::RemoveMember { member } => {
                let target = self
                    .members
                    .get(member)
                    .ok_or(ChainError::MembershipConflict)?;
                let devices: Vec<DeviceId> = target.devices.keys().copied().collect();
                for d in &devices {
                    read_lost |= self.remove_device(d);
                }
                self.members.remove(member);
            }
            Change::ChangeRole { member, role } => {
                let gains_read_without_history = self.reads_without_history(*role);
                let target = self
                    .members
                    .get_mut(member)
                    .ok_or(ChainError::MembershipConflict)?;
                read_lost = target.role.can_read() && !role.can_read();
                reader_without_history = !target.role.can_read() && gains_read_without_history;
                target.role = *role;
                if *role != Role::Owner {
                    // Recovery devices exist only for owners.
                    let recovery: Vec<DeviceId> = target
                        .devices
                        .values()
                        .filter(|d| d.kind() == DeviceKind::Recovery)
                        .map(DeviceRecord::id)
                        .collect();
                    for d in &recovery {
                        read_lost |= self.remove_device(d);
                    }
                }
            }
            Change::AddDevice { member, device } => {
                // A new device of an existing reader gets only what its member already holds,
                // so it needs no rotation.
                if !self.members.contains_key(member) {
                    return Err(ChainError::MembershipConflict.into());
                }
                self.insert_device(*member, device)?;
            }
            Change::RevokeDevice { member, device } => {
                if self.device_member.get(device) != Some(member) {
                    return Err(ChainError::MembershipConflict.into());
                }
                read_lost |= self.remove_device(device);
            }
            Change::RotateKey => {}
            Change::SetPolicy { policy } => {
                if !policy.is_valid() {
                    return Err(crate::error::DecodeError::InvalidValue.into());
                }
                // A longer freshness limit lets the relay replay old attestations and witness
                // statements for longer: only an owner may weaken the bound the owners chose.
                let weakens = policy.freshness_limit_secs > self.policy.freshness_limit_secs;
                if weakens && author_role != Role::Owner {
                    return Err(ChainError::NotPermitted.into());
                }
                self.policy = policy.clone();
            }
            Change::AddIntegrationKey { name, key } => {
                if name.len() > MAX_NAME_LEN {
                    return Err(ChainError::NotPermitted.into());
                }
                if self.revoked_integration_keys.contains(key) {
                    return Err(ChainError::RevokedKey.into());
                }
                if self.integration_keys.iter().any(|(_, k)| k == key) {
                    return Err(ChainError::MembershipConflict.into());
                }
                self.integration_keys.push((name.clone(), *key));
            }
            Change::RevokeIntegrationKey { key } => {
                let at = self
                    .integration_keys
                    .iter()
                    .position(|(_, k)| k == key)
                    .ok_or(ChainError::MembershipConflict)?;
                self.integration_keys.remove(at);
                self.revoked_integration_keys.push(*key);
            }
            Change::SetWitness { url, key } => {
                if url.is_empty() || url.len() > MAX_WITNESS_URL_LEN {
                    return Err(ChainError::NotPermitted.into());
                }
                self.witness = Some((url.clone(), *key));
            }
            Change::DeleteTeam => self.deleted = true,
        }
        if !self.deleted && !self.has_owner_device() {
            return Err(ChainError::LastOwner.into());
        }
        Ok(ChangeEffect {
            rotation_required: read_lost || reader_without_history || *change == Change::RotateKey,
        })
    }

    fn has_owner_device(&self) -> bool {
        self.members.values().any(|m| {
            m.role == Role::Owner && m.devices.values().any(|d| d.kind() == DeviceKind::Member)
        })
    }

    fn apply_rotation(
        &mut self,
        rotation: Option<&NewGeneration>,
        author_role: Role,
        effect: &ChangeEffect,
    ) -> Result<()> {
        match rotation {
            Some(g) => {
                if !effect.rotation_required && !rules::may_rotate_unrequired(author_role) {
                    return Err(ChainError::NotPermitted.into());
                }
                if self.deleted || u64::from(g.generation) != self.generations.len() as u64 {
                    return Err(ChainError::BadRotation.into());
                }
                self.generations.push(g.public_key);
                Ok(())
            }
            None if effect.rotation_required => Err(ChainError::MissingRotation.into()),
            None => Ok(()),
        }
    }

    /// The (device, generation) pairs the chain owes after the current state: every
    /// read-permitted member device holds the current generation, and history-permitted ones
    /// every generation. Recovery devices are offline and hold none.
    fn required_wraps(&self) -> Vec<(DeviceId, u32)> {
        let mut required = Vec::new();
        let Some(current) = self.current_generation() else {
            return required;
        };
        if self.deleted {
            return required;
        }
        for m in self.members.values().filter(|m| m.role.can_read()) {
            let first = if m.role.can_read_history(&self.policy) {
                0
            } else {
                current
            };
            for d in m
                .devices
                .values()
                .filter(|d| d.kind() == DeviceKind::Member)
            {
                let held = self.held.get(&d.id());
                // Wraps only ever name generations up to the current one, so a history reader
                // holding current + 1 generations holds them all; this keeps verification linear
                // in the chain length instead of quadratic.
                let full = first == 0 && held.is_some_and(|h| h.len() == u64::from(current) + 1);
                if full {
                    continue;
                }
                for g in first..=current {
                    if !held.is_some_and(|h| h.contains(g)) {
                        required.push((d.id(), g));
                    }
                }
            }
        }
        // Members are visited in member order; the comparison wants device order.
        required.sort_unstable();
        required
    }

    /// A link's wraps must be exactly the required ones: no missing wrap, no duplicate, and no
    /// wrap to anyone else (a device without read access, a generation before a device's access
    /// began for a role without history access, a device not in the team).
    fn check_wraps(&mut self, wraps: &[KeyWrap]) -> Result<()> {
        let mut given: Vec<(DeviceId, u32)> =
            wraps.iter().map(|w| (w.device, w.generation)).collect();
        given.sort_unstable();
        // Required pairs are distinct, so equality also refuses a duplicated wrap.
        if given != self.required_wraps() {
            return Err(ChainError::WrapMismatch.into());
        }
        for (d, g) in given {
            self.held
                .get_or_insert_with(d, GenerationSet::default)
                .insert(g);
        }
        Ok(())
    }

    /// Builds, signs and returns the next link for `change` by `author`. A rotation is added
    /// when the change requires one or `rotate` is set; its seed goes into `keyring`. Wraps are
    /// computed from the rules, sealing seeds the keyring holds. The caller then applies the link
    /// with [`TeamState::apply`] like any other.
    pub fn propose(
        &self,
        rng: &mut impl rand_core::CryptoRng,
        author: &Device,
        keyring: &mut TeamKeyring,
        change: Change,
        rotate: bool,
        now: u64,
    ) -> Result<Link> {
        let (author_member, author_role, _) = self.author(&author.id())?;
        let mut next = self.clone();
        let effect = next.apply_change(author_member, author_role, &change)?;
        if rotate && !effect.rotation_required && !rules::may_rotate_unrequired(author_role) {
            return Err(ChainError::NotPermitted.into());
        }
        let rotate = rotate || effect.rotation_required;
        let rotation = if rotate {
            let seed = SecretBytes::<32>::random(rng);
            let generation =
                u32::try_from(next.generations.len()).map_err(|_| ChainError::BadRotation)?;
            let g = NewGeneration {
                generation,
                public_key: keys::generation_key(&seed).public_key(),
            };
            keyring.insert(generation, seed);
            next.generations.push(g.public_key);
            Some(g)
        } else {
            None
        };
        let wraps = next.seal_required(rng, keyring)?;
        let mut link = Link {
            team: self.team,
            seq: self.seq.checked_add(1).ok_or(ChainError::BadSequence)?,
            previous: self.head,
            author: author.id(),
            created_at: now,
            change,
            rotation,
            wraps,
            signature: Signature::from_bytes([0; 64]),
        };
        link.sign(author);
        Ok(link)
    }

    fn seal_required(
        &self,
        rng: &mut impl rand_core::CryptoRng,
        keyring: &TeamKeyring,
    ) -> Result<Vec<KeyWrap>> {
        self.required_wraps()
            .into_iter()
            .map(|(device, generation)| {
                let seed = keyring.seed(generation).ok_or(ChainError::NotPermitted)?;
                let record = self.device(&device).ok_or(ChainError::MembershipConflict)?;
                keys::wrap(rng, &self.team, generation, seed, record)
            })
            .collect()
    }

    /// Creates a team: the owner's first link, its state and the owner's keyring.
    pub fn create(
        rng: &mut impl rand_core::CryptoRng,
        owner_device: &Device,
        other_owner_devices: &[DeviceRecord],
        policy: Policy,
        now: u64,
    ) -> Result<(Link, TeamState, TeamKeyring)> {
        let team = TeamId::random(rng);
        let owner = MemberId::random(rng);
        let mut devices = vec![owner_device.record()];
        devices.extend_from_slice(other_owner_devices);
        let seed = SecretBytes::<32>::random(rng);
        let public_key = keys::generation_key(&seed).public_key();
        let mut keyring = TeamKeyring::new();
        keyring.insert(0, seed);

        let mut draft = TeamState {
            team,
            fingerprint: LinkHash([0; 32]),
            head: LinkHash([0; 32]),
            seq: 0,
            members: SortedMap::new(),
            device_member: SortedMap::new(),
            held: SortedMap::new(),
            generations: vec![public_key],
            policy: policy.clone(),
            integration_keys: Vec::new(),
            revoked_integration_keys: Vec::new(),
            witness: None,
            deleted: false,
            link_hashes: Vec::new(),
            link_times: Vec::new(),
            generation_by_seq: Vec::new(),
            former_devices: SortedMap::new(),
        };
        draft.insert_member(owner, Role::Owner, &devices)?;
        let wraps = draft.seal_required(rng, &keyring)?;
        let mut link = Link {
            team,
            seq: 0,
            previous: LinkHash([0; 32]),
            author: owner_device.id(),
            created_at: now,
            change: Change::CreateTeam {
                owner,
                devices,
                policy,
            },
            rotation: Some(NewGeneration {
                generation: 0,
                public_key,
            }),
            wraps,
            signature: Signature::from_bytes([0; 64]),
        };
        link.sign(owner_device);
        let state = TeamState::from_genesis(&link, &link.hash())?;
        Ok((link, state, keyring))
    }

    /// Opens the wraps in `link` addressed to `device` into `keyring`. Call after
    /// [`TeamState::apply`] (or [`TeamState::from_genesis`]) accepted the link. If the link
    /// deleted the team or removed the device, the keyring is wiped instead.
    ///
    /// Returns the generations whose wrap to this device did not open to the chain's key. No
    /// one but the recipient can check a wrap, so a bad one (a faulty or malicious author) does
    /// not make the link invalid: the device keeps everything else, goes on verifying the chain,
    /// and reports the author so its managers can remove it and rotate.
    #[must_use = "a refused wrap names an author to report"]
    pub fn absorb_keys(&self, link: &Link, device: &Device, keyring: &mut TeamKeyring) -> Vec<u32> {
        if self.deleted || !self.device_member.contains_key(&device.id()) {
            keyring.wipe();
            return Vec::new();
        }
        link.wraps
            .iter()
            .filter(|w| w.device == device.id())
            .filter(|wrap| {
                !self
                    .generations
                    .get(wrap.generation as usize)
                    .is_some_and(|expected| {
                        keyring
                            .open_wrap(&self.team, device, wrap, expected)
                            .is_ok()
                    })
            })
            .map(|wrap| wrap.generation)
            .collect()
    }

    /// The team id.
    pub fn team(&self) -> TeamId {
        self.team
    }

    /// The hash of the first link.
    pub fn fingerprint(&self) -> LinkHash {
        self.fingerprint
    }

    /// The hash of the newest verified link.
    pub fn head(&self) -> LinkHash {
        self.head
    }

    /// The sequence number of the newest verified link.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Places a head named by a peer relative to this verified chain.
    pub fn head_relation(&self, seq: u64, hash: &LinkHash) -> HeadRelation {
        let Ok(index) = usize::try_from(seq) else {
            return HeadRelation::Ahead;
        };
        match self.link_hashes.get(index) {
            None => HeadRelation::Ahead,
            Some(h) if h != hash => HeadRelation::Fork,
            Some(_) if seq == self.seq => HeadRelation::Current,
            Some(_) => HeadRelation::Behind,
        }
    }

    /// When the author of link `seq` says it made it, if that link is verified.
    pub fn link_created_at(&self, seq: u64) -> Option<u64> {
        self.link_times.get(usize::try_from(seq).ok()?).copied()
    }

    /// The key generation that was current at link `seq`, if that link is verified.
    pub fn generation_at(&self, seq: u64) -> Option<u32> {
        self.generation_by_seq
            .get(usize::try_from(seq).ok()?)
            .copied()
    }

    /// The record of a device that was once active and has since been revoked or removed.
    pub fn former_device(&self, device: &DeviceId) -> Option<&DeviceRecord> {
        self.former_devices.get(device).map(|f| &f.record)
    }

    /// A revoked or removed device with its role and the link that took it away.
    pub fn former(&self, device: &DeviceId) -> Option<&FormerDevice> {
        self.former_devices.get(device)
    }

    /// The current policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether the team was deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted
    }

    /// The members.
    pub fn members(&self) -> &SortedMap<MemberId, Member> {
        &self.members
    }

    /// The member a device belongs to, with their role.
    pub fn member_of(&self, device: &DeviceId) -> Option<(MemberId, Role)> {
        let id = self.device_member.get(device)?;
        Some((*id, self.members.get(id)?.role))
    }

    /// An active device's record.
    pub fn device(&self, device: &DeviceId) -> Option<&DeviceRecord> {
        let member = self.device_member.get(device)?;
        self.members.get(member)?.devices.get(device)
    }

    /// The current key generation and its public key: what epoch secrets are sealed to.
    pub fn current_key(&self) -> Option<(u32, AgreementPublicKey)> {
        let g = self.current_generation()?;
        Some((g, *self.generations.get(g as usize)?))
    }

    fn current_generation(&self) -> Option<u32> {
        u32::try_from(self.generations.len().checked_sub(1)?).ok()
    }

    /// The public key of a generation.
    pub fn generation_key(&self, generation: u32) -> Option<AgreementPublicKey> {
        self.generations.get(generation as usize).copied()
    }

    /// The integration keys that may sign visitor identity assertions.
    pub fn integration_keys(&self) -> &[(String, VerifyingKey)] {
        &self.integration_keys
    }

    /// The freshness witness the chain names, as `(url, statement key)`, if an owner set one.
    pub fn witness(&self) -> Option<(&str, &VerifyingKey)> {
        self.witness.as_ref().map(|(url, key)| (url.as_str(), key))
    }

    /// The hash of verified link `seq`.
    pub fn link_hash(&self, seq: u64) -> Option<LinkHash> {
        self.link_hashes.get(usize::try_from(seq).ok()?).copied()
    }

    /// Whether the chain revoked this integration key.
    pub fn is_revoked_integration_key(&self, key: &VerifyingKey) -> bool {
        self.revoked_integration_keys.contains(key)
    }
}
