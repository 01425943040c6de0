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
}

impl Store {
    /// Records a cycle. "Newest" in [`Store::history`] means most recently recorded, not
    /// latest start: a clock stepped backwards must not reorder the history.
    pub fn record_cycle(&mut self, record: &CycleRecord) -> Result<CycleId, StoreError> {
        let Store { conn, path } = self;
        let count = |what, value| to_sql_int(path, what, value);
        let counts = [
            count("adds", record.adds)?,
            count("modifies", record.modifies)?,
            count("deletes", record.deletes)?,
            count("rejected", record.rejected)?,
            count("conflicts", record.conflicts)?,
        ];
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
                                deletes, rejected, conflicts, plan_checksum, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
                record.error
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
        tx.commit()
            .map_err(sql_err(path, "cannot commit the cycle"))?;
        Ok(id)
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
        let Store { conn, path } = self;
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err(path, "cannot begin pruning the history"))?;
        let doomed = "SELECT id FROM cycle ORDER BY id DESC LIMIT -1 OFFSET ?1";
        tx.execute(
            &format!("DELETE FROM cycle_phase WHERE cycle_id IN ({doomed})"),
            [keep],
        )
        .map_err(sql_err(path, "cannot prune the history"))?;
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
        let path = &self.path;
        let sql = format!(
            "SELECT id, started_unix_ms, finished_unix_ms, outcome, adds, modifies, deletes,
                    rejected, conflicts, plan_checksum, error
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
            out.push(record);
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
    })
}
