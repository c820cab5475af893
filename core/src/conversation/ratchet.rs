//! Sender chains: one symmetric ratchet per device and stream within an epoch (DESIGN 4.4).
//!
//! The chain key only moves forward, through a one-way HKDF step that also yields the message
//! key and nonce, so a device that is compromised later cannot recover keys it already used
//! (G7). Receivers keep the keys of counters they jumped over, within limits, so out-of-order
//! delivery decrypts while replays and excessive jumps are refused (G8).
//!
//! Receiving is transactional: [`ReceiverChain::receive`] derives what the counter needs from a
//! copy of the state and commits only after the caller's decryption succeeded, so a forged or
//! corrupted message cannot consume a counter or evict a kept key.

use core::fmt;
use core::ops::Range;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{ConversationId, Instance, Stream};
use crate::codec::{Decode, Encode, Reader, Writer};
use crate::crypto::aead::{AeadKey, NONCE_LEN, Nonce};
use crate::crypto::hkdf::Prk;
use crate::crypto::secret::SecretBytes;
use crate::device::DeviceId;
use crate::error::{DecodeError, MessageError};
use crate::sorted_map::SortedMap;
use crate::{Error, Result};

/// HKDF-Extract salt of a chain's initial key.
pub const CHAIN_SALT: &[u8] = b"sotto/v1/sender-chain";
/// HKDF-Expand info of every ratchet step.
pub const STEP_INFO: &[u8] = b"sotto/v1/sender-chain/step";
/// Most skipped message keys a receiver chain keeps; beyond this the oldest are discarded.
pub const MAX_SKIPPED_KEYS: usize = 2_000;
/// Most counters a receiver chain jumps over for one message.
pub const MAX_JUMP: u32 = 25_000;
/// The last counter a chain can use; `u32::MAX` marks an exhausted chain.
pub const MAX_COUNTER: u32 = u32::MAX - 1;
/// Length of an encoded [`ChainId`].
pub const CHAIN_ID_LEN: usize = 16 + 4 + 32 + 8 + 1;
/// Most installations ([`Instance`]s) of one sender a receiver keeps chains for in one epoch;
/// a message from one more is [`MessageError::TooManyInstances`], so a hostile sender cannot
/// make a receiver store unboundedly many chains.
pub const MAX_INSTANCES_PER_SENDER: usize = 8;

/// Format version of the chain state encodings (store only). Version 1 had no instance in the
/// chain id; such a state is refused as `unknown_version`.
const CHAIN_STATE_VERSION: u8 = 2;
/// State types (store only).
const SENDER_STATE: u8 = 1;
const RECEIVER_STATE: u8 = 2;
const CHAIN_KEY_LEN: usize = 32;
const MESSAGE_KEY_LEN: usize = 32;
const STEP_OUTPUT_LEN: usize = CHAIN_KEY_LEN + MESSAGE_KEY_LEN + NONCE_LEN;
/// Encoded length of one kept key: counter, key, nonce.
const KEPT_KEY_LEN: usize = 4 + MESSAGE_KEY_LEN + NONCE_LEN;
const SENDER_STATE_LEN: usize = 2 + CHAIN_ID_LEN + 4 + CHAIN_KEY_LEN;

/// Which chain: a sender's stream within one epoch of one conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChainId {
    /// The conversation.
    pub conversation: ConversationId,
    /// The epoch within the conversation.
    pub epoch: u32,
    /// The sending device.
    pub sender: DeviceId,
    /// The installation of the sending device.
    pub instance: Instance,
    /// Durable or ephemeral messages.
    pub stream: Stream,
}

impl Encode for ChainId {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.conversation);
        w.u32(self.epoch);
        w.put(&self.sender);
        w.put(&self.instance);
        w.u8(self.stream.to_byte());
    }
}

impl Decode for ChainId {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ChainId {
            conversation: r.get()?,
            epoch: r.u32()?,
            sender: r.get()?,
            instance: r.get()?,
            stream: Stream::from_byte(r.u8()?)?,
        })
    }
}

