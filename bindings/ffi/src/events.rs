//! Events: the client's [`sotto_client::client::Event`]s as records, delivered either by
//! polling an [`EventSubscription`] or to an [`EventListener`] the application implements.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::lock::Mutex as AsyncMutex;
use sotto_client::client::{Event as ClientEvent, EventStream, TeamChange, Warning};
use tokio::task::JoinHandle;

use crate::error::SottoError;
use crate::runtime;
use crate::types::{ChatMessage, TeamRole};

/// Something that happened, in order.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum Event {
    /// A message from another device was received, verified, decrypted and stored.
    Message {
        /// The conversation.
        conversation_id: String,
        /// The message, as `history` returns it.
        message: ChatMessage,
    },
    /// One of this client's queued messages was stored by the relay.
    Sent {
        /// The conversation.
        conversation_id: String,
        /// Where the relay stored it.
        cursor: u64,
    },
    /// Someone started or stopped typing.
    Typing {
        /// The conversation.
        conversation_id: String,
        /// Their device.
        sender: String,
        /// Whether they are typing.
        typing: bool,
    },
    /// Someone read the conversation up to a cursor.
    Receipt {
        /// The conversation.
        conversation_id: String,
        /// Their device.
        sender: String,
        /// They read every message up to this cursor.
        read_up_to: u64,
    },
    /// A conversation of one of this client's teams appeared.
    ConversationStarted {
        /// The conversation.
        conversation_id: String,
        /// Its team.
        team_id: String,
    },
    /// A conversation was deleted; its local data is gone.
    ConversationDeleted {
        /// The conversation.
        conversation_id: String,
    },
    /// A verified link changed the team.
    TeamChanged {
        /// The team.
        team_id: String,
        /// The link's sequence number.
        seq: u64,
        /// What changed.
        change: TeamUpdate,
    },
    /// This device was removed from the team (or the team deleted); its keys are wiped.
    RemovedFromTeam {
        /// The team.
        team_id: String,
    },
    /// A visitor presented an identity assertion that verifies against the team chain: the
    /// company's backend vouches that this device is its customer `customer_id`.
    IdentityVerified {
        /// The conversation.
        conversation_id: String,
        /// The visitor device.
        device_id: String,
        /// The company's id for the customer (untrusted text for display).
        customer_id: String,
    },
    /// The push connection is up and everything missed while away was synced.
    Connected,
    /// The push connection ended; the client reconnects while started.
    Disconnected {
        /// The error code, if it ended with an error.
        code: Option<String>,
    },
    /// Something suspicious or lossy happened.
    Warning {
        /// What.
        warning: SecurityWarning,
    },
}

/// A team change.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum TeamUpdate {
    /// The team was created.
    Created,
    /// A member joined.
    MemberAdded {
        /// The member.
        member_id: String,
        /// Their role.
        role: TeamRole,
    },
    /// A member was removed.
    MemberRemoved {
        /// The member.
        member_id: String,
    },
    /// A member's role changed.
    RoleChanged {
        /// The member.
        member_id: String,
        /// The new role.
        role: TeamRole,
    },
    /// A device was added to a member.
    DeviceAdded {
        /// The member.
        member_id: String,
        /// The device.
        device_id: String,
    },
    /// A device was revoked.
    DeviceRevoked {
        /// The member.
        member_id: String,
        /// The device.
        device_id: String,
    },
    /// The team key was rotated.
    KeyRotated,
    /// The policy changed.
    PolicyChanged,
    /// An integration key was added.
    IntegrationKeyAdded {
        /// Its name.
        name: String,
    },
    /// The team was deleted.
    Deleted,
}

