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

/// An error with its causes, each said once. reqwest's own text ("error sending request for
/// url (...)") leaves out why, and the why (an untrusted certificate, a refused connection) is
/// what the operator needs.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

/// Whether `error` is a failed TLS handshake: a certificate that does not verify, or a peer
/// that does not speak TLS at all. That is configuration, which retrying cannot fix (and
/// which must never be "fixed" by falling back to plain HTTP). rustls reports it, through
/// tokio-rustls, as an `io::ErrorKind::InvalidData` under the connect error (itself wrapped in
/// another `io::Error`, whose `source()` skips it: hence the look inside).
pub fn is_tls_failure(error: &reqwest::Error) -> bool {
    fn invalid_data(error: &(dyn std::error::Error + 'static)) -> bool {
        error.downcast_ref::<std::io::Error>().is_some_and(|io| {
            io.kind() == std::io::ErrorKind::InvalidData
                || io.get_ref().is_some_and(|inner| invalid_data(inner))
        })
    }
    if !error.is_connect() {
        return false;
    }
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        if invalid_data(c) {
            return true;
        }
        cause = c.source();
    }
    false
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

    #[tokio::test]
    async fn a_failed_tls_handshake_is_told_from_a_refused_connection() {
        // A plain-HTTP server, asked for https://: the handshake fails, nothing falls back.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let client = reqwest::Client::builder().use_rustls_tls().build().unwrap();
        let tls = client
            .get(format!("https://{plain}/"))
            .send()
            .await
            .unwrap_err();
        assert!(is_tls_failure(&tls), "{}", error_chain(&tls));
        assert!(
            error_chain(&tls).contains("InvalidContentType"),
            "{}",
            error_chain(&tls)
        );

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let gone = closed.local_addr().unwrap();
        drop(closed);
        let refused = client
            .get(format!("https://{gone}/"))
            .send()
            .await
            .unwrap_err();
        assert!(refused.is_connect());
        assert!(!is_tls_failure(&refused), "{}", error_chain(&refused));
    }

    #[test]
    fn long_bodies_are_cut() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(600);
        assert_eq!(truncate(&long).chars().count(), 503);
    }
}
