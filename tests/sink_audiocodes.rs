//! The AudioCodes sink against the SBC emulator over real HTTP on loopback, with a real SQLite
//! journal: loads, in-place modifies, deletes, foreign rules, busy storms, dropped connections,
//! a bad rule inside a batch, refused credentials, an upgrading device, and a real process
//! killed with SIGKILL in the middle of an apply.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use dialsync::dialplan::pattern::Pattern;
use dialsync::dialplan::rule::Tag;
use dialsync::error::{Classify, ErrorClass};
use dialsync::plan::{plan, OpKind, PlanSettings, Policy, Route, Safety};
use dialsync::sim::sbc::{DroppedConnection, SbcSim, SbcState, SimPlan, SimRule, SimUser};
use dialsync::sink::audiocodes::{ApplyReport, AudioCodesSink, SbcConfig, SinkError};
use dialsync::store::Store;

const ADMIN: (&str, &str) = ("admin", "s3cret");
const MONITOR: (&str, &str) = ("monitor", "watch");
const PUT: &str = "PUT /api/v1/files/cliScript/incremental";

/// The emulator drops a connection by panicking in its handler; those panics are the fault
/// being injected, not failures, so they are kept out of the test output. Any other panic
/// still reaches the default hook.
fn quiet_dropped_connections() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<DroppedConnection>().is_none() {
                default(info);
            }
        }));
    });
}

async fn start(state: SbcState) -> SbcSim {
    quiet_dropped_connections();
    let users = vec![
        SimUser {
            username: ADMIN.0.into(),
            password: ADMIN.1.into(),
            administrator: true,
        },
        SimUser {
            username: MONITOR.0.into(),
            password: MONITOR.1.into(),
            administrator: false,
        },
    ];
    let any: SocketAddr = "127.0.0.1:0".parse().expect("loopback");
    SbcSim::start(any, state, users)
        .await
        .expect("emulator starts")
}

/// A device with foreign rules in `OCDialPlan` (a PBX's, at low indexes) and another dial plan
/// holding rules with dialsync's name: neither may ever change.
fn device() -> SbcState {
    let mut state = SbcState::with_oc_dial_plan();
    let oc = state.plans.get_mut(&0).expect("OCDialPlan");
    for (index, prefix) in [(0, "+3222"), (1, "+3223[0-4]"), (2, "+3224xx#")] {
        oc.rules.insert(
            index,
            SimRule {
                name: "pbx".into(),
                prefix: prefix.into(),
                tag: "Trunk=pbx".into(),
            },
        );
    }
    let mut other = SimPlan {
        name: "Other".into(),
        rules: BTreeMap::new(),
    };
    other.rules.insert(
        5,
        SimRule {
            name: "dialsync".into(),
            prefix: "+3226000001#".into(),
            tag: "Trunk=other".into(),
        },
    );
    state.plans.insert(1, other);
    state
}

fn config(sim_url: &str, user: (&str, &str), batch_size: usize) -> SbcConfig {
    let mut config = SbcConfig::new(sim_url, user.0, user.1);
    config.batch_size = batch_size;
    config.timeout = Duration::from_secs(20);
    config.retry_budget = Duration::from_secs(20);
    config.backoff_initial = Duration::from_millis(5);
    config.backoff_max = Duration::from_millis(100);
    config
}

fn settings() -> PlanSettings {
    PlanSettings {
        rule_name: "dialsync".into(),
        policy: Policy::Sync,
        adopt_foreign: false,
        safety: Safety {
            max_delete_fraction: 1.0,
            max_update_fraction: 1.0,
            min_existing: 10,
        },
        max_rules: 1_000_000,
    }
}

fn route(prefix: &str, tag: &str) -> Route {
    Route {
        prefix: Pattern::parse(prefix).expect("prefix"),
        tag: Tag::parse(tag, 256).expect("tag"),
    }
}

