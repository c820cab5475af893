//! Attachments: files encrypted as a chunked stream under a random per-file key (DESIGN 4.4).
//!
//! ```text
//! blob        = chunk_0 || chunk_1 || ... || chunk_last        (each ChaCha20-Poly1305, aad empty)
//! chunk_i     = Seal(file key, nonce(i, i == last), plaintext[i * 65536 .. (i + 1) * 65536])
//! nonce(i, f) = 0x00 * 7 || i u32 || f u8                       (f = 1 for the last chunk only)
//! ```
//!
//! This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, CRYPTO 2015): every
//! chunk is bound to its position and to whether it ends the file, so reordering, duplicating,
//! dropping, truncating or extending chunks all fail authentication. Every chunk but the last
//! holds exactly 64 KiB; the last holds the rest, possibly nothing, and there is always one, so
//! an empty file is a single 16-byte chunk. The key is fresh for every file and never used for
//! anything else, which is why a zero nonce prefix is safe.
//!
//! The blob goes to the relay as an opaque object; the key, size, hash, name and type travel in
//! an [`AttachmentRef`] inside an encrypted message.

use core::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::codec::{Decode, Encode, Reader, Writer};
use crate::crypto::aead::{self, AeadKey, NONCE_LEN, Nonce, TAG_LEN};
use crate::crypto::secret::SecretBytes;
use crate::error::DecodeError;
use crate::{Error, Result};

/// Plaintext bytes per chunk (all but the last chunk are exactly this long).
pub const CHUNK_LEN: usize = 65_536;
/// Bytes of a full chunk once sealed.
pub const SEALED_CHUNK_LEN: usize = CHUNK_LEN + TAG_LEN;
/// Largest file: 2^32 chunks of 64 KiB (256 TiB), the reach of a `u32` chunk index.
pub const MAX_ATTACHMENT_LEN: u64 = (u32::MAX as u64 + 1) * CHUNK_LEN as u64;
/// Longest file name, in UTF-8 bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Longest media type, in UTF-8 bytes (RFC 6838 allows 127 + 1 + 127).
pub const MAX_MIME_LEN: usize = 255;

/// `0x00 * 7 || index u32 || last u8`.
fn chunk_nonce(index: u32, last: bool) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    let (_, tail) = n.split_at_mut(NONCE_LEN - 5);
    let (i, flag) = tail.split_at_mut(4);
    i.copy_from_slice(&index.to_be_bytes());
    flag.fill(u8::from(last));
    Nonce(n)
}

/// The blob size for a file of `size` bytes, or `None` beyond [`MAX_ATTACHMENT_LEN`].
pub fn sealed_len(size: u64) -> Option<u64> {
    if size > MAX_ATTACHMENT_LEN {
        return None;
    }
    let chunks = size.div_ceil(CHUNK_LEN as u64).max(1);
    size.checked_add(chunks.checked_mul(TAG_LEN as u64)?)
}

/// Everything needed to fetch-and-open an attachment, carried inside an encrypted message:
///
/// ```text
/// AttachmentRef = key[32] || size u64 || sha256[32] || name (u16 len, UTF-8, <= 255)
///                 || mime_type (u16 len, UTF-8, <= 255)
/// ```
#[derive(Clone)]
pub struct AttachmentRef {
    key: AeadKey,
    size: u64,
    sha256: [u8; 32],
    name: String,
    mime_type: String,
}

impl AttachmentRef {
    /// The file size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// SHA-256 of the plaintext file.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The file name as the sender gave it. Untrusted: sanitize before using it as a path.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The media type as the sender gave it. Untrusted.
    pub fn mime_type(&self) -> &str {
        &self.mime_type
    }

    /// The encoding, in a buffer zeroized on drop, to use as (part of) a message's content.
    pub fn to_content(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(32 + 8 + 32 + 4 + self.name.len() + self.mime_type.len());
        self.encode(&mut w);
        Zeroizing::new(w.into_bytes())
    }
}

