//! One cycle, phase by phase: settle what a crash left, fetch, resolve, read the SBC and
//! refresh the mirror, compile, plan, gate, apply, record. Each phase is timed, and the watchdog is
//! fed between phases and apply batches.

use std::time::{Duration, Instant};

use super::audit::{audit_cycle, CycleAudit};
use super::mode::Mode;
use super::report::{confirmed_ops, CycleError, CycleReport, Outcome, SourceState};
use super::setup::Agent;
use super::steady::{Findings, Inputs};
use crate::app::clock::now_unix_ms;
use crate::app::daemon::Watchdog;
use crate::compile::compile;
use crate::dialplan::rule::DialPlanRule;
use crate::error::{Classify, ErrorClass};
use crate::net::answer_digest::AnswerDigest;
use crate::plan::{self, Plan, PlanSettings, Policy, Route};
use crate::resolve::{resolve, Mapping};
use crate::sink::ApplyControl;
use crate::sink::{dial_plan_digest, DeviceDialPlan, SinkError};
use crate::store::{PhaseTiming, StoreError};

/// How many cycles the history keeps.
const HISTORY_KEEP: usize = 10_000;
/// How many finished journals are kept for forensics.
const JOURNAL_KEEP: usize = 100;

impl Agent {
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
            audit: None,
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

        // Read once: the fetch compares each answer with its snapshot's digest, and the
        // stand-ins judge each source against its snapshot.
        let summaries = self.store.snapshot_sources()?;
        let fetched = self.fetch_all(&summaries).await;
        phase.end("fetch", report);
        let gathered = self.stand_in(fetched, &summaries, mode, report)?;
        phase.end("snapshots", report);

        // The last steady cycle, if the sources answered as they did then: the SBC is read
        // first, to see whether this whole cycle is steady.
        let steady = match (&gathered.sources, mode) {
            (Some(sources), Mode::Sync) if report.settled.is_none() => self
                .store
                .steady_state()?
                .filter(|steady| Findings::sources_match(steady, sources)),
            _ => None,
        };
        let mut device = None;
        if let Some(steady) = &steady {
            let read =
                self.read_and_mirror(mode, report, |_| Findings::recorded_desired_rules(steady));
            let read = read.await?;
            let inputs = gathered.sources.clone().map(|sources| Inputs {
                sources,
                device: read.answer.clone(),
            });
            let found = inputs.and_then(|inputs| Findings::recorded(steady, &inputs));
            phase.end("read", report);
            if let Some(findings) = found {
                return self
                    .conclude(mode, stop, report, Decided::Steady(findings), read, phase)
                    .await;
            }
            device = Some(read);
        }

        let sources = gathered.sources.clone();
        let emptied = gathered.emptied.clone();
        let entries = gathered.entries(&self.store)?;
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
        // The mapping outlives the rest of the resolution: the audit at the end needs it.
        let mapping = resolution.into_mapping();
        drop(entries);
        phase.end("resolve", report);

        let device = match device {
            Some(device) => device,
            None => {
                let read =
                    self.read_and_mirror(mode, report, |agent| agent.desired(&mapping).len());
                let read = read.await?;
                phase.end("read", report);
                read
            }
        };

