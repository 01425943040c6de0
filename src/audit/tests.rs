//! The interval audit against a per-number audit by brute force (`best_match` over every
//! rule, `Mapping::tag_of` for the desired tag), and the shapes met in the field.

use std::collections::BTreeMap;

use super::*;
use crate::compile::{compile, Encoding};
use crate::dialplan::pattern::best_match;
use crate::dialplan::rule_index::Limits;
use crate::number::{NumberRange, OpenPrefix};
use crate::resolve::{resolve, Coverage, Entry, Provenance};
use proptest::prelude::*;

fn n(text: &str) -> Number {
    Number::parse(text).unwrap()
}

fn tag(text: &str) -> Tag {
    Tag::parse(text, 64).unwrap()
}

/// `+lo..+hi`, `+n` or `+p*` (an open prefix).
fn entry(coverage: &str, tag_text: &str) -> Entry {
    let coverage = match coverage.strip_suffix('*') {
        Some(prefix) => Coverage::Prefix(OpenPrefix::parse(prefix).unwrap()),
        None => {
            let (lo, hi) = coverage.split_once("..").unwrap_or((coverage, coverage));
            Coverage::Range(NumberRange::parse(lo, Some(hi), u64::MAX).unwrap())
        }
    };
    Entry {
        coverage,
        tag: tag(tag_text),
        provenance: Provenance {
            source: std::sync::Arc::new("s".into()),
            item: String::new().into(),
        },
    }
}

/// A dial plan: (index, prefix, tag, owned).
struct Plan(Vec<(u32, Pattern, Tag, bool)>);

impl Plan {
    fn new(rules: &[(u32, &str, &str, bool)]) -> Plan {
        Plan(
            rules
                .iter()
                .map(|&(i, p, t, o)| (i, Pattern::parse(p).unwrap(), tag(t), o))
                .collect(),
        )
    }

    fn view(&self) -> Vec<PlanRule<'_>> {
        self.0
            .iter()
            .map(|(index, pattern, tag, owned)| PlanRule {
                index: *index,
                pattern,
                tag,
                owned: *owned,
            })
            .collect()
    }
}

fn run(entries: &[Entry], plan: &Plan) -> Audit {
    let mapping = resolve(entries).mapping;
    let rules = plan.view();
    let index = rule_index(&rules).unwrap();
    audit(&mapping, &rules, &index, Options::default())
}

/// The Live Platform rule `+97239753000` (open, bare FQDN tag) beats our bracket range for
/// that one number: shadowed. Its neighbours route by our rule.
#[test]
fn a_live_platform_rule_shadows_one_number_of_our_range() {
    let entries = [entry("+97239753000..+97239753009", "Trunk=ours")];
    let plan = Plan::new(&[
        (1, "+9723975300[0-9]#", "Trunk=ours", true),
        (7, "+97239753000", "sandbox1.audiocodes.be", false),
    ]);
    let audit = run(&entries, &plan);
    assert_eq!(audit.counts.routed, 9);
    assert_eq!(audit.counts.shadowed, 1);
    assert_eq!(audit.counts.routed_by_foreign, 0);
    assert!(!audit.counts.is_clean());
    assert_eq!(
        audit.findings,
        [Finding {
            verdict: Verdict::Shadowed,
            first: n("+97239753000"),
            last: n("+97239753000"),
            count: 1,
            rule: Some(7),
            desired: Some(0),
        }]
    );
}

#[test]
fn a_foreign_rule_with_the_desired_tag_routes() {
    let entries = [entry("+3226127000..+3226127999", "Trunk=a")];
    let plan = Plan::new(&[
        (1, "+3226127xxx#", "Trunk=a", true),
        (2, "+3226127001", "Trunk=a", false),
    ]);
    let audit = run(&entries, &plan);
    assert_eq!(audit.counts.routed, 1000);
    assert_eq!(audit.counts.routed_by_foreign, 1);
    assert!(audit.counts.is_clean());
    assert!(audit.findings.is_empty());
}

