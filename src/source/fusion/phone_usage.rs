//! One `phone_usage` answer, `{"phoneUsages":[...],"next":...}`, decoded as its body arrives.
//!
//! A real Fusion group answers `phone_usage` in one body of about 200 bytes a number (190 MiB
//! for a million) with no paging to ask for. The body's chunks go through the source's
//! [`ItemScanner`], which hands over each item whole; each is read into the borrowed
//! `PhoneUsage` and turned into an entry (or a rejection) at once, so only the entries and
//! the tail of an item cut by a chunk's end are held, never the body.

use serde_json::Value;

use super::Parser;
use crate::source::json_items::{ItemScanner, Piece, ScanError, Scanned};

/// The page's list, and the one other key it reads.
const LIST_KEY: &str = "phoneUsages";
const FIELDS: &[&str] = &["next"];

/// What a whole `phone_usage` answer said besides its items.
pub(super) struct UsagePage {
    /// Whether it held a `phoneUsages` array (null or absent is no list); `None` when the
    /// answer was JSON, but not an object.
    pub(super) listed: Option<bool>,
    pub(super) next: Option<Value>,
}

/// One answer being decoded.
pub(super) struct UsageDecoder {
    scanner: ItemScanner,
    next: Option<Value>,
    /// The first reason the body was refused; what follows it is still read (to count it
    /// against the cap and check its UTF-8, as for a body read whole), not decoded.
    failed: Option<ScanError>,
}

impl UsageDecoder {
    pub(super) fn new() -> UsageDecoder {
        UsageDecoder {
            scanner: ItemScanner::new(LIST_KEY, FIELDS),
            next: None,
            failed: None,
        }
    }

    /// The next chunk of the body: its whole items go to `parser`.
    pub(super) fn feed(&mut self, parser: &mut Parser, chunk: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        let next = &mut self.next;
        if let Err(e) = self.scanner.feed(chunk, |piece| take(parser, next, piece)) {
            self.failed = Some(e);
        }
    }

    /// The body has ended: the page, or why the body is not one.
    pub(super) fn finish(self, parser: &mut Parser) -> Result<UsagePage, ScanError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut next = self.next;
        let scanned = self
            .scanner
            .finish(|piece| take(parser, &mut next, piece))?;
        let listed = match scanned {
            Scanned::NotAnObject => None,
            Scanned::Object { listed } => Some(listed),
        };
        Ok(UsagePage { listed, next })
    }
}

/// A piece of the page: an item goes to `parser`, the value of `next` is kept.
fn take(parser: &mut Parser, next: &mut Option<Value>, piece: Piece<'_>) -> serde_json::Result<()> {
    match piece {
        Piece::Item(item) => parser.usage_item(item),
        Piece::Field(_, value) => {
            *next = serde_json::from_slice::<Option<Value>>(value)?;
            Ok(())
        }
    }
}
