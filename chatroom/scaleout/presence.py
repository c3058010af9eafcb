"""Who is where on the other nodes, nick claims, and nodes that die (docs/scale-out.md, "Presence").

Every node mirrors the other nodes' members as :class:`RemoteMember` objects in its own room model (in
``hub.members``, ``hub.nicks`` and each room's ``members``), so ``/who``, NAMES, member counts, nick
uniqueness and ``/msg`` work unchanged on every door. A remote member's wire encodes room lines as
nothing (its own node delivers them) and a private line as the event itself, which
:meth:`RemoteMember.deliver` hands to :class:`~chatroom.scaleout.direct.DirectLines` for its node's channel, as
it does any line sent to it directly.

Redis keeps (under the prefix): ``presence`` (hash ``node/id`` -> JSON nick, account, rooms, away message), ``nicks``
and ``skeletons`` (hashes: nick key or look-alike skeleton -> ``node/id``, the claims), ``nodes`` (set)
and ``alive:NODE`` (a key with a :data:`TTL`, refreshed every :data:`BEAT` s). Joins and parts travel
in the rooms' batches (ordered with the lines); renames, logins, departures and dead nodes on the ``ctl``
channel. A node whose ``alive`` key expired (SIGKILLed, cut off) is reaped by whichever node runs
``reap.lua`` first: its presence and claims go, and every node announces its members as leaving
(``left ROOM (server lost)``), within :data:`TTL` + :data:`BEAT` seconds.

A rename is checked locally (the mirrors hold every known nick), then claimed in Redis by ``claim.lua``;
when another node claimed the nick in the same instant, the loser gets its guest nick back and is told.
Loop thread only.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from chatroom.model.errors import Refused
from chatroom.model.member import Member
from chatroom.model.names import nick_key, nick_skeleton_key
from chatroom.model.notice import Event, Notice
from chatroom.scaleout.direct import DirectLines
from chatroom.scaleout.link import Unavailable
from chatroom.scaleout.remote import RemoteMember

if TYPE_CHECKING:
    from chatroom.model.history import Entry
    from chatroom.model.hub import Hub
    from chatroom.model.room import Room
    from chatroom.scaleout.bus import Keys
    from chatroom.scaleout.link import RedisLink

__all__ = ["BEAT", "TTL", "Presence", "RemoteMember"]  # (RemoteMember: chatroom.scaleout.remote)

log = logging.getLogger("chatroom.server")

#: Seconds between heartbeats (and reaper runs); seconds a node's ``alive`` key lives without one.
BEAT = 1.0
TTL = 3.0
CLAIM_LUA = files("chatroom.scaleout").joinpath("claim.lua").read_text(encoding="utf-8")
REAP_LUA = files("chatroom.scaleout").joinpath("reap.lua").read_text(encoding="utf-8")


class Presence:
    """The mirror and the claims of one node (*name*), on *link*, with *keys*' prefix, for *hub*.
    ``tell(member, line)`` sends a local member a line. Call :meth:`ready` when the link is (re)connected and
    :meth:`on_control` with the ``ctl`` channel's messages; ``lines`` (:class:`~chatroom.scaleout.direct.DirectLines`)
    carries what is sent to the mirrors to their nodes, and takes the node's own channel's messages."""

    def __init__(self, hub: Hub, link: RedisLink, keys: Keys, name: str, *, tell: Callable[[Member, str], None],
                 call_later: Callable[..., Any]) -> None:
        self.hub = hub
        self.link = link
        self.name = name
        self.tell = tell
        self.call_later = call_later
        prefix = keys.prefix
        self.key = {k: f"{prefix}:{k}" for k in ("presence", "nicks", "skeletons", "nodes", "ctl")}
        self.alive = f"{prefix}:alive:"
        self.lines = DirectLines(hub, link, keys, tell=tell)  # what is sent to the mirrors goes to their nodes
        self.mirrors: dict[tuple[str, int], RemoteMember] = {}
        self.boot = os.urandom(6).hex()  # this process's life: a node started again under its name has another
        self.boots: dict[str, str] = {}  # node -> the boot id last heard from it
        self.lost: dict[str, str] = {}  # node taken for dead -> its boot then ("": unknown): back, its members join
        self.reaped = 0  # nodes this node reaped
        self.listed = False  # in the nodes set since this link came up (a reaper's removal is noticed by a beat)
        # A snapshot (HGETALL, on the command connection) can be read before an event that reaches this node
        # first (on the subscription): it must not undo that event. Each change to a mirror gets a number;
        # a snapshot leaves alone the mirrors changed after it was asked for.
        self._changes = 0
        self._changed: dict[tuple[str, int], int] = {}
        self._snapshots = 0  # asked for, not answered yet
        hub.observer = self.observe
        self._timer = call_later(BEAT, self._beat)

    def close(self) -> None:
        self._timer.cancel()
        if self.hub.observer == self.observe:
            self.hub.observer = None

    # -- this node's members ----------------------------------------------------------------------
    def me(self, member: Member) -> str:
        return f"{self.name}/{member.id}"

    def _send(self, *args: Any, on_reply: Callable[[Any], None] | None = None) -> None:
        try:
            self.link.call(*args, on_reply=on_reply)
        except Unavailable:
            pass  # re-registered whole when the link is back (ready)

    def record(self, member: Member) -> None:
        """Write a local member's presence (nick, account, rooms) to Redis."""
        value = json.dumps([member.nick, member.account, list(member.rooms), member.away])
        self._send("HSET", self.key["presence"], self.me(member), value)

    def observe(self, kind: str, member: Member, detail: str) -> None:
        """``hub.observer``: a local member was added, removed, renamed, went away or logged in."""
        if isinstance(member, RemoteMember):
            return
        if kind == "add":
            self.record(member)
        elif kind == "remove":
            self._send("HDEL", self.key["presence"], self.me(member))
            self._claim(member, "", detail_old=member.nick)
            self._ctl({"k": "gone", "id": member.id})
        elif kind == "nick":
            self.record(member)
            self._ctl({"k": "nick", "id": member.id, "nick": member.nick, "account": member.account})
            new = "" if member.nick.lower() == f"guest{member.id}" else member.nick
            self._claim(member, new, detail_old=detail)
        elif kind == "away":
            self.record(member)
            self._ctl({"k": "away", "id": member.id, "away": member.away})
        elif kind == "account":  # logged in under the nick it had: no rename carries the account
            self.record(member)
            self._ctl({"k": "login", "id": member.id, "account": member.account})  # ("account": SharedAccounts')

    def _claim(self, member: Member, nick: str, *, detail_old: str) -> None:
        old = "" if detail_old.lower() == f"guest{member.id}" else detail_old
        args = [self.me(member), nick_key(nick) if nick else "", nick_skeleton_key(nick) if nick else "",
                nick_key(old) if old else "", nick_skeleton_key(old) if old else ""]
        asked = self._changes
        self._send("EVAL", CLAIM_LUA, 2, self.key["nicks"], self.key["skeletons"], *args,
                   on_reply=lambda reply: self._claimed(member, nick, reply, asked))

    def _claimed(self, member: Member, nick: str, reply: Any, asked: int) -> None:
        """A claim's answer (asked for at change number *asked*): a member whose nick (or a look-alike) another
        node's member holds in Redis gets its guest nick back, and a nick taken is that member's here too. The
        winner published its rename before its claim, but on the subscription: when its mirror has not changed
        since this claim was sent, the rename is still on its way (and changes nothing when it comes); a mirror
        changed since may be newer than this answer, and is left as it is."""
        if not isinstance(reply, list) or reply[0] == b"ok" or member.gone or member.nick != nick:
            return
        holder = reply[1].decode()
        log.info("%s lost the nick %s to %s (claimed on another node at the same moment)", self.me(member), nick,
                 holder)
        self.hub.renamed(member, f"guest{member.id}")
        node, _, mid = holder.partition("/")
        winner = self.mirrors.get((node, int(mid))) if mid.isdigit() else None
        if reply[0] == b"taken" and winner is not None and winner.nick != nick and winner.changed_at <= asked:
            self.mirror(node, winner.id, nick, winner.account)
        for remote in self.mirrors.values():  # the winner, if this node knows it already, holds the nick here
            if remote.nick == nick:
                self.hub.nicks.claim(remote)
        self.tell(member, f"ERROR the nick {nick} was taken on another server at the same moment: you are "
                          f"{member.nick} again (/nick NAME)")

    def _ctl(self, message: dict[str, Any]) -> None:
        message["node"] = self.name
        self._send("PUBLISH", self.key["ctl"], json.dumps(message))

    def joined_or_left(self, pending: list[tuple[int, Event]]) -> None:
        """A pass about to be published: record the rooms of its local members that joined or left."""
        for sender, event in pending:
            if event.kind in ("join", "part"):
                member = self.hub.find(event.nick)
                if member is not None and not isinstance(member, RemoteMember) and not member.gone:
                    self.record(member)

    # -- (re)connected --------------------------------------------------------------------------------
    def ready(self) -> None:
        """The link is (re)connected: clear what this node's name left before, register again (Redis may have
        restarted empty), then take the others' presence."""
        self._send("EVAL", REAP_LUA, 4, self.key["nodes"], self.key["presence"], self.key["nicks"],
                   self.key["skeletons"], self.alive, self.name)
        self.listed = False  # (the SADD below adds it)
        self._register()
        self.resnapshot()

    def _register(self) -> None:
        """Heartbeat, every local member's presence and nick claim, then ``hello`` (the others read them)."""
        self._heartbeat()
        for member in list(self.hub.members.values()):
            if not isinstance(member, RemoteMember):
                self.record(member)
                if member.nick.lower() != f"guest{member.id}":
                    self._claim(member, member.nick, detail_old=member.nick)
        self._ctl({"k": "hello", "boot": self.boot})  # after the records: a node reading them on hello has them

    def resnapshot(self, only: str = "", gone: str = "", back: bool = False) -> None:
        """Read the whole presence hash again (after this node's subscription came back: it may have missed
        renames, departures and other nodes' hellos meanwhile; *only*: for that node's members, whose rooms here
        hear that those no longer in it left, for the reason *gone*, if given; *back*: that those new here joined,
        after they were told it left for dead)."""
        asked = self._changes
        try:
            self.link.call("HGETALL", self.key["presence"],
                           on_reply=lambda reply: self._snapshot(reply, asked, only, gone, back))
        except Unavailable:
            return  # read again when the link is back (ready)
        self._snapshots += 1

    def _snapshot(self, reply: Any, asked: int, only: str = "", gone: str = "", back: bool = False) -> None:
        """The presence hash read whole (asked for at change number *asked*): mirror every other node's members
        (*only*: that node's), drop the mirrors it no longer holds (a Redis restarted empty: until their node
        registers them again; with *gone*, announced as leaving for that reason); a mirror changed since *asked*
        is left as the later event made it."""
        self._snapshots -= 1
        if isinstance(reply, list):
            seen = set()
            for field, value in zip(reply[::2], reply[1::2]):
                node, _, mid = field.decode().partition("/")
                key = (node, int(mid))
                seen.add(key)
                if node == self.name or only and node != only or self._changed.get(key, 0) > asked:
                    continue
                nick, account, rooms, *away = json.loads(value)
                new = key not in self.mirrors
                remote = self.mirror(node, int(mid), nick, account, rooms)
                self._away(remote, away[0] if away else "")
                if back and new:
                    for room in remote.rooms.values():
                        self._announce(room, remote, "join", f"{remote.nick} joined {room.label}")
            for key in [k for k in self.mirrors if k not in seen and (not only or k[0] == only)
                        and self._changed.get(k, 0) <= asked]:
                self.drop(self.mirrors[key], gone or "gone", announce=bool(gone))
        if not self._snapshots:
            self._changed.clear()

    def _change(self, remote: RemoteMember) -> None:
        self._changes += 1
        remote.changed_at = self._changes
        if self._snapshots:
            self._changed[(remote.node, remote.id)] = self._changes

    # -- the mirror -------------------------------------------------------------------------------------
    def mirror(self, node: str, mid: int, nick: str, account: str | None, rooms: list[str] | None = None) -> RemoteMember:
        """The mirror of *node*'s member *mid*, made if new; its nick set; with *rooms*, in exactly those."""
        remote = self.mirrors.get((node, mid))
        if remote is None:
            remote = self.mirrors[(node, mid)] = RemoteMember(mid, nick, node, self.lines)
            self._change(remote)
            remote.account = account
            self.hub.members[mid] = remote
            self.hub.nicks.by_key[nick_key(nick)] = remote
            self.hub.nicks.by_skeleton.setdefault(nick_skeleton_key(nick), remote)
        elif remote.nick == nick and remote.account != account:  # logged in without a rename
            self._change(remote)
            remote.account = account
        elif remote.nick != nick:
            self._change(remote)
            remote.account = account
            key, skeleton = nick_key(nick), nick_skeleton_key(nick)
            local = self.hub.nicks.by_key.get(key), self.hub.nicks.by_skeleton.get(skeleton)
            self.hub.renamed(remote, nick)
            if local[0] is not None and not isinstance(local[0], RemoteMember):  # the claim decides between them
                self.hub.nicks.by_key[key] = local[0]
            if local[1] is not None and not isinstance(local[1], RemoteMember):
                self.hub.nicks.by_skeleton[skeleton] = local[1]
        if rooms is not None:
            for name in [r for r in remote.rooms if r not in rooms]:
                self.leave(remote, remote.rooms[name])
            for name in rooms:  # a room this node does not hold yet is held from now on (with its rules)
                room = self.hub.rooms.get(name) or self._open(name)
                if room is not None and name not in remote.rooms:
                    self.enter(remote, room)
        return remote

    def _open(self, name: str) -> Room | None:
        try:
            return self.hub.rooms.open(name)
        except Refused as exc:
            log.error("cannot hold room %s of another node's member: %s", name, exc)
            return None

    def enter(self, remote: RemoteMember, room: Room) -> None:
        self._change(remote)
        room.members[remote.id] = remote
        remote.rooms[room.name] = room
        remote.room = room
        self.hub.rooms.occupied(room)

    def leave(self, remote: RemoteMember, room: Room) -> None:
        self._change(remote)
        room.members.pop(remote.id, None)
        room.ops.discard(remote.id)
        room.voices.discard(remote.id)
        remote.rooms.pop(room.name, None)
        if not room.members:
            self.hub.rooms.vacated(room)

    def batch_event(self, room: Room, node: str, mid: int, event: Event) -> None:
        """A join or part of another node's member, in *room*'s batch: the mirror follows (before delivery)."""
        if event.kind == "join":  # (a known mirror keeps its nick: a rename or a snapshot may be newer than this)
            self.enter(self.mirrors.get((node, mid)) or self.mirror(node, mid, event.nick, event.account), room)
        elif event.kind == "part":
            gone = self.mirrors.get((node, mid))
            if gone is not None:
                self.leave(gone, room)

    def drop(self, remote: RemoteMember, reason: str, announce: bool = False) -> None:
        """Forget a mirrored member; with *announce*, its rooms here hear that it left (*reason*)."""
        self.mirrors.pop((remote.node, remote.id), None)
        self._change(remote)
        remote.gone = True
        for room in list(remote.rooms.values()):
            self.leave(remote, room)
            if announce:
                self._announce(room, remote, "part", f"{remote.nick} left {room.label} ({reason})", reason)
        if self.hub.members.get(remote.id) is remote:
            del self.hub.members[remote.id]
        self.hub.nicks.release(remote)

    def _announce(self, room: Room, remote: RemoteMember, kind: str, text: str, reason: str = "") -> None:
        """Tell *room*'s members here that *remote* joined or left it (*kind*), as its node would have."""
        notice = Notice(room.name, 0, self.hub.clock(), kind, remote.nick, remote.account, text, reason)
        self.hub.deliver_batch(room, [(0, notice)])

    # -- messages -----------------------------------------------------------------------------------------
    def on_control(self, data: bytes) -> None:
        """A ``ctl`` message: another node's member renamed, away, logged in or gone, a node dead."""
        message = json.loads(data)
        node = message.get("node")
        if node == self.name:
            return
        if message["k"] == "hello":  # a node (re)connected: if it started again, its old members are gone
            if self.boots.get(node, message["boot"]) != message["boot"]:
                for old in [m for (n, _), m in self.mirrors.items() if n == node]:
                    self.drop(old, "server restarted", announce=True)
            # It registered its members before its hello: those of its mirrors here not in the hash now are gone
            # (quit while this node could not hear it, or, of a life this node never heard a hello from, cleared by
            # its restart: reap.lua). The same life back after it was taken for dead (stalled past the TTL): its
            # members join again.
            back = self.lost.pop(node, None) in ("", message["boot"])  # ("": a life never heard: it has none yet)
            self.boots[node] = message["boot"]
            self.resnapshot(node, "quit", back)
        elif message["k"] == "nick":
            self.mirror(node, message["id"], message["nick"], message.get("account"))
        elif message["k"] == "away":
            remote = self.mirrors.get((node, message["id"]))
            if remote is not None:
                self._away(remote, str(message["away"]))
        elif message["k"] == "login":
            remote = self.mirrors.get((node, message["id"]))
            if remote is not None:
                self._change(remote)
                remote.account = message.get("account")
        elif message["k"] == "gone":
            gone = self.mirrors.get((node, message["id"]))
            if gone is not None:
                self.drop(gone, "quit")
        elif message["k"] == "dead" and message["dead"] != self.name:  # (this node's next beat finds it out)
            dead = [m for (n, _), m in self.mirrors.items() if n == message["dead"]]
            self.lost[message["dead"]] = self.boots.get(message["dead"], "")
            log.warning("node %s is gone (no heartbeat for %g s): %d of its members leave", message["dead"], TTL,
                        len(dead))
            for remote in dead:
                self.drop(remote, "server lost", announce=True)

    def _away(self, remote: RemoteMember, message: str) -> None:
        if remote.away != message:  # told here as its node told it (IRC away-notify)
            self.hub.set_away(remote, message)

    # -- heartbeat and reaper -----------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        self._send("SET", self.alive + self.name, "1", "PX", int(TTL * 1000))
        self._send("SADD", self.key["nodes"], self.name, on_reply=self._listed)

    def _listed(self, reply: Any) -> None:
        """SADD's answer: 1 when this node was not in the set: the first time, or a reaper took it for dead."""
        if reply == 1 and self.listed:
            log.warning("this node was taken for dead (no heartbeat for %g s): its members are registered again",
                        TTL)
            self._register()
        self.listed = isinstance(reply, int)

    def _beat(self) -> None:
        self._timer = self.call_later(BEAT, self._beat)
        if not self.link.ready:
            return
        self._heartbeat()
        self._send("EVAL", REAP_LUA, 4, self.key["nodes"], self.key["presence"], self.key["nicks"],
                   self.key["skeletons"], self.alive, "", on_reply=self._reaped)

    def _reaped(self, reply: Any) -> None:
        if isinstance(reply, list):
            for node in reply:
                self.reaped += 1
                self._ctl({"k": "dead", "dead": node.decode()})
                self.on_control(json.dumps({"k": "dead", "dead": node.decode(), "node": ""}).encode())
