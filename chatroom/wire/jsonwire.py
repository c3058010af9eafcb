"""The browser's wire, sans-I/O: room events and lines as JSON objects, in complete server WebSocket frames.

Specified in ``docs/protocol.md`` ("WebSocket and JSON events"). Every text
message the server sends a browser is one JSON object with a ``"type"``;
every binary message is one frame, ``META\\n`` + payload. The functions here
return the **complete, unmasked server-to-client WebSocket frame** (RFC 6455
section 5.2: FIN + opcode, the payload length in 7, 7+16 or 7+64 bits, no
mask, no extension), so the room model encodes a room event once and hands
every WebSocket recipient the same bytes.

Frame headers are built here rather than by ``wsproto.frame_protocol``:
its ``send_data`` copies the payload twice into a ``bytearray`` and keeps
per-connection state (it cannot give a header alone, which the file relay
needs to share one payload buffer between receivers). ``tests/test_web_jsonwire.py``
checks that the bytes equal wsproto's for every length class. Nothing here
imports the rest of chatroom beyond the wire; events are duck-typed (any
object with the attributes of ``chatroom.model.history.Entry``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from chatroom.wire.render import iso_time

__all__ = [
    "OP_BINARY", "OP_TEXT", "PROTOCOL", "binary_frame", "binary_header", "encode_entry", "frame_header",
    "hello_event", "hit_event", "line_event", "line_kind", "members_event", "text_frame", "you_event",
]

#: Version of the JSON event wire, sent in ``hello``.
PROTOCOL = 1
#: WebSocket opcodes (RFC 6455 section 5.2).
OP_TEXT = 0x1
OP_BINARY = 0x2

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def frame_header(opcode: int, size: int) -> bytes:
    """The header of one final, unmasked server frame with *opcode* and a payload of *size* bytes."""
    if size < 126:
        return bytes((0x80 | opcode, size))
    if size < 65536:
        return bytes((0x80 | opcode, 126)) + size.to_bytes(2, "big")
    return bytes((0x80 | opcode, 127)) + size.to_bytes(8, "big")


def text_frame(obj: Any) -> bytes:
    """*obj* (JSON-serialisable) as one compact UTF-8 JSON text frame."""
    data = _dumps(obj).encode()
    return frame_header(OP_TEXT, len(data)) + data


def binary_header(meta: str, size: int) -> bytes:
    """Everything of a binary frame carrying file frame *meta* before its *size* payload bytes."""
    head = meta.encode("utf-8", "replace") + b"\n"
    return frame_header(OP_BINARY, len(head) + size) + head


def binary_frame(meta: str, payload: bytes = b"") -> bytes:
    """A whole binary frame: ``META\\n`` + *payload*."""
    return binary_header(meta, len(payload)) + payload


def line_kind(text: str) -> str:
    """``"ok"``, ``"error"`` or ``"info"``: what a line of the line protocol is, from its first word."""
    if text.startswith("OK") and (len(text) == 2 or text[2] == " "):
        return "ok"
    if text.startswith("ERROR") and (len(text) == 5 or text[5] == " "):
        return "error"
    return "info"


def line_event(text: str) -> bytes:
    """A ``line`` event: a reply or other line, exactly as ``nc`` shows it (*text*, no newline)."""
    return text_frame({"type": "line", "kind": line_kind(text), "text": text})


def hello_event(nick: str, version: str, rooms: Iterable[str], max_line: int, max_frame: int,
                flood: tuple[float, float] = (0.0, 0.0)) -> bytes:
    """The first event of every WebSocket; *flood* the connection's token bucket (lines per second, 0: no flood
    control; lines at once), so that a page paces what it sends instead of being dropped for flooding."""
    return text_frame({"type": "hello", "protocol": PROTOCOL, "server": "chatroom", "version": version,
                       "nick": nick, "rooms": list(rooms), "max_line": max_line, "max_frame": max_frame,
                       "flood": {"rate": flood[0], "burst": flood[1]}})


def you_event(nick: str, account: str | None, room: str | None, rooms: Iterable[str]) -> bytes:
    """A ``you`` event: the connection's own nick, account, current room and rooms (join order)."""
    return text_frame({"type": "you", "nick": nick, "account": account, "room": room, "rooms": list(rooms)})


def hit_event(entry: Any) -> bytes:
    """A ``hit`` event: one search hit (an ``Entry``: a stored line of a room the reader may read)."""
    return text_frame({"type": "hit", "kind": entry.kind, "room": entry.room, "id": entry.id,
                       "time": iso_time(entry.ts), "nick": entry.nick, "account": entry.account, "text": entry.text})


def members_event(room: str, nicks: Iterable[str], topic: str, topic_by: str, topic_at: float) -> bytes:
    """A ``members`` event for a room just joined: every nick in it and its topic (*topic_at* Unix seconds, 0: none)."""
    return text_frame({"type": "members", "room": room, "nicks": list(nicks), "topic": topic, "topic_by": topic_by,
                       "topic_time": iso_time(topic_at) if topic_at else None})


def encode_entry(entry: Any, tagged: int = 0, current: bool = True, history: bool = False) -> bytes:
    """One room event (an ``Entry``, or a notice with ``extra`` and ``quiet``) as a JSON text frame.

    The signature is the room model's encoder's (``Hub.add_wire``); *tagged*
    and *current* do not change the JSON (the fields say it all), so every
    WebSocket recipient gets the same bytes. Kinds: ``msg``, ``me``,
    ``topic``, ``notice``, ``raw``, ``join``, ``part``, ``nick``,
    ``private``; an unknown kind is sent as a ``notice``.
    """
    kind = entry.kind
    time = iso_time(entry.ts)
    obj: dict[str, Any]
    if kind in ("msg", "me", "topic"):
        obj = {"type": kind, "room": entry.room, "id": entry.id or None, "time": time, "nick": entry.nick,
               "account": entry.account, "text": entry.text, "history": history}
    elif kind == "join":
        obj = {"type": kind, "room": entry.room, "time": time, "nick": entry.nick, "account": entry.account,
               "text": entry.text, "quiet": entry.quiet}
    elif kind == "part":
        obj = {"type": kind, "room": entry.room, "time": time, "nick": entry.nick, "reason": entry.extra,
               "text": entry.text, "quiet": entry.quiet}
    elif kind == "nick":
        obj = {"type": kind, "time": time, "old": entry.extra, "nick": entry.nick, "text": entry.text}
    elif kind == "private":
        obj = {"type": kind, "time": time, "nick": entry.nick, "account": entry.account, "to": entry.extra,
               "text": entry.text}
    else:
        obj = {"type": "raw" if kind == "raw" else "notice", "room": entry.room, "time": time, "text": entry.text}
    return text_frame(obj)
