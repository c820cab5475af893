//! Devices: identity, key-agreement keys and their public records (DESIGN 4.2).
//!
//! A device's identity is an Ed25519 key; its [`DeviceId`] is a hash of that public key. Its
//! X25519 key-agreement key (the key teams seal their secrets to) is certified by the identity
//! key in a [`KeyAgreementRecord`] and can be rotated: each rotation increments a generation.

use core::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::codec::{Decode, Encode, Reader, Writer};
use crate::crypto::agreement::{AgreementPublicKey, AgreementSecret};
use crate::crypto::secret::SecretBytes;
use crate::crypto::sign::{Signature, SignatureContext, SigningKey, VerifyingKey};
use crate::error::DecodeError;
use crate::wire::{ObjectType, WireObject};
use crate::{Error, Result};

/// Label hashed in front of the identity key to make a device id.
const DEVICE_ID_LABEL: &[u8] = b"sotto/v1/device-id\0";

/// What a device is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// A team member's device: agent, admin, owner, viewer, billing or bot.
    Member,
    /// A visitor's browser or app.
    Visitor,
    /// A device derived from an owner's recovery secret, able to add devices when all others
    /// are lost.
    Recovery,
}

impl DeviceKind {
    /// The kind's byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            DeviceKind::Member => 1,
            DeviceKind::Visitor => 2,
            DeviceKind::Recovery => 3,
        }
    }

    /// The kind for a wire byte.
    pub fn from_byte(b: u8) -> Result<Self> {
        match b {
            1 => Ok(DeviceKind::Member),
            2 => Ok(DeviceKind::Visitor),
            3 => Ok(DeviceKind::Recovery),
            _ => Err(DecodeError::UnknownTag.into()),
        }
    }
}

/// A device's identifier: `SHA-256("sotto/v1/device-id\0" || identity public key)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub [u8; 32]);

impl DeviceId {
    /// The id of the device with this identity key.
    pub fn from_identity(identity: &VerifyingKey) -> Self {
        let mut h = Sha256::new();
        h.update(DEVICE_ID_LABEL);
        h.update(identity.as_bytes());
        DeviceId(h.finalize().into())
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

impl Encode for DeviceId {
    fn encode(&self, w: &mut Writer) {
        w.array(&self.0);
    }
}

impl Decode for DeviceId {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(DeviceId(r.array()?))
    }
}

/// A key-agreement public key certified by a device's identity key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAgreementRecord {
    /// The device whose key this is.
    pub device: DeviceId,
    /// What the device is for. Signed here so that no copy of a record can be relabelled (a
    /// visitor device passed off as a member device, or the reverse).
    pub kind: DeviceKind,
    /// Incremented on every rotation; the highest generation is the current key.
    pub generation: u32,
    /// When the key was made, in seconds since the Unix epoch (as given by the caller).
    pub created_at: u64,
    /// The X25519 public key.
    pub public_key: AgreementPublicKey,
    /// The identity key's signature over the fields above.
    pub signature: Signature,
}

impl KeyAgreementRecord {
    fn signed_bytes(
        device: &DeviceId,
        kind: DeviceKind,
        generation: u32,
        created_at: u64,
        key: &AgreementPublicKey,
    ) -> Vec<u8> {
        let mut w = Writer::with_capacity(77);
        w.put(device);
        w.u8(kind.to_byte());
        w.u32(generation);
        w.u64(created_at);
        w.array(key.as_bytes());
        w.into_bytes()
    }

    fn sign(
        signing: &SigningKey,
        kind: DeviceKind,
        generation: u32,
        created_at: u64,
        public_key: AgreementPublicKey,
    ) -> Self {
        let device = DeviceId::from_identity(&signing.verifying_key());
        let msg = Self::signed_bytes(&device, kind, generation, created_at, &public_key);
        KeyAgreementRecord {
            device,
            kind,
            generation,
            created_at,
            public_key,
            signature: signing.sign(SignatureContext::KeyAgreement, &msg),
        }
    }

