"""Rooms: a named set of clients that broadcasts reach.

The server has one room, ``lobby``, for now; every broadcast targets a room,
never a global list, so more rooms need no change to the fan-out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatroom.net.connection import Client


class Room:
    """``name`` (``str``) and ``members``: client id -> Client, in join order.

    ``pending`` holds the lines broadcast to the room during the current loop
    pass, as ``(sender id or 0, encoded line)``; the server fans them out once
    at the end of the pass (see :meth:`chatroom.net.loop.Server.broadcast`).
    """

    __slots__ = ("name", "members", "pending")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[int, Client] = {}
        self.pending: list[tuple[int, bytes]] = []

    def join(self, client: Client) -> None:
        """Add *client* (last in join order) and set its ``room``."""
        self.members[client.id] = client
        client.room = self

    def leave(self, client: Client) -> None:
        """Remove *client*; no error if it is not a member."""
        self.members.pop(client.id, None)

    def nicks(self) -> list[str]:
        """Members' nicks in join order."""
        return [c.nick for c in self.members.values()]

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"Room({self.name!r}, {len(self.members)} members)"
