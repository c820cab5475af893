//! Two relay processes on one PostgreSQL database push to each other's WebSocket clients through
//! `LISTEN`/`NOTIFY`: envelopes, ephemeral messages and chain links posted through one node
//! reach devices connected to the other, a member added through one node is served at once by
//! the other, and another tenant's devices receive nothing.
//!
//! This test always runs on PostgreSQL (see `common::postgres_admin_url`).

mod common;

use std::time::Duration;

use common::process::{Process, create_tenant};
use common::*;
use futures_util::StreamExt;
use serde_json::Value;
use sotto_core::conversation::MessageKind;
use sotto_core::team::Role;
use sotto_core::wire::WireObject;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the push socket of `client` on `node` and waits for `ready`.
async fn connect(node: &Process, client: &Client) -> Socket {
    let url = format!(
        "{}/v1/ws?token={}",
        node.ws_base(),
        client.token.as_deref().unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let ready = next_event(&mut ws).await;
    assert_eq!(ready["type"], "ready");
    ws
}

/// The next JSON frame (pings skipped), within 10 seconds.
async fn next_event(ws: &mut Socket) -> Value {
    let frame = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return serde_json::from_str::<Value>(&t).unwrap(),
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), frame)
        .await
        .expect("an event arrives")
}

/// Skips events until an ephemeral message with these bytes (a sentinel posted after the
/// events to skip, through the node whose notifications they are, which arrive in order).
async fn drain_until(ws: &mut Socket, sentinel: &[u8]) {
    loop {
        let e = next_event(ws).await;
        if e["type"] == "ephemeral" && unb64(e["message"].as_str().unwrap()) == sentinel {
            return;
        }
    }
}

/// Within half a second, no event naming any of `ids` (conversation or team ids) arrives.
async fn assert_hears_nothing_of(ws: &mut Socket, ids: &[&str]) {
    let frames = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let e: Value = serde_json::from_str(&t).unwrap();
                    for id in ids {
                        assert_ne!(e["conversation_id"], *id, "{t}");
                        assert_ne!(e["team_id"], *id, "{t}");
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), frames).await;
}

/// Prints both relays' logs if the test fails.
struct LogsOnFailure<'a>(&'a Process, &'a Process);

impl Drop for LogsOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("relay A:\n{}\nrelay B:\n{}", self.0.log(), self.1.log());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_relays_on_postgres_push_to_each_others_clients() {
    let admin = postgres_admin_url();
    let url = fresh_postgres_database(&admin).await;
    let tenant = create_tenant(&url);
    let other_tenant = create_tenant(&url);
    let log = "warn,sotto_relay::server=info,sotto_relay::pg_fanout=debug";
    let a = Process::start(&url, log);
    let b = Process::start(&url, log);
    assert_ne!(a.base, b.base);
    let _logs = LogsOnFailure(&a, &b);

    // Everything is set up through B; devices listen on A (and the visitor on B too).
    let mut w = World::with_tenant(&b, tenant.clone()).await;
    let conv = w.conversation.hex();
    let mut agent_on_a = connect(&a, &w.agent).await;
    let mut visitor_on_a = connect(&a, &w.visitor).await;
    let mut visitor_on_b = connect(&b, &w.visitor).await;
    let outsider = World::with_tenant(&a, other_tenant).await;
    let mut outsider_on_a = connect(&a, &outsider.agent).await;
    let mut outsider_on_b = connect(&b, &outsider.agent).await;
    // Notifications of the set-up may still be on their way to A: a sentinel posted through B
    // after them arrives after them.
    let mut vtyping = w.conversation.chain(&w.visitor.device, MessageKind::Typing);
    let mut atyping = w.conversation.chain(&w.agent.device, MessageKind::Typing);
    let from_visitor = seal(&mut vtyping, &w.visitor.device, MessageKind::Typing, b"");
    post_message(&w.visitor, &conv, &from_visitor)
        .await
        .expect(202);
    drain_until(&mut agent_on_a, &from_visitor).await;
    let from_agent = seal(&mut atyping, &w.agent.device, MessageKind::Typing, b"");
    post_message(&w.agent, &conv, &from_agent).await.expect(202);
    drain_until(&mut visitor_on_a, &from_agent).await;
    drain_until(&mut visitor_on_b, &from_agent).await;

    // An envelope posted through B reaches the agent on A, with B's cursor.
    let mut vchain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    let m1 = seal(&mut vchain, &w.visitor.device, MessageKind::Text, b"hello");
    let posted = post_message(&w.visitor, &conv, &m1).await.expect(201);
    let e = next_event(&mut agent_on_a).await;
    assert_eq!(e["type"], "envelope");
    assert_eq!(e["conversation_id"], conv.as_str());
    assert_eq!(e["cursor"], posted["cursor"]);
    assert_eq!(unb64(e["message"].as_str().unwrap()), m1);

