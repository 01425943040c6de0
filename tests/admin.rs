//! The admin HTTP port against a real client: status codes, content types, readiness
//! reasons, the metrics text checked line by line, `POST /sync`, and shutdown.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::loopback::{client, ANY_PORT};
use dialsync::app::admin::{
    self, AdminState, BlockedPlan, CycleOutcome, CycleStatus, ItemIssue, OpCounts, ReadyProbe,
    RuleCounts, SourceState, SourceStatus, Status, SyncTrigger, Totals,
};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// A running admin server and the handles a test drives it with.
struct Harness {
    base: String,
    addr: SocketAddr,
    client: reqwest::Client,
    publish: watch::Sender<Status>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Harness {
    async fn start(status: Status, probe: ReadyProbe, trigger: SyncTrigger) -> Harness {
        Self::start_with(status, probe, trigger, |state| state).await
    }

    async fn start_with(
        status: Status,
        probe: ReadyProbe,
        trigger: SyncTrigger,
        adjust: impl FnOnce(AdminState) -> AdminState,
    ) -> Harness {
        let (publish, watch) = watch::channel(status);
        let state = adjust(AdminState::new(watch, probe, trigger));
        let listener = tokio::net::TcpListener::bind(ANY_PORT)
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(admin::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Harness {
            base: format!("http://{addr}"),
            addr,
            client: client(),
            publish,
            stop: Some(stop),
            server,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    async fn post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }
}

fn ok_probe() -> ReadyProbe {
    Arc::new(|| Ok(()))
}

fn no_trigger() -> SyncTrigger {
    Arc::new(|| true)
}

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("fits")
}

/// A loaded configuration with a 60 s interval and no cycle yet.
fn loaded() -> Status {
    Status::new(
        "/etc/dialsync/dialsync.toml",
        Duration::from_secs(60),
        false,
        "sync",
    )
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A status with something in every field the metrics show.
fn busy_status() -> Status {
    let now = now_ms();
    let mut status = loaded();
    status.cycle_running = true;
    status.next_cycle_unix_ms = Some(now + 60_000);
    status.last_cycle = Some(CycleStatus {
        started_unix_ms: now - 1_500,
        finished_unix_ms: now - 250,
        duration_ms: 1_250,
        outcome: CycleOutcome::Blocked,
        adds: 1,
        modifies: 2,
        deletes: 40,
        plan_checksum: Some("ab".repeat(32)),
        error: None,
    });
    status.last_success_unix_ms = Some(1_700_000_000_500);
    status.sources = vec![
        SourceStatus {
            name: "fusion".into(),
            kind: "fusion".into(),
            state: SourceState::Ok,
            last_good_fetch_unix: Some(1_700_000_000),
            entries: 1200,
            rejected: 3,
            last_error: None,
        },
        SourceStatus {
            name: "apio".into(),
            kind: "apio".into(),
            state: SourceState::Stale,
            last_good_fetch_unix: Some(1_699_999_000),
            entries: 40,
            rejected: 0,
            last_error: Some("timeout after 30 s".into()),
        },
        SourceStatus {
            name: "live".into(),
            kind: "livecloud".into(),
            state: SourceState::Failed,
            last_good_fetch_unix: None,
            entries: 0,
            rejected: 0,
            last_error: Some("401 from token URL".into()),
        },
    ];
    status.rules = RuleCounts {
        owned: 120,
        foreign: 7,
        desired: 81,
    };
    status.blocked = Some(BlockedPlan {
        reasons: vec!["deletes 33 % of 120 owned rules (limit 30 %)".into()],
        checksum: "ab".repeat(32),
        adds: 1,
        modifies: 2,
        deletes: 40,
    });
    let (rejected, rejected_total) = admin::capped((0..150).map(|i| ItemIssue {
        source: "fusion".into(),
        item: format!("+3226127{i:03}x"),
        reason: "not a number".into(),
    }));
    status.rejected = rejected;
    status.rejected_total = rejected_total;
    status.conflicts = vec!["+3226127000..+3226127099: fusion over apio".into()];
    status.conflicts_total = 1;
    status.foreign_collisions = vec!["+3226128#".into()];
    status.foreign_collisions_total = 1;
    status.totals = Totals {
        cycles: 9,
        cycles_failed: 2,
        ops_applied: OpCounts {
            add: 500,
            modify: 6,
            delete: 11,
        },
        source_fetch_errors: BTreeMap::from([("apio".to_string(), 4), ("live".to_string(), 9)]),
    };
    status
}

/// A series: metric name and its labels, sorted by label name.
type Series = (String, Vec<(String, String)>);

/// Checks `text` against the Prometheus text format 0.0.4 as far as this port uses it, and
/// returns every sample's value by series.
///
/// Every non-comment line is `name{labels} value` with valid metric and label names and
/// properly escaped label values; every family has one HELP and one TYPE before its samples;
/// a family's samples are contiguous; no series repeats.
fn check_exposition(text: &str) -> BTreeMap<Series, f64> {
    let mut helped = BTreeSet::new();
    let mut typed = BTreeSet::new();
    let mut finished = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut samples = BTreeMap::new();
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let keyword = parts.next().unwrap_or_default();
            let name = parts.next().unwrap_or_default().to_string();
            let rest = parts.next().unwrap_or_default();
            assert!(valid_metric_name(&name), "bad name in {line:?}");
            match keyword {
                "HELP" => {
                    assert!(!rest.is_empty(), "empty HELP: {line:?}");
                    assert!(helped.insert(name.clone()), "second HELP: {line:?}");
                }
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&rest),
                        "bad TYPE: {line:?}"
                    );
                    assert!(typed.insert(name.clone()), "second TYPE: {line:?}");
                }
                _ => panic!("unknown comment: {line:?}"),
            }
            assert!(
                !finished.contains(&name),
                "metadata after samples: {line:?}"
            );
            if current.as_ref() != Some(&name) {
                if let Some(previous) = current.take() {
                    finished.insert(previous);
                }
                current = Some(name);
            }
            continue;
        }
        assert!(!line.starts_with('#'), "comment without a space: {line:?}");
        let (series, value) = parse_sample(line);
        let name = &series.0;
        assert!(
            name.starts_with("dialsync_"),
            "not prefixed dialsync_: {line:?}"
        );
        assert!(helped.contains(name), "no HELP before {line:?}");
        assert!(typed.contains(name), "no TYPE before {line:?}");
        assert_eq!(
            current.as_ref(),
            Some(name),
            "sample outside its family's block: {line:?}"
        );
        // The product promises no per-number labels: only these label names exist.
        for (label, _) in &series.1 {
            assert!(
                ["version", "kind", "source"].contains(&label.as_str()),
                "unexpected label {label:?} in {line:?}"
            );
        }
        assert!(
            samples.insert(series, value).is_none(),
            "duplicate series: {line:?}"
        );
    }
    samples
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `name{label="value",...} value`, unescaping label values.
fn parse_sample(line: &str) -> (Series, f64) {
    let mut chars = line.chars().peekable();
    let mut name = String::new();
    while let Some(&c) = chars.peek() {
        if c == '{' || c == ' ' {
            break;
        }
        name.push(c);
        chars.next();
    }
    assert!(valid_metric_name(&name), "bad metric name: {line:?}");
    let mut labels = Vec::new();
    if chars.peek() == Some(&'{') {
        chars.next();
        loop {
            if chars.peek() == Some(&'}') {
                chars.next();
                break;
            }
            let mut label = String::new();
            loop {
                match chars.next() {
                    Some('=') => break,
                    Some(c) => label.push(c),
                    None => panic!("label without '=': {line:?}"),
                }
            }
            assert!(valid_label_name(&label), "bad label name: {line:?}");
            assert_eq!(chars.next(), Some('"'), "unquoted value: {line:?}");
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => panic!("bad escape {other:?} in {line:?}"),
                    },
                    Some('"') => break,
                    Some('\n') => panic!("raw newline in {line:?}"),
                    Some(c) => value.push(c),
                    None => panic!("unterminated label value: {line:?}"),
                }
            }
            labels.push((label, value));
            match chars.next() {
                Some(',') => continue,
                Some('}') => break,
                other => panic!("expected ',' or '}}', got {other:?} in {line:?}"),
            }
        }
    }
    let rest: String = chars.collect();
    let value_text = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before value: {line:?}"));
    assert!(
        !value_text.contains(' '),
        "timestamps are not used: {line:?}"
    );
    let value = match value_text {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        text => text
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line:?}")),
    };
    let names: BTreeSet<&String> = labels.iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), labels.len(), "repeated label: {line:?}");
    labels.sort();
    ((name, labels), value)
}

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    (name.to_string(), labels)
}

