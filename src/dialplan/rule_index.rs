//! The rule index: which rule of a whole dial plan the SBC picks for a number, in one index
//! lookup.
//!
//! [`best_match`](super::pattern::best_match) answers that question by trying every rule, which
//! is right for one number and hopeless for a million: `dialsync lookup` over a file of numbers,
//! the audit (does every assigned number route to its tag, or does another rule, foreign ones
//! included, win?), the admin port's `/lookup` and the SBC emulator's own routing all ask it at
//! scale. This index answers it for every rule of the plan, owned and foreign, in any pattern of
//! DESIGN.md §4 (digits, `x`, `z`, `n`, brackets, `.`, `*`, `#`-anchored or open).
//!
//! How: a rule matches, for each number length, a set of numbers that is a union of key
//! intervals (see [`crate::number`]: keys order numbers by length, then value). The rules are
//! ranked once by the order `best_match` uses (more specific pattern first, then the lower
//! index, then the earlier rule), each rule is expanded into its intervals, and one sweep over
//! all of them keeps, for every key, the best-ranked rule holding it. The result is disjoint
//! intervals each carrying its winner, held in a [`RangeIndex`]; [`RuleIndex::intervals`] walks
//! them for the audit.
//!
//! Size. A rule expands to, per length it matches, the product of the value counts of its
//! elements before its last constrained one, times that element's ranges: `+3226127xxx#` and
//! `+322612700[0-2]#` are one interval, an open prefix `+97239753000` one per length up to 15
//! digits (5), `+32[1,3,5-6]` three per length. A constrained digit after free ones multiplies:
//! `+1xxx5551212#` is 1,000 intervals, and `+1xxxxxxxxxxxx2` would be 10^12. No interval
//! structure avoids that (the winner really alternates that often), so a rule whose expansion
//! passes [`Limits::per_rule`], or would take the whole plan past [`Limits::total`], is not
//! expanded: it is kept aside as a *residual* rule, and only its hull (the numbers sharing its
//! leading digits, one interval per length) enters the sweep, marking where it might win. A
//! lookup in such a *contested* interval tries the residual rules ranked above the interval's
//! winner, by plain matching. So the answer is always exact; the cost of a pathological rule
//! moves from memory to the lookups that fall near it. The worst case is many residual rules
//! whose hulls cover the same numbers (a leading `x` or `.` gives a hull of every number of a
//! length): a lookup there matches each residual rule ranked above the winner, which is
//! `best_match`'s scan restricted to those rules.
//!
//! Cost: building is one sort of the rules, the expansion, and a sweep of `n log n` over the
//! `n` expanded intervals; `n` is about the rule count for the shapes dialsync writes, a few
//! times it with open prefixes, and at most [`Limits::total`] plus 15 per residual rule. The
//! index holds at most `2n - 1` disjoint intervals (a sweep cuts one interval into at most
//! three around each nested one).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use smallvec::{smallvec, SmallVec};

use super::pattern::{Element, Pattern};
use crate::error::{Classify, ErrorClass};
use crate::index::{IndexError, KeyRange, RangeIndex};
use crate::number::{Number, NumberRange, LENGTH_SHIFT, MAX_DIGITS, POW10};

/// Marks an interval where a residual rule might beat the recorded winner.
const CONTESTED: u32 = 1 << 31;
/// The winner of an interval no expanded rule covers (only residual rules might match there).
const NO_RULE: u32 = CONTESTED - 1;

/// How far rules are expanded into intervals before being kept aside as residual rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most intervals (over all lengths) one rule may expand to.
    pub per_rule: u64,
    /// Most intervals all rules together may expand to; rules are expanded most specific
    /// first, so it is the broad, rarely winning rules that are kept aside.
    pub total: u64,
}

impl Default for Limits {
    /// 4,096 per rule (a `+1xxx5551212#` is 1,000) and 4M in all, about 100 MB while building;
    /// a dial plan of the shapes dialsync writes is nowhere near either.
    fn default() -> Limits {
        Limits {
            per_rule: 4096,
            total: 1 << 22,
        }
    }
}

