"""Persistence off the loop (issue 17 rows 5 and 14): a probe's chat latency while the room is busy, with the
history on and off, and how long a line waits for its commit (what a crash can lose).

Usage::

    python bench/durability.py [--cases transfer,churn] [--targets history,nohistory] [--runs 3]
                               [--size 1G] [--members 3000] [--churn-rate 500] [--seconds 5]
                               [--before BINDIR] [--server-args "..."]

Every run starts a fresh ``chatroom-server --port 0 --quiet --data-dir TMP --max-per-address 0
--max-file-size SIZE`` (``nohistory`` adds ``--no-history``; ``before`` is the ``chatroom-server`` found
in ``--before BINDIR``, an older version installed in another venv, history on), targets interleaved run by
run so a busy neighbour hurts them alike. The clients are always this venv's. A **probe** process joins ``#lobby`` with 10 sender connections that take
turns to say ``ping SEQ T`` (T: ``time.monotonic_ns()`` when sent) every 5 ms in all (200 lines/s, each
connection at 20/s, under the default 25/s flood budget) and one connection that times each ping's
arrival; a ping that never arrives within 2 s of the end counts with the time it waited. Phases:

1. **baseline**: the probe alone for 3 s (the same server, just before the load);
2. **load**, the probe measuring throughout:

   - ``transfer``: a ``--size`` file (a 16 MiB random block repeated, ``bench/transfer.py``) goes from one
     real ``chatroom-client`` to another (``/sendfile bench.bin``; the receiver runs with
     ``--accept-files all``, each in its own folder, line mode); the phase ends when the receiver prints
     ``received "bench.bin" ... sha256 ok``;
   - ``churn``: ``--members`` idle members connect first (part of the scene: greeted, never reading);
     then for ``--seconds`` a new connection opens every 1/``--churn-rate`` s and the oldest of the last
     ten is closed (about ``--churn-rate`` connect/close per second).

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
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import abuse  # noqa: E402 - bench/abuse.py: the server child, connect helpers, percentiles
import client_recv  # noqa: E402 - bench/client_recv.py: a real chatroom-client driven over its stdin
import transfer as tb  # noqa: E402 - bench/transfer.py: the file maker, size parser

PING = re.compile(rb"ping (\d+) (\d+)")
LAG = re.compile(r"commit lag p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms")
GRACE_NS = 2_000_000_000
TRANSFER_DEADLINE = 300.0


# --------------------------------------------------------------------------- the probe
def probe_main(port: int, senders: int, ctl: Any) -> None:
    """Probe process: ``("start",)`` pings until ``("stop",)``; then replies ``(sent, latencies ms, lost)``."""
    try:
        tx = [abuse.connect(port) for _ in range(senders)]
        rx = abuse.connect(port)
        for i, s in enumerate([rx, *tx]):
            s.setblocking(True)
            s.settimeout(30)
            s.sendall(b"/nick %s\n" % (b"probetimer" if i == 0 else b"probe%d" % i))
            got = b""
            while b"\nOK nick" not in got and len(got) < 1 << 20:
                got += s.recv(65536) or b"\nOK nick (eof)"
            s.setblocking(False)
        ctl.send(("ready",))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, never hangs it
        ctl.send(("fail", repr(exc)))
        return
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(rx, selectors.EVENT_READ)
    seq, tail = 0, b""
    while True:
        msg = ctl.recv()
        if msg[0] != "start":
            return
        sent: dict[int, int] = {}
        lat: list[float] = []
        nxt = time.monotonic_ns()
        stop_at = None
        while True:
            now = time.monotonic_ns()
            if stop_at is None and ctl.poll():
                ctl.recv()
                stop_at = now
            if stop_at is not None and (not sent or now >= stop_at + GRACE_NS):
                break
            if stop_at is None and now >= nxt:
                seq += 1
                try:
                    tx[seq % senders].send(b"ping %d %d\n" % (seq, now))
                    sent[seq] = now
                except OSError:
                    pass
                nxt += 5_000_000
            for _ in sel.select(max(0.0, min(nxt - now, 5_000_000) / 1e9)):
                try:
                    data = rx.recv(262144)
                except BlockingIOError:
                    continue
                t = time.monotonic_ns()
                data = tail + data
                cut = data.rfind(b"\n") + 1
                tail = data[cut:]
                for n, t0 in PING.findall(data, 0, cut):
                    if sent.pop(int(n), None) is not None:
                        lat.append((t - int(t0)) / 1e6)
        now = time.monotonic_ns()
        lost = len(sent)
        lat += [(now - t0) / 1e6 for t0 in sent.values()]
        ctl.send(("result", seq, lat, lost))


class Probe:
    """The probe process and its pipe: :meth:`start`, then :meth:`stop` returns ``(latencies ms, lost)``."""

    def __init__(self, port: int, senders: int = 10) -> None:
        ctx = get_context("fork")
        self.ctl, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=probe_main, args=(port, senders, theirs), daemon=True)
        self.proc.start()
        msg = self.ctl.recv() if self.ctl.poll(60) else ("fail", "probe not ready in 60 s")
        if msg[0] != "ready":
            self.close()
            raise RuntimeError(f"probe: {msg[1]}")

    def start(self) -> None:
        self.ctl.send(("start",))

    def stop(self) -> tuple[list[float], int]:
        self.ctl.send(("stop",))
        if not self.ctl.poll(30):
            return [], -1
        _, _, lat, lost = self.ctl.recv()
        return lat, lost

    def measure(self, seconds: float) -> tuple[list[float], int]:
        self.start()
        time.sleep(seconds)
        return self.stop()

    def close(self) -> None:
        try:
            self.ctl.send(("exit",))
        except OSError:
            pass
        self.proc.join(3)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(3)


# --------------------------------------------------------------------------- the loads
def load_transfer(server: abuse.Server, probe: Probe, args: argparse.Namespace, tmp: Path,
                  source: Path) -> tuple[str, tuple[list[float], int]]:
    """The file from one real chatroom-client to another, the probe measuring until it is received."""
    rx = client_recv.Client(server.port, "rx", tmp / "rx")
    (tmp / "tx" / "out").mkdir(parents=True, exist_ok=True)
    os.link(source, tmp / "tx" / "out" / "bench.bin")
    tx = client_recv.Client(server.port, "tx", tmp / "tx")
    try:
        probe.start()
        t0 = time.monotonic()
        tx.send("/sendfile bench.bin")
        line, end = rx.expect('received "bench.bin"')
        result = probe.stop()
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
    probe.start()
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
    result = probe.stop()
    for s in live:
        s.close()
    secs = time.monotonic() - t0
    return f"{done / max(secs, 1e-9):.0f} connect/close per s, {failed} failed", result


def run_once(case: str, target: str, args: argparse.Namespace, tmp: Path, source: Path) -> dict[str, Any]:
    extra = ["--max-per-address", "0", "--max-file-size", str(args.size), *shlex.split(args.server_args)]
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
        probe = Probe(server.port)
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
        probe.close()
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
            probe.close()
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
    args = ap.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    targets = [t for t in args.targets.split(",") if t]
    if "before" in targets and not args.before:
        ap.error("target 'before' needs --before BINDIR")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    load0 = os.getloadavg()
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
