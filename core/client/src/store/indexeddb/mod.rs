//! The IndexedDB backend (wasm32 in a browser, feature `indexeddb`).
//!
//! # Layout (IndexedDB database version 1)
//!
//! | object store | key                                   | value                              |
//! |--------------|---------------------------------------|------------------------------------|
//! | `record`     | `[namespace, Uint8Array(key)]`        | `Uint8Array(version_be64 ‖ sealed)` |
//! | `meta`       | `"last_version"`                      | `Uint8Array(version_be64)`          |
//! | `key`        | `"store"`                             | the wrapped store key (`key_wrap`)  |
//!
//! Array keys sort element by element and binary keys byte by byte, so the records of a
//! namespace are one contiguous key range in the byte order of their keys, as the [`Store`]
//! contract lists them; a namespace is ASCII, so its string order is its byte order. The key
//! `[namespace, []]` (an array sorts after every binary key) closes a namespace's range.
//!
//! # Transactions
//!
//! A commit is one read-write IndexedDB transaction over `record` and `meta`: it reads the
//! version of every record the batch names and the counter, checks the expectations, and then
//! writes, or aborts without writing. The browser runs read-write transactions with overlapping
//! scopes one after another, so commits are serializable, within a tab and across tabs. Commits
//! use `strict` durability (see `request::transaction`). Reads run in read-only transactions
//! and see a committed state.
//!
//! # One writer, and followers
//!
//! [`IndexedDbStore::open`] takes the store's writer lock (Web Locks) if it is free; otherwise
//! the handle *follows*: it reads what the writer commits and its commits fail with
//! [`Error::ReadOnly`]. [`IndexedDbStore::wait_for_writer`] waits for the lock, which the
//! browser hands over when the writing tab releases it or goes away; meanwhile
//! [`IndexedDbStore::wait_for_change`] tells the follower when the writer committed (a
//! `BroadcastChannel` message without content). The lock guarantees a
//! single writing client (one sender-chain owner, one network connection); the CAS checks of
//! the commit would keep the store consistent even without it.
//!
//! # Reading untrusted data
//!
//! Whatever the profile's database holds is checked before it is copied into wasm memory:
//! a value longer than [`MAX_SEALED_LEN`] plus the version, a key longer than [`MAX_KEY_LEN`],
//! a malformed namespace or a zero version is [`Error::Corrupt`], never a panic or a large
//! allocation.

mod changes;
mod key_wrap;
mod request;
mod writer_lock;

use core::cell::RefCell;
use core::fmt;
use std::rc::Rc;

use js_sys::{Array, ArrayBuffer, Uint8Array};
use wasm_bindgen::prelude::*;
use web_sys::{
    CryptoKey, IdbCursor, IdbCursorDirection, IdbCursorWithValue, IdbDatabase, IdbFactory,
    IdbKeyRange, IdbObjectStore, IdbOpenDbRequest, IdbRequest, IdbVersionChangeEvent,
};

use self::changes::ChangeFeed;
use self::request::{Mode, get, js_error, transaction, wait};
use self::writer_lock::WriterLock;
use super::{
    MAX_KEY_LEN, MAX_SEALED_LEN, Namespace, Op, Query, RawRecord, RecordId, Store, StoreKey,
    Version, check_distinct, prefix_successor,
};
use crate::{Error, Result};

/// The physical layout version (the IndexedDB database version).
const LAYOUT_VERSION: u32 = 1;
const RECORD_STORE: &str = "record";
const META_STORE: &str = "meta";
const KEY_STORE: &str = "key";
const LAST_VERSION: &str = "last_version";
const STORE_KEY_RECORD: &str = "store";
const VERSION_LEN: usize = 8;

/// A [`Store`] in an IndexedDB database of the page's origin.
///
/// Clones are handles on the same connection and share its writer role. Dropping the last one
/// closes the connection and releases the writer lock.
#[derive(Clone)]
pub struct IndexedDbStore {
    inner: Rc<Inner>,
}

