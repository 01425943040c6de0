//! [`RangeIndex`]: which of a million disjoint ranges holds a number, with one read from memory.
//!
//! A plain digit trie walks one node per digit (six or more dependent cache misses for an
//! E.164 number), and a binary search over a million sorted ranges touches about twenty cache
//! lines, the first handful cached and the rest not. This index keeps the ranges sorted, four to
//! a 64-byte cache line with their extents and values, and searches only the first `lo` of every
//! line (`firsts`, 2 bytes per range, small enough to stay in the processor's caches): a direct
//! table over the leading bits of the key, per digit length (the top bits of a key), gives a
//! window of [`WINDOW`] `firsts` that holds the line; then that one line, the only read that goes
//! to memory, gives the range. Memory traffic per lookup, not comparisons, bounds the
//! throughput of a million-range lookup, so the layout spends compares to save lines: a window of
//! sixteen 16-byte entries was four or five lines per lookup, and ran at half this speed.
//!
//! Real data is skewed: a few country codes, most numbers under a few area codes. A table sized
//! for the average would leave a few buckets holding thousands of lines, so a bucket holding
//! more than a window's worth gets a child table over the next bits (as a burst trie does),
//! recursively, until every bucket's lines fit in one window.

use super::huge_pages;
use super::prefetch::prefetch;
use super::{IndexError, KeyRange, KEY_LIMIT, LENGTH_SHIFT};

/// Line `firsts` searched per lookup: one more than the most lines a bucket may hold before it
/// gets a child table (the window starts at the line before the bucket). Eight are 64 bytes;
/// measured against 4 and 16, 8 was fastest on both the clustered and adversarial workloads.
const WINDOW: usize = 8;

/// Average lines per bucket a table is sized for: leaves room under [`WINDOW`] for unevenness
/// while keeping the tables near one `u32` per eight ranges.
const BUCKET_TARGET: usize = 2;

/// The widest table (in bits) one node may have, so a single dense bucket cannot ask for a
/// table far larger than its ranges.
const MAX_NODE_BITS: u32 = 20;

/// Levels every lookup descends without a branch: a key that reached its leaf sooner re-reads
/// its slot, from cache. On the realistic workload at a million ranges 44 % of lookups end at
/// the root, 56 % one level down and 0.4 % two levels down: a loop that exits at the leaf
/// mispredicts its exit about every other lookup, and `depth` fixed rounds pay a third round
/// for the 0.4 %. The rare deeper keys finish in a loop.
const ROUNDS: u32 = 2;

/// Marks a slot that points at a child table instead of holding a line position.
const CHILD: u32 = 1 << 31;

/// One table: `2^bits` buckets of `2^shift` keys from `base`. Keys outside the table are
/// clamped onto it, which is still correct because no range of the node starts outside it: a
/// key below finds the range before the node's first, a key above finds the node's last.
/// Fitting each node to the `lo`s it holds (rather than to its parent's bucket) is what keeps
/// clustered data to one or two levels.
///
/// Two words, so that a step of the descent is two loads: a lookup's loads wait in the
/// processor's load queue until the line it reads last comes from memory, so every load a
/// lookup spares lets more lookups be in flight. Measured at a million ranges, in a harness
/// that times the index beside FxHashMap as `benches/engine.rs` does, this node and the
/// [`Line`] layout below together against the four-field node (base, top, shift, offset) and
/// interleaved entries: single lookups 15.8 -> 19.5 M/s on the adversarial workload, 13.0 ->
/// 14.1 M/s on the realistic one.
#[derive(Clone, Copy, Debug, Default)]
struct Node {
    base: u64,
    /// Where the node's first slot is in `slots` (bits 0-31), `shift` (bits 32-39) and the
    /// last bucket, `2^bits - 1` (bits 40-63).
    shape: u64,
}

