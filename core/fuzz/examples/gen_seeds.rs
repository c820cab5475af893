//! Writes the seed corpora in `seeds/`: one valid encoding per decoder, made deterministically.
//! Run from `core/fuzz/`: `cargo run --example gen_seeds`.

#[path = "../fixture/mod.rs"]
mod fixture;

use std::fs;
use std::path::Path;

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto_core::crypto::agreement::AgreementSecret;
use sotto_core::crypto::hpke::seal_base;
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::crypto::sign::SigningKey;
use sotto_core::device::{Device, DeviceKind};
use sotto_core::recovery::RecoverySecret;
use sotto_core::codec::Encode;
use sotto_core::conversation::identity::IdentityAssertion;
use sotto_core::conversation::EpochSecrets;
use sotto_core::team::{HistoryMode, Policy};
use sotto_core::wire::WireObject;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5077_0f22);
    let device = Device::from_keys(
        DeviceKind::Member,
        SigningKey::from_seed(&SecretBytes::new([1; 32])),
        AgreementSecret::from_secret_bytes(&SecretBytes::new([2; 32])),
        3,
        1_700_000_000,
    );
    let record = device.record();
    write("device_record", "member", &record.to_wire());
    write(
        "key_agreement_record",
        "gen3",
        &record.key_agreement().to_wire(),
    );
    write("device_secrets", "member", &device.export_secrets());

    // Sealed to the fixed key the hpke_sealed target opens with, so one input opens.
    let recipient = AgreementSecret::from_secret_bytes(&SecretBytes::new([7; 32]));
    let sealed = seal_base(&mut rng, &recipient.public_key(), b"", b"", b"hello").unwrap();
    write("hpke_sealed", "hello", &sealed.to_wire());

    let words = RecoverySecret::generate(&mut rng).to_words();
    write("recovery_words", "plain", words.as_bytes());
    let messy = format!(" {}\n", words.to_uppercase().replace(' ', " \t "));
    write("recovery_words", "messy", messy.as_bytes());

    let f = fixture::build();
    for (i, link) in f.links.iter().enumerate() {
        write("chain_link", &format!("link{i}"), &link.to_wire());
    }
    let mut chain = Vec::new();
    for link in &f.links {
        let bytes = link.to_wire();
        chain.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        chain.extend_from_slice(&bytes);
    }
    write("chain_verify", "three_links", &chain);
    write("head_attestation", "owner", &f.attestation.to_wire());
    write("epoch_record", "visitor", &f.record.to_wire());
    let deletion = sotto_core::conversation::ConversationDeletion::sign(
        &f.visitor,
        f.state.team(),
        f.record.conversation,
        fixture::NOW,
    );
    write("conversation_deletion", "visitor", &deletion.to_wire());
    write("message", "hello", &f.message);
    let mut sender = vec![0u8];
    sender.extend_from_slice(&f.sender_chain.export());
    write("ratchet_state", "sender", &sender);
    let mut blob = vec![1u8];
    blob.extend_from_slice(&f.blob);
    write("attachment", "blob", &blob);
    let mut reference = vec![0u8];
    reference.extend_from_slice(&f.attachment.encode_to_vec());
    write("attachment", "reference", &reference);
    let assertion =
        IdentityAssertion::sign(&f.integration, f.state.team(), f.visitor.id(), "customer-1", fixture::NOW + 3600)
            .unwrap();
    write("identity_assertion", "customer", &assertion.to_wire());
    write("policy", "default", &Policy::default().encode_to_vec());
    write("history_grant", "epoch0", &f.grant.to_wire());
    let mut secrets = EpochSecrets::new(HistoryMode::Ephemeral);
    secrets.insert(3, f.secret.clone()).unwrap();
    secrets.insert(4, SecretBytes::new([4; 32])).unwrap();
    secrets.close_before(4);
    let mut state = vec![0u8];
    state.extend_from_slice(&secrets.export());
    write("client_state", "epoch_secrets", &state);
    let mut state = vec![1u8];
    state.extend_from_slice(&f.agent_keys.export());
    write("client_state", "keyring", &state);
}
