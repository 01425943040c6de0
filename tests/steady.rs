//! The steady state: a cycle whose sources and SBC answer exactly as in the last cycle that
//! changed nothing takes that cycle's findings instead of recomputing them. What is held here
//! is that such a cycle reports what a computed one reports, and that any change anywhere (a
//! hand edit on the SBC, a new number upstream, an edited config, a failing source) is
//! computed again.

mod common;

use common::config::{apio_source, seed_apio};
use common::emulators::start_apio;
use common::sbc::{oc_dial_plan, sim_rule};
use common::{Rig, Settings};
use dialsync::app::agent::{Agent, CycleReport, Mode, Outcome, SourceState};
use dialsync::sim::apio::{self, ApioSim, ApioSimConfig, Fault};
use dialsync::sim::fusion::usage;
use dialsync::sink::ApplyControl;
use dialsync::store::Store;

/// The rig with an APIO group besides Fusion and the static file, one rejected Fusion item,
/// two static ranges in conflict, and on the SBC a PBX's rule and a Live Platform-style rule
/// for one of acme's numbers, which shadows it.
async fn start() -> (Rig, ApioSim) {
    let rig = Rig::serve(oc_dial_plan(&[
        (0, "pbx", "+3222", "Trunk=pbx"),
        (1, "LP-acme", "+3226120007", "Trunk=teams"),
    ]))
    .await;
    rig.fusion
        .state()
        .phone_usages
        .push(usage("+32abc", "acme"));
    rig.write(
        "static.csv",
        "start,end,tag\n+3225000000,+3225000009,Trunk=static\n+3225000005,+3225000014,Trunk=lab2\n",
    );
    let apio = start_apio(ApioSimConfig::default()).await;
    seed_apio(&apio);
    rig.secret("apio-password", &apio.config().password);
    write_config(&rig, &apio, "");
    (rig, apio)
}

fn write_config(rig: &Rig, apio: &ApioSim, comment: &str) {
    let extra = format!(
        "{comment}\n{}",
        apio_source(apio, rig.path("apio-password").display(), "2s")
    );
    rig.write_config(&Settings {
        extra,
        ..Settings::default()
    });
}

async fn sync(agent: &mut Agent) -> CycleReport {
    agent.cycle(&Mode::Sync, &ApplyControl::default()).await
}

/// A first sync, then a cycle that must already be steady: the state every change test starts
/// from.
async fn settle(agent: &mut Agent) {
    sync(agent).await;
    assert!(
        steady(&sync(agent).await),
        "the cycle after a sync is steady"
    );
}

fn steady(report: &CycleReport) -> bool {
    report.phases.iter().any(|p| p.phase == "steady")
}

/// Everything a steady cycle takes from the record, beside what a computed cycle finds.
fn assert_reports_alike(taken: &CycleReport, computed: &CycleReport) {
    assert_eq!(taken.conflicts, computed.conflicts);
    assert_eq!(taken.desired_rules, computed.desired_rules);
    assert_eq!(
        (taken.owned_rules, taken.foreign_rules),
        (computed.owned_rules, computed.foreign_rules)
    );
    assert_eq!(taken.unreadable_rows, computed.unreadable_rows);
    let rejected = |r: &CycleReport| -> Vec<String> {
        r.rejected()
            .map(|(s, item)| format!("{s}: {item}"))
            .collect()
    };
    assert_eq!(rejected(taken), rejected(computed));
    assert_eq!(taken.plan, computed.plan);
    let (a, b) = (
        taken.audit.as_ref().expect("audited"),
        computed.audit.as_ref().expect("audited"),
    );
    assert_eq!(
        (&a.counts, a.findings, &a.examples),
        (&b.counts, b.findings, &b.examples)
    );
}

#[tokio::test]
async fn an_unchanged_cycle_reports_what_a_computed_one_finds() {
    let (rig, apio) = start().await;
    let mut agent = rig.agent();
    let first = sync(&mut agent).await;
    assert_eq!(first.outcome, Outcome::Converged, "{}", first.summary());
    assert!(first.applied_counts().adds > 0);
    assert!(!steady(&first));

    // The first sync wrote the dial plan; the next cycle reads it back and, as nothing
    // changed, takes the findings the first sync recorded for it.
    let writes = rig.writes();
    let lists = apio.state().list_requests;
    let second = sync(&mut agent).await;
    assert!(steady(&second), "{:?}", second.phases);
    assert_eq!(second.outcome, Outcome::Converged, "{}", second.summary());
    assert_eq!(second.sync_exit_code(), 0);
    assert_eq!(rig.writes(), writes, "a steady cycle writes nothing");
    assert_eq!(
        apio.state().list_requests - lists,
        2,
        "an unchanged APIO answer is read once"
    );
    // What it reports is what computing finds: a dry run always computes.
    let computed = agent.cycle(&Mode::DryRun, &ApplyControl::default()).await;
    assert!(!steady(&computed));
    assert_reports_alike(&second, &computed);
    assert_eq!(second.rejected_count(), 1);
    assert_eq!(second.conflicts.len(), 1);
    let audit = second.audit.as_ref().expect("audited");
    assert_eq!(audit.counts.shadowed, 1, "{audit:?}");
    assert!(second
        .sources
        .iter()
        .all(|s| s.state == SourceState::Fresh && s.last_good_unix.is_some()));

    let third = sync(&mut agent).await;
    assert!(steady(&third));
    assert_reports_alike(&third, &computed);
    let recorded = agent.store().last_cycle().expect("read").expect("recorded");
    assert_eq!((recorded.rejected, recorded.conflicts), (1, 1));
    assert_eq!(recorded.audit.map(|a| a.shadowed), Some(1));
    rig.assert_no_unexpected();
    assert_eq!(apio.state().unexpected, Vec::<String>::new());
}

