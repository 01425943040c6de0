//! One number's answer as a flat row (`lookup --csv`, its JSON Lines, the admin port's
//! `/lookup`), and the verdict that sums it up.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::audit;
use crate::dialplan::rule::Tag;

/// Does the SBC route a number as the sources want? The judgement is the audit's own
/// ([`audit::verdict`]), so `lookup` and `audit` never word one number two ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Routed, misrouted, shadowed, unrouted, or stray (an owned rule routes a number no
    /// source assigns).
    Judged(audit::Verdict),
    /// No source assigns the number, and no rule of dialsync's routes it.
    NotDesired,
    /// The line of a file is not a number.
    BadLine,
}

impl Verdict {
    /// The verdict for a number the SBC routes by `rule` (its tag, and whether dialsync owns
    /// it) while the sources want `desired`.
    pub fn of(rule: Option<(&Tag, bool)>, desired: Option<&Tag>) -> Verdict {
        let winner = rule.map(|(tag, owned)| audit::Winner {
            has_desired_tag: Some(tag) == desired,
            owned,
        });
        audit::verdict(desired.is_some(), winner).map_or(Verdict::NotDesired, Verdict::Judged)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Judged(verdict) => verdict.as_str(),
            Verdict::NotDesired => "not-desired",
            Verdict::BadLine => "bad-line",
        }
    }
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
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
    pub item: Option<Cow<'a, str>>,
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
        use audit::Verdict::*;
        let (a, b) = (Tag::held("Trunk=a"), Tag::held("Trunk=b"));
        let of = Verdict::of;
        assert_eq!(of(Some((&a, true)), Some(&a)), Verdict::Judged(Routed));
        assert_eq!(of(Some((&a, false)), Some(&a)), Verdict::Judged(Routed));
        assert_eq!(of(Some((&b, true)), Some(&a)), Verdict::Judged(Misrouted));
        assert_eq!(of(Some((&b, false)), Some(&a)), Verdict::Judged(Shadowed));
        assert_eq!(of(None, Some(&a)), Verdict::Judged(Unrouted));
        // As `audit` says: an owned rule routing a number no source assigns is stray.
        assert_eq!(of(Some((&a, true)), None), Verdict::Judged(Stray));
        assert_eq!(of(Some((&a, false)), None), Verdict::NotDesired);
        assert_eq!(of(None, None), Verdict::NotDesired);
        assert_eq!(Verdict::NotDesired.to_string(), "not-desired");
        assert_eq!(Verdict::Judged(Stray).to_string(), "stray");
    }
}
