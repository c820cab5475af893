//! End-to-end protocol scenarios between a visitor and a team: epochs sealed to the team chain,
//! signed messages, and what each participant refuses. Each test fails if the property it names
//! breaks.

use chacha20::ChaCha20Rng;
use sotto_core::conversation::epoch::{EpochRecord, EpochWarning, Freshness, sender_key};
use sotto_core::conversation::{
    ChainId, ConversationId, MessageKind, ParsedMessage, ReceiverChain, SenderChain, seal_message,
};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::device::{Device, DeviceKind};
use sotto_core::team::attestation::HeadAttestation;
use sotto_core::team::{Change, Policy, Role, TeamState};
use sotto_core::wire::WireObject;

mod common;

use common::team::{T0, Team as World, catch_up};
use sotto_core::{EpochError, Error, MessageError};

fn chain(record: &EpochRecord, sender: &Device, kind: MessageKind) -> ChainId {
    ChainId {
        conversation: record.conversation,
        epoch: record.epoch,
        sender: sender.id(),
        stream: kind.stream(),
    }
}

/// Receives one wire message the way a client does: parse, look up the sender's key in the
/// team chain or the epoch's visitor devices, verify, decrypt.
fn receive(
    team: &TeamState,
    record: &EpochRecord,
    secret: &SecretBytes<32>,
    chains: &mut Vec<ReceiverChain>,
    bytes: &[u8],
) -> sotto_core::Result<Vec<u8>> {
    let parsed = ParsedMessage::decode(bytes)?;
    let header = *parsed.header();
    let key = sender_key(team, record, &header.sender, header.kind)?;
    let verified = parsed.verify(&key)?;
    let id = header.chain();
    let index = match chains.iter().position(|c| *c.id() == id) {
        Some(i) => i,
        None => {
            chains.push(ReceiverChain::new(secret, id));
            chains.len() - 1
        }
    };
    Ok(verified.decrypt(&mut chains[index])?.content().to_vec())
}

struct Visitor {
    device: Device,
}

impl Visitor {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        Visitor {
            device: Device::generate(DeviceKind::Visitor, rng, T0),
        }
    }

    /// Opens an epoch after checking the head is fresh, as the widget does.
    fn open_epoch(
        &self,
        w: &mut World,
        team: &TeamState,
        conversation: Option<ConversationId>,
        epoch: u32,
    ) -> (EpochRecord, SecretBytes<32>) {
        let conversation = conversation.unwrap_or_else(|| ConversationId::random(&mut w.rng));
        HeadAttestation::sign(team, &w.owner.device, T0)
            .check_fresh(team, T0 + 60)
            .unwrap();
        EpochRecord::open(
            &mut w.rng,
            &self.device,
            team,
            conversation,
            epoch,
            vec![self.device.record()],
            T0,
        )
        .unwrap()
    }
}

#[test]
fn agent_reads_the_visitors_message_and_replies() {
    let mut w = World::new(1, Policy::default());
    let agent = w.add(Role::Agent);
    let visitor = Visitor::new(&mut w.rng);
    let conversation = ConversationId::random(&mut w.rng);
    let team_for_visitor = w.verified();
    let (record, visitor_secret) =
        visitor.open_epoch(&mut w, &team_for_visitor, Some(conversation), 0);

    // The agent checks the record against its own chain and opens the secret with the team key.
    let record = EpochRecord::from_wire(&record.to_wire()).unwrap();
    assert_eq!(
        record.verify(&w.state, None, Freshness::Live).unwrap(),
        None
    );
    let agent_secret = record.secret_for_member(&agent.keyring).unwrap();
    assert!(agent_secret.ct_eq(&visitor_secret));

    let mut visitor_out = SenderChain::new(
        &visitor_secret,
        chain(&record, &visitor.device, MessageKind::Text),
    );
    let hello = seal_message(
        &mut visitor_out,
        &visitor.device,
        MessageKind::Text,
        b"my order 1234 is late",
    )
    .unwrap();
    let mut agent_in = Vec::new();
    assert_eq!(
        receive(&w.state, &record, &agent_secret, &mut agent_in, &hello).unwrap(),
        b"my order 1234 is late"
    );

    let mut agent_out = SenderChain::new(
        &agent_secret,
        chain(&record, &agent.device, MessageKind::Text),
    );
    let reply = seal_message(
        &mut agent_out,
        &agent.device,
        MessageKind::Text,
        b"sorry, it ships today",
    )
    .unwrap();
    let mut visitor_in = Vec::new();
    assert_eq!(
        receive(
            &team_for_visitor,
            &record,
            &record.secret_for_visitor(&visitor.device).unwrap(),
            &mut visitor_in,
            &reply
        )
        .unwrap(),
        b"sorry, it ships today"
    );

    // A replayed message is refused.
    assert_eq!(
        receive(&w.state, &record, &agent_secret, &mut agent_in, &hello).unwrap_err(),
        Error::Message(MessageError::Duplicate)
    );
}

