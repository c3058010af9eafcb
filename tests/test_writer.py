"""chatroom.model.writer and History's write path: group commit on a writer thread, jobs that fail alone,
a failing store (a real SQLITE_FULL from ``PRAGMA max_page_count``) tried again with pauses and recovering,
queries that merge lines not committed yet, the cap on lines waiting, and acknowledgements that wait.

Every wait is bounded; the writer's thread is real, the clock of the history fake."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from chatroom.model.checkpoint import Checkpointer, no_autocheckpoint
from chatroom.model.errors import Refused
from chatroom.model.history import MAX_FETCH, History, StoreUnavailable
from chatroom.model.writer import Writer, connect_writer

DEADLINE = 10.0
FAST = (0.01, 0.02)  # pauses between failing attempts: short, the test waits on outcomes anyway


class Results:
    """A ``post`` for a Writer: callbacks queued, run by the test's thread (as the loop runs them)."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[tuple[Callable[..., Any], tuple, str]] = queue.SimpleQueue()

    def __call__(self, fn: Callable[..., Any], args: tuple, owner: str) -> None:
        self.queue.put((fn, args, owner))

    def run(self, count: int) -> list[str]:
        owners = []
        for _ in range(count):
            fn, args, owner = self.queue.get(timeout=DEADLINE)
            fn(*args)
            owners.append(owner)
        return owners


class Disk:
    """A store that can be made full: while ``full`` is set, the writer's connections may not grow the file
    (``PRAGMA max_page_count`` at its current size: SQLite answers SQLITE_FULL, "database or disk is full")."""

    def __init__(self) -> None:
        self.full = threading.Event()
        self.opened = 0

    def connect(self, path: Path) -> sqlite3.Connection:
        self.opened += 1
        conn = connect_writer(path)
        if self.full.is_set():
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count={max(pages, 1)}")
        return conn


def rows(path: Path, sql: str = "SELECT n FROM t ORDER BY n") -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(sql)]
    finally:
        conn.close()


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "w.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, pad TEXT)")
    conn.close()
    return path


