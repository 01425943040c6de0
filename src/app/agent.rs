//! One sync cycle, exactly as DESIGN.md §1 lists it: fetch every source in parallel, stand in
//! the last good snapshot for a source that failed, resolve, compile, read the SBC (refreshing
//! the mirror), plan, gate, apply, record.
//!
//! Every cycle recomputes from scratch (level-triggered), so whatever a crash, a hand edit on
//! the SBC or a failed apply left behind is simply the next cycle's starting point. The cycle
//! never returns an error: whatever happened is a [`CycleReport`], recorded in the state
//! database for `check`, `status` and `history`, because an operator must be able to read why
//! a cycle failed without the logs.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::app::clock::now_unix_ms;
use crate::app::daemon::Watchdog;
use crate::config::{Config, ConfigError};
use crate::dialplan::compile::compile;
use crate::dialplan::pattern::best_match;
use crate::dialplan::rule::{DialPlanRule, Tag, UnreadableRow};
use crate::error::{Classify, ErrorClass};
use crate::number::Number;
use crate::plan::{self, OpCounts, Plan, Policy, Route};
use crate::resolve::{resolve, Entry};
use crate::sink::audiocodes::{ApplyReport, DeviceDialPlan, SettleReport, SinkError};
use crate::sink::{ApplyControl, Sink};
use crate::source::{Rejected, Source, SourceEntries, SourceError};
use crate::store::{
    outcome, CycleIssue, CycleRecord, IssueKind, MirrorRule, PhaseTiming, StateLock, Store,
    StoreError,
};

/// How many cycles the history keeps.
const HISTORY_KEEP: usize = 10_000;
/// How many finished journals are kept for forensics.
const JOURNAL_KEEP: usize = 100;

/// The agent could not be set up (bad secrets, an unusable state database).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Classify for AgentError {
    fn class(&self) -> ErrorClass {
        match self {
            AgentError::Config(_) => ErrorClass::Fatal,
            AgentError::Store(e) => e.class(),
        }
    }
}

/// What a cycle may do to the SBC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Apply the plan unless the safety gate blocks it.
    Sync,
    /// Plan and record; write nothing (`agent.dry_run`, `sync --dry-run`, `plan`).
    DryRun,
    /// Apply the plan even though it is blocked, but only if it is exactly the plan whose
    /// checksum the operator read (`apply --force --checksum`).
    Force { checksum: String },
}

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
            issues,
        }
    }
}

/// The agent: the configuration, the clients it built from it, and the state database.
pub struct Agent {
    config: Config,
    sources: Vec<Source>,
    sink: Sink,
    store: Store,
    /// Petted between phases, so systemd restarts an agent whose cycle is wedged.
    watchdog: Watchdog,
    /// No other agent applies from this state database while this one lives.
    _lock: StateLock,
}

impl Agent {
    /// Reads the secrets, builds the clients and opens the state database. Sends nothing.
    pub fn new(config: Config) -> Result<Agent, AgentError> {
        let sources = config.sources()?;
        let sink = config.sink()?;
        let store = Store::open(&config.agent.state_db)?;
        let lock = StateLock::acquire(&config.agent.state_db)?;
        Ok(Agent {
            config,
            sources,
            sink,
            store,
            watchdog: Watchdog::default(),
            _lock: lock,
        })
    }

