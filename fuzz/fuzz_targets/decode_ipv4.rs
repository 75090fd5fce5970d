//! Fuzzes the VRRP decoder with IPv4 metadata: input = checksum-form byte, source (4 bytes),
//! destination (4 bytes), then the VRRP payload. Whatever decodes must re-encode to an
//! advertisement that decodes the same.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use havip_vrrp::packet::{decode, encode, ChecksumContext, V3Ipv4Checksum};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((header, payload)) = data.split_first_chunk::<9>() else {
        return;
    };
    let [form, s0, s1, s2, s3, d0, d1, d2, d3] = *header;
    let context = ChecksumContext {
        source: IpAddr::V4(Ipv4Addr::new(s0, s1, s2, s3)),
        destination: IpAddr::V4(Ipv4Addr::new(d0, d1, d2, d3)),
        v3_ipv4_checksum: if form & 1 == 0 {
            V3Ipv4Checksum::PseudoHeader
        } else {
            V3Ipv4Checksum::MessageOnly
        },
    };
    if let Ok(advert) = decode(payload, &context) {
        let bytes = encode(&advert, &context).expect("a decoded advertisement encodes");
        assert_eq!(decode(&bytes, &context), Ok(advert));
    }
});
