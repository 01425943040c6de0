//! The audit: does every number the sources assign route to its tag on the dial plan as read,
//! or does another rule win?
//!
//! It compares two disjoint interval lists: the desired mapping (from [`crate::resolve`],
//! flattened by `desired`) and the dial plan's best match (a [`RuleIndex`] over every rule,
//! owned and foreign). Both are walked together, like the merge of two sorted lists, so the
//! cost is one step per piece of either list: a million numbers in 100k ranges against 100k
//! rules is a few hundred thousand steps, never a million lookups.
//!
//! Each assigned number gets one [`Verdict`]:
//! - **routed**: the winning rule's tag is the desired tag. A *foreign* rule winning with the
//!   desired tag counts as routed too (the call goes where the sources say), and is tallied
//!   apart as [`AuditCounts::routed_by_foreign`] so an operator sees routing that depends on
//!   a rule dialsync does not own; it is not a finding.
//! - **misrouted**: a rule dialsync owns wins with another tag (a hand edit, a quarantined
//!   op, a plan not yet applied). The next sync normally repairs it.
//! - **shadowed**: a foreign rule wins with another tag (a Live Platform per-number rule
//!   beating one of our ranges at best match). dialsync never touches it; only its owner can.
//! - **unrouted**: no rule matches.
//! - **unchecked**: see below; not verified either way.
//!
//! And numbers no source assigns but an owned rule wins are **stray**: counted per rule, as
//! the issue asks ("owned rules that route numbers no source assigns"), and listed as ranges.
//! A foreign rule routing unassigned numbers is none of dialsync's business.
//!
//! Contested pieces. The rule index keeps pathological rules aside (see
//! [`crate::dialplan::rule_index`]) and marks the pieces where one of them might win as not
//! exact: there the audit asks [`RuleIndex::lookup`] number by number. That is bounded by
//! [`Options::contested_budget`] numbers per audit; a contested piece that would pass it is
//! not enumerated, and its assigned numbers are counted **unchecked** (its unassigned ones
//! are not examined for stray rules). A dial plan of the shapes dialsync and Live Platform
//! write has no contested piece at all.
//!
//! Pure: values in, values out.

mod desired;

use std::collections::{BTreeMap, HashMap};

use crate::dialplan::pattern::Pattern;
use crate::dialplan::rule::Tag;
use crate::dialplan::rule_index::{RuleIndex, RuleIndexError, RuleInterval};
use crate::number::Number;
use crate::resolve::{Mapping, TagId};
use desired::{desired_pieces, DesiredPiece};

/// One rule of the dial plan as the audit sees it.
#[derive(Clone, Copy, Debug)]
pub struct PlanRule<'a> {
    /// The rule's index in the dial plan: its id in the rule index, and how findings name it.
    pub index: u32,
    pub pattern: &'a Pattern,
    pub tag: &'a Tag,
    pub owned: bool,
}

/// What the audit finds a number to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Routed,
    Misrouted,
    Shadowed,
    Unrouted,
    Unchecked,
    /// Not an assigned number: an owned rule wins a number no source assigns.
    Stray,
}

impl Verdict {
    /// The word used in CSV, JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Routed => "routed",
            Verdict::Misrouted => "misrouted",
            Verdict::Shadowed => "shadowed",
            Verdict::Unrouted => "unrouted",
            Verdict::Unchecked => "unchecked",
            Verdict::Stray => "stray",
        }
    }
}

/// Who wins a number, as far as its verdict cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Winner {
    /// The winning rule's tag is the desired one.
    pub has_desired_tag: bool,
    /// dialsync owns the winning rule.
    pub owned: bool,
}

