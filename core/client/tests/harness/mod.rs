//! An in-process relay on 127.0.0.1 with a temporary SQLite database, a tenant, and clients
//! (owner, agents, visitors) registered against it, plus a transport that can be switched off
//! or made to lose responses, for the offline tests.

#![allow(dead_code)]

pub mod operator;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use sotto_client::Client;
use sotto_client::client::{Body, Event, EventStream, Message, TeamRef};
use sotto_client::store::{EncryptedStore, MemoryStore, Store, StoreKey};
use sotto_client::transport::{
    HttpRequest, HttpResponse, Method, NativeTransport, Transport, TransportError,
};
use sotto_core::conversation::ConversationId;
use sotto_core::device::{DeviceId, DeviceKind};
use sotto_core::team::{MemberId, Policy, Role};
use sotto_relay::config::ServeArgs;

pub type TestClient = Client<MemoryStore, FlakyTransport>;

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).unwrap();
        let dir = std::env::temp_dir().join(format!("sotto-client-test-{}", hex::encode(r)));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A relay and one tenant.
pub struct TestRelay {
    pub relay: Option<sotto_relay::Relay>,
    pub dir: TempDir,
    pub base: String,
    pub widget_id: String,
    pub bootstrap_code: String,
}

impl TestRelay {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ServeArgs)) -> Self {
        let dir = TempDir::new();
        let db = dir.0.join("relay.sqlite");
        let mut args = ServeArgs::with_database(db.to_str().unwrap());
        args.listen = "127.0.0.1:0".parse().unwrap();
        args.rate_per_address = 0.0;
        args.rate_per_device = 0.0;
        configure(&mut args);
        let relay = sotto_relay::start(&args).await.expect("relay starts");
        let base = format!("http://{}", relay.addr());
        let tenant = sotto_relay::tenant::create(&relay.state().db, "acme")
            .await
            .unwrap();
        TestRelay {
            relay: Some(relay),
            dir,
            base,
            widget_id: tenant.widget_id,
            bootstrap_code: tenant.bootstrap_code,
        }
    }

    /// A fresh in-memory store (clones of the backend share its records).
    pub async fn store() -> (MemoryStore, StoreKey) {
        let backend = MemoryStore::new();
        let key = StoreKey::generate().unwrap();
        (backend, key)
    }

    pub async fn register(
        &self,
        kind: DeviceKind,
        bootstrap: bool,
    ) -> (TestClient, MemoryStore, FlakyTransport) {
        let backend = MemoryStore::new();
        let key = StoreKey::generate().unwrap();
        let key_bytes = key.secret_bytes().clone();
        let store = EncryptedStore::open(backend.clone(), key).await.unwrap();
        let transport = FlakyTransport::new();
        let client = Client::register(
            store,
            transport.clone(),
            &self.base,
            &self.widget_id,
            kind,
            bootstrap.then_some(self.bootstrap_code.as_str()),
        )
        .await
        .unwrap();
        KEYS.lock()
            .unwrap()
            .push((client.device_id().0, key_bytes.expose().to_vec()));
        (client, backend, transport)
    }

    /// Opens a device's client again on the same records, as after an app restart.
    pub async fn reopen_with_key(&self, backend: &MemoryStore, device: DeviceId) -> TestClient {
        let key = key_of_device(&device);
        let store = EncryptedStore::open(backend.clone(), key).await.unwrap();
        Client::open(store, FlakyTransport::new()).await.unwrap()
    }
}

static KEYS: std::sync::Mutex<Vec<([u8; 32], Vec<u8>)>> = std::sync::Mutex::new(Vec::new());

/// The store key a client was registered with.
pub fn key_of(client: &TestClient) -> StoreKey {
    key_of_device(&client.device_id())
}

fn key_of_device(device: &DeviceId) -> StoreKey {
    let keys = KEYS.lock().unwrap();
    let (_, k) = keys.iter().find(|(d, _)| *d == device.0).unwrap();
    StoreKey::from_slice(k).unwrap()
}

/// A team with an owner and one agent, and a visitor with an open conversation.
pub struct World {
    pub relay: TestRelay,
    pub owner: TestClient,
    pub agent: TestClient,
    pub agent_member: MemberId,
    pub visitor: TestClient,
    pub visitor_store: MemoryStore,
    pub visitor_net: FlakyTransport,
    pub team: TeamRef,
    pub conversation: ConversationId,
}

