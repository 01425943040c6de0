//! Resolution: the entries of every source become one disjoint mapping number -> tag.
//!
//! Upstreams overlap. A tenant's block holds a number another tenant was given; a static file
//! pins an emergency number inside a customer's range; two sources disagree. The SBC settles
//! overlapping rules by best match, so dialsync settles entries the same way *before* writing
//! anything, and reports what it had to decide:
//!
//! - an entry nested in a broader one carves a hole in it (more specific wins, as on the SBC);
//!   at equal extent a closed range is more specific than an open prefix, as `+3201xxx#` beats
//!   `+3201`;
//! - entries that overlap partially with different tags are a [`Conflict`]: the earlier entry
//!   (earlier source in the config, then earlier item) wins the overlap;
//! - identical entries, or overlaps with the same tag, collapse silently.
//!
//! Nesting is judged per number length: an open prefix holds numbers of every length, and for
//! the numbers of one length it is one closed interval, which nests or overlaps like any other.
//! That is exactly how the SBC's best match treats `+3201` against `+32xxxxx#`.

use std::collections::HashMap;
use std::fmt;

use crate::dialplan::rule::Tag;
use crate::index::sweep::{self, Interval};
use crate::index::{KeyRange, RangeIndex};
use crate::number::{Number, NumberRange, OpenPrefix, MAX_DIGITS};

mod provenance;

pub use provenance::{Item, Provenance};

/// The numbers an entry assigns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Coverage {
    Range(NumberRange),
    Prefix(OpenPrefix),
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Coverage::Range(range) => write!(f, "{range}"),
            Coverage::Prefix(prefix) => write!(f, "{prefix}"),
        }
    }
}

/// One assignment from one source: these numbers route with this tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub coverage: Coverage,
    pub tag: Tag,
    pub provenance: Provenance,
}

/// Index of a tag in [`Mapping::tags`].
pub type TagId = u32;

/// Two entries that overlap partially (or duplicate each other) with different tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// Index of the winning entry in the slice given to [`resolve`].
    pub winner: usize,
    pub loser: usize,
    /// The first contested stretch.
    pub first: NumberRange,
    /// How many numbers were contested in all.
    pub numbers: u64,
}

impl Conflict {
    /// The conflict for a person: both items, what they claim, and which one won and why.
    /// `entries` is the slice given to [`resolve`]. Items of one source are named without it
    /// (the caller says which source); items of two sources carry theirs.
    pub fn describe(&self, entries: &[Entry]) -> String {
        let (winner, loser) = (&entries[self.winner], &entries[self.loser]);
        let (w, l) = (&winner.provenance, &loser.provenance);
        // Within one source the items say enough; across sources each names its source.
        let (w_item, l_item) = if w.source == l.source {
            (w.item.to_string(), l.item.to_string())
        } else {
            (w.to_string(), l.to_string())
        };
        format!(
            "{w_item} ({} {}) and {l_item} ({} {}) both claim {} ({} numbers); \
             {w_item} wins, being earlier",
            winner.coverage, winner.tag, loser.coverage, loser.tag, self.first, self.numbers,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("ranges {first} and {second} overlap; a mapping's ranges must be disjoint")]
    Overlap {
        first: NumberRange,
        second: NumberRange,
    },
    #[error("tag id {0} is not in the tag table")]
    UnknownTag(TagId),
}

/// A disjoint mapping number -> tag, in the two layers the SBC's best match gives us:
/// open prefixes (the longest one holding a number decides), and closed ranges that override
/// them. This is what the compiler turns into rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    tags: Vec<Tag>,
    /// Distinct prefixes, sorted.
    prefixes: Vec<(OpenPrefix, TagId)>,
    /// Disjoint, sorted, adjacent same-tag ranges merged.
    ranges: Vec<(NumberRange, TagId)>,
    /// Prefix digits (as a number key) -> tag, for longest-prefix lookups.
    prefix_tags: HashMap<u64, TagId>,
    /// Every key where the open layer may change: each prefix's first key and the key after
    /// its last, at every length. Sorted.
    open_boundaries: Vec<u64>,
}

