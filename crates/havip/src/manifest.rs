//! `havip manifest static-pod`: a kubelet static pod for `/etc/kubernetes/manifests/`, the way
//! the kubeadm HA guide runs keepalived and HAProxy and kube-vip runs itself, built from the
//! typed Kubernetes API structs of `k8s-openapi` and printed as YAML.
//!
//! The pod must come up before the apiserver it fronts exists (the kubelet starts static pods
//! from files, with no API server), so it depends on nothing the cluster serves: no
//! kubeconfig, no service account token, no ConfigMap or Secret, no cluster DNS
//! (`dnsPolicy: Default`), only files on the host mounted read-only (the config, and the TLS
//! files its health checks name). kube-vip's reliance on `super-admin.conf` (kube-vip#684)
//! is the trap this avoids: havip never talks to the apiserver at all.
//!
//! Privileges follow the config, as [`havip_node::privileges`] computes them: every capability
//! is dropped and only those the config needs are added back (`NET_ADMIN` and `NET_RAW` for a
//! VIP). The container runs as uid 0 because Kubernetes gives a non-root container no ambient
//! capabilities: a non-root havip would hold none of them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, HTTPGetAction, HostPathVolumeSource, Pod, PodSecurityContext, PodSpec,
    Probe, ResourceRequirements, SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use havip_config::service::{CheckKind, HttpCheck};
use havip_config::vrrp::{ProcessMatch, TrackerKind};
use havip_node::load::Loaded;
use havip_node::privileges;

/// Where the config is mounted inside the container.
const CONFIG_IN_POD: &str = "/etc/havip/havip.toml";

/// What `havip manifest static-pod` was asked for.
#[derive(Debug, Clone)]
pub struct StaticPodPlan {
    /// The config on the host (read here, mounted read-only into the pod).
    pub config: PathBuf,
    /// The container image.
    pub image: String,
    /// The pod's name (the kubelet appends the node name to the mirror pod's).
    pub name: String,
    /// The pod's namespace.
    pub namespace: String,
}

/// A manifest and what the operator should know about it.
#[derive(Debug)]
pub struct Manifest {
    /// The pod.
    pub pod: Pod,
    /// Settings that will not work as they do on the host, for stderr.
    pub notes: Vec<String>,
}

/// Build the static pod for `plan` around the config `loaded` (read from `plan.config`).
pub fn static_pod(plan: &StaticPodPlan, loaded: &Loaded) -> anyhow::Result<Manifest> {
    let config = &loaded.config;
    let host_config = std::path::absolute(&plan.config)
        .with_context(|| format!("{}: cannot make the path absolute", plan.config.display()))?;
    let Some(admin) = &config.admin else {
        bail!(
            "{}: the pod's liveness probe reads /healthz, so the config needs an [admin] table \
             (listen = \"127.0.0.1:8404\")",
            plan.config.display()
        );
    };
    let file = plan.config.display().to_string();
    // Containers on the host network share its net.ipv4.ip_unprivileged_port_start, which
    // this machine may not show: assume the default.
    let needs = privileges::needs(config, &loaded.places, &file, 1024);
    let capabilities: Vec<String> = needs
        .iter()
        .map(|need| {
            let name = need.capability.to_string();
            name.trim_start_matches("CAP_").to_string()
        })
        .collect();
    let mut mounts = vec![(host_config.clone(), PathBuf::from(CONFIG_IN_POD))];
    for path in tls_files(loaded) {
        mounts.push((path.clone(), path));
    }
    let probe_host = match admin.listen.ip() {
        ip if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    let grace = config.global.grace.as_secs() as i64 + 15;
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(plan.name.clone()),
            namespace: Some(plan.namespace.clone()),
            labels: Some(labels(&plan.name)),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            host_network: Some(true),
            dns_policy: Some("Default".into()),
            priority_class_name: Some("system-node-critical".into()),
            priority: Some(2_000_001_000),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(grace),
            security_context: Some(PodSecurityContext {
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            containers: vec![container(
                plan,
                capabilities,
                &mounts,
                probe_host,
                admin.listen.port(),
            )],
            volumes: Some(volumes(&mounts)),
            ..PodSpec::default()
        }),
        status: None,
    };
    Ok(Manifest {
        pod,
        notes: notes(loaded),
    })
}

