//! Known-answer vectors for Sotto's own constructions.
//!
//! The vectors in `tests/vectors/core-v1.json` are generated from a fixed seed. This test
//! regenerates them and compares, so any change to an encoding, label or derivation shows up as
//! a diff to that file (and must come with a matching change to `docs/PROTOCOL.md`). It also
//! checks the checked-in file the way another implementation would: by decoding and opening.
//!
//! To regenerate after a deliberate change: `SOTTO_UPDATE_VECTORS=1 cargo test --test known_answers`.

use std::path::PathBuf;

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sotto_core::codec::Decode;
use sotto_core::codec::Encode;
use sotto_core::conversation::attachment::{decrypt_attachment, encrypt_attachment};
use sotto_core::conversation::epoch::{EpochAuthor, EpochRecord, SenderClose};
use sotto_core::conversation::{
    AttachmentRef, ChainId, ConversationDeletion, ConversationId, DeletionAuthority, Instance,
    MessageContext, MessageKind, ParsedMessage, ReceiverChain, SenderChain, seal_message,
};
use sotto_core::crypto::aead::{self, AeadKey};
use sotto_core::crypto::agreement::AgreementSecret;
use sotto_core::crypto::hkdf;
use sotto_core::crypto::hpke::{self, HpkeSealed};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::crypto::sign::{Signature, SigningKey};
use sotto_core::device::{Device, DeviceId, DeviceKind, DeviceRecord, KeyAgreementRecord};
use sotto_core::recovery::RecoverySecret;
use sotto_core::team::witness::{WitnessStatement, WitnessVerdict};
use sotto_core::team::{Change, Link, LinkHash, MemberId, Policy, Role, TeamKeyring, TeamState};
use sotto_core::wire::WireObject;

const SEED: [u8; 32] = *b"sotto known-answer vectors v1 --";
const WITNESS_SEED: [u8; 32] = *b"sotto known-answer witness v1 --";
const DELETION_SEED: [u8; 32] = *b"sotto known-answer deletion v1 -";
const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn vector_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/core-v1.json")
}