impl Mapping {
    /// Builds a mapping; ranges in any order, merged where adjacent with the same tag. Of two
    /// equal prefixes the first is kept.
    pub fn new(
        tags: Vec<Tag>,
        prefixes: Vec<(OpenPrefix, TagId)>,
        mut ranges: Vec<(NumberRange, TagId)>,
    ) -> Result<Mapping, MappingError> {
        let known = |id: TagId| {
            if (id as usize) < tags.len() {
                Ok(())
            } else {
                Err(MappingError::UnknownTag(id))
            }
        };
        for &(_, id) in &prefixes {
            known(id)?;
        }
        for &(_, id) in &ranges {
            known(id)?;
        }
        ranges.sort_unstable_by_key(|(range, _)| range.lo());
        // Merged into the same vector: at a million single numbers, a second one sized for
        // the input was a tenth of a cycle's peak, to hold a tenth as many ranges.
        let mut kept = 0;
        for at in 0..ranges.len() {
            let (range, tag) = ranges[at];
            if kept > 0 && merge_into(&mut ranges[kept - 1], range, tag)? {
                continue;
            }
            ranges[kept] = (range, tag);
            kept += 1;
        }
        ranges.truncate(kept);
        ranges.shrink_to_fit();
        let merged = ranges;
        let mut prefix_tags = HashMap::with_capacity(prefixes.len());
        let mut distinct = Vec::with_capacity(prefixes.len());
        for (prefix, tag) in prefixes {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                prefix_tags.entry(prefix.digits().key())
            {
                slot.insert(tag);
                distinct.push((prefix, tag));
            }
        }
        distinct.sort_unstable();
        let mut open_boundaries: Vec<u64> = distinct
            .iter()
            .flat_map(|(prefix, _)| prefix.ranges())
            .flat_map(|range| [range.lo().key(), range.hi().key() + 1])
            .collect();
        open_boundaries.sort_unstable();
        open_boundaries.dedup();
        Ok(Mapping {
            tags,
            prefixes: distinct,
            ranges: merged,
            prefix_tags,
            open_boundaries,
        })
    }

    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    pub fn tag(&self, id: TagId) -> &Tag {
        &self.tags[id as usize]
    }

    pub fn prefixes(&self) -> &[(OpenPrefix, TagId)] {
        &self.prefixes
    }

    pub fn ranges(&self) -> &[(NumberRange, TagId)] {
        &self.ranges
    }

    /// The tag the mapping gives `number`: its closed range's, else its longest prefix's.
    pub fn tag_of(&self, number: Number) -> Option<TagId> {
        let i = self.ranges.partition_point(|(r, _)| r.hi() < number);
        match self.ranges.get(i) {
            Some((range, tag)) if range.contains(number) => Some(*tag),
            _ => self.longest_prefix(number).map(|(_, tag)| tag),
        }
    }

    /// The longest open prefix holding `number`, with its tag.
    pub fn longest_prefix(&self, number: Number) -> Option<(OpenPrefix, TagId)> {
        if self.prefix_tags.is_empty() {
            return None;
        }
        (1..=number.len()).rev().find_map(|len| {
            let digits = Number::from_u64(
                number.value() / crate::number::POW10[(number.len() - len) as usize],
            )
            .ok()?;
            self.prefix_tags
                .get(&digits.key())
                .map(|&tag| (OpenPrefix::of(digits), tag))
        })
    }

    /// Keys strictly inside `(lo, hi]` where the open layer may change: where a closed range
    /// spanning them could be overridden by a prefix on one side.
    pub fn open_boundaries_within(&self, lo: Number, hi: Number) -> &[u64] {
        let from = self.open_boundaries.partition_point(|&b| b <= lo.key());
        let to = self.open_boundaries.partition_point(|&b| b <= hi.key());
        &self.open_boundaries[from..to]
    }
}

/// Adds `range` after `last`, the range before it in key order: `true` when it extends
/// `last` (adjacent, same tag), `false` when it must follow as a range of its own.
fn merge_into(
    last: &mut (NumberRange, TagId),
    range: NumberRange,
    tag: TagId,
) -> Result<bool, MappingError> {
    if last.0.hi() >= range.lo() {
        return Err(MappingError::Overlap {
            first: last.0,
            second: range,
        });
    }
    if last.1 == tag && last.0.hi().succ() == Some(range.lo()) {
        last.0 = NumberRange::between(last.0.lo(), range.hi()).unwrap_or(last.0);
        return Ok(true);
    }
    Ok(false)
}

