"""Connection scaling: server CPU to set up N clients, and RSS per idle connection, against a bare loop.

Starts a fresh server per run on port 0 and opens N plain TCP connections
from this process as fast as it can, keeping at most 256 set-ups in flight.
Each connection reads its greeting; with a *named* case it then sends
``/nick nN`` and reads ``OK nick nN``, so every connection is a fully joined,
named member. Then it reads the server's CPU seconds (utime+stime from
``/proc/PID/stat``) and RSS (``VmRSS`` from ``/proc/PID/status``) and reports:

* server CPU seconds to set up all N (issue 17's target: 10,000 named
  connections within 5 s),
* RSS per connection: (RSS with N open - RSS before) / N (target: 2 KiB per
  named connection),
* wall seconds for the set-up (this process is the client side: it bounds
  the wall time, not the server's CPU).

Servers (``--targets``):

* ``chatroom``: ``chatroom-server --quiet --max-per-address 0 --data-dir TMP``
  (flood control, history and the default ``--announce-limit`` as shipped:
  10,000 members in ``#lobby`` is over the limit, so joins, leaves and renames
  are not announced to line-protocol members);
* ``baseline``: a bare ``selectors`` loop in this file (``--serve-baseline``):
  a greeting per connection and ``OK nick NAME`` per ``/nick``, one slotted
  object per connection (socket, input buffer, nick); no rooms, no limits, no
  announcements: the floor, not a server.

Cases (``--cases``): ``idle`` (greeting only), ``named`` (greeting, then
``/nick``), ``partial`` (idle, then every connection holds a ~60 KB
unfinished line; chatroom only, with ``--idle-timeout 3600``).

Run: ``python bench/connections.py [--clients 10000] [--runs 3] [--cases idle,named]
[--targets chatroom,baseline] [--server-args "..."]``; medians of the runs are
printed as one Markdown table. The file-descriptor limit of this process (and
so of the servers it starts) is raised to the hard limit.
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK = os.sysconf("SC_CLK_TCK")
IN_FLIGHT = 256


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_server(target: str, data_dir: str, extra: list[str]) -> tuple[subprocess.Popen, int]:
    """A fresh server for *target*; (process, port) once it printed ``... listening on HOST:PORT``."""
    if target == "baseline":
        cmd = [sys.executable, os.path.abspath(__file__), "--serve-baseline"]
    else:
        cmd = ["chatroom-server", "--port", "0", "--quiet", "--data-dir", data_dir, "--max-per-address", "0", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = proc.stdout.readline()  # type: ignore[union-attr]
    if "listening on" not in first:
        proc.kill()
        raise RuntimeError(f"{target} did not start: {first!r}")
    return proc, int(first.strip().rsplit(":", 1)[1])


def open_clients(port: int, n: int, named: bool, deadline: float) -> list[socket.socket]:
    """Open *n* connections (at most IN_FLIGHT set-ups at once); each reads its greeting and, when *named*,
    sends ``/nick nI`` and reads its ``OK``. Returns the sockets."""
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    waiting = 0
    while (len(socks) < n or waiting) and time.monotonic() < deadline:
        while len(socks) < n and waiting < IN_FLIGHT:
            s = socket.create_connection(("127.0.0.1", port))
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, [len(socks), b"", 0])  # [index, bytes so far, stage]
            socks.append(s)
            waiting += 1
        for key, _ in sel.select(1.0):
            state = key.data
            try:
                data = key.fileobj.recv(4096)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError(f"connection {state[0]} closed during set-up: {state[1][-200:]!r}")
            state[1] += data
            if state[2] == 0 and b"\n" in state[1]:  # greeted
                if not named:
                    sel.unregister(key.fileobj)
                    waiting -= 1
                    continue
                state[1] = state[1].split(b"\n", 1)[1]
                state[2] = 1
                key.fileobj.send(b"/nick n%d\n" % state[0])  # type: ignore[union-attr]
            if state[2] == 1 and b"OK nick n%d\n" % state[0] in state[1]:
                sel.unregister(key.fileobj)
                waiting -= 1
            elif state[2] == 1 and b"ERROR" in state[1]:
                raise RuntimeError(f"connection {state[0]}: {state[1][-200:]!r}")
    sel.close()
    if waiting or len(socks) < n:
        raise RuntimeError(f"{waiting} connections never finished their set-up ({len(socks)} of {n} opened)")
    return socks


def settle(pid: int, limit: float = 5.0) -> None:
    """Wait (at most *limit* s) until the server uses under 5 % of a core for 0.2 s."""
    end, last = time.monotonic() + limit, cpu_seconds(pid)
    while time.monotonic() < end:
        time.sleep(0.2)
        now = cpu_seconds(pid)
        if now - last <= 0.01:
            return
        last = now


def run(target: str, case: str, n: int, extra: list[str]) -> tuple[float, float, float]:
    """One fresh server, N connections of *case*: (server CPU s, RSS bytes per connection, wall s)."""
    with tempfile.TemporaryDirectory() as tmp:
        args = extra + (["--idle-timeout", "3600"] if case == "partial" else [])
        proc, port = start_server(target, tmp, args)
        socks: list[socket.socket] = []
        try:
            settle(proc.pid)
            rss0, cpu0 = rss_kib(proc.pid), cpu_seconds(proc.pid)
            start = time.monotonic()
            socks = open_clients(port, n, case == "named", start + 300)
            wall = time.monotonic() - start
            if case == "partial":
                for s in socks:
                    s.setblocking(True)
                    s.sendall(b"x" * 60_000)
            settle(proc.pid)
            cpu = cpu_seconds(proc.pid) - cpu0
            per_conn = (rss_kib(proc.pid) - rss0) * 1024 / n
            return cpu, per_conn, wall
        finally:
            for s in socks:
                s.close()
            proc.terminate()
            proc.wait(10)


# -- the baseline: a bare selectors loop ----------------------------------------------------------
class _Peer:
    __slots__ = ("inbuf", "nick", "sock")

    def __init__(self, sock: socket.socket, nick: bytes) -> None:
        self.sock, self.inbuf, self.nick = sock, b"", nick


def serve_baseline() -> None:
    """Greet each connection, answer ``/nick NAME`` with ``OK nick NAME``; serve until SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    lsock = socket.create_server(("127.0.0.1", 0), backlog=4096)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    serial = 0
    print(f"baseline listening on 127.0.0.1:{lsock.getsockname()[1]}", flush=True)
    while True:
        for key, _ in sel.select():
            p = key.data
            if p is None:
                while True:
                    try:
                        sock, _ = lsock.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    serial += 1
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    q = _Peer(sock, b"guest%d" % serial)
                    sel.register(sock, selectors.EVENT_READ, q)
                    sock.send(b"* Welcome to baseline, room lobby. You are %s.\n" % q.nick)
                continue
            try:
                data = p.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(p.sock)
                p.sock.close()
                continue
            lines = (p.inbuf + data).split(b"\n")
            p.inbuf = lines.pop()
            for line in lines:
                if line.startswith(b"/nick "):
                    p.nick = line[6:].strip()
                    p.sock.send(b"OK nick %s\n" % p.nick)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cases", default="idle,named", help="comma-separated: idle, named, partial")
    ap.add_argument("--targets", default="chatroom,baseline", help="comma-separated: chatroom, baseline")
    ap.add_argument("--partial", action="store_true", help="add the partial case (as --cases ...,partial)")
    ap.add_argument("--server-args", default="", help="extra chatroom-server arguments (shell-quoted)")
    ap.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_baseline:
        return serve_baseline()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cases = [c for c in args.cases.split(",") if c] + (["partial"] if args.partial else [])
    targets = [t for t in args.targets.split(",") if t]
    extra = shlex.split(args.server_args)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    rows = []
    for case in cases:
        for target in targets:
            if case == "partial" and target != "chatroom":
                continue
            results = []
            for _ in range(args.runs):
                results.append(run(target, case, args.clients, extra))
                print(f"<!-- {target} {case}: cpu {results[-1][0]:.2f} s, {results[-1][1]:.0f} B/conn, "
                      f"wall {results[-1][2]:.1f} s -->", flush=True)
            rows.append((target, case, *(statistics.median(col) for col in zip(*results))))
    print("| server | case | N | server CPU s to set up | RSS per connection bytes | wall s |")
    print("|---|---|---:|---:|---:|---:|")
    for target, case, cpu, per, wall in rows:
        print(f"| {target} | {case} | {args.clients} | {cpu:.2f} | {per:.0f} | {wall:.1f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
