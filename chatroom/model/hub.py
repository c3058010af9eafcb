"""The hub: every member, nick and room of one server, and what is said in them.

No sockets, no loop, no plugins: a transport registers its connections as
:class:`~chatroom.model.member.Member` objects and the hub reaches them only
through :meth:`Member.deliver`. Everything runs on the loop thread.

What is said in a room during a pass is recorded (the history's batch) and
queued for the fan-out at the pass's end (:mod:`chatroom.model.fanout`, the hot
path: ``hub.fanout``; :meth:`Hub.flush` runs it): each room's batch is encoded
once per wire variant present among its members, and anything sent straight
to one member first fans out the rooms it is in, so one sender's lines always
arrive in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from chatroom.model.errors import Refused
from chatroom.model.fanout import FanOut
from chatroom.model.history import Entry, History
from chatroom.model.member import Member
from chatroom.model.names import room_key
from chatroom.model.nicks import Nicks
from chatroom.model.notice import Event, Notice
from chatroom.model.room import Room
from chatroom.model.rooms import CREATE_BURST, CREATE_EVERY, LINGER, MAX_ROOMS, Rooms
from chatroom.model.wires import Encoder, Wires
from chatroom.wire.render import encode_event

__all__ = ["Hub", "Notice"]


class Hub:
    """The room model of one server.

    *history* keeps the rooms with their topics and records chat, ``/me``
    and topic changes (None, or ``record=False``: nothing is recorded and
    events carry no ids). *default_room* is where every member
    starts. Rooms with more than *announce_limit* members do not announce
    joins and leaves (0: always). *clock* gives Unix seconds for events.
    ``rooms`` holds the rooms and their lifetime (:class:`~chatroom.model.rooms.Rooms`: *max_rooms*,
    *linger*, *create_burst*, *create_every* are its).
    Raises :class:`~chatroom.model.errors.Refused` for a bad default room.
    """

    def __init__(self, history: History | None = None, *, default_room: str = "#lobby",
                 announce_limit: int = 200, clock: Callable[[], float] = time.time, record: bool = True,
                 max_rooms: int = MAX_ROOMS, linger: float = LINGER, create_burst: int = CREATE_BURST,
                 create_every: float = CREATE_EVERY) -> None:
        self.history = history
        self.record = record and history is not None
        self.announce_limit = announce_limit
        self.clock = clock
        self.members: dict[int, Member] = {}
        #: The nick table and its rule (:class:`~chatroom.model.nicks.Nicks`; its ``registered`` looks up accounts).
        self.nicks = Nicks()
        default = room_key(default_room)
        if default is None:
            raise Refused(f"{default_room!r} is not a room name: # and 1-32 of a-z 0-9 _ -")
        self.rooms = Rooms(history, default_room=default, clock=clock, max_rooms=max_rooms, linger=linger,
                           create_burst=create_burst, create_every=create_every)
        #: The wire formats (:class:`~chatroom.model.wires.Wires`); ``encoders`` is theirs, bound here for the
        #: fan-out: ``encode(event, tagged, current, history) -> bytes`` by ``Member.wire_index``.
        self.wires = Wires(self.encode)
        self.encoders = self.wires.encoders
        #: The fan-out of each pass (:class:`~chatroom.model.fanout.FanOut`; its ``on_delivered`` reports what
        #: was delivered, its ``bus`` takes the passes when scaled out: :attr:`bus`).
        self.fanout = FanOut(self.wires, self.members.get)
        #: ``on_membership(member, room, joined, reason)`` once a join (True) or leave (False) was told; None: off.
        self.on_membership: Callable[[Member, Room, bool, str], None] | None = None
        #: Scale-out (docs/architecture.md, "The shared-state seam"): ``observer(kind, member, detail)`` hears
        #: ``"add"``, ``"remove"`` (reason), ``"nick"`` (old nick), ``"away"``, ``"account"``. None: one process.
        self.observer: Callable[[str, Member, str], None] | None = None
        self.default_room = self.rooms.open(default)

    @property
    def bus(self) -> Callable[[Room, list[tuple[int, Event]]], None] | None:
        """Scale-out (docs/architecture.md, "The shared-state seam"): ``bus(room, events)`` takes each room's pass
        instead of the fan-out (it comes back, numbered, through :meth:`deliver_batch`); then a line's id and a
        topic come back with it too. None: one process. ``hub.fanout.bus``, set here."""
        return self.fanout.bus

    @bus.setter
    def bus(self, bus: Callable[[Room, list[tuple[int, Event]]], None] | None) -> None:
        self.fanout.bus = bus

    # -- members ---------------------------------------------------------------------
    def add(self, member: Member) -> None:
        """Register a new *member* under its (guest) nick; it is in no room yet."""
        self.members[member.id] = member
        self.nicks.claim(member)
        if self.observer is not None:
            self.observer("add", member, "")

    def remove(self, member: Member, reason: str) -> None:
        """*member* is gone: it leaves every room (announced as ``* NICK left ROOM (reason)``)."""
        member.gone = True
        self._tell(member, Notice("", 0, self.clock(), "quit", member.nick, member.account,
                                  f"{member.nick} left ({reason})", reason), once=True)
        for room in (left := list(member.rooms.values())):
            self._leave(member, room, f"{member.nick} left {room.label} ({reason})", reason=reason, cause="quit")
        member.room = None
        self.members.pop(member.id, None)
        self.rooms.forget(member)
        self.nicks.release(member)
        if self.on_membership is not None:
            for room in left:
                self.on_membership(member, room, False, reason)
        if self.observer is not None:
            self.observer("remove", member, reason)

    def find(self, nick: str) -> Member | None:
        """The member called *nick* (case-insensitive), or None."""
        return self.nicks.find(nick)

    def rename(self, member: Member, nick: str) -> str:
        """Give *member* the nick *nick*; return the old one. Everyone sharing a room hears it once, by the
        announce rule of joins and leaves (rooms over ``announce_limit``: only structured wires).

        Raises Refused if *nick* is invalid, taken, looks like (same
        confusable skeleton as) another member's nick, or belongs to an
        account *member* is not logged in to (see :attr:`Nicks.registered <chatroom.model.nicks.Nicks.registered>`);
        raises :class:`~chatroom.model.errors.NickRefused` if a ban silences *member* in a room it is in
        (:meth:`Rooms.nick_refusal <chatroom.model.rooms.Rooms.nick_refusal>`).
        """
        reason = self.nick_refusal(nick, member, accounts=True)
        if reason:
            raise Refused(reason)
        if nick != member.nick and (banned := self.rooms.nick_refusal(member)) is not None:
            raise banned
        return self._swap(member, nick)

    def nick_refusal(self, nick: str, member: Member, *, accounts: bool = False) -> str | None:
        """Why *member* may not take *nick*, or None (*accounts*: registered nicks too): every door's nick rule."""
        return self.nicks.refusal(nick, member, accounts=accounts)

    def to_guest(self, member: Member) -> str:
        """Give *member* back its guest nick ``guestN`` (N: its id), reserved to it; return the old nick."""
        return self._swap(member, f"guest{member.id}")

    def renamed(self, member: Member, nick: str) -> str:
        """Give *member* *nick* unchecked (renamed on another node: scale-out); co-members hear it; the old nick."""
        return self._swap(member, nick)

    def _swap(self, member: Member, nick: str) -> str:
        old = member.nick
        self.nicks.release(member)
        member.nick = nick
        self.nicks.claim(member)
        if old != nick:
            self._tell(member, Notice("", 0, self.clock(), "nick", nick, member.account,
                                             f"{old} is now known as {nick}", old))
            if self.observer is not None:
                self.observer("nick", member, old)
        member.changed()
        return old

    def set_account(self, member: Member, account: str | None) -> None:
        """*member* is logged in to *account* from now on (None: to none); with a scale-out, every node hears it
        (a login under the nick one already has changes no nick: the observer is told ``"account"``)."""
        if member.account == account:
            return
        member.account = account
        if self.observer is not None:
            self.observer("account", member, account or "")

    def set_away(self, member: Member, message: str) -> None:
        """Mark *member* away with *message* (``""``: back); co-members of ``once`` wires are told."""
        member.away, text = message, f"{member.nick} is away: {message}" if message else f"{member.nick} is back"
        self._tell(member, Notice("", 0, self.clock(), "away", member.nick, member.account, text, message), once=True)
        if self.observer is not None:
            self.observer("away", member, message)

    def _tell(self, member: Member, entry: Notice, *, once: bool = False) -> None:
        """A roomless notice about *member* once to each co-member: *once* (quit, away) to ``once`` wires only; a
        rename by the announce rule (over the limit, structured wires only: 10,000 renames cost 10,000 replies)."""
        limit, told, encoded = self.announce_limit, {member.id}, {}
        for room in member.rooms.values():
            loud = not once and (not limit or len(room.members) - 1 <= limit)
            if not loud and not self.wires.structured_in(room.name):
                continue
            for other in room.members.values():
                wire = other.wire_index
                if other.id in told or not (self.wires.once[wire] if once else loud or wire):
                    continue
                told.add(other.id)
                self.fanout.flush_for(other)
                key = (wire << 8) | other.tagged  # tagged: the wire's variant number
                if key not in encoded:
                    encoded[key] = self.encoders[wire](entry, other.tagged, True, False)
                if encoded[key]:
                    other.deliver(encoded[key])

    def co_members(self, member: Member) -> list[Member]:
        """Every other member sharing at least one room with *member*, once each."""
        seen: dict[int, Member] = {}
        for room in member.rooms.values():
            for other in room.members.values():
                if other is not member:
                    seen[other.id] = other
        return list(seen.values())

    # -- rooms -----------------------------------------------------------------------
    def room(self, name: str) -> Room | None:
        """The room called *name* (``#x`` or ``x``, any case; a lingering one too), or None (also for an invalid name)."""
        return self.rooms.get(name)

    def open_room(self, name: str, owner: str | None = None, creator: Member | None = None) -> Room:
        """:meth:`chatroom.model.rooms.Rooms.open`: the room *name*, created if new (owned by *owner*, charged
        to *creator*'s creation rate). Raises Refused for an invalid name, a creator too fast, too many rooms."""
        return self.rooms.open(name, owner, creator)

    def save_rules(self, room: Room) -> None:
        """Persist *room*'s moderation rules (``room.rules``) at once."""
        self.rooms.save_rules(room)

    def enter(self, member: Member, name: str, key: str | None = None) -> tuple[Room, bool]:
        """*member* enters the room *name* with *key* (:meth:`Rooms.admit <chatroom.model.rooms.Rooms.admit>`: created
        if new, else under its rules; raises JoinRefused or Refused), which becomes current (:meth:`join`); returns
        ``(room, joined)``, *joined* False if it was in it already. ``/join``, ``ctx.join`` and IRC JOIN all do this."""
        room = self.rooms.admit(member, name, key)
        return room, self.join(member, room)

    def join(self, member: Member, room: Room, *, quiet: bool = False) -> bool:
        """Put *member* in *room* and make it the current room; False if it was in it already.

        The others hear ``* NICK joined ROOM`` unless *quiet* or the room is
        over the announce limit.
        """
        member.room = room
        if room.name in member.rooms:
            member.changed()
            return False
        if room.pending:  # what was said before the join belongs to the members present then
            self.fanout.fan_out(room)
        if not quiet:
            self._membership(room, "join", member, f"{member.nick} joined {room.label}")
        if not room.members and not room.rules.owner and room is not self.default_room:
            room.ops.add(member.id)  # the first member of an unowned room operates it while connected (IRC)
        room.members[member.id] = member
        self.rooms.occupied(room)
        member.rooms[room.name] = room
        if member.invited is not None:  # an invitation lets in once
            member.invited.discard(room.name)
        self.wires.entered(room.name, member.wire_index)
        member.joined(room)
        member.changed()
        if self.on_membership is not None:
            self.on_membership(member, room, True, "")
        return True

    def part(self, member: Member, room: Room, reason: str = "", *, notice: str = "", by: str = "") -> None:
        """Take *member* out of *room* (announced; a *notice*, such as a kick, is told whatever the room's
        size); its current room becomes the last one it joined. *by*: who kicked it (``cause`` ``"kick"``)."""
        was_in = room.members.get(member.id) is member
        entry = self._leave(member, room, notice or f"{member.nick} left {room.label}" + f" ({reason})" * bool(reason),
                            always=bool(notice), reason=reason, cause="kick" * bool(by), by=by)
        if by and entry is not None:  # the one kicked is told too, in its wire's words
            self.send(member, entry)
        elif was_in and not by:
            member.left(room, reason)
        if member.room is room:
            member.room = next(reversed(member.rooms.values()), None)
        member.changed()
        if self.on_membership is not None and was_in:
            self.on_membership(member, room, False, notice or reason)

    def kick(self, member: Member, room: Room, notice: str, *, by: str, reason: str = "") -> None:
        """*by* puts *member* out of *room*: :meth:`part` with *notice*, told whatever the room's size (every door's
        kick). Raises Refused (``NICK was not kicked: ...``) when the member cannot be reached now (of another
        server while Redis is unavailable: :meth:`Member.unreachable <chatroom.model.member.Member.unreachable>`):
        a kick that its node never hears would be undone, unsaid, when Redis is back."""
        why = member.unreachable()
        if why is not None:
            raise Refused(f"{member.nick} was not kicked from {room.label}: {why}; try again")
        self.part(member, room, reason, notice=notice, by=by)

    def _leave(self, member: Member, room: Room, text: str, always: bool = False, reason: str = "",
               cause: str = "", by: str = "") -> Notice | None:
        if room.pending:
            self.fanout.fan_out(room)
        room.ops.discard(member.id)
        room.voices.discard(member.id)
        if room.members.pop(member.id, None) is not None:
            self.wires.left(room.name, member.wire_index)
        member.rooms.pop(room.name, None)
        entry = self._membership(room, "part", member, text, reason=reason, always=always, cause=cause, by=by)
        if not room.members:
            self.rooms.vacated(room)
        return entry

    def _membership(self, room: Room, kind: str, member: Member, text: str, *, reason: str = "",
                    always: bool = False, cause: str = "", by: str = "") -> Notice | None:
        """Tell *room* that *member* joined or left (*kind*): a notice to everyone (but a joiner), or, over the
        announce limit, only to members whose wire shows members structurally, if there are any; returns it."""
        quiet = not (always or not self.announce_limit or len(room.members) <= self.announce_limit)
        if quiet and not self.wires.structured_in(room.name) and self.fanout.bus is None:  # other nodes keep presence by it
            return None
        self.fanout.pend(room, member.id if kind == "join" else 0, entry := Notice(
            room.name, 0, self.clock(), kind, member.nick, member.account, text, reason, quiet, by, cause))
        return entry

    # -- what is said ----------------------------------------------------------------------
    def say(self, member: Member, room: Room, text: str, kind: str = "msg") -> Entry:
        """Record (in the history) and fan out *text* said by *member* in *room*; returns the event.

        *kind* is ``"msg"`` or ``"me"``. The fan-out happens at :meth:`flush`.
        """
        entry = self._record(room, kind, member, text)
        self.fanout.pend(room, member.id, entry)
        return entry

    def set_topic(self, member: Member, room: Room, text: str) -> Entry:
        """Set *room*'s topic (``""`` clears it), persist it and tell the room (the setter too). With a bus, the
        topic changes when the event comes back from it (never on this server alone)."""
        entry = self._record(room, "topic", member, text)
        if self.fanout.bus is None:
            room.topic, room.topic_by, room.topic_at = text, member.nick, entry.ts
            if self.history is not None:
                self.history.records.set_topic(room.name, text, member.nick, entry.ts)
        self.fanout.pend(room, 0, entry)
        return entry

    def mode(self, room: Room, by: Member | None, change: str, text: str) -> None:
        """*by* (None: the server) changed *room*'s rules: they are persisted (:meth:`save_rules`), then the room is
        told: the mode *change* (``"+o bob"``) as a ``"mode"`` notice; else the plain ``* text``. Every door's way."""
        self.save_rules(room)
        if by is None or not change:
            return self.notice(room, text)
        self.fanout.pend(room, 0, Notice(room.name, 0, self.clock(), "mode", by.nick, by.account, text, change, by=by.nick))

    def notice(self, room: Room, text: str, exclude: Member | None = None) -> None:
        """Tell *room* ``* text`` (not recorded)."""
        self.fanout.pend(room, exclude.id if exclude is not None else 0, Entry(room.name, 0, self.clock(), "notice", "", None, text))

    def post(self, room: Room, text: str, exclude: Member | None = None) -> None:
        """Send the line *text*, as it is, to everyone in *room* but *exclude* (a plugin's broadcast; not recorded)."""
        self.fanout.pend(room, exclude.id if exclude is not None else 0, Entry(room.name, 0, self.clock(), "raw", "", None, text))

    def _record(self, room: Room, kind: str, member: Member, text: str) -> Entry:
        if self.record and self.history is not None and self.fanout.bus is None:  # a bus: the id comes back with the line
            return self.history.append(room.name, kind, member.nick, text, member.account)
        return Entry(room.name, 0, self.clock(), kind, member.nick, member.account, text)

    def private(self, nick: str, account: str | None, target: Member, text: str, *, notice: bool = False) -> None:
        """A private line (``/msg``; *notice*: an IRC NOTICE) from *nick* (of *account*, or None) to *target* alone.
        Raises Refused (``not delivered to NICK: ...``) when *target* cannot be reached now (a member of another
        node while Redis is unavailable: :meth:`chatroom.scaleout.direct.DirectLines.forward`)."""
        self.send(target, Notice("", 0, self.clock(), "private", nick, account, text, target.nick, cause="notice" * notice))

    # -- output (hub.fanout) ---------------------------------------------------------------
    def flush(self) -> None:
        """Fan out every room's pending events (end of the loop pass): :meth:`FanOut.flush
        <chatroom.model.fanout.FanOut.flush>`."""
        self.fanout.flush()

    def flush_for(self, member: Member) -> None:
        """Fan out the pending events of *member*'s rooms, before something is sent to it directly."""
        self.fanout.flush_for(member)

    def send(self, member: Member, entry: Event, *, history: bool = False) -> None:
        """Deliver one event to *member* alone (after its rooms' pending events)."""
        self.fanout.send(member, entry, history=history)

    def replay(self, member: Member, entries: Iterable[Entry]) -> int:
        """Deliver history *entries* to *member*, marked as history; returns how many."""
        return self.fanout.replay(member, entries)

    def deliver_batch(self, room: Room, pending: list[tuple[int, Event]]) -> None:
        """Fan out *pending* (``(sender id or 0, event)``, a pass back from the bus) to *room*'s members."""
        self.fanout.deliver_batch(room, pending)

    def add_wire(self, encode: Encoder, *, variants: bool = True, once: bool = False) -> int:
        """Register another wire format's encoder; returns the ``wire_index`` its members must carry
        (:meth:`chatroom.model.wires.Wires.add`: what *variants* and *once* mean)."""
        return self.wires.add(encode, variants=variants, once=once)

    #: One event as a line of the line protocol (:func:`chatroom.wire.render.encode_event`).
    encode = staticmethod(encode_event)
