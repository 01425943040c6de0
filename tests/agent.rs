//! Whole cycles, in process, against the emulators over loopback with a real state database:
//! the first sync, a no-change sync that writes nothing, churn at the minimal op count, a
//! failing source that deletes nothing, an emptied source that blocks until an operator forces
//! exactly the plan they read, hand edits on the SBC repaired, and `lookup` from the state.

mod common;

use std::fs;

use common::sbc::{oc_dial_plan, sim_rule};
use common::{Rig, Settings};
use dialsync::app::agent::{Agent, Mode, Outcome, SourceState};
use dialsync::app::lookup::lookup;
use dialsync::plan::{OpKind, Policy};
use dialsync::sim::fusion::{usage, Fault};
use dialsync::sink::ApplyControl;
use dialsync::store::{IssueKind, Store};

/// The rig on the test's runtime, its SBC holding one foreign rule (a PBX's, at index 0).
async fn start() -> Rig {
    Rig::serve(oc_dial_plan(&[(0, "pbx", "+3222", "Trunk=pbx")])).await
}

async fn sync(agent: &mut Agent) -> dialsync::app::agent::CycleReport {
    agent.cycle(&Mode::Sync, &ApplyControl::default()).await
}

#[tokio::test]
async fn first_sync_then_nothing_then_the_minimal_churn() {
    let rig = start().await;
    let mut agent = rig.agent();

    let first = sync(&mut agent).await;
    assert_eq!(first.outcome, Outcome::Converged, "{}", first.summary());
    assert_eq!(first.sync_exit_code(), 0);
    // acme, globex and the static range: one rule per maximal same-tag range.
    assert_eq!(first.desired_rules, 3);
    assert_eq!(first.applied_counts().adds, 3);
    assert_eq!(rig.owned_rules().len(), 3);
    assert_eq!(rig.sbc_tag("+3226120042").as_deref(), Some("Trunk=acme"));
    assert_eq!(rig.sbc_tag("+3226130049").as_deref(), Some("Trunk=globex"));
    assert_eq!(rig.sbc_tag("+3225000005").as_deref(), Some("Trunk=static"));
    assert_eq!(
        rig.sbc_tag("+3222555").as_deref(),
        Some("Trunk=pbx"),
        "foreign rule kept"
    );

    let writes = rig.writes();
    let second = sync(&mut agent).await;
    assert_eq!(second.outcome, Outcome::Converged);
    assert_eq!(second.plan.as_ref().map(|p| p.ops.len()), Some(0));
    assert_eq!(rig.writes(), writes, "a no-change cycle writes nothing");

    // One number leaves the middle of acme's run: its rule becomes two (one modify, one add).
    rig.fusion
        .state()
        .phone_usages
        .retain(|u| u["phoneNumber"] != "+3226120050");
    let churn = sync(&mut agent).await;
    assert_eq!(churn.outcome, Outcome::Converged, "{}", churn.summary());
    let ops = &churn.plan.as_ref().expect("plan").ops;
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert_eq!(rig.sbc_tag("+3226120050"), None);
    assert_eq!(rig.sbc_tag("+3226120049").as_deref(), Some("Trunk=acme"));
    assert_eq!(rig.sbc_tag("+3226120051").as_deref(), Some("Trunk=acme"));
    rig.assert_no_unexpected();

    let history = agent.store().history(10).expect("history");
    assert_eq!(history.len(), 3);
    assert_eq!((history[0].adds, history[0].modifies), (1, 1));
}

