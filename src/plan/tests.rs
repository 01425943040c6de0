//! The planner's behaviour through its public entry points: minimal op counts against a brute
//! force, make-before-break replayed op by op, the policies, the gate, the checksum, and the
//! ownership invariant over random field dial plans.

use std::collections::BTreeMap;

use super::*;
use crate::compile::{compile, Encoding};
use crate::dialplan::pattern::best_match;
use crate::number::{Number, NumberRange, OpenPrefix};
use crate::resolve::Mapping;
use proptest::prelude::*;

pub(crate) fn route(prefix: &str, tag: &str) -> Route {
    Route {
        prefix: Pattern::parse(prefix).unwrap(),
        tag: Tag::parse(tag, 64).unwrap(),
    }
}

pub(crate) fn rule(index: u32, name: &str, prefix: &str, tag: &str) -> DialPlanRule {
    let r = route(prefix, tag);
    DialPlanRule {
        index,
        name: name.into(),
        prefix: r.prefix,
        tag: r.tag,
    }
}

pub(crate) fn settings(policy: Policy) -> PlanSettings {
    PlanSettings {
        rule_name: "dialsync".into(),
        policy,
        adopt_foreign: false,
        safety: Safety::default(),
        max_rules: 1000,
    }
}

fn summary(plan: &Plan) -> Vec<String> {
    plan.ops
        .iter()
        .map(|op| {
            let show = |r: &Option<Route>| r.as_ref().map_or("-".into(), |r| r.to_string());
            format!(
                "{} {} {} => {}",
                op.kind(),
                op.index,
                show(&op.before),
                show(&op.after)
            )
        })
        .collect()
}

#[test]
fn unchanged_rules_cost_nothing() {
    let actual = [
        rule(0, "dialsync", "+3210#", "T=a"),
        rule(1, "other", "+33", "T=x"),
    ];
    let plan = plan(
        &[route("+3210#", "T=a")],
        &actual,
        &[],
        &[],
        &settings(Policy::Sync),
    );
    assert!(plan.ops.is_empty());
    assert!(!plan.is_blocked());
    assert_eq!(plan.existing_owned, 1);
}

#[test]
fn changes_are_modified_in_place() {
    let actual = [
        rule(4, "dialsync", "+3210#", "T=a"),
        rule(7, "dialsync", "+322[0-4]#", "T=b"),
    ];
    let desired = [route("+3210#", "T=z"), route("+322[0-6]#", "T=b")];
    let plan = plan(&desired, &actual, &[], &[], &settings(Policy::Sync));
    assert_eq!(
        summary(&plan),
        [
            "modify 4 +3210# -> T=a => +3210# -> T=z",
            "modify 7 +322[0-4]# -> T=b => +322[0-6]# -> T=b"
        ]
    );
}

#[test]
fn adds_take_free_indexes_and_never_collide_with_foreign_rules() {
    let actual = [
        rule(0, "dialsync", "+3210#", "T=a"),
        rule(1, "pbx", "+44", "T=x"),
        rule(3, "pbx", "+45", "T=x"),
    ];
    let desired = [
        route("+3210#", "T=a"),
        route("+3211#", "T=a"),
        route("+3212#", "T=a"),
    ];
    let plan = plan(&desired, &actual, &[], &[], &settings(Policy::Sync));
    assert_eq!(
        summary(&plan),
        ["add 2 - => +3211# -> T=a", "add 4 - => +3212# -> T=a"]
    );
}

#[test]
fn rules_no_longer_wanted_are_deleted_and_foreign_ones_never() {
    let actual = [
        rule(0, "dialsync", "+3210#", "T=a"),
        rule(1, "pbx", "+3299#", "T=x"),
    ];
    let plan = plan(&[], &actual, &[], &[], &settings(Policy::Sync));
    assert_eq!(summary(&plan), ["delete 0 +3210# -> T=a => -"]);
}

#[test]
fn a_foreign_rule_with_the_same_prefix_is_a_conflict_unless_adopted() {
    let actual = [rule(5, "pbx", "+3210#", "T=x")];
    let desired = [route("+3210#", "T=a")];
    let mut config = settings(Policy::Sync);
    let conflicted = plan(&desired, &actual, &[], &[], &config);
    assert!(conflicted.ops.is_empty());
    assert_eq!(conflicted.foreign_conflicts.len(), 1);
    assert_eq!(conflicted.foreign_conflicts[0].foreign_name, "pbx");
    config.adopt_foreign = true;
    let adopted = plan(&desired, &actual, &[], &[], &config);
    assert_eq!(
        summary(&adopted),
        ["modify 5 +3210# -> T=x => +3210# -> T=a"]
    );
    let same = plan(&[route("+3210#", "T=x")], &actual, &[], &[], &config);
    assert_eq!(summary(&same), ["modify 5 +3210# -> T=x => +3210# -> T=x"]);
    assert_eq!(&*apply(&actual, &same.ops, "dialsync")[0].name, "dialsync");
}

