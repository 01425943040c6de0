//! What each one-shot subcommand does and prints (`sync`, `plan`, `apply`, `lookup`, `check`,
//! `status`, `history`, `config check`), so that `main.rs` only parses arguments and wires.
//!
//! Each command writes its answer to `out` and returns its exit code; the codes are DESIGN.md
//! §7's contract with scripts and timers, so they are decided here, next to the output that
//! explains them. One file per family of commands:
//! - `cycle`: `sync`, `plan` and `apply`, which run a cycle, and `describe` which tells it;
//! - `lookup`, `audit`, `check`, `status` (`status` and `history`) and `config_check`, which read the
//!   state database or the configuration and change nothing;
//! - `state_db` and `sbc`: what several of them share.
//!
//! `run`, the long-running service, is assembled apart, in `app::service`.

mod audit;
mod check;
mod config_check;
mod cycle;
mod describe;
mod error;
mod lookup;
mod sbc;
mod state_db;
mod status;

pub use audit::audit;
pub use check::check;
pub use config_check::config_check;
pub use cycle::{apply, plan, sync};
pub use describe::describe_cycle;
pub use error::CommandError;
pub use lookup::{lookup_numbers, LookupFormat, LookupInput};
pub(crate) use sbc::{insecure_warning, sbc_url};
pub use status::{history, status};
