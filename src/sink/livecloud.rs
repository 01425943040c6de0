//! The Live Platform sink: reads one dial plan of AudioCodes Live Platform and applies a
//! [`Plan`] to it through the dial-plan `PATCH` of DESIGN.md §5.2, with the journal of §6.
//!
//! It has the interface of the device sink ([`AudioCodesSink`](super::audiocodes::AudioCodesSink)):
//! `read` gives the same [`DeviceDialPlan`], `apply` the same [`ApplyReport`], errors are the
//! same [`SinkError`]. What differs is the platform:
//!
//! - Auth is an OAuth2 client-credentials token (Entra ID), cached until shortly before it
//!   expires; a 401 from the API drops it and fetches a new one once, a second 401 is fatal.
//! - The platform allows 10 requests per 10 s per client. The sink never reaches that limit:
//!   a sliding window (`rate`) makes it wait before a request that would exceed it. A 429
//!   (another agent sharing the client, a smaller limit than configured) is still retried,
//!   honouring `Retry-After`, as are 5xx answers.
//! - Live Platform rules have no index: a rule is its `name`, `prefix` and `tag`. [`read`]
//!   gives each rule a synthetic index, its position in `ruleDTO`. The planner only needs
//!   indexes to be stable within one cycle (read, plan, apply), which they are; they mean
//!   nothing to the platform and are never sent. `DeviceDialPlan::plan_index` is 0.
//! - An op becomes entries of a PATCH: an add an `add` entry, a delete a `remove` entry, a
//!   modify both (the old rule removed and the new one added in the same PATCH, which the
//!   platform applies atomically, so the number is never unrouted in between). A PATCH is
//!   all or nothing: a 400 (problem-details) to a batch makes the sink send its ops one by
//!   one, quarantining each refused op with the platform's `detail`, and holding back (and
//!   quarantining) every later op that touches numbers of a refused one, as the device sink
//!   does: the plan is make-before-break, so sending them could leave numbers unrouted.
//!
//! [`read`]: LiveCloudSink::read

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::dialplan::rule::DialPlanRule;
use crate::net::backoff::Backoff;
use crate::net::oauth::{ClientCredentials, OAuthError, TokenCache};
use crate::net::preview::truncate;
use crate::net::retry::retry_after;
use crate::net::secret::Secret;
use crate::plan::{Op, Plan, Route};
use crate::sink::audiocodes::{ApplyReport, DeviceDialPlan, SettleReport, SinkError};
use crate::sink::withheld::Withheld;
use crate::sink::ApplyControl;
use crate::store::{OpState, PlanId, Store};

/// The `[sbc]` settings for `sbc.kind = "livecloud"`.
///
/// `dial_plan_id` is needed by the URL of DESIGN.md §5.2 although §9 does not list it.
#[derive(Clone)]
pub struct LiveCloudConfig {
    /// API base URL, e.g. `https://live.example.net`.
    pub url: String,
    /// The OAuth2 token endpoint (Entra ID).
    pub token_url: String,
    pub client_id: String,
    /// Never logged (redacted in `Debug`).
    pub client_secret: String,
    pub scope: String,
    pub customer_id: String,
    pub site_location_id: String,
    pub dial_plan_id: String,
    /// The Name marking the rules dialsync owns (`dialplan.rule_name`).
    pub rule_name: String,
    /// Whether a plan may take over a foreign rule whose prefix it wants
    /// (`dialplan.adopt_foreign`).
    pub adopt_foreign: bool,
    /// Ops per PATCH (a modify counts once though it is two entries).
    pub batch_size: usize,
    /// Per HTTP request.
    pub timeout: Duration,
    /// At most `rate.0` API requests per `rate.1` (the platform's limit: 10 per 10 s).
    pub rate: (usize, Duration),
    /// The most time spent retrying one request before giving up with a transient error.
    pub retry_budget: Duration,
    /// The first backoff delay; it doubles per attempt up to `backoff_max`, with jitter.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for LiveCloudConfig {
    /// Defaults for everything but the addresses, the client and the dial plan (left empty).
    fn default() -> Self {
        LiveCloudConfig {
            url: String::new(),
            token_url: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            scope: String::new(),
            customer_id: String::new(),
            site_location_id: String::new(),
            dial_plan_id: String::new(),
            rule_name: "dialsync".into(),
            adopt_foreign: false,
            batch_size: 100,
            timeout: Duration::from_secs(30),
            rate: (10, Duration::from_secs(10)),
            retry_budget: Duration::from_secs(120),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(15),
        }
    }
}