#[test]
fn a_later_agent_with_history_reads_old_epochs_and_a_viewer_cannot() {
    let mut w = World::new(2, Policy::default());
    let visitor = Visitor::new(&mut w.rng);
    let conversation = ConversationId::random(&mut w.rng);
    let team = w.verified();
    let (record, secret) = visitor.open_epoch(&mut w, &team, Some(conversation), 0);
    let mut out = SenderChain::new(&secret, chain(&record, &visitor.device, MessageKind::Text));
    let old = seal_message(
        &mut out,
        &visitor.device,
        MessageKind::Text,
        b"from before you joined",
    )
    .unwrap();

    // The team moves on: a rotation, then a new agent and a new viewer join.
    w.owner_does(Change::RotateKey);
    let agent = w.add(Role::Agent);
    let viewer = w.add(Role::Viewer);

    // Live, the old record is refused (it is sealed to a superseded generation)...
    assert_eq!(
        record.verify(&w.state, None, Freshness::Live).unwrap_err(),
        Error::Epoch(EpochError::StaleGeneration)
    );
    // ...but as history it is valid, and the agent, with history access, reads it.
    record.verify(&w.state, None, Freshness::History).unwrap();
    let s = record.secret_for_member(&agent.keyring).unwrap();
    assert_eq!(
        receive(&w.state, &record, &s, &mut Vec::new(), &old).unwrap(),
        b"from before you joined"
    );
    // The viewer holds no earlier generation.
    assert_eq!(
        record.secret_for_member(&viewer.keyring).unwrap_err(),
        Error::Epoch(EpochError::NoKey)
    );
}

#[test]
fn a_removed_agent_reads_nothing_sent_after_its_removal() {
    let mut w = World::new(3, Policy::default());
    let mut agent = w.add(Role::Agent);
    // A malicious agent keeps a copy of everything it ever held.
    let hoard = agent.keyring.clone();
    let visitor = Visitor::new(&mut w.rng);
    let conversation = ConversationId::random(&mut w.rng);

    w.owner_does(Change::RemoveMember {
        member: agent.member,
    });
    catch_up(&w.links, &w.state, &mut agent);
    assert_eq!(agent.keyring.generations().count(), 0);

    let team = w.verified();
    let (record, secret) = visitor.open_epoch(&mut w, &team, Some(conversation), 0);
    assert_eq!(record.generation, 1);
    let mut out = SenderChain::new(&secret, chain(&record, &visitor.device, MessageKind::Text));
    let msg = seal_message(
        &mut out,
        &visitor.device,
        MessageKind::Text,
        b"after the removal",
    )
    .unwrap();
    assert_eq!(
        record.secret_for_member(&hoard).unwrap_err(),
        Error::Epoch(EpochError::NoKey)
    );
    // Guessing the secret from what it holds fails too: no key it has opens the message.
    let wrong = hoard.seed(0).unwrap().clone();
    assert!(receive(&w.state, &record, &wrong, &mut Vec::new(), &msg).is_err());
}

