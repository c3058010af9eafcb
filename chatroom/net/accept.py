"""The listening side of a transport: a listening socket and an :class:`Acceptor` that takes its connections.

:func:`listen` binds; an :class:`Acceptor` registers the listener with the loop's selector and hands every
accepted ``(sock, addr)`` to its *admit* callback (the transport counts, wraps and greets it). When the
process runs out of file descriptors (``EMFILE``, ``ENFILE``, ``ENOBUFS``, ``ENOMEM`` from ``accept``) it
stops listening instead of spinning on a readable listener, logs the episode once, and listens again as soon
as a socket of its transport is closed (:meth:`Acceptor.freed`) or after :data:`ACCEPT_PAUSE` seconds,
whichever comes first. Loop thread only.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable

from chatroom.net.connection import Address
from chatroom.net.logs import ERR
from chatroom.net.loop import Loop

__all__ = ["ACCEPT_BATCH", "ACCEPT_PAUSE", "Acceptor", "listen"]

log = logging.getLogger("chatroom.server")

#: Seconds accepting stays paused, out of file descriptors, when no socket of the transport closes meanwhile.
ACCEPT_PAUSE = 0.5
#: Connections accepted per readable event of the listener (then other sockets get their turn).
ACCEPT_BATCH = 64
_OUT_OF_FDS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket bound to *host* (IPv4, or IPv6 when it has a colon) and *port* (0: the kernel
    picks), backlog 512; *reuse_port*: with ``SO_REUSEPORT``, so other processes may bind the same port (the
    kernel spreads new connections among them). Raises OSError if it cannot bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=512, reuse_port=reuse_port)


class Acceptor:
    """Accepts connections on *listener* (bound, listening; made non-blocking here) in *loop*'s selector and
    passes each ``(sock, addr)`` to *admit*. Loop thread only."""

    def __init__(self, loop: Loop, listener: socket.socket, admit: Callable[[socket.socket, Address], None]) -> None:
        self.loop = loop
        self.listener = listener
        self.admit = admit
        self.paused = False  # an out-of-descriptors episode is on (logged once)
        self.listening = True  # the listener is registered with the selector
        self.timer = False  # an ACCEPT_PAUSE timer is pending (one at a time)
        self.held = False  # not accepting on purpose until release() (connections wait in the backlog)
        listener.setblocking(False)
        loop.selector.register(listener, 1, self.accept)

    def accept(self) -> None:
        """Accept up to :data:`ACCEPT_BATCH` pending connections (the listener is readable)."""
        for _ in range(ACCEPT_BATCH):
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_FDS:
                    self._pause(exc)
                else:
                    log.error("accept failed: %s", exc, extra=ERR)
                return
            if self.paused:
                self.paused = False
                log.warning("accepting connections again on %s", self.where(), extra=ERR)
            self.admit(sock, addr)

    def where(self) -> str:
        """The listening address as ``HOST:PORT`` (for the log)."""
        try:
            host, port = self.listener.getsockname()[:2]
        except (OSError, ValueError, TypeError):
            return "the listener"
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

    def _pause(self, exc: OSError) -> None:
        """Out of file descriptors: stop listening until :meth:`freed` or ACCEPT_PAUSE s; log once per episode."""
        if not self.paused:
            self.paused = True
            log.error("accept failed on %s: %s; pausing new connections (logged once until accepting works again)",
                      self.where(), exc, extra=ERR)
        if self.listening:
            self.listening = False
            self.loop.selector.unregister(self.listener)
            if not self.timer:
                self.timer = True
                self.loop.call_later(ACCEPT_PAUSE, self._paused_enough)

    def _paused_enough(self) -> None:
        self.timer = False
        self._resume()

    def hold(self) -> None:
        """Accept nothing until :meth:`release`: clients' connects complete in the kernel's listen backlog and
        are accepted then (a scale-out node catching up before it serves anyone)."""
        self.held = True
        if self.listening:
            self.listening = False
            self.loop.selector.unregister(self.listener)

    def release(self) -> None:
        """Accept again after :meth:`hold` (idempotent)."""
        if self.held:
            self.held = False
            self._resume()

    def _resume(self) -> None:
        """Listen again (idempotent; not while held): a descriptor may be free."""
        if not self.listening and not self.held and self.listener.fileno() >= 0:
            self.listening = True
            self.loop.selector.register(self.listener, 1, self.accept)

    def freed(self) -> None:
        """A socket of the transport was closed: if paused for want of descriptors, listen again at once (each
        close allows at most one more failed ``accept``, so this cannot spin)."""
        if self.paused:
            self._resume()

    def close(self) -> None:
        """Stop accepting: the listener leaves the selector and is closed."""
        if self.listening:
            self.listening = False
            try:
                self.loop.selector.unregister(self.listener)
            except (KeyError, ValueError):
                pass
        self.listener.close()