/// The ChaCha20-Poly1305 key and nonce for one message. Zeroized on drop, redacted in Debug.
#[derive(Clone)]
pub struct MessageKey {
    key: AeadKey,
    nonce: Nonce,
}

impl MessageKey {
    /// The AEAD key.
    pub fn key(&self) -> &AeadKey {
        &self.key
    }

    /// The nonce; unique because the key itself is never used for another message.
    pub fn nonce(&self) -> &Nonce {
        &self.nonce
    }
}

impl fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageKey([redacted])")
    }
}

/// `HKDF(salt = CHAIN_SALT, ikm = epoch secret, info = ChainId encoding)`: every chain of an epoch
/// starts from an independent key, so one device's chain says nothing about another's.
fn initial_chain_key(epoch_secret: &SecretBytes<32>, id: &ChainId) -> SecretBytes<32> {
    let mut info = Writer::with_capacity(CHAIN_ID_LEN);
    info.put(id);
    Prk::extract(CHAIN_SALT, epoch_secret.expose()).expand_secret(&info.into_bytes())
}

/// One ratchet step: `HKDF-Expand(prk = chain key, info = STEP_INFO, 76)` split into next chain
/// key, message key and nonce.
///
/// The chain key is already uniformly random, so it is used directly as the PRK (no Extract).
fn step(chain_key: &SecretBytes<32>) -> Result<(SecretBytes<32>, MessageKey)> {
    let hkdf = Hkdf::<Sha256>::from_prk(chain_key.expose()).map_err(|_| Error::InvalidLength)?;
    let mut out = Zeroizing::new([0u8; STEP_OUTPUT_LEN]);
    hkdf.expand(STEP_INFO, out.as_mut_slice())
        .map_err(|_| Error::InvalidLength)?;
    let (next, rest) = out.split_at(CHAIN_KEY_LEN);
    let (key, nonce) = rest.split_at(MESSAGE_KEY_LEN);
    Ok((
        SecretBytes::from_slice(next)?,
        MessageKey {
            key: AeadKey::from_slice(key)?,
            nonce: Nonce::from_slice(nonce)?,
        },
    ))
}

/// The sending side of a chain: the next counter and the chain key that yields its key.
pub struct SenderChain {
    id: ChainId,
    next: u32,
    chain_key: SecretBytes<32>,
}

impl SenderChain {
    /// The chain `id` derives from an epoch secret, at counter 0.
    pub fn new(epoch_secret: &SecretBytes<32>, id: ChainId) -> Self {
        SenderChain {
            id,
            next: 0,
            chain_key: initial_chain_key(epoch_secret, &id),
        }
    }

    /// Which chain this is.
    pub fn id(&self) -> &ChainId {
        &self.id
    }

    /// The counter the next message will carry.
    pub fn next_counter(&self) -> u32 {
        self.next
    }

    /// The key for the next counter; the chain key it came from is erased.
    pub fn next_message_key(&mut self) -> Result<(u32, MessageKey)> {
        if self.next > MAX_COUNTER {
            return Err(MessageError::ChainExhausted.into());
        }
        let (chain_key, key) = step(&self.chain_key)?;
        let counter = self.next;
        self.chain_key = chain_key;
        self.next = counter.saturating_add(1);
        Ok((counter, key))
    }

    /// The state for the client's encrypted store, in a buffer zeroized on drop.
    pub fn export(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(SENDER_STATE_LEN);
        self.encode(&mut w);
        Zeroizing::new(w.into_bytes())
    }

    /// Restores the output of [`SenderChain::export`].
    pub fn import(bytes: &[u8]) -> Result<Self> {
        Self::decode_exact(bytes)
    }
}

/// The encoding holds the chain key: prefer [`SenderChain::export`], whose buffer is zeroized.
impl Encode for SenderChain {
    fn encode(&self, w: &mut Writer) {
        w.state_header_version(CHAIN_STATE_VERSION, SENDER_STATE);
        w.put(&self.id);
        w.u32(self.next);
        w.array(self.chain_key.expose());
    }
}

