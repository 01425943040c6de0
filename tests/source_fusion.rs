//! The Fusion source against its emulator over loopback: authentication, pagination, empty
//! answers, every fault kind, and malformed items rejected one by one, for each feed
//! (`phone_usage`, number ranges, Operator Connect numbers).

mod common;

use std::time::{Duration, Instant};

use common::emulators::start_fusion;
use common::source::{covered, decoded, fast_http, first_answer, tag_rule};
use common::{assert_clean, ANY_PORT};
use dialsync::error::{Classify, ErrorClass};
use dialsync::net::secret::Secret;
use dialsync::sim::fusion::{oc_number, usage, Fault, FusionSim, FusionSimConfig, RangesForm};
use dialsync::sim::{BodyFault, WrongShape};
use dialsync::source::fusion::{
    FusionAuth, FusionConfig, FusionFeed, FusionSource, OcSubscription, OC_DEFAULT_PAGE_SIZE,
    OC_TAG_FIELDS, TAG_FIELDS,
};
use dialsync::source::tag::TagRule;
use dialsync::source::{ItemLimits, SourceEntries, SourceError};
use serde_json::json;

async fn start(config: FusionSimConfig) -> FusionSim {
    start_fusion(config).await
}

fn rule(template: &str, overrides: &[(&str, &str)]) -> TagRule {
    tag_rule(template, TAG_FIELDS, overrides)
}

fn login(sim: &FusionSim) -> FusionAuth {
    FusionAuth::Login {
        username: sim.config().username.clone(),
        password: Secret::new(sim.config().password.clone()),
    }
}

/// A configuration with short timeouts and retries so fault tests stay fast.
fn config(sim: &FusionSim, auth: FusionAuth, tags: TagRule) -> FusionConfig {
    let mut config = FusionConfig::new(
        "fusion",
        &sim.url(),
        &sim.config().draas_instance,
        &sim.config().group_uuid,
        auth,
        tags,
    );
    config.http = fast_http();
    config.timeout = Duration::from_secs(10);
    config
}

fn seed(sim: &FusionSim) {
    let mut state = sim.state();
    state.phone_usages = vec![
        usage("+27102851536", "Netaxis DEV"),
        usage("+27102851545", "Netaxis DEV"),
        usage("+3225400010", "CBUR"),
        usage("+27102851554", "Netaxis DEV"),
    ];
}

async fn fetch(config: FusionConfig) -> Result<SourceEntries, SourceError> {
    FusionSource::new(config).unwrap().fetch().await
}

#[tokio::test]
async fn happy_path_tags_by_tenant_with_overrides() {
    let sim = start(FusionSimConfig::default()).await;
    seed(&sim);
    let tags = rule("Trunk={tenant}", &[("Netaxis DEV", "Trunk=netaxis-dev")]);
    let out = fetch(config(&sim, login(&sim), tags)).await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(
        covered(&out),
        [
            "+27102851536 Trunk=netaxis-dev",
            "+27102851545 Trunk=netaxis-dev",
            "+3225400010 Trunk=CBUR",
            "+27102851554 Trunk=netaxis-dev",
        ]
    );
    assert_eq!(&*out.entries[2].provenance.source, "fusion");
    assert!(out.entries[2]
        .provenance
        .item
        .to_string()
        .contains("+3225400010"));
    assert_eq!(sim.state().logins, 1);
    assert_clean(&sim);
}

#[tokio::test]
async fn expired_access_token_is_refreshed_once() {
    let sim = start(FusionSimConfig::default()).await;
    seed(&sim);
    let mut source = FusionSource::new(config(&sim, login(&sim), rule("Teams", &[]))).unwrap();
    assert_eq!(source.fetch().await.unwrap().entries.len(), 4);
    assert!(!format!("{source:?}").contains(&sim.config().password));
    sim.state().expire_access_tokens();
    assert_eq!(source.fetch().await.unwrap().entries.len(), 4);
    let state = sim.state();
    assert_eq!(
        (state.logins, state.refreshes, state.unauthorized),
        (1, 1, 1)
    );
    drop(state);
    assert_clean(&sim);
}

#[tokio::test]
async fn refused_refresh_falls_back_to_one_new_login() {
    let sim = start(FusionSimConfig {
        access_lifetime: Duration::ZERO,
        ..FusionSimConfig::default()
    })
    .await;
    seed(&sim);
    let mut source = FusionSource::new(config(&sim, login(&sim), rule("Teams", &[]))).unwrap();
    // Every token expires at once: refresh works (a fresh token that expires again)...
    let err = source.fetch().await.unwrap_err();
    assert!(matches!(err, SourceError::Unauthorized { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);
    {
        let state = sim.state();
        // login, list 401, refresh, list 401, login, list 401: give up, no loop.
        assert_eq!((state.logins, state.refreshes), (2, 1), "{state:?}");
        assert_eq!(state.list_requests, 3);
    }
    assert_clean(&sim);

    let sim = start(FusionSimConfig::default()).await;
    seed(&sim);
    let mut source = FusionSource::new(config(&sim, login(&sim), rule("Teams", &[]))).unwrap();
    source.fetch().await.unwrap();
    sim.state().expire_all_tokens();
    assert_eq!(source.fetch().await.unwrap().entries.len(), 4);
    let state = sim.state();
    assert_eq!((state.logins, state.refreshes), (2, 0));
    drop(state);
    assert_clean(&sim);
}

#[tokio::test]
async fn untrusted_host_is_a_fatal_configuration_error() {
    let sim = start(FusionSimConfig {
        trusted_host: false,
        ..FusionSimConfig::default()
    })
    .await;
    seed(&sim);
    let err = fetch(config(&sim, login(&sim), rule("Teams", &[])))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Config { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);
    let message = err.to_string();
    assert!(message.contains("trusted"), "{message}");
    assert!(message.contains("machine token (token_file)"), "{message}");
    assert!(!message.contains(&sim.config().password), "{message}");
    assert_eq!(sim.state().list_requests, 0);
    assert_clean(&sim);
}

#[tokio::test]
async fn wrong_password_is_fatal_and_not_shown() {
    let sim = start(FusionSimConfig::default()).await;
    let auth = FusionAuth::Login {
        username: "svc-dialsync".into(),
        password: Secret::new("wrong-pass"),
    };
    let err = fetch(config(&sim, auth, rule("Teams", &[])))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("invalid credentials"), "{err}");
    assert!(!format!("{err} {err:?}").contains("wrong-pass"));
    assert_clean(&sim);
}

#[tokio::test]
async fn machine_token_needs_no_login_and_a_bad_one_is_fatal() {
    let sim = start(FusionSimConfig {
        machine_token: Some("machine-tok".into()),
        ..FusionSimConfig::default()
    })
    .await;
    seed(&sim);
    let auth = FusionAuth::Token(Secret::new("machine-tok"));
    let out = fetch(config(&sim, auth, rule("Teams", &[]))).await.unwrap();
    assert_eq!(out.entries.len(), 4);
    assert_eq!(sim.state().logins, 0);

    let auth = FusionAuth::Token(Secret::new("stale-tok"));
    let err = fetch(config(&sim, auth, rule("Teams", &[])))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("token_file"), "{err}");
    assert!(!err.to_string().contains("stale-tok"));
    let state = sim.state();
    assert_eq!(
        (state.logins, state.refreshes, state.list_requests),
        (0, 0, 2)
    );
    drop(state);
    assert_clean(&sim);
}

