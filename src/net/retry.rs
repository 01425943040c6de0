//! Retrying a request: the server's own word on when to come back.

use std::time::Duration;

use reqwest::header::RETRY_AFTER;

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
