//! An emulator of Netaxis APIO as the `apio` source uses it (DESIGN.md §5.4): APIO core JWT
//! login (`POST /api/v01/auth/login`, tokens that expire) with the gateway proxied under a
//! prefix (`/api/v01/p1` by default), and the gateway's own session login
//! (`POST /api/v1/login/`, a `sessionid` cookie); the two Immediate Trunking Connectivity list
//! endpoints per tenant/group with data set by tests; 404 for a group without the service; 207
//! partial success, 429 and 503 on demand.
//!
//! Trailing slashes: every gateway path ends with `/`. A request without it is answered as
//! Django's `APPEND_SLASH` does (the gateway's `sessionid` cookie is Django's): `301 Moved
//! Permanently` to the path with the slash, and recorded as unexpected.
//!
//! Every request it did not expect (unknown path or method, a missing slash, a list request
//! without credentials or without dialsync's User-Agent, a login that is not JSON) is recorded
//! in [`ApioState::unexpected`], which tests assert to be empty.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{lock, BodyFault, Conn, Emulator, PageShape, Running, Serve, SimData, SimDataError};

const ITC: &str = "services/immediate_trunking_connectivity";

/// Who may call and where the gateway is proxied.
#[derive(Clone, Debug)]
pub struct ApioSimConfig {
    pub username: String,
    pub password: String,
    pub token_lifetime: Duration,
    /// Where APIO core proxies the gateway's `/api/v1` (JWT requests).
    pub proxy_prefix: String,
}

impl Default for ApioSimConfig {
    fn default() -> Self {
        ApioSimConfig {
            username: "svc-dialsync".into(),
            password: "apio-s3cret".into(),
            token_lifetime: Duration::from_secs(3600),
            proxy_prefix: "/api/v01/p1".into(),
        }
    }
}

/// A running APIO emulator. Dropping it stops the server.
pub type ApioSim = Running<ApioState>;

impl ApioSim {
    /// Starts the emulator on `listen` (port 0 picks a free port).
    pub async fn start(listen: SocketAddr, config: ApioSimConfig) -> std::io::Result<ApioSim> {
        Running::bind(listen, config, ApioState::default()).await
    }
}

/// A group's Immediate Trunking Connectivity service.
#[derive(Clone, Debug, Default)]
pub struct ItcGroup {
    /// `false`: both endpoints answer 404 "service is not assigned to this group".
    pub assigned: bool,
    /// Items served as they are (tests may put malformed items here).
    pub numbers: Vec<Value>,
    pub prefixes: Vec<Value>,
}

/// A fault for the next ITC list request (or every one, see [`ApioState::sticky_fault`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 207 Multi-Status with a partial body.
    PartialSuccess,
    /// 429 with `Retry-After: secs`.
    TooManyRequests { retry_after_secs: u64 },
    /// 503 Service Unavailable.
    Unavailable,
    /// 200 with the list answer spoilt (huge, not JSON, dripping, not UTF-8, of another
    /// shape).
    Body(BodyFault),
}

/// The platform's state, for assertions and out-of-band edits.
#[derive(Debug, Default)]
pub struct ApioState {
    /// Groups by `(tenant, group)`; an unknown group answers 404 like an unassigned service.
    pub groups: HashMap<(String, String), ItcGroup>,
    pub tokens: HashMap<String, Instant>,
    pub sessions: HashMap<String, ()>,
    pub jwt_logins: usize,
    pub session_logins: usize,
    /// Requests answered 401/403 for lack of valid credentials.
    pub unauthorized: usize,
    /// ITC list requests answered (any status).
    pub list_requests: usize,
    /// Faults for the next list requests, in order.
    pub faults: VecDeque<Fault>,
    /// A fault for every list request while set (after [`ApioState::faults`] ran out).
    pub sticky_fault: Option<Fault>,
    /// Requests the platform does not serve ("METHOD path" plus what was wrong).
    pub unexpected: Vec<String>,
    counter: u64,
}