#[tokio::test]
async fn pages_are_followed_to_the_end() {
    let sim = start(FusionSimConfig::default()).await;
    sim.state().add_numbers(3220000000, 10, "acme");
    let mut cfg = config(&sim, login(&sim), rule("Trunk={tenant}", &[]));
    cfg.page_size = Some(3);
    let out = fetch(cfg).await.unwrap();
    assert_eq!(out.entries.len(), 10);
    assert_eq!(out.entries[9].coverage.to_string(), "+3220000009");
    assert_eq!(sim.state().list_requests, 4);
    assert_eq!(sim.state().page_sizes_seen, [3, 3, 3, 3]);
    assert_clean(&sim);

    // The server paginates on its own: `next` is followed though the client sent no size.
    let sim = start(FusionSimConfig {
        default_page_size: Some(4),
        ..FusionSimConfig::default()
    })
    .await;
    sim.state().add_numbers(3220000000, 10, "acme");
    let out = fetch(config(&sim, login(&sim), rule("Teams", &[])))
        .await
        .unwrap();
    assert_eq!(out.entries.len(), 10);
    assert_eq!(sim.state().list_requests, 3);
    assert!(sim.state().page_sizes_seen.is_empty());
    assert_clean(&sim);
}

#[tokio::test]
async fn empty_lists_and_404_are_empty() {
    for empty_is_404 in [true, false] {
        let sim = start(FusionSimConfig {
            empty_is_404,
            ..FusionSimConfig::default()
        })
        .await;
        let out = fetch(config(&sim, login(&sim), rule("Teams", &[])))
            .await
            .unwrap();
        assert!(out.entries.is_empty() && out.rejected.is_empty());
        let mut cfg = config(&sim, login(&sim), rule("Teams", &[]));
        cfg.feed = FusionFeed::Ranges {
            path: "groups/{group_uuid}/number_ranges".into(),
        };
        let out = fetch(cfg).await.unwrap();
        assert!(out.entries.is_empty() && out.rejected.is_empty());
        assert_clean(&sim);
    }
}

#[tokio::test]
async fn a_404_on_a_later_page_is_a_broken_chain_not_an_empty_list() {
    let sim = start(FusionSimConfig::default()).await;
    sim.state().add_numbers(3220000000, 6, "acme");
    sim.state().break_chain_at = Some(2);
    let mut cfg = config(&sim, login(&sim), rule("Teams", &[]));
    cfg.page_size = Some(2);
    let err = fetch(cfg).await.unwrap_err();
    assert!(matches!(err, SourceError::Pagination { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(err.to_string().contains("page 3"), "{err}");
    assert!(err.to_string().contains("error 1060"), "{err}");
    assert_clean(&sim);
}

#[tokio::test]
async fn server_errors_are_retried_then_fail_the_fetch() {
    let sim = start(FusionSimConfig::default()).await;
    seed(&sim);
    sim.state().faults.push_back(Fault::ServerError);
    sim.state().faults.push_back(Fault::ServerErrorText);
    let out = fetch(config(&sim, login(&sim), rule("Teams", &[])))
        .await
        .unwrap();
    assert_eq!(out.entries.len(), 4);
    assert_eq!(sim.state().list_requests, 3);

    sim.state().sticky_fault = Some(Fault::ServerErrorText);
    let err = fetch(config(&sim, login(&sim), rule("Teams", &[])))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Server { status: 500, .. }),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(err.to_string().contains("database unavailable"), "{err}");
    assert_clean(&sim);
}

#[tokio::test]
async fn slow_answers_time_out() {
    let sim = start(FusionSimConfig::default()).await;
    seed(&sim);
    // One slow answer: the request times out, the retry succeeds.
    sim.state()
        .faults
        .push_back(Fault::Delay(Duration::from_secs(2)));
    let out = fetch(config(&sim, login(&sim), rule("Teams", &[])))
        .await
        .unwrap();
    assert_eq!(out.entries.len(), 4);

    // Always slow: the retries run out.
    sim.state().sticky_fault = Some(Fault::Delay(Duration::from_secs(2)));
    let err = fetch(config(&sim, login(&sim), rule("Teams", &[])))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Http { .. }), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);

    // The source's own timeout bounds the whole fetch.
    let mut cfg = config(&sim, login(&sim), rule("Teams", &[]));
    cfg.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = fetch(cfg).await.unwrap_err();
    assert!(matches!(err, SourceError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_clean(&sim);
}

#[tokio::test]
async fn a_garbage_body_fails_the_fetch() {
    let sim = start(FusionSimConfig::default()).await;
    seed(&sim);
    sim.state().faults.push_back(Fault::Garbage);
    let err = fetch(config(&sim, login(&sim), rule("Teams", &[])))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::BadBody { .. }), "{err}");
    assert!(err.to_string().contains("502 Bad Gateway"), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_clean(&sim);
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let sim = start(FusionSimConfig::default()).await;
    seed(&sim);
    sim.state().faults.push_back(Fault::TooManyRequests {
        retry_after_secs: 1,
    });
    let mut cfg = config(&sim, login(&sim), rule("Teams", &[]));
    cfg.http.retry_budget = Duration::from_secs(3);
    let started = Instant::now();
    let out = fetch(cfg).await.unwrap();
    assert_eq!(out.entries.len(), 4);
    assert!(started.elapsed() >= Duration::from_secs(1));

    // A Retry-After beyond the retry budget ends the fetch at once.
    sim.state().sticky_fault = Some(Fault::TooManyRequests {
        retry_after_secs: 30,
    });
    let started = Instant::now();
    let err = fetch(config(&sim, login(&sim), rule("Teams", &[])))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Server { status: 429, .. }),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_clean(&sim);
}

