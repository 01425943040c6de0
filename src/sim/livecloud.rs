//! An emulator of AudioCodes Live Platform's dial-plan API (DESIGN.md §5.2), as strict as the
//! platform: an OAuth2 client-credentials token endpoint with tokens that expire, `GET` and
//! `PATCH` of one dial plan with a Bearer token, problem-details errors, a PATCH validated
//! wholly before anything is applied (and then applied atomically), and the rate limit of
//! 10 requests per 10 seconds per client (both numbers configurable so tests stay fast).
//!
//! The v3 number list (`GET /api/v3/oc/numbers`) serves each tenant's numbers page by page,
//! with faults on demand ([`LiveState::faults`]: 500, a body that is not JSON, 429 with
//! `Retry-After`, a slow answer) and broken page chains.
//!
//! Every request it did not expect (unknown path or method, another customer's dial plan) is
//! recorded in [`LiveState::unexpected`], which tests assert to be empty.
//!
//! The rate limit is a sliding window over the dial-plan API requests a client (the
//! `client_id` behind the token) made and that were not themselves refused with 429; the
//! token endpoint (Entra ID in production, a different service) is not counted.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{lock, BodyFault, Conn, Emulator, PageShape, Running, Serve, SimData, SimDataError};

/// The token endpoint's path on the emulator.
pub const TOKEN_PATH: &str = "/oauth2/v2.0/token";

/// One rule of a Live Platform dial plan: no index, identified by all three fields.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveRule {
    pub name: String,
    pub prefix: String,
    pub tag: String,
}

impl LiveRule {
    pub fn new(name: &str, prefix: &str, tag: &str) -> LiveRule {
        LiveRule {
            name: name.into(),
            prefix: prefix.into(),
            tag: tag.into(),
        }
    }
}

/// The v3 number list's path.
pub const NUMBERS_PATH: &str = "/api/v3/oc/numbers";

/// One number as the v3 number list gives it, with an explicit `acquiredNumberStatus`.
pub fn live_number(telephone: &str, tenant: &str, status: &str) -> Value {
    json!({
        "telephoneNumber": telephone,
        "tenantId": tenant,
        "acquiredNumberStatus": status,
        "numberType": "DID",
    })
}

/// One number in the shape of the vendor's own example answers to "Get Operator Connect
/// Customer Numbers": every field those examples show, and `"acquiredNumberStatus": null`,
/// which is what each of them carries for a number in service. (The values other than the
/// number and the tenant are this emulator's own.)
pub fn vendor_number(telephone: &str, tenant: &str) -> Value {
    json!({
        "uploadTelephoneNumberEntryId": 410021,
        "source": "webapi",
        "sbcList": [{"sbcName": "oc1.sim.example.net [192.0.2.10]", "sbcId": 3}],
        "id": 150044,
        "uploadToAccountJobId": 5120,
        "whenCreated": "2025-02-03T09:41:07.1185203+00:00",
        "acquiredNumberStatus": null,
        "telephoneNumber": telephone,
        "callingProfileId": "0d6f3c1e-5a7b-4c2d-9e8f-1a2b3c4d5e6f",
        "acquiredCapabilities": ["Office365", "InboundCalling", "OutboundCalling", "UserAssignment"],
        "availableCapabilities": [
            "FirstPartyAppAssignment", "Office365", "InboundCalling", "OutboundCalling",
            "UserAssignment"
        ],
        "acquiredOn": "2025-02-03T09:38:52.4410937+00:00",
        "isoCountryCode": "BE",
        "tnUploadJobId": "7c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e",
        "locationId": null,
        "civicAddressId": null,
        "assignmentStatus": null,
        "tenantId": tenant,
        "aslcht": null,
        "aslsct": null,
        "aslvCode": null,
        "asticks": null,
    })
}

/// Who may call and which dial plan exists.
#[derive(Clone, Debug)]
pub struct LiveSimConfig {
    pub client_id: String,
    pub client_secret: String,
    /// The scope a token request must name.
    pub scope: String,
    pub token_lifetime: Duration,
    pub customer_id: String,
    pub site_location_id: String,
    pub dial_plan_id: String,
    /// At most `rate_max` requests per `rate_window` per client.
    pub rate_max: usize,
    pub rate_window: Duration,
}

impl Default for LiveSimConfig {
    fn default() -> Self {
        LiveSimConfig {
            client_id: "dialsync-client".into(),
            client_secret: "client-s3cret".into(),
            scope: "api://livecloud/.default".into(),
            token_lifetime: Duration::from_secs(3600),
            customer_id: "cust-1".into(),
            site_location_id: "site-1".into(),
            dial_plan_id: "dp-1".into(),
            rate_max: 10,
            rate_window: Duration::from_secs(10),
        }
    }
}

