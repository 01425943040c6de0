//! The URLs dialsync is configured to talk to: usable at all, and safe to use.
//!
//! Checked when a client's owner is built, before any request, so that a typo is a
//! configuration error naming the URL, and plain `http://` across the network is said out
//! loud (DESIGN.md §5.1: it works, for staging and emulators, but a password or token would
//! cross the network in clear).

use reqwest::Url;

use crate::error::{Classify, ErrorClass};

/// Why a configured URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("not an absolute http(s) URL: {reason}")]
    Unparsable { reason: String },
    #[error("not an absolute http(s) URL: the scheme is {scheme:?}")]
    Scheme { scheme: String },
    #[error("not an absolute http(s) URL: it names no host")]
    NoHost,
}

impl Classify for UrlError {
    fn class(&self) -> ErrorClass {
        // A URL as written in the configuration stays wrong until someone edits it.
        ErrorClass::Fatal
    }
}

/// `url` parsed, when it is absolute `http://` or `https://` with a host. Warns, naming
/// `owner` (`source fusion`, `sbc`), when it is plain HTTP to a host other than loopback
/// ([`warn_if_plain_http`]).
pub fn check_url(owner: &str, url: &str) -> Result<Url, UrlError> {
    let parsed = Url::parse(url).map_err(|e| UrlError::Unparsable {
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(UrlError::Scheme {
            scheme: parsed.scheme().to_string(),
        });
    }
    if !parsed.has_host() {
        return Err(UrlError::NoHost);
    }
    warn_if_plain_http(owner, url);
    Ok(parsed)
}

/// Whether `url` carries credentials (`https://user:password@host`). A URL is shown in logs,
/// `status` and errors, so one that does would show its secret everywhere.
pub fn carries_credentials(url: &str) -> bool {
    Url::parse(url).is_ok_and(|parsed| !parsed.username().is_empty() || parsed.password().is_some())
}

/// Warns (once per call) when `url` is plain `http://` to a host other than loopback.
pub fn warn_if_plain_http(owner: &str, url: &str) {
    if let Some(reason) = plain_http_risk(url) {
        tracing::warn!("{owner}: {reason}");
    }
}

/// Why `url` is risky, if it is: the text of [`warn_if_plain_http`].
pub fn plain_http_risk(url: &str) -> Option<String> {
    let parsed = Url::parse(url).ok()?;
    if parsed.scheme() != "http" {
        return None;
    }
    let host = parsed.host_str()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    };
    (!loopback).then(|| {
        format!(
            "{url} is plain http:// to a host that is not loopback: credentials and numbers \
             cross the network unencrypted; use https://"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_warns_only_off_loopback() {
        assert!(plain_http_risk("http://fusion.example.net/api").is_some());
        assert!(plain_http_risk("http://10.0.0.1:8080").is_some());
        assert!(plain_http_risk("https://fusion.example.net").is_none());
        assert!(plain_http_risk("http://127.0.0.1:8080").is_none());
        assert!(plain_http_risk("http://localhost:8080").is_none());
        assert!(plain_http_risk("http://[::1]:8080").is_none());
    }

    #[test]
    fn only_absolute_http_urls_pass() {
        assert!(check_url("source t", "https://fusion.example.net/x").is_ok());
        assert!(check_url("source t", "http://127.0.0.1:1").is_ok());
        for (url, says) in [
            ("fusion.example.net", "relative URL"),
            ("ftp://fusion.example.net", "\"ftp\""),
            ("http://", "empty host"),
            ("unix:/run/x", "\"unix\""),
        ] {
            let err = check_url("source t", url).unwrap_err().to_string();
            assert!(
                err.starts_with("not an absolute http(s) URL"),
                "{url}: {err}"
            );
            assert!(err.contains(says), "{url}: {err}");
        }
    }
}