impl Node {
    fn new(base: u64, offset: u32, shift: u32, bits: u32) -> Node {
        debug_assert!(shift < 64 && bits < 24);
        Node {
            base,
            shape: u64::from(offset) | u64::from(shift) << 32 | ((1u64 << bits) - 1) << 40,
        }
    }

    /// Where in `slots` the bucket holding `key` (clamped onto the table) is.
    #[inline(always)]
    fn slot_of(self, key: u64) -> usize {
        let bucket =
            (key.saturating_sub(self.base) >> ((self.shape >> 32) & 63)).min(self.shape >> 40);
        (self.shape as u32) as usize + bucket as usize
    }
}

/// A range as the index keeps it: 16 bytes, in the line that also holds its `lo`, so that the
/// line searched last also holds the answer.
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    lo: u64,
    /// `hi - lo`, or [`WIDE`] when that does not fit (then `hi` is in `RangeIndex::wide`).
    extent: u32,
    value: u32,
}

/// Entries per [`Line`].
const PER_LINE: usize = 4;

/// Four entries in one 64-byte cache line: the only read of a lookup that goes to memory.
/// Their fields are kept column by column, so that the four `lo`s searched are two 16-byte
/// loads and the answer's extent and value two more, where four interleaved entries took
/// seven loads (see [`Node`] for why loads count).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Line {
    lo: [u64; PER_LINE],
    extent: [u32; PER_LINE],
    value: [u32; PER_LINE],
}

impl Line {
    /// A line of padding: every `lo` at [`KEY_LIMIT`], above any key a number can have.
    const PADDING: Line = Line {
        lo: [KEY_LIMIT; PER_LINE],
        extent: [0; PER_LINE],
        value: [0; PER_LINE],
    };

    #[inline(always)]
    fn entry(&self, at: usize) -> Entry {
        Entry {
            lo: self.lo[at],
            extent: self.extent[at],
            value: self.value[at],
        }
    }

    fn set(&mut self, at: usize, entry: Entry) {
        self.lo[at] = entry.lo;
        self.extent[at] = entry.extent;
        self.value[at] = entry.value;
    }
}

/// Marks an [`Entry`] whose extent did not fit in 32 bits. Dial-plan ranges are far smaller
/// (DESIGN.md §3 rejects more than `max_range_size`, 10^6 by default); only long open prefixes
/// resolved to 15-digit ranges get here.
const WIDE: u32 = u32::MAX;

