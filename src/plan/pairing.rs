//! Pairing desired rules with the rules the dial plan holds so that the change costs the
//! fewest operations: equal rules cost nothing, and a changed rule is one modify at its index
//! rather than a delete and an add.

use std::collections::HashMap;

use super::order::span_keys;
use super::Route;
use crate::dialplan::pattern::Pattern;
use crate::dialplan::rule::{DialPlanRule, Tag};

/// An actual rule the plan may change: one of ours, or a foreign one being adopted. Borrowed:
/// a million of them are compared each cycle and only the few that change are copied into ops.
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate<'a> {
    pub(super) rule: &'a DialPlanRule,
    /// A foreign rule taken over (`adopt_foreign`): even unchanged it needs a write, for its Name.
    pub(super) adopted: bool,
}

impl Candidate<'_> {
    pub(super) fn route(&self) -> Route {
        Route {
            prefix: self.rule.prefix.clone(),
            tag: self.rule.tag.clone(),
        }
    }
}

/// One difference between desired and actual, before policy.
pub(super) enum Change {
    Add(Route),
    /// An adopted foreign rule that already routes as desired: only its Name changes.
    Rename(u32, Route),
    /// `reuse`: the two rules have nothing in common; the old one's index is merely recycled.
    Modify {
        index: u32,
        from: Route,
        to: Route,
        reuse: bool,
    },
    Delete(u32, Route),
}

/// Matches desired against actual rules so that the change costs the fewest operations: equal
/// rules cost nothing, and every remaining desired rule is paired with a remaining actual one
/// (one Modify instead of a Delete and an Add) — first rules with the same prefix (a tag
/// change), then rules covering overlapping numbers (a range that grew or shrank), then any.
pub(super) fn pair_up(wanted: &[&Route], owned: Vec<Candidate>) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut taken = vec![false; owned.len()];
    let mut unmatched: Vec<&Route> = Vec::new();

    // Fast path: desired rules come in canonical order and the rules dialsync wrote got their
    // indexes in that order, so walking both sides together matches nearly all equal rules
    // without hashing a million of them. What it misses goes through the hash below.
    let same = |route: &Route, candidate: &Candidate| {
        !candidate.adopted
            && candidate.rule.prefix == route.prefix
            && candidate.rule.tag == route.tag
    };
    let mut rest: Vec<&Route> = Vec::new();
    let mut j = 0;
    for &route in wanted {
        const LOOKAHEAD: usize = 4;
        let found = (j..owned.len().min(j + LOOKAHEAD)).find(|&k| same(route, &owned[k]));
        match found {
            Some(k) => {
                taken[k] = true;
                j = k + 1;
            }
            None => rest.push(route),
        }
    }

    let mut by_route: HashMap<(&Pattern, &Tag), Vec<usize>> = HashMap::new();
    for (position, candidate) in owned.iter().enumerate() {
        if !taken[position] {
            by_route
                .entry((&candidate.rule.prefix, &candidate.rule.tag))
                .or_default()
                .push(position);
        }
    }
    for route in rest {
        let found = by_route
            .get_mut(&(&route.prefix, &route.tag))
            .and_then(|positions| take_preferring_ours(positions, &owned));
        match found {
            Some(position) => {
                taken[position] = true;
                if owned[position].adopted {
                    changes.push(Change::Rename(owned[position].rule.index, route.clone()));
                }
            }
            None => unmatched.push(route),
        }
    }

    // Same prefix, another tag.
    let mut by_prefix: HashMap<&Pattern, Vec<usize>> = HashMap::new();
    for (position, candidate) in owned.iter().enumerate() {
        if !taken[position] {
            by_prefix
                .entry(&candidate.rule.prefix)
                .or_default()
                .push(position);
        }
    }
    let mut still: Vec<&Route> = Vec::new();
    for route in unmatched {
        let found = by_prefix
            .get_mut(&route.prefix)
            .and_then(|positions| take_preferring_ours(positions, &owned));
        match found {
            Some(position) => {
                taken[position] = true;
                changes.push(Change::Modify {
                    index: owned[position].rule.index,
                    from: owned[position].route(),
                    to: route.clone(),
                    reuse: false,
                });
            }
            None => still.push(route),
        }
    }

    // Overlapping numbers: both sides sorted by where their coverage starts, merged.
    let start = |route: &Route| span_keys(&route.prefix).first().copied();
    let mut desired_spans: Vec<(u64, u64, &Route)> = Vec::new();
    let mut rest: Vec<&Route> = Vec::new();
    for route in still {
        match start(route) {
            Some((lo, hi)) => desired_spans.push((lo, hi, route)),
            None => rest.push(route),
        }
    }
    // A foreign rule is taken over only by a desired rule with its very prefix (above): it is
    // never reshaped to other numbers, recycled or deleted, and stays foreign otherwise.
    let mut actual_spans: Vec<(u64, u64, usize)> = (0..owned.len())
        .filter(|&p| !taken[p] && !owned[p].adopted)
        .filter_map(|p| {
            span_keys(&owned[p].rule.prefix)
                .first()
                .map(|&(lo, hi)| (lo, hi, p))
        })
        .collect();
    desired_spans.sort_by_key(|&(lo, hi, _)| (lo, hi));
    actual_spans.sort_by_key(|&(lo, hi, _)| (lo, hi));
    let mut next_actual = 0;
    for (lo, hi, route) in desired_spans {
        while next_actual < actual_spans.len() && actual_spans[next_actual].1 < lo {
            next_actual += 1;
        }
        match actual_spans.get(next_actual) {
            Some(&(a_lo, _, position)) if a_lo <= hi => {
                taken[position] = true;
                next_actual += 1;
                changes.push(Change::Modify {
                    index: owned[position].rule.index,
                    from: owned[position].route(),
                    to: route.clone(),
                    reuse: false,
                });
            }
            _ => rest.push(route),
        }
    }

    // Anything left: recycle stale rules' indexes (policy may refuse), then add or delete.
    let mut stale = (0..owned.len()).filter(|&p| !taken[p] && !owned[p].adopted);
    for route in rest {
        match stale.next() {
            Some(position) => changes.push(Change::Modify {
                index: owned[position].rule.index,
                from: owned[position].route(),
                to: route.clone(),
                reuse: true,
            }),
            None => changes.push(Change::Add(route.clone())),
        }
    }
    for position in stale {
        changes.push(Change::Delete(
            owned[position].rule.index,
            owned[position].route(),
        ));
    }
    changes
}

/// Takes one of the candidates at `positions`: a rule already dialsync's when there is one
/// (no takeover, and for an equal route no write at all), else a foreign one to adopt.
fn take_preferring_ours(positions: &mut Vec<usize>, owned: &[Candidate]) -> Option<usize> {
    let at = positions
        .iter()
        .position(|&p| !owned[p].adopted)
        .unwrap_or(0);
    (!positions.is_empty()).then(|| positions.remove(at))
}
