//! The client: one async API over the protocol core, an encrypted store and a transport.
//!
//! A [`Client`] is one registered device. Every method takes `&self` and may be called
//! concurrently (the client is a cheap `Clone` handle): each state change is an atomic,
//! version-checked store transaction, so two sends never take the same sender-chain counter and
//! a message is stored at most once however many times it is received.
//!
//! - [`Client::register`] / [`Client::open`]: a new device, or the device of an existing store.
//! - Teams ([`team`]): create, join, invite, approve devices, remove, change roles, delete.
//! - Conversations ([`conversation`]): open as a visitor, send text, attachments, typing and
//!   read receipts, load history, delete.
//! - Receiving: [`Client::run`] keeps a push connection and syncs over HTTP on every (re)connect
//!   from the stored cursors; [`Client::sync`] does one round by hand. Results arrive as
//!   [`Event`]s through [`Client::events`].
//! - Sending queues first ([`queue`]): a message is sealed and stored before the network is
//!   tried, and retried by [`Client::flush_outbox`] (and on every reconnect).
//! - Backups ([`Client::export_backup`], [`Client::restore_backup`]).

mod api;
mod backup;
mod bodies;
pub mod conversation;
mod deletion;
mod epoch_chain;
mod epochs;
pub mod events;
#[cfg(fuzzing)]
pub mod fuzzing;
mod held;
pub mod log;
mod push;
pub mod queue;
mod receive;
mod records;
pub mod recovery;
mod send;
pub mod system;
pub mod team;
mod wake;
mod witness;

use std::sync::Arc;

use futures_util::lock::Mutex;
use sotto_core::conversation::{ConversationId, Instance};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::device::{Device, DeviceId, DeviceKind};
use sotto_core::sorted_map::SortedMap;
use sotto_core::team::{TeamId, TeamKeyring, TeamState};
use sotto_core::wire::WireObject;

use crate::rng::os_rng;
use crate::store::{EncryptedStore, Expect, Store, Transaction};
use crate::transport::{Method, RelayUrl, Transport};
use crate::{Error, Result};

use api::{Api, b64};
pub use conversation::{AttachmentInfo, Body, ChainPosition, Message, Outgoing};
pub use events::{Event, EventStream, TeamChange, Warning};
pub use log::TeamLogEntry;
pub use recovery::RecoveryKit;
pub use system::system_note;
pub use team::{MemberInfo, TeamRef};

/// A registered device talking to one relay. See the [module docs](self).
pub struct Client<S, T> {
    inner: Arc<Inner<S, T>>,
}

