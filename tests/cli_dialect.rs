//! The CLI dialect spoken from both ends, by two independent readings of the vendor's
//! documents: dialsync's sink (`sink/cli_script.rs`) writes incremental scripts and reads the
//! full configuration; the SBC emulator (`sim/sbc/cli.rs`) reads scripts and prints the
//! configuration. These properties hold only if the two readings agree.

use std::collections::BTreeMap;

use dialsync::dialplan::pattern::Pattern;
use dialsync::dialplan::rule::Tag;
use dialsync::plan::{Op, OpKind, Route};
use dialsync::sim::sbc::cli::{read_script, render_config, CliStyle, Command};
use dialsync::sim::sbc::{SimPlan, SimRule};
use dialsync::sink::audiocodes::cli_script::{parse_dial_plans, render_incremental};
use proptest::prelude::*;

fn arb_route() -> impl Strategy<Value = Route> {
    (
        "[0-9xzn.+\"\\\\]{1,12}#?".prop_filter_map("not a pattern", |p| Pattern::parse(&p).ok()),
        "[A-Za-z][A-Za-z0-9_.-]{0,6}=[a-z0-9.]{1,10}".prop_map(|t| Tag::parse(&t, 64).unwrap()),
    )
        .prop_map(|(prefix, tag)| Route { prefix, tag })
}

fn arb_op() -> impl Strategy<Value = Op> {
    (
        any::<u32>(),
        prop::option::of(arb_route()),
        prop::option::of(arb_route()),
    )
        .prop_map(|(index, before, after)| Op {
            index,
            before,
            after,
        })
}

/// Printable text of every kind, quotes, backslashes and spaces included: what a device may
/// hold in a name or a tag.
fn arb_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,16}",
        "\\PC{0,12}",
        prop::collection::vec(
            prop::sample::select(vec!["\"", "\\", " ", "a", "exit", "sbc dial-plan 0"]),
            0..8
        )
        .prop_map(|parts| parts.concat()),
    ]
}

/// The command the emulator must read an op of dialsync's script as.
fn expected_command(plan: u32, rule_name: &str, op: &Op) -> Option<Command> {
    match (op.kind(), &op.after) {
        (OpKind::Delete, _) => Some(Command::DeleteRule {
            plan,
            rule: op.index,
        }),
        (_, Some(after)) => Some(Command::EditRule {
            plan,
            rule: op.index,
            name: Some(rule_name.to_string()),
            prefix: Some(after.prefix.as_str().to_string()),
            tag: Some(after.tag.as_str().to_string()),
        }),
        (_, None) => None,
    }
}

/// Dial plans a device may hold: any names, prefixes and tags, some left empty.
fn arb_device() -> impl Strategy<Value = BTreeMap<u32, SimPlan>> {
    let rule = (arb_value(), arb_value(), arb_value()).prop_map(|(name, prefix, tag)| SimRule {
        name,
        prefix,
        tag,
    });
    let plan = (
        arb_value(),
        prop::collection::btree_map(any::<u32>(), rule, 0..8),
    )
        .prop_map(|(name, rules)| SimPlan { name, rules });
    prop::collection::btree_map(0u32..50, plan, 0..4)
}

fn arb_style() -> impl Strategy<Value = CliStyle> {
    (prop::sample::select(vec![0usize, 1, 2, 4]), any::<bool>())
        .prop_map(|(indent, final_exit)| CliStyle { indent, final_exit })
}

/// Sections of another configuration around the dial plans, written one space per level, with
/// lines that look like ours.
const OTHER_SECTIONS: &str = "configure system\n web\n  user Admin\n   password-hash \"$1$abc\\\"def\"\n  exit\n exit\nexit\nconfigure network\n network-dev 0\n  name \"sbc dial-plan 0\"\n exit\nexit\n";

proptest! {
    /// dialsync's scripts, as the emulated device reads them: every add and modify an edit
    /// that renames the rule dialsync's and sets prefix and tag, every delete a delete, in plan
    /// order; CRLF line ends change nothing.
    #[test]
    fn the_device_reads_dialsyncs_scripts_as_written(
        plan in any::<u32>(),
        rule_name in arb_value(),
        ops in prop::collection::vec(arb_op(), 0..20),
    ) {
        let refs: Vec<&Op> = ops.iter().collect();
        let script = render_incremental(plan, &rule_name, &refs);
        let expected: Vec<Command> =
            ops.iter().filter_map(|op| expected_command(plan, &rule_name, op)).collect();
        prop_assert_eq!(read_script(&script), Ok(expected));
        let crlf = script.replace('\n', "\r\n");
        prop_assert_eq!(read_script(&crlf), read_script(&script));
    }

    /// What a device holds, printed in any of its styles and amid other sections, is what
    /// dialsync reads: every plan with its name, every row with its name, prefix and tag, none
    /// of them unreadable.
    #[test]
    fn dialsync_reads_what_the_device_prints(
        device in arb_device(),
        style in arb_style(),
        with_others in any::<bool>(),
    ) {
        let others = if with_others { OTHER_SECTIONS } else { "" };
        let text = render_config(&device, others, &style);
        let read = parse_dial_plans(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let plans: Vec<(u32, &str)> = read.plans.iter().map(|p| (p.index, p.name.as_str())).collect();
        let want: Vec<(u32, &str)> = device.iter().map(|(i, p)| (*i, p.name.as_str())).collect();
        prop_assert_eq!(plans, want);
        let rows: Vec<(u32, u32, &str, &str, &str)> = read
            .rules
            .iter()
            .map(|r| (r.plan, r.index, r.name.as_str(), r.prefix.as_str(), r.tag.as_str()))
            .collect();
        let want: Vec<(u32, u32, &str, &str, &str)> = device
            .iter()
            .flat_map(|(p, plan)| {
                plan.rules
                    .iter()
                    .map(move |(i, r)| (*p, *i, r.name.as_str(), r.prefix.as_str(), r.tag.as_str()))
            })
            .collect();
        prop_assert_eq!(rows, want);
        prop_assert!(read.rules.iter().all(|r| r.unreadable.is_none()));
    }
}
