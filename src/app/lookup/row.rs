//! One number's answer as a flat row (`lookup --csv`, its JSON Lines, the admin port's
//! `/lookup`), and the verdict that sums it up.

use std::fmt;

use serde::Serialize;

use crate::dialplan::rule::Tag;

/// Does the SBC route a number as the sources want?
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The winning rule carries the desired tag.
    Routed,
    /// A rule dialsync owns wins with another tag: the next sync changes it (a hand edit on
    /// the SBC, a sync not run yet, a plan the safety gate held back).
    Misrouted,
    /// A foreign rule wins with another tag: only its owner can change that.
    Shadowed,
    /// A tag is desired and no rule matches the number.
    Unrouted,
    /// No source assigns the number, whatever the SBC does with it.
    NotDesired,
    /// The line of a file is not a number.
    BadLine,
}

impl Verdict {
    /// The verdict for a number the SBC routes by `rule` (its tag, and whether dialsync owns
    /// it) while the sources want `desired`.
    pub fn of(rule: Option<(&Tag, bool)>, desired: Option<&Tag>) -> Verdict {
        match (rule, desired) {
            (_, None) => Verdict::NotDesired,
            (None, Some(_)) => Verdict::Unrouted,
            (Some((tag, _)), Some(wanted)) if tag == wanted => Verdict::Routed,
            (Some((_, true)), Some(_)) => Verdict::Misrouted,
            (Some((_, false)), Some(_)) => Verdict::Shadowed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Routed => "routed",
            Verdict::Misrouted => "misrouted",
            Verdict::Shadowed => "shadowed",
            Verdict::Unrouted => "unrouted",
            Verdict::NotDesired => "not-desired",
            Verdict::BadLine => "bad-line",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose rule wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    Dialsync,
    Foreign,
}

/// One number's answer, flat: the rule the SBC picks, the tag the sources want and from which
/// item, and the verdict. Borrowed from the loaded state, so a million rows allocate only their
/// number's text. The field order is the CSV's column order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LookupRow<'a> {
    /// The line of the file the number came from; empty for command-line numbers.
    pub line: Option<u64>,
    /// The number in E.164 form, or the line's text when it is not a number.
    pub number: String,
    pub rule_index: Option<u32>,
    pub name: Option<&'a str>,
    pub prefix: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub owner: Option<Owner>,
    pub desired_tag: Option<&'a str>,
    pub source: Option<&'a str>,
    pub item: Option<&'a str>,
    pub verdict: Verdict,
    /// Why a bad line is not a number.
    pub error: Option<String>,
}

impl LookupRow<'_> {
    /// The row of a line that is not a number.
    pub fn bad_line(line: Option<u64>, text: &str, reason: String) -> LookupRow<'static> {
        LookupRow {
            line,
            number: text.to_string(),
            rule_index: None,
            name: None,
            prefix: None,
            tag: None,
            owner: None,
            desired_tag: None,
            source: None,
            item: None,
            verdict: Verdict::BadLine,
            error: Some(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_winning_rule_and_its_owner() {
        let (a, b) = (Tag::held("Trunk=a"), Tag::held("Trunk=b"));
        assert_eq!(Verdict::of(Some((&a, true)), Some(&a)), Verdict::Routed);
        assert_eq!(Verdict::of(Some((&a, false)), Some(&a)), Verdict::Routed);
        assert_eq!(Verdict::of(Some((&b, true)), Some(&a)), Verdict::Misrouted);
        assert_eq!(Verdict::of(Some((&b, false)), Some(&a)), Verdict::Shadowed);
        assert_eq!(Verdict::of(None, Some(&a)), Verdict::Unrouted);
        assert_eq!(Verdict::of(Some((&a, true)), None), Verdict::NotDesired);
        assert_eq!(Verdict::of(None, None), Verdict::NotDesired);
        assert_eq!(Verdict::NotDesired.to_string(), "not-desired");
    }
}
