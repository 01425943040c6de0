//! An emulator of the AudioCodes SBC device REST API (DESIGN.md §5.1), as strict as the device.
//!
//! The sink is only as trustworthy as what it was tested against, so this emulator refuses what
//! a device would refuse (bad credentials, a Monitor user writing, a malformed script, a rule
//! the device's limits reject, a save with a body) and records every request it did not expect,
//! which tests assert to be none. It also fails on purpose: 409 storms, latency, connections
//! dropped mid-request, out-of-band edits, so the sink's retries and the journal are exercised.
//!
//! It reads and prints the device's CLI with its own reading of the vendor's documents
//! ([`cli`]) and judges rules by its own reading of the device's limits
//! ([`device_rule`](super::device_rule)), never with dialsync's code, and [`Firmware`] switches
//! between the answer shapes real devices use.
//!
//! It runs in-process on any address (port 0 in tests) and as `dialsync sim sbc` for staging.

pub mod cli;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{device_rule, lock, Emulator, Running, Serve};
use crate::dialplan::pattern::{best_match, Pattern};
use crate::error::{Classify, ErrorClass};
use cli::{CliStyle, Command};

/// A user of the emulated device and what it may do.
#[derive(Clone, Debug)]
pub struct SimUser {
    pub username: String,
    pub password: String,
    /// Administrators write; Monitor users only read (the device answers 403).
    pub administrator: bool,
}

/// A running SBC emulator. Dropping it stops the server.
pub type SbcSim = Running<SbcState>;

impl SbcSim {
    /// Starts the emulator on `listen` (port 0 picks a free port) with `state` and `users`.
    pub async fn start(
        listen: SocketAddr,
        state: SbcState,
        users: Vec<SimUser>,
    ) -> std::io::Result<SbcSim> {
        Running::bind(listen, users, state).await
    }
}

/// One rule as the device holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimRule {
    pub name: String,
    pub prefix: String,
    pub tag: String,
}

/// One dial plan as the device holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimPlan {
    pub name: String,
    pub rules: BTreeMap<u32, SimRule>,
}

/// Faults to inject; each counter is consumed by the requests it affects.
///
/// The counters hit whatever request comes next; the two schedules (`scripts`, `reads`) hit
/// one chosen request, so that a test can fail the third batch of an apply, or the read that
/// comes before planning, and nothing else.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Answer 409 (device busy: HA synchronisation) to the next N writes.
    pub busy_writes: u32,
    /// Seconds sent in `Retry-After` with those 409s.
    pub retry_after_secs: Option<u32>,
    /// Apply the next N incremental scripts, then drop the connection without answering: the
    /// client cannot know whether its write landed.
    pub drop_after_apply: u32,
    /// Drop the connection of the next N incremental scripts before applying them.
    pub drop_before_apply: u32,
    /// Delay before answering any request.
    pub latency: Duration,
    /// Faults for chosen incremental scripts, keyed by the 1-based ordinal of the
    /// `PUT /api/v1/files/cliScript/incremental` among all the device received
    /// ([`SbcState::scripts_received`]); each is consumed by the request it hits. Checked
    /// after the counters above, which keep their meaning.
    pub scripts: BTreeMap<usize, ScriptFault>,
    /// Faults for chosen reads, keyed by the 1-based ordinal of the `GET` (of the status or
    /// of the configuration script, counted together: [`SbcState::reads_received`]).
    pub reads: BTreeMap<usize, ReadFault>,
}

