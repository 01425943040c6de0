//! What a target's reply to one request says about whether the request acted, sorted once by
//! [`crate::net::verdict`] for both sinks.
//!
//! Each sink used to sort statuses and transport errors itself, and the two had drifted from
//! each other and from the sources (a 429 final for the SBC). Now the verdict decides what may
//! be sent again, read back or given up; a sink only words the few answers it knows better
//! (its 401 and 403, the SBC's busy 409, Live Platform's 409 conflict, which stays final) and
//! how a refusal's body reads ([`Answered::attempt`]).

use reqwest::{Response, StatusCode};

use super::error::SinkError;
use super::target::Attempt;
use crate::net::reason::error_chain;
use crate::net::tls::is_tls_failure;
use crate::net::verdict::{self, Access, Verdict};

/// A whole reply to one request.
pub(super) enum Reply {
    /// A 2xx, and its body.
    Done(String),
    /// Any other status, for the sink to word.
    Answered(Answered),
}

/// A reply that is not a 2xx.
pub(super) struct Answered {
    pub status: StatusCode,
    /// What the status (and its `Retry-After`) says about the request.
    pub verdict: Verdict,
    pub body: String,
}

/// The reply to a request sent as `sent`, read whole; when no whole reply came, the
/// [`Attempt`] that is. `what` names the request and its target in errors.
pub(super) async fn receive(
    sent: reqwest::Result<Response>,
    access: Access,
    what: &str,
) -> Result<Reply, Attempt> {
    let response = sent.map_err(|e| no_answer(e, access, what))?;
    let status = response.status();
    let verdict = verdict::of_response(&response, access);
    let body = read_text(response)
        .await
        .map_err(|e| no_answer(e, access, what))?;
    Ok(match verdict {
        Verdict::Done => Reply::Done(body),
        verdict => Reply::Answered(Answered {
            status,
            verdict,
            body,
        }),
    })
}

/// The most a declared `Content-Length` reserves up front; a longer body still grows past it.
const MAX_RESERVE: u64 = 64 * 1024 * 1024;

/// The body as text, as `Response::text` gives it (invalid UTF-8 replaced), read chunk by
/// chunk into one buffer. `text` holds the chunks, then their concatenation, then a copy as a
/// `String`: at 100k rules the script read was 11 MB, held two or three times over.
async fn read_text(mut response: Response) -> reqwest::Result<String> {
    let declared = response.content_length().unwrap_or(0).min(MAX_RESERVE);
    let mut buffer = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    while let Some(chunk) = response.chunk().await? {
        buffer.extend_from_slice(&chunk);
    }
    Ok(match String::from_utf8(buffer) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    })
}

/// A request that got no whole reply, as the [`Attempt`] it is.
pub(super) fn no_answer(error: reqwest::Error, access: Access, what: &str) -> Attempt {
    if is_tls_failure(&error) {
        // An untrusted certificate, or no TLS on the other end: settings to fix, and named as
        // such, never a moment to wait out.
        return Attempt::Final(SinkError::Tls {
            reason: format!("{what}: {}", error_chain(&error)),
        });
    }
    let verdict = verdict::of_error(&error, access);
    let error = SinkError::Http {
        what: what.to_string(),
        source: error,
    };
    match verdict {
        Verdict::NotApplied { retry_after } => Attempt::NotApplied(error, retry_after),
        Verdict::Unknown => Attempt::Unknown(error),
        Verdict::Done | Verdict::RefusedContent | Verdict::Final => Attempt::Final(error),
    }
}

impl Answered {
    /// The [`Attempt`] this reply is, its body worded by `detail` (the target's own way of
    /// saying why, cut to log size). A refused write's content (400) is a final
    /// [`SinkError::Refused`] with status 400, which the sink turns into the refusal of its
    /// batch.
    pub(super) fn attempt(self, what: &str, detail: impl Fn(&str) -> String) -> Attempt {
        let status = self.status.as_u16();
        let body = detail(&self.body);
        match self.verdict {
            Verdict::NotApplied { retry_after } => {
                Attempt::NotApplied(server_error(self.status, what, body), retry_after)
            }
            Verdict::Unknown => Attempt::Unknown(server_error(self.status, what, body)),
            Verdict::Done | Verdict::RefusedContent | Verdict::Final => {
                Attempt::Final(SinkError::Refused {
                    what: what.to_string(),
                    status,
                    body,
                })
            }
        }
    }
}

/// A transient failure of the server's: a 5xx, or a status asking to be sent again later,
/// whose reason is said beside the request, since "server error 429" alone reads as a fault.
fn server_error(status: StatusCode, what: &str, body: String) -> SinkError {
    let why = match status {
        StatusCode::TOO_MANY_REQUESTS => " (rate limited)",
        StatusCode::CONFLICT => " (busy)",
        _ => "",
    };
    SinkError::Server {
        what: format!("{what}{why}"),
        status: status.as_u16(),
        body,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::{Classify, ErrorClass};

    fn answered(code: u16, access: Access, retry_after: Option<Duration>) -> Attempt {
        let status = StatusCode::from_u16(code).expect("status");
        Answered {
            status,
            verdict: verdict::of_status(status, access, retry_after),
            body: "why".into(),
        }
        .attempt("patching", str::to_string)
    }

    #[test]
    fn busy_and_rate_limited_are_sent_again_after_the_wait_asked() {
        let wait = Some(Duration::from_secs(2));
        for (code, why) in [(429, "(rate limited)"), (409, "(busy)")] {
            for access in [Access::Read, Access::Write] {
                match answered(code, access, wait) {
                    Attempt::NotApplied(error, asked) => {
                        assert_eq!(asked, wait);
                        assert_eq!(error.class(), ErrorClass::Transient);
                        assert!(error.to_string().contains(why), "{error}");
                    }
                    other => panic!("{code} to a {access:?}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_write_that_may_have_acted_is_unknown_and_a_refused_one_final() {
        assert!(matches!(
            answered(500, Access::Write, None),
            Attempt::Unknown(SinkError::Server { status: 500, .. })
        ));
        assert!(matches!(
            answered(500, Access::Read, None),
            Attempt::NotApplied(SinkError::Server { status: 500, .. }, None)
        ));
        assert!(matches!(
            answered(400, Access::Write, None),
            Attempt::Final(SinkError::Refused { status: 400, .. })
        ));
        assert!(matches!(
            answered(302, Access::Read, None),
            Attempt::Final(SinkError::Refused { status: 302, .. })
        ));
    }
}