/// An index over disjoint [`KeyRange`]s answering "which range holds this key?".
///
/// Layout: the ranges sorted by `lo`, as [`Entry`]s packed four to a cache line: 16 bytes per
/// range. Position 0 holds a sentinel with `lo = 0` that holds nothing (the answer when no range
/// starts at or below the key), and sentinels with `lo = KEY_LIMIT` pad the last line. `firsts`
/// holds the first `lo` of every line (followed by [`WINDOW`] copies of `KEY_LIMIT`): 2 bytes
/// per range, small enough to stay in cache, and the tables search it rather than the ranges.
/// A lookup finds the line (tables, then a window of `firsts`, all cached), then reads that one
/// line from memory, where the range holding the key is if any is.
///
/// `slots` holds all tables: a slot is the position in `firsts` of the line before its
/// bucket's first (so that the window starting there always holds the answer), or [`CHILD`] |
/// the child's position in `nodes`. `nodes[length]` is the root for keys of that many digits.
#[derive(Clone, Debug)]
pub struct RangeIndex {
    lines: Vec<Line>,
    firsts: Vec<u64>,
    /// `(position, hi)` of the entries marked [`WIDE`], by position.
    wide: Vec<(usize, u64)>,
    slots: Vec<u32>,
    nodes: Vec<Node>,
    /// Tables on the longest path from a root to a line.
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
            // Slots address lines with 31 bits; two billion ranges is far beyond any dial plan.
            return Err(IndexError::OutOfRange(ranges[CHILD as usize - WINDOW - 2]));
        }
        let line_count = (ranges.len() + 1).div_ceil(PER_LINE);
        let mut lines = huge_pages::reserve(line_count);
        lines.resize(line_count, Line::PADDING);
        lines[0].set(0, Entry::default());
        let mut wide = Vec::new();
        for (position, range) in (1..).zip(ranges) {
            let extent = match u32::try_from(range.hi - range.lo) {
                Ok(extent) if extent != WIDE => extent,
                _ => {
                    wide.push((position, range.hi));
                    WIDE
                }
            };
            lines[position / PER_LINE].set(
                position % PER_LINE,
                Entry {
                    lo: range.lo,
                    extent,
                    value: range.value,
                },
            );
        }
        let mut firsts: Vec<u64> = Vec::with_capacity(line_count + WINDOW);
        firsts.extend(lines.iter().map(|line| line.lo[0]));
        firsts.resize(line_count + WINDOW, KEY_LIMIT);

        let mut builder = TableBuilder {
            lo: &firsts,
            slots: Vec::with_capacity(line_count / BUCKET_TARGET + 64),
            nodes: vec![Node::default(); 16],
            depth: 1,
        };
        let mut first = 1;
        for length in 0..16 {
            let end_key = (length as u64 + 1) << LENGTH_SHIFT;
            let end = first + firsts[first..line_count].partition_point(|&key| key < end_key);
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
            lines,
            firsts,
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
        self.lookup_in_line(self.line_for(key), key)
    }

    /// The line a lookup of `key` reads: everything a lookup does before its one read from
    /// memory. With [`RangeIndex::lookup_in_line`], `lookup` split at that read, for
    /// `benches/engine.rs` to time the read alone (the floor under this index's single
    /// lookups); not meant for other callers.
    #[doc(hidden)]
    #[inline(always)]
    pub fn line_for(&self, key: u64) -> usize {
        self.line_of(self.leaf_slot(key) as usize, key)
    }

    /// The range in `line` holding `key`, if any, where `line` is the last line starting at
    /// or below `key`, as [`RangeIndex::line_for`] finds it (another line may answer a wrong
    /// range; one past the end panics). The entry is taken from the line already read, and
    /// the checks are one branch-free conjunction.
    #[doc(hidden)]
    #[inline(always)]
    pub fn lookup_in_line(&self, line: usize, key: u64) -> Option<KeyRange> {
        let found = &self.lines[line];
        let below: usize = found.lo.iter().map(|&lo| at_or_below(lo, key)).sum();
        // `line` starts at or below any key below KEY_LIMIT, so `below >= 1` for those; a key
        // at or past KEY_LIMIT may take any entry, since the checks below reject it.
        let at = below.wrapping_sub(1) & (PER_LINE - 1);
        let entry = found.entry(at);
        let position = line * PER_LINE + at;
        let hi = if entry.extent == WIDE {
            self.wide_hi(position)
        } else {
            entry.lo + u64::from(entry.extent)
        };
        // The sentinels hold nothing: the first is at position 0, the last ones start at
        // KEY_LIMIT, which only a key at or past it can reach.
        let held = (entry.lo <= key) & (key <= hi) & (key < KEY_LIMIT) & (position != 0);
        held.then_some(KeyRange {
            lo: entry.lo,
            hi,
            value: entry.value,
        })
    }

    /// The value of the range holding each of `keys`, as [`RangeIndex::lookup`] would find them
    /// one by one.
    ///
    /// For throughput: every stage runs across the whole batch, so the batch's reads are
    /// independent of each other and in flight together. It answers values, not ranges: a
    /// batch of 32 whole ranges is a kilobyte to copy out, and returning values instead took
    /// batched lookups at a million adversarial ranges from 0.68x to 0.78x FxHashMap (in the
    /// harness of `Node`'s figures).
    pub fn lookup_batch<const N: usize>(&self, keys: &[u64; N]) -> [Option<u32>; N] {
        // The descent runs a fixed number of rounds (a key that reached its leaf re-reads the
        // same slot, from cache), with no data-dependent branch; the rare keys below
        // [`ROUNDS`] levels finish one by one.
        let mut at = keys.map(|key| (key >> LENGTH_SHIFT) as usize & 15);
        let mut slots = [0u32; N];
        for _ in 0..self.depth.min(ROUNDS) {
            for i in 0..N {
                (at[i], slots[i]) = self.step(at[i], keys[i]);
            }
        }
        for i in 0..N {
            while slots[i] & CHILD != 0 {
                (at[i], slots[i]) = self.step(at[i], keys[i]);
            }
        }
        // Every key's window, then every key's line, is asked of memory before any is searched
        // (see `prefetch`): the reads of the whole batch are in flight together. Measured at a
        // million ranges against the same loop without the prefetches: batched lookups 0.49x
        // -> 0.64x FxHashMap on the realistic workload, 0.60x -> 0.81x on the adversarial one.
        for &slot in &slots {
            if let Some(window) = self.firsts.get(slot as usize..slot as usize + WINDOW) {
                prefetch(&window[0]);
                prefetch(&window[WINDOW - 1]);
            }
        }
        let mut lines = [0usize; N];
        for i in 0..N {
            lines[i] = self.line_of(slots[i] as usize, keys[i]);
            prefetch(&self.lines[lines[i]]);
        }
        let mut found = [None; N];
        for i in 0..N {
            found[i] = self
                .lookup_in_line(lines[i], keys[i])
                .map(|range| range.value);
        }
        found
    }

    /// The leaf slot of `key`: where its window over `firsts` starts. [`ROUNDS`] levels without
    /// a branch, as the batch does (measured against a loop that exits at the leaf, at a million
    /// realistic ranges: single lookups 4-6 % faster, batched 5 %).
    #[inline(always)]
    fn leaf_slot(&self, key: u64) -> u32 {
        let mut at = (key >> LENGTH_SHIFT) as usize & 15;
        let mut slot = 0;
        for _ in 0..self.depth.min(ROUNDS) {
            (at, slot) = self.step(at, key);
        }
        while slot & CHILD != 0 {
            (at, slot) = self.step(at, key);
        }
        slot
    }

    /// One round of the batch's descent from `nodes[at]`: the node to read next (itself once at
    /// a leaf) and the slot read.
    #[inline(always)]
    fn step(&self, at: usize, key: u64) -> (usize, u32) {
        let slot = self.slots[self.nodes[at].slot_of(key)];
        let child = (slot >> 31) as usize;
        (child * (slot & !CHILD) as usize + (1 - child) * at, slot)
    }

    /// The last line whose first `lo` is at or below `key`, given the leaf slot of its bucket.
    #[inline(always)]
    fn line_of(&self, start: usize, key: u64) -> usize {
        // The window starts at the line before the bucket (at or below the key), holds every
        // line of the bucket, and those after it start above the key, so counting
        // `first <= key` finds the line.
        let below: usize = match self.firsts[start..].first_chunk::<WINDOW>() {
            Some(window) => window.iter().map(|&first| at_or_below(first, key)).sum(),
            None => 0,
        };
        // Only a key at or past KEY_LIMIT counts the padding past the last line.
        (start + below).saturating_sub(1).min(self.lines.len() - 1)
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
        let entry = self.lines[position / PER_LINE].entry(position % PER_LINE);
        let hi = if entry.extent == WIDE {
            self.wide_hi(position)
        } else {
            entry.lo + u64::from(entry.extent)
        };
        KeyRange {
            lo: entry.lo,
            hi,
            value: entry.value,
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
        self.lines.capacity() * std::mem::size_of::<Line>()
            + self.firsts.capacity() * std::mem::size_of::<u64>()
            + self.wide.capacity() * std::mem::size_of::<(usize, u64)>()
            + self.slots.capacity() * std::mem::size_of::<u32>()
            + self.nodes.capacity() * std::mem::size_of::<Node>()
    }
}

