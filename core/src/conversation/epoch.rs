//! Epoch records: how an epoch's secret reaches the team and the visitor's devices.
//!
//! An epoch secret is 32 random bytes, sealed with HPKE once to the team's current key
//! generation (every read-permitted member device holds it) and once to each visitor device. The
//! record names the team chain head its author had verified and is signed by the author, so a
//! receiver detects a fork or a rollback and refuses a secret sealed to a superseded generation.

use super::ConversationId;
use crate::Result;
use crate::codec::{Decode, Encode, Reader, Writer};
use crate::crypto::hpke::{self, HpkeSealed};
use crate::crypto::secret::SecretBytes;
use crate::crypto::sign::{Signature, SignatureContext};
use crate::device::{Device, DeviceId, DeviceKind, DeviceRecord};
use crate::error::EpochError;
use crate::team::attestation::MAX_CLOCK_SKEW_SECS;
use crate::team::policy::Policy;
use crate::team::{HeadRelation, LinkHash, TeamId, TeamKeyring, TeamState};
use crate::wire::{self, ObjectType, WireObject};

/// Most visitor devices one conversation may have.
pub const MAX_VISITOR_DEVICES: usize = 16;
/// Ciphertext of a sealed 32-byte secret: the secret and its tag.
const MAX_SEALED_SECRET: usize = 48;
const SECRET_INFO_LABEL: &[u8] = b"sotto/v1/epoch-secret\0";
const RECIPIENT_TEAM: u8 = 1;
const RECIPIENT_VISITOR: u8 = 2;

/// A conversation epoch record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochRecord {
    /// The conversation.
    pub conversation: ConversationId,
    /// The epoch number; 0 opens the conversation.
    pub epoch: u32,
    /// The team the conversation is with.
    pub team: TeamId,
    /// Sequence number of the chain head the author had verified.
    pub team_seq: u64,
    /// Hash of that head.
    pub team_head: LinkHash,
    /// The team key generation the secret is sealed to.
    pub generation: u32,
    /// The device that opened the epoch.
    pub author: DeviceId,
    /// The author's clock, in seconds since the Unix epoch.
    pub created_at: u64,
    /// The visitor's devices, each of which gets the secret.
    pub visitor_devices: Vec<DeviceRecord>,
    /// The secret sealed to the team generation's key.
    pub team_sealed: HpkeSealed,
    /// The secret sealed to each visitor device, in the order of `visitor_devices`.
    pub visitor_sealed: Vec<HpkeSealed>,
    /// The author's signature over everything above.
    pub signature: Signature,
}

/// Whether a record opens an epoch now or is read back from history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// A new epoch: it must be sealed to our newest generation and authored by a device active
    /// now.
    Live,
    /// An epoch from history: it must be sealed to the generation current at the head it names,
    /// by a device active then or now.
    History,
}

/// What a receiver should tell its user about an accepted record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochWarning {
    /// The author named an earlier head than ours: it had not seen the newest chain links
    /// (possibly withheld by the relay).
    Rollback,
}

impl EpochRecord {
    /// The fields the sealed secrets and the signature are bound to.
    fn context(&self) -> Vec<u8> {
        let mut w = Writer::new();
        wire::write_header(&mut w, ObjectType::EpochRecord);
        w.put(&self.conversation);
        w.u32(self.epoch);
        w.put(&self.team);
        w.u64(self.team_seq);
        w.put(&self.team_head);
        w.u32(self.generation);
        w.put(&self.author);
        w.u64(self.created_at);
        w.u16(self.visitor_devices.len() as u16);
        for d in &self.visitor_devices {
            w.put(d);
        }
        w.into_bytes()
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut bytes = self.context();
        let mut w = Writer::new();
        w.put(&self.team_sealed);
        w.u16(self.visitor_sealed.len() as u16);
        for s in &self.visitor_sealed {
            w.put(s);
        }
        bytes.extend_from_slice(&w.into_bytes());
        bytes
    }

