//! What the agent publishes for the admin port after every cycle, and all that `/status`,
//! `/metrics` and `/readyz` read: a plain, serializable model that holds no secret by
//! construction.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::audit::AuditCounts;

use crate::store;

/// How many rejected items, conflicts or foreign collisions `/status` lists. The totals
/// still count all of them; an upstream that turns to garbage can reject a million items,
/// and the first hundred already say why.
pub const MAX_LISTED: usize = 100;

/// Everything `/status`, `/metrics` and `/readyz` show, as the agent last published it.
///
/// `Status::default()` means "no configuration loaded yet": its `interval_ms` is 0, which a
/// loaded configuration never has (the config refuses a zero interval), and `/readyz` reports
/// exactly that. Build a real one with [`Status::new`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct Status {
    /// The dialsync version serving this (`CARGO_PKG_VERSION`).
    pub version: String,
    pub config_path: String,
    /// `agent.interval` in milliseconds (the config accepts sub-second durations, so seconds
    /// would round some of them to zero).
    pub interval_ms: u64,
    pub dry_run: bool,
    /// `agent.policy` as written in the config: `sync`, `upsert-only` or `create-only`.
    pub policy: String,
    /// A cycle is in progress now.
    pub cycle_running: bool,
    /// When the next cycle is due, if the agent has scheduled one.
    pub next_cycle_unix_ms: Option<i64>,
    /// The most recently finished cycle, whatever its outcome.
    pub last_cycle: Option<CycleStatus>,
    /// When the last cycle that converged finished.
    pub last_success_unix_ms: Option<i64>,
    /// One entry per configured source, in config order.
    pub sources: Vec<SourceStatus>,
    pub rules: RuleCounts,
    /// The plan the safety gate or the capacity limit stopped in the last cycle, if any.
    pub blocked: Option<BlockedPlan>,
    /// Upstream items refused in the last cycle: at most [`MAX_LISTED`] (see [`capped`]).
    pub rejected: Vec<ItemIssue>,
    /// How many upstream items the last cycle refused in all.
    pub rejected_total: u64,
    /// Partial overlaps settled by source order in the last cycle: at most [`MAX_LISTED`].
    pub conflicts: Vec<String>,
    pub conflicts_total: u64,
    /// Desired rules not applied in the last cycle because a rule dialsync does not own has
    /// the same prefix: at most [`MAX_LISTED`].
    pub foreign_collisions: Vec<String>,
    pub foreign_collisions_total: u64,
    /// Rows of the dial plan the last cycle could not read (`row N: why`): left alone, their
    /// indexes never written, at most [`MAX_LISTED`].
    pub unreadable_rows: Vec<String>,
    pub unreadable_rows_total: u64,
    /// What the audit after the last cycle that read the SBC found; `None` before one has.
    pub audit: Option<AuditStatus>,
    /// Counters since this process started.
    pub totals: Totals,
    /// What `/lookup` answers from: the state after the last cycle, `None` before the first.
    /// Shared, not copied: every request clones the status.
    #[serde(skip)]
    pub lookup: Option<std::sync::Arc<crate::app::lookup::LookupState>>,
}

impl Status {
    /// A status for a freshly loaded configuration, before any cycle: the fields the config
    /// decides are set, the rest are empty.
    pub fn new(
        config_path: impl Into<String>,
        interval: Duration,
        dry_run: bool,
        policy: impl Into<String>,
    ) -> Self {
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_path: config_path.into(),
            // A 584-million-year interval saturates rather than wraps.
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            dry_run,
            policy: policy.into(),
            ..Status::default()
        }
    }
}

/// One finished cycle.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CycleStatus {
    pub started_unix_ms: i64,
    pub finished_unix_ms: i64,
    pub duration_ms: u64,
    pub outcome: CycleOutcome,
    /// The plan's operation counts. They were applied when the outcome is `converged` and the
    /// agent is not in dry-run mode; for a blocked plan they are what it would have done.
    pub adds: u64,
    pub modifies: u64,
    pub deletes: u64,
    /// The checksum of the plan, when one was computed (`apply --force --checksum` takes it).
    pub plan_checksum: Option<String>,
    /// Why the cycle failed, for `failed`.
    pub error: Option<String>,
}

/// How a cycle ended. Serialized as the same words the store records ([`store::outcome`]),
/// so `/status` and `dialsync history` say the same thing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CycleOutcome {
    /// The SBC holds the desired plan (possibly after applying changes).
    #[default]
    Converged,
    /// A dry run found changes to make; nothing was written.
    Planned,
    /// The safety gate or the capacity limit stopped the plan; nothing was written.
    Blocked,
    /// The cycle stopped on an error.
    Failed,
}

impl CycleOutcome {
    /// The word used in JSON and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            CycleOutcome::Converged => store::outcome::CONVERGED,
            CycleOutcome::Planned => store::outcome::PLANNED,
            CycleOutcome::Blocked => store::outcome::BLOCKED,
            CycleOutcome::Failed => store::outcome::FAILED,
        }
    }
}

