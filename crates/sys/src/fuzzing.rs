//! Fuzz-target bodies for the decoders of bytes the kernel hands us: the IPv4 header of a
//! received VRRP packet, the IPv6 control messages, and rtnetlink messages (a notification
//! from any process that can write to the netlink socket's groups is input too). Each must
//! return an error or a value for any bytes, never panic. Used by fuzz/ and by the unit test
//! below that replays a few inputs.

/// A received IPv4 packet: header parsed, payload range inside the packet.
pub fn ipv4_packet(data: &[u8]) {
    if let Ok(facts) = crate::vrrp_socket::parse_ipv4_header(data) {
        assert!(facts.payload.end <= data.len(), "payload inside the packet");
        assert!(facts.payload.start <= facts.payload.end);
    }
}

/// IPv6 ancillary data as recvmsg returns it.
pub fn ipv6_control(data: &[u8]) {
    let _ = crate::vrrp_socket::parse_ipv6_control(data);
}

/// A netlink datagram: every message, and every link, address and event in it.
pub fn netlink_datagram(data: &[u8]) {
    crate::netlink::fuzz_datagram(data);
}

#[cfg(test)]
mod tests {
    #[test]
    fn odd_inputs_are_rejected_not_panicked_on() {
        let inputs: [&[u8]; 6] = [
            &[],
            &[0x45],
            &[0x4f; 60],
            &[
                0x46, 0, 0, 8, 0, 0, 0, 0, 255, 112, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
            ],
            &[16, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0xff; 64],
        ];
        for input in inputs {
            super::ipv4_packet(input);
            super::ipv6_control(input);
            super::netlink_datagram(input);
        }
    }
}
