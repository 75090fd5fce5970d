#!/usr/bin/env python3
"""havip vs HAProxy vs nginx stream, side by side on loopback. Run through bench/run.sh.

Every contestant proxy is pinned to CPU 0; load generators and backends to CPU 1. All
contestants run in the same invocation and the tests are interleaved: each repetition runs
every test on every contestant, rotating the order, so contention from other work on the
machine hits all of them alike. Results are medians over the repetitions.

Contestants
  havip-splice           havip, copy = "splice" (64 KiB pipes), one worker thread
  havip-buffered         havip, copy = "buffered" (16 KiB buffers), one worker thread
  haproxy                HAProxy, nbthread 1, mode tcp, no splice (its default)
  haproxy-splice         the same with `option splice-auto` (HAProxy decides when to splice)
  haproxy-splice-always  the same with `option splice-request` + `option splice-response`
  nginx                  nginx stream, one worker process
All without logs and active health checks, with the same timeouts (templates/).

Tests
  tp1, tp8, tp1r  iperf3 through the proxy, 1 / 8 streams, and 1 stream reversed (-R: the
                  backend sends); Gbit/s and proxy CPU ms per Gbit moved
  cps             wrk -H "Connection: close": every request is a new TCP connection through
                  the proxy and a new one from the proxy to the backend; connections/s
  lat             wrk over 50 kept-alive connections; p50/p99 latency and requests/s
  idle            IDLE_CONNS idle connections through two fresh instances of each proxy
                  (half each: a process may hold 20,000 descriptors); RSS per connection right
                  after connecting and again after one 64-byte echo on every connection
"direct" runs tp*, cps and lat without a proxy: the ceiling of the load side.

Processes are started here and stopped here by PID (SIGTERM, then SIGKILL after 5 s), also on
errors and Ctrl-C. Every load run is bounded in time.
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
TEMPLATES = os.path.join(BENCH, "templates")
PROXY_CPU = "0"
LOAD_CPU = "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Ports outside the ephemeral range (32768-60999), so they cannot collide with clients.
PORT_IPERF = 21001
PORT_HTTP = 21002
PORT_HOLD = 21003
PORT_PROXY_BASE = 21100  # contestant i: +10*i (+0 iperf service, +1 http service)
PORT_IDLE_BASE = 21200  # contestant i: +10*i (+0 instance A, +1 instance B)

# Extra lines for havip's [global] table (--havip-global), for experiments such as pipe_size.
HAVIP_EXTRA = ""

CONTESTANTS = ["havip-splice", "havip-buffered", "haproxy", "haproxy-splice", "haproxy-splice-always", "nginx"]
TESTS = ["tp1", "tp8", "tp1r", "cps", "lat", "idle"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes


class Procs:
    """Every process this run started, stopped by PID at exit."""

    def __init__(self):
        self.live = []  # (name, Popen)

    def start(self, name, argv, cpu, logfile, stdin=None, stdout=None):
        argv = ["taskset", "-c", cpu] + argv
        out = open(logfile, "ab")

        def limits():
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

        p = subprocess.Popen(
            argv,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else out,
            stderr=out,
            preexec_fn=limits,
            start_new_session=True,
        )
        out.close()
        self.live.append((name, p))
        return p

    def stop(self, p, timeout=5.0):
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(5)
        self.live = [(n, q) for n, q in self.live if q is not p]

    def stop_all(self):
        for _, p in list(reversed(self.live)):
            try:
                self.stop(p)
            except Exception as e:  # keep stopping the others
                log(f"stopping pid {p.pid}: {e}")


PROCS = Procs()


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def cpu_seconds(pid):
    """utime + stime of a process (all its threads, dead ones included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpus_allowed(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    return "?"


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def cpu_busy():
    """Busy and steal seconds per CPU from /proc/stat (busy: user, nice, system, irq, softirq)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if re.match(r"cpu\d", line):
                name, *v = line.split()
                v = [int(x) for x in v]
                out[name] = ((v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK, v[7] / CLK_TCK)
    return out


def tcp_counters():
    """Loopback-relevant TCP counters of this network namespace."""
    out = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        with open(path) as f:
            lines = f.read().splitlines()
        for head, vals in zip(lines[::2], lines[1::2]):
            names = head.split()
            values = vals.split()
            prefix = names[0]
            for n, v in zip(names[1:], values[1:]):
                out[f"{prefix}{n}"] = int(v)
    keep = [
        "Tcp:ActiveOpens",
        "Tcp:PassiveOpens",
        "Tcp:AttemptFails",
        "Tcp:EstabResets",
        "Tcp:RetransSegs",
        "TcpExt:ListenOverflows",
        "TcpExt:ListenDrops",
        "TcpExt:TW",
        "TcpExt:TCPTimeWaitOverflow",
    ]
    return {k: out.get(k, 0) for k in keep}


def port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def listening(port):
    """Whether a socket listens on 127.0.0.1:port (read from /proc/net/tcp: connecting to check
    would hand the backends, iperf3 above all, a connection they do not expect)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":
                return True
    return False


def wait_port(port, proc, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited ({proc.returncode}) before listening on {port}")
        if listening(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def render(template, **values):
    with open(os.path.join(TEMPLATES, template)) as f:
        return string.Template(f.read()).substitute(**values)


# ---------------------------------------------------------------------------------------------
# Contestants


class Instance:
    """One running proxy: `pid` is the process that moves the bytes (nginx: the worker)."""

    def __init__(self, name, proc, pid, config_text, workdir):
        self.name = name
        self.proc = proc
        self.pid = pid
        self.config_text = config_text
        self.workdir = workdir

    def alive(self):
        return self.proc.poll() is None and os.path.exists(f"/proc/{self.pid}")

    def cpu(self):
        return cpu_seconds(self.pid)

    def rss(self):
        return rss_kib(self.pid)

    def stop(self):
        PROCS.stop(self.proc)


def start_contestant(kind, services, workdir, tools, maxconn=4000):
    """Start contestant `kind` with `services` [(name, port, backend_port)] in `workdir`."""
    os.makedirs(workdir, exist_ok=True)
    logfile = os.path.join(workdir, "stderr.log")
    if kind.startswith("havip"):
        copy = "splice" if kind == "havip-splice" else "buffered"
        svc = "\n".join(
            render("havip-service.toml.in", name=n, port=p, backend_port=b) for n, p, b in services
        )
        text = render("havip.toml.in", copy=copy, services=svc, extra=HAVIP_EXTRA)
        cfg = os.path.join(workdir, "havip.toml")
        write(cfg, text)
        check = subprocess.run([tools["havip"], "check", "--config", cfg], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"havip check failed:\n{check.stdout}{check.stderr}")
        proc = PROCS.start(kind, [tools["havip"], "run", "--config", cfg], PROXY_CPU, logfile)
        pid = proc.pid
    elif kind.startswith("haproxy"):
        svc = "\n".join(
            render("haproxy-service.cfg.in", name=n, port=p, backend_port=b, maxconn=maxconn)
            for n, p, b in services
        )
        defaults_extra = {
            "haproxy": "",
            "haproxy-splice": "option splice-auto",
            "haproxy-splice-always": "option splice-request\n    option splice-response",
        }[kind]
        text = render(
            "haproxy.cfg.in", maxconn=maxconn, global_extra="", defaults_extra=defaults_extra, services=svc
        )
        cfg = os.path.join(workdir, "haproxy.cfg")
        write(cfg, text)
        check = subprocess.run([tools["haproxy"], "-c", "-f", cfg], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c failed:\n{check.stdout}{check.stderr}")
        proc = PROCS.start(kind, [tools["haproxy"], "-db", "-f", cfg], PROXY_CPU, logfile)
        pid = proc.pid
    elif kind == "nginx":
        svc = "\n".join(
            render("nginx-stream-service.conf.in", port=p, backend_port=b) for n, p, b in services
        )
        text = render(
            "nginx-stream.conf.in",
            dir=workdir,
            nofile=20000,
            worker_connections=2 * maxconn + 100,
            services=svc,
        )
        cfg = os.path.join(workdir, "nginx.conf")
        write(cfg, text)
        argv = [tools["nginx"], "-p", workdir, "-e", os.path.join(workdir, "error.log"), "-c", cfg]
        check = subprocess.run(argv + ["-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{check.stdout}{check.stderr}")
        proc = PROCS.start(kind, argv, PROXY_CPU, logfile)
        pid = None
    else:
        raise ValueError(kind)
    for _, port, _ in services:
        wait_port(port, proc)
    if kind == "nginx":
        end = time.monotonic() + 10
        while time.monotonic() < end and not children(proc.pid):
            time.sleep(0.05)
        kids = children(proc.pid)
        if len(kids) != 1:
            raise RuntimeError(f"nginx master {proc.pid} has workers {kids}, expected one")
        pid = kids[0]
    inst = Instance(kind, proc, pid, text, workdir)
    allowed = cpus_allowed(pid)
    if allowed != PROXY_CPU:
        raise RuntimeError(f"{kind} pid {pid} may run on CPUs {allowed}, expected {PROXY_CPU}")
    return inst


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


# ---------------------------------------------------------------------------------------------
# Load


def run_load(argv, timeout):
    argv = ["taskset", "-c", LOAD_CPU] + argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return r


def measured(inst, fn):
    """Run fn() and return (result, measurement of the proxy and the CPUs around it)."""
    c0 = inst.cpu() if inst else None
    b0 = cpu_busy()
    n0 = tcp_counters()
    t0 = time.monotonic()
    result = fn()
    t1 = time.monotonic()
    c1 = inst.cpu() if inst else None
    b1 = cpu_busy()
    n1 = tcp_counters()
    m = {
        "wall_s": round(t1 - t0, 3),
        "cpu0_busy_s": round(b1["cpu0"][0] - b0["cpu0"][0], 2),
        "cpu1_busy_s": round(b1["cpu1"][0] - b0["cpu1"][0], 2),
        "steal_s": round(sum(b1[c][1] - b0[c][1] for c in b0), 2),
        "tcp": {k: n1[k] - n0[k] for k in n0},
        "loadavg": open("/proc/loadavg").read().split()[0],
    }
    if inst:
        m["proxy_cpu_s"] = round(c1 - c0, 2)
        m["proxy_rss_kib"] = inst.rss()
    return result, m


def iperf(port, streams, reverse, duration):
    argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-P", str(streams), "-t", str(duration), "-J"]
    if reverse:
        argv.append("-R")
    r = run_load(argv, duration + 30)
    try:
        j = json.loads(r.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"iperf3 failed: {r.stdout[-500:]} {r.stderr[-500:]}")
    if "error" in j:
        raise RuntimeError(f"iperf3: {j['error']}")
    recv = j["end"]["sum_received"]
    sent = j["end"]["sum_sent"]
    return {
        "gbps": recv["bits_per_second"] / 1e9,
        "bytes": recv["bytes"],
        "seconds": recv["seconds"],
        "retransmits": sent.get("retransmits", 0),
    }


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(port, close, duration, conns):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", "2s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}/")
    r = run_load(argv, duration + 30)
    out = r.stdout
    if r.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed: {out[-500:]} {r.stderr[-500:]}")
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        res[f"p{pct}_ms"] = to_ms(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    res["requests"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["errors"] = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), m.groups())} if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    return res


# ---------------------------------------------------------------------------------------------
# The idle-connection test


def read_line(proc, timeout):
    """One line from a child's stdout, bounded in time."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise RuntimeError(f"no answer from pid {proc.pid} in {timeout}s")
    line = proc.stdout.readline().decode().strip()
    if not line or line.startswith("error"):
        raise RuntimeError(f"idle client: {line or 'exited'}")
    return line


def held(count_file):
    try:
        with open(count_file) as f:
            return int(f.read() or 0)
    except (FileNotFoundError, ValueError):
        return -1


def wait_held(count_file, n, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if held(count_file) == n:
            return
        time.sleep(0.05)
    raise RuntimeError(f"backend holds {held(count_file)} connections, expected {n}")


def idle_test(kind, index, n_total, workdir, tools, count_file):
    """Fresh instances A and B of `kind`, n_total/2 idle connections each."""
    half = n_total // 2
    ports = [PORT_IDLE_BASE + 10 * index, PORT_IDLE_BASE + 10 * index + 1]
    insts = []
    client = None
    try:
        for j, port in enumerate(ports):
            insts.append(
                start_contestant(
                    kind, [("idle", port, PORT_HOLD)], os.path.join(workdir, "AB"[j]), tools, maxconn=half + 1000
                )
            )
        time.sleep(1.0)
        wait_held(count_file, 0, 30)
        rss0 = [i.rss() for i in insts]
        cpu0 = [i.cpu() for i in insts]
        t0 = time.monotonic()
        client = PROCS.start(
            "idle-client",
            [
                sys.executable,
                os.path.join(BENCH, "idle.py"),
                "client",
                "--target",
                ",".join(f"127.0.0.1:{p}" for p in ports),
                "--count",
                str(2 * half),
            ],
            LOAD_CPU,
            os.path.join(workdir, "client.log"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        read_line(client, 120)
        wait_held(count_file, 2 * half, 60)
        t_connected = time.monotonic() - t0
        time.sleep(1.0)
        rss1 = [i.rss() for i in insts]
        client.stdin.write(b"exchange\n")
        client.stdin.flush()
        read_line(client, 120)
        time.sleep(1.0)
        rss2 = [i.rss() for i in insts]
        cpu1 = [i.cpu() for i in insts]
        client.stdin.write(b"close\n")
        client.stdin.flush()
        read_line(client, 60)
        client.wait(10)
        PROCS.stop(client)
        client = None
        wait_held(count_file, 0, 60)
        time.sleep(0.5)
        rss3 = [i.rss() for i in insts]
        n = 2 * half
        return {
            "connections": n,
            "instances": 2,
            "rss_before_kib": rss0,
            "rss_connected_kib": rss1,
            "rss_after_echo_kib": rss2,
            "rss_after_close_kib": rss3,
            "bytes_per_conn_fresh": (sum(rss1) - sum(rss0)) * 1024 / n,
            "bytes_per_conn": (sum(rss2) - sum(rss0)) * 1024 / n,
            "proxy_cpu_s": round(sum(cpu1) - sum(cpu0), 2),
            "connect_s": round(t_connected, 2),
        }
    finally:
        if client is not None:
            PROCS.stop(client)
        for i in insts:
            i.stop()


# ---------------------------------------------------------------------------------------------
# Summary


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


METRICS = {
    # test: [(metric key, label, higher is better)]
    "tp1": [("gbps", "Gbit/s", True), ("cpu_ms_per_gbit", "CPU ms/Gbit", False)],
    "tp8": [("gbps", "Gbit/s", True), ("cpu_ms_per_gbit", "CPU ms/Gbit", False)],
    "tp1r": [("gbps", "Gbit/s", True), ("cpu_ms_per_gbit", "CPU ms/Gbit", False)],
    "cps": [("rps", "conn/s", True), ("cpu_us_per_conn", "CPU µs/conn", False), ("p99_ms", "p99 ms", False)],
    "lat": [("p50_ms", "p50 ms", False), ("p99_ms", "p99 ms", False), ("rps", "req/s", True),
            ("cpu_us_per_req", "CPU µs/req", False)],
    "idle": [("bytes_per_conn", "RSS B/conn", False), ("bytes_per_conn_fresh", "RSS B/conn (no data yet)", False),
             ("proxy_cpu_s", "CPU s", False)],
}


def derive(test, r):
    """Per-run derived metrics."""
    d = dict(r["result"])
    m = r.get("measure", {})
    if test.startswith("tp") and "proxy_cpu_s" in m:
        gbit = d["bytes"] * 8 / 1e9
        d["cpu_ms_per_gbit"] = 1000 * m["proxy_cpu_s"] / gbit if gbit else None
        d["proxy_cpu_util"] = m["proxy_cpu_s"] / m["wall_s"]
    if test == "cps" and "proxy_cpu_s" in m:
        d["cpu_us_per_conn"] = 1e6 * m["proxy_cpu_s"] / d["requests"]
        d["proxy_cpu_util"] = m["proxy_cpu_s"] / m["wall_s"]
        d["passive_opens_per_conn"] = m["tcp"]["Tcp:PassiveOpens"] / d["requests"]
    if test == "lat" and "proxy_cpu_s" in m:
        d["cpu_us_per_req"] = 1e6 * m["proxy_cpu_s"] / d["requests"]
        d["proxy_cpu_util"] = m["proxy_cpu_s"] / m["wall_s"]
    return d


def summarize(runs, contestants):
    summary = {}
    for test in TESTS:
        for who in contestants + ["direct"]:
            sel = [r for r in runs if r["test"] == test and r["who"] == who and "result" in r]
            rs = [derive(test, r) for r in sel]
            if not rs:
                continue
            keys = set().union(*[set(k for k, v in x.items() if isinstance(v, (int, float))) for x in rs])
            summary.setdefault(test, {})[who] = {
                k: median([x.get(k) for x in rs]) for k in sorted(keys)
            }
            summary[test][who]["reps"] = len(rs)
            # Per repetition, for ratios paired within a repetition (same contention).
            summary[test][who]["by_rep"] = {
                f"{r.get('file', 0)}:{r['rep']}": {k: v for k, v in x.items() if isinstance(v, (int, float))}
                for r, x in zip(sel, rs)
            }
    return summary


def paired_ratio(summary_test, who, base, key):
    """Median over repetitions of who's value ÷ base's value in the same repetition: the two
    ran minutes apart under the same outside load, so the ratio is steadier than a ratio of
    medians when other work on the machine comes and goes."""
    a = summary_test.get(who, {}).get("by_rep", {})
    b = summary_test.get(base, {}).get("by_rep", {})
    rs = [a[k][key] / b[k][key] for k in a if k in b and a[k].get(key) is not None and b[k].get(key)]
    return median(rs)


def contention(runs):
    """Median share of CPU 0 busy with work other than the proxy during the load runs, and
    the median steal share (the hypervisor running something else)."""
    other, steal = [], []
    for r in runs:
        m = r.get("measure")
        if m and "proxy_cpu_s" in m and m["wall_s"] > 0:
            other.append(max(0.0, m["cpu0_busy_s"] - m["proxy_cpu_s"]) / m["wall_s"])
            steal.append(m.get("steal_s", 0) / m["wall_s"])
    return median(other), median(steal)


def fmt(v):
    if v is None:
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


HAPS = ["haproxy", "haproxy-splice", "haproxy-splice-always"]


def ratios(summary_test, who, key):
    """'a · b · c': the value of `who` divided by each HAProxy variant's."""
    cells = []
    for h in HAPS:
        r = paired_ratio(summary_test, who, h, key)
        cells.append("–" if r is None else f"{r:.2f}")
    return " · ".join(cells)


TEST_TITLES = {
    "tp1": "Throughput, 1 stream (iperf3 -P 1, client → backend)",
    "tp8": "Throughput, 8 streams (iperf3 -P 8)",
    "tp1r": "Throughput, 1 stream reversed (iperf3 -P 1 -R, backend → client)",
    "cps": "New connections per second (wrk -t1 -c50, `Connection: close`)",
    "lat": "Latency over 50 kept-alive connections (wrk -t1 -c50)",
    "idle": "Idle connections (RSS growth of the proxy ÷ connections)",
}


def markdown(summary, contestants, meta, runs=()):
    out = []
    other, steal = contention(runs)
    load = ""
    if other is not None:
        load = (f" Other work on the proxy's CPU during the load runs: median {100 * other:.0f}% of it "
                f"(steal {100 * steal:.0f}%).")
    out.append(
        f"Run `{meta['started']}`: {meta['reps']} repetitions, {meta['duration']} s per load run, "
        f"idle test {meta['idle_conns']:,} connections over two instances per proxy. Medians over "
        "the repetitions. Ratio cells read `÷ haproxy · ÷ haproxy-splice · ÷ haproxy-splice-always`, "
        "each the median of the ratios within a repetition. "
        "*proxy CPU* is the proxy's CPU time ÷ wall time (1.00 = the whole core)." + load
    )
    out.append("")
    for test in TESTS:
        if test not in summary:
            continue
        out.append(f"**{TEST_TITLES[test]}**")
        out.append("")
        cols = METRICS[test]
        head = ["proxy"]
        for _, label, _ in cols:
            head += [label, "ratios"]
        extra = test != "idle"
        if extra:
            head.append("proxy CPU")
        out.append("| " + " | ".join(head) + " |")
        out.append("|---|" + "---:|" * (len(head) - 1))
        st = summary[test]
        for who in contestants + ["direct"]:
            s = st.get(who)
            if not s:
                continue
            row = [who]
            for key, _, _ in cols:
                row += [fmt(s.get(key)), ratios(st, who, key) if who != "direct" else ""]
            if extra:
                u = s.get("proxy_cpu_util")
                row.append(f"{u:.2f}" if u is not None else "–")
            out.append("| " + " | ".join(row) + " |")
        if test in ("cps", "lat"):
            errs = [f"{w} {fmt(st[w].get('errors_total'))}" for w in st if st[w].get("errors_total")]
            out.append("")
            out.append("wrk errors (socket errors + non-2xx, median per run): " + (", ".join(errs) or "none"))
        out.append("")
    out.append(targets_markdown(summary))
    return "\n".join(out)


TARGETS = [
    # (label, test, key, limit, higher is better)
    ("throughput 1 stream ≥ 1.2×", "tp1", "gbps", 1.2, True),
    ("throughput 8 streams ≥ 1.2×", "tp8", "gbps", 1.2, True),
    ("throughput 1 stream -R ≥ 1.2×", "tp1r", "gbps", 1.2, True),
    ("CPU per Gbit, 1 stream ≤ 1×", "tp1", "cpu_ms_per_gbit", 1.0, False),
    ("CPU per Gbit, 8 streams ≤ 1×", "tp8", "cpu_ms_per_gbit", 1.0, False),
    ("CPU per Gbit, 1 stream -R ≤ 1×", "tp1r", "cpu_ms_per_gbit", 1.0, False),
    ("connections/s ≥ 1.2×", "cps", "rps", 1.2, True),
    ("p99 latency ≤ 0.8×", "lat", "p99_ms", 0.8, False),
    ("RSS per idle connection ≤ 0.5×", "idle", "bytes_per_conn", 0.5, False),
]


def verdict(r, limit, higher):
    ok = r >= limit if higher else r <= limit
    if ok:
        return f"{r:.2f}× met"
    miss = (1 - r / limit) if higher else (r / limit - 1)
    pct = "<1" if miss < 0.01 else f"{miss * 100:.0f}"
    return f"{r:.2f}× **missed by {pct}%**"


def targets(summary):
    """[(havip variant, target label, {haproxy variant: (ratio, limit, higher)})]"""
    rows = []
    for who in ("havip-splice", "havip-buffered"):
        for label, test, key, limit, higher in TARGETS:
            st = summary.get(test, {})
            cells = {}
            for h in HAPS:
                r = paired_ratio(st, who, h, key)
                if r is not None:
                    cells[h] = (r, limit, higher)
            if cells:
                rows.append((who, label, cells))
    return rows


def targets_markdown(summary):
    out = [
        "**Targets** (havip ÷ HAProxy; the issue's targets are against HAProxy, and for CPU per "
        "Gbit against HAProxy with splice; every variant is shown; a miss is the shortfall "
        "relative to the target)",
        "",
        "| havip | target | vs haproxy | vs haproxy-splice | vs haproxy-splice-always |",
        "|---|---|---|---|---|",
    ]
    for who, label, cells in targets(summary):
        row = [who, label]
        for h in HAPS:
            row.append(verdict(*cells[h]) if h in cells else "–")
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Main


def versions(tools):
    def first(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except Exception as e:
            return f"? ({e})"

    git = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return {
        "havip": first([tools["havip"], "--version"]) + f" (git {git.stdout.strip()})",
        "haproxy": first(["haproxy", "-v"]),
        "nginx": first(["nginx", "-v"]),
        "iperf3": first(["iperf3", "--version"]),
        "wrk": first(["wrk", "--version"]),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu_model": next(
            (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"
        ),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "nofile_hard": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        "sysctl": {
            k: open(f"/proc/sys/{k.replace('.', '/')}").read().strip()
            for k in (
                "net.ipv4.ip_local_port_range",
                "net.ipv4.tcp_tw_reuse",
                "net.ipv4.tcp_fin_timeout",
                "net.core.somaxconn",
                "net.ipv4.tcp_max_tw_buckets",
            )
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--havip", default=os.path.join(REPO, "target", "release", "havip"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10, help="seconds per load run")
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--contestants", default=",".join(CONTESTANTS))
    ap.add_argument("--tests", default=",".join(TESTS))
    ap.add_argument("--no-direct", action="store_true", help="skip the no-proxy baseline runs")
    ap.add_argument("--out", default=os.path.join(BENCH, "results"))
    ap.add_argument("--update-docs", action="store_true", help="rewrite the figures block of docs/benchmarks.md")
    ap.add_argument("--havip-global", default="", help="extra TOML lines for havip's [global], e.g. 'pipe_size = 1048576'")
    args = ap.parse_args()
    global HAVIP_EXTRA
    HAVIP_EXTRA = args.havip_global

    contestants = [c for c in args.contestants.split(",") if c]
    tests = [t for t in args.tests.split(",") if t]
    for c in contestants:
        if c not in CONTESTANTS:
            sys.exit(f"unknown contestant {c}; known: {', '.join(CONTESTANTS)}")
    for t in tests:
        if t not in TESTS:
            sys.exit(f"unknown test {t}; known: {', '.join(TESTS)}")
    if args.idle_conns > 10000 or args.idle_conns < 2:
        sys.exit("--idle-conns must be 2..10000 (two instances per proxy, 20,000 descriptors per process)")
    if os.cpu_count() < 2:
        sys.exit("needs two CPUs: one for the proxy, one for the load")

    tools = {"havip": args.havip, "haproxy": shutil.which("haproxy"), "nginx": shutil.which("nginx")}
    for t in ("haproxy", "nginx", "iperf3", "wrk", "taskset"):
        if not shutil.which(t):
            sys.exit(f"{t} not found (bench/run.sh installs the packages)")
    if not os.access(tools["havip"], os.X_OK):
        sys.exit(f"{tools['havip']} not found; build it with cargo build --release -p havip")

    ports = [PORT_IPERF, PORT_HTTP, PORT_HOLD]
    for i in range(len(CONTESTANTS)):
        ports += [PORT_PROXY_BASE + 10 * i, PORT_PROXY_BASE + 10 * i + 1]
        ports += [PORT_IDLE_BASE + 10 * i, PORT_IDLE_BASE + 10 * i + 1]
    busy = [p for p in ports if not port_free(p)]
    if busy:
        sys.exit(f"ports in use on 127.0.0.1: {busy}")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    atexit.register(PROCS.stop_all)

    started = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="havip-bench-")
    log(f"work dir {work}")
    meta = {
        "started": started,
        "reps": args.reps,
        "duration": args.duration,
        "idle_conns": args.idle_conns,
        "contestants": contestants,
        "tests": tests,
        "versions": versions(tools),
        "pinning": {"proxy_cpu": PROXY_CPU, "load_cpu": LOAD_CPU},
        "havip_global_extra": HAVIP_EXTRA,
    }
    runs = []
    configs = {}

    def save():
        summary = summarize(runs, contestants)
        doc = {"meta": meta, "configs": configs, "runs": runs, "summary": summary}
        with open(os.path.join(args.out, f"{started}.json"), "w") as f:
            json.dump(doc, f, indent=1)
        return summary

    # Backends, on the load CPU.
    backends = os.path.join(work, "backends")
    os.makedirs(backends)
    iperf_srv = PROCS.start(
        "iperf3-server",
        ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(PORT_IPERF)],
        LOAD_CPU,
        os.path.join(backends, "iperf3.log"),
    )
    http_dir = os.path.join(backends, "http")
    os.makedirs(http_dir)
    http_cfg = os.path.join(http_dir, "nginx.conf")
    write(http_cfg, render("nginx-backend.conf.in", dir=http_dir, port=PORT_HTTP))
    http_srv = PROCS.start(
        "http-backend",
        ["nginx", "-p", http_dir, "-e", os.path.join(http_dir, "error.log"), "-c", http_cfg],
        LOAD_CPU,
        os.path.join(http_dir, "stderr.log"),
    )
    count_file = os.path.join(backends, "held")
    hold_srv = None
    if "idle" in tests:
        hold_srv = PROCS.start(
            "idle-backend",
            [sys.executable, os.path.join(BENCH, "idle.py"), "server", "--port", str(PORT_HOLD),
             "--count-file", count_file, "--lifetime", str(6 * 3600)],
            LOAD_CPU,
            os.path.join(backends, "hold.log"),
        )
    wait_port(PORT_IPERF, iperf_srv)
    wait_port(PORT_HTTP, http_srv)
    if hold_srv:
        end = time.monotonic() + 10
        while held(count_file) < 0 and time.monotonic() < end:
            time.sleep(0.05)

    # Long-lived contestants for the load tests, all at once on the proxy CPU.
    insts = {}
    load_tests = [t for t in tests if t != "idle"]
    if load_tests:
        for i, c in enumerate(contestants):
            idx = CONTESTANTS.index(c)
            base = PORT_PROXY_BASE + 10 * idx
            insts[c] = start_contestant(
                c, [("iperf", base, PORT_IPERF), ("http", base + 1, PORT_HTTP)], os.path.join(work, c), tools
            )
            configs[c] = insts[c].config_text
            log(f"started {c}: pid {insts[c].pid}")
        # Warm up each path once (first connections, lazy allocations).
        for c, inst in insts.items():
            base = PORT_PROXY_BASE + 10 * CONTESTANTS.index(c)
            run_load(["wrk", "-t1", "-c10", "-d1s", f"http://127.0.0.1:{base + 1}/"], 20)
            iperf(base, 1, False, 1)

    who_list = contestants + ([] if args.no_direct else ["direct"])
    for rep in range(args.reps):
        order = who_list[rep % len(who_list):] + who_list[: rep % len(who_list)]
        for test in load_tests:
            for who in order:
                inst = insts.get(who)
                if who == "direct":
                    port_iperf, port_http = PORT_IPERF, PORT_HTTP
                else:
                    base = PORT_PROXY_BASE + 10 * CONTESTANTS.index(who)
                    port_iperf, port_http = base, base + 1
                    if not inst.alive():
                        raise RuntimeError(f"{who} died; see {inst.workdir}/stderr.log")
                if test.startswith("tp"):
                    streams = 8 if test == "tp8" else 1
                    fn = lambda: iperf(port_iperf, streams, test == "tp1r", args.duration)
                elif test == "cps":
                    fn = lambda: wrk(port_http, True, args.duration, 50)
                else:
                    fn = lambda: wrk(port_http, False, args.duration, 50)
                entry = {"rep": rep, "test": test, "who": who}
                try:
                    result, m = measured(inst, fn)
                    if test in ("cps", "lat"):
                        result["errors_total"] = sum(result["errors"].values()) + result["non2xx"]
                    entry.update(result=result, measure=m)
                    brief = {k: round(v, 3) for k, v in derive(test, entry).items() if k in
                             ("gbps", "rps", "p99_ms", "cpu_ms_per_gbit", "cpu_us_per_conn", "errors_total")}
                    log(f"rep {rep} {test:4} {who:15} {brief} cpu0 {m['cpu0_busy_s']}s load {m['loadavg']}")
                except Exception as e:
                    entry["error"] = str(e)
                    log(f"rep {rep} {test} {who}: FAILED {e}")
                runs.append(entry)
                time.sleep(1.0)
            save()
        if "idle" in tests:
            for who in [w for w in order if w != "direct"]:
                entry = {"rep": rep, "test": "idle", "who": who}
                try:
                    res = idle_test(who, CONTESTANTS.index(who), args.idle_conns,
                                    os.path.join(work, f"idle-{who}-{rep}"), tools, count_file)
                    entry["result"] = res
                    log(f"rep {rep} idle {who:15} {res['bytes_per_conn']:.0f} B/conn "
                        f"(fresh {res['bytes_per_conn_fresh']:.0f}) cpu {res['proxy_cpu_s']}s")
                except Exception as e:
                    entry["error"] = str(e)
                    log(f"rep {rep} idle {who}: FAILED {e}")
                runs.append(entry)
            save()

    for c, inst in insts.items():
        inst.stop()
    summary = save()
    md = markdown(summary, contestants, meta, runs)
    with open(os.path.join(args.out, f"{started}.md"), "w") as f:
        f.write(md + "\n")
    print(md)
    log(f"raw results: {os.path.join(args.out, started + '.json')}")
    if args.update_docs:
        update_docs(md)
    failed = [r for r in runs if "error" in r]
    if failed:
        log(f"{len(failed)} run(s) failed; see the JSON and the logs in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Profiling one contestant under one load


def profile_main(argv):
    """bench.py profile --who C --test T [--tool perf|strace|callgrind] [--duration S]

    Start the backends and one contestant (pinned as in the benchmark), put load T on it, and
    attach the tool to the proxy for the run:
      perf       perf record -e cpu-clock -g (software clock: no hardware counters here);
                 writes perf.data and a text report
      strace     strace -c -f: system calls and their counts, per connection / per request
      callgrind  havip only: the proxy is started under valgrind --tool=callgrind (slow; use a
                 short duration); writes callgrind.out and a callgrind_annotate summary
      heaptrack  havip only: the proxy is started under heaptrack; writes heaptrack.zst and
                 a heaptrack_print summary (allocation calls per connection / request)
    Output goes to bench/results/profile-<who>-<test>-<time>/.
    """
    ap = argparse.ArgumentParser(prog="bench.py profile", description=profile_main.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--who", required=True, choices=CONTESTANTS)
    ap.add_argument("--test", required=True, choices=[t for t in TESTS if t != "idle"])
    ap.add_argument("--tool", default="perf", choices=["perf", "strace", "callgrind", "heaptrack", "none"])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--havip", default=os.path.join(REPO, "target", "release", "havip"))
    ap.add_argument("--havip-global", default="", help="extra TOML lines for havip's [global], e.g. 'pipe_size = 1048576'")
    args = ap.parse_args(argv)
    global HAVIP_EXTRA
    HAVIP_EXTRA = args.havip_global
    tools = {"havip": args.havip, "haproxy": shutil.which("haproxy"), "nginx": shutil.which("nginx")}
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    atexit.register(PROCS.stop_all)
    for p in (PORT_IPERF, PORT_HTTP, PORT_PROXY_BASE + 10 * CONTESTANTS.index(args.who),
              PORT_PROXY_BASE + 10 * CONTESTANTS.index(args.who) + 1):
        if not port_free(p):
            sys.exit(f"port {p} in use (is a benchmark running?)")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = os.path.join(BENCH, "results", f"profile-{args.who}-{args.test}-{args.tool}-{stamp}")
    os.makedirs(out)
    work = tempfile.mkdtemp(prefix="havip-prof-")
    iperf_srv = PROCS.start("iperf3-server", ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(PORT_IPERF)],
                            LOAD_CPU, os.path.join(work, "iperf3.log"))
    http_dir = os.path.join(work, "http")
    os.makedirs(http_dir)
    http_cfg = os.path.join(http_dir, "nginx.conf")
    write(http_cfg, render("nginx-backend.conf.in", dir=http_dir, port=PORT_HTTP))
    http_srv = PROCS.start("http-backend", ["nginx", "-p", http_dir, "-e", os.path.join(http_dir, "error.log"),
                                            "-c", http_cfg], LOAD_CPU, os.path.join(http_dir, "stderr.log"))
    wait_port(PORT_IPERF, iperf_srv)
    wait_port(PORT_HTTP, http_srv)
    base = PORT_PROXY_BASE + 10 * CONTESTANTS.index(args.who)
    services = [("iperf", base, PORT_IPERF), ("http", base + 1, PORT_HTTP)]
    if args.tool in ("callgrind", "heaptrack"):
        if not args.who.startswith("havip"):
            sys.exit(f"{args.tool} mode starts havip under the tool; use perf for the others")
        wrapper = os.path.join(work, "havip-wrapped")
        if args.tool == "callgrind":
            write(wrapper, "#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s/callgrind.out "
                           "--separate-threads=no \"%s\" \"$@\"\n" % (out, args.havip))
        else:
            # heaptrack runs the program as its child; exec keeps this wrapper's PID for it.
            write(wrapper, "#!/bin/sh\nexec heaptrack -o %s/heaptrack \"%s\" \"$@\"\n" % (out, args.havip))
        os.chmod(wrapper, 0o755)
        tools["havip"] = wrapper
    inst = start_contestant(args.who, services, os.path.join(work, args.who), tools)
    if args.tool == "heaptrack":
        # Measure and stop the havip process itself, not the heaptrack script around it.
        end = time.monotonic() + 10
        while time.monotonic() < end:
            kids = [k for k in children(inst.pid) if "havip" in open(f"/proc/{k}/comm").read()]
            if kids:
                break
            time.sleep(0.05)
        inst.pid = kids[0]
    if args.test.startswith("tp"):
        load = ["iperf3", "-c", "127.0.0.1", "-p", str(base), "-P", "8" if args.test == "tp8" else "1",
                "-t", str(args.duration), "-J"] + (["-R"] if args.test == "tp1r" else [])
    else:
        load = ["wrk", "-t1", "-c50", f"-d{args.duration}s", "--latency"]
        if args.test == "cps":
            load += ["-H", "Connection: close"]
        load.append(f"http://127.0.0.1:{base + 1}/")
    tool = None
    if args.tool == "perf":
        tool = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "4999", "-g", "-p", str(inst.pid),
                                 "-o", os.path.join(out, "perf.data"), "--", "sleep", str(args.duration)],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(out, "perf-record.log"), "w"))
    elif args.tool == "strace":
        tool = subprocess.Popen(["strace", "-c", "-f", "-p", str(inst.pid), "-o", os.path.join(out, "strace.txt")],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(out, "strace.log"), "w"))
        time.sleep(0.5)
    c0 = inst.cpu()
    r = run_load(load, args.duration + 60)
    c1 = inst.cpu()
    write(os.path.join(out, "load.txt"), r.stdout + r.stderr)
    if args.tool == "perf":
        tool.wait(args.duration + 30)
        rep = subprocess.run(["perf", "report", "-i", os.path.join(out, "perf.data"), "--stdio", "--no-children",
                              "--percent-limit", "0.5", "-g", "none"], capture_output=True, text=True)
        write(os.path.join(out, "report-flat.txt"), rep.stdout)
        rep = subprocess.run(["perf", "report", "-i", os.path.join(out, "perf.data"), "--stdio", "--children",
                              "--percent-limit", "2", "-g", "caller,0.5,callee,function,percent"],
                             capture_output=True, text=True)
        write(os.path.join(out, "report-tree.txt"), rep.stdout)
    elif args.tool == "strace":
        os.kill(tool.pid, signal.SIGINT)
        tool.wait(30)
    if args.tool == "heaptrack":
        os.kill(inst.pid, signal.SIGTERM)
        inst.proc.wait(60)
        rep = subprocess.run(["heaptrack_print", "-f", os.path.join(out, "heaptrack.zst"), "--print-peaks", "0",
                              "--print-temporary", "0", "--print-leaks", "0", "--print-allocators", "1",
                              "--peak-limit", "15"], capture_output=True, text=True)
        write(os.path.join(out, "heaptrack.txt"), rep.stdout)
    inst.stop()
    if args.tool == "callgrind":
        rep = subprocess.run(["callgrind_annotate", "--inclusive=yes", os.path.join(out, "callgrind.out")],
                             capture_output=True, text=True)
        write(os.path.join(out, "callgrind-inclusive.txt"), rep.stdout)
        rep = subprocess.run(["callgrind_annotate", os.path.join(out, "callgrind.out")], capture_output=True, text=True)
        write(os.path.join(out, "callgrind-self.txt"), rep.stdout)
    units = None
    if args.test.startswith("tp"):
        try:
            units = json.loads(r.stdout)["end"]["sum_received"]["bytes"]
            write(os.path.join(out, "summary.txt"), f"bytes {units}\nproxy_cpu_s {c1 - c0:.2f}\n")
        except Exception:
            pass
    else:
        m = re.search(r"(\d+) requests in", r.stdout)
        if m:
            write(os.path.join(out, "summary.txt"), f"requests {m.group(1)}\nproxy_cpu_s {c1 - c0:.2f}\n")
    PROCS.stop_all()
    shutil.rmtree(work, ignore_errors=True)
    print(out)


def report_main(argv):
    """bench.py report RESULT.json [RESULT.json ...] [--update-docs]

    Print the table of medians over every run in the given result files together (for
    example two 5-repetition runs taken at different times), and optionally write it into
    docs/benchmarks.md."""
    ap = argparse.ArgumentParser(prog="bench.py report", description=report_main.__doc__)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--update-docs", action="store_true")
    args = ap.parse_args(argv)
    runs, metas = [], []
    for i, path in enumerate(args.files):
        with open(path) as f:
            doc = json.load(f)
        metas.append(doc["meta"])
        for r in doc["runs"]:
            r = dict(r)
            r["file"] = i
            runs.append(r)
    contestants = [c for c in CONTESTANTS if any(c in m["contestants"] for m in metas)]
    meta = dict(metas[0])
    meta["started"] = " + ".join(m["started"] for m in metas)
    meta["reps"] = sum(m["reps"] for m in metas)
    md = markdown(summarize(runs, contestants), contestants, meta, runs)
    print(md)
    if args.update_docs:
        update_docs(md)


BEGIN = "<!-- bench:figures:begin -->"
END = "<!-- bench:figures:end -->"


def update_docs(md):
    path = os.path.join(REPO, "docs", "benchmarks.md")
    text = open(path).read() if os.path.exists(path) else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    write(path, f"{head}{BEGIN}\n{md}\n{END}{tail}")
    log(f"updated {path}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "profile":
        profile_main(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "report":
        report_main(sys.argv[2:])
    else:
        main()
