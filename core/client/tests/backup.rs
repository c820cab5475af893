//! Backups: round trips both ways, refusals, bounded decoding, the format as PROTOCOL.md states
//! it, and checked-in known-answer vectors.
//!
//! `SOTTO_UPDATE_VECTORS=1 cargo test -p sotto-client --test backup` rewrites
//! `tests/vectors/backup-v1.json` after an intended format change.

// Native only: the browser runs tests/web.rs (tokio is not a wasm32 dev-dependency).
#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;

use proptest::prelude::*;
use rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};
use sotto_client::Error;
use sotto_client::backup::{
    self, Backup, BackupEntry, BackupKind, KdfParams, MAX_PAYLOAD_LEN, OpenWith, SealTo,
};
use sotto_client::store::{EncryptedStore, MemoryStore, Namespace, Query, RecordId, StoreKey};
use sotto_core::conversation::padding;
use sotto_core::conversation::{ChainId, ConversationId, ReceiverChain, SenderChain, Stream};
use sotto_core::crypto::aead::{self, AeadKey};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::device::{Device, DeviceKind};
use sotto_core::recovery::RecoverySecret;

fn rng(seed: u64) -> chacha20::ChaCha20Rng {
    chacha20::ChaCha20Rng::seed_from_u64(seed)
}

/// Cheap Argon2id parameters for tests (64 KiB, one pass).
fn cheap() -> KdfParams {
    KdfParams::new(64, 1, 1).unwrap()
}

fn rid(ns: &str, key: &[u8]) -> RecordId {
    RecordId::new(&Namespace::new(ns).unwrap(), key.to_vec()).unwrap()
}

/// What a client backs up: its device, a team keyring's seeds, epoch secrets, chain states.
fn client_secrets(seed: u64) -> Vec<BackupEntry> {
    let mut r = rng(seed);
    let device = Device::generate(DeviceKind::Member, &mut r, 1_767_225_600);
    let chain_id = ChainId {
        conversation: ConversationId([3; 16]),
        epoch: 2,
        sender: device.id(),
        instance: sotto_core::conversation::Instance([4; 8]),
        stream: Stream::Durable,
    };
    let epoch_secret = SecretBytes::<32>::random(&mut r);
    let mut sender = SenderChain::new(&epoch_secret, chain_id);
    sender.next_message_key().unwrap();
    let receiver = ReceiverChain::new(&epoch_secret, chain_id);
    let mut seed_bytes = [0u8; 32];
    r.fill_bytes(&mut seed_bytes);
    vec![
        BackupEntry::new(rid("device", b""), &device.export_secrets()),
        BackupEntry::new(rid("team.keys", &[0xAA; 16]), &seed_bytes),
        BackupEntry::new(rid("epoch", &[3; 20]), epoch_secret.expose()),
        BackupEntry::new(rid("chain.send", &[1; 53]), &sender.export()),
        BackupEntry::new(rid("chain.recv", &[2; 53]), &receiver.export()),
        BackupEntry::new(rid("empty", b""), b""),
    ]
}

fn same(a: &[BackupEntry], b: &[BackupEntry]) -> bool {
    let mut a: Vec<_> = a.iter().map(|e| (e.id.clone(), e.value.to_vec())).collect();
    let mut b: Vec<_> = b.iter().map(|e| (e.id.clone(), e.value.to_vec())).collect();
    a.sort();
    b.sort();
    a == b
}

#[test]
fn recovery_key_round_trip() {
    let secret = RecoverySecret::generate(&mut rng(1));
    let entries = client_secrets(2);
    let blob = Backup::seal(&entries, SealTo::RecoveryKey(&secret))
        .unwrap()
        .encode();
    let decoded = Backup::decode(&blob).unwrap();
    assert_eq!(decoded.kind(), BackupKind::RecoveryKey);
    assert_eq!(decoded.kdf_params(), None);
    assert_eq!(decoded.encode(), blob);

    // A person types the words back in, in capitals with extra spaces.
    let typed = secret.to_words().to_uppercase().replace(' ', "  ");
    let words = RecoverySecret::from_words(&typed).unwrap();
    let opened = decoded.open(OpenWith::RecoveryKey(&words)).unwrap();
    assert!(same(&opened, &entries));
    // Sorted by id, and the device comes back whole.
    assert!(opened.windows(2).all(|w| w[0].id < w[1].id));
    let dev = opened.iter().find(|e| e.id == rid("device", b"")).unwrap();
    let device = Device::import_secrets(&dev.value).unwrap();
    assert_eq!(
        device.export_secrets().as_slice(),
        entries[0].value.as_slice()
    );
}

