"""Per-line CPU of the fan-out's hot path, part by part, in-process (no sockets, no load generator).

Usage::

    python bench/hotpath.py [--members 50] [--speakers 20] [--passes 400] [--repeat 5]
                            [--parts history,loop,irc] [--batches 5,20,100,500,2000]

What ``bench/fanout.py`` measures as one figure (server CPU per delivery), split into the parts a
profiler finds under its N=50 load, each timed with ``time.process_time`` (every thread of this
process), best of ``--repeat``:

* **history**: ``History.append`` + ``History.commit`` per line (the lines handed to the history's
  writer thread as one job, committed there in one transaction with their search index step, the
  caller waiting for it), in batches of ``--batches`` lines (one batch is one commit: in the server a
  commit takes every loop pass's lines that waited), on a fresh ``rooms.sqlite3``; and the same with
  the search index left out (the writer's index step replaced by nothing and, on a schema before
  migration 6, the per-line ``search_line`` trigger dropped from the scratch file: chatroom never runs
  without the index, this only shows what it costs a line);
* **loop**: ``Server.on_line`` for ``--speakers`` lines and one ``Hub.flush`` per pass, in a room of
  ``--members`` members of the test kit's server (``chatroom.testing``: the real dispatcher, hooks,
  flood bucket, history append and fan-out); queued output is dropped instead of sent, the history is
  committed outside the timing; per line in;
* **irc**: ``IrcParser`` per ``PRIVMSG #bench :text`` line (fed 20 lines at a time) and
  ``render_event`` per chat line (the IRC fan-out's encoding, once per line and tag variant).

Lines are the fan-out bench's: 59 characters of chat text. The syscalls (``recv``, ``sendmsg``,
``epoll``) are not here: ``bench/fanout.py`` with a sampling profiler shows them (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TEXT = "K01S00000001T1234567890123456789 " + "x" * 26  # the fan-out bench's 59 characters
#: The per-line trigger of migrations 4 and 5 that numbered each stored line for the search index (none since 6).
INDEX_TRIGGERS = ("search_line",)


def best(fn: Callable[[], float], repeat: int) -> float:
    """The smallest of *repeat* results of *fn* (each: CPU seconds it measured itself)."""
    return min(fn() for _ in range(repeat))


def history_cost(batch: int, lines: int, index: bool, repeat: int) -> float:
    """Microseconds of CPU per line for append + commit in batches of *batch* (*index*: search index kept)."""
    from chatroom.model import pending
    from chatroom.model.history import History

    def run() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "rooms.sqlite3"
            History(path).close()  # the schema, every migration applied
            step = pending.index_new
            if not index:
                db = sqlite3.connect(path)
                for name in INDEX_TRIGGERS:
                    db.execute(f"DROP TRIGGER IF EXISTS {name}")
                db.commit()
                db.close()
                pending.index_new = lambda conn: None  # the writer's index step, once per commit: nothing
            try:
                history = History(path)
            finally:
                pending.index_new = step
            try:
                start = time.process_time()
                for _ in range(lines // batch):
                    for j in range(batch):
                        history.append("#bench", "msg", f"s{j % 20:02d}", TEXT)
                    history.commit()
                return (time.process_time() - start) / (lines // batch * batch)
            finally:
                history.close()

    return best(run, repeat) * 1e6


def loop_cost(members: int, speakers: int, passes: int, repeat: int) -> float:
    """Microseconds of CPU per line in for on_line + fan-out (see the module docstring)."""
    from chatroom.testing import InProcessRoom

    with tempfile.TemporaryDirectory() as tmp:
        room = InProcessRoom(data_dir=Path(tmp), history_on_join=0)
        try:
            for i in range(members):
                room.join(f"m{i:03d}")
            server = room.server
            talkers = [server.hub.find(f"m{i:03d}") for i in range(speakers)]
            on_line, flush, everyone = server.on_line, server.hub.flush, list(server.hub.members.values())

            def run() -> float:
                spent = 0.0
                for n in range(passes):
                    start = time.process_time()
                    for member in talkers:
                        on_line(member, TEXT)
                    flush()
                    for member in everyone:  # what a send would take off the queues
                        member.out.clear()
                        member.dirty = False
                    server.loop.dirty.clear()
                    spent += time.process_time() - start
                    if n % 50 == 49:
                        server.history.commit()
                return spent / (passes * speakers)

            return best(run, repeat) * 1e6
        finally:
            room.close()


def irc_costs(repeat: int) -> tuple[float, float]:
    """Microseconds per line: the IRC parser on PRIVMSG lines, and render_event on a chat line."""
    from chatroom.model.history import Entry
    from chatroom.wire.irc import IrcParser
    from chatroom.wire.ircevents import render_event

    data = f"PRIVMSG #bench :{TEXT}\r\n".encode() * 20
    parser = IrcParser()

    def parse() -> float:
        start = time.process_time()
        for _ in range(5000):
            parser.receive_data(data)
            while parser.next_event() is not None:
                pass
        return (time.process_time() - start) / 100_000

    entry = Entry("#bench", 5, 1.8e9, "msg", "s01", None, TEXT)

    def mask(nick: str) -> str:
        return f"{nick}!{nick}@127.0.0.1"

    def render() -> float:
        start = time.process_time()
        for _ in range(100_000):
            render_event(entry, 0, mask, "chatroom")
        return (time.process_time() - start) / 100_000

    return best(parse, repeat) * 1e6, best(render, repeat) * 1e6


def main() -> None:
    """Print one Markdown table of the parts (microseconds of CPU per line)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=50)
    ap.add_argument("--speakers", type=int, default=20)
    ap.add_argument("--passes", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--parts", default="history,loop,irc", help="which parts to time (comma-separated)")
    ap.add_argument("--batches", default="5,20,100,500,2000", help="lines a commit for the history part")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    rows: list[tuple[str, float]] = []
    if "history" in parts:
        for batch in (int(b) for b in args.batches.split(",")):
            lines = max(20_000, 10 * batch)
            rows.append((f"history append+commit, {batch} lines a commit", history_cost(batch, lines, True, 3)))
            rows.append(("  the same without the search index", history_cost(batch, lines, False, 3)))
    if "loop" in parts:
        rows.append((f"loop: on_line + fan-out, {args.members} members, {args.speakers} lines a pass",
                     loop_cost(args.members, args.speakers, args.passes, args.repeat)))
    if "irc" in parts:
        parse, render = irc_costs(args.repeat)
        rows += [("irc: IrcParser, per PRIVMSG line", parse), ("irc: render_event, per chat line", render)]
    print("| part | us of CPU per line |\n|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value:.2f} |")


if __name__ == "__main__":
    main()