/// 1 when `lo <= key`, else 0: the sign bit of `lo - (key + 1)` while both are below 2^63 (every
/// `lo` is at most KEY_LIMIT; a larger key only miscounts, which `holding` rejects). Summed over
/// a window this compiles to subtractions and shifts, where `filter(..).count()` became a bit
/// mask and a slow software popcount.
#[inline(always)]
fn at_or_below(lo: u64, key: u64) -> usize {
    (lo.wrapping_sub(key.wrapping_add(1)) >> 63) as usize
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

/// Lays out the tables in `slots` and `nodes`, given the sorted, sentinel-framed `firsts`.
struct TableBuilder<'a> {
    lo: &'a [u64],
    slots: Vec<u32>,
    nodes: Vec<Node>,
    /// The deepest level built so far (roots are level 1).
    depth: u32,
}

impl TableBuilder<'_> {
    /// How many of the lines `first..end` would sit in buckets of `2^shift` keys from `base`
    /// that hold more lines than one window can search.
    fn crowded(&self, first: usize, end: usize, base: u64, shift: u32) -> usize {
        let mut crowded = 0;
        let mut from = first;
        while from < end {
            let bucket = (self.lo[from] - base) >> shift;
            let to =
                from + self.lo[from..end].partition_point(|&lo| (lo - base) >> shift == bucket);
            if to - from > WINDOW - 1 {
                crowded += to - from;
            }
            from = to;
        }
        crowded
    }

    /// Fills `nodes[at]` with a table over the ranges at positions `first..end` (which may be
    /// none), bursting crowded buckets into child nodes.
    fn node(&mut self, at: usize, first: usize, end: usize, level: u32) {
        self.depth = self.depth.max(level);
        let offset = self.slots.len() as u32;
        if first == end {
            // One bucket with no range: every key lands on the range before it, which either
            // holds the key or holds nothing.
            self.slots.push(first as u32 - 1);
            self.nodes[at] = Node::new(0, offset, 0, 0);
            return;
        }
        let base = self.lo[first];
        let span = self.lo[end - 1] - base;
        let (mut bits, mut shift) = table_shape(end - first, span);
        if level == 1
            && shift >= ROOT_WIDENING
            && self.crowded(first, end, base, shift) * 2 > end - first
        {
            // Most of the lines would sit in buckets that need a child table: clustered data.
            bits += ROOT_WIDENING;
            shift -= ROOT_WIDENING;
        }
        self.nodes[at] = Node::new(base, offset, shift, bits);
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
            // and its child's table is narrower than the bucket: the recursion ends. The window
            // also holds the range before the bucket, hence `WINDOW - 1`.
            let slot = if position - from > WINDOW - 1 && shift > 0 {
                let child = self.nodes.len();
                self.nodes.push(Node::default());
                self.node(child, from, position, level + 1);
                CHILD | child as u32
            } else {
                from as u32 - 1
            };
            self.slots[offset as usize + bucket] = slot;
        }
    }
}