fn check_text(name: &str, mime_type: &str) -> Result<()> {
    if name.len() > MAX_NAME_LEN || mime_type.len() > MAX_MIME_LEN {
        return Err(Error::InvalidLength);
    }
    Ok(())
}

/// The key is compared in constant time.
impl PartialEq for AttachmentRef {
    fn eq(&self, other: &Self) -> bool {
        self.key.secret_bytes().ct_eq(other.key.secret_bytes())
            && self.size == other.size
            && self.sha256 == other.sha256
            && self.name == other.name
            && self.mime_type == other.mime_type
    }
}

impl Eq for AttachmentRef {}

impl fmt::Debug for AttachmentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentRef")
            .field("size", &self.size)
            .field("mime_type", &self.mime_type)
            .field("key", &"[redacted]")
            .field("name", &"[redacted]")
            .finish()
    }
}

/// The encoding holds the file key: prefer [`AttachmentRef::to_content`], whose buffer is
/// zeroized.
impl Encode for AttachmentRef {
    fn encode(&self, w: &mut Writer) {
        w.array(self.key.secret_bytes().expose());
        w.u64(self.size);
        w.array(&self.sha256);
        w.bytes_u16(self.name.as_bytes());
        w.bytes_u16(self.mime_type.as_bytes());
    }
}

impl Decode for AttachmentRef {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let key = AeadKey::new(SecretBytes::new(r.array()?));
        let size = r.u64()?;
        if size > MAX_ATTACHMENT_LEN {
            return Err(DecodeError::InvalidValue.into());
        }
        Ok(AttachmentRef {
            key,
            size,
            sha256: r.array()?,
            name: r.string_u16(MAX_NAME_LEN)?,
            mime_type: r.string_u16(MAX_MIME_LEN)?,
        })
    }
}

/// Encrypts a file pushed in pieces of any size; the output of every call is the next part of
/// the blob.
pub struct AttachmentEncryptor {
    key: AeadKey,
    index: u32,
    /// Plaintext of the chunk being filled; never grows past [`CHUNK_LEN`], so it is never
    /// reallocated and leaves no copies behind.
    buffer: Zeroizing<Vec<u8>>,
    size: u64,
    hash: Sha256,
}

impl AttachmentEncryptor {
    /// Starts a file under a fresh random key.
    pub fn new(rng: &mut impl rand_core::CryptoRng) -> Self {
        AttachmentEncryptor {
            key: AeadKey::generate(rng),
            index: 0,
            buffer: Zeroizing::new(Vec::with_capacity(CHUNK_LEN)),
            size: 0,
            hash: Sha256::new(),
        }
    }

    /// Adds the next bytes of the file; returns the chunks they completed (possibly none).
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            // A full buffer is sealed only once more data shows it is not the last chunk.
            if self.buffer.len() == CHUNK_LEN {
                out.extend_from_slice(&self.seal_buffer(false)?);
            }
            let take = (CHUNK_LEN - self.buffer.len()).min(data.len());
            let (head, tail) = data.split_at(take);
            self.size = self
                .size
                .checked_add(head.len() as u64)
                .filter(|&s| s <= MAX_ATTACHMENT_LEN)
                .ok_or(Error::InvalidLength)?;
            self.buffer.extend_from_slice(head);
            self.hash.update(head);
            data = tail;
        }
        Ok(out)
    }

    fn seal_buffer(&mut self, last: bool) -> Result<Vec<u8>> {
        let next = if last {
            self.index
        } else {
            self.index.checked_add(1).ok_or(Error::InvalidLength)?
        };
        let sealed = aead::seal(&self.key, &chunk_nonce(self.index, last), &[], &self.buffer);
        self.buffer.zeroize();
        self.index = next;
        Ok(sealed)
    }

    /// Seals the last chunk and returns it with the reference to send in a message.
    /// `name` and `mime_type` are at most 255 bytes each ([`Error::InvalidLength`]).
    pub fn finish(mut self, name: &str, mime_type: &str) -> Result<(Vec<u8>, AttachmentRef)> {
        check_text(name, mime_type)?;
        let last = self.seal_buffer(true)?;
        let reference = AttachmentRef {
            key: self.key.clone(),
            size: self.size,
            sha256: self.hash.clone().finalize().into(),
            name: name.to_owned(),
            mime_type: mime_type.to_owned(),
        };
        Ok((last, reference))
    }
}