#[tokio::test]
async fn forbidden_is_fatal_with_the_fusion_error() {
    let sim = start(FusionSimConfig::default()).await;
    seed(&sim);
    sim.state().faults.push_back(Fault::Forbidden);
    let err = fetch(config(&sim, login(&sim), rule("Teams", &[])))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Refused { status: 403, .. }),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Fatal);
    assert!(err.to_string().contains("error 9002"), "{err}");
    assert_clean(&sim);
}

#[tokio::test]
async fn malformed_usages_are_rejected_one_by_one() {
    let sim = start(FusionSimConfig::default()).await;
    {
        let mut state = sim.state();
        state.phone_usages = vec![
            usage("+3225400010", "acme"),
            usage("+32abc", "acme"),
            usage("+1234567890123456", "acme"),
            usage("", "acme"),
            usage("+3225400011", ""),
            usage("+3225400012", "a;b"),
            usage("+3225400010", "acme"),
            usage("+3225400010", "other"),
            json!(42),
            json!({"phoneNumber": 3225400013u64, "tenant": "acme"}),
            usage("32 2 540 00 14", "acme"),
        ];
    }
    let out = fetch(config(&sim, login(&sim), rule("Trunk={tenant}", &[])))
        .await
        .unwrap();
    assert_eq!(
        covered(&out),
        [
            "+3225400010 Trunk=acme",
            "+3225400010 Trunk=other",
            "+3225400014 Trunk=acme",
        ]
    );
    let reasons: Vec<String> = out.rejected.iter().map(|r| r.to_string()).collect();
    assert_eq!(out.rejected.len(), 7, "{reasons:#?}");
    assert!(reasons[0].starts_with("phone_usage #2 number=\"+32abc\""));
    assert!(reasons[0].contains("'a' at position 3"), "{}", reasons[0]);
    assert!(reasons[1].contains("more than the 15"), "{}", reasons[1]);
    assert!(reasons[2].contains("no phoneNumber"), "{}", reasons[2]);
    assert!(reasons[3].contains("no tenant"), "{}", reasons[3]);
    assert!(reasons[4].contains("contains ';'"), "{}", reasons[4]);
    assert!(
        reasons[5].starts_with("phone_usage #9 42"),
        "{}",
        reasons[5]
    );
    assert!(
        reasons[6].contains("not a phone usage object"),
        "{}",
        reasons[6]
    );
    assert_clean(&sim);
}

