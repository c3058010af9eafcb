"""The IRC client protocol as a sans-I/O codec: bytes in, messages out; messages in, bytes out.

In the style of h11 and of :mod:`chatroom.wire.lines`: nothing here touches a
socket. An :class:`IrcParser` is fed whatever bytes arrived and returns the
complete :class:`Message` objects (or :class:`TooLong` events) they finish;
:func:`encode` turns a message into the bytes of one line. The format is the
one of RFC 1459/2812 as the "Modern IRC" document describes it
(modern.ircdocs.horse, "Message format") with IRCv3 message tags
(ircv3.net/specs/extensions/message-tags)::

    ['@' tags SPACE] [':' source SPACE] command *(SPACE param) [SPACE ':' trailing] CRLF

* A line ends in CR LF; a bare LF is accepted (as every server does), a
  lone CR inside a line is data and is dropped with the other control bytes.
* Without its tags, a line is at most :data:`MAX_LINE` (512) bytes, CR LF
  included. The tag section (``@`` to the space after it) a client may send
  is at most :data:`MAX_CLIENT_TAGS` (4096) bytes; a server's, at most
  :data:`MAX_TAGS` (8191). A longer line is reported as :class:`TooLong`
  (:class:`chatroom.wire.lines.TooLong` with ``kind`` ``"line"`` or ``"tags"``; the server answers
  ``417 ERR_INPUTTOOLONG``) and skipped as it arrives,
  never buffered past the limit.
* Text is UTF-8; invalid bytes become U+FFFD, never an error. NUL, CR and
  LF never reach a parameter.
* Case mapping: :func:`casefold` with ``"ascii"`` (what ``CASEMAPPING=ascii``
  announces: only A-Z fold) or ``"rfc1459"`` (also ``[]\\~`` -> ``{}|^``).
  chatroom's nicks and room names use one rule for every door
  (:data:`CASEMAPPING`, see :mod:`chatroom.model.names`).

Never raises on any input.
"""

from __future__ import annotations

from collections.abc import Iterable

import re

from chatroom.wire.lines import FrameFilter, TooLong, sanitize, skip_line  # TooLong: kind "line" or "tags" here

__all__ = [
    "CASEMAPPING", "MAX_CLIENT_TAGS", "MAX_LINE", "MAX_TAGS", "UNSAFE", "IrcParser", "Message", "TooLong", "casefold", "clean",
    "encode", "encode_whole", "escape_tag", "fit_text", "format_tags", "line_size", "parse_line", "parse_tags", "split_text", "unescape_tag",
]

#: Longest line without its tag section, in bytes, CR LF included (RFC 1459 section 2.3).
MAX_LINE = 512
#: Longest tag section a server sends, ``@`` and the final space included (IRCv3 message-tags: 8191).
MAX_TAGS = 8191
#: Longest tag section a client may send, ``@`` and the final space included (IRCv3 message-tags: 4096).
MAX_CLIENT_TAGS = 4096
#: Most parameters a message carries (RFC 1459: 15); more are joined into the last one.
MAX_PARAMS = 15
#: The case mapping every door uses for nicks and room names (ISUPPORT ``CASEMAPPING``).
CASEMAPPING = "ascii"

#: The control characters :func:`clean` removes: C0 and C1 but TAB and IRC's formatting codes (bold 02, colour 03,
#: hex colour 04, reset 0F, monospace 11, reverse 16, italics 1D, strikethrough 1E, underline 1F).
UNSAFE = re.compile(r"[\x00\x01\x05-\x08\x0a-\x0e\x10\x12-\x15\x17-\x1c\x7f-\x9f]")

_ASCII = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_RFC1459 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^")
_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_ESCAPES = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"})
_CONTROLS = str.maketrans({"\0": None, "\r": None, "\n": None})
_PREFIXED = frozenset(("@", ":", " "))  # a line's first character when it does not start with its command


def casefold(name: str, mapping: str = CASEMAPPING) -> str:
    """*name* folded by the IRC case mapping *mapping* (``"ascii"`` or ``"rfc1459"``): the key two names are
    equal under. Non-ASCII characters are left as they are (neither mapping folds them)."""
    return name.translate(_RFC1459 if mapping == "rfc1459" else _ASCII)


def clean(text: str) -> str:
    """*text* an IRC client said, as the room keeps it for every door: terminal escapes, control characters
    (:data:`UNSAFE`) and invisible characters removed as the line protocol removes them from its input
    (:func:`chatroom.wire.lines.sanitize`), IRC's formatting codes kept (terminals ignore them; IRC clients show
    them)."""
    return sanitize(text, UNSAFE)


