"""The web transport: the page over HTTP and the room over a WebSocket, on the server's one loop.

A second transport beside :mod:`chatroom.net.tcp`, built from it: a
:class:`WebTransport` *is* a :class:`~chatroom.net.tcp.LineTransport` whose
connections parse with :class:`~chatroom.net.webproto.WebParser` (h11, then
wsproto) and write JSON events (:mod:`chatroom.wire.jsonwire`), so the line
transport's code enforces every budget on them: 64 KiB read per pass, 64
events per pass, the flood token bucket (an HTTP request costs 1, a line of
a text message what a TCP line costs), ``--idle-timeout`` for an unfinished
message, the per-address limit (shared with the line transports), the output
budget. Over TLS (HTTPS and WSS) it is the same transport holding a
:class:`~chatroom.net.tls.TLSGate` (``tls=``) whose clear-text answer is :func:`https_only`.

Life of a connection: accepted, it is an HTTP connection (``http`` table,
not the server's; the application does not know it) answering ``GET``/``HEAD``
of the page's files (:mod:`chatroom.net.webhttp`) for a ``Host`` that is
one of the server's own names or addresses (:class:`~chatroom.net.webhttp.Hosts`),
each request complete within ``request_timeout`` seconds (else ``408``; a
connection that sends nothing is closed after as long), an idle keep-alive
closed after ``idle_timeout``. HTTP connections have ids of their own
(negative; ``http1``, ``http2``... in the log). ``GET /ws`` with a WebSocket
upgrade and an allowed ``Origin`` makes it a member: a server id and guest
nick (the next of the server's, so a page load costs one), the ``hello``
event, then the application's ``on_connect`` as for a TCP client. After its
own Close frame the server sends nothing more on it. The wire is specified
in docs/protocol.md ("WebSocket and JSON events"). Loop thread only.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import logging
import socket
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol, Unpack

import h11
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection
from wsproto.utilities import ProtocolError

from chatroom.model.history import Entry
from chatroom.model.hub import Hub
from chatroom.model.room import Room
from chatroom.net.accept import listen
from chatroom.net.connection import Address, Application, Connection
from chatroom.net.loop import Loop
from chatroom.net.logs import CONN
from chatroom.net.relay import Relay
from chatroom.net.scheduler import Timer
from chatroom.net.tcp import CLOSE_GRACE, DoorOptions, LineOptions, LineTransport
from chatroom.net.tls import HANDSHAKE_TIMEOUT, TLSGate
from chatroom.sockets.tlssocket import Socket
from chatroom.net.webfiles import Download, Finish, Upload, link_target, serve_link
from chatroom.net.webgate import Gate, Hosts
from chatroom.net.webhttp import StaticFiles, plain_answer
from chatroom.net.webproto import HttpBody, HttpError, HttpRequest, PeerClosed, WebParser, WsClosed, WsPing
from chatroom.wire.jsonwire import (
    binary_frame, binary_header, encode_entry, hello_event, hit_event, line_event, members_event, you_event,
)
from chatroom.wire.lines import MAX_FRAME, MAX_LINE

__all__ = ["CLOSE_CODES", "REQUEST_TIMEOUT", "WebConnection", "WebTransport", "https_only", "open_web"]

log = logging.getLogger("chatroom.server")

#: Seconds an HTTP request may take from its first byte to its last header.
REQUEST_TIMEOUT = 10.0
#: Most room names the ``hello`` event lists (the first listed ones by name; ``/rooms`` pages through every one).
HELLO_ROOMS = 100
#: WebSocket close code by the reason a connection is closed for (anything else: 1001, going away).
CLOSE_CODES = {"quit": 1000, "excess flood": 1008, "timeout": 1008, "too slow": 1008, "wrong server password": 1008,
               "internal error": 1011}


class WebApplication(Application, Protocol):
    """What the web door needs of the application besides the door interface: the file relay, whose one-time
    links it serves (:mod:`chatroom.net.webfiles`)."""

    relay: Relay


class WebConnection(Connection):
    """A web connection: HTTP until ``upgraded``, then a member speaking JSON events.

    ``you`` is the last ``you`` event's state (nick, account, current room, rooms); ``since`` when the HTTP
    request being received began, or the connection if it sent none yet (loop seconds, 0: none), ``idle_since``
    when the last one was answered; ``close_sent`` is true once our Close frame is queued (nothing follows it);
    ``file`` the one-time file link it serves (:mod:`chatroom.net.webfiles`: the relay's lines and frames to
    it are rendered as HTTP), or None.
    """

    __slots__ = ("wire_index", "upgraded", "you", "since", "idle_since", "close_sent", "file")

    parser: WebParser  # its parser (Connection's is any EventParser)
    loop: Loop  # its loop, all of it (Connection needs only a Writer)
    transport: WebTransport

    def __init__(self, cid: int, sock: Socket, addr: Address, loop: Loop, transport: WebTransport, *,
                 tokens: float = 0.0, now: float = 0.0, wire_index: int = 0) -> None:
        super().__init__(cid, sock, addr, loop, transport, tokens=tokens, now=now)
        self.parser = WebParser()
        self.wire_index = wire_index
        self.upgraded = False
        self.you: tuple[str, str | None, str | None, tuple[str, ...]] | tuple[()] = ()
        self.since = 0.0
        self.idle_since = 0.0
        self.close_sent = False
        self.file: Download | Upload | None = None

    def deliver(self, data: bytes | memoryview) -> None:
        """As a connection's, except after our Close frame: RFC 6455 (5.5.1) allows no data frame after it,
        and browsers would report 1006 instead of our code and reason. A file link's :class:`Finish` closes it."""
        if data.__class__ is Finish:  # the relay is done with it: it forgets it once this pass is over
            self.file = None
            self.loop.call_later(0, self.transport.app.relay.on_client_left, self)
            self.transport.close(self, data.reason, flush=data.flush)
        elif data and not self.close_sent:
            super().deliver(data)

    def encode_text(self, text: str) -> bytes:
        """A line as a ``line`` event (a file link's: as its HTTP side says)."""
        if self.file is not None:
            return self.file.text(text)
        return line_event(text)

    def hit(self, entry: Entry, line: str) -> None:
        """A search hit as a ``hit`` event."""
        self.deliver(hit_event(entry))

    def frame(self, meta: str, payload: bytes = b"") -> bytes:
        """A file frame as one binary message (a file link's: as its HTTP side says)."""
        if self.file is not None:
            return self.file.frame(meta, payload)
        return binary_frame(meta, payload)

    def frame_header(self, meta: str, size: int) -> bytes:
        """The WebSocket header and ``META\\n`` of a binary message whose payload is shared (a download's: nothing)."""
        if isinstance(self.file, Download):  # (an upload link sends, it is sent no file)
            return self.file.frame_header(meta, size)
        return binary_header(meta, size)

    def joined(self, room: Room) -> None:
        """A ``members`` event for the room just joined."""
        if self.upgraded:
            self.deliver(members_event(room.name, room.nicks(), room.topic, room.topic_by, room.topic_at))

    def changed(self) -> None:
        """A ``you`` event, if nick, account, current room or rooms differ from the last one sent."""
        if not self.upgraded or self.closed or self.closing:
            return
        state = (self.nick, self.account, self.room.name if self.room is not None else None, tuple(self.rooms))
        if state != self.you:
            self.you = state
            self.deliver(you_event(*state))