#[test]
fn an_epoch_sealed_to_an_old_generation_is_refused() {
    let mut w = World::new(4, Policy::default());
    let _agent = w.add(Role::Agent);
    let stale = w.verified();
    w.owner_does(Change::RotateKey);
    let visitor = Visitor::new(&mut w.rng);
    let (record, _) = visitor.open_epoch(&mut w, &stale, None, 0);
    assert_eq!(
        record.verify(&w.state, None, Freshness::Live).unwrap_err(),
        Error::Epoch(EpochError::StaleGeneration)
    );
    // And one sealed beyond what we have verified means our chain is behind.
    let newer = w.verified();
    let (ahead, _) = visitor.open_epoch(&mut w, &newer, None, 0);
    assert_eq!(
        ahead.verify(&stale, None, Freshness::Live).unwrap_err(),
        Error::Epoch(EpochError::ChainBehind)
    );
}

#[test]
fn forks_and_rollbacks_are_detected() {
    let mut w = World::new(5, Policy::default());
    let base = w.state.clone();
    // The relay shows the visitor a different link 1 than the team sees.
    let mut shown_to_visitor = base.clone();
    let fork_link = base
        .propose(
            &mut w.rng,
            &w.owner.device,
            &mut w.owner.keyring.clone(),
            Change::SetPolicy {
                policy: Policy {
                    epoch_max_messages: 5,
                    ..Policy::default()
                },
            },
            false,
            T0,
        )
        .unwrap();
    shown_to_visitor.apply(&fork_link).unwrap();
    w.owner_does(Change::SetPolicy {
        policy: Policy {
            epoch_max_messages: 7,
            ..Policy::default()
        },
    });
    let visitor = Visitor::new(&mut w.rng);
    let (forked, _) = visitor.open_epoch(&mut w, &shown_to_visitor, None, 0);
    assert_eq!(
        forked.verify(&w.state, None, Freshness::Live).unwrap_err(),
        Error::Epoch(EpochError::Fork)
    );

    // The relay withholds the newest link from the visitor: a rollback, reported as a warning.
    let behind = w.verified();
    w.owner_does(Change::SetPolicy {
        policy: Policy::default(),
    });
    let (rolled_back, _) = visitor.open_epoch(&mut w, &behind, None, 0);
    assert_eq!(
        rolled_back.verify(&w.state, None, Freshness::Live).unwrap(),
        Some(EpochWarning::Rollback)
    );
}

#[test]
fn nobody_forges_another_participants_messages() {
    let mut w = World::new(6, Policy::default());
    let agent = w.add(Role::Agent);
    let viewer = w.add(Role::Viewer);
    let visitor = Visitor::new(&mut w.rng);
    let team = w.verified();
    let (record, secret) = visitor.open_epoch(&mut w, &team, None, 0);

    // The visitor, knowing the epoch secret, derives the agent's chain and signs as itself.
    let mut as_agent = SenderChain::new(&secret, chain(&record, &agent.device, MessageKind::Text));
    assert!(
        seal_message(
            &mut as_agent,
            &visitor.device,
            MessageKind::Text,
            b"refund approved"
        )
        .is_err()
    );
    let forged = forge(
        &secret,
        &record,
        &agent.device,
        &visitor.device,
        b"refund approved",
    );
    assert_eq!(
        receive(&w.state, &record, &secret, &mut Vec::new(), &forged).unwrap_err(),
        Error::BadSignature
    );

    // The agent likewise cannot write as the visitor.
    let forged = forge(
        &secret,
        &record,
        &visitor.device,
        &agent.device,
        b"please close my account",
    );
    assert_eq!(
        receive(&w.state, &record, &secret, &mut Vec::new(), &forged).unwrap_err(),
        Error::BadSignature
    );

    // A viewer's own, correctly signed message is refused: viewers may not send.
    let mut viewer_out =
        SenderChain::new(&secret, chain(&record, &viewer.device, MessageKind::Text));
    let by_viewer =
        seal_message(&mut viewer_out, &viewer.device, MessageKind::Text, b"hi").unwrap();
    assert_eq!(
        receive(&w.state, &record, &secret, &mut Vec::new(), &by_viewer).unwrap_err(),
        Error::Message(MessageError::UnknownSender)
    );
    // Tampering with any byte of a genuine message is detected.
    let mut out = SenderChain::new(&secret, chain(&record, &visitor.device, MessageKind::Text));
    let genuine = seal_message(&mut out, &visitor.device, MessageKind::Text, b"genuine").unwrap();
    for i in 0..genuine.len() {
        let mut t = genuine.clone();
        t[i] ^= 0x10;
        assert!(
            receive(&w.state, &record, &secret, &mut Vec::new(), &t).is_err(),
            "byte {i}"
        );
    }
}

