//! Conversations: opening one as a visitor, epochs, sealing and opening messages, history.
//!
//! A durable message is sealed on the device's sender chain and queued in one store
//! transaction that checks the chain's version, so two concurrent sends never take the same
//! counter (which would reuse a message key). A received message is decrypted and stored in one
//! transaction that checks the receiver chain's version and that its cursor is new, so a
//! message delivered twice (push and HTTP, or a retried post) is stored once.

use core::fmt;

use serde::Deserialize;
use serde_json::json;
use sotto_core::codec::Reader;
use sotto_core::conversation::attachment::{decrypt_attachment, encrypt_attachment};
use sotto_core::conversation::epoch::epoch_expired;
use sotto_core::conversation::{
    AttachmentRef, ChainId, ConversationId, EpochRecord, EpochWarning, Freshness, MessageKind,
    ParsedMessage, ReceiverChain, SenderChain, Stream, seal_message, sender_key,
};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::device::{DeviceId, DeviceKind};
use sotto_core::team::TeamId;
use sotto_core::wire::WireObject;
use sotto_core::{EpochError, MessageError};
use zeroize::Zeroizing;

use super::Client;
use super::api::{b64, unb64, unhex};
use super::events::{Event, Warning};
use super::records::{self, ConvRecord, Queued, StoredMessage};
use super::team::TeamRef;
use crate::rng::os_rng;
use crate::store::{Expect, Query, Store, Transaction};
use crate::transport::{Method, Transport};
use crate::{Error, Result};

/// Envelopes fetched per request.
const ENVELOPE_PAGE: usize = 500;
/// Attempts at a version-checked transaction before giving up.
const CAS_ATTEMPTS: usize = 16;

/// A message of a conversation, as stored by this client.
#[derive(Clone, Debug)]
pub struct Message {
    /// Where the relay stored it (`None` while it waits in the outbox).
    pub cursor: Option<u64>,
    /// The sending device.
    pub sender: DeviceId,
    /// Whether this device sent it.
    pub mine: bool,
    /// The kind.
    pub kind: MessageKind,
    /// The content.
    pub body: Body,
    /// The epoch it was sent in.
    pub epoch: u32,
    /// Its counter on the sender's chain.
    pub counter: u32,
    /// When the relay stored it (for queued messages: when it was written).
    pub at: u64,
}

/// A message's content.
#[derive(Clone, PartialEq, Eq)]
pub enum Body {
    /// Text (invalid UTF-8 from a peer is replaced, never refused).
    Text(String),
    /// An encrypted file.
    Attachment(AttachmentInfo),
    /// Another kind's raw content (edit, delete, system).
    Other(Vec<u8>),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Content stays out of logs.
        match self {
            Body::Text(t) => write!(f, "Text({} bytes)", t.len()),
            Body::Attachment(a) => write!(f, "{a:?}"),
            Body::Other(b) => write!(f, "Other({} bytes)", b.len()),
        }
    }
}

/// An attachment: where its encrypted blob is, and the key to open it (inside the reference).
#[derive(Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    blob_id: [u8; 16],
    reference: AttachmentRef,
}

impl AttachmentInfo {
    /// The file name as the sender gave it (untrusted: sanitize before using it as a path).
    pub fn name(&self) -> &str {
        self.reference.name()
    }

    /// The media type as the sender gave it (untrusted).
    pub fn mime_type(&self) -> &str {
        self.reference.mime_type()
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.reference.size()
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let reference = self.reference.to_content();
        let mut out = Zeroizing::new(Vec::with_capacity(16 + reference.len()));
        out.extend_from_slice(&self.blob_id);
        out.extend_from_slice(&reference);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let blob_id = r.array()?;
        let reference = r.get()?;
        r.finish()?;
        Ok(AttachmentInfo { blob_id, reference })
    }
}

impl fmt::Debug for AttachmentInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentInfo")
            .field("blob_id", &hex::encode(self.blob_id))
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

/// What [`Client::send_text`] and [`Client::send_attachment`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The conversation.
    pub conversation: ConversationId,
    /// The epoch it was sealed in.
    pub epoch: u32,
    /// Its counter.
    pub counter: u32,
    /// Where the relay stored it; `None` if it is still queued (offline): it is retried by
    /// [`Client::flush_outbox`] and on reconnect, and announced by [`Event::Sent`].
    pub cursor: Option<u64>,
}

fn body_of(kind: MessageKind, content: &[u8]) -> Body {
    match kind {
        MessageKind::Text => Body::Text(String::from_utf8_lossy(content).into_owned()),
        MessageKind::Attachment => match AttachmentInfo::decode(content) {
            Ok(a) => Body::Attachment(a),
            Err(_) => Body::Other(content.to_vec()),
        },
        _ => Body::Other(content.to_vec()),
    }
}

