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

impl Classify for crate::source::file::FileError {
    fn class(&self) -> ErrorClass {
        use crate::source::file::FileError;
        match self {
            // The file may be mid-rewrite or on a slow mount: the next cycle tries again, and
            // meanwhile the source's last good snapshot stands in.
            FileError::Read { .. } => ErrorClass::Transient,
            FileError::Header { .. } => ErrorClass::Fatal,
        }
    }
}

impl Classify for crate::preview::PreviewError {
    fn class(&self) -> ErrorClass {
        use crate::preview::PreviewError;
        match self {
            PreviewError::File(e) => e.class(),
            PreviewError::Write(_) | PreviewError::Csv(_) => ErrorClass::Fatal,
        }
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

impl Classify for crate::sink::cli_script::ScriptError {
    fn class(&self) -> ErrorClass {
        // A script that breaks the dialect means the device's configuration (or the firmware's
        // dialect) is not what dialsync understands: any dial plan read from it could be
        // misread, and planning against a misread plan could delete routes that are in use.
        // Retrying the read returns the same text, so only a person can resolve it. (For the
        // emulator, a malformed incremental script is dialsync's own bug: fatal just the same.)
        ErrorClass::Fatal
    }
}

impl Classify for crate::sink::audiocodes::SinkError {
    fn class(&self) -> ErrorClass {
        use crate::sink::audiocodes::SinkError;
        match self {
            // The device is busy, restarting, upgrading or out of reach: the next cycle may
            // find it well, and no setting of dialsync's would change that.
            SinkError::Busy { .. }
            | SinkError::Server { .. }
            | SinkError::Http { .. }
            | SinkError::Upgrading { .. } => ErrorClass::Transient,
            // One rule the device refuses: quarantine it, apply the rest.
            SinkError::ScriptFailed { .. } => ErrorClass::Item,
            // Credentials, role, a missing dial plan, TLS or URL settings, a device script or
            // answer dialsync cannot read, a request refused outright, a journal left
            // unsettled, a plan that would write a row dialsync does not own (a bug): someone
            // must act before a retry can succeed.
            SinkError::Unauthorized
            | SinkError::Forbidden { .. }
            | SinkError::DialPlanMissing { .. }
            | SinkError::Tls { .. }
            | SinkError::BadUrl { .. }
            | SinkError::BadBatchSize
            | SinkError::Script(_)
            | SinkError::BadResponse { .. }
            | SinkError::Refused { .. }
            | SinkError::Unsettled { .. }
            | SinkError::Ownership(_) => ErrorClass::Fatal,
            SinkError::Store(e) => e.class(),
        }
    }
}

impl Classify for crate::source::secret::SecretError {
    fn class(&self) -> ErrorClass {
        // A missing, empty or too-open secret file stays so until the operator fixes it.
        ErrorClass::Fatal
    }
}

impl Classify for crate::source::tag::TemplateError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Fatal
    }
}

impl Classify for crate::source::SourceError {
    fn class(&self) -> ErrorClass {
        use crate::source::SourceError;
        match self {
            // The upstream is down, slow, overloaded or answered something half-sent: the next
            // cycle may fare better, and meanwhile the last good snapshot stands in.
            SourceError::Http { .. }
            | SourceError::Timeout { .. }
            | SourceError::Server { .. }
            | SourceError::BadBody { .. }
            | SourceError::Pagination { .. }
            | SourceError::EveryItemRejected { .. } => ErrorClass::Transient,
            // Settings, credentials, rights or the body cap: someone must act first.
            SourceError::BadUrl { .. }
            | SourceError::Client { .. }
            | SourceError::TooLarge { .. }
            | SourceError::Refused { .. }
            | SourceError::Unauthorized { .. }
            | SourceError::Config { .. }
            | SourceError::File { .. } => ErrorClass::Fatal,
        }
    }
}

impl Classify for crate::config::ConfigError {
    /// A configuration that cannot work needs an operator, whatever the detail.
    fn class(&self) -> ErrorClass {
        ErrorClass::Fatal
    }
}
