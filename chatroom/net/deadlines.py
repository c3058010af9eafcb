"""The connections of a transport that have a deadline, looked at once a second.

Two kinds (docs/protocol.md, "Budgets and limits"): a *closing* connection (its last output being flushed) is
closed at its ``deadline`` even if its client never reads it (:data:`~chatroom.net.tcp.CLOSE_GRACE`), and one
holding an unfinished line or frame (``partial_since``) longer than the transport's ``partial_timeout`` gets
``ERROR timeout: unfinished line for N s`` and is closed once that is sent. A connection the transport is not
reading (paused by file backpressure, or throttled) has its clock stopped. Loop thread only.
"""

from __future__ import annotations

from chatroom.net.connection import Connection, Transport
from chatroom.net.loop import Loop
from chatroom.net.scheduler import Timer

__all__ = ["Deadlines"]


class Deadlines:
    """The connections of *transport* to look at every second (see the module docstring); *partial_timeout*
    seconds an unfinished line or frame may be held (0: for ever). One timer runs while any is watched."""

    __slots__ = ("loop", "transport", "partial_timeout", "watched", "_timer")

    def __init__(self, loop: Loop, transport: Transport, partial_timeout: float) -> None:
        self.loop = loop
        self.transport = transport
        self.partial_timeout = partial_timeout
        self.watched: set[Connection] = set()
        self._timer: Timer | None = None

    def watch(self, conn: Connection) -> None:
        """Look at *conn* every second until it is closed (or, not closing, no longer holds a partial input)."""
        self.watched.add(conn)
        if self._timer is None:
            self._timer = self.loop.call_later(1.0, self._sweep)

    def discard(self, conn: Connection) -> None:
        """*conn* is closed: forget it."""
        self.watched.discard(conn)

    def _sweep(self) -> None:
        """Close connections that held an unfinished line or frame too long, and reap closing ones."""
        self._timer = None
        now = self.loop.now = self.loop.clock()
        watched, close, timeout = self.watched, self.transport.close, self.partial_timeout
        for conn in list(watched):
            if conn.closed:
                watched.discard(conn)
            elif conn.closing:
                if now >= conn.deadline:
                    close(conn, "quit")
            elif not conn.partial_since:
                watched.discard(conn)
            elif conn.paused or conn.throttled:
                conn.partial_since = now  # not reading it: its clock does not run
            elif timeout and now - conn.partial_since >= timeout:
                what = "frame" if conn.parser.in_frame else "line"
                self.loop.send_closing(conn, f"timeout: unfinished {what} for {timeout:g} s")
                close(conn, "timeout", flush=True)
        if watched:
            self._timer = self.loop.call_later(1.0, self._sweep)
