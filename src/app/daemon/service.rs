//! The contract between the service loop and what it drives: why a cycle runs, what it is
//! handed, what it reports back, and the [`Service`] trait the agent implements (and tests
//! fake).

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use super::shutdown::Shutdown;
use super::watchdog::Watchdog;

/// Why a cycle runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CycleReason {
    /// The first cycle, right after start.
    Startup,
    /// The interval elapsed.
    Scheduled,
    /// SIGUSR1, `POST /sync`, a reload: who asked.
    Requested(&'static str),
}

impl fmt::Display for CycleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CycleReason::Startup => f.write_str("startup"),
            CycleReason::Scheduled => f.write_str("scheduled"),
            CycleReason::Requested(who) => f.write_str(who),
        }
    }
}

/// What a cycle gets besides its config.
#[derive(Clone, Debug)]
pub struct CycleContext {
    pub reason: CycleReason,
    pub shutdown: Shutdown,
    pub watchdog: Watchdog,
}

/// How a cycle went, in one line for STATUS= and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CycleSummary {
    /// False logs the line as a warning; the loop carries on either way.
    pub ok: bool,
    pub status: String,
}

impl CycleSummary {
    pub fn ok(status: impl Into<String>) -> CycleSummary {
        CycleSummary {
            ok: true,
            status: status.into(),
        }
    }

    pub fn failed(status: impl Into<String>) -> CycleSummary {
        CycleSummary {
            ok: false,
            status: status.into(),
        }
    }
}

/// What [`run_loop`](super::run_loop()) drives: the agent in production, a fake in tests.
pub trait Service {
    type Config;
    type Error: fmt::Display;

    /// Parses and validates the config at `path`. On a reload, an error keeps the running
    /// config, so everything that can be checked without side effects belongs here.
    fn load_config(&self, path: &Path) -> Result<Self::Config, Self::Error>;

    /// The interval between scheduled cycles under `config`.
    fn interval(&self, config: &Self::Config) -> Duration;

    /// A last say on a reloaded config before it replaces `current`: refuse a change that
    /// needs a restart (the state database, the admin address), or re-open what changed.
    /// An error keeps `current`.
    fn accept_reload(
        &mut self,
        current: &Self::Config,
        new: &Self::Config,
    ) -> Result<(), Self::Error> {
        let _ = (current, new);
        Ok(())
    }

    /// One cycle. It should stop after its in-flight batch once `ctx.shutdown` is requested,
    /// and call `ctx.watchdog.pet()` between phases and batches.
    fn cycle(
        &mut self,
        config: &Self::Config,
        ctx: &CycleContext,
    ) -> impl Future<Output = CycleSummary>;
}
