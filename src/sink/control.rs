//! What the caller of an apply controls and watches while it runs: a stop request honoured
//! between batches, and the progress `sync` shows on a terminal.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// What the caller of an apply controls and watches while it runs.
///
/// A stopping agent requests a stop: the sink lets the batch in flight finish (its outcome is
/// then known and journaled) and never starts another, so SIGTERM mid-apply leaves a dial
/// plan that is some prefix of the plan, never a half-sent script. The sink also records how
/// many ops are confirmed so far, which `sync` on a terminal shows as progress.
#[derive(Clone, Debug, Default)]
pub struct ApplyControl(Arc<ControlState>);

#[derive(Debug, Default)]
struct ControlState {
    stop: AtomicBool,
    done: AtomicUsize,
    total: AtomicUsize,
}

impl ApplyControl {
    /// Asks the apply to stop after the batch in flight.
    pub fn request(&self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        self.0.stop.load(Ordering::SeqCst)
    }

    /// Called by sinks: `done` of `total` ops are settled.
    pub fn record_progress(&self, done: usize, total: usize) {
        self.0.total.store(total, Ordering::Relaxed);
        self.0.done.store(done, Ordering::Relaxed);
    }

    /// `(done, total)` ops of the apply in progress; `(0, 0)` before one starts.
    pub fn progress(&self) -> (usize, usize) {
        (
            self.0.done.load(Ordering::Relaxed),
            self.0.total.load(Ordering::Relaxed),
        )
    }
}
