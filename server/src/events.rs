//! Builds the push events handlers publish after a commit: the WebSocket frame and who may
//! receive it. Frames are JSON text, documented in `docs/RELAY-API.md`:
//!
//! - `{"type":"link","team_id":hex,"seq":n,"link":base64}`
//! - `{"type":"epoch","conversation_id":hex,"epoch":n,"record":base64}`
//! - `{"type":"envelope","conversation_id":hex,"cursor":n,"message":base64}`
//! - `{"type":"ephemeral","conversation_id":hex,"message":base64}` (typing, receipts; not stored)
//! - `{"type":"conversation_deleted","conversation_id":hex}`

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;
use sotto_core::conversation::ParsedMessage;
use sotto_core::conversation::epoch::EpochRecord;
use sotto_core::device::DeviceId;
use sotto_core::team::{TeamId, TeamState};
use sotto_core::wire::WireObject;
use sqlx::Row;

use crate::error::{ApiError, ApiResult};
use crate::extract::{to_b64, to_hex};
use crate::fanout::{Audience, Event, EventRef};
use crate::state::AppState;
use crate::teams::{TeamEntry, all_devices, readers};

/// The audience of a conversation's events: the team's devices with read access and the
/// conversation's visitor devices, except the device that caused the event.
pub fn conversation_audience(
    team: &TeamState,
    visitors: &[DeviceId],
    except: Option<DeviceId>,
) -> Audience {
    let mut devices: BTreeSet<DeviceId> = readers(team).collect();
    devices.extend(visitors.iter().copied());
    Audience {
        devices,
        tenant_visitors: false,
        except,
    }
}

/// A chain link: for the team's devices before and after the link (a removed device learns of
/// its removal) and for the tenant's visitor devices.
pub fn link(
    tenant_id: i64,
    team_ref: i64,
    before: &TeamState,
    after: &TeamState,
    seq: u64,
    link: &[u8],
) -> Event {
    let mut devices: BTreeSet<DeviceId> = all_devices(before).collect();
    devices.extend(all_devices(after));
    let frame = json!({
        "type": "link",
        "team_id": to_hex(&after.team().0),
        "seq": seq,
        "link": to_b64(link),
    });
    Event {
        tenant_id,
        audience: Audience {
            devices,
            tenant_visitors: true,
            except: None,
        },
        frame: Arc::from(frame.to_string()),
        source: EventRef::Link {
            team_ref,
            seq: crate::db::int(seq),
        },
    }
}

/// An epoch record.
pub fn epoch(
    tenant_id: i64,
    conversation_ref: i64,
    conversation_id: &[u8; 16],
    epoch: i64,
    record: &[u8],
    audience: Audience,
) -> Event {
    let frame = json!({
        "type": "epoch",
        "conversation_id": to_hex(conversation_id),
        "epoch": epoch,
        "record": to_b64(record),
    });
    Event {
        tenant_id,
        audience,
        frame: Arc::from(frame.to_string()),
        source: EventRef::Epoch {
            conversation_ref,
            epoch,
        },
    }
}

/// A stored envelope, or (`cursor` none) an ephemeral message.
pub fn envelope(
    tenant_id: i64,
    conversation_ref: i64,
    conversation_id: &[u8; 16],
    cursor: Option<i64>,
    message: Vec<u8>,
    audience: Audience,
) -> Event {
    let (frame, source) = match cursor {
        Some(cursor) => (
            json!({
                "type": "envelope",
                "conversation_id": to_hex(conversation_id),
                "cursor": cursor,
                "message": to_b64(&message),
            }),
            EventRef::Envelope {
                conversation_ref,
                cursor,
            },
        ),
        None => (
            json!({
                "type": "ephemeral",
                "conversation_id": to_hex(conversation_id),
                "message": to_b64(&message),
            }),
            EventRef::Ephemeral {
                conversation_ref,
                message: Arc::from(message),
            },
        ),
    };
    Event {
        tenant_id,
        audience,
        frame: Arc::from(frame.to_string()),
        source,
    }
}

/// A deleted conversation.
pub fn conversation_deleted(
    tenant_id: i64,
    team_ref: i64,
    conversation_id: &[u8; 16],
    visitors: Vec<DeviceId>,
    by: DeviceId,
    audience: Audience,
) -> Event {
    let frame = json!({
        "type": "conversation_deleted",
        "conversation_id": to_hex(conversation_id),
    });
    Event {
        tenant_id,
        audience,
        frame: Arc::from(frame.to_string()),
        source: EventRef::ConversationDeleted {
            conversation_id: *conversation_id,
            team_ref,
            visitors,
            by,
        },
    }
}

fn internal<E>(_: E) -> ApiError {
    ApiError::internal()
}

/// The tenant and team id of a team row.
async fn team_of(state: &AppState, team_ref: i64) -> ApiResult<Option<(i64, TeamId)>> {
    let Some(row) = sqlx::query("SELECT tenant_id, team_id FROM teams WHERE id = $1")
        .bind(team_ref)
        .fetch_optional(state.db.pool())
        .await?
    else {
        return Ok(None);
    };
    let team_id: Vec<u8> = row.try_get("team_id")?;
    Ok(Some((
        row.try_get("tenant_id")?,
        TeamId(team_id.try_into().map_err(internal)?),
    )))
}

