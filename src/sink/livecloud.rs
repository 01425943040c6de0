//! AudioCodes Live Platform as a [`Target`]: one of its dial plans, read and changed through
//! the dial-plan API of DESIGN.md §5.2. The journaled apply is the shared
//! [`applier`](super::applier); what is the platform's own lives here:
//!
//! - Auth is an OAuth2 client-credentials token (Entra ID), cached until shortly before it
//!   expires; a 401 from the API drops it and fetches a new one once, a second 401 is fatal.
//! - The platform allows 10 requests per 10 s per client. The sink never reaches that limit:
//!   a sliding window (`rate`) makes it wait before a request that would exceed it. A 429
//!   (another agent sharing the client, a smaller limit than configured) is still retried,
//!   honouring `Retry-After` (the sinks' `reply` sorts every answer as [`crate::net::verdict`]
//!   says), except a 409: a conflict with the platform's state, not a busy device, is final.
//! - Live Platform rules have no index: a rule is its `name`, `prefix` and `tag`. [`read`]
//!   gives each rule a synthetic index, its position in `ruleDTO`. The planner only needs
//!   indexes to be stable within one cycle (read, plan, apply), which they are; they mean
//!   nothing to the platform and are never sent. `DeviceDialPlan::plan_index` is 0.
//! - An op becomes entries of a PATCH: an add an `add` entry, a delete a `remove` entry, a
//!   modify both (the old rule removed and the new one added in the same PATCH, which the
//!   platform applies atomically, so the number is never unrouted in between). A PATCH is
//!   all or nothing: a 400 (problem-details) to a batch is a refusal, with the platform's
//!   `detail` as the reason.
//! - Whether an op shows: its after-rule present under dialsync's name, and its before-rule
//!   gone from under the name it had when the plan was made (an adopted foreign rule keeps
//!   its own name until it is removed).
//!
//! [`read`]: Target::read

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::dial_plan::DeviceDialPlan;
use super::error::SinkError;
use super::reply::{no_answer, receive, Reply};
use super::target::{Answer, Attempt, Target};
use super::write_settings::WriteSettings;
use crate::dialplan::rule::{DialPlanRule, HeldText};
use crate::net::client::{build_client, ClientSettings};
use crate::net::endpoint::check_url;
use crate::net::oauth::{ClientCredentials, OAuthError, TokenCache};
use crate::net::preview::truncate;
use crate::net::retry::retry;
use crate::net::secret::Secret;
use crate::net::verdict::Access;
use crate::plan::{Op, Route};

/// The `[sbc]` settings for `sbc.kind = "livecloud"`.
///
/// `dial_plan_id` is needed by the URL of DESIGN.md §5.2 although §9 does not list it.
#[derive(Clone, Debug)]
pub struct LiveCloudConfig {
    /// API base URL, e.g. `https://live.example.net`.
    pub url: String,
    /// The OAuth2 token endpoint (Entra ID).
    pub token_url: String,
    pub client_id: String,
    /// Never logged (redacted in `Debug`).
    pub client_secret: Secret,
    pub scope: String,
    pub customer_id: String,
    pub site_location_id: String,
    pub dial_plan_id: String,
    /// At most `rate.0` API requests per `rate.1` (the platform's limit: 10 per 10 s).
    pub rate: (usize, Duration),
    /// Rule names, batches of one PATCH each, timeouts and retries.
    pub writes: WriteSettings,
}

impl Default for LiveCloudConfig {
    /// Defaults for everything but the addresses, the client and the dial plan (left empty).
    fn default() -> Self {
        LiveCloudConfig {
            url: String::new(),
            token_url: String::new(),
            client_id: String::new(),
            client_secret: Secret::new(""),
            scope: String::new(),
            customer_id: String::new(),
            site_location_id: String::new(),
            dial_plan_id: String::new(),
            rate: (10, Duration::from_secs(10)),
            writes: WriteSettings::defaults(
                100,
                Duration::from_secs(120),
                (Duration::from_millis(500), Duration::from_secs(15)),
            ),
        }
    }
}

