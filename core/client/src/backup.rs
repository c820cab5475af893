//! Backups: a client's secrets sealed into one blob before it leaves the device (DESIGN 4.5).
//!
//! A backup holds a list of records chosen by the caller (device secrets, team keyrings, epoch
//! secrets, chain states: whatever a restored client needs), each a [`RecordId`] and a value,
//! so a restore can write them straight back into a store. The blob is sealed with
//! XChaCha20-Poly1305 under a key that is either
//!
//! - the **recovery key**: [`RecoverySecret::backup_key`], derived from the owner's 24 words; or
//! - a **passphrase** stretched with Argon2id, whose parameters and salt travel in the header.
//!
//! The format is specified in `docs/PROTOCOL.md`, section "Backups":
//!
//! ```text
//! Backup  = version u8 (1) || suite u8 (1) || object_type u8 (10) || kind u8 || params
//!           || sealed_len u32 || sealed
//! params  = (kind 1, recovery key)  nothing
//!         | (kind 2, passphrase)    memory_kib u32 || iterations u32 || parallelism u32 || salt[16]
//! sealed  = nonce[24] || XChaCha20-Poly1305(key, nonce, aad, padded)
//! aad     = "sotto/v1/backup\0" || every byte before sealed_len
//! padded  = content_len u32 || payload || zeros      (PROTOCOL 7.3 padding)
//! payload = count u32 || count × (ns_len u8 || namespace || key_len u16 || key
//!                                  || value_len u32 || value)        (ids strictly increasing)
//! ```
//!
//! [`Backup::decode`] checks the structure only (no key derivation, no decryption, bounded
//! lengths, no panics), so it is cheap and safe on any input; [`Backup::open`] then derives the
//! key and authenticates everything, header included.

use core::fmt;

use argon2::Argon2;
use rand_core::CryptoRng;
use sotto_core::DecodeError;
use sotto_core::codec::{Reader, Writer};
use sotto_core::conversation::padding;
use sotto_core::crypto::aead::{self, AeadKey, TAG_LEN, XNONCE_LEN};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::recovery::RecoverySecret;
use sotto_core::wire::{Suite, WIRE_VERSION};
use zeroize::Zeroizing;

use crate::rng::os_rng;
use crate::store::{
    EncryptedStore, Expect, MAX_KEY_LEN, MAX_NAMESPACE_LEN, Namespace, Query, RecordId, Store,
    Transaction, Version,
};
use crate::{Error, Result};

/// The wire object type of a backup (the third byte, after version and suite).
pub const OBJECT_TYPE: u8 = 10;
/// Longest payload (the encoded records, before padding): 64 MiB.
pub const MAX_PAYLOAD_LEN: usize = 64 * 1024 * 1024;
/// Most records in one backup.
pub const MAX_ENTRIES: usize = 1 << 20;
/// Longest passphrase, in bytes of UTF-8.
pub const MAX_PASSPHRASE_LEN: usize = 1024;
/// Length of the Argon2id salt.
pub const SALT_LEN: usize = 16;

const AAD_LABEL: &[u8] = b"sotto/v1/backup\0";
const KIND_RECOVERY_KEY: u8 = 1;
const KIND_PASSPHRASE: u8 = 2;
/// Smallest sealed part: nonce, tag, and the smallest padded payload.
const MIN_SEALED_LEN: usize = XNONCE_LEN + TAG_LEN + padding::MIN_PADDED_LEN;
/// Smallest encoded entry: a one-byte namespace, an empty key and an empty value.
const MIN_ENTRY_LEN: usize = 1 + 1 + 2 + 4;

fn max_sealed_len() -> usize {
    // 4 + MAX_PAYLOAD_LEN is far below usize::MAX on every target; its bucket exists.
    padding::bucket(4 + MAX_PAYLOAD_LEN).unwrap_or(usize::MAX) + XNONCE_LEN + TAG_LEN
}