    fn info(&self, recipient: u8, id: &[u8]) -> Vec<u8> {
        let mut info = Vec::with_capacity(SECRET_INFO_LABEL.len() + 16 + 4 + 1 + 32 + 4);
        info.extend_from_slice(SECRET_INFO_LABEL);
        info.extend_from_slice(&self.conversation.0);
        info.extend_from_slice(&self.epoch.to_be_bytes());
        info.push(recipient);
        info.extend_from_slice(id);
        info
    }

    fn team_info(&self) -> Vec<u8> {
        let mut id = self.team.0.to_vec();
        id.extend_from_slice(&self.generation.to_be_bytes());
        self.info(RECIPIENT_TEAM, &id)
    }

    /// Opens a new epoch: a fresh secret sealed to `team`'s current generation and to every
    /// visitor device. A visitor calls this only after checking a fresh head attestation
    /// ([`HeadAttestation::check_fresh`](crate::team::attestation::HeadAttestation::check_fresh)).
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        rng: &mut impl rand_core::CryptoRng,
        author: &Device,
        team: &TeamState,
        conversation: ConversationId,
        epoch: u32,
        visitor_devices: Vec<DeviceRecord>,
        now: u64,
    ) -> Result<(EpochRecord, SecretBytes<32>)> {
        let (generation, team_key) = team.current_key().ok_or(EpochError::NoKey)?;
        if visitor_devices.is_empty() || visitor_devices.len() > MAX_VISITOR_DEVICES {
            return Err(EpochError::VisitorSet.into());
        }
        let secret = SecretBytes::<32>::random(rng);
        let mut record = EpochRecord {
            conversation,
            epoch,
            team: team.team(),
            team_seq: team.seq(),
            team_head: team.head(),
            generation,
            author: author.id(),
            created_at: now,
            visitor_devices,
            team_sealed: HpkeSealed {
                enc: [0; 32],
                ciphertext: Vec::new(),
            },
            visitor_sealed: Vec::new(),
            signature: Signature::from_bytes([0; 64]),
        };
        let aad = record.context();
        record.team_sealed =
            hpke::seal_base(rng, &team_key, &record.team_info(), &aad, secret.expose())?;
        for d in &record.visitor_devices {
            let info = record.info(RECIPIENT_VISITOR, &d.id().0);
            let sealed = hpke::seal_base(
                rng,
                &d.key_agreement().public_key,
                &info,
                &aad,
                secret.expose(),
            )?;
            record.visitor_sealed.push(sealed);
        }
        record.signature = author.sign(SignatureContext::EpochRecord, &record.signed_bytes());
        Ok((record, secret))
    }

    /// Checks a received record against the receiver's verified chain and, from the second
    /// epoch on, the visitor devices it already knows. Refuses a record that names a head not
    /// on our chain (fork) or beyond it (fetch first), that is sealed to a generation other than
    /// our newest, whose author is neither one of the visitor's devices nor an active member
    /// device with read access, or that adds visitor devices without a visitor's signature.
    pub fn verify(
        &self,
        team: &TeamState,
        known_visitors: Option<&[DeviceRecord]>,
        freshness: Freshness,
    ) -> Result<Option<EpochWarning>> {
        if self.team != team.team() {
            return Err(EpochError::WrongTeam.into());
        }
        let relation = team.head_relation(self.team_seq, &self.team_head);
        let warning = match relation {
            HeadRelation::Current => None,
            HeadRelation::Behind if freshness == Freshness::History => None,
            // A record made while a newer link already existed was made on a stale chain (the
            // relay may have withheld links). One older than the links after its head, such as a
            // visitor's epoch opened before a member joined, is merely old. Clocks of devices
            // differ and times are whole seconds, so "older" allows the clock skew: an honest
            // visitor opening an epoch in the same second as an invite raises no alarm.
            HeadRelation::Behind => match team.link_created_at(self.team_seq.saturating_add(1)) {
                Some(next_link)
                    if self.created_at <= next_link.saturating_add(MAX_CLOCK_SKEW_SECS) =>
                {
                    None
                }
                _ => Some(EpochWarning::Rollback),
            },
            HeadRelation::Ahead => return Err(EpochError::ChainBehind.into()),
            HeadRelation::Fork => return Err(EpochError::Fork.into()),
        };
        let current = match freshness {
            Freshness::Live => team.current_key().ok_or(EpochError::NoKey)?.0,
            Freshness::History => team
                .generation_at(self.team_seq)
                .ok_or(EpochError::ChainBehind)?,
        };
        if self.generation < current {
            return Err(EpochError::StaleGeneration.into());
        }
        if self.generation > current {
            return Err(EpochError::ChainBehind.into());
        }
        if self.visitor_devices.is_empty()
            || self.visitor_sealed.len() != self.visitor_devices.len()
            || self
                .visitor_devices
                .iter()
                .any(|d| d.kind() != DeviceKind::Visitor)
        {
            return Err(EpochError::VisitorSet.into());
        }
        for (i, d) in self.visitor_devices.iter().enumerate() {
            if self
                .visitor_devices
                .iter()
                .take(i)
                .any(|e| e.id() == d.id())
            {
                return Err(EpochError::VisitorSet.into());
            }
        }

        let visitor_author = self.visitor_devices.iter().find(|d| d.id() == self.author);
        let author_key = match (visitor_author, team.device(&self.author)) {
            (Some(v), _) => *v.identity(),
            (None, Some(member)) => {
                let readable = team
                    .member_of(&self.author)
                    .is_some_and(|(_, role)| role.can_read());
                if !readable || member.kind() != DeviceKind::Member {
                    return Err(EpochError::UnknownAuthor.into());
                }
                *member.identity()
            }
            // From history, a device removed since may have written it while it was active:
            // the head it names must come before the link that removed it.
            (None, None) => match team.former(&self.author) {
                Some(former)
                    if freshness == Freshness::History
                        && self.team_seq < former.removed_at
                        && former.role.can_read()
                        && former.record.kind() == DeviceKind::Member =>
                {
                    *former.record.identity()
                }
                _ => return Err(EpochError::UnknownAuthor.into()),
            },
        };

        // Only the visitor decides which devices are the visitor's: the first record is the
        // visitor's own, and a later one may add devices only if signed by a known one.
        match known_visitors {
            None if visitor_author.is_none() => return Err(EpochError::VisitorSet.into()),
            None => {}
            Some(known) => {
                let keeps_all = known.iter().all(|k| self.visitor_devices.contains(k));
                let adds = self.visitor_devices.iter().any(|d| !known.contains(d));
                let author_known = known.iter().any(|k| k.id() == self.author);
                if !keeps_all || (adds && !author_known) {
                    return Err(EpochError::VisitorSet.into());
                }
            }
        }
        author_key.verify(
            SignatureContext::EpochRecord,
            &self.signed_bytes(),
            &self.signature,
        )?;
        Ok(warning)
    }

    /// The epoch secret, for a member device holding the generation key. Call only after
    /// [`EpochRecord::verify`] accepted the record.
    pub fn secret_for_member(&self, keyring: &TeamKeyring) -> Result<SecretBytes<32>> {
        let key = keyring.secret(self.generation).ok_or(EpochError::NoKey)?;
        let plain = zeroize::Zeroizing::new(hpke::open_base(
            &key,
            &self.team_sealed,
            &self.team_info(),
            &self.context(),
        )?);
        SecretBytes::from_slice(&plain)
    }

    /// The epoch secret, for one of the visitor's devices.
    pub fn secret_for_visitor(&self, device: &Device) -> Result<SecretBytes<32>> {
        let index = self
            .visitor_devices
            .iter()
            .position(|d| d.id() == device.id())
            .ok_or(EpochError::NoKey)?;
        let sealed = self.visitor_sealed.get(index).ok_or(EpochError::NoKey)?;
        let info = self.info(RECIPIENT_VISITOR, &device.id().0);
        let plain = zeroize::Zeroizing::new(hpke::open_base(
            device.agreement_secret(),
            sealed,
            &info,
            &self.context(),
        )?);
        SecretBytes::from_slice(&plain)
    }
}