#[test]
fn passphrase_round_trip() {
    let entries = client_secrets(3);
    let backup = Backup::seal(
        &entries,
        SealTo::Passphrase {
            passphrase: "correct horse battery staple ✓",
            params: cheap(),
        },
    )
    .unwrap();
    let blob = backup.encode();
    let decoded = Backup::decode(&blob).unwrap();
    assert_eq!(decoded, backup);
    assert_eq!(decoded.kind(), BackupKind::Passphrase);
    assert_eq!(decoded.kdf_params(), Some(cheap()));
    let opened = decoded
        .open(OpenWith::Passphrase("correct horse battery staple ✓"))
        .unwrap();
    assert!(same(&opened, &entries));
    // Two seals of the same records differ (fresh salt and nonce).
    let again = Backup::seal(
        &entries,
        SealTo::Passphrase {
            passphrase: "correct horse battery staple ✓",
            params: cheap(),
        },
    )
    .unwrap();
    assert_ne!(again.encode(), blob);
}

#[test]
fn default_parameters_are_owasp_and_work() {
    let p = KdfParams::default();
    assert_eq!(
        (p.memory_kib(), p.iterations(), p.parallelism()),
        (19 * 1024, 2, 1)
    );
    let entries = client_secrets(4);
    let blob = Backup::seal(
        &entries,
        SealTo::Passphrase {
            passphrase: "a long enough passphrase",
            params: p,
        },
    )
    .unwrap()
    .encode();
    // The parameters travel in the header: memory 19456 KiB, 2 passes, 1 lane.
    assert_eq!(&blob[4..16], &[0, 0, 0x4C, 0, 0, 0, 0, 2, 0, 0, 0, 1]);
    let opened = Backup::decode(&blob)
        .unwrap()
        .open(OpenWith::Passphrase("a long enough passphrase"))
        .unwrap();
    assert!(same(&opened, &entries));
}

#[test]
fn wrong_secrets_are_typed_errors() {
    let secret = RecoverySecret::generate(&mut rng(5));
    let entries = client_secrets(6);
    let by_words = Backup::seal(&entries, SealTo::RecoveryKey(&secret)).unwrap();
    let by_pass = Backup::seal(
        &entries,
        SealTo::Passphrase {
            passphrase: "right",
            params: cheap(),
        },
    )
    .unwrap();

    // Other valid words: the backup does not open.
    let other = RecoverySecret::generate(&mut rng(7));
    let err = by_words.open(OpenWith::RecoveryKey(&other)).unwrap_err();
    assert_eq!(err, Error::BackupDecryptionFailed);
    assert_eq!(err.code(), "backup_decryption_failed");
    // Mistyped words fail before that, with the core's codes.
    let words = secret.to_words();
    let mut list: Vec<&str> = words.split(' ').collect();
    list[3] = "notaword";
    let err: Error = RecoverySecret::from_words(&list.join(" "))
        .unwrap_err()
        .into();
    assert_eq!(err.code(), "recovery_unknown_word");
    let err: Error = RecoverySecret::from_words(&list[..12].join(" "))
        .unwrap_err()
        .into();
    assert_eq!(err.code(), "recovery_word_count");

    // Wrong, empty and over-long passphrases.
    assert_eq!(
        by_pass.open(OpenWith::Passphrase("wrong")).unwrap_err(),
        Error::BackupDecryptionFailed
    );
    assert_eq!(
        by_pass.open(OpenWith::Passphrase("Right")).unwrap_err(),
        Error::BackupDecryptionFailed
    );
    assert_eq!(
        by_pass.open(OpenWith::Passphrase("")).unwrap_err(),
        Error::BackupPassphrase
    );
    let long = "x".repeat(1025);
    assert_eq!(
        by_pass.open(OpenWith::Passphrase(&long)).unwrap_err(),
        Error::BackupPassphrase
    );
    assert_eq!(
        Backup::seal(
            &entries,
            SealTo::Passphrase {
                passphrase: "",
                params: cheap()
            }
        )
        .unwrap_err()
        .code(),
        "backup_passphrase"
    );

    // The other kind of secret.
    assert_eq!(
        by_pass.open(OpenWith::RecoveryKey(&secret)).unwrap_err(),
        Error::BackupWrongKind
    );
    assert_eq!(
        by_words.open(OpenWith::Passphrase("right")).unwrap_err(),
        Error::BackupWrongKind
    );
}