/// What goes wrong with one incremental script. Each variant is a distinct answer to the
/// client's one question, "did my batch land?", so that every branch of its retry logic is
/// exercised: certainly not (409), maybe (500, a timeout, a dropped connection), yes but it
/// never heard (applied, answer lost), and a refusal it must read from a 200.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptFault {
    /// 409 device busy (HA synchronisation), with `Retry-After` when given; nothing applied.
    Busy { retry_after_secs: Option<u32> },
    /// 500 Internal Server Error; nothing applied, though the client cannot know that.
    ServerError,
    /// Hold the request this long (longer than the client's timeout), then drop it
    /// unapplied: the device choked on it.
    StallNotApplied(Duration),
    /// Apply the script at once but answer only after this long, when the client has given
    /// up: it landed, and the client's only way to learn it is to read the device.
    AppliedAnswerLate(Duration),
    /// Drop the connection before applying (a device restarting, a link lost).
    DropBeforeApply,
    /// Apply, then drop the connection without answering.
    DropAfterApply,
    /// Answer 200 with `"status": "failure"` and apply nothing, as the device does for a
    /// script it refuses (a 200 that is not a success).
    Failure,
}

/// What goes wrong with one read (`GET` of the status or of the configuration script).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadFault {
    /// 409 device busy, with `Retry-After` when given.
    Busy { retry_after_secs: Option<u32> },
    /// 500 Internal Server Error.
    ServerError,
    /// Hold the request this long (longer than the client's timeout), then answer as usual,
    /// to a client that has gone.
    Stall(Duration),
    /// Drop the connection without answering.
    Drop,
}

/// The answer shapes of the emulated firmware: what real devices send, one switch each, so
/// that tests can meet every shape the vendor documents or a real device shows. The defaults
/// are the vendor's documented shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Firmware {
    /// How the full configuration is printed (indentation, the last `exit`).
    pub style: CliStyle,
    /// `saveNeeded` as the strings "true"/"false", as the vendor documents it; else as a JSON
    /// boolean, which some firmware sends.
    pub status_strings: bool,
    /// Incremental-script answers carry `status` ("success" or "failure"). The vendor's own
    /// example answer has none: `{"description": "Incremental CLI Script file was loaded.",
    /// "output": "..."}`, whatever became of the script.
    pub answer_status: bool,
    /// A script whose values the device refuses is answered 400 ("provided CLI script is
    /// incorrect"); else 200, with `status: failure` when `answer_status` is set and with
    /// only the device's output when it is not.
    pub refuse_with_400: bool,
}

impl Default for Firmware {
    fn default() -> Self {
        Firmware {
            style: CliStyle::default(),
            status_strings: true,
            answer_status: true,
            refuse_with_400: false,
        }
    }
}

/// The description the vendor's example answer to an incremental script carries.
const LOADED: &str = "Incremental CLI Script file was loaded.";

/// The emulated device's whole state.
#[derive(Debug)]
pub struct SbcState {
    pub plans: BTreeMap<u32, SimPlan>,
    pub save_needed: bool,
    /// `upgradeStatus`: "None" when idle; "In Progress", "Hitless-beforeSwitchOver",
    /// "Hitless-beforeSwitchBack" or "Hitless-WaitRdnReconnect" during an upgrade, during
    /// which a client must not write. `None` leaves the field out, as older firmware does.
    pub upgrade_status: Option<String>,
    pub firmware: Firmware,
    pub faults: Faults,
    /// Requests the emulator did not expect: method, path and why. Tests assert it is empty.
    pub unexpected: Vec<String>,
    /// Incremental scripts applied (accepted and changing state), in order.
    pub applied_scripts: usize,
    /// Incremental-script PUTs received, whatever became of them: the ordinal
    /// [`Faults::scripts`] is keyed by.
    pub scripts_received: usize,
    /// Reads (`GET` of the status or of the configuration script) received: the ordinal
    /// [`Faults::reads`] is keyed by.
    pub reads_received: usize,
    /// Every request, as `METHOD path`, in order.
    pub requests: Vec<String>,
    /// Other configuration sections, rendered verbatim in the full script.
    pub other_sections: String,
    /// Where the dial plans are kept between runs (`dialsync sim sbc --state`): written after
    /// every script that changes them.
    pub state_file: Option<PathBuf>,
}