impl fmt::Debug for AttachmentEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentEncryptor")
            .field("size", &self.size)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Decrypts a blob pushed in pieces of any size.
///
/// Each chunk returned by [`AttachmentDecryptor::push`] is authentic, but the file is only
/// known to be complete, in order and the one referenced once [`AttachmentDecryptor::finish`]
/// succeeds: until then, treat the output as provisional and discard it on any error. After an
/// error every call fails.
pub struct AttachmentDecryptor {
    key: AeadKey,
    size: u64,
    sha256: [u8; 32],
    expected_blob_len: u64,
    index: u32,
    buffer: Vec<u8>,
    received: u64,
    produced: u64,
    hash: Sha256,
    failed: bool,
}

impl AttachmentDecryptor {
    /// Starts decrypting the blob `reference` describes.
    pub fn new(reference: &AttachmentRef) -> Self {
        AttachmentDecryptor {
            key: reference.key.clone(),
            size: reference.size,
            sha256: reference.sha256,
            expected_blob_len: sealed_len(reference.size).unwrap_or(0),
            index: 0,
            buffer: Vec::with_capacity(SEALED_CHUNK_LEN),
            received: 0,
            produced: 0,
            hash: Sha256::new(),
            failed: false,
        }
    }

    /// Adds the next bytes of the blob; returns the plaintext of the chunks they completed.
    pub fn push(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if self.failed {
            return Err(Error::DecryptionFailed);
        }
        let result = self.push_inner(data);
        self.failed = result.is_err();
        result
    }

    fn push_inner(&mut self, mut data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        // A blob longer than the reference allows is refused before any work.
        self.received = self.received.saturating_add(data.len() as u64);
        if self.received > self.expected_blob_len {
            return Err(Error::DecryptionFailed);
        }
        // Room for all the plaintext this call can release, so it is never reallocated.
        let mut out = Zeroizing::new(Vec::with_capacity(
            self.buffer.len().saturating_add(data.len()),
        ));
        while !data.is_empty() {
            if self.buffer.len() == SEALED_CHUNK_LEN {
                let chunk = self.open_buffer(false)?;
                out.extend_from_slice(&chunk);
            }
            let take = (SEALED_CHUNK_LEN - self.buffer.len()).min(data.len());
            let (head, tail) = data.split_at(take);
            self.buffer.extend_from_slice(head);
            data = tail;
        }
        Ok(out)
    }

    fn open_buffer(&mut self, last: bool) -> Result<Zeroizing<Vec<u8>>> {
        let plain = Zeroizing::new(aead::open(
            &self.key,
            &chunk_nonce(self.index, last),
            &[],
            &self.buffer,
        )?);
        self.buffer.clear();
        if !last {
            self.index = self.index.checked_add(1).ok_or(Error::DecryptionFailed)?;
        }
        self.produced = self.produced.saturating_add(plain.len() as u64);
        self.hash.update(plain.as_slice());
        Ok(plain)
    }

    /// Opens the last chunk and checks the whole file against the reference (size and SHA-256);
    /// returns the last chunk's plaintext.
    pub fn finish(mut self) -> Result<Zeroizing<Vec<u8>>> {
        if self.failed {
            return Err(Error::DecryptionFailed);
        }
        let last = self.open_buffer(true)?;
        let digest: [u8; 32] = self.hash.clone().finalize().into();
        if self.produced != self.size || !bool::from(digest.ct_eq(&self.sha256)) {
            return Err(Error::DecryptionFailed);
        }
        Ok(last)
    }
}

impl fmt::Debug for AttachmentDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentDecryptor")
            .field("size", &self.size)
            .field("produced", &self.produced)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Encrypts a whole file in one call; returns the blob and its reference.
