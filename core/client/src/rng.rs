//! Randomness for the client layer.
//!
//! The protocol core takes an RNG as an argument; the client layer is where one comes from.
//! Each operation that needs randomness seeds a fresh ChaCha20 generator from the operating
//! system (`getrandom`: the OS on native, `Crypto.getRandomValues` in browsers) and drops it
//! afterwards. A failing OS source is the typed error [`Error::RandomSource`], never a panic, and
//! no generator state outlives the operation (so a forked process cannot repeat a nonce).

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// A fresh cryptographic RNG seeded from the operating system.
pub(crate) fn os_rng() -> Result<ChaCha20Rng> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|_| Error::RandomSource)?;
    Ok(ChaCha20Rng::from_seed(*seed))
}

#[cfg(test)]
mod tests {
    use rand_core::Rng;

    #[test]
    fn two_rngs_differ() {
        let a = super::os_rng().unwrap().next_u64();
        let b = super::os_rng().unwrap().next_u64();
        assert_ne!(a, b);
    }
}
