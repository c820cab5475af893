//! The binary encoding shared by every wire and store object.
//!
//! Integers are big-endian and fixed-width; fixed-size fields (keys, signatures, ids) are raw
//! bytes; variable fields carry a length prefix and a per-field maximum that the decoder checks
//! against before it allocates. Encoding is canonical: one value has exactly one encoding, so a
//! signature over an encoding is a signature over the value. Decoding consumes the whole input
//! or fails with [`DecodeError::TrailingBytes`].

use crate::Result;
use crate::error::DecodeError;

/// The format version of state records kept in the client's store (chain state, epoch
/// secrets, keyrings); the byte after it says which state it is.
pub(crate) const STATE_VERSION: u8 = 1;

/// Writes an encoding.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// An empty writer with room for `n` bytes, so secrets written into it are not left behind
    /// in freed buffers by reallocation.
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    /// The encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Writes the header of a state record for the client's store: [`STATE_VERSION`], then
    /// `state_type`.
    pub(crate) fn state_header(&mut self, state_type: u8) {
        self.state_header_version(STATE_VERSION, state_type);
    }

    /// The header of a state record whose layout has its own format version (chain states).
    pub(crate) fn state_header_version(&mut self, version: u8, state_type: u8) {
        self.u8(version);
        self.u8(state_type);
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Fixed-size bytes, without a length.
    pub fn array(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// Bytes with a `u16` length prefix. Callers keep such fields under 64 KiB by construction;
    /// a longer value is a bug and is cut to fit rather than wrapping the length.
    pub fn bytes_u16(&mut self, v: &[u8]) {
        let len = v.len().min(u16::MAX as usize);
        self.u16(len as u16);
        self.buf.extend_from_slice(&v[..len]);
    }

    /// Bytes with a `u32` length prefix.
    pub fn bytes_u32(&mut self, v: &[u8]) {
        let len = v.len().min(u32::MAX as usize);
        self.u32(len as u32);
        self.buf.extend_from_slice(&v[..len]);
    }

    /// Any encodable value.
    pub fn put<T: Encode + ?Sized>(&mut self, v: &T) {
        v.encode(self);
    }
}

/// Reads an encoding from untrusted bytes. Every method checks bounds and returns
/// [`DecodeError::Truncated`] instead of panicking.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes.into())
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, tail) = self.buf.split_at_checked(n).ok_or(DecodeError::Truncated)?;
        self.buf = tail;
        Ok(head)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// `N` fixed bytes.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Bytes with a `u16` length prefix, at most `max` long.
    pub fn bytes_u16(&mut self, max: usize) -> Result<&'a [u8]> {
        let len = usize::from(self.u16()?);
        self.bounded(len, max)
    }

    /// Bytes with a `u32` length prefix, at most `max` long.
    pub fn bytes_u32(&mut self, max: usize) -> Result<&'a [u8]> {
        let len = usize::try_from(self.u32()?).map_err(|_| DecodeError::LengthLimit)?;
        self.bounded(len, max)
    }

    /// A `u16` element count for a list, at most `max`, that the remaining input can hold if
    /// each element takes at least `min_element_len` bytes. Checking before the caller allocates
    /// keeps a short input from reserving a large list.
    pub fn count_u16(&mut self, max: usize, min_element_len: usize) -> Result<usize> {
        let n = usize::from(self.u16()?);
        self.check_count(n, max, min_element_len)
    }

    /// A `u32` element count, checked like [`Reader::count_u16`].
    pub fn count_u32(&mut self, max: usize, min_element_len: usize) -> Result<usize> {
        let n = usize::try_from(self.u32()?).map_err(|_| DecodeError::LengthLimit)?;
        self.check_count(n, max, min_element_len)
    }

    fn check_count(&self, n: usize, max: usize, min_element_len: usize) -> Result<usize> {
        if n > max {
            return Err(DecodeError::LengthLimit.into());
        }
        if n.saturating_mul(min_element_len) > self.remaining() {
            return Err(DecodeError::Truncated.into());
        }
        Ok(n)
    }

    /// Reads the header of a state record from the client's store: the state format version
    /// ([`STATE_VERSION`]), then the state type, which must be `expected`.
    pub(crate) fn state_header(&mut self, expected: u8) -> Result<()> {
        self.state_header_version(STATE_VERSION, expected)
    }

    /// Reads the header of a state record whose layout has its own format version `version`.
    pub(crate) fn state_header_version(
        &mut self,
        version_expected: u8,
        expected: u8,
    ) -> Result<()> {
        let version = self.u8()?;
        if version != version_expected {
            return Err(DecodeError::UnknownVersion(version).into());
        }
        let found = self.u8()?;
        if found != expected {
            return Err(DecodeError::UnexpectedObject { expected, found }.into());
        }
        Ok(())
    }

    fn bounded(&mut self, len: usize, max: usize) -> Result<&'a [u8]> {
        if len > max {
            return Err(DecodeError::LengthLimit.into());
        }
        self.take(len)
    }

    /// UTF-8 text with a `u16` length prefix, at most `max` bytes.
    pub fn string_u16(&mut self, max: usize) -> Result<String> {
        let bytes = self.bytes_u16(max)?;
        core::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidValue.into())
    }

    /// Any decodable value.
    pub fn get<T: Decode>(&mut self) -> Result<T> {
        T::decode(self)
    }
}

/// A value with a canonical encoding.
pub trait Encode {
    /// Appends the encoding to `w`.
    fn encode(&self, w: &mut Writer);

    /// The encoding as a new buffer.
    fn encode_to_vec(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_bytes()
    }
}

/// A value that can be decoded from untrusted bytes.
pub trait Decode: Sized {
    /// Reads one value from `r`.
    fn decode(r: &mut Reader<'_>) -> Result<Self>;

    /// Decodes a value that must span all of `bytes`.
    fn decode_exact(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn integers_are_big_endian_and_round_trip() {
        let mut w = Writer::new();
        w.u8(1);
        w.u16(0x0203);
        w.u32(0x0405_0607);
        w.u64(0x0809_0a0b_0c0d_0e0f);
        let bytes = w.into_bytes();
        assert_eq!(bytes, (1u8..=15).collect::<Vec<_>>());
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u16().unwrap(), 0x0203);
        assert_eq!(r.u32().unwrap(), 0x0405_0607);
        assert_eq!(r.u64().unwrap(), 0x0809_0a0b_0c0d_0e0f);
        assert!(r.finish().is_ok());
    }

    #[test]
    fn lengths_are_checked_before_reading() {
        // Claims 4 GiB with 3 bytes present: a length-limit error, not an allocation.
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        assert_eq!(
            r.bytes_u32(1024),
            Err(Error::Decode(DecodeError::LengthLimit))
        );
        let mut r = Reader::new(&[0, 0, 0, 5, 1, 2, 3]);
        assert_eq!(
            r.bytes_u32(1024),
            Err(Error::Decode(DecodeError::Truncated))
        );
        let mut r = Reader::new(&[0xff, 0xff]);
        assert_eq!(
            r.count_u16(u16::MAX as usize, 32),
            Err(Error::Decode(DecodeError::Truncated))
        );
        let mut r = Reader::new(&[0, 1, 9]);
        assert!(r.finish().is_err());
        assert_eq!(r.bytes_u16(8).unwrap(), &[9]);
        assert!(r.finish().is_ok());
    }

    #[test]
    fn invalid_utf8_is_a_typed_error() {
        let mut r = Reader::new(&[0, 2, 0xc3, 0x28]);
        assert_eq!(
            r.string_u16(16),
            Err(Error::Decode(DecodeError::InvalidValue))
        );
    }
}