impl Decode for SenderChain {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.state_header_version(CHAIN_STATE_VERSION, SENDER_STATE)?;
        Ok(SenderChain {
            id: r.get()?,
            next: r.u32()?,
            chain_key: SecretBytes::new(r.array()?),
        })
    }
}

impl fmt::Debug for SenderChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderChain")
            .field("id", &self.id)
            .field("next", &self.next)
            .field("chain_key", &"[redacted]")
            .finish()
    }
}

/// What receiving one message revealed about the messages around it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gap {
    /// Counters this message jumped over. Their keys are kept (unless also listed in
    /// `discarded`), so those messages still decrypt when they arrive.
    pub skipped: Range<u32>,
    /// Counters whose keys this message caused to be discarded to stay within
    /// [`MAX_SKIPPED_KEYS`]: those messages can no longer be read. Increasing and coalesced.
    pub discarded: Vec<Range<u32>>,
}

impl Gap {
    /// Whether the message arrived exactly where expected, or filled an earlier gap.
    pub fn is_empty(&self) -> bool {
        self.skipped.is_empty() && self.discarded.is_empty()
    }

    /// How many counters were jumped over.
    pub fn skipped_count(&self) -> u32 {
        self.skipped.end.saturating_sub(self.skipped.start)
    }

    /// How many messages became unreadable.
    pub fn discarded_count(&self) -> u64 {
        self.discarded
            .iter()
            .map(|r| u64::from(r.end.saturating_sub(r.start)))
            .sum()
    }
}

/// Appends `range` to increasing, coalesced `ranges`.
fn push_range(ranges: &mut Vec<Range<u32>>, range: Range<u32>) {
    if range.is_empty() {
        return;
    }
    match ranges.last_mut() {
        Some(last) if last.end == range.start => last.end = range.end,
        _ => ranges.push(range),
    }
}

/// A receive derived from a copy of the state, applied only once decryption succeeded.
enum Staged {
    /// The counter's key was kept from an earlier jump.
    Kept { counter: u32, key: MessageKey },
    /// The counter is at or ahead of the chain.
    Ahead {
        counter: u32,
        key: MessageKey,
        chain_key: SecretBytes<32>,
        kept: Vec<(u32, MessageKey)>,
        dropped: Range<u32>,
    },
}

impl Staged {
    fn key(&self) -> &MessageKey {
        match self {
            Staged::Kept { key, .. } | Staged::Ahead { key, .. } => key,
        }
    }
}

/// The receiving side of another device's chain: the next expected counter, the chain key for
/// it, and the keys of counters jumped over that have not arrived yet.
pub struct ReceiverChain {
    id: ChainId,
    next: u32,
    chain_key: SecretBytes<32>,
    skipped: SortedMap<u32, MessageKey>,
}

impl ReceiverChain {
    /// The chain `id` derives from an epoch secret, expecting counter 0.
    pub fn new(epoch_secret: &SecretBytes<32>, id: ChainId) -> Self {
        ReceiverChain {
            id,
            next: 0,
            chain_key: initial_chain_key(epoch_secret, &id),
            skipped: SortedMap::new(),
        }
    }

    /// Which chain this is.
    pub fn id(&self) -> &ChainId {
        &self.id
    }

    /// The lowest counter not yet reached.
    pub fn next_counter(&self) -> u32 {
        self.next
    }

