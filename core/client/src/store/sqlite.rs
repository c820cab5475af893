//! The SQLite backend (native targets, feature `sqlite`), through sqlx with a bundled SQLite.
//!
//! # Layout (SQLite `user_version` 1)
//!
//! ```sql
//! CREATE TABLE record (
//!   namespace TEXT NOT NULL,
//!   key       BLOB NOT NULL,
//!   version   INTEGER NOT NULL CHECK (version > 0),
//!   value     BLOB NOT NULL,              -- nonce || ciphertext || tag
//!   PRIMARY KEY (namespace, key)
//! ) WITHOUT ROWID;
//! CREATE TABLE counter (
//!   id           INTEGER PRIMARY KEY CHECK (id = 0),
//!   last_version INTEGER NOT NULL         -- the highest version given out
//! );
//! ```
//!
//! The `user_version` numbers this physical layout; the store's logical schema (how values are
//! sealed) is the encrypted schema record, shared by every backend (see `schema.rs`).
//!
//! # Settings and why
//!
//! - WAL journal: readers never block the writer, and a commit is one append.
//! - `synchronous = FULL`: a commit is on disk when it returns. A sender chain written with a
//!   lost commit would come back at an old counter after a power cut and reuse message keys and
//!   nonces; the extra fsync per commit is the price of never doing that.
//! - `secure_delete = ON`, and a `wal_checkpoint(TRUNCATE)` after every commit that deletes:
//!   deleted values are overwritten in the database file and gone from the write-ahead log, so
//!   deleting epoch secrets or a team's keys leaves no ciphertext of them in the files (what the
//!   filesystem or flash keeps of old blocks is out of reach; the store key protects it).
//!   Values that are overwritten rather than deleted (a sender chain's previous state) stay in
//!   the log until the next checkpoint: automatic every thousand pages, or
//!   [`SqliteStore::checkpoint`].
//! - Commits take SQLite's write lock up front (`BEGIN IMMEDIATE`) after an in-process async
//!   lock, so transactions of one process queue without busy errors and another process waits
//!   up to the busy timeout.
//! - Reads bound the size of what they load (`length(value)` is checked in SQL first), so a
//!   doctored file cannot make the client allocate gigabytes.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::{
    MAX_KEY_LEN, MAX_SEALED_LEN, Namespace, Op, Query, RawRecord, RecordId, Store, Version,
    check_distinct, prefix_successor,
};
use crate::{Error, Result};

/// The physical layout version this code writes (`PRAGMA user_version`).
const LAYOUT_VERSION: i64 = 1;
/// Connections in the pool: reads run in parallel under WAL; writes are serialized.
const MAX_CONNECTIONS: u32 = 4;
/// How long a commit waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const CREATE_LAYOUT: &str = "
CREATE TABLE record (
  namespace TEXT NOT NULL,
  key BLOB NOT NULL,
  version INTEGER NOT NULL CHECK (version > 0),
  value BLOB NOT NULL,
  PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE counter (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  last_version INTEGER NOT NULL
);
INSERT INTO counter (id, last_version) VALUES (0, 0);
PRAGMA user_version = 1;
";

/// A [`Store`] in an SQLite database file.
pub struct SqliteStore {
    pool: SqlitePool,
    writer: tokio::sync::Mutex<()>,
}

impl core::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn backend(e: sqlx::Error) -> Error {
    Error::Backend(e.to_string())
}

fn to_version(v: i64) -> Result<Version> {
    u64::try_from(v)
        .ok()
        .filter(|v| *v > 0)
        .map(Version)
        .ok_or(Error::Corrupt("record version out of range"))
}

impl SqliteStore {
    /// Opens (creating if needed) the store in the database file at `path`.
    ///
    /// Runs inside a tokio runtime with its time driver enabled (sqlx needs it for timeouts).
    ///
    /// The file holds only ciphertext, but record ids, sizes and counts are visible (see the
    /// [store docs](super)); put it in the application's private data directory.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(backend)?;
        let store = SqliteStore {
            pool,
            writer: tokio::sync::Mutex::new(()),
        };
        store.init_layout().await?;
        Ok(store)
    }

    async fn init_layout(&self) -> Result<()> {
        let _writer = self.writer.lock().await;
        let mut tx = self.begin_write().await?;
        let layout: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        match layout {
            0 => {
                let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_schema")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend)?;
                if tables != 0 {
                    return Err(Error::Corrupt("the database file is not a Sotto store"));
                }
                sqlx::raw_sql(CREATE_LAYOUT)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                tx.commit().await.map_err(backend)
            }
            LAYOUT_VERSION => Ok(()),
            v => Err(Error::SchemaTooNew {
                found: u32::try_from(v).unwrap_or(u32::MAX),
            }),
        }
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)
    }

    /// Copies the write-ahead log into the database file and truncates it, so values that were
    /// overwritten (old chain states) no longer linger in the log. SQLite also checkpoints on
    /// its own every thousand pages; commits that delete records checkpoint at once. An
    /// application may call this when it goes to the background.
    pub async fn checkpoint(&self) -> Result<()> {
        let _writer = self.writer.lock().await;
        self.checkpoint_locked().await
    }

    async fn checkpoint_locked(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Closes every connection (checkpointing the write-ahead log). Later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn raw_record(row: &SqliteRow, namespace: &Namespace) -> Result<RawRecord> {
        let version = to_version(row.try_get("version").map_err(backend)?)?;
        let len: i64 = row.try_get("len").map_err(backend)?;
        let sealed: Option<Vec<u8>> = row
            .try_get("value")
            .map_err(|_| Error::Corrupt("malformed value column"))?;
        match sealed {
            Some(sealed) if usize::try_from(len).is_ok_and(|l| l == sealed.len()) => {
                Ok(RawRecord { version, sealed })
            }
            _ => Err(Error::Tampered {
                namespace: namespace.as_str().to_owned(),
            }),
        }
    }
}

