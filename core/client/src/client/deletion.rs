//! Conversation deletions (PROTOCOL §7.13): a conversation is erased here only for a signed
//! `ConversationDeletion` that verifies against this client's verified team chain and the
//! visitor devices of the conversation's verified epoch records (or for a team whose verified
//! chain ends in DeleteTeam). A relay that answers `404`/`410` for a conversation, drops its
//! rows or pushes a bare `conversation_deleted` frame gets a
//! [`Warning::UnverifiedDeletion`] and the conversation's history stays.

use serde::Deserialize;
use sotto_core::conversation::{ConversationDeletion, ConversationId};
use sotto_core::device::DeviceRecord;
use sotto_core::team::TeamId;
use sotto_core::wire::WireObject;

use super::Client;
use super::api::{b64, unb64};
use super::bodies;
use super::conversation::conv_path;
use super::events::{Event, Warning};
use super::records::ConvRecord;
use crate::store::Store;
use crate::transport::{Method, Transport};
use crate::{Error, Result};

#[derive(Deserialize)]
struct StoredDeletion {
    deletion: String,
}

/// Whether the relay answered that a conversation does not exist (any more).
pub(crate) fn is_gone(e: &Error) -> bool {
    matches!(e.relay_code(), Some("not_found" | "conversation_deleted"))
}

impl<S: Store, T: Transport> Client<S, T> {
    /// Deletes a conversation: signs a deletion of it with this device's key, has the relay
    /// drop its data and keep the deletion for the other participants (who erase their copies
    /// once they verified it), and erases it here. Allowed to the conversation's visitor and to
    /// the team's owners and admins ([`Role::can_delete_conversations`]); anyone else is refused
    /// by the relay (`relay_forbidden`) and by every other client.
    ///
    /// [`Role::can_delete_conversations`]: sotto_core::team::Role::can_delete_conversations
    pub async fn delete_conversation(&self, conversation: &ConversationId) -> Result<()> {
        let (record, _) = self.conv_record(conversation).await?;
        let deletion = self.sign_conversation_deletion(record.team, *conversation);
        let body = bodies::encode(&bodies::Deletion {
            deletion: &b64(&deletion.to_wire()),
        })?;
        match self
            .call(Method::Delete, &conv_path(conversation, ""), Some(body))
            .await
        {
            Ok(_) => {}
            // Already gone at the relay: this device asked for the deletion, finish here.
            Err(e) if is_gone(&e) => {}
            Err(e) => return Err(e),
        }
        self.forget_conversation(conversation).await?;
        self.inner.events.emit(Event::ConversationDeleted {
            conversation: *conversation,
        });
        Ok(())
    }

    /// This device's signed deletion of `conversation` of `team`, as
    /// [`Client::delete_conversation`] sends it (for an integration that delivers it another
    /// way). Signing proves nothing by itself: every receiver checks that this device may
    /// delete the conversation.
    pub fn sign_conversation_deletion(
        &self,
        team: TeamId,
        conversation: ConversationId,
    ) -> ConversationDeletion {
        ConversationDeletion::sign(&self.inner.device, team, conversation, self.now())
    }

    /// The relay says `conversation` is gone (an answer `404`/`410`, a push frame). Erases it
    /// if a signed deletion verifies (or its team's verified chain was deleted); otherwise
    /// warns and keeps it. Only a transient failure (the relay unreachable) is an error.
    pub(crate) async fn conversation_gone(&self, conversation: &ConversationId) -> Result<()> {
        let record = match self.conv_record(conversation).await {
            Ok((record, _)) => record,
            // Not held here: nothing to erase.
            Err(Error::UnknownConversation) => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.verify_deletion(conversation, &record).await {
            Ok(()) => {
                self.forget_conversation(conversation).await?;
                self.inner.events.emit(Event::ConversationDeleted {
                    conversation: *conversation,
                });
                Ok(())
            }
            Err(e) if e.is_transient() => Err(e),
            Err(e) => {
                self.inner
                    .events
                    .emit(Event::Warning(Warning::UnverifiedDeletion {
                        conversation: *conversation,
                        code: e.code(),
                    }));
                Ok(())
            }
        }
    }

    /// Fetches the conversation's deletion and verifies it; a refusal is retried once after
    /// syncing the team chain (the deleting manager may have joined after our head).
    async fn verify_deletion(
        &self,
        conversation: &ConversationId,
        record: &ConvRecord,
    ) -> Result<()> {
        if self.team_deleted(record).await {
            return Ok(());
        }
        let stored: StoredDeletion = self
            .call_json(Method::Get, &conv_path(conversation, "/deletion"), None)
            .await?;
        let deletion = ConversationDeletion::from_wire(&unb64(&stored.deletion)?)?;
        let visitors: Vec<DeviceRecord> = self
            .epochs(conversation)
            .await?
            .into_iter()
            .flat_map(|e| e.visitor_devices)
            .collect();
        match self
            .check_deletion(&deletion, conversation, record, &visitors)
            .await
        {
            Err(e) if !e.is_transient() => {
                self.sync_team(&record.team).await?;
                if self.team_deleted(record).await {
                    return Ok(());
                }
                self.check_deletion(&deletion, conversation, record, &visitors)
                    .await
            }
            other => other,
        }
    }

    async fn team_deleted(&self, record: &ConvRecord) -> bool {
        self.inner
            .teams
            .lock()
            .await
            .get(&record.team)
            .is_some_and(|v| v.state.is_deleted())
    }

    async fn check_deletion(
        &self,
        deletion: &ConversationDeletion,
        conversation: &ConversationId,
        record: &ConvRecord,
        visitors: &[DeviceRecord],
    ) -> Result<()> {
        let teams = self.inner.teams.lock().await;
        let view = teams.get(&record.team).ok_or(Error::UnknownTeam)?;
        deletion.verify(&view.state, conversation, visitors)?;
        Ok(())
    }
}
