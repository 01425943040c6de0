//! The AudioCodes CLI dialect for dial plans (DESIGN.md §5.1), as dialsync speaks it: writing
//! incremental scripts, and reading the dial plans out of the device's full configuration.
//!
//! The dialect is an assumption from public documentation, not something the vendor specifies
//! for machines. Keeping every line of it here means a firmware that spells something
//! differently is a change to this file only. The SBC emulator does not use this module: it
//! reads and prints the device's CLI with its own reading of the vendor's documents
//! (`sim/sbc/cli.rs`), so that a round trip between the two proves something.
//!
//! Pure: text in, text or values out. Values stay raw strings (quotes removed, escapes undone);
//! judging a row is the business of [`crate::dialplan::rule`], so that the sink can tell its
//! own rules from everyone else's and set aside the rows it cannot read one by one.
//!
//! The reader of the full configuration is lenient wherever the device's own output varies,
//! because it must never fail on a real export: indentation (none, one, two or four spaces),
//! a last block without its closing `exit`, sections and columns dialsync does not know. It
//! is strict only where leniency could misread which rows exist or what they say, and there it
//! fails per row where it can: a rule whose value cannot be read is returned as unreadable, its
//! index still taken, instead of refusing the whole dial plan.

use std::collections::HashMap;
use std::fmt::Write as _;

use smallvec::SmallVec;

use crate::plan::{Op, OpKind};

/// A configuration the reader cannot take as a whole. Every error but
/// [`ScriptError::NoVoipSection`] names the 1-based physical line (blank lines count) at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("the configuration has no \"configure voip\" section")]
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
    #[error("line {line}: {field} needs a value")]
    MissingValue { line: usize, field: &'static str },
    #[error("line {line}: {field} needs a double-quoted value, found {found:?}")]
    Unquoted {
        line: usize,
        field: &'static str,
        found: String,
    },
    #[error("line {line}: {block:?} is never closed (missing \"exit\" before line {next})")]
    Unclosed {
        line: usize,
        block: String,
        next: usize,
    },
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

impl crate::error::Classify for ScriptError {
    fn class(&self) -> crate::error::ErrorClass {
        // A configuration dialsync cannot read as dial plans means the SBC's configuration (or
        // the firmware's dialect) is not what dialsync understands: any dial plan read from it
        // could be misread, and planning against a misread plan could delete routes that are
        // in use. Reading again returns the same text, so only a person can resolve it.
        crate::error::ErrorClass::Fatal
    }
}

impl ScriptError {
    /// The line at fault, when there is one.
    pub fn line(&self) -> Option<usize> {
        use ScriptError::*;
        match self {
            NoVoipSection => None,
            Unterminated { line }
            | BadEscape { line, .. }
            | TrailingText { line, .. }
            | MissingValue { line, .. }
            | Unquoted { line, .. }
            | Unclosed { line, .. }
            | BadPlanIndex { line, .. }
            | BadRuleAddress { line, .. }
            | DuplicateField { line, .. }
            | DuplicateBlock { line, .. } => Some(*line),
        }
    }
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
/// reads each into a [`DialPlanRule`](crate::dialplan::rule::DialPlanRule) and sets aside the
/// ones it cannot read.
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
    /// Why the row cannot be read (a value whose quoting cannot be undone, a field or the
    /// whole row given twice): the row exists, so its index is taken, but what it says is
    /// unknown. The fields hold what could be read.
    pub unreadable: Option<String>,
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

    /// [`rules_of`](Self::rules_of), taking the rows instead of copying them: the sink's
    /// read of a 100k-rule plan held two copies of every row's text at once (15 MB each).
    pub fn into_rules_of(self, plan_name: &str) -> Option<(u32, Vec<DialPlanRuleText>)> {
        let plan = self.plans.iter().find(|p| p.name == plan_name)?.index;
        let mut rules = self.rules;
        rules.retain(|r| r.plan == plan);
        Some((plan, rules))
    }
}

// ---- rendering ----

/// `value` double-quoted, with `"` and `\` escaped by a backslash.
///
/// Values never hold line breaks: the rule names, tags and prefixes dialsync writes refuse
/// control characters (`dialplan/rule.rs`), and the dialect has no escape for them.
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
pub fn render_incremental(plan_index: u32, rule_name: &str, ops: &[&Op]) -> String {
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

// ---- reading the full configuration ----

/// One non-blank line of a script.
struct Line<'a> {
    /// 1-based, counting blank lines, as an editor shows it.
    number: usize,
    /// Without the leading and trailing whitespace (and without a `\r` of a `\r\n` ending).
    text: &'a str,
}

fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    text.split('\n').enumerate().filter_map(|(i, raw)| {
        let text = raw.trim();
        (!text.is_empty()).then_some(Line {
            number: i + 1,
            text,
        })
    })
}