struct Inner {
    db: IdbDatabase,
    name: String,
    writer: RefCell<Option<WriterLock>>,
    changes: ChangeFeed,
    /// Closes this connection when another one upgrades the layout, so the upgrade is not
    /// blocked by an old tab; this connection's requests then fail with a backend error.
    _on_version_change: Closure<dyn FnMut()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.db.set_onversionchange(None);
        self.db.close();
        // Released after the close, so the next writer's connection never overlaps ours.
        self.writer.borrow_mut().take();
    }
}

impl fmt::Debug for IndexedDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexedDbStore")
            .field("database", &self.inner.name)
            .field("writer", &self.is_writer())
            .finish()
    }
}

fn factory() -> Result<IdbFactory> {
    get(&js_sys::global(), "indexedDB")?
        .dyn_into()
        .map_err(|_| Error::Backend("IndexedDB is not available".into()))
}

impl IndexedDbStore {
    /// Opens (creating if needed) the database `database` of this origin, and takes the
    /// store's writer lock if no other tab or worker holds it (see [`IndexedDbStore::is_writer`]).
    pub async fn open(database: &str) -> Result<Self> {
        let db = open_database(database).await?;
        let closing = db.clone();
        let on_version_change = Closure::<dyn FnMut()>::new(move || closing.close());
        db.set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
        let store = IndexedDbStore {
            inner: Rc::new(Inner {
                db,
                name: database.to_owned(),
                writer: RefCell::new(None),
                changes: ChangeFeed::open(database)?,
                _on_version_change: on_version_change,
            }),
        };
        let lock = writer_lock::acquire(database, false).await?;
        *store.inner.writer.borrow_mut() = lock;
        Ok(store)
    }

    /// The database name.
    pub fn database(&self) -> &str {
        &self.inner.name
    }

    /// Whether this handle holds the writer lock and may commit.
    pub fn is_writer(&self) -> bool {
        self.inner.writer.borrow().is_some()
    }

    /// Waits until this handle holds the writer lock: at once if it does, else when the tab or
    /// worker that holds it releases it or goes away. Dropping the future gives up the wait.
    pub async fn wait_for_writer(&self) -> Result<()> {
        if self.is_writer() {
            return Ok(());
        }
        let lock = writer_lock::acquire(&self.inner.name, true).await?;
        let mut writer = self.inner.writer.borrow_mut();
        // Another wait on a clone of this handle may have finished first; the extra lock, if
        // any, is released when `lock` drops.
        if writer.is_none() {
            *writer = lock;
        }
        if writer.is_none() {
            return Err(Error::Backend("the writer lock was not granted".into()));
        }
        Ok(())
    }

    /// Completes when another handle on this database (a writer in another tab, typically)
    /// has committed since the call: a follower's cue to re-read what it shows. Commits of this
    /// handle do not count.
    pub async fn wait_for_change(&self) {
        self.inner.changes.next().await;
    }

    /// The store key of this database: created on first use and saved wrapped by a
    /// non-extractable WebCrypto key, then unwrapped on every later open (see the `key_wrap`
    /// module). Any handle may call it, writer or follower; concurrent first calls from several
    /// tabs agree on one key.
    pub async fn store_key(&self) -> Result<StoreKey> {
        key_wrap::load_or_create(&self.inner.db).await
    }

    /// The WebCrypto key that wraps the store key (`None` before [`IndexedDbStore::store_key`]
    /// first ran): a key object whose bytes script cannot read.
    pub async fn wrapping_key(&self) -> Result<Option<CryptoKey>> {
        key_wrap::wrapping_key(&self.inner.db).await
    }

    /// Deletes a database and everything in it, key included. Waits while other connections
    /// to it are open (they are asked to close).
    pub async fn delete(database: &str) -> Result<()> {
        let request = factory()?.delete_database(database).map_err(js_error)?;
        wait(&request).await.map(|_| ())
    }

