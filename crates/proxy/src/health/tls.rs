//! Building the rustls client configuration of HTTPS health checks.
//!
//! [`client_config`] is synchronous and reads every file it needs, so the binary can call it
//! when it validates the configuration (`havip check`) and fail with the file and the problem
//! named, long before a check runs. A service builds it once (through
//! [`super::Probe::new`]) and all of the service's backend monitors share the result as
//! `Arc<rustls::ClientConfig>`; a reload builds a new one, so renewed certificate files are
//! picked up on reload, not while running.
//!
//! Verification on: trust anchors from `ca_file`, or from the system bundle when it is unset.
//! Verification off: any certificate is accepted, but handshake signatures are still checked
//! (so the peer must hold the key of the certificate it sent). Client certificates: a PEM
//! chain plus a PKCS#8, PKCS#1 (RSA) or SEC1 (EC) key; the key must match the certificate.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use havip_config::service::TlsCheck;

/// Where Linux distributions keep the system CA bundle, tried in order after `$SSL_CERT_FILE`
/// (the variable OpenSSL honours). Reading the bundle directly avoids a dependency and is
/// what `update-ca-certificates` / `update-ca-trust` maintain.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",   // RHEL, Fedora, CentOS
    "/etc/ssl/ca-bundle.pem",             // SUSE
    "/etc/ssl/cert.pem",                  // Alpine (compat), BSDs
];

/// Which file of the TLS settings a problem is about, as the config names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// `ca_file`: the CA certificates that verify the backend.
    CaFile,
    /// The system CA bundle, used when verification is on and `ca_file` is unset.
    SystemBundle,
    /// `client_cert`: the certificate chain havip presents to the backend.
    ClientCert,
    /// `client_key`: the private key of `client_cert`.
    ClientKey,
}

impl std::fmt::Display for TlsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsFile::CaFile => "ca_file",
            TlsFile::SystemBundle => "system CA bundle",
            TlsFile::ClientCert => "client_cert",
            TlsFile::ClientKey => "client_key",
        })
    }
}

/// Why a TLS client configuration could not be built. Retrying does not help: the files or
/// settings have to be fixed.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A file could not be read (missing, permissions).
    #[error("{file} {}: cannot read: {source}", path.display())]
    Read {
        /// Which setting named the file.
        file: TlsFile,
        /// The file's path.
        path: PathBuf,
        /// What the read said.
        source: io::Error,
    },
    /// A file is not valid PEM.
    #[error("{file} {}: invalid PEM: {source}", path.display())]
    Pem {
        /// Which setting named the file.
        file: TlsFile,
        /// The file's path.
        path: PathBuf,
        /// What the PEM parser said.
        source: rustls_pki_types::pem::Error,
    },
    /// A file that should hold certificates holds none.
    #[error("{file} {}: no certificate (\"BEGIN CERTIFICATE\") in the PEM", path.display())]
    NoCertificate {
        /// Which setting named the file.
        file: TlsFile,
        /// The file's path.
        path: PathBuf,
    },
    /// A CA certificate cannot serve as a trust anchor (not DER X.509, or unsupported).
    #[error("{file} {}: certificate {index} is not a usable trust anchor: {source}", path.display())]
    BadCaCertificate {
        /// Which setting named the file.
        file: TlsFile,
        /// The file's path.
        path: PathBuf,
        /// 1-based position in the file.
        index: usize,
        /// What rustls said.
        source: rustls::Error,
    },
    /// `client_key` holds no private key in any of the supported encodings.
    #[error("client_key {}: no private key (PKCS#8, PKCS#1/RSA or SEC1/EC) in the PEM", path.display())]
    NoPrivateKey {
        /// The `client_key` path.
        path: PathBuf,
    },
    /// rustls cannot use the private key (unsupported algorithm, damaged).
    #[error("client_key {}: unusable key: {source}", path.display())]
    BadPrivateKey {
        /// The `client_key` path.
        path: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// The private key is not the key of the client certificate.
    #[error("client_key {} does not match the certificate in client_cert {}", key.display(), cert.display())]
    KeyMismatch {
        /// The `client_cert` path.
        cert: PathBuf,
        /// The `client_key` path.
        key: PathBuf,
    },
    /// `client_cert` without `client_key`.
    #[error("client_cert is set but client_key is not; both are needed")]
    CertWithoutKey,
    /// `client_key` without `client_cert`.
    #[error("client_key is set but client_cert is not; both are needed")]
    KeyWithoutCert,
    /// Verification is on, `ca_file` is unset and no system bundle exists.
    #[error("no system CA bundle found (tried $SSL_CERT_FILE and {}); set ca_file", SYSTEM_BUNDLES.join(", "))]
    NoSystemBundle,
    /// rustls refused the protocol settings themselves.
    #[error("TLS setup: {0}")]
    Rustls(rustls::Error),
}

/// The client configuration of a check with `verify = false` and no client certificate:
/// any certificate and name accepted, handshake signatures still verified. For clients that
/// probe backends with self-signed certificates (the test lab's), without naming the schema.
pub fn unverified_client_config() -> Result<Arc<ClientConfig>, TlsConfigError> {
    client_config(&TlsCheck {
        verify: false,
        ca_file: None,
        client_cert: None,
        client_key: None,
        sni: None,
    })
}

