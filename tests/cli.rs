//! The one-shot commands as an operator or a timer runs them: the real binary against the
//! emulators over loopback, judged by its exit codes (DESIGN.md §7's contract with scripts),
//! its output, and what the emulated SBC ends up holding.

mod common;

use common::binary::line_of;
use common::dir::chmod;
use common::sbc::{sim_rule, CHECK_ONLY_UNREADABLE, SBC_PASSWORD};
use common::{command, run, Rig, Settings};
use dialsync::sim::fusion::Fault;

use serde_json::Value;

/// The checksum `sync` prints in its `apply --force --checksum` hint.
fn checksum_in(text: &str) -> String {
    let at = text
        .find("--checksum ")
        .unwrap_or_else(|| panic!("no checksum in:\n{text}"));
    text[at + "--checksum ".len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

/// adds + modifies + deletes of a `plan --json` answer.
fn op_count(plan: &Value) -> u64 {
    ["adds", "modifies", "deletes"]
        .iter()
        .map(|k| plan["counts"][k].as_u64().expect("a count"))
        .sum()
}

/// `history`'s rows as whitespace-separated words, header left out.
fn history_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[test]
fn sync_first_then_nothing_then_the_minimal_churn() {
    let rig = Rig::start();

    // --config is global: before the subcommand here, after it everywhere else.
    let first = rig.dialsync_config_first(&["sync"]);
    assert_eq!(first.code, Some(0), "{first}");
    assert!(
        first
            .stdout
            .contains("synced: 3 added, 0 modified, 0 deleted; 3 rules owned"),
        "{first}"
    );
    assert!(
        first
            .stdout
            .contains("source fusion (fusion): ok, 150 entries"),
        "{first}"
    );
    assert_eq!(rig.sbc_tag("+3226120042").as_deref(), Some("Trunk=acme"));
    assert_eq!(rig.sbc_tag("+3226130049").as_deref(), Some("Trunk=globex"));
    assert_eq!(rig.sbc_tag("+3225000005").as_deref(), Some("Trunk=static"));
    assert_eq!(rig.sbc_tag("+3222555").as_deref(), Some("Trunk=pbx"));
    assert_eq!(rig.owned_rules().len(), 3);

    let writes = rig.writes();
    let seen = rig.sbc.state().requests.len();
    let second = rig.dialsync(&["sync"]);
    assert_eq!(second.code, Some(0), "{second}");
    assert!(
        second.stdout.starts_with("in sync: 3 rules owned"),
        "{second}"
    );
    let asked = rig.sbc.state().requests[seen..].to_vec();
    assert!(
        !asked.is_empty() && asked.iter().all(|r| r.starts_with("GET ")),
        "a no-change sync only reads: {asked:?}"
    );

    // One number leaves the middle of acme's run: its rule becomes two.
    rig.fusion
        .state()
        .phone_usages
        .retain(|u| u["phoneNumber"] != "+3226120050");
    let plan = rig.dialsync(&["plan", "--json"]);
    assert_eq!(plan.code, Some(2), "changes to make: {plan}");
    let shown = plan.json();
    assert_eq!(shown["blocked"], false);
    assert_eq!(op_count(&shown), 2, "{shown:#}");
    assert_eq!(rig.writes(), writes, "plan writes nothing");

    let churn = rig.dialsync(&["sync"]);
    assert_eq!(churn.code, Some(0), "{churn}");
    assert!(
        churn
            .stdout
            .contains("synced: 1 added, 1 modified, 0 deleted; 4 rules owned"),
        "{churn}"
    );
    assert_eq!(rig.writes(), writes + 1, "both ops in one script");
    assert_eq!(rig.sbc_tag("+3226120050"), None);
    assert_eq!(rig.sbc_tag("+3226120049").as_deref(), Some("Trunk=acme"));
    assert_eq!(rig.sbc_tag("+3226120051").as_deref(), Some("Trunk=acme"));

    // Newest first: the churn, the plan (a dry run), the no-change sync, the first sync.
    let history = rig.dialsync(&["history", "--limit", "5"]);
    assert_eq!(history.code, Some(0), "{history}");
    let rows = history_rows(&history.stdout);
    assert_eq!(rows.len(), 4, "{history}");
    assert!(rows[0][0].ends_with('Z'), "an RFC 3339 time: {history}");
    let counts: Vec<String> = rows.iter().map(|r| r[3..6].join(" ")).collect();
    assert_eq!(counts, ["1 1 0", "0 0 0", "0 0 0", "3 0 0"], "{history}");
    let outcomes: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(
        outcomes,
        ["converged", "planned", "converged", "converged"],
        "{history}"
    );
    let limited = rig.dialsync(&["history", "--limit", "2"]);
    assert_eq!(history_rows(&limited.stdout).len(), 2, "{limited}");

    // DIALSYNC_CONFIG stands in for --config.
    let status = run(command()
        .arg("status")
        .env("DIALSYNC_CONFIG", rig.config_path()));
    assert_eq!(status.code, Some(0), "{status}");
    for expected in [
        "policy:   sync",
        "7 rules, 4 owned by \"dialsync\", 3 foreign",
        "  unreadable: index 3: name \"legacy\": prefix \"53([2-4])\" cannot be read",
        "source fusion: last good answer",
        "source static: last good answer",
        "last cycle: converged",
        "1 added, 1 modified, 0 deleted",
        "last success: ",
    ] {
        assert!(status.stdout.contains(expected), "{expected:?} in {status}");
    }
    rig.assert_no_unexpected();
}

#[test]
fn a_failing_source_exits_1_names_itself_and_deletes_nothing() {
    let rig = Rig::start();
    assert_eq!(rig.dialsync(&["sync"]).code, Some(0));
    let before = rig.owned_rules();
    let writes = rig.writes();

    rig.fusion.state().sticky_fault = Some(Fault::ServerError);
    let failing = rig.dialsync(&["sync"]);
    assert_eq!(failing.code, Some(1), "{failing}");
    assert!(
        failing.stdout.contains("sources failing: fusion"),
        "{failing}"
    );
    assert!(
        failing
            .stdout
            .contains("source fusion (fusion): stale, 150 entries"),
        "the last good snapshot stands in: {failing}"
    );
    assert_eq!(rig.owned_rules(), before, "no rule of fusion's deleted");
    assert_eq!(rig.writes(), writes);
    assert_eq!(rig.sbc_tag("+3226120042").as_deref(), Some("Trunk=acme"));

    let plan = rig.dialsync(&["plan"]);
    assert_eq!(plan.code, Some(1), "{plan}");
    assert!(
        plan.stdout.contains("source fusion failed"),
        "plan names the failing source: {plan}"
    );

    let check = rig.dialsync(&["check"]);
    assert_eq!(check.code, Some(1), "{check}");
    assert!(
        check.stdout.starts_with("DIALSYNC WARNING - ")
            && check.stdout.contains("sources failing: fusion"),
        "{check}"
    );

    rig.fusion.state().sticky_fault = None;
    let healed = rig.dialsync(&["sync"]);
    assert_eq!(healed.code, Some(0), "{healed}");
    assert!(healed.stdout.starts_with("in sync"), "{healed}");
}

#[test]
fn an_emptied_source_blocks_until_exactly_its_plan_is_forced() {
    let rig = Rig::start();
    assert_eq!(rig.dialsync(&["sync"]).code, Some(0));
    let writes = rig.writes();

    rig.fusion.state().phone_usages.clear();
    let blocked = rig.dialsync(&["sync"]);
    assert_eq!(blocked.code, Some(2), "{blocked}");
    assert!(blocked.stdout.contains("BLOCKED"), "{blocked}");
    let checksum = checksum_in(&blocked.stdout);
    assert_eq!(checksum.len(), 64, "a sha256: {blocked}");
    assert_eq!(rig.writes(), writes, "nothing written");
    assert_eq!(rig.sbc_tag("+3226120042").as_deref(), Some("Trunk=acme"));

    let check = rig.dialsync(&["check"]);
    assert_eq!(check.code, Some(1), "{check}");
    assert!(
        check.stdout.starts_with("DIALSYNC WARNING - plan blocked")
            && check.stdout.contains(&checksum),
        "{check}"
    );

    let plan = rig.dialsync(&["plan", "--json"]);
    assert_eq!(plan.code, Some(2), "{plan}");
    let shown = plan.json();
    assert_eq!(shown["blocked"], true, "{shown:#}");
    assert_eq!(shown["checksum"], checksum.as_str(), "{shown:#}");
    assert_eq!(shown["counts"]["deletes"], 2, "{shown:#}");

    let unforced = rig.dialsync(&["apply", "--checksum", &checksum]);
    assert_eq!(unforced.code, Some(2), "a usage error: {unforced}");
    assert!(unforced.stderr.contains("--force"), "{unforced}");

    let wrong = rig.dialsync(&["apply", "--force", "--checksum", &"0".repeat(64)]);
    assert_eq!(wrong.code, Some(1), "{wrong}");
    assert!(wrong.stdout.contains("plan changed"), "{wrong}");
    assert!(
        wrong.stdout.contains("on the SBC 3 owned, 3 foreign"),
        "the SBC was read: {wrong}"
    );
    assert_eq!(rig.writes(), writes, "a refused plan writes nothing");
    let check = rig.dialsync(&["check"]);
    assert!(check.stdout.contains(" owned_rules=3 "), "{check}");

    let forced = rig.dialsync(&["apply", "--force", "--checksum", &checksum]);
    assert_eq!(forced.code, Some(0), "{forced}");
    assert!(
        forced.stdout.contains("0 added, 0 modified, 2 deleted"),
        "{forced}"
    );
    assert_eq!(rig.sbc_tag("+3226120042"), None);
    assert_eq!(rig.sbc_tag("+3226130001"), None);
    assert_eq!(rig.sbc_tag("+3225000005").as_deref(), Some("Trunk=static"));
    assert_eq!(rig.sbc_tag("+3222555").as_deref(), Some("Trunk=pbx"));

    let after = rig.dialsync(&["sync"]);
    assert_eq!(
        after.code,
        Some(0),
        "the empty answer is accepted now: {after}"
    );
    assert!(
        after.stdout.starts_with("in sync: 1 rules owned"),
        "{after}"
    );
    // The block is gone; what is left to say is the row dialsync cannot read.
    let check = rig.dialsync(&["check"]);
    assert_eq!(check.code, Some(1), "{check}");
    assert!(check.stdout.starts_with(CHECK_ONLY_UNREADABLE), "{check}");
    rig.assert_no_unexpected();
}

#[test]
fn hand_edits_on_the_sbc_are_repaired_and_foreign_rules_left_alone() {
    let rig = Rig::start();
    assert_eq!(rig.dialsync(&["sync"]).code, Some(0));
    let before = rig.owned_rules();
    {
        let mut state = rig.sbc.state();
        let plan = state.plans.get_mut(&0).expect("OCDialPlan");
        plan.rules.get_mut(&before[0].0).expect("rule").tag = "Trunk=oops".into();
        plan.rules.remove(&before[1].0);
        plan.rules
            .insert(40, sim_rule("engineer", "+3229", "Trunk=lab"));
    }
    let foreign = rig.foreign_rules();
    assert_eq!(foreign.len(), 5);

    let repair = rig.dialsync(&["sync"]);
    assert_eq!(repair.code, Some(0), "{repair}");
    assert!(
        repair
            .stdout
            .contains("synced: 1 added, 1 modified, 0 deleted; 3 rules owned"),
        "{repair}"
    );
    let routes = |rules: Vec<(u32, String, String)>| {
        let mut routes: Vec<(String, String)> = rules.into_iter().map(|(_, p, t)| (p, t)).collect();
        routes.sort();
        routes
    };
    assert_eq!(routes(rig.owned_rules()), routes(before));
    assert_eq!(rig.foreign_rules(), foreign, "foreign rules untouched");
    assert_eq!(rig.sbc_tag("+32291").as_deref(), Some("Trunk=lab"));

    let writes = rig.writes();
    let again = rig.dialsync(&["sync"]);
    assert!(
        again.stdout.starts_with("in sync: 3 rules owned"),
        "{again}"
    );
    assert_eq!(rig.writes(), writes);
    rig.assert_no_unexpected();
}

#[test]
fn lookup_explains_a_number_from_the_state_database() {
    let rig = Rig::start();
    let early = rig.dialsync(&["lookup", "+3226120042"]);
    assert_eq!(early.code, Some(1), "{early}");
    assert!(early.stderr.contains("no state database"), "{early}");
    assert!(!rig.path("state.db").exists(), "lookup creates no database");

    // Live Platform wrote a rule of its own for one of acme's numbers: per number, so it beats
    // dialsync's range rule at best match, and dialsync must leave it alone.
    rig.sbc
        .state()
        .plans
        .get_mut(&0)
        .expect("OCDialPlan")
        .rules
        .insert(
            9,
            sim_rule("LivePlatform", "+3226120007", "sbc01.teams.contoso.com"),
        );
    assert_eq!(rig.dialsync(&["sync"]).code, Some(0));
    let requests = rig.sbc.state().requests.len();
    let out = rig.dialsync(&["lookup", "+3226120042", "+3222123", "+3299"]);
    assert_eq!(out.code, Some(0), "{out}");
    let acme = out
        .stdout
        .split("\n+")
        .next()
        .expect("the first number's answer");
    assert!(acme.starts_with("+3226120042\n"), "{out}");
    assert!(
        acme.contains("  SBC routes it by rule ")
            && acme.contains(" -> Trunk=acme (dialsync's rule)"),
        "{out}"
    );
    assert!(
        acme.contains("  desired: Trunk=acme from source fusion, "),
        "{out}"
    );
    assert!(
        acme.contains("phone_usage #") && acme.contains("number=\"+3226120042\" tenant=\"acme\""),
        "names the source item: {out}"
    );
    assert!(!acme.contains("NOT IN SYNC"), "{out}");
    assert!(
        out.stdout
            .contains("-> Trunk=pbx (foreign rule named \"pbx\", never changed by dialsync)"),
        "{out}"
    );
    assert!(
        out.stdout.contains("  desired: no source assigns it"),
        "{out}"
    );
    assert!(
        out.stdout.contains(
            "+3299\n  SBC: no rule of the dial plan matches it\n  desired: no source assigns it\n"
        ),
        "{out}"
    );
    assert_eq!(
        rig.sbc.state().requests.len(),
        requests,
        "lookup asks the SBC nothing"
    );

    let json = rig.dialsync(&["lookup", "--json", "+3226130007"]);
    assert_eq!(json.code, Some(0), "{json}");
    let answers = json.json();
    let answer = &answers[0];
    assert_eq!(answer["number"], "+3226130007", "{answers:#}");
    assert_eq!(answer["sbc_rule"]["tag"], "Trunk=globex", "{answers:#}");
    assert_eq!(answer["sbc_rule"]["owned"], true, "{answers:#}");
    assert_eq!(answer["desired"]["source"], "fusion", "{answers:#}");
    assert_eq!(answer["in_sync"], true, "{answers:#}");

    // Foreign rules as the device holds them: their names and FQDN tags, untouched.
    let live = rig.dialsync(&["lookup", "+97239753000", "+3226120007"]);
    assert_eq!(live.code, Some(0), "{live}");
    assert!(
        live.stdout.contains(
            "+97239753000\n  SBC routes it by rule 0 +97239753000 -> sandbox1.audiocodes.be \
             (foreign rule named \"LivePlatform\", never changed by dialsync)\n  desired: no \
             source assigns it\n"
        ),
        "{live}"
    );
    let shadowed = live.stdout.split("\n+").nth(1).expect("the second answer");
    assert!(
        shadowed.contains("SBC routes it by rule 9 +3226120007 -> sbc01.teams.contoso.com")
            && shadowed.contains("desired: Trunk=acme from source fusion"),
        "{live}"
    );
    assert!(
        shadowed.contains(
            "NOT IN SYNC: rule 9 is not dialsync's and wins at best match; dialsync leaves it \
             alone, so only its owner can change this"
        ),
        "{live}"
    );
    let json = rig.dialsync(&["lookup", "--json", "+97239753000"]);
    let answer = &json.json()[0];
    assert_eq!(
        answer["sbc_rule"]["tag"], "sandbox1.audiocodes.be",
        "{json}"
    );
    assert_eq!(answer["sbc_rule"]["name"], "LivePlatform", "{json}");
    assert_eq!(answer["sbc_rule"]["owned"], false, "{json}");

    let bad = rig.dialsync(&["lookup", "12ab"]);
    assert_eq!(bad.code, Some(1), "{bad}");
    assert!(bad.stderr.contains("\"12ab\" is not a number"), "{bad}");
}

/// `audit --csv`'s rows as (verdict, first, count, rule_index, rule_name, winning_tag,
/// desired_tag, source), header checked.
fn audit_rows(text: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "verdict,first,last,count,rule_index,rule_name,prefix,winning_tag,desired_tag,\
             source,item"
        ),
        "{text}"
    );
    lines
        .map(|line| line.split(',').map(String::from).collect())
        .collect()
}

