//! The AudioCodes dial-plan model: the prefix-pattern language and its best-match rule, the
//! rules of a dial plan, and the compilation of number ranges into as few rules as possible.

pub mod compile;
pub mod pattern;
pub mod rule;
