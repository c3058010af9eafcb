"""Room rules across nodes: owner, operators, bans, topic lock and key are the same on every node.

A change made on a node (``/key``, ``/ban``, ``/op``... anything that saves a room's rules,
:meth:`chatroom.model.rooms.Rooms.save_rules`) is written to the room's meta hash in Redis (field
``rules``: the rules' JSON, :class:`~chatroom.model.moderation.RoomRules`) and published on the
``ctl`` channel; every other node replaces its copy and saves it in its own data dir (so a node
restarted without Redis still enforces them). A node (re)subscribing reads each room's rules from the
meta hash. The last change wins (changes are rare and made by people).

Who operates a room or has a voice in it *without an account* (``room.ops``, ``room.voices``: member ids,
unique across nodes) follows the rooms' ``mode`` notices, in the order of the room's lines
(:func:`mode_here`), and the first member of an unowned room operates it on every node
(:meth:`chatroom.scaleout.presence.Presence.batch_event`).

A member removed from a room by another node (a kick, or a ban that parts it) arrives as that room's
``part`` notice: the member's own node takes it out of the room too (:meth:`Node._deliver` calls
:func:`part_here`), without announcing it twice. Loop thread only.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chatroom.model import access
from chatroom.model.errors import Refused
from chatroom.model.moderation import RoomRules
from chatroom.scaleout.link import Unavailable

if TYPE_CHECKING:
    from chatroom.model.notice import Event
    from chatroom.model.hub import Hub
    from chatroom.model.member import Member
    from chatroom.model.room import Room
    from chatroom.scaleout.bus import Keys
    from chatroom.scaleout.link import RedisLink

__all__ = ["SharedRules", "mode_here", "part_here"]

log = logging.getLogger("chatroom.server")

#: Rules of a room a node just created: the room's if Redis knows no such room (KEYS[1] its meta hash, absent
#: until a node created or spoke in it), else Redis's rules for it ("" for the defaults). Returns {1} or {0, rules};
#: a new room's rules are published on ctl (ARGV[2], message ARGV[3]) in the same step, before any later change.
CREATE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('HGET', KEYS[1], 'rules') or ''}
end
redis.call('HSET', KEYS[1], 'rules', ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return {1}
"""