/// `n` distinct single-number routes spread over a few trunks.
fn routes(n: usize) -> Vec<Route> {
    let mut routes: Vec<Route> = (0..n)
        .map(|i| {
            route(
                &format!("+3226{:07}#", 1_000_000 + i),
                &format!("Trunk=t{}", i % 7),
            )
        })
        .collect();
    routes.sort();
    routes
}

/// Read, plan and apply, as one agent cycle does.
async fn sync(
    sink: &AudioCodesSink,
    store: &mut Store,
    desired: &[Route],
) -> Result<ApplyReport, SinkError> {
    let device = sink.read().await?;
    assert!(device.bad_rows.is_empty(), "{:?}", device.bad_rows);
    let plan = plan(desired, &device.rules, &[], &settings());
    assert!(plan.blocked.is_empty(), "{:?}", plan.blocked);
    sink.apply(store, &plan, &device).await
}

/// dialsync's rules in `OCDialPlan`, sorted; duplicates would show as repeated entries.
fn owned(sim: &SbcSim) -> Vec<Route> {
    let state = sim.state();
    let (_, oc) = state.plan("OCDialPlan").expect("OCDialPlan");
    let mut routes: Vec<Route> = oc
        .rules
        .values()
        .filter(|r| r.name == "dialsync")
        .map(|r| route(&r.prefix, &r.tag))
        .collect();
    routes.sort();
    routes
}

/// Every rule dialsync does not own in `OCDialPlan`, and every rule of every other plan.
fn foreign(sim: &SbcSim) -> Vec<(u32, u32, SimRule)> {
    let state = sim.state();
    state
        .plans
        .iter()
        .flat_map(|(&plan, p)| {
            p.rules
                .iter()
                .filter(move |(_, r)| plan != 0 || r.name != "dialsync")
                .map(move |(&index, r)| (plan, index, r.clone()))
        })
        .collect()
}

fn puts(sim: &SbcSim) -> usize {
    sim.state().requests.iter().filter(|r| *r == PUT).count()
}

fn assert_converged(sim: &SbcSim, desired: &[Route], foreign_before: &[(u32, u32, SimRule)]) {
    let mut want = desired.to_vec();
    want.sort();
    let got = owned(sim);
    assert_eq!(got.len(), want.len(), "rule count (duplicates or missing)");
    assert_eq!(got, want);
    assert_eq!(foreign(sim), foreign_before, "foreign rules changed");
    let unexpected = sim.state().unexpected.clone();
    assert!(unexpected.is_empty(), "{unexpected:?}");
}

fn store_in(dir: &Path) -> Store {
    Store::open(dir.join("state.db")).expect("store")
}