impl Default for SbcState {
    fn default() -> Self {
        SbcState {
            plans: BTreeMap::new(),
            save_needed: false,
            upgrade_status: Some("None".into()),
            firmware: Firmware::default(),
            faults: Faults::default(),
            unexpected: Vec::new(),
            applied_scripts: 0,
            scripts_received: 0,
            reads_received: 0,
            requests: Vec::new(),
            other_sections: String::new(),
            state_file: None,
        }
    }
}

/// What `--state` files hold: the dial plans, by index.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    plans: BTreeMap<u32, SimPlan>,
}

/// Why a `--state` file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("emulator state {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("emulator state {path} is not valid JSON of dial plans: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl Classify for StateFileError {
    fn class(&self) -> ErrorClass {
        // The emulator's own state file: unreadable or not JSON stays so until someone fixes it.
        ErrorClass::Fatal
    }
}

impl SbcState {
    /// The device kept in `path`: its dial plans if the file exists, else an empty
    /// `OCDialPlan`; either way later changes are written back to it.
    pub fn persistent(path: &Path) -> Result<SbcState, StateFileError> {
        let mut state = match std::fs::read_to_string(path) {
            Ok(text) => {
                let file: StateFile =
                    serde_json::from_str(&text).map_err(|source| StateFileError::Json {
                        path: path.to_path_buf(),
                        source,
                    })?;
                SbcState {
                    plans: file.plans,
                    ..SbcState::default()
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SbcState::with_oc_dial_plan(),
            Err(source) => {
                return Err(StateFileError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        state.state_file = Some(path.to_path_buf());
        Ok(state)
    }

    /// Writes the dial plans to the state file, through a temporary file and a rename so that
    /// a crash never leaves half a file.
    fn persist(&self) -> Result<(), StateFileError> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let io = |source| StateFileError::Io {
            path: path.clone(),
            source,
        };
        let json = serde_json::to_string_pretty(&StateFile {
            plans: self.plans.clone(),
        })
        .map_err(|source| StateFileError::Json {
            path: path.clone(),
            source,
        })?;
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, json).map_err(io)?;
        std::fs::rename(&temporary, path).map_err(io)
    }

    /// A device with `OCDialPlan` as plan 0 and nothing in it.
    pub fn with_oc_dial_plan() -> SbcState {
        let mut state = SbcState::default();
        state.plans.insert(
            0,
            SimPlan {
                name: "OCDialPlan".into(),
                rules: BTreeMap::new(),
            },
        );
        state
    }

    /// Schedules `fault` for the `nth` incremental script from now (1 = the next one).
    pub fn fault_script_in(&mut self, nth: usize, fault: ScriptFault) {
        self.faults
            .scripts
            .insert(self.scripts_received + nth, fault);
    }

    /// Schedules `fault` for the `nth` read from now (1 = the next one).
    pub fn fault_read_in(&mut self, nth: usize, fault: ReadFault) {
        self.faults.reads.insert(self.reads_received + nth, fault);
    }

    /// Scheduled faults no request has hit yet: a test whose fault never fired tested
    /// nothing, so it asserts this is empty.
    pub fn pending_faults(&self) -> Vec<String> {
        let scripts = self
            .faults
            .scripts
            .iter()
            .map(|(n, fault)| format!("script {n}: {fault:?}"));
        let reads = self
            .faults
            .reads
            .iter()
            .map(|(n, fault)| format!("read {n}: {fault:?}"));
        scripts.chain(reads).collect()
    }

    /// The plan named `name`, with its index.
    pub fn plan(&self, name: &str) -> Option<(u32, &SimPlan)> {
        self.plans
            .iter()
            .find(|(_, plan)| plan.name == name)
            .map(|(&index, plan)| (index, plan))
    }

    /// The tag the device would route `number` (e.g. `+3226127001`) with, by best match over
    /// the rules of dial plan `plan_name`.
    pub fn lookup(&self, plan_name: &str, number: &str) -> Option<String> {
        self.lookup_many(plan_name, &[number]).pop().flatten()
    }

    /// [`SbcState::lookup`] of many numbers, parsing the rules once: checking that no route
    /// was lost looks up every number of a plan of hundreds of rules.
    pub fn lookup_many(&self, plan_name: &str, numbers: &[&str]) -> Vec<Option<String>> {
        let Some((_, plan)) = self.plan(plan_name) else {
            return vec![None; numbers.len()];
        };
        let parsed: Vec<(u32, Pattern, &String)> = plan
            .rules
            .iter()
            .filter_map(|(&index, rule)| {
                Some((index, Pattern::parse(&rule.prefix).ok()?, &rule.tag))
            })
            .collect();
        numbers
            .iter()
            .map(|number| {
                best_match(parsed.iter().map(|(i, p, t)| (*i, p, *t)), number)
                    .map(|(_, tag)| tag.clone())
            })
            .collect()
    }
}

type Shared = super::Shared<SbcState>;

impl Emulator for SbcState {
    /// The device's users: all of its configuration the emulator is started with.
    type Config = Vec<SimUser>;
    const SERVE: Serve = super::serve;

    /// The four endpoints of the device's REST API that dialsync uses.
    fn routes(_: &Vec<SimUser>) -> Router<Shared> {
        Router::new()
            .route("/api/v1/status", get(status))
            .route("/api/v1/files/cliScript", get(full_script))
            .route("/api/v1/files/cliScript/incremental", put(incremental))
            .route("/api/v1/actions/saveConfiguration", post(save))
            .fallback(unexpected)
    }
}

/// Why the device refuses a caller.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// Missing or wrong credentials.
    Unauthorized,
    /// A Monitor user asking to write.
    Forbidden,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"SBC\"")],
                "Unauthorized",
            )
                .into_response(),
            Refusal::Forbidden => (
                StatusCode::FORBIDDEN,
                "Forbidden: user lacks Administrator role",
            )
                .into_response(),
        }
    }
}

