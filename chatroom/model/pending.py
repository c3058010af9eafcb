"""The room store's changes not committed yet, and the writer thread that commits them.

:class:`PendingWrites` is the write side of :class:`chatroom.model.history.History`: the lines
appended and not known to be committed (oldest first), and a :class:`chatroom.model.writer.Writer`
that writes each loop pass's lines, room records and rules as one job, in order, grouping what waits
into one transaction, at most one commit of such jobs every :data:`COMMIT_EVERY` seconds while nobody
waits for one (the writer's pacing). Its state, all on the loop thread:

- ``entries``: what is not committed; the first ``submitted`` of them are with the writer. Committed
  ones leave when :meth:`PendingWrites.collect` learns it, so they are always the newest of their room
  and the queries of :class:`~chatroom.model.history.History` add them from memory;
- ``store_error``: why the store fails, or None; ``failing_since`` (monotonic s) and
  ``saved_since_failure`` for the log lines of a failure episode;
- at most ``max_unsaved`` entries: past it, :meth:`PendingWrites.check` raises :class:`StoreUnavailable`
  (the speaker is told, the line is neither kept nor delivered).

What the writer reports comes back through a queue that :meth:`PendingWrites.collect` drains. The writer
thread calls *wake* (so the loop runs a pass at once) only when the loop must act soon: a result somebody
waits for (:meth:`PendingWrites.when_saved`, a retention step), a change of the store's state (it fails, it
recovers), or memory pressure (:data:`WAKE_FRACTION` of ``max_unsaved`` entries not known committed). A
plain batch commit is left for the next pass to collect: a busy loop passes constantly, and an idle one has
nothing growing; waking it for every commit doubled its passes (25-35 % more CPU per delivery,
docs/benchmarks.md, "Fan-out hot path"). Standard library and :mod:`chatroom.model` only.
"""

from __future__ import annotations

import bisect
import collections
import queue
import sqlite3
import time
from collections.abc import Callable
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

from chatroom.model.errors import Refused
from chatroom.model.history_sql import DELETE_TO, DROPPED_MAX, INDEX_NEW, INSERT_SIZES, INSERTS, OLDEST, ROOM, RULES, SEQ
from chatroom.model.writer import Writer, connect_writer

__all__ = ["COMMIT_EVERY", "MAX_UNSAVED", "WAKE_FRACTION", "PendingWrites", "StoreUnavailable", "index_new", "nothing", "prune_step", "settle_counters",
           "write_batch"]

#: Lines that may wait in memory, not committed, before new ones are refused (:class:`StoreUnavailable`).
#: A line is at most 64 KiB, most are under 200 bytes: about 2 MB in the usual case.
MAX_UNSAVED = 10_000
#: The writer wakes the loop for a plain batch commit once this fraction of ``max_unsaved`` entries waits.
WAKE_FRACTION = 0.125
#: Seconds from the start of one commit of chat lines to the next, at least, while nobody waits for one (the
#: writer's ``pace``): under load a commit takes the lines of several loop passes. What a crash can lose grows
#: by as much (docs/protocol.md, "Durability"); the knee of the cost per line is measured in docs/benchmarks.md.
COMMIT_EVERY = 0.03
#: Commit lags kept for :meth:`PendingWrites.lag_report`.
LAG_SAMPLES = 100_000


class StoreUnavailable(Refused):
    """A line cannot be kept: ``max_unsaved`` lines already wait for a store that fails (or lags).

    ``str(exc)`` is the reason a speaker reads after ``ERROR``: ``history store unavailable (...)``.
    """


def write_batch(conn: sqlite3.Connection, entries: list[NamedTuple], records: list[Any],
                rules: list[tuple[str, float, str]], reserve: int = 0) -> float | None:
    """Writer-thread job: one pass's lines (``Entry`` rows), id counters, room records and rules; returns the
    time of its oldest line (Unix s; None without lines). Each room's counter is saved *reserve* above its last line: ids that were handed out
    but never committed (a crash) are never given again after a restart (:meth:`PendingWrites.close`)."""
    if entries:
        start, count = 0, len(entries)
        for size in INSERT_SIZES:
            while count - start >= size:
                conn.execute(INSERTS[size], tuple(chain.from_iterable(entries[start:start + size])))
                start += size
        last: dict[str, int] = {}
        for entry in entries:
            last[entry[0]] = entry[1] + reserve  # (room, id): ids increase within a room, the last one wins
        conn.executemany(SEQ, last.items())
    if records:
        conn.executemany(ROOM, [(r.name, r.topic, r.topic_by, r.topic_at, r.created) for r in records])
    if rules:
        conn.executemany(RULES, rules)
    return entries[0][2] if entries else None  # (room, id, ts, ...)


def index_new(conn: sqlite3.Connection) -> None:
    """Writer thread, at the end of each group commit: the lines it stored go into the search index (one
    FTS5 statement for the whole group; see :mod:`chatroom.model.history_sql`)."""
    for statement in INDEX_NEW:
        conn.execute(statement)