#[tokio::test]
async fn load_modify_delete_leave_foreign_rules_alone() {
    let sim = start(device()).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let sink = AudioCodesSink::new(config(&sim.url(), ADMIN, 200)).expect("sink");
    let foreign_before = foreign(&sim);

    // Initial load: 3,000 adds in 15 scripts of 200.
    let mut desired = routes(3000);
    let started = Instant::now();
    let report = sync(&sink, &mut store, &desired).await.expect("load");
    let took = started.elapsed();
    println!(
        "initial load of 3,000 rules: {took:?}, {} HTTP requests by the apply ({} PUTs)",
        report.requests,
        puts(&sim)
    );
    assert_eq!(report.applied, 3000);
    assert_eq!(report.batches, 15);
    assert_eq!(puts(&sim), 15);
    assert!(report.saved && report.quarantined.is_empty());
    // 15 PUTs and the save.
    assert_eq!(report.requests, 16);
    assert!(!sim.state().save_needed, "saved to flash");
    assert_converged(&sim, &desired, &foreign_before);
    assert!(store.unfinished_journal().expect("journal").is_none());

    // Modify in place: the same rules keep their indexes.
    let index_of = |sim: &SbcSim| -> BTreeMap<String, u32> {
        let state = sim.state();
        state.plans[&0]
            .rules
            .iter()
            .filter(|(_, r)| r.name == "dialsync")
            .map(|(&i, r)| (r.prefix.clone(), i))
            .collect()
    };
    let indexes_before = index_of(&sim);
    for (i, route) in desired.iter_mut().enumerate() {
        if i % 30 == 0 {
            route.tag = Tag::parse("Trunk=moved", 64).expect("tag");
        }
    }
    let device_now = sink.read().await.expect("read");
    let modify = plan(&desired, &device_now.rules, &[], &settings());
    assert_eq!(modify.ops.len(), 100);
    assert!(modify.ops.iter().all(|op| op.kind() == OpKind::Modify));
    let report = sink
        .apply(&mut store, &modify, &device_now)
        .await
        .expect("modify");
    assert_eq!((report.applied, report.batches), (100, 1));
    assert_eq!(index_of(&sim), indexes_before, "modified in place");
    assert_converged(&sim, &desired, &foreign_before);

    // Deletes.
    desired.retain(|r| !r.prefix.as_str().ends_with("3#"));
    assert_eq!(desired.len(), 2700);
    let report = sync(&sink, &mut store, &desired).await.expect("deletes");
    assert_eq!(report.applied, 300);
    assert_converged(&sim, &desired, &foreign_before);

    // Nothing to do: no write at all.
    let before = puts(&sim);
    let report = sync(&sink, &mut store, &desired).await.expect("no-op");
    assert_eq!(
        (report.applied, report.batches, report.saved),
        (0, 0, false)
    );
    assert_eq!(puts(&sim), before);
}

