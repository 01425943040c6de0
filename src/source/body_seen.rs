//! What was seen of an answer's body as it went by, for a body that is decoded as it arrives
//! and so never held whole: how many bytes, its start (for a message), whether it was all
//! whitespace (an empty answer is said as such), and where its first byte that is not UTF-8
//! was. With these, a message about a streamed body says what one about a whole body says
//! ([`crate::net::preview::json_failure`]). Pure.

use std::fmt::Display;

use serde_json::error::Category;

use crate::net::preview::{json_failure_seen, preview_bytes};

/// Bytes of the body kept for messages: enough for a preview.
const HEAD_BYTES: usize = 2048;

/// What was seen of a body as it went by.
#[derive(Debug, Default)]
pub struct BodySeen {
    /// Bytes received.
    pub bytes: u64,
    /// The first bytes, for a preview.
    head: Vec<u8>,
    /// Whether any byte was not whitespace.
    any_text: bool,
    utf8: Utf8Check,
}

impl BodySeen {
    /// What there is to see of a body read whole.
    pub fn of(body: &[u8]) -> BodySeen {
        let mut seen = BodySeen::default();
        seen.take(body);
        seen.end();
        seen
    }

    /// The next `chunk` of the body.
    pub fn take(&mut self, chunk: &[u8]) {
        self.utf8.feed(chunk, self.bytes);
        self.bytes += chunk.len() as u64;
        if self.head.len() < HEAD_BYTES {
            let room = HEAD_BYTES - self.head.len();
            self.head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        if !self.any_text {
            self.any_text = !chunk.iter().all(u8::is_ascii_whitespace);
        }
    }

    /// The body has ended: a character it ended in the middle of is not UTF-8.
    pub fn end(&mut self) {
        self.utf8.end(self.bytes);
    }

    /// Offset in the body of its first byte that is not UTF-8, if any.
    pub fn not_utf8_at(&self) -> Option<u64> {
        self.utf8.bad_at
    }

    /// The start of the body as text for a message, cut to log size.
    pub fn preview(&self) -> String {
        let shown = preview_bytes(&self.head);
        if (self.head.len() as u64) < self.bytes && !shown.ends_with("...") {
            return format!("{shown}...");
        }
        shown
    }

    /// Why the body is not what was asked, in the words used for a body read whole.
    pub fn failure(&self, category: Category, error: &dyn Display) -> String {
        json_failure_seen(self.utf8.bad_at, !self.any_text, category, error)
    }
}

/// UTF-8 checked chunk by chunk, a character split across two chunks included: serde_json
/// only says "invalid unicode code point", and an operator is better served by "not UTF-8".
#[derive(Debug, Default)]
struct Utf8Check {
    /// The start of a character the last chunk ended in the middle of (at most 3 bytes).
    carry: Vec<u8>,
    /// Offset in the body of the first byte that is not UTF-8.
    bad_at: Option<u64>,
}

impl Utf8Check {
    /// Checks `chunk`, which starts at `offset` in the body.
    fn feed(&mut self, chunk: &[u8], offset: u64) {
        if self.bad_at.is_some() {
            return;
        }
        if self.carry.is_empty() {
            self.check(chunk, offset);
            return;
        }
        // Rare (the answers are mostly ASCII): finish the split character, then go on.
        let split = self.carry.len();
        let mut joined = std::mem::take(&mut self.carry);
        let take = chunk.len().min(4);
        joined.extend_from_slice(&chunk[..take]);
        let base = offset - split as u64;
        match std::str::from_utf8(&joined) {
            Ok(_) => self.check(&chunk[take..], offset + take as u64),
            Err(e) if e.valid_up_to() >= split => {
                let done = e.valid_up_to() - split;
                self.check(&chunk[done..], offset + done as u64)
            }
            Err(e) => match e.error_len() {
                Some(_) => self.bad_at = Some(base + e.valid_up_to() as u64),
                // Still cut: only when the chunk itself is shorter than the character.
                None => self.carry = joined,
            },
        }
    }

    fn check(&mut self, bytes: &[u8], offset: u64) {
        if let Err(e) = std::str::from_utf8(bytes) {
            match e.error_len() {
                // Cut mid-character: the next chunk may finish it.
                None => self.carry = bytes[e.valid_up_to()..].to_vec(),
                Some(_) => self.bad_at = Some(offset + e.valid_up_to() as u64),
            }
        }
    }

    fn end(&mut self, length: u64) {
        if self.bad_at.is_none() && !self.carry.is_empty() {
            self.bad_at = Some(length - self.carry.len() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_at(chunks: &[&[u8]]) -> Option<u64> {
        let mut seen = BodySeen::default();
        for chunk in chunks {
            seen.take(chunk);
        }
        seen.end();
        seen.not_utf8_at()
    }

    #[test]
    fn utf8_is_checked_across_chunk_boundaries() {
        let e_acute = "é".as_bytes();
        let euro = "€".as_bytes();
        assert_eq!(bad_at(&[b"ab", &e_acute[..1], &e_acute[1..], b"cd"]), None);
        assert_eq!(
            bad_at(&[b"a", &euro[..1], &euro[1..2], &euro[2..], b"c"]),
            None
        );
        assert_eq!(bad_at(&[b"abc", b"\xFF\xFE"]), Some(3));
        assert_eq!(bad_at(&[b"a", &e_acute[..1], b"x"]), Some(1));
        assert_eq!(bad_at(&[b"a", &e_acute[..1], b"\xA9x\xFF"]), Some(4));
        // Cut mid-character at the very end.
        assert_eq!(bad_at(&[b"ab", &e_acute[..1]]), Some(2));
        // Whole bodies agree with the standard library, cut anywhere.
        let body = "xé€😀y\u{7ff}".as_bytes();
        for bad in [None, Some(3usize), Some(6)] {
            let mut body = body.to_vec();
            if let Some(at) = bad {
                body[at] = 0xFF;
            }
            let want = std::str::from_utf8(&body)
                .err()
                .map(|e| e.valid_up_to() as u64);
            for cut in 0..body.len() {
                assert_eq!(bad_at(&[&body[..cut], &body[cut..]]), want, "{bad:?} {cut}");
            }
        }
    }

    #[test]
    fn the_preview_is_the_head_only() {
        let mut seen = BodySeen::default();
        seen.take(&vec![b'x'; 10_000]);
        let shown = seen.preview();
        assert!(shown.len() < 600 && shown.ends_with("..."), "{shown}");
        assert!(seen.any_text);
    }
}
