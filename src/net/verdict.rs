//! One classification of an HTTP outcome: what a status, or a request that got no answer,
//! says about whether the request acted, and so what its sender may do next.
//!
//! Before this file the sorting was written three times (the sources' client and each
//! sink) and had drifted: the device sink treated 429 as final and the Live Platform sink
//! 409. The table, for a request that is a [`Access::Read`] or a [`Access::Write`]:
//!
//! | outcome | read | write |
//! |---|---|---|
//! | 2xx | [`Done`] | [`Done`] |
//! | connection never made (refused, DNS, connect timeout) | [`NotApplied`] | [`NotApplied`] |
//! | 409 busy, 429 too many requests | [`NotApplied`] | [`NotApplied`] |
//! | any 5xx, with or without `Retry-After` | [`NotApplied`] | [`Unknown`] |
//! | request timeout, connection dropped, answer broken off | [`NotApplied`] | [`Unknown`] |
//! | 400 | [`Final`] | [`RefusedContent`] |
//! | 401, 403, any other 4xx, 3xx | [`Final`] | [`Final`] |
//! | TLS handshake failed, request that cannot be built | [`Final`] | [`Final`] |
//!
//! A read changes nothing, so whatever may pass is simply sent again. A write that may have
//! acted must be looked at (read back) before it is sent again, or it could be applied twice.
//! A 5xx to a write is unknown even when it is a 503 naming a `Retry-After`: that usually
//! means the server did not take the request in, but a gateway in front of a backend that
//! acted can answer it too, and a blind resend then doubles an add (Live Platform refuses the
//! duplicate, and the route's op would be quarantined). The read-back costs one read; the
//! wrong guess costs a route.
//!
//! [`Done`]: Verdict::Done
//! [`NotApplied`]: Verdict::NotApplied
//! [`Unknown`]: Verdict::Unknown
//! [`RefusedContent`]: Verdict::RefusedContent
//! [`Final`]: Verdict::Final

use std::time::Duration;

use reqwest::StatusCode;

use super::retry::retry_after;
use super::tls::is_tls_failure;

/// Whether a request can change anything where it lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Changes nothing, or changes it the same way however often it is sent (a GET, a login,
    /// a token request, a save to flash): always safe to send again.
    Read,
    /// May change something (an incremental script, a PATCH): sending it again before knowing
    /// whether the first one acted could apply it twice.
    Write,
}

/// What an HTTP outcome means for the request that met it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx: the server did it.
    Done,
    /// The server certainly did not act: send it again, after `retry_after` when the server
    /// asked for a wait (see [`crate::net::retry`]).
    NotApplied { retry_after: Option<Duration> },
    /// A write may or may not have acted: read back what it would have changed before
    /// sending it again.
    Unknown,
    /// The server read a write and refused its content (400): nothing of it applied, and the
    /// same content gets the same answer. For a sink, some op of the batch is refused: split
    /// the batch to find it.
    RefusedContent,
    /// Retrying cannot help until someone acts (credentials, rights, a URL, TLS settings).
    /// The status, when there is one, says which.
    Final,
}

/// The verdict on an answer's status. `retry_after` is the answer's `Retry-After`
/// ([`crate::net::retry::retry_after`]); [`of_response`] reads it for you.
pub fn of_status(status: StatusCode, access: Access, retry_after: Option<Duration>) -> Verdict {
    let not_applied = Verdict::NotApplied { retry_after };
    match (status, access) {
        (s, _) if s.is_success() => Verdict::Done,
        (StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS, _) => not_applied,
        (s, Access::Read) if s.is_server_error() => not_applied,
        (s, Access::Write) if s.is_server_error() => Verdict::Unknown,
        (StatusCode::BAD_REQUEST, Access::Write) => Verdict::RefusedContent,
        _ => Verdict::Final,
    }
}

