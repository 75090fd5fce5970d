//! Loading a config for this node: read the file into typed settings (`havip_config`, files
//! only), then prepare what the proxy builds from them at start — each service's health
//! check, which reads and parses its TLS files and checks host and SNI — so that `havip
//! check`, `havip run` and a reload refuse the same configs with the same file:line:key
//! problems.
//!
//! The reader never needs the proxy; the proxy's own checks run here, after reading, and their
//! problems are placed where the reader saw the service's `[service.health]` table. The admin
//! endpoint's TLS files and password hashes are prepared here too.

use std::net::IpAddr;
use std::path::Path;

use havip_config::lint::{self, Interfaces, Warning};
use havip_config::place::{Place, Places};
use havip_config::{Config, ConfigError, Problem, Reading};
use havip_proxy::health::{Probe, ProbeConfigError};
use havip_sys::netlink::Netlink;

/// A config that read cleanly and whose health checks can be prepared, with where each of
/// its keys was written.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated config.
    pub config: Config,
    /// Where each key and table was written, for warnings and later messages.
    pub places: Places,
}

impl Loaded {
    /// The traps `havip check` warns about, with `interfaces` to compare the VIPs with.
    pub fn warnings(&self, interfaces: &dyn Interfaces) -> Vec<Warning> {
        lint::lint(&lint::facts(&self.config, &self.places), interfaces)
    }
}

/// This machine's interfaces and their addresses, asked over rtnetlink (no root needed), for
/// the lints that compare VIPs with the subnets where they go.
pub struct LocalInterfaces;

impl Interfaces for LocalInterfaces {
    fn addresses(&self, interface: &str) -> Option<Vec<(IpAddr, u8)>> {
        let netlink = Netlink::open().ok()?;
        let link = netlink.link_by_name(interface).ok()??;
        let addresses = netlink.addresses(Some(link.index)).ok()?;
        // In the kernel's order, so the primary address of each family comes first.
        Some(
            addresses
                .into_iter()
                .map(|a| (a.address, a.prefix_len))
                .collect(),
        )
    }
}

/// Read, validate and prepare the config at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let reading = havip_config::read_file(path)?;
    finish(path, reading).map_err(|problems| ConfigError::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}

/// [`load`] for config text; `path` is only used in problem reports.
pub fn load_text(path: &Path, text: &str) -> Result<Loaded, Vec<Problem>> {
    finish(path, havip_config::read(path, text))
}

fn finish(path: &Path, mut reading: Reading) -> Result<Loaded, Vec<Problem>> {
    let problems = prepare(path, &reading);
    reading.problems.extend(problems);
    let (config, places) = reading.into_result()?;
    Ok(Loaded { config, places })
}

/// Prepare every health check as the proxy will at start. A check whose table already has
/// problems from the reader is skipped: its settings are partial, and the same fault would
/// be reported twice.
fn prepare(path: &Path, reading: &Reading) -> Vec<Problem> {
    let mut out = Vec::new();
    for (index, service) in reading.config.services.iter().enumerate() {
        let health = format!("service[{index}].health");
        if reading
            .problems
            .iter()
            .any(|problem| within(&problem.place.key, &health))
        {
            continue;
        }
        let Err(error) = Probe::new(&service.health) else {
            continue;
        };
        let key = match &error {
            ProbeConfigError::Tls(_) => format!("{health}.tls"),
            _ => health.clone(),
        };
        // The default check (no [service.health] table) has nothing that can fail to prepare;
        // should it ever, the service's own place still names the line.
        let place = match reading
            .places
            .get(&health)
            .or_else(|| reading.places.get(&format!("service[{index}]")))
        {
            Some(place) => place.with_key(key),
            None => Place::new(&path.display().to_string().into(), 1, 1, key),
        };
        out.push(Problem::new(place, error.to_string()));
    }
    out.extend(prepare_admin(path, reading));
    out
}

/// Prepare the admin endpoint as [`crate::admin::start`] will: its TLS certificate and key
/// are read and paired, and every password hash is parsed, so a bad file or hash is a
/// problem at `admin.tls_cert` / `admin.auth` here rather than a failed start.
fn prepare_admin(path: &Path, reading: &Reading) -> Vec<Problem> {
    let Some(admin) = &reading.config.admin else {
        return Vec::new();
    };
    if reading
        .problems
        .iter()
        .any(|problem| within(&problem.place.key, "admin"))
    {
        return Vec::new();
    }
    let place = |key: &str| {
        let key = format!("admin.{key}");
        match reading
            .places
            .get(&key)
            .or_else(|| reading.places.get("admin"))
        {
            Some(place) => place.with_key(key),
            None => Place::new(&path.display().to_string().into(), 1, 1, key),
        }
    };
    let mut out = Vec::new();
    if let Some(files) = &admin.tls {
        if let Err(error) = crate::admin::http::tls_acceptor(files) {
            out.push(Problem::new(place("tls_cert"), error.to_string()));
        }
    }
    if let Err(error) = crate::admin::auth::BasicAuth::new(&admin.auth) {
        out.push(Problem::new(place("auth"), error.to_string()));
    }
    out
}