#[test]
fn every_flipped_byte_is_refused() {
    let secret = RecoverySecret::generate(&mut rng(8));
    let entries = client_secrets(9);
    let by_words = Backup::seal(&entries, SealTo::RecoveryKey(&secret))
        .unwrap()
        .encode();
    let by_pass = Backup::seal(
        &entries,
        SealTo::Passphrase {
            passphrase: "pass",
            params: cheap(),
        },
    )
    .unwrap()
    .encode();
    for (blob, with) in [
        (&by_words, OpenWith::RecoveryKey(&secret)),
        (&by_pass, OpenWith::Passphrase("pass")),
    ] {
        for i in 0..blob.len() {
            for bit in [0x01, 0x80] {
                let mut t = blob.clone();
                t[i] ^= bit;
                let result = Backup::decode(&t).and_then(|b| b.open(with));
                assert!(result.is_err(), "byte {i} bit {bit:#x} accepted");
            }
        }
    }
}

#[test]
fn truncated_and_extended_blobs_are_refused() {
    let secret = RecoverySecret::generate(&mut rng(10));
    let blob = Backup::seal(&client_secrets(11), SealTo::RecoveryKey(&secret))
        .unwrap()
        .encode();
    for cut in 0..blob.len() {
        let err = Backup::decode(&blob[..cut]).unwrap_err();
        assert!(
            matches!(
                err.code(),
                "decode_truncated" | "decode_invalid_value" | "decode_length_limit"
            ),
            "cut {cut}: {err:?}"
        );
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert_eq!(
        Backup::decode(&longer).unwrap_err().code(),
        "decode_trailing_bytes"
    );
}

#[test]
fn unknown_version_suite_type_and_kind_are_typed_errors() {
    let secret = RecoverySecret::generate(&mut rng(12));
    let blob = Backup::seal(&client_secrets(13), SealTo::RecoveryKey(&secret))
        .unwrap()
        .encode();
    assert_eq!(&blob[..4], &[1, 1, 10, 1]);
    let with = |i: usize, v: u8| {
        let mut t = blob.clone();
        t[i] = v;
        Backup::decode(&t).unwrap_err()
    };
    assert_eq!(
        with(0, 2),
        Error::Core(sotto_core::Error::Decode(
            sotto_core::DecodeError::UnknownVersion(2)
        ))
    );
    assert_eq!(with(0, 0).code(), "unknown_version");
    assert_eq!(with(1, 2).code(), "unknown_suite");
    assert_eq!(with(2, 5).code(), "decode_unexpected_object");
    assert_eq!(with(3, 3).code(), "decode_unknown_tag");
    assert_eq!(with(3, 0).code(), "decode_unknown_tag");
    // Kind 2 needs parameters: a recovery blob relabelled as passphrase is malformed.
    assert!(
        Backup::decode(&{
            let mut t = blob.clone();
            t[3] = 2;
            t
        })
        .is_err()
    );
}

#[test]
fn decoders_are_bounded() {
    // A sealed length of 4 GiB with a few bytes present: refused before any allocation.
    let mut huge = vec![1, 1, 10, 1, 0xFF, 0xFF, 0xFF, 0xFF];
    huge.extend_from_slice(&[0; 64]);
    assert_eq!(
        Backup::decode(&huge).unwrap_err().code(),
        "decode_length_limit"
    );
    // A length within bounds but more than present.
    let mut short = vec![1, 1, 10, 1, 0, 0, 1, 0x28];
    short.extend_from_slice(&[0; 64]);
    assert_eq!(
        Backup::decode(&short).unwrap_err().code(),
        "decode_truncated"
    );
    // A sealed part whose padded size is not a bucket, or below the minimum.
    for len in [0usize, 39, 40 + 255, 40 + 257, 40 + 300] {
        let mut b = vec![1, 1, 10, 1];
        b.extend_from_slice(&(len as u32).to_be_bytes());
        b.extend(vec![0; len]);
        assert_eq!(
            Backup::decode(&b).unwrap_err().code(),
            "decode_invalid_value",
            "{len}"
        );
    }
    // Argon2id parameters that would take 4 GiB, 1000 passes or 255 lanes: refused at decode,
    // before any key derivation.
    for (m, t, p) in [
        (4 * 1024 * 1024, 1, 1),
        (1024, 1000, 1),
        (1024 * 1024, 8, 1),
        (65536, 1, 255),
        (64, 0, 1),
        (4, 1, 1),
    ] {
        let mut b = vec![1, 1, 10, 2];
        for v in [m, t, p] {
            b.extend_from_slice(&u32::to_be_bytes(v));
        }
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&296u32.to_be_bytes());
        b.extend(vec![0; 296]);
        assert_eq!(
            Backup::decode(&b).unwrap_err(),
            Error::BackupKdfParams,
            "{m} {t} {p}"
        );
    }
}

