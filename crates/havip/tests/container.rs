//! The OCI image (issue 13), built and run without a registry or a container runtime:
//! `packaging/container/build-image.sh` builds it with buildah from scratch around the binary
//! of this test run (in a private buildah store) and writes it as an OCI layout; the test
//! unpacks its layers into a root filesystem, reads the image config (user, entrypoint,
//! command) and runs it the way a runtime would, since podman cannot start containers on
//! these machines (crun: "cgroups in hybrid mode not supported"): in a network namespace
//! (the host network of seed 002's `docker run --net=host`), in fresh mount and PID
//! namespaces (havip is PID 1), root filesystem read-only, `/proc`, `/sys`, `/dev`, `/tmp`,
//! `/run` mounted, the config bind-mounted read-only, as the image's non-root user with only
//! `NET_ADMIN` and `NET_RAW` (`--cap-add NET_ADMIN --cap-add NET_RAW`). It must hold the VIP
//! and balance over the backends, as seed 002's keepalived and HAProxy containers do, and
//! release the VIP when the runtime stops it with SIGTERM.
//!
//! Dropping privileges happens inside the new root, so the test's copy of the root
//! filesystem gets `/.runtime/` with util-linux's `setpriv` and its libraries (run through
//! their own loader), as a runtime brings its own init; the image itself holds only havip.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use havip_test_support::lab::{node_v4, Lab};
use havip_test_support::node_config::{Health, NodeConfig, Service, Vrrp};
use havip_test_support::scratch::Scratch;
use havip_test_support::tools::run_bounded;
use havip_test_support::{require, serial, wait_for, Need};
use serde_json::Value;

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 202);
const PORT: u16 = 9443;
const BACKEND_PORT: u16 = 9000;
const LIMIT: Duration = Duration::from_secs(120);

