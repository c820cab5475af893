//! Conversations, envelopes and blobs: cursors and acknowledgements, ephemeral kinds that are
//! never stored, WebSocket push, blob limits and access, deletion and retention.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use sotto_core::conversation::epoch::EpochRecord;
use sotto_core::conversation::{MessageKind, ParsedMessage, ReceiverChain};
use sotto_core::device::{Device, DeviceKind};
use sotto_core::team::{Change, Role};
use sotto_core::wire::WireObject;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn envelopes_round_trip_with_cursors_and_acks() {
    let relay = TestRelay::start().await;
    let w = World::new(&relay, "acme").await;
    let conv = w.conversation.hex();
    let mut visitor_chain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    let mut sent = Vec::new();
    for i in 0..5 {
        let m = seal(
            &mut visitor_chain,
            &w.visitor.device,
            MessageKind::Text,
            format!("hello {i}").as_bytes(),
        );
        let r = post_message(&w.visitor, &conv, &m).await.expect(201);
        assert_eq!(r, json!({"stored": true, "cursor": i + 1}));
        sent.push(m);
    }
    // The agent replies.
    let secret = w
        .conversation
        .record
        .secret_for_member(&w.agent_keyring)
        .unwrap();
    assert!(secret.ct_eq(&w.conversation.secret));
    let mut agent_chain = w.conversation.chain(&w.agent.device, MessageKind::Text);
    let reply = seal(&mut agent_chain, &w.agent.device, MessageKind::Text, b"hi");
    post_message(&w.agent, &conv, &reply).await.expect(201);
    sent.push(reply);

    // Everything reads back in order, from any cursor, in pages.
    let all = w
        .agent
        .get(&format!("/v1/conversations/{conv}/envelopes"))
        .await
        .expect(200);
    assert_eq!(all["last_cursor"], 6);
    let envelopes = all["envelopes"].as_array().unwrap();
    assert_eq!(envelopes.len(), 6);
    for (i, e) in envelopes.iter().enumerate() {
        assert_eq!(e["cursor"], i + 1);
        assert_eq!(unb64(e["message"].as_str().unwrap()), sent[i]);
    }
    let page = w
        .visitor
        .get(&format!(
            "/v1/conversations/{conv}/envelopes?after=2&limit=3"
        ))
        .await
        .expect(200);
    let cursors: Vec<i64> = page["envelopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cursor"].as_i64().unwrap())
        .collect();
    assert_eq!(cursors, [3, 4, 5]);

    // The agent really can read what it fetched.
    let mut rx = ReceiverChain::new(
        &secret,
        ParsedMessage::decode(&sent[0]).unwrap().header().chain(),
    );
    let opened = ParsedMessage::decode(&sent[0])
        .unwrap()
        .verify(
            w.visitor.device.record().identity(),
            &common::context(w.conversation.id, 0),
        )
        .unwrap()
        .decrypt(&mut rx)
        .unwrap();
    assert_eq!(opened.content(), b"hello 0");

    // Acknowledgement cursors are per device and only move forward.
    let ack = format!("/v1/conversations/{conv}/ack");
    assert_eq!(w.agent.get(&ack).await.expect(200)["cursor"], 0);
    assert_eq!(
        w.agent.put(&ack, json!({"cursor": 4})).await.expect(200)["cursor"],
        4
    );
    assert_eq!(
        w.agent.put(&ack, json!({"cursor": 2})).await.expect(200)["cursor"],
        4
    );
    assert_eq!(w.agent.get(&ack).await.expect(200)["cursor"], 4);
    assert_eq!(w.visitor.get(&ack).await.expect(200)["cursor"], 0);
    let r = w.agent.put(&ack, json!({"cursor": 99})).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "cursor_out_of_range"));

    // Conversation listings.
    let mine = w.visitor.get("/v1/conversations").await.expect(200);
    assert_eq!(mine["conversations"][0]["conversation_id"], conv);
    assert_eq!(mine["conversations"][0]["last_cursor"], 6);
    let team_list = w
        .agent
        .get(&format!("/v1/conversations?team_id={}", w.team.team_hex()))
        .await
        .expect(200);
    assert_eq!(team_list["conversations"].as_array().unwrap().len(), 1);

    // Refused messages: another sender's message, an unknown epoch, a tampered signature,
    // garbage bytes.
    let r = post_message(&w.agent, &conv, &sent[0]).await;
    assert_eq!(r.status.as_u16(), 403);
    let mut tampered = seal(
        &mut visitor_chain,
        &w.visitor.device,
        MessageKind::Text,
        b"x",
    );
    let n = tampered.len();
    tampered[n - 1] ^= 0x55;
    let r = post_message(&w.visitor, &conv, &tampered).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "verification_failed"));
    let r = post_message(&w.visitor, &conv, b"\x01\x01\x08garbage").await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_wire"));
    let (record1, secret1) = EpochRecord::open(
        &mut rng(),
        &w.visitor.device,
        &w.team.state,
        w.conversation.id,
        1,
        Some((&w.conversation.record, Some(Vec::new()))),
        vec![w.visitor.device.record()],
        now(),
    )
    .unwrap();
    register_epoch(&record1);
    let mut chain1 = sotto_core::conversation::SenderChain::new(
        &secret1,
        sotto_core::conversation::ChainId {
            conversation: w.conversation.id,
            epoch: 1,
            sender: w.visitor.device.id(),
            instance: sotto_core::conversation::Instance([1; 8]),
            stream: sotto_core::conversation::Stream::Durable,
        },
    );
    let early = seal(&mut chain1, &w.visitor.device, MessageKind::Text, b"early");
    let r = post_message(&w.visitor, &conv, &early).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "unknown_epoch"));
    // After the epoch record it is accepted; epoch numbers must be consecutive.
    let epochs = format!("/v1/conversations/{conv}/epochs");
    w.visitor
        .post(&epochs, json!({"record": b64(&record1.to_wire())}))
        .await
        .expect(201);
    let r = w
        .visitor
        .post(&epochs, json!({"record": b64(&record1.to_wire())}))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "epoch_conflict"));
    post_message(&w.visitor, &conv, &early).await.expect(201);
    let listed = w.agent.get(&epochs).await.expect(200);
    assert_eq!(listed["epochs"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn ephemeral_kinds_are_forwarded_but_never_stored() {
    let relay = TestRelay::start().await;
    let w = World::new(&relay, "acme").await;
    let conv = w.conversation.hex();
    let ws = connect_ws(&relay, &w.agent).await;
    let mut ws = ws;

    let mut typing = w.conversation.chain(&w.visitor.device, MessageKind::Typing);
    let m = seal(
        &mut typing,
        &w.visitor.device,
        MessageKind::Typing,
        b"I am typ",
    );
    let r = post_message(&w.visitor, &conv, &m).await.expect(202);
    assert_eq!(r, json!({"stored": false}));
    let receipt = seal(
        &mut typing,
        &w.visitor.device,
        MessageKind::Receipt,
        b"read 1",
    );
    post_message(&w.visitor, &conv, &receipt).await.expect(202);

    let pushed = next_event(&mut ws, "ephemeral").await;
    assert_eq!(pushed["conversation_id"], conv);
    assert_eq!(unb64(pushed["message"].as_str().unwrap()), m);
    next_event(&mut ws, "ephemeral").await;

    assert_eq!(relay.count("envelopes", "").await, 0);
    let listed = w
        .agent
        .get(&format!("/v1/conversations/{conv}/envelopes"))
        .await
        .expect(200);
    assert_eq!(listed["envelopes"].as_array().unwrap().len(), 0);
    assert_eq!(listed["last_cursor"], 0);
}

async fn connect_ws(
    relay: &TestRelay,
    client: &Client,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!(
        "{}/v1/ws?token={}",
        relay.base.replace("http://", "ws://"),
        client.token.as_deref().unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let ready = next_event(&mut ws, "ready").await;
    assert_eq!(ready["device_id"], client.id_hex());
    ws
}

/// The next event of `kind`, skipping others; fails after 5 seconds.
async fn next_event(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    kind: &str,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event"))
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == kind {
                return v;
            }
        }
    }
}

/// No event of `kind` within `wait`.
async fn no_event(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    kind: &str,
    wait: Duration,
) {
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_ne!(v["type"], kind, "unexpected event {v}");
        }
    }
}

