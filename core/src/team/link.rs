//! Chain links: their encoding, signature and hash.

use sha2::{Digest, Sha256};

use super::ids::{LinkHash, MemberId, TeamId};
use super::policy::Policy;
use super::role::Role;
use crate::Result;
use crate::codec::{Decode, Encode, Reader, Writer};
use crate::crypto::agreement::AgreementPublicKey;
use crate::crypto::hpke::HpkeSealed;
use crate::crypto::sign::{Signature, SignatureContext, VerifyingKey};
use crate::device::{Device, DeviceId, DeviceRecord};
use crate::error::DecodeError;
use crate::wire::{self, ObjectType, WireObject};

/// Most devices one link may add.
pub const MAX_DEVICES_PER_LINK: usize = 64;
/// Most key wraps one link may carry.
pub const MAX_WRAPS_PER_LINK: usize = 16_384;
/// Longest integration key name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest freshness witness URL, in bytes.
pub const MAX_WITNESS_URL_LEN: usize = 256;
/// Longest wrapped-key ciphertext: a 32-byte seed and its tag.
const MAX_WRAP_CIPHERTEXT: usize = 48;
const LINK_HASH_LABEL: &[u8] = b"sotto/v1/link-hash\0";

/// What a link changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The first link: the team, its first owner with their devices, and its policy.
    CreateTeam {
        /// The owner's member id.
        owner: MemberId,
        /// The owner's first devices; the author is one of them.
        devices: Vec<DeviceRecord>,
        /// The initial policy.
        policy: Policy,
    },
    /// A new member with a role and first devices.
    AddMember {
        /// The new member's id.
        member: MemberId,
        /// Their role.
        role: Role,
        /// Their first devices.
        devices: Vec<DeviceRecord>,
    },
    /// Removes a member and all their devices.
    RemoveMember {
        /// The member removed.
        member: MemberId,
    },
    /// Changes a member's role.
    ChangeRole {
        /// The member.
        member: MemberId,
        /// The new role.
        role: Role,
    },
    /// Adds a device to an existing member.
    AddDevice {
        /// The member.
        member: MemberId,
        /// The new device.
        device: DeviceRecord,
    },
    /// Revokes one device of a member.
    RevokeDevice {
        /// The member.
        member: MemberId,
        /// The revoked device.
        device: DeviceId,
    },
    /// A scheduled key rotation (the link's rotation field carries the new generation).
    RotateKey,
    /// Replaces the team policy.
    SetPolicy {
        /// The new policy.
        policy: Policy,
    },
    /// Registers a key of the company's backend that signs visitor identity assertions.
    AddIntegrationKey {
        /// A name for people.
        name: String,
        /// The Ed25519 key.
        key: VerifyingKey,
    },
    /// Deletes the team: clients wipe its keys, the relay its data; no link may follow.
    DeleteTeam,
    /// Revokes an integration key (a leaked company backend key): from this link on it vouches
    /// for no visitor and grants no history, and it can never be added again.
    RevokeIntegrationKey {
        /// The Ed25519 key revoked.
        key: VerifyingKey,
    },
    /// Names the team's freshness witness (PROTOCOL §6.8): a service the company runs outside
    /// the relay that verifies the chain and signs its head with `key`; clients refuse to send
    /// when it vouches for a head the relay does not serve them. Replaces any earlier witness.
    SetWitness {
        /// The witness's base URL (`https://`, or `http://` on loopback), UTF-8, at most
        /// [`MAX_WITNESS_URL_LEN`] bytes.
        url: String,
        /// The Ed25519 key that signs its statements.
        key: VerifyingKey,
    },
}

/// A new team key generation: its public key (the secret travels in the link's wraps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGeneration {
    /// The generation number, one more than the previous.
    pub generation: u32,
    /// The generation's X25519 public key, the HPKE recipient for epoch secrets.
    pub public_key: AgreementPublicKey,
}

/// A team key generation's seed sealed with HPKE to one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyWrap {
    /// The recipient device.
    pub device: DeviceId,
    /// Which generation's seed is inside.
    pub generation: u32,
    /// HPKE base mode to the device's key-agreement key.
    pub sealed: HpkeSealed,
}

/// One link of a team chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The team.
    pub team: TeamId,
    /// Position in the chain; the first link is 0.
    pub seq: u64,
    /// Hash of the previous link (all zero for the first).
    pub previous: LinkHash,
    /// The device that made and signed the link.
    pub author: DeviceId,
    /// The author's clock, in seconds since the Unix epoch (informational).
    pub created_at: u64,
    /// What changes.
    pub change: Change,
    /// A key rotation, when the change makes one.
    pub rotation: Option<NewGeneration>,
    /// Team key seeds for devices that need them after this change.
    pub wraps: Vec<KeyWrap>,
    /// The author's signature over everything above, envelope header included.
    pub signature: Signature,
}

impl Link {
    /// The bytes the author signs: the wire encoding up to, not including, the signature.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        wire::write_header(&mut w, ObjectType::ChainLink);
        self.encode_unsigned(&mut w);
        w.into_bytes()
    }

    fn encode_unsigned(&self, w: &mut Writer) {
        w.put(&self.team);
        w.u64(self.seq);
        w.put(&self.previous);
        w.put(&self.author);
        w.u64(self.created_at);
        encode_change(&self.change, w);
        match &self.rotation {
            None => w.u8(0),
            Some(g) => {
                w.u8(1);
                w.u32(g.generation);
                w.array(g.public_key.as_bytes());
            }
        }
        w.u16(self.wraps.len() as u16);
        for wrap in &self.wraps {
            w.put(&wrap.device);
            w.u32(wrap.generation);
            w.put(&wrap.sealed);
        }
    }

    /// Fills in the signature.
    pub fn sign(&mut self, author: &Device) {
        self.signature = author.sign(SignatureContext::ChainLink, &self.signed_bytes());
    }

    /// Checks the signature against the author's identity key.
    pub fn verify_signature(&self, author: &VerifyingKey) -> Result<()> {
        author.verify(
            SignatureContext::ChainLink,
            &self.signed_bytes(),
            &self.signature,
        )
    }

    /// `SHA-256("sotto/v1/link-hash\0" || wire bytes)`.
    pub fn hash(&self) -> LinkHash {
        let mut h = Sha256::new();
        h.update(LINK_HASH_LABEL);
        h.update(self.to_wire());
        LinkHash(h.finalize().into())
    }
}

