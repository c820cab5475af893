//! The store in a browser (headless Chromium through `scripts/wasm-test.sh`): the shared suite
//! against the memory and IndexedDB backends, the WebCrypto wrapping of the store key, the Web
//! Locks writer election, and IndexedDB contents edited behind the store's back.

#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

mod common;

use core::future::Future;
use core::pin::Pin;
use core::task::Poll;
use std::cell::Cell;

use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use sotto_client::Error;
use sotto_client::store::{
    EncryptedStore, IndexedDbStore, MAX_KEY_LEN, MAX_SEALED_LEN, MemoryStore, Query, Store,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{IdbDatabase, IdbFactory, IdbRequest, IdbTransactionMode};

use common::suite::{Harness, id, join_all, key, ns};

wasm_bindgen_test_configure!(run_in_browser);

/// Memory backend: "reopening" is another handle on the same records.
#[derive(Default)]
struct MemoryHarness {
    last: MemoryStore,
}

impl Harness for MemoryHarness {
    type Backend = MemoryStore;
    async fn fresh(&mut self) -> MemoryStore {
        self.last = MemoryStore::new();
        self.last.clone()
    }
    async fn reopen(&mut self) -> MemoryStore {
        self.last.clone()
    }
}

mod memory {
    crate::web_suite_tests!(super::MemoryHarness::default());
}

thread_local! {
    static NEXT_DB: Cell<u32> = const { Cell::new(0) };
}

/// A database name no earlier test or run used (the browser profile is fresh per run, and the
/// random part keeps names apart even if it were not).
fn unique_name(label: &str) -> String {
    let n = NEXT_DB.with(|c| {
        let n = c.get();
        c.set(n + 1);
        n
    });
    let mut random = [0u8; 4];
    getrandom_fill(&mut random);
    format!("sotto-test-{label}-{n}-{}", hex::encode(random))
}

fn getrandom_fill(buf: &mut [u8]) {
    let crypto: web_sys::Crypto = Reflect::get(&js_sys::global(), &"crypto".into())
        .unwrap()
        .unchecked_into();
    crypto.get_random_values_with_u8_array(buf).unwrap();
}

/// IndexedDB backend: each fresh backend is a new database; reopening is a new connection that
/// takes the writer lock once the previous handle (dropped by the suite) has released it.
struct IndexedDbHarness {
    name: String,
}

impl IndexedDbHarness {
    fn new() -> Self {
        IndexedDbHarness {
            name: String::new(),
        }
    }
}

impl Harness for IndexedDbHarness {
    type Backend = IndexedDbStore;
    async fn fresh(&mut self) -> IndexedDbStore {
        self.name = unique_name("suite");
        let store = IndexedDbStore::open(&self.name).await.unwrap();
        assert!(store.is_writer(), "a new database's first handle writes");
        store
    }
    async fn reopen(&mut self) -> IndexedDbStore {
        let store = IndexedDbStore::open(&self.name).await.unwrap();
        store.wait_for_writer().await.unwrap();
        store
    }
}

mod indexeddb {
    crate::web_suite_tests!(super::IndexedDbHarness::new());
}

// ---- helpers ---------------------------------------------------------------------------------

async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        let set_timeout: js_sys::Function = Reflect::get(&js_sys::global(), &"setTimeout".into())
            .unwrap()
            .unchecked_into();
        set_timeout
            .call2(&JsValue::UNDEFINED, &resolve, &JsValue::from(ms))
            .unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

/// Polls a future once (starting its work) and tells whether it finished.
async fn poll_once<F: Future + ?Sized>(future: &mut Pin<Box<F>>) -> Poll<F::Output> {
    core::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
}

/// `future`'s output, or `None` if it takes longer than `ms`.
async fn within<F: Future>(ms: i32, future: F) -> Option<F::Output> {
    let mut future = Box::pin(future);
    let mut timer = Box::pin(sleep(ms));
    core::future::poll_fn(|cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

async fn request(req: &IdbRequest) -> JsValue {
    let promise = Promise::new(&mut |resolve, reject| {
        req.set_onsuccess(Some(&resolve));
        req.set_onerror(Some(&reject));
    });
    JsFuture::from(promise).await.unwrap();
    req.result().unwrap()
}

/// A separate connection to a database, as code in the page or developer tools would use.
async fn raw_db(name: &str) -> IdbDatabase {
    let factory: IdbFactory = Reflect::get(&js_sys::global(), &"indexedDB".into())
        .unwrap()
        .unchecked_into();
    let req = factory.open(name).unwrap();
    request(&req).await.unchecked_into()
}

/// The IndexedDB key the backend gives a record.
fn raw_key(namespace: &str, key: &[u8]) -> JsValue {
    Array::of2(&namespace.into(), &Uint8Array::from(key).into()).into()
}

async fn raw_put(db: &IdbDatabase, store: &str, key: &JsValue, value: &JsValue) {
    let txn = db
        .transaction_with_str_and_mode(store, IdbTransactionMode::Readwrite)
        .unwrap();
    let req = txn
        .object_store(store)
        .unwrap()
        .put_with_key(value, key)
        .unwrap();
    request(&req).await;
}

async fn raw_get(db: &IdbDatabase, store: &str, key: &JsValue) -> JsValue {
    let txn = db.transaction_with_str(store).unwrap();
    let req = txn.object_store(store).unwrap().get(key).unwrap();
    request(&req).await
}

async fn raw_delete(db: &IdbDatabase, store: &str, key: &JsValue) {
    let txn = db
        .transaction_with_str_and_mode(store, IdbTransactionMode::Readwrite)
        .unwrap();
    let req = txn.object_store(store).unwrap().delete(key).unwrap();
    request(&req).await;
}

/// A stored record value as the backend lays it out: big-endian version, then the sealed bytes.
fn raw_value(version: u64, sealed_len: usize) -> JsValue {
    let value = Uint8Array::new_with_length((8 + sealed_len) as u32);
    value.subarray(0, 8).copy_from(&version.to_be_bytes());
    value.into()
}

// ---- the store key, wrapped by WebCrypto ------------------------------------------------------

#[wasm_bindgen_test]
async fn store_key_is_wrapped_by_a_non_extractable_key() {
    let name = unique_name("wrap");
    let store = IndexedDbStore::open(&name).await.unwrap();
    assert!(store.wrapping_key().await.unwrap().is_none());
    let first = store.store_key().await.unwrap();

    let wrapping = store.wrapping_key().await.unwrap().unwrap();
    assert!(!wrapping.extractable());
    let algorithm = Reflect::get(&wrapping.algorithm().unwrap(), &"name".into()).unwrap();
    assert_eq!(algorithm.as_string().unwrap(), "AES-GCM");
    // Script cannot read the wrapping key's bytes.
    let crypto: web_sys::Crypto = Reflect::get(&js_sys::global(), &"crypto".into())
        .unwrap()
        .unchecked_into();
    let export = crypto.subtle().export_key("raw", &wrapping).unwrap();
    let refused = JsFuture::from(export).await.unwrap_err();
    assert_eq!(
        refused.unchecked_into::<web_sys::DomException>().name(),
        "InvalidAccessError"
    );

    // What the database holds is the store key sealed (32 bytes + 16-byte tag), not the key.
    let db = raw_db(&name).await;
    let record = raw_get(&db, "key", &"store".into()).await;
    let wrapped: Uint8Array = Reflect::get(&record, &"wrapped".into())
        .unwrap()
        .unchecked_into();
    assert_eq!(wrapped.length(), 48);
    let wrapped = wrapped.to_vec();
    assert!(
        !wrapped
            .windows(8)
            .any(|w| first.secret_bytes().expose().windows(8).any(|k| k == w))
    );
    db.close();

    // Loading again unwraps the same key.
    let again = store.store_key().await.unwrap();
    assert!(again.secret_bytes().ct_eq(first.secret_bytes()));
}

#[wasm_bindgen_test]
async fn a_reopened_store_opens_with_the_wrapped_key() {
    let name = unique_name("reopen");
    let backend = IndexedDbStore::open(&name).await.unwrap();
    let store_key = backend.store_key().await.unwrap();
    let store = EncryptedStore::open(backend, store_key).await.unwrap();
    let rid = id("device", b"me");
    store.put(&rid, b"identity secrets").await.unwrap();
    drop(store);

    // A later page load: a new connection, the key unwrapped from the database.
    let backend = IndexedDbStore::open(&name).await.unwrap();
    backend.wait_for_writer().await.unwrap();
    let store_key = backend.store_key().await.unwrap();
    let store = EncryptedStore::open(backend, store_key).await.unwrap();
    assert_eq!(
        store.get(&rid).await.unwrap().unwrap().value.as_slice(),
        b"identity secrets"
    );
    drop(store);

    // Deleting the database deletes the key with it: a new store, a new key.
    IndexedDbStore::delete(&name).await.unwrap();
    let backend = IndexedDbStore::open(&name).await.unwrap();
    assert!(backend.wrapping_key().await.unwrap().is_none());
    assert_eq!(backend.get(&rid).await.unwrap(), None);
}

#[wasm_bindgen_test]
async fn a_damaged_or_replaced_wrapped_key_is_refused() {
    let name = unique_name("damaged");
    let backend = IndexedDbStore::open(&name).await.unwrap();
    let store_key = backend.store_key().await.unwrap();
    let store = EncryptedStore::open(backend.clone(), store_key)
        .await
        .unwrap();
    store.put(&id("device", b"me"), b"secret").await.unwrap();
    drop(store);

    let db = raw_db(&name).await;
    let original = raw_get(&db, "key", &"store".into()).await;
    // A flipped bit in the wrapped key: it no longer opens.
    let wrapped: Uint8Array = Reflect::get(&original, &"wrapped".into())
        .unwrap()
        .unchecked_into();
    let mut bytes = wrapped.to_vec();
    bytes[3] ^= 1;
    let doctored = Object::assign(&Object::new(), &original.clone().unchecked_into());
    Reflect::set(&doctored, &"wrapped".into(), &Uint8Array::from(&bytes[..])).unwrap();
    raw_put(&db, "key", &"store".into(), &doctored).await;
    assert_eq!(
        backend.store_key().await.unwrap_err(),
        Error::Corrupt("the wrapped store key does not open")
    );
    // Malformed records are refused, not trusted.
    for (field, value) in [
        ("iv", Uint8Array::new_with_length(11).into()),
        ("wrapped", Uint8Array::new_with_length(1 << 20).into()),
        ("wrapping_key", JsValue::from_str("not a key")),
    ] {
        let doctored = Object::assign(&Object::new(), &original.clone().unchecked_into());
        Reflect::set(&doctored, &field.into(), &value).unwrap();
        raw_put(&db, "key", &"store".into(), &doctored).await;
        assert_eq!(
            backend.store_key().await.unwrap_err().code(),
            "store_corrupt",
            "{field}"
        );
    }
    // With the key record gone, a new key is made, and it does not open the old store.
    raw_delete(&db, "key", &"store".into()).await;
    db.close();
    let new_key = backend.store_key().await.unwrap();
    assert_eq!(
        EncryptedStore::open(backend, new_key).await.unwrap_err(),
        Error::WrongStoreKey
    );
}

#[wasm_bindgen_test]
async fn concurrent_first_opens_agree_on_one_key() {
    let name = unique_name("race");
    let a = IndexedDbStore::open(&name).await.unwrap();
    let b = IndexedDbStore::open(&name).await.unwrap();
    let keys = join_all(vec![a.store_key(), b.store_key(), a.store_key()]).await;
    let keys: Vec<_> = keys.into_iter().map(Result::unwrap).collect();
    assert!(keys[0].secret_bytes().ct_eq(keys[1].secret_bytes()));
    assert!(keys[0].secret_bytes().ct_eq(keys[2].secret_bytes()));
}

// ---- one writer (Web Locks) -------------------------------------------------------------------

#[wasm_bindgen_test]
async fn only_one_handle_writes_and_a_follower_takes_over() {
    let name = unique_name("lock");
    let first = IndexedDbStore::open(&name).await.unwrap();
    assert!(first.is_writer());
    let store_key = first.store_key().await.unwrap();
    let writer = EncryptedStore::open(first, store_key.clone())
        .await
        .unwrap();
    let rid = id("conversation", b"c1");
    writer.put(&rid, b"from the writer").await.unwrap();

    // A second tab follows: it reads what the writer commits and cannot commit.
    let second = IndexedDbStore::open(&name).await.unwrap();
    assert!(!second.is_writer());
    let follower = EncryptedStore::open(second, store_key).await.unwrap();
    assert_eq!(
        follower.get(&rid).await.unwrap().unwrap().value.as_slice(),
        b"from the writer"
    );
    let refused = follower.put(&rid, b"from the follower").await.unwrap_err();
    assert_eq!(refused, Error::ReadOnly);
    assert_eq!(refused.code(), "store_read_only");
    writer.put(&rid, b"newer").await.unwrap();
    assert_eq!(
        follower.get(&rid).await.unwrap().unwrap().value.as_slice(),
        b"newer"
    );

    // The follower waits for the lock; it is not granted while the writer lives.
    let mut waiting = Box::pin(follower.backend().wait_for_writer());
    assert!(poll_once(&mut waiting).await.is_pending());
    sleep(200).await;
    assert!(poll_once(&mut waiting).await.is_pending());
    assert!(!follower.backend().is_writer());

    // The writer goes away (tab closed): the follower takes over and writes.
    drop(writer);
    within(5000, waiting)
        .await
        .expect("the lock is handed over")
        .unwrap();
    assert!(follower.backend().is_writer());
    follower.put(&rid, b"from the new writer").await.unwrap();
    assert_eq!(
        follower.get(&rid).await.unwrap().unwrap().value.as_slice(),
        b"from the new writer"
    );
}

#[wasm_bindgen_test]
async fn followers_learn_of_the_writers_commits() {
    let name = unique_name("follow");
    let writer = EncryptedStore::open(IndexedDbStore::open(&name).await.unwrap(), key(1))
        .await
        .unwrap();
    let follower = EncryptedStore::open(IndexedDbStore::open(&name).await.unwrap(), key(1))
        .await
        .unwrap();
    assert!(!follower.backend().is_writer());
    let rid = id("conversation", b"c1");
    for round in 0u8..3 {
        let mut changed = Box::pin(follower.backend().wait_for_change());
        assert!(poll_once(&mut changed).await.is_pending());
        // Nothing was committed: no news.
        sleep(50).await;
        assert!(poll_once(&mut changed).await.is_pending());
        writer.put(&rid, &[round]).await.unwrap();
        within(5000, changed)
            .await
            .expect("the follower hears of the commit");
        assert_eq!(
            follower.get(&rid).await.unwrap().unwrap().value.as_slice(),
            &[round]
        );
    }
    // A handle's own commits do not wake it.
    let mut own = Box::pin(writer.backend().wait_for_change());
    assert!(poll_once(&mut own).await.is_pending());
    writer.put(&rid, b"again").await.unwrap();
    assert!(within(200, own).await.is_none());
}

#[wasm_bindgen_test]
async fn an_abandoned_wait_does_not_keep_the_lock() {
    let name = unique_name("abandon");
    let writer = IndexedDbStore::open(&name).await.unwrap();
    let follower = IndexedDbStore::open(&name).await.unwrap();
    assert!(!follower.is_writer());
    // Start waiting, then give up (the component that waited was unmounted).
    let mut waiting = Box::pin(follower.wait_for_writer());
    assert!(poll_once(&mut waiting).await.is_pending());
    drop(waiting);
    drop(follower);
    drop(writer);
    // The lock is free for the next page, not held by the abandoned request.
    let next = IndexedDbStore::open(&name).await.unwrap();
    within(5000, next.wait_for_writer())
        .await
        .expect("the lock is free")
        .unwrap();
    assert!(next.is_writer());
    // And it is exclusive again.
    let other = IndexedDbStore::open(&name).await.unwrap();
    assert!(!other.is_writer());
    assert!(within(300, other.wait_for_writer()).await.is_none());
}

// ---- untrusted database contents ---------------------------------------------------------------

#[wasm_bindgen_test]
async fn edited_database_contents_are_refused_without_large_allocations() {
    let name = unique_name("edited");
    let backend = IndexedDbStore::open(&name).await.unwrap();
    let store = EncryptedStore::open(backend, key(1)).await.unwrap();
    let rid = id("device", b"me");
    store.put(&rid, b"secret").await.unwrap();
    let db = raw_db(&name).await;
    let record_key = raw_key("device", b"me");
    let original = raw_get(&db, "record", &record_key).await;

    // A value one byte over the bound, a value that is no byte array, a zero version, a value
    // shorter than its version: corrupt, and the read stops at the length check.
    for (what, value) in [
        ("too long", raw_value(7, MAX_SEALED_LEN + 1)),
        ("a string", JsValue::from_str("x")),
        ("zero version", raw_value(0, 64)),
        ("truncated", Uint8Array::new_with_length(5).into()),
    ] {
        raw_put(&db, "record", &record_key, &value).await;
        assert_eq!(
            store.backend().get(&rid).await.unwrap_err().code(),
            "store_corrupt",
            "{what}"
        );
        assert_eq!(
            store
                .list(&ns("device"), &Query::default())
                .await
                .unwrap_err()
                .code(),
            "store_corrupt",
            "{what}"
        );
    }
    // The bound itself is fine for the backend (authentication then fails in the store).
    raw_put(&db, "record", &record_key, &raw_value(7, MAX_SEALED_LEN)).await;
    assert_eq!(
        store
            .backend()
            .get(&rid)
            .await
            .unwrap()
            .unwrap()
            .sealed
            .len(),
        MAX_SEALED_LEN
    );
    assert_eq!(store.get(&rid).await.unwrap_err().code(), "store_tampered");
    raw_put(&db, "record", &record_key, &original).await;
    assert_eq!(
        store.get(&rid).await.unwrap().unwrap().value.as_slice(),
        b"secret"
    );

    // Keys that the store would never write: too long, a bad namespace, not an array.
    let bad_keys: [(&str, JsValue); 3] = [
        ("long key", raw_key("device", &[1; MAX_KEY_LEN + 1])),
        ("bad namespace", raw_key("Device!", b"x")),
        ("plain string", JsValue::from_str("device")),
    ];
    for (what, bad) in bad_keys {
        raw_put(&db, "record", &bad, &raw_value(3, 40)).await;
        let namespaces = store.namespaces().await;
        let listed = store.backend().list(&ns("device"), &Query::default()).await;
        assert!(
            namespaces.is_err() || listed.is_err(),
            "{what}: {namespaces:?}"
        );
        raw_delete(&db, "record", &bad).await;
    }
    assert_eq!(store.namespaces().await.unwrap(), vec![ns("device")]);

    // A damaged version counter stops commits instead of reusing versions.
    raw_put(&db, "meta", &"last_version".into(), &JsValue::from(7)).await;
    assert_eq!(
        store.put(&rid, b"x").await.unwrap_err().code(),
        "store_corrupt"
    );
    db.close();
}