/// The keyword of a field line and the rest of it.
fn split_keyword(text: &str) -> (&str, &str) {
    match text.split_once(char::is_whitespace) {
        Some((keyword, rest)) => (keyword, rest.trim_start()),
        None => (text, ""),
    }
}

/// Reads the value of a field line: one double-quoted string and nothing after it, or a single
/// unquoted word, which the device prints for simple values.
fn parse_value(line: usize, field: &'static str, rest: &str) -> Result<String, ScriptError> {
    if rest.is_empty() {
        return Err(ScriptError::MissingValue { line, field });
    }
    let Some(body) = rest.strip_prefix('"') else {
        if !rest.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
            return Ok(rest.to_string());
        }
        return Err(ScriptError::Unquoted {
            line,
            field,
            found: rest.to_string(),
        });
    };
    // Both are ASCII, so a byte search finds them at char boundaries.
    if let Some(end) =
        memchr::memchr2(b'"', b'\\', body.as_bytes()).filter(|&end| body[end..].starts_with('"'))
    {
        // No escape before the closing quote, as in nearly every value: one copy.
        let after = body[end + 1..].trim();
        if !after.is_empty() {
            return Err(ScriptError::TrailingText {
                line,
                field,
                rest: after.to_string(),
            });
        }
        return Ok(body[..end].to_string());
    }
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

/// Digits only: `u32::from_str` would also take `+1`, which the device does not print.
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
    // Most lines of a full script are fields and other sections' lines: turned away before
    // their words are collected (a 100k-rule script has some 600k lines).
    if !(line.text.starts_with("sbc") || line.text.starts_with("no")) {
        return None;
    }
    // Inline: a header has three or four words, and 100k of them each had a vector.
    let tokens: SmallVec<[&str; 4]> = line.text.split_whitespace().collect();
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

/// The dial-plan block being read.
enum Open<'a> {
    /// By position in [`DialPlans::plans`], with whether `name` was seen.
    Plan {
        at: usize,
        named: bool,
        line: usize,
        text: &'a str,
    },
    /// By position in [`DialPlans::rules`], with which of [`RULE_FIELDS`] were seen.
    Rule {
        at: usize,
        seen: [bool; 3],
        line: usize,
        text: &'a str,
    },
}

