//! # sotto-core
//!
//! The protocol core of Sotto, an end-to-end encrypted SDK for business support chat.
//!
//! This crate is sans-IO: it performs no I/O, owns no threads, reads no clock and draws no
//! randomness of its own. Every operation that needs randomness takes a
//! [`CryptoRng`](crypto::CryptoRng), and every operation that needs the time takes it as a
//! number, so each state transition is a plain, testable function.
//!
//! Layers, bottom up:
//! - [`crypto`]: typed wrappers over X25519, Ed25519, (X)ChaCha20-Poly1305, HKDF-SHA256 and HPKE;
//! - [`codec`] and [`wire`]: the canonical, length-checked binary encoding and its envelope;
//! - [`device`] and [`recovery`]: device identities, key-agreement keys, recovery secrets.
//!
//! The byte layouts, labels and derivations are specified in `docs/PROTOCOL.md`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
pub mod conversation;
pub mod crypto;
pub mod device;
pub mod error;
pub mod recovery;
pub mod sorted_map;
pub mod team;
pub mod wire;

pub use error::{ChainError, DecodeError, DeletionError, EpochError, Error, MessageError, Result};

/// The README's examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// A deterministic RNG for unit tests.
#[cfg(test)]
pub(crate) fn test_rng(seed: u64) -> chacha20::ChaCha20Rng {
    use rand_core::SeedableRng;
    chacha20::ChaCha20Rng::seed_from_u64(seed)
}
