//! The Live Platform sink against the Live Platform emulator over real HTTP on loopback, with a
//! real SQLite journal: loads, modifies, deletes, foreign rules, token expiry and revocation,
//! a wrong client secret, a bad rule inside a batch, and the rate limit.

mod common;

use std::time::{Duration, Instant};

use common::emulators::start_live;
use common::plan::{plan_settings, planned, route, routes, store_in};
use dialsync::dialplan::pattern::{best_match, Pattern};
use dialsync::dialplan::rule::Tag;
use dialsync::error::{Classify, ErrorClass};
use dialsync::plan::{plan, OpKind, Route};
use dialsync::sim::livecloud::{LiveCloudSim, LiveRule, LiveSimConfig};
use dialsync::sink::livecloud::{LiveCloudConfig, LiveCloudSink};
use dialsync::sink::{Apply, ApplyReport, SinkError, Target, WriteSettings};
use dialsync::store::Store;

/// A dial plan with what Live Platform itself writes there (its Operator Connect rules: one
/// number, no `#`, a bare FQDN for a tag), a site-coded rule, a PBX's rules and a row in the
/// suffix notation dialsync cannot read: they may never change.
fn foreign_rules() -> Vec<LiveRule> {
    vec![
        LiveRule::new("LivePlatform", "+97239753000", "sandbox1.audiocodes.be"),
        LiveRule::new(
            "GSBFZUBGHWOFI",
            "+2711123[1000-1999]",
            "sbc01.teams.contoso.com",
        ),
        LiveRule::new("pbx", "+3222", "Trunk=pbx"),
        LiveRule::new("pbx", "+3223[0-4]", "Trunk=pbx"),
        LiveRule::new("legacy", "53([2-4])", "A"),
        LiveRule::new("other", "+3224xx#", "Trunk=other"),
    ]
}

/// A fast platform: the default limit's shape, but generous enough that only the rate test
/// waits on it.
fn sim_config() -> LiveSimConfig {
    LiveSimConfig {
        rate_max: 1000,
        rate_window: Duration::from_secs(1),
        ..LiveSimConfig::default()
    }
}

async fn start(config: LiveSimConfig) -> LiveCloudSim {
    start_live(config, foreign_rules()).await
}

fn config(sim: &LiveCloudSim, batch_size: usize) -> LiveCloudConfig {
    let platform = sim.config();
    LiveCloudConfig {
        url: sim.url(),
        token_url: sim.token_url(),
        client_id: platform.client_id.clone(),
        client_secret: platform.client_secret.clone().into(),
        scope: platform.scope.clone(),
        customer_id: platform.customer_id.clone(),
        site_location_id: platform.site_location_id.clone(),
        dial_plan_id: platform.dial_plan_id.clone(),
        rate: (platform.rate_max, platform.rate_window),
        writes: WriteSettings {
            batch_size,
            timeout: Duration::from_secs(20),
            retry_budget: Duration::from_secs(20),
            backoff_initial: Duration::from_millis(5),
            backoff_max: Duration::from_millis(100),
            ..LiveCloudConfig::default().writes
        },
    }
}

async fn sync(
    sink: &LiveCloudSink,
    store: &mut Store,
    desired: &[Route],
) -> Result<ApplyReport, SinkError> {
    let device = sink.read().await?;
    assert_eq!(device.unreadable.len(), 1, "{:?}", device.unreadable);
    sink.apply(store, &planned(desired, &device), &device).await
}

fn owned(sim: &LiveCloudSim) -> Vec<Route> {
    let mut routes: Vec<Route> = sim
        .state()
        .rules
        .iter()
        .filter(|r| r.name == "dialsync")
        .map(|r| route(&r.prefix, &r.tag))
        .collect();
    routes.sort();
    routes
}

fn foreign(sim: &LiveCloudSim) -> Vec<LiveRule> {
    sim.state()
        .rules
        .iter()
        .filter(|r| r.name != "dialsync")
        .cloned()
        .collect()
}

fn assert_converged(sim: &LiveCloudSim, desired: &[Route]) {
    let mut want = desired.to_vec();
    want.sort();
    let got = owned(sim);
    assert_eq!(got.len(), want.len(), "rule count (duplicates or missing)");
    assert_eq!(got, want);
    assert_eq!(foreign(sim), foreign_rules(), "foreign rules changed");
    let state = sim.state();
    assert!(state.unexpected.is_empty(), "{:?}", state.unexpected);
    assert_eq!(state.throttled, 0, "the sink hit the rate limit");
}

