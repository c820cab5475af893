//! Honest use raises no security warning. Joins, invites in the same second as a visitor's
//! first message, readers without history arriving mid-conversation, rotations, a member's
//! second device, reloads and several visitors, all interleaved against a real relay: every
//! client's event stream must hold zero warnings, and everyone reads what they should.

mod harness;

use futures_util::FutureExt;
use futures_util::StreamExt;
use harness::{TestRelay, history_texts};
use sotto_client::client::{Event, EventStream, Warning};
use sotto_core::device::DeviceKind;
use sotto_core::team::{Policy, Role};

/// Every warning delivered so far on a stream.
fn warnings(events: &mut EventStream) -> Vec<Warning> {
    let mut out = Vec::new();
    while let Some(Some(event)) = events.next().now_or_never() {
        if let Event::Warning(w) = event {
            out.push(w);
        }
    }
    out
}

#[tokio::test]
async fn honest_interleaved_use_raises_no_security_warning() {
    let relay = TestRelay::start().await;
    let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
    let mut streams = vec![("owner", owner.events())];
    let team = owner.create_team(Policy::default()).await.unwrap();

    // A visitor opens a conversation in the same second as an agent is invited.
    let (agent, agent_store, _) = relay.register(DeviceKind::Member, false).await;
    streams.push(("agent", agent.events()));
    let (visitor, _, _) = relay.register(DeviceKind::Visitor, false).await;
    streams.push(("visitor", visitor.events()));
    let (conversation, agent_member) = tokio::join!(
        async { visitor.open_conversation(team).await.unwrap() },
        async {
            owner
                .invite_member(&team.team, &agent.device_id(), Role::Agent)
                .await
                .unwrap()
        }
    );
    agent.join_team(team).await.unwrap();
    visitor
        .send_text(&conversation, "hello, my parcel is lost")
        .await
        .unwrap();
    agent.sync().await.unwrap();
    agent
        .send_text(&conversation, "let me check that for you")
        .await
        .unwrap();

    // A viewer arrives mid-conversation: it starts at a new generation, and the visitor's next
    // message is sealed to it.
    let (viewer, _, _) = relay.register(DeviceKind::Member, false).await;
    streams.push(("viewer", viewer.events()));
    owner
        .invite_member(&team.team, &viewer.device_id(), Role::Viewer)
        .await
        .unwrap();
    viewer.join_team(team).await.unwrap();
    visitor.sync().await.unwrap();
    visitor
        .send_text(&conversation, "the tracking number is 77")
        .await
        .unwrap();
    viewer.sync().await.unwrap();
    assert_eq!(
        history_texts(&viewer, &conversation).await,
        ["the tracking number is 77"],
        "a viewer reads from its arrival on, nothing before"
    );

    // A second device of the agent, approved by the agent itself; a scheduled rotation.
    let (agent_phone, _, _) = relay.register(DeviceKind::Member, false).await;
    streams.push(("agent phone", agent_phone.events()));
    agent
        .approve_device(&team.team, &agent_member, &agent_phone.device_id())
        .await
        .unwrap();
    agent_phone.join_team(team).await.unwrap();
    owner.rotate_team_key(&team.team).await.unwrap();

    // A second visitor, and replies from every member device after syncing.
    let (visitor2, _, _) = relay.register(DeviceKind::Visitor, false).await;
    streams.push(("visitor 2", visitor2.events()));
    let conversation2 = visitor2.open_conversation(team).await.unwrap();
    visitor2
        .send_text(&conversation2, "do you ship abroad?")
        .await
        .unwrap();
    for member in [&owner, &agent, &agent_phone, &viewer] {
        member.sync().await.unwrap();
    }
    agent_phone
        .send_text(&conversation2, "we do, to 40 countries")
        .await
        .unwrap();
    owner
        .send_text(&conversation, "a new parcel leaves today")
        .await
        .unwrap();

    // The agent's app restarts on the same store and catches up.
    let agent_again = relay.reopen_with_key(&agent_store, agent.device_id()).await;
    streams.push(("agent reopened", agent_again.events()));
    agent_again.sync().await.unwrap();
    visitor.sync().await.unwrap();
    visitor2.sync().await.unwrap();

    assert_eq!(
        history_texts(&agent_again, &conversation).await,
        [
            "hello, my parcel is lost",
            "let me check that for you",
            "the tracking number is 77",
            "a new parcel leaves today"
        ]
    );
    assert_eq!(
        history_texts(&agent_phone, &conversation2).await,
        ["do you ship abroad?", "we do, to 40 countries"]
    );
    assert_eq!(
        history_texts(&visitor, &conversation).await,
        [
            "hello, my parcel is lost",
            "let me check that for you",
            "the tracking number is 77",
            "a new parcel leaves today"
        ]
    );
    assert_eq!(
        history_texts(&visitor2, &conversation2).await,
        ["do you ship abroad?", "we do, to 40 countries"]
    );

    // The second visitor deletes its conversation, the owner (a manager) the first: signed
    // deletions that every client verifies and follows, without a warning.
    visitor2.delete_conversation(&conversation2).await.unwrap();
    owner.delete_conversation(&conversation).await.unwrap();
    for (who, client) in [
        ("owner", &owner),
        ("agent", &agent),
        ("agent phone", &agent_phone),
        ("viewer", &viewer),
        ("agent reopened", &agent_again),
        ("visitor", &visitor),
        ("visitor 2", &visitor2),
    ] {
        client.sync().await.unwrap();
        assert!(client.conversations().await.unwrap().is_empty(), "{who}");
        assert!(
            history_texts(client, &conversation).await.is_empty(),
            "{who}"
        );
        assert!(
            history_texts(client, &conversation2).await.is_empty(),
            "{who}"
        );
    }
    for (who, stream) in &mut streams {
        assert_eq!(warnings(stream), Vec::<Warning>::new(), "{who}");
    }
}