/// One configured source as the last cycle saw it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceStatus {
    /// The source's `name` from the config (unique there).
    pub name: String,
    /// The source's `kind`: `fusion`, `apio`, `livecloud`, `file`.
    pub kind: String,
    pub state: SourceState,
    /// When the source last answered in full, in seconds since the Unix epoch (the unit the
    /// store's snapshots use).
    pub last_good_fetch_unix: Option<i64>,
    /// Entries the source contributed to the last cycle (from its snapshot when stale).
    pub entries: u64,
    /// Items of this source refused in the last cycle.
    pub rejected: u64,
    /// Why the last fetch failed, when it did.
    pub last_error: Option<String>,
}

/// What the last cycle got from a source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// Not fetched yet in this process (no cycle has finished).
    #[default]
    Pending,
    /// Fetched in full.
    Ok,
    /// The fetch failed; the last good snapshot stood in.
    Stale,
    /// The fetch failed and there was no snapshot to stand in.
    Failed,
    /// It answered with nothing while its last snapshot was not empty: the plan is blocked.
    Emptied,
}

/// Rule counts on the SBC and in the desired plan, as of the last cycle.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleCounts {
    /// Rules of the dial plan whose Name is ours.
    pub owned: u64,
    /// Rules of the dial plan dialsync does not own (never touched).
    pub foreign: u64,
    /// Rules the desired state compiles to.
    pub desired: u64,
}

/// The audit of the dial plan after a cycle (`dialsync audit` tells the whole of it): how
/// many numbers the sources assign are routed to their tag, and how many are not.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditStatus {
    /// The counts by verdict, as the audit gives them (field by field in the JSON).
    #[serde(flatten)]
    pub counts: AuditCounts,
    /// Findings (runs of numbers with one verdict and rule) in all.
    pub findings: u64,
    /// The first few findings, in words.
    pub examples: Vec<String>,
    pub duration_ms: u64,
}

/// A plan the safety gate or the capacity limit stopped.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BlockedPlan {
    /// Each reason in words, such as "deletes 40 % of 120 owned rules (limit 30 %)".
    pub reasons: Vec<String>,
    /// What `dialsync apply --force --checksum` needs to apply exactly this plan.
    pub checksum: String,
    pub adds: u64,
    pub modifies: u64,
    pub deletes: u64,
}

/// One upstream item refused, and why.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ItemIssue {
    pub source: String,
    /// The item as the source identifies it (a number, a range, a row).
    pub item: String,
    pub reason: String,
}

/// Counters since the process started.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Cycles finished, whatever their outcome.
    pub cycles: u64,
    /// Cycles that ended `failed`.
    pub cycles_failed: u64,
    /// Operations written to the SBC.
    pub ops_applied: OpCounts,
    /// Failed fetches, by source name.
    pub source_fetch_errors: BTreeMap<String, u64>,
}

/// Operation counts by kind.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OpCounts {
    pub add: u64,
    pub modify: u64,
    pub delete: u64,
}

/// The first [`MAX_LISTED`] items and the count of all of them: how the agent fills a list
/// of [`Status`] and its `_total` together, so the two cannot disagree.
pub fn capped<T>(items: impl IntoIterator<Item = T>) -> (Vec<T>, u64) {
    let mut listed = Vec::new();
    let mut total: u64 = 0;
    for item in items {
        if listed.len() < MAX_LISTED {
            listed.push(item);
        }
        total = total.saturating_add(1);
    }
    (listed, total)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A status as a freshly loaded configuration publishes it; the readiness tests use it too.
    pub(in crate::app::admin) fn loaded() -> Status {
        Status::new(
            "/etc/dialsync/dialsync.toml",
            Duration::from_secs(60),
            false,
            "sync",
        )
    }

    #[test]
    fn capped_lists_the_first_hundred_and_counts_all() {
        let (listed, total) = capped(0..250);
        assert_eq!(listed.len(), MAX_LISTED);
        assert_eq!(listed[99], 99);
        assert_eq!(total, 250);
        let (listed, total) = capped(Vec::<u8>::new());
        assert!(listed.is_empty());
        assert_eq!(total, 0);
    }

    #[test]
    fn status_serializes_enums_as_words() {
        let mut status = loaded();
        status.last_cycle = Some(CycleStatus {
            outcome: CycleOutcome::Blocked,
            ..CycleStatus::default()
        });
        status.sources.push(SourceStatus {
            name: "fusion".into(),
            state: SourceState::Stale,
            ..SourceStatus::default()
        });
        let json = serde_json::to_value(&status).expect("serializes");
        assert_eq!(json["last_cycle"]["outcome"], "blocked");
        assert_eq!(json["sources"][0]["state"], "stale");
        assert_eq!(json["interval_ms"], 60_000);
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        // serde's words and the store's words must stay the same.
        for outcome in [
            CycleOutcome::Converged,
            CycleOutcome::Blocked,
            CycleOutcome::Failed,
        ] {
            assert_eq!(
                serde_json::to_value(outcome).expect("serializes"),
                outcome.as_str()
            );
        }
    }
}
