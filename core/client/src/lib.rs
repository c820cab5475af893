//! # sotto-client
//!
//! The client layer of Sotto, written once for native targets and the browser (DESIGN 3):
//! where the protocol core is sans-IO, this crate owns state, randomness and (in part 2) the
//! network.
//!
//! - [`store`]: the encrypted local store. One backend trait ([`store::Store`]) with an
//!   in-memory backend on every target, an SQLite backend on native (feature `sqlite`, on by
//!   default) and an IndexedDB backend in browsers (feature `indexeddb`, on by default).
//!   [`store::EncryptedStore`] seals every value with the store key, binds it to its record id,
//!   versions the schema and migrates old stores, and changes records only by atomic
//!   compare-and-swap transactions.
//! - [`backup`]: the client's secrets sealed into one blob, to a recovery key (the 24 words) or
//!   to a passphrase stretched with Argon2id; the format is `docs/PROTOCOL.md`, "Backups".
//! - [`Error`]: one error type with stable codes; the core's codes pass through unchanged.
//!
//! Builds for `wasm32-unknown-unknown` (the SQLite backend is native-only; randomness comes from
//! `Crypto.getRandomValues`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backup;
pub mod client;
pub mod error;
mod rng;
pub mod store;
pub mod transport;

pub use client::Client;
pub use error::{Error, Result};
