//! The verified state of a team as a store record (PROTOCOL §6.9), so a client start imports
//! what it verified before and applies only the links that arrived since, instead of replaying
//! the whole chain from the fingerprint.
//!
//! The record is read back from the client's encrypted store, so it is authenticated, but the
//! decoder still treats it as untrusted bytes: every count is bounded by what the input can
//! hold, and the parts that depend on each other (the per-link histories and the head, devices
//! and their members) must agree, or the import fails with a typed error and the client
//! verifies the chain from the fingerprint instead.

use super::generations::GenerationSet;
use super::ids::{LinkHash, MemberId};
use super::link::{MAX_NAME_LEN, MAX_WITNESS_URL_LEN};
use super::role::Role;
use super::state::{FormerDevice, Member, TeamState};
use crate::Result;
use crate::codec::{Reader, Writer};
use crate::crypto::agreement::AgreementPublicKey;
use crate::crypto::sign::VerifyingKey;
use crate::device::{DeviceId, DeviceRecord};
use crate::error::DecodeError;
use crate::sorted_map::SortedMap;

/// The state type of a stored team state.
const TEAM_STATE: u8 = 5;
/// Most members, devices, generations, keys or links a stored state may hold.
const MAX_ENTRIES: usize = 1 << 24;
/// A device record's encoded length (§4.3).
const DEVICE_RECORD_LEN: usize = 174;

fn invalid() -> crate::Error {
    DecodeError::InvalidValue.into()
}

/// Inserts an entry read from a stored state, whose keys must come in strictly increasing
/// order (as `export` writes them), so that one state has exactly one encoding.
fn insert_next<K: Ord + Copy, V>(map: &mut SortedMap<K, V>, key: K, value: V) -> Result<()> {
    if map.last_key_value().is_some_and(|(last, _)| *last >= key) {
        return Err(invalid());
    }
    map.insert(key, value);
    Ok(())
}

impl TeamState {
    /// The verified state as a store record. Import it with [`TeamState::import`].
    pub fn export(&self) -> Vec<u8> {
        let links = self.link_hashes.len();
        let mut w = Writer::with_capacity(256 + links * (32 + 8 + 4) + self.members.len() * 200);
        w.state_header(TEAM_STATE);
        w.put(&self.team);
        w.put(&self.fingerprint);
        w.put(&self.head);
        w.u64(self.seq);
        w.put(&self.policy);
        w.u8(u8::from(self.deleted));
        w.u32(self.members.len() as u32);
        for (id, member) in self.members.iter() {
            w.put(id);
            w.u8(member.role.to_byte());
            w.u32(member.devices.len() as u32);
            for record in member.devices.values() {
                w.put(record);
            }
        }
        w.u32(self.held.len() as u32);
        for (device, set) in self.held.iter() {
            w.put(device);
            set.encode(&mut w);
        }
        w.u32(self.generations.len() as u32);
        for key in &self.generations {
            w.array(key.as_bytes());
        }
        w.u32(self.integration_keys.len() as u32);
        for (name, key) in &self.integration_keys {
            w.bytes_u16(name.as_bytes());
            w.array(key.as_bytes());
        }
        w.u32(self.revoked_integration_keys.len() as u32);
        for key in &self.revoked_integration_keys {
            w.array(key.as_bytes());
        }
        match &self.witness {
            None => w.u8(0),
            Some((url, key)) => {
                w.u8(1);
                w.bytes_u16(url.as_bytes());
                w.array(key.as_bytes());
            }
        }
        w.u32(links as u32);
        for ((hash, time), generation) in self
            .link_hashes
            .iter()
            .zip(&self.link_times)
            .zip(&self.generation_by_seq)
        {
            w.put(hash);
            w.u64(*time);
            w.u32(*generation);
        }
        w.u32(self.former_devices.len() as u32);
        for (device, former) in self.former_devices.iter() {
            w.put(device);
            w.put(&former.record);
            w.u8(former.role.to_byte());
            w.u64(former.removed_at);
        }
        w.into_bytes()
    }

    /// Restores a state written by [`TeamState::export`]. Fails with a typed error on any
    /// inconsistency; the caller then verifies the chain again.
    pub fn import(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        r.state_header(TEAM_STATE)?;
        let team = r.get()?;
        let fingerprint = r.get()?;
        let head: LinkHash = r.get()?;
        let seq = r.u64()?;
        let policy = r.get()?;
        let deleted = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(invalid()),
        };

        let mut members = SortedMap::new();
        let mut device_member = SortedMap::new();
        for _ in 0..r.count_u32(MAX_ENTRIES, 16 + 1 + 4)? {
            let id: MemberId = r.get()?;
            let role = Role::from_byte(r.u8()?)?;
            let mut devices = SortedMap::new();
            for _ in 0..r.count_u32(MAX_ENTRIES, DEVICE_RECORD_LEN)? {
                let record: DeviceRecord = r.get()?;
                if device_member.insert(record.id(), id).is_some() {
                    return Err(invalid());
                }
                insert_next(&mut devices, record.id(), record)?;
            }
            insert_next(&mut members, id, Member { role, devices })?;
        }

