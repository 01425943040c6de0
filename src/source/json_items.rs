//! The items of one list in a JSON object, cut out of the body as it arrives.
//!
//! A real Fusion group answers `phone_usage` in one body, `{"phoneUsages":[...], ...}`, of
//! about 200 bytes a number (190 MiB for a million) and with no paging to ask for. Held whole
//! it would be most of the agent's memory, and serde_json's reader interface, the other way to
//! read it as it comes, takes bytes one at a time (more than twice the CPU of a parse of the
//! whole body). This scanner is fed the body chunk by chunk and hands over each element of the
//! list as one complete byte slice, for `serde_json::from_slice` to read; only the tail of an
//! element cut by a chunk's end is carried to the next chunk.
//!
//! It follows the JSON structure itself (in a string or not, after a backslash or not, how
//! deep), skipping through strings with `memchr`. Everything but the list's elements (the
//! object, its other keys and their values, whatever follows) it checks as serde_json would,
//! with serde_json's reasons ("expected `,` or `}`", "trailing characters", ...) and the
//! place in the whole body: a body refused when read whole is refused here, in the same words.
//! The elements themselves are checked by whoever reads them: an error of theirs is placed in
//! the whole body too. The values of a few named keys (a page's `next`) are handed over whole.
//!
//! Pure: bytes in, slices and errors out; no I/O, and no UTF-8 check (the reader checks the
//! whole body, which it sees go by).

use memchr::{memchr2, memchr_iter, memrchr};
use serde_json::error::Category;

/// What the scanner hands over.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// One element of the list, whole (its JSON text as it came).
    Item(&'a [u8]),
    /// The value of the named key at this index, whole.
    Field(usize, &'a [u8]),
}

/// What a whole body was, once it has been read to its end without an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scanned {
    /// Valid JSON, but not an object (so not a page).
    NotAnObject,
    /// An object; `listed` when its list key held an array (absent or null: not listed).
    Object { listed: bool },
}

/// Why the body is not valid JSON, or not of the documented shape: serde_json's category
/// and reason, and where in the whole body (serde_json's line and column, both from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanError {
    pub category: Category,
    pub reason: String,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => f.write_str(&self.reason),
            line => write!(f, "{} at line {line} column {}", self.reason, self.column),
        }
    }
}

impl std::error::Error for ScanError {}

/// Whoever takes the pieces: an error of theirs refuses the body at the piece's place.
pub trait Take: FnMut(Piece<'_>) -> Result<(), serde_json::Error> {}

impl<F: FnMut(Piece<'_>) -> Result<(), serde_json::Error>> Take for F {}

/// A key at the top level longer than this cannot be one of the named keys (each at most a
/// few dozen bytes, escapes included), so its text is not kept.
const KEY_KEEP: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
}

/// An open container: the top-level object, the list, or any other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    Top,
    List,
    Nested(Kind),
}

/// Where in an escape a string is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    Backslash,
    /// In `\uXXXX`: hex digits still to come, and whether one seen so far was not hex.
    Hex(u8, bool),
}

/// What a finished string is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StrRole {
    TopKey,
    Key,
    Value,
}

/// Where in a number, as serde_json reads one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpDigits,
}

/// What the value of the current top-level key is to the scanner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Skip,
    List,
    /// The list key's value, when it is not an array: null, or refused once read.
    NotList,
    Field(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Start,
    TopKeyFirst,
    TopKeyNext,
    TopColon,
    TopValue,
    TopAfter,
    ItemFirst,
    ItemNext,
    ItemAfter,
    /// Inside an object, array or string element of the list: only its end is looked for.
    Item {
        depth: u32,
        in_str: bool,
        escape: ItemEscape,
    },
    OpenArray,
    OpenObject,
    Value,
    Key,
    Colon,
    After,
    Str(StrRole, Escape),
    Num(Num),
    Literal(&'static [u8], u8),
    Done,
}

/// The scanner of one body. See the module's documentation.
#[derive(Debug)]
pub struct ItemScanner {
    list_key: &'static str,
    fields: &'static [&'static str],
    /// The body from the first byte still needed.
    buf: Vec<u8>,
    /// Line (from 1) and column (bytes from its line's start) of `buf[0]` in the body.
    base_line: usize,
    base_col: usize,
    /// Where the scan is in `buf`.
    pos: usize,
    state: State,
    frames: Vec<Frame>,
    /// Where the current element of the list, top-level key, or named value began in `buf`.
    item_start: usize,
    key_start: Option<usize>,
    field_start: usize,
    role: Role,
    listed: bool,
    list_seen: bool,
    fields_seen: Vec<bool>,
    not_object: bool,
    failed: Option<ScanError>,
}

