//! [`SottoClient`]: one registered device over an encrypted SQLite store and the native
//! transport. Every method forwards to [`sotto_client::Client`]; see its docs for behaviour.
//!
//! The store key (32 bytes) comes from the application, which keeps it in the platform's
//! keychain or keystore; this crate never writes it anywhere. `new_store_key` makes one.

use std::sync::{Arc, Mutex};

use sotto_client::Client;
use sotto_client::Error;
use sotto_client::Result as ClientResult;
use sotto_client::backup::{KdfParams, OpenWith, SealTo};
use sotto_client::store::{EncryptedStore, SqliteStore, StoreKey};
use sotto_client::transport::NativeTransport;
use sotto_core::recovery::RecoverySecret;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::error::SottoError;
use crate::events::{EventListener, EventSubscription, ListenerHandle};
use crate::runtime::{self, guard, run};
use crate::types::{
    self, Attachment, BackupSecret, ChatMessage, ClientKind, Membership, Secret, SentMessage,
    TeamMember, TeamPolicy, TeamReference, TeamRole,
};

type Inner = Client<SqliteStore, NativeTransport>;

/// Length of a store key.
const STORE_KEY_LEN: usize = 32;

/// Opens the encrypted store in the SQLite file at `path` with the application's key.
async fn open_store(
    path: String,
    key: Zeroizing<Vec<u8>>,
) -> ClientResult<EncryptedStore<SqliteStore>> {
    if key.len() != STORE_KEY_LEN {
        return Err(Error::InvalidInput("store key (must be 32 bytes)"));
    }
    let key = StoreKey::from_slice(&key)?;
    // The compiler cannot prove `SqliteStore::open`'s future `Send` (sqlx's executor lifetimes,
    // rust-lang/rust#64552), and tasks on a multi-threaded runtime must be: so it runs to
    // completion on a blocking thread of the same runtime instead of being awaited here.
    let handle = tokio::runtime::Handle::current();
    let backend = tokio::task::spawn_blocking(move || handle.block_on(SqliteStore::open(path)))
        .await
        .map_err(|_| Error::Backend("the store opening task failed".into()))??;
    EncryptedStore::open(backend, key).await
}

fn transport() -> ClientResult<NativeTransport> {
    Ok(NativeTransport::new()?)
}

/// A fresh random 32-byte store key, to keep in the keychain or keystore.
#[uniffi::export]
pub fn new_store_key() -> Result<Vec<u8>, SottoError> {
    guard(|| {
        let key = StoreKey::generate()?;
        Ok(key.secret_bytes().expose().to_vec())
    })
}

/// The protocol's default team policy.
#[uniffi::export]
pub fn default_policy() -> TeamPolicy {
    sotto_core::team::Policy::default().into()
}

/// Registers a new device with the relay at `relay_url` for the tenant `widget_id` and keeps it
/// in the store at `database_path` (created if missing; it must not hold a device yet). A
/// tenant's first owner device gives the tenant's `bootstrap_code`; others give `None`.
#[uniffi::export]
pub async fn register_client(
    database_path: String,
    store_key: Vec<u8>,
    relay_url: String,
    widget_id: String,
    kind: ClientKind,
    bootstrap_code: Option<String>,
) -> Result<Arc<SottoClient>, SottoError> {
    let store_key = Zeroizing::new(store_key);
    let client = run(async move {
        let store = open_store(database_path, store_key).await?;
        Client::register(
            store,
            transport()?,
            &relay_url,
            &widget_id,
            kind.into(),
            bootstrap_code.as_deref(),
        )
        .await
    })
    .await?;
    Ok(Arc::new(SottoClient::new(client)))
}

/// Opens the device kept in the store at `database_path` (registered or restored before).
#[uniffi::export]
pub async fn open_client(
    database_path: String,
    store_key: Vec<u8>,
) -> Result<Arc<SottoClient>, SottoError> {
    let store_key = Zeroizing::new(store_key);
    let client = run(async move {
        let store = open_store(database_path, store_key).await?;
        Client::open(store, transport()?).await
    })
    .await?;
    Ok(Arc::new(SottoClient::new(client)))
}

