//! Where the planned dial-plan operations land: the SBC itself through its device REST API
//! ([`audiocodes`], the default), or AudioCodes Live Platform, which writes the SBC for us
//! ([`livecloud`]). Both journal a plan before writing, apply it in batches, quarantine a rule
//! the other side refuses, and settle a journal left by a crash by reading back, never by
//! replaying.
//!
//! The dialect of the device's CLI scripts is kept apart in [`cli_script`], so that the device
//! sink and the SBC emulator speak exactly the same one and a firmware difference is a one-file
//! change; [`retry`] holds the backoff both sinks share.

pub mod audiocodes;
pub mod cli_script;
pub mod livecloud;
pub mod retry;
