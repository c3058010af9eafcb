"""What the search index costs a running server (issue 21 with issue 17's writer thread): CPU per stored chat
line on the loop thread and on the other threads (the history's writer), with the FTS5 index and without.

Usage::

    python bench/search_loop.py [--runs 3] [--lines 20000] [--senders 20] [--rates 200,2000]
                                [--variants index,noindex] [--server-args "..."]

Every measurement starts a ``chatroom-server --port 0 --quiet --flood-rate 0 --max-per-address 0
--data-dir D`` (flood control off: the senders are the load), stops it (so ``rooms.sqlite3`` exists with
every migration), and for ``noindex`` drops the search triggers (``search_line``, ``search_index_new``,
``search_index_more``, ``search_unline``: the schema then stores lines exactly as before search; the
server never re-creates them, its migrations are done), then starts it again on D. ``--senders``
connections in ``#lobby`` take turns to say ``--lines`` chat lines (3-18 words from bench/search.py's
Zipf vocabulary with diacritics, about 80 characters) at ``--rates`` lines a second in all, reading
everything they are sent (each line reaches the other senders: a room of ``--senders``). The phase ends
when a watcher connection has seen the last line and the server has gone quiet (the writer thread done).

CPU comes from ``/proc/PID/task/TID/stat`` (utime + stime) before and after the phase: the **loop** is
the main thread (TID = PID: parsing, hooks, fan-out, ``History.append`` and the hand-over to the writer),
the **writer** every other thread (the history's writer thread commits the lines and the index; its
checkpointer; both idle otherwise). Printed per line, in microseconds, with the ratio to ``noindex``;
medians over ``--runs`` runs, the variants alternating within each run. ``uptime``'s load is printed
first: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import selectors
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import abuse  # noqa: E402 - bench/abuse.py: the server child, connect helpers
from search import TRIGGERS, Corpus  # noqa: E402 - bench/search.py: the same lines and the same triggers

from chatroom.model.history_sql import INDEX_NEW  # noqa: E402

DEADLINE = 120.0
GROUPS = re.compile(r"over (\d+) batches in (\d+) commits")


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (utime + stime) of each thread of *pid*."""
    out: dict[int, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / abuse.CLK_TCK
    return out


def split(pid: int, before: dict[int, float], after: dict[int, float]) -> tuple[float, float]:
    """(loop CPU, other threads' CPU) spent between two :func:`thread_cpu` readings."""
    loop = after.get(pid, 0.0) - before.get(pid, 0.0)
    others = sum(cpu - before.get(tid, 0.0) for tid, cpu in after.items() if tid != pid)
    return loop, others


def prepare(tmp: str, variant: str, extra: list[str]) -> str:
    """A data dir whose ``rooms.sqlite3`` went through every migration; without the search triggers for
    ``noindex``."""
    data = tempfile.mkdtemp(prefix=f"{variant}-", dir=tmp)
    first = abuse.Server(tmp, ["--data-dir", data, *extra])
    first.stop()
    conn = sqlite3.connect(Path(data) / "rooms.sqlite3")
    if variant == "noindex":
        for trigger in TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        # Schema 6: the writer's index step takes the lines above 'search_indexed': none ever are.
        conn.execute("UPDATE history_meta SET value = 9000000000000000000 WHERE key = 'search_indexed'")
    if variant == "perjob":  # migration 4's design: the index step in triggers on history_seq, once per job
        body = "; ".join(INDEX_NEW) + ";"
        conn.execute(f"CREATE TRIGGER search_index_new AFTER INSERT ON history_seq BEGIN {body} END")
        conn.execute(f"CREATE TRIGGER search_index_more AFTER UPDATE ON history_seq BEGIN {body} END")
    conn.commit()
    conn.close()
    return data


def drain(sel: selectors.BaseSelector, counts: dict[object, bytes]) -> int:
    """Read what every connection has; returns how many ``zzend`` markers arrived."""
    ends = 0
    for key, _ in sel.select(0):
        try:
            data = key.fileobj.recv(1 << 18)  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            continue
        tail = counts[key.fileobj] + data
        ends += tail.count(b"zzend")
        counts[key.fileobj] = tail[-8:]
    return ends


def measure(variant: str, rate: float, args: argparse.Namespace, lines: list[bytes], tmp: str,
            extra: list[str]) -> tuple[float, float, float]:
    """One phase; (loop CPU, other threads' CPU) in seconds, and batches (loop passes' lines) per commit over
    the server's run (from the commit lag it logs when it stops)."""
    data = prepare(tmp, variant, extra)
    server = abuse.Server(tmp, ["--data-dir", data, *extra])
    try:
        deadline = time.monotonic() + DEADLINE
        socks = [abuse.connect(server.port) for _ in range(args.senders + 1)]
        sel = selectors.DefaultSelector()
        tails: dict[object, bytes] = {}
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
            tails[s] = b""
        watcher, senders = socks[0], socks[1:]
        server.settle()
        drain(sel, tails)
        before = thread_cpu(server.pid)
        start = time.monotonic()
        for i, line in enumerate(lines):
            due = start + i / rate
            while (now := time.monotonic()) < due:
                drain(sel, tails)
                time.sleep(min(0.002, due - now))
            abuse.pump({senders[i % len(senders)]: line}, deadline)
        seen = False
        while not seen and time.monotonic() < deadline:
            for key, _ in sel.select(0.05):
                try:
                    data_in = key.fileobj.recv(1 << 18)  # type: ignore[union-attr]
                except (BlockingIOError, InterruptedError):
                    continue
                if key.fileobj is watcher and b"zzend" in tails[watcher] + data_in:
                    seen = True
                tails[key.fileobj] = (tails[key.fileobj] + data_in)[-8:]
        if not seen:
            raise RuntimeError("the last line never reached the watcher")
        server.settle()
        after = thread_cpu(server.pid)
        for s in socks:
            s.close()
    finally:
        server.stop()
    groups = GROUPS.search((Path(data) / "chatroom.log").read_text())
    return (*split(server.pid, before, after), int(groups[1]) / int(groups[2]) if groups else float("nan"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--rates", default="200,2000", help="lines a second in all, comma-separated")
    parser.add_argument("--variants", default="index,perjob,noindex")
    parser.add_argument("--server-args", default="")
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    extra = ["--flood-rate", "0", "--max-per-address", "0", *shlex.split(args.server_args)]
    corpus = Corpus(random.Random(21))
    texts = [corpus.line() for _ in range(args.lines - 1)] + ["zzend"]
    lines = [(t + "\n").encode() for t in texts]
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"{args.lines:,} lines from {args.senders} senders; medians of {args.runs} runs; CPU us per line")
    print("\n| lines/s | variant | loop | writer and others | total | loop ratio | writer ratio | total ratio "
          "| batches per commit |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="bench-search-loop-") as tmp:
        for rate in (float(r) for r in args.rates.split(",")):
            got: dict[str, list[tuple[float, float, float]]] = {v: [] for v in variants}
            for run in range(args.runs):
                for v in variants if run % 2 == 0 else variants[::-1]:
                    got[v].append(measure(v, rate, args, lines, tmp, extra))
                    loop, other, per = got[v][-1]
                    print(f"  run {run + 1} {v} at {rate:.0f}/s: loop {loop * 1e6 / args.lines:.1f} us, "
                          f"others {other * 1e6 / args.lines:.1f} us per line, {per:.1f} batches per commit",
                          file=sys.stderr)
            med = {v: (statistics.median(c[0] for c in got[v]), statistics.median(c[1] for c in got[v]),
                       statistics.median(c[0] + c[1] for c in got[v])) for v in variants}
            base = med.get("noindex")
            for v in variants:
                cells = [f"{x * 1e6 / args.lines:.1f}" for x in med[v]]
                ratios = [f"{x / b:.2f}x" if base and b else "" for x, b in zip(med[v], base or med[v])]
                per = statistics.median(c[2] for c in got[v])
                print(f"| {rate:.0f} | {v} | " + " | ".join(cells) + " | " + " | ".join(ratios) + f" | {per:.1f} |")
    print(f"load at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
