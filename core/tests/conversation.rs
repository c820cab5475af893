//! End-to-end protocol scenarios between a visitor and a team: epochs sealed to the team chain,
//! signed messages, and what each participant refuses. Each test fails if the property it names
//! breaks.

use chacha20::ChaCha20Rng;
use sotto_core::conversation::epoch::{EpochAuthor, EpochRecord, EpochWarning, sender_key};
use sotto_core::conversation::identity::IdentityAssertion;
use sotto_core::conversation::message::HEADER_LEN;
use sotto_core::conversation::{
    ChainId, ConversationId, Instance, MessageContext, MessageKind, ParsedMessage, ReceiverChain,
    SenderChain, seal_message,
};
use sotto_core::conversation::{EpochSecrets, HistoryGrant};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::crypto::sign::SigningKey;
use sotto_core::device::{Device, DeviceKind};
use sotto_core::team::attestation::{HeadAttestation, MAX_CLOCK_SKEW_SECS};
use sotto_core::team::{Change, HistoryMode, Policy, Role, TeamKeyring, TeamState};
use sotto_core::wire::WireObject;

mod common;

use common::team::{T0, Team as World, catch_up};
use sotto_core::{EpochError, Error, MessageError};

/// When the receivers in these tests check records: an hour after the chains were made.
const CHECKED_AT: u64 = T0 + 3600;

fn chain(record: &EpochRecord, sender: &Device, kind: MessageKind) -> ChainId {
    ChainId {
        conversation: record.conversation,
        epoch: record.epoch,
        sender: sender.id(),
        instance: INSTANCE,
        stream: kind.stream(),
    }
}

