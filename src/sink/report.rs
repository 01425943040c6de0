//! What applying a plan, or settling a journal a crash left, did: the counts the agent
//! records and the operator reads, the same whichever target took the plan.

use crate::plan::Op;
use crate::store::PlanId;

/// What an apply did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Ops the target confirmed.
    pub applied: usize,
    /// Ops the target refused one by one, or held back because they depend on a refused one,
    /// with the reason: skipped, the rest went on.
    pub quarantined: Vec<(Op, String)>,
    /// HTTP requests made (retries, verification reads and the save included).
    pub requests: usize,
    /// Batches planned (each at most `batch_size` ops).
    pub batches: usize,
    pub saved: bool,
    /// A stop was requested between batches: some ops were not sent.
    pub stopped: bool,
}

/// What settling an unfinished journal found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettleReport {
    pub plan: PlanId,
    /// Ops already confirmed before the crash.
    pub already_done: usize,
    /// Ops in flight or pending at the crash that the target shows applied: now done.
    pub confirmed: usize,
    /// Ops whose effect the target does not show: left to the next cycle's fresh plan.
    pub not_applied: usize,
    /// Ops refused before the crash.
    pub failed: usize,
}
