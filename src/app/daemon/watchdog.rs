//! Proof of life for systemd's watchdog (`WatchdogSec=`), handed from the loop to the cycle.
//!
//! Kept apart from the notify socket because it is a policy, not a message: when to ping, and
//! above all when not to, so that a wedged cycle lets the watchdog fire.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::sd_notify::Notifier;

/// Proof of life for systemd's watchdog, handed to the cycle.
///
/// The loop pings while it sleeps, but not during a cycle: a cycle stuck on a lock or a request
/// without a timeout must let the watchdog fire. A cycle that legitimately runs long calls
/// [`Watchdog::pet`] between phases and batches. Pings are sent from whoever calls, never from a
/// thread of their own, so a wedged loop goes quiet.
#[derive(Clone, Debug, Default)]
pub struct Watchdog {
    inner: Option<Arc<WatchdogInner>>,
}

#[derive(Debug)]
struct WatchdogInner {
    notifier: Notifier,
    interval: Duration,
    last: Mutex<Instant>,
}

impl Watchdog {
    /// Pings through `notifier` when it has a watchdog interval; otherwise does nothing.
    pub fn new(notifier: &Notifier) -> Watchdog {
        Watchdog {
            inner: notifier.watchdog_interval().map(|interval| {
                Arc::new(WatchdogInner {
                    notifier: notifier.clone(),
                    interval,
                    last: Mutex::new(Instant::now()),
                })
            }),
        }
    }

    /// Whether systemd is watching.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Says "still making progress". Cheap enough to call per batch: at most one datagram per
    /// half interval goes out.
    pub fn pet(&self) {
        if let Some(inner) = &self.inner {
            let last = *inner.last.lock().unwrap_or_else(PoisonError::into_inner);
            if last.elapsed() >= inner.interval / 2 {
                self.ping();
            }
        }
    }

    pub(super) fn ping(&self) {
        if let Some(inner) = &self.inner {
            *inner.last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
            inner.notifier.log_failure(inner.notifier.watchdog());
        }
    }

    pub(super) fn next_due(&self) -> Option<Instant> {
        self.inner.as_ref().map(|inner| {
            *inner.last.lock().unwrap_or_else(PoisonError::into_inner) + inner.interval
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::daemon::test_socket::{nothing_waiting, receiver, recv};

    #[tokio::test]
    async fn petting_is_rate_limited_to_half_the_interval() {
        let (_dir, path, socket) = receiver();
        let n = Notifier::new(&path).with_watchdog(Some(Duration::from_millis(400)));
        let dog = Watchdog::new(&n);
        assert!(dog.is_enabled());
        dog.pet(); // just created: too soon
        assert!(nothing_waiting(&socket));
        tokio::time::sleep(Duration::from_millis(120)).await;
        dog.pet();
        dog.pet();
        assert_eq!(recv(&socket), "WATCHDOG=1");
        assert!(nothing_waiting(&socket));
        assert!(!Watchdog::new(&Notifier::new(&path)).is_enabled());
    }
}