#[tokio::test]
async fn livez_answers_ok_in_plain_text() {
    let harness = Harness::start(Status::default(), ok_probe(), no_trigger()).await;
    let response = harness.get("/livez").await;
    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("text/plain"));
    assert_eq!(response.text().await.expect("body").trim(), "ok");
}

#[tokio::test]
async fn readyz_is_ready_with_a_fresh_success() {
    let mut status = loaded();
    status.last_success_unix_ms = Some(now_ms() - 1_000);
    let harness = Harness::start(status, ok_probe(), no_trigger()).await;
    let response = harness.get("/readyz").await;
    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("text/plain"));
}

#[tokio::test]
async fn readyz_is_ready_before_the_first_success_within_the_grace() {
    let harness = Harness::start(loaded(), ok_probe(), no_trigger()).await;
    assert_eq!(harness.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn readyz_excuses_an_old_success_right_after_the_start() {
    let mut status = loaded();
    status.last_success_unix_ms = Some(now_ms() - 3_600_000);
    let harness = Harness::start(status, ok_probe(), no_trigger()).await;
    assert_eq!(harness.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn readyz_refuses_without_a_success_after_the_grace() {
    let long_ago = SystemTime::now() - Duration::from_secs(181);
    let harness = Harness::start_with(loaded(), ok_probe(), no_trigger(), |state| {
        state.with_start(long_ago)
    })
    .await;
    let response = harness.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body = response.text().await.expect("body");
    assert!(body.contains("no successful cycle"), "{body}");
}

#[tokio::test]
async fn readyz_refuses_a_stale_success_and_a_failing_probe() {
    let mut status = loaded();
    // Four intervals ago: older than 3 x 60 s.
    status.last_success_unix_ms = Some(now_ms() - 240_000);
    let probe: ReadyProbe = Arc::new(|| Err("state database is read-only".to_string()));
    // Started long ago: a recent start would excuse the old success.
    let long_ago = SystemTime::now() - Duration::from_secs(3600);
    let harness = Harness::start_with(status, probe, no_trigger(), |state| {
        state.with_start(long_ago)
    })
    .await;
    let response = harness.get("/readyz").await;
    assert_eq!(response.status(), 503);
    assert!(content_type(&response).starts_with("text/plain"));
    let body = response.text().await.expect("body");
    assert!(body.contains("last successful cycle"), "{body}");
    assert!(body.contains("180 s"), "{body}");
    assert!(body.contains("state database is read-only"), "{body}");

    // A fresh success leaves only the probe's reason.
    let mut status = loaded();
    status.last_success_unix_ms = Some(now_ms());
    harness.publish.send_replace(status);
    let body = harness.get("/readyz").await.text().await.expect("body");
    assert!(!body.contains("last successful cycle"), "{body}");
    assert!(body.contains("read-only"), "{body}");
}

#[tokio::test]
async fn readyz_refuses_before_the_configuration_is_loaded() {
    let harness = Harness::start(Status::default(), ok_probe(), no_trigger()).await;
    let response = harness.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body = response.text().await.expect("body");
    assert!(body.contains("configuration not loaded"), "{body}");
}

#[tokio::test]
async fn readyz_survives_a_panicking_probe() {
    let probe: ReadyProbe = Arc::new(|| panic!("probe bug"));
    let mut status = loaded();
    status.last_success_unix_ms = Some(now_ms());
    let harness = Harness::start(status, probe, no_trigger()).await;
    let response = harness.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body = response.text().await.expect("body");
    assert!(body.contains("panicked"), "{body}");
    // And the server still answers.
    assert_eq!(harness.get("/livez").await.status(), 200);
}

#[tokio::test]
async fn status_is_json_and_follows_the_published_status() {
    let harness = Harness::start(loaded(), ok_probe(), no_trigger()).await;
    let response = harness.get("/status").await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "application/json");
    let json: serde_json::Value = response.json().await.expect("json");
    assert_eq!(json["policy"], "sync");
    assert_eq!(json["interval_ms"], 60_000);
    assert!(json["last_cycle"].is_null());

    harness.publish.send_replace(busy_status());
    let json: serde_json::Value = harness.get("/status").await.json().await.expect("json");
    assert_eq!(json["cycle_running"], true);
    assert_eq!(json["last_cycle"]["outcome"], "blocked");
    assert_eq!(json["last_cycle"]["deletes"], 40);
    assert_eq!(json["blocked"]["checksum"], "ab".repeat(32));
    assert_eq!(json["sources"][1]["state"], "stale");
    assert_eq!(json["sources"][1]["last_error"], "timeout after 30 s");
    assert_eq!(json["sources"][2]["state"], "failed");
    assert_eq!(json["rules"]["owned"], 120);
    assert_eq!(json["rejected"].as_array().map(Vec::len), Some(100));
    assert_eq!(json["rejected_total"], 150);
    assert_eq!(json["totals"]["ops_applied"]["add"], 500);
    assert_eq!(json["totals"]["source_fetch_errors"]["live"], 9);
}

#[tokio::test]
async fn metrics_are_valid_exposition_with_the_published_values() {
    let harness = Harness::start(busy_status(), ok_probe(), no_trigger()).await;
    let response = harness.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        content_type(&response),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.expect("body");
    let samples = check_exposition(&text);
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        *samples
            .get(&series(name, labels))
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };

    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(value("dialsync_build_info", &[("version", version)]), 1.0);
    assert_eq!(
        value("dialsync_last_success_timestamp_seconds", &[]),
        1_700_000_000.5
    );
    assert_eq!(value("dialsync_last_cycle_duration_seconds", &[]), 1.25);
    assert_eq!(value("dialsync_cycles_total", &[]), 9.0);
    assert_eq!(value("dialsync_cycles_failed_total", &[]), 2.0);
    assert_eq!(
        value("dialsync_ops_applied_total", &[("kind", "add")]),
        500.0
    );
    assert_eq!(
        value("dialsync_ops_applied_total", &[("kind", "modify")]),
        6.0
    );
    assert_eq!(
        value("dialsync_ops_applied_total", &[("kind", "delete")]),
        11.0
    );
    assert_eq!(value("dialsync_owned_rules", &[]), 120.0);
    assert_eq!(value("dialsync_foreign_rules", &[]), 7.0);
    assert_eq!(value("dialsync_desired_rules", &[]), 81.0);
    assert_eq!(value("dialsync_rejected_items", &[]), 150.0);
    assert_eq!(value("dialsync_conflicts", &[]), 1.0);
    assert_eq!(value("dialsync_foreign_collisions", &[]), 1.0);
    assert_eq!(value("dialsync_plan_blocked", &[]), 1.0);
    assert_eq!(value("dialsync_cycle_running", &[]), 1.0);
    assert_eq!(value("dialsync_source_up", &[("source", "fusion")]), 1.0);
    assert_eq!(value("dialsync_source_up", &[("source", "apio")]), 0.0);
    assert_eq!(value("dialsync_source_up", &[("source", "live")]), 0.0);
    assert_eq!(
        value(
            "dialsync_source_last_success_timestamp_seconds",
            &[("source", "apio")]
        ),
        1_699_999_000.0
    );
    assert!(!samples.contains_key(&series(
        "dialsync_source_last_success_timestamp_seconds",
        &[("source", "live")]
    )));
    assert_eq!(
        value(
            "dialsync_source_fetch_errors_total",
            &[("source", "fusion")]
        ),
        0.0
    );
    assert_eq!(
        value("dialsync_source_fetch_errors_total", &[("source", "live")]),
        9.0
    );
    assert_eq!(
        value("dialsync_source_entries", &[("source", "fusion")]),
        1200.0
    );
    assert_eq!(
        value("dialsync_source_rejected_items", &[("source", "fusion")]),
        3.0
    );
    // No rejected item text leaks into the metrics.
    assert!(!text.contains("+3226127"), "{text}");
}

#[tokio::test]
async fn metrics_of_a_fresh_start_are_valid_too() {
    let harness = Harness::start(Status::default(), ok_probe(), no_trigger()).await;
    let text = harness.get("/metrics").await.text().await.expect("body");
    let samples = check_exposition(&text);
    assert_eq!(
        samples.get(&series("dialsync_last_success_timestamp_seconds", &[])),
        Some(&0.0)
    );
    assert_eq!(
        samples.get(&series("dialsync_plan_blocked", &[])),
        Some(&0.0)
    );
    assert!(!samples.contains_key(&series("dialsync_last_cycle_duration_seconds", &[])));
}

#[tokio::test]
async fn metrics_escape_label_values() {
    let awkward = "we\"ird\\name\nline";
    let mut status = loaded();
    status.sources.push(SourceStatus {
        name: awkward.into(),
        kind: "file".into(),
        state: SourceState::Ok,
        ..SourceStatus::default()
    });
    // A repeated name must not repeat a series.
    status.sources.push(SourceStatus {
        name: awkward.into(),
        kind: "file".into(),
        state: SourceState::Failed,
        ..SourceStatus::default()
    });
    status
        .totals
        .source_fetch_errors
        .insert(awkward.to_string(), 3);
    let harness = Harness::start(status, ok_probe(), no_trigger()).await;
    let text = harness.get("/metrics").await.text().await.expect("body");
    assert!(
        text.contains(r#"dialsync_source_up{source="we\"ird\\name\nline"} 1"#),
        "{text}"
    );
    let samples = check_exposition(&text);
    assert_eq!(
        samples.get(&series("dialsync_source_up", &[("source", awkward)])),
        Some(&1.0)
    );
    assert_eq!(
        samples.get(&series(
            "dialsync_source_fetch_errors_total",
            &[("source", awkward)]
        )),
        Some(&3.0)
    );
}

#[tokio::test]
async fn post_sync_calls_the_trigger_and_reports_queued_or_merged() {
    // The first request queues, the next ones merge with it: the daemon's coalescing.
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let trigger: SyncTrigger = Arc::new(move || counter.fetch_add(1, Ordering::SeqCst) == 0);
    let harness = Harness::start(loaded(), ok_probe(), trigger).await;

    let response = harness.post("/sync").await;
    assert_eq!(response.status(), 202);
    assert!(content_type(&response).starts_with("application/json"));
    let json: serde_json::Value = response.json().await.expect("json");
    assert_eq!(json, serde_json::json!({"queued": true}));

    let json: serde_json::Value = harness.post("/sync").await.json().await.expect("json");
    assert_eq!(json, serde_json::json!({"queued": false}));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn lookup_is_unavailable_before_the_first_cycle() {
    let harness = Harness::start(loaded(), ok_probe(), no_trigger()).await;
    let response = harness.get("/lookup?number=%2B3226127001").await;
    assert_eq!(response.status(), 503);
    assert_eq!(content_type(&response), "application/json");
    let body: serde_json::Value = response.json().await.expect("a JSON error");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no cycle has finished yet")),
        "{body}"
    );
}

#[tokio::test]
async fn wrong_methods_and_paths_are_refused_in_plain_text() {
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let trigger: SyncTrigger = Arc::new(move || {
        if let Ok(mut n) = counter.lock() {
            *n += 1;
        }
        true
    });
    let harness = Harness::start(loaded(), ok_probe(), trigger).await;

    let response = harness.get("/sync").await;
    assert_eq!(response.status(), 405);
    let allow = response
        .headers()
        .get(reqwest::header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(allow.contains("POST"), "Allow: {allow:?}");
    assert!(content_type(&response).starts_with("text/plain"));
    assert_eq!(*calls.lock().expect("lock"), 0, "GET must not trigger");

    assert_eq!(harness.post("/status").await.status(), 405);
    let response = harness.get("/nope").await;
    assert_eq!(response.status(), 404);
    assert!(content_type(&response).starts_with("text/plain"));
    assert_eq!(response.text().await.expect("body").trim(), "not found");
}

#[tokio::test]
async fn server_stops_when_the_shutdown_future_completes() {
    let mut harness = Harness::start(loaded(), ok_probe(), no_trigger()).await;
    assert_eq!(harness.get("/livez").await.status(), 200);

    if let Some(stop) = harness.stop.take() {
        let _ = stop.send(());
    }
    let result = tokio::time::timeout(Duration::from_secs(5), &mut harness.server)
        .await
        .expect("server stops within 5 s")
        .expect("server task did not panic");
    assert!(result.is_ok(), "{result:?}");
    assert!(
        tokio::net::TcpStream::connect(harness.addr).await.is_err(),
        "the port no longer accepts"
    );
}
