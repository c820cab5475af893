//! History grants: the team re-seals a verified customer's conversation history to the
//! customer's new visitor device (DESIGN 4.4, "Visitor identity").
//!
//! A visitor device that is lost takes the epoch secrets sealed to it along. When the company's
//! backend vouches for the new device as the same customer (an [`IdentityAssertion`] for it, and
//! the assertion the conversation was verified with), a member device that reads the team's
//! history re-seals each epoch secret to the new device with HPKE. Each entry names the hash of
//! the epoch record it opens, and the recipient still verifies every record against the team
//! chain: the grant only carries secrets, never decides who wrote what.

use super::ConversationId;
use super::epoch::EpochRecord;
use super::identity::IdentityAssertion;
use crate::codec::{Decode, Encode, Reader, Writer};
use crate::crypto::hpke::{self, HpkeSealed};
use crate::crypto::secret::SecretBytes;
use crate::crypto::sign::{Signature, SignatureContext};
use crate::device::{Device, DeviceId, DeviceKind, DeviceRecord};
use crate::error::EpochError;
use crate::team::{TeamId, TeamState};
use crate::wire::{self, ObjectType, WireObject};
use crate::{Error, Result};

/// Most epochs one grant re-seals; a longer history travels in several grants.
pub const MAX_GRANT_ENTRIES: usize = 1024;
/// Ciphertext of a sealed 32-byte secret: the secret and its tag.
const SEALED_SECRET_LEN: usize = 48;
const GRANT_INFO_LABEL: &[u8] = b"sotto/v1/history-grant\0";

/// `SHA-256("sotto/v1/epoch-record-hash\0" || wire bytes of the record)`
/// ([`EpochRecord::hash`]).
pub fn epoch_record_hash(record: &EpochRecord) -> [u8; 32] {
    record.hash()
}

/// One re-sealed epoch secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantEntry {
    /// The epoch.
    pub epoch: u32,
    /// [`epoch_record_hash`] of the epoch's record.
    pub record_hash: [u8; 32],
    /// The epoch secret sealed to the recipient device.
    pub sealed: HpkeSealed,
}

/// A member device's re-sealing of a conversation's epoch secrets to a customer's new device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryGrant {
    /// The team.
    pub team: TeamId,
    /// The conversation whose history is granted.
    pub conversation: ConversationId,
    /// The member device that re-sealed.
    pub author: DeviceId,
    /// The author's clock, in seconds since the Unix epoch.
    pub created_at: u64,
    /// The customer's new visitor device.
    pub recipient: DeviceRecord,
    /// The backend's assertion that `recipient` is the customer.
    pub assertion: IdentityAssertion,
    /// The assertion the conversation's visitor device was verified with: same customer.
    pub original: IdentityAssertion,
    /// The re-sealed secrets, in increasing epoch order.
    pub entries: Vec<GrantEntry>,
    /// The author's signature over everything above.
    pub signature: Signature,
}

impl HistoryGrant {
    /// Everything except the entries and the signature: what each sealed secret is bound to.
    fn context(&self) -> Vec<u8> {
        let mut w = Writer::new();
        wire::write_header(&mut w, ObjectType::HistoryGrant);
        w.put(&self.team);
        w.put(&self.conversation);
        w.put(&self.author);
        w.u64(self.created_at);
        w.put(&self.recipient);
        w.put(&self.assertion);
        w.put(&self.original);
        w.into_bytes()
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.array(&self.context());
        encode_entries(&mut w, &self.entries);
        w.into_bytes()
    }

    fn info(&self, epoch: u32) -> Vec<u8> {
        let mut info = Vec::with_capacity(GRANT_INFO_LABEL.len() + 16 + 4 + 32);
        info.extend_from_slice(GRANT_INFO_LABEL);
        info.extend_from_slice(&self.conversation.0);
        info.extend_from_slice(&epoch.to_be_bytes());
        info.extend_from_slice(&self.recipient.id().0);
        info
    }

    fn aad(context: &[u8], epoch: u32, record_hash: &[u8; 32]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(context.len() + 4 + 32);
        aad.extend_from_slice(context);
        aad.extend_from_slice(&epoch.to_be_bytes());
        aad.extend_from_slice(record_hash);
        aad
    }

