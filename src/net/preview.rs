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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bodies_are_cut() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(600);
        assert_eq!(truncate(&long).chars().count(), 503);
    }
}