#[test]
fn hand_edits_misroute_unroute_and_strand() {
    let entries = [
        entry("+3226127000..+3226127999", "Trunk=a"),
        entry("+3226128000..+3226128099", "Trunk=b"),
        entry("+3301*", "Trunk=c"),
    ];
    let plan = Plan::new(&[
        // Hand-edited to the wrong tag.
        (1, "+3226127xxx#", "Trunk=b", true),
        // +3226128000..099 lost its rule; +3301 open is routed.
        (3, "+3301", "Trunk=c", true),
        // A rule dialsync owns for numbers nobody assigns.
        (4, "+3226129[00-49]#", "Trunk=a", true),
        // A foreign rule for unassigned numbers is none of our business.
        (5, "+44", "Trunk=x", false),
    ]);
    let audit = run(&entries, &plan);
    let c = audit.counts;
    assert_eq!(c.misrouted, 1000);
    assert_eq!(c.unrouted, 100);
    assert_eq!(c.shadowed, 0);
    assert_eq!(c.stray_numbers, 50);
    assert_eq!(c.stray_rules, 1);
    // +3301 alone holds every number of 4 to 15 digits under it.
    let open: u64 = (4..=15u32).map(|len| 10u64.pow(len - 4)).sum();
    assert_eq!(c.routed, open);
    assert_eq!(
        audit.strays,
        [StrayRule {
            rule: 4,
            numbers: 50,
            first: n("+322612900")
        }]
    );
    let verdicts: Vec<(Verdict, u64, Option<u32>)> = audit
        .findings
        .iter()
        .map(|f| (f.verdict, f.count, f.rule))
        .collect();
    assert_eq!(
        verdicts,
        [
            (Verdict::Stray, 50, Some(4)),
            (Verdict::Misrouted, 1000, Some(1)),
            (Verdict::Unrouted, 100, None),
        ]
    );
    assert_eq!(audit.findings_total, 3);
}

#[test]
fn findings_are_capped_but_counted() {
    let entries = [entry("+3210..+3219", "T=a"), entry("+3230..+3239", "T=a")];
    let plan = Plan::new(&[(1, "+322x#", "T=a", true)]);
    let mapping = resolve(&entries).mapping;
    let rules = plan.view();
    let index = rule_index(&rules).unwrap();
    let options = Options {
        max_findings: 1,
        ..Options::default()
    };
    let audit = audit(&mapping, &rules, &index, options);
    assert_eq!(audit.findings_total, 3);
    assert_eq!(audit.findings.len(), 1);
    assert_eq!(audit.findings[0].count, 10);
    assert_eq!(audit.counts.unrouted, 20);
    assert_eq!(audit.counts.stray_numbers, 10);
}

/// A rule kept aside by the index makes its pieces contested: checked number by number
/// within the budget, counted unchecked beyond it.
#[test]
fn contested_pieces_beyond_the_budget_are_unchecked() {
    let entries = [entry("+3210..+3299", "T=a")];
    let plan = Plan::new(&[(1, "+32xx#", "T=a", true), (2, "+32x5#", "T=b", false)]);
    let mapping = resolve(&entries).mapping;
    let rules = plan.view();
    let tight = Limits {
        per_rule: 1,
        total: 1,
    };
    let index =
        RuleIndex::build_with_limits(rules.iter().map(|r| (r.index, r.pattern)), tight).unwrap();
    assert_eq!(index.residual_rules(), 1);
    let checked = audit(&mapping, &rules, &index, Options::default());
    assert_eq!(checked.counts.shadowed, 9, "+3215, +3225, ... +3295");
    assert_eq!(checked.counts.routed, 81);
    let unchecked = audit(
        &mapping,
        &rules,
        &index,
        Options {
            contested_budget: 5,
            ..Options::default()
        },
    );
    assert_eq!(unchecked.counts.unchecked, 90);
    assert!(!unchecked.counts.is_clean());
}

// ---- the proptest ----

const TAGS: [&str; 4] = ["T=a", "T=b", "T=c", "T=z"];

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    let one = (10u64..999, 0u64..40, 0usize..3, 0u8..5).prop_map(|(start, span, t, shape)| {
        let coverage = match shape {
            0 => format!("+{}*", start / 10),
            1 => format!("+{}*", start),
            // Both ends of one length.
            _ => format!(
                "+{}..+{}",
                start,
                (start + span).min(if start < 100 { 99 } else { 999 })
            ),
        };
        entry(&coverage, TAGS[t])
    });
    prop::collection::vec(one, 1..8)
}

/// A prefix over a small alphabet: digits, `x`, `z`, `n`, brackets, `.`, open or `#`.
fn pattern() -> impl Strategy<Value = Pattern> {
    let element = prop::sample::select(vec![
        "1", "2", "3", "0", "9", "x", "z", "n", "[0-4]", "[1,3]", ".",
    ]);
    prop_oneof![
        20 => (prop::collection::vec(element, 0..4), any::<bool>()).prop_map(|(body, end)| {
            let mut text = format!("+{}", body.concat());
            if end {
                text.push('#');
            }
            Pattern::parse(&text).unwrap()
        }),
        1 => Just(Pattern::parse("*").unwrap()),
    ]
}