#[tokio::test]
async fn a_failing_source_deletes_nothing() {
    let rig = start().await;
    let mut agent = rig.agent();
    assert_eq!(sync(&mut agent).await.outcome, Outcome::Converged);
    let before = rig.owned_rules();

    rig.fusion.state().sticky_fault = Some(Fault::ServerError);
    let failing = sync(&mut agent).await;
    let fusion = &failing.sources[0];
    assert_eq!(fusion.state, SourceState::Stale);
    assert!(
        fusion.error.as_deref().unwrap_or("").contains("500"),
        "{fusion:?}"
    );
    assert_eq!(fusion.entries, 150, "the last good snapshot stands in");
    assert_eq!(failing.outcome, Outcome::Converged);
    assert_eq!(
        failing.sync_exit_code(),
        1,
        "a stale source is an error for `sync`"
    );
    assert_eq!(rig.owned_rules(), before);
    assert!(
        failing.summary().contains("sources failing: fusion"),
        "{}",
        failing.summary()
    );
    let recorded = agent.store().last_cycle().expect("read").expect("recorded");
    assert_eq!(recorded.source_failures, 1);
    assert!(recorded
        .issues
        .iter()
        .any(|i| i.kind == IssueKind::Source && i.source.as_deref() == Some("fusion")));
}

#[tokio::test]
async fn a_source_failing_with_no_snapshot_holds_back_deletes() {
    let rig = start().await;
    let mut agent = rig.agent();
    assert_eq!(sync(&mut agent).await.outcome, Outcome::Converged);
    let before = rig.owned_rules();
    drop(agent);
    // The state database is lost (a rebuilt host) while Fusion is down.
    fs::remove_file(rig.path("state.db")).expect("remove state");
    rig.fusion.state().sticky_fault = Some(Fault::ServerErrorText);
    let mut agent = rig.agent();
    let report = sync(&mut agent).await;
    assert_eq!(report.sources[0].state, SourceState::Failed);
    assert_eq!(report.policy, Policy::UpsertOnly);
    let plan = report.plan.as_ref().expect("plan");
    assert!(
        plan.ops.iter().all(|op| op.kind() != OpKind::Delete),
        "{plan:?}"
    );
    assert_eq!(rig.owned_rules(), before, "fusion's rules stay");
}

#[tokio::test]
async fn an_emptied_source_blocks_until_its_plan_is_forced() {
    let rig = start().await;
    let mut agent = rig.agent();
    assert_eq!(sync(&mut agent).await.outcome, Outcome::Converged);
    let writes = rig.writes();

    rig.fusion.state().phone_usages.clear();
    let blocked = sync(&mut agent).await;
    assert_eq!(blocked.outcome, Outcome::Blocked, "{}", blocked.summary());
    assert_eq!(blocked.sync_exit_code(), 2);
    assert_eq!(blocked.sources[0].state, SourceState::Emptied);
    assert_eq!(rig.writes(), writes, "nothing written");
    let checksum = blocked.plan.as_ref().expect("plan").checksum.clone();
    assert!(blocked.summary().contains(&checksum));

    // Still blocked on the next cycle: the empty answer was not saved as the snapshot.
    assert_eq!(sync(&mut agent).await.outcome, Outcome::Blocked);

    let wrong = agent
        .cycle(
            &Mode::Force {
                checksum: "0".repeat(64),
            },
            &ApplyControl::default(),
        )
        .await;
    assert_eq!(
        wrong.outcome,
        Outcome::Blocked,
        "still blocked: check keeps warning"
    );
    assert!(
        wrong
            .error
            .as_ref()
            .expect("error")
            .message
            .contains("plan changed"),
        "{:?}",
        wrong.error
    );
    assert_eq!(rig.writes(), writes);

    let forced = agent
        .cycle(&Mode::Force { checksum }, &ApplyControl::default())
        .await;
    assert_eq!(forced.outcome, Outcome::Converged, "{}", forced.summary());
    assert_eq!(forced.applied_counts().deletes, 2);
    assert_eq!(rig.sbc_tag("+3226120042"), None);
    assert_eq!(rig.sbc_tag("+3225000005").as_deref(), Some("Trunk=static"));
    let after = sync(&mut agent).await;
    assert_eq!(after.outcome, Outcome::Converged, "{}", after.summary());
    assert_eq!(after.plan.as_ref().map(|p| p.ops.len()), Some(0));
}