    fn records(&self, mode: Mode) -> Result<(web_sys::IdbTransaction, IdbObjectStore)> {
        let txn = transaction(&self.inner.db, &[RECORD_STORE], mode)?;
        let store = txn.object_store(RECORD_STORE).map_err(js_error)?;
        Ok((txn, store))
    }
}

async fn open_database(name: &str) -> Result<IdbDatabase> {
    let request: IdbOpenDbRequest = factory()?
        .open_with_u32(name, LAYOUT_VERSION)
        .map_err(js_error)?;
    let upgrading = request.clone();
    let on_upgrade =
        Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |event: IdbVersionChangeEvent| {
            if event.old_version() < 1.0 && create_layout(&upgrading).is_err() {
                // The open request then fails with an AbortError.
                if let Some(txn) = upgrading.transaction() {
                    let _ = txn.abort();
                }
            }
        });
    request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let outcome = wait(&request).await;
    request.set_onupgradeneeded(None);
    drop(on_upgrade);
    outcome?
        .dyn_into()
        .map_err(|_| Error::Backend("IndexedDB open returned no database".into()))
}

fn create_layout(request: &IdbOpenDbRequest) -> core::result::Result<(), JsValue> {
    let db: IdbDatabase = request.result()?.dyn_into()?;
    for name in [RECORD_STORE, META_STORE, KEY_STORE] {
        db.create_object_store(name)?;
    }
    Ok(())
}

/// The IndexedDB key of a record.
fn record_key(namespace: &Namespace, key: &[u8]) -> Array {
    Array::of2(
        &JsValue::from_str(namespace.as_str()),
        &Uint8Array::from(key).into(),
    )
}

/// The key after every key of `namespace`.
fn namespace_end(namespace: &Namespace) -> Array {
    Array::of2(&JsValue::from_str(namespace.as_str()), &Array::new().into())
}

fn big_endian(version: u64) -> Uint8Array {
    Uint8Array::from(&version.to_be_bytes()[..])
}

/// The version at the front of a stored value, reading only those 8 bytes.
fn decode_version(value: &JsValue) -> Result<Option<Version>> {
    if value.is_undefined() {
        return Ok(None);
    }
    let bytes: &Uint8Array = value
        .dyn_ref()
        .ok_or(Error::Corrupt("malformed record value"))?;
    if (bytes.length() as usize) < VERSION_LEN {
        return Err(Error::Corrupt("malformed record value"));
    }
    let mut head = [0u8; VERSION_LEN];
    bytes.subarray(0, VERSION_LEN as u32).copy_to(&mut head);
    match u64::from_be_bytes(head) {
        0 => Err(Error::Corrupt("record version out of range")),
        v => Ok(Some(Version(v))),
    }
}

fn decode_record(value: &JsValue) -> Result<Option<RawRecord>> {
    let Some(version) = decode_version(value)? else {
        return Ok(None);
    };
    let bytes: &Uint8Array = value
        .dyn_ref()
        .ok_or(Error::Corrupt("malformed record value"))?;
    let len = bytes.length() as usize;
    if len - VERSION_LEN > MAX_SEALED_LEN {
        return Err(Error::Corrupt("record value too long"));
    }
    let sealed = bytes.subarray(VERSION_LEN as u32, bytes.length()).to_vec();
    Ok(Some(RawRecord { version, sealed }))
}

fn decode_counter(value: &JsValue) -> Result<u64> {
    if value.is_undefined() {
        return Ok(0);
    }
    let bytes: &Uint8Array = value
        .dyn_ref()
        .ok_or(Error::Corrupt("malformed version counter"))?;
    if bytes.length() as usize != VERSION_LEN {
        return Err(Error::Corrupt("malformed version counter"));
    }
    let mut raw = [0u8; VERSION_LEN];
    bytes.copy_to(&mut raw);
    Ok(u64::from_be_bytes(raw))
}

