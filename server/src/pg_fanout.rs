//! Push fan-out between relay nodes that share one PostgreSQL database, over `LISTEN`/`NOTIFY`.
//!
//! [`PgFanout::publish`] delivers an event to this node's WebSocket clients at once and queues a
//! `NOTIFY` on [`CHANNEL`] carrying the node's id and the event's [`EventRef`] (row ids and a
//! cursor, so it stays far below PostgreSQL's 8000-byte payload limit; ephemeral messages, which
//! are not stored, travel inline). One task sends the queued notifications in order, after the
//! publishing handler's commit, so a notification never names a row another node cannot read
//! yet. A listener task on every node turns other nodes' notifications back into events with
//! [`crate::events::rebuild`] (loading the payload and the audience from the database and, for a
//! link, refreshing the node's chain cache first) and delivers them locally; its own are skipped.
//!
//! Notifications are not durable. When a listener loses its connection it connects and
//! listens again, then tells every WebSocket client on its node that it lagged: each catches
//! up over HTTP from its cursor, which covers whatever was notified in between.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sotto_core::device::DeviceId;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::extract::{to_b64, to_hex};
use crate::fanout::{DeviceEvents, Event, EventRef, Fanout, LocalFanout};
use crate::state::AppState;

/// The notification channel every node listens on.
pub const CHANNEL: &str = "sotto_relay_events";
/// Notifications queued for sending before new ones are dropped (and reach only this node).
const OUTBOX_CAPACITY: usize = 8192;
/// PostgreSQL refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7999;

/// [`Fanout`] over PostgreSQL `LISTEN`/`NOTIFY`.
pub struct PgFanout {
    local: LocalFanout,
    node: String,
    outbox: mpsc::Sender<String>,
    /// Taken by [`Fanout::start`].
    parts: Mutex<Option<(mpsc::Receiver<String>, Listener)>>,
}

/// The listening connection, and the one-connection pool it is opened from again after a loss.
struct Listener {
    pool: PgPool,
    connection: PgListener,
}

/// The `application_name` of listening connections, so operators (and tests) can tell them.
pub const LISTENER_APPLICATION_NAME: &str = "sotto-relay-listener";

impl Listener {
    async fn open(pool: PgPool) -> Result<Listener, sqlx::Error> {
        let mut connection = PgListener::connect_with(&pool).await?;
        connection.listen(CHANNEL).await?;
        Ok(Listener { pool, connection })
    }
}

impl PgFanout {
    /// Connects a listener to `url` (a `postgres://` URL) and subscribes to [`CHANNEL`], so no
    /// notification is missed once the relay serves. Local receivers hold at most `capacity`
    /// events.
    pub async fn connect(url: &str, capacity: usize) -> Result<PgFanout, sqlx::Error> {
        // Statement logging is off, as on the relay's pool.
        let options = PgConnectOptions::from_str(url)?
            .disable_statement_logging()
            .application_name(LISTENER_APPLICATION_NAME);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with(options)
            .await?;
        let listener = Listener::open(pool).await?;
        let id = crate::random::random_bytes::<8>()
            .map_err(|e| sqlx::Error::Configuration(Box::new(std::io::Error::other(e))))?;
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX_CAPACITY);
        Ok(PgFanout {
            local: LocalFanout::new(capacity),
            node: to_hex(&id),
            outbox,
            parts: Mutex::new(Some((outbox_rx, listener))),
        })
    }
}

impl Fanout for PgFanout {
    fn publish(&self, event: Event) {
        match encode(&self.node, &event.source) {
            Some(payload) => {
                if self.outbox.try_send(payload).is_err() {
                    tracing::warn!("notification queue full: an event reaches this node only");
                }
            }
            None => tracing::warn!("event too large to notify: it reaches this node only"),
        }
        self.local.publish(event);
    }

    fn subscribe_device(&self, tenant_id: i64, device: DeviceId, is_visitor: bool) -> DeviceEvents {
        self.local.subscribe_device(tenant_id, device, is_visitor)
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.local.subscribe()
    }

