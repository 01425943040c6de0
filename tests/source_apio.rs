//! The APIO source against its emulator over loopback: both authentication styles, token and
//! session expiry, trailing slashes, ITC numbers and prefixes, 404 as "service not assigned",
//! 207/429/503, and malformed items rejected one by one.

mod common;

use std::time::Duration;

use common::assert_clean;
use common::emulators::start_apio;
use common::source::{covered, decoded, fast_http, first_answer, tag_rule};
use dialsync::net::secret::Secret;
use dialsync::sim::apio::{number, prefix, ApioSim, ApioSimConfig, Fault};
use dialsync::source::apio::{ApioAuth, ApioConfig, ApioGroup, ApioSource, TAG_FIELDS};
use dialsync::source::tag::TagRule;
use dialsync::source::{SourceEntries, SourceError};
use serde_json::json;

async fn start() -> ApioSim {
    start_apio(ApioSimConfig::default()).await
}

fn rule(template: &str, overrides: &[(&str, &str)]) -> TagRule {
    tag_rule(template, TAG_FIELDS, overrides)
}

fn jwt(sim: &ApioSim) -> ApioAuth {
    ApioAuth::Jwt {
        username: sim.config().username.clone(),
        password: Secret::new(sim.config().password.clone()),
        proxy_prefix: sim.config().proxy_prefix.clone(),
    }
}

fn session(sim: &ApioSim) -> ApioAuth {
    ApioAuth::Session {
        username: sim.config().username.clone(),
        password: Secret::new(sim.config().password.clone()),
    }
}

fn group(tenant: &str, group: &str, tags: TagRule) -> ApioGroup {
    ApioGroup {
        tenant: tenant.into(),
        group: group.into(),
        tags,
    }
}

/// A configuration with short timeouts and retries so fault tests stay fast.
fn config(sim: &ApioSim, auth: ApioAuth, groups: Vec<ApioGroup>) -> ApioConfig {
    let mut config = ApioConfig::new("apio", &sim.url(), auth, groups);
    config.http = fast_http();
    config.timeout = Duration::from_secs(10);
    config
}

fn foo() -> Vec<ApioGroup> {
    vec![group("footenant", "foogroup", rule("Trunk={tenant}", &[]))]
}

/// The vendor document's examples, plus one number range.
fn seed(sim: &ApioSim) {
    let mut state = sim.state();
    let itc = state.group("footenant", "foogroup");
    itc.numbers = vec![
        number("+3226127000", "+3226127002", true),
        number("+3226127007", "", true),
    ];
    itc.prefixes = vec![
        prefix("+32-01", "", "", true),
        prefix("+32-02", "100", "199", true),
    ];
}

async fn fetch(config: ApioConfig) -> Result<SourceEntries, SourceError> {
    ApioSource::new(config).unwrap().fetch().await
}

const SEEDED: [&str; 4] = [
    "+3226127000..+3226127002 Trunk=footenant",
    "+3226127007 Trunk=footenant",
    "+3201* Trunk=footenant",
    "+3202100..+3202199 Trunk=footenant",
];

fn assert_seeded(out: &SourceEntries) {
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let got = covered(out);
    // Display of ranges/prefixes is the crate's; compare on digits to stay independent of it.
    assert_eq!(got.len(), SEEDED.len(), "{got:?}");
    for (got, want) in got.iter().zip(SEEDED) {
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        assert_eq!(digits(got), digits(want), "{got} vs {want}");
        assert!(got.ends_with("Trunk=footenant"), "{got}");
    }
}

#[tokio::test]
async fn jwt_via_the_proxy_prefix() {
    let sim = start().await;
    seed(&sim);
    let out = fetch(config(&sim, jwt(&sim), foo())).await.unwrap();
    assert_seeded(&out);
    assert!(matches!(
        out.entries[2].coverage,
        dialsync::resolve::Coverage::Prefix(_)
    ));
    assert!(matches!(
        out.entries[3].coverage,
        dialsync::resolve::Coverage::Range(_)
    ));
    assert_eq!(&*out.entries[0].provenance.source, "apio");
    let item = out.entries[0].provenance.item.to_string();
    assert!(
        item.contains("footenant") && item.contains("foogroup"),
        "{item}"
    );
    let state = sim.state();
    assert_eq!((state.jwt_logins, state.session_logins), (1, 0));
    assert_eq!(state.list_requests, 2);
    drop(state);
    assert_clean(&sim);
}

