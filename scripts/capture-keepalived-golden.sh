#!/usr/bin/env bash
# Captures the VRRP advertisements keepalived actually sends and writes them as golden vectors
# for the havip-vrrp codec tests (crates/vrrp/tests/golden/*.txt).
#
# What it does: creates two network namespaces joined by a veth pair, runs keepalived (the
# Debian 12 package, 2.2.7) in the foreground in the first one with one VRRP instance per case
# (v2 and v3, IPv4 and IPv6, multicast and unicast, with and without PASS authentication),
# captures with tcpdump in the second one, stops keepalived with SIGTERM so every instance also
# sends its priority-0 advertisement, and writes, for each instance, the first ordinary
# advertisement and the priority-0 one: IP source, destination, TTL / hop limit and the VRRP
# payload in hex.
#
# Needs root, keepalived, tcpdump and iproute2. Uses only addresses inside the namespaces it
# creates (192.0.2.0/24, 2001:db8::/64, fe80::/64 on the veth), removes them on exit (also on
# failure or Ctrl-C), stops only the processes it started, by PID, and is bounded in time.
#
# Usage: scripts/capture-keepalived-golden.sh [OUTPUT_DIR]   (default crates/vrrp/tests/golden)
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
out_dir=${1:-"$repo_root/crates/vrrp/tests/golden"}

for tool in keepalived tcpdump ip timeout; do
    command -v "$tool" >/dev/null || { echo "error: $tool is not installed" >&2; exit 1; }
done
[[ $(id -u) -eq 0 ]] || { echo "error: must run as root (network namespaces)" >&2; exit 1; }

ns_a="havip-golden-$$-a"
ns_b="havip-golden-$$-b"
work=$(mktemp -d /tmp/havip-golden.XXXXXX)
keepalived_pid=""
tcpdump_pid=""

cleanup() {
    local status=$?
    # Stop only what this script started, by PID.
    for pid in $keepalived_pid $tcpdump_pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
    if [[ $status -ne 0 && -f "$work/keepalived.log" ]]; then
        echo "--- keepalived log ---" >&2
        grep -v -E "Sending (gratuitous ARP|unsolicited Neighbour)" "$work/keepalived.log" |
            tail -n 40 >&2
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_a() { ip netns exec "$ns_a" "$@"; }
in_b() { ip netns exec "$ns_b" "$@"; }

# --- the network: A (keepalived, 192.0.2.1) <-veth-> B (capture, 192.0.2.2) -------------------
ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add veth-a netns "$ns_a" type veth peer name veth-b netns "$ns_b"
for ns in "$ns_a" "$ns_b"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip netns exec "$ns" ip link set lo up
done
# Fixed link-local addresses (no EUI-64 from random veth MACs) so the vectors are reproducible.
in_a ip link set veth-a addrgenmode none
in_b ip link set veth-b addrgenmode none
in_a ip addr add 192.0.2.1/24 dev veth-a
in_b ip addr add 192.0.2.2/24 dev veth-b
in_a ip -6 addr add fe80::1/64 dev veth-a nodad
in_b ip -6 addr add fe80::2/64 dev veth-b nodad
in_a ip -6 addr add 2001:db8::1/64 dev veth-a nodad
in_b ip -6 addr add 2001:db8::2/64 dev veth-b nodad
in_a ip link set veth-a up
in_b ip link set veth-b up

# --- keepalived: one instance per golden case ---------------------------------------------------
# Each case: file name, description, instance body. VRIDs are unique so packets can be told apart.
declare -a case_names case_descriptions case_vrids case_bodies
add_case() {
    case_names+=("$1")
    case_descriptions+=("$2")
    case_vrids+=("$3")
    case_bodies+=("$4")
}
add_case v2-ipv4-multicast "VRRPv2 over IPv4, multicast, no authentication, two addresses" 51 "
    version 2
    state MASTER
    interface veth-a
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
        192.0.2.101/24
    }"
