//! Conversations against a hostile relay operator (PROTOCOL §7.9, THREATS G3, G5, G6, G8): the
//! operator writes what it likes into the relay's database, and colludes with a member removed
//! from the team who kept a copy of its device's store.

mod harness;

use chacha20::ChaCha20Rng;
use harness::operator::*;
use harness::*;
use rand_core::SeedableRng;
use sotto_client::client::{Event, EventStream, Warning};
use sotto_client::store::{Namespace, Query};
use sotto_core::conversation::{
    ChainId, EpochRecord, Instance, MessageContext, MessageKind, SenderChain, seal_message,
};
use sotto_core::device::{Device, DeviceKind};
use sotto_core::team::{Policy, Role};
use sotto_core::team::{TeamKeyring, TeamState};
use sotto_core::wire::WireObject;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Every warning emitted so far.
fn warnings(events: &mut EventStream) -> Vec<Warning> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::Warning(w) = e {
            out.push(w);
        }
    }
    out
}

fn texts_contain(texts: &[String], needle: &str) -> bool {
    texts.iter().any(|t| t.contains(needle))
}

/// What a fired agent and the relay hold after the agent's removal: its device, the chain it
/// verified, the conversation's first record and the agent's store.
struct Fired {
    device: Device,
    old_chain: TeamState,
    keyring: TeamKeyring,
    instance: Instance,
    epoch0: EpochRecord,
}

async fn fire_the_agent(w: &World) -> Fired {
    w.visitor.send_text(&w.conversation, "hello").await.unwrap();
    w.agent.sync().await.unwrap();
    w.agent.send_text(&w.conversation, "on it").await.unwrap();
    // The visitor reads the reply while the agent is still on the team.
    w.visitor.sync().await.unwrap();
    let fired = Fired {
        device: stolen_device(w.agent.store()).await,
        old_chain: stolen_state(w.agent.store(), &w.team).await,
        keyring: stolen_keyring(w.agent.store(), &w.team).await,
        instance: w.agent.instance(),
        epoch0: stored_epoch(w.agent.store(), &w.conversation, 0).await,
    };
    w.owner
        .remove_member(&w.team.team, &w.agent_member)
        .await
        .unwrap();
    fired
}

/// PROTOCOL §7.9: a removed agent that kept its chain state signs a new epoch record naming a
/// head from before its removal, sealed to the old generation, and the operator stores it with a
/// second one following it and the agent's message. Nobody shows the message; once an active
/// participant opens the next epoch, both records are refused with a warning naming the agent.
#[tokio::test(flavor = "multi_thread")]
async fn a_removed_agent_and_the_relay_cannot_open_an_epoch_after_the_removal() {
    let w = World::new().await;
    let fired = fire_the_agent(&w).await;
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let (forged, secret) = EpochRecord::open(
        &mut rng,
        &fired.device,
        &fired.old_chain,
        w.conversation,
        1,
        Some((&fired.epoch0, Some(Vec::new()))),
        fired.epoch0.visitor_devices.clone(),
        now(),
    )
    .unwrap();
    let (trailer, _) = EpochRecord::open(
        &mut rng,
        &fired.device,
        &fired.old_chain,
        w.conversation,
        2,
        Some((&forged, Some(Vec::new()))),
        fired.epoch0.visitor_devices.clone(),
        now(),
    )
    .unwrap();
    let mut chain = SenderChain::new(
        &secret,
        ChainId {
            conversation: w.conversation,
            epoch: 1,
            sender: fired.device.id(),
            instance: fired.instance,
            stream: MessageKind::Text.stream(),
        },
    );
    let message = seal_message(
        &mut chain,
        &fired.device,
        MessageKind::Text,
        b"refunds now go to IBAN XX00 EVIL",
        &MessageContext::of(&forged),
    )
    .unwrap();
    operator_stores_epoch(&w.relay, &w.conversation, &forged.to_wire()).await;
    operator_stores_epoch(&w.relay, &w.conversation, &trailer.to_wire()).await;
    operator_stores_envelope(&w.relay, &w.conversation, message).await;

    let mut visitor_events = w.visitor.events();
    let mut owner_events = w.owner.events();
    w.visitor.sync().await.unwrap();
    w.owner.sync().await.unwrap();
    for client in [&w.visitor, &w.owner] {
        let texts = history_texts(client, &w.conversation).await;
        assert!(!texts_contain(&texts, "IBAN"), "shown: {texts:?}");
    }

    // The visitor writes on: its new epoch follows epoch 0, passing over the agent's two.
    let sent = w
        .visitor
        .send_text(&w.conversation, "is that right?")
        .await
        .unwrap();
    assert_eq!(sent.epoch, 3);
    w.visitor.sync().await.unwrap();
    w.owner.sync().await.unwrap();
    let texts = history_texts(&w.owner, &w.conversation).await;
    assert_eq!(texts, ["hello", "on it", "is that right?"]);
    for events in [&mut visitor_events, &mut owner_events] {
        let refused: Vec<u32> = warnings(events)
            .into_iter()
            .filter_map(|w| match w {
                Warning::EpochRefused {
                    epoch,
                    author: Some(author),
                    code: "epoch_unconfirmed",
                    ..
                } if author == fired.device.id() => Some(epoch),
                _ => None,
            })
            .collect();
        assert_eq!(refused, [1, 2]);
    }
}

