"""Rooms: a named set of members that broadcasts reach, with a topic.

Room names are ``#`` plus 1 to 32 of ``a-z 0-9 _ -``, compared
case-insensitively (:func:`chatroom.model.names.room_key` gives the canonical
lower-case form; ``lobby`` and ``#Lobby`` name ``#lobby``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatroom.model.moderation import RoomRules
from chatroom.wire.render import room_label

if TYPE_CHECKING:
    from chatroom.model.history import Entry
    from chatroom.model.member import Member

__all__ = ["Room"]


class Room:
    """``name`` (canonical ``#name``), ``label`` (the bare name notices show), ``members``
    (member id -> Member, in join order), ``topic`` with ``topic_by`` and ``topic_at`` (Unix s),
    ``rules`` (owner, operators, bans, topic lock, key: :class:`~chatroom.model.moderation.RoomRules`).

    ``pending`` holds the events of the current loop pass as ``(sender id or 0, Entry)``;
    the hub fans them out once at the end of the pass. ``emptied`` is when (Unix s) a room without
    an owner was left empty, or the server started, 0.0 while it has members or will never linger
    (its lifetime: :mod:`chatroom.model.rooms`). Loop thread only.
    """

    __slots__ = ("name", "label", "members", "topic", "topic_by", "topic_at", "pending", "rules", "emptied")

    def __init__(self, name: str, topic: str = "", topic_by: str = "", topic_at: float = 0.0) -> None:
        self.name = name
        self.label = room_label(name)
        self.members: dict[int, Member] = {}
        self.topic = topic
        self.topic_by = topic_by
        self.topic_at = topic_at
        self.pending: list[tuple[int, Entry]] = []
        self.rules = RoomRules()
        self.emptied = 0.0

    def nicks(self) -> list[str]:
        """Members' nicks in join order."""
        return [m.nick for m in self.members.values()]

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"Room({self.name!r}, {len(self.members)} members)"
