//! A cycle whose inputs are those of the last cycle that found nothing to change, byte for
//! byte, takes that cycle's findings rather than recomputing them.
//!
//! The design keeps every cycle level-triggered (DESIGN.md §1): each one fetches every
//! source and reads the whole dial plan. What follows the reads (resolve, compile, plan,
//! audit) is a pure function of what they answered, the configuration and the program, so
//! when all of those are the same as in a steady cycle, the result is too: the same empty
//! plan, the same conflicts, the same audit. On an unchanged 100k-rule cycle that work was
//! most of the CPU. The plan that results is still applied (an empty plan: the device is
//! still checked writable and saved if it needs it), the mirror still refreshed, the
//! snapshots still stamped.
//!
//! The inputs are two digests, kept apart so that the sources can be judged before the SBC
//! is read: when they already differ the cycle resolves before the read, as it always did,
//! and never holds the entries and the device's plan at once.
//! - the sources': each source's answer digest, keyed by the program's version and the
//!   config's digest (a new version or an edited file never takes an old result);
//! - the SBC's: the digest of the dial plan's rows as read.

use serde::{Deserialize, Serialize};

use super::audit::CycleAudit;
use crate::audit::AuditCounts;
use crate::dialplan::pattern::Pattern;
use crate::dialplan::rule::Tag;
use crate::net::answer_digest::{AnswerDigest, AnswerHasher};
use crate::plan::{ForeignConflict, OpCounts, Plan, Route};
use crate::store::SteadyState;

/// What decides what the sources' answers decode into, besides their bytes.
pub(super) fn context(config_digest: &str) -> Vec<u8> {
    format!(
        "dialsync {} config {config_digest}",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

/// The two digests a cycle's outcome depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Inputs {
    pub sources: AnswerDigest,
    pub device: AnswerDigest,
}

/// The digest of every source's answer digest, in config order (`None` when a source has
/// none: it failed, or answered in a way that is not digested).
pub(super) fn sources_digest<'a>(
    answers: impl IntoIterator<Item = Option<&'a AnswerDigest>>,
    context: &[u8],
) -> Option<AnswerDigest> {
    let mut all = AnswerHasher::default();
    for answer in answers {
        all.field(answer?.as_str().as_bytes());
    }
    Some(all.finish(context))
}