        // Compiled after the read, not before: the script being parsed and the desired rules
        // were the peak of a 100k-rule cycle when held together (9 MB of its 45 MB).
        let desired = self.desired(&mapping);
        report.desired_rules = desired.len();
        phase.end("compile", report);

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
        let decided = Decided::Computed {
            plan,
            mapping,
            replan: Replan { sources, settings },
        };
        self.conclude(mode, stop, report, decided, device, phase)
            .await
    }

    /// Applies what the cycle decided, refreshes the mirror, audits, and records the steady
    /// state for the next cycle.
    async fn conclude(
        &mut self,
        mode: &Mode,
        stop: &ApplyControl,
        report: &mut CycleReport,
        decided: Decided,
        mut device: DeviceDialPlan,
        mut phase: Phases,
    ) -> Result<(), CycleFailure> {
        let rule_name = self.config.dialplan.rule_name.clone();
        let (plan, audit_of) = match decided {
            Decided::Steady(findings) => {
                tracing::info!(
                    "the sources and the SBC answered as in the last steady cycle: its findings \
                     stand"
                );
                phase.end("steady", report);
                report.conflicts = findings.conflicts.clone();
                report.desired_rules = findings.desired_rules;
                report.policy = self.config.agent.policy;
                (findings.plan(), AuditOf::Steady(findings))
            }
            Decided::Computed {
                plan,
                mapping,
                replan,
            } => (plan, AuditOf::Computed { mapping, replan }),
        };
        let apply = match mode {
            Mode::DryRun => false,
            Mode::Sync => !plan.is_blocked(),
            Mode::Force { checksum } if *checksum == plan.checksum => true,
            Mode::Force { checksum } => {
                // The SBC was read: the refusal must not report (and record) its rules as 0.
                report.owned_rules = owned(&device.rules, &rule_name);
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
            report.owned_rules = owned(&device.rules, &rule_name);
            report.foreign_rules = device.rules.len() - report.owned_rules;
            report.plan = Some(plan);
            report.audit = audit_of.audit(&device.rules, &rule_name);
            phase.end("audit", report);
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
                report.owned_rules = owned(&device.rules, &rule_name);
                report.foreign_rules = device.rules.len() - report.owned_rules;
                return Err(error.into());
            }
        };
        // The mirror follows what was written, so `lookup` is right before the next read: the
        // ops the SBC confirmed, which leaves out those it refused and, after a stop, those
        // never sent. (Keeping the rules as read instead made a sync that added 240 rules and
        // had one refused report "0 rules owned", and `lookup` miss all 240 until the next
        // cycle.) With nothing confirmed, that is the dial plan as read, already mirrored.
        let confirmed = confirmed_ops(&plan, &applied);
        let all_confirmed = confirmed.len() == plan.ops.len();
        let unreadable = std::mem::take(&mut device.unreadable);
        let after = if confirmed.is_empty() {
            device.rules
        } else {
            let after = plan::apply(&device.rules, confirmed, &rule_name);
            // The dial plan as read is done with: `after` replaces it, and the audit below
            // builds its own index over `after`; holding both was 8 MB of a 100k-rule first
            // sync's peak.
            drop(device);
            self.mirror(&after)?;
            after
        };
        report.owned_rules = owned(&after, &rule_name);
        report.foreign_rules = after.len() - report.owned_rules;
        if let Mode::Force { .. } = mode {
            // The operator accepted the emptied sources: their empty answers become the
            // snapshots, so the next cycle does not block on them again.
            let emptied = report
                .sources
                .iter()
                .filter(|s| s.state == SourceState::Emptied);
            for source in emptied {
                self.store
                    .save_snapshot(&source.name, now_unix_ms() / 1000, &[])
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
        report.audit = audit_of.audit(&after, &rule_name);
        phase.end("audit", report);
        if let AuditOf::Computed { replan, mapping } = audit_of {
            // Steady when the dial plan it leaves is the one it wanted: every op confirmed,
            // none stopped. The findings recorded are those of the cycle that will read that
            // dial plan next, so the next cycle, if nothing changes, takes them. Any other
            // cycle that applies forgets the steady state.
            let steady = match (mode, replan.sources, &report.audit, &report.plan) {
                (Mode::Sync, Some(sources), Some(audit), Some(plan))
                    if report.outcome == Outcome::Converged && all_confirmed =>
                {
                    // A plan that wrote nothing was made on this very dial plan. One that
                    // wrote is made again on what it left (no op, unless a policy held some
                    // back), compiled anew rather than held through the apply, where the
                    // desired rules were 5 MB of a 100k-rule first sync's peak.
                    let next = (!plan.ops.is_empty()).then(|| {
                        let desired = self.desired(&mapping);
                        drop(mapping);
                        plan::plan(&desired, &after, &unreadable, &[], &replan.settings)
                    });
                    let device = dial_plan_digest(&after, &unreadable);
                    let next = next.as_ref().unwrap_or(plan);
                    Findings::of(&report.conflicts, report.desired_rules, next, audit)
                        .and_then(|findings| findings.record(&Inputs { sources, device }))
                }
                _ => None,
            };
            self.store.set_steady_state(steady.as_ref())?;
        }
        Ok(())
    }

    /// Reads the SBC's dial plan and refreshes the mirror from it. When the read fails, the
    /// rules wanted are still reported (and graphed), as `desired` counts them: a desired
    /// count falling to 0 with every outage would look like the sources emptying.
    async fn read_and_mirror(
        &mut self,
        mode: &Mode,
        report: &mut CycleReport,
        desired: impl FnOnce(&Agent) -> usize,
    ) -> Result<DeviceDialPlan, CycleFailure> {
        let device = match self.read_device(mode).await {
            Ok(device) => device,
            Err(error) => {
                report.desired_rules = desired(self);
                return Err(error.into());
            }
        };
        report.unreadable_rows = device.unreadable.clone();
        for row in &device.unreadable {
            tracing::warn!(index = row.index, reason = %row.reason, "unreadable dial-plan row left alone");
        }
        report.sbc_read = true;
        self.mirror(&device.rules)?;
        Ok(device)
    }

    /// The SBC's dial plan, created first if it is missing and the config allows it.
    async fn read_device(&mut self, mode: &Mode) -> Result<DeviceDialPlan, SinkError> {
        match self.sink.read().await {
            Err(SinkError::DialPlanMissing { name, .. })
                if self.config.dialplan.create && mode != &Mode::DryRun =>
            {
                tracing::warn!(dial_plan = %name, "the dial plan is missing; creating it");
                self.sink.create_dial_plan().await?;
                self.sink.read().await
            }
            read => read,
        }
    }

    /// The rules `mapping` compiles to, with their tags.
    fn desired(&self, mapping: &Mapping) -> Vec<Route> {
        compile(
            mapping,
            self.config.dialplan.encoding,
            self.config.dialplan.max_bracket_digits,
        )
        .into_iter()
        .map(|rule| Route {
            prefix: rule.prefix,
            tag: mapping.tag(rule.tag).clone(),
        })
        .collect()
    }

    fn mirror(&mut self, rules: &[DialPlanRule]) -> Result<(), StoreError> {
        let rule_name = &self.config.dialplan.rule_name;
        self.store
            .replace_mirror_rows(rules.iter().map(|rule| (rule, *rule.name == **rule_name)))
    }
}

/// What a cycle decided to apply: a plan it computed, or the empty plan of the last steady
/// cycle, whose inputs were its own.
enum Decided {
    Steady(Findings),
    Computed {
        plan: Plan,
        mapping: Mapping,
        replan: Replan,
    },
}

/// What a computed cycle keeps to plan again on the dial plan it leaves, and so record the
/// steady state the next cycle will find.
struct Replan {
    /// `None` when a source failed or gave no digest: such a cycle is never steady.
    sources: Option<AnswerDigest>,
    settings: PlanSettings,
}

/// Where the audit of the dial plan a cycle leaves comes from.
enum AuditOf {
    Steady(Findings),
    Computed { mapping: Mapping, replan: Replan },
}

impl AuditOf {
    fn audit(&self, rules: &[DialPlanRule], rule_name: &str) -> Option<CycleAudit> {
        match self {
            AuditOf::Steady(findings) => Some(findings.audit()),
            AuditOf::Computed { mapping, .. } => audit_cycle(mapping, rules, rule_name),
        }
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

fn owned(rules: &[DialPlanRule], rule_name: &str) -> usize {
    rules.iter().filter(|r| &*r.name == rule_name).count()
}