/// A running Live Platform emulator. Dropping it stops the server.
pub type LiveCloudSim = Running<LiveState>;

impl LiveCloudSim {
    /// Starts the emulator on `listen` (port 0 picks a free port) holding `rules`.
    pub async fn start(
        listen: SocketAddr,
        config: LiveSimConfig,
        rules: Vec<LiveRule>,
    ) -> std::io::Result<LiveCloudSim> {
        let state = LiveState {
            rules,
            ..LiveState::default()
        };
        Running::bind(listen, config, state).await
    }

    /// The token endpoint's URL.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.url())
    }
}

/// A fault for the next v3 number-list request (or every one, see [`LiveState::sticky_fault`]).
/// The dial-plan API has its own ([`LiveState::fail_next_patches`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 500 with a problem-details body.
    ServerError,
    /// 200 with a body that is not JSON (an HTML error page from a proxy).
    Garbage,
    /// 429 with `Retry-After: secs` and a problem-details body.
    TooManyRequests { retry_after_secs: u64 },
    /// Answer normally, but only after this long.
    Delay(Duration),
    /// 200 with the page spoilt (huge, not JSON, dripping, not UTF-8, of another shape).
    Body(BodyFault),
}

/// What `dialsync sim livecloud --data FILE` serves: the OAuth client, the dial plan's
/// identity and rules, and each Microsoft tenant's numbers in the v3 list's own wire shape.
/// See [`load_data`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSimData {
    pub client_id: String,
    pub client_secret: String,
    pub scope: String,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub site_location_id: Option<String>,
    #[serde(default)]
    pub dial_plan_id: Option<String>,
    /// `msTenantId` -> the `data` items of its number list, served as they are.
    pub tenants: HashMap<String, Vec<Value>>,
    /// The dial plan's rules at start.
    #[serde(default)]
    pub rules: Vec<LiveRule>,
}

impl LiveSimData {
    /// The emulator's configuration: the file's fields over [`LiveSimConfig::default`].
    pub fn config(&self) -> LiveSimConfig {
        let defaults = LiveSimConfig::default();
        LiveSimConfig {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            scope: self.scope.clone(),
            customer_id: self.customer_id.clone().unwrap_or(defaults.customer_id),
            site_location_id: self
                .site_location_id
                .clone()
                .unwrap_or(defaults.site_location_id),
            dial_plan_id: self.dial_plan_id.clone().unwrap_or(defaults.dial_plan_id),
            ..defaults
        }
    }
}

/// Reads the data file of `dialsync sim livecloud`. The file holds test credentials in clear.
///
/// ```json
/// {
///   "client_id": "...", "client_secret": "...", "scope": "api://livecloud/.default",
///   "customer_id": "cust-1", "site_location_id": "site-1", "dial_plan_id": "dp-1",
///                                      // optional (these defaults)
///   "tenants": {
///     "3371606b-f589-4b50-b827-1a95cacf7225": [
///       {"telephoneNumber": "+3238200100", "tenantId": "3371606b-...",
///        "acquiredNumberStatus": null, ...}, ...
///     ]
///   },
///   "rules": [ {"name": "manual", "prefix": "+3238200999#", "tag": "Trunk=x"} ]   // optional
/// }
/// ```
///
/// (Comments are for this description only: the file is plain JSON.) Each tenant's list is
/// the `data` of the v3 number list, served as it is (paginated by the client's `pageSize`),
/// so a real answer can be pasted in; the items themselves are not checked. The token
/// endpoint is `/oauth2/v2.0/token` on the emulator. An unknown key in the wrapper objects or
/// in a rule is an error, and so is a rule the platform would refuse (bad name, prefix or
/// tag) or a rule listed twice.
pub fn load_data(path: &std::path::Path) -> Result<LiveSimData, SimDataError> {
    super::load(path)
}

impl SimData for LiveSimData {
    const KIND: &'static str = "livecloud";
    type State = LiveState;

    fn into_parts(self) -> (LiveSimConfig, LiveState) {
        let config = self.config();
        let state = LiveState {
            rules: self.rules,
            numbers: self.tenants,
            ..LiveState::default()
        };
        (config, state)
    }

    fn check(&self) -> Result<(), String> {
        for (at, rule) in self.rules.iter().enumerate() {
            check_rule(rule).map_err(|e| format!("rules[{at}]: {e}"))?;
            if self.rules[..at].contains(rule) {
                return Err(format!("rules[{at}] is listed twice"));
            }
        }
        Ok(())
    }
}

