//! The AudioCodes dial-plan prefix-pattern language, and the SBC's best-match rule over it.
//!
//! dialsync must predict exactly which rule the SBC will pick for a number: to compile rules
//! that route as intended, to plan changes that never unroute a number in between, and to
//! answer `lookup`. So the language is parsed strictly (an operator's typo is reported with its
//! column, not silently read as something else) and best match is reproduced as the vendor
//! documents it (DESIGN.md §4).
//!
//! Syntax: digits and other literal characters (`+`); `x` any digit; `z` 1-9; `n` 2-9;
//! `[a-b,c,d-e]` one number of the items' common width at this position; `.` any character;
//! `#` at the end anchors the end of the number; `*` alone matches every number; `\` makes the
//! next character literal. Without `#` a pattern matches every number that *starts* with it.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::error::{Classify, ErrorClass};
use crate::number::{Number, NumberRange, OpenPrefix, MAX_DIGITS, POW10};

/// The widest bracket item we accept: an E.164 number has at most 15 digits.
pub const MAX_SET_WIDTH: usize = 15;

/// Why a prefix pattern was refused; `position` is the 0-based character index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("empty prefix pattern")]
    Empty,
    #[error("'*' must stand alone (found at position {position})")]
    MisplacedStar { position: usize },
    #[error("'#' may only end the pattern (found at position {position})")]
    MisplacedHash { position: usize },
    #[error("'{found}' at position {position} is not allowed in a prefix (escape it with '\\')")]
    InvalidCharacter { found: char, position: usize },
    #[error(
        "'{found}' at position {position}: the suffix notation '([...])' / '(n-m)' is not read \
         by dialsync"
    )]
    SuffixNotation { found: char, position: usize },
    #[error("'\\' at the end of the pattern escapes nothing")]
    TrailingEscape,
    #[error("']' at position {position} closes no '['")]
    UnopenedBracket { position: usize },
    #[error("'[' at position {position} is never closed")]
    UnclosedBracket { position: usize },
    #[error("bracket at position {position} has an empty item")]
    EmptyItem { position: usize },
    #[error("'{found}' at position {position} inside a bracket is not a digit, '-' or ','")]
    InvalidInBracket { found: char, position: usize },
    #[error(
        "bracket item at position {position} is {found} digits wide, the first was {expected}"
    )]
    UnequalWidth {
        position: usize,
        expected: usize,
        found: usize,
    },
    #[error("bracket range at position {position} runs backwards ({lo} > {hi})")]
    ReversedRange {
        position: usize,
        lo: String,
        hi: String,
    },
    #[error("bracket item at position {position} is wider than {MAX_SET_WIDTH} digits")]
    TooWide { position: usize },
}

impl Classify for PatternError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Item
    }
}

/// A bracket: one number of `width` digits (leading zeros count) within `ranges`.
///
/// Kept sorted and merged, so two sets admitting the same numbers are equal and print the same.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct DigitSet {
    width: u8,
    ranges: Vec<(u64, u64)>,
}

impl DigitSet {
    /// A set from possibly unsorted, overlapping ranges; `None` when empty or not fitting
    /// `width` digits.
    pub fn new(width: usize, mut ranges: Vec<(u64, u64)>) -> Option<DigitSet> {
        if width == 0 || width > MAX_SET_WIDTH || ranges.is_empty() {
            return None;
        }
        if ranges.iter().any(|&(lo, hi)| lo > hi || hi >= POW10[width]) {
            return None;
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        Some(DigitSet {
            width: width as u8,
            ranges: merged,
        })
    }

    pub fn width(&self) -> usize {
        usize::from(self.width)
    }

    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    pub fn into_ranges(self) -> Vec<(u64, u64)> {
        self.ranges
    }

    /// How many numbers the set admits: what decides between two brackets in best match.
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|&(lo, hi)| hi - lo + 1).sum()
    }

    pub fn contains(&self, value: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, hi)| hi < value);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= value)
    }
}

/// One position-consuming element of a pattern.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Element {
    /// A character that must appear as is: a digit, `+`, or an escaped special.
    Literal(u8),
    /// `[...]`: one number of the set's width.
    Set(DigitSet),
    /// `n`: 2-9.
    TwoToNine,
    /// `z`: 1-9.
    NonZero,
    /// `x`: any digit.
    AnyDigit,
    /// `.`: any character.
    AnyChar,
    /// `#`: the number ends here.
    End,
}

impl Element {
    /// How many characters of the number the element consumes.
    pub fn width(&self) -> usize {
        match self {
            Element::Set(set) => set.width(),
            Element::End => 0,
            _ => 1,
        }
    }

    /// The vendor's order of constraint, most constrained first: specific digit, bracket,
    /// `n`, `z`, `x`, `.`. `#` only ever meets `#` or a rule that has already ended.
    fn class(&self) -> u8 {
        match self {
            Element::Literal(_) => 6,
            Element::Set(_) => 5,
            Element::TwoToNine => 4,
            Element::NonZero => 3,
            Element::AnyDigit => 2,
            Element::AnyChar => 1,
            Element::End => 0,
        }
    }

