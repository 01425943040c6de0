//! The rule index against the brute-force `best_match`, on random dial plans of every pattern
//! shape (foreign ones included), and on the shapes met in the field.

use super::*;
use crate::dialplan::pattern::{best_match, DigitSet};
use proptest::prelude::*;

fn p(text: &str) -> Pattern {
    Pattern::parse(text).unwrap()
}

fn n(text: &str) -> Number {
    Number::parse(text).unwrap()
}

/// The reference: the SBC's best match over every rule, tried one by one.
fn brute(rules: &[(u32, Pattern)], number: Number) -> Option<u32> {
    best_match(
        rules.iter().map(|(id, pattern)| (*id, pattern, &())),
        &number.to_string(),
    )
    .map(|(id, _)| id)
}

fn index(rules: &[(u32, Pattern)]) -> RuleIndex {
    RuleIndex::build(rules.iter().map(|(id, pattern)| (*id, pattern))).unwrap()
}

fn rules(list: &[(u32, &str)]) -> Vec<(u32, Pattern)> {
    list.iter().map(|&(id, text)| (id, p(text))).collect()
}

/// The shapes of a shared OCDialPlan: Live Platform's per-number rule (open, no `#`), a
/// 4-digit bracket, dialsync's own ranges, a country's exact number, and a catch-all.
#[test]
fn field_shapes() {
    // A 4-digit bracket is one element: one number of four digits, 1000 to 1999.
    assert_eq!(
        p("+2711123[1000-1999]").elements().last(),
        Some(&Element::Set(DigitSet::new(4, vec![(1000, 1999)]).unwrap()))
    );
    let plan = rules(&[
        (10, "+97239753000"),
        (11, "+2711123[1000-1999]"),
        (12, "+3226127xxx#"),
        (13, "+32#"),
        (14, "+3226127[000-499]#"),
    ]);
    let without_star = index(&plan);
    let mut with_star = plan.clone();
    with_star.push((99, p("*")));
    let with_star = index(&with_star);
    let cases = [
        ("+97239753000", Some(10)),
        ("+972397530001", Some(10)),
        ("+972397530009999", Some(10)),
        ("+97239753001", None),
        ("+9723975300", None),
        ("+27111231000", Some(11)),
        ("+27111231999", Some(11)),
        ("+271112319995", Some(11)),
        ("+27111232000", None),
        ("+27111230999", None),
        ("+2711123100", None),
        ("+3226127000", Some(14)),
        ("+3226127499", Some(14)),
        ("+3226127500", Some(12)),
        ("+3226127999", Some(12)),
        ("+32261275000", None),
        ("+322612799", None),
        ("+32", Some(13)),
        ("+321", None),
        ("+3", None),
    ];
    for (number, expected) in cases {
        let number = n(number);
        assert_eq!(without_star.lookup(number), expected, "{number}");
        assert_eq!(
            without_star.lookup(number),
            brute(&plan, number),
            "{number}"
        );
        assert_eq!(with_star.lookup(number), expected.or(Some(99)), "{number}");
    }
    assert_eq!(without_star.residual_rules(), 0);
    // Live Platform: 5 lengths; the bracket: 5 lengths; the ranges: 2 (000-499, 500-999);
    // `+32#`: 1.
    assert_eq!(without_star.len(), 5 + 5 + 2 + 1);
    assert!(without_star.intervals().all(|interval| interval.exact));
    let live: Vec<NumberRange> = without_star
        .intervals()
        .filter(|interval| interval.rule == Some(10))
        .map(|interval| interval.range)
        .collect();
    assert_eq!(live.len(), 5);
    assert_eq!(live[0], NumberRange::single(n("+97239753000")));
    assert_eq!(
        live[4],
        NumberRange::between(n("+972397530000000"), n("+972397530009999")).unwrap()
    );
}

