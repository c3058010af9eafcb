"""One room's delivery order on one node, sans-I/O: batches in, deliveries, fetches and losses out.

Every node delivers a room's lines in Redis's order (the ids ``publish.lua`` gave them). A
:class:`Feed` knows the next id it expects and the room's epoch, and turns what arrives into what to do:

- a batch that starts at the expected id: :class:`Deliver` it;
- a batch that starts later (a subscription dropped by Redis, a message lost): hold it and every later
  one, :class:`Fetch` the missing ids from the room's stream; what the stream no longer has (trimmed by
  retention) is :class:`Lost`; then the held batches go, their lines already delivered dropped;
- a batch of a new epoch (Redis lost the room: restarted empty): :class:`Lost` for the ids this node
  never saw, then the new epoch's lines;
- :meth:`Feed.resync` after this node's subscription came back: fetch everything after the expected
  id, holding what arrives meanwhile (so every line is delivered exactly once).

Unnumbered events (joins, notices: id 0) are never fetched (the stream keeps only lines); one in a
batch is delivered with the batch. Pure logic, unit-tested without Redis (tests/test_scaleout_feed.py);
the node (:mod:`chatroom.scaleout.node`) runs the fetches. Loop thread only.
"""

from __future__ import annotations

from typing import NamedTuple, Union

from chatroom.scaleout.bus import Batch

__all__ = ["FETCH_COUNT", "Deliver", "Feed", "Fetch", "Lost", "Out"]

#: Lines one fetch asks the stream for (``XRANGE ... COUNT``); a longer gap takes several.
FETCH_COUNT = 500


class Deliver(NamedTuple):
    """Deliver ``events`` (``(id, payload)``, id 0 for an unnumbered event) in this order."""

    events: list[tuple[int, bytes]]


class Fetch(NamedTuple):
    """Read the stream from id ``first`` to ``last`` (0: to its end), at most :data:`FETCH_COUNT` lines, and
    hand the answer to :meth:`Feed.fetched`."""

    first: int
    last: int


class Lost(NamedTuple):
    """``lines`` lines (ids ``first`` ..) will never be delivered; ``restarted``: because Redis lost the room."""

    lines: int
    first: int
    restarted: bool = False


Out = Union[Deliver, Fetch, Lost]


class Feed:
    """The order of one room on this node: the next id to deliver is *next_id* (0: unknown, the first batch
    sets it); *epoch* the room's, if known."""

    __slots__ = ("next_id", "epoch", "held", "fetching")

    def __init__(self, next_id: int = 1, epoch: str | None = None) -> None:
        self.next_id = next_id
        self.epoch = epoch
        self.held: list[Batch] = []
        self.fetching: Fetch | None = None

    def receive(self, batch: Batch) -> list[Out]:
        """A published batch arrived."""
        if self.fetching is not None:
            self.held.append(batch)
            return []
        return self._take(batch)

    def _take(self, batch: Batch) -> list[Out]:
        out: list[Out] = []
        if not self.next_id:  # a node that keeps no history starts where it joins
            self.next_id = batch.first
        if self.epoch is not None and batch.epoch != self.epoch:
            if batch.first > self.next_id:
                out.append(Lost(batch.first - self.next_id, self.next_id, True))
            self.next_id = batch.first  # the new epoch's ids are the truth from now on
        self.epoch = batch.epoch
        if batch.first > self.next_id:  # lines this node did not get: fetch them, hold this batch
            self.held.append(batch)
            self.fetching = Fetch(self.next_id, batch.first - 1)
            out.append(self.fetching)
            return out
        events = [(i, p) for i, p in batch.events if i == 0 or i >= self.next_id]
        self.next_id = max(self.next_id, batch.last + 1)
        if events:
            out.append(Deliver(events))
        return out

    def resync(self) -> list[Out]:
        """This node may have missed batches (its subscription was lost): fetch all after :attr:`next_id`."""
        if self.fetching is None and self.next_id:  # (a node without history starts with the next batch)
            self.fetching = Fetch(self.next_id, 0)
            return [self.fetching]
        return []

    def fetched(self, lines: list[tuple[int, bytes]], epoch: str | None = None) -> list[Out]:
        """The stream's answer to the current :class:`Fetch` (``(id, payload)`` ascending, at most
        :data:`FETCH_COUNT`), and the room's epoch read just before it (None: unknown): deliver them, report
        what the stream lacks, go on fetching or release the held batches."""
        want = self.fetching
        if want is None:
            return []
        out: list[Out] = []
        events = []
        # another epoch (in Redis, or of a batch waiting behind this fetch): Redis lost the room, which explains
        # a hole
        new_epoch = None if self.epoch is None else next((b.epoch for b in self.held if b.epoch != self.epoch), None)
        read_new = self.epoch is not None and epoch is not None and epoch != self.epoch
        restarted = new_epoch is not None or read_new
        for line_id, payload in lines:
            if line_id < self.next_id or (want.last and line_id > want.last):
                continue
            if line_id > self.next_id:
                out.append(Lost(line_id - self.next_id, self.next_id, restarted))
            events.append((line_id, payload))
            self.next_id = line_id + 1
        if events:
            out.append(Deliver(events))
        if len(lines) >= FETCH_COUNT and (not want.last or self.next_id <= want.last):
            self.fetching = Fetch(self.next_id, want.last)
            out.append(self.fetching)
            return out
        if want.last and self.next_id <= want.last:  # trimmed away before this node read it
            out.append(Lost(want.last + 1 - self.next_id, self.next_id, restarted))
            self.next_id = want.last + 1
        self.fetching = None
        if new_epoch is None and read_new and events:  # lines of the epoch read: its later batches go on from them
            new_epoch = epoch
        if new_epoch is not None:  # what was fetched is the new epoch's: its batches that wait are the same epoch
            self.epoch = new_epoch
        held, self.held = self.held, []
        for batch in held:
            out += self.receive(batch)
        return out

    def failed(self) -> list[Out]:
        """The current fetch could not be made (Redis unreachable): try it again (the node calls this later)."""
        return [self.fetching] if self.fetching is not None else []
