//! What each fuzz target checks, as plain functions of the input bytes.
//!
//! The targets in `fuzz_targets/` are one line each: they hand libFuzzer's input to a function
//! here. The main crate's `tests/fuzz_regressions.rs` includes this file too, so every input
//! that once failed replays through exactly these checks in `cargo test`.
//!
//! Each function asserts properties, not only "does not panic": what parses prints back to
//! itself, orders are total, counts add up, a fetch that succeeds is consistent with its body.
//! Inputs are split into lines (or pages) so that libFuzzer's mutations stay meaningful.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dialsync::dialplan::pattern::{best_match, Element, Pattern, Span};
use dialsync::dialplan::rule::{DialPlanRule, Tag};
use dialsync::net::oauth::ClientCredentials;
use dialsync::net::secret::Secret;
use dialsync::number::{Number, NumberRange, OpenPrefix, MAX_DIGITS};
use dialsync::resolve::Coverage;
use dialsync::sim::sbc::cli::{read_script, render_config, CliStyle, Command};
use dialsync::sim::sbc::{SimPlan, SimRule};
use dialsync::sink::audiocodes::cli_script::{parse_dial_plans, quote};
use dialsync::source::apio::{self, ApioAuth, ApioConfig, ApioGroup};
use dialsync::source::fusion::{
    self, FusionAuth, FusionConfig, FusionFeed, FusionSource, OcSubscription,
};
use dialsync::source::http::HttpConfig;
use dialsync::source::livecloud::{self, LiveCloudSourceConfig, PageChain, PageError};
use dialsync::source::tag::{TagRule, TagTemplate, TemplateError};
use dialsync::source::{file, ItemLimits, SourceEntries, SourceError};
use serde_json::Value;

/// The limits every source target decodes with: small enough that "range too large" is
/// reachable.
const LIMITS: ItemLimits = ItemLimits {
    max_range_size: 10_000,
    max_tag_len: 32,
};

/// The input as text (invalid UTF-8 replaced, so no input is wasted) split into `n` lines, the
/// last holding the rest; missing lines are empty.
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut out: Vec<String> = text.splitn(n, '\n').map(str::to_string).collect();
    out.resize(n, String::new());
    out
}

/// A valid number derived from arbitrary bytes, for matching.
fn some_number(data: &[u8]) -> Number {
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x1b3)
    });
    // 1 ..= 10^15 - 1: every length from 1 to 15 digits.
    let value = hash % 999_999_999_999_999 + 1;
    Number::from_u64(value).expect("1..10^15 is a number")
}

// ---- pattern ----

/// `Pattern::parse` on three lines of text, matched against the fourth.
///
/// - a pattern's canonical text parses back to the same pattern, and so do its elements;
/// - `specificity_cmp` is a total order: reflexive, antisymmetric, transitive, `Equal` only
///   for equal patterns, and the same as comparing the elements one by one;
/// - `matches` agrees with an element-by-element matcher and with `matches_number`; `span`
///   describes exactly what the pattern matches at its ends; `best_match` picks a matching
///   pattern nothing beats.
pub fn pattern(data: &[u8]) {
    let lines = fields(data, 4);
    let subject = lines[3].as_str();
    let patterns: Vec<Pattern> = lines[..3].iter().filter_map(|t| one_pattern(t)).collect();
    let mut numbers = vec![some_number(data)];
    numbers.extend(Number::parse(subject).ok());
    for p in &patterns {
        let elements = p.elements();
        let expected = matches_elements(&elements, subject.as_bytes());
        assert_eq!(p.matches(subject), expected, "{p} on {subject:?}");
        for &n in &numbers {
            let shown = n.to_string();
            assert_eq!(p.matches_number(n), p.matches(&shown), "{p} {n}");
            assert_eq!(
                p.matches(&shown),
                matches_elements(&elements, shown.as_bytes())
            );
        }
        let exact = Pattern::exact(numbers[0]);
        assert!(exact.matches_number(numbers[0]));
        assert_eq!(Pattern::parse(exact.as_str()).as_ref(), Ok(&exact));
    }
    for p in &patterns {
        for q in &patterns {
            let pq = p.specificity_cmp(q);
            assert_eq!(pq, q.specificity_cmp(p).reverse(), "{p} vs {q}");
            assert_eq!(pq.is_eq(), p == q, "{p} vs {q}: {pq:?}");
            assert_eq!(pq, elements_cmp(&p.elements(), &q.elements()), "{p} vs {q}");
            for r in &patterns {
                if pq.is_ge() && q.specificity_cmp(r).is_ge() {
                    assert!(p.specificity_cmp(r).is_ge(), "{p} >= {q} >= {r}");
                }
            }
        }
    }
    let rules: Vec<(u32, &Pattern, &usize)> = patterns
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u32, p, &0))
        .collect();
    match best_match(rules.iter().copied(), subject) {
        None => assert!(patterns.iter().all(|p| !p.matches(subject))),
        Some((index, _)) => {
            let best = &patterns[index as usize];
            assert!(best.matches(subject));
            for (i, p) in patterns.iter().enumerate() {
                if p.matches(subject) {
                    let order = p.specificity_cmp(best);
                    assert!(order.is_le(), "{p} beats the best match {best}");
                    assert!(!(order.is_eq() && (i as u32) < index), "{p} is earlier");
                }
            }
        }
    }
}

