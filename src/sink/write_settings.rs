//! What every sink's settings say about writing, whatever the target: which rules are ours,
//! how many ops go in one request, and how long one request may be retried. Each target's
//! configuration holds one, with the target's own defaults.

use std::time::Duration;

use crate::net::backoff::Backoff;

/// How a sink writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteSettings {
    /// The Name marking the rules dialsync owns (`dialplan.rule_name`).
    pub rule_name: String,
    /// Whether a plan may take over a foreign rule whose prefix it wants
    /// (`dialplan.adopt_foreign`): the one write to a row not ours the sink lets through.
    pub adopt_foreign: bool,
    /// Ops per request (`sbc.batch_size`); a Live Platform modify counts once though it is two
    /// entries of its PATCH.
    pub batch_size: usize,
    /// Per HTTP request (`sbc.timeout`).
    pub timeout: Duration,
    /// The most time spent retrying one request (a batch, a read, the save) before giving up
    /// with a transient error; the next cycle starts over.
    pub retry_budget: Duration,
    /// The first backoff delay; it doubles per attempt up to `backoff_max`, with jitter.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl WriteSettings {
    /// A target's defaults: dialsync's rule name, no takeovers, 30 s per request, and the
    /// target's own batch size and retries (`backoff` from its first delay to its cap).
    pub fn defaults(
        batch_size: usize,
        retry_budget: Duration,
        backoff: (Duration, Duration),
    ) -> WriteSettings {
        WriteSettings {
            rule_name: "dialsync".into(),
            adopt_foreign: false,
            batch_size,
            timeout: Duration::from_secs(30),
            retry_budget,
            backoff_initial: backoff.0,
            backoff_max: backoff.1,
        }
    }

    /// A fresh retry budget for one request.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.backoff_initial, self.backoff_max, self.retry_budget)
    }
}
