//! Conversation messages next to vodozemac 0.11.1 Megolm v1, in one run so the ratios can be read
//! straight off the output.
//!
//! Both sides send 100-byte texts from one sender in one session / epoch. On the wire Sotto pads
//! the content to its 256-byte floor (ChaCha20-Poly1305, 401-byte message), Megolm pads to
//! 112 bytes (AES-256-CBC/PKCS#7); both sign every message with Ed25519, which dominates.
//!
//! What each peer includes:
//! - `message_encrypt_100B`: sotto `seal_message` (padding, one HKDF ratchet step, header,
//!   ChaCha20-Poly1305, labelled Ed25519 signature, encoded bytes). Megolm `GroupSession::encrypt`
//!   (HKDF message keys, AES-256-CBC, truncated HMAC-SHA256, Ed25519 signature, ratchet advance),
//!   which returns a `MegolmMessage` struct; `vodozemac_megolm_encrypt_to_bytes` adds the
//!   `to_bytes` encoding so both produce wire bytes.
//! - `message_decrypt_100B`: every iteration decrypts the same 1,000 pre-encrypted messages,
//!   counters / indices 0..1000 in order, with a fresh receiver chain / inbound session built
//!   untimed; per-message time = iteration time / 1,000 (Throughput::Elements). Sotto is
//!   `ParsedMessage::decode` (from bytes) + `verify` + `decrypt`. Megolm is
//!   `InboundGroupSession::decrypt` on pre-parsed `MegolmMessage`s, and with
//!   `MegolmMessage::from_bytes` added (the like-for-like peer: both start from bytes).
//! - `history_decrypt_10000`: a 10,000-message history from bytes with a fresh chain / session
//!   per iteration: sotto `open_batch` (decode all, one Ed25519 batch verification, then
//!   decrypt), sotto one by one as above, Megolm `from_bytes` + `decrypt` one by one (Megolm has
//!   no batch verification).
//! - `epoch_open`: `EpochRecord::open` by a visitor device for a team with one owner device and
//!   that one visitor device (a fresh secret, two HPKE seals, one signature). No peer.
//!
//! Run: `cargo bench -p sotto-core --bench conversation`.

use std::hint::black_box;
use std::time::Duration;

use chacha20::ChaCha20Rng;
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rand_core::{Rng, SeedableRng};
use sotto_core::conversation::{
    ChainId, ConversationId, EpochRecord, Instance, MessageContext, MessageKind, ParsedMessage,
    ReceiverChain, SenderChain, open_batch, seal_message,
};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::crypto::sign::VerifyingKey;
use sotto_core::device::{Device, DeviceKind};
use sotto_core::team::{Policy, TeamState};
use vodozemac::megolm::{
    GroupSession, InboundGroupSession, MegolmMessage, SessionConfig, SessionKey,
};

/// Message content of every group.
const TEXT_LEN: usize = 100;
/// Messages decrypted per iteration in `message_decrypt_100B`.
const DECRYPT_RUN: usize = 1_000;
/// Messages in the history of `history_decrypt_10000`.
const HISTORY: usize = 10_000;
const T0: u64 = 1_767_225_600;
const CONVERSATION: ConversationId = ConversationId([5; 16]);
const EPOCH: u32 = 2;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn text(rng: &mut ChaCha20Rng) -> [u8; TEXT_LEN] {
    let mut out = [0u8; TEXT_LEN];
    rng.fill_bytes(&mut out);
    out
}

fn epoch_secret() -> SecretBytes<32> {
    SecretBytes::new([42; 32])
}

/// The fixed epoch's message context (a made-up team and record hash).
fn context() -> MessageContext {
    MessageContext {
        conversation: CONVERSATION,
        epoch: EPOCH,
        team: sotto_core::team::TeamId([7; 16]),
        record_hash: [8; 32],
    }
}

/// A member device and the id of its durable (text) chain in the fixed epoch.
struct Sender {
    device: Device,
    chain: ChainId,
}

impl Sender {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        let device = Device::generate(DeviceKind::Member, rng, T0);
        let chain = ChainId {
            conversation: CONVERSATION,
            epoch: EPOCH,
            sender: device.id(),
            instance: Instance([1; 8]),
            stream: MessageKind::Text.stream(),
        };
        Sender { device, chain }
    }

    fn key(&self) -> VerifyingKey {
        *self.device.record().identity()
    }

    fn sender_chain(&self) -> SenderChain {
        SenderChain::new(&epoch_secret(), self.chain)
    }

    fn receiver_chain(&self) -> ReceiverChain {
        ReceiverChain::new(&epoch_secret(), self.chain)
    }

    /// `n` messages with counters 0..n, all carrying `content`.
    fn messages(&self, n: usize, content: &[u8]) -> Vec<Vec<u8>> {
        let mut chain = self.sender_chain();
        (0..n)
            .map(|_| {
                seal_message(
                    &mut chain,
                    &self.device,
                    MessageKind::Text,
                    content,
                    &context(),
                )
                .unwrap()
            })
            .collect()
    }
}

