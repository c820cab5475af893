//! The records and enums of the bindings, and their one-to-one conversions from the client's
//! types.
//!
//! Identifiers cross the boundary as lowercase hex (devices 64 digits; teams, members and
//! conversations 32); a team reference as `team_id:fingerprint`, the form the widget snippet
//! carries. Malformed input is `SottoError::InvalidInput` with code `invalid_input`.

use std::sync::Arc;

use sotto_client::backup::KdfParams;
use sotto_client::client::conversation::Outgoing;
use sotto_client::client::{AttachmentInfo, Body, MemberInfo, TeamRef};
use sotto_client::{Error, Result};
use sotto_core::conversation::{ConversationId, MessageKind};
use sotto_core::device::{DeviceId, DeviceKind};
use sotto_core::team::{HistoryMode, MemberId, Policy, Role, TeamId};
use zeroize::Zeroizing;

/// Parses `N` bytes of hex; `what` names the argument in the error.
pub(crate) fn parse_hex<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| Error::InvalidInput(what))?;
    Ok(out)
}

pub(crate) fn team_id(s: &str) -> Result<TeamId> {
    parse_hex(s, "team id").map(TeamId)
}

pub(crate) fn member_id(s: &str) -> Result<MemberId> {
    parse_hex(s, "member id").map(MemberId)
}

pub(crate) fn device_id(s: &str) -> Result<DeviceId> {
    parse_hex(s, "device id").map(DeviceId)
}

pub(crate) fn conversation_id(s: &str) -> Result<ConversationId> {
    parse_hex(s, "conversation id").map(ConversationId)
}

/// What kind of device a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ClientKind {
    /// A team member's device (owner, admin, agent, viewer, billing or bot).
    Member,
    /// A visitor's app.
    Visitor,
    /// A device derived from an owner's recovery words.
    Recovery,
}

impl From<ClientKind> for DeviceKind {
    fn from(k: ClientKind) -> Self {
        match k {
            ClientKind::Member => DeviceKind::Member,
            ClientKind::Visitor => DeviceKind::Visitor,
            ClientKind::Recovery => DeviceKind::Recovery,
        }
    }
}

impl From<DeviceKind> for ClientKind {
    fn from(k: DeviceKind) -> Self {
        match k {
            DeviceKind::Member => ClientKind::Member,
            DeviceKind::Visitor => ClientKind::Visitor,
            DeviceKind::Recovery => ClientKind::Recovery,
        }
    }
}

/// A member's role in a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TeamRole {
    /// Everything, including deleting the team.
    Owner,
    /// Manages members, reads and sends.
    Admin,
    /// Reads and sends.
    Agent,
    /// Reads current conversations, never sends.
    Viewer,
    /// Payments only; never receives a key.
    Billing,
    /// An integration: reads current conversations and sends.
    Bot,
}

impl From<TeamRole> for Role {
    fn from(r: TeamRole) -> Self {
        match r {
            TeamRole::Owner => Role::Owner,
            TeamRole::Admin => Role::Admin,
            TeamRole::Agent => Role::Agent,
            TeamRole::Viewer => Role::Viewer,
            TeamRole::Billing => Role::Billing,
            TeamRole::Bot => Role::Bot,
        }
    }
}

impl From<Role> for TeamRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => TeamRole::Owner,
            Role::Admin => TeamRole::Admin,
            Role::Agent => TeamRole::Agent,
            Role::Viewer => TeamRole::Viewer,
            Role::Billing => TeamRole::Billing,
            Role::Bot => TeamRole::Bot,
        }
    }
}

/// A team's policy; `default_policy()` gives the protocol's default.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TeamPolicy {
    /// Whether the team keeps history (`false`: ephemeral, nobody reads old epochs).
    pub retain_history: bool,
    /// Whether agents read earlier key generations.
    pub agents_read_history: bool,
    /// A visitor refuses a team head whose newest attestation is older than this.
    pub freshness_limit_secs: u32,
    /// A conversation epoch ends after this many messages.
    pub epoch_max_messages: u32,
    /// A conversation epoch ends after this long.
    pub epoch_max_age_secs: u32,
    /// Messages and keys older than this are deleted; 0 keeps them.
    pub retention_secs: u64,
}

