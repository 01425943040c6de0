//! The commands that run one cycle: `sync`, `plan` (a dry run, shown as a plan) and
//! `apply --force --checksum`, with the apply's progress on a terminal.

use std::io::{self, Write};
use std::time::Duration;

use super::describe::describe_cycle;
use super::error::CommandError;
use crate::app::agent::{Agent, Mode, Outcome};
use crate::app::plan_report::PlanReport;
use crate::config::Config;
use crate::sink::ApplyControl;
use crate::source::Rejected;

/// `sync [--dry-run]`: one cycle. Exit 0 converged, 2 blocked, 1 error (a source replaced by
/// its last good snapshot included).
pub async fn sync(config: Config, dry_run: bool, out: &mut dyn Write) -> Result<u8, CommandError> {
    let mode = if dry_run || config.agent.dry_run {
        Mode::DryRun
    } else {
        Mode::Sync
    };
    let mut agent = Agent::new(config)?;
    let control = ApplyControl::default();
    let report = with_progress(&control, agent.cycle(&mode, &control)).await;
    describe_cycle(&report, out)?;
    Ok(report.sync_exit_code())
}

/// `plan [--json]`: what the next sync would do, written nowhere. Exit 0 no changes, 2 changes
/// (or blocked), 1 error.
pub async fn plan(config: Config, json: bool, out: &mut dyn Write) -> Result<u8, CommandError> {
    let mut agent = Agent::new(config)?;
    let report = agent.cycle(&Mode::DryRun, &ApplyControl::default()).await;
    let Some(plan) = report
        .plan
        .as_ref()
        .filter(|_| report.outcome != Outcome::Failed)
    else {
        describe_cycle(&report, out)?;
        return Ok(1);
    };
    let rejected: Vec<Rejected> = report
        .rejected()
        .map(|(source, r)| Rejected {
            item: format!("{source}: {}", r.item),
            reason: r.reason.clone(),
        })
        .collect();
    let conflicts: Vec<String> = report
        .conflicts
        .iter()
        .map(|(source, text)| format!("{source}: {text}"))
        .collect();
    let plan_report = PlanReport {
        plan,
        policy: report.policy,
        rejected: &rejected,
        conflicts: &conflicts,
    };
    if json {
        writeln!(out, "{}", plan_report.to_json())?;
    } else {
        write!(out, "{plan_report}")?;
        for source in report.failed_sources() {
            writeln!(
                out,
                "source {} failed ({}); its last good snapshot was used",
                source.name,
                source.error.as_deref().unwrap_or("error")
            )?;
        }
    }
    if report.failed_sources().next().is_some() {
        return Ok(1);
    }
    Ok(if plan.ops.is_empty() && !plan.is_blocked() {
        0
    } else {
        2
    })
}

/// `apply --force --checksum S`: applies the plan, blocked or not, only if it is still exactly
/// the plan with checksum `S`. Exit 0 applied, 1 otherwise.
pub async fn apply(
    config: Config,
    checksum: &str,
    out: &mut dyn Write,
) -> Result<u8, CommandError> {
    let mut agent = Agent::new(config)?;
    let mode = Mode::Force {
        checksum: checksum.trim().to_string(),
    };
    let control = ApplyControl::default();
    let report = with_progress(&control, agent.cycle(&mode, &control)).await;
    describe_cycle(&report, out)?;
    Ok(if report.outcome == Outcome::Converged {
        0
    } else {
        1
    })
}

/// Awaits `apply`, showing the progress `control` records on stderr when stderr is a
/// terminal (a first sync of a large plan takes a while) and staying quiet otherwise (timers,
/// pipes, logs).
async fn with_progress<T>(
    control: &ApplyControl,
    apply: impl std::future::Future<Output = T>,
) -> T {
    use std::io::IsTerminal;
    if !io::stderr().is_terminal() {
        return apply.await;
    }
    let watched = control.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (done, total) = watched.progress();
            if total > 0 {
                eprint!("\r  applying: {done} of {total} operations ");
            }
        }
    });
    let result = apply.await;
    ticker.abort();
    if control.progress().1 > 0 {
        eprint!("\r\x1b[K");
    }
    result
}
