//! Shared helpers of the relay's integration tests: an in-process relay on a temporary SQLite
//! file, HTTP clients that register and authenticate real `sotto-core` devices, and a team /
//! conversation scenario built with the protocol core exactly as an app would.
#![allow(dead_code)]

pub mod process;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sotto_core::conversation::epoch::EpochRecord;
use sotto_core::conversation::{
    ChainId, ConversationId, Instance, MessageContext, MessageKind, SenderChain, seal_message,
};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::crypto::sign::SignatureContext;
use sotto_core::device::{Device, DeviceKind};
use sotto_core::team::attestation::HeadAttestation;
use sotto_core::team::{Change, Link, MemberId, Policy, Role, TeamKeyring, TeamState};
use sotto_core::wire::WireObject;
use sotto_relay::config::ServeArgs;
use sotto_relay::{Relay, auth};

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    STANDARD.decode(s).unwrap()
}

/// An RNG seeded from the OS, so runs differ (ids must not collide across tests).
/// An HTTP client for the tests. Installs the ring crypto provider first: built together with
/// the client SDK, reqwest has rustls without a provider of its own (only http:// is used here).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub fn rng() -> ChaCha20Rng {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    ChaCha20Rng::from_seed(seed)
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "sotto-relay-test-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            hex::encode(r)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The administrative PostgreSQL URL for tests that need PostgreSQL whatever the engine of the
/// rest of the suite: `SOTTO_TEST_POSTGRES` if set, else the URL `scripts/postgres.sh` prints
/// after making sure its local cluster runs (it installs PostgreSQL if missing).
pub fn postgres_admin_url() -> String {
    if let Ok(url) = std::env::var("SOTTO_TEST_POSTGRES")
        && !url.is_empty()
    {
        return url;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh");
    let out = std::process::Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed; set SOTTO_TEST_POSTGRES to an administrative PostgreSQL URL instead",
        script.display()
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Creates an empty PostgreSQL database and returns its URL.
pub async fn fresh_postgres_database(admin: &str) -> String {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).unwrap();
    let name = format!("sotto_relay_test_{}", hex::encode(r));
    let mut conn = sqlx::AnyConnection::connect(admin).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// Test defaults: port 0, generous limits so tests that are not about limits never hit them.
pub fn args(db: &Path) -> ServeArgs {
    let mut a = ServeArgs::with_database(db.to_str().unwrap());
    a.listen = "127.0.0.1:0".parse().unwrap();
    a.rate_per_address = 0.0;
    a.rate_per_device = 0.0;
    a.metrics_token = Some(METRICS_TOKEN.to_owned());
    // Tests open many connections and sockets from one address; the abuse suite sets its own.
    a.limits.max_connections_per_address = 4096;
    a.limits.ws_max_per_address = 4096;
    a.limits.registrations_per_address_hour = 0;
    a.limits.registrations_per_tenant_hour = 0;
    a
}

/// The `--metrics-token` of in-process test relays.
pub const METRICS_TOKEN: &str = "test-metrics-token";

/// The metrics text of an in-process test relay.
pub async fn metrics(base: &str) -> String {
    http_client()
        .get(format!("{base}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Something clients can talk to: an in-process relay or a relay process.
pub trait Target {
    /// `http://host:port`.
    fn base(&self) -> &str;

    /// A client for a new device of `kind` in `tenant` (not registered yet).
    fn client(&self, tenant: &Tenant, kind: DeviceKind) -> Client {
        Client::new(
            self.base(),
            tenant,
            Device::generate(kind, &mut rng(), now()),
        )
    }
}

/// A relay reached only by its address (for example a `sotto-relay serve` process).
pub struct Remote(pub String);

impl Target for Remote {
    fn base(&self) -> &str {
        &self.0
    }
}

impl Target for TestRelay {
    fn base(&self) -> &str {
        &self.base
    }
}

/// An in-process relay on a temporary SQLite file.
pub struct TestRelay {
    pub relay: Option<Relay>,
    pub dir: TempDir,
    pub db_path: PathBuf,
    /// The database the relay uses (the SQLite path or a PostgreSQL URL).
    pub database_url: String,
    pub base: String,
    pub http: reqwest::Client,
}

/// A tenant created by the operator command's library function.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub widget_id: String,
    pub bootstrap_code: String,
}

impl TestRelay {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// With `SOTTO_TEST_POSTGRES` set to an administrative PostgreSQL URL (for example
    /// `postgres://postgres@127.0.0.1:5432/postgres`), each relay gets a fresh PostgreSQL
    /// database instead of a SQLite file (tests that need the SQLite file use
    /// [`TestRelay::start_sqlite`]).
    pub async fn start_with(configure: impl FnOnce(&mut ServeArgs)) -> Self {
        match std::env::var("SOTTO_TEST_POSTGRES") {
            Ok(admin) if !admin.is_empty() => {
                let url = fresh_postgres_database(&admin).await;
                let dir = TempDir::new();
                let db_path = dir.path().join("unused.sqlite");
                Self::start_on(dir, db_path, |a| {
                    a.database.url = url;
                    configure(a);
                })
                .await
            }
            _ => Self::start_sqlite(configure).await,
        }
    }

    /// Always on a temporary SQLite file.
    pub async fn start_sqlite(configure: impl FnOnce(&mut ServeArgs)) -> Self {
        let dir = TempDir::new();
        let db_path = dir.path().join("relay.sqlite");
        Self::start_on(dir, db_path, configure).await
    }

    /// Starts on an existing directory and database file.
    pub async fn start_on(
        dir: TempDir,
        db_path: PathBuf,
        configure: impl FnOnce(&mut ServeArgs),
    ) -> Self {
        let mut a = args(&db_path);
        configure(&mut a);
        let relay = sotto_relay::start(&a).await.expect("relay starts");
        let base = format!("http://{}", relay.addr());
        TestRelay {
            relay: Some(relay),
            dir,
            db_path,
            database_url: a.database.url.clone(),
            base,
            http: http_client(),
        }
    }

    pub fn relay(&self) -> &Relay {
        self.relay.as_ref().unwrap()
    }

    pub fn pool(&self) -> &sqlx::AnyPool {
        self.relay().state().db.pool()
    }

    pub async fn tenant(&self, name: &str) -> Tenant {
        let t = sotto_relay::tenant::create(&self.relay().state().db, name)
            .await
            .unwrap();
        Tenant {
            widget_id: t.widget_id,
            bootstrap_code: t.bootstrap_code,
        }
    }

    /// Counts rows of a table matching an optional condition.
    pub async fn count(&self, table: &str, condition: &str) -> i64 {
        use sqlx::Row;
        let sql = if condition.is_empty() {
            format!("SELECT COUNT(*) AS n FROM {table}")
        } else {
            format!("SELECT COUNT(*) AS n FROM {table} WHERE {condition}")
        };
        sqlx::query(&sql)
            .fetch_one(self.pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.relay.take() {
            r.shutdown().await.unwrap();
        }
    }
}

/// A device talking to the relay.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub widget_id: String,
    pub device: Device,
    pub token: Option<String>,
}

/// A response: status and JSON body (Null when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after: Option<String>,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected response {:?}",
            self.body
        );
        self.body
    }
}

pub async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("response is not JSON: {text}"))
    };
    Resp {
        status,
        body,
        retry_after,
    }
}

