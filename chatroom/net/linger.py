"""The graceful end of a socket the server closes: shut down writing, drain the input, then close.

Closing a TCP socket while input it never read waits in it makes the kernel
answer with a reset (RFC 1122, section 4.2.2.13) instead of the end of the stream. A client such as
``nc`` that is still sending then fails on its next write and exits without
showing the last line it was sent (``ERROR excess flood``). So the server
ends a connection it decided to close in three steps: it shuts down its
writing side (a TCP FIN after everything written; over TLS a
``close_notify`` alert first), reads and discards what the client still sends
for up to :data:`LINGER` seconds, until the client closes its end, and only
then closes the socket. :class:`Lingering` holds the sockets between those
steps; one serves every transport of a server. Loop thread only.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from chatroom.net.loop import Loop
from chatroom.sockets.tlssocket import Socket

__all__ = ["LINGER", "LINGER_BYTES", "MAX_LINGERING", "Lingering"]

#: Seconds a closed connection's input is still read and discarded, after the server shut down its writing.
LINGER = 2.0
#: Bytes read and discarded from one lingering socket at most before it is closed anyway.
LINGER_BYTES = 4 * 1024 * 1024
#: Sockets lingering at once at most (per server); past it, a close is immediate.
MAX_LINGERING = 1024
_READ_SIZE = 64 * 1024


class Lingering:
    """Sockets on their way out (see the module docstring), drained through *loop*'s selector and timers.

    *closed(host)* is called once a socket counted against *host*'s connection budget is finally closed
    (not for a socket released with host None). ``sockets`` maps each to ``[host, bytes left, timer]``.
    """

    def __init__(self, loop: Loop, closed: Callable[[str], None]) -> None:
        self.loop = loop
        self.closed = closed
        self.sockets: dict[Socket, list[Any]] = {}

    def __len__(self) -> int:
        return len(self.sockets)

    def release(self, sock: Socket, host: str | None, shut: Callable[[Socket], None]) -> None:
        """End *sock* (unregistered, no longer a connection) gracefully: ``shut(sock)`` shuts down its
        writing (raising OSError if it cannot), then its input is drained until the peer closes, for LINGER
        seconds or LINGER_BYTES at most; then it is closed. Immediate when MAX_LINGERING sockets linger."""
        if len(self.sockets) < MAX_LINGERING:
            entry: list[Any] = [host, LINGER_BYTES, None]
            try:
                shut(sock)
                still_open = _drain(sock, entry)
            except OSError:
                still_open = False
            if still_open:
                entry[2] = self.loop.call_later(LINGER, self.close, sock)
                self.sockets[sock] = entry
                self.loop.selector.register(sock, selectors.EVENT_READ, partial(self._ready, sock))
                return
        sock.close()
        if host is not None:
            self.closed(host)

    def _ready(self, sock: Socket) -> None:
        entry = self.sockets.get(sock)
        if entry is not None and not _drain(sock, entry):
            self.close(sock)

    def close(self, sock: Socket) -> None:
        """*sock*'s linger is over (the peer closed, LINGER seconds passed, or the server stops): close it."""
        entry = self.sockets.pop(sock, None)
        if entry is None:
            return
        host, _, timer = entry
        timer.cancel()
        try:
            self.loop.selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
        if host is not None:
            self.closed(host)

    def finish(self, timeout: float) -> None:
        """Server shutdown, every connection closed: drain the lingering sockets for at most *timeout* seconds
        (until their peers close), running the selector here, then close them all."""
        deadline = time.monotonic() + timeout
        while self.sockets:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in self.loop.selector.select(min(left, 0.05)):
                if key.fileobj in self.sockets:
                    self._ready(key.fileobj)
        for sock in list(self.sockets):
            self.close(sock)


def shut_tcp(sock: Socket) -> None:
    """Shut down the writing side of a TCP socket: a FIN after what was written (over TLS, ``close_notify``
    first: :meth:`~chatroom.sockets.tlssocket.TLSSocket.shutdown`). Raises OSError."""
    sock.shutdown(socket.SHUT_WR)


def _drain(sock: Socket, entry: list[Any]) -> bool:
    """Read and discard what *sock* has (a few reads, ``entry[1]`` bytes at most); False at its end."""
    for _ in range(4):
        try:
            data = sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        entry[1] -= len(data)
        if not data or entry[1] <= 0:
            return False
    return True
