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

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sotto_core::device::DeviceId;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};
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

/// Delivers events from the handlers that publish them to the WebSocket connections of the
/// devices that may receive them.
pub trait Fanout: Send + Sync + 'static {
    /// Publishes an event to its subscribers, on this node and (for shared-database
    /// transports) on the others. Must not block.
    fn publish(&self, event: Event);

    /// The events one device may receive ([`Event::is_for`]), from now on. Only the devices an
    /// event is for are woken, so the cost of an event does not grow with the number of
    /// connected devices.
    fn subscribe_device(&self, tenant_id: i64, device: DeviceId, is_visitor: bool) -> DeviceEvents;

    /// A receiver of every event published from now on, whoever it is for (observers, tests).
    /// A receiver that falls too far behind gets `RecvError::Lagged`.
    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>>;

    /// Starts the transport's background tasks once the relay's state exists (they stop when
    /// the relay shuts down). Called once; the in-process transport has none.
    fn start(&self, _state: &AppState) -> Vec<JoinHandle<()>> {
        Vec::new()
    }
}

/// One device connection's queue in the registry.
struct Slot {
    id: u64,
    is_visitor: bool,
    queue: mpsc::Sender<Arc<Event>>,
    lagged: Arc<AtomicBool>,
}

/// The connected devices of every tenant.
struct Registry {
    tenants: Mutex<HashMap<i64, HashMap<DeviceId, Vec<Slot>>>>,
    next_id: AtomicU64,
    /// Bumped when this node may have missed events for everyone (see
    /// [`LocalFanout::resynchronize_all`]); every connection watches it.
    resync: watch::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            tenants: Mutex::default(),
            next_id: AtomicU64::new(0),
            resync: watch::Sender::new(0),
        }
    }
}

impl Registry {
    fn deliver(&self, event: &Arc<Event>) {
        let Ok(tenants) = self.tenants.lock() else {
            return;
        };
        let Some(devices) = tenants.get(&event.tenant_id) else {
            return;
        };
        let offer = |device: &DeviceId, slot: &Slot| {
            if event.is_for(event.tenant_id, device, slot.is_visitor)
                && let Err(mpsc::error::TrySendError::Full(_)) = slot.queue.try_send(event.clone())
            {
                slot.lagged.store(true, Ordering::Release);
            }
        };
        if event.audience.tenant_visitors {
            for (device, slots) in devices {
                slots.iter().for_each(|slot| offer(device, slot));
            }
        } else {
            for device in &event.audience.devices {
                for slot in devices.get(device).into_iter().flatten() {
                    offer(device, slot);
                }
            }
        }
    }

    fn remove(&self, tenant_id: i64, device: &DeviceId, id: u64) {
        let Ok(mut tenants) = self.tenants.lock() else {
            return;
        };
        if let Some(devices) = tenants.get_mut(&tenant_id) {
            if let Some(slots) = devices.get_mut(device) {
                slots.retain(|s| s.id != id);
                if slots.is_empty() {
                    devices.remove(device);
                }
            }
            if devices.is_empty() {
                tenants.remove(&tenant_id);
            }
        }
    }
}

/// The events of one device connection; unsubscribes when dropped.
pub struct DeviceEvents {
    events: mpsc::Receiver<Arc<Event>>,
    lagged: Arc<AtomicBool>,
    resync: watch::Receiver<u64>,
    registry: Arc<Registry>,
    tenant_id: i64,
    device: DeviceId,
    id: u64,
}

impl DeviceEvents {
    /// The next event; `RecvError::Lagged` once after events were dropped because this
    /// connection fell too far behind, or after the node may have missed events meant for it
    /// (its client resynchronizes over HTTP). Cancel-safe.
    pub async fn recv(&mut self) -> Result<Arc<Event>, RecvError> {
        if self.lagged.swap(false, Ordering::AcqRel) {
            return Err(RecvError::Lagged(1));
        }
        tokio::select! {
            biased;
            // The registry owns the sender and this receiver holds the registry, so the
            // channel cannot close; were it to, only the events would be left to wait for.
            Ok(()) = self.resync.changed() => Err(RecvError::Lagged(1)),
            event = self.events.recv() => event.ok_or(RecvError::Closed),
        }
    }
}

impl Drop for DeviceEvents {
    fn drop(&mut self) {
        self.registry.remove(self.tenant_id, &self.device, self.id);
    }
}

/// In-process fan-out: a queue per connected device, and a broadcast channel of every event
/// for observers. Clones share both.
#[derive(Clone)]
pub struct LocalFanout {
    sender: broadcast::Sender<Arc<Event>>,
    registry: Arc<Registry>,
    capacity: usize,
}

