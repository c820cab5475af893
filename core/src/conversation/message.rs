//! Conversation messages: header, AEAD ciphertext of the padded content, sender signature.
//!
//! ```text
//! header    = version u8 || suite u8 || object_type u8 (8) || conversation[16] || epoch u32
//!             || sender[32] || instance[8] || stream u8 || counter u32 || kind u8   (69 bytes)
//! context   = team_id[16] || epoch_record_hash[32]         (known to every participant, not sent)
//! message   = header || ciphertext_len u32 || ciphertext || signature[64]
//! ciphertext = ChaCha20-Poly1305(message key, nonce, aad = header || context, padded content)
//! signature = Sign(sender identity, "sotto/v1/sig/message\0" || header || ciphertext_len
//!                  || SHA-256(ciphertext) || context)
//! ```
//!
//! Everyone in an epoch holds the epoch secret and could derive any sender's chain, so the AEAD
//! only keeps outsiders out; the signature is what binds a message to its sender (G3). Both bind
//! the team and the exact epoch record the message belongs to ([`MessageContext`]), so a message
//! cannot be replayed into another team's conversation that reuses the conversation id or the
//! epoch secret. Receiving is therefore split into steps whose types enforce the order:
//! [`ParsedMessage::decode`] (structure and bounds only), [`ParsedMessage::verify`] (signature,
//! no secret needed) and [`VerifiedMessage::decrypt`], which is the only step that touches a
//! chain and commits it only when the AEAD and the padding check pass.

use core::fmt;

use zeroize::Zeroizing;

use super::epoch::EpochRecord;
use super::grant::epoch_record_hash;
use super::padding::{self, is_bucket};
use super::ratchet::{ChainId, Gap, MAX_COUNTER, ReceiverChain, SenderChain};
use super::{ConversationId, Instance, MessageKind, Stream};
use crate::codec::{Reader, Writer};
use crate::crypto::aead::{self, TAG_LEN};
use crate::crypto::sign::{Signature, SignatureContext, VerifyingKey};
use crate::device::{Device, DeviceId};
use crate::error::{DecodeError, MessageError};
use crate::team::TeamId;
use crate::wire::{ObjectType, read_header, write_header};
use crate::{Error, Result};

/// Largest message content, before padding. Files go in attachments, so 64 KiB is ample for
/// text, edits and the attachment references, and bounds what a receiver allocates.
pub const MAX_CONTENT_LEN: usize = 65_536;
/// Length of the header, envelope included.
pub const HEADER_LEN: usize = 3 + 16 + 4 + 32 + 8 + 1 + 4 + 1;
/// Largest ciphertext: the padded size of [`MAX_CONTENT_LEN`] plus the tag.
pub const MAX_CIPHERTEXT_LEN: usize = 67_584 + TAG_LEN;
/// Length of the signature that ends a message.
pub const SIGNATURE_LEN: usize = 64;
/// Largest encoded message.
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + 4 + MAX_CIPHERTEXT_LEN + SIGNATURE_LEN;
const CIPHERTEXT_OFFSET: usize = HEADER_LEN + 4;
/// Length of the context bytes appended to the associated data and the signed statement.
pub const CONTEXT_LEN: usize = 16 + 32;
/// Length of the statement a sender signs: header, ciphertext length, ciphertext digest,
/// context.
pub const STATEMENT_LEN: usize = CIPHERTEXT_OFFSET + 32 + CONTEXT_LEN;

/// What a message belongs to beyond its header: the team and the epoch record. Both sides know
/// it (the receiver verified the record, the sender opened or verified it) and it is never
/// sent; it enters the AEAD's associated data and the signed statement as
/// `team_id[16] || epoch_record_hash[32]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageContext {
    /// The conversation of the epoch record (checked against the header).
    pub conversation: ConversationId,
    /// The epoch of the record (checked against the header).
    pub epoch: u32,
    /// The team the conversation is with.
    pub team: TeamId,
    /// [`epoch_record_hash`] of the epoch's record.
    pub record_hash: [u8; 32],
}

impl MessageContext {
    /// The context of messages in the epoch `record` opens.
    pub fn of(record: &EpochRecord) -> Self {
        MessageContext {
            conversation: record.conversation,
            epoch: record.epoch,
            team: record.team,
            record_hash: epoch_record_hash(record),
        }
    }

    /// `team_id || record_hash`.
    fn bytes(&self) -> [u8; CONTEXT_LEN] {
        let mut out = [0u8; CONTEXT_LEN];
        let (team, hash) = out.split_at_mut(16);
        team.copy_from_slice(&self.team.0);
        hash.copy_from_slice(&self.record_hash);
        out
    }

