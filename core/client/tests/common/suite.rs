//! The shared store test suite: generic async functions run against every backend through a
//! [`Harness`]. `suite_tests!` instantiates one tokio test per function for a native backend;
//! `web_suite_tests!` one wasm-bindgen test per function for a backend in the browser
//! (`tests/web.rs`). Everything but the tokio-based concurrency tests is runtime-agnostic; the
//! `interleaved_*` tests run concurrent writers on one task with [`join_all`], which needs no
//! runtime.

#![allow(dead_code)]

use rand_core::SeedableRng;
use sotto_client::Error;
use sotto_client::store::{
    EncryptedStore, Expect, MAX_KEY_LEN, MAX_VALUE_LEN, Namespace, Op, Query, RecordId, Store,
    StoreKey, Transaction, Update, Version,
};
use sotto_core::crypto::aead::{self, AeadKey};
use sotto_core::crypto::secret::SecretBytes;

/// Makes backends for the suite.
#[allow(async_fn_in_trait)]
pub trait Harness {
    /// The backend under test.
    type Backend: Store + 'static;
    /// A new, empty backend.
    async fn fresh(&mut self) -> Self::Backend;
    /// A new handle on the data of the last [`Harness::fresh`] backend, as after a restart of
    /// the app (earlier handles may still be alive, like another process).
    async fn reopen(&mut self) -> Self::Backend;
}

pub fn ns(name: &str) -> Namespace {
    Namespace::new(name).unwrap()
}

pub fn id(namespace: &str, key: &[u8]) -> RecordId {
    RecordId::new(&ns(namespace), key.to_vec()).unwrap()
}

pub fn key(seed: u8) -> StoreKey {
    StoreKey::from_bytes(SecretBytes::new([seed; 32]))
}

async fn open<H: Harness>(h: &mut H) -> EncryptedStore<H::Backend> {
    let backend = h.fresh().await;
    EncryptedStore::open(backend, key(1)).await.unwrap()
}

async fn value<S: Store>(store: &EncryptedStore<S>, rid: &RecordId) -> Option<Vec<u8>> {
    store.get(rid).await.unwrap().map(|e| e.value.to_vec())
}

/// Writes a raw record, bypassing encryption (what an attacker with the file can do).
async fn put_raw<S: Store>(backend: &S, rid: &RecordId, sealed: Vec<u8>) {
    backend
        .commit(vec![Op::Put {
            id: rid.clone(),
            sealed,
            expect: Expect::Any,
        }])
        .await
        .unwrap();
}

pub async fn round_trip<H: Harness>(h: &mut H) {
    let store = open(h).await;
    let a = id("things", b"a");
    assert_eq!(store.get(&a).await.unwrap().map(|e| e.version), None);

    let v1 = store.put(&a, b"first").await.unwrap();
    let got = store.get(&a).await.unwrap().unwrap();
    assert_eq!((got.version, got.value.as_slice()), (v1, &b"first"[..]));

    let v2 = store.put(&a, b"second").await.unwrap();
    assert!(v2 > v1, "versions grow");
    assert_eq!(value(&store, &a).await.unwrap(), b"second");

    // Empty values, binary values, the longest key, an empty key.
    let empty = id("things", b"");
    store.put(&empty, b"").await.unwrap();
    assert_eq!(value(&store, &empty).await.unwrap(), b"");
    let long = RecordId::new(&ns("things"), vec![0xAB; MAX_KEY_LEN]).unwrap();
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    store.put(&long, &binary).await.unwrap();
    assert_eq!(value(&store, &long).await.unwrap(), binary);

    store.delete(&a).await.unwrap();
    assert_eq!(value(&store, &a).await, None);
    store.delete(&a).await.unwrap(); // deleting an absent record is fine

    // Values are sealed: the backend holds nonce || ciphertext || tag, never the plaintext.
    let raw = store.backend().get(&long).await.unwrap().unwrap();
    assert_eq!(raw.sealed.len(), binary.len() + 40);
    assert!(
        !raw.sealed
            .windows(16)
            .any(|w| binary.windows(16).next() == Some(w))
    );
    // Two writes of one value give different ciphertexts (fresh nonces).
    store.put(&empty, b"x").await.unwrap();
    let s1 = store.backend().get(&empty).await.unwrap().unwrap().sealed;
    store.put(&empty, b"x").await.unwrap();
    let s2 = store.backend().get(&empty).await.unwrap().unwrap().sealed;
    assert_ne!(s1, s2);

    // Bounds and reserved names.
    let too_big = vec![0u8; MAX_VALUE_LEN + 1];
    assert_eq!(store.put(&a, &too_big).await, Err(Error::ValueTooLarge));
    let reserved = id("sotto.meta", b"schema");
    assert_eq!(
        store.put(&reserved, b"x").await.unwrap_err().code(),
        "store_invalid_record_id"
    );
    assert!(store.get(&reserved).await.is_err());
    assert_eq!(store.namespaces().await.unwrap(), vec![ns("things")]);
}

