//! E.164 numbers, closed number ranges and open prefixes as validated types.
//!
//! Upstreams hand us numbers in every shape (`+32 2 612 70 01`, `3226127001`, integers from
//! Fusion's range feed). Everything downstream — resolution, compilation, the index — works on
//! these types only, so a value that exists is already known to be a valid E.164 number and
//! nothing later has to re-check it.
//!
//! A number is stored as one `u64` *key*: its digit count in the top bits and its value below.
//! Ordering keys therefore orders numbers by length first, then numerically, which makes every
//! closed range (whose ends have the same length) one contiguous interval of keys. The index,
//! the resolver and the compiler all lean on that property.

use crate::error::{Classify, ErrorClass};
use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

/// The most digits E.164 allows after the `+`.
pub const MAX_DIGITS: u32 = 15;

/// Where the digit count sits inside a key. 10^15 < 2^50, so the value never reaches it.
pub const LENGTH_SHIFT: u32 = 50;
const VALUE_MASK: u64 = (1 << LENGTH_SHIFT) - 1;

/// Powers of ten up to 10^15, for digit arithmetic without floating point.
pub const POW10: [u64; 16] = {
    let mut table = [1u64; 16];
    let mut i = 1;
    while i < 16 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// Why a number, range or prefix was refused. Each variant says what an operator must fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("empty number")]
    Empty,
    #[error("'{found}' at position {position} is not a digit or separator")]
    InvalidCharacter { found: char, position: usize },
    #[error("'+' may only start the number (found at position {position})")]
    MisplacedPlus { position: usize },
    #[error("{digits} digits is more than the 15 E.164 allows")]
    TooLong { digits: usize },
    #[error("starts with 0: E.164 numbers start with a country code (1-9)")]
    LeadingZero,
    #[error("range start {lo} is after its end {hi}")]
    Reversed { lo: Number, hi: Number },
    #[error("range ends have different digit counts ({lo_digits} and {hi_digits})")]
    UnequalLength { lo_digits: u32, hi_digits: u32 },
    #[error("range of {size} numbers is larger than max_range_size {max}")]
    TooLarge { size: u64, max: u64 },
}

impl Classify for NumberError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Item
    }
}

/// One E.164 number: 1 to 15 digits, the first 1-9.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Number {
    /// Never zero (a number has a digit, so its count sits above the value): the spare value
    /// lets a range and a prefix share one word for which is which, as in a million entries'
    /// coverage.
    key: NonZeroU64,
}

impl Number {
    /// Normalises and validates a number as it comes from an upstream: an optional leading `+`,
    /// separators (space, `-`, `.`, parentheses) anywhere between digits.
    pub fn parse(text: &str) -> Result<Number, NumberError> {
        let (value, digits) = parse_digits(text)?;
        Number::from_digits(value, digits)
    }

    /// A number given as an integer (Fusion's range feed sends bounds as JSON integers).
    pub fn from_u64(value: u64) -> Result<Number, NumberError> {
        if value == 0 {
            return Err(NumberError::LeadingZero);
        }
        Number::from_digits(value, digit_count(value))
    }

    fn from_digits(value: u64, digits: u32) -> Result<Number, NumberError> {
        if digits == 0 {
            return Err(NumberError::Empty);
        }
        if digits > MAX_DIGITS {
            return Err(NumberError::TooLong {
                digits: digits as usize,
            });
        }
        if value < POW10[digits as usize - 1] {
            return Err(NumberError::LeadingZero);
        }
        Number::from_key((u64::from(digits) << LENGTH_SHIFT) | value).ok_or(NumberError::Empty)
    }

    /// Rebuilds a number from [`Number::key`]; `None` if the key is not one a number produces.
    pub fn from_key(key: u64) -> Option<Number> {
        let digits = (key >> LENGTH_SHIFT) as u32;
        let value = key & VALUE_MASK;
        if (1..=MAX_DIGITS).contains(&digits)
            && value >= POW10[digits as usize - 1]
            && value < POW10[digits as usize]
        {
            NonZeroU64::new(key).map(|key| Number { key })
        } else {
            None
        }
    }

