"""Connection scaling: server CPU to accept N clients, and RSS per idle connection.

Starts a fresh ``chatroom-server`` (``--quiet --max-per-address 0``, a temp
data dir) on port 0, opens N plain TCP connections from this process as fast
as it can (each reads its greeting, so every connection is fully joined),
then reads the server's CPU seconds (utime+stime from ``/proc/PID/stat``)
and RSS (``VmRSS`` from ``/proc/PID/status``) and reports:

* server CPU seconds to accept and greet all N (target: 10,000 within 5 s),
* RSS per idle connection: (RSS with N open - RSS before) / N (target: 2 KiB),
* with ``--partial``: the same with every connection holding a ~60 KiB
  unfinished line.

Run: ``python bench/connections.py [--clients 10000] [--runs 3]``; medians of
the runs are printed as one Markdown table. The file-descriptor limit of this
process (and so of the server it starts) is raised to the hard limit.
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import socket
import statistics
import subprocess
import tempfile
import time

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_server(data_dir: str, *extra: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        ["chatroom-server", "--port", "0", "--quiet", "--data-dir", data_dir, "--max-per-address", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    first = proc.stdout.readline()  # type: ignore[union-attr]
    return proc, int(first.strip().rsplit(":", 1)[1])


def open_clients(port: int, n: int, deadline: float) -> list[socket.socket]:
    """Open *n* connections, keeping at most 256 greetings outstanding; return the sockets."""
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    waiting = 0
    while (len(socks) < n or waiting) and time.monotonic() < deadline:
        while len(socks) < n and waiting < 256:
            s = socket.create_connection(("127.0.0.1", port))
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks.append(s)
            waiting += 1
        for key, _ in sel.select(1.0):
            try:
                data = key.fileobj.recv(4096)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            if b"\n" in data:
                sel.unregister(key.fileobj)
                waiting -= 1
    sel.close()
    if waiting:
        raise RuntimeError(f"{waiting} connections never got their greeting")
    return socks


def run(n: int, partial: bool) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_server(tmp, "--idle-timeout", "3600") if partial else start_server(tmp)
        try:
            time.sleep(0.3)
            rss0, cpu0 = rss_kib(proc.pid), cpu_seconds(proc.pid)
            start = time.monotonic()
            socks = open_clients(port, n, start + 120)
            wall = time.monotonic() - start
            if partial:
                for s in socks:
                    s.setblocking(True)
                    s.sendall(b"x" * 60_000)
            time.sleep(1.0)
            cpu = cpu_seconds(proc.pid) - cpu0
            per_conn = (rss_kib(proc.pid) - rss0) * 1024 / n
            for s in socks:
                s.close()
            return cpu, per_conn, wall
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--partial", action="store_true", help="also measure connections holding an unfinished line")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| case | N | server CPU s to accept | RSS per connection bytes | wall s |")
    print("|---|---:|---:|---:|---:|")
    for partial in ([False, True] if args.partial else [False]):
        rows = [run(args.clients, partial) for _ in range(args.runs)]
        cpu, per, wall = (statistics.median(col) for col in zip(*rows))
        name = "holding a 60 KB unfinished line" if partial else "idle"
        print(f"| {name} | {args.clients} | {cpu:.2f} | {per:.0f} | {wall:.1f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
