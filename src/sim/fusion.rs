//! An emulator of the Netaxis Fusion API as the `fusion` source uses it (DESIGN.md §5.3): login
//! (answered with a `2fa_payload` when the host is not trusted), access tokens that expire,
//! refresh, a machine token, `phone_usage`, a number-range feed and the Operator Connect
//! numbers of each Teams subscription, with cursor pagination (`page_size`, `next`), 404 for
//! an empty list, both error body shapes, and faults on demand.
//!
//! Every request it did not expect (unknown path or method, a list request without a Bearer
//! token or without dialsync's User-Agent, a login that is not JSON) is recorded in
//! [`FusionState::unexpected`], which tests assert to be empty.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    is_path_segment, lock, BodyFault, Conn, Emulator, PageShape, Running, Serve, SimData,
    SimDataError,
};

/// Who may call and where the group lives.
#[derive(Clone, Debug)]
pub struct FusionSimConfig {
    pub username: String,
    pub password: String,
    /// `false`: a correct login gets a `2fa_payload` instead of tokens.
    pub trusted_host: bool,
    /// A static machine token that is always valid, if any.
    pub machine_token: Option<String>,
    pub access_lifetime: Duration,
    pub refresh_lifetime: Duration,
    pub draas_instance: String,
    pub group_uuid: String,
    /// The range feed's path under `/draas/{draas_instance}/` (`{group_uuid}` substituted).
    pub ranges_path: String,
    /// Page size when the client sends none; `None` answers everything at once.
    pub default_page_size: Option<usize>,
    /// `true`: an empty list answers 404 (as Fusion does); `false`: an empty list.
    pub empty_is_404: bool,
}

impl Default for FusionSimConfig {
    fn default() -> Self {
        FusionSimConfig {
            username: "svc-dialsync".into(),
            password: "fusion-s3cret".into(),
            trusted_host: true,
            machine_token: None,
            access_lifetime: Duration::from_secs(3600),
            refresh_lifetime: Duration::from_secs(86400),
            draas_instance: "example".into(),
            group_uuid: "aaf9dba1-9469-40fa-be50-22298d68010d".into(),
            ranges_path: "groups/{group_uuid}/number_ranges".into(),
            default_page_size: None,
            empty_is_404: true,
        }
    }
}

/// A running Fusion emulator. Dropping it stops the server.
pub type FusionSim = Running<FusionState>;

impl FusionSim {
    /// Starts the emulator on `listen` (port 0 picks a free port).
    pub async fn start(listen: SocketAddr, config: FusionSimConfig) -> std::io::Result<FusionSim> {
        Running::bind(listen, config, FusionState::default()).await
    }
}

/// How the range feed is served.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RangesForm {
    /// A bare JSON array (never paginated).
    #[default]
    Array,
    /// An object with the list under this field (and `next` when paginated).
    Object(String),
}

/// A fault for the next list request (or every one, see [`FusionState::sticky_fault`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 500 with `{"error":{"code":9000,...}}`.
    ServerError,
    /// 500 with `{"error":"..."}`.
    ServerErrorText,
    /// Answer normally, but only after this long.
    Delay(Duration),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 429 with `Retry-After: secs`.
    TooManyRequests { retry_after_secs: u64 },
    /// 403 with the object-shaped error body.
    Forbidden,
    /// 200 with the page spoilt (huge, not JSON, dripping, not UTF-8, of another shape).
    Body(BodyFault),
}

/// Where the list is in a `phone_usage` page and which fields are numbers.
const USAGE_SHAPE: PageShape<'static> = PageShape {
    list_key: "phoneUsages",
    number_keys: &["phoneNumber"],
};

/// The range feed's pages (object form, field `ranges` unless configured otherwise).
const RANGE_NUMBER_KEYS: &[&str] = &["rangeStart", "rangeEnd"];

/// Where the list is in an Operator Connect page (its numbers are inside `draas` and
/// `msTeams`, not at the item's top level).
const OC_SHAPE: PageShape<'static> = PageShape {
    list_key: "numbers",
    number_keys: &[],
};

