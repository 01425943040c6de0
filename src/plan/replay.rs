//! The dial plan after a plan's ops: what the agent's mirror follows once the target confirms
//! them, and what the tests replay step by step.

use std::collections::BTreeMap;

use super::Op;
use crate::dialplan::rule::DialPlanRule;

/// The dial plan after `ops`: what applying the plan to `actual` yields. Added and modified
/// rules carry `rule_name`.
// `ops` by reference, one at a time: the cycle replays the ops the SBC confirmed, and a copy
// of them (100k at a first sync) only to pass them here was 9 MB of its peak.
pub fn apply<'o>(
    actual: &[DialPlanRule],
    ops: impl IntoIterator<Item = &'o Op>,
    rule_name: &str,
) -> Vec<DialPlanRule> {
    let mut rules: BTreeMap<u32, DialPlanRule> =
        actual.iter().map(|r| (r.index, r.clone())).collect();
    // One name for every rule written: a copy per rule was 3 MB of a 100k-rule first sync.
    let name: std::sync::Arc<str> = rule_name.into();
    for op in ops {
        match &op.after {
            Some(route) => {
                rules.insert(
                    op.index,
                    DialPlanRule {
                        index: op.index,
                        name: name.clone(),
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