/// The removed agent writes into the epoch that was open when it was removed (it still holds
/// that epoch's secret). Nobody shows it while the epoch is open; the visitor's next epoch states
/// where the agent's chain ended, and the message beyond it is refused with a warning, while
/// the agent's reply from before its removal stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_removed_agent_writing_into_the_open_epoch_is_held_and_refused_at_its_close() {
    let w = World::new().await;
    let fired = fire_the_agent(&w).await;
    let secret = fired.epoch0.secret_for_member(&fired.keyring).unwrap();
    let mut chain = SenderChain::new(
        &secret,
        ChainId {
            conversation: w.conversation,
            epoch: 0,
            sender: fired.device.id(),
            instance: fired.instance,
            stream: MessageKind::Text.stream(),
        },
    );
    // Counter 0 carried "on it"; the agent goes on from there.
    chain.next_message_key().unwrap();
    let message = seal_message(
        &mut chain,
        &fired.device,
        MessageKind::Text,
        b"refunds now go to IBAN XX00 EVIL",
        &MessageContext::of(&fired.epoch0),
    )
    .unwrap();
    operator_stores_envelope(&w.relay, &w.conversation, message).await;

    let mut visitor_events = w.visitor.events();
    let mut owner_events = w.owner.events();
    w.visitor.sync().await.unwrap();
    w.owner.sync().await.unwrap();
    for client in [&w.visitor, &w.owner] {
        let texts = history_texts(client, &w.conversation).await;
        assert!(
            !texts_contain(&texts, "IBAN"),
            "shown while open: {texts:?}"
        );
    }

    // The visitor's next message opens epoch 1 (the team key rotated), which closes epoch 0.
    let sent = w
        .visitor
        .send_text(&w.conversation, "thanks")
        .await
        .unwrap();
    assert_eq!(sent.epoch, 1);
    w.visitor.sync().await.unwrap();
    w.owner.sync().await.unwrap();
    for client in [&w.visitor, &w.owner] {
        assert_eq!(
            history_texts(client, &w.conversation).await,
            ["hello", "on it", "thanks"]
        );
    }
    for events in [&mut visitor_events, &mut owner_events] {
        let after_close = warnings(events)
            .into_iter()
            .filter(|w| {
                matches!(
                    w,
                    Warning::Undecryptable {
                        code: "message_after_close",
                        ..
                    }
                )
            })
            .count();
        assert_eq!(after_close, 1);
    }
}

/// The relay drops the last message of an epoch for the agent. The visitor's next epoch states
/// how far its chain got, so the agent reports the gap.
#[tokio::test(flavor = "multi_thread")]
async fn the_relay_dropping_the_end_of_an_epoch_is_reported() {
    let relay = TestRelay::start().await;
    let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
    let team = owner.create_team(Policy::default()).await.unwrap();
    let (agent, _, agent_net) = relay.register(DeviceKind::Member, false).await;
    owner
        .invite_member(&team.team, &agent.device_id(), Role::Agent)
        .await
        .unwrap();
    agent.join_team(team).await.unwrap();
    let (visitor, _, _) = relay.register(DeviceKind::Visitor, false).await;
    let conversation = visitor.open_conversation(team).await.unwrap();
    visitor.send_text(&conversation, "one").await.unwrap();
    agent.sync().await.unwrap();
    let dropped = visitor.send_text(&conversation, "two").await.unwrap();
    agent_net.withhold(dropped.cursor.unwrap());
    let mut events = agent.events();
    agent.sync().await.unwrap();
    assert!(warnings(&mut events).is_empty(), "nothing to tell yet");

    owner.rotate_team_key(&team.team).await.unwrap();
    let sent = visitor.send_text(&conversation, "three").await.unwrap();
    assert_eq!(sent.epoch, 1);
    agent.sync().await.unwrap();
    assert_eq!(history_texts(&agent, &conversation).await, ["one", "three"]);
    let gaps: Vec<_> = warnings(&mut events)
        .into_iter()
        .filter_map(|w| match w {
            Warning::Gap {
                sender, missing, ..
            } => Some((sender, missing)),
            _ => None,
        })
        .collect();
    assert_eq!(gaps, [(visitor.device_id(), 1)]);
}