    /// Orders elements by how constrained they are (Greater = more specific). Two different
    /// elements that can match the same text are decided by the vendor's rule; the remaining
    /// ties (two brackets admitting as many numbers) the vendor leaves open, so we break them
    /// by the narrower, then by canonical text: any fixed choice keeps best match a total order,
    /// which it must be for "the rule the SBC picks" to be well defined.
    pub fn specificity_cmp(&self, other: &Element) -> Ordering {
        self.class()
            .cmp(&other.class())
            .then_with(|| match (self, other) {
                (Element::Literal(a), Element::Literal(b)) => b.cmp(a),
                (Element::Set(a), Element::Set(b)) => b
                    .count()
                    .cmp(&a.count())
                    .then_with(|| b.width.cmp(&a.width))
                    .then_with(|| b.to_string().cmp(&a.to_string())),
                _ => Ordering::Equal,
            })
    }
}

/// A parsed prefix pattern, held as its canonical text.
///
/// A dial plan holds up to hundreds of thousands of rules and every plan compares two of them,
/// so a pattern is one small string (`+322612700[0-2]#`), decoded element by element, without
/// allocating, when it is matched or compared. Equal patterns have equal text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern {
    text: Box<str>,
}

impl Pattern {
    /// Parses the pattern as an operator or the SBC wrote it.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        if is_canonical(text.as_bytes()) {
            // What the slow path would render is the text itself: every rule a dial plan
            // holds is read this way, and most were written canonical (by dialsync).
            return Ok(Pattern { text: text.into() });
        }
        Pattern::parse_elements(text)
    }

    /// [`parse`](Self::parse) element by element, rendering the canonical text anew.
    fn parse_elements(text: &str) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text == "*" {
            return Ok(Pattern::any());
        }
        let chars: Vec<char> = text.chars().collect();
        let mut elements = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let element = match c {
                'x' => Element::AnyDigit,
                'z' => Element::NonZero,
                'n' => Element::TwoToNine,
                '.' => Element::AnyChar,
                '#' if i + 1 == chars.len() => Element::End,
                '#' => return Err(PatternError::MisplacedHash { position: i }),
                '*' => return Err(PatternError::MisplacedStar { position: i }),
                ']' => return Err(PatternError::UnopenedBracket { position: i }),
                // The vendor's suffix notation matches the end of a number: taking its
                // characters as literals would predict routes the SBC does not make.
                '(' | ')' => {
                    return Err(PatternError::SuffixNotation {
                        found: c,
                        position: i,
                    })
                }
                '[' => {
                    let (set, next) = parse_set(&chars, i)?;
                    i = next;
                    elements.push(Element::Set(set));
                    continue;
                }
                '\\' => {
                    let escaped = *chars.get(i + 1).ok_or(PatternError::TrailingEscape)?;
                    i += 1;
                    literal(escaped, i)?
                }
                _ => literal(c, i)?,
            };
            elements.push(element);
            i += 1;
        }
        Ok(Pattern::render(&elements))
    }

    /// `*`: every number.
    pub fn any() -> Pattern {
        Pattern { text: "*".into() }
    }

    /// Builds a pattern from elements; `End` may only come last.
    pub fn from_elements(elements: &[Element]) -> Option<Pattern> {
        let end_inside = elements
            .iter()
            .rev()
            .skip(1)
            .any(|e| matches!(e, Element::End));
        (!end_inside).then(|| Pattern::render(elements))
    }

    fn render(elements: &[Element]) -> Pattern {
        if elements.is_empty() {
            return Pattern::any();
        }
        let mut text = String::with_capacity(elements.len() + 8);
        for element in elements {
            // Pushed, not formatted: every rule read from a dial plan is rendered once.
            match element {
                Element::Literal(c) => {
                    if is_special(*c) {
                        text.push('\\');
                    }
                    text.push(*c as char);
                }
                Element::Set(set) => {
                    use std::fmt::Write as _;
                    // Writing to a String cannot fail.
                    let _ = write!(text, "{set}");
                }
                Element::TwoToNine => text.push('n'),
                Element::NonZero => text.push('z'),
                Element::AnyDigit => text.push('x'),
                Element::AnyChar => text.push('.'),
                Element::End => text.push('#'),
            }
        }
        Pattern { text: text.into() }
    }

    /// The exact pattern for one number: `+3226127001#`.
    pub fn exact(number: Number) -> Pattern {
        Pattern {
            text: format!("+{}#", number.value()).into(),
        }
    }

    /// The open prefix pattern: `+3201` (every number starting with these digits).
    pub fn open_prefix(prefix: OpenPrefix) -> Pattern {
        Pattern {
            text: format!("+{}", prefix.digits().value()).into(),
        }
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The elements, decoded (allocates for brackets; for inspection, not hot paths).
    pub fn elements(&self) -> Vec<Element> {
        self.element_iter().collect()
    }

    /// The elements, decoded one at a time: what the rule index reads of 100k rules, without
    /// a vector of them per rule.
    pub fn element_iter(&self) -> impl Iterator<Item = Element> + '_ {
        self.tokens().map(Token::to_element)
    }

    fn tokens(&self) -> Tokens<'_> {
        let bytes = if self.is_any() {
            &[][..]
        } else {
            self.text.as_bytes()
        };
        Tokens { text: bytes, at: 0 }
    }

    /// Whether the pattern ends with `#` (matches whole numbers only).
    pub fn is_anchored(&self) -> bool {
        self.tokens().last() == Some(Token::End)
    }

    /// Whether this is `*`.
    pub fn is_any(&self) -> bool {
        &*self.text == "*"
    }

    /// Whether the pattern matches `text` (the dialled string, e.g. `+3226127001`).
    pub fn matches(&self, text: &str) -> bool {
        let mut rest = text.as_bytes();
        for token in self.tokens() {
            match token.match_at(rest) {
                Some(used) => rest = &rest[used..],
                None => return false,
            }
        }
        true
    }

    /// Whether the pattern matches `number` as the SBC sees it, with its `+`.
    pub fn matches_number(&self, number: Number) -> bool {
        self.matches(&number.to_string())
    }

    /// Best-match order between two patterns that both match a number (Greater = `self` is
    /// chosen): compare element by element from the left; at the first difference the more
    /// constrained element wins; a pattern that still has an element beats one that has ended.
    pub fn specificity_cmp(&self, other: &Pattern) -> Ordering {
        let (mut a, mut b) = (self.tokens(), other.tokens());
        // A run of digits and `+` that both share from the start is equal token for token
        // (none of those bytes opens a bracket or an escape): skipped as bytes. Sorting a
        // 100k-rule dial plan compares rules of one country code, which share most of it.
        let same = a
            .text
            .iter()
            .zip(b.text)
            .take_while(|&(x, y)| x == y && (x.is_ascii_digit() || *x == b'+'))
            .count();
        (a.at, b.at) = (same, same);
        loop {
            match (a.next(), b.next()) {
                (None, None) => return Ordering::Equal,
                (Some(_), None) => return Ordering::Greater,
                (None, Some(_)) => return Ordering::Less,
                (Some(x), Some(y)) if x == y => continue,
                (Some(x), Some(y)) => return x.specificity_cmp(&y),
            }
        }
    }

    /// The numbers a pattern of the shapes dialsync writes covers: `+digits[a-b]x..x#` (and
    /// its forms without bracket or `x`) is a closed range, `+digits` an open prefix. Other
    /// shapes (hand-written, foreign) give `None`: their coverage is not a single interval.
    pub fn span(&self) -> Option<Span> {
        let mut tokens = self.tokens().peekable();
        if tokens.next() != Some(Token::Literal(b'+')) {
            return None;
        }
        let (mut digits, mut count) = (0u64, 0u32);
        while let Some(Token::Literal(d @ b'0'..=b'9')) = tokens.peek().copied() {
            if count == MAX_DIGITS {
                // More digits than any number has (and than a u64 holds): no span.
                return None;
            }
            digits = digits * 10 + u64::from(d - b'0');
            count += 1;
            tokens.next();
        }
        let Some(first) = tokens.next() else {
            return Number::from_u64(digits)
                .ok()
                .filter(|n| n.len() == count)
                .map(|n| Span::Prefix(OpenPrefix::of(n)));
        };
        let (set, mut next) = match first {
            Token::Set(items, width) => {
                let mut bounds = set_bounds(items);
                let (lo, hi) = bounds.next()?;
                if bounds.next().is_some() {
                    return None;
                }
                (Some((width as u32, lo, hi)), tokens.next())
            }
            other => (None, Some(other)),
        };
        let mut any = 0u32;
        while next == Some(Token::AnyDigit) {
            any += 1;
            next = tokens.next();
        }
        if next != Some(Token::End) || tokens.next().is_some() {
            return None;
        }
        let (width, lo, hi) = set.unwrap_or((0, 0, 0));
        let len = count + width + any;
        if len as usize >= POW10.len() {
            return None;
        }
        let base = digits * POW10[(width + any) as usize];
        let scale = POW10[any as usize];
        let lo = Number::from_u64(base + lo * scale).ok()?;
        let hi = Number::from_u64(base + hi * scale + scale - 1).ok()?;
        if lo.len() != len || hi.len() != len {
            return None;
        }
        NumberRange::between(lo, hi).map(Span::Range)
    }

    /// Canonical text length, the figure the SBC's 50-character limit applies to.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }
}

