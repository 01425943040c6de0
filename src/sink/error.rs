//! Why writing a plan to its target failed, worded for the target in use, and what kind of
//! failure it is: worth waiting out (transient), one rule refused (item), or someone must act
//! (fatal).

use std::time::Duration;

use super::audiocodes::cli_script::ScriptError;
use crate::error::{Classify, ErrorClass};
use crate::net::client::ClientError;
use crate::net::reason::error_chain;
use crate::net::retry::GaveUp;
use crate::plan::ownership::OwnershipBreach;
use crate::store::{PlanId, StoreError};

/// Why talking to the sink's target (the SBC or Live Platform) failed. `what` in a variant
/// names the request and its target ("reading the Live Platform dial plan", "applying an
/// incremental script"), so a shared variant reads right for either.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("authentication refused: check sbc.username and sbc.password_file")]
    Unauthorized,
    #[error("user {user:?} lacks the Administrator role (the device answered 403 to a write)")]
    Forbidden { user: String },
    #[error("{target} has no dial plan named {name:?}; create it there first")]
    DialPlanMissing { target: &'static str, name: String },
    #[error("TLS configuration: {reason}")]
    Tls { reason: String },
    #[error("bad sbc.url {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("sbc.batch_size must be at least 1")]
    BadBatchSize,
    #[error("the device's configuration script cannot be read as dial plans: {0}")]
    Script(#[from] ScriptError),
    #[error("{what}: the answer is malformed: {reason}")]
    BadResponse { what: String, reason: String },
    #[error("{what}: refused with {status}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error(
        "{what}: the device stayed busy (409) for {attempts} {} over {:.1} s{}",
        if *.attempts == 1 { "attempt" } else { "attempts" },
        .waited.as_secs_f64(),
        asked_for(.asked)
    )]
    Busy {
        what: String,
        attempts: u32,
        waited: Duration,
        /// The SBC's last `Retry-After` when giving up: a wait past the retry budget.
        asked: Option<Duration>,
    },
    #[error("{what}: server error {status}: {body}")]
    Server {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{what}: {}", error_chain(.source))]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the device refused the script: {description}: {output}")]
    ScriptFailed { description: String, output: String },
    #[error(
        "a firmware upgrade is in progress on the SBC (upgradeStatus {status:?}): not writing"
    )]
    Upgrading { status: String },
    #[error(transparent)]
    Ownership(#[from] OwnershipBreach),
    #[error("journal plan {plan} is unfinished: settle it (settle_unfinished) before applying")]
    Unsettled { plan: PlanId },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Classify for SinkError {
    fn class(&self) -> ErrorClass {
        match self {
            // Busy, restarting, upgrading or out of reach: the next cycle may find it well,
            // and no setting of dialsync's would change that.
            SinkError::Busy { .. }
            | SinkError::Server { .. }
            | SinkError::Http { .. }
            | SinkError::Upgrading { .. } => ErrorClass::Transient,
            // One rule refused: quarantine it, apply the rest.
            SinkError::ScriptFailed { .. } => ErrorClass::Item,
            // Credentials, role, a missing dial plan, TLS or URL settings, a script or an
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

impl From<GaveUp<SinkError>> for SinkError {
    /// The error to give up with once a request's retry budget is spent. A busy SBC's error
    /// says how often and how long it was tried, and what it last asked for: "1 attempt" alone
    /// reads as if the agent never waited, when the SBC asked for longer than the budget.
    fn from(gave_up: GaveUp<SinkError>) -> SinkError {
        match gave_up {
            GaveUp::Exhausted {
                error: SinkError::Busy { what, .. },
                attempts,
                waited,
                asked,
            } => SinkError::Busy {
                what,
                attempts,
                waited,
                asked,
            },
            other => other.into_error(),
        }
    }
}

impl SinkError {
    /// A client that cannot be built, as the TLS settings to fix: `key` is the setting the
    /// client's failure points at (`sbc.ca_file`), which the operator looks for in the config.
    pub(super) fn client(key: &'static str) -> impl Fn(ClientError) -> SinkError {
        move |error| SinkError::Tls {
            reason: match error {
                ClientError::Build { .. } => error.to_string(),
                ClientError::CaFile { .. } | ClientError::NotPem { .. } => {
                    format!("{key}: {error}")
                }
            },
        }
    }
}

/// The end of a busy SBC's message when it asked to be retried later than the budget allows.
fn asked_for(asked: &Option<Duration>) -> String {
    match asked {
        Some(wait) => format!(
            " and asked to be retried in {} s, past the retry budget; the next cycle tries again",
            wait.as_secs()
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_device_given_up_on_says_how_long_it_was_waited_out() {
        let busy = SinkError::Busy {
            what: "saving the configuration".into(),
            attempts: 1,
            waited: Duration::ZERO,
            asked: None,
        };
        let error = SinkError::from(GaveUp::Exhausted {
            error: busy,
            attempts: 4,
            waited: Duration::from_secs(3),
            asked: Some(Duration::from_secs(3600)),
        });
        let text = error.to_string();
        assert!(text.contains("for 4 attempts over 3.0 s"), "{text}");
        assert!(text.contains("retried in 3600 s"), "{text}");
        let other = SinkError::from(GaveUp::Final(SinkError::Unauthorized));
        assert!(matches!(other, SinkError::Unauthorized));
    }
}
