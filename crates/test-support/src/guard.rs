//! The one prerequisite guard: a test that needs root, network namespaces or an external
//! program says so first, with [`require!`](crate::require):
//!
//! ```text
//! #[test]
//! fn a_crash_moves_the_vip() {
//!     havip_test_support::require!(Need::Root, Need::Netns, Need::Nft);
//!     ...
//! }
//! ```
//!
//! When something is missing the test does not run. Outside CI it prints
//! `SKIPPED <test name>: <what is missing>` to stderr and returns, so a developer's machine
//! without keepalived still runs everything else; under `CI=true` it panics with the same
//! reason, so a CI machine that cannot run a test fails instead of passing it vacuously.
//!
//! `HAVIP_SKIP_EXTERNAL=1` skips every guarded test even where it could run (a quick
//! `cargo test` of the pure and loopback tests on a fully equipped machine), with the same
//! message; under `CI=true` it is refused (the guard panics), and `.ci/run` refuses to start
//! with it set.

use std::io::Write;
use std::path::PathBuf;

use crate::tools;

/// The variable that skips every guarded test outside CI.
pub const SKIP_VAR: &str = "HAVIP_SKIP_EXTERNAL";

/// Something a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Effective user id 0 (namespaces, raw sockets, addresses, nftables).
    Root,
    /// `ip` from iproute2 with `ip netns`.
    Netns,
    /// `nft` (nftables): partitions, cut backends, dropped multicast.
    Nft,
    /// `curl`, to read admin endpoints from inside a namespace.
    Curl,
    /// keepalived 2.2 as a VRRP peer.
    Keepalived,
    /// nginx as a real HTTP(S) server.
    Nginx,
    /// The openssl CLI, to make certificates.
    Openssl,
    /// tcpdump, to capture packets.
    Tcpdump,
    /// tshark (Wireshark's dissectors), to judge packets.
    Tshark,
    /// FRR (zebra, bgpd, bfdd under /usr/lib/frr, and vtysh): BGP peers and a router.
    Frr,
    /// `cargo deb` (cargo-deb from crates.io), to build the Debian package.
    CargoDeb,
    /// lintian, Debian's package checker.
    Lintian,
    /// `systemd-analyze`, to verify the unit file.
    SystemdAnalyze,
    /// buildah, to build the OCI image without a registry or a daemon.
    Buildah,
    /// promtool (Prometheus), to judge `/metrics` output.
    Promtool,
    /// Chromium, headless, to load the stats page.
    Chromium,
}

impl Need {
    /// The program this need is about and the arguments that print its version.
    fn program(self) -> Option<(&'static str, &'static [&'static str])> {
        match self {
            Need::Root => None,
            Need::Netns => Some(("ip", &["netns", "list"])),
            Need::Nft => Some(("nft", &["--version"])),
            Need::Curl => Some(("curl", &["--version"])),
            Need::Keepalived => Some(("keepalived", &["--version"])),
            Need::Nginx => Some(("nginx", &["-v"])),
            Need::Openssl => Some(("openssl", &["version"])),
            Need::Tcpdump => Some(("tcpdump", &["--version"])),
            Need::Tshark => Some(("tshark", &["--version"])),
            Need::Frr => Some(("/usr/lib/frr/bgpd", &["--version"])),
            Need::CargoDeb => Some(("cargo", &["deb", "--version"])),
            Need::Lintian => Some(("lintian", &["--version"])),
            Need::SystemdAnalyze => Some(("systemd-analyze", &["--version"])),
            Need::Buildah => Some(("buildah", &["--version"])),
            Need::Promtool => Some(("promtool", &["--version"])),
            Need::Chromium => Some(("chromium", &["--version"])),
        }
    }

    /// Why this need is not met here, or None when it is.
    pub fn unmet(self) -> Option<String> {
        match self.program() {
            None => (!is_root()).then(|| "root (effective uid 0)".to_string()),
            Some((name, args)) => tools::find(name, args)
                .is_none()
                .then(|| format!("{name} (Debian package {})", self.package())),
        }
    }

    /// Where the program of this need is (PATH, /usr/sbin or /usr/bin); panics when it is
    /// missing, which a guarded test has already ruled out.
    pub fn path(self) -> PathBuf {
        let (name, args) = self.program().expect("a need with a program");
        tools::find(name, args).unwrap_or_else(|| panic!("{name} is not installed"))
    }

    fn package(self) -> &'static str {
        match self {
            Need::Root => "",
            Need::Netns => "iproute2",
            Need::Nft => "nftables",
            Need::Curl => "curl",
            Need::Keepalived => "keepalived",
            Need::Nginx => "nginx",
            Need::Openssl => "openssl",
            Need::Tcpdump => "tcpdump",
            Need::Tshark => "tshark",
            Need::Frr => "frr",
            Need::CargoDeb => "none: cargo install cargo-deb",
            Need::Lintian => "lintian",
            Need::SystemdAnalyze => "systemd",
            Need::Buildah => "buildah",
            Need::Promtool => "prometheus",
            Need::Chromium => "chromium",
        }
    }
}

