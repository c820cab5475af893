//! Starting and stopping a relay: database, migrations, listener, background tasks, graceful
//! shutdown.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::auth::TokenCache;
use crate::config::ServeArgs;
use crate::db::{Db, migrate, normalize_url};
use crate::envelope_store::EnvelopeStore;
use crate::fanout::{Fanout, LocalFanout};
use crate::limits::OpenCounter;
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
    metrics_server: Option<(SocketAddr, JoinHandle<std::io::Result<()>>)>,
    console_server: Option<(SocketAddr, JoinHandle<std::io::Result<()>>)>,
    sweeper: JoinHandle<()>,
    envelope_writer: JoinHandle<()>,
    fanout_tasks: Vec<JoinHandle<()>>,
}

impl Relay {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound address of the separate metrics listener, if `--metrics-listen` was given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|(a, _)| *a)
    }

    /// The bound address of the console listener, if `--console-listen` was given.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console_server.as_ref().map(|(a, _)| *a)
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
        for (_, task) in self.metrics_server.into_iter().chain(self.console_server) {
            let _ = task.await;
        }
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
    let console_listener = match args.console_listen {
        Some(a) => Some(TcpListener::bind(a).await.map_err(StartError::Bind)?),
        None => None,
    };
    let console_addr = match &console_listener {
        Some(l) => Some(l.local_addr().map_err(StartError::Bind)?),
        None => None,
    };
    let console_origin = console_addr.map(|a| {
        args.console_public_origin
            .clone()
            .unwrap_or_else(|| format!("http://{a}"))
    });
    let metrics_listener = match args.metrics_listen {
        Some(a) => Some(TcpListener::bind(a).await.map_err(StartError::Bind)?),
        None => None,
    };
    let origin = args
        .public_origin
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (envelopes, envelope_writer) = EnvelopeStore::start(db.clone());
    let state = AppState {
        db,
        envelopes,
        settings: Arc::new(Settings::from_args(args, origin, console_origin)),
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
        registrations_per_address: Arc::new(RateLimiter::new(
            per_hour(args.limits.registrations_per_address_hour),
            args.limits.registrations_per_address_hour,
        )),
        registrations_per_tenant: Arc::new(RateLimiter::new(
            per_hour(args.limits.registrations_per_tenant_hour),
            args.limits.registrations_per_tenant_hour,
        )),
        sockets_per_address: OpenCounter::new(
            args.limits.ws_max_total,
            args.limits.ws_max_per_address,
        ),
        sockets_per_device: OpenCounter::new(usize::MAX, args.limits.ws_max_per_device),
        shutdown: shutdown_rx.clone(),
    };
    let app = routes::router(state.clone());
    let conn_limits = ConnLimits {
        open: OpenCounter::new(
            args.limits.max_connections,
            // Behind a trusted proxy every connection comes from the proxy: only the total
            // applies there, and the proxy should cap per client itself.
            if args.trust_forwarded_for {
                usize::MAX
            } else {
                args.limits.max_connections_per_address
            },
        ),
        header_read_timeout: Duration::from_secs(args.limits.header_read_timeout_secs.max(1)),
        metrics: Arc::clone(&state.metrics),
    };
    let metrics_server = match metrics_listener {
        Some(l) => {
            let maddr = l.local_addr().map_err(StartError::Bind)?;
            let limits = ConnLimits {
                open: OpenCounter::new(64, 64),
                ..conn_limits.clone()
            };
            let app = crate::metrics::router(Arc::clone(&state.metrics));
            let task = tokio::spawn(serve(l, app, limits, shutdown_rx.clone()));
            Some((maddr, task))
        }
        None => None,
    };
    let console_server = match console_listener {
        Some(l) => {
            let app = app.clone().layer(axum::Extension(Listener::Console));
            Some(tokio::spawn(serve(
                l,
                app,
                conn_limits.clone(),
                shutdown_rx.clone(),
            )))
        }
        None => None,
    };
    let server = tokio::spawn(serve(listener, app, conn_limits, shutdown_rx));
    let sweeper = tokio::spawn(sweep::run(state.clone()));
    let fanout_tasks = state.fanout.start(&state);
    tracing::info!(%addr, backend = ?state.db.backend(), "relay listening");
    if let Some(caddr) = console_addr {
        tracing::info!(console_addr = %caddr, "console listening");
    }
    if let Some((maddr, _)) = &metrics_server {
        // After the API's line: tools that wait for the first `addr=` get the API address.
        tracing::info!(metrics_addr = %maddr, "metrics listening");
    }
    Ok(Relay {
        addr,
        state,
        shutdown,
        server,
        metrics_server,
        console_server: console_addr.zip(console_server),
        sweeper,
        envelope_writer,
        fanout_tasks,
    })
}

/// Which listener a request came in on, when the console has its own (`--console-listen`);
/// requests on the main listener carry none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The console listener: serves `console/`, not `widget/`.
    Console,
}

/// A rate of `n` per hour in tokens per second (0 disables, as for the other limits).
fn per_hour(n: u32) -> f64 {
    f64::from(n) / 3600.0
}

/// What the accept loop enforces on every connection.
#[derive(Clone)]
struct ConnLimits {
    /// Open connections, in total and per peer address.
    open: Arc<OpenCounter<IpAddr>>,
    /// Time a client has to send a request's headers (also closes idle keep-alive connections).
    header_read_timeout: Duration,
    metrics: Arc<Metrics>,
}

/// The HTTP/1.1 accept loop. axum's `serve` has no timer, so a client could hold a connection
/// forever by sending its headers slowly, and it caps nothing: this loop closes a connection over
/// the total or per-address cap at once, gives every connection a header-read timeout, and on
/// shutdown lets in-flight requests finish before it returns.
async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait a
                    // little rather than spin, and keep serving what is open.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = async { let _ = shutdown.wait_for(|stopped| *stopped).await; } => break,
        };
        let Ok(slot) = limits.open.acquire(peer.ip()) else {
            limits.metrics.connection_refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let header_read_timeout = limits.header_read_timeout;
        let mut stop = shutdown.clone();
        connections.spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let mut app = app.clone();
                async move {
                    let req = req.map(axum::body::Body::new);
                    tower_service::Service::call(&mut app, req).await
                        as Result<axum::response::Response, Infallible>
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Some(header_read_timeout))
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = async { let _ = stop.wait_for(|stopped| *stopped).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
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