#[test]
fn sealing_refuses_bad_record_sets() {
    let secret = RecoverySecret::generate(&mut rng(14));
    let dup = vec![
        BackupEntry::new(rid("device", b""), b"a"),
        BackupEntry::new(rid("device", b""), b"b"),
    ];
    assert_eq!(
        Backup::seal(&dup, SealTo::RecoveryKey(&secret)).unwrap_err(),
        Error::DuplicateRecord
    );
    let reserved = vec![BackupEntry::new(rid("sotto.meta", b"schema"), b"x")];
    assert_eq!(
        Backup::seal(&reserved, SealTo::RecoveryKey(&secret))
            .unwrap_err()
            .code(),
        "store_invalid_record_id"
    );
    let big = vec![BackupEntry::new(
        rid("blob", b""),
        &vec![0; MAX_PAYLOAD_LEN],
    )];
    assert_eq!(
        Backup::seal(&big, SealTo::RecoveryKey(&secret)).unwrap_err(),
        Error::BackupTooLarge
    );
    // An empty backup is fine.
    let empty = Backup::seal(&[], SealTo::RecoveryKey(&secret)).unwrap();
    assert!(
        empty
            .open(OpenWith::RecoveryKey(&secret))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn nothing_secret_in_debug_or_display() {
    let secret = RecoverySecret::generate(&mut rng(15));
    let entries = vec![BackupEntry::new(rid("device", b""), b"TOPSECRETVALUE")];
    let backup = Backup::seal(&entries, SealTo::RecoveryKey(&secret)).unwrap();
    let shown = format!(
        "{backup:?} {entries:?} {:?} {:?}",
        OpenWith::Passphrase("hunter2-passphrase"),
        StoreKey::from_bytes(SecretBytes::new([0xAB; 32]))
    );
    assert!(!shown.contains("TOPSECRETVALUE"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.to_lowercase().contains("abab"), "{shown}");
    let err = backup
        .open(OpenWith::RecoveryKey(&RecoverySecret::generate(&mut rng(
            16,
        ))))
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("TOPSECRET"));
}

/// Builds a blob from PROTOCOL.md's "Backups" section with the core primitives alone, as an
/// independent implementation would, consuming the RNG in the documented order (salt, then
/// nonce).
fn spec_blob(seed: u64, entries: &[(String, Vec<u8>, Vec<u8>)], to: &SpecTo) -> Vec<u8> {
    let mut r = rng(seed);
    let mut header = vec![1u8, 1, 10];
    let key = match to {
        SpecTo::Words(secret) => {
            header.push(1);
            secret.backup_key()
        }
        SpecTo::Pass(pass, m, t, p) => {
            header.push(2);
            let mut salt = [0u8; 16];
            r.fill_bytes(&mut salt);
            for v in [m, t, p] {
                header.extend_from_slice(&v.to_be_bytes());
            }
            header.extend_from_slice(&salt);
            let params = argon2::Params::new(*m, *t, *p, Some(32)).unwrap();
            let mut out = [0u8; 32];
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(pass.as_bytes(), &salt, &mut out)
                .unwrap();
            AeadKey::new(SecretBytes::new(out))
        }
    };
    let mut sorted = entries.to_vec();
    sorted.sort();
    let mut payload = (sorted.len() as u32).to_be_bytes().to_vec();
    for (ns, k, v) in &sorted {
        payload.push(ns.len() as u8);
        payload.extend_from_slice(ns.as_bytes());
        payload.extend_from_slice(&(k.len() as u16).to_be_bytes());
        payload.extend_from_slice(k);
        payload.extend_from_slice(&(v.len() as u32).to_be_bytes());
        payload.extend_from_slice(v);
    }
    let padded = padding::pad(&payload, usize::MAX).unwrap();
    let mut aad = b"sotto/v1/backup\0".to_vec();
    aad.extend_from_slice(&header);
    let sealed = aead::xseal_random(&mut r, &key, &aad, &padded);
    let mut blob = header;
    blob.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
    blob.extend_from_slice(&sealed);
    blob
}

enum SpecTo {
    Words(RecoverySecret),
    Pass(&'static str, u32, u32, u32),
}

fn spec_entries() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    vec![
        ("team.keys".into(), vec![0xAA; 16], vec![0x11; 32]),
        ("device".into(), vec![], b"device secrets".to_vec()),
        ("epoch".into(), vec![3; 20], vec![0x22; 32]),
    ]
}

fn as_entries(spec: &[(String, Vec<u8>, Vec<u8>)]) -> Vec<BackupEntry> {
    spec.iter()
        .map(|(ns, k, v)| BackupEntry::new(rid(ns, k), v))
        .collect()
}

#[test]
fn blobs_follow_the_specification() {
    let secret = RecoverySecret::generate(&mut rng(17));
    let spec = spec_entries();
    let ours = Backup::seal_with_rng(
        &mut rng(18),
        &as_entries(&spec),
        SealTo::RecoveryKey(&secret),
    )
    .unwrap()
    .encode();
    assert_eq!(ours, spec_blob(18, &spec, &SpecTo::Words(secret.clone())));

    let ours = Backup::seal_with_rng(
        &mut rng(19),
        &as_entries(&spec),
        SealTo::Passphrase {
            passphrase: "spec passphrase",
            params: KdfParams::new(256, 2, 2).unwrap(),
        },
    )
    .unwrap()
    .encode();
    assert_eq!(
        ours,
        spec_blob(19, &spec, &SpecTo::Pass("spec passphrase", 256, 2, 2))
    );
}

/// Payloads that authenticate but break the payload rules (a buggy or hostile writer that knows
/// the key) are typed decode errors.
#[test]
fn malformed_authentic_payloads_are_refused() {
    let secret = RecoverySecret::generate(&mut rng(20));
    let seal_payload = |payload: &[u8]| {
        let header = vec![1u8, 1, 10, 1];
        let mut aad = b"sotto/v1/backup\0".to_vec();
        aad.extend_from_slice(&header);
        let padded = padding::pad(payload, usize::MAX).unwrap();
        let sealed = aead::xseal_random(&mut rng(21), &secret.backup_key(), &aad, &padded);
        let mut blob = header;
        blob.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
        blob.extend_from_slice(&sealed);
        Backup::decode(&blob)
            .unwrap()
            .open(OpenWith::RecoveryKey(&secret))
    };
    let entry = |ns: &[u8], k: &[u8], v: &[u8]| {
        let mut e = vec![ns.len() as u8];
        e.extend_from_slice(ns);
        e.extend_from_slice(&(k.len() as u16).to_be_bytes());
        e.extend_from_slice(k);
        e.extend_from_slice(&(v.len() as u32).to_be_bytes());
        e.extend_from_slice(v);
        e
    };
    let with_count = |n: u32, body: Vec<u8>| {
        let mut p = n.to_be_bytes().to_vec();
        p.extend(body);
        p
    };
    let ok = with_count(1, entry(b"device", b"", b"v"));
    assert_eq!(seal_payload(&ok).unwrap().len(), 1);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "count beyond the data",
            with_count(1_000_000, entry(b"a", b"", b"")),
        ),
        ("count above the maximum", with_count(u32::MAX, vec![])),
        ("trailing bytes", {
            let mut p = ok.clone();
            p.push(0);
            p
        }),
        (
            "unsorted",
            with_count(2, [entry(b"b", b"", b""), entry(b"a", b"", b"")].concat()),
        ),
        (
            "duplicate",
            with_count(2, [entry(b"a", b"k", b""), entry(b"a", b"k", b"")].concat()),
        ),
        ("bad namespace", with_count(1, entry(b"Bad NS", b"", b""))),
        (
            "reserved namespace",
            with_count(1, entry(b"sotto.meta", b"schema", b"")),
        ),
        ("empty namespace", with_count(1, entry(b"", b"", b""))),
        ("key too long", with_count(1, entry(b"a", &[0; 257], b""))),
        ("value past the end", {
            let mut p = with_count(1, entry(b"a", b"", b""));
            let n = p.len();
            p[n - 1] = 9;
            p
        }),
        ("empty payload", vec![]),
    ];
    for (what, payload) in cases {
        let err = seal_payload(&payload).unwrap_err();
        assert!(
            err.code().starts_with("decode_"),
            "{what}: {err:?} ({})",
            err.code()
        );
    }
}

