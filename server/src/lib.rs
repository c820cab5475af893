//! # sotto-relay
//!
//! The relay of Sotto, an end-to-end encrypted SDK for business support chat. It stores and
//! forwards what clients send (device records, team chain links, epoch records, encrypted
//! messages and blobs) and pushes new items to connected devices. It never holds a key that opens
//! anything: it checks what can be checked without keys (signatures, chain continuity, who may
//! read what according to the verified team chain), and clients never rely on those checks.
//!
//! Modules, one job each:
//! - [`config`]: flags and environment variables;
//! - [`db`]: the SQLite / PostgreSQL pool and migrations; [`envelope_store`]: envelope writes
//!   with group commit;
//! - [`server`]: start, serve, shut down; [`routes`]: the HTTP API, one module per resource;
//! - [`auth`]: challenge-response device authentication and bearer tokens;
//! - [`teams`]: verified team chain states; [`events`] and [`fanout`]: push to WebSockets
//!   ([`ws`]), between nodes over PostgreSQL `LISTEN`/`NOTIFY` ([`pg_fanout`]);
//! - [`rate_limit`] and [`limits`] (what a client may ask for and hold open), [`metrics`], [`audit`], [`sweep`] (retention), [`error`], [`extract`];
//! - [`tenant`] and [`backup`]: operator commands; [`openapi`]: the API description;
//! - [`witness`]: `sotto-relay witness`, the team freshness witness, a separate service.
//!
//! The API is described in `docs/RELAY-API.md` and served as OpenAPI at `GET /openapi.json`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
pub mod auth;
pub mod backup;
pub mod config;
pub mod cors;
pub mod db;
pub mod envelope_store;
pub mod error;
pub mod events;
pub mod extract;
pub mod fanout;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod pg_fanout;
pub mod random;
pub mod rate_limit;
pub mod routes;
pub mod server;
pub mod state;
pub mod sweep;
pub mod teams;
pub mod tenant;
pub mod web_root;
pub mod witness;
pub mod ws;

pub use config::{Cli, Command, ServeArgs};
pub use server::{Relay, start};
