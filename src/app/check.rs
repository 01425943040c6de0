//! `dialsync check`: the monitoring plugin, by Nagios/Icinga conventions (DESIGN.md §7).
//!
//! It judges what the state database recorded, so it says the same thing whether cycles come
//! from `run` or from `sync` in a timer, and it runs as a monitoring user that cannot read the
//! secrets. Before the first cycle is recorded it also asks whether an agent holds the
//! database's lock (`StateLock::holder`): a first cycle may take minutes against a large SBC,
//! and "it is running" is then the answer, not "unknown". The judgement itself is pure
//! (records and a clock in, a verdict out) so every threshold is tested without waiting for
//! one.

use std::fmt;
use std::time::Duration;

use crate::store::{outcome, CycleRecord, IssueKind, LockHolder};

/// Nagios plugin states, with their exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Status {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        })
    }
}

/// How old the last successful cycle may get: WARNING past `warning`, CRITICAL past
/// `critical`. By default 3 and 10 times the configured interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub warning: Duration,
    pub critical: Duration,
}

impl Thresholds {
    pub fn for_interval(interval: Duration) -> Thresholds {
        Thresholds {
            warning: interval * 3,
            critical: interval * 10,
        }
    }
}

/// The plugin's verdict: one line, perfdata after `|`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub line: String,
}

impl Verdict {
    pub fn unknown(reason: impl fmt::Display) -> Verdict {
        Verdict {
            status: Status::Unknown,
            line: format!("DIALSYNC UNKNOWN - {reason}"),
        }
    }
}

/// Judges the newest cycle (`last`, with its issues) and the newest successful one, at
/// `now_unix_ms`. With no cycle recorded, `agent` (the holder of the database's lock, if any)
/// tells a first cycle in progress from nothing running at all.
pub fn evaluate(
    last: Option<&CycleRecord>,
    last_success: Option<&CycleRecord>,
    agent: Option<&LockHolder>,
    now_unix_ms: i64,
    thresholds: Thresholds,
) -> Verdict {
    let Some(last) = last else {
        return match agent {
            Some(agent) => first_cycle(agent, now_unix_ms, thresholds),
            None => Verdict::unknown(
                "no cycle recorded yet and no agent running (has dialsync run or sync been \
                 started?)",
            ),
        };
    };
    let age = last_success.map(|s| age_at(now_unix_ms, s.finished_unix_ms));
    let mut status = Status::Ok;
    let mut problems: Vec<String> = Vec::new();
    let mut raise = |to: Status, why: String| {
        status = status.max(to);
        problems.push(why);
    };
    match age {
        None => raise(Status::Critical, "no successful cycle yet".into()),
        Some(age) if age > thresholds.critical => {
            raise(Status::Critical, format!("last success {} ago", human(age)))
        }
        Some(age) if age > thresholds.warning => {
            raise(Status::Warning, format!("last success {} ago", human(age)))
        }
        Some(_) => {}
    }
    if last.fatal {
        raise(
            Status::Critical,
            format!(
                "last cycle failed: {}",
                last.error.as_deref().unwrap_or("fatal error")
            ),
        );
    } else if last.outcome == outcome::FAILED {
        // A transient failure is judged by the age of the last success alone; it is still
        // named so the line says what is going on.
        raise(
            Status::Ok,
            format!(
                "last cycle failed: {}",
                last.error.as_deref().unwrap_or("error")
            ),
        );
    }
    if last.outcome == outcome::BLOCKED {
        let reasons: Vec<&str> = last
            .issues
            .iter()
            .filter(|i| i.kind == IssueKind::Blocked)
            .map(|i| i.detail.as_str())
            .collect();
        raise(
            Status::Warning,
            format!(
                "plan blocked ({}), checksum {}",
                if reasons.is_empty() {
                    "safety gate".to_string()
                } else {
                    reasons.join("; ")
                },
                last.plan_checksum.as_deref().unwrap_or("-")
            ),
        );
    }
    if last.source_failures > 0 {
        let failing: Vec<&str> = last
            .issues
            .iter()
            .filter(|i| i.kind == IssueKind::Source)
            .filter_map(|i| i.source.as_deref())
            .collect();
        raise(
            Status::Warning,
            format!("sources failing: {}", failing.join(", ")),
        );
    }
    if last.rejected > 0 {
        raise(Status::Warning, format!("{} items rejected", last.rejected));
    }
    if last.conflicts > 0 {
        raise(Status::Warning, format!("{} conflicts", last.conflicts));
    }
    let unreadable: Vec<&str> = last
        .issues
        .iter()
        .filter(|i| i.kind == IssueKind::Unreadable)
        .map(|i| i.item.as_str())
        .collect();
    if !unreadable.is_empty() {
        let more = unreadable.len().saturating_sub(3);
        raise(
            Status::Warning,
            format!(
                "{} unreadable dial-plan {} left alone ({}{})",
                unreadable.len(),
                if unreadable.len() == 1 { "row" } else { "rows" },
                unreadable[..unreadable.len().min(3)].join(", "),
                if more > 0 {
                    format!(", {more} more")
                } else {
                    String::new()
                }
            ),
        );
    }
    if let Some(audit) = last.audit.filter(|a| a.misrouted + a.shadowed > 0) {
        raise(
            Status::Warning,
            format!(
                "{} numbers misrouted, {} shadowed by foreign rules (see dialsync audit)",
                audit.misrouted, audit.shadowed
            ),
        );
    }
    let summary = if problems.is_empty() {
        format!(
            "in sync, last success {} ago; {} rules owned",
            age.map_or_else(|| "-".to_string(), human),
            last.owned_rules
        )
    } else {
        problems.join("; ")
    };
    let duration_ms = last.finished_unix_ms - last.started_unix_ms;
    let mut perfdata = format!(
        "last_success_age={}s;{};{};0 cycle_duration={:.3}s owned_rules={} rejected={} \
         conflicts={} adds={} modifies={} deletes={}",
        age.map_or_else(|| "U".to_string(), |a| a.as_secs().to_string()),
        thresholds.warning.as_secs(),
        thresholds.critical.as_secs(),
        duration_ms.max(0) as f64 / 1000.0,
        last.owned_rules,
        last.rejected,
        last.conflicts,
        last.adds,
        last.modifies,
        last.deletes,
    );
    if let Some(audit) = &last.audit {
        perfdata.push_str(&format!(
            " misrouted={} shadowed={} unrouted={}",
            audit.misrouted, audit.shadowed, audit.unrouted
        ));
    }
    Verdict {
        status,
        line: format!("DIALSYNC {status} - {summary} | {perfdata}"),
    }
}

