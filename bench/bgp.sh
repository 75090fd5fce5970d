#!/usr/bin/env bash
# One command for the BGP announce-mode benchmark (issue #16): the namespace lab of
# crates/havip/tests/bgp_netns.rs (an FRR router, three havip nodes each with FRR, BFD at
# 100 ms x 3, ECMP) run several times, with the median, p90 and max of every figure it
# reports, beside VRRP's figures for the same faults from the last bench/failover.sh run.
#
#   bench/bgp.sh               5 runs (~1.5 min)
#   bench/bgp.sh --reps 10
#
# Per fault (node 0's backends fail; they come back; node 1 is killed with -9 and its link
# goes down; node 2 gets SIGTERM): the time until the router's kernel route changed, the
# fresh client connects that failed (one every 5 ms), how long after the fault the last one
# failed, and the connections held on the other nodes that broke under hash-threshold ECMP
# (FRR's own route) and under a resilient nexthop group.
#
# Needs root (network namespaces), frr, nftables, curl, iproute2 (installed with apt-get when
# missing). Writes bench/results/bgp-<timestamp>.txt (every REPORT line) and .md (the table);
# the output of a run that failed is kept as bgp-<timestamp>-run<N>.log.
# The lab makes its own uniquely named namespaces and removes them, also on failure; it stops
# only the processes it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

reps=5
while (($#)); do
    case $1 in
        --reps) reps=$2; shift 2 ;;
        *) echo "usage: bench/bgp.sh [--reps N]" >&2; exit 2 ;;
    esac
done

[[ $(id -u) -eq 0 ]] || { echo "error: must run as root (network namespaces)" >&2; exit 1; }
need=()
[[ -x /usr/lib/frr/bgpd ]] || need+=(frr)
command -v nft >/dev/null || need+=(nftables)
command -v curl >/dev/null || need+=(curl)
command -v ip >/dev/null || need+=(iproute2)
if ((${#need[@]})); then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

cargo build --release -p havip --bin havip --tests
mkdir -p bench/results
out="bench/results/bgp-$(date -u +%Y%m%dT%H%M%SZ)"
: >"$out.txt"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((i = 1; i <= reps; i++)); do
    echo "run $i/$reps" >&2
    if CI=true cargo test --release -q -p havip --test bgp_netns three_nodes -- --nocapture \
        >"$out-run$i.log" 2>&1; then
        grep '^REPORT ' "$out-run$i.log" >>"$out.txt"
        rm "$out-run$i.log"
    else
        echo "run $i failed: its output is in $out-run$i.log" >&2
    fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$out" "$reps" "$load_before" "$load_after" <<'PY'
import glob, json, statistics, subprocess, sys
out, reps, before, after = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = {}
for line in open(out + ".txt"):
    what, took, failed, connects, failing, hashed, resilient = line[len("REPORT "):].strip().split("|")
    r = rows.setdefault(what, {"took": [], "failed": [], "connects": [], "failing": [], "hashed": [], "resilient": []})
    r["took"].append(float(took)); r["failed"].append(int(failed)); r["connects"].append(int(connects))
    if failing != "-":
        r["failing"].append(float(failing))
    r["hashed"].append(int(hashed)); r["resilient"].append(int(resilient))

def stats(xs, fmt="{:.1f}"):
    if not xs:
        return "-"
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, max(0, -(-9 * len(xs) // 10) - 1))]
    return " / ".join(fmt.format(v) for v in (statistics.median(xs), p90, xs[-1]))

commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
runs = len(next(iter(rows.values()))["took"]) if rows else 0
md = [f"BGP announce mode, {runs} of {reps} runs complete, havip at `{commit}`, FRR "
      f"{subprocess.run(['/usr/lib/frr/bgpd', '--version'], capture_output=True, text=True).stdout.split()[2]}; "
      f"load average {before} before, {after} after.", "",
      "Values: median / p90 / max.", "",
      "| fault | router's path changed (ms) | failed connects (of every 5 ms) | clients saw failures for (ms) | held conns broken, hash-threshold | held conns broken, resilient |",
      "|---|---|---|---|---|---|"]
for what, r in rows.items():
    connects = statistics.median(r["connects"])
    md.append(f"| {what} | {stats(r['took'])} | {stats(r['failed'], '{:.0f}')} (of {connects:.0f}) | "
              f"{stats(r['failing'])} | {stats(r['hashed'], '{:.0f}')} | {stats(r['resilient'], '{:.0f}')} |")
failover = sorted(glob.glob("bench/results/failover-*.json"))
md += ["", "VRRP for the same faults (3 nodes, the client's outage):"]
if failover:
    md.append(f"see {failover[-1][:-5]}.md (bench/failover.sh).")
else:
    md.append("no bench/failover.sh results here; docs/benchmarks.md has the last run "
              "(v3 / 0.1 s: crash outage 337 ms, SIGTERM outage 3.4 ms; v2 / 1 s: 3516 ms and 2.8 ms).")
open(out + ".md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
print(f"\nwritten: {out}.txt, {out}.md")
PY