/// Where an element's string is in an escape. Its reader checks the escape; the scanner only
/// must not take what the escape holds for the string's end: after `\u`, four characters
/// belong to it whatever they are (`"\u"]…` does not end at that quote, as serde_json, which
/// calls it an invalid escape there, does not either).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ItemEscape {
    None,
    /// Just after the backslash.
    Backslash,
    /// Characters of a `\u` escape still to come.
    Hex(u8),
}

impl ItemEscape {
    /// The escape after `byte`.
    fn after(self, byte: u8) -> ItemEscape {
        match (self, byte) {
            (ItemEscape::Backslash, b'u') => ItemEscape::Hex(4),
            (ItemEscape::Hex(left), _) if left > 1 => ItemEscape::Hex(left - 1),
            _ => ItemEscape::None,
        }
    }
}

/// Where the first quote, backslash or control character of `bytes` is: where a string that
/// is checked stops being plain text. Sixteen bytes at a time, so that a huge string (a page
/// padded with megabytes) is quick even in a debug build.
fn string_stop(bytes: &[u8]) -> Option<usize> {
    const ONES: u128 = u128::from_ne_bytes([0x01; 16]);
    const HIGH: u128 = u128::from_ne_bytes([0x80; 16]);
    /// Whether any byte of `x` is below `n` (at most 0x80).
    fn below(x: u128, n: u8) -> bool {
        x.wrapping_sub(ONES * u128::from(n)) & !x & HIGH != 0
    }
    let mut at = 0;
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        let mut word = [0u8; 16];
        word.copy_from_slice(block);
        let x = u128::from_ne_bytes(word);
        if below(x, 0x20) || below(x ^ (ONES * 0x22), 1) || below(x ^ (ONES * 0x5C), 1) {
            break;
        }
        at += 16;
    }
    bytes[at..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|k| at + k)
}

/// Where the first quote or backslash of `bytes` is: the end of a stretch of an item's
/// string. Eight bytes at a time: an item's strings are short (a name, a number), too short
/// for `memchr`'s set-up to pay.
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    const LOW: u64 = u64::from_ne_bytes([0x7F; 8]);
    /// The high bit of each byte of `y` that is zero, and no other.
    fn zeros(y: u64) -> u64 {
        !(((y & LOW).wrapping_add(LOW)) | y | LOW)
    }
    let mut at = 0;
    for block in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        let x = u64::from_le_bytes(word);
        let found =
            zeros(x ^ u64::from_ne_bytes([b'"'; 8])) | zeros(x ^ u64::from_ne_bytes([b'\\'; 8]));
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    memchr2(b'"', b'\\', &bytes[at..]).map(|k| at + k)
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

