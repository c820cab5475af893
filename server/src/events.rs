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
use sotto_core::device::DeviceId;
use sotto_core::team::TeamState;

use crate::extract::{to_b64, to_hex};
use crate::fanout::{Audience, Event, EventRef};
use crate::teams::{all_devices, readers};

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
    conversation_id: &[u8; 16],
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
        },
    }
}
