//! `dialsync audit` from the state database: the mirror (owned and foreign rules, as last
//! read) against the mapping the sources' last good snapshots resolve to.
//!
//! Like `lookup` and `status`, it reads nothing but the state database, so it answers while
//! the SBC or an upstream is down, and as a user who cannot read the secrets. The audit
//! itself is the pure [`crate::audit`]; this module loads its inputs and names what it found
//! in the words of the dial plan and the sources (rule names and prefixes, source items).

use std::collections::HashMap;

use serde::Serialize;

use crate::app::last_known::LastKnown;
use crate::audit::{self, Audit, Finding, Options, PlanRule, Verdict};
use crate::config::Config;
use crate::dialplan::pattern::Pattern;
use crate::dialplan::rule::Tag;
use crate::dialplan::rule_index::RuleIndexError;
use crate::error::{Classify, ErrorClass};
use crate::resolve::{resolve, Entry, Mapping, Resolution};
use crate::store::{MirrorRule, Store, StoreError};

/// Why the audit cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot index the mirrored dial plan: {0}")]
    RuleIndex(#[from] RuleIndexError),
}

impl Classify for AuditError {
    fn class(&self) -> ErrorClass {
        match self {
            AuditError::Store(e) => e.class(),
            AuditError::RuleIndex(e) => e.class(),
        }
    }
}

/// The audit of the state database, with what it needs to name its findings.
pub struct StateAudit {
    pub audit: Audit,
    /// The dial plan as last read.
    pub mirror: Vec<MirrorRule>,
    /// Rules mirrored, by dial-plan index (position in `mirror`).
    by_index: HashMap<u32, usize>,
    entries: Vec<Entry>,
    resolution: Resolution,
}

/// One finding as `--csv` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct FindingRow {
    pub verdict: &'static str,
    pub first: String,
    pub last: String,
    pub count: u64,
    pub rule_index: Option<u32>,
    pub rule_name: String,
    pub prefix: String,
    pub winning_tag: String,
    pub desired_tag: String,
    /// The configured source whose entry wants the first number, and its item.
    pub source: String,
    pub item: String,
}

/// Audits the mirror against the snapshots of the configured sources, in config order (the
/// order resolution ranks them by, as in a cycle).
pub fn audit_state(config: &Config, store: &Store) -> Result<StateAudit, AuditError> {
    let LastKnown { mirror, entries } = LastKnown::load(config, store)?;
    let resolution = resolve(&entries);
    let rules = plan_rules(
        mirror
            .iter()
            .map(|m| (m.rule.index, &m.rule.prefix, &m.rule.tag, m.owned)),
    );
    let index = audit::rule_index(&rules)?;
    let audit = audit::audit(&resolution.mapping, &rules, &index, Options::default());
    drop(rules);
    let by_index = mirror
        .iter()
        .enumerate()
        .map(|(at, m)| (m.rule.index, at))
        .collect();
    Ok(StateAudit {
        audit,
        mirror,
        by_index,
        entries,
        resolution,
    })
}

/// The dial plan's rules as the audit takes them.
pub(crate) fn plan_rules<'a>(
    rules: impl Iterator<Item = (u32, &'a Pattern, &'a Tag, bool)>,
) -> Vec<PlanRule<'a>> {
    rules
        .map(|(index, pattern, tag, owned)| PlanRule {
            index,
            pattern,
            tag,
            owned,
        })
        .collect()
}

impl StateAudit {
    pub fn mapping(&self) -> &Mapping {
        &self.resolution.mapping
    }

    /// The mirrored rule with dial-plan index `index`.
    pub fn rule(&self, index: u32) -> Option<&MirrorRule> {
        self.by_index.get(&index).map(|&at| &self.mirror[at])
    }

    /// A finding in words and columns.
    pub fn row(&self, finding: &Finding) -> FindingRow {
        let rule = finding.rule.and_then(|index| self.rule(index));
        let source = (finding.verdict != Verdict::Stray)
            .then(|| self.resolution.winner(finding.first))
            .flatten()
            .map(|at| &self.entries[at].provenance);
        FindingRow {
            verdict: finding.verdict.as_str(),
            first: finding.first.to_string(),
            last: finding.last.to_string(),
            count: finding.count,
            rule_index: finding.rule,
            rule_name: rule.map(|m| m.rule.name.to_string()).unwrap_or_default(),
            prefix: rule.map(|m| m.rule.prefix.to_string()).unwrap_or_default(),
            winning_tag: rule.map(|m| m.rule.tag.to_string()).unwrap_or_default(),
            desired_tag: finding
                .desired
                .map(|t| self.mapping().tag(t).to_string())
                .unwrap_or_default(),
            source: source.map(|p| p.source.to_string()).unwrap_or_default(),
            item: source.map(|p| p.item.to_string()).unwrap_or_default(),
        }
    }
}

/// A finding in one line, for a person: the numbers, who wins them and what was wanted.
/// `winner` is the winning rule (name, prefix, tag, owned).
pub fn describe_finding(
    finding: &Finding,
    winner: Option<(&str, &Pattern, &Tag, bool)>,
    desired: Option<&Tag>,
) -> String {
    let numbers = if finding.count == 1 {
        format!("{} (1 number)", finding.first)
    } else {
        format!(
            "{}..{} ({} numbers)",
            finding.first, finding.last, finding.count
        )
    };
    let rule = match (finding.rule, winner) {
        (Some(index), Some((name, prefix, tag, owned))) => format!(
            "rule {index} {prefix} -> {tag} ({}) wins",
            if owned {
                "dialsync's".to_string()
            } else {
                format!("foreign, named {name:?}")
            }
        ),
        (Some(index), None) => format!("rule {index} wins"),
        (None, _) if finding.verdict == Verdict::Unchecked => {
            "not checked: a rule kept aside by the index may win".to_string()
        }
        (None, _) => "no rule matches".to_string(),
    };
    match desired {
        Some(tag) => format!(
            "{} {numbers}: {rule}; {tag} wanted",
            finding.verdict.as_str()
        ),
        None => format!(
            "{} {numbers}: {rule}; no source assigns them",
            finding.verdict.as_str()
        ),
    }
}
