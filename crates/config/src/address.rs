//! IP addresses and prefixes as configs write them.

use std::net::IpAddr;

/// `ADDR` or `ADDR/LEN`; a bare address gets the host prefix (/32 or /128).
pub fn parse_prefix(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => {
            let n: u8 = l.parse().ok()?;
            if n > max {
                return None;
            }
            n
        }
        None => max,
    };
    Some((addr, len))
}

/// Whether `addr` is inside `net/len` (same family only).
pub fn in_subnet(addr: IpAddr, net: IpAddr, len: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let len = u32::from(len.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            (u32::from(a) & mask) == (u32::from(n) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let len = u32::from(len.min(128));
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            (u128::from(a) & mask) == (u128::from(n) & mask)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_subnets() {
        let (a, l) = parse_prefix("10.0.0.5/24").unwrap();
        assert_eq!(l, 24);
        assert!(in_subnet("10.0.0.200".parse().unwrap(), a, l));
        assert!(!in_subnet("10.0.1.1".parse().unwrap(), a, l));
        assert_eq!(parse_prefix("10.0.0.5").unwrap().1, 32);
        assert_eq!(parse_prefix("fd00::1").unwrap().1, 128);
        assert!(parse_prefix("10.0.0.5/33").is_none());
        assert!(!in_subnet("fd00::1".parse().unwrap(), a, 0));
    }
}
