//! The dial plan as a sink reads it from its target: every row, those dialsync can read as
//! rules (owned and foreign alike) and those it cannot, plus what the target says about
//! writing to it now. The planner plans from it; the applier guards and verifies against it.

use crate::dialplan::rule::{DialPlanRule, UnreadableRow};
use crate::net::answer_digest::{AnswerDigest, AnswerHasher};
use crate::plan::ownership::{self, OwnershipBreach};
use crate::plan::Plan;

/// `OCDialPlan` as read from the SBC, or the Live Platform dial plan that stands for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceDialPlan {
    /// The dial plan's index on the SBC (0 for Live Platform, which has none).
    pub plan_index: u32,
    /// Every row dialsync can read as a rule, owned or foreign, in index order.
    pub rules: Vec<DialPlanRule>,
    /// Rows dialsync cannot read, in index order: their indexes are taken all the same.
    pub unreadable: Vec<UnreadableRow>,
    /// The SBC's `upgradeStatus` while a firmware upgrade is under way: nothing is written
    /// then.
    pub upgrading: Option<String>,
    /// The running configuration differs from flash.
    pub save_needed: bool,
    /// The digest of the rules and unreadable rows read ([`dial_plan_digest`]): equal digests, the
    /// same dial plan as far as any plan or audit can tell.
    pub answer: AnswerDigest,
}

impl DeviceDialPlan {
    /// Plan `plan_index` from its rows, each read as a rule or set aside as unreadable, sorted
    /// by index.
    pub fn of_rows(
        plan_index: u32,
        rows: impl IntoIterator<Item = Result<DialPlanRule, UnreadableRow>>,
    ) -> DeviceDialPlan {
        let rows = rows.into_iter();
        // Sized once: growing by doubling left up to half the vector unused at 100k rules.
        let mut rules = Vec::with_capacity(rows.size_hint().0);
        let mut unreadable = Vec::new();
        for row in rows {
            match row {
                Ok(rule) => rules.push(rule),
                Err(row) => unreadable.push(row),
            }
        }
        rules.sort_by_key(|r| r.index);
        unreadable.sort_by_key(|r| r.index);
        DeviceDialPlan {
            answer: dial_plan_digest(&rules, &unreadable),
            plan_index,
            rules,
            unreadable,
            upgrading: None,
            save_needed: false,
        }
    }

    /// Refuses `plan` unless every op writes a row dialsync owned in this read, or an index no
    /// row held ([`ownership::check`]). The applier calls it just before it sends anything.
    pub fn guard(
        &self,
        plan: &Plan,
        rule_name: &str,
        adopt_foreign: bool,
    ) -> Result<(), OwnershipBreach> {
        ownership::check(
            &plan.ops,
            &self.rules,
            &self.unreadable,
            rule_name,
            adopt_foreign,
        )
    }
}

/// The digest of a dial plan: every field of every rule and unreadable row a plan or an audit
/// reads, in index order. Of what was read, for a cycle to know it read the same dial plan as
/// the last one; of what a cycle left after applying, for the next cycle to know it reads
/// what was written.
pub fn dial_plan_digest(rules: &[DialPlanRule], unreadable: &[UnreadableRow]) -> AnswerDigest {
    let mut plan = AnswerHasher::default();
    plan.start("rules", 0);
    for rule in rules {
        let DialPlanRule {
            index,
            name,
            prefix,
            tag,
        } = rule;
        plan.field(&index.to_le_bytes());
        plan.field(name.as_bytes());
        plan.field(prefix.as_str().as_bytes());
        plan.field(tag.as_str().as_bytes());
    }
    plan.end();
    plan.start("unreadable", 0);
    for UnreadableRow { index, reason } in unreadable {
        plan.field(&index.to_le_bytes());
        plan.field(reason.as_bytes());
    }
    plan.end();
    plan.finish(b"")
}