impl ItemScanner {
    /// A scanner for the elements of `list_key`'s array, handing over the values of `fields`.
    pub fn new(list_key: &'static str, fields: &'static [&'static str]) -> ItemScanner {
        ItemScanner {
            list_key,
            fields,
            buf: Vec::new(),
            base_line: 1,
            base_col: 0,
            pos: 0,
            state: State::Start,
            frames: Vec::new(),
            item_start: 0,
            key_start: None,
            field_start: 0,
            role: Role::Skip,
            listed: false,
            list_seen: false,
            fields_seen: vec![false; fields.len()],
            not_object: false,
            failed: None,
        }
    }

    /// Scans the next `chunk` of the body, handing each piece it completes to `take`. An
    /// error of `take`'s (the piece is not valid JSON, say) refuses the body at that piece's
    /// place. After an error, every call returns it again.
    pub fn feed<F>(&mut self, chunk: &[u8], mut take: F) -> Result<(), ScanError>
    where
        F: FnMut(Piece<'_>) -> Result<(), serde_json::Error>,
    {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.buf.extend_from_slice(chunk);
        let scanned = self.scan(&mut take);
        if let Err(e) = scanned {
            let e = self.in_own_words(e, &mut take);
            self.failed = Some(e.clone());
            return Err(e);
        }
        self.compact();
        Ok(())
    }

    /// The body has ended: what it was, or why it is not a whole JSON document. `take` is
    /// given the value of a named key the body broke off in, to say what is wrong with it.
    pub fn finish<F>(mut self, mut take: F) -> Result<Scanned, ScanError>
    where
        F: FnMut(Piece<'_>) -> Result<(), serde_json::Error>,
    {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.end().map_err(|e| self.in_own_words(e, &mut take))
    }

    /// A refusal inside the value of the list key or of a named key, which serde_json reads
    /// rather than skips (and so words some refusals otherwise: "trailing comma" for
    /// "expected value", say), is said in the words of its reader: the value as far as it
    /// goes is handed over, and what its reader says of it is the refusal.
    fn in_own_words(&self, e: ScanError, take: &mut impl Take) -> ScanError {
        if matches!(self.state, State::TopColon | State::TopValue) || self.frames.is_empty() {
            return e;
        }
        let start = self.field_start;
        let value = &self.buf[start.min(self.buf.len())..];
        let said = match self.role {
            Role::Field(index) => take(Piece::Field(index, value)).err(),
            Role::NotList => serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(value).err(),
            Role::Skip | Role::List => None,
        };
        match said {
            Some(said) => self.piece_error(start, &said),
            None => e,
        }
    }

    fn end(&mut self) -> Result<Scanned, ScanError> {
        let end = self.buf.len();
        // A number ends where the body does: the value is whole, and what held it is not.
        if let State::Num(num) = self.state {
            match num {
                Num::Zero | Num::Int | Num::Frac | Num::ExpDigits => {
                    self.value_done(end, &mut |_: Piece<'_>| -> serde_json::Result<()> {
                        Ok(())
                    })?;
                }
                _ => return Err(self.eof_error("invalid number", Category::Syntax)),
            }
        }
        let reason = match self.state {
            State::Done => {
                return Ok(match self.not_object {
                    true => Scanned::NotAnObject,
                    false => Scanned::Object {
                        listed: self.listed,
                    },
                })
            }
            State::Item { .. } => return Err(self.item_eof()),
            State::Start
            | State::TopKeyNext
            | State::TopValue
            | State::ItemNext
            | State::Value
            | State::Literal(..) => "EOF while parsing a value",
            State::TopKeyFirst
            | State::TopColon
            | State::TopAfter
            | State::OpenObject
            | State::Key
            | State::Colon => "EOF while parsing an object",
            State::ItemFirst | State::ItemAfter | State::OpenArray => "EOF while parsing a list",
            State::After => match self.frames.last() {
                Some(Frame::Nested(Kind::Array)) => "EOF while parsing a list",
                _ => "EOF while parsing an object",
            },
            State::Str(..) => "EOF while parsing a string",
            State::Num(_) => "invalid number",
        };
        Err(self.eof_error(reason, Category::Eof))
    }

    /// Drops what is no longer needed from the front of `buf`, keeping the line count.
    fn compact(&mut self) {
        if let (State::Str(StrRole::TopKey, _), Some(start)) = (self.state, self.key_start) {
            if self.pos - start > KEY_KEEP {
                self.key_start = None;
            }
        }
        let mut keep = self.pos;
        let in_item = match self.state {
            State::Item { .. } => true,
            State::Num(_) | State::Literal(..) => self.frames.last() == Some(&Frame::List),
            _ => false,
        };
        if in_item {
            keep = keep.min(self.item_start);
        }
        if let Some(start) = self.key_start {
            keep = keep.min(start);
        }
        let in_field = !matches!(self.state, State::TopColon | State::TopValue);
        if matches!(self.role, Role::Field(_) | Role::NotList) && in_field {
            keep = keep.min(self.field_start);
        }
        if keep == 0 {
            return;
        }
        let gone = &self.buf[..keep];
        match memrchr(b'\n', gone) {
            Some(at) => {
                self.base_line += memchr_iter(b'\n', gone).count();
                self.base_col = keep - at - 1;
            }
            None => self.base_col += keep,
        }
        self.buf.drain(..keep);
        self.pos -= keep;
        self.item_start = self.item_start.saturating_sub(keep);
        self.field_start = self.field_start.saturating_sub(keep);
        self.key_start = self.key_start.map(|s| s - keep);
    }

    /// Line and column (bytes before it on its line) of `buf[at]`.
    fn place(&self, at: usize) -> (usize, usize) {
        let before = &self.buf[..at.min(self.buf.len())];
        match memrchr(b'\n', before) {
            Some(nl) => (
                self.base_line + memchr_iter(b'\n', before).count(),
                before.len() - nl - 1,
            ),
            None => (self.base_line, self.base_col + before.len()),
        }
    }

    /// An error found on taking the byte `buf[at]`: serde_json places it just after.
    fn error(&self, at: usize, reason: &str, category: Category) -> ScanError {
        self.error_before(at + 1, reason, category)
    }

    /// An error just before the byte `buf[at]`, where serde_json places the errors it finds
    /// on looking at a byte without taking it (a control character, a value of another type).
    fn error_before(&self, at: usize, reason: &str, category: Category) -> ScanError {
        let (line, column) = self.place(at);
        ScanError {
            category,
            reason: reason.to_string(),
            line,
            column,
        }
    }

    fn syntax(&self, at: usize, reason: &str) -> ScanError {
        self.error(at, reason, Category::Syntax)
    }

    /// An error at the end of the body (serde_json places it at the last byte).
    fn eof_error(&self, reason: &str, category: Category) -> ScanError {
        let (line, column) = self.place(self.buf.len());
        ScanError {
            category,
            reason: reason.to_string(),
            line,
            column,
        }
    }

    /// A piece's own error (from serde_json reading `buf[start..]`), placed in the body.
    fn piece_error(&self, start: usize, e: &serde_json::Error) -> ScanError {
        let text = e.to_string();
        let reason = match text.rfind(" at line ") {
            Some(at) if e.line() > 0 => text[..at].to_string(),
            _ => text,
        };
        let (line, col) = self.place(start);
        let (line, column) = match e.line() {
            0 => (line, col + 1),
            1 => (line, col + e.column()),
            n => (line + n - 1, e.column()),
        };
        ScanError {
            category: e.classify(),
            reason,
            line,
            column,
        }
    }

    /// The list's element cut off by the end of the body: what serde_json says of it.
    fn item_eof(&self) -> ScanError {
        let rest = &self.buf[self.item_start..];
        match serde_json::from_slice::<serde::de::IgnoredAny>(rest) {
            Err(e) => self.piece_error(self.item_start, &e),
            Ok(_) => self.eof_error("EOF while parsing a list", Category::Eof),
        }
    }

    fn scan(&mut self, take: &mut impl Take) -> Result<(), ScanError> {
        let len = self.buf.len();
        while self.pos < len {
            let p = self.pos;
            let b = self.buf[p];
            match self.state {
                State::Item {
                    depth,
                    in_str,
                    escape,
                } => self.item(depth, in_str, escape, take)?,
                State::Str(role, escape) => self.string(role, escape, take)?,
                _ if is_ws(b) && !matches!(self.state, State::Num(_) | State::Literal(..)) => {
                    self.pos += 1
                }
                State::Start => {
                    self.pos += 1;
                    if b == b'{' {
                        self.frames.push(Frame::Top);
                        self.state = State::TopKeyFirst;
                    } else {
                        self.not_object = true;
                        self.begin_value(p, b)?;
                    }
                }
                State::TopKeyFirst | State::TopKeyNext => {
                    self.pos += 1;
                    match b {
                        b'"' => {
                            self.key_start = Some(p);
                            self.state = State::Str(StrRole::TopKey, Escape::None);
                        }
                        b'}' if self.state == State::TopKeyFirst => {
                            self.frames.pop();
                            self.value_done(p + 1, take)?;
                        }
                        b'}' => return Err(self.syntax(p, "trailing comma")),
                        _ => return Err(self.syntax(p, "key must be a string")),
                    }
                }
                State::TopColon | State::Colon => match b {
                    b':' => {
                        self.pos += 1;
                        self.state = match self.state {
                            State::TopColon => State::TopValue,
                            _ => State::Value,
                        };
                    }
                    _ => return Err(self.syntax(p, "expected `:`")),
                },
                State::TopValue => {
                    self.pos += 1;
                    match self.role {
                        Role::List => match b {
                            b'[' => {
                                self.listed = true;
                                self.frames.push(Frame::List);
                                self.state = State::ItemFirst;
                            }
                            b'{' => {
                                return Err(self.error_before(
                                    p,
                                    "invalid type: map, expected a sequence",
                                    Category::Data,
                                ))
                            }
                            // null (no list), or a value of another type, said once read.
                            _ => {
                                self.field_start = p;
                                self.role = Role::NotList;
                                self.begin_value(p, b)?;
                            }
                        },
                        Role::Field(_) => {
                            self.field_start = p;
                            self.begin_value(p, b)?;
                        }
                        Role::Skip | Role::NotList => self.begin_value(p, b)?,
                    }
                }
                State::TopAfter => {
                    self.pos += 1;
                    match b {
                        b',' => self.state = State::TopKeyNext,
                        b'}' => {
                            self.frames.pop();
                            self.value_done(p + 1, take)?;
                        }
                        _ => return Err(self.syntax(p, "expected `,` or `}`")),
                    }
                }
                State::ItemFirst | State::ItemNext | State::ItemAfter => {
                    self.pos += 1;
                    match (self.state, b) {
                        (State::ItemFirst | State::ItemAfter, b']') => {
                            self.frames.pop();
                            self.role = Role::Skip;
                            self.value_done(p + 1, take)?;
                        }
                        (State::ItemNext, b']') => return Err(self.syntax(p, "trailing comma")),
                        (State::ItemAfter, b',') => self.state = State::ItemNext,
                        (State::ItemAfter, _) => return Err(self.syntax(p, "expected `,` or `]`")),
                        (_, b'{' | b'[') => {
                            self.item_start = p;
                            self.state = State::Item {
                                depth: 1,
                                in_str: false,
                                escape: ItemEscape::None,
                            };
                        }
                        (_, b'"') => {
                            self.item_start = p;
                            self.state = State::Item {
                                depth: 0,
                                in_str: true,
                                escape: ItemEscape::None,
                            };
                        }
                        (_, _) => {
                            self.item_start = p;
                            self.begin_value(p, b)?;
                        }
                    }
                }
                State::OpenArray => match b {
                    b']' => {
                        self.pos += 1;
                        self.frames.pop();
                        self.value_done(p + 1, take)?;
                    }
                    _ => self.state = State::Value,
                },
                State::OpenObject | State::Key => {
                    self.pos += 1;
                    match b {
                        b'}' if self.state == State::OpenObject => {
                            self.frames.pop();
                            self.value_done(p + 1, take)?;
                        }
                        b'"' => self.state = State::Str(StrRole::Key, Escape::None),
                        _ => return Err(self.syntax(p, "key must be a string")),
                    }
                }
                State::Value => {
                    self.pos += 1;
                    self.begin_value(p, b)?;
                }
                State::After => {
                    self.pos += 1;
                    match (self.frames.last(), b) {
                        (Some(Frame::Nested(Kind::Array)), b',') => self.state = State::Value,
                        (Some(Frame::Nested(Kind::Object)), b',') => self.state = State::Key,
                        (Some(Frame::Nested(Kind::Array)), b']')
                        | (Some(Frame::Nested(Kind::Object)), b'}') => {
                            self.frames.pop();
                            self.value_done(p + 1, take)?;
                        }
                        (Some(Frame::Nested(Kind::Array)), _) => {
                            return Err(self.syntax(p, "expected `,` or `]`"))
                        }
                        _ => return Err(self.syntax(p, "expected `,` or `}`")),
                    }
                }
                State::Num(num) => self.number(num, b, take)?,
                State::Literal(word, at) => {
                    if b != word[at as usize] {
                        return Err(self.syntax(p, "expected ident"));
                    }
                    self.pos += 1;
                    match at as usize + 1 == word.len() {
                        true => self.value_done(p + 1, take)?,
                        false => self.state = State::Literal(word, at + 1),
                    }
                }
                State::Done => return Err(self.syntax(p, "trailing characters")),
            }
        }
        Ok(())
    }

    /// The first byte `b` (at `p`, already consumed) of a value that is not an element of the
    /// list.
    fn begin_value(&mut self, p: usize, b: u8) -> Result<(), ScanError> {
        self.state = match b {
            b'{' => {
                self.frames.push(Frame::Nested(Kind::Object));
                State::OpenObject
            }
            b'[' => {
                self.frames.push(Frame::Nested(Kind::Array));
                State::OpenArray
            }
            b'"' => State::Str(StrRole::Value, Escape::None),
            b'-' => State::Num(Num::Minus),
            b'0' => State::Num(Num::Zero),
            b'1'..=b'9' => State::Num(Num::Int),
            b't' => State::Literal(b"true", 1),
            b'f' => State::Literal(b"false", 1),
            b'n' => State::Literal(b"null", 1),
            _ => return Err(self.syntax(p, "expected value")),
        };
        Ok(())
    }

    /// A value ends just before `buf[end]`: hand it over if it is a piece, and go on in
    /// what holds it.
    fn value_done(&mut self, end: usize, take: &mut impl Take) -> Result<(), ScanError> {
        self.state = match self.frames.last() {
            None => State::Done,
            Some(Frame::Top) => {
                let start = self.field_start;
                let value = &self.buf[start..end];
                match self.role {
                    Role::Field(index) => {
                        take(Piece::Field(index, value)).map_err(|e| self.piece_error(start, &e))?
                    }
                    Role::NotList if value != b"null" => {
                        // serde_json's own words for the value it found (`string "x"`).
                        let e = serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(value)
                            .err()
                            .map(|e| self.piece_error(start, &e));
                        return Err(e.unwrap_or_else(|| {
                            self.error_before(
                                end,
                                "invalid type, expected a sequence",
                                Category::Data,
                            )
                        }));
                    }
                    _ => {}
                }
                self.role = Role::Skip;
                State::TopAfter
            }
            Some(Frame::List) => {
                let start = self.item_start;
                take(Piece::Item(&self.buf[start..end]))
                    .map_err(|e| self.piece_error(start, &e))?;
                State::ItemAfter
            }
            Some(Frame::Nested(_)) => State::After,
        };
        Ok(())
    }

    /// An element of the list, an object, array or string: looks for its end only (its
    /// reader checks it), then hands it over.
    fn item(
        &mut self,
        mut depth: u32,
        mut in_str: bool,
        mut escape: ItemEscape,
        take: &mut impl Take,
    ) -> Result<(), ScanError> {
        let len = self.buf.len();
        let mut p = self.pos;
        while p < len {
            if escape != ItemEscape::None {
                escape = escape.after(self.buf[p]);
                p += 1;
            } else if in_str {
                match quote_or_backslash(&self.buf[p..]) {
                    None => p = len,
                    Some(k) => {
                        p += k + 1;
                        match self.buf[p - 1] {
                            b'\\' => escape = ItemEscape::Backslash,
                            _ => {
                                in_str = false;
                                if depth == 0 {
                                    self.pos = p;
                                    return self.value_done(p, take);
                                }
                            }
                        }
                    }
                }
            } else {
                let b = self.buf[p];
                p += 1;
                match b {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            self.pos = p;
                            return self.value_done(p, take);
                        }
                    }
                    _ => {}
                }
            }
        }
        self.pos = p;
        self.state = State::Item {
            depth,
            in_str,
            escape,
        };
        Ok(())
    }