#[tokio::test]
async fn a_hand_edit_on_the_sbc_is_computed_and_repaired() {
    let (rig, apio) = start().await;
    let mut agent = rig.agent();
    settle(&mut agent).await;
    let owned = rig.owned_rules();
    {
        let mut state = rig.sbc.state();
        let plan = state.plans.get_mut(&0).expect("OCDialPlan");
        plan.rules.get_mut(&owned[0].0).expect("rule").tag = "Trunk=oops".into();
        plan.rules
            .insert(40, sim_rule("engineer", "+3229", "Trunk=lab"));
    }
    let repair = sync(&mut agent).await;
    assert!(!steady(&repair));
    assert_eq!(repair.outcome, Outcome::Converged, "{}", repair.summary());
    assert_eq!(repair.plan.as_ref().map(|p| p.ops.len()), Some(1));
    assert_eq!(rig.owned_rules(), owned);
    assert_eq!(repair.foreign_rules, 3);

    let after = sync(&mut agent).await;
    assert!(steady(&after), "the repaired dial plan is steady again");
    assert_eq!(after.foreign_rules, 3);
    assert_eq!(apio.state().unexpected, Vec::<String>::new());
}

#[tokio::test]
async fn a_change_upstream_or_in_the_config_is_computed() {
    let (rig, apio) = start().await;
    let mut agent = rig.agent();
    settle(&mut agent).await;

    // A new APIO number: the pages differ from the snapshot's, so they are read again and
    // decoded, and the number is routed.
    apio.state()
        .group("t1", "g1")
        .numbers
        .push(apio::number("+3227000200", "", true));
    let lists = apio.state().list_requests;
    let changed = sync(&mut agent).await;
    assert!(!steady(&changed));
    assert_eq!(
        apio.state().list_requests - lists,
        4,
        "digested, then decoded"
    );
    assert_eq!(changed.applied_counts().adds, 1, "{}", changed.summary());
    assert_eq!(rig.sbc_tag("+3227000200").as_deref(), Some("Trunk=apio"));
    assert!(steady(&sync(&mut agent).await));

    // A Fusion number gone: Fusion decodes as it reads, and its answer differs.
    rig.fusion
        .state()
        .phone_usages
        .retain(|u| u["phoneNumber"] != "+3226120050");
    let changed = sync(&mut agent).await;
    assert!(!steady(&changed));
    assert_eq!(rig.sbc_tag("+3226120050"), None);
    assert!(steady(&sync(&mut agent).await));

    // An edited config, even a comment, is a new config: nothing is taken on trust.
    write_config(&rig, &apio, "# edited");
    agent.reconfigure(rig.config()).expect("reload");
    let edited = sync(&mut agent).await;
    assert!(!steady(&edited));
    assert_eq!(edited.plan.as_ref().map(|p| p.ops.len()), Some(0));
    assert!(steady(&sync(&mut agent).await));

    // A failing source stands in from its snapshot: computed, and never recorded as steady.
    apio.state().sticky_fault = Some(Fault::Unavailable);
    let failing = sync(&mut agent).await;
    assert!(!steady(&failing));
    assert_eq!(failing.sources[2].state, SourceState::Stale);
    assert!(!steady(&sync(&mut agent).await));
    apio.state().sticky_fault = None;
    let back = sync(&mut agent).await;
    assert!(!steady(&back));
    assert!(steady(&sync(&mut agent).await));
    rig.assert_no_unexpected();
}

#[tokio::test]
async fn a_stale_record_is_never_taken_for_other_inputs() {
    let (rig, apio) = start().await;
    let mut agent = rig.agent();
    settle(&mut agent).await;
    let store = Store::open(rig.path("state.db")).expect("open");
    let recorded = store.steady_state().expect("read").expect("recorded");
    drop(store);
    // A new number, then the record of the old inputs put back, as if a crash had lost the
    // cycle that replaced it: the inputs differ, so the record is not taken.
    apio.state()
        .group("t1", "g1")
        .numbers
        .push(apio::number("+3227000300", "", true));
    sync(&mut agent).await;
    let mut store = Store::open(rig.path("state.db")).expect("open");
    store.set_steady_state(Some(&recorded)).expect("write");
    drop(store);
    let report = sync(&mut agent).await;
    assert!(!steady(&report));
    assert_eq!(rig.sbc_tag("+3227000300").as_deref(), Some("Trunk=apio"));
}
