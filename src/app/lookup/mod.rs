//! `lookup`: which rule the SBC picks for a number, which entry of which source wanted it, and
//! whether the two agree.
//!
//! It is answered from the state database alone (the mirror and the last good snapshots), so
//! it works while the SBC or an upstream is down, and as a user who cannot read the secrets.
//! The state is loaded once into a [`LookupState`] (a rule index over the mirror, the resolved
//! snapshots), after which each number costs two index lookups: `dialsync lookup --file` asks
//! it a million times, the admin port's `/lookup` keeps one per cycle.
//!
//! - `error`: why a lookup cannot be answered;
//! - `state`: the loaded state and its answers;
//! - `answer`: the answer for a person (`lookup NUMBER...`, its `--json`);
//! - `query`: `lookup NUMBER...` in one call;
//! - `row`: the flat answer with its [`Verdict`], one per number of a file (`--csv`, JSON Lines,
//!   `/lookup`);
//! - `lines`: a file of numbers read line by line, bad lines named by their line number;
//! - `cache`: the daemon's state, rebuilt only when the state database changed.

mod answer;
mod cache;
mod error;
mod lines;
mod query;
mod row;
mod state;

pub use answer::{LookupAnswer, LookupEntry, LookupRule};
pub use cache::LookupCache;
pub use error::LookupError;
pub use lines::{BadLine, NumberLines};
pub use query::{lookup, parse_numbers};
pub use row::{LookupRow, Owner, Verdict};
pub use state::LookupState;
