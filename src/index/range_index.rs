//! [`RangeIndex`]: which of a million disjoint ranges holds a number, in three dependent reads.
//!
//! A plain digit trie walks one node per digit (six or more dependent cache misses for an
//! E.164 number), and a binary search over a million sorted ranges touches about twenty cache
//! lines, the first handful cached and the rest not. This index instead puts a direct table
//! over the leading bits of the key in front of the sorted ranges, per digit length (the top
//! bits of a key), so that a lookup is: one table slot (the tables are small enough to stay in
//! cache), then one fixed-size window of sorted `lo`s that arrives as a single burst of memory
//! traffic, then the range's extent and value (8 bytes).
//!
//! Real data is skewed: a few country codes, most numbers under a few area codes. A table sized
//! for the average would leave a few buckets holding thousands of ranges, so a bucket holding
//! more than a window's worth gets a child table over the next bits (as a burst trie does),
//! recursively, until every bucket's ranges fit in one window.

use super::{IndexError, KeyRange, KEY_LIMIT, LENGTH_SHIFT};

/// Ranges searched per lookup, and so the most a bucket may hold before it gets a child table.
/// Sixteen `lo`s are 128 bytes: two or three cache lines, all requested at once because the
/// search reads them independently.
const WINDOW: usize = 16;

/// Average ranges per bucket a table is sized for: leaves room under [`WINDOW`] for unevenness
/// while keeping the tables near one `u32` per four ranges.
const BUCKET_TARGET: usize = 4;

/// The widest table (in bits) one node may have, so a single dense bucket cannot ask for a
/// table far larger than its ranges.
const MAX_NODE_BITS: u32 = 20;

/// Marks a slot that points at a child table instead of holding a range position.
const CHILD: u32 = 1 << 31;

/// One table: `2^bits` buckets of `2^shift` keys from `base`. Keys outside `base..=top` are
/// clamped onto it, which is still correct because no range of the node starts outside it: a
/// key below finds the range before the node's first, a key above finds the node's last.
/// Fitting each node to the `lo`s it holds (rather than to its parent's bucket) is what keeps
/// clustered data to one or two levels.
#[derive(Clone, Copy, Debug, Default)]
struct Node {
    base: u64,
    top: u64,
    shift: u32,
    /// Where the node's first slot is in `slots`.
    offset: u32,
}

/// What the index keeps of a range besides its `lo`: 8 bytes, read once per lookup.
#[derive(Clone, Copy, Debug, Default)]
struct Tail {
    /// `hi - lo`, or [`WIDE`] when that does not fit (then `hi` is in `RangeIndex::wide`).
    extent: u32,
    value: u32,
}

/// Marks a [`Tail`] whose extent did not fit in 32 bits. Dial-plan ranges are far smaller
/// (DESIGN.md §3 rejects more than `max_range_size`, 10^6 by default); only long open prefixes
/// resolved to 15-digit ranges get here.
const WIDE: u32 = u32::MAX;

/// An index over disjoint [`KeyRange`]s answering "which range holds this key?".
///
/// Layout: the ranges sorted by `lo`, as the `lo`s (searched, a window at a time) and the
/// [`Tail`]s (read once, for the range found): 16 bytes per range. Sentinels frame them so that
/// the search never needs a bounds branch: position 0 holds an empty range (reached when no range
/// starts at or below the key), and [`WINDOW`] empty ranges with `lo = KEY_LIMIT` follow the
/// last one. `slots` holds all tables: a slot is the position of the first range whose `lo` is
/// at or above its bucket's first key, or [`CHILD`] | the child's position in `nodes`.
/// `nodes[length]` is the root for keys of that many digits.
#[derive(Clone, Debug)]
pub struct RangeIndex {
    lo: Vec<u64>,
    tails: Vec<Tail>,
    /// `(position, hi)` of the entries marked [`WIDE`], by position.
    wide: Vec<(usize, u64)>,
    slots: Vec<u32>,
    nodes: Vec<Node>,
    /// Tables on the longest path from a root to a range.
    depth: u32,
    len: usize,
}

impl RangeIndex {
    /// Builds the index from ranges in any order. Refuses overlapping ranges (naming the first
    /// overlapping pair in key order), reversed ones, and keys no number can have.
    pub fn build(mut ranges: Vec<KeyRange>) -> Result<RangeIndex, IndexError> {
        ranges.sort_unstable();
        RangeIndex::build_sorted(&ranges)
    }

