//! Planning: the smallest list of dial-plan operations that turns the dial plan as read into
//! the desired rules, in an order that never unroutes a number, and the judgment of whether
//! it is safe to apply at all.
//!
//! Pure: rules in, a [`Plan`] out. The sinks apply it (after [`ownership::check`] passes); the
//! store journals it. The steps each have a file:
//! - [`pairing`]: which desired rule becomes which actual rule's modify (the fewest ops);
//! - [`order`]: make-before-break (and where an add goes);
//! - [`gate`]: the safety gate and capacity;
//! - [`checksum`]: what `apply --force --checksum` quotes;
//! - [`replay`]: the dial plan after a plan's ops;
//! - [`ownership`]: the one invariant every plan keeps, checked once more before sending.
//!
//! How a plan is shown to a person is the shell's business: `app::plan_report`.

mod checksum;
mod gate;
mod order;
pub mod ownership;
mod pairing;
mod replay;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::dialplan::pattern::Pattern;
use crate::dialplan::rule::{DialPlanRule, Tag, UnreadableRow};

pub use checksum::checksum;
pub use gate::BlockReason;
pub use replay::apply;

use gate::gate;
use order::{allocate, order};
use pairing::{pair_up, Candidate, Change};

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

/// How many ops of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
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
        if *rule.name == *settings.rule_name {
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
                foreign_name: rule.name.to_string(),
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