/// What the application should know about, and usually show.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SecurityWarning {
    /// Two members were shown different team histories.
    Fork {
        /// The team.
        team_id: String,
    },
    /// The relay served an older team head than one already verified.
    Rollback {
        /// The team.
        team_id: String,
    },
    /// A member device sealed this device a team key that does not match the chain; ask a
    /// manager to check (and remove) the author.
    BadKeyWrap {
        /// The team.
        team_id: String,
        /// The device that made the link.
        author: String,
        /// The link's sequence number.
        seq: u64,
    },
    /// Messages of a sender are missing.
    Gap {
        /// The conversation.
        conversation_id: String,
        /// The sender.
        sender: String,
        /// How many.
        missing: u32,
    },
    /// A visitor's identity is not vouched for by the company's backend.
    UnverifiedIdentity {
        /// The conversation.
        conversation_id: String,
        /// The visitor device.
        device_id: String,
    },
    /// A stored message could not be verified or decrypted; it is skipped.
    Undecryptable {
        /// The conversation.
        conversation_id: String,
        /// Its cursor.
        cursor: u64,
        /// The error code.
        code: String,
    },
    /// The relay permanently refused a queued message; it was dropped from the queue.
    SendFailed {
        /// The conversation.
        conversation_id: String,
        /// The error code.
        code: String,
    },
    /// An epoch record the relay served was refused (a failed check, no accepted predecessor,
    /// or written by a member removed since and never followed); nothing in it is shown.
    EpochRefused {
        /// The conversation.
        conversation_id: String,
        /// The epoch number.
        epoch: u32,
        /// Its author's device id (hex), when the record decoded.
        author: Option<String>,
        /// Which check failed.
        code: String,
    },
    /// The relay says a conversation was deleted but served no signed deletion that verifies
    /// (none, or one by someone not allowed to delete it); its history is kept.
    UnverifiedDeletion {
        /// The conversation.
        conversation_id: String,
        /// Why: the relay's error code or the deletion's refusal code.
        code: String,
    },
}

