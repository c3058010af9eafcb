"""In-memory stand-ins for the server's I/O, used by :mod:`chatroom.testing`.

A fake listener, client sockets, waker and selector let a real
:class:`chatroom.server.app.Server` run its loop with no network: the
selector reports a socket readable when bytes (or the end of input) wait in
it, writable unless the test stalled it, and a listener readable while
connections are pending. The server is built from these public parts through
its constructor (``selector=``, ``listener=``, ``waker=``, ``clock=``).

The other end of each fake socket is a :class:`FakeClient`: what a person at a
terminal would see of the server (the lines and frames it sent), and what they
type; every call lets the room settle, so replies are in when it returns.
:mod:`chatroom.testing` re-exports it (``from chatroom.testing import FakeClient``).
"""

from __future__ import annotations

import itertools
import logging
import selectors
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from chatroom.net.connection import Connection
from chatroom.wire import lines as protocol

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class FakeSocket:
    """The server's end of one fake connection: bytes in (``inbound``), bytes out (to the kit's client)."""

    def __init__(self, deliver: Callable[[bytes], None]) -> None:
        self.inbound = bytearray()
        self.eof = False
        self.closed = False
        self.stalled = False
        self._deliver = deliver

    def ready(self) -> int:
        """The selector events this socket would report now."""
        if self.closed:
            return 0
        return (_READ if self.inbound or self.eof else 0) | (0 if self.stalled else _WRITE)

    # the socket methods the server uses
    def recv(self, n: int) -> bytes:
        if self.inbound:
            data = bytes(self.inbound[:n])
            del self.inbound[:n]
            return data
        if self.eof:
            return b""
        raise BlockingIOError

    def send(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise OSError("socket closed")
        if self.stalled:
            raise BlockingIOError
        self._deliver(bytes(data))
        return len(data)

    def sendmsg(self, buffers: list[Any]) -> int:
        return self.send(b"".join(buffers))

    def sendall(self, data: bytes) -> None:
        self.send(data)

    def close(self) -> None:
        self.closed = True

    def shutdown(self, how: int) -> None:
        """The server is done writing: the kit's client, like a terminal client, closes its end in turn."""
        self.eof = True

    def setblocking(self, flag: bool) -> None:
        pass

    def setsockopt(self, *args: Any) -> None:
        pass

    def fileno(self) -> int:
        return -1


class Settles(Protocol):
    """What a :class:`FakeClient` needs of its room (:class:`chatroom.testing.InProcessRoom`)."""

    def settle(self) -> None:
        """Run event-loop passes until nothing is left to read, run or write."""


class FakeClient:
    """One connected client of a :class:`chatroom.testing.InProcessRoom`, as a person at a terminal sees it.

    ``received`` holds every text line the server sent (``str``, without the
    newline), ``frames`` every binary frame (:class:`chatroom.wire.lines.Frame`).
    ``client`` is the server-side :class:`~chatroom.net.connection.Client`.
    ``door``: ``"line"`` (chatroom's line protocol, as ``chatroom-client`` and ``nc`` speak it) or ``"irc"``
    (an IRC client: ``received`` holds the raw IRC messages, ``":srv 001 alice :Welcome ..."``, without
    ``\\r\\n``; :meth:`say` sends one raw IRC message, ``"PRIVMSG #lobby :hi"``; no frames).
    """

    def __init__(self, room: Settles, door: str = "line") -> None:
        if door not in ("line", "irc"):
            raise ValueError(f"door must be 'line' or 'irc', not {door!r}")
        self.room = room
        self.door = door
        self.received: list[str] = []
        self.frames: list[protocol.Frame] = []
        self._parser = protocol.Parser()
        self._irc_rest = b""  # an IRC message not yet ended by its line end
        self.sock = FakeSocket(self._deliver if door == "line" else self._deliver_irc)
        self.client: Connection  # set once the server accepted it (InProcessRoom.connect)

    def _deliver_irc(self, data: bytes) -> None:
        *whole, self._irc_rest = (self._irc_rest + data).split(b"\n")
        self.received += [line.rstrip(b"\r").decode("utf-8", "replace") for line in whole]

    def _deliver(self, data: bytes) -> None:
        for event in self._parser.feed(data):
            if isinstance(event, protocol.Line):
                self.received.append(event.text)
            elif isinstance(event, protocol.Frame):
                self.frames.append(event)

    @property
    def nick(self) -> str:
        """The nick the server knows this client by."""
        return self.client.nick

    @property
    def closed(self) -> bool:
        """True once the server closed this connection."""
        return self.sock.closed

    @property
    def last(self) -> str:
        """The last line received (IndexError if none)."""
        return self.received[-1]

    def say(self, line: str) -> list[str]:
        """Send one line (chat or ``/command``; on the IRC door one IRC message) and let the room settle; return
        the lines *this* client got meanwhile."""
        if self.door == "irc":
            return self.send_bytes(line.encode("utf-8") + b"\r\n")
        return self.send_bytes(protocol.encode_line(line))

    def send_bytes(self, data: bytes) -> list[str]:
        """Send raw bytes (lines and/or frames) and settle; return the lines this client got meanwhile."""
        if self.sock.closed or self.sock.eof:
            raise RuntimeError(f"{self.nick} is not connected")
        start = len(self.received)
        self.sock.inbound += data
        self.room.settle()
        return self.received[start:]

    def send_frame(self, meta: str, payload: bytes = b"") -> list[str]:
        """Send one binary frame (see docs/protocol.md) and settle. ValueError on the IRC door."""
        if self.door != "line":
            raise ValueError("binary frames are the line protocol's; an IRC client has none")
        return self.send_bytes(protocol.encode_frame(meta, payload))

    def clear(self) -> None:
        """Forget the lines and frames received so far."""
        self.received.clear()
        self.frames.clear()

    def leave(self) -> None:
        """Drop the connection (as if the terminal was closed) and settle."""
        self.sock.eof = True
        self.room.settle()

    def stall(self) -> None:
        """Stop reading from the server (its output to this client queues up), to test backpressure."""
        self.sock.stalled = True

    def resume(self) -> None:
        """Read again after :meth:`stall`, and settle."""
        self.sock.stalled = False
        self.room.settle()

    def __repr__(self) -> str:
        return f"FakeClient({self.nick!r}, {len(self.received)} lines)"


class FakeListener:
    """A listening socket whose pending connections the kit appends to ``pending``."""

    def __init__(self) -> None:
        self.pending: list[FakeSocket] = []
        self.closed = False
        self._ports = itertools.count(40000)

    def ready(self) -> int:
        return _READ if self.pending else 0

    def accept(self) -> tuple[FakeSocket, tuple[str, int]]:
        if not self.pending:
            raise BlockingIOError
        return self.pending.pop(0), ("127.0.0.1", next(self._ports))

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 0)

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return -1 if self.closed else 0

    def close(self) -> None:
        self.closed = True


