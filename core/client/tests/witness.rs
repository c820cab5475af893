//! Freshness against a relay that partitions honest members too (PROTOCOL §6.8, THREATS G5/G6),
//! against a real relay and a real `sotto-relay witness` on 127.0.0.1.
//!
//! The attack: the relay hides an agent's removal (and the rotation in it) from the visitor
//! *and* from an honest agent, replays that agent's honest attestation of the old head to the
//! visitor, and colludes with the removed agent, who keeps its keys. Without a witness the
//! visitor and the agent keep sealing to the old generation and the removed agent reads them;
//! with one, both refuse (`chain_withheld`) and warn until the relay serves the links.

mod harness;

use std::time::Duration;

use harness::{FlakyTransport, TempDir, TestClient, TestRelay, history_texts};
use sotto_client::client::{Event, EventStream, TeamRef, Warning};
use sotto_core::conversation::ConversationId;
use sotto_core::crypto::sign::VerifyingKey;
use sotto_core::device::DeviceKind;
use sotto_core::team::{MemberId, Policy, Role};
use sotto_relay::witness::{Witness, WitnessArgs};

/// Short enough that a visitor's check falls due within the test (every half limit).
const LIMIT_SECS: u32 = 4;

struct Partition {
    _relay: TestRelay,
    _dir: TempDir,
    _witness: Option<Witness>,
    owner: TestClient,
    agent: TestClient,
    agent_net: FlakyTransport,
    removed: TestClient,
    removed_member: MemberId,
    removed_net: FlakyTransport,
    visitor: TestClient,
    visitor_net: FlakyTransport,
    team: TeamRef,
    conversation: ConversationId,
}

async fn head(client: &TestClient, team: &TeamRef) -> u64 {
    client
        .team_log(&team.team)
        .await
        .unwrap()
        .last()
        .unwrap()
        .seq
}

impl Partition {
    async fn new(with_witness: bool) -> Self {
        let relay = TestRelay::start().await;
        let dir = TempDir::new();
        let witness = if with_witness {
            let args = WitnessArgs::new(dir.0.join("witness.key"), dir.0.join("witness"));
            Some(sotto_relay::witness::start(&args).await.unwrap())
        } else {
            None
        };
        let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
        let policy = Policy {
            freshness_limit_secs: LIMIT_SECS,
            ..Policy::default()
        };
        let team = owner.create_team(policy).await.unwrap();
        if let Some(w) = &witness {
            owner
                .set_witness(
                    &team.team,
                    &format!("http://{}", w.addr()),
                    VerifyingKey::from_bytes(&w.public_key()).unwrap(),
                )
                .await
                .unwrap();
        }
        let (agent, _, agent_net) = relay.register(DeviceKind::Member, false).await;
        owner
            .invite_member(&team.team, &agent.device_id(), Role::Agent)
            .await
            .unwrap();
        agent.join_team(team).await.unwrap();
        let (removed, _, removed_net) = relay.register(DeviceKind::Member, false).await;
        let removed_member = owner
            .invite_member(&team.team, &removed.device_id(), Role::Agent)
            .await
            .unwrap();
        removed.join_team(team).await.unwrap();
        let (visitor, _, visitor_net) = relay.register(DeviceKind::Visitor, false).await;
        let conversation = visitor.open_conversation(team).await.unwrap();
        visitor.send_text(&conversation, "before").await.unwrap();
        // The agent attests the head it sees (an honest member client does on every sync).
        agent.sync().await.unwrap();
        removed.sync().await.unwrap();
        Partition {
            _relay: relay,
            _dir: dir,
            _witness: witness,
            owner,
            agent,
            agent_net,
            removed,
            removed_member,
            removed_net,
            visitor,
            visitor_net,
            team,
            conversation,
        }
    }

    /// The relay hides everything after the current head from the visitor, the agent and the
    /// removed agent, keeps serving the visitor the attestation of that head, and the owner
    /// removes the agent: the removal and its rotation reach only the owner (and the witness).
    async fn remove_behind_a_partition(&self) {
        let seq = head(&self.owner, &self.team).await;
        self.visitor.sync().await.unwrap();
        for net in [&self.visitor_net, &self.agent_net, &self.removed_net] {
            net.hide_links_after(Some(seq));
        }
        self.visitor_net.replay_attestation(true);
        // The relay serves the removed agent what it serves the honest one.
        self.removed_net.read_as(Some(&self.agent_net));
        self.owner
            .remove_member(&self.team.team, &self.removed_member)
            .await
            .unwrap();
        assert_eq!(head(&self.owner, &self.team).await, seq + 1);
        // Past half the limit, the visitor must check freshness again before it seals.
        tokio::time::sleep(Duration::from_millis(2_200)).await;
    }

