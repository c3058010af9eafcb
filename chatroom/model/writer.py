"""A writer thread per SQLite file: writes leave the event loop's critical path.

The loop thread never waits for the disk. It hands each write to a
:class:`Writer` as a *job*, ``fn(conn) -> result``, and goes on serving; the
writer's thread runs the jobs on its own connection, in the order they were
submitted, and delivers each job's ``on_done(result, error)`` back through
*post* (the server's ``Scheduler.call_soon_threadsafe``: the callback runs on
the loop thread, with its owner's fault isolation).

**Group commit.** Every job waiting when the thread takes its next turn is
written in ONE ``BEGIN IMMEDIATE ... COMMIT``, each job inside its own
``SAVEPOINT``: while one commit runs, the next jobs gather, so the cost of a
commit is shared by everything said meanwhile and never paid on the loop
thread (PostgreSQL's group commit).

**Pacing** (``pace`` seconds, 0 by default). A job submitted ``paced=True``
(the history's batches of chat lines, which nobody waits for) may wait until
``pace`` seconds after the start of the previous commit, so that under load
the lines of several loop passes share one commit (a commit's fixed cost and
the search index's segment are per commit, not per line); an idle writer
still commits a lone paced job at once, and a job submitted without
``paced`` (an acknowledgement waits for it: ``History.when_saved``, an
account), a :meth:`Writer.wait` or :meth:`Writer.close` starts the commit at
once, taking every paced job queued before it along.

**Checkpoints off the commit path.** The writer's connection never runs
SQLite's automatic checkpoint (its ``fsync`` inside a commit was the 825 ms
stall of issue 17, row 5): a :class:`~chatroom.model.checkpoint.Checkpointer`
thread, poked after each commit, does it on its own connection, so a slow
``fsync`` delays neither the room nor the next commit.

**Two kinds of job.**

- ``retry=False`` (an acknowledgement is waiting: ``/register``,
  ``/password``): an exception raised by ``fn`` rolls back that job's
  savepoint alone and is handed to its ``on_done``; the other jobs of the
  group still commit. If the ``COMMIT`` itself fails, every such job of the
  group gets the error. The caller answers ``ERROR`` and nothing is kept.
- ``retry=True`` (room history: the lines were delivered already): a failing
  group is rolled back whole and tried again after a pause that grows from
  :data:`RETRY_DELAYS` ``[0]`` to ``[-1]`` seconds, with every job submitted
  meanwhile, until it commits; the jobs stay in submission order, so what is
  committed is always a prefix of what was submitted. While that lasts,
  :attr:`Writer.error` says why (``None`` when healthy) and :attr:`Writer.failing_since`
  since when; the caller bounds what waits (see :mod:`chatroom.model.history`).

Jobs are never retried one by one and never retried every loop pass: a full
disk costs one attempt per pause, whatever the traffic.

The connection is :func:`chatroom.model.store.open_store`'s (WAL,
``synchronous=NORMAL``) with a :data:`BUSY_MS` busy timeout: a file locked by
another process fails the attempt after that long, and is retried like any
other failure; each attempt after a failure opens a fresh connection. Threads: :meth:`Writer.submit`, :meth:`Writer.wait`,
:meth:`Writer.run` and :meth:`Writer.close` may be called from any thread;
``fn`` runs on the writer's thread only (it must not touch loop state);
``on_done`` runs wherever *post* sends it. Standard library and
:mod:`chatroom.model.store` only: no sockets, no loop.
"""

from __future__ import annotations

import collections
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from chatroom.model.checkpoint import Checkpointer, no_autocheckpoint
from chatroom.model.store import close_store, open_store

__all__ = ["BUSY_MS", "RETRY_DELAYS", "Done", "Job", "Post", "Writer", "connect_writer"]

#: How long one attempt waits for another connection's write lock, in milliseconds.
BUSY_MS = 1000
#: Pauses between attempts while a group of ``retry`` jobs keeps failing, in seconds (the last one repeats).
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)

