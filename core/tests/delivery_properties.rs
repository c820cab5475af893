//! Property tests of message delivery within one conversation epoch: the messages of several
//! senders reach a receiver in random interleavings, with losses, duplicates and tampered
//! copies, and every outcome is compared with a small reference model of the receiver chains.
//!
//! Keys, devices and payloads come from a seeded ChaCha20 RNG and are the same in every case;
//! proptest only chooses the schedule (which copies of which messages arrive, in which order,
//! and how they are damaged), so a failing case shrinks to a short delivery sequence.
//!
//! 1. Every message delivered at least once (within the limits) decrypts exactly once, with its
//!    content, sender, stream and counter.
//! 2. Every later copy is refused as [`MessageError::Duplicate`] and changes no chain.
//! 3. The reported gaps and [`ReceiverChain::missing`] are exactly the counters below the
//!    highest received that have not been opened; late arrivals leave the missing set.
//! 4. Tampered copies (a flipped byte, or a copy the sender signed but encrypted under another
//!    epoch's chain) are refused without consuming or advancing anything, so the genuine copy
//!    still opens later.
//! 5. Limits: a jump of more than [`MAX_JUMP`] counters is refused without changing the chain,
//!    at most [`MAX_SKIPPED_KEYS`] keys are kept with the oldest discarded first, and messages
//!    whose keys were discarded are refused, exactly as the model predicts.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::{Mutex, MutexGuard, OnceLock};

use chacha20::ChaCha20Rng;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use rand_core::{Rng, SeedableRng};
use sotto_core::conversation::ratchet::{MAX_JUMP, MAX_SKIPPED_KEYS};
use sotto_core::conversation::{
    ChainId, ConversationId, Gap, MessageKind, OpenedMessage, ParsedMessage, ReceiverChain,
    SenderChain, Stream, seal_message,
};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::crypto::sign::VerifyingKey;
use sotto_core::device::{Device, DeviceId, DeviceKind};
use sotto_core::{Error, MessageError, Result};

const T0: u64 = 1_767_225_600;
const EPOCH: u32 = 7;
/// Most senders in a schedule.
const SENDERS: usize = 4;
/// Most messages per sender on the durable stream.
const DURABLE: usize = 32;
/// Most messages per sender on the ephemeral stream.
const EPHEMERAL: usize = 8;
/// Payloads are 0..MAX_PAYLOAD bytes.
const MAX_PAYLOAD: u32 = 64;
const STREAMS: [Stream; 2] = [Stream::Durable, Stream::Ephemeral];

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Keep failures on the console: this file is the only one the tests may write near.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn random_payload(rng: &mut ChaCha20Rng) -> Vec<u8> {
    let mut content = vec![0u8; (rng.next_u32() % MAX_PAYLOAD) as usize];
    rng.fill_bytes(&mut content);
    content
}

fn kind_of(stream: Stream) -> MessageKind {
    match stream {
        Stream::Durable => MessageKind::Text,
        Stream::Ephemeral => MessageKind::Typing,
    }
}

fn chain_id(conversation: ConversationId, sender: DeviceId, stream: Stream) -> ChainId {
    ChainId {
        conversation,
        epoch: EPOCH,
        sender,
        instance: sotto_core::conversation::Instance([3; 8]),
        stream,
    }
}

/// The epoch's context: a fixed team and record hash (these properties are about one chain).
fn ctx(conversation: ConversationId) -> sotto_core::conversation::MessageContext {
    sotto_core::conversation::MessageContext {
        conversation,
        epoch: EPOCH,
        team: sotto_core::team::TeamId([4; 16]),
        record_hash: [5; 32],
    }
}

// ---------------------------------------------------------------------------------------------
// Reference model of one receiver chain.
// ---------------------------------------------------------------------------------------------

/// What a receiver chain should hold: the next counter and the counters whose keys are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ChainModel {
    next: u32,
    kept: BTreeSet<u32>,
}