    /// The ordering key: digit count, then value. Contiguous for numbers of one length.
    pub fn key(self) -> u64 {
        self.key.get()
    }

    /// The digits as an integer (without the `+`).
    pub fn value(self) -> u64 {
        self.key() & VALUE_MASK
    }

    /// How many digits the number has.
    pub fn len(self) -> u32 {
        (self.key() >> LENGTH_SHIFT) as u32
    }

    /// Never true: a number has at least one digit. Present because `len` is.
    pub fn is_empty(self) -> bool {
        false
    }

    /// The digit at `position` (0 = the country code's first digit).
    pub fn digit(self, position: u32) -> u8 {
        let from_right = self.len() - 1 - position;
        ((self.value() / POW10[from_right as usize]) % 10) as u8
    }

    /// The digits as text, without the `+`.
    pub fn digits(self) -> String {
        self.value().to_string()
    }

    /// The next number of the same length, if there is one.
    pub fn succ(self) -> Option<Number> {
        Number::from_key(self.key() + 1)
    }

    /// The previous number of the same length, if there is one.
    pub fn pred(self) -> Option<Number> {
        Number::from_key(self.key() - 1)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.value())
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.value())
    }
}

impl FromStr for Number {
    type Err = NumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Number::parse(s)
    }
}

/// How many decimal digits `value` has (0 has none).
pub fn digit_count(value: u64) -> u32 {
    POW10.iter().take_while(|&&p| p <= value).count() as u32
}

/// Strips the optional `+` and separators, returning the digits' value and count. Counting
/// stops mattering past 15 digits, so the value saturates instead of overflowing.
fn parse_digits(text: &str) -> Result<(u64, u32), NumberError> {
    let mut value: u64 = 0;
    let mut digits: u32 = 0;
    let mut leading_zero = false;
    for (position, found) in text.trim().chars().enumerate() {
        match found {
            '0'..='9' => {
                if digits == 0 && found == '0' {
                    leading_zero = true;
                }
                value = value
                    .saturating_mul(10)
                    .saturating_add(u64::from(found as u8 - b'0'));
                digits += 1;
            }
            '+' if position == 0 => {}
            '+' => return Err(NumberError::MisplacedPlus { position }),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(NumberError::InvalidCharacter { found, position }),
        }
    }
    if digits == 0 {
        return Err(NumberError::Empty);
    }
    if digits > MAX_DIGITS {
        return Err(NumberError::TooLong {
            digits: digits as usize,
        });
    }
    if leading_zero {
        return Err(NumberError::LeadingZero);
    }
    Ok((value, digits))
}

/// A closed range `[lo, hi]` of numbers with the same digit count; a single number is `lo == hi`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NumberRange {
    lo: Number,
    hi: Number,
}

impl NumberRange {
    /// A range, refused when its ends differ in length, are reversed, or it holds more than
    /// `max_size` numbers (a typo such as a missing digit otherwise becomes millions of routes).
    pub fn new(lo: Number, hi: Number, max_size: u64) -> Result<NumberRange, NumberError> {
        if lo.len() != hi.len() {
            return Err(NumberError::UnequalLength {
                lo_digits: lo.len(),
                hi_digits: hi.len(),
            });
        }
        if lo > hi {
            return Err(NumberError::Reversed { lo, hi });
        }
        let range = NumberRange { lo, hi };
        if range.size() > max_size {
            return Err(NumberError::TooLarge {
                size: range.size(),
                max: max_size,
            });
        }
        Ok(range)
    }

    /// A range from two ends whose validity the caller already established (same length, in
    /// order), without a size limit: for ranges derived from other ranges or prefixes.
    pub fn between(lo: Number, hi: Number) -> Option<NumberRange> {
        (lo.len() == hi.len() && lo <= hi).then_some(NumberRange { lo, hi })
    }

    /// The range holding just `number`.
    pub fn single(number: Number) -> NumberRange {
        NumberRange {
            lo: number,
            hi: number,
        }
    }