/// `{tenant:slug}` makes a tag of any tenant name; two names whose slugs collide are not
/// merged: the later name's items are rejected one by one, naming both names, and an override
/// for either is how an operator settles it.
#[tokio::test]
async fn slugged_tenants_are_tagged_and_colliding_slugs_rejected() {
    let sim = start(FusionSimConfig::default()).await;
    sim.state().phone_usages = vec![
        usage("+3226134000", "Atelier Horta"),
        usage("+3226134001", "Café Noir"),
        usage("+3226134002", "Cafe-Noir"),
        usage("+3226134003", "Atelier Horta"),
        usage("+3226134004", "Cafe-Noir"),
        usage("+3226134005", "Café Noir"),
    ];
    let out = fetch(config(&sim, login(&sim), rule("Trunk={tenant:slug}", &[])))
        .await
        .unwrap();
    assert_eq!(
        covered(&out),
        [
            "+3226134000 Trunk=atelier-horta",
            "+3226134001 Trunk=cafe-noir",
            "+3226134003 Trunk=atelier-horta",
            "+3226134005 Trunk=cafe-noir",
        ]
    );
    let reasons: Vec<String> = out.rejected.iter().map(|r| r.to_string()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:#?}");
    for (reason, number) in reasons.iter().zip(["+3226134002", "+3226134004"]) {
        assert!(
            reason.contains(&format!("number=\"{number}\" tenant=\"Cafe-Noir\""))
                && reason.contains("tenant \"Cafe-Noir\" makes tag \"Trunk=cafe-noir\"")
                && reason.contains("which tenant \"Café Noir\" already has"),
            "{reason}"
        );
    }

    // An override gives the later name a tag of its own.
    let tags = rule(
        "Trunk={tenant:slug}",
        &[("Cafe-Noir", "Trunk=cafe-noir-gent")],
    );
    let out = fetch(config(&sim, login(&sim), tags)).await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(out.entries[2].tag.as_str(), "Trunk=cafe-noir-gent");
    assert_clean(&sim);
}

fn range(id: u32, cc: &str, start: serde_json::Value, end: serde_json::Value) -> serde_json::Value {
    json!({"id": id, "countryCode": cc, "rangeStart": start, "rangeEnd": end,
           "numberType": "geographic", "nbAvailable": 0, "nbTotal": 100})
}

#[tokio::test]
async fn number_ranges_with_integer_bounds() {
    let sim = start(FusionSimConfig::default()).await;
    sim.state().ranges = vec![
        // Antwerp (03): its national numbers start with the country code's digits, 32.
        range(1, "32", json!(32001000u64), json!(32001099u64)),
        // Brussels (02).
        range(2, "32", json!(22002000u64), json!(22002099u64)),
        range(3, "+27", json!(102851500u64), json!(102851599u64)),
        range(4, "32", json!(22001099u64), json!(22001000u64)),
        range(5, "32", json!(22001000u64), json!(220010999u64)),
        range(6, "32", json!("2200x000"), json!("22001099")),
        range(
            7,
            "32",
            json!(1234567890123456u64),
            json!(1234567890123457u64),
        ),
        range(8, "32", json!(22000000u64), json!(22999999u64)),
        range(9, "32", json!(32001000u64), json!(32001099u64)),
        range(10, "32", json!(-5), json!(22001099u64)),
        // Paris, bounds as digit strings.
        range(11, "33", json!("122003000"), json!("122003009")),
        // A bound that claims to be international: the guess this feed no longer makes.
        range(12, "33", json!("+33122004000"), json!("+33122004009")),
        json!({"id": 13, "rangeStart": 22005000u64, "rangeEnd": 22005009u64}),
        range(14, "032", json!(22006000u64), json!(22006009u64)),
    ];
    let mut cfg = config(&sim, login(&sim), rule("Trunk=ranges", &[]));
    cfg.feed = FusionFeed::Ranges {
        path: "groups/{group_uuid}/number_ranges".into(),
    };
    cfg.limits = ItemLimits {
        max_range_size: 10_000,
        ..ItemLimits::default()
    };
    let out = fetch(cfg.clone()).await.unwrap();
    assert_eq!(
        covered(&out),
        [
            "+3232001000..+3232001099 Trunk=ranges",
            "+3222002000..+3222002099 Trunk=ranges",
            "+27102851500..+27102851599 Trunk=ranges",
            "+33122003000..+33122003009 Trunk=ranges",
        ]
    );
    let reasons: Vec<String> = out.rejected.iter().map(|r| r.to_string()).collect();
    assert_eq!(out.rejected.len(), 9, "{reasons:#?}");
    assert!(reasons[0].starts_with("range #4 id=4"), "{}", reasons[0]);
    assert!(reasons[0].contains("after its end"), "{}", reasons[0]);
    assert!(
        reasons[1].contains("different digit counts"),
        "{}",
        reasons[1]
    );
    assert!(reasons[2].contains("'x'"), "{}", reasons[2]);
    assert!(reasons[3].contains("more than the 15"), "{}", reasons[3]);
    assert!(
        reasons[4].contains("larger than max_range_size"),
        "{}",
        reasons[4]
    );
    assert!(
        reasons[5].contains("not a positive integer"),
        "{}",
        reasons[5]
    );
    assert!(
        reasons[6].starts_with("range #12 id=12") && reasons[6].contains("is international"),
        "{}",
        reasons[6]
    );
    assert!(
        reasons[7].starts_with("range #13 id=13") && reasons[7].contains("no countryCode"),
        "{}",
        reasons[7]
    );
    assert!(
        reasons[8].contains("countryCode \"032\" is not a country code"),
        "{}",
        reasons[8]
    );
    assert_clean(&sim);

    // The object form, paginated.
    {
        let mut state = sim.state();
        state.ranges_form = RangesForm::Object("ranges".into());
        state.ranges.truncate(3);
    }
    cfg.page_size = Some(2);
    let before = sim.state().list_requests;
    let out = fetch(cfg.clone()).await.unwrap();
    assert_eq!(out.entries.len(), 3);
    assert_eq!(sim.state().list_requests - before, 2);
    // Another list field name works when it is the only list.
    sim.state().ranges_form = RangesForm::Object("numberRanges".into());
    assert_eq!(fetch(cfg).await.unwrap().entries.len(), 3);
    assert_clean(&sim);
}

#[tokio::test]
async fn a_range_feed_needs_a_fixed_tag() {
    let sim = start(FusionSimConfig::default()).await;
    let mut cfg = config(&sim, login(&sim), rule("Trunk={tenant}", &[]));
    cfg.feed = FusionFeed::Ranges {
        path: "groups/{group_uuid}/number_ranges".into(),
    };
    let err = FusionSource::new(cfg).unwrap_err();
    assert!(matches!(err, SourceError::Config { .. }), "{err}");
    assert!(err.to_string().contains("fixed"), "{err}");
}

#[tokio::test]
async fn an_answer_past_the_body_cap_fails() {
    let sim = start(FusionSimConfig::default()).await;
    sim.state().add_numbers(3220000000, 100, "acme");
    let mut cfg = config(&sim, login(&sim), rule("Teams", &[]));
    cfg.http.max_body = 1024;
    let err = fetch(cfg).await.unwrap_err();
    assert!(
        matches!(err, SourceError::TooLarge { max: 1024, .. }),
        "{err}"
    );
    assert_clean(&sim);
}

/// A server answering every GET with `body` in chunks of `chunk` bytes and no
/// `Content-Length`, as a proxy or a large answer streamed by Fusion may: the cap can only be
/// counted as the bytes come, and items and characters are split across chunks.
async fn chunked_server(body: Vec<u8>, chunk: usize) -> String {
    let body = std::sync::Arc::new(body);
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                body.chunks(chunk).map(|c| Ok(c.to_vec())).collect();
            let stream = futures_util::stream::iter(chunks);
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                axum::body::Body::from_stream(stream),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind(ANY_PORT).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn chunked_config(url: &str) -> FusionConfig {
    let mut config = FusionConfig::new(
        "fusion",
        url,
        "draas",
        "group",
        FusionAuth::Token(Secret::new("machine-token")),
        rule("Trunk={tenant:slug}", &[]),
    );
    config.http = fast_http();
    config.timeout = Duration::from_secs(10);
    config
}

/// One `phone_usage` answer of `n` items (a tenant name with an accent, so characters split
/// across chunks), as Fusion sends it: unpaginated.
fn usage_answer(n: u64) -> Vec<u8> {
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| usage(&format!("+3222{:06}", i), "Atelier Hortá"))
        .collect();
    serde_json::to_vec(&json!({ "phoneUsages": items })).unwrap()
}

#[tokio::test]
async fn one_large_answer_is_decoded_as_it_streams() {
    let body = usage_answer(2_000);
    let size = body.len();
    // Odd chunks: items, strings and the two bytes of "á" fall across chunk boundaries.
    let url = chunked_server(body, 7_919).await;
    let mut cfg = chunked_config(&url);
    cfg.http.max_body = size;
    let out = fetch(cfg.clone()).await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(out.entries.len(), 2_000);
    assert!(out
        .entries
        .iter()
        .all(|e| e.tag.as_str() == "Trunk=atelier-horta"));

    // One byte under the answer: refused as it streams, naming the key.
    cfg.http.max_body = size - 1;
    let err = fetch(cfg).await.unwrap_err();
    assert!(
        matches!(err, SourceError::TooLarge { max, .. } if max == size - 1),
        "{err}"
    );
    assert!(err.to_string().contains("max_body"), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);
}

/// What a body gives streamed in chunks of `chunk` bytes: its error's text.
async fn streamed_error(body: &[u8], chunk: usize) -> String {
    let url = chunked_server(body.to_vec(), chunk).await;
    let err = fetch(chunked_config(&url)).await.unwrap_err();
    assert!(matches!(err, SourceError::BadBody { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    err.to_string()
}

#[tokio::test]
async fn a_streamed_answer_says_what_is_wrong_with_it() {
    // Not UTF-8, found across a chunk boundary: said as such, with where.
    let mut body = usage_answer(50);
    let at = body.len() / 2;
    body[at] = 0xFF;
    let err = streamed_error(&body, 13).await;
    assert!(
        err.contains(&format!(
            "not valid UTF-8 (a byte that is not UTF-8 at offset {at})"
        )),
        "{err}"
    );
    // Cut short: not valid JSON, where serde_json says, the start of the body shown.
    let mut body = usage_answer(50);
    body.truncate(body.len() - 10);
    let err = streamed_error(&body, 64).await;
    let whole = serde_json::from_slice::<serde_json::Value>(&body).unwrap_err();
    assert!(
        err.contains(&format!("not valid JSON: {whole}")),
        "{err}\n{whole}"
    );
    assert!(err.contains("{\"phoneUsages\""), "{err}");
    // Empty.
    let err = streamed_error(b"  ", 64).await;
    assert!(err.contains("the answer is empty"), "{err}");
    // JSON, but not a page, or a page without its list, or with one of another type.
    let err = streamed_error(b"[1, 2]", 2).await;
    assert!(
        err.contains("expected an object with phoneUsages, found [1, 2]"),
        "{err}"
    );
    let err = streamed_error(br#"{"next": null}"#, 2).await;
    assert!(err.contains("no phoneUsages list"), "{err}");
    let err = streamed_error(br#"{"phoneUsages": {"0": {}}}"#, 3).await;
    assert!(
        err.contains("not of the documented shape: invalid type: map, expected a sequence"),
        "{err}"
    );
    // A bad item rejects itself only; trailing text after the page fails it.
    let body = br#"{"phoneUsages":[{"phoneNumber":"+3222000001","tenant":"a"},{"phoneNumber":5}]}"#;
    let url = chunked_server(body.to_vec(), 5).await;
    let out = fetch(chunked_config(&url)).await.unwrap();
    assert_eq!((out.entries.len(), out.rejected.len()), (1, 1));
    assert!(
        out.rejected[0].reason.contains("not a phone usage object"),
        "{:?}",
        out.rejected
    );
    let err = streamed_error(&[&body[..], b" {}"].concat(), 5).await;
    assert!(
        err.contains("not valid JSON: trailing characters at line 1 column"),
        "{err}"
    );
    // An item that is not JSON fails the answer, placed in the whole body.
    let body = br#"{"phoneUsages":[{"phoneNumber":"+3222000001"},{"phoneNumber" 5}]}"#;
    let err = streamed_error(body, 7).await;
    let whole = serde_json::from_slice::<serde_json::Value>(body).unwrap_err();
    assert!(err.contains(&format!("not valid JSON: {whole}")), "{err}");
}

#[tokio::test]
async fn a_paged_phone_usage_answer_is_followed_when_it_streams() {
    // Fusion documents no paging for phone_usage, but a `next` in an answer is followed.
    let first = br#"{"phoneUsages":[{"phoneNumber":"+3222000001","tenant":"a"}],"next":"p2"}"#;
    let second = br#"{"next":null,"phoneUsages":[{"phoneNumber":"+3222000002","tenant":"a"}]}"#;
    let app = axum::Router::new().fallback(
        move |query: axum::extract::Query<std::collections::HashMap<String, String>>| async move {
            match query.get("next").map(String::as_str) {
                Some("p2") => second.to_vec(),
                _ => first.to_vec(),
            }
        },
    );
    let listener = tokio::net::TcpListener::bind(ANY_PORT).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let out = fetch(chunked_config(&url)).await.unwrap();
    assert_eq!(out.entries.len(), 2, "{:?}", out.rejected);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "performance figure: cargo test --release -- --ignored fetch_1m --nocapture"]
async fn fetch_1m_numbers() {
    let sim = start(FusionSimConfig::default()).await;
    sim.state().add_numbers(3220000000, 1_000_000, "acme");
    for page_size in [None, Some(100_000)] {
        let mut cfg = config(&sim, login(&sim), rule("Trunk={tenant}", &[]));
        cfg.page_size = page_size;
        cfg.http.request_timeout = Duration::from_secs(120);
        cfg.http.max_body = 512 * 1024 * 1024;
        cfg.timeout = Duration::from_secs(300);
        let started = Instant::now();
        let out = fetch(cfg).await.unwrap();
        let took = started.elapsed();
        assert_eq!(out.entries.len(), 1_000_000);
        assert!(out.rejected.is_empty());
        println!(
            "fusion: fetched and parsed 1,000,000 numbers (page_size {page_size:?}) in {took:.2?}"
        );
    }
    assert_clean(&sim);
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let sim = start(FusionSimConfig::default()).await;
    let mut cfg = config(&sim, login(&sim), rule("Teams", &[]));
    drop(sim);
    let closed = std::net::TcpListener::bind(ANY_PORT).unwrap();
    cfg.url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = fetch(cfg).await.unwrap_err();
    assert!(matches!(err, SourceError::Http { .. }), "{err}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
}

// ---- Operator Connect numbers (feed = "oc_numbers") ----

const TENANT: &str = "3f1c9a70-5b2e-4c8d-9a61-0c2f7e4d1b11";
const SUB_BE: &str = "9a2e41b8-77c3-4f0a-8e5d-2b6c1d0e9f21";
const SUB_FR: &str = "c41d7e02-1a9b-4e3f-b8c6-5d2e0f1a7b33";

fn oc_rule(template: &str, overrides: &[(&str, &str)]) -> TagRule {
    tag_rule(template, OC_TAG_FIELDS, overrides)
}

fn subscription(tenant: &str, subscription: &str, tags: TagRule) -> OcSubscription {
    OcSubscription {
        tenant: tenant.into(),
        subscription: subscription.into(),
        tags,
    }
}

/// The Operator Connect feed of `subscriptions`, otherwise as [`config`].
fn oc_config(sim: &FusionSim, subscriptions: Vec<OcSubscription>) -> FusionConfig {
    let mut config = config(sim, login(sim), rule("Teams", &[]));
    config.group_uuid = String::new();
    config.feed = FusionFeed::OcNumbers {
        subscriptions,
        include_unprovisioned: false,
    };
    config
}

/// `count` provisioned Belgian numbers from national number `first` on.
fn be_numbers(first: u64, count: u64) -> Vec<serde_json::Value> {
    (first..first + count)
        .map(|nsn| oc_number(32, &nsn.to_string(), true))
        .collect()
}

#[tokio::test]
async fn oc_numbers_are_read_page_by_page_for_each_subscription() {
    let sim = start(FusionSimConfig::default()).await;
    {
        let mut state = sim.state();
        *state.oc_list(TENANT, SUB_BE) = be_numbers(26127000, 7);
        *state.oc_list("Atelier Horta", SUB_FR) = vec![
            oc_number(33, "122003000", true),
            oc_number(33, "122003001", true),
        ];
    }
    let subscriptions = vec![
        subscription(TENANT, SUB_BE, oc_rule("Trunk=acme-{country}", &[])),
        subscription(
            "Atelier Horta",
            SUB_FR,
            oc_rule("{tenant:slug}-{usage:slug}", &[]),
        ),
    ];
    let mut cfg = oc_config(&sim, subscriptions.clone());
    cfg.page_size = Some(3);
    let out = fetch(cfg).await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let mut want: Vec<String> = (0..7)
        .map(|i| format!("+32261270{i:02} Trunk=acme-BE"))
        .collect();
    want.push("+33122003000 atelier-horta-callinguserassignment".into());
    want.push("+33122003001 atelier-horta-callinguserassignment".into());
    assert_eq!(covered(&out), want);
    let label = out.entries[8].provenance.item.to_string();
    assert!(
        label.contains(&format!("tenant=Atelier Horta subscription={SUB_FR} #2")),
        "{label}"
    );
    {
        let state = sim.state();
        // 3 pages of SUB_BE, 1 of SUB_FR, every one with the configured page size; the
        // tenant with a space travels percent-encoded and arrives whole.
        assert_eq!(state.page_sizes_seen, [3, 3, 3, 3]);
        let asked: Vec<&str> = state.oc_asked.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(asked, [TENANT, TENANT, TENANT, "Atelier Horta"]);
    }
    // Without a configured page size the feed still sends one.
    let before = sim.state().page_sizes_seen.len();
    fetch(oc_config(&sim, subscriptions)).await.unwrap();
    assert_eq!(
        sim.state().page_sizes_seen[before..],
        [OC_DEFAULT_PAGE_SIZE as usize, OC_DEFAULT_PAGE_SIZE as usize]
    );
    assert_clean(&sim);
}

#[tokio::test]
async fn an_oc_subscription_answering_404_is_empty() {
    for empty_is_404 in [true, false] {
        let sim = start(FusionSimConfig {
            empty_is_404,
            ..FusionSimConfig::default()
        })
        .await;
        {
            let mut state = sim.state();
            *state.oc_list(TENANT, SUB_BE) = be_numbers(26127000, 2);
            state.oc_list(TENANT, SUB_FR).clear();
        }
        let subscriptions = vec![
            subscription(TENANT, "not-on-fusion", oc_rule("Trunk=a", &[])),
            subscription(TENANT, SUB_FR, oc_rule("Trunk=b", &[])),
            subscription(TENANT, SUB_BE, oc_rule("Trunk=c", &[])),
        ];
        let out = fetch(oc_config(&sim, subscriptions)).await.unwrap();
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        assert_eq!(
            covered(&out),
            ["+3226127000 Trunk=c", "+3226127001 Trunk=c"]
        );
        assert_eq!(sim.state().oc_asked.len(), 3);
        assert_clean(&sim);
    }
    // Every subscription empty: an empty answer, not an error.
    let sim = start(FusionSimConfig::default()).await;
    let subscriptions = vec![subscription(TENANT, SUB_BE, oc_rule("Trunk=a", &[]))];
    let out = fetch(oc_config(&sim, subscriptions)).await.unwrap();
    assert!(out.entries.is_empty() && out.rejected.is_empty());
    assert_clean(&sim);
}

#[tokio::test]
async fn an_oc_number_comes_from_draas_then_its_parts_then_teams() {
    let sim = start(FusionSimConfig::default()).await;
    let full = oc_number(32, "26127000", true);
    let mut parts = oc_number(32, "26127001", true);
    parts["draas"]["fullNumber"] = json!(null);
    parts["msTeams"]["number"] = json!("+3299999999");
    let mut teams_only = oc_number(32, "26127002", true);
    teams_only.as_object_mut().unwrap().remove("draas");
    let mut draas_null = oc_number(32, "26127003", true);
    draas_null["draas"] = json!(null);
    let mut text_cc = oc_number(32, "26127004", true);
    text_cc["draas"]["fullNumber"] = json!("");
    text_cc["draas"]["countryCode"] = json!("32");
    *sim.state().oc_list(TENANT, SUB_BE) = vec![full, parts, teams_only, draas_null, text_cc];
    let subscriptions = vec![subscription(TENANT, SUB_BE, oc_rule("Trunk=oc", &[]))];
    let out = fetch(oc_config(&sim, subscriptions)).await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(
        covered(&out),
        [
            "+3226127000 Trunk=oc",
            "+3226127001 Trunk=oc",
            "+3226127002 Trunk=oc",
            "+3226127003 Trunk=oc",
            "+3226127004 Trunk=oc",
        ]
    );
    assert_clean(&sim);
}

#[tokio::test]
async fn unprovisioned_oc_numbers_are_left_out_unless_included() {
    let sim = start(FusionSimConfig::default()).await;
    let mut unknown = oc_number(32, "26127003", true);
    unknown["msTeams"]
        .as_object_mut()
        .unwrap()
        .remove("provisionedOnMSTeams");
    let mut inventory_only = oc_number(32, "26127004", true);
    inventory_only.as_object_mut().unwrap().remove("msTeams");
    *sim.state().oc_list(TENANT, SUB_BE) = vec![
        oc_number(32, "26127000", true),
        oc_number(32, "26127001", false),
        oc_number(32, "26127002", true),
        unknown,
        inventory_only,
    ];
    let subscriptions = vec![subscription(TENANT, SUB_BE, oc_rule("Trunk=oc", &[]))];
    let out = fetch(oc_config(&sim, subscriptions.clone())).await.unwrap();
    assert!(out.rejected.is_empty(), "left out, not rejected");
    assert_eq!(
        covered(&out),
        ["+3226127000 Trunk=oc", "+3226127002 Trunk=oc"]
    );

    let mut cfg = oc_config(&sim, subscriptions);
    cfg.feed = FusionFeed::OcNumbers {
        subscriptions: vec![subscription(TENANT, SUB_BE, oc_rule("Trunk=oc", &[]))],
        include_unprovisioned: true,
    };
    let out = fetch(cfg).await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(out.entries.len(), 5);
    assert_clean(&sim);
}

#[tokio::test]
async fn oc_duplicates_across_pages_collapse() {
    let sim = start(FusionSimConfig::default()).await;
    let mut numbers = be_numbers(26127000, 4);
    numbers.push(oc_number(32, "26127000", true));
    numbers.push(oc_number(32, "26127003", true));
    *sim.state().oc_list(TENANT, SUB_BE) = numbers;
    let subscriptions = vec![subscription(TENANT, SUB_BE, oc_rule("Trunk=oc", &[]))];
    let mut cfg = oc_config(&sim, subscriptions);
    cfg.page_size = Some(2);
    let out = fetch(cfg).await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(
        covered(&out),
        [
            "+3226127000 Trunk=oc",
            "+3226127001 Trunk=oc",
            "+3226127002 Trunk=oc",
            "+3226127003 Trunk=oc",
        ]
    );
    assert_eq!(sim.state().list_requests, 3, "three pages of two");
    assert_clean(&sim);
}

/// A subscription's own tag overrides the source's template; `[sources.tags]` by tenant
/// still wins over both, as for the other feeds.
#[tokio::test]
async fn a_subscription_tag_overrides_the_template() {
    let sim = start(FusionSimConfig::default()).await;
    {
        let mut state = sim.state();
        *state.oc_list(TENANT, SUB_BE) = be_numbers(26127000, 1);
        *state.oc_list(TENANT, SUB_FR) = vec![oc_number(33, "122003000", true)];
        *state.oc_list("globex", SUB_BE) = be_numbers(26128000, 1);
    }
    let template = "Trunk={subscription}";
    let subscriptions = vec![
        subscription(TENANT, SUB_BE, oc_rule(template, &[])),
        subscription(TENANT, SUB_FR, oc_rule("Trunk=paris", &[])),
        subscription(
            "globex",
            SUB_BE,
            oc_rule(template, &[("globex", "Trunk=globex")]),
        ),
    ];
    let out = fetch(oc_config(&sim, subscriptions)).await.unwrap();
    assert_eq!(
        covered(&out),
        [
            format!("+3226127000 Trunk={SUB_BE}"),
            "+33122003000 Trunk=paris".to_string(),
            "+3226128000 Trunk=globex".to_string(),
        ]
    );
    assert_clean(&sim);
}

#[tokio::test]
async fn bad_oc_items_are_rejected_one_by_one_naming_the_item() {
    let sim = start(FusionSimConfig::default()).await;
    let mut letters = oc_number(32, "2612700a", true);
    letters["msTeams"]["number"] = json!("+322612700a");
    let mut nsn_object = oc_number(32, "26127002", true);
    nsn_object["draas"]["fullNumber"] = json!(null);
    nsn_object["draas"]["nsn"] = json!({"digits": "26127002"});
    let mut odd_flag = oc_number(32, "26127003", true);
    odd_flag["msTeams"]["provisionedOnMSTeams"] = json!("yes");
    let mut no_usage = oc_number(32, "26127005", true);
    no_usage["msTeams"]["usage"] = json!(null);
    let mut nothing = oc_number(32, "26127006", true);
    nothing.as_object_mut().unwrap().remove("draas");
    nothing["msTeams"]["number"] = json!("");
    *sim.state().oc_list(TENANT, SUB_BE) = vec![
        oc_number(32, "26127000", true),
        letters,
        nsn_object,
        odd_flag,
        json!("+3226127004"),
        no_usage,
        nothing,
        oc_number(32, "26127007", true),
    ];
    let subscriptions = vec![subscription(TENANT, SUB_BE, oc_rule("Trunk={usage}", &[]))];
    let mut cfg = oc_config(&sim, subscriptions);
    cfg.page_size = Some(3);
    let out = fetch(cfg).await.unwrap();
    assert_eq!(
        covered(&out),
        [
            "+3226127000 Trunk=CallingUserAssignment",
            "+3226127007 Trunk=CallingUserAssignment",
        ]
    );
    let reasons: Vec<String> = out.rejected.iter().map(|r| r.to_string()).collect();
    let expected = [
        (
            "#2 number=\"+322612700a\"",
            "draas.fullNumber \"+322612700a\"",
        ),
        (
            "#3 number=\"+3226127002\"",
            "draas.nsn {\"digits\":\"26127002\"} is not a national number",
        ),
        (
            "#4 number=\"+3226127003\"",
            "provisionedOnMSTeams \"yes\" is not a boolean",
        ),
        (
            "#5 number=\"\"",
            "not an Operator Connect number object: \"+3226127004\"",
        ),
        ("#6 number=\"+3226127005\"", "no usage for tag template"),
        ("#7 number=\"\"", "no number"),
    ];
    assert_eq!(reasons.len(), expected.len(), "{reasons:#?}");
    for (reason, (item, why)) in reasons.iter().zip(expected) {
        assert!(
            reason.starts_with(&format!(
                "oc_number tenant={TENANT} subscription={SUB_BE} {item}"
            )) && reason.contains(why),
            "{reason} should be {item}: {why}"
        );
    }
    assert_clean(&sim);
}

#[tokio::test]
async fn the_oc_feed_shares_the_chain_checks_auth_and_faults() {
    let sim = start(FusionSimConfig::default()).await;
    *sim.state().oc_list(TENANT, SUB_BE) = be_numbers(26127000, 6);
    let subscriptions = vec![subscription(TENANT, SUB_BE, oc_rule("Trunk=oc", &[]))];
    // A page after the first answering 404 is a broken chain, not the end of the list.
    sim.state().break_chain_at = Some(2);
    let mut cfg = oc_config(&sim, subscriptions.clone());
    cfg.page_size = Some(2);
    let err = fetch(cfg.clone()).await.unwrap_err();
    assert!(matches!(err, SourceError::Pagination { .. }), "{err}");
    assert!(err.to_string().contains("page 3"), "{err}");
    sim.state().break_chain_at = None;

    // An access token that expired is refreshed once, as for phone_usage.
    let mut source = FusionSource::new(cfg.clone()).unwrap();
    assert_eq!(source.fetch().await.unwrap().entries.len(), 6);
    sim.state().expire_access_tokens();
    assert_eq!(source.fetch().await.unwrap().entries.len(), 6);
    let counts = {
        let state = sim.state();
        (state.logins, state.refreshes)
    };
    assert_eq!(counts, (2, 1));

    // A 500 is retried; a 403 is fatal with Fusion's error.
    sim.state().faults.push_back(Fault::ServerError);
    assert_eq!(fetch(cfg.clone()).await.unwrap().entries.len(), 6);
    sim.state().faults.push_back(Fault::Forbidden);
    let err = fetch(cfg.clone()).await.unwrap_err();
    assert!(
        matches!(err, SourceError::Refused { status: 403, .. }),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Fatal);

    // The body cap and the whole-fetch timeout are the source's too.
    let mut capped = cfg.clone();
    capped.http.max_body = 256;
    let err = fetch(capped).await.unwrap_err();
    assert!(
        matches!(err, SourceError::TooLarge { max: 256, .. }),
        "{err}"
    );
    sim.state().sticky_fault = Some(Fault::Delay(Duration::from_millis(200)));
    let mut slow = cfg;
    slow.timeout = Duration::from_millis(300);
    let err = fetch(slow).await.unwrap_err();
    assert!(matches!(err, SourceError::Timeout { .. }), "{err}");
    sim.state().sticky_fault = None;

    // A body that is not a page is a failed fetch.
    sim.state()
        .faults
        .push_back(Fault::Body(BodyFault::Shape(WrongShape::ArrayForPage)));
    let err = fetch(oc_config(&sim, subscriptions)).await.unwrap_err();
    assert!(matches!(err, SourceError::BadBody { .. }), "{err}");
    assert!(
        err.to_string().contains("expected an object with numbers"),
        "{err}"
    );
    assert_clean(&sim);
}

/// The emulator takes what Fusion takes and records the rest: the portal's own `search`
/// parameter passes, an unknown one is recorded, and a request without a token is refused.
#[tokio::test]
async fn the_oc_emulator_is_as_strict_as_fusion_and_no_more() {
    let sim = start(FusionSimConfig {
        machine_token: Some("machine-tok".into()),
        ..FusionSimConfig::default()
    })
    .await;
    *sim.state().oc_list(TENANT, SUB_BE) = be_numbers(26127000, 3);
    let url = format!(
        "{}/api/v01/draas/{}/tenants/{TENANT}/subscriptions/{SUB_BE}/msteams/oc/numbers",
        sim.url(),
        sim.config().draas_instance
    );
    let client = reqwest::Client::new();
    let get = |query: &'static str, token: Option<&'static str>| {
        let mut request = client
            .get(format!("{url}{query}"))
            .header("User-Agent", dialsync::net::client::USER_AGENT);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let answer = get("?page_size=24&search=2612", Some("machine-tok"))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let page: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(page["numbers"].as_array().map(Vec::len), Some(3));
    assert_eq!(page["next"], "", "the last page's next is an empty string");
    assert_eq!(page["numbers"][0], oc_number(32, "26127000", true));
    assert!(sim.state().unexpected.is_empty());

    let paged: serde_json::Value = get("?page_size=2", Some("machine-tok"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(paged["next"].as_str().is_some_and(|n| !n.is_empty()));

    assert_eq!(
        get("?colour=blue", Some("machine-tok"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(get("", None).await.unwrap().status(), 401);
    let unexpected = sim.state().unexpected.clone();
    assert_eq!(unexpected.len(), 2, "{unexpected:?}");
    assert!(unexpected[0].contains("unknown parameter colour"));
    assert!(unexpected[1].contains("without a Bearer token"));
}

/// A `phone_usage` fetch given the digest of the answer its snapshot came from only digests
/// the body, and says so when it is the same bytes; when it differs, the answer is read again
/// and decoded.
#[tokio::test]
async fn an_unchanged_phone_usage_answer_is_digested_not_decoded() {
    use dialsync::source::{Fetched, LastAnswer};
    let sim = start(FusionSimConfig::default()).await;
    seed(&sim);
    let tags = rule("Trunk={tenant}", &[("Netaxis DEV", "Trunk=netaxis-dev")]);
    let mut source = FusionSource::new(config(&sim, login(&sim), tags)).unwrap();
    let context = b"version and config".to_vec();
    let first = decoded(source.fetch_since(&first_answer(&context)).await.unwrap());
    assert_eq!(first.entries.len(), 4);
    let last = LastAnswer {
        context,
        digest: first.answer.clone(),
        trail: first.trail.clone(),
    };
    let asked = sim.state().list_requests;
    match source.fetch_since(&last).await.unwrap() {
        Fetched::Unchanged(same) => assert_eq!(Some(same), first.answer),
        Fetched::Decoded(_) => panic!("the same answer was decoded"),
    }
    assert_eq!(sim.state().list_requests - asked, 1);

    sim.state().phone_usages[1] = usage("+27102851546", "Netaxis DEV");
    let asked = sim.state().list_requests;
    let changed = decoded(source.fetch_since(&last).await.unwrap());
    assert_eq!(
        sim.state().list_requests - asked,
        2,
        "digested, then decoded"
    );
    assert_eq!(covered(&changed)[1], "+27102851546 Trunk=netaxis-dev");
    assert_ne!(changed.answer, first.answer);
    assert_clean(&sim);
}
