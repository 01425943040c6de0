//! `dialsync sim` as a staging engineer runs it: the real binary, on a free port. The SBC keeps
//! its dial plans in a state file across restarts (even a SIGKILL); Fusion, APIO and Live
//! Platform serve the demo data files in config/demo/, read back through the real sources.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::command;
use common::loopback::client;
use common::source::tag_rule;
use dialsync::net::oauth::ClientCredentials;
use dialsync::net::secret::Secret;
use dialsync::resolve::{resolve, Entry};
use dialsync::sink::audiocodes::cli_script;
use dialsync::source::apio::{ApioAuth, ApioConfig, ApioGroup, ApioSource};
use dialsync::source::fusion::{
    FusionAuth, FusionConfig, FusionFeed, FusionSource, OcSubscription, OC_TAG_FIELDS,
};
use dialsync::source::http::HttpConfig;
use dialsync::source::livecloud::{LiveCloudSource, LiveCloudSourceConfig};
use dialsync::source::SourceEntries;
use reqwest::multipart;
use serde_json::Value;

/// Starts `dialsync sim sbc` keeping its dial plans in `state`, and returns it with its URL.
fn start(state: &Path) -> (Running, String) {
    let (running, line) = listening(
        command()
            .args(["sim", "sbc", "--listen", "127.0.0.1:0"])
            .args(["--admin", "ops:pw", "--state"])
            .arg(state),
    );
    (running, url_in(&line))
}

/// Spawns `command` (a `dialsync sim`) and returns it with the first line it prints, which
/// says where it listens.
fn listening(command: &mut Command) -> (Running, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("start dialsync sim");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    (running, line)
}

/// The URL in a line of output.
fn url_in(line: &str) -> String {
    line.split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string()
}

async fn rules(url: &str) -> Vec<(u32, String)> {
    let text = client()
        .get(format!("{url}/api/v1/files/cliScript"))
        .basic_auth("ops", Some("pw"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    let plans = cli_script::parse_dial_plans(&text).expect("parses");
    let (_, rules) = plans.rules_of("OCDialPlan").expect("OCDialPlan");
    rules.into_iter().map(|r| (r.index, r.prefix)).collect()
}

#[tokio::test]
async fn the_emulator_keeps_its_dial_plans_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("sbc.json");
    let (mut first, url) = start(&state);
    assert!(
        rules(&url).await.is_empty(),
        "a new device has an empty OCDialPlan"
    );
    let script = "configure voip\n sbc dial-plan-rule 0/3\n  name \"dialsync\"\n  prefix \"+3226127xxx#\"\n  tag \"Trunk=a\"\n  activate\n exit\nexit\n";
    let response = client()
        .put(format!("{url}/api/v1/files/cliScript/incremental"))
        .basic_auth("ops", Some("pw"))
        .multipart(multipart::Form::new().part("file", multipart::Part::text(script)))
        .send()
        .await
        .expect("put");
    assert!(response.status().is_success());
    first.0.kill().expect("SIGKILL");
    first.0.wait().expect("reaped");

    let (mut second, url) = start(&state);
    assert_eq!(rules(&url).await, [(3, "+3226127xxx#".to_string())]);
    second.0.kill().expect("SIGKILL");
    second.0.wait().expect("reaped");
}

#[test]
fn a_bad_state_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("sbc.json");
    std::fs::write(&state, "not json").expect("write");
    let out = command()
        .args(["sim", "sbc", "--listen", "127.0.0.1:0", "--state"])
        .arg(&state)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sbc.json is not valid JSON"), "{stderr}");
}

/// A running `dialsync sim <kind>`, stopped (SIGKILL) when dropped so that a failing
/// assertion leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn demo_file(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/demo")
        .join(format!("{kind}.json"))
}

/// The data file as plain JSON, read independently of the emulator's own loader.
fn demo_data(kind: &str) -> Value {
    let text = std::fs::read_to_string(demo_file(kind)).expect("demo file");
    serde_json::from_str(&text).expect("demo file is JSON")
}

