//! An ordered map kept as one sorted vector.
//!
//! The maps in team and conversation state hold tens to a few thousand entries, are read far
//! more often than written, and are compiled into the browser package once per key and value
//! type. A B-tree costs about 5 KB of WebAssembly per instantiation; a sorted vector costs a
//! fraction of that, searches in the same logarithmic time, and iterates in the same key order,
//! so every encoding that walks a map is unchanged.

use std::fmt;

/// A map from `K` to `V` with entries sorted by key, each key at most once.
#[derive(Clone, PartialEq, Eq)]
pub struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SortedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<K, V> SortedMap<K, V> {
    /// An empty map.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The entry with the smallest key.
    pub fn first_key_value(&self) -> Option<(&K, &V)> {
        self.entries.first().map(|(k, v)| (k, v))
    }

    /// The entry with the largest key.
    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.entries.last().map(|(k, v)| (k, v))
    }

    /// Removes and yields the `count` entries with the smallest keys (all of them if fewer).
    pub fn drain_first(&mut self, count: usize) -> impl Iterator<Item = (K, V)> + '_ {
        self.entries.drain(..count.min(self.entries.len()))
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    fn find(&self, key: &K) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(key))
    }

    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        let at = self.find(key).ok()?;
        self.entries.get(at).map(|(_, v)| v)
    }

    /// The value under `key`, mutable.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let at = self.find(key).ok()?;
        self.entries.get_mut(at).map(|(_, v)| v)
    }

    /// Whether `key` has an entry.
    pub fn contains_key(&self, key: &K) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(at) => self
                .entries
                .get_mut(at)
                .map(|(_, old)| std::mem::replace(old, value)),
            Err(at) => {
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    /// The value under `key`, inserting `make()` first if there is none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let at = match self.find(&key) {
            Ok(at) => at,
            Err(at) => {
                self.entries.insert(at, (key, make()));
                at
            }
        };
        // In bounds: the key was found at `at` or has just been inserted there.
        &mut self.entries[at].1
    }

    /// Removes the entry under `key` and returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let at = self.find(key).ok()?;
        Some(self.entries.remove(at).1)
    }

    /// Splits off and returns the entries with keys at or after `key`.
    pub fn split_off(&mut self, key: &K) -> Self {
        let at = self.find(key).unwrap_or_else(|at| at);
        Self {
            entries: self.entries.split_off(at),
        }
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    /// Collects entries; of several with the same key the last one wins, as with `insert`.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut entries: Vec<(K, V)> = iter.into_iter().collect();
        // A stable sort keeps equal keys in arrival order, so the last of each run is the
        // latest insert.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut deduplicated: Vec<(K, V)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match deduplicated.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => deduplicated.push(entry),
            }
        }
        Self {
            entries: deduplicated,
        }
    }
}

impl<K: Ord, V> Extend<(K, V)> for SortedMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value);
        }
    }
}

impl<'a, K, V> IntoIterator for &'a SortedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<K, V> IntoIterator for SortedMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::SortedMap;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u16),
        Remove(u8),
        GetOrInsert(u8, u16),
        AddToValue(u8),
        PopFirst,
        DrainFirst(u8),
        Extend(Vec<(u8, u16)>),
        SplitOff(u8),
        RetainEvenValues,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Insert(k, v)),
            any::<u8>().prop_map(Op::Remove),
            (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
            any::<u8>().prop_map(Op::AddToValue),
            Just(Op::PopFirst),
            (0u8..8).prop_map(Op::DrainFirst),
            proptest::collection::vec((any::<u8>(), any::<u16>()), 0..8).prop_map(Op::Extend),
            any::<u8>().prop_map(Op::SplitOff),
            Just(Op::RetainEvenValues),
        ]
    }

    proptest! {
        /// Every operation answers and leaves the map exactly as a B-tree map would.
        #[test]
        fn behaves_as_a_btree_map(ops in proptest::collection::vec(op(), 0..200)) {
            let mut map = SortedMap::new();
            let mut model = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(map.insert(k, v), model.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(map.remove(&k), model.remove(&k)),
                    Op::GetOrInsert(k, v) => {
                        let got = *map.get_or_insert_with(k, || v);
                        prop_assert_eq!(got, *model.entry(k).or_insert(v));
                    }
                    Op::AddToValue(k) => {
                        if let Some(v) = map.get_mut(&k) {
                            *v = v.wrapping_add(1);
                        }
                        if let Some(v) = model.get_mut(&k) {
                            *v = v.wrapping_add(1);
                        }
                    }
                    Op::PopFirst => prop_assert_eq!(map.drain_first(1).next(), model.pop_first()),
                    Op::DrainFirst(n) => {
                        let drained: Vec<_> = map.drain_first(usize::from(n)).collect();
                        let mut model_drained = Vec::new();
                        for _ in 0..n {
                            model_drained.extend(model.pop_first());
                        }
                        prop_assert_eq!(drained, model_drained);
                    }
                    Op::Extend(entries) => {
                        map.extend(entries.iter().copied());
                        model.extend(entries.iter().copied());
                    }
                    Op::SplitOff(k) => {
                        let tail: Vec<_> = map.split_off(&k).into_iter().collect();
                        let model_tail: Vec<_> = model.split_off(&k).into_iter().collect();
                        prop_assert_eq!(tail, model_tail);
                    }
                    Op::RetainEvenValues => {
                        map.retain(|_, v| *v % 2 == 0);
                        model.retain(|_, v| *v % 2 == 0);
                    }
                }
                prop_assert_eq!(map.len(), model.len());
                prop_assert!(map.iter().eq(model.iter()));
                prop_assert!((&map).into_iter().rev().eq(model.iter().rev()));
                prop_assert_eq!(map.first_key_value(), model.first_key_value());
                prop_assert_eq!(map.last_key_value(), model.last_key_value());
                for k in [0u8, 7, 100, 255] {
                    prop_assert_eq!(map.get(&k), model.get(&k));
                    prop_assert_eq!(map.contains_key(&k), model.contains_key(&k));
                }
            }
        }

        /// Collecting keeps the last value of a repeated key, as inserting in order would.
        #[test]
        fn collects_as_a_btree_map(entries in proptest::collection::vec((any::<u8>(), any::<u16>()), 0..100)) {
            let map: SortedMap<u8, u16> = entries.iter().copied().collect();
            let model: BTreeMap<u8, u16> = entries.iter().copied().collect();
            prop_assert!(map.iter().eq(model.iter()));
        }
    }
}