class Message:
    """One IRC message: ``tags`` (``dict[str, str]``, a tag without value maps to ``""``), ``source``
    (``str``, ``""`` for none: the ``nick!user@host`` or server name after ``:``), ``command`` (``str``, upper
    case as received: commands are compared upper-cased by the caller), ``params`` (``list[str]``, the
    trailing one included, without its ``:``)."""

    __slots__ = ("tags", "source", "command", "params")

    def __init__(self, command: str, params: Iterable[str] = (), *, source: str = "",
                 tags: dict[str, str] | None = None) -> None:
        self.tags = tags if tags is not None else {}
        self.source = source
        self.command = command
        self.params = list(params)

    def __eq__(self, other: object) -> bool:
        return (type(other) is Message and (self.tags, self.source, self.command, self.params)
                == (other.tags, other.source, other.command, other.params))

    def __repr__(self) -> str:
        tags = f", tags={self.tags!r}" if self.tags else ""
        source = f", source={self.source!r}" if self.source else ""
        return f"Message({self.command!r}, {self.params!r}{source}{tags})"


# -- tags -----------------------------------------------------------------------------------------
def unescape_tag(value: str) -> str:
    """A tag value as sent -> its text: ``\\:`` ``;``, ``\\s`` space, ``\\\\`` ``\\``, ``\\r``, ``\\n``; any other
    escaped character stands for itself and a lone final ``\\`` is dropped (message-tags, "Escaping values")."""
    if "\\" not in value:
        return value
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append(_UNESCAPES.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)


def escape_tag(value: str) -> str:
    """A tag value's text -> as sent (the inverse of :func:`unescape_tag`)."""
    return value.translate(_ESCAPES)


def parse_tags(section: str) -> dict[str, str]:
    """``"a=1;b;+c=x\\sy"`` (without ``@``) -> ``{"a": "1", "b": "", "+c": "x y"}``; empty keys are skipped and
    a key given twice keeps its last value (message-tags)."""
    tags: dict[str, str] = {}
    for item in section.split(";"):
        key, _, value = item.partition("=")
        if key:
            tags[key] = unescape_tag(value)
    return tags


def format_tags(tags: dict[str, str]) -> str:
    """``{"time": "...", "x": ""}`` -> ``"@time=...;x "`` (``""`` for no tags)."""
    if not tags:
        return ""
    return "@" + ";".join(f"{k}={escape_tag(v)}" if v else k for k, v in tags.items()) + " "


# -- parsing ------------------------------------------------------------------------------------------
def parse_line(line: str) -> Message | None:
    """One line (``str``, no terminator) -> a :class:`Message`, or None for a line with no command (empty,
    spaces only, or tags and source alone). Spaces between parameters may repeat; more than
    :data:`MAX_PARAMS` parameters are joined, with their spaces, into the fifteenth."""
    if "\0" in line or "\r" in line:
        line = line.translate(_CONTROLS)
    tags: dict[str, str] = {}
    source = ""
    if line[:1] in _PREFIXED:  # tags, a source or spaces first (a client's line is mostly a bare command)
        if line.startswith("@"):
            section, _, line = line.partition(" ")
            tags = parse_tags(section[1:])
        line = line.lstrip(" ")
        if line.startswith(":"):
            word, _, line = line.partition(" ")
            source = word[1:]
            line = line.lstrip(" ")
        if line.startswith(":"):  # a trailing parameter and no command
            return None
    head, colon, trailing = line.partition(" :")
    params = head.split(" ")
    if "" in params:  # repeated, leading or trailing spaces (rare: skip the filter otherwise)
        params = [w for w in params if w]
        if not params:
            return None
    command = params.pop(0)  # what is left are the parameters: no second list
    if colon:
        params.append(trailing)
    if len(params) > MAX_PARAMS:
        params[MAX_PARAMS - 1:] = [" ".join(params[MAX_PARAMS - 1:])]
    message = Message.__new__(Message)  # hot path (every line in): the slots set here, params not copied again
    message.tags, message.source, message.command, message.params = tags, source, command, params
    return message