pub fn encrypt_attachment(
    rng: &mut impl rand_core::CryptoRng,
    data: &[u8],
    name: &str,
    mime_type: &str,
) -> Result<(Vec<u8>, AttachmentRef)> {
    check_text(name, mime_type)?;
    let mut encryptor = AttachmentEncryptor::new(rng);
    let mut blob = encryptor.push(data)?;
    let (last, reference) = encryptor.finish(name, mime_type)?;
    blob.extend_from_slice(&last);
    Ok((blob, reference))
}

/// Decrypts a whole blob in one call and checks it against its reference.
pub fn decrypt_attachment(reference: &AttachmentRef, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let mut decryptor = AttachmentDecryptor::new(reference);
    // Sized from what is actually here, never from the (sender-chosen) reference alone, and
    // up front so the plaintext is never copied by reallocation.
    let mut out = Zeroizing::new(Vec::with_capacity(blob.len()));
    out.extend_from_slice(&decryptor.push(blob)?);
    out.extend_from_slice(&decryptor.finish()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 253) as u8).collect()
    }

    fn chunks(blob: &[u8]) -> Vec<Vec<u8>> {
        blob.chunks(SEALED_CHUNK_LEN).map(<[u8]>::to_vec).collect()
    }

    fn sealed(len: usize) -> (Vec<u8>, Vec<u8>, AttachmentRef) {
        let data = file(len);
        let (blob, r) = encrypt_attachment(
            &mut crate::test_rng(len as u64),
            &data,
            "a.png",
            "image/png",
        )
        .unwrap();
        (data, blob, r)
    }

    #[test]
    fn files_of_every_shape_round_trip() {
        for len in [
            0,
            1,
            CHUNK_LEN - 1,
            CHUNK_LEN,
            CHUNK_LEN + 1,
            2 * CHUNK_LEN,
            3 * CHUNK_LEN + 5,
        ] {
            let (data, blob, r) = sealed(len);
            assert_eq!(
                blob.len() as u64,
                sealed_len(len as u64).unwrap(),
                "len {len}"
            );
            assert_eq!(r.size(), len as u64);
            assert_eq!(r.sha256(), &<[u8; 32]>::from(Sha256::digest(&data)));
            assert_eq!(
                &decrypt_attachment(&r, &blob).unwrap()[..],
                &data[..],
                "len {len}"
            );
        }
        // An empty file is one final, empty chunk: just a tag.
        assert_eq!(sealed(0).1.len(), TAG_LEN);
        assert_eq!(sealed_len(MAX_ATTACHMENT_LEN + 1), None);
    }

    #[test]
    fn chunk_nonces_encode_index_and_last_flag() {
        let (data, blob, r) = sealed(CHUNK_LEN + 10);
        let parts = chunks(&blob);
        let mut first = [0u8; 12];
        first[7..11].copy_from_slice(&0u32.to_be_bytes());
        let mut last = [0u8; 12];
        last[7..11].copy_from_slice(&1u32.to_be_bytes());
        last[11] = 1;
        assert_eq!(chunk_nonce(1, true), Nonce(last));
        assert_eq!(
            aead::open(&r.key, &Nonce(first), &[], &parts[0]).unwrap(),
            &data[..CHUNK_LEN]
        );
        assert_eq!(
            aead::open(&r.key, &Nonce(last), &[], &parts[1]).unwrap(),
            &data[CHUNK_LEN..]
        );
        // The same chunk under the other flag value does not open.
        let mut not_last = last;
        not_last[11] = 0;
        assert!(aead::open(&r.key, &Nonce(not_last), &[], &parts[1]).is_err());
    }

    #[test]
    fn streaming_matches_one_shot_whatever_the_piece_sizes() {
        let data = file(3 * CHUNK_LEN + 123);
        let mut rng = crate::test_rng(40);
        let mut encryptor = AttachmentEncryptor::new(&mut rng);
        let mut blob = Vec::new();
        let mut rest = &data[..];
        for piece in [1usize, 7, CHUNK_LEN - 8, CHUNK_LEN, 100_000] {
            let (head, tail) = rest.split_at(piece.min(rest.len()));
            blob.extend(encryptor.push(head).unwrap());
            rest = tail;
        }
        blob.extend(encryptor.push(rest).unwrap());
        let (last, r) = encryptor.finish("report.pdf", "application/pdf").unwrap();
        blob.extend(last);
        assert_eq!(&decrypt_attachment(&r, &blob).unwrap()[..], &data[..]);

        let mut decryptor = AttachmentDecryptor::new(&r);
        let mut out = Vec::new();
        for piece in blob.chunks(9_999) {
            out.extend_from_slice(&decryptor.push(piece).unwrap());
        }
        out.extend_from_slice(&decryptor.finish().unwrap());
        assert_eq!(out, data);
    }

    #[test]
    fn a_full_chunk_is_held_back_until_more_data_arrives() {
        let mut encryptor = AttachmentEncryptor::new(&mut crate::test_rng(41));
        assert!(encryptor.push(&file(CHUNK_LEN)).unwrap().is_empty());
        assert_eq!(encryptor.push(&[1]).unwrap().len(), SEALED_CHUNK_LEN);
        let (last, r) = encryptor.finish("", "").unwrap();
        assert_eq!(last.len(), 1 + TAG_LEN);
        assert_eq!(r.size(), CHUNK_LEN as u64 + 1);
    }

    #[test]
    fn truncation_reordering_duplication_and_extension_fail() {
        let (_, blob, r) = sealed(3 * CHUNK_LEN + 5);
        let parts = chunks(&blob);
        assert_eq!(parts.len(), 4);
        let join =
            |order: &[usize]| -> Vec<u8> { order.iter().flat_map(|&i| parts[i].clone()).collect() };
        let bad = [
            join(&[0, 1, 2]),       // last chunk dropped
            join(&[0, 1, 3]),       // middle chunk dropped
            join(&[1, 0, 2, 3]),    // reordered
            join(&[0, 0, 1, 2, 3]), // duplicated
            join(&[0, 1, 2, 3, 3]), // final chunk repeated
            join(&[0, 1, 2, 3, 0]), // extended
            join(&[3]),             // only the final chunk
            blob[..blob.len() - 1].to_vec(),
            blob[..SEALED_CHUNK_LEN].to_vec(),
            blob[..SEALED_CHUNK_LEN + 1].to_vec(),
            [blob.clone(), vec![0]].concat(),
            Vec::new(),
        ];
        for (i, b) in bad.iter().enumerate() {
            assert_eq!(
                decrypt_attachment(&r, b).unwrap_err(),
                Error::DecryptionFailed,
                "case {i}"
            );
        }
        for i in (0..blob.len()).step_by(4099) {
            let mut t = blob.clone();
            t[i] ^= 0x20;
            assert!(decrypt_attachment(&r, &t).is_err(), "byte {i}");
        }
    }

    #[test]
    fn the_last_chunk_flag_alone_catches_truncation_at_a_chunk_boundary() {
        // Even with a reference whose size and hash match the shortened file, a blob cut after
        // a non-last chunk does not open: its final chunk was sealed as "not last".
        let (data, blob, r) = sealed(3 * CHUNK_LEN + 5);
        let cut = 3 * CHUNK_LEN;
        let forged = AttachmentRef {
            size: cut as u64,
            sha256: Sha256::digest(&data[..cut]).into(),
            ..r.clone()
        };
        assert_eq!(
            decrypt_attachment(&forged, &blob[..3 * SEALED_CHUNK_LEN]).unwrap_err(),
            Error::DecryptionFailed
        );
        // Reordering is caught chunk by chunk, before the end.
        let mut d = AttachmentDecryptor::new(&r);
        let mut swapped = blob[SEALED_CHUNK_LEN..2 * SEALED_CHUNK_LEN].to_vec();
        swapped.push(0);
        assert_eq!(d.push(&swapped).unwrap_err(), Error::DecryptionFailed);
    }

    #[test]
    fn the_reference_must_match_the_blob() {
        let (_, blob, r) = sealed(1_000);
        let (_, _, other) = sealed(1_001);
        let mut bytes = r.to_content().to_vec();
        // Wrong key.
        let mut wrong_key = r.clone();
        wrong_key.key = other.key.clone();
        assert!(decrypt_attachment(&wrong_key, &blob).is_err());
        // Wrong size or hash, though every chunk authenticates.
        let mut wrong_size = r.clone();
        wrong_size.size = 999;
        assert!(decrypt_attachment(&wrong_size, &blob).is_err());
        bytes[40] ^= 1;
        let wrong_hash = AttachmentRef::decode_exact(&bytes).unwrap();
        assert_eq!(
            decrypt_attachment(&wrong_hash, &blob).unwrap_err(),
            Error::DecryptionFailed
        );
        assert_eq!(decrypt_attachment(&r, &blob).unwrap().len(), 1_000);
    }

    #[test]
    fn a_failed_decryptor_stays_failed() {
        let (_, blob, r) = sealed(2 * CHUNK_LEN + 1);
        let mut d = AttachmentDecryptor::new(&r);
        let mut bad = blob[..SEALED_CHUNK_LEN + 1].to_vec();
        bad[3] ^= 1;
        assert!(d.push(&bad).is_err());
        assert!(d.push(&blob[SEALED_CHUNK_LEN + 1..]).is_err());
        assert!(d.finish().is_err());
    }

    #[test]
    fn reference_round_trips_and_its_decoder_is_bounded() {
        let (_, _, r) = sealed(5);
        let bytes = r.to_content();
        assert_eq!(bytes.len(), 32 + 8 + 32 + 2 + 5 + 2 + 9);
        assert_eq!(AttachmentRef::decode_exact(&bytes).unwrap(), r);
        assert_eq!(r.encode_to_vec(), bytes.to_vec());
        assert_eq!((r.name(), r.mime_type()), ("a.png", "image/png"));
        for cut in 0..bytes.len() {
            assert!(AttachmentRef::decode_exact(&bytes[..cut]).is_err());
        }
        let mut big = bytes.to_vec();
        big[32..40].copy_from_slice(&(MAX_ATTACHMENT_LEN + 1).to_be_bytes());
        assert_eq!(
            AttachmentRef::decode_exact(&big).unwrap_err(),
            Error::Decode(DecodeError::InvalidValue)
        );
        let mut long_name = bytes[..72].to_vec();
        long_name.extend_from_slice(&256u16.to_be_bytes());
        long_name.extend_from_slice(&[b'a'; 256]);
        long_name.extend_from_slice(&[0, 0]);
        assert_eq!(
            AttachmentRef::decode_exact(&long_name).unwrap_err(),
            Error::Decode(DecodeError::LengthLimit)
        );
        let mut bad_utf8 = bytes.to_vec();
        bad_utf8[74] = 0xff;
        assert_eq!(
            AttachmentRef::decode_exact(&bad_utf8).unwrap_err(),
            Error::Decode(DecodeError::InvalidValue)
        );
        let long = "x".repeat(MAX_NAME_LEN + 1);
        let mut rng = crate::test_rng(42);
        assert_eq!(
            encrypt_attachment(&mut rng, b"", &long, "text/plain").unwrap_err(),
            Error::InvalidLength
        );
        let encryptor = AttachmentEncryptor::new(&mut rng);
        assert_eq!(
            encryptor.finish("n", &long).unwrap_err(),
            Error::InvalidLength
        );
    }

    #[test]
    fn debug_output_is_redacted() {
        let (_, _, r) = sealed(3);
        let key_hex: String = r.key.secret_bytes().expose()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut rng = crate::test_rng(43);
        let shown = format!(
            "{r:?} {:?} {:?}",
            AttachmentEncryptor::new(&mut rng),
            AttachmentDecryptor::new(&r)
        );
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&key_hex), "{shown}");
        assert!(!shown.contains("a.png"), "{shown}");
    }
}