/// Extra bits a root table takes when most of its lines would otherwise need a child table.
/// A root is read by every lookup and stays cached; a child table costs every key under it one
/// more dependent read. Measured at a million realistic (clustered) ranges, in the harness of
/// [`Node`]'s figures: batched lookups 0.68x -> 0.73x FxHashMap, for 19.4 -> 21.4 bytes per
/// range (`benches/engine.rs`, with this rule: 20.9). The adversarial workload, whose lines sit
/// evenly, keeps its root as it is: 4x wider there cost 8 % of its speed.
const ROOT_WIDENING: u32 = 2;

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
                prop_assert_eq!(batch[i], index.lookup(probe).map(|r| r.value));
                prop_assert_eq!(batch[i], brute_force(&ranges, probe).map(|r| r.value));
            }
        }
    }

    #[test]
    fn clustered_ranges_get_child_tables() {
        let ranges = (0..20_000)
            .map(|i| KeyRange::new(key(3_226_127_000 + 2 * i), key(3_226_127_000 + 2 * i), 0))
            .chain((0..8).map(|i| {
                KeyRange::new(key(4_400_000_000 + 10 * i), key(4_400_000_000 + 10 * i), 1)
            }))
            .collect();
        let index = RangeIndex::build(ranges).unwrap();
        assert!(index.depth() > 1, "depth {}", index.depth());
        let keys: [u64; 4] = [3_226_127_000, 3_226_127_001, 3_226_127_398, 4_400_000_000].map(key);
        let found = index.lookup_batch(&keys);
        assert_eq!(found, [Some(0), None, Some(0), Some(1)]);
    }

    /// Lines per root bucket, for the ten-digit numbers of `index`.
    fn root_lines_per_bucket(index: &RangeIndex) -> f64 {
        let ten_digits = index.iter().filter(|r| r.lo >> LENGTH_SHIFT == 10).count();
        let buckets = (index.nodes[10].shape >> 40) + 1;
        ten_digits as f64 / PER_LINE as f64 / buckets as f64
    }

    #[test]
    fn a_clustered_root_is_widened_and_an_even_one_is_not() {
        // 64 clusters of 200 consecutive odd numbers: every line of the root would sit in a
        // bucket that needs a child table.
        let clustered: Vec<KeyRange> = (0..64u64)
            .flat_map(|c| (0..200u64).map(move |i| 3_200_000_000 + c * 10_000_000 + 2 * i))
            .enumerate()
            .map(|(i, number)| KeyRange::new(key(number), key(number), i as u32))
            .collect();
        // As many ranges spread evenly over the same span.
        let even: Vec<KeyRange> = (0..12_800u64)
            .map(|i| 3_200_000_000 + i * 50_000)
            .enumerate()
            .map(|(i, number)| KeyRange::new(key(number), key(number), i as u32))
            .collect();
        let widened = RangeIndex::build(clustered.clone()).unwrap();
        let plain = RangeIndex::build(even.clone()).unwrap();
        let (widened_load, plain_load) = (
            root_lines_per_bucket(&widened),
            root_lines_per_bucket(&plain),
        );
        assert!(widened_load <= BUCKET_TARGET as f64 / 2.0, "{widened_load}");
        assert!(plain_load > BUCKET_TARGET as f64 / 2.0, "{plain_load}");
        for (index, ranges) in [(&widened, &clustered), (&plain, &even)] {
            for range in ranges.iter().step_by(7) {
                for probe in [range.lo - 1, range.lo, range.hi + 1] {
                    assert_eq!(
                        index.lookup(probe),
                        brute_force(ranges, probe),
                        "{probe:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn keys_deeper_than_the_fixed_rounds_finish_their_descent() {
        // Clusters within clusters within clusters: a few keys need a third table.
        let mut ranges = Vec::new();
        for a in 0..4u64 {
            for b in 0..40u64 {
                for c in 0..(if b == 0 { 400 } else { 20 }) {
                    let number = 3_200_000_000 + a * 100_000_000 + b * 100_000 + c * 2;
                    ranges.push(KeyRange::new(key(number), key(number), ranges.len() as u32));
                }
            }
        }
        let index = RangeIndex::build(ranges.clone()).unwrap();
        assert!(index.depth() > ROUNDS, "depth {}", index.depth());
        let probes: Vec<u64> = (0..4)
            .flat_map(|a| (0..2_000).map(move |c| 3_200_000_000 + a * 100_000_000 + c))
            .map(key)
            .collect();
        for chunk in probes.chunks_exact(16) {
            let keys: &[u64; 16] = chunk.try_into().unwrap();
            let found = index.lookup_batch(keys);
            for (i, &probe) in keys.iter().enumerate() {
                assert_eq!(
                    index.lookup(probe),
                    brute_force(&ranges, probe),
                    "{probe:#x}"
                );
                assert_eq!(
                    found[i],
                    brute_force(&ranges, probe).map(|r| r.value),
                    "batched {probe:#x}"
                );
            }
        }
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
        // 20 000 single numbers under one 9-digit prefix, plus one huge range elsewhere.
        let mut ranges: Vec<KeyRange> = (0..20_000u64)
            .map(|i| {
                let number = key(32261270000 + i * 3);
                KeyRange::new(number, number, i as u32)
            })
            .collect();
        ranges.push(KeyRange::new(key(10000000000), key(19999999999), 99));
        ranges.push(KeyRange::new(key(90000000000), key(90000000000), 98));
        let index = RangeIndex::build(ranges.clone()).unwrap();
        // The tables search the lines' first keys, which here are all in the crowd (the huge
        // range and the lone number share lines with it): the root alone separates them.
        assert_eq!(index.depth(), 1);
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

    /// The range holding `probe` by binary search over `sorted` (sorted, disjoint): independent
    /// of the index's tables and lines.
    fn binary_search(sorted: &[KeyRange], probe: u64) -> Option<KeyRange> {
        let after = sorted.partition_point(|range| range.lo <= probe);
        let candidate = sorted[..after].last()?;
        candidate.contains(probe).then_some(*candidate)
    }

    /// Clustered and adversarial shapes at once, in two lengths (10 and 15 digits): runs of
    /// single numbers and small blocks with gaps of 0-2 numbers (many lines per bucket, child
    /// tables), a few far jumps, and huge ranges beside the crowd (bucket widths sized for the
    /// span are useless there).
    fn clustered_ranges() -> impl Strategy<Value = Vec<KeyRange>> {
        prop::collection::vec((0u64..3, 1u64..4, any::<u8>()), 1..3000).prop_map(|steps| {
            let mut ranges = Vec::new();
            let (mut short, mut long) = (3_226_100_000u64, 322_612_700_000_000u64);
            for (i, (gap, width, kind)) in steps.into_iter().enumerate() {
                let cursor = if kind % 2 == 0 { &mut short } else { &mut long };
                *cursor += gap;
                let width = match kind {
                    250.. => 10_000_000,
                    _ => width,
                };
                if kind % 64 == 1 {
                    *cursor += 1_000_000;
                }
                ranges.push(KeyRange::new(
                    key(*cursor),
                    key(*cursor + width - 1),
                    i as u32,
                ));
                *cursor += width;
            }
            ranges.sort_unstable();
            ranges
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Lines, the windows over their first keys and the tables, single and batched, against
        /// a binary search: every range's ends, the numbers just outside, a middle, and random
        /// numbers across the span (mostly misses in the gaps).
        #[test]
        fn lookup_equals_binary_search_on_clustered_ranges(
            ranges in clustered_ranges(),
            offsets in prop::collection::vec(0u64..40_000_000, 64),
        ) {
            let index = RangeIndex::build(ranges.clone()).unwrap();
            prop_assert_eq!(index.ranges(), ranges.clone());
            let mut keys = vec![0, 1, KEY_LIMIT - 1, KEY_LIMIT, u64::MAX];
            for range in &ranges {
                keys.extend([range.lo - 1, range.lo, range.lo + (range.hi - range.lo) / 2]);
                keys.extend([range.hi, range.hi + 1]);
            }
            for &offset in &offsets {
                keys.extend([key(3_226_100_000 + offset), key(322_612_700_000_000 + offset)]);
            }
            for chunk in keys.chunks(16) {
                let mut batch = [0u64; 16];
                batch[..chunk.len()].copy_from_slice(chunk);
                let found = index.lookup_batch(&batch);
                for (i, &probe) in batch.iter().enumerate() {
                    let truth = binary_search(&ranges, probe);
                    prop_assert_eq!(index.lookup(probe), truth, "probe {:#x}", probe);
                    prop_assert_eq!(found[i], truth.map(|r| r.value), "batched probe {:#x}", probe);
                }
            }
        }
    }
}
