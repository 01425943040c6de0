//! The admin HTTP port (DESIGN.md §7): `/livez`, `/readyz`, `/status`, `/metrics` and
//! `POST /sync`.
//!
//! It exists so that operators, supervisors and monitoring can see what the agent is doing
//! and nudge it, without reading logs or the state database: a load balancer or systemd
//! asks `/livez` and `/readyz`, Prometheus scrapes `/metrics`, a human reads `/status` and
//! asks for a cycle now with `POST /sync`.
//!
//! The module owns no agent logic. The agent publishes a [`Status`] through a
//! [`tokio::sync::watch`] channel after every cycle (and whenever something worth showing
//! changes, such as `cycle_running`); every request renders the latest value. Readiness
//! needs one thing the status cannot say, whether the database is writable now, so the
//! caller supplies that as a probe closure, and `POST /sync` calls a trigger closure that
//! the daemon wires to its own request coalescing. The caller binds the listener (so tests
//! bind port 0 and the daemon can report the bound address before serving).
//!
//! Nothing here may carry a secret: [`Status`] has no field for credentials or URLs with
//! user info by construction, and error bodies are plain text built from the status and the
//! probe's message.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::clock::{now_unix_ms, unix_ms};
use crate::store;

/// How many rejected items, conflicts or foreign collisions `/status` lists. The totals
/// still count all of them; an upstream that turns to garbage can reject a million items,
/// and the first hundred already say why.
pub const MAX_LISTED: usize = 100;

/// How long `/readyz` waits for the readiness probe. A database locked by another process
/// can make the probe wait on SQLite's busy timeout; a supervisor asking readiness wants an
/// answer (503) rather than its own timeout.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The content type of the Prometheus text exposition format this module writes.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything `/status`, `/metrics` and `/readyz` show, as the agent last published it.
///
/// `Status::default()` means "no configuration loaded yet": its `interval_ms` is 0, which a
/// loaded configuration never has (the config refuses a zero interval), and `/readyz` reports
/// exactly that. Build a real one with [`Status::new`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct Status {
    /// The dialsync version serving this (`CARGO_PKG_VERSION`).
    pub version: String,
    pub config_path: String,
    /// `agent.interval` in milliseconds (the config accepts sub-second durations, so seconds
    /// would round some of them to zero).
    pub interval_ms: u64,
    pub dry_run: bool,
    /// `agent.policy` as written in the config: `sync`, `upsert-only` or `create-only`.
    pub policy: String,
    /// A cycle is in progress now.
    pub cycle_running: bool,
    /// When the next cycle is due, if the agent has scheduled one.
    pub next_cycle_unix_ms: Option<i64>,
    /// The most recently finished cycle, whatever its outcome.
    pub last_cycle: Option<CycleStatus>,
    /// When the last cycle that converged finished.
    pub last_success_unix_ms: Option<i64>,
    /// One entry per configured source, in config order.
    pub sources: Vec<SourceStatus>,
    pub rules: RuleCounts,
    /// The plan the safety gate or the capacity limit stopped in the last cycle, if any.
    pub blocked: Option<BlockedPlan>,
    /// Upstream items refused in the last cycle: at most [`MAX_LISTED`] (see [`capped`]).
    pub rejected: Vec<ItemIssue>,
    /// How many upstream items the last cycle refused in all.
    pub rejected_total: u64,
    /// Partial overlaps settled by source order in the last cycle: at most [`MAX_LISTED`].
    pub conflicts: Vec<String>,
    pub conflicts_total: u64,
    /// Desired rules not applied in the last cycle because a rule dialsync does not own has
    /// the same prefix: at most [`MAX_LISTED`].
    pub foreign_collisions: Vec<String>,
    pub foreign_collisions_total: u64,
    /// Rows of the dial plan the last cycle could not read (`row N: why`): left alone, their
    /// indexes never written, at most [`MAX_LISTED`].
    pub unreadable_rows: Vec<String>,
    pub unreadable_rows_total: u64,
    /// Counters since this process started.
    pub totals: Totals,
}

impl Status {
    /// A status for a freshly loaded configuration, before any cycle: the fields the config
    /// decides are set, the rest are empty.
    pub fn new(
        config_path: impl Into<String>,
        interval: Duration,
        dry_run: bool,
        policy: impl Into<String>,
    ) -> Self {
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_path: config_path.into(),
            // A 584-million-year interval saturates rather than wraps.
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            dry_run,
            policy: policy.into(),
            ..Status::default()
        }
    }
}

