//! The client API end to end against a real relay on 127.0.0.1: a visitor and a team's agents
//! talking, state surviving a restart, attachments, removal, backups, the offline queue,
//! reconnects, concurrent sends and the URL policy.

mod harness;

use std::collections::BTreeSet;
use std::time::Duration;

use harness::{FlakyTransport, TestRelay, World, history_texts, key_of, wait_for};
use sotto_client::backup::{KdfParams, OpenWith, SealTo};
use sotto_client::client::{Body, Event, TeamChange, Warning};
use sotto_client::store::{EncryptedStore, MemoryStore, StoreKey};
use sotto_client::transport::UrlError;
use sotto_client::{Client, Error};
use sotto_core::conversation::MessageKind;
use sotto_core::device::DeviceKind;
use sotto_core::recovery::RecoverySecret;
use sotto_core::team::Role;

#[tokio::test]
async fn a_visitor_and_an_agent_exchange_messages() {
    let w = World::new().await;
    let sent = w
        .visitor
        .send_text(&w.conversation, "my order 1234 is late")
        .await
        .unwrap();
    assert_eq!(sent.cursor, Some(1));
    assert_eq!((sent.epoch, sent.counter), (0, 0));

    // The agent learns the conversation from the relay and reads the message.
    w.agent.sync().await.unwrap();
    assert_eq!(w.agent.conversations().await.unwrap(), vec![w.conversation]);
    let history = w.agent.history(&w.conversation, None, 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].sender, w.visitor.device_id());
    assert!(!history[0].mine);
    assert_eq!(history[0].cursor, Some(1));
    assert_eq!(history[0].body, Body::Text("my order 1234 is late".into()));

    w.agent
        .send_text(&w.conversation, "sorry, it ships today")
        .await
        .unwrap();
    w.visitor.sync().await.unwrap();
    assert_eq!(
        history_texts(&w.visitor, &w.conversation).await,
        ["my order 1234 is late", "sorry, it ships today"]
    );
    let visitor_history = w.visitor.history(&w.conversation, None, 10).await.unwrap();
    assert!(visitor_history[0].mine && !visitor_history[1].mine);
    // Paging: the one before cursor 2.
    let page = w
        .visitor
        .history(&w.conversation, Some(2), 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].cursor, Some(1));

    // Live: with both connected, messages, typing and receipts arrive as events.
    let mut visitor_events = w.visitor.events();
    let mut agent_events = w.agent.events();
    let v = w.visitor.clone();
    let a = w.agent.clone();
    let visitor_run = tokio::spawn(async move { v.run().await });
    let agent_run = tokio::spawn(async move { a.run().await });
    wait_for(&mut visitor_events, |e| {
        matches!(e, Event::Connected).then_some(())
    })
    .await;
    wait_for(&mut agent_events, |e| {
        matches!(e, Event::Connected).then_some(())
    })
    .await;

    w.visitor.send_typing(&w.conversation, true).await.unwrap();
    let (sender, typing) = wait_for(&mut agent_events, |e| match e {
        Event::Typing { sender, typing, .. } => Some((*sender, *typing)),
        _ => None,
    })
    .await;
    assert_eq!((sender, typing), (w.visitor.device_id(), true));

    w.visitor
        .send_text(&w.conversation, "thanks!")
        .await
        .unwrap();
    let message = wait_for(&mut agent_events, |e| match e {
        Event::Message { message, .. } => Some(message.clone()),
        _ => None,
    })
    .await;
    assert_eq!(message.body, Body::Text("thanks!".into()));
    assert_eq!(message.cursor, Some(3));

    w.agent.send_read_receipt(&w.conversation, 3).await.unwrap();
    let (sender, read) = wait_for(&mut visitor_events, |e| match e {
        Event::Receipt {
            sender, read_up_to, ..
        } => Some((*sender, *read_up_to)),
        _ => None,
    })
    .await;
    assert_eq!((sender, read), (w.agent.device_id(), 3));
    visitor_run.abort();
    agent_run.abort();

    // The owner, who reads too, has the same history, in the same order.
    w.owner.sync().await.unwrap();
    assert_eq!(
        history_texts(&w.owner, &w.conversation).await,
        ["my order 1234 is late", "sorry, it ships today", "thanks!"]
    );
}

#[tokio::test]
async fn a_reopened_client_keeps_its_history_and_keeps_sending() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "one").await.unwrap();
    w.agent.sync().await.unwrap();
    w.agent.send_text(&w.conversation, "two").await.unwrap();
    w.visitor.sync().await.unwrap();
    let before = w.visitor.history(&w.conversation, None, 100).await.unwrap();
    let device = w.visitor.device_id();
    drop(w.visitor);

    let visitor = w.relay.reopen_with_key(&w.visitor_store, device).await;
    assert_eq!(visitor.device_id(), device);
    assert_eq!(visitor.conversations().await.unwrap(), vec![w.conversation]);
    let after = visitor.history(&w.conversation, None, 100).await.unwrap();
    assert_eq!(harness::texts(&after), harness::texts(&before));
    assert_eq!(harness::texts(&after), ["one", "two"]);

    // The sender chain continues where it stopped (no counter is reused): the agent reads the
    // new message without a duplicate or gap.
    let mut agent_events = w.agent.events();
    let sent = visitor.send_text(&w.conversation, "three").await.unwrap();
    assert_eq!(sent.counter, 1);
    w.agent.sync().await.unwrap();
    assert_eq!(
        history_texts(&w.agent, &w.conversation).await,
        ["one", "two", "three"]
    );
    while let Ok(e) = agent_events.try_recv() {
        assert!(!matches!(e, Event::Warning(_)), "unexpected {e:?}");
    }
}

