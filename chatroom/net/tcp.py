"""The line transport: the line protocol over TCP, one :class:`~chatroom.net.connection.Connection` per client.

It adapts each connection to the application (the server assembly, duck
typed): its codec's events become calls ``app.on_line(conn, text) -> cost``,
``app.on_frame(conn, frame)``; ``app.check_frame(conn, meta, size)`` vets a
frame header before any payload byte is buffered; ``app.on_connect(conn)``
and ``app.on_close(conn, reason)`` bracket a connection's life. Output goes
through the loop (:mod:`chatroom.net.loop`). A second transport (WebSocket)
is another module like this one, not a change to the model.

Budgets enforced here (docs/protocol.md, "Budgets and limits"): at most
:data:`READ_SIZE` bytes read per readable event and :data:`SLICE` events
handled per pass; the flood token bucket (:mod:`chatroom.net.budget`): a
connection whose bucket is empty is *lagged*, its input read ahead and held
unhandled up to the policy's backlog, past which it is disconnected with
``ERROR excess flood``; the time an unfinished line or frame may be held;
connections per address; closing connections reaped after
:data:`CLOSE_GRACE`; accepting paused when the process runs out of file
descriptors.

Closing: every close the server decides (excess flood, too slow, a timeout,
a wrong password, a plugin's disconnect, shutdown) sends the connection's
last line, flushes its output (at most :data:`CLOSE_GRACE` seconds), then
ends the socket gracefully (:mod:`chatroom.net.linger`: shut down writing,
drain the input, close), so ``nc`` shows that line even while it is still
sending.
"""

from __future__ import annotations

import itertools
import logging
import socket
import sys
import traceback
from collections import deque
from collections.abc import Iterator
from typing import TypedDict

from chatroom.net.accept import Acceptor
from chatroom.net.budget import EMPTY_BELOW, TOO_LONG_COST, FloodPolicy
from chatroom.net.connection import Address, Application, Connection
from chatroom.net.deadlines import Deadlines
from chatroom.net.linger import Lingering, shut_tcp
from chatroom.net.logs import CONN, ERR, log_rejected
from chatroom.net.loop import Loop
from chatroom.net.tls import TLSGate
from chatroom.sockets.tlssocket import Socket
from chatroom.wire.lines import MAX_FRAME, MAX_LINE, Frame, Line, Refused, TooLong, encode_line

__all__ = ["CLOSE_GRACE", "DoorOptions", "LOST", "READ_SIZE", "SLICE", "LineOptions", "LineTransport"]

log = logging.getLogger("chatroom.server")

#: Bytes read from one socket per readable event.
READ_SIZE = 64 * 1024
#: Events (lines, frames) handled per connection per loop pass.
SLICE = 64
#: Seconds a closing connection may take to read its last output before it is closed anyway.
CLOSE_GRACE = 3.0
#: The reason of a close the client made (end of input or a socket error): nothing to tell, nothing to drain.
LOST = "connection lost"


class DoorOptions(TypedDict, total=False):
    """The keyword arguments of :class:`LineTransport` a door's ``open_...`` function passes on as they are
    (it makes its own TLS gate)."""

    flood: FloodPolicy
    partial_timeout: float
    max_per_address: int
    ids: Iterator[int] | None
    share: LineTransport | None


class LineOptions(DoorOptions, total=False):
    """The keyword arguments of :class:`LineTransport`, which every door's transport takes too."""

    tls: TLSGate | None


