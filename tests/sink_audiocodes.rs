//! The AudioCodes sink against the SBC emulator over real HTTP on loopback, with a real SQLite
//! journal: loads, in-place modifies, deletes, foreign rules, busy storms, dropped connections,
//! a bad rule inside a batch, refused credentials, an upgrading device, and a real process
//! killed with SIGKILL in the middle of an apply.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::emulators::{own_runtime, start_sbc};
use common::plan::{plan_settings, planned, route, routes, store_in};
use common::sbc::{
    admin_and_monitor, oc_dial_plan, quiet_dropped_connections, scripts_written, sim_rule, ADMIN,
    MONITOR,
};
use dialsync::dialplan::rule::Tag;
use dialsync::error::{Classify, ErrorClass};
use dialsync::plan::{plan, OpKind, Route};
use dialsync::sim::sbc::cli::CliStyle;
use dialsync::sim::sbc::{SbcSim, SbcState, SimPlan, SimRule};
use dialsync::sink::audiocodes::{AudioCodesSink, SbcConfig};
use dialsync::sink::{Apply, ApplyReport, SinkError, Target};
use dialsync::store::Store;

async fn start(state: SbcState) -> SbcSim {
    quiet_dropped_connections();
    start_sbc(state, admin_and_monitor()).await
}

/// A device whose `OCDialPlan` already holds what the field puts there before dialsync comes
/// (at the low indexes an empty plan's adds would take): Live Platform's own Operator Connect
/// rules (one number, no `#`, a bare FQDN for a tag), a site-coded rule with a 4-digit bracket,
/// a PBX's rules, a hand-made rule with an escaped quote in its name and a tag past 64
/// characters, and one row in the vendor's suffix notation, which dialsync cannot read. Another
/// dial plan holds rules with dialsync's name. None of them may ever change.
fn device() -> SbcState {
    let long_tag = format!("Trunk=legacy-{}", "x".repeat(60));
    let mut state = oc_dial_plan(&[
        (0, "LivePlatform", "+97239753000", "sandbox1.audiocodes.be"),
        (
            1,
            "GSBFZUBGHWOFI",
            "+2711123[1000-1999]",
            "sbc01.teams.contoso.com",
        ),
        (2, "pbx", "+3222", "Trunk=pbx"),
        (3, "Site \"A\"", "+3223[0-4]", long_tag.as_str()),
        (4, "pbx", "+3224xx#", "Trunk=pbx"),
        (5, "legacy", "53([2-4])", "A"),
    ]);
    let mut other = SimPlan {
        name: "Other".into(),
        rules: BTreeMap::new(),
    };
    other
        .rules
        .insert(5, sim_rule("dialsync", "+3226000001#", "Trunk=other"));
    state.plans.insert(1, other);
    state
}

fn config(sim_url: &str, user: (&str, &str), batch_size: usize) -> SbcConfig {
    let mut config = SbcConfig::new(sim_url, user.0, user.1);
    config.writes.batch_size = batch_size;
    config.writes.timeout = Duration::from_secs(20);
    config.writes.retry_budget = Duration::from_secs(20);
    config.writes.backoff_initial = Duration::from_millis(5);
    config.writes.backoff_max = Duration::from_millis(100);
    config
}

/// Read, plan and apply, as one agent cycle does.
async fn sync(
    sink: &AudioCodesSink,
    store: &mut Store,
    desired: &[Route],
) -> Result<ApplyReport, SinkError> {
    let device = sink.read().await?;
    sink.apply(store, &planned(desired, &device), &device).await
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
        scripts_written(&sim)
    );
    assert_eq!(report.applied, 3000);
    assert_eq!(report.batches, 15);
    assert_eq!(scripts_written(&sim), 15);
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
    let modify = plan(
        &desired,
        &device_now.rules,
        &device_now.unreadable,
        &[],
        &plan_settings(),
    );
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
    let before = scripts_written(&sim);
    let report = sync(&sink, &mut store, &desired).await.expect("no-op");
    assert_eq!(
        (report.applied, report.batches, report.saved),
        (0, 0, false)
    );
    assert_eq!(scripts_written(&sim), before);
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
    assert_eq!(scripts_written(&sim), 10);
    assert_eq!(report.requests, 11);
    assert_converged(&sim, &desired, &foreign_before);

    // A storm longer than the retry budget: a transient error, the ops marked failed.
    let mut tight = config(&sim.url(), ADMIN, 100);
    tight.writes.retry_budget = Duration::from_millis(50);
    tight.writes.backoff_initial = Duration::from_millis(20);
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
        faulty.writes.retry_budget = budget;
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
        reason.contains("Script execution failed") && reason.contains("at most 64"),
        "{reason}"
    );
    // 3 batches, the failing one once more op by op (200 PUTs), and the save.
    assert_eq!(scripts_written(&sim), 3 + 200);
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
    assert_eq!(scripts_written(&sim), 1);
    assert!(store.unfinished_journal().expect("journal").is_none());
}

