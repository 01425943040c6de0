//! What a cycle did and found, and how it is told: one line for STATUS= and the log, the
//! exit code of `sync`, and the record the state database keeps for `check`, `status` and
//! `history`.

use serde::Serialize;

use super::audit::CycleAudit;

use crate::dialplan::rule::UnreadableRow;
use crate::error::ErrorClass;
use crate::plan::{self, OpCounts, Plan, Policy};
use crate::sink::{ApplyReport, SettleReport};
use crate::source::Rejected;
use crate::store::{outcome, AuditRecord, CycleIssue, CycleRecord, IssueKind, PhaseTiming};

/// How a source fared this cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceState {
    /// Answered; its answer is used and saved as the new last good snapshot.
    Fresh,
    /// Failed; its last good snapshot stood in.
    Stale,
    /// Failed with no snapshot to stand in: deletes are held back this cycle.
    Failed,
    /// Answered with nothing while its last snapshot had entries: the plan is blocked.
    Emptied,
}

impl SourceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Fresh => "ok",
            SourceState::Stale => "stale",
            SourceState::Failed => "failed",
            SourceState::Emptied => "emptied",
        }
    }
}

/// One source's part in a cycle.
#[derive(Clone, Debug)]
pub struct SourceReport {
    pub name: String,
    pub kind: &'static str,
    pub state: SourceState,
    /// Entries it contributed to this cycle (from the answer or the snapshot).
    pub entries: usize,
    pub rejected: Vec<Rejected>,
    pub error: Option<String>,
    /// When it last answered well (seconds since the epoch).
    pub last_good_unix: Option<i64>,
    pub fetch_ms: u64,
}

/// How a cycle ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The SBC holds the desired plan (after applying what was needed).
    Converged,
    /// A dry run that found changes to make.
    Planned,
    /// The safety gate or the capacity limit stopped the plan; nothing was written.
    Blocked,
    /// Stopped on an error.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Converged => outcome::CONVERGED,
            Outcome::Planned => outcome::PLANNED,
            Outcome::Blocked => outcome::BLOCKED,
            Outcome::Failed => outcome::FAILED,
        }
    }
}

/// Why a cycle failed, and whether someone must act (fatal) or the next cycle may fare better.
#[derive(Clone, Debug)]
pub struct CycleError {
    pub message: String,
    pub class: ErrorClass,
}

/// Everything one cycle did and found.
#[derive(Debug)]
pub struct CycleReport {
    pub started_unix_ms: i64,
    pub finished_unix_ms: i64,
    pub outcome: Outcome,
    pub sources: Vec<SourceReport>,
    /// Partial overlaps settled by source order: (source of the winner, description).
    pub conflicts: Vec<(String, String)>,
    pub desired_rules: usize,
    /// Rules dialsync owns on the SBC after the cycle, and rules it does not own.
    pub owned_rules: usize,
    pub foreign_rules: usize,
    /// Rows of the dial plan dialsync could not read: their indexes stay taken, they are
    /// never written, and each cycle reports them until someone looks.
    pub unreadable_rows: Vec<UnreadableRow>,
    /// Whether this cycle read the dial plan (else the rule counts are the last known ones).
    pub sbc_read: bool,
    /// The policy the plan was made under (narrowed to upsert-only when a failed source had
    /// no snapshot).
    pub policy: Policy,
    pub plan: Option<Plan>,
    pub applied: Option<ApplyReport>,
    pub settled: Option<SettleReport>,
    pub error: Option<CycleError>,
    pub phases: Vec<PhaseTiming>,
    /// The audit of the dial plan the cycle left; `None` when it did not read the SBC (or
    /// the apply failed, leaving what the SBC holds unknown until the next read).
    pub audit: Option<CycleAudit>,
}

impl CycleReport {
    /// All rejected items, with their source.
    pub fn rejected(&self) -> impl Iterator<Item = (&str, &Rejected)> {
        self.sources
            .iter()
            .flat_map(|s| s.rejected.iter().map(move |r| (s.name.as_str(), r)))
    }

    pub fn rejected_count(&self) -> usize {
        self.sources.iter().map(|s| s.rejected.len()).sum()
    }

    /// Sources that failed this cycle.
    pub fn failed_sources(&self) -> impl Iterator<Item = &SourceReport> {
        self.sources
            .iter()
            .filter(|s| matches!(s.state, SourceState::Stale | SourceState::Failed))
    }

    /// The ops the cycle wrote (confirmed by the SBC), by kind.
    pub fn applied_counts(&self) -> OpCounts {
        match (&self.plan, &self.applied) {
            (Some(plan), Some(applied)) if applied.applied > 0 => {
                OpCounts::of(confirmed_ops(plan, applied))
            }
            _ => OpCounts::default(),
        }
    }

    /// `sync`'s exit code (DESIGN.md §7): 0 converged, 2 blocked, 1 error, including a source
    /// that failed and was replaced by its last good snapshot.
    pub fn sync_exit_code(&self) -> u8 {
        match self.outcome {
            Outcome::Failed => 1,
            _ if self.failed_sources().next().is_some() => 1,
            Outcome::Blocked => 2,
            Outcome::Converged | Outcome::Planned => 0,
        }
    }