impl ChainModel {
    /// The state and gap after a successful receive of `counter`, or why it is refused.
    fn receive(&self, counter: u32) -> std::result::Result<(ChainModel, Gap), MessageError> {
        if counter < self.next {
            if !self.kept.contains(&counter) {
                return Err(MessageError::Duplicate);
            }
            let mut after = self.clone();
            after.kept.remove(&counter);
            return Ok((after, Gap::default()));
        }
        if counter - self.next > MAX_JUMP {
            return Err(MessageError::TooFarAhead);
        }
        let mut after = ChainModel {
            next: counter + 1,
            kept: self.kept.clone(),
        };
        after.kept.extend(self.next..counter);
        // Keys are kept in counter order, so the oldest are the smallest counters.
        let mut discarded: Vec<Range<u32>> = Vec::new();
        while after.kept.len() > MAX_SKIPPED_KEYS {
            let c = after.kept.pop_first().expect("non-empty");
            match discarded.last_mut() {
                Some(last) if last.end == c => last.end = c + 1,
                _ => discarded.push(c..c + 1),
            }
        }
        Ok((
            after,
            Gap {
                skipped: self.next..counter,
                discarded,
            },
        ))
    }
}

fn missing_of(chain: &ReceiverChain) -> Vec<u32> {
    chain.missing().collect()
}

// ---------------------------------------------------------------------------------------------
// Properties 1-4: random schedules of a few senders' messages.
// ---------------------------------------------------------------------------------------------

/// One message as sent, with a copy its sender signed but encrypted under the wrong epoch.
struct Sent {
    bytes: Vec<u8>,
    forged: Vec<u8>,
    content: Vec<u8>,
}

struct SenderInfo {
    id: DeviceId,
    key: VerifyingKey,
    /// Messages per stream, indexed like [`STREAMS`]; message `i` has counter `i`.
    sent: [Vec<Sent>; 2],
}

/// Everything the senders produce, sealed once and shared by all cases.
struct World {
    secret: SecretBytes<32>,
    conversation: ConversationId,
    senders: Vec<SenderInfo>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0x5077_0d31);
        let secret = SecretBytes::random(&mut rng);
        let wrong_secret = SecretBytes::random(&mut rng);
        let conversation = ConversationId::random(&mut rng);
        let senders = (0..SENDERS)
            .map(|s| {
                let kind = if s == 0 {
                    DeviceKind::Visitor
                } else {
                    DeviceKind::Member
                };
                let device = Device::generate(kind, &mut rng, T0);
                let sent = STREAMS.map(|stream| {
                    let id = chain_id(conversation, device.id(), stream);
                    let mut chain = SenderChain::new(&secret, id);
                    let mut forger = SenderChain::new(&wrong_secret, id);
                    let count = match stream {
                        Stream::Durable => DURABLE,
                        Stream::Ephemeral => EPHEMERAL,
                    };
                    (0..count)
                        .map(|_| {
                            let content = random_payload(&mut rng);
                            let kind = kind_of(stream);
                            Sent {
                                bytes: seal_message(
                                    &mut chain,
                                    &device,
                                    kind,
                                    &content,
                                    &ctx(conversation),
                                )
                                .unwrap(),
                                forged: seal_message(
                                    &mut forger,
                                    &device,
                                    kind,
                                    &content,
                                    &ctx(conversation),
                                )
                                .unwrap(),
                                content,
                            }
                        })
                        .collect()
                });
                SenderInfo {
                    id: device.id(),
                    key: *device.record().identity(),
                    sent,
                }
            })
            .collect();
        World {
            secret,
            conversation,
            senders,
        }
    })
}

/// A receiving client: the verifying keys of the epoch's senders and one chain per sender and
/// stream, looked up from the message header as an application would.
struct Receiver {
    keys: HashMap<DeviceId, VerifyingKey>,
    chains: Vec<ReceiverChain>,
}

impl Receiver {
    fn new(world: &World, senders: usize) -> Self {
        let senders = &world.senders[..senders];
        Receiver {
            keys: senders.iter().map(|s| (s.id, s.key)).collect(),
            chains: senders
                .iter()
                .flat_map(|s| {
                    STREAMS.map(|stream| {
                        ReceiverChain::new(
                            &world.secret,
                            chain_id(world.conversation, s.id, stream),
                        )
                    })
                })
                .collect(),
        }
    }

    fn chain(&self, sender: usize, stream: usize) -> &ReceiverChain {
        &self.chains[sender * STREAMS.len() + stream]
    }

