//! Waiting for something another process or thread does, with a deadline that fails the test
//! instead of hanging it.

use std::time::{Duration, Instant};

/// Polls `probe` every 10 ms until it answers, failing the test after `patience`.
pub fn wait_for<T>(what: &str, patience: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