impl From<TeamPolicy> for Policy {
    fn from(p: TeamPolicy) -> Self {
        Policy {
            history_mode: if p.retain_history {
                HistoryMode::Retain
            } else {
                HistoryMode::Ephemeral
            },
            agents_read_history: p.agents_read_history,
            freshness_limit_secs: p.freshness_limit_secs,
            epoch_max_messages: p.epoch_max_messages,
            epoch_max_age_secs: p.epoch_max_age_secs,
            retention_secs: p.retention_secs,
        }
    }
}

impl From<Policy> for TeamPolicy {
    fn from(p: Policy) -> Self {
        TeamPolicy {
            retain_history: p.history_mode == HistoryMode::Retain,
            agents_read_history: p.agents_read_history,
            freshness_limit_secs: p.freshness_limit_secs,
            epoch_max_messages: p.epoch_max_messages,
            epoch_max_age_secs: p.epoch_max_age_secs,
            retention_secs: p.retention_secs,
        }
    }
}

/// A team as the widget snippet and invitations name it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TeamReference {
    /// The team id (32 hex digits).
    pub team_id: String,
    /// The hash of the team's first link (64 hex digits).
    pub fingerprint: String,
    /// `team_id:fingerprint`, what `join_team` and `open_conversation` take.
    pub reference: String,
}

impl From<TeamRef> for TeamReference {
    fn from(r: TeamRef) -> Self {
        TeamReference {
            team_id: hex::encode(r.team.0),
            fingerprint: hex::encode(r.fingerprint.0),
            reference: r.to_string(),
        }
    }
}

/// A member of a team, from the verified chain.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TeamMember {
    /// The member id.
    pub member_id: String,
    /// Their role.
    pub role: TeamRole,
    /// Their active devices.
    pub devices: Vec<String>,
}

impl From<MemberInfo> for TeamMember {
    fn from(m: MemberInfo) -> Self {
        TeamMember {
            member_id: hex::encode(m.member.0),
            role: m.role.into(),
            devices: m.devices.iter().map(|d| hex::encode(d.0)).collect(),
        }
    }
}

/// This device's place in a team.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Membership {
    /// Its member id.
    pub member_id: String,
    /// Its role.
    pub role: TeamRole,
}

/// A message's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MessageType {
    /// Text.
    Text,
    /// An encrypted file.
    Attachment,
    /// A replacement for an earlier message.
    Edit,
    /// A request to delete an earlier message.
    Delete,
    /// Typing (ephemeral).
    Typing,
    /// A receipt (ephemeral).
    Receipt,
    /// A note by the team (member devices only).
    System,
    /// A visitor presenting its identity assertion (visitor devices only).
    Identity,
}

impl From<MessageKind> for MessageType {
    fn from(k: MessageKind) -> Self {
        match k {
            MessageKind::Text => MessageType::Text,
            MessageKind::Attachment => MessageType::Attachment,
            MessageKind::Edit => MessageType::Edit,
            MessageKind::Delete => MessageType::Delete,
            MessageKind::Typing => MessageType::Typing,
            MessageKind::Receipt => MessageType::Receipt,
            MessageKind::System => MessageType::System,
            MessageKind::Identity => MessageType::Identity,
        }
    }
}

/// An attachment of a received or sent message. Its key stays inside the library: pass the
/// object to `fetch_attachment` to download and decrypt the file.
#[derive(Debug, uniffi::Object)]
pub struct Attachment {
    pub(crate) info: AttachmentInfo,
}

#[uniffi::export]
impl Attachment {
    /// The file name as the sender gave it (untrusted: sanitize before using it as a path).
    pub fn name(&self) -> String {
        self.info.name().to_owned()
    }

    /// The media type as the sender gave it (untrusted).
    pub fn mime_type(&self) -> String {
        self.info.mime_type().to_owned()
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.info.size()
    }
}

/// A message's content.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum MessageBody {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An encrypted file.
    File {
        /// Its name, type, size and key.
        attachment: Arc<Attachment>,
    },
    /// Another kind's raw content (edit, delete, system).
    Other {
        /// The raw content.
        data: Vec<u8>,
    },
}

impl From<Body> for MessageBody {
    fn from(b: Body) -> Self {
        match b {
            Body::Text(text) => MessageBody::Text { text },
            Body::Attachment(info) => MessageBody::File {
                attachment: Arc::new(Attachment { info }),
            },
            Body::Other(data) => MessageBody::Other { data },
        }
    }
}

