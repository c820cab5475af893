//! # sotto-client
//!
//! The client layer of Sotto, written once for native targets and the browser (DESIGN 3):
//! where the protocol core is sans-IO, this crate owns state, randomness and the network.
//!
//! - [`Client`] ([`client`]): the async API applications use. Register a device, create and
//!   manage teams, open conversations as a visitor, send text, attachments, typing and read
//!   receipts, receive through a stream of [`Event`](client::Event)s, load history, back up and
//!   restore, delete. Sending queues first and retries; reconnecting resumes from the stored
//!   cursors; concurrent calls are safe (every state change is an atomic store transaction).
//! - [`store`]: the encrypted local store. One backend trait ([`store::Store`]) with an
//!   in-memory backend on every target, an SQLite backend on native (feature `sqlite`, on by
//!   default) and an IndexedDB backend in browsers (feature `indexeddb`, on by default).
//!   [`store::EncryptedStore`] seals every value with the store key, binds it to its record id,
//!   versions the schema and migrates old stores, and changes records only by atomic
//!   compare-and-swap transactions.
//! - [`transport`]: how the client reaches the relay ([`transport::Transport`]: HTTP requests,
//!   a push stream, a clock, a timer) and the URL policy (`https`/`wss` only, plain `http` only
//!   on loopback). [`transport::NativeTransport`] (feature `native-transport`, on by default)
//!   uses reqwest and tokio-tungstenite over rustls; `transport::WebTransport` (feature
//!   `web-transport`, on by default, browsers only) the browser's `fetch` and `WebSocket`.
//! - [`backup`]: the client's secrets sealed into one blob, to a recovery key (the 24 words) or
//!   to a passphrase stretched with Argon2id; the format is `docs/PROTOCOL.md`, "Backups".
//! - [`Error`]: one error type with stable codes; the core's codes pass through unchanged.
//!
//! Builds for `wasm32-unknown-unknown` (the SQLite backend and the native transport are
//! native-only; randomness comes from `Crypto.getRandomValues`).
//!
//! # Example
//!
//! A visitor writes to a team; an agent's app receives it.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use sotto_client::client::{Body, Event, TeamRef};
//! use sotto_client::store::{EncryptedStore, MemoryStore, StoreKey};
//! use sotto_client::transport::NativeTransport;
//! use sotto_client::Client;
//! use sotto_core::device::DeviceKind;
//!
//! # async fn visitor() -> sotto_client::Result<()> {
//! // The widget snippet carries the relay, the tenant's widget id and the team reference.
//! let team = TeamRef::parse(
//!     "00112233445566778899aabbccddeeff:\
//!      00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
//! )?;
//! let store = EncryptedStore::open(MemoryStore::new(), StoreKey::generate()?).await?;
//! let transport = NativeTransport::new()?;
//! let visitor = Client::register(
//!     store,
//!     transport,
//!     "https://relay.example.com",
//!     "0123456789abcdef0123456789abcdef",
//!     DeviceKind::Visitor,
//!     None,
//! )
//! .await?;
//! let conversation = visitor.open_conversation(team).await?;
//! visitor.send_text(&conversation, "my order 1234 is late").await?;
//! # Ok(())
//! # }
//!
//! # async fn agent(agent: Client<MemoryStore, NativeTransport>) {
//! // An agent's app: keep the connection in the background and react to events.
//! let mut events = agent.events();
//! let background = agent.clone();
//! tokio::spawn(async move { background.run().await });
//! while let Some(event) = events.next().await {
//!     if let Event::Message { conversation, message } = event {
//!         if let Body::Text(text) = &message.body {
//!             println!("{text}");
//!             let _ = agent.send_read_receipt(&conversation, message.cursor.unwrap_or(0)).await;
//!         }
//!     }
//! }
//! # }
//! ```

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