    fn heal(&self) {
        for net in [&self.visitor_net, &self.agent_net, &self.removed_net] {
            net.hide_links_after(None);
        }
        self.visitor_net.replay_attestation(false);
    }
}

fn rollbacks(events: &mut EventStream, team: &TeamRef) -> usize {
    let mut n = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, Event::Warning(Warning::Rollback { team: t }) if t == team.team) {
            n += 1;
        }
    }
    n
}

#[tokio::test]
async fn a_witness_stops_a_visitor_and_an_agent_the_relay_hides_a_removal_from() {
    let p = Partition::new(true).await;
    let mut visitor_events = p.visitor.events();
    let mut agent_events = p.agent.events();
    p.remove_behind_a_partition().await;

    // The visitor: the relay serves the old head with an honest agent's fresh attestation of
    // it, but the witness vouches for the removal: nothing is sealed, and it warns.
    let err = p
        .visitor
        .send_text(&p.conversation, "during")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "chain_withheld");
    assert_eq!(rollbacks(&mut visitor_events, &p.team), 1);
    assert_eq!(p.visitor.outbox_len().await.unwrap(), 0);

    // The honest agent shown the old head refuses to reply, and warns.
    p.agent.sync().await.unwrap();
    let err = p
        .agent
        .send_text(&p.conversation, "reply during")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "chain_withheld");
    assert!(rollbacks(&mut agent_events, &p.team) >= 1);

    // The removed agent, whom the relay serves everything it wants, has nothing new to read.
    // (Its head attestation is refused by this relay, which knows of the removal; a colluding
    // relay would take it. Everything else of the round completes.)
    let _ = p.removed.sync().await;
    assert_eq!(history_texts(&p.removed, &p.conversation).await, ["before"]);

    // Once the relay serves the links, both proceed, in a new epoch sealed to the new key.
    p.heal();
    let sent = p.visitor.send_text(&p.conversation, "after").await.unwrap();
    assert_eq!(sent.epoch, 1);
    p.agent.sync().await.unwrap();
    p.agent
        .send_text(&p.conversation, "reply after")
        .await
        .unwrap();
    p.owner.sync().await.unwrap();
    assert_eq!(
        history_texts(&p.owner, &p.conversation).await,
        ["before", "after", "reply after"]
    );
    assert_eq!(rollbacks(&mut visitor_events, &p.team), 0);
}

/// Pins the weaker bound documented for teams without a witness (PROTOCOL §6.7): a relay that
/// also partitions an honest member is not detected, and the removed member reads on.
#[tokio::test]
async fn without_a_witness_a_relay_partitioning_an_agent_too_goes_undetected() {
    let p = Partition::new(false).await;
    let mut visitor_events = p.visitor.events();
    let mut agent_events = p.agent.events();
    p.remove_behind_a_partition().await;

    let sent = p
        .visitor
        .send_text(&p.conversation, "during")
        .await
        .unwrap();
    assert_eq!(sent.epoch, 0, "sealed to the generation before the removal");
    p.agent.sync().await.unwrap();
    p.agent
        .send_text(&p.conversation, "reply during")
        .await
        .unwrap();
    assert_eq!(rollbacks(&mut visitor_events, &p.team), 0);
    assert_eq!(rollbacks(&mut agent_events, &p.team), 0);

    // (Its head attestation is refused by this relay, which knows of the removal; a colluding
    // relay would take it. Everything else of the round completes.)
    let _ = p.removed.sync().await;
    assert_eq!(
        history_texts(&p.removed, &p.conversation).await,
        ["before", "during", "reply during"]
    );
}

