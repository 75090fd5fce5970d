//! `havip drill`: a failover drill on a live cluster, through the admin API of each node
//! (issue #5 item 5). It checks that at least two nodes are healthy, asks the master to step
//! down (it hands the VIP over gracefully and stays out of the election), watches the VIP
//! from a client's point of view with a connect loop, restores the old master, and prints
//! the measured gap and which node holds the VIP at each step.
//!
//! Nodes need `[admin] listen` on an address the drill can reach and `commands = true`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// What the drill was asked to do.
#[derive(Debug, Clone)]
pub struct DrillPlan {
    /// Admin endpoints of every node.
    pub nodes: Vec<SocketAddr>,
    /// The VRRP instance to drill.
    pub instance: String,
    /// The VIP and port a client connects to.
    pub target: SocketAddr,
    /// How long the old master stays stepped down before it is restored.
    pub hold: Duration,
    /// Give up waiting for a new master after this long.
    pub limit: Duration,
    /// `user:password` for nodes whose admin endpoint has `auth`.
    pub auth: Option<String>,
}

/// One node's view of the instance.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    /// The node's admin endpoint, which also names it in the report.
    pub admin: SocketAddr,
    /// The instance's state as `/api/status` spells it (`MASTER`, `BACKUP`, `FAULT`, ...).
    pub state: String,
    /// The priority the instance advertises now.
    pub priority: u64,
    /// The node's primary address: the source of its adverts.
    pub source: String,
    /// The instance's Master_Down_Interval (RFC 5798 6.1): how long a takeover may take.
    pub master_down_interval: Duration,
}

impl NodeView {
    fn healthy(&self) -> bool {
        matches!(self.state.as_str(), "MASTER" | "BACKUP")
    }
}

/// What the drill measured.
#[derive(Debug, Clone)]
pub struct DrillReport {
    /// The node that was master when the drill began and was asked to step down.
    pub old_master: NodeView,
    /// The node that took over, if one did within the limit.
    pub new_master: Option<NodeView>,
    /// Time from the step-down request to the first node reporting MASTER.
    pub takeover: Option<Duration>,
    /// Longest time without a successful client connect, from the step-down on.
    pub gap: Duration,
    /// Client connects attempted during the drill (one a millisecond).
    pub connects: usize,
    /// Of those, the ones that failed.
    pub failed_connects: usize,
    /// Who holds the VIP after the restore.
    pub final_master: Option<NodeView>,
}

impl std::fmt::Display for DrillReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "old master:  {} ({}, priority {})",
            self.old_master.admin, self.old_master.source, self.old_master.priority
        )?;
        match (&self.new_master, self.takeover) {
            (Some(new_master), Some(takeover)) => writeln!(
                f,
                "new master:  {} ({}, priority {}) after {} ms",
                new_master.admin,
                new_master.source,
                new_master.priority,
                takeover.as_millis()
            )?,
            _ => writeln!(f, "new master:  none within the limit")?,
        }
        writeln!(
            f,
            "client view: {} connects, {} failed, longest gap {:.1} ms",
            self.connects,
            self.failed_connects,
            self.gap.as_secs_f64() * 1000.0
        )?;
        match &self.final_master {
            Some(holder) => write!(
                f,
                "after restore the VIP is on {} ({})",
                holder.admin, holder.source
            ),
            None => write!(f, "after restore no node reports MASTER"),
        }
    }
}

/// Runs the drill of `plan` to the end on a runtime of its own and returns what it measured.
pub fn run(plan: DrillPlan) -> anyhow::Result<DrillReport> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(drill(plan))
}

