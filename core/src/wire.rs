//! The envelope of every object that crosses the network or goes to a store:
//! `version (u8) || suite (u8) || object type (u8) || body`.
//!
//! Version and suite come first so a reader can refuse what it does not speak before it parses
//! anything else; unknown values are typed errors, never guesses.

use crate::Result;
use crate::codec::{Decode, Encode, Reader, Writer};
use crate::error::DecodeError;

/// The wire version this implementation writes and reads.
pub const WIRE_VERSION: u8 = 1;

/// A cipher suite: the set of algorithms an object's keys and ciphertexts are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suite {
    /// Suite 1: X25519, HKDF-SHA256, ChaCha20-Poly1305 / XChaCha20-Poly1305, Ed25519, and HPKE
    /// DHKEM(X25519, HKDF-SHA256) + HKDF-SHA256 + ChaCha20-Poly1305.
    X25519ChaChaEd25519,
}

impl Suite {
    /// The suite's identifier on the wire.
    pub fn id(self) -> u8 {
        match self {
            Suite::X25519ChaChaEd25519 => 1,
        }
    }

    /// The suite for an identifier. Suite 2 (hybrid X-Wing key wraps) is reserved and, like any
    /// other unknown id, is [`DecodeError::UnknownSuite`] until it is implemented.
    pub fn from_id(id: u8) -> Result<Self> {
        match id {
            1 => Ok(Suite::X25519ChaChaEd25519),
            other => Err(DecodeError::UnknownSuite(other).into()),
        }
    }
}

/// The type of a wire object, the third byte of its envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ObjectType {
    /// [`DeviceRecord`](crate::device::DeviceRecord): a device's public keys.
    DeviceRecord = 1,
    /// [`KeyAgreementRecord`](crate::device::KeyAgreementRecord): a signed key-agreement key.
    KeyAgreementRecord = 2,
    /// A device's private keys, for its store ([`Device::export_secrets`](crate::device::Device::export_secrets)).
    DeviceSecrets = 3,
    /// [`HpkeSealed`](crate::crypto::hpke::HpkeSealed): an HPKE ciphertext.
    HpkeSealed = 4,
    /// A team chain link.
    ChainLink = 5,
    /// A signed team chain head attestation.
    HeadAttestation = 6,
    /// A conversation epoch record. Type 7 was the first layout, without the predecessor and
    /// the close; it is no longer read, so a stored or served one fails as
    /// `decode_unexpected_object` rather than misparsing.
    EpochRecord = 14,
    /// A conversation message.
    Message = 8,
    /// A visitor identity assertion.
    IdentityAssertion = 9,
    /// A sealed client backup (`sotto-client`'s `backup` module).
    Backup = 10,
    /// A history grant: a conversation's epoch secrets re-sealed to a customer's new device.
    HistoryGrant = 11,
    /// A freshness witness's signed statement of a team's chain head (PROTOCOL §6.8).
    WitnessStatement = 12,
    /// A signed deletion of a conversation (PROTOCOL §7.13).
    ConversationDeletion = 13,
}

/// An object that travels in a wire envelope.
pub trait WireObject: Encode + Decode {
    /// Its object type.
    const OBJECT_TYPE: ObjectType;

    /// `version || suite || type || body`.
    fn to_wire(&self) -> Vec<u8> {
        let mut w = Writer::new();
        write_header(&mut w, Self::OBJECT_TYPE);
        self.encode(&mut w);
        w.into_bytes()
    }

    /// Decodes an envelope holding this object type, consuming all of `bytes`.
    fn from_wire(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        read_header(&mut r, Self::OBJECT_TYPE)?;
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// Writes the envelope header this implementation speaks: version 1, suite 1, `object`. Signed
/// bytes start with it too, so a signature can never be taken for another object type.
pub fn write_header(w: &mut Writer, object: ObjectType) {
    w.u8(WIRE_VERSION);
    w.u8(Suite::X25519ChaChaEd25519.id());
    w.u8(object as u8);
}

/// Reads and checks an envelope header, in order: version, suite, object type.
pub fn read_header(r: &mut Reader<'_>, expected: ObjectType) -> Result<Suite> {
    let version = r.u8()?;
    if version != WIRE_VERSION {
        return Err(DecodeError::UnknownVersion(version).into());
    }
    let suite = Suite::from_id(r.u8()?)?;
    let found = r.u8()?;
    if found != expected as u8 {
        return Err(DecodeError::UnexpectedObject {
            expected: expected as u8,
            found,
        }
        .into());
    }
    Ok(suite)
}

impl WireObject for crate::crypto::hpke::HpkeSealed {
    const OBJECT_TYPE: ObjectType = ObjectType::HpkeSealed;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::crypto::hpke::HpkeSealed;

    fn sample() -> Vec<u8> {
        HpkeSealed {
            enc: [3; 32],
            ciphertext: vec![1, 2, 3],
        }
        .to_wire()
    }

    #[test]
    fn header_is_version_suite_type() {
        let bytes = sample();
        assert_eq!(&bytes[..3], &[1, 1, ObjectType::HpkeSealed as u8]);
        assert!(HpkeSealed::from_wire(&bytes).is_ok());
    }

    #[test]
    fn unknown_version_suite_and_type_are_typed_errors() {
        let mut b = sample();
        b[0] = 2;
        assert_eq!(
            HpkeSealed::from_wire(&b),
            Err(Error::Decode(DecodeError::UnknownVersion(2)))
        );
        let mut b = sample();
        b[1] = 2;
        assert_eq!(
            HpkeSealed::from_wire(&b),
            Err(Error::Decode(DecodeError::UnknownSuite(2)))
        );
        let mut b = sample();
        b[2] = 1;
        assert_eq!(
            HpkeSealed::from_wire(&b),
            Err(Error::Decode(DecodeError::UnexpectedObject {
                expected: 4,
                found: 1
            }))
        );
        let mut b = sample();
        b.push(0);
        assert_eq!(
            HpkeSealed::from_wire(&b),
            Err(Error::Decode(DecodeError::TrailingBytes))
        );
        for cut in 0..sample().len() {
            assert!(HpkeSealed::from_wire(&sample()[..cut]).is_err());
        }
    }
}
