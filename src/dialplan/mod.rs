//! The AudioCodes dial-plan model: the prefix-pattern language and its best-match rule, and the
//! rules of a dial plan as the device holds them.
//!
//! It knows nothing of where numbers come from: turning resolved numbers into rules is
//! [`crate::compile`]'s job, which keeps this model below `resolve` in the module graph.

pub mod pattern;
pub mod rule;
