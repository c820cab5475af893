//! Conversations: sender chains, messages and attachments (DESIGN 4.4).
//!
//! Within an epoch every device that writes has two sender chains, one per [`Stream`], derived
//! from the epoch secret and ratcheted forward by HKDF for every message ([`ratchet`]). A
//! message is a header, the AEAD ciphertext of the padded content ([`padding`]) under the
//! chain's message key, and the sender's signature ([`message`]); bulk history is verified with
//! Ed25519 batch verification ([`batch`]). Files travel as separate encrypted blobs whose key
//! and hash ride inside a message ([`attachment`]).
//!
//! Epoch records ([`epoch`]) carry the epoch secret to the team (sealed to its current key
//! generation) and to the visitor's devices. Byte layouts and labels are in `docs/PROTOCOL.md` §7.

pub mod attachment;
pub mod batch;
pub mod deletion;
pub mod epoch;
pub mod grant;
pub mod identity;
pub mod message;
pub mod padding;
pub mod ratchet;
pub mod secrets;

use core::fmt;

use crate::Result;
use crate::codec::{Decode, Encode, Reader, Writer};
use crate::error::DecodeError;

pub use attachment::{AttachmentDecryptor, AttachmentEncryptor, AttachmentRef};
pub use batch::open_batch;
pub use deletion::{ConversationDeletion, DeletionAuthority};
pub use epoch::{
    Admission, EpochAuthor, EpochRecord, EpochWarning, SenderClose, VerifiedEpoch, admit_message,
    sender_key,
};
pub use grant::HistoryGrant;
pub use message::{
    MessageContext, MessageHeader, OpenedMessage, ParsedMessage, VerifiedMessage, seal_message,
};
pub use ratchet::{ChainId, Gap, MAX_INSTANCES_PER_SENDER, MessageKey, ReceiverChain, SenderChain};
pub use secrets::EpochSecrets;

/// A conversation's identifier: 16 bytes chosen at random by whoever opens it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationId(pub [u8; 16]);

impl ConversationId {
    /// A fresh random id; 128 bits make collisions between conversations negligible.
    pub fn random(rng: &mut impl rand_core::CryptoRng) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        ConversationId(id)
    }
}

impl fmt::Debug for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConversationId(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl Encode for ConversationId {
    fn encode(&self, w: &mut Writer) {
        w.array(&self.0);
    }
}

impl Decode for ConversationId {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ConversationId(r.array()?))
    }
}

/// One installation of a device: 8 random bytes chosen when the device's store is created and
/// again by every restore from a backup. Sender chains are per installation, so two copies of a
/// device (a restore while the original still runs, or two restores) never derive the same
/// message key and nonce (G1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Instance(pub [u8; 8]);

impl Instance {
    /// A fresh random instance; 64 bits make two installations of one device colliding
    /// negligible.
    pub fn random(rng: &mut impl rand_core::CryptoRng) -> Self {
        let mut id = [0u8; 8];
        rng.fill_bytes(&mut id);
        Instance(id)
    }
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instance(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl Encode for Instance {
    fn encode(&self, w: &mut Writer) {
        w.array(&self.0);
    }
}

impl Decode for Instance {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Instance(r.array()?))
    }
}

/// What a message is. The kind travels in the clear header, so the relay can drop ephemeral
/// kinds instead of storing them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageKind {
    /// Text written by a participant.
    Text = 1,
    /// A reference to an encrypted file ([`AttachmentRef`]).
    Attachment = 2,
    /// A replacement for an earlier message's content.
    Edit = 3,
    /// A request to delete an earlier message.
    Delete = 4,
    /// A typing indicator or preview; ephemeral.
    Typing = 5,
    /// A delivery or read receipt; ephemeral.
    Receipt = 6,
    /// A note by the team about the conversation (assigned, handed over); member devices only.
    System = 7,
    /// A visitor presenting the company backend's identity assertion for its own device;
    /// visitor devices only.
    Identity = 8,
}