add_case v2-ipv4-pass "VRRPv2 over IPv4, multicast, PASS authentication longer than 8 bytes (as in the rke2 seed)" 52 "
    version 2
    state MASTER
    interface veth-a
    virtual_router_id 52
    priority 90
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass K8SHA_KA_AUTH
    }
    virtual_ipaddress {
        192.0.2.102/24
    }"
add_case v2-ipv4-unicast-pass "VRRPv2 over IPv4, unicast, PASS authentication shorter than 8 bytes (as in the kubesphere seed)" 60 "
    version 2
    state MASTER
    interface veth-a
    virtual_router_id 60
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    virtual_ipaddress {
        192.0.2.110/24
    }"
add_case v3-ipv4-multicast "VRRPv3 over IPv4, multicast, 0.1 s interval (checksum with the IPv4 pseudo-header)" 53 "
    version 3
    state MASTER
    interface veth-a
    virtual_router_id 53
    priority 150
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.103/24
    }"
add_case v3-ipv4-unicast "VRRPv3 over IPv4, unicast (the pseudo-header carries the peer address)" 54 "
    version 3
    state MASTER
    interface veth-a
    virtual_router_id 54
    priority 200
    advert_int 1
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    virtual_ipaddress {
        192.0.2.104/24
    }"
add_case v3-ipv6-multicast "VRRPv3 over IPv6, multicast from the link-local address, link-local and global addresses" 56 "
    version 3
    state MASTER
    interface veth-a
    virtual_router_id 56
    priority 100
    advert_int 1
    virtual_ipaddress {
        fe80::56/64
        2001:db8::56/64
    }"
add_case v3-ipv6-unicast "VRRPv3 over IPv6, unicast between global addresses" 57 "
    version 3
    state MASTER
    interface veth-a
    virtual_router_id 57
    priority 254
    advert_int 2
    unicast_src_ip 2001:db8::1
    unicast_peer {
        2001:db8::2
    }
    virtual_ipaddress {
        2001:db8::57/64
    }"

config="$work/keepalived.conf"
{
    echo "global_defs {"
    echo "    router_id havip_golden"
    echo "}"
    for i in "${!case_names[@]}"; do
        echo "vrrp_instance ${case_names[$i]//-/_} {${case_bodies[$i]}"
        echo "}"
    done
} >"$config"

# --- capture ------------------------------------------------------------------------------------
pcap="$work/vrrp.pcap"
# Started directly (not through a shell function) so that $! is the PID of tcpdump itself:
# `ip netns exec` execs the command in place.
ip netns exec "$ns_b" tcpdump -i veth-b -U -n -w "$pcap" 'ip proto 112 or ip6 proto 112' \
    2>"$work/tcpdump.log" &
tcpdump_pid=$!
# tcpdump prints "listening on" once the capture is open.
for _ in $(seq 50); do
    grep -q "listening on" "$work/tcpdump.log" 2>/dev/null && break
    sleep 0.1
done

ip netns exec "$ns_a" keepalived -n -l -D -f "$config" -p "$work/keepalived.pid" \
    -r "$work/vrrp.pid" -c "$work/checkers.pid" >"$work/keepalived.log" 2>&1 &
keepalived_pid=$!
# keepalived 2.2.7 waits Master_Down_Interval even with "state MASTER" (about 6 s for the
# 2-second instance); then every instance sends a few adverts.
sleep 10
kill -0 "$keepalived_pid" 2>/dev/null || { echo "error: keepalived exited early" >&2; exit 1; }
# SIGTERM: every master instance sends a priority-0 advertisement (RFC 5798 6.4.3 Shutdown).
kill -TERM "$keepalived_pid"
timeout 10 tail --pid="$keepalived_pid" -f /dev/null || { echo "error: keepalived did not stop" >&2; exit 1; }
keepalived_pid=""
sleep 0.5
kill -INT "$tcpdump_pid"
timeout 5 tail --pid="$tcpdump_pid" -f /dev/null || true
tcpdump_pid=""

