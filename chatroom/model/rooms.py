"""The rooms of one server and their lifetime: which rooms exist, who may create one, when one goes.

The lifetime rule (docs/protocol.md, "Room lifetime"):

- The **default room** and every room with an **owner** (made by a logged-in member) persist, empty
  or not, across restarts.
- A room **without an owner** (made by a guest, or by a plugin) lives while it has members, as an IRC
  channel does. When its last member leaves it is no longer listed, and:

  - if it holds nothing (no line was ever stored in it, no topic) it is deleted at once;
  - else it **lingers** for ``linger`` seconds (:data:`LINGER`, 15 minutes): whoever joins it then
    finds it as it was (topic, key, bans, history, ids going on), so after a server restart, which
    counts as everyone leaving at once, clients that come back rejoin and catch up with ``/history
    #room since ID``; once the linger is over (:meth:`Rooms.expire`) it is deleted with its history
    (:meth:`~chatroom.model.history.History.drop_room`). Ids are never given twice under one name.

- **Creation** is bounded: each connection has a token bucket (``create_burst`` rooms at once, then
  one every ``create_every`` seconds; admins are exempt), and the server holds at most ``max_rooms``
  rooms, lingering ones included: at the cap, the room that has lingered longest is deleted to make
  room; when none lingers, creating is refused.

Reading a room's history goes through :meth:`Rooms.read`, searching it through :meth:`Rooms.search`, entering
it through :meth:`Rooms.admit`, speaking in it through :meth:`Rooms.speak_refusal`; all apply the access rule
(:mod:`chatroom.model.access`). No sockets, no plugins; loop thread only.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING

from chatroom.model.access import (SERVER, RoomView, Viewer, check_join, check_read, listed_to, may_read,
                                   nick_refusal, speak_refusal, view)
from chatroom.model.errors import NickRefused, Refused, SpeakRefused
from chatroom.model.moderation import RoomRules
from chatroom.model.names import room_key
from chatroom.model.room import Room
from chatroom.model.search import PAGE, SearchCursor, SearchPage
from chatroom.model.searchquery import parse

if TYPE_CHECKING:
    from chatroom.model.history import Entry, History
    from chatroom.model.member import Member

__all__ = ["CREATE_BURST", "CREATE_EVERY", "LINGER", "MAX_ROOMS", "Rooms"]

#: Seconds an empty room without an owner that holds something is kept before it is deleted.
LINGER = 900.0
#: Rooms one connection may create at once, and seconds per further room.
CREATE_BURST = 10
CREATE_EVERY = 30.0
#: Default server-wide cap on rooms held (``chatroom-server --max-rooms``).
MAX_ROOMS = 1000


class Rooms:
    """Every room of one server by canonical name (``#name``), with the lifetime rule above.

    A read-only mapping for lookups (``rooms["#x"]``, ``in``, ``len``, iteration over names,
    ``values()``, ``get``); rooms are made with :meth:`open` and go by :meth:`vacated` and
    :meth:`expire`. *history* stores records and lines (None: nothing persists); *default_room*
    (canonical) always exists; *clock* gives Unix seconds. ``is_admin(account or None) -> bool`` is set
    by the server (default: nobody): admins create rooms without a rate and read every room.
    """

    def __init__(self, history: History | None, *, default_room: str, clock: Callable[[], float] = time.time,
                 max_rooms: int = MAX_ROOMS, linger: float = LINGER, create_burst: int = CREATE_BURST,
                 create_every: float = CREATE_EVERY) -> None:
        self.history = history
        self.default = default_room
        self.clock = clock
        self.max_rooms = max_rooms
        self.linger = linger
        self.create_burst = create_burst
        self.create_every = create_every
        self.is_admin: Callable[[str | None], bool] = lambda account: False
        #: Scale-out: ``on_rules(room)`` hears every change of a room's rules made here (None: nobody);
        #: ``on_created(room)`` every room this server creates (its first owner is then the bus's to share).
        self.on_rules: Callable[[Room], None] | None = None
        self.on_created: Callable[[Room], None] | None = None
        self._rooms: dict[str, Room] = {}
        self._buckets: dict[int, tuple[float, float]] = {}  # member id -> (tokens, when), creators only
        if history is not None:
            for record in history.records.rooms():
                self._rooms[record.name] = Room(record.name, record.topic, record.topic_by, record.topic_at)
            for name, rules in history.records.room_rules().items():
                if name in self._rooms:
                    self._rooms[name].rules = RoomRules.from_json(rules)
            for room in list(self._rooms.values()):  # start-up: every room is empty
                self.vacated(room)

    # -- lookups --------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Room:
        return self._rooms[name]

    def __contains__(self, name: object) -> bool:
        return name in self._rooms

    def __iter__(self) -> Iterator[str]:
        return iter(self._rooms)

    def __len__(self) -> int:
        return len(self._rooms)

    def values(self) -> Collection[Room]:
        """Every room held, lingering ones too (what :meth:`listed` shows is fewer)."""
        return self._rooms.values()

    def get(self, name: str) -> Room | None:
        """The room called *name* (``#x`` or ``x``, any case; a lingering one too), or None (also for an invalid name)."""
        key = room_key(name)
        return self._rooms.get(key) if key else None

    def named(self, name: str) -> Room:
        """The room called *name* (as :meth:`get`); raises :class:`~chatroom.model.errors.Refused` ``no such room:
        NAME`` if there is none."""
        room = self.get(name)
        if room is None:
            raise Refused(f"no such room: {name}")
        return room

    def persists(self, room: Room) -> bool:
        """True for the default room and rooms with an owner: they never go."""
        return room.name == self.default or bool(room.rules.owner)

    def listed(self, viewer: Viewer | None = None) -> list[Room]:
        """The rooms a listing shows, by name: those with members, and those that persist; to a *viewer*, not
        the secret rooms it is not in (:func:`~chatroom.model.access.listed_to`)."""
        rooms = (r for r in self._rooms.values() if (r.members or self.persists(r)) and
                 (viewer is None or listed_to(viewer, r)))
        return sorted(rooms, key=lambda r: r.name)

    def listing(self, viewer: Viewer, match: str = "") -> list[RoomView]:
        """What *viewer* sees of each listed room whose name contains *match* (any case), by name
        (:func:`chatroom.model.access.view`: the topic only of rooms it may read)."""
        match = match.lower().lstrip("#")
        return [view(viewer, r) for r in self.listed(viewer) if match in r.name[1:]]

    def viewer(self, member: Member | None) -> Viewer:
        """The :class:`~chatroom.model.access.Viewer` a connected *member* is (its account, address, admin or
        not); None: :data:`~chatroom.model.access.SERVER`, the server itself, which reads every room."""
        return Viewer.of(member, self.is_admin(member.account)) if member is not None else SERVER

    def read(self, viewer: Viewer | Member, room: Room, *, last: int | None = None, since: int | None = None,
             before: int | None = None) -> list[Entry]:
        """Stored lines of *room* as *viewer* (a :class:`~chatroom.model.access.Viewer`, or a connected
        member) may read them, oldest first: the *last* N (default 20), those after id *since* (N default
        500), or the N (default 50) before id *before*. The one way to read a room's history.

        Raises :class:`~chatroom.model.errors.Refused` if *viewer* may not read *room*
        (:func:`chatroom.model.access.check_read`), ValueError for N outside 1..500. No history: ``[]``.
        """
        check_read(viewer if isinstance(viewer, Viewer) else self.viewer(viewer), room)
        history = self.history
        if history is None:
            return []
        if since is not None:
            return history.since(room.name, since, last or 500)
        if before is not None:
            return history.before(room.name, before, last or 50)
        return history.last(room.name, last or 20)

    def search(self, viewer: Viewer | Member, start: str | SearchCursor, *, limit: int = PAGE) -> SearchPage:
        """One page of a full-text search (*start*: the query text, docs/protocol.md "Search", or the
        ``more`` cursor of the previous page) over the history of every room *viewer* may read, newest
        first; with a ``#room`` in the query, that room only. The access rule is checked on every page.

        Raises :class:`~chatroom.model.searchquery.QueryError` (the reason) for a query that cannot run,
        :class:`~chatroom.model.errors.Refused` for an unknown ``#room`` or one *viewer* may not read,
        ValueError for *limit* outside 1..200. No history: no hits.
        """
        who = viewer if isinstance(viewer, Viewer) else self.viewer(viewer)
        query = parse(start) if isinstance(start, str) else start.query
        if query.room is not None:
            room = self.named(query.room)
            check_read(who, room)
            readable = [room.name]
        else:
            readable = [room.name for room in self._rooms.values() if may_read(who, room)]
        if self.history is None:
            return SearchPage([], None)
        return self.history.search(query if isinstance(start, str) else start, readable, limit=limit)

    # -- life cycle ------------------------------------------------------------------------------
    def open(self, name: str, owner: str | None = None, creator: Member | None = None) -> Room:
        """The room called *name*, created (and persisted) if new, then owned by the account *owner*
        (None: no owner). A new room is charged to *creator*'s creation rate and counted against
        ``max_rooms`` (None: the server, which makes the default room, is not bounded).

        Raises :class:`~chatroom.model.errors.Refused` for an invalid name, a creator over its rate, or a
        server at ``max_rooms`` with no lingering room to delete.
        """
        key = room_key(name)
        if key is None:
            raise Refused(f"{name!r} is not a room name: # and 1-32 of a-z 0-9 _ -")
        room = self._rooms.get(key)
        if room is not None:
            return room
        if creator is not None:  # a member creates it (not the server: the default room is always there)
            bucket = self._bucket(creator)
            if len(self._rooms) >= self.max_rooms and not self._evict():
                raise Refused(f"this server holds {len(self._rooms)} rooms, its limit: join one of them (/rooms)")
            if bucket is not None:
                self._buckets[creator.id] = (bucket[0] - 1.0, bucket[1])
        room = self._rooms[key] = Room(key)
        if self.history is not None:
            self.history.records.ensure_room(key)
        if owner:
            room.rules.owner = owner
            self.save_rules(room, share=self.on_created is None)
        if self.on_created is not None:
            self.on_created(room)
        return room

    def admit(self, member: Member, name: str, key: str | None = None) -> Room:
        """The room *name* for *member* to enter with *key*: created if new (owned by *member*'s account, charged
        to its creation rate: :meth:`open`), else checked against the room's rules
        (:func:`~chatroom.model.access.check_join`; a member of the room passes). Every door's join rule.

        Raises :class:`~chatroom.model.errors.JoinRefused` for what the room's rules refuse (a ban, a key,
        invite-only, full), :class:`~chatroom.model.errors.Refused` for a bad name or a refused creation."""
        room = self.get(name)
        if room is None:
            return self.open(name, member.account, member)
        check_join(self.viewer(member), room, key, invited=member.invited_to(room.name))
        return room

    def speak_refusal(self, member: Member, room: Room) -> SpeakRefused | None:
        """Why *member* may not say a line in *room* (:func:`~chatroom.model.access.speak_refusal`: outside the
        room, banned, moderated), or None if it may. Every door's and the plugins' speak rule; the doors render the
        refusal in their own words (``ERROR``, IRC's ``404``). Called per chat line: a member of a room that is
        neither moderated nor has bans passes on three attribute reads and a dict lookup."""
        rules = room.rules
        if not rules.moderated and not rules.bans and room.members.get(member.id) is member:
            return None
        return speak_refusal(self.viewer(member), room)

    def nick_refusal(self, member: Member) -> NickRefused | None:
        """Why *member* may not change its nick (:func:`~chatroom.model.access.nick_refusal`: a ban silences it in
        a room it is in, the first such room in join order), or None. Every door's rename passes here
        (:meth:`chatroom.model.hub.Hub.rename`)."""
        viewer = None
        for room in member.rooms.values():
            if room.rules.bans:
                viewer = viewer or self.viewer(member)
                if (refusal := nick_refusal(viewer, room)) is not None:
                    return refusal
        return None

    def _bucket(self, creator: Member) -> tuple[float, float] | None:
        """*creator*'s creation bucket now, ``(tokens, when)`` with at least one token (None: an admin, no
        bucket); raises Refused with the wait when it is empty."""
        if self.is_admin(creator.account):
            return None
        now = self.clock()
        tokens, when = self._buckets.get(creator.id, (float(self.create_burst), now))
        tokens = min(float(self.create_burst), tokens + max(0.0, now - when) / self.create_every)
        if tokens < 1.0:
            wait = math.ceil((1.0 - tokens) * self.create_every)
            raise Refused(f"you are creating rooms too fast ({self.create_burst} at once, then one every "
                          f"{self.create_every:g} s): try again in {wait} s, or join a room that exists (/rooms)")
        return tokens, now

    def forget(self, member: Member) -> None:
        """*member* is gone: drop its creation bucket."""
        self._buckets.pop(member.id, None)

    def save_rules(self, room: Room, *, share: bool = True) -> None:
        """Persist *room*'s moderation rules (``room.rules``) at once; tell :attr:`on_rules` unless *share* is
        False (rules that came from another node)."""
        if self.history is not None and self._rooms.get(room.name) is room:
            self.history.records.save_rules(room.name, room.rules.to_json())
        if share and self.on_rules is not None:
            self.on_rules(room)

    def occupied(self, room: Room) -> None:
        """A member joined *room*: it lingers no more."""
        room.emptied = 0.0

    def vacated(self, room: Room) -> None:
        """*room* has no members left (or the server just started): per the rule, it persists, is
        deleted at once (it holds nothing) or lingers from now."""
        if room.members or self.persists(room) or room.emptied:
            return
        history = self.history
        if room.topic or (history is not None and history.has_lines(room.name)):
            room.emptied = self.clock()
        else:
            self._drop(room)

    def expire(self, limit: int = 100) -> bool:
        """Delete up to *limit* rooms whose linger is over (each drop is a small transaction); True if more
        wait. The server calls it every minute, and again at once while it returns True."""
        cut = self.clock() - self.linger
        gone = [r for r in self._rooms.values() if r.emptied and r.emptied <= cut and not r.members]
        for room in gone[:limit]:
            if not self._drop(room):
                return False  # the store fails: try again next time
        return len(gone) > limit

    def _evict(self) -> bool:
        """Delete the room that has lingered longest, to make room; False if none lingers (or the store fails)."""
        lingering = [r for r in self._rooms.values() if r.emptied and not r.members]
        return bool(lingering) and self._drop(min(lingering, key=lambda r: r.emptied))

    def _drop(self, room: Room) -> bool:
        """Delete *room* and its history; False if the store failed (it lingers, and expires again later)."""
        if self.history is not None:
            try:
                self.history.drop_room(room.name)
            except sqlite3.Error:  # the history commit logs a failing store; nothing is lost by waiting
                room.emptied = room.emptied or self.clock()
                return False
        del self._rooms[room.name]
        room.emptied = 0.0
        return True
