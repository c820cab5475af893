//! The set of key generations a device holds, stored as sorted disjoint ranges.
//!
//! A device with history access holds every generation, so the set is almost always one range:
//! copying and checking it costs the same however long the chain is, which keeps chain
//! verification linear in its length.

use core::ops::Range;

/// A set of generation numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenerationSet {
    ranges: Vec<Range<u32>>,
}

impl GenerationSet {
    /// Whether `g` is in the set.
    pub fn contains(&self, g: u32) -> bool {
        self.ranges.iter().any(|r| r.contains(&g))
    }

    /// How many generations the set holds.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|r| u64::from(r.end - r.start)).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Adds `g`, merging adjacent ranges.
    pub fn insert(&mut self, g: u32) {
        if self.contains(g) {
            return;
        }
        let end = g.saturating_add(1);
        let at = self.ranges.partition_point(|r| r.end < g);
        match self.ranges.get_mut(at) {
            Some(r) if r.end == g => {
                r.end = end;
                let merge_with_next = self.ranges.get(at + 1).is_some_and(|n| n.start == end);
                if merge_with_next {
                    let next_end = self.ranges.remove(at + 1).end;
                    if let Some(r) = self.ranges.get_mut(at) {
                        r.end = next_end;
                    }
                }
            }
            Some(r) if r.start == end => r.start = g,
            _ => self.ranges.insert(at, g..end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn behaves_like_a_set_under_any_insertion_order() {
        let mut rng = 0x1234_5678u64;
        for _ in 0..200 {
            let mut set = GenerationSet::default();
            let mut model = BTreeSet::new();
            for _ in 0..40 {
                // xorshift: a small deterministic sequence of generations, with repeats.
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let g = (rng % 48) as u32;
                set.insert(g);
                model.insert(g);
                assert_eq!(set.len(), model.len() as u64);
                for probe in 0..50 {
                    assert_eq!(
                        set.contains(probe),
                        model.contains(&probe),
                        "{probe} in {set:?}"
                    );
                }
                assert!(
                    set.ranges.windows(2).all(|w| w[0].end < w[1].start),
                    "{set:?}"
                );
            }
        }
    }
}