async fn drill(plan: DrillPlan) -> anyhow::Result<DrillReport> {
    if plan.nodes.len() < 2 {
        bail!("a drill needs the admin endpoints of at least two nodes (--node, repeated)");
    }
    let healthy = healthy_nodes(&plan).await?;
    let old_master = the_master(&plan, &healthy)?;

    // The client's view: a connect every millisecond for the whole drill.
    let probe_until = Instant::now() + plan.limit + plan.hold + Duration::from_secs(2);
    let prober = tokio::spawn(probe_loop(plan.target, probe_until));
    tokio::time::sleep(Duration::from_millis(200)).await;

    println!("asking {} to step down...", old_master.admin);
    let started = Instant::now();
    command(&plan, &old_master, "step-down").await?;
    let (new_master, takeover) = wait_for_new_master(&plan, &old_master, started).await;
    tokio::time::sleep(plan.hold).await;
    println!("restoring {}...", old_master.admin);
    command(&plan, &old_master, "restore").await?;
    let final_master = settled_master(&plan, &healthy).await;
    let results = prober.await.map_err(|e| anyhow!("prober: {e}"))?;
    let after: Vec<&(Instant, bool)> = results.iter().filter(|(at, _)| *at >= started).collect();
    Ok(DrillReport {
        old_master,
        new_master,
        takeover,
        gap: longest_gap(&after),
        connects: after.len(),
        failed_connects: after.iter().filter(|(_, ok)| !ok).count(),
        final_master,
    })
}

/// Every node's view, printed; the healthy ones, at least two or an error.
async fn healthy_nodes(plan: &DrillPlan) -> anyhow::Result<Vec<NodeView>> {
    let mut healthy = Vec::new();
    for (admin, view) in survey(plan).await {
        match view {
            Ok(v) => {
                println!(
                    "{admin}: {} priority {} ({})",
                    v.state, v.priority, v.source
                );
                if v.healthy() {
                    healthy.push(v);
                }
            }
            Err(e) => println!("{admin}: unreachable: {e:#}"),
        }
    }
    if healthy.len() < 2 {
        bail!(
            "refusing to drill: {} healthy node(s) of {} (need at least two, so that someone can take over)",
            healthy.len(),
            plan.nodes.len()
        );
    }
    Ok(healthy)
}

/// The one master among `healthy`, or why there is not exactly one.
fn the_master(plan: &DrillPlan, healthy: &[NodeView]) -> anyhow::Result<NodeView> {
    let masters: Vec<&NodeView> = healthy.iter().filter(|v| v.state == "MASTER").collect();
    match masters.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("refusing to drill: no node is MASTER of {}", plan.instance),
        many => bail!(
            "refusing to drill: {} nodes claim MASTER of {} (split brain?)",
            many.len(),
            plan.instance
        ),
    }
}

/// POST a runtime command (`step-down`, `restore`) to `node`.
async fn command(plan: &DrillPlan, node: &NodeView, action: &str) -> anyhow::Result<()> {
    let path = format!("/api/vrrp/{}/{action}", plan.instance);
    let (status, body) = http(node.admin, "POST", &path, plan.auth.as_deref()).await?;
    if status != 200 {
        bail!("{action} refused: HTTP {status} {}", body.trim());
    }
    if action == "step-down" {
        println!("step-down: {}", body.trim());
    }
    Ok(())
}