/// One finished cycle.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CycleStatus {
    pub started_unix_ms: i64,
    pub finished_unix_ms: i64,
    pub duration_ms: u64,
    pub outcome: CycleOutcome,
    /// The plan's operation counts. They were applied when the outcome is `converged` and the
    /// agent is not in dry-run mode; for a blocked plan they are what it would have done.
    pub adds: u64,
    pub modifies: u64,
    pub deletes: u64,
    /// The checksum of the plan, when one was computed (`apply --force --checksum` takes it).
    pub plan_checksum: Option<String>,
    /// Why the cycle failed, for `failed`.
    pub error: Option<String>,
}

/// How a cycle ended. Serialized as the same words the store records ([`store::outcome`]),
/// so `/status` and `dialsync history` say the same thing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CycleOutcome {
    /// The SBC holds the desired plan (possibly after applying changes).
    #[default]
    Converged,
    /// A dry run found changes to make; nothing was written.
    Planned,
    /// The safety gate or the capacity limit stopped the plan; nothing was written.
    Blocked,
    /// The cycle stopped on an error.
    Failed,
}

impl CycleOutcome {
    /// The word used in JSON and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            CycleOutcome::Converged => store::outcome::CONVERGED,
            CycleOutcome::Planned => store::outcome::PLANNED,
            CycleOutcome::Blocked => store::outcome::BLOCKED,
            CycleOutcome::Failed => store::outcome::FAILED,
        }
    }
}

/// One configured source as the last cycle saw it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceStatus {
    /// The source's `name` from the config (unique there).
    pub name: String,
    /// The source's `kind`: `fusion`, `apio`, `livecloud`, `file`.
    pub kind: String,
    pub state: SourceState,
    /// When the source last answered in full, in seconds since the Unix epoch (the unit the
    /// store's snapshots use).
    pub last_good_fetch_unix: Option<i64>,
    /// Entries the source contributed to the last cycle (from its snapshot when stale).
    pub entries: u64,
    /// Items of this source refused in the last cycle.
    pub rejected: u64,
    /// Why the last fetch failed, when it did.
    pub last_error: Option<String>,
}

/// What the last cycle got from a source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// Not fetched yet in this process (no cycle has finished).
    #[default]
    Pending,
    /// Fetched in full.
    Ok,
    /// The fetch failed; the last good snapshot stood in.
    Stale,
    /// The fetch failed and there was no snapshot to stand in.
    Failed,
    /// It answered with nothing while its last snapshot was not empty: the plan is blocked.
    Emptied,
}

/// Rule counts on the SBC and in the desired plan, as of the last cycle.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleCounts {
    /// Rules of the dial plan whose Name is ours.
    pub owned: u64,
    /// Rules of the dial plan dialsync does not own (never touched).
    pub foreign: u64,
    /// Rules the desired state compiles to.
    pub desired: u64,
}

/// A plan the safety gate or the capacity limit stopped.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BlockedPlan {
    /// Each reason in words, such as "deletes 40 % of 120 owned rules (limit 30 %)".
    pub reasons: Vec<String>,
    /// What `dialsync apply --force --checksum` needs to apply exactly this plan.
    pub checksum: String,
    pub adds: u64,
    pub modifies: u64,
    pub deletes: u64,
}

/// One upstream item refused, and why.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ItemIssue {
    pub source: String,
    /// The item as the source identifies it (a number, a range, a row).
    pub item: String,
    pub reason: String,
}

/// Counters since the process started.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Cycles finished, whatever their outcome.
    pub cycles: u64,
    /// Cycles that ended `failed`.
    pub cycles_failed: u64,
    /// Operations written to the SBC.
    pub ops_applied: OpCounts,
    /// Failed fetches, by source name.
    pub source_fetch_errors: BTreeMap<String, u64>,
}

/// Operation counts by kind.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OpCounts {
    pub add: u64,
    pub modify: u64,
    pub delete: u64,
}

/// The first [`MAX_LISTED`] items and the count of all of them: how the agent fills a list
/// of [`Status`] and its `_total` together, so the two cannot disagree.
pub fn capped<T>(items: impl IntoIterator<Item = T>) -> (Vec<T>, u64) {
    let mut listed = Vec::new();
    let mut total: u64 = 0;
    for item in items {
        if listed.len() < MAX_LISTED {
            listed.push(item);
        }
        total = total.saturating_add(1);
    }
    (listed, total)
}