/// The installation every device of these scenarios sends from, unless a test says otherwise.
const INSTANCE: Instance = Instance([1; 8]);

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
    let verified = parsed.verify(&key, &MessageContext::of(record))?;
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
        self.open_epoch_at(w, team, conversation, epoch, T0)
    }

    /// The same, by the visitor's clock at `now`.
    fn open_epoch_at(
        &self,
        w: &mut World,
        team: &TeamState,
        conversation: Option<ConversationId>,
        epoch: u32,
        now: u64,
    ) -> (EpochRecord, SecretBytes<32>) {
        let conversation = conversation.unwrap_or_else(|| ConversationId::random(&mut w.rng));
        HeadAttestation::sign(team, &w.owner.device, now)
            .check_fresh(team, now + 60)
            .unwrap();
        // Any earlier record of the conversation will do as the predecessor here: these tests
        // are about one record; how records follow each other is tested on its own.
        let previous = (epoch > 0).then(|| {
            EpochRecord::open(
                &mut w.rng,
                &self.device,
                team,
                conversation,
                0,
                None,
                vec![self.device.record()],
                now,
            )
            .unwrap()
            .0
        });
        EpochRecord::open(
            &mut w.rng,
            &self.device,
            team,
            conversation,
            epoch,
            previous.as_ref().map(|p| (p, Some(Vec::new()))),
            vec![self.device.record()],
            now,
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
        record.verify(&w.state, None, CHECKED_AT).unwrap().warning,
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
        &MessageContext::of(&record),
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
        &MessageContext::of(&record),
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
        &MessageContext::of(&record),
    )
    .unwrap();

    // The team moves on: a rotation, then a new agent and a new viewer join.
    w.owner_does(Change::RotateKey);
    let agent = w.add(Role::Agent);
    let viewer = w.add(Role::Viewer);

    // The record is sealed to the generation of the head it names, which was current then:
    // valid, and the agent, with history access, reads it.
    assert_eq!(
        record.verify(&w.state, None, CHECKED_AT).unwrap().author,
        EpochAuthor::Visitor
    );
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
fn a_viewer_added_later_reads_nothing_sent_before() {
    let no_agent_history = Policy {
        agents_read_history: false,
        ..Policy::default()
    };
    let ephemeral = Policy {
        history_mode: HistoryMode::Ephemeral,
        ..Policy::default()
    };
    for (seed, policy, role) in [
        (70, Policy::default(), Role::Viewer),
        (71, Policy::default(), Role::Bot),
        (72, no_agent_history, Role::Agent),
        (73, ephemeral, Role::Admin),
    ] {
        let mut w = World::new(seed, policy);
        let visitor = Visitor::new(&mut w.rng);
        let team = w.verified();
        let (record, secret) = visitor.open_epoch(&mut w, &team, None, 0);
        let mut out = SenderChain::new(&secret, chain(&record, &visitor.device, MessageKind::Text));
        let card = seal_message(
            &mut out,
            &visitor.device,
            MessageKind::Text,
            b"card 4242 4242 4242 4242",
            &MessageContext::of(&record),
        )
        .unwrap();
        // The plain sequence: no rotation in between, the newcomer is simply added.
        let newcomer = w.add(role);
        assert_eq!(
            record.secret_for_member(&newcomer.keyring).unwrap_err(),
            Error::Epoch(EpochError::NoKey),
            "{role:?}"
        );
        // Nothing it holds opens the message.
        for g in newcomer.keyring.generations() {
            let guess = newcomer.keyring.seed(g).unwrap().clone();
            assert!(receive(&w.state, &record, &guess, &mut Vec::new(), &card).is_err());
        }
        // The visitor's next epoch, sealed to the new generation, it reads.
        let now_team = w.verified();
        let (next, next_secret) = visitor.open_epoch(&mut w, &now_team, None, 1);
        assert!(
            next.secret_for_member(&newcomer.keyring)
                .unwrap()
                .ct_eq(&next_secret)
        );
    }
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
        &MessageContext::of(&record),
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
    // Naming the head it was made on, it is sealed to that head's generation: history...
    record.verify(&w.state, None, CHECKED_AT).unwrap();
    // ...but a record that names a head and an older generation than that head's is sealed to
    // a key a removed member may hold.
    let current = w.verified();
    let (fresh, _) = visitor.open_epoch(&mut w, &current, None, 0);
    let mut downgraded = fresh.clone();
    downgraded.generation -= 1;
    assert_eq!(
        EpochRecord::from_wire(&downgraded.to_wire())
            .unwrap()
            .verify(&w.state, None, CHECKED_AT)
            .unwrap_err(),
        Error::Epoch(EpochError::StaleGeneration)
    );
    // And one sealed beyond what we have verified means our chain is behind.
    let newer = w.verified();
    let (ahead, _) = visitor.open_epoch(&mut w, &newer, None, 0);
    assert_eq!(
        ahead.verify(&stale, None, CHECKED_AT).unwrap_err(),
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
        forked.verify(&w.state, None, CHECKED_AT).unwrap_err(),
        Error::Epoch(EpochError::Fork)
    );

    // The relay withholds the newest link from the visitor: a rollback, reported as a warning
    // once the record is younger than that link by more than the clock skew devices may have.
    let behind = w.verified();
    w.owner_does(Change::SetPolicy {
        policy: Policy::default(),
    });
    let late = T0 + MAX_CLOCK_SKEW_SECS + 1;
    let (rolled_back, _) = visitor.open_epoch_at(&mut w, &behind, None, 0, late);
    assert_eq!(
        rolled_back
            .verify(&w.state, None, CHECKED_AT)
            .unwrap()
            .warning,
        Some(EpochWarning::Rollback)
    );
    // Opened in the same second as the link, or within the skew, it is honest.
    for now in [T0, T0 + MAX_CLOCK_SKEW_SECS] {
        let (same_time, _) = visitor.open_epoch_at(&mut w, &behind, None, 0, now);
        assert_eq!(
            same_time
                .verify(&w.state, None, CHECKED_AT)
                .unwrap()
                .warning,
            None
        );
    }

    // An epoch opened before the newer link was made is old, not rolled back: a member who
    // joins later reads it without a warning.
    let before = w.verified();
    let (older, _) = visitor.open_epoch(&mut w, &before, None, 0);
    let later = w
        .state
        .propose(
            &mut w.rng,
            &w.owner.device,
            &mut w.owner.keyring,
            Change::SetPolicy {
                policy: Policy {
                    epoch_max_messages: 9,
                    ..Policy::default()
                },
            },
            false,
            T0 + 600,
        )
        .unwrap();
    w.accept(&later);
    assert_eq!(
        older.verify(&w.state, None, CHECKED_AT).unwrap().warning,
        None
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
            b"refund approved",
            &MessageContext::of(&record),
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
    let by_viewer = seal_message(
        &mut viewer_out,
        &viewer.device,
        MessageKind::Text,
        b"hi",
        &MessageContext::of(&record),
    )
    .unwrap();
    assert_eq!(
        receive(&w.state, &record, &secret, &mut Vec::new(), &by_viewer).unwrap_err(),
        Error::Message(MessageError::UnknownSender)
    );
    // Tampering with any byte of a genuine message is detected.
    let mut out = SenderChain::new(&secret, chain(&record, &visitor.device, MessageKind::Text));
    let genuine = seal_message(
        &mut out,
        &visitor.device,
        MessageKind::Text,
        b"genuine",
        &MessageContext::of(&record),
    )
    .unwrap();
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
    let mut bytes = seal_message(
        &mut own,
        signer,
        MessageKind::Text,
        text,
        &MessageContext::of(record),
    )
    .unwrap();
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
    first.verify(&w.state, None, CHECKED_AT).unwrap();
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
        Some((&first, Some(Vec::new()))),
        both.clone(),
        T0,
    )
    .unwrap();
    second.verify(&w.state, Some(&known), CHECKED_AT).unwrap();

    // An agent (or a relay holding some member's key) may not add a "visitor" device.
    let (sneaky, _) = EpochRecord::open(
        &mut w.rng,
        &agent.device,
        &team,
        conversation,
        1,
        Some((&first, Some(Vec::new()))),
        both,
        T0,
    )
    .unwrap();
    assert_eq!(
        sneaky
            .verify(&w.state, Some(&known), CHECKED_AT)
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
        Some((&first, Some(Vec::new()))),
        known.clone(),
        T0,
    )
    .unwrap();
    assert_eq!(
        forged
            .verify(&w.state, Some(&known), CHECKED_AT)
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
            .filter(|r| r.verify(&w.state, None, CHECKED_AT).is_ok())
            .and_then(|r| r.secret_for_member(&agent.keyring).ok());
        assert!(accepted.is_none(), "flipped byte {i} was accepted");
    }
}

/// A conversation of a customer the company's backend vouched for, read by an agent with
/// history access: the fixture of the history-grant scenarios.
struct VouchedConversation {
    w: World,
    agent: common::team::Member,
    backend: SigningKey,
    records: Vec<(EpochRecord, SecretBytes<32>)>,
    messages: Vec<Vec<u8>>,
    original: IdentityAssertion,
}

impl VouchedConversation {
    fn new(seed: u64, policy: Policy) -> Self {
        let mut w = World::new(seed, policy);
        let agent = w.add(Role::Agent);
        let backend = SigningKey::generate(&mut w.rng);
        w.owner_does(Change::AddIntegrationKey {
            name: "crm".into(),
            key: backend.verifying_key(),
        });
        let visitor = Visitor::new(&mut w.rng);
        let original = IdentityAssertion::sign(
            &backend,
            w.state.team(),
            visitor.device.id(),
            "cust-42",
            T0 + 3600,
        )
        .unwrap();
        let conversation = ConversationId::random(&mut w.rng);
        let mut records = Vec::new();
        let mut messages = Vec::new();
        for epoch in 0..2 {
            let team = w.verified();
            let (record, secret) = visitor.open_epoch(&mut w, &team, Some(conversation), epoch);
            let mut out =
                SenderChain::new(&secret, chain(&record, &visitor.device, MessageKind::Text));
            let text = format!("order question, epoch {epoch}");
            messages.push(
                seal_message(
                    &mut out,
                    &visitor.device,
                    MessageKind::Text,
                    text.as_bytes(),
                    &MessageContext::of(&record),
                )
                .unwrap(),
            );
            records.push((record, secret));
            // The team rotates between the epochs, so the history spans two generations.
            w.owner_does(Change::RotateKey);
        }
        let mut agent = agent;
        catch_up(&w.links, &w.state, &mut agent);
        VouchedConversation {
            w,
            agent,
            backend,
            records,
            messages,
            original,
        }
    }

    /// The agent opens every epoch from history, then re-seals them to `recipient`.
    fn grant_to(&mut self, recipient: &Device, customer: &str) -> sotto_core::Result<HistoryGrant> {
        let assertion = IdentityAssertion::sign(
            &self.backend,
            self.w.state.team(),
            recipient.id(),
            customer,
            T0 + 7200,
        )?;
        let opened: Vec<(EpochRecord, SecretBytes<32>)> = self
            .records
            .iter()
            .map(|(record, _)| {
                let known = (record.epoch > 0).then_some(record.visitor_devices.as_slice());
                record.verify(&self.w.state, known, CHECKED_AT).unwrap();
                (
                    record.clone(),
                    record.secret_for_member(&self.agent.keyring).unwrap(),
                )
            })
            .collect();
        let epochs: Vec<(&EpochRecord, &SecretBytes<32>)> =
            opened.iter().map(|(r, s)| (r, s)).collect();
        HistoryGrant::issue(
            &mut self.w.rng,
            &self.agent.device,
            &self.w.state,
            self.records[0].0.conversation,
            recipient.record(),
            assertion,
            self.original.clone(),
            &epochs,
            T0 + 60,
        )
    }
}

#[test]
fn a_verified_customers_history_is_resealed_to_their_new_device() {
    let mut c = VouchedConversation::new(20, Policy::default());
    let phone = Device::generate(DeviceKind::Visitor, &mut c.w.rng, T0);
    let grant = c.grant_to(&phone, "cust-42").unwrap();
    let grant = HistoryGrant::from_wire(&grant.to_wire()).unwrap();

    // The new device checks the grant and every record against the chain it verified itself,
    // then reads each epoch's messages.
    let team = c.w.verified();
    grant.verify(&team, &phone, T0 + 120).unwrap();
    for ((record, _), message) in c.records.iter().zip(&c.messages) {
        record
            .verify(
                &team,
                (record.epoch > 0).then_some(record.visitor_devices.as_slice()),
                CHECKED_AT,
            )
            .unwrap();
        let secret = grant.open(&phone, record).unwrap();
        let text = receive(&team, record, &secret, &mut Vec::new(), message).unwrap();
        assert_eq!(
            text,
            format!("order question, epoch {}", record.epoch).as_bytes()
        );
    }

    // Another device, even one vouched for the same customer, cannot open the grant.
    let laptop = Device::generate(DeviceKind::Visitor, &mut c.w.rng, T0);
    assert!(grant.verify(&team, &laptop, T0 + 120).is_err());
    assert!(grant.open(&laptop, &c.records[0].0).is_err());

    // A record the grant does not name (a substituted one) gets no secret.
    let other = Visitor::new(&mut c.w.rng);
    let (foreign, _) = other.open_epoch(&mut c.w, &team, Some(c.records[0].0.conversation), 0);
    assert!(grant.open(&phone, &foreign).is_err());
}

#[test]
fn history_is_resealed_only_for_the_same_vouched_customer_by_a_history_reader() {
    let mut c = VouchedConversation::new(21, Policy::default());
    let stranger = Device::generate(DeviceKind::Visitor, &mut c.w.rng, T0);
    // The backend vouches for the device, but as another customer.
    assert_eq!(
        c.grant_to(&stranger, "cust-43").unwrap_err(),
        Error::Epoch(EpochError::Unvouched)
    );

    // An assertion by a key that is not the team's does not vouch.
    let phone = Device::generate(DeviceKind::Visitor, &mut c.w.rng, T0);
    let mut grant = c.grant_to(&phone, "cust-42").unwrap();
    let rogue = SigningKey::generate(&mut c.w.rng);
    grant.assertion =
        IdentityAssertion::sign(&rogue, c.w.state.team(), phone.id(), "cust-42", T0 + 7200)
            .unwrap();
    assert!(grant.verify(&c.w.state, &phone, T0 + 120).is_err());

    // An expired assertion for the new device is refused.
    let grant = c.grant_to(&phone, "cust-42").unwrap();
    assert_eq!(
        grant.verify(&c.w.state, &phone, T0 + 7200).unwrap_err(),
        Error::Epoch(EpochError::Unvouched)
    );

    // A viewer has no history access and may not grant it.
    let viewer = c.w.add(Role::Viewer);
    let team = c.w.state.clone();
    let assertion =
        IdentityAssertion::sign(&c.backend, team.team(), phone.id(), "cust-42", T0 + 7200).unwrap();
    let (record, secret) = &c.records[1];
    assert_eq!(
        HistoryGrant::issue(
            &mut c.w.rng,
            &viewer.device,
            &team,
            record.conversation,
            phone.record(),
            assertion,
            c.original.clone(),
            &[(record, secret)],
            T0 + 60,
        )
        .unwrap_err(),
        Error::Epoch(EpochError::UnknownAuthor)
    );
}

#[test]
fn any_altered_byte_of_a_history_grant_is_refused() {
    let mut c = VouchedConversation::new(22, Policy::default());
    let phone = Device::generate(DeviceKind::Visitor, &mut c.w.rng, T0);
    let wire = c.grant_to(&phone, "cust-42").unwrap().to_wire();
    let team = c.w.verified();
    let record = &c.records[0].0;
    for i in 0..wire.len() {
        let mut bad = wire.clone();
        bad[i] ^= 0x01;
        let accepted = HistoryGrant::from_wire(&bad).is_ok_and(|g| {
            g.verify(&team, &phone, T0 + 120).is_ok() && g.open(&phone, record).is_ok()
        });
        assert!(!accepted, "byte {i} altered and accepted");
    }
}

#[test]
fn ephemeral_history_erases_old_epochs_and_retain_keeps_them() {
    for mode in [HistoryMode::Ephemeral, HistoryMode::Retain] {
        let policy = Policy {
            history_mode: mode,
            ..Policy::default()
        };
        let mut w = World::new(23, policy);
        let mut agent = w.add(Role::Agent);
        let visitor = Visitor::new(&mut w.rng);
        let conversation = ConversationId::random(&mut w.rng);
        let mut secrets = EpochSecrets::new(mode);

        let team = w.verified();
        let (old, old_secret) = visitor.open_epoch(&mut w, &team, Some(conversation), 0);
        let mut out =
            SenderChain::new(&old_secret, chain(&old, &visitor.device, MessageKind::Text));
        let late = seal_message(
            &mut out,
            &visitor.device,
            MessageKind::Text,
            b"late",
            &MessageContext::of(&old),
        )
        .unwrap();
        old.verify(&w.state, None, CHECKED_AT).unwrap();
        secrets
            .insert(0, old.secret_for_member(&agent.keyring).unwrap())
            .unwrap();

        // The team rotates, the next epoch starts, and the old one is over and delivered.
        w.owner_does(Change::RotateKey);
        catch_up(&w.links, &w.state, &mut agent);
        let team = w.verified();
        let (new, _) = visitor.open_epoch(&mut w, &team, Some(conversation), 1);
        new.verify(&w.state, Some(&new.visitor_devices), CHECKED_AT)
            .unwrap();
        secrets
            .insert(1, new.secret_for_member(&agent.keyring).unwrap())
            .unwrap();
        let erased = secrets.close_before(1);
        let current = w.state.current_key().unwrap().0;
        let forgotten = if mode == HistoryMode::Ephemeral {
            agent.keyring.forget_before(current)
        } else {
            0
        };

        // A message of the old epoch arriving now (late, or replayed by the relay).
        let readable = secrets
            .get(0)
            .map(|s| receive(&w.state, &old, s, &mut Vec::new(), &late));
        match mode {
            HistoryMode::Ephemeral => {
                assert_eq!((erased, forgotten), (1, 1));
                assert!(readable.is_none());
                // Replaying the old record gets the secret neither from the keyring...
                assert_eq!(
                    old.secret_for_member(&agent.keyring).unwrap_err(),
                    Error::Epoch(EpochError::NoKey)
                );
                // ...nor back into the conversation state, and the stored state holds no trace.
                assert_eq!(
                    secrets.insert(0, old_secret.clone()).unwrap_err(),
                    Error::Epoch(EpochError::Erased)
                );
                let stored = secrets.export();
                assert!(!stored.windows(32).any(|w| w == old_secret.expose()));
                let keyring = agent.keyring.export();
                let old_seed = w.owner.keyring.seed(0);
                assert!(old_seed.is_none_or(|s| !keyring.windows(32).any(|w| w == s.expose())));
            }
            HistoryMode::Retain => {
                assert_eq!(erased, 0);
                assert_eq!(readable.unwrap().unwrap(), b"late");
            }
        }
    }
}

#[test]
fn keyrings_survive_the_store_and_forget_generations_on_request() {
    let mut w = World::new(24, Policy::default());
    w.owner_does(Change::RotateKey);
    w.owner_does(Change::RotateKey);
    let exported = w.owner.keyring.export();
    let back = TeamKeyring::import(&exported).unwrap();
    assert_eq!(back.generations().collect::<Vec<_>>(), vec![0, 1, 2]);
    for g in 0..3 {
        assert!(
            back.seed(g)
                .unwrap()
                .ct_eq(w.owner.keyring.seed(g).unwrap())
        );
    }
    assert!(TeamKeyring::import(&exported[..exported.len() - 1]).is_err());
    let mut trimmed = back.clone();
    assert_eq!(trimmed.forget_before(2), 2);
    assert_eq!(trimmed.generations().collect::<Vec<_>>(), vec![2]);
}

#[test]
fn what_a_removed_agent_wrote_before_its_removal_stays_verifiable_and_nothing_after() {
    let mut w = World::new(25, Policy::default());
    let agent = w.add(Role::Agent);
    let visitor = Visitor::new(&mut w.rng);
    let conversation = ConversationId::random(&mut w.rng);
    let team = w.verified();
    let (before, _) = visitor.open_epoch(&mut w, &team, Some(conversation), 0);
    let secret = before.secret_for_member(&agent.keyring).unwrap();
    let mut out = SenderChain::new(&secret, chain(&before, &agent.device, MessageKind::Text));
    let reply = seal_message(
        &mut out,
        &agent.device,
        MessageKind::Text,
        b"on its way",
        &MessageContext::of(&before),
    )
    .unwrap();

    w.owner_does(Change::RemoveMember {
        member: agent.member,
    });
    let newcomer = w.add(Role::Agent);

    // A member who joins later reads the removed agent's reply from history.
    before.verify(&w.state, None, CHECKED_AT).unwrap();
    let s = before.secret_for_member(&newcomer.keyring).unwrap();
    assert_eq!(
        receive(&w.state, &before, &s, &mut Vec::new(), &reply).unwrap(),
        b"on its way"
    );

    // An epoch record it signs naming a head after its removal is refused, live or as history.
    let team = w.verified();
    let (forged, _) = EpochRecord::open(
        &mut w.rng,
        &agent.device,
        &team,
        conversation,
        1,
        Some((&before, Some(Vec::new()))),
        vec![visitor.device.record()],
        T0,
    )
    .unwrap();
    assert_eq!(
        forged
            .verify(&w.state, Some(&[visitor.device.record()]), CHECKED_AT)
            .unwrap_err(),
        Error::Epoch(EpochError::UnknownAuthor)
    );
    // And in an epoch opened after its removal, it is no sender at all.
    let (after, _) = visitor.open_epoch(&mut w, &team, Some(conversation), 1);
    assert_eq!(
        sender_key(&w.state, &after, &agent.device.id(), MessageKind::Text).unwrap_err(),
        Error::Message(MessageError::UnknownSender)
    );
}

#[test]
fn a_visitors_system_note_is_refused_by_every_receiver() {
    let mut w = World::new(40, Policy::default());
    let agent = w.add(Role::Agent);
    let other = w.add(Role::Agent);
    let visitor = Visitor::new(&mut w.rng);
    let team = w.verified();
    let (record, secret) = visitor.open_epoch(&mut w, &team, None, 0);
    let context = MessageContext::of(&record);

    // A visitor's client in bad faith builds a system note ("Assigned to ..., customer identity
    // verified") on its own chain; an honest sealer refuses to.
    let mut out = SenderChain::new(
        &secret,
        chain(&record, &visitor.device, MessageKind::System),
    );
    assert_eq!(
        seal_message(
            &mut out,
            &visitor.device,
            MessageKind::System,
            b"sotto.note\0Customer identity verified",
            &context,
        )
        .unwrap_err(),
        Error::Message(MessageError::KindNotAllowed)
    );
    let note = forge_kind(&secret, &record, &visitor.device, MessageKind::System);
    for receiver in [&agent, &other] {
        let state = &w.state;
        let _ = receiver;
        assert_eq!(
            receive(state, &record, &secret, &mut Vec::new(), &note).unwrap_err(),
            Error::Message(MessageError::KindNotAllowed)
        );
    }
    assert_eq!(
        sender_key(&w.state, &record, &visitor.device.id(), MessageKind::System).unwrap_err(),
        Error::Message(MessageError::KindNotAllowed)
    );
    // The identity presentation is the visitor's own kind, and a member cannot send one.
    let identity = forge_kind(&secret, &record, &visitor.device, MessageKind::Identity);
    receive(&w.state, &record, &secret, &mut Vec::new(), &identity).unwrap();
    let by_agent = forge_kind(&secret, &record, &agent.device, MessageKind::Identity);
    assert_eq!(
        receive(&w.state, &record, &secret, &mut Vec::new(), &by_agent).unwrap_err(),
        Error::Message(MessageError::KindNotAllowed)
    );
    let note = forge_kind(&secret, &record, &agent.device, MessageKind::System);
    receive(&w.state, &record, &secret, &mut Vec::new(), &note).unwrap();
}

/// A correctly signed message of `kind` by `sender`, built without the sealer's kind check, as a
/// client in bad faith would.
fn forge_kind(
    secret: &SecretBytes<32>,
    record: &EpochRecord,
    sender: &Device,
    kind: MessageKind,
) -> Vec<u8> {
    // Sealed as an allowed durable kind, then the kind byte is changed and the message signed
    // again: the chain is the same (both durable), and the AEAD binds the header, so the
    // ciphertext is sealed again under the changed header too.
    let context = MessageContext::of(record);
    let mut out = SenderChain::new(secret, chain(record, sender, kind));
    let mut key_chain = SenderChain::new(secret, chain(record, sender, kind));
    let (_, key) = key_chain.next_message_key().unwrap();
    let probe = seal_message(&mut out, sender, MessageKind::Text, b"x", &context).unwrap();
    let mut header = probe[..HEADER_LEN].to_vec();
    header[HEADER_LEN - 1] = kind.to_byte();
    let padded = sotto_core::conversation::padding::pad(b"forged", 65_536).unwrap();
    let mut aad = header.clone();
    aad.extend_from_slice(&record.team.0);
    aad.extend_from_slice(&sotto_core::conversation::grant::epoch_record_hash(record));
    let ciphertext = sotto_core::crypto::aead::seal(key.key(), key.nonce(), &aad, &padded);
    let mut bytes = header;
    bytes.extend_from_slice(&(ciphertext.len() as u32).to_be_bytes());
    let mut statement = bytes.clone();
    {
        use sha2::{Digest, Sha256};
        statement.extend_from_slice(&Sha256::digest(&ciphertext));
    }
    statement.extend_from_slice(&aad[HEADER_LEN..]);
    bytes.extend_from_slice(&ciphertext);
    let signature = sender.sign(
        sotto_core::crypto::sign::SignatureContext::Message,
        &statement,
    );
    bytes.extend_from_slice(signature.as_bytes());
    bytes
}

#[test]
fn a_message_moved_into_another_teams_conversation_is_refused() {
    // Two teams; the same visitor device opens a conversation with the same id in both, and
    // (a careless or hostile opener) the second reuses the first one's epoch secret.
    let mut a = World::new(41, Policy::default());
    let mut b = World::new(42, Policy::default());
    let visitor = Visitor::new(&mut a.rng);
    let conversation = ConversationId::random(&mut a.rng);
    let team_a = a.verified();
    let team_b = b.verified();
    let (record_a, secret) = visitor.open_epoch(&mut a, &team_a, Some(conversation), 0);
    let (record_b, _) = visitor.open_epoch(&mut b, &team_b, Some(conversation), 0);
    assert_eq!(
        (record_a.conversation, record_a.epoch),
        (record_b.conversation, record_b.epoch)
    );

    let mut out = SenderChain::new(
        &secret,
        chain(&record_a, &visitor.device, MessageKind::Text),
    );
    let message = seal_message(
        &mut out,
        &visitor.device,
        MessageKind::Text,
        b"please refund to IBAN ...",
        &MessageContext::of(&record_a),
    )
    .unwrap();
    // Team B's members, holding the same secret, refuse it: it belongs to team A's record.
    assert_eq!(
        receive(&b.state, &record_b, &secret, &mut Vec::new(), &message).unwrap_err(),
        Error::BadSignature
    );
    // Another record of the same team and epoch number (a relay swapping records) too.
    let (other_a, _) = visitor.open_epoch(&mut a, &team_a, Some(conversation), 0);
    assert_eq!(
        receive(&a.state, &other_a, &secret, &mut Vec::new(), &message).unwrap_err(),
        Error::BadSignature
    );
    // In its own team it opens.
    assert_eq!(
        receive(&a.state, &record_a, &secret, &mut Vec::new(), &message).unwrap(),
        b"please refund to IBAN ..."
    );
}

#[test]
fn two_installations_of_one_device_never_reuse_a_key_and_both_are_received() {
    let mut w = World::new(43, Policy::default());
    let visitor = Visitor::new(&mut w.rng);
    let team = w.verified();
    let (record, secret) = visitor.open_epoch(&mut w, &team, None, 0);
    let context = MessageContext::of(&record);
    // The original and a restored copy of the visitor's device: same keys, same epoch, each
    // with its own instance, both at counter 0.
    let installations = [Instance([1; 8]), Instance::random(&mut w.rng)];
    let sent: Vec<Vec<u8>> = installations
        .iter()
        .map(|&instance| {
            let id = ChainId {
                instance,
                ..chain(&record, &visitor.device, MessageKind::Text)
            };
            let mut out = SenderChain::new(&secret, id);
            seal_message(
                &mut out,
                &visitor.device,
                MessageKind::Text,
                b"same words",
                &context,
            )
            .unwrap()
        })
        .collect();
    let parsed: Vec<ParsedMessage> = sent
        .iter()
        .map(|b| ParsedMessage::decode(b).unwrap())
        .collect();
    assert_eq!(parsed[0].header().counter, parsed[1].header().counter);
    assert_ne!(parsed[0].header().instance, parsed[1].header().instance);
    assert_ne!(parsed[0].ciphertext(), parsed[1].ciphertext());
    let mut chains = Vec::new();
    for bytes in &sent {
        assert_eq!(
            receive(&w.state, &record, &secret, &mut chains, bytes).unwrap(),
            b"same words"
        );
    }
    assert_eq!(chains.len(), 2);
    // A replay of either is still a duplicate.
    assert_eq!(
        receive(&w.state, &record, &secret, &mut chains, &sent[1]).unwrap_err(),
        Error::Message(MessageError::Duplicate)
    );
}