impl LocalFanout {
    /// Queues holding at most `capacity` events per slow receiver.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        LocalFanout {
            sender,
            registry: Arc::new(Registry::default()),
            capacity: capacity.max(1),
        }
    }

    /// Tells every connection on this node that it may have missed events (each gets
    /// `RecvError::Lagged` once and its client catches up from its cursor): for a node that
    /// lost its notifications from the other nodes for a while.
    pub fn resynchronize_all(&self) {
        self.registry.resync.send_modify(|generation| {
            *generation = generation.wrapping_add(1);
        });
    }
}

impl Fanout for LocalFanout {
    fn publish(&self, event: Event) {
        let event = Arc::new(event);
        self.registry.deliver(&event);
        // No receivers is not an error: nobody is observing.
        let _ = self.sender.send(event);
    }

    fn subscribe_device(&self, tenant_id: i64, device: DeviceId, is_visitor: bool) -> DeviceEvents {
        let (queue, events) = mpsc::channel(self.capacity);
        let lagged = Arc::new(AtomicBool::new(false));
        let id = self.registry.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut tenants) = self.registry.tenants.lock() {
            tenants
                .entry(tenant_id)
                .or_default()
                .entry(device)
                .or_default()
                .push(Slot {
                    id,
                    is_visitor,
                    queue,
                    lagged: lagged.clone(),
                });
        }
        DeviceEvents {
            events,
            lagged,
            resync: self.registry.resync.subscribe(),
            registry: self.registry.clone(),
            tenant_id,
            device,
            id,
        }
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

    #[tokio::test]
    async fn device_queues_get_only_their_events_and_report_lag() {
        let f = LocalFanout::new(2);
        let (a, b, v) = (DeviceId([1; 32]), DeviceId([2; 32]), DeviceId([3; 32]));
        let mut on_a = f.subscribe_device(1, a, false);
        let mut a_again = f.subscribe_device(1, a, false);
        let mut on_b = f.subscribe_device(1, b, false);
        let mut visitor = f.subscribe_device(1, v, true);
        let mut other_tenant = f.subscribe_device(2, a, false);
        f.publish(event(&[a], false, None));
        f.publish(event(&[a, b], false, Some(b)));
        f.publish(event(&[a], false, None));
        f.publish(event(&[], true, None));
        let next = async |d: &mut DeviceEvents| {
            tokio::time::timeout(std::time::Duration::from_millis(50), d.recv()).await
        };
        // The third event overflowed A's queues (capacity 2): A is told it lagged (first, so
        // its client resynchronizes at once), then gets what its queue held, then nothing.
        for q in [&mut on_a, &mut a_again] {
            assert!(matches!(next(q).await, Ok(Err(RecvError::Lagged(_)))));
            assert_eq!(next(q).await.unwrap().unwrap().audience.devices.len(), 1);
            assert_eq!(next(q).await.unwrap().unwrap().audience.devices.len(), 2);
            assert!(next(q).await.is_err(), "nothing more");
        }
        assert!(next(&mut on_b).await.is_err(), "sender not echoed");
        assert!(
            next(&mut visitor)
                .await
                .unwrap()
                .unwrap()
                .audience
                .tenant_visitors
        );
        assert!(next(&mut other_tenant).await.is_err(), "other tenant");
        // Dropped subscriptions leave the registry.
        drop((on_a, a_again, on_b, visitor, other_tenant));
        assert!(f.registry.tenants.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn resynchronizing_wakes_every_waiting_connection_once() {
        let f = LocalFanout::new(4);
        let (a, v) = (DeviceId([1; 32]), DeviceId([3; 32]));
        let mut agent = f.subscribe_device(1, a, false);
        let mut visitor = f.subscribe_device(2, v, true);
        let waiting = tokio::spawn(async move {
            let got = agent.recv().await;
            (agent, got)
        });
        // Let the task block in recv with nothing queued.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        f.resynchronize_all();
        let (mut agent, got) = waiting.await.unwrap();
        assert!(matches!(got, Err(RecvError::Lagged(_))));
        let next = async |d: &mut DeviceEvents| {
            tokio::time::timeout(std::time::Duration::from_millis(50), d.recv()).await
        };
        assert!(matches!(
            next(&mut visitor).await,
            Ok(Err(RecvError::Lagged(_)))
        ));
        // Once each: afterwards events flow as before, and a later connection is not told.
        assert!(next(&mut agent).await.is_err(), "lag reported once");
        let mut late = f.subscribe_device(1, a, false);
        f.publish(event(&[a], false, None));
        for q in [&mut agent, &mut late] {
            assert_eq!(next(q).await.unwrap().unwrap().audience.devices.len(), 1);
        }
    }
}
