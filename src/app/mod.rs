//! The application shell: what turns the pipeline into a product an operator runs.
//!
//! The pipeline (`source -> resolve -> compile -> plan -> sink`, with `store` as memory)
//! knows how to turn upstream numbers into dial-plan operations. This folder holds
//! everything around it: the cycle that drives the pipeline once, the systemd service that
//! repeats it, the one-shot commands, the admin port, the monitoring plugin, the demo and the
//! `compile` preview. It is kept apart so that the folder names of `src/` show the data path,
//! and so that nothing in the pipeline can reach up into the shell: these modules use the
//! pipeline, never the other way round.

pub mod admin;
pub mod agent;
pub mod audit;
pub mod check;
pub mod clock;
pub mod commands;
pub mod daemon;
pub mod demo;
pub mod last_known;
pub mod lookup;
pub mod plan_report;
pub mod preview;
pub mod service;
