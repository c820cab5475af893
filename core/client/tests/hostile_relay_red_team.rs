//! Red team against the issue 13 fixes (PROTOCOL §7.9, §10.1, §10.3; THREATS G8, G10): a relay
//! operator writing into its own database, withholding envelopes and links, against real
//! clients on a loopback relay. Every `#[tokio::test]` here asserts the secure (or honest)
//! behaviour and fails while the weakness it names is present.

mod harness;

use chacha20::ChaCha20Rng;
use harness::operator::*;
use harness::*;
use rand_core::SeedableRng;
use sotto_client::client::{Event, EventStream, Warning};
use sotto_client::store::{Namespace, Query, RecordId};
use sotto_core::conversation::{
    ChainId, ConversationId, Instance, MessageContext, MessageKind, SenderChain, seal_message,
};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::device::{Device, DeviceKind};
use sotto_core::team::{Policy, Role};
use sotto_core::wire::WireObject;
use sqlx::Row;

fn warnings(events: &mut EventStream) -> Vec<Warning> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::Warning(w) = e {
            out.push(w);
        }
    }
    out
}

/// Owner, agent and visitor, keeping every transport (the relay's hand on each client).
struct Setup {
    relay: TestRelay,
    owner: TestClient,
    owner_net: FlakyTransport,
    agent: TestClient,
    agent_net: FlakyTransport,
    visitor: TestClient,
    team: sotto_client::client::TeamRef,
    conversation: ConversationId,
}

async fn setup() -> Setup {
    let relay = TestRelay::start().await;
    let (owner, _, owner_net) = relay.register(DeviceKind::Member, true).await;
    let team = owner.create_team(Policy::default()).await.unwrap();
    let (agent, _, agent_net) = relay.register(DeviceKind::Member, false).await;
    owner
        .invite_member(&team.team, &agent.device_id(), Role::Agent)
        .await
        .unwrap();
    agent.join_team(team).await.unwrap();
    let (visitor, _, _) = relay.register(DeviceKind::Visitor, false).await;
    let conversation = visitor.open_conversation(team).await.unwrap();
    Setup {
        relay,
        owner,
        owner_net,
        agent,
        agent_net,
        visitor,
        team,
        conversation,
    }
}

/// Was broken (red team, issue 13): "dropping the end of an epoch is detected (G8)".
///
/// The close of an epoch is its author's view: it lists how far each chain got *as the closer
/// received it*. The relay withholds the visitor's last message of epoch 0 ("two") from every
/// member; after a rotation the agent opens epoch 1 and its close honestly states the
/// visitor's chain at `next = 1`. Every member then sees a complete epoch (close = what they
/// got), and the only party that knows better, the sender, never compares the close with its
/// own chain (`check_closes` skips "this installation's own chain ... complete by
/// definition"). The message vanishes with no warning anywhere, while the visitor shows it as
/// sent. Secure behaviour: a sender whose own chain ran past the close learns its tail was cut
/// (a `Gap` or equivalent warning).
#[tokio::test(flavor = "multi_thread")]
async fn a_tail_dropped_from_every_member_is_reported_to_its_sender() {
    let s = setup().await;
    s.visitor.send_text(&s.conversation, "one").await.unwrap();
    s.agent.sync().await.unwrap();
    s.owner.sync().await.unwrap();
    let two = s.visitor.send_text(&s.conversation, "two").await.unwrap();
    let cursor = two.cursor.unwrap();
    s.agent_net.withhold(cursor);
    s.owner_net.withhold(cursor);
    s.agent.sync().await.unwrap();
    s.owner.sync().await.unwrap();

    let mut visitor_events = s.visitor.events();
    let mut agent_events = s.agent.events();
    let mut owner_events = s.owner.events();
    s.owner.rotate_team_key(&s.team.team).await.unwrap();
    s.agent.sync().await.unwrap();
    let three = s.agent.send_text(&s.conversation, "three").await.unwrap();
    assert_eq!(three.epoch, 1, "the agent opens epoch 1 and closes epoch 0");
    s.visitor.sync().await.unwrap();
    s.agent.sync().await.unwrap();
    s.owner.sync().await.unwrap();

    // The visitor believes "two" was delivered; no member ever got it.
    assert_eq!(
        history_texts(&s.visitor, &s.conversation).await,
        ["one", "two", "three"]
    );
    assert_eq!(
        history_texts(&s.agent, &s.conversation).await,
        ["one", "three"]
    );
    let all: Vec<Warning> = [&mut visitor_events, &mut agent_events, &mut owner_events]
        .into_iter()
        .flat_map(warnings)
        .collect();
    assert!(
        !all.is_empty(),
        "the visitor's last message of epoch 0 was dropped for every member, and nobody \
         (not even the visitor, whose chain is past the close) was warned"
    );
}