/// The platform's state, for assertions and out-of-band edits.
#[derive(Debug, Default)]
pub struct LiveState {
    /// The dial plan's rules, in the order `GET` lists them (adds are appended).
    pub rules: Vec<LiveRule>,
    /// Valid tokens: token -> (client_id, expiry).
    pub tokens: HashMap<String, (String, Instant)>,
    /// Tokens issued so far.
    pub tokens_issued: usize,
    /// Token requests refused (bad client, secret, grant or scope).
    pub token_refusals: usize,
    /// Dial-plan API requests answered 401 (no, unknown or expired token).
    pub unauthorized: usize,
    /// Requests answered 429.
    pub throttled: usize,
    /// `GET`s and `PATCH`es answered 200.
    pub gets: usize,
    pub patches: usize,
    /// The `detail` of every PATCH refused with 400.
    pub rejected: Vec<String>,
    /// Requests the platform does not serve ("METHOD path").
    pub unexpected: Vec<String>,
    /// Fault injection: the next this many PATCHes get 503 and apply nothing.
    pub fail_next_patches: usize,
    /// Fault injection: the next this many valid PATCHes apply, then answer 503 (a lost
    /// answer: the client cannot tell the PATCH landed).
    pub lose_next_answers: usize,
    /// The v3 number list: tenant (`msTenantId`) -> its numbers, as JSON objects
    /// (`telephoneNumber`, `tenantId`, `acquiredNumberStatus`, ...) served as they are, so a
    /// test can put malformed items in. A tenant not listed has no numbers.
    pub numbers: HashMap<String, Vec<Value>>,
    /// Number-list pages answered 200.
    pub number_pages: usize,
    /// Fault injection: `totalPages` claims this many pages more than there are (the
    /// extra pages answer with empty `data`): a page chain that ends early.
    pub numbers_extra_pages: usize,
    /// Fault injection: once this many number pages have been answered, every token is
    /// revoked (a token that dies in the middle of a paginated fetch); fires once.
    pub revoke_tokens_after_pages: Option<usize>,
    /// Fault injection: the page with this number loses its last item while `totalPages`
    /// and `totalRecords` still count it (a truncated page).
    pub truncate_number_page: Option<usize>,
    /// Number-list requests that passed the token check (any answer).
    pub number_requests: usize,
    /// Faults for the next number-list requests, in order.
    pub faults: VecDeque<Fault>,
    /// A fault for every number-list request while set.
    pub sticky_fault: Option<Fault>,
    /// Per client: when its counted requests arrived, oldest first.
    window: HashMap<String, VecDeque<Instant>>,
}

impl LiveState {
    /// Invalidates every token, as a key rotation would: the next API call gets 401.
    pub fn revoke_tokens(&mut self) {
        self.tokens.clear();
    }
}

type Shared = super::Shared<LiveState>;

impl Emulator for LiveState {
    type Config = LiveSimConfig;
    const SERVE: Serve = super::serve_with_faults;

    /// The token endpoint, the dial plan, and the v3 number list.
    fn routes(_: &LiveSimConfig) -> Router<Shared> {
        Router::new()
            .route(TOKEN_PATH, post(token).fallback(unexpected))
            .route(
                "/api/v2/customer/{customer}/sitelocation/{site}/dialplan/{plan}",
                get(read_plan).patch(patch_plan).fallback(unexpected),
            )
            .route(NUMBERS_PATH, get(list_numbers).fallback(unexpected))
            .fallback(unexpected)
    }
}

/// An RFC 7807 problem-details answer.
fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

