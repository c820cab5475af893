//! Epoch records: how an epoch's secret reaches the team and the visitor's devices.
//!
//! An epoch secret is 32 random bytes, sealed with HPKE once to the team's current key
//! generation (every read-permitted member device holds it) and once to each visitor device. The
//! record names the team chain head its author had verified and is signed by the author, so a
//! receiver detects a fork or a rollback and refuses a secret sealed to a superseded generation.

use super::{ConversationId, Instance};
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
use sha2::{Digest, Sha256};

/// Most visitor devices one conversation may have.
pub const MAX_VISITOR_DEVICES: usize = 16;
/// Ciphertext of a sealed 32-byte secret: the secret and its tag.
const MAX_SEALED_SECRET: usize = 48;
const SECRET_INFO_LABEL: &[u8] = b"sotto/v1/epoch-secret\0";
const RECIPIENT_TEAM: u8 = 1;
const RECIPIENT_VISITOR: u8 = 2;
const RECORD_HASH_LABEL: &[u8] = b"sotto/v1/epoch-record-hash\0";
/// Most sender chains one record closes.
pub const MAX_CLOSES: usize = 1024;
/// Bytes of one close entry: sender, instance, next counter.
const CLOSE_LEN: usize = 32 + 8 + 4;

/// A conversation epoch record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochRecord {
    /// The conversation.
    pub conversation: ConversationId,
    /// The epoch number; 0 opens the conversation.
    pub epoch: u32,
    /// [`EpochRecord::hash`] of the record of the epoch this one follows (the newest one its
    /// author accepted); all zero for the record that opens the conversation.
    pub previous: [u8; 32],
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
    /// How far each durable sender chain of the previous epoch got, as far as the author knew:
    /// the end of that epoch. Sorted by sender and instance, without repeats. `None` when the
    /// author could not read the previous epoch (a visitor's new device, a reader without
    /// history): that epoch's end is then not stated.
    pub closes: Option<Vec<SenderClose>>,
    /// The secret sealed to the team generation's key.
    pub team_sealed: HpkeSealed,
    /// The secret sealed to each visitor device, in the order of `visitor_devices`.
    pub visitor_sealed: Vec<HpkeSealed>,
    /// The author's signature over everything above.
    pub signature: Signature,
}

/// The end of one durable sender chain in the epoch a record closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SenderClose {
    /// The sending device.
    pub sender: DeviceId,
    /// The installation of that device the chain belongs to.
    pub instance: Instance,
    /// The lowest counter the chain had not reached: messages `0 .. next` belong to the epoch.
    pub next: u32,
}

/// Who authored an accepted record, as far as the receiver's chain says now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochAuthor {
    /// One of the visitor's devices listed in the record.
    Visitor,
    /// A member device active now whose role reads conversations.
    Member,
    /// A member device removed or revoked since, which could read when the head the record names
    /// was current. Its word counts only once an active participant's record follows this one:
    /// with the relay's help it could have written the record after its removal.
    Former,
}

/// What [`EpochRecord::verify`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedEpoch {
    /// Who wrote it.
    pub author: EpochAuthor,
    /// Something to tell the user.
    pub warning: Option<EpochWarning>,
}

/// Whether a message in an epoch counts, given the record that closed the epoch (if any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Within the epoch as its close recorded it, or from an active sender of an open epoch.
    Accept,
    /// From a sender removed since, in an epoch no accepted record closed yet: kept aside until
    /// one does, never shown before.
    Hold,
    /// Beyond what the close of its epoch recorded: written (or delivered) after the epoch ended.
    AfterClose,
}

