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

/// Where a read's digest stood along the way: after each answer, and after each MiB of a long
/// body. A read that follows another's trail knows at the first checkpoint that differs that
/// it reads something else, so a reader that only digests can stop there and decode instead,
/// having read twice only what came before the change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnswerTrail(Vec<[u8; 32]>);

impl AnswerTrail {
    /// The trail as the state database keeps it: the checkpoints, end to end.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.concat()
    }

    /// A trail the state database kept; `None` if it is not whole checkpoints.
    pub fn from_bytes(bytes: &[u8]) -> Option<AnswerTrail> {
        let (checkpoints, rest) = bytes.as_chunks::<32>();
        rest.is_empty().then(|| AnswerTrail(checkpoints.to_vec()))
    }
}

/// Body bytes between two checkpoints of one long answer.
const CHECKPOINT_BYTES: u64 = 1 << 20;

/// Builds an [`AnswerDigest`] answer by answer. Each answer is framed (URL and status before,
/// body length after), so that no two different sequences of answers feed the same bytes.
#[derive(Clone, Default)]
pub struct AnswerHasher {
    sha: Sha256,
    /// Bytes of the body being fed.
    body_len: u64,
    trail: Vec<[u8; 32]>,
    /// The trail being followed, and whether this read has left it.
    following: Option<AnswerTrail>,
    diverged: bool,
}

impl AnswerHasher {
    /// A hasher that compares each checkpoint with `trail`'s as it goes: see
    /// [`Self::diverged`].
    pub fn following(trail: AnswerTrail) -> AnswerHasher {
        AnswerHasher {
            following: Some(trail),
            ..AnswerHasher::default()
        }
    }

    /// Whether a checkpoint so far differed from the trail followed (or outran it): the read
    /// is not the one the trail is of.
    pub fn diverged(&self) -> bool {
        self.diverged
    }

    /// Starts an answer to `url` with `status`; its body follows through [`Self::body`].
    pub fn start(&mut self, url: &str, status: u16) {
        self.sha.update((url.len() as u64).to_le_bytes());
        self.sha.update(url.as_bytes());
        self.sha.update(status.to_le_bytes());
        self.body_len = 0;
    }

    /// The next bytes of the current answer's body.
    pub fn body(&mut self, mut bytes: &[u8]) {
        // Checkpoints at fixed offsets of the body, wherever its chunks happen to end.
        while !bytes.is_empty() {
            let room = CHECKPOINT_BYTES - self.body_len % CHECKPOINT_BYTES;
            let take = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            self.sha.update(&bytes[..take]);
            self.body_len += take as u64;
            bytes = &bytes[take..];
            if self.body_len.is_multiple_of(CHECKPOINT_BYTES) {
                self.checkpoint();
            }
        }
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
        self.checkpoint();
    }

    /// One whole answer.
    pub fn answer(&mut self, url: &str, status: u16, body: &[u8]) {
        self.start(url, status);
        self.body(body);
        self.end();
    }

    /// The checkpoints so far.
    pub fn trail(&self) -> AnswerTrail {
        AnswerTrail(self.trail.clone())
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

    fn checkpoint(&mut self) {
        let here: [u8; 32] = self.sha.clone().finalize().into();
        if let Some(AnswerTrail(followed)) = &self.following {
            self.diverged |= followed.get(self.trail.len()) != Some(&here);
        }
        self.trail.push(here);
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

#[cfg(test)]
mod trail_tests {
    use super::*;
    use proptest::prelude::*;

    fn read(
        answers: &[(&str, Vec<u8>)],
        cuts: &[usize],
        follow: Option<AnswerTrail>,
    ) -> AnswerHasher {
        let mut hasher = follow.map_or_else(AnswerHasher::default, AnswerHasher::following);
        for (url, body) in answers {
            hasher.start(url, 200);
            let mut rest = body.as_slice();
            for cut in cuts {
                let (chunk, tail) = rest.split_at((*cut).min(rest.len()));
                hasher.body(chunk);
                rest = tail;
            }
            hasher.body(rest);
            hasher.end();
        }
        hasher
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The trail does not depend on how the bodies were cut, a read follows its own trail
        /// to the end, and a read with one byte changed leaves it at the checkpoint of that
        /// byte, no later.
        #[test]
        fn a_read_leaves_a_trail_at_the_first_difference(
            sizes in prop::collection::vec(0usize..3_000_000, 1..4),
            cuts in prop::collection::vec(0usize..1_500_000, 0..4),
            flip in any::<prop::sample::Index>(),
        ) {
            let answers: Vec<(&str, Vec<u8>)> = sizes
                .iter()
                .enumerate()
                .map(|(i, n)| (["a", "b", "c", "d"][i], (0..*n).map(|b| b as u8).collect()))
                .collect();
            let whole = read(&answers, &[], None);
            let cut = read(&answers, &cuts, None);
            prop_assert_eq!(whole.trail(), cut.trail());
            let trail = whole.trail();
            let again = read(&answers, &cuts, Some(trail.clone()));
            prop_assert!(!again.diverged());
            prop_assert_eq!(again.trail(), trail.clone());

            let total: usize = sizes.iter().sum();
            prop_assume!(total > 0);
            let mut at = flip.index(total);
            let mut changed = answers.clone();
            let (answer, offset) = changed
                .iter_mut()
                .enumerate()
                .find_map(|(i, (_, body))| {
                    if at < body.len() { Some((i, at)) } else { at -= body.len(); None }
                })
                .expect("in range");
            changed[answer].1[offset] ^= 1;
            // Checkpoints before the changed byte: those of whole earlier answers, and those
            // of the changed answer's whole MiBs before it.
            let before: usize = sizes[..answer]
                .iter()
                .map(|n| n / CHECKPOINT_BYTES as usize + 1)
                .sum::<usize>()
                + offset / CHECKPOINT_BYTES as usize;
            let mut follower = AnswerHasher::following(trail.clone());
            for (i, (url, body)) in changed.iter().enumerate() {
                follower.start(url, 200);
                for chunk in body.chunks(65_536) {
                    follower.body(chunk);
                    let seen = follower.trail.len();
                    prop_assert_eq!(follower.diverged(), seen > before, "answer {}", i);
                }
                follower.end();
            }
            prop_assert!(follower.diverged());
            prop_assert_eq!(&follower.trail().0[..before], &trail.0[..before]);
        }
    }
}
