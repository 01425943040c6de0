//! Why a lookup cannot be answered.

use crate::dialplan::rule_index::RuleIndexError;
use crate::error::{Classify, ErrorClass};
use crate::store::StoreError;

/// Why a lookup cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("{number:?} is not a number: {reason}")]
    Number { number: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot index the mirrored dial plan: {0}")]
    RuleIndex(#[from] RuleIndexError),
}

impl Classify for LookupError {
    fn class(&self) -> ErrorClass {
        match self {
            // One number of the command line is bad; the operator retypes it.
            LookupError::Number { .. } => ErrorClass::Item,
            LookupError::Store(e) => e.class(),
            LookupError::RuleIndex(e) => e.class(),
        }
    }
}