/// A stored key `[namespace, binary]`, checked.
fn decode_key(key: &JsValue) -> Result<(Namespace, Vec<u8>)> {
    const MALFORMED: Error = Error::Corrupt("malformed record key");
    let parts: &Array = key.dyn_ref().ok_or(MALFORMED)?;
    if parts.length() != 2 {
        return Err(MALFORMED);
    }
    let namespace = parts.get(0).as_string().ok_or(MALFORMED)?;
    let namespace = Namespace::new(&namespace).map_err(|_| Error::Corrupt("invalid namespace"))?;
    let binary: ArrayBuffer = parts.get(1).dyn_into().map_err(|_| MALFORMED)?;
    if binary.byte_length() as usize > MAX_KEY_LEN {
        return Err(Error::Corrupt("key too long"));
    }
    Ok((namespace, Uint8Array::new(&binary).to_vec()))
}

/// The IndexedDB key range of a query, or `None` if it selects nothing.
fn query_range(namespace: &Namespace, query: &Query) -> Result<Option<IdbKeyRange>> {
    // Bounds as (bytes or "end of namespace", open).
    let successor = prefix_successor(&query.prefix);
    let (mut lower, mut lower_open) = (query.prefix.clone(), false);
    let (mut upper, mut upper_open) = (successor, true);
    if let Some(after) = &query.after {
        if query.descending {
            if upper.as_ref().is_none_or(|u| after < u) {
                (upper, upper_open) = (Some(after.clone()), true);
            }
        } else if *after >= lower {
            (lower, lower_open) = (after.clone(), true);
        }
    }
    if let Some(u) = &upper
        && (lower > *u || (lower == *u && (lower_open || upper_open)))
    {
        return Ok(None);
    }
    let lower_key = record_key(namespace, &lower);
    let upper_key = match &upper {
        Some(u) => record_key(namespace, u),
        None => namespace_end(namespace),
    };
    IdbKeyRange::bound_with_lower_open_and_upper_open(
        &lower_key, &upper_key, lower_open, upper_open,
    )
    .map(Some)
    .map_err(js_error)
}

/// The checks of a commit, on the reads it made: every op's expectation against the record's
/// current version. Returns the batch's version.
async fn check(ops: &[Op], counter: &IdbRequest, reads: &[IdbRequest]) -> Result<u64> {
    let last_version = decode_counter(&wait(counter).await?)?;
    for (op, read) in ops.iter().zip(reads) {
        let current = decode_version(&wait(read).await?)?;
        if !op.expect().is_met_by(current) {
            return Err(Error::Conflict {
                namespace: op.id().namespace().as_str().to_owned(),
            });
        }
    }
    if ops.iter().any(|op| matches!(op, Op::Put { .. })) {
        last_version
            .checked_add(1)
            .ok_or(Error::Corrupt("version counter exhausted"))
    } else {
        Ok(last_version)
    }
}

impl Store for IndexedDbStore {
    async fn get(&self, id: &RecordId) -> Result<Option<RawRecord>> {
        let (_txn, records) = self.records(Mode::ReadOnly)?;
        let request = records
            .get(&record_key(id.namespace(), id.key()))
            .map_err(js_error)?;
        decode_record(&wait(&request).await?)
    }