    /// Whether the header is of this context's conversation and epoch.
    fn covers(&self, header: &MessageHeader) -> bool {
        header.conversation == self.conversation && header.epoch == self.epoch
    }

    /// The associated data: `header || team_id || record_hash`.
    fn aad(&self, header: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(HEADER_LEN + CONTEXT_LEN);
        aad.extend_from_slice(header);
        aad.extend_from_slice(&self.bytes());
        aad
    }
}

/// The statement a sender signs: `header || ciphertext_len || SHA-256(ciphertext) || context`.
/// Signing a digest instead of the ciphertext keeps Ed25519's two SHA-512 passes short whatever
/// the message size; SHA-256 (hardware-accelerated on most CPUs) binds the ciphertext just as
/// well.
fn statement(
    header_and_len: &[u8],
    digest: &[u8; 32],
    context: &MessageContext,
) -> [u8; STATEMENT_LEN] {
    let mut out = [0u8; STATEMENT_LEN];
    let (prefix, rest) = out.split_at_mut(CIPHERTEXT_OFFSET);
    let (hash, ctx) = rest.split_at_mut(32);
    let n = header_and_len.len().min(CIPHERTEXT_OFFSET);
    if let (Some(dst), Some(src)) = (prefix.get_mut(..n), header_and_len.get(..n)) {
        dst.copy_from_slice(src);
    }
    hash.copy_from_slice(digest);
    ctx.copy_from_slice(&context.bytes());
    out
}

fn digest(ciphertext: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(ciphertext).into()
}

/// The clear part of a message: who sent it where, at which counter, and what kind it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageHeader {
    /// The conversation.
    pub conversation: ConversationId,
    /// The epoch whose secret the sender chain comes from.
    pub epoch: u32,
    /// The sending device.
    pub sender: DeviceId,
    /// The installation of the sending device whose chain this is.
    pub instance: Instance,
    /// The position in the sender's chain for this kind's stream.
    pub counter: u32,
    /// What the message is.
    pub kind: MessageKind,
}

impl MessageHeader {
    /// The stream the kind travels on.
    pub fn stream(&self) -> Stream {
        self.kind.stream()
    }

    /// The sender chain the message belongs to.
    pub fn chain(&self) -> ChainId {
        ChainId {
            conversation: self.conversation,
            epoch: self.epoch,
            sender: self.sender,
            instance: self.instance,
            stream: self.stream(),
        }
    }

    fn write(&self, w: &mut Writer) {
        write_header(w, ObjectType::Message);
        w.put(&self.conversation);
        w.u32(self.epoch);
        w.put(&self.sender);
        w.put(&self.instance);
        w.u8(self.stream().to_byte());
        w.u32(self.counter);
        w.u8(self.kind.to_byte());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        read_header(r, ObjectType::Message)?;
        let conversation = r.get()?;
        let epoch = r.u32()?;
        let sender = r.get()?;
        let instance = r.get()?;
        let stream = Stream::from_byte(r.u8()?)?;
        let counter = r.u32()?;
        let kind = MessageKind::from_byte(r.u8()?)?;
        // The stream byte is redundant with the kind; requiring agreement keeps one encoding
        // per header. Counter u32::MAX is never produced (it marks an exhausted chain).
        if stream != kind.stream() || counter > MAX_COUNTER {
            return Err(DecodeError::InvalidValue.into());
        }
        Ok(MessageHeader {
            conversation,
            epoch,
            sender,
            instance,
            counter,
            kind,
        })
    }

    /// The header's 69 bytes, as sent.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(HEADER_LEN);
        self.write(&mut w);
        w.into_bytes()
    }
}

/// Encrypts and signs a message of `kind` on `chain` with `device`, the chain's sender, in the
/// epoch `context` describes.
///
/// Fails with [`MessageError::WrongChain`] if `device` is not the chain's sender, `kind` does
/// not travel on the chain's stream or `context` is of another conversation or epoch,
/// [`MessageError::KindNotAllowed`] if the device's side may not send `kind` (receivers would
/// refuse it), [`Error::InvalidLength`] if `content` is longer than [`MAX_CONTENT_LEN`], and
/// [`MessageError::ChainExhausted`] at the chain's end. No counter is used unless the message
/// is produced.
pub fn seal_message(
    chain: &mut SenderChain,
    device: &Device,
    kind: MessageKind,
    content: &[u8],
    context: &MessageContext,
) -> Result<Vec<u8>> {
    let id = chain.id();
    if device.id() != id.sender
        || kind.stream() != id.stream
        || id.conversation != context.conversation
        || id.epoch != context.epoch
    {
        return Err(MessageError::WrongChain.into());
    }
    let allowed = match device.kind() {
        crate::device::DeviceKind::Visitor => kind.visitor_may_send(),
        _ => kind.member_may_send(),
    };
    if !allowed {
        return Err(MessageError::KindNotAllowed.into());
    }
    seal_signed_by(
        chain,
        |m| device.sign(SignatureContext::Message, m),
        kind,
        content,
        context,
    )
}