/// The columns of a record, the value bounded: NULL instead of a value longer than any sealed
/// value can be (the bound is a constant written into the SQL).
fn value_columns() -> String {
    format!(
        "version, length(value) AS len, \
         CASE WHEN length(value) <= {MAX_SEALED_LEN} THEN value ELSE NULL END AS value"
    )
}

impl Store for SqliteStore {
    async fn get(&self, id: &RecordId) -> Result<Option<RawRecord>> {
        let sql = format!(
            "SELECT {} FROM record WHERE namespace = ?1 AND key = ?2",
            value_columns()
        );
        let row = sqlx::query(&sql)
            .bind(id.namespace().as_str())
            .bind(id.key())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|row| Self::raw_record(&row, id.namespace()))
            .transpose()
    }

    async fn list(
        &self,
        namespace: &Namespace,
        query: &Query,
    ) -> Result<Vec<(Vec<u8>, RawRecord)>> {
        // ?1 namespace, ?2 lower bound (the prefix), ?3 upper bound (its successor) or NULL,
        // ?4 the `after` key or NULL, ?5 the limit (-1: none).
        let after = if query.descending {
            "(?4 IS NULL OR key < ?4)"
        } else {
            "(?4 IS NULL OR key > ?4)"
        };
        let order = if query.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT CASE WHEN length(key) <= {MAX_KEY_LEN} THEN key ELSE NULL END AS key, \
             {} FROM record \
             WHERE namespace = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3) AND {after} \
             ORDER BY key {order} LIMIT ?5",
            value_columns()
        );
        let limit = query.limit.map_or(-1, i64::from);
        let rows = sqlx::query(&sql)
            .bind(namespace.as_str())
            .bind(query.prefix.as_slice())
            .bind(prefix_successor(&query.prefix))
            .bind(query.after.as_deref())
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: Option<Vec<u8>> = row
                .try_get("key")
                .map_err(|_| Error::Corrupt("malformed key column"))?;
            let key = key.ok_or(Error::Corrupt("key too long"))?;
            out.push((key, Self::raw_record(row, namespace)?));
        }
        Ok(out)
    }

    async fn namespaces(&self) -> Result<Vec<Namespace>> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT namespace FROM record ORDER BY namespace")
                .fetch_all(&self.pool)
                .await
                .map_err(|_| Error::Corrupt("malformed namespace column"))?;
        names
            .iter()
            .map(|n| Namespace::new(n).map_err(|_| Error::Corrupt("invalid namespace")))
            .collect()
    }

    async fn commit(&self, ops: Vec<Op>) -> Result<Version> {
        check_distinct(&ops)?;
        let _writer = self.writer.lock().await;
        // Dropping `tx` without commit rolls back.
        let mut tx = self.begin_write().await?;
        for op in &ops {
            let current: Option<i64> =
                sqlx::query_scalar("SELECT version FROM record WHERE namespace = ?1 AND key = ?2")
                    .bind(op.id().namespace().as_str())
                    .bind(op.id().key())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
            let current = current.map(to_version).transpose()?;
            if !op.expect().is_met_by(current) {
                return Err(Error::Conflict {
                    namespace: op.id().namespace().as_str().to_owned(),
                });
            }
        }
        let last: i64 = sqlx::query_scalar("SELECT last_version FROM counter WHERE id = 0")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let has_puts = ops.iter().any(|op| matches!(op, Op::Put { .. }));
        let version = if has_puts {
            last.checked_add(1)
                .ok_or(Error::Corrupt("version counter exhausted"))?
        } else {
            last
        };
        for op in &ops {
            match op {
                Op::Put { id, sealed, .. } => {
                    sqlx::query(
                        "INSERT INTO record (namespace, key, version, value) VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT (namespace, key) DO UPDATE \
                         SET version = excluded.version, value = excluded.value",
                    )
                    .bind(id.namespace().as_str())
                    .bind(id.key())
                    .bind(version)
                    .bind(sealed.as_slice())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                }
                Op::Delete { id, .. } => {
                    sqlx::query("DELETE FROM record WHERE namespace = ?1 AND key = ?2")
                        .bind(id.namespace().as_str())
                        .bind(id.key())
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                }
                Op::Check { .. } => {}
            }
        }
        if has_puts {
            sqlx::query("UPDATE counter SET last_version = ?1 WHERE id = 0")
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        if ops.iter().any(|op| matches!(op, Op::Delete { .. })) {
            // Deleted values must leave the write-ahead log too, not only the database pages
            // (secure_delete). Best effort: the commit stands whatever the checkpoint does.
            let _ = self.checkpoint_locked().await;
        }
        if has_puts {
            to_version(version)
        } else {
            Ok(Version(u64::try_from(version).unwrap_or(0)))
        }
    }
}
