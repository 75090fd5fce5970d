//! The Debian package and the systemd unit, checked the way Debian and systemd check them:
//! `packaging/build-deb.sh` builds the `.deb` around the binary this test run built (cargo-deb
//! with `--no-build`: a test cannot start another cargo build), then the test reads it with
//! `dpkg-deb` (files, conffiles, control fields, maintainer scripts), runs `lintian` on it
//! (no error, no warning) and `systemd-analyze verify` on the unit it installs, with the
//! package's `/usr/bin/havip` and man pages overlaid on the host's in a private mount
//! namespace (so `ExecStart=` and `Documentation=man:` resolve to what the package ships,
//! and nothing on the host changes). It also installs, reinstalls and purges the package with
//! dpkg, maintainer scripts and all, on a copy-on-write view of this machine (an overlay of
//! `/` in a private mount namespace, chrooted into: every write lands in a scratch
//! directory). The shipped config, once uncommented, passes `havip check`.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use havip_test_support::guard::Need;
use havip_test_support::require;
use havip_test_support::scratch::Scratch;
use havip_test_support::tools::run_bounded;

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const LIMIT: Duration = Duration::from_secs(180);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run(program: &str, args: &[&str]) -> Output {
    run_bounded(Path::new(program), args, LIMIT)
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {}: {}\n{}",
        args.join(" "),
        output.status,
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// The package, built once for this test binary: (scratch dir holding it, the .deb, the
/// tree it unpacks to, its control files).
struct Built {
    _scratch: Scratch,
    deb: PathBuf,
    tree: PathBuf,
    control: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let scratch = Scratch::new("deb");
        // target/debug/havip: the profile's directory and the target directory above it.
        let profile_dir = Path::new(HAVIP).parent().unwrap();
        let target = profile_dir.parent().unwrap();
        let script = repo().join("packaging/build-deb.sh");
        let out = run_ok(
            "/usr/bin/env",
            &[
                &format!("CARGO_TARGET_DIR={}", target.display()),
                script.to_str().unwrap(),
                "--profile",
                "dev",
                "--no-build",
                "--output",
                scratch.as_path().to_str().unwrap(),
            ],
        );
        let deb = PathBuf::from(out.lines().last().unwrap().trim());
        assert!(deb.is_file(), "build-deb.sh printed {out}");
        let tree = scratch.path("tree");
        let control = scratch.path("control");
        let deb_str = deb.to_str().unwrap();
        run_ok(
            "/usr/bin/dpkg-deb",
            &["-x", deb_str, tree.to_str().unwrap()],
        );
        run_ok(
            "/usr/bin/dpkg-deb",
            &["-e", deb_str, control.to_str().unwrap()],
        );
        Built {
            _scratch: scratch,
            deb,
            tree,
            control,
        }
    })
}

#[test]
fn the_deb_installs_the_binary_unit_config_man_pages_and_completions() {
    require!(Need::CargoDeb);
    let built = built();
    let listing = run_ok("/usr/bin/dpkg-deb", &["-c", built.deb.to_str().unwrap()]);
    for path in [
        "./usr/bin/havip",
        "./usr/lib/systemd/system/havip.service",
        "./etc/havip/havip.toml",
        "./usr/share/man/man8/havip.8.gz",
        "./usr/share/man/man8/havip-run.8.gz",
        "./usr/share/man/man8/havip-check.8.gz",
        "./usr/share/man/man8/havip-manifest.8.gz",
        "./usr/share/man/man5/havip.toml.5.gz",
        "./usr/share/bash-completion/completions/havip",
        "./usr/share/zsh/vendor-completions/_havip",
        "./usr/share/fish/vendor_completions.d/havip.fish",
        "./usr/share/doc/havip/copyright",
        "./usr/share/doc/havip/changelog.Debian.gz",
        "./usr/share/doc/havip/examples/kube-apiserver.toml",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} is not in the package:\n{listing}"
        );
    }
    let binary = listing
        .lines()
        .find(|l| l.ends_with(" ./usr/bin/havip"))
        .unwrap();
    assert!(binary.starts_with("-rwxr-xr-x 0/0 "), "{binary}");
    // The packaged binary is the one built, and it runs.
    let version = run_ok(
        built.tree.join("usr/bin/havip").to_str().unwrap(),
        &["--version"],
    );
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    // The man pages are the binary's own, compressed.
    let page = run_ok(
        "/usr/bin/zcat",
        &[built
            .tree
            .join("usr/share/man/man5/havip.toml.5.gz")
            .to_str()
            .unwrap()],
    );
    assert!(page.contains(".TH HAVIP.TOML 5") && page.contains("virtual_router_id"));
    let bash = std::fs::read_to_string(
        built
            .tree
            .join("usr/share/bash-completion/completions/havip"),
    )
    .unwrap();
    assert!(
        bash.contains("manifest") && bash.contains("completions"),
        "{bash}"
    );
    // The unit is the repository's.
    let unit =
        std::fs::read_to_string(built.tree.join("usr/lib/systemd/system/havip.service")).unwrap();
    assert_eq!(
        unit,
        std::fs::read_to_string(repo().join("packaging/systemd/havip.service")).unwrap()
    );
}

