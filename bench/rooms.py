"""Rooms benchmark: 100 rooms of 20 members, 20 senders, against one room of 200.

Usage::

    python bench/rooms.py [--rooms 100] [--members 20] [--one 200] [--runs 3]
                          [--seconds 5] [--target chatroom] [--chatroom-args "..."]

Issue 9's target: with the clients spread over many rooms, deliveries per
second and server CPU per delivery within 15 % of one room of 200.

Both cases use bench/fanout.py's load generator and run loop
(:func:`fanout.run_once`: same 60-byte lines, 20 senders, at most 256 lines in
flight split statically over the senders, the same completion and loss
accounting, the same server flags for ``--target``):

* ``one room``: ``--one`` (200) clients, all in ``#lobby``: exactly
  ``fanout.py --clients 200`` (a line makes 199 deliveries).
* ``rooms``: ``--rooms`` x ``--members`` (100 x 20 = 2,000) clients; client
  ``i`` joins ``#rNNN`` with ``NNN = i % rooms`` and parts ``#lobby``, so each
  room has ``--members`` members. The 20 senders are clients 0..19: **one
  sender in each of rooms 0..19**; the other 80 rooms have no sender (idle
  members: they cost connections and memory, not deliveries). A
  line makes ``members - 1`` (19) deliveries, so per delivery the per-line
  work (read, parse, dispatch, history append) weighs about 10x more than in
  one room of 200: the target asks the per-room fan-out to amortise it.

``--latency`` measures the other rooms target instead: join with 20 lines of
history replayed, and ``/history 50``, with 1,000,000 lines stored in the
room, p99 under 5 ms each (see :func:`latency_main`).

In-flight window (``--inflight``): ``lines`` (default) keeps fanout's 256
lines in flight in both cases, so the rooms case has 10x fewer deliveries in
flight (256 x 19 against 256 x 199): a closed loop with little work per
round trip, latency-bound, with many small loop passes (per-pass costs weigh
more). ``deliveries`` gives the rooms case 256 x 199 / 19 = 2,681 lines in
flight (134 per sender), the same deliveries in flight as one room of 200.

The cases are interleaved run by run (a busy neighbour hurts both alike);
each run starts a fresh server. Printed: one Markdown row per run (``lines/s``
is deliveries/s over the deliveries a line makes), the medians, and the
verdict (rooms deliveries/s >= 0.85x one room, rooms srv us/deliv <= 1.15x
one room, no line lost, no misrouted line). The load average is printed
before and after.
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fanout import environment, medians, run_once
from fanout_load import SENDERS, WINDOW
from fanout_servers import CHATROOMS, chatroom_args

COLUMNS = ["case", "clients", "rooms", "run", "deliv/s", "lines/s", "p50 ms", "p99 ms", "lost",
           "srv us/deliv", "srv cpu %", "gen cpu %"]


def cells(case: dict[str, Any], row: dict[str, Any], run: Any) -> list[str]:
    """One table row for *row* (a :func:`fanout.run_once` result or a median)."""
    head = [case["name"], f"{case['n']:,}", str(case["rooms"] or 1), str(run)]
    if "error" in row:
        return head + ["ERROR: " + row["error"]] + [""] * (len(COLUMNS) - 5)
    return head + [f"{row['deliv_s']:,.0f}", f"{row['deliv_s'] / case['fan']:,.0f}",
                   f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}", str(row["lost"]),
                   f"{row['us_deliv']:.3f}", f"{row['srv_cpu']:.0f}", f"{row['gen_cpu']:.0f}"]


def verdict(one: dict[str, Any], many: dict[str, Any]) -> str:
    """Issue 9's rooms target: deliv/s and srv us/deliv of *many* within 15 % of *one*."""
    if "error" in one or "error" in many:
        return "Target: not measured (a case failed)"
    d = many["deliv_s"] / one["deliv_s"]
    c = many["us_deliv"] / one["us_deliv"]
    checks = [f"deliv/s rooms / one room: {d:.2f}x {'yes' if d >= 0.85 else 'no'}",
              f"srv us/deliv rooms / one room: {c:.2f}x {'yes' if c <= 1.15 else 'no'}",
              f"no line lost: {'yes' if one['lost'] == many['lost'] == 0 else 'no'}"]
    met = all(x.endswith("yes") for x in checks)
    return f"Target (within 15 %): {'MET' if met else 'NOT MET'} (" + "; ".join(checks) + ")"


