//! A restart does not replay the team chain: the client stores its verified state and keyring
//! (PROTOCOL §6.9) and applies only the links stored after them.

mod harness;

use harness::{TestRelay, history_texts, key_of};
use sotto_client::store::{EncryptedStore, Expect, Namespace, Query, Transaction};
use sotto_core::device::DeviceKind;
use sotto_core::team::{Policy, Role};

#[tokio::test]
async fn a_restart_starts_from_the_stored_verified_state() {
    let relay = TestRelay::start().await;
    let (owner, _, _) = relay.register(DeviceKind::Member, true).await;
    let team = owner.create_team(Policy::default()).await.unwrap();
    let (agent, agent_store, _) = relay.register(DeviceKind::Member, false).await;
    owner
        .invite_member(&team.team, &agent.device_id(), Role::Agent)
        .await
        .unwrap();
    agent.join_team(team).await.unwrap();
    let (viewer, _, _) = relay.register(DeviceKind::Member, false).await;
    owner
        .invite_member(&team.team, &viewer.device_id(), Role::Viewer)
        .await
        .unwrap();
    agent.sync().await.unwrap();
    let (visitor, _, _) = relay.register(DeviceKind::Visitor, false).await;
    let conversation = visitor.open_conversation(team).await.unwrap();
    visitor
        .send_text(&conversation, "still there?")
        .await
        .unwrap();
    agent.sync().await.unwrap();
    let members = agent.members(&team.team).await.unwrap();

    // Remove every stored link of the agent: a start that replayed the chain would find no
    // team; one that imports the verified state keeps the team and its keys.
    let store = EncryptedStore::open(agent_store.clone(), key_of(&agent))
        .await
        .unwrap();
    let links = store
        .list(
            &Namespace::new("team.link").unwrap(),
            &Query::prefix(team.team.0.to_vec()),
        )
        .await
        .unwrap();
    assert!(links.len() >= 3);
    let mut txn = Transaction::new();
    for (id, _) in links {
        txn.delete(id, Expect::Any);
    }
    store.commit(txn).await.unwrap();
    drop(agent);

    let agent = relay
        .reopen_with_key(&agent_store, members_device(&members))
        .await;
    assert_eq!(agent.members(&team.team).await.unwrap(), members);
    visitor.send_text(&conversation, "hello?").await.unwrap();
    agent.sync().await.unwrap();
    assert_eq!(
        history_texts(&agent, &conversation).await,
        ["still there?", "hello?"]
    );
}

/// The agent's device: the only member device with the agent role in this test's team.
fn members_device(members: &[sotto_client::client::MemberInfo]) -> sotto_core::device::DeviceId {
    members
        .iter()
        .find(|m| m.role == Role::Agent)
        .and_then(|m| m.devices.first().copied())
        .unwrap()
}
