//! `havip manifest static-pod` from the command line: the binary reads a config, prints a
//! manifest that reads back into the typed Kubernetes `Pod` (k8s-openapi) without losing a
//! field, with the flags' image, name and namespace, the config's path mounted read-only,
//! and notes on stderr; a config it cannot serve as a pod (no `[admin]` for the probe) is
//! refused with the reason.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::process::Command;

use havip_test_support::node_config::{Health, NodeConfig, Service, Vrrp};
use havip_test_support::scratch::Scratch;
use k8s_openapi::api::core::v1::Pod;

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");

fn config() -> NodeConfig {
    NodeConfig::new()
        .admin("127.0.0.1:8404")
        .service(
            Service::new("kube-apiserver", "0.0.0.0:8443")
                .health(Health::tcp())
                .backend("10.88.88.71:6443"),
        )
        .vrrp(Vrrp::new("VI_1", 52).priority(100).vip("10.88.88.70/24"))
}

#[test]
fn the_printed_manifest_is_a_pod_with_the_flags_and_the_config_mounted_read_only() {
    let scratch = Scratch::new("manifest");
    let text = config().to_toml() + "\n[vrrp.notify]\nmaster = \"/etc/havip/master.sh\"\n";
    let path = scratch.write("havip.toml", &text);
    let output = Command::new(HAVIP)
        .args(["--config", path.to_str().unwrap(), "manifest", "static-pod"])
        .args([
            "--image",
            "registry.example/havip:1",
            "--name",
            "vip",
            "--namespace",
            "lb",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let yaml = String::from_utf8(output.stdout).unwrap();
    let pod: Pod = serde_norway::from_str(&yaml).unwrap();
    let printed: serde_norway::Value = serde_norway::from_str(&yaml).unwrap();
    assert_eq!(
        printed,
        serde_norway::to_value(&pod).unwrap(),
        "no field unknown to Pod"
    );
    assert_eq!(pod.metadata.name.as_deref(), Some("vip"));
    assert_eq!(pod.metadata.namespace.as_deref(), Some("lb"));
    let spec = pod.spec.unwrap();
    let container = &spec.containers[0];
    assert_eq!(container.image.as_deref(), Some("registry.example/havip:1"));
    let caps = container
        .security_context
        .as_ref()
        .unwrap()
        .capabilities
        .as_ref()
        .unwrap();
    assert_eq!(
        caps.add.as_deref(),
        Some(&["NET_RAW".to_string(), "NET_ADMIN".to_string()][..])
    );
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
    let volume = &spec.volumes.as_ref().unwrap()[0];
    assert_eq!(
        volume.host_path.as_ref().unwrap().path,
        path.display().to_string()
    );
    assert_eq!(
        container.volume_mounts.as_ref().unwrap()[0].read_only,
        Some(true)
    );
    // The notify command runs in an image without a shell: said on stderr, not in the YAML.
    assert!(stderr.contains("note: notify commands"), "{stderr}");
}

#[test]
fn a_config_without_an_admin_listener_is_refused_because_the_probe_needs_it() {
    let scratch = Scratch::new("manifest-no-admin");
    let text = config()
        .to_toml()
        .replace("[admin]\nlisten = \"127.0.0.1:8404\"\n", "");
    assert!(!text.contains("[admin]"), "{text}");
    let path = scratch.write("havip.toml", &text);
    let output = Command::new(HAVIP)
        .args(["--config", path.to_str().unwrap(), "manifest", "static-pod"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("needs an [admin] table"), "{stderr}");
    assert!(output.stdout.is_empty());
}