#[test]
fn the_control_data_declares_the_conffile_and_the_maintainer_scripts_follow_debhelper() {
    require!(Need::CargoDeb);
    let built = built();
    let read = |name: &str| std::fs::read_to_string(built.control.join(name)).unwrap();
    assert_eq!(read("conffiles").trim(), "/etc/havip/havip.toml");
    let control = read("control");
    assert!(control.contains("Package: havip\n"), "{control}");
    assert!(
        control.contains(&format!("Version: {}-1\n", env!("CARGO_PKG_VERSION"))),
        "{control}"
    );
    let depends = control.lines().find(|l| l.starts_with("Depends:")).unwrap();
    assert!(
        depends.contains("adduser") && depends.contains("libc6"),
        "{depends}"
    );

    let postinst = read("postinst");
    // The system user first, then the config for its group, then debhelper's systemd part.
    let user = postinst.find("adduser --system --group").unwrap();
    let stat = postinst
        .find("dpkg-statoverride --update --add root havip 0640 /etc/havip/havip.toml")
        .unwrap();
    let systemd = postinst
        .find("deb-systemd-helper update-state havip.service")
        .unwrap();
    assert!(user < stat && stat < systemd, "{postinst}");
    assert!(
        !postinst.contains("#DEBHELPER#"),
        "the token is replaced:\n{postinst}"
    );
    // A fresh install neither enables nor starts the unit (the config is all comments); an
    // upgrade restarts a running havip.
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");
    assert!(
        postinst.contains("deb-systemd-invoke try-restart havip.service"),
        "{postinst}"
    );
    assert!(read("prerm").contains("deb-systemd-invoke stop havip.service"));
    let postrm = read("postrm");
    assert!(
        postrm.contains("dpkg-statoverride --remove /etc/havip/havip.toml"),
        "{postrm}"
    );
    assert!(
        postrm.contains("deb-systemd-helper purge havip.service"),
        "{postrm}"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let path = built.control.join(script);
        run_ok("/bin/sh", &["-n", path.to_str().unwrap()]);
    }
}

#[test]
fn lintian_finds_nothing() {
    require!(Need::CargoDeb, Need::Lintian);
    let built = built();
    let output = run(
        "/usr/bin/lintian",
        &["--tag-display-limit", "0", built.deb.to_str().unwrap()],
    );
    let report: Vec<String> = text(&output)
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .map(str::to_string)
        .collect();
    assert!(report.is_empty(), "lintian:\n{}", report.join("\n"));
    assert!(
        output.status.success(),
        "lintian: {}\n{}",
        output.status,
        text(&output)
    );
}

