//! Cycle history: one record per cycle, for `/status`, `/metrics`, `/readyz`, `check` and
//! `history`.
//!
//! `check` runs as a separate process (often from a timer, possibly while `sync` runs from
//! another), so what it reports must come from here rather than from the agent's memory.

use rusqlite::{params, TransactionBehavior};

use super::{corrupt, int, opt_text, sql_err, text, to_sql_int, uint, Store, StoreError};

/// The outcomes the agent records. The store accepts any non-empty text; only
/// [`outcome::CONVERGED`] has a meaning here (it is what [`Store::last_success`] looks for).
pub mod outcome {
    /// The SBC now holds the desired plan (possibly after applying changes).
    pub const CONVERGED: &str = "converged";
    /// A dry run found changes to make; nothing was written.
    pub const PLANNED: &str = "planned";
    /// The safety gate or the capacity limit stopped the plan; nothing was written.
    pub const BLOCKED: &str = "blocked";
    /// The cycle stopped on an error.
    pub const FAILED: &str = "failed";
}

/// A recorded cycle.
pub type CycleId = i64;

/// How long one phase of a cycle took (`fetch`, `resolve`, `compile`, `read`, `plan`,
/// `apply`: names are the agent's choice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseTiming {
    pub phase: String,
    pub duration_ms: u64,
}

/// One cycle as the agent reports it. Times are milliseconds since the Unix epoch, from the
/// caller's clock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CycleRecord {
    pub started_unix_ms: i64,
    pub finished_unix_ms: i64,
    /// One of [`outcome`]'s constants, or another non-empty word.
    pub outcome: String,
    pub adds: u64,
    pub modifies: u64,
    pub deletes: u64,
    /// Upstream items refused (invalid numbers, tags...).
    pub rejected: u64,
    /// Partial overlaps settled by source order.
    pub conflicts: u64,
    /// In the order the phases ran.
    pub phases: Vec<PhaseTiming>,
    /// The plan's checksum, when a plan was computed (a blocked plan is applied by it).
    pub plan_checksum: Option<String>,
    pub error: Option<String>,
    /// The cycle stopped on an error someone must act on (credentials, a missing dial plan).
    pub fatal: bool,
    /// Rules dialsync owned on the SBC at the end of the cycle (as last read or applied).
    pub owned_rules: u64,
    /// Sources that failed this cycle (their last good snapshot stood in, if any).
    pub source_failures: u64,
    /// What the audit after the cycle found; `None` when it did not audit.
    pub audit: Option<AuditRecord>,
    /// What lies behind the counts, at most [`MAX_ISSUES_PER_CYCLE`] of them. Filled only by
    /// [`Store::cycle_issues`]; the history list leaves it empty.
    pub issues: Vec<CycleIssue>,
}

/// What the audit after a cycle found, in numbers (see `crate::audit` for the verdicts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditRecord {
    pub routed: u64,
    pub misrouted: u64,
    pub shadowed: u64,
    pub unrouted: u64,
    pub unchecked: u64,
    /// Owned rules routing numbers no source assigns.
    pub stray_rules: u64,
}

/// The most issues kept per cycle: an upstream that turns to garbage can reject a million
/// items, and the counts already say how many; the first ones say why.
pub const MAX_ISSUES_PER_CYCLE: usize = 10_000;

/// What an issue is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueKind {
    /// An upstream item refused (invalid number, tag...).
    Rejected,
    /// A partial overlap settled by source order.
    Conflict,
    /// A desired rule not applied because a rule dialsync does not own has its prefix.
    Foreign,
    /// A source that failed this cycle.
    Source,
    /// Why the plan was blocked.
    Blocked,
    /// An op the SBC refused, set aside.
    Quarantined,
    /// A row of the dial plan dialsync cannot read: left alone, its index never written.
    Unreadable,
}