#[tokio::test]
async fn a_409_storm_still_converges() {
    let sim = start(device()).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let sink = AudioCodesSink::new(config(&sim.url(), ADMIN, 100)).expect("sink");
    let foreign_before = foreign(&sim);
    {
        let mut state = sim.state();
        state.faults.busy_writes = 5;
        state.faults.retry_after_secs = Some(0);
    }
    let desired = routes(500);
    let report = sync(&sink, &mut store, &desired).await.expect("storm");
    assert_eq!(report.applied, 500);
    // Five batches, five refusals.
    assert_eq!(puts(&sim), 10);
    assert_eq!(report.requests, 11);
    assert_converged(&sim, &desired, &foreign_before);

    // A storm longer than the retry budget: a transient error, the ops marked failed.
    let mut tight = config(&sim.url(), ADMIN, 100);
    tight.retry_budget = Duration::from_millis(50);
    tight.backoff_initial = Duration::from_millis(20);
    let sink = AudioCodesSink::new(tight).expect("sink");
    sim.state().faults.busy_writes = 1000;
    sim.state().faults.retry_after_secs = None;
    let err = sync(&sink, &mut store, &routes(600))
        .await
        .expect_err("busy");
    assert!(matches!(err, SinkError::Busy { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    // Certainly not applied: the journal is finished, not left to settle.
    assert!(store.unfinished_journal().expect("journal").is_none());
    sim.state().faults.busy_writes = 0;
    sync(&sink, &mut store, &routes(600)).await.expect("after");
    assert_converged(&sim, &routes(600), &foreign_before);
}

/// A plan with adds, modifies and deletes after an initial load of 300.
fn second_desired() -> Vec<Route> {
    let mut desired = routes(450);
    desired.retain(|r| !r.prefix.as_str().ends_with("7#"));
    for (i, route) in desired.iter_mut().enumerate() {
        if i % 11 == 0 {
            route.tag = Tag::parse("Trunk=moved", 64).expect("tag");
        }
    }
    desired
}

#[tokio::test]
async fn dropped_connections_mid_batch_converge() {
    for (fault, budget) in [
        ("after", Duration::from_secs(20)),
        ("before", Duration::from_secs(20)),
        ("after", Duration::ZERO),
        ("before", Duration::ZERO),
    ] {
        let sim = start(device()).await;
        let scratch = tempfile::tempdir().expect("tempdir");
        let mut store = store_in(scratch.path());
        let foreign_before = foreign(&sim);
        let sink = AudioCodesSink::new(config(&sim.url(), ADMIN, 50)).expect("sink");
        sync(&sink, &mut store, &routes(300)).await.expect("load");

        let mut faulty = config(&sim.url(), ADMIN, 50);
        faulty.retry_budget = budget;
        let faulty = AudioCodesSink::new(faulty).expect("sink");
        {
            let mut state = sim.state();
            match fault {
                "after" => state.faults.drop_after_apply = 1,
                _ => state.faults.drop_before_apply = 1,
            }
        }
        let desired = second_desired();
        let result = sync(&faulty, &mut store, &desired).await;
        match &result {
            // Retried after re-reading: nothing replayed, nothing wrongly quarantined.
            Ok(report) => {
                assert!(!budget.is_zero(), "{fault}: must fail without a budget");
                assert!(report.quarantined.is_empty(), "{fault}: {report:?}");
            }
            Err(e) => {
                assert!(budget.is_zero(), "{fault}: {e}");
                assert_eq!(e.class(), ErrorClass::Transient, "{e}");
                // The outcome is unknown: the journal waits to be settled, and apply refuses
                // until it is.
                assert!(store.unfinished_journal().expect("journal").is_some());
                let refused = sync(&sink, &mut store, &desired)
                    .await
                    .expect_err("unsettled");
                assert!(matches!(refused, SinkError::Unsettled { .. }), "{refused}");
            }
        }
        let settled = sink.settle_unfinished(&mut store).await.expect("settle");
        match (&result, settled) {
            (Ok(_), settled) => assert_eq!(settled, None),
            (Err(_), Some(report)) => {
                // The first batch (50 ops) was the one cut: applied or not, as the device says.
                if fault == "after" {
                    assert_eq!(report.confirmed, 50, "{report:?}");
                } else {
                    assert_eq!(report.confirmed, 0, "{report:?}");
                    assert!(report.not_applied >= 50, "{report:?}");
                }
            }
            (Err(e), None) => panic!("{fault}: {e} left nothing to settle"),
        }
        let report = sync(&sink, &mut store, &desired).await.expect("converge");
        assert!(report.quarantined.is_empty());
        assert_converged(&sim, &desired, &foreign_before);
    }
}

#[tokio::test]
async fn a_bad_rule_inside_a_batch_is_quarantined() {
    let sim = start(device()).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let sink = AudioCodesSink::new(config(&sim.url(), ADMIN, 200)).expect("sink");
    let foreign_before = foreign(&sim);
    let mut desired = routes(450);
    // Longer than the device's 64 characters.
    let bad = route("+3299000001#", &format!("Trunk={}", "x".repeat(70)));
    desired.push(bad.clone());
    desired.sort();
    let report = sync(&sink, &mut store, &desired).await.expect("apply");
    assert_eq!(report.applied, 450);
    assert_eq!(report.quarantined.len(), 1, "{:?}", report.quarantined);
    let (op, reason) = &report.quarantined[0];
    assert_eq!(op.after.as_ref(), Some(&bad));
    assert!(
        reason.contains("Script execution failed") && reason.contains("more than"),
        "{reason}"
    );
    // 3 batches, the failing one once more op by op (200 PUTs), and the save.
    assert_eq!(puts(&sim), 3 + 200);
    assert!(report.saved);
    assert!(store.unfinished_journal().expect("journal").is_none());
    desired.retain(|r| *r != bad);
    assert_converged(&sim, &desired, &foreign_before);
}

#[tokio::test]
async fn wrong_password_is_fatal() {
    let sim = start(device()).await;
    let sink = AudioCodesSink::new(config(&sim.url(), (ADMIN.0, "guess"), 200)).expect("sink");
    let err = sink.read().await.expect_err("refused");
    assert!(matches!(err, SinkError::Unauthorized));
    assert_eq!(err.class(), ErrorClass::Fatal);
    assert_eq!(
        err.to_string(),
        "authentication refused: check sbc.username and sbc.password_file"
    );
    // Asked once, not retried.
    assert_eq!(sim.state().requests.len(), 1);
}

#[tokio::test]
async fn monitor_user_is_fatal_and_writes_nothing() {
    let sim = start(device()).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let sink = AudioCodesSink::new(config(&sim.url(), MONITOR, 200)).expect("sink");
    let err = sync(&sink, &mut store, &routes(10))
        .await
        .expect_err("forbidden");
    assert!(matches!(err, SinkError::Forbidden { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);
    assert!(
        err.to_string()
            .contains("user \"monitor\" lacks the Administrator role"),
        "{err}"
    );
    assert_eq!(sim.state().applied_scripts, 0);
    assert_eq!(puts(&sim), 1);
    assert!(store.unfinished_journal().expect("journal").is_none());
}

#[tokio::test]
async fn upgrading_device_is_not_written() {
    let sim = start(device()).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    sim.state().faults.upgrading = true;
    let sink = AudioCodesSink::new(config(&sim.url(), ADMIN, 200)).expect("sink");
    let err = sync(&sink, &mut store, &routes(10))
        .await
        .expect_err("upgrading");
    assert!(matches!(err, SinkError::Upgrading), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(puts(&sim), 0);
    assert!(store.unfinished_journal().expect("journal").is_none());
}

#[tokio::test]
async fn missing_dial_plan_and_bad_rows() {
    let sim = start(device()).await;
    let mut other = config(&sim.url(), ADMIN, 200);
    other.dial_plan = "NoSuchPlan".into();
    let err = AudioCodesSink::new(other)
        .expect("sink")
        .read()
        .await
        .expect_err("missing");
    assert!(matches!(err, SinkError::DialPlanMissing { .. }));
    assert!(err.to_string().contains("NoSuchPlan"), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);

    // A row the device holds that dialsync cannot read is reported, not dropped silently.
    sim.state().plans.get_mut(&0).expect("plan").rules.insert(
        9,
        SimRule {
            name: "pbx".into(),
            prefix: "+32[9-".into(),
            tag: "Trunk=pbx".into(),
        },
    );
    let device = AudioCodesSink::new(config(&sim.url(), ADMIN, 200))
        .expect("sink")
        .read()
        .await
        .expect("read");
    assert_eq!(device.rules.len(), 3);
    assert_eq!(device.bad_rows.len(), 1);
    assert_eq!(device.bad_rows[0].0, 9);
}

#[test]
fn password_is_redacted() {
    let config = SbcConfig::new("https://sbc.example.net", "dialsync", "hunter2-secret");
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("<redacted>"));
}

// ---- kill and restart ----

/// Set in the child's environment: "be the agent that gets killed".
const CHILD_URL: &str = "DIALSYNC_SINK_KILL_URL";
const CHILD_DB: &str = "DIALSYNC_SINK_KILL_DB";
const KILL_TEST: &str = "kill_and_restart_mid_apply_converges";
const KILL_RULES: usize = 2000;
const KILL_BATCH: usize = 20;

/// The process that is killed: one ordinary cycle with small batches against a slow device.
fn child(url: &str, db: &Path) -> ! {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut store = Store::open(db).expect("store");
        let sink = AudioCodesSink::new(config(url, ADMIN, KILL_BATCH)).expect("sink");
        let report = sync(&sink, &mut store, &routes(KILL_RULES)).await;
        println!("child: finished without being killed: {report:?}");
    });
    std::process::exit(0);
}

#[test]
fn kill_and_restart_mid_apply_converges() {
    if let (Some(url), Some(db)) = (std::env::var_os(CHILD_URL), std::env::var_os(CHILD_DB)) {
        child(&url.to_string_lossy(), Path::new(&db));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let sim = start(device()).await;
        let foreign_before = foreign(&sim);
        sim.state().faults.latency = Duration::from_millis(15);
        let scratch = tempfile::tempdir().expect("tempdir");
        let db = scratch.path().join("state.db");
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([KILL_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_URL, sim.url())
            .env(CHILD_DB, &db)
            .current_dir(scratch.path())
            .spawn()
            .expect("child starts");
        let total = KILL_RULES / KILL_BATCH;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let applied = sim.state().applied_scripts;
            if applied >= total / 4 {
                break;
            }
            assert!(Instant::now() < deadline, "the child made no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
        }
        // A request already inside the device when the client died may still land: let it,
        // so what settling reads is what the device keeps.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let at_kill = sim.state().applied_scripts;
        assert!(at_kill < total, "the child finished before the kill");
        sim.state().faults.latency = Duration::ZERO;
        println!("killed the child after {at_kill} of {total} scripts");

        let mut store = Store::open(&db).expect("store");
        let sink = AudioCodesSink::new(config(&sim.url(), ADMIN, 200)).expect("sink");
        let settled = sink
            .settle_unfinished(&mut store)
            .await
            .expect("settle")
            .expect("the killed apply left a journal");
        println!("settled: {settled:?}");
        assert_eq!(
            settled.already_done + settled.confirmed,
            at_kill * KILL_BATCH
        );
        assert_eq!(
            settled.already_done + settled.confirmed + settled.not_applied,
            KILL_RULES
        );
        assert!(store.unfinished_journal().expect("journal").is_none());

        let desired = routes(KILL_RULES);
        let report = sync(&sink, &mut store, &desired).await.expect("resume");
        assert_eq!(report.applied, KILL_RULES - at_kill * KILL_BATCH);
        assert_converged(&sim, &desired, &foreign_before);
        let unique: std::collections::BTreeSet<String> = sim.state().plans[&0]
            .rules
            .values()
            .map(|r| r.prefix.clone())
            .collect();
        assert_eq!(unique.len(), KILL_RULES + 3, "no duplicate prefixes");
    });
}

// ---- measurement ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: cargo test --release -- --ignored apply_100k --nocapture"]
async fn apply_100k_ops() {
    let sim = start(device()).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let sink = AudioCodesSink::new(config(&sim.url(), ADMIN, 200)).expect("sink");
    let desired = routes(100_000);
    let device = sink.read().await.expect("read");
    let plan = plan(&desired, &device.rules, &[], &settings());
    assert_eq!(plan.ops.len(), 100_000);
    let started = Instant::now();
    let report = sink.apply(&mut store, &plan, &device).await.expect("apply");
    let took = started.elapsed();
    println!(
        "applied 100,000 rule ops in {took:?}: {} HTTP requests ({} PUTs of <= 200 ops, {} batches)",
        report.requests,
        puts(&sim),
        report.batches
    );
    assert_eq!(report.applied, 100_000);
    assert_eq!(owned(&sim).len(), 100_000);
}

#[test]
fn bad_settings_are_fatal() {
    let mut missing_ca = SbcConfig::new("https://sbc.example.net", "dialsync", "pw");
    missing_ca.ca_file = Some("/nonexistent/sbc-ca.pem".into());
    let err = AudioCodesSink::new(missing_ca).expect_err("no CA file");
    assert!(matches!(err, SinkError::Tls { .. }), "{err}");
    assert!(err.to_string().contains("sbc-ca.pem"), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);

    let err =
        AudioCodesSink::new(SbcConfig::new("ftp://sbc.example.net", "u", "p")).expect_err("scheme");
    assert!(matches!(err, SinkError::BadUrl { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);

    let mut zero = SbcConfig::new("https://sbc.example.net", "u", "p");
    zero.batch_size = 0;
    assert!(matches!(
        AudioCodesSink::new(zero),
        Err(SinkError::BadBatchSize)
    ));

    // Explicitly insecure is allowed (and warns on stderr).
    let mut insecure = SbcConfig::new("https://sbc.example.net", "u", "p");
    insecure.insecure_skip_verify = true;
    assert!(AudioCodesSink::new(insecure).is_ok());
}
