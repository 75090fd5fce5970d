#!/usr/bin/env python3
"""Idle-connection holder for the RSS-per-connection benchmark.

Two roles, each its own process (a process may hold at most ~20,000 descriptors here):

  idle.py server --port P --count-file F
      Accept connections on 127.0.0.1:P and hold them. Whatever a connection sends is echoed
      back once (so a client can prove the whole path through the proxy is up). The number of
      connections held is written to F whenever it changes (at most every 50 ms).

  idle.py client --target HOST:PORT[,HOST:PORT...] --count N
      Open N connections spread evenly over the targets (at most 256 connects in flight),
      print "connected N", then obey commands read from stdin, one per line:
        exchange  send 64 bytes on every connection and read the 64-byte echo back;
                  prints "exchanged N"
        close     close every connection and exit.
      Every wait is bounded (default 120 s); on timeout the process prints "error ..." and
      exits 1.

Only loopback addresses are accepted.
"""

import argparse
import errno
import ipaddress
import os
import selectors
import socket
import sys
import time

PAYLOAD = b"x" * 64


def loopback(host):
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit(f"idle.py: {host} is not a loopback address")
    return host


def serve(port, count_file, deadline_s):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4096)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    held = {}
    last_written = -1
    last_write_at = 0.0
    end = time.monotonic() + deadline_s

    def write_count(force=False):
        nonlocal last_written, last_write_at
        now = time.monotonic()
        if len(held) != last_written and (force or now - last_write_at >= 0.05):
            tmp = count_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(len(held)))
            os.replace(tmp, count_file)
            last_written = len(held)
            last_write_at = now

    write_count(force=True)
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.05):
            if key.data is None:
                for _ in range(256):
                    try:
                        conn, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    held[conn.fileno()] = conn
                    sel.register(conn, selectors.EVENT_READ, "conn")
            else:
                conn = key.fileobj
                try:
                    data = conn.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data:
                    try:
                        conn.send(data)
                    except OSError:
                        pass
                else:
                    sel.unregister(conn)
                    del held[conn.fileno()]
                    conn.close()
        write_count()
    write_count(force=True)


def client(targets, count, timeout_s):
    sel = selectors.DefaultSelector()
    socks = []
    pending = 0
    end = time.monotonic() + timeout_s
    i = 0
    while len(socks) < count or pending:
        while pending < 256 and len(socks) < count:
            host, port = targets[i % len(targets)]
            i += 1
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex((host, port))
            if rc not in (0, errno.EINPROGRESS):
                fail(f"connect to {host}:{port}: {os.strerror(rc)}")
            socks.append(s)
            sel.register(s, selectors.EVENT_WRITE)
            pending += 1
        for key, _ in sel.select(timeout=0.1):
            s = key.fileobj
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                fail(f"connect: {os.strerror(err)}")
            sel.unregister(s)
            pending -= 1
        if time.monotonic() > end:
            fail(f"timeout while connecting ({len(socks) - pending} of {count} connected)")
    print(f"connected {len(socks)}", flush=True)

    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "exchange":
            exchange(socks, timeout_s)
            print(f"exchanged {len(socks)}", flush=True)
        elif cmd == "close":
            for s in socks:
                s.close()
            print("closed", flush=True)
            return
        else:
            fail(f"unknown command {cmd!r}")


def exchange(socks, timeout_s):
    """Send PAYLOAD on every socket and read the echo back, 256 sockets at a time."""
    end = time.monotonic() + timeout_s
    sel = selectors.DefaultSelector()
    for start in range(0, len(socks), 256):
        batch = socks[start:start + 256]
        got = {}
        for s in batch:
            s.send(PAYLOAD)
            got[s.fileno()] = 0
            sel.register(s, selectors.EVENT_READ)
        left = len(batch)
        while left:
            if time.monotonic() > end:
                fail("timeout waiting for echoes")
            for key, _ in sel.select(timeout=0.1):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                if not data:
                    fail("connection closed during exchange")
                got[s.fileno()] += len(data)
                if got[s.fileno()] >= len(PAYLOAD):
                    sel.unregister(s)
                    left -= 1


def fail(msg):
    print(f"error {msg}", flush=True)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="role", required=True)
    sp = sub.add_parser("server")
    sp.add_argument("--port", type=int, required=True)
    sp.add_argument("--count-file", required=True)
    sp.add_argument("--lifetime", type=float, default=900.0, help="exit after this many seconds")
    cp = sub.add_parser("client")
    cp.add_argument("--target", required=True)
    cp.add_argument("--count", type=int, required=True)
    cp.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    if args.role == "server":
        serve(args.port, args.count_file, args.lifetime)
    else:
        targets = []
        for t in args.target.split(","):
            host, port = t.rsplit(":", 1)
            targets.append((loopback(host), int(port)))
        client(targets, args.count, args.timeout)


if __name__ == "__main__":
    main()