fn h(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

impl TeamUpdate {
    fn of(change: TeamChange) -> Option<Self> {
        Some(match change {
            TeamChange::Created => TeamUpdate::Created,
            TeamChange::MemberAdded { member, role } => TeamUpdate::MemberAdded {
                member_id: h(&member.0),
                role: role.into(),
            },
            TeamChange::MemberRemoved { member } => TeamUpdate::MemberRemoved {
                member_id: h(&member.0),
            },
            TeamChange::RoleChanged { member, role } => TeamUpdate::RoleChanged {
                member_id: h(&member.0),
                role: role.into(),
            },
            TeamChange::DeviceAdded { member, device } => TeamUpdate::DeviceAdded {
                member_id: h(&member.0),
                device_id: h(&device.0),
            },
            TeamChange::DeviceRevoked { member, device } => TeamUpdate::DeviceRevoked {
                member_id: h(&member.0),
                device_id: h(&device.0),
            },
            TeamChange::KeyRotated => TeamUpdate::KeyRotated,
            TeamChange::PolicyChanged => TeamUpdate::PolicyChanged,
            TeamChange::IntegrationKeyAdded { name } => TeamUpdate::IntegrationKeyAdded { name },
            TeamChange::Deleted => TeamUpdate::Deleted,
            // A change kind added to the client later has no record here yet.
            _ => return None,
        })
    }
}

impl SecurityWarning {
    fn of(warning: Warning) -> Option<Self> {
        Some(match warning {
            Warning::Fork { team } => SecurityWarning::Fork {
                team_id: h(&team.0),
            },
            Warning::Rollback { team } => SecurityWarning::Rollback {
                team_id: h(&team.0),
            },
            Warning::BadKeyWrap { team, author, seq } => SecurityWarning::BadKeyWrap {
                team_id: h(&team.0),
                author: h(&author.0),
                seq,
            },
            Warning::Gap {
                conversation,
                sender,
                missing,
            } => SecurityWarning::Gap {
                conversation_id: h(&conversation.0),
                sender: h(&sender.0),
                missing,
            },
            Warning::UnverifiedIdentity {
                conversation,
                device,
            } => SecurityWarning::UnverifiedIdentity {
                conversation_id: h(&conversation.0),
                device_id: h(&device.0),
            },
            Warning::Undecryptable {
                conversation,
                cursor,
                code,
            } => SecurityWarning::Undecryptable {
                conversation_id: h(&conversation.0),
                cursor,
                code: code.to_owned(),
            },
            Warning::SendFailed { conversation, code } => SecurityWarning::SendFailed {
                conversation_id: h(&conversation.0),
                code: code.to_owned(),
            },
            Warning::EpochRefused {
                conversation,
                epoch,
                author,
                code,
            } => SecurityWarning::EpochRefused {
                conversation_id: h(&conversation.0),
                epoch,
                author: author.map(|a| h(&a.0)),
                code: code.to_owned(),
            },
            Warning::UnverifiedDeletion { conversation, code } => {
                SecurityWarning::UnverifiedDeletion {
                    conversation_id: h(&conversation.0),
                    code: code.to_owned(),
                }
            }
            _ => return None,
        })
    }
}

impl Event {
    /// The record for a client event; `None` for a kind this crate does not know yet.
    pub(crate) fn of(event: ClientEvent) -> Option<Self> {
        Some(match event {
            ClientEvent::Message {
                conversation,
                message,
            } => Event::Message {
                conversation_id: h(&conversation.0),
                message: message.into(),
            },
            ClientEvent::Sent {
                conversation,
                cursor,
            } => Event::Sent {
                conversation_id: h(&conversation.0),
                cursor,
            },
            ClientEvent::Typing {
                conversation,
                sender,
                typing,
            } => Event::Typing {
                conversation_id: h(&conversation.0),
                sender: h(&sender.0),
                typing,
            },
            ClientEvent::Receipt {
                conversation,
                sender,
                read_up_to,
            } => Event::Receipt {
                conversation_id: h(&conversation.0),
                sender: h(&sender.0),
                read_up_to,
            },
            ClientEvent::ConversationStarted { conversation, team } => Event::ConversationStarted {
                conversation_id: h(&conversation.0),
                team_id: h(&team.0),
            },
            ClientEvent::ConversationDeleted { conversation } => Event::ConversationDeleted {
                conversation_id: h(&conversation.0),
            },
            ClientEvent::TeamChanged { team, seq, change } => Event::TeamChanged {
                team_id: h(&team.0),
                seq,
                change: TeamUpdate::of(change)?,
            },
            ClientEvent::RemovedFromTeam { team } => Event::RemovedFromTeam {
                team_id: h(&team.0),
            },
            ClientEvent::IdentityVerified {
                conversation,
                device,
                customer_id,
            } => Event::IdentityVerified {
                conversation_id: h(&conversation.0),
                device_id: h(&device.0),
                customer_id,
            },
            ClientEvent::Connected => Event::Connected,
            ClientEvent::Disconnected { code } => Event::Disconnected {
                code: code.map(str::to_owned),
            },
            ClientEvent::Warning(w) => Event::Warning {
                warning: SecurityWarning::of(w)?,
            },
            _ => return None,
        })
    }
}

/// Waits for the next event this crate has a record for; `None` when the stream ended.
async fn next_known(stream: &mut EventStream) -> Option<Event> {
    loop {
        if let Some(event) = Event::of(stream.next().await?) {
            return Some(event);
        }
    }
}

/// A subscription to a client's events, from the moment it was made, polled with `next`.
/// Events queue up (unbounded) until taken, so poll it or drop it.
#[derive(uniffi::Object)]
pub struct EventSubscription {
    stream: Arc<AsyncMutex<EventStream>>,
}

impl EventSubscription {
    pub(crate) fn new(stream: EventStream) -> Self {
        EventSubscription {
            stream: Arc::new(AsyncMutex::new(stream)),
        }
    }
}

#[uniffi::export]
impl EventSubscription {
    /// The next event, waiting at most `timeout_ms` milliseconds; `None` if none came in time
    /// or the client is gone.
    pub async fn next(&self, timeout_ms: u64) -> Result<Option<Event>, SottoError> {
        let stream = Arc::clone(&self.stream);
        runtime::run(async move {
            let mut stream = stream.lock().await;
            let wait = Duration::from_millis(timeout_ms);
            Ok::<_, SottoError>(
                tokio::time::timeout(wait, next_known(&mut stream))
                    .await
                    .unwrap_or(None),
            )
        })
        .await
    }
}

/// Implemented by the application to receive events as they happen. Called on a library
/// thread, one event at a time and in order; return quickly (hand work to your own thread).
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: Event);
}

