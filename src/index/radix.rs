//! A least-significant-digit radix sort of [`KeyRange`]s by `lo`, then `hi`.
//!
//! Every bulk operation of the index (build, diff, sweep) starts by sorting, and DESIGN.md §8
//! states their targets as ratios against one `slice::sort_unstable` of the same data, so the
//! sort has to be clearly cheaper than that. Number keys make that possible: of a key's 64 bits
//! only a handful vary across a realistic data set (the length field takes four values, the top
//! bits of the value are always zero, country codes pin the leading digits), so the sort first
//! finds which bits vary and spends passes on those alone. A typical E.164 data set needs four
//! or five passes over the data, each a sequential read and a scatter.

use super::KeyRange;

/// Below this many ranges a comparison sort wins: the radix sort's fixed costs (histograms,
/// a scratch copy) only pay off on large inputs.
const RADIX_THRESHOLD: usize = 1 << 10;

/// Bits per pass. 2^11 buckets keep the histograms and the scatter's write positions in L1/L2.
const DIGIT_BITS: u32 = 11;

/// Sorts `ranges` by `(lo, hi, value)`: the same result as `ranges.sort_unstable()`.
pub fn sort_by_lo(ranges: &mut [KeyRange]) {
    if ranges.len() < RADIX_THRESHOLD {
        ranges.sort_unstable();
        return;
    }
    let mut scratch = Vec::new();
    radix_sort(ranges, &mut scratch);
}

/// Sorts like [`sort_by_lo`], reusing `scratch` (its contents are overwritten) so that callers
/// sorting repeatedly do not allocate each time.
pub fn radix_sort(ranges: &mut [KeyRange], scratch: &mut Vec<KeyRange>) {
    let digits = Digits::of(ranges);
    let histograms = histograms(ranges, &digits);
    let mut passes = digits
        .passes
        .iter()
        .zip(&histograms)
        .filter(|pass| pass.1.varies);
    if passes.clone().next().is_some() {
        resize_for_overwrite(scratch, ranges.len());
        let mut in_scratch = false;
        for (digit, counts) in &mut passes {
            if in_scratch {
                scatter(scratch, ranges, digit, counts);
            } else {
                scatter(ranges, scratch, digit, counts);
            }
            in_scratch = !in_scratch;
        }
        if in_scratch {
            ranges.copy_from_slice(scratch);
        }
    }
    order_equal_lo(ranges);
}

/// `ranges` sorted like [`sort_by_lo`], as a new vector. The first pass reads `ranges` itself,
/// which saves the copy a caller would otherwise make before sorting in place; `scratch` is
/// reused between calls.
pub fn sorted_copy(ranges: &[KeyRange], scratch: &mut Vec<KeyRange>) -> Vec<KeyRange> {
    if ranges.len() < RADIX_THRESHOLD {
        let mut sorted = ranges.to_vec();
        sorted.sort_unstable();
        return sorted;
    }
    let digits = Digits::of(ranges);
    let histograms = histograms(ranges, &digits);
    let mut passes = digits
        .passes
        .iter()
        .zip(&histograms)
        .filter(|pass| pass.1.varies);
    let mut sorted = Vec::new();
    match passes.next() {
        Some((digit, counts)) => {
            resize_for_overwrite(&mut sorted, ranges.len());
            scatter(ranges, &mut sorted, digit, counts);
        }
        None => sorted.extend_from_slice(ranges),
    }
    let mut passes = passes.peekable();
    if passes.peek().is_some() {
        resize_for_overwrite(scratch, ranges.len());
        for (digit, counts) in passes {
            scatter(&sorted, scratch, digit, counts);
            std::mem::swap(&mut sorted, scratch);
        }
    }
    order_equal_lo(&mut sorted);
    sorted
}

/// Makes `buffer` exactly `len` long without caring what it holds (every slot is about to be
/// overwritten by a scatter).
fn resize_for_overwrite(buffer: &mut Vec<KeyRange>, len: usize) {
    buffer.truncate(len);
    buffer.resize(len, KeyRange::default());
}

/// Which bits of `lo` one pass sorts on: up to two runs of varying bits, concatenated, so that
/// constant bits between the length field and the value never cost a pass.
#[derive(Clone, Copy, Debug)]
struct Digit {
    low_shift: u32,
    low_mask: u64,
    high_shift: u32,
    high_mask: u64,
    high_offset: u32,
}