class WebTransport(LineTransport):
    """HTTP and WebSocket on *listener*: :class:`~chatroom.net.tcp.LineTransport`'s keyword arguments (pass
    ``share=`` the main transport: one id counter, connection table and per-address budget; ``tls=`` a
    :class:`~chatroom.net.tls.TLSGate` for HTTPS and WSS) plus *wire_index* (the hub's index of
    :func:`~chatroom.wire.jsonwire.encode_entry`), *version*, *rooms* (the room names ``hello`` lists), *gate*
    (:class:`~chatroom.net.webgate.Gate`: what each request gets), *request_timeout* (seconds)."""

    app: WebApplication

    def __init__(self, loop: Loop, app: WebApplication, listener: socket.socket, *, wire_index: int, version: str,
                 rooms: Callable[[], Iterable[str]], gate: Gate, request_timeout: float = REQUEST_TIMEOUT,
                 **options: Unpack[LineOptions]) -> None:
        super().__init__(loop, app, listener, **options)
        self.wire_index = wire_index
        self.version = version
        self.rooms = rooms
        self.gate = gate
        # HTTP connections count on a counter of their own; a member takes the server's next id when its
        # WebSocket opens, so loading a page (a connection per file) costs one guest number, not eight
        self.member_ids, self.ids = self.ids, itertools.count(1)
        self.request_timeout = request_timeout
        self.http: dict[int, WebConnection] = {}
        self.files: dict[int, WebConnection] = {}  # connections serving a one-time file link
        self._http_timer: Timer | None = None

    # -- connections ------------------------------------------------------------------------
    def _connection(self, cid: int, sock: Socket, addr: Address) -> Connection:
        conn = WebConnection(-cid, sock, addr, self.loop, self, tokens=self.flood.burst, now=self.loop.now,
                                      wire_index=self.wire_index)  # a member's id and nick come with its WebSocket
        conn.nick = f"http{cid}"
        return conn

    def _greet(self, conn: Connection) -> None:
        """An HTTP connection: in the web table only, until it opens a WebSocket; its request timer runs."""
        assert isinstance(conn, WebConnection)  # made by _connection
        conn.idle_since = conn.since = self.loop.now
        self.http[conn.id] = conn
        if self._http_timer is None:
            self._http_timer = self.loop.call_later(1.0, self._sweep_http)

    def _too_many(self, text: str) -> bytes:
        """A 503 on the clear port; nothing on the TLS one (a browser there reads no clear text)."""
        return plain_answer(503, text) if self.gate.scheme == "http" else b""

    def serve(self, conn: Connection) -> None:
        """Handle a slice of events (the line transport's code), then start an HTTP request's timer, or tell a
        WebSocket member what its commands changed of its own state."""
        super().serve(conn)
        if conn.closed or not isinstance(conn, WebConnection):  # (all of this transport's are)
            return
        if conn.upgraded:
            conn.changed()
        elif not conn.since and conn.parser.head_pending:
            conn.since = self.loop.now

    def _other(self, conn: Connection, event: object) -> float:
        """HTTP requests, pings, closes; over-long or refused messages are answered as on TCP."""
        assert isinstance(conn, WebConnection)  # made by _connection
        if isinstance(event, HttpRequest):
            self._request(conn, event)
            return 1.0
        if isinstance(event, WsPing):
            conn.deliver(event.pong)
            return 1.0  # as a line: a pong for each ping is output the flood bucket must pay for
        if isinstance(event, WsClosed):
            if event.reply:
                conn.deliver(event.reply)
                conn.close_sent = True
            normal = event.code in (1000, 1001, 1005)
            self.close(conn, "connection lost" if normal else f"WebSocket error {event.code}: {event.reason}",
                       flush=True)
            return 0.0
        if isinstance(event, HttpError):
            if event.detail:
                log.info("refused an HTTP request from %s: %d %s (%r)", conn.host, event.status, event.reason,
                         event.detail[:200], extra=CONN)
            self._refuse_http(conn, event.status, event.reason)
            return 2.0
        if isinstance(event, HttpBody):
            if isinstance(conn.file, Upload):
                conn.file.end() if event.end else conn.file.body(event.data)
            return 0.0
        if isinstance(event, PeerClosed):
            self.close(conn, "connection lost")
            return 0.0
        return super()._other(conn, event)

    # -- HTTP ------------------------------------------------------------------------------------
    def _request(self, conn: WebConnection, request: HttpRequest) -> None:
        """Answer one request as the gate (:class:`~chatroom.net.webgate.Gate`) says: a refusal, the upgrade
        to a WebSocket, or a file."""
        conn.since, conn.idle_since = 0.0, self.loop.now
        parser = conn.parser
        refusal = self.gate.check(request, _local_address(conn.sock))
        if refusal is not None:
            if refusal.log:
                log.info("refused a request from %s: %s", conn.host, refusal.log, extra=CONN)
            return self._refuse_http(conn, refusal.status, refusal.reason, refusal.extra)
        link = link_target(request.target)
        if link is not None:
            return serve_link(self, conn, request, *link)
        if self.gate.websocket(request):
            try:
                conn.deliver(parser.upgrade(request))
            except ProtocolError:  # no key, no "Connection: Upgrade"...
                return self._refuse_http(conn, 400, "not a WebSocket upgrade (RFC 6455: Connection: Upgrade, "
                                                    "Sec-WebSocket-Key)")
            return self._open(conn)
        http = parser.http
        assert http is not None
        conn.deliver(self.gate.answer(http, request))
        parser.answered()
        if http.our_state is h11.MUST_CLOSE:
            self.close(conn, "done", flush=True)

    def _refuse_http(self, conn: WebConnection, status: int, reason: str,
                     extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
        """Answer *status* (a short text body, *extra* headers) and close once it is sent."""
        conn.deliver(plain_answer(status, reason, extra=extra))
        self.close(conn, f"HTTP {status}", flush=True)

    def _sweep_http(self) -> None:
        """Every second: close HTTP connections whose request is late (408) or that idled too long."""
        self._http_timer = None
        now = self.loop.now = self.loop.clock()
        for conn in list(self.http.values()):
            if conn.closing or conn.closed:
                continue
            if conn.since and now - conn.since >= self.request_timeout:
                log.info("closing %s from %s: request timeout", conn.nick, conn.host, extra=CONN)
                if conn.parser.head_pending:
                    self._refuse_http(conn, 408, f"the request took more than {self.request_timeout:g} s")
                else:  # it said nothing: a browser's spare connection, or a client holding a place
                    self.close(conn, "request timeout")
            elif not conn.since and self.partial_timeout and now - conn.idle_since >= self.partial_timeout:
                self.close(conn, "idle")
        if self.http:
            self._http_timer = self.loop.call_later(1.0, self._sweep_http)

    # -- the WebSocket -------------------------------------------------------------------------------
    def _open(self, conn: WebConnection) -> None:
        """The upgrade was answered: the connection becomes a member (an id and nick of the server's)."""
        del self.http[conn.id]
        old = conn.nick
        conn.id = next(self.member_ids)
        conn.nick = f"guest{conn.id}"
        conn.upgraded = True
        conn.caps = frozenset({"binary"})
        log.info("%s is %s (WebSocket)", old, conn.nick, extra=CONN)
        conn.deliver(hello_event(conn.nick, self.version, self.rooms(), MAX_LINE, MAX_FRAME,
                                 (self.flood.rate, self.flood.burst)))
        super()._greet(conn)

    def close(self, conn: Connection, reason: str, *, flush: bool = False) -> None:
        """As the line transport's, plus a WebSocket close frame (code from :data:`CLOSE_CODES`); an HTTP
        connection is closed without the application hearing of it."""
        if conn.closed:
            return
        assert isinstance(conn, WebConnection)
        if conn.upgraded:
            self._close_frame(conn, reason, flush)
            return super().close(conn, reason, flush=flush)
        if self.files.pop(conn.id, None) is not None and conn.file is not None and not conn.closing:
            self.app.relay.on_client_left(conn)  # the relay forgets it as a receiver or sender
        self.close_unseen(conn, flush=flush)
        if conn.closed:
            self.http.pop(conn.id, None)

    def _close_frame(self, conn: WebConnection, reason: str, flush: bool) -> None:
        ws = conn.parser.ws
        if ws is None or ws.state is not ConnectionState.OPEN or reason == "connection lost":
            return
        data = ws.send(CloseConnection(code=CLOSE_CODES.get(reason, 1001), reason=reason[:100]))
        if flush and not conn.doomed:
            conn.deliver(data)
            conn.close_sent = True
        elif conn.doomed:  # too slow: after what it has (ERROR too slow last), within the grace of a flushed close
            conn.out.append(data)
            conn.close_sent = True
        elif not conn.out:  # closing now: one try, never behind half-sent output
            try:
                conn.sock.send(data)
            except OSError:
                pass

    def shutdown(self) -> None:
        """Stop accepting; close the HTTP connections and file links (members are closed by the server)."""
        for conn in [*self.http.values(), *self.files.values()]:
            self.close(conn, "shutdown")
        if self._http_timer is not None:
            self._http_timer.cancel()
        super().shutdown()


def _local_address(sock: Socket) -> str:
    """The address a connection came in on (``getsockname()``), ``""`` if the socket cannot say."""
    try:
        return str(sock.getsockname()[0])
    except (OSError, AttributeError, IndexError):
        return ""


def https_only(spoke: bool) -> bytes:
    """The web door's clear-text answer on its HTTPS port (a :class:`~chatroom.net.tls.ClearTextAnswer`): clear
    HTTP gets a short HTTP 400 in clear; nothing else goes out in clear (a client that said nothing gets
    nothing)."""
    return plain_answer(400, "this port speaks HTTPS: use https:// in the address") if spoke else b""


def open_web(loop: Loop, app: WebApplication, hub: Hub, host: str, port: int = 0, *, tls: ssl.SSLContext | None = None,
             handshake_timeout: float = HANDSHAKE_TIMEOUT, origins: Iterable[str] = (), static: Path | None = None,
             hosts: Iterable[str] = (), request_timeout: float = REQUEST_TIMEOUT, listener: socket.socket | None = None,
             **options: Unpack[DoorOptions]) -> WebTransport:
    """Bind *host*:*port* (0: the kernel picks) and serve the web transport there for *app*, whose room model is
    *hub* (:class:`~chatroom.model.hub.Hub`: the JSON encoder is registered with it); over TLS with the
    ``ssl.SSLContext`` *tls* (*handshake_timeout* seconds). *origins* are allowed besides the page's own (``"*"``:
    any); *static*, the folder of the page's files (default: the package's ``chatroom/web/static``; read once,
    here); *hosts*, ``Host`` names answered besides the machine's own names, *host* and the addresses
    (``--web-host``; ``"*"``: any); *request_timeout*, seconds per HTTP request;
    *listener*, a listening socket bound already (then *port* is unused);
    *options*, :class:`~chatroom.net.tcp.LineTransport`'s. Raises OSError if it cannot bind."""
    listener = listener if listener is not None else listen(host, port)

    def rooms() -> list[str]:  # what hello lists: the first listed rooms (/rooms pages through the rest)
        return [room.name for room in hub.rooms.listed()[:HELLO_ROOMS]]

    gate = Gate(StaticFiles(static), Hosts([*_own_names(), host, *hosts]), origins, "http" if tls is None else "https")
    https = None if tls is None else TLSGate(tls, handshake_timeout=handshake_timeout, answer=https_only)
    return WebTransport(loop, app, listener, wire_index=hub.add_wire(encode_entry, variants=False), version=_version(),
                        rooms=rooms, gate=gate, request_timeout=request_timeout, tls=https, **options)


def _own_names() -> list[str]:
    """The machine's host name, and its ``.local`` (mDNS) form when it is a bare name."""
    name = socket.gethostname().lower()
    return [name, f"{name}.local"] if name and "." not in name else [name]


def _version() -> str:
    try:
        return importlib.metadata.version("chatroom")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
