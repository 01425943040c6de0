//! The difference between two snapshots of disjoint ranges.
//!
//! Each cycle recomputes the desired mapping from scratch (DESIGN.md §1), yet between two cycles
//! almost nothing changes, and the small set of ranges that did is what a change report would
//! show. (The planner does not use it: it compares compiled rules, see [`crate::plan`].) Sorted,
//! the two snapshots are compared in one merge pass whose common case (equal ranges, one after
//! the other) is checked several ranges at a time, so that a million unchanged ranges cost about
//! as much as reading them. In any other order they are matched by hash, group by group
//! ([`diff`]), rather than sorted first.

use super::KeyRange;

/// How two snapshots differ. Applying it to the old snapshot gives the new one
/// ([`RangeDiff::apply`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeDiff {
    /// In the old snapshot only (no range with the same `lo` and `hi` in the new one).
    pub removed: Vec<KeyRange>,
    /// In the new snapshot only.
    pub added: Vec<KeyRange>,
    /// Same `lo` and `hi` in both, another value: the old range and its new value. Kept apart
    /// because the SBC can modify such a rule in place instead of deleting and adding it.
    pub retagged: Vec<(KeyRange, u32)>,
}

impl RangeDiff {
    /// True when the snapshots were equal.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty() && self.retagged.is_empty()
    }

    /// How many ranges changed, counting a retag once.
    pub fn len(&self) -> usize {
        self.removed.len() + self.added.len() + self.retagged.len()
    }

    /// The new snapshot, sorted by `lo`, from the old one (in any order).
    pub fn apply(&self, old: &[KeyRange]) -> Vec<KeyRange> {
        let mut removed: Vec<KeyRange> = self.removed.clone();
        let mut retagged: Vec<(KeyRange, u32)> = self.retagged.clone();
        removed.sort_unstable();
        retagged.sort_unstable();
        let mut result: Vec<KeyRange> = Vec::with_capacity(old.len() + self.added.len());
        for &range in old {
            if removed.binary_search(&range).is_ok() {
                continue;
            }
            match retagged.binary_search_by(|(from, _)| from.cmp(&range)) {
                Ok(at) => result.push(KeyRange {
                    value: retagged[at].1,
                    ..range
                }),
                Err(_) => result.push(range),
            }
        }
        result.extend_from_slice(&self.added);
        result.sort_unstable();
        result
    }
}

/// The difference between two snapshots in any order. Each snapshot must hold distinct
/// `(lo, hi)` pairs (disjoint ones do). Two snapshots already in order (as compiled rules and
/// the stored mirror are) are merged as they are. Otherwise neither is sorted: both are split
/// into groups by a hash of `(lo, hi)`, each small enough for the processor's caches, and each
/// group's ranges are matched through a small hash table. At a million realistic ranges with
/// 1 % churn (`benches/engine.rs`) that costs 0.96x one sort, where sorting both snapshots and
/// merging them cost 2.4x. The differences are sorted at the end, so the answer is the merge's,
/// range for range; two unrelated snapshots therefore cost about what sorting both did.
pub fn diff(old: &[KeyRange], new: &[KeyRange]) -> RangeDiff {
    if old.is_sorted() && new.is_sorted() {
        return diff_sorted(old, new);
    }
    let bits = group_bits(old.len().max(new.len()));
    let (old, new) = (Groups::new(old, bits), Groups::new(new, bits));
    let mut result = RangeDiff::default();
    let mut matcher = Matcher::default();
    for group in 0..1 << bits {
        matcher.compare(old.group(group), new.group(group), &mut result);
    }
    result.removed.sort_unstable();
    result.added.sort_unstable();
    result.retagged.sort_unstable();
    result
}

/// Ranges per group the grouping aims at: a group of each snapshot and its table (about 30
/// KB) stay in the L2 cache while they are matched. Measured at a million ranges against 4,096
/// and 16,384 per group, this was fastest on the realistic and adversarial workloads.
const GROUP_TARGET: usize = 1024;