/// The numbers a rule covers, when that is one closed range or one open prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    Range(NumberRange),
    Prefix(OpenPrefix),
}

/// Writes canonical pattern text directly: what the compiler emits by the million, without
/// going through elements. Every method keeps the text canonical; `finish` checks the bracket.
#[derive(Debug)]
pub struct PatternBuilder {
    text: String,
    valid: bool,
}

impl PatternBuilder {
    /// `+` and the first `count` digits of `number`.
    pub fn digits(number: Number, count: u32) -> PatternBuilder {
        let digits = number.value() / POW10[(number.len() - count.min(number.len())) as usize];
        let text = if count == 0 {
            String::from("+")
        } else {
            format!("+{digits}")
        };
        PatternBuilder { text, valid: true }
    }

    /// A bracket of one range `[lo-hi]` of `width` digits.
    pub fn range(mut self, width: usize, lo: u64, hi: u64) -> PatternBuilder {
        use std::fmt::Write as _;
        self.valid &= (1..=MAX_SET_WIDTH).contains(&width) && lo <= hi && hi < POW10[width];
        let _ = if lo == hi {
            write!(self.text, "[{lo:0width$}]")
        } else {
            write!(self.text, "[{lo:0width$}-{hi:0width$}]")
        };
        self
    }

    /// `count` times `x`.
    pub fn any_digits(mut self, count: usize) -> PatternBuilder {
        self.text.extend(std::iter::repeat_n('x', count));
        self
    }

