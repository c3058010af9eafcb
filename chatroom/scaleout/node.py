"""A node: this server as one of several that are one chat, through Redis (docs/scale-out.md).

The node puts itself between the room model and its members. With ``hub.bus`` set to
:meth:`Node.publish`, every room's events of a loop pass go to Redis in one ``publish.lua`` call
(:mod:`chatroom.scaleout.bus`) instead of being fanned out; every node, this one too, gets them back on
its subscription (one pattern for every room's channel) and delivers them to its own members in Redis's
order, each room through its :class:`~chatroom.scaleout.feed.Feed` (gaps fetched from the room's
stream, duplicates dropped, losses told to the room). Stored lines go into the local history with the
ids Redis gave them, so ``/history``, replay on join and plugins read every node's lines locally.

When Redis cannot take a pass (down, too slow, its output queue full), the speakers of its lines get
``ERROR ... not delivered`` at once or within ``--redis-timeout``: nothing is shown to anyone that was
not stored first. Presence of the other nodes' members: :mod:`chatroom.scaleout.presence`.

Two connections: commands (``EVALSHA``, ``XRANGE``...) and the subscription (RESP2 Pub/Sub needs its
own). Loop thread only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chatroom.model.errors import Refused
from chatroom.model.history import Entry
from chatroom.model.notice import Event, Notice
from chatroom.scaleout.accounts import SharedAccounts
from chatroom.scaleout.address import parse_redis_url
from chatroom.scaleout.bus import Keys, Publisher, parse_batch
from chatroom.scaleout.events import decode, encode, stored
from chatroom.scaleout.feed import FETCH_COUNT, Deliver, Feed, Fetch, Lost, Out
from chatroom.scaleout.ids import IdBlocks
from chatroom.scaleout.link import RedisLink, Unavailable
from chatroom.scaleout.presence import Presence, RemoteMember
from chatroom.scaleout.rules import SharedRules, mode_here, part_here
from chatroom.scaleout.probe import BlockingRedis

if TYPE_CHECKING:
    from chatroom.model.accounts import AccountStore
    from chatroom.model.history import History
    from chatroom.model.hub import Hub
    from chatroom.model.member import Member
    from chatroom.model.room import Room
    from chatroom.net.loop import Loop

__all__ = ["Node"]

log = logging.getLogger("chatroom.server")

#: Seconds before a fetch that failed (Redis unreachable) is tried again.
RETRY = 0.5


class Node:
    """This server's part in a scale-out: *hub* and *history* are the server's (history None: nothing
    stored locally), *loop* its loop; *url* the Redis URL, *name* this node's name, *timeout* the seconds
    Redis has to answer, *keep_lines* the lines a room's stream keeps (0: all); ``tell(member, line)`` sends
    a member one line (an ``ERROR``). Call :meth:`start`, and :meth:`close` when the server stops."""

    def __init__(self, loop: Loop, hub: Hub, history: History | None, *, url: str, name: str,
                 timeout: float = 2.0, keep_lines: int = 0, tell: Callable[[Member, str], None],
                 announce: Callable[[str], None] = lambda text: None, accounts: AccountStore | None = None,
                 prefix: str = "chatroom") -> None:
        self.loop = loop
        self.hub = hub
        self.history = history
        self.name = name
        self.keep_lines = keep_lines
        self.tell = tell
        self.announce = announce
        self.keys = Keys(prefix)
        address = parse_redis_url(url)
        self.link = RedisLink(loop, address, name=f"chatroom-{name}", timeout=timeout, on_ready=self._link_ready)
        self.sub = RedisLink(loop, address, name=f"chatroom-{name}-sub", subscriber=True, timeout=timeout,
                             on_ready=self._sub_ready, on_push=self._push)
        self.publisher = Publisher(self.link, self.keys)
        self.presence = Presence(hub, self.link, self.keys, name, tell=tell, call_later=loop.call_later)
        self.rules = SharedRules(hub, self.link, self.keys, name, self.presence.key["ctl"])
        self.rules.tell = tell
        self.accounts = (SharedAccounts(accounts, self.link, f"{prefix}:accounts", self.presence.key["ctl"], name)
                         if accounts is not None else None)
        self.feeds: dict[str, Feed] = {}
        self.id_blocks: IdBlocks | None = None  # member ids (:meth:`ids`)
        self.joining: set[tuple[str, int]] = set()  # (room, member id): this node's joins not back from Redis yet
        self._failing = False
        #: Redis's clock minus this host's (seconds; measured with TIME on every connection): a call's deadline is
        #: set on Redis's clock, so hosts whose clocks differ still agree when a call is too late.
        self.clock_offset = 0.0
        self._closing = False
        self._joined = False  # both links were ready once (announced)
        self._subscribed = False  # the pattern subscription was confirmed once
        #: Called once, when both links are ready and every room this node holds has fetched what was said
        #: while it was away (the server holds its listeners until then: those lines are history, not news).
        self.on_ready: Callable[[], None] | None = None
        #: Counters: passes published, passes refused (their speakers told), lines reported lost.
        self.published = self.refused = self.lost = 0
        hub.bus = self.publish

    def ids(self, timeout: float = 2.0) -> IdBlocks:
        """Member ids unique across the nodes (a transport's ``ids``): the first block is reserved now, blocking
        (start-up only, before the loop runs). Raises OSError or ValueError when Redis cannot give it."""
        with BlockingRedis(self.link.address, timeout) as redis:
            if self.link.address.password is not None:
                redis.command("AUTH", *([self.link.address.username] if self.link.address.username else []),
                              self.link.address.password)
            if self.link.address.db:
                redis.command("SELECT", self.link.address.db)
            first = IdBlocks.reserve(redis, f"{self.keys.prefix}:ids", self.presence.key["presence"])
        self.id_blocks = IdBlocks(first, self.link, f"{self.keys.prefix}:ids", self.presence.key["presence"])
        return self.id_blocks

    def start(self) -> None:
        """Connect both links (they reconnect by themselves for as long as the node runs)."""
        self.link.start()
        self.sub.start()

    def close(self) -> None:
        """Stop sharing: the hub fans out locally again, both links close."""
        self._closing = True
        if self.hub.bus == self.publish:
            self.hub.bus = None
        self.presence.close()
        self.rules.close()
        if self.accounts is not None:
            self.accounts.close()
        try:  # leaving on purpose: never reaped as dead (each member's departure was said already)
            self.link.call("DEL", self.presence.alive + self.name)
            self.link.call("SREM", self.presence.key["nodes"], self.name)
        except Unavailable:
            pass
        self.link.flush()  # the last pass (members leaving) goes out if the socket takes it
        self.link.close()
        self.sub.close()

    # -- publishing -------------------------------------------------------------------------------
    def publish(self, room: Room, pending: list[tuple[int, Event]]) -> None:
        """``hub.bus``: *room*'s events of this pass, ``(sender member id or 0, event)``, to Redis in one call."""
        self.presence.joined_or_left(pending)
        self.joining.update((room.name, sender) for sender, event in pending if event.kind == "join" and sender)
        record = self.hub.record
        events = [(stored(event, record), encode(event, self.name, sender)) for sender, event in pending]
        try:
            self.publisher.publish(room.name, events, keep=self.keep_lines, floor=self._floor(room.name),
                                   deadline=self.hub.clock() + self.clock_offset + self.link.timeout,
                                   on_reply=lambda reply: self._published(room, pending, reply))
        except Unavailable as exc:
            self._not_published(room, pending, str(exc))

    def _floor(self, room: str) -> int:
        feed = self.feeds.get(room)
        known = self.history.latest_id(room) if self.history is not None and self.hub.record else 0
        return max(known, feed.next_id - 1 if feed is not None else 0)

    def _published(self, room: Room, pending: list[tuple[int, Event]], reply: Any) -> None:
        if isinstance(reply, tuple):
            self.published += 1
            if self._failing:
                self._failing = False
                log.info("Redis takes the rooms' lines again")
            return
        self._not_published(room, pending, str(reply))

    def _not_published(self, room: Room, pending: list[tuple[int, Event]], reason: str) -> None:
        """Tell each speaker of *pending* that its line was not delivered (nobody got it)."""
        self.joining.difference_update((room.name, sender) for sender, _ in pending)
        if self._closing:
            return
        self.refused += 1
        if not self._failing:
            self._failing = True
            log.error("cannot publish to Redis (%s): speakers are told their lines were not delivered", reason)
        told: set[int] = set()
        for sender, event in pending:
            if event.kind == "part" and isinstance(event, Notice) and event.cause == "kick":
                kicker = self.hub.find(event.by)  # its node never heard it: undone when Redis is back
                if kicker is not None and not isinstance(kicker, RemoteMember):
                    self.tell(kicker, f"ERROR {event.nick} was kicked from {room.label} on this server only: the "
                                      f"servers' shared store (Redis) is unavailable; try again ({reason})")
                continue
            if event.kind not in ("msg", "me", "topic"):
                continue
            # a topic is pended for everyone (the setter sees it too): its setter is found by its nick
            member = self.hub.members.get(sender) if sender else self.hub.find(event.nick)
            if member is not None and not isinstance(member, RemoteMember) and member.id not in told:
                told.add(member.id)
                what = f"the topic of {room.label} was not changed" if event.kind == "topic" else \
                    f"not delivered to {room.label}"
                self.tell(member, f"ERROR {what}: the servers' shared store (Redis) is unavailable; try again "
                                  f"({reason})")

    # -- receiving --------------------------------------------------------------------------------
    def _sub_ready(self) -> None:
        self.sub.send("SUBSCRIBE", self.presence.key["ctl"], self.presence.lines.channel + self.name)
        self.sub.send("PSUBSCRIBE", self.keys.channel("#*"))

    def _both_ready(self) -> None:
        if not self._joined and self.link.ready and self._subscribed:
            self._joined = True
            self.announce(f"node {self.name} sharing rooms through Redis at {self.link.address}")

    def _link_ready(self) -> None:
        sent = self.hub.clock()
        self.link.call("TIME", on_reply=lambda reply: self._timed(sent, reply))
        self.publisher.load()
        self.presence.ready()
        if self.id_blocks is not None:
            self.id_blocks.ready()
        self.rules.ready()  # first what changed here while Redis was away, then what the others changed
        # every room's rules, read now: those a resync on resubscription could not read while this link was down
        # (it kept them in rules.unread) among them
        self.rules.resync(list(self.hub.rooms))
        if self.accounts is not None:
            self.accounts.ready()
        self._both_ready()
        for room, feed in list(self.feeds.items()):  # fetches that waited for the link
            if feed.fetching is not None:
                self._run(room, feed.failed())
        self._check_ready()

    def _timed(self, sent: float, reply: Any) -> None:
        if isinstance(reply, list):
            now = self.hub.clock()
            redis = int(reply[0]) + int(reply[1]) / 1e6
            self.clock_offset = redis - (sent + now) / 2
            if abs(self.clock_offset) > 1.0:
                log.warning("this host's clock is %.1f s off Redis's: deadlines follow Redis's", -self.clock_offset)

    def _push(self, reply: Any) -> None:
        kind = reply[0]
        if kind == b"pmessage":
            try:
                room = self.keys.room_of(reply[2])
                batch = parse_batch(reply[3])
            except ValueError as exc:
                log.error("ignoring a message on %r: %s", reply[2], exc)
                return
            self._run(room, self._feed(room).receive(batch))
        elif kind == b"message":
            try:
                if reply[1] == self.presence.key["ctl"].encode():
                    message = json.loads(reply[2])
                    if message.get("k") == "rules":
                        self.rules.on_control(message)
                    elif message.get("k") == "account" and self.accounts is not None:
                        self.accounts.on_control(message)
                    else:
                        self.presence.on_control(reply[2])
                else:
                    self.presence.lines.on_direct(reply[2])
            except (ValueError, KeyError, TypeError) as exc:
                log.error("ignoring a message on %r: %s", reply[1], exc)
        elif kind == b"psubscribe":  # (re)subscribed: anything published meanwhile is fetched
            self._subscribed = True
            self._both_ready()
            for name in list(self.hub.rooms):  # the rooms this node holds: what was said while it was away
                self._feed(name)
            self.rules.resync(list(self.hub.rooms))
            if self.link.ready:  # (else _link_ready reads them all)
                self.presence.resnapshot()
                if self.accounts is not None:  # a change published while this subscription was down
                    self.accounts.ready()
            for room, feed in list(self.feeds.items()):
                self._run(room, feed.resync())
            self._check_ready()

    def _check_ready(self) -> None:
        """Call :attr:`on_ready` (once) when both links are ready and no room's catch-up fetch is under way."""
        if self.on_ready is not None and self._joined and self._subscribed and \
                all(feed.fetching is None for feed in self.feeds.values()):
            on_ready, self.on_ready = self.on_ready, None
            on_ready()

    def _feed(self, room: str) -> Feed:
        feed = self.feeds.get(room)
        if feed is None:
            start = self.history.latest_id(room) + 1 if self.history is not None and self.hub.record else 0
            feed = self.feeds[room] = Feed(start)
        return feed

    def _run(self, room: str, outs: list[Out]) -> None:
        for out in outs:
            if isinstance(out, Deliver):
                self._deliver(room, out.events)
            elif isinstance(out, Fetch):
                self._fetch(room, out)
            else:
                self._lost(room, out)

    def _fetch(self, room: str, want: Fetch) -> None:
        epoch: list[Any] = []  # the room's epoch, read just before the lines (one connection: replies in order)
        try:
            self.link.call("HGET", self.keys.meta(room), "epoch", on_reply=epoch.append)
            self.link.call("XRANGE", self.keys.stream(room), f"{want.first}-0", f"{want.last}-0" if want.last else "+",
                           "COUNT", FETCH_COUNT, on_reply=lambda reply: self._fetched(room, reply, epoch))
        except Unavailable:  # retried when the link is back (_link_ready), or soon
            self.loop.call_later(RETRY, lambda: self._run(room, self._feed(room).failed()))

    def _fetched(self, room: str, reply: Any, epoch: list[Any]) -> None:
        if isinstance(reply, Exception):
            log.warning("cannot fetch the missed lines of %s (%s): trying again", room, reply)
            self.loop.call_later(RETRY, lambda: self._run(room, self._feed(room).failed()))
            return
        lines = [(int(entry_id.split(b"-", 1)[0]), fields[1][1:]) for entry_id, fields in reply]
        known = epoch[0].decode() if epoch and isinstance(epoch[0], bytes) else None
        self._run(room, self._feed(room).fetched(lines, known))
        self._check_ready()

    def _lost(self, room: str, lost: Lost) -> None:
        self.lost += lost.lines
        why = "while the servers' shared store (Redis) restarted" if lost.restarted else \
            "(the shared history no longer had them)"
        what = "line" if lost.lines == 1 else "lines"
        log.warning("%d %s of %s lost %s", lost.lines, what, room, why)
        target = self.hub.rooms.get(room)
        if target is not None:
            text = f"{lost.lines} {what} of {target.label} were lost {why}"
            self.hub.deliver_batch(target, [(0, Entry(room, 0, self.hub.clock(), "notice", "", None, text))])

    def _first_operator(self, room: Room, mid: int, local: bool) -> None:
        """The first member of an unowned room operates it (Hub.join), decided in Redis's order on every node:
        the join of *mid* came back; a local joiner its own node made operator that another node's member
        preceded loses it."""
        if local:
            self.joining.discard((room.name, mid))
        first = not room.rules.owner and room is not self.hub.default_room and not any(
            other != mid and (room.name, other) not in self.joining for other in room.members)
        if first and mid in room.members:
            room.ops.add(mid)
        elif local and mid in room.ops and not first:
            room.ops.discard(mid)
            log.info("%s: member %d joined after another server's member: not its operator", room.name, mid)

    def _deliver(self, name: str, events: list[tuple[int, bytes]]) -> None:
        try:
            room = self.hub.rooms.get(name) or self.hub.rooms.open(name)
        except Refused as exc:
            log.error("cannot hold room %s from another node: %s", name, exc)
            return
        history = self.history if self.hub.record else None
        pending: list[tuple[int, Event]] = []
        parted: list[tuple[Member, Event]] = []
        for entry_id, payload in events:
            try:
                carried = decode(payload, name, entry_id)
            except ValueError as exc:
                log.error("ignoring an event of %s: %s", name, exc)
                continue
            event = carried.event
            if carried.node != self.name and isinstance(event, Notice) and event.kind == "part" and \
                    event.cause == "quit":  # its node told the quit once (IRC's QUIT) to its own members: a part here
                event = event._replace(cause="")
            local = carried.node == self.name and carried.member in self.hub.members
            if carried.node != self.name and event.kind == "join" and carried.member:
                self.presence.batch_event(room, carried.node, carried.member, event)
            if event.kind == "join" and carried.member:
                self._first_operator(room, carried.member, carried.node == self.name)
            elif carried.node != self.name and event.kind == "part":
                target = self.hub.find(event.nick)
                if isinstance(target, RemoteMember):
                    self.presence.leave(target, room)
                elif target is not None:  # this node's member, taken out by another node (a kick)
                    parted.append((target, event))
            elif carried.node != self.name and event.kind == "mode":
                mode_here(self.hub, room, getattr(event, "extra", ""))
            if entry_id and history is not None and isinstance(event, Entry):  # stored lines are Entries
                history.put(event)
            if event.kind == "topic":  # (stored or not: --no-history shares topics too)
                room.topic, room.topic_by, room.topic_at = event.text, event.nick, event.ts
                if self.history is not None:
                    self.history.records.set_topic(name, event.text, event.nick, event.ts)
            pending.append((carried.member if local else 0, event))
        for member, gone in parted:  # out first: the batch is for those who stay; the member is told alone
            part_here(self.hub, member, room, gone)
        if pending:
            self.hub.deliver_batch(room, pending)
