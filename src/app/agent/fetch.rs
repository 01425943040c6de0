//! The first phase of a cycle: every source fetched at once, each within its own timeout, and
//! for one that failed, its last good snapshot standing in. A source that suddenly answers
//! with nothing is kept out of the snapshots, so the plan blocks instead of deleting.

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::mode::Mode;
use super::report::{CycleReport, SourceReport, SourceState};
use super::setup::Agent;
use super::steady;
use crate::app::clock::now_unix_ms;
use crate::net::answer_digest::{AnswerDigest, AnswerTrail};
use crate::resolve::Entry;
use crate::source::{Fetched, LastAnswer, Rejected, SourceError};
use crate::store::{SnapshotAnswer, SnapshotSummary, Store, StoreError};

/// The digest of the answer `summary`'s snapshot was decoded from, if known.
fn known_answer(summary: Option<&SnapshotSummary>) -> Option<&str> {
    summary.and_then(|s| s.answer_digest.as_deref())
}

/// One source's entries for this cycle: in hand, or its snapshot in the state database (the
/// source answered the very bytes the snapshot was decoded from), read only if the cycle needs
/// the entries: a steady cycle does not.
pub(super) enum Contribution {
    Entries(Vec<Entry>),
    Stored(String),
}

/// What the fetch phase hands on: each source's contribution, in source order; the sources
/// that came back empty after having had entries; the digest of every source's answer, when
/// each answered and has one.
pub(super) struct Gathered {
    pub contributions: Vec<Contribution>,
    pub emptied: Vec<String>,
    pub sources: Option<AnswerDigest>,
}

impl Gathered {
    /// Every source's entries, in source order: stored snapshots are read now.
    pub fn entries(self, store: &Store) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::new();
        for contribution in self.contributions {
            let more = match contribution {
                Contribution::Entries(more) => more,
                Contribution::Stored(name) => store.standing_snapshot(&name)?.entries,
            };
            // The first source's entries are taken, not copied: at a million entries a copy
            // held two of them at once.
            if entries.is_empty() {
                entries = more;
            } else {
                entries.extend(more);
            }
        }
        Ok(entries)
    }
}