/// Parses one pattern and checks what holds of it alone.
fn one_pattern(text: &str) -> Option<Pattern> {
    let p = match Pattern::parse(text) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.to_string();
            return None;
        }
    };
    let canonical = p.as_str();
    assert_eq!(p.to_string(), canonical);
    assert_eq!(p.text_len(), canonical.len());
    assert_eq!(Pattern::parse(canonical).as_ref(), Ok(&p), "{text:?}");
    let elements = p.elements();
    assert_eq!(Pattern::from_elements(&elements).as_ref(), Some(&p));
    assert_eq!(p.is_anchored(), elements.last() == Some(&Element::End));
    assert_eq!(p.is_any(), elements.is_empty());
    assert_eq!(p.specificity_cmp(&p), std::cmp::Ordering::Equal);
    match p.span() {
        None => {}
        Some(Span::Range(range)) => {
            assert!(p.is_anchored(), "{p}: a range span needs '#'");
            let (lo, hi) = (range.lo(), range.hi());
            assert!(
                p.matches_number(lo) && p.matches_number(hi),
                "{p} {range:?}"
            );
            let middle = Number::from_key(lo.key() + (hi.key() - lo.key()) / 2).unwrap();
            assert!(p.matches_number(middle), "{p} {middle}");
            assert!(
                lo.pred().is_none_or(|n| !p.matches_number(n)),
                "{p} {range:?}"
            );
            assert!(
                hi.succ().is_none_or(|n| !p.matches_number(n)),
                "{p} {range:?}"
            );
        }
        Some(Span::Prefix(prefix)) => {
            assert!(!p.is_anchored());
            assert_eq!(Pattern::open_prefix(prefix), p);
            assert!(p.matches_number(prefix.digits()));
        }
    }
    Some(p)
}

/// Whether `elements` match the start of `text` (all of it after a `#`), element by element as
/// the language describes them: independent of the matcher on canonical text. Like it, `.`
/// consumes one byte (dialled strings are ASCII).
fn matches_elements(elements: &[Element], text: &[u8]) -> bool {
    let mut rest = text;
    for element in elements {
        let first = rest.first().copied();
        let used = match element {
            Element::Literal(c) => (first == Some(*c)).then_some(1),
            Element::TwoToNine => matches!(first, Some(b'2'..=b'9')).then_some(1),
            Element::NonZero => matches!(first, Some(b'1'..=b'9')).then_some(1),
            Element::AnyDigit => first.filter(u8::is_ascii_digit).map(|_| 1),
            Element::AnyChar => first.map(|_| 1),
            Element::End => rest.is_empty().then_some(0),
            Element::Set(set) => rest
                .get(..set.width())
                .filter(|digits| digits.iter().all(u8::is_ascii_digit))
                .and_then(|digits| std::str::from_utf8(digits).ok()?.parse::<u64>().ok())
                .filter(|&value| set.contains(value))
                .map(|_| set.width()),
        };
        match used {
            Some(used) => rest = &rest[used..],
            None => return false,
        }
    }
    true
}