/// A conversation row's id, team, and visitor devices.
async fn conversation_of(
    state: &AppState,
    conversation_ref: i64,
) -> ApiResult<Option<([u8; 16], i64, Vec<DeviceId>)>> {
    let Some(row) =
        sqlx::query("SELECT conversation_id, team_ref FROM conversations WHERE id = $1")
            .bind(conversation_ref)
            .fetch_optional(state.db.pool())
            .await?
    else {
        return Ok(None);
    };
    let id: Vec<u8> = row.try_get("conversation_id")?;
    let visitors =
        sqlx::query("SELECT device_id FROM conversation_visitors WHERE conversation_ref = $1")
            .bind(conversation_ref)
            .fetch_all(state.db.pool())
            .await?
            .into_iter()
            .map(|r| {
                let d: Vec<u8> = r.try_get("device_id")?;
                Ok(DeviceId(d.try_into().map_err(internal)?))
            })
            .collect::<ApiResult<Vec<_>>>()?;
    Ok(Some((
        id.try_into().map_err(internal)?,
        row.try_get("team_ref")?,
        visitors,
    )))
}

/// Rebuilds the event a relay node published from its [`EventRef`], on another node sharing the
/// database (the receiving side of a `LISTEN`/`NOTIFY` fan-out). For a link it first applies
/// the new links to this node's cached chain state, so its access decisions are current.
/// `None` when the data is gone meanwhile (deleted or swept): there is nothing to push.
pub async fn rebuild(state: &AppState, source: &EventRef) -> ApiResult<Option<Event>> {
    let team_state = async |team_ref: i64| -> ApiResult<Option<(i64, Arc<TeamEntry>)>> {
        let Some((tenant_id, team_id)) = team_of(state, team_ref).await? else {
            return Ok(None);
        };
        Ok(state
            .teams
            .get(&state.db, tenant_id, &team_id)
            .await?
            .map(|e| (tenant_id, e)))
    };
    Ok(match source {
        EventRef::Envelope {
            conversation_ref,
            cursor,
        } => {
            let Some((id, team_ref, visitors)) = conversation_of(state, *conversation_ref).await?
            else {
                return Ok(None);
            };
            let Some((tenant_id, team)) = team_state(team_ref).await? else {
                return Ok(None);
            };
            let Some(row) = sqlx::query(
                "SELECT message FROM envelopes WHERE conversation_ref = $1 AND cursor = $2",
            )
            .bind(conversation_ref)
            .bind(cursor)
            .fetch_optional(state.db.pool())
            .await?
            else {
                return Ok(None);
            };
            let message: Vec<u8> = row.try_get("message")?;
            let sender = ParsedMessage::decode(&message)
                .map_err(internal)?
                .header()
                .sender;
            let audience = conversation_audience(&team.state(), &visitors, Some(sender));
            Some(envelope(
                tenant_id,
                *conversation_ref,
                &id,
                Some(*cursor),
                message,
                audience,
            ))
        }
        EventRef::Ephemeral {
            conversation_ref,
            message,
        } => {
            let Some((id, team_ref, visitors)) = conversation_of(state, *conversation_ref).await?
            else {
                return Ok(None);
            };
            let Some((tenant_id, team)) = team_state(team_ref).await? else {
                return Ok(None);
            };
            let sender = ParsedMessage::decode(message)
                .map_err(internal)?
                .header()
                .sender;
            let audience = conversation_audience(&team.state(), &visitors, Some(sender));
            Some(envelope(
                tenant_id,
                *conversation_ref,
                &id,
                None,
                message.to_vec(),
                audience,
            ))
        }
        EventRef::Epoch {
            conversation_ref,
            epoch: number,
        } => {
            let Some((id, team_ref, visitors)) = conversation_of(state, *conversation_ref).await?
            else {
                return Ok(None);
            };
            let Some((tenant_id, team)) = team_state(team_ref).await? else {
                return Ok(None);
            };
            let Some(row) =
                sqlx::query("SELECT record FROM epochs WHERE conversation_ref = $1 AND epoch = $2")
                    .bind(conversation_ref)
                    .bind(number)
                    .fetch_optional(state.db.pool())
                    .await?
            else {
                return Ok(None);
            };
            let record: Vec<u8> = row.try_get("record")?;
            let author = EpochRecord::from_wire(&record).map_err(internal)?.author;
            let audience = conversation_audience(&team.state(), &visitors, Some(author));
            Some(epoch(
                tenant_id,
                *conversation_ref,
                &id,
                *number,
                &record,
                audience,
            ))
        }
        EventRef::Link { team_ref, seq } => {
            let Some((tenant_id, entry)) = team_state(*team_ref).await? else {
                return Ok(None);
            };
            // The cached state before the refresh still holds any device the link removed.
            let before = entry.state();
            {
                let _guard = entry.append_lock.lock().await;
                state.teams.refresh(&state.db, &entry).await?;
            }
            let after = entry.state();
            let Some(row) =
                sqlx::query("SELECT link FROM chain_links WHERE team_ref = $1 AND seq = $2")
                    .bind(team_ref)
                    .bind(seq)
                    .fetch_optional(state.db.pool())
                    .await?
            else {
                return Ok(None);
            };
            let bytes: Vec<u8> = row.try_get("link")?;
            let seq = u64::try_from(*seq).map_err(internal)?;
            Some(link(tenant_id, *team_ref, &before, &after, seq, &bytes))
        }
        EventRef::ConversationDeleted {
            conversation_id,
            team_ref,
            visitors,
            by,
        } => {
            let Some((tenant_id, team)) = team_state(*team_ref).await? else {
                return Ok(None);
            };
            let audience = conversation_audience(&team.state(), visitors, Some(*by));
            Some(conversation_deleted(
                tenant_id,
                *team_ref,
                conversation_id,
                visitors.clone(),
                *by,
                audience,
            ))
        }
    })
}
