//! The overlap sweep: flattens possibly nested, possibly overlapping key intervals into disjoint
//! pieces, each labelled with the interval that wins it, and reports contested overlaps.
//!
//! This is the heart of resolution (`resolve.rs`): upstreams send ranges that nest (a tenant's
//! block with one number carved out for another) and, by mistake, ranges that overlap. The sweep
//! decides every number in one pass over the sorted ends, so resolving a million entries costs
//! about one sort.
//!
//! Who wins a number: among the intervals holding it, the *most specific* ones are those that
//! hold no other of them (containment is by extent; at equal extent the lower `nest` counts as
//! inside). If several remain — they overlap partially, or duplicate each other — the lowest
//! `id` wins and each other one is reported as a [`Contest`] over that stretch.

/// An interval entering the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub lo: u64,
    pub hi: u64,
    /// Decides equal extents: lower counts as nested inside higher (a closed range is more
    /// specific than an open prefix covering exactly the same numbers).
    pub nest: u8,
    /// The caller's id for the interval, returned in pieces and contests. It is also the
    /// interval's rank, which decides partial overlaps and duplicates: lower wins (source
    /// order, then item order). One field for both keeps an interval to three words, and a
    /// million of them are a cycle's peak.
    pub id: u32,
}

/// A maximal stretch of keys won by one interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub lo: u64,
    pub hi: u64,
    pub id: u32,
}

/// A stretch where `loser` was as specific as `winner` and lost on rank (its higher id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contest {
    pub lo: u64,
    pub hi: u64,
    pub winner: u32,
    pub loser: u32,
}

#[derive(Debug, Default)]
pub struct Sweep {
    /// Disjoint, sorted by key, adjacent pieces of the same winner merged.
    pub pieces: Vec<Piece>,
    /// Sorted by first key; adjacent stretches of the same pair merged.
    pub contests: Vec<Contest>,
}

/// Whether `inner` is strictly more specific than `outer` (both hold the current stretch).
fn nested_in(inner: &Interval, outer: &Interval) -> bool {
    let within = inner.lo >= outer.lo && inner.hi <= outer.hi;
    let same_extent = inner.lo == outer.lo && inner.hi == outer.hi;
    within && (!same_extent || inner.nest < outer.nest)
}

/// Runs the sweep. Intervals must have `lo <= hi`; any order. They are taken by value and
/// sorted in place: sorting positions and reading intervals through them instead is a cache
/// miss per interval at a million, and a copy costs a third of the sort.
pub fn sweep(mut order: Vec<Interval>) -> Sweep {
    order.sort_unstable_by_key(|iv| iv.lo);

    let mut out = Sweep {
        pieces: Vec::with_capacity(order.len()),
        contests: Vec::new(),
    };
    let mut active: Vec<Interval> = Vec::new();
    let mut front: Vec<Interval> = Vec::new();
    let mut next = 0;
    let mut pos = 0u64;
    while next < order.len() || !active.is_empty() {
        if active.is_empty() {
            // Most entries overlap nothing: take those without the bookkeeping below.
            let current = order[next];
            if order
                .get(next + 1)
                .is_none_or(|after| after.lo > current.hi)
            {
                push_piece(&mut out.pieces, current.lo, current.hi, current.id);
                next += 1;
                continue;
            }
            pos = current.lo;
        }
        while next < order.len() && order[next].lo == pos {
            active.push(order[next]);
            next += 1;
        }
        let next_start = order.get(next).map_or(u64::MAX, |r| r.lo);
        let first_end = active.iter().map(|iv| iv.hi).min().unwrap_or(pos);
        let end = first_end.min(next_start - 1);

        if let [only] = active.as_slice() {
            push_piece(&mut out.pieces, pos, end, only.id);
        } else {
            front.clear();
            front.extend(active.iter().filter(|a| {
                !active
                    .iter()
                    .any(|b| !std::ptr::eq(*a, b) && nested_in(b, a))
            }));
            // The front is never empty: a most specific interval always exists (nesting is a
            // strict partial order on the finite active set).
            let winner = front
                .iter()
                .min_by_key(|iv| iv.id)
                .copied()
                .unwrap_or(active[0]);
            push_piece(&mut out.pieces, pos, end, winner.id);
            for loser in front.iter().filter(|iv| iv.id != winner.id) {
                push_contest(&mut out.contests, pos, end, winner.id, loser.id);
            }
        }

        if end == u64::MAX {
            break;
        }
        pos = end + 1;
        active.retain(|iv| iv.hi >= pos);
    }
    out.contests
        .sort_unstable_by_key(|c| (c.lo, c.winner, c.loser));
    out
}