/// Why a rule index cannot be built. Neither happens on a dial plan the SBC accepts; both
/// mean a bug or an absurd input, so they are fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleIndexError {
    #[error("{rules} rules are more than a rule index can rank")]
    TooManyRules { rules: usize },
    #[error("rule index: {0}")]
    Index(#[from] IndexError),
}

impl Classify for RuleIndexError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Fatal
    }
}

/// One disjoint interval of numbers and the rule that wins it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleInterval {
    /// Numbers of one length.
    pub range: NumberRange,
    /// The winning rule's id (as given to [`RuleIndex::build`]). `None` only in an interval
    /// that is not `exact`, where no expanded rule matches.
    pub rule: Option<u32>,
    /// Whether `rule` wins every number of the range. When false, a residual rule (see the
    /// module documentation) may win some of them: ask [`RuleIndex::lookup`] per number.
    pub exact: bool,
}

/// Best match over a whole dial plan, as disjoint number intervals with their winning rule.
#[derive(Clone, Debug)]
pub struct RuleIndex {
    index: RangeIndex,
    /// The caller's id of each rank (rank 0 is the most specific rule).
    ids: Vec<u32>,
    /// Rules kept aside (rank, pattern), by rank.
    residual: Vec<(u32, Pattern)>,
}

impl RuleIndex {
    /// Builds the index over `rules`, each an id the caller wants back (a rule's index or its
    /// position) and its prefix, with the default [`Limits`].
    ///
    /// Ties are broken as `best_match` breaks them: between identical patterns the lower id
    /// wins, and between identical patterns with equal ids the one given first.
    pub fn build<'a>(
        rules: impl IntoIterator<Item = (u32, &'a Pattern)>,
    ) -> Result<RuleIndex, RuleIndexError> {
        RuleIndex::build_with_limits(rules, Limits::default())
    }

    /// As [`RuleIndex::build`], with explicit expansion limits.
    pub fn build_with_limits<'a>(
        rules: impl IntoIterator<Item = (u32, &'a Pattern)>,
        limits: Limits,
    ) -> Result<RuleIndex, RuleIndexError> {
        let mut rules: Vec<(u32, &Pattern)> = rules.into_iter().collect();
        if rules.len() >= NO_RULE as usize {
            return Err(RuleIndexError::TooManyRules { rules: rules.len() });
        }
        // Most specific first, then the lower id; stable, so equal (pattern, id) keep their
        // order and the first stays first, as in `best_match`'s left-to-right tournament.
        rules.sort_by(|a, b| b.1.specificity_cmp(a.1).then(a.0.cmp(&b.0)));
        // Identical patterns compare equal only to each other, so they are adjacent now: only
        // the first of each run can ever win.
        rules.dedup_by(|later, first| later.1 == first.1);

        let mut ids = Vec::with_capacity(rules.len());
        let mut residual = Vec::new();
        let mut candidates: Vec<Candidate> = Vec::with_capacity(rules.len());
        let mut expanded = 0u64;
        for (rank, &(id, pattern)) in rules.iter().enumerate() {
            let rank = rank as u32;
            ids.push(id);
            let Some(shape) = Shape::of(pattern) else {
                continue; // matches no number
            };
            let count = shape.interval_count();
            if count <= limits.per_rule && expanded + count <= limits.total {
                expanded += count;
                shape.expand(|lo, hi| candidates.push(Candidate::new(lo, hi, rank, false)));
            } else {
                residual.push((rank, pattern.clone()));
                shape.hull(|lo, hi| candidates.push(Candidate::new(lo, hi, rank, true)));
            }
        }
        let pieces = sweep(candidates);
        Ok(RuleIndex {
            index: RangeIndex::build_sorted(&pieces)?,
            ids,
            residual,
        })
    }

    /// The id of the rule the SBC picks for `number`, or `None` when no rule matches it.
    #[inline]
    pub fn lookup(&self, number: Number) -> Option<u32> {
        let found = self.index.lookup(number.key())?;
        if found.value & CONTESTED == 0 {
            return Some(self.ids[found.value as usize]);
        }
        self.contested(number, found.value & !CONTESTED)
    }