/// What resolution decided.
#[derive(Debug)]
pub struct Resolution {
    pub mapping: Mapping,
    pub conflicts: Vec<Conflict>,
    /// Every number's winning entry, for `lookup`: value = index of the entry.
    winners: RangeIndex,
}

impl Resolution {
    /// The mapping alone, dropping what only `lookup` needs (every number's winning entry).
    pub fn into_mapping(self) -> Mapping {
        self.mapping
    }

    /// The index (into the slice given to [`resolve`]) of the entry that decides `number`.
    pub fn winner(&self, number: Number) -> Option<usize> {
        self.winners.lookup(number.key()).map(|r| r.value as usize)
    }
}

/// Resolves `entries`, given in priority order (sources in config order, items in source
/// order), into a mapping, reporting conflicts.
pub fn resolve(entries: &[Entry]) -> Resolution {
    let mut tag_ids: HashMap<&Tag, TagId> = HashMap::new();
    let mut tags: Vec<Tag> = Vec::new();
    let entry_tags: Vec<TagId> = entries
        .iter()
        .map(|entry| {
            *tag_ids.entry(&entry.tag).or_insert_with(|| {
                tags.push(entry.tag.clone());
                (tags.len() - 1) as TagId
            })
        })
        .collect();

    let mut intervals = Vec::with_capacity(entries.len());
    let mut prefixes = Vec::new();
    for (id, entry) in entries.iter().enumerate() {
        let id = id as u32;
        match entry.coverage {
            Coverage::Range(range) => intervals.push(Interval {
                lo: range.lo().key(),
                hi: range.hi().key(),
                nest: 0,
                id,
            }),
            Coverage::Prefix(prefix) => {
                prefixes.push((prefix, entry_tags[id as usize]));
                intervals.extend((prefix.len()..=MAX_DIGITS).filter_map(|len| {
                    let range = prefix.range_at(len)?;
                    Some(Interval {
                        lo: range.lo().key(),
                        hi: range.hi().key(),
                        nest: 1,
                        id,
                    })
                }))
            }
        }
    }
    let swept = sweep::sweep(intervals);
    let conflicts = conflicts(&swept.contests, &entry_tags);

    let is_closed = |id: u32| matches!(entries[id as usize].coverage, Coverage::Range(_));
    // Merged as they are read (the pieces come in key order): a million single numbers make
    // a tenth as many ranges, and collecting every piece first held them all at the peak.
    let mut closed: Vec<(NumberRange, TagId)> = Vec::new();
    for piece in swept.pieces.iter().filter(|piece| is_closed(piece.id)) {
        let Some(range) = key_range(piece.lo, piece.hi) else {
            continue;
        };
        let tag = entry_tags[piece.id as usize];
        let merged = match closed.last_mut() {
            // Disjoint pieces never overlap; were they to, `Mapping::new` says so.
            Some(last) => merge_into(last, range, tag).unwrap_or(false),
            None => false,
        };
        if !merged {
            closed.push((range, tag));
        }
    }
    // Prefixes are kept in priority order so that `Mapping::new` keeps the winner of a duplicate.
    // The sweep's pieces are disjoint and its tags interned above, so neither build can fail.
    let mapping = Mapping::new(tags.clone(), prefixes.clone(), closed)
        .and_then(|merged| drop_redundant(merged, tags, prefixes))
        .expect("sweep pieces are disjoint and tagged from the table");

    // Taken, not copied: a piece and a key range are the same size, so the collect reuses the
    // pieces' vector, which at a million pieces was 24 MB of the cycle's peak held twice.
    let winners = swept
        .pieces
        .into_iter()
        .map(|piece| KeyRange::new(piece.lo, piece.hi, piece.id))
        .collect();
    Resolution {
        mapping,
        conflicts,
        winners: RangeIndex::build(winners).expect("sweep pieces are disjoint"),
    }
}

/// Closed ranges that only repeat what their prefix already routes (a customer's range listed
/// inside the customer's own prefix) cost a rule and change nothing: leave them out.
fn drop_redundant(
    merged: Mapping,
    tags: Vec<Tag>,
    prefixes: Vec<(OpenPrefix, TagId)>,
) -> Result<Mapping, MappingError> {
    if merged.prefixes.is_empty() {
        return Ok(merged);
    }
    let kept: Vec<(NumberRange, TagId)> = merged
        .ranges
        .iter()
        .copied()
        .filter(|(range, tag)| {
            let uniform = merged
                .open_boundaries_within(range.lo(), range.hi())
                .is_empty();
            let prefix_tag = merged.longest_prefix(range.lo()).map(|(_, t)| t);
            !(uniform && prefix_tag == Some(*tag))
        })
        .collect();
    Mapping::new(tags, prefixes, kept)
}

