//! The plumbing that turns one sync cycle into a systemd service: notifications to the service
//! manager, signals, config reload on SIGHUP or on an edit of the file, a jittered schedule,
//! on-demand cycles, and a stop that lets the in-flight batch finish.
//!
//! It is kept apart from the agent so the cycle stays an ordinary async function that knows
//! nothing about systemd or signals, and so this plumbing can be tested against a fake cycle in
//! milliseconds. [`run_loop`] is generic over [`Service`]: the agent implements it, tests fake it.
//!
//! One file per piece, each usable and tested alone; this file only names what the rest of the
//! crate may use:
//! - `sd_notify`: the service manager's notify socket (READY, RELOADING, STATUS, WATCHDOG...);
//! - `watchdog`: proof of life, rate-limited, handed to the cycle;
//! - `trigger`, `inbox`, `signals`, `config_watch`: what wakes the loop, and where it comes from;
//! - `schedule`: the jittered interval;
//! - `shutdown`: the stop a running cycle sees between batches;
//! - `service`, `service_loop`: the contract a cycle keeps, and the loop that drives it;
//! - `reload_ack`, `reload_client`: `dialsync reload`, the reload systemd 252 can wait for;
//! - `logging`: the tracing subscriber, with journald priorities under systemd.

mod assignment;
mod config_watch;
mod error;
mod inbox;
mod logging;
mod reload_ack;
mod reload_client;
mod schedule;
mod sd_notify;
mod service;
mod service_loop;
mod shutdown;
mod signals;
#[cfg(test)]
mod test_socket;
mod trigger;
mod watchdog;

pub use config_watch::RELOAD_DEBOUNCE;
pub use error::DaemonError;
pub use inbox::Triggers;
pub use logging::{colour_logs, init_logging};
pub use reload_ack::{reload_ack_path, ReloadAck, RELOAD_ACK_FILE};
pub use reload_client::{request_reload, ReloadError};
pub use schedule::{jittered, next_wakeup};
pub use sd_notify::{Notifier, NotifyError};
pub use service::{CycleContext, CycleReason, CycleSummary, Service};
pub use service_loop::{run_loop, LoopOptions, Stopped, STOP_GRACE};
pub use shutdown::{Shutdown, ShutdownTrigger};
pub use trigger::{ReloadCause, SyncRequester, Trigger, TriggerSender};
pub use watchdog::Watchdog;