    /// The watchdog to pet between the phases of a cycle.
    pub fn set_watchdog(&mut self, watchdog: Watchdog) {
        self.watchdog = watchdog;
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Swaps in a new configuration (already validated), rebuilding the clients. On error the
    /// agent keeps the old one.
    pub fn reconfigure(&mut self, config: Config) -> Result<(), AgentError> {
        let sources = config.sources()?;
        let sink = config.sink()?;
        if config.agent.state_db != self.config.agent.state_db {
            let store = Store::open(&config.agent.state_db)?;
            self._lock = StateLock::acquire(&config.agent.state_db)?;
            self.store = store;
        }
        self.config = config;
        self.sources = sources;
        self.sink = sink;
        Ok(())
    }

    /// Reopens the state database (and retakes its lock) when its file was deleted or
    /// replaced since it was opened, so that a long-running agent does not keep its state in
    /// an unlinked file no reader can see and a restart would lose. The new file starts empty
    /// and is rebuilt by the cycle from the SBC (rules named `dialplan.rule_name` are
    /// recognised as dialsync's) and the sources.
    fn reopen_if_replaced(&mut self) -> Result<(), StoreError> {
        let path = self.config.agent.state_db.clone();
        if self._lock.replaced() {
            tracing::warn!(
                lock = %self._lock.path().display(),
                "the state database's lock file was deleted or replaced; locking it again"
            );
            self._lock = StateLock::acquire(&path)?;
        }
        if self.store.replaced() {
            tracing::warn!(
                state_db = %path.display(),
                "the state database was deleted or replaced while dialsync ran; reopening it \
                 and rebuilding its state from the SBC and the sources"
            );
            self.store = Store::open(&path)?;
        }
        Ok(())
    }

    /// Runs one cycle and records it. `stop` is checked between apply batches.
    pub async fn cycle(&mut self, mode: &Mode, stop: &ApplyControl) -> CycleReport {
        let mut report = CycleReport {
            started_unix_ms: now_unix_ms(),
            finished_unix_ms: 0,
            outcome: Outcome::Failed,
            sources: Vec::new(),
            conflicts: Vec::new(),
            desired_rules: 0,
            owned_rules: 0,
            foreign_rules: 0,
            unreadable_rows: Vec::new(),
            sbc_read: false,
            policy: self.config.agent.policy,
            plan: None,
            applied: None,
            settled: None,
            error: None,
            phases: Vec::new(),
        };
        if let Err(error) = self.reopen_if_replaced() {
            // Nowhere to record the cycle: the report (logs, /status, exit code) says why.
            tracing::error!(%error, "cannot reopen the state database");
            report.error = Some(CycleError {
                message: error.to_string(),
                class: error.class(),
            });
            report.finished_unix_ms = now_unix_ms();
            return report;
        }
        if let Err(error) = self.run(mode, stop, &mut report).await {
            // A mistyped checksum leaves the plan as blocked as it was: say so, so that
            // `check` keeps warning about the block rather than reading a passing failure.
            let still_blocked = matches!(error, CycleFailure::ChecksumMismatch { .. })
                && report.plan.as_ref().is_some_and(Plan::is_blocked);
            report.outcome = if still_blocked {
                Outcome::Blocked
            } else {
                Outcome::Failed
            };
            report.error = Some(CycleError {
                message: error.to_string(),
                class: error.class(),
            });
            if !report.sbc_read {
                // The SBC was not read: report the last known counts, not zeros.
                if let Ok((all, owned)) = self.store.mirror_counts() {
                    report.owned_rules = owned as usize;
                    report.foreign_rules = (all - owned) as usize;
                }
            }
        }
        report.finished_unix_ms = now_unix_ms();
        let recorded = self
            .store
            .record_cycle(&report.to_record())
            .and_then(|_| self.store.prune_history(HISTORY_KEEP))
            .and_then(|_| self.store.prune_journal(JOURNAL_KEEP));
        if let Err(error) = recorded {
            tracing::error!(%error, "cannot record the cycle");
            if report.error.is_none() {
                report.outcome = Outcome::Failed;
                report.error = Some(CycleError {
                    message: format!("cannot record the cycle: {error}"),
                    class: error.class(),
                });
            }
        }
        report
    }

    async fn run(
        &mut self,
        mode: &Mode,
        stop: &ApplyControl,
        report: &mut CycleReport,
    ) -> Result<(), CycleFailure> {
        let mut phase = Phases::new(self.watchdog.clone());

        // A crash (or an apply whose outcome was unknown) left a journal: settle it against
        // the device before anything else, so this cycle plans from what is really there.
        if mode != &Mode::DryRun {
            report.settled = self.sink.settle_unfinished(&mut self.store).await?;
            phase.end("settle", report);
        }

        let fetched = self.fetch_all().await;
        phase.end("fetch", report);
        let (entries, emptied) = self.stand_in(fetched, mode, report)?;
        phase.end("snapshots", report);

        let resolution = resolve(&entries);
        report.conflicts = resolution
            .conflicts
            .iter()
            .map(|c| {
                (
                    entries[c.winner].provenance.source.to_string(),
                    c.describe(&entries),
                )
            })
            .collect();
        phase.end("resolve", report);
        let mapping = &resolution.mapping;
        let desired: Vec<Route> = compile(
            mapping,
            self.config.dialplan.encoding,
            self.config.dialplan.max_bracket_digits,
        )
        .into_iter()
        .map(|rule| Route {
            prefix: rule.prefix,
            tag: mapping.tag(rule.tag).clone(),
        })
        .collect();
        report.desired_rules = desired.len();
        drop(resolution);
        drop(entries);
        phase.end("compile", report);

        let device = match self.sink.read().await {
            Err(SinkError::DialPlanMissing { name })
                if self.config.dialplan.create && mode != &Mode::DryRun =>
            {
                tracing::warn!(dial_plan = %name, "the dial plan is missing; creating it");
                self.sink.create_dial_plan().await?;
                self.sink.read().await?
            }
            read => read?,
        };
        report.unreadable_rows = device.unreadable.clone();
        for row in &device.unreadable {
            tracing::warn!(index = row.index, reason = %row.reason, "unreadable dial-plan row left alone");
        }
        report.sbc_read = true;
        self.mirror(&device.rules)?;
        phase.end("read", report);

        let mut settings = self.config.plan_settings();
        if report
            .sources
            .iter()
            .any(|s| s.state == SourceState::Failed)
            && settings.policy == Policy::Sync
        {
            // A failed source without a snapshot is missing from the desired state: deleting
            // what it no longer "wants" would delete live routes (§6).
            settings.policy = Policy::UpsertOnly;
        }
        report.policy = settings.policy;
        let plan = plan::plan(
            &desired,
            &device.rules,
            &device.unreadable,
            &emptied,
            &settings,
        );
        drop(desired);
        phase.end("plan", report);

        let apply = match mode {
            Mode::DryRun => false,
            Mode::Sync => !plan.is_blocked(),
            Mode::Force { checksum } if *checksum == plan.checksum => true,
            Mode::Force { checksum } => {
                // The SBC was read: the refusal must not report (and record) its rules as 0.
                report.owned_rules = owned(&device.rules, &self.config.dialplan.rule_name);
                report.foreign_rules = device.rules.len() - report.owned_rules;
                report.plan = Some(plan);
                return Err(CycleFailure::ChecksumMismatch {
                    expected: checksum.clone(),
                    found: report
                        .plan
                        .as_ref()
                        .map_or(String::new(), |p| p.checksum.clone()),
                });
            }
        };
        if !apply {
            report.outcome = if plan.is_blocked() {
                Outcome::Blocked
            } else if plan.ops.is_empty() {
                Outcome::Converged
            } else {
                Outcome::Planned
            };
            report.owned_rules = owned(&device.rules, &self.config.dialplan.rule_name);
            report.foreign_rules = device.rules.len() - report.owned_rules;
            report.plan = Some(plan);
            return Ok(());
        }

        let watchdog = self.watchdog.clone();
        let applied = tokio::select! {
            applied = self.sink.apply(&mut self.store, &plan, &device, stop) => applied,
            never = pet_on_progress(stop, &watchdog) => match never {},
        };
        phase.end("apply", report);
        let applied = match applied {
            Ok(applied) => applied,
            Err(error) => {
                report.plan = Some(plan);
                report.owned_rules = owned(&device.rules, &self.config.dialplan.rule_name);
                report.foreign_rules = device.rules.len() - report.owned_rules;
                return Err(error.into());
            }
        };
        // The mirror follows what was written, so `lookup` is right before the next read: the
        // ops the SBC confirmed, which leaves out those it refused and, after a stop, those
        // never sent. (Keeping the rules as read instead made a sync that added 240 rules and
        // had one refused report "0 rules owned", and `lookup` miss all 240 until the next
        // cycle.)
        let rule_name = self.config.dialplan.rule_name.clone();
        let confirmed: Vec<plan::Op> = confirmed_ops(&plan, &applied)
            .into_iter()
            .cloned()
            .collect();
        let after = plan::apply(&device.rules, &confirmed, &rule_name);
        self.mirror(&after)?;
        report.owned_rules = owned(&after, &rule_name);
        report.foreign_rules = after.len() - report.owned_rules;
        if let Mode::Force { .. } = mode {
            // The operator accepted the emptied sources: their empty answers become the
            // snapshots, so the next cycle does not block on them again.
            for name in &emptied {
                self.store
                    .save_snapshot(name, now_unix_ms() / 1000, &[])
                    .map_err(CycleFailure::Store)?;
            }
        }
        report.outcome = if applied.stopped {
            Outcome::Failed
        } else {
            Outcome::Converged
        };
        if applied.stopped {
            report.error = Some(CycleError {
                message: "stopped between batches; the rest is left for the next cycle".into(),
                class: ErrorClass::Transient,
            });
        }
        report.plan = Some(plan);
        report.applied = Some(applied);
        phase.end("record", report);
        Ok(())
    }

    /// Fetches every source at once, each within its own timeout.
    async fn fetch_all(&mut self) -> Vec<(Result<SourceEntries, SourceError>, u64)> {
        let settings = self.config.sources.clone();
        let mut tasks = JoinSet::new();
        for (position, (mut source, settings)) in std::mem::take(&mut self.sources)
            .into_iter()
            .zip(settings)
            .enumerate()
        {
            tasks.spawn(async move {
                let started = Instant::now();
                // Each source enforces its own timeout; this one only guards against a source
                // that does not (a stuck file system), with room for the source's own message.
                let limit = settings.timeout + Duration::from_secs(5);
                let result = match tokio::time::timeout(limit, source.fetch()).await {
                    Ok(result) => result,
                    Err(_) => Err(SourceError::Timeout {
                        source_name: settings.name.clone(),
                        timeout: settings.timeout,
                    }),
                };
                (
                    position,
                    source,
                    result,
                    started.elapsed().as_millis() as u64,
                )
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(one) => done.push(one),
                // A panicking source is a bug; the sources must come back regardless, so the
                // set is rebuilt from the config below.
                Err(error) => tracing::error!(%error, "a source fetch panicked"),
            }
        }
        done.sort_by_key(|(position, ..)| *position);
        let mut results = Vec::with_capacity(self.config.sources.len());
        if done.len() == self.config.sources.len() {
            for (_, source, result, ms) in done {
                self.sources.push(source);
                results.push((result, ms));
            }
        } else {
            match self.config.sources() {
                Ok(sources) => self.sources = sources,
                Err(error) => tracing::error!(%error, "cannot rebuild the sources"),
            }
            let mut done = done.into_iter().peekable();
            for (position, settings) in self.config.sources.iter().enumerate() {
                match done.next_if(|(p, ..)| *p == position) {
                    Some((_, _, result, ms)) => results.push((result, ms)),
                    None => results.push((
                        Err(SourceError::Config {
                            source_name: settings.name.clone(),
                            message: "the fetch panicked (a bug: please report it)".into(),
                        }),
                        0,
                    )),
                }
            }
        }
        results
    }

    /// Turns the fetch results into this cycle's entries, in source order: fresh answers
    /// (saved as the new snapshots), last good snapshots for failed sources, and the names of
    /// sources that came back empty after having had entries.
    fn stand_in(
        &mut self,
        fetched: Vec<(Result<SourceEntries, SourceError>, u64)>,
        mode: &Mode,
        report: &mut CycleReport,
    ) -> Result<(Vec<Entry>, Vec<String>), CycleFailure> {
        let now = now_unix_ms() / 1000;
        let summaries = self.store.snapshot_sources()?;
        let mut entries = Vec::new();
        let mut emptied = Vec::new();
        for ((result, fetch_ms), settings) in fetched.into_iter().zip(&self.config.sources) {
            let summary = summaries.iter().find(|s| s.source == settings.name);
            let mut source = SourceReport {
                name: settings.name.clone(),
                kind: settings.kind.name(),
                state: SourceState::Fresh,
                entries: 0,
                rejected: Vec::new(),
                error: None,
                last_good_unix: summary.map(|s| s.fetched_at_unix),
                fetch_ms,
            };
            // An answer whose every item was rejected counts as a failed fetch; its rejected
            // items are still reported, so the operator sees why.
            let result = result.and_then(|answer| match answer.usable(&settings.name) {
                Ok(()) => Ok(answer),
                Err(error) => {
                    source.rejected = answer.rejected;
                    Err(error)
                }
            });
            match result {
                Ok(answer) => {
                    source.rejected = answer.rejected;
                    source.entries = answer.entries.len();
                    let was_full = summary.is_some_and(|s| s.entry_count > 0);
                    if answer.entries.is_empty() && was_full && !settings.allow_empty {
                        // Kept out of the snapshot until an operator forces the plan: a
                        // saved empty snapshot would unblock the next cycle by itself.
                        source.state = SourceState::Emptied;
                        emptied.push(settings.name.clone());
                    } else if mode != &Mode::DryRun {
                        self.store
                            .save_snapshot(&settings.name, now, &answer.entries)?;
                        source.last_good_unix = Some(now);
                    }
                    // The first source's entries are taken, not copied: at a million entries
                    // a copy held two of them at once.
                    if entries.is_empty() {
                        entries = answer.entries;
                    } else {
                        entries.extend(answer.entries);
                    }
                }
                Err(error) => {
                    tracing::warn!(source = %settings.name, %error, "source failed");
                    source.error = Some(error.to_string());
                    match self.store.snapshot(&settings.name)? {
                        Some(snapshot) => {
                            source.state = SourceState::Stale;
                            source.entries = snapshot.entries.len();
                            entries.extend(snapshot.entries);
                        }
                        None => source.state = SourceState::Failed,
                    }
                }
            }
            report.sources.push(source);
        }
        Ok((entries, emptied))
    }

    fn mirror(&mut self, rules: &[DialPlanRule]) -> Result<(), StoreError> {
        let rule_name = &self.config.dialplan.rule_name;
        let mirror: Vec<MirrorRule> = rules
            .iter()
            .map(|rule| MirrorRule {
                owned: &rule.name == rule_name,
                rule: rule.clone(),
            })
            .collect();
        self.store.replace_mirror(&mirror)
    }

    /// Reads the dial plan once, for `status` and tests.
    pub async fn read_sbc(&self) -> Result<DeviceDialPlan, SinkError> {
        self.sink.read().await
    }
}

/// What stopped a cycle.
#[derive(Debug, thiserror::Error)]
enum CycleFailure {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the plan changed since it was shown: its checksum is now {found}, not {expected}; \
         review it again with `dialsync plan`"
    )]
    ChecksumMismatch { expected: String, found: String },
}

