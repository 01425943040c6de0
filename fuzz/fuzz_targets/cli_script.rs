#![no_main]
//! See `dialsync_fuzz::cli_script` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| dialsync_fuzz::cli_script(data));