fn h(bytes: &[u8]) -> Value {
    Value::String(hex::encode(bytes))
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn generate() -> Value {
    let mut rng = ChaCha20Rng::from_seed(SEED);

    let recovery = RecoverySecret::generate(&mut rng);
    let recovery_device = recovery.device();

    let mut member = Device::generate(DeviceKind::Member, &mut rng, NOW);
    let member_record_g0 = member.record();
    let (rotated, _previous) = member
        .rotate_key_agreement(&mut rng, NOW + 86_400)
        .expect("rotate");
    let visitor = Device::generate(DeviceKind::Visitor, &mut rng, NOW);

    let info = b"sotto/v1/kat/hpke";
    let aad = b"kat associated data";
    let pt = b"a team key generation secret, 32";
    let base = hpke::seal_base(
        &mut rng,
        &member.record().key_agreement().public_key,
        info,
        aad,
        pt,
    )
    .expect("seal base");
    let auth = hpke::seal_auth(
        &mut rng,
        &member.record().key_agreement().public_key,
        visitor.agreement_secret(),
        info,
        aad,
        pt,
    )
    .expect("seal auth");

    let store_key = AeadKey::generate(&mut rng);
    let store_value = aead::xseal_random(&mut rng, &store_key, b"record/42", b"stored value");
    let nonce = aead::Nonce([0x24; 12]);
    let message = aead::seal(&store_key, &nonce, b"header", b"message");

    let mut okm = [0u8; 42];
    hkdf::derive(
        b"salt",
        b"input keying material",
        b"sotto/v1/kat/hkdf",
        &mut okm,
    )
    .expect("hkdf");

    let team = team_vectors(&mut rng);
    // Its own seed, so adding it left every earlier vector unchanged.
    let witness = witness_vectors(&mut ChaCha20Rng::from_seed(WITNESS_SEED));
    let deletion = deletion_vectors(&mut ChaCha20Rng::from_seed(DELETION_SEED));

    json!({
        "team": team,
        "witness": witness,
        "conversation_deletion": deletion,
        "description": "Sotto core known-answer vectors, suite 1, wire version 1. Generated from a fixed seed by core/tests/known_answers.rs; byte strings are hex.",
        "recovery": {
            "secret_words": recovery.to_words().as_str(),
            "device_id": h(&recovery_device.id().0),
            "device_record": h(&recovery_device.record().to_wire()),
            "backup_key": h(recovery.backup_key().secret_bytes().expose()),
        },
        "member_device": {
            "secrets_generation_1": h(&member.export_secrets()),
            "device_id": h(&member.id().0),
            "record_generation_0": h(&member_record_g0.to_wire()),
            "record_generation_1": h(&member.record().to_wire()),
            "key_agreement_record_generation_1": h(&rotated.to_wire()),
        },
        "visitor_device": {
            "secrets": h(&visitor.export_secrets()),
            "record": h(&visitor.record().to_wire()),
        },
        "hpke": {
            "info": h(info),
            "aad": h(aad),
            "plaintext": h(pt),
            "recipient": "member_device generation 1",
            "base_sealed": h(&base.to_wire()),
            "auth_sender": "visitor_device",
            "auth_sealed": h(&auth.to_wire()),
        },
        "aead": {
            "key": h(store_key.secret_bytes().expose()),
            "xchacha_random_nonce": { "aad": h(b"record/42"), "plaintext": h(b"stored value"), "sealed": h(&store_value) },
            "chacha": { "nonce": h(&nonce.0), "aad": h(b"header"), "plaintext": h(b"message"), "ciphertext": h(&message) },
        },
        "hkdf_sha256": {
            "salt": h(b"salt"), "ikm": h(b"input keying material"), "info": h(b"sotto/v1/kat/hkdf"), "okm": h(&okm),
        },
    })
}

/// A team whose owner names a freshness witness (change 12), and the witness's statement of the
/// head (PROTOCOL §6.8).
fn witness_vectors(rng: &mut ChaCha20Rng) -> Value {
    let owner = Device::generate(DeviceKind::Member, rng, NOW);
    let (first, mut state, mut keyring) =
        TeamState::create(rng, &owner, &[], Policy::default(), NOW).expect("create");
    let witness_key = SigningKey::generate(rng);
    let link = state
        .propose(
            rng,
            &owner,
            &mut keyring,
            Change::SetWitness {
                url: "https://witness.example.com".into(),
                key: witness_key.verifying_key(),
            },
            false,
            NOW,
        )
        .expect("propose");
    state.apply(&link).expect("apply");
    let statement = WitnessStatement::sign(&state, &witness_key, NOW);
    json!({
        "fingerprint": h(&first.hash().0),
        "links": [h(&first.to_wire()), h(&link.to_wire())],
        "witness_public_key": h(witness_key.verifying_key().as_bytes()),
        "now": NOW,
        "statement": h(&statement.to_wire()),
    })
}

#[test]
fn checked_in_witness_vectors_verify_independently() {
    let text = std::fs::read_to_string(vector_path()).expect("vectors");
    let v: Value = serde_json::from_str(&text).expect("json");
    let w = &v["witness"];
    let links: Vec<Link> = w["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| Link::from_wire(&unhex(l)).expect("link decodes"))
        .collect();
    let fingerprint = LinkHash(unhex(&w["fingerprint"]).try_into().expect("32 bytes"));
    let state = TeamState::verify_chain(&links, &fingerprint).expect("chain verifies");
    let (url, key) = state.witness().expect("the chain names a witness");
    assert_eq!(url, "https://witness.example.com");
    assert_eq!(key.as_bytes().to_vec(), unhex(&w["witness_public_key"]));
    let statement = WitnessStatement::from_wire(&unhex(&w["statement"])).expect("decodes");
    assert_eq!(
        statement.check(&state, w["now"].as_u64().expect("now")),
        Ok(WitnessVerdict::Current)
    );
}

/// A team with an admin and an agent, a visitor's conversation, and conversation deletions
/// (object type 13, PROTOCOL §7.13) by the visitor and the admin (valid) and by the agent
/// (refused: `deletion_not_permitted`).
fn deletion_vectors(rng: &mut ChaCha20Rng) -> Value {
    let owner = Device::generate(DeviceKind::Member, rng, NOW);
    let (first, mut state, mut keyring) =
        TeamState::create(rng, &owner, &[], Policy::default(), NOW).expect("create");
    let mut links = vec![h(&first.to_wire())];
    let admin = Device::generate(DeviceKind::Member, rng, NOW);
    let agent = Device::generate(DeviceKind::Member, rng, NOW);
    for (device, role) in [(&admin, Role::Admin), (&agent, Role::Agent)] {
        let change = Change::AddMember {
            member: MemberId::random(rng),
            role,
            devices: vec![device.record()],
        };
        let link = state
            .propose(rng, &owner, &mut keyring, change, false, NOW)
            .expect("propose");
        state.apply(&link).expect("apply");
        links.push(h(&link.to_wire()));
    }
    let visitor = Device::generate(DeviceKind::Visitor, rng, NOW);
    let conversation = ConversationId::random(rng);
    let sign = |device: &Device| {
        h(&ConversationDeletion::sign(device, state.team(), conversation, NOW + 60).to_wire())
    };
    json!({
        "fingerprint": h(&first.hash().0),
        "links": links,
        "conversation": h(&conversation.0),
        "visitor_record": h(&visitor.record().to_wire()),
        "label": h(b"sotto/v1/sig/conversation-deletion\0"),
        "by_visitor": sign(&visitor),
        "by_admin": sign(&admin),
        "by_agent_refused": sign(&agent),
    })
}

#[test]
fn checked_in_deletion_vectors_verify_independently() {
    let text = std::fs::read_to_string(vector_path()).expect("vectors");
    let v: Value = serde_json::from_str(&text).expect("json");
    let d = &v["conversation_deletion"];
    let links: Vec<Link> = d["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| Link::from_wire(&unhex(l)).expect("link decodes"))
        .collect();
    let fingerprint = LinkHash(unhex(&d["fingerprint"]).try_into().expect("32 bytes"));
    let state = TeamState::verify_chain(&links, &fingerprint).expect("chain verifies");
    let conversation = ConversationId(unhex(&d["conversation"]).try_into().expect("16 bytes"));
    let visitor = DeviceRecord::from_wire(&unhex(&d["visitor_record"])).expect("visitor");
    let label = unhex(&d["label"]);
    for (name, expected) in [
        ("by_visitor", Ok(DeletionAuthority::Visitor)),
        ("by_admin", Ok(DeletionAuthority::Member(Role::Admin))),
        ("by_agent_refused", Err("deletion_not_permitted")),
    ] {
        let bytes = unhex(&d[name]);
        // The layout of §7.13: header, team, conversation, author, created_at, signature, and
        // the signature over label || everything before it, checked without the decoder.
        assert_eq!(bytes.len(), 139, "{name}");
        assert_eq!(&bytes[..3], &[1, 1, 13]);
        assert_eq!(&bytes[3..19], &state.team().0);
        assert_eq!(&bytes[19..35], &conversation.0);
        let author = DeviceId(bytes[35..67].try_into().expect("32 bytes"));
        let key = if author == visitor.id() {
            *visitor.identity()
        } else {
            *state.device(&author).expect("a team device").identity()
        };
        let mut signed = label.clone();
        signed.extend_from_slice(&bytes[..75]);
        let signature = Signature::from_slice(&bytes[75..]).expect("64 bytes");
        key.verify_unlabelled(&signed, &signature)
            .expect("signature over label || body");
        let deletion = ConversationDeletion::from_wire(&bytes).expect("decodes");
        assert_eq!(
            deletion
                .verify(&state, &conversation, std::slice::from_ref(&visitor))
                .map_err(|e| e.code()),
            expected,
            "{name}"
        );
    }
}

/// A team (owner creates, adds an agent, rotates), a visitor's epoch record, one message each way
/// and a small attachment.
fn team_vectors(rng: &mut ChaCha20Rng) -> Value {
    let owner = Device::generate(DeviceKind::Member, rng, NOW);
    let agent = Device::generate(DeviceKind::Member, rng, NOW);
    let visitor = Device::generate(DeviceKind::Visitor, rng, NOW);
    let (first, mut state, mut keyring) =
        TeamState::create(rng, &owner, &[], Policy::default(), NOW).expect("create");
    let mut links = vec![first];
    let agent_member = MemberId::random(rng);
    for change in [
        Change::AddMember {
            member: agent_member,
            role: Role::Agent,
            devices: vec![agent.record()],
        },
        Change::RotateKey,
    ] {
        let link = state
            .propose(rng, &owner, &mut keyring, change, false, NOW)
            .expect("propose");
        state.apply(&link).expect("apply");
        links.push(link);
    }
    let conversation = ConversationId::random(rng);
    let (record, secret) = EpochRecord::open(
        rng,
        &visitor,
        &state,
        conversation,
        0,
        None,
        vec![visitor.record()],
        NOW,
    )
    .expect("epoch");
    // The agent opens the next epoch, closing the first where both chains ended (one message
    // each).
    let closes = [&visitor, &agent]
        .iter()
        .map(|d| SenderClose {
            sender: d.id(),
            instance: Instance([0x11; 8]),
            next: 1,
        })
        .collect();
    let (next_record, _) = EpochRecord::open(
        rng,
        &agent,
        &state,
        conversation,
        1,
        Some((&record, Some(closes))),
        vec![visitor.record()],
        NOW,
    )
    .expect("next epoch");
    let text_chain = |d: &Device| ChainId {
        conversation,
        epoch: 0,
        sender: d.id(),
        instance: Instance([0x11; 8]),
        stream: MessageKind::Text.stream(),
    };
    let context = MessageContext::of(&record);
    let mut visitor_out = SenderChain::new(&secret, text_chain(&visitor));
    let from_visitor = seal_message(
        &mut visitor_out,
        &visitor,
        MessageKind::Text,
        b"hello team",
        &context,
    )
    .expect("seal");
    let mut agent_out = SenderChain::new(&secret, text_chain(&agent));
    let from_agent = seal_message(
        &mut agent_out,
        &agent,
        MessageKind::Text,
        b"hello visitor",
        &context,
    )
    .expect("seal");
    let file = b"attachment bytes, short enough for one chunk";
    let (blob, reference) =
        encrypt_attachment(rng, file, "note.txt", "text/plain").expect("attachment");

    json!({
        "owner_secrets": h(&owner.export_secrets()),
        "agent_secrets": h(&agent.export_secrets()),
        "visitor_secrets": h(&visitor.export_secrets()),
        "fingerprint": h(&links[0].hash().0),
        "links": links.iter().map(|l| h(&l.to_wire())).collect::<Vec<_>>(),
        "head": h(&state.head().0),
        "epoch_record": h(&record.to_wire()),
        "epoch_secret": h(secret.expose()),
        "epoch_record_next": h(&next_record.to_wire()),
        "epoch_record_hash": h(&context.record_hash),
        "message_from_visitor": { "text": h(b"hello team"), "wire": h(&from_visitor) },
        "message_from_agent": { "text": h(b"hello visitor"), "wire": h(&from_agent) },
        "attachment": { "plaintext": h(file), "blob": h(&blob), "reference": h(&reference.encode_to_vec()) },
    })
}

#[test]
fn checked_in_team_vectors_verify_independently() {
    let text = std::fs::read_to_string(vector_path()).expect("vectors");
    let v: Value = serde_json::from_str(&text).expect("json");
    let t = &v["team"];
    let links: Vec<Link> = t["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| Link::from_wire(&unhex(l)).expect("link decodes"))
        .collect();
    let fingerprint = LinkHash(unhex(&t["fingerprint"]).try_into().expect("32 bytes"));
    let state = TeamState::verify_chain(&links, &fingerprint).expect("chain verifies");
    assert_eq!(state.head().0.to_vec(), unhex(&t["head"]));

    let agent = Device::import_secrets(&unhex(&t["agent_secrets"])).expect("agent");
    let mut keyring = TeamKeyring::new();
    let mut replay = TeamState::from_genesis(&links[0], &fingerprint).expect("genesis");
    for link in &links[1..] {
        replay.apply(link).expect("apply");
        let refused = replay.absorb_keys(link, &agent, &mut keyring);
        assert!(refused.is_empty(), "keys");
    }
    let record = EpochRecord::from_wire(&unhex(&t["epoch_record"])).expect("record");
    assert_eq!(
        record
            .verify(&state, None, NOW)
            .expect("record verifies")
            .author,
        EpochAuthor::Visitor
    );
    let next = EpochRecord::from_wire(&unhex(&t["epoch_record_next"])).expect("next record");
    next.follows(&record).expect("follows the first");
    assert_eq!(
        next.verify(&state, Some(&record.visitor_devices), NOW)
            .expect("next record verifies")
            .author,
        EpochAuthor::Member
    );
    assert_eq!(next.closed_at(&agent.id(), &Instance([0x11; 8])), Some(1));
    let secret = record
        .secret_for_member(&keyring)
        .expect("agent opens the epoch");
    assert_eq!(secret.expose().to_vec(), unhex(&t["epoch_secret"]));
    let visitor = Device::import_secrets(&unhex(&t["visitor_secrets"])).expect("visitor");
    assert!(
        record
            .secret_for_visitor(&visitor)
            .expect("visitor opens")
            .ct_eq(&secret)
    );

    // The message context: the team and the record's hash (PROTOCOL §7.4, §7.12).
    let context = MessageContext::of(&record);
    let mut h = Sha256::new();
    h.update(b"sotto/v1/epoch-record-hash\0");
    h.update(unhex(&t["epoch_record"]));
    let digest: [u8; 32] = h.finalize().into();
    assert_eq!(context.record_hash, digest);
    assert_eq!(context.record_hash.to_vec(), unhex(&t["epoch_record_hash"]));
    for (key, sender) in [
        ("message_from_visitor", *visitor.record().identity()),
        ("message_from_agent", *agent.record().identity()),
    ] {
        let parsed = ParsedMessage::decode(&unhex(&t[key]["wire"])).expect("message decodes");
        let mut chain = ReceiverChain::new(&secret, parsed.header().chain());
        let opened = parsed
            .verify(&sender, &context)
            .expect("signature")
            .decrypt(&mut chain)
            .expect("decrypts");
        assert_eq!(opened.content().to_vec(), unhex(&t[key]["text"]));
    }

    let reference =
        AttachmentRef::decode_exact(&unhex(&t["attachment"]["reference"])).expect("reference");
    let plain =
        decrypt_attachment(&reference, &unhex(&t["attachment"]["blob"])).expect("attachment");
    assert_eq!(plain.to_vec(), unhex(&t["attachment"]["plaintext"]));
}

#[test]
fn checked_in_vectors_match_regeneration() {
    let fresh = generate();
    let path = vector_path();
    if std::env::var_os("SOTTO_UPDATE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&fresh).expect("json") + "\n";
        std::fs::write(&path, text).expect("write vectors");
    }
    let text = std::fs::read_to_string(&path).expect("tests/vectors/core-v1.json is checked in");
    let stored: Value = serde_json::from_str(&text).expect("valid json");
    assert_eq!(
        stored, fresh,
        "vectors differ from regeneration; see the module docs"
    );
}

/// Reads the checked-in file as an independent implementation would: decode every object,
/// derive what can be derived, open every ciphertext.
#[test]
fn checked_in_vectors_verify_independently() {
    let text = std::fs::read_to_string(vector_path()).expect("vectors");
    let v: Value = serde_json::from_str(&text).expect("json");

    let recovery =
        RecoverySecret::from_words(v["recovery"]["secret_words"].as_str().expect("words"))
            .expect("words parse");
    assert_eq!(
        recovery.device().record().to_wire(),
        unhex(&v["recovery"]["device_record"])
    );
    assert_eq!(
        recovery.device().id().0.to_vec(),
        unhex(&v["recovery"]["device_id"])
    );
    assert_eq!(
        recovery.backup_key().secret_bytes().expose().to_vec(),
        unhex(&v["recovery"]["backup_key"])
    );

    let member = Device::import_secrets(&unhex(&v["member_device"]["secrets_generation_1"]))
        .expect("secrets");
    assert_eq!(
        member.record().to_wire(),
        unhex(&v["member_device"]["record_generation_1"])
    );
    let g0 =
        DeviceRecord::from_wire(&unhex(&v["member_device"]["record_generation_0"])).expect("g0");
    let mut g = g0.clone();
    let ka = KeyAgreementRecord::from_wire(&unhex(
        &v["member_device"]["key_agreement_record_generation_1"],
    ))
    .expect("ka");
    g.rotate_to(ka)
        .expect("rotation record is signed by the device");
    assert_eq!(g, member.record());

    let visitor = Device::import_secrets(&unhex(&v["visitor_device"]["secrets"])).expect("visitor");
    let info = unhex(&v["hpke"]["info"]);
    let aad = unhex(&v["hpke"]["aad"]);
    let pt = unhex(&v["hpke"]["plaintext"]);
    let base = HpkeSealed::from_wire(&unhex(&v["hpke"]["base_sealed"])).expect("base");
    assert_eq!(
        hpke::open_base(member.agreement_secret(), &base, &info, &aad).expect("open"),
        pt
    );
    let auth = HpkeSealed::from_wire(&unhex(&v["hpke"]["auth_sealed"])).expect("auth");
    assert_eq!(
        hpke::open_auth(
            member.agreement_secret(),
            &visitor.agreement_secret().public_key(),
            &auth,
            &info,
            &aad
        )
        .expect("open auth"),
        pt
    );
    // The encoding of an HpkeSealed body is enc || u32 length || ciphertext.
    assert_eq!(base.encode_to_vec().len(), 32 + 4 + base.ciphertext.len());

    let key = AeadKey::new(SecretBytes::from_slice(&unhex(&v["aead"]["key"])).expect("key"));
    let x = &v["aead"]["xchacha_random_nonce"];
    assert_eq!(
        aead::xopen_random(&key, &unhex(&x["aad"]), &unhex(&x["sealed"])).expect("xopen"),
        unhex(&x["plaintext"])
    );
    let c = &v["aead"]["chacha"];
    let nonce = aead::Nonce::from_slice(&unhex(&c["nonce"])).expect("nonce");
    assert_eq!(
        aead::open(&key, &nonce, &unhex(&c["aad"]), &unhex(&c["ciphertext"])).expect("open"),
        unhex(&c["plaintext"])
    );

    let k = &v["hkdf_sha256"];
    let mut okm = vec![0u8; unhex(&k["okm"]).len()];
    hkdf::derive(
        &unhex(&k["salt"]),
        &unhex(&k["ikm"]),
        &unhex(&k["info"]),
        &mut okm,
    )
    .expect("hkdf");
    assert_eq!(okm, unhex(&k["okm"]));

    // A secret-holding recipient other than the member cannot open the base ciphertext.
    let stranger = AgreementSecret::from_secret_bytes(&SecretBytes::new([1u8; 32]));
    assert!(hpke::open_base(&stranger, &base, &info, &aad).is_err());
}