/// Was broken (red team, issue 13): "messages that arrive in an epoch after a newer epoch is known, beyond what its close
/// recorded, are refused or shown with a warning, never silently accepted" (and with it the
/// detection of a dropped tail).
///
/// An author that cannot read the epoch it follows writes `closes = 0x00` ("end not stated"),
/// and for active senders that means *accepted, without limit* (§7.9 table). A viewer added to
/// the team holds only the newest generation; its console's first read receipt makes it open
/// the next epoch, with no close. The relay hides the rotation from the agent, which keeps
/// replying in epoch 0: the visitor shows the reply as genuine with no warning, exactly the
/// issue's "agent hidden from a rotation" case, because the relay let the viewer close. (The
/// same record also lets the relay drop the end of epoch 0 undetected.)
#[tokio::test(flavor = "multi_thread")]
async fn a_closer_that_cannot_read_lets_no_late_reply_through_silently() {
    let s = setup().await;
    s.visitor.send_text(&s.conversation, "hi").await.unwrap();
    s.agent.sync().await.unwrap();
    let seq = s
        .owner
        .team_log(&s.team.team)
        .await
        .unwrap()
        .last()
        .unwrap()
        .seq;
    s.agent_net.hide_links_after(Some(seq));

    let (viewer, _, _) = s.relay.register(DeviceKind::Member, false).await;
    s.owner
        .invite_member(&s.team.team, &viewer.device_id(), Role::Viewer)
        .await
        .unwrap();
    viewer.join_team(s.team).await.unwrap();
    viewer.sync().await.unwrap();
    // The supervisor's console marks the conversation read. The viewer cannot read epoch 0
    // (sealed before its access), so it would open epoch 1 without stating where epoch 0 ended:
    // it sends no receipt instead, and opens nothing.
    viewer.send_read_receipt(&s.conversation, 1).await.unwrap();
    let epoch1 = RecordId::new(
        &Namespace::new("conv.epoch").unwrap(),
        [s.conversation.0.to_vec(), 1u32.to_be_bytes().to_vec()].concat(),
    )
    .unwrap();
    assert!(viewer.store().get(&epoch1).await.unwrap().is_none());

    // The visitor opens epoch 1 (the viewer's generation), stating where epoch 0 ended; the
    // agent, kept on epoch 0 by the relay, replies there after it.
    let next = s
        .visitor
        .send_text(&s.conversation, "hello?")
        .await
        .unwrap();
    let reply = s
        .agent
        .send_text(&s.conversation, "pay here: IBAN XX00")
        .await
        .unwrap();
    assert_eq!(reply.epoch, 0, "the agent was kept on epoch 0");
    let mut events = s.visitor.events();
    s.visitor.sync().await.unwrap();
    let epoch1 = stored_epoch(s.visitor.store(), &s.conversation, next.epoch).await;
    assert!(
        epoch1.closes.is_some(),
        "the visitor states where epoch 0 ended"
    );
    let shown = history_texts(&s.visitor, &s.conversation)
        .await
        .iter()
        .any(|t| t.contains("IBAN"));
    let warned = warnings(&mut events).iter().any(|w| {
        matches!(
            w,
            Warning::Undecryptable {
                code: "message_after_close",
                ..
            } | Warning::EpochRefused { .. }
                | Warning::Rollback { .. }
        )
    });
    assert!(
        !shown || warned,
        "a reply in epoch 0 after epoch 1 was opened was shown as genuine without any warning"
    );
}

/// Was broken (red team, issue 13): "tampering becomes a typed warning while the rest keeps syncing" (and wedges the
/// conversation: no participant can open an epoch again).
///
/// The operator stores one record it cannot sign (a copy of epoch 0 renumbered 1, naming a
/// chain position far beyond the head). `EpochRecord::verify` looks at the named head before
/// the author and the signature, returns `epoch_chain_behind`, and the client treats that as
/// "links withheld, not decided": the fetch stops there with a team `Rollback` warning, every
/// sync, forever. The record is never refused, so the client's next epoch number stays 1, the
/// relay answers `epoch_conflict`, and after a rotation no participant can send at all.
#[tokio::test(flavor = "multi_thread")]
async fn an_unsigned_record_naming_a_far_head_is_refused_and_the_conversation_goes_on() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "hello").await.unwrap();
    w.agent.sync().await.unwrap();
    let epoch0 = stored_epoch(w.agent.store(), &w.conversation, 0).await;
    let mut forged = epoch0.clone();
    forged.epoch = 1;
    forged.previous = epoch0.hash();
    forged.team_seq = epoch0.team_seq + 1_000_000;
    forged.closes = Some(Vec::new());
    operator_stores_epoch(&w.relay, &w.conversation, &forged.to_wire()).await;

    let mut events = w.visitor.events();
    w.owner.rotate_team_key(&w.team.team).await.unwrap();
    let sent = w
        .visitor
        .send_text(&w.conversation, "after the rotation")
        .await;
    assert!(
        sent.is_ok(),
        "the visitor can no longer send in this conversation: {sent:?}"
    );
    w.agent.sync().await.unwrap();
    assert!(
        history_texts(&w.agent, &w.conversation)
            .await
            .contains(&"after the rotation".to_string())
    );
    assert!(
        warnings(&mut events)
            .iter()
            .any(|w| matches!(w, Warning::EpochRefused { epoch: 1, .. })),
        "the forged record is refused with a typed warning"
    );
}