/// Reads every dial plan and dial-plan rule under `configure voip` out of the device's full
/// configuration script (`GET /api/v1/files/cliScript`).
///
/// Sections start with a `configure ...` line, which the device prints only at the top level;
/// only `configure voip` sections are read. Inside them, a dial-plan header (`sbc dial-plan N`,
/// `sbc dial-plan-rule P/R`) opens a block that its `exit` closes; every other line and block
/// of the section is skipped, whatever its indentation, and so are unknown lines inside a
/// dial-plan block (a later firmware may add columns). The last block may lack its `exit`.
///
/// Per row: a rule whose value cannot be read, that gives a field twice, or that appears twice
/// is returned with [`DialPlanRuleText::unreadable`] set. For the whole script: no `configure
/// voip` section, a dial-plan header with bad numbers (its row cannot even be placed), a dial
/// plan's own block that cannot be read (which plan is `OCDialPlan` would be a guess), and a
/// block left open before the next header or section, except at the end of the file.
pub fn parse_dial_plans(text: &str) -> Result<DialPlans, ScriptError> {
    // Sized once from a count of the rows' headers (a few more if some are `no` lines):
    // grown by doubling, the rows' vector of a 100k-rule plan held 3.5 MB unused.
    let mut out = DialPlans {
        plans: Vec::new(),
        rules: Vec::with_capacity(
            memchr::memmem::find_iter(text.as_bytes(), b"dial-plan-rule ").count(),
        ),
    };
    let mut plan_at: Positions<u32> = Positions::default();
    let mut rule_at: Positions<(u32, u32)> = Positions::default();
    let mut saw_voip = false;
    let mut in_voip = false;
    let mut open: Option<Open> = None;
    for line in lines(text) {
        let n = line.number;
        // The first word is `configure` (the line is trimmed), without splitting every line
        // of the script into words.
        let is_configure = line
            .text
            .strip_prefix("configure")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace));
        let header = parse_header(&line).transpose()?;
        if let Some(block) = &open {
            if line.text == "exit" {
                open = None;
                continue;
            }
            if is_configure || header.is_some() {
                let (line, text) = match block {
                    Open::Plan { line, text, .. } | Open::Rule { line, text, .. } => (*line, *text),
                };
                return Err(ScriptError::Unclosed {
                    line,
                    block: text.to_string(),
                    next: n,
                });
            }
        }
        if is_configure {
            in_voip = line.text.split_whitespace().eq(["configure", "voip"]);
            saw_voip |= in_voip;
            continue;
        }
        match &mut open {
            None if !in_voip => {}
            None => match header {
                Some(Header::Plan(index)) => {
                    if plan_at.find(index, plan_keys(&out)).is_some() {
                        return Err(ScriptError::DuplicateBlock {
                            line: n,
                            block: line.text.to_string(),
                        });
                    }
                    plan_at.insert(index, out.plans.len());
                    out.plans.push(DialPlanText {
                        index,
                        ..DialPlanText::default()
                    });
                    open = Some(Open::Plan {
                        at: out.plans.len() - 1,
                        named: false,
                        line: n,
                        text: line.text,
                    });
                }
                Some(Header::Rule(plan, index)) => {
                    let at = match rule_at.find((plan, index), rule_keys(&out)) {
                        Some(at) => {
                            // Two blocks for one row: which says what the device routes with
                            // is a guess, so the row stands, unread.
                            out.rules[at].unreadable.get_or_insert_with(|| {
                                format!("line {n}: the row appears twice in the configuration")
                            });
                            at
                        }
                        None => {
                            rule_at.insert((plan, index), out.rules.len());
                            out.rules.push(DialPlanRuleText {
                                plan,
                                index,
                                ..DialPlanRuleText::default()
                            });
                            out.rules.len() - 1
                        }
                    };
                    open = Some(Open::Rule {
                        at,
                        seen: [false; 3],
                        line: n,
                        text: line.text,
                    });
                }
                Some(Header::NoPlan(index)) if plan_at.find(index, plan_keys(&out)).is_some() => {
                    out.plans.retain(|p| p.index != index);
                    plan_at.reindex(plan_keys(&out));
                }
                Some(Header::NoRule(plan, index))
                    if rule_at.find((plan, index), rule_keys(&out)).is_some() =>
                {
                    out.rules.retain(|r| (r.plan, r.index) != (plan, index));
                    rule_at.reindex(rule_keys(&out));
                }
                Some(Header::NoPlan(_) | Header::NoRule(..)) | None => {}
            },
            Some(Open::Plan {
                at, named, text, ..
            }) => {
                let (keyword, rest) = split_keyword(line.text);
                if line.text == "activate" {
                    out.plans[*at].activated = true;
                } else if keyword == "name" {
                    if std::mem::replace(named, true) {
                        return Err(ScriptError::DuplicateField {
                            line: n,
                            field: "name",
                            block: text.to_string(),
                        });
                    }
                    out.plans[*at].name = parse_value(n, "name", rest)?;
                }
            }
            Some(Open::Rule { at, seen, .. }) => {
                let (keyword, rest) = split_keyword(line.text);
                let rule = &mut out.rules[*at];
                if line.text == "activate" {
                    rule.activated = true;
                } else if let Some(k) = RULE_FIELDS.iter().position(|f| *f == keyword) {
                    let field = RULE_FIELDS[k];
                    if std::mem::replace(&mut seen[k], true) {
                        rule.unreadable.get_or_insert_with(|| {
                            format!("line {n}: {field} given twice in the row")
                        });
                        continue;
                    }
                    match parse_value(n, field, rest) {
                        Ok(value) => match k {
                            0 => rule.name = value,
                            1 => rule.prefix = value,
                            _ => rule.tag = value,
                        },
                        Err(error) => {
                            rule.unreadable.get_or_insert_with(|| error.to_string());
                        }
                    }
                }
            }
        }
    }
    if !saw_voip {
        return Err(ScriptError::NoVoipSection);
    }
    Ok(out)
}