/// A message of a conversation.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ChatMessage {
    /// Where the relay stored it; `None` while it waits in the outbox.
    pub cursor: Option<u64>,
    /// The sending device.
    pub sender: String,
    /// Whether this device sent it.
    pub mine: bool,
    /// Its kind.
    pub kind: MessageType,
    /// Its content.
    pub body: MessageBody,
    /// The epoch it was sent in.
    pub epoch: u32,
    /// Its counter on the sender's chain.
    pub counter: u32,
    /// When the relay stored it (queued messages: when they were written), Unix seconds.
    pub at: u64,
}

impl From<sotto_client::client::Message> for ChatMessage {
    fn from(m: sotto_client::client::Message) -> Self {
        ChatMessage {
            cursor: m.cursor,
            sender: hex::encode(m.sender.0),
            mine: m.mine,
            kind: m.kind.into(),
            body: m.body.into(),
            epoch: m.epoch,
            counter: m.counter,
            at: m.at,
        }
    }
}

/// What a send did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SentMessage {
    /// The conversation.
    pub conversation_id: String,
    /// The epoch it was sealed in.
    pub epoch: u32,
    /// Its counter.
    pub counter: u32,
    /// Where the relay stored it; `None` if it is still queued (offline). Queued messages are
    /// retried by `flush_outbox`, `sync` and on reconnect, and announced by `Event.Sent`.
    pub cursor: Option<u64>,
}

impl From<Outgoing> for SentMessage {
    fn from(o: Outgoing) -> Self {
        SentMessage {
            conversation_id: hex::encode(o.conversation.0),
            epoch: o.epoch,
            counter: o.counter,
            cursor: o.cursor,
        }
    }
}

/// Argon2id cost of a passphrase backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct KdfSettings {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfSettings {
    pub(crate) fn params(self) -> Result<KdfParams> {
        KdfParams::new(self.memory_kib, self.iterations, self.parallelism)
    }
}

/// What seals or opens a backup.
#[derive(uniffi::Enum)]
pub enum BackupSecret {
    /// The owner's 24 recovery words.
    RecoveryWords {
        /// The words, separated by spaces.
        words: String,
    },
    /// A passphrase (normalise it, for example to NFC, the same way when sealing and opening).
    Passphrase {
        /// The passphrase.
        passphrase: String,
        /// The Argon2id cost when sealing; `None` is the recommended default (OWASP). Ignored
        /// when opening: the backup's header carries it.
        kdf: Option<KdfSettings>,
    },
}

impl core::fmt::Debug for BackupSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            BackupSecret::RecoveryWords { .. } => "RecoveryWords([redacted])",
            BackupSecret::Passphrase { .. } => "Passphrase([redacted])",
        })
    }
}

/// A [`BackupSecret`] taken apart, its text wiped on drop.
pub(crate) enum Secret {
    Words(Zeroizing<String>),
    Passphrase(Zeroizing<String>, Option<KdfSettings>),
}

impl From<BackupSecret> for Secret {
    fn from(s: BackupSecret) -> Self {
        match s {
            BackupSecret::RecoveryWords { words } => Secret::Words(Zeroizing::new(words)),
            BackupSecret::Passphrase { passphrase, kdf } => {
                Secret::Passphrase(Zeroizing::new(passphrase), kdf)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_exact_hex_only() {
        assert_eq!(team_id(&"ab".repeat(16)).unwrap(), TeamId([0xab; 16]));
        assert_eq!(device_id(&"01".repeat(32)).unwrap(), DeviceId([1; 32]));
        for bad in ["", "zz", &"ab".repeat(15), &"ab".repeat(17)] {
            let e = team_id(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_input");
            assert_eq!(e.to_string(), "invalid team id");
        }
        assert!(conversation_id(&"0".repeat(31)).is_err());
        assert!(member_id(&"ff".repeat(16)).is_ok());
    }

    #[test]
    fn policy_and_roles_round_trip() {
        let p = Policy::default();
        assert_eq!(Policy::from(TeamPolicy::from(p.clone())), p);
        let ephemeral = TeamPolicy {
            retain_history: false,
            ..TeamPolicy::from(p)
        };
        assert_eq!(Policy::from(ephemeral).history_mode, HistoryMode::Ephemeral);
        for role in [
            Role::Owner,
            Role::Admin,
            Role::Agent,
            Role::Viewer,
            Role::Billing,
            Role::Bot,
        ] {
            assert_eq!(Role::from(TeamRole::from(role)), role);
        }
        for kind in [
            DeviceKind::Member,
            DeviceKind::Visitor,
            DeviceKind::Recovery,
        ] {
            assert_eq!(DeviceKind::from(ClientKind::from(kind)), kind);
        }
    }
}
