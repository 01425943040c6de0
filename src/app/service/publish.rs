//! A cycle's report, folded into the status the admin port serves: the agent's words
//! (`app::agent`) turned into the admin port's (`app::admin`), which know nothing of each other.

use std::time::Duration;

use crate::app::admin;
use crate::app::agent::{CycleReport, Outcome};
use crate::config::Config;

/// The status of a freshly loaded configuration, before its first cycle.
pub(super) fn fresh_status(config: &Config) -> admin::Status {
    let mut status = admin::Status::new(
        config.path.display().to_string(),
        config.agent.interval,
        config.agent.dry_run,
        config.agent.policy.as_str(),
    );
    status.sources = config
        .sources
        .iter()
        .map(|s| admin::SourceStatus {
            name: s.name.clone(),
            kind: s.kind.name().to_string(),
            ..admin::SourceStatus::default()
        })
        .collect();
    status
}

/// Folds one cycle into the published status.
pub(super) fn publish(status: &mut admin::Status, report: &CycleReport, interval: Duration) {
    use crate::app::agent::SourceState;
    status.cycle_running = false;
    status.next_cycle_unix_ms =
        Some(report.finished_unix_ms + i64::try_from(interval.as_millis()).unwrap_or(i64::MAX));
    let counts = report.plan.as_ref().map(|p| p.counts()).unwrap_or_default();
    let outcome = match report.outcome {
        Outcome::Converged => admin::CycleOutcome::Converged,
        Outcome::Planned => admin::CycleOutcome::Planned,
        Outcome::Blocked => admin::CycleOutcome::Blocked,
        Outcome::Failed => admin::CycleOutcome::Failed,
    };
    status.last_cycle = Some(admin::CycleStatus {
        started_unix_ms: report.started_unix_ms,
        finished_unix_ms: report.finished_unix_ms,
        duration_ms: u64::try_from(report.finished_unix_ms - report.started_unix_ms).unwrap_or(0),
        outcome,
        adds: counts.adds as u64,
        modifies: counts.modifies as u64,
        deletes: counts.deletes as u64,
        plan_checksum: report.plan.as_ref().map(|p| p.checksum.clone()),
        error: report.error.as_ref().map(|e| e.message.clone()),
    });
    if report.outcome == Outcome::Converged {
        status.last_success_unix_ms = Some(report.finished_unix_ms);
    }
    status.sources = report
        .sources
        .iter()
        .map(|s| admin::SourceStatus {
            name: s.name.clone(),
            kind: s.kind.to_string(),
            state: match s.state {
                SourceState::Fresh => admin::SourceState::Ok,
                SourceState::Stale => admin::SourceState::Stale,
                SourceState::Failed => admin::SourceState::Failed,
                SourceState::Emptied => admin::SourceState::Emptied,
            },
            last_good_fetch_unix: s.last_good_unix,
            entries: s.entries as u64,
            rejected: s.rejected.len() as u64,
            last_error: s.error.clone(),
        })
        .collect();
    // A failed cycle may not have read the SBC: keep the last known counts then.
    if report.outcome != Outcome::Failed || report.owned_rules + report.foreign_rules > 0 {
        status.rules = admin::RuleCounts {
            owned: report.owned_rules as u64,
            foreign: report.foreign_rules as u64,
            desired: report.desired_rules as u64,
        };
    }
    status.blocked = report
        .plan
        .as_ref()
        .filter(|p| p.is_blocked() && report.outcome == Outcome::Blocked)
        .map(|p| admin::BlockedPlan {
            reasons: p.blocked.iter().map(ToString::to_string).collect(),
            checksum: p.checksum.clone(),
            adds: counts.adds as u64,
            modifies: counts.modifies as u64,
            deletes: counts.deletes as u64,
        });
    (status.rejected, status.rejected_total) =
        admin::capped(report.rejected().map(|(source, r)| admin::ItemIssue {
            source: source.to_string(),
            item: r.item.clone(),
            reason: r.reason.clone(),
        }));
    (status.conflicts, status.conflicts_total) = admin::capped(
        report
            .conflicts
            .iter()
            .map(|(source, text)| format!("{source}: {text}")),
    );
    (status.foreign_collisions, status.foreign_collisions_total) = admin::capped(
        report
            .plan
            .iter()
            .flat_map(|p| &p.foreign_conflicts)
            .map(|c| {
                format!(
                    "{} -> {} wanted; rule {} ({:?}) holds it with {}",
                    c.desired.prefix, c.desired.tag, c.foreign_index, c.foreign_name, c.foreign_tag
                )
            }),
    );
    // A cycle that did not read the SBC knows nothing new of its rows: keep the last known.
    if report.sbc_read {
        (status.unreadable_rows, status.unreadable_rows_total) =
            admin::capped(report.unreadable_rows.iter().map(ToString::to_string));
    }
    // A cycle that did not audit (it did not read the SBC) leaves the last audit standing.
    if let Some(audit) = &report.audit {
        status.audit = Some(admin::AuditStatus {
            counts: audit.counts,
            findings: audit.findings,
            examples: audit.examples.clone(),
            duration_ms: audit.duration_ms,
        });
    }
    let totals = &mut status.totals;
    totals.cycles += 1;
    if report.outcome == Outcome::Failed {
        totals.cycles_failed += 1;
    }
    let applied = report.applied_counts();
    totals.ops_applied.add += applied.adds as u64;
    totals.ops_applied.modify += applied.modifies as u64;
    totals.ops_applied.delete += applied.deletes as u64;
    for source in report.failed_sources() {
        *totals
            .source_fetch_errors
            .entry(source.name.clone())
            .or_default() += 1;
    }
}
