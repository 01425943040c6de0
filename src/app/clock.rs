//! The wall clock of the application shell: milliseconds since the Unix epoch, the unit the
//! state database records cycles in.
//!
//! The pipeline has no clock (it is pure); the shell stamps cycles, measures ages and judges
//! readiness with this one, so every part reads time the same way.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_unix_ms() -> i64 {
    unix_ms(SystemTime::now())
}

/// Milliseconds since the Unix epoch; a time before it (a badly set clock) counts as 0.
pub fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
