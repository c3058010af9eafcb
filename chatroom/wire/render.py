"""How room events look on the line protocol: the human text and the optional message tags.

Sans-I/O: strings in, strings out. The format is specified in
``docs/protocol.md`` ("Rooms" and "History"):

* a line from the reader's *current* room is ``NICK: text`` (``* NICK text``
  for ``/me``, ``* ...`` for a notice), exactly as before rooms existed; a
  line from another room the reader is in gets the prefix ``[#room] ``;
* a history line (replayed on join or by ``/history``) gets the prefix
  ``[HH:MM] `` (``[YYYY-MM-DD HH:MM] `` when not from today), in the
  server's local time, after any room prefix;
* a connection that announced ``/caps tags`` gets every room line prefixed
  with IRCv3-style message tags (https://ircv3.net/specs/extensions/message-tags):
  ``@msgid=42;room=#lobby;time=2026-12-01T23:14:05.123Z;kind=msg;nick=alice alice: hi``,
  so a program never parses the human text to learn a line's room, author,
  time, id or kind. ``history`` is a tag without value on replayed lines;
* a search hit (:func:`hit_line`) names its room, id and time in its text, and
  carries a ``search`` tag without value.
"""

from __future__ import annotations

import time
from typing import Any

from chatroom.wire.lines import MAX_LINE, encode_line

__all__ = ["KINDS", "ONCE", "STRUCTURED", "encode_event", "hit_line", "iso_time", "render", "room_label", "stamp",
           "tags"]

#: Event kinds: chat, /me, a topic change, a notice (join, part...), a plugin's line sent as it is.
KINDS = ("msg", "me", "topic", "notice", "raw")
#: Event kinds with a structure of their own (``chatroom.model.hub.Notice``): the line protocol shows their text
#: as a plain ``* text`` notice (a quiet one: nothing).
STRUCTURED = frozenset({"join", "part", "nick", "mode"})
#: Notices told to a member's co-members once, not per room: the line protocol shows none of them.
ONCE = frozenset({"quit", "away"})

_ESCAPES = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"})


def room_label(name: str) -> str:
    """The bare name used in notices (``"#lobby"`` -> ``"lobby"``), as the line protocol always showed it."""
    return name[1:] if name.startswith("#") else name


def iso_time(ts: float) -> str:
    """*ts* (Unix seconds) as UTC ISO 8601 with milliseconds, IRCv3 ``server-time`` style."""
    whole = int(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((ts - whole) * 1000):03d}Z"


def stamp(ts: float, now: float | None = None) -> str:
    """The history marker for *ts*: ``[HH:MM] `` today, ``[YYYY-MM-DD HH:MM] `` otherwise (local time)."""
    when = time.localtime(ts)
    today = time.localtime(time.time() if now is None else now)
    if when[:3] == today[:3]:
        return time.strftime("[%H:%M] ", when)
    return time.strftime("[%Y-%m-%d %H:%M] ", when)


def tags(**values: object) -> str:
    """``@k=v;k=v `` from *values* in order (None skipped, True a bare key), IRCv3-escaped."""
    parts = []
    for key, value in values.items():
        if value is None or value is False:
            continue
        parts.append(key if value is True else f"{key}={str(value).translate(_ESCAPES)}")
    return "@" + ";".join(parts) + " " if parts else ""


def render(kind: str, room: str, nick: str, text: str, *, current: bool = True) -> str:
    """The human line for one room event (``str``, no newline).

    *kind* is one of :data:`KINDS`; *room* the room's name (``#lobby``);
    *current* whether it is the reader's current room (else the line gets
    ``[#room] ``). A ``notice``'s *text* is the whole notice after ``* ``;
    a ``raw`` event's *text* is the whole line.
    """
    if kind == "msg":
        line = f"{nick}: {text}"
    elif kind == "me":
        line = f"* {nick} {text}"
    elif kind == "topic":
        label = room_label(room)
        line = f"* {nick} set the topic of {label}: {text}" if text else f"* {nick} cleared the topic of {label}"
    elif kind == "raw":
        line = text
    elif kind == "notice" and nick:  # a member's notice (an IRC NOTICE to a room): -NICK- text
        line = f"-{nick}- {text}"
    else:
        line = f"* {text}"
    return line if current else f"[{room}] {line}"


def hit_line(entry: Any, tagged: int = 0) -> str:
    """A search hit (docs/protocol.md, "Search") as a line: ``[#lobby 42 2026-12-01 23:14] alice: I love café``
    (room, id, the server's local time, the line as history shows it); with *tagged*, its message tags and a
    ``search`` tag first. *entry* has the attributes of ``chatroom.model.history.Entry``."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.ts))
    line = f"[{entry.room} {entry.id} {when}] " + render(entry.kind, entry.room, entry.nick, entry.text)
    if tagged:
        line = tags(msgid=entry.id, room=entry.room, time=iso_time(entry.ts), kind=entry.kind, nick=entry.nick,
                    account=entry.account, search=True) + line
    return line


def encode_event(entry: Any, tagged: int, current: bool, history: bool = False) -> bytes:
    """One room event (an ``Entry`` or a ``Notice`` of :mod:`chatroom.model`, duck-typed) as a line of the line
    protocol: :func:`render`, with ``[HH:MM] `` for *history*, ``[#room] `` when not *current*, and message tags
    when *tagged*. Joins, parts, renames and mode changes are plain notices (nothing for a quiet one), quits and
    away changes are nothing (the parts say it), a private line carries no tags."""
    kind = entry.kind
    if kind == "msg" and current and not tagged and not history:  # hot path: a chat line, once per fan-out
        data = f"{entry.nick}: {entry.text}\n".encode("utf-8", "replace")  # = encode_line(render(...))
        if len(data) <= MAX_LINE:
            return data
    nick, account, msgid = entry.nick, entry.account, entry.id
    if kind in ONCE:
        return b""
    if kind in STRUCTURED:
        if entry.quiet:
            return b""
        kind, nick, account, msgid = "notice", "", None, 0
    elif kind == "private":
        return encode_line(f"{nick} (private): {entry.text}")
    line = render(kind, entry.room, nick, entry.text)
    if history:
        line = stamp(entry.ts) + line
    if not current and entry.room:
        line = f"[{entry.room}] {line}"
    if tagged:
        line = tags(msgid=msgid or None, room=entry.room or None, time=iso_time(entry.ts), kind=kind,
                    nick=nick or None, account=account, history=history) + line
    return encode_line(line)
