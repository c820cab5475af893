//! Messages whose place is not decided yet: in an epoch whose record waits for an active
//! participant to follow it, or from a member removed since in an epoch no record closed yet.
//! They are kept aside, never shown, and taken up again when a record decides; and the end of
//! each closed epoch is checked against what arrived.

use sotto_core::EpochError;
use sotto_core::conversation::{ConversationId, MessageHeader};

use super::Client;
use super::api::b64;
use super::epoch_chain::{Held, next_number};
use super::events::{Event, Warning};
use super::receive::{Received, StoredEnvelope};
use super::records::{self, ConvRecord};
use crate::store::{Expect, Query, Store, Transaction};
use crate::transport::Transport;
use crate::{Error, Result};

/// How far beyond the records it served a message's epoch may be to wait for its record.
const MAX_EPOCHS_AHEAD: u32 = 16;
/// Most messages held aside per conversation.
pub(crate) const MAX_HELD_MESSAGES: usize = 1000;

impl<S: Store, T: Transport> Client<S, T> {
    /// Keeps a message aside until the record that decides it arrives.
    pub(crate) async fn hold_message(
        &self,
        conversation: &ConversationId,
        epoch: u32,
        cursor: u64,
        at: u64,
        wire: &[u8],
    ) -> Result<()> {
        let held = self
            .inner
            .store
            .list(
                &records::ns(records::HELD_MESSAGE)?,
                &Query::prefix(conversation.0.to_vec()),
            )
            .await?
            .len();
        if held >= MAX_HELD_MESSAGES {
            return Err(Error::Core(EpochError::NoKey.into()));
        }
        let mut value = at.to_be_bytes().to_vec();
        value.extend_from_slice(wire);
        let mut txn = Transaction::new();
        txn.put(
            records::held_message_id(conversation, epoch, cursor)?,
            &value,
            Expect::Any,
        );
        self.inner.store.commit(txn).await?;
        Ok(())
    }

    /// A message in an epoch this device has not accepted: refused if the record was refused,
    /// otherwise held until the record is decided (it waits for a follower, names links the
    /// relay withholds, or was not served yet). Only a participant's message is held (a device
    /// of the team, or a visitor device of an accepted record), and at most
    /// [`MAX_HELD_MESSAGES`] per conversation: what a stranger sends is refused at once.
    pub(crate) async fn hold_or_refuse(
        &self,
        conversation: &ConversationId,
        record: &ConvRecord,
        header: &MessageHeader,
        wire: &[u8],
        cursor: Option<u64>,
        at: u64,
    ) -> Result<Received> {
        let epoch = header.epoch;
        let held = self.held_epochs(conversation).await?;
        let status = held.iter().find(|(n, _)| *n == epoch).map(|(_, h)| h);
        if matches!(status, Some(Held::Refused)) {
            return Err(Error::Core(EpochError::Refused.into()));
        }
        let accepted = self.epochs(conversation).await?;
        let next = next_number(&accepted, &held)?;
        let participant = self
            .team_state(&record.team)
            .await?
            .device(&header.sender)
            .is_some()
            || accepted
                .iter()
                .any(|e| e.visitor_devices.iter().any(|d| d.id() == header.sender));
        // A number far beyond what the relay served is no epoch that will come.
        let unknown_and_far = status.is_none() && epoch.saturating_sub(next) > MAX_EPOCHS_AHEAD;
        if !participant || unknown_and_far {
            return Err(Error::Core(EpochError::NoKey.into()));
        }
        if let Some(cursor) = cursor {
            self.hold_message(conversation, epoch, cursor, at, wire)
                .await?;
        }
        Ok(Received::Skipped)
    }

