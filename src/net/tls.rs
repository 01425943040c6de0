//! Telling a failed TLS handshake from any other failure to connect.
//!
//! A certificate that does not verify, or a peer that does not speak TLS at all, is
//! configuration: no retry fixes it, and it must never be "fixed" by falling back to plain
//! HTTP. So it is recognised once, here, and every caller treats it as final.

/// Whether `error` is a failed TLS handshake: a certificate that does not verify, or a peer
/// that does not speak TLS at all. rustls reports it, through tokio-rustls, as an
/// `io::ErrorKind::InvalidData` under the connect error (itself wrapped in another
/// `io::Error`, whose `source()` skips it: hence the look inside).
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
    use crate::net::reason::error_chain;
    use crate::net::test_servers;

    #[tokio::test]
    async fn a_failed_tls_handshake_is_told_from_a_refused_connection() {
        // A plain-HTTP server, asked for https://: the handshake fails, nothing falls back.
        let plain = test_servers::plain_http().await;
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

        let gone = test_servers::closed_port();
        let refused = client
            .get(format!("https://{gone}/"))
            .send()
            .await
            .unwrap_err();
        assert!(refused.is_connect());
        assert!(!is_tls_failure(&refused), "{}", error_chain(&refused));
    }
}