#[tokio::test]
async fn hand_edits_on_the_sbc_are_repaired_and_foreign_rules_left_alone() {
    let rig = start().await;
    let mut agent = rig.agent();
    assert_eq!(sync(&mut agent).await.outcome, Outcome::Converged);
    let before = rig.owned_rules();
    {
        let mut state = rig.sbc.state();
        let plan = state.plans.get_mut(&0).expect("OCDialPlan");
        let (first, second) = (before[0].0, before[1].0);
        plan.rules.get_mut(&first).expect("rule").tag = "Trunk=oops".into();
        plan.rules.remove(&second);
        plan.rules
            .insert(40, sim_rule("engineer", "+3229", "Trunk=lab"));
    }
    let repair = sync(&mut agent).await;
    assert_eq!(repair.outcome, Outcome::Converged, "{}", repair.summary());
    assert_eq!(repair.plan.as_ref().map(|p| p.ops.len()), Some(2));
    let mut after: Vec<_> = rig
        .owned_rules()
        .into_iter()
        .map(|(_, p, t)| (p, t))
        .collect();
    let mut expected: Vec<_> = before.into_iter().map(|(_, p, t)| (p, t)).collect();
    after.sort();
    expected.sort();
    assert_eq!(after, expected);
    assert_eq!(rig.sbc_tag("+32291").as_deref(), Some("Trunk=lab"));
    assert_eq!(repair.foreign_rules, 2);
}

#[tokio::test]
async fn rejected_items_and_conflicts_are_recorded_and_lookup_explains_a_number() {
    let rig = start().await;
    {
        let mut state = rig.fusion.state();
        state.phone_usages.push(usage("+32abc", "acme"));
        state.phone_usages.push(usage("+3226120000", ""));
    }
    // The static file holds two ranges that partly overlap (a conflict the earlier line
    // wins) and one around the end of acme's run (acme's numbers are more specific, so win).
    rig.write(
        "static.csv",
        "start,end,tag\n+3225000000,+3225000009,Trunk=static\n+3225000005,+3225000014,Trunk=lab2\n\
         +3226120090,+3226120109,Trunk=lab\n",
    );
    let mut agent = rig.agent();
    let report = sync(&mut agent).await;
    assert_eq!(report.outcome, Outcome::Converged, "{}", report.summary());
    assert_eq!(report.rejected_count(), 2);
    assert_eq!(report.conflicts.len(), 1, "{:?}", report.conflicts);
    let recorded = agent.store().last_cycle().expect("read").expect("recorded");
    assert_eq!((recorded.rejected, recorded.conflicts), (2, 1));
    let kinds: Vec<IssueKind> = recorded.issues.iter().map(|i| i.kind).collect();
    assert!(kinds.contains(&IssueKind::Conflict) && kinds.contains(&IssueKind::Rejected));
    assert!(recorded.issues.iter().any(|i| i.kind == IssueKind::Rejected
        && i.detail.contains("+32abc")
        || i.item.contains("+32abc")));

    let config = rig.config();
    let store = Store::open(rig.path("state.db")).expect("open state");
    let numbers = [
        "+3226120095",
        "+3226120105",
        "+3222123",
        "+3299",
        "+3225000007",
    ]
    .map(String::from);
    let answers = lookup(&config, &store, &numbers).expect("lookup");
    let contested = &answers[0];
    let rule = contested.sbc_rule.as_ref().expect("routed");
    assert!(rule.owned);
    assert_eq!(rule.tag.as_str(), "Trunk=acme");
    let desired = contested.desired.as_ref().expect("desired");
    assert_eq!(
        (desired.source.as_str(), desired.tag.as_str()),
        ("fusion", "Trunk=acme")
    );
    assert!(desired.item.contains("+3226120095"), "{desired:?}");
    assert!(contested.conflicts.is_empty(), "nesting is not a conflict");
    assert!(contested.in_sync);
    let contested = &answers[4];
    let desired = contested.desired.as_ref().expect("desired");
    assert_eq!(
        (desired.item.as_str(), desired.tag.as_str()),
        ("line 2", "Trunk=static")
    );
    assert_eq!(contested.conflicts.len(), 1, "{contested:?}");
    assert!(
        contested.conflicts[0].contains("line 2 wins"),
        "{contested:?}"
    );
    let static_only = &answers[1];
    assert_eq!(
        static_only.desired.as_ref().map(|d| d.source.as_str()),
        Some("static")
    );
    assert_eq!(
        static_only.sbc_rule.as_ref().map(|r| r.tag.as_str()),
        Some("Trunk=lab")
    );
    assert!(static_only.conflicts.is_empty());
    let foreign = &answers[2];
    assert_eq!(
        foreign
            .sbc_rule
            .as_ref()
            .map(|r| (r.owned, r.name.as_str())),
        Some((false, "pbx"))
    );
    assert!(foreign.desired.is_none() && !foreign.in_sync);
    assert!(answers[3].sbc_rule.is_none() && answers[3].desired.is_none() && answers[3].in_sync);
    assert!(lookup(&config, &store, &["12ab".to_string()]).is_err());
}

