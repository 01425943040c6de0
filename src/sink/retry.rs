//! What both sinks need to wait and retry politely: capped exponential backoff with jitter
//! inside a time budget, the server's `Retry-After`, and error bodies cut to log size.
//!
//! Shared so that the device and the cloud back off the same way, and a fix to one is a fix
//! to both.

use std::time::{Duration, Instant};

use reqwest::header::RETRY_AFTER;

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

/// The `Retry-After` of a response, in delta seconds. An HTTP date is not honoured: the
/// computed backoff applies instead.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// An error body, cut to a size fit for a log line.
pub fn truncate(body: &str) -> String {
    const MAX: usize = 500;
    match body.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &body[..at]),
        None => body.to_string(),
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

    #[test]
    fn long_bodies_are_cut() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(600);
        assert_eq!(truncate(&long).chars().count(), 503);
    }
}
