//! Ed25519 signatures (RFC 8032) with strict verification and domain separation.
//!
//! Protocol signatures are always made over `label || message`, where the label names the kind
//! of object signed (see [`SignatureContext`]); a signature on one kind of object can therefore
//! never be replayed as a signature on another. Verification is strict: non-canonical
//! signatures and small-order public keys are rejected, so signatures are not malleable.

use core::fmt;

use super::secret::SecretBytes;
use crate::{Error, Result};

/// What a signature is about. Each context has its own label, fixed by `docs/PROTOCOL.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureContext {
    /// A device's identity key certifying its key-agreement key.
    KeyAgreement,
    /// A link of a team chain, signed by its author device.
    ChainLink,
    /// A head attestation: a member device vouching for the team chain head at a time.
    HeadAttestation,
    /// A conversation epoch record, signed by the device that opened the epoch.
    EpochRecord,
    /// A conversation message, signed by its sender device.
    Message,
    /// A visitor identity assertion, signed by a team integration key.
    IdentityAssertion,
    /// A device answering a relay's authentication challenge.
    RelayAuth,
    /// A member device re-sealing a customer's history to the customer's new device.
    HistoryGrant,
    /// A team's freshness witness stating the chain head it verified, at a time.
    WitnessStatement,
    /// A visitor device or a manager's device deleting a conversation.
    ConversationDeletion,
}

impl SignatureContext {
    /// The domain-separation label signed in front of the message.
    pub fn label(self) -> &'static [u8] {
        match self {
            SignatureContext::KeyAgreement => b"sotto/v1/sig/key-agreement\0",
            SignatureContext::ChainLink => b"sotto/v1/sig/chain-link\0",
            SignatureContext::HeadAttestation => b"sotto/v1/sig/head-attestation\0",
            SignatureContext::EpochRecord => b"sotto/v1/sig/epoch-record\0",
            SignatureContext::Message => b"sotto/v1/sig/message\0",
            SignatureContext::IdentityAssertion => b"sotto/v1/sig/identity-assertion\0",
            SignatureContext::RelayAuth => b"sotto/v1/sig/relay-auth\0",
            SignatureContext::HistoryGrant => b"sotto/v1/sig/history-grant\0",
            SignatureContext::WitnessStatement => b"sotto/v1/sig/witness-statement\0",
            SignatureContext::ConversationDeletion => b"sotto/v1/sig/conversation-deletion\0",
        }
    }
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; 64]);

impl Signature {
    /// Wraps 64 bytes; their validity is checked on verification.
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Signature(bytes)
    }

    /// Wraps a slice, which must be 64 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        Ok(Signature(
            bytes.try_into().map_err(|_| Error::BadSignature)?,
        ))
    }

    /// The encoded signature.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

