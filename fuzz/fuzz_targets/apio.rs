#![no_main]
//! See `dialsync_fuzz::apio` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| dialsync_fuzz::apio(data));
