//! System notes: short texts the team writes into a conversation about the conversation itself
//! (assigned to an agent, handed over), sealed like any message but of the System kind, so
//! applications show them apart from what people wrote. Only member devices send them: every
//! receiver refuses a visitor's (`message_kind_not_allowed`, PROTOCOL §7.1), so a visitor cannot
//! speak as the team; applications show each note with the member device that sent it
//! ([`Message::sender`]).

use sotto_core::conversation::{ConversationId, MessageKind};

use super::Client;
use super::conversation::{Body, Message, Outgoing};
use crate::store::Store;
use crate::transport::Transport;
use crate::{Error, Result};

/// What starts the content of a system note (identity assertions use another tag).
pub(crate) const NOTE_TAG: &[u8] = b"sotto.note\0";

/// The longest note, in bytes of UTF-8.
pub const MAX_NOTE_LEN: usize = 1024;

/// The text of a system note, if `message` is one (and its text is valid UTF-8).
pub fn system_note(message: &Message) -> Option<&str> {
    match (&message.kind, &message.body) {
        (MessageKind::System, Body::Other(content)) => content
            .strip_prefix(NOTE_TAG)
            .and_then(|text| core::str::from_utf8(text).ok()),
        _ => None,
    }
}

impl<S: Store, T: Transport> Client<S, T> {
    /// Sends a system note (at most [`MAX_NOTE_LEN`] bytes), queued like a text message.
    pub async fn send_system_note(
        &self,
        conversation: &ConversationId,
        text: &str,
    ) -> Result<Outgoing> {
        if text.is_empty() || text.len() > MAX_NOTE_LEN {
            return Err(Error::InvalidInput("system note length"));
        }
        if self.device_kind() == sotto_core::device::DeviceKind::Visitor {
            return Err(Error::Core(sotto_core::MessageError::KindNotAllowed.into()));
        }
        let mut content = NOTE_TAG.to_vec();
        content.extend_from_slice(text.as_bytes());
        self.send_durable(conversation, MessageKind::System, &content)
            .await
    }
}
