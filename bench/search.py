"""Search benchmark: query latency over 1,000,000 stored lines, and what the index costs each stored line.

Usage::

    python bench/search.py [--lines 1000000] [--rooms 20] [--samples 300] [--runs 3]
                           [--write-lines 20000] [--batches 1,20,200] [--variants off,on,naive]
                           [--dir DIR] [--seed 7]

Measures the room model directly (no server, no sockets): :class:`chatroom.model.history.History` and
:meth:`chatroom.model.rooms.Rooms.search`, the path ``/search`` takes. Issue 21's targets: a one-word and
a two-word query answer in under 50 ms at p99 with 1,000,000 lines in 20 rooms, and storing lines with
the index costs at most 1.3x storing them without.

1. **Fill** (timed, not a target): ``--lines`` chat lines, 3 to 18 words each (about 80 characters),
   words drawn from a 30,000-word vocabulary with Zipf frequencies (word of rank r has weight 1/r; some
   words carry diacritics), in ``--rooms`` rooms at random, 50 nicks, one second apart. They are
   written as a store of the schema before search (migration 3), then opened by ``History``, which
   runs migration 4 and indexes them: the time of that first open is what an upgrade costs once.
2. **Queries**: each run takes ``--samples`` rounds; a round times (``perf_counter``) one page of 20
   hits, newest first, as the server itself reads (every room readable) of: a one-word query, a
   two-word query (both words present), a one-word query with ``#room``, and one with ``from:NICK``.
   Query words are drawn log-uniformly over the vocabulary's ranks, so common words (tens of
   thousands of hits) and rare ones (a handful) are asked equally often. p50 / p99 / max per kind in
   milliseconds of wall time, and of this thread's CPU time (``(CPU)`` rows: what the query costs,
   without the waits a loaded machine adds); with ``--runs`` > 1, the median of each column over the runs.
3. **Write cost**: ``--write-lines`` lines stored through ``History.append`` + ``History.commit`` in
   commits of each ``--batches`` size (1: a quiet room, one line per loop pass; 20 and 200: a busy
   server's passes), into a fresh store per variant, the variants alternating within each run:
   ``off`` (the search triggers dropped: no index), ``on`` (the schema as shipped: since schema 6 a line's
   number is its row's rowid, the words go into FTS5 once per commit), ``naive`` (a trigger writes each
   line into FTS5 itself: SQLite 3.40's FTS5 writes out its pending terms at every statement savepoint,
   so this writes one index segment per line), ``map`` (only the numbering of ``on``, no words indexed:
   what the map cost before schema 6; since then the same as ``off``), ``column`` and ``nopos`` (``on`` with FTS5's ``detail=column`` and ``detail=none``:
   smaller posting lists, but no phrase queries). CPU seconds of this process (``process_time``,
   steady on a loaded machine) per line and the ratio to ``off``, medians of the runs. Then the other
   design, **the commit writing both**: the history's own statements (``INSERT`` the lines, upsert the
   counters) in one transaction per commit, with and without one more ``executemany`` putting the
   lines' words into FTS5 under a number the caller keeps (no map, no triggers: a lower bound of what
   that design costs, since it would still need the map to find a line's number when deleting it).
4. **Retention**: ten consecutive ``prune`` steps deleting ``PRUNE_ROWS`` (500) lines each, the server's
   step, with and without the index, on copies of a store of 100,000 lines: the median step, wall and CPU.

Prints the command, Python and SQLite versions, CPU count and load average.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import random
import shlex
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from chatroom.model.access import SERVER
from chatroom.model.history import History
from chatroom.model.history_sql import MIGRATIONS
from chatroom.model.rooms import Rooms
from chatroom.model.store import close_store, migrate, open_store
from chatroom.server.keeper import PRUNE_ROWS

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "po", "shi", "ve", "da", "ze", "fu", "bo", "gri", "an", "el", "or",
             "un", "is", "café", "né", "über", "ço"]
NICKS = [f"user{i:02d}" for i in range(50)]
T0 = 1_700_000_000.0
TRIGGERS = ("search_line", "search_index_new", "search_index_more", "search_unline")


class Corpus:
    """A vocabulary with Zipf weights and a line generator."""

    def __init__(self, rng: random.Random, size: int = 30_000) -> None:
        words = dict.fromkeys("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(size * 3))
        self.words = list(words)[:size]
        self.cum = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(self.words))))
        self.rng = rng

    def line(self) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.cum, k=self.rng.randint(3, 18)))

    def query_word(self) -> str:
        """A word whose rank is log-uniform over the vocabulary: common and rare words alike."""
        return self.words[min(len(self.words) - 1, int(math.exp(self.rng.uniform(0, math.log(len(self.words))))))]


def fill(path: Path, lines: int, rooms: list[str], corpus: Corpus) -> tuple[float, float]:
    """A store of the schema before search with *lines* lines; then open it (migration 4 indexes them).
    Returns (seconds to write, seconds of the first open)."""
    rng = corpus.rng
    t = time.perf_counter()
    conn = open_store(path)
    migrate(conn, MIGRATIONS[:3])
    ids = dict.fromkeys(rooms, 0)
    batch = []
    conn.execute("BEGIN")
    for i in range(lines):
        room = rooms[rng.randrange(len(rooms))]
        ids[room] += 1
        batch.append((room, ids[room], T0 + i, "msg", NICKS[rng.randrange(50)], None, corpus.line()))
        if len(batch) == 100_000:
            conn.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
            batch = []
    conn.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
    conn.executemany("INSERT INTO history_seq (room, last_id) VALUES (?, ?)", ids.items())
    conn.executemany("INSERT INTO rooms (name, created) VALUES (?, ?)", [(room, T0) for room in rooms])
    conn.execute("COMMIT")
    close_store(conn)
    written = time.perf_counter() - t
    t = time.perf_counter()
    History(path).close()
    return written, time.perf_counter() - t


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))]


def query_run(rooms: Rooms, corpus: Corpus, names: list[str], samples: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"one word": [], "two words": [], "#room + word": [], "from: + word": []}
    cpu: dict[str, list[float]] = {kind: [] for kind in out}
    rng = corpus.rng
    for _ in range(samples):
        queries = {
            "one word": corpus.query_word(),
            "two words": f"{corpus.query_word()} {corpus.query_word()}",
            "#room + word": f"{rng.choice(names)} {corpus.query_word()}",
            "from: + word": f"from:{rng.choice(NICKS)} {corpus.query_word()}",
        }
        for kind, text in queries.items():
            t, c = time.perf_counter(), time.thread_time()
            rooms.search(SERVER, text, limit=20)
            out[kind].append((time.perf_counter() - t) * 1000)
            cpu[kind].append((time.thread_time() - c) * 1000)
    out.update({f"{kind} (CPU)": v for kind, v in cpu.items()})
    return out


def variant(history: History, name: str) -> None:
    """Turn the fresh store of *history* into variant *name* (see the module docstring)."""
    conn = history._conn  # the benchmark reaches into the store on purpose: variants are schema changes
    if name in ("off", "map"):  # no index step at the end of each commit (the writer's group_end)
        history.writes.writer._group_end = None
    if name in ("off", "naive", "map"):
        for trigger in TRIGGERS[:3] if name != "map" else TRIGGERS[1:3]:
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")  # the index step left the triggers in migration 5
    if name == "off":
        conn.execute(f"DROP TRIGGER {TRIGGERS[3]}")
    if name == "naive":
        conn.execute("CREATE TRIGGER naive AFTER INSERT ON history BEGIN "  # schema 6: the line's number is its seq
                     "INSERT INTO search_fts (rowid, text, nick, room) VALUES (new.seq, new.text, new.nick, new.room); "
                     "UPDATE history_meta SET value = new.seq WHERE key = 'search_indexed'; END")
    if name in ("column", "nopos"):
        detail = "column" if name == "column" else "none"
        conn.execute("DROP TABLE search_fts")
        conn.execute(f"CREATE VIRTUAL TABLE search_fts USING fts5(text, nick, room, content='', columnsize=0, "
                     f"detail={detail}, tokenize='unicode61 remove_diacritics 2')")


def store_lines(folder: Path, name: str, lines: list[tuple[str, str, str]], batch: int) -> float:
    """CPU seconds to store *lines* in commits of *batch* lines, in a fresh store of variant *name*."""
    path = folder / f"{name}.sqlite3"
    history = History(path, clock=lambda: T0)
    variant(history, name)
    t = time.process_time()
    for i in range(0, len(lines), batch):
        for room, nick, text in lines[i:i + batch]:
            history.append(room, "msg", nick, text)
        history.commit()
    spent = time.process_time() - t
    history.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return spent


def commit_both(lines: list[tuple[str, str, str]], batch: int, fts: bool, folder: Path) -> float:
    """CPU seconds of the history's own statements per commit (and the FTS5 executemany, *fts*) on a store of
    the schema before search plus the FTS5 table."""
    path = folder / "both.sqlite3"
    conn = open_store(path)
    migrate(conn, MIGRATIONS[:3])
    conn.execute("CREATE VIRTUAL TABLE search_fts USING fts5(text, nick, room, content='', columnsize=0, "
                 "tokenize='unicode61 remove_diacritics 2')")
    ids: dict[str, int] = {}
    seq = 0
    t = time.process_time()
    for i in range(0, len(lines), batch):
        rows = []
        for room, nick, text in lines[i:i + batch]:
            ids[room] = ids.get(room, 0) + 1
            rows.append((room, ids[room], T0, "msg", nick, None, text))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO history_seq (room, last_id) VALUES (?, ?) ON CONFLICT (room) DO UPDATE "
                         "SET last_id = max(last_id, excluded.last_id)", {r[0]: r[1] for r in rows}.items())
        if fts:
            conn.executemany("INSERT INTO search_fts (rowid, text, nick, room) VALUES (?, ?, ?, ?)",
                             [(seq + k + 1, r[6], r[4], r[0]) for k, r in enumerate(rows)])
            seq += len(rows)
        conn.execute("COMMIT")
    spent = time.process_time() - t
    close_store(conn)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return spent


def prune_steps(path: Path, index: bool, steps: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of *steps* consecutive retention steps of the server (``PRUNE_ROWS`` lines
    each) on a copy of the store at *path*."""
    copy = path.with_name(f"prune-{index}.sqlite3")
    shutil.copyfile(path, copy)
    history = History(copy)
    if not index:
        for trigger in TRIGGERS:
            history._conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    wall, cpu = [], []
    for step in range(1, steps + 1):
        keep = max(0, history.latest_id("#r00") - step * PRUNE_ROWS)
        t, c = time.perf_counter(), time.process_time()
        history.prune(keep, None, max_rows=PRUNE_ROWS)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    history.close()
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--samples", type=int, default=300, help="rounds of queries per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write-lines", type=int, default=20_000, help="lines stored per write measurement")
    parser.add_argument("--batches", default="1,20,200", help="lines per commit, comma-separated")
    parser.add_argument("--variants", default="off,on,map,naive,column,nopos")
    parser.add_argument("--dir", type=Path, default=None, help="an empty folder for the stores (default: a temp one)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    names = [f"#r{i:02d}" for i in range(args.rooms)]
    variants = args.variants.split(",")
    if "off" not in variants:
        parser.error("--variants needs off (the baseline)")
    corpus = Corpus(random.Random(args.seed))
    print(f"command: `{shlex.join(['python', 'bench/search.py', *sys.argv[1:]])}`")
    print(f"machine: Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        folder = args.dir or Path(tmp)
        path = folder / "rooms.sqlite3"
        if path.exists():
            parser.error(f"{path} exists: pass an empty --dir")
        written, indexed = fill(path, args.lines, names, corpus)
        size = sum(p.stat().st_size for p in folder.glob("rooms.sqlite3*"))
        print(f"fill: {args.lines:,} lines in {args.rooms} rooms written in {written:.1f} s; first open (migration 4 "
              f"indexes them) {indexed:.1f} s; file {size / 2**20:.0f} MiB")
        history = History(path)
        rooms = Rooms(history, default_room=names[0])
        per_run = []
        for run in range(1, args.runs + 1):
            result = query_run(rooms, corpus, names, args.samples)
            per_run.append(result)
            print(f"run {run}: " + ", ".join(f"{k} p50 {pct(v, 0.5):.2f} p99 {pct(v, 0.99):.2f} max {max(v):.1f}"
                                             for k, v in result.items()) + " (ms)")
        history.close()
        print("\n| query (one page of 20 hits) | p50 ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: |")
        for kind in per_run[0]:
            cols = [statistics.median(f(r[kind]) for r in per_run) for f in
                    (lambda v: pct(v, 0.5), lambda v: pct(v, 0.99), max)]
            print(f"| {kind} | {cols[0]:.2f} | {cols[1]:.2f} | {cols[2]:.1f} |")

        lines = [(names[corpus.rng.randrange(len(names))], NICKS[corpus.rng.randrange(50)], corpus.line())
                 for _ in range(args.write_lines)]
        print(f"\nwrite cost: {args.write_lines:,} lines per measurement, CPU microseconds per line "
              f"(ratio to off), medians of {args.runs} runs")
        print("\n| lines per commit | " + " | ".join(variants) + " |\n| ---: |" + " ---: |" * len(variants))
        for batch in (int(b) for b in args.batches.split(",")):
            spent: dict[str, list[float]] = {v: [] for v in variants}
            for run in range(args.runs):
                order = variants if run % 2 == 0 else variants[::-1]
                for name in order:
                    spent[name].append(store_lines(folder, name, lines, batch))
            base = statistics.median(spent["off"])
            cells = [f"{statistics.median(spent[v]) / len(lines) * 1e6:.1f} ({statistics.median(spent[v]) / base:.2f}x)"
                     for v in variants]
            print(f"| {batch} | " + " | ".join(cells) + " |")
        print("\nthe commit writing both (history statements alone / with the FTS5 executemany), CPU us per line:")
        for batch in (int(b) for b in args.batches.split(",")):
            raw = statistics.median(commit_both(lines, batch, False, folder) for _ in range(args.runs))
            both = statistics.median(commit_both(lines, batch, True, folder) for _ in range(args.runs))
            print(f"- {batch} lines per commit: {raw / len(lines) * 1e6:.1f} / {both / len(lines) * 1e6:.1f} "
                  f"({both / raw:.2f}x)")

        small = folder / "small.sqlite3"
        fill(small, 100_000, names[:5], corpus)
        steps = {index: prune_steps(small, index, 10) for index in (False, True)}
        print(f"\nretention step ({PRUNE_ROWS} lines deleted), median of 10 steps: without the index "
              f"{steps[False][0] * 1000:.1f} ms ({steps[False][1] * 1000:.1f} ms CPU), with it "
              f"{steps[True][0] * 1000:.1f} ms ({steps[True][1] * 1000:.1f} ms CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
