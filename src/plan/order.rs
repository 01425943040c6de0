//! Make-before-break: the order in which a plan's ops keep every number routed at every step,
//! and where an added rule goes.

use std::collections::BTreeSet;

use super::{Op, OpKind, Route};
use crate::dialplan::pattern::{Pattern, Span};

/// Gives each added rule the lowest index no rule of the dial plan uses (and marks it used).
/// Indexes freed by this plan's deletes are not reused: adds run before deletes.
pub(super) fn allocate(routes: Vec<Route>, used: &mut BTreeSet<u32>) -> Vec<Op> {
    let mut candidate = 0u32;
    routes
        .into_iter()
        .map(|route| {
            while used.contains(&candidate) {
                candidate += 1;
            }
            used.insert(candidate);
            Op {
                index: candidate,
                before: None,
                after: Some(route),
            }
        })
        .collect()
}

/// The key intervals a rule of dialsync's shapes covers (an open prefix: one per length).
pub(super) fn span_keys(prefix: &Pattern) -> Vec<(u64, u64)> {
    match prefix.span() {
        Some(Span::Range(range)) => vec![(range.lo().key(), range.hi().key())],
        Some(Span::Prefix(open)) => open
            .ranges()
            .map(|range| (range.lo().key(), range.hi().key()))
            .collect(),
        None => Vec::new(),
    }
}

/// Make-before-break order: by default adds (they only add coverage), then modifies, then
/// deletes, rearranged by three rules on the numbers the ops touch:
/// - an op whose new rule covers numbers another op's old rule gives up goes first (the
///   successor is in place before the predecessor leaves);
/// - of two old rules covering the same numbers, the less specific leaves first (removing the
///   more specific one first would hand its numbers, for a moment, to the other);
/// - of two new rules covering the same numbers, the more specific arrives first (else the
///   broader one would take, for a moment, numbers that end up elsewhere).
///
/// A cycle (ops each waiting for another) is broken by turning one of its modifies into an add
/// and a delete, which costs one operation but keeps every number routed. Never the modify that
/// takes over a foreign rule (`adopted`): its delete would remove a rule dialsync does not own.
pub(super) fn order(
    adds: Vec<Op>,
    modifies: Vec<Op>,
    deletes: Vec<Op>,
    adopted: &BTreeSet<u32>,
    used: &mut BTreeSet<u32>,
) -> Vec<Op> {
    let mut ops: Vec<Op> = adds.into_iter().chain(modifies).chain(deletes).collect();
    loop {
        let edges = dependencies(&ops);
        let stuck = match topological(ops.len(), &edges) {
            Ok(sequence) => {
                let mut slots: Vec<Option<Op>> = ops.into_iter().map(Some).collect();
                // Sized once: collected through `filter_map`, a 100k-op plan doubled into room
                // for 131k, 2.2 MB the cycle then holds to its end for the report.
                let mut ordered = Vec::with_capacity(sequence.len());
                ordered.extend(sequence.into_iter().filter_map(|i| slots[i].take()));
                return ordered;
            }
            Err(cycle) => cycle,
        };
        let Some(victim) = stuck
            .iter()
            .copied()
            .find(|&i| ops[i].kind() == OpKind::Modify && !adopted.contains(&ops[i].index))
        else {
            // Adds and deletes alone cannot wait on each other in a circle (each rule orders
            // by strict specificity), nor can takeovers, which keep their prefix; should it
            // happen, keep the default order.
            return ops;
        };
        let modify = ops.remove(victim);
        let added = allocate(modify.after.into_iter().collect(), used);
        let adds = ops.iter().take_while(|op| op.kind() == OpKind::Add).count();
        ops.splice(adds..adds, added);
        ops.push(Op {
            index: modify.index,
            before: modify.before,
            after: None,
        });
    }
}

