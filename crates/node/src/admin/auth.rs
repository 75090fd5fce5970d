//! HTTP basic authentication for the admin endpoint (`[admin] auth = ["user:password"]`),
//! what HAProxy's `stats auth` and `userlist` give its statistics page.
//!
//! Every path but `/healthz` needs the credentials when any are configured: `/healthz` stays
//! open so an upstream balancer or a kubelet probe can watch havip without them. The control
//! socket needs none (its file permissions are the access control).
//!
//! A password is plaintext or a hash: sha-crypt (`$5$`, `$6$`), yescrypt (`$y$`, what Debian's
//! `mkpasswd` and `/etc/shadow` use) or argon2 (`$argon2id$...`). The scheme name `Basic` is
//! matched without regard to case (RFC 9110 11.1). Plaintext is compared in time that does not
//! depend on where it differs. A hash costs milliseconds (yescrypt: tens, and 16 MiB) to
//! verify, so verification runs on the blocking pool, and credentials that verified are
//! remembered by their SHA-256 digest (a stats page polling every two seconds then costs one
//! hash, not one per request); a wrong password is never remembered.
//!
//! Lifecycle: built once from the config when the endpoint starts ([`BasicAuth::new`] checks
//! every hash then); shared by every connection.

use std::sync::{Arc, Mutex};

use base64ct::Encoding;
use password_check::verify_hash;
use sha2::{Digest, Sha256};

/// Why `[admin] auth` cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthConfigError {
    /// A password that looks like a hash is not one the verifiers can read.
    #[error("[admin] auth: the hash of user {user:?} cannot be read ({why}); make it with `mkpasswd -m sha-512` or `mkpasswd -m yescrypt`")]
    BadHash {
        /// The user whose entry is wrong.
        user: String,
        /// What the verifier said.
        why: String,
    },
}

/// One configured user.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Credential {
    user: Vec<u8>,
    secret: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Secret {
    Plain(Vec<u8>),
    Hash(String),
}

/// How many verified credentials are remembered.
const REMEMBERED: usize = 32;

/// The credentials the admin endpoint accepts; empty: no authentication.
#[derive(Debug, Default)]
pub struct BasicAuth {
    credentials: Vec<Credential>,
    /// SHA-256 of `user:password` pairs that verified against a hash, newest last.
    verified: Mutex<Vec<[u8; 32]>>,
}

impl BasicAuth {
    /// From `user:password` pairs (the password may be a hash); a hash that cannot be read
    /// is an error here, at start, not a refusal later.
    pub fn new(pairs: &[String]) -> Result<BasicAuth, AuthConfigError> {
        let mut credentials = Vec::new();
        for pair in pairs {
            let (user, password) = pair.split_once(':').unwrap_or((pair, ""));
            let secret = if havip_config::is_password_hash(password) {
                // A wrong password must be the only failure a readable hash gives.
                match verify_hash(b"", password) {
                    Ok(_) => {}
                    Err(why) => {
                        return Err(AuthConfigError::BadHash {
                            user: user.to_string(),
                            why,
                        })
                    }
                }
                Secret::Hash(password.to_string())
            } else {
                Secret::Plain(password.as_bytes().to_vec())
            };
            credentials.push(Credential {
                user: user.as_bytes().to_vec(),
                secret,
            });
        }
        Ok(BasicAuth {
            credentials,
            verified: Mutex::new(Vec::new()),
        })
    }

    /// Whether no credentials are configured (every request is let in).
    pub fn is_open(&self) -> bool {
        self.credentials.is_empty()
    }

    /// Whether an `Authorization` header value carries valid credentials (always true when
    /// none are configured).
    pub async fn permits(self: &Arc<Self>, authorization: Option<&[u8]>) -> bool {
        if self.is_open() {
            return true;
        }
        let Some((user, password)) = authorization.and_then(decode_basic) else {
            return false;
        };
        let mut plain_match = false;
        let mut hashes = Vec::new();
        // Every plaintext candidate is compared, so the time taken does not say which matched.
        for credential in &self.credentials {
            let same_user = same(&credential.user, &user);
            match &credential.secret {
                Secret::Plain(expected) => plain_match |= same_user & same(expected, &password),
                Secret::Hash(hash) if same_user => hashes.push(hash.clone()),
                Secret::Hash(_) => {}
            }
        }
        if plain_match {
            return true;
        }
        if hashes.is_empty() {
            return false;
        }
        let digest = digest(&user, &password);
        if self.remembers(&digest) {
            return true;
        }
        let verified = tokio::task::spawn_blocking(move || {
            hashes
                .iter()
                .any(|hash| verify_hash(&password, hash) == Ok(true))
        })
        .await
        .unwrap_or(false);
        if verified {
            self.remember(digest);
        }
        verified
    }

    fn remembers(&self, digest: &[u8; 32]) -> bool {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified
            .iter()
            .fold(false, |found, known| found | same(known, digest))
    }

    fn remember(&self, digest: [u8; 32]) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= REMEMBERED {
            verified.remove(0);
        }
        verified.push(digest);
    }
}

