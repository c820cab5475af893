//! `sotto-load`: drives a relay through its public API with real protocol-core clients.
//!
//! - `sotto-load run`: the load benchmark (see `docs/PERFORMANCE.md`): starts a relay process on a
//!   fresh SQLite file, drives N concurrent WebSocket clients on loopback that post envelopes and
//!   reports envelopes per second and post-to-push latency, then times the same inserts done
//!   directly on the same database with the relay's durability settings;
//! - `sotto-load fixture`: creates a team, a visitor and a conversation on a running relay and
//!   prints their bearer tokens and ids as JSON (for the API fuzzer, `scripts/schemathesis.sh`).
//!
//! `cargo run --release -p sotto-relay --example sotto-load -- --help`.

mod client;
mod fixture;
mod load;
mod relay;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sotto-load", about = "Drives a Sotto relay through its API")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The load benchmark: a relay process on a fresh SQLite file, N WebSocket clients on
    /// loopback posting envelopes; then the same inserts directly on the database.
    Run {
        /// WebSocket clients (visitor devices, two per conversation); even.
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Envelopes each client posts, one after the other.
        #[arg(long, default_value_t = 50)]
        messages: usize,
        /// Plaintext bytes per message (padded by the protocol before encryption).
        #[arg(long, default_value_t = 100)]
        content_bytes: usize,
        /// The `sotto-relay` binary (default: the one built next to this tool).
        #[arg(long)]
        relay_bin: Option<std::path::PathBuf>,
        /// Where the temporary database directory goes (default: the system temp directory).
        /// Put it on the disk you want to measure; a tmpfs makes fsync free.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Extra `serve` settings as environment variables, `NAME=VALUE` (for example
        /// `SOTTO_DB_MAX_CONNECTIONS=16`).
        #[arg(long = "relay-env", value_parser = parse_env)]
        relay_env: Vec<(String, String)>,
    },
    /// Creates a team, a visitor and a conversation; prints tokens and ids as JSON.
    Fixture {
        /// The relay, `http://host:port`.
        #[arg(long)]
        relay: String,
        /// The tenant's widget id (`sotto-relay tenant create` prints it).
        #[arg(long)]
        widget_id: String,
        /// The tenant's bootstrap code (unused so far: the fixture's owner device uses it).
        #[arg(long)]
        bootstrap_code: String,
    },
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected NAME=VALUE")?;
    Ok((k.to_owned(), v.to_owned()))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sotto-load: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Cmd::Run {
                clients,
                messages,
                content_bytes,
                relay_bin,
                dir,
                relay_env,
            } => {
                load::run(load::Settings {
                    clients,
                    messages,
                    content_bytes,
                    relay_bin,
                    dir,
                    relay_env,
                })
                .await
            }
            Cmd::Fixture {
                relay,
                widget_id,
                bootstrap_code,
            } => fixture::run(&relay, &widget_id, &bootstrap_code).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sotto-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