#[tokio::test]
async fn the_sqlite_store_keeps_a_client_across_restarts() {
    let relay = TestRelay::start().await;
    let dir = harness::TempDir::new();
    let path = dir.0.join("client.sqlite");
    let key = StoreKey::generate().unwrap();
    let key_bytes = key.secret_bytes().expose().to_vec();
    let backend = sotto_client::store::SqliteStore::open(&path).await.unwrap();
    let owner = Client::register(
        EncryptedStore::open(backend, key).await.unwrap(),
        FlakyTransport::new(),
        &relay.base,
        &relay.widget_id,
        DeviceKind::Member,
        Some(&relay.bootstrap_code),
    )
    .await
    .unwrap();
    let team = owner
        .create_team(sotto_core::team::Policy::default())
        .await
        .unwrap();
    let (visitor, _, _) = relay.register(DeviceKind::Visitor, false).await;
    let conversation = visitor.open_conversation(team).await.unwrap();
    visitor.send_text(&conversation, "hello").await.unwrap();
    owner.sync().await.unwrap();
    let id = owner.device_id();
    owner.store().backend().close().await;
    drop(owner);

    let backend = sotto_client::store::SqliteStore::open(&path).await.unwrap();
    let store = EncryptedStore::open(backend, StoreKey::from_slice(&key_bytes).unwrap())
        .await
        .unwrap();
    let owner = Client::open(store, FlakyTransport::new()).await.unwrap();
    assert_eq!(owner.device_id(), id);
    assert_eq!(owner.teams().await, vec![team]);
    assert_eq!(history_texts(&owner, &conversation).await, ["hello"]);
    owner
        .send_text(&conversation, "hi, how can I help?")
        .await
        .unwrap();
    visitor.sync().await.unwrap();
    assert_eq!(
        history_texts(&visitor, &conversation).await,
        ["hello", "hi, how can I help?"]
    );
}

#[tokio::test]
async fn an_attachment_round_trips_byte_for_byte() {
    let w = World::new().await;
    let mut data = vec![0u8; 300_000];
    getrandom::fill(&mut data).unwrap();
    w.visitor
        .send_attachment(&w.conversation, "screenshot.png", "image/png", &data)
        .await
        .unwrap();
    w.agent.sync().await.unwrap();
    let history = w.agent.history(&w.conversation, None, 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].kind, MessageKind::Attachment);
    let Body::Attachment(info) = &history[0].body else {
        panic!("not an attachment: {:?}", history[0].body);
    };
    assert_eq!(info.name(), "screenshot.png");
    assert_eq!(info.mime_type(), "image/png");
    assert_eq!(info.size(), data.len() as u64);
    let fetched = w.agent.fetch_attachment(info).await.unwrap();
    assert_eq!(fetched.as_slice(), data.as_slice());
    // The sender keeps the reference too and can open its own upload.
    let own = w.visitor.history(&w.conversation, None, 10).await.unwrap();
    let Body::Attachment(own) = &own[0].body else {
        panic!("not an attachment");
    };
    assert_eq!(
        w.visitor.fetch_attachment(own).await.unwrap().as_slice(),
        data.as_slice()
    );
}

#[tokio::test]
async fn a_removed_agent_reads_nothing_sent_after_its_removal() {
    let w = World::new().await;
    w.visitor
        .send_text(&w.conversation, "before")
        .await
        .unwrap();
    w.agent.sync().await.unwrap();
    assert_eq!(history_texts(&w.agent, &w.conversation).await, ["before"]);

    // The agent is online: the relay pushes it the link that removes it (a removed device can
    // no longer list the chain).
    let mut agent_events = w.agent.events();
    let agent = w.agent.clone();
    let run = tokio::spawn(async move { agent.run().await });
    wait_for(&mut agent_events, |e| {
        matches!(e, Event::Connected).then_some(())
    })
    .await;
    w.owner
        .remove_member(&w.team.team, &w.agent_member)
        .await
        .unwrap();
    wait_for(&mut agent_events, |e| {
        matches!(e, Event::RemovedFromTeam { .. }).then_some(())
    })
    .await;
    run.abort();

    // The visitor learns of the rotation and opens a new epoch for the next message.
    w.visitor.sync().await.unwrap();
    let sent = w.visitor.send_text(&w.conversation, "after").await.unwrap();
    assert_eq!(sent.epoch, 1);

    // The removed agent reads nothing new: its sync leaves the team alone, the relay refuses
    // it the conversation (and it holds no key of the new generation anyway, which the core's
    // scenarios check).
    w.agent.sync().await.unwrap();
    assert_eq!(w.agent.membership(&w.team.team).await.unwrap(), None);
    assert_eq!(
        w.agent
            .sync_conversation(&w.conversation)
            .await
            .unwrap_err()
            .code(),
        "relay_forbidden"
    );
    assert_eq!(history_texts(&w.agent, &w.conversation).await, ["before"]);

    // The owner still reads both.
    w.owner.sync().await.unwrap();
    assert_eq!(
        history_texts(&w.owner, &w.conversation).await,
        ["before", "after"]
    );
    let members = w.owner.members(&w.team.team).await.unwrap();
    assert!(members.iter().all(|m| m.member != w.agent_member));
}

