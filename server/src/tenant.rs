//! Operator commands on tenants.

use crate::db::{Db, now};
use crate::extract::to_hex;
use crate::random::{hash, random_bytes};

/// A new tenant's public widget id and its one-time bootstrap code (both hex).
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// The public widget id: the widget snippet and every device of the tenant name it.
    pub widget_id: String,
    /// The bootstrap code for the first owner device; only its SHA-256 is stored.
    pub bootstrap_code: String,
}

/// Why a tenant could not be created.
#[derive(Debug)]
pub enum TenantError {
    /// The operating system RNG failed.
    Random,
    /// The database failed.
    Database(sqlx::Error),
}

impl std::fmt::Display for TenantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TenantError::Random => {
                f.write_str("the operating system random number generator failed")
            }
            TenantError::Database(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for TenantError {}

impl From<sqlx::Error> for TenantError {
    fn from(e: sqlx::Error) -> Self {
        TenantError::Database(e)
    }
}

/// Creates a tenant named `name`.
pub async fn create(db: &Db, name: &str) -> Result<NewTenant, TenantError> {
    let widget_id: [u8; 16] = random_bytes().map_err(|_| TenantError::Random)?;
    let code: [u8; 32] = random_bytes().map_err(|_| TenantError::Random)?;
    db.write(async |c| {
        sqlx::query(
            "INSERT INTO tenants (name, widget_id, bootstrap_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name.to_owned())
        .bind(widget_id.to_vec())
        .bind(hash(&code).to_vec())
        .bind(now())
        .execute(c)
        .await
    })
    .await?;
    Ok(NewTenant {
        widget_id: to_hex(&widget_id),
        bootstrap_code: to_hex(&code),
    })
}
