//! Command line and environment configuration.
//!
//! Every setting is a flag with an environment variable of the same meaning (`--listen` /
//! `SOTTO_LISTEN`, ...); `sotto-relay serve --help` lists them all with their defaults.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

/// The relay's command line.
#[derive(Parser, Debug)]
#[command(
    name = "sotto-relay",
    version,
    about = "Sotto relay: stores and forwards end-to-end encrypted support chat; it only ever holds ciphertext",
    long_about = None
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The relay's commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs the relay (plain HTTP; put a TLS-terminating reverse proxy in front of it).
    Serve(Box<ServeArgs>),
    /// Operator commands on tenants.
    Tenant {
        /// The tenant command.
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Writes a consistent snapshot of a live SQLite database (VACUUM INTO).
    Backup(BackupArgs),
    /// Runs a team freshness witness (PROTOCOL §6.8), a separate service for the company's own
    /// origin: it verifies the chain links clients push and signs its newest head.
    Witness(crate::witness::WitnessArgs),
}

/// Operator commands on tenants.
#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Creates a tenant; prints its public widget id and a one-time bootstrap code with which
    /// the first owner device registers.
    Create {
        /// A name for operators (not shown to visitors).
        #[arg(long)]
        name: String,
        /// A page origin allowed to frame the tenant's widget (`https://shop.example.com`);
        /// repeat for several. None: the widget works only on the relay's own pages.
        #[arg(long = "embed-origin")]
        embed_origins: Vec<String>,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Replaces the page origins allowed to frame a tenant's widget.
    EmbedOrigins {
        /// The tenant's widget id (hex).
        #[arg(long)]
        widget_id: String,
        /// An allowed page origin (`https://shop.example.com`); repeat for several, none to
        /// allow only the relay's own pages.
        #[arg(long = "origin")]
        origins: Vec<String>,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// Which database to use.
#[derive(Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// Database: a SQLite file path or `sqlite://` URL (the embedded default), or a
    /// `postgres://` URL to share one database between several relay nodes.
    #[arg(
        long = "database",
        env = "SOTTO_DATABASE_URL",
        default_value = "sotto-relay.sqlite"
    )]
    pub url: String,
    /// Most database connections in the pool.
    #[arg(long, env = "SOTTO_DB_MAX_CONNECTIONS", default_value_t = 8)]
    pub db_max_connections: u32,
}