/// Bits of the hash that pick a range's group, for snapshots of up to `len` ranges.
fn group_bits(len: usize) -> u32 {
    (usize::BITS - (len / GROUP_TARGET).leading_zeros()).min(16)
}

/// A hash of a range's `(lo, hi)`, the key both snapshots are matched on: its top bits pick
/// the group, and [`slot_bits`] the slot in the group's table.
fn spread(range: &KeyRange) -> u64 {
    (range.lo ^ range.hi.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The bits of [`spread`] that pick a slot: below the group's (at most the top 16), and not
/// the lowest, which a multiplication fills only from the key's lowest bits (all zero for the
/// `lo` of every aligned block of a thousand numbers).
fn slot_bits(range: &KeyRange) -> usize {
    (spread(range) >> 16) as usize
}

/// A snapshot's ranges, copied group by group: two passes (count, then place), where a sort
/// takes twenty.
struct Groups {
    ranges: Vec<KeyRange>,
    /// Where each group starts in `ranges`, and where the last ends.
    starts: Vec<usize>,
}

impl Groups {
    fn new(ranges: &[KeyRange], bits: u32) -> Groups {
        let group_of = |range: &KeyRange| (spread(range) >> (63 - bits) >> 1) as usize;
        let mut starts = vec![0usize; (1 << bits) + 1];
        for range in ranges {
            starts[group_of(range) + 1] += 1;
        }
        for group in 0..1 << bits {
            starts[group + 1] += starts[group];
        }
        let mut next = starts.clone();
        let mut grouped = vec![KeyRange::default(); ranges.len()];
        for range in ranges {
            let at = &mut next[group_of(range)];
            grouped[*at] = *range;
            *at += 1;
        }
        Groups {
            ranges: grouped,
            starts,
        }
    }

    fn group(&self, group: usize) -> &[KeyRange] {
        &self.ranges[self.starts[group]..self.starts[group + 1]]
    }
}

/// Matches one group of the old snapshot with the same group of the new one. Its buffers are
/// reused from group to group.
#[derive(Default)]
struct Matcher {
    /// Open addressing over the old group: a position in it, or [`Matcher::EMPTY`]. Twice as
    /// many slots as ranges, so that every probe ends at an empty slot soon.
    slots: Vec<u32>,
    matched: Vec<bool>,
}

impl Matcher {
    const EMPTY: u32 = u32::MAX;

    fn compare(&mut self, old: &[KeyRange], new: &[KeyRange], result: &mut RangeDiff) {
        let mask = (old.len() * 2).next_power_of_two() - 1;
        self.slots.clear();
        self.slots.resize(mask + 1, Matcher::EMPTY);
        self.matched.clear();
        self.matched.resize(old.len(), false);
        for (position, range) in (0u32..).zip(old) {
            let mut slot = slot_bits(range) & mask;
            while self.slots[slot] != Matcher::EMPTY {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = position;
        }
        for &after in new {
            let mut slot = slot_bits(&after) & mask;
            let found = loop {
                let at = self.slots[slot] as usize;
                match old.get(at) {
                    None => break None,
                    Some(before) if (before.lo, before.hi) == (after.lo, after.hi) => {
                        break Some(at)
                    }
                    Some(_) => slot = (slot + 1) & mask,
                }
            };
            match found {
                Some(at) => {
                    self.matched[at] = true;
                    if old[at].value != after.value {
                        result.retagged.push((old[at], after.value));
                    }
                }
                None => result.added.push(after),
            }
        }
        for (&before, &matched) in old.iter().zip(&self.matched) {
            if !matched {
                result.removed.push(before);
            }
        }
    }
}

/// Ranges compared per step while the snapshots agree: enough to amortise the loop's branch,
/// few enough that a difference does not cost much re-scanning.
const CHUNK: usize = 8;

/// The difference between two snapshots sorted by `(lo, hi)`, in one merge pass.
pub fn diff_sorted(old: &[KeyRange], new: &[KeyRange]) -> RangeDiff {
    let mut result = RangeDiff::default();
    merge(old, new, &mut result);
    result
}

/// Adds the difference between `old` and `new`, both sorted by `(lo, hi)`, to `result`.
fn merge(old: &[KeyRange], new: &[KeyRange], result: &mut RangeDiff) {
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        let same = equal_prefix(&old[i..], &new[j..]);
        i += same;
        j += same;
        let (Some(&before), Some(&after)) = (old.get(i), new.get(j)) else {
            break;
        };
        match (before.lo, before.hi).cmp(&(after.lo, after.hi)) {
            std::cmp::Ordering::Equal => {
                result.retagged.push((before, after.value));
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                result.removed.push(before);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                result.added.push(after);
                j += 1;
            }
        }
    }
    result.removed.extend_from_slice(&old[i.min(old.len())..]);
    result.added.extend_from_slice(&new[j.min(new.len())..]);
}

/// How many leading ranges the two slices share. Compares [`CHUNK`] ranges at a time with no
/// branch inside a chunk, which is what makes long equal runs cheap.
fn equal_prefix(a: &[KeyRange], b: &[KeyRange]) -> usize {
    let mut same = 0;
    for (x, y) in a.chunks_exact(CHUNK).zip(b.chunks_exact(CHUNK)) {
        let differs = x.iter().zip(y).fold(0u64, |acc, (x, y)| {
            acc | (x.lo ^ y.lo) | (x.hi ^ y.hi) | u64::from(x.value ^ y.value)
        });
        if differs != 0 {
            break;
        }
        same += CHUNK;
    }
    same + a[same..]
        .iter()
        .zip(&b[same..])
        .take_while(|(x, y)| x == y)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::Number;
    use proptest::prelude::*;

    fn key(value: u64) -> u64 {
        Number::from_u64(value).unwrap().key()
    }

    fn range(lo: u64, hi: u64, value: u32) -> KeyRange {
        KeyRange::new(key(lo), key(hi), value)
    }

    #[test]
    fn identical_snapshots_have_no_difference() {
        let snapshot: Vec<KeyRange> = (0..1000u64)
            .map(|i| range(3226100000 + i * 10, 3226100000 + i * 10 + 4, (i % 7) as u32))
            .collect();
        let mut shuffled = snapshot.clone();
        shuffled.reverse();
        let difference = diff(&snapshot, &shuffled);
        assert!(difference.is_empty(), "{difference:?}");
        assert_eq!(difference.len(), 0);
        assert!(diff_sorted(&snapshot, &snapshot).is_empty());
        assert!(diff(&[], &[]).is_empty());
    }

    #[test]
    fn classifies_each_kind_of_change() {
        let old = vec![
            range(3210, 3219, 1),
            range(3220, 3229, 2),
            range(3230, 3239, 3),
            range(3240, 3249, 4),
        ];
        let new = vec![
            range(3210, 3219, 1),
            range(3220, 3229, 9), // retagged
            range(3230, 3235, 3), // shrunk: removed + added
            range(3250, 3259, 5), // added; 3240.. removed
        ];
        let difference = diff(&old, &new);
        assert_eq!(difference.retagged, vec![(old[1], 9)]);
        assert_eq!(difference.removed, vec![old[2], old[3]]);
        assert_eq!(difference.added, vec![new[2], new[3]]);
        assert_eq!(difference.apply(&old), new);
    }

    #[test]
    fn differences_at_every_chunk_position() {
        let old: Vec<KeyRange> = (0..100u64)
            .map(|i| range(3226100000 + i * 10, 3226100000 + i * 10 + 4, 1))
            .collect();
        for changed in 0..old.len() {
            let mut new = old.clone();
            new[changed].value = 2;
            let difference = diff_sorted(&old, &new);
            assert_eq!(difference.retagged, vec![(old[changed], 2)], "at {changed}");
            assert!(difference.removed.is_empty() && difference.added.is_empty());
            assert_eq!(difference.apply(&old), new);
        }
    }

    fn snapshot() -> impl Strategy<Value = Vec<KeyRange>> {
        proptest::collection::btree_map(0u64..3000, (0u64..3, 0u32..3), 0..400).prop_map(|map| {
            // Blocks of ten keep the ranges disjoint; widths and values vary.
            map.into_iter()
                .map(|(block, (width, value))| {
                    let lo = 32261000000 + block * 10;
                    range(lo, lo + width, value)
                })
                .collect()
        })
    }

    /// Sorted, disjoint, and large enough to be matched in more than one group.
    fn big_snapshot() -> impl Strategy<Value = Vec<KeyRange>> {
        proptest::collection::btree_map(0u64..1_000_000, (0u64..3, 0u32..3), 2 * GROUP_TARGET..6000)
            .prop_map(|map| {
                map.into_iter()
                    .map(|(block, (width, value))| {
                        let lo = 32261000000 + block * 10;
                        range(lo, lo + width, value)
                    })
                    .collect()
            })
    }

    /// A Fisher-Yates shuffle driven by `seed` (a xorshift), so that a failing case replays.
    fn shuffle(ranges: &mut [KeyRange], mut seed: u64) {
        for i in (1..ranges.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ranges.swap(i, (seed % (i as u64 + 1)) as usize);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn applying_the_diff_to_old_gives_new(
            old in snapshot(),
            new in snapshot(),
            reverse in any::<bool>(),
        ) {
            let (mut old_input, mut new_input) = (old.clone(), new.clone());
            if reverse {
                old_input.reverse();
                new_input.reverse();
            }
            let difference = diff(&old_input, &new_input);
            prop_assert_eq!(difference.apply(&old_input), new.clone());
            prop_assert_eq!(&diff_sorted(&old, &new), &difference);
            // Nothing is reported twice, and nothing unchanged is reported.
            for (from, to) in &difference.retagged {
                prop_assert_ne!(from.value, *to);
            }
            for removed in &difference.removed {
                prop_assert!(!new.iter().any(|r| r.lo == removed.lo && r.hi == removed.hi));
            }
            prop_assert!(diff(&new_input, &new).is_empty());
        }

        /// Snapshots of thousands of ranges, in any order, are matched in several groups
        /// (see `group_bits`), and the answer is still the merge's.
        #[test]
        fn snapshots_in_many_groups_differ_as_their_merge(
            old in big_snapshot(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3), 0..200),
            seed in any::<u64>(),
        ) {
            prop_assert!(group_bits(old.len()) >= 1);
            let mut new = old.clone();
            for (at, kind) in edits {
                let at = at.index(new.len());
                match kind {
                    0 => new[at].value += 10,
                    1 => { new.remove(at); }
                    _ => new[at].hi = new[at].lo,
                }
            }
            let (mut old_input, mut new_input) = (old.clone(), new.clone());
            shuffle(&mut old_input, seed);
            shuffle(&mut new_input, seed ^ 1);
            let difference = diff(&old_input, &new_input);
            prop_assert_eq!(&difference, &diff_sorted(&old, &new));
            prop_assert_eq!(difference.apply(&old_input), new);
        }

        #[test]
        fn mostly_equal_snapshots(
            old in snapshot(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3), 0..10),
        ) {
            let mut new = old.clone();
            for (at, kind) in edits {
                if new.is_empty() {
                    break;
                }
                let at = at.index(new.len());
                match kind {
                    0 => new[at].value += 10,
                    1 => { new.remove(at); }
                    _ => new[at].hi = new[at].lo,
                }
            }
            let difference = diff_sorted(&old, &new);
            prop_assert_eq!(difference.apply(&old), new);
        }
    }
}