impl MessageKind {
    /// The kind's byte on the wire.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// The kind for a wire byte; unknown values are [`DecodeError::UnknownTag`].
    pub fn from_byte(b: u8) -> Result<Self> {
        Ok(match b {
            1 => MessageKind::Text,
            2 => MessageKind::Attachment,
            3 => MessageKind::Edit,
            4 => MessageKind::Delete,
            5 => MessageKind::Typing,
            6 => MessageKind::Receipt,
            7 => MessageKind::System,
            8 => MessageKind::Identity,
            _ => return Err(DecodeError::UnknownTag.into()),
        })
    }

    /// Whether the kind is ephemeral: it may be lost or dropped without anyone missing it.
    pub fn is_ephemeral(self) -> bool {
        matches!(self, MessageKind::Typing | MessageKind::Receipt)
    }

    /// Whether a visitor device may send the kind: everything but system notes, which speak
    /// for the team.
    pub fn visitor_may_send(self) -> bool {
        !matches!(self, MessageKind::System)
    }

    /// Whether a member device may send the kind (if its role may send at all): everything but
    /// identity presentations, which only a visitor makes for its own device.
    pub fn member_may_send(self) -> bool {
        !matches!(self, MessageKind::Identity)
    }

    /// The sender chain stream the kind is sent on.
    pub fn stream(self) -> Stream {
        if self.is_ephemeral() {
            Stream::Ephemeral
        } else {
            Stream::Durable
        }
    }
}

/// Which of a device's two sender chains a message uses.
///
/// Ephemeral kinds have their own chain so that typing indicators and receipts the relay drops
/// never show up as gaps among the messages people wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    /// Text, attachment, edit, delete, system and identity messages.
    Durable,
    /// Typing indicators and receipts.
    Ephemeral,
}

impl Stream {
    /// The stream's byte on the wire and in key derivation.
    pub fn to_byte(self) -> u8 {
        match self {
            Stream::Durable => 0,
            Stream::Ephemeral => 1,
        }
    }

    /// The stream for a wire byte; unknown values are [`DecodeError::UnknownTag`].
    pub fn from_byte(b: u8) -> Result<Self> {
        match b {
            0 => Ok(Stream::Durable),
            1 => Ok(Stream::Ephemeral),
            _ => Err(DecodeError::UnknownTag.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn kinds_have_fixed_bytes_and_streams() {
        let all = [
            (MessageKind::Text, 1, false),
            (MessageKind::Attachment, 2, false),
            (MessageKind::Edit, 3, false),
            (MessageKind::Delete, 4, false),
            (MessageKind::Typing, 5, true),
            (MessageKind::Receipt, 6, true),
            (MessageKind::System, 7, false),
            (MessageKind::Identity, 8, false),
        ];
        for (kind, byte, ephemeral) in all {
            assert_eq!(kind.to_byte(), byte);
            assert_eq!(MessageKind::from_byte(byte).unwrap(), kind);
            assert_eq!(kind.is_ephemeral(), ephemeral);
            let stream = if ephemeral {
                Stream::Ephemeral
            } else {
                Stream::Durable
            };
            assert_eq!(kind.stream(), stream);
        }
        assert!(!MessageKind::System.visitor_may_send() && MessageKind::System.member_may_send());
        assert!(
            MessageKind::Identity.visitor_may_send() && !MessageKind::Identity.member_may_send()
        );
        for bad in [0u8, 9, 255] {
            assert_eq!(
                MessageKind::from_byte(bad),
                Err(Error::Decode(DecodeError::UnknownTag))
            );
        }
        assert_eq!(Stream::from_byte(1).unwrap(), Stream::Ephemeral);
        assert_eq!(
            Stream::from_byte(2),
            Err(Error::Decode(DecodeError::UnknownTag))
        );
    }

    #[test]
    fn conversation_id_round_trips() {
        let mut rng = crate::test_rng(70);
        let id = ConversationId::random(&mut rng);
        let bytes = id.encode_to_vec();
        assert_eq!(bytes.len(), 16);
        assert_eq!(ConversationId::decode_exact(&bytes).unwrap(), id);
        assert!(ConversationId::decode_exact(&bytes[..15]).is_err());
        assert_ne!(ConversationId::random(&mut rng), id);
    }
}