/// The verdict on an answer, its `Retry-After` included.
pub fn of_response(response: &reqwest::Response, access: Access) -> Verdict {
    of_status(response.status(), access, retry_after(response))
}

/// The verdict on a request that got no (whole) answer: the error of `send`, or of reading
/// the body after the status came.
pub fn of_error(error: &reqwest::Error, access: Access) -> Verdict {
    if is_tls_failure(error) || error.is_builder() {
        return Verdict::Final;
    }
    // A connection never made carried nothing; anything later may have reached the server.
    if error.is_connect() {
        return Verdict::NotApplied { retry_after: None };
    }
    match access {
        Access::Read => Verdict::NotApplied { retry_after: None },
        Access::Write => Verdict::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::test_servers;
    use Access::{Read, Write};

    const WAIT: Option<Duration> = Some(Duration::from_secs(7));

    fn not_applied(retry_after: Option<Duration>) -> Verdict {
        Verdict::NotApplied { retry_after }
    }

    #[test]
    fn the_status_table() {
        let table: &[(u16, Access, Option<Duration>, Verdict)] = &[
            (200, Read, None, Verdict::Done),
            (204, Write, WAIT, Verdict::Done),
            (409, Read, WAIT, not_applied(WAIT)),
            (409, Write, None, not_applied(None)),
            (429, Read, None, not_applied(None)),
            (429, Write, WAIT, not_applied(WAIT)),
            (503, Read, None, not_applied(None)),
            (503, Write, WAIT, Verdict::Unknown),
            (503, Write, None, Verdict::Unknown),
            (500, Read, WAIT, not_applied(WAIT)),
            (500, Write, WAIT, Verdict::Unknown),
            (502, Write, None, Verdict::Unknown),
            (504, Read, None, not_applied(None)),
            (504, Write, None, Verdict::Unknown),
            (400, Read, None, Verdict::Final),
            (400, Write, None, Verdict::RefusedContent),
            (401, Read, None, Verdict::Final),
            (401, Write, None, Verdict::Final),
            (403, Write, None, Verdict::Final),
            (404, Read, None, Verdict::Final),
            (405, Write, None, Verdict::Final),
            (408, Read, None, Verdict::Final),
            (301, Read, None, Verdict::Final),
            (302, Write, None, Verdict::Final),
        ];
        for &(code, access, retry_after, expected) in table {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(
                of_status(status, access, retry_after),
                expected,
                "{code} to a {access:?} (Retry-After {retry_after:?})"
            );
        }
    }

    #[tokio::test]
    async fn requests_without_an_answer() {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();

        // Nobody listens: the connection was never made, whatever the request.
        let gone = test_servers::closed_port();
        let refused = client
            .get(format!("http://{gone}/"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(of_error(&refused, Read), not_applied(None));
        assert_eq!(of_error(&refused, Write), not_applied(None));

        // Connected, sent, never answered: a write may have acted.
        let silent = test_servers::silent().await;
        let timed_out = client
            .put(format!("http://{silent}/"))
            .body("x")
            .send()
            .await
            .unwrap_err();
        assert!(timed_out.is_timeout(), "{timed_out}");
        assert_eq!(of_error(&timed_out, Read), not_applied(None));
        assert_eq!(of_error(&timed_out, Write), Verdict::Unknown);

        // A plain-HTTP server asked for https://: settings, never a retry.
        let plain_addr = test_servers::plain_http().await;
        let tls = client
            .get(format!("https://{plain_addr}/"))
            .send()
            .await
            .unwrap_err();
        assert!(is_tls_failure(&tls), "{tls}");
        assert_eq!(of_error(&tls, Read), Verdict::Final);
        assert_eq!(of_error(&tls, Write), Verdict::Final);

        // A request that cannot even be built.
        let unbuildable = client.get("http://[::1").send().await.unwrap_err();
        assert!(unbuildable.is_builder(), "{unbuildable}");
        assert_eq!(of_error(&unbuildable, Write), Verdict::Final);
    }
}