    /// Ends the pattern with `#`.
    pub fn anchored(mut self) -> Option<Pattern> {
        self.text.push('#');
        self.valid.then(|| Pattern {
            text: self.text.into(),
        })
    }
}

/// An element as it appears in canonical text, borrowed: what matching and comparison use.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Token<'a> {
    Literal(u8),
    /// The canonical items between the brackets, and their width.
    Set(&'a [u8], usize),
    TwoToNine,
    NonZero,
    AnyDigit,
    AnyChar,
    End,
}

/// Decodes canonical text (which `Pattern` guarantees) one element at a time.
struct Tokens<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let c = *self.text.get(self.at)?;
        self.at += 1;
        Some(match c {
            b'x' => Token::AnyDigit,
            b'z' => Token::NonZero,
            b'n' => Token::TwoToNine,
            b'.' => Token::AnyChar,
            b'#' => Token::End,
            b'\\' => {
                let escaped = self.text.get(self.at).copied().unwrap_or(b'\\');
                self.at += 1;
                Token::Literal(escaped)
            }
            b'[' => {
                let rest = &self.text[self.at..];
                let len = rest.iter().position(|&c| c == b']').unwrap_or(rest.len());
                let items = &rest[..len];
                let width = items.iter().take_while(|c| c.is_ascii_digit()).count();
                self.at += len + 1;
                Token::Set(items, width)
            }
            other => Token::Literal(other),
        })
    }
}

/// The `(lo, hi)` bounds of canonical bracket items such as `1,3,05-17`.
fn set_bounds(items: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    items.split(|&c| c == b',').map(|item| {
        let value = |digits: &[u8]| {
            digits
                .iter()
                .fold(0u64, |v, d| v * 10 + u64::from(d.wrapping_sub(b'0')))
        };
        match item.iter().position(|&c| c == b'-') {
            Some(dash) => (value(&item[..dash]), value(&item[dash + 1..])),
            None => (value(item), value(item)),
        }
    })
}

impl Token<'_> {
    fn class(&self) -> u8 {
        match self {
            Token::Literal(_) => 6,
            Token::Set(..) => 5,
            Token::TwoToNine => 4,
            Token::NonZero => 3,
            Token::AnyDigit => 2,
            Token::AnyChar => 1,
            Token::End => 0,
        }
    }

    /// As [`Element::specificity_cmp`], on text.
    fn specificity_cmp(&self, other: &Token<'_>) -> Ordering {
        self.class()
            .cmp(&other.class())
            .then_with(|| match (self, other) {
                (Token::Literal(a), Token::Literal(b)) => b.cmp(a),
                (Token::Set(a, aw), Token::Set(b, bw)) => {
                    let count = |items| set_bounds(items).map(|(lo, hi)| hi - lo + 1).sum::<u64>();
                    count(b)
                        .cmp(&count(a))
                        .then_with(|| bw.cmp(aw))
                        .then_with(|| b.cmp(a))
                }
                _ => Ordering::Equal,
            })
    }

    /// Matches the element at the start of `text`, returning how much it consumed.
    fn match_at(&self, text: &[u8]) -> Option<usize> {
        let first = text.first().copied();
        match *self {
            Token::Literal(c) => (first == Some(c)).then_some(1),
            Token::TwoToNine => matches!(first, Some(b'2'..=b'9')).then_some(1),
            Token::NonZero => matches!(first, Some(b'1'..=b'9')).then_some(1),
            Token::AnyDigit => matches!(first, Some(b'0'..=b'9')).then_some(1),
            Token::AnyChar => first.map(|_| 1),
            Token::End => text.is_empty().then_some(0),
            Token::Set(items, width) => {
                let digits = text.get(..width)?;
                let mut value = 0u64;
                for &d in digits {
                    if !d.is_ascii_digit() {
                        return None;
                    }
                    value = value * 10 + u64::from(d - b'0');
                }
                set_bounds(items)
                    .any(|(lo, hi)| lo <= value && value <= hi)
                    .then_some(width)
            }
        }
    }

    fn to_element(self) -> Element {
        match self {
            Token::Literal(c) => Element::Literal(c),
            Token::Set(items, width) => match DigitSet::new(width, set_bounds(items).collect()) {
                Some(set) => Element::Set(set),
                None => Element::AnyChar, // unreachable for canonical text
            },
            Token::TwoToNine => Element::TwoToNine,
            Token::NonZero => Element::NonZero,
            Token::AnyDigit => Element::AnyDigit,
            Token::AnyChar => Element::AnyChar,
            Token::End => Element::End,
        }
    }
}