/// Best-match order computed on decoded elements, as the vendor describes it.
fn elements_cmp(a: &[Element], b: &[Element]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.specificity_cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

// ---- number ----

/// `Number::parse`, `NumberRange::parse` and `OpenPrefix::parse` on lines of text; the third
/// line, if a decimal, is the range size limit.
///
/// - a number is accepted exactly when an independent reading of the rules accepts it, with
///   the same digits; it prints as `+digits`, which parses back to it;
/// - a range has ordered ends of one length within the limit and prints back to itself;
/// - an open prefix prints back to itself and its per-length ranges hold exactly its numbers.
pub fn number(data: &[u8]) {
    let lines = fields(data, 3);
    let (lo, hi) = (lines[0].as_str(), lines[1].as_str());
    let max = lines[2].trim().parse::<u64>().unwrap_or(1000);
    for text in [lo, hi] {
        let parsed = Number::parse(text);
        assert_eq!(
            parsed.as_ref().ok().map(|n| n.digits()),
            expected_digits(text),
            "{text:?}: {parsed:?}"
        );
        if let Ok(n) = parsed {
            assert_eq!(Number::parse(&n.to_string()), Ok(n));
            assert_eq!(Number::from_u64(n.value()), Ok(n));
            assert_eq!(Number::from_key(n.key()), Some(n));
            let digits = n.digits();
            assert_eq!(digits.len() as u32, n.len());
            for (i, d) in digits.bytes().enumerate() {
                assert_eq!(n.digit(i as u32), d - b'0');
            }
        }
    }
    if let Ok(range) = NumberRange::parse(lo, Some(hi), max) {
        assert!(range.lo() <= range.hi() && range.lo().len() == range.hi().len());
        assert!(range.size() <= max && range.size() >= 1);
        assert!(range.contains(range.lo()) && range.contains(range.hi()));
        let shown = range.to_string();
        let (a, b) = shown.split_once("..").unwrap_or((&shown, ""));
        assert_eq!(NumberRange::parse(a, Some(b), max), Ok(range), "{shown}");
        assert_eq!(
            NumberRange::parse(a, None, max),
            Ok(NumberRange::single(range.lo()))
        );
    }
    if let Ok(prefix) = OpenPrefix::parse(lo) {
        let shown = prefix.to_string();
        let digits = shown.strip_suffix('*').expect("a prefix prints with '*'");
        assert_eq!(OpenPrefix::parse(digits), Ok(prefix));
        assert!(prefix.contains(prefix.digits()));
        let ranges: Vec<NumberRange> = prefix.ranges().collect();
        assert_eq!(ranges.len() as u32, MAX_DIGITS - prefix.len() + 1);
        for (range, len) in ranges.iter().zip(prefix.len()..) {
            assert_eq!(range.len(), len);
            assert!(prefix.contains(range.lo()) && prefix.contains(range.hi()));
            assert!(range.lo().pred().is_none_or(|n| !prefix.contains(n)));
            assert!(range.hi().succ().is_none_or(|n| !prefix.contains(n)));
        }
        if let Ok(n) = Number::parse(hi) {
            let inside = ranges.iter().any(|r| r.contains(n));
            assert_eq!(prefix.contains(n), inside, "{prefix} {n}");
        }
    }
}

/// The digits of a valid E.164 number written as `text`, read independently of the parser:
/// surrounding whitespace, an optional leading `+`, separators ` -.()` anywhere, 1 to 15
/// digits, the first not 0.
fn expected_digits(text: &str) -> Option<String> {
    let mut digits = String::new();
    for (i, c) in text.trim().chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => {}
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    let ok = !digits.is_empty() && digits.len() <= 15 && !digits.starts_with('0');
    ok.then_some(digits)
}

// ---- CLI scripts ----

/// The SBC emulator's reader of incremental scripts and the sink's lenient reader of the full
/// configuration, on the whole input as a script.
///
/// - an error names a line of the script;
/// - accepted commands, written back in the dialect, read back to the same commands;
/// - the dial plans the sink reads, printed by the emulated device in each of its styles
///   (indentation, last `exit`), read back to the same plans and rows; reading every row as a
///   rule does not panic, and a row set aside as unreadable keeps its index.
pub fn cli_script(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let line_count = text.split('\n').count();
    let line_ok = |line: Option<usize>, message: String| {
        if let Some(line) = line {
            assert!(
                (1..=line_count).contains(&line),
                "{message} in {line_count} lines"
            );
        }
    };
    match read_script(&text) {
        Err(refused) => line_ok(Some(refused.line), refused.to_string()),
        Ok(commands) => {
            let written = render_commands(&commands);
            assert_eq!(read_script(&written), Ok(commands), "{written}");
        }
    }
    match parse_dial_plans(&text) {
        Err(e) => line_ok(e.line(), e.to_string()),
        Ok(plans) => {
            for plan in &plans.plans {
                let (index, rules) = plans.rules_of(&plan.name).expect("the plan exists");
                assert!(rules.iter().all(|r| r.plan == index));
            }
            for row in &plans.rules {
                let read = DialPlanRule::read(row.index, &row.name, &row.prefix, &row.tag);
                if let Err(unreadable) = read {
                    assert_eq!(unreadable.index, row.index);
                }
            }
            // What a device holding exactly these rows prints, read back.
            let mut held: BTreeMap<u32, SimPlan> = BTreeMap::new();
            for plan in &plans.plans {
                held.insert(
                    plan.index,
                    SimPlan {
                        name: plan.name.clone(),
                        rules: BTreeMap::new(),
                    },
                );
            }
            for row in plans.rules.iter().filter(|r| r.unreadable.is_none()) {
                if let Some(plan) = held.get_mut(&row.plan) {
                    plan.rules.insert(
                        row.index,
                        SimRule {
                            name: row.name.clone(),
                            prefix: row.prefix.clone(),
                            tag: row.tag.clone(),
                        },
                    );
                }
            }
            for (indent, final_exit) in [(0, true), (1, true), (4, false)] {
                let style = CliStyle { indent, final_exit };
                let printed = render_config(&held, "", &style);
                let again = parse_dial_plans(&printed).expect(&printed);
                let names: Vec<(u32, &str)> = again
                    .plans
                    .iter()
                    .map(|p| (p.index, p.name.as_str()))
                    .collect();
                let want: Vec<(u32, &str)> =
                    held.iter().map(|(i, p)| (*i, p.name.as_str())).collect();
                assert_eq!(names, want, "{printed}");
                let rows: Vec<(u32, u32, &str, &str, &str)> = again
                    .rules
                    .iter()
                    .map(|r| {
                        assert_eq!(r.unreadable, None, "{printed}");
                        (
                            r.plan,
                            r.index,
                            r.name.as_str(),
                            r.prefix.as_str(),
                            r.tag.as_str(),
                        )
                    })
                    .collect();
                let want: Vec<(u32, u32, &str, &str, &str)> = held
                    .iter()
                    .flat_map(|(p, plan)| {
                        plan.rules.iter().map(move |(i, r)| {
                            (*p, *i, r.name.as_str(), r.prefix.as_str(), r.tag.as_str())
                        })
                    })
                    .collect();
                assert_eq!(rows, want, "{printed}");
            }
        }
    }
}

/// Incremental-script commands in the dialect, as dialsync writes them.
fn render_commands(commands: &[Command]) -> String {
    let mut out = String::from("configure voip\n");
    let field = |out: &mut String, name: &str, value: &Option<String>| {
        if let Some(value) = value {
            out.push_str(&format!("  {name} {}\n", quote(value)));
        }
    };
    for command in commands {
        match command {
            Command::EditPlan { plan, name } => {
                out.push_str(&format!(" sbc dial-plan {plan}\n"));
                field(&mut out, "name", name);
                out.push_str(" exit\n");
            }
            Command::EditRule {
                plan,
                rule,
                name,
                prefix,
                tag,
            } => {
                out.push_str(&format!(" sbc dial-plan-rule {plan}/{rule}\n"));
                field(&mut out, "name", name);
                field(&mut out, "prefix", prefix);
                field(&mut out, "tag", tag);
                out.push_str("  activate\n exit\n");
            }
            Command::DeleteRule { plan, rule } => {
                out.push_str(&format!(" no sbc dial-plan-rule {plan}/{rule}\n"));
            }
            Command::DeletePlan { plan } => out.push_str(&format!(" no sbc dial-plan {plan}\n")),
        }
    }
    out.push_str("exit\n");
    out
}

// ---- sources: what every decoder's output must satisfy ----

/// Entries come from `source` and respect the limits, at most one per item; with `distinct`
/// (the HTTP sources collapse exact duplicates; the static file keeps a repeated line, which
/// resolution collapses later) no two are equal.
fn check_entries(out: &SourceEntries, source: &str, items: usize, distinct: bool) {
    assert!(
        out.entries.len() + out.rejected.len() <= items,
        "{} entries and {} rejected from {items} items",
        out.entries.len(),
        out.rejected.len()
    );
    let mut seen = HashSet::new();
    for entry in &out.entries {
        assert_eq!(&*entry.provenance.source, source);
        let new = seen.insert((entry.coverage, entry.tag.clone()));
        assert!(new || !distinct, "{entry:?} twice");
        assert_eq!(
            Tag::parse(entry.tag.as_str(), LIMITS.max_tag_len).as_ref(),
            Ok(&entry.tag)
        );
        if let Coverage::Range(range) = entry.coverage {
            assert!(range.size() <= LIMITS.max_range_size, "{entry:?}");
        }
    }
    for rejected in &out.rejected {
        assert!(!rejected.reason.is_empty(), "{rejected:?}");
    }
}

/// A tag rule of `template` (parsed by the source's own `parse_template`) and `overrides`.
fn tag_rule(
    template: &str,
    parse: fn(&str) -> Result<TagTemplate, TemplateError>,
    overrides: &[(&str, &str)],
) -> TagRule {
    TagRule {
        template: parse(template).expect("a valid template"),
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), Tag::parse(v, 64).expect("a valid tag")))
            .collect(),
    }
}

