//! Schema migrations, embedded in the binary and applied on start.
//!
//! Each engine has its own numbered SQL files under `server/migrations/{sqlite,postgres}`; the
//! two must describe the same tables. Applied versions are recorded in `relay_migrations`. All
//! pending migrations run in one transaction under a lock (SQLite's write lock, a PostgreSQL
//! advisory lock), so relay nodes starting together on one database apply each exactly once.

use super::{Backend, Db};

/// A migration: its version, a name, and the SQL per engine.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sqlite: include_str!("../../migrations/sqlite/0001_initial.sql"),
        postgres: include_str!("../../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "abuse_limits",
        sqlite: include_str!("../../migrations/sqlite/0002_abuse_limits.sql"),
        postgres: include_str!("../../migrations/postgres/0002_abuse_limits.sql"),
    },
    Migration {
        version: 3,
        name: "conversation_deletions",
        sqlite: include_str!("../../migrations/sqlite/0003_conversation_deletions.sql"),
        postgres: include_str!("../../migrations/postgres/0003_conversation_deletions.sql"),
    },
];

/// Applies every migration not yet applied, in order, in one transaction.
pub async fn run(db: &Db) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    if db.backend() == Backend::Postgres {
        // Nodes starting together queue here; `CREATE TABLE IF NOT EXISTS` alone races in
        // PostgreSQL. (The cast gives the void result a type the Any driver can read.)
        sqlx::raw_sql("SELECT pg_advisory_xact_lock(7305126001)::text")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS relay_migrations (\
         version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    for m in MIGRATIONS {
        let applied = sqlx::query("SELECT version FROM relay_migrations WHERE version = $1")
            .bind(m.version)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if applied {
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
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    tx.commit().await
}