#[tokio::test]
async fn a_stop_between_batches_leaves_a_prefix_of_the_plan_and_the_next_cycle_finishes() {
    let rig = start().await;
    // 40 separate numbers at batch_size 5 (set below): 8 batches.
    {
        let mut state = rig.fusion.state();
        state.phone_usages.clear();
        for i in 0..40u64 {
            state
                .phone_usages
                .push(usage(&format!("+32261{:05}", i * 2), &format!("t{i}")));
        }
    }
    rig.write_config(&Settings {
        batch_size: 5,
        ..Settings::default()
    });
    let mut agent = rig.agent();
    let stop = ApplyControl::default();
    stop.request();
    let stopped = agent.cycle(&Mode::Sync, &stop).await;
    assert_eq!(stopped.outcome, Outcome::Failed);
    assert!(stopped.applied.as_ref().is_some_and(|a| a.stopped));
    assert_eq!(rig.owned_rules().len(), 0, "stopped before the first batch");
    let finished = sync(&mut agent).await;
    assert_eq!(
        finished.outcome,
        Outcome::Converged,
        "{}",
        finished.summary()
    );
    assert_eq!(
        rig.owned_rules().len(),
        41,
        "40 numbers and the static range"
    );
    rig.assert_no_unexpected();
}

#[tokio::test]
async fn a_missing_dial_plan_is_fatal_unless_create_is_set() {
    let rig = start().await;
    rig.sbc.state().plans.clear();
    let mut agent = rig.agent();
    let refused = sync(&mut agent).await;
    assert_eq!(refused.outcome, Outcome::Failed);
    let error = refused.error.as_ref().expect("error");
    assert!(
        error.message.contains("no dial plan named \"OCDialPlan\""),
        "{error:?}"
    );
    assert_eq!(error.class, dialsync::error::ErrorClass::Fatal);
    assert!(
        agent
            .store()
            .last_cycle()
            .expect("read")
            .expect("recorded")
            .fatal
    );
    assert_eq!(rig.writes(), 0);

    drop(agent);
    let text = rig.config_text(&Settings::default());
    rig.write(
        "dialsync.toml",
        &text.replace("[sbc]", "[dialplan]\ncreate = true\n\n[sbc]"),
    );
    let mut agent = rig.agent();
    let created = sync(&mut agent).await;
    assert_eq!(created.outcome, Outcome::Converged, "{}", created.summary());
    assert_eq!(rig.sbc_tag("+3226120042").as_deref(), Some("Trunk=acme"));
    rig.assert_no_unexpected();
}

#[tokio::test]
async fn a_second_agent_on_the_same_database_refuses_naming_the_lock() {
    let rig = start().await;
    let mut first = rig.agent();
    let refused = match Agent::new(rig.config()) {
        Ok(_) => panic!("a second agent started on the same database"),
        Err(e) => e.to_string(),
    };
    assert!(
        refused.contains("state.db.lock")
            && refused.contains(&format!("pid {}", std::process::id())),
        "{refused}"
    );
    assert_eq!(sync(&mut first).await.outcome, Outcome::Converged);
    drop(first);
    let mut second = rig.agent();
    assert_eq!(sync(&mut second).await.outcome, Outcome::Converged);
}
