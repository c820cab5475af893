//! Only authorised, signed deletions delete (PROTOCOL §7.13). A relay (its operator, with full
//! control of the database) that answers `404` for a conversation, drops its rows or pushes a
//! bare `conversation_deleted` frame erases nobody's history: every client warns
//! (`Warning::UnverifiedDeletion`) and keeps the conversation. Forged deletions are refused;
//! honest ones (the visitor's, a manager's) erase it everywhere.

mod harness;

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::StreamExt;
use harness::{TestClient, World, history_texts, wait_for};
use sotto_client::client::{Event, EventStream, Warning};
use sotto_core::conversation::{ConversationDeletion, ConversationId};
use sotto_core::device::DeviceKind;
use sotto_core::team::{Role, TeamId};
use sotto_core::wire::WireObject;
use sotto_relay::fanout::{Audience, Event as RelayEvent, EventRef};
use sqlx::Row;

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

/// The codes of the `UnverifiedDeletion` warnings on a stream (and no other warning).
fn unverified_deletions(events: &mut EventStream, w: &World) -> Vec<&'static str> {
    warnings(events)
        .into_iter()
        .map(|warning| match warning {
            Warning::UnverifiedDeletion { conversation, code } => {
                assert_eq!(conversation, w.conversation);
                code
            }
            other => panic!("unexpected warning {other:?}"),
        })
        .collect()
}

/// A relay that stores `deletion` as the conversation's tombstone (as if its author had
/// deleted it) and drops the conversation's rows.
async fn relay_stores_deletion(w: &World, deletion: &ConversationDeletion) {
    let pool = w.relay.relay.as_ref().unwrap().state().db.pool();
    let row =
        sqlx::query("SELECT tenant_id, team_ref FROM conversations WHERE conversation_id = $1")
            .bind(w.conversation.0.to_vec())
            .fetch_one(pool)
            .await
            .unwrap();
    let (tenant, team): (i64, i64) = (
        row.try_get("tenant_id").unwrap(),
        row.try_get("team_ref").unwrap(),
    );
    sqlx::query(
        "INSERT INTO conversation_deletions \
         (tenant_id, conversation_id, team_ref, visitors, deletion, deleted_at) \
         VALUES ($1, $2, $3, $4, $5, 0)",
    )
    .bind(tenant)
    .bind(w.conversation.0.to_vec())
    .bind(team)
    .bind(w.visitor.device_id().0.to_vec())
    .bind(deletion.to_wire())
    .execute(pool)
    .await
    .unwrap();
    operator_drops_the_conversation(w).await;
}

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

    // A second conversation goes on syncing.
    let (visitor2, _, _) = w.relay.register(DeviceKind::Visitor, false).await;
    let other = visitor2.open_conversation(w.team).await.unwrap();
    let mut agent_events = w.agent.events();
    let mut visitor_events = w.visitor.events();

    operator_drops_the_conversation(&w).await;
    visitor2.send_text(&other, "second").await.unwrap();
    w.agent.sync().await.unwrap();
    w.visitor.sync().await.unwrap();
    assert_eq!(history_texts(&w.agent, &w.conversation).await, ["hi"]);
    assert_eq!(history_texts(&w.visitor, &w.conversation).await, ["hi"]);
    assert_eq!(history_texts(&w.agent, &other).await, ["second"]);
    assert_eq!(w.agent.conversations().await.unwrap().len(), 2);
    assert_eq!(
        unverified_deletions(&mut agent_events, &w),
        ["relay_not_found"]
    );
    assert_eq!(
        unverified_deletions(&mut visitor_events, &w),
        ["relay_not_found"]
    );
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
    w.visitor
        .send_text(&w.conversation, "still here")
        .await
        .unwrap();
    let mut warned = Vec::new();
    wait_for(&mut events, |e| match e {
        Event::Message { .. } | Event::ConversationDeleted { .. } => Some(()),
        Event::Warning(w) => {
            warned.push(w.clone());
            None
        }
        _ => None,
    })
    .await;
    run.abort();
    assert_eq!(
        history_texts(&w.agent, &w.conversation).await,
        ["hi", "still here"]
    );
    assert_eq!(
        warned,
        [Warning::UnverifiedDeletion {
            conversation: w.conversation,
            code: "relay_not_found"
        }]
    );
}

