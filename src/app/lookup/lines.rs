//! A file of numbers, one a line, as `lookup --file` reads it: blank lines and `#` comments
//! are skipped, whitespace around a number is trimmed, and a line that is not a number is
//! handed back with its line number rather than stopping the stream, so one typo in a million
//! lines costs one row, not the run.

use std::fmt;
use std::io::{self, BufRead};

use crate::number::Number;

/// A line that is not a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based, as an editor shows it.
    pub line: u64,
    /// The line's text, trimmed (invalid UTF-8 replaced).
    pub text: String,
    pub reason: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {:?} is not a number: {}",
            self.line, self.text, self.reason
        )
    }
}

/// The numbers of a reader, line by line: `(line number, number or why not)`. Only a failure
/// to read ends it (with an error item).
pub struct NumberLines<R> {
    reader: R,
    line: u64,
    buffer: Vec<u8>,
}

impl<R: BufRead> NumberLines<R> {
    pub fn new(reader: R) -> NumberLines<R> {
        NumberLines {
            reader,
            line: 0,
            buffer: Vec::with_capacity(64),
        }
    }
}

impl<R: BufRead> Iterator for NumberLines<R> {
    type Item = io::Result<Result<(u64, Number), BadLine>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buffer.clear();
            match self.reader.read_until(b'\n', &mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
            self.line += 1;
            // Bytes, not `read_line`: a line of invalid UTF-8 is one bad line, not the end.
            let text = match std::str::from_utf8(&self.buffer) {
                Ok(text) => text.trim(),
                Err(_) => {
                    return Some(Ok(Err(BadLine {
                        line: self.line,
                        text: String::from_utf8_lossy(&self.buffer).trim().to_string(),
                        reason: "not UTF-8 text".to_string(),
                    })))
                }
            };
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            return Some(Ok(Number::parse(text)
                .map(|number| (self.line, number))
                .map_err(|e| BadLine {
                    line: self.line,
                    text: text.to_string(),
                    reason: e.to_string(),
                })));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_and_comments_are_skipped_and_bad_lines_named() {
        let input: &[u8] =
            b"# numbers to check\n+3226120001\n\n  +3226120002 \r\n12ab\n\xff\n+3299";
        let read: Vec<_> = NumberLines::new(input)
            .map(|item| item.expect("reads"))
            .collect();
        let numbers: Vec<(u64, String)> = read
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|(line, n)| (*line, n.to_string()))
            .collect();
        assert_eq!(
            numbers,
            [
                (2, "+3226120001".to_string()),
                (4, "+3226120002".to_string()),
                (7, "+3299".to_string())
            ]
        );
        let bad: Vec<(u64, &str)> = read
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|b| (b.line, b.text.as_str()))
            .collect();
        assert_eq!(bad, [(5, "12ab"), (6, "\u{fffd}")]);
        let shown = read[2].as_ref().expect_err("bad").to_string();
        assert!(
            shown.starts_with("line 5: \"12ab\" is not a number: "),
            "{shown}"
        );
    }
}
