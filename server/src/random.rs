//! Random values and hashes for the relay's own secrets (tokens, challenges, bootstrap codes).
//!
//! Randomness comes from the operating system through `getrandom`; secrets are stored only as
//! their SHA-256, so a database dump does not hold a usable token.

use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)?;
    Ok(b)
}

/// [`random_bytes`] for handlers: a failing OS RNG is an internal error.
pub fn random_for_request<const N: usize>() -> Result<[u8; N], ApiError> {
    random_bytes().map_err(|_| {
        tracing::error!("operating system random number generator failed");
        ApiError::internal()
    })
}

/// SHA-256 of a secret, as stored.
pub fn hash(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_differ_and_hash_is_sha256() {
        assert_ne!(random_bytes::<32>().unwrap(), random_bytes::<32>().unwrap());
        assert_eq!(
            hex::encode(hash(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