/// How a backup is sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackupKind {
    /// To the backup key of a recovery secret (the 24 words).
    RecoveryKey,
    /// To a passphrase, stretched with Argon2id.
    Passphrase,
}

/// Argon2id cost parameters, stored in a passphrase backup's header.
///
/// Accepted: `1 <= parallelism <= 16`, `1 <= iterations <= 64`,
/// `8 × parallelism <= memory_kib <= 1 GiB`, and `memory_kib × iterations <= 4 GiB` (so a
/// doctored header cannot make a restore run for hours or exhaust a browser's memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

/// Most memory a backup may ask for, in KiB (1 GiB).
pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
/// Most Argon2id passes.
pub const MAX_ITERATIONS: u32 = 64;
/// Most Argon2id lanes.
pub const MAX_PARALLELISM: u32 = 16;
/// Most total work, memory × passes, in KiB (4 GiB).
const MAX_WORK_KIB: u64 = 4 * 1024 * 1024;

impl KdfParams {
    /// OWASP's recommended Argon2id configuration (Password Storage Cheat Sheet): 19 MiB of
    /// memory, 2 iterations, 1 lane. The default.
    pub const OWASP: KdfParams = KdfParams {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// Checked parameters. Anything within the bounds is accepted, so tests can use cheap
    /// ones; applications should use [`KdfParams::OWASP`] or stronger.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self> {
        let ok = (1..=MAX_PARALLELISM).contains(&parallelism)
            && (1..=MAX_ITERATIONS).contains(&iterations)
            && memory_kib >= 8 * parallelism
            && memory_kib <= MAX_MEMORY_KIB
            && u64::from(memory_kib) * u64::from(iterations) <= MAX_WORK_KIB;
        if !ok {
            return Err(Error::BackupKdfParams);
        }
        Ok(KdfParams {
            memory_kib,
            iterations,
            parallelism,
        })
    }

    /// Memory, in KiB.
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Number of passes.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Number of lanes.
    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }

    fn derive(&self, passphrase: &str, salt: &[u8; SALT_LEN]) -> Result<AeadKey> {
        let params =
            argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
                .map_err(|_| Error::BackupKdfParams)?;
        let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
            .map_err(|_| Error::BackupKdfParams)?;
        Ok(AeadKey::new(SecretBytes::new(*out)))
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams::OWASP
    }
}

/// What a backup is sealed to.
#[derive(Clone, Copy, Debug)]
pub enum SealTo<'a> {
    /// The recovery key of these words.
    RecoveryKey(&'a RecoverySecret),
    /// A passphrase, with the Argon2id parameters to store in the header.
    Passphrase {
        /// The passphrase, 1 to 1024 bytes of UTF-8, used as given (a UI should normalise it,
        /// for example to Unicode NFC, the same way when sealing and when opening).
        passphrase: &'a str,
        /// The cost parameters.
        params: KdfParams,
    },
}

/// What opens a backup.
#[derive(Clone, Copy)]
pub enum OpenWith<'a> {
    /// The recovery secret (parse the words with [`RecoverySecret::from_words`]).
    RecoveryKey(&'a RecoverySecret),
    /// The passphrase.
    Passphrase(&'a str),
}

impl fmt::Debug for OpenWith<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpenWith::RecoveryKey(_) => "OpenWith::RecoveryKey([redacted])",
            OpenWith::Passphrase(_) => "OpenWith::Passphrase([redacted])",
        })
    }
}

/// One record of a backup. The value is zeroized on drop and redacted in Debug.
#[derive(Clone)]
pub struct BackupEntry {
    /// Where the value lives in the store.
    pub id: RecordId,
    /// The value.
    pub value: Zeroizing<Vec<u8>>,
}

impl BackupEntry {
    /// An entry; the value is copied into a buffer zeroized on drop.
    pub fn new(id: RecordId, value: &[u8]) -> Self {
        BackupEntry {
            id,
            value: Zeroizing::new(value.to_vec()),
        }
    }
}

