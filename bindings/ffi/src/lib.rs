//! # sotto-ffi
//!
//! The Sotto client SDK for Kotlin (Android and the JVM), Swift (iOS) and Python, through
//! [uniffi](https://mozilla.github.io/uniffi-rs/) proc-macros. A thin translation of
//! [`sotto_client::Client`] with no logic of its own:
//!
//! - [`client::SottoClient`]: one registered device over an encrypted SQLite store whose
//!   32-byte key the application supplies (keychain / keystore), with every client call as an
//!   async method; `register_client`, `open_client` and `restore_client` make one.
//! - [`types`]: records and enums for messages, teams and backups; ids as hex strings.
//! - [`events`]: events by polling ([`events::EventSubscription`]) or by callback
//!   ([`events::EventListener`]).
//! - [`error::SottoError`]: one exception type whose `code` is the client's stable error code.
//! - `runtime`: the one tokio runtime every call runs on, and the panic boundary.
//!
//! `scripts/bindings.sh` builds the library and generates the bindings in library mode with this
//! crate's `uniffi-bindgen` binary.

#![deny(missing_docs)]

pub mod client;
pub mod error;
pub mod events;
mod runtime;
pub mod types;

pub use error::SottoError;

uniffi::setup_scaffolding!("sotto");