/// Decides whether a message with `counter` from `sender`'s installation `instance` counts in an
/// epoch. `closing` is the accepted record that follows the epoch, `former` whether the sender is
/// a member device removed or revoked since.
pub fn admit_message(
    closing: Option<&EpochRecord>,
    sender: &DeviceId,
    instance: &Instance,
    counter: u32,
    former: bool,
) -> Admission {
    match closing.map(|r| r.closed_at(sender, instance)) {
        None if former => Admission::Hold,
        None => Admission::Accept,
        // The author of the next epoch could not read this one: its end is unknown, and only a
        // sender active now is taken at its word.
        Some(None) if former => Admission::AfterClose,
        Some(None) => Admission::Accept,
        Some(Some(next)) if counter < next => Admission::Accept,
        Some(Some(_)) => Admission::AfterClose,
    }
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
        w.array(&self.previous);
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
        match &self.closes {
            None => w.u8(0),
            Some(closes) => {
                w.u8(1);
                w.u16(closes.len() as u16);
                for c in closes {
                    w.put(&c.sender);
                    w.array(&c.instance.0);
                    w.u32(c.next);
                }
            }
        }
        w.into_bytes()
    }

    /// `SHA-256("sotto/v1/epoch-record-hash\0" || wire bytes of the record)`: how a following
    /// record and a history grant name this one.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(RECORD_HASH_LABEL);
        h.update(self.to_wire());
        h.finalize().into()
    }

    /// The counter at which `sender`'s chain of installation `instance` ended in the epoch this
    /// record closes: 0 (nothing) for a chain the close does not list, `None` if the record does
    /// not state the end. An unlisted installation of the author's own device is not stated: a
    /// restored installation does not know how far its predecessor got.
    pub fn closed_at(&self, sender: &DeviceId, instance: &Instance) -> Option<u32> {
        let closes = self.closes.as_ref()?;
        match closes.binary_search_by(|c| (&c.sender, &c.instance).cmp(&(sender, instance))) {
            Ok(i) => closes.get(i).map(|c| c.next),
            Err(_) if *sender == self.author => None,
            Err(_) => Some(0),
        }
    }

    /// Checks that this record follows `previous`: it names that record's hash, has a higher
    /// epoch number, and names a team head no earlier than it (its author verified `previous`,
    /// so its chain reached that head).
    pub fn follows(&self, previous: &EpochRecord) -> Result<()> {
        if self.previous != previous.hash()
            || self.epoch <= previous.epoch
            || self.team_seq < previous.team_seq
            || self.conversation != previous.conversation
        {
            return Err(EpochError::Predecessor.into());
        }
        Ok(())
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
    /// visitor device. `after` is the newest accepted record with how far each of its durable
    /// sender chains got (`None` opens the conversation, epoch 0). A visitor calls this only
    /// after checking a fresh head attestation
    /// ([`HeadAttestation::check_fresh`](crate::team::attestation::HeadAttestation::check_fresh)).
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        rng: &mut impl rand_core::CryptoRng,
        author: &Device,
        team: &TeamState,
        conversation: ConversationId,
        epoch: u32,
        after: Option<(&EpochRecord, Option<Vec<SenderClose>>)>,
        visitor_devices: Vec<DeviceRecord>,
        now: u64,
    ) -> Result<(EpochRecord, SecretBytes<32>)> {
        let (generation, team_key) = team.current_key().ok_or(EpochError::NoKey)?;
        if visitor_devices.is_empty() || visitor_devices.len() > MAX_VISITOR_DEVICES {
            return Err(EpochError::VisitorSet.into());
        }
        let (previous, given) = match after {
            None if epoch == 0 => ([0; 32], None),
            Some((previous, closes)) if epoch > previous.epoch => (previous.hash(), closes),
            _ => return Err(EpochError::Predecessor.into()),
        };
        // Canonical order, one entry per chain (the furthest, if given twice), built by
        // insertion rather than a sort: the browser package pays for every sort instantiation.
        let closes = given.map(|given| {
            let mut closes: Vec<SenderClose> = Vec::with_capacity(given.len());
            for c in given {
                match closes
                    .binary_search_by(|k| (&k.sender, &k.instance).cmp(&(&c.sender, &c.instance)))
                {
                    Ok(i) => {
                        if let Some(k) = closes.get_mut(i) {
                            k.next = k.next.max(c.next);
                        }
                    }
                    Err(i) => closes.insert(i, c),
                }
            }
            closes
        });
        if closes.as_ref().is_some_and(|c| c.len() > MAX_CLOSES) {
            return Err(EpochError::Predecessor.into());
        }
        let secret = SecretBytes::<32>::random(rng);
        let mut record = EpochRecord {
            conversation,
            epoch,
            previous,
            team: team.team(),
            team_seq: team.seq(),
            team_head: team.head(),
            generation,
            author: author.id(),
            created_at: now,
            visitor_devices,
            closes,
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

    /// Checks a received record against the receiver's verified chain at `now` and the visitor
    /// devices of the record it follows (`None` for the record that opens the conversation, which
    /// must be epoch 0 with no predecessor). Refuses a record that names a head not on our chain
    /// (fork) or beyond it (fetch first), that is sealed to another generation than the one
    /// current at the head it names, whose author could not read at that head, that changes the
    /// visitor devices without a visitor's signature, or that claims a time in the future. Whether
    /// it follows its predecessor is [`EpochRecord::follows`]; what to do with a record by a
    /// device removed since ([`EpochAuthor::Former`]) is the caller's (PROTOCOL §7.9).
    pub fn verify(
        &self,
        team: &TeamState,
        known_visitors: Option<&[DeviceRecord]>,
        now: u64,
    ) -> Result<VerifiedEpoch> {
        if self.team != team.team() {
            return Err(EpochError::WrongTeam.into());
        }
        let opens = self.epoch == 0 && self.previous == [0; 32] && self.closes.is_none();
        if opens != known_visitors.is_none() {
            return Err(EpochError::Predecessor.into());
        }
        if self.created_at > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(EpochError::FromFuture.into());
        }
        let closes = self.closes.as_deref().unwrap_or_default();
        if closes.len() > MAX_CLOSES
            || closes.windows(2).any(|w| {
                w.first().map(|c| (&c.sender, &c.instance))
                    >= w.get(1).map(|c| (&c.sender, &c.instance))
            })
        {
            return Err(EpochError::Predecessor.into());
        }
        let warning = match team.head_relation(self.team_seq, &self.team_head) {
            HeadRelation::Current => None,
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
        // Sealed to the generation of the head it names: a record naming an old head and a
        // newer generation is malformed, one naming the current head and an old generation is
        // sealed to a key a removed member may hold.
        let generation = team
            .generation_at(self.team_seq)
            .ok_or(EpochError::ChainBehind)?;
        if self.generation < generation {
            return Err(EpochError::StaleGeneration.into());
        }
        if self.generation > generation {
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
        let (author, author_key) = match (visitor_author, team.device(&self.author)) {
            (Some(v), _) => (EpochAuthor::Visitor, *v.identity()),
            (None, Some(member)) => {
                let readable = team
                    .member_of(&self.author)
                    .is_some_and(|(_, role)| role.can_read());
                if !readable || member.kind() != DeviceKind::Member {
                    return Err(EpochError::UnknownAuthor.into());
                }
                (EpochAuthor::Member, *member.identity())
            }
            // A device removed since may have written it while it was active: the head it names
            // must come before the link that removed it. It may also have written it after, with
            // the relay's help, naming an old head: the caller decides (EpochAuthor::Former).
            (None, None) => match team.former(&self.author) {
                Some(former)
                    if self.team_seq < former.removed_at
                        && former.role.can_read()
                        && former.record.kind() == DeviceKind::Member =>
                {
                    (EpochAuthor::Former, *former.record.identity())
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
        Ok(VerifiedEpoch { author, warning })
    }

    /// Checks only the signature, with the author's key if this receiver knows it (a listed
    /// visitor device, or a member device of its chain, active or removed since): `None` when it
    /// does not. For a record that cannot be judged yet (it names links the relay does not
    /// serve), a failed signature already decides: nobody signed it.
    pub fn check_signature(&self, team: &TeamState) -> Option<Result<()>> {
        let key = match self.visitor_devices.iter().find(|d| d.id() == self.author) {
            Some(v) => *v.identity(),
            None => match team.device(&self.author) {
                Some(d) => *d.identity(),
                None => *team.former(&self.author)?.record.identity(),
            },
        };
        Some(key.verify(
            SignatureContext::EpochRecord,
            &self.signed_bytes(),
            &self.signature,
        ))
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
        let previous = r.array()?;
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
        let closes = match r.u8()? {
            0 => None,
            1 => {
                let c = r.count_u16(MAX_CLOSES, CLOSE_LEN)?;
                Some(
                    (0..c)
                        .map(|_| {
                            Ok(SenderClose {
                                sender: r.get()?,
                                instance: Instance(r.array()?),
                                next: r.u32()?,
                            })
                        })
                        .collect::<Result<Vec<_>>>()?,
                )
            }
            _ => return Err(crate::error::DecodeError::UnknownTag.into()),
        };
        let team_sealed = decode_sealed(r)?;
        let m = r.count_u16(MAX_VISITOR_DEVICES, 36)?;
        let visitor_sealed = (0..m)
            .map(|_| decode_sealed(r))
            .collect::<Result<Vec<_>>>()?;
        let signature = Signature::from_bytes(r.array()?);
        Ok(EpochRecord {
            conversation,
            epoch,
            previous,
            team,
            team_seq,
            team_head,
            generation,
            author,
            created_at,
            visitor_devices,
            closes,
            team_sealed,
            visitor_sealed,
            signature,
        })
    }
}

impl WireObject for EpochRecord {
    const OBJECT_TYPE: ObjectType = ObjectType::EpochRecord;
}