def insert(n: int, pad: str = "") -> Callable[[sqlite3.Connection], int]:
    def job(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (n, pad) VALUES (?, ?)", (n, pad))
        return n
    return job


# -- the writer ------------------------------------------------------------------------------


def test_jobs_waiting_behind_a_commit_share_the_next_one(table: Path) -> None:
    results = Results()
    writer = Writer(table, post=results)
    gate = threading.Event()
    entered = threading.Event()

    def blocker(conn: sqlite3.Connection) -> None:
        entered.set()
        assert gate.wait(DEADLINE)

    try:
        writer.submit(blocker)
        assert entered.wait(DEADLINE)  # the thread is inside the first group's transaction
        for n in range(1, 51):
            writer.submit(insert(n), lambda result, error: None, owner=f"p{n}")
        gate.set()
        assert writer.wait(DEADLINE)
        assert writer.commits == 2 and writer.written == 51  # 50 jobs, one commit
        assert rows(table) == list(range(1, 51))
        assert results.run(50) == [f"p{n}" for n in range(1, 51)]  # on_done in submission order, with owners
    finally:
        writer.close()


def test_a_job_that_raises_is_rolled_back_alone(table: Path) -> None:
    results = Results()
    writer = Writer(table, post=results)
    outcomes: list[tuple[Any, Any]] = []

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (n) VALUES (100)")
        raise Refused("no thanks")

    gate = threading.Event()
    try:
        writer.submit(lambda conn: gate.wait(DEADLINE))
        for job in (insert(1), bad, insert(1), insert(2)):  # the second insert(1) breaks the primary key
            writer.submit(job, lambda result, error: outcomes.append((result, error)))
        gate.set()
        assert writer.wait(DEADLINE)
        results.run(4)
    finally:
        writer.close()
    assert rows(table) == [1, 2]  # 100 rolled back with its job; the others of the group committed
    assert outcomes[0] == (1, None) and outcomes[3] == (2, None)
    assert isinstance(outcomes[1][1], Refused) and isinstance(outcomes[2][1], sqlite3.IntegrityError)
    assert writer.commits == 1


def test_a_full_disk_is_retried_with_pauses_and_recovers_in_order(table: Path) -> None:
    disk = Disk()
    disk.full.set()
    results = Results()
    writer = Writer(table, post=results, connect=disk.connect, delays=FAST)
    answered: list[Any] = []
    try:
        for n in range(1, 4):
            writer.submit(insert(n, "x" * 20_000), lambda result, error: answered.append(result), retry=True)
        assert not writer.wait(DEADLINE)  # the attempt failed
        assert "full" in (writer.error or "") and writer.failing_since > 0
        asked = writer.submit(insert(99), lambda result, error: answered.append(error))  # wants an answer now
        assert asked.done.wait(DEADLINE) and isinstance(asked.error, sqlite3.OperationalError)
        results.run(1)
        assert isinstance(answered.pop(), sqlite3.OperationalError)  # told at once; nothing kept
        writer.submit(insert(4, "x" * 20_000), lambda result, error: answered.append(result), retry=True)
        tries = disk.opened
        deadline = time.monotonic() + DEADLINE
        while disk.opened < tries + 3 and time.monotonic() < deadline:
            time.sleep(0.005)  # a few more failing attempts, each on a fresh connection
        assert writer.pending == 4 and rows(table) == []
        disk.full.clear()
        deadline = time.monotonic() + DEADLINE
        while not writer.wait(DEADLINE):  # False while an attempt that began before the disk had room fails
            assert time.monotonic() < deadline, "never recovered"
        results.run(4)
    finally:
        writer.close()
    assert rows(table) == [1, 2, 3, 4] and answered == [1, 2, 3, 4]  # everything, in submission order
    assert writer.error is None and writer.failing_since == 0.0


def test_close_gives_up_on_a_store_that_keeps_failing(table: Path) -> None:
    disk = Disk()
    disk.full.set()
    writer = Writer(table, post=Results(), connect=disk.connect, delays=FAST)
    writer.submit(insert(1, "x" * 20_000), retry=True)
    start = time.monotonic()
    assert writer.close(timeout=0.3) == 1  # one job never written
    assert time.monotonic() - start < 5.0
    with pytest.raises(RuntimeError):
        writer.submit(insert(2))


def test_inline_writer_writes_on_the_calling_thread(table: Path) -> None:
    results = Results()
    writer = Writer(table, post=results, inline=True)
    threads: list[str] = []

    def job(conn: sqlite3.Connection) -> None:
        threads.append(threading.current_thread().name)
        insert(7)(conn)

    writer.submit(job)
    assert rows(table) == [7] and threads == [threading.current_thread().name]
    assert writer.close() == 0


# -- the history's write path -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000_000.0

    def __call__(self) -> float:
        return self.now


def collect_until(hist: History, test: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not test():
        assert time.monotonic() < deadline, "the writer never reported"
        time.sleep(0.005)
        hist.writes.collect()


def test_lines_are_readable_before_during_and_after_their_commit(tmp_path: Path) -> None:
    """Queries merge what is not committed: no line missing or there twice, whatever the writer is doing."""
    path = tmp_path / "rooms.sqlite3"
    hist = History(path, clock=Clock())
    try:
        for i in range(30):
            hist.append("#a", "msg", "alice", f"line {i}")
        hist.commit()
        for i in range(30, 60):
            hist.append("#a", "msg", "alice", f"line {i}")
        want = list(range(1, 61))
        for _ in range(3):  # before submit, in flight (committed but not collected), collected
            assert [e.id for e in hist.last("#a", 60)] == want
            assert [e.id for e in hist.since("#a", 0, MAX_FETCH)] == want
            assert [e.id for e in hist.since("#a", 45, 10)] == list(range(46, 56))
            assert [e.id for e in hist.before("#a", 61, 60)] == want
            assert [e.id for e in hist.before("#a", 35, 10)] == list(range(25, 35))
            assert [e.id for e in hist.last("#a", 5)] == list(range(56, 61))
            hist.submit()
            assert hist.writes.writer.wait(DEADLINE)
            if hist.pending == 0:
                break
            hist.writes.collect()
        assert hist.pending == 0
    finally:
        hist.close()


def test_the_cap_refuses_new_lines_while_the_store_fails_then_it_recovers(tmp_path: Path) -> None:
    path = tmp_path / "rooms.sqlite3"
    History(path).close()  # the schema, written while the disk had room
    disk = Disk()
    disk.full.set()
    woken = threading.Event()
    hist = History(path, clock=Clock(), connect=disk.connect, max_unsaved=5, wake=woken.set)
    hist.writes.writer._delays = FAST
    saved: list[str] = []
    try:
        for i in range(5):
            hist.append("#a", "msg", "alice", f"kept {i} " + "x" * 20_000)
        hist.when_saved(lambda: saved.append("acknowledged"))
        hist.submit()
        collect_until(hist, lambda: hist.writes.store_error is not None)
        assert "full" in hist.writes.store_error and woken.is_set()
        with pytest.raises(StoreUnavailable) as refused:
            hist.append("#a", "msg", "alice", "one too many")
        assert str(refused.value).startswith("history store unavailable (database or disk is full)")
        assert hist.latest_id("#a") == 5  # the refused line took no id
        assert [e.text[:6] for e in hist.last("#a", 10)] == ["kept 0", "kept 1", "kept 2", "kept 3", "kept 4"]
        assert saved == []  # never acknowledged while not saved
        disk.full.clear()
        collect_until(hist, lambda: hist.writes.store_error is None and hist.pending == 0)
        assert saved == ["acknowledged"] and hist.writes.saved_since_failure == 5
        assert hist.append("#a", "msg", "alice", "after").id == 6
    finally:
        hist.close()
    with History(path) as again:
        assert [e.id for e in again.last("#a", 10)] == [1, 2, 3, 4, 5, 6]


def test_a_commit_wakes_the_loop_only_for_a_waiter_a_state_change_or_memory_pressure(tmp_path: Path) -> None:
    wakes: list[float] = []
    hist = History(tmp_path / "rooms.sqlite3", clock=Clock(), max_unsaved=80, wake=lambda: wakes.append(time.time()))
    try:
        hist.append("#a", "msg", "alice", "nobody waits")
        hist.submit()
        done = hist.writes._results  # what the writer posted for the next collect()
        for _ in range(int(DEADLINE / 0.005)):
            if not done.empty():
                break
            time.sleep(0.005)
        time.sleep(0.05)  # a wake would come right after the post: give it time to show
        assert wakes == [] and hist.pending == 1  # committed; the next pass collects it, no extra pass
        hist.writes.collect()
        assert hist.pending == 0 and len(hist.writes.lags) == 1
        acked: list[str] = []
        hist.append("#a", "msg", "alice", "somebody waits")
        hist.when_saved(lambda: acked.append("OK"))
        collect_until(hist, lambda: acked == ["OK"])
        assert len(wakes) == 1 and hist.pending == 0  # one wake, for the waiter: its batch came with it
        for i in range(10):  # 10 of at most 80 waiting: past WAKE_FRACTION, a plain commit wakes too
            hist.append("#a", "msg", "alice", f"pressure {i}")
        hist.submit()
        for _ in range(int(DEADLINE / 0.005)):
            if len(wakes) == 2:
                break
            time.sleep(0.005)
        assert len(wakes) == 2 and hist.pending == 10  # woken, not collected yet
    finally:
        hist.close()


def test_close_reports_lines_it_could_not_save(tmp_path: Path) -> None:
    path = tmp_path / "rooms.sqlite3"
    History(path).close()
    disk = Disk()
    disk.full.set()
    hist = History(path, connect=disk.connect)
    hist.append("#a", "msg", "alice", "x" * 60_000)
    with pytest.raises(sqlite3.OperationalError, match="1 history lines not saved"):
        hist.close(timeout=0.2)


def test_prune_runs_on_the_writer_after_the_lines_before_it(tmp_path: Path) -> None:
    hist = History(tmp_path / "rooms.sqlite3", clock=Clock())
    try:
        for i in range(20):
            hist.append("#a", "msg", "alice", f"line {i}")
        answers: list[tuple[bool, Any]] = []
        assert hist.prune(5, None, on_done=lambda more, error: answers.append((more, error))) is False
        collect_until(hist, lambda: bool(answers))
        assert answers == [(False, None)]
        assert [e.id for e in hist.since("#a", 0, MAX_FETCH)] == list(range(16, 21))
    finally:
        hist.close()


def test_a_group_commit_indexes_the_lines_of_all_its_jobs_in_one_step(tmp_path: Path) -> None:
    """The search index step runs once at the end of each group commit (not from triggers, once per job):
    three passes' lines that waited behind a lock commit in one group, and every one of them is in the FTS5
    index, in order, when the commit is known; what is appended later is indexed by the next group."""
    path = tmp_path / "rooms.sqlite3"
    hist = History(path, clock=Clock())
    try:
        hist.commit()
        lock = sqlite3.connect(path, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # the writer waits: the next three submits become one group
        for word in ("alpha", "bravo", "charlie"):
            hist.append("#a", "msg", "alice", f"{word} said once")
            hist.submit()
        lock.execute("ROLLBACK")
        hist.commit()
        hist.append("#b", "msg", "bob", "delta later")
        hist.commit()
        conn = sqlite3.connect(path)
        try:
            triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
            assert "search_index_new" not in triggers and "search_index_more" not in triggers  # migration 5
            indexed = {word: [r[0] for r in conn.execute("SELECT rowid FROM search_fts WHERE search_fts MATCH ?",
                                                         (word,))] for word in ("alpha", "bravo", "charlie", "delta")}
            assert indexed == {"alpha": [1], "bravo": [2], "charlie": [3], "delta": [4]}
            assert conn.execute("SELECT value FROM history_meta WHERE key = 'search_indexed'").fetchone()[0] == 4
        finally:
            conn.close()
    finally:
        hist.close()


def test_checkpoints_run_on_their_own_thread_after_commits(table: Path) -> None:
    """The writer's connection never checkpoints (a checkpoint's fsync must not delay a commit): the other
    thread copies the WAL into the database file shortly after commits, and the WAL stays bounded."""
    writer = Writer(table, post=Results())
    try:
        size = table.stat().st_size
        for n in range(1, 3001):
            writer.submit(insert(n, "p" * 300))
            if n % 100 == 0:
                assert writer.wait(DEADLINE)  # 30 commits of 100 rows: about 2,700 WAL pages without checkpoints
        deadline = time.monotonic() + DEADLINE
        while table.stat().st_size < size + 900_000:  # the rows reached the database file itself
            assert time.monotonic() < deadline, "no checkpoint copied the WAL"
            time.sleep(0.02)
        conn = sqlite3.connect(table)
        try:
            assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # a reader's default, untouched
        finally:
            conn.close()
    finally:
        writer.close()
    assert rows(table)[-1] == 3000


def grows(path: Path, size: int, what: str) -> None:
    """Wait (bounded) until the file *path* is over *size* bytes: a checkpoint copied the WAL into it."""
    deadline = time.monotonic() + DEADLINE
    while path.stat().st_size <= size:
        assert time.monotonic() < deadline, f"no checkpoint copied the WAL of {what}"
        time.sleep(0.02)


def test_a_watching_checkpointer_copies_the_wal_of_a_connection_it_does_not_see(table: Path) -> None:
    """A plugin's store is written on the loop by a connection with ``wal_autocheckpoint`` off: the watching
    Checkpointer notices the WAL change and copies it into the database file (nothing else would)."""
    conn = no_autocheckpoint(sqlite3.connect(table, isolation_level=None))
    checkpointer = Checkpointer(table, watch=True)
    try:
        size = table.stat().st_size
        for n in range(1, 31):
            conn.executemany("INSERT INTO t (n, pad) VALUES (?, ?)", [(n * 100 + i, "p" * 300) for i in range(100)])
        grows(table, size + 900_000, "a connection with autocheckpoint off")
        assert checkpointer.checkpoints >= 1
    finally:
        checkpointer.close()
        conn.close()


def test_a_plugin_store_never_checkpoints_on_the_loop(chatroom_room, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The board's store (``ctx.store``) commits on the loop without SQLite's automatic checkpoint (its fsync
    stalled the room); its checkpointer thread copies the posts into the file while the server runs."""
    room = chatroom_room(threads=True)
    alice = room.join("alice")
    store = room.server.port.plugin_store("board")
    assert store.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    path = room.server.data_dir / "plugins" / "board.sqlite3"
    size = path.stat().st_size
    for _ in range(3):  # 3 posts of 2,000 lines: about 1,500 WAL pages
        body = "".join(f"line {i} " + "x" * 480 + "\n" for i in range(2000))
        assert alice.send_bytes(f"/post\n{body}#\n".encode()) == ["OK"]
    grows(path, size + 2_000_000, "the board's store")


@pytest.mark.parametrize("threads", [False, True])
def test_the_kit_waits_for_the_acknowledgements_that_wait_for_a_commit(chatroom_room, threads: bool) -> None:  # type: ignore[no-untyped-def]
    """The plugin test kit writes the history inline, or (threads=True) waits for its writer thread: a command
    whose OK waits for its commit is answered by the time the kit's call returns."""
    room = chatroom_room(threads=threads)
    alice, bob = room.join("alice"), room.join("bob")
    assert alice.say("/topic plans") == ["* alice set the topic of lobby: plans", "OK topic"]
    assert bob.last == "* alice set the topic of lobby: plans"
    assert alice.say("/join #new")[-1] == "OK join #new (1 member)"
    assert room.server.history.pending == 0