/// Who is calling, from the Basic credentials.
fn authenticate(shared: &Shared, headers: &HeaderMap, write: bool) -> Result<(), Refusal> {
    use base64::Engine as _;
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .ok_or(Refusal::Unauthorized)?;
    let (username, password) = credentials.split_once(':').ok_or(Refusal::Unauthorized)?;
    // The device's users are what its emulator is started with.
    let user = shared
        .config
        .iter()
        .find(|u| u.username == username && u.password == password)
        .ok_or(Refusal::Unauthorized)?;
    if write && !user.administrator {
        return Err(Refusal::Forbidden);
    }
    Ok(())
}

async fn delay(shared: &Shared) {
    let latency = lock(&shared.state).faults.latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

fn record(shared: &Shared, method: &str, path: &str) {
    lock(&shared.state)
        .requests
        .push(format!("{method} {path}"));
}

/// What a read meets before the device answers it, in this order: it is recorded, counted and
/// met by the fault scheduled for it, waits out the latency, and is authenticated. `Some` is the
/// answer to give instead of the device's.
async fn admit_read(shared: &Shared, headers: &HeaderMap, path: &str) -> Option<Response> {
    record(shared, "GET", path);
    if let Some(answer) = scheduled_read_fault(shared).await {
        return Some(answer);
    }
    delay(shared).await;
    authenticate(shared, headers, false)
        .err()
        .map(IntoResponse::into_response)
}

/// Counts a read and acts out the fault scheduled for it, if any: `Some` is the answer to
/// give instead of the device's; `None` lets the read go on (after a stall, to a client that
/// has gone).
async fn scheduled_read_fault(shared: &Shared) -> Option<Response> {
    let fault = {
        let mut state = lock(&shared.state);
        state.reads_received += 1;
        let nth = state.reads_received;
        state.faults.reads.remove(&nth)
    }?;
    match fault {
        ReadFault::Busy { retry_after_secs } => Some(busy(retry_after_secs)),
        ReadFault::ServerError => Some(internal_error()),
        ReadFault::Stall(duration) => {
            tokio::time::sleep(duration).await;
            None
        }
        ReadFault::Drop => drop_connection(),
    }
}

/// The device's 409 while it synchronises with its HA peer.
fn busy(retry_after_secs: Option<u32>) -> Response {
    let mut response = (StatusCode::CONFLICT, "Device busy (HA synchronization)").into_response();
    if let Some(seconds) = retry_after_secs {
        if let Ok(value) = seconds.to_string().parse() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

fn internal_error() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
}

async fn status(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(answer) = admit_read(&shared, &headers, "/api/v1/status").await {
        return answer;
    }
    let state = lock(&shared.state);
    let save_needed = if state.firmware.status_strings {
        json!(state.save_needed.to_string())
    } else {
        json!(state.save_needed)
    };
    // The vendor's example answer, field for field.
    let mut answer = json!({
        "localTimeStamp": "2026-12-07T09:00:00.000Z",
        "ipAddress": "127.0.0.1",
        "subnetMask": "255.0.0.0",
        "defaultGateway": "127.0.0.1",
        "productType": "Mediant VE SBC",
        "versionID": "7.40A.500.000",
        "protocolType": "SIP",
        "operationalState": "UNLOCKED",
        "highAvailability": "Not Operational",
        "serialNumber": "101780235059663",
        "macAddress": "fa163e6e7e1d",
        "systemUpTime": 161446,
        "saveNeeded": save_needed,
        "resetNeeded": if state.firmware.status_strings { json!("false") } else { json!(false) },
    });
    if let Some(upgrade) = &state.upgrade_status {
        answer["upgradeStatus"] = json!(upgrade);
    }
    Json(answer).into_response()
}

async fn full_script(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(answer) = admit_read(&shared, &headers, "/api/v1/files/cliScript").await {
        return answer;
    }
    let state = lock(&shared.state);
    let script = cli::render_config(&state.plans, &state.other_sections, &state.firmware.style);
    ([(header::CONTENT_TYPE, "text/plain")], script).into_response()
}

async fn incremental(
    State(shared): State<Shared>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    record(&shared, "PUT", "/api/v1/files/cliScript/incremental");
    let scheduled = {
        let mut state = lock(&shared.state);
        state.scripts_received += 1;
        let nth = state.scripts_received;
        state.faults.scripts.remove(&nth)
    };
    delay(&shared).await;
    if let Err(refused) = authenticate(&shared, &headers, true) {
        return refused.into_response();
    }
    {
        let mut state = lock(&shared.state);
        if state.faults.busy_writes > 0 {
            state.faults.busy_writes -= 1;
            let retry = state.faults.retry_after_secs;
            drop(state);
            return busy(retry);
        }
    }
    // A busy device answers before it looks at the script.
    if let Some(ScriptFault::Busy { retry_after_secs }) = scheduled {
        return busy(retry_after_secs);
    }
    let Ok(mut multipart) = multipart else {
        return bad_request(&shared, "incremental script must be multipart/form-data");
    };
    let mut script: Option<Bytes> = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                if field.name() != Some("file") {
                    let name = field.name().unwrap_or("").to_string();
                    return bad_request(&shared, &format!("unexpected multipart part {name:?}"));
                }
                match field.bytes().await {
                    Ok(bytes) => script = Some(bytes),
                    Err(e) => return bad_request(&shared, &format!("unreadable part: {e}")),
                }
            }
            Ok(None) => break,
            Err(e) => return bad_request(&shared, &format!("malformed multipart body: {e}")),
        }
    }
    let Some(script) = script else {
        return bad_request(&shared, "multipart body has no part named \"file\"");
    };
    let Ok(text) = std::str::from_utf8(&script) else {
        return bad_request(&shared, "script is not UTF-8");
    };
    // dialsync never sends a script the device cannot read, so a 400 for one is also
    // recorded as unexpected (a refused value is not: tests provoke those on purpose).
    let commands = match cli::read_script(text) {
        Ok(commands) => commands,
        Err(refused) => return bad_request(&shared, &format!("script refused: {refused}")),
    };
    let firmware = lock(&shared.state).firmware.clone();
    // The other scheduled faults strike once the script is read (so that a malformed one is
    // still caught) and before it is applied, except those that apply it first.
    let mut answer_late = None;
    match scheduled {
        Some(ScriptFault::ServerError) => return internal_error(),
        Some(ScriptFault::StallNotApplied(duration)) => {
            tokio::time::sleep(duration).await;
            drop_connection();
        }
        Some(ScriptFault::DropBeforeApply) => drop_connection(),
        Some(ScriptFault::Failure) => {
            return refused(&firmware, "fault injected: the device refused the script")
        }
        Some(ScriptFault::AppliedAnswerLate(duration)) => answer_late = Some(duration),
        Some(ScriptFault::DropAfterApply) | Some(ScriptFault::Busy { .. }) | None => {}
    }
    // The device's work under the lock, in a block of its own: the guard must be gone before
    // the late answer's await.
    let (applied, drop_after) = {
        let mut state = lock(&shared.state);
        if state.faults.drop_before_apply > 0 {
            state.faults.drop_before_apply -= 1;
            drop(state);
            drop_connection();
        }
        let applied = apply(&mut state.plans, &commands);
        let mut drop_after = false;
        if applied.is_ok() {
            state.save_needed = true;
            state.applied_scripts += 1;
            if let Err(e) = state.persist() {
                // The change is live on the emulated device; only staging's memory of it is
                // lost, so say so loudly rather than fail the request.
                eprintln!("dialsync sim sbc: {e}");
            }
            if scheduled == Some(ScriptFault::DropAfterApply) {
                drop_after = true;
            } else if state.faults.drop_after_apply > 0 {
                state.faults.drop_after_apply -= 1;
                drop_after = true;
            }
        }
        (applied, drop_after)
    };
    match applied {
        Ok(output) => {
            if drop_after {
                drop_connection();
            }
            if let Some(duration) = answer_late {
                tokio::time::sleep(duration).await;
            }
            if firmware.answer_status {
                Json(json!({"status": "success", "description": LOADED, "output": output}))
                    .into_response()
            } else {
                Json(json!({"description": LOADED, "output": output})).into_response()
            }
        }
        Err(reason) => refused(&firmware, &reason),
    }
}