fn push_piece(pieces: &mut Vec<Piece>, lo: u64, hi: u64, id: u32) {
    if let Some(last) = pieces.last_mut() {
        if last.id == id && last.hi + 1 == lo {
            last.hi = hi;
            return;
        }
    }
    pieces.push(Piece { lo, hi, id });
}

fn push_contest(contests: &mut Vec<Contest>, lo: u64, hi: u64, winner: u32, loser: u32) {
    // Contests of one pair are few and recent; look back a little for the one to extend.
    for c in contests.iter_mut().rev().take(8) {
        if c.winner == winner && c.loser == loser && c.hi + 1 == lo {
            c.hi = hi;
            return;
        }
    }
    contests.push(Contest {
        lo,
        hi,
        winner,
        loser,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn iv(lo: u64, hi: u64, nest: u8, id: u32) -> Interval {
        Interval { lo, hi, nest, id }
    }

    #[test]
    fn an_interval_is_three_words() {
        assert_eq!(std::mem::size_of::<Interval>(), 24);
    }

    #[test]
    fn nested_carves_a_hole() {
        let out = sweep(vec![iv(100, 199, 0, 1), iv(150, 159, 0, 2)]);
        let pieces: Vec<_> = out.pieces.iter().map(|p| (p.lo, p.hi, p.id)).collect();
        assert_eq!(pieces, [(100, 149, 1), (150, 159, 2), (160, 199, 1)]);
        assert!(out.contests.is_empty());
    }

    #[test]
    fn partial_overlap_is_won_by_rank_and_reported() {
        let out = sweep(vec![iv(100, 199, 0, 2), iv(150, 249, 0, 1)]);
        let pieces: Vec<_> = out.pieces.iter().map(|p| (p.lo, p.hi, p.id)).collect();
        assert_eq!(pieces, [(100, 149, 2), (150, 249, 1)]);
        assert_eq!(
            out.contests,
            [Contest {
                lo: 150,
                hi: 199,
                winner: 1,
                loser: 2
            }]
        );
    }

    #[test]
    fn equal_extent_is_decided_by_nest_then_rank() {
        let out = sweep(vec![iv(10, 19, 1, 1), iv(10, 19, 0, 2)]);
        assert_eq!(
            out.pieces,
            [Piece {
                lo: 10,
                hi: 19,
                id: 2
            }]
        );
        assert!(out.contests.is_empty());
        let out = sweep(vec![iv(10, 19, 0, 2), iv(10, 19, 0, 1)]);
        assert_eq!(
            out.pieces,
            [Piece {
                lo: 10,
                hi: 19,
                id: 1
            }]
        );
        assert_eq!(out.contests.len(), 1);
    }

    /// The definition, number by number.
    fn reference(intervals: &[Interval], key: u64) -> (Option<u32>, Vec<u32>) {
        let holding: Vec<&Interval> = intervals
            .iter()
            .filter(|i| i.lo <= key && key <= i.hi)
            .collect();
        let front: Vec<&Interval> = holding
            .iter()
            .copied()
            .filter(|a| {
                !holding
                    .iter()
                    .any(|b| !std::ptr::eq(*a, *b) && nested_in(b, a))
            })
            .collect();
        let winner = front.iter().map(|i| i.id).min();
        let mut losers: Vec<u32> = front
            .iter()
            .map(|i| i.id)
            .filter(|id| Some(*id) != winner)
            .collect();
        losers.sort_unstable();
        (winner, losers)
    }

    proptest! {
        #[test]
        fn sweep_decides_every_key_as_the_definition(
            raw in prop::collection::vec((0u64..60, 0u64..15, 0u32..4, 0u8..2), 0..12)
        ) {
            let intervals: Vec<Interval> = raw
                .iter()
                .enumerate()
                // Ranks (ids) out of key order, so that the winner is not merely the first.
                .map(|(at, &(lo, len, rank, nest))| iv(lo, lo + len, nest, rank * 16 + at as u32))
                .collect();
            let out = sweep(intervals.clone());
            for w in out.pieces.windows(2) {
                prop_assert!(w[0].hi < w[1].lo, "pieces overlap or unsorted");
                prop_assert!(!(w[0].id == w[1].id && w[0].hi + 1 == w[1].lo), "not merged");
            }
            for key in 0..80 {
                let (winner, losers) = reference(&intervals, key);
                let got = out.pieces.iter().find(|p| p.lo <= key && key <= p.hi).map(|p| p.id);
                prop_assert_eq!(got, winner, "key {}", key);
                let mut contested: Vec<u32> = out
                    .contests
                    .iter()
                    .filter(|c| c.lo <= key && key <= c.hi)
                    .map(|c| { assert_eq!(Some(c.winner), winner); c.loser })
                    .collect();
                contested.sort_unstable();
                prop_assert_eq!(contested, losers, "key {}", key);
            }
        }
    }
}
