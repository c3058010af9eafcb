"""How the room model's events look on the line protocol: one encoder the hub uses for its first wire.

Joins, parts and renames are structured events in the model (:class:`~chatroom.model.hub.Notice`); the line
protocol shows them as the plain ``* ...`` notices it always showed (:func:`public`), and plugins'
``message_delivered`` sees them the same way. Pure functions; any thread.
"""

from __future__ import annotations

from chatroom.model.history import Entry
from chatroom.wire.lines import encode_line
from chatroom.wire.render import iso_time, render, stamp, tags

__all__ = ["MEMBERSHIP", "encode_event", "public"]

#: Notice kinds with a structure of their own: a line client sees them as plain ``* text`` notices.
MEMBERSHIP = frozenset({"join", "part", "nick"})


def encode_event(entry: Entry, tagged: int, current: bool, history: bool = False) -> bytes:
    """One event as a line of the line protocol (see :mod:`chatroom.wire.render`); joins, parts and
    renames are plain notices (nothing for a quiet one), a private line carries no tags."""
    kind = entry.kind
    if kind in MEMBERSHIP:
        if entry.quiet:  # type: ignore[attr-defined]
            return b""
        entry = public(entry)
    elif kind == "private":
        return encode_line(f"{entry.nick} (private): {entry.text}")
    line = render(entry.kind, entry.room, entry.nick, entry.text)
    if history:
        line = stamp(entry.ts) + line
    if not current and entry.room:
        line = f"[{entry.room}] {line}"
    if tagged:
        line = tags(msgid=entry.id or None, room=entry.room or None, time=iso_time(entry.ts), kind=entry.kind,
                    nick=entry.nick or None, account=entry.account, history=history) + line
    return encode_line(line)


def public(entry: Entry) -> Entry:
    """What the line protocol and plugins (``message_delivered``) see of an event: a join, part or rename is a
    plain notice (kind ``"notice"``, no nick), as before these had a structure."""
    if entry.kind in MEMBERSHIP:
        return Entry(entry.room, 0, entry.ts, "notice", "", None, entry.text)
    return entry