impl IssueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueKind::Rejected => "rejected",
            IssueKind::Conflict => "conflict",
            IssueKind::Foreign => "foreign",
            IssueKind::Source => "source",
            IssueKind::Blocked => "blocked",
            IssueKind::Quarantined => "quarantined",
            IssueKind::Unreadable => "unreadable",
        }
    }

    fn parse(text: &str) -> Option<IssueKind> {
        [
            IssueKind::Rejected,
            IssueKind::Conflict,
            IssueKind::Foreign,
            IssueKind::Source,
            IssueKind::Blocked,
            IssueKind::Quarantined,
            IssueKind::Unreadable,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// One item behind a cycle's counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CycleIssue {
    pub kind: IssueKind,
    /// The source concerned, when there is one.
    pub source: Option<String>,
    /// Which item: `line 7`, a prefix, a rule index.
    pub item: String,
    pub detail: String,
}

impl Store {
    /// Records a cycle. "Newest" in [`Store::history`] means most recently recorded, not
    /// latest start: a clock stepped backwards must not reorder the history.
    pub fn record_cycle(&mut self, record: &CycleRecord) -> Result<CycleId, StoreError> {
        let Store { conn, path, .. } = self;
        let count = |what, value| to_sql_int(path, what, value);
        let counts = [
            count("adds", record.adds)?,
            count("modifies", record.modifies)?,
            count("deletes", record.deletes)?,
            count("rejected", record.rejected)?,
            count("conflicts", record.conflicts)?,
            count("owned_rules", record.owned_rules)?,
            count("source_failures", record.source_failures)?,
        ];
        let audit = match &record.audit {
            None => None,
            Some(a) => Some([
                count("audit_routed", a.routed)?,
                count("audit_misrouted", a.misrouted)?,
                count("audit_shadowed", a.shadowed)?,
                count("audit_unrouted", a.unrouted)?,
                count("audit_unchecked", a.unchecked)?,
                count("audit_stray_rules", a.stray_rules)?,
            ]),
        };
        let audit_column = |i: usize| audit.map(|a| a[i]);
        let durations = record
            .phases
            .iter()
            .map(|phase| count("phase duration", phase.duration_ms))
            .collect::<Result<Vec<_>, _>>()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err(path, "cannot begin recording a cycle"))?;
        tx.execute(
            "INSERT INTO cycle (started_unix_ms, finished_unix_ms, outcome, adds, modifies,
                                deletes, rejected, conflicts, plan_checksum, error, fatal,
                                owned_rules, source_failures, audit_routed, audit_misrouted,
                                audit_shadowed, audit_unrouted, audit_unchecked,
                                audit_stray_rules)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19)",
            params![
                record.started_unix_ms,
                record.finished_unix_ms,
                record.outcome,
                counts[0],
                counts[1],
                counts[2],
                counts[3],
                counts[4],
                record.plan_checksum,
                record.error,
                record.fatal,
                counts[5],
                counts[6],
                audit_column(0),
                audit_column(1),
                audit_column(2),
                audit_column(3),
                audit_column(4),
                audit_column(5)
            ],
        )
        .map_err(sql_err(path, "cannot record the cycle"))?;
        let id = tx.last_insert_rowid();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO cycle_phase (cycle_id, position, phase, duration_ms)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql_err(path, "cannot record the cycle's phases"))?;
            for (position, (phase, duration)) in record.phases.iter().zip(durations).enumerate() {
                insert
                    .execute(params![id, position as i64, phase.phase, duration])
                    .map_err(sql_err(path, "cannot record the cycle's phases"))?;
            }
        }
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO cycle_issue (cycle_id, seq, kind, source, item, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql_err(path, "cannot record the cycle's issues"))?;
            for (seq, issue) in record.issues.iter().take(MAX_ISSUES_PER_CYCLE).enumerate() {
                insert
                    .execute(params![
                        id,
                        seq as i64,
                        issue.kind.as_str(),
                        issue.source,
                        issue.item,
                        issue.detail
                    ])
                    .map_err(sql_err(path, "cannot record the cycle's issues"))?;
            }
        }
        tx.commit()
            .map_err(sql_err(path, "cannot commit the cycle"))?;
        Ok(id)
    }

    /// The newest recorded cycle with its issues, if any cycle was recorded.
    pub fn last_cycle(&self) -> Result<Option<CycleRecord>, StoreError> {
        let Some((id, mut record)) = self.cycles_with_ids("ORDER BY id DESC LIMIT 1", [])?.pop()
        else {
            return Ok(None);
        };
        record.issues = self.cycle_issues(id)?;
        Ok(Some(record))
    }

    fn cycle_issues(&self, id: CycleId) -> Result<Vec<CycleIssue>, StoreError> {
        let path = &self.path;
        let mut select = self
            .conn
            .prepare_cached(
                "SELECT kind, source, item, detail FROM cycle_issue WHERE cycle_id = ?1
                 ORDER BY seq",
            )
            .map_err(sql_err(path, "cannot read the cycle's issues"))?;
        let mut rows = select
            .query([id])
            .map_err(sql_err(path, "cannot read the cycle's issues"))?;
        let mut issues = Vec::new();
        while let Some(row) = rows
            .next()
            .map_err(sql_err(path, "cannot read the cycle's issues"))?
        {
            let issue = (|| {
                let kind = text(row, 0)?;
                Ok::<_, String>(CycleIssue {
                    kind: IssueKind::parse(kind).ok_or_else(|| format!("unknown kind {kind:?}"))?,
                    source: opt_text(row, 1)?.map(str::to_string),
                    item: text(row, 2)?.to_string(),
                    detail: text(row, 3)?.to_string(),
                })
            })()
            .map_err(|reason| corrupt(path, "cycle_issue", format!("cycle {id}"), reason))?;
            issues.push(issue);
        }
        Ok(issues)
    }

    /// The newest `limit` cycles, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<CycleRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.cycles("ORDER BY id DESC LIMIT ?1", [limit])
    }

    /// The newest cycle whose outcome is [`outcome::CONVERGED`].
    pub fn last_success(&self) -> Result<Option<CycleRecord>, StoreError> {
        Ok(self
            .cycles(
                "WHERE outcome = ?1 ORDER BY id DESC LIMIT 1",
                [outcome::CONVERGED],
            )?
            .pop())
    }

    /// Deletes all but the newest `keep` cycles. Returns how many went.
    pub fn prune_history(&mut self, keep: usize) -> Result<usize, StoreError> {
        let Store { conn, path, .. } = self;
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err(path, "cannot begin pruning the history"))?;
        let doomed = "SELECT id FROM cycle ORDER BY id DESC LIMIT -1 OFFSET ?1";
        for child in ["cycle_phase", "cycle_issue"] {
            tx.execute(
                &format!("DELETE FROM {child} WHERE cycle_id IN ({doomed})"),
                [keep],
            )
            .map_err(sql_err(path, "cannot prune the history"))?;
        }
        let deleted = tx
            .execute(&format!("DELETE FROM cycle WHERE id IN ({doomed})"), [keep])
            .map_err(sql_err(path, "cannot prune the history"))?;
        tx.commit()
            .map_err(sql_err(path, "cannot commit pruning the history"))?;
        Ok(deleted)
    }

    fn cycles(
        &self,
        clause: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<CycleRecord>, StoreError> {
        Ok(self
            .cycles_with_ids(clause, args)?
            .into_iter()
            .map(|(_, record)| record)
            .collect())
    }

    fn cycles_with_ids(
        &self,
        clause: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<(CycleId, CycleRecord)>, StoreError> {
        let path = &self.path;
        let sql = format!(
            "SELECT id, started_unix_ms, finished_unix_ms, outcome, adds, modifies, deletes,
                    rejected, conflicts, plan_checksum, error, fatal, owned_rules,
                    source_failures, audit_routed, audit_misrouted, audit_shadowed,
                    audit_unrouted, audit_unchecked, audit_stray_rules
             FROM cycle {clause}"
        );
        let mut select = self
            .conn
            .prepare_cached(&sql)
            .map_err(sql_err(path, "cannot read the history"))?;
        let mut rows = select
            .query(args)
            .map_err(sql_err(path, "cannot read the history"))?;
        let mut records = Vec::new();
        while let Some(row) = rows
            .next()
            .map_err(sql_err(path, "cannot read the history"))?
        {
            let id = row
                .get::<_, i64>(0)
                .map_err(sql_err(path, "cannot read the history"))?;
            let record = decode(row).map_err(|reason| corrupt(path, "cycle", id, reason))?;
            records.push((id, record));
        }
        drop(rows);
        let mut phases = self
            .conn
            .prepare_cached(
                "SELECT phase, duration_ms FROM cycle_phase WHERE cycle_id = ?1 ORDER BY position",
            )
            .map_err(sql_err(path, "cannot read the cycle phases"))?;
        let mut out = Vec::with_capacity(records.len());
        for (id, mut record) in records {
            let mut rows = phases
                .query([id])
                .map_err(sql_err(path, "cannot read the cycle phases"))?;
            while let Some(row) = rows
                .next()
                .map_err(sql_err(path, "cannot read the cycle phases"))?
            {
                let phase = text(row, 0)
                    .and_then(|phase| Ok((phase.to_string(), uint(row, 1, "duration_ms")?)))
                    .map_err(|reason| {
                        corrupt(path, "cycle_phase", format!("cycle {id}"), reason)
                    })?;
                record.phases.push(PhaseTiming {
                    phase: phase.0,
                    duration_ms: phase.1,
                });
            }
            out.push((id, record));
        }
        Ok(out)
    }
}

fn decode(row: &rusqlite::Row<'_>) -> Result<CycleRecord, String> {
    Ok(CycleRecord {
        started_unix_ms: int(row, 1)?,
        finished_unix_ms: int(row, 2)?,
        outcome: text(row, 3)?.to_string(),
        adds: uint(row, 4, "adds")?,
        modifies: uint(row, 5, "modifies")?,
        deletes: uint(row, 6, "deletes")?,
        rejected: uint(row, 7, "rejected")?,
        conflicts: uint(row, 8, "conflicts")?,
        phases: Vec::new(),
        plan_checksum: opt_text(row, 9)?.map(str::to_string),
        error: opt_text(row, 10)?.map(str::to_string),
        fatal: int(row, 11)? != 0,
        owned_rules: uint(row, 12, "owned_rules")?,
        source_failures: uint(row, 13, "source_failures")?,
        audit: decode_audit(row)?,
        issues: Vec::new(),
    })
}

/// The audit columns: all NULL (no audit) or all counts.
fn decode_audit(row: &rusqlite::Row<'_>) -> Result<Option<AuditRecord>, String> {
    let names = [
        "audit_routed",
        "audit_misrouted",
        "audit_shadowed",
        "audit_unrouted",
        "audit_unchecked",
        "audit_stray_rules",
    ];
    let mut values = [0u64; 6];
    for (i, name) in names.iter().enumerate() {
        let value: Option<i64> = row.get(14 + i).map_err(|e| format!("{name}: {e}"))?;
        match value {
            None if i == 0 => return Ok(None),
            None => return Err(format!("{name} is NULL while audit_routed is not")),
            Some(v) => values[i] = u64::try_from(v).map_err(|_| format!("{name} is {v}"))?,
        }
    }
    let [routed, misrouted, shadowed, unrouted, unchecked, stray_rules] = values;
    Ok(Some(AuditRecord {
        routed,
        misrouted,
        shadowed,
        unrouted,
        unchecked,
        stray_rules,
    }))
}