/// The verdict on a number that sources assign (`assigned`) or not, won by `winner`: the one
/// rule both the audit and `lookup` judge by. `None` for a number no source assigns and no
/// owned rule wins: none of dialsync's business. Never [`Verdict::Unchecked`], which is the
/// audit's word for numbers it did not judge.
pub fn verdict(assigned: bool, winner: Option<Winner>) -> Option<Verdict> {
    Some(match (assigned, winner) {
        (false, Some(Winner { owned: true, .. })) => Verdict::Stray,
        (false, _) => return None,
        (true, None) => Verdict::Unrouted,
        (
            true,
            Some(Winner {
                has_desired_tag: true,
                ..
            }),
        ) => Verdict::Routed,
        (true, Some(Winner { owned: true, .. })) => Verdict::Misrouted,
        (true, Some(Winner { owned: false, .. })) => Verdict::Shadowed,
    })
}

/// How many numbers got each verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditCounts {
    /// Assigned numbers whose winning rule carries the desired tag (owned or foreign).
    pub routed: u64,
    /// Of `routed`, those won by a foreign rule.
    pub routed_by_foreign: u64,
    pub misrouted: u64,
    pub shadowed: u64,
    pub unrouted: u64,
    pub unchecked: u64,
    /// Unassigned numbers won by an owned rule.
    pub stray_numbers: u64,
    /// Owned rules winning at least one unassigned number.
    pub stray_rules: u64,
}

impl AuditCounts {
    /// Every number the sources assign.
    pub fn assigned(&self) -> u64 {
        self.routed + self.misrouted + self.shadowed + self.unrouted + self.unchecked
    }

    /// Nothing found: every assigned number routed, no stray rule, nothing left unchecked.
    pub fn is_clean(&self) -> bool {
        self.misrouted + self.shadowed + self.unrouted + self.unchecked + self.stray_rules == 0
    }
}

/// A run of consecutive numbers with one verdict, one winning rule and one desired tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    pub verdict: Verdict,
    pub first: Number,
    pub last: Number,
    /// Numbers from `first` to `last`.
    pub count: u64,
    /// The winning rule's dial-plan index; `None` when no rule matches (or, for unchecked,
    /// when it was not asked).
    pub rule: Option<u32>,
    /// The tag the sources want; `None` for stray numbers.
    pub desired: Option<TagId>,
}

/// An owned rule that routes numbers no source assigns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrayRule {
    pub rule: u32,
    pub numbers: u64,
    pub first: Number,
}

/// What the audit keeps beyond the counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Most findings kept, in key order (the daemon keeps a few examples, the command all).
    /// The counts always cover everything.
    pub max_findings: usize,
    /// Most numbers of contested pieces checked one by one (see the module documentation).
    pub contested_budget: u64,
}

impl Default for Options {
    /// Every finding; 4M contested numbers, well under a second of lookups.
    fn default() -> Options {
        Options {
            max_findings: usize::MAX,
            contested_budget: 1 << 22,
        }
    }
}

/// The audit's result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audit {
    pub counts: AuditCounts,
    /// The first [`Options::max_findings`] findings in number order (not routed).
    pub findings: Vec<Finding>,
    /// How many findings there are in all.
    pub findings_total: u64,
    /// Stray owned rules, by dial-plan index.
    pub strays: Vec<StrayRule>,
    /// Steps of the walk (pieces compared), for the benches.
    pub steps: u64,
}

