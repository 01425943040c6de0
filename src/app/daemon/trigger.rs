//! What can wake the service loop besides its own timer, and the handles that send it: a
//! reload, a cycle now, a stop.
//!
//! Signals, the config watcher and the admin port's `POST /sync` all speak this one
//! vocabulary, so the loop reacts to a reason, never to where it came from.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// Why the config is being reloaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadCause {
    /// SIGHUP (`systemctl reload`).
    Signal,
    /// The config file, or the symlink leading to it, changed.
    FileChanged,
    /// Asked for in code; the name of who asked.
    Requested(&'static str),
}

impl fmt::Display for ReloadCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadCause::Signal => f.write_str("SIGHUP"),
            ReloadCause::FileChanged => f.write_str("config file changed"),
            ReloadCause::Requested(who) => f.write_str(who),
        }
    }
}

/// Something the main loop must react to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Reload(ReloadCause),
    /// Run a cycle now; who asked (`"SIGUSR1"`, `"POST /sync"`).
    SyncNow(&'static str),
    /// Stop after the in-flight batch; the signal's name.
    Stop(&'static str),
}

/// Feeds [`Triggers`](super::Triggers) from anywhere: a signal task, a watcher thread, an HTTP
/// handler.
#[derive(Clone, Debug)]
pub struct TriggerSender {
    pub(super) tx: mpsc::UnboundedSender<Trigger>,
    /// Set while a SyncNow is queued and not yet received, so a flood of requests queues one.
    pub(super) sync_queued: Arc<AtomicBool>,
}

impl TriggerSender {
    /// Queues `trigger`; a SyncNow while another is queued is merged into it. Returns false when
    /// the loop is gone.
    pub fn send(&self, trigger: Trigger) -> bool {
        if let Trigger::SyncNow(_) = trigger {
            if self.sync_queued.swap(true, Ordering::AcqRel) {
                return !self.tx.is_closed();
            }
            if self.tx.send(trigger).is_err() {
                self.sync_queued.store(false, Ordering::Release);
                return false;
            }
            return true;
        }
        self.tx.send(trigger).is_ok()
    }
}

/// The handle the admin server gets for `POST /sync`: it can ask for a cycle and nothing else.
#[derive(Clone, Debug)]
pub struct SyncRequester(pub(super) TriggerSender);

impl SyncRequester {
    /// Asks for a cycle now. Requests that arrive while one is queued, or while a cycle runs,
    /// add up to one more cycle, not one each. Returns false when the loop is gone.
    pub fn request(&self, who: &'static str) -> bool {
        self.0.send(Trigger::SyncNow(who))
    }
}
