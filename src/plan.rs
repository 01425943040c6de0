//! Planning: the smallest list of dial-plan operations that turns the SBC's rules into the
//! desired ones, in an order that never unroutes a number, and the judgment of whether it is
//! safe to apply at all.
//!
//! Pure: rules in, a [`Plan`] out. The agent applies it; the store journals it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::dialplan::pattern::{Pattern, Span};
use crate::dialplan::rule::{DialPlanRule, Tag, UnreadableRow};
use crate::source::Rejected;

/// Where a rule sends calls: its prefix and its tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Route {
    pub prefix: Pattern,
    pub tag: Tag,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.prefix, self.tag)
    }
}

/// One change to one rule of the dial plan, identified by its index.
///
/// `Add` has only `after`, `Delete` only `before`, `Modify` both (the rule keeps its index and
/// changes prefix and/or tag in place).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Op {
    pub index: u32,
    pub before: Option<Route>,
    pub after: Option<Route>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    Add,
    Modify,
    Delete,
}

impl Op {
    pub fn kind(&self) -> OpKind {
        match (&self.before, &self.after) {
            (None, _) => OpKind::Add,
            (Some(_), Some(_)) => OpKind::Modify,
            (Some(_), None) => OpKind::Delete,
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpKind::Add => "add",
            OpKind::Modify => "modify",
            OpKind::Delete => "delete",
        })
    }
}

/// Which changes a sync may make (`agent.policy`; required, no default, DESIGN.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Add, modify and delete: the dial plan ends exactly as desired.
    Sync,
    /// Add and modify, never delete: stale rules stay until someone removes them.
    UpsertOnly,
    /// Only add missing rules.
    CreateOnly,
}

impl Policy {
    /// The word the config uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Sync => "sync",
            Policy::UpsertOnly => "upsert-only",
            Policy::CreateOnly => "create-only",
        }
    }
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sync" => Ok(Policy::Sync),
            "upsert-only" => Ok(Policy::UpsertOnly),
            "create-only" => Ok(Policy::CreateOnly),
            other => Err(format!(
                "unknown policy {other:?} (expected sync, upsert-only or create-only)"
            )),
        }
    }
}

/// The change gate of DESIGN.md §6 (`[safety]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Safety {
    pub max_delete_fraction: f64,
    pub max_update_fraction: f64,
    /// Below this many owned rules the fractions do not apply (a tiny plan may change wholly).
    pub min_existing: usize,
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            max_delete_fraction: 0.3,
            max_update_fraction: 0.3,
            min_existing: 10,
        }
    }
}

/// Everything the planner needs to know besides the rules themselves.
#[derive(Clone, Debug)]
pub struct PlanSettings {
    /// The Name that marks the rules dialsync owns (`dialplan.rule_name`).
    pub rule_name: String,
    pub policy: Policy,
    /// Take over foreign rules whose prefix equals a desired one (`dialplan.adopt_foreign`).
    pub adopt_foreign: bool,
    pub safety: Safety,
    /// The most rules the dial plan may hold after the plan, foreign ones included.
    pub max_rules: usize,
}

/// A desired rule not applied because a rule dialsync does not own has the same prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForeignConflict {
    pub desired: Route,
    pub foreign_index: u32,
    pub foreign_name: String,
    pub foreign_tag: Tag,
}

/// Why a plan must not be applied without an operator's `apply --force --checksum`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum BlockReason {
    TooManyDeletes {
        deletes: usize,
        existing: usize,
        max_fraction: f64,
    },
    TooManyModifies {
        modifies: usize,
        existing: usize,
        max_fraction: f64,
    },
    /// Sources that answered with nothing while their last snapshot had entries.
    EmptiedSources {
        sources: Vec<String>,
    },
    OverCapacity {
        rules: usize,
        max_rules: usize,
    },
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockReason::TooManyDeletes {
                deletes,
                existing,
                max_fraction,
            } => write!(
                f,
                "would delete {deletes} of {existing} owned rules, more than max_delete_fraction {max_fraction}"
            ),
            BlockReason::TooManyModifies {
                modifies,
                existing,
                max_fraction,
            } => write!(
                f,
                "would modify {modifies} of {existing} owned rules, more than max_update_fraction {max_fraction}"
            ),
            BlockReason::EmptiedSources { sources } => write!(
                f,
                "source(s) {} returned nothing while their last snapshot had entries",
                sources.join(", ")
            ),
            BlockReason::OverCapacity { rules, max_rules } => {
                write!(f, "the dial plan would hold {rules} rules, more than max_rules {max_rules}")
            }
        }
    }
}

/// How many ops of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OpCounts {
    pub adds: usize,
    pub modifies: usize,
    pub deletes: usize,
}

impl OpCounts {
    pub fn of<'a>(ops: impl IntoIterator<Item = &'a Op>) -> OpCounts {
        let mut counts = OpCounts::default();
        for op in ops {
            match op.kind() {
                OpKind::Add => counts.adds += 1,
                OpKind::Modify => counts.modifies += 1,
                OpKind::Delete => counts.deletes += 1,
            }
        }
        counts
    }

    pub fn total(&self) -> usize {
        self.adds + self.modifies + self.deletes
    }
}

/// The changes one sync would make, in the order to make them.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Make-before-break order: adds, then modifies and deletes ordered so that coverage a
    /// rule gives up is already provided by its successor, and less specific rules go first.
    pub ops: Vec<Op>,
    /// What the policy kept back (a `sync` would have done these too).
    pub held_back: OpCounts,
    pub foreign_conflicts: Vec<ForeignConflict>,
    /// Rules dialsync owned before the plan.
    pub existing_owned: usize,
    /// Empty when the plan may be applied.
    pub blocked: Vec<BlockReason>,
    /// SHA-256 of the ops in canonical form, hex: what `apply --force --checksum` must quote.
    pub checksum: String,
}

