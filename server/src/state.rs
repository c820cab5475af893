//! What every handler shares: the database, settings, caches, fan-out, metrics and limits.

use std::net::IpAddr;
use std::sync::Arc;

use sotto_core::device::DeviceId;
use tokio::sync::watch;

use crate::auth::TokenCache;
use crate::config::ServeArgs;
use crate::db::Db;
use crate::envelope_store::EnvelopeStore;
use crate::fanout::Fanout;
use crate::limits::OpenCounter;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::teams::Teams;

/// Settings fixed at start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The public origin devices sign in the authentication challenge.
    pub origin: String,
    /// The console listener's public origin, if the console has its own (`--console-listen`):
    /// devices that reach the relay there sign it instead.
    pub console_origin: Option<String>,
    /// Largest JSON body, except blob uploads.
    pub max_body_bytes: usize,
    /// Largest blob after decoding.
    pub max_blob_bytes: usize,
    /// Token lifetime, seconds.
    pub token_ttl_secs: i64,
    /// Challenge lifetime, seconds.
    pub challenge_ttl_secs: i64,
    /// Whether `X-Forwarded-For` names the client.
    pub trust_forwarded_for: bool,
    /// Envelope retention, seconds (0 keeps).
    pub envelope_retention_secs: i64,
    /// Attachment retention, seconds (0 keeps).
    pub blob_retention_secs: i64,
    /// Backup retention, seconds (0 keeps).
    pub backup_retention_secs: i64,
    /// Seconds between sweeps.
    pub sweep_interval_secs: u64,
    /// Static files served at `/`, if any.
    pub web_root: Option<std::path::PathBuf>,
    /// Page origins allowed to call the API from a browser.
    pub cors_origins: crate::cors::AllowedOrigins,
    /// Connection, WebSocket, storage and registration limits.
    pub limits: crate::config::LimitArgs,
    /// The bearer token `GET /metrics` requires on the API listener; `None`: not served there.
    pub metrics_token: Option<String>,
}

impl Settings {
    /// Settings from the command line, with the origin the relay is reachable at.
    pub fn from_args(args: &ServeArgs, origin: String, console_origin: Option<String>) -> Self {
        let secs = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Settings {
            origin,
            console_origin,
            max_body_bytes: args.max_body_bytes,
            max_blob_bytes: args.max_blob_bytes,
            token_ttl_secs: secs(args.token_ttl_secs.max(1)),
            challenge_ttl_secs: secs(args.challenge_ttl_secs.max(1)),
            trust_forwarded_for: args.trust_forwarded_for,
            envelope_retention_secs: secs(args.envelope_retention_secs),
            blob_retention_secs: secs(args.blob_retention_secs),
            backup_retention_secs: secs(args.backup_retention_secs),
            sweep_interval_secs: args.sweep_interval_secs.max(1),
            web_root: args.web_root.clone(),
            cors_origins: args.cors_origins.clone(),
            limits: args.limits.clone(),
            metrics_token: args.metrics_token.clone().filter(|t| !t.is_empty()),
        }
    }
}

/// The shared state of a running relay. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Envelope writes, with group commit.
    pub envelopes: EnvelopeStore,
    /// Fixed settings.
    pub settings: Arc<Settings>,
    /// Verified team chain states.
    pub teams: Arc<Teams>,
    /// Recently used tokens.
    pub tokens: Arc<TokenCache>,
    /// Push fan-out to WebSocket connections.
    pub fanout: Arc<dyn Fanout>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Per-address limits.
    pub address_limits: Arc<RateLimiter<IpAddr>>,
    /// Per-device limits, keyed by tenant and device.
    pub device_limits: Arc<RateLimiter<(i64, DeviceId)>>,
    /// Device registrations per client address.
    pub registrations_per_address: Arc<RateLimiter<IpAddr>>,
    /// Device registrations per tenant.
    pub registrations_per_tenant: Arc<RateLimiter<i64>>,
    /// Open WebSockets per client address, and in total.
    pub sockets_per_address: Arc<OpenCounter<IpAddr>>,
    /// Open WebSockets per device (the total is capped by `sockets_per_address`).
    pub sockets_per_device: Arc<OpenCounter<(i64, DeviceId)>>,
    /// Becomes `true` when the relay shuts down.
    pub shutdown: watch::Receiver<bool>,
}