impl fmt::Debug for LiveCloudConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCloudConfig")
            .field("url", &self.url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scope", &self.scope)
            .field("customer_id", &self.customer_id)
            .field("site_location_id", &self.site_location_id)
            .field("dial_plan_id", &self.dial_plan_id)
            .field("rule_name", &self.rule_name)
            .field("adopt_foreign", &self.adopt_foreign)
            .field("batch_size", &self.batch_size)
            .field("timeout", &self.timeout)
            .field("rate", &self.rate)
            .field("retry_budget", &self.retry_budget)
            .finish()
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

/// One attempt's failure, by what it says about whether the request landed.
enum Attempt {
    /// Certainly not acted on (429, connection never made, a token that could not be had).
    NotApplied(SinkError, Option<Duration>),
    /// May or may not have acted (timeout, dropped connection, 5xx to a PATCH): look first.
    Unknown(SinkError),
    /// The platform refused the request's content (400 problem-details): its `detail`.
    Rejected(String),
    /// Retrying cannot help.
    Final(SinkError),
}

/// A batch that did not land, and whether any of its ops might have.
struct BatchError {
    error: SinkError,
    uncertain: bool,
    unconfirmed: Vec<usize>,
}

enum BatchOutcome {
    Applied,
    Refused {
        reason: String,
        unconfirmed: Vec<usize>,
    },
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

impl LiveCloudSink {
    /// A fresh retry budget for one request (a batch, a read, the save).
    fn backoff(&self) -> Backoff {
        Backoff::new(
            self.config.backoff_initial,
            self.config.backoff_max,
            self.config.retry_budget,
        )
    }

    pub fn new(config: LiveCloudConfig) -> Result<Self, SinkError> {
        if config.batch_size == 0 {
            return Err(SinkError::BadBatchSize);
        }
        for (url, name) in [(&config.url, "url"), (&config.token_url, "token_url")] {
            let parsed = Url::parse(url).map_err(|e| SinkError::BadUrl {
                url: url.clone(),
                reason: format!("sbc.{name}: {e}"),
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(SinkError::BadUrl {
                    url: url.clone(),
                    reason: format!("sbc.{name}: unsupported scheme {:?}", parsed.scheme()),
                });
            }
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
        let client = Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| SinkError::Tls {
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
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
            client_secret: Secret::new(config.client_secret.clone()),
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

    /// Reads the dial plan. Indexes are synthetic: each rule's position in `ruleDTO`.
    pub async fn read(&self) -> Result<DeviceDialPlan, SinkError> {
        const WHAT: &str = "reading the Live Platform dial plan";
        let mut backoff = self.backoff();
        let body = loop {
            match self.call(Method::GET, None, WHAT).await {
                Ok(body) => break body,
                Err(Attempt::NotApplied(e, retry_after)) => match backoff.next(retry_after) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(e),
                },
                Err(Attempt::Unknown(e)) => match backoff.next(None) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(e),
                },
                Err(Attempt::Rejected(detail)) => {
                    return Err(SinkError::Refused {
                        what: WHAT.into(),
                        status: 400,
                        body: detail,
                    })
                }
                Err(Attempt::Final(e)) => return Err(e),
            }
        };
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
        let rows = dto.rule_dto.iter().enumerate().map(|(position, text)| {
            DialPlanRule::read(position as u32, &text.name, &text.prefix, &text.tag)
        });
        Ok(DeviceDialPlan::of_rows(0, rows))
    }

    /// Applies `plan` to the dial plan read as `device` (the read of this cycle: it names the
    /// rules that deletes and modifies remove).
    ///
    /// The plan is journaled before the first write; ops go in order, `batch_size` per PATCH,
    /// marked in flight before and done after. A PATCH refused with 400 is retried op by op,
    /// the refused op quarantined with the platform's `detail`; later ops touching its
    /// numbers are held back and quarantined too (see `Withheld`). When a PATCH's outcome is
    /// unknown (timeout, dropped connection, 5xx) the dial plan is re-read and only the ops
    /// whose effect it does not show are sent again. On an error after which some op may
    /// have landed the journal is left unfinished for [`LiveCloudSink::settle_unfinished`].
    pub async fn apply(
        &self,
        store: &mut Store,
        plan: &Plan,
        device: &DeviceDialPlan,
    ) -> Result<ApplyReport, SinkError> {
        self.apply_until(store, plan, device, &ApplyControl::default())
            .await
    }

    /// [`Self::apply`], stopping between batches once `stop` is requested: the batch in
    /// flight completes, the journal is finished as `stopped`, and the ops not sent are left
    /// for the next cycle's fresh plan.
    pub async fn apply_until(
        &self,
        store: &mut Store,
        plan: &Plan,
        device: &DeviceDialPlan,
        stop: &ApplyControl,
    ) -> Result<ApplyReport, SinkError> {
        device.guard(plan, &self.config.rule_name, self.config.adopt_foreign)?;
        if let Some(unfinished) = store.unfinished_journal()? {
            return Err(SinkError::Unsettled {
                plan: unfinished.id,
            });
        }
        let first_request = self.requests.load(Ordering::Relaxed);
        let mut report = ApplyReport::default();
        if plan.ops.is_empty() {
            return Ok(report);
        }
        let id = store.journal_begin(&plan.checksum, &plan.ops)?;
        let batch_size = self.config.batch_size;
        let mut withheld = Withheld::new("Live Platform");
        for (number, chunk) in plan.ops.chunks(batch_size).enumerate() {
            stop.record_progress(report.applied + report.quarantined.len(), plan.ops.len());
            if stop.requested() {
                report.stopped = true;
                break;
            }
            report.batches += 1;
            let first = number * batch_size;
            let mut seqs: Vec<usize> = Vec::with_capacity(chunk.len());
            for seq in first..first + chunk.len() {
                match withheld.blocking(&plan.ops[seq]) {
                    Some(reason) => quarantine(store, id, plan, seq, reason, &mut report)?,
                    None => seqs.push(seq),
                }
            }
            if seqs.is_empty() {
                continue;
            }
            match self.send_batch(store, id, plan, device, &seqs).await {
                Ok(BatchOutcome::Applied) => report.applied += seqs.len(),
                Ok(BatchOutcome::Refused {
                    reason,
                    unconfirmed,
                }) => {
                    report.applied += seqs.len() - unconfirmed.len();
                    if unconfirmed.len() == 1 {
                        withheld.refused(&plan.ops[unconfirmed[0]]);
                        quarantine(store, id, plan, unconfirmed[0], reason, &mut report)?;
                        continue;
                    }
                    // A PATCH is all or nothing: find the refused op by sending the ops one
                    // by one, in plan order, holding back those that depend on a refused one.
                    for (position, &seq) in unconfirmed.iter().enumerate() {
                        if let Some(reason) = withheld.blocking(&plan.ops[seq]) {
                            quarantine(store, id, plan, seq, reason, &mut report)?;
                            continue;
                        }
                        match self.send_batch(store, id, plan, device, &[seq]).await {
                            Ok(BatchOutcome::Applied) => report.applied += 1,
                            Ok(BatchOutcome::Refused { reason, .. }) => {
                                withheld.refused(&plan.ops[seq]);
                                quarantine(store, id, plan, seq, reason, &mut report)?
                            }
                            Err(e) => {
                                let later = &unconfirmed[position + 1..];
                                return Err(abandon(store, id, e, later));
                            }
                        }
                    }
                }
                Err(e) => {
                    let later: Vec<usize> = (first + chunk.len()..plan.ops.len()).collect();
                    return Err(abandon(store, id, e, &later));
                }
            }
        }
        stop.record_progress(report.applied + report.quarantined.len(), plan.ops.len());
        let outcome = if report.stopped {
            "stopped"
        } else if report.quarantined.is_empty() {
            "applied"
        } else {
            "partial"
        };
        store.journal_finish(id, outcome)?;
        report.requests = self.requests.load(Ordering::Relaxed) - first_request;
        Ok(report)
    }

    /// Settles a journal a crash (or an error with an unknown outcome) left unfinished, by
    /// reading the dial plan: an op not yet confirmed is marked done when the platform shows
    /// its effect (its after-rule under dialsync's name present, its before-rule under
    /// dialsync's name absent), and left otherwise for the next cycle's fresh plan. Nothing is
    /// written to the platform.
    pub async fn settle_unfinished(
        &self,
        store: &mut Store,
    ) -> Result<Option<SettleReport>, SinkError> {
        let Some(journal) = store.unfinished_journal()? else {
            return Ok(None);
        };
        let now = self.read().await?;
        let mut report = SettleReport {
            plan: journal.id,
            already_done: 0,
            confirmed: 0,
            not_applied: 0,
            failed: 0,
        };
        let name = self.config.rule_name.clone();
        for entry in &journal.ops {
            match entry.state {
                OpState::Done => report.already_done += 1,
                OpState::Failed => report.failed += 1,
                OpState::Pending | OpState::InFlight => {
                    if effect_shown(&entry.op, &now.rules, &name, &name) {
                        store.journal_mark_done(journal.id, entry.seq)?;
                        report.confirmed += 1;
                    } else {
                        report.not_applied += 1;
                    }
                }
            }
        }
        store.journal_finish(journal.id, "settled")?;
        Ok(Some(report))
    }

    /// The Name of the rule `op` removes: the device's rule at the op's index when it is the
    /// op's before-route (an adopted foreign rule keeps its own name), else dialsync's.
    fn removed_name<'a>(&'a self, op: &Op, device: &'a DeviceDialPlan) -> &'a str {
        let Some(before) = &op.before else {
            return &self.config.rule_name;
        };
        device
            .rules
            .iter()
            .find(|r| r.index == op.index && r.prefix == before.prefix && r.tag == before.tag)
            .map(|r| r.name.as_str())
            .unwrap_or(&self.config.rule_name)
    }

    /// Sends ops `seqs` as one PATCH until the platform confirms or refuses it.
    async fn send_batch(
        &self,
        store: &mut Store,
        id: PlanId,
        plan: &Plan,
        device: &DeviceDialPlan,
        seqs: &[usize],
    ) -> Result<BatchOutcome, BatchError> {
        const WHAT: &str = "patching the Live Platform dial plan";
        let fail = |error: SinkError| BatchError {
            error,
            uncertain: true,
            unconfirmed: Vec::new(),
        };
        let mut remaining: Vec<usize> = seqs.to_vec();
        let mut backoff = self.backoff();
        let mut verify = false;
        loop {
            if verify {
                match self.read().await {
                    Ok(now) => {
                        let mut still = Vec::with_capacity(remaining.len());
                        for seq in remaining {
                            let op = &plan.ops[seq];
                            let removed = self.removed_name(op, device);
                            if effect_shown(op, &now.rules, removed, &self.config.rule_name) {
                                store
                                    .journal_mark_done(id, seq as u32)
                                    .map_err(|e| fail(e.into()))?;
                            } else {
                                still.push(seq);
                            }
                        }
                        remaining = still;
                        verify = false;
                        if remaining.is_empty() {
                            return Ok(BatchOutcome::Applied);
                        }
                    }
                    Err(e) => return Err(fail(e)),
                }
            }
            let marks: Vec<u32> = remaining.iter().map(|&seq| seq as u32).collect();
            store
                .journal_mark_batch_in_flight(id, &marks)
                .map_err(|e| fail(e.into()))?;
            let mut body = PatchDto {
                dial_plan_id: &self.config.dial_plan_id,
                add: Vec::new(),
                remove: Vec::new(),
            };
            for &seq in &remaining {
                let op = &plan.ops[seq];
                if let Some(before) = &op.before {
                    body.remove
                        .push(RuleDto::of(self.removed_name(op, device), before));
                }
                if let Some(after) = &op.after {
                    body.add.push(RuleDto::of(&self.config.rule_name, after));
                }
            }
            let body = serde_json::to_value(&body).map_err(|e| {
                fail(SinkError::BadResponse {
                    what: WHAT.into(),
                    reason: format!("cannot encode the PATCH: {e}"),
                })
            })?;
            match self.call(Method::PATCH, Some(&body), WHAT).await {
                Ok(_) => {
                    store
                        .journal_mark_batch_done(id, &marks)
                        .map_err(|e| fail(e.into()))?;
                    return Ok(BatchOutcome::Applied);
                }
                Err(Attempt::Rejected(reason)) => {
                    return Ok(BatchOutcome::Refused {
                        reason,
                        unconfirmed: remaining,
                    })
                }
                Err(Attempt::NotApplied(e, retry_after)) => match backoff.next(retry_after) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => {
                        return Err(BatchError {
                            error: e,
                            uncertain: false,
                            unconfirmed: remaining,
                        })
                    }
                },
                Err(Attempt::Unknown(e)) => {
                    verify = true;
                    match backoff.next(None) {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => return Err(fail(e)),
                    }
                }
                Err(Attempt::Final(e)) => {
                    return Err(BatchError {
                        error: e,
                        uncertain: false,
                        unconfirmed: remaining,
                    })
                }
            }
        }
    }

    /// A valid token from the shared client-credentials cache (renewed early, or `force`).
    async fn token(&self, force: bool) -> Result<String, Attempt> {
        const WHAT: &str = "fetching an OAuth token";
        match self.tokens.token(&self.client, force).await {
            Ok(token) => Ok(token.expose().to_string()),
            Err(OAuthError::Transport(source)) => Err(Attempt::NotApplied(
                SinkError::Http {
                    what: format!("{WHAT} from {}", self.config.token_url),
                    source,
                },
                None,
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
        let write = method != Method::GET;
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
            let response = match self.send_limited(request).await {
                Ok(response) => response,
                Err(source) => {
                    let connect = source.is_connect();
                    let error = SinkError::Http {
                        what: what.to_string(),
                        source,
                    };
                    return Err(if connect || !write {
                        Attempt::NotApplied(error, None)
                    } else {
                        Attempt::Unknown(error)
                    });
                }
            };
            let status = response.status();
            let retry_after = retry_after(&response);
            let text = match response.text().await {
                Ok(text) => text,
                Err(source) => {
                    let error = SinkError::Http {
                        what: what.to_string(),
                        source,
                    };
                    return Err(if write {
                        Attempt::Unknown(error)
                    } else {
                        Attempt::NotApplied(error, None)
                    });
                }
            };
            return match status {
                s if s.is_success() => Ok(text),
                StatusCode::UNAUTHORIZED if !refreshed => {
                    refreshed = true;
                    continue;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    Err(Attempt::Final(SinkError::Refused {
                        what: format!(
                            "{what}: the platform refused a freshly fetched token for client \
                             {:?} (check its API permissions on customer {:?})",
                            self.config.client_id, self.config.customer_id
                        ),
                        status: status.as_u16(),
                        body: problem_detail(&text),
                    }))
                }
                StatusCode::TOO_MANY_REQUESTS => Err(Attempt::NotApplied(
                    SinkError::Server {
                        what: format!("{what} (rate limited)"),
                        status: 429,
                        body: problem_detail(&text),
                    },
                    retry_after,
                )),
                StatusCode::BAD_REQUEST if write => Err(Attempt::Rejected(problem_detail(&text))),
                s if s.is_server_error() => {
                    let error = SinkError::Server {
                        what: what.to_string(),
                        status: s.as_u16(),
                        body: problem_detail(&text),
                    };
                    Err(if write {
                        Attempt::Unknown(error)
                    } else {
                        Attempt::NotApplied(error, retry_after)
                    })
                }
                s => Err(Attempt::Final(SinkError::Refused {
                    what: what.to_string(),
                    status: s.as_u16(),
                    body: problem_detail(&text),
                })),
            };
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

fn quarantine(
    store: &mut Store,
    id: PlanId,
    plan: &Plan,
    seq: usize,
    reason: String,
    report: &mut ApplyReport,
) -> Result<(), SinkError> {
    store.journal_mark_failed(id, seq as u32, &reason)?;
    report.quarantined.push((plan.ops[seq].clone(), reason));
    Ok(())
}

/// Ends an apply on an error: ops that certainly did not land are marked failed and the
/// journal finished; when some may have landed the journal stays unfinished to be settled.
fn abandon(store: &mut Store, id: PlanId, failure: BatchError, not_sent: &[usize]) -> SinkError {
    if failure.uncertain {
        return failure.error;
    }
    let reason = failure.error.to_string();
    let recorded = failure
        .unconfirmed
        .iter()
        .chain(not_sent)
        .try_for_each(|&seq| store.journal_mark_failed(id, seq as u32, &reason))
        .and_then(|()| store.journal_finish(id, "failed"));
    // A journal that cannot record the failure stays unfinished and is settled later: safe.
    let _ = recorded;
    failure.error
}

/// Whether `rules` show `op` applied: its after-rule (under `added_name`) present and its
/// before-rule (under `removed_name`) absent.
fn effect_shown(op: &Op, rules: &[DialPlanRule], removed_name: &str, added_name: &str) -> bool {
    let has = |name: &str, route: &Route| {
        rules
            .iter()
            .any(|r| r.name == name && r.prefix == route.prefix && r.tag == route.tag)
    };
    let added = op.after.as_ref().is_none_or(|after| has(added_name, after));
    let removed = op.before.as_ref().is_none_or(|before| {
        // A modify that keeps the route under the same name shows only its after-rule.
        (op.after.as_ref() == Some(before) && removed_name == added_name)
            || !has(removed_name, before)
    });
    added && removed
}