#[tokio::test]
async fn session_cookie_on_the_gateway() {
    let sim = start().await;
    seed(&sim);
    let mut source = ApioSource::new(config(&sim, session(&sim), foo())).unwrap();
    assert_seeded(&source.fetch().await.unwrap());
    assert!(!format!("{source:?}").contains(&sim.config().password));
    // A session that ended is renewed by one new login.
    sim.state().expire_sessions();
    assert_seeded(&source.fetch().await.unwrap());
    let state = sim.state();
    assert_eq!((state.jwt_logins, state.session_logins), (0, 2));
    assert_eq!(state.unauthorized, 1);
    drop(state);
    assert_clean(&sim);
}

#[tokio::test]
async fn expired_token_means_one_new_login() {
    let sim = start().await;
    seed(&sim);
    let mut source = ApioSource::new(config(&sim, jwt(&sim), foo())).unwrap();
    assert_seeded(&source.fetch().await.unwrap());
    sim.state().expire_tokens();
    assert_seeded(&source.fetch().await.unwrap());
    let state = sim.state();
    assert_eq!((state.jwt_logins, state.unauthorized), (2, 1));
    drop(state);
    assert_clean(&sim);
}

#[tokio::test]
async fn tokens_that_never_work_fail_without_looping() {
    let sim = start_apio(ApioSimConfig {
        token_lifetime: Duration::ZERO,
        ..ApioSimConfig::default()
    })
    .await;
    seed(&sim);
    let err = fetch(config(&sim, jwt(&sim), foo())).await.unwrap_err();
    assert!(matches!(err, SourceError::Unauthorized { .. }), "{err}");
    assert_eq!(sim.state().jwt_logins, 2);
    assert_clean(&sim);
}

#[tokio::test]
async fn wrong_password_is_fatal_and_not_shown() {
    let sim = start().await;
    seed(&sim);
    for auth in [
        ApioAuth::Jwt {
            username: "svc-dialsync".into(),
            password: Secret::new("hunter2"),
            proxy_prefix: "/api/v01/p1".into(),
        },
        ApioAuth::Session {
            username: "svc-dialsync".into(),
            password: Secret::new("hunter2"),
        },
    ] {
        let err = fetch(config(&sim, auth, foo())).await.unwrap_err();
        assert!(matches!(err, SourceError::Unauthorized { .. }), "{err}");
        assert!(!err.to_string().contains("hunter2"));
    }
    assert_clean(&sim);
}

#[tokio::test]
async fn every_gateway_url_ends_with_a_slash_and_the_sim_enforces_it() {
    let sim = start().await;
    seed(&sim);
    fetch(config(&sim, session(&sim), foo())).await.unwrap();
    assert_clean(&sim);
    // Without the slash the emulator answers 301 and records the request.
    let url = format!(
        "{}/api/v1/tenant/footenant/group/foogroup/services/immediate_trunking_connectivity/numbers",
        sim.url()
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client.get(&url).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 301);
    assert_eq!(
        answer.headers()["location"].to_str().unwrap(),
        "/api/v1/tenant/footenant/group/foogroup/services/immediate_trunking_connectivity/numbers/"
    );
    let unexpected = sim.state().unexpected.clone();
    assert_eq!(unexpected.len(), 1, "{unexpected:?}");
    assert!(unexpected[0].contains("without the trailing slash"));
}

#[tokio::test]
async fn empty_strings_and_absent_fields_mean_not_given() {
    let sim = start().await;
    {
        let mut state = sim.state();
        let itc = state.group("footenant", "foogroup");
        itc.numbers = vec![
            // Only the minimum: a single number, active by default.
            json!({"minPhoneNumber": "+3225126999"}),
            json!({"minPhoneNumber": "+3225127000", "maxPhoneNumber": null, "active": ""}),
            json!({"minPhoneNumber": "+3225128000", "maxPhoneNumber": "", "unknown": [1, 2]}),
        ];
        itc.prefixes = vec![
            json!({"prefix": "+32-03"}),
            json!({"prefix": "+32-04", "extensionRangeStart": "", "extensionRangeEnd": null}),
        ];
    }
    let out = fetch(config(&sim, jwt(&sim), foo())).await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(
        covered(&out),
        [
            "+3225126999 Trunk=footenant",
            "+3225127000 Trunk=footenant",
            "+3225128000 Trunk=footenant",
            format!("{} Trunk=footenant", out.entries[3].coverage).as_str(),
            format!("{} Trunk=footenant", out.entries[4].coverage).as_str(),
        ]
    );
    for (entry, digits) in out.entries[3..].iter().zip(["3203", "3204"]) {
        match entry.coverage {
            dialsync::resolve::Coverage::Prefix(p) => assert_eq!(p.digits().digits(), digits),
            other => panic!("expected an open prefix, got {other}"),
        }
    }
    assert_clean(&sim);
}

