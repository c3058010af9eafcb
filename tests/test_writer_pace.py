"""The writer's pacing (chatroom.model.writer ``pace``, chatroom.model.pending ``COMMIT_EVERY``): under load
the history's batches of chat lines wait for the pace so several loop passes share a commit, but nothing
somebody waits for is delayed by it: an acknowledgement (``when_saved``, a job submitted without ``paced``),
a blocking ``wait()``, a close, memory filling up, and an idle writer's first job all commit at once.

No sockets; the writer's thread is real. The pace is made long (30 s) so that "at once" is unmistakable
within the tests' bounded waits, and "it waits" is checked over a short window."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from test_writer import insert, rows, table  # noqa: F401 - the fixture

from chatroom.model.history import Entry, History
from chatroom.model.pending import PendingWrites
from chatroom.model.writer import Writer

DEADLINE = 10.0
PACE = 30.0  # far longer than any wait below: a commit that comes within DEADLINE did not wait for it
GLANCE = 0.3  # how long a test watches a paced job not being committed


def now_post(fn: Callable[..., Any], args: tuple[Any, ...], owner: str) -> None:
    """A ``post`` that runs the callback on the writer's thread (these tests only set events there)."""
    fn(*args)


def test_paced_jobs_wait_for_the_pace_and_an_unpaced_one_takes_them_along_at_once(table: Path) -> None:
    writer = Writer(table, post=now_post, pace=PACE)
    try:
        first = writer.submit(insert(1), paced=True)
        assert first.done.wait(DEADLINE)  # an idle writer commits a lone paced job at once
        paced = [writer.submit(insert(n), paced=True) for n in (2, 3, 4)]
        assert not paced[-1].done.wait(GLANCE)  # the pace holds them: the next commit may start in 30 s
        assert rows(table) == [1]
        acked = threading.Event()
        ack = writer.submit(insert(5), lambda result, error: acked.set())  # somebody waits for this one
        assert acked.wait(DEADLINE) and ack.done.is_set()
        assert all(job.done.is_set() for job in paced)  # committed with it, in order, in one group
        assert rows(table) == [1, 2, 3, 4, 5]
        assert writer.commits == 2
    finally:
        writer.close()


def test_many_paced_jobs_share_a_commit(table: Path) -> None:
    writer = Writer(table, post=now_post, pace=1.0)
    try:
        jobs = [writer.submit(insert(n), paced=True) for n in range(1, 51)]
        assert jobs[-1].done.wait(DEADLINE)
        assert rows(table) == list(range(1, 51))
        assert writer.commits <= 3  # the first at once, the rest after the pace (not one commit each)
    finally:
        writer.close()


def test_a_blocking_wait_and_a_close_cut_the_pace_short(table: Path) -> None:
    writer = Writer(table, post=now_post, pace=PACE)
    try:
        assert writer.submit(insert(1), paced=True).done.wait(DEADLINE)
        writer.submit(insert(2), paced=True)
        assert writer.wait(DEADLINE) is True  # start-up, shutdown, tools: no pacing while someone blocks
        assert rows(table) == [1, 2]
        writer.submit(insert(3), paced=True)
    finally:
        assert writer.close(DEADLINE) == 0
    assert rows(table) == [1, 2, 3]


def _entry(n: int) -> Entry:
    return Entry("#a", n, 1.8e9 + n, "msg", "alice", None, f"line {n}")


def test_an_acknowledgement_is_not_delayed_by_the_pace(tmp_path: Path) -> None:
    """PendingWrites as the server uses it: chat batches are paced; ``when_saved`` (an OK held by the server)
    commits at once, with every line said before it, and wakes the loop."""
    path = tmp_path / "rooms.sqlite3"
    History(path).close()  # the schema
    woken = threading.Event()
    writes = PendingWrites(path, wake=woken.set, pace=PACE)
    try:
        writes.entries.append(_entry(1))
        writes.submit([], [])
        writes.writer.submit(lambda conn: None).done.wait(DEADLINE)  # the idle writer's first commit, at once
        writes.collect()
        assert writes.entries == []
        writes.entries += [_entry(2), _entry(3)]
        writes.submit([], [])  # paced: nobody waits for chat lines
        saved = threading.Event()
        woken.clear()
        writes.when_saved(saved.set)  # an OK that waits for the commit
        assert woken.wait(DEADLINE)  # long before the 30 s pace
        writes.collect()
        assert saved.is_set() and writes.entries == []
    finally:
        writes.close(DEADLINE, {"#a": 3})


def test_a_batch_past_the_memory_mark_is_not_paced(tmp_path: Path) -> None:
    path = tmp_path / "rooms.sqlite3"
    History(path).close()
    woken = threading.Event()
    writes = PendingWrites(path, wake=woken.set, pace=PACE, max_unsaved=80)  # the wake mark: 10 entries
    try:
        writes.entries.append(_entry(1))
        writes.submit([], [])
        writes.writer.submit(lambda conn: None).done.wait(DEADLINE)
        writes.collect()
        writes.entries += [_entry(n) for n in range(2, 14)]  # 12 entries wait: past the mark
        woken.clear()
        writes.submit([], [])
        assert woken.wait(DEADLINE)  # committed at once, and the loop is told
        writes.collect()
        assert writes.entries == []
    finally:
        writes.close(DEADLINE, {"#a": 13})