async fn unexpected(State(shared): State<Shared>, method: Method, uri: Uri) -> Response {
    lock(&shared.state)
        .unexpected
        .push(format!("{method} {}", uri.path()));
    problem(
        StatusCode::NOT_FOUND,
        "Not Found",
        &format!("no resource {method} {}", uri.path()),
    )
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(State(shared): State<Shared>, Form(form): Form<TokenRequest>) -> Response {
    let config = &shared.config;
    let mut state = lock(&shared.state);
    if form.grant_type.as_deref() != Some("client_credentials") {
        state.token_refusals += 1;
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    if form.client_id.as_deref() != Some(config.client_id.as_str())
        || form.client_secret.as_deref() != Some(config.client_secret.as_str())
    {
        state.token_refusals += 1;
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    if form.scope.as_deref() != Some(config.scope.as_str()) {
        state.token_refusals += 1;
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "the requested scope is not valid for this client",
        );
    }
    state.tokens_issued += 1;
    let now = Instant::now();
    state.tokens.retain(|_, (_, expiry)| *expiry > now);
    let access_token = format!("tok-{}-{}", state.tokens_issued, now.elapsed().as_nanos());
    state.tokens.insert(
        access_token.clone(),
        (config.client_id.clone(), now + config.token_lifetime),
    );
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": config.token_lifetime.as_secs_f64().ceil() as u64,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NumbersQuery {
    ms_tenant_id: Option<String>,
    page_number: Option<String>,
    page_size: Option<String>,
}

/// One page of the v3 number list, serialised straight from the tenant's list: copying a
/// million-number list per page would make the emulator, not the client, the bottleneck of a
/// bulk test.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NumbersPage<'a> {
    current_page: usize,
    page_size: usize,
    total_pages: usize,
    total_records: usize,
    data: &'a [Value],
}

/// `GET /api/v3/oc/numbers?msTenantId=..&pageNumber=..&pageSize=..`: one page of a tenant's
/// numbers, pages numbered from one. A valid Bearer token is required; the number list is not
/// counted against the dial-plan rate limit. A missing or non-numeric parameter is a 400 and
/// is recorded as unexpected. A fault, if one is due, is applied once token and parameters
/// passed.
async fn list_numbers(
    State(shared): State<Shared>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    uri: Uri,
    axum::extract::Query(query): axum::extract::Query<NumbersQuery>,
) -> Response {
    let (tenant, page, size, fault) = {
        let mut state = lock(&shared.state);
        let now = Instant::now();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let valid = bearer
            .and_then(|token| state.tokens.get(token))
            .is_some_and(|(_, expiry)| *expiry > now);
        if !valid {
            state.unauthorized += 1;
            return problem(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "missing, unknown or expired bearer token",
            );
        }
        state.number_requests += 1;
        let parsed = (|| {
            let tenant = query.ms_tenant_id.filter(|t| !t.is_empty())?;
            let page: usize = query.page_number?.parse().ok().filter(|&p| p >= 1)?;
            let size: usize = query
                .page_size?
                .parse()
                .ok()
                .filter(|&s| (1..=1000).contains(&s))?;
            Some((tenant, page, size))
        })();
        let Some((tenant, page, size)) = parsed else {
            state
                .unexpected
                .push(format!("GET {}?{}", uri.path(), uri.query().unwrap_or("")));
            return problem(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                "msTenantId, pageNumber (>= 1) and pageSize (1..=1000) are required",
            );
        };
        let fault = state.faults.pop_front().or(state.sticky_fault.clone());
        (tenant, page, size, fault)
    };
    match fault {
        Some(Fault::ServerError) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                "injected fault: the number store is unavailable",
            )
        }
        Some(Fault::Garbage) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "<html>502 Bad Gateway</html>{\"data",
            )
                .into_response()
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            let mut response = problem(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "injected fault: slow down",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_secs),
            );
            return response;
        }
        Some(Fault::Delay(wait)) => tokio::time::sleep(wait).await,
        Some(Fault::Body(_)) | None => {}
    }
    let mut state = lock(&shared.state);
    let all = state.numbers.get(&tenant).map_or(&[][..], Vec::as_slice);
    let total_pages = all.len().div_ceil(size) + state.numbers_extra_pages;
    let from = (page - 1).saturating_mul(size).min(all.len());
    let mut to = from.saturating_add(size).min(all.len());
    if state.truncate_number_page == Some(page) && to > from {
        to -= 1;
    }
    let numbers_page = NumbersPage {
        current_page: page,
        page_size: size,
        total_pages,
        total_records: all.len(),
        data: &all[from..to],
    };
    if let Some(Fault::Body(spoil)) = fault {
        let page = serde_json::to_value(&numbers_page).unwrap_or_default();
        state.number_pages += 1;
        drop(state);
        let shape = PageShape {
            list_key: "data",
            number_keys: &["telephoneNumber"],
        };
        return spoil.answer(page, &shape, &conn);
    }
    let body = serde_json::to_string(&numbers_page);
    let text = match body {
        Ok(text) => text,
        Err(e) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                &format!("cannot serialise the page: {e}"),
            )
        }
    };
    state.number_pages += 1;
    if state.revoke_tokens_after_pages == Some(state.number_pages) {
        state.revoke_tokens_after_pages = None;
        state.revoke_tokens();
    }
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

