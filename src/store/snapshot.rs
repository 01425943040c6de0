//! The last good snapshot of each source.
//!
//! A source that fails this cycle contributes the entries it gave the last time it answered
//! (DESIGN.md §6), so an upstream outage never turns into deletes on the SBC. A snapshot must
//! therefore come back exactly as it was saved: the same entries, in the same order (the
//! resolver ranks items by it), with the same provenance, or not at all.

use std::fmt::Write as _;
use std::sync::Arc;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{
    corrupt, int, opt_text, sql_err, text, to_sql_int, Store, StoreError, STORED_TAG_MAX_LEN,
};
use crate::dialplan::rule::Tag;
use crate::number::{Number, NumberRange, OpenPrefix};
use crate::resolve::{Coverage, Entry, Provenance};

/// A source's entries as last fetched successfully.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// When the source answered (seconds since the Unix epoch, as the caller's clock said).
    pub fetched_at_unix: i64,
    pub entries: Vec<Entry>,
}

/// What is known about a source's snapshot without loading it: enough for the empty-source
/// rule of §6 ("returns nothing while its last snapshot was non-empty") and for `/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotSummary {
    pub source: String,
    pub fetched_at_unix: i64,
    pub entry_count: u64,
    /// The digest of the answer it was decoded from, when known, and its trail.
    pub answer_digest: Option<String>,
    pub answer_trail: Vec<u8>,
}

/// What a snapshot was decoded from: the digest of the source's answers and the items they
/// refused (item, reason), kept so that the same answer need not be decoded again.
#[derive(Clone, Copy, Debug, Default)]
pub struct SnapshotAnswer<'a> {
    pub digest: Option<&'a str>,
    /// The checkpoints of the digest, end to end.
    pub trail: &'a [u8],
    pub rejected: &'a [(&'a str, &'a str)],
}

impl Store {
    /// Replaces `source`'s snapshot with `entries`, in one transaction. When `entries` equal
    /// the stored snapshot (same digest) only its time is updated.
    pub fn save_snapshot(
        &mut self,
        source: &str,
        fetched_at_unix: i64,
        entries: &[Entry],
    ) -> Result<(), StoreError> {
        self.save_snapshot_of(source, fetched_at_unix, entries, SnapshotAnswer::default())
    }

