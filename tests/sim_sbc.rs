//! The SBC emulator over real HTTP on loopback: it must be as strict as the device, because the
//! sink is only proven against it.

mod common;

use std::time::Duration;

use common::emulators::start_sbc;
use common::loopback::client;
use common::sbc::{admin_and_monitor, sim_rule, ADMIN, MONITOR};
use dialsync::sim::sbc::{SbcSim, SbcState};
use dialsync::sink::audiocodes::cli_script;
use reqwest::{multipart, Client, StatusCode};
use serde_json::Value;

async fn start(state: SbcState) -> SbcSim {
    start_sbc(state, admin_and_monitor()).await
}

async fn put_script(
    sim: &SbcSim,
    user: (&str, &str),
    script: &str,
) -> reqwest::Result<reqwest::Response> {
    let form = multipart::Form::new().part(
        "file",
        multipart::Part::text(script.to_string()).file_name("incremental.txt"),
    );
    client()
        .put(format!("{}/api/v1/files/cliScript/incremental", sim.url()))
        .basic_auth(user.0, Some(user.1))
        .multipart(form)
        .send()
        .await
}

/// A GET of `path` as `user`, its body as text.
async fn get_text(sim: &SbcSim, user: (&str, &str), path: &str) -> String {
    client()
        .get(format!("{}{path}", sim.url()))
        .basic_auth(user.0, Some(user.1))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text")
}

/// The device's status answer.
async fn status(sim: &SbcSim) -> Value {
    let text = get_text(sim, MONITOR, "/api/v1/status").await;
    serde_json::from_str(&text).expect("status is JSON")
}

const ADD_TWO: &str = "configure voip
 sbc dial-plan-rule 0/12
  name \"dialsync\"
  prefix \"+322612700[0-2]#\"
  tag \"Trunk=a\"
  activate
 exit
 sbc dial-plan-rule 0/13
  name \"dialsync\"
  prefix \"+3226128xxx#\"
  tag \"Trunk=b\"
  activate
 exit
exit
";

#[tokio::test]
async fn status_and_credentials() {
    let sim = start(SbcState::with_oc_dial_plan()).await;
    let ok = client()
        .get(format!("{}/api/v1/status", sim.url()))
        .basic_auth(MONITOR.0, Some(MONITOR.1))
        .send()
        .await
        .expect("status");
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.expect("json");
    // The vendor's documented values: strings.
    assert_eq!(body["saveNeeded"], "false");
    assert_eq!(body["upgradeStatus"], "None");
    assert_eq!(body["productType"], "Mediant VE SBC");
    let wrong = client()
        .get(format!("{}/api/v1/status", sim.url()))
        .basic_auth(ADMIN.0, Some("guess"))
        .send()
        .await
        .expect("status");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let anonymous = client()
        .get(format!("{}/api/v1/files/cliScript", sim.url()))
        .send()
        .await
        .expect("script");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(sim.state().unexpected.is_empty());
}

#[tokio::test]
async fn scripts_apply_and_show_in_the_full_configuration() {
    let sim = start(SbcState::with_oc_dial_plan()).await;
    let response = put_script(&sim, ADMIN, ADD_TWO).await.expect("put");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "success");

    let text = get_text(&sim, MONITOR, "/api/v1/files/cliScript").await;
    let plans = cli_script::parse_dial_plans(&text).expect("device script parses");
    let (index, rules) = plans.rules_of("OCDialPlan").expect("OCDialPlan");
    assert_eq!(index, 0);
    let prefixes: Vec<(u32, &str, &str)> = rules
        .iter()
        .map(|r| (r.index, r.prefix.as_str(), r.tag.as_str()))
        .collect();
    assert_eq!(
        prefixes,
        [
            (12, "+322612700[0-2]#", "Trunk=a"),
            (13, "+3226128xxx#", "Trunk=b")
        ]
    );
    assert_eq!(
        sim.state().lookup("OCDialPlan", "+3226128555").as_deref(),
        Some("Trunk=b")
    );

    // Saving needs the Administrator and an empty body, and clears saveNeeded.
    assert_eq!(status(&sim).await["saveNeeded"], "true");
    let save_url = format!("{}/api/v1/actions/saveConfiguration", sim.url());
    let forbidden = client()
        .post(&save_url)
        .header("Content-Length", "0")
        .basic_auth(MONITOR.0, Some(MONITOR.1))
        .send()
        .await
        .expect("save");
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let saved = client()
        .post(&save_url)
        .header("Content-Length", "0")
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("save");
    assert_eq!(saved.status(), StatusCode::OK);
    assert!(!sim.state().save_needed);
    assert!(
        sim.state().unexpected.is_empty(),
        "{:?}",
        sim.state().unexpected
    );
}

