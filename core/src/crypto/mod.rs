//! Typed wrappers over the primitives of cipher suite 1.
//!
//! Callers never handle raw key bytes: each key has its own type, secrets zeroize on drop and
//! print as `[redacted]`, and every operation that can fail on outside input returns a typed
//! [`Error`](crate::Error). Randomness is always passed in (`&mut impl CryptoRng`).

pub mod aead;
pub mod agreement;
pub mod hkdf;
pub mod hpke;
pub mod secret;
pub mod sign;

pub use rand_core::CryptoRng;
