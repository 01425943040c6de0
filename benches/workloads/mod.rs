//! Seeded data sets for the engine benchmark (DESIGN.md §8).
//!
//! The performance targets are ratios measured in one run, so what matters is that every
//! structure sees the same data and that the data looks like what dialsync meets: the same
//! seed gives the same ranges on every machine. Every generator returns its ranges in shuffled
//! order (the engine receives unsorted input) and, unless its documentation says otherwise,
//! disjoint, because that is what the resolver hands to the index.

use dialsync::dialplan::rule::Tag;
use dialsync::index::KeyRange;
use dialsync::number::{Number, NumberRange, POW10};
use dialsync::resolve::Mapping;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// A data set: the disjoint ranges every benchmark uses, plus the entries a resolver would have
/// to carve or arbitrate before they could join them.
pub struct Workload {
    pub name: &'static str,
    /// Disjoint, shuffled.
    pub ranges: Vec<KeyRange>,
    /// Narrower entries inside one of `ranges` with another tag (overrides such as a single
    /// number of a block moved to another trunk). Not disjoint from `ranges`.
    pub nested: Vec<KeyRange>,
    /// Entries that partially overlap one of `ranges` with another tenant's tag (provisioning
    /// mistakes the resolver must report). Not disjoint from `ranges`.
    pub overlapping: Vec<KeyRange>,
}

/// Samples ranks `0..n` with probability proportional to `1 / (rank + 1)^exponent`.
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, exponent: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|rank| {
                total += 1.0 / ((rank + 1) as f64).powf(exponent);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    pub fn sample(&self, rng: &mut SmallRng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let target = rng.random::<f64>() * total;
        self.cumulative
            .partition_point(|&c| c <= target)
            .min(self.cumulative.len() - 1)
    }
}

/// A block to place: how many numbers, and whether it must start on a multiple of its size
/// (DDI blocks of 10, 100, 1000 do; ranges typed in by hand do not).
#[derive(Clone, Copy)]
struct Block {
    size: u64,
    aligned: bool,
}

/// The numbers of one country code at one national length: `code` followed by
/// `national_digits` digits.
#[derive(Clone, Copy)]
struct NumberSpace {
    code: u64,
    national_digits: u32,
}

impl NumberSpace {
    fn first(self) -> u64 {
        self.code * POW10[self.national_digits as usize]
    }

    fn size(self) -> u64 {
        POW10[self.national_digits as usize]
    }
}

/// Places `blocks` in order inside `space`, disjoint, with gaps that use up about 90 % of the
/// free room. `clustered` makes most gaps tiny and a few huge, the way real allocations sit
/// under a few area codes and exchanges; otherwise gaps are uniform.
fn place(
    rng: &mut SmallRng,
    space: NumberSpace,
    mut blocks: Vec<Block>,
    clustered: bool,
) -> Vec<NumberRange> {
    // Aligning a block can waste up to its size, so reserve room twice over; shrink blocks
    // until they fit (only matters for tiny spaces).
    while blocks.iter().map(|b| 2 * b.size).sum::<u64>() > space.size() {
        for block in &mut blocks {
            block.size = (block.size / 10).max(1);
        }
        if blocks.iter().all(|b| b.size == 1) {
            blocks.truncate((space.size() / 2) as usize);
        }
    }
    let free = space.size() - blocks.iter().map(|b| 2 * b.size).sum::<u64>();
    let weights: Vec<f64> = blocks
        .iter()
        .map(|_| {
            if clustered && rng.random_bool(0.97) {
                rng.random::<f64>() * 0.05
            } else {
                rng.random::<f64>() * 2.0
            }
        })
        .collect();
    let weight_total: f64 = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let mut cursor = space.first();
    let end = space.first() + space.size();
    let digits = space.national_digits + dialsync::number::digit_count(space.code);
    let mut placed = Vec::with_capacity(blocks.len());
    for (block, weight) in blocks.iter().zip(&weights) {
        cursor += (free as f64 * 0.9 * weight / weight_total) as u64;
        if block.aligned {
            cursor = cursor.div_ceil(block.size) * block.size;
        }
        let hi = cursor + block.size - 1;
        if hi >= end {
            break;
        }
        placed.push(range(cursor, hi, digits));
        cursor = hi + 1;
    }
    placed
}

