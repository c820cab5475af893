//! The relay operator's hand and a fired member's copy of its store, for the hostile-relay
//! tests: rows written straight into the relay's database, and the secrets a store keeps.

use sotto_client::client::TeamRef;
use sotto_client::store::{EncryptedStore, MemoryStore, Namespace, Query, RecordId};
use sotto_core::conversation::{ConversationId, EpochRecord};
use sotto_core::device::Device;
use sotto_core::team::{Link, TeamKeyring, TeamState};
use sotto_core::wire::WireObject;
use sqlx::Row;

use super::TestRelay;

/// The operator's hand: the conversation's row id in the relay's database.
pub async fn conversation_ref(relay: &TestRelay, conversation: &ConversationId) -> i64 {
    let state = relay.relay.as_ref().unwrap().state();
    sqlx::query("SELECT id FROM conversations WHERE conversation_id = $1")
        .bind(conversation.0.to_vec())
        .fetch_one(state.db.pool())
        .await
        .unwrap()
        .try_get("id")
        .unwrap()
}

/// Stores `record` as the conversation's next epoch, bypassing every check of the relay.
pub async fn operator_stores_epoch(
    relay: &TestRelay,
    conversation: &ConversationId,
    record: &[u8],
) {
    let state = relay.relay.as_ref().unwrap().state();
    let id = conversation_ref(relay, conversation).await;
    let last: i64 = sqlx::query("SELECT last_epoch FROM conversations WHERE id = $1")
        .bind(id)
        .fetch_one(state.db.pool())
        .await
        .unwrap()
        .try_get("last_epoch")
        .unwrap();
    sqlx::query(
        "INSERT INTO epochs (conversation_ref, epoch, record, created_at) VALUES ($1, $2, $3, 0)",
    )
    .bind(id)
    .bind(last + 1)
    .bind(record.to_vec())
    .execute(state.db.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE conversations SET last_epoch = $1 WHERE id = $2")
        .bind(last + 1)
        .bind(id)
        .execute(state.db.pool())
        .await
        .unwrap();
}

/// Stores `message` as the conversation's next envelope, bypassing every check of the relay.
pub async fn operator_stores_envelope(
    relay: &TestRelay,
    conversation: &ConversationId,
    message: Vec<u8>,
) {
    let state = relay.relay.as_ref().unwrap().state();
    let id = conversation_ref(relay, conversation).await;
    state
        .envelopes
        .store(id, message, 0)
        .await
        .unwrap()
        .expect("conversation exists");
}

/// The device secrets a member's store keeps: what a fired agent copied off its laptop.
pub async fn stolen_device(store: &EncryptedStore<MemoryStore>) -> Device {
    let id = RecordId::new(&Namespace::new("account").unwrap(), b"device".to_vec()).unwrap();
    let v = store.get(&id).await.unwrap().unwrap().value.to_vec();
    // format u8 || u16 relay || widget[16] || u32 secrets
    let relay_len = u16::from_be_bytes([v[1], v[2]]) as usize;
    let at = 3 + relay_len + 16;
    let n = u32::from_be_bytes(v[at..at + 4].try_into().unwrap()) as usize;
    Device::import_secrets(&v[at + 4..at + 4 + n]).unwrap()
}

/// The verified chain that store keeps.
pub async fn stolen_state(store: &EncryptedStore<MemoryStore>, team: &TeamRef) -> TeamState {
    let links: Vec<Link> = store
        .list(
            &Namespace::new("team.link").unwrap(),
            &Query::prefix(team.team.0.to_vec()),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| Link::from_wire(&e.value).unwrap())
        .collect();
    TeamState::verify_chain(&links, &team.fingerprint).unwrap()
}

/// The team keys that store keeps (with the verified state, in the team record).
pub async fn stolen_keyring(store: &EncryptedStore<MemoryStore>, team: &TeamRef) -> TeamKeyring {
    let id = RecordId::new(&Namespace::new("team").unwrap(), team.team.0.to_vec()).unwrap();
    let v = store.get(&id).await.unwrap().unwrap().value.to_vec();
    // format u8 || fingerprint[32] || (1 || witness[32])? || 2 || u32 state || u32 keyring
    let mut at = 33;
    if v[at] == 1 {
        at += 33;
    }
    assert_eq!(v[at], 2, "the team record holds its verified state");
    let state_len = u32::from_be_bytes(v[at + 1..at + 5].try_into().unwrap()) as usize;
    at += 5 + state_len;
    let n = u32::from_be_bytes(v[at..at + 4].try_into().unwrap()) as usize;
    TeamKeyring::import(&v[at + 4..at + 4 + n]).unwrap()
}

/// The epoch record a store keeps.
pub async fn stored_epoch(
    store: &EncryptedStore<MemoryStore>,
    conversation: &ConversationId,
    epoch: u32,
) -> EpochRecord {
    let id = RecordId::new(
        &Namespace::new("conv.epoch").unwrap(),
        [conversation.0.to_vec(), epoch.to_be_bytes().to_vec()].concat(),
    )
    .unwrap();
    EpochRecord::from_wire(&store.get(&id).await.unwrap().unwrap().value).unwrap()
}
