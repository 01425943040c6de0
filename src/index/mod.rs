//! The range index: everything that has to work on a million number ranges at once.
//!
//! The resolver, the compiler and the planner all reduce to operations on sorted, disjoint
//! intervals of number keys (see [`crate::number`]: a key orders numbers by length then value,
//! so every closed range is one contiguous interval of keys). This module holds the pieces that
//! must be fast at that scale and that DESIGN.md §8 measures:
//!
//! - [`KeyRange`], the interval-with-payload every piece speaks;
//! - [`RangeIndex`], the lookup structure (tables and a window of cached line keys, then one
//!   cache line of ranges read from memory per lookup);
//! - [`diff`], the comparison of two snapshots of ranges (DESIGN.md §8 sets its speed; the
//!   planner compares rules, not ranges, so today only `benches/engine.rs` calls it);
//! - [`sweep`], the overlap sweep used by the resolver.

pub mod diff;
mod huge_pages;
mod prefetch;
mod range_index;
pub mod sweep;

pub use diff::{diff, diff_sorted, RangeDiff};
pub use range_index::RangeIndex;

use crate::number::NumberRange;

/// A closed interval `[lo, hi]` of number keys carrying a payload: whatever id the caller needs
/// back from a lookup (a tag id, an entry id).
///
/// Ordered by `(lo, hi, value)`, the order every sorted list of ranges in this module uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyRange {
    pub lo: u64,
    pub hi: u64,
    pub value: u32,
}

impl KeyRange {
    pub fn new(lo: u64, hi: u64, value: u32) -> KeyRange {
        KeyRange { lo, hi, value }
    }

    /// The keys of `range`, carrying `value`.
    pub fn of(range: NumberRange, value: u32) -> KeyRange {
        KeyRange {
            lo: range.lo().key(),
            hi: range.hi().key(),
            value,
        }
    }

    pub fn contains(self, key: u64) -> bool {
        self.lo <= key && key <= self.hi
    }

    /// Whether the two intervals share at least one key (payloads are not compared).
    pub fn overlaps(self, other: KeyRange) -> bool {
        self.lo <= other.hi && other.lo <= self.hi
    }

    /// The number range these keys stand for, if they are keys of numbers of one length.
    pub fn number_range(self) -> Option<NumberRange> {
        use crate::number::Number;
        NumberRange::between(Number::from_key(self.lo)?, Number::from_key(self.hi)?)
    }
}

impl std::fmt::Display for KeyRange {
    /// Prints numbers when the keys are numbers' keys, so error messages read like the input.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.number_range() {
            Some(range) => write!(f, "{range} (value {})", self.value),
            None => write!(
                f,
                "keys {:#x}..={:#x} (value {})",
                self.lo, self.hi, self.value
            ),
        }
    }
}

impl From<(NumberRange, u32)> for KeyRange {
    fn from((range, value): (NumberRange, u32)) -> KeyRange {
        KeyRange::of(range, value)
    }
}

/// Why a set of ranges cannot be indexed. All of these are item-terminal for the caller: the
/// resolver is expected to hand over disjoint, well-formed ranges, so one of these means a bug
/// or unresolved input upstream, and the error names the ranges involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("ranges overlap: {first} and {second}")]
    Overlap { first: KeyRange, second: KeyRange },
    #[error("range is reversed (lo > hi): {0}")]
    Reversed(KeyRange),
    #[error("range {0} reaches past the largest number key")]
    OutOfRange(KeyRange),
}

/// One past the largest key a number can have (15 digits in the length field, see
/// [`crate::number::Number::key`]). The index relies on every key lying below it.
pub const KEY_LIMIT: u64 = 16 << LENGTH_SHIFT;

pub(crate) use crate::number::LENGTH_SHIFT;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::Number;

    #[test]
    fn key_range_from_number_range_and_display() {
        let lo = Number::parse("+3226127000").unwrap();
        let hi = Number::parse("+3226127002").unwrap();
        let range = NumberRange::between(lo, hi).unwrap();
        let keys = KeyRange::of(range, 7);
        assert_eq!(keys.lo, lo.key());
        assert_eq!(keys.hi, hi.key());
        assert_eq!(keys.number_range(), Some(range));
        assert_eq!(keys.to_string(), "+3226127000..+3226127002 (value 7)");
        assert!(keys.contains(lo.key()) && keys.contains(hi.key()));
        assert!(!keys.contains(hi.key() + 1));
        assert_eq!(
            KeyRange::new(1, 2, 3).to_string(),
            "keys 0x1..=0x2 (value 3)"
        );
        assert!(Number::parse("+999999999999999").unwrap().key() < KEY_LIMIT);
    }
}
