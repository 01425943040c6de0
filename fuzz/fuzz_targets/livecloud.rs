#![no_main]
//! See `dialsync_fuzz::livecloud` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| dialsync_fuzz::livecloud(data));
