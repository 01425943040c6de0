//! The service loop's inbox: one queue for every trigger, fed by the signal handlers, the
//! config watcher and whoever holds a sender, and owning them so that dropping it stops them.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::config_watch;
use super::error::DaemonError;
use super::signals;
use super::trigger::{SyncRequester, Trigger, TriggerSender};

/// The main loop's inbox: everything that can wake it besides its own timer.
///
/// Dropping it stops the signal forwarding and the config watcher.
#[derive(Debug)]
pub struct Triggers {
    rx: mpsc::UnboundedReceiver<Trigger>,
    sender: TriggerSender,
    tasks: Vec<JoinHandle<()>>,
    watchers: Vec<notify::RecommendedWatcher>,
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers::new()
    }
}

impl Drop for Triggers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Triggers {
    /// An inbox fed only through [`Triggers::sender`] until signals or a watcher are added.
    pub fn new() -> Triggers {
        let (tx, rx) = mpsc::unbounded_channel();
        Triggers {
            rx,
            sender: TriggerSender {
                tx,
                sync_queued: Arc::new(AtomicBool::new(false)),
            },
            tasks: Vec::new(),
            watchers: Vec::new(),
        }
    }

    pub fn sender(&self) -> TriggerSender {
        self.sender.clone()
    }

    pub fn sync_requester(&self) -> SyncRequester {
        SyncRequester(self.sender.clone())
    }

    /// SIGHUP reloads, SIGUSR1 syncs now, SIGTERM and SIGINT stop. From here on those signals
    /// no longer have their default effect on the process.
    pub fn listen_signals(&mut self) -> Result<(), DaemonError> {
        self.tasks.push(signals::forward(self.sender.clone())?);
        Ok(())
    }

    /// Reloads when the config file changes, once it has been quiet for `quiet`. Which changes
    /// count (a rename over the file, a swapped symlink) is `config_watch`'s to say.
    pub fn watch_config(&mut self, path: &Path, quiet: Duration) -> Result<(), DaemonError> {
        let (watcher, task) = config_watch::watch(path, quiet, self.sender.clone())?;
        self.tasks.push(task);
        self.watchers.push(watcher);
        Ok(())
    }

    /// The next trigger. Never ends: the inbox holds a sender of its own.
    pub async fn recv(&mut self) -> Trigger {
        match self.rx.recv().await {
            Some(trigger) => {
                if let Trigger::SyncNow(_) = trigger {
                    self.sender.sync_queued.store(false, Ordering::Release);
                }
                trigger
            }
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::daemon::trigger::ReloadCause;

    #[tokio::test]
    async fn sync_requests_coalesce_while_one_is_queued() {
        let mut triggers = Triggers::new();
        let requester = triggers.sync_requester();
        for _ in 0..100 {
            assert!(requester.request("test"));
        }
        assert_eq!(triggers.recv().await, Trigger::SyncNow("test"));
        let more = tokio::time::timeout(Duration::from_millis(50), triggers.recv()).await;
        assert!(more.is_err(), "a second SyncNow was queued: {more:?}");
        // Once received, the next request queues again.
        assert!(requester.request("again"));
        assert_eq!(triggers.recv().await, Trigger::SyncNow("again"));
        // Other triggers are never merged.
        let sender = triggers.sender();
        assert!(sender.send(Trigger::Reload(ReloadCause::Signal)));
        assert!(sender.send(Trigger::Reload(ReloadCause::Signal)));
        assert_eq!(triggers.recv().await, Trigger::Reload(ReloadCause::Signal));
        assert_eq!(triggers.recv().await, Trigger::Reload(ReloadCause::Signal));
    }

    #[test]
    fn a_requester_outliving_the_loop_says_so() {
        let triggers = Triggers::new();
        let requester = triggers.sync_requester();
        drop(triggers);
        assert!(!requester.request("late"));
        assert!(!requester.request("later"));
    }
}