impl Client {
    pub fn new(base: &str, tenant: &Tenant, device: Device) -> Self {
        Client {
            http: http_client(),
            base: base.to_owned(),
            widget_id: tenant.widget_id.clone(),
            device,
            token: None,
        }
    }

    pub fn id_hex(&self) -> String {
        hex::encode(self.device.id().0)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        send(
            &self.http,
            method,
            &format!("{}{path}", self.base),
            self.token.as_deref(),
            body,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }

    /// `DELETE /v1/conversations/{id}` with this device's signed deletion of it.
    pub async fn delete_conversation(&self, team: &TeamState, conversation: &str) -> Resp {
        let id: [u8; 16] = hex::decode(conversation)
            .ok()
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 16]);
        let deletion = sotto_core::conversation::ConversationDeletion::sign(
            &self.device,
            team.team(),
            ConversationId(id),
            now(),
        );
        self.call(
            Method::DELETE,
            &format!("/v1/conversations/{conversation}"),
            Some(json!({"deletion": b64(&deletion.to_wire())})),
        )
        .await
    }

    pub async fn register(&self, bootstrap: Option<&str>) -> Resp {
        let mut body = json!({
            "widget_id": self.widget_id,
            "record": b64(&self.device.record().to_wire()),
        });
        if let Some(code) = bootstrap {
            body["bootstrap_code"] = json!(code);
        }
        self.post("/v1/devices", body).await
    }

    /// Requests a challenge; returns (challenge bytes, origin).
    pub async fn challenge(&self) -> ([u8; 32], String) {
        let r = self
            .post(
                "/v1/auth/challenge",
                json!({"widget_id": self.widget_id, "device_id": self.id_hex()}),
            )
            .await
            .expect(200);
        let c: [u8; 32] = unb64(r["challenge"].as_str().unwrap()).try_into().unwrap();
        (c, r["origin"].as_str().unwrap().to_owned())
    }

    /// Signs a challenge the way a device does.
    pub fn sign_challenge(&self, challenge: &[u8; 32], origin: &str) -> String {
        let widget: [u8; 16] = hex::decode(&self.widget_id).unwrap().try_into().unwrap();
        let msg = auth::auth_message(challenge, &self.device.id(), &widget, origin);
        b64(self
            .device
            .sign(SignatureContext::RelayAuth, &msg)
            .as_bytes())
    }

    pub async fn token_request(&self, challenge: &[u8; 32], signature: &str) -> Resp {
        self.post(
            "/v1/auth/token",
            json!({
                "widget_id": self.widget_id,
                "device_id": self.id_hex(),
                "challenge": b64(challenge),
                "signature": signature,
            }),
        )
        .await
    }

    /// Challenge, signature, token.
    pub async fn login(&mut self) {
        let (c, origin) = self.challenge().await;
        let sig = self.sign_challenge(&c, &origin);
        let r = self.token_request(&c, &sig).await.expect(200);
        self.token = Some(r["token"].as_str().unwrap().to_owned());
    }

    /// Registers (optionally with the bootstrap code) and logs in.
    pub async fn join(&mut self, bootstrap: Option<&str>) {
        let r = self.register(bootstrap).await;
        assert!(r.status.is_success(), "registration failed: {:?}", r.body);
        self.login().await;
    }

    pub async fn post_link(&self, team_hex: &str, link: &Link) -> Resp {
        self.post(
            &format!("/v1/teams/{team_hex}/links"),
            json!({"link": b64(&link.to_wire())}),
        )
        .await
    }
}