/// The query parameters of `phone_usage` and the range feed.
const LIST_PARAMETERS: &[&str] = &["page_size", "next"];

/// The query parameters of the Operator Connect numbers: Netaxis's portal also sends
/// `search` (the text typed in its filter box), so Fusion takes it. The emulator accepts it
/// and does not filter by it; dialsync never sends it.
const OC_PARAMETERS: &[&str] = &["page_size", "next", "search"];

/// The platform's state, for assertions and out-of-band edits.
#[derive(Debug, Default)]
pub struct FusionState {
    /// The `phone_usage` items, served as they are (tests may put malformed items here).
    pub phone_usages: Vec<Value>,
    /// The range feed's items.
    pub ranges: Vec<Value>,
    pub ranges_form: RangesForm,
    /// The Operator Connect numbers of each `(tenant, subscription)`, served as they are
    /// (`{"draas": {...}, "msTeams": {...}}`; see [`oc_number`]). A pair not listed has no
    /// such path: 404, as Fusion answers.
    pub oc_numbers: HashMap<(String, String), Vec<Value>>,
    /// The `(tenant, subscription)` of every Operator Connect list request that passed the
    /// token check, in order.
    pub oc_asked: Vec<(String, String)>,
    /// Valid access tokens and refresh tokens with their expiry.
    pub access_tokens: HashMap<String, Instant>,
    pub refresh_tokens: HashMap<String, Instant>,
    pub logins: usize,
    pub refreshes: usize,
    /// Requests answered 401.
    pub unauthorized: usize,
    /// List requests answered (any status), and those that carried `page_size`.
    pub list_requests: usize,
    pub page_sizes_seen: Vec<usize>,
    /// Faults for the next list requests, in order.
    pub faults: VecDeque<Fault>,
    /// A fault for every list request while set.
    pub sticky_fault: Option<Fault>,
    /// Follow-up pages from this page number on (1 = the second page) answer 404 as if the
    /// cursor had expired: a broken chain.
    pub break_chain_at: Option<usize>,
    /// Requests the platform does not serve ("METHOD path" plus what was wrong).
    pub unexpected: Vec<String>,
    counter: u64,
}

impl FusionState {
    /// Expires every access token (refresh tokens stay valid).
    pub fn expire_access_tokens(&mut self) {
        self.access_tokens.clear();
    }

    /// Expires every refresh token as well.
    pub fn expire_all_tokens(&mut self) {
        self.access_tokens.clear();
        self.refresh_tokens.clear();
    }

    /// `count` phone usages `+{first}`, `+{first+1}`..., tenant `tenant`.
    pub fn add_numbers(&mut self, first: u64, count: u64, tenant: &str) {
        self.phone_usages.reserve(count as usize);
        for n in first..first + count {
            self.phone_usages.push(usage(&format!("+{n}"), tenant));
        }
    }

    /// The Operator Connect list of `(tenant, subscription)`, created empty if need be.
    pub fn oc_list(&mut self, tenant: &str, subscription: &str) -> &mut Vec<Value> {
        self.oc_numbers
            .entry((tenant.to_string(), subscription.to_string()))
            .or_default()
    }

    fn token(&mut self, kind: &str) -> String {
        self.counter += 1;
        format!("{kind}-{}-{}", self.counter, rand::random::<u32>())
    }
}

/// What `dialsync sim fusion --data FILE` serves: credentials, the group's identity and its
/// items, in Fusion's own wire shapes. See [`load_data`] for the file format.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionSimData {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub trusted_host: Option<bool>,
    #[serde(default)]
    pub machine_token: Option<String>,
    pub draas_instance: String,
    pub group_uuid: String,
    #[serde(default)]
    pub ranges_path: Option<String>,
    /// `phone_usage` items, served as they are.
    #[serde(rename = "phoneUsages", default)]
    pub phone_usages: Vec<Value>,
    /// Number-range objects, served as they are (a bare JSON array).
    #[serde(default)]
    pub ranges: Vec<Value>,
    /// Page size when the client sends none; absent: everything at once.
    #[serde(default)]
    pub page_size: Option<NonZeroUsize>,
    /// The Operator Connect numbers of Teams subscriptions.
    #[serde(default)]
    pub oc_subscriptions: Vec<OcSubscriptionData>,
}

