//! Upstream sources of desired state. Each source turns its upstream's items into [`Entry`]s
//! and rejects bad items one by one with a reason, so one typo never costs the other numbers.

pub mod apio;
pub mod body_seen;
pub mod file;
pub mod fusion;
pub mod http;
pub mod json_items;
pub mod livecloud;
pub mod rendered_tags;
pub mod tag;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Classify, ErrorClass};
use crate::net::answer_digest::{AnswerDigest, AnswerHasher, AnswerTrail};
use crate::resolve::Entry;

/// The limits every source applies to the items it accepts (`[dialplan]` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemLimits {
    /// Ranges larger than this are refused as suspicious (`max_range_size`).
    pub max_range_size: u64,
    /// Longest tag accepted (`max_tag_len`).
    pub max_tag_len: usize,
}

impl Default for ItemLimits {
    fn default() -> Self {
        ItemLimits {
            max_range_size: 1_000_000,
            max_tag_len: crate::dialplan::rule::DEFAULT_MAX_TAG_LEN,
        }
    }
}

/// An upstream item that was refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Where the item is: `line 7`, `tenant=acme number=+32...`.
    pub item: String,
    pub reason: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.item, self.reason)
    }
}

/// What one fetch of an upstream yields: the entries accepted and the items refused.
#[derive(Debug, Default)]
pub struct SourceEntries {
    pub entries: Vec<Entry>,
    pub rejected: Vec<Rejected>,
    /// The digest of the answers they were decoded from (see [`LastAnswer`]), and its trail.
    pub answer: Option<AnswerDigest>,
    pub trail: AnswerTrail,
}

/// What the agent knew of a source's last answer when it asks again.
#[derive(Clone, Debug, Default)]
pub struct LastAnswer {
    /// What decides what an answer decodes into besides its bytes (the program's version,
    /// the configuration): it keys the digest, so a new version or an edited config never
    /// takes an old decoding for its own.
    pub context: Vec<u8>,
    /// The digest of the answer the stored snapshot was decoded from, and its trail.
    pub digest: Option<AnswerDigest>,
    pub trail: AnswerTrail,
}

/// A fetch's result.
#[derive(Debug)]
pub enum Fetched {
    Decoded(SourceEntries),
    /// Byte for byte the answer [`LastAnswer::digest`] names, so not decoded again: the
    /// snapshot decoded from it stands. A distinct variant rather than an empty list, which
    /// would read as a source that emptied.
    Unchanged(AnswerDigest),
}

impl Fetched {
    /// The entries of a fetch given no digest to compare with, which always decodes.
    pub(crate) fn into_decoded(self) -> SourceEntries {
        match self {
            Fetched::Decoded(entries) => entries,
            Fetched::Unchanged(_) => unreachable!("a fetch with no last answer decodes"),
        }
    }
}

impl SourceEntries {
    /// These entries, stamped with the answer they were decoded from: its trail, and its
    /// digest keyed by `context` (see [`LastAnswer`]).
    pub(crate) fn decoded_from(mut self, answer: AnswerHasher, context: &[u8]) -> SourceEntries {
        self.trail = answer.trail();
        self.answer = Some(answer.finish(context));
        self
    }

    /// Drops every entry that repeats an earlier one exactly (the same numbers with the same
    /// tag), keeping the first: an upstream listing a number twice means it once.
    ///
    /// Sorting positions rather than filling a hash set while decoding: at a million entries
    /// the set alone took about 100 MB, more than the entries' own coverage and tags.
    pub fn drop_exact_duplicates(&mut self) {
        let entries = &self.entries;
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            let (x, y) = (&entries[a], &entries[b]);
            x.coverage
                .cmp(&y.coverage)
                .then_with(|| x.tag.cmp(&y.tag))
                .then(a.cmp(&b))
        });
        let mut keep = vec![true; entries.len()];
        for pair in order.windows(2) {
            let (first, next) = (&entries[pair[0]], &entries[pair[1]]);
            if first.coverage == next.coverage && first.tag == next.tag {
                keep[pair[1]] = false;
            }
        }
        let mut keep = keep.into_iter();
        self.entries.retain(|_| keep.next().unwrap_or(true));
    }
}