pub async fn tampering_is_detected<H: Harness>(h: &mut H) {
    let store = open(h).await;
    let a = id("chain.send", b"conv-1");
    store.put(&a, b"chain state").await.unwrap();
    let original = store.backend().get(&a).await.unwrap().unwrap().sealed;
    let positions = [0, 23, 24, 30, original.len() - 1];
    for i in positions {
        let mut t = original.clone();
        t[i] ^= 0x01;
        put_raw(store.backend(), &a, t).await;
        let err = store.get(&a).await.unwrap_err();
        assert_eq!(
            err,
            Error::Tampered {
                namespace: "chain.send".into()
            },
            "byte {i}"
        );
        assert_eq!(err.code(), "store_tampered");
        assert!(
            store
                .list(&ns("chain.send"), &Query::default())
                .await
                .is_err()
        );
    }
    // Truncated and emptied values.
    for cut in [0, 10, 39, original.len() - 1] {
        put_raw(store.backend(), &a, original[..cut].to_vec()).await;
        assert_eq!(store.get(&a).await.unwrap_err().code(), "store_tampered");
    }
    // The original still opens: nothing else was harmed.
    put_raw(store.backend(), &a, original).await;
    assert_eq!(value(&store, &a).await.unwrap(), b"chain state");
}

pub async fn moved_values_are_detected<H: Harness>(h: &mut H) {
    let store = open(h).await;
    let a = id("epoch", b"conv-1/0");
    let b = id("epoch", b"conv-2/0");
    let c = id("epochs", b"conv-1/0");
    store.put(&a, b"secret of a").await.unwrap();
    store.put(&b, b"secret of b").await.unwrap();
    let sealed_a = store.backend().get(&a).await.unwrap().unwrap().sealed;
    // Copy a's value over b, and into another namespace under the same key.
    put_raw(store.backend(), &b, sealed_a.clone()).await;
    put_raw(store.backend(), &c, sealed_a).await;
    assert_eq!(store.get(&b).await.unwrap_err().code(), "store_tampered");
    assert_eq!(
        store.get(&c).await.unwrap_err(),
        Error::Tampered {
            namespace: "epochs".into()
        }
    );
    assert_eq!(value(&store, &a).await.unwrap(), b"secret of a");
}

pub async fn wrong_key_is_refused<H: Harness>(h: &mut H) {
    let store = EncryptedStore::open(h.fresh().await, key(1)).await.unwrap();
    let a = id("device", b"");
    store.put(&a, b"device secrets").await.unwrap();
    drop(store);
    let err = EncryptedStore::open(h.reopen().await, key(2))
        .await
        .unwrap_err();
    assert_eq!(err, Error::WrongStoreKey);
    assert_eq!(err.code(), "store_wrong_key");
    // The right key still opens it, untouched by the refused attempt.
    let store = EncryptedStore::open(h.reopen().await, key(1))
        .await
        .unwrap();
    assert_eq!(value(&store, &a).await.unwrap(), b"device secrets");
}

pub async fn transactions_are_all_or_nothing<H: Harness>(h: &mut H) {
    let store = open(h).await;
    let (a, b, c) = (id("t", b"a"), id("t", b"b"), id("t", b"c"));
    let vc = store.put(&c, b"c0").await.unwrap();
    let _ = store.put(&c, b"c1").await.unwrap();

    // A failing check anywhere in the batch: nothing is applied.
    let mut txn = Transaction::new();
    txn.put(a.clone(), b"a1", Expect::Absent)
        .put(b.clone(), b"b1", Expect::Any)
        .delete(c.clone(), Expect::Version(vc)); // stale
    let err = store.commit(txn).await.unwrap_err();
    assert_eq!(
        err,
        Error::Conflict {
            namespace: "t".into()
        }
    );
    assert!(err.is_conflict());
    assert_eq!(value(&store, &a).await, None);
    assert_eq!(value(&store, &b).await, None);
    assert_eq!(value(&store, &c).await.unwrap(), b"c1");

    // A check op that fails blocks the batch too.
    let mut txn = Transaction::new();
    txn.put(a.clone(), b"a1", Expect::Any)
        .check(b.clone(), Expect::Version(Version(1)));
    assert!(store.commit(txn).await.unwrap_err().is_conflict());
    assert_eq!(value(&store, &a).await, None);

    // A batch that names a record twice, or holds an oversized value, is refused whole.
    let mut txn = Transaction::new();
    txn.put(a.clone(), b"x", Expect::Any)
        .delete(a.clone(), Expect::Any);
    assert_eq!(store.commit(txn).await, Err(Error::DuplicateRecord));
    let mut txn = Transaction::new();
    txn.put(a.clone(), b"x", Expect::Any)
        .put(b.clone(), &vec![0; MAX_VALUE_LEN + 1], Expect::Any);
    assert_eq!(store.commit(txn).await, Err(Error::ValueTooLarge));
    assert_eq!(value(&store, &a).await, None);

    // A passing batch: every op applied, every put with the batch's version.
    let current_c = store.get(&c).await.unwrap().unwrap().version;
    let mut txn = Transaction::new();
    txn.put(a.clone(), b"a1", Expect::Absent)
        .put(b.clone(), b"b1", Expect::Absent)
        .delete(c.clone(), Expect::Version(current_c));
    assert_eq!(txn.len(), 3);
    let v = store.commit(txn).await.unwrap();
    assert_eq!(store.get(&a).await.unwrap().unwrap().version, v);
    assert_eq!(store.get(&b).await.unwrap().unwrap().version, v);
    assert_eq!(value(&store, &c).await, None);
    // An empty transaction is a no-op.
    store.commit(Transaction::new()).await.unwrap();
    assert_eq!(value(&store, &a).await.unwrap(), b"a1");
}

