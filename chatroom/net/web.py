"""The web transport: the page over HTTP and the room over a WebSocket, on the server's one loop.

A second transport beside :mod:`chatroom.net.tcp`, built from it: a
:class:`WebTransport` *is* a :class:`~chatroom.net.tcp.LineTransport` whose
connections parse with :class:`~chatroom.net.webproto.WebParser` (h11, then
wsproto) and write JSON events (:mod:`chatroom.wire.jsonwire`), so the line
transport's code enforces every budget on them: 64 KiB read per pass, 64
events per pass, the flood token bucket (an HTTP request costs 1, a line of
a text message what a TCP line costs), ``--idle-timeout`` for an unfinished
message, the per-address limit (shared with the line transports), the output
budget. :class:`WebTLSTransport` is the same over TLS (HTTPS and WSS),
built on :class:`~chatroom.net.tls.TLSTransport`.

Life of a connection: accepted, it is an HTTP connection (``http`` table,
not the server's; the application does not know it) answering ``GET``/``HEAD``
of the page's files (:mod:`chatroom.net.webhttp`), each request complete
within ``request_timeout`` seconds (else ``408``), an idle keep-alive closed
after ``idle_timeout``. ``GET /ws`` with a WebSocket upgrade and an allowed
``Origin`` makes it a member: a server id and guest nick, the ``hello``
event, then the application's ``on_connect`` as for a TCP client. The wire
is specified in docs/protocol.md ("WebSocket and JSON events"). Loop thread only.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import h11
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection
from wsproto.utilities import ProtocolError

from chatroom.net.connection import Connection
from chatroom.net.logs import CONN
from chatroom.net.tcp import CLOSE_GRACE, LineTransport, listen
from chatroom.net.tls import TLSTransport
from chatroom.net.webhttp import StaticFiles, plain_answer, respond
from chatroom.net.webproto import HttpError, HttpRequest, PeerClosed, WebParser, WsClosed, WsPing
from chatroom.wire.jsonwire import binary_frame, binary_header, encode_entry, hello_event, line_event, members_event, you_event
from chatroom.wire.lines import MAX_FRAME, MAX_LINE

__all__ = ["CLOSE_CODES", "REQUEST_TIMEOUT", "WebConnection", "WebTLSTransport", "WebTransport", "open_web"]

log = logging.getLogger("chatroom.server")

#: Seconds an HTTP request may take from its first byte to its last header.
REQUEST_TIMEOUT = 10.0
#: Most room names the ``hello`` event lists (the first listed ones by name; ``/rooms`` pages through every one).
HELLO_ROOMS = 100
#: WebSocket close code by the reason a connection is closed for (anything else: 1001, going away).
CLOSE_CODES = {"quit": 1000, "excess flood": 1008, "timeout": 1008, "too slow": 1008, "wrong server password": 1008,
               "internal error": 1011}


class WebConnection(Connection):
    """A web connection: HTTP until ``upgraded``, then a member speaking JSON events.

    ``you`` is the last ``you`` event's state (nick, account, current room, rooms); ``since`` when the HTTP
    request being received began (loop seconds, 0: none), ``idle_since`` when the last one was answered.
    """

    __slots__ = ("wire_index", "upgraded", "you", "since", "idle_since")

    def __init__(self, *args: Any, wire_index: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parser = WebParser()  # type: ignore[assignment]
        self.wire_index = wire_index  # type: ignore[misc]
        self.upgraded = False
        self.you: tuple[Any, ...] = ()
        self.since = 0.0
        self.idle_since = 0.0

    def encode_text(self, text: str) -> bytes:
        """A line as a ``line`` event."""
        return line_event(text)

    def frame(self, meta: str, payload: bytes = b"") -> bytes:
        """A file frame as one binary message."""
        return binary_frame(meta, payload)

    def frame_header(self, meta: str, size: int) -> bytes:
        """The WebSocket header and ``META\\n`` of a binary message whose payload is shared."""
        return binary_header(meta, size)

    def joined(self, room: Any) -> None:
        """A ``members`` event for the room just joined."""
        if self.upgraded:
            self.deliver(members_event(room.name, room.nicks(), room.topic, room.topic_by, room.topic_at))

    def changed(self) -> None:
        """A ``you`` event, if nick, account, current room or rooms differ from the last one sent."""
        if not self.upgraded or self.closed:
            return
        state = (self.nick, self.account, self.room.name if self.room is not None else None, tuple(self.rooms))
        if state != self.you:
            self.you = state
            self.deliver(you_event(*state))


class WebTLSConnection(WebConnection):
    """A web connection over TLS (``more``: see :class:`~chatroom.net.tls.TLSConnection`)."""

    __slots__ = ("more",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.more = False


class _Web:
    """What the clear and the TLS web transports add to their line transport (a mixin: it comes first)."""

    loop: Any
    app: Any
    flood: Any
    ids: Any
    connections: dict[int, Connection]
    partial_timeout: float
    _watch: set[Connection]
    _connection_class: type[WebConnection] = WebConnection

    def _setup(self, *, wire_index: int, version: str, rooms: Callable[[], Iterable[str]],
               origins: Iterable[str] = (), static: StaticFiles | None = None,
               request_timeout: float = REQUEST_TIMEOUT, scheme: str = "http") -> None:
        self.wire_index = wire_index
        self.version = version
        self.rooms = rooms
        self.origins = {_origin(o) for o in origins}
        self.static = static if static is not None else StaticFiles()
        self.request_timeout = request_timeout
        self.scheme = scheme
        self.http: dict[int, WebConnection] = {}
        self._http_timer: Any = None

    # -- connections ------------------------------------------------------------------------
    def _connection(self, cid: int, sock: Any, addr: Any) -> Connection:
        conn = self._connection_class(-cid, sock, addr, self.loop, self, tokens=self.flood.burst, now=self.loop.now,
                                      wire_index=self.wire_index)  # a member's id and nick come with its WebSocket
        conn.nick = f"http{cid}"
        return conn

    def _greet(self, conn: WebConnection) -> None:  # type: ignore[override]
        """An HTTP connection: in the web table only, until it opens a WebSocket."""
        conn.idle_since = self.loop.now
        self.http[conn.id] = conn
        if self._http_timer is None:
            self._http_timer = self.loop.call_later(1.0, self._sweep_http)

    def _too_many(self, text: str) -> bytes:
        return plain_answer(503, text)

    def serve(self, conn: WebConnection) -> None:  # type: ignore[override]
        """Handle a slice of events (the line transport's code), then start an HTTP request's timer, or tell a
        WebSocket member what its commands changed of its own state."""
        super().serve(conn)  # type: ignore[misc]
        if conn.closed:
            return
        if conn.upgraded:
            conn.changed()
        elif not conn.since and conn.parser.head_pending:  # type: ignore[attr-defined]
            conn.since = self.loop.now

    def _other(self, conn: WebConnection, event: Any) -> float:
        """HTTP requests, pings, closes; over-long or refused messages are answered as on TCP."""
        kind = event.__class__
        if kind is HttpRequest:
            self._request(conn, event)
            return 1.0
        if kind is WsPing:
            conn.deliver(event.pong)
            return 0.0
        if kind is WsClosed:
            if event.reply:
                conn.deliver(event.reply)
            normal = event.code in (1000, 1001, 1005)
            self.close(conn, "connection lost" if normal else f"WebSocket error {event.code}: {event.reason}",
                       flush=True)
            return 0.0
        if kind is HttpError:
            self._refuse_http(conn, event.status, event.reason)
            return 2.0
        if kind is PeerClosed:
            self.close(conn, "connection lost")
            return 0.0
        return super()._other(conn, event)  # type: ignore[misc,no-any-return]

    # -- HTTP ------------------------------------------------------------------------------------
    def _request(self, conn: WebConnection, request: HttpRequest) -> None:
        conn.since, conn.idle_since = 0.0, self.loop.now
        parser: WebParser = conn.parser  # type: ignore[assignment]
        headers, host = request.headers, request.headers.get(b"host")
        path = request.target.split(b"?", 1)[0]
        if path == b"/ws":
            if headers.get(b"upgrade", b"").lower() != b"websocket":
                return self._refuse_http(conn, 426, "this is the WebSocket: connect with a WebSocket upgrade")
            if request.method != b"GET":
                return self._refuse_http(conn, 405, "GET only")
            if not self._origin_allowed(headers.get(b"origin"), host):
                origin = headers.get(b"origin", b"").decode("latin-1")[:100]
                log.info("refused a WebSocket from %s: origin %r", conn.host, origin, extra=CONN)
                return self._refuse_http(conn, 403, f"origin {origin} is not allowed (chatroom-server --web-origin)")
            try:
                conn.deliver(parser.upgrade(request))
            except ProtocolError as exc:  # no key, a wrong version...: wsproto's reason
                return self._refuse_http(conn, 400, f"not a WebSocket upgrade: {exc}")
            return self._open(conn)
        if request.method not in (b"GET", b"HEAD"):
            return self._refuse_http(conn, 405, "GET or HEAD only", allow=True)
        http = parser.http
        assert http is not None
        found = self.static.get(request.target)
        if found is None:
            data = respond(http, 404, body=b"not found\n", host=host, head=request.method == b"HEAD")
        else:
            body, content_type, etag = found
            match = etag in headers.get(b"if-none-match", b"")
            data = respond(http, 304 if match else 200, body=body, content_type=content_type, etag=etag, host=host,
                           head=request.method == b"HEAD")
        conn.deliver(data)
        parser.answered()
        if http.our_state is h11.MUST_CLOSE:
            self.close(conn, "done", flush=True)

    def _refuse_http(self, conn: WebConnection, status: int, reason: str, allow: bool = False) -> None:
        """Answer *status* (a short text body) and close once it is sent."""
        conn.deliver(plain_answer(status, reason, allow=allow))
        self.close(conn, f"HTTP {status}", flush=True)

    def _origin_allowed(self, origin: bytes | None, host: bytes | None) -> bool:
        if origin is None:  # not a browser: Origin is what protects a browser's user from other pages
            return True
        given = _origin(origin.decode("latin-1"))
        if "*" in self.origins or given in self.origins:
            return True
        return host is not None and given == _origin(f"{self.scheme}://{host.decode('latin-1')}")

    def _sweep_http(self) -> None:
        """Every second: close HTTP connections whose request is late (408) or that idled too long."""
        self._http_timer = None
        now = self.loop.now = self.loop.clock()
        for conn in list(self.http.values()):
            if conn.closing or conn.closed:
                continue
            if conn.since and now - conn.since >= self.request_timeout:
                log.info("closing %s from %s: request timeout", conn.nick, conn.host, extra=CONN)
                self._refuse_http(conn, 408, f"the request took more than {self.request_timeout:g} s")
            elif not conn.since and self.partial_timeout and now - conn.idle_since >= self.partial_timeout:
                self.close(conn, "idle")
        if self.http:
            self._http_timer = self.loop.call_later(1.0, self._sweep_http)

    # -- the WebSocket -------------------------------------------------------------------------------
    def _open(self, conn: WebConnection) -> None:
        """The upgrade was answered: the connection becomes a member (an id and nick of the server's)."""
        del self.http[conn.id]
        old = conn.nick
        conn.id = next(self.ids)
        conn.nick = f"guest{conn.id}"
        conn.upgraded = True
        conn.caps = frozenset({"binary"})
        log.info("%s is %s (WebSocket)", old, conn.nick, extra=CONN)
        conn.deliver(hello_event(conn.nick, self.version, self.rooms(), MAX_LINE, MAX_FRAME))
        LineTransport._greet(self, conn)  # type: ignore[arg-type]

    def close(self, conn: Connection, reason: str, *, flush: bool = False) -> None:
        """As the line transport's, plus a WebSocket close frame (code from :data:`CLOSE_CODES`); an HTTP
        connection is closed without the application hearing of it."""
        if conn.closed:
            return
        assert isinstance(conn, WebConnection)
        if conn.upgraded:
            self._close_frame(conn, reason, flush)
            return super().close(conn, reason, flush=flush)  # type: ignore[misc,no-any-return]
        if flush and conn.out and not conn.closing:
            conn.closing = True
            conn.deadline = self.loop.clock() + CLOSE_GRACE
            self.loop.backlog.discard(conn)
            self.loop.set_mask(conn)
            self.loop.mark(conn)
            self._watch_conn(conn)  # type: ignore[attr-defined]
            return
        conn.closed = True
        self.loop.forget(conn)
        conn.sock.close()
        self._watch.discard(conn)
        self._count_out(conn.host)  # type: ignore[attr-defined]
        self.http.pop(conn.id, None)

    def _close_frame(self, conn: WebConnection, reason: str, flush: bool) -> None:
        ws = conn.parser.ws  # type: ignore[attr-defined]
        if ws is None or ws.state is not ConnectionState.OPEN or reason == "connection lost":
            return
        data = ws.send(CloseConnection(code=CLOSE_CODES.get(reason, 1001), reason=reason[:100]))
        if flush and not conn.doomed:
            conn.deliver(data)
        elif not conn.out:  # closing now: one try, never behind half-sent output
            try:
                conn.sock.send(data)
            except OSError:
                pass

    def shutdown(self) -> None:
        """Stop accepting; close the HTTP connections (members are closed by the server)."""
        for conn in list(self.http.values()):
            self.close(conn, "shutdown")
        if self._http_timer is not None:
            self._http_timer.cancel()
        super().shutdown()  # type: ignore[misc]


def _origin(text: str) -> str:
    """An origin compared as browsers send it: lower case, no trailing slash, no default port."""
    text = text.strip().lower().rstrip("/")
    for scheme, port in (("http://", ":80"), ("https://", ":443")):
        if text.startswith(scheme) and text.endswith(port):
            return text[: -len(port)]
    return text


class WebTransport(_Web, LineTransport):
    """HTTP and WebSocket on *listener*: :class:`~chatroom.net.tcp.LineTransport`'s keyword arguments (pass
    ``share=`` the main transport: one id counter, connection table and per-address budget) plus those of
    ``_Web._setup``: *wire_index* (the hub's index of :func:`~chatroom.wire.jsonwire.encode_entry`),
    *version*, *rooms* (the server's room names, for ``hello``), *origins* (allowed besides the page's own;
    ``"*"``: any), *static*, *request_timeout* (seconds)."""

    def __init__(self, loop: Any, app: Any, listener: Any, *, wire_index: int, version: str,
                 rooms: Callable[[], Iterable[str]], origins: Iterable[str] = (), static: StaticFiles | None = None,
                 request_timeout: float = REQUEST_TIMEOUT, **options: Any) -> None:
        LineTransport.__init__(self, loop, app, listener, **options)
        self._setup(wire_index=wire_index, version=version, rooms=rooms, origins=origins, static=static,
                    request_timeout=request_timeout)


class WebTLSTransport(_Web, TLSTransport):
    """HTTPS and WSS: :class:`WebTransport` over :class:`~chatroom.net.tls.TLSTransport` (*context* the
    server's ``ssl.SSLContext``, *handshake_timeout* seconds)."""

    _connection_class = WebTLSConnection

    def __init__(self, loop: Any, app: Any, listener: Any, *, wire_index: int, version: str,
                 rooms: Callable[[], Iterable[str]], origins: Iterable[str] = (), static: StaticFiles | None = None,
                 request_timeout: float = REQUEST_TIMEOUT, **options: Any) -> None:
        TLSTransport.__init__(self, loop, app, listener, **options)
        self._setup(wire_index=wire_index, version=version, rooms=rooms, origins=origins, static=static,
                    request_timeout=request_timeout, scheme="https")


def open_web(loop: Any, app: Any, hub: Any, host: str, port: int = 0, *, tls: Any = None, handshake_timeout: float = 10.0,
             origins: Iterable[str] = (), static: Path | None = None, request_timeout: float = REQUEST_TIMEOUT,
             listener: Any = None, **options: Any) -> WebTransport | WebTLSTransport:
    """Bind *host*:*port* (0: the kernel picks) and serve the web transport there for *app*, whose room model is
    *hub* (:class:`~chatroom.model.hub.Hub`: the JSON encoder is registered with it); over TLS with the
    ``ssl.SSLContext`` *tls* (*handshake_timeout* seconds). *origins* are allowed besides the page's own (``"*"``:
    any); *static*, the folder of the page's files (default: the package's ``chatroom/web/static``; read once,
    here); *request_timeout*, seconds per HTTP request;
    *listener*, a listening socket bound already (then *port* is unused);
    *options*, :class:`~chatroom.net.tcp.LineTransport`'s. Raises OSError if it cannot bind."""
    listener = listener if listener is not None else listen(host, port)

    def rooms() -> list[str]:  # what hello lists: the first listed rooms (/rooms pages through the rest)
        return [room.name for room in hub.rooms.listed()[:HELLO_ROOMS]]

    web = dict(wire_index=hub.add_wire(encode_entry, variants=False), version=_version(), rooms=rooms,
               origins=origins, static=StaticFiles(static), request_timeout=request_timeout)
    if tls is not None:
        return WebTLSTransport(loop, app, listener, context=tls, handshake_timeout=handshake_timeout, **web, **options)
    return WebTransport(loop, app, listener, **web, **options)


def _version() -> str:
    try:
        return importlib.metadata.version("chatroom")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