    /// Checks that the record names the device of `identity` and carries its valid signature.
    pub fn verify(&self, identity: &VerifyingKey) -> Result<()> {
        if self.device != DeviceId::from_identity(identity) {
            return Err(Error::KeyRecordMismatch);
        }
        let msg = Self::signed_bytes(
            &self.device,
            self.kind,
            self.generation,
            self.created_at,
            &self.public_key,
        );
        identity.verify(SignatureContext::KeyAgreement, &msg, &self.signature)
    }
}

impl Encode for KeyAgreementRecord {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.device);
        w.u8(self.kind.to_byte());
        w.u32(self.generation);
        w.u64(self.created_at);
        w.array(self.public_key.as_bytes());
        w.array(self.signature.as_bytes());
    }
}

impl Decode for KeyAgreementRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(KeyAgreementRecord {
            device: r.get()?,
            kind: DeviceKind::from_byte(r.u8()?)?,
            generation: r.u32()?,
            created_at: r.u64()?,
            public_key: AgreementPublicKey::from_bytes(r.array()?),
            signature: Signature::from_bytes(r.array()?),
        })
    }
}

impl WireObject for KeyAgreementRecord {
    const OBJECT_TYPE: ObjectType = ObjectType::KeyAgreementRecord;
}

/// A device's public keys, as registered with the relay and named in team chains.
///
/// Self-certifying: decoding checks that the key-agreement record is signed by the identity key
/// and certifies the record's kind, so a `DeviceRecord` value always holds a valid certification
/// of every field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    kind: DeviceKind,
    identity: VerifyingKey,
    key_agreement: KeyAgreementRecord,
}

impl DeviceRecord {
    /// Builds a record, checking the certification, including that it certifies `kind`.
    pub fn new(
        kind: DeviceKind,
        identity: VerifyingKey,
        key_agreement: KeyAgreementRecord,
    ) -> Result<Self> {
        key_agreement.verify(&identity)?;
        if key_agreement.kind != kind {
            return Err(Error::KeyRecordMismatch);
        }
        Ok(DeviceRecord {
            kind,
            identity,
            key_agreement,
        })
    }

    /// The device's id.
    pub fn id(&self) -> DeviceId {
        self.key_agreement.device
    }

    /// The device's kind.
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// The identity (signature verification) key.
    pub fn identity(&self) -> &VerifyingKey {
        &self.identity
    }

    /// The certified key-agreement key.
    pub fn key_agreement(&self) -> &KeyAgreementRecord {
        &self.key_agreement
    }

    /// Replaces the key-agreement record with a newer one from a rotation. Fails if the record is
    /// not signed by this device or is not newer than the current one.
    pub fn rotate_to(&mut self, record: KeyAgreementRecord) -> Result<()> {
        record.verify(&self.identity)?;
        if record.generation <= self.key_agreement.generation || record.kind != self.kind {
            return Err(Error::KeyRecordMismatch);
        }
        self.key_agreement = record;
        Ok(())
    }
}

impl Encode for DeviceRecord {
    fn encode(&self, w: &mut Writer) {
        w.u8(self.kind.to_byte());
        w.array(self.identity.as_bytes());
        w.put(&self.key_agreement);
    }
}

impl Decode for DeviceRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let kind = DeviceKind::from_byte(r.u8()?)?;
        let identity = VerifyingKey::from_bytes(&r.array()?)?;
        let key_agreement = r.get()?;
        DeviceRecord::new(kind, identity, key_agreement)
    }
}

impl WireObject for DeviceRecord {
    const OBJECT_TYPE: ObjectType = ObjectType::DeviceRecord;
}

/// A device with its private keys. Zeroized on drop; redacted in Debug.
#[derive(Clone)]
pub struct Device {
    kind: DeviceKind,
    signing: SigningKey,
    agreement: AgreementSecret,
    record: KeyAgreementRecord,
}

