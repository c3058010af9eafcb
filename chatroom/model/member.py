"""A member: one presence in the rooms, reached through a small delivery interface.

The room model never knows which wire a member speaks or how its bytes
travel. A transport (floor 3) subclasses :class:`Member` and implements
:meth:`Member.deliver`; the model encodes each event once per wire format
and variant, and hands every recipient the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chatroom.wire.lines import encode_line

__all__ = ["Member"]

_NO_CAPS: frozenset[str] = frozenset()


class Member:
    """One member: ``id`` (``int``, unique per server run), ``nick``, ``account`` (``str`` or None),
    ``room`` (the current :class:`~chatroom.model.room.Room`, or None when in no room), ``rooms``
    (room name -> Room, in join order), ``caps`` (``frozenset[str]`` announced with ``/caps``).

    ``wire`` names the member's wire format (``"text"`` for the line protocol) and
    ``wire_index`` is its place in the hub's encoders (a transport with another
    format registers an encoder with :meth:`chatroom.model.hub.Hub.add_wire`);
    ``tagged`` is 1 when room lines carry message tags (``/caps tags``), else 0.
    ``capture`` belongs to the command layer (input taken by a plugin: a
    :class:`chatroom.plugins.context.Capture`, or None); ``gone`` is True once the member
    left the server. ``away`` is the member's away
    message (``""``: here; see :meth:`chatroom.model.hub.Hub.set_away`). ``greeted`` (a class attribute)
    says whether the server greets a new member with a welcome line and puts it in the default room: a door
    whose clients join rooms themselves (IRC) sets it False. Loop thread only.
    """

    __slots__ = ("id", "nick", "account", "room", "rooms", "caps", "tagged", "capture", "gone", "away", "invited",
                 "__weakref__")

    wire = "text"
    #: False for a door whose clients get no welcome line and no automatic join (IRC clients join channels).
    greeted = True
    #: Index of the member's wire format in :attr:`chatroom.model.hub.Hub.encoders` (0: the line protocol).
    wire_index = 0
    #: True when a room's pass that came back through the hub's bus (several servers) gives the member its own
    #: lines too, as stored (IRC's ``echo-message``: the echo carries the ``msgid`` Redis gave the line).
    echoed = False

    def __init__(self, mid: int, nick: str) -> None:
        self.id = mid
        self.nick = nick
        self.account: str | None = None
        self.room: Any = None  # a chatroom.model.room.Room (not imported: the room imports the member)
        self.rooms: dict[str, Any] = {}
        self.caps: frozenset[str] = _NO_CAPS
        self.tagged = 0
        self.capture: Any = None
        self.gone = False
        self.away = ""
        self.invited: set[str] | None = None  # room names this member was invited to (made at the first)

    def invite(self, room: str) -> None:
        """*room* (a room's name) lets this member in once past its key, invite-only and limit rules (not a
        ban): an operator's ``INVITE`` from any door. Used up by :meth:`chatroom.model.hub.Hub.join`."""
        if self.invited is None:
            self.invited = set()
        self.invited.add(room)

    def invited_to(self, room: str) -> bool:
        """True if this member holds an invitation to *room* (a room's name)."""
        return self.invited is not None and room in self.invited

    def add_caps(self, caps: Iterable[str]) -> frozenset[str]:
        """Add capabilities (any case; ``binary``: frames; ``tags``: message tags on room lines, which sets
        ``tagged``) to this member's ``caps``; returns them all."""
        self.caps = frozenset(self.caps) | {c.lower() for c in caps}
        self.tagged = 1 if "tags" in self.caps else 0
        return self.caps

    def deliver(self, data: bytes | memoryview) -> None:
        """Queue already-encoded *data* (in this member's wire format) for the member.

        Implemented by the transport; it charges the bytes to the member's
        output budget (which may drop a member that is too slow) and never blocks.
        """
        raise NotImplementedError

    def joined(self, room: Any) -> None:
        """The hub just put this member in *room* (a :class:`~chatroom.model.room.Room`; the member is in
        ``room.members`` already, nothing of the room's history was sent yet). A wire that shows members and
        topics structurally (the browser's) sends them here; the line protocol does nothing. Called whatever put
        the member there: its own ``/join`` or IRC ``JOIN``, a plugin's ``ctx.join``, the kit."""

    def left(self, room: Any, reason: str) -> None:
        """The hub just took this member out of *room* (it is not in ``room.members`` any more), by any path but a
        kick (whose notice tells it) or its going away: its own ``/part`` or IRC ``PART``, a plugin's ``ctx.part``,
        the scale-out rules. *reason*: the part reason (``""``: none). A wire that keeps channel state on the
        client's side (IRC's ``PART``) tells it here; the line protocol and the browser's ``you`` event do not need
        it."""

    def changed(self) -> None:
        """The hub changed this member's nick, current room or rooms (its account changes with its nick). A wire
        that shows them structurally tells the member here; the line protocol does nothing (replies say it)."""

    def hit(self, entry: Any, line: str) -> None:
        """One search hit for this member (``/search``): *entry*, a stored line
        (:class:`~chatroom.model.history.Entry`), and *line*, what the line protocol shows of it (tags
        included when asked). A wire that shows hits structurally (the browser's) sends its own event."""
        self.deliver(encode_line(line))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id}, {self.nick!r})"
