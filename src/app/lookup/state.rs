//! The state a lookup answers from, loaded once: the mirrored dial plan with a rule index over
//! it, and the last good snapshots resolved into one mapping with the winning entry of every
//! number. After the load, a number costs two index lookups, never a scan of the rules.

use std::fmt;

use super::answer::{LookupAnswer, LookupEntry, LookupRule};
use super::error::LookupError;
use super::row::{LookupRow, Owner, Verdict};
use crate::app::last_known::LastKnown;
use crate::config::Config;
use crate::dialplan::rule_index::RuleIndex;
use crate::number::Number;
use crate::resolve::{resolve, Coverage, Entry, Resolution};
use crate::store::{MirrorRule, Store};

/// The mirror and the resolved snapshots, indexed for lookups.
pub struct LookupState {
    /// The mirror, ordered by index; the rule index answers positions in it.
    rules: Vec<MirrorRule>,
    index: RuleIndex,
    /// Every snapshot's entries in priority order, as resolved.
    entries: Vec<Entry>,
    resolution: Resolution,
}

impl fmt::Debug for LookupState {
    // A hundred thousand rules are no help in a log line; their counts are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LookupState")
            .field("rules", &self.rules.len())
            .field("intervals", &self.index.len())
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl LookupState {
    /// Loads the mirror and the last good snapshot of each configured source (in config order,
    /// which is their priority) from `store`.
    pub fn load(config: &Config, store: &Store) -> Result<LookupState, LookupError> {
        let known = LastKnown::load(config, store)?;
        LookupState::new(known.mirror, known.entries)
    }

    /// The state of a dial plan (`rules`, ordered by index) and entries in priority order.
    pub fn new(rules: Vec<MirrorRule>, entries: Vec<Entry>) -> Result<LookupState, LookupError> {
        // Positions as ids: the mirror is ordered by index, so between identical prefixes the
        // lower position is the lower index, the tie `best_match` breaks the same way.
        let index = RuleIndex::build(
            rules
                .iter()
                .enumerate()
                .map(|(position, m)| (position as u32, &m.rule.prefix)),
        )?;
        let resolution = resolve(&entries);
        Ok(LookupState {
            rules,
            index,
            entries,
            resolution,
        })
    }

    /// The rule the SBC picks for `number` (best match over owned and foreign rules).
    pub fn sbc_rule(&self, number: Number) -> Option<&MirrorRule> {
        self.index
            .lookup(number)
            .and_then(|position| self.rules.get(position as usize))
    }

    /// The entry that decides `number`'s desired tag.
    pub fn desired(&self, number: Number) -> Option<&Entry> {
        self.resolution
            .winner(number)
            .and_then(|i| self.entries.get(i))
    }

    /// The verdict for `number`.
    pub fn verdict(&self, number: Number) -> Verdict {
        verdict(self.sbc_rule(number), self.desired(number))
    }

    /// Conflicts whose two entries both hold `number`, described for a person. It scans the
    /// conflicts, which are few: it serves the answers for people, not the rows.
    pub fn conflicts(&self, number: Number) -> Vec<String> {
        self.resolution
            .conflicts
            .iter()
            .filter(|c| {
                [c.winner, c.loser]
                    .iter()
                    .all(|&i| self.entries.get(i).is_some_and(|e| covers(e, number)))
            })
            .map(|c| c.describe(&self.entries))
            .collect()
    }

    /// The answer for a person.
    pub fn answer(&self, number: Number) -> LookupAnswer {
        let rule = self.sbc_rule(number);
        let desired = self.desired(number);
        LookupAnswer {
            number: number.to_string(),
            sbc_rule: rule.map(|m| LookupRule {
                index: m.rule.index,
                name: m.rule.name.to_string(),
                prefix: m.rule.prefix.to_string(),
                tag: m.rule.tag.clone(),
                owned: m.owned,
            }),
            desired: desired.map(|entry| LookupEntry {
                source: entry.provenance.source.to_string(),
                item: entry.provenance.item.to_string(),
                coverage: entry.coverage.to_string(),
                tag: entry.tag.clone(),
            }),
            conflicts: self.conflicts(number),
            in_sync: match (rule, desired) {
                (Some(m), Some(entry)) => m.rule.tag == entry.tag,
                (None, None) => true,
                _ => false,
            },
            verdict: verdict(rule, desired),
        }
    }

    /// The flat answer, borrowed from the state; `line` is where the number was read.
    pub fn row(&self, line: Option<u64>, number: Number) -> LookupRow<'_> {
        let rule = self.sbc_rule(number);
        let desired = self.desired(number);
        LookupRow {
            line,
            number: number.to_string(),
            rule_index: rule.map(|m| m.rule.index),
            name: rule.map(|m| &*m.rule.name),
            prefix: rule.map(|m| m.rule.prefix.as_str()),
            tag: rule.map(|m| m.rule.tag.as_str()),
            owner: rule.map(|m| {
                if m.owned {
                    Owner::Dialsync
                } else {
                    Owner::Foreign
                }
            }),
            desired_tag: desired.map(|e| e.tag.as_str()),
            source: desired.map(|e| e.provenance.source.as_str()),
            item: desired.map(|e| e.provenance.item.text()),
            verdict: verdict(rule, desired),
            error: None,
        }
    }

    /// How many rules the mirror holds.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }
}

fn verdict(rule: Option<&MirrorRule>, desired: Option<&Entry>) -> Verdict {
    Verdict::of(
        rule.map(|m| (&m.rule.tag, m.owned)),
        desired.map(|e| &e.tag),
    )
}

fn covers(entry: &Entry, number: Number) -> bool {
    match entry.coverage {
        Coverage::Range(range) => range.contains(number),
        Coverage::Prefix(prefix) => prefix.contains(number),
    }
}