/// Rules the compiler writes for the mapping (owned), some edited by hand, plus random owned
/// and foreign rules.
fn plan_for(mapping: &Mapping, edits: &[(usize, u8)], extra: Vec<(Pattern, usize, bool)>) -> Plan {
    let mut rules: Vec<(u32, Pattern, Tag, bool)> = compile(mapping, Encoding::Ranges, 9)
        .into_iter()
        .enumerate()
        .map(|(i, rule)| (i as u32, rule.prefix, mapping.tag(rule.tag).clone(), true))
        .collect();
    for &(at, edit) in edits {
        if rules.is_empty() {
            break;
        }
        let at = at % rules.len();
        match edit {
            0 => {
                rules.remove(at);
            }
            1 => rules[at].2 = tag(TAGS[at % 4]),
            _ => rules[at].3 = false,
        }
    }
    for (i, (pattern, t, owned)) in extra.into_iter().enumerate() {
        rules.push((100 + i as u32, pattern, tag(TAGS[t]), owned));
    }
    Plan(rules)
}

/// The audit, one number at a time, by the definitions.
fn brute(mapping: &Mapping, plan: &Plan, below: u64) -> BTreeMap<u64, (Verdict, Option<u32>)> {
    let mut out = BTreeMap::new();
    for value in 1..10_000u64 {
        let number = Number::from_u64(value).unwrap();
        if number.key() >= below {
            continue;
        }
        let desired = mapping.tag_of(number).map(|t| mapping.tag(t).as_str());
        let winner = best_match(
            plan.0.iter().map(|rule| (rule.0, &rule.1, rule)),
            &number.to_string(),
        )
        .map(|(_, (index, _, tag, owned))| (*index, tag, *owned));
        let verdict = match (desired, winner) {
            (None, Some((_, _, true))) => Verdict::Stray,
            (None, _) => continue,
            (Some(_), None) => Verdict::Unrouted,
            (Some(want), Some((_, t, _))) if t.as_str() == want => Verdict::Routed,
            (Some(_), Some((_, _, true))) => Verdict::Misrouted,
            (Some(_), Some((_, _, false))) => Verdict::Shadowed,
        };
        out.insert(number.key(), (verdict, winner.map(|(index, _, _)| index)));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn equals_a_per_number_audit(
        entries in entries(),
        edits in prop::collection::vec((0usize..50, 0u8..3), 0..4),
        extra in prop::collection::vec((pattern(), 0usize..4, prop::bool::weighted(0.3)), 0..6),
        tight in any::<bool>(),
        reversed in any::<bool>(),
    ) {
        let mapping = resolve(&entries).mapping;
        let mut plan = plan_for(&mapping, &edits, extra);
        if reversed {
            // A dial plan not in index order: the audit finds each rule all the same.
            plan.0.reverse();
        }
        let rules = plan.view();
        let limits = if tight { Limits { per_rule: 3, total: 20 } } else { Limits::default() };
        let index = RuleIndex::build_with_limits(
            rules.iter().map(|r| (r.index, r.pattern)),
            limits,
        ).unwrap();
        // Numbers of up to 4 digits: what brute force can enumerate.
        let below = Number::from_u64(10_000).unwrap().key();
        let got = walk(&mapping, &rules, &index, Options::default(), below);
        let want = brute(&mapping, &plan, below);

        let count = |v: Verdict| want.values().filter(|(w, _)| *w == v).count() as u64;
        let c = got.counts;
        prop_assert_eq!(c.routed, count(Verdict::Routed));
        prop_assert_eq!(c.misrouted, count(Verdict::Misrouted));
        prop_assert_eq!(c.shadowed, count(Verdict::Shadowed));
        prop_assert_eq!(c.unrouted, count(Verdict::Unrouted));
        prop_assert_eq!(c.stray_numbers, count(Verdict::Stray));
        prop_assert_eq!(c.unchecked, 0);
        let foreign = want
            .iter()
            .filter(|(_, (v, rule))| {
                *v == Verdict::Routed && plan.0.iter().any(|(i, _, _, o)| Some(*i) == *rule && !o)
            })
            .count() as u64;
        prop_assert_eq!(c.routed_by_foreign, foreign);

        // Every finding, number by number, is what brute force says; and nothing is missed.
        let mut listed = BTreeMap::new();
        for f in &got.findings {
            prop_assert!(f.first <= f.last);
            prop_assert_eq!(f.count, f.last.key() - f.first.key() + 1);
            for key in f.first.key()..=f.last.key() {
                listed.insert(key, (f.verdict, f.rule));
            }
        }
        let findings: BTreeMap<u64, (Verdict, Option<u32>)> = want
            .into_iter()
            .filter(|(_, (v, _))| *v != Verdict::Routed)
            .collect();
        prop_assert_eq!(listed, findings);
        prop_assert_eq!(got.findings_total, got.findings.len() as u64);

        // Strays per rule.
        let mut strays: BTreeMap<u32, u64> = BTreeMap::new();
        for f in got.findings.iter().filter(|f| f.verdict == Verdict::Stray) {
            *strays.entry(f.rule.unwrap()).or_default() += f.count;
        }
        let by_rule: BTreeMap<u32, u64> = got.strays.iter().map(|s| (s.rule, s.numbers)).collect();
        prop_assert_eq!(by_rule, strays);
    }
}