/// The answer to a script whose values the device refused (nothing of it applied), in the
/// firmware's shape: a 400, a 200 saying `failure`, or a 200 that says only what the device
/// printed.
fn refused(firmware: &Firmware, reason: &str) -> Response {
    let output = reason;
    if firmware.refuse_with_400 {
        let body = json!({"description": "provided CLI script is incorrect", "output": output});
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    } else if firmware.answer_status {
        Json(json!({
            "status": "failure",
            "description": "Script execution failed",
            "output": output,
        }))
        .into_response()
    } else {
        Json(json!({"description": LOADED, "output": output})).into_response()
    }
}

/// Ends the request without an answer: the handler's task panics, and the server drops the
/// connection, as a device that restarts or loses its link mid-request would.
fn drop_connection() -> ! {
    std::panic::panic_any(DroppedConnection)
}

/// Marker payload for [`drop_connection`], so a test's panic hook can tell it from a bug.
#[derive(Debug)]
pub struct DroppedConnection;

/// A rule as it was before a command of the script in progress changed it.
type RuleUndo = (u32, u32, Option<SimRule>);

/// Applies commands all-or-nothing, validating each rule against the device's limits.
/// Returns the device's output text on success, the reason on failure.
///
/// Rule commands change the plans in place and are undone if a later command fails; only a
/// script that edits or deletes whole plans (rare: creating OCDialPlan) works on a copy. A
/// copy of 100,000 rules per script made the emulator, not dialsync, most of the scale
/// bench's first sync.
fn apply(plans: &mut BTreeMap<u32, SimPlan>, commands: &[Command]) -> Result<String, String> {
    let plan_level = commands
        .iter()
        .any(|c| matches!(c, Command::EditPlan { .. } | Command::DeletePlan { .. }));
    if plan_level {
        let mut next = plans.clone();
        apply_commands(&mut next, commands, &mut Vec::new())?;
        *plans = next;
    } else {
        let mut undo = Vec::new();
        if let Err(reason) = apply_commands(plans, commands, &mut undo) {
            for (plan, rule, previous) in undo.into_iter().rev() {
                if let Some(dial_plan) = plans.get_mut(&plan) {
                    match previous {
                        Some(previous) => dial_plan.rules.insert(rule, previous),
                        None => dial_plan.rules.remove(&rule),
                    };
                }
            }
            return Err(reason);
        }
    }
    Ok(format!("{} commands applied", commands.len()))
}