impl ApioState {
    /// The group `(tenant, group)`, created with the service assigned.
    pub fn group(&mut self, tenant: &str, group: &str) -> &mut ItcGroup {
        self.groups
            .entry((tenant.to_string(), group.to_string()))
            .or_insert_with(|| ItcGroup {
                assigned: true,
                ..ItcGroup::default()
            })
    }

    /// Expires every JWT.
    pub fn expire_tokens(&mut self) {
        self.tokens.clear();
    }

    /// Ends every gateway session.
    pub fn expire_sessions(&mut self) {
        self.sessions.clear();
    }

    fn secret(&mut self, kind: &str) -> String {
        self.counter += 1;
        format!("{kind}{}x{}", self.counter, rand::random::<u32>())
    }
}

/// What `dialsync sim apio --data FILE` serves: credentials, the proxy prefix and the ITC
/// items of each tenant/group, in the gateway's own wire shapes. See [`load_data`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApioSimData {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub proxy_prefix: Option<String>,
    pub groups: Vec<ApioSimGroup>,
}

/// One tenant/group of an [`ApioSimData`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApioSimGroup {
    pub tenant: String,
    pub group: String,
    /// `false`: the group's ITC endpoints answer 404 "service is not assigned".
    #[serde(default)]
    pub assigned: Option<bool>,
    /// Items of the `numbers/` answer, served as they are.
    #[serde(default)]
    pub numbers: Vec<Value>,
    /// Items of the `prefixes/` answer, served as they are.
    #[serde(default)]
    pub prefixes: Vec<Value>,
}

impl ApioSimData {
    /// The emulator's configuration: the file's fields over [`ApioSimConfig::default`].
    pub fn config(&self) -> ApioSimConfig {
        let defaults = ApioSimConfig::default();
        ApioSimConfig {
            username: self.username.clone(),
            password: self.password.clone(),
            proxy_prefix: self.proxy_prefix.clone().unwrap_or(defaults.proxy_prefix),
            ..defaults
        }
    }

    /// The groups as the emulator keeps them.
    pub fn itc_groups(&self) -> HashMap<(String, String), ItcGroup> {
        self.groups
            .iter()
            .map(|g| {
                let itc = ItcGroup {
                    assigned: g.assigned.unwrap_or(true),
                    numbers: g.numbers.clone(),
                    prefixes: g.prefixes.clone(),
                };
                ((g.tenant.clone(), g.group.clone()), itc)
            })
            .collect()
    }
}

/// Reads the data file of `dialsync sim apio`. The file holds test credentials in clear.
///
/// ```json
/// {
///   "username": "svc-dialsync", "password": "...",
///   "proxy_prefix": "/api/v01/p1",     // optional (this default): JWT requests' gateway
///   "groups": [
///     { "tenant": "footenant", "group": "foogroup",
///       "assigned": true,              // optional; false: the ITC endpoints answer 404
///       "numbers":  [ {"minPhoneNumber","maxPhoneNumber","active",...}, ... ],  // optional
///       "prefixes": [ {"prefix": "+32-01","active","extensionRangeStart",
///                      "extensionRangeEnd",...}, ... ] }                        // optional
///   ]
/// }
/// ```
///
/// (Comments are for this description only: the file is plain JSON.) `numbers` and
/// `prefixes` are the lists of the gateway's two ITC answers, served as they are, so a real
/// answer can be pasted in. An unknown key in the wrapper objects is an error, and so is a
/// tenant/group listed twice; the items themselves are not checked.
pub fn load_data(path: &Path) -> Result<ApioSimData, SimDataError> {
    super::load(path)
}

impl SimData for ApioSimData {
    const KIND: &'static str = "apio";
    type State = ApioState;

    fn into_parts(self) -> (ApioSimConfig, ApioState) {
        let state = ApioState {
            groups: self.itc_groups(),
            ..ApioState::default()
        };
        (self.config(), state)
    }

    fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for g in &self.groups {
            if !seen.insert((&g.tenant, &g.group)) {
                return Err(format!(
                    "tenant {:?} group {:?} is listed twice",
                    g.tenant, g.group
                ));
            }
        }
        Ok(())
    }
}