fn plan_keys(out: &DialPlans) -> impl Iterator<Item = u32> + '_ {
    out.plans.iter().map(|p| p.index)
}

fn rule_keys(out: &DialPlans) -> impl Iterator<Item = (u32, u32)> + '_ {
    out.rules.iter().map(|r| (r.plan, r.index))
}

/// Where each block is in its list, by key. A device lists its blocks in key order, so a key
/// past the last one listed is new without a lookup, and the map is built only once a key
/// comes out of order or a `no` line names one: hashing every row of a 100k-rule plan into a
/// map was 2.4 MB and a tenth of reading it.
struct Positions<K> {
    last: Option<K>,
    map: Option<HashMap<K, usize>>,
}

impl<K> Default for Positions<K> {
    fn default() -> Self {
        Positions {
            last: None,
            map: None,
        }
    }
}

impl<K: Copy + Ord + std::hash::Hash> Positions<K> {
    /// Where `key` is listed; `keys` are the list's keys, in list order.
    fn find(&mut self, key: K, keys: impl Iterator<Item = K>) -> Option<usize> {
        if self.map.is_none() && self.last.is_none_or(|last| key > last) {
            return None;
        }
        let map = self.map.get_or_insert_with(|| {
            keys.enumerate()
                .map(|(position, key)| (key, position))
                .collect()
        });
        map.get(&key).copied()
    }

    /// `key` is now listed at `position`.
    fn insert(&mut self, key: K, position: usize) {
        self.last = Some(self.last.map_or(key, |last| last.max(key)));
        if let Some(map) = &mut self.map {
            map.insert(key, position);
        }
    }

