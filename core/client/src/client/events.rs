//! What the client tells the application: new messages, receipts, typing, membership changes,
//! and warnings about what the relay or a peer did.

use std::sync::Mutex;

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use sotto_core::conversation::ConversationId;
use sotto_core::device::DeviceId;
use sotto_core::team::{Change, MemberId, Role, TeamId};

use super::conversation::Message;

/// Something that happened, delivered in order through [`Client::events`](super::Client::events).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// A durable message from another device was received, verified, decrypted and stored.
    Message {
        /// The conversation.
        conversation: ConversationId,
        /// The message as [`Client::history`](super::Client::history) returns it.
        message: Message,
    },
    /// One of this client's queued messages was stored by the relay.
    Sent {
        /// The conversation.
        conversation: ConversationId,
        /// Where the relay stored it.
        cursor: u64,
    },
    /// Someone started or stopped typing.
    Typing {
        /// The conversation.
        conversation: ConversationId,
        /// Their device.
        sender: DeviceId,
        /// Whether they are typing.
        typing: bool,
    },
    /// Someone read the conversation up to a cursor.
    Receipt {
        /// The conversation.
        conversation: ConversationId,
        /// Their device.
        sender: DeviceId,
        /// They read every message up to this cursor.
        read_up_to: u64,
    },
    /// A conversation of one of this client's teams appeared.
    ConversationStarted {
        /// The conversation.
        conversation: ConversationId,
        /// Its team.
        team: TeamId,
    },
    /// A conversation was deleted (here or by another participant); its local data is gone.
    ConversationDeleted {
        /// The conversation.
        conversation: ConversationId,
    },
    /// A verified link changed the team.
    TeamChanged {
        /// The team.
        team: TeamId,
        /// The link's sequence number.
        seq: u64,
        /// What changed.
        change: TeamChange,
    },
    /// This device was removed from the team (or the team deleted); its keys are wiped.
    RemovedFromTeam {
        /// The team.
        team: TeamId,
    },
    /// A participant presented an identity assertion that verifies against the team chain:
    /// the company's backend vouches that this device is its customer `customer_id`.
    IdentityVerified {
        /// The conversation.
        conversation: ConversationId,
        /// The visitor device.
        device: DeviceId,
        /// The company's id for the customer (untrusted text for display).
        customer_id: String,
    },
    /// The push connection is up and everything missed while away was synced.
    Connected,
    /// The push connection ended; [`Client::run`](super::Client::run) reconnects.
    Disconnected {
        /// The error code, if it ended with an error.
        code: Option<&'static str>,
    },
    /// Something suspicious or lossy happened.
    Warning(Warning),
}

/// A team change, in terms an application shows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TeamChange {
    /// The team was created.
    Created,
    /// A member joined.
    MemberAdded {
        /// The member.
        member: MemberId,
        /// Their role.
        role: Role,
    },
    /// A member was removed.
    MemberRemoved {
        /// The member.
        member: MemberId,
    },
    /// A member's role changed.
    RoleChanged {
        /// The member.
        member: MemberId,
        /// The new role.
        role: Role,
    },
    /// A device was added to a member.
    DeviceAdded {
        /// The member.
        member: MemberId,
        /// The device.
        device: DeviceId,
    },
    /// A device was revoked.
    DeviceRevoked {
        /// The member.
        member: MemberId,
        /// The device.
        device: DeviceId,
    },
    /// The team key was rotated.
    KeyRotated,
    /// The policy changed.
    PolicyChanged,
    /// An integration key was added.
    IntegrationKeyAdded {
        /// Its name, as the admin gave it.
        name: String,
    },
    /// The team was deleted.
    Deleted,
    /// An integration key was revoked.
    IntegrationKeyRevoked {
        /// The revoked Ed25519 key.
        key: [u8; 32],
    },
    /// An owner named the team's freshness witness.
    WitnessSet {
        /// The witness's URL.
        url: String,
        /// The Ed25519 key that signs its statements.
        key: [u8; 32],
    },
}