/// The shapes real firmware answers in, one switch each: booleans in the status, no `status`
/// in a script's answer (the vendor's own example), 400 for a refused value, a configuration
/// printed with four spaces and no last `exit`; and what a CLI takes, which the emulator takes
/// too: a script with no indentation and no final `exit`.
#[tokio::test]
async fn every_shape_the_firmware_answers_in() {
    let sim = start(SbcState::with_oc_dial_plan()).await;
    {
        let mut state = sim.state();
        state.firmware.status_strings = false;
        state.firmware.answer_status = false;
        state.firmware.refuse_with_400 = true;
        state.firmware.style.indent = 4;
        state.firmware.style.final_exit = false;
        state.upgrade_status = Some("Hitless-beforeSwitchOver".into());
    }
    let answer = status(&sim).await;
    assert_eq!(answer["saveNeeded"], false);
    assert_eq!(answer["upgradeStatus"], "Hitless-beforeSwitchOver");

    let bare = "configure voip\nsbc dial-plan-rule 0/3\nname LivePlatform\nprefix +97239753000\n\
                tag sandbox1.audiocodes.be\nactivate";
    let response = put_script(&sim, ADMIN, bare).await.expect("put");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body.get("status"), None, "{body}");
    assert_eq!(
        body["description"],
        "Incremental CLI Script file was loaded."
    );
    assert_eq!(sim.state().plans[&0].rules.len(), 1);

    let refused = ADD_TWO.replace("Trunk=b", "A;B");
    let response = put_script(&sim, ADMIN, &refused).await.expect("put");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["output"]
            .as_str()
            .expect("output")
            .contains("rule 0/13"),
        "{body}"
    );
    assert_eq!(sim.state().plans[&0].rules.len(), 1, "all or nothing");

    let text = get_text(&sim, MONITOR, "/api/v1/files/cliScript").await;
    assert!(
        text.contains("\n    sbc dial-plan-rule 0/3\n        name \"LivePlatform\"\n"),
        "{text}"
    );
    assert!(!text.trim_end().ends_with("exit\nexit"), "{text}");
    let plans = cli_script::parse_dial_plans(&text).expect("parses");
    let (_, rules) = plans.rules_of("OCDialPlan").expect("OCDialPlan");
    assert_eq!(rules[0].tag, "sandbox1.audiocodes.be");
    // A refused value is the device's answer, not a malformed request: nothing unexpected.
    assert!(
        sim.state().unexpected.is_empty(),
        "{:?}",
        sim.state().unexpected
    );
}

#[tokio::test]
async fn a_monitor_user_cannot_write() {
    let sim = start(SbcState::with_oc_dial_plan()).await;
    let response = put_script(&sim, MONITOR, ADD_TWO).await.expect("put");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(sim.state().plans[&0].rules.is_empty());
}