#[tokio::test]
async fn inactive_entries_are_left_out_unless_asked_for() {
    let sim = start().await;
    {
        let mut state = sim.state();
        let itc = state.group("footenant", "foogroup");
        itc.numbers = vec![
            number("+3226127000", "", true),
            number("+3226127001", "", false),
        ];
        itc.prefixes = vec![prefix("+32-01", "", "", false)];
    }
    let out = fetch(config(&sim, jwt(&sim), foo())).await.unwrap();
    assert_eq!(covered(&out), ["+3226127000 Trunk=footenant"]);
    let mut all = config(&sim, jwt(&sim), foo());
    all.include_inactive = true;
    let out = fetch(all).await.unwrap();
    assert_eq!(out.entries.len(), 3, "{:?}", covered(&out));
    assert!(out.rejected.is_empty());
    assert_clean(&sim);
}

#[tokio::test]
async fn service_not_assigned_is_an_empty_group() {
    let sim = start().await;
    seed(&sim);
    sim.state().group("bartenant", "bargroup").assigned = false;
    let groups = vec![
        group("bartenant", "bargroup", rule("Trunk=bar", &[])),
        group("footenant", "foogroup", rule("Trunk={tenant}", &[])),
        // A group the platform does not know answers 404 too.
        group("nobody", "nothing", rule("Trunk=x", &[])),
    ];
    let out = fetch(config(&sim, jwt(&sim), groups)).await.unwrap();
    assert_seeded(&out);
    assert_clean(&sim);
}

#[tokio::test]
async fn tags_per_group_with_fields_and_tenant_overrides() {
    let sim = start().await;
    {
        let mut state = sim.state();
        state.group("footenant", "foogroup").numbers = vec![number("+3226127000", "", true)];
        state.group("Acme Corp", "hq").numbers = vec![number("+3226127100", "", true)];
        state.group("other", "g1").numbers = vec![number("+3226127200", "", true)];
    }
    let groups = vec![
        group("footenant", "foogroup", rule("Trunk=foo", &[])),
        group(
            "Acme Corp",
            "hq",
            rule("Trunk={tenant}", &[("Acme Corp", "Trunk=acme")]),
        ),
        group("other", "g1", rule("Trunk={tenant};Site={group}", &[])),
    ];
    let out = fetch(config(&sim, session(&sim), groups)).await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(
        covered(&out),
        [
            "+3226127000 Trunk=foo",
            "+3226127100 Trunk=acme",
            "+3226127200 Trunk=other;Site=g1",
        ]
    );
    assert_clean(&sim);
}

#[tokio::test]
async fn partial_success_fails_the_source() {
    let sim = start().await;
    seed(&sim);
    sim.state().faults.push_back(Fault::PartialSuccess);
    let err = fetch(config(&sim, jwt(&sim), foo())).await.unwrap_err();
    match &err {
        SourceError::Refused { status, .. } => assert_eq!(*status, 207),
        other => panic!("expected a refusal, got {other}"),
    }
    assert!(err.to_string().contains("partial"), "{err}");
    assert_clean(&sim);
}

#[tokio::test]
async fn too_many_requests_and_unavailable_are_retried() {
    for auth in [AuthKind::Jwt, AuthKind::Session] {
        let sim = start().await;
        seed(&sim);
        {
            let mut state = sim.state();
            state.faults.push_back(Fault::TooManyRequests {
                retry_after_secs: 0,
            });
            state.faults.push_back(Fault::Unavailable);
        }
        let out = fetch(config(&sim, auth.of(&sim), foo())).await.unwrap();
        assert_seeded(&out);
        assert_eq!(sim.state().list_requests, 4);
        assert_clean(&sim);
    }
}