# --------------------------------------------------------------------------- join / history latency
NICKS = [f"user{i:02d}" for i in range(50)]


def fill(data_dir: Path, room: str, lines: int) -> float:
    """Write *lines* chat lines (20-140 characters, 50 nicks) into *room* of
    ``data_dir/rooms.sqlite3`` with :class:`chatroom.model.history.History`
    directly, committed every 100,000; returns the seconds it took."""
    from chatroom.model.history import History

    rng = random.Random(9)
    words = "the a room line chat history join part topic server client lobby design".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 25)))[:140] for _ in range(1000)]
    t0 = time.perf_counter()
    h = History(data_dir / "rooms.sqlite3", max_unsaved=100_001)  # commits of 100,000 lines
    h.records.ensure_room(room)
    for i in range(lines):
        h.append(room, "msg", NICKS[i % 50], texts[i % 1000])
        if h.pending >= 100_000:
            h.commit()
    h.commit()
    h.close()
    return time.perf_counter() - t0


class LineConn:
    """A blocking TCP line client with a deadline per wait."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def until(self, prefix: bytes, timeout: float = 10.0) -> list[bytes]:
        """Lines read up to and including the first starting with *prefix*; raises on ERROR or timeout."""
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                out.append(line)
                if line.startswith(prefix):
                    return out
                if line.startswith(b"ERROR"):
                    raise RuntimeError(f"server said {line!r}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"no {prefix!r} in time; got {out[-3:]!r}")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("server closed the connection")
            self.buf += data


def pct_ms(samples: list[int], q: float) -> float:
    """Nearest-rank *q*-quantile of *samples* (ns) in ms."""
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))] / 1e6


def latency_main(args: argparse.Namespace) -> int:
    """Fill ``#big`` with ``--lines`` lines, start the server on that data dir, and time, per round:
    ``/join #big`` (send to ``OK join #big``, the replayed history lines counted), ``/history 50``
    (send to ``OK history``, 50 lines counted), ``/part #big`` (not timed). One connection, rounds
    back to back; ``--samples`` rounds after 20 unmeasured. Prints p50/p99/max in ms."""
    from fanout_servers import _read_listen_line

    tmp = Path(tempfile.mkdtemp(prefix="rooms-latency-"))
    proc = None
    try:
        data = tmp / "data"
        data.mkdir()
        fill_s = fill(data, "#big", args.lines)
        size = sum(f.stat().st_size for f in data.iterdir()) / 2**20
        print(f"Filled #big with {args.lines:,} lines in {fill_s:.1f} s ({size:.0f} MiB in {data.name}/)")
        cmd = ["chatroom-server", "--port", "0", "--data-dir", str(data), "--history-on-join", "20",
               *args.server_args.split()]
        print(f"<!-- server: {' '.join(cmd[:3])} DIR {' '.join(cmd[5:])} -->")
        with open(tmp / "server.log", "wb") as log:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log)
        t_start = time.monotonic()
        port = _read_listen_line(proc, time.monotonic() + 60)
        print(f"Server up (opening the history) in {time.monotonic() - t_start:.2f} s")
        c = LineConn(port)
        c.until(b"* Welcome")
        c.sock.sendall(b"/nick bench\n")
        c.until(b"OK")
        clock = time.perf_counter_ns
        joins: list[int] = []
        hists: list[int] = []
        replayed: set[int] = set()
        shown: set[int] = set()
        for i in range(args.samples + 20):
            t = clock()
            c.sock.sendall(b"/join #big\n")
            got = c.until(b"OK join #big")
            dt_join = clock() - t
            t = clock()
            c.sock.sendall(b"/history 50\n")
            got_h = c.until(b"OK history")
            dt_hist = clock() - t
            c.sock.sendall(b"/part #big\n")
            c.until(b"OK part")
            if i >= 20:
                joins.append(dt_join)
                hists.append(dt_hist)
                replayed.add(len(got) - 1)
                shown.add(len(got_h) - 1)
        print(f"\n{args.samples} samples each (after 20 unmeasured rounds); lines received before OK: "
              f"join {sorted(replayed)}, /history 50 {sorted(shown)}\n")
        print("| operation | samples | p50 ms | p99 ms | max ms | mean ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, xs in (("/join #big (20 history lines replayed)", joins), ("/history 50", hists)):
            print(f"| {name} | {len(xs)} | {pct_ms(xs, 0.5):.3f} | {pct_ms(xs, 0.99):.3f} | "
                  f"{max(xs) / 1e6:.3f} | {statistics.mean(xs) / 1e6:.3f} |")
        ok = pct_ms(joins, 0.99) < 5 and pct_ms(hists, 0.99) < 5
        print(f"\nTarget (p99 under 5 ms each): {'MET' if ok else 'NOT MET'}")
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 if a run failed)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rooms", type=int, default=100)
    ap.add_argument("--members", type=int, default=20, help="members per room")
    ap.add_argument("--one", type=int, default=200, help="clients in the one-room case")
    ap.add_argument("--target", default="chatroom", choices=CHATROOMS)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--drain", type=float, default=3.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--lat-every", type=int, default=4)
    ap.add_argument("--chatroom-args", default="")
    ap.add_argument("--inflight", choices=("lines", "deliveries"), default="lines",
                    help="lines: 256 lines in flight in both cases (the fanout load as it is); "
                         "deliveries: the rooms case gets 256 x (one-1)/(members-1) lines in flight, "
                         "so both cases have the same deliveries in flight")
    ap.add_argument("--latency", action="store_true",
                    help="measure join and /history latency on a big room instead")
    ap.add_argument("--lines", type=int, default=1_000_000, help="--latency: lines stored in #big")
    ap.add_argument("--samples", type=int, default=300, help="--latency: timed rounds")
    ap.add_argument("--server-args", default="--quiet --flood-rate 0",
                    help="--latency: more chatroom-server flags")
    args = ap.parse_args(argv)
    if args.latency:
        print(f"<!-- before: {environment()} -->")
        rc = latency_main(args)
        print(f"\n<!-- after: {environment()} -->")
        return rc
    if args.rooms < SENDERS or args.members < 2 or args.one < SENDERS:
        ap.error(f"need --rooms >= {SENDERS} (one sender per room), --members >= 2, --one >= {SENDERS}")
    many_window = WINDOW if args.inflight == "lines" else round(WINDOW * (args.one - 1) / (args.members - 1))
    cases = [dict(name="one room", n=args.one, rooms=0, fan=args.one - 1, window=WINDOW),
             dict(name="rooms", n=args.rooms * args.members, rooms=args.rooms, fan=args.members - 1,
                  window=many_window)]
    print(f"<!-- before: {environment()} -->")
    print(f"<!-- {args.target}: chatroom-server --port 0 --data-dir TMP "
          f"{' '.join(chatroom_args(args.target))} {args.chatroom_args} -->")
    print(f"<!-- rooms: {args.rooms} rooms x {args.members} members, senders = clients 0..{SENDERS - 1}, "
          f"one in each of rooms 0..{SENDERS - 1}; lines in flight: one room {WINDOW}, "
          f"rooms {many_window} (--inflight {args.inflight}) -->\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "|".join("---" if i < 4 else "---:" for i in range(len(COLUMNS))) + "|", flush=True)
    rows: dict[str, list[dict[str, Any]]] = {c["name"]: [] for c in cases}
    failed = False
    for run in range(1, args.runs + 1):
        for case in cases:
            ns = argparse.Namespace(**vars(args))
            ns.rooms, ns.window = case["rooms"], case["window"]
            row = run_once(args.target, case["n"], ns)
            rows[case["name"]].append(row)
            failed |= "error" in row
            note = "" if "error" in row else (
                f"  (setup {row['setup_s']:.1f}s" + (f", anomalies {row['anomalies']}" if row["anomalies"] else "")
                + (f", disconnected {row['dead']}" if row["dead"] else "")
                + ("" if row["drained"] else ", NOT drained") + ")")
            print("| " + " | ".join(cells(case, row, run)) + " |" + note, flush=True)
    med = {name: medians(r) for name, r in rows.items()}
    print(f"\nMedians over {args.runs} run(s), {args.seconds:g} s measured each (lost: sum over runs):\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "|".join("---" if i < 4 else "---:" for i in range(len(COLUMNS))) + "|")
    for case in cases:
        print("| " + " | ".join(cells(case, med[case["name"]], "med")) + " |")
    print("\n" + verdict(med["one room"], med["rooms"]))
    anomalies = sum(r.get("anomalies", 0) for rs in rows.values() for r in rs)
    if anomalies:
        print(f"\nWARNING: {anomalies} misrouted or out-of-order lines")
    print(f"\n<!-- after: {environment()} -->")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