    /// A string that is not an element of the list, checked as serde_json does.
    fn string(
        &mut self,
        role: StrRole,
        mut escape: Escape,
        take: &mut impl Take,
    ) -> Result<(), ScanError> {
        let len = self.buf.len();
        let mut p = self.pos;
        while p < len {
            match escape {
                Escape::None => {
                    let Some(k) = string_stop(&self.buf[p..]) else {
                        p = len;
                        break;
                    };
                    if self.buf[p + k] < 0x20 {
                        // serde_json places it after the character in a string it reads (a
                        // key of the page, a named value), before it in one it skips.
                        let read = role == StrRole::TopKey
                            || matches!(self.role, Role::Field(_) | Role::NotList);
                        let reason =
                            "control character (\\u0000-\\u001F) found while parsing a string";
                        return Err(match read {
                            true => self.syntax(p + k, reason),
                            false => self.error_before(p + k, reason, Category::Syntax),
                        });
                    }
                    p += k + 1;
                    if self.buf[p - 1] == b'\\' {
                        escape = Escape::Backslash;
                    } else {
                        self.pos = p;
                        return self.string_done(role, p, take);
                    }
                }
                Escape::Backslash => {
                    escape = match self.buf[p] {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Escape::None,
                        b'u' => Escape::Hex(4, false),
                        _ => return Err(self.syntax(p, "invalid escape")),
                    };
                    p += 1;
                }
                Escape::Hex(left, bad) => {
                    let bad = bad || !self.buf[p].is_ascii_hexdigit();
                    if left == 1 && bad {
                        return Err(self.syntax(p, "invalid escape"));
                    }
                    escape = match left {
                        1 => Escape::None,
                        _ => Escape::Hex(left - 1, bad),
                    };
                    p += 1;
                }
            }
        }
        self.pos = p;
        self.state = State::Str(role, escape);
        Ok(())
    }