#[tokio::test]
async fn membership_changes_are_events_and_a_second_device_is_approved() {
    let w = World::new().await;
    let mut agent_events = w.agent.events();
    let (second, _, _) = w.relay.register(DeviceKind::Member, false).await;
    // The agent approves its own second device; the chain rules allow that.
    w.agent
        .approve_device(&w.team.team, &w.agent_member, &second.device_id())
        .await
        .unwrap();
    second.join_team(w.team).await.unwrap();
    assert_eq!(
        second.membership(&w.team.team).await.unwrap(),
        Some((w.agent_member, Role::Agent))
    );
    let change = wait_for(&mut agent_events, |e| match e {
        Event::TeamChanged { change, .. } => Some(change.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        change,
        TeamChange::DeviceAdded {
            member: w.agent_member,
            device: second.device_id()
        }
    );

    // The new device reads the conversation's history (agents read history by default).
    w.visitor
        .send_text(&w.conversation, "hello team")
        .await
        .unwrap();
    second.sync().await.unwrap();
    assert_eq!(
        history_texts(&second, &w.conversation).await,
        ["hello team"]
    );

    // The agent revokes the second device: it sees that and reads nothing more.
    w.agent
        .revoke_device(&w.team.team, &w.agent_member, &second.device_id())
        .await
        .unwrap();
    let change = wait_for(&mut agent_events, |e| match e {
        Event::TeamChanged {
            change: change @ TeamChange::DeviceRevoked { .. },
            ..
        } => Some(change.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        change,
        TeamChange::DeviceRevoked {
            member: w.agent_member,
            device: second.device_id()
        }
    );
    assert_eq!(second.sync().await.unwrap_err().code(), "relay_forbidden");
    w.owner.sync_team(&w.team.team).await.unwrap();
    let members = w.owner.members(&w.team.team).await.unwrap();
    let agent = members.iter().find(|m| m.member == w.agent_member).unwrap();
    assert_eq!(agent.devices, vec![w.agent.device_id()]);

    // An agent cannot invite.
    assert_eq!(
        w.agent
            .invite_member(&w.team.team, &second.device_id(), Role::Agent)
            .await
            .unwrap_err()
            .code(),
        "chain_not_permitted"
    );
}

#[tokio::test]
async fn a_backup_restores_history_and_the_restored_client_sends_in_a_new_epoch() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "one").await.unwrap();
    w.agent.sync().await.unwrap();
    w.agent.send_text(&w.conversation, "two").await.unwrap();
    w.visitor.sync().await.unwrap();

    let params = KdfParams::new(64, 1, 1).unwrap();
    let blob = w
        .visitor
        .export_backup(SealTo::Passphrase {
            passphrase: "correct horse battery staple",
            params,
        })
        .await
        .unwrap();
    let blob_id = w.visitor.upload_backup(&blob, &[]).await.unwrap();
    assert_eq!(blob_id.len(), 32);

    // A wrong passphrase opens nothing.
    let (fresh, key) = TestRelay::store().await;
    let store = EncryptedStore::open(fresh.clone(), key).await.unwrap();
    let err = Client::restore_backup(
        store,
        FlakyTransport::new(),
        &blob,
        OpenWith::Passphrase("wrong"),
    )
    .await
    .unwrap_err();
    assert_eq!(err, Error::BackupDecryptionFailed);

    let (fresh, key) = TestRelay::store().await;
    let store = EncryptedStore::open(fresh, key).await.unwrap();
    let restored = Client::restore_backup(
        store,
        FlakyTransport::new(),
        &blob,
        OpenWith::Passphrase("correct horse battery staple"),
    )
    .await
    .unwrap();
    assert_eq!(restored.device_id(), w.visitor.device_id());
    assert_eq!(
        history_texts(&restored, &w.conversation).await,
        ["one", "two"]
    );

    // The original may have sent after the backup; the restored one never reuses its chain.
    w.visitor.send_text(&w.conversation, "three").await.unwrap();
    let sent = restored.send_text(&w.conversation, "four").await.unwrap();
    assert_eq!((sent.epoch, sent.counter), (1, 0));
    w.agent.sync().await.unwrap();
    assert_eq!(
        history_texts(&w.agent, &w.conversation).await,
        ["one", "two", "three", "four"]
    );
    restored.sync().await.unwrap();
    assert_eq!(
        history_texts(&restored, &w.conversation).await,
        ["one", "two", "three", "four"]
    );

    // The recovery-key form, for a member.
    let secret = RecoverySecret::generate(&mut rand_core::UnwrapErr(getrandom::SysRng));
    let blob = w
        .agent
        .export_backup(SealTo::RecoveryKey(&secret))
        .await
        .unwrap();
    let (fresh, key) = TestRelay::store().await;
    let store = EncryptedStore::open(fresh, key).await.unwrap();
    let words = secret.to_words();
    let parsed = RecoverySecret::from_words(&words).unwrap();
    let agent = Client::restore_backup(
        store,
        FlakyTransport::new(),
        &blob,
        OpenWith::RecoveryKey(&parsed),
    )
    .await
    .unwrap();
    assert_eq!(
        agent.membership(&w.team.team).await.unwrap(),
        Some((w.agent_member, Role::Agent))
    );
    assert_eq!(
        history_texts(&agent, &w.conversation).await,
        ["one", "two", "three", "four"]
    );
}

#[tokio::test]
async fn offline_messages_queue_and_are_delivered_exactly_once() {
    let w = World::new().await;
    w.visitor_net.set_offline(true);
    for text in ["m1", "m2", "m3"] {
        let sent = w.visitor.send_text(&w.conversation, text).await.unwrap();
        assert_eq!(sent.cursor, None, "{text} should be queued");
    }
    assert_eq!(w.visitor.outbox_len().await.unwrap(), 3);
    assert_eq!(
        harness::texts(&w.visitor.pending(&w.conversation).await.unwrap()),
        ["m1", "m2", "m3"]
    );
    assert!(w.visitor.flush_outbox().await.unwrap_err().is_transient());

    // Back online, but the answer to the first post is lost after the relay stored it: the
    // message stays queued and is posted again.
    w.visitor_net.set_offline(false);
    w.visitor_net.lose_next_post_responses(1);
    assert!(w.visitor.flush_outbox().await.is_err());
    assert_eq!(w.visitor.outbox_len().await.unwrap(), 3);
    assert_eq!(w.visitor.flush_outbox().await.unwrap(), 3);
    assert_eq!(w.visitor.outbox_len().await.unwrap(), 0);

    // The relay holds m1 twice; both sides show each message once.
    w.agent.sync().await.unwrap();
    assert_eq!(
        history_texts(&w.agent, &w.conversation).await,
        ["m1", "m2", "m3"]
    );
    w.visitor.sync().await.unwrap();
    assert_eq!(
        history_texts(&w.visitor, &w.conversation).await,
        ["m1", "m2", "m3"]
    );
    assert!(w.visitor.pending(&w.conversation).await.unwrap().is_empty());
}

#[tokio::test]
async fn waking_a_running_client_sends_its_queue_at_once() {
    let w = World::new().await;
    let mut events = w.visitor.events();
    let visitor = w.visitor.clone();
    let run = tokio::spawn(async move { visitor.run().await });
    wait_for(&mut events, |e| matches!(e, Event::Connected).then_some(())).await;

    // The push stream stays up while requests fail, as when a browser drops its network but
    // not yet its socket: the message waits in the outbox.
    w.visitor_net.set_offline(true);
    let sent = w
        .visitor
        .send_text(&w.conversation, "queued")
        .await
        .unwrap();
    assert_eq!(sent.cursor, None);
    w.visitor_net.set_offline(false);

    // Connected, the client would retry at its next periodic tick (30 s with this team's
    // freshness limit); the platform's "network is back" signal makes it retry now.
    w.visitor.wake();
    let flushed = tokio::time::timeout(Duration::from_secs(5), async {
        while w.visitor.outbox_len().await.unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    run.abort();
    assert!(
        flushed.is_ok(),
        "the outbox was sent within 5 s of the wake"
    );
    w.agent.sync().await.unwrap();
    assert_eq!(history_texts(&w.agent, &w.conversation).await, ["queued"]);
}

#[tokio::test]
async fn a_reconnecting_client_resumes_from_its_cursor_without_loss_or_duplicates() {
    let w = World::new().await;
    w.agent.sync().await.unwrap();
    let mut events = w.agent.events();
    let agent = w.agent.clone();
    let run = tokio::spawn(async move { agent.run().await });
    wait_for(&mut events, |e| matches!(e, Event::Connected).then_some(())).await;
    w.visitor
        .send_text(&w.conversation, "live 1")
        .await
        .unwrap();
    let m = wait_for(&mut events, |e| match e {
        Event::Message { message, .. } => Some(message.clone()),
        _ => None,
    })
    .await;
    assert_eq!(m.body, Body::Text("live 1".into()));

    // The agent goes away; the visitor writes meanwhile.
    run.abort();
    let _ = run.await;
    for text in ["away 1", "away 2", "away 3"] {
        w.visitor.send_text(&w.conversation, text).await.unwrap();
    }
    let agent = w.agent.clone();
    let run = tokio::spawn(async move { agent.run().await });
    let mut received = Vec::new();
    wait_for(&mut events, |e| match e {
        Event::Message { message, .. } => {
            received.push(message.body.clone());
            None
        }
        Event::Connected => Some(()),
        _ => None,
    })
    .await;
    w.visitor
        .send_text(&w.conversation, "live 2")
        .await
        .unwrap();
    let m = wait_for(&mut events, |e| match e {
        Event::Message { message, .. } => Some(message.clone()),
        _ => None,
    })
    .await;
    received.push(m.body);
    run.abort();
    assert_eq!(
        received,
        ["away 1", "away 2", "away 3", "live 2"].map(|t| Body::Text(t.into()))
    );
    assert_eq!(
        history_texts(&w.agent, &w.conversation).await,
        ["live 1", "away 1", "away 2", "away 3", "live 2"]
    );
    let cursors: Vec<_> = w
        .agent
        .history(&w.conversation, None, 100)
        .await
        .unwrap()
        .iter()
        .map(|m| m.cursor.unwrap())
        .collect();
    assert_eq!(cursors, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn concurrent_sends_on_one_client_never_share_a_counter() {
    let w = World::new().await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let visitor = w.visitor.clone();
        let conversation = w.conversation;
        tasks.push(tokio::spawn(async move {
            visitor
                .send_text(&conversation, &format!("message {i}"))
                .await
                .unwrap()
        }));
    }
    let mut counters = BTreeSet::new();
    for t in tasks {
        let sent = t.await.unwrap();
        assert!(
            counters.insert(sent.counter),
            "counter {} reused",
            sent.counter
        );
    }
    assert_eq!(counters, (0..24).collect());
    assert_eq!(w.visitor.outbox_len().await.unwrap(), 0);

    let mut events = w.agent.events();
    w.agent.sync().await.unwrap();
    let mut got = history_texts(&w.agent, &w.conversation).await;
    assert_eq!(got.len(), 24);
    got.sort();
    let mut expected: Vec<String> = (0..24).map(|i| format!("message {i}")).collect();
    expected.sort();
    assert_eq!(got, expected);
    while let Ok(e) = events.try_recv() {
        assert!(
            !matches!(e, Event::Warning(Warning::Undecryptable { .. })),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn deleting_a_conversation_and_a_team_reaches_every_member() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "hi").await.unwrap();
    w.agent.sync().await.unwrap();
    assert_eq!(w.agent.conversations().await.unwrap().len(), 1);
    w.visitor
        .delete_conversation(&w.conversation)
        .await
        .unwrap();
    assert!(w.visitor.conversations().await.unwrap().is_empty());
    w.agent.sync().await.unwrap();
    assert!(w.agent.conversations().await.unwrap().is_empty());
    assert!(
        w.agent
            .history(&w.conversation, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A new conversation, then the owner deletes the team.
    let (visitor, _, _) = w.relay.register(DeviceKind::Visitor, false).await;
    let conversation = visitor.open_conversation(w.team).await.unwrap();
    visitor.send_text(&conversation, "anyone?").await.unwrap();
    w.agent.sync().await.unwrap();
    assert_eq!(history_texts(&w.agent, &conversation).await, ["anyone?"]);
    let mut events = w.agent.events();
    w.owner.delete_team(&w.team.team).await.unwrap();
    assert!(w.owner.teams().await.is_empty());
    let _ = w.agent.sync().await;
    wait_for(&mut events, |e| match e {
        Event::TeamChanged {
            change: TeamChange::Deleted,
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    assert!(w.agent.conversations().await.unwrap().is_empty());
    assert!(history_texts(&w.agent, &conversation).await.is_empty());
}

#[tokio::test]
async fn an_expired_token_is_renewed() {
    let relay = TestRelay::start_with(|a| a.token_ttl_secs = 2).await;
    let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
    let team = owner
        .create_team(sotto_core::team::Policy::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    owner.sync_team(&team.team).await.unwrap();
    assert_eq!(owner.teams().await, vec![team]);
}

#[tokio::test]
async fn insecure_or_malformed_relay_urls_are_refused_before_any_request() {
    let cases = [
        ("http://relay.example.com", "url_insecure_scheme"),
        ("http://192.168.1.10:8080", "url_insecure_scheme"),
        ("ftp://relay.example.com", "url_unsupported_scheme"),
        ("https://user@relay.example.com", "url_user_info"),
        ("relay.example.com", "url_malformed"),
    ];
    for (url, code) in cases {
        let store = EncryptedStore::open(MemoryStore::new(), StoreKey::generate().unwrap())
            .await
            .unwrap();
        let err = Client::register(
            store,
            FlakyTransport::new(),
            url,
            "00112233445566778899aabbccddeeff",
            DeviceKind::Visitor,
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), code, "{url}");
        assert!(matches!(err, Error::Url(_)));
    }
    assert_eq!(
        sotto_client::transport::RelayUrl::parse("http://relay.example.com"),
        Err(UrlError::InsecureScheme)
    );
    // A loopback relay over plain http is accepted (and reached).
    let relay = TestRelay::start().await;
    let (visitor, _, _) = relay.register(DeviceKind::Visitor, false).await;
    assert!(!visitor.relay().is_secure());
    let _ = key_of(&visitor);
}

#[tokio::test]
async fn a_visitor_refuses_to_seal_without_a_recently_attested_head() {
    let relay = TestRelay::start().await;
    let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
    let policy = sotto_core::team::Policy {
        freshness_limit_secs: 2,
        ..sotto_core::team::Policy::default()
    };
    let team = owner.create_team(policy).await.unwrap();
    let (visitor, _, net) = relay.register(DeviceKind::Visitor, false).await;
    let conversation = visitor.open_conversation(team).await.unwrap();

    // Within half the limit, an offline visitor queues.
    net.set_offline(true);
    let sent = visitor.send_text(&conversation, "queued").await.unwrap();
    assert_eq!(sent.cursor, None);

    // Later, it must see a fresh attestation first: offline, the send fails and nothing is
    // sealed or queued.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let err = visitor
        .send_text(&conversation, "refused")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "transport");
    assert_eq!(visitor.outbox_len().await.unwrap(), 1);

    // Online, but the newest attestation is older than the limit: refused too.
    net.set_offline(false);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let err = visitor
        .send_text(&conversation, "refused")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "chain_stale_head");

    // An online member renews the attestation; the visitor sends again.
    owner.sync().await.unwrap();
    visitor.send_text(&conversation, "sent").await.unwrap();
    owner.sync().await.unwrap();
    assert_eq!(
        history_texts(&owner, &conversation).await,
        ["queued", "sent"]
    );
}

#[tokio::test]
async fn identity_assertions_are_checked_against_the_team_chain() {
    use sotto_core::conversation::identity::IdentityAssertion;
    use sotto_core::crypto::sign::SigningKey;
    use sotto_core::wire::WireObject;

    let w = World::new().await;
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let backend_key = SigningKey::generate(&mut rng);
    w.owner
        .add_integration_key(&w.team.team, "crm", backend_key.verifying_key())
        .await
        .unwrap();
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let good = IdentityAssertion::sign(
        &backend_key,
        w.team.team,
        w.visitor.device_id(),
        "customer-42",
        expires,
    )
    .unwrap();
    let forged = IdentityAssertion::sign(
        &SigningKey::generate(&mut rng),
        w.team.team,
        w.visitor.device_id(),
        "customer-1",
        expires,
    )
    .unwrap();
    w.visitor
        .present_identity(&w.conversation, &good.to_wire())
        .await
        .unwrap();
    w.visitor
        .present_identity(&w.conversation, &forged.to_wire())
        .await
        .unwrap();

    let mut events = w.agent.events();
    w.agent.sync().await.unwrap();
    let mut verified = Vec::new();
    let mut unverified = 0;
    while let Ok(e) = events.try_recv() {
        match e {
            Event::IdentityVerified {
                device,
                customer_id,
                ..
            } => verified.push((device, customer_id)),
            Event::Warning(Warning::UnverifiedIdentity { device, .. }) => {
                assert_eq!(device, w.visitor.device_id());
                unverified += 1;
            }
            _ => {}
        }
    }
    assert_eq!(
        verified,
        [(w.visitor.device_id(), "customer-42".to_owned())]
    );
    assert_eq!(unverified, 1);
    // Malformed bytes are refused before anything is sent.
    assert!(
        w.visitor
            .present_identity(&w.conversation, b"junk")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_store_holds_no_plaintext() {
    use sotto_client::store::{Query, Store};
    let w = World::new().await;
    let secret_text = "the parcel code is QX-7731-ZEBRA";
    w.visitor
        .send_text(&w.conversation, secret_text)
        .await
        .unwrap();
    w.agent.sync().await.unwrap();
    w.agent
        .send_text(&w.conversation, "reply with PELICAN-4410")
        .await
        .unwrap();
    w.visitor.sync().await.unwrap();
    assert_eq!(history_texts(&w.visitor, &w.conversation).await.len(), 2);

    let backend = &w.visitor_store;
    let mut scanned = 0;
    for ns in backend.namespaces().await.unwrap() {
        for (key, record) in backend.list(&ns, &Query::default()).await.unwrap() {
            for needle in [&b"QX-7731-ZEBRA"[..], b"PELICAN-4410"] {
                assert!(!contains(&record.sealed, needle), "{ns:?}");
                assert!(!contains(&key, needle));
            }
            scanned += 1;
        }
    }
    assert!(scanned > 5, "only {scanned} records");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_connected_member_keeps_the_head_attestation_fresh() {
    let relay = TestRelay::start().await;
    let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
    let policy = sotto_core::team::Policy {
        freshness_limit_secs: 2,
        ..sotto_core::team::Policy::default()
    };
    let team = owner.create_team(policy).await.unwrap();
    let mut events = owner.events();
    let background = owner.clone();
    let run = tokio::spawn(async move { background.run().await });
    wait_for(&mut events, |e| matches!(e, Event::Connected).then_some(())).await;

    // Well past the limit of the attestation made at creation, a visitor still finds a fresh
    // one: the running client renewed it.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let (visitor, _, _) = relay.register(DeviceKind::Visitor, false).await;
    let conversation = visitor.open_conversation(team).await.unwrap();
    visitor.send_text(&conversation, "hello").await.unwrap();
    run.abort();

    // Without a running member, the head goes stale and visitors refuse it.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let (late, _, _) = relay.register(DeviceKind::Visitor, false).await;
    assert_eq!(
        late.open_conversation(team).await.unwrap_err().code(),
        "chain_stale_head"
    );
}

#[tokio::test]
async fn a_message_withheld_by_the_relay_shows_as_a_gap() {
    let relay = TestRelay::start().await;
    let (owner, _, owner_net) = relay.register(DeviceKind::Member, true).await;
    let team = owner
        .create_team(sotto_core::team::Policy::default())
        .await
        .unwrap();
    let (visitor, _, _) = relay.register(DeviceKind::Visitor, false).await;
    let conversation = visitor.open_conversation(team).await.unwrap();
    for text in ["first", "second", "third"] {
        visitor.send_text(&conversation, text).await.unwrap();
    }
    owner_net.withhold(2);
    let mut events = owner.events();
    owner.sync().await.unwrap();
    assert_eq!(
        history_texts(&owner, &conversation).await,
        ["first", "third"]
    );
    let mut gaps = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::Warning(Warning::Gap {
            sender, missing, ..
        }) = e
        {
            gaps.push((sender, missing));
        }
    }
    assert_eq!(gaps, [(visitor.device_id(), 1)]);
}

/// A backup of the visitor restored into a fresh store, with its own transport.
async fn restore_visitor(blob: &[u8]) -> (harness::TestClient, FlakyTransport) {
    let (fresh, key) = TestRelay::store().await;
    let store = EncryptedStore::open(fresh, key).await.unwrap();
    let net = FlakyTransport::new();
    let restored = Client::restore_backup(
        store,
        net.clone(),
        blob,
        OpenWith::Passphrase("correct horse battery staple"),
    )
    .await
    .unwrap();
    (restored, net)
}

async fn visitor_backup(w: &World) -> Vec<u8> {
    w.visitor
        .export_backup(SealTo::Passphrase {
            passphrase: "correct horse battery staple",
            params: KdfParams::new(64, 1, 1).unwrap(),
        })
        .await
        .unwrap()
}

/// The last wire message `net` posted: its header and ciphertext.
fn last_posted(net: &FlakyTransport) -> (sotto_core::conversation::MessageHeader, Vec<u8>) {
    let wire = net.posted().pop().expect("a posted message");
    let parsed = sotto_core::conversation::ParsedMessage::decode(&wire).unwrap();
    let ciphertext_len = u32::from_be_bytes(
        wire[sotto_core::conversation::message::HEADER_LEN..][..4]
            .try_into()
            .unwrap(),
    ) as usize;
    let start = sotto_core::conversation::message::HEADER_LEN + 4;
    (
        *parsed.header(),
        wire[start..start + ciphertext_len].to_vec(),
    )
}

#[tokio::test]
async fn a_restore_while_the_original_runs_never_reuses_a_message_key() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "one").await.unwrap();
    let blob = visitor_backup(&w).await;
    let (restored, restored_net) = restore_visitor(&blob).await;

    // The restored installation opens epoch 1; the original, still running, then writes in
    // epoch 1 too, from counter 0 on its own chain. The same words from both.
    let a = restored
        .send_text(&w.conversation, "same words")
        .await
        .unwrap();
    w.visitor.sync().await.unwrap();
    let b = w
        .visitor
        .send_text(&w.conversation, "same words")
        .await
        .unwrap();
    assert_eq!((a.epoch, a.counter), (b.epoch, b.counter));
    let (ha, ca) = last_posted(&restored_net);
    let (hb, cb) = last_posted(&w.visitor_net);
    assert_eq!(
        (ha.sender, ha.epoch, ha.counter),
        (hb.sender, hb.epoch, hb.counter)
    );
    // Under one key and nonce the same words give the same ciphertext (and two different
    // texts the XOR of their plaintexts).
    assert_ne!(
        ca, cb,
        "two installations sealed under one message key and nonce"
    );

    // Every receiver shows both messages; none is dropped as a duplicate.
    w.agent.sync().await.unwrap();
    assert_eq!(
        history_texts(&w.agent, &w.conversation).await,
        ["one", "same words", "same words"]
    );
}

#[tokio::test]
async fn two_restores_of_one_backup_never_reuse_a_message_key() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "one").await.unwrap();
    let blob = visitor_backup(&w).await;
    let (first, first_net) = restore_visitor(&blob).await;
    let (second, second_net) = restore_visitor(&blob).await;
    first
        .send_text(&w.conversation, "from the first")
        .await
        .unwrap();
    let s = second
        .send_text(&w.conversation, "same words")
        .await
        .unwrap();
    // The first learns the epoch the second opened and writes in it.
    first.sync().await.unwrap();
    let f = first
        .send_text(&w.conversation, "same words")
        .await
        .unwrap();
    assert_eq!((f.epoch, f.counter), (s.epoch, s.counter));
    let (_, cf) = last_posted(&first_net);
    let (_, cs) = last_posted(&second_net);
    assert_ne!(
        cf, cs,
        "two restores sealed under one message key and nonce"
    );

    w.agent.sync().await.unwrap();
    assert_eq!(
        history_texts(&w.agent, &w.conversation).await,
        ["one", "from the first", "same words", "same words"]
    );
    // The original visitor device sees all of them too.
    w.visitor.sync().await.unwrap();
    assert_eq!(
        history_texts(&w.visitor, &w.conversation).await,
        ["one", "from the first", "same words", "same words"]
    );
}

/// A correctly signed message of `kind` that `client`'s device seals with its keys and the
/// epoch secret from its own store, without the sealer's checks: what a visitor's client in bad
/// faith sends.
async fn forge_kind(
    client: &harness::TestClient,
    conversation: &sotto_core::conversation::ConversationId,
    kind: MessageKind,
    content: &[u8],
) -> Vec<u8> {
    use sotto_client::store::{Namespace, RecordId};
    use sotto_core::codec::Reader;
    use sotto_core::conversation::message::HEADER_LEN;
    use sotto_core::conversation::{
        ChainId, EpochRecord, Instance, MessageContext, SenderChain, seal_message,
    };
    use sotto_core::wire::WireObject;
    let store = client.store();
    let rid = |ns: &str, key: Vec<u8>| RecordId::new(&Namespace::new(ns).unwrap(), key).unwrap();
    let account = store
        .get(&rid("account", b"device".to_vec()))
        .await
        .unwrap()
        .unwrap();
    let mut r = Reader::new(&account.value);
    r.u8().unwrap();
    r.bytes_u16(2048).unwrap();
    let _: [u8; 16] = r.array().unwrap();
    let device = sotto_core::device::Device::import_secrets(r.bytes_u32(65_536).unwrap()).unwrap();
    let mut key = conversation.0.to_vec();
    key.extend_from_slice(&0u32.to_be_bytes());
    let record = EpochRecord::from_wire(
        &store
            .get(&rid("conv.epoch", key))
            .await
            .unwrap()
            .unwrap()
            .value,
    )
    .unwrap();
    let secret = record.secret_for_visitor(&device).unwrap();
    let context = MessageContext::of(&record);
    let id = ChainId {
        conversation: *conversation,
        epoch: 0,
        sender: device.id(),
        instance: Instance([0xee; 8]),
        stream: kind.stream(),
    };
    let probe = seal_message(
        &mut SenderChain::new(&secret, id),
        &device,
        MessageKind::Text,
        b"x",
        &context,
    )
    .unwrap();
    let (_, message_key) = SenderChain::new(&secret, id).next_message_key().unwrap();
    let mut header = probe[..HEADER_LEN].to_vec();
    header[HEADER_LEN - 1] = kind.to_byte();
    let padded = sotto_core::conversation::padding::pad(content, 65_536).unwrap();
    let mut aad = header.clone();
    aad.extend_from_slice(&record.team.0);
    aad.extend_from_slice(&context.record_hash);
    let ciphertext =
        sotto_core::crypto::aead::seal(message_key.key(), message_key.nonce(), &aad, &padded);
    let mut bytes = header;
    bytes.extend_from_slice(&(ciphertext.len() as u32).to_be_bytes());
    let mut statement = bytes.clone();
    {
        use sha2::{Digest, Sha256};
        statement.extend_from_slice(&Sha256::digest(&ciphertext));
    }
    statement.extend_from_slice(&aad[HEADER_LEN..]);
    bytes.extend_from_slice(&ciphertext);
    let signature = device.sign(
        sotto_core::crypto::sign::SignatureContext::Message,
        &statement,
    );
    bytes.extend_from_slice(signature.as_bytes());
    bytes
}

#[tokio::test]
async fn a_visitors_system_message_is_refused_by_every_receiver() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "hello").await.unwrap();
    w.agent.sync().await.unwrap();
    w.owner.sync().await.unwrap();
    let mut agent_events = w.agent.events();
    let mut owner_events = w.owner.events();
    // An honest visitor client refuses to write a team note.
    assert_eq!(
        w.visitor
            .send_system_note(&w.conversation, "Customer identity verified")
            .await
            .unwrap_err()
            .code(),
        "message_kind_not_allowed"
    );
    // A visitor's client in bad faith writes one anyway ("Assigned to ..., customer identity
    // verified"): correctly signed and encrypted, posted in place of a text.
    let note = forge_kind(
        &w.visitor,
        &w.conversation,
        MessageKind::System,
        b"sotto.note\0Customer identity verified by the team",
    )
    .await;
    w.visitor_net.replace_next_post(note);
    w.visitor.send_text(&w.conversation, "decoy").await.unwrap();
    w.agent.send_text(&w.conversation, "after").await.unwrap();
    for (client, events) in [(&w.agent, &mut agent_events), (&w.owner, &mut owner_events)] {
        client.sync().await.unwrap();
        let history = client.history(&w.conversation, None, 100).await.unwrap();
        assert!(
            history.iter().all(|m| m.kind != MessageKind::System),
            "a visitor's system note is shown"
        );
        assert_eq!(harness::texts(&history), ["hello", "after"]);
        let code = wait_for(events, |e| match e {
            Event::Warning(Warning::Undecryptable { code, .. }) => Some(*code),
            _ => None,
        })
        .await;
        assert_eq!(code, "message_kind_not_allowed");
    }
    // A member's note is shown, with the device that wrote it.
    w.agent
        .send_system_note(&w.conversation, "Assigned to Dana")
        .await
        .unwrap();
    w.visitor.sync().await.unwrap();
    let history = w.visitor.history(&w.conversation, None, 100).await.unwrap();
    let notes: Vec<_> = history
        .iter()
        .filter_map(|m| sotto_client::client::system_note(m).map(|t| (t.to_string(), m.sender)))
        .collect();
    assert_eq!(
        notes,
        [("Assigned to Dana".to_string(), w.agent.device_id())]
    );
}

#[tokio::test]
async fn the_client_lists_each_installations_durable_chain_per_epoch() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "one").await.unwrap();
    w.visitor.send_text(&w.conversation, "two").await.unwrap();
    let blob = visitor_backup(&w).await;
    let (restored, _) = restore_visitor(&blob).await;
    assert_ne!(restored.instance(), w.visitor.instance());
    restored.send_text(&w.conversation, "three").await.unwrap();
    w.agent.sync().await.unwrap();
    w.agent.send_text(&w.conversation, "reply").await.unwrap();
    let positions = w.agent.chain_positions(&w.conversation).await.unwrap();
    let seen: Vec<_> = positions
        .iter()
        .map(|p| (p.epoch, p.sender, p.instance, p.next, p.own))
        .collect();
    let visitor = w.visitor.device_id();
    let mut expected = vec![
        (0, visitor, w.visitor.instance(), 2, false),
        (1, visitor, restored.instance(), 1, false),
        (1, w.agent.device_id(), w.agent.instance(), 1, true),
    ];
    expected.sort_by_key(|e| (e.0, e.1, e.2, e.4));
    assert_eq!(seen, expected);
    // The visitor's own chain.
    let own = w.visitor.chain_positions(&w.conversation).await.unwrap();
    assert!(own.contains(&sotto_client::client::ChainPosition {
        epoch: 0,
        sender: visitor,
        instance: w.visitor.instance(),
        next: 2,
        own: true,
    }));
}