/// A Megolm session's key and `n` messages with indices 0..n, all carrying `content`.
fn megolm_messages(n: usize, content: &[u8]) -> (SessionKey, Vec<MegolmMessage>) {
    let mut outbound = GroupSession::new(SessionConfig::version_1());
    let key = outbound.session_key();
    let messages = (0..n).map(|_| outbound.encrypt(content)).collect();
    (key, messages)
}

fn megolm_inbound(key: &SessionKey) -> InboundGroupSession {
    InboundGroupSession::new(key, SessionConfig::version_1())
}

/// Sotto's receive path for one message: decode, verify, decrypt.
fn sotto_open(bytes: &[u8], key: &VerifyingKey, chain: &mut ReceiverChain) -> usize {
    ParsedMessage::decode(bytes)
        .unwrap()
        .verify(key, &context())
        .unwrap()
        .decrypt(chain)
        .unwrap()
        .content()
        .len()
}

fn megolm_open(bytes: &[u8], session: &mut InboundGroupSession) -> usize {
    let message = MegolmMessage::from_bytes(bytes).unwrap();
    session.decrypt(&message).unwrap().plaintext.len()
}

/// Checks once, untimed, that both sides decrypt every message to `content` in order.
fn check_round_trip(
    sender: &Sender,
    sotto: &[Vec<u8>],
    megolm_key: &SessionKey,
    megolm: &[Vec<u8>],
    content: &[u8],
) {
    let mut chain = sender.receiver_chain();
    for (i, bytes) in sotto.iter().enumerate() {
        let opened = ParsedMessage::decode(bytes)
            .unwrap()
            .verify(&sender.key(), &context())
            .unwrap()
            .decrypt(&mut chain)
            .unwrap();
        assert_eq!(opened.content(), content);
        assert_eq!(opened.header().counter as usize, i);
        assert!(opened.gap().is_empty());
    }
    let mut session = megolm_inbound(megolm_key);
    for (i, bytes) in megolm.iter().enumerate() {
        let message = MegolmMessage::from_bytes(bytes).unwrap();
        let decrypted = session.decrypt(&message).unwrap();
        assert_eq!(decrypted.plaintext, content);
        assert_eq!(decrypted.message_index as usize, i);
    }
}

fn message_encrypt(c: &mut Criterion) {
    let mut rng = rng(1);
    let pt = text(&mut rng);
    let sender = Sender::new(&mut rng);
    let mut chain = sender.sender_chain();
    let mut outbound = GroupSession::new(SessionConfig::version_1());
    let mut receiver = sender.receiver_chain();
    let first = seal_message(
        &mut chain,
        &sender.device,
        MessageKind::Text,
        &pt,
        &context(),
    )
    .unwrap();
    assert_eq!(sotto_open(&first, &sender.key(), &mut receiver), TEXT_LEN);

    let mut g = c.benchmark_group("message_encrypt_100B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sotto_seal_message", |b| {
        b.iter(|| {
            seal_message(
                &mut chain,
                &sender.device,
                MessageKind::Text,
                black_box(&pt),
                &context(),
            )
            .unwrap()
        })
    });
    g.bench_function("vodozemac_megolm_encrypt", |b| {
        b.iter(|| outbound.encrypt(black_box(&pt)))
    });
    g.bench_function("vodozemac_megolm_encrypt_to_bytes", |b| {
        b.iter(|| outbound.encrypt(black_box(&pt)).to_bytes())
    });
    g.finish();
}

