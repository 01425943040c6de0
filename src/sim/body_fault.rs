//! Faults in the body of a list answer, the same for every upstream emulator: a page that is
//! huge, not JSON, dripping, not UTF-8 or of another shape, so that every source meets every
//! way a proxy or a buggy release can spoil an answer that says 200.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::time::Duration;

use super::Conn;

/// A fault in the body of a list answer, the same for every upstream emulator: the emulator
/// builds the page it would have answered, and [`BodyFault::answer`] spoils it. Status 200
/// and `Content-Type: application/json` in every case, as a proxy or a buggy release would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyFault {
    /// The documented page with one more page-level field, `padding`, a string of this many
    /// bytes: valid JSON of the right shape, only huge.
    Padded(usize),
    /// This many bytes of an HTML error page: not JSON at all.
    NotJson(usize),
    /// The documented page (headers included), trickled `chunk` bytes at a time with `pause`
    /// before each write: an answer that keeps coming but never ends in time.
    Drip { chunk: usize, pause: Duration },
    /// The documented page with two bytes that are not UTF-8 (`FF FE`) at the start of the
    /// first string value inside the list.
    InvalidUtf8,
    /// Valid JSON, but not of the documented shape.
    Shape(WrongShape),
}

/// How a [`BodyFault::Shape`] answer departs from the documented page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrongShape {
    /// The list is an object keyed by position (`{"0": {...}, "1": {...}}`), not an array.
    ListAsObject,
    /// The items' number fields are JSON integers (digits only), not strings.
    NumbersAsIntegers,
    /// The page has no list field at all.
    MissingList,
    /// The answer is the bare array of items, where the page object was documented.
    ArrayForPage,
}

/// The list a page holds: where it is and which item fields are phone numbers.
pub(crate) struct PageShape<'a> {
    pub list_key: &'a str,
    pub number_keys: &'a [&'a str],
}

impl BodyFault {
    /// The answer to a list request whose documented answer is `page`. A drip is set on
    /// `conn`, the connection the answer goes out on.
    pub(crate) fn answer(&self, page: Value, shape: &PageShape<'_>, conn: &Conn) -> Response {
        let body = match self {
            BodyFault::Padded(bytes) => padded(&page, *bytes),
            BodyFault::NotJson(bytes) => not_json(*bytes),
            BodyFault::Drip { chunk, pause } => {
                conn.drip(*chunk, *pause);
                serde_json::to_vec(&page).unwrap_or_default()
            }
            BodyFault::InvalidUtf8 => {
                let mut body = serde_json::to_vec(&page).unwrap_or_default();
                let list = find(&body, format!("\"{}\":", shape.list_key).as_bytes()).unwrap_or(0);
                if let Some(at) = find(&body[list..], b"\":\"") {
                    let at = list + at + 3;
                    body.splice(at..at, [0xFF, 0xFE]);
                }
                body
            }
            BodyFault::Shape(wrong) => {
                serde_json::to_vec(&reshape(page, *wrong, shape)).unwrap_or_default()
            }
        };
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `page` serialised with a `padding` string of `bytes` bytes added: a field at page level
/// for an object, one more (string) item for an array.
fn padded(page: &Value, bytes: usize) -> Vec<u8> {
    let mut body = serde_json::to_vec(page).unwrap_or_default();
    let Some(close) = body.pop() else {
        return body;
    };
    body.reserve(bytes + 16);
    let empty = body.len() == 1;
    if !empty {
        body.push(b',');
    }
    if close == b'}' {
        body.extend_from_slice(b"\"padding\":");
    }
    body.push(b'"');
    body.resize(body.len() + bytes, b'x');
    body.push(b'"');
    body.push(close);
    body
}

/// `bytes` bytes of an HTML error page that goes on and on.
fn not_json(bytes: usize) -> Vec<u8> {
    const LINE: &[u8] = b"<p>502 Bad Gateway: the upstream answered garbage</p>\n";
    let mut body = Vec::with_capacity(bytes);
    body.extend_from_slice(b"<html><body>\n");
    while body.len() < bytes {
        let take = LINE.len().min(bytes - body.len());
        body.extend_from_slice(&LINE[..take]);
    }
    body
}

fn reshape(page: Value, wrong: WrongShape, shape: &PageShape<'_>) -> Value {
    let Value::Object(mut page) = page else {
        return page;
    };
    let key = shape.list_key;
    match wrong {
        WrongShape::ListAsObject => {
            if let Some(Value::Array(items)) = page.remove(key) {
                let keyed: Map<String, Value> = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| (i.to_string(), item))
                    .collect();
                page.insert(key.to_string(), Value::Object(keyed));
            }
            Value::Object(page)
        }
        WrongShape::NumbersAsIntegers => {
            if let Some(Value::Array(items)) = page.get_mut(key) {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    for field in shape.number_keys {
                        let digits: Option<u64> = item
                            .get(*field)
                            .and_then(Value::as_str)
                            .map(|s| s.chars().filter(char::is_ascii_digit).collect::<String>())
                            .and_then(|d| d.parse().ok());
                        if let Some(digits) = digits {
                            item.insert(field.to_string(), Value::from(digits));
                        }
                    }
                }
            }
            Value::Object(page)
        }
        WrongShape::MissingList => {
            page.remove(key);
            Value::Object(page)
        }
        WrongShape::ArrayForPage => page.remove(key).unwrap_or(Value::Array(Vec::new())),
    }
}
