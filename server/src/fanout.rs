//! Push fan-out: how a stored envelope, epoch record or chain link reaches WebSocket clients.
//!
//! Handlers publish an [`Event`] after their transaction commits; every WebSocket connection
//! subscribes and forwards the events whose [`Audience`] includes its device. The transport
//! between the two is the [`Fanout`] trait:
//!
//! - [`LocalFanout`] (the default) is an in-process broadcast channel: enough for one relay node,
//!   which is every SQLite deployment;
//! - [`crate::pg_fanout::PgFanout`] (every PostgreSQL deployment, so several nodes can share
//!   the database) also sends `NOTIFY` with the event's [`EventRef`], and a listener task on
//!   every node turns other nodes' notifications back into events with
//!   [`crate::events::rebuild`] and delivers them locally.

use std::collections::BTreeSet;
use std::sync::Arc;

use sotto_core::device::DeviceId;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// What an event refers to in the database, so another node can rebuild it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventRef {
    /// A stored envelope.
    Envelope {
        /// The conversation's row id.
        conversation_ref: i64,
        /// The envelope's cursor.
        cursor: i64,
    },
    /// An ephemeral message (typing, receipt): never stored, so it travels inline.
    Ephemeral {
        /// The conversation's row id.
        conversation_ref: i64,
        /// The message's wire bytes.
        message: Arc<[u8]>,
    },
    /// A stored epoch record.
    Epoch {
        /// The conversation's row id.
        conversation_ref: i64,
        /// The epoch number.
        epoch: i64,
    },
    /// A stored chain link.
    Link {
        /// The team's row id.
        team_ref: i64,
        /// The link's sequence number.
        seq: i64,
    },
    /// A conversation and its data were deleted (the rows are gone, so the reference carries
    /// what a receiving node needs to address the event).
    ConversationDeleted {
        /// The conversation's 16-byte id.
        conversation_id: [u8; 16],
        /// Its team's row id.
        team_ref: i64,
        /// Its visitor devices.
        visitors: Vec<DeviceId>,
        /// The device that deleted it.
        by: DeviceId,
    },
}

/// Which devices of a tenant may receive an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audience {
    /// Devices that may read it (team devices with read access, the conversation's visitors).
    pub devices: BTreeSet<DeviceId>,
    /// Every visitor device of the tenant may read it too (chain links: a visitor verifies the
    /// chain it seals epochs to).
    pub tenant_visitors: bool,
    /// The device that caused the event; it is not echoed back to it.
    pub except: Option<DeviceId>,
}

/// One push event.
#[derive(Clone, Debug)]
pub struct Event {
    /// The tenant whose devices may receive it.
    pub tenant_id: i64,
    /// Who, within the tenant.
    pub audience: Audience,
    /// The WebSocket text frame, serialized once for every receiver.
    pub frame: Arc<str>,
    /// What it refers to, for transports that send references instead of frames.
    pub source: EventRef,
}

impl Event {
    /// Whether a device (of `kind_is_visitor` kind) in `tenant_id` may receive the event.
    pub fn is_for(&self, tenant_id: i64, device: &DeviceId, is_visitor: bool) -> bool {
        self.tenant_id == tenant_id
            && self.audience.except.as_ref() != Some(device)
            && (self.audience.devices.contains(device)
                || (is_visitor && self.audience.tenant_visitors))
    }
}

/// Delivers events from the handlers that publish them to every WebSocket connection.
pub trait Fanout: Send + Sync + 'static {
    /// Publishes an event to every subscriber, on this node and (for shared-database
    /// transports) on the others. Must not block.
    fn publish(&self, event: Event);

    /// A receiver of every event published from now on. A receiver that falls too far behind
    /// gets `RecvError::Lagged` and its client is told to resynchronize over HTTP.
    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>>;

    /// Starts the transport's background tasks once the relay's state exists (they stop when
    /// the relay shuts down). Called once; the in-process transport has none.
    fn start(&self, _state: &AppState) -> Vec<JoinHandle<()>> {
        Vec::new()
    }
}

/// In-process fan-out over a bounded broadcast channel. Clones share the channel.
#[derive(Clone)]
pub struct LocalFanout {
    sender: broadcast::Sender<Arc<Event>>,
}

impl LocalFanout {
    /// A channel holding at most `capacity` events per slow receiver.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        LocalFanout { sender }
    }
}

impl Fanout for LocalFanout {
    fn publish(&self, event: Event) {
        // No receivers is not an error: nobody is connected.
        let _ = self.sender.send(Arc::new(event));
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(devices: &[DeviceId], visitors: bool, except: Option<DeviceId>) -> Event {
        Event {
            tenant_id: 1,
            audience: Audience {
                devices: devices.iter().copied().collect(),
                tenant_visitors: visitors,
                except,
            },
            frame: Arc::from("{}"),
            source: EventRef::ConversationDeleted {
                conversation_id: [0; 16],
                team_ref: 1,
                visitors: Vec::new(),
                by: DeviceId([0; 32]),
            },
        }
    }

    #[test]
    fn audience_is_tenant_scoped_and_excludes_the_sender() {
        let (a, b, c) = (DeviceId([1; 32]), DeviceId([2; 32]), DeviceId([3; 32]));
        let e = event(&[a, b], false, Some(b));
        assert!(e.is_for(1, &a, false));
        assert!(!e.is_for(2, &a, false), "other tenant");
        assert!(!e.is_for(1, &b, false), "sender");
        assert!(!e.is_for(1, &c, true), "not in audience");
        assert!(event(&[], true, None).is_for(1, &c, true));
        assert!(!event(&[], true, None).is_for(1, &c, false));
    }

    #[tokio::test]
    async fn local_fanout_delivers_to_subscribers() {
        let f = LocalFanout::new(4);
        let mut rx = f.subscribe();
        f.publish(event(&[], true, None));
        assert_eq!(&*rx.recv().await.unwrap().frame, "{}");
    }
}