impl World {
    pub async fn new() -> Self {
        let relay = TestRelay::start().await;
        let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
        let team = owner.create_team(Policy::default()).await.unwrap();
        let (agent, _, _) = relay.register(DeviceKind::Member, false).await;
        let agent_member = owner
            .invite_member(&team.team, &agent.device_id(), Role::Agent)
            .await
            .unwrap();
        agent.join_team(team).await.unwrap();
        let (visitor, visitor_store, visitor_net) =
            relay.register(DeviceKind::Visitor, false).await;
        let conversation = visitor.open_conversation(team).await.unwrap();
        World {
            relay,
            owner,
            agent,
            agent_member,
            visitor,
            visitor_store,
            visitor_net,
            team,
            conversation,
        }
    }
}

/// The texts of a history, in order.
pub fn texts(history: &[Message]) -> Vec<String> {
    history
        .iter()
        .filter_map(|m| match &m.body {
            Body::Text(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

pub async fn history_texts<S: Store>(
    client: &Client<S, FlakyTransport>,
    conversation: &ConversationId,
) -> Vec<String> {
    texts(&client.history(conversation, None, 1000).await.unwrap())
}

/// Waits (at most 10 s) for an event matching `f`.
pub async fn wait_for<R>(events: &mut EventStream, mut f: impl FnMut(&Event) -> Option<R>) -> R {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = events.next().await.expect("event stream ended");
            if let Some(r) = f(&event) {
                return r;
            }
        }
    })
    .await
    .expect("event within 10 s")
}

/// The native transport, with a switch to go offline and a way to lose responses.
#[derive(Clone)]
pub struct FlakyTransport {
    inner: NativeTransport,
    offline: Arc<AtomicBool>,
    /// Envelope posts whose response is lost after the relay processed them.
    lose_post_responses: Arc<AtomicU32>,
    /// A cursor a malicious relay leaves out of envelope listings (0: none).
    withhold_cursor: Arc<std::sync::atomic::AtomicU64>,
    /// The last team chain link a malicious relay serves this client (`u64::MAX`: all).
    links_up_to: Arc<std::sync::atomic::AtomicU64>,
    /// The last head attestation the relay served, and whether to keep serving it (a relay
    /// replaying an honest member's attestation of an old head).
    attestation: Arc<std::sync::Mutex<(Option<Vec<u8>>, bool)>>,
    /// The bearer token of this client's last authenticated request.
    last_bearer: Arc<std::sync::Mutex<Option<zeroize::Zeroizing<String>>>>,
    /// Another client's transport whose token this one's reads use: a relay that serves a
    /// removed member (colluding with it) what an active member gets.
    reads_as: Arc<std::sync::Mutex<Option<FlakyTransport>>>,
    /// The wire messages this client posted as envelopes, in order.
    posted: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    /// A wire message to post instead of the next envelope this client posts (a client in bad
    /// faith sending what an honest client would not build).
    replace_post: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
}

impl FlakyTransport {
    pub fn new() -> Self {
        FlakyTransport {
            inner: NativeTransport::new().unwrap(),
            offline: Arc::new(AtomicBool::new(false)),
            lose_post_responses: Arc::new(AtomicU32::new(0)),
            withhold_cursor: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            links_up_to: Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX)),
            attestation: Arc::new(std::sync::Mutex::new((None, false))),
            last_bearer: Arc::new(std::sync::Mutex::new(None)),
            reads_as: Arc::new(std::sync::Mutex::new(None)),
            posted: Arc::new(std::sync::Mutex::new(Vec::new())),
            replace_post: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// The wire messages this client posted as envelopes so far.
    pub fn posted(&self) -> Vec<Vec<u8>> {
        self.posted.lock().unwrap().clone()
    }

    /// Posts `wire` instead of the next envelope this client posts.
    pub fn replace_next_post(&self, wire: Vec<u8>) {
        *self.replace_post.lock().unwrap() = Some(wire);
    }

    /// Makes the relay answer this client's reads as it answers `other`'s (`None`: stop).
    pub fn read_as(&self, other: Option<&FlakyTransport>) {
        *self.reads_as.lock().unwrap() = other.cloned();
    }

    /// Serves this client no team chain link after `seq` (`None`: all), and a head no newer:
    /// a relay withholding links, a removal for example.
    pub fn hide_links_after(&self, seq: Option<u64>) {
        self.links_up_to
            .store(seq.unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// The last head attestation response the relay served this client.
    pub fn last_attestation(&self) -> Option<Vec<u8>> {
        self.attestation.lock().unwrap().0.clone()
    }

    /// Serves this client `body` as the head attestation from now on (an old one the relay kept).
    pub fn serve_attestation(&self, body: Vec<u8>) {
        *self.attestation.lock().unwrap() = (Some(body), true);
    }

    /// Keeps serving the head attestation last served (`false`: the relay's current one again).
    pub fn replay_attestation(&self, replay: bool) {
        self.attestation.lock().unwrap().1 = replay;
    }

    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Ordering::SeqCst);
    }

    /// Leaves the envelope at `cursor` out of every listing, as a relay that drops messages.
    pub fn withhold(&self, cursor: u64) {
        self.withhold_cursor.store(cursor, Ordering::SeqCst);
    }

    pub fn lose_next_post_responses(&self, n: u32) {
        self.lose_post_responses.store(n, Ordering::SeqCst);
    }
}

impl Transport for FlakyTransport {
    type Push = <NativeTransport as Transport>::Push;

    async fn request(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if self.offline.load(Ordering::SeqCst) {
            return Err(TransportError("offline (test)".into()));
        }
        let is_post = request.method == Method::Post && request.url.ends_with("/envelopes");
        let is_list = request.method == Method::Get && request.url.contains("/envelopes?");
        let is_chain = request.method == Method::Get
            && request.url.contains("/v1/teams/")
            && request.url.contains("/links?");
        let is_attestation = request.method == Method::Get && request.url.ends_with("/attestation");
        let mut request = request;
        if is_post {
            use base64::Engine;
            let engine = base64::engine::general_purpose::STANDARD;
            if let Some(wire) = self.replace_post.lock().unwrap().take() {
                let body = serde_json::json!({ "message": engine.encode(&wire) });
                request.json = Some(serde_json::to_vec(&body).unwrap());
            }
            if let Some(body) = &request.json {
                let json: serde_json::Value = serde_json::from_slice(body).unwrap();
                if let Some(m) = json["message"].as_str() {
                    self.posted.lock().unwrap().push(engine.decode(m).unwrap());
                }
            }
        }
        if request.bearer.is_some() {
            let borrowed = match (&request.method, &*self.reads_as.lock().unwrap()) {
                (Method::Get, Some(other)) => other.last_bearer.lock().unwrap().clone(),
                _ => None,
            };
            match borrowed {
                Some(token) => request.bearer = Some(token),
                None => *self.last_bearer.lock().unwrap() = request.bearer.clone(),
            }
        }
        let mut response = self.inner.request(request).await?;
        let up_to = self.links_up_to.load(Ordering::SeqCst);
        if is_chain && up_to != u64::MAX && response.status == 200 {
            let mut page: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
            page["links"]
                .as_array_mut()
                .unwrap()
                .retain(|l| l["seq"].as_u64().unwrap() <= up_to);
            let head = page["head_seq"].as_u64().unwrap().min(up_to);
            page["head_seq"] = head.into();
            response.body = serde_json::to_vec(&page).unwrap();
        }
        if is_attestation && response.status == 200 {
            let mut kept = self.attestation.lock().unwrap();
            match (&kept.0, kept.1) {
                (Some(old), true) => response.body = old.clone(),
                _ => kept.0 = Some(response.body.clone()),
            }
        }
        let withheld = self.withhold_cursor.load(Ordering::SeqCst);
        if is_list && withheld != 0 && response.status == 200 {
            let mut page: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
            page["envelopes"]
                .as_array_mut()
                .unwrap()
                .retain(|e| e["cursor"].as_u64() != Some(withheld));
            response.body = serde_json::to_vec(&page).unwrap();
        }
        if is_post
            && self
                .lose_post_responses
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(TransportError("response lost (test)".into()));
        }
        Ok(response)
    }

    async fn connect_push(&self, url: &str, token: &str) -> Result<Self::Push, TransportError> {
        if self.offline.load(Ordering::SeqCst) {
            return Err(TransportError("offline (test)".into()));
        }
        self.inner.connect_push(url, token).await
    }

    fn now(&self) -> u64 {
        self.inner.now()
    }

    async fn sleep(&self, millis: u64) {
        self.inner.sleep(millis).await;
    }
}
