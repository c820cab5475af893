//! Receiving: syncing a conversation from its stored cursor, and verifying, decrypting and
//! storing each message once. A received message is stored in one transaction that checks the
//! receiver chain's version and that its cursor is new, so a message delivered twice (push and
//! HTTP, or a retried post) is stored once; own messages are matched with the outbox.

use serde::Deserialize;
use sotto_core::MessageError;
use sotto_core::conversation::identity::IdentityAssertion;
use sotto_core::conversation::{
    Admission, ConversationId, MAX_INSTANCES_PER_SENDER, MessageContext, MessageKind,
    ParsedMessage, ReceiverChain, admit_message, sender_key,
};
use sotto_core::device::DeviceId;
use sotto_core::team::TeamId;
use sotto_core::wire::WireObject;
use zeroize::Zeroizing;

use super::Client;
use super::api::{unb64, unhex};
use super::bodies;
use super::conversation::{Body, CAS_ATTEMPTS, ChainPosition, Message, conv_path, to_message};
use super::events::{Event, Warning};
use super::records::{self, ConvRecord, Queued, StoredMessage};
use crate::store::{Expect, Query, Store, Transaction};
use crate::transport::{Method, Transport};
use crate::{Error, Result};

/// Envelopes fetched per request.
const ENVELOPE_PAGE: usize = 500;

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

/// What happened to one envelope.
pub(crate) enum Received {
    New(Box<Message>),
    Skipped,
}