/// `upgradeStatus` as the vendor documents it: writes only under "None", an empty value or
/// no field at all; any upgrade state, and any value dialsync does not know, holds them back.
#[tokio::test]
async fn writes_wait_for_the_end_of_an_upgrade() {
    for (status, writes) in [
        (Some("None"), true),
        (Some(""), true),
        (None, true),
        (Some("In Progress"), false),
        (Some("Hitless-beforeSwitchOver"), false),
        (Some("Hitless-beforeSwitchBack"), false),
        (Some("Hitless-WaitRdnReconnect"), false),
        (Some("Not in progress"), false),
    ] {
        let sim = start(device()).await;
        let scratch = tempfile::tempdir().expect("tempdir");
        let mut store = store_in(scratch.path());
        sim.state().upgrade_status = status.map(str::to_string);
        let sink = AudioCodesSink::new(config(&sim.url(), ADMIN, 200)).expect("sink");
        let result = sync(&sink, &mut store, &routes(10)).await;
        if writes {
            assert_eq!(result.expect("idle device").applied, 10, "{status:?}");
            continue;
        }
        let err = result.expect_err("upgrading");
        assert!(
            matches!(err, SinkError::Upgrading { .. }),
            "{status:?}: {err}"
        );
        assert!(err.to_string().contains(status.unwrap_or("-")), "{err}");
        assert_eq!(err.class(), ErrorClass::Transient);
        assert_eq!(scripts_written(&sim), 0, "{status:?}");
        assert!(store.unfinished_journal().expect("journal").is_none());
    }
}

/// `saveNeeded` arrives as the strings the vendor documents or as a boolean: either way a
/// device with unsaved changes is saved, and one without is not.
#[tokio::test]
async fn save_needed_as_a_string_or_a_boolean() {
    const SAVE: &str = "POST /api/v1/actions/saveConfiguration";
    for strings in [true, false] {
        let sim = start(device()).await;
        sim.state().firmware.status_strings = strings;
        let scratch = tempfile::tempdir().expect("tempdir");
        let mut store = store_in(scratch.path());
        let sink = AudioCodesSink::new(config(&sim.url(), ADMIN, 200)).expect("sink");
        let device = sink.read().await.expect("read");
        assert!(!device.save_needed, "{strings}");
        sim.state().save_needed = true;
        assert!(sink.read().await.expect("read").save_needed, "{strings}");
        // Nothing to change, but the running configuration is unsaved: saved once.
        let report = sync(&sink, &mut store, &[]).await.expect("sync");
        assert!(report.saved, "{strings}");
        let saves = |sim: &SbcSim| sim.state().requests.iter().filter(|r| *r == SAVE).count();
        assert_eq!(saves(&sim), 1);
        assert!(!sim.state().save_needed);
        sync(&sink, &mut store, &[]).await.expect("sync");
        assert_eq!(saves(&sim), 1, "{strings}: nothing to save");
    }
}

/// The vendor's own example answer to an incremental script has no `status`. Each such
/// answer is settled by one read of the dial plan: nothing is assumed and nothing resent.
#[tokio::test]
async fn answers_without_a_status_are_settled_by_one_read() {
    const SCRIPT_READ: &str = "GET /api/v1/files/cliScript";
    let sim = start(device()).await;
    sim.state().firmware.answer_status = false;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let sink = AudioCodesSink::new(config(&sim.url(), ADMIN, 100)).expect("sink");
    let foreign_before = foreign(&sim);
    let desired = routes(450);
    let reads = |sim: &SbcSim| {
        sim.state()
            .requests
            .iter()
            .filter(|r| *r == SCRIPT_READ)
            .count()
    };
    let report = sync(&sink, &mut store, &desired).await.expect("load");
    assert_eq!(report.applied, 450);
    assert!(report.quarantined.is_empty(), "{:?}", report.quarantined);
    // 5 batches, each sent once and read back once, besides the read the plan came from.
    assert_eq!(scripts_written(&sim), 5);
    assert_eq!(reads(&sim), 1 + 5);
    assert_converged(&sim, &desired, &foreign_before);
}

