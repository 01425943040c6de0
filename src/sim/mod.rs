//! Emulators of the systems dialsync talks to, strict enough to test against: the SBC's device
//! REST API today; the upstreams (Fusion, APIO, Live Platform) join them. Used by the tests,
//! by `dialsync demo` and by `dialsync sim` for staging.

pub mod livecloud;
pub mod sbc;
