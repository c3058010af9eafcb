"""Scale-out fan-out: one room shared by chatroom-server processes through Redis, against one process.

Usage::

    python bench/scaleout.py [--clients 50] [--runs 3] [--seconds 5] [--targets chatroom,redis1,redis2]

The load is bench/fanout.py's (N clients in one room, 20 of them talking, 256 lines in flight, every
line checked: ``lost`` counts missing deliveries), run by its :func:`fanout.run_once` on these targets,
interleaved run by run so the baseline is measured in the same run:

* ``chatroom``: one ``chatroom-server`` (fanout.py's target: history on, generous flood control);
* ``redis1``: the same process with ``--redis`` (one node: every line goes through Redis and back);
* ``redis2``: two ``chatroom-server --redis --reuse-port`` processes on one port (the kernel spreads the
  clients over them, about half each; the split is printed) and one ``redis-server``.

Redis: Debian's ``redis-server`` on a unix socket in a temporary folder with ``--appendonly yes
--appendfsync everysec`` (docs/scale-out.md's recommended persistence). ``srv us/deliv`` and
``srv cpu`` count the chatroom processes *and* redis-server. Issue 20's target: redis2 delivers at
least 60 % of chatroom's deliveries per second, nothing lost, p99 at most 2x.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fanout  # noqa: E402
import fanout_servers  # noqa: E402
from fanout_servers import Server, chatroom_args  # noqa: E402

_start, _stop, _cpu = fanout.start_server, fanout.stop_server, fanout.cpu_ticks
GROUPS: dict[int, list[int]] = {}  # leader pid -> every pid whose CPU counts


class Group:
    """Processes stopped together; ``pid`` is the leader's (for fanout's CPU reading)."""

    def __init__(self, procs: list[subprocess.Popen[bytes]], folder: str) -> None:
        self.procs = procs
        self.folder = folder
        self.pid = procs[0].pid

    def poll(self) -> int | None:
        return self.procs[0].poll()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _line(proc: subprocess.Popen[bytes], prefix: bytes, deadline: float) -> bytes:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"no {prefix!r} line")


def start_cluster(target: str, tmp: str, extra: str = "") -> Server:
    """redis-server and 1 or 2 ``chatroom-server --redis`` nodes (``--reuse-port``)."""
    if target not in ("redis1", "redis2"):
        return _start(target, tmp, extra)
    deadline = time.monotonic() + 20
    sock = f"{tmp}/redis.sock"
    redis = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", "0", "--unixsocket", sock,
                              "--dir", tmp, "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                              "--logfile", f"{tmp}/redis.log"], stdout=subprocess.DEVNULL)
    while not os.path.exists(sock):
        if time.monotonic() > deadline or redis.poll() is not None:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.01)
    nodes: list[subprocess.Popen[bytes]] = []
    port = 0
    for i in range(1 if target == "redis1" else 2):
        data = f"{tmp}/node{i}"
        cmd = ["chatroom-server", "--port", str(port), "--data-dir", data, "--web-port", "off", "--reuse-port",
               "--redis", f"unix://{sock}", "--node", f"n{i}", *chatroom_args("chatroom")]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(f"{tmp}/node{i}.err", "wb"))
        nodes.append(proc)
        port = int(_line(proc, b"chatroom-server listening on", deadline).strip().rsplit(b":", 1)[1])
        _line(proc, b"chatroom-server node ", deadline)
    group = Group([*nodes, redis], tmp)
    GROUPS[group.pid] = [p.pid for p in group.procs]
    return Server(target, group, port, False)  # type: ignore[arg-type]


def stop_cluster(server: Server) -> None:
    if isinstance(server.proc, Group):
        folder = Path(server.proc.folder)
        split = [(folder / f"node{i}" / "chatroom.log").read_text().count(" connected from ")
                 for i in range(len(server.proc.procs) - 1)]
        print(f"    ({server.name}: clients per node {split})", flush=True)
        server.proc.stop()
        GROUPS.pop(server.proc.pid, None)
    else:
        _stop(server)


def cpu_of_group(pid: int) -> int:
    return sum(_cpu(p) for p in GROUPS.get(pid, [pid]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="chatroom,redis1,redis2")
    parser.add_argument("--clients", default="50")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--drain", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lat-every", type=int, default=4)
    parser.add_argument("--chatroom-args", default="")
    args = parser.parse_args()
    fanout.start_server, fanout.stop_server, fanout.cpu_ticks = start_cluster, stop_cluster, cpu_of_group
    fanout_servers.start_server = start_cluster
    targets = args.targets.split(",")
    rows: dict[tuple[str, int], list[dict[str, Any]]] = {}
    print(f"scale-out fan-out: {args.runs} runs x {args.seconds:g} s, targets {targets}; "
          f"cpu count {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    print(" | ".join(name for name, _ in fanout.COLUMNS))
    for n in [int(x) for x in args.clients.split(",")]:
        for run in range(1, args.runs + 1):
            for target in targets:
                row = fanout.run_once(target, n, args)
                rows.setdefault((target, n), []).append(row)
                print(" | ".join(fanout.format_row(row, run)), flush=True)
    table = []
    for (target, n), runs in rows.items():
        med = fanout.medians(runs)
        table.append(fanout.format_row(med, "median"))
    print()
    print(fanout.markdown(table))
    for n in [int(x) for x in args.clients.split(",")]:
        base = fanout.medians(rows.get(("chatroom", n), [{"error": "-"}]))
        two = fanout.medians(rows.get(("redis2", n), [{"error": "-"}]))
        if "error" not in base and "error" not in two:
            print(f"N={n}: redis2 / chatroom deliveries {two['deliv_s'] / base['deliv_s']:.2f}x (target >= 0.60), "
                  f"p99 {two['p99_ms'] / base['p99_ms']:.2f}x (target <= 2), lost {two['lost']}")


if __name__ == "__main__":
    main()
