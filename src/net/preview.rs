//! What a message shows of an answer: its start, cut to log size, on one line.
//!
//! An upstream or a device may answer with megabytes, binary, or text with line breaks and
//! terminal escapes. A log line must stay one line that cannot pass for dialsync's own, and an
//! error must not copy a huge answer to say that it was wrong.

/// An error body, cut to a size fit for a log line.
pub fn truncate(body: &str) -> String {
    const MAX: usize = 500;
    match body.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &body[..at]),
        None => body.to_string(),
    }
}

/// Bytes an error message shows at most of an answer (before cutting to log size).
const PREVIEW_BYTES: usize = 2048;

/// The start of `bytes` as text for a message, cut to log size; bytes that are not UTF-8
/// show as U+FFFD.
pub fn preview_bytes(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(PREVIEW_BYTES)];
    // One log line per event: an answer's line breaks (or terminal escapes) must not start
    // lines of their own in the log, where they could pass for dialsync's.
    let mut shown = String::with_capacity(head.len());
    for c in String::from_utf8_lossy(head).chars() {
        match c {
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            '\t' => shown.push_str("\\t"),
            c if c.is_control() => shown.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => shown.push(c),
        }
    }
    let text = truncate(&shown);
    if head.len() < bytes.len() && !text.ends_with("...") {
        format!("{text}...")
    } else {
        text
    }
}

/// A JSON value as text for a message, cut to log size, without serialising all of it
/// (an item may hold a string of megabytes).
pub fn preview_json(value: &serde_json::Value) -> String {
    /// A writer that takes [`PREVIEW_BYTES`] and then refuses, which stops serde_json.
    struct Head(Vec<u8>);
    impl std::io::Write for Head {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let room = PREVIEW_BYTES + 1 - self.0.len();
            if room == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            let take = buf.len().min(room);
            self.0.extend_from_slice(&buf[..take]);
            Ok(take)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut head = Head(Vec::new());
    // Err only when the value is longer than the preview: what was written is what is shown.
    let _ = serde_json::to_writer(&mut head, value);
    preview_bytes(&head.0)
}

/// Why `body` is not a `T`: not UTF-8, not JSON at all, or JSON of another shape, with
/// serde_json's reason (line and column).
pub fn json_failure(body: &[u8], error: &serde_json::Error) -> String {
    let not_utf8_at = std::str::from_utf8(body)
        .err()
        .map(|bad| bad.valid_up_to() as u64);
    let blank = body.iter().all(u8::is_ascii_whitespace);
    json_failure_seen(not_utf8_at, blank, error.classify(), error)
}

/// [`json_failure`] for a body decoded as it arrived, which is not at hand whole: where its
/// first byte that is not UTF-8 was, if any, whether it was all whitespace, and the kind of
/// failure with its reason.
pub fn json_failure_seen(
    not_utf8_at: Option<u64>,
    blank: bool,
    category: serde_json::error::Category,
    error: &dyn std::fmt::Display,
) -> String {
    use serde_json::error::Category;
    if let Some(at) = not_utf8_at {
        return format!(
            "the answer is not valid UTF-8 (a byte that is not UTF-8 at offset {at}): {error}"
        );
    }
    match category {
        Category::Data => format!("the answer is not of the documented shape: {error}"),
        Category::Eof if blank => "the answer is empty, not JSON".to_string(),
        Category::Syntax | Category::Eof | Category::Io => {
            format!("the answer is not valid JSON: {error}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bodies_are_cut() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(600);
        assert_eq!(truncate(&long).chars().count(), 503);
    }

    #[test]
    fn previews_look_at_the_start_only() {
        let huge = format!("[\"{}\"]", "x".repeat(1_000_000));
        let text = preview_bytes(huge.as_bytes());
        assert!(text.len() < 600, "{}", text.len());
        assert!(text.ends_with("..."));
        let value: serde_json::Value = serde_json::from_str(&huge).expect("json");
        let text = preview_json(&value);
        assert!(text.starts_with("[\"xxx") && text.len() < 600, "{text}");
        assert_eq!(preview_json(&serde_json::json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(preview_bytes(b"ab\xFFcd"), "ab\u{FFFD}cd");
        assert_eq!(preview_bytes(b"a\nb\r\x1b[1m"), r"a\nb\r\u{1b}[1m");
    }

    #[test]
    fn json_failures_say_what_is_wrong() {
        let why = |body: &[u8]| {
            let e = serde_json::from_slice::<serde_json::Value>(body).unwrap_err();
            json_failure(body, &e)
        };
        assert!(
            why(b"<html>").contains("not valid JSON"),
            "{}",
            why(b"<html>")
        );
        assert!(why(b"").contains("empty"));
        assert!(why(b"{\"a\":\"\xFF\"}")
            .contains("not valid UTF-8 (a byte that is not UTF-8 at offset 6)"));
        let e = serde_json::from_slice::<Vec<u32>>(b"{}").unwrap_err();
        assert!(json_failure(b"{}", &e).contains("not of the documented shape"));
    }
}