#[tokio::test]
async fn honest_use_with_a_freshness_witness_raises_no_security_warning() {
    let relay = TestRelay::start().await;
    let dir = harness::TempDir::new();
    let args =
        sotto_relay::witness::WitnessArgs::new(dir.0.join("witness.key"), dir.0.join("chains"));
    let witness = sotto_relay::witness::start(&args).await.unwrap();
    let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
    let mut streams = vec![("owner", owner.events())];
    let team = owner.create_team(Policy::default()).await.unwrap();
    owner
        .set_witness(
            &team.team,
            &format!("http://{}", witness.addr()),
            sotto_core::crypto::sign::VerifyingKey::from_bytes(&witness.public_key()).unwrap(),
        )
        .await
        .unwrap();

    // A visitor opens a conversation while an agent is invited: the witness may be ahead of
    // what the visitor synced a moment before, never of what the relay serves after.
    let (agent, _, _) = relay.register(DeviceKind::Member, false).await;
    streams.push(("agent", agent.events()));
    let (visitor, _, _) = relay.register(DeviceKind::Visitor, false).await;
    streams.push(("visitor", visitor.events()));
    let (conversation, _) = tokio::join!(
        async { visitor.open_conversation(team).await.unwrap() },
        async {
            owner
                .invite_member(&team.team, &agent.device_id(), Role::Agent)
                .await
                .unwrap()
        }
    );
    agent.join_team(team).await.unwrap();
    visitor.send_text(&conversation, "hello").await.unwrap();
    agent.sync().await.unwrap();
    agent.send_text(&conversation, "hi there").await.unwrap();

    // A second agent comes and goes (a removal rotates the key); everyone moves on.
    let (temp, _, _) = relay.register(DeviceKind::Member, false).await;
    let temp_member = owner
        .invite_member(&team.team, &temp.device_id(), Role::Agent)
        .await
        .unwrap();
    temp.join_team(team).await.unwrap();
    owner.remove_member(&team.team, &temp_member).await.unwrap();
    visitor
        .send_text(&conversation, "still there?")
        .await
        .unwrap();
    agent.sync().await.unwrap();
    agent.send_text(&conversation, "yes").await.unwrap();
    visitor.sync().await.unwrap();
    owner.sync().await.unwrap();

    for who in [&owner, &agent, &visitor] {
        assert_eq!(
            history_texts(who, &conversation).await,
            ["hello", "hi there", "still there?", "yes"]
        );
    }
    for (name, events) in &mut streams {
        assert_eq!(warnings(events), [], "{name} was warned in honest use");
    }
    witness.stop();
}

