//! Counted slots for things a client holds open: TCP connections and WebSockets.
//!
//! A rate limit bounds how fast a client asks; it does not bound how much it holds. A client that
//! opens connections or sockets and never closes them costs memory and file descriptors for as
//! long as they stay open, so the relay also counts what is open, in total and per key (a client
//! address, a device), and refuses a new one over either cap. A [`Slot`] gives its place back
//! when dropped, whatever ends the connection, so the counts cannot drift.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Why a slot was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The total cap is reached.
    Total,
    /// The cap for this key is reached.
    PerKey,
}

#[derive(Debug, Default)]
struct Counts<K> {
    total: usize,
    per_key: HashMap<K, usize>,
}

/// Open things counted in total and per key, each under a cap.
#[derive(Debug)]
pub struct OpenCounter<K: Eq + Hash> {
    max_total: usize,
    max_per_key: usize,
    counts: Mutex<Counts<K>>,
}

impl<K: Eq + Hash + Clone> OpenCounter<K> {
    /// At most `max_total` open in all, `max_per_key` per key (each at least 1).
    pub fn new(max_total: usize, max_per_key: usize) -> Arc<Self> {
        Arc::new(OpenCounter {
            max_total: max_total.max(1),
            max_per_key: max_per_key.max(1),
            counts: Mutex::new(Counts {
                total: 0,
                per_key: HashMap::new(),
            }),
        })
    }

    /// Takes a slot for `key`, or says which cap refused it.
    pub fn acquire(self: &Arc<Self>, key: K) -> Result<Slot<K>, Refused> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if c.total >= self.max_total {
            return Err(Refused::Total);
        }
        let n = c.per_key.entry(key.clone()).or_insert(0);
        if *n >= self.max_per_key {
            return Err(Refused::PerKey);
        }
        *n += 1;
        c.total += 1;
        Ok(Slot {
            counter: Arc::clone(self),
            key: Some(key),
        })
    }

    /// How many are open in total.
    pub fn total(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    fn release(&self, key: &K) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_key.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                // Keys with nothing open are dropped, so the map is bounded by what is open.
                c.per_key.remove(key);
            }
        }
    }
}

/// One open thing; dropping it gives the slot back.
#[derive(Debug)]
pub struct Slot<K: Eq + Hash + Clone> {
    counter: Arc<OpenCounter<K>>,
    key: Option<K>,
}

impl<K: Eq + Hash + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.counter.release(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_total_and_per_key_and_releases_on_drop() {
        let c = OpenCounter::new(3, 2);
        let a1 = c.acquire("a").unwrap();
        let _a2 = c.acquire("a").unwrap();
        assert_eq!(c.acquire("a").unwrap_err(), Refused::PerKey);
        let _b1 = c.acquire("b").unwrap();
        assert_eq!(c.acquire("c").unwrap_err(), Refused::Total);
        drop(a1);
        assert_eq!(c.total(), 2);
        let _c1 = c.acquire("c").unwrap();
        assert_eq!(c.total(), 3);
    }
}
