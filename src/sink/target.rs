//! What differs between the places a plan lands — the SBC's device REST API and Live
//! Platform — and nothing else: reading the dial plan, sending one batch of ops, telling
//! whether a read shows an op applied, refusing to write in a state the target forbids, and
//! finishing (the SBC saves to flash). Everything that makes writing safe — the journal,
//! batching, retries, verification, quarantine, make-before-break hold-backs, settling after
//! a crash — is written once, in [`applier`](super::applier), over this trait, which knows
//! nothing of it.

use std::time::Duration;

use super::dial_plan::DeviceDialPlan;
use super::error::SinkError;
use super::write_settings::WriteSettings;
use crate::net::retry;
use crate::plan::Op;

/// What the target said about one batch it received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Applied, as the target states.
    Applied,
    /// Refused: nothing of the batch applied. The target's reason, in its words.
    Refused(String),
    /// Received, but the target did not say what became of it (the SBC's answer without a
    /// `status`, as in the vendor's own example): only a read can tell. The target's output.
    Unstated(String),
}

/// One request's failure, by what it says about whether the request acted.
#[derive(Debug)]
pub enum Attempt {
    /// Certainly not acted on (busy, rate limited, a connection never made): send again after
    /// the wait the target asked for, if any.
    NotApplied(SinkError, Option<Duration>),
    /// May or may not have acted (a timeout, a dropped connection, a 5xx to a write): read
    /// before sending anything again.
    Unknown(SinkError),
    /// Retrying cannot help (credentials, a request refused outright).
    Final(SinkError),
}

impl Attempt {
    /// The failure as the one retry loop ([`crate::net::retry`]) takes it. An unknown outcome
    /// may pass too, but waits the backoff's own time: whoever retries it reads the target
    /// back first, or sends something that is safe twice.
    pub fn retried(self) -> retry::Attempt<SinkError> {
        match self {
            Attempt::NotApplied(error, retry_after) => retry::Attempt::Again { error, retry_after },
            Attempt::Unknown(error) => retry::Attempt::Again {
                error,
                retry_after: None,
            },
            Attempt::Final(error) => retry::Attempt::Stop(error),
        }
    }
}

/// A place a plan lands. Implemented by the SBC sink and the Live Platform sink.
#[allow(async_fn_in_trait)] // Used generically, never as a trait object: no Send bound needed.
pub trait Target {
    /// The target, as messages name it ("the SBC", "Live Platform").
    fn target_name(&self) -> &'static str;
    /// Which rules are ours, batch size, retries.
    fn writes(&self) -> &WriteSettings;
    /// HTTP requests made so far, for the apply report.
    fn requests(&self) -> usize;

    /// The dial plan as it is now, owned and foreign rows alike.
    async fn read(&self) -> Result<DeviceDialPlan, SinkError>;

    /// Refuses to write in a state the target forbids, as `read` shows it (the SBC during a
    /// firmware upgrade).
    fn writable(&self, read: &DeviceDialPlan) -> Result<(), SinkError> {
        let _ = read;
        Ok(())
    }

    /// One request carrying `ops`, in order, against the dial plan read as `read`.
    async fn send(&self, ops: &[&Op], read: &DeviceDialPlan) -> Result<Answer, Attempt>;

    /// Whether `now` shows `op` applied. `planned_from` is the read the plan was made from,
    /// when known (it is not when settling a journal a crash left).
    fn shows(&self, op: &Op, now: &DeviceDialPlan, planned_from: Option<&DeviceDialPlan>) -> bool;

    /// Called once the plan's ops are settled (`wrote`: the plan had ops), or with nothing to
    /// do: the SBC persists its configuration. Whether it saved.
    async fn finish(&self, read: &DeviceDialPlan, wrote: bool) -> Result<bool, SinkError> {
        let _ = (read, wrote);
        Ok(false)
    }
}