impl TeamChange {
    pub(crate) fn of(change: &Change) -> Self {
        match change {
            Change::CreateTeam { .. } => TeamChange::Created,
            Change::AddMember { member, role, .. } => TeamChange::MemberAdded {
                member: *member,
                role: *role,
            },
            Change::RemoveMember { member } => TeamChange::MemberRemoved { member: *member },
            Change::ChangeRole { member, role } => TeamChange::RoleChanged {
                member: *member,
                role: *role,
            },
            Change::AddDevice { member, device } => TeamChange::DeviceAdded {
                member: *member,
                device: device.id(),
            },
            Change::RevokeDevice { member, device } => TeamChange::DeviceRevoked {
                member: *member,
                device: *device,
            },
            Change::RotateKey => TeamChange::KeyRotated,
            Change::SetPolicy { .. } => TeamChange::PolicyChanged,
            Change::AddIntegrationKey { name, .. } => {
                TeamChange::IntegrationKeyAdded { name: name.clone() }
            }
            Change::DeleteTeam => TeamChange::Deleted,
            Change::RevokeIntegrationKey { key } => TeamChange::IntegrationKeyRevoked {
                key: *key.as_bytes(),
            },
            Change::SetWitness { url, key } => TeamChange::WitnessSet {
                url: url.clone(),
                key: *key.as_bytes(),
            },
        }
    }
}

/// What the application should know about, and usually show.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// The relay served a team chain that disagrees with the one this client verified (two
    /// members were shown different histories), or a peer named a head not on our chain.
    Fork {
        /// The team.
        team: TeamId,
    },
    /// The relay served an older team head than one this client verified, a peer sealed an
    /// epoch to an older head than ours, or the team's freshness witness vouches for a head the
    /// relay does not serve (the newest links are withheld; sending stops until they arrive).
    Rollback {
        /// The team.
        team: TeamId,
    },
    /// Messages of a sender are missing: counters were skipped.
    Gap {
        /// The conversation.
        conversation: ConversationId,
        /// The sender whose messages are missing.
        sender: DeviceId,
        /// How many.
        missing: u32,
    },
    /// A visitor's identity is not vouched for by the company's backend (no valid identity
    /// assertion): treat what they claim to be as unverified.
    UnverifiedIdentity {
        /// The conversation.
        conversation: ConversationId,
        /// The visitor device.
        device: DeviceId,
    },
    /// A stored message could not be verified or decrypted (forged, from a removed device, or
    /// sealed to keys this device does not hold). It is skipped.
    Undecryptable {
        /// The conversation.
        conversation: ConversationId,
        /// Its cursor.
        cursor: u64,
        /// The error code.
        code: &'static str,
    },
    /// A member device sealed this device a team key that does not match the chain (a faulty
    /// or malicious author: no one else can check a wrap). The rest of the link is accepted;
    /// this device cannot open what is sealed to those generations. Its managers should remove
    /// the author, which rotates the key.
    BadKeyWrap {
        /// The team.
        team: TeamId,
        /// The device that made the link.
        author: DeviceId,
        /// The link's sequence number.
        seq: u64,
    },
    /// An epoch record the relay served was refused (it failed a check, follows no record this
    /// device accepted, or was written by a member removed since and no active participant's
    /// record ever followed it); nothing in that epoch is shown. Or, with `code`
    /// `epoch_skipped`, a participant opened an epoch without the one this device accepted.
    EpochRefused {
        /// The conversation.
        conversation: ConversationId,
        /// The epoch number the relay served it under.
        epoch: u32,
        /// Its author, when the record decoded.
        author: Option<DeviceId>,
        /// Which check failed.
        code: &'static str,
    },
    /// The relay says a conversation was deleted (it answered `404`/`410`, or pushed a
    /// deletion notice) but served no signed deletion that verifies: none, one by someone not
    /// allowed to delete it (an agent, a viewer, a removed member, a visitor of another
    /// conversation), or one for another team or conversation. Its local history is kept.
    UnverifiedDeletion {
        /// The conversation.
        conversation: ConversationId,
        /// Why: the relay's error code (`relay_not_found`) or the deletion's refusal
        /// (`deletion_not_permitted`, `bad_signature`, ...).
        code: &'static str,
    },
    /// The relay permanently refused a queued message; it was dropped from the queue.
    SendFailed {
        /// The conversation.
        conversation: ConversationId,
        /// The error code.
        code: &'static str,
    },
}

/// The stream of [`Event`]s of one subscription. Implements `futures::Stream`; it ends when the
/// client is dropped.
pub type EventStream = UnboundedReceiver<Event>;

/// The subscribers.
#[derive(Default)]
pub(crate) struct Events {
    senders: Mutex<Vec<UnboundedSender<Event>>>,
}

impl Events {
    pub fn subscribe(&self) -> EventStream {
        let (tx, rx) = unbounded();
        if let Ok(mut senders) = self.senders.lock() {
            senders.push(tx);
        }
        rx
    }

    pub fn emit(&self, event: Event) {
        if let Ok(mut senders) = self.senders.lock() {
            senders.retain(|s| s.unbounded_send(event.clone()).is_ok());
        }
    }
}