    async fn list(
        &self,
        namespace: &Namespace,
        query: &Query,
    ) -> Result<Vec<(Vec<u8>, RawRecord)>> {
        let Some(range) = query_range(namespace, query)? else {
            return Ok(Vec::new());
        };
        let limit = query
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let mut rows = Vec::new();
        if limit == 0 {
            return Ok(rows);
        }
        let direction = if query.descending {
            IdbCursorDirection::Prev
        } else {
            IdbCursorDirection::Next
        };
        let (_txn, records) = self.records(Mode::ReadOnly)?;
        let request = records
            .open_cursor_with_range_and_direction(&range, direction)
            .map_err(js_error)?;
        loop {
            let cursor = wait(&request).await?;
            if cursor.is_null() || cursor.is_undefined() {
                break;
            }
            let cursor: IdbCursorWithValue = cursor
                .dyn_into()
                .map_err(|_| Error::Backend("IndexedDB returned no cursor".into()))?;
            let (found, key) = decode_key(&cursor.key().map_err(js_error)?)?;
            if found != *namespace {
                return Err(Error::Corrupt("record outside its namespace range"));
            }
            if query.matches(&key) {
                let value = cursor.value().map_err(js_error)?;
                let record =
                    decode_record(&value)?.ok_or(Error::Corrupt("record without value"))?;
                rows.push((key, record));
                if rows.len() >= limit {
                    break;
                }
            }
            cursor.continue_().map_err(js_error)?;
        }
        Ok(rows)
    }

    async fn namespaces(&self) -> Result<Vec<Namespace>> {
        let (_txn, records) = self.records(Mode::ReadOnly)?;
        let request = records.open_key_cursor().map_err(js_error)?;
        let mut out: Vec<Namespace> = Vec::new();
        loop {
            let cursor = wait(&request).await?;
            if cursor.is_null() || cursor.is_undefined() {
                break;
            }
            let cursor: IdbCursor = cursor
                .dyn_into()
                .map_err(|_| Error::Backend("IndexedDB returned no cursor".into()))?;
            let (namespace, _) = decode_key(&cursor.key().map_err(js_error)?)?;
            // Skip the rest of this namespace in one step.
            cursor
                .continue_with_key(&namespace_end(&namespace))
                .map_err(js_error)?;
            out.push(namespace);
        }
        Ok(out)
    }

    async fn commit(&self, ops: Vec<Op>) -> Result<Version> {
        check_distinct(&ops)?;
        if !self.is_writer() {
            return Err(Error::ReadOnly);
        }
        let txn = transaction(&self.inner.db, &[RECORD_STORE, META_STORE], Mode::ReadWrite)?;
        let records = txn.object_store(RECORD_STORE).map_err(js_error)?;
        let meta = txn.object_store(META_STORE).map_err(js_error)?;
        let keys: Vec<Array> = ops
            .iter()
            .map(|op| record_key(op.id().namespace(), op.id().key()))
            .collect();

        // Every read first (the browser answers them in order), then the checks.
        let counter = meta
            .get(&JsValue::from_str(LAST_VERSION))
            .map_err(js_error)?;
        let reads = keys
            .iter()
            .map(|key| records.get(key).map_err(js_error))
            .collect::<Result<Vec<_>>>()?;
        // Any failure from here on aborts the transaction, so nothing of the batch is written.
        let version = match check(&ops, &counter, &reads).await {
            Ok(version) => version,
            Err(e) => {
                let _ = txn.abort();
                return Err(e);
            }
        };
        let has_puts = ops.iter().any(|op| matches!(op, Op::Put { .. }));
        let written = (|| -> core::result::Result<(), JsValue> {
            for (op, key) in ops.iter().zip(&keys) {
                match op {
                    Op::Put { sealed, .. } => {
                        let value = Uint8Array::new_with_length(
                            u32::try_from(VERSION_LEN + sealed.len())
                                .map_err(|_| JsValue::from_str("value too long"))?,
                        );
                        value
                            .subarray(0, VERSION_LEN as u32)
                            .copy_from(&version.to_be_bytes());
                        value
                            .subarray(VERSION_LEN as u32, value.length())
                            .copy_from(sealed);
                        records.put_with_key(&value, key)?;
                    }
                    Op::Delete { .. } => {
                        records.delete(key)?;
                    }
                    Op::Check { .. } => {}
                }
            }
            if has_puts {
                meta.put_with_key(&big_endian(version), &JsValue::from_str(LAST_VERSION))?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            let _ = txn.abort();
            return Err(js_error(e));
        }
        request::committed(&txn).await?;
        self.inner.changes.announce();
        Ok(Version(version))
    }
}