/// A number item as the gateway sends it (`max` may be `""`).
pub fn number(min: &str, max: &str, active: bool) -> Value {
    json!({
        "minPhoneNumber": min,
        "maxPhoneNumber": max,
        "groupId": "ApioGrpTest",
        "userId": "",
        "lastName": "",
        "firstName": "",
        "phoneNumber": "",
        "extension": "",
        "emailAddress": "",
        "enterpriseTrunk": "",
        "active": active,
        "extensionLength": ""
    })
}

/// A prefix item as the gateway sends it (extension range `""` when open).
pub fn prefix(prefix: &str, start: &str, end: &str, active: bool) -> Value {
    json!({
        "prefix": prefix,
        "groupId": "ApioGrpTest",
        "userId": "",
        "lastName": "",
        "firstName": "",
        "phoneNumber": "",
        "extension": "",
        "department": {"tenantId": "ApioSpTest", "groupId": "ApioGrpTest"},
        "emailAddress": "",
        "enterpriseTrunk": "",
        "active": active,
        "extensionRangeStart": start,
        "extensionRangeEnd": end
    })
}

type Shared = super::Shared<ApioState>;

impl Emulator for ApioState {
    type Config = ApioSimConfig;
    const SERVE: Serve = super::serve_with_faults;

    /// One handler routes every path itself: the proxy prefix and the trailing slashes are
    /// judged there, not by the router.
    fn routes(_: &ApioSimConfig) -> Router<Shared> {
        Router::new().fallback(handle)
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// How a gateway request authenticated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Jwt,
    Session,
}

async fn handle(
    State(shared): State<Shared>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path == "/api/v01/auth/login" && method == Method::POST {
        return login(&shared, &body, Via::Jwt, &path);
    }
    if path == "/api/v1/login/" && method == Method::POST {
        return login(&shared, &body, Via::Session, &path);
    }
    let prefix = format!("/{}", shared.config.proxy_prefix.trim_matches('/'));
    let (via, rest) = if let Some(rest) = path.strip_prefix(&prefix) {
        (Via::Jwt, rest)
    } else if let Some(rest) = path.strip_prefix("/api/v1") {
        (Via::Session, rest)
    } else {
        return unexpected(&shared, &method, &path, "");
    };
    if path == "/api/v1/login" || path == "/api/v01/auth/login/" {
        return unexpected(&shared, &method, &path, "");
    }
    let Some((tenant, group, list, slash)) = itc_path(rest) else {
        return unexpected(&shared, &method, &path, "");
    };
    if method != Method::GET {
        return unexpected(&shared, &method, &path, "");
    }
    if !slash {
        lock(&shared.state)
            .unexpected
            .push(format!("{method} {path} without the trailing slash"));
        return (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, format!("{path}/"))],
        )
            .into_response();
    }
    let request = ListRequest {
        via,
        path: &path,
        tenant: &tenant,
        group: &group,
        list,
    };
    list_answer(&shared, &headers, &conn, &request)
}

/// One ITC list request, once routed.
struct ListRequest<'a> {
    via: Via,
    path: &'a str,
    tenant: &'a str,
    group: &'a str,
    list: &'static str,
}

fn unexpected(shared: &Shared, method: &Method, path: &str, what: &str) -> Response {
    lock(&shared.state)
        .unexpected
        .push(format!("{method} {path}{what}"));
    error(StatusCode::NOT_FOUND, "not found")
}

/// `/tenant/{t}/group/{g}/services/immediate_trunking_connectivity/{numbers|prefixes}[/]`.
fn itc_path(rest: &str) -> Option<(String, String, &'static str, bool)> {
    let slash = rest.ends_with('/');
    let rest = rest.strip_prefix("/tenant/")?.trim_end_matches('/');
    let (tenant, rest) = rest.split_once("/group/")?;
    let (group, rest) = rest.split_once('/')?;
    let list = rest.strip_prefix(ITC)?.strip_prefix('/')?;
    let list = match list {
        "numbers" => "numbers",
        "prefixes" => "prefixes",
        _ => return None,
    };
    Some((decode(tenant)?, decode(group)?, list, slash))
}

