//! What the integration tests share, so that each test file holds only its cases: the real
//! binary run with a clean environment, `dialsync run` as a child, the emulators on free
//! loopback ports, the SBC's users and devices, the rig of SBC, Fusion and static file with its
//! config, and what the sink and source tests configure. One file per concept:
//!
//! - `binary.rs`: `dialsync` as a command, and what it said (`Out`);
//! - `daemon.rs`: `dialsync run` as a child, its log and its admin port;
//! - `config.rs`: tables of `dialsync.toml` pointing at the emulators;
//! - `dir.rs`: a temporary directory of config, secret and data files;
//! - `loopback.rs`: a free loopback port, and a client that speaks to it;
//! - `emulators.rs`: each emulator started on a free port, and the check that it saw nothing
//!   unexpected;
//! - `sbc.rs`: the emulated SBC's users and dial plans, set up and read back;
//! - `rig.rs`: the SBC, a Fusion group and a static file tied up by one config;
//! - `plan.rs`: routes and plan settings for the sink tests;
//! - `source.rs`: fast HTTP settings, tag rules and covered entries for the source tests;
//! - `triggers.rs`: the daemon loop's triggers, waited for;
//! - `wait.rs`: polling with a deadline.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

pub mod binary;
pub mod config;
pub mod daemon;
pub mod dir;
pub mod emulators;
pub mod loopback;
pub mod plan;
pub mod rig;
pub mod sbc;
pub mod source;
pub mod triggers;
pub mod wait;

// What most tests use, at the top; each binary uses some of it.
#[allow(unused_imports)]
pub use self::{
    binary::{command, run, Out, BIN},
    emulators::assert_clean,
    loopback::ANY_PORT,
    rig::{Rig, Settings},
    wait::wait_for,
};
