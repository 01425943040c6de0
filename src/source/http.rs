//! A source's HTTP client: every Fusion, APIO and Live Platform request goes through it. It
//! adds to the network layer's client ([`crate::net::client`]) what every source wants: a cap
//! on the answer's size, Bearer and cookie credentials sent only in headers marked sensitive,
//! the whole fetch bounded by the source's `timeout`, and errors that name the source.
//!
//! Every source request is a read (a GET, or a login), so whatever the network layer's
//! [`verdict`] calls not applied (connection errors, timeouts, 409 and 429 with their
//! `Retry-After`, 5xx) is sent again by its [`retry`] loop within the budget. What it calls
//! done or final (2xx, 3xx, other 4xx) goes back to the caller with its status, since what a
//! 401 or a 404 means depends on the endpoint. A failed TLS handshake is never retried. No
//! message here ever carries a header.

use std::ops::ControlFlow;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Client, Method, RequestBuilder, StatusCode};

use super::body_seen::BodySeen;
use super::SourceError;
use crate::net::backoff::Backoff;
use crate::net::client::{build_client, ClientSettings};
use crate::net::endpoint;
use crate::net::preview::{json_failure, preview_bytes};
use crate::net::reason::describe;
use crate::net::retry::{retry, Attempt};
use crate::net::secret::Secret;
use crate::net::tls::is_tls_failure;
use crate::net::verdict::{self, Access, Verdict};

/// `max_body` when not set: 512 MiB. A real Fusion group answers `phone_usage` in one body of
/// about 200 bytes per number (190 MiB for 1M), so this admits some 2.7M numbers. That feed
/// is decoded as a stream, so there the cap bounds what is read, not what is held.
pub const DEFAULT_MAX_BODY: usize = 512 * 1024 * 1024;

/// How a source talks HTTP.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Time to establish a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Time for one request, its whole answer included.
    pub request_timeout: Duration,
    /// Largest answer accepted, in bytes.
    pub max_body: usize,
    /// First wait between attempts; doubles up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Total time one request may spend being retried.
    pub retry_budget: Duration,
}

impl HttpConfig {
    /// Fits the retries inside a source's whole-fetch `timeout`, so that a source failing with
    /// 5xx reports the 5xx (after its retries) rather than only "timed out".
    pub fn fit_within(&mut self, timeout: Duration) {
        self.request_timeout = self.request_timeout.min(timeout);
        self.retry_budget = self.retry_budget.min(timeout / 2);
        self.retry_max = self.retry_max.min(timeout / 4);
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_body: DEFAULT_MAX_BODY,
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(10),
            retry_budget: Duration::from_secs(60),
        }
    }
}

/// How a request authenticates.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    None,
    /// `Authorization: Bearer <token>`, marked sensitive.
    Bearer(&'a Secret),
    /// `Cookie: <name>=<value>`, marked sensitive (a gateway session such as APIO's).
    Cookie(&'static str, &'a Secret),
}

/// Refuses a URL that is not absolute `http(s)://host...`, naming the source, and warns about
/// plain HTTP to a remote host: the one check every source makes of its configured URLs.
pub fn check_url(source_name: &str, url: &str) -> Result<(), SourceError> {
    endpoint::check_url(&owner(source_name), url)
        .map(drop)
        .map_err(|e| SourceError::BadUrl {
            source_name: source_name.to_string(),
            url: url.to_string(),
            reason: e.to_string(),
        })
}

/// How a source is named in the network layer's warnings: `source fusion`.
fn owner(source_name: &str) -> String {
    format!("source {source_name}")
}

/// Runs a whole fetch (every page, every login) within the source's `timeout`.
pub async fn within<T>(
    source_name: &str,
    timeout: Duration,
    fetch: impl std::future::Future<Output = Result<T, SourceError>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(timeout, fetch).await {
        Ok(result) => result,
        Err(_) => Err(SourceError::Timeout {
            source_name: source_name.to_string(),
            timeout,
        }),
    }
}

/// An answer that was not retried away: its status and whole body.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: StatusCode,
    /// The answer's headers (a login's `Set-Cookie`, say).
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// The body as text for a message, cut to log size. Only the start of the body is
    /// looked at, so a huge answer (or one that is not UTF-8) costs no copy of itself.
    pub fn text(&self) -> String {
        preview_bytes(&self.body)
    }
}

/// What a request that may stream brought back: a success whose body is still to be read
/// (with [`SourceHttp::read_stream`]), or any other answer whole, as [`SourceHttp::get`]
/// gives it (error bodies are small, and their status decides what they mean).
#[derive(Debug)]
pub enum Opened {
    Streaming(Streaming),
    Whole(HttpAnswer),
}

/// A 2xx answer whose body has not been read.
#[derive(Debug)]
pub struct Streaming {
    pub status: StatusCode,
    response: reqwest::Response,
}