#[tokio::test]
async fn websocket_pushes_envelopes_epochs_and_links_to_those_who_may_read() {
    let relay = TestRelay::start().await;
    let mut w = World::new(&relay, "acme").await;
    let other = World::new(&relay, "other tenant").await;
    let conv = w.conversation.hex();
    let mut agent_ws = connect_ws(&relay, &w.agent).await;
    let mut visitor_ws = connect_ws(&relay, &w.visitor).await;
    let mut foreign_ws = connect_ws(&relay, &other.agent).await;
    // A second visitor of the same tenant, in no conversation.
    let mut stranger = relay.client(&w.tenant, DeviceKind::Visitor);
    stranger.join(None).await;
    let mut stranger_ws = connect_ws(&relay, &stranger).await;

    // Visitor writes: the agent gets it with its cursor; the sender does not get an echo.
    let mut chain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    let m = seal(
        &mut chain,
        &w.visitor.device,
        MessageKind::Text,
        b"anyone there?",
    );
    post_message(&w.visitor, &conv, &m).await.expect(201);
    let e = next_event(&mut agent_ws, "envelope").await;
    assert_eq!(e["cursor"], 1);
    assert_eq!(e["conversation_id"], conv);
    assert_eq!(unb64(e["message"].as_str().unwrap()), m);

    // Agent replies: the visitor gets it.
    let mut achain = w.conversation.chain(&w.agent.device, MessageKind::Text);
    let reply = seal(&mut achain, &w.agent.device, MessageKind::Text, b"yes");
    post_message(&w.agent, &conv, &reply).await.expect(201);
    let e = next_event(&mut visitor_ws, "envelope").await;
    assert_eq!(e["cursor"], 2);
    assert_eq!(unb64(e["message"].as_str().unwrap()), reply);

    // A new link reaches the team's devices and the tenant's visitors.
    let link = w.team.owner_does(Change::RotateKey).await;
    for ws in [&mut agent_ws, &mut visitor_ws, &mut stranger_ws] {
        let e = next_event(ws, "link").await;
        assert_eq!(e["seq"], 2);
        assert_eq!(unb64(e["link"].as_str().unwrap()), link.to_wire());
    }

    // An epoch record opened by the agent reaches the visitor.
    let (record, _) = EpochRecord::open(
        &mut rng(),
        &w.agent.device,
        &w.team.state,
        w.conversation.id,
        1,
        Some((&w.conversation.record, Some(Vec::new()))),
        vec![w.visitor.device.record()],
        now(),
    )
    .unwrap();
    w.agent
        .post(
            &format!("/v1/conversations/{conv}/epochs"),
            json!({"record": b64(&record.to_wire())}),
        )
        .await
        .expect(201);
    let e = next_event(&mut visitor_ws, "epoch").await;
    assert_eq!(e["epoch"], 1);

    // Neither the other tenant's agent nor an unrelated visitor saw any of it.
    no_event(&mut foreign_ws, "envelope", Duration::from_millis(300)).await;
    no_event(&mut foreign_ws, "link", Duration::from_millis(10)).await;
    no_event(&mut stranger_ws, "envelope", Duration::from_millis(100)).await;
    no_event(&mut stranger_ws, "epoch", Duration::from_millis(10)).await;

    // A viewer (reads, does not send) gets pushes but cannot post durable messages.
    let (mut viewer, _) = w.team.add_member(&relay, &w.tenant, Role::Viewer).await;
    viewer.login().await;
    let mut viewer_chain = w.conversation.chain(&viewer.device, MessageKind::Text);
    let m = seal(&mut viewer_chain, &viewer.device, MessageKind::Text, b"no");
    assert_eq!(post_message(&viewer, &conv, &m).await.status.as_u16(), 403);

    let metrics = metrics(&relay.base).await;
    assert!(
        metrics.contains("sotto_relay_websocket_connections 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sotto_relay_envelopes_stored_total 2"),
        "{metrics}"
    );
    drop(other);
}

