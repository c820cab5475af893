//! The chain of a conversation's epoch records as this device accepts it (PROTOCOL §7.9, §10.3).
//!
//! Every record names the record it follows. A record by an active participant is accepted and
//! confirms the records it follows; a record by a member removed since is held, unseen, until an
//! active participant's record follows it (with the relay's help it could have been written after
//! the removal); a held record that a later accepted record passes over, and any record that
//! fails a check, is refused for good and reported, and the rest of the conversation keeps
//! syncing.

use serde::Deserialize;
use sotto_core::EpochError;
use sotto_core::conversation::epoch::{EpochAuthor, EpochWarning};
use sotto_core::conversation::{ConversationId, EpochRecord};
use sotto_core::device::DeviceId;
use sotto_core::wire::WireObject;

use super::Client;
use super::api::unb64;
use super::conversation::conv_path;
use super::events::{Event, Warning};
use super::records::{self, ConvRecord};
use crate::store::{Expect, Query, Store, Transaction};
use crate::transport::{Method, Transport};
use crate::{Error, Result};

/// Epoch records fetched per request.
const EPOCH_PAGE: usize = 1000;
/// Held-record tag: a record by a member removed since, waiting for a follower.
const HELD_PENDING: u8 = 1;
/// Held-record tag: refused for good.
const HELD_REFUSED: u8 = 2;

#[derive(Deserialize)]
struct StoredEpoch {
    epoch: u32,
    record: String,
}

#[derive(Deserialize)]
struct EpochPage {
    epochs: Vec<StoredEpoch>,
}

/// A record not (yet) accepted.
pub(crate) enum Held {
    /// Written by a member removed since; waits for an active participant's record to follow it.
    Pending(Box<EpochRecord>),
    /// Refused for good.
    Refused,
}

/// What one record from the relay turned out to be.
enum Judged {
    Accepted(Box<EpochRecord>, Option<EpochWarning>),
    Pending(Box<EpochRecord>),
    /// Names a chain head the relay does not serve this device (yet): read again next time.
    Later,
    Refused {
        author: Option<DeviceId>,
        code: &'static str,
    },
}

/// One past the highest number among the accepted and held records (both in number order).
pub(crate) fn next_number(accepted: &[EpochRecord], held: &[(u32, Held)]) -> Result<u32> {
    let accepted = accepted.last().map(|e| e.epoch);
    let held = held.last().map(|(n, _)| *n);
    match accepted.max(held) {
        None => Ok(0),
        Some(n) => n
            .checked_add(1)
            .ok_or(Error::NotPermitted("no epochs left")),
    }
}

fn epoch_of_key(key: &[u8]) -> Result<u32> {
    let tail: [u8; 4] = key
        .get(16..20)
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::Corrupt("malformed epoch key"))?;
    Ok(u32::from_be_bytes(tail))
}