    /// A lookup in a contested interval: the residual rules ranked above its winner first.
    #[cold]
    fn contested(&self, number: Number, winner: u32) -> Option<u32> {
        let text = number.to_string();
        self.residual
            .iter()
            .take_while(|(rank, _)| *rank < winner)
            .find(|(_, pattern)| pattern.matches(&text))
            .map(|&(rank, _)| rank)
            .or((winner != NO_RULE).then_some(winner))
            .map(|rank| self.ids[rank as usize])
    }

    /// The disjoint intervals, in key order (by length, then value), each with its winner.
    /// Numbers in no interval match no rule.
    pub fn intervals(&self) -> impl ExactSizeIterator<Item = RuleInterval> + '_ {
        self.index.iter().map(|piece| {
            let rank = piece.value & !CONTESTED;
            RuleInterval {
                range: piece
                    .number_range()
                    .expect("pieces are cut from intervals of numbers of one length"),
                rule: (rank != NO_RULE).then(|| self.ids[rank as usize]),
                exact: piece.value & CONTESTED == 0,
            }
        })
    }

    /// How many disjoint intervals the index holds.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// How many rules were kept aside instead of expanded (see the module documentation).
    pub fn residual_rules(&self) -> usize {
        self.residual.len()
    }

    /// Heap bytes held (the range index, the ids, the residual rules' patterns).
    pub fn memory_bytes(&self) -> usize {
        self.index.memory_bytes()
            + self.ids.capacity() * std::mem::size_of::<u32>()
            + self
                .residual
                .iter()
                .map(|(_, pattern)| std::mem::size_of::<(u32, Pattern)>() + pattern.text_len())
                .sum::<usize>()
    }
}

/// One block of a pattern's digits: a number of `width` digits within `ranges` (sorted,
/// disjoint, not adjacent).
#[derive(Clone, Debug)]
struct Block {
    width: u32,
    /// Inline when one range, as nearly every block is (a run of literal digits, `x`, `z`,
    /// `n`, a one-range bracket): a vector per block was most of the index build's
    /// allocations.
    ranges: SmallVec<[(u64, u64); 1]>,
}

impl Block {
    fn digits(lo: u64, hi: u64) -> Block {
        Block {
            width: 1,
            ranges: smallvec![(lo, hi)],
        }
    }

    /// The one value the block admits, if it admits only one.
    fn single(&self) -> Option<u64> {
        match self.ranges.as_slice() {
            &[(lo, hi)] if lo == hi => Some(lo),
            _ => None,
        }
    }

    /// Whether the block admits every value of its width.
    fn is_full(&self) -> bool {
        self.ranges.as_slice() == [(0, POW10[self.width as usize] - 1)]
    }

    fn count(&self) -> u64 {
        self.ranges.iter().map(|&(lo, hi)| hi - lo + 1).sum()
    }
}

/// What a pattern asks of a number, read as the SBC reads `+` and the digits.
#[derive(Clone, Debug)]
struct Shape {
    /// The digits after the `+`, block by block: inline for the usual few (the digits of a
    /// prefix, a bracket, some `x`).
    blocks: SmallVec<[Block; 4]>,
    /// Digits the blocks take.
    width: u32,
    anchored: bool,
}