    /// Re-seals `epochs` (each record with the secret the author opened from it) to
    /// `recipient`. The author must be an active member device whose role reads history; the
    /// two assertions must come from one of the team's integration keys and name the same
    /// customer, `assertion` must be valid now for `recipient`, and every record must belong to
    /// the conversation and list the device `original` vouched for.
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        rng: &mut impl rand_core::CryptoRng,
        author: &Device,
        team: &TeamState,
        conversation: ConversationId,
        recipient: DeviceRecord,
        assertion: IdentityAssertion,
        original: IdentityAssertion,
        epochs: &[(&EpochRecord, &SecretBytes<32>)],
        now: u64,
    ) -> Result<HistoryGrant> {
        if epochs.is_empty() || epochs.len() > MAX_GRANT_ENTRIES {
            return Err(Error::InvalidLength);
        }
        check_author(team, &author.id())?;
        let mut grant = HistoryGrant {
            team: team.team(),
            conversation,
            author: author.id(),
            created_at: now,
            recipient,
            assertion,
            original,
            entries: Vec::with_capacity(epochs.len()),
            signature: Signature::from_bytes([0; 64]),
        };
        grant.check_subjects(team, now)?;
        let context = grant.context();
        let mut last_epoch = None;
        for (record, secret) in epochs {
            grant.check_record(record)?;
            if last_epoch.is_some_and(|last| record.epoch <= last) {
                return Err(EpochError::VisitorSet.into());
            }
            last_epoch = Some(record.epoch);
            let record_hash = epoch_record_hash(record);
            let sealed = hpke::seal_base(
                rng,
                &grant.recipient.key_agreement().public_key,
                &grant.info(record.epoch),
                &Self::aad(&context, record.epoch, &record_hash),
                secret.expose(),
            )?;
            grant.entries.push(GrantEntry {
                epoch: record.epoch,
                record_hash,
                sealed,
            });
        }
        grant.signature = author.sign(SignatureContext::HistoryGrant, &grant.signed_bytes());
        Ok(grant)
    }

    /// Checks a received grant for `recipient` against the verified chain at `now`: the
    /// author's signature and role, the assertions, and that the grant is for this device.
    pub fn verify(&self, team: &TeamState, recipient: &Device, now: u64) -> Result<()> {
        if self.recipient.id() != recipient.id() || self.recipient != recipient.record() {
            return Err(EpochError::Unvouched.into());
        }
        let author_key = *check_author(team, &self.author)?.identity();
        author_key.verify(
            SignatureContext::HistoryGrant,
            &self.signed_bytes(),
            &self.signature,
        )?;
        self.check_subjects(team, now)?;
        let ordered = self
            .entries
            .windows(2)
            .all(|pair| matches!(pair, [a, b] if a.epoch < b.epoch));
        if self.entries.is_empty() || !ordered {
            return Err(EpochError::VisitorSet.into());
        }
        Ok(())
    }

    /// The secret of `record`'s epoch, for the recipient, after [`HistoryGrant::verify`]
    /// accepted the grant. The caller verifies the record itself against the chain
    /// (history freshness) as for any epoch record.
    pub fn open(&self, recipient: &Device, record: &EpochRecord) -> Result<SecretBytes<32>> {
        self.check_record(record)?;
        let record_hash = epoch_record_hash(record);
        let entry = self
            .entries
            .iter()
            .find(|e| e.epoch == record.epoch)
            .ok_or(EpochError::NoKey)?;
        if entry.record_hash != record_hash {
            return Err(EpochError::NoKey.into());
        }
        let plain = zeroize::Zeroizing::new(hpke::open_base(
            recipient.agreement_secret(),
            &entry.sealed,
            &self.info(record.epoch),
            &Self::aad(&self.context(), record.epoch, &record_hash),
        )?);
        SecretBytes::from_slice(&plain)
    }

    /// The recipient is a visitor device vouched for now, as the customer the conversation was
    /// verified for, by the team's integration keys.
    fn check_subjects(&self, team: &TeamState, now: u64) -> Result<()> {
        if self.team != team.team() || self.recipient.kind() != DeviceKind::Visitor {
            return Err(EpochError::Unvouched.into());
        }
        if self.assertion.check(team, &self.recipient.id(), now)? != Ok(()) {
            return Err(EpochError::Unvouched.into());
        }
        // The original assertion may have expired since; it must still be the team's, for the
        // same customer, and signed by one of its integration keys.
        let original_ok = self.original.check(team, &self.original.device, 0)?;
        if original_ok != Ok(())
            || self.original.customer_id != self.assertion.customer_id
            || self.original.device == self.recipient.id()
        {
            return Err(EpochError::Unvouched.into());
        }
        Ok(())
    }

    fn check_record(&self, record: &EpochRecord) -> Result<()> {
        let listed = record
            .visitor_devices
            .iter()
            .any(|d| d.id() == self.original.device);
        if record.conversation != self.conversation || record.team != self.team || !listed {
            return Err(EpochError::Unvouched.into());
        }
        Ok(())
    }
}

/// The author is an active member device whose role reads the team's history.
fn check_author<'t>(team: &'t TeamState, author: &DeviceId) -> Result<&'t DeviceRecord> {
    let reads_history = team
        .member_of(author)
        .is_some_and(|(_, role)| role.can_read_history(team.policy()));
    match team.device(author) {
        Some(record) if reads_history && record.kind() == DeviceKind::Member => Ok(record),
        _ => Err(EpochError::UnknownAuthor.into()),
    }
}

fn encode_entries(w: &mut Writer, entries: &[GrantEntry]) {
    w.u16(entries.len() as u16);
    for e in entries {
        w.u32(e.epoch);
        w.array(&e.record_hash);
        w.array(&e.sealed.enc);
        w.bytes_u32(&e.sealed.ciphertext);
    }
}

impl Encode for HistoryGrant {
    fn encode(&self, w: &mut Writer) {
        let context = self.context();
        // The context starts with the envelope header, which the body leaves out.
        w.array(context.get(3..).unwrap_or_default());
        encode_entries(w, &self.entries);
        w.array(self.signature.as_bytes());
    }
}

impl Decode for HistoryGrant {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let team = r.get()?;
        let conversation = r.get()?;
        let author = r.get()?;
        let created_at = r.u64()?;
        let recipient = r.get()?;
        let assertion = r.get()?;
        let original = r.get()?;
        // An entry is at least 4 + 32 + 32 + 4 bytes.
        let n = r.count_u16(MAX_GRANT_ENTRIES, 72)?;
        let entries = (0..n)
            .map(|_| {
                Ok(GrantEntry {
                    epoch: r.u32()?,
                    record_hash: r.array()?,
                    sealed: HpkeSealed {
                        enc: r.array()?,
                        ciphertext: r.bytes_u32(SEALED_SECRET_LEN)?.to_vec(),
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let signature = Signature::from_bytes(r.array()?);
        Ok(HistoryGrant {
            team,
            conversation,
            author,
            created_at,
            recipient,
            assertion,
            original,
            entries,
            signature,
        })
    }
}

impl WireObject for HistoryGrant {
    const OBJECT_TYPE: ObjectType = ObjectType::HistoryGrant;
}
