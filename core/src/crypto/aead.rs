//! ChaCha20-Poly1305 (RFC 8439) and XChaCha20-Poly1305.
//!
//! ChaCha20-Poly1305 is used where nonces are derived (each derived key is used once, with a
//! derived nonce); XChaCha20-Poly1305 where nonces are random (store values, backups), since its
//! 192-bit nonce makes random collisions negligible.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};

use super::secret::SecretBytes;
use crate::{Error, Result};

/// Length of the authentication tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;
/// Length of a ChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 12;
/// Length of an XChaCha20-Poly1305 nonce.
pub const XNONCE_LEN: usize = 24;

/// A 256-bit AEAD key; zeroized on drop, redacted in Debug.
#[derive(Clone, Debug)]
pub struct AeadKey(SecretBytes<32>);

impl AeadKey {
    /// Wraps 32 secret bytes.
    pub fn new(bytes: SecretBytes<32>) -> Self {
        AeadKey(bytes)
    }

    /// A fresh random key.
    pub fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        AeadKey(SecretBytes::random(rng))
    }

    /// A key from a slice that must be 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        SecretBytes::from_slice(bytes).map(AeadKey)
    }

    /// The key bytes, for storage.
    pub fn secret_bytes(&self) -> &SecretBytes<32> {
        &self.0
    }

    fn chacha(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&(*self.0.expose()).into())
    }

    fn xchacha(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.0.expose()).into())
    }
}

/// A 96-bit ChaCha20-Poly1305 nonce. Never reuse one with the same key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nonce(pub [u8; NONCE_LEN]);

impl Nonce {
    /// A nonce from a slice that must be 12 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        Ok(Nonce(bytes.try_into().map_err(|_| Error::InvalidLength)?))
    }
}

/// A 192-bit XChaCha20-Poly1305 nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XNonce(pub [u8; XNONCE_LEN]);

impl XNonce {
    /// A nonce from a slice that must be 24 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        Ok(XNonce(bytes.try_into().map_err(|_| Error::InvalidLength)?))
    }

    /// A fresh random nonce.
    pub fn random(rng: &mut impl rand_core::CryptoRng) -> Self {
        let mut n = [0u8; XNONCE_LEN];
        rng.fill_bytes(&mut n);
        XNonce(n)
    }
}

/// ChaCha20-Poly1305 encryption; returns `ciphertext || tag`.
pub fn seal(key: &AeadKey, nonce: &Nonce, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    key.chacha()
        .encrypt(
            &nonce.0.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        // The only failure is a plaintext beyond 2^38 bytes, which no caller can hold in memory.
        .unwrap_or_default()
}

/// ChaCha20-Poly1305 decryption of `ciphertext || tag`.
pub fn open(key: &AeadKey, nonce: &Nonce, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
    key.chacha()
        .decrypt(
            &nonce.0.into(),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| Error::DecryptionFailed)
}

/// XChaCha20-Poly1305 encryption with a caller-chosen nonce; returns `ciphertext || tag`.
pub fn xseal(key: &AeadKey, nonce: &XNonce, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    key.xchacha()
        .encrypt(
            &nonce.0.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default()
}

/// XChaCha20-Poly1305 decryption of `ciphertext || tag`.
pub fn xopen(key: &AeadKey, nonce: &XNonce, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
    key.xchacha()
        .decrypt(
            &nonce.0.into(),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| Error::DecryptionFailed)
}

/// XChaCha20-Poly1305 with a fresh random nonce; returns `nonce || ciphertext || tag`.
pub fn xseal_random(
    rng: &mut impl rand_core::CryptoRng,
    key: &AeadKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let nonce = XNonce::random(rng);
    let mut out = Vec::with_capacity(XNONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce.0);
    out.extend_from_slice(&xseal(key, &nonce, aad, plaintext));
    out
}

/// Opens the output of [`xseal_random`].
pub fn xopen_random(key: &AeadKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    let (nonce, ciphertext) = sealed
        .split_at_checked(XNONCE_LEN)
        .ok_or(Error::DecryptionFailed)?;
    xopen(key, &XNonce::from_slice(nonce)?, aad, ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_nonce_round_trip_and_tamper_detection() {
        let mut rng = crate::test_rng(5);
        let key = AeadKey::generate(&mut rng);
        let sealed = xseal_random(&mut rng, &key, b"record-1", b"secret value");
        assert_eq!(
            xopen_random(&key, b"record-1", &sealed).unwrap(),
            b"secret value"
        );
        // The record id is bound: moving the value to another record fails.
        assert_eq!(
            xopen_random(&key, b"record-2", &sealed),
            Err(Error::DecryptionFailed)
        );
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(xopen_random(&key, b"record-1", &t).is_err(), "byte {i}");
        }
        assert!(xopen_random(&key, b"record-1", &sealed[..10]).is_err());
        // Two seals of the same value differ (fresh nonces).
        assert_ne!(
            sealed,
            xseal_random(&mut rng, &key, b"record-1", b"secret value")
        );
    }

    #[test]
    fn derived_nonce_round_trip() {
        let mut rng = crate::test_rng(6);
        let key = AeadKey::generate(&mut rng);
        let nonce = Nonce([9; 12]);
        let ct = seal(&key, &nonce, b"hdr", b"msg");
        assert_eq!(ct.len(), 3 + TAG_LEN);
        assert_eq!(open(&key, &nonce, b"hdr", &ct).unwrap(), b"msg");
        assert!(open(&key, &Nonce([8; 12]), b"hdr", &ct).is_err());
    }
}
