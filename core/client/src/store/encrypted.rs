//! The encrypted view of a backend: what the client reads and writes.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use sotto_core::crypto::aead::{self, AeadKey};
use sotto_core::crypto::secret::SecretBytes;
use zeroize::Zeroizing;

use super::schema::{
    CURRENT_SCHEMA, META_NAMESPACE, SCHEMA_AAD, decode_schema, encode_schema, record_aad, schema_id,
};
use super::{
    Expect, MAX_KEY_LEN, MAX_SEALED_LEN, MAX_VALUE_LEN, Namespace, Op, Query, RawRecord, RecordId,
    Store, Version, check_distinct_ids,
};
use crate::rng::os_rng;
use crate::{Error, Result};

/// How often [`EncryptedStore::update`] re-reads and retries after a conflict before it gives
/// up with [`Error::Conflict`]. Each conflict means another writer succeeded, so this bounds only
/// pathological contention.
const UPDATE_ATTEMPTS: usize = 1000;
/// How often opening retries when another opener initialises or migrates the store at the same
/// time.
const OPEN_ATTEMPTS: usize = 8;

/// The 32-byte key that seals every value of a store. Zeroized on drop, redacted in Debug.
///
/// On native the application keeps it in the platform keychain and passes it in; in browsers
/// `IndexedDbStore::store_key` keeps it wrapped by a non-extractable WebCrypto key.
#[derive(Clone)]
pub struct StoreKey(AeadKey);

impl StoreKey {
    /// Wraps 32 secret bytes, for example read from the keychain.
    pub fn from_bytes(bytes: SecretBytes<32>) -> Self {
        StoreKey(AeadKey::new(bytes))
    }

    /// A key from a slice that must be 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        Ok(StoreKey(AeadKey::from_slice(bytes)?))
    }

    /// A fresh random key from the operating system's RNG, for a new store.
    pub fn generate() -> Result<Self> {
        Ok(StoreKey(AeadKey::generate(&mut os_rng()?)))
    }

    /// The key bytes, to save in the keychain.
    pub fn secret_bytes(&self) -> &SecretBytes<32> {
        self.0.secret_bytes()
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey([redacted])")
    }
}

/// A record's current version and its decrypted value (zeroized on drop, redacted in Debug).
#[derive(Clone)]
pub struct Entry {
    /// The version, to pass back in [`Expect::Version`].
    pub version: Version,
    /// The plaintext value.
    pub value: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("version", &self.version)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// What an [`EncryptedStore::update`] closure decides.
pub enum Update {
    /// Writes this value.
    Put(Zeroizing<Vec<u8>>),
    /// Deletes the record.
    Delete,
    /// Leaves the record as it is (nothing is written).
    Keep,
}

impl fmt::Debug for Update {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Update::Put(_) => "Put([redacted])",
            Update::Delete => "Delete",
            Update::Keep => "Keep",
        })
    }
}

enum Pending {
    Put {
        id: RecordId,
        value: Zeroizing<Vec<u8>>,
        expect: Expect,
    },
    Delete {
        id: RecordId,
        expect: Expect,
    },
    Check {
        id: RecordId,
        expect: Expect,
    },
}

impl Pending {
    fn id(&self) -> &RecordId {
        match self {
            Pending::Put { id, .. } | Pending::Delete { id, .. } | Pending::Check { id, .. } => id,
        }
    }
}

/// A batch of changes applied all-or-nothing by [`EncryptedStore::commit`]. Values are held in
/// buffers zeroized on drop and sealed at commit.
#[derive(Default)]
pub struct Transaction {
    ops: Vec<Pending>,
}

impl Transaction {
    /// An empty transaction.
    pub fn new() -> Self {
        Transaction::default()
    }

    /// Writes `value` to `id` if `expect` holds.
    pub fn put(&mut self, id: RecordId, value: &[u8], expect: Expect) -> &mut Self {
        self.ops.push(Pending::Put {
            id,
            value: Zeroizing::new(value.to_vec()),
            expect,
        });
        self
    }

    /// Deletes `id` if `expect` holds.
    pub fn delete(&mut self, id: RecordId, expect: Expect) -> &mut Self {
        self.ops.push(Pending::Delete { id, expect });
        self
    }

    /// Requires `expect` of `id` without changing it.
    pub fn check(&mut self, id: RecordId, expect: Expect) -> &mut Self {
        self.ops.push(Pending::Check { id, expect });
        self
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the transaction has no ops.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.ops.iter().map(|op| match op {
                Pending::Put { id, expect, .. } => format!("put {id:?} {expect:?}"),
                Pending::Delete { id, expect } => format!("delete {id:?} {expect:?}"),
                Pending::Check { id, expect } => format!("check {id:?} {expect:?}"),
            }))
            .finish()
    }
}

/// A store whose every value is sealed with the store key. See the [module docs](super).
///
/// Cheap to share behind an `Arc`; every method takes `&self`, and concurrent calls are safe:
/// the backend serializes commits and version checks keep read-modify-write cycles from
/// interleaving.
pub struct EncryptedStore<S> {
    backend: S,
    key: StoreKey,
}