#[tokio::test]
async fn load_modify_delete_leave_foreign_rules_alone() {
    let sim = start(sim_config()).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let sink = LiveCloudSink::new(config(&sim, 100)).expect("sink");

    // Initial load: 500 adds in 5 PATCHes of 100.
    let mut desired = routes(500);
    let report = sync(&sink, &mut store, &desired).await.expect("load");
    assert_eq!(report.applied, 500);
    assert_eq!(report.batches, 5);
    assert_eq!(report.requests, 5);
    assert!(report.quarantined.is_empty());
    assert_eq!(sim.state().patches, 5);
    assert_converged(&sim, &desired);
    assert!(store.unfinished_journal().expect("journal").is_none());

    // Modify: 50 rules change trunk; each is one remove and one add in the same PATCH.
    for (i, r) in desired.iter_mut().enumerate().filter(|(i, _)| i % 10 == 3) {
        r.tag = Tag::parse(&format!("Trunk=moved{}", i % 3), 64).expect("tag");
    }
    desired.sort();
    let device = sink.read().await.expect("read");
    let modify = plan(
        &desired,
        &device.rules,
        &device.unreadable,
        &[],
        &plan_settings(),
    );
    assert_eq!(modify.ops.len(), 50);
    assert!(modify.ops.iter().all(|op| op.kind() == OpKind::Modify));
    let report = sink
        .apply(&mut store, &modify, &device)
        .await
        .expect("modify");
    assert_eq!((report.applied, report.batches), (50, 1));
    assert_converged(&sim, &desired);

    // Delete 120 rules.
    desired.retain(|r| !r.prefix.to_string().ends_with("7#"));
    desired.truncate(380);
    let report = sync(&sink, &mut store, &desired).await.expect("delete");
    assert_eq!(report.applied, 120);
    assert_eq!(report.batches, 2);
    assert_converged(&sim, &desired);

    // Nothing left to do.
    let report = sync(&sink, &mut store, &desired).await.expect("no-op");
    assert_eq!(report, ApplyReport::default());
    assert!(store.unfinished_journal().expect("journal").is_none());
    assert_eq!(sink.tokens_fetched(), 1, "one token for the whole run");
    let state = sim.state();
    assert_eq!(state.tokens_issued, 1);
    assert!(state.rejected.is_empty(), "{:?}", state.rejected);
    assert_eq!(state.unauthorized, 0);
}

