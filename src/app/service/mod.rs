//! `dialsync run`: the agent assembled into a systemd service. The daemon plumbing
//! (`app::daemon`) drives the agent (`app::agent`) through the `Service` trait, and after each
//! cycle the agent's report is published as the admin port's `/status` (from which `/metrics`
//! is rendered too).
//!
//! - `run`: the assembly: the agent, the admin listener, the triggers, the loop;
//! - `agent_service`: the agent as the loop drives it;
//! - `publish`: a cycle's report folded into the admin port's status.

mod agent_service;
mod publish;
mod run;

pub use run::run;