/// `sotto-relay backup`.
#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    /// The snapshot file to write; it must not exist yet.
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `sotto-relay serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on (plain HTTP). Loopback by default: expose it through a reverse
    /// proxy that terminates TLS.
    #[arg(long, env = "SOTTO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The relay's public origin as clients reach it (for example `https://relay.example.com`);
    /// devices sign it in the authentication challenge. Default: `http://` and the bound address.
    #[arg(long, env = "SOTTO_PUBLIC_ORIGIN")]
    pub public_origin: Option<String>,
    /// Largest JSON request body in bytes, except blob uploads.
    #[arg(long, env = "SOTTO_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest blob (attachment or backup) in bytes, after base64 decoding.
    #[arg(long, env = "SOTTO_MAX_BLOB_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_blob_bytes: usize,
    /// Requests per second allowed per client address (token bucket refill); 0 disables.
    #[arg(long, env = "SOTTO_RATE_PER_ADDRESS", default_value_t = 50.0)]
    pub rate_per_address: f64,
    /// Burst size per client address.
    #[arg(long, env = "SOTTO_BURST_PER_ADDRESS", default_value_t = 200)]
    pub burst_per_address: u32,
    /// Requests per second allowed per authenticated device; 0 disables.
    #[arg(long, env = "SOTTO_RATE_PER_DEVICE", default_value_t = 20.0)]
    pub rate_per_device: f64,
    /// Burst size per device.
    #[arg(long, env = "SOTTO_BURST_PER_DEVICE", default_value_t = 100)]
    pub burst_per_device: u32,
    /// Take the client address from the last `X-Forwarded-For` entry (only behind a proxy that
    /// sets it).
    #[arg(long, env = "SOTTO_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,
    /// Delete stored envelopes older than this many seconds; 0 keeps them. A team's own
    /// retention policy, when shorter, applies to its conversations.
    #[arg(long, env = "SOTTO_ENVELOPE_RETENTION_SECS", default_value_t = 90 * 86_400)]
    pub envelope_retention_secs: u64,
    /// Delete attachment blobs older than this many seconds; 0 keeps them.
    #[arg(long, env = "SOTTO_BLOB_RETENTION_SECS", default_value_t = 90 * 86_400)]
    pub blob_retention_secs: u64,
    /// Delete backup blobs older than this many seconds; 0 keeps them. A device keeps only its
    /// latest backup in any case.
    #[arg(long, env = "SOTTO_BACKUP_RETENTION_SECS", default_value_t = 180 * 86_400)]
    pub backup_retention_secs: u64,
    /// Seconds between retention sweeps.
    #[arg(long, env = "SOTTO_SWEEP_INTERVAL_SECS", default_value_t = 300)]
    pub sweep_interval_secs: u64,
    /// Lifetime of a bearer token in seconds.
    #[arg(long, env = "SOTTO_TOKEN_TTL_SECS", default_value_t = 900)]
    pub token_ttl_secs: u64,
    /// Lifetime of an authentication challenge in seconds.
    #[arg(long, env = "SOTTO_CHALLENGE_TTL_SECS", default_value_t = 60)]
    pub challenge_ttl_secs: u64,
    /// Log filter: a level (`info`) or `target=level` pairs (`info,sotto_relay=debug`).
    #[arg(long, env = "SOTTO_LOG", default_value = "info")]
    pub log: String,
    /// A directory of static files served at `/` (the web demo: widget, console and browser
    /// package). Not set: the relay serves only its API.
    #[arg(long, env = "SOTTO_WEB_ROOT")]
    pub web_root: Option<std::path::PathBuf>,
    /// Page origins allowed to call the API from a browser (CORS): a comma-separated list
    /// (`https://support.example.com`), `*` for any, or empty for none (the default: only the
    /// relay's own pages).
    #[arg(long, env = "SOTTO_CORS_ORIGINS", default_value = "", value_parser = crate::cors::AllowedOrigins::parse)]
    pub cors_origins: crate::cors::AllowedOrigins,
    /// Connection, WebSocket and storage limits that keep one client from exhausting the relay.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Address of a separate listener that serves only `GET /metrics` (for example
    /// `127.0.0.1:9090`). Not set: `/metrics` is served on the API listener only with
    /// `--metrics-token`, and otherwise not at all.
    #[arg(long, env = "SOTTO_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Address of a separate listener for the agent console (for example `127.0.0.1:8082`):
    /// it serves the API and the web root's `console/`, but not `widget/`, and the main
    /// listener then serves `widget/` but not `console/`. The two are different origins, so a
    /// bug in the frameable widget can never reach the console's storage and the agents' keys.
    #[arg(long, env = "SOTTO_CONSOLE_LISTEN")]
    pub console_listen: Option<SocketAddr>,
    /// The console listener's public origin, which its devices sign when they authenticate.
    /// Default: `http://` and its bound address.
    #[arg(long, env = "SOTTO_CONSOLE_PUBLIC_ORIGIN")]
    pub console_public_origin: Option<String>,
    /// A secret that `GET /metrics` on the API listener requires as `Authorization: Bearer
    /// <token>`. Not set: the API listener does not serve `/metrics`.
    #[arg(long, env = "SOTTO_METRICS_TOKEN")]
    pub metrics_token: Option<String>,
}