#[test]
fn policies_filter_the_same_diff() {
    let actual = [
        rule(0, "dialsync", "+3210#", "T=a"),
        rule(1, "dialsync", "+3299#", "T=gone"),
    ];
    let desired = [route("+3210#", "T=b"), route("+3311#", "T=new")];
    let sync = plan(&desired, &actual, &[], &[], &settings(Policy::Sync));
    assert_eq!(
        sync.counts(),
        OpCounts {
            adds: 0,
            modifies: 2,
            deletes: 0
        }
    );
    let upsert = plan(&desired, &actual, &[], &[], &settings(Policy::UpsertOnly));
    assert_eq!(
        summary(&upsert),
        [
            "add 2 - => +3311# -> T=new",
            "modify 0 +3210# -> T=a => +3210# -> T=b"
        ]
    );
    let create = plan(&desired, &actual, &[], &[], &settings(Policy::CreateOnly));
    assert_eq!(summary(&create), ["add 2 - => +3311# -> T=new"]);
    assert_eq!(
        create.held_back,
        OpCounts {
            adds: 0,
            modifies: 1,
            deletes: 0
        }
    );
    let shrink = plan(&[], &actual, &[], &[], &settings(Policy::UpsertOnly));
    assert!(shrink.ops.is_empty());
    assert_eq!(shrink.held_back.deletes, 2);
}

#[test]
fn the_gate_blocks_large_changes_emptied_sources_and_overflow() {
    let actual: Vec<DialPlanRule> = (0..20)
        .map(|i| rule(i, "dialsync", &format!("+32{:02}#", i + 10), "T=a"))
        .collect();
    let keep: Vec<Route> = (0..14)
        .map(|i| route(&format!("+32{:02}#", i + 10), "T=a"))
        .collect();
    let config = settings(Policy::Sync);
    // 6 of 20 deleted: exactly 0.3, allowed; 7 is more.
    assert!(!plan(&keep, &actual, &[], &[], &config).is_blocked());
    let blocked = plan(&keep[..13], &actual, &[], &[], &config);
    assert_eq!(
        blocked.blocked,
        [BlockReason::TooManyDeletes {
            deletes: 7,
            existing: 20,
            max_fraction: 0.3
        }]
    );
    assert_eq!(
        blocked.ops.len(),
        7,
        "a blocked plan still says what it would do"
    );
    // Below min_existing, anything goes.
    assert!(!plan(&[], &actual[..9], &[], &[], &config).is_blocked());
    let retag: Vec<Route> = (0..20)
        .map(|i| route(&format!("+32{:02}#", i + 10), "T=b"))
        .collect();
    assert!(matches!(
        plan(&retag, &actual, &[], &[], &config).blocked[..],
        [BlockReason::TooManyModifies { modifies: 20, .. }]
    ));
    let emptied = plan(&keep, &actual, &[], &["fusion".to_string()], &config);
    assert_eq!(
        emptied.blocked,
        [BlockReason::EmptiedSources {
            sources: vec!["fusion".into()]
        }]
    );
    let mut small = config.clone();
    small.max_rules = 19;
    let full: Vec<Route> = (0..20)
        .map(|i| route(&format!("+32{:02}#", i + 10), "T=a"))
        .collect();
    assert!(!plan(&full, &actual, &[], &[], &config).is_blocked());
    assert_eq!(
        plan(&full, &actual, &[], &[], &small).blocked,
        [BlockReason::OverCapacity {
            rules: 20,
            max_rules: 19
        }]
    );
}