    /// A string ends just before `buf[end]`.
    fn string_done(
        &mut self,
        role: StrRole,
        end: usize,
        take: &mut impl Take,
    ) -> Result<(), ScanError> {
        match role {
            StrRole::Value => self.value_done(end, take),
            StrRole::Key => {
                self.state = State::Colon;
                Ok(())
            }
            StrRole::TopKey => {
                self.role = match self.key_start.take() {
                    None => Role::Skip,
                    Some(start) => self.top_key(start, end)?,
                };
                self.state = State::TopColon;
                Ok(())
            }
        }
    }

    /// What the top-level key `buf[start..end]` (quotes included) names.
    fn top_key(&mut self, start: usize, end: usize) -> Result<Role, ScanError> {
        let text = &self.buf[start..end];
        let escaped;
        let name: &[u8] = match text.contains(&b'\\') {
            false => &text[1..text.len() - 1],
            true => {
                escaped = serde_json::from_slice::<String>(text)
                    .map_err(|e| self.piece_error(start, &e))?;
                escaped.as_bytes()
            }
        };
        let duplicate =
            |key: &str| self.error(end - 1, &format!("duplicate field `{key}`"), Category::Data);
        if name == self.list_key.as_bytes() {
            if self.list_seen {
                return Err(duplicate(self.list_key));
            }
            self.list_seen = true;
            return Ok(Role::List);
        }
        match self.fields.iter().position(|f| f.as_bytes() == name) {
            Some(index) if self.fields_seen[index] => Err(duplicate(self.fields[index])),
            Some(index) => {
                self.fields_seen[index] = true;
                Ok(Role::Field(index))
            }
            None => Ok(Role::Skip),
        }
    }