#[tokio::test]
async fn blobs_have_a_size_cap_and_are_scoped() {
    let relay = TestRelay::start_with(|a| a.max_blob_bytes = 64 * 1024).await;
    let w = World::new(&relay, "acme").await;
    let conv = w.conversation.hex();

    let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let up = w
        .visitor
        .post(
            "/v1/blobs",
            json!({"kind": "attachment", "conversation_id": conv, "data": b64(&data)}),
        )
        .await
        .expect(201);
    let id = up["blob_id"].as_str().unwrap().to_owned();
    assert_eq!(up["size"], 64 * 1024);
    let got = w.agent.get(&format!("/v1/blobs/{id}")).await.expect(200);
    assert_eq!(unb64(got["data"].as_str().unwrap()), data);
    assert_eq!(got["kind"], "attachment");
    assert_eq!(relay.count("audit_log", "event = 'blob_fetched'").await, 1);

    // One byte over the cap, and a body far over it.
    let mut big = data.clone();
    big.push(0);
    let r = w
        .visitor
        .post(
            "/v1/blobs",
            json!({"kind": "attachment", "conversation_id": conv, "data": b64(&big)}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (413, "payload_too_large"));
    let huge = vec![7u8; 1024 * 1024];
    let r = w
        .visitor
        .post(
            "/v1/blobs",
            json!({"kind": "attachment", "conversation_id": conv, "data": b64(&huge)}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (413, "payload_too_large"));

    // A backup is the owner's and its named readers'.
    let mut recovery = relay.client(&w.tenant, DeviceKind::Recovery);
    recovery.join(None).await;
    let backup = w
        .agent
        .post(
            "/v1/blobs",
            json!({"kind": "backup", "readers": [recovery.id_hex()], "data": b64(b"sealed backup")}),
        )
        .await
        .expect(201);
    let bid = backup["blob_id"].as_str().unwrap();
    assert_eq!(
        recovery.get(&format!("/v1/blobs/{bid}")).await.expect(200)["kind"],
        "backup"
    );
    assert_eq!(
        w.visitor
            .get(&format!("/v1/blobs/{bid}"))
            .await
            .status
            .as_u16(),
        403
    );
    assert_eq!(
        recovery
            .delete(&format!("/v1/blobs/{bid}"))
            .await
            .status
            .as_u16(),
        403
    );
    w.agent
        .delete(&format!("/v1/blobs/{bid}"))
        .await
        .expect(204);
    assert_eq!(
        w.agent
            .get(&format!("/v1/blobs/{bid}"))
            .await
            .status
            .as_u16(),
        404
    );

    // An attachment is not readable by a visitor of another conversation.
    assert_eq!(
        recovery
            .get(&format!("/v1/blobs/{id}"))
            .await
            .status
            .as_u16(),
        403
    );
}

#[tokio::test]
async fn deleting_a_conversation_removes_its_rows() {
    let relay = TestRelay::start().await;
    let w = World::new(&relay, "acme").await;
    let conv = w.conversation.hex();
    let mut chain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    for _ in 0..3 {
        let m = seal(&mut chain, &w.visitor.device, MessageKind::Text, b"bye");
        post_message(&w.visitor, &conv, &m).await.expect(201);
    }
    w.visitor
        .put(
            &format!("/v1/conversations/{conv}/ack"),
            json!({"cursor": 3}),
        )
        .await
        .expect(200);
    w.visitor
        .post(
            "/v1/blobs",
            json!({"kind": "attachment", "conversation_id": conv, "data": b64(b"file")}),
        )
        .await
        .expect(201);

    // An agent may not delete it; the visitor (or an owner or admin) may.
    assert_eq!(
        w.agent
            .delete_conversation(&w.team.state, &conv)
            .await
            .status
            .as_u16(),
        403
    );
    w.visitor
        .delete_conversation(&w.team.state, &conv)
        .await
        .expect(204);
    for table in [
        "conversations",
        "envelopes",
        "epochs",
        "acks",
        "blobs",
        "conversation_visitors",
    ] {
        assert_eq!(relay.count(table, "").await, 0, "{table}");
    }
    // A tombstone keeps the signed deletion: reads answer 410, and the conversation's readers
    // (not another visitor) fetch the deletion to verify it.
    for path in ["", "/epochs", "/envelopes"] {
        let r = w
            .agent
            .get(&format!("/v1/conversations/{conv}{path}"))
            .await;
        assert_eq!((r.status.as_u16(), r.code()), (410, "conversation_deleted"));
    }
    assert_eq!(relay.count("conversation_deletions", "").await, 1);
    for reader in [&w.agent, &w.visitor, &w.team.owner] {
        let stored = reader
            .get(&format!("/v1/conversations/{conv}/deletion"))
            .await
            .expect(200);
        let deletion = sotto_core::conversation::ConversationDeletion::from_wire(&unb64(
            stored["deletion"].as_str().unwrap(),
        ))
        .unwrap();
        assert_eq!(deletion.author, w.visitor.device.id());
        assert_eq!(
            deletion.verify(
                &w.team.state,
                &w.conversation.id,
                &[w.visitor.device.record()]
            ),
            Ok(sotto_core::conversation::DeletionAuthority::Visitor)
        );
    }
    let mut stranger = Client::new(
        &relay.base,
        &w.tenant,
        Device::generate(DeviceKind::Visitor, &mut rng(), now()),
    );
    stranger.join(None).await;
    let r = stranger
        .get(&format!("/v1/conversations/{conv}/deletion"))
        .await;
    assert_eq!(r.status.as_u16(), 404);
    // Its id cannot be taken again.
    let r = w
        .visitor
        .post(
            "/v1/conversations",
            json!({"record": b64(&w.conversation.record.to_wire())}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "conversation_exists"));
    assert_eq!(
        relay
            .count("audit_log", "event = 'conversation_deleted'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_deletion_must_be_the_callers_for_this_conversation() {
    let relay = TestRelay::start().await;
    let w = World::new(&relay, "acme").await;
    let conv = w.conversation.hex();
    let path = format!("/v1/conversations/{conv}");
    let sign = |device: &Device, conversation: [u8; 16]| {
        let d = sotto_core::conversation::ConversationDeletion::sign(
            device,
            w.team.state.team(),
            sotto_core::conversation::ConversationId(conversation),
            now(),
        );
        json!({"deletion": b64(&d.to_wire())})
    };
    // The owner uploading the visitor's deletion, the visitor one for another conversation,
    // garbage, a missing body.
    let r = w
        .team
        .owner
        .call(
            Method::DELETE,
            &path,
            Some(sign(&w.visitor.device, w.conversation.id.0)),
        )
        .await;
    assert_eq!(r.status.as_u16(), 403);
    let r = w
        .visitor
        .call(
            Method::DELETE,
            &path,
            Some(sign(&w.visitor.device, [7; 16])),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "verification_failed"));
    let r = w
        .visitor
        .call(
            Method::DELETE,
            &path,
            Some(json!({"deletion": b64(b"junk")})),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_wire"));
    assert_eq!(w.visitor.delete(&path).await.status.as_u16(), 400);
    assert_eq!(relay.count("conversations", "").await, 1);
    assert_eq!(relay.count("conversation_deletions", "").await, 0);
    // Nothing to fetch for a conversation that is not deleted.
    let r = w.agent.get(&format!("{path}/deletion")).await;
    assert_eq!(r.status.as_u16(), 404);
    // The owner's own deletion is accepted.
    let r = w
        .team
        .owner
        .call(
            Method::DELETE,
            &path,
            Some(sign(&w.team.owner.device, w.conversation.id.0)),
        )
        .await;
    assert_eq!(r.status.as_u16(), 204);
}

#[tokio::test]
async fn retention_sweep_deletes_old_envelopes_and_blobs() {
    let relay = TestRelay::start_with(|a| {
        a.envelope_retention_secs = 3600;
        a.blob_retention_secs = 3600;
    })
    .await;
    let w = World::new(&relay, "acme").await;
    let conv = w.conversation.hex();
    let mut chain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    for _ in 0..3 {
        let m = seal(&mut chain, &w.visitor.device, MessageKind::Text, b"old");
        post_message(&w.visitor, &conv, &m).await.expect(201);
    }
    w.visitor
        .post(
            "/v1/blobs",
            json!({"kind": "attachment", "conversation_id": conv, "data": b64(b"file")}),
        )
        .await
        .expect(201);
    let state = relay.relay().state().clone();
    let now = sotto_relay::db::now();
    let report = sotto_relay::sweep::sweep_once(&state, now + 60)
        .await
        .unwrap();
    assert_eq!((report.envelopes, report.blobs), (0, 0));
    let report = sotto_relay::sweep::sweep_once(&state, now + 3601)
        .await
        .unwrap();
    assert_eq!((report.envelopes, report.blobs), (3, 1));
    assert_eq!(relay.count("envelopes", "").await, 0);
    // The sweep at that time also dropped the (by then expired) tokens.
    let mut visitor = w.visitor;
    assert_eq!(visitor.get("/v1/devices/me").await.status.as_u16(), 401);
    visitor.login().await;
    // The conversation and its cursor stay: new envelopes continue after the old ones.
    let m = seal(&mut chain, &visitor.device, MessageKind::Text, b"new");
    assert_eq!(
        post_message(&visitor, &conv, &m).await.expect(201)["cursor"],
        4
    );
}

#[tokio::test]
async fn published_events_rebuild_from_their_references() {
    // What a second relay node does with a NOTIFY: rebuild the event from the shared database.
    let relay = TestRelay::start().await;
    let mut w = World::new(&relay, "acme").await;
    let conv = w.conversation.hex();
    let state = relay.relay().state().clone();
    let mut rx = state.fanout.subscribe();

    let mut chain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    let m = seal(&mut chain, &w.visitor.device, MessageKind::Text, b"stored");
    post_message(&w.visitor, &conv, &m).await.expect(201);
    let mut typing = w.conversation.chain(&w.visitor.device, MessageKind::Typing);
    let t = seal(
        &mut typing,
        &w.visitor.device,
        MessageKind::Typing,
        b"typing",
    );
    post_message(&w.visitor, &conv, &t).await.expect(202);
    let (record, _) = EpochRecord::open(
        &mut rng(),
        &w.agent.device,
        &w.team.state,
        w.conversation.id,
        1,
        Some((&w.conversation.record, Some(Vec::new()))),
        vec![w.visitor.device.record()],
        now(),
    )
    .unwrap();
    w.agent
        .post(
            &format!("/v1/conversations/{conv}/epochs"),
            json!({"record": b64(&record.to_wire())}),
        )
        .await
        .expect(201);
    w.team.owner_does(Change::RotateKey).await;

    let mut kinds = Vec::new();
    while let Ok(e) = rx.try_recv() {
        let rebuilt = sotto_relay::events::rebuild(&state, &e.source)
            .await
            .unwrap()
            .expect("the event's data is there");
        assert_eq!(rebuilt.frame, e.frame);
        assert_eq!(rebuilt.audience, e.audience);
        assert_eq!(rebuilt.tenant_id, e.tenant_id);
        kinds.push(serde_json::from_str::<Value>(&e.frame).unwrap()["type"].clone());
    }
    assert_eq!(kinds, ["envelope", "ephemeral", "epoch", "link"]);

    w.visitor
        .delete_conversation(&w.team.state, &conv)
        .await
        .expect(204);
    let e = rx.try_recv().unwrap();
    let rebuilt = sotto_relay::events::rebuild(&state, &e.source)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (rebuilt.frame, rebuilt.audience),
        (e.frame.clone(), e.audience.clone())
    );
    // The deleted conversation's envelope is gone: nothing to rebuild.
    let gone = sotto_relay::fanout::EventRef::Envelope {
        conversation_ref: 1,
        cursor: 1,
    };
    assert!(
        sotto_relay::events::rebuild(&state, &gone)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_envelopes_share_commits_with_distinct_gap_free_cursors() {
    // Many envelopes at once, in two conversations, so the relay groups them into shared
    // commits: every post gets its own cursor, each conversation's cursors are 1..=n without a
    // gap, and each cursor holds the message that was acknowledged with it.
    let relay = TestRelay::start().await;
    let w = World::new(&relay, "acme").await;
    let mut visitor2 = relay.client(&w.tenant, DeviceKind::Visitor);
    visitor2.join(None).await;
    let second = open_conversation(&visitor2, &w.team.state).await;
    const EACH: usize = 60;
    let mut posts = Vec::new();
    for (client, conversation) in [(&w.visitor, &w.conversation), (&visitor2, &second)] {
        let mut chain = conversation.chain(&client.device, MessageKind::Text);
        for i in 0..EACH {
            let m = seal(
                &mut chain,
                &client.device,
                MessageKind::Text,
                format!("concurrent {i}").as_bytes(),
            );
            let (http, url, token) = (
                client.http.clone(),
                format!(
                    "{}/v1/conversations/{}/envelopes",
                    client.base,
                    conversation.hex()
                ),
                client.token.clone(),
            );
            let conv = conversation.hex();
            posts.push(tokio::spawn(async move {
                let r = send(
                    &http,
                    reqwest::Method::POST,
                    &url,
                    token.as_deref(),
                    Some(json!({"message": b64(&m)})),
                )
                .await
                .expect(201);
                (conv, r["cursor"].as_i64().unwrap(), m)
            }));
        }
    }
    let mut acked: std::collections::BTreeMap<(String, i64), Vec<u8>> = Default::default();
    for p in posts {
        let (conv, cursor, m) = p.await.unwrap();
        assert!(
            acked.insert((conv, cursor), m).is_none(),
            "cursor given twice"
        );
    }
    for (client, conversation) in [(&w.visitor, &w.conversation), (&visitor2, &second)] {
        let conv = conversation.hex();
        let page = client
            .get(&format!("/v1/conversations/{conv}/envelopes?limit=1000"))
            .await
            .expect(200);
        let stored = page["envelopes"].as_array().unwrap();
        assert_eq!(stored.len(), EACH);
        assert_eq!(page["last_cursor"], EACH as i64);
        for (i, e) in stored.iter().enumerate() {
            let cursor = e["cursor"].as_i64().unwrap();
            assert_eq!(cursor, i as i64 + 1, "gap-free");
            assert_eq!(
                acked.get(&(conv.clone(), cursor)).unwrap(),
                &unb64(e["message"].as_str().unwrap())
            );
        }
    }
    // A conversation deleted meanwhile: the next envelope is refused, not stored.
    let mut chain = second.chain(&visitor2.device, MessageKind::Text);
    let late = seal(&mut chain, &visitor2.device, MessageKind::Text, b"late");
    visitor2
        .delete_conversation(&w.team.state, &second.hex())
        .await
        .expect(204);
    assert_eq!(
        post_message(&visitor2, &second.hex(), &late)
            .await
            .status
            .as_u16(),
        410
    );
}