/// One source's HTTP client. Cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct SourceHttp {
    client: Client,
    config: HttpConfig,
    source_name: String,
}

impl SourceHttp {
    /// A client for the source named `source_name` (named in every error).
    pub fn new(source_name: &str, config: HttpConfig) -> Result<SourceHttp, SourceError> {
        let settings = ClientSettings {
            connect_timeout: Some(config.connect_timeout),
            ..ClientSettings::new(config.request_timeout)
        };
        let client =
            build_client(&owner(source_name), &settings).map_err(|error| SourceError::Client {
                source_name: source_name.to_string(),
                error,
            })?;
        Ok(SourceHttp {
            client,
            config,
            source_name: source_name.to_string(),
        })
    }

    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The configured client itself, for a protocol step this type does not wrap (an OAuth
    /// token request), so that every request of a source shares one set-up.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// `GET url`, retried while transient.
    pub async fn get(&self, url: &str, auth: Auth<'_>) -> Result<HttpAnswer, SourceError> {
        let opened = self.send(Method::GET, url, auth, None, false).await?;
        self.whole(url, opened).await
    }

    /// `GET url`, retried while transient, leaving a 2xx answer's body unread so that it can
    /// be decoded as it arrives ([`SourceHttp::read_stream`]); any other answer is whole.
    pub async fn get_streaming(&self, url: &str, auth: Auth<'_>) -> Result<Opened, SourceError> {
        self.send(Method::GET, url, auth, None, true).await
    }

    /// Reads a streaming answer's body, handing each chunk to `feed` as it arrives (until it
    /// says [`ControlFlow::Break`]: the rest of the body is then left unread), and
    /// refusing it past the cap (counted as the bytes come); returns what was seen of it, for
    /// messages. A body that breaks off is [`SourceError::Http`], not sent again: `feed` has
    /// had part of it. The next cycle reads it anew.
    pub async fn read_stream(
        &self,
        url: &str,
        body: Streaming,
        mut feed: impl FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<BodySeen, SourceError> {
        let mut response = body.response;
        let max = self.config.max_body as u64;
        if response.content_length().is_some_and(|n| n > max) {
            return Err(self.too_large(url));
        }
        let mut seen = BodySeen::default();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if seen.bytes + chunk.len() as u64 > max {
                        return Err(self.too_large(url));
                    }
                    seen.take(&chunk);
                    if feed(&chunk).is_break() {
                        // The reader has what it wanted; the rest of the body is never read.
                        return Ok(seen);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(SourceError::Http {
                        source_name: self.source_name.clone(),
                        method: "GET",
                        url: url.to_string(),
                        reason: format!(
                            "the answer broke off: {}",
                            describe(&e, self.config.request_timeout)
                        ),
                    })
                }
            }
        }
        seen.end();
        Ok(seen)
    }

    /// An answer whole: a streaming one (never asked for by the callers of this) is read.
    async fn whole(&self, url: &str, opened: Opened) -> Result<HttpAnswer, SourceError> {
        match opened {
            Opened::Whole(answer) => Ok(answer),
            Opened::Streaming(streaming) => {
                let (status, headers) = (streaming.status, streaming.response.headers().clone());
                let mut body = Vec::new();
                self.read_stream(url, streaming, |chunk| {
                    body.extend_from_slice(chunk);
                    ControlFlow::Continue(())
                })
                .await?;
                Ok(HttpAnswer {
                    status,
                    headers,
                    body,
                })
            }
        }
    }

    fn too_large(&self, url: &str) -> SourceError {
        SourceError::TooLarge {
            source_name: self.source_name.clone(),
            url: url.to_string(),
            max: self.config.max_body,
        }
    }

