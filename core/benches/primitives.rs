//! Sotto's cryptographic primitives next to the closest public operations of vodozemac 0.11.1.
//!
//! Each criterion group holds our operation(s) and the vodozemac peer(s), so the ratio can be
//! read straight from one run. Both crates link the same copies of ed25519-dalek 3,
//! x25519-dalek 3 / curve25519-dalek 5 (with precomputed tables, via feature unification) and
//! hpke 0.14.1, so groups `sign`, `verify`, `x25519` and `hpke_single_shot` compare the wrappers
//! around one implementation, while the AEAD groups compare different constructions.
//!
//! What each peer includes:
//! - `sign`: sotto signs `label || msg` (27-byte domain label + 64-byte message, one `Vec`
//!   allocation); vodozemac `Ed25519Keypair::sign` signs the 64-byte message as is.
//! - `verify`: sotto `VerifyingKey::verify` (label prefix + `verify_strict`); vodozemac
//!   `Ed25519PublicKey::verify` (`verify_strict` on the bare message).
//! - `aead_seal_1KiB` / `aead_open_1KiB`: vodozemac exposes no bare AEAD without features (its
//!   AES-CBC/HMAC `Cipher` is private; `hazmat::Cipher` needs `low-level-api`). The nearest public
//!   symmetric encryption is a Megolm v1 message: `GroupSession::encrypt` = HKDF-SHA256 (message
//!   keys from the ratchet) + AES-256-CBC/PKCS#7 + HMAC-SHA256 (truncated to 8 bytes) +
//!   **Ed25519 signature over the whole message** + ratchet advance; `InboundGroupSession::decrypt`
//!   = **Ed25519 verification** + HKDF + HMAC check + AES-256-CBC decryption. The public-key
//!   signature dominates, so this is orientation, not a like-for-like AEAD comparison.
//! - `hpke_single_shot`: vodozemac `hpke::HpkeSenderChannel::establish_channel` /
//!   `HpkeRecipientChannel::establish_channel` are RFC 9180 base-mode setup + one seal/open with the
//!   same suite as ours (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305), plus wrapping
//!   the context in a channel struct. The sender draws its ephemeral key from the OS RNG
//!   (getrandom), ours from a seeded ChaCha20Rng. No vodozemac feature is needed for this.
//! - `x25519`: both are `StaticSecret::diffie_hellman` + `was_contributory` check.
//!
//! Run: `cargo bench -p sotto-core --bench primitives`.

use std::hint::black_box;
use std::time::Duration;

use chacha20::ChaCha20Rng;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand_core::{Rng, SeedableRng};
use sotto_core::crypto::aead::{self, AeadKey, Nonce, XNonce};
use sotto_core::crypto::agreement::AgreementSecret;
use sotto_core::crypto::hpke;
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::crypto::sign::{SignatureContext, SigningKey};
use vodozemac::hpke::{HpkeRecipientChannel, HpkeSenderChannel};
use vodozemac::megolm::{GroupSession, InboundGroupSession, SessionConfig};
use vodozemac::{Curve25519PublicKey, Curve25519SecretKey, Ed25519Keypair};

/// Message signed in the `sign` / `verify` groups.
const SIGN_MSG_LEN: usize = 64;
/// Plaintext of the AEAD groups.
const AEAD_LEN: usize = 1024;
/// Plaintext of the HPKE group.
const HPKE_LEN: usize = 100;
/// HPKE `info`, the same string for both sides (vodozemac's default is 20 bytes long too).
const HPKE_INFO: &str = "sotto/v1/bench/hpke\0";
/// Associated data of the AEAD groups (Megolm has none; ours is a short header).
const AAD: &[u8] = b"bench-hdr";

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn bytes<const N: usize>(rng: &mut ChaCha20Rng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill_bytes(&mut out);
    out
}

fn sign(c: &mut Criterion) {
    let mut rng = rng(1);
    let msg: [u8; SIGN_MSG_LEN] = bytes(&mut rng);
    let sotto = SigningKey::generate(&mut rng);
    // vodozemac has no seeded constructor for a key pair; key bytes do not affect timing.
    let vodo = Ed25519Keypair::new();

    let mut g = c.benchmark_group("sign");
    g.bench_function("sotto_ed25519", |b| {
        b.iter(|| sotto.sign(SignatureContext::KeyAgreement, black_box(&msg)))
    });
    g.bench_function("vodozemac_ed25519", |b| {
        b.iter(|| vodo.sign(black_box(&msg)))
    });
    g.finish();
}