/// Starts `dialsync sim <kind> --data <demo file>` and returns it with its URL, read from its
/// first line of output.
fn start_sim(kind: &str) -> (Running, String) {
    let (running, line) = listening(
        command()
            .args(["sim", kind, "--listen", "127.0.0.1:0", "--data"])
            .arg(demo_file(kind)),
    );
    assert!(
        line.starts_with(&format!("dialsync sim {kind}: listening on http://")),
        "{line:?}"
    );
    (running, url_in(&line))
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no text {key} in {value}"))
}

fn http() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        max_body: 16 * 1024 * 1024,
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(50),
        retry_budget: Duration::from_millis(500),
    }
}

fn covered(out: &SourceEntries) -> Vec<String> {
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    common::source::covered(out)
}

/// Fusion tenant names hold spaces, which tags may not: the demo makes a tag of each with
/// `{tenant:slug}`, which for these names lowercases them and joins their words with `-`.
fn fusion_tag(tenant: &str) -> String {
    format!("Trunk={}", tenant.to_lowercase().replace(' ', "-"))
}

/// The demo's Teams subscription, tagged as the demo tags it.
fn oc_feed(data: &Value) -> FusionFeed {
    let subscriptions = data["oc_subscriptions"]
        .as_array()
        .expect("oc_subscriptions")
        .iter()
        .map(|s| OcSubscription {
            tenant: text(s, "tenant").into(),
            subscription: text(s, "subscription").into(),
            tags: tag_rule("Trunk=vlissinghe", OC_TAG_FIELDS, &[]),
        })
        .collect();
    FusionFeed::OcNumbers {
        subscriptions,
        include_unprovisioned: false,
    }
}

async fn fetch_fusion(url: &str, data: &Value, feed: FusionFeed) -> SourceEntries {
    let template = match feed {
        FusionFeed::PhoneUsage => "Trunk={tenant:slug}",
        FusionFeed::Ranges { .. } => "Trunk=fusion-ranges",
        // Each subscription carries its own rule; the source's is not used.
        FusionFeed::OcNumbers { .. } => "Trunk={tenant}",
    };
    let mut config = FusionConfig::new(
        "fusion",
        url,
        text(data, "draas_instance"),
        text(data, "group_uuid"),
        FusionAuth::Login {
            username: text(data, "username").into(),
            password: Secret::new(text(data, "password")),
        },
        tag_rule(template, dialsync::source::fusion::TAG_FIELDS, &[]),
    );
    config.feed = feed;
    config.http = http();
    FusionSource::new(config)
        .expect("source")
        .fetch()
        .await
        .expect("fetch")
}

async fn fetch_apio(url: &str, data: &Value) -> SourceEntries {
    let groups = data["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| ApioGroup {
            tenant: text(g, "tenant").into(),
            group: text(g, "group").into(),
            tags: tag_rule("Trunk={tenant}", dialsync::source::apio::TAG_FIELDS, &[]),
        })
        .collect();
    let auth = ApioAuth::Jwt {
        username: text(data, "username").into(),
        password: Secret::new(text(data, "password")),
        proxy_prefix: text(data, "proxy_prefix").into(),
    };
    let mut config = ApioConfig::new("apio", url, auth, groups);
    config.http = http();
    ApioSource::new(config)
        .expect("source")
        .fetch()
        .await
        .expect("fetch")
}

async fn fetch_livecloud(url: &str, data: &Value) -> SourceEntries {
    let tenants = data["tenants"].as_object().expect("tenants");
    let credentials = ClientCredentials {
        token_url: format!("{url}/oauth2/v2.0/token"),
        client_id: text(data, "client_id").into(),
        client_secret: Secret::new(text(data, "client_secret")),
        scope: text(data, "scope").into(),
    };
    let mut config = LiveCloudSourceConfig::new(
        "live",
        url,
        credentials,
        tenants.keys().cloned().collect(),
        tag_rule(
            "Trunk={tenant_id}",
            dialsync::source::livecloud::TAG_FIELDS,
            &[],
        ),
    );
    // Pages of 2 so that even the small demo tenant takes several pages.
    config.page_size = 2;
    config.http = http();
    LiveCloudSource::new(config)
        .expect("source")
        .fetch()
        .await
        .expect("fetch")
}