pub async fn version_conflicts<H: Harness>(h: &mut H) {
    let store = open(h).await;
    let chain = id("chain.send", b"conv/0/dev/0");
    let v1 = store.put(&chain, b"counter 0").await.unwrap();

    // Two writers read v1; the first wins, the stale one fails and changes nothing.
    let mut first = Transaction::new();
    first.put(chain.clone(), b"counter 1 (writer A)", Expect::Version(v1));
    let v2 = store.commit(first).await.unwrap();
    let mut stale = Transaction::new();
    stale.put(chain.clone(), b"counter 1 (writer B)", Expect::Version(v1));
    assert!(store.commit(stale).await.unwrap_err().is_conflict());
    assert_eq!(
        value(&store, &chain).await.unwrap(),
        b"counter 1 (writer A)"
    );

    // Absent: create-only.
    let mut again = Transaction::new();
    again.put(chain.clone(), b"x", Expect::Absent);
    assert!(store.commit(again).await.unwrap_err().is_conflict());
    let mut missing = Transaction::new();
    missing.put(id("chain.send", b"other"), b"x", Expect::Version(v2));
    assert!(store.commit(missing).await.unwrap_err().is_conflict());

    // No ABA: after delete and re-create, the old version no longer matches.
    let mut del = Transaction::new();
    del.delete(chain.clone(), Expect::Version(v2));
    store.commit(del).await.unwrap();
    let v3 = store.put(&chain, b"recreated").await.unwrap();
    assert_ne!(v3, v2);
    assert_ne!(v3, v1);
    let mut old = Transaction::new();
    old.put(chain.clone(), b"x", Expect::Version(v2));
    assert!(store.commit(old).await.unwrap_err().is_conflict());

    // update() retries on its own and passes the closure the current entry.
    let out = store
        .update(&chain, |cur| {
            let cur = cur.expect("exists");
            assert_eq!(cur.value.as_slice(), b"recreated");
            Ok((Update::Put(b"updated".to_vec().into()), cur.version))
        })
        .await
        .unwrap();
    assert_eq!(out, v3);
    assert_eq!(value(&store, &chain).await.unwrap(), b"updated");
    let kept = store
        .update(&chain, |_| Ok((Update::Keep, 7)))
        .await
        .unwrap();
    assert_eq!(kept, 7);
    store
        .update(&chain, |_| Ok((Update::Delete, ())))
        .await
        .unwrap();
    assert_eq!(value(&store, &chain).await, None);
    // The closure's error is returned and nothing is written.
    let err = store
        .update(&chain, |_| -> sotto_client::Result<(Update, ())> {
            Err(Error::BackupPassphrase)
        })
        .await
        .unwrap_err();
    assert_eq!(err, Error::BackupPassphrase);
}