/// What of `needs` is missing here, joined into one sentence; None when all is present.
pub fn unmet(needs: &[Need]) -> Option<String> {
    let missing: Vec<String> = needs.iter().filter_map(|n| n.unmet()).collect();
    (!missing.is_empty()).then(|| format!("needs {}", missing.join(", ")))
}

/// Whether the test `test` may run: true when every need is met (and HAVIP_SKIP_EXTERNAL is
/// not set); otherwise prints why and returns false outside CI, and panics under CI=true.
pub fn may_run(test: &str, needs: &[Need]) -> bool {
    decide(test, needs, "")
}

/// Like [`may_run`] for one part of a test (e.g. a wire check with tshark after checks that
/// need nothing more): false (after saying so) when the part must be left out.
pub fn may_run_part(test: &str, part: &str, needs: &[Need]) -> bool {
    decide(test, needs, &format!(" ({part})"))
}

fn decide(test: &str, needs: &[Need], part: &str) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let skip_all = std::env::var(SKIP_VAR).is_ok_and(|v| !v.is_empty() && v != "0");
    let unmet = if skip_all { None } else { unmet(needs) };
    match verdict(&format!("{test}{part}"), ci, skip_all, unmet) {
        Verdict::Run => true,
        Verdict::Skip(message) => {
            // Straight to the process's stderr: the test harness captures `eprintln!` of a
            // passing test, and a skip must be seen.
            let _ = writeln!(std::io::stderr(), "{message}");
            false
        }
        Verdict::Fail(message) => panic!("{message}"),
    }
}

/// What the guard does with a test.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Run,
    /// Print this and return.
    Skip(String),
    /// Panic with this.
    Fail(String),
}

fn verdict(test: &str, ci: bool, skip_all: bool, unmet: Option<String>) -> Verdict {
    let reason = match (skip_all, unmet) {
        (true, _) => format!("{SKIP_VAR} is set"),
        (false, Some(reason)) => reason,
        (false, None) => return Verdict::Run,
    };
    if ci {
        Verdict::Fail(format!(
            "{test}: {reason}; CI=true runs every test, so this is a failure"
        ))
    } else {
        Verdict::Skip(format!("SKIPPED {test}: {reason}"))
    }
}

/// Whether this process runs with effective user id 0.
pub fn is_root() -> bool {
    // "Uid: real effective saved filesystem" in /proc/self/status.
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
}

/// The name of the test function a macro was expanded in, from the type name of a function
/// item defined there (`crate::module::test_fn::here`).
pub fn enclosing_function(type_name: &str) -> &str {
    let path = type_name.strip_suffix("::here").unwrap_or(type_name);
    // Drop the crate name: `vrrp_netns::a_crash_moves_the_vip` -> `a_crash_moves_the_vip`.
    path.split_once("::").map_or(path, |(_, rest)| rest)
}

/// The name of the enclosing test function, for messages.
#[macro_export]
macro_rules! test_name {
    () => {{
        fn here() {}
        $crate::guard::enclosing_function(::std::any::type_name_of_val(&here))
    }};
}

/// Return from the enclosing test unless every listed [`Need`] is met: see the module
/// documentation for what happens outside and inside CI.
#[macro_export]
macro_rules! require {
    ($($need:expr),+ $(,)?) => {
        if !$crate::guard::may_run($crate::test_name!(), &[$($need),+]) {
            return;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_name_is_the_enclosing_function() {
        assert_eq!(
            crate::test_name!(),
            "guard::tests::the_test_name_is_the_enclosing_function"
        );
        assert_eq!(enclosing_function("seeds::seed_000::here"), "seed_000");
    }

    #[test]
    fn outside_ci_a_missing_need_skips_loudly_and_under_ci_it_fails() {
        let missing = || Some("needs tshark (Debian package tshark)".to_string());
        assert_eq!(verdict("t", false, false, None), Verdict::Run);
        assert_eq!(
            verdict("t", false, false, missing()),
            Verdict::Skip("SKIPPED t: needs tshark (Debian package tshark)".into())
        );
        assert_eq!(
            verdict("t", true, false, missing()),
            Verdict::Fail(
                "t: needs tshark (Debian package tshark); CI=true runs every test, so this \
                 is a failure"
                    .into()
            )
        );
        assert_eq!(verdict("t", true, false, None), Verdict::Run);
    }

    #[test]
    fn the_skip_variable_skips_outside_ci_and_is_refused_under_ci() {
        assert_eq!(
            verdict("t", false, true, None),
            Verdict::Skip("SKIPPED t: HAVIP_SKIP_EXTERNAL is set".into())
        );
        assert!(
            matches!(verdict("t", true, true, None), Verdict::Fail(m) if m.contains("HAVIP_SKIP_EXTERNAL"))
        );
    }

    #[test]
    fn a_program_counts_as_present_only_when_it_runs() {
        assert!(tools::find("sh", &["-c", "true"]).is_some());
        assert!(tools::find("sh", &["-c", "false"]).is_none());
        assert!(tools::find("havip-no-such-program", &["--version"]).is_none());
    }
}