    /// Counters jumped over whose messages have not arrived and can still be decrypted.
    pub fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        self.skipped.keys().copied()
    }

    /// How many counters [`ReceiverChain::missing`] yields.
    pub fn missing_count(&self) -> usize {
        self.skipped.len()
    }

    /// Hands the key for `counter` to `open` and, only if `open` succeeds, consumes the counter:
    /// erases its key, advances the chain past it, keeps keys for the counters it jumped over
    /// and reports them.
    ///
    /// Fails with [`MessageError::Duplicate`] if the counter was already consumed (or its kept
    /// key discarded), and [`MessageError::TooFarAhead`] if it lies more than [`MAX_JUMP`]
    /// counters beyond [`ReceiverChain::next_counter`]. On any failure, including one returned
    /// by `open`, the chain is unchanged.
    pub fn receive<T>(
        &mut self,
        counter: u32,
        open: impl FnOnce(&MessageKey) -> Result<T>,
    ) -> Result<(T, Gap)> {
        let staged = self.stage(counter)?;
        let value = open(staged.key())?;
        Ok((value, self.commit(staged)))
    }

    fn stage(&self, counter: u32) -> Result<Staged> {
        if counter > MAX_COUNTER {
            return Err(DecodeError::InvalidValue.into());
        }
        if counter < self.next {
            return match self.skipped.get(&counter) {
                Some(key) => Ok(Staged::Kept {
                    counter,
                    key: key.clone(),
                }),
                None => Err(MessageError::Duplicate.into()),
            };
        }
        if counter - self.next > MAX_JUMP {
            return Err(MessageError::TooFarAhead.into());
        }
        // Keys that would be evicted by this very jump are never stored.
        let keep_from = counter
            .saturating_sub(MAX_SKIPPED_KEYS as u32)
            .max(self.next);
        let mut chain_key = self.chain_key.clone();
        let mut kept = Vec::with_capacity((counter - keep_from) as usize);
        for skipped in self.next..counter {
            let (next_key, key) = step(&chain_key)?;
            chain_key = next_key;
            if skipped >= keep_from {
                kept.push((skipped, key));
            }
        }
        let (next_key, key) = step(&chain_key)?;
        Ok(Staged::Ahead {
            counter,
            key,
            chain_key: next_key,
            kept,
            dropped: self.next..keep_from,
        })
    }

    fn commit(&mut self, staged: Staged) -> Gap {
        match staged {
            Staged::Kept { counter, .. } => {
                self.skipped.remove(&counter);
                Gap::default()
            }
            Staged::Ahead {
                counter,
                chain_key,
                kept,
                dropped,
                ..
            } => {
                let skipped = self.next..counter;
                self.chain_key = chain_key;
                self.next = counter.saturating_add(1);
                self.skipped.extend(kept);
                // Keys are only ever added above all kept ones, so the smallest counters are
                // the oldest keys.
                let mut discarded = Vec::new();
                let excess = self.skipped.len().saturating_sub(MAX_SKIPPED_KEYS);
                for (c, _) in self.skipped.drain_first(excess) {
                    push_range(&mut discarded, c..c.saturating_add(1));
                }
                push_range(&mut discarded, dropped);
                Gap { skipped, discarded }
            }
        }
    }

    /// The state for the client's encrypted store, in a buffer zeroized on drop.
    pub fn export(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(
            SENDER_STATE_LEN + 2 + self.skipped.len().saturating_mul(KEPT_KEY_LEN),
        );
        self.encode(&mut w);
        Zeroizing::new(w.into_bytes())
    }

    /// Restores the output of [`ReceiverChain::export`].
    pub fn import(bytes: &[u8]) -> Result<Self> {
        Self::decode_exact(bytes)
    }
}

/// The encoding holds chain and message keys: prefer [`ReceiverChain::export`], whose buffer is
/// zeroized.
impl Encode for ReceiverChain {
    fn encode(&self, w: &mut Writer) {
        w.state_header_version(CHAIN_STATE_VERSION, RECEIVER_STATE);
        w.put(&self.id);
        w.u32(self.next);
        w.array(self.chain_key.expose());
        // At most MAX_SKIPPED_KEYS entries by construction, so the count fits a u16.
        w.u16(self.skipped.len() as u16);
        for (counter, key) in &self.skipped {
            w.u32(*counter);
            w.array(key.key.secret_bytes().expose());
            w.array(&key.nonce.0);
        }
    }
}

impl Decode for ReceiverChain {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.state_header_version(CHAIN_STATE_VERSION, RECEIVER_STATE)?;
        let id = r.get()?;
        let next = r.u32()?;
        let chain_key = SecretBytes::new(r.array()?);
        let count = r.count_u16(MAX_SKIPPED_KEYS, KEPT_KEY_LEN)?;
        let mut skipped = SortedMap::new();
        let mut floor = 0u32;
        for _ in 0..count {
            let counter = r.u32()?;
            // Strictly increasing and below `next`: one encoding per state, and no key for a
            // counter the chain has not passed.
            if counter < floor || counter >= next {
                return Err(DecodeError::InvalidValue.into());
            }
            floor = counter.saturating_add(1);
            let key = MessageKey {
                key: AeadKey::new(SecretBytes::new(r.array()?)),
                nonce: Nonce(r.array()?),
            };
            skipped.insert(counter, key);
        }
        Ok(ReceiverChain {
            id,
            next,
            chain_key,
            skipped,
        })
    }
}