#[test]
fn systemd_analyze_verifies_the_installed_unit_and_rates_its_sandbox_ok() {
    require!(Need::CargoDeb, Need::SystemdAnalyze, Need::Root);
    let built = built();
    let tree = built.tree.display();
    // A private mount namespace where /usr/bin and /usr/share/man also show the package's
    // files (read-only overlays): verify checks that ExecStart= is executable and that the
    // Documentation= pages exist. The sandbox's exposure stays at most 4.0 of 10 ("OK"; 3.6
    // today).
    let script = format!(
        "set -e; mount --make-rprivate /; \
         mount -t overlay overlay -o lowerdir={tree}/usr/bin:/usr/bin /usr/bin; \
         mount -t overlay overlay -o lowerdir={tree}/usr/share/man:/usr/share/man /usr/share/man; \
         systemd-analyze verify {tree}/usr/lib/systemd/system/havip.service; \
         systemd-analyze security --offline=true --threshold=40 \
             {tree}/usr/lib/systemd/system/havip.service >/dev/null"
    );
    let output = run("/usr/bin/unshare", &["--mount", "/bin/sh", "-c", &script]);
    assert!(
        output.status.success(),
        "systemd-analyze verify: {}",
        text(&output)
    );
    assert!(text(&output).trim().is_empty(), "{}", text(&output));
}

#[test]
fn the_unit_runs_havip_unprivileged_hardened_and_notifying() {
    let unit = std::fs::read_to_string(repo().join("packaging/systemd/havip.service")).unwrap();
    let settings: Vec<(&str, &str)> = unit
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .collect()
    };
    assert_eq!(get("Type"), ["notify"]);
    assert_eq!(get("User"), ["havip"]);
    let caps = "CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE";
    assert_eq!(get("AmbientCapabilities"), [caps]);
    assert_eq!(get("CapabilityBoundingSet"), [caps]);
    assert_eq!(
        get("ExecReload"),
        [
            "/usr/bin/havip check --config /etc/havip/havip.toml",
            "/bin/kill -HUP $MAINPID"
        ]
    );
    assert_eq!(
        get("ExecStart"),
        ["/usr/bin/havip run --config /etc/havip/havip.toml"]
    );
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("RuntimeDirectory", "havip"),
        ("Restart", "on-failure"),
    ] {
        assert_eq!(get(key), [value], "{key}");
    }
    let watchdog = get("WatchdogSec");
    assert_eq!(watchdog.len(), 1);
    // Two descriptors per proxied connection: 100k connections need more than 200k.
    let nofile: u64 = get("LimitNOFILE")[0].parse().unwrap();
    assert!(nofile > 200_000, "{nofile}");
}

