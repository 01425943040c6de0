//! `dialsync lookup` at scale and the admin port's `/lookup`, against the emulators: a file
//! of numbers with a bad line, the CSV and JSON Lines rows with their verdicts, and the
//! daemon answering from its last cycle.
//!
//! The rig's SBC holds Live Platform's own rule `+97239753000` (no `#`, tag
//! `sandbox1.audiocodes.be`); the static file is made to assign that number's block, so the
//! foreign rule shadows it. A hand edit of one of dialsync's rules on the SBC, read back by
//! `dialsync plan` (which writes nothing), misroutes a globex number, and the static range's
//! rule deleted by hand leaves its numbers desired and unrouted.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::daemon::Daemon;
use common::{command, Out, Rig};
use serde_json::Value;

const NUMBERS: &str = "# numbers to check\n\
+3226120042\n\
+97239753000\n\
\n\
  +3226130007  \n\
+3225000005\n\
12ab\n\
+3299\n";

/// The rig after a sync, a hand edit of globex's rule and the static range's rule deleted by
/// hand, read back by a `plan` that writes nothing.
fn drifted_rig() -> Rig {
    let rig = Rig::start();
    rig.write(
        "static.csv",
        "start,end,tag\n+3225000000,+3225000009,Trunk=static\n\
         +97239753000,+97239753009,Trunk=static\n",
    );
    let sync = rig.dialsync(&["sync"]);
    assert_eq!(sync.code, Some(0), "{sync}");
    {
        let mut sbc = rig.sbc.state();
        let plan = sbc.plans.get_mut(&0).expect("OCDialPlan");
        let globex = plan
            .rules
            .values_mut()
            .find(|r| r.name == "dialsync" && r.tag == "Trunk=globex")
            .expect("dialsync wrote globex's rule");
        globex.tag = "Trunk=edited".to_string();
        let static_rule = plan
            .rules
            .iter()
            .find(|(_, r)| r.name == "dialsync" && r.prefix.starts_with("+322500000"))
            .map(|(index, _)| *index)
            .expect("dialsync wrote the static range's rule");
        plan.rules.remove(&static_rule);
    }
    let plan = rig.dialsync(&["plan"]);
    assert_eq!(plan.code, Some(2), "the plan would repair and add: {plan}");
    rig
}

fn lookup_file(rig: &Rig, format: &[&str]) -> Out {
    rig.write("numbers.txt", NUMBERS);
    let file = rig.path("numbers.txt");
    let mut args = vec!["lookup", "--file", file.to_str().expect("UTF-8 path")];
    args.extend_from_slice(format);
    rig.dialsync(&args)
}

#[test]
fn a_file_of_numbers_gives_one_csv_row_each_with_its_verdict_and_names_the_bad_line() {
    let rig = drifted_rig();
    let out = lookup_file(&rig, &["--csv"]);
    assert_eq!(out.code, Some(1), "a bad line makes the exit code 1: {out}");
    assert!(
        out.stderr.contains("line 7: \"12ab\" is not a number: "),
        "{out}"
    );
    let mut rows = csv::Reader::from_reader(out.stdout.as_bytes());
    let header: Vec<String> = rows
        .headers()
        .expect("a header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(
        header,
        [
            "line",
            "number",
            "rule_index",
            "name",
            "prefix",
            "tag",
            "owner",
            "desired_tag",
            "source",
            "item",
            "verdict",
            "error"
        ]
    );
    let rows: Vec<csv::StringRecord> = rows.records().map(|r| r.expect("a row")).collect();
    let column = |row: &csv::StringRecord, name: &str| -> String {
        let at = header.iter().position(|h| h == name).expect("a column");
        row[at].to_string()
    };
    let verdicts: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (column(r, "line"), column(r, "number"), column(r, "verdict")))
        .collect();
    let expected = [
        ("2", "+3226120042", "routed"),
        ("3", "+97239753000", "shadowed"),
        ("5", "+3226130007", "misrouted"),
        ("6", "+3225000005", "unrouted"),
        ("7", "12ab", "bad-line"),
        ("8", "+3299", "not-desired"),
    ]
    .map(|(l, n, v)| (l.to_string(), n.to_string(), v.to_string()));
    assert_eq!(verdicts, expected, "{out}");

    let shadowed = &rows[1];
    assert_eq!(column(shadowed, "rule_index"), "0");
    assert_eq!(column(shadowed, "name"), "LivePlatform");
    assert_eq!(column(shadowed, "prefix"), "+97239753000");
    assert_eq!(column(shadowed, "tag"), "sandbox1.audiocodes.be");
    assert_eq!(column(shadowed, "owner"), "foreign");
    assert_eq!(column(shadowed, "desired_tag"), "Trunk=static");
    assert_eq!(column(shadowed, "source"), "static");
    assert_eq!(column(shadowed, "item"), "line 3");
    let routed = &rows[0];
    assert_eq!(column(routed, "owner"), "dialsync");
    assert_eq!(column(routed, "tag"), "Trunk=acme");
    assert_eq!(column(routed, "source"), "fusion");
    assert!(column(routed, "item").contains("+3226120042"), "{out}");
    let misrouted = &rows[2];
    assert_eq!(
        (column(misrouted, "tag"), column(misrouted, "desired_tag")),
        ("Trunk=edited".to_string(), "Trunk=globex".to_string())
    );
    let unrouted = &rows[3];
    assert_eq!(column(unrouted, "rule_index"), "");
    assert_eq!(column(unrouted, "desired_tag"), "Trunk=static");
    assert!(column(&rows[4], "error").contains("position 2"), "{out}");
    assert_eq!(column(&rows[5], "desired_tag"), "");
}