    fn start(&self, state: &AppState) -> Vec<JoinHandle<()>> {
        let Some((outbox, listener)) = self.parts.lock().ok().and_then(|mut p| p.take()) else {
            return Vec::new();
        };
        vec![
            tokio::spawn(send(state.clone(), outbox)),
            tokio::spawn(listen(
                state.clone(),
                listener,
                self.node.clone(),
                self.local.clone(),
            )),
        ]
    }
}

/// Sends queued notifications in order until the relay shuts down.
async fn send(state: AppState, mut outbox: mpsc::Receiver<String>) {
    let mut shutdown = state.shutdown.clone();
    loop {
        let payload = tokio::select! {
            p = outbox.recv() => match p {
                Some(p) => p,
                None => return,
            },
            _ = shutdown.wait_for(|stopped| *stopped) => return,
        };
        tracing::debug!("sending a notification");
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(state.db.pool())
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "NOTIFY failed: an event reaches this node only");
        }
    }
}

/// Delivers other nodes' events to this node's clients until the relay shuts down.
async fn listen(state: AppState, mut listener: Listener, node: String, local: LocalFanout) {
    let mut shutdown = state.shutdown.clone();
    loop {
        let received = tokio::select! {
            r = listener.connection.try_recv() => r,
            _ = shutdown.wait_for(|stopped| *stopped) => return,
        };
        match received {
            Ok(Some(notification)) => {
                deliver(&state, &node, &local, notification.payload()).await;
                continue;
            }
            Ok(None) => tracing::warn!("notification connection lost; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "notification listener failed; reconnecting"),
        }
        // The pool holds one connection: the old listener gives it back first.
        let pool = listener.pool.clone();
        drop(listener);
        listener = match relisten(&state, pool, &local).await {
            Some(fresh) => fresh,
            None => return,
        };
    }
}

/// Rebuilds another node's notified event and delivers it to this node's clients.
async fn deliver(state: &AppState, node: &str, local: &LocalFanout, payload: &str) {
    let Some((from, source)) = decode(payload) else {
        tracing::warn!("ignored a malformed notification");
        return;
    };
    if from == node {
        return;
    }
    match crate::events::rebuild(state, &source).await {
        Ok(Some(event)) => {
            tracing::debug!(
                devices = event.audience.devices.len(),
                "delivering an event from another node"
            );
            local.publish(event);
        }
        // Deleted or swept meanwhile: nothing to push.
        Ok(None) => tracing::debug!("a notified event's data is gone"),
        Err(_) => tracing::warn!("could not rebuild a notified event"),
    }
}

/// Listens again after a lost connection, retrying every second, then tells this node's
/// clients to catch up on what was notified meanwhile. `None` if the relay shut down first.
async fn relisten(state: &AppState, pool: PgPool, local: &LocalFanout) -> Option<Listener> {
    let mut shutdown = state.shutdown.clone();
    loop {
        match Listener::open(pool.clone()).await {
            Ok(fresh) => {
                tracing::info!("listening again; clients on this node resynchronize");
                local.resynchronize_all();
                return Some(fresh);
            }
            Err(e) => tracing::warn!(error = %e, "could not listen again; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.wait_for(|stopped| *stopped) => return None,
        }
    }
}

/// The notification payload of an event: the sending node and the event's reference, as JSON.
/// `None` when it would exceed PostgreSQL's payload limit.
pub fn encode(node: &str, source: &EventRef) -> Option<String> {
    let body = match source {
        EventRef::Envelope {
            conversation_ref,
            cursor,
        } => json!({"kind": "envelope", "conversation": conversation_ref, "cursor": cursor}),
        EventRef::Ephemeral {
            conversation_ref,
            message,
        } => {
            json!({"kind": "ephemeral", "conversation": conversation_ref, "message": to_b64(message)})
        }
        EventRef::Epoch {
            conversation_ref,
            epoch,
        } => json!({"kind": "epoch", "conversation": conversation_ref, "epoch": epoch}),
        EventRef::Link { team_ref, seq } => json!({"kind": "link", "team": team_ref, "seq": seq}),
        EventRef::ConversationDeleted {
            conversation_id,
            team_ref,
            visitors,
            by,
        } => json!({
            "kind": "conversation_deleted",
            "conversation_id": to_hex(conversation_id),
            "team": team_ref,
            "visitors": visitors.iter().map(|v| to_hex(&v.0)).collect::<Vec<_>>(),
            "by": to_hex(&by.0),
        }),
    };
    let mut body = body;
    body["node"] = json!(node);
    let text = body.to_string();
    (text.len() <= MAX_PAYLOAD).then_some(text)
}

/// The sending node and the reference of a notification payload; `None` if it is malformed.
pub fn decode(payload: &str) -> Option<(String, EventRef)> {
    let v: Value = serde_json::from_str(payload).ok()?;
    let int = |k: &str| v.get(k).and_then(Value::as_i64);
    let hex = |s: &Value| -> Option<Vec<u8>> { hex::decode(s.as_str()?).ok() };
    let device = |s: &Value| -> Option<DeviceId> { Some(DeviceId(hex(s)?.try_into().ok()?)) };
    let node = v.get("node")?.as_str()?.to_owned();
    let source = match v.get("kind")?.as_str()? {
        "envelope" => EventRef::Envelope {
            conversation_ref: int("conversation")?,
            cursor: int("cursor")?,
        },
        "ephemeral" => EventRef::Ephemeral {
            conversation_ref: int("conversation")?,
            message: Arc::from(
                crate::extract::from_b64("message", v.get("message")?.as_str()?).ok()?,
            ),
        },
        "epoch" => EventRef::Epoch {
            conversation_ref: int("conversation")?,
            epoch: int("epoch")?,
        },
        "link" => EventRef::Link {
            team_ref: int("team")?,
            seq: int("seq")?,
        },
        "conversation_deleted" => EventRef::ConversationDeleted {
            conversation_id: hex(v.get("conversation_id")?)?.try_into().ok()?,
            team_ref: int("team")?,
            visitors: v
                .get("visitors")?
                .as_array()?
                .iter()
                .map(device)
                .collect::<Option<Vec<_>>>()?,
            by: device(v.get("by")?)?,
        },
        _ => return None,
    };
    Some((node, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_survives_a_notification() {
        let refs = [
            EventRef::Envelope {
                conversation_ref: 7,
                cursor: 42,
            },
            EventRef::Ephemeral {
                conversation_ref: 7,
                message: Arc::from(vec![1u8, 2, 3, 255]),
            },
            EventRef::Epoch {
                conversation_ref: 7,
                epoch: 3,
            },
            EventRef::Link {
                team_ref: 9,
                seq: 12,
            },
            EventRef::ConversationDeleted {
                conversation_id: [5; 16],
                team_ref: 9,
                visitors: vec![DeviceId([1; 32]), DeviceId([2; 32])],
                by: DeviceId([3; 32]),
            },
        ];
        for r in refs {
            let payload = encode("node-a", &r).unwrap();
            assert_eq!(decode(&payload), Some(("node-a".to_owned(), r)));
        }
    }

    #[test]
    fn oversized_and_malformed_payloads_are_refused() {
        let big = EventRef::Ephemeral {
            conversation_ref: 1,
            message: Arc::from(vec![0u8; 6000]),
        };
        assert_eq!(encode("n", &big), None);
        for bad in [
            "",
            "null",
            "{}",
            r#"{"node":"n","kind":"envelope","conversation":1}"#,
            r#"{"node":"n","kind":"envelope","conversation":"1","cursor":2}"#,
            r#"{"node":"n","kind":"nope"}"#,
            r#"{"node":"n","kind":"ephemeral","conversation":1,"message":"***"}"#,
            r#"{"node":"n","kind":"conversation_deleted","conversation_id":"00","team":1,"visitors":[],"by":"00"}"#,
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
