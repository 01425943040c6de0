//! The admin port's HTTP side: the routes, their handlers, and what they read (the published
//! status, the readiness probe, the sync trigger). The caller binds the listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::metrics::{render_metrics, METRICS_CONTENT_TYPE};
use super::readiness::readiness;
use super::status::Status;
use crate::app::clock::{now_unix_ms, unix_ms};
use crate::app::lookup::LookupRow;
use crate::number::Number;

/// How long `/readyz` waits for the readiness probe. A database locked by another process
/// can make the probe wait on SQLite's busy timeout; a supervisor asking readiness wants an
/// answer (503) rather than its own timeout.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

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
        .route("/lookup", get(lookup))
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

/// `/lookup`'s answer: one row per `number` parameter, in their order.
#[derive(Serialize)]
struct LookupAnswer<'a> {
    answers: Vec<LookupRow<'a>>,
}

/// Why `/lookup` cannot answer, as JSON: `number` names the parameter at fault.
#[derive(Serialize)]
struct LookupRefusal {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    number: Option<String>,
}

fn refuse(status: StatusCode, error: String, number: Option<String>) -> Response {
    (status, Json(LookupRefusal { error, number })).into_response()
}

/// `GET /lookup?number=+3226127001&number=...`: the rule the SBC picks for each number, the
/// desired tag and its source item, and the verdict, from the state of the last cycle.
async fn lookup(
    State(state): State<AdminState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let Ok(Query(params)) = query else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the query string cannot be read".to_string(),
            None,
        );
    };
    let Some(lookup) = state.status.borrow().lookup.clone() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "no cycle has finished yet: nothing to look up".to_string(),
            None,
        );
    };
    let mut numbers = Vec::new();
    for (key, text) in &params {
        if key != "number" {
            continue;
        }
        // An unencoded `+` reads as a space in a query string; the parser skips spaces, so
        // `?number=+3226127001` still means the number.
        match Number::parse(text) {
            Ok(number) => numbers.push(number),
            Err(e) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("{text:?} is not a number: {e}"),
                    Some(text.clone()),
                )
            }
        }
    }
    if numbers.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "give at least one number: /lookup?number=%2B3226127001".to_string(),
            None,
        );
    }
    let answers = numbers
        .into_iter()
        .map(|number| lookup.row(None, number))
        .collect();
    Json(LookupAnswer { answers }).into_response()
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