/// The vendor's examples (DESIGN.md §4), dialled with the `+` every number has.
#[test]
fn vendor_examples() {
    for (plan, number, expected) in [
        (&[(1, "+321xxx"), (2, "+321")][..], "+321444", 1),
        (&[(1, "+321xxx"), (2, "+321")], "+32144", 2),
        (&[(1, "+532[1-9]"), (2, "+532[2-4]")], "+5324", 2),
        (&[(1, "+523x"), (2, "+523[1-9]")], "+5234", 2),
        (&[(1, "+532[1-9]1111"), (2, "+5321")], "+53211111", 2),
    ] {
        assert_eq!(
            index(&rules(plan)).lookup(n(number)),
            Some(expected),
            "{number}"
        );
    }
}

/// Without the `+` a pattern never matches a number; `.` matches the `+`.
#[test]
fn the_plus_is_part_of_the_number() {
    let plan = rules(&[(1, "32"), (2, ".32"), (3, "x"), (4, "\\+33")]);
    let built = index(&plan);
    assert_eq!(built.lookup(n("+32")), Some(2));
    assert_eq!(built.lookup(n("+33")), Some(4));
    assert_eq!(built.lookup(n("+1")), None);
}

/// Ties: between identical patterns the lower id wins, whatever the order given.
#[test]
fn identical_patterns_go_to_the_lower_id() {
    let plan = rules(&[(7, "+32"), (3, "+32"), (5, "+32")]);
    assert_eq!(index(&plan).lookup(n("+321")), Some(3));
    assert_eq!(index(&plan).len(), MAX_DIGITS as usize - 1);
}

/// A rule that would expand to 10^12 intervals per length is kept aside, and still answered
/// exactly.
#[test]
fn explosive_rule_is_kept_aside_and_still_exact() {
    // `1`, twelve free digits, `2`: 14 digits, open.
    let plan = rules(&[(1, "+1xxxxxxxxxxxx2"), (2, "+1"), (3, "+1x")]);
    let built = index(&plan);
    assert_eq!(built.residual_rules(), 1);
    assert!(built.len() < 40, "{}", built.len());
    for (number, expected) in [
        ("+10000000000002", Some(1)),
        ("+19999999999992", Some(1)),
        ("+100000000000029", Some(1)),
        ("+10000000000003", Some(3)),
        ("+100000000000030", Some(3)),
        ("+1000000000002", Some(3)),
        ("+12", Some(3)),
        ("+1", Some(2)),
        ("+2", None),
    ] {
        let number = n(number);
        assert_eq!(built.lookup(number), expected, "{number}");
        assert_eq!(built.lookup(number), brute(&plan, number), "{number}");
    }
    // Where it might win: the numbers of 14 and 15 digits starting with 1, `+1x` elsewhere.
    let contested: Vec<RuleInterval> = built.intervals().filter(|i| !i.exact).collect();
    assert_eq!(contested.len(), 2);
    assert!(contested.iter().all(|i| i.rule == Some(3)));
    assert_eq!(
        contested[0].range,
        NumberRange::between(n("+10000000000000"), n("+19999999999999")).unwrap()
    );
}

#[test]
fn empty_and_unmatchable_plans() {
    assert!(index(&[]).is_empty());
    let plan = rules(&[(1, "32"), (2, "+#"), (3, "+1234567890123456"), (4, "#")]);
    let built = index(&plan);
    assert!(built.is_empty());
    assert_eq!(built.lookup(n("+1234567890")), None);
}

/// Digits mostly from a small alphabet, so that random rules overlap and nest.
fn element() -> impl Strategy<Value = Element> {
    prop_oneof![
        8 => prop::sample::select(vec![b'1', b'2', b'0', b'9']).prop_map(Element::Literal),
        2 => Just(Element::AnyDigit),
        1 => Just(Element::NonZero),
        1 => Just(Element::TwoToNine),
        1 => Just(Element::AnyChar),
        3 => (1usize..=3, prop::collection::vec((0u64..1000, 0u64..300), 1..4)).prop_map(
            |(width, items)| {
                let cap = POW10[width] - 1;
                let ranges = items
                    .into_iter()
                    .map(|(lo, len)| (lo.min(cap), (lo + len % (cap + 1)).min(cap)))
                    .collect();
                Element::Set(DigitSet::new(width, ranges).unwrap())
            }
        ),
    ]
}