/// Among `rules` (any order, each with its position in the dial plan), the one the SBC picks
/// for `text`: the most specific matching pattern, the lowest index among identical ones.
pub fn best_match<'a, I, T>(rules: I, text: &str) -> Option<(u32, &'a T)>
where
    I: IntoIterator<Item = (u32, &'a Pattern, &'a T)>,
    T: 'a,
{
    let mut best: Option<(u32, &Pattern, &T)> = None;
    for (index, pattern, payload) in rules {
        if !pattern.matches(text) {
            continue;
        }
        let better = match best {
            None => true,
            Some((best_index, best_pattern, _)) => match pattern.specificity_cmp(best_pattern) {
                Ordering::Greater => true,
                Ordering::Equal => index < best_index,
                Ordering::Less => false,
            },
        };
        if better {
            best = Some((index, pattern, payload));
        }
    }
    best.map(|(index, _, payload)| (index, payload))
}

fn literal(c: char, position: usize) -> Result<Element, PatternError> {
    if c.is_ascii_graphic() {
        Ok(Element::Literal(c as u8))
    } else {
        Err(PatternError::InvalidCharacter { found: c, position })
    }
}

/// Parses `[...]` starting at `open`; returns the set and the index after `]`.
fn parse_set(chars: &[char], open: usize) -> Result<(DigitSet, usize), PatternError> {
    let close = chars[open..]
        .iter()
        .position(|&c| c == ']')
        .map(|offset| open + offset)
        .ok_or(PatternError::UnclosedBracket { position: open })?;
    let mut width: Option<usize> = None;
    let mut ranges = Vec::new();
    let mut start = open + 1;
    for item in chars[open + 1..close].split(|&c| c == ',') {
        if item.is_empty() {
            return Err(PatternError::EmptyItem { position: start });
        }
        let mut bounds = Vec::with_capacity(2);
        let mut at = start;
        for bound in item.split(|&c| c == '-') {
            if bound.is_empty() {
                return Err(PatternError::EmptyItem { position: at });
            }
            if let Some((offset, &found)) =
                bound.iter().enumerate().find(|(_, c)| !c.is_ascii_digit())
            {
                return Err(PatternError::InvalidInBracket {
                    found,
                    position: at + offset,
                });
            }
            if bound.len() > MAX_SET_WIDTH {
                return Err(PatternError::TooWide { position: at });
            }
            let expected = *width.get_or_insert(bound.len());
            if bound.len() != expected {
                return Err(PatternError::UnequalWidth {
                    position: at,
                    expected,
                    found: bound.len(),
                });
            }
            let text: String = bound.iter().collect();
            bounds.push((text.parse::<u64>().unwrap_or(0), text));
            at += bound.len() + 1;
        }
        let (lo, hi) = match bounds.as_slice() {
            [(v, _)] => (*v, *v),
            [(lo, lo_text), (hi, hi_text)] => {
                if lo > hi {
                    return Err(PatternError::ReversedRange {
                        position: start,
                        lo: lo_text.clone(),
                        hi: hi_text.clone(),
                    });
                }
                (*lo, *hi)
            }
            _ => {
                return Err(PatternError::InvalidInBracket {
                    found: '-',
                    position: start,
                })
            }
        };
        ranges.push((lo, hi));
        start += item.len() + 1;
    }
    let width = width.ok_or(PatternError::EmptyItem { position: open + 1 })?;
    let set = DigitSet::new(width, ranges).ok_or(PatternError::EmptyItem { position: open })?;
    Ok((set, close + 1))
}

/// Whether `text` is a pattern already in canonical form, of the shapes dialsync writes:
/// digits, `+`, `x`, `z`, `n` and `.`, brackets of one value or one rising range of equal-width
/// bounds, and `#` last. `false` means only "not sure": [`Pattern::parse_elements`] decides.
fn is_canonical(text: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&c) = text.get(at) {
        match c {
            b'0'..=b'9' | b'+' | b'x' | b'z' | b'n' | b'.' => at += 1,
            b'#' if at + 1 == text.len() => at += 1,
            b'[' => {
                let Some(len) = text[at + 1..].iter().position(|&c| c == b']') else {
                    return false;
                };
                let items = &text[at + 1..at + 1 + len];
                let digits = |bound: &[u8]| {
                    (1..=MAX_SET_WIDTH).contains(&bound.len())
                        && bound.iter().all(u8::is_ascii_digit)
                };
                let canonical = match items.iter().position(|&c| c == b'-') {
                    None => digits(items),
                    // Equal widths, so comparing the digits as bytes compares the values.
                    Some(dash) => {
                        let (lo, hi) = (&items[..dash], &items[dash + 1..]);
                        digits(lo) && digits(hi) && lo.len() == hi.len() && lo < hi
                    }
                };
                if !canonical {
                    return false;
                }
                at += len + 2;
            }
            _ => return false,
        }
    }
    at > 0
}