fn labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "havip".to_string()),
        ("component".to_string(), name.to_string()),
        ("tier".to_string(), "control-plane".to_string()),
    ])
}

fn container(
    plan: &StaticPodPlan,
    capabilities: Vec<String>,
    mounts: &[(PathBuf, PathBuf)],
    probe_host: IpAddr,
    probe_port: u16,
) -> Container {
    Container {
        name: "havip".into(),
        image: Some(plan.image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec![
            "/usr/bin/havip".into(),
            "run".into(),
            "--config".into(),
            CONFIG_IN_POD.into(),
        ]),
        security_context: Some(SecurityContext {
            capabilities: Some(Capabilities {
                add: (!capabilities.is_empty()).then_some(capabilities),
                drop: Some(vec!["ALL".into()]),
            }),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_user: Some(0),
            ..SecurityContext::default()
        }),
        liveness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                host: Some(probe_host.to_string()),
                path: Some("/healthz".into()),
                port: IntOrString::Int(i32::from(probe_port)),
                scheme: Some("HTTP".into()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(10),
            timeout_seconds: Some(5),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        // No limits: a CPU limit throttles the data path, a memory limit turns a burst of
        // connections into an OOM kill of the control plane's front door.
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("100m".into())),
                ("memory".to_string(), Quantity("64Mi".into())),
            ])),
            ..ResourceRequirements::default()
        }),
        volume_mounts: Some(
            mounts
                .iter()
                .enumerate()
                .map(|(index, (_, inside))| VolumeMount {
                    name: volume_name(index),
                    mount_path: inside.display().to_string(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                })
                .collect(),
        ),
        ..Container::default()
    }
}

fn volume_name(index: usize) -> String {
    if index == 0 {
        "config".into()
    } else {
        format!("tls-{index}")
    }
}

fn volumes(mounts: &[(PathBuf, PathBuf)]) -> Vec<Volume> {
    mounts
        .iter()
        .enumerate()
        .map(|(index, (host, _))| Volume {
            name: volume_name(index),
            host_path: Some(HostPathVolumeSource {
                path: host.display().to_string(),
                type_: Some("File".into()),
            }),
            ..Volume::default()
        })
        .collect()
}

