"""Room rules across nodes: owner, operators, bans, topic lock and key are the same on every node.

A change made on a node (``/key``, ``/ban``, ``/op``... anything that saves a room's rules,
:meth:`chatroom.model.rooms.Rooms.save_rules`) is written to the room's meta hash in Redis (field
``rules``: the rules' JSON, :class:`~chatroom.model.moderation.RoomRules`) and published on the
``ctl`` channel, in one script (:data:`SHARE_LUA`); every other node replaces its copy and saves it in its
own data dir (so a node restarted without Redis still enforces them). A node (re)subscribing reads each
room's rules from the meta hash; a room it holds whose rules Redis lost (restarted empty) gets this node's copy
back (:data:`RESTORE_LUA`). The last change wins (changes are rare and made by people).

**Nothing is forgotten on the way** (docs/scale-out.md): a room's change stays in :attr:`SharedRules.unsent`
until Redis answered its script with a reply that is not an error. A connection lost first (``Unavailable``: it
may or may not have run) puts it back, and the room's *current* rules are sent again when the link is back
(:meth:`SharedRules.ready`); an error reply (``-OOM``, ``-READONLY``, ``-BUSY``...) or a full output queue on a
live link sends them again on a timer (:class:`~chatroom.scaleout.retry.RetryTimer`: 1 s, doubling to 30 s).
The same holds for a room's creation (:data:`CREATE_LUA`: asked again until answered; the room's changes wait for
that answer, so a node that created a room the chat already has never overwrites its rules) and for the reads of a
resync. Each failure is logged once, and its recovery once.

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
from chatroom.scaleout.link import Backpressure, Unavailable
from chatroom.scaleout.retry import LastCalls, RetryTimer

if TYPE_CHECKING:
    from chatroom.model.notice import Event
    from chatroom.model.hub import Hub
    from chatroom.model.member import Member
    from chatroom.model.room import Room
    from chatroom.net.scheduler import Timer
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

#: Rules of a room this node holds that Redis has none for (Redis restarted empty, or a room of this node's data dir
#: never shared): this node's copy (ARGV[1]) becomes the chat's, published on ctl (ARGV[2], ARGV[3]), unless another
#: node's came first. Returns {1} or {0, rules}, as :data:`CREATE_LUA`.
RESTORE_LUA = """
if redis.call('HSETNX', KEYS[1], 'rules', ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return {1}
end
return {0, redis.call('HGET', KEYS[1], 'rules')}
"""

#: A change of a room's rules made here: stored in its meta hash (KEYS[1], field ``rules``: ARGV[1]) and published
#: on ctl (ARGV[2], message ARGV[3]) in one step, so one reply tells that both ran (an error reply: neither did).
SHARE_LUA = """
redis.call('HSET', KEYS[1], 'rules', ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""


class SharedRules:
    """Keeps *hub*'s rooms' rules the same as every other node's, through *link* (commands), *keys*, and the
    ``ctl`` channel *ctl*; *name* is this node's. *call_later(delay, fn)* (default: the link's loop's) times the
    retries of what Redis refused or could not queue on a live link (:class:`~chatroom.scaleout.retry.RetryTimer`;
    a lost connection needs none: its reconnection calls :meth:`ready`)."""

    def __init__(self, hub: Hub, link: RedisLink, keys: Keys, name: str, ctl: str,
                 call_later: Callable[[float, Callable[[], None]], Timer] | None = None) -> None:
        self.hub = hub
        self.link = link
        self.keys = keys
        self.name = name
        self.ctl = ctl
        self.retries = RetryTimer(call_later if call_later is not None else link.loop.call_later, self._retry)
        #: Rooms whose rules changed here and Redis has not acknowledged (the change in flight or to send again).
        self.unsent: set[str] = set()
        #: Rooms created here (or restored: a room Redis has no rules for) whose creation Redis has not answered,
        #: with its script (:data:`CREATE_LUA`, :data:`RESTORE_LUA`); their changes wait for that answer.
        self.uncreated: dict[str, str] = {}
        #: Rooms whose resync read failed: read again (a timer on a live link; the node's resync after a reconnection).
        self.unread: set[str] = set()
        self.tell: Callable[[Member, str], None] = lambda member, line: None
        # A read of a room's rules (command connection) can be answered after a newer change reached this node
        # on ctl (the subscription): it must not undo it. Each ctl change of a room gets a number.
        self._heard = 0
        self._heard_in: dict[str, int] = {}
        self.calls = LastCalls(link, self._ok, self._failed)  # a room's shares and creations: its last one decides
        self._failing: dict[str, bool] = {}  # room -> its failure was logged (it is, once, until Redis takes it)
        self._closed = False
        hub.rooms.on_rules = self.changed
        hub.rooms.on_created = self.created

    def close(self) -> None:
        """Stop (the node closes): the retry timer is cancelled, late replies are ignored, the room model tells
        this object nothing more. Idempotent."""
        self._closed = True
        self.calls.close()
        self.retries.close()
        if self.hub.rooms.on_rules == self.changed:
            self.hub.rooms.on_rules = None
        if self.hub.rooms.on_created == self.created:
            self.hub.rooms.on_created = None

    # -- rooms created here ------------------------------------------------------------------------------
    def created(self, room: Room) -> None:
        """``Rooms.on_created``: this node created *room*. If the chat has it already (created on another node,
        or before this node ran), its rules are Redis's: they replace this node's (a creator's ownership
        included), and a member of this node they refuse is taken out again, told why; else this node's
        rules (its creator's ownership) are the room's everywhere. One atomic script: two nodes creating a
        room at once agree on one owner. Until Redis answered, the room's changes made here wait (:meth:`changed`);
        without an answer it is asked again (when the link is back, or on a timer after an error reply)."""
        self._create(room, CREATE_LUA)

    def _create(self, room: Room, script: str) -> None:
        self.uncreated[room.name] = script
        text = room.rules.to_json()
        self.calls.send(room.name, functools.partial(self._created, room.name, self._heard, text),
                   "EVAL", script, 1, self.keys.meta(room.name), text, self.ctl, self._message(room.name, text))

    def _created(self, name: str, asked: int, text: str, reply: Any) -> None:
        restored = self.uncreated.pop(name, None) == RESTORE_LUA
        room = self.hub.rooms.get(name)
        if room is None or not isinstance(reply, list):
            self.unsent.discard(name)
            return
        if reply[0] == 1:  # the chat's first: *text* is the room's (the script published it); then what changed since
            if name in self.unsent and room.rules.to_json() != text:
                self._share(room)
            else:
                self.unsent.discard(name)
            return
        heard = self._heard_in.get(name, 0) > asked  # a change heard on ctl since: newer than the reply (applied)
        if name in self.unsent and (heard or restored):  # a change made here on the chat's rules (heard, or those
            self._share(room)  # of a room this node held): the newest
            return
        if heard:
            return
        dropped = name in self.unsent
        if dropped:
            self.unsent.discard(name)
            log.warning("%s: the rules changed here before the other servers said they have this room were "
                        "dropped: its rules are theirs", name)
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
            elif dropped:  # whoever changed them here was told OK: say they were not kept
                self.tell(member, f"* {name}: the other servers had this room already and its rules are theirs: "
                                  "changes made here before they answered were not kept")

    # -- changes made here -----------------------------------------------------------------------------
    def changed(self, room: Room) -> None:
        """``Rooms.on_rules``: *room*'s rules changed here: to Redis and the other nodes (after its creation's
        answer when that is awaited); kept in :attr:`unsent` until Redis took them."""
        self.unsent.add(room.name)
        if room.name not in self.uncreated:
            self._share(room)

    def _share(self, room: Room) -> None:
        self._newer(room.name)
        text = room.rules.to_json()
        self.calls.send(room.name, functools.partial(self._stored, room.name),
                   "EVAL", SHARE_LUA, 1, self.keys.meta(room.name), text, self.ctl, self._message(room.name, text))

    def _stored(self, name: str, reply: Any) -> None:
        self.unsent.discard(name)

    # -- what Redis has not taken yet ------------------------------------------------------------------
    def ready(self) -> None:
        """The command connection is (re)connected: what Redis has not acknowledged goes again (each room's
        creation if unanswered, else its current rules). The reads are the node's resync, which follows."""
        self.retries.reset()
        self._again(reads=False)

    def _again(self, reads: bool) -> None:
        for name in sorted(self.uncreated.keys() | self.unsent | (self.unread if reads else set())):
            room = self.hub.rooms.get(name)
            if room is None:  # let go meanwhile: nothing to share
                self.uncreated.pop(name, None)
                self.unsent.discard(name)
                self.unread.discard(name)
                self._failing.pop(name, None)
            elif name in self.calls:  # in flight: its reply decides
                continue
            elif name in self.uncreated:
                self._create(room, self.uncreated[name])
            elif name in self.unsent:
                self._share(room)
            elif reads and name in self.unread:
                self._read(name)

    def _failed(self, name: str, exc: Exception) -> None:
        """Redis did not take the room *name*'s call: logged once (a lost connection's reads not at all: the
        node reads every room again), tried again (:meth:`ready`, or the timer on a live link)."""
        quiet = isinstance(exc, Unavailable) and not isinstance(exc, Backpressure) and \
            name not in self.unsent and name not in self.uncreated
        if not quiet and not self._failing.get(name):
            if name in self.uncreated:
                what = "whether the other servers have this room is not known yet"
            elif name in self.unsent:
                what = "its rules could not be shared yet"
            else:
                what = "its rules could not be read from Redis"
            log.error("%s: %s (%s): Redis is asked again %s", name, what, exc,
                      "when it is back" if type(exc) is Unavailable else "shortly")
        self._failing[name] = self._failing.get(name, False) or not quiet
        self.retries.schedule()

    def _retry(self) -> None:
        if self.link.ready:  # (else its reconnection calls ready())
            self._again(reads=True)

    def _ok(self, name: str) -> None:
        if self._failing.pop(name, False):
            log.info("%s: Redis answered about its rules again", name)
        if not self._failing:
            self.retries.reset()

    # -- the other nodes' changes ----------------------------------------------------------------------
    def _message(self, name: str, text: str) -> str:
        return json.dumps({"k": "rules", "node": self.name, "room": name, "rules": text})

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
        """A ``rules`` message on ``ctl`` (:meth:`_message`'s JSON, decoded: ``{"k": "rules", "node", "room",
        "rules"}``): another node's change replaces this node's copy; this node's own, heard back, only marks
        reads asked before it as stale. Raises ``KeyError`` for a message without ``room`` (the node's ctl
        dispatcher logs it)."""
        self._newer(str(message["room"]))
        if message.get("node") != self.name:
            self.apply(str(message["room"]), str(message["rules"]))

    def resync(self, names: list[str]) -> None:
        """Read the rules of the rooms *names* from Redis (after a (re)subscription; the link down: once it is
        back, by the node's resync then)."""
        for name in names:
            if name not in self.unsent and name not in self.uncreated:  # (those are this node's to tell Redis)
                if not self.link.ready:
                    self.unread.add(name)
                else:
                    self._read(name)

    def _read(self, name: str) -> None:
        self.unread.discard(name)
        try:
            self.link.call("HGET", self.keys.meta(name), "rules",
                           on_reply=functools.partial(self._got, name, self._heard))
        except Unavailable as exc:
            self.unread.add(name)
            self._failed(name, exc)

    def _got(self, name: str, asked: int, reply: Any) -> None:
        if self._closed:
            return
        if isinstance(reply, Exception):
            if name not in self.unsent and name not in self.uncreated:
                self.unread.add(name)
                self._failed(name, reply)
            return
        if name in self.unsent or name in self.uncreated:
            return  # (this node's to tell Redis)
        self._ok(name)
        if self._heard_in.get(name, 0) > asked:
            return  # a change heard since is newer than the reply
        if isinstance(reply, bytes):
            self.apply(name, reply.decode())
        elif reply is None and (room := self.hub.rooms.get(name)) is not None:  # Redis lost them: this node's
            self._create(room, RESTORE_LUA)


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