/// Characters that mean something in the language and must be escaped to stand for themselves.
fn is_special(c: u8) -> bool {
    matches!(
        c,
        b'x' | b'z' | b'n' | b'.' | b'#' | b'*' | b'[' | b']' | b'(' | b')' | b'\\'
    )
}

impl fmt::Display for DigitSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.width();
        f.write_str("[")?;
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo:0width$}")?;
            } else {
                write!(f, "{lo:0width$}-{hi:0width$}")?;
            }
        }
        f.write_str("]")
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// As its canonical text, the form operators and the SBC read.
impl serde::Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl FromStr for Pattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    fn winner(rules: &[(&str, &str)], number: &str) -> Option<String> {
        let parsed: Vec<(u32, Pattern, String)> = rules
            .iter()
            .enumerate()
            .map(|(i, (prefix, tag))| (i as u32, p(prefix), tag.to_string()))
            .collect();
        best_match(parsed.iter().map(|(i, pat, tag)| (*i, pat, tag)), number)
            .map(|(_, tag)| tag.clone())
    }

    /// The vendor's own examples (DESIGN.md §4).
    #[test]
    fn vendor_best_match_examples() {
        let a_b = |rules: &[(&str, &str)], number| winner(rules, number);
        assert_eq!(
            a_b(&[("321xxx", "A"), ("321", "B")], "321444").unwrap(),
            "A"
        );
        assert_eq!(a_b(&[("321xxx", "A"), ("321", "B")], "32144").unwrap(), "B");
        assert_eq!(
            a_b(&[("532[1-9]", "A"), ("532[2-4]", "B")], "5324").unwrap(),
            "B"
        );
        assert_eq!(
            a_b(&[("523x", "A"), ("523[1-9]", "B")], "5234").unwrap(),
            "B"
        );
        assert_eq!(
            a_b(&[("532[1-9]1111", "A"), ("5321", "B")], "53211111").unwrap(),
            "B"
        );
    }

    #[test]
    fn element_order_follows_the_vendor() {
        let rules = [
            ("+3.", "dot"),
            ("+3x", "x"),
            ("+3z", "z"),
            ("+3n", "n"),
            ("+3[0-9]", "bracket"),
            ("+32", "digit"),
        ];
        // Remove the winner each time: the next one must be the next in the vendor's order.
        for (i, expected) in ["digit", "bracket", "n", "z", "x", "dot"]
            .iter()
            .enumerate()
        {
            assert_eq!(
                winner(&rules[..rules.len() - i], "+321").unwrap(),
                *expected
            );
        }
        assert_eq!(
            winner(&[("*", "star"), ("+", "plus")], "+1").unwrap(),
            "plus"
        );
        assert_eq!(winner(&[("*", "star")], "+1").unwrap(), "star");
        assert_eq!(
            winner(&[("+32", "open"), ("+32#", "exact")], "+32").unwrap(),
            "exact"
        );
        assert_eq!(winner(&[("+32#", "exact")], "+321"), None);
        // Identical patterns: the lower index, as in the SBC's table order.
        assert_eq!(
            winner(&[("+32", "first"), ("+32", "second")], "+321").unwrap(),
            "first"
        );
    }

    #[test]
    fn matching() {
        assert!(p("+322612700[0-2]#").matches("+3226127001"));
        assert!(!p("+322612700[0-2]#").matches("+3226127003"));
        assert!(!p("+322612700[0-2]#").matches("+32261270011"));
        assert!(p("+322612700[0-2]").matches("+32261270011"));
        assert!(p("+32[5551200-5551300]#").matches("+325551250"));
        assert!(!p("+32[5551200-5551300]#").matches("+325551301"));
        assert!(p("+3226127xxx#").matches("+3226127999"));
        assert!(p("+32z").matches("+321") && !p("+32z").matches("+320"));
        assert!(p("+32n").matches("+322") && !p("+32n").matches("+321"));
        assert!(p("\\*12").matches("*123") && !p("\\*12").matches("+123"));
        assert!(p("*").matches("") && p("*").matches("+32"));
        assert!(p("+3.").matches("+3a") && !p("+3.").matches("+3"));
        assert!(p("+32[1,3,5-6]").matches("+325") && !p("+32[1,3,5-6]").matches("+324"));
    }

    #[test]
    fn span_of_the_shapes_dialsync_writes() {
        let range = |lo: u64, hi: u64| {
            Some(Span::Range(
                NumberRange::between(Number::from_u64(lo).unwrap(), Number::from_u64(hi).unwrap())
                    .unwrap(),
            ))
        };
        assert_eq!(p("+322612700[0-2]#").span(), range(3226127000, 3226127002));
        assert_eq!(p("+3226128xxx#").span(), range(3226128000, 3226128999));
        assert_eq!(p("+3226130[05-14]x#").span(), range(3226130050, 3226130149));
        assert_eq!(p("+3226129005#").span(), range(3226129005, 3226129005));
        assert_eq!(
            p("+3201").span(),
            Some(Span::Prefix(OpenPrefix::parse("+3201").unwrap()))
        );
        for other in [
            "*",
            "3201",
            "+32[1,3]#",
            "+32x1#",
            "+32z#",
            "+[0-9]#",
            "+3201x",
            "+0x#",
            // More digits than a number has (found by the `pattern` fuzz target: overflowed).
            "+9888888888888888",
            "+988888888888888888888888#",
        ] {
            assert_eq!(p(other).span(), None, "{other}");
        }
    }

    #[test]
    fn canonical_printing() {
        for (text, canonical) in [
            ("+32[5-6,1,3]", "+32[1,3,5-6]"),
            ("+32[1-3,2-4]", "+32[1-4]"),
            ("+32[01-02,03]", "+32[01-03]"),
            ("+32[0-9]#", "+32[0-9]#"),
            ("\\+3\\2", "+32"),
            ("\\x\\#\\*", "\\x\\#\\*"),
            ("*", "*"),
        ] {
            assert_eq!(p(text).to_string(), canonical, "{text}");
        }
    }

    #[test]
    fn precise_errors() {
        let cases = [
            ("", PatternError::Empty),
            ("+32*", PatternError::MisplacedStar { position: 3 }),
            ("+3#2", PatternError::MisplacedHash { position: 2 }),
            (
                "+32 1",
                PatternError::InvalidCharacter {
                    found: ' ',
                    position: 3,
                },
            ),
            ("+32\\", PatternError::TrailingEscape),
            (
                "53([2-4])",
                PatternError::SuffixNotation {
                    found: '(',
                    position: 2,
                },
            ),
            ("+32]", PatternError::UnopenedBracket { position: 3 }),
            ("+32[1-2", PatternError::UnclosedBracket { position: 3 }),
            ("+32[]", PatternError::EmptyItem { position: 4 }),
            ("+32[1,]", PatternError::EmptyItem { position: 6 }),
            ("+32[1-]", PatternError::EmptyItem { position: 6 }),
            (
                "+32[1-a]",
                PatternError::InvalidInBracket {
                    found: 'a',
                    position: 6,
                },
            ),
            (
                "+32[1-22]",
                PatternError::UnequalWidth {
                    position: 6,
                    expected: 1,
                    found: 2,
                },
            ),
            (
                "+32[9-1]",
                PatternError::ReversedRange {
                    position: 4,
                    lo: "9".into(),
                    hi: "1".into(),
                },
            ),
            (
                "+32[1-2-3]",
                PatternError::InvalidInBracket {
                    found: '-',
                    position: 4,
                },
            ),
            (
                "+32[0000000000000000]",
                PatternError::TooWide { position: 4 },
            ),
            (
                "+32[[1]]",
                PatternError::InvalidInBracket {
                    found: '[',
                    position: 4,
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Pattern::parse(text), Err(expected), "{text:?}");
        }
    }

    /// Random patterns over a small alphabet so that many of them match the same numbers.
    fn element() -> impl Strategy<Value = Element> {
        prop_oneof![
            4 => (b'0'..=b'3').prop_map(Element::Literal),
            1 => Just(Element::AnyDigit),
            1 => Just(Element::NonZero),
            1 => Just(Element::TwoToNine),
            1 => Just(Element::AnyChar),
            2 => (1usize..=2, prop::collection::vec((0u64..40, 0u64..40), 1..3)).prop_map(
                |(width, items)| {
                    let cap = POW10[width] - 1;
                    let ranges = items
                        .into_iter()
                        .map(|(a, b)| (a.min(b).min(cap), a.max(b).min(cap)))
                        .collect();
                    Element::Set(DigitSet::new(width, ranges).unwrap())
                }
            ),
        ]
    }

    fn pattern() -> impl Strategy<Value = Pattern> {
        (prop::collection::vec(element(), 0..5), any::<bool>()).prop_map(|(mut elements, end)| {
            if end {
                elements.push(Element::End);
            }
            Pattern::from_elements(&elements).unwrap()
        })
    }

    /// The vendor's rule read literally, written independently of `specificity_cmp`: walk the
    /// dialled string; at each element boundary compare what each rule demands there.
    fn reference_beats(a: &Pattern, b: &Pattern) -> Ordering {
        fn rank(e: &Element) -> (u8, u64) {
            // Higher is more constrained; among brackets fewer admitted values is higher.
            match e {
                Element::Literal(_) => (6, 0),
                Element::Set(s) => (5, u64::MAX - s.count()),
                Element::TwoToNine => (4, 0),
                Element::NonZero => (3, 0),
                Element::AnyDigit => (2, 0),
                Element::AnyChar => (1, 0),
                Element::End => (0, 0),
            }
        }
        let mut i = 0;
        loop {
            match (a.elements().get(i), b.elements().get(i)) {
                (None, None) => return Ordering::Equal,
                (Some(_), None) => return Ordering::Greater,
                (None, Some(_)) => return Ordering::Less,
                (Some(x), Some(y)) if x == y => i += 1,
                (Some(x), Some(y)) => {
                    let by_rank = rank(x).cmp(&rank(y));
                    if by_rank != Ordering::Equal {
                        return by_rank;
                    }
                    // Equal rank, different element: the vendor is silent; see `specificity_cmp`.
                    return x.specificity_cmp(y);
                }
            }
        }
    }

    /// Two patterns that share their first elements, as rules of one country code do.
    fn kindred_patterns() -> impl Strategy<Value = (Pattern, Pattern)> {
        let common = prop::collection::vec(
            prop_oneof![3 => element(), 1 => Just(Element::Literal(b'+'))],
            0..6,
        );
        let tail = || (prop::collection::vec(element(), 0..3), any::<bool>());
        (common, tail(), tail()).prop_map(|(common, a, b)| {
            let build = |(tail, end): (Vec<Element>, bool)| {
                let mut elements = common.clone();
                elements.extend(tail);
                if end {
                    elements.push(Element::End);
                }
                Pattern::from_elements(&elements).unwrap()
            };
            (build(a), build(b))
        })
    }

    /// Texts near the canonical shapes: the fast path's alphabet, brackets of every form
    /// (single, rising, equal, falling, of unequal widths, several items), stray characters.
    fn near_canonical() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => "[0-9+xzn.]{1,4}",
            2 => "\\[[0-9]{1,2}\\]",
            2 => "\\[[0-9]{1,2}-[0-9]{1,2}\\]",
            1 => "\\[[0-9]{1,2}(,[0-9]{1,2}(-[0-9])?){0,2}\\]",
            1 => "[#*()\\\\\\[\\],a-]",
        ];
        (prop::collection::vec(piece, 0..5), any::<bool>())
            .prop_map(|(pieces, end)| pieces.concat() + if end { "#" } else { "" })
    }

    proptest! {
        /// A text taken as canonical parses to what the element-by-element parse gives, and
        /// every text gets the same answer (or the same error) either way.
        #[test]
        fn the_canonical_fast_path_agrees_with_the_full_parse(text in near_canonical()) {
            prop_assert_eq!(Pattern::parse(&text), Pattern::parse_elements(&text), "{:?}", text);
            if is_canonical(text.as_bytes()) {
                prop_assert_eq!(
                    Pattern::parse_elements(&text).map(|p| p.as_str().to_string()),
                    Ok(text.clone())
                );
            }
        }

        /// The byte-level skip of a shared start changes no answer.
        #[test]
        fn specificity_cmp_equals_the_vendor_rule((a, b) in kindred_patterns()) {
            prop_assert_eq!(a.specificity_cmp(&b), reference_beats(&a, &b), "{} vs {}", a, b);
            prop_assert_eq!(b.specificity_cmp(&a), reference_beats(&b, &a), "{} vs {}", b, a);
        }

        #[test]
        fn printing_round_trips(pattern in pattern()) {
            let text = pattern.to_string();
            prop_assert_eq!(Pattern::parse(&text), Ok(pattern.clone()), "{}", text);
            let decoded = pattern.elements();
            prop_assert_eq!(Pattern::from_elements(&decoded), Some(pattern), "{:?}", decoded);
        }

        /// Best match equals a brute-force tournament: the chosen rule is the one that beats
        /// every other matching rule pairwise under the literal reading of the vendor's rule.
        #[test]
        fn best_match_equals_brute_force(
            rules in prop::collection::vec(pattern(), 1..12),
            numbers in prop::collection::vec("[0-3]{0,4}", 1..20),
        ) {
            let tags: Vec<usize> = (0..rules.len()).collect();
            for number in &numbers {
                let fast = best_match(
                    rules.iter().zip(&tags).map(|(r, t)| (*t as u32, r, t)),
                    number,
                ).map(|(i, _)| i as usize);
                let matching: Vec<usize> =
                    (0..rules.len()).filter(|&i| rules[i].matches(number)).collect();
                let brute = matching.iter().copied().find(|&i| {
                    matching.iter().all(|&j| {
                        i == j || match reference_beats(&rules[i], &rules[j]) {
                            Ordering::Greater => true,
                            Ordering::Equal => i < j,
                            Ordering::Less => false,
                        }
                    })
                });
                prop_assert_eq!(fast, brute, "number {:?} rules {:?}", number, rules);
            }
        }

        /// Without `#` a pattern matches exactly the texts that have a prefix the anchored
        /// pattern matches: the "starts with" semantics of the SBC.
        #[test]
        fn open_pattern_means_starts_with(pattern in pattern(), text in "[0-3a+]{0,6}") {
            prop_assume!(!pattern.is_anchored());
            let mut anchored = pattern.elements();
            anchored.push(Element::End);
            let anchored = Pattern::from_elements(&anchored).unwrap();
            let some_prefix = (0..=text.len()).any(|k| anchored.matches(&text[..k]));
            prop_assert_eq!(pattern.matches(&text), some_prefix);
        }
    }
}