/// One Teams subscription of a data file: where its Operator Connect numbers live, and the
/// `numbers` list of its answer, as Fusion sends it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcSubscriptionData {
    pub tenant: String,
    pub subscription: String,
    pub numbers: Vec<Value>,
}

impl FusionSimData {
    /// The emulator's configuration: the file's fields over [`FusionSimConfig::default`].
    pub fn config(&self) -> FusionSimConfig {
        let defaults = FusionSimConfig::default();
        FusionSimConfig {
            username: self.username.clone(),
            password: self.password.clone(),
            trusted_host: self.trusted_host.unwrap_or(defaults.trusted_host),
            machine_token: self.machine_token.clone(),
            draas_instance: self.draas_instance.clone(),
            group_uuid: self.group_uuid.clone(),
            ranges_path: self.ranges_path.clone().unwrap_or(defaults.ranges_path),
            default_page_size: self.page_size.map(NonZeroUsize::get),
            ..defaults
        }
    }
}

/// Reads the data file of `dialsync sim fusion`. The file holds test credentials in clear.
///
/// ```json
/// {
///   "username": "svc-dialsync", "password": "...",
///   "trusted_host": true,              // optional; false answers logins with a 2fa_payload
///   "machine_token": "...",            // optional; a Bearer token that is always valid
///   "draas_instance": "demo", "group_uuid": "aaf9dba1-...",
///   "ranges_path": "groups/{group_uuid}/number_ranges",   // optional (this default)
///   "phoneUsages": [ {"distributor","group","reseller","subscription","tenant",
///                     "phoneNumber","username"}, ... ],
///   "ranges": [ {"id","countryCode","rangeStart","rangeEnd","numberType",...}, ... ],
///                                      // optional; bounds are national numbers
///   "oc_subscriptions": [              // optional
///     {"tenant": "3f1c9a70-...", "subscription": "9a2e41b8-...",
///      "numbers": [ {"draas": {"connectionId","countryCode","fullNumber","id","nsn"},
///                    "msTeams": {"batch","country","number","provisionedOnMSTeams",
///                                "uploadedOn","usage"}}, ... ]}
///   ],
///   "page_size": 10                    // optional; absent: no pagination
/// }
/// ```
///
/// (Comments are for this description only: the file is plain JSON.) `phoneUsages` is the
/// list of the `phone_usage` answer (optional too), `ranges` the array of the number-range
/// feed and each subscription's `numbers` the list of its Operator Connect answer, all as
/// Fusion sends them and served as they are, so a real answer can be pasted in. An unknown
/// key in the wrapper objects is an error, and so is a subscription listed twice or an id
/// that cannot be a path segment; the items themselves are not checked, so a file can hold
/// the malformed items a test needs.
pub fn load_data(path: &Path) -> Result<FusionSimData, SimDataError> {
    super::load(path)
}

impl SimData for FusionSimData {
    const KIND: &'static str = "fusion";
    type State = FusionState;

    fn into_parts(self) -> (FusionSimConfig, FusionState) {
        let config = self.config();
        let state = FusionState {
            phone_usages: self.phone_usages,
            ranges: self.ranges,
            oc_numbers: self
                .oc_subscriptions
                .into_iter()
                .map(|oc| ((oc.tenant, oc.subscription), oc.numbers))
                .collect(),
            ..FusionState::default()
        };
        (config, state)
    }

