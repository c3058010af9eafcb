"""One client connection as the server loop sees it: its socket, parser, output queue and budgets."""

from __future__ import annotations

import selectors
import socket
from typing import TYPE_CHECKING, Any, Callable, Iterator

from chatroom.wire import lines as protocol
from chatroom.wire.outqueue import OutQueue

if TYPE_CHECKING:
    from chatroom.net.room_legacy import Room

_NO_CAPS: frozenset[str] = frozenset()


class Client:
    """One connection. Plugins read ``nick``, ``room``, ``caps``, ``addr``, ``id``, ``closed``.

    The rest is the loop's bookkeeping: ``out`` (an :class:`~chatroom.wire.outqueue.OutQueue`,
    the output budget is checked against its size when bytes are queued),
    ``tokens`` and ``stamp`` (the flood token bucket and when it was last
    refilled, loop-clock seconds), ``held`` (an event read while the bucket
    was empty), ``flood_since`` (start of the current throttling episode, 0
    when none), ``partial_since`` (since when an unfinished line or frame has
    been held, 0 when none), ``deadline`` (when a closing connection is
    reaped). Slots keep an idle connection small (see docs/benchmarks.md).
    """

    __slots__ = (
        "id", "sock", "addr", "nick", "room", "caps", "parser", "out", "capture",
        "closed", "closing", "doomed", "dirty", "want_write", "paused", "throttled", "backlog",
        "streams", "mask", "tokens", "stamp", "held", "flood_since", "partial_since", "deadline",
        "hint_at", "hints", "unknown_at", "unknown_quiet", "__weakref__",
    )

    def __init__(self, cid: int, sock: socket.socket, addr: Any, *, tokens: float = 0.0, now: float = 0.0) -> None:
        self.id = cid
        self.sock = sock
        self.addr = addr
        self.nick = f"guest{cid}"
        self.room: Room = None  # type: ignore[assignment]  # set by Room.join
        self.caps: frozenset[str] = _NO_CAPS
        self.parser = protocol.Parser()
        self.out = OutQueue()
        self.capture: tuple[str, Callable[..., Any], Callable[..., Any] | None, str | None] | None = None
        self.closed = False
        self.closing = False  # no more input; close once output is flushed (or at `deadline`)
        self.doomed = ""  # set to the reason when the client must be closed at the end of the pass
        self.dirty = False
        self.want_write = False
        self.paused = False  # the relay paused reading (file backpressure)
        self.throttled = False  # the flood bucket is empty
        self.backlog = False  # parsed input is waiting for the next loop pass
        self.mask = selectors.EVENT_READ  # what the selector watches; 0 when unregistered
        self.streams: list[tuple[Iterator[str], str]] | None = None
        self.tokens = tokens
        self.stamp = now
        self.held: protocol.Event | None = None
        self.flood_since = 0.0
        self.partial_since = 0.0
        self.deadline = 0.0
        self.hint_at = -1e9
        self.hints = 0
        self.unknown_at = -1e9
        self.unknown_quiet = 0

    @property
    def queued(self) -> int:
        """Bytes waiting in the output queue."""
        return self.out.size

    @property
    def host(self) -> str:
        """The peer's address without the port (``str``; ``""`` if unknown)."""
        return str(self.addr[0]) if isinstance(self.addr, tuple) and self.addr else ""

    def __repr__(self) -> str:
        return f"Client({self.id}, {self.nick!r})"