// ---- the static file ----

/// `source::file::parse_csv` on the input as a file.
///
/// - every data line is one entry or one rejection, named by its physical line;
/// - the entries, written back as CSV, parse to the same coverages and tags, none rejected.
pub fn static_csv(data: &[u8]) {
    let Ok(out) = file::parse_csv(data, "static", "fuzz.csv", LIMITS) else {
        return;
    };
    let text = std::str::from_utf8(data).expect("parse_csv read it as UTF-8");
    let numbered: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .skip(1)
        .collect();
    assert_eq!(out.entries.len() + out.rejected.len(), numbered.len());
    let mut items: Vec<String> = out
        .entries
        .iter()
        .map(|e| e.provenance.item.to_string())
        .chain(out.rejected.iter().map(|r| r.item.clone()))
        .collect();
    items.sort();
    let mut expected: Vec<String> = numbered.iter().map(|(n, _)| format!("line {n}")).collect();
    expected.sort();
    assert_eq!(items, expected);
    // Every entry back to CSV: the file an operator would write for the same routes.
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["start", "end", "tag"]).unwrap();
    for entry in &out.entries {
        let (start, end) = match entry.coverage {
            Coverage::Range(r) if r.lo() == r.hi() => (r.lo().to_string(), String::new()),
            Coverage::Range(r) => (r.lo().to_string(), r.hi().to_string()),
            Coverage::Prefix(p) => (p.to_string(), String::new()),
        };
        writer
            .write_record([start.as_str(), end.as_str(), entry.tag.as_str()])
            .unwrap();
    }
    let written = writer.into_inner().unwrap();
    let again = file::parse_csv(written.as_slice(), "static", "again.csv", LIMITS)
        .expect("what parse_csv accepted, written back, is a file");
    assert!(again.rejected.is_empty(), "{:?}", again.rejected);
    let routes = |out: &SourceEntries| -> Vec<(Coverage, Tag)> {
        out.entries
            .iter()
            .map(|e| (e.coverage, e.tag.clone()))
            .collect()
    };
    assert_eq!(routes(&again), routes(&out));
    check_entries(&out, "static", numbered.len(), false);
}