fn message_decrypt(c: &mut Criterion) {
    let mut rng = rng(2);
    let pt = text(&mut rng);
    let sender = Sender::new(&mut rng);
    let key = sender.key();
    let sotto = sender.messages(DECRYPT_RUN, &pt);
    let (megolm_key, megolm) = megolm_messages(DECRYPT_RUN, &pt);
    let megolm_bytes: Vec<Vec<u8>> = megolm.iter().map(MegolmMessage::to_bytes).collect();
    check_round_trip(&sender, &sotto, &megolm_key, &megolm_bytes, &pt);

    let mut g = c.benchmark_group("message_decrypt_100B");
    g.throughput(Throughput::Elements(DECRYPT_RUN as u64));
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    g.bench_function("sotto_decode_verify_decrypt", |b| {
        b.iter_batched(
            || sender.receiver_chain(),
            |mut chain| {
                let mut total = 0;
                for bytes in &sotto {
                    total += sotto_open(black_box(bytes), &key, &mut chain);
                }
                total
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("vodozemac_megolm_decrypt", |b| {
        b.iter_batched(
            || megolm_inbound(&megolm_key),
            |mut session| {
                let mut total = 0;
                for message in &megolm {
                    total += session.decrypt(black_box(message)).unwrap().plaintext.len();
                }
                total
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("vodozemac_megolm_from_bytes_decrypt", |b| {
        b.iter_batched(
            || megolm_inbound(&megolm_key),
            |mut session| {
                let mut total = 0;
                for bytes in &megolm_bytes {
                    total += megolm_open(black_box(bytes), &mut session);
                }
                total
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn history_decrypt(c: &mut Criterion) {
    let mut rng = rng(3);
    let pt = text(&mut rng);
    let sender = Sender::new(&mut rng);
    let key = sender.key();
    let sotto = sender.messages(HISTORY, &pt);
    let (megolm_key, megolm) = megolm_messages(HISTORY, &pt);
    let megolm_bytes: Vec<Vec<u8>> = megolm.iter().map(MegolmMessage::to_bytes).collect();
    drop(megolm);
    check_round_trip(&sender, &sotto, &megolm_key, &megolm_bytes, &pt);
    let open_all = |chain: ReceiverChain| {
        let parsed: Vec<ParsedMessage> = sotto
            .iter()
            .map(|b| ParsedMessage::decode(black_box(b)).unwrap())
            .collect();
        let mut chains = [chain];
        let results = open_batch(parsed, &[key], &[context()], &mut chains);
        (results, chains)
    };
    {
        let (results, chains) = open_all(sender.receiver_chain());
        assert_eq!(results.len(), HISTORY);
        for r in &results {
            let opened = r.as_ref().unwrap();
            assert_eq!(opened.content(), pt);
            assert!(opened.gap().is_empty());
        }
        assert_eq!(chains[0].next_counter() as usize, HISTORY);
    }

    let mut g = c.benchmark_group("history_decrypt_10000");
    g.throughput(Throughput::Elements(HISTORY as u64));
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("sotto_open_batch", |b| {
        b.iter_batched(
            || sender.receiver_chain(),
            open_all,
            BatchSize::PerIteration,
        )
    });
    g.bench_function("sotto_one_by_one", |b| {
        b.iter_batched(
            || sender.receiver_chain(),
            |mut chain| {
                let mut total = 0;
                for bytes in &sotto {
                    total += sotto_open(black_box(bytes), &key, &mut chain);
                }
                total
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("vodozemac_megolm_one_by_one", |b| {
        b.iter_batched(
            || megolm_inbound(&megolm_key),
            |mut session| {
                let mut total = 0;
                for bytes in &megolm_bytes {
                    total += megolm_open(black_box(bytes), &mut session);
                }
                total
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn epoch_open(c: &mut Criterion) {
    let mut rng = rng(4);
    let owner = Device::generate(DeviceKind::Member, &mut rng, T0);
    let (_, team, keyring) =
        TeamState::create(&mut rng, &owner, &[], Policy::default(), T0).unwrap();
    let visitor = Device::generate(DeviceKind::Visitor, &mut rng, T0);
    let (record, secret) = EpochRecord::open(
        &mut rng,
        &visitor,
        &team,
        CONVERSATION,
        0,
        None,
        vec![visitor.record()],
        T0,
    )
    .unwrap();
    assert_eq!(
        record.secret_for_member(&keyring).unwrap().expose(),
        secret.expose()
    );
    assert_eq!(
        record.secret_for_visitor(&visitor).unwrap().expose(),
        secret.expose()
    );

    let mut g = c.benchmark_group("epoch_open");
    g.bench_function("sotto_one_owner_one_visitor", |b| {
        b.iter(|| {
            EpochRecord::open(
                &mut rng,
                &visitor,
                &team,
                CONVERSATION,
                0,
                None,
                vec![visitor.record()],
                T0,
            )
            .unwrap()
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = message_encrypt, message_decrypt, history_decrypt, epoch_open
}
criterion_main!(benches);
