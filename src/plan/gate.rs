//! The safety gate of DESIGN.md §6: the plans that must not be applied without an operator's
//! `apply --force --checksum`, and why.

use std::fmt;

use serde::Serialize;

use super::{OpCounts, PlanSettings};

/// Why a plan must not be applied without an operator's `apply --force --checksum`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum BlockReason {
    TooManyDeletes {
        deletes: usize,
        existing: usize,
        max_fraction: f64,
    },
    TooManyModifies {
        modifies: usize,
        existing: usize,
        max_fraction: f64,
    },
    /// Sources that answered with nothing while their last snapshot had entries.
    EmptiedSources {
        sources: Vec<String>,
    },
    OverCapacity {
        rules: usize,
        max_rules: usize,
    },
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockReason::TooManyDeletes {
                deletes,
                existing,
                max_fraction,
            } => write!(
                f,
                "would delete {deletes} of {existing} owned rules, more than max_delete_fraction {max_fraction}"
            ),
            BlockReason::TooManyModifies {
                modifies,
                existing,
                max_fraction,
            } => write!(
                f,
                "would modify {modifies} of {existing} owned rules, more than max_update_fraction {max_fraction}"
            ),
            BlockReason::EmptiedSources { sources } => write!(
                f,
                "source(s) {} returned nothing while their last snapshot had entries",
                sources.join(", ")
            ),
            BlockReason::OverCapacity { rules, max_rules } => {
                write!(f, "the dial plan would hold {rules} rules, more than max_rules {max_rules}")
            }
        }
    }
}

/// The safety gate of DESIGN.md §6: every reason that applies, so the operator sees them all.
pub(super) fn gate(
    counts: OpCounts,
    existing: usize,
    foreign: usize,
    emptied_sources: &[String],
    settings: &PlanSettings,
) -> Vec<BlockReason> {
    let mut blocked = Vec::new();
    let safety = settings.safety;
    if existing >= safety.min_existing {
        if counts.deletes as f64 > safety.max_delete_fraction * existing as f64 {
            blocked.push(BlockReason::TooManyDeletes {
                deletes: counts.deletes,
                existing,
                max_fraction: safety.max_delete_fraction,
            });
        }
        if counts.modifies as f64 > safety.max_update_fraction * existing as f64 {
            blocked.push(BlockReason::TooManyModifies {
                modifies: counts.modifies,
                existing,
                max_fraction: safety.max_update_fraction,
            });
        }
    }
    if !emptied_sources.is_empty() {
        blocked.push(BlockReason::EmptiedSources {
            sources: emptied_sources.to_vec(),
        });
    }
    let rules = foreign + existing + counts.adds - counts.deletes;
    if rules > settings.max_rules {
        blocked.push(BlockReason::OverCapacity {
            rules,
            max_rules: settings.max_rules,
        });
    }
    blocked
}
