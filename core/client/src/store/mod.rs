//! The client's local store: namespaced records, every value encrypted, updated by atomic
//! compare-and-swap transactions.
//!
//! # Layers
//!
//! - [`Store`] is the contract of a storage backend: records of opaque sealed bytes, each with a
//!   [`Version`], read one by one or by key prefix, and changed only by [`Store::commit`], which
//!   applies a batch of [`Op`]s all-or-nothing after checking each op's [`Expect`]ation.
//!   Backends: [`MemoryStore`] (tests, ephemeral visitors, every target), [`SqliteStore`]
//!   (native, feature `sqlite`), and `IndexedDbStore` (browsers, feature `indexeddb`, with the
//!   store key wrapped by a non-extractable WebCrypto key and one writing tab elected with Web
//!   Locks). A backend never sees plaintext and never needs the key.
//! - [`EncryptedStore`] is what the client uses. It seals every value with the store key
//!   (XChaCha20-Poly1305 with a random nonce and the record id as associated data, through
//!   [`sotto_core::crypto::aead`]), checks the key when it opens a store, and migrates stores
//!   written by older versions. Encryption lives in this one place, so every backend gets it
//!   identically and the shared test suite checks it against each.
//!
//! # Async, native and wasm32
//!
//! The trait's methods return `impl Future + MaybeSend`, where [`MaybeSend`] is `Send` on native
//! targets and no bound on wasm32. Backends implement them with plain `async fn`. Compared with
//! `async fn` in the trait, this states the `Send` bound that a multi-threaded runtime
//! (`tokio::spawn`) needs on native, without forcing it on the browser, where IndexedDB futures
//! hold JS values that are not `Send`; compared with boxed futures, nothing is allocated per
//! call. The price is that the trait is not object-safe: the client is generic over its backend
//! (bindings pick one concrete backend per target).
//!
//! # Versions and concurrency
//!
//! Every write of a record gives it a new [`Version`] from a store-wide counter that only grows,
//! so a version is never reused, not even after a delete and a re-create (no ABA). A writer that
//! read version `v` and commits with [`Expect::Version`]`(v)` either wins, or fails with
//! [`Error::Conflict`] because someone else wrote first; its whole transaction is then not
//! applied. State that must never fork, such as a sender chain (two messages under one counter
//! would reuse a message key and nonce), is only ever changed this way:
//! [`EncryptedStore::update`] re-reads and retries on conflict.
//!
//! # What the store reveals
//!
//! To anyone who can read the backend (the SQLite file, the browser profile) but lacks the key:
//!
//! - **record ids in clear**: namespaces and keys. Keys must therefore be built only from random
//!   identifiers, counters and fixed labels (a conversation id, a device id, a big-endian
//!   sequence number), never from content: no names, e-mail addresses, message text, customer
//!   ids or anything a person typed. Ids are limited in length ([`MAX_KEY_LEN`]).
//! - **sizes**: a sealed value is its plaintext plus 40 bytes (24-byte nonce, 16-byte tag).
//!   Callers that store variable-length content pad it first (messages are stored as their
//!   padded wire ciphertexts).
//! - **counts and activity**: how many records each namespace holds, and through the versions
//!   the order and number of writes (the store-wide counter), plus file timestamps.
//!
//! Not provided: detection of a rollback of the whole store, or of one record to an earlier
//! value it really had (both are authentic ciphertexts under the right id), or of a deleted
//! record. Such an attacker has write access to the device's storage, which is the compromised
//! endpoint of the threat model (DESIGN 2). Deleted values no longer exist for the store; the
//! SQLite backend also overwrites their pages (`secure_delete`).

mod encrypted;
#[cfg(all(feature = "indexeddb", target_arch = "wasm32", target_os = "unknown"))]
mod indexeddb;
mod memory;
mod schema;
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
mod sqlite;

use core::fmt;
use core::future::Future;

pub use encrypted::{EncryptedStore, Entry, StoreKey, Transaction, Update};
#[cfg(all(feature = "indexeddb", target_arch = "wasm32", target_os = "unknown"))]
pub use indexeddb::IndexedDbStore;
pub use memory::MemoryStore;
pub use schema::CURRENT_SCHEMA;
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
pub use sqlite::SqliteStore;

use crate::{Error, Result};

/// Longest namespace, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 64;
/// Longest record key, in bytes.
pub const MAX_KEY_LEN: usize = 256;
/// Largest plaintext value.
pub const MAX_VALUE_LEN: usize = 16 * 1024 * 1024;
/// What sealing adds to a value: the 24-byte nonce and the 16-byte tag.
pub const SEAL_OVERHEAD: usize =
    sotto_core::crypto::aead::XNONCE_LEN + sotto_core::crypto::aead::TAG_LEN;
/// Largest sealed value a backend may hold; anything longer read from a backend is corrupt.
pub const MAX_SEALED_LEN: usize = MAX_VALUE_LEN + SEAL_OVERHEAD;