fn run_ok(program: &str, args: &[&str]) -> String {
    let output = run_bounded(Path::new(program), args, LIMIT);
    assert!(
        output.status.success(),
        "{program} {}: {}\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// What the image says about how to run it, and where its root filesystem was unpacked.
struct Image {
    user: String,
    argv: Vec<String>,
    rootfs: PathBuf,
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn blob(oci: &Path, digest: &Value) -> PathBuf {
    let digest = digest.as_str().unwrap();
    oci.join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// Build the image into `scratch`, then unpack it from its OCI layout as a runtime does.
fn build_and_unpack(scratch: &Scratch) -> Image {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/container/build-image.sh");
    let oci = scratch.path("oci");
    let tag = format!("localhost/havip-test:{}", std::process::id());
    let printed = run_ok(
        script.to_str().unwrap(),
        &[
            "--binary",
            HAVIP,
            "--tag",
            &tag,
            "--storage",
            scratch.path("store").to_str().unwrap(),
            "--oci",
            oci.to_str().unwrap(),
        ],
    );
    assert_eq!(printed.trim(), tag);
    let index = json(&oci.join("index.json"));
    let manifest = json(&blob(&oci, &index["manifests"][0]["digest"]));
    let config = json(&blob(&oci, &manifest["config"]["digest"]));
    let rootfs = scratch.path("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let media = layer["mediaType"].as_str().unwrap();
        let flags = if media.ends_with("+gzip") {
            "-xzf"
        } else {
            "-xf"
        };
        let path = blob(&oci, &layer["digest"]);
        let listing = run_ok("/usr/bin/tar", &["-tzf", path.to_str().unwrap()]);
        // One layer from scratch: nothing to white out.
        assert!(!listing.contains(".wh."), "{listing}");
        run_ok(
            "/usr/bin/tar",
            &[
                flags,
                path.to_str().unwrap(),
                "-C",
                rootfs.to_str().unwrap(),
                "--same-owner",
            ],
        );
    }
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let mut argv = strings(&config["config"]["Entrypoint"]);
    argv.extend(strings(&config["config"]["Cmd"]));
    Image {
        user: config["config"]["User"].as_str().unwrap().to_string(),
        argv,
        rootfs,
    }
}

/// Every file (not directory) in the root filesystem, relative to it.
fn files(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(path);
            } else {
                out.insert(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out
}

/// Put setpriv and what it links into `rootfs/.runtime/`: the runtime's own helper.
fn add_runtime_helper(rootfs: &Path) {
    let helper = rootfs.join(".runtime");
    std::fs::create_dir_all(&helper).unwrap();
    let ldd = run_ok("/usr/bin/ldd", &["/usr/bin/setpriv"]);
    let mut files = vec!["/usr/bin/setpriv".to_string()];
    for line in ldd.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [_, "=>", path, ..] if path.starts_with('/') => files.push(path.to_string()),
            [path, ..] if path.starts_with('/') => files.push(path.to_string()),
            _ => {}
        }
    }
    for file in files {
        let name = Path::new(&file).file_name().unwrap();
        std::fs::copy(&file, helper.join(name)).unwrap();
    }
    assert!(helper.join("ld-linux-x86-64.so.2").exists(), "{ldd}");
}

/// The shell that sets up the container's mounts in its new mount namespace and execs the
/// image's command as its user with only NET_ADMIN and NET_RAW.
fn runtime_script(image: &Image, config: &Path) -> String {
    let root = image.rootfs.display();
    let (uid, gid) = image.user.split_once(':').unwrap();
    let caps = "-all,+net_admin,+net_raw";
    let argv = image.argv.join(" ");
    format!(
        "set -e\n\
         mount --make-rprivate /\n\
         mount --bind {root} {root}\n\
         mount -o remount,bind,ro {root}\n\
         mount -t proc proc {root}/proc\n\
         mount -t sysfs sysfs {root}/sys\n\
         mount -t tmpfs -o mode=755,nosuid tmpfs {root}/dev\n\
         for d in null zero random urandom; do touch {root}/dev/$d; mount --bind /dev/$d {root}/dev/$d; done\n\
         mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs {root}/tmp\n\
         mount -t tmpfs -o mode=755,nosuid,nodev tmpfs {root}/run\n\
         mount --bind -o ro {config} {root}/etc/havip/havip.toml\n\
         exec chroot {root} /.runtime/ld-linux-x86-64.so.2 --library-path /.runtime \
         /.runtime/setpriv --reuid={uid} --regid={gid} --clear-groups \
         --inh-caps={caps} --ambient-caps={caps} --bounding-set={caps} {argv}\n",
        config = config.display(),
    )
}

/// The havip config of seed 002's two containers in one: VRRP for the VIP and the balancer
/// on VIP:9443 over the other two nodes' backends.
fn seed_002_config() -> NodeConfig {
    NodeConfig::new()
        .grace("1s")
        .log_level("info")
        .log_connections(false)
        .service(
            Service::new(
                "kubernetes-apiserver",
                SocketAddr::new(IpAddr::V4(VIP), PORT),
            )
            .set("balance", "round_robin")
            .health(Health::tcp().interval("200ms"))
            .backend(SocketAddr::new(IpAddr::V4(node_v4(1)), BACKEND_PORT))
            .backend(SocketAddr::new(IpAddr::V4(node_v4(2)), BACKEND_PORT)),
        )
        .vrrp(
            Vrrp::new("VI_1", 44)
                .priority(100)
                .advert_interval("100ms")
                .vip(format!("{VIP}/24")),
        )
}

/// The process unshare forked (the container's PID 1).
fn child_of(pid: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// The container's PID 1, killed (by its PID) when the test ends however it ends: it
/// changed its user, so the parent-death signal of `unshare --kill-child` no longer reaches
/// it, and `unshare` ignores SIGTERM while it waits.
struct ContainerInit(u32);

impl ContainerInit {
    fn signal(&self, signal: &str) {
        let _ = std::process::Command::new("/bin/kill")
            .args([&format!("-{signal}"), &self.0.to_string()])
            .status();
    }
}

impl Drop for ContainerInit {
    fn drop(&mut self) {
        if Path::new(&format!("/proc/{}", self.0)).exists() {
            self.signal("KILL");
        }
    }
}

fn status_field(pid: u32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap()
        .trim()
        .to_string()
}

/// The image holds havip, the libraries it links, and its user: no shell, no package
/// manager.
fn assert_only_havip_and_its_libraries(rootfs: &Path) {
    let files = files(rootfs);
    let expected: BTreeSet<String> = [
        "usr/bin/havip",
        "etc/passwd",
        "etc/group",
        "lib64/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
        "lib/x86_64-linux-gnu/libm.so.6",
        "lib/x86_64-linux-gnu/libgcc_s.so.1",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(
        files, expected,
        "only havip and its libraries: no shell, no package manager"
    );
}

#[test]
fn the_image_holds_only_havip_and_runs_unprivileged_holding_the_vip_and_balancing() {
    require!(Need::Root, Need::Netns, Need::Buildah);
    let _serial = serial();
    // Declared first, dropped last: the lab's processes are gone before the files are.
    let scratch = Scratch::new("image");
    let image = build_and_unpack(&scratch);
    assert_eq!(image.user, "65532:65532");
    assert_eq!(
        image.argv,
        ["/usr/bin/havip", "run", "--config", "/etc/havip/havip.toml"]
    );
    assert_only_havip_and_its_libraries(&image.rootfs);
    add_runtime_helper(&image.rootfs);
    std::fs::write(image.rootfs.join("etc/havip/havip.toml"), "").unwrap();

    let lab = Lab::new("ct", 3);
    lab.start_name_server_on(1, SocketAddr::from(([0, 0, 0, 0], BACKEND_PORT)));
    lab.start_name_server_on(2, SocketAddr::from(([0, 0, 0, 0], BACKEND_PORT)));
    let config = lab.write("havip.toml", &seed_002_config().to_toml());
    let script = runtime_script(&image, &config);
    let runtime = lab.spawn(
        &lab.nodes[0].clone(),
        "/usr/bin/unshare",
        &[
            "--mount",
            "--pid",
            "--fork",
            "--kill-child=SIGTERM",
            "/bin/sh",
            "-c",
            &script,
        ],
        "container.log",
        &[],
    );
    // unshare's child is the shell that execs the image's command: the same PID throughout.
    let init = ContainerInit(
        wait_for(Duration::from_secs(2), || child_of(runtime)).expect("the container's process"),
    );
    let havip = init.0;
    lab.wait_for_sole_holder(IpAddr::V4(VIP), 0, &[], Duration::from_secs(5));
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{havip}/cmdline")).unwrap(),
        "/usr/bin/havip\0run\0--config\0/etc/havip/havip.toml\0"
    );
    assert_eq!(
        status_field(havip, "Uid:").split_whitespace().nth(1),
        Some("65532")
    );
    assert_eq!(
        status_field(havip, "CapEff:"),
        "0000000000003000",
        "NET_ADMIN and NET_RAW only"
    );
    assert_eq!(
        status_field(havip, "NSpid:").split_whitespace().last(),
        Some("1"),
        "PID 1"
    );

    // Balanced over both backends, round robin, through the VIP.
    let target = SocketAddr::new(IpAddr::V4(VIP), PORT);
    let prober = lab.start_prober(target, Duration::from_millis(20), Duration::from_secs(10));
    let started = Instant::now();
    for node in ["node1", "node2"] {
        assert!(
            wait_for(Duration::from_secs(5), || prober
                .first_answer_from(node, started))
            .is_some(),
            "{node} answers through the container's balancer\n{}",
            lab.all_logs()
        );
    }
    prober.stop();
    let answers: Vec<String> = prober
        .results()
        .into_iter()
        .filter_map(|(_, answer)| answer)
        .collect();
    let node1 = answers.iter().filter(|a| *a == "node1").count();
    assert!(
        node1 * 3 >= answers.len() && node1 * 3 <= answers.len() * 2,
        "{answers:?}"
    );

    // The runtime stops the container: SIGTERM to its PID 1, which releases the VIP and
    // exits 0.
    init.signal("TERM");
    assert!(
        wait_for(Duration::from_secs(5), || (!lab
            .node_has_address(0, IpAddr::V4(VIP)))
        .then_some(()))
        .is_some(),
        "the VIP is released on stop\n{}",
        lab.all_logs()
    );
    let log = lab.log_of("container.log");
    assert!(
        !log.contains("not permitted") && !log.contains("ERROR"),
        "{log}"
    );
}

#[test]
fn the_containerfile_runs_the_same_command_as_the_same_user() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file = std::fs::read_to_string(root.join("Containerfile")).unwrap();
    let script = std::fs::read_to_string(root.join("packaging/container/build-image.sh")).unwrap();
    let last_stage = file.rsplit("\nFROM ").next().unwrap();
    for (instruction, in_script) in [
        ("USER 65532:65532", "--user 65532:65532"),
        (
            "ENTRYPOINT [\"/usr/bin/havip\"]",
            "--entrypoint '[\"/usr/bin/havip\"]'",
        ),
        (
            "CMD [\"run\", \"--config\", \"/etc/havip/havip.toml\"]",
            "--cmd '[\"run\", \"--config\", \"/etc/havip/havip.toml\"]'",
        ),
        ("STOPSIGNAL SIGTERM", "--stop-signal SIGTERM"),
    ] {
        assert!(
            last_stage.contains(instruction),
            "Containerfile: {instruction}"
        );
        assert!(script.contains(in_script), "build-image.sh: {in_script}");
    }
    // The runtime stage is slim and non-root: no full distribution, no root user.
    assert!(
        last_stage.starts_with("gcr.io/distroless/cc-debian12:nonroot"),
        "{last_stage}"
    );
    assert!(file.contains("cargo build --release --locked -p havip"));
}
