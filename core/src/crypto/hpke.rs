//! HPKE (RFC 9180) with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305,
//! in base and auth modes, with the secret exporter.
//!
//! Built on the `hpke` crate, which uses the same x25519-dalek, hkdf and chacha20poly1305 as the
//! rest of the core. The recipient key is a device's X25519 key-agreement key.

use hpke::aead::{AeadCtxR, AeadCtxS, ChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};

use super::agreement::{AgreementPublicKey, AgreementSecret};
use crate::codec::{Decode, Encode, Reader, Writer};
use crate::{Error, Result};

type Kem = X25519HkdfSha256;
type PrivateKey = <Kem as hpke::Kem>::PrivateKey;
type PublicKey = <Kem as hpke::Kem>::PublicKey;
type EncappedKey = <Kem as hpke::Kem>::EncappedKey;

/// Length of the encapsulated key (`enc`).
pub const ENC_LEN: usize = 32;
/// Longest `info` or exporter context accepted. RFC 9180 encodes these with 16-bit lengths in
/// labelled KDF calls; a bound far below that keeps every call inside the primitive's range.
pub const MAX_INFO_LEN: usize = 1024;
/// Longest secret the exporter hands out in one call.
pub const MAX_EXPORT_LEN: usize = 255 * 32;
/// Longest ciphertext accepted inside a [`HpkeSealed`] when decoding.
pub const MAX_SEALED_LEN: usize = 1 << 20;

fn private_key(secret: &AgreementSecret) -> Result<PrivateKey> {
    PrivateKey::from_bytes(secret.to_secret_bytes().expose()).map_err(|_| Error::Hpke)
}

fn public_key(key: &AgreementPublicKey) -> Result<PublicKey> {
    PublicKey::from_bytes(key.as_bytes()).map_err(|_| Error::InvalidPublicKey)
}

fn check_info(info: &[u8]) -> Result<()> {
    if info.len() > MAX_INFO_LEN {
        return Err(Error::InvalidLength);
    }
    Ok(())
}

fn encapped(enc: &[u8; ENC_LEN]) -> Result<EncappedKey> {
    EncappedKey::from_bytes(enc).map_err(|_| Error::InvalidPublicKey)
}

fn enc_bytes(enc: &EncappedKey) -> [u8; ENC_LEN] {
    let mut out = [0u8; ENC_LEN];
    out.copy_from_slice(&enc.to_bytes());
    out
}

/// A sender context: seals a sequence of messages and exports secrets.
pub struct SenderContext(AeadCtxS<ChaCha20Poly1305, HkdfSha256, Kem>);

impl SenderContext {
    /// Seals the next message of the sequence.
    pub fn seal(&mut self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        self.0.seal(plaintext, aad).map_err(|_| Error::Hpke)
    }

    /// The exporter secret for `context`, of `out.len()` bytes.
    pub fn export(&self, context: &[u8], out: &mut [u8]) -> Result<()> {
        export_checked(context, out, |c, o| self.0.export(c, o))
    }
}

/// A receiver context: opens a sequence of messages and exports secrets.
pub struct ReceiverContext(AeadCtxR<ChaCha20Poly1305, HkdfSha256, Kem>);

impl ReceiverContext {
    /// Opens the next message of the sequence; authentication failure is
    /// [`Error::DecryptionFailed`].
    pub fn open(&mut self, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
        self.0
            .open(ciphertext, aad)
            .map_err(|_| Error::DecryptionFailed)
    }

    /// The exporter secret for `context`, of `out.len()` bytes.
    pub fn export(&self, context: &[u8], out: &mut [u8]) -> Result<()> {
        export_checked(context, out, |c, o| self.0.export(c, o))
    }
}

fn export_checked(
    context: &[u8],
    out: &mut [u8],
    f: impl FnOnce(&[u8], &mut [u8]) -> core::result::Result<(), hpke::HpkeError>,
) -> Result<()> {
    check_info(context)?;
    if out.len() > MAX_EXPORT_LEN {
        return Err(Error::InvalidLength);
    }
    f(context, out).map_err(|_| Error::InvalidLength)
}

/// Base-mode sender setup (RFC 9180 §5.1.1). Returns `enc` and the context.
pub fn setup_base_sender(
    rng: &mut impl rand_core::CryptoRng,
    recipient: &AgreementPublicKey,
    info: &[u8],
) -> Result<([u8; ENC_LEN], SenderContext)> {
    check_info(info)?;
    let (enc, ctx) = hpke::setup_sender_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &public_key(recipient)?,
        info,
        rng,
    )
    .map_err(|_| Error::InvalidPublicKey)?;
    Ok((enc_bytes(&enc), SenderContext(ctx)))
}

/// Auth-mode sender setup (RFC 9180 §5.1.3): the recipient learns the ciphertext came from the
/// holder of `sender`.
pub fn setup_auth_sender(
    rng: &mut impl rand_core::CryptoRng,
    recipient: &AgreementPublicKey,
    sender: &AgreementSecret,
    info: &[u8],
) -> Result<([u8; ENC_LEN], SenderContext)> {
    check_info(info)?;
    let mode = OpModeS::Auth((private_key(sender)?, public_key(&sender.public_key())?));
    let (enc, ctx) = hpke::setup_sender_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &mode,
        &public_key(recipient)?,
        info,
        rng,
    )
    .map_err(|_| Error::InvalidPublicKey)?;
    Ok((enc_bytes(&enc), SenderContext(ctx)))
}

