//! The audit after each cycle: the dial plan the cycle leaves (as read, or as read and then
//! applied) against the mapping it resolved, for `/status`, `/metrics` and `check`.
//!
//! The cycle already holds both, so nothing is read again from the SBC or the database. The
//! result is small on purpose (counts and a few examples in words): the mapping and the
//! rules are dropped with the cycle, and a report lives on in the published status.

use std::time::Instant;

use crate::app::audit::{describe_finding, plan_rules};
use crate::audit::{self, AuditCounts, Options};
use crate::dialplan::rule::DialPlanRule;
use crate::resolve::Mapping;

/// How many findings a cycle keeps as examples.
pub const AUDIT_EXAMPLES: usize = 5;

/// What the audit after a cycle found.
#[derive(Clone, Debug, Default)]
pub struct CycleAudit {
    pub counts: AuditCounts,
    /// All findings (see `crate::audit::Audit::findings_total`).
    pub findings: u64,
    /// The first [`AUDIT_EXAMPLES`] findings, in words.
    pub examples: Vec<String>,
    pub duration_ms: u64,
}

/// Audits `rules` (the whole dial plan; those named `rule_name` are dialsync's) against
/// `mapping`. `None` only if the rules cannot be indexed, which is logged: the audit is a
/// report and never stops a cycle.
pub(super) fn audit_cycle(
    mapping: &Mapping,
    rules: &[DialPlanRule],
    rule_name: &str,
) -> Option<CycleAudit> {
    let started = Instant::now();
    let plan = plan_rules(
        rules
            .iter()
            .map(|r| (r.index, &r.prefix, &r.tag, &*r.name == rule_name)),
    );
    let index = match audit::rule_index(&plan) {
        Ok(index) => index,
        Err(error) => {
            tracing::error!(%error, "cannot audit the dial plan");
            return None;
        }
    };
    let options = Options {
        max_findings: AUDIT_EXAMPLES,
        ..Options::default()
    };
    let found = audit::audit(mapping, &plan, &index, options);
    let examples = found
        .findings
        .iter()
        .map(|finding| {
            let winner = finding
                .rule
                .and_then(|index| rules.iter().find(|r| r.index == index))
                .map(|r| (&*r.name, &r.prefix, &r.tag, &*r.name == rule_name));
            describe_finding(finding, winner, finding.desired.map(|t| mapping.tag(t)))
        })
        .collect();
    let counts = found.counts;
    if counts.misrouted + counts.shadowed + counts.unrouted > 0 {
        tracing::warn!(
            misrouted = counts.misrouted,
            shadowed = counts.shadowed,
            unrouted = counts.unrouted,
            "numbers do not route to their tag on the dial plan (see `dialsync audit`)"
        );
    }
    Some(CycleAudit {
        counts,
        findings: found.findings_total,
        examples,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}