/// Whether the database (or anything else the caller knows about) is fit to serve: `Err`
/// says why not. It runs on a blocking thread, so it may do file or SQLite I/O.
pub type ReadyProbe = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Asks for a cycle now. Returns `true` when a new request was queued, `false` when it
/// merged with one already pending. It runs on the async runtime, so it must not block.
pub type SyncTrigger = Arc<dyn Fn() -> bool + Send + Sync>;

/// What the admin handlers read: the published status, the readiness probe and the sync
/// trigger.
#[derive(Clone)]
pub struct AdminState {
    status: watch::Receiver<Status>,
    ready_probe: ReadyProbe,
    sync_trigger: SyncTrigger,
    /// When the grace period for the first success began; see [`AdminState::with_start`].
    started_unix_ms: i64,
}

impl AdminState {
    /// The admin state, with the first-success grace period starting now.
    pub fn new(
        status: watch::Receiver<Status>,
        ready_probe: ReadyProbe,
        sync_trigger: SyncTrigger,
    ) -> Self {
        AdminState {
            status,
            ready_probe,
            sync_trigger,
            started_unix_ms: now_unix_ms(),
        }
    }

    /// Moves the start of the first-success grace period (for instance to the process start).
    ///
    /// `/readyz` measures the 3 × interval limit from the later of the last success and this
    /// instant: a freshly started agent is ready (its first cycle may take a while against a
    /// large SBC) even with no success yet or only an old one from before a restart, but one
    /// that has not converged for three intervals after starting is not.
    pub fn with_start(mut self, started: SystemTime) -> Self {
        self.started_unix_ms = unix_ms(started);
        self
    }
}

/// The admin routes, for callers that compose them into their own server; [`serve`] is the
/// usual entry point.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/sync", post(sync))
        .fallback(not_found)
        // Keeps the Allow header axum sets, but gives the 405 a plain-text body like every
        // other error here.
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Serves the admin port on `listener` until `shutdown` completes, then stops accepting and
/// lets requests in progress finish.
///
/// The caller binds: the daemon binds before reporting READY (so a port in use is a startup
/// error), and tests bind port 0.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A warning to log when the admin port listens beyond the loopback interface: it has no
/// authentication, and `POST /sync` changes what the agent does.
pub fn listen_warning(addr: SocketAddr) -> Option<String> {
    // `::ffff:127.0.0.1` is loopback too, though `Ipv6Addr::is_loopback` says otherwise.
    let ip = addr.ip().to_canonical();
    if ip.is_loopback() {
        return None;
    }
    let reach = if ip.is_unspecified() {
        "every interface"
    } else {
        "a non-loopback address"
    };
    Some(format!(
        "admin port {addr} listens on {reach}: it has no authentication and POST /sync \
         triggers cycles; restrict it with a firewall or listen on 127.0.0.1"
    ))
}

async fn livez() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let status = state.status.borrow().clone();
    let mut reasons = readiness(&status, now_unix_ms(), state.started_unix_ms);
    if let Err(reason) = probe(state.ready_probe.clone()).await {
        reasons.push(reason);
    }
    if reasons.is_empty() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let mut body = String::from("not ready\n");
    for reason in reasons {
        body.push_str(&reason);
        body.push('\n');
    }
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