#[test]
fn audit_finds_shadowed_misrouted_unrouted_and_stray_numbers() {
    let rig = Rig::start();
    let early = rig.dialsync(&["audit"]);
    assert_eq!(
        early.code,
        Some(2),
        "could not audit, not found something: {early}"
    );
    assert!(early.stderr.contains("no state database"), "{early}");
    assert!(!rig.path("state.db").exists(), "audit creates no database");

    assert_eq!(rig.dialsync(&["sync"]).code, Some(0));
    let clean = rig.dialsync(&["audit"]);
    assert_eq!(clean.code, Some(0), "{clean}");
    assert!(clean.stdout.contains("160 numbers assigned"), "{clean}");
    assert!(
        clean
            .stdout
            .contains("clean: every assigned number routes to its tag"),
        "{clean}"
    );
    let csv = rig.dialsync(&["audit", "--csv"]);
    assert_eq!(csv.code, Some(0), "{csv}");
    assert!(audit_rows(&csv.stdout).is_empty(), "{csv}");

    // A range that holds Live Platform's per-number rule: that number is shadowed.
    rig.write(
        "static.csv",
        "start,end,tag\n+3225000000,+3225000009,Trunk=static\n\
         +97239753000,+97239753009,Trunk=il\n",
    );
    let synced = rig.dialsync(&["sync"]);
    assert_eq!(synced.code, Some(0), "{synced}");
    // Hand edits on the SBC: globex's rule retagged, the static file's rule deleted, and a
    // rule carrying dialsync's name for numbers no source assigns.
    let owned = rig.owned_rules();
    let index_of = |tag: &str| {
        owned
            .iter()
            .find(|(_, _, t)| t == tag)
            .unwrap_or_else(|| panic!("no owned rule for {tag}: {owned:?}"))
            .0
    };
    let (globex, static_rule) = (index_of("Trunk=globex"), index_of("Trunk=static"));
    {
        let mut state = rig.sbc.state();
        let rules = &mut state.plans.get_mut(&0).expect("OCDialPlan").rules;
        rules.get_mut(&globex).expect("globex's rule").tag = "Trunk=wrong".into();
        rules.remove(&static_rule);
        rules.insert(60, sim_rule("dialsync", "+3299000[0-4]#", "Trunk=acme"));
    }
    // `plan` reads the SBC into the mirror and writes nothing.
    let planned = rig.dialsync(&["plan"]);
    assert_eq!(planned.code, Some(2), "{planned}");
    let requests = rig.sbc.state().requests.len();

    let found = rig.dialsync(&["audit"]);
    assert_eq!(found.code, Some(1), "{found}");
    let out = &found.stdout;
    assert!(out.contains("170 numbers assigned"), "{found}");
    for line in [
        "  routed              109",
        "  misrouted            50",
        "  shadowed              1",
        "  unrouted             10",
        "stray: 1 owned rules route 5 numbers no source assigns",
        "  rule 60 +3299000[0-4]#: 5 numbers, first +32990000",
        "shadowed +97239753000 (1 number): rule 0 +97239753000 -> sandbox1.audiocodes.be \
         (foreign, named \"LivePlatform\") wins; Trunk=il wanted by static (",
    ] {
        assert!(out.contains(line), "{line:?} in:\n{found}");
    }
    assert_eq!(
        rig.sbc.state().requests.len(),
        requests,
        "audit asks the SBC nothing"
    );

    let csv = rig.dialsync(&["audit", "--csv"]);
    assert_eq!(csv.code, Some(1), "{csv}");
    let rows = audit_rows(&csv.stdout);
    // verdict, first, count, rule_index, rule_name, winning_tag, desired_tag, source
    let brief: Vec<String> = rows
        .iter()
        .map(|r| {
            let columns: Vec<&str> = [0, 1, 3, 4, 5, 7, 8, 9]
                .iter()
                .map(|&i| r[i].as_str())
                .collect();
            columns.join(",")
        })
        .collect();
    assert_eq!(
        brief,
        [
            // Key order: shorter numbers first.
            "stray,+32990000,5,60,dialsync,Trunk=acme,,".to_string(),
            "unrouted,+3225000000,10,,,,Trunk=static,static".to_string(),
            format!("misrouted,+3226130000,50,{globex},dialsync,Trunk=wrong,Trunk=globex,fusion"),
            "shadowed,+97239753000,1,0,LivePlatform,sandbox1.audiocodes.be,Trunk=il,static"
                .to_string(),
        ],
        "{csv}"
    );
    assert!(rows.iter().all(|r| r.len() == 11), "{csv}");

    // check warns from the recorded audit of the last cycle.
    let check = rig.dialsync(&["check"]);
    assert_eq!(check.code, Some(1), "{check}");
    assert!(
        check
            .stdout
            .contains("50 numbers misrouted, 1 shadowed by foreign rules (see dialsync audit)"),
        "{check}"
    );
    assert!(
        check.stdout.contains("misrouted=50 shadowed=1 unrouted=10"),
        "{check}"
    );
}