def settle_counters(conn: sqlite3.Connection, last_ids: dict[str, int]) -> None:
    """Writer-thread job at a clean shutdown: every room's counter back to its last id (no reserve left)."""
    conn.executemany("UPDATE history_seq SET last_id = ? WHERE room = ?", [(v, k) for k, v in last_ids.items()])


def nothing(conn: sqlite3.Connection) -> None:
    """Writer-thread job that writes nothing: its ``on_done`` marks the point everything before it committed."""


def prune_step(conn: sqlite3.Connection, last_ids: dict[str, int], floors: dict[str, int], forget: set[str],
               start: str, keep_lines: int | None, age_cut: float | None, max_rows: int) -> tuple[bool, str, list[str]]:
    """Writer-thread job of :meth:`History.prune`: ``(more, room to resume at, dropped rooms forgotten)``.

    *last_ids* and *floors* are the loop's snapshot; a room in *forget* (dropped, nothing said since) whose
    lines are all deleted loses its counter, folded into ``dropped_max``."""
    # A round walks the rooms in name order, over as many calls as it takes;
    # a call resumes at the room where the previous one stopped.
    rooms = sorted(last_ids)
    budget = max_rows
    visited = 0
    gone: list[str] = []
    for room in rooms[bisect.bisect_left(rooms, start):]:
        if visited >= max_rows:
            return True, room, gone
        visited += 1
        last, floor = last_ids[room], floors.get(room, 0)
        id_cut = max(last - keep_lines if keep_lines is not None else 0, floor)
        upto = 0
        taken = 0
        # Lazily: only the rows that go, plus the first one that stays, are read.
        cursor = conn.execute(OLDEST, (room, budget))
        for row_id, ts in cursor:
            if row_id <= id_cut or (age_cut is not None and ts < age_cut):
                upto = row_id
                taken += 1
            else:
                break
        cursor.close()
        if taken:
            conn.execute(DELETE_TO, (room, upto))
            budget -= taken
            if budget <= 0:  # this room may have more: resume with it
                return True, room, gone
        if room in forget:
            conn.execute("DELETE FROM history_seq WHERE room = ?", (room,))  # dropped, and all gone
            conn.execute(DROPPED_MAX, (last,))
            gone.append(room)
    return False, "", gone  # round complete: every room is within its limits


