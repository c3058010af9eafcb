"""The wire formats of one hub's members: an encoder each, and which rooms hold members of a structured one.

A wire format is how a door shows the room model's events (:class:`~chatroom.model.history.Entry` and
:class:`~chatroom.model.notice.Notice`) as bytes: the line protocol is wire 0, each other door (IRC, the
browser's JSON events) registers its own through :meth:`chatroom.model.hub.Hub.add_wire`, and its members carry
the index it got as ``Member.wire_index``. Every wire but the line protocol shows membership structurally (a
member list kept up to date), so it hears joins and leaves even in rooms over the announce limit: the hub asks
:meth:`Wires.structured_in` whether a room has any such member. No sockets; the loop thread only.
"""

from __future__ import annotations

from collections.abc import Callable

from chatroom.model.notice import Event

__all__ = ["Encoder", "Wires"]

#: ``encode(event, tagged, current, history) -> bytes``: *tagged* the member's variant (line protocol: message
#: tags or not), *current* whether the event's room is the member's current room, *history* a replayed event.
Encoder = Callable[[Event, int, bool, bool], bytes]


class Wires:
    """The encoders by ``wire_index`` (*encode*: wire 0, the line protocol), each wire's flags, and per room how
    many of its members speak a wire other than the line protocol."""

    def __init__(self, encode: Encoder) -> None:
        self.encoders: list[Encoder] = [encode]
        self.variants: list[bool] = [True]  # per wire: do tags and the current room change its bytes?
        self.once: list[bool] = [False]  # per wire: are quits and away changes told once, not per room?
        self._structured: dict[str, int] = {}  # room name -> members whose wire is not the line protocol

    def add(self, encode: Encoder, *, variants: bool = True, once: bool = False) -> int:
        """Register another wire format's encoder; returns the ``wire_index`` its members must carry.

        ``variants=False``: its bytes depend neither on message tags nor on the current room (the JSON
        events), so each event is encoded once for all its members and they all share one batch buffer.
        With variants, ``Member.tagged`` is a number (0-255) the wire gives a meaning to (line protocol: 0/1).
        ``once=True``: its members get a co-member's ``"quit"`` and ``"away"`` notices once (IRC's ``QUIT``),
        and its encoder shows parts whose ``cause`` is ``"quit"`` as nothing.
        """
        self.encoders.append(encode)
        self.variants.append(variants)
        self.once.append(once)
        return len(self.encoders) - 1

    def entered(self, room: str, wire: int) -> None:
        """A member of wire *wire* entered the room named *room*."""
        if wire:
            self._structured[room] = self._structured.get(room, 0) + 1

    def left(self, room: str, wire: int) -> None:
        """A member of wire *wire* left the room named *room* (one it had entered)."""
        if wire:
            if count := self._structured.get(room, 1) - 1:
                self._structured[room] = count
            else:
                self._structured.pop(room, None)

    def structured_in(self, room: str) -> int:
        """How many members of the room named *room* speak a wire other than the line protocol."""
        return self._structured.get(room, 0)