    fn deliver(&mut self, bytes: &[u8]) -> Result<OpenedMessage> {
        let parsed = ParsedMessage::decode(bytes)?;
        let header = *parsed.header();
        let key = self
            .keys
            .get(&header.sender)
            .ok_or(Error::Message(MessageError::UnknownSender))?;
        let verified = parsed.verify(key, &ctx(header.conversation))?;
        let chain = self
            .chains
            .iter_mut()
            .find(|c| *c.id() == header.chain())
            .ok_or(Error::Message(MessageError::WrongChain))?;
        verified.decrypt(chain)
    }

    /// Every chain's full state, to show a refused delivery changed nothing.
    fn snapshot(&self) -> Vec<Vec<u8>> {
        self.chains.iter().map(|c| c.export().to_vec()).collect()
    }
}

#[derive(Clone, Copy, Debug)]
enum CopyKind {
    Genuine,
    /// The genuine bytes with `mask` XORed into the byte at `at`.
    Flipped {
        at: Index,
        mask: u8,
    },
    /// Signed by the sender, encrypted under another epoch secret's chain at the same counter.
    Forged,
}

#[derive(Clone, Copy, Debug)]
struct Delivery {
    sender: usize,
    stream: usize,
    counter: u32,
    copy: CopyKind,
    /// Arrival order key: `counter * 4 + jitter`.
    time: u32,
}

fn copy_strategy() -> impl Strategy<Value = CopyKind> {
    prop_oneof![
        6 => Just(CopyKind::Genuine),
        2 => (any::<Index>(), 1u8..=255).prop_map(|(at, mask)| CopyKind::Flipped { at, mask }),
        1 => Just(CopyKind::Forged),
    ]
}

/// A number of senders and the deliveries in arrival order. Each message gets 0 to 3 copies
/// (0 = lost), each copy possibly tampered and with its own jitter: spread 0 keeps each chain in
/// order, a small spread reorders locally, and a large one shuffles everything.
fn schedule() -> impl Strategy<Value = (usize, Vec<Delivery>)> {
    let spread = prop_oneof![Just(0u32), 1u32..=3, Just(1_000u32)];
    (1..=SENDERS, spread)
        .prop_flat_map(|(senders, spread)| {
            let counts = proptest::collection::vec((1..=DURABLE, 0..=EPHEMERAL), senders);
            counts.prop_flat_map(move |counts| {
                let mut messages = Vec::new();
                for (sender, (durable, ephemeral)) in counts.into_iter().enumerate() {
                    for (stream, count) in [durable, ephemeral].into_iter().enumerate() {
                        for counter in 0..count as u32 {
                            let copies =
                                proptest::collection::vec((copy_strategy(), 0..=spread * 4), 0..=3);
                            messages.push(copies.prop_map(move |copies| {
                                copies
                                    .into_iter()
                                    .map(|(copy, jitter)| Delivery {
                                        sender,
                                        stream,
                                        counter,
                                        copy,
                                        time: counter * 4 + jitter,
                                    })
                                    .collect::<Vec<_>>()
                            }));
                        }
                    }
                }
                (Just(senders), messages)
            })
        })
        .prop_map(|(senders, per_message)| {
            let mut deliveries: Vec<Delivery> = per_message.into_iter().flatten().collect();
            deliveries.sort_by_key(|d| d.time);
            (senders, deliveries)
        })
}

/// What the test knows about one chain, independently of the receiver.
#[derive(Default)]
struct ChainTruth {
    /// Counters opened so far (each exactly once).
    opened: BTreeSet<u32>,
    /// The reference model of the receiver chain.
    model: ChainModel,
}

impl ChainTruth {
    /// One past the highest counter opened.
    fn next(&self) -> u32 {
        self.opened.last().map_or(0, |c| c + 1)
    }

    /// Counters below the highest opened that have not been opened.
    fn never_delivered(&self) -> Vec<u32> {
        (0..self.next())
            .filter(|c| !self.opened.contains(c))
            .collect()
    }
}

fn check_opened(
    opened: &OpenedMessage,
    sender: &SenderInfo,
    stream: usize,
    counter: u32,
) -> std::result::Result<(), TestCaseError> {
    let header = opened.header();
    prop_assert_eq!(header.sender, sender.id);
    prop_assert_eq!(header.counter, counter);
    prop_assert_eq!(header.stream(), STREAMS[stream]);
    prop_assert_eq!(header.kind, kind_of(STREAMS[stream]));
    prop_assert_eq!(
        opened.content(),
        &sender.sent[stream][counter as usize].content[..]
    );
    Ok(())
}