/// A listener's registration: it receives events until `cancel` or until the client is gone.
/// Dropping the handle does not stop it (garbage collection must not silence a listener).
#[derive(uniffi::Object)]
pub struct ListenerHandle {
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ListenerHandle {
    pub(crate) fn start(
        stream: EventStream,
        listener: Arc<dyn EventListener>,
    ) -> Result<Self, SottoError> {
        let mut stream = stream;
        let task = runtime::spawn(async move {
            while let Some(event) = next_known(&mut stream).await {
                // A listener that throws loses that event, not the ones after it.
                let _ = catch_unwind(AssertUnwindSafe(|| listener.on_event(event)));
            }
        })?;
        Ok(ListenerHandle {
            task: Mutex::new(Some(task)),
        })
    }
}

#[uniffi::export]
impl ListenerHandle {
    /// Stops delivering events to the listener.
    pub fn cancel(&self) {
        if let Ok(mut task) = self.task.lock()
            && let Some(task) = task.take()
        {
            task.abort();
        }
    }

    /// Whether the listener still receives events.
    pub fn is_active(&self) -> bool {
        self.task
            .lock()
            .map(|t| t.as_ref().is_some_and(|t| !t.is_finished()))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_client::client::Body;
    use sotto_core::conversation::{ConversationId, MessageKind};
    use sotto_core::device::DeviceId;
    use sotto_core::team::{MemberId, Role, TeamId};

    #[test]
    fn events_become_records_with_hex_ids() {
        let conversation = ConversationId([0xab; 16]);
        let message = sotto_client::client::Message {
            cursor: Some(7),
            sender: DeviceId([1; 32]),
            mine: false,
            kind: MessageKind::Text,
            body: Body::Text("hi".into()),
            epoch: 2,
            counter: 3,
            at: 99,
        };
        match Event::of(ClientEvent::Message {
            conversation,
            message,
        }) {
            Some(Event::Message {
                conversation_id,
                message,
            }) => {
                assert_eq!(conversation_id, "ab".repeat(16));
                assert_eq!(message.sender, "01".repeat(32));
                assert_eq!(message.cursor, Some(7));
                assert_eq!((message.epoch, message.counter, message.at), (2, 3, 99));
                assert!(
                    matches!(message.body, crate::types::MessageBody::Text { ref text } if text == "hi")
                );
            }
            other => panic!("{other:?}"),
        }
        match Event::of(ClientEvent::TeamChanged {
            team: TeamId([2; 16]),
            seq: 5,
            change: TeamChange::RoleChanged {
                member: MemberId([3; 16]),
                role: Role::Viewer,
            },
        }) {
            Some(Event::TeamChanged {
                team_id,
                seq,
                change,
            }) => {
                assert_eq!((team_id.as_str(), seq), ("02".repeat(16).as_str(), 5));
                assert_eq!(
                    change,
                    TeamUpdate::RoleChanged {
                        member_id: "03".repeat(16),
                        role: TeamRole::Viewer
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        match Event::of(ClientEvent::Warning(Warning::Undecryptable {
            conversation,
            cursor: 9,
            code: "message_forged",
        })) {
            Some(Event::Warning {
                warning: SecurityWarning::Undecryptable { cursor, code, .. },
            }) => assert_eq!((cursor, code.as_str()), (9, "message_forged")),
            other => panic!("{other:?}"),
        }
        match Event::of(ClientEvent::Disconnected {
            code: Some("transport"),
        }) {
            Some(Event::Disconnected { code }) => assert_eq!(code.as_deref(), Some("transport")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_subscription_times_out_then_delivers_in_order_then_ends() {
        let (tx, rx) = futures_channel::mpsc::unbounded();
        let subscription = EventSubscription::new(rx);
        let next = |ms| futures_executor::block_on(subscription.next(ms));
        assert_eq!(
            next(10).unwrap().map(|_| ()),
            None,
            "nothing yet: times out"
        );
        tx.unbounded_send(ClientEvent::Connected).unwrap();
        tx.unbounded_send(ClientEvent::RemovedFromTeam {
            team: TeamId([4; 16]),
        })
        .unwrap();
        assert!(matches!(next(1000).unwrap(), Some(Event::Connected)));
        assert!(matches!(
            next(1000).unwrap(),
            Some(Event::RemovedFromTeam { team_id }) if team_id == "04".repeat(16)
        ));
        drop(tx);
        assert!(next(1000).unwrap().is_none(), "the stream ended");
    }
}
