//! The desired mapping as the audit walks it: disjoint key intervals, each with its tag.
//!
//! A [`Mapping`] is two layers, open prefixes (the longest one holding a number decides) and
//! closed ranges that override them, which is what the compiler wants. The audit wants one
//! flat list to merge with the rule index's intervals, so this flattens the two layers the
//! way [`Mapping::tag_of`] reads them, per number length: an open prefix is one interval per
//! length, and at one length the intervals of prefixes are nested or disjoint (a laminar
//! family), so one stack pass gives each key its longest prefix.
//!
//! Size: one piece per closed range, plus per prefix and length at most two pieces (before
//! and after each nested one, and around the closed ranges it holds).

use crate::number::NumberRange;
use crate::resolve::{Mapping, TagId};

/// A run of keys `lo..=hi` (numbers of one length) that the mapping gives one tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DesiredPiece {
    pub lo: u64,
    pub hi: u64,
    pub tag: TagId,
}

/// The mapping as disjoint pieces in key order, each number with the tag `tag_of` gives it.
pub(super) fn desired_pieces(mapping: &Mapping) -> Vec<DesiredPiece> {
    let open = open_layer(mapping);
    // The closed ranges are read where they lie: a copy of them as pieces, beside `pieces`,
    // was 2.4 MB of a 100k-range audit's peak.
    let ranges = mapping.ranges();
    let closed = |from: usize| ranges[from..].iter().map(|&(range, tag)| piece(range, tag));
    let mut pieces = Vec::with_capacity(open.len() + ranges.len());
    // Open pieces minus the closed ranges, which override them.
    let mut first_closed = 0;
    for o in &open {
        while closed(first_closed).next().is_some_and(|c| c.hi < o.lo) {
            first_closed += 1;
        }
        let mut at = o.lo;
        for c in closed(first_closed).take_while(|c| c.lo <= o.hi) {
            if c.lo > at {
                pieces.push(DesiredPiece {
                    lo: at,
                    hi: c.lo - 1,
                    tag: o.tag,
                });
            }
            at = at.max(c.hi + 1);
        }
        if at <= o.hi {
            pieces.push(DesiredPiece {
                tag: o.tag,
                lo: at,
                hi: o.hi,
            });
        }
    }
    pieces.extend(closed(0));
    pieces.sort_unstable_by_key(|p| p.lo);
    pieces
}

fn piece(range: NumberRange, tag: TagId) -> DesiredPiece {
    DesiredPiece {
        lo: range.lo().key(),
        hi: range.hi().key(),
        tag,
    }
}

/// The open layer alone: every key held by a prefix, with its longest prefix's tag.
fn open_layer(mapping: &Mapping) -> Vec<DesiredPiece> {
    let mut intervals: Vec<DesiredPiece> = mapping
        .prefixes()
        .iter()
        .flat_map(|&(prefix, tag)| prefix.ranges().map(move |range| piece(range, tag)))
        .collect();
    // Outer before inner at the same start, so the stack holds a chain, outermost at the
    // bottom. `Mapping` keeps one prefix per digit string, so no two intervals are equal.
    intervals.sort_unstable_by(|a, b| a.lo.cmp(&b.lo).then(b.hi.cmp(&a.hi)));
    let mut out: Vec<DesiredPiece> = Vec::with_capacity(intervals.len());
    let mut stack: Vec<DesiredPiece> = Vec::new();
    let mut at = 0u64;
    let emit = |lo: u64, hi: u64, tag: TagId, out: &mut Vec<DesiredPiece>| {
        if lo <= hi {
            out.push(DesiredPiece { lo, hi, tag });
        }
    };
    for interval in intervals {
        // Close the intervals that end before this one starts, innermost first; each
        // resumes its enclosing one.
        while let Some(top) = stack.last().copied().filter(|top| top.hi < interval.lo) {
            emit(at.max(top.lo), top.hi, top.tag, &mut out);
            at = top.hi + 1;
            stack.pop();
        }
        if let Some(top) = stack.last() {
            emit(at.max(top.lo), interval.lo - 1, top.tag, &mut out);
        }
        at = interval.lo;
        stack.push(interval);
    }
    while let Some(top) = stack.pop() {
        emit(at.max(top.lo), top.hi, top.tag, &mut out);
        at = top.hi + 1;
    }
    out
}
