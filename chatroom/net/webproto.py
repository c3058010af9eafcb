"""One web connection's input, sans-I/O: HTTP/1.1 requests (h11), then, after an upgrade, WebSocket messages (wsproto).

:class:`WebParser` is the ``parser`` of a web connection: it has the line
parser's interface (``receive_data``, ``next_event``, ``partial``,
``in_frame``, ``frame_filter``), so the line transport's event loop, flood
control and timeouts drive it unchanged (:mod:`chatroom.net.web`). Events:

- before the upgrade: :class:`HttpRequest` (a complete request head),
  :class:`HttpBody` (a piece of its body, then its end: only file uploads
  have one, :mod:`chatroom.net.webgate` refuses the others),
  :class:`HttpError` (answer with this status and close), :class:`PeerClosed`;
- after it: :class:`~chatroom.wire.lines.Line` for each line of a text
  message, :class:`~chatroom.wire.lines.Frame` for a binary message
  (``META\\n`` + payload), :class:`~chatroom.wire.lines.TooLong` for a message
  over the limits (discarded as it arrives), :class:`~chatroom.wire.lines.Refused`
  for a frame ``frame_filter`` refused, :class:`WsPing`, :class:`WsClosed`
  (the peer closed, or broke the protocol: ``code`` says which).

Limits (docs/protocol.md, "WebSocket and JSON events"): request line and
headers at most :data:`MAX_HEAD` bytes and :data:`MAX_HEADERS` headers; a
text message at most ``max_text`` bytes, a binary one at most ``max_frame``
payload bytes plus :data:`MAX_META` of meta. wsproto itself has no size limit
and hands over big messages in pieces; they are counted here as they arrive.
Loop thread only (one parser per connection).
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Request, TextMessage

from chatroom.wire.lines import MAX_FRAME, MAX_LINE, Frame, FrameFilter, Line, Refused, TooLong

__all__ = ["MAX_HEAD", "MAX_HEADERS", "MAX_META", "HttpBody", "HttpError", "HttpRequest", "PeerClosed", "WebParser",
           "WsClosed", "WsPing"]

#: Bytes of request line and headers h11 may hold (``max_incomplete_event_size``); past it: 431.
MAX_HEAD = 8 * 1024
#: Headers one request may carry; past it: 431.
MAX_HEADERS = 64
#: Bytes of META (before the ``\n``) a binary message may carry besides its payload.
MAX_META = 1024
#: What a request h11 cannot parse is told, by h11's status hint (anything else: 400).
_BAD_HTTP = {431: f"request head over {MAX_HEAD} bytes"}
#: A request line (RFC 9112, 3): METHOD (a token) SP target SP HTTP-version.
_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP/\d\.\d")
#: The answer to a first line that is none: a chat line or an IRC command sent to the web port by mistake.
NOT_HTTP = ("this is chatroom-server's web port (open it in a browser); chatroom-client and nc use the port "
            "of the 'chatroom-server listening on' line")


#: h11's state of a peer that asked to switch protocols (an upgrade request not answered yet): what it sends next
#: is no more HTTP. h11 documents it ("Switching protocols") but leaves it out of its ``__all__``.
_MIGHT_SWITCH = h11.MIGHT_SWITCH_PROTOCOL  # type: ignore[attr-defined]  # documented, not in h11.__all__


class HttpRequest:
    """A complete HTTP request head: ``method`` and ``target`` (``bytes``), ``headers`` (lower-case name ->
    value, ``bytes``; the last of repeated ones), ``raw`` (h11's header list, for wsproto); ``body`` the
    announced body's length in bytes (``Content-Length``; -1: chunked; None: no body)."""

    __slots__ = ("method", "target", "headers", "raw", "body")

    def __init__(self, method: bytes, target: bytes, raw: Any) -> None:
        self.method = method
        self.target = target
        self.raw = raw
        self.headers = {name: value for name, value in raw}
        length = self.headers.get(b"content-length", b"0").strip()
        self.body: int | None = -1 if b"transfer-encoding" in self.headers else int(length) if length != b"0" else None


class HttpBody:
    """A piece of a request's body (``data``, ``bytes``), or its end (``end`` True, no data)."""

    __slots__ = ("data", "end")

    def __init__(self, data: bytes, end: bool = False) -> None:
        self.data = data
        self.end = end


class HttpError:
    """Bad input before the upgrade: answer ``status`` (``int``) with ``reason`` (``str``, ours: never the
    request's bytes), then close; ``detail`` is what h11 said, for the log only."""

    __slots__ = ("status", "reason", "detail")

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        self.status = status
        self.reason = reason
        self.detail = detail


class PeerClosed:
    """The peer closed its side of the HTTP connection."""

    __slots__ = ()


class WsPing:
    """A WebSocket ping; ``pong`` is the frame answering it (``bytes``)."""

    __slots__ = ("pong",)

    def __init__(self, pong: bytes) -> None:
        self.pong = pong


class WsClosed:
    """The WebSocket is ending: ``code``/``reason`` the peer sent, or wsproto's for a protocol error (1002,
    1007...); ``reply`` the close frame to send back (``bytes``, maybe empty)."""

    __slots__ = ("code", "reason", "reply")

    def __init__(self, code: int, reason: str, reply: bytes) -> None:
        self.code = code
        self.reason = reason
        self.reply = reply


def _request_line_so_far(head: bytes) -> bool:
    """False when *head* (a request's bytes so far) has a complete first line that is no request line."""
    end = head.find(b"\n")
    return end < 0 or _REQUEST_LINE.fullmatch(head[:end].rstrip(b"\r")) is not None


class WebParser:
    """h11 until :meth:`upgrade`, then wsproto; ``events`` holds the lines of a text message not handed out yet."""

    __slots__ = ("http", "ws", "events", "frame_filter", "max_text", "max_frame", "_parts", "_size", "_open",
                 "_text", "_skip", "_gen", "_body")

    def __init__(self, max_text: int = MAX_LINE, max_frame: int = MAX_FRAME) -> None:
        self.http: h11.Connection | None = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.ws: WSConnection | None = None
        self.events: deque[Any] = deque()
        self.frame_filter: FrameFilter | None = None
        self.max_text = max_text
        self.max_frame = max_frame
        self._parts: list[Any] = []  # the pieces of the message being received
        self._size = 0  # its bytes so far
        self._open = False  # inside a message
        self._text = False
        self._skip = False  # over the limit: counted, not kept
        self._gen: Any = None  # wsproto's events() generator while it has events left
        self._body = False  # the request being read has a body

    @property
    def partial(self) -> bool:
        """True inside a WebSocket message (the idle timeout's clock runs); HTTP has its own timer."""
        return self._open

    @property
    def in_frame(self) -> bool:
        """True inside a binary message."""
        return self._open and not self._text

    @property
    def head_pending(self) -> bool:
        """True while bytes of an HTTP request not handled yet are buffered (its request timer runs)."""
        return self.http is not None and bool(self.http.trailing_data[0])

    def receive_data(self, data: bytes | memoryview) -> None:
        """Feed bytes read from the socket (copied at once)."""
        if self.ws is not None:
            self.ws.receive_data(bytes(data))
        elif self.http is not None and self.http.their_state is not _MIGHT_SWITCH:
            self.http.receive_data(bytes(data))

    def upgrade(self, request: HttpRequest) -> bytes:
        """Accept *request* as a WebSocket (no extension, no subprotocol); returns the ``101`` response.

        Raises ``wsproto.utilities.ProtocolError`` for a request that is no valid upgrade (no key, another version).
        """
        assert self.http is not None
        while self.http.next_event() not in (h11.PAUSED, h11.NEED_DATA):  # the request's EndOfMessage
            pass
        trailing = self.http.trailing_data[0]
        ws = WSConnection(ConnectionType.SERVER)
        ws.initiate_upgrade_connection(request.raw, request.target)
        for _ in ws.events():  # the Request event it made
            pass
        data = ws.send(AcceptConnection(extensions=[]))
        self.ws, self.http = ws, None
        if trailing:
            ws.receive_data(trailing)
        return data

    def next_event(self) -> Any:
        """The next event (see the module docstring), or None until more bytes arrive."""
        if self.events:
            return self.events.popleft()
        if self.ws is not None:
            return self._next_ws()
        if self.http is not None:
            return self._next_http()
        return None

    # -- HTTP ----------------------------------------------------------------------------------
    def _next_http(self) -> Any:
        http = self.http
        assert http is not None
        for _ in range(4):
            try:
                event = http.next_event()
            except h11.RemoteProtocolError as exc:
                self.http = None
                status = exc.error_status_hint
                return HttpError(status, _BAD_HTTP.get(status, "malformed HTTP request"), str(exc))
            if event is h11.NEED_DATA:
                if http.their_state is h11.IDLE and not _request_line_so_far(http.trailing_data[0]):
                    self.http = None
                    return HttpError(400, NOT_HTTP)
                return None
            if event is h11.PAUSED:
                if http.our_state is h11.DONE and http.their_state is h11.DONE:
                    http.start_next_cycle()
                    continue
                return None
            if isinstance(event, h11.Request):
                if len(event.headers) > MAX_HEADERS:
                    return HttpError(431, f"more than {MAX_HEADERS} headers")
                if len(event.target) + sum(len(n) + len(v) + 4 for n, v in event.headers) > MAX_HEAD:
                    return HttpError(431, f"request head over {MAX_HEAD} bytes")  # h11 bounds only partial heads
                request = HttpRequest(event.method, event.target, event.headers)
                self._body = request.body is not None
                return request
            if isinstance(event, h11.Data):
                return HttpBody(bytes(event.data))
            if isinstance(event, h11.ConnectionClosed):
                return PeerClosed()
            if self._body:  # EndOfMessage of a request with a body
                self._body = False
                return HttpBody(b"", True)
            # EndOfMessage: the request is complete; loop to start the next cycle once answered
        return None

    def answered(self) -> None:
        """The response to the current request was sent: read the next one (keep-alive)."""
        http = self.http
        if http is not None and http.our_state is h11.DONE and http.their_state is h11.DONE:
            http.start_next_cycle()

    # -- WebSocket -----------------------------------------------------------------------------
    def _next_ws(self) -> Any:
        ws = self.ws
        assert ws is not None
        for _ in range(64):
            gen = self._gen
            if gen is None:
                gen = self._gen = ws.events()
            event = next(gen, None)
            if event is None:  # wsproto ran dry: a new generator once more bytes came
                self._gen = None
                return None
            kind = event.__class__
            if kind is TextMessage and not self._open and event.message_finished and len(event.data) <= self.max_text \
                    and "\n" not in event.data and (len(event.data) * 4 <= self.max_text or event.data.isascii()):
                data = event.data  # the common case: one line typed, one whole frame
                return Line(data[:-1] if data.endswith("\r") else data)
            if kind is TextMessage or kind is BytesMessage:
                done = self._piece(event, kind is TextMessage)
                if done is not None:
                    return done
            elif kind is Ping:
                return WsPing(ws.send(event.response()))
            elif kind is CloseConnection:
                self._open = False
                code, reason = event.code, event.reason or ""
                try:
                    reply = ws.send(event.response() if ws.state is ConnectionState.REMOTE_CLOSING
                                    else CloseConnection(code=code, reason=reason[:100]))
                except Exception:  # noqa: BLE001 - wsproto refuses in a closed state: nothing to answer
                    reply = b""
                return WsClosed(int(code), reason, reply)
            # Pong: nothing to do
        return None

    def _piece(self, event: Any, text: bool) -> Any:
        data = event.data
        if not self._open:
            self._open, self._text, self._skip, self._size, self._parts = True, text, False, 0, []
        self._size += len(data) if not text or data.isascii() else len(data.encode())
        limit = self.max_text if text else self.max_frame + MAX_META
        if self._size > limit:
            self._skip, self._parts = True, []
        elif not self._skip:
            self._parts.append(data)
        if not event.message_finished:
            return None
        self._open = False
        if self._skip:
            return TooLong("line" if text else "frame", self._size)
        if text:
            whole = "".join(self._parts)
            self._parts = []
            lines = whole.split("\n")
            if len(lines) > 1 and not lines[-1]:
                lines.pop()  # a message ending with a newline
            self.events.extend(Line(line[:-1] if line.endswith("\r") else line) for line in lines)
            return self.events.popleft()
        blob = b"".join(self._parts)
        self._parts = []
        newline = blob.find(b"\n", 0, MAX_META + 1)
        if newline < 0:
            return Refused("", len(blob), "a binary message is META, a newline, then the payload")
        meta = blob[:newline].decode("utf-8", "replace")
        payload = blob[newline + 1:]
        if len(payload) > self.max_frame:
            return TooLong("frame", len(payload))
        if self.frame_filter is not None:
            reason = self.frame_filter(meta, len(payload))
            if reason is not None:
                return Refused(meta, len(payload), reason)
        return Frame(meta, payload)
