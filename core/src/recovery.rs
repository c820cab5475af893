//! Recovery secrets: 256 random bits an owner writes down as 24 words, from which a recovery
//! device and a backup key are derived deterministically.
//!
//! The words are the BIP-39 English list (through the `bip39` crate), whose last word carries an
//! 8-bit SHA-256 checksum: a mistyped word is reported by position, and a swapped or wrong but
//! listed word fails the checksum with probability 255/256.

use core::fmt;

use zeroize::Zeroizing;

use crate::crypto::aead::AeadKey;
use crate::crypto::agreement::AgreementSecret;
use crate::crypto::hkdf::Prk;
use crate::crypto::secret::SecretBytes;
use crate::crypto::sign::SigningKey;
use crate::device::{Device, DeviceKind};
use crate::{Error, Result};

/// Number of words in a recovery phrase.
pub const WORD_COUNT: usize = 24;
/// Longest phrase text accepted, far above 24 of the longest words with generous spacing.
const MAX_PHRASE_LEN: usize = 1024;

const SALT: &[u8] = b"sotto/v1/recovery";
const INFO_IDENTITY: &[u8] = b"sotto/v1/recovery/device-identity";
const INFO_AGREEMENT: &[u8] = b"sotto/v1/recovery/device-agreement";
const INFO_BACKUP: &[u8] = b"sotto/v1/recovery/backup-key";

/// An owner's recovery secret. Zeroized on drop, redacted in Debug.
#[derive(Clone)]
pub struct RecoverySecret(SecretBytes<32>);

impl RecoverySecret {
    /// A fresh random secret.
    pub fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        RecoverySecret(SecretBytes::random(rng))
    }

    /// The secret as 24 space-separated words, to show to a person.
    pub fn to_words(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(WORD_COUNT * 9));
        // 32 bytes is a valid BIP-39 entropy length, so this cannot fail.
        if let Ok(m) = bip39::Mnemonic::from_entropy_in(bip39::Language::English, self.0.expose()) {
            for (i, word) in m.words().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(word);
            }
        }
        out
    }

    /// Parses words typed by a person: case and runs of whitespace are forgiven; an unknown
    /// word, a wrong count or a checksum mismatch is a clear error.
    pub fn from_words(phrase: &str) -> Result<Self> {
        if phrase.len() > MAX_PHRASE_LEN {
            return Err(Error::RecoveryWordCount(phrase.split_whitespace().count()));
        }
        let count = phrase.split_whitespace().count();
        if count != WORD_COUNT {
            return Err(Error::RecoveryWordCount(count));
        }
        let mut normalized = Zeroizing::new(String::with_capacity(phrase.len()));
        for (i, word) in phrase.split_whitespace().enumerate() {
            if i > 0 {
                normalized.push(' ');
            }
            normalized.push_str(&word.to_lowercase());
        }
        let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &normalized)
            .map_err(|e| match e {
                bip39::Error::UnknownWord(i) => Error::RecoveryUnknownWord(i),
                bip39::Error::InvalidChecksum => Error::RecoveryChecksum,
                _ => Error::RecoveryWordCount(count),
            })?;
        let (entropy, len) = mnemonic.to_entropy_array();
        let entropy = Zeroizing::new(entropy);
        let bytes = entropy.get(..len).ok_or(Error::RecoveryWordCount(count))?;
        Ok(RecoverySecret(SecretBytes::from_slice(bytes)?))
    }

    fn prk(&self) -> Prk {
        Prk::extract(SALT, self.0.expose())
    }

    /// The recovery device: kind [`DeviceKind::Recovery`], key-agreement generation 0 with
    /// creation time 0, so the same words always give the same device and record.
    pub fn device(&self) -> Device {
        let prk = self.prk();
        let signing = SigningKey::from_seed(&prk.expand_secret::<32>(INFO_IDENTITY));
        let agreement =
            AgreementSecret::from_secret_bytes(&prk.expand_secret::<32>(INFO_AGREEMENT));
        Device::from_keys(DeviceKind::Recovery, signing, agreement, 0, 0)
    }

    /// The key that seals backups made for this recovery secret.
    pub fn backup_key(&self) -> AeadKey {
        AeadKey::new(self.prk().expand_secret::<32>(INFO_BACKUP))
    }
}

impl fmt::Debug for RecoverySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoverySecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_derive_the_same_device() {
        let mut rng = crate::test_rng(20);
        let secret = RecoverySecret::generate(&mut rng);
        let words = secret.to_words();
        assert_eq!(words.split(' ').count(), WORD_COUNT);
        let messy = format!("  {}  ", words.to_uppercase().replace(' ', " \n\t"));
        let back = RecoverySecret::from_words(&messy).unwrap();
        assert_eq!(back.device().record(), secret.device().record());
        assert!(
            back.backup_key()
                .secret_bytes()
                .ct_eq(secret.backup_key().secret_bytes())
        );
        let other = RecoverySecret::generate(&mut rng);
        assert_ne!(other.device().id(), secret.device().id());
    }

    #[test]
    fn typos_are_clear_errors() {
        let mut rng = crate::test_rng(21);
        let words = RecoverySecret::generate(&mut rng).to_words();
        let list: Vec<&str> = words.split(' ').collect();

        let mut typo = list.clone();
        typo[5] = "zzzzqq";
        assert_eq!(
            RecoverySecret::from_words(&typo.join(" ")).unwrap_err(),
            Error::RecoveryUnknownWord(5)
        );

        assert_eq!(
            RecoverySecret::from_words(&list[..23].join(" ")).unwrap_err(),
            Error::RecoveryWordCount(23)
        );

        // Swapping two distinct words keeps every word valid; the checksum catches it unless the
        // swap happens to keep it (1 in 256): find a swap that changes the entropy's checksum.
        let mut caught = 0;
        for j in 1..23 {
            if list[0] == list[j] {
                continue;
            }
            let mut swapped = list.clone();
            swapped.swap(0, j);
            if RecoverySecret::from_words(&swapped.join(" ")).err() == Some(Error::RecoveryChecksum)
            {
                caught += 1;
            }
        }
        assert!(caught >= 20, "checksum caught only {caught} of 22 swaps");
    }

    #[test]
    fn debug_is_redacted() {
        let mut rng = crate::test_rng(22);
        assert_eq!(
            format!("{:?}", RecoverySecret::generate(&mut rng)),
            "RecoverySecret([redacted])"
        );
    }
}
