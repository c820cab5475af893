//! The set of key generations a device holds, stored as sorted disjoint ranges.
//!
//! A device with history access holds every generation, so the set is almost always one range:
//! copying and checking it costs the same however long the chain is, which keeps chain
//! verification linear in its length.

use core::ops::Range;

use crate::Result;
use crate::codec::{Reader, Writer};
use crate::error::DecodeError;

/// Most ranges a stored set may hold (a device holds one range per stretch of generations it
/// was sent; no team makes more generations than this).
const MAX_RANGES: usize = 1 << 20;

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

    /// Appends the set for a stored team state: a count, then each range's start and end.
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(self.ranges.len() as u32);
        for r in &self.ranges {
            w.u32(r.start);
            w.u32(r.end);
        }
    }

    /// Reads a set written by [`GenerationSet::encode`], from untrusted store bytes: ranges
    /// must be non-empty, ordered, and neither overlap nor touch (the form `insert` keeps).
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let n = r.count_u32(MAX_RANGES, 8)?;
        let mut ranges: Vec<Range<u32>> = Vec::with_capacity(n);
        for _ in 0..n {
            let (start, end) = (r.u32()?, r.u32()?);
            let after_previous = ranges.last().is_none_or(|p| p.end < start);
            if start >= end || !after_previous {
                return Err(DecodeError::InvalidValue.into());
            }
            ranges.push(start..end);
        }
        Ok(GenerationSet { ranges })
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
