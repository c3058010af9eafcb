"""Persistence off the loop (issue 17 rows 5 and 14): a probe's chat latency while the room is busy, with the
history on and off, and how long a line waits for its commit (what a crash can lose).

Usage::

    python bench/durability.py [--cases transfer,churn] [--targets history,nohistory] [--runs 3]
                               [--size 1G] [--members 3000] [--churn-rate 500] [--seconds 5]
                               [--ping-ms transfer=5,churn=50] [--before BINDIR] [--server-args "..."]

Every run starts a fresh ``chatroom-server --port 0 --quiet --data-dir TMP --max-per-address 0
--flood-rate 0 --max-file-size SIZE`` (flood control off, as in bench/transfer.py: the probe's 200 lines
a second would be a flood under the defaults, and the room is what is measured); ``nohistory`` adds
``--no-history``; ``before`` is the ``chatroom-server`` found in ``--before BINDIR``, an older version
installed in another venv, history on. Targets are interleaved run by run so a busy neighbour hurts them
alike; the clients are always this venv's. A **probe** process joins ``#lobby`` with 10 sender
connections that take turns to say ``ping SEQ T`` (T: ``time.monotonic_ns()`` when sent) every
``--ping-ms`` ms in all (per case; default 5 ms during the transfer, 200 lines a second; 50 ms during the
churn, see below) and one connection that times each ping's arrival; a ping that never arrives within 2 s
of the end counts with the time it waited. Phases:

1. **baseline**: the probe alone for 3 s (the same server, just before the load);
2. **load**, the probe measuring throughout:

   - ``transfer``: a ``--size`` file (a 16 MiB random block repeated, ``bench/transfer.py``) goes from one
     real ``chatroom-client`` to another (``/sendfile bench.bin``; the receiver runs with
     ``--accept-files all``, each in its own folder, line mode); the phase ends when the receiver prints
     ``received "bench.bin" ... sha256 ok``;
   - ``churn``: ``--members`` idle members connect first (part of the scene: greeted, never reading);
     then for ``--seconds`` a new connection opens every 1/``--churn-rate`` s and the oldest of the last
     ten is closed (about ``--churn-rate`` connect/close per second). The probe pings every 50 ms here
     (60,000 deliveries a second to 3,000 members, the server's loop at about 70 % of a core): at 5 ms,
     600,000 deliveries a second saturate this machine's server (one core at 100 %, probe p99 145-176 ms
     with the history on, off, or the old server alike, and 35-70 ms before any churn), which measures the
     fan-out, not persistence; and under ``chrt -f`` a saturated server is paused 50 ms a second by the
     kernel's real-time throttling (``sched_rt_runtime_us`` 950000), which measures that.

With the history on, the **commit lag** is what the server logs when it stops (``room history: commit lag
p50 ... p99 ... max ... over N batches``, over its whole run: baseline and load): per batch of lines handed
to the writer thread, the time from its oldest line being appended to the loop learning it is committed.
A kill of the server loses at most the lines of that last stretch (docs/protocol.md, "Durability"). (A
reader polling the file from this process measured the same thing less well: the busy clients starve it.)

Prints one row per run, then a table of medians over the runs per case and target: probe p50 / p99 /
max during the load, the baseline p99, pings lost, commit lag p50 / p99 / max (history on), server CPU
seconds during the load, and the verdict (history on: probe p99 under 50 ms in both cases). Every phase
is bounded by a deadline; a 1 GiB run takes about 15 s, a churn run about 25 s with 3,000 members.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shlex
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import abuse  # noqa: E402 - bench/abuse.py: the server child, connect helpers, percentiles
import client_recv  # noqa: E402 - bench/client_recv.py: a real chatroom-client driven over its stdin
import transfer as tb  # noqa: E402 - bench/transfer.py: the file maker, size parser

#: Probe connections taking turns (the servers run with ``--flood-rate 0``: the probe measures the room).
SENDERS = 10
LAG = re.compile(r"commit lag p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms")
TRANSFER_DEADLINE = 300.0


# --------------------------------------------------------------------------- the probe
class Probe(abuse.Probe):
    """bench/abuse.py's probe (:data:`SENDERS` senders, one timer) pinging every *every_ms*: :meth:`begin` ...
    :meth:`end`, or :meth:`measure` for a fixed time."""

    def __init__(self, port: int, every_ms: float) -> None:
        super().__init__(port, SENDERS, every_ms)

    def begin(self) -> None:
        self.start(None)

    def end(self) -> tuple[list[float], int]:
        lat, lost, _ = self.finish()
        return lat, lost

    def measure(self, seconds: float) -> tuple[list[float], int]:
        self.start(seconds)
        lat, lost, _ = self.result()
        return lat, lost


# --------------------------------------------------------------------------- the loads
def load_transfer(server: abuse.Server, probe: Probe, args: argparse.Namespace, tmp: Path,
                  source: Path) -> tuple[str, tuple[list[float], int]]:
    """The file from one real chatroom-client to another, the probe measuring until it is received."""
    rx = client_recv.Client(server.port, "rx", tmp / "rx")
    (tmp / "tx" / "out").mkdir(parents=True, exist_ok=True)
    os.link(source, tmp / "tx" / "out" / "bench.bin")
    tx = client_recv.Client(server.port, "tx", tmp / "tx")
    try:
        probe.begin()
        t0 = time.monotonic()
        tx.send("/sendfile bench.bin")
        line, end = rx.expect('received "bench.bin"')
        result = probe.end()
        if "sha256 ok" not in line:
            raise RuntimeError(f"bad receipt: {line}")
        return f"{args.size / (end - t0) / 1e6:.0f} MB/s", result
    finally:
        for client in (tx, rx):
            client.stop()
        shutil.rmtree(tmp / "rx", ignore_errors=True)
        shutil.rmtree(tmp / "tx", ignore_errors=True)


def setup_members(server: abuse.Server, n: int) -> list[socket.socket]:
    socks = abuse.connect_many(server.port, n, time.monotonic() + 120)
    end = time.monotonic() + 120
    for s in socks:
        abuse.recv_lines(s, end, until=b"Welcome", cap=1 << 20)
    return socks


def load_churn(server: abuse.Server, probe: Probe, args: argparse.Namespace) -> tuple[str, tuple[list[float], int]]:
    """About ``--churn-rate`` connect/close per second for ``--seconds``, the probe measuring."""
    rate, done, failed, live = args.churn_rate, 0, 0, []
    probe.begin()
    t0 = time.monotonic()
    deadline = t0 + args.seconds
    for i in range(int(rate * args.seconds) + 1):
        wait = t0 + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if time.monotonic() > deadline:
            break
        try:
            live.append(abuse.connect(server.port, timeout=1))
            done += 1
        except OSError:
            failed += 1
        while len(live) > 10:
            live.pop(0).close()
    result = probe.end()
    for s in live:
        s.close()
    secs = time.monotonic() - t0
    return f"{done / max(secs, 1e-9):.0f} connect/close per s, {failed} failed", result


def run_once(case: str, target: str, args: argparse.Namespace, tmp: Path, source: Path) -> dict[str, Any]:
    extra = ["--max-per-address", "0", "--flood-rate", "0", "--max-file-size", str(args.size),
             *shlex.split(args.server_args)]
    if target == "nohistory":
        extra.append("--no-history")
    path = os.environ["PATH"]
    if target == "before":
        os.environ["PATH"] = f"{args.before}{os.pathsep}{path}"  # abuse.Server finds chatroom-server on PATH
    try:
        server = abuse.Server(str(tmp), extra)
    finally:
        os.environ["PATH"] = path
    members: list[socket.socket] = []
    probe = None
    try:
        probe = Probe(server.port, args.ping_ms[case])
        if case == "churn":
            members = setup_members(server, args.members)
            server.settle(10)
        base, _ = probe.measure(3.0)
        argv = [str(a) for a in server.proc.args]  # type: ignore[union-attr]
        data_dir = Path(argv[argv.index("--data-dir") + 1])
        cpu0 = server.cpu()
        if case == "transfer":
            note, (lat, lost) = load_transfer(server, probe, args, tmp, source)
        else:
            note, (lat, lost) = load_churn(server, probe, args)
        cpu = server.cpu() - cpu0
        note += f"; {len(members)} members" if members else ""
        for s in members:
            s.close()
        members = []
        probe.stop()
        probe = None
        server.stop()
        lag = LAG.search((data_dir / "chatroom.log").read_text()) if target != "before" else None
        nan = float("nan")
        return {"p50": abuse.pct(lat, 0.5), "p99": abuse.pct(lat, 0.99), "max": max(lat, default=nan),
                "base99": abuse.pct(base, 0.99), "lost": lost, "pings": len(lat), "cpu": cpu,
                "lag50": float(lag.group(1)) if lag else nan, "lag99": float(lag.group(2)) if lag else nan,
                "lagmax": float(lag.group(3)) if lag else nan,
                "note": note}
    finally:
        for s in members:
            s.close()
        if probe is not None:
            probe.stop()
        server.stop()


def fmt(v: float, spec: str = ".1f") -> str:
    return "-" if v != v else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="transfer,churn")
    ap.add_argument("--targets", default="history,nohistory")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=tb.parse_size, default=1 << 30)
    ap.add_argument("--members", type=int, default=3000)
    ap.add_argument("--churn-rate", type=float, default=500.0)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--server-args", default="")
    ap.add_argument("--before", metavar="BINDIR", help="folder of an older chatroom-server (target 'before')")
    ap.add_argument("--ping-ms", default="transfer=5,churn=50", help="the probe's interval per case, ms")
    args = ap.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    args.ping_ms = {k: float(v) for k, _, v in (item.partition("=") for item in args.ping_ms.split(",") if item)}
    targets = [t for t in args.targets.split(",") if t]
    if "before" in targets and not args.before:
        ap.error("target 'before' needs --before BINDIR")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    load0 = os.getloadavg()
    print(f"<!-- {' '.join(sys.argv)} -->")
    print(f"<!-- {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python "
          f"{platform.python_version()}; load average {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f}; "
          f"scheduling policy {os.sched_getscheduler(0)} (1: SCHED_FIFO, chrt -f) -->", flush=True)
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {(c, t): [] for c in cases for t in targets}
    with tempfile.TemporaryDirectory(prefix="durability-") as tmp_name:
        tmp = Path(tmp_name)
        source = tmp / "bench.bin"
        if "transfer" in cases:
            tb.make_file(source, args.size)
        for run in range(args.runs):
            for case in cases:
                for target in targets:
                    r = run_once(case, target, args, tmp, source)
                    rows[(case, target)].append(r)
                    print(f"<!-- run {run + 1} {case} {target}: p50 {fmt(r['p50'])} p99 {fmt(r['p99'])} "
                          f"max {fmt(r['max'])} base p99 {fmt(r['base99'])} lost {r['lost']}/{r['pings']} "
                          f"commit lag p50 {fmt(r['lag50'])} p99 {fmt(r['lag99'])} max {fmt(r['lagmax'])} "
                          f"cpu {fmt(r['cpu'], '.2f')} s; {r['note']} -->", flush=True)
    print("\n| case | target | probe p50 ms | p99 ms | max ms | baseline p99 ms | pings lost | "
          "commit lag p50 / p99 / max ms | server CPU s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    verdict = []
    for (case, target), rs in rows.items():
        med = {k: statistics.median([r[k] for r in rs]) for k in
               ("p50", "p99", "max", "base99", "lost", "cpu", "lag50", "lag99", "lagmax")}
        lag = f"{fmt(med['lag50'])} / {fmt(med['lag99'])} / {fmt(med['lagmax'])}" if target == "history" else "-"
        print(f"| {case} | {target} | {fmt(med['p50'])} | {fmt(med['p99'])} | {fmt(med['max'])} | "
              f"{fmt(med['base99'])} | {med['lost']:.0f} | {lag} | {fmt(med['cpu'], '.2f')} |")
        if target == "history":
            verdict.append(f"{case}: p99 {fmt(med['p99'])} ms {'<' if med['p99'] < 50 else '>='} 50 ms")
    print(f"\nTarget (history on, probe p99 under 50 ms): {'; '.join(verdict)}. Medians of {args.runs} runs.")
    load1 = os.getloadavg()
    print(f"<!-- load average after: {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f} -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