#[tokio::test]
async fn unavailable_until_the_retries_run_out_fails_the_fetch() {
    let sim = start().await;
    seed(&sim);
    sim.state()
        .faults
        .extend((0..200).map(|_| Fault::Unavailable));
    let err = fetch(config(&sim, session(&sim), foo())).await.unwrap_err();
    match err {
        SourceError::Server { status, .. } => assert_eq!(status, 503),
        other => panic!("expected a server error, got {other}"),
    }
}

#[derive(Clone, Copy)]
enum AuthKind {
    Jwt,
    Session,
}

impl AuthKind {
    fn label(self) -> &'static str {
        match self {
            AuthKind::Jwt => "jwt",
            AuthKind::Session => "session",
        }
    }

    fn of(self, sim: &ApioSim) -> ApioAuth {
        match self {
            AuthKind::Jwt => jwt(sim),
            AuthKind::Session => session(sim),
        }
    }
}

#[tokio::test]
async fn malformed_items_are_rejected_one_by_one() {
    let sim = start().await;
    {
        let mut state = sim.state();
        let itc = state.group("footenant", "foogroup");
        itc.numbers = vec![
            number("+3226127000", "", true),
            number("+32261270AB", "", true),
            number("+3226127000123456", "", true),
            number("+3226127009", "+3226127001", true),
            number("+3226127000", "+32261271000", true),
            json!({"maxPhoneNumber": "+3226127000", "active": true}),
            json!({"minPhoneNumber": 3226127000u64}),
            json!({"minPhoneNumber": "+3226127050", "active": "maybe"}),
            json!("not an object"),
            // An exact duplicate collapses into the first.
            number("+3226127000", "", true),
            number("+3226127300", "+3226127399", true),
        ];
        itc.prefixes = vec![
            prefix("+32-01", "", "", true),
            prefix("+32-0x", "", "", true),
            prefix("+32-05", "10", "9", true),
            prefix("+32-06", "50", "10", true),
            prefix("+32-07", "10", "", true),
            prefix("+32-01234567890123", "", "", true),
            prefix("+32-08", "1a", "19", true),
        ];
    }
    let out = fetch(config(&sim, jwt(&sim), foo())).await.unwrap();
    let kept = covered(&out);
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert!(kept[0].starts_with("+3226127000 "), "{kept:?}");
    assert!(kept[1].contains("3226127300"), "{kept:?}");
    let reasons: Vec<String> = out.rejected.iter().map(ToString::to_string).collect();
    assert_eq!(reasons.len(), 14, "{reasons:#?}");
    for reason in &reasons {
        assert!(
            reason.contains("tenant=footenant group=foogroup"),
            "{reason}"
        );
    }
    let has = |needle: &str| reasons.iter().any(|r| r.contains(needle));
    assert!(has("not a digit"), "{reasons:#?}");
    assert!(has("more than the 15"), "{reasons:#?}");
    assert!(has("is after its end"), "{reasons:#?}");
    assert!(has("different digit counts"), "{reasons:#?}");
    assert!(has("no minPhoneNumber"), "{reasons:#?}");
    assert!(has("is not a string"), "{reasons:#?}");
    assert!(has("not a boolean"), "{reasons:#?}");
    assert!(has("not an object"), "{reasons:#?}");
    assert!(has("different widths"), "{reasons:#?}");
    assert!(has("without extensionRangeEnd"), "{reasons:#?}");
    assert!(has("is not digits"), "{reasons:#?}");
    assert_clean(&sim);
}

