//! The first phase of a cycle: every source fetched at once, each within its own timeout, and
//! for one that failed, its last good snapshot standing in. A source that suddenly answers
//! with nothing is kept out of the snapshots, so the plan blocks instead of deleting.

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::mode::Mode;
use super::report::{CycleReport, SourceReport, SourceState};
use super::setup::Agent;
use crate::app::clock::now_unix_ms;
use crate::resolve::Entry;
use crate::source::{SourceEntries, SourceError};
use crate::store::StoreError;

impl Agent {
    /// Fetches every source at once, each within its own timeout.
    pub(super) async fn fetch_all(&mut self) -> Vec<(Result<SourceEntries, SourceError>, u64)> {
        let settings = self.config.sources.clone();
        let mut tasks = JoinSet::new();
        for (position, (mut source, settings)) in std::mem::take(&mut self.sources)
            .into_iter()
            .zip(settings)
            .enumerate()
        {
            tasks.spawn(async move {
                let started = Instant::now();
                // Each source enforces its own timeout; this one only guards against a source
                // that does not (a stuck file system), with room for the source's own message.
                let limit = settings.timeout + Duration::from_secs(5);
                let result = match tokio::time::timeout(limit, source.fetch()).await {
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
    /// sources that came back empty after having had entries.
    pub(super) fn stand_in(
        &mut self,
        fetched: Vec<(Result<SourceEntries, SourceError>, u64)>,
        mode: &Mode,
        report: &mut CycleReport,
    ) -> Result<(Vec<Entry>, Vec<String>), StoreError> {
        let now = now_unix_ms() / 1000;
        let summaries = self.store.snapshot_sources()?;
        let mut entries = Vec::new();
        let mut emptied = Vec::new();
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
            // An answer whose every item was rejected counts as a failed fetch; its rejected
            // items are still reported, so the operator sees why.
            let result = result.and_then(|answer| match answer.usable(&settings.name) {
                Ok(()) => Ok(answer),
                Err(error) => {
                    source.rejected = answer.rejected;
                    Err(error)
                }
            });
            match result {
                Ok(answer) => {
                    source.rejected = answer.rejected;
                    source.entries = answer.entries.len();
                    let was_full = summary.is_some_and(|s| s.entry_count > 0);
                    if answer.entries.is_empty() && was_full && !settings.allow_empty {
                        // Kept out of the snapshot until an operator forces the plan: a
                        // saved empty snapshot would unblock the next cycle by itself.
                        source.state = SourceState::Emptied;
                        emptied.push(settings.name.clone());
                    } else if mode != &Mode::DryRun {
                        self.store
                            .save_snapshot(&settings.name, now, &answer.entries)?;
                        source.last_good_unix = Some(now);
                    }
                    // The first source's entries are taken, not copied: at a million entries
                    // a copy held two of them at once.
                    if entries.is_empty() {
                        entries = answer.entries;
                    } else {
                        entries.extend(answer.entries);
                    }
                }
                Err(error) => {
                    tracing::warn!(source = %settings.name, %error, "source failed");
                    source.error = Some(error.to_string());
                    match self.store.snapshot(&settings.name)? {
                        Some(snapshot) => {
                            source.state = SourceState::Stale;
                            source.entries = snapshot.entries.len();
                            entries.extend(snapshot.entries);
                        }
                        None => source.state = SourceState::Failed,
                    }
                }
            }
            report.sources.push(source);
        }
        Ok((entries, emptied))
    }
}
