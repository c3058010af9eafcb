"""Rooms: a named set of members that broadcasts reach, with a topic.

Room names are ``#`` plus 1 to 32 of ``a-z 0-9 _ -``, compared
case-insensitively (:func:`chatroom.model.names.room_key` gives the canonical
lower-case form; ``lobby`` and ``#Lobby`` name ``#lobby``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatroom.model.moderation import RoomRules, allowed
from chatroom.wire.render import room_label

if TYPE_CHECKING:
    from chatroom.model.notice import Event
    from chatroom.model.member import Member

__all__ = ["Room", "permitted"]


class Room:
    """``name`` (canonical ``#name``), ``label`` (the bare name notices show), ``members``
    (member id -> Member, in join order), ``topic`` with ``topic_by`` and ``topic_at`` (Unix s),
    ``rules`` (owner, operators, bans, topic lock, key: :class:`~chatroom.model.moderation.RoomRules`);
    ``ops``, the ids of members who operate the room while they stay in it (the first member of an unowned
    room: :meth:`chatroom.model.hub.Hub.join`), and ``voices``, those who may speak in it when it is moderated
    (IRC's ``+v``), neither persisted.

    ``pending`` holds the events of the current loop pass as ``(sender id or 0, Entry)``;
    the hub fans them out once at the end of the pass. ``emptied`` is when (Unix s) a room without
    an owner was left empty, or the server started, 0.0 while it has members or will never linger
    (its lifetime: :mod:`chatroom.model.rooms`). Loop thread only.
    """

    __slots__ = ("name", "label", "members", "topic", "topic_by", "topic_at", "pending", "rules", "ops", "voices",
                 "emptied")

    def __init__(self, name: str, topic: str = "", topic_by: str = "", topic_at: float = 0.0) -> None:
        self.name = name
        self.label = room_label(name)
        self.members: dict[int, Member] = {}
        self.topic = topic
        self.topic_by = topic_by
        self.topic_at = topic_at
        self.pending: list[tuple[int, Event]] = []
        self.rules = RoomRules()
        self.ops: set[int] = set()
        self.voices: set[int] = set()
        self.emptied = 0.0

    def operated_by(self, member: Member) -> bool:
        """True if *member* operates the room: by account (``rules``: owner or operator), or as the first member of
        an unowned room, while it stays (``ops``). Server admins are the caller's business."""
        return member.id in self.ops or self.rules.is_operator(member.account)

    def may_speak(self, member: Member) -> bool:
        """May *member* say something in the room as far as ``+m`` goes: always, unless the room is moderated
        (``rules.moderated``), then only its operators and voiced members. Only that part of the speak rule: bans,
        lines from outside and admins are in the whole rule, :meth:`chatroom.model.rooms.Rooms.speak_refusal`,
        which every door and plugin path asks."""
        return not self.rules.moderated or member.id in self.voices or self.operated_by(member)

    def nicks(self) -> list[str]:
        """Members' nicks in join order."""
        return [m.nick for m in self.members.values()]

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"Room({self.name!r}, {len(self.members)} members)"


def permitted(requires: str, member: Member | None, room: Room | None, admin: bool) -> bool:
    """May *member* (None: the server's own events) do what needs *requires* (a level of
    :data:`~chatroom.model.moderation.LEVELS`) in *room* (None: in no room), *admin* saying whether it is a
    server admin? :func:`~chatroom.model.moderation.allowed`, where a room's operator is whoever
    :meth:`Room.operated_by` names (the first member of an unowned room too): every door's permission rule."""
    if requires == "operator" and member is not None and room is not None and room.operated_by(member):
        return True
    return allowed(requires, member.account if member is not None else None, room.rules if room is not None else None,
                   admin)