/// A message for `claimed`'s chain, signed by `signer` (rewriting the sender field after
/// sealing is all a forger can do; the signature then fails).
fn forge(
    secret: &SecretBytes<32>,
    record: &EpochRecord,
    claimed: &Device,
    signer: &Device,
    text: &[u8],
) -> Vec<u8> {
    let mut own = SenderChain::new(secret, chain(record, signer, MessageKind::Text));
    let mut bytes = seal_message(&mut own, signer, MessageKind::Text, text).unwrap();
    // Header: version, suite, type, conversation[16], epoch u32, then the sender id.
    bytes[3 + 16 + 4..3 + 16 + 4 + 32].copy_from_slice(&claimed.id().0);
    bytes
}

#[test]
fn only_the_visitor_decides_its_devices_and_records_are_tamper_evident() {
    let mut w = World::new(7, Policy::default());
    let agent = w.add(Role::Agent);
    let visitor = Visitor::new(&mut w.rng);
    let team = w.verified();
    let conversation = ConversationId::random(&mut w.rng);
    let (first, _) = visitor.open_epoch(&mut w, &team, Some(conversation), 0);
    first.verify(&w.state, None, Freshness::Live).unwrap();
    let known = first.visitor_devices.clone();

    // The visitor adds a second device: accepted.
    let phone = Device::generate(DeviceKind::Visitor, &mut w.rng, T0);
    let both = vec![visitor.device.record(), phone.record()];
    let (second, _) = EpochRecord::open(
        &mut w.rng,
        &visitor.device,
        &team,
        conversation,
        1,
        both.clone(),
        T0,
    )
    .unwrap();
    second
        .verify(&w.state, Some(&known), Freshness::Live)
        .unwrap();

    // An agent (or a relay holding some member's key) may not add a "visitor" device.
    let (sneaky, _) =
        EpochRecord::open(&mut w.rng, &agent.device, &team, conversation, 1, both, T0).unwrap();
    assert_eq!(
        sneaky
            .verify(&w.state, Some(&known), Freshness::Live)
            .unwrap_err(),
        Error::Epoch(EpochError::VisitorSet)
    );
    // The relay's own device is nobody here.
    let relay = Device::generate(DeviceKind::Member, &mut w.rng, T0);
    let (forged, _) = EpochRecord::open(
        &mut w.rng,
        &relay,
        &team,
        conversation,
        1,
        known.clone(),
        T0,
    )
    .unwrap();
    assert_eq!(
        forged
            .verify(&w.state, Some(&known), Freshness::Live)
            .unwrap_err(),
        Error::Epoch(EpochError::UnknownAuthor)
    );

    // Any flipped byte of a record is refused by decoding, verification or opening.
    let bytes = first.to_wire();
    for i in 0..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        let accepted = EpochRecord::from_wire(&t)
            .ok()
            .filter(|r| r.verify(&w.state, None, Freshness::Live).is_ok())
            .and_then(|r| r.secret_for_member(&agent.keyring).ok());
        assert!(accepted.is_none(), "flipped byte {i} was accepted");
    }
}