    /// Parses `lo` and an optional `hi` (empty or absent means a single number).
    pub fn parse(lo: &str, hi: Option<&str>, max_size: u64) -> Result<NumberRange, NumberError> {
        let lo = Number::parse(lo)?;
        let hi = match hi.map(str::trim) {
            None | Some("") => lo,
            Some(hi) => Number::parse(hi)?,
        };
        NumberRange::new(lo, hi, max_size)
    }

    pub fn lo(self) -> Number {
        self.lo
    }

    pub fn hi(self) -> Number {
        self.hi
    }

    /// The digit count shared by every number in the range.
    pub fn len(self) -> u32 {
        self.lo.len()
    }

    /// Never true: a range holds at least one number. Present because `len` is.
    pub fn is_empty(self) -> bool {
        false
    }

    /// How many numbers the range holds.
    pub fn size(self) -> u64 {
        self.hi.value() - self.lo.value() + 1
    }

    pub fn contains(self, number: Number) -> bool {
        self.lo <= number && number <= self.hi
    }

    /// Whether `other` lies wholly inside this range.
    pub fn covers(self, other: NumberRange) -> bool {
        self.lo <= other.lo && other.hi <= self.hi
    }

    /// Iterates the numbers of the range in order (for tests and small ranges).
    pub fn numbers(self) -> impl Iterator<Item = Number> {
        (self.lo.key()..=self.hi.key()).filter_map(Number::from_key)
    }
}

impl fmt::Display for NumberRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}..{}", self.lo, self.hi)
        }
    }
}

impl fmt::Debug for NumberRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An open prefix: every number, of any length, that starts with these digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpenPrefix {
    digits: Number,
}

impl OpenPrefix {
    /// Parses a prefix with the same normalisation as a number (`+32 01`, `3201`).
    pub fn parse(text: &str) -> Result<OpenPrefix, NumberError> {
        Ok(OpenPrefix {
            digits: Number::parse(text)?,
        })
    }

    /// The prefix whose digits are those of `number`.
    pub fn of(number: Number) -> OpenPrefix {
        OpenPrefix { digits: number }
    }

    /// The prefix's digits, as a number.
    pub fn digits(self) -> Number {
        self.digits
    }

    pub fn len(self) -> u32 {
        self.digits.len()
    }

    /// Never true: a prefix has at least one digit. Present because `len` is.
    pub fn is_empty(self) -> bool {
        false
    }

    pub fn contains(self, number: Number) -> bool {
        number.len() >= self.len()
            && number.value() / POW10[(number.len() - self.len()) as usize] == self.digits.value()
    }

    /// Whether every number `other` holds starts with this prefix (a prefix covers itself).
    pub fn covers_prefix(self, other: OpenPrefix) -> bool {
        self.contains(other.digits)
    }

    /// The numbers of exactly `len` digits that start with this prefix, as one closed range.
    pub fn range_at(self, len: u32) -> Option<NumberRange> {
        if len < self.len() || len > MAX_DIGITS {
            return None;
        }
        let scale = POW10[(len - self.len()) as usize];
        let lo = self.digits.value() * scale;
        let hi = lo + scale - 1;
        Some(NumberRange {
            lo: Number::from_digits(lo, len).ok()?,
            hi: Number::from_digits(hi, len).ok()?,
        })
    }

    /// The closed ranges, one per length from the prefix's own up to 15 digits, that together
    /// hold exactly the numbers of this prefix.
    pub fn ranges(self) -> impl Iterator<Item = NumberRange> {
        (self.len()..=MAX_DIGITS).filter_map(move |len| self.range_at(len))
    }
}

impl fmt::Display for OpenPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}*", self.digits)
    }
}

