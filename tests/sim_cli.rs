//! `dialsync sim sbc` as a staging engineer runs it: the real binary, on a free port, keeping
//! its dial plans in a state file across restarts (even a SIGKILL).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use dialsync::sink::cli_script;
use reqwest::multipart;

/// Starts the emulator and returns it with its URL, read from its first line of output.
fn start(state: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dialsync"))
        .args([
            "sim",
            "sbc",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "ops:pw",
            "--state",
        ])
        .arg(state)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start dialsync sim sbc");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (child, url)
}

async fn rules(url: &str) -> Vec<(u32, String)> {
    let text = reqwest::Client::new()
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
    let response = reqwest::Client::new()
        .put(format!("{url}/api/v1/files/cliScript/incremental"))
        .basic_auth("ops", Some("pw"))
        .multipart(multipart::Form::new().part("file", multipart::Part::text(script)))
        .send()
        .await
        .expect("put");
    assert!(response.status().is_success());
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");

    let (mut second, url) = start(&state);
    assert_eq!(rules(&url).await, [(3, "+3226127xxx#".to_string())]);
    second.kill().expect("SIGKILL");
    second.wait().expect("reaped");
}

#[test]
fn a_bad_state_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("sbc.json");
    std::fs::write(&state, "not json").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_dialsync"))
        .args(["sim", "sbc", "--listen", "127.0.0.1:0", "--state"])
        .arg(&state)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sbc.json is not valid JSON"), "{stderr}");
}
