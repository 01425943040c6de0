//! The steady state: the inputs of the last cycle that found the dial plan already as
//! desired, and what that cycle found.
//!
//! Resolving, compiling, planning and auditing are pure functions of the cycle's inputs: the
//! sources' answers, the dial plan as read, the configuration and the program. A cycle whose
//! inputs are those of the last steady cycle, byte for byte, would find the same nothing to
//! do and report the same findings, so it takes them from here instead. The store keeps the
//! two as opaque text; what they hold is the agent's business.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{sql_err, Store, StoreError};

/// The inputs of a steady cycle (a digest) and its findings (serialized by the agent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SteadyState {
    pub inputs: String,
    pub findings: String,
}

impl Store {
    /// The last steady cycle, unless a cycle since found something to do.
    pub fn steady_state(&self) -> Result<Option<SteadyState>, StoreError> {
        let path = &self.path;
        self.conn
            .query_row(
                "SELECT i.value, f.value FROM state_meta i, state_meta f
                 WHERE i.key = 'steady_inputs' AND f.key = 'steady_findings'",
                [],
                |row| {
                    Ok(SteadyState {
                        inputs: row.get(0)?,
                        findings: row.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(sql_err(path, "cannot read the steady state"))
    }

    /// Records `steady` as the last steady cycle, or forgets it (`None`): every cycle that
    /// computes does one or the other, so a stale steady state never outlives a change.
    pub fn set_steady_state(&mut self, steady: Option<&SteadyState>) -> Result<(), StoreError> {
        let Store { conn, path, .. } = self;
        let context = "cannot record the steady state";
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err(path, context))?;
        tx.execute(
            "DELETE FROM state_meta WHERE key IN ('steady_inputs', 'steady_findings')",
            [],
        )
        .map_err(sql_err(path, context))?;
        if let Some(steady) = steady {
            tx.execute(
                "INSERT INTO state_meta (key, value)
                 VALUES ('steady_inputs', ?1), ('steady_findings', ?2)",
                params![steady.inputs, steady.findings],
            )
            .map_err(sql_err(path, context))?;
        }
        tx.commit().map_err(sql_err(path, context))
    }
}
