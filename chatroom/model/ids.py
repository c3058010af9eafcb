"""The id counters of the room history: per room, ids only increase and are never given twice.

:class:`RoomIds` is the one place that rule lives (docs/protocol.md, "History" and "Durability"):

- a room's next id is one above the last it gave (``History.append`` asks :meth:`RoomIds.assign`);
- a dropped room (``History.drop_room``) gets a **floor**: its lines at or below it are hidden at once and
  deleted by retention, while its name keeps counting above it;
- once a dropped room's lines are all deleted its counter is **forgotten**, folded into ``dropped_max``: a
  room that has no counter starts above every id a forgotten room had;
- the saved counters run ahead of what is committed (``chatroom.model.pending.write_batch``'s reserve), so
  ids handed out but lost in a crash are not given again either (not when the ids come from elsewhere,
  ``History.put``: Redis keeps them unique, and a node must resume right after its last stored line).

Memory only (the history loads it from ``history_seq`` and ``history_meta``); loop thread only.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["RoomIds"]


class RoomIds:
    """Counters loaded from ``(room, last_id, floor)`` rows and the saved ``dropped_max``."""

    def __init__(self, rows: Iterable[tuple[str, int, int]], dropped_max: int = 0) -> None:
        #: room -> next id to give (last given + 1).
        self.next: dict[str, int] = {}
        #: room -> its floor: lines with id <= floor are a dropped room's (hidden, being deleted).
        self.floor: dict[str, int] = {}
        #: The highest id any forgotten room had: a room without a counter starts above it.
        self.dropped_max = dropped_max
        for room, last, floor in rows:
            self.next[room] = last + 1
            if floor:
                self.floor[room] = floor

    def assign(self, room: str) -> int:
        """The next id of *room*, now taken."""
        entry_id = self.next.get(room) or self.dropped_max + 1
        self.next[room] = entry_id + 1
        return entry_id

    def take(self, room: str, entry_id: int) -> bool:
        """Take *entry_id*, given elsewhere (scale-out: by Redis), if it is above *room*'s last; False: a duplicate."""
        if entry_id < (self.next.get(room) or self.dropped_max + 1):
            return False
        self.next[room] = entry_id + 1
        return True

    def latest(self, room: str) -> int:
        """The last id given in *room*, 0 if none ever was (since it was forgotten)."""
        return self.next.get(room, 1) - 1

    def floor_of(self, room: str) -> int:
        """Ids at or below this are a dropped room's lines (0: none)."""
        return self.floor.get(room, 0)

    def drop(self, room: str) -> int:
        """*room* is dropped: its lines so far go below a floor; returns its last id (0: it has none)."""
        last = self.latest(room)
        if last:
            self.floor[room] = last
        return last

    def last_ids(self) -> dict[str, int]:
        """Room -> last id given (a snapshot, for the writer thread)."""
        return {room: nxt - 1 for room, nxt in self.next.items()}

    def forgettable(self, last_ids: dict[str, int], keep: Iterable[str]) -> set[str]:
        """Dropped rooms that gave no id since they were dropped and are not in *keep*."""
        kept = set(keep)
        return {room for room, floor in self.floor.items() if floor == last_ids.get(room) and room not in kept}

    def forget(self, room: str, last: int) -> None:
        """Retention deleted dropped *room*'s lines: forget its counter, unless it gave an id after *last*."""
        if self.latest(room) == last:
            self.dropped_max = max(self.dropped_max, self.next.pop(room) - 1)
            self.floor.pop(room, None)
