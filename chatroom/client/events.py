"""Server lines as events: message tags (``/caps tags``) parsed, the human text kept.

Sans-I/O, any thread. The format is docs/protocol.md "Capabilities": a room
line of a connection that sent ``/caps tags`` starts with IRCv3-style tags
(https://ircv3.net/specs/extensions/message-tags)::

    @msgid=42;room=#lobby;time=2026-12-01T23:14:05.123Z;kind=msg;nick=alice alice: hi

:func:`parse` turns any server line into an :class:`Event`: ``tags`` (a dict,
values unescaped, a key without value maps to ``True``) and ``text``, the
human line exactly as a client without tags would have received it. Replies
(``OK``, ``ERROR``), private lines and lines of servers without tags give an
event with empty ``tags``. :attr:`Event.body` is the text without the
``[#room] `` and ``[HH:MM] `` markers the server adds for other rooms and
history, so a UI can draw its own.

Both UIs may use it: the terminal UI to learn rooms, nicks and times without
parsing human text; anything else that wants a line's ``msgid`` (reconnect).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field

__all__ = ["Event", "parse", "parse_tags", "parse_time"]

_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_STAMP = re.compile(r"\[(?:\d{4}-\d{2}-\d{2} )?\d{2}:\d{2}\] ")
_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z")


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            i += 1
            if i < len(value):  # a lone trailing backslash is dropped (IRCv3)
                out.append(_UNESCAPE.get(value[i], value[i]))
        else:
            out.append(c)
        i += 1
    return "".join(out)


def parse_tags(raw: str) -> dict[str, str | bool]:
    """``"msgid=42;history;nick=a\\\\sb"`` -> ``{"msgid": "42", "history": True, "nick": "a b"}``.

    *raw* is the tag part without its ``@`` and without the space after it.
    Later duplicates win; empty keys are skipped; never raises.
    """
    out: dict[str, str | bool] = {}
    for part in raw.split(";"):
        key, eq, value = part.partition("=")
        if not key:
            continue
        out[key] = _unescape(value) if eq and value else True
    return out


def parse_time(value: str) -> float | None:
    """``"2026-12-01T23:14:05.123Z"`` (UTC) -> Unix seconds; None if it is not that shape."""
    m = _TIME.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, sec = (int(g) for g in m.groups()[:6])
    try:
        whole = calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    frac = m.group(7)
    return whole + (int(frac) / 10 ** len(frac) if frac else 0.0)


@dataclass(frozen=True)
class Event:
    """One server line. ``tags``: the message tags (empty without them); ``text``: the human line."""

    text: str
    tags: dict[str, str | bool] = field(default_factory=dict)

    def _get(self, key: str) -> str | None:
        value = self.tags.get(key)
        return value if isinstance(value, str) else None

    @property
    def room(self) -> str | None:
        """The room (``"#lobby"``) of a room line, else None."""
        return self._get("room")

    @property
    def nick(self) -> str | None:
        """The author of a chat, ``/me`` or topic line, else None."""
        return self._get("nick")

    @property
    def kind(self) -> str | None:
        """``msg``, ``me``, ``topic``, ``notice`` or ``raw``; None for an untagged line."""
        return self._get("kind")

    @property
    def account(self) -> str | None:
        """The logged-in author's account, else None."""
        return self._get("account")

    @property
    def msgid(self) -> int | None:
        """The per-room history id (int), else None (notices, untagged lines)."""
        value = self._get("msgid")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def time(self) -> float | None:
        """When the server stored the line (Unix seconds), else None."""
        value = self._get("time")
        return parse_time(value) if value is not None else None

    @property
    def history(self) -> bool:
        """True for a replayed history line."""
        return bool(self.tags.get("history"))

    @property
    def body(self) -> str:
        """:attr:`text` without the ``[#room] `` and ``[HH:MM] `` markers the server added (tagged lines only)."""
        text = self.text
        if not self.tags:
            return text
        room = self.room
        if room and text.startswith(f"[{room}] "):
            text = text[len(room) + 3:]
        if self.history:
            m = _STAMP.match(text)
            if m is not None:
                text = text[m.end():]
        return text


def parse(line: str) -> Event:
    """Split one server line (no newline) into an :class:`Event`; never raises.

    A line starting with ``@`` is tagged up to its first space; anything
    else (or ``@`` with no space) is an untagged event.
    """
    if line.startswith("@"):
        raw, sep, text = line[1:].partition(" ")
        if sep:
            return Event(text, parse_tags(raw))
    return Event(line)
