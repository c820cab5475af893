//! The team chain (DESIGN 4.3): an append-only, hash-linked, signed log of membership, role,
//! device, key and policy changes, verified by every client from the team's fingerprint.
//!
//! - [`link`]: the link format, its signature and hash;
//! - [`state`]: the verified state and the rules each link must satisfy;
//! - [`keys`]: team key generations sealed to devices;
//! - [`attestation`]: signed, timed statements of the current head, for freshness;
//! - [`witness`]: the freshness witness's signed statements of the head, checked against ours;
//! - [`role`] and [`policy`]: access levels and team settings;
//! - [`rules`]: who may make which change;
//! - [`snapshot`]: the verified state as a store record.

pub mod attestation;
pub mod generations;
pub mod ids;
pub mod keys;
pub mod link;
pub mod policy;
pub mod role;
pub mod rules;
pub mod snapshot;
pub mod state;
pub mod witness;

pub use ids::{LinkHash, MemberId, TeamId};
pub use keys::TeamKeyring;
pub use link::{Change, Link};
pub use policy::{HistoryMode, Policy};
pub use role::Role;
pub use rules::permitted;
pub use state::{FormerDevice, HeadRelation, TeamState};
