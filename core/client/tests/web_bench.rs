//! Browser throughput of the store path of messages, in headless Chromium
//! (`scripts/wasm-bench.sh`, not part of the test suite): how many 100-byte text messages per
//! second are sealed and stored, and opened and stored, each as one atomic store transaction
//! that also advances the chain state (what the client does per message), on IndexedDB (strict
//! durability) and, to separate the crypto from the storage, on the memory store.
//!
//! Prints figures; asserts only that the work was done (every message stored and readable).

#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto_client::store::{
    EncryptedStore, Expect, IndexedDbStore, MemoryStore, Namespace, Query, RecordId, Store,
    StoreKey, Transaction,
};
use sotto_core::conversation::{
    ChainId, ConversationId, MessageKind, ParsedMessage, ReceiverChain, SenderChain, seal_message,
};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::device::{Device, DeviceKind};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Messages per measurement.
const MESSAGES: usize = 300;
const TEXT: [u8; 100] = [b'm'; 100];

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console)]
    fn log(line: &str);
    #[wasm_bindgen(js_namespace = performance)]
    fn now() -> f64;
}

fn rid(namespace: &str, key: &[u8]) -> RecordId {
    RecordId::new(&Namespace::new(namespace).unwrap(), key.to_vec()).unwrap()
}

struct Peer {
    device: Device,
    chain: ChainId,
}

fn peer() -> Peer {
    let device = Device::generate(
        DeviceKind::Member,
        &mut ChaCha20Rng::seed_from_u64(7),
        1_767_225_600,
    );
    let chain = ChainId {
        conversation: ConversationId([5; 16]),
        epoch: 0,
        sender: device.id(),
        instance: sotto_core::conversation::Instance([1; 8]),
        stream: MessageKind::Text.stream(),
    };
    Peer { device, chain }
}

fn context() -> sotto_core::conversation::MessageContext {
    sotto_core::conversation::MessageContext {
        conversation: ConversationId([5; 16]),
        epoch: 0,
        team: sotto_core::team::TeamId([6; 16]),
        record_hash: [7; 32],
    }
}

fn epoch_secret() -> SecretBytes<32> {
    SecretBytes::new([42; 32])
}

/// Seals `MESSAGES` messages, each committed with the advanced sender chain. Milliseconds.
async fn seal_and_store<S: Store>(store: &EncryptedStore<S>, peer: &Peer) -> f64 {
    let chain_id = rid("chain.send", b"bench");
    let chain = SenderChain::new(&epoch_secret(), peer.chain);
    store.put(&chain_id, &chain.export()).await.unwrap();
    let start = now();
    for i in 0..MESSAGES as u64 {
        let entry = store.get(&chain_id).await.unwrap().unwrap();
        let mut chain = SenderChain::import(&entry.value).unwrap();
        let sealed = seal_message(
            &mut chain,
            &peer.device,
            MessageKind::Text,
            &TEXT,
            &context(),
        )
        .unwrap();
        let mut txn = Transaction::new();
        txn.put(
            chain_id.clone(),
            &chain.export(),
            Expect::Version(entry.version),
        );
        txn.put(rid("out", &i.to_be_bytes()), &sealed, Expect::Absent);
        store.commit(txn).await.unwrap();
    }
    now() - start
}

/// Opens `MESSAGES` messages (decode, verify, decrypt), each committed with the advanced
/// receiver chain. Milliseconds.
async fn open_and_store<S: Store>(store: &EncryptedStore<S>, peer: &Peer) -> f64 {
    let mut sender = SenderChain::new(&epoch_secret(), peer.chain);
    let wire: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|_| {
            seal_message(
                &mut sender,
                &peer.device,
                MessageKind::Text,
                &TEXT,
                &context(),
            )
            .unwrap()
        })
        .collect();
    let key = *peer.device.record().identity();
    let chain_id = rid("chain.recv", b"bench");
    let chain = ReceiverChain::new(&epoch_secret(), peer.chain);
    store.put(&chain_id, &chain.export()).await.unwrap();
    let start = now();
    for (i, bytes) in wire.iter().enumerate() {
        let entry = store.get(&chain_id).await.unwrap().unwrap();
        let mut chain = ReceiverChain::import(&entry.value).unwrap();
        let opened = ParsedMessage::decode(bytes)
            .unwrap()
            .verify(&key, &context())
            .unwrap()
            .decrypt(&mut chain)
            .unwrap();
        let mut txn = Transaction::new();
        txn.put(
            chain_id.clone(),
            &chain.export(),
            Expect::Version(entry.version),
        );
        txn.put(
            rid("in", &(i as u64).to_be_bytes()),
            opened.content(),
            Expect::Absent,
        );
        store.commit(txn).await.unwrap();
    }
    now() - start
}

async fn measure<S: Store>(label: &str, store: EncryptedStore<S>) {
    let peer = peer();
    let sealing = seal_and_store(&store, &peer).await;
    let opening = open_and_store(&store, &peer).await;
    for (ns, expected) in [("out", MESSAGES), ("in", MESSAGES)] {
        let rows = store
            .list(&Namespace::new(ns).unwrap(), &Query::default())
            .await
            .unwrap();
        assert_eq!(rows.len(), expected);
    }
    let per_second = |ms: f64| MESSAGES as f64 / (ms / 1000.0);
    log(&format!(
        "{label}: seal+store {:.0} messages/s ({:.2} ms each); open+store {:.0} messages/s \
         ({:.2} ms each); {MESSAGES} messages each",
        per_second(sealing),
        sealing / MESSAGES as f64,
        per_second(opening),
        opening / MESSAGES as f64,
    ));
}

#[wasm_bindgen_test]
async fn message_store_throughput() {
    let key = StoreKey::from_bytes(SecretBytes::new([1; 32]));
    let memory = EncryptedStore::open(MemoryStore::new(), key.clone())
        .await
        .unwrap();
    measure("memory store", memory).await;

    let name = format!("sotto-bench-{}", js_sys::Date::now());
    let backend = IndexedDbStore::open(&name).await.unwrap();
    let idb = EncryptedStore::open(backend, key).await.unwrap();
    measure("IndexedDB store", idb).await;
    IndexedDbStore::delete(&name).await.unwrap();
}