#[test]
fn check_says_unknown_ok_warning_and_critical() {
    let rig = Rig::start();
    let nothing = rig.dialsync(&["check"]);
    assert_eq!(nothing.code, Some(3), "{nothing}");
    assert!(
        nothing.stdout.starts_with("DIALSYNC UNKNOWN - ")
            && nothing.stdout.contains("no state database"),
        "{nothing}"
    );
    let nonsense = rig.dialsync(&["check", "-w", "nonsense"]);
    assert_eq!(
        nonsense.code,
        Some(3),
        "bad arguments are UNKNOWN: {nonsense}"
    );
    assert!(
        nonsense.stdout.starts_with("DIALSYNC UNKNOWN - "),
        "{nonsense}"
    );
    let inverted = rig.dialsync(&["check", "-w", "10m", "-c", "5m"]);
    assert_eq!(inverted.code, Some(3), "{inverted}");
    assert!(inverted.stdout.contains("longer than -c"), "{inverted}");

    // A row dialsync cannot read is a WARNING every cycle until someone looks at it; the
    // sync itself succeeds around it.
    assert_eq!(rig.dialsync(&["sync"]).code, Some(0));
    let unreadable = rig.dialsync(&["check"]);
    assert_eq!(unreadable.code, Some(1), "{unreadable}");
    assert!(
        unreadable.stdout.starts_with(CHECK_ONLY_UNREADABLE),
        "{unreadable}"
    );
    rig.sbc
        .state()
        .plans
        .get_mut(&0)
        .expect("OCDialPlan")
        .rules
        .remove(&3);
    assert_eq!(rig.dialsync(&["sync"]).code, Some(0));
    let ok = rig.dialsync(&["check"]);
    assert_eq!(ok.code, Some(0), "{ok}");
    assert_eq!(ok.stdout.lines().count(), 1, "one line: {ok}");
    assert!(
        ok.stdout
            .starts_with("DIALSYNC OK - in sync, last success "),
        "{ok}"
    );
    let perfdata = ok.stdout.split_once(" | ").expect("perfdata").1;
    assert!(
        perfdata.starts_with("last_success_age=") && perfdata.contains(";180;600;0 "),
        "thresholds of 3 and 10 intervals of 60 s: {ok}"
    );
    assert!(perfdata.contains(" owned_rules=3 "), "{ok}");
    assert!(
        perfdata.contains(" adds=0 "),
        "the second sync had nothing to do: {ok}"
    );

    // The last success is older than a threshold of zero, however fast this machine is.
    let warning = rig.dialsync(&["check", "-w", "0", "-c", "1h"]);
    assert_eq!(warning.code, Some(1), "{warning}");
    assert!(
        warning
            .stdout
            .starts_with("DIALSYNC WARNING - last success "),
        "{warning}"
    );
    let critical = rig.dialsync(&["check", "-w", "0s", "-c", "0"]);
    assert_eq!(critical.code, Some(2), "{critical}");
    assert!(
        critical
            .stdout
            .starts_with("DIALSYNC CRITICAL - last success "),
        "{critical}"
    );
}

