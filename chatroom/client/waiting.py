"""The files a client waits to offer: at most :data:`MAX_OPEN` offers and sends open at once.

The server refuses a sender's ninth open transfer (docs/protocol.md, "File transfer frames"), so the client
keeps the files asked for beyond that in a queue of its own, in order, and offers them as earlier ones end.
When the server refuses one all the same (it counts transfers this client does not see), the client waits
below the number it had open then, until one ends. Used by :class:`chatroom.client.send.Sender`, on the
client's loop thread only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

__all__ = ["MAX_OPEN", "Waiting"]

#: Offers and sends one client keeps open at once: the server refuses a sender's ninth (docs/protocol.md, "File
#: transfer frames"), so more files wait in the client's queue and are offered as earlier ones end.
MAX_OPEN = 8


class Waiting:
    """Names (in ``send_dir``) waiting for fewer open offers and sends; *emit* prints a line. ``names`` in the
    order they go; ``full``: the count of open offers and sends at which they wait (:data:`MAX_OPEN`, lower
    after the server refused one)."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.names: list[str] = []
        self.full = MAX_OPEN

    def blocks(self, open_now: int) -> bool:
        """Must a new file wait, with *open_now* offers and sends open (or others waiting before it)?"""
        return bool(self.names) or open_now >= self.full

    def add(self, name: str, open_now: int, front: bool = False) -> None:
        """*name* waits (last, or first with *front*); the user is told how to drop it."""
        self.names.insert(0 if front else len(self.names), name)
        self.emit(f'sendfile: "{name}" waits: {open_now} files are on their way (it goes when one ends; '
                  f'/cancel "{name}" drops it)')

    def refused(self, name: str, open_now: int) -> None:
        """The server refused *name* for too many open transfers: wait below *open_now* (at least one), first."""
        self.full = max(1, open_now)
        self.add(name, open_now, front=True)

    def due(self, open_now: Callable[[], int]) -> Iterator[str]:
        """The names to offer now, one at a time, while ``open_now()`` stays below the limit (asked again after
        each is offered); once a place is free, the limit is :data:`MAX_OPEN` again."""
        if self.names and open_now() < self.full:
            self.full = MAX_OPEN  # one ended
            while self.names and open_now() < self.full:
                yield self.names.pop(0)

    def drop(self, name: str) -> bool:
        """``/cancel NAME`` of a waiting file: True (and the user told) if it waited."""
        if name not in self.names:
            return False
        self.names.remove(name)
        self.emit(f'"{name}" will not be sent')
        return True