#[tokio::test]
async fn sim_fusion_serves_its_data_file() {
    let data = demo_data("fusion");
    let (_sim, url) = start_sim("fusion");
    let out = fetch_fusion(&url, &data, FusionFeed::PhoneUsage).await;
    let want: Vec<String> = data["phoneUsages"]
        .as_array()
        .expect("phoneUsages")
        .iter()
        .map(|u| {
            format!(
                "{} {}",
                text(u, "phoneNumber"),
                fusion_tag(text(u, "tenant"))
            )
        })
        .collect();
    assert!(want.len() > 10, "the demo pages through more than one page");
    assert_eq!(covered(&out), want);

    let feed = FusionFeed::Ranges {
        path: text(&data, "ranges_path").into(),
    };
    let out = fetch_fusion(&url, &data, feed).await;
    let want: Vec<String> = data["ranges"]
        .as_array()
        .expect("ranges")
        .iter()
        .map(|r| {
            let cc = text(r, "countryCode");
            format!(
                "+{cc}{}..+{cc}{} Trunk=fusion-ranges",
                r["rangeStart"], r["rangeEnd"]
            )
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(covered(&out), want);

    // The Operator Connect numbers: those on Teams, wherever their number is written.
    let out = fetch_fusion(&url, &data, oc_feed(&data)).await;
    let mut want = Vec::new();
    let mut unprovisioned = 0;
    for subscription in data["oc_subscriptions"].as_array().expect("subscriptions") {
        for n in subscription["numbers"].as_array().expect("numbers") {
            if n["msTeams"]["provisionedOnMSTeams"] == true {
                want.push(format!(
                    "{} Trunk=vlissinghe",
                    text(&n["msTeams"], "number")
                ));
            } else {
                unprovisioned += 1;
            }
        }
    }
    assert!(
        unprovisioned > 0,
        "the demo shows a number not yet on Teams"
    );
    assert_eq!(covered(&out), want);
}

/// The coverage an APIO item stands for, as the crate prints it, or `None` when inactive.
fn apio_item(item: &Value) -> Option<String> {
    if item["active"] != Value::Bool(true) {
        return None;
    }
    if let Some(prefix) = item.get("prefix") {
        let digits: String = prefix
            .as_str()
            .expect("prefix")
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        assert_eq!(
            text(item, "extensionRangeStart"),
            "",
            "demo prefixes are open"
        );
        return Some(format!("+{digits}*"));
    }
    let (min, max) = (text(item, "minPhoneNumber"), text(item, "maxPhoneNumber"));
    Some(if max.is_empty() || max == min {
        min.to_string()
    } else {
        format!("{min}..{max}")
    })
}

#[tokio::test]
async fn sim_apio_serves_its_data_file() {
    let data = demo_data("apio");
    let (_sim, url) = start_sim("apio");
    let out = fetch_apio(&url, &data).await;
    let mut want = Vec::new();
    let mut inactive = 0;
    for group in data["groups"].as_array().expect("groups") {
        let tag = format!("Trunk={}", text(group, "tenant"));
        for list in ["numbers", "prefixes"] {
            for item in group[list].as_array().expect("list") {
                match apio_item(item) {
                    Some(coverage) => want.push(format!("{coverage} {tag}")),
                    None => inactive += 1,
                }
            }
        }
    }
    assert!(
        inactive > 0,
        "the demo shows an inactive item being left out"
    );
    assert_eq!(covered(&out), want);
}

#[tokio::test]
async fn sim_livecloud_serves_its_data_file() {
    let data = demo_data("livecloud");
    let (_sim, url) = start_sim("livecloud");
    let out = fetch_livecloud(&url, &data).await;
    let mut want = Vec::new();
    let (mut null, mut released) = (0, 0);
    for (tenant, numbers) in data["tenants"].as_object().expect("tenants") {
        for n in numbers.as_array().expect("numbers") {
            // The vendor's examples carry a null status for numbers in service.
            match n["acquiredNumberStatus"].as_str() {
                None => {
                    null += 1;
                    want.push(format!("{} Trunk={tenant}", text(n, "telephoneNumber")));
                }
                Some("Active") => {
                    want.push(format!("{} Trunk={tenant}", text(n, "telephoneNumber")));
                }
                Some(_) => released += 1,
            }
        }
    }
    assert!(null > 0, "the demo serves the vendor's shape, status null");
    assert!(
        released > 0,
        "the demo shows a released number being left out"
    );
    assert_eq!(covered(&out), want);

    // The dial plan holds the file's rules.
    let credentials = [
        ("grant_type", "client_credentials"),
        ("client_id", text(&data, "client_id")),
        ("client_secret", text(&data, "client_secret")),
        ("scope", text(&data, "scope")),
    ];
    let client = client();
    let token: Value = client
        .post(format!("{url}/oauth2/v2.0/token"))
        .form(&credentials)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token JSON");
    let plan: Value = client
        .get(format!(
            "{url}/api/v2/customer/{}/sitelocation/{}/dialplan/{}",
            text(&data, "customer_id"),
            text(&data, "site_location_id"),
            text(&data, "dial_plan_id")
        ))
        .bearer_auth(text(&token, "access_token"))
        .send()
        .await
        .expect("dial plan")
        .json()
        .await
        .expect("dial plan JSON");
    assert_eq!(plan["ruleDTO"], data["rules"]);
}

/// The demo's sources are disjoint but for one deliberate overlap: a number that Fusion and
/// APIO both assign, with different tags, which the demo reports as a conflict.
#[tokio::test]
async fn the_demo_data_overlaps_in_exactly_one_number() {
    let (fusion_data, apio_data, live_data) = (
        demo_data("fusion"),
        demo_data("apio"),
        demo_data("livecloud"),
    );
    let (_fusion, fusion_url) = start_sim("fusion");
    let (_apio, apio_url) = start_sim("apio");
    let (_live, live_url) = start_sim("livecloud");
    let ranges = FusionFeed::Ranges {
        path: text(&fusion_data, "ranges_path").into(),
    };
    let mut entries: Vec<Entry> = Vec::new();
    for out in [
        fetch_fusion(&fusion_url, &fusion_data, FusionFeed::PhoneUsage).await,
        fetch_fusion(&fusion_url, &fusion_data, oc_feed(&fusion_data)).await,
        fetch_fusion(&fusion_url, &fusion_data, ranges).await,
        fetch_apio(&apio_url, &apio_data).await,
        fetch_livecloud(&live_url, &live_data).await,
    ] {
        entries.extend(out.entries);
    }
    let resolution = resolve(&entries);
    assert_eq!(resolution.conflicts.len(), 1, "{:?}", resolution.conflicts);
    let conflict = &resolution.conflicts[0];
    assert_eq!(conflict.first.to_string(), "+3226134009");
    assert_eq!(conflict.numbers, 1);
    assert_eq!(&*entries[conflict.winner].provenance.source, "fusion");
    assert_eq!(&*entries[conflict.loser].provenance.source, "apio");
}

#[test]
fn a_bad_data_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    for kind in ["fusion", "apio", "livecloud"] {
        // A key the format does not have: a typo must not be silently ignored.
        let mut data = demo_data(kind);
        data["page_sise"] = Value::from(10);
        let typo = dir.path().join(format!("{kind}-typo.json"));
        std::fs::write(&typo, data.to_string()).expect("write");
        let broken = dir.path().join(format!("{kind}-broken.json"));
        std::fs::write(&broken, "{\n\n  oops\n}\n").expect("write");
        for (file, reason) in [
            (&typo, "unknown field `page_sise`"),
            (&broken, "line 3 column 3"),
        ] {
            let out = command()
                .args(["sim", kind, "--listen", "127.0.0.1:0", "--data"])
                .arg(file)
                .output()
                .expect("run");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{kind}: {stderr}");
            assert!(out.stdout.is_empty(), "{kind}: never listened");
            let name = file.file_name().and_then(|n| n.to_str()).expect("name");
            assert!(stderr.contains(name), "{stderr}");
            assert!(stderr.contains(reason), "{stderr}");
        }
    }
}

#[test]
fn sigterm_stops_a_data_emulator_cleanly() {
    let (mut sim, _url) = start_sim("apio");
    let killed = Command::new("kill")
        .args(["-TERM", &sim.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = sim.0.wait().expect("reaped");
    assert!(status.success(), "{status:?}");
}
