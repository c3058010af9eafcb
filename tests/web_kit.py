"""Test helpers for the web listener: find its URL in ``chatroom-server``'s output, speak raw HTTP, and a
WebSocket client built on wsproto over a plain (or TLS) socket. Every wait has a deadline; nothing sleeps."""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
from collections import deque
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

DEADLINE = 10.0
_URL = re.compile(r"chatroom-server web (https?)://(\[[^\]]+\]|[^:/]+):(\d+)/")


def web_url(server: Any) -> tuple[str, str, int]:
    """(scheme, host, port) of the web listener of a started ``ServerProcess``, read from its next stdout lines."""
    for _ in range(20):
        line = server.proc.stdout.readline()
        if not line:
            break
        match = _URL.match(line)
        if match:
            return match.group(1), match.group(2).strip("[]"), int(match.group(3))
    raise AssertionError("the server printed no web URL")


def connect(host: str, port: int, tls: bool = False) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=DEADLINE)
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(sock, server_hostname=host)
    return sock


class Responses:
    """HTTP responses read one by one from *sock* (pipelined ones may arrive in one read)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""

    def _more(self, deadline: float) -> bool:
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = self.sock.recv(65536)
        self.data += chunk
        return bool(chunk)

    def next(self, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        """(status, headers with lower-case names, body) of the next response."""
        deadline = time.monotonic() + DEADLINE
        while b"\r\n\r\n" not in self.data:
            if not self._more(deadline):
                raise ConnectionError(f"closed before a whole response head: {self.data!r}")
        head_bytes, _, self.data = self.data.partition(b"\r\n\r\n")
        status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        status = int(status_line.split()[1])
        length = 0 if head or status in (204, 304) else int(headers.get("content-length", "0"))
        while len(self.data) < length and self._more(deadline):
            pass
        body, self.data = self.data[:length], self.data[length:]
        return status, headers, body


def read_response(sock: socket.socket, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response from *sock* (nothing after it is expected)."""
    return Responses(sock).next(head)


def http(host: str, port: int, request: bytes, tls: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Send one raw *request* on a new connection and read the response."""
    with connect(host, port, tls) as sock:
        sock.sendall(request)
        return read_response(sock, head=request.startswith(b"HEAD "))


def closed_by_peer(sock: socket.socket, timeout: float = DEADLINE) -> bytes:
    """Everything *sock* receives until the server closes it (AssertionError if it does not within *timeout*)."""
    deadline = time.monotonic() + timeout
    got = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            return got
        if not chunk:
            return got
        got += chunk
    raise AssertionError(f"the server did not close the connection; got {got[:200]!r}")


class WSClient:
    """A WebSocket client of the server's ``/ws``: JSON text events become dicts, binary messages ``bytes``.

    *origin* None sends no Origin header; "same" is the page's own origin for *name* (the ``Host`` name sent,
    default *host*). ``status`` is 101 once accepted, else the refusal's status.
    """

    #: Every client made, for a fixture to close at teardown (:func:`close_all`).
    opened: list[WSClient] = []

    def __init__(self, host: str, port: int, *, origin: str | None = "same", tls: bool = False,
                 path: str = "/ws", name: str | None = None) -> None:
        self.sock = connect(host, port, tls)
        WSClient.opened.append(self)
        self.ws = WSConnection(ConnectionType.CLIENT)
        name = name or host
        if origin == "same":
            origin = f"{'https' if tls else 'http'}://{name}:{port}"
        headers = [("Origin", origin)] if origin is not None else []
        self.sock.sendall(self.ws.send(Request(host=f"{name}:{port}", target=path, extra_headers=headers)))
        self.queue: deque[Any] = deque()
        self.seen: list[Any] = []
        self.close_code: int | None = None
        self.status = 0
        self._text: list[str] = []
        self._bytes: list[bytes] = []
        deadline = time.monotonic() + DEADLINE
        while not self.status:
            self._read(deadline)

    def _read(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"nothing more within the deadline; seen {self.seen[-8:]}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError(f"nothing more within the deadline; seen {self.seen[-8:]}") from None
        except OSError:
            data = b""
        if not data:
            if self.close_code is None:
                self.close_code = 1006
            raise ConnectionError(f"closed by the server (code {self.close_code}); seen {self.seen[-8:]}")
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.status = 101
            elif isinstance(event, RejectConnection):
                self.status = event.status_code
            elif isinstance(event, RejectData):
                self.queue.append(bytes(event.data))
            elif isinstance(event, TextMessage):
                self._text.append(event.data)
                if event.message_finished:
                    self.queue.append(json.loads("".join(self._text)))
                    self._text = []
            elif isinstance(event, BytesMessage):
                self._bytes.append(bytes(event.data))
                if event.message_finished:
                    self.queue.append(b"".join(self._bytes))
                    self._bytes = []
            elif isinstance(event, Ping):
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.close_code = event.code
                self.queue.append(("close", event.code, event.reason))
                try:
                    self.sock.sendall(self.ws.send(event.response()))
                except Exception:  # noqa: BLE001 - already closing
                    pass

    def next(self, timeout: float = DEADLINE) -> Any:
        deadline = time.monotonic() + timeout
        while not self.queue:
            self._read(deadline)
        event = self.queue.popleft()
        self.seen.append(event)
        return event

    def expect(self, type_: str, timeout: float = DEADLINE, **fields: Any) -> dict[str, Any]:
        """Read until a JSON event of *type_* whose *fields* match (other events are skipped); return it."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.01, deadline - time.monotonic()))
            if isinstance(event, dict) and event.get("type") == type_ and all(
                    event.get(k) == v for k, v in fields.items()):
                return event

    def expect_line(self, text: str, timeout: float = DEADLINE) -> dict[str, Any]:
        """Read until a ``line`` event whose text starts with *text*."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.expect("line", max(0.01, deadline - time.monotonic()))
            if event["text"].startswith(text):
                return event

    def expect_binary(self, timeout: float = DEADLINE) -> tuple[str, bytes]:
        """The next binary message as (meta, payload)."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.01, deadline - time.monotonic()))
            if isinstance(event, bytes):
                meta, _, payload = event.partition(b"\n")
                return meta.decode(), payload

    def expect_close(self, timeout: float = DEADLINE) -> int:
        """Read until the server's close frame; its code."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.01, deadline - time.monotonic()))
            if isinstance(event, tuple) and event[0] == "close":
                return int(event[1])

    def send(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=text)))

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(self.ws.send(BytesMessage(data=data)))

    def sync(self, tag: str = "sync") -> list[Any]:
        """``/upper TAG`` and read up to its reply; the events before it."""
        start = len(self.seen)
        self.send(f"/upper {tag}")
        self.expect_line(tag.upper())
        return self.seen[start:-1]

    def close(self) -> None:
        self.sock.close()


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The WebSocket frames a server sent, as (opcode, payload), parsed by hand (RFC 6455 5.2: a server's frames
    are unmasked), so that bytes after a Close frame are seen too (a client library would stop there)."""
    frames, pos = [], 0
    while pos + 2 <= len(data):
        opcode, size = data[pos] & 0x0F, data[pos + 1] & 0x7F
        pos += 2
        if size >= 126:
            width = 2 if size == 126 else 8
            size, pos = int.from_bytes(data[pos:pos + width], "big"), pos + width
        frames.append((opcode, data[pos:pos + size]))
        pos += size
    assert pos == len(data), f"{len(data) - pos} bytes of a partial frame at the end"
    return frames


def close_all() -> None:
    """Close every :class:`WSClient` made so far."""
    for client in WSClient.opened:
        client.close()
    WSClient.opened.clear()