/// Checking a password against a hash of any supported scheme.
mod password_check {
    use argon2::Argon2;
    use sha_crypt::password_hash;
    use sha_crypt::{PasswordVerifier, ShaCrypt};
    use yescrypt::Yescrypt;

    /// `Ok(true)`: the password matches; `Ok(false)`: it does not; `Err`: the hash cannot be
    /// read.
    pub fn verify_hash(password: &[u8], hash: &str) -> Result<bool, String> {
        let result = if hash.starts_with("$5$") || hash.starts_with("$6$") {
            ShaCrypt::default().verify_password(password, hash)
        } else if hash.starts_with("$y$") {
            Yescrypt::default().verify_password(password, hash)
        } else if hash.starts_with("$argon2") {
            Argon2::default().verify_password(password, hash)
        } else {
            return Err("unknown scheme".into());
        };
        match result {
            Ok(()) => Ok(true),
            Err(password_hash::Error::PasswordInvalid) => Ok(false),
            Err(other) => Err(other.to_string()),
        }
    }
}

/// `Basic <base64(user:password)>`, the scheme in any case: (user, password).
fn decode_basic(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = text.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64ct::Base64::decode_vec(token.trim()).ok()?;
    let colon = decoded.iter().position(|&byte| byte == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

fn digest(user: &[u8], password: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(user);
    hasher.update(b":");
    hasher.update(password);
    hasher.finalize().into()
}

/// Equal, comparing every byte whatever the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Standard base64 with padding (RFC 4648 section 4), for clients building the header.
pub fn base64(data: &[u8]) -> String {
    base64ct::Base64::encode_string(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl passwd -6 -salt saltsalt secret` (OpenSSL's sha512-crypt).
    const SHA512: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    /// `crypt("secret", "$y$j9T$abcdefghijklmnop")` by glibc's libxcrypt (Debian's default
    /// scheme for /etc/shadow).
    const YESCRYPT: &str = "$y$j9T$abcdefghijklmnop$3dL1LkYnZM.OVXuVdnnaKVDlLYT92dRwOzDZ5XiVCe.";

    fn header(user_password: &str) -> Vec<u8> {
        format!("Basic {}", base64(user_password.as_bytes())).into_bytes()
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[tokio::test]
    async fn plaintext_any_case_of_the_scheme_and_only_the_right_pair() {
        let auth = Arc::new(BasicAuth::new(&["admin:secret".into(), "ops:x".into()]).unwrap());
        assert!(auth.permits(Some(&header("admin:secret"))).await);
        let lower = format!("  basic {} ", base64(b"ops:x"));
        assert!(auth.permits(Some(lower.as_bytes())).await);
        let upper = format!("BASIC {}", base64(b"ops:x"));
        assert!(auth.permits(Some(upper.as_bytes())).await);
        assert!(!auth.permits(Some(&header("admin:wrong"))).await);
        // Another user's password does not do.
        assert!(!auth.permits(Some(&header("ops:secret"))).await);
        assert!(!auth.permits(Some(b"Bearer abc")).await);
        assert!(!auth.permits(None).await);
        assert!(
            Arc::new(BasicAuth::default()).permits(None).await,
            "no credentials configured: open"
        );
    }

    #[tokio::test]
    async fn hashes_made_by_openssl_and_libxcrypt_verify() {
        let auth = Arc::new(
            BasicAuth::new(&[format!("admin:{SHA512}"), format!("ops:{YESCRYPT}")]).unwrap(),
        );
        assert!(auth.permits(Some(&header("admin:secret"))).await);
        assert!(auth.permits(Some(&header("ops:secret"))).await);
        // Remembered after the first success: the second costs no hash.
        assert!(auth.remembers(&digest(b"ops", b"secret")));
        assert!(auth.permits(Some(&header("ops:secret"))).await);
        assert!(!auth.permits(Some(&header("ops:Secret"))).await);
        assert!(!auth.remembers(&digest(b"ops", b"Secret")));
        assert!(
            !auth
                .permits(Some(&header(&format!("admin:{SHA512}"))))
                .await
        );
    }

    #[tokio::test]
    async fn argon2_phc_strings_verify() {
        use argon2::PasswordHasher;
        // No argon2 tool in Debian's base system: hash with the crate's own hasher, then
        // check that the encoded string is what the config takes.
        let hash = argon2::Argon2::default()
            .hash_password_with_salt(b"secret", b"somesaltsomesalt")
            .unwrap()
            .to_string();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let auth = Arc::new(BasicAuth::new(&[format!("admin:{hash}")]).unwrap());
        assert!(auth.permits(Some(&header("admin:secret"))).await);
        assert!(!auth.permits(Some(&header("admin:nope"))).await);
    }

    #[test]
    fn an_unreadable_hash_is_refused_at_start() {
        let error = BasicAuth::new(&["admin:$6$salt".into()]).unwrap_err();
        assert!(matches!(error, AuthConfigError::BadHash { ref user, .. } if user == "admin"));
    }
}