impl Shape {
    /// `None` when the pattern matches no number: its first element cannot match the `+` every
    /// number starts with, an element wants something other than a digit, or it wants more
    /// digits than a number has.
    fn of(pattern: &Pattern) -> Option<Shape> {
        let mut elements = pattern.element_iter();
        if !pattern.is_any() {
            // `best_match` sees a number as `+` and its digits, and so does the SBC.
            match elements.next()? {
                Element::Literal(b'+') | Element::AnyChar => {}
                _ => return None,
            }
        }
        let mut shape = Shape {
            blocks: SmallVec::new(),
            width: 0,
            anchored: false,
        };
        for element in elements {
            let block = match element {
                Element::Literal(c @ b'0'..=b'9') => {
                    Block::digits(u64::from(c - b'0'), u64::from(c - b'0'))
                }
                Element::Literal(_) => return None,
                Element::Set(set) => Block {
                    width: set.width() as u32,
                    ranges: SmallVec::from_vec(set.into_ranges()),
                },
                Element::TwoToNine => Block::digits(2, 9),
                Element::NonZero => Block::digits(1, 9),
                // After the `+`, every character is a digit.
                Element::AnyDigit | Element::AnyChar => Block::digits(0, 9),
                Element::End => {
                    shape.anchored = true;
                    continue;
                }
            };
            shape.width += block.width;
            if shape.width > MAX_DIGITS {
                return None;
            }
            // Consecutive single values (a prefix's literal digits) are one block of their
            // digits together: what it matches is the same, and a 13-digit prefix is then one
            // block rather than 13, each its own allocation, for every rule of the plan.
            match (shape.blocks.last_mut(), block.single()) {
                (Some(last), Some(value)) if last.single().is_some() => {
                    let joined = last.ranges[0].0 * POW10[block.width as usize] + value;
                    last.ranges[0] = (joined, joined);
                    last.width += block.width;
                }
                _ => shape.blocks.push(block),
            }
        }
        (shape.lengths().next().is_some()).then_some(shape)
    }

    /// The number lengths the pattern can match.
    fn lengths(&self) -> std::ops::RangeInclusive<u32> {
        let shortest = self.width.max(1);
        if self.anchored {
            shortest..=self.width
        } else {
            shortest..=MAX_DIGITS
        }
    }

    /// The blocks up to and including the last one that is not full: those after it, and the
    /// free digits of an open pattern, only widen each interval.
    fn constrained(&self) -> &[Block] {
        let last = self.blocks.iter().rposition(|block| !block.is_full());
        &self.blocks[..last.map_or(0, |at| at + 1)]
    }

    /// An upper bound on the intervals [`Shape::expand`] produces (saturating).
    fn interval_count(&self) -> u64 {
        let per_length = match self.constrained().split_last() {
            None => 1,
            Some((last, before)) => before.iter().fold(last.ranges.len() as u64, |n, block| {
                n.saturating_mul(block.count())
            }),
        };
        per_length.saturating_mul(self.lengths().count() as u64)
    }

    /// Calls `emit(lo, hi)` with the keys of each interval of numbers the pattern matches,
    /// in key order, adjacent ones merged.
    fn expand(&self, mut emit: impl FnMut(u64, u64)) {
        let constrained = self.constrained();
        let width: u32 = constrained.iter().map(|block| block.width).sum();
        // The constrained digits' values, as intervals of `width`-digit values.
        let mut values = Values::new();
        if constrained.is_empty() {
            values.push((0, 0));
        } else {
            enumerate(constrained, 0, &mut values);
        }
        for length in self.lengths() {
            let scale = POW10[(length - width) as usize];
            for &(lo, hi) in &values {
                clip(length, lo * scale, hi * scale + scale - 1, &mut emit);
            }
        }
    }

    /// Calls `emit(lo, hi)` with, per length, the keys of every number sharing the pattern's
    /// leading fixed digits: a cover of what it matches, one interval per length.
    fn hull(&self, mut emit: impl FnMut(u64, u64)) {
        let (mut fixed, mut width) = (0u64, 0u32);
        for block in &self.blocks {
            match block.ranges.as_slice() {
                &[(lo, hi)] if lo == hi => {
                    fixed = fixed * POW10[block.width as usize] + lo;
                    width += block.width;
                }
                _ => break,
            }
        }
        for length in self.lengths() {
            let scale = POW10[(length - width) as usize];
            clip(length, fixed * scale, fixed * scale + scale - 1, &mut emit);
        }
    }
}

/// Intervals of a pattern's constrained digits: inline for the usual one or two.
type Values = SmallVec<[(u64, u64); 2]>;