    fn check(&self) -> Result<(), String> {
        for (key, value) in [
            ("draas_instance", &self.draas_instance),
            ("group_uuid", &self.group_uuid),
        ] {
            if !is_path_segment(value) {
                return Err(format!(
                    "{key} {value:?} must be letters, digits and -._~ only"
                ));
            }
        }
        let config = self.config();
        let ranges_path = config.ranges_path.replace("{group_uuid}", &self.group_uuid);
        let ranges_path = ranges_path.trim_start_matches('/');
        if !ranges_path.split('/').all(is_path_segment) {
            return Err(format!(
                "ranges_path {:?} must be a relative path of letters, digits and -._~ \
                 ({{group_uuid}} is substituted)",
                config.ranges_path
            ));
        }
        if ranges_path == format!("groups/{}/sdrs/phone_usage", self.group_uuid) {
            return Err("ranges_path is the phone_usage path".into());
        }
        for (at, oc) in self.oc_subscriptions.iter().enumerate() {
            for (key, value) in [("tenant", &oc.tenant), ("subscription", &oc.subscription)] {
                if !is_path_segment(value) {
                    return Err(format!(
                        "oc_subscriptions[{at}].{key} {value:?} must be letters, digits and -._~ \
                         only"
                    ));
                }
            }
            let twice = self.oc_subscriptions[..at]
                .iter()
                .any(|o| o.tenant == oc.tenant && o.subscription == oc.subscription);
            if twice {
                return Err(format!(
                    "oc_subscriptions[{at}]: tenant {:?} subscription {:?} is listed twice",
                    oc.tenant, oc.subscription
                ));
            }
        }
        Ok(())
    }
}

/// A `phone_usage` item as Fusion sends it.
pub fn usage(number: &str, tenant: &str) -> Value {
    json!({
        "distributor": "Netaxis Distributor",
        "group": "Netaxis",
        "reseller": "Netaxis Reseller",
        "subscription": "Operator Connect DEV",
        "tenant": tenant,
        "phoneNumber": number,
        "username": "Richard Lobster",
    })
}

/// An Operator Connect number as Fusion sends it: `+{country_code}{nsn}`, known to Fusion's
/// inventory (`draas`) and uploaded to Teams (`msTeams`), provisioned there or not.
pub fn oc_number(country_code: u16, nsn: &str, provisioned: bool) -> Value {
    let full = format!("+{country_code}{nsn}");
    let country = match country_code {
        32 => "BE",
        33 => "FR",
        31 => "NL",
        27 => "ZA",
        _ => "",
    };
    json!({
        "draas": {
            "connectionId": 4711,
            "countryCode": country_code,
            "fullNumber": full,
            "id": 90210,
            "nsn": nsn,
        },
        "msTeams": {
            "batch": "batch-2025-02-03",
            "country": country,
            "number": full,
            "provisionedOnMSTeams": provisioned,
            "uploadedOn": "2025-02-03T09:41:07Z",
            "usage": "CallingUserAssignment",
        },
    })
}

type Shared = super::Shared<FusionState>;

impl Emulator for FusionState {
    type Config = FusionSimConfig;
    const SERVE: Serve = super::serve_with_faults;

    /// The platform's paths, under the configured instance and group.
    fn routes(config: &FusionSimConfig) -> Router<Shared> {
        let instance = format!("/api/v01/draas/{}", config.draas_instance);
        let usage_path = format!("{instance}/groups/{}/sdrs/phone_usage", config.group_uuid);
        let ranges_path = format!(
            "{instance}/{}",
            config
                .ranges_path
                .trim_start_matches('/')
                .replace("{group_uuid}", &config.group_uuid)
        );
        Router::new()
            .route("/api/v01/auth/login", post(login).fallback(unexpected))
            .route(
                "/api/v01/auth/access_token",
                get(refresh).fallback(unexpected),
            )
            .route(&usage_path, get(phone_usage).fallback(unexpected))
            .route(&ranges_path, get(number_ranges).fallback(unexpected))
            .route(
                &format!(
                    "{instance}/tenants/{{tenant}}/subscriptions/{{subscription}}/msteams/oc/numbers"
                ),
                get(oc_number_list).fallback(unexpected),
            )
            .fallback(unexpected)
    }
}