/// Live Platform's own rules come back in `ruleDTO` as it wrote them: read as the device reads
/// them (no `#`: an open prefix), tags as held, and never named in a `remove`. A plan that would
/// remove one is refused whole before any PATCH.
#[tokio::test]
async fn live_platform_rules_are_read_as_the_device_reads_them_and_never_removed() {
    let sim = start(sim_config()).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let sink = LiveCloudSink::new(config(&sim, 100)).expect("sink");
    let device = sink.read().await.expect("read");
    let live = &device.rules[0];
    assert_eq!((live.index, &*live.name), (0, "LivePlatform"));
    assert_eq!(live.tag.as_str(), "sandbox1.audiocodes.be");
    assert!(!live.prefix.is_anchored(), "+97239753000: an open prefix");
    let routed_by = |number: &str| {
        best_match(
            device.rules.iter().map(|r| (r.index, &r.prefix, &r.tag)),
            number,
        )
        .map(|(index, _)| index)
    };
    assert_eq!(routed_by("+97239753000"), Some(0));
    assert_eq!(
        routed_by("+972397530001"),
        Some(0),
        "a prefix, as the SBC reads it"
    );
    assert_eq!(device.unreadable[0].index, 4);

    let mut removal = plan(
        &[],
        &device.rules,
        &device.unreadable,
        &[],
        &plan_settings(),
    );
    assert!(removal.ops.is_empty(), "nothing of ours to remove");
    removal.ops.push(dialsync::plan::Op {
        index: 0,
        before: Some(route("+97239753000", "sandbox1.audiocodes.be")),
        after: None,
    });
    let err = sink
        .apply(&mut store, &removal, &device)
        .await
        .expect_err("not ours");
    assert!(matches!(err, SinkError::Ownership(_)), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);
    assert!(err.to_string().contains("LivePlatform"), "{err}");
    assert_eq!(sim.state().patches, 0);
    assert_eq!(foreign(&sim), foreign_rules());
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_renewed() {
    let sim = start(LiveSimConfig {
        token_lifetime: Duration::from_secs(1),
        ..sim_config()
    })
    .await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let sink = LiveCloudSink::new(config(&sim, 50)).expect("sink");

    let mut desired = routes(100);
    sync(&sink, &mut store, &desired).await.expect("first sync");
    assert_eq!(sink.tokens_fetched(), 1);

    // The token expires between cycles: the sink renews it before the platform refuses it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    desired.truncate(60);
    sync(&sink, &mut store, &desired)
        .await
        .expect("sync after expiry");
    assert_eq!(sink.tokens_fetched(), 2);
    assert_eq!(sim.state().tokens_issued, 2);
    assert_eq!(sim.state().unauthorized, 0, "renewed before expiry");
    assert_converged(&sim, &desired);

    // The platform revokes the token: one 401, one new token, and the sync goes through.
    sim.state().revoke_tokens();
    desired = routes(80);
    sync(&sink, &mut store, &desired)
        .await
        .expect("sync after revocation");
    assert_eq!(sim.state().unauthorized, 1);
    assert_eq!(sim.state().tokens_issued, 3);
    assert_converged(&sim, &desired);
}

#[tokio::test]
async fn wrong_client_secret_is_fatal_and_names_the_cause() {
    let sim = start(sim_config()).await;
    let mut config = config(&sim, 100);
    config.client_secret = "not-the-secret".into();
    let debug = format!("{config:?}");
    assert!(!debug.contains("not-the-secret"), "{debug}");
    assert!(debug.contains("<redacted>"));
    let sink = LiveCloudSink::new(config).expect("sink");
    let error = sink.read().await.expect_err("refused");
    assert_eq!(error.class(), ErrorClass::Fatal, "{error}");
    let message = error.to_string();
    assert!(message.contains("invalid_client"), "{message}");
    assert!(message.contains("client secret"), "{message}");
    assert!(!message.contains("not-the-secret"), "{message}");
    let state = sim.state();
    assert_eq!(state.token_refusals, 1, "no retry of a refused secret");
    assert_eq!(state.gets + state.patches + state.unauthorized, 0);
    assert!(state.unexpected.is_empty(), "{:?}", state.unexpected);
}

#[tokio::test]
async fn a_bad_rule_is_quarantined_and_the_others_land() {
    let sim = start(sim_config()).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let sink = LiveCloudSink::new(config(&sim, 10)).expect("sink");

    // A tag longer than the platform's 64 characters, in the middle of the second batch.
    let mut desired = routes(30);
    let long_tag = format!("Trunk={}", "x".repeat(70));
    desired[14].tag = Tag::parse(&long_tag, 256).expect("tag");
    let report = sync(&sink, &mut store, &desired).await.expect("apply");
    assert_eq!(report.applied, 29);
    assert_eq!(report.quarantined.len(), 1);
    let (op, reason) = &report.quarantined[0];
    assert_eq!(op.after.as_ref(), Some(&desired[14]));
    assert!(reason.contains("tag"), "{reason}");
    let bad = desired.remove(14);
    assert_converged(&sim, &desired);
    assert!(!owned(&sim).contains(&bad));
    assert!(store.unfinished_journal().expect("journal").is_none());
    // The second batch was refused whole, then sent op by op: 2 batches and 9 single ops
    // applied; the batch and the bad op refused with 400.
    let state = sim.state();
    assert_eq!(state.rejected.len(), 2, "{:?}", state.rejected);
    assert_eq!(state.patches, 2 + 9);
}

#[tokio::test]
async fn the_sink_keeps_within_the_rate_limit() {
    // 10 requests per second on both sides.
    let sim = start(LiveSimConfig {
        rate_max: 10,
        rate_window: Duration::from_secs(1),
        ..LiveSimConfig::default()
    })
    .await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let sink = LiveCloudSink::new(config(&sim, 10)).expect("sink");
    assert_eq!(sink.config().rate, (10, Duration::from_secs(1)));

    // One GET and 30 PATCHes: 31 requests need at least 3 full windows.
    let desired = routes(300);
    let started = Instant::now();
    let report = sync(&sink, &mut store, &desired).await.expect("sync");
    let took = started.elapsed();
    assert_eq!(report.batches, 30);
    assert_eq!(report.applied, 300);
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert_converged(&sim, &desired);
    assert_eq!(sim.state().throttled, 0);
    assert_eq!(sim.state().patches, 30);
}

#[tokio::test]
async fn the_platform_limit_bites_a_sink_configured_too_fast() {
    // The control for the test above: the emulator's limit is real, and a 429 is retried
    // after its Retry-After without losing or doubling a rule.
    let sim = start(LiveSimConfig {
        rate_max: 10,
        rate_window: Duration::from_secs(1),
        ..LiveSimConfig::default()
    })
    .await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let mut config = config(&sim, 10);
    config.rate = (1000, Duration::from_secs(1));
    let sink = LiveCloudSink::new(config).expect("sink");
    let desired = routes(150);
    let report = sync(&sink, &mut store, &desired).await.expect("sync");
    assert_eq!(report.applied, 150);
    let state = sim.state();
    assert!(state.throttled > 0, "the emulator never limited");
    assert_eq!(state.patches, 15);
    let owned = state.rules.iter().filter(|r| r.name == "dialsync").count();
    assert_eq!(owned, 150, "no rule lost or doubled");
    assert!(state.rejected.is_empty(), "{:?}", state.rejected);
    assert!(state.unexpected.is_empty(), "{:?}", state.unexpected);
}

#[tokio::test]
async fn server_errors_and_lost_answers_converge_without_duplicates() {
    let sim = start(sim_config()).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let sink = LiveCloudSink::new(config(&sim, 20)).expect("sink");

    // Two 503s that applied nothing, then a PATCH that applied but whose answer was lost:
    // the sink re-reads and sends only what the platform does not show (a re-sent add would
    // be refused as a duplicate).
    sim.state().fail_next_patches = 2;
    let desired = routes(100);
    let report = sync(&sink, &mut store, &desired).await.expect("503s");
    assert_eq!(report.applied, 100);
    assert_converged(&sim, &desired);
    sim.state().lose_next_answers = 1;
    let desired = routes(140);
    let report = sync(&sink, &mut store, &desired)
        .await
        .expect("lost answer");
    assert_eq!(report.applied, 40);
    assert!(report.quarantined.is_empty(), "{:?}", report.quarantined);
    assert_converged(&sim, &desired);
    assert!(
        sim.state().rejected.is_empty(),
        "{:?}",
        sim.state().rejected
    );
    assert!(store.unfinished_journal().expect("journal").is_none());
}

#[tokio::test]
async fn an_unknown_outcome_is_settled_by_reading_the_platform() {
    let sim = start(sim_config()).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(scratch.path());
    let mut config = config(&sim, 20);
    config.writes.retry_budget = Duration::ZERO;
    let sink = LiveCloudSink::new(config).expect("sink");

    // The first PATCH lands but its answer is lost, and there is no budget to look: the
    // journal stays unfinished and the next apply refuses until it is settled.
    sim.state().lose_next_answers = 1;
    let desired = routes(50);
    let error = sync(&sink, &mut store, &desired)
        .await
        .expect_err("outcome unknown");
    assert_eq!(error.class(), ErrorClass::Transient, "{error}");
    assert!(store.unfinished_journal().expect("journal").is_some());
    let refused = sync(&sink, &mut store, &desired)
        .await
        .expect_err("unsettled");
    assert!(matches!(refused, SinkError::Unsettled { .. }), "{refused}");

    let settled = sink
        .settle_unfinished(&mut store)
        .await
        .expect("settle")
        .expect("a journal to settle");
    assert_eq!(settled.confirmed, 20, "{settled:?}");
    assert_eq!(settled.not_applied, 30, "{settled:?}");
    assert!(store.unfinished_journal().expect("journal").is_none());

    let report = sync(&sink, &mut store, &desired).await.expect("resume");
    assert_eq!(report.applied, 30);
    assert_converged(&sim, &desired);
    assert!(
        sim.state().rejected.is_empty(),
        "{:?}",
        sim.state().rejected
    );
}

#[tokio::test]
async fn the_emulator_refuses_bad_patches_whole() {
    let sim = start(sim_config()).await;
    let client = reqwest::Client::new();
    let platform = sim.config().clone();
    let token: serde_json::Value = client
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", platform.client_id.as_str()),
            ("client_secret", platform.client_secret.as_str()),
            ("scope", platform.scope.as_str()),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    assert_eq!(token["token_type"], "Bearer");
    let token = token["access_token"].as_str().expect("access_token");
    let url = format!(
        "{}/api/v2/customer/{}/sitelocation/{}/dialplan/{}",
        sim.url(),
        platform.customer_id,
        platform.site_location_id,
        platform.dial_plan_id
    );
    let good = serde_json::json!({"name": "dialsync", "prefix": "+3227#", "tag": "Trunk=a"});
    for (body, why) in [
        (
            serde_json::json!({"dialPlanId": "dp-1", "add": [good], "extra": 1}),
            "unknown field",
        ),
        (
            serde_json::json!({"dialPlanId": "dp-2", "add": [good]}),
            "dialPlanId",
        ),
        (
            serde_json::json!({"dialPlanId": "dp-1", "add": [good],
                "remove": [{"name": "x", "prefix": "+1#", "tag": "Trunk=a"}]}),
            "no rule",
        ),
        (
            serde_json::json!({"dialPlanId": "dp-1", "add": [good,
                {"name": "dialsync", "prefix": "+32[9", "tag": "Trunk=a"}]}),
            "prefix",
        ),
        (
            serde_json::json!({"dialPlanId": "dp-1", "add": [good,
                {"name": "a-name-of-16-chr", "prefix": "+3228#", "tag": "Trunk=a"}]}),
            "name",
        ),
        (
            serde_json::json!({"dialPlanId": "dp-1", "add": [good,
                {"name": "dialsync", "prefix": "+3228#", "tag": "Belgium;England"}]}),
            "tag",
        ),
    ] {
        let response = client
            .patch(&url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("patch");
        assert_eq!(response.status(), 400, "{why}");
        let problem: serde_json::Value = response.json().await.expect("problem json");
        assert_eq!(problem["status"], 400);
        assert!(problem["title"].is_string() && problem["type"].is_string());
        let detail = problem["detail"].as_str().expect("detail");
        assert!(detail.contains(why), "{why}: {detail}");
    }
    assert_eq!(sim.state().rules, foreign_rules(), "nothing applied");
    let unauthorized = client.get(&url).send().await.expect("get");
    assert_eq!(unauthorized.status(), 401);
    let wrong_path = client
        .delete(&url)
        .bearer_auth(token)
        .send()
        .await
        .expect("delete");
    assert_eq!(wrong_path.status(), 404);
    assert_eq!(
        sim.state().unexpected,
        vec![format!("DELETE {}", url.trim_start_matches(&sim.url()))]
    );
}

/// Which tag the platform's dial plan routes each of `numbers` to (the SBC's choice: the most
/// specific matching rule, the first listed among equal ones), `None` when unrouted.
fn routed(sim: &LiveCloudSim, numbers: &[String]) -> Vec<Option<String>> {
    let rules: Vec<(u32, Pattern, String)> = sim
        .state()
        .rules
        .iter()
        .enumerate()
        // A row in a notation dialsync cannot read routes nothing these tests look up.
        .filter_map(|(i, r)| Some((i as u32, Pattern::parse(&r.prefix).ok()?, r.tag.clone())))
        .collect();
    numbers
        .iter()
        .map(|number| {
            best_match(rules.iter().map(|(i, p, t)| (*i, p, t)), number).map(|(_, t)| t.clone())
        })
        .collect()
}

#[tokio::test]
async fn a_refused_takeover_holds_back_the_ops_that_give_up_its_numbers() {
    // Two rules route ten numbers; the desired state routes them with one rule under a tag the
    // platform refuses (longer than its 64 characters). The plan grows one rule over the
    // other's numbers, then deletes the other: once the growth is refused, the delete must
    // not go out, or five numbers that were routed before the sync are routed nowhere.
    // An unrelated op of the same plan (a tag change) still lands.
    let long_tag = format!("Trunk={}", "x".repeat(70));
    let before = vec![
        route("+322610000[0-4]#", "Trunk=a"),
        route("+322610000[5-9]#", "Trunk=a"),
        route("+3226200000#", "Trunk=b"),
    ];
    let mut desired = vec![
        route("+322610000[0-9]#", &long_tag),
        route("+3226200000#", "Trunk=c"),
    ];
    desired.sort();
    let numbers: Vec<String> = (0..10)
        .map(|n| format!("+322610000{n}"))
        .chain(["+3226200000".into()])
        .collect();
    // One PATCH for the whole plan (refused whole, then op by op), and one PATCH per op.
    for batch_size in [10, 1] {
        let sim = start(sim_config()).await;
        let scratch = tempfile::tempdir().expect("tempdir");
        let mut store = store_in(scratch.path());
        let sink = LiveCloudSink::new(config(&sim, batch_size)).expect("sink");
        sync(&sink, &mut store, &before).await.expect("first sync");
        assert_converged(&sim, &before);
        let old = routed(&sim, &numbers);
        assert!(old[..11].iter().all(Option::is_some), "{old:?}");

        let device = sink.read().await.expect("read");
        let churn = plan(
            &desired,
            &device.rules,
            &device.unreadable,
            &[],
            &plan_settings(),
        );
        let kinds: Vec<OpKind> = churn.ops.iter().map(|op| op.kind()).collect();
        assert_eq!(
            kinds,
            [OpKind::Modify, OpKind::Modify, OpKind::Delete],
            "{:?}",
            churn.ops
        );
        let report = sink
            .apply(&mut store, &churn, &device)
            .await
            .expect("apply");

        let new: Vec<Option<String>> = numbers
            .iter()
            .map(|number| {
                desired
                    .iter()
                    .find(|r| r.prefix.matches(number))
                    .map(|r| r.tag.as_str().to_string())
            })
            .collect();
        let now = routed(&sim, &numbers);
        let lost: Vec<String> = numbers
            .iter()
            .zip(old.iter().zip(&new).zip(&now))
            .filter(|(_, ((old, new), now))| match now {
                Some(tag) => old.as_ref() != Some(tag) && new.as_ref() != Some(tag),
                None => old.is_some() && new.is_some(),
            })
            .map(|(number, ((old, new), now))| {
                format!("{number}: routes to {now:?}, was {old:?}, wanted {new:?}")
            })
            .collect();
        assert!(
            lost.is_empty(),
            "batch size {batch_size}: numbers misrouted or unrouted: {lost:?}"
        );

        // The takeover is refused with the platform's reason, the delete held back because
        // of it; the tag change lands.
        let takeover = churn
            .ops
            .iter()
            .find(|op| {
                op.after
                    .as_ref()
                    .is_some_and(|r| r.tag.as_str() == long_tag)
            })
            .expect("takeover");
        let quarantined: Vec<(OpKind, &str)> = report
            .quarantined
            .iter()
            .map(|(op, reason)| (op.kind(), reason.as_str()))
            .collect();
        assert_eq!(quarantined.len(), 2, "{quarantined:?}");
        assert_eq!(report.quarantined[0].0, *takeover);
        assert!(quarantined[0].1.contains("tag"), "{quarantined:?}");
        assert_eq!(quarantined[1].0, OpKind::Delete);
        assert_eq!(
            quarantined[1].1,
            format!(
                "held back: it touches numbers of rule {}, which Live Platform refused, and \
                 sending it alone could leave them unrouted; the next cycle plans it again",
                takeover.index
            )
        );
        assert_eq!(report.applied, 1);
        assert_eq!(now[10].as_deref(), Some("Trunk=c"));
        assert!(store.unfinished_journal().expect("journal").is_none());
        {
            let state = sim.state();
            assert!(
                state.rejected.iter().all(|detail| detail.contains("tag")),
                "only the long tag is refused: {:?}",
                state.rejected
            );
            assert!(state.unexpected.is_empty(), "{:?}", state.unexpected);
        }

        // Once the tag is one the platform takes, the next cycle plans the held-back delete
        // again and converges.
        let mut fixed = desired.clone();
        fixed[0].tag = Tag::parse("Trunk=e", 64).expect("tag");
        fixed.sort();
        let report = sync(&sink, &mut store, &fixed).await.expect("next cycle");
        assert!(report.quarantined.is_empty(), "{:?}", report.quarantined);
        assert_converged(&sim, &fixed);
    }
}