/// What a steady cycle found, as the state database keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Findings {
    pub conflicts: Vec<(String, String)>,
    pub desired_rules: usize,
    pub held_back: OpCounts,
    foreign_conflicts: Vec<StoredForeignConflict>,
    pub existing_owned: usize,
    pub checksum: String,
    pub audit: StoredAudit,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredForeignConflict {
    prefix: String,
    tag: String,
    foreign_index: u32,
    foreign_name: String,
    foreign_tag: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct StoredAudit {
    counts: AuditCounts,
    findings: u64,
    examples: Vec<String>,
    duration_ms: u64,
}

impl Findings {
    /// What a cycle that planned nothing found, if it is steady: its plan has no op and is not
    /// blocked, and it audited the dial plan it left.
    pub fn of(
        conflicts: &[(String, String)],
        desired_rules: usize,
        plan: &Plan,
        audit: &CycleAudit,
    ) -> Option<Findings> {
        if !plan.ops.is_empty() || plan.is_blocked() {
            return None;
        }
        Some(Findings {
            conflicts: conflicts.to_vec(),
            desired_rules,
            held_back: plan.held_back,
            foreign_conflicts: plan
                .foreign_conflicts
                .iter()
                .map(|c| StoredForeignConflict {
                    prefix: c.desired.prefix.as_str().to_string(),
                    tag: c.desired.tag.as_str().to_string(),
                    foreign_index: c.foreign_index,
                    foreign_name: c.foreign_name.clone(),
                    foreign_tag: c.foreign_tag.as_str().to_string(),
                })
                .collect(),
            existing_owned: plan.existing_owned,
            checksum: plan.checksum.clone(),
            audit: StoredAudit {
                counts: audit.counts,
                findings: audit.findings,
                examples: audit.examples.clone(),
                duration_ms: audit.duration_ms,
            },
        })
    }

    /// The steady state to record: these findings under `inputs`.
    pub fn record(&self, inputs: &Inputs) -> Option<SteadyState> {
        Some(SteadyState {
            inputs: format!("{} {}", inputs.sources.as_str(), inputs.device.as_str()),
            findings: serde_json::to_string(self).ok()?,
        })
    }

    /// The findings recorded under `inputs`, if `steady` is that record and reads back whole
    /// (anything else is a reason to compute, never an error).
    pub fn recorded(steady: &SteadyState, inputs: &Inputs) -> Option<Findings> {
        let (sources, device) = steady.inputs.split_once(' ')?;
        if sources != inputs.sources.as_str() || device != inputs.device.as_str() {
            return None;
        }
        let findings: Findings = serde_json::from_str(&steady.findings).ok()?;
        // Checked here rather than when the plan is rebuilt, so a record that does not read
        // back is a computed cycle, not a failed one.
        findings.foreign_conflicts().ok()?;
        Some(findings)
    }

    /// How many rules `steady`'s cycle wanted: the same sources want as many.
    pub fn recorded_desired_rules(steady: &SteadyState) -> usize {
        serde_json::from_str::<Findings>(&steady.findings).map_or(0, |f| f.desired_rules)
    }

    /// Whether `steady` was recorded for sources answering `sources`: the SBC is then read
    /// before resolving, to see whether the whole cycle is steady.
    pub fn sources_match(steady: &SteadyState, sources: &AnswerDigest) -> bool {
        steady
            .inputs
            .split_once(' ')
            .is_some_and(|(recorded, _)| recorded == sources.as_str())
    }

    /// The plan the steady cycle made: no op.
    pub fn plan(&self) -> Plan {
        Plan {
            ops: Vec::new(),
            held_back: self.held_back,
            foreign_conflicts: self.foreign_conflicts().unwrap_or_default(),
            existing_owned: self.existing_owned,
            blocked: Vec::new(),
            checksum: self.checksum.clone(),
        }
    }

    pub fn audit(&self) -> CycleAudit {
        CycleAudit {
            counts: self.audit.counts,
            findings: self.audit.findings,
            examples: self.audit.examples.clone(),
            duration_ms: self.audit.duration_ms,
        }
    }

    fn foreign_conflicts(&self) -> Result<Vec<ForeignConflict>, String> {
        self.foreign_conflicts
            .iter()
            .map(|c| {
                let tag = |text: &str| Tag::parse(text, usize::MAX).map_err(|e| e.to_string());
                Ok(ForeignConflict {
                    desired: Route {
                        prefix: Pattern::parse(&c.prefix).map_err(|e| e.to_string())?,
                        tag: tag(&c.tag)?,
                    },
                    foreign_index: c.foreign_index,
                    foreign_name: c.foreign_name.clone(),
                    foreign_tag: tag(&c.foreign_tag)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::BlockReason;

    fn digest(text: &str) -> AnswerDigest {
        let mut read = AnswerHasher::default();
        read.answer(text, 200, b"");
        read.finish(b"")
    }

    fn plan() -> Plan {
        let tag = |t: &str| Tag::parse(t, 64).expect("tag");
        Plan {
            ops: Vec::new(),
            held_back: OpCounts {
                adds: 0,
                modifies: 1,
                deletes: 2,
            },
            foreign_conflicts: vec![ForeignConflict {
                desired: Route {
                    prefix: Pattern::parse("+3226120007").expect("pattern"),
                    tag: tag("Trunk=acme"),
                },
                foreign_index: 1,
                foreign_name: "LP-acme".into(),
                foreign_tag: tag("Trunk=teams;Context=x"),
            }],
            existing_owned: 5,
            blocked: Vec::new(),
            checksum: "c0ffee".into(),
        }
    }

    fn audit() -> CycleAudit {
        CycleAudit {
            counts: AuditCounts {
                routed: 10,
                shadowed: 1,
                ..AuditCounts::default()
            },
            findings: 1,
            examples: vec!["+3226120007 is shadowed".into()],
            duration_ms: 3,
        }
    }

    #[test]
    fn findings_read_back_as_they_were_found_and_only_for_their_inputs() {
        let conflicts = vec![("static".to_string(), "line 2 wins".to_string())];
        let inputs = Inputs {
            sources: digest("sources"),
            device: digest("device"),
        };
        let found = Findings::of(&conflicts, 7, &plan(), &audit()).expect("steady");
        let steady = found.record(&inputs).expect("serialized");
        let back = Findings::recorded(&steady, &inputs).expect("same inputs");
        assert_eq!(back.plan(), plan());
        assert_eq!((back.conflicts, back.desired_rules), (conflicts, 7));
        let audit = back.audit.clone();
        assert_eq!(
            (audit.counts, audit.findings, audit.examples),
            (self::audit().counts, 1, self::audit().examples)
        );
        assert_eq!(Findings::recorded_desired_rules(&steady), 7);
        assert!(Findings::sources_match(&steady, &inputs.sources));

        let other = |sources: &str, device: &str| Inputs {
            sources: digest(sources),
            device: digest(device),
        };
        assert!(Findings::recorded(&steady, &other("sources", "device2")).is_none());
        assert!(Findings::recorded(&steady, &other("sources2", "device")).is_none());
        assert!(!Findings::sources_match(&steady, &digest("sources2")));
        let damaged = SteadyState {
            findings: steady.findings.replace("+3226120007", "+32[9"),
            ..steady.clone()
        };
        assert!(Findings::recorded(&damaged, &inputs).is_none());
    }

    #[test]
    fn only_a_plan_without_ops_or_blocks_is_steady() {
        let mut with_op = plan();
        with_op.ops = crate::plan::plan(
            &[Route {
                prefix: Pattern::parse("+3226").expect("pattern"),
                tag: Tag::parse("Trunk=a", 64).expect("tag"),
            }],
            &[],
            &[],
            &[],
            &crate::plan::PlanSettings {
                rule_name: "dialsync".into(),
                policy: crate::plan::Policy::Sync,
                adopt_foreign: false,
                safety: crate::plan::Safety::default(),
                max_rules: 100,
            },
        )
        .ops;
        assert_eq!(with_op.ops.len(), 1);
        assert!(Findings::of(&[], 1, &with_op, &audit()).is_none());
        let mut blocked = plan();
        blocked.blocked = vec![BlockReason::EmptiedSources {
            sources: vec!["fusion".into()],
        }];
        assert!(Findings::of(&[], 1, &blocked, &audit()).is_none());
        assert!(Findings::of(&[], 1, &plan(), &audit()).is_some());
    }

    #[test]
    fn the_sources_digest_needs_every_source_and_keeps_their_order() {
        let (a, b) = (digest("a"), digest("b"));
        let both = sources_digest([Some(&a), Some(&b)], b"ctx").expect("all answered");
        assert_ne!(
            Some(&both),
            sources_digest([Some(&b), Some(&a)], b"ctx").as_ref()
        );
        assert_ne!(
            Some(&both),
            sources_digest([Some(&a), Some(&b)], b"ctx2").as_ref()
        );
        assert_eq!(sources_digest([Some(&a), None], b"ctx"), None);
    }
}
