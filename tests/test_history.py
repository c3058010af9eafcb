"""chatroom.model.history: per-room ids, buffered appends, queries, crash safety,
retention, room records. Fast: a tmp_path database each, a fake clock, no sleeps."""

from __future__ import annotations

import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatroom.model.history import KINDS, MAX_FETCH, MAX_UNSAVED, Entry, History, RoomRecord

DEADLINE = 10.0  # seconds any wait on a child process may take
DAY = 86400.0


class FakeClock:
    """A settable clock: Unix seconds, starting at 1,000,000,000."""

    def __init__(self, now: float = 1_000_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "rooms.sqlite3"


@pytest.fixture
def hist(db: Path, clock: FakeClock):
    h = History(db, clock=clock)
    yield h
    h.close()


def ids(entries: list[Entry]) -> list[int]:
    return [e.id for e in entries]


def fill(h: History, room: str, count: int, clock: FakeClock | None = None, step: float = 0.0) -> None:
    for i in range(count):
        h.append(room, "msg", "alice", f"line {i}")
        if clock is not None:
            clock.now += step
    h.commit()


def stored_ids(db: Path, room: str) -> list[int]:
    """Ids in the file, read through a second connection (what survives this process)."""
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM history WHERE room = ? ORDER BY id", (room,))]
    finally:
        conn.close()


# -- ids and shapes --------------------------------------------------------------------


def test_append_assigns_per_room_ids_and_time(hist: History, clock: FakeClock) -> None:
    a1 = hist.append("#a", "msg", "alice", "hello", account="alice")
    clock.now += 1.5
    b1 = hist.append("#b", "me", "bob", "waves")
    a2 = hist.append("#a", "notice", "server", "bob joined")
    assert a1 == Entry("#a", 1, 1_000_000_000.0, "msg", "alice", "alice", "hello")
    assert (b1.room, b1.id, b1.ts, b1.kind, b1.account) == ("#b", 1, 1_000_000_001.5, "me", None)
    assert a2.id == 2
    assert hist.latest_id("#a") == 2 and hist.latest_id("#b") == 1 and hist.latest_id("#none") == 0
    assert hist.pending == 3
    assert hist.commit() == 3
    assert hist.pending == 0
    assert hist.commit() == 0  # nothing buffered: nothing to write
    assert hist.last("#a", 10) == [a1, a2]
    assert hist.last("#b", 10) == [b1]
    with pytest.raises(AttributeError):
        a1.id = 5  # type: ignore[misc]


def test_append_rejects_bad_kind_and_types(hist: History) -> None:
    assert KINDS == {"msg", "me", "topic", "notice"}
    with pytest.raises(ValueError):
        hist.append("#a", "shout", "alice", "x")
    with pytest.raises(TypeError):
        hist.append("#a", "msg", "alice", b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hist.append("#a", "msg", "alice", "x", account=3)  # type: ignore[arg-type]
    assert hist.pending == 0 and hist.latest_id("#a") == 0  # a refused line takes no id


def test_text_round_trips(hist: History, db: Path, clock: FakeClock) -> None:
    texts = ["", "ünïcødé 🎉", "x" * 65_000, "quote ' and \" and ; -- not sql"]
    for t in texts:
        hist.append("#a", "msg", "alice", t, account="Alice")
    hist.close()
    with History(db, clock=clock) as again:
        got = again.last("#a", 10)
    assert [e.text for e in got] == texts
    assert {e.account for e in got} == {"Alice"}


def test_ids_continue_after_restart(db: Path, clock: FakeClock) -> None:
    h = History(db, clock=clock)
    fill(h, "#a", 3)
    fill(h, "#b", 2)
    h.append("#a", "msg", "alice", "buffered at close")  # close() commits it
    h.close()
    h.close()  # a second close is harmless
    with History(db, clock=clock) as h2:
        assert h2.latest_id("#a") == 4 and h2.latest_id("#b") == 2
        assert h2.append("#a", "msg", "bob", "after restart").id == 5
        assert h2.append("#b", "msg", "bob", "after restart").id == 3
        assert h2.append("#new", "msg", "bob", "first").id == 1
    assert stored_ids(db, "#a") == [1, 2, 3, 4, 5]


def test_ids_never_reused_after_prune_and_restart(db: Path, clock: FakeClock) -> None:
    h = History(db, clock=clock)
    fill(h, "#a", 5)
    while h.prune(keep_lines=0, keep_days=None):
        pass
    assert h.last("#a", 10) == [] and h.latest_id("#a") == 5
    h.close()
    with History(db, clock=clock) as h2:
        assert h2.latest_id("#a") == 5
        assert h2.append("#a", "msg", "alice", "next").id == 6


def test_store_conventions_and_range_scans(hist: History, db: Path) -> None:
    fill(hist, "#a", 3)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
        queries = [
            "SELECT * FROM history WHERE room = '#a' ORDER BY id DESC LIMIT 20",
            "SELECT * FROM history WHERE room = '#a' AND id > 5 ORDER BY id LIMIT 50",
            "SELECT * FROM history WHERE room = '#a' AND id < 5 ORDER BY id DESC LIMIT 50",
        ]
        for q in queries:
            plan = " ".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + q))
            assert "SEARCH history USING INDEX history_line (room=?" in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # no sort: the index gives the order
    finally:
        conn.close()