#[test]
fn json_lines_for_a_file_text_for_people_and_csv_for_arguments() {
    let rig = drifted_rig();
    let out = lookup_file(&rig, &["--json"]);
    assert_eq!(out.code, Some(1), "{out}");
    let rows: Vec<Value> = out
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect();
    assert_eq!(rows.len(), 6, "{out}");
    assert_eq!(rows[1]["number"], "+97239753000");
    assert_eq!(rows[1]["verdict"], "shadowed");
    assert_eq!(rows[1]["owner"], "foreign");
    assert_eq!(rows[1]["rule_index"], 0);
    assert_eq!(rows[1]["line"], 3);
    assert_eq!(rows[2]["verdict"], "misrouted");
    assert_eq!(rows[3]["verdict"], "unrouted");
    assert_eq!(rows[3]["tag"], Value::Null);
    assert_eq!(rows[4]["verdict"], "bad-line");
    assert_eq!(rows[4]["number"], "12ab");
    assert_eq!(rows[5]["verdict"], "not-desired");

    let text = lookup_file(&rig, &[]);
    assert_eq!(text.code, Some(1), "{text}");
    assert!(
        text.stdout
            .starts_with("+3226120042\n  SBC routes it by rule "),
        "{text}"
    );
    assert!(
        text.stdout.contains(
            "NOT IN SYNC: rule 0 is not dialsync's and wins at best match; dialsync leaves \
             it alone, so only its owner can change this"
        ),
        "{text}"
    );
    assert!(text.stderr.contains("line 7: \"12ab\""), "{text}");

    // Stdin, and numbers as arguments: all good, exit 0.
    let mut child = command()
        .args(["lookup", "--file", "-", "--csv", "--config"])
        .arg(rig.config_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dialsync runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"+3226120042\n+3225000005\n")
        .expect("write stdin");
    let piped = Out::of(child.wait_with_output().expect("dialsync finishes"));
    assert_eq!(piped.code, Some(0), "{piped}");
    assert_eq!(piped.stdout.lines().count(), 3, "{piped}");
    assert!(piped.stdout.contains(",routed,"), "{piped}");

    let args = rig.dialsync(&["lookup", "--csv", "+3226130007", "+3299"]);
    assert_eq!(args.code, Some(0), "{args}");
    let lines: Vec<&str> = args.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{args}");
    assert!(lines[1].starts_with(",+3226130007,"), "{args}");
    assert!(lines[1].ends_with(",misrouted,"), "{args}");
    assert!(lines[2].ends_with(",not-desired,"), "{args}");

    // The array of answers for arguments keeps its shape, with the verdict beside in_sync.
    let json = rig.dialsync(&["lookup", "--json", "+97239753000"]);
    assert_eq!(json.code, Some(0), "{json}");
    let answer = &json.json()[0];
    assert_eq!(answer["verdict"], "shadowed", "{json}");
    assert_eq!(answer["in_sync"], false, "{json}");
    assert_eq!(answer["desired"]["tag"], "Trunk=static", "{json}");

    let missing = rig.dialsync(&["lookup", "--file", "/nonexistent/numbers.txt"]);
    assert_eq!(missing.code, Some(1), "{missing}");
    assert!(
        missing
            .stderr
            .contains("cannot read /nonexistent/numbers.txt"),
        "{missing}"
    );
}

#[test]
fn the_admin_port_looks_numbers_up_in_the_last_cycle() {
    let rig = drifted_rig();
    let daemon = Daemon::start(&rig.config_path());
    daemon.wait_cycles(1);
    let (code, body) = daemon.get("/lookup?number=%2B3226120042&number=%2B97239753000");
    assert_eq!(code, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    let answers = answer["answers"].as_array().expect("answers");
    assert_eq!(answers.len(), 2, "{body}");
    assert_eq!(answers[0]["number"], "+3226120042");
    assert_eq!(answers[0]["verdict"], "routed");
    assert_eq!(answers[0]["tag"], "Trunk=acme");
    assert_eq!(answers[1]["number"], "+97239753000");
    assert_eq!(answers[1]["verdict"], "shadowed", "{body}");
    assert_eq!(answers[1]["name"], "LivePlatform");
    assert_eq!(answers[1]["owner"], "foreign");

    // The daemon's cycle repaired both hand edits.
    let (code, body) = daemon.get("/lookup?number=%2B3226130007&number=%2B3225000005");
    assert_eq!(code, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["answers"][0]["verdict"], "routed", "{body}");
    assert_eq!(answer["answers"][1]["verdict"], "routed", "{body}");

    let (code, body) = daemon.get("/lookup?number=%2B3226120042&number=12ab");
    assert_eq!(code, 400, "{body}");
    let refusal: Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(refusal["number"], "12ab", "{body}");
    assert!(
        refusal["error"]
            .as_str()
            .is_some_and(|e| e.contains("\"12ab\" is not a number")),
        "{body}"
    );
    let (code, body) = daemon.get("/lookup");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("give at least one number"), "{body}");
    let (status, _, _) = daemon.stop();
    assert!(status.success(), "{status}");
}