/// A script the device refuses, in each of the shapes firmware answers with: 200 and
/// `status: failure`; 400 ("provided CLI script is incorrect"); and 200 with no status, whose
/// read shows nothing applied. In each, the batch is split, the one refused rule quarantined
/// with the device's own words, and the rest applied.
#[tokio::test]
async fn a_refused_rule_is_found_in_every_answer_shape() {
    for (refuse_with_400, answer_status) in
        [(false, true), (true, true), (true, false), (false, false)]
    {
        let sim = start(device()).await;
        {
            let mut state = sim.state();
            state.firmware.refuse_with_400 = refuse_with_400;
            state.firmware.answer_status = answer_status;
        }
        let shape = format!("400 {refuse_with_400}, status {answer_status}");
        let scratch = tempfile::tempdir().expect("tempdir");
        let mut store = store_in(scratch.path());
        let sink = AudioCodesSink::new(config(&sim.url(), ADMIN, 20)).expect("sink");
        let foreign_before = foreign(&sim);
        let mut desired = routes(45);
        // Longer than the device's 64 characters.
        let bad = route("+3299000001#", &format!("Trunk={}", "x".repeat(70)));
        desired.push(bad.clone());
        desired.sort();
        // Which batch of 20 the bad rule travels in, make-before-break order and all.
        let read = sink.read().await.expect("read");
        let ops = plan(
            &desired,
            &read.rules,
            &read.unreadable,
            &[],
            &plan_settings(),
        )
        .ops;
        let at = ops
            .iter()
            .position(|op| op.after.as_ref() == Some(&bad))
            .expect("op");
        let refused_batch = ops.chunks(20).nth(at / 20).expect("batch").len();
        let report = sync(&sink, &mut store, &desired).await.expect(&shape);
        assert_eq!(report.applied, 45, "{shape}");
        assert_eq!(
            report.quarantined.len(),
            1,
            "{shape}: {:?}",
            report.quarantined
        );
        let (op, reason) = &report.quarantined[0];
        assert_eq!(op.after.as_ref(), Some(&bad));
        assert!(reason.contains("at most 64"), "{shape}: {reason}");
        // 3 batches, the refused one again op by op.
        assert_eq!(scripts_written(&sim), 3 + refused_batch, "{shape}");
        assert!(store.unfinished_journal().expect("journal").is_none());
        desired.retain(|r| *r != bad);
        assert_converged(&sim, &desired, &foreign_before);
    }
}

/// Exports differ in indentation (none, one, two or four spaces) and in whether the last
/// `exit` is there; every one reads the same dial plan, and a sync over it converges.
#[tokio::test]
async fn any_indentation_and_a_missing_last_exit_read_the_same() {
    let mut reads = Vec::new();
    for (indent, final_exit) in [(1, true), (0, true), (2, true), (4, false), (0, false)] {
        let mut state = device();
        state.firmware.style = CliStyle { indent, final_exit };
        state.other_sections = "configure system\n web\n  http-auth-mode basic\n exit\nexit\n\
                                configure network\n network-dev 0\n  name \"vlan 1\"\n exit\nexit\n"
            .into();
        let sim = start(state).await;
        let scratch = tempfile::tempdir().expect("tempdir");
        let mut store = store_in(scratch.path());
        let sink = AudioCodesSink::new(config(&sim.url(), ADMIN, 200)).expect("sink");
        let foreign_before = foreign(&sim);
        reads.push(sink.read().await.expect("read"));
        sync(&sink, &mut store, &routes(30)).await.expect("sync");
        assert_converged(&sim, &routes(30), &foreign_before);
    }
    assert!(reads.windows(2).all(|w| w[0] == w[1]), "{reads:#?}");
    assert_eq!(reads[0].rules.len(), 5);
    assert_eq!(reads[0].unreadable.len(), 1);
}