impl<S: Store, T: Transport> Client<S, T> {
    /// Fetches new epochs and the envelopes after the stored cursor, and processes them in
    /// cursor order.
    pub async fn sync_conversation(&self, conversation: &ConversationId) -> Result<()> {
        let synced = {
            let _receiving = self.inner.receive.lock().await;
            self.sync_conversation_locked(conversation).await
        };
        match synced {
            // Gone at the relay (deleted by another participant while this client was away, or
            // dropped by the relay): erased only for a signed deletion that verifies.
            Err(e) if super::deletion::is_gone(&e) => self.conversation_gone(conversation).await,
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
        self.release_held(conversation, &record).await?;
        self.check_closes(conversation, &record).await?;
        if cursor > start {
            let ack = self
                .call(
                    Method::Put,
                    &conv_path(conversation, "/ack"),
                    Some(bodies::encode(&bodies::Ack { cursor })?),
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
                if let Body::Other(assertion) = &message.body
                    && message.kind == MessageKind::Identity
                {
                    self.check_identity(conversation, record, &message.sender, assertion)
                        .await?;
                }
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

    /// Checks an identity assertion a participant presented for its own device.
    pub(crate) async fn check_identity(
        &self,
        conversation: &ConversationId,
        record: &ConvRecord,
        sender: &DeviceId,
        assertion: &[u8],
    ) -> Result<()> {
        let state = self.team_state(&record.team).await?;
        let verified = IdentityAssertion::from_wire(assertion).ok().and_then(|a| {
            match a.check(&state, sender, self.now()) {
                Ok(Ok(())) => Some(a.customer_id),
                _ => None,
            }
        });
        self.inner.events.emit(match verified {
            Some(customer_id) => Event::IdentityVerified {
                conversation: *conversation,
                device: *sender,
                customer_id,
            },
            None => Event::Warning(Warning::UnverifiedIdentity {
                conversation: *conversation,
                device: *sender,
            }),
        });
        Ok(())
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
        // Only this installation's own messages are in its outbox; another installation of the
        // same device (a restore) sends on its own chains, opened like anyone else's.
        if header.sender == me
            && header.instance == self.inner.instance
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
                match self.epoch(conversation, header.epoch).await? {
                    Some(e) => e,
                    None => {
                        return self
                            .hold_or_refuse(conversation, record, &header, wire, cursor, at)
                            .await;
                    }
                }
            }
        };
        let state = self.team_state(&record.team).await?;
        let key = sender_key(&state, &epoch, &header.sender, header.kind)?;
        let verified = parsed.verify(&key, &MessageContext::of(&epoch))?;
        let former = state.device(&header.sender).is_none()
            && !epoch
                .visitor_devices
                .iter()
                .any(|d| d.id() == header.sender);
        // Typing and receipts of a member removed since are not shown: nothing after its
        // removal speaks for it.
        if former && cursor.is_none() {
            return Ok(Received::Skipped);
        }
        if let Some(cursor) = cursor {
            let closing = self.closing_record(&epoch).await?;
            match admit_message(
                closing.as_ref(),
                &header.sender,
                &header.instance,
                header.counter,
                former,
            ) {
                Admission::Accept => {}
                Admission::Hold => {
                    self.hold_message(conversation, header.epoch, cursor, at, wire)
                        .await?;
                    return Ok(Received::Skipped);
                }
                Admission::AfterClose => {
                    return Err(Error::Core(MessageError::AfterClose.into()));
                }
            }
        }
        if !record.visitor && self.sealed_before_my_access(record, &epoch).await {
            return Ok(Received::Skipped);
        }
        let secret = self.epoch_secret(record, &epoch).await?;
        let chain_id = records::recv_chain_id(
            conversation,
            header.epoch,
            &header.sender,
            &header.instance,
            header.stream(),
        )?;
        for _ in 0..CAS_ATTEMPTS {
            let entry = self.inner.store.get(&chain_id).await?;
            let (mut chain, expect) = match &entry {
                Some(e) => (ReceiverChain::import(&e.value)?, Expect::Version(e.version)),
                None => {
                    self.check_instance_bound(conversation, &header).await?;
                    (ReceiverChain::new(&secret, header.chain()), Expect::Absent)
                }
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
                    // Typing and receipts are never stored by the relay: a client that was
                    // offline misses some by design, so only the durable stream has gaps.
                    if missing > 0 && cursor.is_some() {
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

    /// Every durable sender chain this client holds in `conversation`, per epoch and
    /// (sender device, instance), with its `next` counter: the chains it received from, and
    /// this installation's own. Ordered by epoch, sender, instance.
    pub async fn chain_positions(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<ChainPosition>> {
        let mut out = Vec::new();
        for (namespace, own) in [(records::RECV_CHAIN, false), (records::SEND_CHAIN, true)] {
            let entries = self
                .inner
                .store
                .list(
                    &records::ns(namespace)?,
                    &Query::prefix(conversation.0.to_vec()),
                )
                .await?;
            for (_, entry) in entries {
                let imported = if own {
                    sotto_core::conversation::SenderChain::import(&entry.value)
                        .map(|c| (*c.id(), c.next_counter()))
                } else {
                    ReceiverChain::import(&entry.value).map(|c| (*c.id(), c.next_counter()))
                };
                let (id, next) = match imported {
                    Ok(found) => found,
                    // A chain state from before instances (format 1) is never used again.
                    Err(sotto_core::Error::Decode(sotto_core::DecodeError::UnknownVersion(1))) => {
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                if id.stream != sotto_core::conversation::Stream::Durable
                    || id.conversation != *conversation
                {
                    continue;
                }
                let position = ChainPosition {
                    epoch: id.epoch,
                    sender: id.sender,
                    instance: id.instance,
                    next,
                    own,
                };
                // Kept ordered as it grows: one more sort instantiation costs the browser
                // package kilobytes.
                let key = |p: &ChainPosition| (p.epoch, p.sender, p.instance, p.own);
                let at = out
                    .binary_search_by(|p| key(p).cmp(&key(&position)))
                    .unwrap_or_else(|i| i);
                out.insert(at, position);
            }
        }
        Ok(out)
    }

    /// Refuses a chain of a new instance of a sender that already has
    /// [`MAX_INSTANCES_PER_SENDER`] instances in the epoch, so a hostile sender cannot make
    /// this client store unboundedly many chains.
    async fn check_instance_bound(
        &self,
        conversation: &ConversationId,
        header: &sotto_core::conversation::MessageHeader,
    ) -> Result<()> {
        let prefix = records::recv_chain_prefix(conversation, header.epoch, &header.sender);
        let chains = self
            .inner
            .store
            .list(
                &records::ns(records::RECV_CHAIN)?,
                &Query::prefix(prefix.clone()),
            )
            .await?;
        // Distinct instances, counted without a sort (each sort instantiation costs the browser
        // package kilobytes); there are at most a few.
        let mut instances: Vec<&[u8]> = Vec::new();
        for (id, _) in &chains {
            if let Some(i) = id.key().get(prefix.len()..prefix.len() + 8)
                && i != header.instance.0.as_slice()
                && !instances.contains(&i)
            {
                instances.push(i);
            }
        }
        if instances.len() >= MAX_INSTANCES_PER_SENDER {
            return Err(Error::Core(MessageError::TooManyInstances.into()));
        }
        Ok(())
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
