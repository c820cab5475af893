//! The database: one `sqlx` pool over SQLite (embedded default) or PostgreSQL.
//!
//! The relay uses sqlx's `Any` driver rather than an enum over two typed pools: every query is
//! written once, in the SQL both engines accept (`$1` placeholders, `RETURNING`, `ON CONFLICT`,
//! integers and byte strings only), and bound at run time with `sqlx::query` (no compile-time
//! macros, so building needs no database). What differs per engine is kept here and in
//! `migrations/{sqlite,postgres}`: the connection pragmas, how a write transaction begins, the
//! DDL types, and the SQLite-only `VACUUM INTO` backup.

pub mod migrate;

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::config::DatabaseArgs;

/// Which engine a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file in WAL mode with `synchronous=FULL`.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A connection pool and its engine.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Queuing writers here, in arrival order, instead of
    /// letting them poll SQLite's busy handler (which sleeps up to 100 ms between tries) keeps
    /// write latency flat under load. PostgreSQL writers run concurrently.
    writer: Arc<Mutex<()>>,
}

/// A write transaction; on SQLite it also holds the relay's writer lock until it ends.
/// Dereferences to the connection, so `&mut *tx` is an executor.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    _writer: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Rolls back (dropping a `WriteTx` also rolls back).
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// Milliseconds a SQLite connection waits for a lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 10_000;

/// Turns what an operator typed into a sqlx URL: `postgres://` and `sqlite:` URLs are kept, a
/// bare path becomes a SQLite URL that creates the file if missing.
pub fn normalize_url(input: &str) -> String {
    if input.starts_with("postgres://") || input.starts_with("postgresql://") {
        input.to_owned()
    } else if input.starts_with("sqlite:") {
        if input.contains('?') {
            input.to_owned()
        } else {
            format!("{input}?mode=rwc")
        }
    } else {
        format!("sqlite://{input}?mode=rwc")
    }
}

impl Db {
    /// Connects to the database named by `args` and applies the engine's session settings.
    pub async fn connect(args: &DatabaseArgs) -> Result<Db, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let url = normalize_url(&args.url);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        // Statement logging is off: the relay logs requests itself, and nothing about a query
        // (not even its SQL timing) needs to be in the log.
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(args.db_max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed during a write; synchronous=FULL makes every
                        // acknowledged commit durable across power loss, not just a crash.
                        conn.execute(sqlx::raw_sql(&format!(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};"
                        )))
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Db {
            pool,
            backend,
            writer: Arc::new(Mutex::new(())),
        })
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for reads and single-statement writes.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that will write. Every write of the relay goes through one, even a
    /// single statement. On SQLite it first queues for the relay's writer lock, then takes
    /// SQLite's write lock at once (`BEGIN IMMEDIATE`), so it never fails later because a read
    /// snapshot cannot be upgraded; other processes (the backup command) are waited for under
    /// the busy timeout.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let guard = self.writer.clone().lock_owned().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx {
                    tx,
                    _writer: Some(guard),
                })
            }
            Backend::Postgres => Ok(WriteTx {
                tx: self.pool.begin().await?,
                _writer: None,
            }),
        }
    }

    /// Runs one writing statement in its own write transaction (see [`Db::begin_write`]).
    pub async fn write<T>(
        &self,
        f: impl AsyncFnOnce(&mut AnyConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let out = f(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Closes every connection (on SQLite this also checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Seconds since the Unix epoch, from the relay's clock.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A `u64` from the protocol as a database integer (values beyond `i64::MAX` saturate; the
/// protocol never produces them for stored rows).
pub fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized() {
        assert_eq!(
            normalize_url("relay.sqlite"),
            "sqlite://relay.sqlite?mode=rwc"
        );
        assert_eq!(normalize_url("/tmp/r.db"), "sqlite:///tmp/r.db?mode=rwc");
        assert_eq!(normalize_url("sqlite://x.db"), "sqlite://x.db?mode=rwc");
        assert_eq!(
            normalize_url("sqlite://x.db?mode=ro"),
            "sqlite://x.db?mode=ro"
        );
        assert_eq!(normalize_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
