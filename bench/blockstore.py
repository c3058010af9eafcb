"""What storing the history in blocks would save per line: chatroom's per-line rows against one row per commit.

Usage::

    python bench/blockstore.py [--lines 40000] [--batches 100,800,2000] [--repeat 5]

Issue 17's N=50 fan-out target leaves the history about 0.2 us of CPU per line (docs/benchmarks.md, "Where the
small-rooms and IRC fan-out targets stand"). This measures, in-process with ``time.process_time`` (every thread
of this process), best of ``--repeat``, microseconds of CPU per line for two storage shapes, on fresh files:

* **rows** (what chatroom does): ``History.append`` + ``History.commit`` per batch, the real store: its writer
  thread, one ``history`` row and one FTS5 row per line (schema 6, ``chatroom.model.history_sql``);
* **blocks** (not built, a sketch to price it): the batch's lines kept as tuples, then in one transaction one
  row per batch (ids, nicks, times and texts joined into one blob) and one FTS5 row per batch (its texts, nicks
  and room), on a file with the store's pragmas (WAL, ``synchronous=NORMAL``) and the same FTS5 options. No
  writer thread and no hand-over between threads: it is priced at its cheapest.

Each line carries a unique token, as the fan-out bench's lines do (``K07S00001234T...``: client, sequence),
so every line adds a term to the index. One batch is one commit (about 800 lines a commit at N=50 under
``bench/fanout.py``'s load, with the writer's 30 ms pace).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

BLOCKS_SCHEMA = """
CREATE TABLE blocks (seq INTEGER PRIMARY KEY, room TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,
                     body BLOB NOT NULL);
CREATE UNIQUE INDEX blocks_first ON blocks (room, first);
CREATE VIRTUAL TABLE blocks_fts USING fts5(
    text, nick, room, content='', columnsize=0, tokenize='unicode61 remove_diacritics 2'
);
"""


def text(n: int) -> str:
    """Line *n*'s text: 59 characters with a unique first token, as ``bench/fanout.py`` sends."""
    return f"K{n % 50:02d}S{n:08d}T1234567890123456789 " + "x" * 26


def rows(batch: int, lines: int) -> float:
    """CPU seconds per line through chatroom's History (append, commit per *batch*)."""
    from chatroom.model.history import History

    texts = [text(n) for n in range(lines)]
    with tempfile.TemporaryDirectory() as tmp:
        history = History(Path(tmp) / "rooms.sqlite3")
        try:
            start = time.process_time()
            for first in range(0, lines - lines % batch, batch):
                for n in range(first, first + batch):
                    history.append("#bench", "msg", f"s{n % 50:02d}", texts[n])
                history.commit()
            return (time.process_time() - start) / (lines - lines % batch)
        finally:
            history.close()


def blocks(batch: int, lines: int, index: bool = True) -> float:
    """CPU seconds per line storing each *batch* as one row and one FTS5 row (see the module docstring); without
    the FTS5 row if not *index* (to show what the index costs: chatroom never runs without it)."""
    texts = [text(n) for n in range(lines)]
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "rooms.sqlite3", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(BLOCKS_SCHEMA)
        try:
            start = time.process_time()
            waiting: list[tuple[int, float, str, str]] = []
            for first in range(0, lines - lines % batch, batch):
                for n in range(first, first + batch):
                    waiting.append((n + 1, time.time(), f"s{n % 50:02d}", texts[n]))
                body = "\x1e".join(f"{i}\x1f{ts!r}\x1f{nick}\x1f{line}" for i, ts, nick, line in waiting)
                conn.execute("BEGIN")
                seq = conn.execute("INSERT INTO blocks (room, first, last, body) VALUES (?, ?, ?, ?)",
                                   ("#bench", waiting[0][0], waiting[-1][0], body.encode())).lastrowid
                if index:
                    conn.execute("INSERT INTO blocks_fts (rowid, text, nick, room) VALUES (?, ?, ?, ?)",
                                 (seq, "\n".join(w[3] for w in waiting), " ".join({w[2] for w in waiting}), "#bench"))
                conn.execute("COMMIT")
                waiting.clear()
            return (time.process_time() - start) / (lines - lines % batch)
        finally:
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=40_000, help="lines per measurement")
    parser.add_argument("--batches", default="100,800,2000", help="lines per commit, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="measurements per figure (median and best shown)")
    args = parser.parse_args()
    print(f"{'lines a commit':>14} {'rows us/line':>22} {'blocks us/line':>22} {'blocks, no index':>22}"
          f"   (median / best of {args.repeat})")
    for batch in (int(b) for b in args.batches.split(",")):
        got: dict[str, list[float]] = {"rows": [], "blocks": [], "no index": []}
        for _ in range(args.repeat):  # alternated, so a change in the machine's load touches both alike
            got["rows"].append(rows(batch, args.lines) * 1e6)
            got["blocks"].append(blocks(batch, args.lines) * 1e6)
            got["no index"].append(blocks(batch, args.lines, index=False) * 1e6)
        cells = [f"{statistics.median(v):10.2f} / {min(v):6.2f}" for v in got.values()]
        print(f"{batch:>14} {cells[0]:>22} {cells[1]:>22} {cells[2]:>22}")


if __name__ == "__main__":
    main()
