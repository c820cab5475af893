//! Epochs: fetching and verifying a conversation's epoch records, opening their secrets, and
//! choosing (or opening) the epoch to send in.

use sotto_core::conversation::epoch::epoch_expired;
use sotto_core::conversation::{ConversationId, EpochRecord, SenderChain, SenderClose, Stream};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::wire::WireObject;

use super::Client;
use super::api::b64;
use super::bodies;
use super::conversation::conv_path;
use super::records::{self, ConvRecord};
use crate::rng::os_rng;
use crate::store::{Expect, Query, Store, Transaction};
use crate::transport::{Method, Transport};
use crate::{Error, Result};

impl<S: Store, T: Transport> Client<S, T> {
    /// The stored epoch records of a conversation, in order.
    pub(crate) async fn epochs(&self, conversation: &ConversationId) -> Result<Vec<EpochRecord>> {
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

    pub(crate) async fn epoch(
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

    pub(crate) fn remember_secret(
        &self,
        conversation: ConversationId,
        epoch: u32,
        secret: SecretBytes<32>,
    ) {
        if let Ok(mut secrets) = self.inner.secrets.lock() {
            secrets.insert((conversation, epoch), secret);
        }
    }

    /// Whether an epoch was sealed to a generation from before this member device could read
    /// history: its role reads no history and the generation is older than every one it was
    /// sent. Such messages are unreadable by design (a viewer added later), not a fault, so
    /// they are skipped without a warning; a history reader missing a key still warns.
    pub(crate) async fn sealed_before_my_access(
        &self,
        record: &ConvRecord,
        epoch: &EpochRecord,
    ) -> bool {
        let teams = self.inner.teams.lock().await;
        let Some(view) = teams.get(&record.team) else {
            return false;
        };
        let no_history = view
            .state
            .member_of(&self.inner.device.id())
            .is_some_and(|(_, role)| !role.can_read_history(view.state.policy()));
        let first_held = view.keyring.generations().next();
        no_history && first_held.is_some_and(|first| epoch.generation < first)
    }

    /// The epoch secret: opened with this visitor device's key, or the team key it holds.
    pub(crate) async fn epoch_secret(
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

    /// Whether this device reads `epoch`: it holds the key its secret is sealed to, and (a member
    /// reading no history) the epoch is not from before its access.
    pub(crate) async fn can_read_epoch(&self, record: &ConvRecord, epoch: &EpochRecord) -> bool {
        (record.visitor || !self.sealed_before_my_access(record, epoch).await)
            && self.epoch_secret(record, epoch).await.is_ok()
    }

    /// How far each durable sender chain of `epoch` got, as this device knows it: the close a
    /// new record states. `None` if this device cannot read `epoch`.
    async fn epoch_closes(
        &self,
        record: &ConvRecord,
        epoch: &EpochRecord,
    ) -> Result<Option<Vec<SenderClose>>> {
        if !self.can_read_epoch(record, epoch).await {
            return Ok(None);
        }
        // Every durable chain of the epoch this installation holds: the ones it received
        // (other devices, and other installations of this device) and its own.
        let closes = self
            .chain_positions(&epoch.conversation)
            .await?
            .into_iter()
            .filter(|p| p.epoch == epoch.epoch && p.next > 0)
            .map(|p| SenderClose {
                sender: p.sender,
                instance: p.instance,
                next: p.next,
            })
            .collect();
        Ok(Some(closes))
    }

    /// The epoch to send in: the newest, unless it is sealed to an older team key, expired by
    /// policy, or flagged after a restore; then a new one is opened and posted first.
    pub(crate) async fn send_epoch(
        &self,
        conversation: &ConversationId,
    ) -> Result<(ConvRecord, EpochRecord)> {
        for _ in 0..4 {
            let (record, _) = self.conv_record(conversation).await?;
            let mut epochs = self.epochs(conversation).await?;
            if epochs.is_empty() {
                self.fetch_epochs(conversation, &record).await?;
                epochs = self.epochs(conversation).await?;
            }
            let latest = epochs.pop().ok_or(Error::BadResponse("no epoch record"))?;
            if record.visitor {
                if self.head_check_due(&record.team).await? {
                    self.check_fresh_head(&record.team).await?;
                } else {
                    // A reader added since (a viewer, a bot) holds only a generation newer than
                    // the visitor's epoch: look for new links before sealing, so the visitor moves
                    // to it rather than write what the team's newest readers cannot open.
                    // Offline, the cached head is still within the freshness bound.
                    match self.sync_team(&record.team).await {
                        Err(e) if e.is_transient() => {}
                        other => other?,
                    }
                }
            } else if self.has_witness(&record.team).await
                && self.head_check_due(&record.team).await?
            {
                // A member shown an old chain must not keep writing to a key a removed member
                // holds: with a witness, it checks like a visitor. (Without one there is nothing
                // outside the relay to check against: PROTOCOL §6.7.)
                self.check_witness(&record.team).await?;
            }
            let state = self.team_state(&record.team).await?;
            let counter = match self
                .inner
                .store
                .get(&records::send_chain_id(
                    conversation,
                    latest.epoch,
                    &self.inner.instance,
                    Stream::Durable,
                )?)
                .await?
            {
                Some(e) => SenderChain::import(&e.value)?.next_counter(),
                None => 0,
            };
            let current = state.current_key().map(|(g, _)| g);
            // The relay numbers records one after another: a number served after the newest
            // accepted one is a record this device holds back or refused, and the epoch it
            // claims to open would close ours, so a new epoch follows ours instead.
            let newest =
                latest.epoch.checked_add(1) == Some(self.next_epoch_number(conversation).await?);
            let fresh = !record.needs_epoch
                && newest
                && current == Some(latest.generation)
                && !epoch_expired(state.policy(), latest.created_at, counter, self.now());
            if fresh {
                return Ok((record, latest));
            }
            let state = if record.visitor {
                self.check_fresh_head(&record.team).await?
            } else {
                // A new epoch is sealed to the current generation: make sure it is current.
                self.sync_team(&record.team).await?;
                self.check_witness(&record.team).await?;
                self.team_state(&record.team).await?
            };
            if state.current_key().map(|(g, _)| g) == Some(latest.generation)
                && !record.needs_epoch
                && newest
                && !epoch_expired(state.policy(), latest.created_at, counter, self.now())
            {
                return Ok((record, latest));
            }
            // The new record states where this epoch ended: read everything the relay has of
            // it first, and start again if someone else opened an epoch meanwhile.
            self.sync_conversation(conversation).await?;
            if self.epochs(conversation).await?.last().map(|e| e.epoch) != Some(latest.epoch) {
                continue;
            }
            let next = self.next_epoch_number(conversation).await?;
            let closes = self.epoch_closes(&record, &latest).await?;
            let (epoch, secret) = EpochRecord::open(
                &mut os_rng()?,
                &self.inner.device,
                &state,
                *conversation,
                next,
                Some((&latest, closes)),
                latest.visitor_devices.clone(),
                self.now(),
            )?;
            let posted = self
                .call(
                    Method::Post,
                    &conv_path(conversation, "/epochs"),
                    Some(bodies::encode(&bodies::Record {
                        record: &b64(&epoch.to_wire()),
                    })?),
                )
                .await;
            match posted {
                Ok(_) => {
                    let mut txn = Transaction::new();
                    // Its own record follows `latest`: the held records it passes over are
                    // refused here as at every other participant.
                    let mut accepted = self.epochs(conversation).await?;
                    let mut held = self.held_epochs(conversation).await?;
                    self.accept_epoch(
                        conversation,
                        epoch.clone(),
                        &mut accepted,
                        &mut held,
                        &mut txn,
                    )?;
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
}
