//! Emulators of the systems dialsync talks to, strict enough to test against: the SBC's device
//! REST API and the upstreams (Fusion, APIO, Live Platform). Used by the tests, by
//! `dialsync demo` and by `dialsync sim` for staging, where the upstreams serve the items of a
//! JSON data file (see each module's `load_data`).
//!
//! Each emulator is its state, its routes and its handlers; what they share is written once
//! beside them: the handle of a running emulator ([`Running`]), data files, faults in the body
//! of a list answer, and connections that drip.

pub mod apio;
mod body_fault;
mod conn;
mod data;
pub mod device_rule;
pub mod fusion;
pub mod livecloud;
mod running;
pub mod sbc;

pub use body_fault::{BodyFault, WrongShape};
pub use conn::Conn;
pub use data::{SimData, SimDataError};
pub use running::{Emulator, Running, Serve, Shared};

pub(crate) use body_fault::PageShape;
pub(crate) use conn::serve_with_faults;
pub(crate) use data::{is_path_segment, load};
pub(crate) use running::{lock, serve};