// ---- APIO ----

/// `source::apio::decode_page` (what a fetch runs on every ITC answer) on the input: its first
/// byte picks the list and `include_inactive`, the rest is the answer body.
///
/// - the answer is accepted exactly when it is a JSON object holding an array under the list's
///   key; entries are distinct, named by the source, within the limits, at most one per item;
/// - the same answer decoded twice into one fetch adds no entry and rejects every bad item again.
pub fn apio(data: &[u8]) {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let (config, group, list) = apio_setup(flags);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let items = parsed
        .as_ref()
        .and_then(|v| v.as_object())
        .and_then(|o| o.get(list.key()))
        .and_then(Value::as_array)
        .map(Vec::len);
    let decoded = apio::decode_page(&config, &group, list, body);
    if parsed.is_some() || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        assert_eq!(decoded.is_ok(), items.is_some(), "{decoded:?}");
    }
    // Otherwise the body is JSON that serde_json's tree cannot hold (a number past f64's
    // range, say): the decoder reads only the fields it uses, so it may take the page, such an
    // item being rejected as not an object, or refuse it; it must not panic.
    let Ok(out) = decoded else { return };
    if let Some(items) = items {
        check_entries(&out, "apio", items, true);
    }
    let mut decoder = apio::Decoder::new(&config);
    for _ in 0..2 {
        decoder
            .page(&group, list, body)
            .expect("the same answer again");
    }
    let twice = decoder.finish();
    assert_eq!(twice.entries.len(), out.entries.len());
    assert_eq!(twice.rejected.len(), 2 * out.rejected.len());
}

