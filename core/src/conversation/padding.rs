//! Padding of message payloads to a small set of sizes (Padmé), so ciphertext lengths tell the
//! relay little about what was written (DESIGN 2: sizes are padded).
//!
//! ```text
//! padded = content_len u32 || content || 0x00 * (bucket(4 + content_len) - 4 - content_len)
//! bucket(n) = 256                      if n <= 256
//!           = padme(n)                 otherwise
//! padme(n): E = floor(log2 n), S = floor(log2 E) + 1, z = E - S,
//!           result = n rounded up to a multiple of 2^z
//! ```
//!
//! Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication with
//! PURBs", PETS 2019) leaks O(log log n) bits of the length; above the floor it adds less than
//! 1/16 (6.25 %). The 256-byte floor makes every short message (most chat lines, typing
//! indicators, receipts) the same size.

use zeroize::Zeroizing;

use crate::codec::{Reader, Writer};
use crate::error::DecodeError;
use crate::{Error, Result};

/// The smallest padded payload.
pub const MIN_PADDED_LEN: usize = 256;
/// Bytes of the content-length prefix.
const LENGTH_PREFIX_LEN: usize = 4;

/// Padmé's rounding of `n` (for `n >= 2`), or `None` if the result would overflow.
fn padme(n: usize) -> Option<usize> {
    let e = n.checked_ilog2()?;
    let s = e.checked_ilog2()? + 1;
    let z = e - s;
    let mask = (1usize << z) - 1;
    Some(n.checked_add(mask)? & !mask)
}

/// The padded size for a payload of `n` bytes (length prefix included), or `None` if it would
/// overflow.
pub fn bucket(n: usize) -> Option<usize> {
    if n <= MIN_PADDED_LEN {
        Some(MIN_PADDED_LEN)
    } else {
        padme(n)
    }
}

/// Whether `n` is a size [`pad`] can produce, checked by decoders before any decryption.
pub fn is_bucket(n: usize) -> bool {
    n >= MIN_PADDED_LEN && bucket(n) == Some(n)
}

/// The padded size for `content_len` bytes of content.
pub fn padded_len(content_len: usize) -> Result<usize> {
    content_len
        .checked_add(LENGTH_PREFIX_LEN)
        .and_then(bucket)
        .ok_or(Error::InvalidLength)
}

/// Pads `content`, which must be at most `max` (and `u32::MAX`) bytes; the output is zeroized
/// on drop since it holds the plaintext.
pub fn pad(content: &[u8], max: usize) -> Result<Zeroizing<Vec<u8>>> {
    if content.len() > max {
        return Err(Error::InvalidLength);
    }
    let len = u32::try_from(content.len()).map_err(|_| Error::InvalidLength)?;
    let total = padded_len(content.len())?;
    let mut w = Writer::with_capacity(total);
    w.u32(len);
    w.array(content);
    let mut out = Zeroizing::new(w.into_bytes());
    out.resize(total, 0);
    Ok(out)
}

/// The content of a padded payload. The payload must be exactly the bucket for the claimed
/// length, with all-zero padding, so each content has one padded form.
pub fn unpad(padded: &[u8], max: usize) -> Result<&[u8]> {
    let mut r = Reader::new(padded);
    let len = usize::try_from(r.u32()?).map_err(|_| DecodeError::LengthLimit)?;
    if len > max {
        return Err(DecodeError::LengthLimit.into());
    }
    let content = r.take(len)?;
    if padded_len(len).ok() != Some(padded.len()) {
        return Err(DecodeError::InvalidValue.into());
    }
    let padding = r.take(r.remaining())?;
    if padding.iter().any(|&b| b != 0) {
        return Err(DecodeError::InvalidValue.into());
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_sizes_follow_padme_with_a_256_byte_floor() {
        let table = [
            (0, 256),
            (1, 256),
            (256, 256),
            (257, 272),
            (272, 272),
            (273, 288),
            (511, 512),
            (512, 512),
            (513, 544),
            (1000, 1024),
            (1025, 1088),
            (4096, 4096),
            (4097, 4352),
            (65_540, 67_584),
            (1 << 20, 1 << 20),
            ((1 << 20) + 1, (1 << 20) + (1 << 15)),
        ];
        for (n, b) in table {
            assert_eq!(bucket(n), Some(b), "n = {n}");
        }
        assert_eq!(bucket(usize::MAX), None);
    }

    #[test]
    fn buckets_are_stable_and_cost_less_than_a_sixteenth() {
        for n in 1..70_000usize {
            let b = bucket(n).unwrap();
            assert!(b >= n);
            assert!(is_bucket(b), "n = {n}");
            assert_eq!(bucket(b), Some(b));
            if n > MIN_PADDED_LEN {
                assert!((b - n) * 16 < n, "n = {n}, bucket {b}");
            }
        }
        assert!(!is_bucket(255));
        assert!(!is_bucket(257));
        assert!(is_bucket(272));
    }

    #[test]
    fn pad_and_unpad_round_trip() {
        for len in [0usize, 1, 100, 252, 253, 268, 269, 5_000, 65_536] {
            let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            let padded = pad(&content, 65_536).unwrap();
            assert_eq!(padded.len(), padded_len(len).unwrap());
            assert_eq!(&padded[..4], &(len as u32).to_be_bytes());
            assert_eq!(unpad(&padded, 65_536).unwrap(), &content[..]);
        }
        assert_eq!(pad(&[0; 252], 1000).unwrap().len(), 256);
        assert_eq!(pad(&[0; 253], 1000).unwrap().len(), 272);
        assert_eq!(pad(&[0; 11], 10).unwrap_err(), Error::InvalidLength);
    }

    #[test]
    fn unpad_refuses_malformed_payloads() {
        let padded = pad(b"hello", 100).unwrap();
        let mut nonzero = padded.to_vec();
        nonzero[200] = 1;
        assert_eq!(
            unpad(&nonzero, 100),
            Err(Error::Decode(DecodeError::InvalidValue))
        );
        // A length that points past the end, or beyond the caller's limit.
        let mut long = padded.to_vec();
        long[..4].copy_from_slice(&300u32.to_be_bytes());
        assert_eq!(
            unpad(&long, 1_000),
            Err(Error::Decode(DecodeError::Truncated))
        );
        assert_eq!(
            unpad(&long, 100),
            Err(Error::Decode(DecodeError::LengthLimit))
        );
        // Extra or missing padding is not the canonical bucket.
        let mut extra = padded.to_vec();
        extra.extend_from_slice(&[0; 16]);
        assert_eq!(
            unpad(&extra, 100),
            Err(Error::Decode(DecodeError::InvalidValue))
        );
        assert_eq!(
            unpad(&padded[..255], 100),
            Err(Error::Decode(DecodeError::InvalidValue))
        );
        for cut in 0..4 {
            assert_eq!(
                unpad(&padded[..cut], 100),
                Err(Error::Decode(DecodeError::Truncated))
            );
        }
        let mut big = vec![0xff; 4];
        big.resize(256, 0);
        assert_eq!(
            unpad(&big, usize::MAX),
            Err(Error::Decode(DecodeError::Truncated))
        );
    }
}