/// Any pattern of §4, weighted toward what a shared dial plan holds: `+` then digits, open or
/// anchored; now and then `*`, a leading `.`, or a pattern without `+` (matches no number).
fn pattern() -> impl Strategy<Value = Pattern> {
    let first = prop_oneof![
        12 => Just(Some(Element::Literal(b'+'))),
        2 => Just(Some(Element::AnyChar)),
        1 => Just(None),
        1 => Just(Some(Element::Literal(b'1'))),
        1 => Just(Some(Element::AnyDigit)),
    ];
    (
        first,
        prop::collection::vec(element(), 0..7),
        prop::bool::weighted(0.4),
    )
        .prop_map(|(first, body, end)| match first {
            None => Pattern::any(),
            Some(first) => {
                let mut elements = vec![first];
                elements.extend(body);
                if end {
                    elements.push(Element::End);
                }
                Pattern::from_elements(&elements).unwrap()
            }
        })
}

/// Random rules, ids that may repeat, and copies of some prefixes under other ids.
fn plan() -> impl Strategy<Value = Vec<(u32, Pattern)>> {
    (
        prop::collection::vec((0u32..40, pattern()), 1..16),
        prop::collection::vec((any::<prop::sample::Index>(), 0u32..40), 0..5),
    )
        .prop_map(|(mut rules, copies)| {
            for (which, id) in copies {
                let pattern = rules[which.index(rules.len())].1.clone();
                rules.push((id, pattern));
            }
            rules
        })
}

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        2 => Just(Limits::default()),
        1 => (0u64..30, 0u64..80).prop_map(|(per_rule, total)| Limits { per_rule, total }),
    ]
}

/// A number from digits over the rules' alphabet (`1`, `2`, `9` lead; `0` as well inside).
fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        4 => "[129][0129]{0,8}",
        1 => "[1-9][0-9]{0,14}",
        1 => "[129][0129]{9,14}",
    ]
    .prop_map(|digits| n(&digits))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The index gives the rule `best_match` gives, for random numbers and for the numbers at
    /// and just outside every interval's ends.
    #[test]
    fn equals_brute_force_best_match(
        plan in plan(),
        limits in limits(),
        numbers in prop::collection::vec(number(), 1..60),
    ) {
        let built = RuleIndex::build_with_limits(
            plan.iter().map(|(id, pattern)| (*id, pattern)),
            limits,
        ).unwrap();
        for &number in &numbers {
            prop_assert_eq!(built.lookup(number), brute(&plan, number), "{} in {:?}", number, plan);
        }
        // Intervals: sorted, disjoint, and an exact one is won by its rule at both ends.
        let intervals: Vec<RuleInterval> = built.intervals().collect();
        prop_assert_eq!(intervals.len(), built.len());
        let step = intervals.len() / 300 + 1;
        for interval in intervals.iter().step_by(step) {
            let (lo, hi) = (interval.range.lo(), interval.range.hi());
            if interval.exact {
                prop_assert!(interval.rule.is_some());
                prop_assert_eq!(brute(&plan, lo), interval.rule, "{} in {:?}", lo, plan);
                prop_assert_eq!(brute(&plan, hi), interval.rule, "{} in {:?}", hi, plan);
            }
            for number in [Some(lo), Some(hi), lo.pred(), hi.succ()].into_iter().flatten() {
                prop_assert_eq!(
                    built.lookup(number), brute(&plan, number), "{} in {:?}", number, plan
                );
            }
        }
        for pair in intervals.windows(2) {
            prop_assert!(pair[0].range.hi().key() < pair[1].range.lo().key());
        }
    }
}
