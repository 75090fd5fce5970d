//! The VRRP decoder with IPv4 metadata; see havip_vrrp::fuzzing::decode_ipv4 for the input layout.
//! The body lives in the library so that crates/vrrp replays saved inputs as regression tests.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| havip_vrrp::fuzzing::decode_ipv4(data));