fn range(lo: u64, hi: u64, digits: u32) -> NumberRange {
    let lo = Number::from_u64(lo).expect("generated numbers are valid");
    let hi = Number::from_u64(hi).expect("generated numbers are valid");
    debug_assert_eq!(lo.len(), digits);
    NumberRange::between(lo, hi).expect("generated ranges are ordered")
}

/// Tags for ranges in placement order: a tenant usually owns several neighbouring blocks, and
/// a few tenants own most of the numbers (Zipf over `tenants`).
fn tenant_tags(rng: &mut SmallRng, ranges: Vec<NumberRange>, tenants: usize) -> Vec<KeyRange> {
    let popularity = Zipf::new(tenants, 1.1);
    let mut tenant = 0u32;
    ranges
        .into_iter()
        .map(|range| {
            if rng.random_bool(0.3) {
                tenant = popularity.sample(rng) as u32;
            }
            KeyRange::of(range, tenant)
        })
        .collect()
}

/// Splits `count` items over `shares` (which sum to about 1).
fn split(count: usize, shares: &[f64]) -> Vec<usize> {
    let mut counts: Vec<usize> = shares
        .iter()
        .map(|share| (count as f64 * share) as usize)
        .collect();
    let assigned: usize = counts.iter().sum();
    counts[0] += count.saturating_sub(assigned);
    counts
}

/// Aligned DDI blocks only: blocks of 10, 100 or 1000 numbers on multiples of their size,
/// spread evenly over Belgian and British numbers, 1000 tags at random.
pub fn aligned(count: usize, seed: u64) -> Workload {
    let mut rng = SmallRng::seed_from_u64(seed);
    let spaces = [
        NumberSpace {
            code: 32,
            national_digits: 9,
        },
        NumberSpace {
            code: 44,
            national_digits: 10,
        },
    ];
    let mut ranges = Vec::with_capacity(count);
    for (space, share) in spaces.into_iter().zip(split(count, &[0.5, 0.5])) {
        let blocks = (0..share)
            .map(|_| Block {
                size: [10, 100, 1000][rng.random_range(0..3)],
                aligned: true,
            })
            .collect();
        for placed in place(&mut rng, space, blocks, false) {
            ranges.push(KeyRange::of(placed, rng.random_range(0..1000)));
        }
    }
    ranges.shuffle(&mut rng);
    Workload {
        name: "aligned",
        ranges,
        nested: Vec::new(),
        overlapping: Vec::new(),
    }
}

/// 70 % aligned blocks (10, 100 or 1000 numbers) and 30 % ranges with arbitrary ends and sizes
/// (1 to 2000), evenly spread over Belgian, British and German numbers, 1000 tags at random.
pub fn mixed(count: usize, seed: u64) -> Workload {
    let mut rng = SmallRng::seed_from_u64(seed);
    let spaces = [
        NumberSpace {
            code: 32,
            national_digits: 9,
        },
        NumberSpace {
            code: 44,
            national_digits: 10,
        },
        NumberSpace {
            code: 49,
            national_digits: 11,
        },
    ];
    let mut ranges = Vec::with_capacity(count);
    for (space, share) in spaces.into_iter().zip(split(count, &[0.34, 0.33, 0.33])) {
        let blocks = (0..share)
            .map(|_| {
                if rng.random_bool(0.7) {
                    Block {
                        size: [10, 100, 1000][rng.random_range(0..3)],
                        aligned: true,
                    }
                } else {
                    Block {
                        size: rng.random_range(1..=2000),
                        aligned: false,
                    }
                }
            })
            .collect();
        for placed in place(&mut rng, space, blocks, false) {
            ranges.push(KeyRange::of(placed, rng.random_range(0..1000)));
        }
    }
    ranges.shuffle(&mut rng);
    Workload {
        name: "mixed",
        ranges,
        nested: Vec::new(),
        overlapping: Vec::new(),
    }
}