/// The rule index the audit needs over `rules` (ids are the dial-plan indexes, so ties break
/// as on the SBC).
pub fn rule_index(rules: &[PlanRule<'_>]) -> Result<RuleIndex, RuleIndexError> {
    RuleIndex::build(rules.iter().map(|rule| (rule.index, rule.pattern)))
}

/// Audits `rules` (the whole dial plan, with `index` built over it by [`rule_index`])
/// against `mapping`.
pub fn audit(
    mapping: &Mapping,
    rules: &[PlanRule<'_>],
    index: &RuleIndex,
    options: Options,
) -> Audit {
    walk(mapping, rules, index, options, u64::MAX)
}

/// The walk, over the keys below `below` only: the proptest compares it with brute force on
/// the numbers it can enumerate (open prefixes and rules reach 15 digits).
fn walk(
    mapping: &Mapping,
    rules: &[PlanRule<'_>],
    index: &RuleIndex,
    options: Options,
    below: u64,
) -> Audit {
    let mut walker = Walker::new(mapping, rules, index, options);
    let desired = desired_pieces(mapping);
    let mut wanted = desired.iter().copied().peekable();
    let mut routes = index.intervals().peekable();
    let mut at = 0u64;
    loop {
        while wanted.next_if(|d| d.hi < at).is_some() {}
        while routes.next_if(|r| r.range.hi().key() < at).is_some() {}
        let (next_d, next_r) = (wanted.peek().copied(), routes.peek().copied());
        let start = match (next_d, next_r) {
            (None, None) => break,
            (d, r) => at.max(
                d.map_or(u64::MAX, |d| d.lo)
                    .min(r.map_or(u64::MAX, |r| r.range.lo().key())),
            ),
        };
        if start >= below {
            break;
        }
        let d = next_d.filter(|d| d.lo <= start);
        let r = next_r.filter(|r| r.range.lo().key() <= start);
        // The segment lasts until either current piece ends or the next one starts.
        let end =
            |piece_hi: Option<u64>, next_lo: Option<u64>| piece_hi.or(next_lo.map(|lo| lo - 1));
        let d_end = end(
            d.map(|d| d.hi),
            next_d.filter(|_| d.is_none()).map(|d| d.lo),
        );
        let r_end = end(
            r.map(|r| r.range.hi().key()),
            next_r.filter(|_| r.is_none()).map(|r| r.range.lo().key()),
        );
        let stop = d_end
            .unwrap_or(u64::MAX)
            .min(r_end.unwrap_or(u64::MAX))
            .min(below - 1);
        walker.segment(start, stop, d, r);
        at = stop + 1;
    }
    walker.finish()
}

/// The dial plan's rules by index, as a verdict needs them: the desired-tag id of the rule's
/// tag (if any source uses that tag) and whether dialsync owns it. The rules are read where
/// they lie, in index order as a dial plan is read and stored: a map of them was 2.2 MB of a
/// 100k-rule audit's peak.
struct RulesByIndex<'r, 'p> {
    rules: &'r [PlanRule<'p>],
    /// Positions in `rules` in index order, when `rules` is not in it already.
    order: Option<Vec<u32>>,
    tags: HashMap<&'r str, TagId>,
}

impl<'r, 'p> RulesByIndex<'r, 'p> {
    fn new(mapping: &'r Mapping, rules: &'r [PlanRule<'p>]) -> RulesByIndex<'r, 'p> {
        let tags = mapping
            .tags()
            .iter()
            .enumerate()
            .map(|(id, tag)| (tag.as_str(), id as TagId))
            .collect();
        let order = (!rules.is_sorted_by_key(|rule| rule.index)).then(|| {
            let mut order: Vec<u32> = (0..rules.len() as u32).collect();
            // Stable: of rules sharing an index, the first stays first.
            order.sort_by_key(|&at| rules[at as usize].index);
            order
        });
        RulesByIndex { rules, order, tags }
    }

    /// The rule with dial-plan index `index`. The SBC keeps indexes unique; should two rules
    /// share one, the first stands, as the rule index keeps the first of equal ids.
    fn get(&self, index: u32) -> Option<(Option<TagId>, bool)> {
        let rule = match &self.order {
            None => {
                let at = self.rules.partition_point(|rule| rule.index < index);
                self.rules.get(at)
            }
            Some(order) => {
                let at = order.partition_point(|&at| self.rules[at as usize].index < index);
                order.get(at).map(|&at| &self.rules[at as usize])
            }
        }
        .filter(|rule| rule.index == index)?;
        Some((self.tags.get(rule.tag.as_str()).copied(), rule.owned))
    }
}

/// The walk's running state.
struct Walker<'a, 'p> {
    index: &'a RuleIndex,
    rules: RulesByIndex<'a, 'p>,
    options: Options,
    budget: u64,
    audit: Audit,
    /// The finding the next segment may extend, not yet in `audit.findings`.
    current: Option<Finding>,
    strays: BTreeMap<u32, StrayRule>,
}

impl<'a, 'p> Walker<'a, 'p> {
    fn new(
        mapping: &'a Mapping,
        rules: &'a [PlanRule<'p>],
        index: &'a RuleIndex,
        options: Options,
    ) -> Walker<'a, 'p> {
        Walker {
            index,
            rules: RulesByIndex::new(mapping, rules),
            options,
            budget: options.contested_budget,
            audit: Audit::default(),
            current: None,
            strays: BTreeMap::new(),
        }
    }

    /// Keys `lo..=hi`, all in the desired piece `d` (or in none) and the rule interval `r`
    /// (or in none).
    fn segment(&mut self, lo: u64, hi: u64, d: Option<DesiredPiece>, r: Option<RuleInterval>) {
        self.audit.steps += 1;
        let desired = d.map(|d| d.tag);
        match r {
            Some(r) if !r.exact => {
                let size = hi - lo + 1;
                if size <= self.budget {
                    self.budget -= size;
                    for key in lo..=hi {
                        if let Some(number) = Number::from_key(key) {
                            let winner = self.index.lookup(number);
                            self.judge(key, key, desired, winner);
                        }
                    }
                } else if desired.is_some() {
                    self.audit.counts.unchecked += size;
                    self.record(Verdict::Unchecked, lo, hi, None, desired);
                }
            }
            r => self.judge(lo, hi, desired, r.and_then(|r| r.rule)),
        }
    }

    /// Keys `lo..=hi` all wanting `desired` and won by `winner`.
    fn judge(&mut self, lo: u64, hi: u64, desired: Option<TagId>, winner: Option<u32>) {
        let size = hi - lo + 1;
        let rule = winner.and_then(|index| self.rules.get(index).map(|r| (index, r)));
        let counts = &mut self.audit.counts;
        let winner = rule.map(|(_, (tag, owned))| Winner {
            has_desired_tag: desired.is_some() && tag == desired,
            owned,
        });
        let Some(verdict) = verdict(desired.is_some(), winner) else {
            return;
        };
        match verdict {
            Verdict::Stray => {
                counts.stray_numbers += size;
                if let (Some((index, _)), Some(first)) = (rule, Number::from_key(lo)) {
                    self.strays
                        .entry(index)
                        .or_insert(StrayRule {
                            rule: index,
                            numbers: 0,
                            first,
                        })
                        .numbers += size;
                }
            }
            Verdict::Routed => {
                counts.routed += size;
                if winner.is_some_and(|w| !w.owned) {
                    counts.routed_by_foreign += size;
                }
                return;
            }
            Verdict::Unrouted => counts.unrouted += size,
            Verdict::Misrouted => counts.misrouted += size,
            Verdict::Shadowed => counts.shadowed += size,
            Verdict::Unchecked => counts.unchecked += size,
        }
        self.record(verdict, lo, hi, rule.map(|(index, _)| index), desired);
    }

    /// Adds a finding, extending the last one when it continues it.
    fn record(
        &mut self,
        verdict: Verdict,
        lo: u64,
        hi: u64,
        rule: Option<u32>,
        desired: Option<TagId>,
    ) {
        let (Some(first), Some(last)) = (Number::from_key(lo), Number::from_key(hi)) else {
            return;
        };
        if let Some(current) = self.current.as_mut().filter(|f| {
            f.verdict == verdict && f.rule == rule && f.desired == desired && f.last.key() + 1 == lo
        }) {
            current.last = last;
            current.count += hi - lo + 1;
            return;
        }
        self.flush();
        self.audit.findings_total += 1;
        self.current = Some(Finding {
            verdict,
            first,
            last,
            count: hi - lo + 1,
            rule,
            desired,
        });
    }

    /// Keeps the finding being extended, if there is room for it.
    fn flush(&mut self) {
        if let Some(finding) = self.current.take() {
            if self.audit.findings.len() < self.options.max_findings {
                self.audit.findings.push(finding);
            }
        }
    }

    fn finish(mut self) -> Audit {
        self.flush();
        self.audit.counts.stray_rules = self.strays.len() as u64;
        self.audit.strays = self.strays.into_values().collect();
        self.audit
    }
}

#[cfg(test)]
mod tests;
