//! Why a request failed, in words an operator can act on.

use std::time::Duration;

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

/// A reqwest error as a short reason, with its causes (reqwest's own text is terse). A
/// timeout says which one: `request_timeout` bounds each request, its whole answer included.
pub fn describe(e: &reqwest::Error, request_timeout: Duration) -> String {
    use std::error::Error as _;
    let timed_out;
    let kind = if e.is_timeout() {
        timed_out = format!("timed out after {request_timeout:?} (no complete answer in time)");
        timed_out.as_str()
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "answer broken off"
    } else {
        "request failed"
    };
    let mut reason = kind.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        reason.push_str(": ");
        reason.push_str(&c.to_string());
        cause = c.source();
    }
    reason
}