/// Percent-decodes a path segment.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn login(shared: &Shared, body: &[u8], via: Via, path: &str) -> Response {
    let config = &shared.config;
    let mut state = lock(&shared.state);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let (Some(username), Some(password)) = (
        parsed.as_ref().and_then(|v| v["username"].as_str()),
        parsed.as_ref().and_then(|v| v["password"].as_str()),
    ) else {
        state
            .unexpected
            .push(format!("POST {path} without a JSON username and password"));
        return error(StatusCode::BAD_REQUEST, "username and password required");
    };
    if username != config.username || password != config.password {
        state.unauthorized += 1;
        return error(StatusCode::UNAUTHORIZED, "invalid credentials");
    }
    match via {
        Via::Jwt => {
            state.jwt_logins += 1;
            let token = state.secret("jwt");
            let expiry = Instant::now() + config.token_lifetime;
            state.tokens.insert(token.clone(), expiry);
            Json(json!({ "access_token": token })).into_response()
        }
        Via::Session => {
            state.session_logins += 1;
            let session = state.secret("s");
            state.sessions.insert(session.clone(), ());
            (
                [(
                    header::SET_COOKIE,
                    format!("sessionid={session}; HttpOnly; Path=/; SameSite=Lax"),
                )],
                Json(json!({})),
            )
                .into_response()
        }
    }
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "sessionid")
        .map(|(_, value)| value.to_string())
}

fn list_answer(
    shared: &Shared,
    headers: &HeaderMap,
    conn: &Conn,
    request: &ListRequest<'_>,
) -> Response {
    let ListRequest {
        via,
        path,
        tenant,
        group,
        list,
    } = *request;
    let mut state = lock(&shared.state);
    state.list_requests += 1;
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !agent.starts_with("dialsync/") {
        state
            .unexpected
            .push(format!("GET {path} with User-Agent {agent:?}"));
    }
    let authorised = match via {
        Via::Jwt => {
            let token = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match token {
                None => {
                    state
                        .unexpected
                        .push(format!("GET {path} without a Bearer token"));
                    false
                }
                Some(token) => state
                    .tokens
                    .get(token)
                    .is_some_and(|expiry| *expiry > Instant::now()),
            }
        }
        Via::Session => match session_of(headers) {
            None => {
                state
                    .unexpected
                    .push(format!("GET {path} without a sessionid cookie"));
                false
            }
            Some(session) => state.sessions.contains_key(&session),
        },
    };
    if !authorised {
        state.unauthorized += 1;
        return match via {
            Via::Jwt => error(StatusCode::UNAUTHORIZED, "token invalid or expired"),
            Via::Session => error(
                StatusCode::FORBIDDEN,
                "Authentication credentials were not provided.",
            ),
        };
    }
    let fault = state.faults.pop_front().or(state.sticky_fault.clone());
    let mut spoil = None;
    match fault {
        Some(Fault::PartialSuccess) => {
            return (
                StatusCode::MULTI_STATUS,
                Json(json!({ list: [], "errors": [{"status": 500, "error": "partial"}] })),
            )
                .into_response()
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                Json(json!({"error": "too many requests"})),
            )
                .into_response()
        }
        Some(Fault::Unavailable) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "service unavailable")
        }
        Some(Fault::Body(fault)) => spoil = Some(fault),
        None => {}
    }
    let key = (tenant.to_string(), group.to_string());
    let items = match state.groups.get(&key) {
        Some(itc) if itc.assigned => match list {
            "numbers" => itc.numbers.clone(),
            _ => itc.prefixes.clone(),
        },
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "service is not assigned to this group",
            )
        }
    };
    drop(state);
    let page = json!({ list: items });
    match spoil {
        Some(fault) => {
            let shape = PageShape {
                list_key: list,
                number_keys: &["minPhoneNumber", "maxPhoneNumber"],
            };
            fault.answer(page, &shape, conn)
        }
        None => Json(page).into_response(),
    }
}