/// The headline data set: what an operator hosting ~2000 Teams tenants across Europe and North
/// America provisions.
///
/// - Country codes with their real national number lengths: Belgium (+32, 8 and 9 digits),
///   France (+33, 9), the UK (+44, 10), Germany (+49, 10 and 11), NANP (+1, 10) and the
///   Netherlands (+31, 9), Belgium weighted heaviest.
/// - Block sizes Zipf-distributed over 1, 10, 100, 1000 and 10000 numbers (single numbers
///   most common), aligned; 5 % of blocks have arbitrary sizes and ends.
/// - Clustered placement: most blocks sit right after the previous one, a few jump far.
/// - ~2000 tenants as tags, Zipf popularity, neighbouring blocks often the same tenant.
/// - In [`Workload::nested`], one override per thousand ranges (a sub-block or single number
///   of a larger block, another tenant); in [`Workload::overlapping`], one cross-tenant
///   partial overlap per five thousand ranges.
pub fn realistic(count: usize, seed: u64) -> Workload {
    const TENANTS: usize = 2000;
    let mut rng = SmallRng::seed_from_u64(seed);
    let countries: [(u64, &[u32], f64); 6] = [
        (32, &[8, 9], 0.30),
        (33, &[9], 0.15),
        (44, &[10], 0.15),
        (49, &[10, 11], 0.15),
        (1, &[10], 0.15),
        (31, &[9], 0.10),
    ];
    let sizes = [1u64, 10, 100, 1000, 10_000];
    let size_rank = Zipf::new(sizes.len(), 2.0);
    let shares: Vec<f64> = countries.iter().map(|c| c.2).collect();
    let mut placed = Vec::with_capacity(count);
    for (&(code, lengths, _), share) in countries.iter().zip(split(count, &shares)) {
        let per_length = split(share, &vec![1.0 / lengths.len() as f64; lengths.len()]);
        for (&national_digits, blocks) in lengths.iter().zip(per_length) {
            let blocks = (0..blocks)
                .map(|_| {
                    let size = sizes[size_rank.sample(&mut rng)];
                    if rng.random_bool(0.05) {
                        Block {
                            size: rng.random_range(1..=size * 2),
                            aligned: false,
                        }
                    } else {
                        Block {
                            size,
                            aligned: true,
                        }
                    }
                })
                .collect();
            let space = NumberSpace {
                code,
                national_digits,
            };
            placed.extend(place(&mut rng, space, blocks, true));
        }
    }
    let mut ranges = tenant_tags(&mut rng, placed, TENANTS);
    let mut nested = Vec::new();
    let mut overlapping = Vec::new();
    for (position, range) in ranges.iter().enumerate() {
        let size = range.hi - range.lo + 1;
        if size >= 10 && rng.random_ratio(1, 1000) {
            let lo = range.lo + rng.random_range(0..size);
            let hi = lo + rng.random_range(0..=(range.hi - lo).min(9));
            nested.push(KeyRange::new(lo, hi, rng.random_range(0..TENANTS as u32)));
        }
        // Spilling past the end into the gap, or into the next block.
        if size >= 2 && rng.random_ratio(1, 5000) {
            let next_lo = ranges.get(position + 1).map_or(range.hi, |next| next.lo);
            if next_lo > range.hi && next_lo >> 50 == range.hi >> 50 {
                let lo = range.hi - (size / 2).min(5);
                overlapping.push(KeyRange::new(
                    lo,
                    next_lo,
                    rng.random_range(0..TENANTS as u32),
                ));
            }
        }
    }
    ranges.shuffle(&mut rng);
    Workload {
        name: "realistic",
        ranges,
        nested,
        overlapping,
    }
}

/// Worst cases for a table-over-leading-bits index:
/// - everything under one long common prefix (+3226127, 15-digit numbers), so leading bits
///   separate nothing;
/// - single numbers packed densely (gaps of zero or one number), so buckets crowd;
/// - a huge range (ten million numbers) at each end, next to the tiny ones, so bucket widths
///   sized for the span are useless for the crowd.
pub fn adversarial(count: usize, seed: u64) -> Workload {
    let mut rng = SmallRng::seed_from_u64(seed);
    let first = 322_612_700_000_000u64;
    let digits = 15;
    let huge = 10_000_000;
    let mut ranges = Vec::with_capacity(count);
    ranges.push(KeyRange::of(range(first, first + huge - 1, digits), 0));
    let mut cursor = first + huge;
    for i in 0..count.saturating_sub(2) {
        cursor += rng.random_range(0..=1);
        ranges.push(KeyRange::of(
            range(cursor, cursor, digits),
            (i % 2000) as u32,
        ));
        cursor += 1;
    }
    ranges.push(KeyRange::of(range(cursor, cursor + huge - 1, digits), 1));
    ranges.truncate(count);
    ranges.shuffle(&mut rng);
    Workload {
        name: "adversarial",
        ranges,
        nested: Vec::new(),
        overlapping: Vec::new(),
    }
}