#[tokio::test]
async fn forged_deletions_are_refused_and_history_stays() {
    let w = World::new().await;
    w.visitor.send_text(&w.conversation, "hi").await.unwrap();
    // A viewer, the agent (no permission), an admin removed later, a visitor of another
    // conversation, an owner of another team.
    let (viewer, _, _) = w.relay.register(DeviceKind::Member, false).await;
    w.owner
        .invite_member(&w.team.team, &viewer.device_id(), Role::Viewer)
        .await
        .unwrap();
    let (admin, _, _) = w.relay.register(DeviceKind::Member, false).await;
    let admin_member = w
        .owner
        .invite_member(&w.team.team, &admin.device_id(), Role::Admin)
        .await
        .unwrap();
    admin.join_team(w.team).await.unwrap();
    let (visitor2, _, _) = w.relay.register(DeviceKind::Visitor, false).await;
    visitor2.open_conversation(w.team).await.unwrap();
    w.owner
        .remove_member(&w.team.team, &admin_member)
        .await
        .unwrap();
    w.agent.sync().await.unwrap();
    w.visitor.sync().await.unwrap();

    w.owner.sync().await.unwrap();
    for client in [&w.agent, &w.visitor, &w.owner] {
        assert_eq!(history_texts(client, &w.conversation).await, ["hi"]);
    }

    let team = w.team.team;
    let forged: Vec<(ConversationDeletion, &str)> = vec![
        (
            viewer.sign_conversation_deletion(team, w.conversation),
            "deletion_not_permitted",
        ),
        (
            w.agent.sign_conversation_deletion(team, w.conversation),
            "deletion_not_permitted",
        ),
        (
            admin.sign_conversation_deletion(team, w.conversation),
            "deletion_not_permitted",
        ),
        (
            visitor2.sign_conversation_deletion(team, w.conversation),
            "deletion_not_permitted",
        ),
        (
            w.owner
                .sign_conversation_deletion(TeamId([9; 16]), w.conversation),
            "deletion_wrong_team",
        ),
        (
            w.owner
                .sign_conversation_deletion(team, ConversationId([7; 16])),
            "deletion_wrong_conversation",
        ),
        (
            {
                let mut d = w.owner.sign_conversation_deletion(team, w.conversation);
                d.created_at += 1;
                d
            },
            "bad_signature",
        ),
    ];
    let mut agent_events = w.agent.events();
    let mut visitor_events = w.visitor.events();
    let mut owner_events = w.owner.events();
    for (i, (deletion, code)) in forged.iter().enumerate() {
        if i == 0 {
            relay_stores_deletion(&w, deletion).await;
        } else {
            sqlx::query("UPDATE conversation_deletions SET deletion = $1")
                .bind(deletion.to_wire())
                .execute(w.relay.relay.as_ref().unwrap().state().db.pool())
                .await
                .unwrap();
        }
        for (client, events) in [
            (&w.agent, &mut agent_events),
            (&w.visitor, &mut visitor_events),
            (&w.owner, &mut owner_events),
        ] {
            client.sync().await.unwrap();
            assert_eq!(
                history_texts(client, &w.conversation).await,
                ["hi"],
                "{code}"
            );
            assert_eq!(unverified_deletions(events, &w), [*code]);
        }
    }
}

#[tokio::test]
async fn honest_deletions_by_the_visitor_and_a_manager_erase_everywhere_without_warning() {
    for by_manager in [false, true] {
        let w = World::new().await;
        w.visitor.send_text(&w.conversation, "hi").await.unwrap();
        let (admin, _, _) = w.relay.register(DeviceKind::Member, false).await;
        w.owner
            .invite_member(&w.team.team, &admin.device_id(), Role::Admin)
            .await
            .unwrap();
        admin.join_team(w.team).await.unwrap();
        let clients = [&w.owner, &w.agent, &w.visitor, &admin];
        let mut streams: Vec<EventStream> = clients.iter().map(|c| c.events()).collect();
        for c in clients {
            c.sync().await.unwrap();
            assert_eq!(history_texts(c, &w.conversation).await, ["hi"]);
        }
        // The agent listens on its push connection; the others sync later.
        let agent = w.agent.clone();
        let run = tokio::spawn(async move { agent.run().await });
        wait_for(&mut streams[1], |e| {
            matches!(e, Event::Connected).then_some(())
        })
        .await;
        let deleter = if by_manager { &admin } else { &w.visitor };
        deleter.delete_conversation(&w.conversation).await.unwrap();
        wait_for(&mut streams[1], |e| match e {
            Event::ConversationDeleted { conversation } if *conversation == w.conversation => {
                Some(())
            }
            _ => None,
        })
        .await;
        run.abort();
        for (c, events) in clients.iter().zip(&mut streams) {
            c.sync().await.unwrap();
            assert!(c.conversations().await.unwrap().is_empty());
            assert!(history_texts(c, &w.conversation).await.is_empty());
            assert_eq!(warnings(events), [], "by manager: {by_manager}");
        }
    }
}