/// Opens a backup with `secret` and restores it into the store at `database_path`, which must
/// hold no device, then opens the client on it. Each conversation opens a new epoch before the
/// restored client sends in it again.
#[uniffi::export]
pub async fn restore_client(
    database_path: String,
    store_key: Vec<u8>,
    backup: Vec<u8>,
    secret: BackupSecret,
) -> Result<Arc<SottoClient>, SottoError> {
    let store_key = Zeroizing::new(store_key);
    let client = run(async move {
        let store = open_store(database_path, store_key).await?;
        match Secret::from(secret) {
            Secret::Words(words) => {
                let recovery = RecoverySecret::from_words(&words)?;
                let with = OpenWith::RecoveryKey(&recovery);
                Client::restore_backup(store, transport()?, &backup, with).await
            }
            Secret::Passphrase(passphrase, _) => {
                let with = OpenWith::Passphrase(&passphrase);
                Client::restore_backup(store, transport()?, &backup, with).await
            }
        }
    })
    .await?;
    Ok(Arc::new(SottoClient::new(client)))
}

/// A registered device. Methods may be called concurrently from any thread.
#[derive(uniffi::Object)]
pub struct SottoClient {
    client: Inner,
    /// The push loop started by `start`.
    running: Mutex<Option<JoinHandle<()>>>,
}

impl SottoClient {
    fn new(client: Inner) -> Self {
        SottoClient {
            client,
            running: Mutex::new(None),
        }
    }

    fn handle(&self) -> Inner {
        self.client.clone()
    }
}

impl Drop for SottoClient {
    fn drop(&mut self) {
        self.stop();
    }
}

#[uniffi::export]
impl SottoClient {
    // ---- the device and the connection ----

    /// This device's id (64 hex digits): what an admin needs to invite or approve it.
    pub fn device_id(&self) -> String {
        hex::encode(self.client.device_id().0)
    }

    /// This device's kind.
    pub fn device_kind(&self) -> ClientKind {
        self.client.device_kind().into()
    }

    /// The relay this client talks to.
    pub fn relay_url(&self) -> String {
        self.client.relay().to_string()
    }