    /// One line for systemd's STATUS= and the logs.
    pub fn summary(&self) -> String {
        let counts = self.plan.as_ref().map(Plan::counts).unwrap_or_default();
        let mut line = match self.outcome {
            Outcome::Converged if counts.total() == 0 => {
                format!("in sync: {} rules owned", self.owned_rules)
            }
            Outcome::Converged => {
                let done = self.applied_counts();
                format!(
                    "synced: {} added, {} modified, {} deleted; {} rules owned",
                    done.adds, done.modifies, done.deletes, self.owned_rules
                )
            }
            Outcome::Planned => format!(
                "dry run: would add {}, modify {}, delete {}",
                counts.adds, counts.modifies, counts.deletes
            ),
            Outcome::Blocked => format!(
                "BLOCKED: {} (checksum {})",
                self.plan
                    .as_ref()
                    .map(|p| {
                        p.blocked
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default(),
                self.plan.as_ref().map_or("-", |p| p.checksum.as_str())
            ),
            Outcome::Failed => format!(
                "FAILED: {}",
                self.error
                    .as_ref()
                    .map_or("unknown error", |e| e.message.as_str())
            ),
        };
        let failed: Vec<&str> = self.failed_sources().map(|s| s.name.as_str()).collect();
        if !failed.is_empty() {
            line.push_str(&format!("; sources failing: {}", failed.join(", ")));
        }
        let rejected = self.rejected_count();
        if rejected > 0 {
            line.push_str(&format!(
                "; {}",
                plural(rejected, "item rejected", "items rejected")
            ));
        }
        if !self.conflicts.is_empty() {
            line.push_str(&format!(
                "; {}",
                plural(self.conflicts.len(), "conflict", "conflicts")
            ));
        }
        line
    }

    /// The cycle as the state database keeps it.
    pub fn to_record(&self) -> CycleRecord {
        let counts = match self.outcome {
            // What a dry run or a blocked plan would have done is not what happened.
            Outcome::Converged | Outcome::Failed => self.applied_counts(),
            Outcome::Planned | Outcome::Blocked => OpCounts::default(),
        };
        let mut issues = Vec::new();
        for source in &self.sources {
            if let Some(error) = &source.error {
                issues.push(CycleIssue {
                    kind: IssueKind::Source,
                    source: Some(source.name.clone()),
                    item: source.state.as_str().to_string(),
                    detail: error.clone(),
                });
            }
        }
        if let Some(plan) = &self.plan {
            issues.extend(plan.blocked.iter().map(|reason| CycleIssue {
                kind: IssueKind::Blocked,
                source: None,
                item: "plan".into(),
                detail: reason.to_string(),
            }));
            issues.extend(plan.foreign_conflicts.iter().map(|c| CycleIssue {
                kind: IssueKind::Foreign,
                source: None,
                item: c.desired.prefix.to_string(),
                detail: format!(
                    "rule {} ({:?}, tag {}) is not ours; wanted tag {}",
                    c.foreign_index, c.foreign_name, c.foreign_tag, c.desired.tag
                ),
            }));
        }
        issues.extend(self.unreadable_rows.iter().map(|row| CycleIssue {
            kind: IssueKind::Unreadable,
            source: None,
            item: format!("index {}", row.index),
            detail: row.reason.clone(),
        }));
        if let Some(applied) = &self.applied {
            issues.extend(applied.quarantined.iter().map(|(op, reason)| CycleIssue {
                kind: IssueKind::Quarantined,
                source: None,
                item: format!("index {}", op.index),
                detail: reason.clone(),
            }));
        }
        issues.extend(self.conflicts.iter().map(|(source, text)| CycleIssue {
            kind: IssueKind::Conflict,
            source: Some(source.clone()),
            item: "overlap".into(),
            detail: text.clone(),
        }));
        issues.extend(self.rejected().map(|(source, r)| CycleIssue {
            kind: IssueKind::Rejected,
            source: Some(source.to_string()),
            item: r.item.clone(),
            detail: r.reason.clone(),
        }));
        CycleRecord {
            started_unix_ms: self.started_unix_ms,
            finished_unix_ms: self.finished_unix_ms,
            outcome: self.outcome.as_str().to_string(),
            adds: counts.adds as u64,
            modifies: counts.modifies as u64,
            deletes: counts.deletes as u64,
            rejected: self.rejected_count() as u64,
            conflicts: self.conflicts.len() as u64,
            phases: self.phases.clone(),
            plan_checksum: self.plan.as_ref().map(|p| p.checksum.clone()),
            error: self.error.as_ref().map(|e| e.message.clone()),
            fatal: self
                .error
                .as_ref()
                .is_some_and(|e| e.class == ErrorClass::Fatal),
            owned_rules: self.owned_rules as u64,
            source_failures: self.failed_sources().count() as u64,
            audit: self.audit.as_ref().map(|a| AuditRecord {
                routed: a.counts.routed,
                misrouted: a.counts.misrouted,
                shadowed: a.counts.shadowed,
                unrouted: a.counts.unrouted,
                unchecked: a.counts.unchecked,
                stray_rules: a.counts.stray_rules,
            }),
            issues,
        }
    }
}

/// The ops of `plan` the SBC confirmed, in plan order: the sink sends them in order, so they
/// are the first `applied` of those it did not refuse (after a stop, the rest were not sent).
pub(super) fn confirmed_ops<'a>(plan: &'a Plan, applied: &ApplyReport) -> Vec<&'a plan::Op> {
    let refused: std::collections::HashSet<u32> =
        applied.quarantined.iter().map(|(op, _)| op.index).collect();
    plan.ops
        .iter()
        .filter(|op| !refused.contains(&op.index))
        .take(applied.applied)
        .collect()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
