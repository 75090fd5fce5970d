//! Fuzzes the VRRP decoder with IPv6 metadata: input = source (16 bytes), destination
//! (16 bytes), then the VRRP payload. Whatever decodes must re-encode to an advertisement that
//! decodes the same.
#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use havip_vrrp::packet::{decode, encode, ChecksumContext, V3Ipv4Checksum};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((source, rest)) = data.split_first_chunk::<16>() else {
        return;
    };
    let Some((destination, payload)) = rest.split_first_chunk::<16>() else {
        return;
    };
    let context = ChecksumContext {
        source: IpAddr::V6(Ipv6Addr::from(*source)),
        destination: IpAddr::V6(Ipv6Addr::from(*destination)),
        v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
    };
    if let Ok(advert) = decode(payload, &context) {
        let bytes = encode(&advert, &context).expect("a decoded advertisement encodes");
        assert_eq!(decode(&bytes, &context), Ok(advert));
    }
});
