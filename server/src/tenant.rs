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
    /// An embedding origin is not `http(s)://host[:port]`.
    InvalidOrigin(String),
    /// No tenant has this widget id.
    UnknownWidget,
}

impl std::fmt::Display for TenantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TenantError::Random => {
                f.write_str("the operating system random number generator failed")
            }
            TenantError::Database(e) => write!(f, "database error: {e}"),
            TenantError::InvalidOrigin(o) => write!(
                f,
                "invalid embedding origin {o:?}: expected http(s)://host[:port] without a path"
            ),
            TenantError::UnknownWidget => f.write_str("no tenant has this widget id"),
        }
    }
}

impl std::error::Error for TenantError {}

impl From<sqlx::Error> for TenantError {
    fn from(e: sqlx::Error) -> Self {
        TenantError::Database(e)
    }
}

/// Checks and normalizes a page origin allowed to frame a tenant's widget: `http` or `https`,
/// a host of letters, digits, `.`, `-` (or a bracketed IPv6 address), an optional port, nothing
/// else. What is accepted goes verbatim into a `frame-ancestors` directive, so nothing that
/// could end or extend the directive (spaces, `;`, `,`, quotes, `*`) passes.
pub fn normalize_origin(origin: &str) -> Result<String, TenantError> {
    let bad = || TenantError::InvalidOrigin(origin.to_owned());
    let o = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => {
            if h.contains(':') && !h.starts_with('[') {
                return Err(bad());
            }
            (h, Some(p))
        }
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && (host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            || (host.starts_with('[')
                && host.ends_with(']')
                && host[1..host.len() - 1]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':')));
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(o)
    } else {
        Err(bad())
    }
}

/// Replaces the page origins allowed to frame the widget of the tenant with `widget_id` (hex).
pub async fn set_embed_origins(
    db: &Db,
    widget_id: &str,
    origins: &[String],
) -> Result<Vec<String>, TenantError> {
    let normalized = origins
        .iter()
        .map(|o| normalize_origin(o))
        .collect::<Result<Vec<_>, _>>()?;
    let widget = hex::decode(widget_id)
        .ok()
        .filter(|w| w.len() == 16)
        .ok_or(TenantError::UnknownWidget)?;
    let joined = normalized.join(" ");
    let updated = db
        .write(async |c| {
            sqlx::query("UPDATE tenants SET embed_origins = $1 WHERE widget_id = $2")
                .bind(joined)
                .bind(widget)
                .execute(c)
                .await
        })
        .await?
        .rows_affected();
    if updated == 1 {
        Ok(normalized)
    } else {
        Err(TenantError::UnknownWidget)
    }
}

/// The page origins allowed to frame the widget of a tenant, by its widget id (raw bytes);
/// `None` for an unknown widget id.
pub async fn embed_origins(
    db: &Db,
    widget_id: &[u8; 16],
) -> Result<Option<Vec<String>>, sqlx::Error> {
    use sqlx::Row;
    let row = sqlx::query("SELECT embed_origins FROM tenants WHERE widget_id = $1")
        .bind(widget_id.to_vec())
        .fetch_optional(db.pool())
        .await?;
    Ok(match row {
        Some(r) => {
            let joined: String = r.try_get("embed_origins")?;
            Some(joined.split_whitespace().map(str::to_owned).collect())
        }
        None => None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_origins_are_plain_http_origins() {
        assert_eq!(
            normalize_origin("https://Shop.Example.com/").unwrap(),
            "https://shop.example.com"
        );
        assert_eq!(
            normalize_origin("http://127.0.0.1:8081").unwrap(),
            "http://127.0.0.1:8081"
        );
        assert!(normalize_origin("http://[::1]:8080").is_ok());
        for bad in [
            "*",
            "https://*.example.com",
            "javascript:alert(1)",
            "https://a.example.com/path",
            "https://a.example.com; script-src *",
            "https://a.example.com 'unsafe-inline'",
            "ftp://a.example.com",
            "https://",
            "https://a:b:c",
            "https://a.example.com:",
        ] {
            assert!(normalize_origin(bad).is_err(), "{bad}");
        }
    }
}