/// A team as its owner sees it, with the owner's client.
pub struct TeamFixture {
    pub owner: Client,
    pub owner_keyring: TeamKeyring,
    pub state: TeamState,
    pub links: Vec<Link>,
    pub rng: ChaCha20Rng,
}

impl TeamFixture {
    /// Registers the bootstrap owner device and creates a team on the relay.
    pub async fn create(relay: &impl Target, tenant: &Tenant) -> Self {
        let mut owner = relay.client(tenant, DeviceKind::Member);
        owner.join(Some(&tenant.bootstrap_code)).await;
        let mut rng = rng();
        let (link, state, keyring) =
            TeamState::create(&mut rng, &owner.device, &[], Policy::default(), now()).unwrap();
        owner
            .post("/v1/teams", json!({"link": b64(&link.to_wire())}))
            .await
            .expect(201);
        TeamFixture {
            owner,
            owner_keyring: keyring,
            state,
            links: vec![link],
            rng,
        }
    }

    pub fn team_hex(&self) -> String {
        hex::encode(self.state.team().0)
    }

    /// Proposes a change by the owner (not yet posted).
    pub fn propose(&mut self, change: Change) -> Link {
        self.state
            .propose(
                &mut self.rng,
                &self.owner.device,
                &mut self.owner_keyring,
                change,
                false,
                now(),
            )
            .unwrap()
    }

    /// Applies a link the relay accepted to the owner's view.
    pub fn accept(&mut self, link: Link) {
        self.state.apply(&link).unwrap();
        let refused = self
            .state
            .absorb_keys(&link, &self.owner.device, &mut self.owner_keyring);
        assert!(refused.is_empty());
        self.links.push(link);
    }

    /// The owner proposes, posts and applies a change.
    pub async fn owner_does(&mut self, change: Change) -> Link {
        let link = self.propose(change);
        self.owner
            .post_link(&self.team_hex(), &link)
            .await
            .expect(201);
        self.accept(link.clone());
        link
    }

    /// Registers a new member device, adds it with `role`, logs it in; returns its client and
    /// keyring (holding the team keys it was sent).
    pub async fn add_member(
        &mut self,
        relay: &impl Target,
        tenant: &Tenant,
        role: Role,
    ) -> (Client, TeamKeyring) {
        let mut client = relay.client(tenant, DeviceKind::Member);
        client.join(None).await;
        let member = MemberId::random(&mut self.rng);
        self.owner_does(Change::AddMember {
            member,
            role,
            devices: vec![client.device.record()],
        })
        .await;
        let mut keyring = TeamKeyring::new();
        let mut state = TeamState::from_genesis(&self.links[0], &self.links[0].hash()).unwrap();
        let mut refused = state.absorb_keys(&self.links[0], &client.device, &mut keyring);
        for l in &self.links[1..] {
            state.apply(l).unwrap();
            refused.extend(state.absorb_keys(l, &client.device, &mut keyring));
        }
        assert!(refused.is_empty());
        (client, keyring)
    }