impl fmt::Debug for ReceiverChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverChain")
            .field("id", &self.id)
            .field("next", &self.next)
            .field("missing", &self.skipped.len())
            .field("keys", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_id(stream: Stream) -> ChainId {
        ChainId {
            conversation: ConversationId([1; 16]),
            epoch: 3,
            sender: DeviceId([2; 32]),
            instance: Instance([4; 8]),
            stream,
        }
    }

    fn secret(b: u8) -> SecretBytes<32> {
        SecretBytes::new([b; 32])
    }

    fn pair() -> (SenderChain, ReceiverChain) {
        let id = chain_id(Stream::Durable);
        (
            SenderChain::new(&secret(9), id),
            ReceiverChain::new(&secret(9), id),
        )
    }

    fn keys(sender: &mut SenderChain, n: usize) -> Vec<MessageKey> {
        (0..n)
            .map(|i| {
                let (c, k) = sender.next_message_key().unwrap();
                assert_eq!(c as usize, i);
                k
            })
            .collect()
    }

    fn same(a: &MessageKey, b: &MessageKey) -> bool {
        a.key.secret_bytes().ct_eq(b.key.secret_bytes()) && a.nonce == b.nonce
    }

    /// Receives `counter`, asserting the key matches what the sender used.
    fn expect(receiver: &mut ReceiverChain, counter: u32, sent: &MessageKey) -> Result<Gap> {
        receiver
            .receive(counter, |k| {
                assert!(same(k, sent), "counter {counter}");
                Ok(())
            })
            .map(|((), gap)| gap)
    }

    #[test]
    fn derivation_matches_the_documented_labels() {
        // Recomputed from PROTOCOL.md §8.2 with the hkdf crate directly.
        let id = chain_id(Stream::Ephemeral);
        let mut info = Vec::new();
        info.extend_from_slice(&[1; 16]);
        info.extend_from_slice(&3u32.to_be_bytes());
        info.extend_from_slice(&[2; 32]);
        info.extend_from_slice(&[4; 8]);
        info.push(1);
        let mut ck0 = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"sotto/v1/sender-chain"), &[9; 32])
            .expand(&info, &mut ck0)
            .unwrap();
        let mut out = [0u8; 76];
        Hkdf::<Sha256>::from_prk(&ck0)
            .unwrap()
            .expand(b"sotto/v1/sender-chain/step", &mut out)
            .unwrap();
        let mut out1 = [0u8; 76];
        Hkdf::<Sha256>::from_prk(&out[..32])
            .unwrap()
            .expand(b"sotto/v1/sender-chain/step", &mut out1)
            .unwrap();

        let mut chain = SenderChain::new(&secret(9), id);
        let (_, k0) = chain.next_message_key().unwrap();
        assert_eq!(k0.key.secret_bytes().expose(), &out[32..64]);
        assert_eq!(&k0.nonce.0, &out[64..76]);
        let (_, k1) = chain.next_message_key().unwrap();
        assert_eq!(k1.key.secret_bytes().expose(), &out1[32..64]);
        assert_eq!(&k1.nonce.0, &out1[64..76]);
        assert_eq!(chain.chain_key.expose(), &out1[..32]);
    }

    #[test]
    fn every_chain_parameter_separates_keys() {
        let base = chain_id(Stream::Durable);
        let first = |secret_byte: u8, id: ChainId| {
            SenderChain::new(&secret(secret_byte), id)
                .next_message_key()
                .unwrap()
                .1
        };
        let reference = first(9, base);
        let variants = [
            (8, base),
            (
                9,
                ChainId {
                    conversation: ConversationId([0; 16]),
                    ..base
                },
            ),
            (9, ChainId { epoch: 4, ..base }),
            (
                9,
                ChainId {
                    sender: DeviceId([3; 32]),
                    ..base
                },
            ),
            (
                9,
                ChainId {
                    instance: Instance([5; 8]),
                    ..base
                },
            ),
            (
                9,
                ChainId {
                    stream: Stream::Ephemeral,
                    ..base
                },
            ),
        ];
        for (i, (s, id)) in variants.into_iter().enumerate() {
            let k = first(s, id);
            assert!(
                !k.key.secret_bytes().ct_eq(reference.key.secret_bytes()),
                "variant {i}"
            );
            assert_ne!(k.nonce, reference.nonce, "variant {i}");
        }
        // Successive keys of one chain differ too.
        let mut chain = SenderChain::new(&secret(9), base);
        let a = chain.next_message_key().unwrap().1;
        let b = chain.next_message_key().unwrap().1;
        assert!(!same(&a, &b));
    }

    #[test]
    fn in_order_keys_match_and_replays_are_refused() {
        let (mut sender, mut receiver) = pair();
        let sent = keys(&mut sender, 5);
        for (i, k) in sent.iter().enumerate() {
            assert!(expect(&mut receiver, i as u32, k).unwrap().is_empty());
        }
        assert_eq!(receiver.next_counter(), 5);
        for c in 0..5 {
            assert_eq!(
                expect(&mut receiver, c, &sent[c as usize]).unwrap_err(),
                Error::Message(MessageError::Duplicate)
            );
        }
    }

    #[test]
    fn out_of_order_decrypts_exactly_once_and_gaps_are_reported() {
        let (mut sender, mut receiver) = pair();
        let sent = keys(&mut sender, 8);
        let gap = expect(&mut receiver, 5, &sent[5]).unwrap();
        assert_eq!(gap.skipped, 0..5);
        assert_eq!(gap.skipped_count(), 5);
        assert!(gap.discarded.is_empty());
        assert_eq!(receiver.missing().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);

        assert!(expect(&mut receiver, 2, &sent[2]).unwrap().is_empty());
        assert_eq!(
            expect(&mut receiver, 2, &sent[2]).unwrap_err(),
            Error::Message(MessageError::Duplicate)
        );
        assert_eq!(
            expect(&mut receiver, 5, &sent[5]).unwrap_err(),
            Error::Message(MessageError::Duplicate)
        );
        let gap = expect(&mut receiver, 7, &sent[7]).unwrap();
        assert_eq!(gap.skipped, 6..7);
        assert_eq!(receiver.missing().collect::<Vec<_>>(), vec![0, 1, 3, 4, 6]);
        for c in [6, 0, 4, 1, 3] {
            assert!(
                expect(&mut receiver, c, &sent[c as usize])
                    .unwrap()
                    .is_empty()
            );
        }
        assert_eq!(receiver.missing_count(), 0);
    }

    #[test]
    fn a_failed_open_changes_nothing() {
        let (mut sender, mut receiver) = pair();
        let sent = keys(&mut sender, 12);
        expect(&mut receiver, 3, &sent[3]).unwrap();
        let before = receiver.export();
        for counter in [1, 10] {
            let r: Result<((), Gap)> = receiver.receive(counter, |_| Err(Error::DecryptionFailed));
            assert_eq!(r.unwrap_err(), Error::DecryptionFailed);
            assert_eq!(*receiver.export(), *before, "counter {counter}");
        }
        // Both still decrypt afterwards.
        expect(&mut receiver, 1, &sent[1]).unwrap();
        expect(&mut receiver, 10, &sent[10]).unwrap();
    }

    #[test]
    fn jumps_are_limited_to_25000() {
        let (mut sender, mut receiver) = pair();
        let sent = keys(&mut sender, 25_002);
        let before = receiver.export();
        assert_eq!(
            expect(&mut receiver, 25_001, &sent[25_001]).unwrap_err(),
            Error::Message(MessageError::TooFarAhead)
        );
        assert_eq!(*receiver.export(), *before);
        let gap = expect(&mut receiver, 25_000, &sent[25_000]).unwrap();
        assert_eq!(gap.skipped, 0..25_000);
        // Only the newest 2,000 of the 25,000 skipped keys are kept.
        assert_eq!(gap.discarded, vec![0..23_000]);
        assert_eq!(gap.discarded_count(), 23_000);
        assert_eq!(receiver.missing_count(), MAX_SKIPPED_KEYS);
        assert_eq!(
            expect(&mut receiver, 22_999, &sent[22_999]).unwrap_err(),
            Error::Message(MessageError::Duplicate)
        );
        expect(&mut receiver, 23_000, &sent[23_000]).unwrap();
        expect(&mut receiver, 24_999, &sent[24_999]).unwrap();
        // The limit is relative to the new position.
        expect(&mut receiver, 25_001, &sent[25_001]).unwrap();
    }

    #[test]
    fn at_most_2000_skipped_keys_are_kept_oldest_evicted_first() {
        let (mut sender, mut receiver) = pair();
        let sent = keys(&mut sender, 3_002);
        let gap = expect(&mut receiver, 1_500, &sent[1_500]).unwrap();
        assert_eq!(gap.skipped, 0..1_500);
        assert!(gap.discarded.is_empty());
        // Fill two holes so the evicted set is not one range.
        expect(&mut receiver, 1, &sent[1]).unwrap();
        expect(&mut receiver, 3, &sent[3]).unwrap();
        assert_eq!(receiver.missing_count(), 1_498);

        let gap = expect(&mut receiver, 2_003, &sent[2_003]).unwrap();
        assert_eq!(gap.skipped, 1_501..2_003);
        // 1,498 + 502 = 2,000: nothing evicted yet.
        assert!(gap.discarded.is_empty());
        assert_eq!(receiver.missing_count(), 2_000);

        let gap = expect(&mut receiver, 2_008, &sent[2_008]).unwrap();
        assert_eq!(gap.skipped, 2_004..2_008);
        // Four more kept, so the four oldest (0, 2, 4, 5) go.
        assert_eq!(gap.discarded, vec![0..1, 2..3, 4..6]);
        assert_eq!(receiver.missing_count(), 2_000);
        assert_eq!(receiver.missing().next(), Some(6));
        for c in [0, 2, 4, 5] {
            assert_eq!(
                expect(&mut receiver, c, &sent[c as usize]).unwrap_err(),
                Error::Message(MessageError::Duplicate)
            );
        }
        expect(&mut receiver, 6, &sent[6]).unwrap();
        expect(&mut receiver, 2_007, &sent[2_007]).unwrap();
    }

    #[test]
    fn sender_state_round_trips_and_continues() {
        let (mut sender, mut receiver) = pair();
        let sent = keys(&mut sender, 3);
        let bytes = sender.export();
        assert_eq!(bytes.len(), SENDER_STATE_LEN);
        let mut restored = SenderChain::import(&bytes).unwrap();
        assert_eq!(restored.id(), sender.id());
        assert_eq!(*restored.export(), *bytes);
        let (c, k) = restored.next_message_key().unwrap();
        assert_eq!(c, 3);
        assert!(same(&k, &sender.next_message_key().unwrap().1));
        expect(&mut receiver, 2, &sent[2]).unwrap();
        expect(&mut receiver, 3, &k).unwrap();
        for cut in 0..bytes.len() {
            assert!(SenderChain::import(&bytes[..cut]).is_err());
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(
            SenderChain::import(&long).unwrap_err(),
            Error::Decode(DecodeError::TrailingBytes)
        );
        // Other versions, the layout before instances (1) included, are refused by version.
        for version in [1, 3] {
            let mut v = bytes.to_vec();
            v[0] = version;
            assert_eq!(
                SenderChain::import(&v).unwrap_err(),
                Error::Decode(DecodeError::UnknownVersion(version))
            );
        }
        // A sender state is not a receiver state.
        assert!(matches!(
            ReceiverChain::import(&bytes),
            Err(Error::Decode(DecodeError::UnexpectedObject {
                expected: 2,
                found: 1
            }))
        ));
    }

    #[test]
    fn receiver_state_round_trips_with_kept_keys() {
        let (mut sender, mut receiver) = pair();
        let sent = keys(&mut sender, 10);
        expect(&mut receiver, 6, &sent[6]).unwrap();
        expect(&mut receiver, 2, &sent[2]).unwrap();
        let bytes = receiver.export();
        assert_eq!(bytes.len(), SENDER_STATE_LEN + 2 + 5 * KEPT_KEY_LEN);
        let mut restored = ReceiverChain::import(&bytes).unwrap();
        assert_eq!(*restored.export(), *bytes);
        assert_eq!(restored.missing().collect::<Vec<_>>(), vec![0, 1, 3, 4, 5]);
        for c in [4, 9, 0] {
            expect(&mut restored, c, &sent[c as usize]).unwrap();
        }
        assert_eq!(
            expect(&mut restored, 2, &sent[2]).unwrap_err(),
            Error::Message(MessageError::Duplicate)
        );
        for cut in 0..bytes.len() {
            assert!(ReceiverChain::import(&bytes[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn receiver_state_decoder_enforces_its_invariants() {
        let (mut sender, mut receiver) = pair();
        let sent = keys(&mut sender, 4);
        expect(&mut receiver, 3, &sent[3]).unwrap();
        let bytes = receiver.export().to_vec();
        let count_at = SENDER_STATE_LEN;
        let first_counter = count_at + 2;
        let second_counter = first_counter + KEPT_KEY_LEN;

        // A repeated counter (0 then 0) and one at `next` (4) are refused.
        let mut dup = bytes.clone();
        dup[second_counter..second_counter + 4].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(
            ReceiverChain::import(&dup).unwrap_err(),
            Error::Decode(DecodeError::InvalidValue)
        );
        let mut ahead = bytes.clone();
        ahead[first_counter..first_counter + 4].copy_from_slice(&4u32.to_be_bytes());
        assert_eq!(
            ReceiverChain::import(&ahead).unwrap_err(),
            Error::Decode(DecodeError::InvalidValue)
        );
        // A count above the limit is refused before anything is read.
        let mut many = bytes.clone();
        many[count_at..count_at + 2].copy_from_slice(&2_001u16.to_be_bytes());
        assert_eq!(
            ReceiverChain::import(&many).unwrap_err(),
            Error::Decode(DecodeError::LengthLimit)
        );
        let mut stream = bytes.clone();
        stream[2 + CHAIN_ID_LEN - 1] = 7;
        assert_eq!(
            ReceiverChain::import(&stream).unwrap_err(),
            Error::Decode(DecodeError::UnknownTag)
        );
    }

    #[test]
    fn an_exhausted_sender_chain_refuses_to_continue() {
        let (sender, _) = pair();
        let mut bytes = sender.export().to_vec();
        let next_at = 2 + CHAIN_ID_LEN;
        bytes[next_at..next_at + 4].copy_from_slice(&MAX_COUNTER.to_be_bytes());
        let mut chain = SenderChain::import(&bytes).unwrap();
        assert_eq!(chain.next_message_key().unwrap().0, MAX_COUNTER);
        assert_eq!(
            chain.next_message_key().unwrap_err(),
            Error::Message(MessageError::ChainExhausted)
        );
        assert_eq!(chain.next_counter(), u32::MAX);
    }

    #[test]
    fn debug_output_is_redacted() {
        let (mut sender, mut receiver) = pair();
        let sent = keys(&mut sender, 3);
        expect(&mut receiver, 2, &sent[2]).unwrap();
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let secrets = [
            hex(&sender.chain_key.expose()[..4]),
            hex(&receiver.chain_key.expose()[..4]),
            hex(&sent[0].key.secret_bytes().expose()[..4]),
        ];
        for shown in [
            format!("{sender:?}"),
            format!("{receiver:?}"),
            format!("{:?}", sent[0]),
        ] {
            assert!(shown.contains("redacted"), "{shown}");
            for s in &secrets {
                assert!(!shown.contains(s.as_str()), "{shown}");
            }
        }
    }
}