fn key_range(lo: u64, hi: u64) -> Option<NumberRange> {
    NumberRange::between(Number::from_key(lo)?, Number::from_key(hi)?)
}

/// Contests between different tags, one conflict per pair of entries.
fn conflicts(contests: &[sweep::Contest], entry_tags: &[TagId]) -> Vec<Conflict> {
    let mut by_pair: HashMap<(u32, u32), usize> = HashMap::new();
    let mut out: Vec<Conflict> = Vec::new();
    for contest in contests {
        if entry_tags[contest.winner as usize] == entry_tags[contest.loser as usize] {
            continue;
        }
        let Some(stretch) = key_range(contest.lo, contest.hi) else {
            continue;
        };
        match by_pair.get(&(contest.winner, contest.loser)) {
            Some(&at) => out[at].numbers += stretch.size(),
            None => {
                by_pair.insert((contest.winner, contest.loser), out.len());
                out.push(Conflict {
                    winner: contest.winner as usize,
                    loser: contest.loser as usize,
                    first: stretch,
                    numbers: stretch.size(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(coverage: &str, tag: &str, source: &str) -> Entry {
        let coverage = match coverage.strip_suffix('*') {
            Some(prefix) => Coverage::Prefix(OpenPrefix::parse(prefix).unwrap()),
            None => {
                let (lo, hi) = coverage.split_once("..").unwrap_or((coverage, coverage));
                Coverage::Range(NumberRange::parse(lo, Some(hi), u64::MAX).unwrap())
            }
        };
        Entry {
            coverage,
            tag: Tag::parse(tag, 64).unwrap(),
            provenance: Provenance {
                source: std::sync::Arc::new(source.into()),
                item: "".into(),
            },
        }
    }

    fn n(text: &str) -> Number {
        Number::parse(text).unwrap()
    }

    #[test]
    fn an_entry_is_seven_words() {
        // A million of them are a cycle's largest allocation: a word more is 8 MB of its peak.
        assert_eq!(std::mem::size_of::<Entry>(), 56);
    }

    fn tag_at(resolution: &Resolution, number: &str) -> Option<String> {
        let mapping = &resolution.mapping;
        mapping
            .tag_of(n(number))
            .map(|id| mapping.tag(id).to_string())
    }

    #[test]
    fn nested_entries_carve_holes() {
        let entries = [
            entry("+3226127000..+3226127999", "T=a", "fusion"),
            entry("+3226127500", "T=b", "static"),
        ];
        let r = resolve(&entries);
        assert!(r.conflicts.is_empty());
        assert_eq!(tag_at(&r, "+3226127499").unwrap(), "T=a");
        assert_eq!(tag_at(&r, "+3226127500").unwrap(), "T=b");
        assert_eq!(tag_at(&r, "+3226127501").unwrap(), "T=a");
        assert_eq!(r.mapping.ranges().len(), 3);
        assert_eq!(r.winner(n("+3226127500")), Some(1));
        assert_eq!(r.winner(n("+3226127000")), Some(0));
        assert_eq!(r.winner(n("+3226128000")), None);
    }

    #[test]
    fn partial_overlap_is_a_conflict_won_by_the_earlier_source() {
        let entries = [
            entry("+3210..+3219", "T=first", "fusion"),
            entry("+3215..+3224", "T=second", "apio"),
        ];
        let r = resolve(&entries);
        assert_eq!(
            r.conflicts,
            [Conflict {
                winner: 0,
                loser: 1,
                first: NumberRange::parse("+3215", Some("+3219"), 10).unwrap(),
                numbers: 5
            }]
        );
        assert_eq!(tag_at(&r, "+3217").unwrap(), "T=first");
        assert_eq!(tag_at(&r, "+3220").unwrap(), "T=second");
    }

    #[test]
    fn identical_duplicates_collapse_silently() {
        let entries = [
            entry("+3210..+3219", "T=a", "fusion"),
            entry("+3210..+3219", "T=a", "apio"),
            entry("+3215..+3225", "T=a", "apio"),
        ];
        let r = resolve(&entries);
        assert!(r.conflicts.is_empty());
        assert_eq!(r.mapping.ranges().len(), 1);
        assert_eq!(r.mapping.ranges()[0].0.to_string(), "+3210..+3225");
    }

    #[test]
    fn prefixes_nest_like_the_sbc_decides() {
        let entries = [
            entry("+32*", "T=country", "apio"),
            entry("+3201*", "T=tenant", "apio"),
            entry("+3201000..+3201099", "T=pbx", "static"),
            entry("+3201*", "T=other", "static"),
        ];
        let r = resolve(&entries);
        assert_eq!(tag_at(&r, "+3299").unwrap(), "T=country");
        assert_eq!(tag_at(&r, "+32015555555").unwrap(), "T=tenant");
        assert_eq!(tag_at(&r, "+3201050").unwrap(), "T=pbx");
        assert_eq!(tag_at(&r, "+32010500").unwrap(), "T=tenant");
        // The duplicate prefix lost on priority and is reported once, not once per length.
        assert_eq!(r.conflicts.len(), 1);
        assert_eq!((r.conflicts[0].winner, r.conflicts[0].loser), (1, 3));
        assert_eq!(r.mapping.prefixes().len(), 2);
    }

    #[test]
    fn a_range_holding_a_prefix_leaves_the_prefix_its_numbers() {
        // At 7 digits the prefix +3201 is nested in the range: best match gives it +3201xxx.
        let entries = [
            entry("+3200000..+3299999", "T=range", "fusion"),
            entry("+3201*", "T=prefix", "apio"),
        ];
        let r = resolve(&entries);
        assert!(r.conflicts.is_empty());
        assert_eq!(tag_at(&r, "+3201234").unwrap(), "T=prefix");
        assert_eq!(tag_at(&r, "+3202234").unwrap(), "T=range");
    }

    #[test]
    fn ranges_repeating_their_prefix_are_left_out() {
        let entries = [
            entry("+3201*", "T=a", "apio"),
            entry("+3201000..+3201999", "T=a", "fusion"),
        ];
        let r = resolve(&entries);
        assert!(r.mapping.ranges().is_empty());
        assert_eq!(tag_at(&r, "+3201500").unwrap(), "T=a");
    }

    /// Tag at `number` by the definition, entry by entry.
    fn reference(entries: &[Entry], number: Number) -> Option<String> {
        let extent = |e: &Entry| match e.coverage {
            Coverage::Range(r) => Some((r.lo(), r.hi(), 0)),
            Coverage::Prefix(p) => p.range_at(number.len()).map(|r| (r.lo(), r.hi(), 1)),
        };
        let holding: Vec<(usize, (Number, Number, u8))> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| extent(e).map(|x| (i, x)))
            .filter(|(_, (lo, hi, _))| *lo <= number && number <= *hi)
            .collect();
        let inside = |a: &(Number, Number, u8), b: &(Number, Number, u8)| {
            a.0 >= b.0 && a.1 <= b.1 && (a.0 != b.0 || a.1 != b.1 || a.2 < b.2)
        };
        holding
            .iter()
            .filter(|(i, a)| !holding.iter().any(|(j, b)| i != j && inside(b, a)))
            .map(|(i, _)| *i)
            .min()
            .map(|i| entries[i].tag.to_string())
    }

    proptest! {
        #[test]
        fn mapping_gives_every_number_the_winning_tag(
            raw in prop::collection::vec((1u64..400, 0u64..60, 0u8..4, any::<bool>()), 1..10)
        ) {
            let entries: Vec<Entry> = raw
                .iter()
                .map(|&(start, span, tag, open)| {
                    let start = 1000 + start;
                    let coverage = if open && span % 3 == 0 {
                        format!("+{}*", start / 10)
                    } else {
                        format!("+{}..+{}", start, (start + span).min(9999))
                    };
                    entry(&coverage, &format!("T={tag}"), "s")
                })
                .collect();
            let r = resolve(&entries);
            for value in 100..100_000u64 {
                let number = Number::from_u64(value).unwrap();
                if value % 7 != 0 && value >= 10_000 { continue; }
                let got = r.mapping.tag_of(number).map(|id| r.mapping.tag(id).to_string());
                prop_assert_eq!(got, reference(&entries, number), "{}", number);
            }
        }
    }
}