    /// `POST url` with a JSON body, retried while transient (use only for idempotent calls,
    /// such as a login).
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        auth: Auth<'_>,
    ) -> Result<HttpAnswer, SourceError> {
        let opened = self
            .send(Method::POST, url, auth, Some(body), false)
            .await?;
        self.whole(url, opened).await
    }

    /// `GET url` and its body as JSON; a body that is not JSON is [`SourceError::BadBody`].
    pub async fn get_json(
        &self,
        url: &str,
        auth: Auth<'_>,
    ) -> Result<(StatusCode, serde_json::Value), SourceError> {
        let answer = self.get(url, auth).await?;
        let value = self.json(url, &answer)?;
        Ok((answer.status, value))
    }

    /// Decodes `answer` as JSON into `T`, naming the URL on failure.
    /// The answer's body as `T`, which may borrow from it (large lists parse without copying
    /// every string).
    pub fn json<'a, T: serde::Deserialize<'a>>(
        &self,
        url: &str,
        answer: &'a HttpAnswer,
    ) -> Result<T, SourceError> {
        serde_json::from_slice(&answer.body).map_err(|e| SourceError::BadBody {
            source_name: self.source_name.clone(),
            url: url.to_string(),
            reason: format!(
                "HTTP {}, {} bytes: {}; body: {}",
                answer.status,
                answer.body.len(),
                json_failure(&answer.body, &e),
                answer.text()
            ),
        })
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        auth: Auth<'_>,
        body: Option<&serde_json::Value>,
        stream: bool,
    ) -> Result<Opened, SourceError> {
        let mut backoff = Backoff::new(
            self.config.retry_initial,
            self.config.retry_max,
            self.config.retry_budget,
        );
        let sent = retry(&mut backoff, || {
            self.attempt(&method, url, auth, body, stream)
        })
        .await;
        sent.map_err(|gave_up| {
            let (source_name, method, url) = (
                self.source_name.clone(),
                method_name(&method),
                url.to_string(),
            );
            match gave_up.into_error() {
                Failure::Status(answer) => SourceError::Server {
                    source_name,
                    method,
                    url,
                    status: answer.status.as_u16(),
                    body: answer.text(),
                },
                Failure::Transport(reason) => SourceError::Http {
                    source_name,
                    method,
                    url,
                    reason,
                },
                Failure::TooLarge => self.too_large(&url),
            }
        })
    }

    /// One request and its whole answer (or, with `stream`, a 2xx answer's body unread).
    /// Every request of a source reads ([`Access::Read`]: a GET, or a login), so whatever may
    /// pass is sent again; a status the network layer calls final goes back to the caller,
    /// to whom a 401 or a 404 means something.
    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        auth: Auth<'_>,
        body: Option<&serde_json::Value>,
        stream: bool,
    ) -> Result<Opened, Attempt<Failure>> {
        let again = |error| Attempt::Again {
            error,
            retry_after: None,
        };
        let mut request = with_auth(self.client.request(method.clone(), url), auth);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let reason = describe(&e, self.config.request_timeout);
                return Err(match verdict::of_error(&e, Access::Read) {
                    // An untrusted certificate, or no TLS on the other end: settings to fix,
                    // which no retry can; and never a reason to try plain HTTP instead.
                    Verdict::Final if is_tls_failure(&e) => Attempt::Stop(Failure::Transport(
                        format!("TLS handshake failed: {reason}"),
                    )),
                    Verdict::Final => Attempt::Stop(Failure::Transport(reason)),
                    _ => again(Failure::Transport(reason)),
                });
            }
        };
        let verdict = verdict::of_response(&response, Access::Read);
        let status = response.status();
        if stream && matches!(verdict, Verdict::Done) && status.is_success() {
            return Ok(Opened::Streaming(Streaming { status, response }));
        }
        let headers = response.headers().clone();
        let body = match self.read_body(response).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => return Err(Attempt::Stop(Failure::TooLarge)),
            Err(BodyError::Read(reason)) => return Err(again(Failure::Transport(reason))),
        };
        let answer = HttpAnswer {
            status,
            headers,
            body,
        };
        match verdict {
            Verdict::NotApplied { retry_after } => Err(Attempt::Again {
                error: Failure::Status(answer),
                retry_after,
            }),
            // Not said of a read; were it, sending the read again is what it would call for.
            Verdict::Unknown => Err(again(Failure::Status(answer))),
            Verdict::Done | Verdict::Final | Verdict::RefusedContent => Ok(Opened::Whole(answer)),
        }
    }

    /// The body, in chunks, refusing it past the cap (a `Content-Length` above it is refused
    /// before reading anything).
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
        let max = self.config.max_body;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(BodyError::TooLarge);
        }
        let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > max {
                        return Err(BodyError::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => return Err(BodyError::Read(describe(&e, self.config.request_timeout))),
            }
        }
    }
}

enum BodyError {
    TooLarge,
    Read(String),
}

/// Why an attempt brought back no answer for the caller.
enum Failure {
    /// An answer that may change on a later attempt (429, 5xx...).
    Status(HttpAnswer),
    /// No whole answer: the connection, the TLS handshake or the body failed; the reason.
    Transport(String),
    /// An answer larger than `max_body`.
    TooLarge,
}

fn with_auth(request: RequestBuilder, auth: Auth<'_>) -> RequestBuilder {
    match auth {
        Auth::None => request,
        Auth::Bearer(token) => match HeaderValue::from_str(&format!("Bearer {}", token.expose())) {
            Ok(mut value) => {
                value.set_sensitive(true);
                request.header(AUTHORIZATION, value)
            }
            // A token with a line break cannot be sent; sending none gets a 401 that names
            // the problem without showing the token.
            Err(_) => request,
        },
        Auth::Cookie(name, value) => {
            match HeaderValue::from_str(&format!("{name}={}", value.expose())) {
                Ok(mut header) => {
                    header.set_sensitive(true);
                    request.header(reqwest::header::COOKIE, header)
                }
                Err(_) => request,
            }
        }
    }
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "GET",
    }
}