impl Device {
    /// A new device with fresh keys; its first key-agreement key has generation 0.
    pub fn generate(kind: DeviceKind, rng: &mut impl rand_core::CryptoRng, now: u64) -> Self {
        let signing = SigningKey::generate(rng);
        let agreement = AgreementSecret::generate(rng);
        Self::from_keys(kind, signing, agreement, 0, now)
    }

    /// A device from existing keys (for deterministic derivations such as recovery devices).
    pub fn from_keys(
        kind: DeviceKind,
        signing: SigningKey,
        agreement: AgreementSecret,
        generation: u32,
        created_at: u64,
    ) -> Self {
        let record = KeyAgreementRecord::sign(
            &signing,
            kind,
            generation,
            created_at,
            agreement.public_key(),
        );
        Device {
            kind,
            signing,
            agreement,
            record,
        }
    }

    /// The device's id.
    pub fn id(&self) -> DeviceId {
        self.record.device
    }

    /// The device's kind.
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// The public record to register and to put in team chains.
    pub fn record(&self) -> DeviceRecord {
        DeviceRecord {
            kind: self.kind,
            identity: self.signing.verifying_key(),
            key_agreement: self.record.clone(),
        }
    }

    /// Signs `message` under `context` with the identity key.
    pub fn sign(&self, context: SignatureContext, message: &[u8]) -> Signature {
        self.signing.sign(context, message)
    }

    /// The current key-agreement secret (the HPKE recipient key).
    pub fn agreement_secret(&self) -> &AgreementSecret {
        &self.agreement
    }

    /// Replaces the key-agreement key with a fresh one of the next generation and returns the new
    /// signed record together with the previous secret, which the caller keeps only as long as
    /// items sealed to it may still arrive.
    pub fn rotate_key_agreement(
        &mut self,
        rng: &mut impl rand_core::CryptoRng,
        now: u64,
    ) -> Result<(KeyAgreementRecord, AgreementSecret)> {
        let generation = self
            .record
            .generation
            .checked_add(1)
            .ok_or(Error::InvalidLength)?;
        let fresh = AgreementSecret::generate(rng);
        self.record = KeyAgreementRecord::sign(
            &self.signing,
            self.kind,
            generation,
            now,
            fresh.public_key(),
        );
        let previous = core::mem::replace(&mut self.agreement, fresh);
        Ok((self.record.clone(), previous))
    }

    /// The device's secrets as a wire object, for the (encrypted) client store.
    pub fn export_secrets(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(3 + SECRETS_BODY_LEN);
        crate::wire::write_header(&mut w, ObjectType::DeviceSecrets);
        w.u8(self.kind.to_byte());
        w.array(self.signing.to_seed().expose());
        w.array(self.agreement.to_secret_bytes().expose());
        w.u32(self.record.generation);
        w.u64(self.record.created_at);
        Zeroizing::new(w.into_bytes())
    }

    /// Restores a device from [`Device::export_secrets`]. The record is re-signed from the keys
    /// (Ed25519 signatures are deterministic, so it is the same record).
    pub fn import_secrets(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        crate::wire::read_header(&mut r, ObjectType::DeviceSecrets)?;
        let kind = DeviceKind::from_byte(r.u8()?)?;
        let seed = SecretBytes::new(r.array()?);
        let agreement = SecretBytes::new(r.array()?);
        let generation = r.u32()?;
        let created_at = r.u64()?;
        r.finish()?;
        Ok(Self::from_keys(
            kind,
            SigningKey::from_seed(&seed),
            AgreementSecret::from_secret_bytes(&agreement),
            generation,
            created_at,
        ))
    }
}

