"""Room records: what a room is besides its lines, kept so rooms (empty ones too) survive a restart.

A :class:`RoomRecord` is a room's name, topic, who set the topic and when, and its creation time; a room's
moderation rules (JSON text, :class:`chatroom.model.moderation.RoomRules`) are kept beside it. Both live in
the ``rooms`` table of the history's file (:mod:`chatroom.model.history`). :class:`RoomRecords` holds every
record in memory, changes them there at once (visible to every reader in the same pass), and remembers which
changed, until :class:`~chatroom.model.history.History` hands them to its writer thread with the pass's lines
(:meth:`RoomRecords.changes`): the loop writes no SQL and never waits for the disk.

Threading: the server's loop thread only. Standard library and :mod:`chatroom.model` only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RoomRecord", "RoomRecords"]


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


class RoomRecords:
    """Every room record of the history file read through *conn* (the history's reading connection: this
    object only reads through it, at start-up and in :meth:`room_rules`), and the changes not handed to the
    writer yet. *clock* gives Unix seconds UTC (creation times, the rules' save times)."""

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], float]) -> None:
        self._conn = conn
        self._clock = clock
        self._rooms: dict[str, RoomRecord] = {
            row[0]: RoomRecord(*row) for row in conn.execute("SELECT name, topic, topic_by, topic_at, created FROM rooms")}
        self._dirty: set[str] = set()
        self._rules: dict[str, tuple[str, float, str]] = {}  # room -> (name, created, rules) not submitted yet
        # (created: when they were saved, the row's creation time should it be new)
        #: Counts the changes of a room's state (record and topic, rules, a dropped room; not the lines said):
        #: a caller compares two readings to learn whether what it did must be committed before it is
        #: acknowledged (:meth:`History.when_saved <chatroom.model.history.History.when_saved>`).
        self.version = 0

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
        time for a new room. Handed to the writer by the history's next ``submit()`` (visible to
        :meth:`room` / :meth:`rooms` at once).
        """
        if created is None:
            old = self._rooms.get(name)
            created = old.created if old is not None else self._clock()
        record = RoomRecord(name, topic, topic_by, float(topic_at), float(created))
        self._rooms[name] = record
        self._dirty.add(name)
        self.version += 1
        return record

    def ensure_room(self, name: str) -> RoomRecord:
        """The record of room *name*, created (no topic, created now) if there is none."""
        record = self._rooms.get(name)
        return record if record is not None else self.save_room(name)

    def set_topic(self, name: str, topic: str, by: str, at: float | None = None) -> RoomRecord:
        """Set room *name*'s topic (``""`` clears it), set by nick *by* at *at*
        (Unix seconds UTC; None = the clock's time); creates the record if
        needed; return the new record. Handed to the writer by the history's next ``submit()``.

        Does not append a ``"topic"`` entry to the history: the caller
        appends one if the change is to be replayed.
        """
        when = self._clock() if at is None else float(at)
        old = self.ensure_room(name)
        return self.save_room(name, topic, by, when, old.created)

    def room(self, name: str) -> RoomRecord | None:
        """Room *name*'s record (saved, committed or not), or None."""
        return self._rooms.get(name)

    def rooms(self) -> list[RoomRecord]:
        """Every room record, sorted by name (uncommitted changes included)."""
        return [self._rooms[name] for name in sorted(self._rooms)]

    def names(self) -> list[str]:
        """The names of every room with a record (uncommitted ones included), unsorted."""
        return list(self._rooms)

    def room_rules(self) -> dict[str, str]:
        """Room name -> its moderation rules (JSON text, :class:`chatroom.model.moderation.RoomRules`),
        saved ones and those not committed yet."""
        rules = dict(self._conn.execute("SELECT name, rules FROM rooms WHERE rules != ''"))
        rules.update((name, text) for name, _, text in self._rules.values() if text)
        return rules

    def save_rules(self, name: str, rules: str) -> None:
        """Save room *name*'s rules (JSON text): handed to the writer by the history's next ``submit()``, in
        order with the lines (committed within the same few milliseconds as a chat line)."""
        self._rules[name] = (name, self._clock(), rules)
        self.version += 1

    def drop(self, name: str) -> None:
        """Forget room *name*'s record and unsaved rules (the history deletes the stored ones:
        :meth:`History.drop_room <chatroom.model.history.History.drop_room>`)."""
        self._rooms.pop(name, None)
        self._dirty.discard(name)
        self._rules.pop(name, None)
        self.version += 1

    def changes(self) -> tuple[list[RoomRecord], list[tuple[str, float, str]]]:
        """The records and the rules (``(name, created, JSON text)``, *created* the time they were saved, the
        row's creation time should it be new) changed since the last call, for the writer; forgotten here."""
        records = [self._rooms[name] for name in self._dirty if name in self._rooms]
        rules = list(self._rules.values())
        self._dirty.clear()
        self._rules.clear()
        return records, rules