    /// Builds the index from ranges already sorted (by `lo`, as `KeyRange`'s order sorts them).
    pub fn build_sorted(ranges: &[KeyRange]) -> Result<RangeIndex, IndexError> {
        check(ranges)?;
        if ranges.len() >= (CHILD as usize) - WINDOW - 1 {
            // Slots address ranges with 31 bits; two billion ranges is far beyond any dial plan.
            return Err(IndexError::OutOfRange(ranges[CHILD as usize - WINDOW - 2]));
        }
        let total = ranges.len() + 1 + WINDOW;
        let mut lo = Vec::with_capacity(total);
        let mut tails = Vec::with_capacity(total);
        let mut wide = Vec::new();
        lo.push(KEY_LIMIT);
        tails.push(Tail::default());
        for range in ranges {
            let extent = match u32::try_from(range.hi - range.lo) {
                Ok(extent) if extent != WIDE => extent,
                _ => {
                    wide.push((lo.len(), range.hi));
                    WIDE
                }
            };
            lo.push(range.lo);
            tails.push(Tail {
                extent,
                value: range.value,
            });
        }
        lo.resize(total, KEY_LIMIT);
        tails.resize(total, Tail::default());

        let mut builder = TableBuilder {
            lo: &lo,
            slots: Vec::with_capacity(ranges.len() / BUCKET_TARGET + 64),
            nodes: vec![Node::default(); 16],
            depth: 1,
        };
        let mut first = 1;
        for length in 0..16 {
            let end_key = (length as u64 + 1) << LENGTH_SHIFT;
            let end = first + lo[first..total - WINDOW].partition_point(|&key| key < end_key);
            builder.node(length, first, end, 1);
            first = end;
        }
        let TableBuilder {
            mut slots,
            mut nodes,
            depth,
            ..
        } = builder;
        slots.shrink_to_fit();
        nodes.shrink_to_fit();
        wide.shrink_to_fit();
        Ok(RangeIndex {
            lo,
            tails,
            wide,
            slots,
            nodes,
            depth,
            len: ranges.len(),
        })
    }

    /// The range holding `key`, if any.
    #[inline(always)]
    pub fn lookup(&self, key: u64) -> Option<KeyRange> {
        self.holding(self.position(key), key)
    }

    /// The range at `position` if it holds `key`.
    #[inline(always)]
    fn holding(&self, position: usize, key: u64) -> Option<KeyRange> {
        let range = self.range_at(position);
        // The sentinels start at KEY_LIMIT; only a key at or past it can reach them.
        (range.lo <= key && key <= range.hi && key < KEY_LIMIT).then_some(range)
    }

    /// The ranges holding each of `keys`, as [`RangeIndex::lookup`] would find them one by one.
    ///
    /// For throughput: a single lookup is a chain of dependent reads (table, child tables,
    /// window, extent), and on skewed data its exit from the child tables mispredicts, which
    /// throws away the other lookups the processor had started. Here every stage runs across
    /// the whole batch, so the batch's reads are independent of each other and in flight
    /// together, and the table descent runs a fixed number of rounds (a key that reached its
    /// leaf keeps re-reading the same slot, from cache), with no data-dependent branch.
    pub fn lookup_batch<const N: usize>(&self, keys: &[u64; N]) -> [Option<KeyRange>; N] {
        let mut at = keys.map(|key| (key >> LENGTH_SHIFT) as usize & 15);
        let mut slots = [0u32; N];
        for _ in 0..self.depth {
            for i in 0..N {
                let node = self.nodes[at[i]];
                let relative = keys[i].max(node.base).min(node.top) - node.base;
                let slot = self.slots[node.offset as usize + (relative >> node.shift) as usize];
                let child = (slot >> 31) as usize;
                at[i] = child * (slot & !CHILD) as usize + (1 - child) * at[i];
                slots[i] = slot;
            }
        }
        let mut positions = [0usize; N];
        for i in 0..N {
            positions[i] = self.window_position(slots[i] as usize, keys[i]);
        }
        let mut found = [None; N];
        for i in 0..N {
            found[i] = self.holding(positions[i], keys[i]);
        }
        found
    }

