"""Per-line CPU of the fan-out's hot path, part by part, in-process (no sockets, no load generator).

Usage::

    python bench/hotpath.py [--members 50] [--speakers 20] [--passes 400] [--repeat 5]

What ``bench/fanout.py`` measures as one figure (server CPU per delivery), split into the parts a
profiler finds under its N=50 load, each timed with ``time.process_time`` (every thread of this
process), best of ``--repeat``:

* **history**: ``History.append`` + ``History.commit`` per line, committed in batches of 5, 20, 100
  and 500 lines (a loop pass's lines are one batch), on a fresh ``rooms.sqlite3``; and the same with
  the search index's insert triggers dropped from a scratch copy of the schema (chatroom never runs
  without them: this only shows what the index costs a line);
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
#: The triggers that put each stored line into the search index (chatroom/model/history_sql.py, migration 4).
INDEX_TRIGGERS = ("search_line", "search_index_new", "search_index_more")


def best(fn: Callable[[], float], repeat: int) -> float:
    """The smallest of *repeat* results of *fn* (each: CPU seconds it measured itself)."""
    return min(fn() for _ in range(repeat))


def history_cost(batch: int, lines: int, index: bool, repeat: int) -> float:
    """Microseconds of CPU per line for append + commit in batches of *batch* (*index*: search index kept)."""
    from chatroom.model.history import History

    def run() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "rooms.sqlite3"
            History(path).close()  # the schema, every migration applied
            if not index:
                with sqlite3.connect(path) as db:
                    for name in INDEX_TRIGGERS:
                        db.execute(f"DROP TRIGGER {name}")
                db.close()
            history = History(path)
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
    args = ap.parse_args()
    rows: list[tuple[str, float]] = []
    for batch in (5, 20, 100, 500):
        rows.append((f"history append+commit, {batch} lines a commit", history_cost(batch, 20_000, True, 3)))
        rows.append((f"  the same without the search index", history_cost(batch, 20_000, False, 3)))
    rows.append((f"loop: on_line + fan-out, {args.members} members, {args.speakers} lines a pass",
                 loop_cost(args.members, args.speakers, args.passes, args.repeat)))
    parse, render = irc_costs(args.repeat)
    rows += [("irc: IrcParser, per PRIVMSG line", parse), ("irc: render_event, per chat line", render)]
    print("| part | us of CPU per line |\n|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value:.2f} |")


if __name__ == "__main__":
    main()
