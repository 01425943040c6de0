//! OAuth2 client credentials (DESIGN.md §5.2): one token fetch and cache shared by the Live
//! Platform sink and source. The token is renewed a tenth of its lifetime early (at most a
//! minute), so it never expires in flight; `force` fetches a new one (after a 401).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::preview::truncate;
use super::reason::error_chain;
use super::secret::Secret;
use super::verdict::{self, Access, Verdict};
use crate::error::{Classify, ErrorClass};

/// Where and as whom to ask for a token.
#[derive(Clone)]
pub struct ClientCredentials {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: String,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scope", &self.scope)
            .finish()
    }
}

/// Why no token could be had. Never carries the secret.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The request did not get an answer (connection, timeout, body broken off).
    #[error("no answer from the token endpoint: {}", error_chain(.0))]
    Transport(#[source] reqwest::Error),
    /// An answer that may change on a later request (5xx, 429, 409): may pass.
    #[error("the token endpoint answered HTTP {status}: {body}")]
    Server {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    /// The token endpoint refused the client (bad id, secret or scope): the OAuth
    /// `error: error_description`.
    #[error("the token endpoint refused the client with HTTP {status}: {reason}")]
    Refused { status: u16, reason: String },
    /// An answer that is not a Bearer token.
    #[error("the token endpoint's answer is not a Bearer token: {0}")]
    BadBody(String),
}

impl Classify for OAuthError {
    fn class(&self) -> ErrorClass {
        match self {
            OAuthError::Transport(e) if verdict::of_error(e, Access::Read) == Verdict::Final => {
                ErrorClass::Fatal
            }
            // The endpoint is down, slow or busy: the next request may get a token.
            OAuthError::Transport(_) | OAuthError::Server { .. } => ErrorClass::Transient,
            // A wrong client id, secret, scope or token_url: an operator must fix it.
            OAuthError::Refused { .. } | OAuthError::BadBody(_) => ErrorClass::Fatal,
        }
    }
}

#[derive(Deserialize)]
struct TokenDto {
    access_token: String,
    token_type: String,
    expires_in: u64,
}

struct CachedToken {
    value: Secret,
    renew_at: Instant,
}

/// A client-credentials token source with its cache.
pub struct TokenCache {
    credentials: ClientCredentials,
    cached: Mutex<Option<CachedToken>>,
    fetched: AtomicUsize,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub fn new(credentials: ClientCredentials) -> TokenCache {
        TokenCache {
            credentials,
            cached: Mutex::new(None),
            fetched: AtomicUsize::new(0),
        }
    }

    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// Tokens fetched so far.
    pub fn fetched(&self) -> usize {
        self.fetched.load(Ordering::Relaxed)
    }

    /// Drops the cached token.
    pub async fn clear(&self) {
        *self.cached.lock().await = None;
    }

    /// A valid token: the cached one, or a fresh one when it is due for renewal (or `force`).
    pub async fn token(&self, client: &Client, force: bool) -> Result<Secret, OAuthError> {
        let mut cached = self.cached.lock().await;
        if !force {
            if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
                return Ok(token.value.clone());
            }
        }
        *cached = None;
        let asked = Instant::now();
        self.fetched.fetch_add(1, Ordering::Relaxed);
        let c = &self.credentials;
        let response = client
            .post(&c.token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", c.client_id.as_str()),
                ("client_secret", c.client_secret.expose()),
                ("scope", c.scope.as_str()),
            ])
            .send()
            .await
            .map_err(OAuthError::Transport)?;
        // A token request changes nothing on the endpoint: a read, whatever its method.
        let verdict = verdict::of_response(&response, Access::Read);
        let status = response.status();
        let body = response.text().await.map_err(OAuthError::Transport)?;
        let server = |retry_after| OAuthError::Server {
            status: status.as_u16(),
            body: truncate(&body),
            retry_after,
        };
        match verdict {
            Verdict::Done => {}
            Verdict::NotApplied { retry_after } => return Err(server(retry_after)),
            // Not said of a read; were it, asking again is what it would call for.
            Verdict::Unknown => return Err(server(None)),
            Verdict::Final | Verdict::RefusedContent => {
                return Err(OAuthError::Refused {
                    status: status.as_u16(),
                    reason: refusal(&body),
                })
            }
        }
        let token: TokenDto =
            serde_json::from_str(&body).map_err(|e| OAuthError::BadBody(e.to_string()))?;
        if !token.token_type.eq_ignore_ascii_case("bearer") {
            return Err(OAuthError::BadBody(format!(
                "token_type {:?}, expected Bearer",
                token.token_type
            )));
        }
        let lifetime = Duration::from_secs(token.expires_in);
        let margin = (lifetime / 10).min(Duration::from_secs(60));
        let value = Secret::new(token.access_token);
        *cached = Some(CachedToken {
            value: value.clone(),
            renew_at: asked + lifetime - margin,
        });
        Ok(value)
    }
}

/// The reason in a refusal: the OAuth `error: error_description` (never the secret), or the
/// body, cut to log size.
fn refusal(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .map(|v| {
            let field = |n: &str| v.get(n).and_then(|x| x.as_str()).unwrap_or("");
            format!("{}: {}", field("error"), field("error_description"))
        })
        .unwrap_or_else(|| truncate(body))
}
