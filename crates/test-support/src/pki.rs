//! Certificates made with the real openssl CLI: a test CA, a second unrelated CA, a server
//! certificate for 127.0.0.1 / ::1 / [`SERVER_NAME`] and client certificates whose keys come
//! in the three PEM encodings (PKCS#8, SEC1, PKCS#1); and a plain self-signed certificate for
//! backends whose clients do not verify. Tests that use it need [`Need::Openssl`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::guard::Need;
use crate::scratch::Scratch;

/// Files of the generated test PKI, all in the scratch directory.
#[derive(Debug)]
pub struct Pki {
    /// The test CA's certificate.
    pub ca_cert: PathBuf,
    /// A CA that signed nothing we use: verification against it must fail.
    pub other_ca_cert: PathBuf,
    /// The server certificate (signed by the test CA) for 127.0.0.1, ::1 and
    /// [`SERVER_NAME`].
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// EC (P-256) client certificate, signed by the test CA.
    pub client_ec_cert: PathBuf,
    /// Its key as PKCS#8 ("PRIVATE KEY").
    pub client_ec_pkcs8_key: PathBuf,
    /// Its key as SEC1 ("EC PRIVATE KEY").
    pub client_ec_sec1_key: PathBuf,
    openssl: PathBuf,
    dir: PathBuf,
}

/// Server name in the server certificate besides the loopback IPs.
pub const SERVER_NAME: &str = "apiserver.test";

const SERVER_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:apiserver.test\n";
const CLIENT_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
extendedKeyUsage=clientAuth\n";

impl Pki {
    /// Generate every file in `scratch` with the openssl CLI (needs [`Need::Openssl`]).
    pub fn generate(scratch: &Scratch) -> Pki {
        let dir = scratch.dir.clone();
        let pki = Pki {
            ca_cert: dir.join("ca.crt"),
            other_ca_cert: dir.join("other-ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_ec_cert: dir.join("client-ec.crt"),
            client_ec_pkcs8_key: dir.join("client-ec.key"),
            client_ec_sec1_key: dir.join("client-ec.sec1.key"),
            openssl: Need::Openssl.path(),
            dir,
        };
        scratch.write("server.ext", SERVER_EXT);
        scratch.write("client.ext", CLIENT_EXT);
        pki.self_signed_ca("ca", "havip-test-ca");
        pki.self_signed_ca("other-ca", "havip-other-ca");
        pki.ec_key("server.key");
        pki.signed_cert("server", "server.key", "apiserver.test", "server.ext");
        pki.ec_key("client-ec.key");
        pki.openssl(&[
            "pkey",
            "-in",
            "client-ec.key",
            "-traditional",
            "-out",
            "client-ec.sec1.key",
        ]);
        pki.signed_cert("client-ec", "client-ec.key", "havip-check-ec", "client.ext");
        pki
    }

    /// An RSA client certificate with its key as PKCS#1 ("RSA PRIVATE KEY"); separate
    /// because RSA key generation is the slow part.
    pub fn rsa_client(&self) -> (PathBuf, PathBuf) {
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "client-rsa.key",
        ]);
        self.openssl(&[
            "pkey",
            "-in",
            "client-rsa.key",
            "-traditional",
            "-out",
            "client-rsa.pkcs1.key",
        ]);
        self.signed_cert(
            "client-rsa",
            "client-rsa.key",
            "havip-check-rsa",
            "client.ext",
        );
        (
            self.dir.join("client-rsa.crt"),
            self.dir.join("client-rsa.pkcs1.key"),
        )
    }

    fn self_signed_ca(&self, name: &str, cn: &str) {
        self.ec_key(&format!("{name}.key"));
        self.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }

    fn ec_key(&self, out: &str) {
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            out,
        ]);
    }

    fn signed_cert(&self, name: &str, key: &str, cn: &str, ext: &str) {
        let csr = format!("{name}.csr");
        self.openssl(&[
            "req",
            "-new",
            "-key",
            key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            ext,
            "-out",
            &format!("{name}.crt"),
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new(&self.openssl)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// First line of a PEM file, to prove which key encoding a file holds.
pub fn pem_label(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read PEM");
    text.lines().next().unwrap_or_default().to_owned()
}

/// A self-signed P-256 certificate for `cn` and its key, written as `<dir>/tls.crt` and
/// `<dir>/tls.key` (valid for two days).
pub fn self_signed(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    let out = Command::new(Need::Openssl.path())
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={cn}"), "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}