/// Was broken (red team, issue 13): G10 (no input from the network exhausts memory) in the new held-message path.
///
/// A message whose epoch record has not been served (up to 16 numbers ahead) is stored aside in
/// the client's store *before anything is checked*: not its sender, not its signature (which
/// needs the record). The operator plants any number of structurally valid messages from
/// devices that are in no team and no conversation, in epoch 1 that never comes: each client
/// keeps every one of them (up to 67 KB each) in its encrypted store forever, and walks all of
/// them at the end of every sync. Secure behaviour: a message from a sender that is no
/// participant is refused at once (or what is held is bounded).
#[tokio::test(flavor = "multi_thread")]
async fn junk_from_strangers_in_a_future_epoch_is_not_kept() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "hello").await.unwrap();
    w.agent.sync().await.unwrap();
    let epoch0 = stored_epoch(w.agent.store(), &w.conversation, 0).await;
    let mut fake = epoch0.clone();
    fake.epoch = 1;
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    const JUNK: usize = 200;
    for _ in 0..JUNK {
        let stranger = Device::generate(DeviceKind::Member, &mut rng, 1_767_225_600);
        let secret = SecretBytes::<32>::random(&mut rng);
        let mut chain = SenderChain::new(
            &secret,
            ChainId {
                conversation: w.conversation,
                epoch: 1,
                sender: stranger.id(),
                instance: Instance([1; 8]),
                stream: MessageKind::Text.stream(),
            },
        );
        let junk = seal_message(
            &mut chain,
            &stranger,
            MessageKind::Text,
            &[0x41; 60_000],
            &MessageContext::of(&fake),
        )
        .unwrap();
        operator_stores_envelope(&w.relay, &w.conversation, junk).await;
    }
    w.agent.sync().await.unwrap();
    let held = w
        .agent
        .store()
        .list(&Namespace::new("msg.held").unwrap(), &Query::default())
        .await
        .unwrap();
    let bytes: usize = held.iter().map(|(_, e)| e.value.len()).sum();
    assert_eq!(
        held.len(),
        0,
        "{} messages ({bytes} bytes) from devices that are no participant are kept in the store",
        held.len()
    );
}

/// Honest use: an agent's reply written offline is lost for everyone, with a security warning.
///
/// Was broken (red team, issue 13): "no honest message is lost / no false warning" (issue 13's honest-use goal). The agent
/// is offline (a phone in a tunnel) and answers: the reply is sealed in epoch 0, the newest it
/// knows, and queued, exactly as §10.2 intends. Meanwhile the owner rotates the team key (a
/// routine rotation, or another agent's removal) and the visitor writes again, opening epoch 1,
/// whose close says the agent's chain in epoch 0 is empty. When the agent is back online its
/// queue is posted: the visitor and the owner refuse the reply as `message_after_close`, the
/// agent shows it as sent. Nothing here is an attack, and the outbox only retries the same
/// sealed bytes, so the reply is never re-sealed in epoch 1. (THREATS lists the millisecond race
/// of this as a known limit; an offline queue turns it into the ordinary case.)
#[tokio::test(flavor = "multi_thread")]
async fn an_agents_reply_queued_offline_across_a_rotation_is_sealed_again() {
    let s = setup().await;
    s.visitor
        .send_text(&s.conversation, "hello?")
        .await
        .unwrap();
    s.agent.sync().await.unwrap();
    s.agent_net.set_offline(true);
    let queued = s
        .agent
        .send_text(&s.conversation, "yes, I'm here")
        .await
        .unwrap();
    assert!(queued.cursor.is_none(), "queued while offline");

    s.owner.rotate_team_key(&s.team.team).await.unwrap();
    let sent = s
        .visitor
        .send_text(&s.conversation, "anyone?")
        .await
        .unwrap();
    assert_eq!(sent.epoch, 1);

    s.agent_net.set_offline(false);
    s.agent.sync().await.unwrap();
    s.agent.flush_outbox().await.unwrap();
    let mut events = s.visitor.events();
    s.visitor.sync().await.unwrap();
    let texts = history_texts(&s.visitor, &s.conversation).await;
    let warned: Vec<Warning> = warnings(&mut events);
    assert!(
        texts.contains(&"yes, I'm here".to_string()) && warned.is_empty(),
        "the honest reply queued offline is not shown ({texts:?}) or raised warnings: {warned:?}"
    );
}

