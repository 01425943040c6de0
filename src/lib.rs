//! dialsync keeps an AudioCodes SBC dial plan equal to the numbers provisioned upstream.
//!
//! The library holds all of the product; `main.rs` only parses the command line and wires it.
//! The domain core — [`number`], [`dialplan`], [`resolve`], [`compile`], [`index`], [`plan`]
//! (with its ownership invariant) — is pure: no I/O and no clock, so it can be tested
//! exhaustively and benchmarked in isolation.
//!
//! A number travels [`source`] -> [`resolve`] -> [`compile`] -> [`plan`] -> [`sink`], with
//! [`store`] as memory and [`config`] saying how; [`net`] is the HTTP both ends share.
//! Everything that makes that path a product an operator runs (the cycle, the systemd service,
//! the commands, the admin port, the monitoring plugin, the demo) is the application shell,
//! [`app`], which uses the path and is never used by it. ARCHITECTURE.md is the map.
// Denied, not forbidden: `index::prefetch` and `index::huge_pages` hold the library's two `unsafe`
// blocks, a cache hint and a paging hint, each measured to pay for itself (ARCHITECTURE.md,
// Invariants).
#![deny(unsafe_code)]

pub mod app;
pub mod audit;
pub mod compile;
pub mod config;
pub mod dialplan;
pub mod error;
pub mod index;
pub mod net;
pub mod number;
pub mod plan;
pub mod resolve;
pub mod sim;
pub mod sink;
pub mod source;
pub mod store;