class SharedRules:
    """Keeps *hub*'s rooms' rules the same as every other node's, through *link* (commands), *keys*, and the
    ``ctl`` channel *ctl*; *name* is this node's."""

    def __init__(self, hub: Hub, link: RedisLink, keys: Keys, name: str, ctl: str) -> None:
        self.hub = hub
        self.link = link
        self.keys = keys
        self.name = name
        self.ctl = ctl
        self.unsent: set[str] = set()  # rooms whose rules changed here while Redis was unreachable
        self.tell: Callable[[Member, str], None] = lambda member, line: None
        # A read of a room's rules (command connection) can be answered after a newer change reached this node
        # on ctl (the subscription): it must not undo it. Each ctl change of a room gets a number.
        self._heard = 0
        self._heard_in: dict[str, int] = {}
        hub.rooms.on_rules = self.changed
        hub.rooms.on_created = self.created

    def close(self) -> None:
        if self.hub.rooms.on_rules == self.changed:
            self.hub.rooms.on_rules = None
        if self.hub.rooms.on_created == self.created:
            self.hub.rooms.on_created = None

    def created(self, room: Room) -> None:
        """``Rooms.on_created``: this node created *room*. If the chat has it already (created on another node,
        or before this node ran), its rules are Redis's: they replace this node's (a creator's ownership
        included), and a member of this node they refuse is taken out again, told why; else this node's
        rules (its creator's ownership) are the room's everywhere. One atomic script: two nodes creating a
        room at once agree on one owner."""
        text = room.rules.to_json()
        try:
            self.link.call("EVAL", CREATE_LUA, 1, self.keys.meta(room.name), text, self.ctl,
                           self._message(room.name, text),
                           on_reply=functools.partial(self._created, room.name, text, self._heard))
        except Unavailable:
            pass  # its rules are read from Redis when the link is back (resync of the rooms held)

    def _created(self, name: str, text: str, asked: int, reply: Any) -> None:
        if not isinstance(reply, list):
            return
        if reply[0] == 1:  # the chat's first: these rules are the room's (the script published them)
            return
        room = self.hub.rooms.get(name)
        if room is None or self._heard_in.get(name, 0) > asked:  # (a change heard since is newer than the reply)
            return
        self.apply(name, reply[1].decode() if reply[1] else RoomRules().to_json())
        local = [m for m in room.members.values() if "remote" not in m.caps]
        if room.rules.owner:  # an owned room: its first member here does not operate it (Hub.join's rule)
            room.ops.difference_update(m.id for m in local)
        for member in local:  # as if it were joining now, giving no key (this node ignored one it gave)
            refusal = access.join_refusal(self.hub.rooms.viewer(member)._replace(member=None), room, None)
            if refusal is not None:
                log.info("%s: %s joined on this node before its rules came from Redis: out again (%s)", name,
                         member.nick, refusal)
                self.hub.part(member, room, "its rules came from the other servers")
                self.tell(member, f"ERROR {refusal}")

    def changed(self, room: Room) -> None:
        """``Rooms.on_rules``: *room*'s rules changed here: to Redis and the other nodes."""
        self._newer(room.name)
        text = room.rules.to_json()
        try:
            self.link.call("HSET", self.keys.meta(room.name), "rules", text)
            self._publish(room.name, text)
            self.unsent.discard(room.name)
        except Unavailable as exc:
            self.unsent.add(room.name)
            log.error("the rules of %s could not be shared yet (%s): they are when Redis is back", room.name, exc)

    def ready(self) -> None:
        """The command connection is (re)connected: share the rules changed here while it was down."""
        for name in sorted(self.unsent):
            room = self.hub.rooms.get(name)
            if room is None:
                self.unsent.discard(name)
            else:
                self.changed(room)

    def _message(self, name: str, text: str) -> str:
        return json.dumps({"k": "rules", "node": self.name, "room": name, "rules": text})

    def _publish(self, name: str, text: str) -> None:
        self.link.call("PUBLISH", self.ctl, self._message(name, text))

    def apply(self, name: str, text: str) -> None:
        """Rules of room *name* from another node (or Redis): replace this node's copy, save it here."""
        try:
            room = self.hub.rooms.get(name) or self.hub.rooms.open(name)
        except Refused as exc:
            log.error("cannot hold room %s from another node: %s", name, exc)
            return
        if room.rules.to_json() != text:
            room.rules = RoomRules.from_json(text)
            self.hub.rooms.save_rules(room, share=False)

    def _newer(self, name: str) -> None:
        """A change of *name*'s rules made here or heard on ctl: reads asked for before it are stale."""
        self._heard += 1
        self._heard_in[name] = self._heard

    def on_control(self, message: dict[str, Any]) -> None:
        self._newer(str(message["room"]))
        if message.get("node") != self.name:
            self.apply(str(message["room"]), str(message["rules"]))

    def resync(self, names: list[str]) -> None:
        """Read the rules of the rooms *names* from Redis (after a (re)subscription)."""
        for name in [n for n in names if n not in self.unsent]:  # (those are this node's to share)
            try:
                self.link.call("HGET", self.keys.meta(name), "rules",
                               on_reply=functools.partial(self._got, name, self._heard))
            except Unavailable:
                return

    def _got(self, name: str, asked: int, reply: Any) -> None:
        if isinstance(reply, bytes) and self._heard_in.get(name, 0) <= asked:
            self.apply(name, reply.decode())


def part_here(hub: Hub, member: Member, room: Room, event: Event) -> None:
    """Another node took this node's *member* out of *room* (*event*: its part notice, which the room's other
    members get from the batch): do it here too; the member is told (a kick, in its wire's words), the room not
    a second time."""
    if room.members.get(member.id) is not member:
        return
    hub.part(member, room, notice=event.text, by=getattr(event, "by", "") or "someone")
    pending = room.pending
    if pending and pending[-1][1].kind == "part" and pending[-1][1].nick == member.nick:
        pending.pop()  # the notice went out from the node that did it


#: Mode letters whose change carries a parameter in a ``mode`` notice's ``extra`` (``"+ov-k bob ann *"``); ``l``
#: only when set (chatroom.net.ircmodes writes them so).
_WITH_PARAM = frozenset("ovbk")


def mode_here(hub: Hub, room: Room, change: str) -> None:
    """Another node changed *room*'s modes (*change*: a ``mode`` notice's ``extra``, ``"+v bob"``): the operators
    and voices held by member id (guests: an account's operator status is in the shared rules) change here too."""
    letters, *params = change.split()
    sign = "+"
    for letter in letters:
        if letter in "+-":
            sign = letter
            continue
        param = params.pop(0) if (letter in _WITH_PARAM or letter == "l" and sign == "+") and params else ""
        if letter not in "ov" or not param:
            continue
        member = hub.find(param)
        if member is None or room.members.get(member.id) is not member:
            continue
        held = room.ops if letter == "o" else room.voices
        if sign == "+":
            if letter == "v" or not member.account:
                held.add(member.id)
        else:
            held.discard(member.id)
