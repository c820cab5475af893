//! The in-memory backend: for tests and for ephemeral visitors who keep nothing after the page
//! closes. Available on every target.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    Namespace, Op, Query, RawRecord, RecordId, Store, Version, check_distinct, prefix_successor,
};
use crate::{Error, Result};

#[derive(Default)]
struct State {
    records: BTreeMap<(Namespace, Vec<u8>), RawRecord>,
    /// The highest version given out so far.
    last_version: u64,
}

/// An in-memory [`Store`]. Clones share the same records (a clone is another handle on the same
/// store, like a second connection to a database), so a test can "reopen" it.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl core::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock, and every commit checks before it changes
        // anything, so a poisoned lock still guards a consistent state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for MemoryStore {
    async fn get(&self, id: &RecordId) -> Result<Option<RawRecord>> {
        Ok(self
            .lock()
            .records
            .get(&(id.namespace().clone(), id.key().to_vec()))
            .cloned())
    }

    async fn list(
        &self,
        namespace: &Namespace,
        query: &Query,
    ) -> Result<Vec<(Vec<u8>, RawRecord)>> {
        use core::ops::Bound;
        let state = self.lock();
        let start = Bound::Included((namespace.clone(), query.prefix.clone()));
        let end = match prefix_successor(&query.prefix) {
            Some(succ) => Bound::Excluded((namespace.clone(), succ)),
            // Every key of the namespace sorts before (namespace + "\0", []): namespaces never
            // hold a zero byte, and a longer string sorts after its prefix.
            None => Bound::Excluded((Namespace(format!("{namespace}\0")), Vec::new())),
        };
        let in_namespace = state
            .records
            .range((start, end))
            .filter(|((_, key), _)| query.matches(key));
        let limit = query
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let rows: Vec<_> = if query.descending {
            in_namespace
                .rev()
                .take(limit)
                .map(|((_, k), r)| (k.clone(), r.clone()))
                .collect()
        } else {
            in_namespace
                .take(limit)
                .map(|((_, k), r)| (k.clone(), r.clone()))
                .collect()
        };
        Ok(rows)
    }

    async fn namespaces(&self) -> Result<Vec<Namespace>> {
        let state = self.lock();
        let mut out: Vec<Namespace> = Vec::new();
        for (ns, _) in state.records.keys() {
            if out.last() != Some(ns) {
                out.push(ns.clone());
            }
        }
        Ok(out)
    }

    async fn commit(&self, ops: Vec<Op>) -> Result<Version> {
        check_distinct(&ops)?;
        let mut state = self.lock();
        for op in &ops {
            let current = state
                .records
                .get(&(op.id().namespace().clone(), op.id().key().to_vec()))
                .map(|r| r.version);
            if !op.expect().is_met_by(current) {
                return Err(Error::Conflict {
                    namespace: op.id().namespace().as_str().to_owned(),
                });
            }
        }
        let has_puts = ops.iter().any(|op| matches!(op, Op::Put { .. }));
        let version = if has_puts {
            let next = state
                .last_version
                .checked_add(1)
                .ok_or(Error::Corrupt("version counter exhausted"))?;
            state.last_version = next;
            next
        } else {
            state.last_version
        };
        for op in ops {
            match op {
                Op::Put { id, sealed, .. } => {
                    let RecordId { namespace, key } = id;
                    state.records.insert(
                        (namespace, key),
                        RawRecord {
                            version: Version(version),
                            sealed,
                        },
                    );
                }
                Op::Delete { id, .. } => {
                    let RecordId { namespace, key } = id;
                    state.records.remove(&(namespace, key));
                }
                Op::Check { .. } => {}
            }
        }
        Ok(Version(version))
    }
}
