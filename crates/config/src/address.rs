//! IP addresses, prefixes and socket addresses as configs write them; the reader and the
//! importer parse them here.

use std::net::{IpAddr, SocketAddr};

/// Why a written address is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not `IP:port`, `[IPv6]:port` or `*:port`.
    #[error("{0:?} is not an address; write IP:port, [IPv6]:port or *:port (hostnames are not resolved)")]
    SocketAddr(String),
    /// The address part of `ADDR/LEN` is not an IP address.
    #[error("{0:?} is not an IP address (write 192.0.2.10/24 or 2001:db8::10/64)")]
    Ip(String),
    /// The prefix length is not a number up to the family's width.
    #[error("prefix length {prefix:?} is not 0-{max}")]
    PrefixLength {
        /// The length as written.
        prefix: String,
        /// 32 or 128.
        max: u8,
    },
}

/// `IP:port`, `[IPv6]:port`, or `*:port` (all IPv4 addresses, as HAProxy's `bind *:port`).
pub fn parse_socket_addr(text: &str) -> Result<SocketAddr, AddressError> {
    let trimmed = text.trim();
    let parsed = match trimmed.strip_prefix("*:") {
        Some(port) => format!("0.0.0.0:{port}").parse(),
        None => trimmed.parse(),
    };
    parsed.map_err(|_| AddressError::SocketAddr(text.to_string()))
}

/// `ADDR/LEN`, or a bare `ADDR` with the host prefix (/32 or /128, keepalived's default).
pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), AddressError> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| AddressError::Ip(text.to_string()))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                return Err(AddressError::PrefixLength {
                    prefix: l.to_string(),
                    max,
                })
            }
        },
    };
    Ok((addr, len))
}

/// [`parse_cidr`] for callers that report their own error.
pub fn parse_prefix(text: &str) -> Option<(IpAddr, u8)> {
    parse_cidr(text).ok()
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

    #[test]
    fn cidr_errors_say_what_is_wrong() {
        assert_eq!(
            parse_cidr("10.0.0.1/33").unwrap_err().to_string(),
            "prefix length \"33\" is not 0-32"
        );
        assert!(parse_cidr("eth0")
            .unwrap_err()
            .to_string()
            .contains("not an IP address"));
        assert_eq!(
            parse_cidr("fd00::1/64"),
            Ok(("fd00::1".parse().unwrap(), 64))
        );
    }

    #[test]
    fn socket_addresses_with_a_star() {
        assert_eq!(
            parse_socket_addr("*:8443").ok(),
            "0.0.0.0:8443".parse().ok()
        );
        assert_eq!(parse_socket_addr(" [::1]:1 ").ok(), "[::1]:1".parse().ok());
        assert!(parse_socket_addr("localhost:80").is_err());
    }
}