class IrcParser:
    """Incremental parser of what an IRC client sends, in the style of h11: :meth:`receive_data` appends
    bytes, :meth:`next_event` returns the next :class:`Message` or :class:`TooLong` (None until more bytes
    come; lines with no command are skipped). Any split of the same stream yields the same events.

    Memory held is bounded by *max_tags* + *max_line* bytes: past that, the rest of the line is discarded
    as it arrives. It has the interface of :class:`chatroom.wire.lines.Parser` that the loop's transports
    use (``partial``, ``in_frame``, ``frame_filter``, ``buffered``).
    """

    __slots__ = ("max_line", "max_tags", "frame_filter", "_buf", "_pos", "_skip")

    in_frame = False

    def __init__(self, max_line: int = MAX_LINE, max_tags: int = MAX_CLIENT_TAGS) -> None:
        self.max_line = max_line
        self.max_tags = max_tags
        self.frame_filter: FrameFilter | None = None  # IRC has no frames: set by the transport, never called
        self._buf = bytearray()
        self._pos = 0
        self._skip = 0  # > 0 while discarding the rest of an over-long line (bytes so far)

    @property
    def buffered(self) -> int:
        """Bytes held, not yet returned as events."""
        return len(self._buf) - self._pos

    @property
    def partial(self) -> bool:
        """True while a line has started and not ended."""
        return self._skip > 0 or len(self._buf) > self._pos

    def receive_data(self, data: bytes | memoryview) -> None:
        """Append *data* (``bytes``-like) to the stream."""
        if self._pos and self._pos >= len(self._buf) >> 1:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def feed(self, data: bytes) -> list[Message | TooLong]:
        """Consume *data* and return every event it completes, in order."""
        self.receive_data(data)
        events: list[Message | TooLong] = []
        while (event := self.next_event()) is not None:
            events.append(event)
        return events

    def _limit(self, start: int, end: int) -> tuple[int, str]:
        """How many bytes the line starting at *start* may hold before its end is seen, and what it overflows."""
        buf = self._buf
        if buf[start:start + 1] != b"@":
            return self.max_line, "line"
        space = buf.find(b" ", start, min(end, start + self.max_tags))
        if space < 0:
            return self.max_tags, "tags"
        return space + 1 - start + self.max_line, "line"

    def next_event(self) -> Message | TooLong | None:
        """The next complete event, or None until more data arrives."""
        buf = self._buf
        while True:
            pos, end = self._pos, len(buf)
            if pos >= end:
                if pos:
                    buf.clear()
                    self._pos = 0
                return None
            nl = buf.find(b"\n", pos)
            if self._skip:  # the rest of an over-long line
                self._skip, too_long = skip_line(buf, pos, nl, self._skip)
                if too_long is not None:
                    self._pos = nl + 1
                return too_long
            if buf[pos] != 64:  # no tag section ("@"): the hot path, no call
                limit, kind = self.max_line, "line"
            else:
                limit, kind = self._limit(pos, nl if nl >= 0 else end)
            if nl < 0:
                if end - pos > limit:
                    self._skip = end - pos
                    del buf[pos:]
                return None
            self._pos = nl + 1
            size = nl + 1 - pos
            crlf = nl > pos and buf[nl - 1] == 13
            # CR LF counts in the limit; a bare LF is one byte shorter: compare as if it were CR LF
            if size + (not crlf) > limit:
                if kind == "tags" or buf.find(b" ", pos, nl) - pos + 1 > self.max_tags:
                    return TooLong("tags", size)
                return TooLong("line", size)
            # Hot path: the line's own CR is cut here, so parse_line's slow control-byte pass
            # (str.translate, ~6 us a line) only runs for a stray NUL or CR inside a line.
            stop = nl - 1 if crlf else nl
            message = parse_line(buf[pos:stop].decode("utf-8", "replace"))
            if message is not None:
                return message


# -- encoding -------------------------------------------------------------------------------------------
def _body(message: Message) -> bytes:
    parts: list[str] = []
    if message.source:
        parts.append(":" + message.source)
    parts.append(message.command)
    params = message.params
    if params:
        parts.extend(params[:-1])
        last = params[-1]
        if not last or " " in last or last[0] == ":":
            last = ":" + last
        parts.append(last)
    body = " ".join(parts)
    if "\0" in body or "\r" in body or "\n" in body:
        body = body.translate(_CONTROLS)
    return body.encode("utf-8", "replace")


def line_size(message: Message) -> int:
    """Bytes *message* takes without its tags, CR LF included, before any cut: over :data:`MAX_LINE`,
    :func:`encode` would cut it."""
    return len(_body(message)) + 2


def encode_whole(message: Message) -> bytes | None:
    """*message* as one line of bytes, like :func:`encode`, or None when it would have to be cut."""
    body = _body(message)
    if len(body) > MAX_LINE - 2:
        return None
    return format_tags(message.tags).encode("utf-8", "replace") + body + b"\r\n"


def encode(message: Message) -> bytes:
    """*message* as one line of bytes (UTF-8, CR LF). The last parameter gets a ``:`` when it is empty, has a
    space or starts with ``:``; the others must be non-empty words (not checked: the server builds them).
    NUL, CR and LF in parameters are dropped. A line over :data:`MAX_LINE` without its tags is cut at a
    character boundary (callers that must not cut use :func:`split_text` first)."""
    body = _body(message)
    if len(body) > MAX_LINE - 2:
        body = body[: MAX_LINE - 2].decode("utf-8", "ignore").encode()
    head = format_tags(message.tags).encode("utf-8", "replace")
    return head + body + b"\r\n"


def fit_text(prefix: str) -> int:
    """Bytes of text that fit in one line after *prefix* (``":nick!u@h PRIVMSG #room :"``, CR LF counted)."""
    return MAX_LINE - 2 - len(prefix.encode("utf-8", "replace"))


def split_text(text: str, room: int) -> list[str]:
    """*text* cut into pieces of at most *room* bytes of UTF-8 each, at a space when there is one in the last
    quarter of a piece, never inside a character (``[""]`` for empty text; *room* at least 4)."""
    room = max(room, 4)
    data = text.encode("utf-8", "replace")
    if len(data) <= room:
        return [text]
    pieces: list[str] = []
    while len(data) > room:
        cut = room
        while cut and (data[cut] & 0xC0) == 0x80:  # never inside a character
            cut -= 1
        space = data.rfind(b" ", cut - room // 4, cut)
        if space > 0:
            cut = space + 1
        pieces.append(data[:cut].decode("utf-8", "replace"))
        data = data[cut:]
    if data:
        pieces.append(data.decode("utf-8", "replace"))
    return pieces