#[tokio::test]
async fn store_to_backup_to_new_store() {
    let key = StoreKey::generate().unwrap();
    let store = EncryptedStore::open(MemoryStore::new(), key).await.unwrap();
    let entries = client_secrets(22);
    backup::restore(&store, &entries).await.unwrap();
    store
        .put(&rid("msg", b"history"), b"not backed up")
        .await
        .unwrap();

    let wanted: Vec<Namespace> = [
        "device",
        "team.keys",
        "epoch",
        "chain.send",
        "chain.recv",
        "empty",
    ]
    .iter()
    .map(|n| Namespace::new(n).unwrap())
    .collect();
    let collected = backup::collect(&store, &wanted).await.unwrap();
    assert!(same(&collected, &entries));

    let secret = RecoverySecret::generate(&mut rng(23));
    let blob = Backup::seal(&collected, SealTo::RecoveryKey(&secret))
        .unwrap()
        .encode();

    // A new device: a fresh store, the words, the blob.
    let fresh = EncryptedStore::open(MemoryStore::new(), StoreKey::generate().unwrap())
        .await
        .unwrap();
    let restored = Backup::decode(&blob)
        .unwrap()
        .open(OpenWith::RecoveryKey(&secret))
        .unwrap();
    let v = backup::restore(&fresh, &restored).await.unwrap();
    for e in &entries {
        let got = fresh.get(&e.id).await.unwrap().unwrap();
        assert_eq!(got.value.as_slice(), e.value.as_slice());
        assert_eq!(got.version, v);
    }
    assert!(
        fresh
            .list(&Namespace::new("msg").unwrap(), &Query::default())
            .await
            .unwrap()
            .is_empty()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any input: decode returns (never panics), and what it accepts re-encodes to the input.
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(b) = Backup::decode(&bytes) {
            prop_assert_eq!(b.encode(), bytes);
        }
    }

    /// Valid headers with random tails, and random edits of a real blob.
    #[test]
    fn decode_handles_near_valid_input(
        kind in 0u8..4,
        tail in proptest::collection::vec(any::<u8>(), 0..400),
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..4),
    ) {
        let mut b = vec![1, 1, 10, kind];
        b.extend_from_slice(&tail);
        if let Ok(d) = Backup::decode(&b) {
            prop_assert_eq!(d.encode(), b);
        }
        let mut real = sample_blob().to_vec();
        let n = real.len();
        for (at, v) in &edits {
            real[usize::from(*at) % n] = *v;
        }
        if let Ok(d) = Backup::decode(&real) {
            prop_assert_eq!(d.encode(), real);
        }
    }
}