#[test]
fn the_shipped_config_is_inert_and_uncommented_it_is_a_valid_kube_apiserver_setup() {
    let shipped = repo().join("packaging/havip.toml");
    let text_of = std::fs::read_to_string(&shipped).unwrap();
    // As shipped: nothing to run, so a started unit would refuse (and the package does not
    // start it).
    let output = run(HAVIP, &["check", "--config", shipped.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(text(&output).contains("nothing to do"), "{}", text(&output));
    // The setting lines are those with no space after '#'.
    let uncommented: String = text_of
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if !rest.is_empty() && !rest.starts_with([' ', '#']) => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let scratch = Scratch::new("conffile");
    let path = scratch.write("havip.toml", &uncommented);
    let output = run(HAVIP, &["check", "--config", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains("1 service(s), 3 backend(s), 1 VRRP instance(s), 1 tracker(s)"),
        "{said}"
    );
}

/// What the install script prints: `key=value` lines.
fn facts(output: &str) -> std::collections::BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn dpkg_installs_upgrades_and_purges_it_on_a_copy_of_this_machine() {
    require!(Need::CargoDeb, Need::Root);
    let built = built();
    let passwd_before = std::fs::read_to_string("/etc/passwd").unwrap();
    let scratch = Scratch::new("dpkg-root");
    let dir = scratch.as_path().display();
    for sub in ["upper", "work", "root"] {
        std::fs::create_dir(scratch.path(sub)).unwrap();
    }
    std::fs::copy(&built.deb, scratch.path("havip.deb")).unwrap();
    // Inside the chroot: install, look, edit the config, reinstall (an upgrade keeps the
    // edit and the ownership), purge, look again.
    let inside = "set -e; deb=/tmp/havip.deb; \
        dpkg -i $deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }; \
        echo passwd=$(getent passwd havip | cut -d: -f6,7); \
        echo group=$(getent group havip | cut -d: -f1); \
        echo config=$(stat -c '%U:%G:%a' /etc/havip/havip.toml); \
        echo enabled=$(test -e /etc/systemd/system/multi-user.target.wants/havip.service && echo yes || echo no); \
        echo version=$(/usr/bin/havip --version); \
        echo man=$(man -w havip.toml); \
        echo '# local edit' >> /etc/havip/havip.toml; \
        dpkg -i $deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }; \
        echo kept=$(tail -n 1 /etc/havip/havip.toml); \
        echo config_after_upgrade=$(stat -c '%U:%G:%a' /etc/havip/havip.toml); \
        dpkg --purge havip >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }; \
        echo etc_after_purge=$(test -e /etc/havip && echo present || echo gone); \
        echo override_after_purge=$(dpkg-statoverride --list /etc/havip/havip.toml || echo none); \
        echo binary_after_purge=$(test -e /usr/bin/havip && echo present || echo gone)";
    let script = format!(
        "set -e; mount --make-rprivate /; \
         mount -t overlay overlay -o lowerdir=/,upperdir={dir}/upper,workdir={dir}/work {dir}/root; \
         mount -t proc proc {dir}/root/proc; mount --rbind /dev {dir}/root/dev; \
         mount -t tmpfs tmpfs {dir}/root/tmp; mount -t tmpfs tmpfs {dir}/root/run; \
         cp {dir}/havip.deb {dir}/root/tmp/havip.deb; \
         exec chroot {dir}/root /bin/sh -c \"$0\"",
    );
    let output = run(
        "/usr/bin/unshare",
        &[
            "--mount", "--pid", "--fork", "/bin/sh", "-c", &script, inside,
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let facts = facts(&String::from_utf8_lossy(&output.stdout));
    let fact = |key: &str| facts.get(key).map(String::as_str).unwrap_or("(missing)");
    assert_eq!(
        fact("passwd"),
        "/nonexistent:/usr/sbin/nologin",
        "{facts:?}"
    );
    assert_eq!(fact("group"), "havip");
    assert_eq!(
        fact("config"),
        "root:havip:640",
        "the config may hold a VRRP password"
    );
    assert_eq!(
        fact("enabled"),
        "no",
        "a fresh install does not enable the unit"
    );
    assert!(
        fact("version").contains(env!("CARGO_PKG_VERSION")),
        "{facts:?}"
    );
    assert_eq!(fact("man"), "/usr/share/man/man5/havip.toml.5.gz");
    assert_eq!(
        fact("kept"),
        "# local edit",
        "an upgrade keeps the operator's config"
    );
    assert_eq!(fact("config_after_upgrade"), "root:havip:640");
    assert_eq!(fact("etc_after_purge"), "gone");
    assert_eq!(fact("override_after_purge"), "none");
    assert_eq!(fact("binary_after_purge"), "gone");
    // Nothing of it reached the machine itself.
    assert_eq!(
        std::fs::read_to_string("/etc/passwd").unwrap(),
        passwd_before
    );
}

#[test]
fn havip_completions_prints_each_shells_script_and_generate_assets_writes_the_same() {
    let scratch = Scratch::new("assets");
    run_ok(
        HAVIP,
        &["generate-assets", scratch.as_path().to_str().unwrap()],
    );
    for (shell, file, marker) in [
        ("bash", "havip.bash", "complete -F _havip"),
        ("zsh", "_havip", "#compdef havip"),
        ("fish", "havip.fish", "complete -c havip"),
    ] {
        let printed = run_ok(HAVIP, &["completions", shell]);
        assert!(printed.contains(marker), "{shell}: {printed}");
        assert!(
            printed.contains("static-pod"),
            "{shell} completes the manifest kinds"
        );
        let written = std::fs::read_to_string(scratch.path("completions").join(file)).unwrap();
        assert_eq!(printed, written, "{shell}");
    }
    let output = run(HAVIP, &["completions", "tcsh"]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("possible values"),
        "{}",
        text(&output)
    );
}