        let mut held = SortedMap::new();
        for _ in 0..r.count_u32(MAX_ENTRIES, 32 + 4)? {
            let device: DeviceId = r.get()?;
            if !device_member.contains_key(&device) {
                return Err(invalid());
            }
            insert_next(&mut held, device, GenerationSet::decode(&mut r)?)?;
        }

        let n = r.count_u32(MAX_ENTRIES, 32)?;
        let mut generations = Vec::with_capacity(n);
        for _ in 0..n {
            generations.push(AgreementPublicKey::from_bytes(r.array()?));
        }
        let n = r.count_u32(MAX_ENTRIES, 2 + 32)?;
        let mut integration_keys = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.string_u16(MAX_NAME_LEN)?;
            integration_keys.push((name, VerifyingKey::from_bytes(&r.array()?)?));
        }
        let n = r.count_u32(MAX_ENTRIES, 32)?;
        let mut revoked_integration_keys = Vec::with_capacity(n);
        for _ in 0..n {
            revoked_integration_keys.push(VerifyingKey::from_bytes(&r.array()?)?);
        }
        let witness = match r.u8()? {
            0 => None,
            1 => {
                let url = r.string_u16(MAX_WITNESS_URL_LEN)?;
                Some((url, VerifyingKey::from_bytes(&r.array()?)?))
            }
            _ => return Err(invalid()),
        };

        let n = r.count_u32(MAX_ENTRIES, 32 + 8 + 4)?;
        let (mut link_hashes, mut link_times, mut generation_by_seq) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for _ in 0..n {
            link_hashes.push(r.get()?);
            link_times.push(r.u64()?);
            let generation = r.u32()?;
            if generation as usize >= generations.len() {
                return Err(invalid());
            }
            generation_by_seq.push(generation);
        }
        // One hash per link from 0 to the head, which is the last of them.
        let consistent = u64::try_from(n).ok() == seq.checked_add(1)
            && link_hashes.first() == Some(&fingerprint)
            && link_hashes.last() == Some(&head);
        if !consistent {
            return Err(invalid());
        }

        let mut former_devices = SortedMap::new();
        for _ in 0..r.count_u32(MAX_ENTRIES, 32 + DEVICE_RECORD_LEN + 1 + 8)? {
            let device: DeviceId = r.get()?;
            let record: DeviceRecord = r.get()?;
            let role = Role::from_byte(r.u8()?)?;
            let removed_at = r.u64()?;
            if record.id() != device || removed_at > seq || removed_at == 0 {
                return Err(invalid());
            }
            let former = FormerDevice {
                record,
                role,
                removed_at,
            };
            insert_next(&mut former_devices, device, former)?;
        }
        r.finish()?;

        Ok(TeamState {
            team,
            fingerprint,
            head,
            seq,
            members,
            device_member,
            held,
            generations,
            policy,
            integration_keys,
            revoked_integration_keys,
            witness,
            deleted,
            link_hashes,
            link_times,
            generation_by_seq,
            former_devices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{Device, DeviceKind};
    use crate::team::link::Change;
    use crate::team::policy::Policy;

    fn sample() -> TeamState {
        let mut rng = crate::test_rng(70);
        let owner = Device::generate(DeviceKind::Member, &mut rng, 0);
        let (_, mut state, mut keyring) =
            TeamState::create(&mut rng, &owner, &[], Policy::default(), 0).unwrap();
        let mut apply = |state: &mut TeamState, change: Change| {
            let link = state
                .propose(&mut rng, &owner, &mut keyring, change, false, 1)
                .unwrap();
            state.apply(&link).unwrap();
        };
        let agent = Device::generate(DeviceKind::Member, &mut crate::test_rng(71), 0);
        let viewer = Device::generate(DeviceKind::Member, &mut crate::test_rng(72), 0);
        let (a, v) = (MemberId([1; 16]), MemberId([2; 16]));
        for change in [
            Change::AddMember {
                member: a,
                role: Role::Agent,
                devices: vec![agent.record()],
            },
            Change::AddMember {
                member: v,
                role: Role::Viewer,
                devices: vec![viewer.record()],
            },
            Change::AddIntegrationKey {
                name: "crm".into(),
                key: VerifyingKey::from_bytes(owner.record().identity().as_bytes()).unwrap(),
            },
            Change::RevokeIntegrationKey {
                key: VerifyingKey::from_bytes(owner.record().identity().as_bytes()).unwrap(),
            },
            Change::RemoveMember { member: a },
        ] {
            apply(&mut state, change);
        }
        state
    }

    #[test]
    fn a_state_round_trips_and_goes_on_verifying() {
        let state = sample();
        let bytes = state.export();
        let back = TeamState::import(&bytes).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.export(), bytes);
    }

    #[test]
    fn every_truncation_and_inconsistency_is_a_typed_error() {
        let bytes = sample().export();
        for len in 0..bytes.len() {
            assert!(TeamState::import(&bytes[..len]).is_err(), "length {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(TeamState::import(&longer).is_err());
        // A head that is not the last link's hash.
        let mut wrong_head = bytes.clone();
        wrong_head[2 + 16 + 32] ^= 1;
        assert_eq!(
            TeamState::import(&wrong_head).unwrap_err(),
            DecodeError::InvalidValue.into()
        );
        // Another state type or format version.
        let mut other = bytes;
        other[1] = 4;
        assert!(TeamState::import(&other).is_err());
    }
}
