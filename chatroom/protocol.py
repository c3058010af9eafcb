"""The chatroom wire protocol, sans-I/O: bytes in, events out.

In the style of h11: nothing here touches a socket. A :class:`Parser` is fed
whatever bytes arrived and returns the complete events they finish; the
``encode_*`` functions turn outgoing lines and frames into bytes. Both the
server and the client use this module. The format is specified in
``docs/protocol.md``; in short:

* A **line** is UTF-8 text ending in ``\\n`` (``\\r\\n`` accepted), at most
  :data:`MAX_LINE` bytes including the terminator. Invalid UTF-8 is replaced
  (U+FFFD), never fatal.
* A **frame** carries binary data. Its header is a line that starts with the
  byte :data:`FRAME_MARK` (ASCII DLE, 0x10): ``DLE <length> <meta>\\n``, then
  exactly ``length`` raw bytes follow (like a Redis bulk string or an HTTP
  ``Content-Length`` body). Text lines never start with DLE because every
  text line is passed through :func:`sanitize`, so the two cannot be confused.
  A peer only receives frames after it announced ``/caps binary``.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_LINE",
    "MAX_FRAME",
    "FRAME_MARK",
    "Line",
    "Frame",
    "TooLong",
    "Parser",
    "encode_line",
    "encode_frame_header",
    "encode_frame",
    "sanitize",
]

#: Longest line accepted, in bytes, terminator included.
MAX_LINE = 64 * 1024
#: Largest frame payload accepted, in bytes.
MAX_FRAME = 4 * 1024 * 1024
#: First byte of a frame header line (ASCII DLE, "data link escape").
FRAME_MARK = 0x10
_FRAME_MARK_BYTES = b"\x10"

# C0 and C1 control characters (tab kept) and ANSI escape sequences: CSI
# (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and two-byte ESC forms.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI ... final byte
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC ... BEL / ST
    r"|\x1b[@-Z\\-_]"  # other two-byte escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def sanitize(text: str) -> str:
    """Strip control characters and terminal escape sequences from *text*.

    Removes ANSI/VT100 escape sequences (CSI, OSC and two-byte ``ESC x``
    forms, as described in ECMA-48) and every remaining C0/C1 control
    character except TAB. The result is safe to print on a terminal and can
    never begin with :data:`FRAME_MARK`. Plain text is returned unchanged
    (and cheaply: one regex scan).
    """
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub("", _ANSI.sub("", text))


class Line:
    """A complete text line, without its terminator (``str``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return type(other) is Line and other.text == self.text

    def __repr__(self) -> str:
        return f"Line({self.text!r})"


class Frame:
    """A binary frame: ``meta`` (the header's text after the length) and ``payload`` (bytes)."""

    __slots__ = ("meta", "payload")

    def __init__(self, meta: str, payload: bytes) -> None:
        self.meta = meta
        self.payload = payload

    def __eq__(self, other: object) -> bool:
        return type(other) is Frame and other.meta == self.meta and other.payload == self.payload

    def __repr__(self) -> str:
        return f"Frame({self.meta!r}, <{len(self.payload)} bytes>)"


class TooLong:
    """Input was discarded: a line over ``MAX_LINE`` or a frame over ``MAX_FRAME``.

    ``kind`` is ``"line"`` or ``"frame"``; ``size`` is the number of bytes
    discarded (for a line, at least ``MAX_LINE``). The stream stays in sync:
    parsing resumes after the discarded item.
    """

    __slots__ = ("kind", "size")

    def __init__(self, kind: str, size: int) -> None:
        self.kind = kind
        self.size = size

    def __eq__(self, other: object) -> bool:
        return type(other) is TooLong and (other.kind, other.size) == (self.kind, self.size)

    def __repr__(self) -> str:
        return f"TooLong({self.kind!r}, {self.size})"


Event = Line | Frame | TooLong


class Parser:
    """Incremental parser for one direction of one connection.

    ``feed(data)`` accepts any split of the byte stream and returns the list
    of events (:class:`Line`, :class:`Frame`, :class:`TooLong`) completed so
    far, in order. Any split of the same stream yields the same events.
    Memory held is bounded by ``max_line`` (text) and ``max_frame`` (payload).
    A malformed frame header (bad length) is reported as a :class:`Line` of
    its sanitized text so a person sees what happened.
    """

    __slots__ = ("max_line", "max_frame", "_buf", "_need", "_meta", "_skip", "_skip_line")

    def __init__(self, max_line: int = MAX_LINE, max_frame: int = MAX_FRAME) -> None:
        self.max_line = max_line
        self.max_frame = max_frame
        self._buf = bytearray()
        self._need = -1  # payload bytes still expected for the current frame, -1 when none
        self._meta = ""
        self._skip = 0  # payload bytes of an oversized frame still to discard
        self._skip_line = 0  # > 0 while discarding the rest of an over-long line (bytes so far)

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a line or frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Event]:
        """Consume *data* (``bytes``-like) and return the events it completes."""
        events: list[Event] = []
        buf = self._buf
        buf += data
        pos = 0
        end = len(buf)
        while pos < end:
            if self._skip:
                n = min(self._skip, end - pos)
                self._skip -= n
                pos += n
                continue
            if self._need >= 0:
                if end - pos < self._need:
                    break
                stop = pos + self._need
                with memoryview(buf) as view:  # one copy, not two (a slice of buf is a copy too)
                    payload = bytes(view[pos:stop])
                events.append(Frame(self._meta, payload))
                pos = stop
                self._need = -1
                continue
            nl = buf.find(b"\n", pos)
            if self._skip_line:
                if nl < 0:
                    self._skip_line += end - pos
                    pos = end
                    break
                events.append(TooLong("line", self._skip_line + nl + 1 - pos))
                self._skip_line = 0
                pos = nl + 1
                continue
            if nl < 0:
                if end - pos >= self.max_line:
                    self._skip_line = end - pos
                    pos = end
                break
            if nl + 1 - pos > self.max_line:
                events.append(TooLong("line", nl + 1 - pos))
                pos = nl + 1
                continue
            stop = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
            if buf[pos] == FRAME_MARK:
                self._start_frame(bytes(buf[pos + 1 : stop]), events)
            else:
                events.append(Line(buf[pos:stop].decode("utf-8", "replace")))
            pos = nl + 1
        del buf[:pos]
        return events

    def _start_frame(self, header: bytes, events: list[Event]) -> None:
        text = header.decode("utf-8", "replace")
        size_text, _, meta = text.partition(" ")
        if not size_text.isdigit():
            events.append(Line(sanitize(text)))
            return
        size = int(size_text)
        if size > self.max_frame:
            events.append(TooLong("frame", size))
            self._skip = size
            return
        if size == 0:
            events.append(Frame(meta, b""))
            return
        self._meta = meta
        self._need = size


def encode_line(text: str) -> bytes:
    """Encode one outgoing text line: UTF-8 plus ``\\n``.

    *text* must not contain ``\\n``; callers pass sanitized text.
    """
    return text.encode("utf-8", "replace") + b"\n"


def encode_frame_header(meta: str, size: int) -> bytes:
    """The header line announcing a frame of *size* payload bytes with *meta* text."""
    return b"%b%d %b\n" % (_FRAME_MARK_BYTES, size, meta.encode("utf-8"))


def encode_frame(meta: str, payload: bytes) -> bytes:
    """A whole frame: header line plus *payload*."""
    return encode_frame_header(meta, len(payload)) + payload