#[tokio::test]
async fn malformed_scripts_are_400_and_bad_rules_fail_the_whole_script() {
    let sim = start(SbcState::with_oc_dial_plan()).await;
    let syntax = put_script(
        &sim,
        ADMIN,
        "configure voip\n sbc dial-plan-rul 0/1\nexit\n",
    )
    .await
    .expect("put");
    assert_eq!(syntax.status(), StatusCode::BAD_REQUEST);
    assert!(syntax.text().await.expect("text").contains("line 2"));

    // The second rule's prefix is invalid: nothing of the script may land.
    let bad = ADD_TWO.replace("+3226128xxx#", "+32[1-");
    let response = put_script(&sim, ADMIN, &bad).await.expect("put");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "failure");
    assert!(
        body["output"]
            .as_str()
            .expect("output")
            .contains("rule 0/13"),
        "{body}"
    );
    assert!(sim.state().plans[&0].rules.is_empty(), "all or nothing");

    // Deleting a rule that does not exist, or writing a plan that does not exist.
    let missing = put_script(
        &sim,
        ADMIN,
        "configure voip\n no sbc dial-plan-rule 0/99\nexit\n",
    )
    .await
    .expect("put");
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["status"], "failure");
    let no_plan = ADD_TWO.replace("0/12", "5/12");
    let body: Value = put_script(&sim, ADMIN, &no_plan)
        .await
        .expect("put")
        .json()
        .await
        .expect("json");
    assert_eq!(body["status"], "failure");

    // Over rules that exist: an edit and a delete, then a bad rule. Both are undone.
    let good = put_script(&sim, ADMIN, ADD_TWO).await.expect("put");
    let body: Value = good.json().await.expect("json");
    assert_eq!(body["status"], "success", "{body}");
    let before = sim.state().plans[&0].rules.clone();
    let spoilt = "configure voip
 sbc dial-plan-rule 0/12
  tag \"Trunk=moved\"
 exit
 no sbc dial-plan-rule 0/13
 sbc dial-plan-rule 0/14
  name \"dialsync\"
  prefix \"+32[1-\"
 exit
exit
";
    let body: Value = put_script(&sim, ADMIN, spoilt)
        .await
        .expect("put")
        .json()
        .await
        .expect("json");
    assert_eq!(body["status"], "failure", "{body}");
    assert_eq!(sim.state().plans[&0].rules, before, "all or nothing");
}

#[tokio::test]
async fn saving_with_a_body_is_refused_and_recorded() {
    let sim = start(SbcState::with_oc_dial_plan()).await;
    let response = client()
        .post(format!("{}/api/v1/actions/saveConfiguration", sim.url()))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .body("{}")
        .send()
        .await
        .expect("save");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sim.state().unexpected.len(), 1);
}

#[tokio::test]
async fn injected_faults() {
    let sim = start(SbcState::with_oc_dial_plan()).await;
    {
        let mut state = sim.state();
        state.faults.busy_writes = 2;
        state.faults.retry_after_secs = Some(3);
    }
    for _ in 0..2 {
        let busy = put_script(&sim, ADMIN, ADD_TWO).await.expect("put");
        assert_eq!(busy.status(), StatusCode::CONFLICT);
        assert_eq!(
            busy.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"3"[..])
        );
    }
    // Applied, but the answer never comes: the client cannot tell.
    sim.state().faults.drop_after_apply = 1;
    let dropped = put_script(&sim, ADMIN, ADD_TWO).await;
    assert!(dropped.is_err(), "connection should drop: {dropped:?}");
    assert_eq!(sim.state().plans[&0].rules.len(), 2);
    assert_eq!(sim.state().applied_scripts, 1);

    // Out-of-band edit (someone on the device's web UI) and an unknown endpoint.
    sim.state()
        .plans
        .get_mut(&0)
        .expect("plan")
        .rules
        .insert(40, sim_rule("manual", "+3226128500#", "Trunk=hand"));
    assert_eq!(
        sim.state().lookup("OCDialPlan", "+3226128500").as_deref(),
        Some("Trunk=hand")
    );
    let unknown = client()
        .get(format!("{}/api/v1/files/ini", sim.url()))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("get");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        sim.state().unexpected,
        ["GET /api/v1/files/ini: no such endpoint"]
    );
}

#[tokio::test]
async fn dropping_the_emulator_stops_its_server() {
    let sim = start(SbcState::with_oc_dial_plan()).await;
    let url = format!("{}/api/v1/status", sim.url());
    let up = client().get(&url).send().await.expect("served");
    assert_eq!(up.status(), StatusCode::UNAUTHORIZED);
    drop(sim);
    // Shutdown is asynchronous: give it a moment, then a new connection must be refused.
    let mut refused = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let fresh = Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        if fresh.get(&url).send().await.is_err() {
            refused = true;
            break;
        }
    }
    assert!(
        refused,
        "the server still answers after the emulator was dropped"
    );
}
