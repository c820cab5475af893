//! Only authorised, signed deletions delete (PROTOCOL §7.13). A relay (its operator, with full
//! control of the database) that answers `404` for a conversation, drops its rows or pushes a
//! bare `conversation_deleted` frame erases nobody's history: every client warns
//! (`Warning::UnverifiedDeletion`) and keeps the conversation. Forged deletions are refused;
//! honest ones (the visitor's, a manager's) erase it everywhere.

mod harness;

use std::collections::BTreeSet;
use std::sync::Arc;

use harness::{TestClient, World, history_texts, wait_for};
use sotto_client::client::Event;
use sotto_relay::fanout::{Audience, Event as RelayEvent, EventRef};
use sqlx::Row;

/// What the operator of the relay does with its database: drops the conversation's rows.
async fn operator_drops_the_conversation(w: &World) {
    sqlx::query("DELETE FROM conversations WHERE conversation_id = $1")
        .bind(w.conversation.0.to_vec())
        .execute(w.relay.relay.as_ref().unwrap().state().db.pool())
        .await
        .unwrap();
}

/// A relay pushing a bare `conversation_deleted` frame to `to`.
async fn relay_pushes_deleted(w: &World, to: &[&TestClient]) {
    let state = w.relay.relay.as_ref().unwrap().state();
    let row = sqlx::query("SELECT id FROM tenants")
        .fetch_one(state.db.pool())
        .await
        .unwrap();
    let tenant_id: i64 = row.try_get("id").unwrap();
    let frame = serde_json::json!({
        "type": "conversation_deleted",
        "conversation_id": hex::encode(w.conversation.0),
    });
    state.fanout.publish(RelayEvent {
        tenant_id,
        audience: Audience {
            devices: to.iter().map(|c| c.device_id()).collect::<BTreeSet<_>>(),
            tenant_visitors: false,
            except: None,
        },
        frame: Arc::from(frame.to_string()),
        source: EventRef::ConversationDeleted {
            conversation_id: w.conversation.0,
            team_ref: 1,
            visitors: vec![w.visitor.device_id()],
            by: w.owner.device_id(),
        },
    });
}

#[tokio::test]
async fn a_relay_dropping_the_rows_erases_no_history() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "hi").await.unwrap();
    w.agent.sync().await.unwrap();
    assert_eq!(history_texts(&w.agent, &w.conversation).await, ["hi"]);

    operator_drops_the_conversation(&w).await;
    let _ = w.agent.sync().await;
    let _ = w.visitor.sync().await;
    assert_eq!(history_texts(&w.agent, &w.conversation).await, ["hi"]);
    assert_eq!(history_texts(&w.visitor, &w.conversation).await, ["hi"]);
    assert_eq!(w.agent.conversations().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_bare_push_frame_erases_no_history() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "hi").await.unwrap();
    w.agent.sync().await.unwrap();
    let mut events = w.agent.events();
    let agent = w.agent.clone();
    let run = tokio::spawn(async move { agent.run().await });
    wait_for(&mut events, |e| matches!(e, Event::Connected).then_some(())).await;

    relay_pushes_deleted(&w, &[&w.agent]).await;
    // The frame is processed before the next message the relay pushes.
    w.visitor.send_text(&w.conversation, "still here").await.unwrap();
    wait_for(&mut events, |e| match e {
        Event::Message { .. } | Event::ConversationDeleted { .. } => Some(()),
        _ => None,
    })
    .await;
    run.abort();
    assert_eq!(
        history_texts(&w.agent, &w.conversation).await,
        ["hi", "still here"]
    );
}