Done = Callable[[Any, BaseException | None], None]
R = TypeVar("R")
Post = Callable[[Callable[..., Any], tuple[Any, ...], str], None]


def connect_writer(path: Path) -> sqlite3.Connection:
    """The writer thread's connection to *path*: :func:`~chatroom.model.store.open_store` with a
    :data:`BUSY_MS` busy timeout. Raises ``sqlite3.Error`` / ``OSError`` as ``open_store`` does."""
    conn = open_store(path)
    conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    return conn


class Job:
    """One write: ``fn(conn)`` on the writer thread, then ``on_done(result, error)`` through *post* for *owner*.

    ``done`` is set once the job's outcome is known (committed, or failed for good), and also after each
    failed attempt of a ``retry`` job (``error`` then holds that attempt's exception while it waits).
    """

    __slots__ = ("fn", "on_done", "owner", "retry", "paced", "result", "error", "done")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], on_done: Done | None, owner: str, retry: bool,
                 paced: bool = False) -> None:
        self.fn, self.on_done, self.owner, self.retry, self.paced = fn, on_done, owner, retry, paced
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class _GroupFailed(Exception):
    """A ``retry`` job raised: the whole group is rolled back and tried again."""


class Writer:
    """The thread that writes the SQLite file *path*; ``post(fn, args, owner)`` delivers callbacks.

    *connect* opens the thread's connection (default :func:`connect_writer`; tests inject failures
    through it); *delays* are the pauses between failing attempts (:data:`RETRY_DELAYS`). The thread
    starts at once and is a daemon; :meth:`close` stops it. *name* names the thread (``ps -L``).
    *pace*: seconds from the start of a commit before the next may start while only ``paced`` jobs
    wait (see the module docstring).

    *group_end* ``(conn)`` runs on the writer's thread after the jobs of every group, before its
    ``COMMIT`` (the history's search index step: once per commit, not once per job); if it raises, the
    group fails as a whole (rolled back, ``retry`` jobs tried again).

    *on_state* ``(error, since)`` is delivered through *post* when the store starts failing (``error``
    the reason, ``since`` its ``time.monotonic()``) and when it recovers (``None, 0.0``), in order with the
    jobs' callbacks: a recovery comes after the ``on_done`` of every job it committed.

    ``inline=True`` (the plugin test kit, :mod:`chatroom.testing`): no thread; every :meth:`submit`
    writes everything queued at once on the calling thread (a failing store is tried again at the next
    submit, without pauses), so a test is deterministic.
    """

    def __init__(self, path: Path, *, post: Post, name: str = "chatroom-writer",
                 connect: Callable[[Path], sqlite3.Connection] = connect_writer,
                 delays: tuple[float, ...] = RETRY_DELAYS, inline: bool = False,
                 on_state: Callable[[str | None, float], None] | None = None,
                 group_end: Callable[[sqlite3.Connection], None] | None = None, pace: float = 0.0) -> None:
        self.path = Path(path)
        self._pace = pace
        self._next = 0.0  # time.monotonic() at which a group of paced jobs may start
        self._urgent = 0  # jobs queued that are not paced: the next group starts at once
        self._hurry = 0  # threads in wait(): the next group starts at once
        self._idle = False  # the thread waits for a job with no deadline: a paced submit must wake it
        self._group_end = group_end
        self._on_state = on_state
        self.inline = inline
        self._conn: sqlite3.Connection | None = None  # inline mode's connection (the thread keeps its own)
        self._post = post
        self._connect = connect
        self._delays = delays
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()  # set by close(): cut a pause short, then give up at the deadline
        self._deadline = float("inf")
        self._attempts = 0  # groups tried (for wait())
        #: Why the last attempt failed while ``retry`` jobs wait (``str``), or None when healthy. Any thread may read it.
        self.error: str | None = None
        #: ``time.monotonic()`` of the first failure of the current episode (0.0 when healthy).
        self.failing_since = 0.0
        #: Groups committed and jobs written since start (statistics: ``int``).
        self.commits = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._checkpointer: Checkpointer | None = None
        if not inline:
            self._checkpointer = Checkpointer(self.path, name=f"{name}-checkpoint")  # poked after each commit
            self._thread.start()

    # -- any thread ------------------------------------------------------------------
    def submit(self, fn: Callable[[sqlite3.Connection], Any], on_done: Done | None = None, *,
               owner: str = "core", retry: bool = False, paced: bool = False) -> Job:
        """Queue the write ``fn(conn)``; returns its :class:`Job`. Never blocks on the disk. *paced*: nobody
        waits for it, it may wait for the writer's pace (see the module docstring).

        Raises RuntimeError once :meth:`close` was called.
        """
        job = Job(fn, on_done, owner, retry, paced)
        with self._cond:
            if self._stop.is_set():
                raise RuntimeError(f"the writer of {self.path.name} is closed")
            self._queue.append(job)
            if not paced:
                self._urgent += 1
                self._cond.notify_all()
            elif self._idle:  # else the thread is writing, or sleeps until the pace lets it: no wake-up
                self._cond.notify_all()
        if self.inline:
            self._drain_inline()
        return job

    def run(self, fn: Callable[[sqlite3.Connection], R], *, retry: bool = False, timeout: float = 10.0) -> R:
        """Submit ``fn`` and block until it committed; return its result (start-up, shutdown, tools, tests).

        Raises what ``fn`` or the commit raised (a ``retry`` job stays queued and is tried again),
        TimeoutError after *timeout* seconds. Never call it from the loop thread while serving.
        """
        job = self.submit(fn, retry=retry)
        if not job.done.wait(timeout):
            raise TimeoutError(f"no commit to {self.path.name} within {timeout:g} s")
        if job.error is not None:
            raise job.error
        return cast(R, job.result)  # what fn returned, kept by the writer thread

    @property
    def pending(self) -> int:
        """Jobs queued or being written (``int``)."""
        return len(self._queue)

    def wait(self, timeout: float) -> bool:
        """Block until every job submitted so far is written (True), or *timeout* seconds pass or an
        attempt fails (False)."""
        if self.inline:
            self._drain_inline()
            return not self._queue
        end = time.monotonic() + timeout
        with self._cond:
            start = self._attempts
            self._hurry += 1  # no pacing while somebody waits
            self._cond.notify_all()
            try:
                while self._queue:
                    if self.error is not None and self._attempts > start:
                        return False
                    left = end - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                return True
            finally:
                self._hurry -= 1

    def close(self, timeout: float = 5.0) -> int:
        """Write what is queued (trying a failing store until *timeout* seconds have passed), stop the
        thread, close the connection (checkpointing the WAL); returns how many jobs were never written.
        A second call returns 0."""
        with self._cond:
            if self._stop.is_set():
                return 0
            self._deadline = time.monotonic() + timeout
            self._stop.set()
            self._cond.notify_all()
        if self.inline:
            self._drain_inline()
            if self._conn is not None:
                close_store(self._conn)
                self._conn = None
        else:
            self._thread.join(timeout + 2 * max(self._delays) + 1.0)
            if self._checkpointer is not None:
                self._checkpointer.close(timeout)
        with self._cond:
            left = len(self._queue)
            self._queue.clear()
        return left

    # -- the writer thread -----------------------------------------------------------
    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        failures = 0
        try:
            while True:
                with self._cond:
                    while True:
                        now = time.monotonic()
                        if self._queue and (now >= self._next or self._urgent or self._hurry or self._stop.is_set()):
                            break
                        if not self._queue and self._stop.is_set():
                            return  # closing, everything written
                        # Paced jobs wait until the pace allows (an idle thread sleeps until a job comes).
                        self._idle = now >= self._next
                        self._cond.wait(None if self._idle else self._next - now)
                        self._idle = False
                    group = list(self._queue)
                    self._next = now + self._pace
                conn, ok = self._attempt(conn, group)
                if ok:
                    failures = 0
                    continue
                failures += 1
                if self._stop.is_set() and time.monotonic() >= self._deadline:
                    return  # closing, and the store still fails: close() counts what is left
                pause = self._delays[min(failures, len(self._delays)) - 1]
                if self._stop.is_set():
                    time.sleep(max(0.0, min(pause, self._deadline - time.monotonic())))
                else:
                    self._stop.wait(pause)  # submissions do not cut it short: one attempt per pause
        finally:
            if conn is not None:
                close_store(conn)

    def _drain_inline(self) -> None:
        if self._queue:
            self._conn, _ = self._attempt(self._conn, list(self._queue))

    def _attempt(self, conn: sqlite3.Connection | None, group: list[Job]) -> tuple[sqlite3.Connection | None, bool]:
        """Write *group* in one transaction (opening the connection if needed); report the outcome."""
        try:
            if conn is None:
                conn = self._connect(self.path)
                if self._checkpointer is not None:
                    no_autocheckpoint(conn)  # the checkpointer thread does it
            self._write(conn, group)
        except Exception as exc:  # noqa: BLE001 - sqlite3.Error, OSError, _GroupFailed: reported, retried
            if conn is not None:  # after a failure (an I/O error, a full disk) start the next attempt afresh
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
                conn = None
            self._failed(group, exc.__cause__ if isinstance(exc, _GroupFailed) and exc.__cause__ else exc)
            return conn, False
        self._committed(group)
        if self._checkpointer is not None:
            self._checkpointer.poke()
        return conn, True

    def _write(self, conn: sqlite3.Connection, group: list[Job]) -> None:
        """One transaction for *group*, one savepoint per job; sets each job's result or error."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            for job in group:
                conn.execute("SAVEPOINT job")
                try:
                    job.result, job.error = job.fn(conn), None
                except Exception as exc:  # noqa: BLE001 - the job's own failure: its savepoint only
                    if job.retry and isinstance(exc, sqlite3.Error):
                        raise _GroupFailed() from exc
                    conn.execute("ROLLBACK TO job")
                    job.result, job.error = None, exc
                conn.execute("RELEASE job")
            if self._group_end is not None:  # once per group, in its transaction: an error fails the group
                self._group_end(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # also after a COMMIT that failed (SQLITE_FULL, I/O error)
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    def _committed(self, group: list[Job]) -> None:
        with self._cond:
            for job in group:
                self._queue.popleft()
                self._urgent -= not job.paced
            self._attempts += 1
            self.commits += 1
            self.written += len(group)
            recovered = self.error is not None
            self._cond.notify_all()
        for job in group:
            job.done.set()
            if job.on_done is not None:
                self._post(job.on_done, (job.result, job.error), job.owner)
        if recovered:
            with self._cond:
                self.error = None
                self.failing_since = 0.0
                self._cond.notify_all()
            if self._on_state is not None:
                self._post(self._on_state, (None, 0.0), "core")

    def _failed(self, group: list[Job], exc: BaseException) -> None:
        """The group's transaction failed: jobs waiting for an answer get *exc*; ``retry`` jobs stay queued."""
        given_up: list[Job] = []
        started = False
        with self._cond:
            tried = {id(job) for job in group}
            kept = [job for job in self._queue if job.retry or id(job) not in tried]
            given_up = [job for job in group if not job.retry]
            self._queue = collections.deque(kept)
            self._urgent = sum(not job.paced for job in kept)
            self._attempts += 1
            if any(job.retry for job in group):
                if self.error is None:
                    self.failing_since = time.monotonic()
                    started = True
                self.error = str(exc) or exc.__class__.__name__
            self._cond.notify_all()
        if started and self._on_state is not None:
            self._post(self._on_state, (self.error, self.failing_since), "core")
        for job in group:
            job.result, job.error = None, exc
            job.done.set()
            if job.retry:
                job.done.clear()  # tried again: run() callers were told, later ones wait for the next outcome
        for job in given_up:
            if job.on_done is not None:
                self._post(job.on_done, (None, exc), job.owner)
