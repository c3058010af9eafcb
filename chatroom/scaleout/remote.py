"""Another node's member as this node's room model holds it (with ``--redis``: docs/scale-out.md, "Presence").

A :class:`RemoteMember` sits in ``hub.members``, ``hub.nicks`` and rooms' ``members`` like a local member,
so ``/who``, NAMES, counts, nick uniqueness and ``/msg`` work unchanged on every door; its wire
(:func:`encode_remote`) encodes room lines as nothing (its own node delivers them) and a private line as the
event, and whatever is sent to it directly goes to its node (:meth:`chatroom.scaleout.direct.DirectLines.forward`).
Loop thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from chatroom.model.member import Member
from chatroom.scaleout.events import encode
from chatroom.wire.lines import encode_line

if TYPE_CHECKING:
    from chatroom.model.notice import Event

__all__ = ["Forwarder", "RemoteMember", "encode_remote"]


class Forwarder(Protocol):
    """What a mirror needs to reach its node (:class:`chatroom.scaleout.direct.DirectLines`)."""

    wire: int  # the hub's wire index of mirrors

    def forward(self, remote: RemoteMember, data: bytes) -> None: ...
    def forward_invite(self, remote: RemoteMember, room: str) -> None: ...
    def unreachable(self) -> str | None: ...

_REMOTE_CAPS = frozenset({"remote"})


def encode_remote(entry: Event, tagged: int, current: bool, history: bool = False) -> bytes:
    """The remote wire: room lines are nothing here; a private line is the event, for its node."""
    return b"\0" + encode(entry, "", 0) if entry.kind == "private" else b""


class RemoteMember(Member):
    """Another node's member, mirrored here: ``node`` its node's name. Lines sent to it go to that node.
    ``changed_at``: the number of the presence's last change to this mirror (its order of events)."""

    __slots__ = ("changed_at", "lines", "node", "wire_index")

    def __init__(self, mid: int, nick: str, node: str, lines: Forwarder) -> None:
        super().__init__(mid, nick)
        self.node = node
        self.lines = lines
        self.wire_index = lines.wire
        self.changed_at = 0
        self.caps = _REMOTE_CAPS  # never offered a file (chatroom.net.relay says so to the room)

    streams = None  # (what the loop checks before queueing a line: nothing is streamed to a mirror)

    def encode_text(self, text: str) -> bytes:
        """A direct line (a reply, a kick notice) as :meth:`deliver` forwards it: the line protocol's bytes."""
        return encode_line(text)

    def deliver(self, data: bytes | memoryview) -> None:
        """Forward a direct line (or a private event) to the member's node; room batches are empty here."""
        if data:
            self.lines.forward(self, bytes(data))

    @property
    def closed(self) -> bool:
        return self.gone

    def unreachable(self) -> str | None:
        """Why its node cannot be told now (Redis unavailable), or None."""
        return self.lines.unreachable()

    def invite(self, room: str) -> None:
        """An invitation to *room* goes to the member's node, which holds it (chatroom.scaleout.direct)."""
        self.lines.forward_invite(self, room)
