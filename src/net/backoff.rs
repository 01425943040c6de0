//! Capped exponential backoff with jitter, within a time budget: how long to wait before the
//! next attempt, and when to stop trying.
//!
//! One schedule for every upstream and both sinks, so that the device, the cloud and the
//! provisioning systems are all retried the same polite way, and a fix to one is a fix to all.

use std::time::{Duration, Instant};

/// Capped exponential backoff with jitter, within a time budget.
#[derive(Debug)]
pub struct Backoff {
    start: Instant,
    attempts: u32,
    initial: Duration,
    max: Duration,
    budget: Duration,
}

impl Backoff {
    /// Starts the budget now: the first wait is about `initial`, doubling to `max`.
    pub fn new(initial: Duration, max: Duration, budget: Duration) -> Backoff {
        Backoff {
            start: Instant::now(),
            attempts: 0,
            initial,
            max,
            budget,
        }
    }

    /// How long this request has been retried.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// How many waits were asked for so far (the failed attempts), granted or not.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How long to wait before the next attempt, or `None` when the budget is spent. The
    /// server's `Retry-After` wins over the computed delay: it knows when it will be free.
    pub fn next(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        self.attempts += 1;
        let wait = match retry_after {
            Some(wait) => wait,
            None => {
                let exp = self
                    .initial
                    .saturating_mul(1u32 << (self.attempts - 1).min(16))
                    .min(self.max);
                // Jitter over the upper half: agents that failed together do not retry in
                // lockstep, and the wait never collapses to nothing.
                let half = exp / 2;
                half + half.mul_f64(rand::random::<f64>())
            }
        };
        if self.start.elapsed() + wait > self.budget {
            return None;
        }
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_stops_at_the_budget() {
        let mut backoff = Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(400),
            Duration::from_secs(1),
        );
        let waits: Vec<Duration> = (0..4).map_while(|_| backoff.next(None)).collect();
        let bounds = [(50, 100), (100, 200), (200, 400), (200, 400)];
        for (wait, (lo, hi)) in waits.iter().zip(bounds) {
            assert!((lo..=hi).contains(&(wait.as_millis() as u64)), "{waits:?}");
        }
        assert_eq!(
            backoff.next(Some(Duration::from_secs(3))),
            None,
            "a Retry-After beyond the budget ends the retries"
        );
        let mut honoured = Backoff::new(Duration::ZERO, Duration::ZERO, Duration::from_secs(5));
        assert_eq!(
            honoured.next(Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
    }
}