impl Agent {
    /// Fetches every source at once, each within its own timeout; a source whose answer is
    /// the one its snapshot (in `known`) was decoded from may say so rather than decode it
    /// again.
    pub(super) async fn fetch_all(
        &mut self,
        known: &[SnapshotSummary],
    ) -> Vec<(Result<Fetched, SourceError>, u64)> {
        let settings = self.config.sources.clone();
        let context = steady::context(&self.config.digest);
        let mut tasks = JoinSet::new();
        for (position, (mut source, settings)) in std::mem::take(&mut self.sources)
            .into_iter()
            .zip(settings)
            .enumerate()
        {
            let summary = known.iter().find(|s| s.source == settings.name);
            let last = LastAnswer {
                context: context.clone(),
                digest: known_answer(summary)
                    .map(|known| AnswerDigest::from_hex(known.to_string())),
                trail: summary
                    .and_then(|s| AnswerTrail::from_bytes(&s.answer_trail))
                    .unwrap_or_default(),
            };
            tasks.spawn(async move {
                let started = Instant::now();
                // Each source enforces its own timeout; this one only guards against a source
                // that does not (a stuck file system), with room for the source's own message.
                let limit = settings.timeout + Duration::from_secs(5);
                let result = match tokio::time::timeout(limit, source.fetch_since(&last)).await {
                    Ok(result) => result,
                    Err(_) => Err(SourceError::Timeout {
                        source_name: settings.name.clone(),
                        timeout: settings.timeout,
                    }),
                };
                (
                    position,
                    source,
                    result,
                    started.elapsed().as_millis() as u64,
                )
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(one) => done.push(one),
                // A panicking source is a bug; the sources must come back regardless, so the
                // set is rebuilt from the config below.
                Err(error) => tracing::error!(%error, "a source fetch panicked"),
            }
        }
        done.sort_by_key(|(position, ..)| *position);
        let mut results = Vec::with_capacity(self.config.sources.len());
        if done.len() == self.config.sources.len() {
            for (_, source, result, ms) in done {
                self.sources.push(source);
                results.push((result, ms));
            }
        } else {
            match self.config.sources() {
                Ok(sources) => self.sources = sources,
                Err(error) => tracing::error!(%error, "cannot rebuild the sources"),
            }
            let mut done = done.into_iter().peekable();
            for (position, settings) in self.config.sources.iter().enumerate() {
                match done.next_if(|(p, ..)| *p == position) {
                    Some((_, _, result, ms)) => results.push((result, ms)),
                    None => results.push((
                        Err(SourceError::Config {
                            source_name: settings.name.clone(),
                            message: "the fetch panicked (a bug: please report it)".into(),
                        }),
                        0,
                    )),
                }
            }
        }
        results
    }

    /// Turns the fetch results into this cycle's entries, in source order: fresh answers
    /// (saved as the new snapshots), last good snapshots for failed sources, and the names of
    /// sources that came back empty after having had entries. `summaries` are the snapshots
    /// as they were before the fetch.
    pub(super) fn stand_in(
        &mut self,
        fetched: Vec<(Result<Fetched, SourceError>, u64)>,
        summaries: &[SnapshotSummary],
        mode: &Mode,
        report: &mut CycleReport,
    ) -> Result<Gathered, StoreError> {
        let now = now_unix_ms() / 1000;
        let mut contributions = Vec::new();
        let mut emptied = Vec::new();
        let mut answers: Vec<Option<AnswerDigest>> = Vec::new();
        for ((result, fetch_ms), settings) in fetched.into_iter().zip(&self.config.sources) {
            let summary = summaries.iter().find(|s| s.source == settings.name);
            let mut source = SourceReport {
                name: settings.name.clone(),
                kind: settings.kind.name(),
                state: SourceState::Fresh,
                entries: 0,
                rejected: Vec::new(),
                error: None,
                last_good_unix: summary.map(|s| s.fetched_at_unix),
                fetch_ms,
            };
            let mut answer_digest = None;
            // An answer whose every item was rejected counts as a failed fetch; its rejected
            // items are still reported, so the operator sees why.
            let result = result.and_then(|fetched| match fetched {
                Fetched::Decoded(answer) => match answer.usable(&settings.name) {
                    Ok(()) => Ok(Fetched::Decoded(answer)),
                    Err(error) => {
                        source.rejected = answer.rejected;
                        Err(error)
                    }
                },
                unchanged => Ok(unchanged),
            });
            match result {
                Ok(Fetched::Unchanged(digest)) => {
                    // The snapshot is this answer's, rejected items and all (the source
                    // compared the digest the summary gave it).
                    source.entries = summary.map_or(0, |s| s.entry_count as usize);
                    source.rejected = self
                        .store
                        .snapshot_rejected(&settings.name)?
                        .into_iter()
                        .map(|(item, reason)| Rejected { item, reason })
                        .collect();
                    if mode != &Mode::DryRun {
                        self.store
                            .touch_snapshot(&settings.name, now, digest.as_str())?;
                        source.last_good_unix = Some(now);
                    }
                    contributions.push(Contribution::Stored(settings.name.clone()));
                    answer_digest = Some(digest);
                }
                Ok(Fetched::Decoded(answer)) => {
                    source.rejected = answer.rejected;
                    source.entries = answer.entries.len();
                    let was_full = summary.is_some_and(|s| s.entry_count > 0);
                    if answer.entries.is_empty() && was_full && !settings.allow_empty {
                        // Kept out of the snapshot until an operator forces the plan: a
                        // saved empty snapshot would unblock the next cycle by itself.
                        source.state = SourceState::Emptied;
                        emptied.push(settings.name.clone());
                    } else if mode != &Mode::DryRun {
                        // The very answer the snapshot was decoded from (a source that decodes as
                        // it reads cannot tell before): only its time changes. Digesting a
                        // million entries to find that out was a seventh of such a cycle.
                        let same = answer
                            .answer
                            .as_ref()
                            .filter(|a| Some(a.as_str()) == known_answer(summary));
                        if let Some(same) = same {
                            self.store
                                .touch_snapshot(&settings.name, now, same.as_str())?;
                        } else {
                            let rejected: Vec<(&str, &str)> = source
                                .rejected
                                .iter()
                                .map(|r| (r.item.as_str(), r.reason.as_str()))
                                .collect();
                            let trail = answer.trail.to_bytes();
                            let saved = SnapshotAnswer {
                                digest: answer.answer.as_ref().map(AnswerDigest::as_str),
                                trail: &trail,
                                rejected: &rejected,
                            };
                            self.store.save_snapshot_of(
                                &settings.name,
                                now,
                                &answer.entries,
                                saved,
                            )?;
                        }
                        source.last_good_unix = Some(now);
                    }
                    answer_digest = answer.answer;
                    contributions.push(Contribution::Entries(answer.entries));
                }
                Err(error) => {
                    tracing::warn!(source = %settings.name, %error, "source failed");
                    source.error = Some(error.to_string());
                    match self.store.snapshot(&settings.name)? {
                        Some(snapshot) => {
                            source.state = SourceState::Stale;
                            source.entries = snapshot.entries.len();
                            contributions.push(Contribution::Entries(snapshot.entries));
                        }
                        None => source.state = SourceState::Failed,
                    }
                }
            }
            if source.state != SourceState::Fresh {
                answer_digest = None;
            }
            answers.push(answer_digest);
            report.sources.push(source);
        }
        let context = steady::context(&self.config.digest);
        Ok(Gathered {
            contributions,
            emptied,
            sources: steady::sources_digest(answers.iter().map(Option::as_ref), &context),
        })
    }
}