/// Build the client configuration for HTTPS checks with these settings; see the module docs.
pub fn client_config(tls: &TlsCheck) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsConfigError::Rustls)?;

    let builder = if tls.verify {
        let roots = match &tls.ca_file {
            Some(path) => ca_roots(TlsFile::CaFile, path)?,
            None => system_roots()?,
        };
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new(&provider)))
    };

    let mut config = match (&tls.client_cert, &tls.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(TlsConfigError::CertWithoutKey),
        (None, Some(_)) => return Err(TlsConfigError::KeyWithoutCert),
        (Some(cert_path), Some(key_path)) => {
            let chain = certificates(TlsFile::ClientCert, cert_path)?;
            let key = private_key(key_path)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| match error {
                    rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                        TlsConfigError::KeyMismatch {
                            cert: cert_path.clone(),
                            key: key_path.clone(),
                        }
                    }
                    other => TlsConfigError::BadPrivateKey {
                        path: key_path.clone(),
                        source: other,
                    },
                })?
        }
    };
    // Checks speak HTTP/1.1; saying so keeps an h2-capable server (the apiserver) from
    // having to guess.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(file: TlsFile, path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|source| TlsConfigError::Read {
        file,
        path: path.to_owned(),
        source,
    })
}

/// All certificates in a PEM file, in order; at least one.
fn certificates(
    file: TlsFile,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem = read(file, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsConfigError::Pem {
            file,
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            file,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Trust anchors from a CA file; every certificate in it must be usable, since a silently
/// skipped CA would show up only later as a confusing verification failure.
fn ca_roots(file: TlsFile, path: &Path) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for (position, cert) in certificates(file, path)?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|source| TlsConfigError::BadCaCertificate {
                file,
                path: path.to_owned(),
                index: position + 1,
                source,
            })?;
    }
    Ok(roots)
}

/// Trust anchors from the system bundle. Distribution bundles can hold a certificate webpki
/// cannot parse; those are skipped rather than failing the whole store.
fn system_roots() -> Result<RootCertStore, TlsConfigError> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let path = from_env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find(|candidate| candidate.is_file())
        .ok_or(TlsConfigError::NoSystemBundle)?;
    let mut roots = RootCertStore::empty();
    let (added, _skipped) =
        roots.add_parsable_certificates(certificates(TlsFile::SystemBundle, &path)?);
    if added == 0 {
        return Err(TlsConfigError::NoCertificate {
            file: TlsFile::SystemBundle,
            path,
        });
    }
    Ok(roots)
}

/// The first private key in a PEM file, whichever of the three encodings it uses.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let pem = read(TlsFile::ClientKey, path)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(TlsConfigError::NoPrivateKey {
            path: path.to_owned(),
        }),
        Err(source) => Err(TlsConfigError::Pem {
            file: TlsFile::ClientKey,
            path: path.to_owned(),
            source,
        }),
    }
}

/// `verify = false`: accepts any certificate chain and name, but still verifies the
/// handshake signatures with the provider's algorithms, so the TLS session itself is sound.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyCertificate {
    fn new(provider: &CryptoProvider) -> Self {
        AcceptAnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory removed on drop (also when the test panics).
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "havip-tls-unit-{}-{name}-{}",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::fs::create_dir_all(&dir).expect("create scratch dir");
            Scratch(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).expect("write scratch file");
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tls(ca_file: Option<PathBuf>) -> TlsCheck {
        TlsCheck {
            verify: true,
            ca_file,
            client_cert: None,
            client_key: None,
            sni: None,
        }
    }

    fn err(tls: &TlsCheck) -> TlsConfigError {
        match client_config(tls) {
            Ok(_) => panic!("expected an error for {tls:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn missing_ca_file_is_named() {
        let error = err(&tls(Some("/nonexistent/havip/ca.pem".into())));
        assert!(
            matches!(&error, TlsConfigError::Read { file: TlsFile::CaFile, path, source }
                if path == Path::new("/nonexistent/havip/ca.pem")
                    && source.kind() == io::ErrorKind::NotFound),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with("ca_file /nonexistent/havip/ca.pem: cannot read: "),
            "{error}"
        );
    }

    #[test]
    fn pem_without_certificate_is_rejected() {
        let dir = Scratch::new("nocert");
        let path = dir.write("ca.pem", "just some text\n");
        let error = err(&tls(Some(path.clone())));
        assert!(
            matches!(&error, TlsConfigError::NoCertificate { file: TlsFile::CaFile, path: named } if *named == path),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "ca_file {}: no certificate (\"BEGIN CERTIFICATE\") in the PEM",
                path.display()
            )
        );
    }

    #[test]
    fn garbage_certificate_is_not_a_trust_anchor() {
        let dir = Scratch::new("garbage");
        let path = dir.write(
            "ca.pem",
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        );
        let error = err(&tls(Some(path)));
        assert!(
            matches!(error, TlsConfigError::BadCaCertificate { index: 1, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn cert_and_key_come_in_pairs() {
        let mut settings = tls(None);
        settings.verify = false;
        settings.client_cert = Some("/x/cert.pem".into());
        assert!(matches!(err(&settings), TlsConfigError::CertWithoutKey));
        settings.client_cert = None;
        settings.client_key = Some("/x/key.pem".into());
        assert!(matches!(err(&settings), TlsConfigError::KeyWithoutCert));
    }

    #[test]
    fn verify_off_needs_no_files_and_offers_http11() {
        let mut settings = tls(Some("/nonexistent/ca.pem".into()));
        settings.verify = false;
        let config = client_config(&settings).expect("verify=false ignores ca_file");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn system_bundle_is_used_without_ca_file() {
        // Debian test machines and CI have ca-certificates installed.
        if !SYSTEM_BUNDLES
            .iter()
            .any(|bundle| Path::new(bundle).is_file())
        {
            // CI installs ca-certificates: there a missing bundle is a failure, not a skip.
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI must have a system CA bundle (ca-certificates)"
            );
            eprintln!("SKIPPED system_bundle_is_used_without_ca_file: no system CA bundle");
            return;
        }
        client_config(&tls(None)).expect("system roots load");
    }
}