    /// The byte `b` at `pos` in a number in state `num`.
    fn number(&mut self, num: Num, b: u8, take: &mut impl Take) -> Result<(), ScanError> {
        let p = self.pos;
        let digit = b.is_ascii_digit();
        let next = match (num, b) {
            (Num::Minus, b'0') => Num::Zero,
            (Num::Minus, _) if digit => Num::Int,
            (Num::Zero, _) if digit => return Err(self.syntax(p, "invalid number")),
            (Num::Int, _) if digit => Num::Int,
            (Num::Zero | Num::Int, b'.') => Num::Dot,
            (Num::Dot | Num::Frac, _) if digit => Num::Frac,
            (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Num::Exp,
            (Num::Exp, b'+' | b'-') => Num::ExpSign,
            (Num::Exp | Num::ExpSign | Num::ExpDigits, _) if digit => Num::ExpDigits,
            (Num::Zero | Num::Int | Num::Frac | Num::ExpDigits, _) => {
                // The number ended before this byte, which is read again in what follows.
                return self.value_done(p, take);
            }
            (Num::Minus | Num::Dot | Num::Exp | Num::ExpSign, _) => {
                return Err(self.syntax(p, "invalid number"))
            }
        };
        self.pos += 1;
        self.state = State::Num(next);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