/// One rule as the platform writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct RuleDto {
    name: String,
    prefix: String,
    tag: String,
}

impl RuleDto {
    fn of(name: &str, route: &Route) -> RuleDto {
        RuleDto {
            name: name.to_string(),
            prefix: route.prefix.to_string(),
            tag: route.tag.as_str().to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DialPlanDto {
    dial_plan_id: serde_json::Value,
    #[serde(rename = "ruleDTO", default)]
    rule_dto: Vec<RuleDto>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PatchDto<'a> {
    dial_plan_id: &'a str,
    add: Vec<RuleDto>,
    remove: Vec<RuleDto>,
}

/// The sink for one Live Platform dial plan.
pub struct LiveCloudSink {
    config: LiveCloudConfig,
    plan_url: String,
    client: Client,
    tokens: TokenCache,
    /// When each of the recent API requests was answered, oldest first.
    sent: Mutex<VecDeque<Instant>>,
    requests: AtomicUsize,
}

impl fmt::Debug for LiveCloudSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCloudSink")
            .field("config", &self.config)
            .finish()
    }
}

impl Target for LiveCloudSink {
    fn target_name(&self) -> &'static str {
        "Live Platform"
    }

    fn writes(&self) -> &WriteSettings {
        &self.config.writes
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Reads the dial plan. Indexes are synthetic: each rule's position in `ruleDTO`.
    async fn read(&self) -> Result<DeviceDialPlan, SinkError> {
        const WHAT: &str = "reading the Live Platform dial plan";
        let mut backoff = self.config.writes.backoff();
        let body = retry(&mut backoff, || async {
            self.call(Method::GET, None, WHAT)
                .await
                .map_err(Attempt::retried)
        })
        .await?;
        let dto: DialPlanDto = serde_json::from_str(&body).map_err(|e| SinkError::BadResponse {
            what: WHAT.into(),
            reason: e.to_string(),
        })?;
        let id = match &dto.dial_plan_id {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if id != self.config.dial_plan_id {
            return Err(SinkError::BadResponse {
                what: WHAT.into(),
                reason: format!("dialPlanId {id:?}, expected {:?}", self.config.dial_plan_id),
            });
        }
        // Live Platform's own Operator Connect rules come back as it wrote them: one number,
        // no `#` (an open prefix, as the SBC reads it) and a bare FQDN for a tag. They are
        // read like any other row and never written.
        let mut held = HeldText::default();
        let rows = dto.rule_dto.iter().enumerate().map(|(position, text)| {
            DialPlanRule::read_sharing(
                position as u32,
                &text.name,
                &text.prefix,
                &text.tag,
                &mut held,
            )
        });
        Ok(DeviceDialPlan::of_rows(0, rows))
    }

    /// One PATCH: each op's before-rule removed and its after-rule added, which the platform
    /// applies atomically, so a modify never leaves its numbers unrouted in between.
    async fn send(&self, ops: &[&Op], read: &DeviceDialPlan) -> Result<Answer, Attempt> {
        const WHAT: &str = "patching the Live Platform dial plan";
        let mut body = PatchDto {
            dial_plan_id: &self.config.dial_plan_id,
            add: Vec::new(),
            remove: Vec::new(),
        };
        for op in ops {
            if let Some(before) = &op.before {
                body.remove
                    .push(RuleDto::of(self.removed_name(op, Some(read)), before));
            }
            if let Some(after) = &op.after {
                body.add
                    .push(RuleDto::of(&self.config.writes.rule_name, after));
            }
        }
        let body = serde_json::to_value(&body).map_err(|e| {
            Attempt::Final(SinkError::BadResponse {
                what: WHAT.into(),
                reason: format!("cannot encode the PATCH: {e}"),
            })
        })?;
        match self.call(Method::PATCH, Some(&body), WHAT).await {
            Ok(_) => Ok(Answer::Applied),
            // A 400 (problem-details) to a PATCH: the platform refused its content.
            Err(Attempt::Final(SinkError::Refused {
                status: 400, body, ..
            })) => Ok(Answer::Refused(body)),
            Err(other) => Err(other),
        }
    }

    /// The op's after-rule present under dialsync's name, and its before-rule gone from under
    /// the name it had when the plan was made (dialsync's, or an adopted rule's own).
    fn shows(&self, op: &Op, now: &DeviceDialPlan, planned_from: Option<&DeviceDialPlan>) -> bool {
        let removed_name = self.removed_name(op, planned_from);
        let added_name = self.config.writes.rule_name.as_str();
        let has = |name: &str, route: &Route| {
            now.rules
                .iter()
                .any(|r| &*r.name == name && r.prefix == route.prefix && r.tag == route.tag)
        };
        let added = op.after.as_ref().is_none_or(|after| has(added_name, after));
        let removed = op.before.as_ref().is_none_or(|before| {
            // A modify that keeps the route under the same name shows only its after-rule.
            (op.after.as_ref() == Some(before) && removed_name == added_name)
                || !has(removed_name, before)
        });
        added && removed
    }
}

impl LiveCloudSink {
    pub fn new(config: LiveCloudConfig) -> Result<Self, SinkError> {
        if config.writes.batch_size == 0 {
            return Err(SinkError::BadBatchSize);
        }
        for (url, key) in [
            (&config.url, "sbc.url"),
            (&config.token_url, "sbc.token_url"),
        ] {
            check_url(key, url).map_err(|e| SinkError::BadUrl {
                url: url.clone(),
                reason: format!("{key}: {e}"),
            })?;
        }
        for (value, name) in [
            (&config.customer_id, "customer_id"),
            (&config.site_location_id, "site_location_id"),
            (&config.dial_plan_id, "dial_plan_id"),
            (&config.client_id, "client_id"),
        ] {
            if value.is_empty() || value.contains(['/', '?', '#']) {
                return Err(SinkError::BadUrl {
                    url: config.url.clone(),
                    reason: format!("sbc.{name} {value:?} is empty or not a path segment"),
                });
            }
        }
        let client = build_client("sbc", &ClientSettings::new(config.writes.timeout))
            .map_err(SinkError::client("sbc"))?;
        let plan_url = format!(
            "{}/api/v2/customer/{}/sitelocation/{}/dialplan/{}",
            config.url.trim_end_matches('/'),
            config.customer_id,
            config.site_location_id,
            config.dial_plan_id
        );
        let tokens = TokenCache::new(ClientCredentials {
            token_url: config.token_url.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            scope: config.scope.clone(),
        });
        Ok(LiveCloudSink {
            config,
            plan_url,
            client,
            tokens,
            sent: Mutex::new(VecDeque::new()),
            requests: AtomicUsize::new(0),
        })
    }

    pub fn config(&self) -> &LiveCloudConfig {
        &self.config
    }

    /// Access tokens fetched so far.
    pub fn tokens_fetched(&self) -> usize {
        self.tokens.fetched()
    }

    /// The Name of the rule `op` removes: the rule at the op's index in the read the plan was
    /// made from, when it is the op's before-route (an adopted foreign rule keeps its own
    /// name), else dialsync's.
    fn removed_name<'a>(&'a self, op: &Op, planned_from: Option<&'a DeviceDialPlan>) -> &'a str {
        let (Some(before), Some(read)) = (&op.before, planned_from) else {
            return &self.config.writes.rule_name;
        };
        read.rules
            .iter()
            .find(|r| r.index == op.index && r.prefix == before.prefix && r.tag == before.tag)
            .map(|r| &*r.name)
            .unwrap_or(&self.config.writes.rule_name)
    }

    /// A valid token from the shared client-credentials cache (renewed early, or `force`).
    async fn token(&self, force: bool) -> Result<String, Attempt> {
        const WHAT: &str = "fetching an OAuth token";
        match self.tokens.token(&self.client, force).await {
            Ok(token) => Ok(token.expose().to_string()),
            // Fetching a token changes nothing: sent again like a read.
            Err(OAuthError::Transport(source)) => Err(no_answer(
                source,
                Access::Read,
                &format!("{WHAT} from {}", self.config.token_url),
            )),
            Err(OAuthError::Server {
                status,
                body,
                retry_after,
            }) => Err(Attempt::NotApplied(
                SinkError::Server {
                    what: format!("{WHAT} from {}", self.config.token_url),
                    status,
                    body,
                },
                retry_after,
            )),
            Err(OAuthError::Refused { status, reason }) => {
                Err(Attempt::Final(SinkError::Refused {
                    what: format!(
                        "{WHAT} from {} (check sbc.client_id {:?}, the client secret and sbc.scope)",
                        self.config.token_url, self.config.client_id
                    ),
                    status,
                    body: reason,
                }))
            }
            Err(OAuthError::BadBody(reason)) => Err(Attempt::Final(SinkError::BadResponse {
                what: WHAT.into(),
                reason,
            })),
        }
    }

    /// Waits until one more API request keeps within `rate`, sends it, and records when its
    /// answer came: the platform saw the request no later than that, so counting from there
    /// never undercounts the platform's window.
    async fn send_limited(
        &self,
        request: reqwest::RequestBuilder,
    ) -> reqwest::Result<reqwest::Response> {
        let (max, per) = self.config.rate;
        let max = max.max(1);
        let mut sent = self.sent.lock().await;
        loop {
            let now = Instant::now();
            while sent.front().is_some_and(|t| now.duration_since(*t) >= per) {
                sent.pop_front();
            }
            if sent.len() < max {
                break;
            }
            let oldest = *sent.front().expect("non-empty at the limit");
            let wait = per.saturating_sub(now.duration_since(oldest));
            tokio::time::sleep(wait + Duration::from_millis(1)).await;
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let result = request.send().await;
        sent.push_back(Instant::now());
        result
    }

    /// One API request with the token; a 401 fetches a new token and tries once more.
    async fn call(
        &self,
        method: Method,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<String, Attempt> {
        let access = if method == Method::GET {
            Access::Read
        } else {
            Access::Write
        };
        let mut refreshed = false;
        loop {
            let token = self.token(refreshed).await?;
            let mut request = self
                .client
                .request(method.clone(), &self.plan_url)
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let sent = self.send_limited(request).await;
            let answered = match receive(sent, access, what).await? {
                Reply::Done(text) => return Ok(text),
                Reply::Answered(answered) => answered,
            };
            return Err(match answered.status {
                StatusCode::UNAUTHORIZED if !refreshed => {
                    refreshed = true;
                    continue;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    Attempt::Final(SinkError::Refused {
                        what: format!(
                            "{what}: the platform refused a freshly fetched token for client \
                             {:?} (check its API permissions on customer {:?})",
                            self.config.client_id, self.config.customer_id
                        ),
                        status: answered.status.as_u16(),
                        body: problem_detail(&answered.body),
                    })
                }
                // The SBC's 409 means busy (DESIGN.md §5.1); Live Platform documents no such
                // meaning, and a REST conflict with the dial plan's state answers the same
                // way however often it is sent. Final, as it was before the shared verdict.
                StatusCode::CONFLICT => Attempt::Final(SinkError::Refused {
                    what: what.to_string(),
                    status: answered.status.as_u16(),
                    body: problem_detail(&answered.body),
                }),
                _ => answered.attempt(what, problem_detail),
            });
        }
    }
}

/// The `detail` of a problem-details body (with its `title` when there is no detail), or
/// the body itself, cut to log size.
fn problem_detail(body: &str) -> String {
    let parsed = serde_json::from_str::<serde_json::Value>(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    field("detail")
        .or_else(|| field("title"))
        .unwrap_or_else(|| truncate(body))
}
