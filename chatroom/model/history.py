"""Persistent room history and room records, in one SQLite file.

The server opens one :class:`History` on ``DATA_DIR/rooms.sqlite3``. It holds

- **history**: every stored line of every room as an :class:`Entry`, with an
  id per room (1, 2, 3, ... strictly increasing, never reused: not after
  retention deleted old lines, not after a restart) and a UTC timestamp;
- **room records** (:class:`RoomRecord`): name, topic, who set it and when,
  creation time, so rooms (empty ones too) survive a restart.

Write path (the hot path: one call per chat line)::

    entry = history.append("#lobby", "msg", "alice", "hello")  # memory only
    ...                                                         # rest of the loop pass
    history.commit()      # ONE transaction for the whole pass, before output is sent

:meth:`History.append` only assigns the id and timestamp and buffers the
entry; :meth:`History.commit` writes every buffered entry (and every changed
room record) in one ``BEGIN IMMEDIATE ... COMMIT`` with ``executemany``. The
connection follows :mod:`chatroom.model.store` (WAL, ``synchronous=NORMAL``,
autocommit outside explicit transactions), so once ``commit()`` returns the
lines survive a kill of the process (SIGKILL included); a power loss can lose
the last commits. A crash loses only buffered entries, which nobody has
received yet if the caller commits before sending the pass's output; their
ids are then assigned again after the restart (nobody saw them).

Queries are range scans of the primary key ``(room, id)`` of a ``WITHOUT
ROWID`` table: O(log N + n), a 1,000,000-line room answers as fast as a small
one (``bench/history.py``). They see buffered entries too (merged from
memory). Start-up reads one id counter per room, never the history table;
:meth:`History.prune` deletes in bounded steps.

Threading: a :class:`History` is used only by the server's loop thread (the
thread that created it; ``sqlite3`` enforces this). No sockets, no loop, no
plugins here: the module imports the standard library and
:mod:`chatroom.model.store` only.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from chatroom.model.history_sql import (
    BEFORE as _BEFORE, DELETE_TO as _DELETE_TO, DROPPED_MAX as _DROPPED_MAX, FLOOR as _FLOOR, INSERT as _INSERT,
    LAST as _LAST, MIGRATIONS, OLDEST as _OLDEST, ROOM as _ROOM, SEQ as _SEQ, SINCE as _SINCE,
)
from chatroom.model.search import PAGE, Query, SearchCursor, SearchPage, run as run_search
from chatroom.model.store import close_store, migrate, open_store, transaction

__all__ = ["KINDS", "MAX_FETCH", "Entry", "History", "RoomRecord"]

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


@dataclass(frozen=True)
class RoomRecord:
    """A room's persistent record.

    ``name`` canonical (``"#design"``); ``topic`` ("" for none); ``topic_by``
    the nick that set it ("" for none); ``topic_at`` when, Unix seconds UTC
    (0.0 for never); ``created`` when the room was first saved, Unix seconds UTC.
    """

    name: str
    topic: str = ""
    topic_by: str = ""
    topic_at: float = 0.0
    created: float = 0.0


_MAX_ID = 2**63 - 1  # SQLite's largest integer


def _check(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in {low}..{high}, not {value!r}")


class History:
    """Room history and room records in the SQLite file at *path*.

    Opens (creating file and folder if needed) with
    :func:`chatroom.model.store.open_store`, brings the schema up to date with
    :func:`chatroom.model.store.migrate`, then loads each room's next id and every
    room record into memory. *clock* gives timestamps (Unix seconds UTC, as
    :func:`time.time`); tests pass a fake one.

    Raises ``sqlite3.Error`` if the file is not a database,
    :class:`chatroom.model.store.MigrationError` if its schema is newer than this
    module's, ``OSError`` if the folder cannot be created.

    Use from the server's loop thread only (the thread that created it).
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._conn = open_store(self.path, check_same_thread=False)  # built on one thread, used on the loop's
        try:
            migrate(self._conn, MIGRATIONS)
            #: room -> next id to assign (last assigned + 1, buffered included).
            self._next: dict[str, int] = {}
            #: room -> its floor: lines with id <= floor are a dropped room's (hidden, being deleted).
            self._floor: dict[str, int] = {}
            for room, last, floor in self._conn.execute("SELECT room, last_id, floor FROM history_seq"):
                self._next[room] = last + 1
                if floor:
                    self._floor[room] = floor
            row = self._conn.execute("SELECT value FROM history_meta WHERE key = 'dropped_max'").fetchone()
            #: The highest id any fully deleted room had: a room without a counter starts above it.
            self._dropped_max = int(row[0]) if row else 0
            self._rooms: dict[str, RoomRecord] = {
                row[0]: RoomRecord(*row)
                for row in self._conn.execute("SELECT name, topic, topic_by, topic_at, created FROM rooms")
            }
        except BaseException:
            close_store(self._conn)
            raise
        self._buffer: list[Entry] = []
        self._dirty_rooms: set[str] = set()
        self._prune_from = ""  # room name where the next prune() pass resumes
        self._closed = False

    # -- writing ---------------------------------------------------------------------
    def append(self, room: str, kind: str, nick: str, text: str, account: str | None = None) -> Entry:
        """Assign *room*'s next id and the clock's time to a line; buffer it; return it.

        Memory only (no SQL): :meth:`commit` writes it. *kind* is one of
        :data:`KINDS` (ValueError otherwise); *room*, *nick*, *text* are
        ``str`` and *account* ``str`` or None (TypeError otherwise, so a bad
        entry never reaches the buffer and blocks every later commit). The
        room needs no record (:meth:`save_room`) to have history. About 0.6
        microseconds (``bench/history.py``).
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
        if not (
            isinstance(room, str) and isinstance(nick, str) and isinstance(text, str)
            and (account is None or isinstance(account, str))
        ):
            raise TypeError("room, nick and text must be str, account str or None")
        next_ids = self._next
        entry_id = next_ids.get(room) or self._dropped_max + 1
        next_ids[room] = entry_id + 1
        entry = Entry(room, entry_id, self._clock(), kind, nick, account, text)
        self._buffer.append(entry)
        return entry

    def commit(self) -> int:
        """Write every buffered entry and changed room record in ONE transaction.

        Returns how many entries were written (0 when nothing was buffered; an
        empty call touches no SQL unless a room record changed). Durable
        against a process kill once it returns. On ``sqlite3.Error`` (disk
        full, I/O error) the transaction is rolled back, the buffer is kept
        (a later call retries) and the error is re-raised.
        """
        buffer = self._buffer
        if not buffer and not self._dirty_rooms:
            return 0
        last: dict[str, int] = {}
        for entry in buffer:
            last[entry.room] = entry.id  # ids increase within a room: the last one wins
        records = [self._rooms[name] for name in self._dirty_rooms]
        with transaction(self._conn):
            if buffer:
                self._conn.executemany(_INSERT, buffer)
                self._conn.executemany(_SEQ, last.items())
            if records:
                self._conn.executemany(
                    _ROOM, [(r.name, r.topic, r.topic_by, r.topic_at, r.created) for r in records]
                )
        count = len(buffer)
        self._buffer = []
        self._dirty_rooms.clear()
        return count

    @property
    def pending(self) -> int:
        """How many entries are buffered, not yet committed."""
        return len(self._buffer)

    # -- reading ---------------------------------------------------------------------
    def _buffered(self, room: str) -> list[Entry]:
        floor = self._floor.get(room, 0)
        return [e for e in self._buffer if e.room == room and e.id > floor]

    def last(self, room: str, n: int) -> list[Entry]:
        """The *n* newest entries of *room* (fewer if it has fewer), oldest first.

        Buffered entries included. ValueError unless 1 <= n <= :data:`MAX_FETCH`.
        """
        _check("n", n, 1, MAX_FETCH)
        pending = self._buffered(room)
        if len(pending) >= n:
            return pending[len(pending) - n:]
        rows = self._conn.execute(_LAST, (room, self._floor.get(room, 0), n - len(pending))).fetchall()
        rows.reverse()
        return [Entry._make(r) for r in rows] + pending

    def since(self, room: str, after_id: int, limit: int) -> list[Entry]:
        """Up to *limit* entries of *room* with ``id > after_id``, oldest first.

        What a client that last saw *after_id* missed: if the answer is
        *limit* long, ask again with the last id. Entries deleted by
        retention are simply absent (compare the first id with
        ``after_id + 1`` to tell). Buffered entries included.
        ValueError unless 1 <= limit <= :data:`MAX_FETCH` and 0 <= after_id < 2**63.
        """
        _check("limit", limit, 1, MAX_FETCH)
        _check("after_id", after_id, 0, _MAX_ID)
        low = max(after_id, self._floor.get(room, 0))
        out = [Entry._make(r) for r in self._conn.execute(_SINCE, (room, low, limit)).fetchall()]
        if len(out) < limit:
            out += [e for e in self._buffered(room) if e.id > after_id][: limit - len(out)]
        return out

    def before(self, room: str, before_id: int, n: int) -> list[Entry]:
        """The *n* entries of *room* just older than *before_id* (``id < before_id``), oldest first.

        For "load older" scrollback: pass the oldest id the reader has.
        Buffered entries included. ValueError unless 1 <= n <= :data:`MAX_FETCH`
        and 0 <= before_id < 2**63.
        """
        _check("n", n, 1, MAX_FETCH)
        _check("before_id", before_id, 0, _MAX_ID)
        pending = [e for e in self._buffered(room) if e.id < before_id]
        if len(pending) >= n:
            return pending[len(pending) - n:]
        rows = self._conn.execute(_BEFORE, (room, before_id, self._floor.get(room, 0), n - len(pending))).fetchall()
        rows.reverse()
        return [Entry._make(r) for r in rows] + pending

    def latest_id(self, room: str) -> int:
        """The last id assigned in *room* (buffered included), 0 if none ever was.

        Still the last assigned id after retention deleted the lines (or :meth:`drop_room` the room).
        """
        return self._next.get(room, 1) - 1

    def has_lines(self, room: str) -> bool:
        """True if a line was stored in *room* since it was last dropped (:meth:`drop_room`), pruned or not."""
        return self.latest_id(room) > self._floor.get(room, 0)

    def search(self, start: Query | SearchCursor, rooms: Iterable[str], *, limit: int = PAGE) -> SearchPage:
        """:func:`chatroom.model.search.run` over *rooms* (readable ones), their floors and uncommitted lines applied."""
        floors = {room: self._floor.get(room, 0) for room in rooms}
        return run_search(self._conn, start, floors, [e for e in self._buffer if e.room in floors], Entry._make, limit=limit)

    # -- room records ----------------------------------------------------------------
    def save_room(
        self,
        name: str,
        topic: str = "",
        topic_by: str = "",
        topic_at: float = 0.0,
        created: float | None = None,
    ) -> RoomRecord:
        """Create or overwrite the record of room *name* (stored as given); return it.

        *created* None keeps the stored creation time, or takes the clock's
        time for a new room. Written by the next :meth:`commit` (visible to
        :meth:`room` / :meth:`rooms` at once).
        """
        if created is None:
            old = self._rooms.get(name)
            created = old.created if old is not None else self._clock()
        record = RoomRecord(name, topic, topic_by, float(topic_at), float(created))
        self._rooms[name] = record
        self._dirty_rooms.add(name)
        return record

    def ensure_room(self, name: str) -> RoomRecord:
        """The record of room *name*, created (no topic, created now) if there is none."""
        record = self._rooms.get(name)
        return record if record is not None else self.save_room(name)

    def set_topic(self, name: str, topic: str, by: str, at: float | None = None) -> RoomRecord:
        """Set room *name*'s topic (``""`` clears it), set by nick *by* at *at*
        (Unix seconds UTC; None = the clock's time); creates the record if
        needed; return the new record. Written by the next :meth:`commit`.

        Does not append a ``"topic"`` entry to the history: the caller
        appends one if the change is to be replayed.
        """
        when = self._clock() if at is None else float(at)
        old = self.ensure_room(name)
        return self.save_room(name, topic, by, when, old.created)

    def room(self, name: str) -> RoomRecord | None:
        """Room *name*'s record (saved, committed or not), or None."""
        return self._rooms.get(name)

    def room_rules(self) -> dict[str, str]:
        """Room name -> its moderation rules (JSON text, :class:`chatroom.model.moderation.RoomRules`)."""
        return dict(self._conn.execute("SELECT name, rules FROM rooms WHERE rules != ''"))

    def save_rules(self, name: str, rules: str) -> None:
        """Write room *name*'s rules (JSON text) at once, in their own transaction (rare: moderation)."""
        with transaction(self._conn):
            self._conn.execute("INSERT INTO rooms (name, created, rules) VALUES (?, ?, ?) ON CONFLICT (name) "
                               "DO UPDATE SET rules = excluded.rules", (name, self._clock(), rules))

    def rooms(self) -> list[RoomRecord]:
        """Every room record, sorted by name (uncommitted changes included)."""
        return [self._rooms[name] for name in sorted(self._rooms)]

    def drop_room(self, name: str) -> None:
        """Forget room *name* (:mod:`chatroom.model.rooms`): its record goes now (its own transaction), its
        lines are hidden from every query now and deleted by :meth:`prune`'s bounded steps, then its counter
        goes. Ids are never given again: the name continues its counter, or, once forgotten, starts above
        every id a forgotten room had (``history_meta``): a client catching up by id is never confused."""
        last = self.latest_id(name)
        with transaction(self._conn):  # raises sqlite3.Error (nothing changed) when the store fails
            self._conn.execute("DELETE FROM rooms WHERE name = ?", (name,))
            if last:
                self._conn.execute(_FLOOR, (name, last, last))
        self._rooms.pop(name, None)
        self._dirty_rooms.discard(name)
        if last:
            self._floor[name] = last

    # -- retention -------------------------------------------------------------------
    def prune(self, keep_lines: int | None, keep_days: float | None, max_rows: int = 2000) -> bool:
        """Delete old history in one bounded step; True if there may be more to delete.

        Per room keeps at most *keep_lines* newest lines (counting buffered
        ones) and nothing older than *keep_days* days (by the clock); None
        disables that limit. Deletion goes oldest id first and stops at the
        first line both limits keep, so with a clock that stepped back a few
        old lines may wait behind a newer one until it ages too. A dropped
        room's lines (:meth:`drop_room`) all go.

        One call deletes at most *max_rows* rows and looks at most at
        *max_rows* rooms (one transaction), resuming at the room where the
        previous call stopped, so its cost is bounded whatever the size of the
        history. Call it again (from a timer) while it returns True; False
        means every room was found within its limits (until new lines come).
        Id counters are kept (a dropped room's folds into ``dropped_max``):
        ids are never reused. ValueError for a negative limit or ``max_rows < 1``.
        """
        if keep_lines is not None and (not isinstance(keep_lines, int) or keep_lines < 0):
            raise ValueError(f"keep_lines must be None or an int >= 0, not {keep_lines!r}")
        if keep_days is not None and not keep_days >= 0:
            raise ValueError(f"keep_days must be None or >= 0, not {keep_days!r}")
        if not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"max_rows must be an int >= 1, not {max_rows!r}")
        if keep_lines is None and keep_days is None and not self._floor:
            return False
        age_cut = self._clock() - keep_days * 86400.0 if keep_days is not None else None
        gone: list[str] = []  # dropped rooms whose lines are all deleted: their counters go after the commit
        with transaction(self._conn):
            more = self._prune_step(keep_lines, age_cut, max_rows, gone)
        for room in gone:
            self._dropped_max = max(self._dropped_max, self._next.pop(room) - 1)
            del self._floor[room]
        return more

    def _prune_step(self, keep_lines: int | None, age_cut: float | None, max_rows: int, gone: list[str]) -> bool:
        # A round walks the rooms in name order, over as many calls as it takes;
        # a call resumes at the room where the previous one stopped.
        rooms = sorted(self._next)
        budget = max_rows
        visited = 0
        for room in rooms[bisect.bisect_left(rooms, self._prune_from):]:
            if visited >= max_rows:
                self._prune_from = room
                return True
            visited += 1
            last, floor = self._next[room] - 1, self._floor.get(room, 0)
            id_cut = max(last - keep_lines if keep_lines is not None else 0, floor)
            upto = 0
            taken = 0
            # Lazily: only the rows that go, plus the first one that stays, are read.
            cursor = self._conn.execute(_OLDEST, (room, budget))
            for row_id, ts in cursor:
                if row_id <= id_cut or (age_cut is not None and ts < age_cut):
                    upto = row_id
                    taken += 1
                else:
                    break
            cursor.close()
            if taken:
                self._conn.execute(_DELETE_TO, (room, upto))
                budget -= taken
                if budget <= 0:  # this room may have more: resume with it
                    self._prune_from = room
                    return True
            if floor == last and room not in self._rooms and not any(e.room == room for e in self._buffer):
                self._conn.execute("DELETE FROM history_seq WHERE room = ?", (room,))  # dropped, and all gone
                self._conn.execute(_DROPPED_MAX, (last,))
                gone.append(room)
        self._prune_from = ""  # round complete: every room is within its limits
        return False

    # -- life cycle ------------------------------------------------------------------
    def close(self) -> None:
        """Commit what is buffered, then close the database
        (:func:`chatroom.model.store.close_store`: checkpoint the WAL). A second call
        does nothing. If the final commit raises, the database is closed
        anyway and the error re-raised (the buffered entries are lost).
        """
        if self._closed:
            return
        self._closed = True
        try:
            self.commit()
        finally:
            close_store(self._conn)

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

