//! The Live Platform source against its emulator over loopback: the paginated v3 number list
//! of several tenants, numbers whose status is `Active` or null (the vendor's own examples)
//! but no other, a status that turns null across two syncs, a token that dies mid-fetch, a refused secret,
//! an empty tenant, malformed numbers rejected one by one, a page chain that contradicts its
//! totals, and every fault kind (500, 429 with `Retry-After`, a body that is not JSON, slow
//! answers and the whole-fetch timeout).

mod common;

use std::time::{Duration, Instant};

use common::assert_clean;
use common::emulators::start_live;
use common::source::{fast_http, tag_rule};
use dialsync::error::{Classify, ErrorClass};
use dialsync::net::oauth::ClientCredentials;
use dialsync::net::secret::Secret;
use dialsync::sim::livecloud::{live_number, vendor_number, Fault, LiveCloudSim, LiveSimConfig};
use dialsync::source::livecloud::{LiveCloudSource, LiveCloudSourceConfig, TAG_FIELDS};
use dialsync::source::tag::TagRule;
use dialsync::source::{SourceEntries, SourceError};
use serde_json::json;

const T1: &str = "11111111-aaaa-4bbb-8ccc-000000000001";
const T2: &str = "22222222-aaaa-4bbb-8ccc-000000000002";

async fn start() -> LiveCloudSim {
    start_live(LiveSimConfig::default(), Vec::new()).await
}

fn rule(template: &str, overrides: &[(&str, &str)]) -> TagRule {
    tag_rule(template, TAG_FIELDS, overrides)
}

fn config(sim: &LiveCloudSim, secret: &str, tenants: &[&str]) -> LiveCloudSourceConfig {
    let credentials = ClientCredentials {
        token_url: sim.token_url(),
        client_id: sim.config().client_id.clone(),
        client_secret: Secret::new(secret),
        scope: sim.config().scope.clone(),
    };
    let mut config = LiveCloudSourceConfig::new(
        "live",
        &sim.url(),
        credentials,
        tenants.iter().map(|t| t.to_string()).collect(),
        rule("Trunk={tenant_id}", &[(T2, "Trunk=override")]),
    );
    config.page_size = 3;
    config.http = fast_http();
    config.timeout = Duration::from_secs(10);
    config
}

fn good(sim: &LiveCloudSim, tenants: &[&str]) -> LiveCloudSourceConfig {
    config(sim, &sim.config().client_secret.clone(), tenants)
}

/// T1: 8 numbers (3 pages of 3), 2 of them not Active; T2: 2 numbers.
fn seed(sim: &LiveCloudSim) {
    let mut state = sim.state();
    let t1 = (0..8)
        .map(|i| {
            let status = if i == 2 || i == 5 {
                "Inactive"
            } else {
                "Active"
            };
            live_number(&format!("+3226127{i:03}"), T1, status)
        })
        .collect();
    state.numbers.insert(T1.into(), t1);
    state.numbers.insert(
        T2.into(),
        vec![
            live_number("+3225550001", T2, "Active"),
            live_number("+3225550002", T2, "Active"),
        ],
    );
}

fn covered(out: &SourceEntries) -> Vec<String> {
    out.entries
        .iter()
        .map(|e| {
            let digits: String = e
                .coverage
                .to_string()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            format!("{digits} {}", e.tag.as_str())
        })
        .collect()
}

fn want_seeded() -> Vec<String> {
    let mut want: Vec<String> = [0, 1, 3, 4, 6, 7]
        .iter()
        .map(|i| format!("3226127{i:03} Trunk={T1}"))
        .collect();
    want.push("3225550001 Trunk=override".into());
    want.push("3225550002 Trunk=override".into());
    want
}

#[tokio::test]
async fn all_pages_of_two_tenants_only_active() {
    let sim = start().await;
    seed(&sim);
    let mut source = LiveCloudSource::new(good(&sim, &[T1, T2])).unwrap();
    let out = source.fetch().await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(covered(&out), want_seeded());
    assert_eq!(&*out.entries[0].provenance.source, "live");
    assert!(out.entries[0].provenance.item.to_string().contains(T1));
    // 3 pages for T1, 1 for T2, one token for all of them.
    assert_eq!(sim.state().number_pages, 4);
    assert_eq!(source.tokens_fetched(), 1);
    // A second fetch reuses the cached token.
    let again = source.fetch().await.unwrap();
    assert_eq!(covered(&again), want_seeded());
    assert_eq!(source.tokens_fetched(), 1);
    assert_eq!(sim.state().tokens_issued, 1);
    assert_clean(&sim);
}

