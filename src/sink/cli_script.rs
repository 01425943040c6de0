//! The AudioCodes CLI dialect for dial plans (DESIGN.md §5.1): writing incremental scripts,
//! reading them back as strictly as the device does, and reading the dial plans out of the
//! device's full configuration script.
//!
//! The dialect is an assumption from public documentation, not something the vendor specifies
//! for machines. Keeping every line of it here means the device sink and the SBC emulator cannot
//! drift apart, and a firmware that spells something differently is a change to this file only.
//!
//! Pure: text in, text or values out. Values stay raw strings (quotes removed, escapes undone);
//! judging a name, prefix or tag against the SBC's limits is the business of
//! [`crate::dialplan::rule`], so that the sink can refuse bad rows one by one.
//!
//! Two parsers, on purpose:
//! - [`parse_incremental`] is strict: it stands in for the device, which rejects a whole script
//!   for one wrong line, so the emulator must reject everything the device would.
//! - [`parse_dial_plans`] is lenient about what it does not need: the full script holds the whole
//!   configuration of the device (network, system, SIP...), whose syntax dialsync does not know.
//!   It skips those lines and blocks by following block nesting, and is only strict where a
//!   mistake would make it misread the dial plans.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::plan::{Op, OpKind};

/// A script that does not follow the dialect. Every error but [`ScriptError::Empty`] and
/// [`ScriptError::NoVoipSection`] names the 1-based physical line (blank lines count) at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("the script is empty (expected \"configure voip\")")]
    Empty,
    #[error("the script has no \"configure voip\" section")]
    NoVoipSection,
    #[error("line {line}: unterminated quoted value")]
    Unterminated { line: usize },
    #[error("line {line}: unknown escape \"\\{found}\" in a quoted value (only \\\" and \\\\ are allowed)")]
    BadEscape { line: usize, found: char },
    #[error("line {line}: text after the closing quote of {field}: {rest:?}")]
    TrailingText {
        line: usize,
        field: &'static str,
        rest: String,
    },
    #[error("line {line}: {field} needs a double-quoted value")]
    MissingValue { line: usize, field: &'static str },
    #[error("line {line}: {field} needs a double-quoted value, found {found:?}")]
    Unquoted {
        line: usize,
        field: &'static str,
        found: String,
    },
    #[error("line {line}: unknown command {command:?}")]
    UnknownCommand { line: usize, command: String },
    #[error("line {line}: {command:?} is not allowed {place}")]
    Misplaced {
        line: usize,
        command: String,
        place: String,
    },
    #[error("line {line}: \"exit\" closes nothing")]
    ExitClosesNothing { line: usize },
    #[error("line {line}: {block:?} is never closed (missing \"exit\")")]
    Unclosed { line: usize, block: String },
    #[error("line {line}: bad dial plan index {found:?} (expected an unsigned number)")]
    BadPlanIndex { line: usize, found: String },
    #[error("line {line}: bad rule address {found:?} (expected PLAN/RULE, two unsigned numbers)")]
    BadRuleAddress { line: usize, found: String },
    #[error("line {line}: {field} given twice in {block:?}")]
    DuplicateField {
        line: usize,
        field: &'static str,
        block: String,
    },
    #[error("line {line}: {block:?} appears twice in the configuration")]
    DuplicateBlock { line: usize, block: String },
}

impl ScriptError {
    /// The line at fault, when there is one.
    pub fn line(&self) -> Option<usize> {
        use ScriptError::*;
        match self {
            Empty | NoVoipSection => None,
            Unterminated { line }
            | BadEscape { line, .. }
            | TrailingText { line, .. }
            | MissingValue { line, .. }
            | Unquoted { line, .. }
            | UnknownCommand { line, .. }
            | Misplaced { line, .. }
            | ExitClosesNothing { line }
            | Unclosed { line, .. }
            | BadPlanIndex { line, .. }
            | BadRuleAddress { line, .. }
            | DuplicateField { line, .. }
            | DuplicateBlock { line, .. } => Some(*line),
        }
    }
}

/// One command of an incremental script. An edit changes only the fields it names, hence the
/// `Option`s: `None` leaves the field as the device has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `sbc dial-plan N`: creates the plan, or edits it if it exists.
    EditPlan {
        plan: u32,
        name: Option<String>,
        activate: bool,
    },
    /// `sbc dial-plan-rule P/R`: creates the rule, or edits it if it exists.
    EditRule {
        plan: u32,
        rule: u32,
        name: Option<String>,
        prefix: Option<String>,
        tag: Option<String>,
        activate: bool,
    },
    /// `no sbc dial-plan-rule P/R`.
    DeleteRule { plan: u32, rule: u32 },
    /// `no sbc dial-plan N`.
    DeletePlan { plan: u32 },
}

/// A dial plan as the full script shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DialPlanText {
    pub index: u32,
    /// Empty when the script gives no name (the device leaves empty fields out).
    pub name: String,
    pub activated: bool,
}

/// A dial-plan rule as the full script shows it, its fields still unchecked text: the sink
/// validates each into a [`DialPlanRule`](crate::dialplan::rule::DialPlanRule) and reports the
/// bad ones one by one instead of refusing the whole plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DialPlanRuleText {
    /// Index of the dial plan the rule belongs to.
    pub plan: u32,
    /// Index of the rule within its plan.
    pub index: u32,
    /// Empty when the script has no such line (the device leaves empty fields out).
    pub name: String,
    pub prefix: String,
    pub tag: String,
    pub activated: bool,
}

/// Every dial plan and every dial-plan rule of a full configuration, in script order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DialPlans {
    pub plans: Vec<DialPlanText>,
    pub rules: Vec<DialPlanRuleText>,
}