/// Base-mode receiver setup.
pub fn setup_base_receiver(
    recipient: &AgreementSecret,
    enc: &[u8; ENC_LEN],
    info: &[u8],
) -> Result<ReceiverContext> {
    check_info(info)?;
    hpke::setup_receiver::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &private_key(recipient)?,
        &encapped(enc)?,
        info,
    )
    .map(ReceiverContext)
    .map_err(|_| Error::DecryptionFailed)
}

/// Auth-mode receiver setup: fails unless the sender holds the secret for `sender`.
pub fn setup_auth_receiver(
    recipient: &AgreementSecret,
    enc: &[u8; ENC_LEN],
    sender: &AgreementPublicKey,
    info: &[u8],
) -> Result<ReceiverContext> {
    check_info(info)?;
    hpke::setup_receiver::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Auth(public_key(sender)?),
        &private_key(recipient)?,
        &encapped(enc)?,
        info,
    )
    .map(ReceiverContext)
    .map_err(|_| Error::DecryptionFailed)
}

/// The result of a single-shot seal: the encapsulated key and the ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HpkeSealed {
    /// The encapsulated ephemeral key.
    pub enc: [u8; ENC_LEN],
    /// `ciphertext || tag`.
    pub ciphertext: Vec<u8>,
}

impl Encode for HpkeSealed {
    fn encode(&self, w: &mut Writer) {
        w.array(&self.enc);
        w.bytes_u32(&self.ciphertext);
    }
}

impl Decode for HpkeSealed {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(HpkeSealed {
            enc: r.array()?,
            ciphertext: r.bytes_u32(MAX_SEALED_LEN)?.to_vec(),
        })
    }
}

/// Single-shot base-mode seal (RFC 9180 §6.1).
pub fn seal_base(
    rng: &mut impl rand_core::CryptoRng,
    recipient: &AgreementPublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<HpkeSealed> {
    let (enc, mut ctx) = setup_base_sender(rng, recipient, info)?;
    Ok(HpkeSealed {
        enc,
        ciphertext: ctx.seal(aad, plaintext)?,
    })
}

/// Single-shot base-mode open.
pub fn open_base(
    recipient: &AgreementSecret,
    sealed: &HpkeSealed,
    info: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    setup_base_receiver(recipient, &sealed.enc, info)?.open(aad, &sealed.ciphertext)
}

/// Single-shot auth-mode seal.
pub fn seal_auth(
    rng: &mut impl rand_core::CryptoRng,
    recipient: &AgreementPublicKey,
    sender: &AgreementSecret,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<HpkeSealed> {
    let (enc, mut ctx) = setup_auth_sender(rng, recipient, sender, info)?;
    Ok(HpkeSealed {
        enc,
        ciphertext: ctx.seal(aad, plaintext)?,
    })
}

/// Single-shot auth-mode open.
pub fn open_auth(
    recipient: &AgreementSecret,
    sender: &AgreementPublicKey,
    sealed: &HpkeSealed,
    info: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    setup_auth_receiver(recipient, &sealed.enc, sender, info)?.open(aad, &sealed.ciphertext)
}

/// DeriveKeyPair of DHKEM(X25519, HKDF-SHA256) (RFC 9180 §7.1.3): a key pair from input keying
/// material. Used to derive keys deterministically and to check the RFC vectors.
pub fn derive_key_pair(ikm: &[u8]) -> AgreementSecret {
    let (sk, _pk) = Kem::derive_keypair(ikm);
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&sk.to_bytes());
    let secret = super::secret::SecretBytes::new(bytes);
    zeroize::Zeroize::zeroize(&mut bytes);
    AgreementSecret::from_secret_bytes(&secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_and_auth_round_trip_and_bind_their_inputs() {
        let mut rng = crate::test_rng(7);
        let r = AgreementSecret::generate(&mut rng);
        let s = AgreementSecret::generate(&mut rng);
        let mallory = AgreementSecret::generate(&mut rng);

        let sealed = seal_base(&mut rng, &r.public_key(), b"info", b"aad", b"pt").unwrap();
        assert_eq!(open_base(&r, &sealed, b"info", b"aad").unwrap(), b"pt");
        assert!(open_base(&r, &sealed, b"inf0", b"aad").is_err());
        assert!(open_base(&r, &sealed, b"info", b"aaD").is_err());
        assert!(open_base(&mallory, &sealed, b"info", b"aad").is_err());

        let sealed = seal_auth(&mut rng, &r.public_key(), &s, b"i", b"a", b"pt").unwrap();
        assert_eq!(
            open_auth(&r, &s.public_key(), &sealed, b"i", b"a").unwrap(),
            b"pt"
        );
        // Auth mode binds the sender: the wrong claimed sender fails.
        assert!(open_auth(&r, &mallory.public_key(), &sealed, b"i", b"a").is_err());
    }

    #[test]
    fn oversized_info_is_an_error_not_a_panic() {
        let mut rng = crate::test_rng(8);
        let r = AgreementSecret::generate(&mut rng);
        let info = vec![0u8; 70_000];
        assert_eq!(
            seal_base(&mut rng, &r.public_key(), &info, b"", b"").unwrap_err(),
            Error::InvalidLength
        );
        assert!(setup_base_receiver(&r, &[9u8; 32], &info).is_err());
    }

    #[test]
    fn small_order_enc_is_rejected() {
        let mut rng = crate::test_rng(9);
        let r = AgreementSecret::generate(&mut rng);
        let sealed = HpkeSealed {
            enc: [0u8; 32],
            ciphertext: vec![0u8; 32],
        };
        assert!(open_base(&r, &sealed, b"", b"").is_err());
        assert!(
            seal_base(
                &mut rng,
                &AgreementPublicKey::from_bytes([0; 32]),
                b"",
                b"",
                b""
            )
            .is_err()
        );
    }
}