/// Namespaces that start with this are the store's own (the schema record).
pub(crate) const RESERVED_PREFIX: &str = "sotto.";

/// `Send` on native targets, where futures may move between threads; nothing on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` on native targets, where futures may move between threads; nothing on wasm32.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` on native targets; nothing on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}
/// `Sync` on native targets; nothing on wasm32.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

/// A group of records of one kind: 1 to 64 bytes of `a-z`, `0-9`, `.`, `-`, `_`.
///
/// Namespaces are chosen by code, not by data. Those starting with `sotto.` are reserved for the
/// store itself.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(String);

impl Namespace {
    /// Checks and wraps a namespace.
    pub fn new(name: &str) -> Result<Self> {
        if name.is_empty() || name.len() > MAX_NAMESPACE_LEN {
            return Err(Error::InvalidRecordId("namespace must be 1 to 64 bytes"));
        }
        if !name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        }) {
            return Err(Error::InvalidRecordId(
                "namespace may only hold a-z, 0-9, '.', '-' and '_'",
            ));
        }
        Ok(Namespace(name.to_owned()))
    }

    /// The namespace as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the namespace is reserved for the store itself.
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with(RESERVED_PREFIX)
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespace({:?})", self.0)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A record's id: its namespace and a key of at most [`MAX_KEY_LEN`] bytes (possibly empty).
///
/// Ids are stored in clear: build keys from random ids, counters and labels only (see the
/// [module documentation](self)). Big-endian fixed-width numbers in keys make prefix listings
/// come back in numeric order.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId {
    namespace: Namespace,
    key: Vec<u8>,
}

impl RecordId {
    /// Checks and builds an id.
    pub fn new(namespace: &Namespace, key: impl Into<Vec<u8>>) -> Result<Self> {
        let key = key.into();
        if key.len() > MAX_KEY_LEN {
            return Err(Error::InvalidRecordId("key longer than 256 bytes"));
        }
        Ok(RecordId {
            namespace: namespace.clone(),
            key,
        })
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({}/", self.namespace)?;
        for b in &self.key {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// The version of a stored record: a value of the store-wide write counter, starting at 1.
/// Every write gives the record a version no record of the store has had before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(pub u64);

/// What a transaction expects of a record before it is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// No check.
    Any,
    /// The record must not exist.
    Absent,
    /// The record must exist with exactly this version.
    Version(Version),
}

impl Expect {
    /// Whether a record currently at `current` (`None`: absent) meets the expectation.
    pub fn is_met_by(self, current: Option<Version>) -> bool {
        match self {
            Expect::Any => true,
            Expect::Absent => current.is_none(),
            Expect::Version(v) => current == Some(v),
        }
    }
}

/// A record as a backend holds it: its version and its sealed value.
#[derive(Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// The record's version.
    pub version: Version,
    /// `nonce || ciphertext || tag`, as [`sotto_core::crypto::aead::xseal_random`] makes it.
    pub sealed: Vec<u8>,
}

impl fmt::Debug for RawRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRecord")
            .field("version", &self.version)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

/// One change of a batch given to [`Store::commit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Writes a sealed value; the record gets the batch's new version.
    Put {
        /// The record.
        id: RecordId,
        /// The sealed value.
        sealed: Vec<u8>,
        /// The check made before the batch is applied.
        expect: Expect,
    },
    /// Deletes a record (deleting an absent record is not an error unless `expect` says so).
    Delete {
        /// The record.
        id: RecordId,
        /// The check made before the batch is applied.
        expect: Expect,
    },
    /// Changes nothing, but the batch applies only if the check holds: a read made during the
    /// transaction is still current when it commits.
    Check {
        /// The record.
        id: RecordId,
        /// The check.
        expect: Expect,
    },
}

impl Op {
    /// The record the op is about.
    pub fn id(&self) -> &RecordId {
        match self {
            Op::Put { id, .. } | Op::Delete { id, .. } | Op::Check { id, .. } => id,
        }
    }

    /// The op's check.
    pub fn expect(&self) -> Expect {
        match self {
            Op::Put { expect, .. } | Op::Delete { expect, .. } | Op::Check { expect, .. } => {
                *expect
            }
        }
    }
}

/// Which records of a namespace [`Store::list`] returns, and in which order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Only keys that start with these bytes (empty: every key).
    pub prefix: Vec<u8>,
    /// Only keys strictly after this one in the listing's order: the last key of the previous
    /// page, for paging.
    pub after: Option<Vec<u8>>,
    /// At most this many records (`None`: no limit).
    pub limit: Option<u32>,
    /// Largest key first (newest first, for keys ending in a big-endian sequence number).
    pub descending: bool,
}