fn sample_blob() -> &'static [u8] {
    static BLOB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BLOB.get_or_init(|| {
        Backup::seal_with_rng(
            &mut rng(30),
            &as_entries(&spec_entries()),
            SealTo::Passphrase {
                passphrase: "p",
                params: cheap(),
            },
        )
        .unwrap()
        .encode()
    })
}

fn vector_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/backup-v1.json")
}

fn generate_vectors() -> Value {
    let secret = RecoverySecret::generate(&mut rng(40));
    let spec = spec_entries();
    let entries = as_entries(&spec);
    let words_blob = Backup::seal_with_rng(&mut rng(41), &entries, SealTo::RecoveryKey(&secret))
        .unwrap()
        .encode();
    let pass_blob = Backup::seal_with_rng(
        &mut rng(42),
        &entries,
        SealTo::Passphrase {
            passphrase: "Sotto backup vector",
            params: KdfParams::new(1024, 2, 1).unwrap(),
        },
    )
    .unwrap()
    .encode();
    let records: Vec<Value> = spec
        .iter()
        .map(|(ns, k, v)| json!({"namespace": ns, "key": hex::encode(k), "value": hex::encode(v)}))
        .collect();
    json!({
        "description": "Sotto backup known-answer vectors, wire version 1, suite 1 (docs/PROTOCOL.md, Backups). Generated from fixed seeds by core/client/tests/backup.rs; byte strings are hex.",
        "records": records,
        "recovery_key": {
            "words": secret.to_words().as_str(),
            "backup_key": hex::encode(secret.backup_key().secret_bytes().expose()),
            "blob": hex::encode(&words_blob),
        },
        "passphrase": {
            "passphrase": "Sotto backup vector",
            "memory_kib": 1024,
            "iterations": 2,
            "parallelism": 1,
            "blob": hex::encode(&pass_blob),
        },
    })
}