class FakeWaker:
    """Stands in for :class:`chatroom.sockets.wakeup.Waker`: the in-process room never blocks."""

    write_fd = -1

    def ready(self) -> int:
        return 0

    def wake(self) -> None:
        pass

    def drain(self) -> None:
        pass

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


class Ready(Protocol):
    """What :class:`FakeSelector` watches: an object that says which events it is ready for now."""

    def ready(self) -> int:
        """``selectors.EVENT_READ`` and/or ``EVENT_WRITE`` (0: neither)."""
        return 0  # (a protocol's body is not called)


class FakeSelector(selectors.BaseSelector):
    """A selector over :class:`Ready` objects: ``select`` reports what is ready now, never waits."""

    def __init__(self) -> None:
        self._keys: dict[int, selectors.SelectorKey] = {}
        self._watched: dict[int, Ready] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = selectors.SelectorKey(fileobj, -1, events, data)
        self._keys[id(fileobj)] = key
        self._watched[id(fileobj)] = fileobj
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        self._watched.pop(id(fileobj), None)
        return self._keys.pop(id(fileobj))

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = []
        for ident, key in list(self._keys.items()):
            mask = self._watched[ident].ready() & key.events
            if mask:
                ready.append((key, mask))
        return ready

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:  # keyed by id(fileobj): fakes need not hash
        return dict(self._keys)

    def close(self) -> None:
        self._keys.clear()
        self._watched.clear()

    def wants(self, fileobj: Any, event: int) -> bool:
        """True if *fileobj* is registered for *event*."""
        key = self._keys.get(id(fileobj))
        return bool(key and key.events & event)


class LogCollector(logging.Handler):
    """Keeps every record as ``[CATEGORY] logger: message`` in *lines*."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        category = getattr(record, "category", "ERROR" if record.levelno >= logging.WARNING else "GENERAL")
        self.lines.append(f"[{category}] {record.name}: {record.getMessage()}")
