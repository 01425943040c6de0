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
