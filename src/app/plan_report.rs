//! A plan as `dialsync plan` shows it, for a person or for a program.
//!
//! It lives in the shell, not in `plan`, because it also shows what the sources refused: the
//! planner itself never sees a source.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::plan::{BlockReason, ForeignConflict, OpCounts, OpKind, Plan, Policy, Route};
use crate::source::Rejected;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialplan::rule::DialPlanRule;
    use crate::plan::plan;
    use crate::plan::tests::{route, rule, settings};

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
}