impl fmt::Debug for OpenPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_what_upstreams_send() {
        for text in [
            "+3226127001",
            "3226127001",
            "+32 2 612 70 01",
            "+32-2-612-70-01",
            "32.2.612.70.01",
            "+32 (2) 612 7001",
            "  +3226127001 ",
        ] {
            let number = Number::parse(text).unwrap();
            assert_eq!(number.to_string(), "+3226127001", "{text}");
            assert_eq!(number.len(), 10);
        }
        assert_eq!(
            Number::from_u64(3226127001).unwrap().to_string(),
            "+3226127001"
        );
    }

    #[test]
    fn refuses_with_a_reason() {
        let cases: [(&str, NumberError); 7] = [
            ("", NumberError::Empty),
            ("+ - .", NumberError::Empty),
            (
                "+32a6127001",
                NumberError::InvalidCharacter {
                    found: 'a',
                    position: 3,
                },
            ),
            ("32+26", NumberError::MisplacedPlus { position: 2 }),
            ("+1234567890123456", NumberError::TooLong { digits: 16 }),
            ("+0322612", NumberError::LeadingZero),
            ("0032 2 612", NumberError::LeadingZero),
        ];
        for (text, expected) in cases {
            assert_eq!(Number::parse(text), Err(expected), "{text:?}");
        }
        assert_eq!(Number::from_u64(0), Err(NumberError::LeadingZero));
        assert!(Number::parse("+32a6")
            .unwrap_err()
            .to_string()
            .contains("'a' at position 3"));
    }

    #[test]
    fn ranges_are_checked() {
        let n = |s: &str| Number::parse(s).unwrap();
        assert_eq!(
            NumberRange::new(n("+3220"), n("+3210"), 1000),
            Err(NumberError::Reversed {
                lo: n("+3220"),
                hi: n("+3210")
            })
        );
        assert_eq!(
            NumberRange::new(n("+322"), n("+3210"), 1000),
            Err(NumberError::UnequalLength {
                lo_digits: 3,
                hi_digits: 4
            })
        );
        assert_eq!(
            NumberRange::new(n("+3200000"), n("+3299999"), 1000),
            Err(NumberError::TooLarge {
                size: 100_000,
                max: 1000
            })
        );
        let single = NumberRange::parse("+3226127001", Some(""), 1).unwrap();
        assert_eq!(single.size(), 1);
        assert_eq!(single.to_string(), "+3226127001");
        let range = NumberRange::parse("+3226127000", Some("+3226127002"), 10).unwrap();
        assert_eq!(range.size(), 3);
        assert_eq!(range.to_string(), "+3226127000..+3226127002");
    }

    #[test]
    fn open_prefix_spans_every_longer_length() {
        let prefix = OpenPrefix::parse("+32-01").unwrap();
        assert_eq!(prefix.to_string(), "+3201*");
        assert!(prefix.contains(Number::parse("+3201").unwrap()));
        assert!(prefix.contains(Number::parse("+320123456").unwrap()));
        assert!(!prefix.contains(Number::parse("+320").unwrap()));
        assert!(!prefix.contains(Number::parse("+3202").unwrap()));
        let ranges: Vec<_> = prefix.ranges().collect();
        assert_eq!(ranges.len(), 12);
        assert_eq!(ranges[1].to_string(), "+32010..+32019");
        assert_eq!(ranges[11].size(), 100_000_000_000);
    }

    proptest! {
        #[test]
        fn key_order_is_length_then_value(a in 1u64..10_000_000, b in 1u64..10_000_000) {
            let (x, y) = (Number::from_u64(a).unwrap(), Number::from_u64(b).unwrap());
            let expected = (digit_count(a), a).cmp(&(digit_count(b), b));
            prop_assert_eq!(x.cmp(&y), expected);
            prop_assert_eq!(Number::from_key(x.key()), Some(x));
        }

        #[test]
        fn display_parses_back(value in 1u64..=999_999_999_999_999) {
            let number = Number::from_u64(value).unwrap();
            prop_assert_eq!(Number::parse(&number.to_string()), Ok(number));
            prop_assert_eq!(number.digits().len() as u32, number.len());
            let first = number.digits().as_bytes()[0] - b'0';
            prop_assert_eq!(number.digit(0), first);
        }
    }
}
