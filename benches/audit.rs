//! The audit at scale: a dial plan of ~100k rules against the mapping it was compiled from,
//! with the damage the audit exists to find (Live Platform per-number rules, hand-edited and
//! deleted rules).
//!
//! `cargo bench --bench audit` prints `name=value` lines (`#` lines are commentary):
//! - `audit_ms`: the interval audit, rule index given (the daemon builds the index anyway);
//! - `audit_with_index_ms`: the same, building the rule index first (what `dialsync audit`
//!   pays after loading);
//! - `audit_over_per_number`: the audit's time over a number-by-number audit (index lookup
//!   and `Mapping::tag_of` per number) of every assigned number, extrapolated from a timed
//!   sample. The lower the better.
//!
//! Each time is the best of several runs. The audit's verdicts are checked against brute
//! force (`best_match` over every rule) on a sample of numbers, and the bench fails if they
//! disagree.

#[allow(dead_code)]
mod workloads;

use std::hint::black_box;
use std::time::{Duration, Instant};

use dialsync::audit::{self, Finding, Options, PlanRule, Verdict};
use dialsync::compile::{self as compiler, Encoding};
use dialsync::dialplan::pattern::{best_match, Pattern};
use dialsync::dialplan::rule::Tag;
use dialsync::number::Number;
use dialsync::resolve::Mapping;

const SEED: u64 = 0x5EED_A0D1;
const RANGES: usize = 100_000;
const REPETITIONS: usize = 5;
/// Numbers timed one by one for the per-number baseline.
const PER_NUMBER_SAMPLE: usize = 200_000;
/// Numbers checked against `best_match` over every rule.
const BRUTE_SAMPLE: usize = 300;

fn main() {
    let workload = workloads::realistic(RANGES, SEED);
    let mapping = workloads::mapping(&workload);
    let numbers: u64 = mapping.ranges().iter().map(|(r, _)| r.size()).sum();

    // The dial plan: every compiled rule, owned; one in a hundred retagged by hand and one in
    // a hundred deleted; a Live Platform per-number rule for every tenth range.
    let wrong = Tag::parse("Trunk=hand-edited", 64).expect("valid tag");
    let live = Tag::parse("sandbox1.audiocodes.be", 64).expect("valid tag");
    let mut rules: Vec<(u32, Pattern, Tag, bool)> = Vec::new();
    for (i, rule) in compiler::compile(&mapping, Encoding::Ranges, 9)
        .into_iter()
        .enumerate()
    {
        match i % 100 {
            7 => continue,
            3 => rules.push((i as u32, rule.prefix, wrong.clone(), true)),
            _ => rules.push((i as u32, rule.prefix, mapping.tag(rule.tag).clone(), true)),
        }
    }
    let first_foreign = rules.len() as u32 + 1_000_000;
    for (i, (range, _)) in mapping.ranges().iter().step_by(10).enumerate() {
        let pattern = Pattern::parse(&range.lo().to_string()).expect("a number is a prefix");
        rules.push((first_foreign + i as u32, pattern, live.clone(), false));
    }
    let view: Vec<PlanRule<'_>> = rules
        .iter()
        .map(|(index, pattern, tag, owned)| PlanRule {
            index: *index,
            pattern,
            tag,
            owned: *owned,
        })
        .collect();
    println!(
        "# rules={} ranges={} numbers={numbers}",
        view.len(),
        mapping.ranges().len()
    );

    let index = audit::rule_index(&view).expect("a dial plan indexes");
    let options = Options {
        max_findings: 20,
        ..Options::default()
    };
    let audit_time = best_of(|| audit::audit(&mapping, &view, &index, options));
    let with_index = best_of(|| {
        let index = audit::rule_index(&view).expect("a dial plan indexes");
        audit::audit(&mapping, &view, &index, options)
    });
    let full = audit::audit(&mapping, &view, &index, Options::default());
    let c = full.counts;
    println!(
        "# routed={} misrouted={} shadowed={} unrouted={} unchecked={} stray_rules={} \
         findings={} steps={}",
        c.routed,
        c.misrouted,
        c.shadowed,
        c.unrouted,
        c.unchecked,
        c.stray_rules,
        full.findings_total,
        full.steps
    );
    assert_eq!(
        c.assigned(),
        numbers,
        "every assigned number gets one verdict"
    );
    assert!(c.misrouted > 0 && c.shadowed > 0 && c.unrouted > 0);

    // The number-by-number baseline, on an evenly spread sample of the assigned numbers.
    let sample: Vec<Number> = sample_numbers(&mapping, PER_NUMBER_SAMPLE as u64);
    let per_number = best_of(|| {
        let mut routed = 0u64;
        for &number in &sample {
            let want = mapping.tag_of(number);
            let got = index.lookup(number);
            routed += u64::from(want.is_some() && got.is_some());
        }
        routed
    });
    let per_number_all = per_number.as_secs_f64() * numbers as f64 / sample.len() as f64;

    // Brute force agrees with the audit's verdict on a sample.
    let brute_sample = sample_numbers(&mapping, BRUTE_SAMPLE as u64);
    for number in brute_sample {
        let want = mapping.tag_of(number).map(|t| mapping.tag(t));
        let winner = best_match(
            rules.iter().map(|rule| (rule.0, &rule.1, rule)),
            &number.to_string(),
        )
        .map(|(_, rule)| rule);
        let expected = match (want, winner) {
            (None, _) => continue,
            (Some(_), None) => Verdict::Unrouted,
            (Some(want), Some(rule)) if &rule.2 == want => Verdict::Routed,
            (Some(_), Some(rule)) if rule.3 => Verdict::Misrouted,
            (Some(_), Some(_)) => Verdict::Shadowed,
        };
        assert_eq!(verdict(&full.findings, number), expected, "{number}");
    }

    println!(
        "# per_number_sample={} per_number_all_ms={:.1} (extrapolated)",
        sample.len(),
        per_number_all * 1e3
    );
    println!("audit_ms={:.1}", audit_time.as_secs_f64() * 1e3);
    println!("audit_with_index_ms={:.1}", with_index.as_secs_f64() * 1e3);
    println!(
        "audit_over_per_number={:.3}",
        audit_time.as_secs_f64() / per_number_all
    );
}

/// The audit's verdict for an assigned number: its finding's, else routed.
fn verdict(findings: &[Finding], number: Number) -> Verdict {
    let at = findings.partition_point(|f| f.last < number);
    match findings.get(at) {
        Some(f) if f.first <= number => f.verdict,
        _ => Verdict::Routed,
    }
}

/// About `count` assigned numbers spread evenly over the mapping's ranges.
fn sample_numbers(mapping: &Mapping, count: u64) -> Vec<Number> {
    let total: u64 = mapping.ranges().iter().map(|(r, _)| r.size()).sum();
    let step = (total / count).max(1);
    let mut out = Vec::with_capacity(count as usize);
    let mut skip = 0u64;
    for (range, _) in mapping.ranges() {
        let mut key = range.lo().key() + skip;
        while key <= range.hi().key() {
            out.push(Number::from_key(key).expect("keys in a range are numbers"));
            key += step;
        }
        skip = key - range.hi().key() - 1;
    }
    out
}

fn best_of<O>(mut run: impl FnMut() -> O) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..REPETITIONS {
        let started = Instant::now();
        let output = black_box(run());
        best = best.min(started.elapsed());
        drop(output);
    }
    best
}
