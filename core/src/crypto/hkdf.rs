//! HKDF-SHA256 (RFC 5869).

use hkdf::Hkdf;
use sha2::Sha256;

use super::secret::SecretBytes;
use crate::{Error, Result};

/// Largest output HKDF-SHA256 can produce (255 blocks of 32 bytes).
pub const MAX_OUTPUT_LEN: usize = 255 * 32;

/// A pseudorandom key from HKDF-Extract, ready to expand.
pub struct Prk(Hkdf<Sha256>);

impl Prk {
    /// HKDF-Extract. An empty salt is the RFC's default (a block of zeros).
    pub fn extract(salt: &[u8], ikm: &[u8]) -> Self {
        Prk(Hkdf::<Sha256>::new(Some(salt), ikm))
    }

    /// HKDF-Expand into `out`; fails if `out` is longer than [`MAX_OUTPUT_LEN`].
    pub fn expand(&self, info: &[u8], out: &mut [u8]) -> Result<()> {
        self.0.expand(info, out).map_err(|_| Error::InvalidLength)
    }

    /// HKDF-Expand to a fixed-size secret.
    pub fn expand_secret<const N: usize>(&self, info: &[u8]) -> SecretBytes<N> {
        let mut out = SecretBytes::new([0u8; N]);
        let mut buf = [0u8; N];
        // N is a compile-time size; every size used by the protocol is far below the limit.
        if self.0.expand(info, &mut buf).is_ok() {
            out = SecretBytes::new(buf);
        }
        zeroize::Zeroize::zeroize(&mut buf);
        out
    }
}

impl core::fmt::Debug for Prk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Prk([redacted])")
    }
}

/// HKDF-Extract then Expand in one call.
pub fn derive(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) -> Result<()> {
    Prk::extract(salt, ikm).expand(info, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_limit_is_enforced() {
        let prk = Prk::extract(b"salt", b"ikm");
        let mut ok = vec![0u8; MAX_OUTPUT_LEN];
        assert!(prk.expand(b"", &mut ok).is_ok());
        let mut too_long = vec![0u8; MAX_OUTPUT_LEN + 1];
        assert_eq!(prk.expand(b"", &mut too_long), Err(Error::InvalidLength));
    }

    #[test]
    fn info_separates_outputs() {
        let prk = Prk::extract(b"salt", b"ikm");
        let a: SecretBytes<32> = prk.expand_secret(b"a");
        let b: SecretBytes<32> = prk.expand_secret(b"b");
        assert!(!a.ct_eq(&b));
        assert!(a.expose().iter().any(|&x| x != 0));
    }
}
