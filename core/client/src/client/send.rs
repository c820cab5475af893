//! Sending: sealing on this device's sender chains. A durable message is sealed and queued in
//! one store transaction that checks the chain's version, so two concurrent sends never take
//! the same counter (which would reuse a message key); ephemeral ones are posted directly.

use sotto_core::conversation::identity::IdentityAssertion;
use sotto_core::conversation::{
    ChainId, ConversationId, MessageContext, MessageKind, SenderChain, Stream, seal_message,
};
use sotto_core::wire::WireObject;
use zeroize::Zeroizing;

use super::Client;
use super::api::b64;
use super::bodies;
use super::conversation::{CAS_ATTEMPTS, Outgoing, conv_path};
use super::records::{self, Queued, StoredMessage};
use crate::store::{Expect, Store, Transaction};
use crate::transport::{Method, Transport};
use crate::{Error, Result};

impl<S: Store, T: Transport> Client<S, T> {
    /// Seals a durable message and queues it, then tries to post the queue.
    pub(crate) async fn send_durable(
        &self,
        conversation: &ConversationId,
        kind: MessageKind,
        content: &[u8],
    ) -> Result<Outgoing> {
        let (epoch, counter) = self.seal_and_queue(conversation, kind, content).await?;
        match self.flush_outbox().await {
            Ok(_) => {}
            Err(e) if e.is_transient() => {}
            Err(e) => return Err(e),
        }
        let cursor = self
            .inner
            .store
            .get(&records::mine_id(conversation, epoch, counter)?)
            .await?
            .map(|e| records::decode_cursor(&e.value))
            .transpose()?;
        Ok(Outgoing {
            conversation: *conversation,
            epoch,
            counter,
            cursor,
        })
    }

    /// Seals a durable message in the epoch to send in and queues it, in one transaction with
    /// its sender chain: its epoch and counter.
    pub(crate) async fn seal_and_queue(
        &self,
        conversation: &ConversationId,
        kind: MessageKind,
        content: &[u8],
    ) -> Result<(u32, u32)> {
        let (record, epoch) = self.send_epoch(conversation).await?;
        let secret = self.epoch_secret(&record, &epoch).await?;
        let me = self.inner.device.id();
        let instance = self.inner.instance;
        let context = MessageContext::of(&epoch);
        let chain_id =
            records::send_chain_id(conversation, epoch.epoch, &instance, Stream::Durable)?;
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
                            instance,
                            stream: Stream::Durable,
                        },
                    ),
                    Expect::Absent,
                ),
            };
            let counter = chain.next_counter();
            let wire = seal_message(&mut chain, &self.inner.device, kind, content, &context)?;
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
        Ok((epoch.epoch, counter))
    }

    /// Seals a typing indicator or receipt on the ephemeral chain and posts it (not queued).
    pub(crate) async fn send_ephemeral(
        &self,
        conversation: &ConversationId,
        kind: MessageKind,
        content: &[u8],
    ) -> Result<()> {
        // A device that cannot read the newest epoch (a reader added since, without history)
        // would open the next one without stating where this one ended, and so let late
        // messages in it through: a typing indicator or receipt is not worth that. It sends
        // them once an epoch it reads is open.
        if let Some(latest) = self.epochs(conversation).await?.pop() {
            let (record, _) = self.conv_record(conversation).await?;
            if !self.can_read_epoch(&record, &latest).await {
                return Ok(());
            }
        }
        // The same epoch choice as durable messages: after a restore the ephemeral chain of
        // the old epoch is gone too, and must not restart at counter 0.
        let (record, epoch) = self.send_epoch(conversation).await?;
        let secret = self.epoch_secret(&record, &epoch).await?;
        let instance = self.inner.instance;
        let context = MessageContext::of(&epoch);
        let chain_id =
            records::send_chain_id(conversation, epoch.epoch, &instance, Stream::Ephemeral)?;
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
                            instance,
                            stream: Stream::Ephemeral,
                        },
                    ),
                };
                let wire = seal_message(&mut chain, &self.inner.device, kind, content, &context)?;
                Ok((crate::store::Update::Put(chain.export()), wire))
            })
            .await?;
        self.call(
            Method::Post,
            &conv_path(conversation, "/envelopes"),
            Some(bodies::encode(&bodies::Message {
                message: &b64(&wire),
            })?),
        )
        .await?;
        Ok(())
    }

    /// Presents an identity assertion (`IdentityAssertion` wire bytes, signed by the company's
    /// backend with an integration key of the team) in the conversation, as an identity message
    /// (kind 8, which only visitor devices send). Members check it against their verified chain
    /// and report
    /// [`Event::IdentityVerified`](super::Event::IdentityVerified) or
    /// [`Warning::UnverifiedIdentity`](super::Warning::UnverifiedIdentity).
    pub async fn present_identity(
        &self,
        conversation: &ConversationId,
        assertion: &[u8],
    ) -> Result<Outgoing> {
        IdentityAssertion::from_wire(assertion)?;
        self.send_durable(conversation, MessageKind::Identity, assertion)
            .await
    }
}