/// Limits against abuse: connections, slow clients, WebSockets, storage quotas and
/// registrations. The defaults hold for a public relay; every limit is a flag.
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Most open TCP connections in total; more are closed at once.
    #[arg(long, env = "SOTTO_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Most open TCP connections from one client address (not applied with
    /// `--trust-forwarded-for`, where every connection comes from the proxy).
    #[arg(long, env = "SOTTO_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256)]
    pub max_connections_per_address: usize,
    /// Seconds a client has to send a request's headers, from the connection's start or the
    /// end of its previous response; a connection idle for longer is closed.
    #[arg(long, env = "SOTTO_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds a request (reading its body and answering) may take; longer is 408.
    #[arg(long, env = "SOTTO_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub request_timeout_secs: u64,
    /// Largest WebSocket message or frame a client may send, in bytes (clients send only
    /// pings and closes).
    #[arg(long, env = "SOTTO_WS_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    pub ws_max_message_bytes: usize,
    /// Most WebSockets open at once per device.
    #[arg(long, env = "SOTTO_WS_MAX_PER_DEVICE", default_value_t = 4)]
    pub ws_max_per_device: usize,
    /// Most WebSockets open at once per client address.
    #[arg(long, env = "SOTTO_WS_MAX_PER_ADDRESS", default_value_t = 256)]
    pub ws_max_per_address: usize,
    /// Most WebSockets open at once in total.
    #[arg(long, env = "SOTTO_WS_MAX_TOTAL", default_value_t = 10_000)]
    pub ws_max_total: usize,
    /// Seconds without any frame from the client (pongs included; the relay pings at a third of
    /// this) after which a WebSocket is closed.
    #[arg(long, env = "SOTTO_WS_IDLE_TIMEOUT_SECS", default_value_t = 90)]
    pub ws_idle_timeout_secs: u64,
    /// Bytes of blobs (attachments and backups) one device may store.
    #[arg(long, env = "SOTTO_QUOTA_DEVICE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub quota_device_bytes: u64,
    /// Bytes of blobs one tenant may store in total.
    #[arg(long, env = "SOTTO_QUOTA_TENANT_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub quota_tenant_bytes: u64,
    /// Largest backup a visitor device may store, in bytes; 0 refuses visitor backups.
    #[arg(long, env = "SOTTO_VISITOR_BACKUP_MAX_BYTES", default_value_t = 256 * 1024)]
    pub visitor_backup_max_bytes: u64,
    /// Stored envelopes one conversation may hold (retention frees room); 0: no limit.
    #[arg(
        long,
        env = "SOTTO_QUOTA_CONVERSATION_ENVELOPES",
        default_value_t = 20_000
    )]
    pub quota_conversation_envelopes: u64,
    /// Conversations one visitor device may take part in; 0: no limit.
    #[arg(long, env = "SOTTO_QUOTA_VISITOR_CONVERSATIONS", default_value_t = 20)]
    pub quota_visitor_conversations: u64,
    /// Visitor device registrations per hour allowed from one client address (bucket refill
    /// and burst); 0 disables.
    #[arg(
        long,
        env = "SOTTO_REGISTRATIONS_PER_ADDRESS_HOUR",
        default_value_t = 200
    )]
    pub registrations_per_address_hour: u32,
    /// Visitor device registrations per hour allowed for one tenant; 0 disables.
    #[arg(
        long,
        env = "SOTTO_REGISTRATIONS_PER_TENANT_HOUR",
        default_value_t = 10_000
    )]
    pub registrations_per_tenant_hour: u32,
    /// Delete visitor devices not authenticated for this many seconds (with their backups);
    /// 0 keeps them.
    #[arg(long, env = "SOTTO_VISITOR_IDLE_SECS", default_value_t = 180 * 86_400)]
    pub visitor_idle_secs: u64,
    /// Delete audit entries older than this many seconds; 0 keeps them.
    #[arg(long, env = "SOTTO_AUDIT_RETENTION_SECS", default_value_t = 365 * 86_400)]
    pub audit_retention_secs: u64,
}

impl Default for LimitArgs {
    fn default() -> Self {
        LimitArgs {
            max_connections: 4096,
            max_connections_per_address: 256,
            header_read_timeout_secs: 10,
            request_timeout_secs: 60,
            ws_max_message_bytes: 4096,
            ws_max_per_device: 4,
            ws_max_per_address: 256,
            ws_max_total: 10_000,
            ws_idle_timeout_secs: 90,
            quota_device_bytes: 64 * 1024 * 1024,
            quota_tenant_bytes: 4 * 1024 * 1024 * 1024,
            visitor_backup_max_bytes: 256 * 1024,
            quota_conversation_envelopes: 20_000,
            quota_visitor_conversations: 20,
            registrations_per_address_hour: 200,
            registrations_per_tenant_hour: 10_000,
            visitor_idle_secs: 180 * 86_400,
            audit_retention_secs: 365 * 86_400,
        }
    }
}

impl ServeArgs {
    /// The defaults, as `sotto-relay serve` without flags or environment would use them, with
    /// the given database. For embedding and tests.
    pub fn with_database(url: impl Into<String>) -> Self {
        ServeArgs {
            database: DatabaseArgs {
                url: url.into(),
                db_max_connections: 8,
            },
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_origin: None,
            max_body_bytes: 4 * 1024 * 1024,
            max_blob_bytes: 16 * 1024 * 1024,
            rate_per_address: 50.0,
            burst_per_address: 200,
            rate_per_device: 20.0,
            burst_per_device: 100,
            trust_forwarded_for: false,
            envelope_retention_secs: 90 * 86_400,
            blob_retention_secs: 90 * 86_400,
            backup_retention_secs: 180 * 86_400,
            sweep_interval_secs: 300,
            token_ttl_secs: 900,
            challenge_ttl_secs: 60,
            log: "info".to_owned(),
            web_root: None,
            cors_origins: crate::cors::AllowedOrigins::None,
            limits: LimitArgs::default(),
            metrics_listen: None,
            metrics_token: None,
            console_listen: None,
            console_public_origin: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_defaults_match_with_database() {
        let cli = Cli::try_parse_from(["sotto-relay", "serve", "--database", "x.sqlite"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let expected = ServeArgs::with_database("x.sqlite");
        assert_eq!(format!("{args:?}"), format!("{expected:?}"));
    }
}
