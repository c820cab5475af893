//! # sotto-wasm
//!
//! The browser package's Rust side: [`SottoClient`], the client SDK
//! ([`sotto_client::Client`]) over the IndexedDB store (store key wrapped by a non-extractable
//! WebCrypto key, one writing tab elected with Web Locks) and the browser's `fetch` and
//! `WebSocket`, exported through wasm-bindgen. A thin translation: no protocol logic lives here.
//!
//! Conventions on the JS side: ids are lowercase hex strings, cursors and times are numbers,
//! every failure is a rejected promise with an `Error` named `SottoError` whose `code` is the
//! stable code of [`sotto_client::Error::code`]. The TypeScript declarations are written out in
//! `types.rs`, so results are typed rather than `any`.
//!
//! The `console` feature adds the agent console's calls (teams, members, roles, the audit log,
//! system notes, the recovery key); the widget's build leaves them out.
//!
//! Builds only for `wasm32-unknown-unknown`; on other targets the crate is empty.

#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod convert;
mod extra;
mod online;
#[cfg(feature = "console")]
mod team;
mod types;

pub use client::SottoClient;