impl fmt::Debug for BackupEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupEntry")
            .field("id", &self.id)
            .field("value", &"[redacted]")
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Params {
    RecoveryKey,
    Passphrase {
        kdf: KdfParams,
        salt: [u8; SALT_LEN],
    },
}

/// A sealed backup. Holds only ciphertext and public parameters.
#[derive(Clone, PartialEq, Eq)]
pub struct Backup {
    params: Params,
    sealed: Vec<u8>,
}

impl fmt::Debug for Backup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backup")
            .field("kind", &self.kind())
            .field("kdf", &self.kdf_params())
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

impl Backup {
    /// Seals `entries` with randomness from the operating system.
    pub fn seal(entries: &[BackupEntry], to: SealTo<'_>) -> Result<Self> {
        Self::seal_with_rng(&mut os_rng()?, entries, to)
    }

    /// Seals `entries` (in any order; they are stored sorted by id, and must be distinct).
    pub fn seal_with_rng(
        rng: &mut impl CryptoRng,
        entries: &[BackupEntry],
        to: SealTo<'_>,
    ) -> Result<Self> {
        let payload = encode_payload(entries)?;
        let padded = padding::pad(&payload, MAX_PAYLOAD_LEN).map_err(|_| Error::BackupTooLarge)?;
        let (params, key) = match to {
            SealTo::RecoveryKey(secret) => (Params::RecoveryKey, secret.backup_key()),
            SealTo::Passphrase { passphrase, params } => {
                check_passphrase(passphrase)?;
                let mut salt = [0u8; SALT_LEN];
                rng.fill_bytes(&mut salt);
                let key = params.derive(passphrase, &salt)?;
                (Params::Passphrase { kdf: params, salt }, key)
            }
        };
        let sealed = aead::xseal_random(rng, &key, &aad(&header(&params)), &padded);
        Ok(Backup { params, sealed })
    }

    /// How the backup is sealed.
    pub fn kind(&self) -> BackupKind {
        match self.params {
            Params::RecoveryKey => BackupKind::RecoveryKey,
            Params::Passphrase { .. } => BackupKind::Passphrase,
        }
    }

    /// The Argon2id parameters of a passphrase backup (a UI can warn that opening it takes
    /// this much memory and time).
    pub fn kdf_params(&self) -> Option<KdfParams> {
        match self.params {
            Params::RecoveryKey => None,
            Params::Passphrase { kdf, .. } => Some(kdf),
        }
    }

    /// The blob to upload or save.
    pub fn encode(&self) -> Vec<u8> {
        let head = header(&self.params);
        let mut w = Writer::with_capacity(head.len() + 4 + self.sealed.len());
        w.array(&head);
        w.bytes_u32(&self.sealed);
        w.into_bytes()
    }