/// [`seal_message`] without the checks on the signer and the kind, so tests can build what a
/// malicious participant would.
pub(crate) fn seal_signed_by(
    chain: &mut SenderChain,
    sign: impl FnOnce(&[u8]) -> Signature,
    kind: MessageKind,
    content: &[u8],
    context: &MessageContext,
) -> Result<Vec<u8>> {
    // Checked before a key is taken, so a refused message leaves no gap.
    let padded = padding::pad(content, MAX_CONTENT_LEN)?;
    let (counter, key) = chain.next_message_key()?;
    let id = chain.id();
    let header = MessageHeader {
        conversation: id.conversation,
        epoch: id.epoch,
        sender: id.sender,
        instance: id.instance,
        counter,
        kind,
    };
    let mut w = Writer::with_capacity(CIPHERTEXT_OFFSET + padded.len() + TAG_LEN + SIGNATURE_LEN);
    header.write(&mut w);
    let aad = context.aad(&header.to_bytes());
    let ciphertext = aead::seal(key.key(), key.nonce(), &aad, &padded);
    w.bytes_u32(&ciphertext);
    let mut bytes = w.into_bytes();
    let signature = sign(&statement(&bytes, &digest(&ciphertext), context));
    bytes.extend_from_slice(signature.as_bytes());
    Ok(bytes)
}

/// A structurally valid message whose signature has not been checked yet.
#[derive(Clone)]
pub struct ParsedMessage {
    header: MessageHeader,
    /// `header || ciphertext_len || ciphertext`.
    signed: Vec<u8>,
    /// SHA-256 of the ciphertext, which the signed statement holds.
    digest: [u8; 32],
    signature: Signature,
}

impl ParsedMessage {
    /// Parses a message from untrusted bytes: header fields, ciphertext length (at most
    /// [`MAX_CIPHERTEXT_LEN`], and the size of a padding bucket plus the tag), signature, no
    /// trailing bytes. Nothing is verified or decrypted.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let header = MessageHeader::read(&mut r)?;
        let ciphertext = r.bytes_u32(MAX_CIPHERTEXT_LEN)?;
        let padded_len = ciphertext.len().saturating_sub(TAG_LEN);
        if ciphertext.len() < TAG_LEN || !is_bucket(padded_len) {
            return Err(DecodeError::InvalidValue.into());
        }
        let signature = Signature::from_bytes(r.array()?);
        r.finish()?;
        let signed = bytes
            .get(..CIPHERTEXT_OFFSET + ciphertext.len())
            .ok_or(DecodeError::Truncated)?
            .to_vec();
        Ok(ParsedMessage {
            header,
            signed,
            digest: digest(ciphertext),
            signature,
        })
    }

    /// The header, which the relay also sees.
    pub fn header(&self) -> &MessageHeader {
        &self.header
    }

    /// The ciphertext, as the relay sees it.
    pub fn ciphertext(&self) -> &[u8] {
        self.signed.get(CIPHERTEXT_OFFSET..).unwrap_or_default()
    }

    /// Checks the signature against the sender's identity key (from the team chain or the
    /// conversation's visitor devices), in the epoch `context` describes. A key whose device id
    /// is not the header's sender, or a context of another team or epoch record, is a
    /// [`Error::BadSignature`] like any other wrong key; a context of another conversation or
    /// epoch number is [`MessageError::WrongChain`].
    pub fn verify(
        self,
        sender: &VerifyingKey,
        context: &MessageContext,
    ) -> Result<VerifiedMessage> {
        self.check_signature(sender, context)?;
        Ok(VerifiedMessage {
            message: self,
            context: *context,
        })
    }

    pub(super) fn check_signature(
        &self,
        sender: &VerifyingKey,
        context: &MessageContext,
    ) -> Result<()> {
        if !context.covers(&self.header) {
            return Err(MessageError::WrongChain.into());
        }
        if DeviceId::from_identity(sender) != self.header.sender {
            return Err(Error::BadSignature);
        }
        sender.verify(
            SignatureContext::Message,
            &self.statement(context),
            &self.signature,
        )
    }

    /// The bytes the signature covers in `context`, without the signature label.
    pub(super) fn statement(&self, context: &MessageContext) -> [u8; STATEMENT_LEN] {
        statement(&self.signed, &self.digest, context)
    }

    pub(super) fn signature(&self) -> &Signature {
        &self.signature
    }

    /// For batch verification, which checks signatures without [`ParsedMessage::verify`].
    pub(super) fn into_verified(self, context: MessageContext) -> VerifiedMessage {
        VerifiedMessage {
            message: self,
            context,
        }
    }

    fn header_bytes(&self) -> &[u8] {
        self.signed.get(..HEADER_LEN).unwrap_or_default()
    }
}