#[test]
fn a_fatal_cycle_is_critical_at_once() {
    let rig = Rig::start();
    let synced = rig.dialsync(&["sync"]);
    assert_eq!(synced.code, Some(0), "{synced}");
    let desired = |out: &common::Out| {
        out.stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("rules: "))
            .and_then(|l| l.split(';').next())
            .map(str::to_string)
    };
    rig.secret("wrong-password", "not-the-password");
    rig.write_config(&Settings {
        sbc_password_file: "wrong-password",
        ..Settings::default()
    });
    let refused = rig.dialsync(&["sync"]);
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(refused.stdout.starts_with("FAILED: "), "{refused}");
    // The SBC could not be read, but what the sources want is still said, not 0.
    assert_eq!(desired(&refused), Some("3 desired".into()), "{refused}");
    assert_eq!(desired(&refused), desired(&synced), "{refused}");

    let check = rig.dialsync(&["check"]);
    assert_eq!(check.code, Some(2), "{check}");
    assert!(
        check.stdout.starts_with("DIALSYNC CRITICAL - ")
            && check.stdout.contains("last cycle failed: "),
        "{check}"
    );
    assert!(
        !check.stdout.contains("not-the-password") && !refused.stdout.contains("not-the-password"),
        "no secret in the output"
    );
}

