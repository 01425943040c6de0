//! `lookup`: which rule the SBC picks for a number, which entry of which source wanted it, and
//! any conflict over it.
//!
//! It is answered from the state database alone (the mirror and the last good snapshots), so
//! it works while the SBC or an upstream is down, and as a user who cannot read the secrets.
//! It shares no code with the cycle beyond the pipeline's pure functions, so it has a module of
//! its own.

use serde::Serialize;

use crate::config::Config;
use crate::dialplan::pattern::best_match;
use crate::dialplan::rule::Tag;
use crate::error::{Classify, ErrorClass};
use crate::number::Number;
use crate::resolve::{resolve, Entry};
use crate::store::{Store, StoreError};

/// What `lookup` says about one number.
#[derive(Clone, Debug, Serialize)]
pub struct LookupAnswer {
    pub number: String,
    /// The rule the SBC picks (best match over owned and foreign rules), as last read.
    pub sbc_rule: Option<LookupRule>,
    /// The entry that decides the number's desired tag, and where it came from.
    pub desired: Option<LookupEntry>,
    /// Conflicts whose contested numbers include this one.
    pub conflicts: Vec<String>,
    /// Whether the SBC's tag is the desired one.
    pub in_sync: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LookupRule {
    pub index: u32,
    pub name: String,
    pub prefix: String,
    pub tag: Tag,
    pub owned: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LookupEntry {
    pub source: String,
    pub item: String,
    pub coverage: String,
    pub tag: Tag,
}

/// Why a lookup cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("{number:?} is not a number: {reason}")]
    Number { number: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Classify for LookupError {
    fn class(&self) -> ErrorClass {
        match self {
            // One number of the command line is bad; the operator retypes it.
            LookupError::Number { .. } => ErrorClass::Item,
            LookupError::Store(e) => e.class(),
        }
    }
}

/// Answers `lookup` for each of `numbers` from the state database.
pub fn lookup(
    config: &Config,
    store: &Store,
    numbers: &[String],
) -> Result<Vec<LookupAnswer>, LookupError> {
    let parsed = numbers
        .iter()
        .map(|text| {
            Number::parse(text.trim()).map_err(|e| LookupError::Number {
                number: text.clone(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mirror = store.mirror()?;
    let mut entries = Vec::new();
    for source in &config.sources {
        if let Some(snapshot) = store.snapshot(&source.name)? {
            entries.extend(snapshot.entries);
        }
    }
    let resolution = resolve(&entries);
    let mut answers = Vec::with_capacity(parsed.len());
    for number in parsed {
        let text = number.to_string();
        let sbc_rule = best_match(
            mirror.iter().map(|m| (m.rule.index, &m.rule.prefix, m)),
            &text,
        )
        .map(|(_, m)| LookupRule {
            index: m.rule.index,
            name: m.rule.name.clone(),
            prefix: m.rule.prefix.to_string(),
            tag: m.rule.tag.clone(),
            owned: m.owned,
        });
        let desired = resolution.winner(number).map(|i| {
            let entry = &entries[i];
            LookupEntry {
                source: entry.provenance.source.to_string(),
                item: entry.provenance.item.clone(),
                coverage: entry.coverage.to_string(),
                tag: entry.tag.clone(),
            }
        });
        let conflicts = resolution
            .conflicts
            .iter()
            .filter(|c| {
                [c.winner, c.loser]
                    .iter()
                    .all(|&i| covers(&entries[i], number))
            })
            .map(|c| c.describe(&entries))
            .collect();
        let in_sync = match (&sbc_rule, &desired) {
            (Some(rule), Some(entry)) => rule.tag == entry.tag,
            (None, None) => true,
            _ => false,
        };
        answers.push(LookupAnswer {
            number: text,
            sbc_rule,
            desired,
            conflicts,
            in_sync,
        });
    }
    Ok(answers)
}

fn covers(entry: &Entry, number: Number) -> bool {
    use crate::resolve::Coverage;
    match entry.coverage {
        Coverage::Range(range) => range.contains(number),
        Coverage::Prefix(prefix) => prefix.contains(number),
    }
}