/// Runs the readiness probe off the async threads, bounded by [`PROBE_TIMEOUT`].
async fn probe(ready_probe: ReadyProbe) -> Result<(), String> {
    let task = tokio::task::spawn_blocking(move || ready_probe());
    match tokio::time::timeout(PROBE_TIMEOUT, task).await {
        Ok(Ok(result)) => result.map_err(|reason| format!("readiness probe: {reason}")),
        Ok(Err(_)) => Err("readiness probe panicked".to_string()),
        // The blocking thread keeps running; the next request starts a fresh probe.
        Err(_) => Err(format!(
            "readiness probe did not answer within {} s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

/// Why `status` is not ready at `now_ms` (empty when it is), apart from the probe: the
/// configuration is loaded, and the later of the last success and the start of the grace
/// period (`started_ms`) is less than 3 × interval ago.
///
/// Counting from the start too means a process that has just started is not unready before
/// its first cycle could possibly have converged, whether it has no success at all or one
/// the agent read back from the state database from before a long stop.
fn readiness(status: &Status, now_ms: i64, started_ms: i64) -> Vec<String> {
    if status.interval_ms == 0 {
        // Without an interval there is no limit to judge the last success by.
        return vec!["configuration not loaded".to_string()];
    }
    let limit_ms = i64::try_from(status.interval_ms)
        .unwrap_or(i64::MAX)
        .saturating_mul(3);
    let since_start = now_ms.saturating_sub(started_ms);
    // A clock stepped backwards makes an age negative: that is young, not an error.
    let young = |age: i64| age < limit_ms;
    match status.last_success_unix_ms {
        Some(success) => {
            let age = now_ms.saturating_sub(success);
            if young(age) || young(since_start) {
                Vec::new()
            } else {
                vec![format!(
                    "last successful cycle {} ago, limit 3 x interval = {}",
                    seconds(age),
                    seconds(limit_ms)
                )]
            }
        }
        None if young(since_start) => Vec::new(),
        None => vec![format!(
            "no successful cycle in the {} since start, limit 3 x interval = {}",
            seconds(since_start),
            seconds(limit_ms)
        )],
    }
}

/// Milliseconds as seconds with at most millisecond precision, for messages.
fn seconds(ms: i64) -> String {
    format!("{} s", ms as f64 / 1000.0)
}

async fn status(State(state): State<AdminState>) -> Response {
    // Clone out of the watch so its read lock is not held while serializing.
    let status = state.status.borrow().clone();
    match serde_json::to_vec(&status) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        // Not expected (every field serializes), but a 500 beats a panic in a handler.
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render status: {e}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AdminState>) -> Response {
    let status = state.status.borrow().clone();
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        render_metrics(&status),
    )
        .into_response()
}

#[derive(Serialize)]
struct SyncAnswer {
    /// False when the request merged with one already pending.
    queued: bool,
}

async fn sync(State(state): State<AdminState>) -> Response {
    let queued = (state.sync_trigger)();
    (StatusCode::ACCEPTED, Json(SyncAnswer { queued })).into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n").into_response()
}

/// The Prometheus text exposition (format 0.0.4) of `status`.
///
/// Hand-written: the families are few and fixed, and the values already live in
/// [`Status`], so a metrics registry would only be a second copy of them to keep in step.
/// Labels only ever hold a build version, an operation kind or a configured source name:
/// never a number or an item, whose cardinality upstream data would decide.
pub fn render_metrics(status: &Status) -> String {
    let mut out = Exposition::default();

    out.family(GAUGE, "dialsync_build_info", "Build information; always 1.")
        .sample(&[("version", env!("CARGO_PKG_VERSION"))], Value::Int(1));

    out.family(
        GAUGE,
        "dialsync_last_success_timestamp_seconds",
        "When the last cycle that converged finished, in Unix seconds; 0 if none has.",
    )
    .sample(
        &[],
        Value::Float(status.last_success_unix_ms.map_or(0.0, ms_to_seconds)),
    );

    let last = status.last_cycle.as_ref();
    let mut family = out.family(
        GAUGE,
        "dialsync_last_cycle_duration_seconds",
        "How long the last finished cycle took; absent before the first.",
    );
    if let Some(cycle) = last {
        family.sample(&[], Value::Float(cycle.duration_ms as f64 / 1000.0));
    }
    let mut family = out.family(
        GAUGE,
        "dialsync_last_cycle_timestamp_seconds",
        "When the last finished cycle finished, in Unix seconds; absent before the first.",
    );
    if let Some(cycle) = last {
        family.sample(&[], Value::Float(ms_to_seconds(cycle.finished_unix_ms)));
    }
    let mut family = out.family(
        GAUGE,
        "dialsync_next_cycle_timestamp_seconds",
        "When the next cycle is due, in Unix seconds; absent when none is scheduled.",
    );
    if let Some(next) = status.next_cycle_unix_ms {
        family.sample(&[], Value::Float(ms_to_seconds(next)));
    }
    out.family(
        GAUGE,
        "dialsync_cycle_running",
        "1 while a cycle is in progress.",
    )
    .sample(&[], Value::Int(u64::from(status.cycle_running)));

    let totals = &status.totals;
    out.family(
        COUNTER,
        "dialsync_cycles_total",
        "Cycles finished since the process started, whatever their outcome.",
    )
    .sample(&[], Value::Int(totals.cycles));
    out.family(
        COUNTER,
        "dialsync_cycles_failed_total",
        "Cycles that failed since the process started.",
    )
    .sample(&[], Value::Int(totals.cycles_failed));
    let mut family = out.family(
        COUNTER,
        "dialsync_ops_applied_total",
        "Dial-plan rule operations written to the SBC since the process started, by kind.",
    );
    let ops = &totals.ops_applied;
    for (kind, count) in [
        ("add", ops.add),
        ("modify", ops.modify),
        ("delete", ops.delete),
    ] {
        family.sample(&[("kind", kind)], Value::Int(count));
    }

    for (name, help, value) in [
        (
            "dialsync_owned_rules",
            "Rules of the dial plan that dialsync owns, as of the last cycle.",
            status.rules.owned,
        ),
        (
            "dialsync_foreign_rules",
            "Rules of the dial plan that dialsync does not own, as of the last cycle.",
            status.rules.foreign,
        ),
        (
            "dialsync_desired_rules",
            "Rules the desired state compiled to in the last cycle.",
            status.rules.desired,
        ),
        (
            "dialsync_rejected_items",
            "Upstream items refused in the last cycle.",
            status.rejected_total,
        ),
        (
            "dialsync_conflicts",
            "Partial overlaps settled by source order in the last cycle.",
            status.conflicts_total,
        ),
        (
            "dialsync_foreign_collisions",
            "Desired rules not applied in the last cycle because a foreign rule has their prefix.",
            status.foreign_collisions_total,
        ),
        (
            "dialsync_unreadable_rules",
            "Rows of the dial plan dialsync could not read in the last cycle; never written.",
            status.unreadable_rows_total,
        ),
        (
            "dialsync_plan_blocked",
            "1 when the safety gate or the capacity limit blocked the last plan.",
            u64::from(status.blocked.is_some()),
        ),
    ] {
        out.family(GAUGE, name, help).sample(&[], Value::Int(value));
    }

    // Per-source families. The config keeps names unique, but a series must never repeat,
    // so a repeated name keeps its first entry.
    let mut seen = BTreeSet::new();
    let sources: Vec<&SourceStatus> = status
        .sources
        .iter()
        .filter(|source| seen.insert(source.name.as_str()))
        .collect();

    let mut family = out.family(
        GAUGE,
        "dialsync_source_up",
        "1 when the source's last fetch succeeded in full, else 0.",
    );
    for source in &sources {
        let up = u64::from(source.state == SourceState::Ok);
        family.sample(&[("source", &source.name)], Value::Int(up));
    }
    let mut family = out.family(
        GAUGE,
        "dialsync_source_last_success_timestamp_seconds",
        "When the source last answered in full, in Unix seconds; absent if never.",
    );
    for source in &sources {
        if let Some(at) = source.last_good_fetch_unix {
            family.sample(&[("source", &source.name)], Value::Float(at as f64));
        }
    }
    let mut family = out.family(
        GAUGE,
        "dialsync_source_entries",
        "Entries the source contributed to the last cycle.",
    );
    for source in &sources {
        family.sample(&[("source", &source.name)], Value::Int(source.entries));
    }
    let mut family = out.family(
        GAUGE,
        "dialsync_source_rejected_items",
        "Items of the source refused in the last cycle.",
    );
    for source in &sources {
        family.sample(&[("source", &source.name)], Value::Int(source.rejected));
    }

    // Every configured source gets a series, 0 until it fails, so `rate()` sees the first
    // error; a source no longer configured keeps its count until the process restarts.
    let mut errors: BTreeMap<&str, u64> = sources
        .iter()
        .map(|source| (source.name.as_str(), 0))
        .collect();
    for (name, count) in &totals.source_fetch_errors {
        errors.insert(name, *count);
    }
    let mut family = out.family(
        COUNTER,
        "dialsync_source_fetch_errors_total",
        "Failed fetches since the process started, by source.",
    );
    for (name, count) in errors {
        family.sample(&[("source", name)], Value::Int(count));
    }

    out.text
}

fn ms_to_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// A sample value: counts print as integers, so they never show a float's rounding.
enum Value {
    Int(u64),
    Float(f64),
}

const GAUGE: &str = "gauge";
const COUNTER: &str = "counter";

/// The exposition text being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts a family with its HELP and TYPE lines. Its samples are written through the
    /// returned handle, which borrows the text: a sample can only follow its own family's
    /// header, and the next family cannot start before this one is done, as the format
    /// requires.
    fn family<'a>(&'a mut self, kind: &str, name: &'a str, help: &str) -> Family<'a> {
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        Family {
            text: &mut self.text,
            name,
        }
    }
}

/// The family being written; see [`Exposition::family`].
struct Family<'a> {
    text: &'a mut String,
    name: &'a str,
}

impl Family<'_> {
    fn sample(&mut self, labels: &[(&str, &str)], value: Value) {
        self.text.push_str(self.name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label(value));
            }
            self.text.push('}');
        }
        let _ = match value {
            Value::Int(v) => writeln!(self.text, " {v}"),
            Value::Float(v) if v.is_nan() => writeln!(self.text, " NaN"),
            Value::Float(v) if v.is_infinite() => {
                writeln!(self.text, " {}", if v > 0.0 { "+Inf" } else { "-Inf" })
            }
            // Rust prints finite floats in plain decimal, which the format accepts.
            Value::Float(v) => writeln!(self.text, " {v}"),
        };
    }
}