/// `{"error":{"code":N,"reason":"..."}}`.
fn error(status: StatusCode, code: u32, reason: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "reason": reason}})),
    )
        .into_response()
}

/// `{"error":"..."}`.
fn error_text(status: StatusCode, reason: &str) -> Response {
    (status, Json(json!({ "error": reason }))).into_response()
}

async fn unexpected(State(shared): State<Shared>, method: Method, uri: Uri) -> Response {
    lock(&shared.state)
        .unexpected
        .push(format!("{method} {}", uri.path()));
    error(
        StatusCode::NOT_FOUND,
        1014,
        "The requested object does not exist",
    )
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

async fn login(State(shared): State<Shared>, body: Bytes) -> Response {
    let config = &shared.config;
    let mut state = lock(&shared.state);
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let (Some(username), Some(password)) = (
        parsed.as_ref().and_then(|v| v["username"].as_str()),
        parsed.as_ref().and_then(|v| v["password"].as_str()),
    ) else {
        state
            .unexpected
            .push("POST /api/v01/auth/login without a JSON username and password".into());
        return error(
            StatusCode::BAD_REQUEST,
            9000,
            "username and password required",
        );
    };
    if username != config.username || password != config.password {
        state.unauthorized += 1;
        return error_text(StatusCode::UNAUTHORIZED, "invalid credentials");
    }
    state.logins += 1;
    if !config.trusted_host {
        return Json(json!({"2fa_payload": {"method": "totp", "user": username}})).into_response();
    }
    let access = state.token("access");
    let refresh = state.token("refresh");
    let now = Instant::now();
    state
        .access_tokens
        .insert(access.clone(), now + config.access_lifetime);
    state
        .refresh_tokens
        .insert(refresh.clone(), now + config.refresh_lifetime);
    Json(json!({"access_token": access, "refresh_token": refresh})).into_response()
}

async fn refresh(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let mut state = lock(&shared.state);
    let Some(token) = bearer(&headers).map(str::to_string) else {
        state
            .unexpected
            .push("GET /api/v01/auth/access_token without a Bearer token".into());
        state.unauthorized += 1;
        return error_text(StatusCode::UNAUTHORIZED, "missing refresh token");
    };
    let valid = state
        .refresh_tokens
        .get(&token)
        .is_some_and(|expiry| *expiry > Instant::now());
    if !valid {
        state.unauthorized += 1;
        return error(StatusCode::UNAUTHORIZED, 9001, "refresh token expired");
    }
    state.refreshes += 1;
    let access = state.token("access");
    let expiry = Instant::now() + shared.config.access_lifetime;
    state.access_tokens.insert(access.clone(), expiry);
    Json(json!({ "access_token": access })).into_response()
}

/// What a list request may go on to do once authorised and past any fault.
enum Admit {
    Serve {
        offset: usize,
        page: usize,
        size: Option<usize>,
        /// A fault that spoils the page once built.
        spoil: Option<BodyFault>,
    },
    Answer(Response),
}

/// Checks the token, applies a fault and reads the cursor.
async fn admit(
    shared: &Shared,
    headers: &HeaderMap,
    uri: &Uri,
    query: &HashMap<String, String>,
    parameters: &[&str],
) -> Admit {
    let fault = {
        let mut state = lock(&shared.state);
        state.list_requests += 1;
        let agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !agent.starts_with("dialsync/") {
            state
                .unexpected
                .push(format!("GET {} with User-Agent {agent:?}", uri.path()));
        }
        let Some(token) = bearer(headers) else {
            state
                .unexpected
                .push(format!("GET {} without a Bearer token", uri.path()));
            state.unauthorized += 1;
            return Admit::Answer(error_text(StatusCode::UNAUTHORIZED, "missing token"));
        };
        let machine = shared.config.machine_token.as_deref() == Some(token);
        let valid = machine
            || state
                .access_tokens
                .get(token)
                .is_some_and(|expiry| *expiry > Instant::now());
        if !valid {
            state.unauthorized += 1;
            return Admit::Answer(error(
                StatusCode::UNAUTHORIZED,
                9001,
                "access token invalid or expired",
            ));
        }
        for key in query.keys() {
            if !parameters.contains(&key.as_str()) {
                state
                    .unexpected
                    .push(format!("GET {} with unknown parameter {key}", uri.path()));
            }
        }
        let fault = state.faults.pop_front().or(state.sticky_fault.clone());
        if let Some(size) = query.get("page_size").and_then(|s| s.parse().ok()) {
            state.page_sizes_seen.push(size);
        }
        fault
    };
    match fault {
        Some(Fault::ServerError) => {
            return Admit::Answer(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                9000,
                "Uncatched error on server side",
            ))
        }
        Some(Fault::ServerErrorText) => {
            return Admit::Answer(error_text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "database unavailable",
            ))
        }
        Some(Fault::Garbage) => {
            return Admit::Answer(
                (StatusCode::OK, "<html>502 Bad Gateway</html>{\"phone").into_response(),
            )
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            return Admit::Answer(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, retry_after_secs.to_string())],
                    Json(json!({"error": "too many requests"})),
                )
                    .into_response(),
            )
        }
        Some(Fault::Forbidden) => {
            return Admit::Answer(error(
                StatusCode::FORBIDDEN,
                9002,
                "The API consumer doesn't have sufficient rights to perform this action",
            ))
        }
        Some(Fault::Delay(wait)) => tokio::time::sleep(wait).await,
        Some(Fault::Body(_)) | None => {}
    }
    let spoil = match fault {
        Some(Fault::Body(spoil)) => Some(spoil),
        _ => None,
    };
    let size = query
        .get("page_size")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|s| *s > 0)
        .or(shared.config.default_page_size);
    let (offset, page) = match query.get("next") {
        None => (0, 0),
        Some(cursor) => match parse_cursor(cursor) {
            Some((offset, page)) => {
                let broken = lock(&shared.state)
                    .break_chain_at
                    .is_some_and(|at| page >= at);
                if broken {
                    return Admit::Answer(error(
                        StatusCode::NOT_FOUND,
                        1060,
                        "An error occurred while reading the list of phone usages: cursor expired",
                    ));
                }
                (offset, page)
            }
            None => {
                lock(&shared.state)
                    .unexpected
                    .push(format!("GET {} with a cursor it never issued", uri.path()));
                return Admit::Answer(error(StatusCode::BAD_REQUEST, 1060, "invalid cursor"));
            }
        },
    };
    Admit::Serve {
        offset,
        page,
        size,
        spoil,
    }
}

