"""Persistent room history and room records, in one SQLite file.

The server opens one :class:`History` on ``DATA_DIR/rooms.sqlite3``. It holds

- **history**: every stored line of every room as an :class:`Entry`, with an
  id per room (1, 2, 3, ... strictly increasing, never reused: not after
  retention deleted old lines, not after a restart) and a UTC timestamp;
- **room records** (:class:`~chatroom.model.records.RoomRecord`): name, topic, who set it and when,
  creation time, rules, so rooms (empty ones too) survive a restart; ``history.records``
  (:class:`~chatroom.model.records.RoomRecords`) holds them, and :meth:`History.submit` hands their changes
  to the writer with the lines.

Write path (the hot path): :meth:`History.append` per chat line (memory only: id, time); after the pass's
fan-out, :meth:`History.submit` (never waits); ``history.writes.collect()`` in a later pass applies what the
writer reports. :meth:`History.submit` hands the pass's entries and changed room records to
:class:`chatroom.model.pending.PendingWrites`, whose writer thread commits
what waits in ONE transaction (group commit) and retries a failing store: the
loop writes no SQL and never waits for the disk, lines reach the room before
they are committed (the rule: docs/protocol.md, "Durability"). Ids:
:class:`chatroom.model.ids.RoomIds`.

Queries are range scans of the unique index ``(room, id)`` (the rowid is the
line's search number): O(log N + n), a 1,000,000-line room answers as fast as a
small one (``bench/history.py``); lines not committed yet are merged from memory.
Start-up reads one id counter per room, never the history table;
:meth:`History.prune` deletes in bounded steps, on the writer thread too.

Threading: the server's loop thread only (the writer thread runs the jobs it is given). No sockets, no
loop, no plugins: the standard library and :mod:`chatroom.model` only.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import NamedTuple

from chatroom.model.history_sql import (
    BEFORE as _BEFORE, BETWEEN as _BETWEEN, DELETE_ROOM as _DELETE_ROOM, FLOOR as _FLOOR, LAST as _LAST, MIGRATIONS,
    SINCE as _SINCE,
)
from chatroom.model.ids import RoomIds
from chatroom.model.pending import MAX_UNSAVED, PendingWrites, StoreUnavailable, prune_step
from chatroom.model.records import RoomRecord, RoomRecords
from chatroom.model.search import PAGE, Query, SearchCursor, SearchPage, run as run_search
from chatroom.model.store import close_store, migrate, open_store
from chatroom.model.writer import connect_writer

__all__ = ["KINDS", "MAX_FETCH", "MAX_UNSAVED", "Entry", "History", "RoomRecord", "StoreUnavailable"]

#: Most entries one query may return (``n`` / ``limit`` of the queries).
MAX_FETCH = 500
#: The kinds of stored lines: chat, ``/me`` action, topic change, room notice.
KINDS = frozenset({"msg", "me", "topic", "notice"})

class Entry(NamedTuple):
    """One stored line of a room (immutable).

    - ``room``: the room's canonical name as given to :meth:`History.append` (``"#lobby"``);
    - ``id``: per-room id, from 1, strictly increasing, never reused;
    - ``ts``: when it was appended, Unix seconds UTC (float, from the clock);
    - ``kind``: one of :data:`KINDS`: ``"msg"`` chat, ``"me"`` ``/me`` action,
      ``"topic"`` topic change (``text`` is the new topic), ``"notice"``;
    - ``nick``: the sender's nick at the time;
    - ``account``: the sender's account name, or None if not logged in;
    - ``text``: the line's text (without the ``NICK: `` prefix).

    Its field order is the ``history`` table's column order, so an entry is a
    row as it is (``executemany`` takes the buffer directly).
    """

    room: str
    id: int
    ts: float
    kind: str
    nick: str
    account: str | None
    text: str


_MAX_ID = 2**63 - 1  # SQLite's largest integer
_new_entry = tuple.__new__  # Entry(...) without the NamedTuple's __new__ (a Python function): half the cost


def _check(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in {low}..{high}, not {value!r}")


def _drop(conn: sqlite3.Connection, name: str, last: int) -> None:
    """Writer-thread job of :meth:`History.drop_room`."""
    conn.execute(_DELETE_ROOM, (name,))
    if last:
        conn.execute(_FLOOR, (name, last, last))


class History:
    """Room history and room records in the SQLite file at *path*.

    Opens (creating file and folder if needed) with
    :func:`chatroom.model.store.open_store`, brings the schema up to date with
    :func:`chatroom.model.store.migrate`, then loads each room's next id and every
    room record into memory (``records``). *clock* gives timestamps (Unix seconds UTC, as
    :func:`time.time`); tests pass a fake one.

    *wake*, *connect*, *max_unsaved*, *inline*: :class:`~chatroom.model.pending.PendingWrites`
    (the server passes ``loop.wake``: the writer has news for :meth:`collect`).

    Raises ``sqlite3.Error`` if the file is not a database,
    :class:`chatroom.model.store.MigrationError` if its schema is newer than this
    module's, ``OSError`` if the folder cannot be created.

    Use from one thread (the server's loop thread), except where a method says otherwise.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time,
                 wake: Callable[[], None] | None = None,
                 connect: Callable[[Path], sqlite3.Connection] = connect_writer,
                 max_unsaved: int = MAX_UNSAVED, inline: bool = False) -> None:
        self.path = Path(path)
        self._clock = clock
        self._conn = open_store(self.path, check_same_thread=False)  # reads; built on one thread, used on the loop's
        try:
            migrate(self._conn, MIGRATIONS)
            row = self._conn.execute("SELECT value FROM history_meta WHERE key = 'dropped_max'").fetchone()
            #: The rooms' id counters (:class:`chatroom.model.ids.RoomIds`: never an id twice).
            self.ids = RoomIds(self._conn.execute("SELECT room, last_id, floor FROM history_seq"),
                               int(row[0]) if row else 0)
            #: The room records and rules (:class:`~chatroom.model.records.RoomRecords`: changed in memory,
            #: handed to the writer by :meth:`submit`).
            self.records = RoomRecords(self._conn, clock)
        except BaseException:
            close_store(self._conn)
            raise
        self._prune_from = ""  # room name where the next prune() pass resumes
        self._closed = False
        self.inline = inline
        #: What is not committed yet, and the writer thread (``store_error``, ``max_unsaved``...).
        self.writes = PendingWrites(self.path, wake=wake, connect=connect, max_unsaved=max_unsaved, inline=inline)

    @property
    def version(self) -> int:
        """``records.version`` (:class:`~chatroom.model.records.RoomRecords`: the changes of a room's state),
        for the readers that hold the history; a reader per line reads ``records.version`` (no call)."""
        return self.records.version

    # -- writing ---------------------------------------------------------------------
    def append(self, room: str, kind: str, nick: str, text: str, account: str | None = None) -> Entry:
        """Assign *room*'s next id and the clock's time to a line; buffer it; return it.

        Memory only: :meth:`submit` hands it to the writer. *kind* is one of :data:`KINDS` (ValueError
        otherwise); *room*, *nick*, *text* ``str``, *account* ``str`` or None (TypeError otherwise: a bad
        entry never blocks later commits). :class:`StoreUnavailable` (no id taken) while
        ``writes.max_unsaved`` lines wait. The room needs no record. About 0.4 microseconds.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
        if not (isinstance(room, str) and isinstance(nick, str) and isinstance(text, str)
                and (account is None or isinstance(account, str))):
            raise TypeError("room, nick and text must be str, account str or None")
        entries = self.writes.entries
        if len(entries) >= self.writes.max_unsaved:  # the check, inlined (per line said)
            self.writes.check()
        entry: Entry = _new_entry(Entry, (room, self.ids.assign(room), self._clock(), kind, nick, account, text))
        entries.append(entry)
        return entry

    def put(self, entry: Entry) -> None:
        """Queue *entry* with its own id (scale-out: Redis numbers the lines, so no reserve: a node restarted
        after a crash resumes after its last stored line) unless a duplicate; skipped while the store is full."""
        self.writes.reserve = 0
        if self.ids.take(entry.room, entry.id) and len(self.writes.entries) < self.writes.max_unsaved:
            self.writes.entries.append(entry)

    def submit(self) -> int:
        """Hand every entry appended and every room record or rule changed since the last call to the
        writer thread, as one job; never waits. Returns how many entries (0: nothing to hand over, no job).
        The server calls it at the end of every loop pass, after the pass's fan-out."""
        count = self.writes.submit(*self.records.changes())
        if self.inline:
            self.writes.collect()  # written already (the kit): its callbacks run in this pass
        return count

    def when_saved(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` once every change made so far is committed (at once, or at a later
        ``writes.collect()``; after a failing store recovers): an acknowledgement waits here."""
        self.submit()
        self.writes.when_saved(fn)

    def commit(self, timeout: float = 10.0) -> int:
        """:meth:`submit`, then block until all is committed; returns how many entries this call handed over.
        Start-up, shutdown, tools and tests only. ``sqlite3.Error`` when the attempt failed (the writer keeps
        trying), TimeoutError after *timeout* s."""
        count = self.submit()
        self.writes.wait(timeout)
        return count

    @property
    def pending(self) -> int:
        """How many entries are not known to be committed yet (in memory: appended, or with the writer)."""
        return len(self.writes.entries)

    # -- reading ---------------------------------------------------------------------

    # Entries not known to be committed are the newest of their room (the writer commits in order), and
    # some may be committed already (the writer's news not collected yet): the file is read below the
    # first of them only, and they are added from memory, so no entry is missing or there twice.
    def _buffered(self, room: str) -> list[Entry]:
        floor = self.ids.floor_of(room)
        return [e for e in self.writes.room(room) if e.id > floor]

    def last(self, room: str, n: int) -> list[Entry]:
        """The *n* newest entries of *room* (fewer if it has fewer), oldest first.

        Entries not committed yet included. ValueError unless 1 <= n <= :data:`MAX_FETCH`.
        """
        _check("n", n, 1, MAX_FETCH)
        pending = self._buffered(room)
        if len(pending) >= n:
            return pending[len(pending) - n:]
        floor = self.ids.floor_of(room)
        if pending:
            rows = self._conn.execute(_BEFORE, (room, pending[0].id, floor, n - len(pending))).fetchall()
        else:
            rows = self._conn.execute(_LAST, (room, floor, n)).fetchall()
        rows.reverse()
        return [Entry._make(r) for r in rows] + pending

    def since(self, room: str, after_id: int, limit: int) -> list[Entry]:
        """Up to *limit* entries of *room* with ``id > after_id``, oldest first.

        What a client that last saw *after_id* missed: if the answer is
        *limit* long, ask again with the last id. Entries deleted by
        retention are simply absent (compare the first id with
        ``after_id + 1`` to tell). Entries not committed yet included.
        ValueError unless 1 <= limit <= :data:`MAX_FETCH` and 0 <= after_id < 2**63.
        """
        _check("limit", limit, 1, MAX_FETCH)
        _check("after_id", after_id, 0, _MAX_ID)
        pending = self._buffered(room)
        low = max(after_id, self.ids.floor_of(room))
        if pending:
            rows = self._conn.execute(_BETWEEN, (room, low, pending[0].id, limit)).fetchall()
        else:
            rows = self._conn.execute(_SINCE, (room, low, limit)).fetchall()
        out = [Entry._make(r) for r in rows]
        if len(out) < limit:
            out += [e for e in pending if e.id > after_id][: limit - len(out)]
        return out

    def before(self, room: str, before_id: int, n: int) -> list[Entry]:
        """The *n* entries of *room* just older than *before_id* (``id < before_id``), oldest first.

        For "load older" scrollback: pass the oldest id the reader has.
        Entries not committed yet included. ValueError unless 1 <= n <= :data:`MAX_FETCH`
        and 0 <= before_id < 2**63.
        """
        _check("n", n, 1, MAX_FETCH)
        _check("before_id", before_id, 0, _MAX_ID)
        buffered = self._buffered(room)
        pending = [e for e in buffered if e.id < before_id]
        if len(pending) >= n:
            return pending[len(pending) - n:]
        below = min(before_id, buffered[0].id) if buffered else before_id
        rows = self._conn.execute(_BEFORE, (room, below, self.ids.floor_of(room), n - len(pending))).fetchall()
        rows.reverse()
        return [Entry._make(r) for r in rows] + pending

    def latest_id(self, room: str) -> int:
        """The last id assigned in *room* (uncommitted included), 0 if none ever was.

        Still the last assigned id after retention deleted the lines (or :meth:`drop_room` the room).
        """
        return self.ids.latest(room)

    def has_lines(self, room: str) -> bool:
        """True if a line was stored in *room* since it was last dropped (:meth:`drop_room`), pruned or not."""
        return self.latest_id(room) > self.ids.floor_of(room)

    def search(self, start: Query | SearchCursor, rooms: Iterable[str], *, limit: int = PAGE) -> SearchPage:
        """:func:`chatroom.model.search.run` over *rooms* (readable ones), their floors and uncommitted lines applied."""
        floors = {room: self.ids.floor_of(room) for room in rooms}
        return run_search(self._conn, start, floors, [e for e in self.writes.entries if e.room in floors], Entry._make,
                          limit=limit)

    # -- rooms -----------------------------------------------------------------------
    def room(self, name: str) -> RoomRecord | None:
        """Room *name*'s record (``records.room``: saved, committed or not), or None."""
        return self.records.room(name)

    def drop_room(self, name: str) -> None:
        """Forget room *name* (:mod:`chatroom.model.rooms`): its record goes now (the writer deletes it after
        every change before it, retrying a failing store), its lines are hidden at once and deleted by
        :meth:`prune`, then its counter goes; ids are never given again (:class:`~chatroom.model.ids.RoomIds`)."""
        last = self.ids.drop(name)
        self.records.drop(name)
        self.submit()  # what was said and saved before goes first
        self.writes.job(partial(_drop, name=name, last=last))

    def prune(self, keep_lines: int | None, keep_days: float | None, max_rows: int = 2000,
              on_done: Callable[[bool, BaseException | None], None] | None = None) -> bool:
        """Delete old history in one bounded step; True if there may be more to delete.

        Per room keeps at most *keep_lines* newest lines (uncommitted ones count) and nothing older than
        *keep_days* days (by the clock); None disables a limit. Oldest id first, stopping at the first line
        both limits keep. A dropped room's lines (:meth:`drop_room`) all go, then its counter
        (:class:`~chatroom.model.ids.RoomIds`). One call deletes at most *max_rows* rows and looks at most at
        *max_rows* rooms, in one transaction on the writer thread after everything submitted before it,
        resuming where the previous call stopped: call it again while it returns True. ValueError for a
        negative limit or ``max_rows < 1``. Without *on_done* it blocks until committed (start-up, tests;
        ``sqlite3.Error`` if it fails); with it, it returns False at once and ``on_done(more, error)`` runs at
        a later ``writes.collect()`` (the server's timer: the loop never waits).
        """
        if keep_lines is not None and (not isinstance(keep_lines, int) or keep_lines < 0):
            raise ValueError(f"keep_lines must be None or an int >= 0, not {keep_lines!r}")
        if keep_days is not None and not keep_days >= 0:
            raise ValueError(f"keep_days must be None or >= 0, not {keep_days!r}")
        if not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"max_rows must be an int >= 1, not {max_rows!r}")
        if keep_lines is None and keep_days is None and not self.ids.floor:
            if on_done is not None:
                on_done(False, None)
            return False
        age_cut = self._clock() - keep_days * 86400.0 if keep_days is not None else None
        last_ids = self.ids.last_ids()  # snapshots for the writer thread
        gone_ok = self.ids.forgettable(last_ids, [*self.records.names(), *(e.room for e in self.writes.entries)])
        step = partial(prune_step, last_ids=last_ids, floors=dict(self.ids.floor), forget=gone_ok,
                       start=self._prune_from, keep_lines=keep_lines, age_cut=age_cut, max_rows=max_rows)
        self.submit()  # the lines said before this call go first
        if on_done is None:
            return self._pruned(self.writes.writer.run(step, timeout=60.0), last_ids)

        def done(result: tuple[bool, str, list[str]] | None, error: BaseException | None) -> None:
            on_done(self._pruned(result, last_ids) if result is not None else False, error)

        self.writes.job(step, done)  # done runs at a collect(), on this thread
        return False

    def _pruned(self, result: tuple[bool, str, list[str]], last_ids: dict[str, int]) -> bool:
        """Apply a committed prune step: where the next resumes, dropped rooms now forgotten."""
        more, self._prune_from, gone = result
        for room in gone:
            if self.records.room(room) is None:
                self.ids.forget(room, last_ids[room])
        return bool(more)

    # -- life cycle ------------------------------------------------------------------
    def close(self, timeout: float = 5.0) -> None:
        """Hand over what is not submitted, let the writer commit everything (trying a failing store
        for at most *timeout* seconds), then close both connections
        (:func:`chatroom.model.store.close_store`: checkpoint the WAL). A second call does nothing.
        Raises ``sqlite3.OperationalError`` naming how many lines were lost if some could not be
        committed (the files are closed anyway).
        """
        if self._closed:
            return
        self._closed = True
        try:
            self.submit()
            self.writes.close(timeout, self.ids.last_ids())
        finally:
            close_store(self._conn)

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