# -- queries -----------------------------------------------------------------------------


def test_last_since_before_edges(hist: History) -> None:
    assert hist.last("#a", 5) == [] and hist.since("#a", 0, 5) == [] and hist.before("#a", 10, 5) == []
    fill(hist, "#a", 30)
    fill(hist, "#b", 2)
    assert ids(hist.last("#a", 1)) == [30]
    assert ids(hist.last("#a", 5)) == [26, 27, 28, 29, 30]
    assert ids(hist.last("#a", MAX_FETCH)) == list(range(1, 31))
    assert ids(hist.since("#a", 0, 3)) == [1, 2, 3]
    assert ids(hist.since("#a", 27, 50)) == [28, 29, 30]
    assert hist.since("#a", 30, 50) == [] and hist.since("#a", 99, 50) == []
    assert ids(hist.before("#a", 11, 3)) == [8, 9, 10]
    assert ids(hist.before("#a", 3, 50)) == [1, 2]
    assert hist.before("#a", 1, 50) == [] and hist.before("#a", 0, 50) == []
    assert ids(hist.before("#a", 10**9, 2)) == [29, 30]
    assert ids(hist.before("#a", 2**63 - 1, 1)) == [30] and hist.since("#a", 2**63 - 1, 1) == []
    assert ids(hist.last("#b", 50)) == [1, 2]  # rooms do not mix
    assert all(e.room == "#a" for e in hist.since("#a", 0, 50))