impl Plan {
    pub fn counts(&self) -> OpCounts {
        OpCounts::of(&self.ops)
    }

    pub fn is_blocked(&self) -> bool {
        !self.blocked.is_empty()
    }
}

/// A plan as `dialsync plan` shows it: the plan with what the cycle learnt on the way
/// (refused upstream items, resolution conflicts), for a person (`Display`) or a program
/// ([`PlanReport::to_json`]).
#[derive(Clone, Copy, Debug)]
pub struct PlanReport<'a> {
    pub plan: &'a Plan,
    pub policy: Policy,
    pub rejected: &'a [Rejected],
    /// Resolution conflicts, each already described (they name entries and sources).
    pub conflicts: &'a [String],
}

/// Per-tag counts: which customers a plan touches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
struct TagCounts {
    adds: usize,
    modifies: usize,
    deletes: usize,
}

impl PlanReport<'_> {
    /// Ops counted by the tag they concern (a retag counts for both tags).
    fn by_tag(&self) -> BTreeMap<&str, TagCounts> {
        let mut by_tag: BTreeMap<&str, TagCounts> = BTreeMap::new();
        fn tag(route: &Option<Route>) -> Option<&str> {
            route.as_ref().map(|r| r.tag.as_str())
        }
        for op in &self.plan.ops {
            let (before, after) = (tag(&op.before), tag(&op.after));
            match op.kind() {
                OpKind::Add => {
                    if let Some(t) = after {
                        by_tag.entry(t).or_default().adds += 1;
                    }
                }
                OpKind::Delete => {
                    if let Some(t) = before {
                        by_tag.entry(t).or_default().deletes += 1;
                    }
                }
                OpKind::Modify => {
                    let retag = before.filter(|b| Some(*b) != after);
                    for t in after.into_iter().chain(retag) {
                        by_tag.entry(t).or_default().modifies += 1;
                    }
                }
            }
        }
        by_tag
    }

    /// The report as JSON: counts, per-tag counts, block reasons, checksum, the ops in order,
    /// foreign conflicts, refused items and conflicts.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Json<'a> {
            checksum: &'a str,
            policy: Policy,
            blocked: bool,
            block_reasons: Vec<String>,
            blocks: &'a [BlockReason],
            existing_owned: usize,
            counts: OpCounts,
            held_back: OpCounts,
            counts_by_tag: BTreeMap<&'a str, TagCounts>,
            ops: Vec<JsonOp<'a>>,
            foreign_conflicts: &'a [ForeignConflict],
            rejected: Vec<JsonRejected<'a>>,
            conflicts: &'a [String],
        }
        #[derive(Serialize)]
        struct JsonOp<'a> {
            kind: OpKind,
            index: u32,
            before: Option<&'a Route>,
            after: Option<&'a Route>,
        }
        #[derive(Serialize)]
        struct JsonRejected<'a> {
            item: &'a str,
            reason: &'a str,
        }
        let plan = self.plan;
        let json = Json {
            checksum: &plan.checksum,
            policy: self.policy,
            blocked: plan.is_blocked(),
            block_reasons: plan.blocked.iter().map(ToString::to_string).collect(),
            blocks: &plan.blocked,
            existing_owned: plan.existing_owned,
            counts: plan.counts(),
            held_back: plan.held_back,
            counts_by_tag: self.by_tag(),
            ops: plan
                .ops
                .iter()
                .map(|op| JsonOp {
                    kind: op.kind(),
                    index: op.index,
                    before: op.before.as_ref(),
                    after: op.after.as_ref(),
                })
                .collect(),
            foreign_conflicts: &plan.foreign_conflicts,
            rejected: self
                .rejected
                .iter()
                .map(|r| JsonRejected {
                    item: &r.item,
                    reason: &r.reason,
                })
                .collect(),
            conflicts: self.conflicts,
        };
        // Serialising plain structs of strings and numbers cannot fail.
        serde_json::to_string_pretty(&json).unwrap_or_default()
    }
}

impl fmt::Display for PlanReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = self.plan;
        let counts = plan.counts();
        let unchanged = plan
            .existing_owned
            .saturating_sub(counts.modifies + counts.deletes);
        writeln!(
            f,
            "plan {} ({}): {} to add, {} to modify, {} to delete; {} of {} owned rules unchanged",
            plan.checksum,
            match self.policy {
                Policy::Sync => "sync",
                Policy::UpsertOnly => "upsert-only",
                Policy::CreateOnly => "create-only",
            },
            counts.adds,
            counts.modifies,
            counts.deletes,
            unchanged,
            plan.existing_owned
        )?;
        if plan.held_back.total() > 0 {
            let held = plan.held_back;
            writeln!(
                f,
                "held back by policy: {} modifies, {} deletes",
                held.modifies, held.deletes
            )?;
        }
        for reason in &plan.blocked {
            writeln!(f, "BLOCKED: {reason}")?;
        }
        if plan.is_blocked() {
            writeln!(
                f,
                "nothing will be written; to apply exactly this plan: dialsync apply --force --checksum {}",
                plan.checksum
            )?;
        }
        for (tag, c) in self.by_tag() {
            writeln!(f, "  {tag}: +{} ~{} -{}", c.adds, c.modifies, c.deletes)?;
        }
        for conflict in &plan.foreign_conflicts {
            writeln!(
                f,
                "foreign conflict: {} is wanted, but rule {} ({:?}, {}) has that prefix; not applied",
                conflict.desired, conflict.foreign_index, conflict.foreign_name, conflict.foreign_tag
            )?;
        }
        for conflict in self.conflicts {
            writeln!(f, "conflict: {conflict}")?;
        }
        for rejected in self.rejected {
            writeln!(f, "rejected: {rejected}")?;
        }
        for op in &plan.ops {
            match (&op.before, &op.after) {
                (None, Some(after)) => writeln!(f, "  add    {:>6}  {after}", op.index)?,
                (Some(before), None) => writeln!(f, "  delete {:>6}  {before}", op.index)?,
                (Some(before), Some(after)) => {
                    writeln!(f, "  modify {:>6}  {before}  =>  {after}", op.index)?
                }
                (None, None) => {}
            }
        }
        Ok(())
    }
}

