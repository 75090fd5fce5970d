#!/usr/bin/env bash
# One command for the hostile-VRRP benchmark (issue 15 item 2): two havip nodes (a VRRPv2
# multicast instance with auth_pass and a VRRPv3 unicast instance each) flooded from a third
# network namespace with malformed and spoofed adverts, 10 s at 50,000 packets/s by default;
# the master is killed half-way. Prints and writes the table of docs/reliability.md: packets
# per defect, drops by reason on the survivor against what was sent, kernel socket drops,
# state changes, takeover times against Master_Down_Interval, havip's CPU; then the same
# flood against keepalived 2.2 on both nodes, side by side.
#
#   bench/flood.sh
#   bench/flood.sh --rate 100000 --seconds 20
#
# Needs root (network namespaces, raw sockets), iproute2, curl and keepalived (installed with apt-get
# when missing). Builds havip and the benchmark (crates/test-support/examples/flood_bench.rs)
# in release mode and writes bench/results/flood-<timestamp>.md. Sends only inside the
# namespaces it creates, bounded in time and packets; removes them on exit, also on failure
# (the lab harness of the integration tests does it); stops only the processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) -eq 0 ]] || { echo "error: must run as root (network namespaces)" >&2; exit 1; }
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v keepalived >/dev/null || need+=(keepalived)
if ((${#need[@]})); then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

cargo build --release -p havip --bin havip
cargo build --release -p havip-test-support --example flood_bench
mkdir -p bench/results
out="bench/results/flood-$(date -u +%Y%m%dT%H%M%SZ)"
exec target/release/examples/flood_bench --havip target/release/havip --out "$out" "$@"