/// Appends the values of `blocks` (each block's value after the previous ones' digits), as
/// intervals, merged where adjacent. Every block but the last is enumerated value by value.
fn enumerate(blocks: &[Block], base: u64, out: &mut Values) {
    let Some((block, rest)) = blocks.split_first() else {
        return;
    };
    let base = base * POW10[block.width as usize];
    for &(lo, hi) in &block.ranges {
        if rest.is_empty() {
            match out.last_mut() {
                Some(last) if last.1 + 1 == base + lo => last.1 = base + hi,
                _ => out.push((base + lo, base + hi)),
            }
        } else {
            for value in lo..=hi {
                enumerate(rest, base + value, out);
            }
        }
    }
}

/// Emits the keys of `lo..=hi` (values of `length` digits, perhaps with leading zeros) that
/// are numbers: a number never starts with 0.
fn clip(length: u32, lo: u64, hi: u64, emit: &mut impl FnMut(u64, u64)) {
    let lo = lo.max(POW10[length as usize - 1]);
    if lo <= hi {
        let length = u64::from(length) << LENGTH_SHIFT;
        emit(length | lo, length | hi);
    }
}

/// An interval of one rule entering the sweep.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    lo: u64,
    hi: u64,
    rank: u32,
    residual: bool,
}

impl Candidate {
    fn new(lo: u64, hi: u64, rank: u32, residual: bool) -> Candidate {
        Candidate {
            lo,
            hi,
            rank,
            residual,
        }
    }
}

/// Flattens the candidates into disjoint pieces, each carrying the best-ranked expanded rule
/// holding it (or [`NO_RULE`]), marked [`CONTESTED`] when a residual hull ranked above that
/// winner holds it too. Pieces nobody holds are left out; adjacent equal pieces are merged.
fn sweep(mut candidates: Vec<Candidate>) -> Vec<KeyRange> {
    candidates.sort_unstable_by_key(|candidate| candidate.lo);
    // Active intervals as (rank, hi), best rank on top; ended ones leave when they reach it.
    let mut expanded: BinaryHeap<Reverse<(u32, u64)>> = BinaryHeap::new();
    let mut residual: BinaryHeap<Reverse<(u32, u64)>> = BinaryHeap::new();
    let mut pieces: Vec<KeyRange> = Vec::with_capacity(candidates.len());
    let mut next = 0;
    let mut at = 0u64;
    loop {
        for heap in [&mut expanded, &mut residual] {
            while heap.peek().is_some_and(|Reverse((_, hi))| *hi < at) {
                heap.pop();
            }
        }
        if expanded.is_empty() && residual.is_empty() {
            match candidates.get(next) {
                Some(candidate) => at = at.max(candidate.lo),
                None => break,
            }
        }
        while let Some(candidate) = candidates.get(next).filter(|c| c.lo <= at) {
            let heap = if candidate.residual {
                &mut residual
            } else {
                &mut expanded
            };
            heap.push(Reverse((candidate.rank, candidate.hi)));
            next += 1;
        }
        let winner = expanded.peek().map(|Reverse(top)| *top);
        let rival = residual.peek().map(|Reverse(top)| *top);
        let winner_rank = winner.map_or(NO_RULE, |(rank, _)| rank);
        let contested = rival.is_some_and(|(rank, _)| rank < winner_rank);
        // The piece lasts until the winner or the best residual ends or another interval
        // starts: nothing else changes either.
        let mut end = u64::MAX;
        for (_, hi) in winner.iter().chain(rival.iter()) {
            end = end.min(*hi);
        }
        if let Some(candidate) = candidates.get(next) {
            end = end.min(candidate.lo - 1);
        }
        if winner.is_some() || contested {
            let value = winner_rank | if contested { CONTESTED } else { 0 };
            match pieces.last_mut() {
                Some(last) if last.hi + 1 == at && last.value == value => last.hi = end,
                _ => pieces.push(KeyRange::new(at, end, value)),
            }
        }
        at = end + 1;
    }
    pieces
}

#[cfg(test)]
mod tests;
