//! The `sotto-relay` command: `serve`, `tenant create`, `tenant embed-origins`, `backup`, `witness`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::str::FromStr;

use clap::Parser;
use sotto_relay::config::{Cli, Command, TenantCommand};
use sotto_relay::db::{Db, migrate};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn init_logging(filter: &str) -> Result<(), String> {
    let targets = Targets::from_str(filter).map_err(|e| format!("invalid log filter: {e}"))?;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(targets)
        .try_init()
        .map_err(|e| format!("logging: {e}"))
}

async fn open(database: &sotto_relay::config::DatabaseArgs) -> Result<Db, String> {
    let db = Db::connect(database)
        .await
        .map_err(|e| format!("database: {e}"))?;
    migrate::run(&db)
        .await
        .map_err(|e| format!("migrations: {e}"))?;
    Ok(db)
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => {
            init_logging(&args.log)?;
            let relay = sotto_relay::start(&args).await.map_err(|e| e.to_string())?;
            sotto_relay::server::shutdown_signal().await;
            tracing::info!("shutting down");
            relay.shutdown().await.map_err(|e| e.to_string())
        }
        Command::Tenant {
            command:
                TenantCommand::Create {
                    name,
                    embed_origins,
                    database,
                },
        } => {
            init_logging("warn")?;
            // Checked before anything is written, so a typo creates no tenant.
            for o in &embed_origins {
                sotto_relay::tenant::normalize_origin(o).map_err(|e| e.to_string())?;
            }
            let db = open(&database).await?;
            let created = async {
                let t = sotto_relay::tenant::create(&db, &name).await?;
                let origins =
                    sotto_relay::tenant::set_embed_origins(&db, &t.widget_id, &embed_origins)
                        .await?;
                Ok::<_, sotto_relay::tenant::TenantError>((t, origins))
            }
            .await;
            db.close().await;
            let (t, origins) = created.map_err(|e| e.to_string())?;
            println!("widget_id: {}", t.widget_id);
            println!("bootstrap_code: {}", t.bootstrap_code);
            // Only when set: scripts read this output as `name: value` lines.
            if !origins.is_empty() {
                println!("embed_origins: {}", origins.join(" "));
            }
            Ok(())
        }
        Command::Tenant {
            command:
                TenantCommand::EmbedOrigins {
                    widget_id,
                    origins,
                    database,
                },
        } => {
            init_logging("warn")?;
            let db = open(&database).await?;
            let result = sotto_relay::tenant::set_embed_origins(&db, &widget_id, &origins).await;
            db.close().await;
            let origins = result.map_err(|e| e.to_string())?;
            println!("embed_origins: {}", origins.join(" "));
            Ok(())
        }
        Command::Witness(args) => {
            init_logging("info")?;
            let witness = sotto_relay::witness::start(&args)
                .await
                .map_err(|e| e.to_string())?;
            println!("witness key: {}", hex::encode(witness.public_key()));
            println!("listening on {}", witness.addr());
            tokio::select! {
                served = witness.wait() => served.map_err(|e| e.to_string()),
                () = sotto_relay::server::shutdown_signal() => Ok(()),
            }
        }
        Command::Backup(args) => {
            init_logging("warn")?;
            let db = open(&args.database).await?;
            let result = sotto_relay::backup::snapshot(&db, &args.out).await;
            db.close().await;
            result.map_err(|e| e.to_string())?;
            println!("snapshot written to {}", args.out.display());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sotto-relay: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sotto-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