# --- extraction ---------------------------------------------------------------------------------
# One line per packet: the IP packet (no link-layer header) in hex.
packets_hex() {
    tcpdump -r "$pcap" -n -x 2>/dev/null | awk '
        /^[0-9]/ { if (hex != "") print hex; hex = ""; next }
        /^[ \t]+0x[0-9a-f]+:/ { for (i = 2; i <= NF; i++) hex = hex $i }
        END { if (hex != "") print hex }'
}

byte() { echo $((16#${1:$(($2 * 2)):2})); }
ipv4_at() {
    printf '%d.%d.%d.%d' "$(byte "$1" "$2")" "$(byte "$1" $(($2 + 1)))" \
        "$(byte "$1" $(($2 + 2)))" "$(byte "$1" $(($2 + 3)))"
}
ipv6_at() {
    local hex=${1:$(($2 * 2)):32} groups=()
    for g in 0 4 8 12 16 20 24 28; do groups+=("${hex:$g:4}"); done
    (IFS=:; echo "${groups[*]}")
}

# Prints "source destination ttl payload" for a packet, or nothing when it is not VRRP.
describe_packet() {
    local hex=$1 version=${1:0:1}
    if [[ $version == 4 ]]; then
        local header_len=$(( (16#${hex:1:1}) * 4 ))
        local total_len=$(( 16#${hex:4:4} ))
        [[ $(byte "$hex" 9) -eq 112 ]] || return 0
        echo "$(ipv4_at "$hex" 12) $(ipv4_at "$hex" 16) $(byte "$hex" 8)" \
            "${hex:$((header_len * 2)):$(((total_len - header_len) * 2))}"
    elif [[ $version == 6 ]]; then
        local payload_len=$(( 16#${hex:8:4} ))
        [[ $(byte "$hex" 6) -eq 112 ]] || return 0
        echo "$(ipv6_at "$hex" 8) $(ipv6_at "$hex" 24) $(byte "$hex" 7) ${hex:80:$((payload_len * 2))}"
    fi
}

mapfile -t described < <(packets_hex | while read -r hex; do describe_packet "$hex"; done)
[[ ${#described[@]} -gt 0 ]] || { echo "error: no VRRP packets captured" >&2; exit 1; }

mkdir -p "$out_dir"
version_line=$(keepalived --version 2>&1 | sed -n 1p)
write_vector() { # file description body source destination ttl payload
    {
        echo "# $2"
        echo "# Captured by scripts/capture-keepalived-golden.sh from $version_line, Debian package."
        echo "# keepalived instance:"
        sed 's/^    /#   /' <<<"$3" | sed '/^$/d'
        echo "source $4"
        echo "destination $5"
        echo "ttl $6"
        echo "payload $7"
    } >"$1"
    echo "wrote $1"
}

for i in "${!case_names[@]}"; do
    vrid_hex=$(printf '%02x' "${case_vrids[$i]}")
    advert="" shutdown=""
    for line in "${described[@]}"; do
        read -r src dst ttl payload <<<"$line"
        [[ ${payload:2:2} == "$vrid_hex" ]] || continue
        if [[ ${payload:4:2} == 00 ]]; then
            [[ -n $shutdown ]] || shutdown=$line
        else
            [[ -n $advert ]] || advert=$line
        fi
    done
    [[ -n $advert ]] || { echo "error: no advertisement for ${case_names[$i]}" >&2; exit 1; }
    [[ -n $shutdown ]] || { echo "error: no priority-0 advertisement for ${case_names[$i]}" >&2; exit 1; }
    read -r src dst ttl payload <<<"$advert"
    write_vector "$out_dir/${case_names[$i]}.txt" "${case_descriptions[$i]}" \
        "${case_bodies[$i]}" "$src" "$dst" "$ttl" "$payload"
    read -r src dst ttl payload <<<"$shutdown"
    write_vector "$out_dir/${case_names[$i]}-shutdown.txt" \
        "${case_descriptions[$i]}; priority 0 sent when keepalived stops (SIGTERM)" \
        "${case_bodies[$i]}" "$src" "$dst" "$ttl" "$payload"
done