fn encode_devices(devices: &[DeviceRecord], w: &mut Writer) {
    w.u16(devices.len() as u16);
    for d in devices {
        w.put(d);
    }
}

fn decode_devices(r: &mut Reader<'_>) -> Result<Vec<DeviceRecord>> {
    // A device record is 1 + 32 + 141 bytes.
    let n = r.count_u16(MAX_DEVICES_PER_LINK, 174)?;
    (0..n).map(|_| r.get()).collect()
}

fn encode_change(change: &Change, w: &mut Writer) {
    match change {
        Change::CreateTeam {
            owner,
            devices,
            policy,
        } => {
            w.u8(1);
            w.put(owner);
            encode_devices(devices, w);
            w.put(policy);
        }
        Change::AddMember {
            member,
            role,
            devices,
        } => {
            w.u8(2);
            w.put(member);
            w.u8(role.to_byte());
            encode_devices(devices, w);
        }
        Change::RemoveMember { member } => {
            w.u8(3);
            w.put(member);
        }
        Change::ChangeRole { member, role } => {
            w.u8(4);
            w.put(member);
            w.u8(role.to_byte());
        }
        Change::AddDevice { member, device } => {
            w.u8(5);
            w.put(member);
            w.put(device);
        }
        Change::RevokeDevice { member, device } => {
            w.u8(6);
            w.put(member);
            w.put(device);
        }
        Change::RotateKey => w.u8(7),
        Change::SetPolicy { policy } => {
            w.u8(8);
            w.put(policy);
        }
        Change::AddIntegrationKey { name, key } => {
            w.u8(9);
            w.bytes_u16(name.as_bytes());
            w.array(key.as_bytes());
        }
        Change::DeleteTeam => w.u8(10),
        Change::RevokeIntegrationKey { key } => {
            w.u8(11);
            w.array(key.as_bytes());
        }
        Change::SetWitness { url, key } => {
            w.u8(12);
            w.bytes_u16(url.as_bytes());
            w.array(key.as_bytes());
        }
    }
}

fn decode_change(r: &mut Reader<'_>) -> Result<Change> {
    Ok(match r.u8()? {
        1 => Change::CreateTeam {
            owner: r.get()?,
            devices: decode_devices(r)?,
            policy: r.get()?,
        },
        2 => Change::AddMember {
            member: r.get()?,
            role: Role::from_byte(r.u8()?)?,
            devices: decode_devices(r)?,
        },
        3 => Change::RemoveMember { member: r.get()? },
        4 => Change::ChangeRole {
            member: r.get()?,
            role: Role::from_byte(r.u8()?)?,
        },
        5 => Change::AddDevice {
            member: r.get()?,
            device: r.get()?,
        },
        6 => Change::RevokeDevice {
            member: r.get()?,
            device: r.get()?,
        },
        7 => Change::RotateKey,
        8 => Change::SetPolicy { policy: r.get()? },
        9 => Change::AddIntegrationKey {
            name: r.string_u16(MAX_NAME_LEN)?,
            key: VerifyingKey::from_bytes(&r.array()?)?,
        },
        10 => Change::DeleteTeam,
        11 => Change::RevokeIntegrationKey {
            key: VerifyingKey::from_bytes(&r.array()?)?,
        },
        12 => Change::SetWitness {
            url: r.string_u16(MAX_WITNESS_URL_LEN)?,
            key: VerifyingKey::from_bytes(&r.array()?)?,
        },
        _ => return Err(DecodeError::UnknownTag.into()),
    })
}

impl Encode for Link {
    fn encode(&self, w: &mut Writer) {
        self.encode_unsigned(w);
        w.array(self.signature.as_bytes());
    }
}

impl Decode for Link {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let team = r.get()?;
        let seq = r.u64()?;
        let previous = r.get()?;
        let author = r.get()?;
        let created_at = r.u64()?;
        let change = decode_change(r)?;
        let rotation = match r.u8()? {
            0 => None,
            1 => Some(NewGeneration {
                generation: r.u32()?,
                public_key: AgreementPublicKey::from_bytes(r.array()?),
            }),
            _ => return Err(DecodeError::UnknownTag.into()),
        };
        // A wrap is at least device, generation, enc and a length.
        let n = r.count_u16(MAX_WRAPS_PER_LINK, 32 + 4 + 32 + 4)?;
        let mut wraps = Vec::with_capacity(n);
        for _ in 0..n {
            let device = r.get()?;
            let generation = r.u32()?;
            let enc = r.array()?;
            let ciphertext = r.bytes_u32(MAX_WRAP_CIPHERTEXT)?.to_vec();
            wraps.push(KeyWrap {
                device,
                generation,
                sealed: HpkeSealed { enc, ciphertext },
            });
        }
        let signature = Signature::from_bytes(r.array()?);
        Ok(Link {
            team,
            seq,
            previous,
            author,
            created_at,
            change,
            rotation,
            wraps,
            signature,
        })
    }
}

impl WireObject for Link {
    const OBJECT_TYPE: ObjectType = ObjectType::ChainLink;
}