@pytest.mark.parametrize("bad", [0, -1, MAX_FETCH + 1, True, 1.5, "3", None])
def test_bad_counts_raise_value_error(hist: History, bad: object) -> None:
    with pytest.raises(ValueError):
        hist.last("#a", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        hist.since("#a", 0, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        hist.before("#a", 10, bad)  # type: ignore[arg-type]


def test_bad_ids_raise_value_error(hist: History) -> None:
    for bad in (-1, 1.0, None, 2**63, 10**30):
        with pytest.raises(ValueError):
            hist.since("#a", bad, 5)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            hist.before("#a", bad, 5)  # type: ignore[arg-type]


def test_buffered_entries_are_visible_to_queries(hist: History, db: Path) -> None:
    fill(hist, "#a", 5)  # committed: 1..5
    for i in range(3):
        hist.append("#a", "msg", "bob", f"buffered {i}")  # buffered: 6..8
        hist.append("#b", "msg", "bob", "other room")
    assert hist.pending == 6
    assert stored_ids(db, "#a") == [1, 2, 3, 4, 5]  # not written yet
    assert ids(hist.last("#a", 2)) == [7, 8]  # from the buffer only
    assert ids(hist.last("#a", 5)) == [4, 5, 6, 7, 8]  # across the boundary
    assert ids(hist.since("#a", 3, 4)) == [4, 5, 6, 7]
    assert ids(hist.since("#a", 6, 50)) == [7, 8]
    assert ids(hist.before("#a", 8, 3)) == [5, 6, 7]
    assert ids(hist.before("#a", 8, 1)) == [7]
    assert ids(hist.before("#a", 6, 2)) == [4, 5]
    assert hist.latest_id("#a") == 8
    before = hist.last("#a", 50)
    assert hist.commit() == 6
    assert hist.last("#a", 50) == before  # the same entries once committed
    assert stored_ids(db, "#a") == list(range(1, 9))


# -- crash safety ------------------------------------------------------------------------

CHILD = r"""
import sys
from pathlib import Path
from chatroom.model.history import History

h = History(Path(sys.argv[1]))
for n in range(1, 100_001):        # bounded; the parent kills it long before
    for i in range(5):              # a pass of 5 lines, one commit
        h.append("#a", "msg", "alice", f"pass {n} line {i}")
    h.append("#b", "me", "bob", f"pass {n}")
    h.commit()
    print(h.latest_id("#a"), flush=True)
    if n == 20:                     # buffer a pass that is never committed, then wait to be killed
        h.append("#a", "msg", "alice", "never committed")
        print("buffered", flush=True)
        sys.stdin.readline()
"""


def read_until(proc: subprocess.Popen[bytes], want: bytes, deadline: float) -> list[bytes]:
    """Lines the child prints until one equals *want* (bounded by *deadline*, monotonic s)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    data = b""
    try:
        while time.monotonic() < deadline:
            if sel.select(max(0.0, deadline - time.monotonic())):
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
                lines = data.split(b"\n")
                if want in lines[:-1]:
                    return lines[:-1]
    finally:
        sel.close()
    raise AssertionError(f"child did not print {want!r} in time: {data[-200:]!r}")


def test_sigkill_loses_no_committed_line(db: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        lines = read_until(proc, b"buffered", time.monotonic() + DEADLINE)
        committed = [int(x) for x in lines if x.isdigit()]
        assert committed == [5 * n for n in range(1, 21)]  # every commit was reported
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=DEADLINE) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=DEADLINE)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            assert stream is not None
            stream.close()
    with History(db) as h:
        assert ids(h.since("#a", 0, MAX_FETCH)) == list(range(1, 101))  # every committed line
        assert h.last("#a", 1)[0].text == "pass 20 line 4"  # the buffered line is gone
        assert ids(h.since("#b", 0, MAX_FETCH)) == list(range(1, 21))
        # its id (101) may have been seen: it is never given again (the saved counter runs ahead)
        assert h.append("#a", "msg", "alice", "after the crash").id == 100 + MAX_UNSAVED + 1


def test_sigkill_while_committing_keeps_whole_passes(db: Path) -> None:
    """Killed at an arbitrary moment of a busy commit loop: every reported commit is
    there, and the file holds whole passes only (a commit is one transaction)."""
    script = CHILD.replace("if n == 20:", "if False:")
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        lines = read_until(proc, b"1000", time.monotonic() + DEADLINE)  # 200 passes reported
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=DEADLINE) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=DEADLINE)
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            stream.close()
    seen = max(int(x) for x in lines if x.isdigit())
    stored = stored_ids(db, "#a")
    assert len(stored) >= seen and len(stored) % 5 == 0 and stored == list(range(1, len(stored) + 1))
    assert len(stored_ids(db, "#b")) == len(stored) // 5
    with History(db) as h:  # after a crash the counters continue above every id handed out
        assert h.latest_id("#a") == len(stored) + MAX_UNSAVED
        assert h.latest_id("#b") == len(stored) // 5 + MAX_UNSAVED


# -- retention ---------------------------------------------------------------------------


def count_rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM history").fetchone()[0]
    finally:
        conn.close()


def test_prune_by_lines_in_bounded_steps(hist: History, db: Path) -> None:
    fill(hist, "#a", 50)
    fill(hist, "#b", 12)
    fill(hist, "#c", 3)
    hist.append("#a", "msg", "alice", "buffered")  # #a: 51 lines, one not committed
    total = count_rows(db)
    steps = 0
    more = True
    while more:
        steps += 1
        assert steps <= 20  # bounded
        more = hist.prune(keep_lines=10, keep_days=None, max_rows=7)
        now = count_rows(db)
        assert total - now <= 7  # never more than max_rows per call
        total = now
    assert steps >= (41 + 2) // 7
    assert ids(hist.last("#a", 50)) == list(range(42, 52))  # 10 newest, the buffered one counted
    assert ids(hist.last("#b", 50)) == list(range(3, 13))
    assert ids(hist.last("#c", 50)) == [1, 2, 3]
    assert hist.prune(keep_lines=10, keep_days=None) is False  # nothing left
    assert hist.latest_id("#a") == 51 and hist.append("#a", "msg", "x", "y").id == 52


def test_prune_by_days_with_fake_clock(hist: History, clock: FakeClock) -> None:
    fill(hist, "#a", 10, clock, step=DAY / 2)  # ts = t0, t0 + 0.5 d, ... t0 + 4.5 d
    t0 = 1_000_000_000.0
    clock.now = t0 + 5 * DAY
    assert hist.prune(keep_lines=None, keep_days=2.0) is False  # one step was enough
    assert [e.ts for e in hist.last("#a", 50)] == [t0 + k * DAY / 2 for k in range(6, 10)]
    clock.now += 100 * DAY
    assert hist.prune(keep_lines=None, keep_days=2.0) is False
    assert hist.last("#a", 50) == [] and hist.latest_id("#a") == 10


def test_prune_by_lines_and_days_together(hist: History, clock: FakeClock) -> None:
    fill(hist, "#old", 20, clock, step=3600.0)  # 20 hours of lines
    fill(hist, "#busy", 100)  # all at the current hour
    clock.now += 3600.0
    while hist.prune(keep_lines=30, keep_days=0.5, max_rows=1000):
        pass
    assert ids(hist.last("#old", 50)) == list(range(10, 21))  # ts >= now - 12 h only (days win)
    assert ids(hist.last("#busy", 500)) == list(range(71, 101))  # 30 lines (lines win)


def test_prune_visits_many_rooms_in_bounded_steps(hist: History) -> None:
    for r in range(30):
        fill(hist, f"#r{r:02d}", 3)
    calls = 0
    while hist.prune(keep_lines=1, keep_days=None, max_rows=4):
        calls += 1
        assert calls <= 60  # bounded
    assert calls >= 10  # 60 rows to delete, 4 a call
    assert all(ids(hist.last(f"#r{r:02d}", 5)) == [3] for r in range(30))


def test_prune_arguments(hist: History) -> None:
    fill(hist, "#a", 3)
    assert hist.prune(None, None) is False
    assert ids(hist.last("#a", 5)) == [1, 2, 3]
    for bad in ({"keep_lines": -1, "keep_days": None}, {"keep_lines": None, "keep_days": -1.0},
                {"keep_lines": 1, "keep_days": None, "max_rows": 0}):
        with pytest.raises(ValueError):
            hist.prune(**bad)  # type: ignore[arg-type]


# -- room records ------------------------------------------------------------------------


def test_room_records_persist_with_topic(db: Path, clock: FakeClock) -> None:
    h = History(db, clock=clock)
    lobby = h.records.ensure_room("#lobby")
    assert lobby == RoomRecord("#lobby", "", "", 0.0, 1_000_000_000.0)
    h.records.ensure_room("#empty")
    clock.now += 60
    topic = h.records.set_topic("#design", "Layouts", "alice")  # creates the record too
    assert topic == RoomRecord("#design", "Layouts", "alice", 1_000_000_060.0, 1_000_000_060.0)
    clock.now += 60
    h.records.set_topic("#lobby", "Welcome", "bob", at=1234.5)
    assert h.records.ensure_room("#lobby").topic == "Welcome"  # ensure_room never overwrites
    assert h.records.room("#nowhere") is None
    assert [r.name for r in h.records.rooms()] == ["#design", "#empty", "#lobby"]  # visible before commit
    h.commit()
    h.records.save_room("#later", topic="t", topic_by="c", topic_at=5.0)  # uncommitted: close() writes it
    h.close()
    with History(db, clock=clock) as h2:
        assert h2.records.rooms() == [
            RoomRecord("#design", "Layouts", "alice", 1_000_000_060.0, 1_000_000_060.0),
            RoomRecord("#empty", "", "", 0.0, 1_000_000_000.0),
            RoomRecord("#later", "t", "c", 5.0, 1_000_000_120.0),
            RoomRecord("#lobby", "Welcome", "bob", 1234.5, 1_000_000_000.0),
        ]
        assert h2.records.set_topic("#lobby", "", "carol").created == 1_000_000_000.0  # created is kept
        assert h2.records.save_room("#empty", created=7.0).created == 7.0
    with History(db, clock=clock) as h3:
        assert h3.room("#lobby") == RoomRecord("#lobby", "", "carol", 1_000_000_120.0, 1_000_000_000.0)
        assert h3.room("#empty") == RoomRecord("#empty", created=7.0)


def test_room_records_and_lines_commit_together(hist: History, db: Path) -> None:
    hist.records.set_topic("#a", "news", "alice")
    hist.append("#a", "topic", "alice", "news")
    assert hist.commit() == 1  # the record is written by the same commit
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT name, topic FROM rooms").fetchall() == [("#a", "news")]
    finally:
        conn.close()


def test_counters_run_a_reserve_ahead_only_for_ids_this_history_gives(db: Path, tmp_path: Path, clock: FakeClock) -> None:
    """Ids handed out here are saved MAX_UNSAVED ahead (a crash never lets them be given twice); ids given
    elsewhere (scale-out: Redis, History.put) are saved as they are, so a node restarted after a crash resumes
    its catch-up right after its last stored line instead of MAX_UNSAVED lines later."""
    def saved(path: Path) -> int:
        conn = sqlite3.connect(path)
        try:
            return int(conn.execute("SELECT last_id FROM history_seq WHERE room = '#a'").fetchone()[0])
        finally:
            conn.close()

    own, fed = History(db, clock=clock), History(tmp_path / "fed.sqlite3", clock=clock)
    try:
        own.append("#a", "msg", "alice", "numbered here")
        own.commit()
        fed.put(Entry("#a", 7, clock(), "msg", "bob", None, "numbered by redis"))
        fed.commit()
        assert saved(db) == 1 + MAX_UNSAVED  # what a kill -9 now leaves
        assert saved(tmp_path / "fed.sqlite3") == 7
    finally:
        own.close()
        fed.close()
    with History(tmp_path / "fed.sqlite3", clock=clock) as again:
        assert again.latest_id("#a") == 7
        assert again.since("#a", 0, 5)[0].text == "numbered by redis"
