"""In-memory stand-ins for the server's I/O, used by :mod:`chatroom.testing`.

A fake listener, client sockets, waker and selector let a real
:class:`chatroom.server.app.Server` run its loop with no network: the
selector reports a socket readable when bytes (or the end of input) wait in
it, writable unless the test stalled it, and a listener readable while
connections are pending. The server is built from these public parts through
its constructor (``selector=``, ``listener=``, ``waker=``, ``clock=``).
"""

from __future__ import annotations

import itertools
import logging
import selectors
from collections.abc import Callable, Mapping
from typing import Any, Protocol

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