    /// [`Self::save_snapshot`], with what the entries were decoded from.
    pub fn save_snapshot_of(
        &mut self,
        source: &str,
        fetched_at_unix: i64,
        entries: &[Entry],
        answer: SnapshotAnswer<'_>,
    ) -> Result<(), StoreError> {
        let Store { conn, path, .. } = self;
        let count = to_sql_int(path, "snapshot entry count", entries.len() as u64)?;
        let digest = snapshot_digest(source, entries);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err(path, "cannot begin saving a snapshot"))?;
        let context = || format!("cannot save the snapshot of source {source:?}");
        let unchanged = tx
            .execute(
                "UPDATE source_snapshot SET fetched_at_unix = ?2, answer_digest = ?5,
                                            answer_trail = ?6
                 WHERE source = ?1 AND digest = ?3 AND entry_count = ?4",
                params![
                    source,
                    fetched_at_unix,
                    digest,
                    count,
                    answer.digest,
                    answer.trail
                ],
            )
            .map_err(|e| sql_err(path, context())(e))?
            == 1;
        if unchanged {
            save_rejected(&tx, source, answer.rejected).map_err(|e| sql_err(path, context())(e))?;
            return tx.commit().map_err(|e| sql_err(path, context())(e));
        }
        // Children first: letting ON DELETE CASCADE do it costs one foreign-key action per row.
        tx.execute(
            "DELETE FROM snapshot_entry WHERE snapshot_id =
                 (SELECT id FROM source_snapshot WHERE source = ?1)",
            [source],
        )
        .map_err(|e| sql_err(path, context())(e))?;
        tx.execute(
            "DELETE FROM snapshot_rejected WHERE snapshot_id =
                 (SELECT id FROM source_snapshot WHERE source = ?1)",
            [source],
        )
        .map_err(|e| sql_err(path, context())(e))?;
        tx.execute("DELETE FROM source_snapshot WHERE source = ?1", [source])
            .map_err(|e| sql_err(path, context())(e))?;
        tx.execute(
            "INSERT INTO source_snapshot (source, fetched_at_unix, entry_count, digest,
                                          answer_digest, answer_trail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                source,
                fetched_at_unix,
                count,
                digest,
                answer.digest,
                answer.trail
            ],
        )
        .map_err(|e| sql_err(path, context())(e))?;
        save_rejected(&tx, source, answer.rejected).map_err(|e| sql_err(path, context())(e))?;
        let snapshot_id = tx.last_insert_rowid();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO snapshot_entry (snapshot_id, seq, lo, hi, tag, item, item_source)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(|e| sql_err(path, context())(e))?;
            for (seq, entry) in entries.iter().enumerate() {
                let (lo, hi) = match entry.coverage {
                    Coverage::Range(range) => (range.lo().value(), Some(range.hi().value())),
                    Coverage::Prefix(prefix) => (prefix.digits().value(), None),
                };
                // At most 15 digits: always below i64::MAX.
                let (lo, hi) = (lo as i64, hi.map(|hi| hi as i64));
                let item_source =
                    (*entry.provenance.source != source).then_some(&*entry.provenance.source);
                insert
                    .execute(params![
                        snapshot_id,
                        seq as i64,
                        lo,
                        hi,
                        entry.tag.as_str(),
                        entry.provenance.item.text(),
                        item_source
                    ])
                    .map_err(|e| sql_err(path, format!("{}, entry {seq}", context()))(e))?;
            }
        }
        tx.commit().map_err(|e| sql_err(path, context())(e))
    }

    /// `source`'s last good snapshot, if one was saved. A damaged entry is an error naming the
    /// source and the entry: a partial snapshot would read as deletes.
    pub fn snapshot(&self, source: &str) -> Result<Option<Snapshot>, StoreError> {
        let path = &self.path;
        let context = || format!("cannot read the snapshot of source {source:?}");
        let header = self
            .conn
            .query_row(
                "SELECT id, fetched_at_unix, entry_count FROM source_snapshot WHERE source = ?1",
                [source],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| sql_err(path, context())(e))?;
        let Some((snapshot_id, fetched_at_unix, expected)) = header else {
            return Ok(None);
        };
        let mut select = self
            .conn
            .prepare_cached(
                "SELECT seq, lo, hi, tag, item, item_source FROM snapshot_entry
                 WHERE snapshot_id = ?1 ORDER BY seq",
            )
            .map_err(|e| sql_err(path, context())(e))?;
        let mut rows = select
            .query([snapshot_id])
            .map_err(|e| sql_err(path, context())(e))?;
        let mut entries = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        let mut tags = TagCache::default();
        let shared_source = Arc::new(source.to_string());
        while let Some(row) = rows.next().map_err(|e| sql_err(path, context())(e))? {
            let seq = row
                .get::<_, i64>(0)
                .map_err(|e| sql_err(path, context())(e))?;
            let name_row = || format!("source {source:?} entry {seq}");
            if seq != entries.len() as i64 {
                return Err(corrupt(
                    path,
                    "snapshot_entry",
                    name_row(),
                    format!("expected entry {} next: entries are missing", entries.len()),
                ));
            }
            let entry = decode(row, &shared_source, &mut tags)
                .map_err(|reason| corrupt(path, "snapshot_entry", name_row(), reason))?;
            entries.push(entry);
        }
        if entries.len() as i64 != expected {
            return Err(corrupt(
                path,
                "source_snapshot",
                format!("source {source:?}"),
                format!("{expected} entries saved, {} found", entries.len()),
            ));
        }
        Ok(Some(Snapshot {
            fetched_at_unix,
            entries,
        }))
    }

    /// `source`'s snapshot, which must be there: the caller took the source's answer for the
    /// one it was decoded from. Its absence is an error, never an empty source, which would
    /// read as deletes.
    pub fn standing_snapshot(&self, source: &str) -> Result<Snapshot, StoreError> {
        self.snapshot(source)?.ok_or_else(|| {
            corrupt(
                &self.path,
                "source_snapshot",
                format!("source {source:?}"),
                "missing, though the source's answer was taken as the one it was decoded from",
            )
        })
    }

    /// Every source with a saved snapshot, by name.
    pub fn snapshot_sources(&self) -> Result<Vec<SnapshotSummary>, StoreError> {
        let path = &self.path;
        let mut select = self
            .conn
            .prepare_cached(
                "SELECT source, fetched_at_unix, entry_count, answer_digest,
                        coalesce(answer_trail, x'')
                 FROM source_snapshot ORDER BY source",
            )
            .map_err(sql_err(path, "cannot list snapshots"))?;
        let mut rows = select
            .query([])
            .map_err(sql_err(path, "cannot list snapshots"))?;
        let mut summaries = Vec::new();
        while let Some(row) = rows
            .next()
            .map_err(sql_err(path, "cannot list snapshots"))?
        {
            let source = text(row, 0)
                .map_err(|reason| corrupt(path, "source_snapshot", "(unnamed)", reason))?
                .to_string();
            let fetched_at_unix = int(row, 1).map_err(|reason| {
                corrupt(
                    path,
                    "source_snapshot",
                    format!("source {source:?}"),
                    &reason,
                )
            })?;
            let entry_count = super::uint(row, 2, "entry_count").map_err(|reason| {
                corrupt(
                    path,
                    "source_snapshot",
                    format!("source {source:?}"),
                    &reason,
                )
            })?;
            let answer_digest = opt_text(row, 3)
                .map_err(|reason| {
                    corrupt(
                        path,
                        "source_snapshot",
                        format!("source {source:?}"),
                        &reason,
                    )
                })?
                .map(str::to_string);
            let answer_trail: Vec<u8> = row.get(4).map_err(|e| {
                corrupt(
                    path,
                    "source_snapshot",
                    format!("source {source:?}"),
                    e.to_string(),
                )
            })?;
            summaries.push(SnapshotSummary {
                source,
                fetched_at_unix,
                entry_count,
                answer_digest,
                answer_trail,
            });
        }
        Ok(summaries)
    }

    /// Marks `source`'s snapshot as answered again at `fetched_at_unix` by the answer
    /// `answer_digest` names, which it was decoded from. An error, changing nothing, when the
    /// snapshot is not (or no longer) that answer's: its entries would be taken for another
    /// answer's.
    pub fn touch_snapshot(
        &mut self,
        source: &str,
        fetched_at_unix: i64,
        answer_digest: &str,
    ) -> Result<(), StoreError> {
        let updated = self
            .conn
            .execute(
                "UPDATE source_snapshot SET fetched_at_unix = ?2
                 WHERE source = ?1 AND answer_digest = ?3",
                params![source, fetched_at_unix, answer_digest],
            )
            .map_err(sql_err(
                &self.path,
                format!("cannot update the snapshot of source {source:?}"),
            ))?;
        if updated != 1 {
            return Err(corrupt(
                &self.path,
                "source_snapshot",
                format!("source {source:?}"),
                "no longer the snapshot of the answer the source gave (changed during the cycle)",
            ));
        }
        Ok(())
    }

    /// The items the answer `source`'s snapshot was decoded from refused: (item, reason), in
    /// the order the source gave them.
    pub fn snapshot_rejected(&self, source: &str) -> Result<Vec<(String, String)>, StoreError> {
        let path = &self.path;
        let context = || format!("cannot read the rejected items of source {source:?}");
        let mut select = self
            .conn
            .prepare_cached(
                "SELECT item, reason FROM snapshot_rejected WHERE snapshot_id =
                     (SELECT id FROM source_snapshot WHERE source = ?1)
                 ORDER BY seq",
            )
            .map_err(|e| sql_err(path, context())(e))?;
        let rows = select
            .query_map([source], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(|e| sql_err(path, context())(e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| sql_err(path, context())(e))
    }

    /// Forgets `source`'s snapshot (the source was removed from the config). Returns whether
    /// there was one.
    pub fn delete_snapshot(&mut self, source: &str) -> Result<bool, StoreError> {
        let Store { conn, path, .. } = self;
        let context = || format!("cannot delete the snapshot of source {source:?}");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_err(path, context())(e))?;
        for children in [
            "DELETE FROM snapshot_entry WHERE snapshot_id =
                 (SELECT id FROM source_snapshot WHERE source = ?1)",
            "DELETE FROM snapshot_rejected WHERE snapshot_id =
                 (SELECT id FROM source_snapshot WHERE source = ?1)",
        ] {
            tx.execute(children, [source])
                .map_err(|e| sql_err(path, context())(e))?;
        }
        let deleted = tx
            .execute("DELETE FROM source_snapshot WHERE source = ?1", [source])
            .map_err(|e| sql_err(path, context())(e))?;
        tx.commit().map_err(|e| sql_err(path, context())(e))?;
        Ok(deleted > 0)
    }
}

