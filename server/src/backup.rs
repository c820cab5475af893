//! `sotto-relay backup`: a consistent snapshot of a live SQLite database.
//!
//! `VACUUM INTO` copies the database as of one read transaction into a new, compacted file while
//! the relay keeps serving (WAL readers do not block writers). The snapshot is a complete SQLite
//! database: restore it by stopping the relay and putting the file in place of the database (and
//! removing any stale `-wal` and `-shm` files next to it). PostgreSQL deployments use
//! `pg_dump` instead (see the README).

use std::path::Path;

use crate::db::{Backend, Db};

/// Why a backup failed.
#[derive(Debug)]
pub enum BackupError {
    /// The database is not SQLite.
    NotSqlite,
    /// The output file exists already.
    Exists,
    /// The output path is not valid UTF-8.
    BadPath,
    /// The database failed.
    Database(sqlx::Error),
}

impl std::fmt::Display for BackupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupError::NotSqlite => {
                f.write_str("backup works on SQLite; back up PostgreSQL with pg_dump")
            }
            BackupError::Exists => f.write_str("the output file exists; choose a new path"),
            BackupError::BadPath => f.write_str("the output path must be valid UTF-8"),
            BackupError::Database(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for BackupError {}

/// Writes a snapshot of `db` to `out`, which must not exist.
pub async fn snapshot(db: &Db, out: &Path) -> Result<(), BackupError> {
    if db.backend() != Backend::Sqlite {
        return Err(BackupError::NotSqlite);
    }
    if out.exists() {
        return Err(BackupError::Exists);
    }
    let path = out.to_str().ok_or(BackupError::BadPath)?;
    sqlx::query("VACUUM INTO $1")
        .bind(path.to_owned())
        .execute(db.pool())
        .await
        .map_err(BackupError::Database)?;
    Ok(())
}