/// The APIO configuration, group and list the first input byte selects.
fn apio_setup(flags: u8) -> (ApioConfig, ApioGroup, apio::List) {
    let list = if flags & 1 == 0 {
        apio::List::Numbers
    } else {
        apio::List::Prefixes
    };
    let mut config = ApioConfig::new(
        "apio",
        "http://127.0.0.1:9/",
        ApioAuth::Session {
            username: "fuzz".into(),
            password: Secret::new("fuzz"),
        },
        Vec::new(),
    );
    config.include_inactive = flags & 2 != 0;
    config.limits = LIMITS;
    let group = ApioGroup {
        tenant: if flags & 4 == 0 { "acme" } else { "acme;x" }.into(),
        group: "hq".into(),
        tags: tag_rule(
            "Trunk={tenant};Site={group}",
            apio::parse_template,
            &[("acme;x", "Trunk=override")],
        ),
    };
    (config, group, list)
}

/// How many entries and rejections the `apio` or `livecloud` target's decoder makes of `data`
/// (for the tests of the seed corpus); (0, 0) when the answer fails the fetch.
pub fn decode(target: &str, data: &[u8]) -> (usize, usize) {
    let Some((&flags, body)) = data.split_first() else {
        return (0, 0);
    };
    let out = match target {
        "apio" => {
            let (config, group, list) = apio_setup(flags);
            apio::decode_page(&config, &group, list, body).ok()
        }
        "livecloud" => {
            let config = livecloud_setup(flags);
            let bodies = body.split(|&b| b == 0xFF);
            livecloud::decode_pages(&config, LIVE_TENANT, bodies).ok()
        }
        other => panic!("no decoder for {other}"),
    };
    out.map_or((0, 0), |out| (out.entries.len(), out.rejected.len()))
}

// ---- Live Platform ----

/// `source::livecloud::decode_pages` (the fetch's `PageChain` and `Decoder`) on the input: the
/// first byte sets the page size (1 to 4) and the page limit, the rest is the answers to pages
/// 1, 2, ... separated by a byte 0xFF (which JSON text never holds).
///
/// - a chain accepted holds exactly `totalRecords` numbers, in `totalPages` pages of the page
///   size asked for, numbered from 1;
/// - entries are distinct, named by the source, single numbers, at most one per number.
pub fn livecloud(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let config = livecloud_setup(flags);
    let (page_size, max_pages, tenant) = (config.page_size, config.max_pages, LIVE_TENANT);
    let bodies: Vec<&[u8]> = rest.split(|&b| b == 0xFF).collect();
    // The chain by hand, to know what it held.
    let mut chain = PageChain::new(page_size, max_pages);
    let mut first: Option<Value> = None;
    let mut complete = false;
    for (i, body) in bodies.iter().enumerate() {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            break;
        };
        assert_eq!(chain.page(), i as u64 + 1);
        first.get_or_insert_with(|| value.clone());
        match chain.push(&value) {
            Ok(false) => {}
            Ok(true) => {
                complete = true;
                break;
            }
            Err(e) => {
                assert!(
                    matches!(e, PageError::BadBody(ref r) | PageError::Pagination(ref r) if !r.is_empty())
                );
                break;
            }
        }
    }
    let pages = chain.page();
    let items = chain.into_items();
    let decoded = livecloud::decode_pages(&config, tenant, bodies.iter().copied());
    assert_eq!(decoded.is_ok(), complete, "{decoded:?}");
    let Ok(out) = decoded else { return };
    let first = first.expect("a complete chain has a first page");
    let count = |key: &str| first.get(key).and_then(Value::as_u64).unwrap();
    assert_eq!(items.len() as u64, count("totalRecords"));
    assert_eq!(
        count("totalPages"),
        (items.len() as u64).div_ceil(page_size as u64)
    );
    assert!(pages == count("totalPages").max(1));
    assert!(pages <= max_pages as u64);
    check_entries(&out, "live", items.len(), true);
    for entry in &out.entries {
        assert!(matches!(entry.coverage, Coverage::Range(r) if r.size() == 1));
    }
}

/// The tenant the `livecloud` target's pages belong to.
const LIVE_TENANT: &str = "t1";