#[tokio::test]
async fn a_token_that_dies_mid_fetch_is_renewed_once() {
    let sim = start().await;
    seed(&sim);
    sim.state().revoke_tokens_after_pages = Some(2);
    let mut source = LiveCloudSource::new(good(&sim, &[T1, T2])).unwrap();
    let out = source.fetch().await.unwrap();
    assert_eq!(covered(&out), want_seeded());
    let state = sim.state();
    assert_eq!(state.unauthorized, 1);
    assert_eq!(state.tokens_issued, 2);
    assert_eq!(source.tokens_fetched(), 2);
    drop(state);
    assert_clean(&sim);
}

#[tokio::test]
async fn a_wrong_secret_is_fatal_without_retrying() {
    let sim = start().await;
    seed(&sim);
    let mut source = LiveCloudSource::new(config(&sim, "wrong", &[T1])).unwrap();
    let err = source.fetch().await.unwrap_err();
    assert!(matches!(err, SourceError::Unauthorized { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);
    let text = err.to_string();
    assert!(!text.contains("wrong"), "the secret leaked: {text}");
    assert!(text.contains("dialsync-client"), "{text}");
    let state = sim.state();
    assert_eq!(state.token_refusals, 1, "no retry of a refused secret");
    assert_eq!(state.number_pages, 0);
}

#[tokio::test]
async fn an_empty_tenant_is_an_empty_set() {
    let sim = start().await;
    seed(&sim);
    sim.state()
        .numbers
        .insert("empty-tenant".into(), Vec::new());
    let mut source = LiveCloudSource::new(good(&sim, &["empty-tenant"])).unwrap();
    let out = source.fetch().await.unwrap();
    assert!(out.entries.is_empty());
    assert!(out.rejected.is_empty());
    // Alongside a tenant with numbers, the empty one adds nothing.
    let mut source = LiveCloudSource::new(good(&sim, &["empty-tenant", T2])).unwrap();
    let out = source.fetch().await.unwrap();
    assert_eq!(out.entries.len(), 2);
    assert_clean(&sim);
}

#[tokio::test]
async fn malformed_numbers_are_rejected_one_by_one() {
    let sim = start().await;
    sim.state().numbers.insert(
        T1.into(),
        vec![
            live_number("+3226127000", T1, "Active"),
            live_number("+32261270ab", T1, "Active"),
            live_number("+32261270001234567", T1, "Active"),
            live_number("", T1, "Active"),
            json!({"telephoneNumber": 3226127001u64, "tenantId": T1, "acquiredNumberStatus": "Active"}),
            live_number("+3226127002", T1, "Active"),
            live_number("+3226127002", T1, "Active"),
            // No status at all: assigned, as a null one is.
            json!({"telephoneNumber": "+3226127003", "tenantId": T1}),
            live_number("+3226127004", "other-tenant", "Active"),
            // Malformed but not Active: not desired, so not rejected either.
            live_number("garbage", T1, "Inactive"),
        ],
    );
    let mut source = LiveCloudSource::new(good(&sim, &[T1])).unwrap();
    let out = source.fetch().await.unwrap();
    assert_eq!(
        covered(&out),
        vec![
            format!("3226127000 Trunk={T1}"),
            format!("3226127002 Trunk={T1}"),
            format!("3226127003 Trunk={T1}")
        ],
        "duplicates collapse"
    );
    let rejected: Vec<String> = out.rejected.iter().map(|r| r.to_string()).collect();
    assert_eq!(rejected.len(), 5, "{rejected:#?}");
    for r in &rejected {
        assert!(r.contains(&format!("tenant={T1}")), "{r}");
    }
    assert!(
        rejected[0].contains("number=+32261270ab"),
        "{}",
        rejected[0]
    );
    assert!(
        rejected[1].contains("+32261270001234567"),
        "{}",
        rejected[1]
    );
    assert!(
        rejected[2].contains("no telephoneNumber"),
        "{}",
        rejected[2]
    );
    assert!(rejected[3].contains("3226127001"), "{}", rejected[3]);
    assert!(rejected[4].contains("other-tenant"), "{}", rejected[4]);
    assert_clean(&sim);
}

#[tokio::test]
async fn a_page_chain_that_contradicts_total_pages_fails_the_fetch() {
    let sim = start().await;
    seed(&sim);
    sim.state().numbers_extra_pages = 1;
    let mut source = LiveCloudSource::new(good(&sim, &[T2, T1])).unwrap();
    let err = source.fetch().await.unwrap_err();
    assert!(matches!(err, SourceError::Pagination { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_clean(&sim);
}

#[tokio::test]
async fn a_truncated_page_fails_the_fetch() {
    for page in [1, 3] {
        let sim = start().await;
        seed(&sim);
        sim.state().truncate_number_page = Some(page);
        let mut source = LiveCloudSource::new(good(&sim, &[T1, T2])).unwrap();
        let err = source.fetch().await.unwrap_err();
        assert!(matches!(err, SourceError::Pagination { .. }), "{err}");
        assert!(
            err.to_string().contains(&format!("page {page} of 3")),
            "{err}"
        );
        assert_clean(&sim);
    }
}

#[tokio::test]
async fn more_malformed_numbers_are_rejected_one_by_one() {
    let sim = start().await;
    sim.state().numbers.insert(
        T1.into(),
        vec![
            json!("+3226127009"),
            json!(null),
            live_number("   ", T1, "Active"),
            json!({"telephoneNumber": null, "tenantId": T1, "acquiredNumberStatus": "Active"}),
            json!({"telephoneNumber": "+3226127005", "tenantId": T1, "acquiredNumberStatus": 1}),
            live_number("+0226127005", T1, "Active"),
            live_number("3226127000123456", T1, "Active"),
            live_number("+3226127O06", T1, "Active"),
            // Separators are normalised away, so these two are one number.
            live_number("+32 2 612 70 06", T1, "Active"),
            live_number("+32-2-612-70-06", T1, "Active"),
            live_number("+3226127007", T1, " Active "),
        ],
    );
    let mut source = LiveCloudSource::new(good(&sim, &[T1])).unwrap();
    let out = source.fetch().await.unwrap();
    assert_eq!(
        covered(&out),
        vec![
            format!("3226127006 Trunk={T1}"),
            format!("3226127007 Trunk={T1}")
        ],
        "the good numbers are kept, duplicates collapse"
    );
    let rejected: Vec<String> = out.rejected.iter().map(|r| r.to_string()).collect();
    let reasons = [
        "not an object",
        "not an object",
        "no telephoneNumber",
        "no telephoneNumber",
        "acquiredNumberStatus 1 is not text",
        "+0226127005",
        "3226127000123456",
        "+3226127O06",
    ];
    assert_eq!(rejected.len(), reasons.len(), "{rejected:#?}");
    for (r, reason) in rejected.iter().zip(reasons) {
        assert!(r.contains(&format!("tenant={T1}")), "{r}");
        assert!(r.contains(reason), "{r} should say {reason}");
    }
    assert_clean(&sim);
}

/// Every example answer Live Platform publishes carries `"acquiredNumberStatus": null` for a
/// number in service: a tenant whose numbers all look like that is routed, not refused.
#[tokio::test]
async fn a_tenant_whose_numbers_all_have_null_status_is_routed() {
    let sim = start().await;
    let mut absent = vendor_number("+3226127004", T1);
    if let Some(item) = absent.as_object_mut() {
        item.remove("acquiredNumberStatus");
    }
    sim.state().numbers.insert(
        T1.into(),
        vec![
            vendor_number("+3226127000", T1),
            vendor_number("+3226127001", T1),
            vendor_number("+3226127002", T1),
            vendor_number("+3226127003", T1),
            absent,
            live_number("+3226127005", T1, ""),
        ],
    );
    let out = LiveCloudSource::new(good(&sim, &[T1]))
        .unwrap()
        .fetch()
        .await
        .unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let want: Vec<String> = (0..6)
        .map(|i| format!("3226127{i:03} Trunk={T1}"))
        .collect();
    assert_eq!(covered(&out), want);
    assert!(out.usable("live").is_ok());
    assert_clean(&sim);
}

/// Only an explicit status other than `Active` leaves a number out, and then quietly (it is
/// not wanted, not broken); a status that is not text at all is a rejected item.
#[tokio::test]
async fn released_and_pending_numbers_are_left_out_and_odd_statuses_rejected() {
    let sim = start().await;
    let statuses = [
        "Released",
        "Pending",
        "Release Requested",
        "Marked For Removal",
        "Ready For Removal",
    ];
    let mut numbers: Vec<serde_json::Value> = statuses
        .iter()
        .enumerate()
        .map(|(i, status)| live_number(&format!("+3226127{i:03}"), T1, status))
        .collect();
    numbers.push(live_number("+3226127010", T1, "Active"));
    numbers.push(vendor_number("+3226127011", T1));
    numbers.push(json!({"telephoneNumber": "+3226127012", "tenantId": T1,
                        "acquiredNumberStatus": 3}));
    numbers.push(json!({"telephoneNumber": "+3226127013", "tenantId": T1,
                        "acquiredNumberStatus": {"state": "Active"}}));
    sim.state().numbers.insert(T1.into(), numbers);
    let out = LiveCloudSource::new(good(&sim, &[T1]))
        .unwrap()
        .fetch()
        .await
        .unwrap();
    assert_eq!(
        covered(&out),
        [
            format!("3226127010 Trunk={T1}"),
            format!("3226127011 Trunk={T1}")
        ]
    );
    let rejected: Vec<String> = out.rejected.iter().map(|r| r.to_string()).collect();
    assert_eq!(rejected.len(), 2, "{rejected:#?}");
    assert!(
        rejected[0].contains("number=+3226127012")
            && rejected[0].contains("acquiredNumberStatus 3 is not text"),
        "{}",
        rejected[0]
    );
    assert!(
        rejected[1].contains("number=+3226127013")
            && rejected[1].contains(r#"acquiredNumberStatus {"state":"Active"} is not text"#),
        "{}",
        rejected[1]
    );
    assert_clean(&sim);
}

/// The whole agent, two cycles: a number whose status turns from "Active" to null keeps its
/// route (no operation at all), and one that turns "Release Requested" loses it.
#[tokio::test]
async fn a_status_that_turns_null_keeps_its_route_across_two_syncs() {
    use common::config::{livecloud_source, sbc_table};
    use common::dir::Dir;
    use common::emulators::start_sbc;
    use common::sbc::{sbc_users, tag_of, SBC_PASSWORD};
    use dialsync::app::agent::{Agent, Mode, Outcome};
    use dialsync::config::Config;
    use dialsync::sim::sbc::SbcState;
    use dialsync::sink::ApplyControl;

    let live = start().await;
    live.state().numbers.insert(
        T1.into(),
        vec![
            live_number("+3226127000", T1, "Active"),
            live_number("+3226127001", T1, "Active"),
            live_number("+3226127005", T1, "Active"),
        ],
    );
    let sbc = start_sbc(SbcState::with_oc_dial_plan(), sbc_users()).await;
    let dir = Dir::new();
    dir.secret("sbc-password", SBC_PASSWORD);
    dir.secret("live-secret", &live.config().client_secret);
    let config = format!(
        "\n[agent]\npolicy = \"sync\"\nstate_db = \"state.db\"\n{}{}",
        sbc_table(&sbc.url(), "sbc-password", "5s"),
        livecloud_source(&live, "live-secret", T1, "5s"),
    );
    dir.write("dialsync.toml", &config);
    let path = dir.config_path();
    let mut agent = Agent::new(Config::load(&path).unwrap()).unwrap();
    let tag = |number: &str| tag_of(&sbc, number);

    let first = agent.cycle(&Mode::Sync, &ApplyControl::default()).await;
    assert_eq!(first.outcome, Outcome::Converged, "{}", first.summary());
    assert_eq!(tag("+3226127001").as_deref(), Some("Trunk=teams"));

    // The status turns null, as in the vendor's examples: nothing to do, the route stays.
    live.state().numbers.get_mut(T1).unwrap()[1]["acquiredNumberStatus"] = serde_json::Value::Null;
    let second = agent.cycle(&Mode::Sync, &ApplyControl::default()).await;
    assert_eq!(second.outcome, Outcome::Converged, "{}", second.summary());
    assert_eq!(second.rejected_count(), 0);
    assert_eq!(second.plan.as_ref().map(|p| p.ops.len()), Some(0));
    assert_eq!(tag("+3226127001").as_deref(), Some("Trunk=teams"));

    // A number released on the platform is no longer wanted: its route goes.
    live.state().numbers.get_mut(T1).unwrap()[0]["acquiredNumberStatus"] =
        "Release Requested".into();
    let third = agent.cycle(&Mode::Sync, &ApplyControl::default()).await;
    assert_eq!(third.outcome, Outcome::Converged, "{}", third.summary());
    assert_eq!(tag("+3226127000"), None);
    assert_eq!(tag("+3226127001").as_deref(), Some("Trunk=teams"));
    assert_eq!(tag("+3226127005").as_deref(), Some("Trunk=teams"));
    assert!(
        sbc.state().unexpected.is_empty(),
        "{:?}",
        sbc.state().unexpected
    );
    assert_clean(&live);
}

/// `{tenant_id:slug}` works for Live Platform too; two tenant ids that differ only in case
/// fold alike, and the later one's numbers are refused rather than merged.
#[tokio::test]
async fn slugged_tenant_ids_tag_and_collide() {
    let sim = start().await;
    let upper = T2.to_uppercase();
    {
        let mut state = sim.state();
        state
            .numbers
            .insert(T2.into(), vec![vendor_number("+3225550001", T2)]);
        state
            .numbers
            .insert(upper.clone(), vec![vendor_number("+3225550002", &upper)]);
    }
    let mut cfg = good(&sim, &[T2, &upper]);
    cfg.tags = rule("Trunk={tenant_id:slug}", &[]);
    let out = LiveCloudSource::new(cfg).unwrap().fetch().await.unwrap();
    assert_eq!(covered(&out), [format!("3225550001 Trunk={T2}")]);
    assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
    let reason = out.rejected[0].to_string();
    assert!(
        reason.contains(&format!("tenant_id {upper:?} makes tag \"Trunk={T2}\""))
            && reason.contains(&format!("which tenant_id {T2:?} already has")),
        "{reason}"
    );
    assert_clean(&sim);
}

#[tokio::test]
async fn server_errors_are_retried_then_fail_the_fetch() {
    let sim = start().await;
    seed(&sim);
    // Two 500s: retried away.
    sim.state()
        .faults
        .extend([Fault::ServerError, Fault::ServerError]);
    let out = LiveCloudSource::new(good(&sim, &[T1, T2]))
        .unwrap()
        .fetch()
        .await
        .unwrap();
    assert_eq!(covered(&out), want_seeded());
    assert_eq!(sim.state().number_requests, 4 + 2);

    // 500 for good: the fetch fails once the retry budget is spent, with no partial list.
    sim.state().sticky_fault = Some(Fault::ServerError);
    let before = sim.state().number_requests;
    let err = LiveCloudSource::new(good(&sim, &[T1, T2]))
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Server { status: 500, .. }),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(
        err.to_string().contains("number store is unavailable"),
        "{err}"
    );
    assert!(sim.state().number_requests - before > 1, "retried");
    assert_clean(&sim);
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let sim = start().await;
    seed(&sim);
    sim.state().faults.push_back(Fault::TooManyRequests {
        retry_after_secs: 1,
    });
    let mut cfg = good(&sim, &[T1, T2]);
    // The backoff alone would wait milliseconds: only the header explains a full second.
    cfg.http.retry_budget = Duration::from_secs(3);
    let started = Instant::now();
    let out = LiveCloudSource::new(cfg).unwrap().fetch().await.unwrap();
    let took = started.elapsed();
    assert_eq!(covered(&out), want_seeded());
    assert!(took >= Duration::from_secs(1), "waited only {took:?}");
    assert_eq!(sim.state().number_requests, 4 + 1);

    // A Retry-After beyond the retry budget ends the fetch at once.
    sim.state().sticky_fault = Some(Fault::TooManyRequests {
        retry_after_secs: 30,
    });
    let started = Instant::now();
    let err = LiveCloudSource::new(good(&sim, &[T1]))
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Server { status: 429, .. }),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_clean(&sim);
}

#[tokio::test]
async fn a_garbage_body_fails_the_fetch() {
    let sim = start().await;
    seed(&sim);
    sim.state().faults.push_back(Fault::Garbage);
    let err = LiveCloudSource::new(good(&sim, &[T1, T2]))
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::BadBody { .. }), "{err}");
    assert!(err.to_string().contains("502 Bad Gateway"), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    // A 200 is an answer, not a hiccup: not retried.
    assert_eq!(sim.state().number_requests, 1);
    assert_clean(&sim);
}

#[tokio::test]
async fn slow_answers_time_out() {
    let sim = start().await;
    seed(&sim);
    // One answer slower than the request timeout: that request times out, its retry succeeds.
    sim.state()
        .faults
        .push_back(Fault::Delay(Duration::from_secs(2)));
    let out = LiveCloudSource::new(good(&sim, &[T1, T2]))
        .unwrap()
        .fetch()
        .await
        .unwrap();
    assert_eq!(covered(&out), want_seeded());

    // Always slower: the retries run out.
    sim.state().sticky_fault = Some(Fault::Delay(Duration::from_secs(2)));
    let err = LiveCloudSource::new(good(&sim, &[T1]))
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Http { .. }), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);

    // The source's own timeout bounds the whole fetch, retries included.
    let mut cfg = good(&sim, &[T1]);
    cfg.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = LiveCloudSource::new(cfg)
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Timeout { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_clean(&sim);
}

#[tokio::test]
async fn pages_each_in_time_but_too_slow_together_time_out() {
    let sim = start().await;
    seed(&sim);
    // Every page answers well within the request timeout, but T1's three pages and T2's one
    // take 1 s together: the whole-fetch timeout ends it.
    sim.state().sticky_fault = Some(Fault::Delay(Duration::from_millis(250)));
    let mut cfg = good(&sim, &[T1, T2]);
    cfg.http.request_timeout = Duration::from_secs(2);
    cfg.timeout = Duration::from_millis(600);
    let started = Instant::now();
    let err = LiveCloudSource::new(cfg)
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, SourceError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("600ms"), "{err}");
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took < Duration::from_millis(950), "{took:?}");
    let state = sim.state();
    assert!(
        state.number_pages < 4,
        "{} pages served",
        state.number_pages
    );
    drop(state);
    assert_clean(&sim);
}