/// The relay hides a rotation from an agent, which keeps replying in the old epoch. The visitor
/// opened the next epoch, whose close says the agent had written nothing: the reply is refused
/// with a warning, never shown as genuine.
#[tokio::test(flavor = "multi_thread")]
async fn a_reply_in_an_epoch_after_its_close_is_refused_with_a_warning() {
    let relay = TestRelay::start().await;
    let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
    let team = owner.create_team(Policy::default()).await.unwrap();
    let (agent, _, agent_net) = relay.register(DeviceKind::Member, false).await;
    owner
        .invite_member(&team.team, &agent.device_id(), Role::Agent)
        .await
        .unwrap();
    agent.join_team(team).await.unwrap();
    let (visitor, _, _) = relay.register(DeviceKind::Visitor, false).await;
    let conversation = visitor.open_conversation(team).await.unwrap();
    visitor.send_text(&conversation, "hi").await.unwrap();
    agent.sync().await.unwrap();

    let seq = owner
        .team_log(&team.team)
        .await
        .unwrap()
        .last()
        .unwrap()
        .seq;
    agent_net.hide_links_after(Some(seq));
    owner.rotate_team_key(&team.team).await.unwrap();
    let sent = visitor.send_text(&conversation, "anyone?").await.unwrap();
    assert_eq!(sent.epoch, 1);
    let reply = agent.send_text(&conversation, "pay here").await.unwrap();
    assert_eq!(reply.epoch, 0);
    // The relay's own rule refuses a message in a closed epoch (the agent keeps it queued); the
    // operator stores it anyway.
    assert_eq!(reply.cursor, None);
    let queued = agent
        .store()
        .list(&Namespace::new("outbox").unwrap(), &Query::default())
        .await
        .unwrap();
    let (_, entry) = queued.last().expect("the reply waits in the outbox");
    // Queued = u32 len || stored message || u32 len || wire
    let v = entry.value.to_vec();
    let skip = 4 + u32::from_be_bytes(v[..4].try_into().unwrap()) as usize;
    let n = u32::from_be_bytes(v[skip..skip + 4].try_into().unwrap()) as usize;
    operator_stores_envelope(&relay, &conversation, v[skip + 4..skip + 4 + n].to_vec()).await;

    let mut events = visitor.events();
    visitor.sync().await.unwrap();
    assert_eq!(
        history_texts(&visitor, &conversation).await,
        ["hi", "anyone?"]
    );
    assert!(warnings(&mut events).iter().any(|w| matches!(
        w,
        Warning::Undecryptable {
            code: "message_after_close",
            ..
        }
    )));
}

/// A record the relay corrupted is refused with a warning naming the check, and the conversation
/// keeps syncing and sending.
#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_epoch_record_is_a_warning_and_the_conversation_goes_on() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "hello").await.unwrap();
    w.agent.sync().await.unwrap();
    let mut record = stored_epoch(w.agent.store(), &w.conversation, 0)
        .await
        .to_wire();
    let last = record.len() - 1;
    record[last] ^= 1;
    operator_stores_epoch(&w.relay, &w.conversation, &record).await;

    let mut events = w.agent.events();
    w.agent.sync().await.unwrap();
    w.agent.send_text(&w.conversation, "hi").await.unwrap();
    w.visitor.sync().await.unwrap();
    assert_eq!(
        history_texts(&w.visitor, &w.conversation).await,
        ["hello", "hi"]
    );
    let refused: Vec<_> = warnings(&mut events)
        .into_iter()
        .filter(|w| matches!(w, Warning::EpochRefused { epoch: 1, .. }))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
}
