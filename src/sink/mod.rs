//! Where the planned dial-plan operations land: the SBC itself, through the CLI scripts its REST
//! API reads and writes. The dialect of those scripts is kept apart in [`cli_script`], so that the
//! device sink and the SBC emulator speak exactly the same one and a firmware difference is a
//! one-file change.

pub mod audiocodes;
pub mod cli_script;
pub mod livecloud;
pub mod retry;
