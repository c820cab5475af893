//! Conversations: opening one as a visitor, the public send calls, history, deletion, and the
//! types applications see ([`Message`], [`Body`], [`AttachmentInfo`], [`Outgoing`]). Epochs,
//! sealing and receiving live in the sibling modules `epochs`, `send` and `receive`.

use core::fmt;

use serde::Deserialize;
use sotto_core::codec::Reader;
use sotto_core::conversation::attachment::{decrypt_attachment, encrypt_attachment};
use sotto_core::conversation::{AttachmentRef, ConversationId, EpochRecord, MessageKind};
use sotto_core::device::{DeviceId, DeviceKind};
use sotto_core::team::TeamId;
use sotto_core::wire::WireObject;
use zeroize::Zeroizing;

use super::Client;
use super::api::{b64, unb64, unhex};
use super::bodies;
use super::records::{self, ConvRecord, Queued, StoredMessage};
use super::team::TeamRef;
use crate::rng::os_rng;
use crate::store::{Expect, Query, Store, Transaction};
use crate::transport::{Method, Transport};
use crate::{Error, Result};

/// Attempts at a version-checked transaction before giving up.
pub(crate) const CAS_ATTEMPTS: usize = 16;

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

/// How far one durable sender chain got, as this client holds it: a chain of another device
/// (or another installation of this one) it received from, or this installation's own.
/// [`Client::chain_positions`] lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainPosition {
    /// The epoch.
    pub epoch: u32,
    /// The sending device.
    pub sender: DeviceId,
    /// The installation of the sending device.
    pub instance: sotto_core::conversation::Instance,
    /// The lowest counter not reached yet: for a receiver chain, one more than the highest
    /// counter received; for this installation's own chain, the next counter it will use.
    pub next: u32,
    /// Whether this is this installation's own sender chain.
    pub own: bool,
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
            None,
            vec![inner.device.record()],
            self.now(),
        )?;
        self.call(
            Method::Post,
            "/v1/conversations",
            Some(bodies::encode(&bodies::Record {
                record: &b64(&record.to_wire()),
            })?),
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
                Some(bodies::encode(&bodies::Blob {
                    kind: "attachment",
                    conversation_id: Some(&hex::encode(conversation.0)),
                    readers: None,
                    data: &b64(&blob),
                })?),
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
            records::EPOCH_HELD,
            records::SEND_CHAIN,
            records::RECV_CHAIN,
            records::MESSAGE,
            records::HELD_MESSAGE,
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
}