/// The key that verifies `sender`'s messages in the epoch of `record`, if `sender` may send
/// `kind` there: one of the visitor's devices, or an active member device whose role may send
/// (any read-permitted role may send ephemeral kinds such as receipts), or a member device
/// removed since, whose role could, in an epoch opened before its removal. Each side sends only
/// its kinds: a visitor device never a system note (it would speak as the team), a member device
/// never an identity presentation ([`MessageError::KindNotAllowed`](crate::MessageError)).
pub fn sender_key(
    team: &TeamState,
    record: &EpochRecord,
    sender: &DeviceId,
    kind: super::MessageKind,
) -> Result<crate::crypto::sign::VerifyingKey> {
    let refused = crate::error::MessageError::KindNotAllowed;
    if let Some(v) = record.visitor_devices.iter().find(|d| d.id() == *sender) {
        return match kind.visitor_may_send() {
            true => Ok(*v.identity()),
            false => Err(refused.into()),
        };
    }
    if !kind.member_may_send() {
        return Err(refused.into());
    }
    let may = |role: crate::team::Role| {
        if kind.is_ephemeral() {
            role.can_read()
        } else {
            role.can_send()
        }
    };
    let Some((_, role)) = team.member_of(sender) else {
        return match team.former(sender) {
            Some(former) if record.team_seq < former.removed_at && may(former.role) => {
                Ok(*former.record.identity())
            }
            _ => Err(crate::error::MessageError::UnknownSender.into()),
        };
    };
    let allowed = may(role);
    let record = team
        .device(sender)
        .filter(|_| allowed)
        .ok_or(crate::error::MessageError::UnknownSender)?;
    Ok(*record.identity())
}