/// The next snapshot after `base` (disjoint ranges, any order): about `fraction` of the ranges
/// change, each in one of these ways: retagged (40 %), grown into the gap after it (15 %),
/// shrunk to its first half (15 %), removed (15 %), or followed by a new single number in the
/// gap after it (15 %). Stays disjoint; returned shuffled.
pub fn churn(base: &[KeyRange], fraction: f64, seed: u64) -> Vec<KeyRange> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut sorted = base.to_vec();
    sorted.sort_unstable();
    let mut next = Vec::with_capacity(sorted.len() + 16);
    for (position, &range) in sorted.iter().enumerate() {
        if !rng.random_bool(fraction) {
            next.push(range);
            continue;
        }
        // Room after the range, within the same digit length.
        let gap = sorted
            .get(position + 1)
            .filter(|following| following.lo >> 50 == range.hi >> 50)
            .map_or(0, |following| following.lo - range.hi - 1);
        match rng.random_range(0..20) {
            0..=7 => next.push(KeyRange {
                value: range.value.wrapping_add(1),
                ..range
            }),
            8..=10 if gap > 0 => next.push(KeyRange {
                hi: range.hi + rng.random_range(1..=gap.min(1000)),
                ..range
            }),
            11..=13 if range.hi > range.lo => next.push(KeyRange {
                hi: range.lo + (range.hi - range.lo) / 2,
                ..range
            }),
            14..=16 => {}
            _ if gap > 0 => {
                next.push(range);
                let number = range.hi + 1 + gap / 2;
                next.push(KeyRange::new(number, number, range.value.wrapping_add(7)));
            }
            _ => next.push(KeyRange {
                value: range.value.wrapping_add(1),
                ..range
            }),
        }
    }
    next.shuffle(&mut rng);
    next
}

/// `count` numbers inside `ranges` (uniform over ranges, then over the range's numbers), for
/// lookups that hit.
pub fn probes_inside(ranges: &[KeyRange], count: usize, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let range = ranges[rng.random_range(0..ranges.len())];
            rng.random_range(range.lo..=range.hi)
        })
        .collect()
}

/// `count` numbers inside no range of `ranges` (disjoint), for lookups that miss: a number in
/// the gap after a range chosen uniformly (up to the next range of the same length, or to the
/// last number of that length).
pub fn probes_outside(ranges: &[KeyRange], count: usize, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut misses = Vec::with_capacity(count);
    while misses.len() < count && !sorted.is_empty() {
        let at = rng.random_range(0..sorted.len());
        let range = sorted[at];
        let length = range.hi >> 50;
        let last_of_length = (length << 50) | (POW10[length as usize] - 1);
        let end = sorted
            .get(at + 1)
            .filter(|next| next.lo >> 50 == length)
            .map_or(last_of_length, |next| next.lo - 1);
        if range.hi < end {
            misses.push(rng.random_range(range.hi + 1..=end));
        }
    }
    misses
}

/// A probe sequence of `count` draws from `pool`.
pub fn draws(pool: &[u64], count: usize, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..count)
        .map(|_| pool[rng.random_range(0..pool.len())])
        .collect()
}

/// Shuffles `items` in place, reproducibly.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    items.shuffle(&mut SmallRng::seed_from_u64(seed));
}

/// The workload as the resolver would hand it on: one tag `Trunk=t{value}` per distinct value,
/// so the compiler and the audit are measured on the same mapping.
pub fn mapping(workload: &Workload) -> Mapping {
    let tag_count = workload.ranges.iter().map(|r| r.value).max().unwrap_or(0) + 1;
    let tags: Vec<Tag> = (0..tag_count)
        .map(|t| Tag::parse(&format!("Trunk=t{t}"), 64).expect("valid tag"))
        .collect();
    let pairs = workload
        .ranges
        .iter()
        .map(|r| {
            (
                r.number_range().expect("workload keys are numbers"),
                r.value,
            )
        })
        .collect();
    Mapping::new(tags, Vec::new(), pairs).expect("disjoint workload")
}