impl fmt::Debug for ParsedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedMessage")
            .field("header", &self.header)
            .field("ciphertext_len", &self.ciphertext().len())
            .finish()
    }
}

/// A message whose signature verified: it was sent by its header's sender, unaltered, in the
/// epoch of its context.
#[derive(Clone, Debug)]
pub struct VerifiedMessage {
    message: ParsedMessage,
    context: MessageContext,
}

impl VerifiedMessage {
    /// The header.
    pub fn header(&self) -> &MessageHeader {
        &self.message.header
    }

    /// Decrypts with the receiver chain for the message's sender, instance and stream.
    ///
    /// Fails with [`MessageError::WrongChain`] if `chain` is another chain,
    /// [`MessageError::Duplicate`] or [`MessageError::TooFarAhead`] from the chain,
    /// [`Error::DecryptionFailed`] if the AEAD fails, or a decode error if the padding is
    /// malformed. The chain changes only on success.
    pub fn decrypt(&self, chain: &mut ReceiverChain) -> Result<OpenedMessage> {
        let header = self.message.header;
        if *chain.id() != header.chain() {
            return Err(MessageError::WrongChain.into());
        }
        let aad = self.context.aad(self.message.header_bytes());
        let ciphertext = self.message.ciphertext();
        let (content, gap) = chain.receive(header.counter, |key| {
            let padded = Zeroizing::new(aead::open(key.key(), key.nonce(), &aad, ciphertext)?);
            Ok(Zeroizing::new(
                padding::unpad(&padded, MAX_CONTENT_LEN)?.to_vec(),
            ))
        })?;
        Ok(OpenedMessage {
            header,
            content,
            gap,
        })
    }
}

/// A decrypted message. The content is zeroized on drop and not shown by Debug.
pub struct OpenedMessage {
    header: MessageHeader,
    content: Zeroizing<Vec<u8>>,
    gap: Gap,
}

impl OpenedMessage {
    /// The header.
    pub fn header(&self) -> &MessageHeader {
        &self.header
    }

    /// The content, unpadded.
    pub fn content(&self) -> &[u8] {
        &self.content
    }

    /// The content, taking ownership.
    pub fn into_content(self) -> Zeroizing<Vec<u8>> {
        self.content
    }

    /// Which counters of this chain this message jumped over or made unreadable.
    pub fn gap(&self) -> &Gap {
        &self.gap
    }
}