    /// Reads a blob's structure: version, suite, object type, kind, parameters within bounds,
    /// a sealed part of a possible length, nothing left over. Decrypts nothing and derives no
    /// key, so it is cheap on any input and never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != WIRE_VERSION {
            return Err(DecodeError::UnknownVersion(version).into());
        }
        Suite::from_id(r.u8()?)?;
        let found = r.u8()?;
        if found != OBJECT_TYPE {
            return Err(DecodeError::UnexpectedObject {
                expected: OBJECT_TYPE,
                found,
            }
            .into());
        }
        let params = match r.u8()? {
            KIND_RECOVERY_KEY => Params::RecoveryKey,
            KIND_PASSPHRASE => {
                let memory_kib = r.u32()?;
                let iterations = r.u32()?;
                let parallelism = r.u32()?;
                let salt = r.array()?;
                Params::Passphrase {
                    kdf: KdfParams::new(memory_kib, iterations, parallelism)?,
                    salt,
                }
            }
            _ => return Err(DecodeError::UnknownTag.into()),
        };
        let sealed = r.bytes_u32(max_sealed_len())?;
        let padded_len = sealed.len().saturating_sub(XNONCE_LEN + TAG_LEN);
        if sealed.len() < MIN_SEALED_LEN || !padding::is_bucket(padded_len) {
            return Err(DecodeError::InvalidValue.into());
        }
        r.finish()?;
        Ok(Backup {
            params,
            sealed: sealed.to_vec(),
        })
    }

    /// Derives the key, authenticates the whole blob, and returns the records, sorted by id.
    ///
    /// Wrong words, a wrong passphrase or any altered byte is
    /// [`Error::BackupDecryptionFailed`]; a secret of the other kind is
    /// [`Error::BackupWrongKind`].
    pub fn open(&self, with: OpenWith<'_>) -> Result<Vec<BackupEntry>> {
        let key = match (with, &self.params) {
            (OpenWith::RecoveryKey(secret), Params::RecoveryKey) => secret.backup_key(),
            (OpenWith::Passphrase(passphrase), Params::Passphrase { kdf, salt }) => {
                check_passphrase(passphrase)?;
                kdf.derive(passphrase, salt)?
            }
            _ => return Err(Error::BackupWrongKind),
        };
        let padded = Zeroizing::new(
            aead::xopen_random(&key, &aad(&header(&self.params)), &self.sealed)
                .map_err(|_| Error::BackupDecryptionFailed)?,
        );
        decode_payload(padding::unpad(&padded, MAX_PAYLOAD_LEN)?)
    }
}

fn check_passphrase(passphrase: &str) -> Result<()> {
    if passphrase.is_empty() || passphrase.len() > MAX_PASSPHRASE_LEN {
        return Err(Error::BackupPassphrase);
    }
    Ok(())
}

/// `version || suite || object type || kind || params`.
fn header(params: &Params) -> Vec<u8> {
    let mut w = Writer::with_capacity(4 + 12 + SALT_LEN);
    w.u8(WIRE_VERSION);
    w.u8(Suite::X25519ChaChaEd25519.id());
    w.u8(OBJECT_TYPE);
    match params {
        Params::RecoveryKey => w.u8(KIND_RECOVERY_KEY),
        Params::Passphrase { kdf, salt } => {
            w.u8(KIND_PASSPHRASE);
            w.u32(kdf.memory_kib);
            w.u32(kdf.iterations);
            w.u32(kdf.parallelism);
            w.array(salt);
        }
    }
    w.into_bytes()
}

fn aad(header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + header.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.extend_from_slice(header);
    aad
}

fn encode_payload(entries: &[BackupEntry]) -> Result<Zeroizing<Vec<u8>>> {
    if entries.len() > MAX_ENTRIES {
        return Err(Error::BackupTooLarge);
    }
    let mut sorted: Vec<&BackupEntry> = entries.iter().collect();
    sorted.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    if sorted
        .windows(2)
        .any(|w| w.first().map(|e| &e.id) == w.get(1).map(|e| &e.id))
    {
        return Err(Error::DuplicateRecord);
    }
    let mut total: usize = 4;
    for e in &sorted {
        if e.id.namespace().is_reserved() {
            return Err(Error::InvalidRecordId(
                "namespaces starting with \"sotto.\" are reserved",
            ));
        }
        let ns = e.id.namespace().as_str().len();
        total = total
            .saturating_add(1 + ns + 2 + e.id.key().len() + 4)
            .saturating_add(e.value.len());
    }
    if total > MAX_PAYLOAD_LEN {
        return Err(Error::BackupTooLarge);
    }
    let mut w = Writer::with_capacity(total);
    // Bounded by MAX_ENTRIES above.
    w.u32(u32::try_from(sorted.len()).map_err(|_| Error::BackupTooLarge)?);
    for e in sorted {
        let ns = e.id.namespace().as_str().as_bytes();
        w.u8(u8::try_from(ns.len()).map_err(|_| Error::BackupTooLarge)?);
        w.array(ns);
        w.bytes_u16(e.id.key());
        w.bytes_u32(&e.value);
    }
    Ok(Zeroizing::new(w.into_bytes()))
}