/// The Live Platform configuration the first input byte selects: page size 1 to 4, at most 1
/// to 8 pages.
fn livecloud_setup(flags: u8) -> LiveCloudSourceConfig {
    let page_size = usize::from(flags & 3) + 1;
    let max_pages = usize::from((flags >> 2) & 7) + 1;
    let mut config = LiveCloudSourceConfig::new(
        "live",
        "http://127.0.0.1:9",
        ClientCredentials {
            token_url: "http://127.0.0.1:9/token".into(),
            client_id: "fuzz".into(),
            client_secret: Secret::new("fuzz"),
            scope: "fuzz".into(),
        },
        vec![LIVE_TENANT.to_string()],
        tag_rule("Trunk={tenant_id}", livecloud::parse_template, &[]),
    );
    config.page_size = page_size;
    config.max_pages = max_pages;
    config.limits = LIMITS;
    config
}

// ---- Fusion ----

/// Which Fusion feed a `fusion` input is read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    PhoneUsage,
    Ranges,
    /// The Operator Connect numbers of one subscription; `true`: `include_unprovisioned`.
    OcNumbers(bool),
}

impl Feed {
    /// The feed the first byte of an input picks: bit 0 the range feed (as before the
    /// Operator Connect feed existed, so older inputs still mean what they meant), else bit 1
    /// the Operator Connect feed, with bit 2 for `include_unprovisioned`.
    pub fn of(flags: u8) -> Feed {
        match (flags & 1, flags & 2) {
            (1, _) => Feed::Ranges,
            (_, 2) => Feed::OcNumbers(flags & 4 == 4),
            _ => Feed::PhoneUsage,
        }
    }

    /// The list field of an object page, `None` for the range feed (an array or an object
    /// holding its one list).
    fn list_key(self) -> Option<&'static str> {
        match self {
            Feed::PhoneUsage => Some("phoneUsages"),
            Feed::OcNumbers(_) => Some("numbers"),
            Feed::Ranges => None,
        }
    }
}

/// Fusion's answers decode inside `FusionSource::fetch` (src/source/fusion.rs has no pure
/// decoding entry point), so this target fetches for real, over loopback, from a minimal HTTP
/// server that answers every request with the input. The first byte picks the feed
/// ([`Feed::of`]: `phone_usage`, a number-range feed, or the Operator Connect numbers), the
/// rest is the body.
///
/// - a fetch fails only as an unreadable answer or a broken page chain (never a timeout or a
///   transport error: the server always answers 200); a `phone_usage` or Operator Connect
///   page is an object;
/// - since every page is the same answer, a fetch succeeds only when the answer names no next
///   page (a cursor that comes back is a loop);
/// - entries are distinct, named by the source, within the limits, at most one per item.
pub fn fusion(data: &[u8]) {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let next = parsed.as_ref().and_then(|v| v.get("next"));
    // An absolute cursor sends the next request to whatever host it names: not this server.
    // (`[items, next]` is where a phone_usage page read as an array has it.)
    let absolute = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|c| c.starts_with("http://") || c.starts_with("https://"))
    };
    if absolute(next) || absolute(parsed.as_ref().and_then(|v| v.get(1))) {
        return;
    }
    let feed = Feed::of(flags);
    let out = match fusion_fetch(feed, body) {
        Ok(out) => out,
        Err(SourceError::BadBody { .. } | SourceError::Pagination { .. }) => return,
        Err(e) => panic!("a fetch from a server that always answers 200 failed: {e}"),
    };
    // A page of numbers past f64's range is read, but is not a `Value` here: the Operator
    // Connect feed reads its items as raw text, so it may accept what this tree cannot hold.
    let Some(value) = parsed.as_ref() else {
        assert!(
            matches!(feed, Feed::OcNumbers(_)),
            "a fetch succeeded, so the answer is JSON"
        );
        return;
    };
    assert!(
        feed == Feed::Ranges || value.is_object(),
        "a {feed:?} answer that is not an object was accepted: {value}"
    );
    let last_page =
        matches!(next, None | Some(Value::Null)) || next.and_then(Value::as_str) == Some("");
    let items = match (feed.list_key(), value) {
        (None, Value::Array(items)) => items.len(),
        (None, Value::Object(object)) => {
            assert!(
                last_page,
                "a next cursor was followed to the same page without a loop"
            );
            object
                .iter()
                .filter(|(k, _)| *k != "next")
                .filter_map(|(_, v)| v.as_array())
                .map(Vec::len)
                .max()
                .unwrap_or(0)
        }
        (None, other) => panic!("a range feed answer {other} was accepted"),
        (Some(key), value) => {
            assert!(
                last_page,
                "a next cursor was followed to the same page without a loop"
            );
            let list = value.get(key).and_then(Value::as_array);
            list.unwrap_or_else(|| panic!("accepted, so {key} is a list"))
                .len()
        }
    };
    check_entries(&out, "fusion", items, true);
    if feed == Feed::Ranges {
        let fixed = Tag::parse("Trunk=fixed", 64).unwrap();
        assert!(out.entries.iter().all(|e| e.tag == fixed));
    }
}