/// The certificate and key files the health checks read, each once.
fn tls_files(loaded: &Loaded) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    for service in &loaded.config.services {
        let Some(CheckKind::Http(HttpCheck { tls: Some(tls), .. })) = &service.health.check else {
            continue;
        };
        for path in [&tls.ca_file, &tls.client_cert, &tls.client_key]
            .into_iter()
            .flatten()
        {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    files
}

/// What runs differently in the pod than on the host.
fn notes(loaded: &Loaded) -> Vec<String> {
    let config = &loaded.config;
    let mut notes = Vec::new();
    let commands = config.vrrp.iter().any(|v| {
        let n = &v.notify;
        n.command.is_some()
            || n.master.is_some()
            || n.backup.is_some()
            || n.fault.is_some()
            || n.stop.is_some()
    }) || config
        .trackers
        .iter()
        .any(|t| matches!(t.kind, TrackerKind::Script { .. }));
    if commands {
        notes.push(
            "notify commands and script trackers run inside the container, whose image holds \
             only havip: prefer the built-in trackers (service, listener, interface)"
                .into(),
        );
    }
    for tracker in &config.trackers {
        match &tracker.kind {
            TrackerKind::Process(ProcessMatch::Name(_))
            | TrackerKind::Process(ProcessMatch::Pidfile(_)) => notes.push(format!(
                "tracker {:?} looks for a process: the pod sees only its own unless you add \
                     hostPID: true",
                tracker.name
            )),
            TrackerKind::File { path } => notes.push(format!(
                "tracker {:?} reads {}: mount it into the pod too",
                tracker.name,
                path.display()
            )),
            _ => {}
        }
    }
    notes
}

/// The manifest as YAML, with a header saying what it is and how to use it.
pub fn render(manifest: &Manifest, plan: &StaticPodPlan) -> anyhow::Result<String> {
    let yaml = serde_norway::to_string(&manifest.pod).context("cannot write the pod as YAML")?;
    let config = std::path::absolute(&plan.config).unwrap_or_else(|_| plan.config.clone());
    Ok(format!(
        "# havip as a kubelet static pod: save as /etc/kubernetes/manifests/{name}.yaml on each\n\
         # node that may hold the VIP, with its own {config} (its own VRRP priority).\n\
         # Needs no apiserver: the config comes from the host, read-only; no kubeconfig, no\n\
         # service account. Every capability is dropped but those the config needs; the\n\
         # container runs as uid 0 because Kubernetes gives non-root containers no ambient\n\
         # capabilities. Generated by havip {version} (havip manifest static-pod).\n{yaml}",
        name = plan.name,
        config = config.display(),
        version = env!("CARGO_PKG_VERSION"),
    ))
}

/// `havip manifest static-pod`: read and validate the config, print the manifest on stdout
/// and the notes on stderr.
pub fn run(plan: &StaticPodPlan) -> anyhow::Result<()> {
    let loaded = load(&plan.config)?;
    let manifest = static_pod(plan, &loaded)?;
    for note in &manifest.notes {
        eprintln!("havip manifest: note: {note}");
    }
    print!("{}", render(&manifest, plan)?);
    Ok(())
}

fn load(path: &Path) -> anyhow::Result<Loaded> {
    match havip_node::load::load(path) {
        Ok(loaded) => Ok(loaded),
        Err(havip_config::ConfigError::Invalid { path, problems }) => {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            bail!("{} is not valid:\n{}", path.display(), list.join("\n"))
        }
        // The error's text already names its cause; `{:#}` would repeat it.
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[global]
grace = "20s"

[admin]
listen = "0.0.0.0:8404"

[[service]]
name = "kube-apiserver"
listen = "0.0.0.0:8443"
[service.health.tls]
client_cert = "/etc/kubernetes/pki/apiserver-kubelet-client.crt"
client_key = "/etc/kubernetes/pki/apiserver-kubelet-client.key"
[[service.backend]]
address = "10.88.88.71:6443"

[[tracker]]
name = "apiservers"
kind = "service"
service = "kube-apiserver"
weight = -50

[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 52
virtual_addresses = ["10.88.88.70/24"]
track = ["apiservers"]
"#;

    fn plan() -> StaticPodPlan {
        StaticPodPlan {
            config: "/etc/havip/havip.toml".into(),
            image: "localhost/havip:test".into(),
            name: "havip".into(),
            namespace: "kube-system".into(),
        }
    }

    /// `text` read (not prepared: the TLS files are empty stand-ins), with the client
    /// certificate paths pointed at files that exist.
    fn loaded(text: &str) -> Loaded {
        let dir = std::env::temp_dir().join(format!("havip-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = text.to_string();
        for name in [
            "apiserver-kubelet-client.crt",
            "apiserver-kubelet-client.key",
        ] {
            let path = dir.join(name);
            std::fs::write(&path, "stand-in\n").unwrap();
            text = text.replace(
                &format!("/etc/kubernetes/pki/{name}"),
                &path.display().to_string(),
            );
        }
        let reading = havip_config::read(Path::new("havip.toml"), &text);
        let (config, places) = reading.into_result().unwrap_or_else(|p| panic!("{p:?}"));
        Loaded { config, places }
    }

    fn stand_in(name: &str) -> String {
        std::env::temp_dir()
            .join(format!("havip-manifest-{}", std::process::id()))
            .join(name)
            .display()
            .to_string()
    }

    #[test]
    fn the_pod_holds_only_what_the_config_needs_and_nothing_from_the_cluster() {
        let manifest = static_pod(&plan(), &loaded(CONFIG)).unwrap();
        let spec = manifest.pod.spec.as_ref().unwrap();
        assert_eq!(spec.host_network, Some(true));
        assert_eq!(
            spec.priority_class_name.as_deref(),
            Some("system-node-critical")
        );
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(spec.dns_policy.as_deref(), Some("Default"));
        assert_eq!(spec.termination_grace_period_seconds, Some(35));
        let container = &spec.containers[0];
        let security = container.security_context.as_ref().unwrap();
        let caps = security.capabilities.as_ref().unwrap();
        assert_eq!(
            caps.add.as_deref(),
            Some(&["NET_RAW".to_string(), "NET_ADMIN".to_string()][..])
        );
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        let probe = container
            .liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(probe.path.as_deref(), Some("/healthz"));
        assert_eq!(probe.port, IntOrString::Int(8404));
        assert_eq!(probe.host.as_deref(), Some("127.0.0.1"));
        let requests = container
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap();
        assert_eq!(requests["cpu"], Quantity("100m".into()));
        assert!(container.resources.as_ref().unwrap().limits.is_none());
        // The config and the two TLS files, each read-only from the host, and nothing else.
        let mounts = container.volume_mounts.as_ref().unwrap();
        assert!(mounts.iter().all(|m| m.read_only == Some(true)));
        let host_paths: Vec<&str> = spec
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .map(|v| v.host_path.as_ref().unwrap().path.as_str())
            .collect();
        assert_eq!(
            host_paths,
            [
                "/etc/havip/havip.toml".to_string(),
                stand_in("apiserver-kubelet-client.crt"),
                stand_in("apiserver-kubelet-client.key"),
            ]
        );
        assert!(container.env.is_none() && container.env_from.is_none());
        assert!(spec.service_account_name.is_none());
        assert!(manifest.notes.is_empty(), "{:?}", manifest.notes);
    }

    #[test]
    fn the_yaml_reads_back_as_the_same_pod_and_names_no_kubeconfig() {
        let manifest = static_pod(&plan(), &loaded(CONFIG)).unwrap();
        let text = render(&manifest, &plan()).unwrap();
        assert!(
            text.starts_with("# havip as a kubelet static pod"),
            "{text}"
        );
        // Every field is one the Pod schema knows: what the typed structs read back is
        // exactly what was printed (an unknown field would be dropped on the way).
        let back: Pod = serde_norway::from_str(&text).unwrap();
        assert_eq!(back, manifest.pod);
        let printed: serde_norway::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(printed, serde_norway::to_value(&back).unwrap());
        assert_eq!(printed["apiVersion"], "v1");
        assert_eq!(printed["kind"], "Pod");
        // The header says what the pod does without; the pod itself names none of it.
        let body: String = text.lines().filter(|l| !l.starts_with('#')).collect();
        for trap in [
            "admin.conf",
            "super-admin.conf",
            "kubelet.conf",
            "kubeconfig",
            "serviceAccount",
        ] {
            assert!(
                !body.contains(trap),
                "the manifest mentions {trap}:\n{text}"
            );
        }
    }

    #[test]
    fn a_balancer_on_a_high_port_gets_no_capability_and_a_config_without_admin_is_refused() {
        let balancer = CONFIG.split("[[tracker]]").next().unwrap();
        let manifest = static_pod(&plan(), &loaded(balancer)).unwrap();
        let container = &manifest.pod.spec.as_ref().unwrap().containers[0];
        let caps = container
            .security_context
            .as_ref()
            .unwrap()
            .capabilities
            .as_ref()
            .unwrap();
        assert_eq!(caps.add, None);
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
        let no_admin = balancer.replace("[admin]\nlisten = \"0.0.0.0:8404\"\n", "");
        let error = static_pod(&plan(), &loaded(&no_admin))
            .unwrap_err()
            .to_string();
        assert!(error.contains("needs an [admin] table"), "{error}");
    }

    #[test]
    fn commands_and_process_trackers_get_a_note() {
        let text = format!(
            "{CONFIG}\n[vrrp.notify]\nmaster = \"/etc/havip/master.sh\"\n\n[[tracker]]\nname = \"kubelet\"\nkind = \"process\"\nprocess = \"kubelet\"\n"
        );
        let manifest = static_pod(&plan(), &loaded(&text)).unwrap();
        assert_eq!(manifest.notes.len(), 2, "{:?}", manifest.notes);
        assert!(
            manifest.notes[1].contains("hostPID"),
            "{:?}",
            manifest.notes
        );
    }
}