/// Edges `(first, then)` between the ops, found by sweeping their coverage intervals.
fn dependencies(ops: &[Op]) -> BTreeSet<(usize, usize)> {
    // (lo, hi, op, is_after)
    let mut intervals: Vec<(u64, u64, usize, bool)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        for (route, is_after) in [(&op.before, false), (&op.after, true)] {
            if let Some(route) = route {
                intervals.extend(
                    span_keys(&route.prefix)
                        .into_iter()
                        .map(|(lo, hi)| (lo, hi, i, is_after)),
                );
            }
        }
    }
    intervals.sort_unstable();
    let mut edges = BTreeSet::new();
    let mut active: Vec<(u64, u64, usize, bool)> = Vec::new();
    for current in intervals {
        active.retain(|a| a.1 >= current.0);
        for &other in &active {
            for (a, b) in [(other, current), (current, other)] {
                if a.2 == b.2 {
                    continue;
                }
                let overlap = (a.0.max(b.0), a.1.min(b.1));
                match (a.3, b.3) {
                    // a's new rule covers numbers b's old rule holds: a must be in place
                    // before b lets go, unless b's own new rule keeps those numbers the way
                    // they end up (same tag as a's, or more specific than a's so it is b's
                    // rule that routes them in the end).
                    (true, false) => {
                        if !keeps(&ops[b.2].after, &ops[a.2].after, overlap) {
                            edges.insert((a.2, b.2));
                        }
                    }
                    // Both old rules hold these numbers and a is less specific: if b let go of
                    // them first, a would route them for a moment. So a leaves first, unless
                    // b's new rule keeps them and still outranks a.
                    (false, false) => {
                        let (pa, pb) = (&ops[a.2].before, &ops[b.2].before);
                        if let (Some(ra), Some(rb)) = (pa, pb) {
                            let outranks = |r: &Route| {
                                r.prefix.specificity_cmp(&ra.prefix) == std::cmp::Ordering::Greater
                            };
                            let b_keeps = ops[b.2]
                                .after
                                .as_ref()
                                .is_some_and(|after| covers(after, overlap) && outranks(after));
                            if outranks(rb) && !b_keeps {
                                edges.insert((a.2, b.2));
                            }
                        }
                    }
                    // Both new rules cover these numbers and a is more specific: a arrives
                    // first.
                    (true, true) => {
                        let (pa, pb) = (&ops[a.2].after, &ops[b.2].after);
                        if let (Some(ra), Some(rb)) = (pa, pb) {
                            if ra.prefix.specificity_cmp(&rb.prefix) == std::cmp::Ordering::Greater
                            {
                                edges.insert((a.2, b.2));
                            }
                        }
                    }
                    (false, true) => {}
                }
            }
        }
        active.push(current);
    }
    edges
}

/// Whether `replacement` (b's new rule) covers every key of `interval` and routes it as it
/// will end up next to `provider` (a's new rule, which also covers it).
fn keeps(replacement: &Option<Route>, provider: &Option<Route>, interval: (u64, u64)) -> bool {
    let (Some(replacement), Some(provider)) = (replacement, provider) else {
        return false;
    };
    covers(replacement, interval)
        && (replacement.tag == provider.tag
            || replacement.prefix.specificity_cmp(&provider.prefix) == std::cmp::Ordering::Greater)
}

/// Whether `route` covers every key of `interval`.
fn covers(route: &Route, interval: (u64, u64)) -> bool {
    span_keys(&route.prefix)
        .iter()
        .any(|&(lo, hi)| lo <= interval.0 && interval.1 <= hi)
}

/// Kahn's algorithm, taking ready ops in their original order so the result is deterministic.
/// On a cycle, the ops of one cycle.
fn topological(
    count: usize,
    edges: &BTreeSet<(usize, usize)>,
) -> Result<Vec<usize>, BTreeSet<usize>> {
    let mut incoming = vec![0usize; count];
    let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); count];
    for &(from, to) in edges {
        incoming[to] += 1;
        outgoing[from].push(to);
    }
    let mut ready: BTreeSet<usize> = (0..count).filter(|&i| incoming[i] == 0).collect();
    let mut sequence = Vec::with_capacity(count);
    while let Some(next) = ready.pop_first() {
        sequence.push(next);
        for &to in &outgoing[next] {
            incoming[to] -= 1;
            if incoming[to] == 0 {
                ready.insert(to);
            }
        }
    }
    if sequence.len() == count {
        return Ok(sequence);
    }
    // Nodes left over are cycles and what hangs off them. Walking back along edges between
    // left-over nodes must come round: the cycle is what the walk repeats.
    let stuck: BTreeSet<usize> = (0..count).filter(|&i| incoming[i] > 0).collect();
    let mut predecessor = vec![usize::MAX; count];
    for &(from, to) in edges {
        if stuck.contains(&from) && stuck.contains(&to) {
            predecessor[to] = from;
        }
    }
    let mut walked = BTreeSet::new();
    let mut at = stuck.first().copied().unwrap_or(0);
    while walked.insert(at) && predecessor[at] != usize::MAX {
        at = predecessor[at];
    }
    let mut cycle = BTreeSet::from([at]);
    let mut next = predecessor[at];
    while next != usize::MAX && cycle.insert(next) {
        next = predecessor[next];
    }
    Err(cycle)
}
