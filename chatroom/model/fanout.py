"""The fan-out: what is said in a loop pass, delivered to the members of its rooms at the pass's end.

The hot path. What is said in a room during a pass is appended to the room's ``pending`` list
(:meth:`FanOut.pend`); :meth:`FanOut.flush` then encodes each room's batch once per wire variant present
among its members (the line protocol has four: with or without message tags, current room or another one)
and hands every member one buffer; a member who spoke in the pass gets the batch without its own lines.
Anything sent straight to one member first fans out the rooms it is in (:meth:`FanOut.flush_for`), so one
sender's lines always arrive in order. With a ``bus`` (scale-out) a room's pass goes to it instead, and comes
back numbered through :meth:`FanOut.deliver_batch`.

The :class:`~chatroom.model.hub.Hub` owns one (``hub.fanout``). No sockets, no loop, no plugins: members are
reached only through :meth:`Member.deliver <chatroom.model.member.Member.deliver>`. Loop thread only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from chatroom.model.batch import without
from chatroom.model.history import Entry
from chatroom.model.member import Member
from chatroom.model.notice import Event, Notice, plain
from chatroom.model.room import Room
from chatroom.model.wires import Wires
from chatroom.wire.render import STRUCTURED

__all__ = ["FLUSH_ROUNDS", "FanOut"]

#: Rounds of fan-out per :meth:`FanOut.flush` (events added while reporting deliveries get more rounds).
FLUSH_ROUNDS = 8


class FanOut:
    """The rooms with events waiting in this pass, and their delivery through *wires*' encoders.

    *author* finds the member of a sender id (None once it is gone), for :attr:`on_delivered`.
    """

    def __init__(self, wires: Wires, author: Callable[[int], Member | None]) -> None:
        self.wires = wires
        self.encoders = wires.encoders  # (bound once: read per member on the hot path)
        self._author = author
        #: ``on_delivered(room, entry, author, recipients)``, called after each pass's fan-out for every event
        #: queued (author: the Member or None; recipients: how many got it); None: nothing is reported.
        self.on_delivered: Callable[[Room, Entry, Member | None, int], None] | None = None
        #: Scale-out (docs/architecture.md, "The shared-state seam"): ``bus(room, events)`` takes each room's pass
        #: instead of the fan-out (it comes back, numbered, through :meth:`deliver_batch`). None: one process.
        self.bus: Callable[[Room, list[tuple[int, Event]]], None] | None = None
        self._delivered: list[tuple[Room, Entry, Member | None, int]] = []
        self._pending: list[Room] = []

    def pend(self, room: Room, sender: int, entry: Event) -> None:
        """Queue *entry* in *room* for this pass's fan-out; *sender*: the speaker's member id, else 0."""
        if not room.pending:
            self._pending.append(room)
        room.pending.append((sender, entry))

    def flush(self) -> None:
        """Fan out every room's pending events (end of the loop pass), rooms in the order they were
        first spoken in, so a reader of several rooms gets one speaker's lines in order; then report them
        to :attr:`on_delivered`. Events that report adds are fanned out too, for at most
        :data:`FLUSH_ROUNDS` rounds (the rest waits for the next pass)."""
        for _ in range(FLUSH_ROUNDS):
            if not self._pending and not self._delivered:
                return
            rooms, self._pending = self._pending, []
            for room in rooms:
                if room.pending:
                    self.fan_out(room)
            if self._delivered and self.on_delivered is not None:
                delivered, self._delivered = self._delivered, []
                for event in delivered:
                    self.on_delivered(*event)

    def flush_for(self, member: Member) -> None:
        """Fan out the pending events of *member*'s rooms, before something is sent to it directly."""
        if self._pending:
            rooms = member.rooms
            for room in self._pending:  # in the order they were spoken in; only the pending ones
                if room.pending and rooms.get(room.name) is room:
                    self.fan_out(room)

    def send(self, member: Member, entry: Event, *, history: bool = False) -> None:
        """Deliver one event to *member* alone (after its rooms' pending events)."""
        self.flush_for(member)
        room = member.rooms.get(entry.room)
        encode = self.encoders[member.wire_index]
        member.deliver(encode(entry, member.tagged, room is None or room is member.room, history))

    def replay(self, member: Member, entries: Iterable[Entry]) -> int:
        """Deliver history *entries* to *member*, marked as history; returns how many."""
        self.flush_for(member)
        encode = self.encoders[member.wire_index]
        current = member.room.name if member.room else ""
        lines = [encode(e, member.tagged, e.room == current, True) for e in entries]
        if lines:
            member.deliver(b"".join(lines))
        return len(lines)

    def fan_out(self, room: Room) -> None:
        """*room*'s pending events go now: to the bus if there is one, else to its members."""
        pending, room.pending = room.pending, []
        if self.bus is not None:
            self.bus(room, pending)
        else:
            self.deliver_batch(room, pending)

    def deliver_batch(self, room: Room, pending: list[tuple[int, Event]]) -> None:
        """Fan out *pending* (``(sender id or 0, event)``) to *room*'s members: each variant encoded once."""
        if self.on_delivered is not None:
            members = room.members
            count = len(members)
            self._delivered += [(room, plain(e), self._author(s), count - (s in members)) for s, e in pending
                                if not (e.kind in STRUCTURED and isinstance(e, Notice) and e.quiet)]
        spoken: dict[int, list[int]] = {}  # sender id -> the positions of its events in the batch
        for i, (sender, _) in enumerate(pending):  # (0, no sender, is never a member's id)
            if (own := spoken.get(sender)) is not None:  # (not setdefault: no list made and dropped per event)
                own.append(i)
            else:
                spoken[sender] = [i]
        encoded: dict[int, list[bytes]] = {}  # variant -> each event encoded once
        batches: dict[int, bytes] = {}  # variant -> the whole batch, joined once
        bounds: dict[int, list[int]] = {}  # variant -> where each event's bytes start in the batch, and the end
        encoders, variants = self.encoders, self.wires.variants
        for member in room.members.values():
            # one encoding per (wire format, tags or not, current room or not) present in the room;
            # a wire registered without variants has one encoding for all its members
            wire = member.wire_index
            key = (wire << 10) | (member.tagged << 1) | (member.room is not room) if variants[wire] else wire << 10
            data = batches.get(key)
            if data is None:
                encode = encoders[wire]
                lines = encoded[key] = [encode(e, (key >> 1) & 0x1FF, not key & 1, False) for _, e in pending]
                data = batches[key] = b"".join(lines)
            own = spoken.get(member.id)
            if own is not None and not (self.bus and member.echoed):  # a speaker: the slices between its own lines
                where = bounds.get(key) or bounds.setdefault(key, list(itertools.accumulate(map(len, encoded[key]), initial=0)))
                data = without(data, where, own)
            if data:
                member.deliver(data)
