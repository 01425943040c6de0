//! One sync cycle, exactly as DESIGN.md §1 lists it: fetch every source in parallel, stand in
//! the last good snapshot for a source that failed, resolve, compile, read the SBC (refreshing
//! the mirror), plan, gate, apply, record.
//!
//! Every cycle reads everything anew and decides from what it read (level-triggered), so
//! whatever a crash, a hand edit on the SBC or a failed apply left behind is simply the next
//! cycle's starting point. (What it read being, byte for byte, what the last steady cycle
//! read, it takes that cycle's findings instead of recomputing them: `steady`.) The cycle
//! never returns an error: whatever happened is a [`CycleReport`], recorded in the state
//! database for `check`, `status` and `history`, because an operator must be able to read why
//! a cycle failed without the logs.
//!
//! - `setup`: the [`Agent`], what it is built from and how it is rebuilt on a reload;
//! - `mode`: what a cycle may write;
//! - `cycle`: the cycle itself, phase by phase;
//! - `fetch`: its first phase, every source at once with last good snapshots standing in;
//! - `audit`: the audit of the dial plan the cycle leaves, against what it resolved;
//! - `steady`: when a cycle's inputs are those of the last cycle that changed nothing;
//! - `report`: what a cycle did, as a person, `/status` and the state database read it.

mod audit;
mod cycle;
mod fetch;
mod mode;
mod report;
mod setup;
mod steady;

pub use audit::{CycleAudit, AUDIT_EXAMPLES};
pub use mode::Mode;
pub use report::{CycleError, CycleReport, Outcome, SourceReport, SourceState};
pub use setup::{Agent, AgentError};