pub async fn prefix_listing<H: Harness>(h: &mut H) {
    let store = open(h).await;
    let msgs = ns("msg");
    let mut txn = Transaction::new();
    for conv in [1u8, 2] {
        for seq in 0u32..5 {
            let mut k = vec![conv];
            k.extend_from_slice(&seq.to_be_bytes());
            txn.put(
                RecordId::new(&msgs, k).unwrap(),
                format!("conv {conv} msg {seq}").as_bytes(),
                Expect::Absent,
            );
        }
    }
    // Neighbouring namespaces and edge keys must not leak into listings.
    txn.put(
        id("msgs", &[1, 0, 0, 0, 0]),
        b"other namespace",
        Expect::Any,
    )
    .put(id("ms", &[1]), b"shorter namespace", Expect::Any)
    .put(id("msg", &[0xFF]), b"ff", Expect::Any)
    .put(id("msg", &[0xFF, 0xFF]), b"ffff", Expect::Any)
    .put(id("msg", &[]), b"empty key", Expect::Any);
    store.commit(txn).await.unwrap();

    let keys = |rows: Vec<(RecordId, sotto_client::store::Entry)>| {
        rows.into_iter()
            .map(|(rid, e)| {
                assert_eq!(rid.namespace(), &msgs);
                (
                    rid.key().to_vec(),
                    String::from_utf8(e.value.to_vec()).unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };

    let conv1 = keys(store.list(&msgs, &Query::prefix(vec![1])).await.unwrap());
    assert_eq!(conv1.len(), 5);
    for (i, (k, v)) in conv1.iter().enumerate() {
        assert_eq!(k[1..], (i as u32).to_be_bytes());
        assert_eq!(v, &format!("conv 1 msg {i}"));
    }
    let all = keys(store.list(&msgs, &Query::default()).await.unwrap());
    assert_eq!(all.len(), 13);
    assert_eq!(all[0].0, Vec::<u8>::new());
    assert_eq!(all[12].0, vec![0xFF, 0xFF]);
    let ff = keys(store.list(&msgs, &Query::prefix(vec![0xFF])).await.unwrap());
    assert_eq!(ff.len(), 2);
    let ffff = keys(
        store
            .list(&msgs, &Query::prefix(vec![0xFF, 0xFF]))
            .await
            .unwrap(),
    );
    assert_eq!(ffff.len(), 1);
    assert!(
        store
            .list(&msgs, &Query::prefix(vec![3]))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list(&ns("nothing"), &Query::default())
            .await
            .unwrap()
            .is_empty()
    );

    // Newest first, in pages of two.
    let q = Query::prefix(vec![2]).descending().limit(2);
    let page1 = keys(store.list(&msgs, &q).await.unwrap());
    assert_eq!(
        page1.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>(),
        ["conv 2 msg 4", "conv 2 msg 3"]
    );
    let page2 = keys(
        store
            .list(&msgs, &q.clone().after(page1[1].0.clone()))
            .await
            .unwrap(),
    );
    assert_eq!(
        page2.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>(),
        ["conv 2 msg 2", "conv 2 msg 1"]
    );
    let page3 = keys(
        store
            .list(&msgs, &q.clone().after(page2[1].0.clone()))
            .await
            .unwrap(),
    );
    assert_eq!(
        page3.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>(),
        ["conv 2 msg 0"]
    );
    // Ascending pages.
    let q = Query::prefix(vec![1]).limit(3);
    let page1 = keys(store.list(&msgs, &q).await.unwrap());
    let page2 = keys(
        store
            .list(&msgs, &q.clone().after(page1[2].0.clone()))
            .await
            .unwrap(),
    );
    assert_eq!(page1.len() + page2.len(), 5);
    assert_eq!(page2[0].1, "conv 1 msg 3");
    assert!(
        store
            .list(&msgs, &Query::default().limit(0))
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        store.namespaces().await.unwrap(),
        vec![ns("ms"), ns("msg"), ns("msgs")]
    );
}

pub async fn persists_across_reopen<H: Harness>(h: &mut H) {
    let store = open(h).await;
    let rids: Vec<RecordId> = (0u8..20).map(|i| id("team.keys", &[i])).collect();
    for (i, rid) in rids.iter().enumerate() {
        store.put(rid, &[i as u8; 33]).await.unwrap();
    }
    let before = store.get(&rids[7]).await.unwrap().unwrap().version;
    drop(store);
    let store = EncryptedStore::open(h.reopen().await, key(1))
        .await
        .unwrap();
    for (i, rid) in rids.iter().enumerate() {
        assert_eq!(value(&store, rid).await.unwrap(), vec![i as u8; 33]);
    }
    assert_eq!(store.get(&rids[7]).await.unwrap().unwrap().version, before);
    // The version counter survives too: new writes never reuse a version.
    let after = store.put(&rids[0], b"new").await.unwrap();
    assert!(after > before);
}

/// The schema record of the first layout, written by this test the way schema 1 did: its value
/// `u32 1` sealed with the fixed schema associated data, and every record sealed with
/// `namespace || 0x00 || key` as associated data.
pub async fn write_v1_store<S: Store>(
    backend: &S,
    store_key: &StoreKey,
    records: &[(RecordId, Vec<u8>)],
) {
    let mut rng = chacha20::ChaCha20Rng::seed_from_u64(1);
    let k = AeadKey::new(store_key.secret_bytes().clone());
    let mut ops = vec![Op::Put {
        id: id_unchecked_schema(),
        sealed: aead::xseal_random(
            &mut rng,
            &k,
            b"sotto/v1/store-schema\0",
            &1u32.to_be_bytes(),
        ),
        expect: Expect::Absent,
    }];
    for (rid, v) in records {
        let mut aad = rid.namespace().as_str().as_bytes().to_vec();
        aad.push(0);
        aad.extend_from_slice(rid.key());
        ops.push(Op::Put {
            id: rid.clone(),
            sealed: aead::xseal_random(&mut rng, &k, &aad, v),
            expect: Expect::Absent,
        });
    }
    backend.commit(ops).await.unwrap();
}

fn id_unchecked_schema() -> RecordId {
    id("sotto.meta", b"schema")
}

fn v1_records() -> Vec<(RecordId, Vec<u8>)> {
    let mut out = vec![
        (id("device", b""), b"device secrets".to_vec()),
        (id("team.keys", &[7; 16]), vec![1; 64]),
        (id("chain.send", &[9; 53]), vec![2; 91]),
        (id("msg", &[]), Vec::new()),
    ];
    for i in 0u32..50 {
        out.push((id("epoch", &i.to_be_bytes()), i.to_be_bytes().repeat(8)));
    }
    out
}

pub async fn migrates_a_v1_store<H: Harness>(h: &mut H) {
    let backend = h.fresh().await;
    let records = v1_records();
    write_v1_store(&backend, &key(1), &records).await;
    let before: Vec<Version> = {
        let mut v = Vec::new();
        for (rid, _) in &records {
            v.push(backend.get(rid).await.unwrap().unwrap().version);
        }
        v
    };
    // Reopened as by a newer app version.
    drop(backend);
    let store = EncryptedStore::open(h.reopen().await, key(1))
        .await
        .unwrap();
    // The schema record now names the current schema.
    let schema = store
        .backend()
        .get(&id_unchecked_schema())
        .await
        .unwrap()
        .unwrap();
    let k = AeadKey::new(key(1).secret_bytes().clone());
    let plain = aead::xopen_random(&k, b"sotto/v1/store-schema\0", &schema.sealed).unwrap();
    assert_eq!(plain, sotto_client::store::CURRENT_SCHEMA.to_be_bytes());
    assert_eq!(sotto_client::store::CURRENT_SCHEMA, 2);
    for ((rid, v), old) in records.iter().zip(&before) {
        let e = store.get(rid).await.unwrap().unwrap();
        assert_eq!(e.value.as_slice(), v.as_slice(), "{rid:?}");
        assert!(e.version > *old, "re-sealed records get new versions");
    }
    let listed = store.list(&ns("epoch"), &Query::default()).await.unwrap();
    assert_eq!(listed.len(), 50);
    // Opening again finds the current schema and rewrites nothing.
    let sealed_before = store.backend().get(&records[0].0).await.unwrap().unwrap();
    drop(store);
    let store = EncryptedStore::open(h.reopen().await, key(1))
        .await
        .unwrap();
    assert_eq!(
        store.backend().get(&records[0].0).await.unwrap().unwrap(),
        sealed_before
    );
    // And the migrated store is written the current way: the v1 associated data no longer
    // opens its values.
    let mut aad = b"device".to_vec();
    aad.push(0);
    let k = AeadKey::new(key(1).secret_bytes().clone());
    assert!(aead::xopen_random(&k, &aad, &sealed_before.sealed).is_err());
}

pub async fn failed_migration_changes_nothing<H: Harness>(h: &mut H) {
    let backend = h.fresh().await;
    let records = v1_records();
    write_v1_store(&backend, &key(1), &records).await;
    // One doctored value: the migration must fail as a whole.
    let victim = &records[10].0;
    let original = backend.get(victim).await.unwrap().unwrap().sealed;
    let mut doctored = original.clone();
    doctored[30] ^= 0x80;
    put_raw(&backend, victim, doctored).await;
    let mut snapshot = Vec::new();
    for (rid, _) in &records {
        snapshot.push(backend.get(rid).await.unwrap().unwrap());
    }
    let schema_before = backend.get(&id_unchecked_schema()).await.unwrap().unwrap();
    let err = EncryptedStore::open(backend, key(1)).await.unwrap_err();
    assert_eq!(
        err,
        Error::Tampered {
            namespace: "epoch".into()
        }
    );
    // Nothing changed: every record and the schema record are as they were.
    let backend = h.reopen().await;
    for ((rid, _), before) in records.iter().zip(&snapshot) {
        assert_eq!(&backend.get(rid).await.unwrap().unwrap(), before);
    }
    assert_eq!(
        backend.get(&id_unchecked_schema()).await.unwrap().unwrap(),
        schema_before
    );
    // With the value repaired, the migration goes through.
    put_raw(&backend, victim, original).await;
    let store = EncryptedStore::open(backend, key(1)).await.unwrap();
    assert_eq!(value(&store, victim).await.unwrap(), records[10].1);
}

pub async fn schema_too_new_and_corrupt_are_refused<H: Harness>(h: &mut H) {
    // A schema record from the future.
    let backend = h.fresh().await;
    let mut rng = chacha20::ChaCha20Rng::seed_from_u64(2);
    let k = AeadKey::new(key(1).secret_bytes().clone());
    put_raw(
        &backend,
        &id_unchecked_schema(),
        aead::xseal_random(
            &mut rng,
            &k,
            b"sotto/v1/store-schema\0",
            &99u32.to_be_bytes(),
        ),
    )
    .await;
    let err = EncryptedStore::open(backend, key(1)).await.unwrap_err();
    assert_eq!(err, Error::SchemaTooNew { found: 99 });
    assert_eq!(err.code(), "store_schema_too_new");

    // Records but no schema record.
    let backend = h.fresh().await;
    put_raw(&backend, &id("device", b""), vec![0; 50]).await;
    assert_eq!(
        EncryptedStore::open(backend, key(1))
            .await
            .unwrap_err()
            .code(),
        "store_corrupt"
    );

    // A schema record that decrypts but is malformed, or names version 0.
    for bad in [&[0u8, 2][..], &0u32.to_be_bytes()[..]] {
        let backend = h.fresh().await;
        put_raw(
            &backend,
            &id_unchecked_schema(),
            aead::xseal_random(&mut rng, &k, b"sotto/v1/store-schema\0", bad),
        )
        .await;
        assert_eq!(
            EncryptedStore::open(backend, key(1))
                .await
                .unwrap_err()
                .code(),
            "store_corrupt"
        );
    }
}

/// `workers` tokio tasks each run `rounds` read-modify-write cycles on one record (a counter,
/// and a real sender chain from the core) through `update`. No update is lost and no sender
/// counter is handed out twice.
#[cfg(not(target_arch = "wasm32"))]
pub async fn concurrent_writers_never_interleave<H: Harness>(h: &mut H)
where
    H::Backend: Send + Sync,
{
    use sotto_core::conversation::{ChainId, SenderChain, Stream};
    use sotto_core::device::DeviceId;
    use std::sync::Arc;

    const WORKERS: usize = 6;
    const ROUNDS: usize = 40;

    let store = Arc::new(open(h).await);
    let counter = id("counter", b"c");
    let chain_id = id("chain.send", b"conv/0/dev/durable");
    store.put(&counter, &0u64.to_be_bytes()).await.unwrap();
    let chain = SenderChain::new(
        &SecretBytes::new([5; 32]),
        ChainId {
            conversation: sotto_core::conversation::ConversationId([1; 16]),
            epoch: 0,
            sender: DeviceId([2; 32]),
            instance: sotto_core::conversation::Instance([3; 8]),
            stream: Stream::Durable,
        },
    );
    store.put(&chain_id, &chain.export()).await.unwrap();

    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let store = Arc::clone(&store);
        let (counter, chain_id) = (counter.clone(), chain_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut counters = Vec::new();
            for _ in 0..ROUNDS {
                store
                    .update(&counter, |cur| {
                        let cur = cur.ok_or(Error::Corrupt("missing"))?;
                        let n = u64::from_be_bytes(cur.value.as_slice().try_into().unwrap());
                        Ok((Update::Put((n + 1).to_be_bytes().to_vec().into()), ()))
                    })
                    .await
                    .unwrap();
                let c = store
                    .update(&chain_id, |cur| {
                        let cur = cur.ok_or(Error::Corrupt("missing"))?;
                        let mut chain = SenderChain::import(&cur.value)?;
                        let (counter, _message_key) = chain.next_message_key()?;
                        Ok((Update::Put(chain.export()), counter))
                    })
                    .await
                    .unwrap();
                counters.push(c);
            }
            counters
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let total = (WORKERS * ROUNDS) as u64;
    let n = store.get(&counter).await.unwrap().unwrap().value;
    assert_eq!(u64::from_be_bytes(n.as_slice().try_into().unwrap()), total);
    all.sort_unstable();
    assert_eq!(
        all,
        (0..total as u32).collect::<Vec<_>>(),
        "every counter exactly once"
    );
    let chain = SenderChain::import(&store.get(&chain_id).await.unwrap().unwrap().value).unwrap();
    assert_eq!(u64::from(chain.next_counter()), total);
}

/// Raw concurrent compare-and-swap: of writers that all read the same version, exactly one
/// commits; the others fail with a conflict and leave no trace.
#[cfg(not(target_arch = "wasm32"))]
pub async fn concurrent_stale_writers_fail<H: Harness>(h: &mut H)
where
    H::Backend: Send + Sync,
{
    use std::sync::Arc;
    let store = Arc::new(open(h).await);
    let rid = id("chain.send", b"x");
    for round in 0..10u8 {
        let v = store.put(&rid, &[round]).await.unwrap();
        let mut tasks = Vec::new();
        for w in 0..4u8 {
            let store = Arc::clone(&store);
            let rid = rid.clone();
            tasks.push(tokio::spawn(async move {
                let mut txn = Transaction::new();
                txn.put(rid, &[round, w], Expect::Version(v));
                store.commit(txn).await.map(|_| w)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(w) => winners.push(w),
                Err(e) => assert!(e.is_conflict(), "{e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one writer wins");
        assert_eq!(value(&store, &rid).await.unwrap(), vec![round, winners[0]]);
    }
}

/// Runs the futures concurrently on the current task and returns their outputs in order. Each
/// poll polls every unfinished future, so their awaits interleave (no runtime needed).
pub async fn join_all<F: core::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    use core::task::Poll;
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    core::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

/// Concurrent read-modify-write cycles interleaved on one task (as in a browser tab): every
/// worker increments a counter and takes sender-chain counters through `update`. No update is
/// lost and no sender counter is handed out twice.
pub async fn interleaved_writers_never_interleave<H: Harness>(h: &mut H) {
    use sotto_core::conversation::{ChainId, SenderChain, Stream};
    use sotto_core::device::DeviceId;

    const WORKERS: usize = 4;
    const ROUNDS: usize = 12;

    let store = open(h).await;
    let counter = id("counter", b"c");
    let chain_id = id("chain.send", b"conv/0/dev/durable");
    store.put(&counter, &0u64.to_be_bytes()).await.unwrap();
    let chain = SenderChain::new(
        &SecretBytes::new([5; 32]),
        ChainId {
            conversation: sotto_core::conversation::ConversationId([1; 16]),
            epoch: 0,
            sender: DeviceId([2; 32]),
            instance: sotto_core::conversation::Instance([3; 8]),
            stream: Stream::Durable,
        },
    );
    store.put(&chain_id, &chain.export()).await.unwrap();

    let worker = |_| {
        let (store, counter, chain_id) = (&store, &counter, &chain_id);
        async move {
            let mut counters = Vec::new();
            for _ in 0..ROUNDS {
                store
                    .update(counter, |cur| {
                        let cur = cur.ok_or(Error::Corrupt("missing"))?;
                        let n = u64::from_be_bytes(cur.value.as_slice().try_into().unwrap());
                        Ok((Update::Put((n + 1).to_be_bytes().to_vec().into()), ()))
                    })
                    .await
                    .unwrap();
                let c = store
                    .update(chain_id, |cur| {
                        let cur = cur.ok_or(Error::Corrupt("missing"))?;
                        let mut chain = SenderChain::import(&cur.value)?;
                        let (counter, _message_key) = chain.next_message_key()?;
                        Ok((Update::Put(chain.export()), counter))
                    })
                    .await
                    .unwrap();
                counters.push(c);
            }
            counters
        }
    };
    let mut all: Vec<u32> = join_all((0..WORKERS).map(worker).collect())
        .await
        .into_iter()
        .flatten()
        .collect();
    let total = (WORKERS * ROUNDS) as u64;
    let n = store.get(&counter).await.unwrap().unwrap().value;
    assert_eq!(u64::from_be_bytes(n.as_slice().try_into().unwrap()), total);
    all.sort_unstable();
    assert_eq!(
        all,
        (0..total as u32).collect::<Vec<_>>(),
        "every counter exactly once"
    );
}

/// Compare-and-swap with interleaved writers: of writers that all read the same version,
/// exactly one commits; the others fail with a conflict and leave no trace.
pub async fn interleaved_stale_writers_fail<H: Harness>(h: &mut H) {
    let store = open(h).await;
    let rid = id("chain.send", b"x");
    for round in 0..5u8 {
        let v = store.put(&rid, &[round]).await.unwrap();
        let attempts = (0..4u8).map(|w| {
            let (store, rid) = (&store, rid.clone());
            async move {
                let mut txn = Transaction::new();
                txn.put(rid, &[round, w], Expect::Version(v));
                store.commit(txn).await.map(|_| w)
            }
        });
        let mut winners = Vec::new();
        for outcome in join_all(attempts.collect()).await {
            match outcome {
                Ok(w) => winners.push(w),
                Err(e) => assert!(e.is_conflict(), "{e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one writer wins");
        assert_eq!(value(&store, &rid).await.unwrap(), vec![round, winners[0]]);
    }
}

/// One `#[tokio::test]` per suite function for a backend.
#[macro_export]
macro_rules! suite_tests {
    ($harness:expr) => {
        use $crate::common::suite;

        #[tokio::test]
        async fn round_trip() {
            suite::round_trip(&mut $harness).await;
        }
        #[tokio::test]
        async fn tampering_is_detected() {
            suite::tampering_is_detected(&mut $harness).await;
        }
        #[tokio::test]
        async fn moved_values_are_detected() {
            suite::moved_values_are_detected(&mut $harness).await;
        }
        #[tokio::test]
        async fn wrong_key_is_refused() {
            suite::wrong_key_is_refused(&mut $harness).await;
        }
        #[tokio::test]
        async fn transactions_are_all_or_nothing() {
            suite::transactions_are_all_or_nothing(&mut $harness).await;
        }
        #[tokio::test]
        async fn version_conflicts() {
            suite::version_conflicts(&mut $harness).await;
        }
        #[tokio::test]
        async fn prefix_listing() {
            suite::prefix_listing(&mut $harness).await;
        }
        #[tokio::test]
        async fn persists_across_reopen() {
            suite::persists_across_reopen(&mut $harness).await;
        }
        #[tokio::test]
        async fn migrates_a_v1_store() {
            suite::migrates_a_v1_store(&mut $harness).await;
        }
        #[tokio::test]
        async fn failed_migration_changes_nothing() {
            suite::failed_migration_changes_nothing(&mut $harness).await;
        }
        #[tokio::test]
        async fn schema_too_new_and_corrupt_are_refused() {
            suite::schema_too_new_and_corrupt_are_refused(&mut $harness).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_writers_never_interleave() {
            suite::concurrent_writers_never_interleave(&mut $harness).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_stale_writers_fail() {
            suite::concurrent_stale_writers_fail(&mut $harness).await;
        }
        #[tokio::test]
        async fn interleaved_writers_never_interleave() {
            suite::interleaved_writers_never_interleave(&mut $harness).await;
        }
        #[tokio::test]
        async fn interleaved_stale_writers_fail() {
            suite::interleaved_stale_writers_fail(&mut $harness).await;
        }
    };
}

/// One `#[wasm_bindgen_test]` per runtime-agnostic suite function for a backend in the browser.
#[macro_export]
macro_rules! web_suite_tests {
    ($harness:expr) => {
        use wasm_bindgen_test::wasm_bindgen_test;
        use $crate::common::suite;

        #[wasm_bindgen_test]
        async fn round_trip() {
            suite::round_trip(&mut $harness).await;
        }
        #[wasm_bindgen_test]
        async fn tampering_is_detected() {
            suite::tampering_is_detected(&mut $harness).await;
        }
        #[wasm_bindgen_test]
        async fn moved_values_are_detected() {
            suite::moved_values_are_detected(&mut $harness).await;
        }
        #[wasm_bindgen_test]
        async fn wrong_key_is_refused() {
            suite::wrong_key_is_refused(&mut $harness).await;
        }
        #[wasm_bindgen_test]
        async fn transactions_are_all_or_nothing() {
            suite::transactions_are_all_or_nothing(&mut $harness).await;
        }
        #[wasm_bindgen_test]
        async fn version_conflicts() {
            suite::version_conflicts(&mut $harness).await;
        }
        #[wasm_bindgen_test]
        async fn prefix_listing() {
            suite::prefix_listing(&mut $harness).await;
        }
        #[wasm_bindgen_test]
        async fn persists_across_reopen() {
            suite::persists_across_reopen(&mut $harness).await;
        }
        #[wasm_bindgen_test]
        async fn migrates_a_v1_store() {
            suite::migrates_a_v1_store(&mut $harness).await;
        }
        #[wasm_bindgen_test]
        async fn failed_migration_changes_nothing() {
            suite::failed_migration_changes_nothing(&mut $harness).await;
        }
        #[wasm_bindgen_test]
        async fn schema_too_new_and_corrupt_are_refused() {
            suite::schema_too_new_and_corrupt_are_refused(&mut $harness).await;
        }
        #[wasm_bindgen_test]
        async fn interleaved_writers_never_interleave() {
            suite::interleaved_writers_never_interleave(&mut $harness).await;
        }
        #[wasm_bindgen_test]
        async fn interleaved_stale_writers_fail() {
            suite::interleaved_stale_writers_fail(&mut $harness).await;
        }
    };
}
