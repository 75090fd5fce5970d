//! HTTP basic authentication for the admin endpoint (`[admin] auth = ["user:password"]`),
//! what HAProxy's `stats auth user:password` gives its statistics page.
//!
//! Every path but `/healthz` needs the credentials when any are configured: `/healthz` stays
//! open so an upstream balancer or a kubelet probe can watch havip without them. The
//! expected `Authorization` values are computed once; a request's header is compared with
//! each in time that does not depend on where they differ.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The credentials the admin endpoint accepts; empty: no authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasicAuth {
    /// `Basic <base64(user:password)>` for each configured pair.
    expected: Vec<Vec<u8>>,
}

impl BasicAuth {
    /// From `user:password` pairs.
    pub fn new(pairs: &[String]) -> BasicAuth {
        BasicAuth {
            expected: pairs
                .iter()
                .map(|p| format!("Basic {}", base64(p.as_bytes())).into_bytes())
                .collect(),
        }
    }

    /// Whether a request for `path` with these headers may be answered.
    pub fn permits(&self, path: &str, headers: &[httparse::Header<'_>]) -> bool {
        if self.expected.is_empty() {
            return true;
        }
        let path = path.split('?').next().unwrap_or(path);
        if path == "/healthz" {
            return true;
        }
        let Some(given) = headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("authorization"))
            .map(|h| trim(h.value))
        else {
            return false;
        };
        // Every candidate is compared, so the time taken does not say which one matched.
        let mut matched = false;
        for expected in &self.expected {
            matched |= same(expected, given);
        }
        matched
    }
}

/// Answer 401 with the challenge that makes browsers and curl ask for credentials.
pub async fn unauthorized(stream: &mut TcpStream) -> std::io::Result<()> {
    let body = b"authentication required\n";
    let head = format!(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"havip\"\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|byte| !byte.is_ascii_whitespace())
        .map_or(start, |last| last + 1);
    value.get(start..end).unwrap_or(&[])
}

/// Equal, comparing every byte whatever the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Standard base64 with padding (RFC 4648 section 4).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let bytes = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let group = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for sextet in 0..4 {
            if sextet <= chunk.len() {
                out.push(char::from(
                    ALPHABET[((group >> (18 - 6 * sextet)) & 63) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(value: &'a str) -> [httparse::Header<'a>; 1] {
        [httparse::Header {
            name: "Authorization",
            value: value.as_bytes(),
        }]
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(
            base64(b"admin:QingHaoPassword"),
            "YWRtaW46UWluZ0hhb1Bhc3N3b3Jk"
        );
    }

    #[test]
    fn requests_need_one_of_the_credentials_except_healthz() {
        let auth = BasicAuth::new(&["admin:secret".into(), "ops:x".into()]);
        let good = format!("Basic {}", base64(b"admin:secret"));
        let other = format!("  Basic {} ", base64(b"ops:x"));
        let bad = format!("Basic {}", base64(b"admin:wrong"));
        assert!(auth.permits("/metrics", &header(&good)));
        assert!(auth.permits("/api/status?x=1", &header(&other)));
        assert!(!auth.permits("/metrics", &header(&bad)));
        assert!(!auth.permits("/metrics", &[]));
        assert!(auth.permits("/healthz", &[]));
        assert!(BasicAuth::default().permits("/metrics", &[]));
    }
}