class PendingWrites:
    """What is not committed yet in the SQLite file *path*, and its writer (see the module docstring).

    *wake* (thread-safe) is called by the writer thread when it has news the loop must act on soon (see the
    module docstring; a plain batch commit waits for the next :meth:`collect`); *connect* opens the writer's
    connection; ``inline=True`` writes on the calling thread (the plugin test kit); *pace* (seconds,
    :data:`COMMIT_EVERY`) is the writer's pace for the batches of :meth:`submit`, which are paced unless
    ``max_unsaved * WAKE_FRACTION`` entries wait (:class:`~chatroom.model.writer.Writer`). Loop thread only,
    except what the writer thread calls.
    """

    def __init__(self, path: Path, *, wake: Callable[[], None] | None = None,
                 connect: Callable[[Path], sqlite3.Connection] = connect_writer,
                 max_unsaved: int = MAX_UNSAVED, inline: bool = False, pace: float = COMMIT_EVERY) -> None:
        self.entries: list[Any] = []
        self.submitted = 0
        self.max_unsaved = max_unsaved
        #: How far above its last committed line each room's saved counter runs (:func:`write_batch`): the ids
        #: this history hands out itself; 0 once ids come from elsewhere (scale-out: ``History.put``).
        self.reserve = max_unsaved
        self.inline = inline
        #: Why the store fails (``str``, what SQLite said), or None while it works.
        self.store_error: str | None = None
        #: Since when it fails (``time.monotonic()``; 0.0 when it works) and lines committed since then.
        self.failing_since = 0.0
        self.saved_since_failure = 0
        #: How long the last failure episode lasted, in seconds (set when the store recovers).
        self.outage = 0.0
        #: Seconds from a batch's oldest line being appended to its commit (the writer thread's clock), per batch
        #: (the last :data:`LAG_SAMPLES`): what a crash could have lost (:meth:`lag_report`).
        self.lags: collections.deque[float] = collections.deque(maxlen=LAG_SAMPLES)
        self.lag_max = 0.0
        self._wake = wake if wake is not None else (lambda: None)
        self._wake_at = max(1, int(max_unsaved * WAKE_FRACTION))  # entries waiting that make a batch commit wake
        self._results: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.SimpleQueue()
        self.writer = Writer(Path(path), post=self._post, name="chatroom-history", connect=connect, inline=inline,
                             on_state=self._store_state, group_end=index_new, pace=pace)

    def check(self) -> None:
        """Raise :class:`StoreUnavailable` if no more lines may wait."""
        if len(self.entries) >= self.max_unsaved:
            why = self.store_error or self.writer.error or "the store is slow"
            raise StoreUnavailable(f"history store unavailable ({why}): your line was not sent; "
                                   f"{len(self.entries)} lines wait to be saved")

    def room(self, room: str) -> list[Any]:
        """The entries of *room* not known to be committed, oldest first."""
        return [e for e in self.entries if e[0] == room]

    def submit(self, records: list[Any], rules: list[tuple[str, float, str]]) -> int:
        """Hand the entries added since the last call, *records* and *rules* to the writer as one job (none
        when there is nothing); never waits. Returns how many entries."""
        entries = self.entries[self.submitted:]
        if not entries and not records and not rules:
            return 0
        self.submitted = len(self.entries)
        # Paced (the writer may gather more passes into its next commit) unless memory fills up.
        self.writer.submit(partial(write_batch, entries=entries, records=records, rules=rules,
                                   reserve=self.reserve), partial(self._saved, len(entries)), retry=True,
                           paced=self.submitted < self._wake_at)
        return len(entries)

    def job(self, fn: Callable[[sqlite3.Connection], Any],
            on_done: Callable[[Any, BaseException | None], None] | None = None, *, retry: bool = True) -> None:
        """Another write (retention), in order after everything submitted; *on_done* at a :meth:`collect`."""
        self.writer.submit(fn, on_done, retry=retry)

    def _post(self, fn: Callable[..., Any], args: tuple[Any, ...], owner: str) -> None:
        """Writer thread: queue a result for :meth:`collect`; wake the loop unless it is a plain batch commit
        (:meth:`_saved`, stamped with the commit's time) and fewer than ``max_unsaved * WAKE_FRACTION``
        entries wait. Results are collected in the order posted, so a wake for a waiter or a state change
        also brings every batch committed before it."""
        if getattr(fn, "func", None) == self._saved:
            self._results.put((fn, (*args, time.time())))
            if len(self.entries) < self._wake_at:  # a racy read of a length: at worst one wake more or less
                return
        else:
            self._results.put((fn, args))
        self._wake()

    def _saved(self, count: int, oldest: float | None, error: BaseException | None, committed: float) -> None:
        """A batch of *count* entries left the writer at *committed* (Unix s): committed (or, for a bug in the
        job, dropped)."""
        del self.entries[:count]
        self.submitted -= count
        if error is None:
            self.saved_since_failure += count
            if oldest is not None:
                lag = committed - oldest
                self.lags.append(lag)
                self.lag_max = max(self.lag_max, lag)

    def lag_report(self) -> str:
        """``"commit lag p50 X ms, p99 Y ms, max Z ms over N batches in M commits"`` (the server logs it when it
        stops; N/M: batches, one per loop pass with lines, that shared a group commit)."""
        lags = sorted(self.lags)
        if not lags:
            return "no line committed"
        p50, p99 = lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        return (f"commit lag p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms, max {self.lag_max * 1e3:.1f} ms "
                f"over {len(lags)} batches in {self.writer.commits} commits")

    def _store_state(self, error: str | None, since: float) -> None:
        """The writer's news, in order with its commits: the store fails (why, since when) or works again."""
        if error is not None and self.store_error is None:  # a new failure episode
            self.failing_since = since
            self.saved_since_failure = 0
        elif error is None:
            self.outage = time.monotonic() - self.failing_since if self.failing_since else 0.0
            self.failing_since = 0.0
        self.store_error = error

    def collect(self) -> None:
        """Apply what the writer reported: committed lines leave memory, the store's state is followed."""
        while True:
            try:
                fn, args = self._results.get_nowait()
            except queue.Empty:
                return
            fn(*args)

    def when_saved(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` once everything submitted so far is committed: at once if it is, else at a later
        :meth:`collect`; while the store fails, once it recovers (never for what was not saved)."""
        if not self.writer.pending and self._results.empty():
            fn()
            return
        self.writer.submit(nothing, lambda result, error: fn(), retry=True)

    def wait(self, timeout: float) -> None:
        """Block until everything submitted is committed (start-up, shutdown, tools, tests). Raises
        ``sqlite3.OperationalError`` when an attempt failed (the writer keeps trying), TimeoutError."""
        ok = self.writer.wait(timeout)
        self.collect()
        if not ok:
            if self.writer.error is not None:
                raise sqlite3.OperationalError(self.writer.error)
            raise TimeoutError(f"history not committed within {timeout:g} s")

    def close(self, timeout: float, last_ids: dict[str, int]) -> None:
        """Let the writer commit what it has (a failing store is tried for *timeout* s), set the rooms'
        counters to *last_ids* (the reserve is not needed after a clean stop) and stop it. Raises
        ``sqlite3.OperationalError`` naming how many lines were lost when some could not be committed."""
        if last_ids:
            self.writer.submit(partial(settle_counters, last_ids=last_ids), retry=True)
        left = self.writer.close(timeout)
        self.collect()
        if left:
            raise sqlite3.OperationalError(f"{len(self.entries)} history lines not saved "
                                           f"({self.writer.error or 'store closed'})")
