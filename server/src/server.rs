//! Starting and stopping a relay: database, migrations, listener, background tasks, graceful
//! shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::TokenCache;
use crate::config::ServeArgs;
use crate::db::{Db, migrate, normalize_url};
use crate::envelope_store::EnvelopeStore;
use crate::fanout::{Fanout, LocalFanout};
use crate::metrics::Metrics;
use crate::pg_fanout::PgFanout;
use crate::rate_limit::RateLimiter;
use crate::state::{AppState, Settings};
use crate::teams::Teams;
use crate::{routes, sweep};

/// Events a slow WebSocket client may fall behind by before it is told to resynchronize.
const FANOUT_CAPACITY: usize = 4096;

/// Why the relay could not start.
#[derive(Debug)]
pub enum StartError {
    /// The database could not be opened or migrated.
    Database(sqlx::Error),
    /// The listen address could not be bound.
    Bind(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Database(e) => write!(f, "database: {e}"),
            StartError::Bind(e) => write!(f, "listen: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running relay.
pub struct Relay {
    addr: SocketAddr,
    state: AppState,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    sweeper: JoinHandle<()>,
    envelope_writer: JoinHandle<()>,
    fanout_tasks: Vec<JoinHandle<()>>,
}

impl Relay {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The origin devices sign when they authenticate.
    pub fn origin(&self) -> &str {
        &self.state.settings.origin
    }

    /// The shared state (database, caches, fan-out), for embedding and tests.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting requests, closes WebSockets (1001), waits for in-flight requests, stops
    /// the sweeper and closes the database.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        let served = self
            .server
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let _ = self.sweeper.await;
        // Every request has been answered: the envelope writer is idle.
        self.envelope_writer.abort();
        let _ = self.envelope_writer.await;
        for task in self.fanout_tasks {
            let _ = task.await;
        }
        self.state.db.close().await;
        tracing::info!("relay stopped");
        served
    }
}

/// Starts a relay: push fan-out is in-process on SQLite (one node), and over `LISTEN`/`NOTIFY`
/// on PostgreSQL so that any number of nodes can share the database.
pub async fn start(args: &ServeArgs) -> Result<Relay, StartError> {
    let url = normalize_url(&args.database.url);
    let fanout: Arc<dyn Fanout> = if url.starts_with("sqlite:") {
        Arc::new(LocalFanout::new(FANOUT_CAPACITY))
    } else {
        Arc::new(
            PgFanout::connect(&url, FANOUT_CAPACITY)
                .await
                .map_err(StartError::Database)?,
        )
    };
    start_with_fanout(args, fanout).await
}

/// Starts a relay with the given fan-out, whose background tasks it starts ([`Fanout::start`]).
pub async fn start_with_fanout(
    args: &ServeArgs,
    fanout: Arc<dyn Fanout>,
) -> Result<Relay, StartError> {
    let db = Db::connect(&args.database)
        .await
        .map_err(StartError::Database)?;
    migrate::run(&db).await.map_err(StartError::Database)?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(StartError::Bind)?;
    let addr = listener.local_addr().map_err(StartError::Bind)?;
    let origin = args
        .public_origin
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (envelopes, envelope_writer) = EnvelopeStore::start(db.clone());
    let state = AppState {
        db,
        envelopes,
        settings: Arc::new(Settings::from_args(args, origin)),
        teams: Arc::new(Teams::default()),
        tokens: Arc::new(TokenCache::default()),
        fanout,
        metrics: Arc::new(Metrics::default()),
        address_limits: Arc::new(RateLimiter::new(
            args.rate_per_address,
            args.burst_per_address,
        )),
        device_limits: Arc::new(RateLimiter::new(
            args.rate_per_device,
            args.burst_per_device,
        )),
        shutdown: shutdown_rx.clone(),
    };
    let app = routes::router(state.clone());
    let mut stop = shutdown_rx;
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await
    });
    let sweeper = tokio::spawn(sweep::run(state.clone()));
    let fanout_tasks = state.fanout.start(&state);
    tracing::info!(%addr, backend = ?state.db.backend(), "relay listening");
    Ok(Relay {
        addr,
        state,
        shutdown,
        server,
        sweeper,
        envelope_writer,
        fanout_tasks,
    })
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