/// Body length of an exported [`Device`]: kind, two 32-byte secrets, generation, time.
const SECRETS_BODY_LEN: usize = 1 + 32 + 32 + 4 + 8;

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("id", &self.id())
            .field("kind", &self.kind)
            .field("generation", &self.record.generation)
            .field("keys", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_is_self_certifying() {
        let mut rng = crate::test_rng(10);
        let device = Device::generate(DeviceKind::Member, &mut rng, 1_700_000_000);
        let record = device.record();
        let bytes = record.to_wire();
        assert_eq!(DeviceRecord::from_wire(&bytes).unwrap(), record);
        assert_eq!(record.id(), DeviceId::from_identity(record.identity()));

        // Any flipped bit in the certified part is caught when decoding.
        for i in 3..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 0x80;
            assert_ne!(
                DeviceRecord::from_wire(&t).ok(),
                Some(record.clone()),
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_record_signed_by_another_device_is_rejected() {
        let mut rng = crate::test_rng(11);
        let a = Device::generate(DeviceKind::Member, &mut rng, 1);
        let b = Device::generate(DeviceKind::Member, &mut rng, 1);
        let forged = DeviceRecord::new(
            DeviceKind::Member,
            *a.record().identity(),
            b.record().key_agreement().clone(),
        );
        assert_eq!(forged.unwrap_err(), Error::KeyRecordMismatch);
    }

    #[test]
    fn a_relabelled_kind_is_refused() {
        let mut rng = crate::test_rng(14);
        let mut visitor = Device::generate(DeviceKind::Visitor, &mut rng, 1);
        let record = visitor.record();
        // The outer kind byte of a device record, or the one inside the signed key record.
        let mut outer = record.to_wire();
        outer[3] = DeviceKind::Member.to_byte();
        assert_eq!(
            DeviceRecord::from_wire(&outer).unwrap_err(),
            Error::KeyRecordMismatch
        );
        let mut inner = record.key_agreement().clone();
        inner.kind = DeviceKind::Member;
        assert_eq!(
            DeviceRecord::new(DeviceKind::Member, *record.identity(), inner.clone()).unwrap_err(),
            Error::BadSignature
        );
        // A rotation cannot change the kind either.
        let mut public = visitor.record();
        let (mut next, _) = visitor.rotate_key_agreement(&mut rng, 2).unwrap();
        public.clone().rotate_to(next.clone()).unwrap();
        next.kind = DeviceKind::Member;
        assert!(public.rotate_to(next).is_err());
        let mut relabelled = visitor.record();
        assert_eq!(
            relabelled.rotate_to(
                Device::from_keys(
                    DeviceKind::Member,
                    SigningKey::from_seed(&visitor.signing.to_seed()),
                    AgreementSecret::generate(&mut rng),
                    9,
                    3,
                )
                .record()
                .key_agreement()
                .clone()
            ),
            Err(Error::KeyRecordMismatch)
        );
    }

    #[test]
    fn rotation_advances_generation_and_old_records_cannot_replace_new_ones() {
        let mut rng = crate::test_rng(12);
        let mut device = Device::generate(DeviceKind::Visitor, &mut rng, 5);
        let mut public = device.record();
        let first = public.key_agreement().clone();
        let (next, previous) = device.rotate_key_agreement(&mut rng, 6).unwrap();
        assert_eq!(next.generation, 1);
        assert_eq!(previous.public_key(), first.public_key);
        assert_ne!(next.public_key, first.public_key);
        public.rotate_to(next.clone()).unwrap();
        assert_eq!(public.rotate_to(first), Err(Error::KeyRecordMismatch));
        assert_eq!(public.rotate_to(next), Err(Error::KeyRecordMismatch));
    }

    #[test]
    fn secrets_round_trip_and_debug_is_redacted() {
        let mut rng = crate::test_rng(13);
        let mut device = Device::generate(DeviceKind::Member, &mut rng, 7);
        device.rotate_key_agreement(&mut rng, 8).unwrap();
        let secrets = device.export_secrets();
        let back = Device::import_secrets(&secrets).unwrap();
        assert_eq!(back.record(), device.record());
        assert!(Device::import_secrets(&secrets[..secrets.len() - 1]).is_err());
        let shown = format!("{device:?}");
        assert!(shown.contains("redacted"));
        let seed_hex: String = device.signing.to_seed().expose()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!shown.contains(&seed_hex));
    }
}