impl<S, T> Clone for Client<S, T> {
    fn clone(&self) -> Self {
        Client {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S, T> core::fmt::Debug for Client<S, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("device", &self.inner.device.id())
            .field("relay", &self.inner.api.relay)
            .finish_non_exhaustive()
    }
}

/// A team as this client verified it, with the team keys its device holds.
pub(crate) struct TeamView {
    pub state: TeamState,
    pub keyring: TeamKeyring,
    /// The witness key the out-of-band team reference pinned, if any: the chain must name it.
    pub witness_pin: Option<[u8; 32]>,
}

pub(crate) struct Inner<S, T> {
    pub store: EncryptedStore<S>,
    pub api: Api<T>,
    pub device: Device,
    /// This installation of the device: its sender chains are its own (PROTOCOL §7.2).
    pub instance: Instance,
    /// Verified team chains. Held across a chain sync or a proposal, so those never interleave.
    pub teams: Mutex<SortedMap<TeamId, TeamView>>,
    /// Opened epoch secrets, so the sealed secret is opened once per epoch.
    pub secrets: std::sync::Mutex<SortedMap<(ConversationId, u32), SecretBytes<32>>>,
    /// Records accepted since the last sync of their conversation: the end of the epoch each
    /// closes is checked against what arrived once that sync has read every envelope.
    pub closes_due: std::sync::Mutex<Vec<(ConversationId, u32)>>,
    /// Serialises receiving (HTTP sync and push) so cursors advance in order.
    pub receive: Mutex<()>,
    /// Serialises posting the outbox so the relay stores a sender's messages in counter order.
    pub flush: Mutex<()>,
    pub events: events::Events,
    /// When this device last attested each team's head: `(seq, time)`.
    pub attested: std::sync::Mutex<SortedMap<TeamId, (u64, u64)>>,
    /// When this client last saw a fresh attestation (visitors) or witness statement (visitors
    /// and members) of each team's head.
    pub head_checked: std::sync::Mutex<SortedMap<TeamId, u64>>,
    /// Cuts the push loop's waits short when the network is back.
    pub wake: wake::WakeSignal,
}

impl<S: Store, T: Transport> Client<S, T> {
    /// Registers a new device with the relay at `relay` for the tenant `widget_id` (32 hex
    /// digits) and keeps it in `store`, which must not hold a device yet. A tenant's first
    /// owner device gives the tenant's `bootstrap_code`; visitors and later members give `None`.
    pub async fn register(
        store: EncryptedStore<S>,
        transport: T,
        relay: &str,
        widget_id: &str,
        kind: DeviceKind,
        bootstrap_code: Option<&str>,
    ) -> Result<Self> {
        let relay = RelayUrl::parse(relay)?;
        let widget: [u8; 16] = parse_hex(widget_id, "widget id")?;
        let account_id = records::account_id()?;
        if store.get(&account_id).await?.is_some() {
            return Err(Error::AlreadyRegistered);
        }
        let device = Device::generate(kind, &mut os_rng()?, transport.now());
        let api = Api::new(transport, relay, widget);
        let body = bodies::encode(&bodies::Registration {
            widget_id: &widget_id.to_ascii_lowercase(),
            record: &b64(&device.record().to_wire()),
            bootstrap_code,
        })?;
        api.public(Method::Post, "/v1/devices", Some(body)).await?;
        let account = records::Account {
            relay: api.relay.to_string(),
            widget_id: widget,
            device_secrets: device.export_secrets(),
            instance: None,
        };
        let instance = Instance::random(&mut os_rng()?);
        let mut txn = Transaction::new();
        txn.put(account_id, &account.encode(&instance), Expect::Absent);
        store.commit(txn).await?;
        Ok(Self::assemble(
            store,
            api,
            device,
            instance,
            SortedMap::new(),
        ))
    }

    /// Opens the device kept in `store` (registered before with [`Client::register`] or
    /// restored from a backup), with its teams, conversations and history.
    pub async fn open(store: EncryptedStore<S>, transport: T) -> Result<Self> {
        let account_id = records::account_id()?;
        let entry = store.get(&account_id).await?.ok_or(Error::NotRegistered)?;
        let account = records::Account::decode(&entry.value)?;
        // A store from before instances existed gets one now: a fresh instance is always safe
        // (its chains start anew), and from here on it is this installation's.
        let instance = match account.instance {
            Some(instance) => instance,
            None => {
                let instance = Instance::random(&mut os_rng()?);
                let mut txn = Transaction::new();
                txn.put(
                    account_id,
                    &account.encode(&instance),
                    Expect::Version(entry.version),
                );
                store.commit(txn).await?;
                instance
            }
        };
        let device = Device::import_secrets(&account.device_secrets)?;
        let relay = RelayUrl::parse(&account.relay)?;
        let api = Api::new(transport, relay, account.widget_id);
        let teams = team::load_teams(&store, &device).await?;
        Ok(Self::assemble(store, api, device, instance, teams))
    }

    fn assemble(
        store: EncryptedStore<S>,
        api: Api<T>,
        device: Device,
        instance: Instance,
        teams: SortedMap<TeamId, TeamView>,
    ) -> Self {
        Client {
            inner: Arc::new(Inner {
                store,
                api,
                device,
                instance,
                teams: Mutex::new(teams),
                secrets: std::sync::Mutex::new(SortedMap::new()),
                closes_due: std::sync::Mutex::new(Vec::new()),
                receive: Mutex::new(()),
                flush: Mutex::new(()),
                events: events::Events::default(),
                attested: std::sync::Mutex::new(SortedMap::new()),
                head_checked: std::sync::Mutex::new(SortedMap::new()),
                wake: wake::WakeSignal::default(),
            }),
        }
    }

