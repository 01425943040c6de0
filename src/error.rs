//! How a failure should be handled, independent of what failed.
//!
//! Every library error says which of three things the caller should do, so the agent's retry,
//! skip and alarm logic is written once, against [`ErrorClass`], not once per error type.

/// What a failure means for the operation that met it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retrying later may succeed (connection refused, 5xx, device busy): retry with backoff.
    Transient,
    /// One item is bad (a number with letters, an invalid tag): skip it, report it with its
    /// reason, carry on with the rest.
    Item,
    /// Retrying cannot help until someone changes something (credentials, configuration, a file
    /// with the wrong format): stop the operation and report it loudly.
    Fatal,
}

/// Implemented by every library error.
pub trait Classify {
    fn class(&self) -> ErrorClass;
}

impl Classify for crate::number::NumberError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Item
    }
}

impl Classify for crate::dialplan::pattern::PatternError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Item
    }
}

impl Classify for crate::dialplan::rule::TagError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Item
    }
}

impl Classify for crate::dialplan::rule::RuleError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Item
    }
}

impl Classify for crate::store::StoreError {
    fn class(&self) -> ErrorClass {
        use crate::store::StoreError;
        use rusqlite::ErrorCode;
        match self {
            StoreError::Sqlite { source, .. } => match source.sqlite_error_code() {
                // Another process holds the lock, the disk hiccupped or filled up: the state
                // may be fine again by the next cycle.
                Some(
                    ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::DiskFull
                    | ErrorCode::OutOfMemory
                    | ErrorCode::OperationInterrupted
                    | ErrorCode::FileLockingProtocolFailed
                    | ErrorCode::SchemaChanged,
                ) => ErrorClass::Transient,
                // Not a database, damaged, read-only, permission refused, a constraint broken by
                // the caller's data: retrying the same thing cannot help.
                _ => ErrorClass::Fatal,
            },
            // One row of the file or one value of the caller's is bad; the rest is usable.
            StoreError::CorruptRow { .. }
            | StoreError::OutOfRange { .. }
            | StoreError::EmptyOp { .. } => ErrorClass::Item,
            // A directory that cannot be created (permissions, a file in the way, a read-only
            // mount), a foreign or newer database, a journal used out of order: an operator or
            // a developer must act first.
            StoreError::CreateDir { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::ForeignDatabase { .. }
            | StoreError::NoWal { .. }
            | StoreError::UnknownPlan { .. }
            | StoreError::PlanFinished { .. }
            | StoreError::UnknownOp { .. }
            | StoreError::Locked { .. }
            | StoreError::Lock { .. } => ErrorClass::Fatal,
        }
    }
}
