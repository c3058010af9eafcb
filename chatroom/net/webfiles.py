"""The web listener's side of one-time file links (:mod:`chatroom.net.filelinks`): downloads and uploads over HTTP.

``GET /f/TOKEN`` fetches a file offered to an IRC member; ``PUT`` (or
``POST``) ``/u/TOKEN/NAME`` with the raw bytes and a ``Content-Length``
offers a file from one (``curl -T FILE URL`` appends NAME). The HTTP
connection then takes part in the relay's flow (:class:`~chatroom.net.relay.Relay`)
in the member's name, and the relay speaks to it as to any member: frames
and lines, which :class:`Download` and :class:`Upload` render for HTTP
(:class:`~chatroom.net.web.WebConnection` hands its ``frame``,
``frame_header`` and ``encode_text`` to them). Nothing is buffered: a
download's body is the relay's chunks, queued within the connection's output
budget with the relay's backpressure; an upload's body is read as the relay
lets its sender read.

Answers: a download is ``200`` with ``Content-Type: application/octet-stream``,
``Content-Length``, ``Content-Disposition: attachment`` (RFC 6266, the name in
``filename*`` as RFC 8187 says), ``Cache-Control: no-store`` and
``Connection: close``; it starts once every receiver asked answered (the
relay's answer phase) and a transfer that ends early closes the connection
before the announced length (a client reports it truncated). An unknown
token is ``404``, a spent or expired one ``410``. An upload is answered
once the room has it (``200``, naming who took it) or the relay refused it
(``403``, ``413``) or ended it (``409``), and the member hears the same as
``NOTICE``\\s. Loop thread only.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import quote, unquote

import h11

from chatroom.model.errors import Refused
from chatroom.net.webhttp import plain_answer
from chatroom.wire.lines import Frame

__all__ = ["Download", "Finish", "Upload", "content_disposition", "link_target", "serve_link"]

#: ``/f/TOKEN`` or ``/u/TOKEN/NAME`` (NAME percent-encoded, maybe empty).
_TARGET = re.compile(rb"/(f|u)/([A-Za-z0-9_-]{1,64})(?:/([^?#]*))?(?:[?#].*)?")


def link_target(target: bytes) -> tuple[str, str, str] | None:
    """``(kind, token, name)`` of a link path (``"get"`` for ``/f/``, ``"put"`` for ``/u/``), or None."""
    match = _TARGET.fullmatch(target)
    if match is None:
        return None
    kind = "get" if match[1] == b"f" else "put"
    return kind, match[2].decode(), unquote((match[3] or b"").decode("latin-1"), errors="replace")


def serve_link(door: Any, conn: Any, request: Any, kind: str, token: str, name: str) -> None:
    """Answer a request for a link (*kind* and *token*, *name* for an upload) on the web transport *door*:
    the connection leaves its HTTP table for ``door.files`` (no request or idle timer: the relay's timeouts
    hold) and becomes the link's receiver or sender; or the request is refused (404, 410, 411, 400)."""
    relay, http = door.app.relay, conn.parser.http
    member = relay.links.owner(token)
    if member is None:
        gone = token in relay.links.ended
        door._refuse_http(conn, 410 if gone else 404, "this link was used, or its offer ended" if gone
                          else "no such link")
        return
    if kind == "put" and (request.body is None or request.body < 0):
        door._refuse_http(conn, 411, "send the file with its Content-Length: curl -T FILE URL")
        return
    if kind == "put" and not name:
        door._refuse_http(conn, 400, "name the file at the end of the link: curl -T FILE URL "
                                     "(the URL ending with /)")
        return
    door.files[conn.id] = door.http.pop(conn.id)
    if kind == "put":
        conn.file = Upload(door, conn, member, http)
        conn.file.start(name, request.body, token)
        return None
    conn.file = Download(conn, http, member)  # the response may begin as soon as the link is fetched
    found = relay.fetch(conn, token)
    if isinstance(found, int):
        conn.file = None
        door.http[conn.id] = door.files.pop(conn.id)
        door._refuse_http(conn, found, "this link was used, or its offer ended")
    return None