/// An agent is alive but has recorded nothing yet. Its first cycle gets the time a success
/// may be late by: the same thresholds, counted from when it started (took the lock).
fn first_cycle(agent: &LockHolder, now_unix_ms: i64, thresholds: Thresholds) -> Verdict {
    let running = age_at(now_unix_ms, agent.locked_unix_ms);
    let status = if running > thresholds.critical {
        Status::Critical
    } else if running > thresholds.warning {
        Status::Warning
    } else {
        Status::Ok
    };
    let pid = agent
        .pid
        .map_or_else(String::new, |pid| format!(" (pid {pid})"));
    Verdict {
        status,
        line: format!(
            "DIALSYNC {status} - first cycle running for {}{pid}, nothing recorded yet | \
             last_success_age=U;{w};{c};0 first_cycle_age={}s;{w};{c};0",
            human(running),
            running.as_secs(),
            w = thresholds.warning.as_secs(),
            c = thresholds.critical.as_secs(),
        ),
    }
}

/// How long before `now_unix_ms` the moment `then_unix_ms` was; zero if it is in the future
/// (clocks differ between writer and reader, or were set back).
fn age_at(now_unix_ms: i64, then_unix_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(now_unix_ms.saturating_sub(then_unix_ms)).unwrap_or(0))
}

