//! Upstream sources of desired state. Each source turns its upstream's items into [`Entry`]s
//! and rejects bad items one by one with a reason, so one typo never costs the other numbers.
//!
//! [`Entry`]: crate::resolve::Entry

pub mod file;
pub mod secret;
pub mod tag;

use std::fmt;

/// The limits every source applies to the items it accepts (`[dialplan]` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemLimits {
    /// Ranges larger than this are refused as suspicious (`max_range_size`).
    pub max_range_size: u64,
    /// Longest tag accepted (`max_tag_len`).
    pub max_tag_len: usize,
}

impl Default for ItemLimits {
    fn default() -> Self {
        ItemLimits {
            max_range_size: 1_000_000,
            max_tag_len: crate::dialplan::rule::DEFAULT_MAX_TAG_LEN,
        }
    }
}

/// An upstream item that was refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Where the item is: `line 7`, `tenant=acme number=+32...`.
    pub item: String,
    pub reason: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.item, self.reason)
    }
}