    /// The position of the last range whose `lo` is at or below `key` (0, the empty sentinel,
    /// when there is none). For a key at or above [`KEY_LIMIT`] (no number has one) it is some
    /// position whose range cannot hold the key, since every `hi` is below the limit; that
    /// saves the hot path a branch.
    #[inline(always)]
    fn position(&self, key: u64) -> usize {
        let mut node = self.nodes[(key >> LENGTH_SHIFT) as usize & 15];
        let slot = loop {
            let relative = key.max(node.base).min(node.top) - node.base;
            let slot = self.slots[node.offset as usize + (relative >> node.shift) as usize];
            if slot & CHILD == 0 {
                break slot;
            }
            node = self.nodes[(slot & !CHILD) as usize];
        };
        self.window_position(slot as usize, key)
    }

    /// The position of the last range at or below `key`, given the leaf slot of its bucket.
    #[inline(always)]
    fn window_position(&self, start: usize, key: u64) -> usize {
        // Every range of the bucket is inside the window, those before it start below the
        // bucket and those after it above the key, so counting `lo <= key` finds the position.
        let below = match self.lo[start..].first_chunk::<WINDOW>() {
            // `lo <= key` is the sign bit of `lo - (key + 1)` while both are below 2^63 (every
            // `lo` is at most KEY_LIMIT; a larger key only miscounts, see above). Summed like
            // this the count compiles to a few vector subtractions and shifts, where
            // `filter(..).count()` became a bit mask and a slow software popcount.
            Some(window) => window
                .iter()
                .map(|&lo| (lo.wrapping_sub(key.wrapping_add(1)) >> 63) as usize)
                .sum(),
            None => 0,
        };
        start + below - 1
    }

    /// `hi` of the [`WIDE`] entry at `position`: off the hot path, found by binary search.
    #[cold]
    fn wide_hi(&self, position: usize) -> u64 {
        self.wide
            .binary_search_by_key(&position, |&(at, _)| at)
            .map_or(0, |found| self.wide[found].1)
    }

    #[inline(always)]
    fn range_at(&self, position: usize) -> KeyRange {
        let lo = self.lo[position];
        let tail = self.tails[position];
        let hi = if tail.extent == WIDE {
            self.wide_hi(position)
        } else {
            lo + u64::from(tail.extent)
        };
        KeyRange {
            lo,
            hi,
            value: tail.value,
        }
    }

    /// How many tables the deepest lookup descends (1: the root table alone).
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// How many ranges the index holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The range at `position` in `lo` order.
    pub fn get(&self, position: usize) -> Option<KeyRange> {
        (position < self.len).then(|| self.range_at(position + 1))
    }

    /// The ranges in `lo` order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = KeyRange> + '_ {
        (1..self.len + 1).map(move |at| self.range_at(at))
    }

    /// The ranges in `lo` order, collected.
    pub fn ranges(&self) -> Vec<KeyRange> {
        self.iter().collect()
    }

    /// Heap bytes held by the index (allocated capacity, sentinels and tables included).
    pub fn memory_bytes(&self) -> usize {
        self.lo.capacity() * std::mem::size_of::<u64>()
            + self.tails.capacity() * std::mem::size_of::<Tail>()
            + self.wide.capacity() * std::mem::size_of::<(usize, u64)>()
            + self.slots.capacity() * std::mem::size_of::<u32>()
            + self.nodes.capacity() * std::mem::size_of::<Node>()
    }
}

/// Refuses input the index cannot represent; `ranges` is sorted by `lo`.
fn check(ranges: &[KeyRange]) -> Result<(), IndexError> {
    for range in ranges {
        if range.lo > range.hi {
            return Err(IndexError::Reversed(*range));
        }
        if range.hi >= KEY_LIMIT {
            return Err(IndexError::OutOfRange(*range));
        }
    }
    // Sorted and disjoint means each range ends before the next one starts; checked as one
    // branch-free fold so that the common (valid) case is a single streaming pass.
    let overlapping = ranges
        .windows(2)
        .fold(false, |seen, pair| seen | (pair[0].hi >= pair[1].lo));
    if overlapping {
        if let Some(pair) = ranges.windows(2).find(|pair| pair[0].hi >= pair[1].lo) {
            return Err(IndexError::Overlap {
                first: pair[0],
                second: pair[1],
            });
        }
    }
    Ok(())
}

/// Lays out the tables in `slots` and `nodes`, given the sorted, sentinel-framed `lo`s.
struct TableBuilder<'a> {
    lo: &'a [u64],
    slots: Vec<u32>,
    nodes: Vec<Node>,
    /// The deepest level built so far (roots are level 1).
    depth: u32,
}

