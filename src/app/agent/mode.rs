//! What a cycle may write to the SBC: the one choice the callers of a cycle make (the service,
//! `sync`, `plan`, `apply --force`).

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
