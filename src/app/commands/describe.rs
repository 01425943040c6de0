//! A cycle told to a person, as `sync` and `apply` print it: the outcome, each source, the
//! rules, what was written, and what needs a look.

use std::io::{self, Write};

use crate::app::agent::{CycleReport, Outcome};

/// A cycle for a person: outcome, sources, rules, what was written, and what needs a look.
pub fn describe_cycle(report: &CycleReport, out: &mut dyn Write) -> io::Result<()> {
    let ms = report.finished_unix_ms - report.started_unix_ms;
    writeln!(out, "{} ({ms} ms)", report.summary())?;
    if let (Some(error), false) = (&report.error, report.outcome == Outcome::Failed) {
        // A failed cycle's summary already is its error.
        writeln!(out, "  {}", error.message)?;
    }
    for source in &report.sources {
        write!(
            out,
            "  source {} ({}): {}, {} entries",
            source.name,
            source.kind,
            source.state.as_str(),
            source.entries
        )?;
        if !source.rejected.is_empty() {
            write!(out, ", {} rejected", source.rejected.len())?;
        }
        if let Some(error) = &source.error {
            write!(out, ": {error}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "  rules: {} desired; on the SBC {} owned, {} foreign",
        report.desired_rules, report.owned_rules, report.foreign_rules
    )?;
    writeln!(
        out,
        "  phases: {}",
        report
            .phases
            .iter()
            .map(|p| format!("{} {} ms", p.phase, p.duration_ms))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    if let Some(plan) = &report.plan {
        let counts = plan.counts();
        writeln!(
            out,
            "  plan: {} adds, {} modifies, {} deletes (checksum {})",
            counts.adds, counts.modifies, counts.deletes, plan.checksum
        )?;
        for reason in &plan.blocked {
            writeln!(out, "  BLOCKED: {reason}")?;
        }
        if plan.is_blocked() {
            writeln!(
                out,
                "  review with `dialsync plan`, then apply exactly this plan with \
                 `dialsync apply --force --checksum {}`",
                plan.checksum
            )?;
        }
        for conflict in &plan.foreign_conflicts {
            writeln!(
                out,
                "  foreign rule {} ({:?}) holds {} with tag {}; wanted {}",
                conflict.foreign_index,
                conflict.foreign_name,
                conflict.desired.prefix,
                conflict.foreign_tag,
                conflict.desired.tag
            )?;
        }
    }
    if let Some(applied) = &report.applied {
        writeln!(
            out,
            "  applied {} ops in {} batches with {} requests{}",
            applied.applied,
            applied.batches,
            applied.requests,
            if applied.saved {
                ", configuration saved"
            } else {
                ""
            }
        )?;
        for (op, reason) in &applied.quarantined {
            writeln!(out, "  refused by the SBC, index {}: {reason}", op.index)?;
        }
    }
    if let Some(settled) = &report.settled {
        writeln!(
            out,
            "  settled an interrupted apply: {} ops confirmed, {} not applied",
            settled.confirmed + settled.already_done,
            settled.not_applied
        )?;
    }
    for (source, rejected) in report.rejected().take(20) {
        writeln!(out, "  rejected {source}: {rejected}")?;
    }
    if report.rejected_count() > 20 {
        writeln!(
            out,
            "  ... and {} more rejected",
            report.rejected_count() - 20
        )?;
    }
    for (source, conflict) in &report.conflicts {
        writeln!(out, "  conflict in {source}: {conflict}")?;
    }
    for row in &report.unreadable_rows {
        writeln!(
            out,
            "  unreadable dial-plan row {} (left alone, its index never written): {}",
            row.index, row.reason
        )?;
    }
    Ok(())
}