pub(crate) fn to_message(me: &DeviceId, cursor: Option<u64>, m: &StoredMessage) -> Message {
    Message {
        cursor,
        sender: m.sender,
        mine: m.sender == *me,
        kind: m.kind,
        body: body_of(m.kind, &m.content),
        epoch: m.epoch,
        counter: m.counter,
        at: m.at,
    }
}

#[derive(Deserialize)]
struct StoredEpoch {
    epoch: u32,
    record: String,
}

#[derive(Deserialize)]
struct EpochPage {
    epochs: Vec<StoredEpoch>,
}

#[derive(Deserialize)]
pub(crate) struct StoredEnvelope {
    pub cursor: u64,
    pub message: String,
    #[serde(default)]
    pub received_at: u64,
}

#[derive(Deserialize)]
struct EnvelopePage {
    envelopes: Vec<StoredEnvelope>,
}

#[derive(Deserialize)]
struct ConversationInfo {
    conversation_id: String,
}

#[derive(Deserialize)]
struct ConversationList {
    conversations: Vec<ConversationInfo>,
}

#[derive(Deserialize)]
struct Uploaded {
    blob_id: String,
}

#[derive(Deserialize)]
struct BlobOut {
    data: String,
}

pub(crate) fn conv_path(conversation: &ConversationId, rest: &str) -> String {
    format!("/v1/conversations/{}{rest}", hex::encode(conversation.0))
}

/// What happened to one envelope.
enum Received {
    New(Box<Message>),
    Skipped,
}

impl<S: Store, T: Transport> Client<S, T> {
    /// Opens a new conversation with the team `team` as a visitor: verifies the team's chain
    /// from the fingerprint, checks that the relay serves a fresh attestation of its head, and
    /// posts the first epoch, sealed to the team's current key and to this device.
    pub async fn open_conversation(&self, team: TeamRef) -> Result<ConversationId> {
        let inner = &self.inner;
        if inner.device.kind() != DeviceKind::Visitor {
            return Err(Error::NotPermitted(
                "only visitor devices open conversations",
            ));
        }
        self.join_team(team).await?;
        let state = self.check_fresh_head(&team.team).await?;
        let mut rng = os_rng()?;
        let conversation = ConversationId::random(&mut rng);
        let (record, secret) = EpochRecord::open(
            &mut rng,
            &inner.device,
            &state,
            conversation,
            0,
            vec![inner.device.record()],
            self.now(),
        )?;
        self.call(
            Method::Post,
            "/v1/conversations",
            Some(json!({"record": b64(&record.to_wire())})),
        )
        .await?;
        let mut txn = Transaction::new();
        txn.put(
            records::conv_id(&conversation)?,
            &ConvRecord {
                team: team.team,
                visitor: true,
                cursor: 0,
                needs_epoch: false,
            }
            .encode(),
            Expect::Absent,
        );
        txn.put(
            records::epoch_id(&conversation, 0)?,
            &record.to_wire(),
            Expect::Absent,
        );
        inner.store.commit(txn).await?;
        self.remember_secret(conversation, 0, secret);
        Ok(conversation)
    }

    /// The conversations this client takes part in.
    pub async fn conversations(&self) -> Result<Vec<ConversationId>> {
        Ok(self
            .conversation_records()
            .await?
            .into_iter()
            .map(|(c, _)| c)
            .collect())
    }

    /// The team a conversation is with.
    pub async fn conversation_team(&self, conversation: &ConversationId) -> Result<TeamId> {
        Ok(self.conv_record(conversation).await?.0.team)
    }

    /// Sends text. The message is sealed and queued before the network is tried; see
    /// [`Outgoing::cursor`].
    pub async fn send_text(&self, conversation: &ConversationId, text: &str) -> Result<Outgoing> {
        self.send_durable(conversation, MessageKind::Text, text.as_bytes())
            .await
    }

    /// Encrypts a file, uploads the encrypted blob (this needs the relay), and sends a message
    /// that carries its reference and key.
    pub async fn send_attachment(
        &self,
        conversation: &ConversationId,
        name: &str,
        mime_type: &str,
        data: &[u8],
    ) -> Result<Outgoing> {
        self.conv_record(conversation).await?;
        let (blob, reference) = encrypt_attachment(&mut os_rng()?, data, name, mime_type)?;
        let uploaded: Uploaded = self
            .call_json(
                Method::Post,
                "/v1/blobs",
                Some(json!({
                    "kind": "attachment",
                    "conversation_id": hex::encode(conversation.0),
                    "data": b64(&blob),
                })),
            )
            .await?;
        let info = AttachmentInfo {
            blob_id: unhex(&uploaded.blob_id)?,
            reference,
        };
        self.send_durable(conversation, MessageKind::Attachment, &info.encode())
            .await
    }