fn run_schedule(senders: usize, deliveries: &[Delivery]) -> std::result::Result<(), TestCaseError> {
    let world = world();
    let mut rx = Receiver::new(world, senders);
    let mut truth: Vec<[ChainTruth; 2]> = (0..senders).map(|_| Default::default()).collect();
    let mut opens: HashMap<(usize, usize, u32), u32> = HashMap::new();

    for (step, d) in deliveries.iter().enumerate() {
        let sender = &world.senders[d.sender];
        let sent = &sender.sent[d.stream][d.counter as usize];
        let t = &mut truth[d.sender][d.stream];
        let predicted = t.model.receive(d.counter);
        let before = rx.snapshot();
        match d.copy {
            CopyKind::Genuine => {
                let result = rx.deliver(&sent.bytes);
                if let Ok(opened) = &result {
                    *opens.entry((d.sender, d.stream, d.counter)).or_default() += 1;
                    check_opened(opened, sender, d.stream, d.counter)?;
                }
                if t.opened.contains(&d.counter) {
                    // Property 2: a copy after the first is a duplicate and changes nothing.
                    prop_assert_eq!(
                        result.err(),
                        Some(Error::Message(MessageError::Duplicate)),
                        "step {}: {:?}",
                        step,
                        d
                    );
                    prop_assert!(
                        rx.snapshot() == before,
                        "step {step}: duplicate changed state"
                    );
                    prop_assert_eq!(predicted.err(), Some(MessageError::Duplicate));
                } else {
                    // Property 1: the first genuine copy opens.
                    let opened = match result {
                        Ok(opened) => opened,
                        Err(e) => {
                            return Err(TestCaseError::fail(format!(
                                "step {step}: first genuine copy of {d:?} refused: {e:?}"
                            )));
                        }
                    };
                    // Property 3: the gap is what was jumped over since the highest opened.
                    let next = t.next();
                    let expected_skipped = if d.counter >= next {
                        next..d.counter
                    } else {
                        0..0
                    };
                    prop_assert_eq!(&opened.gap().skipped, &expected_skipped, "step {}", step);
                    prop_assert!(opened.gap().discarded.is_empty(), "step {step}");
                    let (model, gap) = match predicted {
                        Ok(p) => p,
                        Err(e) => {
                            return Err(TestCaseError::fail(format!(
                                "step {step}: model refuses {d:?} ({e:?}) but it opened"
                            )));
                        }
                    };
                    prop_assert_eq!(opened.gap(), &gap, "step {}", step);
                    t.model = model;
                    t.opened.insert(d.counter);
                }
            }
            CopyKind::Flipped { at, mask } => {
                // Property 4: a damaged copy is refused and changes nothing.
                let mut bytes = sent.bytes.clone();
                bytes[at.index(sent.bytes.len())] ^= mask;
                let result = rx.deliver(&bytes);
                prop_assert!(result.is_err(), "step {step}: tampered {d:?} accepted");
                prop_assert!(
                    rx.snapshot() == before,
                    "step {step}: tampered copy changed state"
                );
            }
            CopyKind::Forged => {
                // Property 4: it passes the signature check and reaches the chain, which must
                // not commit anything when decryption fails.
                let result = rx.deliver(&sent.forged);
                let expected = match predicted {
                    Ok(_) => Error::DecryptionFailed,
                    Err(e) => Error::Message(e),
                };
                prop_assert_eq!(result.err(), Some(expected), "step {}: {:?}", step, d);
                prop_assert!(
                    rx.snapshot() == before,
                    "step {step}: forged copy changed state"
                );
            }
        }
        // Property 3: every chain's missing set is exactly what has not arrived below its
        // highest opened counter, and agrees with the model.
        for (s, chains) in truth.iter().enumerate() {
            for (stream, t) in chains.iter().enumerate() {
                let chain = rx.chain(s, stream);
                prop_assert_eq!(chain.next_counter(), t.next(), "step {}", step);
                prop_assert_eq!(chain.next_counter(), t.model.next, "step {}", step);
                let missing = missing_of(chain);
                prop_assert_eq!(&missing, &t.never_delivered(), "step {}", step);
                prop_assert_eq!(
                    &missing,
                    &t.model.kept.iter().copied().collect::<Vec<_>>(),
                    "step {}",
                    step
                );
            }
        }
    }

    // Property 1: every message with a genuine copy in the schedule opened exactly once.
    let delivered: BTreeSet<(usize, usize, u32)> = deliveries
        .iter()
        .filter(|d| matches!(d.copy, CopyKind::Genuine))
        .map(|d| (d.sender, d.stream, d.counter))
        .collect();
    for key in &delivered {
        prop_assert_eq!(opens.get(key).copied(), Some(1), "{:?}", key);
    }
    prop_assert_eq!(opens.len(), delivered.len());

    // The lost messages (and those that only arrived tampered) still open when they finally
    // arrive, in counter order: each fills its gap or extends the chain without a new gap.
    for (s, sender) in world.senders[..senders].iter().enumerate() {
        for (stream, t) in truth[s].iter().enumerate() {
            let scheduled = deliveries
                .iter()
                .filter(|d| d.sender == s && d.stream == stream)
                .map(|d| d.counter + 1)
                .max()
                .unwrap_or(0);
            for counter in 0..scheduled {
                if t.opened.contains(&counter) {
                    continue;
                }
                let bytes = &sender.sent[stream][counter as usize].bytes;
                let opened = match rx.deliver(bytes) {
                    Ok(opened) => opened,
                    Err(e) => {
                        return Err(TestCaseError::fail(format!(
                            "late copy of {s}/{stream}/{counter} refused: {e:?}"
                        )));
                    }
                };
                check_opened(&opened, sender, stream, counter)?;
                prop_assert!(opened.gap().is_empty(), "{:?}", opened.gap());
            }
            let chain = rx.chain(s, stream);
            prop_assert_eq!(chain.missing_count(), 0);
            prop_assert_eq!(chain.next_counter(), scheduled);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn random_delivery_opens_each_message_once_and_reports_exact_gaps(
        (senders, deliveries) in schedule()
    ) {
        run_schedule(senders, &deliveries)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Property 5: the jump and kept-key limits, with counters in the tens of thousands.
// ---------------------------------------------------------------------------------------------

/// Sender states every `STRIDE` counters, so a message at any counter is sealed after at most
/// `STRIDE - 1` ratchet steps. Grown on demand and shared by all cases.
const STRIDE: u32 = 256;

struct Checkpoints {
    states: Vec<Vec<u8>>,
}

struct LimitWorld {
    device: Device,
    key: VerifyingKey,
    id: ChainId,
    secret: SecretBytes<32>,
    genuine: Mutex<Checkpoints>,
    /// The same chain under another epoch secret: signed by the sender, undecryptable.
    forged: Mutex<Checkpoints>,
}

fn limit_world() -> &'static LimitWorld {
    static WORLD: OnceLock<LimitWorld> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0x5077_0d32);
        let secret = SecretBytes::random(&mut rng);
        let wrong_secret = SecretBytes::random(&mut rng);
        let conversation = ConversationId::random(&mut rng);
        let device = Device::generate(DeviceKind::Member, &mut rng, T0);
        let id = chain_id(conversation, device.id(), Stream::Durable);
        let checkpoints = |secret: &SecretBytes<32>| {
            Mutex::new(Checkpoints {
                states: vec![SenderChain::new(secret, id).export().to_vec()],
            })
        };
        LimitWorld {
            key: *device.record().identity(),
            genuine: checkpoints(&secret),
            forged: checkpoints(&wrong_secret),
            device,
            id,
            secret,
        }
    })
}