fn human(age: Duration) -> String {
    let secs = age.as_secs();
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        _ => format!("{}h", secs / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditRecord, CycleIssue};

    const MINUTE: i64 = 60_000;

    fn cycle(outcome: &str, finished: i64) -> CycleRecord {
        CycleRecord {
            started_unix_ms: finished - 1_500,
            finished_unix_ms: finished,
            outcome: outcome.to_string(),
            owned_rules: 42,
            ..CycleRecord::default()
        }
    }

    fn judge(last: &CycleRecord, success: Option<&CycleRecord>, now: i64) -> Verdict {
        evaluate(
            Some(last),
            success,
            None,
            now,
            Thresholds::for_interval(Duration::from_secs(60)),
        )
    }

    #[test]
    fn misrouted_or_shadowed_numbers_warn_and_unrouted_alone_does_not() {
        let mut last = cycle(outcome::CONVERGED, 10 * MINUTE);
        last.audit = Some(AuditRecord {
            routed: 990,
            shadowed: 1,
            misrouted: 2,
            unrouted: 7,
            ..AuditRecord::default()
        });
        let verdict = judge(&last, Some(&last), 10 * MINUTE + 1_000);
        assert_eq!(verdict.status, Status::Warning, "{}", verdict.line);
        assert!(
            verdict
                .line
                .contains("2 numbers misrouted, 1 shadowed by foreign rules"),
            "{}",
            verdict.line
        );
        assert!(verdict.line.ends_with("misrouted=2 shadowed=1 unrouted=7"));
        last.audit = Some(AuditRecord {
            routed: 990,
            unrouted: 7,
            ..AuditRecord::default()
        });
        let verdict = judge(&last, Some(&last), 10 * MINUTE + 1_000);
        assert_eq!(verdict.status, Status::Ok, "{}", verdict.line);
    }

    #[test]
    fn a_fresh_success_is_ok_with_perfdata() {
        let ok = cycle(outcome::CONVERGED, 10 * MINUTE);
        let verdict = judge(&ok, Some(&ok), 10 * MINUTE + 12_000);
        assert_eq!(verdict.status, Status::Ok);
        assert_eq!(
            verdict.line,
            "DIALSYNC OK - in sync, last success 12s ago; 42 rules owned | \
             last_success_age=12s;180;600;0 cycle_duration=1.500s owned_rules=42 rejected=0 \
             conflicts=0 adds=0 modifies=0 deletes=0"
        );
    }

    #[test]
    fn the_age_of_the_last_success_sets_warning_then_critical() {
        let success = cycle(outcome::CONVERGED, 0);
        let failed = CycleRecord {
            error: Some("sbc answered 503".into()),
            ..cycle(outcome::FAILED, 4 * MINUTE)
        };
        let at = |minutes: i64| judge(&failed, Some(&success), minutes * MINUTE).status;
        assert_eq!(at(2), Status::Ok, "a transient failure within 3 intervals");
        assert_eq!(at(4), Status::Warning);
        assert_eq!(at(11), Status::Critical);
        let line = judge(&failed, Some(&success), 4 * MINUTE).line;
        assert!(
            line.contains("last success 4m ago; last cycle failed: sbc answered 503"),
            "{line}"
        );
        assert_eq!(judge(&failed, None, MINUTE).status, Status::Critical);
    }

    #[test]
    fn a_fatal_cycle_is_critical_at_once() {
        let success = cycle(outcome::CONVERGED, 0);
        let fatal = CycleRecord {
            fatal: true,
            error: Some("authentication refused".into()),
            ..cycle(outcome::FAILED, MINUTE)
        };
        let verdict = judge(&fatal, Some(&success), MINUTE);
        assert_eq!(verdict.status, Status::Critical);
        assert!(
            verdict.line.contains("authentication refused"),
            "{}",
            verdict.line
        );
    }

    #[test]
    fn blocked_plans_rejected_items_conflicts_and_failing_sources_warn() {
        let success = cycle(outcome::CONVERGED, 0);
        let blocked = CycleRecord {
            plan_checksum: Some("abc123".into()),
            issues: vec![CycleIssue {
                kind: IssueKind::Blocked,
                source: None,
                item: "plan".into(),
                detail: "source fusion returned nothing".into(),
            }],
            ..cycle(outcome::BLOCKED, MINUTE)
        };
        let verdict = judge(&blocked, Some(&success), MINUTE);
        assert_eq!(verdict.status, Status::Warning);
        assert!(
            verdict
                .line
                .contains("plan blocked (source fusion returned nothing), checksum abc123"),
            "{}",
            verdict.line
        );
        for record in [
            CycleRecord {
                rejected: 3,
                ..cycle(outcome::CONVERGED, MINUTE)
            },
            CycleRecord {
                conflicts: 1,
                ..cycle(outcome::CONVERGED, MINUTE)
            },
            CycleRecord {
                source_failures: 1,
                ..cycle(outcome::CONVERGED, MINUTE)
            },
        ] {
            assert_eq!(
                judge(&record, Some(&record), MINUTE).status,
                Status::Warning
            );
        }
    }

    #[test]
    fn nothing_recorded_and_no_agent_is_unknown() {
        let verdict = evaluate(
            None,
            None,
            None,
            0,
            Thresholds::for_interval(Duration::from_secs(60)),
        );
        assert_eq!(verdict.status, Status::Unknown);
        assert_eq!(verdict.status.code(), 3);
        assert!(
            verdict.line.contains("no agent running"),
            "{}",
            verdict.line
        );
    }

    #[test]
    fn a_first_cycle_in_progress_is_ok_until_it_takes_as_long_as_a_late_success() {
        let agent = LockHolder {
            pid: Some(4242),
            locked_unix_ms: 10 * MINUTE,
        };
        let at = |now: i64| {
            evaluate(
                None,
                None,
                Some(&agent),
                now,
                Thresholds::for_interval(Duration::from_secs(60)),
            )
        };
        let ok = at(10 * MINUTE + 12_000);
        assert_eq!(ok.status, Status::Ok);
        assert_eq!(
            ok.line,
            "DIALSYNC OK - first cycle running for 12s (pid 4242), nothing recorded yet | \
             last_success_age=U;180;600;0 first_cycle_age=12s;180;600;0"
        );
        assert_eq!(
            at(13 * MINUTE).status,
            Status::Ok,
            "exactly -w is not past it"
        );
        assert_eq!(at(13 * MINUTE + 1).status, Status::Warning);
        assert!(at(14 * MINUTE)
            .line
            .starts_with("DIALSYNC WARNING - first cycle running for 4m (pid 4242)"));
        assert_eq!(at(20 * MINUTE + 1).status, Status::Critical);
        // A lock file stamped ahead of this clock is "just started", not a panic.
        assert_eq!(at(9 * MINUTE).status, Status::Ok);
        let unnamed = LockHolder { pid: None, ..agent };
        let line = evaluate(
            None,
            None,
            Some(&unnamed),
            10 * MINUTE,
            Thresholds::for_interval(Duration::from_secs(60)),
        )
        .line;
        assert!(
            line.starts_with("DIALSYNC OK - first cycle running for 0s, nothing"),
            "{line}"
        );
    }
}