/// Whether `key` is `table` or a key inside it.
fn within(key: &str, table: &str) -> bool {
    key.strip_prefix(table)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match load_text(Path::new("havip.toml"), text) {
            Ok(_) => panic!("expected problems"),
            Err(list) => list.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn admin_tls_files_and_password_hashes_are_checked() {
        let list = problems(
            "[admin]\nauth = [\"ops:$6$saltsalt$short\"]\ntls_cert = \"/nonexistent/admin.crt\"\ntls_key = \"/nonexistent/admin.key\"\n[[service]]\nname = \"a\"\nlisten = \"127.0.0.1:1\"\n[[service.backend]]\naddress = \"127.0.0.1:2\"\n",
        );
        assert_eq!(list.len(), 2, "{list:?}");
        assert!(list[0].starts_with("havip.toml:3:"), "{list:?}");
        assert!(
            list[0].contains("admin.tls_cert: /nonexistent/admin.crt"),
            "{list:?}"
        );
        assert!(list[1].starts_with("havip.toml:2:"), "{list:?}");
        assert!(
            list[1].contains("admin.auth: [admin] auth: the hash of user \"ops\" cannot be read"),
            "{list:?}"
        );
    }

    #[test]
    fn tls_material_is_loaded_and_checked() {
        let dir = std::env::temp_dir().join(format!("havip-config-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_a_cert = dir.join("ca.crt");
        std::fs::write(&not_a_cert, "this is not PEM\n").unwrap();
        let text = format!(
            r#"[[service]]
name = "a"
listen = "127.0.0.1:1"
[service.health.tls]
verify = true
ca_file = "{}"
[[service.backend]]
address = "10.0.0.1:6443"
"#,
            not_a_cert.display()
        );
        let got = problems(&text);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(
            got[0].starts_with("havip.toml:4:10: service[0].health.tls: ca_file"),
            "{got:#?}"
        );
        assert!(got[0].contains("no certificate"), "{got:#?}");
    }

    #[test]
    fn checks_are_prepared_beside_the_readers_problems() {
        // A bad SNI (the proxy's check) and an unknown key elsewhere (the reader's) are
        // both reported in one go.
        let got = problems(
            r#"[[service]]
name = "a"
listen = "127.0.0.1:1"
retires = 3
[service.health.tls]
sni = "not a name"
[[service.backend]]
address = "10.0.0.1:6443"
"#,
        );
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[0].contains("service[0].retires: unknown key"),
            "{got:#?}"
        );
        assert!(
            got[1].starts_with("havip.toml:5:10: service[0].health: health check sni"),
            "{got:#?}"
        );
    }

    #[test]
    fn a_check_with_problems_is_not_prepared_again() {
        // The reader reports the missing file; preparing would report it a second time.
        let got = problems(
            r#"[[service]]
name = "a"
listen = "127.0.0.1:1"
[service.health.tls]
verify = true
ca_file = "/nonexistent/ca.crt"
[[service.backend]]
address = "10.0.0.1:6443"
"#,
        );
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(
            got[0].contains("cannot read /nonexistent/ca.crt"),
            "{got:#?}"
        );
    }

    #[test]
    fn local_interfaces_come_from_netlink() {
        let lo = LocalInterfaces
            .addresses("lo")
            .expect("lo exists in every namespace");
        assert!(lo.contains(&("127.0.0.1".parse().unwrap(), 8)), "{lo:?}");
        assert_eq!(LocalInterfaces.addresses("havip-no-such"), None);
        assert_eq!(LocalInterfaces.addresses(""), None);
    }

    #[test]
    fn a_clean_config_loads_with_its_places() {
        let loaded = load_text(
            Path::new("havip.toml"),
            "[[service]]\nname = \"a\"\nlisten = \"127.0.0.1:1\"\n[[service.backend]]\naddress = \"10.0.0.1:6443\"\n",
        )
        .unwrap();
        assert_eq!(loaded.config.services.len(), 1);
        let place = loaded.places.get("service[0].backend[0].address").unwrap();
        assert_eq!((place.line, place.column), (5, 11));
    }
}