#[tokio::test]
#[ignore = "performance figure: cargo test --release -- --ignored fetch_1m --nocapture"]
async fn fetch_1m_numbers() {
    let sim = start().await;
    sim.state().numbers.insert(
        T1.into(),
        (0..1_000_000u64)
            .map(|n| live_number(&format!("+{}", 3220000000 + n), T1, "Active"))
            .collect(),
    );
    // The source's default page size, and the largest the API takes (1000).
    let default = LiveCloudSourceConfig::new(
        "live",
        &sim.url(),
        good(&sim, &[T1]).credentials,
        vec![T1.into()],
        rule("Trunk={tenant_id}", &[]),
    )
    .page_size;
    for page_size in [default, 1000] {
        let mut cfg = good(&sim, &[T1]);
        cfg.page_size = page_size;
        cfg.http.request_timeout = Duration::from_secs(120);
        cfg.timeout = Duration::from_secs(300);
        let before = sim.state().number_pages;
        let started = Instant::now();
        let out = LiveCloudSource::new(cfg).unwrap().fetch().await.unwrap();
        let took = started.elapsed();
        assert_eq!(out.entries.len(), 1_000_000);
        assert!(out.rejected.is_empty());
        let pages = sim.state().number_pages - before;
        println!(
            "livecloud: fetched and parsed 1,000,000 numbers (pageSize {page_size}, {pages} \
             pages) in {took:.2?}"
        );
    }
    assert_clean(&sim);
}