fn decode_payload(payload: &[u8]) -> Result<Vec<BackupEntry>> {
    let mut r = Reader::new(payload);
    let count = usize::try_from(r.u32()?).map_err(|_| DecodeError::LengthLimit)?;
    if count > MAX_ENTRIES {
        return Err(DecodeError::LengthLimit.into());
    }
    if count.saturating_mul(MIN_ENTRY_LEN) > r.remaining() {
        return Err(DecodeError::Truncated.into());
    }
    let mut out: Vec<BackupEntry> = Vec::with_capacity(count);
    for _ in 0..count {
        let ns_len = usize::from(r.u8()?);
        if ns_len > MAX_NAMESPACE_LEN {
            return Err(DecodeError::LengthLimit.into());
        }
        let ns = core::str::from_utf8(r.take(ns_len)?).map_err(|_| DecodeError::InvalidValue)?;
        let namespace = Namespace::new(ns).map_err(|_| DecodeError::InvalidValue)?;
        if namespace.is_reserved() {
            return Err(DecodeError::InvalidValue.into());
        }
        let key = r.bytes_u16(MAX_KEY_LEN)?;
        let id = RecordId::new(&namespace, key).map_err(|_| DecodeError::LengthLimit)?;
        // Strictly increasing ids: one encoding per set of records, and no duplicates.
        if out.last().is_some_and(|last| last.id >= id) {
            return Err(DecodeError::InvalidValue.into());
        }
        let value = r.bytes_u32(MAX_PAYLOAD_LEN)?;
        out.push(BackupEntry::new(id, value));
    }
    r.finish()?;
    Ok(out)
}

/// Reads every record of `namespaces` from a store, ready for [`Backup::seal`].
pub async fn collect<S: Store>(
    store: &EncryptedStore<S>,
    namespaces: &[Namespace],
) -> Result<Vec<BackupEntry>> {
    let mut out = Vec::new();
    for ns in namespaces {
        for (id, entry) in store.list(ns, &Query::default()).await? {
            out.push(BackupEntry {
                id,
                value: entry.value,
            });
        }
    }
    Ok(out)
}

/// Writes restored records into a store, all in one transaction (existing records with the same
/// ids are overwritten).
pub async fn restore<S: Store>(
    store: &EncryptedStore<S>,
    entries: &[BackupEntry],
) -> Result<Version> {
    let mut txn = Transaction::new();
    for e in entries {
        txn.put(e.id.clone(), &e.value, Expect::Any);
    }
    store.commit(txn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_of_kdf_params() {
        assert!(KdfParams::new(19 * 1024, 2, 1).is_ok());
        assert!(KdfParams::new(8, 1, 1).is_ok());
        assert!(KdfParams::new(7, 1, 1).is_err());
        assert!(KdfParams::new(64, 0, 1).is_err());
        assert!(KdfParams::new(64, 1, 0).is_err());
        assert!(KdfParams::new(64, 1, 9).is_err()); // memory below 8 × lanes
        assert!(KdfParams::new(MAX_MEMORY_KIB, 4, 1).is_ok());
        assert!(KdfParams::new(MAX_MEMORY_KIB, 5, 1).is_err()); // total work
        assert!(KdfParams::new(MAX_MEMORY_KIB + 1, 1, 1).is_err());
        assert!(KdfParams::new(1024, MAX_ITERATIONS + 1, 1).is_err());
        assert!(KdfParams::new(1024, 1, MAX_PARALLELISM + 1).is_err());
        assert_eq!(KdfParams::default(), KdfParams::OWASP);
    }

    #[test]
    fn max_sealed_len_is_a_bucket_plus_overhead() {
        assert!(padding::is_bucket(max_sealed_len() - XNONCE_LEN - TAG_LEN));
    }
}