def content_disposition(name: str) -> bytes:
    """``attachment; filename="ASCII"; filename*=UTF-8''ENCODED`` for *name* (RFC 6266, RFC 8187)."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in name) or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}".encode()


class Finish(bytes):
    """Queued after a link's last bytes (it is empty): the connection closes when it comes out of the relay's
    flow, after everything queued before it; ``flush`` False closes at once (the transfer failed)."""

    reason: str
    flush: bool

    def __new__(cls, reason: str, flush: bool) -> Finish:
        self = super().__new__(cls, b"")
        self.reason, self.flush = reason, flush
        return self


def _headers(extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [*extra, (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"), (b"connection", b"close")]


def _notice(member: Any, text: str) -> None:
    if member is not None and not member.closed:
        member.deliver(member.encode_text(text))


class Download:
    """A fetched link: the relay's frames for the HTTP connection *conn*, rendered as one HTTP response
    (*http*: its h11 connection, the request read); *member* hears the SHA-256 when the body is complete."""

    def __init__(self, conn: Any, http: h11.Connection, member: Any) -> None:
        self.conn = conn
        self.http = http
        self.member = member
        self.name = ""
        self.begun = False

    def frame(self, meta: str, payload: bytes = b"") -> bytes:
        """``file-begin``: the response head; ``file-data``: body bytes; ``file-end`` and ``file-abort``: the
        end (:class:`Finish`)."""
        kind, _, rest = meta.partition(" ")
        if kind == "file-begin":
            _, size, sender, name = rest.split(" ", 3)
            self.name, self.begun = name, True
            head = self.http.send(h11.Response(status_code=200, reason=b"OK", headers=_headers([
                (b"content-type", b"application/octet-stream"), (b"content-length", size.encode()),
                (b"content-disposition", content_disposition(name))])))
            return head + payload
        if kind == "file-data":
            return payload
        if kind == "file-end":
            digest = rest.partition(" ")[2].strip()
            _notice(self.member, f'* "{self.name}" downloaded: SHA-256 {digest}')
            return Finish("done", True)
        if kind == "file-abort":
            reason = rest.partition(" ")[2] or "ended"
            if not self.begun:  # still waiting for the other receivers' answers
                self.conn.deliver(plain_answer(410, f"the offer ended: {reason}"))
                return Finish("offer ended", True)
            _notice(self.member, f'* "{self.name}" was not completed: {reason}')
            return Finish(f"transfer ended: {reason}", False)
        return b""

    @staticmethod
    def frame_header(meta: str, size: int) -> bytes:
        """Nothing: a chunk's bytes are the body as they are."""
        return b""

    def text(self, text: str) -> bytes:
        """A line for the receiver (none is expected): to the member."""
        _notice(self.member, text)
        return b""


class Upload:
    """An upload link in use: the relay's replies and frames to its sender (*conn*, the HTTP connection)
    become the HTTP answer and ``NOTICE``\\s to *member*; the body becomes ``file-data`` frames once the room
    answered (``tid``), ``file-end`` with its SHA-256 at its end. *door* is the web transport (``app``, ``loop``,
    ``close``)."""

    def __init__(self, door: Any, conn: Any, member: Any, http: h11.Connection) -> None:
        self.door = door
        self.conn = conn
        self.member = member
        self.http = http
        self.tid: int | None = None
        self.hasher = hashlib.sha256()
        self.done = False

    def start(self, name: str, size: int, token: str) -> None:
        """Offer the upload to the link's room (reading waits for the room's answers)."""
        self.door.loop.pause_reading(self.conn)
        try:
            found = self.door.app.relay.upload(self.conn, token, name, size)
        except Refused as exc:
            status = 413 if "limit" in str(exc) else 403
            self._answer(status, f"not offered: {exc}", notice=f'ERROR sendfile {name}: {exc}')
            return
        if isinstance(found, int):
            self._answer(found, "no such upload link" if found == 404 else "this upload link was used or expired")
            return
        self.member = found

    def text(self, text: str) -> bytes:
        """A reply of the relay to the sender: ``OK sendfile ID NAME`` lets the body in; ``ERROR sendfile``
        answers the request; every reply also reaches the member."""
        if text.startswith("OK sendfile ") and self.tid is None:
            self.tid = int(text.split(" ")[2])
            if self.http.they_are_waiting_for_100_continue:
                self.conn.deliver(self.http.send(h11.InformationalResponse(status_code=100, headers=[])))
            self.door.loop.resume_reading(self.conn)
            _notice(self.member, text)
        elif text.startswith("ERROR sendfile "):
            self._answer(409, text.partition(": ")[2] or text, notice=text)
        else:
            _notice(self.member, text)
        return b""

    def frame(self, meta: str, payload: bytes = b"") -> bytes:
        """``file-done ID NICKS``: answer 200 naming them; ``file-abort ID REASON``: answer 409."""
        kind, _, rest = meta.partition(" ")
        tid, _, arg = rest.partition(" ")
        if kind == "file-done":
            who = arg.replace(",", ", ") or "nobody"
            self._answer(200, f"sent to {who}", notice=f"* file {tid} sent to {who}")
        elif kind == "file-abort":
            self._answer(409, f"the transfer ended: {arg}", notice=f"* file {tid} ended: {arg}")
        return b""

    def body(self, data: bytes) -> None:
        """Some of the request's body: a ``file-data`` frame of the transfer."""
        if self.tid is not None and not self.done:
            self.hasher.update(data)
            self.door.app.relay.on_frame(self.conn, Frame(f"file-data {self.tid}", data))

    def end(self) -> None:
        """The body is complete: ``file-end`` with its SHA-256 (the relay checks its size)."""
        if self.tid is not None and not self.done:
            self.door.app.relay.on_frame(self.conn, Frame(f"file-end {self.tid} {self.hasher.hexdigest()}", b""))

    def _answer(self, status: int, text: str, *, notice: str = "") -> None:
        if self.done:
            return
        self.done = True
        if notice:
            _notice(self.member, notice)
        self.conn.deliver(plain_answer(status, text))
        self.door.close(self.conn, f"HTTP {status}", flush=True)