impl TableBuilder<'_> {
    /// Fills `nodes[at]` with a table over the ranges at positions `first..end` (which may be
    /// none), bursting crowded buckets into child nodes.
    fn node(&mut self, at: usize, first: usize, end: usize, level: u32) {
        self.depth = self.depth.max(level);
        let offset = self.slots.len() as u32;
        if first == end {
            // One bucket whose window starts past the node: every key lands on the range
            // before it, which either holds the key or holds nothing.
            self.slots.push(first as u32);
            self.nodes[at] = Node {
                base: 0,
                top: 0,
                shift: 0,
                offset,
            };
            return;
        }
        let base = self.lo[first];
        let span = self.lo[end - 1] - base;
        let (bits, shift) = table_shape(end - first, span);
        let top = base + ((1u64 << (bits + shift)) - 1).min(u64::MAX - base);
        self.nodes[at] = Node {
            base,
            top,
            shift,
            offset,
        };
        let buckets = 1usize << bits;
        self.slots.resize(offset as usize + buckets, 0);
        let mut position = first;
        for bucket in 0..buckets {
            let bucket_end = (base + ((bucket as u64) << shift)).saturating_add(1 << shift);
            let from = position;
            while position < end && self.lo[position] < bucket_end {
                position += 1;
            }
            // Disjoint ranges have distinct `lo`s, so a crowded bucket holds more than one key
            // and its child's table is narrower than the bucket: the recursion ends.
            let slot = if position - from > WINDOW && shift > 0 {
                let child = self.nodes.len();
                self.nodes.push(Node::default());
                self.node(child, from, position, level + 1);
                CHILD | child as u32
            } else {
                from as u32
            };
            self.slots[offset as usize + bucket] = slot;
        }
    }
}