#[tokio::test]
async fn configured_url_and_proxy_prefix_are_checked() {
    let sim = start().await;
    seed(&sim);
    let mut bad = config(&sim, jwt(&sim), foo());
    bad.url = format!("{}/", sim.url());
    // The trailing slash on the configured URL is not doubled.
    fetch(bad).await.unwrap();
    assert_clean(&sim);
    let err = ApioSource::new(ApioConfig::new(
        "apio",
        "http://127.0.0.1:1",
        ApioAuth::Jwt {
            username: "u".into(),
            password: Secret::new("p"),
            proxy_prefix: "/".into(),
        },
        foo(),
    ))
    .unwrap_err();
    assert!(matches!(err, SourceError::Config { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "performance figure: cargo test --release -- --ignored fetch_1m --nocapture"]
async fn fetch_1m_numbers() {
    let sim = start().await;
    sim.state().group("footenant", "foogroup").numbers = (0..1_000_000u64)
        .map(|n| number(&format!("+{}", 3220000000 + n), "", true))
        .collect();
    for auth in [AuthKind::Session, AuthKind::Jwt, AuthKind::Session] {
        let mut cfg = config(&sim, auth.of(&sim), foo());
        cfg.http.request_timeout = Duration::from_secs(120);
        cfg.http.max_body = 1024 * 1024 * 1024;
        cfg.timeout = Duration::from_secs(300);
        let started = std::time::Instant::now();
        let out = fetch(cfg).await.unwrap();
        let took = started.elapsed();
        assert_eq!(out.entries.len(), 1_000_000);
        assert!(out.rejected.is_empty());
        println!(
            "apio ({}): fetched and parsed 1,000,000 numbers in {took:.2?}",
            auth.label()
        );
    }
    assert_clean(&sim);
}

/// `{tenant:slug}` works for APIO too, and the source's groups share one record of slugs:
/// two tenants that differ only in case would share a trunk, so the later one is refused.
#[tokio::test]
async fn slugged_tags_collide_across_groups_of_one_source() {
    let sim = start().await;
    {
        let mut state = sim.state();
        state.group("Lambiek", "HQ").numbers = vec![number("+3225140000", "+3225140009", true)];
        state.group("LAMBIEK", "Annex").numbers = vec![number("+3225150000", "", true)];
        state.group("Haven_Gent", "HQ").numbers = vec![number("+3292660000", "", true)];
    }
    let tags = rule("Trunk={tenant:slug}", &[]);
    let groups = vec![
        group("Lambiek", "HQ", tags.clone()),
        group("LAMBIEK", "Annex", tags.clone()),
        group("Haven_Gent", "HQ", tags),
    ];
    let out = fetch(config(&sim, jwt(&sim), groups)).await.unwrap();
    assert_eq!(
        covered(&out),
        [
            "+3225140000..+3225140009 Trunk=lambiek",
            "+3292660000 Trunk=haven_gent",
        ]
    );
    assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
    let reason = out.rejected[0].to_string();
    assert!(
        reason.contains("tenant=LAMBIEK group=Annex")
            && reason.contains("tenant \"LAMBIEK\" makes tag \"Trunk=lambiek\"")
            && reason.contains("which tenant \"Lambiek\" already has"),
        "{reason}"
    );
    assert_clean(&sim);
}

/// A fetch given the digest of the answer its snapshot came from only digests the pages, and
/// says so when they are the same bytes; when they differ, it reads them again and decodes.
#[tokio::test]
async fn an_unchanged_answer_is_digested_not_decoded() {
    use dialsync::source::{Fetched, LastAnswer};
    let sim = start().await;
    seed(&sim);
    let mut source = ApioSource::new(config(&sim, jwt(&sim), foo())).unwrap();
    let context = b"version and config".to_vec();
    let first = decoded(source.fetch_since(&first_answer(&context)).await.unwrap());
    assert_seeded(&first);
    let digest = first.answer.clone().expect("digested");
    let lists = sim.state().list_requests;
    let last = LastAnswer {
        context: context.clone(),
        digest: Some(digest.clone()),
        trail: first.trail.clone(),
    };
    match source.fetch_since(&last).await.unwrap() {
        Fetched::Unchanged(same) => assert_eq!(same, digest),
        Fetched::Decoded(_) => panic!("the same pages were decoded"),
    }
    assert_eq!(sim.state().list_requests - lists, 2);

    // Another context (a new version, an edited config) is another digest.
    let elsewhere = LastAnswer {
        context: b"another config".to_vec(),
        ..last.clone()
    };
    assert!(matches!(
        source.fetch_since(&elsewhere).await.unwrap(),
        Fetched::Decoded(_)
    ));

    sim.state()
        .group("footenant", "foogroup")
        .numbers
        .push(number("+3226127009", "", true));
    let lists = sim.state().list_requests;
    let changed = decoded(source.fetch_since(&last).await.unwrap());
    assert_eq!(
        sim.state().list_requests - lists,
        4,
        "digested, then decoded"
    );
    assert!(
        covered(&changed).iter().any(|c| c.contains("3226127009")),
        "{:?}",
        covered(&changed)
    );
    assert_ne!(changed.answer, Some(digest));
    assert_eq!(changed.entries.len(), first.entries.len() + 1);
    assert_clean(&sim);
}
