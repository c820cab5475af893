//! Fixed-size secret bytes: zeroized on drop, redacted in Debug, compared in constant time.

use core::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// `N` secret bytes.
///
/// Deliberately not `Copy`, and without `PartialEq`: equality goes through
/// [`SecretBytes::ct_eq`] so no caller compares secrets in variable time by accident.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes<const N: usize>([u8; N]);

impl<const N: usize> SecretBytes<N> {
    /// Takes ownership of the bytes. The caller's copy, if any, is its own to zeroize.
    pub fn new(bytes: [u8; N]) -> Self {
        SecretBytes(bytes)
    }

    /// Fills a new secret from the RNG.
    pub fn random(rng: &mut impl rand_core::CryptoRng) -> Self {
        let mut s = SecretBytes([0u8; N]);
        rng.fill_bytes(&mut s.0);
        s
    }

    /// Copies from a slice of exactly `N` bytes.
    pub fn from_slice(bytes: &[u8]) -> crate::Result<Self> {
        let arr: [u8; N] = bytes.try_into().map_err(|_| crate::Error::InvalidLength)?;
        Ok(SecretBytes(arr))
    }

    /// The secret bytes, for handing to a primitive.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl<const N: usize> fmt::Debug for SecretBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes<{N}>([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_bytes() {
        let s = SecretBytes::new([0xAB; 32]);
        let shown = format!("{s:?}");
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn ct_eq_distinguishes_one_bit() {
        let a = SecretBytes::new([7u8; 16]);
        let mut b_bytes = [7u8; 16];
        assert!(a.ct_eq(&SecretBytes::new(b_bytes)));
        b_bytes[15] ^= 1;
        assert!(!a.ct_eq(&SecretBytes::new(b_bytes)));
    }

    #[test]
    fn from_slice_checks_length() {
        assert!(SecretBytes::<32>::from_slice(&[0u8; 31]).is_err());
        assert!(SecretBytes::<32>::from_slice(&[0u8; 33]).is_err());
        assert!(SecretBytes::<32>::from_slice(&[0u8; 32]).is_ok());
    }
}