/// An Ed25519 public key, checked on construction: it must decode to a curve point that is not
/// of small order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl VerifyingKey {
    /// Decodes and validates a public key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| Error::InvalidPublicKey)?;
        if key.is_weak() {
            return Err(Error::InvalidPublicKey);
        }
        Ok(VerifyingKey(key))
    }

    /// Decodes a key from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidPublicKey)?;
        Self::from_bytes(&arr)
    }

    /// The encoded key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Verifies a protocol signature made with [`SigningKey::sign`] under the same context.
    pub fn verify(
        &self,
        context: SignatureContext,
        message: &[u8],
        signature: &Signature,
    ) -> Result<()> {
        let mut signed = Vec::with_capacity(context.label().len() + message.len());
        signed.extend_from_slice(context.label());
        signed.extend_from_slice(message);
        self.verify_unlabelled(&signed, signature)
    }

    /// Verifies a plain RFC 8032 signature over `message`, without a protocol label.
    ///
    /// This exists to check the primitive against external vectors; protocol code always uses
    /// [`VerifyingKey::verify`].
    pub fn verify_unlabelled(&self, message: &[u8], signature: &Signature) -> Result<()> {
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0
            .verify_strict(message, &sig)
            .map_err(|_| Error::BadSignature)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey(")?;
        for b in &self.as_bytes()[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

/// Verifies many protocol signatures made under one context as a single Ed25519 batch: all
/// valid, or [`Error::BadSignature`] without saying which (check one by one to find out).
///
/// Batch verification is not strict: a signer could craft a signature that passes here but
/// fails [`VerifyingKey::verify`]. Only the key's holder can do so; it never accepts a signature
/// made without the key.
pub fn verify_batch(
    context: SignatureContext,
    items: &[(&VerifyingKey, &[u8], &Signature)],
) -> Result<()> {
    let labelled: Vec<Vec<u8>> = items
        .iter()
        .map(|(_, message, _)| {
            let mut signed = Vec::with_capacity(context.label().len() + message.len());
            signed.extend_from_slice(context.label());
            signed.extend_from_slice(message);
            signed
        })
        .collect();
    let messages: Vec<&[u8]> = labelled.iter().map(Vec::as_slice).collect();
    let signatures: Vec<ed25519_dalek::Signature> = items
        .iter()
        .map(|(_, _, sig)| ed25519_dalek::Signature::from_bytes(&sig.0))
        .collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> = items.iter().map(|(key, _, _)| key.0).collect();
    ed25519_dalek::verify_batch(&messages, &signatures, &keys).map_err(|_| Error::BadSignature)
}

/// An Ed25519 signing key; zeroized on drop, redacted in Debug.
///
/// Besides the RFC 8032 seed it keeps the expanded secret (the clamped scalar and the nonce
/// prefix, `SHA-512(seed)`), so a signature costs one hash of the seed less: every message is
/// signed, and that hash is a measurable share of sealing a short one.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    expanded: ed25519_dalek::hazmat::ExpandedSecretKey,
}

impl Clone for SigningKey {
    fn clone(&self) -> Self {
        SigningKey::from_dalek(self.key.clone())
    }
}

impl SigningKey {
    fn from_dalek(key: ed25519_dalek::SigningKey) -> Self {
        let expanded = ed25519_dalek::hazmat::ExpandedSecretKey::from(key.as_bytes());
        SigningKey { key, expanded }
    }

    /// A fresh random key.
    pub fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        let seed = SecretBytes::<32>::random(rng);
        Self::from_seed(&seed)
    }

    /// The key for a 32-byte seed (RFC 8032 private key).
    pub fn from_seed(seed: &SecretBytes<32>) -> Self {
        SigningKey::from_dalek(ed25519_dalek::SigningKey::from_bytes(seed.expose()))
    }

    /// The 32-byte seed, for storage.
    pub fn to_seed(&self) -> SecretBytes<32> {
        SecretBytes::new(self.key.to_bytes())
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.key.verifying_key())
    }

    /// Signs `label(context) || message`.
    pub fn sign(&self, context: SignatureContext, message: &[u8]) -> Signature {
        use ed25519_dalek::Digest;
        // The label and the message are hashed in place, without a copy; the expanded key is
        // derived from the seed (never chosen), which is what makes the hazmat call safe.
        let signed = ed25519_dalek::hazmat::raw_sign_byupdate::<ed25519_dalek::Sha512, _>(
            &self.expanded,
            |h| {
                h.update(context.label());
                h.update(message);
                Ok(())
            },
            &self.key.verifying_key(),
        );
        match signed {
            Ok(sig) => Signature(sig.to_bytes()),
            // Signing by update cannot fail with a closure that cannot fail; the fallback keeps
            // this total without a panic.
            Err(_) => Signature([0; 64]),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_bound_to_key_message_and_context() {
        let mut rng = crate::test_rng(3);
        let key = SigningKey::generate(&mut rng);
        let other = SigningKey::generate(&mut rng);
        let sig = key.sign(SignatureContext::KeyAgreement, b"hello");
        let vk = key.verifying_key();
        assert!(
            vk.verify(SignatureContext::KeyAgreement, b"hello", &sig)
                .is_ok()
        );
        assert_eq!(
            vk.verify(SignatureContext::KeyAgreement, b"hellO", &sig),
            Err(Error::BadSignature)
        );
        assert!(
            other
                .verifying_key()
                .verify(SignatureContext::KeyAgreement, b"hello", &sig)
                .is_err()
        );
        // Without the label the same signature is not valid: contexts separate domains.
        assert!(vk.verify_unlabelled(b"hello", &sig).is_err());
    }

    #[test]
    fn small_order_public_key_is_rejected() {
        // The identity point (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            VerifyingKey::from_bytes(&identity),
            Err(Error::InvalidPublicKey)
        );
    }

    #[test]
    fn seed_round_trips_and_debug_is_redacted() {
        let mut rng = crate::test_rng(4);
        let key = SigningKey::generate(&mut rng);
        let again = SigningKey::from_seed(&key.to_seed());
        assert_eq!(key.verifying_key(), again.verifying_key());
        assert!(format!("{key:?}").contains("redacted"));
    }
}
