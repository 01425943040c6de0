//! The answer for a person: `lookup NUMBER...` and its `--json`.

use serde::Serialize;

use super::row::Verdict;
use crate::dialplan::rule::Tag;

/// What `lookup` says about one number.
#[derive(Clone, Debug, Serialize)]
pub struct LookupAnswer {
    pub number: String,
    /// The rule the SBC picks (best match over owned and foreign rules), as last read.
    pub sbc_rule: Option<LookupRule>,
    /// The entry that decides the number's desired tag, and where it came from.
    pub desired: Option<LookupEntry>,
    /// Conflicts whose contested numbers include this one.
    pub conflicts: Vec<String>,
    /// Whether the SBC's tag is the desired one.
    pub in_sync: bool,
    /// `in_sync` said in full: routed, misrouted, shadowed, unrouted or not desired.
    pub verdict: Verdict,
}

#[derive(Clone, Debug, Serialize)]
pub struct LookupRule {
    pub index: u32,
    pub name: String,
    pub prefix: String,
    pub tag: Tag,
    pub owned: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LookupEntry {
    pub source: String,
    pub item: String,
    pub coverage: String,
    pub tag: Tag,
}