/// Epochs that follow and close each other honestly raise nothing: an agent opens an epoch and
/// replies, the visitor reads it, the agent leaves the company; a member who had not synced reads
/// the agent's words once the visitor's next epoch follows them; an agent's last reply that the
/// visitor read before the removal stays; a second rotation and epoch change later, and a
/// restarted client, nobody has a warning.
#[tokio::test]
async fn honest_epoch_changes_and_a_removal_raise_no_security_warning() {
    let relay = TestRelay::start().await;
    let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
    let mut streams = vec![("owner", owner.events())];
    let team = owner.create_team(Policy::default()).await.unwrap();
    let (agent, _, _) = relay.register(DeviceKind::Member, false).await;
    streams.push(("agent", agent.events()));
    let agent_member = owner
        .invite_member(&team.team, &agent.device_id(), Role::Agent)
        .await
        .unwrap();
    agent.join_team(team).await.unwrap();
    let (colleague, colleague_store, _) = relay.register(DeviceKind::Member, false).await;
    owner
        .invite_member(&team.team, &colleague.device_id(), Role::Agent)
        .await
        .unwrap();
    colleague.join_team(team).await.unwrap();
    let (visitor, _, _) = relay.register(DeviceKind::Visitor, false).await;
    streams.push(("visitor", visitor.events()));
    let conversation = visitor.open_conversation(team).await.unwrap();
    visitor.send_text(&conversation, "hello").await.unwrap();
    agent.sync().await.unwrap();

    // A rotation: the agent's reply opens epoch 1, closing epoch 0.
    owner.rotate_team_key(&team.team).await.unwrap();
    agent.sync().await.unwrap();
    let reply = agent.send_text(&conversation, "on it").await.unwrap();
    assert_eq!(reply.epoch, 1);
    visitor.sync().await.unwrap();
    owner
        .remove_member(&team.team, &agent_member)
        .await
        .unwrap();

    // The visitor writes on in a new epoch following the removed agent's; the colleague, who
    // synced nothing so far, reads everything.
    let next = visitor.send_text(&conversation, "thanks").await.unwrap();
    assert_eq!(next.epoch, 2);
    colleague.sync().await.unwrap();
    let colleague = relay
        .reopen_with_key(&colleague_store, colleague.device_id())
        .await;
    streams.push(("colleague", colleague.events()));
    colleague.sync().await.unwrap();
    colleague
        .send_text(&conversation, "anything else?")
        .await
        .unwrap();
    owner.sync().await.unwrap();
    visitor.sync().await.unwrap();
    for client in [&owner, &colleague, &visitor] {
        assert_eq!(
            history_texts(client, &conversation).await,
            ["hello", "on it", "thanks", "anything else?"]
        );
    }
    for (name, events) in &mut streams {
        assert_eq!(warnings(events), [], "{name}");
    }
}

/// An agent replies in the old epoch while the visitor, who saw a rotation first, opens the next:
/// the relay refuses the reply in the closed epoch, the agent seals it again in the new one, and
/// everyone reads it once, with no warning anywhere.
#[tokio::test]
async fn a_reply_racing_an_epoch_change_is_sealed_again_without_a_warning() {
    let relay = TestRelay::start().await;
    let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
    let team = owner.create_team(Policy::default()).await.unwrap();
    let (agent, _, _) = relay.register(DeviceKind::Member, false).await;
    owner
        .invite_member(&team.team, &agent.device_id(), Role::Agent)
        .await
        .unwrap();
    agent.join_team(team).await.unwrap();
    let (visitor, _, _) = relay.register(DeviceKind::Visitor, false).await;
    let mut streams = vec![
        ("owner", owner.events()),
        ("agent", agent.events()),
        ("visitor", visitor.events()),
    ];
    let conversation = visitor.open_conversation(team).await.unwrap();
    visitor.send_text(&conversation, "hello").await.unwrap();
    agent.sync().await.unwrap();

    owner.rotate_team_key(&team.team).await.unwrap();
    let next = visitor
        .send_text(&conversation, "still there?")
        .await
        .unwrap();
    assert_eq!(next.epoch, 1);
    // The agent has not seen the rotation nor the new epoch: it seals in epoch 0.
    let reply = agent
        .send_text(&conversation, "yes, one moment")
        .await
        .unwrap();
    assert_eq!(reply.epoch, 0);
    visitor.sync().await.unwrap();
    owner.sync().await.unwrap();
    agent.sync().await.unwrap();
    for client in [&visitor, &owner, &agent] {
        assert_eq!(
            history_texts(client, &conversation).await,
            ["hello", "still there?", "yes, one moment"]
        );
    }
    assert_eq!(agent.outbox_len().await.unwrap(), 0);
    for (name, events) in &mut streams {
        assert_eq!(warnings(events), [], "{name}");
    }
}
