//! `dialsync compile` as an operator runs it: the real binary, a CSV in, rules out.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::command;

use dialsync::dialplan::pattern::{best_match, Pattern};
use proptest::prelude::*;

fn run(args: &[&str], input: &str) -> Output {
    let mut child = command()
        .arg("compile")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dialsync");
    let written = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes());
    // A usage error exits before reading standard input: a broken pipe is then expected.
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write csv: {e}");
    }
    child.wait_with_output().expect("wait for dialsync")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SAMPLE: &str = "start,end,tag
+3226127000,+3226127002,Trunk=a
+3226128000,+3226128999,Trunk=b
+3226128500,,Trunk=c
+3201*,,Trunk=p
";

#[test]
fn prints_the_rules_in_canonical_order() {
    let out = run(&[], SAMPLE);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "prefix,tag
+3201,Trunk=p
+322612700[0-2]#,Trunk=a
+3226128[0-4]xx#,Trunk=b
+3226128500#,Trunk=c
+3226128[501-999]#,Trunk=b
"
    );
    assert!(text(&out.stderr).contains("4 entries -> 5 rules (ranges encoding); 0 rejected"));
}

#[test]
fn other_encodings() {
    let out = run(&["--encoding", "prefixes"], SAMPLE);
    assert!(out.status.success());
    let rules = text(&out.stdout);
    assert!(!rules.contains('['), "{rules}");
    // 1000-block with one exception: the block rule and the exception, by longest match.
    assert!(
        rules.contains("+3226128xxx#,Trunk=b\n+3226128500#,Trunk=c\n"),
        "{rules}"
    );
    let out = run(&["--encoding", "numbers"], SAMPLE);
    assert_eq!(text(&out.stdout).lines().count(), 1 + 1 + 3 + 1000);
    let out = run(&["--encoding", "bogus"], SAMPLE);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown encoding \"bogus\""));
}

#[test]
fn refused_lines_and_conflicts_go_to_stderr_with_line_numbers() {
    let input = "start,end,tag
+3210,+3219,T=first
+32a,,T=x
+3215,+3224,T=second
";
    let from_file = tempfile::NamedTempFile::new().expect("temp csv");
    std::fs::write(from_file.path(), input).expect("write temp csv");
    let out = run(&[from_file.path().to_str().expect("utf-8 path")], "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("rejected line 3: number \"+32a\": 'a' at position 3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("conflict: line 2 (+3210..+3219 T=first) and line 4 (+3215..+3224 T=second) both claim +3215..+3219 (5 numbers); line 2 wins"),
        "{stderr}"
    );
    assert_eq!(
        text(&out.stdout),
        "prefix,tag\n+321x#,T=first\n+322[0-4]#,T=second\n"
    );
}

#[test]
fn a_missing_file_or_header_is_an_error_naming_it() {
    let out = command()
        .args(["compile", "/nonexistent/numbers.csv"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot open /nonexistent/numbers.csv"));
    let out = run(&[], "number,tag\n+3210,T=1\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("header start,end,tag"));
}

/// The tag each 5-digit number under +32 should get, by the definition: among the lines
/// holding it, those holding no other; of those, the earliest line.
fn oracle(lines: &[(u64, u64, u8)]) -> Vec<Option<u8>> {
    (32000..33000u64)
        .map(|n| {
            let holding: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].0 <= n && n <= lines[i].1)
                .collect();
            let inside = |a: usize, b: usize| {
                let (x, y) = (lines[a], lines[b]);
                x.0 >= y.0 && x.1 <= y.1 && (x.0, x.1) != (y.0, y.1)
            };
            holding
                .iter()
                .copied()
                .filter(|&a| !holding.iter().any(|&b| b != a && inside(b, a)))
                .min()
                .map(|i| lines[i].2)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random number lists: every number routes (by the SBC's best match over the printed rules)
    /// to the tag the definition gives it, and the ranges encoding prints one rule per maximal
    /// same-tag run.
    #[test]
    fn random_lists_route_as_defined(
        lines in prop::collection::vec((32000u64..33000, 0u64..120, 0u8..3), 1..25)
    ) {
        let lines: Vec<(u64, u64, u8)> =
            lines.into_iter().map(|(lo, span, tag)| (lo, (lo + span).min(32999), tag)).collect();
        let mut csv = String::from("start,end,tag\n");
        for (lo, hi, tag) in &lines {
            csv.push_str(&format!("+{lo},+{hi},Trunk=t{tag}\n"));
        }
        let out = run(&[], &csv);
        prop_assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let rules: Vec<(Pattern, String)> = stdout
            .lines()
            .skip(1)
            .map(|row| {
                let (prefix, tag) = row.rsplit_once(',').expect("prefix,tag");
                (Pattern::parse(prefix).expect("valid prefix"), tag.to_string())
            })
            .collect();
        let expected = oracle(&lines);
        for (n, want) in (32000..33000u64).zip(&expected) {
            let got = best_match(
                rules.iter().enumerate().map(|(i, (p, t))| (i as u32, p, t)),
                &format!("+{n}"),
            )
            .map(|(_, t)| t.clone());
            prop_assert_eq!(got, want.map(|t| format!("Trunk=t{t}")), "+{}\n{}", n, stdout);
        }
        let runs = expected
            .iter()
            .enumerate()
            .filter(|&(i, tag)| tag.is_some() && (i == 0 || expected[i - 1] != *tag))
            .count();
        prop_assert_eq!(rules.len(), runs, "{}", stdout);
    }
}