impl fmt::Debug for OpenedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedMessage")
            .field("header", &self.header)
            .field("content", &"[redacted]")
            .field("gap", &self.gap)
            .finish()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::crypto::secret::SecretBytes;
    use crate::device::DeviceKind;

    pub(crate) struct Party {
        pub(crate) device: Device,
        pub(crate) durable: SenderChain,
        pub(crate) ephemeral: SenderChain,
    }

    pub(crate) const CONVERSATION: ConversationId = ConversationId([5; 16]);
    pub(crate) const EPOCH: u32 = 2;

    pub(crate) fn epoch_secret() -> SecretBytes<32> {
        SecretBytes::new([42; 32])
    }

    pub(crate) const INSTANCE: Instance = Instance([6; 8]);

    pub(crate) fn context() -> MessageContext {
        MessageContext {
            conversation: CONVERSATION,
            epoch: EPOCH,
            team: TeamId([7; 16]),
            record_hash: [8; 32],
        }
    }

    pub(crate) fn chain_id(sender: DeviceId, stream: Stream) -> ChainId {
        ChainId {
            conversation: CONVERSATION,
            epoch: EPOCH,
            sender,
            instance: INSTANCE,
            stream,
        }
    }

    pub(crate) fn party(seed: u64, kind: DeviceKind) -> Party {
        let device = Device::generate(kind, &mut crate::test_rng(seed), 1);
        let s = epoch_secret();
        Party {
            durable: SenderChain::new(&s, chain_id(device.id(), Stream::Durable)),
            ephemeral: SenderChain::new(&s, chain_id(device.id(), Stream::Ephemeral)),
            device,
        }
    }

    pub(crate) fn receiver(of: &Party, stream: Stream) -> ReceiverChain {
        ReceiverChain::new(&epoch_secret(), chain_id(of.device.id(), stream))
    }

    impl Party {
        pub(crate) fn send(&mut self, kind: MessageKind, content: &[u8]) -> Vec<u8> {
            let chain = if kind.is_ephemeral() {
                &mut self.ephemeral
            } else {
                &mut self.durable
            };
            seal_message(chain, &self.device, kind, content, &context()).unwrap()
        }

        pub(crate) fn key(&self) -> VerifyingKey {
            *self.device.record().identity()
        }
    }

    fn open(bytes: &[u8], key: &VerifyingKey, chain: &mut ReceiverChain) -> Result<OpenedMessage> {
        ParsedMessage::decode(bytes)?
            .verify(key, &context())?
            .decrypt(chain)
    }

    #[test]
    fn messages_round_trip_for_every_kind() {
        let mut alice = party(1, DeviceKind::Visitor);
        let mut durable = receiver(&alice, Stream::Durable);
        let mut ephemeral = receiver(&alice, Stream::Ephemeral);
        let kinds = [
            MessageKind::Text,
            MessageKind::Attachment,
            MessageKind::Edit,
            MessageKind::Delete,
            MessageKind::Typing,
            MessageKind::Receipt,
            MessageKind::Identity,
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            let content = format!("message {i}");
            let bytes = alice.send(kind, content.as_bytes());
            assert_eq!(bytes.len(), HEADER_LEN + 4 + 256 + TAG_LEN + SIGNATURE_LEN);
            assert_eq!(&bytes[..3], &[1, 1, 8]);
            let chain = if kind.is_ephemeral() {
                &mut ephemeral
            } else {
                &mut durable
            };
            let opened = open(&bytes, &alice.key(), chain).unwrap();
            assert_eq!(opened.content(), content.as_bytes());
            assert_eq!(opened.header().kind, kind);
            assert_eq!(opened.header().sender, alice.device.id());
            assert!(opened.gap().is_empty());
        }
        assert_eq!(durable.next_counter(), 5);
        assert_eq!(ephemeral.next_counter(), 2);
    }

    #[test]
    fn header_layout_is_as_specified() {
        let mut alice = party(2, DeviceKind::Member);
        alice.send(MessageKind::Text, b"a");
        let bytes = alice.send(MessageKind::Text, b"b");
        let id = alice.device.id();
        let mut expected = vec![1u8, 1, 8];
        expected.extend_from_slice(&[5; 16]);
        expected.extend_from_slice(&2u32.to_be_bytes());
        expected.extend_from_slice(&id.0);
        expected.extend_from_slice(&[6; 8]);
        expected.push(0);
        expected.extend_from_slice(&1u32.to_be_bytes());
        expected.push(1);
        assert_eq!(expected.len(), HEADER_LEN);
        assert_eq!(&bytes[..HEADER_LEN], &expected[..]);
        assert_eq!(
            &bytes[HEADER_LEN..CIPHERTEXT_OFFSET],
            &((256 + TAG_LEN) as u32).to_be_bytes()
        );
        // The signature covers header || length || SHA-256(ciphertext) || team || record hash
        // under the message label.
        let (signed, sig) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
        let sig = Signature::from_slice(sig).unwrap();
        let mut labelled = b"sotto/v1/sig/message\0".to_vec();
        labelled.extend_from_slice(&signed[..CIPHERTEXT_OFFSET]);
        {
            use sha2::{Digest, Sha256};
            labelled.extend_from_slice(&Sha256::digest(&signed[CIPHERTEXT_OFFSET..]));
        }
        labelled.extend_from_slice(&[7; 16]);
        labelled.extend_from_slice(&[8; 32]);
        alice.key().verify_unlabelled(&labelled, &sig).unwrap();
        // The AEAD's associated data is header || team || record hash.
        let mut replay = SenderChain::new(&epoch_secret(), chain_id(id, Stream::Durable));
        replay.next_message_key().unwrap();
        let (_, k0) = replay.next_message_key().unwrap();
        let mut aad = expected.clone();
        aad.extend_from_slice(&[7; 16]);
        aad.extend_from_slice(&[8; 32]);
        let padded = aead::open(k0.key(), k0.nonce(), &aad, &signed[CIPHERTEXT_OFFSET..]).unwrap();
        assert_eq!(padding::unpad(&padded, MAX_CONTENT_LEN).unwrap(), b"b");
    }

    #[test]
    fn any_altered_byte_is_refused_and_consumes_nothing() {
        let mut alice = party(3, DeviceKind::Visitor);
        let mut chain = receiver(&alice, Stream::Durable);
        let bytes = alice.send(MessageKind::Text, b"the invoice is attached");
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let mut t = bytes.clone();
                t[i] ^= bit;
                assert!(open(&t, &alice.key(), &mut chain).is_err(), "byte {i}");
            }
        }
        assert!(open(&bytes[..bytes.len() - 1], &alice.key(), &mut chain).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(open(&long, &alice.key(), &mut chain).is_err());
        assert_eq!(chain.next_counter(), 0);
        assert_eq!(
            open(&bytes, &alice.key(), &mut chain).unwrap().content(),
            b"the invoice is attached"
        );
    }

    #[test]
    fn another_participant_cannot_forge_a_message() {
        let alice = party(4, DeviceKind::Visitor);
        let mut bob = party(5, DeviceKind::Member);
        let mut chain = receiver(&alice, Stream::Durable);

        // Bob knows the epoch secret, so he can derive Alice's chain and encrypt as her; he can
        // only sign with his own key.
        let mut alice_chain = SenderChain::new(
            &epoch_secret(),
            chain_id(alice.device.id(), Stream::Durable),
        );
        let forged = seal_signed_by(
            &mut alice_chain,
            |m| bob.device.sign(SignatureContext::Message, m),
            MessageKind::Text,
            b"refund approved",
            &context(),
        )
        .unwrap();
        assert_eq!(
            open(&forged, &alice.key(), &mut chain).unwrap_err(),
            Error::BadSignature
        );
        // Checking against Bob's key fails too: he is not the header's sender.
        assert_eq!(
            open(&forged, &bob.key(), &mut chain).unwrap_err(),
            Error::BadSignature
        );
        // Nor can Bob relabel his own message as Alice's.
        let own = bob.send(MessageKind::Text, b"hi");
        let mut relabelled = own.clone();
        relabelled[23..55].copy_from_slice(&alice.device.id().0);
        assert_eq!(
            open(&relabelled, &alice.key(), &mut chain).unwrap_err(),
            Error::BadSignature
        );
        assert_eq!(chain.next_counter(), 0);
        // And seal_message refuses a device that is not the chain's sender.
        assert_eq!(
            seal_message(
                &mut alice_chain,
                &bob.device,
                MessageKind::Text,
                b"x",
                &context()
            )
            .unwrap_err(),
            Error::Message(MessageError::WrongChain)
        );
    }

    #[test]
    fn the_team_and_the_epoch_record_are_bound() {
        let mut alice = party(12, DeviceKind::Visitor);
        let bytes = alice.send(MessageKind::Text, b"pay invoice 7");
        let other_team = MessageContext {
            team: TeamId([9; 16]),
            ..context()
        };
        let other_record = MessageContext {
            record_hash: [9; 32],
            ..context()
        };
        for wrong in [other_team, other_record] {
            let parsed = ParsedMessage::decode(&bytes).unwrap();
            assert_eq!(
                parsed.verify(&alice.key(), &wrong).unwrap_err(),
                Error::BadSignature
            );
        }
        // Even with a valid signature (a verifier that skipped it), the AEAD refuses.
        let mut chain = receiver(&alice, Stream::Durable);
        let parsed = ParsedMessage::decode(&bytes).unwrap();
        let verified = parsed.into_verified(other_team);
        assert_eq!(
            verified.decrypt(&mut chain).unwrap_err(),
            Error::DecryptionFailed
        );
        assert_eq!(chain.next_counter(), 0);
        let another_epoch = MessageContext {
            epoch: EPOCH + 1,
            ..context()
        };
        assert_eq!(
            ParsedMessage::decode(&bytes)
                .unwrap()
                .verify(&alice.key(), &another_epoch)
                .unwrap_err(),
            Error::Message(MessageError::WrongChain)
        );
        assert_eq!(
            open(&bytes, &alice.key(), &mut chain).unwrap().content(),
            b"pay invoice 7"
        );
    }

    #[test]
    fn each_side_sends_only_its_kinds() {
        let mut visitor = party(13, DeviceKind::Visitor);
        let mut member = party(14, DeviceKind::Member);
        assert_eq!(
            seal_message(
                &mut visitor.durable,
                &visitor.device,
                MessageKind::System,
                b"sotto.note\0Assigned",
                &context()
            )
            .unwrap_err(),
            Error::Message(MessageError::KindNotAllowed)
        );
        assert_eq!(
            seal_message(
                &mut member.durable,
                &member.device,
                MessageKind::Identity,
                b"assertion",
                &context()
            )
            .unwrap_err(),
            Error::Message(MessageError::KindNotAllowed)
        );
        // No counter was taken.
        assert_eq!(visitor.durable.next_counter(), 0);
        assert_eq!(member.durable.next_counter(), 0);
        member.send(MessageKind::System, b"sotto.note\0Assigned");
        visitor.send(MessageKind::Identity, b"assertion");
    }

    #[test]
    fn two_instances_of_one_device_never_share_a_key() {
        let alice = party(15, DeviceKind::Visitor);
        let mut chains = [INSTANCE, Instance([7; 8])].map(|instance| {
            SenderChain::new(
                &epoch_secret(),
                ChainId {
                    instance,
                    ..chain_id(alice.device.id(), Stream::Durable)
                },
            )
        });
        let sent: Vec<Vec<u8>> = chains
            .iter_mut()
            .map(|c| {
                seal_message(c, &alice.device, MessageKind::Text, b"same", &context()).unwrap()
            })
            .collect();
        // Same device, epoch, counter and content: different ciphertexts.
        assert_eq!(sent[0][..55], sent[1][..55]);
        assert_ne!(sent[0][..HEADER_LEN], sent[1][..HEADER_LEN]);
        let (a, b) = (
            ParsedMessage::decode(&sent[0]).unwrap(),
            ParsedMessage::decode(&sent[1]).unwrap(),
        );
        assert_eq!(a.header().counter, b.header().counter);
        assert_ne!(a.ciphertext(), b.ciphertext());
        // Each opens on its own chain, and both are received.
        for m in [&a, &b] {
            let mut chain = ReceiverChain::new(&epoch_secret(), m.header().chain());
            m.clone()
                .verify(&alice.key(), &context())
                .unwrap()
                .decrypt(&mut chain)
                .unwrap();
        }
    }

    #[test]
    fn replays_are_refused_and_out_of_order_opens_exactly_once() {
        let mut alice = party(6, DeviceKind::Visitor);
        let mut chain = receiver(&alice, Stream::Durable);
        let sent: Vec<Vec<u8>> = (0..4)
            .map(|i| alice.send(MessageKind::Text, format!("m{i}").as_bytes()))
            .collect();
        let third = open(&sent[2], &alice.key(), &mut chain).unwrap();
        assert_eq!(third.gap().skipped, 0..2);
        assert_eq!(third.content(), b"m2");
        for i in [0usize, 3, 1] {
            let m = open(&sent[i], &alice.key(), &mut chain).unwrap();
            assert_eq!(m.content(), format!("m{i}").as_bytes());
        }
        for m in &sent {
            assert_eq!(
                open(m, &alice.key(), &mut chain).unwrap_err(),
                Error::Message(MessageError::Duplicate)
            );
        }
    }

    #[test]
    fn a_signed_message_that_fails_decryption_consumes_nothing() {
        let mut alice = party(7, DeviceKind::Visitor);
        let mut chain = receiver(&alice, Stream::Durable);
        // Signed by Alice but encrypted under a chain from another epoch secret.
        let mut wrong = SenderChain::new(
            &SecretBytes::new([1; 32]),
            chain_id(alice.device.id(), Stream::Durable),
        );
        let bad = seal_message(
            &mut wrong,
            &alice.device,
            MessageKind::Text,
            b"?",
            &context(),
        )
        .unwrap();
        let verified = ParsedMessage::decode(&bad)
            .unwrap()
            .verify(&alice.key(), &context())
            .unwrap();
        let before = chain.export();
        assert_eq!(
            verified.decrypt(&mut chain).unwrap_err(),
            Error::DecryptionFailed
        );
        assert_eq!(*chain.export(), *before);
        let good = alice.send(MessageKind::Text, b"ok");
        assert_eq!(
            open(&good, &alice.key(), &mut chain).unwrap().content(),
            b"ok"
        );
    }

    #[test]
    fn lost_ephemeral_messages_leave_no_gap_in_the_durable_stream() {
        let mut alice = party(8, DeviceKind::Visitor);
        let mut durable = receiver(&alice, Stream::Durable);
        let mut ephemeral = receiver(&alice, Stream::Ephemeral);
        let t0 = alice.send(MessageKind::Text, b"hello");
        let _lost = alice.send(MessageKind::Typing, b"typing");
        let r1 = alice.send(MessageKind::Receipt, b"read");
        let t1 = alice.send(MessageKind::Text, b"anyone?");
        assert!(
            open(&t0, &alice.key(), &mut durable)
                .unwrap()
                .gap()
                .is_empty()
        );
        let r = open(&r1, &alice.key(), &mut ephemeral).unwrap();
        assert_eq!(r.gap().skipped, 0..1);
        assert!(
            open(&t1, &alice.key(), &mut durable)
                .unwrap()
                .gap()
                .is_empty()
        );
        // A chain for the other stream is refused without being touched.
        assert_eq!(
            open(&t1, &alice.key(), &mut ephemeral).unwrap_err(),
            Error::Message(MessageError::WrongChain)
        );
        assert_eq!(
            seal_message(
                &mut alice.durable,
                &alice.device,
                MessageKind::Typing,
                b"",
                &context()
            )
            .unwrap_err(),
            Error::Message(MessageError::WrongChain)
        );
    }

    #[test]
    fn content_is_capped_at_64_kib_without_using_a_counter() {
        let mut alice = party(9, DeviceKind::Member);
        let mut chain = receiver(&alice, Stream::Durable);
        assert_eq!(
            seal_message(
                &mut alice.durable,
                &alice.device,
                MessageKind::Text,
                &vec![7; MAX_CONTENT_LEN + 1],
                &context()
            )
            .unwrap_err(),
            Error::InvalidLength
        );
        assert_eq!(alice.durable.next_counter(), 0);
        let max = alice.send(MessageKind::Text, &vec![7; MAX_CONTENT_LEN]);
        assert_eq!(max.len(), MAX_MESSAGE_LEN);
        let opened = open(&max, &alice.key(), &mut chain).unwrap();
        assert_eq!(opened.content().len(), MAX_CONTENT_LEN);
        assert!(opened.gap().is_empty());
    }

    #[test]
    fn decoder_checks_every_field() {
        let mut alice = party(10, DeviceKind::Visitor);
        let bytes = alice.send(MessageKind::Text, b"x");
        let err = |b: &[u8]| ParsedMessage::decode(b).unwrap_err();
        let with = |at: usize, v: &[u8]| {
            let mut b = bytes.clone();
            b[at..at + v.len()].copy_from_slice(v);
            b
        };
        assert_eq!(
            err(&with(0, &[2])),
            Error::Decode(DecodeError::UnknownVersion(2))
        );
        assert_eq!(
            err(&with(1, &[2])),
            Error::Decode(DecodeError::UnknownSuite(2))
        );
        assert_eq!(
            err(&with(2, &[7])),
            Error::Decode(DecodeError::UnexpectedObject {
                expected: 8,
                found: 7
            })
        );
        assert_eq!(err(&with(63, &[2])), Error::Decode(DecodeError::UnknownTag));
        assert_eq!(
            err(&with(63, &[1])),
            Error::Decode(DecodeError::InvalidValue)
        );
        assert_eq!(
            err(&with(64, &[0xff; 4])),
            Error::Decode(DecodeError::InvalidValue)
        );
        assert_eq!(err(&with(68, &[0])), Error::Decode(DecodeError::UnknownTag));
        assert_eq!(err(&with(68, &[9])), Error::Decode(DecodeError::UnknownTag));
        assert_eq!(
            err(&with(68, &[5])),
            Error::Decode(DecodeError::InvalidValue)
        );
        assert_eq!(
            err(&with(69, &((MAX_CIPHERTEXT_LEN + 1) as u32).to_be_bytes())),
            Error::Decode(DecodeError::LengthLimit)
        );
        // A ciphertext whose length no padding bucket produces.
        let mut odd = bytes[..HEADER_LEN].to_vec();
        odd.extend_from_slice(&300u32.to_be_bytes());
        odd.extend_from_slice(&[0; 300 + SIGNATURE_LEN]);
        assert_eq!(err(&odd), Error::Decode(DecodeError::InvalidValue));
        let mut tiny = bytes[..HEADER_LEN].to_vec();
        tiny.extend_from_slice(&8u32.to_be_bytes());
        tiny.extend_from_slice(&[0; 8 + SIGNATURE_LEN]);
        assert_eq!(err(&tiny), Error::Decode(DecodeError::InvalidValue));
        for cut in 0..bytes.len() {
            assert!(ParsedMessage::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(err(&long), Error::Decode(DecodeError::TrailingBytes));
        assert_eq!(ParsedMessage::decode(&bytes).unwrap().header().counter, 0);
    }

    #[test]
    fn debug_never_shows_content() {
        let mut alice = party(11, DeviceKind::Visitor);
        let mut chain = receiver(&alice, Stream::Durable);
        let bytes = alice.send(MessageKind::Text, b"card 4111111111111111");
        let parsed = ParsedMessage::decode(&bytes).unwrap();
        let shown_parsed = format!("{parsed:?}");
        let verified = parsed.verify(&alice.key(), &context()).unwrap();
        let opened = verified.decrypt(&mut chain).unwrap();
        let shown = format!("{opened:?} {verified:?} {shown_parsed}");
        assert!(!shown.contains("4111"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