fn verify(c: &mut Criterion) {
    let mut rng = rng(2);
    let msg: [u8; SIGN_MSG_LEN] = bytes(&mut rng);
    let sotto = SigningKey::generate(&mut rng);
    let sotto_vk = sotto.verifying_key();
    let sotto_sig = sotto.sign(SignatureContext::KeyAgreement, &msg);
    let vodo = Ed25519Keypair::new();
    let vodo_pk = vodo.public_key();
    let vodo_sig = vodo.sign(&msg);
    assert!(
        sotto_vk
            .verify(SignatureContext::KeyAgreement, &msg, &sotto_sig)
            .is_ok()
    );
    assert!(vodo_pk.verify(&msg, &vodo_sig).is_ok());

    let mut g = c.benchmark_group("verify");
    g.bench_function("sotto_ed25519", |b| {
        b.iter(|| {
            sotto_vk
                .verify(SignatureContext::KeyAgreement, black_box(&msg), &sotto_sig)
                .is_ok()
        })
    });
    g.bench_function("vodozemac_ed25519", |b| {
        b.iter(|| vodo_pk.verify(black_box(&msg), &vodo_sig).is_ok())
    });
    g.finish();
}

/// A Megolm outbound session and the matching inbound one (taken at index 0).
fn megolm_pair() -> (GroupSession, InboundGroupSession) {
    let outbound = GroupSession::new(SessionConfig::version_1());
    let inbound = InboundGroupSession::new(&outbound.session_key(), SessionConfig::version_1());
    (outbound, inbound)
}

fn aead_seal(c: &mut Criterion) {
    let mut rng = rng(3);
    let key = AeadKey::generate(&mut rng);
    let nonce = Nonce(bytes(&mut rng));
    let xnonce = XNonce(bytes(&mut rng));
    let pt: [u8; AEAD_LEN] = bytes(&mut rng);
    let (mut outbound, _inbound) = megolm_pair();

    let mut g = c.benchmark_group("aead_seal_1KiB");
    g.throughput(Throughput::Bytes(AEAD_LEN as u64));
    g.bench_function("sotto_chacha20poly1305", |b| {
        b.iter(|| aead::seal(&key, &nonce, AAD, black_box(&pt)))
    });
    g.bench_function("sotto_xchacha20poly1305", |b| {
        b.iter(|| aead::xseal(&key, &xnonce, AAD, black_box(&pt)))
    });
    // AES-256-CBC + HMAC-SHA256 + Ed25519 signature + ratchet advance (see the module docs).
    g.bench_function("vodozemac_megolm_v1_encrypt", |b| {
        b.iter(|| outbound.encrypt(black_box(&pt)))
    });
    g.finish();
}

fn aead_open(c: &mut Criterion) {
    let mut rng = rng(4);
    let key = AeadKey::generate(&mut rng);
    let nonce = Nonce(bytes(&mut rng));
    let xnonce = XNonce(bytes(&mut rng));
    let pt: [u8; AEAD_LEN] = bytes(&mut rng);
    let ct = aead::seal(&key, &nonce, AAD, &pt);
    let xct = aead::xseal(&key, &xnonce, AAD, &pt);
    assert_eq!(aead::open(&key, &nonce, AAD, &ct).unwrap(), pt);
    assert_eq!(aead::xopen(&key, &xnonce, AAD, &xct).unwrap(), pt);

    // Message index 0 is the inbound session's initial ratchet, so every decryption finds its
    // key without advancing a ratchet (the cheapest case for Megolm).
    let (mut outbound, mut inbound) = megolm_pair();
    let megolm_msg = outbound.encrypt(pt);
    assert_eq!(inbound.decrypt(&megolm_msg).unwrap().plaintext, pt);

    let mut g = c.benchmark_group("aead_open_1KiB");
    g.throughput(Throughput::Bytes(AEAD_LEN as u64));
    g.bench_function("sotto_chacha20poly1305", |b| {
        b.iter(|| aead::open(&key, &nonce, AAD, black_box(&ct)).unwrap())
    });
    g.bench_function("sotto_xchacha20poly1305", |b| {
        b.iter(|| aead::xopen(&key, &xnonce, AAD, black_box(&xct)).unwrap())
    });
    // Ed25519 verification + HMAC-SHA256 check + AES-256-CBC decryption (see the module docs).
    g.bench_function("vodozemac_megolm_v1_decrypt", |b| {
        b.iter(|| inbound.decrypt(black_box(&megolm_msg)).unwrap())
    });
    g.finish();
}