impl<S: Store, T: Transport> Client<S, T> {
    /// The records held back or refused, by epoch number.
    pub(crate) async fn held_epochs(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<(u32, Held)>> {
        let mut out = Vec::new();
        for (id, entry) in self
            .inner
            .store
            .list(
                &records::ns(records::EPOCH_HELD)?,
                &Query::prefix(conversation.0.to_vec()),
            )
            .await?
        {
            let held = match entry.value.split_first() {
                Some((&HELD_PENDING, bytes)) => {
                    Held::Pending(Box::new(EpochRecord::from_wire(bytes)?))
                }
                Some((&HELD_REFUSED, _)) => Held::Refused,
                _ => return Err(Error::Corrupt("malformed held epoch")),
            };
            out.push((epoch_of_key(id.key())?, held));
        }
        Ok(out)
    }

    /// The number the relay gives the next epoch record: one past every record it served.
    pub(crate) async fn next_epoch_number(&self, conversation: &ConversationId) -> Result<u32> {
        let accepted = self.epochs(conversation).await?;
        let held = self.held_epochs(conversation).await?;
        next_number(&accepted, &held)
    }

    /// The accepted record that follows `epoch` (and so states where it ended), if any. Every
    /// number the relay served is either accepted or held, so the search stops at the first
    /// number in neither.
    pub(crate) async fn closing_record(&self, epoch: &EpochRecord) -> Result<Option<EpochRecord>> {
        let hash = epoch.hash();
        let mut number = epoch.epoch;
        while let Some(next) = number.checked_add(1) {
            number = next;
            match self.epoch(&epoch.conversation, number).await? {
                Some(r) if r.previous == hash => return Ok(Some(r)),
                Some(_) => {}
                None => {
                    let held = records::epoch_held_id(&epoch.conversation, number)?;
                    if self.inner.store.get(&held).await?.is_none() {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(None)
    }

    /// Fetches the records after the ones this device has seen, and accepts, holds or refuses
    /// each. A refused record raises [`Warning::EpochRefused`] and never stops the others.
    pub(crate) async fn fetch_epochs(
        &self,
        conversation: &ConversationId,
        record: &ConvRecord,
    ) -> Result<()> {
        let mut accepted = self.epochs(conversation).await?;
        let mut held = self.held_epochs(conversation).await?;
        let mut number = next_number(&accepted, &held)?;
        let page: EpochPage = self
            .call_json(
                Method::Get,
                &format!(
                    "{}?from={number}&limit={EPOCH_PAGE}",
                    conv_path(conversation, "/epochs")
                ),
                None,
            )
            .await?;
        for stored in page.epochs {
            if stored.epoch != number {
                // The relay numbers records 0, 1, 2...: anything else is its fault, and the
                // page is read again from here next time.
                self.warn_epoch(conversation, stored.epoch, None, "epoch_out_of_sequence");
                break;
            }
            let bytes = unb64(&stored.record).unwrap_or_default();
            let judged = self
                .judge_epoch(conversation, record, number, &bytes, &accepted, &held)
                .await?;
            let mut txn = Transaction::new();
            let mut refused = None;
            let mut rolled_back = false;
            match judged {
                Judged::Later => {
                    self.inner
                        .events
                        .emit(Event::Warning(Warning::Rollback { team: record.team }));
                    break;
                }
                Judged::Refused { author, code } => {
                    txn.put(
                        records::epoch_held_id(conversation, number)?,
                        &[HELD_REFUSED],
                        Expect::Any,
                    );
                    held.push((number, Held::Refused));
                    refused = Some((author, code));
                }
                Judged::Pending(epoch) => {
                    let mut value = vec![HELD_PENDING];
                    value.extend_from_slice(&epoch.to_wire());
                    txn.put(
                        records::epoch_held_id(conversation, number)?,
                        &value,
                        Expect::Any,
                    );
                    held.push((number, Held::Pending(epoch)));
                }
                Judged::Accepted(epoch, warning) => {
                    self.accept_epoch(conversation, *epoch, &mut accepted, &mut held, &mut txn)?;
                    rolled_back = warning == Some(EpochWarning::Rollback);
                }
            }
            self.inner.store.commit(txn).await?;
            if let Some((author, code)) = refused {
                self.warn_epoch(conversation, number, author, code);
            }
            if rolled_back {
                self.inner
                    .events
                    .emit(Event::Warning(Warning::Rollback { team: record.team }));
            }
            number = number
                .checked_add(1)
                .ok_or(Error::NotPermitted("no epochs left"))?;
        }
        Ok(())
    }

    /// Adds an accepted record to `txn` with the held records it confirms (the ones it follows),
    /// and refuses the held records it passes over.
    pub(crate) fn accept_epoch(
        &self,
        conversation: &ConversationId,
        epoch: EpochRecord,
        accepted: &mut Vec<EpochRecord>,
        held: &mut [(u32, Held)],
        txn: &mut Transaction,
    ) -> Result<()> {
        let mut confirmed = Vec::new();
        let mut follows = epoch.previous;
        while let Some((number, slot)) = held
            .iter_mut()
            .find(|(_, h)| matches!(h, Held::Pending(p) if p.hash() == follows))
        {
            let Held::Pending(p) = std::mem::replace(slot, Held::Refused) else {
                break;
            };
            follows = p.previous;
            txn.delete(records::epoch_held_id(conversation, *number)?, Expect::Any);
            confirmed.push(*p);
        }
        // The predecessor of the oldest confirmed record (or of `epoch`) is an accepted record;
        // an accepted record after it that the new one does not follow was passed over.
        let base = accepted
            .iter()
            .rev()
            .find(|a| a.hash() == follows)
            .map(|a| a.epoch);
        if let Some(base) = base {
            for skipped in accepted.iter().filter(|a| a.epoch > base) {
                self.warn_epoch(
                    conversation,
                    skipped.epoch,
                    Some(skipped.author),
                    "epoch_skipped",
                );
            }
        }
        for (number, slot) in held.iter_mut() {
            if *number < epoch.epoch
                && let Held::Pending(p) = slot
            {
                let author = p.author;
                *slot = Held::Refused;
                txn.put(
                    records::epoch_held_id(conversation, *number)?,
                    &[HELD_REFUSED],
                    Expect::Any,
                );
                self.warn_epoch(conversation, *number, Some(author), "epoch_unconfirmed");
            }
        }
        confirmed.push(epoch);
        if let Ok(mut due) = self.inner.closes_due.lock() {
            due.extend(confirmed.iter().map(|e| (*conversation, e.epoch)));
        }
        for e in confirmed {
            txn.put(
                records::epoch_id(conversation, e.epoch)?,
                &e.to_wire(),
                Expect::Any,
            );
            let at = accepted
                .binary_search_by_key(&e.epoch, |a| a.epoch)
                .unwrap_or_else(|i| i);
            accepted.insert(at, e);
        }
        Ok(())
    }

    /// Checks one record against the verified chain and the record it names as its predecessor.
    async fn judge_epoch(
        &self,
        conversation: &ConversationId,
        record: &ConvRecord,
        number: u32,
        bytes: &[u8],
        accepted: &[EpochRecord],
        held: &[(u32, Held)],
    ) -> Result<Judged> {
        let refused = |author, e: sotto_core::Error| Judged::Refused {
            author,
            code: e.code(),
        };
        let epoch = match EpochRecord::from_wire(bytes) {
            Ok(e) => e,
            Err(e) => return Ok(refused(None, e)),
        };
        let author = Some(epoch.author);
        if epoch.epoch != number || epoch.conversation != *conversation {
            return Ok(Judged::Refused {
                author,
                code: "epoch_out_of_sequence",
            });
        }
        let pending = held.iter().filter_map(|(_, h)| match h {
            Held::Pending(p) => Some(p.as_ref()),
            Held::Refused => None,
        });
        let previous = if epoch.previous == [0; 32] {
            None
        } else {
            match accepted
                .iter()
                .rev()
                .chain(pending)
                .find(|p| p.hash() == epoch.previous)
            {
                Some(p) => Some(p),
                None => return Ok(refused(author, EpochError::Predecessor.into())),
            }
        };
        if let Some(p) = previous
            && let Err(e) = epoch.follows(p)
        {
            return Ok(refused(author, e));
        }
        let known = previous.map(|p| p.visitor_devices.as_slice());
        let mut synced = false;
        loop {
            let state = self.team_state(&record.team).await?;
            match epoch.verify(&state, known, self.now()) {
                Ok(v) if v.author == EpochAuthor::Former => {
                    return Ok(Judged::Pending(Box::new(epoch)));
                }
                Ok(v) => return Ok(Judged::Accepted(Box::new(epoch), v.warning)),
                Err(sotto_core::Error::Epoch(EpochError::ChainBehind)) if !synced => {
                    synced = true;
                    self.sync_team(&record.team).await?;
                }
                // The relay withholds the links the record names: nothing is decided, and
                // the record is read again once they arrive.
                Err(sotto_core::Error::Epoch(EpochError::ChainBehind)) => {
                    return Ok(match epoch.check_signature(&state) {
                        Some(Err(e)) => refused(author, e),
                        _ => Judged::Later,
                    });
                }
                Err(e) => {
                    if e == sotto_core::Error::Epoch(EpochError::Fork) {
                        self.inner
                            .events
                            .emit(Event::Warning(Warning::Fork { team: record.team }));
                    }
                    return Ok(refused(author, e));
                }
            }
        }
    }

    fn warn_epoch(
        &self,
        conversation: &ConversationId,
        epoch: u32,
        author: Option<DeviceId>,
        code: &'static str,
    ) {
        self.inner
            .events
            .emit(Event::Warning(Warning::EpochRefused {
                conversation: *conversation,
                epoch,
                author,
                code,
            }));
    }
}