    /// Blocks were removed from the list, whose keys are now `keys`.
    fn reindex(&mut self, keys: impl Iterator<Item = K>) {
        self.map = Some(
            keys.enumerate()
                .map(|(position, key)| (key, position))
                .collect(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialplan::pattern::Pattern;
    use crate::dialplan::rule::Tag;
    use crate::plan::Route;

    fn route(prefix: &str, tag: &str) -> Route {
        Route {
            prefix: Pattern::parse(prefix).unwrap(),
            tag: Tag::parse(tag, 64).unwrap(),
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
            render_incremental(0, "dialsync", &[&ops[0], &ops[1]]),
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
            render_create_plan(3, "OC\"Dial\\Plan"),
            "configure voip\n sbc dial-plan 3\n  name \"OC\\\"Dial\\\\Plan\"\n  activate\n exit\nexit\n"
        );
        // A modify renames too: that is how an adopted foreign rule becomes dialsync's.
        let modify = Op {
            index: 4,
            before: Some(route("+3210#", "T=1")),
            after: Some(route("+3210#", "T=2")),
        };
        assert!(render_incremental(1, "dialsync", &[&modify]).contains("  name \"dialsync\"\n"));
        // An empty op renders nothing.
        let empty = Op {
            index: 5,
            before: None,
            after: None,
        };
        assert_eq!(
            render_incremental(0, "dialsync", &[&empty]),
            "configure voip\nexit\n"
        );
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quote(r#"a"b\c d"#), r#""a\"b\\c d""#);
        assert_eq!(quote(""), "\"\"");
        let script =
            "configure voip\n sbc dial-plan-rule 0/1\n  prefix \"+32\\\\x\\\"#\"\n exit\nexit\n";
        assert_eq!(
            parse_dial_plans(script).unwrap().rules[0].prefix,
            "+32\\x\"#"
        );
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
            unreadable: None,
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

    /// The fixture as a device with another indentation prints it: `width` spaces per level.
    fn reindented(width: usize) -> String {
        FIXTURE
            .lines()
            .map(|line| {
                let text = line.trim_start();
                let depth = line.len() - text.len();
                format!("{}{text}\n", " ".repeat(depth * width))
            })
            .collect()
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

    /// Real exports come with no indentation at all, or one, two or four spaces per level, with
    /// tabs, and sometimes without the closing `exit` of the last section: all read the same.
    #[test]
    fn indentation_and_a_missing_last_exit_do_not_matter() {
        for width in [0, 1, 2, 4] {
            let text = reindented(width);
            assert_eq!(parse_dial_plans(&text).unwrap(), fixture_plans(), "{width}");
            let without_last_exit = text.trim_end().strip_suffix("exit").unwrap();
            assert_eq!(
                parse_dial_plans(without_last_exit).unwrap(),
                fixture_plans(),
                "{width}, no last exit"
            );
        }
        let tabs = FIXTURE.replace(' ', "\t");
        // Tabs inside values are kept: only the fixture's indentation changes meaning here.
        let plans = parse_dial_plans(&tabs).unwrap();
        assert_eq!(plans.plans[1].name, "Lab\tplan");
        // A dial plan's last rule without its `exit` at the very end of the file.
        let script = "configure voip\nsbc dial-plan 0\nname \"OCDialPlan\"\nexit\n\
                      sbc dial-plan-rule 0/3\nname \"LivePlatform\"\nprefix \"+97239753000\"\n\
                      tag \"sandbox1.audiocodes.be\"";
        let plans = parse_dial_plans(script).unwrap();
        assert_eq!(
            plans.rules,
            vec![rule_text(
                0,
                3,
                "LivePlatform",
                "+97239753000",
                "sandbox1.audiocodes.be",
                false
            )]
        );
    }

    #[test]
    fn full_script_leniency() {
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
        // Malformed values outside the dial plans, and exits that close nothing we know of,
        // are none of our business.
        assert!(parse_dial_plans(
            "configure network\n name \"unterminated\n x \"a\"b\"\nexit\nexit\nconfigure voip\nexit\n"
        )
        .is_ok());
    }

    /// A row the reader cannot read stays a row: its index is taken, and the reason says why.
    #[test]
    fn unreadable_rows_keep_their_place() {
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
                "configure voip\n sbc dial-plan-rule 0/1\n  name \"a\\q\"\n exit\nexit\n",
                "line 3: unknown escape \"\\q\" in a quoted value (only \\\" and \\\\ are allowed)",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/1\n  tag \"a\"\n  tag \"b\"\n exit\nexit\n",
                "line 4: tag given twice in the row",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/1\n exit\n sbc dial-plan-rule 0/1\n exit\nexit\n",
                "line 4: the row appears twice in the configuration",
            ),
        ];
        for (script, reason) in cases {
            let plans = parse_dial_plans(script).expect(script);
            assert_eq!(plans.rules.len(), 1, "{script}");
            assert_eq!((plans.rules[0].plan, plans.rules[0].index), (0, 1));
            assert_eq!(
                plans.rules[0].unreadable.as_deref(),
                Some(reason),
                "{script}"
            );
        }
    }

    /// Rows out of key order, repeated after others, or removed by a `no` line and then
    /// repeated: each is found where it is listed.
    #[test]
    fn rows_out_of_order_are_found_where_they_are() {
        let script = "configure voip\n sbc dial-plan-rule 0/5\n exit\n sbc dial-plan-rule 0/2\n exit\n sbc dial-plan-rule 0/9\n exit\n sbc dial-plan-rule 0/2\n exit\n no sbc dial-plan-rule 0/5\n sbc dial-plan-rule 0/7\n exit\n sbc dial-plan-rule 0/9\n exit\n no sbc dial-plan-rule 0/3\nexit\n";
        let plans = parse_dial_plans(script).unwrap();
        let rows: Vec<(u32, Option<&str>)> = plans
            .rules
            .iter()
            .map(|r| (r.index, r.unreadable.as_deref()))
            .collect();
        assert_eq!(
            rows,
            [
                (
                    2,
                    Some("line 8: the row appears twice in the configuration")
                ),
                (
                    9,
                    Some("line 13: the row appears twice in the configuration")
                ),
                (7, None),
            ]
        );
    }

    proptest::proptest! {
        /// `Positions` finds a key where a search of the list finds it, whatever the order
        /// keys are listed and removed in.
        #[test]
        fn positions_agree_with_a_search_of_the_list(
            steps in proptest::collection::vec((0u32..12, proptest::bool::weighted(0.2)), 0..40)
        ) {
            let mut list: Vec<u32> = Vec::new();
            let mut positions: Positions<u32> = Positions::default();
            for (key, remove) in steps {
                let found = positions.find(key, list.iter().copied());
                proptest::prop_assert_eq!(found, list.iter().position(|&k| k == key));
                match (found, remove) {
                    (Some(_), true) => {
                        list.retain(|&k| k != key);
                        positions.reindex(list.iter().copied());
                    }
                    (None, false) => {
                        positions.insert(key, list.len());
                        list.push(key);
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn what_cannot_be_read_as_a_whole() {
        let cases = [
            (
                "configure voip\n sbc dial-plan 0\n  name \"a\\q\"\n exit\nexit\n",
                "line 3: unknown escape \"\\q\" in a quoted value (only \\\" and \\\\ are allowed)",
            ),
            (
                "configure voip\n sbc dial-plan 0\n  name \"a\"\n  name \"b\"\n exit\nexit\n",
                "line 4: name given twice in \"sbc dial-plan 0\"",
            ),
            (
                "configure voip\n sbc dial-plan 0\n exit\n sbc dial-plan 0\n exit\nexit\n",
                "line 4: \"sbc dial-plan 0\" appears twice in the configuration",
            ),
            (
                "configure voip\n sbc dial-plan 0/1\n exit\nexit\n",
                "line 2: bad dial plan index \"0/1\" (expected an unsigned number)",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/x\n exit\nexit\n",
                "line 2: bad rule address \"0/x\" (expected PLAN/RULE, two unsigned numbers)",
            ),
            (
                "configure voip\n sbc dial-plan-rule 0/1\n  name \"a\"\n sbc dial-plan-rule 0/2\n exit\nexit\n",
                "line 2: \"sbc dial-plan-rule 0/1\" is never closed (missing \"exit\" before line 4)",
            ),
            (
                "configure voip\n sbc dial-plan 0\n  name \"OCDialPlan\"\nconfigure system\nexit\n",
                "line 2: \"sbc dial-plan 0\" is never closed (missing \"exit\" before line 4)",
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
}