/// Authenticates and rate-limits one dial-plan API request, and checks it names the dial
/// plan the platform holds.
fn admit(
    shared: &Shared,
    headers: &HeaderMap,
    ids: &(String, String, String),
    method: &Method,
    uri: &Uri,
) -> Result<(), Box<Response>> {
    let config = &shared.config;
    let mut state = lock(&shared.state);
    let now = Instant::now();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let client = bearer
        .and_then(|token| state.tokens.get(token))
        .filter(|(_, expiry)| *expiry > now)
        .map(|(client, _)| client.clone());
    let Some(client) = client else {
        state.unauthorized += 1;
        let mut response = problem(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing, unknown or expired bearer token",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        return Err(Box::new(response));
    };
    let window = config.rate_window;
    let max = config.rate_max;
    let arrivals = state.window.entry(client).or_default();
    while arrivals
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        arrivals.pop_front();
    }
    if arrivals.len() >= max {
        let oldest = *arrivals.front().expect("non-empty at the limit");
        let wait = window.saturating_sub(now.duration_since(oldest));
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        state.throttled += 1;
        let mut response = problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            &format!("at most {max} requests per {window:?}"),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_str(&seconds.to_string()).expect("digits"),
        );
        return Err(Box::new(response));
    }
    arrivals.push_back(now);
    if ids.0 != config.customer_id
        || ids.1 != config.site_location_id
        || ids.2 != config.dial_plan_id
    {
        state.unexpected.push(format!("{method} {}", uri.path()));
        return Err(Box::new(problem(
            StatusCode::NOT_FOUND,
            "Not Found",
            "no such customer, site location or dial plan",
        )));
    }
    Ok(())
}

async fn read_plan(
    State(shared): State<Shared>,
    Path(ids): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = admit(&shared, &headers, &ids, &method, &uri) {
        return *refusal;
    }
    let mut state = lock(&shared.state);
    state.gets += 1;
    Json(json!({
        "dialPlanId": shared.config.dial_plan_id,
        "ruleDTO": state.rules,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchBody {
    dial_plan_id: String,
    #[serde(default)]
    add: Vec<LiveRule>,
    #[serde(default)]
    remove: Vec<LiveRule>,
}

/// A rule the platform would push to the device: the device's limits, as the emulators read
/// them (not dialsync's).
fn check_rule(rule: &LiveRule) -> Result<(), String> {
    super::device_rule::check(&rule.name, &rule.prefix, &rule.tag)
}

/// The dial plan after `body`, or why the whole PATCH is refused: removes first (each must
/// exist, once), then adds (each valid and not already present).
fn patched(
    rules: &[LiveRule],
    body: &PatchBody,
    dial_plan_id: &str,
) -> Result<Vec<LiveRule>, String> {
    if body.dial_plan_id != dial_plan_id {
        return Err(format!(
            "dialPlanId {:?} does not match the dial plan of the URL",
            body.dial_plan_id
        ));
    }
    let mut next = rules.to_vec();
    for rule in &body.remove {
        match next.iter().position(|r| r == rule) {
            Some(at) => {
                next.remove(at);
            }
            None => {
                return Err(format!(
                    "remove: no rule {{name {:?}, prefix {:?}, tag {:?}}} in the dial plan",
                    rule.name, rule.prefix, rule.tag
                ))
            }
        }
    }
    for rule in &body.add {
        check_rule(rule).map_err(|e| format!("add: {e}"))?;
        if next.contains(rule) {
            return Err(format!(
                "add: rule {{name {:?}, prefix {:?}, tag {:?}}} already exists",
                rule.name, rule.prefix, rule.tag
            ));
        }
        next.push(rule.clone());
    }
    Ok(next)
}

async fn patch_plan(
    State(shared): State<Shared>,
    Path(ids): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = admit(&shared, &headers, &ids, &method, &uri) {
        return *refusal;
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_body {
        let detail = "Content-Type must be application/json";
        lock(&shared.state).rejected.push(detail.into());
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            detail,
        );
    }
    let mut state = lock(&shared.state);
    if state.fail_next_patches > 0 {
        state.fail_next_patches -= 1;
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "injected fault: nothing applied",
        );
    }
    let outcome = serde_json::from_slice::<PatchBody>(&body)
        .map_err(|e| format!("malformed body: {e}"))
        .and_then(|body| patched(&state.rules, &body, &shared.config.dial_plan_id));
    match outcome {
        Ok(next) => {
            state.rules = next;
            state.patches += 1;
            if state.lose_next_answers > 0 {
                state.lose_next_answers -= 1;
                return problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable",
                    "injected fault: applied, answer lost",
                );
            }
            Json(json!({
                "dialPlanId": shared.config.dial_plan_id,
                "ruleDTO": state.rules,
            }))
            .into_response()
        }
        Err(detail) => {
            state.rejected.push(detail.clone());
            problem(StatusCode::BAD_REQUEST, "Bad Request", &detail)
        }
    }
}