/// A whole fetch failed: nothing from this answer can be trusted, so the agent uses the
/// source's last good snapshot instead (DESIGN.md §6). Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URL in the configuration cannot be used.
    #[error("source {source_name}: bad URL {url:?}: {reason}")]
    BadUrl {
        source_name: String,
        url: String,
        reason: String,
    },
    /// The HTTP client could not be built (TLS roots, ...).
    #[error("source {source_name}: {error}")]
    Client {
        source_name: String,
        #[source]
        error: crate::net::client::ClientError,
    },
    /// Connection refused or reset, DNS, a request timeout: after the retries.
    #[error("source {source_name}: {method} {url}: {reason}")]
    Http {
        source_name: String,
        method: &'static str,
        url: String,
        reason: String,
    },
    /// The whole fetch took longer than the source's `timeout`.
    #[error(
        "source {source_name}: timed out after {timeout:?}: the whole fetch (logins, every \
         page and retry) took longer than the source's timeout"
    )]
    Timeout {
        source_name: String,
        timeout: std::time::Duration,
    },
    /// 5xx or 429 still answered when the retries ran out.
    #[error("source {source_name}: {method} {url}: HTTP {status} after retries: {body}")]
    Server {
        source_name: String,
        method: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    /// An answer larger than the configured cap.
    #[error("source {source_name}: {url}: answer larger than max_body ({max} bytes)")]
    TooLarge {
        source_name: String,
        url: String,
        max: usize,
    },
    /// A 4xx the source cannot act on (400, 403, 404 outside the list endpoints...).
    #[error("source {source_name}: {method} {url}: HTTP {status}: {message}")]
    Refused {
        source_name: String,
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    /// Credentials refused, after at most one refresh and one new login.
    #[error("source {source_name}: not authorised: {message}")]
    Unauthorized {
        source_name: String,
        message: String,
    },
    /// The configuration cannot work as written (2FA demanded, a template the feed cannot fill).
    #[error("source {source_name}: {message}")]
    Config {
        source_name: String,
        message: String,
    },
    /// The answer is not what the documented API returns (not JSON, a missing list field).
    #[error("source {source_name}: {url}: unreadable answer: {reason}")]
    BadBody {
        source_name: String,
        url: String,
        reason: String,
    },
    /// A page chain that broke off or looped: a partial list is never used.
    #[error("source {source_name}: {url}: broken pagination: {reason}")]
    Pagination {
        source_name: String,
        url: String,
        reason: String,
    },
    /// An answer with items, every one of them rejected: a changed format or a broken
    /// export, not an upstream that has no numbers any more. Taken as a failed fetch so that
    /// the last good snapshot stands; as an empty answer it could delete every route of the
    /// source where `allow_empty` is set.
    #[error(
        "source {source_name}: every one of its {count} items was rejected (the first: {first}); \
         the answer is not used"
    )]
    EveryItemRejected {
        source_name: String,
        count: usize,
        first: String,
    },
    /// A static file that cannot be read or has no `start,end,tag` header.
    #[error("source {source_name}: {error}")]
    File {
        source_name: String,
        #[source]
        error: file::FileError,
    },
}

impl Classify for SourceError {
    fn class(&self) -> ErrorClass {
        match self {
            // The upstream is down, slow, overloaded or answered something half-sent: the next
            // cycle may fare better, and meanwhile the last good snapshot stands in.
            SourceError::Http { .. }
            | SourceError::Timeout { .. }
            | SourceError::Server { .. }
            | SourceError::BadBody { .. }
            | SourceError::Pagination { .. }
            | SourceError::EveryItemRejected { .. } => ErrorClass::Transient,
            // Settings, credentials, rights or the body cap: someone must act first.
            SourceError::BadUrl { .. }
            | SourceError::Client { .. }
            | SourceError::TooLarge { .. }
            | SourceError::Refused { .. }
            | SourceError::Unauthorized { .. }
            | SourceError::Config { .. }
            | SourceError::File { .. } => ErrorClass::Fatal,
        }
    }
}

impl SourceEntries {
    /// The answer as the agent may use it: an error when it had items and every one was
    /// rejected (see [`SourceError::EveryItemRejected`]).
    pub fn usable(&self, source_name: &str) -> Result<(), SourceError> {
        match self.rejected.first() {
            Some(first) if self.entries.is_empty() => Err(SourceError::EveryItemRejected {
                source_name: source_name.to_string(),
                count: self.rejected.len(),
                first: format!("{}: {}", first.item, first.reason),
            }),
            _ => Ok(()),
        }
    }
}