fn parse_cursor(cursor: &str) -> Option<(usize, usize)> {
    let (offset, page) = cursor.strip_prefix("c")?.split_once('p')?;
    Some((offset.parse().ok()?, page.parse().ok()?))
}

/// The bounds of this page in `items` and the `next` cursor, if any.
fn page_of(len: usize, offset: usize, page: usize, size: Option<usize>) -> (usize, usize, Value) {
    let offset = offset.min(len);
    let end = match size {
        Some(size) => (offset + size).min(len),
        None => len,
    };
    let next = if end < len {
        Value::String(format!("c{end}p{}", page + 1))
    } else {
        Value::Null
    };
    (offset, end, next)
}

/// A page of a list, serialised without copying the items.
#[derive(Serialize)]
struct UsagePage<'a> {
    #[serde(rename = "phoneUsages")]
    phone_usages: &'a [Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<Value>,
}

async fn phone_usage(
    State(shared): State<Shared>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (offset, page, size, spoil) =
        match admit(&shared, &headers, &uri, &query, LIST_PARAMETERS).await {
            Admit::Answer(response) => return response,
            Admit::Serve {
                offset,
                page,
                size,
                spoil,
            } => (offset, page, size, spoil),
        };
    let state = lock(&shared.state);
    if state.phone_usages.is_empty() && shared.config.empty_is_404 {
        return error(
            StatusCode::NOT_FOUND,
            1060,
            "No MS Teams tenant found or the path tenant / subscription doesn't exist",
        );
    }
    let (from, to, next) = page_of(state.phone_usages.len(), offset, page, size);
    let body = UsagePage {
        phone_usages: &state.phone_usages[from..to],
        next: size.map(|_| next),
    };
    if let Some(spoil) = spoil {
        let page = serde_json::to_value(&body).unwrap_or_default();
        drop(state);
        return spoil.answer(page, &USAGE_SHAPE, &conn);
    }
    let text = serde_json::to_string(&body).unwrap_or_default();
    drop(state);
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

async fn number_ranges(
    State(shared): State<Shared>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (offset, page, size, spoil) =
        match admit(&shared, &headers, &uri, &query, LIST_PARAMETERS).await {
            Admit::Answer(response) => return response,
            Admit::Serve {
                offset,
                page,
                size,
                spoil,
            } => (offset, page, size, spoil),
        };
    let state = lock(&shared.state);
    if state.ranges.is_empty() && shared.config.empty_is_404 {
        return error(
            StatusCode::NOT_FOUND,
            1014,
            "The requested object does not exist",
        );
    }
    let body = match &state.ranges_form {
        RangesForm::Array => Value::Array(state.ranges.clone()),
        RangesForm::Object(field) => {
            let (from, to, next) = page_of(state.ranges.len(), offset, page, size);
            let mut body = json!({ field.as_str(): &state.ranges[from..to] });
            if size.is_some() {
                body["next"] = next;
            }
            body
        }
    };
    if let Some(spoil) = spoil {
        let list_key = match &state.ranges_form {
            RangesForm::Array => String::new(),
            RangesForm::Object(field) => field.clone(),
        };
        drop(state);
        let shape = PageShape {
            list_key: &list_key,
            number_keys: RANGE_NUMBER_KEYS,
        };
        return spoil.answer(body, &shape, &conn);
    }
    Json(body).into_response()
}

/// A page of a subscription's Operator Connect numbers, serialised without copying them.
/// `next` is always there, a string, empty on the last page (the portal reads it as a
/// string).
#[derive(Serialize)]
struct OcPage<'a> {
    numbers: &'a [Value],
    next: String,
}