/// Table width and bucket width for `count` ranges whose `lo`s span `span + 1` keys: about
/// [`BUCKET_TARGET`] ranges per bucket, and no more buckets than keys.
fn table_shape(count: usize, span: u64) -> (u32, u32) {
    let wanted = (count / BUCKET_TARGET)
        .max(1)
        .next_power_of_two()
        .trailing_zeros();
    let span_bits = 64 - span.leading_zeros();
    let bits = wanted.min(span_bits).min(MAX_NODE_BITS);
    (bits, span_bits - bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::Number;
    use proptest::prelude::*;

    fn key(value: u64) -> u64 {
        Number::from_u64(value).unwrap().key()
    }

    fn brute_force(ranges: &[KeyRange], probe: u64) -> Option<KeyRange> {
        ranges.iter().copied().find(|range| range.contains(probe))
    }

    #[test]
    fn finds_the_range_holding_a_key() {
        let ranges = vec![
            KeyRange::new(key(3226127000), key(3226127002), 1),
            KeyRange::new(key(3226127010), key(3226127010), 2),
            KeyRange::new(key(321), key(329), 3),
            KeyRange::new(key(441000000000), key(441999999999), 4),
        ];
        let index = RangeIndex::build(ranges.clone()).unwrap();
        assert_eq!(index.len(), 4);
        assert_eq!(index.lookup(key(3226127001)), Some(ranges[0]));
        assert_eq!(index.lookup(key(3226127002)), Some(ranges[0]));
        assert_eq!(index.lookup(key(3226127003)), None);
        assert_eq!(index.lookup(key(3226127010)), Some(ranges[1]));
        assert_eq!(index.lookup(key(325)), Some(ranges[2]));
        assert_eq!(index.lookup(key(32)), None);
        assert_eq!(index.lookup(key(3251)), None);
        assert_eq!(index.lookup(key(441234567890)), Some(ranges[3]));
        assert_eq!(index.lookup(key(442000000000)), None);
        assert_eq!(index.lookup(0), None);
        assert_eq!(index.lookup(u64::MAX), None);
        assert_eq!(index.lookup(KEY_LIMIT), None);
        let mut sorted = ranges;
        sorted.sort_unstable();
        assert_eq!(index.ranges(), sorted);
        assert_eq!(index.get(0), Some(sorted[0]));
        assert_eq!(index.get(4), None);
    }

    proptest! {
        /// The batched path is a separate implementation of the same search.
        #[test]
        fn batch_lookup_equals_single_lookups(
            starts in prop::collection::btree_set(
                prop_oneof![1_000u64..60_000, 30_000u64..30_400],
                1..400,
            ),
            probes in prop::collection::vec(900u64..70_000, 32),
        ) {
            // Ranges of 1-9 numbers at the chosen starts, trimmed to stay disjoint; clustered
            // enough below 60,000 to grow child tables.
            let starts: Vec<u64> = starts.into_iter().collect();
            let ranges: Vec<KeyRange> = starts
                .iter()
                .enumerate()
                .map(|(i, &lo)| {
                    let next = starts.get(i + 1).copied().unwrap_or(u64::MAX);
                    let hi = (lo + (lo % 9)).min(next - 1);
                    KeyRange::new(key(lo), key(hi), i as u32)
                })
                .collect();
            let index = RangeIndex::build(ranges.clone()).unwrap();
            let keys: [u64; 32] = std::array::from_fn(|i| key(probes[i]));
            prop_assume!(index.depth() > 1 || starts.len() < 200);
            let batch = index.lookup_batch(&keys);
            for (i, &probe) in keys.iter().enumerate() {
                prop_assert_eq!(batch[i], index.lookup(probe));
                prop_assert_eq!(batch[i], brute_force(&ranges, probe));
            }
        }
    }

    #[test]
    fn clustered_ranges_get_child_tables() {
        let ranges = (0..200)
            .map(|i| KeyRange::new(key(3_226_127_000 + 2 * i), key(3_226_127_000 + 2 * i), 0))
            .chain([KeyRange::new(key(4_400_000_000), key(4_400_000_000), 1)])
            .collect();
        let index = RangeIndex::build(ranges).unwrap();
        assert!(index.depth() > 1, "depth {}", index.depth());
        let keys: [u64; 4] = [3_226_127_000, 3_226_127_001, 3_226_127_398, 4_400_000_000].map(key);
        let found = index.lookup_batch(&keys).map(|r| r.map(|r| r.value));
        assert_eq!(found, [Some(0), None, Some(0), Some(1)]);
    }

    #[test]
    fn empty_index_finds_nothing() {
        let index = RangeIndex::build(Vec::new()).unwrap();
        assert!(index.is_empty());
        for probe in [0, 1, key(1), key(999_999_999_999_999), KEY_LIMIT - 1] {
            assert_eq!(index.lookup(probe), None);
        }
    }

    #[test]
    fn overlapping_input_is_rejected_naming_both() {
        let first = KeyRange::new(key(3226127000), key(3226127009), 1);
        let second = KeyRange::new(key(3226127005), key(3226127005), 2);
        let other = KeyRange::new(key(3226128000), key(3226128009), 3);
        let error = RangeIndex::build(vec![other, second, first]).unwrap_err();
        assert_eq!(error, IndexError::Overlap { first, second });
        let message = error.to_string();
        assert!(
            message.contains("+3226127000..+3226127009 (value 1)"),
            "{message}"
        );
        assert!(message.contains("+3226127005 (value 2)"), "{message}");
        // Touching ends overlap too: the key is in both.
        let touching = KeyRange::new(key(3226127009), key(3226127012), 4);
        assert!(matches!(
            RangeIndex::build(vec![first, touching]),
            Err(IndexError::Overlap { .. })
        ));
        // Same start, different ends: the shorter sorts first.
        let same_start = KeyRange::new(first.lo, first.lo, 5);
        assert_eq!(
            RangeIndex::build(vec![first, same_start]).unwrap_err(),
            IndexError::Overlap {
                first: same_start,
                second: first
            }
        );
    }

    #[test]
    fn malformed_ranges_are_rejected() {
        let reversed = KeyRange::new(key(3299), key(3200), 1);
        assert_eq!(
            RangeIndex::build(vec![reversed]).unwrap_err(),
            IndexError::Reversed(reversed)
        );
        let beyond = KeyRange::new(KEY_LIMIT - 1, KEY_LIMIT, 1);
        assert_eq!(
            RangeIndex::build(vec![beyond]).unwrap_err(),
            IndexError::OutOfRange(beyond)
        );
    }

    #[test]
    fn crowded_prefix_gets_child_tables() {
        // 20 000 single numbers under one 9-digit prefix, plus one huge range elsewhere: the
        // root table cannot separate them, so lookups go through child tables.
        let mut ranges: Vec<KeyRange> = (0..20_000u64)
            .map(|i| {
                let number = key(32261270000 + i * 3);
                KeyRange::new(number, number, i as u32)
            })
            .collect();
        ranges.push(KeyRange::new(key(10000000000), key(19999999999), 99));
        ranges.push(KeyRange::new(key(90000000000), key(90000000000), 98));
        let index = RangeIndex::build(ranges.clone()).unwrap();
        assert!(index.nodes.len() > 16);
        assert_eq!(index.wide.len(), 1);
        for i in 0..60_010u64 {
            let probe = key(32261270000 + i);
            assert_eq!(index.lookup(probe), brute_force(&ranges, probe), "{probe}");
        }
        assert_eq!(index.lookup(key(15555555555)).map(|r| r.value), Some(99));
        assert_eq!(index.lookup(key(90000000000)).map(|r| r.value), Some(98));
        assert_eq!(index.lookup(key(90000000001)), None);
        assert!(index.memory_bytes() <= 32 * ranges.len() + 4096);
    }

    /// Disjoint ranges of 1-7 digit numbers, built by cutting sorted random keys into pieces.
    fn disjoint_ranges() -> impl Strategy<Value = Vec<KeyRange>> {
        proptest::collection::vec((1u64..10_000_000, 0u64..50, any::<bool>()), 0..600).prop_map(
            |items| {
                let mut starts: Vec<(u64, u64)> = items
                    .into_iter()
                    .filter(|&(_, _, keep)| keep)
                    .map(|(value, width, _)| (value, width))
                    .collect();
                starts.sort_unstable();
                let mut ranges: Vec<KeyRange> = Vec::new();
                for (i, &(value, width)) in starts.iter().enumerate() {
                    let lo = key(value);
                    // Same digit count, and short of the next start.
                    let last_same_length = 10u64.pow(crate::number::digit_count(value)) - 1;
                    let mut hi_value = (value + width).min(last_same_length);
                    if let Some(&(next, _)) = starts.get(i + 1) {
                        if next <= hi_value {
                            hi_value = next - 1;
                        }
                    }
                    if ranges.last().is_some_and(|last| last.hi >= lo) || hi_value < value {
                        continue;
                    }
                    ranges.push(KeyRange::new(lo, key(hi_value), i as u32));
                }
                ranges
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn lookup_equals_linear_scan(
            ranges in disjoint_ranges(),
            probes in proptest::collection::vec(1u64..100_000_000, 200),
            raw_probes in proptest::collection::vec(any::<u64>(), 20),
            shuffle_seed in any::<u64>(),
        ) {
            let mut shuffled = ranges.clone();
            // Input order must not matter.
            let len = shuffled.len();
            for i in 0..len {
                let j = (shuffle_seed.wrapping_mul(i as u64 + 1) >> 7) as usize % len;
                shuffled.swap(i, j);
            }
            let index = RangeIndex::build(shuffled).unwrap();
            prop_assert_eq!(index.len(), ranges.len());
            prop_assert_eq!(index.ranges(), ranges.clone());
            let mut keys: Vec<u64> = probes.iter().map(|&value| key(value)).collect();
            keys.extend(raw_probes);
            keys.extend([u64::MAX, u64::MAX - 1, 1 << 63, KEY_LIMIT, KEY_LIMIT + 1]);
            for range in &ranges {
                // Ends, just outside, and the same value at other lengths.
                keys.extend([range.lo, range.hi, range.lo - 1, range.hi + 1]);
                keys.extend([range.lo + (range.hi - range.lo) / 2]);
                let value = range.lo & ((1 << LENGTH_SHIFT) - 1);
                keys.extend([range.lo + (1 << LENGTH_SHIFT), (value * 10) | (3 << LENGTH_SHIFT)]);
            }
            for probe in keys {
                prop_assert_eq!(index.lookup(probe), brute_force(&ranges, probe), "probe {:#x}", probe);
            }
        }

        #[test]
        fn lookup_equals_linear_scan_when_crowded(
            values in proptest::collection::btree_set(0u64..100_000, 0..2000),
            probes in proptest::collection::vec(0u64..100_010, 300),
        ) {
            // Dense single numbers under one prefix force child tables, several levels deep.
            let ranges: Vec<KeyRange> = values
                .iter()
                .map(|&v| KeyRange::new(key(3226100000 + v), key(3226100000 + v), v as u32))
                .collect();
            let index = RangeIndex::build(ranges.clone()).unwrap();
            for probe in probes {
                let probe = key(3226100000 + probe);
                prop_assert_eq!(index.lookup(probe), brute_force(&ranges, probe));
            }
        }
    }
}
