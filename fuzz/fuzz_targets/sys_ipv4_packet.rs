//! A havip-sys decoder of bytes the kernel hands over; see havip_sys::fuzzing::ipv4_packet.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| havip_sys::fuzzing::ipv4_packet(data));
