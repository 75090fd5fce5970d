//! See havip_import::fuzzing::haproxy for the checks. The body lives in the library so that its crate replays saved
//! inputs as regression tests.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| havip_import::fuzzing::haproxy(data));