    /// The owner attests the current head.
    pub async fn attest(&self) {
        let a = HeadAttestation::sign(&self.state, &self.owner.device, now());
        self.owner
            .put(
                &format!("/v1/teams/{}/attestation", self.team_hex()),
                json!({"attestation": b64(&a.to_wire())}),
            )
            .await
            .expect(200);
    }
}

/// A conversation opened by a visitor.
pub struct ConversationFixture {
    pub id: ConversationId,
    pub record: EpochRecord,
    pub secret: SecretBytes<32>,
}

impl ConversationFixture {
    pub fn hex(&self) -> String {
        hex::encode(self.id.0)
    }

    /// A sender chain of `device` in this conversation's epoch for `kind`.
    pub fn chain(&self, device: &Device, kind: MessageKind) -> SenderChain {
        SenderChain::new(
            &self.secret,
            ChainId {
                conversation: self.id,
                epoch: self.record.epoch,
                sender: device.id(),
                instance: Instance([1; 8]),
                stream: kind.stream(),
            },
        )
    }
}

/// The epoch records the tests opened, for the context messages bind (PROTOCOL §7.4).
static CONTEXTS: std::sync::Mutex<Vec<MessageContext>> = std::sync::Mutex::new(Vec::new());

/// Remembers an epoch record so [`seal`] and [`context`] find its message context.
pub fn register_epoch(record: &EpochRecord) {
    CONTEXTS.lock().unwrap().push(MessageContext::of(record));
}

/// The message context of a registered epoch.
pub fn context(conversation: ConversationId, epoch: u32) -> MessageContext {
    *CONTEXTS
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|c| c.conversation == conversation && c.epoch == epoch)
        .expect("a registered epoch record")
}

/// The visitor opens a conversation with the team (epoch 0), as the widget does.
pub async fn open_conversation(visitor: &Client, team: &TeamState) -> ConversationFixture {
    let mut rng = rng();
    let id = ConversationId::random(&mut rng);
    let (record, secret) = EpochRecord::open(
        &mut rng,
        &visitor.device,
        team,
        id,
        0,
        None,
        vec![visitor.device.record()],
        now(),
    )
    .unwrap();
    register_epoch(&record);
    visitor
        .post(
            "/v1/conversations",
            json!({"record": b64(&record.to_wire())}),
        )
        .await
        .expect(201);
    ConversationFixture { id, record, secret }
}

/// Seals one message.
pub fn seal(
    chain: &mut SenderChain,
    device: &Device,
    kind: MessageKind,
    content: &[u8],
) -> Vec<u8> {
    let context = context(chain.id().conversation, chain.id().epoch);
    seal_message(chain, device, kind, content, &context).unwrap()
}

/// Posts a message; returns the response.
pub async fn post_message(client: &Client, conversation: &str, message: &[u8]) -> Resp {
    client
        .post(
            &format!("/v1/conversations/{conversation}/envelopes"),
            json!({"message": b64(message)}),
        )
        .await
}

/// A tenant with a team (owner + agent) and a visitor with an open conversation.
pub struct World {
    pub tenant: Tenant,
    pub team: TeamFixture,
    pub agent: Client,
    pub agent_keyring: TeamKeyring,
    pub visitor: Client,
    pub conversation: ConversationFixture,
}

impl World {
    pub async fn new(relay: &TestRelay, name: &str) -> Self {
        let tenant = relay.tenant(name).await;
        Self::with_tenant(relay, tenant).await
    }

    /// The same, in an existing tenant.
    pub async fn with_tenant(relay: &impl Target, tenant: Tenant) -> Self {
        let mut team = TeamFixture::create(relay, &tenant).await;
        let (agent, agent_keyring) = team.add_member(relay, &tenant, Role::Agent).await;
        let mut visitor = relay.client(&tenant, DeviceKind::Visitor);
        visitor.join(None).await;
        let conversation = open_conversation(&visitor, &team.state).await;
        World {
            tenant,
            team,
            agent,
            agent_keyring,
            visitor,
            conversation,
        }
    }
}