impl Classify for CycleFailure {
    fn class(&self) -> ErrorClass {
        match self {
            CycleFailure::Sink(e) => e.class(),
            CycleFailure::Store(e) => e.class(),
            CycleFailure::ChecksumMismatch { .. } => ErrorClass::Item,
        }
    }
}

/// The ops of `plan` the SBC confirmed, in plan order: the sink sends them in order, so they
/// are the first `applied` of those it did not refuse (after a stop, the rest were not sent).
fn confirmed_ops<'a>(plan: &'a Plan, applied: &ApplyReport) -> Vec<&'a plan::Op> {
    let refused: std::collections::HashSet<u32> =
        applied.quarantined.iter().map(|(op, _)| op.index).collect();
    plan.ops
        .iter()
        .filter(|op| !refused.contains(&op.index))
        .take(applied.applied)
        .collect()
}

/// Times the phases of a cycle.
struct Phases {
    since: Instant,
    watchdog: Watchdog,
}

impl Phases {
    fn new(watchdog: Watchdog) -> Phases {
        Phases {
            since: Instant::now(),
            watchdog,
        }
    }

    fn end(&mut self, phase: &str, report: &mut CycleReport) {
        self.watchdog.pet();
        report.phases.push(PhaseTiming {
            phase: phase.to_string(),
            duration_ms: self.since.elapsed().as_millis() as u64,
        });
        self.since = Instant::now();
    }
}

