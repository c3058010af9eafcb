"""WebSocket clients for bench/fanout_ws.py: fanout.py's load-generator worker speaking RFC 6455 directly.

:class:`WSWorker` is ``fanout_load._Worker`` (same windows, completion levels,
loss count, latency sampling, phases and deadlines) with the socket layer
replaced, the way ``fanout_tls.TLSWorker`` replaces it for TLS. No WebSocket
library on the client side: a few lines of framing, so the generator's cost
per delivery stays close to the TCP generator's.

* **Connect** (setup, not measured): a blocking ``GET /ws`` upgrade
  (``Host``, ``Origin: http://HOST:PORT`` — the page's own origin, which
  chatroom requires —, a random ``Sec-WebSocket-Key``, version 13, no
  extension offered) bounded by the 10 s socket timeout; the answer must be
  ``101`` with the right ``Sec-WebSocket-Accept``. Bytes after the answer's
  headers are kept as the start of the frame stream.
* **Up** (client to server): every line the worker would send (``/nick``,
  each chat line) is one WebSocket text message of its own, one final frame,
  masked as RFC 6455 requires of a client (a fresh random 4-byte key per frame,
  the payload XORed with it), as a browser sends one message per line typed.
* **Down**: :meth:`WSWorker.recv` reads up to 64 KiB, walks the frame headers
  (2, 4 or 10 bytes, no mask from a server) to the end of the last complete
  frame, keeps the partial frame for the next read, and hands the complete
  frames, raw, plus one ``\\n`` to ``_Worker.receive``: its regex finds each
  chat line's ``K..S..T..`` stamp inside the JSON ``text`` (JSON never carries
  a raw newline, and no frame header can complete the stamp), one match per
  ``msg`` event, so deliveries, order checks and latency are counted exactly as
  over TCP, without decoding JSON per event. A chunk with any frame other than
  a final text frame takes a slow path: ``ping`` is answered with a masked
  ``pong``, ``close`` ends the connection (as the TCP worker's EOF), and only
  the text frames' bytes are passed on.
* **Registration**: wait for the ``hello`` event, send ``/nick NICK``, and
  the client is registered at the ``line`` event whose text starts with
  ``OK`` (an ``error`` line fails the run). Setup-only, so it decodes JSON.

Rooms (``rooms`` > 0) are not supported over WebSocket.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import selectors
import socket
from typing import Any

from fanout_load import HOST, _Client, _Worker

#: RFC 6455 section 1.3: appended to the key before hashing for ``Sec-WebSocket-Accept``.
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x8, 0x9, 0xA
MAX_HEAD = 16384  # bytes of HTTP answer headers accepted


class WSClient(_Client):
    """A fan-out client with a WebSocket frame buffer (``wsbuf``: a partial frame from the last read)."""

    __slots__ = ("wsbuf",)

    def __init__(self, idx: int, rooms: int = 0) -> None:
        super().__init__(idx, rooms)
        self.wsbuf = b""


def ws_worker_main(w: int, nworkers: int, n: int, port: int, irc: bool, ctl: Any, done_arr: Any, sent_arr: Any,
                   stopped: Any, wake_r: int, wake_w: list[int], lat_every: int, rooms: int = 0,
                   window: int = 256, tls: bool = False) -> None:
    """``fanout_load.worker_main`` with WebSocket clients; same arguments and coordinator protocol."""
    try:
        if irc or tls or rooms:
            raise ValueError("the WebSocket worker speaks chatroom's JSON wire only, in one room, in clear")
        WSWorker(w, nworkers, n, port, irc, ctl, done_arr, sent_arr, stopped, wake_r, wake_w,
                 lat_every, rooms, window).run()
    except Exception as exc:  # noqa: BLE001 - any failure is reported, never hangs the coordinator
        ctl.send(("fail", f"worker {w}: {exc!r}"))


def mask_frame(opcode: int, payload: bytes, key: bytes) -> bytes:
    """One final client frame: *opcode*, *payload* masked with the 4-byte *key* (RFC 6455 section 5.3)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    mask = (key * (size // 4 + 1))[:size]
    return head + key + (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(size, "big")


def frame_end(data: bytes, i: int) -> int:
    """End offset of the server frame starting at *i* in *data*; -1 if its header or payload is incomplete.

    Raises ValueError for a masked server frame (RFC 6455 forbids it).
    """
    n = len(data)
    if i + 2 > n:
        return -1
    ln = data[i + 1]
    if ln < 126:
        end = i + 2 + ln
    elif ln == 126:
        if i + 4 > n:
            return -1
        end = i + 4 + (data[i + 2] << 8 | data[i + 3])
    elif ln == 127:
        if i + 10 > n:
            return -1
        end = i + 10 + int.from_bytes(data[i + 2:i + 10], "big")
    else:
        raise ValueError("masked frame from the server")
    return end if end <= n else -1


def frames(data: bytes) -> list[tuple[int, bool, bytes]]:
    """``(opcode, fin, payload)`` of every complete server frame in *data* (whole frames only)."""
    out, i = [], 0
    while i < len(data):
        end = frame_end(data, i)
        if end < 0:
            raise ValueError("partial frame")
        ln = data[i + 1]
        start = i + 2 if ln < 126 else i + 4 if ln == 126 else i + 10
        out.append((data[i] & 0x0F, bool(data[i] & 0x80), data[start:end]))
        i = end
    return out


class WSWorker(_Worker):
    """A fan-out worker whose clients are WebSocket clients of chatroom's JSON wire (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clients = [WSClient(c.idx) for c in self.clients]
        self.senders = [c for c in self.clients if c.sid >= 0]

    # -- setup
    def connect(self, c: WSClient) -> None:  # type: ignore[override]
        sock = socket.create_connection((HOST, self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16))
        origin = f"{HOST}:{self.port}".encode()
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: http://%s\r\n\r\n"
                     % (origin, key, origin))
        buf = b""
        while b"\r\n\r\n" not in buf:  # bounded: MAX_HEAD bytes, 10 s per recv
            chunk = sock.recv(4096)
            if not chunk or len(buf) > MAX_HEAD:
                raise RuntimeError(f"{c.nick!r}: no WebSocket upgrade answer: {buf[:200]!r}")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        if not head.startswith(b"HTTP/1.1 101") or accept not in head:
            raise RuntimeError(f"{c.nick!r}: upgrade refused: {head[:200]!r}")
        sock.setblocking(False)
        c.sock = sock
        self.sel.register(sock, selectors.EVENT_READ, c)
        c.wsbuf = rest
        data = self.cut(c, b"")  # the hello may have come with the 101
        if data:
            self.handshake(c, data)

    def handshake(self, c: WSClient, data: bytes) -> bool:  # type: ignore[override]
        """Advance *c*'s registration with complete frames *data* (+ ``\\n``); True once registered."""
        for op, _, payload in frames(data[:-1]):
            if op != OP_TEXT:
                continue
            event = json.loads(payload)
            kind = event.get("type")
            if kind == "line" and event.get("kind") == "error":
                raise RuntimeError(f"{c.nick!r}: {event.get('text')!r}")
            if c.state == 0 and kind == "hello":
                self.send(c, b"/nick %s\n" % c.nick)
                c.state = 1
            elif c.state == 1 and kind == "line" and event.get("text", "").startswith("OK"):
                c.state = 3
                return True
        return False

    # -- both
    def send(self, c: WSClient, data: bytes) -> None:  # type: ignore[override]
        """Send each ``\\n``-ended line of *data* as one masked text message."""
        rnd = self.rng.getrandbits
        super().send(c, b"".join(mask_frame(OP_TEXT, line, rnd(32).to_bytes(4, "big"))
                                 for line in data.split(b"\n")[:-1]))

    def recv(self, c: WSClient) -> bytes | None:  # type: ignore[override]
        """Complete frames read for *c*, raw, plus ``\\n``; None if none yet, b"" at the end (EOF or close)."""
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""
        if not data:
            return b""
        return self.cut(c, data)

    def cut(self, c: WSClient, data: bytes) -> bytes | None:
        """Append *data* to *c*'s partial frame; return the complete frames + ``\\n`` (see :meth:`recv`).

        Fast path (no ``0x88``/``0x89`` byte, so no close or ping header, in the
        chunk): the last complete frame boundary is found with one ``rfind`` of
        ``}\\x81``, the end of a JSON object followed by a final text frame's
        first byte, which valid UTF-8 text cannot contain (``0x81`` is a
        continuation byte), then the frame after it is checked whole or partial.
        Otherwise, or if that check disagrees, every header is walked.
        """
        if c.wsbuf:
            data = c.wsbuf + data
        n = len(data)
        if not n:
            return None
        if b"\x88" not in data and b"\x89" not in data:
            j = data.rfind(b"}\x81") + 1
            end = frame_end(data, j)
            if end == n or (end < 0 and data[j] == 0x81):
                i = n if end == n else j
                c.wsbuf = data[i:]
                return data[:i] + b"\n" if i else None
        i, plain = 0, True
        while i < n:
            if data[i] != 0x81:
                plain = False
            end = frame_end(data, i)
            if end < 0:
                break
            i = end
        c.wsbuf = data[i:]
        if not i:
            return None
        if plain:
            return data[:i] + b"\n"
        return self.control(c, data[:i])

    def control(self, c: WSClient, data: bytes) -> bytes | None:
        """Slow path for complete frames *data* holding a control or fragmented frame."""
        keep: list[bytes] = []
        i = 0
        for op, fin, payload in frames(data):
            end = frame_end(data, i)
            if op == OP_TEXT and fin:
                keep.append(data[i:end])
            elif op == OP_PING:
                _Worker.send(self, c, mask_frame(OP_PONG, payload, os.urandom(4)))
            elif op == OP_CLOSE:
                return b""
            else:  # a fragmented message: the bench's servers never send one
                self.anomalies += 1
            i = end
        return b"".join(keep) + b"\n" if keep else None
