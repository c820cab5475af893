//! Schema migrations, embedded in the binary and applied on start.
//!
//! Each engine has its own numbered SQL files under `server/migrations/{sqlite,postgres}`; the
//! two must describe the same tables. Applied versions are recorded in `relay_migrations`. Each
//! migration runs in one transaction, under a lock, so that relay nodes starting together on one
//! PostgreSQL database apply it exactly once.

use super::{Backend, Db};

/// A migration: its version, a name, and the SQL per engine.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "initial",
    sqlite: include_str!("../../migrations/sqlite/0001_initial.sql"),
    postgres: include_str!("../../migrations/postgres/0001_initial.sql"),
}];

/// Applies every migration not yet applied, in order.
pub async fn run(db: &Db) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS relay_migrations (\
         version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(db.pool())
    .await?;
    for m in MIGRATIONS {
        let mut tx = db.begin_write().await?;
        if db.backend() == Backend::Postgres {
            sqlx::raw_sql("LOCK TABLE relay_migrations IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let applied = sqlx::query("SELECT version FROM relay_migrations WHERE version = $1")
            .bind(m.version)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if applied {
            tx.rollback().await?;
            continue;
        }
        let sql = match db.backend() {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO relay_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(super::now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    Ok(())
}