/// `GET .../tenants/{tenant}/subscriptions/{subscription}/msteams/oc/numbers`: one page of the
/// subscription's Operator Connect numbers. A subscription the emulator does not hold is a
/// path that does not exist (404, as Fusion answers it, and not unexpected: the client
/// cannot know); one that holds no numbers answers 404 too while `empty_is_404`.
async fn oc_number_list(
    State(shared): State<Shared>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    UrlPath((tenant, subscription)): UrlPath<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (offset, page, size, spoil) =
        match admit(&shared, &headers, &uri, &query, OC_PARAMETERS).await {
            Admit::Answer(response) => return response,
            Admit::Serve {
                offset,
                page,
                size,
                spoil,
            } => (offset, page, size, spoil),
        };
    let mut state = lock(&shared.state);
    state.oc_asked.push((tenant.clone(), subscription.clone()));
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            1014,
            "No MS Teams tenant found or the path tenant / subscription doesn't exist",
        )
    };
    let Some(numbers) = state.oc_numbers.get(&(tenant, subscription)) else {
        return not_found();
    };
    if numbers.is_empty() && shared.config.empty_is_404 {
        return not_found();
    }
    let (from, to, next) = page_of(numbers.len(), offset, page, size);
    let body = OcPage {
        numbers: &numbers[from..to],
        next: next.as_str().unwrap_or_default().to_string(),
    };
    if let Some(spoil) = spoil {
        let page = serde_json::to_value(&body).unwrap_or_default();
        drop(state);
        return spoil.answer(page, &OC_SHAPE, &conn);
    }
    let text = serde_json::to_string(&body).unwrap_or_default();
    drop(state);
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}