fn lock(m: &Mutex<Checkpoints>) -> MutexGuard<'_, Checkpoints> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The content of the limit test's message at `counter`.
fn limit_payload(counter: u32) -> Vec<u8> {
    random_payload(&mut ChaCha20Rng::seed_from_u64(
        0x5077_0000_0000 | u64::from(counter),
    ))
}

impl LimitWorld {
    /// The message at `counter`, genuine or forged.
    fn message(&self, counter: u32, forged: bool) -> Vec<u8> {
        let mut checkpoints = lock(if forged { &self.forged } else { &self.genuine });
        let slot = (counter / STRIDE) as usize;
        while checkpoints.states.len() <= slot {
            let mut chain = SenderChain::import(checkpoints.states.last().unwrap()).unwrap();
            for _ in 0..STRIDE {
                chain.next_message_key().unwrap();
            }
            checkpoints.states.push(chain.export().to_vec());
        }
        let mut chain = SenderChain::import(&checkpoints.states[slot]).unwrap();
        drop(checkpoints);
        for _ in 0..counter % STRIDE {
            chain.next_message_key().unwrap();
        }
        assert_eq!(chain.next_counter(), counter);
        let context = ctx(chain.id().conversation);
        seal_message(
            &mut chain,
            &self.device,
            MessageKind::Text,
            &limit_payload(counter),
            &context,
        )
        .unwrap()
    }
}