    /// Downloads and decrypts an attachment, checking it against the hash in its reference.
    pub async fn fetch_attachment(
        &self,
        attachment: &AttachmentInfo,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let blob: BlobOut = self
            .call_json(
                Method::Get,
                &format!("/v1/blobs/{}", hex::encode(attachment.blob_id)),
                None,
            )
            .await?;
        let data = unb64(&blob.data)?;
        Ok(decrypt_attachment(&attachment.reference, &data)?)
    }

    /// Tells the other participants this device is (or stopped) typing. Ephemeral: not
    /// queued, not stored by the relay.
    pub async fn send_typing(&self, conversation: &ConversationId, typing: bool) -> Result<()> {
        self.send_ephemeral(conversation, MessageKind::Typing, &[u8::from(typing)])
            .await
    }

    /// Tells the other participants this device read everything up to `cursor`. Ephemeral.
    pub async fn send_read_receipt(
        &self,
        conversation: &ConversationId,
        cursor: u64,
    ) -> Result<()> {
        self.send_ephemeral(conversation, MessageKind::Receipt, &cursor.to_be_bytes())
            .await
    }

    /// Stored messages, oldest first: the last `limit` before `before` (a cursor; `None` for
    /// the newest). Messages still in the outbox are in [`Client::pending`].
    pub async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let mut query = Query::prefix(conversation.0.to_vec())
            .descending()
            .limit(limit);
        if let Some(before) = before {
            let mut key = conversation.0.to_vec();
            key.extend_from_slice(&before.to_be_bytes());
            query = query.after(key);
        }
        let me = self.inner.device.id();
        let mut out = Vec::new();
        for (id, entry) in self
            .inner
            .store
            .list(&records::ns(records::MESSAGE)?, &query)
            .await?
        {
            let cursor = records::cursor_of_key(id.key())?;
            let stored = StoredMessage::decode(&entry.value)?;
            out.push(to_message(&me, Some(cursor), &stored));
        }
        out.reverse();
        Ok(out)
    }

    /// This device's messages that wait for the relay, oldest first.
    pub async fn pending(&self, conversation: &ConversationId) -> Result<Vec<Message>> {
        let me = self.inner.device.id();
        let mut out = Vec::new();
        for (_, entry) in self
            .inner
            .store
            .list(
                &records::ns(records::OUTBOX)?,
                &Query::prefix(conversation.0.to_vec()),
            )
            .await?
        {
            let queued = Queued::decode(&entry.value)?;
            out.push(to_message(&me, None, &queued.message));
        }
        Ok(out)
    }

    /// Deletes a conversation at the relay (the visitor, or a team owner or admin) and here.
    pub async fn delete_conversation(&self, conversation: &ConversationId) -> Result<()> {
        self.conv_record(conversation).await?;
        match self
            .call(Method::Delete, &conv_path(conversation, ""), None)
            .await
        {
            Ok(_) => {}
            // Already gone at the relay (for example with its team): finish locally.
            Err(e) if e.relay_code() == Some("not_found") => {}
            Err(e) => return Err(e),
        }
        self.forget_conversation(conversation).await?;
        self.inner.events.emit(Event::ConversationDeleted {
            conversation: *conversation,
        });
        Ok(())
    }

    /// Fetches new epochs and the envelopes after the stored cursor, and processes them in
    /// cursor order.
    pub async fn sync_conversation(&self, conversation: &ConversationId) -> Result<()> {
        let _receiving = self.inner.receive.lock().await;
        match self.sync_conversation_locked(conversation).await {
            // Deleted at the relay (by another participant, or with its team) while this client
            // was away: its push notice was missed.
            Err(e) if e.relay_code() == Some("not_found") => {
                self.forget_conversation(conversation).await?;
                self.inner.events.emit(Event::ConversationDeleted {
                    conversation: *conversation,
                });
                Ok(())
            }
            other => other,
        }
    }

    pub(crate) async fn sync_conversation_locked(
        &self,
        conversation: &ConversationId,
    ) -> Result<()> {
        let (record, _) = self.conv_record(conversation).await?;
        self.fetch_epochs(conversation, &record).await?;
        let mut cursor = record.cursor;
        let start = cursor;
        loop {
            let page: EnvelopePage = self
                .call_json(
                    Method::Get,
                    &format!(
                        "{}?after={cursor}&limit={ENVELOPE_PAGE}",
                        conv_path(conversation, "/envelopes")
                    ),
                    None,
                )
                .await?;
            let count = page.envelopes.len();
            for envelope in page.envelopes {
                if envelope.cursor <= cursor {
                    return Err(Error::BadResponse("envelopes out of order"));
                }
                self.receive_envelope(conversation, &record, &envelope)
                    .await?;
                cursor = envelope.cursor;
            }
            self.advance_cursor(conversation, cursor).await?;
            if count < ENVELOPE_PAGE {
                break;
            }
        }
        if cursor > start {
            let ack = self
                .call(
                    Method::Put,
                    &conv_path(conversation, "/ack"),
                    Some(json!({ "cursor": cursor })),
                )
                .await;
            if let Err(e) = ack
                && e.is_transient()
            {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Learns the conversations of the teams where this device reads.
    pub(crate) async fn discover_conversations(&self) -> Result<()> {
        let me = self.inner.device.id();
        let teams: Vec<TeamId> = {
            let teams = self.inner.teams.lock().await;
            teams
                .iter()
                .filter(|(_, v)| {
                    !v.state.is_deleted()
                        && v.state.member_of(&me).is_some_and(|(_, r)| r.can_read())
                })
                .map(|(t, _)| *t)
                .collect()
        };
        for team in teams {
            let list: ConversationList = self
                .call_json(
                    Method::Get,
                    &format!(
                        "/v1/conversations?team_id={}&limit=1000",
                        hex::encode(team.0)
                    ),
                    None,
                )
                .await?;
            for info in list.conversations {
                let conversation = ConversationId(unhex(&info.conversation_id)?);
                self.adopt_conversation(conversation, team).await?;
            }
        }
        Ok(())
    }

    /// Starts following a conversation of one of this device's teams.
    pub(crate) async fn adopt_conversation(
        &self,
        conversation: ConversationId,
        team: TeamId,
    ) -> Result<()> {
        let id = records::conv_id(&conversation)?;
        if self.inner.store.get(&id).await?.is_some() {
            return Ok(());
        }
        let mut txn = Transaction::new();
        txn.put(
            id,
            &ConvRecord {
                team,
                visitor: false,
                cursor: 0,
                needs_epoch: false,
            }
            .encode(),
            Expect::Absent,
        );
        match self.inner.store.commit(txn).await {
            Ok(_) => {
                self.inner
                    .events
                    .emit(Event::ConversationStarted { conversation, team });
                Ok(())
            }
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn conversation_records(&self) -> Result<Vec<(ConversationId, ConvRecord)>> {
        let mut out = Vec::new();
        for (id, entry) in self
            .inner
            .store
            .list(&records::ns(records::CONV)?, &Query::default())
            .await?
        {
            let conversation = ConversationId(
                id.key()
                    .try_into()
                    .map_err(|_| Error::Corrupt("malformed conversation key"))?,
            );
            out.push((conversation, ConvRecord::decode(&entry.value)?));
        }
        Ok(out)
    }

    pub(crate) async fn conv_record(
        &self,
        conversation: &ConversationId,
    ) -> Result<(ConvRecord, crate::store::Version)> {
        let entry = self
            .inner
            .store
            .get(&records::conv_id(conversation)?)
            .await?
            .ok_or(Error::UnknownConversation)?;
        Ok((ConvRecord::decode(&entry.value)?, entry.version))
    }

    /// Deletes every local record of a conversation.
    pub(crate) async fn forget_conversation(&self, conversation: &ConversationId) -> Result<()> {
        let store = &self.inner.store;
        let mut txn = Transaction::new();
        txn.delete(records::conv_id(conversation)?, Expect::Any);
        for name in [
            records::EPOCH,
            records::SEND_CHAIN,
            records::RECV_CHAIN,
            records::MESSAGE,
            records::OUTBOX,
            records::MINE,
        ] {
            for (id, _) in store
                .list(&records::ns(name)?, &Query::prefix(conversation.0.to_vec()))
                .await?
            {
                txn.delete(id, Expect::Any);
            }
        }
        store.commit(txn).await?;
        if let Ok(mut secrets) = self.inner.secrets.lock() {
            secrets.retain(|(c, _), _| c != conversation);
        }
        Ok(())
    }

    pub(crate) async fn advance_cursor(
        &self,
        conversation: &ConversationId,
        cursor: u64,
    ) -> Result<()> {
        self.inner
            .store
            .update(&records::conv_id(conversation)?, |entry| {
                let Some(entry) = entry else {
                    // Deleted meanwhile: nothing to advance.
                    return Ok((crate::store::Update::Keep, ()));
                };
                let mut record = ConvRecord::decode(&entry.value)?;
                if record.cursor >= cursor {
                    return Ok((crate::store::Update::Keep, ()));
                }
                record.cursor = cursor;
                Ok((
                    crate::store::Update::Put(Zeroizing::new(record.encode())),
                    (),
                ))
            })
            .await
    }

    /// The stored epoch records of a conversation, in order.
    async fn epochs(&self, conversation: &ConversationId) -> Result<Vec<EpochRecord>> {
        let mut out = Vec::new();
        for (_, entry) in self
            .inner
            .store
            .list(
                &records::ns(records::EPOCH)?,
                &Query::prefix(conversation.0.to_vec()),
            )
            .await?
        {
            out.push(EpochRecord::from_wire(&entry.value)?);
        }
        Ok(out)
    }

    async fn epoch(
        &self,
        conversation: &ConversationId,
        epoch: u32,
    ) -> Result<Option<EpochRecord>> {
        match self
            .inner
            .store
            .get(&records::epoch_id(conversation, epoch)?)
            .await?
        {
            Some(e) => Ok(Some(EpochRecord::from_wire(&e.value)?)),
            None => Ok(None),
        }
    }

    /// Fetches, verifies and stores the epochs after the stored ones.
    pub(crate) async fn fetch_epochs(
        &self,
        conversation: &ConversationId,
        record: &ConvRecord,
    ) -> Result<()> {
        let mut known = self.epochs(conversation).await?;
        let from = known.len();
        let page: EpochPage = self
            .call_json(
                Method::Get,
                &format!(
                    "{}?from={from}&limit=1000",
                    conv_path(conversation, "/epochs")
                ),
                None,
            )
            .await?;
        let total = page.epochs.len();
        for (i, stored) in page.epochs.into_iter().enumerate() {
            let epoch = EpochRecord::from_wire(&unb64(&stored.record)?)?;
            if usize::try_from(stored.epoch).ok() != Some(known.len())
                || epoch.epoch != stored.epoch
                || epoch.conversation != *conversation
                || epoch.team != record.team
            {
                return Err(Error::BadResponse("epoch records out of sequence"));
            }
            let latest = i + 1 == total;
            self.verify_epoch(record, known.last(), &epoch, latest)
                .await?;
            let mut txn = Transaction::new();
            txn.put(
                records::epoch_id(conversation, epoch.epoch)?,
                &epoch.to_wire(),
                Expect::Any,
            );
            self.inner.store.commit(txn).await?;
            known.push(epoch);
        }
        Ok(())
    }

    /// Checks an epoch record against the verified chain: live rules for the newest one,
    /// history rules for older ones, fetching newer links once if the record names a head
    /// ahead of ours.
    async fn verify_epoch(
        &self,
        record: &ConvRecord,
        previous: Option<&EpochRecord>,
        epoch: &EpochRecord,
        latest: bool,
    ) -> Result<()> {
        let known = previous.map(|p| p.visitor_devices.as_slice());
        let mut synced = false;
        loop {
            let state = self.team_state(&record.team).await?;
            let freshness = if latest {
                Freshness::Live
            } else {
                Freshness::History
            };
            let result = match epoch.verify(&state, known, freshness) {
                // Sealed to an older generation: acceptable to read as history, never to send
                // on (sending opens a new epoch first).
                Err(sotto_core::Error::Epoch(EpochError::StaleGeneration)) if latest => {
                    epoch.verify(&state, known, Freshness::History)
                }
                other => other,
            };
            match result {
                Ok(warning) => {
                    if warning == Some(EpochWarning::Rollback) {
                        self.inner
                            .events
                            .emit(Event::Warning(Warning::Rollback { team: record.team }));
                    }
                    return Ok(());
                }
                Err(sotto_core::Error::Epoch(EpochError::ChainBehind)) if !synced => {
                    synced = true;
                    self.sync_team(&record.team).await?;
                }
                Err(e) => {
                    if e == sotto_core::Error::Epoch(EpochError::Fork) {
                        self.inner
                            .events
                            .emit(Event::Warning(Warning::Fork { team: record.team }));
                    }
                    return Err(e.into());
                }
            }
        }
    }

    fn remember_secret(&self, conversation: ConversationId, epoch: u32, secret: SecretBytes<32>) {
        if let Ok(mut secrets) = self.inner.secrets.lock() {
            secrets.insert((conversation, epoch), secret);
        }
    }

    /// The epoch secret: opened with this visitor device's key, or the team key it holds.
    async fn epoch_secret(
        &self,
        record: &ConvRecord,
        epoch: &EpochRecord,
    ) -> Result<SecretBytes<32>> {
        let key = (epoch.conversation, epoch.epoch);
        if let Some(s) = self
            .inner
            .secrets
            .lock()
            .ok()
            .and_then(|s| s.get(&key).cloned())
        {
            return Ok(s);
        }
        let secret = if record.visitor {
            epoch.secret_for_visitor(&self.inner.device)?
        } else {
            let teams = self.inner.teams.lock().await;
            let view = teams.get(&record.team).ok_or(Error::UnknownTeam)?;
            epoch.secret_for_member(&view.keyring)?
        };
        self.remember_secret(epoch.conversation, epoch.epoch, secret.clone());
        Ok(secret)
    }

    /// The epoch to send in: the newest, unless it is sealed to an older team key, expired by
    /// policy, or flagged after a restore; then a new one is opened and posted first.
    async fn send_epoch(&self, conversation: &ConversationId) -> Result<(ConvRecord, EpochRecord)> {
        for _ in 0..4 {
            let (record, _) = self.conv_record(conversation).await?;
            let mut epochs = self.epochs(conversation).await?;
            if epochs.is_empty() {
                self.fetch_epochs(conversation, &record).await?;
                epochs = self.epochs(conversation).await?;
            }
            let latest = epochs.pop().ok_or(Error::BadResponse("no epoch record"))?;
            let state = self.team_state(&record.team).await?;
            let counter = match self
                .inner
                .store
                .get(&records::send_chain_id(
                    conversation,
                    latest.epoch,
                    Stream::Durable,
                )?)
                .await?
            {
                Some(e) => SenderChain::import(&e.value)?.next_counter(),
                None => 0,
            };
            let current = state.current_key().map(|(g, _)| g);
            let fresh = !record.needs_epoch
                && current == Some(latest.generation)
                && !epoch_expired(state.policy(), latest.created_at, counter, self.now());
            if fresh {
                return Ok((record, latest));
            }
            let state = if record.visitor {
                self.check_fresh_head(&record.team).await?
            } else {
                self.sync_team(&record.team).await?;
                self.team_state(&record.team).await?
            };
            if state.current_key().map(|(g, _)| g) == Some(latest.generation)
                && !record.needs_epoch
                && !epoch_expired(state.policy(), latest.created_at, counter, self.now())
            {
                return Ok((record, latest));
            }
            let next = latest
                .epoch
                .checked_add(1)
                .ok_or(Error::NotPermitted("no epochs left"))?;
            let (epoch, secret) = EpochRecord::open(
                &mut os_rng()?,
                &self.inner.device,
                &state,
                *conversation,
                next,
                latest.visitor_devices.clone(),
                self.now(),
            )?;
            let posted = self
                .call(
                    Method::Post,
                    &conv_path(conversation, "/epochs"),
                    Some(json!({"record": b64(&epoch.to_wire())})),
                )
                .await;
            match posted {
                Ok(_) => {
                    let mut txn = Transaction::new();
                    txn.put(
                        records::epoch_id(conversation, next)?,
                        &epoch.to_wire(),
                        Expect::Absent,
                    );
                    if record.needs_epoch {
                        let cleared = ConvRecord {
                            needs_epoch: false,
                            ..record.clone()
                        };
                        txn.put(
                            records::conv_id(conversation)?,
                            &cleared.encode(),
                            Expect::Any,
                        );
                    }
                    self.inner.store.commit(txn).await?;
                    self.remember_secret(*conversation, next, secret);
                    let (record, _) = self.conv_record(conversation).await?;
                    return Ok((record, epoch));
                }
                // Another participant opened it first: take theirs and look again.
                Err(e) if e.relay_code() == Some("epoch_conflict") => {
                    self.fetch_epochs(conversation, &record).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Relay {
            status: 409,
            code: "epoch_conflict".into(),
        })
    }

    /// Seals a durable message and queues it, then tries to post the queue.
    async fn send_durable(
        &self,
        conversation: &ConversationId,
        kind: MessageKind,
        content: &[u8],
    ) -> Result<Outgoing> {
        let (record, epoch) = self.send_epoch(conversation).await?;
        let secret = self.epoch_secret(&record, &epoch).await?;
        let me = self.inner.device.id();
        let chain_id = records::send_chain_id(conversation, epoch.epoch, Stream::Durable)?;
        let mut sealed = None;
        for _ in 0..CAS_ATTEMPTS {
            let entry = self.inner.store.get(&chain_id).await?;
            let (mut chain, expect) = match &entry {
                Some(e) => (SenderChain::import(&e.value)?, Expect::Version(e.version)),
                None => (
                    SenderChain::new(
                        &secret,
                        ChainId {
                            conversation: *conversation,
                            epoch: epoch.epoch,
                            sender: me,
                            stream: Stream::Durable,
                        },
                    ),
                    Expect::Absent,
                ),
            };
            let counter = chain.next_counter();
            let wire = seal_message(&mut chain, &self.inner.device, kind, content)?;
            let queued = Queued {
                message: StoredMessage {
                    sender: me,
                    kind,
                    epoch: epoch.epoch,
                    counter,
                    at: self.now(),
                    content: Zeroizing::new(content.to_vec()),
                },
                wire,
            };
            let mut txn = Transaction::new();
            txn.put(chain_id.clone(), &chain.export(), expect);
            txn.put(
                records::outbox_id(conversation, epoch.epoch, counter)?,
                &queued.encode()?,
                Expect::Absent,
            );
            match self.inner.store.commit(txn).await {
                Ok(_) => {
                    sealed = Some(counter);
                    break;
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        let counter = sealed.ok_or(Error::Conflict {
            namespace: records::SEND_CHAIN.into(),
        })?;
        match self.flush_outbox().await {
            Ok(_) => {}
            Err(e) if e.is_transient() => {}
            Err(e) => return Err(e),
        }
        let cursor = self
            .inner
            .store
            .get(&records::mine_id(conversation, epoch.epoch, counter)?)
            .await?
            .map(|e| records::decode_cursor(&e.value))
            .transpose()?;
        Ok(Outgoing {
            conversation: *conversation,
            epoch: epoch.epoch,
            counter,
            cursor,
        })
    }

    /// Seals a typing indicator or receipt on the ephemeral chain and posts it (not queued).
    async fn send_ephemeral(
        &self,
        conversation: &ConversationId,
        kind: MessageKind,
        content: &[u8],
    ) -> Result<()> {
        // The same epoch choice as durable messages: after a restore the ephemeral chain of
        // the old epoch is gone too, and must not restart at counter 0.
        let (record, epoch) = self.send_epoch(conversation).await?;
        let secret = self.epoch_secret(&record, &epoch).await?;
        let chain_id = records::send_chain_id(conversation, epoch.epoch, Stream::Ephemeral)?;
        let wire = self
            .inner
            .store
            .update(&chain_id, |entry| {
                let mut chain = match entry {
                    Some(e) => SenderChain::import(&e.value)?,
                    None => SenderChain::new(
                        &secret,
                        ChainId {
                            conversation: *conversation,
                            epoch: epoch.epoch,
                            sender: self.inner.device.id(),
                            stream: Stream::Ephemeral,
                        },
                    ),
                };
                let wire = seal_message(&mut chain, &self.inner.device, kind, content)?;
                Ok((crate::store::Update::Put(chain.export()), wire))
            })
            .await?;
        self.call(
            Method::Post,
            &conv_path(conversation, "/envelopes"),
            Some(json!({"message": b64(&wire)})),
        )
        .await?;
        Ok(())
    }

    /// Processes one stored envelope: an own message is matched with the outbox, another
    /// device's is verified, decrypted and stored once. Problems with the message become
    /// warnings (the cursor moves on); store and network failures are errors.
    pub(crate) async fn receive_envelope(
        &self,
        conversation: &ConversationId,
        record: &ConvRecord,
        envelope: &StoredEnvelope,
    ) -> Result<()> {
        let warn = |code: &'static str| {
            self.inner
                .events
                .emit(Event::Warning(Warning::Undecryptable {
                    conversation: *conversation,
                    cursor: envelope.cursor,
                    code,
                }));
        };
        let Ok(wire) = unb64(&envelope.message) else {
            warn("invalid_base64");
            return Ok(());
        };
        match self
            .open_message(
                conversation,
                record,
                &wire,
                Some(envelope.cursor),
                envelope.received_at,
            )
            .await
        {
            Ok(Received::New(message)) => {
                self.inner.events.emit(Event::Message {
                    conversation: *conversation,
                    message: *message,
                });
                Ok(())
            }
            Ok(Received::Skipped) => Ok(()),
            Err(e @ (Error::Transport(_) | Error::Relay { .. })) if e.is_transient() => Err(e),
            Err(e @ (Error::Backend(_) | Error::Conflict { .. })) => Err(e),
            Err(e) => {
                warn(e.code());
                Ok(())
            }
        }
    }

    /// Processes an ephemeral message from the push stream.
    pub(crate) async fn receive_ephemeral(
        &self,
        conversation: &ConversationId,
        wire: &[u8],
    ) -> Result<()> {
        let (record, _) = self.conv_record(conversation).await?;
        let Ok(Received::New(message)) = self
            .open_message(conversation, &record, wire, None, self.now())
            .await
        else {
            return Ok(());
        };
        let event = match (&message.kind, &message.body) {
            (MessageKind::Typing, Body::Other(b)) => Event::Typing {
                conversation: *conversation,
                sender: message.sender,
                typing: b.first().is_some_and(|b| *b != 0),
            },
            (MessageKind::Receipt, Body::Other(b)) => match <[u8; 8]>::try_from(b.as_slice()) {
                Ok(c) => Event::Receipt {
                    conversation: *conversation,
                    sender: message.sender,
                    read_up_to: u64::from_be_bytes(c),
                },
                Err(_) => return Ok(()),
            },
            _ => return Ok(()),
        };
        self.inner.events.emit(event);
        Ok(())
    }

    async fn open_message(
        &self,
        conversation: &ConversationId,
        record: &ConvRecord,
        wire: &[u8],
        cursor: Option<u64>,
        at: u64,
    ) -> Result<Received> {
        let parsed = ParsedMessage::decode(wire)?;
        let header = *parsed.header();
        if header.conversation != *conversation || header.kind.is_ephemeral() == cursor.is_some() {
            return Err(Error::Core(MessageError::WrongChain.into()));
        }
        let me = self.inner.device.id();
        if header.sender == me
            && let Some(cursor) = cursor
            && self
                .reconcile_own(conversation, header.epoch, header.counter, cursor)
                .await?
        {
            return Ok(Received::Skipped);
        }
        let epoch = match self.epoch(conversation, header.epoch).await? {
            Some(e) => e,
            None => {
                self.fetch_epochs(conversation, record).await?;
                self.epoch(conversation, header.epoch)
                    .await?
                    .ok_or(Error::Core(EpochError::NoKey.into()))?
            }
        };
        let state = self.team_state(&record.team).await?;
        let key = sender_key(&state, &epoch, &header.sender, header.kind)?;
        let verified = parsed.verify(&key)?;
        let secret = self.epoch_secret(record, &epoch).await?;
        let chain_id =
            records::recv_chain_id(conversation, header.epoch, &header.sender, header.stream())?;
        for _ in 0..CAS_ATTEMPTS {
            let entry = self.inner.store.get(&chain_id).await?;
            let (mut chain, expect) = match &entry {
                Some(e) => (ReceiverChain::import(&e.value)?, Expect::Version(e.version)),
                None => (ReceiverChain::new(&secret, header.chain()), Expect::Absent),
            };
            let opened = match verified.decrypt(&mut chain) {
                Ok(o) => o,
                Err(sotto_core::Error::Message(MessageError::Duplicate)) => {
                    return Ok(Received::Skipped);
                }
                Err(e) => return Err(e.into()),
            };
            let stored = StoredMessage {
                sender: header.sender,
                kind: header.kind,
                epoch: header.epoch,
                counter: header.counter,
                at,
                content: Zeroizing::new(opened.content().to_vec()),
            };
            let mut txn = Transaction::new();
            txn.put(chain_id.clone(), &chain.export(), expect);
            if let Some(cursor) = cursor {
                txn.put(
                    records::message_id(conversation, cursor)?,
                    &stored.encode()?,
                    Expect::Absent,
                );
            }
            match self.inner.store.commit(txn).await {
                Ok(_) => {
                    let missing = opened.gap().skipped_count();
                    if missing > 0 {
                        self.inner.events.emit(Event::Warning(Warning::Gap {
                            conversation: *conversation,
                            sender: header.sender,
                            missing,
                        }));
                    }
                    return Ok(Received::New(Box::new(to_message(&me, cursor, &stored))));
                }
                Err(e) if e.is_conflict() => {
                    // Someone stored this cursor or moved the chain first: look again (a
                    // second decryption of the same message is refused as a duplicate).
                    if let Some(cursor) = cursor
                        && self
                            .inner
                            .store
                            .get(&records::message_id(conversation, cursor)?)
                            .await?
                            .is_some()
                    {
                        return Ok(Received::Skipped);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict {
            namespace: records::RECV_CHAIN.into(),
        })
    }

    /// Matches a stored own message with the outbox: true if it is known (moved to history
    /// now, or earlier), false if this client has no trace of it (then it is opened like any
    /// other, for example after restoring an older backup).
    pub(crate) async fn reconcile_own(
        &self,
        conversation: &ConversationId,
        epoch: u32,
        counter: u32,
        cursor: u64,
    ) -> Result<bool> {
        let store = &self.inner.store;
        let mine = records::mine_id(conversation, epoch, counter)?;
        for _ in 0..CAS_ATTEMPTS {
            if store.get(&mine).await?.is_some() {
                return Ok(true);
            }
            let outbox = records::outbox_id(conversation, epoch, counter)?;
            let Some(entry) = store.get(&outbox).await? else {
                return Ok(false);
            };
            let queued = Queued::decode(&entry.value)?;
            match self
                .record_sent(conversation, &outbox, entry.version, &mine, cursor, &queued)
                .await
            {
                Ok(()) => return Ok(true),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict {
            namespace: records::OUTBOX.into(),
        })
    }

    /// Moves a queued message to the history at the cursor the relay gave it.
    pub(crate) async fn record_sent(
        &self,
        conversation: &ConversationId,
        outbox: &crate::store::RecordId,
        version: crate::store::Version,
        mine: &crate::store::RecordId,
        cursor: u64,
        queued: &Queued,
    ) -> Result<()> {
        let mut txn = Transaction::new();
        txn.delete(outbox.clone(), Expect::Version(version));
        txn.put(
            mine.clone(),
            &records::encode_cursor(cursor),
            Expect::Absent,
        );
        txn.put(
            records::message_id(conversation, cursor)?,
            &queued.message.encode()?,
            Expect::Absent,
        );
        self.inner.store.commit(txn).await?;
        self.inner.events.emit(Event::Sent {
            conversation: *conversation,
            cursor,
        });
        Ok(())
    }
}