#[test]
fn checksum_is_stable_and_follows_the_ops() {
    let actual = [rule(0, "dialsync", "+3210#", "T=a")];
    let one = plan(
        &[route("+3211#", "T=a")],
        &actual,
        &[],
        &[],
        &settings(Policy::Sync),
    );
    let again = plan(
        &[route("+3211#", "T=a")],
        &actual,
        &[],
        &[],
        &settings(Policy::Sync),
    );
    assert_eq!(one.checksum, again.checksum);
    assert_eq!(one.checksum.len(), 64);
    // Pinned: a change of the canonical form must be deliberate (it invalidates quoted
    // checksums of blocked plans).
    assert_eq!(
        one.checksum,
        checksum(&[Op {
            index: 0,
            before: Some(route("+3210#", "T=a")),
            after: Some(route("+3211#", "T=a")),
        }])
    );
    assert_eq!(
        checksum(&[]),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let other = plan(
        &[route("+3212#", "T=a")],
        &actual,
        &[],
        &[],
        &settings(Policy::Sync),
    );
    assert_ne!(one.checksum, other.checksum);
}

// ---- properties ----

/// Routes from a small universe, so that desired and actual share many.
fn universe_route() -> impl Strategy<Value = Route> {
    (
        prop::sample::select(vec!["+3210#", "+3211#", "+321[2-5]#", "+322x#"]),
        0u8..2,
    )
        .prop_map(|(prefix, tag)| route(prefix, &format!("T={tag}")))
}

/// The fewest add/modify/delete operations turning one multiset of routes into another,
/// by breadth-first search over every sequence of operations.
fn brute_force_minimum(actual: &[Route], desired: &[Route], universe: &[Route]) -> usize {
    let normal = |mut v: Vec<Route>| {
        v.sort();
        v
    };
    let goal = normal(desired.to_vec());
    let start = normal(actual.to_vec());
    let mut frontier = vec![start.clone()];
    let mut seen = BTreeSet::from([start]);
    for distance in 0.. {
        if frontier.contains(&goal) {
            return distance;
        }
        let mut next = Vec::new();
        for state in frontier {
            let mut moves: Vec<Vec<Route>> = Vec::new();
            for r in universe {
                let mut added = state.clone();
                added.push(r.clone());
                moves.push(added);
            }
            for i in 0..state.len() {
                let mut deleted = state.clone();
                deleted.remove(i);
                moves.push(deleted.clone());
                for r in universe {
                    let mut modified = deleted.clone();
                    modified.push(r.clone());
                    moves.push(modified);
                }
            }
            for m in moves {
                let m = normal(m);
                if seen.insert(m.clone()) {
                    next.push(m);
                }
            }
        }
        frontier = next;
    }
    unreachable!()
}

proptest! {
    #[test]
    fn op_count_is_the_minimum(
        actual in prop::collection::vec(universe_route(), 0..4),
        desired in prop::collection::btree_set(universe_route(), 0..4),
    ) {
        let rules: Vec<DialPlanRule> = actual
            .iter()
            .enumerate()
            .map(|(i, r)| DialPlanRule {
                index: i as u32 * 2,
                name: "dialsync".into(),
                prefix: r.prefix.clone(),
                tag: r.tag.clone(),
            })
            .collect();
        let desired: Vec<Route> = desired.into_iter().collect();
        let plan = plan(&desired, &rules, &[], &[], &settings(Policy::Sync));
        let universe: Vec<Route> = ["+3210#", "+3211#", "+321[2-5]#", "+322x#"]
            .iter()
            .flat_map(|p| [route(p, "T=0"), route(p, "T=1")])
            .collect();
        prop_assert_eq!(plan.ops.len(), brute_force_minimum(&actual, &desired, &universe));
        // And it reaches the desired state.
        let after = apply(&rules, &plan.ops, "dialsync");
        let mut routes: Vec<Route> = after
            .iter()
            .map(|r| Route { prefix: r.prefix.clone(), tag: r.tag.clone() })
            .collect();
        routes.sort();
        prop_assert_eq!(routes, desired);
    }
}

/// A random mapping over the 3-digit numbers under +1 (+100..+199), with an occasional open
/// prefix.
fn mapping() -> impl Strategy<Value = Mapping> {
    let ranges = prop::collection::btree_map(0u64..100, (0u64..6, 0u32..3), 0..14);
    let prefixes = prop::collection::vec(
        (prop::sample::select(vec![1u64, 11, 12, 17]), 0u32..3),
        0..2,
    );
    (ranges, prefixes).prop_map(|(ranges, prefixes)| {
        let tags = (0..3)
            .map(|i| Tag::parse(&format!("T={i}"), 64).unwrap())
            .collect();
        let mut taken = 0u64;
        let mut pieces = Vec::new();
        for (start, (len, tag)) in ranges {
            let lo = (100 + start).max(taken);
            let hi = (lo + len).min(199);
            if lo > hi {
                continue;
            }
            taken = hi + 1;
            let n = |v| Number::from_u64(v).unwrap();
            pieces.push((NumberRange::between(n(lo), n(hi)).unwrap(), tag));
        }
        let prefixes = prefixes
            .into_iter()
            .map(|(d, t)| (OpenPrefix::of(Number::from_u64(d).unwrap()), t))
            .collect();
        Mapping::new(tags, prefixes, pieces).unwrap()
    })
}

fn routes_of(mapping: &Mapping, encoding: Encoding) -> Vec<Route> {
    compile(mapping, encoding, 9)
        .into_iter()
        .map(|r| Route {
            prefix: r.prefix,
            tag: mapping.tag(r.tag).clone(),
        })
        .collect()
}

fn routed(rules: &[DialPlanRule], number: &str) -> Option<Tag> {
    best_match(rules.iter().map(|r| (r.index, &r.prefix, &r.tag)), number).map(|(_, t)| t.clone())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Replaying any plan op by op, a number routed both before and after is at every step
    /// routed to its old or its new tag: never unrouted, never a third way. Foreign rules
    /// (a broad one and one that overlaps) stay and take part in best match.
    #[test]
    fn make_before_break(
        old in mapping(),
        new in mapping(),
        encoding in prop::sample::select(vec![Encoding::Ranges, Encoding::Prefixes, Encoding::Numbers]),
        foreign in any::<bool>(),
    ) {
        let mut actual: Vec<DialPlanRule> = routes_of(&old, encoding)
            .into_iter()
            .enumerate()
            .map(|(i, r)| DialPlanRule { index: i as u32 + 4, name: "dialsync".into(), prefix: r.prefix, tag: r.tag })
            .collect();
        if foreign {
            // A broad PBX rule, one that overlaps, and Live Platform's own per-number rule
            // (no `#`, a bare FQDN for a tag), which beats dialsync's ranges at best match.
            actual.push(rule(0, "pbx", "+1", "T=pbx"));
            actual.push(rule(1, "pbx", "+15x#", "T=pbx"));
            actual.push(DialPlanRule::read(2, "LivePlatform", "+123", "sandbox1.audiocodes.be").unwrap());
            actual.push(DialPlanRule::read(3, "GSBFZUBGHWOFI", "+1[80-89]", "sbc01.teams.contoso.com").unwrap());
        }
        let desired = routes_of(&new, encoding);
        let mut config = settings(Policy::Sync);
        config.adopt_foreign = false;
        let plan = plan(&desired, &actual, &[], &[], &config);
        let end = apply(&actual, &plan.ops, "dialsync");
        let numbers: Vec<String> = (10..200u64).chain(1000..1010).map(|v| format!("+{v}")).collect();
        let before: Vec<Option<Tag>> = numbers.iter().map(|n| routed(&actual, n)).collect();
        let after: Vec<Option<Tag>> = numbers.iter().map(|n| routed(&end, n)).collect();
        let mut state = actual.clone();
        for (step, op) in plan.ops.iter().enumerate() {
            state = apply(&state, std::slice::from_ref(op), "dialsync");
            for (i, number) in numbers.iter().enumerate() {
                if let (Some(b), Some(a)) = (&before[i], &after[i]) {
                    let now = routed(&state, number);
                    prop_assert!(
                        now.as_ref() == Some(b) || now.as_ref() == Some(a),
                        "{} after step {} ({:?}): {:?}, before {} after {}\nplan {:#?}",
                        number, step, op, now, b, a, summary(&plan)
                    );
                }
            }
        }
        // The owned rules at the end are exactly the desired ones (minus foreign conflicts).
        let mut owned: Vec<Route> = end
            .iter()
            .filter(|r| &*r.name == "dialsync")
            .map(|r| Route { prefix: r.prefix.clone(), tag: r.tag.clone() })
            .collect();
        owned.sort();
        let conflicted: BTreeSet<&Route> = plan.foreign_conflicts.iter().map(|c| &c.desired).collect();
        let mut wanted: Vec<Route> = desired.iter().filter(|r| !conflicted.contains(r)).cloned().collect();
        wanted.sort();
        prop_assert_eq!(owned, wanted);
        // And every foreign rule is where it was, as it was.
        let foreign_after: Vec<&DialPlanRule> = end.iter().filter(|r| &*r.name != "dialsync").collect();
        let foreign_before: Vec<&DialPlanRule> = actual.iter().filter(|r| &*r.name != "dialsync").collect();
        prop_assert_eq!(foreign_after, foreign_before);
    }
}

/// What a dial plan in the field may hold at an index.
#[derive(Clone, Debug)]
enum Row {
    Owned(Route),
    Foreign(DialPlanRule),
    Unreadable,
}

/// Rows of every shape the field holds, at random indexes: dialsync's own (some stale),
/// foreign rules of Live Platform's, PBXs' and hand-made shapes (tags as the device holds
/// them), and rows dialsync cannot read.
fn field_rows() -> impl Strategy<Value = BTreeMap<u32, Row>> {
    let owned = (0u64..100, any::<bool>(), 0u32..3).prop_map(|(n, tens, tag)| {
        let prefix = if tens {
            format!("+1{}x#", n / 10)
        } else {
            format!("+1{n:02}#")
        };
        Row::Owned(route(&prefix, &format!("T={tag}")))
    });
    let foreign = (
        prop::sample::select(vec![
            ("LivePlatform", "sandbox1.audiocodes.be"),
            ("GSBFZUBGHWOFI", "sbc01.teams.contoso.com"),
            ("pbx", "Trunk=pbx"),
            ("Site \"A\"", "Tag with spaces;;="),
            ("", ""),
        ]),
        prop::sample::select(vec![
            "+123",
            "+1",
            "+15x#",
            "+1[80-89]",
            "+1[100-199]#",
            "*",
            "+10",
        ]),
    )
        .prop_map(|((name, tag), prefix)| {
            Row::Foreign(DialPlanRule::read(0, name, prefix, tag).unwrap())
        });
    let row = prop_oneof![3 => owned, 2 => foreign, 1 => Just(Row::Unreadable)];
    prop::collection::btree_map(0u32..40, row, 0..25)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The invariant of DESIGN.md §4, over random dial plans holding dialsync's, foreign
    /// and unreadable rows at random indexes, random desired sets, every policy and every
    /// encoding: no op targets an index a foreign or unreadable row holds (unless it adopts
    /// a foreign rule, keeping its prefix, with `adopt_foreign`), every op that replaces a
    /// rule targets one of dialsync's, the guard agrees, and after the plan every foreign
    /// rule is still there, unchanged.
    #[test]
    fn no_op_writes_a_row_dialsync_does_not_own(
        rows in field_rows(),
        new in mapping(),
        encoding in prop::sample::select(vec![Encoding::Ranges, Encoding::Prefixes, Encoding::Numbers]),
        policy in prop::sample::select(vec![Policy::Sync, Policy::UpsertOnly, Policy::CreateOnly]),
        adopt_foreign in any::<bool>(),
    ) {
        let mut actual = Vec::new();
        let mut unreadable = Vec::new();
        for (&index, row) in &rows {
            match row {
                Row::Owned(route) => actual.push(DialPlanRule {
                    index,
                    name: "dialsync".into(),
                    prefix: route.prefix.clone(),
                    tag: route.tag.clone(),
                }),
                Row::Foreign(rule) => actual.push(DialPlanRule { index, ..rule.clone() }),
                Row::Unreadable => unreadable.push(UnreadableRow::new(index, "odd", "cannot be read")),
            }
        }
        let desired = routes_of(&new, encoding);
        let mut config = settings(policy);
        config.adopt_foreign = adopt_foreign;
        config.max_rules = usize::MAX;
        let plan = plan(&desired, &actual, &unreadable, &[], &config);
        for op in &plan.ops {
            match rows.get(&op.index) {
                None => prop_assert!(op.before.is_none(), "{:?} replaces nothing", op),
                Some(Row::Owned(_)) => {}
                Some(Row::Unreadable) => prop_assert!(false, "{:?} writes an unreadable row", op),
                Some(Row::Foreign(rule)) => {
                    let keeps_prefix = op.after.as_ref().is_some_and(|a| a.prefix == rule.prefix);
                    prop_assert!(adopt_foreign && keeps_prefix, "{:?} writes foreign {:?}", op, rule);
                }
            }
        }
        prop_assert_eq!(
            crate::plan::ownership::check(&plan.ops, &actual, &unreadable, "dialsync", adopt_foreign),
            Ok(())
        );
        let end = apply(&actual, &plan.ops, "dialsync");
        for (&index, row) in &rows {
            let now = end.iter().find(|r| r.index == index);
            match row {
                Row::Foreign(rule) if !adopt_foreign => {
                    prop_assert_eq!(now, Some(&DialPlanRule { index, ..rule.clone() }));
                }
                Row::Unreadable => prop_assert!(now.is_none(), "index {} was written", index),
                _ => {}
            }
        }
    }
}