impl Digit {
    #[inline(always)]
    fn of(&self, key: u64) -> usize {
        (((key >> self.low_shift) & self.low_mask)
            | (((key >> self.high_shift) & self.high_mask) << self.high_offset)) as usize
    }
}

struct Digits {
    passes: Vec<Digit>,
}

impl Digits {
    /// Plans the passes from the bits of `lo` that differ anywhere in the data.
    fn of(ranges: &[KeyRange]) -> Digits {
        let first = ranges.first().map_or(0, |range| range.lo);
        let varying = ranges
            .iter()
            .fold(0u64, |acc, range| acc | (range.lo ^ first));
        let runs = bit_runs(varying);
        let total: u32 = runs.iter().map(|&(_, len)| len).sum();
        let pass_count = total.div_ceil(DIGIT_BITS);
        let mut passes = Vec::new();
        if pass_count == 0 {
            return Digits { passes };
        }
        // Balanced widths: 48 varying bits become 4 passes of 12, not 11 + 11 + 11 + 11 + 4.
        let width = total.div_ceil(pass_count);
        let mut runs = runs.into_iter().peekable();
        let mut pending: Option<(u32, u32)> = None;
        while let Some((start, len)) = pending.take().or_else(|| runs.next()) {
            let low_len = len.min(width);
            if low_len < len {
                pending = Some((start + low_len, len - low_len));
            }
            let mut digit = Digit {
                low_shift: start,
                low_mask: mask(low_len),
                high_shift: 0,
                high_mask: 0,
                high_offset: low_len,
            };
            if pending.is_none() && low_len < width {
                if let Some((start2, len2)) = runs.next() {
                    let high_len = len2.min(width - low_len);
                    if high_len < len2 {
                        pending = Some((start2 + high_len, len2 - high_len));
                    }
                    digit.high_shift = start2;
                    digit.high_mask = mask(high_len);
                }
            }
            passes.push(digit);
        }
        Digits { passes }
    }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// The maximal runs of set bits in `bits`, lowest first, as `(first bit, length)`.
fn bit_runs(mut bits: u64) -> Vec<(u32, u32)> {
    let mut runs = Vec::new();
    let mut offset = 0;
    while bits != 0 {
        let zeros = bits.trailing_zeros();
        bits >>= zeros;
        offset += zeros;
        let ones = bits.trailing_ones();
        runs.push((offset, ones));
        bits = bits.checked_shr(ones).unwrap_or(0);
        offset += ones;
    }
    runs
}

/// How many ranges fall in each bucket of one pass.
struct Histogram {
    counts: Vec<u32>,
    /// False when every range falls in one bucket: the pass would only copy the data.
    varies: bool,
}

/// All passes' bucket counts in one read of the data.
fn histograms(ranges: &[KeyRange], digits: &Digits) -> Vec<Histogram> {
    let buckets = 1usize << DIGIT_BITS.max(digit_width(digits));
    let mut counts = vec![vec![0u32; buckets]; digits.passes.len()];
    for range in ranges {
        for (digit, counts) in digits.passes.iter().zip(counts.iter_mut()) {
            counts[digit.of(range.lo)] += 1;
        }
    }
    counts
        .into_iter()
        .map(|counts| Histogram {
            varies: !counts.iter().any(|&count| count as usize == ranges.len()),
            counts,
        })
        .collect()
}

fn digit_width(digits: &Digits) -> u32 {
    digits
        .passes
        .iter()
        .map(|d| d.high_offset + d.high_mask.count_ones())
        .max()
        .unwrap_or(0)
}

/// One stable counting-sort pass from `source` into `target`.
fn scatter(source: &[KeyRange], target: &mut [KeyRange], digit: &Digit, histogram: &Histogram) {
    let mut next = Vec::with_capacity(histogram.counts.len());
    let mut offset = 0usize;
    for &count in &histogram.counts {
        next.push(offset);
        offset += count as usize;
    }
    for range in source {
        let slot = &mut next[digit.of(range.lo)];
        target[*slot] = *range;
        *slot += 1;
    }
}

/// The passes order by `lo` only; ranges that share a `lo` (never the case for disjoint input,
/// which is why this is a check rather than more passes) are ordered by `hi`, then `value`.
fn order_equal_lo(ranges: &mut [KeyRange]) {
    let mut at = 1;
    while at < ranges.len() {
        if ranges[at - 1].lo != ranges[at].lo {
            at += 1;
            continue;
        }
        let start = at - 1;
        let lo = ranges[start].lo;
        let end = start + ranges[start..].partition_point(|range| range.lo == lo);
        ranges[start..end].sort_unstable();
        at = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::Number;
    use proptest::prelude::*;

    fn key(value: u64) -> u64 {
        Number::from_u64(value).unwrap().key()
    }

    #[test]
    fn bit_runs_splits_at_constant_bits() {
        assert_eq!(bit_runs(0), vec![]);
        assert_eq!(bit_runs(0b1110_0110), vec![(1, 2), (5, 3)]);
        assert_eq!(bit_runs(u64::MAX), vec![(0, 64)]);
        assert_eq!(bit_runs(1 << 63), vec![(63, 1)]);
    }

    #[test]
    fn plans_few_passes_for_number_keys() {
        // Lengths 10..=13 and values up to 10^13: 44 value bits plus the length field.
        let ranges: Vec<KeyRange> = (0..5000u64)
            .map(|i| {
                let value = 1_000_000_000 * 10u64.pow((i % 4) as u32) + i * 7919;
                KeyRange::new(key(value), key(value), 0)
            })
            .collect();
        let digits = Digits::of(&ranges);
        assert!(digits.passes.len() <= 5, "{} passes", digits.passes.len());
        let mut sorted = ranges.clone();
        sort_by_lo(&mut sorted);
        let mut expected = ranges;
        expected.sort_unstable();
        assert_eq!(sorted, expected);
    }

    #[test]
    fn orders_equal_lo_by_hi_then_value() {
        let mut ranges: Vec<KeyRange> = (0..3000u64)
            .map(|i| KeyRange::new(i % 7, 100 - i % 5, (i % 3) as u32))
            .collect();
        let mut expected = ranges.clone();
        expected.sort_unstable();
        sort_by_lo(&mut ranges);
        assert_eq!(ranges, expected);
    }

    #[test]
    fn constant_keys_and_tiny_inputs() {
        let mut same = vec![KeyRange::new(5, 9, 1); 2000];
        sort_by_lo(&mut same);
        assert!(same.iter().all(|&r| r == KeyRange::new(5, 9, 1)));
        let mut empty: Vec<KeyRange> = vec![];
        sort_by_lo(&mut empty);
        let mut scratch = Vec::new();
        let mut one = vec![KeyRange::new(3, 4, 0)];
        radix_sort(&mut one, &mut scratch);
        assert_eq!(one, vec![KeyRange::new(3, 4, 0)]);
    }

    fn mixed_lengths() -> impl Strategy<Value = Vec<KeyRange>> {
        let number = (1u32..=15, any::<u64>()).prop_map(|(digits, raw)| {
            let low = 10u64.pow(digits - 1);
            key(low + raw % (low * 9))
        });
        proptest::collection::vec((number, 0u64..1000, 0u32..4), 0..4000).prop_map(|items| {
            items
                .into_iter()
                .map(|(lo, width, value)| KeyRange::new(lo, lo + width, value))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn radix_equals_sort_unstable(ranges in mixed_lengths()) {
            let mut expected = ranges.clone();
            expected.sort_unstable();
            let mut sorted = ranges.clone();
            let mut scratch = vec![KeyRange::new(1, 1, 1); 3];
            radix_sort(&mut sorted, &mut scratch);
            prop_assert_eq!(&sorted, &expected);
            let mut scratch = Vec::new();
            prop_assert_eq!(&sorted_copy(&ranges, &mut scratch), &expected);
            prop_assert_eq!(&sorted_copy(&expected, &mut scratch), &expected);
            let mut sorted = ranges;
            sort_by_lo(&mut sorted);
            prop_assert_eq!(sorted, expected);
        }

        #[test]
        fn radix_equals_sort_unstable_on_raw_u64(
            ranges in proptest::collection::vec((any::<u64>(), any::<u64>(), any::<u32>()), 0..3000)
        ) {
            let mut sorted: Vec<KeyRange> =
                ranges.iter().map(|&(lo, hi, value)| KeyRange::new(lo, hi, value)).collect();
            let mut expected = sorted.clone();
            expected.sort_unstable();
            radix_sort(&mut sorted, &mut Vec::new());
            prop_assert_eq!(sorted, expected);
        }
    }
}