    /// Authenticates now, to check credentials early (other calls authenticate by themselves).
    pub async fn authenticate(&self) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move { c.authenticate().await }).await
    }

    /// One full round over HTTP: team chains, conversations, then the outbox.
    pub async fn sync(&self) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move { c.sync().await }).await
    }

    /// Starts the push connection in the background: it syncs on every (re)connect and
    /// reconnects with backoff until `stop`. Results arrive as events. Starting twice is a no-op.
    pub fn start(&self) -> Result<(), SottoError> {
        guard(|| {
            let mut running = self
                .running
                .lock()
                .map_err(|_| SottoError::internal("lock_poisoned", "client lock poisoned"))?;
            if running.as_ref().is_some_and(|t| !t.is_finished()) {
                return Ok(());
            }
            let c = self.handle();
            *running = Some(runtime::spawn(async move { c.run().await })?);
            Ok(())
        })
    }

    /// Stops the push connection.
    pub fn stop(&self) {
        if let Ok(mut running) = self.running.lock()
            && let Some(task) = running.take()
        {
            task.abort();
        }
    }

    /// Tells the client the network may be back (call it from the platform's connectivity
    /// callback: `NWPathMonitor` on iOS, `ConnectivityManager.NetworkCallback.onAvailable` on
    /// Android). A started client reconnects, or retries its outbox, at once instead of after
    /// its backoff.
    pub fn network_available(&self) {
        self.handle().wake();
    }

    /// Whether the push connection is started.
    pub fn is_started(&self) -> bool {
        self.running
            .lock()
            .map(|t| t.as_ref().is_some_and(|t| !t.is_finished()))
            .unwrap_or(false)
    }

    /// A subscription to this client's events from now on, to poll.
    pub fn subscribe(&self) -> Arc<EventSubscription> {
        Arc::new(EventSubscription::new(self.client.events()))
    }

    /// Delivers this client's events from now on to `listener`, until the handle's `cancel`.
    pub fn listen(
        &self,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<ListenerHandle>, SottoError> {
        guard(|| ListenerHandle::start(self.client.events(), listener).map(Arc::new))
    }

    // ---- teams ----

    /// Creates a team with this device as owner (`None`: the default policy).
    pub async fn create_team(
        &self,
        policy: Option<TeamPolicy>,
    ) -> Result<TeamReference, SottoError> {
        let c = self.handle();
        let policy = policy.map(Into::into).unwrap_or_default();
        run(async move { c.create_team(policy).await.map(Into::into) }).await
    }

    /// Follows a team this device was invited to (`team_id:fingerprint`).
    pub async fn join_team(&self, reference: String) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move {
            let team = sotto_client::client::TeamRef::parse(&reference)?;
            c.join_team(team).await
        })
        .await
    }

    /// The teams this client follows.
    pub async fn teams(&self) -> Result<Vec<TeamReference>, SottoError> {
        let c = self.handle();
        run(async move { Ok::<_, Error>(c.teams().await.into_iter().map(Into::into).collect()) })
            .await
    }

    /// A team's members, from the verified chain.
    pub async fn members(&self, team_id: String) -> Result<Vec<TeamMember>, SottoError> {
        let c = self.handle();
        run(async move {
            let team = types::team_id(&team_id)?;
            Ok::<_, Error>(
                c.members(&team)
                    .await?
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            )
        })
        .await
    }

    /// This device's member id and role in a team, if it is an active member device.
    pub async fn membership(&self, team_id: String) -> Result<Option<Membership>, SottoError> {
        let c = self.handle();
        run(async move {
            let team = types::team_id(&team_id)?;
            Ok::<_, Error>(c.membership(&team).await?.map(|(m, r)| Membership {
                member_id: hex::encode(m.0),
                role: r.into(),
            }))
        })
        .await
    }

    /// Adds the registered device `device_id` as a new member with `role`; returns the member id.
    pub async fn invite_member(
        &self,
        team_id: String,
        device_id: String,
        role: TeamRole,
    ) -> Result<String, SottoError> {
        let c = self.handle();
        run(async move {
            let team = types::team_id(&team_id)?;
            let device = types::device_id(&device_id)?;
            let member = c.invite_member(&team, &device, role.into()).await?;
            Ok::<_, Error>(hex::encode(member.0))
        })
        .await
    }

    /// Approves another device of a member.
    pub async fn approve_device(
        &self,
        team_id: String,
        member_id: String,
        device_id: String,
    ) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move {
            let team = types::team_id(&team_id)?;
            let member = types::member_id(&member_id)?;
            let device = types::device_id(&device_id)?;
            c.approve_device(&team, &member, &device).await
        })
        .await
    }

    /// Removes a member (the team key rotates in the same link).
    pub async fn remove_member(
        &self,
        team_id: String,
        member_id: String,
    ) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move {
            let team = types::team_id(&team_id)?;
            let member = types::member_id(&member_id)?;
            c.remove_member(&team, &member).await
        })
        .await
    }

    /// Revokes one device of a member.
    pub async fn revoke_device(
        &self,
        team_id: String,
        member_id: String,
        device_id: String,
    ) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move {
            let team = types::team_id(&team_id)?;
            let member = types::member_id(&member_id)?;
            let device = types::device_id(&device_id)?;
            c.revoke_device(&team, &member, &device).await
        })
        .await
    }

    /// Changes a member's role.
    pub async fn change_role(
        &self,
        team_id: String,
        member_id: String,
        role: TeamRole,
    ) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move {
            let team = types::team_id(&team_id)?;
            let member = types::member_id(&member_id)?;
            c.change_role(&team, &member, role.into()).await
        })
        .await
    }

    /// Replaces a team's policy.
    pub async fn set_policy(&self, team_id: String, policy: TeamPolicy) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move {
            let team = types::team_id(&team_id)?;
            c.set_policy(&team, policy.into()).await
        })
        .await
    }

    /// Registers a key of the company's backend (an Ed25519 public key, 32 bytes) that signs
    /// visitor identity assertions.
    pub async fn add_integration_key(
        &self,
        team_id: String,
        name: String,
        public_key: Vec<u8>,
    ) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move {
            let team = types::team_id(&team_id)?;
            let key = sotto_core::crypto::sign::VerifyingKey::from_slice(&public_key)?;
            c.add_integration_key(&team, &name, key).await
        })
        .await
    }

    /// Rotates a team's key.
    pub async fn rotate_team_key(&self, team_id: String) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move { c.rotate_team_key(&types::team_id(&team_id)?).await }).await
    }

    /// Deletes a team for everyone (owner only).
    pub async fn delete_team(&self, team_id: String) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move { c.delete_team(&types::team_id(&team_id)?).await }).await
    }

    /// Fetches and verifies a team's new links.
    pub async fn sync_team(&self, team_id: String) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move { c.sync_team(&types::team_id(&team_id)?).await }).await
    }

    // ---- conversations ----

    /// Opens a conversation with a team as a visitor; returns its id.
    pub async fn open_conversation(&self, team_reference: String) -> Result<String, SottoError> {
        let c = self.handle();
        run(async move {
            let team = sotto_client::client::TeamRef::parse(&team_reference)?;
            Ok::<_, Error>(hex::encode(c.open_conversation(team).await?.0))
        })
        .await
    }

    /// The conversations this client takes part in.
    pub async fn conversations(&self) -> Result<Vec<String>, SottoError> {
        let c = self.handle();
        run(async move {
            let list = c.conversations().await?;
            Ok::<_, Error>(list.iter().map(|id| hex::encode(id.0)).collect())
        })
        .await
    }

    /// The team a conversation is with.
    pub async fn conversation_team(&self, conversation_id: String) -> Result<String, SottoError> {
        let c = self.handle();
        run(async move {
            let conversation = types::conversation_id(&conversation_id)?;
            Ok::<_, Error>(hex::encode(c.conversation_team(&conversation).await?.0))
        })
        .await
    }

    /// Sends text (sealed and queued before the network is tried).
    pub async fn send_text(
        &self,
        conversation_id: String,
        text: String,
    ) -> Result<SentMessage, SottoError> {
        let c = self.handle();
        run(async move {
            let conversation = types::conversation_id(&conversation_id)?;
            c.send_text(&conversation, &text).await.map(Into::into)
        })
        .await
    }

    /// Encrypts and uploads a file, then sends a message carrying its reference and key.
    pub async fn send_attachment(
        &self,
        conversation_id: String,
        name: String,
        mime_type: String,
        data: Vec<u8>,
    ) -> Result<SentMessage, SottoError> {
        let c = self.handle();
        let data = Zeroizing::new(data);
        run(async move {
            let conversation = types::conversation_id(&conversation_id)?;
            c.send_attachment(&conversation, &name, &mime_type, &data)
                .await
                .map(Into::into)
        })
        .await
    }

    /// Downloads and decrypts an attachment, checking it against its reference.
    pub async fn fetch_attachment(
        &self,
        attachment: Arc<Attachment>,
    ) -> Result<Vec<u8>, SottoError> {
        let c = self.handle();
        run(async move {
            let data = c.fetch_attachment(&attachment.info).await?;
            Ok::<_, Error>(data.to_vec())
        })
        .await
    }

    /// Presents an identity assertion (wire bytes signed by the company's backend with an
    /// integration key of the team); members report `IdentityVerified` or a warning.
    pub async fn present_identity(
        &self,
        conversation_id: String,
        assertion: Vec<u8>,
    ) -> Result<SentMessage, SottoError> {
        let c = self.handle();
        run(async move {
            let conversation = types::conversation_id(&conversation_id)?;
            c.present_identity(&conversation, &assertion)
                .await
                .map(Into::into)
        })
        .await
    }

    /// Tells the others this device is (or stopped) typing. Ephemeral.
    pub async fn send_typing(
        &self,
        conversation_id: String,
        typing: bool,
    ) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move {
            let conversation = types::conversation_id(&conversation_id)?;
            c.send_typing(&conversation, typing).await
        })
        .await
    }

    /// Tells the others this device read everything up to `cursor`. Ephemeral.
    pub async fn send_read_receipt(
        &self,
        conversation_id: String,
        cursor: u64,
    ) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move {
            let conversation = types::conversation_id(&conversation_id)?;
            c.send_read_receipt(&conversation, cursor).await
        })
        .await
    }

    /// Stored messages, oldest first: the last `limit` before the cursor `before` (`None`: the
    /// newest). Queued messages are in `pending`.
    pub async fn history(
        &self,
        conversation_id: String,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, SottoError> {
        let c = self.handle();
        run(async move {
            let conversation = types::conversation_id(&conversation_id)?;
            let list = c.history(&conversation, before, limit).await?;
            Ok::<_, Error>(list.into_iter().map(Into::into).collect())
        })
        .await
    }

    /// This device's messages that wait for the relay, oldest first.
    pub async fn pending(&self, conversation_id: String) -> Result<Vec<ChatMessage>, SottoError> {
        let c = self.handle();
        run(async move {
            let conversation = types::conversation_id(&conversation_id)?;
            let list = c.pending(&conversation).await?;
            Ok::<_, Error>(list.into_iter().map(Into::into).collect())
        })
        .await
    }

    /// Deletes a conversation at the relay and here.
    pub async fn delete_conversation(&self, conversation_id: String) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move {
            let conversation = types::conversation_id(&conversation_id)?;
            c.delete_conversation(&conversation).await
        })
        .await
    }

    /// Fetches a conversation's new epochs and messages.
    pub async fn sync_conversation(&self, conversation_id: String) -> Result<(), SottoError> {
        let c = self.handle();
        run(async move {
            let conversation = types::conversation_id(&conversation_id)?;
            c.sync_conversation(&conversation).await
        })
        .await
    }

    /// Posts the queued messages; returns how many the relay stored.
    pub async fn flush_outbox(&self) -> Result<u64, SottoError> {
        let c = self.handle();
        run(async move { Ok::<_, Error>(c.flush_outbox().await? as u64) }).await
    }

    /// How many messages wait in the outbox.
    pub async fn outbox_len(&self) -> Result<u64, SottoError> {
        let c = self.handle();
        run(async move { Ok::<_, Error>(c.outbox_len().await? as u64) }).await
    }

    // ---- backups ----

    /// Seals every record of this client into a backup blob, to recovery words or a passphrase.
    pub async fn export_backup(&self, secret: BackupSecret) -> Result<Vec<u8>, SottoError> {
        let c = self.handle();
        run(async move {
            match Secret::from(secret) {
                Secret::Words(words) => {
                    let recovery = RecoverySecret::from_words(&words)?;
                    c.export_backup(SealTo::RecoveryKey(&recovery)).await
                }
                Secret::Passphrase(passphrase, kdf) => {
                    let params = match kdf {
                        Some(k) => k.params()?,
                        None => KdfParams::default(),
                    };
                    c.export_backup(SealTo::Passphrase {
                        passphrase: &passphrase,
                        params,
                    })
                    .await
                }
            }
        })
        .await
    }

    /// Stores a backup blob at the relay for this device and `readers`; returns its blob id.
    pub async fn upload_backup(
        &self,
        backup: Vec<u8>,
        readers: Vec<String>,
    ) -> Result<String, SottoError> {
        let c = self.handle();
        run(async move {
            let readers = readers
                .iter()
                .map(|r| types::device_id(r))
                .collect::<ClientResult<Vec<_>>>()?;
            c.upload_backup(&backup, &readers).await
        })
        .await
    }
}