impl DialPlans {
    /// The index of the dial plan called `plan_name` and its rules, or `None` when no plan has
    /// that name. Should several plans share the name, the first in the script is taken.
    pub fn rules_of(&self, plan_name: &str) -> Option<(u32, Vec<DialPlanRuleText>)> {
        let plan = self.plans.iter().find(|p| p.name == plan_name)?;
        let rules = self
            .rules
            .iter()
            .filter(|r| r.plan == plan.index)
            .cloned()
            .collect();
        Some((plan.index, rules))
    }
}

// ---- rendering ----

/// `value` double-quoted, with `"` and `\` escaped by a backslash.
///
/// Values never hold line breaks: rule names, tags and prefixes refuse control characters
/// (`dialplan/rule.rs`), and the dialect has no escape for them.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn push_field(out: &mut String, field: &str, value: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "  {field} {}", quote(value));
}

/// An incremental script applying `ops` to rules of dial plan `plan_index`: each add or modify
/// rewrites the rule's name (to `rule_name`, which is how dialsync marks what it owns), prefix
/// and tag and activates it; each delete removes the rule. Ops keep their order, which is the
/// make-before-break order of the plan.
///
/// An op with neither a before nor an after changes nothing (the journal refuses it as empty)
/// and renders nothing.
pub fn render_incremental(plan_index: u32, rule_name: &str, ops: &[Op]) -> String {
    let mut out = String::from("configure voip\n");
    for op in ops {
        match (op.kind(), &op.after) {
            (OpKind::Delete, _) => {
                let _ = writeln!(out, " no sbc dial-plan-rule {plan_index}/{}", op.index);
            }
            (_, Some(route)) => {
                let _ = writeln!(out, " sbc dial-plan-rule {plan_index}/{}", op.index);
                push_field(&mut out, "name", rule_name);
                push_field(&mut out, "prefix", route.prefix.as_str());
                push_field(&mut out, "tag", route.tag.as_str());
                out.push_str("  activate\n exit\n");
            }
            (_, None) => {}
        }
    }
    out.push_str("exit\n");
    out
}

/// An incremental script creating (or renaming) dial plan `plan_index` as `name`
/// (`dialplan.create = true`).
pub fn render_create_plan(plan_index: u32, name: &str) -> String {
    let mut out = String::from("configure voip\n");
    let _ = writeln!(out, " sbc dial-plan {plan_index}");
    push_field(&mut out, "name", name);
    out.push_str("  activate\n exit\nexit\n");
    out
}

/// A full configuration script holding `extra_sections` verbatim (the rest of the device's
/// configuration: they must be whole blocks, each closed by its `exit`) followed by a
/// `configure voip` section with `plans`, as the device would print it: empty fields left out.
///
/// [`parse_dial_plans`] reads back exactly `plans`.
pub fn render_full(plans: &DialPlans, extra_sections: &str) -> String {
    let mut out = String::from(extra_sections);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("configure voip\n");
    for plan in &plans.plans {
        let _ = writeln!(out, " sbc dial-plan {}", plan.index);
        if !plan.name.is_empty() {
            push_field(&mut out, "name", &plan.name);
        }
        if plan.activated {
            out.push_str("  activate\n");
        }
        out.push_str(" exit\n");
    }
    for rule in &plans.rules {
        let _ = writeln!(out, " sbc dial-plan-rule {}/{}", rule.plan, rule.index);
        for (field, value) in [
            ("name", &rule.name),
            ("prefix", &rule.prefix),
            ("tag", &rule.tag),
        ] {
            if !value.is_empty() {
                push_field(&mut out, field, value);
            }
        }
        if rule.activated {
            out.push_str("  activate\n");
        }
        out.push_str(" exit\n");
    }
    out.push_str("exit\n");
    out
}

// ---- lexing ----

/// One non-blank line of a script.
struct Line<'a> {
    /// 1-based, counting blank lines, as an editor shows it.
    number: usize,
    /// Leading whitespace characters: how the device shows nesting.
    indent: usize,
    /// Without the leading and trailing whitespace (and without a `\r` of a `\r\n` ending).
    text: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    text.split('\n')
        .enumerate()
        .filter_map(|(i, raw)| {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let text = raw.trim();
            let start = raw.trim_start();
            (!text.is_empty()).then(|| Line {
                number: i + 1,
                indent: raw[..raw.len() - start.len()].chars().count(),
                text,
            })
        })
        .collect()
}

/// The keyword of a field line and the rest of it.
fn split_keyword(text: &str) -> (&str, &str) {
    match text.split_once(char::is_whitespace) {
        Some((keyword, rest)) => (keyword, rest.trim_start()),
        None => (text, ""),
    }
}

/// Reads the value of a field line: one double-quoted string and nothing after it. `bare_ok`
/// also accepts a single unquoted word, which the full script may use for simple values.
fn parse_value(
    line: usize,
    field: &'static str,
    rest: &str,
    bare_ok: bool,
) -> Result<String, ScriptError> {
    if rest.is_empty() {
        return Err(ScriptError::MissingValue { line, field });
    }
    let Some(body) = rest.strip_prefix('"') else {
        if bare_ok && !rest.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
            return Ok(rest.to_string());
        }
        return Err(ScriptError::Unquoted {
            line,
            field,
            found: rest.to_string(),
        });
    };
    let mut value = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let after = chars.as_str().trim();
                if !after.is_empty() {
                    return Err(ScriptError::TrailingText {
                        line,
                        field,
                        rest: after.to_string(),
                    });
                }
                return Ok(value);
            }
            '\\' => match chars.next() {
                Some(escaped @ ('"' | '\\')) => value.push(escaped),
                Some(found) => return Err(ScriptError::BadEscape { line, found }),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err(ScriptError::Unterminated { line })
}