fn decode(
    row: &rusqlite::Row<'_>,
    source: &Arc<String>,
    tags: &mut TagCache,
) -> Result<Entry, String> {
    let number = |column: usize| -> Result<Number, String> {
        let value = int(row, column)?;
        let value = u64::try_from(value).map_err(|_| format!("number {value} is negative"))?;
        Number::from_u64(value).map_err(|e| format!("number {value}: {e}"))
    };
    let lo = number(1)?;
    let coverage = match row.get_ref(2).map_err(|e| e.to_string())? {
        rusqlite::types::ValueRef::Null => Coverage::Prefix(OpenPrefix::of(lo)),
        _ => {
            let hi = number(2)?;
            let range = NumberRange::between(lo, hi).ok_or_else(|| {
                format!("{lo}..{hi} is not a range (unequal lengths or reversed)")
            })?;
            Coverage::Range(range)
        }
    };
    let tag = tags.parse(text(row, 3)?)?;
    let item = text(row, 4)?.into();
    let provenance_source = match opt_text(row, 5)? {
        Some(other) => Arc::new(other.to_string()),
        None => source.clone(),
    };
    Ok(Entry {
        coverage,
        tag,
        provenance: Provenance {
            source: provenance_source,
            item,
        },
    })
}

/// A digest of a snapshot's content as stored (what [`Store::snapshot`] gives back), so equal
/// content is recognised without reading the stored rows.
fn snapshot_digest(source: &str, entries: &[Entry]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    // One buffer for every entry's item label, most of which are rendered, not held.
    let mut item = String::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    for entry in entries {
        match entry.coverage {
            Coverage::Range(range) => {
                field(&range.lo().value().to_le_bytes());
                field(&range.hi().value().to_le_bytes());
            }
            Coverage::Prefix(prefix) => {
                field(&prefix.digits().value().to_le_bytes());
                field(b"");
            }
        }
        field(entry.tag.as_str().as_bytes());
        item.clear();
        // Writing to a String cannot fail.
        let _ = write!(item, "{}", entry.provenance.item);
        field(item.as_bytes());
        let item_source = if *entry.provenance.source == source {
            ""
        } else {
            &*entry.provenance.source
        };
        field(item_source.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// Remembers the tags already parsed during one read.
#[derive(Default)]
struct TagCache {
    parsed: std::collections::HashMap<String, Tag>,
}

impl TagCache {
    /// A tag dialsync wrote (a snapshot's): checked again, so that
    /// a corrupt row is found.
    fn parse(&mut self, text: &str) -> Result<Tag, String> {
        if let Some(tag) = self.parsed.get(text) {
            return Ok(tag.clone());
        }
        let tag = Tag::parse(text, STORED_TAG_MAX_LEN).map_err(|e| format!("tag {text:?}: {e}"))?;
        self.parsed.insert(text.to_string(), tag.clone());
        Ok(tag)
    }
}

/// Replaces the rejected items of `source`'s snapshot (inside the caller's transaction).
fn save_rejected(
    tx: &rusqlite::Transaction<'_>,
    source: &str,
    rejected: &[(&str, &str)],
) -> rusqlite::Result<()> {
    let id: i64 = tx.query_row(
        "SELECT id FROM source_snapshot WHERE source = ?1",
        [source],
        |row| row.get(0),
    )?;
    tx.execute("DELETE FROM snapshot_rejected WHERE snapshot_id = ?1", [id])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO snapshot_rejected (snapshot_id, seq, item, reason) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (seq, (item, reason)) in rejected.iter().enumerate() {
        insert.execute(params![id, seq as i64, item, reason])?;
    }
    Ok(())
}