/// An actual rule the plan may change: one of ours, or a foreign one being adopted. Borrowed:
/// a million of them are compared each cycle and only the few that change are copied into ops.
#[derive(Clone, Copy, Debug)]
struct Candidate<'a> {
    rule: &'a DialPlanRule,
    /// A foreign rule taken over (`adopt_foreign`): even unchanged it needs a write, for its Name.
    adopted: bool,
}

impl Candidate<'_> {
    fn route(&self) -> Route {
        Route {
            prefix: self.rule.prefix.clone(),
            tag: self.rule.tag.clone(),
        }
    }
}

/// Plans the change from `actual` (every rule of the dial plan, owned or not) to `desired`
/// (the compiled rules, in canonical order). `unreadable` are the dial plan's rows dialsync
/// cannot read: their indexes are as taken as any rule's. `emptied_sources` names sources
/// that returned nothing while their last snapshot had entries (and may not: `allow_empty`
/// unset).
pub fn plan(
    desired: &[Route],
    actual: &[DialPlanRule],
    unreadable: &[UnreadableRow],
    emptied_sources: &[String],
    settings: &PlanSettings,
) -> Plan {
    let mut owned: Vec<Candidate> = Vec::new();
    let mut foreign: HashMap<&Pattern, &DialPlanRule> = HashMap::new();
    for rule in actual {
        if rule.name == settings.rule_name {
            owned.push(Candidate {
                rule,
                adopted: false,
            });
        } else {
            // The lowest index, as the SBC would pick among equal prefixes.
            foreign
                .entry(&rule.prefix)
                .and_modify(|kept| {
                    if rule.index < kept.index {
                        *kept = rule
                    }
                })
                .or_insert(rule);
        }
    }
    let existing_owned = owned.len();
    // Every row not ours counts against the capacity, whether dialsync can read it or not.
    let foreign_count = actual.len() - existing_owned + unreadable.len();

    // Desired rules colliding with foreign ones: reported, or adopted.
    let mut wanted: Vec<&Route> = Vec::with_capacity(desired.len());
    let mut foreign_conflicts = Vec::new();
    let mut seen: HashSet<&Route> = HashSet::with_capacity(desired.len());
    for route in desired {
        if !seen.insert(route) {
            continue;
        }
        match foreign.get(&route.prefix) {
            Some(rule) if settings.adopt_foreign => {
                owned.push(Candidate {
                    rule,
                    adopted: true,
                });
                wanted.push(route);
            }
            Some(rule) => foreign_conflicts.push(ForeignConflict {
                desired: route.clone(),
                foreign_index: rule.index,
                foreign_name: rule.name.clone(),
                foreign_tag: rule.tag.clone(),
            }),
            None => wanted.push(route),
        }
    }
    owned.sort_by_key(|c| c.rule.index);
    let adopted: BTreeSet<u32> = owned
        .iter()
        .filter(|c| c.adopted)
        .map(|c| c.rule.index)
        .collect();

    let diff = pair_up(&wanted, owned);
    let (mut adds, mut modifies, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    let mut held_back = OpCounts::default();
    for change in diff {
        match (change, settings.policy) {
            (Change::Add(route), _) => adds.push(route),
            (Change::Rename(index, route), Policy::Sync | Policy::UpsertOnly) => {
                modifies.push(modify(index, route.clone(), route))
            }
            (
                Change::Modify {
                    index, from, to, ..
                },
                Policy::Sync,
            ) => modifies.push(modify(index, from, to)),
            (
                Change::Modify {
                    index,
                    from,
                    to,
                    reuse: false,
                },
                Policy::UpsertOnly,
            ) => modifies.push(modify(index, from, to)),
            // Reusing a stale rule's index deletes its route: under a policy that never
            // deletes, the stale rule stays and the desired one is added beside it.
            (
                Change::Modify {
                    to, reuse: true, ..
                },
                Policy::UpsertOnly | Policy::CreateOnly,
            ) => adds.push(to),
            (Change::Modify { .. } | Change::Rename(..), _) => held_back.modifies += 1,
            (Change::Delete(index, route), Policy::Sync) => deletes.push(Op {
                index,
                before: Some(route),
                after: None,
            }),
            (Change::Delete(..), _) => held_back.deletes += 1,
        }
    }

    // Adds go to indexes no row holds: an unreadable row is someone's, whatever it says.
    let mut used: BTreeSet<u32> = actual
        .iter()
        .map(|r| r.index)
        .chain(unreadable.iter().map(|row| row.index))
        .collect();
    let adds: Vec<Op> = allocate(adds, &mut used);
    let ops = order(adds, modifies, deletes, &adopted, &mut used);
    let counts = OpCounts::of(&ops);
    let blocked = gate(
        counts,
        existing_owned,
        foreign_count,
        emptied_sources,
        settings,
    );
    let checksum = checksum(&ops);
    Plan {
        ops,
        held_back,
        foreign_conflicts,
        existing_owned,
        blocked,
        checksum,
    }
}

fn modify(index: u32, from: Route, to: Route) -> Op {
    Op {
        index,
        before: Some(from),
        after: Some(to),
    }
}

/// One difference between desired and actual, before policy.
enum Change {
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
fn pair_up(wanted: &[&Route], owned: Vec<Candidate>) -> Vec<Change> {
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

/// Gives each added rule the lowest index no rule of the dial plan uses (and marks it used).
/// Indexes freed by this plan's deletes are not reused: adds run before deletes.
fn allocate(routes: Vec<Route>, used: &mut BTreeSet<u32>) -> Vec<Op> {
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
fn span_keys(prefix: &Pattern) -> Vec<(u64, u64)> {
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
fn order(
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
                return sequence
                    .into_iter()
                    .filter_map(|i| slots[i].take())
                    .collect();
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

/// The safety gate of DESIGN.md §6: every reason that applies, so the operator sees them all.
fn gate(
    counts: OpCounts,
    existing: usize,
    foreign: usize,
    emptied_sources: &[String],
    settings: &PlanSettings,
) -> Vec<BlockReason> {
    let mut blocked = Vec::new();
    let safety = settings.safety;
    if existing >= safety.min_existing {
        if counts.deletes as f64 > safety.max_delete_fraction * existing as f64 {
            blocked.push(BlockReason::TooManyDeletes {
                deletes: counts.deletes,
                existing,
                max_fraction: safety.max_delete_fraction,
            });
        }
        if counts.modifies as f64 > safety.max_update_fraction * existing as f64 {
            blocked.push(BlockReason::TooManyModifies {
                modifies: counts.modifies,
                existing,
                max_fraction: safety.max_update_fraction,
            });
        }
    }
    if !emptied_sources.is_empty() {
        blocked.push(BlockReason::EmptiedSources {
            sources: emptied_sources.to_vec(),
        });
    }
    let rules = foreign + existing + counts.adds - counts.deletes;
    if rules > settings.max_rules {
        blocked.push(BlockReason::OverCapacity {
            rules,
            max_rules: settings.max_rules,
        });
    }
    blocked
}

/// SHA-256 over the ops in a canonical text form: one line per op, in order, fields separated by
/// tabs (which no prefix or tag may contain). Stable across runs and platforms.
pub fn checksum(ops: &[Op]) -> String {
    let mut hasher = Sha256::new();
    for op in ops {
        let field = |route: &Option<Route>| {
            route.as_ref().map_or((String::new(), String::new()), |r| {
                (r.prefix.to_string(), r.tag.to_string())
            })
        };
        let (before_prefix, before_tag) = field(&op.before);
        let (after_prefix, after_tag) = field(&op.after);
        hasher.update(
            format!(
                "{}\t{}\t{before_prefix}\t{before_tag}\t{after_prefix}\t{after_tag}\n",
                op.kind(),
                op.index
            )
            .as_bytes(),
        );
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The dial plan after `ops`: what applying the plan to `actual` yields. Added and modified
/// rules carry `rule_name`.
pub fn apply(actual: &[DialPlanRule], ops: &[Op], rule_name: &str) -> Vec<DialPlanRule> {
    let mut rules: BTreeMap<u32, DialPlanRule> =
        actual.iter().map(|r| (r.index, r.clone())).collect();
    for op in ops {
        match &op.after {
            Some(route) => {
                rules.insert(
                    op.index,
                    DialPlanRule {
                        index: op.index,
                        name: rule_name.to_string(),
                        prefix: route.prefix.clone(),
                        tag: route.tag.clone(),
                    },
                );
            }
            None => {
                rules.remove(&op.index);
            }
        }
    }
    rules.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialplan::compile::{compile, Encoding};
    use crate::dialplan::pattern::best_match;
    use crate::number::{Number, NumberRange, OpenPrefix};
    use crate::resolve::Mapping;
    use proptest::prelude::*;

    fn route(prefix: &str, tag: &str) -> Route {
        Route {
            prefix: Pattern::parse(prefix).unwrap(),
            tag: Tag::parse(tag, 64).unwrap(),
        }
    }

    fn rule(index: u32, name: &str, prefix: &str, tag: &str) -> DialPlanRule {
        let r = route(prefix, tag);
        DialPlanRule {
            index,
            name: name.into(),
            prefix: r.prefix,
            tag: r.tag,
        }
    }

    fn settings(policy: Policy) -> PlanSettings {
        PlanSettings {
            rule_name: "dialsync".into(),
            policy,
            adopt_foreign: false,
            safety: Safety::default(),
            max_rules: 1000,
        }
    }

    fn summary(plan: &Plan) -> Vec<String> {
        plan.ops
            .iter()
            .map(|op| {
                let show = |r: &Option<Route>| r.as_ref().map_or("-".into(), |r| r.to_string());
                format!(
                    "{} {} {} => {}",
                    op.kind(),
                    op.index,
                    show(&op.before),
                    show(&op.after)
                )
            })
            .collect()
    }

    #[test]
    fn unchanged_rules_cost_nothing() {
        let actual = [
            rule(0, "dialsync", "+3210#", "T=a"),
            rule(1, "other", "+33", "T=x"),
        ];
        let plan = plan(
            &[route("+3210#", "T=a")],
            &actual,
            &[],
            &[],
            &settings(Policy::Sync),
        );
        assert!(plan.ops.is_empty());
        assert!(!plan.is_blocked());
        assert_eq!(plan.existing_owned, 1);
    }

    #[test]
    fn changes_are_modified_in_place() {
        let actual = [
            rule(4, "dialsync", "+3210#", "T=a"),
            rule(7, "dialsync", "+322[0-4]#", "T=b"),
        ];
        let desired = [route("+3210#", "T=z"), route("+322[0-6]#", "T=b")];
        let plan = plan(&desired, &actual, &[], &[], &settings(Policy::Sync));
        assert_eq!(
            summary(&plan),
            [
                "modify 4 +3210# -> T=a => +3210# -> T=z",
                "modify 7 +322[0-4]# -> T=b => +322[0-6]# -> T=b"
            ]
        );
    }

    #[test]
    fn adds_take_free_indexes_and_never_collide_with_foreign_rules() {
        let actual = [
            rule(0, "dialsync", "+3210#", "T=a"),
            rule(1, "pbx", "+44", "T=x"),
            rule(3, "pbx", "+45", "T=x"),
        ];
        let desired = [
            route("+3210#", "T=a"),
            route("+3211#", "T=a"),
            route("+3212#", "T=a"),
        ];
        let plan = plan(&desired, &actual, &[], &[], &settings(Policy::Sync));
        assert_eq!(
            summary(&plan),
            ["add 2 - => +3211# -> T=a", "add 4 - => +3212# -> T=a"]
        );
    }

    #[test]
    fn rules_no_longer_wanted_are_deleted_and_foreign_ones_never() {
        let actual = [
            rule(0, "dialsync", "+3210#", "T=a"),
            rule(1, "pbx", "+3299#", "T=x"),
        ];
        let plan = plan(&[], &actual, &[], &[], &settings(Policy::Sync));
        assert_eq!(summary(&plan), ["delete 0 +3210# -> T=a => -"]);
    }

    #[test]
    fn a_foreign_rule_with_the_same_prefix_is_a_conflict_unless_adopted() {
        let actual = [rule(5, "pbx", "+3210#", "T=x")];
        let desired = [route("+3210#", "T=a")];
        let mut config = settings(Policy::Sync);
        let conflicted = plan(&desired, &actual, &[], &[], &config);
        assert!(conflicted.ops.is_empty());
        assert_eq!(conflicted.foreign_conflicts.len(), 1);
        assert_eq!(conflicted.foreign_conflicts[0].foreign_name, "pbx");
        config.adopt_foreign = true;
        let adopted = plan(&desired, &actual, &[], &[], &config);
        assert_eq!(
            summary(&adopted),
            ["modify 5 +3210# -> T=x => +3210# -> T=a"]
        );
        let same = plan(&[route("+3210#", "T=x")], &actual, &[], &[], &config);
        assert_eq!(summary(&same), ["modify 5 +3210# -> T=x => +3210# -> T=x"]);
        assert_eq!(apply(&actual, &same.ops, "dialsync")[0].name, "dialsync");
    }

    #[test]
    fn policies_filter_the_same_diff() {
        let actual = [
            rule(0, "dialsync", "+3210#", "T=a"),
            rule(1, "dialsync", "+3299#", "T=gone"),
        ];
        let desired = [route("+3210#", "T=b"), route("+3311#", "T=new")];
        let sync = plan(&desired, &actual, &[], &[], &settings(Policy::Sync));
        assert_eq!(
            sync.counts(),
            OpCounts {
                adds: 0,
                modifies: 2,
                deletes: 0
            }
        );
        let upsert = plan(&desired, &actual, &[], &[], &settings(Policy::UpsertOnly));
        assert_eq!(
            summary(&upsert),
            [
                "add 2 - => +3311# -> T=new",
                "modify 0 +3210# -> T=a => +3210# -> T=b"
            ]
        );
        let create = plan(&desired, &actual, &[], &[], &settings(Policy::CreateOnly));
        assert_eq!(summary(&create), ["add 2 - => +3311# -> T=new"]);
        assert_eq!(
            create.held_back,
            OpCounts {
                adds: 0,
                modifies: 1,
                deletes: 0
            }
        );
        let shrink = plan(&[], &actual, &[], &[], &settings(Policy::UpsertOnly));
        assert!(shrink.ops.is_empty());
        assert_eq!(shrink.held_back.deletes, 2);
    }

    #[test]
    fn the_gate_blocks_large_changes_emptied_sources_and_overflow() {
        let actual: Vec<DialPlanRule> = (0..20)
            .map(|i| rule(i, "dialsync", &format!("+32{:02}#", i + 10), "T=a"))
            .collect();
        let keep: Vec<Route> = (0..14)
            .map(|i| route(&format!("+32{:02}#", i + 10), "T=a"))
            .collect();
        let config = settings(Policy::Sync);
        // 6 of 20 deleted: exactly 0.3, allowed; 7 is more.
        assert!(!plan(&keep, &actual, &[], &[], &config).is_blocked());
        let blocked = plan(&keep[..13], &actual, &[], &[], &config);
        assert_eq!(
            blocked.blocked,
            [BlockReason::TooManyDeletes {
                deletes: 7,
                existing: 20,
                max_fraction: 0.3
            }]
        );
        assert_eq!(
            blocked.ops.len(),
            7,
            "a blocked plan still says what it would do"
        );
        // Below min_existing, anything goes.
        assert!(!plan(&[], &actual[..9], &[], &[], &config).is_blocked());
        let retag: Vec<Route> = (0..20)
            .map(|i| route(&format!("+32{:02}#", i + 10), "T=b"))
            .collect();
        assert!(matches!(
            plan(&retag, &actual, &[], &[], &config).blocked[..],
            [BlockReason::TooManyModifies { modifies: 20, .. }]
        ));
        let emptied = plan(&keep, &actual, &[], &["fusion".to_string()], &config);
        assert_eq!(
            emptied.blocked,
            [BlockReason::EmptiedSources {
                sources: vec!["fusion".into()]
            }]
        );
        let mut small = config.clone();
        small.max_rules = 19;
        let full: Vec<Route> = (0..20)
            .map(|i| route(&format!("+32{:02}#", i + 10), "T=a"))
            .collect();
        assert!(!plan(&full, &actual, &[], &[], &config).is_blocked());
        assert_eq!(
            plan(&full, &actual, &[], &[], &small).blocked,
            [BlockReason::OverCapacity {
                rules: 20,
                max_rules: 19
            }]
        );
    }

    #[test]
    fn checksum_is_stable_and_follows_the_ops() {
        let actual = [rule(0, "dialsync", "+3210#", "T=a")];
        let one = plan(
            &[route("+3211#", "T=a")],
            &actual,
            &[],
            &[],
            &settings(Policy::Sync),
        );
        let again = plan(
            &[route("+3211#", "T=a")],
            &actual,
            &[],
            &[],
            &settings(Policy::Sync),
        );
        assert_eq!(one.checksum, again.checksum);
        assert_eq!(one.checksum.len(), 64);
        // Pinned: a change of the canonical form must be deliberate (it invalidates quoted
        // checksums of blocked plans).
        assert_eq!(
            one.checksum,
            checksum(&[Op {
                index: 0,
                before: Some(route("+3210#", "T=a")),
                after: Some(route("+3211#", "T=a")),
            }])
        );
        assert_eq!(
            checksum(&[]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let other = plan(
            &[route("+3212#", "T=a")],
            &actual,
            &[],
            &[],
            &settings(Policy::Sync),
        );
        assert_ne!(one.checksum, other.checksum);
    }

    #[test]
    fn renderings_for_people_and_programs() {
        let actual: Vec<DialPlanRule> = (0..12)
            .map(|i| rule(i, "dialsync", &format!("+32{:02}#", i + 10), "T=a"))
            .chain([rule(40, "pbx", "+3399#", "T=x")])
            .collect();
        let mut desired: Vec<Route> = (0..7)
            .map(|i| route(&format!("+32{:02}#", i + 10), "T=a"))
            .collect();
        desired[0] = route("+3210#", "T=b");
        desired.push(route("+3399#", "T=a"));
        desired.push(route("+3400#", "T=c"));
        let plan = plan(&desired, &actual, &[], &[], &settings(Policy::Sync));
        let rejected = [Rejected {
            item: "line 7".into(),
            reason: "tag \"\": empty tag".into(),
        }];
        let conflicts = ["line 3 and line 9 both claim +3215".to_string()];
        let report = PlanReport {
            plan: &plan,
            policy: Policy::Sync,
            rejected: &rejected,
            conflicts: &conflicts,
        };
        let text = report.to_string();
        for expected in [
            format!(
                "plan {} (sync): 0 to add, 2 to modify, 4 to delete; 6 of 12 owned rules unchanged",
                plan.checksum
            ),
            "BLOCKED: would delete 4 of 12 owned rules, more than max_delete_fraction 0.3".into(),
            format!("dialsync apply --force --checksum {}", plan.checksum),
            "  T=a: +0 ~2 -4".into(),
            "  T=b: +0 ~1 -0".into(),
            "foreign conflict: +3399# -> T=a is wanted, but rule 40 (\"pbx\", T=x) has that prefix"
                .into(),
            "conflict: line 3 and line 9 both claim +3215".into(),
            "rejected: line 7: tag \"\": empty tag".into(),
            "  modify      0  +3210# -> T=a  =>  +3210# -> T=b".into(),
            "  delete     11  +3221# -> T=a".into(),
        ] {
            assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
        }
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["checksum"], plan.checksum.as_str());
        assert_eq!(json["blocked"], true);
        assert_eq!(json["blocks"][0]["reason"], "too-many-deletes");
        assert_eq!(json["counts"]["deletes"], 4);
        assert_eq!(json["counts_by_tag"]["T=b"]["modifies"], 1);
        assert_eq!(json["ops"][0]["kind"], "modify");
        assert_eq!(json["ops"][0]["after"]["prefix"], "+3210#");
        assert_eq!(json["foreign_conflicts"][0]["foreign_index"], 40);
        assert_eq!(json["rejected"][0]["item"], "line 7");
        assert_eq!(json["conflicts"][0], "line 3 and line 9 both claim +3215");
    }

    // ---- properties ----

    /// Routes from a small universe, so that desired and actual share many.
    fn universe_route() -> impl Strategy<Value = Route> {
        (
            prop::sample::select(vec!["+3210#", "+3211#", "+321[2-5]#", "+322x#"]),
            0u8..2,
        )
            .prop_map(|(prefix, tag)| route(prefix, &format!("T={tag}")))
    }

    /// The fewest add/modify/delete operations turning one multiset of routes into another,
    /// by breadth-first search over every sequence of operations.
    fn brute_force_minimum(actual: &[Route], desired: &[Route], universe: &[Route]) -> usize {
        let normal = |mut v: Vec<Route>| {
            v.sort();
            v
        };
        let goal = normal(desired.to_vec());
        let start = normal(actual.to_vec());
        let mut frontier = vec![start.clone()];
        let mut seen = BTreeSet::from([start]);
        for distance in 0.. {
            if frontier.contains(&goal) {
                return distance;
            }
            let mut next = Vec::new();
            for state in frontier {
                let mut moves: Vec<Vec<Route>> = Vec::new();
                for r in universe {
                    let mut added = state.clone();
                    added.push(r.clone());
                    moves.push(added);
                }
                for i in 0..state.len() {
                    let mut deleted = state.clone();
                    deleted.remove(i);
                    moves.push(deleted.clone());
                    for r in universe {
                        let mut modified = deleted.clone();
                        modified.push(r.clone());
                        moves.push(modified);
                    }
                }
                for m in moves {
                    let m = normal(m);
                    if seen.insert(m.clone()) {
                        next.push(m);
                    }
                }
            }
            frontier = next;
        }
        unreachable!()
    }

    proptest! {
        #[test]
        fn op_count_is_the_minimum(
            actual in prop::collection::vec(universe_route(), 0..4),
            desired in prop::collection::btree_set(universe_route(), 0..4),
        ) {
            let rules: Vec<DialPlanRule> = actual
                .iter()
                .enumerate()
                .map(|(i, r)| DialPlanRule {
                    index: i as u32 * 2,
                    name: "dialsync".into(),
                    prefix: r.prefix.clone(),
                    tag: r.tag.clone(),
                })
                .collect();
            let desired: Vec<Route> = desired.into_iter().collect();
            let plan = plan(&desired, &rules, &[], &[], &settings(Policy::Sync));
            let universe: Vec<Route> = ["+3210#", "+3211#", "+321[2-5]#", "+322x#"]
                .iter()
                .flat_map(|p| [route(p, "T=0"), route(p, "T=1")])
                .collect();
            prop_assert_eq!(plan.ops.len(), brute_force_minimum(&actual, &desired, &universe));
            // And it reaches the desired state.
            let after = apply(&rules, &plan.ops, "dialsync");
            let mut routes: Vec<Route> = after
                .iter()
                .map(|r| Route { prefix: r.prefix.clone(), tag: r.tag.clone() })
                .collect();
            routes.sort();
            prop_assert_eq!(routes, desired);
        }
    }

    /// A random mapping over the 3-digit numbers under +1 (+100..+199), with an occasional open
    /// prefix.
    fn mapping() -> impl Strategy<Value = Mapping> {
        let ranges = prop::collection::btree_map(0u64..100, (0u64..6, 0u32..3), 0..14);
        let prefixes = prop::collection::vec(
            (prop::sample::select(vec![1u64, 11, 12, 17]), 0u32..3),
            0..2,
        );
        (ranges, prefixes).prop_map(|(ranges, prefixes)| {
            let tags = (0..3)
                .map(|i| Tag::parse(&format!("T={i}"), 64).unwrap())
                .collect();
            let mut taken = 0u64;
            let mut pieces = Vec::new();
            for (start, (len, tag)) in ranges {
                let lo = (100 + start).max(taken);
                let hi = (lo + len).min(199);
                if lo > hi {
                    continue;
                }
                taken = hi + 1;
                let n = |v| Number::from_u64(v).unwrap();
                pieces.push((NumberRange::between(n(lo), n(hi)).unwrap(), tag));
            }
            let prefixes = prefixes
                .into_iter()
                .map(|(d, t)| (OpenPrefix::of(Number::from_u64(d).unwrap()), t))
                .collect();
            Mapping::new(tags, prefixes, pieces).unwrap()
        })
    }

    fn routes_of(mapping: &Mapping, encoding: Encoding) -> Vec<Route> {
        compile(mapping, encoding, 9)
            .into_iter()
            .map(|r| Route {
                prefix: r.prefix,
                tag: mapping.tag(r.tag).clone(),
            })
            .collect()
    }

    fn routed(rules: &[DialPlanRule], number: &str) -> Option<Tag> {
        best_match(rules.iter().map(|r| (r.index, &r.prefix, &r.tag)), number)
            .map(|(_, t)| t.clone())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Replaying any plan op by op, a number routed both before and after is at every step
        /// routed to its old or its new tag: never unrouted, never a third way. Foreign rules
        /// (a broad one and one that overlaps) stay and take part in best match.
        #[test]
        fn make_before_break(
            old in mapping(),
            new in mapping(),
            encoding in prop::sample::select(vec![Encoding::Ranges, Encoding::Prefixes, Encoding::Numbers]),
            foreign in any::<bool>(),
        ) {
            let mut actual: Vec<DialPlanRule> = routes_of(&old, encoding)
                .into_iter()
                .enumerate()
                .map(|(i, r)| DialPlanRule { index: i as u32 + 4, name: "dialsync".into(), prefix: r.prefix, tag: r.tag })
                .collect();
            if foreign {
                // A broad PBX rule, one that overlaps, and Live Platform's own per-number rule
                // (no `#`, a bare FQDN for a tag), which beats dialsync's ranges at best match.
                actual.push(rule(0, "pbx", "+1", "T=pbx"));
                actual.push(rule(1, "pbx", "+15x#", "T=pbx"));
                actual.push(DialPlanRule::read(2, "LivePlatform", "+123", "sandbox1.audiocodes.be").unwrap());
                actual.push(DialPlanRule::read(3, "GSBFZUBGHWOFI", "+1[80-89]", "sbc01.teams.contoso.com").unwrap());
            }
            let desired = routes_of(&new, encoding);
            let mut config = settings(Policy::Sync);
            config.adopt_foreign = false;
            let plan = plan(&desired, &actual, &[], &[], &config);
            let end = apply(&actual, &plan.ops, "dialsync");
            let numbers: Vec<String> = (10..200u64).chain(1000..1010).map(|v| format!("+{v}")).collect();
            let before: Vec<Option<Tag>> = numbers.iter().map(|n| routed(&actual, n)).collect();
            let after: Vec<Option<Tag>> = numbers.iter().map(|n| routed(&end, n)).collect();
            let mut state = actual.clone();
            for (step, op) in plan.ops.iter().enumerate() {
                state = apply(&state, std::slice::from_ref(op), "dialsync");
                for (i, number) in numbers.iter().enumerate() {
                    if let (Some(b), Some(a)) = (&before[i], &after[i]) {
                        let now = routed(&state, number);
                        prop_assert!(
                            now.as_ref() == Some(b) || now.as_ref() == Some(a),
                            "{} after step {} ({:?}): {:?}, before {} after {}\nplan {:#?}",
                            number, step, op, now, b, a, summary(&plan)
                        );
                    }
                }
            }
            // The owned rules at the end are exactly the desired ones (minus foreign conflicts).
            let mut owned: Vec<Route> = end
                .iter()
                .filter(|r| r.name == "dialsync")
                .map(|r| Route { prefix: r.prefix.clone(), tag: r.tag.clone() })
                .collect();
            owned.sort();
            let conflicted: BTreeSet<&Route> = plan.foreign_conflicts.iter().map(|c| &c.desired).collect();
            let mut wanted: Vec<Route> = desired.iter().filter(|r| !conflicted.contains(r)).cloned().collect();
            wanted.sort();
            prop_assert_eq!(owned, wanted);
            // And every foreign rule is where it was, as it was.
            let foreign_after: Vec<&DialPlanRule> = end.iter().filter(|r| r.name != "dialsync").collect();
            let foreign_before: Vec<&DialPlanRule> = actual.iter().filter(|r| r.name != "dialsync").collect();
            prop_assert_eq!(foreign_after, foreign_before);
        }
    }

    /// What a dial plan in the field may hold at an index.
    #[derive(Clone, Debug)]
    enum Row {
        Owned(Route),
        Foreign(DialPlanRule),
        Unreadable,
    }

    /// Rows of every shape the field holds, at random indexes: dialsync's own (some stale),
    /// foreign rules of Live Platform's, PBXs' and hand-made shapes (tags as the device holds
    /// them), and rows dialsync cannot read.
    fn field_rows() -> impl Strategy<Value = BTreeMap<u32, Row>> {
        let owned = (0u64..100, any::<bool>(), 0u32..3).prop_map(|(n, tens, tag)| {
            let prefix = if tens {
                format!("+1{}x#", n / 10)
            } else {
                format!("+1{n:02}#")
            };
            Row::Owned(route(&prefix, &format!("T={tag}")))
        });
        let foreign = (
            prop::sample::select(vec![
                ("LivePlatform", "sandbox1.audiocodes.be"),
                ("GSBFZUBGHWOFI", "sbc01.teams.contoso.com"),
                ("pbx", "Trunk=pbx"),
                ("Site \"A\"", "Tag with spaces;;="),
                ("", ""),
            ]),
            prop::sample::select(vec![
                "+123",
                "+1",
                "+15x#",
                "+1[80-89]",
                "+1[100-199]#",
                "*",
                "+10",
            ]),
        )
            .prop_map(|((name, tag), prefix)| {
                Row::Foreign(DialPlanRule::read(0, name, prefix, tag).unwrap())
            });
        let row = prop_oneof![3 => owned, 2 => foreign, 1 => Just(Row::Unreadable)];
        prop::collection::btree_map(0u32..40, row, 0..25)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The invariant of DESIGN.md §4, over random dial plans holding dialsync's, foreign
        /// and unreadable rows at random indexes, random desired sets, every policy and every
        /// encoding: no op targets an index a foreign or unreadable row holds (unless it adopts
        /// a foreign rule, keeping its prefix, with `adopt_foreign`), every op that replaces a
        /// rule targets one of dialsync's, the guard agrees, and after the plan every foreign
        /// rule is still there, unchanged.
        #[test]
        fn no_op_writes_a_row_dialsync_does_not_own(
            rows in field_rows(),
            new in mapping(),
            encoding in prop::sample::select(vec![Encoding::Ranges, Encoding::Prefixes, Encoding::Numbers]),
            policy in prop::sample::select(vec![Policy::Sync, Policy::UpsertOnly, Policy::CreateOnly]),
            adopt_foreign in any::<bool>(),
        ) {
            let mut actual = Vec::new();
            let mut unreadable = Vec::new();
            for (&index, row) in &rows {
                match row {
                    Row::Owned(route) => actual.push(DialPlanRule {
                        index,
                        name: "dialsync".into(),
                        prefix: route.prefix.clone(),
                        tag: route.tag.clone(),
                    }),
                    Row::Foreign(rule) => actual.push(DialPlanRule { index, ..rule.clone() }),
                    Row::Unreadable => unreadable.push(UnreadableRow::new(index, "odd", "cannot be read")),
                }
            }
            let desired = routes_of(&new, encoding);
            let mut config = settings(policy);
            config.adopt_foreign = adopt_foreign;
            config.max_rules = usize::MAX;
            let plan = plan(&desired, &actual, &unreadable, &[], &config);
            for op in &plan.ops {
                match rows.get(&op.index) {
                    None => prop_assert!(op.before.is_none(), "{:?} replaces nothing", op),
                    Some(Row::Owned(_)) => {}
                    Some(Row::Unreadable) => prop_assert!(false, "{:?} writes an unreadable row", op),
                    Some(Row::Foreign(rule)) => {
                        let keeps_prefix = op.after.as_ref().is_some_and(|a| a.prefix == rule.prefix);
                        prop_assert!(adopt_foreign && keeps_prefix, "{:?} writes foreign {:?}", op, rule);
                    }
                }
            }
            prop_assert_eq!(
                crate::ownership::check(&plan.ops, &actual, &unreadable, "dialsync", adopt_foreign),
                Ok(())
            );
            let end = apply(&actual, &plan.ops, "dialsync");
            for (&index, row) in &rows {
                let now = end.iter().find(|r| r.index == index);
                match row {
                    Row::Foreign(rule) if !adopt_foreign => {
                        prop_assert_eq!(now, Some(&DialPlanRule { index, ..rule.clone() }));
                    }
                    Row::Unreadable => prop_assert!(now.is_none(), "index {} was written", index),
                    _ => {}
                }
            }
        }
    }
}
