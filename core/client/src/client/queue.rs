//! The outbox: sealed durable messages waiting for the relay to store them.
//!
//! Sending writes the sealed message here in the same transaction that advances the sender
//! chain, so a message is never lost between sealing and posting, whatever fails. The outbox
//! is posted in key order (conversation, epoch, counter), which is the order of each chain, by
//! one flusher at a time. A post whose answer was lost leaves the message queued and it is
//! posted again; the copy stored first is recognised when it comes back in a listing, and
//! receivers refuse the second copy as a duplicate, so each message shows exactly once.

use serde::Deserialize;
use sotto_core::conversation::ConversationId;

use super::Client;
use super::api::b64;
use super::bodies;
use super::conversation::conv_path;
use super::events::{Event, Warning};
use super::records::{self, Queued};
use crate::store::{Expect, Query, Store, Transaction};
use crate::transport::{Method, Transport};
use crate::{Error, Result};

/// How many times one flush seals messages of closed epochs again before it leaves them queued.
const RESEAL_ROUNDS: usize = 3;

#[derive(Deserialize)]
struct Posted {
    #[serde(default)]
    cursor: Option<u64>,
}

impl<S: Store, T: Transport> Client<S, T> {
    /// Posts every queued message, oldest first. Stops at the first failure that may pass
    /// (offline, rate limit, relay fault) and returns it, leaving the rest queued; a message
    /// the relay refuses for good is dropped with a [`Warning::SendFailed`]. Returns how many
    /// messages the relay stored.
    pub async fn flush_outbox(&self) -> Result<usize> {
        let _flushing = self.inner.flush.lock().await;
        let mut stored = 0;
        // A message sealed in an epoch another participant closed meanwhile is sealed again in
        // the newest one and posted in a further round.
        for _ in 0..RESEAL_ROUNDS {
            let (posted, resealed) = self.flush_round().await?;
            stored += posted;
            if !resealed {
                break;
            }
        }
        Ok(stored)
    }

    /// Posts the queue once: how many the relay stored, and whether any was sealed again.
    async fn flush_round(&self) -> Result<(usize, bool)> {
        let store = &self.inner.store;
        let queued = store
            .list(&records::ns(records::OUTBOX)?, &Query::default())
            .await?;
        let mut stored = 0;
        let mut resealed = false;
        for (id, entry) in queued {
            let key = id.key();
            let (Some(conv), Some(epoch), Some(counter)) = (
                key.get(..16).and_then(|k| <[u8; 16]>::try_from(k).ok()),
                key.get(16..20).and_then(|k| <[u8; 4]>::try_from(k).ok()),
                key.get(20..24).and_then(|k| <[u8; 4]>::try_from(k).ok()),
            ) else {
                return Err(Error::Corrupt("malformed outbox key"));
            };
            let conversation = ConversationId(conv);
            let (epoch, counter) = (u32::from_be_bytes(epoch), u32::from_be_bytes(counter));
            let message = Queued::decode(&entry.value)?;
            let posted = self
                .call_json::<Posted>(
                    Method::Post,
                    &conv_path(&conversation, "/envelopes"),
                    Some(bodies::encode(&bodies::Message {
                        message: &b64(&message.wire),
                    })?),
                )
                .await;
            match posted {
                Ok(Posted {
                    cursor: Some(cursor),
                }) => {
                    let mine = records::mine_id(&conversation, epoch, counter)?;
                    match self
                        .record_sent(&conversation, &id, entry.version, &mine, cursor, &message)
                        .await
                    {
                        // A sync recorded it first (the same or an earlier copy).
                        Err(e) if e.is_conflict() => {}
                        other => other?,
                    }
                    stored += 1;
                }
                Ok(Posted { cursor: None }) => {
                    return Err(Error::BadResponse("a durable message was not stored"));
                }
                Err(e) if e.is_transient() || e.relay_code() == Some("unauthorized") => {
                    return Err(e);
                }
                // Its epoch was closed by a newer one (PROTOCOL §10.2): the close the newer
                // record states does not count it, so it is sealed again there. The new copy is
                // queued before the old one goes, so a failure loses nothing.
                Err(e) if e.relay_code() == Some("epoch_closed") => {
                    self.sync_conversation(&conversation).await?;
                    self.seal_and_queue(
                        &conversation,
                        message.message.kind,
                        &message.message.content,
                    )
                    .await?;
                    let mut txn = Transaction::new();
                    txn.delete(id.clone(), Expect::Version(entry.version));
                    match store.commit(txn).await {
                        Err(c) if c.is_conflict() => {}
                        other => {
                            other?;
                        }
                    }
                    resealed = true;
                }
                Err(e) => {
                    let mut txn = Transaction::new();
                    txn.delete(id.clone(), Expect::Version(entry.version));
                    match store.commit(txn).await {
                        Err(c) if c.is_conflict() => {}
                        other => {
                            other?;
                        }
                    }
                    self.inner.events.emit(Event::Warning(Warning::SendFailed {
                        conversation,
                        code: e.code(),
                    }));
                }
            }
        }
        Ok((stored, resealed))
    }

    /// How many messages wait in the outbox, over all conversations.
    pub async fn outbox_len(&self) -> Result<usize> {
        Ok(self
            .inner
            .store
            .list(&records::ns(records::OUTBOX)?, &Query::default())
            .await?
            .len())
    }
}
