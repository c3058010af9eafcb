"""The terminal UI's idea of the rooms: which you are in, the current one, unread counts, nicks seen.

Learned from what the server sends (docs/protocol.md "Rooms"): the greeting
(``* Welcome to chatroom, room lobby. ...``), the replies ``OK join #room (N
members)``, ``OK current room #room`` and ``OK part #room; current room
#lobby``, ``/who`` and ``/rooms`` lines, and the message tags of room lines
(:mod:`chatroom.client.events`), which name a line's room and nick.

Thread-safe: :meth:`Rooms.seen` runs on the network thread, everything else
on the UI thread; one lock guards the state. :attr:`Rooms.version` grows on
every change the toolbar shows, so the UI redraws only when it moved.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from chatroom.client.events import Event

__all__ = ["Rooms", "RoomTab"]

_WELCOME = re.compile(r"\* Welcome to chatroom, room ([^.\s]+)\.")
_JOINED = re.compile(r"OK join (#\S+)")
_CURRENT = re.compile(r"OK current room (#\S+)")
_PARTED = re.compile(r"OK part (#\S+); (?:current room (#\S+)|you are in no room)")
_WHO = re.compile(r"\* \d+ in (\S+): (.*)")
_LISTED = re.compile(r"\* (#\S+) \(\d+\)")
_KICKED = re.compile(r"\S+ kicked (\S+) from ")
_NICK_NOTICE = re.compile(r"(\S+) (?:joined|left) |\S+ is now known as (\S+)")
#: Nicks remembered for completion, most recent last (older ones are forgotten beyond this).
MAX_NICKS = 2000


def _room(name: str) -> str:
    name = name.lower()
    return name if name.startswith("#") else "#" + name


class RoomTab:
    """One room as the toolbar shows it: ``name``, ``unread`` lines, ``mentions``, ``current``."""

    __slots__ = ("current", "mentions", "name", "unread")

    def __init__(self, name: str, unread: int, mentions: int, current: bool) -> None:
        self.name, self.unread, self.mentions, self.current = name, unread, mentions, current

    def __repr__(self) -> str:
        return f"RoomTab({self.name!r}, {self.unread}, {self.mentions}, {self.current})"


class Rooms:
    """Client-side room state (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current: str | None = None
        self._joined: list[str] = []
        self._unread: dict[str, int] = {}
        self._mentions: dict[str, int] = {}
        self._nicks: dict[str, str] = {}  # lower -> as written, insertion order = recency
        self._known: set[str] = set()
        self.version = 0

    # ---- network thread -----------------------------------------------------------

    def seen(self, ev: Event, *, me: str = "", mention: bool = False) -> None:
        """Learn from one server line; *mention* says it mentioned the user (counted when unread)."""
        with self._lock:
            if ev.tags:
                self._seen_tagged(ev, me, mention)
            else:
                self._seen_reply(ev.text)

    def _seen_tagged(self, ev: Event, me: str, mention: bool) -> None:
        if ev.nick:
            self._add_nick(ev.nick)
        room = _room(ev.room) if ev.room else None
        body = ev.body
        if ev.kind == "notice" and body.startswith("* "):
            m = _NICK_NOTICE.match(body[2:])
            if m is not None:
                self._add_nick(m.group(1) or m.group(2))
            kicked = _KICKED.match(body[2:])
            if kicked and room and me and kicked.group(1).lower() == me.lower():
                self._leave(room, None)
        if room is None:
            return
        self._known.add(room)
        if room != self.current and not ev.history and ev.kind in ("msg", "me", "raw") and room in self._joined:
            self._unread[room] = self._unread.get(room, 0) + 1
            if mention:
                self._mentions[room] = self._mentions.get(room, 0) + 1
            self.version += 1

    def _seen_reply(self, text: str) -> None:
        if m := _WELCOME.match(text):
            self._joined = []
            self._enter(_room(m.group(1)))
        elif m := _JOINED.match(text):
            self._enter(_room(m.group(1)))
        elif m := _CURRENT.match(text):
            self._enter(_room(m.group(1)))
        elif m := _PARTED.match(text):
            self._leave(_room(m.group(1)), _room(m.group(2)) if m.group(2) else None)
        elif m := _WHO.match(text):
            self._known.add(_room(m.group(1)))
            for nick in m.group(2).split(", "):
                if nick:
                    self._add_nick(nick.strip())
        elif m := _LISTED.match(text):
            self._known.add(_room(m.group(1)))

    def _enter(self, room: str) -> None:
        if room not in self._joined:
            self._joined.append(room)
        self._known.add(room)
        self.current = room
        self._unread.pop(room, None)
        self._mentions.pop(room, None)
        self.version += 1

    def _leave(self, room: str, now: str | None) -> None:
        if room in self._joined:
            self._joined.remove(room)
        self._unread.pop(room, None)
        self._mentions.pop(room, None)
        if now is not None:
            self._enter(now)
        elif self.current == room:
            self.current = self._joined[-1] if self._joined else None
        self.version += 1

    def _add_nick(self, nick: str) -> None:
        key = nick.lower()
        self._nicks.pop(key, None)
        self._nicks[key] = nick
        if len(self._nicks) > MAX_NICKS:
            del self._nicks[next(iter(self._nicks))]

    # ---- UI thread ------------------------------------------------------------------

    def tabs(self) -> list[RoomTab]:
        """The joined rooms in the order they were joined."""
        with self._lock:
            return [RoomTab(r, self._unread.get(r, 0), self._mentions.get(r, 0), r == self.current)
                    for r in self._joined]

    def neighbour(self, step: int) -> str | None:
        """The joined room *step* places after the current one (wrapping; negative: before), or None."""
        with self._lock:
            if not self._joined:
                return None
            if self.current not in self._joined:
                return self._joined[0]
            i = self._joined.index(self.current)
            target = self._joined[(i + step) % len(self._joined)]
            return None if target == self.current else target

    def joined(self, room: str) -> bool:
        """True if the user is in *room*."""
        with self._lock:
            return _room(room) in self._joined

    def nth(self, n: int) -> str | None:
        """The *n*-th joined room (1-based), or None."""
        with self._lock:
            return self._joined[n - 1] if 0 < n <= len(self._joined) else None

    def nicks(self) -> list[str]:
        """Nicks seen, most recent first."""
        with self._lock:
            return list(reversed(self._nicks.values()))

    def names(self) -> list[str]:
        """Rooms joined or seen (``/rooms``, tags), sorted."""
        with self._lock:
            return sorted(self._known | set(self._joined))

    def learn_nicks(self, nicks: Iterable[str]) -> None:
        """Add *nicks* (e.g. the user's own) to the completion candidates."""
        with self._lock:
            for nick in nicks:
                self._add_nick(nick)