class LineTransport:
    """Accepts TCP connections on *listener* (a bound, listening socket) and serves the line protocol.

    *app* is the application (see the module docstring); *flood* the token
    bucket policy; *partial_timeout* seconds an unfinished line or frame may
    be held (0: for ever); *max_per_address* connections per peer address
    (0: no limit); *ids* gives connection ids (shared by every transport of
    a server); *share*, another transport of the same server whose ids,
    connection table and per-address counts this one shares; *tls*, the
    :class:`~chatroom.net.tls.TLSGate` every accepted socket goes through
    first (its connections' sockets are then
    :class:`~chatroom.sockets.tlssocket.TLSSocket` objects). Without one, a
    client that opens a TLS handshake here (a line that starts with byte
    0x16) is closed at once. Loop thread only.
    """

    def __init__(self, loop: Loop, app: Application, listener: socket.socket, *, flood: FloodPolicy,
                 partial_timeout: float = 60.0, max_per_address: int = 64, ids: Iterator[int] | None = None,
                 share: LineTransport | None = None, tls: TLSGate | None = None) -> None:
        self.loop = loop
        self.app = app
        self.listener = listener
        self.tls = tls
        self.flood = flood
        self.partial_timeout = partial_timeout
        self.max_per_address = max_per_address
        self.ids = ids if ids is not None else itertools.count(1)
        self.connections: dict[int, Connection] = {}
        self.per_address: dict[str, int] = {}
        #: Sockets this server closed, drained until their clients close (see :mod:`chatroom.net.linger`).
        self.lingering = Lingering(loop, self._lingered)
        #: The acceptors of every listener of this server (a closed socket frees a descriptor any of them may use).
        self.acceptors: list[Acceptor] = []
        if share is not None:  # a second listener of the same server: one id counter, one table, one budget
            self.ids, self.connections, self.per_address = share.ids, share.connections, share.per_address
            self.lingering, self.acceptors = share.lingering, share.acceptors
        self.deadlines = Deadlines(loop, self, partial_timeout)  # closing, or holding an unfinished line or frame
        self.acceptor = Acceptor(loop, listener, self._admit)
        self.acceptors.append(self.acceptor)

    def _admit(self, sock: socket.socket, addr: Address) -> None:
        if self._count_in(sock, addr):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is None:
                self.start(sock, self._shared_host(addr))
            else:  # counted from the moment it is accepted: a handshake holds a place in the budget
                self.tls.admit(self, sock, self._shared_host(addr))

    def _count_in(self, sock: socket.socket, addr: Address) -> bool:
        """Count a new connection against its address's budget; False (and *sock* told why and closed) past it."""
        host = str(addr[0])
        count = self.per_address.get(host, 0)
        if self.max_per_address and count >= self.max_per_address:
            log.info("refused a connection from %s: %d open already", host, count, extra=CONN)
            try:
                sock.setblocking(False)
                sock.send(self._too_many(f"too many connections from {host} (max {self.max_per_address})"))
            except OSError:
                sock.close()
                return False
            self.lingering.release(sock, None, shut_tcp)
            return False
        self.per_address[host] = count + 1
        return True

    def _too_many(self, text: str) -> bytes:
        """What a connection over the per-address budget is told before it is closed (*text*: why)."""
        return encode_line(f"ERROR {text}")

    def count_out(self, host: str) -> None:
        """A connection (or a TLS handshake) of *host* is gone: its place in the per-address budget is free."""
        left = self.per_address.get(host, 1) - 1
        if left > 0:
            self.per_address[host] = left
        else:
            self.per_address.pop(host, None)

    def _lingered(self, host: str) -> None:
        """A lingering socket counted against *host* is closed at last: its budget and descriptor are free."""
        self.count_out(host)
        self._freed_descriptor()

    def _connection(self, cid: int, sock: Socket, addr: Address) -> Connection:
        """A new connection object (a door with its own kind of connection makes its own)."""
        return Connection(cid, sock, addr, self.loop, self, tokens=self.flood.burst, now=self.loop.now)

    def start(self, sock: Socket, addr: Address) -> Connection:
        """*sock* (non-blocking, counted; over TLS, its handshake done) becomes a connection: registered,
        greeted by the application."""
        conn = self._connection(next(self.ids), sock, addr)
        conn.parser.frame_filter = conn.vet_frame
        self.loop.selector.register(sock, 1, conn)
        log.info("%s connected from %s:%s", conn.nick, addr[0], addr[1], extra=CONN)
        self._greet(conn)
        if self.tls is not None:  # bytes that came with the handshake's last flight
            self.tls.held_back(conn)
        return conn

    def _greet(self, conn: Connection) -> None:
        """*conn* takes part: it enters the server's table and the application greets it (the web transport
        does this only once a WebSocket is open)."""
        self.connections[conn.id] = conn
        self.app.on_connect(conn)

    def _freed_descriptor(self) -> None:
        """A socket of this server was closed: every listener paused out of descriptors may accept again (see
        :class:`~chatroom.net.accept.Acceptor`; once per close, never per line)."""
        for acceptor in self.acceptors:
            acceptor.freed()

    # -- reading ---------------------------------------------------------------------------
    def readable(self, conn: Connection) -> None:
        """Read one slice of *conn*'s socket (at most READ_SIZE bytes; over TLS, decrypted) and handle what it
        completes."""
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close(conn, "connection lost")
            return
        if data[:1] == b"\x16" and not conn.parser.partial and self.tls is None:  # TLS on the clear port
            log.info("closing %s: it speaks TLS on the clear port", conn.nick, extra=CONN)
            self.close(conn, "TLS on the clear port")
            return
        conn.parser.receive_data(data)
        self.serve(conn)

    def serve(self, conn: Connection) -> None:
        """Handle up to SLICE of *conn*'s events; a fault caused by its bytes closes it alone. Over TLS, first
        read what its SSL object held back (``more``: see :meth:`~chatroom.net.tls.TLSGate.held_back`)."""
        if conn.more and not (conn.paused or conn.throttled or conn.closing):
            conn.more = False
            self.readable(conn)
            return
        try:
            self._handle_events(conn)
        except Exception:  # noqa: BLE001 - our own bug, triggered by this client's input: never the loop's end
            log.error("closing %s: internal error handling its input:\n%s", conn.nick,
                      traceback.format_exc().rstrip(), extra=ERR)
            self.loop.backlog.discard(conn)
            if not conn.closed:
                self.loop.send_closing(conn, "internal error; closing the connection")
                self.close(conn, "internal error", flush=True)
        if self.tls is not None:
            self.tls.held_back(conn)

    def _handle_events(self, conn: Connection) -> None:
        if conn.lagged:  # the bucket is empty: read ahead, handle nothing
            self._read_ahead(conn)
            return
        flood, now, app = self.flood, self.loop.now, self.app
        next_event, on_line, rate = conn.parser.next_event, app.on_line, flood.rate  # once per slice, not per line
        for _ in range(SLICE):
            if conn.closing or conn.closed or conn.paused:
                return  # closing: input is over; paused: resume_reading puts it back in the backlog
            held = conn.held
            event = held.popleft() if held else next_event()
            if event is None:  # input ran dry: the slice is over, and any flood episode too
                conn.held = None
                conn.flood_since = 0.0
                self.loop.backlog.discard(conn)
                conn.backlog = False
                self._track_partial(conn)
                self.loop.set_mask(conn)
                return
            if rate and conn.tokens < EMPTY_BELOW:  # FloodPolicy.empty, inline: it runs for every line
                conn.tokens = flood.refill(conn.tokens, conn.stamp, now)
                conn.stamp = now
                if flood.empty(conn.tokens):
                    if held is None:
                        held = conn.held = deque()
                    held.appendleft(event)
                    self._throttle(conn)
                    return
            if event.__class__ is Line:  # (compared on the attribute, so the type checker narrows it)
                cost = on_line(conn, event.text)
            elif event.__class__ is Frame:
                cost = app.on_frame(conn, event) or 0.0  # file data is free; a resume costs like a command
            else:
                cost = self._other(conn, event)
            conn.tokens -= cost
        if not (conn.closed or conn.closing or conn.paused or conn.lagged or conn.throttled):
            conn.backlog = True
            self.loop.backlog.add(conn)
            self.loop.set_mask(conn)

    def _other(self, conn: Connection, event: object) -> float:
        """An event that is neither a line nor a frame (here: input refused); returns its flood cost."""
        if isinstance(event, (TooLong, Refused)):
            self._refuse(conn, event)
        return TOO_LONG_COST

    def _refuse(self, conn: Connection, event: TooLong | Refused) -> None:
        if isinstance(event, Refused):
            if event.reason:
                self.loop.send_line(conn, f"ERROR {event.reason}")
                log_rejected(conn, f"a frame: {event.reason}", self.loop.now)
            return
        limit = MAX_LINE if event.kind == "line" else MAX_FRAME
        self.loop.send_line(conn, f"ERROR {event.kind} too long ({event.size} bytes, max {limit})")
        log_rejected(conn, f"a {event.kind} of {event.size} bytes: discarded", self.loop.now)

    # -- flood control ------------------------------------------------------------------------
    def _throttle(self, conn: Connection) -> None:
        """The flood bucket is empty (*conn*'s next event is held): handle nothing more until it refills, reading
        ahead meanwhile (:meth:`_read_ahead`); past ``kill`` seconds of it, drop the connection."""
        now = self.loop.now
        if not conn.flood_since:
            conn.flood_since = now
        elif self.flood.kill and now - conn.flood_since >= self.flood.kill:
            self._excess(conn, f"throttled for {now - conn.flood_since:.0f} s")
            return
        conn.lagged = True
        conn.backlog = False
        self.loop.backlog.discard(conn)
        self.loop.set_mask(conn)
        self.loop.call_later(self.flood.wait(conn.tokens), self._unthrottle, conn)
        self._read_ahead(conn)

    def _read_ahead(self, conn: Connection) -> None:
        """*conn* is lagged: move the events its parser completes into ``held``, unhandled, as InspIRCd's
        fake lag holds them in its recvq. More lines waiting than the flood policy allows is a flood:
        ``ERROR excess flood`` and a disconnect, and none of them reaches anyone. An event that is not a line
        (a frame, a refused or over-long input) ends the reading ahead: the connection is not read until
        the bucket refills (its frames' payloads never count as a flood)."""
        held = conn.held
        assert held is not None
        parser, flood, size = conn.parser, self.flood, self._line_size
        text = sum(max(size(event), 0) for event in held)
        while not conn.closed:
            if held and size(held[-1]) < 0:
                if not conn.throttled:
                    conn.throttled = True
                    self.loop.set_mask(conn)
                return
            if flood.excess(len(held), text):
                self._excess(conn, f"{len(held)} lines waiting while throttled")
                return
            event = parser.next_event()
            if event is None:
                self._track_partial(conn)
                return
            held.append(event)
            text += max(size(event), 0)

    def _line_size(self, event: object) -> int:
        """Characters *event* adds to what a throttled client has waiting, if it is a line (what the flood policy
        counts), else -1 (a frame, a refusal: reading ahead stops there). A door whose parser makes other line
        events (IRC's messages) overrides it."""
        return len(event.text) + 1 if event.__class__ is Line else -1

    def _excess(self, conn: Connection, why: str) -> None:
        """*conn* floods past its budget: tell it ``ERROR excess flood`` and close it (its held lines dropped)."""
        log.warning("dropping %s: excess flood (%s)", conn.nick, why, extra=CONN)
        conn.held = None
        self.loop.send_closing(conn, "excess flood")
        self.close(conn, "excess flood", flush=True)

    def _unthrottle(self, conn: Connection) -> None:
        """The bucket holds a token again: handle what *conn* holds (reading again once it is through)."""
        if conn.closed or not conn.lagged:
            return
        conn.lagged = conn.throttled = False
        self.loop.now = self.loop.clock()
        self.serve(conn)

    # -- unfinished input and closing connections ----------------------------------------------
    def _track_partial(self, conn: Connection) -> None:
        if conn.parser.partial:
            if not conn.partial_since:
                conn.partial_since = self.loop.now
                self.deadlines.watch(conn)
        else:
            conn.partial_since = 0.0

    def close(self, conn: Connection, reason: str, *, flush: bool = False) -> None:
        """Disconnect *conn*; with *flush*, after its queued output is sent (or CLOSE_GRACE seconds).

        The application hears ``on_close(conn, reason)`` once, when the
        connection stops taking part (at once, even when flushing). A
        connection dropped as too slow (``doomed`` by the loop) keeps what it
        had queued and gets ``ERROR too slow`` after it. Unless the client
        closed first (*reason* :data:`LOST`), the socket then closes
        gracefully (see the module docstring).
        """
        if conn.closed:
            return
        if conn.doomed:  # over its output budget (Loop.too_slow): it reads what it has, then why
            flush = True
        if flush and (conn.out or conn.streams) and not conn.closing:
            self._linger(conn)
            self.app.on_close(conn, reason)
            return
        conn.closed = True
        self.loop.forget(conn)
        self.deadlines.discard(conn)
        self.connections.pop(conn.id, None)
        if not conn.closing:
            self.app.on_close(conn, reason)
        if reason == LOST:
            conn.sock.close()
            self.count_out(conn.host)
            self._freed_descriptor()
        else:
            self.lingering.release(conn.sock, conn.host, shut_tcp)  # over TLS: close_notify, then the FIN

    def finish(self, timeout: float) -> None:
        """Server shutdown, after every connection was closed: drain the lingering ones for at most *timeout*
        seconds (until their clients close), then close them all. Loop thread only."""
        self.lingering.finish(timeout)

    @staticmethod
    def _shared_host(addr: Address) -> Address:
        """*addr* (a peer address) with its host string interned: the connections of one address share it."""
        if len(addr) == 2:
            return (sys.intern(addr[0]), addr[1])
        return (sys.intern(addr[0]), addr[1], addr[2], addr[3])

    def _linger(self, conn: Connection) -> None:
        """*conn* closes once its queued output is sent (or after CLOSE_GRACE seconds); it is read no more."""
        conn.closing = True
        conn.deadline = self.loop.clock() + CLOSE_GRACE
        self.loop.backlog.discard(conn)
        self.loop.set_mask(conn)
        self.loop.mark(conn)
        self.deadlines.watch(conn)

    def close_unseen(self, conn: Connection, *, flush: bool = False) -> None:
        """Close a connection the application never heard of (an HTTP request, an IRC client that never
        registered): no ``on_close``; with *flush*, once its queued output is sent (or CLOSE_GRACE seconds)."""
        if flush and (conn.out or conn.streams) and not conn.closing:
            self._linger(conn)
            return
        conn.closed = True
        self.loop.forget(conn)
        conn.sock.close()
        self.deadlines.discard(conn)
        self.count_out(conn.host)

    def shutdown(self) -> None:
        """Stop accepting (the listener is closed) and drop the TLS handshakes in progress."""
        if self.tls is not None:
            self.tls.shutdown()
        self.acceptor.close()