fn hpke_single_shot(c: &mut Criterion) {
    let mut rng = rng(5);
    let recipient = AgreementSecret::generate(&mut rng);
    let recipient_pk = recipient.public_key();
    let pt: [u8; HPKE_LEN] = bytes(&mut rng);
    let info = HPKE_INFO.as_bytes();
    let sealed = hpke::seal_base(&mut rng, &recipient_pk, info, &[], &pt).unwrap();
    assert_eq!(hpke::open_base(&recipient, &sealed, info, &[]).unwrap(), pt);

    // vodozemac's recipient channel is consumed by `establish_channel` and owns a key generated
    // from the OS RNG, so each opening gets a fresh recipient and message, built outside the
    // timed section. Its sender channel is consumed too and is likewise built untimed.
    let vodo_recipient = HpkeRecipientChannel::with_info(HPKE_INFO);
    let vodo_recipient_pk = vodo_recipient.public_key();
    let vodo_msg = HpkeSenderChannel::with_info(HPKE_INFO)
        .establish_channel(vodo_recipient_pk, &pt, &[])
        .unwrap()
        .message;
    assert_eq!(
        vodo_recipient
            .establish_channel(&vodo_msg, &[])
            .unwrap()
            .message,
        pt
    );

    let mut g = c.benchmark_group("hpke_single_shot");
    g.bench_function("sotto_seal_base", |b| {
        b.iter(|| hpke::seal_base(&mut rng, &recipient_pk, info, &[], black_box(&pt)).unwrap())
    });
    g.bench_function("vodozemac_sender_establish_channel", |b| {
        b.iter_batched(
            || HpkeSenderChannel::with_info(HPKE_INFO),
            |sender| {
                sender
                    .establish_channel(vodo_recipient_pk, black_box(&pt), &[])
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("sotto_open_base", |b| {
        b.iter(|| hpke::open_base(&recipient, black_box(&sealed), info, &[]).unwrap())
    });
    g.bench_function("vodozemac_recipient_establish_channel", |b| {
        b.iter_batched(
            || {
                let recipient = HpkeRecipientChannel::with_info(HPKE_INFO);
                let msg = HpkeSenderChannel::with_info(HPKE_INFO)
                    .establish_channel(recipient.public_key(), &pt, &[])
                    .unwrap()
                    .message;
                (recipient, msg)
            },
            |(recipient, msg)| recipient.establish_channel(black_box(&msg), &[]).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn x25519(c: &mut Criterion) {
    let mut rng = rng(6);
    let ours_bytes: [u8; 32] = bytes(&mut rng);
    let peer_bytes: [u8; 32] = bytes(&mut rng);
    // The same secret and peer key on both sides.
    let sotto = AgreementSecret::from_secret_bytes(&SecretBytes::new(ours_bytes));
    let sotto_peer = AgreementSecret::from_secret_bytes(&SecretBytes::new(peer_bytes)).public_key();
    let vodo = Curve25519SecretKey::from_slice(&ours_bytes);
    let vodo_peer = Curve25519PublicKey::from(&Curve25519SecretKey::from_slice(&peer_bytes));
    assert_eq!(vodo_peer.as_bytes(), sotto_peer.as_bytes());
    assert_eq!(
        sotto.agree(&sotto_peer).unwrap().expose(),
        vodo.diffie_hellman(&vodo_peer).unwrap().as_bytes()
    );

    let mut g = c.benchmark_group("x25519");
    g.bench_function("sotto_agree", |b| {
        b.iter(|| sotto.agree(black_box(&sotto_peer)).unwrap())
    });
    g.bench_function("vodozemac_diffie_hellman", |b| {
        b.iter(|| vodo.diffie_hellman(black_box(&vodo_peer)).unwrap())
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
    targets = sign, verify, aead_seal, aead_open, hpke_single_shot, x25519
}
criterion_main!(benches);