/// One real `FusionSource::fetch` of `feed` from a loopback server answering every request
/// with 200 and `body`.
pub fn fusion_fetch(feed: Feed, body: &[u8]) -> Result<SourceEntries, SourceError> {
    let harness = FusionHarness::get();
    let mut harness = harness.lock().unwrap_or_else(|e| e.into_inner());
    *harness.body.lock().unwrap_or_else(|e| e.into_inner()) = body.to_vec();
    let harness = &mut *harness;
    let source = match feed {
        Feed::PhoneUsage => &mut harness.usage,
        Feed::Ranges => &mut harness.ranges,
        Feed::OcNumbers(false) => &mut harness.oc,
        Feed::OcNumbers(true) => &mut harness.oc_all,
    };
    harness.runtime.block_on(source.fetch())
}

/// The Fusion sources under fuzz and the server they read: built once per process.
struct FusionHarness {
    runtime: tokio::runtime::Runtime,
    body: Arc<Mutex<Vec<u8>>>,
    usage: FusionSource,
    ranges: FusionSource,
    oc: FusionSource,
    oc_all: FusionSource,
}

impl FusionHarness {
    fn get() -> &'static Mutex<FusionHarness> {
        static HARNESS: OnceLock<Mutex<FusionHarness>> = OnceLock::new();
        HARNESS.get_or_init(|| Mutex::new(FusionHarness::start()))
    }

    fn start() -> FusionHarness {
        let body = Arc::new(Mutex::new(Vec::new()));
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::clone(&body);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let served = Arc::clone(&served);
                std::thread::spawn(move || serve(stream, &served));
            }
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let config = |feed: FusionFeed, template: &str| {
            let mut config = FusionConfig::new(
                "fusion",
                &url,
                "draas1",
                "group-1",
                FusionAuth::Token(Secret::new("machine-token")),
                tag_rule(
                    template,
                    fusion::parse_template,
                    &[("acme", "Trunk=override")],
                ),
            );
            config.feed = feed;
            config.limits = LIMITS;
            config.timeout = Duration::from_secs(10);
            config.http = HttpConfig {
                connect_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(5),
                max_body: 1 << 20,
                retry_initial: Duration::from_millis(1),
                retry_max: Duration::from_millis(1),
                retry_budget: Duration::ZERO,
            };
            // reqwest needs the runtime's context to build its client.
            let _guard = runtime.enter();
            FusionSource::new(config).expect("a valid Fusion configuration")
        };
        let usage = config(FusionFeed::PhoneUsage, "Trunk={tenant};Site={group}");
        let ranges = config(
            FusionFeed::Ranges {
                path: "groups/{group_uuid}/number_ranges".into(),
            },
            "Trunk=fixed",
        );
        let oc_feed = |include_unprovisioned: bool| FusionFeed::OcNumbers {
            subscriptions: vec![OcSubscription {
                tenant: "Café Noir".into(),
                subscription: "s1".into(),
                tags: tag_rule(
                    "{tenant:slug}-{country:slug}",
                    fusion::parse_oc_template,
                    &[],
                ),
            }],
            include_unprovisioned,
        };
        let oc = config(oc_feed(false), "Trunk=unused");
        let oc_all = config(oc_feed(true), "Trunk=unused");
        FusionHarness {
            runtime,
            body,
            usage,
            ranges,
            oc,
            oc_all,
        }
    }
}

/// Answers every request on one keep-alive connection with 200 and the current body.
fn serve(stream: TcpStream, body: &Mutex<Vec<u8>>) {
    // One write per answer and no Nagle delay: a fetch is a round trip, not a stream.
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        // The request line and headers; requests here are GETs without a body.
        let mut line = String::new();
        let mut lines = 0;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" || line == "\n" => break,
                Ok(_) => lines += 1,
            }
        }
        if lines == 0 {
            continue;
        }
        let body = body.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        answer.extend_from_slice(&body);
        if writer.write_all(&answer).is_err() {
            return;
        }
    }
}