    /// Takes up the held messages again, so those whose epoch was decided since are shown or
    /// refused.
    pub(crate) async fn release_held(
        &self,
        conversation: &ConversationId,
        record: &ConvRecord,
    ) -> Result<()> {
        let held = self
            .inner
            .store
            .list(
                &records::ns(records::HELD_MESSAGE)?,
                &Query::prefix(conversation.0.to_vec()),
            )
            .await?;
        for (id, entry) in held {
            let key = id.key();
            let cursor = records::decode_cursor(key.get(20..28).unwrap_or_default())?;
            let (at, wire) = entry
                .value
                .split_at_checked(8)
                .ok_or(Error::Corrupt("malformed held message"))?;
            let at = records::decode_cursor(at)?;
            // Taken up again like a new envelope: one whose epoch is still undecided, or whose
            // removed sender still waits for the close, is held again.
            let mut txn = Transaction::new();
            txn.delete(id.clone(), Expect::Any);
            self.inner.store.commit(txn).await?;
            let envelope = StoredEnvelope {
                cursor,
                message: b64(wire),
                received_at: at,
            };
            self.receive_envelope(conversation, record, &envelope)
                .await?;
        }
        Ok(())
    }

    /// Compares the end of each epoch closed since the last sync with what arrived: a sender
    /// whose messages stop short of what the close states lost its last messages on the way
    /// (the relay dropped them), reported as a gap.
    pub(crate) async fn check_closes(
        &self,
        conversation: &ConversationId,
        conv: &ConvRecord,
    ) -> Result<()> {
        let due: Vec<u32> = match self.inner.closes_due.lock() {
            Ok(mut due) => {
                let mine = due
                    .iter()
                    .filter(|(c, _)| c == conversation)
                    .map(|(_, e)| *e)
                    .collect();
                due.retain(|(c, _)| c != conversation);
                mine
            }
            Err(_) => Vec::new(),
        };
        let me = self.inner.device.id();
        for closing in due {
            let Some(record) = self.epoch(conversation, closing).await? else {
                continue;
            };
            let Some(closes) = record.closes.as_ref() else {
                continue;
            };
            let Some(previous) = self
                .epochs(conversation)
                .await?
                .into_iter()
                .find(|e| e.hash() == record.previous)
            else {
                continue;
            };
            // A device that cannot read the closed epoch (a visitor's new device, a reader
            // without history) has nothing to compare.
            if !self.can_read_epoch(conv, &previous).await {
                continue;
            }
            let positions = self.chain_positions(conversation).await?;
            // What this installation posted in the closed epoch and the closer did not count
            // was dropped on the way to it (a message still queued is sealed again instead).
            if record.author != me {
                let sent = positions
                    .iter()
                    .find(|p| p.epoch == previous.epoch && p.own)
                    .map_or(0, |p| p.next);
                let mut prefix = conversation.0.to_vec();
                prefix.extend_from_slice(&previous.epoch.to_be_bytes());
                let queued = self
                    .inner
                    .store
                    .list(&records::ns(records::OUTBOX)?, &Query::prefix(prefix))
                    .await?
                    .len();
                let posted = sent.saturating_sub(u32::try_from(queued).unwrap_or(u32::MAX));
                let counted = record.closed_at(&me, &self.instance()).unwrap_or(posted);
                if posted > counted {
                    self.inner.events.emit(Event::Warning(Warning::Gap {
                        conversation: *conversation,
                        sender: me,
                        missing: posted - counted,
                    }));
                }
            }
            for close in closes {
                let next = positions
                    .iter()
                    .find(|p| {
                        p.epoch == previous.epoch
                            && p.sender == close.sender
                            && p.instance == close.instance
                    })
                    .map_or(0, |p| p.next);
                // This installation's own chain is compared the other way below; an earlier
                // installation of this device is compared like anyone else's.
                let own = close.sender == me && close.instance == self.instance();
                if close.next > next && !own {
                    self.inner.events.emit(Event::Warning(Warning::Gap {
                        conversation: *conversation,
                        sender: close.sender,
                        missing: close.next - next,
                    }));
                }
            }
        }
        Ok(())
    }
}
