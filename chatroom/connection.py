"""One client connection as the server loop sees it."""

from __future__ import annotations

import selectors
import socket
from typing import TYPE_CHECKING, Any, Callable, Iterator

from chatroom import protocol

if TYPE_CHECKING:
    from chatroom.room import Room


class Client:
    """One connection. Plugins read ``nick``, ``room``, ``caps``, ``addr``, ``id``, ``closed``."""

    __slots__ = (
        "id", "sock", "addr", "nick", "room", "caps", "parser", "out", "capture",
        "closed", "closing", "dirty", "want_write", "paused", "streams", "mask", "__weakref__",
    )

    def __init__(self, cid: int, sock: socket.socket, addr: Any) -> None:
        self.id = cid
        self.sock = sock
        self.addr = addr
        self.nick = f"guest{cid}"
        self.room: Room = None  # type: ignore[assignment]  # set by Room.join
        self.caps: set[str] = set()
        self.parser = protocol.Parser()
        self.out = bytearray()
        self.capture: tuple[str, Callable[..., Any], Callable[..., Any] | None] | None = None
        self.closed = False
        self.closing = False  # no more input; close once output is flushed
        self.dirty = False
        self.want_write = False
        self.paused = False
        self.mask = selectors.EVENT_READ  # what the selector watches; 0 when unregistered
        self.streams: list[tuple[Iterator[str], str]] = []

    @property
    def queued(self) -> int:
        """Bytes waiting in the output queue."""
        return len(self.out)

    def __repr__(self) -> str:
        return f"Client({self.id}, {self.nick!r})"
