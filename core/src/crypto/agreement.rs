//! X25519 key agreement (RFC 7748).
//!
//! The same key pair serves as a DHKEM(X25519) key for [`hpke`](super::hpke): a device's
//! key-agreement key is what teams seal their keys to.

use core::fmt;

use super::secret::SecretBytes;
use crate::{Error, Result};

/// An X25519 public key. Every 32-byte string is a valid encoding (RFC 7748 §5); keys of small
/// order are caught when they are used, because they give a zero shared secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgreementPublicKey([u8; 32]);

impl AgreementPublicKey {
    /// Wraps 32 public bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        AgreementPublicKey(bytes)
    }

    /// Wraps a 32-byte slice.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        Ok(AgreementPublicKey(
            bytes.try_into().map_err(|_| Error::InvalidPublicKey)?,
        ))
    }

    /// The encoded key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for AgreementPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgreementPublicKey(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

/// An X25519 secret key; zeroized on drop, redacted in Debug.
#[derive(Clone)]
pub struct AgreementSecret(x25519_dalek::StaticSecret);

impl AgreementSecret {
    /// A fresh random key.
    pub fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        AgreementSecret(x25519_dalek::StaticSecret::random_from_rng(rng))
    }

    /// A key from 32 secret bytes (clamped when used, per RFC 7748).
    pub fn from_secret_bytes(bytes: &SecretBytes<32>) -> Self {
        AgreementSecret(x25519_dalek::StaticSecret::from(*bytes.expose()))
    }

    /// The 32 secret bytes, for storage.
    pub fn to_secret_bytes(&self) -> SecretBytes<32> {
        SecretBytes::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> AgreementPublicKey {
        AgreementPublicKey(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }

    /// X25519 with the peer's key. An all-zero result (the peer sent a small-order point) is an
    /// error, so a malicious peer cannot force a known shared secret.
    pub fn agree(&self, peer: &AgreementPublicKey) -> Result<SecretBytes<32>> {
        let shared = self
            .0
            .diffie_hellman(&x25519_dalek::PublicKey::from(peer.0));
        if !shared.was_contributory() {
            return Err(Error::NonContributory);
        }
        Ok(SecretBytes::new(shared.to_bytes()))
    }
}

impl fmt::Debug for AgreementSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgreementSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_agree_and_zero_point_is_refused() {
        let mut rng = crate::test_rng(1);
        let a = AgreementSecret::generate(&mut rng);
        let b = AgreementSecret::generate(&mut rng);
        let ab = a.agree(&b.public_key()).unwrap();
        let ba = b.agree(&a.public_key()).unwrap();
        assert!(ab.ct_eq(&ba));
        assert_eq!(
            a.agree(&AgreementPublicKey::from_bytes([0u8; 32]))
                .unwrap_err(),
            Error::NonContributory
        );
    }

    #[test]
    fn secret_round_trips_through_bytes() {
        let mut rng = crate::test_rng(2);
        let a = AgreementSecret::generate(&mut rng);
        let again = AgreementSecret::from_secret_bytes(&a.to_secret_bytes());
        assert_eq!(a.public_key(), again.public_key());
        assert!(format!("{a:?}").contains("redacted"));
    }
}
