"""The room model's events as the bus carries them: one JSON array per event, never a raw newline in it.

An event of a room's pass (:class:`~chatroom.model.history.Entry`, or a
:class:`~chatroom.model.hub.Notice` with its ``extra`` and ``quiet``) is published with the node and the
member that caused it, so that every node can tell its own speaker (who does not get its own lines back)
and keep its mirror of the other nodes' members::

    ["msg", TS, "alice", "alice-account-or-null", "text", "", 0, "node-a", 12, "", ""]
      kind  ts  nick     account                  text   extra quiet node  member id (0: none) by cause

Its id is not in it: a stored line's id is its place in the published batch
(:func:`chatroom.scaleout.bus.parse_batch`). Which events are stored: :func:`stored`. Pure; any thread.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from chatroom.model.history import Entry
from chatroom.model.notice import Event, Notice

__all__ = ["STORED_KINDS", "Carried", "decode", "encode", "stored"]

#: Kinds a room's history stores (what the hub records): chat, ``/me`` and topic changes.
STORED_KINDS = frozenset({"msg", "me", "topic"})
#: Kinds that are structured notices (fields ``extra`` and ``quiet`` matter).
_NOTICES = frozenset({"join", "part", "nick", "private", "kick", "mode", "quit", "away", "invite"})

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Carried(NamedTuple):
    """One event off the bus: ``event`` (an Entry, or a Notice for a structured notice), ``node`` (``str``:
    where it happened) and ``member`` (``int``: the member id that caused it there, 0 for none)."""

    event: Event
    node: str
    member: int


def stored(event: Event, record: bool = True) -> bool:
    """Does the room's history keep *event* (gets an id)? Only with *record* (``--no-history``: nothing)."""
    return record and event.kind in STORED_KINDS and not isinstance(event, Notice)


def encode(event: Event, node: str, member: int) -> bytes:
    """*event* (of *node*'s *member*, 0: none) as one line of UTF-8 JSON."""
    extra = getattr(event, "extra", "")
    quiet = 1 if getattr(event, "quiet", False) else 0
    return _dumps([event.kind, event.ts, event.nick, event.account, event.text, extra, quiet, node, member,
                   getattr(event, "by", ""), getattr(event, "cause", "")]).encode()


def decode(payload: bytes, room: str, entry_id: int) -> Carried:
    """The event *payload* (see :func:`encode`) of *room*, numbered *entry_id* (0: not stored). Raises
    ValueError when it is not one."""
    try:
        kind, ts, nick, account, text, extra, quiet, node, member, by, cause = json.loads(payload)
        event: Event
        if kind in _NOTICES or extra or quiet or by or cause:
            event = Notice(room, entry_id, float(ts), str(kind), str(nick), account, str(text), str(extra),
                           bool(quiet), str(by), str(cause))
        else:
            event = Entry(room, entry_id, float(ts), str(kind), str(nick), account, str(text))
        return Carried(event, str(node), int(member))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a carried event: {payload[:80]!r} ({exc})") from None
