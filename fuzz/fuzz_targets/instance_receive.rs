//! The receive path and state machine of an instance; see havip_vrrp::fuzzing::instance_receive.
//! The body lives in the library so that crates/vrrp replays saved inputs as regression tests.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| havip_vrrp::fuzzing::instance_receive(data));
