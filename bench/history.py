"""History benchmark: queries on a 1,000,000-line room, the per-pass write, retention steps.

Usage::

    python bench/history.py [--lines 1000000] [--other 100000] [--samples 2000]
                            [--runs 3] [--prune-steps 50] [--dir DIR]

Measures :class:`chatroom.model.history.History` directly (no server, no
sockets): the storage part of issue 9's target "join with 20 lines of
history replayed, and ``/history 50``, with 1,000,000 lines stored in that
room: p99 under 5 ms each".

1. **Fill** (timed, not a target): a fresh ``rooms.sqlite3`` in a temporary
   folder (or ``--dir``) gets ``--lines`` lines in ``#big`` and ``--other``
   more spread over 9 other rooms, interleaved (1 in 10 lines), 20-140
   characters each, 50 nicks, appended through :meth:`History.append` and
   committed every 100,000 lines (one ``executemany`` transaction each). The
   database is then closed (WAL checkpointed) and reopened; the reopen time
   (what a server start costs) is printed.
2. **Runs**: each run takes ``--samples`` rounds; a round does each
   operation once, timed with ``time.perf_counter_ns``, in this order:

   - ``last(#big, 20)``: the replay on join;
   - ``since(#big, latest - k, 50)``, k random in 50..1000: a reconnecting
     client fetching what it missed, near the end;
   - ``before(#big, id, 50)``, id random within 100,000 of the middle:
     ``/history`` scrollback far back (pages a join would not have cached);
   - ``pass``: 20 ``append`` to ``#big`` and one ``submit``: what the loop
     pays per pass (the lines go to the writer thread; it never waits);
   - ``commit``: then waiting until the writer committed them (the writer
     thread's round trip: what a crash could lose; not on the loop);
   - ``append``: the mean of one ``append`` over a batch of 1,000 (one
     sample per round; the batch is committed outside the timing).

   Every query's length is checked. p50 / p99 / max per operation, in
   microseconds; with ``--runs`` > 1 the table shows the median of each
   column over the runs.
3. **Prune** (after the runs, it deletes data): ``--prune-steps`` calls of
   ``prune(keep_lines=latest - 100,000, keep_days=None, max_rows=2000)``,
   each deleting 2,000 of ``#big``'s oldest lines: how long the loop is held
   by one retention step.

The page cache is warm (the file was just written); a cold cache after a
reboot adds disk reads to the first queries. The script prints the command,
Python and SQLite versions, CPU count and load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from chatroom.model.history import History

ROOM = "#big"
OTHERS = [f"#room{i}" for i in range(1, 10)]
NICKS = [f"user{i:02d}" for i in range(50)]
WORDS = "the quick brown fox jumps over a lazy dog while history keeps every line safe".split()
BATCH = 100_000


def line_text(rng: random.Random) -> str:
    words: list[str] = []
    target = rng.randint(20, 140)
    length = 0
    while length < target:
        w = rng.choice(WORDS)
        words.append(w)
        length += len(w) + 1
    return " ".join(words)[:target]


def fill(path: Path, lines: int, other: int, rng: random.Random) -> tuple[float, int]:
    """Write the data set; return (seconds, lines written)."""
    texts = [line_text(rng) for _ in range(1000)]  # a pool: filling is not what is measured
    t0 = time.perf_counter()
    h = History(path, max_unsaved=BATCH + 1)  # commits of 100,000 lines: more may wait than a server allows
    written = 0
    big = 0
    extra = 0
    i = 0
    while big < lines or extra < other:
        if (i % 10 == 9 and extra < other) or big >= lines:
            h.append(OTHERS[extra % len(OTHERS)], "msg", NICKS[i % 50], texts[i % 1000])
            extra += 1
        else:
            kind = "me" if i % 97 == 0 else "msg"
            h.append(ROOM, kind, NICKS[i % 50], texts[i % 1000], account=NICKS[i % 50] if i % 3 else None)
            big += 1
        i += 1
        written += 1
        if h.pending >= BATCH:
            h.commit()
    h.close()
    return time.perf_counter() - t0, written


def pct(samples: list[int], q: float) -> float:
    """The q-quantile (0..1) of *samples* (nanoseconds), in microseconds (nearest rank)."""
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))] / 1000


def one_run(h: History, samples: int, rng: random.Random) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {k: [] for k in ("last20", "since50", "before50", "pass20", "commit", "append")}
    clock = time.perf_counter_ns
    for _ in range(samples):
        latest = h.latest_id(ROOM)
        middle = latest // 2

        t = clock()
        got = h.last(ROOM, 20)
        out["last20"].append(clock() - t)
        assert len(got) == 20

        after = latest - rng.randint(50, 1000)
        t = clock()
        got = h.since(ROOM, after, 50)
        out["since50"].append(clock() - t)
        assert len(got) == 50 and got[0].id == after + 1

        before_id = middle + rng.randint(-100_000, 100_000)
        t = clock()
        got = h.before(ROOM, before_id, 50)
        out["before50"].append(clock() - t)
        assert len(got) == 50 and got[-1].id == before_id - 1

        t = clock()
        for j in range(20):
            h.append(ROOM, "msg", NICKS[j], "a line of a pass, about sixty bytes long, like chat is")
        h.submit()
        out["pass20"].append(clock() - t)
        t = clock()
        h.commit()
        out["commit"].append(clock() - t)

        t = clock()
        for j in range(1000):
            h.append(ROOM, "msg", "alice", "hello there")
        out["append"].append((clock() - t) // 1000)
        h.commit()
    return out


def time_call(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines in #big")
    parser.add_argument("--other", type=int, default=100_000, help="lines in 9 other rooms")
    parser.add_argument("--samples", type=int, default=2000, help="rounds per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prune-steps", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=None, help="folder for rooms.sqlite3 (default: a temp folder)")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    if args.lines < 250_000:
        parser.error("--lines must be at least 250000 (queries reach 100,000 lines around the middle)")

    rng = random.Random(args.seed)
    command = "python bench/history.py " + shlex.join(sys.argv[1:])
    print(f"command: `{command.strip()}`")
    print(
        f"machine: Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        folder = args.dir or Path(tmp)
        path = folder / "rooms.sqlite3"
        if path.exists():
            parser.error(f"{path} exists: pass an empty --dir")
        seconds, written = fill(path, args.lines, args.other, rng)
        size = path.stat().st_size
        print(
            f"fill: {written:,} lines in {seconds:.1f} s ({written / seconds:,.0f} lines/s), "
            f"file {size / 2**20:.0f} MiB ({size / written:.0f} bytes/line)"
        )
        opened: list[History] = []
        reopen = time_call(lambda: opened.append(History(path, max_unsaved=BATCH + 1)))
        h = opened[0]
        print(f"reopen (server start): {reopen * 1000:.1f} ms; latest id in {ROOM}: {h.latest_id(ROOM):,}")

        per_run: list[dict[str, list[int]]] = []
        for run in range(1, args.runs + 1):
            result = one_run(h, args.samples, rng)
            per_run.append(result)
            cells = ", ".join(
                f"{k} p50 {pct(v, 0.5):.1f} p99 {pct(v, 0.99):.1f}" for k, v in result.items()
            )
            print(f"run {run}: {cells} (us)")

        steps: list[int] = []
        keep = h.latest_id(ROOM) - 100_000
        for _ in range(args.prune_steps):
            t = time.perf_counter_ns()
            more = h.prune(keep_lines=keep, keep_days=None, max_rows=2000)
            steps.append(time.perf_counter_ns() - t)
            if not more:
                break
        first = h.last(ROOM, 1)[0].id if h.last(ROOM, 1) else 0
        oldest = h.before(ROOM, first + 1, 1)  # sanity: the query still works after pruning
        assert oldest
        h.close()

    names = {
        "last20": "`last(#big, 20)` (join replay)",
        "since50": "`since(#big, latest-k, 50)` (missed lines)",
        "before50": "`before(#big, middle, 50)` (`/history` scrollback)",
        "pass20": "20 × `append` + `submit` (one loop pass)",
        "commit": "... until the writer thread committed them",
        "append": "one `append` (mean of 1,000)",
    }
    print()
    print(f"Medians over {args.runs} run(s) of {args.samples} samples each, {args.lines:,} lines in `{ROOM}` "
          f"(+{args.other:,} in 9 other rooms), microseconds:")
    print()
    print("| operation | p50 µs | p99 µs | max µs | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    for key, label in names.items():
        p50 = statistics.median(pct(r[key], 0.5) for r in per_run)
        p99 = statistics.median(pct(r[key], 0.99) for r in per_run)
        mx = statistics.median(max(r[key]) / 1000 for r in per_run)
        target = {"last20": "p99 < 5000", "before50": "p99 < 5000", "since50": "p99 < 5000",
                  "append": "< 2"}.get(key, "")
        print(f"| {label} | {p50:.1f} | {p99:.1f} | {mx:.1f} | {target} |")
    print(f"| `prune(max_rows=2000)` step, {len(steps)} steps | {pct(steps, 0.5):.1f} | "
          f"{pct(steps, 0.99):.1f} | {max(steps) / 1000:.1f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