/// Pushes `message` as an ephemeral frame to `to`, as the relay's fan-out does.
async fn operator_pushes_ephemeral(
    relay: &TestRelay,
    conversation: &ConversationId,
    to: sotto_core::device::DeviceId,
    message: Vec<u8>,
) {
    let state = relay.relay.as_ref().unwrap().state();
    let id = conversation_ref(relay, conversation).await;
    let tenant: i64 = sqlx::query("SELECT tenant_id FROM conversations WHERE id = $1")
        .bind(id)
        .fetch_one(state.db.pool())
        .await
        .unwrap()
        .try_get("tenant_id")
        .unwrap();
    let audience = sotto_relay::fanout::Audience {
        devices: [to].into_iter().collect(),
        tenant_visitors: false,
        except: None,
    };
    state.fanout.publish(sotto_relay::events::envelope(
        tenant,
        id,
        &conversation.0,
        None,
        message,
        audience,
    ));
}

/// Was broken (red team, issue 13): "removed members cannot ... be shown in the open one" (PROTOCOL §7.9: a removed
/// member's words count only up to the close an active participant states).
///
/// Admission (hold while open, refuse beyond the close) is applied only to stored envelopes
/// (`open_message` checks it `if let Some(cursor)`); typing indicators and read receipts come
/// as push frames without a cursor and skip it. `sender_key` accepts a former member for
/// ephemeral kinds in any epoch whose record names a head before its removal. So the fired
/// agent, with the relay pushing its frames, is shown to the visitor as typing and as having
/// read the conversation, after its removal and even after epoch 0 was closed.
#[tokio::test(flavor = "multi_thread")]
async fn a_removed_agents_typing_and_receipts_are_not_shown() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "hello").await.unwrap();
    w.agent.sync().await.unwrap();
    w.agent.send_text(&w.conversation, "on it").await.unwrap();
    w.visitor.sync().await.unwrap();
    let fired = stolen_device(w.agent.store()).await;
    let instance = w.agent.instance();
    let epoch0 = stored_epoch(w.agent.store(), &w.conversation, 0).await;
    let keyring = stolen_keyring(w.agent.store(), &w.team).await;
    w.owner
        .remove_member(&w.team.team, &w.agent_member)
        .await
        .unwrap();
    w.visitor.sync().await.unwrap();

    let mut events = w.visitor.events();
    let v = w.visitor.clone();
    let run = tokio::spawn(async move { v.run().await });
    wait_for(&mut events, |e| matches!(e, Event::Connected).then_some(())).await;
    // Control: the push path works (the owner's typing opens epoch 1, closing epoch 0).
    w.owner.sync().await.unwrap();
    w.owner.send_typing(&w.conversation, true).await.unwrap();
    let owner_id = w.owner.device_id();
    wait_for(&mut events, |e| match e {
        Event::Typing { sender, .. } if *sender == owner_id => Some(()),
        _ => None,
    })
    .await;

    // The fired agent (its key, the epoch 0 secret it held) types and "reads" in epoch 0.
    let epoch_secret = epoch0.secret_for_member(&keyring).unwrap();
    let mut chain = SenderChain::new(
        &epoch_secret,
        ChainId {
            conversation: w.conversation,
            epoch: 0,
            sender: fired.id(),
            instance,
            stream: MessageKind::Typing.stream(),
        },
    );
    let context = MessageContext::of(&epoch0);
    let typing = seal_message(&mut chain, &fired, MessageKind::Typing, &[1], &context).unwrap();
    let receipt = seal_message(
        &mut chain,
        &fired,
        MessageKind::Receipt,
        &99u64.to_be_bytes(),
        &context,
    )
    .unwrap();
    let to = w.visitor.device_id();
    operator_pushes_ephemeral(&w.relay, &w.conversation, to, typing).await;
    operator_pushes_ephemeral(&w.relay, &w.conversation, to, receipt).await;
    let fired_id = fired.id();
    let shown = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        loop {
            match futures_util::StreamExt::next(&mut events).await {
                Some(Event::Typing { sender, .. }) | Some(Event::Receipt { sender, .. })
                    if sender == fired_id =>
                {
                    return true;
                }
                Some(_) => {}
                None => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    run.abort();
    assert!(
        !shown,
        "the removed agent is shown typing / reading after its removal"
    );
}