/// Digits only: `u32::from_str` would also take `+1`, which the device does not.
fn parse_index(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A line that names a dial plan or a dial-plan rule.
enum Header {
    Plan(u32),
    Rule(u32, u32),
    NoPlan(u32),
    NoRule(u32, u32),
}

/// Recognises the dial-plan lines; `None` for any other line, an error for one of them with
/// bad numbers.
fn parse_header(line: &Line) -> Option<Result<Header, ScriptError>> {
    let tokens: Vec<&str> = line.text.split_whitespace().collect();
    let (delete, rest) = match tokens.as_slice() {
        ["no", rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    let plan = |args: &[&str]| {
        match args {
            [index] => parse_index(index),
            _ => None,
        }
        .ok_or_else(|| ScriptError::BadPlanIndex {
            line: line.number,
            found: args.join(" "),
        })
    };
    let rule = |args: &[&str]| {
        match args {
            [address] => address
                .split_once('/')
                .and_then(|(p, r)| Some((parse_index(p)?, parse_index(r)?))),
            _ => None,
        }
        .ok_or_else(|| ScriptError::BadRuleAddress {
            line: line.number,
            found: args.join(" "),
        })
    };
    let header = match rest {
        ["sbc", "dial-plan", args @ ..] => plan(args).map(|p| match delete {
            true => Header::NoPlan(p),
            false => Header::Plan(p),
        }),
        ["sbc", "dial-plan-rule", args @ ..] => rule(args).map(|(p, r)| match delete {
            true => Header::NoRule(p, r),
            false => Header::Rule(p, r),
        }),
        _ => return None,
    };
    Some(header)
}

const RULE_FIELDS: [&str; 3] = ["name", "prefix", "tag"];

// ---- strict parsing of incremental scripts ----

/// What an open block of an incremental script is.
enum Open {
    Voip,
    /// The command being filled, by its position in the output.
    Plan(usize),
    Rule(usize),
}

struct Frame<'a, K> {
    kind: K,
    line: usize,
    text: &'a str,
}

/// Parses an incremental script as strictly as the device: one wrong line refuses it all.
///
/// Accepted: one or more `configure voip` ... `exit` sections holding `sbc dial-plan N` blocks
/// (`name`, `activate`), `sbc dial-plan-rule P/R` blocks (`name`, `prefix`, `tag`,
/// `activate`), `no sbc dial-plan N` and `no sbc dial-plan-rule P/R`. Indentation and blank
/// lines do not matter; every value is double-quoted; each field at most once per block.
pub fn parse_incremental(text: &str) -> Result<Vec<Command>, ScriptError> {
    let lines = lines(text);
    if lines.is_empty() {
        return Err(ScriptError::Empty);
    }
    let mut commands = Vec::new();
    let mut stack: Vec<Frame<Open>> = Vec::new();
    for line in &lines {
        let n = line.number;
        if line.text == "exit" {
            if stack.pop().is_none() {
                return Err(ScriptError::ExitClosesNothing { line: n });
            }
            continue;
        }
        let misplaced = |place: String| ScriptError::Misplaced {
            line: n,
            command: line.text.to_string(),
            place,
        };
        let unknown = || ScriptError::UnknownCommand {
            line: n,
            command: line.text.to_string(),
        };
        let (keyword, rest) = split_keyword(line.text);
        let is_field = RULE_FIELDS.contains(&keyword) || line.text == "activate";
        let is_configure = keyword == "configure";
        let header = parse_header(line);
        let Some(top) = stack.last() else {
            if line.text.split_whitespace().eq(["configure", "voip"]) {
                stack.push(Frame {
                    kind: Open::Voip,
                    line: n,
                    text: line.text,
                });
                continue;
            }
            if header.is_some() || is_field {
                return Err(misplaced("outside \"configure voip\"".into()));
            }
            return Err(unknown());
        };
        match top.kind {
            Open::Voip => {
                let Some(header) = header else {
                    if is_field {
                        return Err(misplaced(
                            "outside a \"sbc dial-plan\" or \"sbc dial-plan-rule\" block".into(),
                        ));
                    }
                    if is_configure {
                        return Err(misplaced("inside \"configure voip\"".into()));
                    }
                    return Err(unknown());
                };
                let (kind, command) = match header? {
                    Header::Plan(plan) => (
                        Some(Open::Plan(commands.len())),
                        Command::EditPlan {
                            plan,
                            name: None,
                            activate: false,
                        },
                    ),
                    Header::Rule(plan, rule) => (
                        Some(Open::Rule(commands.len())),
                        Command::EditRule {
                            plan,
                            rule,
                            name: None,
                            prefix: None,
                            tag: None,
                            activate: false,
                        },
                    ),
                    Header::NoPlan(plan) => (None, Command::DeletePlan { plan }),
                    Header::NoRule(plan, rule) => (None, Command::DeleteRule { plan, rule }),
                };
                commands.push(command);
                if let Some(kind) = kind {
                    stack.push(Frame {
                        kind,
                        line: n,
                        text: line.text,
                    });
                }
            }
            Open::Plan(at) | Open::Rule(at) => {
                let block = top.text;
                if header.is_some() || is_configure {
                    return Err(misplaced(format!(
                        "inside {block:?} (close it with \"exit\" first)"
                    )));
                }
                let duplicate = |field| ScriptError::DuplicateField {
                    line: n,
                    field,
                    block: block.to_string(),
                };
                let (name, prefix, tag, activate) = match &mut commands[at] {
                    Command::EditPlan { name, activate, .. } => (name, None, None, activate),
                    Command::EditRule {
                        name,
                        prefix,
                        tag,
                        activate,
                        ..
                    } => (name, Some(prefix), Some(tag), activate),
                    // Only edits are ever opened as blocks.
                    Command::DeleteRule { .. } | Command::DeletePlan { .. } => unreachable!(),
                };
                if line.text == "activate" {
                    if *activate {
                        return Err(duplicate("activate"));
                    }
                    *activate = true;
                    continue;
                }
                let (field, slot) = match keyword {
                    "name" => ("name", Some(name)),
                    "prefix" => ("prefix", prefix),
                    "tag" => ("tag", tag),
                    _ => return Err(unknown()),
                };
                let Some(slot) = slot else {
                    return Err(misplaced(format!("inside {block:?}")));
                };
                if slot.is_some() {
                    return Err(duplicate(field));
                }
                *slot = Some(parse_value(n, field, rest, false)?);
            }
        }
    }
    match stack.last() {
        Some(open) => Err(ScriptError::Unclosed {
            line: open.line,
            block: open.text.to_string(),
        }),
        None => Ok(commands),
    }
}

// ---- lenient parsing of the full configuration ----

/// What an open block of the full script is.
enum Section {
    Voip,
    /// A block dialsync does not read: everything inside it is skipped.
    Other,
    /// By position in [`DialPlans::plans`], with whether `name` was seen.
    Plan {
        at: usize,
        named: bool,
    },
    /// By position in [`DialPlans::rules`], with which of [`RULE_FIELDS`] were seen.
    Rule {
        at: usize,
        seen: [bool; 3],
    },
}

/// Whether an unknown line opens a block. The device prints one more space of indentation per
/// level, so a line opens a block when the next line is indented deeper, or (an empty block)
/// when the next line is an `exit` as indented as it is. Unindented lines (a script without
/// any indentation) are then never taken for blocks, which is right for the leaf settings such
/// a script could hold.
fn opens_block(lines: &[Line], i: usize) -> bool {
    let line = &lines[i];
    lines.get(i + 1).is_some_and(|next| {
        next.indent > line.indent
            || (next.text == "exit" && next.indent == line.indent && line.indent > 0)
    })
}

/// Reads every dial plan and dial-plan rule under `configure voip` out of the device's full
/// configuration script (`GET /api/v1/files/cliScript`).
///
/// Everything else is skipped, unknown blocks included, by following block nesting: `configure
/// ...` and the dial-plan lines are known to open blocks, any other line opens one when
/// indentation says so ([`opens_block`]), and each `exit` closes the innermost. Unknown lines
/// inside dial-plan blocks are skipped too (a later firmware may add columns).
///
/// An error wherever a mistake could misread the dial plans: a malformed value of a dial-plan
/// field, a field given twice, a plan or rule defined twice, an `exit` that closes nothing, a
/// block never closed, or no `configure voip` at all. `no sbc dial-plan...` lines are applied.
pub fn parse_dial_plans(text: &str) -> Result<DialPlans, ScriptError> {
    let lines = lines(text);
    let mut out = DialPlans::default();
    let mut plan_indexes: HashSet<u32> = HashSet::new();
    let mut rule_addresses: HashSet<(u32, u32)> = HashSet::new();
    let mut saw_voip = false;
    let mut stack: Vec<Frame<Section>> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let n = line.number;
        if line.text == "exit" {
            if stack.pop().is_none() {
                return Err(ScriptError::ExitClosesNothing { line: n });
            }
            continue;
        }
        let frame = |kind| Frame {
            kind,
            line: n,
            text: line.text,
        };
        let unknown = if opens_block(&lines, i) {
            Some(frame(Section::Other))
        } else {
            None
        };
        let mut words = line.text.split_whitespace();
        let configure = words.next() == Some("configure");
        if let (true, Some(open)) = (configure, stack.last()) {
            // Sections only start at the top level: one starting inside another means the
            // other lacks its `exit`, and what follows would be read as part of it.
            return Err(ScriptError::Unclosed {
                line: open.line,
                block: open.text.to_string(),
            });
        }
        let Some(top) = stack.last_mut() else {
            if configure && words.clone().count() == 1 {
                let voip = words.next() == Some("voip");
                saw_voip |= voip;
                stack.push(frame(if voip { Section::Voip } else { Section::Other }));
            } else {
                stack.extend(unknown);
            }
            continue;
        };
        match &mut top.kind {
            Section::Other => stack.extend(unknown),
            Section::Voip => match parse_header(line).transpose()? {
                Some(Header::Plan(index)) => {
                    if !plan_indexes.insert(index) {
                        return Err(ScriptError::DuplicateBlock {
                            line: n,
                            block: line.text.to_string(),
                        });
                    }
                    out.plans.push(DialPlanText {
                        index,
                        ..DialPlanText::default()
                    });
                    stack.push(frame(Section::Plan {
                        at: out.plans.len() - 1,
                        named: false,
                    }));
                }
                Some(Header::Rule(plan, index)) => {
                    if !rule_addresses.insert((plan, index)) {
                        return Err(ScriptError::DuplicateBlock {
                            line: n,
                            block: line.text.to_string(),
                        });
                    }
                    out.rules.push(DialPlanRuleText {
                        plan,
                        index,
                        ..DialPlanRuleText::default()
                    });
                    stack.push(frame(Section::Rule {
                        at: out.rules.len() - 1,
                        seen: [false; 3],
                    }));
                }
                // No dial-plan block is open here (they close before the next header), so
                // removing from the lists moves no open block's position.
                Some(Header::NoPlan(index)) => {
                    plan_indexes.remove(&index);
                    out.plans.retain(|p| p.index != index);
                }
                Some(Header::NoRule(plan, index)) => {
                    rule_addresses.remove(&(plan, index));
                    out.rules.retain(|r| (r.plan, r.index) != (plan, index));
                }
                None => stack.extend(unknown),
            },
            Section::Plan { at, named } => {
                let (keyword, rest) = split_keyword(line.text);
                if line.text == "activate" {
                    out.plans[*at].activated = true;
                } else if keyword == "name" {
                    if std::mem::replace(named, true) {
                        return Err(ScriptError::DuplicateField {
                            line: n,
                            field: "name",
                            block: top.text.to_string(),
                        });
                    }
                    out.plans[*at].name = parse_value(n, "name", rest, true)?;
                } else {
                    stack.extend(unknown);
                }
            }
            Section::Rule { at, seen } => {
                let (keyword, rest) = split_keyword(line.text);
                if line.text == "activate" {
                    out.rules[*at].activated = true;
                } else if let Some(k) = RULE_FIELDS.iter().position(|f| *f == keyword) {
                    let field = RULE_FIELDS[k];
                    if std::mem::replace(&mut seen[k], true) {
                        return Err(ScriptError::DuplicateField {
                            line: n,
                            field,
                            block: top.text.to_string(),
                        });
                    }
                    let value = parse_value(n, field, rest, true)?;
                    let rule = &mut out.rules[*at];
                    match k {
                        0 => rule.name = value,
                        1 => rule.prefix = value,
                        _ => rule.tag = value,
                    }
                } else {
                    stack.extend(unknown);
                }
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(ScriptError::Unclosed {
            line: open.line,
            block: open.text.to_string(),
        });
    }
    if !saw_voip {
        return Err(ScriptError::NoVoipSection);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialplan::pattern::Pattern;
    use crate::dialplan::rule::Tag;
    use crate::plan::Route;
    use proptest::prelude::*;

    fn route(prefix: &str, tag: &str) -> Route {
        Route {
            prefix: Pattern::parse(prefix).unwrap(),
            tag: Tag::parse(tag, 64).unwrap(),
        }
    }

    /// The command an op must come back as.
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
                activate: true,
            }),
            (_, None) => None,
        }
    }

    #[test]
    fn renders_the_design_dialect() {
        let ops = [
            Op {
                index: 12,
                before: None,
                after: Some(route(
                    "+322612700[0-2]#",
                    "Trunk=7f2c0c61-1b44-4c3e-9e58-bd0c0d0f7b1a",
                )),
            },
            Op {
                index: 13,
                before: Some(route("+3210#", "T=1")),
                after: None,
            },
        ];
        assert_eq!(
            render_incremental(0, "dialsync", &ops),
            "configure voip\n \
             sbc dial-plan-rule 0/12\n  \
             name \"dialsync\"\n  \
             prefix \"+322612700[0-2]#\"\n  \
             tag \"Trunk=7f2c0c61-1b44-4c3e-9e58-bd0c0d0f7b1a\"\n  \
             activate\n \
             exit\n \
             no sbc dial-plan-rule 0/13\n\
             exit\n"
        );
        assert_eq!(
            render_create_plan(0, "OCDialPlan"),
            "configure voip\n sbc dial-plan 0\n  name \"OCDialPlan\"\n  activate\n exit\nexit\n"
        );
        assert_eq!(
            parse_incremental(&render_create_plan(3, "OC\"Dial\\Plan")).unwrap(),
            vec![Command::EditPlan {
                plan: 3,
                name: Some("OC\"Dial\\Plan".into()),
                activate: true
            }]
        );
        // A modify renames too: that is how an adopted foreign rule becomes dialsync's.
        let modify = Op {
            index: 4,
            before: Some(route("+3210#", "T=1")),
            after: Some(route("+3210#", "T=2")),
        };
        assert!(render_incremental(1, "dialsync", &[modify]).contains("  name \"dialsync\"\n"));
        // An empty op renders nothing.
        let empty = Op {
            index: 5,
            before: None,
            after: None,
        };
        assert_eq!(
            render_incremental(0, "dialsync", &[empty]),
            "configure voip\nexit\n"
        );
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quote(r#"a"b\c d"#), r#""a\"b\\c d""#);
        assert_eq!(quote(""), "\"\"");
        let script =
            "configure voip\n sbc dial-plan-rule 0/1\n  prefix \"+32\\\\x\\\"#\"\n exit\nexit\n";
        let commands = parse_incremental(script).unwrap();
        let Command::EditRule { prefix, .. } = &commands[0] else {
            panic!("{commands:?}")
        };
        assert_eq!(prefix.as_deref(), Some("+32\\x\"#"));
    }

    #[test]
    fn incremental_scripts_in_every_legal_shape() {
        let script = "\r\n\
            configure voip\r\n\
            sbc dial-plan 2\r\n\
            \tname   \"Other plan\"  \r\n\
            exit\r\n\
            \r\n\
            sbc dial-plan-rule 2/0\r\n\
            exit\r\n\
            no sbc dial-plan-rule 2/7\r\n\
            no sbc dial-plan 9\r\n\
            exit\r\n\
            configure voip\r\n\
              sbc dial-plan-rule 0/4294967295\r\n\
                tag \"T=1\"\r\n\
                activate\r\n\
              exit\r\n\
            exit";
        assert_eq!(
            parse_incremental(script).unwrap(),
            vec![
                Command::EditPlan {
                    plan: 2,
                    name: Some("Other plan".into()),
                    activate: false
                },
                Command::EditRule {
                    plan: 2,
                    rule: 0,
                    name: None,
                    prefix: None,
                    tag: None,
                    activate: false
                },
                Command::DeleteRule { plan: 2, rule: 7 },
                Command::DeletePlan { plan: 9 },
                Command::EditRule {
                    plan: 0,
                    rule: u32::MAX,
                    name: None,
                    prefix: None,
                    tag: Some("T=1".into()),
                    activate: true
                },
            ]
        );
        assert_eq!(parse_incremental("configure voip\nexit\n").unwrap(), vec![]);
    }

    #[test]
    fn malformed_incremental_scripts_are_refused_with_their_line() {
        let rule =
            |body: &str| format!("configure voip\n sbc dial-plan-rule 0/1\n{body}\n exit\nexit\n");
        let cases: Vec<(String, &str)> = vec![
            (
                rule("  name \"abc"),
                "line 3: unterminated quoted value",
            ),
            (
                rule("  name \"abc\\\""),
                "line 3: unterminated quoted value",
            ),
            (rule("  name \"abc\\"), "line 3: unterminated quoted value"),
            (
                rule("  name \"a\\nb\""),
                "line 3: unknown escape \"\\n\" in a quoted value (only \\\" and \\\\ are allowed)",
            ),
            (
                rule("  name \"a\" b"),
                "line 3: text after the closing quote of name: \"b\"",
            ),
            (
                rule("  tag \"a\"\"b\""),
                "line 3: text after the closing quote of tag: \"\\\"b\\\"\"",
            ),
            (rule("  name"), "line 3: name needs a double-quoted value"),
            (
                rule("  name dialsync"),
                "line 3: name needs a double-quoted value, found \"dialsync\"",
            ),
            (
                rule("  prefix \"1\"\n  prefix \"2\""),
                "line 4: prefix given twice in \"sbc dial-plan-rule 0/1\"",
            ),
            (
                rule("  activate\n  activate"),
                "line 4: activate given twice in \"sbc dial-plan-rule 0/1\"",
            ),
            (
                rule("  description \"x\""),
                "line 3: unknown command \"description \\\"x\\\"\"",
            ),
            (
                rule("  activate now"),
                "line 3: unknown command \"activate now\"",
            ),
            (
                rule("  sbc dial-plan-rule 0/2"),
                "line 3: \"sbc dial-plan-rule 0/2\" is not allowed inside \"sbc dial-plan-rule 0/1\" (close it with \"exit\" first)",
            ),
            (
                "configure voip\n sbc dial-plan 0\n  prefix \"1\"\n exit\nexit\n".into(),
                "line 3: \"prefix \\\"1\\\"\" is not allowed inside \"sbc dial-plan 0\"",
            ),
            (
                "configure voip\n\n sbc dial-plan-rul 0/1\n exit\nexit\n".into(),
                "line 3: unknown command \"sbc dial-plan-rul 0/1\"",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/x\n exit\nexit\n".into(),
                "line 2: bad rule address \"0/x\" (expected PLAN/RULE, two unsigned numbers)",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/4294967296\n exit\nexit\n".into(),
                "line 2: bad rule address \"0/4294967296\" (expected PLAN/RULE, two unsigned numbers)",
            ),
            (
                "configure voip\n no sbc dial-plan-rule +1/2\nexit\n".into(),
                "line 2: bad rule address \"+1/2\" (expected PLAN/RULE, two unsigned numbers)",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/1 0/2\n exit\nexit\n".into(),
                "line 2: bad rule address \"0/1 0/2\" (expected PLAN/RULE, two unsigned numbers)",
            ),
            (
                "configure voip\n sbc dial-plan-rule\n exit\nexit\n".into(),
                "line 2: bad rule address \"\" (expected PLAN/RULE, two unsigned numbers)",
            ),
            (
                "configure voip\n sbc dial-plan 1x\n exit\nexit\n".into(),
                "line 2: bad dial plan index \"1x\" (expected an unsigned number)",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/1\n exit\nexit\n\n\n\nexit\n".into(),
                "line 8: \"exit\" closes nothing",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/1\n exit\n".into(),
                "line 1: \"configure voip\" is never closed (missing \"exit\")",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/1\n  activate\n".into(),
                "line 2: \"sbc dial-plan-rule 0/1\" is never closed (missing \"exit\")",
            ),
            (
                "sbc dial-plan-rule 0/1\nexit\n".into(),
                "line 1: \"sbc dial-plan-rule 0/1\" is not allowed outside \"configure voip\"",
            ),
            (
                "configure voip\n name \"x\"\nexit\n".into(),
                "line 2: \"name \\\"x\\\"\" is not allowed outside a \"sbc dial-plan\" or \"sbc dial-plan-rule\" block",
            ),
            (
                "configure voip\n configure voip\n exit\nexit\n".into(),
                "line 2: \"configure voip\" is not allowed inside \"configure voip\"",
            ),
            (
                "configure network\nexit\n".into(),
                "line 1: unknown command \"configure network\"",
            ),
            (
                "Configure voip\nexit\n".into(),
                "line 1: unknown command \"Configure voip\"",
            ),
            (" \n\r\n".into(), "the script is empty (expected \"configure voip\")"),
        ];
        for (script, message) in cases {
            let err = parse_incremental(&script).expect_err(&script);
            assert_eq!(err.to_string(), message, "script:\n{script}");
            assert_eq!(
                crate::error::Classify::class(&err),
                crate::error::ErrorClass::Fatal
            );
        }
    }

    /// Another configuration around the dial plans, as a device prints it: sections dialsync
    /// does not know, with nested blocks, empty blocks and values that look like ours.
    const FIXTURE: &str = r#"configure system
 cli-settings
  default-window-height 0
 exit
 web
  http-auth-mode basic
  user Admin
   password-hash "$1$abc\"def"
   privilege admin
  exit
 exit
 snmp settings
 exit
 ntp
  primary-server "pool.ntp.org"
 exit
exit
configure network
 network-dev 0
  vlan-id 1
  underlying-if "GROUP_1"
  name "vlan 1"
  activate
 exit
 interface network-if 0
  application-type oamp+media+control
  ip-address 10.0.0.10
  prefix-length 24
  gateway 10.0.0.1
  name "O+M+C"
  underlying-dev "vlan 1"
  activate
 exit
exit
configure voip
 sip-interface 0
  network-interface "O+M+C"
  application-type sbc
  name "Teams"
  activate
 exit
 sbc dial-plan 0
  name "OCDialPlan"
  activate
 exit
 sbc dial-plan 1
  name "Lab plan"
  activate
 exit
 sbc routing ip2ip-routing 0
  route-name "dial plan"
  call-setup-rules-set-id 0
  activate
 exit
 sbc dial-plan-rule 0/0
  name "dialsync"
  prefix "+322612700[0-2]#"
  tag "Trunk=7f2c0c61-1b44-4c3e-9e58-bd0c0d0f7b1a"
  activate
 exit
 sbc dial-plan-rule 0/1
  name "manual"
  prefix "+3221\"odd\\#"
  tag "Trunk=legacy"
  activate
 exit
 sbc dial-plan-rule 1/0
  name "lab"
  prefix "+1555x"
  tag "Lab"
  activate
 exit
 sbc dial-plan-rule 0/2
  name "dialsync"
  prefix "+3280"
  tag "Trunk=7f2c0c61-1b44-4c3e-9e58-bd0c0d0f7b1a"
 exit
 gateway settings
  empty-block
  exit
 exit
exit
configure troubleshoot
 syslog
  syslog on
 exit
exit
"#;

    /// The fixture's sections with no dial plan in them.
    const EXTRA_SECTIONS: &str = r#"configure system
 web
  user Admin
   password-hash "$1$abc\"def"
  exit
 exit
 snmp settings
 exit
exit
configure voip
 sip-interface 0
  name "sbc dial-plan 0"
  activate
 exit
 gateway settings
  empty-block
  exit
 exit
exit
configure troubleshoot
 syslog
  syslog on
 exit
exit"#;

    fn rule_text(
        plan: u32,
        index: u32,
        name: &str,
        prefix: &str,
        tag: &str,
        activated: bool,
    ) -> DialPlanRuleText {
        DialPlanRuleText {
            plan,
            index,
            name: name.into(),
            prefix: prefix.into(),
            tag: tag.into(),
            activated,
        }
    }

    fn fixture_plans() -> DialPlans {
        let trunk = "Trunk=7f2c0c61-1b44-4c3e-9e58-bd0c0d0f7b1a";
        DialPlans {
            plans: vec![
                DialPlanText {
                    index: 0,
                    name: "OCDialPlan".into(),
                    activated: true,
                },
                DialPlanText {
                    index: 1,
                    name: "Lab plan".into(),
                    activated: true,
                },
            ],
            rules: vec![
                rule_text(0, 0, "dialsync", "+322612700[0-2]#", trunk, true),
                rule_text(0, 1, "manual", "+3221\"odd\\#", "Trunk=legacy", true),
                rule_text(1, 0, "lab", "+1555x", "Lab", true),
                rule_text(0, 2, "dialsync", "+3280", trunk, false),
            ],
        }
    }

    #[test]
    fn reads_the_dial_plans_out_of_a_full_configuration() {
        let plans = parse_dial_plans(FIXTURE).unwrap();
        assert_eq!(plans, fixture_plans());
        let (index, rules) = plans.rules_of("OCDialPlan").unwrap();
        assert_eq!(index, 0);
        assert_eq!(
            rules.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(rules[1].name, "manual");
        let (index, rules) = plans.rules_of("Lab plan").unwrap();
        assert_eq!((index, rules.len()), (1, 1));
        assert_eq!(plans.rules_of("ocdialplan"), None);
        // The same with Windows line endings.
        let crlf = FIXTURE.replace('\n', "\r\n");
        assert_eq!(parse_dial_plans(&crlf).unwrap(), fixture_plans());
    }

    #[test]
    fn full_script_leniency_and_its_limits() {
        // Unindented leaf settings, bare values, unknown columns, deletes and a rule whose plan
        // has no block.
        let script = "configure voip\nsetting 1\nsbc dial-plan 3\nname Plain\ncolumn \"x\"\nexit\n\
                      sbc dial-plan-rule 3/1\nprefix 12\nexit\nsbc dial-plan-rule 3/2\nexit\n\
                      no sbc dial-plan-rule 3/2\nsbc dial-plan-rule 9/9\nexit\nexit\n";
        assert_eq!(
            parse_dial_plans(script).unwrap(),
            DialPlans {
                plans: vec![DialPlanText {
                    index: 3,
                    name: "Plain".into(),
                    activated: false
                }],
                rules: vec![
                    rule_text(3, 1, "", "12", "", false),
                    rule_text(9, 9, "", "", "", false)
                ],
            }
        );
        // A malformed value outside the dial plans is none of our business.
        assert!(parse_dial_plans(
            "configure network\n name \"unterminated\n x \"a\"b\"\nexit\nconfigure voip\nexit\n"
        )
        .is_ok());
        let cases = [
            (
                "configure voip\n sbc dial-plan-rule 0/1\n  prefix \"+32\n exit\nexit\n",
                "line 3: unterminated quoted value",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/1\n  tag \"T=1\" extra\n exit\nexit\n",
                "line 3: text after the closing quote of tag: \"extra\"",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/1\n  name two words\n exit\nexit\n",
                "line 3: name needs a double-quoted value, found \"two words\"",
            ),
            (
                "configure voip\n sbc dial-plan 0\n  name \"a\\q\"\n exit\nexit\n",
                "line 3: unknown escape \"\\q\" in a quoted value (only \\\" and \\\\ are allowed)",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/1\n  tag \"a\"\n  tag \"b\"\n exit\nexit\n",
                "line 4: tag given twice in \"sbc dial-plan-rule 0/1\"",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/1\n exit\n sbc dial-plan-rule 0/1\n exit\nexit\n",
                "line 4: \"sbc dial-plan-rule 0/1\" appears twice in the configuration",
            ),
            (
                "configure voip\n sbc dial-plan 0/1\n exit\nexit\n",
                "line 2: bad dial plan index \"0/1\" (expected an unsigned number)",
            ),
            (
                "configure system\n web\n  x 1\n exit\nexit\nexit\nconfigure voip\nexit\n",
                "line 6: \"exit\" closes nothing",
            ),
            (
                "configure voip\n sbc dial-plan 0\n  name \"OCDialPlan\"\nexit\n",
                "line 1: \"configure voip\" is never closed (missing \"exit\")",
            ),
            (
                "configure network\n network-dev 0\n  vlan-id 1\n exit\nconfigure voip\nexit\n",
                "line 1: \"configure network\" is never closed (missing \"exit\")",
            ),
        ];
        for (script, message) in cases {
            let err = parse_dial_plans(script).expect_err(script);
            assert_eq!(err.to_string(), message, "script:\n{script}");
        }
        assert_eq!(
            parse_dial_plans("configure system\nexit\n"),
            Err(ScriptError::NoVoipSection)
        );
        assert_eq!(parse_dial_plans(""), Err(ScriptError::NoVoipSection));
    }

    #[test]
    fn render_full_reads_back_the_fixture() {
        let extra = FIXTURE.split("configure voip").next().unwrap();
        let text = render_full(&fixture_plans(), extra);
        assert!(text.starts_with("configure system\n"));
        assert_eq!(parse_dial_plans(&text).unwrap(), fixture_plans());
        assert_eq!(
            parse_dial_plans(&render_full(&DialPlans::default(), "")).unwrap(),
            DialPlans::default()
        );
    }

    // ---- properties ----

    fn arb_route() -> impl Strategy<Value = Route> {
        (
            "[0-9xzn.+\"\\\\]{1,12}#?"
                .prop_filter_map("not a pattern", |p| Pattern::parse(&p).ok()),
            "[A-Za-z][A-Za-z0-9_-]{0,6}=[a-z0-9.]{1,10}".prop_map(|t| Tag::parse(&t, 64).unwrap()),
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

    /// Printable text of every kind, quotes, backslashes and spaces included.
    fn arb_value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{0,16}",
            "\\PC{0,12}",
            prop::collection::vec(
                prop::sample::select(vec!["\"", "\\", " ", "a", "exit"]),
                0..8
            )
            .prop_map(|parts| parts.concat()),
        ]
    }

    fn arb_dial_plans() -> impl Strategy<Value = DialPlans> {
        let plans = prop::collection::btree_map(0u32..50, (arb_value(), any::<bool>()), 0..5);
        let rules = prop::collection::btree_map(
            (0u32..5, any::<u32>()),
            (arb_value(), arb_value(), arb_value(), any::<bool>()),
            0..12,
        );
        (plans, rules, any::<bool>()).prop_map(|(plans, rules, reverse)| {
            let mut plans = DialPlans {
                plans: plans
                    .into_iter()
                    .map(|(index, (name, activated))| DialPlanText {
                        index,
                        name,
                        activated,
                    })
                    .collect(),
                rules: rules
                    .into_iter()
                    .map(
                        |((plan, index), (name, prefix, tag, activated))| DialPlanRuleText {
                            plan,
                            index,
                            name,
                            prefix,
                            tag,
                            activated,
                        },
                    )
                    .collect(),
            };
            // Script order is kept, whatever it is.
            if reverse {
                plans.rules.reverse();
            }
            plans
        })
    }

    proptest! {
        #[test]
        fn incremental_round_trip(
            plan in any::<u32>(),
            rule_name in arb_value(),
            ops in prop::collection::vec(arb_op(), 0..20),
        ) {
            let script = render_incremental(plan, &rule_name, &ops);
            let expected: Vec<Command> =
                ops.iter().filter_map(|op| expected_command(plan, &rule_name, op)).collect();
            prop_assert_eq!(parse_incremental(&script).unwrap(), expected);
            let crlf = script.replace('\n', "\r\n");
            prop_assert_eq!(parse_incremental(&crlf), parse_incremental(&script));
        }

        #[test]
        fn escaping_round_trip(value in arb_value()) {
            let script = format!(
                "configure voip\n sbc dial-plan 0\n  name {}\n exit\nexit\n",
                quote(&value)
            );
            let commands = parse_incremental(&script).unwrap();
            prop_assert_eq!(
                &commands[..],
                &[Command::EditPlan { plan: 0, name: Some(value.clone()), activate: false }]
            );
            let full = parse_dial_plans(&script).unwrap();
            prop_assert_eq!(&full.plans[0].name, &value);
        }

        #[test]
        fn full_round_trip(plans in arb_dial_plans(), with_extra in any::<bool>()) {
            let extra = if with_extra { EXTRA_SECTIONS } else { "" };
            let text = render_full(&plans, extra);
            prop_assert_eq!(parse_dial_plans(&text).unwrap(), plans);
        }
    }
}