/// How often [`pet_on_progress`] looks at the apply's progress.
const PROGRESS_POLL: Duration = Duration::from_millis(50);

/// Pets `watchdog` each time the apply `control` watches confirms more ops, so an apply of
/// many batches, which may outlast the watchdog timeout, keeps systemd's watchdog fed batch
/// by batch, while one stuck in a batch goes quiet and lets it fire. Never returns.
async fn pet_on_progress(control: &ApplyControl, watchdog: &Watchdog) -> std::convert::Infallible {
    if !watchdog.is_enabled() {
        return std::future::pending().await;
    }
    let mut seen = control.progress();
    loop {
        tokio::time::sleep(PROGRESS_POLL).await;
        let now = control.progress();
        if now != seen {
            seen = now;
            watchdog.pet();
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn owned(rules: &[DialPlanRule], rule_name: &str) -> usize {
    rules.iter().filter(|r| r.name == rule_name).count()
}

// ---------------------------------------------------------------------------------------------
// lookup: answered from the state database alone (the mirror and the last good snapshots), so
// it works while the SBC or an upstream is down, and as a user who cannot read the secrets.

/// What `lookup` says about one number.
#[derive(Clone, Debug, Serialize)]
pub struct LookupAnswer {
    pub number: String,
    /// The rule the SBC picks (best match over owned and foreign rules), as last read.
    pub sbc_rule: Option<LookupRule>,
    /// The entry that decides the number's desired tag, and where it came from.
    pub desired: Option<LookupEntry>,
    /// Conflicts whose contested numbers include this one.
    pub conflicts: Vec<String>,
    /// Whether the SBC's tag is the desired one.
    pub in_sync: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LookupRule {
    pub index: u32,
    pub name: String,
    pub prefix: String,
    pub tag: Tag,
    pub owned: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LookupEntry {
    pub source: String,
    pub item: String,
    pub coverage: String,
    pub tag: Tag,
}

/// Why a lookup cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("{number:?} is not a number: {reason}")]
    Number { number: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Answers `lookup` for each of `numbers` from the state database.
pub fn lookup(
    config: &Config,
    store: &Store,
    numbers: &[String],
) -> Result<Vec<LookupAnswer>, LookupError> {
    let parsed = numbers
        .iter()
        .map(|text| {
            Number::parse(text.trim()).map_err(|e| LookupError::Number {
                number: text.clone(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mirror = store.mirror()?;
    let mut entries = Vec::new();
    for source in &config.sources {
        if let Some(snapshot) = store.snapshot(&source.name)? {
            entries.extend(snapshot.entries);
        }
    }
    let resolution = resolve(&entries);
    let mut answers = Vec::with_capacity(parsed.len());
    for number in parsed {
        let text = number.to_string();
        let sbc_rule = best_match(
            mirror.iter().map(|m| (m.rule.index, &m.rule.prefix, m)),
            &text,
        )
        .map(|(_, m)| LookupRule {
            index: m.rule.index,
            name: m.rule.name.clone(),
            prefix: m.rule.prefix.to_string(),
            tag: m.rule.tag.clone(),
            owned: m.owned,
        });
        let desired = resolution.winner(number).map(|i| {
            let entry = &entries[i];
            LookupEntry {
                source: entry.provenance.source.to_string(),
                item: entry.provenance.item.clone(),
                coverage: entry.coverage.to_string(),
                tag: entry.tag.clone(),
            }
        });
        let conflicts = resolution
            .conflicts
            .iter()
            .filter(|c| {
                [c.winner, c.loser]
                    .iter()
                    .all(|&i| covers(&entries[i], number))
            })
            .map(|c| c.describe(&entries))
            .collect();
        let in_sync = match (&sbc_rule, &desired) {
            (Some(rule), Some(entry)) => rule.tag == entry.tag,
            (None, None) => true,
            _ => false,
        };
        answers.push(LookupAnswer {
            number: text,
            sbc_rule,
            desired,
            conflicts,
            in_sync,
        });
    }
    Ok(answers)
}

fn covers(entry: &Entry, number: Number) -> bool {
    use crate::resolve::Coverage;
    match entry.coverage {
        Coverage::Range(range) => range.contains(number),
        Coverage::Prefix(prefix) => prefix.contains(number),
    }
}