#[derive(Clone, Copy, Debug)]
enum LimitOp {
    /// The genuine message `d` counters past the receiver's next one.
    Ahead(u32),
    /// A forged message (signed, undecryptable) `d` counters past the next one.
    ForgedAhead(u32),
    /// The genuine message `b + 1` counters before the next one.
    Back(u32),
    /// The genuine message of one of the counters the model says is kept.
    Kept(Index),
    /// The genuine message of one of the counters the model says was discarded.
    Discarded(Index),
}

fn distance() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..40,
        3 => 1_990u32..=2_010,
        2 => (MAX_JUMP - 5)..=(MAX_JUMP + 5),
        1 => (MAX_JUMP + 6)..=40_000,
    ]
}

fn limit_op() -> impl Strategy<Value = LimitOp> {
    prop_oneof![
        5 => distance().prop_map(LimitOp::Ahead),
        1 => distance().prop_map(LimitOp::ForgedAhead),
        3 => prop_oneof![0u32..16, 1_990u32..=2_010, 0u32..60_000].prop_map(LimitOp::Back),
        2 => any::<Index>().prop_map(LimitOp::Kept),
        2 => any::<Index>().prop_map(LimitOp::Discarded),
    ]
}

fn nth_in_ranges(ranges: &[Range<u32>], mut n: usize) -> u32 {
    for r in ranges {
        let len = r.len();
        if n < len {
            return r.start + n as u32;
        }
        n -= len;
    }
    unreachable!("index beyond the ranges")
}