impl<S> fmt::Debug for EncryptedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedStore")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<S: Store> EncryptedStore<S> {
    /// Opens a store: creates the schema record in an empty backend, checks the key against it
    /// otherwise ([`Error::WrongStoreKey`]), and migrates a store of an older schema.
    pub async fn open(backend: S, key: StoreKey) -> Result<Self> {
        let store = EncryptedStore { backend, key };
        for _ in 0..OPEN_ATTEMPTS {
            match store.open_once().await {
                Err(e) if e.is_conflict() => yield_now().await,
                Err(e) => return Err(e),
                Ok(true) => return Ok(store),
                Ok(false) => yield_now().await,
            }
        }
        Err(Error::Conflict {
            namespace: META_NAMESPACE.to_owned(),
        })
    }

    /// One attempt; `Ok(false)` asks to look again (another opener raced us).
    async fn open_once(&self) -> Result<bool> {
        let Some(raw) = self.backend.get(&schema_id()).await? else {
            if !self.backend.namespaces().await?.is_empty() {
                // Another opener may have just created the store; otherwise records exist
                // without the schema record that is always written first.
                if self.backend.get(&schema_id()).await?.is_some() {
                    return Ok(false);
                }
                return Err(Error::Corrupt("records without a schema record"));
            }
            let sealed = self.seal(SCHEMA_AAD, &encode_schema(CURRENT_SCHEMA))?;
            self.backend
                .commit(vec![Op::Put {
                    id: schema_id(),
                    sealed,
                    expect: Expect::Absent,
                }])
                .await?;
            return Ok(true);
        };
        let plain = Zeroizing::new(
            aead::xopen_random(&self.key.0, SCHEMA_AAD, &raw.sealed)
                .map_err(|_| Error::WrongStoreKey)?,
        );
        let found = decode_schema(&plain).map_err(|_| Error::Corrupt("malformed schema record"))?;
        match found {
            CURRENT_SCHEMA => Ok(true),
            1 => {
                self.reseal_all(1, raw.version).await?;
                Ok(true)
            }
            v if v > CURRENT_SCHEMA => Err(Error::SchemaTooNew { found: v }),
            _ => Err(Error::Corrupt("unknown schema version")),
        }
    }

    /// Migrates from `from` to the current schema by re-sealing every value under the current
    /// associated data, in one transaction that checks every version it read.
    async fn reseal_all(&self, from: u32, schema_version: Version) -> Result<()> {
        let mut rng = os_rng()?;
        let mut ops = Vec::new();
        for ns in self.backend.namespaces().await? {
            if ns.is_reserved() {
                continue;
            }
            for (key, raw) in self.backend.list(&ns, &Query::default()).await? {
                let id = RecordId::new(&ns, key).map_err(|_| Error::Corrupt("key too long"))?;
                let plain = self.open_raw(from, &id, &raw)?;
                let sealed = aead::xseal_random(
                    &mut rng,
                    &self.key.0,
                    &record_aad(CURRENT_SCHEMA, &id),
                    &plain,
                );
                ops.push(Op::Put {
                    id,
                    sealed,
                    expect: Expect::Version(raw.version),
                });
            }
        }
        ops.push(Op::Put {
            id: schema_id(),
            sealed: aead::xseal_random(
                &mut rng,
                &self.key.0,
                SCHEMA_AAD,
                &encode_schema(CURRENT_SCHEMA),
            ),
            expect: Expect::Version(schema_version),
        });
        self.backend.commit(ops).await?;
        Ok(())
    }

    /// The backend, for maintenance and tests. Writing to it directly bypasses encryption: the
    /// store then refuses what was written ([`Error::Tampered`]).
    pub fn backend(&self) -> &S {
        &self.backend
    }

    /// Closes the encrypted view and returns the backend.
    pub fn into_backend(self) -> S {
        self.backend
    }

    /// A record's version and value, if it exists.
    pub async fn get(&self, id: &RecordId) -> Result<Option<Entry>> {
        check_not_reserved(id.namespace())?;
        match self.backend.get(id).await? {
            None => Ok(None),
            Some(raw) => Ok(Some(Entry {
                version: raw.version,
                value: self.open_raw(CURRENT_SCHEMA, id, &raw)?,
            })),
        }
    }

    /// The records of `namespace` selected by `query`, decrypted, in key order.
    pub async fn list(
        &self,
        namespace: &Namespace,
        query: &Query,
    ) -> Result<Vec<(RecordId, Entry)>> {
        check_not_reserved(namespace)?;
        if query.prefix.len() > MAX_KEY_LEN {
            return Err(Error::InvalidRecordId("prefix longer than 256 bytes"));
        }
        let rows = self.backend.list(namespace, query).await?;
        if let Some(limit) = query.limit
            && rows.len() > usize::try_from(limit).unwrap_or(usize::MAX)
        {
            return Err(Error::Corrupt(
                "backend returned more records than the limit",
            ));
        }
        let mut out = Vec::with_capacity(rows.len());
        for (key, raw) in rows {
            if !query.matches(&key) {
                return Err(Error::Corrupt(
                    "backend returned a record outside the query",
                ));
            }
            let id = RecordId::new(namespace, key).map_err(|_| Error::Corrupt("key too long"))?;
            let value = self.open_raw(CURRENT_SCHEMA, &id, &raw)?;
            out.push((
                id,
                Entry {
                    version: raw.version,
                    value,
                },
            ));
        }
        Ok(out)
    }

    /// The namespaces that hold records (the store's own are left out).
    pub async fn namespaces(&self) -> Result<Vec<Namespace>> {
        let mut all = self.backend.namespaces().await?;
        all.retain(|ns| !ns.is_reserved());
        Ok(all)
    }

    /// Writes a value unconditionally; returns its new version.
    pub async fn put(&self, id: &RecordId, value: &[u8]) -> Result<Version> {
        let mut txn = Transaction::new();
        txn.put(id.clone(), value, Expect::Any);
        self.commit(txn).await
    }

    /// Deletes a record (absent records are fine).
    pub async fn delete(&self, id: &RecordId) -> Result<()> {
        let mut txn = Transaction::new();
        txn.delete(id.clone(), Expect::Any);
        self.commit(txn).await.map(|_| ())
    }

    /// Applies a transaction all-or-nothing. If any check fails nothing changes and the result
    /// is [`Error::Conflict`]. Returns the version every put of the transaction got.
    pub async fn commit(&self, txn: Transaction) -> Result<Version> {
        let mut rng = None;
        let mut ops = Vec::with_capacity(txn.ops.len());
        for op in &txn.ops {
            check_not_reserved(op.id().namespace())?;
        }
        check_distinct_ids(txn.ops.iter().map(Pending::id).collect())?;
        for op in txn.ops {
            ops.push(match op {
                Pending::Put { id, value, expect } => {
                    if value.len() > MAX_VALUE_LEN {
                        return Err(Error::ValueTooLarge);
                    }
                    let rng = match &mut rng {
                        Some(r) => r,
                        None => rng.insert(os_rng()?),
                    };
                    let sealed = aead::xseal_random(
                        rng,
                        &self.key.0,
                        &record_aad(CURRENT_SCHEMA, &id),
                        &value,
                    );
                    Op::Put { id, sealed, expect }
                }
                Pending::Delete { id, expect } => Op::Delete { id, expect },
                Pending::Check { id, expect } => Op::Check { id, expect },
            });
        }
        self.backend.commit(ops).await
    }

    /// Read-modify-write of one record that can never interleave with another writer's: reads
    /// the record, lets `f` decide, and commits only if the record still has the version that
    /// was read; on a conflict it reads again and calls `f` again. `f` may therefore run more
    /// than once and must not act on the world: only its returned value leaves the closure,
    /// and only from the attempt that committed.
    ///
    /// This is how a sender chain is advanced: `f` imports the chain, takes the next message
    /// key, and returns the exported chain to write and the key to use. Two concurrent senders
    /// never get the same counter.
    pub async fn update<T>(
        &self,
        id: &RecordId,
        mut f: impl FnMut(Option<&Entry>) -> Result<(Update, T)>,
    ) -> Result<T> {
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.get(id).await?;
            let expect = match &current {
                Some(entry) => Expect::Version(entry.version),
                None => Expect::Absent,
            };
            let (change, out) = f(current.as_ref())?;
            let mut txn = Transaction::new();
            match change {
                Update::Keep => return Ok(out),
                Update::Put(value) => txn.put(id.clone(), &value, expect),
                Update::Delete => txn.delete(id.clone(), expect),
            };
            match self.commit(txn).await {
                Ok(_) => return Ok(out),
                Err(e) if e.is_conflict() => yield_now().await,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict {
            namespace: id.namespace().as_str().to_owned(),
        })
    }

    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        Ok(aead::xseal_random(&mut os_rng()?, &self.key.0, aad, plain))
    }

    fn open_raw(&self, schema: u32, id: &RecordId, raw: &RawRecord) -> Result<Zeroizing<Vec<u8>>> {
        let tampered = || Error::Tampered {
            namespace: id.namespace().as_str().to_owned(),
        };
        if raw.sealed.len() > MAX_SEALED_LEN {
            return Err(tampered());
        }
        aead::xopen_random(&self.key.0, &record_aad(schema, id), &raw.sealed)
            .map(Zeroizing::new)
            .map_err(|_| tampered())
    }
}

fn check_not_reserved(ns: &Namespace) -> Result<()> {
    if ns.is_reserved() {
        return Err(Error::InvalidRecordId(
            "namespaces starting with \"sotto.\" are reserved",
        ));
    }
    Ok(())
}

/// Lets other tasks run once (returns `Pending` a single time after waking itself), so a
/// writer that lost a race does not retry in a tight loop. Runtime-agnostic: works under tokio
/// and in the browser's microtask queue.
fn yield_now() -> impl Future<Output = ()> {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false)
}