impl SourceError {
    /// The configured name of the source that failed.
    pub fn source_name(&self) -> &str {
        match self {
            SourceError::BadUrl { source_name, .. }
            | SourceError::Client { source_name, .. }
            | SourceError::Http { source_name, .. }
            | SourceError::Timeout { source_name, .. }
            | SourceError::Server { source_name, .. }
            | SourceError::TooLarge { source_name, .. }
            | SourceError::Refused { source_name, .. }
            | SourceError::Unauthorized { source_name, .. }
            | SourceError::Config { source_name, .. }
            | SourceError::BadBody { source_name, .. }
            | SourceError::Pagination { source_name, .. }
            | SourceError::EveryItemRejected { source_name, .. }
            | SourceError::File { source_name, .. } => source_name,
        }
    }
}

/// A static file source: read anew on every fetch, so an edit takes effect on the next cycle.
#[derive(Debug)]
pub struct FileSource {
    name: String,
    path: PathBuf,
    limits: ItemLimits,
    /// `max_body`: a larger file is refused before it is read.
    max_body: usize,
}

impl FileSource {
    pub async fn fetch(&self) -> Result<SourceEntries, SourceError> {
        self.fetch_since(&LastAnswer::default()).await
    }

    /// [`Self::fetch`], the file's digest keyed by `last`'s context.
    pub async fn fetch_since(&self, last: &LastAnswer) -> Result<SourceEntries, SourceError> {
        let failed = |error| SourceError::File {
            source_name: self.name.clone(),
            error,
        };
        let shown = self.path.display().to_string();
        let read_failed = |source| {
            failed(file::FileError::Read {
                path: shown.clone(),
                source,
            })
        };
        // The size is checked before reading: the CSV is read whole, so a file the operator
        // never meant (a log, a dump) is refused rather than loaded.
        let size = tokio::fs::metadata(&self.path)
            .await
            .map_err(read_failed)?
            .len();
        if size > self.max_body as u64 {
            return Err(failed(file::FileError::TooLarge {
                path: shown,
                size,
                max: self.max_body,
            }));
        }
        let bytes = tokio::fs::read(&self.path).await.map_err(|source| {
            failed(file::FileError::Read {
                path: shown.clone(),
                source,
            })
        })?;
        let mut answer = AnswerHasher::default();
        answer.answer(&shown, 0, &bytes);
        let entries =
            file::parse_csv(bytes.as_slice(), &self.name, &shown, self.limits).map_err(failed)?;
        Ok(entries.decoded_from(answer, &last.context))
    }
}

/// One configured upstream, whatever its kind: what the agent fetches each cycle.
#[derive(Debug)]
pub enum Source {
    Fusion(fusion::FusionSource),
    Apio(apio::ApioSource),
    LiveCloud(livecloud::LiveCloudSource),
    File(FileSource),
}

impl Source {
    pub fn fusion(config: fusion::FusionConfig) -> Result<Source, SourceError> {
        fusion::FusionSource::new(config).map(Source::Fusion)
    }

    pub fn apio(config: apio::ApioConfig) -> Result<Source, SourceError> {
        apio::ApioSource::new(config).map(Source::Apio)
    }

    pub fn livecloud(config: livecloud::LiveCloudSourceConfig) -> Result<Source, SourceError> {
        livecloud::LiveCloudSource::new(config).map(Source::LiveCloud)
    }

    pub fn file(name: &str, path: &Path, limits: ItemLimits, max_body: usize) -> Source {
        Source::File(FileSource {
            name: name.to_string(),
            path: path.to_path_buf(),
            limits,
            max_body,
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Source::Fusion(s) => s.name(),
            Source::Apio(s) => s.name(),
            Source::LiveCloud(s) => s.name(),
            Source::File(s) => &s.name,
        }
    }

    /// Fetches the whole desired state of this source, within its configured timeout.
    pub async fn fetch(&mut self) -> Result<SourceEntries, SourceError> {
        self.fetch_since(&LastAnswer::default())
            .await
            .map(Fetched::into_decoded)
    }

    /// Fetches the whole desired state of this source, within its configured timeout, and
    /// decodes it unless it is the answer `last` names. APIO, and Fusion's `phone_usage`,
    /// first only digest the answer; the others decode as they read and say
    /// [`Fetched::Decoded`] with the digest, equal or not.
    pub async fn fetch_since(&mut self, last: &LastAnswer) -> Result<Fetched, SourceError> {
        match self {
            Source::Fusion(s) => s.fetch_since(last).await,
            Source::Apio(s) => s.fetch_since(last).await,
            Source::LiveCloud(s) => s.fetch_since(last).await.map(Fetched::Decoded),
            Source::File(s) => s.fetch_since(last).await.map(Fetched::Decoded),
        }
    }
}
