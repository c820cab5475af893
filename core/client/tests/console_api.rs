//! What the agent console needs beyond messaging: the team chain in words, system notes, and a
//! recovery kit in one call. Against a real relay on 127.0.0.1.

mod harness;

use harness::{FlakyTransport, TestRelay, World, history_texts, wait_for};
use sotto_client::backup::OpenWith;
use sotto_client::client::{Event, Warning, system_note};
use sotto_client::store::EncryptedStore;
use sotto_client::{Client, Error};
use sotto_core::conversation::MessageKind;
use sotto_core::recovery::RecoverySecret;
use sotto_core::team::{Role, TeamId};

fn short(bytes: &[u8]) -> String {
    hex::encode(&bytes[..4])
}

#[tokio::test]
async fn the_team_log_describes_every_verified_link_in_order() {
    let w = World::new().await;
    w.owner
        .change_role(&w.team.team, &w.agent_member, Role::Viewer)
        .await
        .unwrap();
    w.owner
        .remove_member(&w.team.team, &w.agent_member)
        .await
        .unwrap();

    let log = w.owner.team_log(&w.team.team).await.unwrap();
    let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    let owner = short(&w.owner.device_id().0);
    let member = short(&w.agent_member.0);
    assert!(
        log[0]
            .description
            .starts_with(&format!("device {owner} created the team"))
    );
    assert_eq!(
        log[1].description,
        format!("device {owner} added member {member} as agent")
    );
    assert_eq!(
        log[2].description,
        format!("device {owner} made member {member} viewer")
    );
    assert!(
        log[3].description.starts_with(&format!(
            "device {owner} removed member {member}; the team key moved to generation "
        )),
        "{}",
        log[3].description
    );
    assert!(
        log.iter()
            .all(|e| e.author == w.owner.device_id() && e.at > 0)
    );

    // Another member's client tells the same story from its own verified copy.
    w.agent.sync().await.ok();
    let agents_view = w.agent.team_log(&w.team.team).await.unwrap();
    assert_eq!(agents_view[..2], log[..2]);

    assert_eq!(
        w.owner.team_log(&TeamId([9; 16])).await.unwrap_err(),
        Error::UnknownTeam
    );
}

#[tokio::test]
async fn a_system_note_reaches_the_visitor_as_a_system_message() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "hello").await.unwrap();
    w.agent.sync().await.unwrap();
    w.agent
        .send_system_note(&w.conversation, "Assigned to Ada")
        .await
        .unwrap();
    w.visitor.sync().await.unwrap();
    let history = w.visitor.history(&w.conversation, None, 10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].kind, MessageKind::System);
    assert_eq!(system_note(&history[1]), Some("Assigned to Ada"));
    // A text is not a note, and notes are not texts.
    assert_eq!(system_note(&history[0]), None);
    assert_eq!(history_texts(&w.visitor, &w.conversation).await, ["hello"]);

    assert_eq!(
        w.agent
            .send_system_note(&w.conversation, "")
            .await
            .unwrap_err(),
        Error::InvalidInput("system note length")
    );
    let long = "x".repeat(1025);
    assert!(
        w.agent
            .send_system_note(&w.conversation, &long)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_recovery_kit_restores_the_member_from_its_words_and_the_stored_blob() {
    let w = World::new().await;
    w.visitor
        .send_text(&w.conversation, "before the kit")
        .await
        .unwrap();
    w.agent.sync().await.unwrap();

    let kit = w.agent.export_recovery_kit().await.unwrap();
    assert_eq!(kit.blob_id.len(), 32);
    assert_eq!(kit.words.split(' ').count(), 24);
    assert!(!format!("{kit:?}").contains(kit.words.split(' ').next().unwrap()));

    // Two kits never share a secret.
    let other = w.agent.export_recovery_kit().await.unwrap();
    assert_ne!(*other.words, *kit.words);
    assert_ne!(other.blob_id, kit.blob_id);

    // The relay keeps one backup per device: the newer kit supersedes the first.
    let superseded = w.agent.fetch_backup(&kit.blob_id).await.unwrap_err();
    assert_eq!(superseded.relay_code(), Some("not_found"));
    let (kit, other) = (other, kit);
    let blob = w.agent.fetch_backup(&kit.blob_id).await.unwrap();
    let secret = RecoverySecret::from_words(&kit.words).unwrap();
    let (fresh, key) = TestRelay::store().await;
    let store = EncryptedStore::open(fresh, key).await.unwrap();
    let restored = Client::restore_backup(
        store,
        FlakyTransport::new(),
        &blob,
        OpenWith::RecoveryKey(&secret),
    )
    .await
    .unwrap();
    assert_eq!(restored.device_id(), w.agent.device_id());
    assert_eq!(
        history_texts(&restored, &w.conversation).await,
        ["before the kit"]
    );

    // The other (earlier) kit's words do not open this blob.
    let wrong = RecoverySecret::from_words(&other.words).unwrap();
    let (fresh, key) = TestRelay::store().await;
    let store = EncryptedStore::open(fresh, key).await.unwrap();
    let err = Client::restore_backup(
        store,
        FlakyTransport::new(),
        &blob,
        OpenWith::RecoveryKey(&wrong),
    )
    .await
    .unwrap_err();
    assert_eq!(err, Error::BackupDecryptionFailed);
}

#[tokio::test]
async fn typing_missed_while_offline_is_not_reported_as_a_gap() {
    let w = World::new().await;
    let mut agent_events = w.agent.events();
    let a = w.agent.clone();
    let run = tokio::spawn(async move { a.run().await });
    wait_for(&mut agent_events, |e| {
        matches!(e, Event::Connected).then_some(())
    })
    .await;
    w.visitor.send_typing(&w.conversation, true).await.unwrap();
    wait_for(&mut agent_events, |e| {
        matches!(e, Event::Typing { typing: true, .. }).then_some(())
    })
    .await;

    // The agent goes away; the typing indicators sent meanwhile are gone for it.
    run.abort();
    let _ = run.await;
    for _ in 0..3 {
        w.visitor.send_typing(&w.conversation, true).await.unwrap();
    }
    let a = w.agent.clone();
    let run = tokio::spawn(async move { a.run().await });
    wait_for(&mut agent_events, |e| {
        matches!(e, Event::Connected).then_some(())
    })
    .await;
    w.visitor.send_typing(&w.conversation, false).await.unwrap();
    let mut gaps = 0;
    wait_for(&mut agent_events, |e| match e {
        Event::Warning(Warning::Gap { .. }) => {
            gaps += 1;
            None
        }
        Event::Typing { typing: false, .. } => Some(()),
        _ => None,
    })
    .await;
    // (A durable message withheld by the relay still is one: client.rs tests that.)
    assert_eq!(gaps, 0);
    run.abort();
}
