//! What each one-shot subcommand does and prints (`sync`, `plan`, `apply`, `lookup`, `check`,
//! `status`, `history`, `config check`), so that `main.rs` only parses arguments and wires.
//!
//! Each command writes its answer to `out` and returns its exit code; the codes are DESIGN.md
//! §7's contract with scripts and timers, so they are decided here, next to the output that
//! explains them.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::app::clock::now_unix_ms;
use crate::app::{admin, daemon};

use crate::app::agent::{Agent, AgentError, CycleReport, Mode, Outcome};
use crate::app::check::{self, Thresholds, Verdict};
use crate::app::lookup::{lookup, LookupError};
use crate::config::{Config, ConfigError, SbcSettings};
use crate::plan::PlanReport;
use crate::sink::ApplyControl;
use crate::source::Rejected;
use crate::store::{StateLock, Store, StoreError};

/// Why a command could not do its job (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("no state database at {path}{why}: run `dialsync sync` (or start the service) first")]
    NoState { path: String, why: &'static str },
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
    #[error("cannot listen on {addr} (admin.listen): {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Daemon(#[from] daemon::DaemonError),
}

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

/// `lookup NUMBER...`, from the state database alone.
pub fn lookup_numbers(
    config: &Config,
    numbers: &[String],
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, CommandError> {
    let store = open_existing(&config.agent.state_db)?;
    let answers = lookup(config, &store, numbers)?;
    if json {
        let text =
            serde_json::to_string_pretty(&answers).map_err(|e| io::Error::other(e.to_string()))?;
        writeln!(out, "{text}")?;
        return Ok(0);
    }
    for answer in &answers {
        writeln!(out, "{}", answer.number)?;
        match &answer.sbc_rule {
            Some(rule) => writeln!(
                out,
                "  SBC routes it by rule {} {} -> {} ({})",
                rule.index,
                rule.prefix,
                rule.tag,
                if rule.owned {
                    "dialsync's rule".to_string()
                } else {
                    format!(
                        "foreign rule named {:?}, never changed by dialsync",
                        rule.name
                    )
                }
            )?,
            None => writeln!(out, "  SBC: no rule of the dial plan matches it")?,
        }
        match &answer.desired {
            Some(entry) => writeln!(
                out,
                "  desired: {} from source {}, {} ({})",
                entry.tag, entry.source, entry.item, entry.coverage
            )?,
            None => writeln!(out, "  desired: no source assigns it")?,
        }
        for conflict in &answer.conflicts {
            writeln!(out, "  conflict: {conflict}")?;
        }
        match &answer.sbc_rule {
            _ if answer.in_sync => {}
            Some(rule) if !rule.owned && answer.desired.is_some() => writeln!(
                out,
                "  NOT IN SYNC: rule {} is not dialsync's and wins at best match; dialsync \
                 leaves it alone, so only its owner can change this",
                rule.index
            )?,
            _ => writeln!(
                out,
                "  NOT IN SYNC: the next sync changes this (see `dialsync plan`)"
            )?,
        }
    }
    Ok(0)
}

/// `check`: the monitoring plugin. Never fails: what it cannot read is UNKNOWN.
pub fn check(
    config: Result<Config, ConfigError>,
    warning: Option<Duration>,
    critical: Option<Duration>,
    now_unix_ms: i64,
) -> Verdict {
    let config = match config {
        Ok(config) => config,
        Err(error) => return Verdict::unknown(error),
    };
    let mut thresholds = Thresholds::for_interval(config.agent.interval);
    thresholds.warning = warning.unwrap_or(thresholds.warning);
    thresholds.critical = critical.unwrap_or(thresholds.critical);
    if thresholds.warning > thresholds.critical {
        return Verdict::unknown(format!(
            "-w {:?} is longer than -c {:?}",
            thresholds.warning, thresholds.critical
        ));
    }
    let store = match open_existing(&config.agent.state_db) {
        Ok(store) => store,
        Err(error) => return Verdict::unknown(error),
    };
    let last = match store.last_cycle() {
        Ok(last) => last,
        Err(error) => return Verdict::unknown(error),
    };
    let success = match store.last_success() {
        Ok(success) => success,
        Err(error) => return Verdict::unknown(error),
    };
    // Only when nothing is recorded: the lock then tells a first cycle in progress from no
    // agent at all. Asked after reading, so an agent that records its first cycle meanwhile
    // is at worst judged as still running.
    let agent = if last.is_none() {
        match StateLock::holder(&config.agent.state_db) {
            Ok(agent) => agent,
            Err(error) => {
                return Verdict::unknown(format!(
                    "no cycle recorded yet, and whether an agent is running is unknown: {error}"
                ))
            }
        }
    } else {
        None
    };
    check::evaluate(
        last.as_ref(),
        success.as_ref(),
        agent.as_ref(),
        now_unix_ms,
        thresholds,
    )
}

/// `status`: the last cycle, the sources' snapshots and the mirror, from the state database.
pub fn status(config: &Config, out: &mut dyn Write) -> Result<u8, CommandError> {
    let store = open_existing(&config.agent.state_db)?;
    let mirror = store.mirror()?;
    let owned = mirror.iter().filter(|r| r.owned).count();
    writeln!(out, "config:   {}", config.path.display())?;
    writeln!(
        out,
        "policy:   {}{}",
        config.agent.policy.as_str(),
        if config.agent.dry_run {
            " (dry run)"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "dial plan {} on {}: {} rules, {owned} owned by {:?}, {} foreign (as last read)",
        config.dialplan.name,
        sbc_url(config),
        mirror.len(),
        config.dialplan.rule_name,
        mirror.len() - owned
    )?;
    let snapshots = store.snapshot_sources()?;
    for source in &config.sources {
        match snapshots.iter().find(|s| s.source == source.name) {
            Some(s) => writeln!(
                out,
                "source {}: last good answer {} ago, {} entries",
                source.name,
                ago(s.fetched_at_unix * 1000),
                s.entry_count
            )?,
            None => writeln!(out, "source {}: no good answer yet", source.name)?,
        }
    }
    match store.last_cycle()? {
        None => writeln!(out, "last cycle: none recorded")?,
        Some(last) => {
            writeln!(
                out,
                "last cycle: {} {} ago, {} ms: {} added, {} modified, {} deleted; {} rejected, \
                 {} conflicts{}",
                last.outcome,
                ago(last.finished_unix_ms),
                last.finished_unix_ms - last.started_unix_ms,
                last.adds,
                last.modifies,
                last.deletes,
                last.rejected,
                last.conflicts,
                last.plan_checksum
                    .as_deref()
                    .map(|c| format!("; plan checksum {c}"))
                    .unwrap_or_default()
            )?;
            if let Some(error) = &last.error {
                writeln!(out, "  error: {error}")?;
            }
            for issue in last.issues.iter().take(20) {
                writeln!(
                    out,
                    "  {}: {}{}: {}",
                    issue.kind.as_str(),
                    issue
                        .source
                        .as_deref()
                        .map(|s| format!("{s}: "))
                        .unwrap_or_default(),
                    issue.item,
                    issue.detail
                )?;
            }
            if last.issues.len() > 20 {
                writeln!(out, "  ... and {} more", last.issues.len() - 20)?;
            }
        }
    }
    match store.last_success()? {
        Some(success) => writeln!(out, "last success: {} ago", ago(success.finished_unix_ms))?,
        None => writeln!(out, "last success: never")?,
    }
    Ok(0)
}

/// `history [--limit N]`: one line per cycle, newest first.
pub fn history(config: &Config, limit: usize, out: &mut dyn Write) -> Result<u8, CommandError> {
    let store = open_existing(&config.agent.state_db)?;
    writeln!(
        out,
        "{:<20} {:<10} {:>8} {:>6} {:>6} {:>6} {:>8} {:>9}  error",
        "finished", "outcome", "ms", "adds", "mods", "dels", "rejected", "conflicts"
    )?;
    for cycle in store.history(limit)? {
        writeln!(
            out,
            "{:<20} {:<10} {:>8} {:>6} {:>6} {:>6} {:>8} {:>9}  {}",
            utc(cycle.finished_unix_ms),
            cycle.outcome,
            cycle.finished_unix_ms - cycle.started_unix_ms,
            cycle.adds,
            cycle.modifies,
            cycle.deletes,
            cycle.rejected,
            cycle.conflicts,
            cycle.error.as_deref().unwrap_or("")
        )?;
    }
    Ok(0)
}

/// `config check`: the file, its templates and its secret files, with no network.
pub fn config_check(path: &Path, out: &mut dyn Write) -> Result<u8, CommandError> {
    let config = Config::load(path)?;
    config.sources()?;
    config.sink()?;
    writeln!(
        out,
        "{}: OK: policy {}, {} source(s) ({}), sink {} at {}, state in {}",
        path.display(),
        config.agent.policy.as_str(),
        config.sources.len(),
        config
            .sources
            .iter()
            .map(|s| format!("{} ({})", s.name, s.kind.name()))
            .collect::<Vec<_>>()
            .join(", "),
        match config.sbc {
            SbcSettings::AudioCodes { .. } => "audiocodes",
            SbcSettings::LiveCloud { .. } => "livecloud",
        },
        sbc_url(&config),
        config.agent.state_db.display()
    )?;
    if let Some(warning) = insecure_warning(&config) {
        writeln!(out, "WARNING: {warning}")?;
    }
    Ok(0)
}

/// The warning owed while `sbc.insecure_skip_verify` is set.
fn insecure_warning(config: &Config) -> Option<String> {
    match &config.sbc {
        SbcSettings::AudioCodes {
            url,
            insecure_skip_verify: true,
            ..
        } => Some(format!(
            "sbc.insecure_skip_verify is set: the TLS certificate of {url} is not verified"
        )),
        _ => None,
    }
}

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

/// Opens the state database only if it exists: the read-only commands must not create an
/// empty one where the agent expects its own. An empty file (a crash right after creating it,
/// a truncation) holds no state either, and is left for the agent to set up.
fn open_existing(path: &Path) -> Result<Store, CommandError> {
    let why = match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => "",
        Ok(meta) if meta.is_file() && meta.len() == 0 => " (the file is empty)",
        // Anything else (a permission error, a directory) is Store::open's to report.
        _ => return Ok(Store::open(path)?),
    };
    Err(CommandError::NoState {
        path: path.display().to_string(),
        why,
    })
}

fn sbc_url(config: &Config) -> &str {
    match &config.sbc {
        SbcSettings::AudioCodes { url, .. } | SbcSettings::LiveCloud { url, .. } => url,
    }
}

fn ago(unix_ms: i64) -> String {
    let secs = (now_unix_ms() - unix_ms).max(0) / 1000;
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// RFC 3339 in UTC, to the second.
fn utc(unix_ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

// ---------------------------------------------------------------------------------------------
// `run`: the daemon. The agent becomes a `daemon::Service`; after each cycle it publishes the
// admin port's `/status` (from which `/metrics` is rendered too).

/// The agent as the daemon loop drives it, publishing its status after every cycle.
struct AgentService {
    agent: Agent,
    status: tokio::sync::watch::Sender<admin::Status>,
}

impl daemon::Service for AgentService {
    type Config = Config;
    type Error = String;

    fn load_config(&self, path: &Path) -> Result<Config, String> {
        Config::load(path).map_err(|e| e.to_string())
    }

    fn interval(&self, config: &Config) -> Duration {
        config.agent.interval
    }

    fn accept_reload(&mut self, current: &Config, new: &Config) -> Result<(), String> {
        if new.admin_listen != current.admin_listen {
            return Err(format!(
                "admin.listen changed from {} to {}: restart dialsync to move the admin port",
                current.admin_listen, new.admin_listen
            ));
        }
        self.agent
            .reconfigure(new.clone())
            .map_err(|e| e.to_string())?;
        let previous = self.status.borrow().clone();
        self.status.send_replace(admin::Status {
            totals: previous.totals,
            last_cycle: previous.last_cycle,
            last_success_unix_ms: previous.last_success_unix_ms,
            ..fresh_status(new)
        });
        Ok(())
    }

    async fn cycle(&mut self, config: &Config, ctx: &daemon::CycleContext) -> daemon::CycleSummary {
        // DESIGN.md §5.1: an SBC whose certificate is not verified is said every cycle, not
        // only when the sink is built.
        if let Some(warning) = insecure_warning(config) {
            tracing::warn!("{warning}");
        }
        self.status.send_modify(|s| s.cycle_running = true);
        self.agent.set_watchdog(ctx.watchdog.clone());
        let mode = if config.agent.dry_run {
            Mode::DryRun
        } else {
            Mode::Sync
        };
        let stop = ApplyControl::default();
        let agent = &mut self.agent;
        let report = ctx
            .shutdown
            .relay(agent.cycle(&mode, &stop), || stop.request())
            .await;
        self.status
            .send_modify(|status| publish(status, &report, config.agent.interval));
        let line = report.summary();
        if report.outcome == Outcome::Failed || report.failed_sources().next().is_some() {
            daemon::CycleSummary::failed(line)
        } else {
            daemon::CycleSummary::ok(line)
        }
    }
}

fn fresh_status(config: &Config) -> admin::Status {
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
fn publish(status: &mut admin::Status, report: &CycleReport, interval: Duration) {
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

/// `run`: the agent as a service, until SIGTERM or SIGINT. READY=1 is sent once the config,
/// the state database and the admin listener are up; the first cycle follows at once.
pub async fn run(config: Config) -> Result<u8, CommandError> {
    let notifier = daemon::Notifier::from_env();
    let path = config.path.clone();
    let agent = Agent::new(config.clone())?;
    let listener = tokio::net::TcpListener::bind(config.admin_listen)
        .await
        .map_err(|source| CommandError::Listen {
            addr: config.admin_listen,
            source,
        })?;
    if let Some(warning) = admin::listen_warning(config.admin_listen) {
        tracing::warn!("{warning}");
    }
    let mut triggers = daemon::Triggers::new();
    triggers.listen_signals()?;
    triggers.watch_config(&path, daemon::RELOAD_DEBOUNCE)?;
    let requester = triggers.sync_requester();
    let (status_tx, status_rx) = tokio::sync::watch::channel(fresh_status(&config));
    let state_db = config.agent.state_db.clone();
    let probe: admin::ReadyProbe = Arc::new(move || {
        Store::open(&state_db)
            .and_then(|store| store.schema_version())
            .map(|_| ())
            .map_err(|e| format!("state database: {e}"))
    });
    let trigger: admin::SyncTrigger = Arc::new(move || requester.request("POST /sync"));
    // The bound address, not the configured one: with port 0 this is how to find it.
    let admin_addr = listener.local_addr()?;
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin_task = tokio::spawn(admin::serve(
        listener,
        admin::AdminState::new(status_rx, probe, trigger),
        async move {
            let _ = admin_stopped.await;
        },
    ));
    tracing::info!(admin = %admin_addr, sbc = %sbc_url(&config), "dialsync starting");
    let mut service = AgentService {
        agent,
        status: status_tx,
    };
    let stopped = daemon::run_loop(
        &mut service,
        config,
        &path,
        &mut triggers,
        &notifier,
        &daemon::LoopOptions::default(),
    )
    .await;
    let _ = stop_admin.send(());
    let _ = admin_task.await;
    tracing::info!(by = stopped.by, abandoned = stopped.abandoned, "stopped");
    Ok(0)
}