/// The field's rows are read as they are: Live Platform's, the site-coded one, the PBX's and
/// the hand-made one as rules with their tags exactly as held, the suffix-notation row as
/// unreadable, its index taken. A dial plan that is not there is fatal.
#[tokio::test]
async fn field_rows_are_read_and_a_missing_dial_plan_is_fatal() {
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

    let device = AudioCodesSink::new(config(&sim.url(), ADMIN, 200))
        .expect("sink")
        .read()
        .await
        .expect("read");
    let held: Vec<(u32, &str, &str)> = device
        .rules
        .iter()
        .map(|r| (r.index, &*r.name, r.tag.as_str()))
        .collect();
    let long_tag = format!("Trunk=legacy-{}", "x".repeat(60));
    assert_eq!(
        held,
        vec![
            (0, "LivePlatform", "sandbox1.audiocodes.be"),
            (1, "GSBFZUBGHWOFI", "sbc01.teams.contoso.com"),
            (2, "pbx", "Trunk=pbx"),
            (3, "Site \"A\"", long_tag.as_str()),
            (4, "pbx", "Trunk=pbx"),
        ]
    );
    assert!(
        !device.rules[0].prefix.is_anchored(),
        "+97239753000 is an open prefix"
    );
    assert_eq!(device.unreadable.len(), 1);
    assert_eq!(device.unreadable[0].index, 5);
    assert!(
        device.unreadable[0].reason.contains("53([2-4])"),
        "{:?}",
        device.unreadable
    );
}

/// The invariant, checked just before anything is sent: a plan that would write a row
/// dialsync does not own (here: one made by hand against an older read, in which Live
/// Platform's index 0 and the unreadable index 5 were free) is refused whole, Fatal, naming
/// the row, and nothing reaches the device.
#[tokio::test]
async fn a_plan_that_writes_a_row_not_ours_is_refused_whole() {
    let sim = start(device()).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let sink = AudioCodesSink::new(config(&sim.url(), ADMIN, 200)).expect("sink");
    let device = sink.read().await.expect("read");
    let foreign_before = foreign(&sim);
    for taken in [0u32, 5] {
        let stale = plan(&routes(3), &[], &[], &[], &plan_settings());
        let mut bad = stale.clone();
        bad.ops[0].index = taken;
        let err = sink
            .apply(&mut store, &bad, &device)
            .await
            .expect_err("breach");
        assert!(matches!(err, SinkError::Ownership(_)), "{err}");
        assert_eq!(err.class(), ErrorClass::Fatal);
        let text = err.to_string();
        assert!(text.contains(&format!("index {taken}")), "{text}");
        assert!(
            text.contains(if taken == 0 {
                "LivePlatform"
            } else {
                "53([2-4])"
            }),
            "{text}"
        );
        assert_eq!(scripts_written(&sim), 0);
        assert!(store.unfinished_journal().expect("journal").is_none());
    }
    assert_eq!(foreign(&sim), foreign_before);
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
    let runtime = own_runtime(2);
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
        let foreign_in_oc = foreign_before
            .iter()
            .filter(|(plan, ..)| *plan == 0)
            .count();
        assert_eq!(
            unique.len(),
            KILL_RULES + foreign_in_oc,
            "no duplicate prefixes"
        );
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
    let plan = plan(
        &desired,
        &device.rules,
        &device.unreadable,
        &[],
        &plan_settings(),
    );
    assert_eq!(plan.ops.len(), 100_000);
    let started = Instant::now();
    let report = sink.apply(&mut store, &plan, &device).await.expect("apply");
    let took = started.elapsed();
    println!(
        "applied 100,000 rule ops in {took:?}: {} HTTP requests ({} PUTs of <= 200 ops, {} batches)",
        report.requests,
        scripts_written(&sim),
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
    zero.writes.batch_size = 0;
    assert!(matches!(
        AudioCodesSink::new(zero),
        Err(SinkError::BadBatchSize)
    ));

    // Explicitly insecure is allowed (and warns on stderr).
    let mut insecure = SbcConfig::new("https://sbc.example.net", "u", "p");
    insecure.insecure_skip_verify = true;
    assert!(AudioCodesSink::new(insecure).is_ok());
}
