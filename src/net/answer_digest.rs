//! The digest of everything an upstream or a device answered in one read, byte for byte.
//!
//! A cycle whose answers are the same bytes as those of the last cycle that found nothing to
//! do would recompute the same mapping, the same rules and the same empty plan: the agent
//! compares these digests to know that without decoding or recomputing anything. What is fed
//! is each answer's URL, status and body, in the order the reader used them, so two reads
//! are equal only when every request was answered identically, page by page.

use sha2::{Digest, Sha256};

/// The SHA-256 of a read's answers, hex: what the state database keeps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AnswerDigest(String);

impl AnswerDigest {
    /// A digest as the state database kept it.
    pub fn from_hex(hex: String) -> AnswerDigest {
        AnswerDigest(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Builds an [`AnswerDigest`] answer by answer. Each answer is framed (URL and status before,
/// body length after), so that no two different sequences of answers feed the same bytes.
#[derive(Clone, Default)]
pub struct AnswerHasher {
    sha: Sha256,
    /// Bytes of the body being fed.
    body_len: u64,
}

impl AnswerHasher {
    /// Starts an answer to `url` with `status`; its body follows through [`Self::body`].
    pub fn start(&mut self, url: &str, status: u16) {
        self.sha.update((url.len() as u64).to_le_bytes());
        self.sha.update(url.as_bytes());
        self.sha.update(status.to_le_bytes());
        self.body_len = 0;
    }

    /// The next bytes of the current answer's body.
    pub fn body(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.body_len += bytes.len() as u64;
    }

    /// The next field of the current answer's body, when the reader digests what it read out
    /// of an answer rather than its bytes: framed by its length, so fields cannot run into
    /// each other.
    pub fn field(&mut self, bytes: &[u8]) {
        self.body(&(bytes.len() as u64).to_le_bytes());
        self.body(bytes);
    }

    /// Ends the current answer.
    pub fn end(&mut self) {
        self.sha.update(self.body_len.to_le_bytes());
    }

    /// One whole answer.
    pub fn answer(&mut self, url: &str, status: u16, body: &[u8]) {
        self.start(url, status);
        self.body(body);
        self.end();
    }

    /// The digest of every answer fed, keyed by `context`: what else decides what the
    /// answers are decoded into (the program's version and its configuration).
    pub fn finish(self, context: &[u8]) -> AnswerDigest {
        let mut sha = Sha256::new();
        sha.update((context.len() as u64).to_le_bytes());
        sha.update(context);
        sha.update(self.sha.finalize());
        AnswerDigest(hex(&sha.finalize()))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(answers: &[(&str, u16, &[&[u8]])]) -> AnswerDigest {
        let mut hasher = AnswerHasher::default();
        for (url, status, chunks) in answers {
            hasher.start(url, *status);
            for chunk in *chunks {
                hasher.body(chunk);
            }
            hasher.end();
        }
        hasher.finish(b"v1")
    }

    #[test]
    fn equal_answers_cut_in_other_chunks_have_one_digest() {
        let whole = digest(&[("http://a/1", 200, &[b"{\"x\":1}"])]);
        let cut = digest(&[("http://a/1", 200, &[b"{\"x", b"", b"\":1}"])]);
        assert_eq!(whole, cut);
    }

    #[test]
    fn any_difference_in_url_status_body_framing_or_context_changes_the_digest() {
        let base = digest(&[("http://a/1", 200, &[b"ab"]), ("http://a/2", 200, &[b"c"])]);
        let others = [
            digest(&[("http://a/1", 200, &[b"ab"]), ("http://a/3", 200, &[b"c"])]),
            digest(&[("http://a/1", 200, &[b"ab"]), ("http://a/2", 404, &[b"c"])]),
            digest(&[("http://a/1", 200, &[b"ab"]), ("http://a/2", 200, &[b"d"])]),
            // The same bytes, split between the answers differently.
            digest(&[("http://a/1", 200, &[b"a"]), ("http://a/2", 200, &[b"bc"])]),
            digest(&[("http://a/1", 200, &[b"ab"])]),
        ];
        for other in &others {
            assert_ne!(&base, other);
        }
        let mut hasher = AnswerHasher::default();
        hasher.answer("http://a/1", 200, b"ab");
        hasher.answer("http://a/2", 200, b"c");
        assert_eq!(hasher.clone().finish(b"v1"), base);
        assert_ne!(hasher.finish(b"v2"), base);
    }
}