/// Poll until another node is MASTER (at most `plan.limit`): who, and after how long.
async fn wait_for_new_master(
    plan: &DrillPlan,
    old_master: &NodeView,
    started: Instant,
) -> (Option<NodeView>, Option<Duration>) {
    while started.elapsed() < plan.limit {
        for (admin, view) in survey(plan).await {
            if let Ok(v) = view {
                if v.state == "MASTER" && admin != old_master.admin {
                    return (Some(v), Some(started.elapsed()));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (None, None)
}

/// The master once the election has settled after the restore (preempt or not): a restored
/// node with a higher priority preempts once its Master_Down_Interval runs out (RFC 5798
/// 6.4.2), so one master must hold for longer than the longest of those.
async fn settled_master(plan: &DrillPlan, healthy: &[NodeView]) -> Option<NodeView> {
    let stable_for = healthy
        .iter()
        .map(|v| v.master_down_interval)
        .max()
        .unwrap_or_default()
        + Duration::from_secs(1);
    let settle = Instant::now();
    let mut stable_since: Option<(SocketAddr, Instant)> = None;
    while settle.elapsed() < plan.limit {
        let masters: Vec<NodeView> = survey(plan)
            .await
            .into_iter()
            .filter_map(|(_, v)| v.ok())
            .filter(|v| v.state == "MASTER")
            .collect();
        if let [only] = masters.as_slice() {
            match stable_since {
                Some((admin, since)) if admin == only.admin => {
                    if since.elapsed() > stable_for {
                        return Some(only.clone());
                    }
                }
                _ => stable_since = Some((only.admin, Instant::now())),
            }
        } else {
            stable_since = None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The longest stretch between two successful connects that had failures in between.
fn longest_gap(results: &[&(Instant, bool)]) -> Duration {
    let mut last_ok: Option<Instant> = None;
    let mut failing = false;
    let mut longest = Duration::ZERO;
    for (at, ok) in results {
        if *ok {
            if let (true, Some(previous)) = (failing, last_ok) {
                longest = longest.max(at.duration_since(previous));
            }
            failing = false;
            last_ok = Some(*at);
        } else {
            failing = true;
        }
    }
    longest
}

/// Connect to `target` once a millisecond until `until`; (start time, connected).
async fn probe_loop(target: SocketAddr, until: Instant) -> Vec<(Instant, bool)> {
    let mut results = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while Instant::now() < until && results.len() < 1_000_000 {
        ticker.tick().await;
        let at = Instant::now();
        let ok = matches!(
            timeout(Duration::from_millis(20), TcpStream::connect(target)).await,
            Ok(Ok(_))
        );
        results.push((at, ok));
    }
    results
}

async fn survey(plan: &DrillPlan) -> Vec<(SocketAddr, anyhow::Result<NodeView>)> {
    let mut out = Vec::new();
    for admin in &plan.nodes {
        out.push((
            *admin,
            node_view(*admin, &plan.instance, plan.auth.as_deref()).await,
        ));
    }
    out
}

async fn node_view(
    admin: SocketAddr,
    instance: &str,
    auth: Option<&str>,
) -> anyhow::Result<NodeView> {
    let (status, body) = http(admin, "GET", "/api/status", auth).await?;
    if status == 401 {
        bail!("HTTP 401: the admin endpoint wants credentials (--auth user:password)");
    }
    if status != 200 {
        bail!("HTTP {status}");
    }
    let json: Value = serde_json::from_str(&body).context("status is not JSON")?;
    let found = json["vrrp"]
        .as_array()
        .and_then(|list| list.iter().find(|i| i["name"] == instance))
        .ok_or_else(|| anyhow!("no VRRP instance {instance:?} there"))?;
    Ok(NodeView {
        admin,
        state: found["state"].as_str().unwrap_or("?").to_string(),
        priority: found["priority"].as_u64().unwrap_or(0),
        source: found["source"].as_str().unwrap_or("?").to_string(),
        master_down_interval: Duration::from_millis(
            found["master_down_interval_ms"].as_u64().unwrap_or(0),
        ),
    })
}

/// One HTTP/1.0 request to an admin endpoint: (status, body).
pub(crate) async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let authorization = auth
        .map(|pair| {
            format!(
                "Authorization: Basic {}\r\n",
                havip_node::admin::auth::base64(pair.as_bytes())
            )
        })
        .unwrap_or_default();
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        // Commands take a JSON body (the admin endpoint refuses others, against cross-site
        // requests); a GET sends none.
        let body = if method == "POST" { "{}" } else { "" };
        let content_type = if method == "POST" {
            "Content-Type: application/json\r\n"
        } else {
            ""
        };
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{authorization}{content_type}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    // A step-down answers after the handover: up to one Master_Down_Interval.
    let response = timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| anyhow!("{addr}: no answer"))?
        .with_context(|| format!("{addr}: admin request failed"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("{addr}: not an HTTP answer"))?;
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_spans_from_the_last_success_to_the_next() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let results = [
            (at(0), true),
            (at(1), true),
            (at(2), false),
            (at(3), false),
            (at(7), true),
            (at(8), false),
            (at(9), true),
        ];
        let refs: Vec<&(Instant, bool)> = results.iter().collect();
        assert_eq!(longest_gap(&refs), Duration::from_millis(6));
        let all_ok = [(at(0), true), (at(5), true)];
        let refs: Vec<&(Instant, bool)> = all_ok.iter().collect();
        assert_eq!(longest_gap(&refs), Duration::ZERO);
    }
}