/// Runs `ops` against a fresh receiver chain, checking each outcome and the state against the
/// model; returns the outcome of each op that ran.
fn run_limits(ops: &[LimitOp]) -> std::result::Result<Vec<Result<Gap>>, TestCaseError> {
    let lw = limit_world();
    let mut chain = ReceiverChain::new(&lw.secret, lw.id);
    let mut model = ChainModel::default();
    // Every counter the receiver reported as discarded so far.
    let mut discarded: Vec<Range<u32>> = Vec::new();
    let mut outcomes = Vec::new();

    for (step, op) in ops.iter().enumerate() {
        let (counter, forged) = match *op {
            LimitOp::Ahead(d) => (model.next + d, false),
            LimitOp::ForgedAhead(d) => (model.next + d, true),
            LimitOp::Back(b) if b < model.next => (model.next - 1 - b, false),
            LimitOp::Back(_) => continue,
            LimitOp::Kept(i) if !model.kept.is_empty() => (
                *model.kept.iter().nth(i.index(model.kept.len())).unwrap(),
                false,
            ),
            LimitOp::Kept(_) => continue,
            LimitOp::Discarded(i) => {
                let total: usize = discarded.iter().map(|r| r.len()).sum();
                if total == 0 {
                    continue;
                }
                (nth_in_ranges(&discarded, i.index(total)), false)
            }
        };
        let bytes = lw.message(counter, forged);
        let verified = ParsedMessage::decode(&bytes)
            .and_then(|p| {
                let context = ctx(p.header().conversation);
                p.verify(&lw.key, &context)
            })
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let before = chain.export().to_vec();
        let result = verified.decrypt(&mut chain);
        let outcome = result.as_ref().map(|o| o.gap().clone()).map_err(|e| *e);
        let context = format!("step {step}: {op:?} at counter {counter}");
        match (model.receive(counter), forged) {
            (Ok((after, gap)), false) => {
                let opened = match result {
                    Ok(opened) => opened,
                    Err(e) => {
                        return Err(TestCaseError::fail(format!("{context}: refused: {e:?}")));
                    }
                };
                prop_assert_eq!(opened.header().counter, counter, "{}", context);
                prop_assert_eq!(opened.content(), &limit_payload(counter)[..], "{}", context);
                prop_assert_eq!(opened.gap(), &gap, "{}", context);
                for r in &gap.discarded {
                    match discarded.last_mut() {
                        Some(last) if last.end == r.start => last.end = r.end,
                        _ => discarded.push(r.clone()),
                    }
                }
                model = after;
            }
            (Ok(_), true) => {
                prop_assert_eq!(result.err(), Some(Error::DecryptionFailed), "{}", context);
                prop_assert!(*chain.export() == before, "{context}: state changed");
            }
            (Err(e), _) => {
                // Refused jumps and discarded or consumed counters leave the chain as it was.
                if e == MessageError::TooFarAhead {
                    prop_assert!(counter - model.next > MAX_JUMP, "{context}");
                }
                prop_assert_eq!(result.err(), Some(Error::Message(e)), "{}", context);
                prop_assert!(*chain.export() == before, "{context}: state changed");
            }
        }
        prop_assert_eq!(chain.next_counter(), model.next, "{}", context);
        prop_assert!(chain.missing_count() <= MAX_SKIPPED_KEYS, "{context}");
        prop_assert!(
            missing_of(&chain).iter().eq(model.kept.iter()),
            "{context}: missing set differs from the model"
        );
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn jump_and_kept_key_limits_match_the_model(
        ops in proptest::collection::vec(limit_op(), 1..=12)
    ) {
        run_limits(&ops)?;
    }
}

/// The limit boundaries themselves, deterministically and with hand-written expectations, so
/// they are covered whatever the random cases draw and the model is checked independently.
#[test]
fn limit_boundaries() {
    let refused = |e: MessageError| Err(Error::Message(e));
    // Discarded counters as (start, end) pairs of half-open ranges.
    let opened = |skipped: Range<u32>, discarded: &[(u32, u32)]| {
        Ok(Gap {
            skipped,
            discarded: discarded.iter().map(|&(a, b)| a..b).collect(),
        })
    };
    let steps = [
        // One past the jump limit is refused, also for a forged copy; the limit itself is
        // accepted, keeping the newest 2,000 of the 25,000 skipped keys.
        (LimitOp::Ahead(25_001), refused(MessageError::TooFarAhead)),
        (
            LimitOp::ForgedAhead(25_001),
            refused(MessageError::TooFarAhead),
        ),
        (LimitOp::ForgedAhead(25_000), Err(Error::DecryptionFailed)),
        (LimitOp::Ahead(25_000), opened(0..25_000, &[(0, 23_000)])),
        // next = 25,001. The oldest kept key (23,000) opens once; the newest discarded one
        // (22,999) is refused.
        (LimitOp::Back(2_000), opened(0..0, &[])),
        (LimitOp::Back(2_000), refused(MessageError::Duplicate)),
        (LimitOp::Back(2_001), refused(MessageError::Duplicate)),
        // 1,999 kept: one more skipped key makes exactly 2,000 and evicts nothing; the next
        // evicts the oldest (23,001), which is then refused.
        (LimitOp::Ahead(1), opened(25_001..25_002, &[])),
        (
            LimitOp::Ahead(1),
            opened(25_003..25_004, &[(23_001, 23_002)]),
        ),
        (
            LimitOp::Back(25_004 - 23_001),
            refused(MessageError::Duplicate),
        ),
        (LimitOp::Back(25_004 - 23_002), opened(0..0, &[])),
        // Evictions take the oldest kept keys first (1,997 of them here)...
        (
            LimitOp::Ahead(1_998),
            opened(25_005..27_003, &[(23_003, 25_000)]),
        ),
        // ...and a maximal jump relative to the new position replaces every kept key with the
        // newest 2,000 it skipped; the received counters (25,002, 25,004, 27,003) split the
        // reported ranges.
        (
            LimitOp::Ahead(25_000),
            opened(
                27_004..52_004,
                &[
                    (25_001, 25_002),
                    (25_003, 25_004),
                    (25_005, 27_003),
                    (27_004, 50_004),
                ],
            ),
        ),
    ];
    let ops: Vec<LimitOp> = steps.iter().map(|(op, _)| *op).collect();
    let outcomes = run_limits(&ops).unwrap();
    assert_eq!(outcomes.len(), steps.len());
    for ((op, expected), outcome) in steps.iter().zip(&outcomes) {
        assert_eq!(outcome, expected, "{op:?}");
    }
}
