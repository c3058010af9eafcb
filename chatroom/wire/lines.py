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
from collections.abc import Callable

from chatroom.wire.textsafety import strip_invisible

__all__ = [
    "MAX_LINE",
    "MAX_FRAME",
    "FRAME_MARK",
    "Line",
    "Frame",
    "TooLong",
    "Refused",
    "Parser",
    "encode_line",
    "line_fits",
    "encode_frame_header",
    "encode_frame",
    "sanitize",
    "split_frame_header",
    "skip_line",
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


def sanitize(text: str, controls: re.Pattern[str] = _CONTROL) -> str:
    """Strip control characters, terminal escapes and invisible characters from *text*; *controls*: the control
    characters removed (default: every C0/C1 one but TAB; the IRC door keeps IRC's formatting codes,
    :data:`chatroom.wire.irc.UNSAFE`).

    Removes ANSI/VT100 escape sequences (CSI, OSC and two-byte ``ESC x``
    forms, as described in ECMA-48) and every remaining C0/C1 control
    character except TAB; then bidi controls, zero-width characters and
    the other invisible characters of
    :func:`chatroom.wire.textsafety.strip_invisible` (U+2028/U+2029 become
    spaces), so relayed text cannot reorder or hide what others see
    (Trojan Source, CVE-2021-42574). The result is safe to print on a
    terminal and can never begin with :data:`FRAME_MARK`. Plain ASCII text
    is returned unchanged, cheaply (two scans in C, no regex).
    """
    if not text.isprintable() and controls.search(text) is not None:  # (printable: no control character)
        text = controls.sub("", _ANSI.sub("", text))
    return text if text.isascii() else strip_invisible(text)


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
    """A binary frame: ``meta`` (the header's text after the length) and ``payload`` (bytes; from
    :class:`chatroom.wire.stream.StreamParser`, a memoryview of its buffer)."""

    __slots__ = ("meta", "payload")

    def __init__(self, meta: str, payload: bytes | memoryview) -> None:
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


class Refused:
    """A frame the receiver would not take: its payload was skipped, never buffered.

    ``meta`` and ``size`` are the header's; ``reason`` (``str``) is what the
    :class:`Parser`'s ``frame_filter`` answered. The stream stays in sync.
    """

    __slots__ = ("meta", "size", "reason")

    def __init__(self, meta: str, size: int, reason: str) -> None:
        self.meta = meta
        self.size = size
        self.reason = reason

    def __eq__(self, other: object) -> bool:
        return type(other) is Refused and (other.meta, other.size, other.reason) == (self.meta, self.size, self.reason)

    def __repr__(self) -> str:
        return f"Refused({self.meta!r}, {self.size}, {self.reason!r})"


Event = Line | Frame | TooLong | Refused


def skip_line(buf: bytearray, pos: int, nl: int, skipped: int) -> tuple[int, TooLong | None]:
    """Discard more of an over-long line, for a parser (:class:`Parser`, :class:`chatroom.wire.irc.IrcParser`)
    that already discarded *skipped* bytes (> 0) of it: its unparsed bytes start at *pos* in *buf*, where *nl* is
    the index of the next LF (-1: none came yet).

    Without an LF, every byte from *pos* on is deleted from *buf* (memory stays bounded however long the line
    is) and the result is ``(skipped + those bytes, None)``: the parser keeps skipping. With one, nothing is
    deleted and the result is ``(0, TooLong("line", size))``, *size* being every byte of the line, its LF
    included: the parser resumes after *nl*. Called only on the over-long path, never per normal line.
    """
    if nl < 0:
        skipped += len(buf) - pos
        del buf[pos:]
        return skipped, None
    return 0, TooLong("line", skipped + nl + 1 - pos)


#: A frame's length field: 1 to 10 ASCII digits (never ``str.isdigit()``, which
#: accepts "²" and other digits ``int()`` refuses or reads differently).
_LENGTH = re.compile(rb"[0-9]{1,10}")

#: ``frame_filter(meta, size)`` returns None to accept a frame, or the reason to refuse it.
FrameFilter = Callable[[str, int], "str | None"]


class Parser:
    """Incremental parser for one direction of one connection, in the style of h11.

    Pull style: :meth:`receive_data` appends bytes, :meth:`next_event`
    returns the next complete event (:class:`Line`, :class:`Frame`,
    :class:`TooLong`, :class:`Refused`) or None when more bytes are needed,
    so a server can handle a bounded number of events per loop pass.
    :meth:`feed` does both and returns every complete event (a list). Any
    split of the same stream yields the same events.

    Memory held is bounded: a partial line by ``max_line`` bytes (past it
    the rest of the line is discarded as it arrives), a partial frame by
    ``max_frame`` bytes, and only for frames ``frame_filter`` accepted (a
    refused or oversized frame's payload is skipped as it arrives, never
    buffered). A frame header whose length is not 1-10 ASCII digits is
    reported as a :class:`Line` of its sanitized text, so a person sees what
    happened. Never raises on any input.
    """

    __slots__ = ("max_line", "max_frame", "frame_filter", "_buf", "_pos", "_need", "_meta", "_skip", "_skip_line")

    def __init__(self, max_line: int = MAX_LINE, max_frame: int = MAX_FRAME,
                 frame_filter: FrameFilter | None = None) -> None:
        self.max_line = max_line
        self.max_frame = max_frame
        self.frame_filter = frame_filter
        self._buf = bytearray()
        self._pos = 0  # start of the unparsed bytes in _buf
        self._need = -1  # payload bytes still expected for the current frame, -1 when none
        self._meta = ""
        self._skip = 0  # payload bytes of a refused or oversized frame still to discard
        self._skip_line = 0  # > 0 while discarding the rest of an over-long line (bytes so far)

    @property
    def buffered(self) -> int:
        """Bytes held, not yet returned as events (complete events waiting included)."""
        return len(self._buf) - self._pos

    @property
    def partial(self) -> bool:
        """True while the parser is inside a line or frame (started, not finished)."""
        return self._need >= 0 or self._skip > 0 or self._skip_line > 0 or len(self._buf) > self._pos

    @property
    def in_frame(self) -> bool:
        """True while a frame's payload is being received or skipped."""
        return self._need >= 0 or self._skip > 0

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append *data* (``bytes``-like) to the stream; events come from :meth:`next_event`."""
        buf = self._buf
        if self._pos and self._pos >= len(buf) >> 1:
            del buf[: self._pos]
            self._pos = 0
        if self._skip and self._pos == len(buf):  # discarding a payload: never buffer it
            n = min(self._skip, len(data))
            self._skip -= n
            data = data[n:]
        buf += data

    def feed(self, data: bytes) -> list[Event]:
        """Consume *data* and return every event it completes, in order."""
        self.receive_data(data)
        events: list[Event] = []
        append = events.append
        next_event = self.next_event
        while (event := next_event()) is not None:
            append(event)
        return events

    def next_event(self) -> Event | None:
        """The next complete event, or None until more data arrives."""
        buf = self._buf
        if self._need < 0 and not self._skip and not self._skip_line:  # hot path: a whole text line waits
            pos = self._pos
            nl = buf.find(b"\n", pos)
            if 0 <= nl - pos < self.max_line and buf[pos] != FRAME_MARK:
                self._pos = nl + 1
                return Line(buf[pos:nl - 1 if nl > pos and buf[nl - 1] == 13 else nl].decode("utf-8", "replace"))
        while True:
            pos, end = self._pos, len(buf)
            if pos >= end:
                if pos:
                    buf.clear()
                    self._pos = 0
                return None
            if self._skip:
                n = min(self._skip, end - pos)
                self._skip -= n
                self._pos = pos + n
                continue
            if self._need >= 0:
                if end - pos < self._need:
                    return None
                stop = pos + self._need
                with memoryview(buf) as view:  # one copy, not two (a slice of buf is a copy too)
                    payload = bytes(view[pos:stop])
                self._pos = stop
                self._need = -1
                return Frame(self._meta, payload)
            nl = buf.find(b"\n", pos)
            if self._skip_line:  # the rest of an over-long line
                self._skip_line, too_long = skip_line(buf, pos, nl, self._skip_line)
                if too_long is not None:
                    self._pos = nl + 1
                return too_long
            if nl < 0:
                if end - pos >= self.max_line:
                    self._skip_line = end - pos
                    del buf[pos:]
                return None
            self._pos = nl + 1
            if nl + 1 - pos > self.max_line:
                return TooLong("line", nl + 1 - pos)
            stop = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
            if buf[pos] == FRAME_MARK:
                event = self._start_frame(bytes(buf[pos + 1 : stop]))
                if event is not None:
                    return event
                continue
            return Line(buf[pos:stop].decode("utf-8", "replace"))

    def _start_frame(self, header: bytes) -> Event | None:
        parsed = split_frame_header(header)
        if isinstance(parsed, Line):
            return parsed
        size, meta = parsed
        if size > self.max_frame:
            self._skip = size
            return TooLong("frame", size)
        if self.frame_filter is not None:
            reason = self.frame_filter(meta, size)
            if reason is not None:
                self._skip = size
                return Refused(meta, size, reason)
        if size == 0:
            return Frame(meta, b"")
        self._meta = meta
        self._need = size
        return None


def split_frame_header(header: bytes) -> tuple[int, str] | Line:
    """A frame header line without its DLE and newline -> ``(payload size, meta)``; a header whose
    length is not 1-10 ASCII digits -> a :class:`Line` of its sanitized text (shown to a person)."""
    size_bytes, _, meta_bytes = header.partition(b" ")
    if _LENGTH.fullmatch(size_bytes) is None:
        return Line(sanitize(header.decode("utf-8", "replace")))
    return int(size_bytes), meta_bytes.decode("utf-8", "replace")


def encode_line(text: str) -> bytes:
    """Encode one outgoing text line: UTF-8 plus ``\\n``, at most :data:`MAX_LINE` bytes.

    *text* must not contain ``\\n``; callers pass sanitized text. A text
    that would not fit is cut at a character boundary (callers that must
    refuse instead check :func:`line_fits` first), so no peer ever receives a
    line over the limit.
    """
    data = text.encode("utf-8", "replace")
    if len(data) >= MAX_LINE:
        data = data[: MAX_LINE - 1].decode("utf-8", "ignore").encode()
    return data + b"\n"


def line_fits(text: str) -> bool:
    """True if *text* encodes to a line within :data:`MAX_LINE` bytes, terminator included."""
    return len(text) < MAX_LINE // 4 or len(text.encode("utf-8", "replace")) < MAX_LINE


def encode_frame_header(meta: str, size: int) -> bytes:
    """The header line announcing a frame of *size* payload bytes with *meta* text."""
    return b"%b%d %b\n" % (_FRAME_MARK_BYTES, size, meta.encode("utf-8"))


def encode_frame(meta: str, payload: bytes) -> bytes:
    """A whole frame: header line plus *payload*."""
    return encode_frame_header(meta, len(payload)) + payload