#[test]
fn checked_in_vectors_match_regeneration() {
    let fresh = generate_vectors();
    let path = vector_path();
    if std::env::var_os("SOTTO_UPDATE_VECTORS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = serde_json::to_string_pretty(&fresh).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("tests/vectors/backup-v1.json is checked in");
    let stored: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stored, fresh, "vectors differ from regeneration");
}

/// Opens the checked-in vectors as another implementation would: words and passphrase from the
/// file, records compared with the file.
#[test]
fn checked_in_vectors_open() {
    let text = std::fs::read_to_string(vector_path()).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let unhex = |s: &Value| hex::decode(s.as_str().unwrap()).unwrap();
    let expected: Vec<(RecordId, Vec<u8>)> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                rid(r["namespace"].as_str().unwrap(), &unhex(&r["key"])),
                unhex(&r["value"]),
            )
        })
        .collect();
    let check = |opened: Vec<BackupEntry>| {
        let mut got: Vec<_> = opened
            .into_iter()
            .map(|e| (e.id, e.value.to_vec()))
            .collect();
        let mut want = expected.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    };
    let words = RecoverySecret::from_words(v["recovery_key"]["words"].as_str().unwrap()).unwrap();
    check(
        Backup::decode(&unhex(&v["recovery_key"]["blob"]))
            .unwrap()
            .open(OpenWith::RecoveryKey(&words))
            .unwrap(),
    );
    let pass = v["passphrase"]["passphrase"].as_str().unwrap();
    let blob = Backup::decode(&unhex(&v["passphrase"]["blob"])).unwrap();
    assert_eq!(blob.kdf_params(), Some(KdfParams::new(1024, 2, 1).unwrap()));
    check(blob.open(OpenWith::Passphrase(pass)).unwrap());
}