    /// This device's id (what an admin needs to invite or approve it).
    pub fn device_id(&self) -> DeviceId {
        self.inner.device.id()
    }

    /// This installation's instance (PROTOCOL §7.2): chosen when the store was created and
    /// afresh by every restore, so two copies of one device never share a sender chain.
    pub fn instance(&self) -> Instance {
        self.inner.instance
    }

    /// This device's kind.
    pub fn device_kind(&self) -> DeviceKind {
        self.inner.device.kind()
    }

    /// The relay this client talks to.
    pub fn relay(&self) -> &RelayUrl {
        &self.inner.api.relay
    }

    /// The store, for maintenance.
    pub fn store(&self) -> &EncryptedStore<S> {
        &self.inner.store
    }

    /// A new subscription to the client's [`Event`]s, from now on. Events wait in the
    /// subscription until read (it is unbounded): read it continuously, or drop it to
    /// unsubscribe.
    pub fn events(&self) -> EventStream {
        self.inner.events.subscribe()
    }

    /// Authenticates now (challenge-response), replacing any cached token. Other calls
    /// authenticate by themselves when needed; this is for checking credentials early.
    pub async fn authenticate(&self) -> Result<()> {
        self.inner
            .api
            .token(&self.inner.device, true)
            .await
            .map(|_| ())
    }

    /// One full round over HTTP: the team chains, the conversations (new ones, epochs and
    /// envelopes after the stored cursors), then the outbox. [`Client::run`] does this on every
    /// (re)connect.
    ///
    /// A failure that may pass (offline) ends the round with that error. A refusal that
    /// concerns one team or conversation (for example after this device was removed) skips it
    /// and the round goes on; the first such error is returned at the end.
    pub async fn sync(&self) -> Result<()> {
        let mut first = None;
        let mut note = |r: Result<()>| -> Result<()> {
            match r {
                Err(e) if e.is_transient() => Err(e),
                Err(e) => {
                    first.get_or_insert(e);
                    Ok(())
                }
                Ok(()) => Ok(()),
            }
        };
        let me = self.inner.device.id();
        // Teams this device was removed from can no longer be read at the relay.
        let teams: Vec<TeamId> = self
            .inner
            .teams
            .lock()
            .await
            .iter()
            .filter(|(_, v)| {
                v.state.member_of(&me).is_some() || v.state.former_device(&me).is_none()
            })
            .map(|(t, _)| *t)
            .collect();
        for team in teams {
            note(self.sync_team(&team).await)?;
        }
        note(self.discover_conversations().await)?;
        for (conversation, record) in self.conversation_records().await? {
            if !record.visitor && !self.reads_team(&record.team).await {
                continue;
            }
            note(self.sync_conversation(&conversation).await)?;
        }
        note(self.flush_outbox().await.map(|_| ()))?;
        first.map_or(Ok(()), Err)
    }

    /// Whether this device is an active, read-permitted device of the team.
    async fn reads_team(&self, team: &TeamId) -> bool {
        let teams = self.inner.teams.lock().await;
        teams.get(team).is_some_and(|v| {
            !v.state.is_deleted()
                && v.state
                    .member_of(&self.inner.device.id())
                    .is_some_and(|(_, r)| r.can_read())
        })
    }

    pub(crate) fn now(&self) -> u64 {
        self.inner.api.transport.now()
    }

    pub(crate) async fn call_json<R: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<R> {
        self.inner
            .api
            .call_json(&self.inner.device, method, path, body)
            .await
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        self.inner
            .api
            .call(&self.inner.device, method, path, body)
            .await
    }
}

pub(crate) fn parse_hex<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| Error::InvalidInput(what))?;
    Ok(out)
}
