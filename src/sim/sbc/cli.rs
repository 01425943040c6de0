//! The device's CLI as the emulated SBC reads and prints it, written from the vendor's
//! documents rather than from dialsync's sink (`sink/cli_script.rs`), so that a round trip
//! between the two proves they agree on the device's language, not that a module agrees with
//! itself.
//!
//! What the documents say, and this module does:
//! - An incremental script ("REST API: Incremental CLI Script") is a list of CLI commands the
//!   device runs as if typed: `configure voip` enters the VoIP configuration, `sbc dial-plan
//!   N` and `sbc dial-plan-rule P/R` enter a table row (created when it does not exist), a row's
//!   parameters are set by `name`, `prefix` and `tag` followed by a value, `activate` applies
//!   the row, `exit` leaves the current level, and `no sbc dial-plan...` deletes a row.
//!   Indentation means nothing to a CLI, and a script may end without leaving its levels. A
//!   value is one word, or double-quoted with `\"` and `\\` escaped. A command the device does
//!   not know refuses the script (400, "provided CLI script is incorrect").
//! - The full configuration (`GET /api/v1/files/cliScript`) prints each section as
//!   `configure <section>` ... `exit`, one row block per table row with its non-empty
//!   parameters quoted, nested one level deeper per block. Real exports differ in how deep
//!   (none, one, two or four spaces) and in whether the last `exit` is there; [`CliStyle`]
//!   chooses, so that tests can serve each.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::SimPlan;

/// One command of an incremental script, as the device runs it. An edit names only the
/// parameters the script sets: the others keep the row's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    EditPlan {
        plan: u32,
        name: Option<String>,
    },
    EditRule {
        plan: u32,
        rule: u32,
        name: Option<String>,
        prefix: Option<String>,
        tag: Option<String>,
    },
    DeletePlan {
        plan: u32,
    },
    DeleteRule {
        plan: u32,
        rule: u32,
    },
}

/// Why the device refuses a script before running any of it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ScriptRefused {
    pub line: usize,
    pub reason: String,
}

/// Where the reader is, as the CLI's prompt would show it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Voip,
    /// In a row: the position of its command.
    Row(usize),
}

/// Reads an incremental script as the device would: every line a command at the current
/// level. The whole script is refused on the first line the device would not take.
pub fn read_script(text: &str) -> Result<Vec<Command>, ScriptRefused> {
    let mut commands = Vec::new();
    let mut level = Level::Root;
    for (number, raw) in text.lines().enumerate() {
        let line = number + 1;
        let refuse = |reason: String| ScriptRefused { line, reason };
        let words = split_words(raw.trim()).map_err(refuse)?;
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match (level, words.as_slice()) {
            (_, []) => {}
            (Level::Root, ["configure", "voip"]) => level = Level::Voip,
            (Level::Root, _) => {
                return Err(refuse(format!(
                    "{:?} is not a command here (expected \"configure voip\")",
                    raw.trim()
                )))
            }
            (Level::Voip, ["exit"]) => level = Level::Root,
            (Level::Voip, ["sbc", "dial-plan", index]) => {
                let plan = number_of(index).map_err(refuse)?;
                commands.push(Command::EditPlan { plan, name: None });
                level = Level::Row(commands.len() - 1);
            }
            (Level::Voip, ["sbc", "dial-plan-rule", address]) => {
                let (plan, rule) = address_of(address).map_err(refuse)?;
                commands.push(Command::EditRule {
                    plan,
                    rule,
                    name: None,
                    prefix: None,
                    tag: None,
                });
                level = Level::Row(commands.len() - 1);
            }
            (Level::Voip, ["no", "sbc", "dial-plan", index]) => {
                let plan = number_of(index).map_err(refuse)?;
                commands.push(Command::DeletePlan { plan });
            }
            (Level::Voip, ["no", "sbc", "dial-plan-rule", address]) => {
                let (plan, rule) = address_of(address).map_err(refuse)?;
                commands.push(Command::DeleteRule { plan, rule });
            }
            (Level::Voip, _) => {
                return Err(refuse(format!(
                    "{:?} is not a dial-plan command",
                    raw.trim()
                )))
            }
            (Level::Row(_), ["exit"]) => level = Level::Voip,
            (Level::Row(_), ["activate"]) => {}
            (Level::Row(at), [parameter, value]) => {
                let slot = match (&mut commands[at], *parameter) {
                    (Command::EditPlan { name, .. }, "name")
                    | (Command::EditRule { name, .. }, "name") => name,
                    (Command::EditRule { prefix, .. }, "prefix") => prefix,
                    (Command::EditRule { tag, .. }, "tag") => tag,
                    _ => return Err(refuse(format!("{parameter:?} is not a parameter here"))),
                };
                *slot = Some(value.to_string());
            }
            (Level::Row(_), _) => {
                return Err(refuse(format!(
                    "{:?} is not a row command (a parameter and one value, activate or exit)",
                    raw.trim()
                )))
            }
        }
    }
    Ok(commands)
}