/// A visitor verifies the chain afresh, so the relay can serve it a prefix that ends before the
/// owner's SetWitness link, with an old attestation of that prefix: the witness alone cannot
/// help. A team reference that pins the witness key (the widget snippet) closes it.
#[tokio::test]
async fn a_visitor_whose_team_reference_pins_the_witness_refuses_a_chain_without_it() {
    let relay = TestRelay::start().await;
    let dir = TempDir::new();
    let args = WitnessArgs::new(dir.0.join("witness.key"), dir.0.join("witness"));
    let witness = sotto_relay::witness::start(&args).await.unwrap();
    let key = VerifyingKey::from_bytes(&witness.public_key()).unwrap();
    let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
    let team = owner.create_team(Policy::default()).await.unwrap();
    // The relay keeps the attestation of the first head, to replay it later.
    let (scout, _, scout_net) = relay.register(DeviceKind::Visitor, false).await;
    scout.open_conversation(team).await.unwrap();
    let old_attestation = scout_net.last_attestation().unwrap();
    owner
        .set_witness(&team.team, &format!("http://{}", witness.addr()), key)
        .await
        .unwrap();
    let pinned = team.with_witness(&key);
    assert_eq!(TeamRef::parse(&pinned.to_string()).unwrap(), pinned);

    // Without the pin, the prefix before SetWitness and the old attestation are accepted:
    // the weaker bound (PROTOCOL §6.8, "What it assumes").
    let (unpinned, _, net) = relay.register(DeviceKind::Visitor, false).await;
    net.hide_links_after(Some(0));
    net.serve_attestation(old_attestation.clone());
    unpinned.open_conversation(team).await.unwrap();

    // With it, the visitor refuses to seal and warns, until the relay serves the link.
    let (visitor, _, net) = relay.register(DeviceKind::Visitor, false).await;
    let mut events = visitor.events();
    net.hide_links_after(Some(0));
    net.serve_attestation(old_attestation);
    let err = visitor.open_conversation(pinned).await.unwrap_err();
    assert_eq!(err.code(), "chain_withheld");
    assert_eq!(rollbacks(&mut events, &team), 1);
    net.hide_links_after(None);
    net.replay_attestation(false);
    let conversation = visitor.open_conversation(pinned).await.unwrap();
    visitor.send_text(&conversation, "hello").await.unwrap();
    assert_eq!(rollbacks(&mut events, &team), 0);

    // A reference pinning another witness key is refused, not trusted.
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let other = sotto_core::crypto::sign::SigningKey::generate(&mut rng).verifying_key();
    let (stale, _, _) = relay.register(DeviceKind::Visitor, false).await;
    let err = stale
        .open_conversation(team.with_witness(&other))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "chain_bad_witness");
}

/// A replaced witness learns of its replacement, so the relay cannot keep a client before the
/// replacement on the old witness's word: the owner replaces witness 1 by witness 2, then
/// removes an agent, and the relay hides both links from the visitor (replaying an attestation
/// of the old head). Without the replacement the same partition is caught too.
#[tokio::test]
async fn a_replaced_witness_still_stops_a_visitor_kept_before_the_replacement() {
    for replace in [true, false] {
        let sent = hide_removal_behind_witness(replace).await;
        assert_eq!(
            sent.map(|m| m.epoch).unwrap_err().code(),
            "chain_withheld",
            "replaced: {replace}"
        );
    }
}

async fn hide_removal_behind_witness(
    replace: bool,
) -> sotto_client::Result<sotto_client::client::Outgoing> {
    let relay = TestRelay::start().await;
    let dir = TempDir::new();
    let w1 = sotto_relay::witness::start(&WitnessArgs::new(dir.0.join("w1.key"), dir.0.join("w1")))
        .await
        .unwrap();
    let w2 = sotto_relay::witness::start(&WitnessArgs::new(dir.0.join("w2.key"), dir.0.join("w2")))
        .await
        .unwrap();
    let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
    let team = owner
        .create_team(Policy {
            freshness_limit_secs: LIMIT_SECS,
            ..Policy::default()
        })
        .await
        .unwrap();
    owner
        .set_witness(
            &team.team,
            &format!("http://{}", w1.addr()),
            VerifyingKey::from_bytes(&w1.public_key()).unwrap(),
        )
        .await
        .unwrap();
    let (removed, _, removed_net) = relay.register(DeviceKind::Member, false).await;
    let removed_member = owner
        .invite_member(&team.team, &removed.device_id(), Role::Agent)
        .await
        .unwrap();
    removed.join_team(team).await.unwrap();
    let (visitor, _, visitor_net) = relay.register(DeviceKind::Visitor, false).await;
    let conversation = visitor.open_conversation(team).await.unwrap();
    visitor.send_text(&conversation, "before").await.unwrap();
    removed.sync().await.unwrap();

    // The relay freezes the visitor's and the removed agent's view here.
    let seq = owner
        .team_log(&team.team)
        .await
        .unwrap()
        .last()
        .unwrap()
        .seq;
    visitor.sync().await.unwrap();
    visitor_net.hide_links_after(Some(seq));
    visitor_net.replay_attestation(true);
    removed_net.hide_links_after(Some(seq));
    if replace {
        owner
            .set_witness(
                &team.team,
                &format!("http://{}", w2.addr()),
                VerifyingKey::from_bytes(&w2.public_key()).unwrap(),
            )
            .await
            .unwrap();
    }
    owner
        .remove_member(&team.team, &removed_member)
        .await
        .unwrap();
    // Past half the limit: the visitor must check freshness again before it seals.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    visitor
        .send_text(&conversation, "my card number is 4111")
        .await
}