/// Whether an epoch started at `started_at` with `messages` sent must give way to a new one
/// under `policy` at `now`.
pub fn epoch_expired(policy: &Policy, started_at: u64, messages: u32, now: u64) -> bool {
    messages >= policy.epoch_max_messages
        || now.saturating_sub(started_at) >= u64::from(policy.epoch_max_age_secs)
}

fn decode_sealed(r: &mut Reader<'_>) -> Result<HpkeSealed> {
    Ok(HpkeSealed {
        enc: r.array()?,
        ciphertext: r.bytes_u32(MAX_SEALED_SECRET)?.to_vec(),
    })
}

impl Encode for EpochRecord {
    fn encode(&self, w: &mut Writer) {
        // The signed bytes are the encoding with its envelope header; the body drops the header.
        let signed = self.signed_bytes();
        w.array(signed.get(3..).unwrap_or_default());
        w.array(self.signature.as_bytes());
    }
}

impl Decode for EpochRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let conversation = r.get()?;
        let epoch = r.u32()?;
        let team = r.get()?;
        let team_seq = r.u64()?;
        let team_head = r.get()?;
        let generation = r.u32()?;
        let author = r.get()?;
        let created_at = r.u64()?;
        // A device record is 174 bytes.
        let n = r.count_u16(MAX_VISITOR_DEVICES, 174)?;
        let visitor_devices = (0..n)
            .map(|_| r.get())
            .collect::<Result<Vec<DeviceRecord>>>()?;
        let team_sealed = decode_sealed(r)?;
        let m = r.count_u16(MAX_VISITOR_DEVICES, 36)?;
        let visitor_sealed = (0..m)
            .map(|_| decode_sealed(r))
            .collect::<Result<Vec<_>>>()?;
        let signature = Signature::from_bytes(r.array()?);
        Ok(EpochRecord {
            conversation,
            epoch,
            team,
            team_seq,
            team_head,
            generation,
            author,
            created_at,
            visitor_devices,
            team_sealed,
            visitor_sealed,
            signature,
        })
    }
}

impl WireObject for EpochRecord {
    const OBJECT_TYPE: ObjectType = ObjectType::EpochRecord;
}