/// Applies `commands` to `next`, recording in `undo` each rule as it was before.
fn apply_commands(
    next: &mut BTreeMap<u32, SimPlan>,
    commands: &[Command],
    undo: &mut Vec<RuleUndo>,
) -> Result<(), String> {
    for (position, command) in commands.iter().enumerate() {
        let at = position + 1;
        match command {
            Command::EditPlan { plan, name, .. } => {
                let entry = next.entry(*plan).or_default();
                if let Some(name) = name {
                    entry.name = name.clone();
                }
                if entry.name.is_empty() {
                    return Err(format!("command {at}: dial plan {plan} has no name"));
                }
            }
            Command::DeletePlan { plan } => {
                if next.remove(plan).is_none() {
                    return Err(format!("command {at}: dial plan {plan} does not exist"));
                }
            }
            Command::EditRule {
                plan,
                rule,
                name,
                prefix,
                tag,
                ..
            } => {
                let Some(dial_plan) = next.get_mut(plan) else {
                    return Err(format!("command {at}: dial plan {plan} does not exist"));
                };
                let existing = dial_plan.rules.get(rule).cloned();
                let merged = SimRule {
                    name: name
                        .clone()
                        .or_else(|| existing.as_ref().map(|r| r.name.clone()))
                        .unwrap_or_default(),
                    prefix: prefix
                        .clone()
                        .or_else(|| existing.as_ref().map(|r| r.prefix.clone()))
                        .unwrap_or_default(),
                    tag: tag
                        .clone()
                        .or_else(|| existing.as_ref().map(|r| r.tag.clone()))
                        .unwrap_or_default(),
                };
                device_rule::check(&merged.name, &merged.prefix, &merged.tag)
                    .map_err(|e| format!("command {at}: rule {plan}/{rule}: {e}"))?;
                let previous = dial_plan.rules.insert(*rule, merged);
                undo.push((*plan, *rule, previous));
            }
            Command::DeleteRule { plan, rule } => {
                let removed = next.get_mut(plan).and_then(|p| p.rules.remove(rule));
                if removed.is_none() {
                    return Err(format!("command {at}: rule {plan}/{rule} does not exist"));
                }
                undo.push((*plan, *rule, removed));
            }
        }
    }
    Ok(())
}

async fn save(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    record(&shared, "POST", "/api/v1/actions/saveConfiguration");
    delay(&shared).await;
    if let Err(refused) = authenticate(&shared, &headers, true) {
        return refused.into_response();
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok());
    if length != Some("0") {
        return bad_request(&shared, "saveConfiguration requires Content-Length: 0");
    }
    lock(&shared.state).save_needed = false;
    Json(json!({"status": "success"})).into_response()
}

async fn unexpected(State(shared): State<Shared>, method: Method, uri: Uri) -> Response {
    let call = format!("{method} {}", uri.path());
    let mut state = lock(&shared.state);
    state.requests.push(call.clone());
    state.unexpected.push(format!("{call}: no such endpoint"));
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}

/// A 400 the emulator also records as unexpected: a correct client never earns one.
fn bad_request(shared: &Shared, reason: &str) -> Response {
    lock(&shared.state)
        .unexpected
        .push(format!("400: {reason}"));
    (StatusCode::BAD_REQUEST, reason.to_string()).into_response()
}
