//! The AudioCodes dial-plan model: the prefix-pattern language and its best-match rule, the
//! rules of a dial plan as the device holds them, and the rule index that answers best match
//! over a whole plan in one lookup (it builds on [`crate::index`]).
//!
//! It knows nothing of where numbers come from: turning resolved numbers into rules is
//! [`crate::compile`]'s job, which keeps this model below `resolve` in the module graph.

pub mod pattern;
pub mod rule;
pub mod rule_index;