/// Splits a command line into words: blanks separate them, a double-quoted word may hold
/// blanks, `\"` and `\\`.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(escaped @ ('"' | '\\')) => word.push(escaped),
                        Some(other) => return Err(format!("unknown escape \"\\{other}\"")),
                        None => return Err("unterminated quoted value".into()),
                    },
                    Some(c) => word.push(c),
                    None => return Err("unterminated quoted value".into()),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err("text right after a closing quote".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '"' {
                    return Err("a quote inside a word".into());
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

fn number_of(text: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not an index"));
    }
    text.parse()
        .map_err(|_| format!("{text:?} is out of range"))
}

fn address_of(text: &str) -> Result<(u32, u32), String> {
    let (plan, rule) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not a PLAN/RULE address"))?;
    Ok((number_of(plan)?, number_of(rule)?))
}

/// How the emulated firmware prints its full configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliStyle {
    /// Spaces per level of nesting: the vendor's exports use one; two, four and none are seen.
    pub indent: usize,
    /// Whether the last section ends with its `exit`.
    pub final_exit: bool,
}

impl Default for CliStyle {
    fn default() -> Self {
        CliStyle {
            indent: 1,
            final_exit: true,
        }
    }
}

/// The device's whole configuration: `other_sections` (written with one space per level; they
/// are re-indented to `style`) and then the `configure voip` section with every dial plan and
/// rule, empty parameters left out, as the device prints them.
pub fn render_config(
    plans: &BTreeMap<u32, SimPlan>,
    other_sections: &str,
    style: &CliStyle,
) -> String {
    let pad = |depth: usize| " ".repeat(depth * style.indent);
    let mut out = String::new();
    for line in other_sections.lines() {
        let text = line.trim_start();
        if !text.is_empty() {
            let _ = writeln!(out, "{}{text}", pad(line.len() - text.len()));
        }
    }
    out.push_str("configure voip\n");
    let field = |out: &mut String, name: &str, value: &str| {
        if !value.is_empty() {
            let _ = writeln!(out, "{}{name} {}", pad(2), quoted(value));
        }
    };
    for (index, plan) in plans {
        let _ = writeln!(out, "{}sbc dial-plan {index}", pad(1));
        field(&mut out, "name", &plan.name);
        let _ = writeln!(out, "{}activate\n{}exit", pad(2), pad(1));
    }
    for (plan_index, plan) in plans {
        for (index, rule) in &plan.rules {
            let _ = writeln!(out, "{}sbc dial-plan-rule {plan_index}/{index}", pad(1));
            field(&mut out, "name", &rule.name);
            field(&mut out, "prefix", &rule.prefix);
            field(&mut out, "tag", &rule.tag);
            let _ = writeln!(out, "{}activate\n{}exit", pad(2), pad(1));
        }
    }
    if style.final_exit {
        out.push_str("exit\n");
    }
    out
}

fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_as_a_cli_takes_them() {
        // No indentation, bare and quoted values, blank lines, CRLF, no final exits.
        let script = "configure voip\r\n\r\nsbc dial-plan 2\r\nname \"Other plan\"\r\nexit\r\n\
                      sbc dial-plan-rule 2/0\r\n  prefix +3222\r\n\tactivate\r\nexit\r\n\
                      no sbc dial-plan-rule 2/7\r\nno sbc dial-plan 9\r\nexit\r\n\
                      configure voip\r\n    sbc dial-plan-rule 0/4294967295\r\n\
                      tag \"a \\\"b\\\" \\\\\"";
        assert_eq!(
            read_script(script).unwrap(),
            vec![
                Command::EditPlan {
                    plan: 2,
                    name: Some("Other plan".into())
                },
                Command::EditRule {
                    plan: 2,
                    rule: 0,
                    name: None,
                    prefix: Some("+3222".into()),
                    tag: None
                },
                Command::DeleteRule { plan: 2, rule: 7 },
                Command::DeletePlan { plan: 9 },
                Command::EditRule {
                    plan: 0,
                    rule: 4_294_967_295,
                    name: None,
                    prefix: None,
                    tag: Some("a \"b\" \\".into())
                },
            ]
        );
        assert_eq!(read_script("").unwrap(), vec![]);
    }

    #[test]
    fn what_the_device_refuses_with_its_line() {
        for (script, line, reason) in [
            ("sbc dial-plan 0\n", 1, "is not a command here"),
            ("configure system\n", 1, "is not a command here"),
            ("configure voip\nexit\nexit\n", 3, "is not a command here"),
            (
                "configure voip\nname \"x\"\n",
                2,
                "is not a dial-plan command",
            ),
            ("configure voip\nsbc dial-plan x\n", 2, "is not an index"),
            (
                "configure voip\nsbc dial-plan-rule 0-1\n",
                2,
                "not a PLAN/RULE",
            ),
            (
                "configure voip\nsbc dial-plan-rule 0/99999999999\n",
                2,
                "out of range",
            ),
            (
                "configure voip\nsbc dial-plan 0\nprefix \"+32\"\n",
                3,
                "not a parameter",
            ),
            (
                "configure voip\nsbc dial-plan-rule 0/1\nname a b\n",
                3,
                "not a row command",
            ),
            (
                "configure voip\nsbc dial-plan-rule 0/1\ntag \"a\n",
                3,
                "unterminated",
            ),
            (
                "configure voip\nsbc dial-plan-rule 0/1\ntag \"a\\n\"\n",
                3,
                "unknown escape",
            ),
            (
                "configure voip\nsbc dial-plan-rule 0/1\ntag \"a\"b\n",
                3,
                "right after",
            ),
            (
                "configure voip\nsbc dial-plan-rule 0/1\ntag a\"b\n",
                3,
                "inside a word",
            ),
        ] {
            let refused = read_script(script).expect_err(script);
            assert_eq!(refused.line, line, "{script}");
            assert!(refused.reason.contains(reason), "{script}: {refused}");
        }
    }

    #[test]
    fn configurations_print_in_each_style() {
        let mut plans = BTreeMap::new();
        let mut oc = SimPlan {
            name: "OCDialPlan".into(),
            rules: BTreeMap::new(),
        };
        oc.rules.insert(
            3,
            super::super::SimRule {
                name: "Site \"A\"".into(),
                prefix: "+97239753000".into(),
                tag: String::new(),
            },
        );
        plans.insert(0, oc);
        let four = CliStyle {
            indent: 4,
            final_exit: false,
        };
        assert_eq!(
            render_config(
                &plans,
                "configure system\n web\n  x 1\n exit\nexit\n",
                &four
            ),
            "configure system\n    web\n        x 1\n    exit\nexit\nconfigure voip\n    \
             sbc dial-plan 0\n        name \"OCDialPlan\"\n        activate\n    exit\n    \
             sbc dial-plan-rule 0/3\n        name \"Site \\\"A\\\"\"\n        \
             prefix \"+97239753000\"\n        activate\n    exit\n"
        );
    }
}
