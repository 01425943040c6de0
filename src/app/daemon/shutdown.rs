//! The stop a running cycle sees: asked once by the loop (or by a one-shot command on
//! Ctrl-C), checked by the cycle between batches, so the in-flight batch always finishes.

use std::future::Future;

use tokio::sync::watch;

/// Tells a running cycle to stop after its in-flight batch.
///
/// A cycle checks [`Shutdown::is_requested`] between batches, and may race long waits (a slow
/// source) against [`Shutdown::requested`].
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The side of a [`Shutdown`] that asks for it.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

impl Shutdown {
    /// A linked pair, for callers that run a cycle outside [`run_loop`](super::run_loop())
    /// (e.g. `dialsync sync` stopping on Ctrl-C).
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger { tx }, Shutdown { rx })
    }

    /// One that is never requested.
    pub fn never() -> Shutdown {
        Shutdown::new().1
    }

    pub fn is_requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once a shutdown is requested; never, if its trigger is dropped unused.
    pub async fn requested(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Runs `work` to completion, calling `on_request` once if a shutdown is requested
    /// meanwhile: the bridge to code that checks a stop flag of its own between batches (the
    /// sinks' `ApplyControl`), so that code need not know about this type.
    pub async fn relay<F: Future>(&self, work: F, on_request: impl FnOnce()) -> F::Output {
        tokio::pin!(work);
        tokio::select! {
            output = &mut work => output,
            () = self.requested() => {
                on_request();
                work.await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn shutdown_is_seen_by_every_clone() {
        let (trigger, shutdown) = Shutdown::new();
        let copy = shutdown.clone();
        assert!(!copy.is_requested());
        let waiter = tokio::spawn(async move { copy.requested().await });
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert!(shutdown.is_requested());
        let never = Shutdown::never();
        assert!(!never.is_requested());
        let waited = tokio::time::timeout(Duration::from_millis(50), never.requested()).await;
        assert!(waited.is_err(), "Shutdown::never() resolved");
    }

    #[tokio::test]
    async fn relay_passes_the_request_on_and_still_finishes_the_work() {
        let (trigger, shutdown) = Shutdown::new();
        let flag = Arc::new(AtomicBool::new(false));
        let seen = flag.clone();
        let work = async move {
            while !seen.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            "finished its batch"
        };
        let relayed = shutdown.relay(work, || flag.store(true, Ordering::SeqCst));
        trigger.trigger();
        let out = tokio::time::timeout(Duration::from_secs(5), relayed).await;
        assert_eq!(out.ok(), Some("finished its batch"));
        let never = Shutdown::never();
        let untouched = never.relay(async { 7 }, || panic!("no shutdown was asked"));
        assert_eq!(untouched.await, 7);
    }
}