impl Query {
    /// Every key that starts with `prefix`, in ascending order.
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        Query {
            prefix: prefix.into(),
            ..Query::default()
        }
    }

    /// Continues after `key` (exclusive).
    #[must_use]
    pub fn after(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.after = Some(key.into());
        self
    }

    /// Returns at most `n` records.
    #[must_use]
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    /// Lists largest key first.
    #[must_use]
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    /// Whether `key` is selected by the prefix and the `after` bound (not the limit).
    pub fn matches(&self, key: &[u8]) -> bool {
        if !key.starts_with(&self.prefix) {
            return false;
        }
        match &self.after {
            None => true,
            Some(after) if self.descending => key < after.as_slice(),
            Some(after) => key > after.as_slice(),
        }
    }
}

/// The smallest byte string greater than every string that starts with `prefix`, or `None` if
/// there is none (an empty prefix, or one of only `0xFF` bytes). Backends use it as the exclusive
/// upper bound of a prefix range.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A storage backend: sealed records with versions, changed only by atomic, checked batches.
///
/// Contract (the shared test suite checks it for every backend):
///
/// - [`get`](Store::get) and [`list`](Store::list) return what the last committed batch left;
///   `list` returns the keys of one namespace that match the [`Query`], in byte order of the
///   keys (reversed if `descending`), at most `limit` of them.
/// - [`commit`](Store::commit) checks every op's [`Expect`] against the state before the batch;
///   if any fails it changes nothing and returns [`Error::Conflict`] naming that op's namespace.
///   Otherwise it applies every op, all or nothing, even across a crash, and returns the batch's
///   version: one more than the highest version the store has ever given out, which every put of
///   the batch gets (a batch without puts takes no version and returns the highest one given
///   out). A batch that names a record twice is [`Error::DuplicateRecord`].
///   Commits are serializable: two commits never interleave.
/// - [`namespaces`](Store::namespaces) lists the namespaces that hold at least one record.
///
/// Backends store what they are given and never interpret the sealed bytes.
pub trait Store: MaybeSend + MaybeSync {
    /// One record, if it exists.
    fn get(&self, id: &RecordId) -> impl Future<Output = Result<Option<RawRecord>>> + MaybeSend;

    /// The records of `namespace` selected by `query`, as `(key, record)` pairs.
    fn list(
        &self,
        namespace: &Namespace,
        query: &Query,
    ) -> impl Future<Output = Result<Vec<(Vec<u8>, RawRecord)>>> + MaybeSend;

    /// The namespaces that hold records, in byte order.
    fn namespaces(&self) -> impl Future<Output = Result<Vec<Namespace>>> + MaybeSend;

    /// Applies a batch atomically if all its checks hold.
    fn commit(&self, ops: Vec<Op>) -> impl Future<Output = Result<Version>> + MaybeSend;
}

/// Fails with [`Error::DuplicateRecord`] if two ops name the same record. For backends.
pub fn check_distinct(ops: &[Op]) -> Result<()> {
    check_distinct_ids(ops.iter().map(Op::id).collect())
}

pub(crate) fn check_distinct_ids(mut ids: Vec<&RecordId>) -> Result<()> {
    ids.sort_unstable();
    if ids.windows(2).any(|w| w.first() == w.get(1)) {
        return Err(Error::DuplicateRecord);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_checked() {
        assert!(Namespace::new("chain.send").is_ok());
        assert!(Namespace::new("a-b_c.9").is_ok());
        for bad in ["", "Caps", "with space", "slash/", "é", &"x".repeat(65)] {
            assert_eq!(
                Namespace::new(bad).unwrap_err().code(),
                "store_invalid_record_id",
                "{bad:?}"
            );
        }
        assert!(Namespace::new("sotto.meta").unwrap().is_reserved());
        assert!(!Namespace::new("sottox").unwrap().is_reserved());
    }

    #[test]
    fn keys_are_bounded() {
        let ns = Namespace::new("n").unwrap();
        assert!(RecordId::new(&ns, vec![0; MAX_KEY_LEN]).is_ok());
        assert!(RecordId::new(&ns, vec![]).is_ok());
        assert!(RecordId::new(&ns, vec![0; MAX_KEY_LEN + 1]).is_err());
    }

    #[test]
    fn prefix_successor_is_the_exclusive_upper_bound() {
        assert_eq!(prefix_successor(b""), None);
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[1, 0xff]), Some(vec![2]));
    }

    #[test]
    fn query_matches() {
        let q = Query::prefix(vec![1]).after(vec![1, 5]);
        assert!(q.matches(&[1, 6]));
        assert!(!q.matches(&[1, 5]));
        assert!(!q.matches(&[2, 6]));
        let q = q.descending();
        assert!(q.matches(&[1, 4]));
        assert!(q.matches(&[1]));
        assert!(!q.matches(&[1, 6]));
    }

    #[test]
    fn duplicates_in_a_batch_are_refused() {
        let ns = Namespace::new("n").unwrap();
        let a = RecordId::new(&ns, b"a".to_vec()).unwrap();
        let ops = vec![
            Op::Check {
                id: a.clone(),
                expect: Expect::Any,
            },
            Op::Delete {
                id: a,
                expect: Expect::Any,
            },
        ];
        assert_eq!(check_distinct(&ops), Err(Error::DuplicateRecord));
    }
}