    // An ephemeral message (never stored) travels inline.
    let t = seal(&mut vtyping, &w.visitor.device, MessageKind::Typing, b"");
    post_message(&w.visitor, &conv, &t).await.expect(202);
    let e = next_event(&mut agent_on_a).await;
    assert_eq!(e["type"], "ephemeral");
    assert_eq!(unb64(e["message"].as_str().unwrap()), t);

    // The other way: the agent posts through A, the visitor hears it on B (and on A), the
    // sender is not echoed.
    let agent_on_a_client = Client {
        http: http_client(),
        base: a.base.clone(),
        widget_id: w.agent.widget_id.clone(),
        device: w.agent.device.clone(),
        token: w.agent.token.clone(),
    };
    let mut achain = w.conversation.chain(&w.agent.device, MessageKind::Text);
    let m2 = seal(&mut achain, &w.agent.device, MessageKind::Text, b"hi there");
    let posted = post_message(&agent_on_a_client, &conv, &m2)
        .await
        .expect(201);
    assert_eq!(posted["cursor"], 2);
    for ws in [&mut visitor_on_b, &mut visitor_on_a] {
        let e = next_event(ws).await;
        assert_eq!(e["type"], "envelope");
        assert_eq!(e["cursor"], 2);
        assert_eq!(unb64(e["message"].as_str().unwrap()), m2);
    }

    // A chain link appended through B reaches the team's devices and the tenant's visitors on A
    // and B.
    let (mut newcomer, _) = w.team.add_member(&b, &tenant, Role::Agent).await;
    let link = w.team.links.last().unwrap().to_wire();
    let seq = (w.team.links.len() - 1) as u64;
    for ws in [&mut agent_on_a, &mut visitor_on_a, &mut visitor_on_b] {
        let e = next_event(ws).await;
        assert_eq!(e["type"], "link");
        assert_eq!(e["team_id"], w.team.team_hex().as_str());
        assert_eq!(e["seq"], seq);
        assert_eq!(unb64(e["link"].as_str().unwrap()), link);
    }

    // A refreshed its chain from the notification: the member added through B reads through A
    // and receives pushes there.
    newcomer.base = a.base.clone();
    newcomer
        .get(&format!("/v1/conversations/{conv}/envelopes"))
        .await
        .expect(200);
    let mut newcomer_on_a = connect(&a, &newcomer).await;
    let m3 = seal(
        &mut vchain,
        &w.visitor.device,
        MessageKind::Text,
        b"anyone?",
    );
    post_message(&w.visitor, &conv, &m3).await.expect(201);
    for ws in [&mut newcomer_on_a, &mut agent_on_a] {
        let e = next_event(ws).await;
        assert_eq!(e["type"], "envelope");
        assert_eq!(e["cursor"], 3);
        assert_eq!(unb64(e["message"].as_str().unwrap()), m3);
    }

    // Another tenant's devices heard nothing of this tenant on either node.
    let team = w.team.team_hex();
    for ws in [&mut outsider_on_a, &mut outsider_on_b] {
        assert_hears_nothing_of(ws, &[&conv, &team]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_loses_its_notifications_tells_its_clients_to_resynchronize() {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    let url = fresh_postgres_database(&admin).await;
    let tenant = create_tenant(&url);
    let log = "warn,sotto_relay::server=info,sotto_relay::pg_fanout=debug";
    let a = Process::start(&url, log);
    let b = Process::start(&url, log);
    let _logs = LogsOnFailure(&a, &b);
    let w = World::with_tenant(&b, tenant).await;
    let conv = w.conversation.hex();
    let mut agent_on_a = connect(&a, &w.agent).await;

    // Both nodes' listening connections are cut, as a network fault or a database failover
    // would; whatever was notified until they listen again never reaches them.
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let cut = sqlx::query(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = '{}' AND datname = current_database()",
        sotto_relay::pg_fanout::LISTENER_APPLICATION_NAME
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert_eq!(cut.len(), 2, "one listener per node");

    // A listens again and tells its client to catch up over HTTP (events of the set-up may
    // come first).
    loop {
        let e = next_event(&mut agent_on_a).await;
        if e["type"] == "lagged" {
            break;
        }
        assert_ne!(e["type"], "ready", "{e}");
    }
    // And notifications flow again: an envelope posted through B reaches the agent on A.
    let mut vchain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    let m = seal(
        &mut vchain,
        &w.visitor.device,
        MessageKind::Text,
        b"still there?",
    );
    let posted = post_message(&w.visitor, &conv, &m).await.expect(201);
    loop {
        let e = next_event(&mut agent_on_a).await;
        if e["type"] == "envelope" && unb64(e["message"].as_str().unwrap()) == m {
            assert_eq!(e["cursor"], posted["cursor"]);
            break;
        }
    }
}
