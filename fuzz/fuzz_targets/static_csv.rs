#![no_main]
//! See `dialsync_fuzz::static_csv` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| dialsync_fuzz::static_csv(data));