#[test]
fn config_check_accepts_a_good_config_and_names_what_is_wrong() {
    let rig = Rig::start();
    let good = rig.dialsync(&["config", "check"]);
    assert_eq!(good.code, Some(0), "{good}");
    assert!(
        good.stdout.contains(": OK: policy sync, 2 source(s) (fusion (fusion), static (file)), sink audiocodes at http://"),
        "{good}"
    );
    assert!(
        !rig.path("state.db").exists(),
        "config check opens no database"
    );

    let misspelt = Settings {
        extra: "\n[safety]\nmax_delete_fractoin = 0.5\n".into(),
        ..Settings::default()
    };
    rig.write_config(&misspelt);
    let line = line_of(&rig.config_text(&misspelt), "max_delete_fractoin");
    let unknown = rig.dialsync(&["config", "check"]);
    assert_eq!(unknown.code, Some(1), "{unknown}");
    assert!(
        unknown.stderr.contains(&format!("dialsync.toml:{line}:"))
            && unknown.stderr.contains("max_delete_fractoin"),
        "names the key and its line {line}: {unknown}"
    );
    let sync = rig.dialsync(&["sync"]);
    assert_eq!(sync.code, Some(1), "no cycle on a bad config: {sync}");
    assert!(!rig.path("state.db").exists());

    rig.write_config(&Settings::default());
    chmod(&rig.path("sbc-password"), 0o644);
    let line = line_of(&rig.config_text(&Settings::default()), "password_file");
    let open = rig.dialsync(&["config", "check"]);
    assert_eq!(open.code, Some(1), "{open}");
    assert!(
        open.stderr.contains(&format!("dialsync.toml:{line}:"))
            && open.stderr.contains("password_file")
            && open.stderr.contains("chmod 600"),
        "{open}"
    );
    assert_eq!(
        open.stderr.matches("chmod 600").count(),
        1,
        "said once: {open}"
    );
    assert!(!open.stderr.contains(SBC_PASSWORD), "{open}");

    let missing = run(command()
        .args(["sync", "--config"])
        .arg(rig.path("missing.toml")));
    assert_eq!(missing.code, Some(1), "{missing}");
    assert!(
        missing.stderr.contains("missing.toml: cannot read: ")
            && missing.stderr.matches("No such file").count() == 1,
        "{missing}"
    );
    assert_eq!(rig.sbc.state().requests, Vec::<String>::new(), "no network");
}