/// Escapes a label value: backslash, double quote and newline, as the format requires.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes HELP text: backslash and newline (a quote needs no escape there).
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn loaded() -> Status {
        Status::new(
            "/etc/dialsync/dialsync.toml",
            Duration::from_secs(60),
            false,
            "sync",
        )
    }

    #[test]
    fn default_status_is_not_loaded() {
        let reasons = readiness(&Status::default(), 10 * MINUTE, 0);
        assert_eq!(reasons, vec!["configuration not loaded".to_string()]);
    }

    #[test]
    fn readiness_limits_the_age_of_the_last_success() {
        let now = 100 * MINUTE;
        let mut status = loaded();
        status.last_success_unix_ms = Some(now - 3 * MINUTE + 1);
        assert!(readiness(&status, now, 0).is_empty());
        status.last_success_unix_ms = Some(now - 3 * MINUTE);
        let reasons = readiness(&status, now, 0);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("180 s"), "{reasons:?}");
        // A success "in the future" (clock stepped back) is fresh.
        status.last_success_unix_ms = Some(now + MINUTE);
        assert!(readiness(&status, now, 0).is_empty());
        // An old success (read back after a restart) is excused while the start is recent.
        status.last_success_unix_ms = Some(now - 60 * MINUTE);
        assert!(readiness(&status, now, now - 2 * MINUTE).is_empty());
        assert_eq!(readiness(&status, now, now - 3 * MINUTE).len(), 1);
    }

    #[test]
    fn readiness_before_the_first_success_counts_from_the_start() {
        let now = 100 * MINUTE;
        let status = loaded();
        assert!(readiness(&status, now, now - 2 * MINUTE).is_empty());
        let reasons = readiness(&status, now, now - 3 * MINUTE);
        assert!(reasons[0].contains("no successful cycle"), "{reasons:?}");
    }

    #[test]
    fn capped_lists_the_first_hundred_and_counts_all() {
        let (listed, total) = capped(0..250);
        assert_eq!(listed.len(), MAX_LISTED);
        assert_eq!(listed[99], 99);
        assert_eq!(total, 250);
        let (listed, total) = capped(Vec::<u8>::new());
        assert!(listed.is_empty());
        assert_eq!(total, 0);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }

    #[test]
    fn listen_warning_spares_loopback_only() {
        let addr = |s: &str| -> SocketAddr { s.parse().expect("test address") };
        assert_eq!(listen_warning(addr("127.0.0.1:9797")), None);
        assert_eq!(listen_warning(addr("[::1]:9797")), None);
        assert_eq!(listen_warning(addr("[::ffff:127.0.0.1]:9797")), None);
        let warning = listen_warning(addr("0.0.0.0:9797")).expect("warns");
        assert!(warning.contains("every interface"), "{warning}");
        assert!(listen_warning(addr("192.0.2.7:9797")).is_some());
        assert!(listen_warning(addr("[::]:9797")).is_some());
    }

    #[test]
    fn status_serializes_enums_as_words() {
        let mut status = loaded();
        status.last_cycle = Some(CycleStatus {
            outcome: CycleOutcome::Blocked,
            ..CycleStatus::default()
        });
        status.sources.push(SourceStatus {
            name: "fusion".into(),
            state: SourceState::Stale,
            ..SourceStatus::default()
        });
        let json = serde_json::to_value(&status).expect("serializes");
        assert_eq!(json["last_cycle"]["outcome"], "blocked");
        assert_eq!(json["sources"][0]["state"], "stale");
        assert_eq!(json["interval_ms"], 60_000);
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        // serde's words and the store's words must stay the same.
        for outcome in [
            CycleOutcome::Converged,
            CycleOutcome::Blocked,
            CycleOutcome::Failed,
        ] {
            assert_eq!(
                serde_json::to_value(outcome).expect("serializes"),
                outcome.as_str()
            );
        }
    }
}
