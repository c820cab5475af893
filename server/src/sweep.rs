//! Retention sweeps: a periodic task that deletes what the relay no longer needs to keep.
//!
//! Each sweep deletes expired challenges and tokens; envelopes older than the envelope retention
//! (or, when shorter, their team policy's `retention_secs`); attachment blobs older than the blob
//! retention (or their team's policy); backups older than the backup retention; visitor devices
//! that have not authenticated for `--visitor-idle-secs`, with their backups (a visitor
//! registers itself, so without this the device table grows with every abandoned browser); and
//! audit entries older than `--audit-retention-secs`. Deletes run in batches so a large backlog
//! never holds the SQLite write lock for long.

use std::time::Duration;

use sotto_core::device::DeviceKind;
use sqlx::Row;

use crate::db::now;
use crate::routes::blobs::{KIND_ATTACHMENT, KIND_BACKUP};
use crate::state::AppState;

/// Rows deleted per statement.
const BATCH: i64 = 1000;

/// What a sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Envelopes deleted.
    pub envelopes: u64,
    /// Attachment and backup blobs deleted.
    pub blobs: u64,
    /// Expired challenges and tokens deleted.
    pub auth: u64,
    /// Idle visitor devices deleted.
    pub devices: u64,
    /// Old audit entries deleted.
    pub audit: u64,
}

/// Runs sweeps every `sweep_interval_secs` until shutdown.
pub async fn run(state: AppState) {
    let mut shutdown = state.shutdown.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(state.settings.sweep_interval_secs));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        match sweep_once(&state, now()).await {
            Ok(r) if r != SweepReport::default() => tracing::info!(
                envelopes = r.envelopes,
                blobs = r.blobs,
                auth = r.auth,
                devices = r.devices,
                audit = r.audit,
                "retention sweep"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %sweep_error(&e), "retention sweep failed"),
        }
    }
}

fn sweep_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => format!("database error {:?}", db.kind()),
        _ => "database error".to_owned(),
    }
}

/// Deletes in batches with `sql`, which takes the cutoff as `$1` (and `$2`, `$3` if given) and a
/// batch size as the last parameter, until a batch deletes fewer rows than the batch size.
async fn batched(state: &AppState, sql: &str, binds: &[i64]) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let n = state
            .db
            .write(async |c| {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                Ok(q.bind(BATCH).execute(c).await?.rows_affected())
            })
            .await?;
        total += n;
        if n < u64::try_from(BATCH).unwrap_or(0) {
            return Ok(total);
        }
    }
}

/// One sweep at time `now` (seconds). Public so tests can sweep at a chosen time.
pub async fn sweep_once(state: &AppState, now: i64) -> Result<SweepReport, sqlx::Error> {
    let s = &state.settings;
    let mut report = SweepReport::default();
    report.auth += batched(
        state,
        "DELETE FROM auth_challenges WHERE challenge_hash IN \
         (SELECT challenge_hash FROM auth_challenges WHERE expires_at <= $1 LIMIT $2)",
        &[now],
    )
    .await?;
    report.auth += batched(
        state,
        "DELETE FROM auth_tokens WHERE token_hash IN \
         (SELECT token_hash FROM auth_tokens WHERE expires_at <= $1 LIMIT $2)",
        &[now],
    )
    .await?;
    state.tokens.prune(now);
    state.address_limits.prune();
    state.device_limits.prune();

    if s.envelope_retention_secs > 0 {
        report.envelopes += batched(
            state,
            "DELETE FROM envelopes WHERE (conversation_ref, cursor) IN \
             (SELECT conversation_ref, cursor FROM envelopes WHERE received_at < $1 LIMIT $2)",
            &[now.saturating_sub(s.envelope_retention_secs)],
        )
        .await?;
    }
    if s.blob_retention_secs > 0 {
        report.blobs += batched(
            state,
            "DELETE FROM blobs WHERE blob_id IN \
             (SELECT blob_id FROM blobs WHERE kind = $1 AND created_at < $2 LIMIT $3)",
            &[KIND_ATTACHMENT, now.saturating_sub(s.blob_retention_secs)],
        )
        .await?;
    }
    if s.backup_retention_secs > 0 {
        report.blobs += batched(
            state,
            "DELETE FROM blobs WHERE blob_id IN \
             (SELECT blob_id FROM blobs WHERE kind = $1 AND created_at < $2 LIMIT $3)",
            &[KIND_BACKUP, now.saturating_sub(s.backup_retention_secs)],
        )
        .await?;
    }

    let limits = &s.limits;
    if limits.visitor_idle_secs > 0 {
        let cutoff =
            now.saturating_sub(i64::try_from(limits.visitor_idle_secs).unwrap_or(i64::MAX));
        let visitor = i64::from(DeviceKind::Visitor.to_byte());
        report.blobs += batched(
            state,
            "DELETE FROM blobs WHERE blob_id IN \
             (SELECT b.blob_id FROM blobs b JOIN devices d \
              ON d.tenant_id = b.tenant_id AND d.device_id = b.owner_device \
              WHERE b.kind = $1 AND d.kind = $2 AND d.last_seen_at < $3 LIMIT $4)",
            &[KIND_BACKUP, visitor, cutoff],
        )
        .await?;
        // Its tokens go with it (ON DELETE CASCADE); its conversations keep their copy of its
        // record, so the team can still read them.
        report.devices += batched(
            state,
            "DELETE FROM devices WHERE (tenant_id, device_id) IN \
             (SELECT tenant_id, device_id FROM devices \
              WHERE kind = $1 AND last_seen_at < $2 LIMIT $3)",
            &[visitor, cutoff],
        )
        .await?;
    }
    if limits.audit_retention_secs > 0 {
        let cutoff =
            now.saturating_sub(i64::try_from(limits.audit_retention_secs).unwrap_or(i64::MAX));
        report.audit += batched(
            state,
            "DELETE FROM audit_log WHERE id IN \
             (SELECT id FROM audit_log WHERE at < $1 LIMIT $2)",
            &[cutoff],
        )
        .await?;
    }

    // Teams whose own policy keeps messages for less time than the relay would.
    let teams = sqlx::query(
        "SELECT id, retention_secs FROM teams WHERE deleted = 0 AND retention_secs > 0",
    )
    .fetch_all(state.db.pool())
    .await?;
    for t in teams {
        let team_ref: i64 = t.try_get("id")?;
        let retention: i64 = t.try_get("retention_secs")?;
        let cutoff = now.saturating_sub(retention);
        report.envelopes += batched(
            state,
            "DELETE FROM envelopes WHERE (conversation_ref, cursor) IN \
             (SELECT e.conversation_ref, e.cursor FROM envelopes e \
              JOIN conversations c ON c.id = e.conversation_ref \
              WHERE c.team_ref = $1 AND e.received_at < $2 LIMIT $3)",
            &[team_ref, cutoff],
        )
        .await?;
        report.blobs += batched(
            state,
            "DELETE FROM blobs WHERE blob_id IN \
             (SELECT b.blob_id FROM blobs b JOIN conversations c ON c.id = b.conversation_ref \
              WHERE c.team_ref = $1 AND b.created_at < $2 LIMIT $3)",
            &[team_ref, cutoff],
        )
        .await?;
    }
    Ok(report)
}