/// A file source larger than its `max_body` is refused before it is read, naming the file and
/// both sizes; the other sources still sync, and once the file fits again it counts.
#[test]
fn a_file_over_max_body_is_refused_before_it_is_read() {
    let rig = Rig::start();
    let rows = "start,end,tag\n+3249990000,+3249990009,Trunk=extra\n";
    let mut csv = rows.to_string();
    while csv.len() <= 1024 {
        csv.push_str("# a comment that takes the file past max_body\n");
    }
    rig.write("extra.csv", &csv);
    let path = rig.path("extra.csv");
    rig.write_config(&Settings {
        extra: format!(
            "\n[[sources]]\nname = \"extra\"\nkind = \"file\"\npath = \"{}\"\nmax_body = \"1KiB\"\n",
            path.display()
        ),
        ..Settings::default()
    });

    let out = rig.dialsync(&["sync"]);
    assert_eq!(out.code, Some(1), "{out}");
    let said = format!(
        "{}: {} bytes, larger than max_body (1024 bytes)",
        path.display(),
        csv.len()
    );
    assert!(format!("{out}").contains(&said), "{said}\n{out}");
    assert_eq!(
        rig.sbc_tag("+3226120042").as_deref(),
        Some("Trunk=acme"),
        "{out}"
    );
    assert_eq!(rig.sbc_tag("+3249990005"), None, "{out}");

    rig.write("extra.csv", rows);
    let out = rig.dialsync(&["sync"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        rig.sbc_tag("+3249990005").as_deref(),
        Some("Trunk=extra"),
        "{out}"
    );
}
