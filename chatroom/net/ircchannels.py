"""IRC channels are chatroom's rooms: JOIN, PART, TOPIC, NAMES, LIST, KICK, MODE, INVITE, WHO (and WHOX), WHOIS.

Every change goes through the room model (:class:`~chatroom.model.hub.Hub`) and its rules
(:class:`~chatroom.model.moderation.RoomRules`), so members of every door see it. Channel modes map to
room rules: ``+o`` operators (an account: persisted with the room; a guest: while it stays), ``+b`` bans
(see :mod:`chatroom.net.ircmodes`), ``+k`` the key, ``+l`` the member limit, ``+i`` invite-only, ``+s``
secret, ``+t`` the topic lock, ``+n`` always on (a room hears only its members). Any other mode is refused
with ``472``. LIST shows the rooms that have members (an IRC channel exists while occupied; ``/rooms`` of the
line protocol lists the empty ones too). Loop thread only.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from chatroom.model.member import Member
from chatroom.model.room import Room
from chatroom.model.access import listed_to, may_read
from chatroom.model.errors import JoinRefused, Refused
from chatroom.model.names import room_key
from chatroom.net.irc import IrcConnection, IrcDoor, irc_host
from chatroom.net.ircmodes import change_modes
from chatroom.net.ircregister import KICKLEN, MAX_KICKS, TOPICLEN
from chatroom.wire.irc import Message, casefold, clean

__all__ = ["install"]


def _room(door: IrcDoor, conn: IrcConnection, name: str, *, member: bool = True) -> Room | None:
    """The room *name*, or None after ``403`` (no such channel) or, with *member*, ``442`` (not on it)."""
    room = door.hub.room(name)
    if room is None:
        door.numeric(conn, "403", name, "No such channel")
        return None
    if member and room.name not in conn.rooms:
        door.numeric(conn, "442", room.name, "You're not on that channel")
        return None
    return room


def _prefix(door: IrcDoor, conn: IrcConnection, member: Member, room: Room) -> str:
    """``@`` for an operator, ``+`` for a voiced member (both with ``multi-prefix``)."""
    marks = ("@" if door.is_op(member, room) else "") + ("+" if member.id in room.voices else "")
    return marks if "multi-prefix" in conn.irccaps else marks[:1]


def _nick_item(door: IrcDoor, conn: IrcConnection, member: Member, room: Room) -> str:
    name = door.mask_of(member.nick) if "userhost-in-names" in conn.irccaps else member.nick
    return _prefix(door, conn, member, room) + name


#: RoomRules.refusal's reasons -> the numeric and the mode that refuses.
_REFUSED = {"banned": ("474", "b"), "invite": ("473", "i"), "key": ("475", "k"), "full": ("471", "l")}


# -- JOIN and PART ----------------------------------------------------------------------------------------
def join(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``JOIN #a,#b [key,key]``; ``JOIN 0`` leaves every channel. Every channel named is joined or refused with a
    numeric, however many (ISUPPORT ``TARGMAX=JOIN:``: no limit but the 512-byte line; each costs the flood
    bucket 2), as a client's autojoin list of a dozen channels is sent in one line."""
    if msg.params[0] == "0":
        for room in list(conn.rooms.values()):
            door.hub.part(conn, room)  # PART: IrcConnection.left
        return 2.0
    names = msg.params[0].split(",")
    keys = msg.params[1].split(",") if len(msg.params) > 1 else []
    for i, name in enumerate(names):
        join_one(door, conn, name, keys[i] if i < len(keys) else None)
    return 2.0 * len(names)


def join_one(door: IrcDoor, conn: IrcConnection, name: str, key: str | None) -> None:
    """Join one room under the room's rules (bans 474, key 475), then JOIN, topic and NAMES."""
    room = door.hub.room(name)
    if room is not None and room.name in conn.rooms:
        return
    try:
        room, _ = door.hub.enter(conn, name, key)  # the model's join rule, as /join's (uses up an invitation)
    except JoinRefused as exc:
        code, mode = _REFUSED[exc.block]
        door.numeric(conn, code, room.name if room is not None else name, f"Cannot join channel (+{mode})")
        return
    except Refused as exc:  # a bad name, or too many rooms made (the room lifetime's bounds)
        door.numeric(conn, "405" if room_key(name) else "403", name, str(exc))
        return
    door.replay_on_join(conn, room)  # after JOIN, topic and NAMES (show_join, from IrcConnection.joined)


def show_join(door: IrcDoor, conn: IrcConnection, room: Room) -> None:
    """What an IRC client learns on entering *room*, by its JOIN or any other path: JOIN, the topic, NAMES."""
    door.message(conn, "JOIN", room.name, source=conn.source, tags=door.server_tags(conn))
    if room.topic:
        send_topic(door, conn, room)
    names_of(door, conn, room)


def show_part(door: IrcDoor, conn: IrcConnection, room: Room, reason: str) -> None:
    """PART for a room *conn* left, by its PART or any other path but a kick."""
    door.message(conn, "PART", room.name, *([reason] if reason else []), source=conn.source)


def part(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``PART #a,#b [:reason]``."""
    reason = clean(msg.params[1])[:KICKLEN] if len(msg.params) > 1 else ""
    for name in msg.params[0].split(","):
        room = _room(door, conn, name)
        if room is not None:
            door.hub.part(conn, room, reason)  # PART: IrcConnection.left
    return 1.0


# -- TOPIC, NAMES, LIST ------------------------------------------------------------------------------------
def send_topic(door: IrcDoor, conn: IrcConnection, room: Room) -> None:
    """332 and 333 (who set it, when), or 331 when there is none."""
    if not room.topic:
        door.numeric(conn, "331", room.name, "No topic is set")
        return
    door.numeric(conn, "332", room.name, room.topic)
    door.numeric(conn, "333", room.name, room.topic_by or door.server_name, str(int(room.topic_at)))


def topic(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``TOPIC #room`` shows it; ``TOPIC #room :text`` sets it (``+t``: operators only)."""
    room = _room(door, conn, msg.params[0], member=len(msg.params) > 1)
    if room is None:
        return 1.0
    if len(msg.params) == 1:
        if visible(door, conn, room):
            send_topic(door, conn, room)
        else:
            door.numeric(conn, "442", room.name, "You're not on that channel")
        return 1.0
    if room.rules.topic_locked and not door.is_op(conn, room):
        door.numeric(conn, "482", room.name, "You're not channel operator")
        return 1.0
    door.hub.set_topic(conn, room, clean(msg.params[1])[:TOPICLEN])  # no terminal escapes for the other doors
    return 1.0


def names_of(door: IrcDoor, conn: IrcConnection, room: Room) -> None:
    """353 lines of at most about 400 bytes, then 366."""
    items = [_nick_item(door, conn, m, room) for m in room.members.values()]
    line: list[str] = []
    size = 0
    for item in items:
        if line and size + len(item) > 380:
            door.numeric(conn, "353", "@" if room.rules.secret else "=", room.name, " ".join(line))
            line, size = [], 0
        line.append(item)
        size += len(item) + 1
    symbol = "@" if room.rules.secret else "="
    if line:
        door.numeric(conn, "353", symbol, room.name, " ".join(line))
    door.numeric(conn, "366", room.name, "End of /NAMES list")


def names(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``NAMES #room``: its members (only if visible: a keyed room to its members); ``NAMES`` alone: 366 *."""
    if not msg.params:
        door.numeric(conn, "366", "*", "End of /NAMES list")
        return 1.0
    for name in msg.params[0].split(",")[:1]:
        room = door.hub.room(name)
        if room is None or not visible(door, conn, room):
            door.numeric(conn, "366", name, "End of /NAMES list")
        else:
            names_of(door, conn, room)
    return 2.0


def list_(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``LIST [#a,#py*]``: 321, a 322 per room (a keyed room only to its members) whose name is one of those given
    or matches one given as a mask (``*``, ``?``; irssi's ``/list #py*``), 323."""
    masks = [casefold(n) for n in msg.params[0].split(",") if n] if msg.params else []
    door.numeric(conn, "321", "Channel", "Users  Name")
    viewer = door.hub.rooms.viewer(conn)
    for room in door.hub.rooms.listed():
        if (masks and not any(fnmatch.fnmatchcase(room.name, m) for m in masks)) or not len(room) \
                or not listed_to(viewer, room):
            continue  # a channel exists while occupied; a secret one is listed to its members
        door.numeric(conn, "322", room.name, str(len(room)), room.topic if may_read(viewer, room) else "")
    door.numeric(conn, "323", "End of /LIST")
    return 3.0


# -- KICK and INVITE --------------------------------------------------------------------------------

def kick(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``KICK #room nick [:reason]``: operators only (482); the owner and admins cannot be kicked."""
    if len(msg.params) < 2:
        door.numeric(conn, "461", "KICK", "Not enough parameters")
        return 1.0
    room = _room(door, conn, msg.params[0])
    if room is None:
        return 1.0
    reason = clean(msg.params[2] if len(msg.params) > 2 and msg.params[2] else conn.nick)[:KICKLEN]
    names = msg.params[1].split(",")
    if len(names) > MAX_KICKS and door.is_op(conn, room):  # past ISUPPORT TARGMAX=KICK:4: said, never dropped unsaid
        door.numeric(conn, "407", names[MAX_KICKS], f"Too many targets: kicks only the first {MAX_KICKS} "
                                                     f"(TARGMAX), not the other {len(names) - MAX_KICKS}")
    for name in names[:MAX_KICKS]:
        victim = door.hub.find(name)
        if not door.is_op(conn, room):
            door.numeric(conn, "482", room.name, "You're not channel operator")
            return 1.0
        if victim is None:
            door.numeric(conn, "401", name, "No such nick/channel")
            continue
        if room.name not in victim.rooms:
            door.numeric(conn, "441", victim.nick, room.name, "They aren't on that channel")
            continue
        owner = room.rules.owner.casefold()
        if victim is not conn and (door.is_admin(victim) or (owner and (victim.account or "").casefold() == owner
                                                               and not door.is_admin(conn))):
            door.numeric(conn, "482", room.name, f"{victim.nick} owns the channel or is an admin")
            continue
        text = f"{conn.nick} kicked {victim.nick} from {room.label}" + (f" ({reason})" if reason else "")
        try:
            door.hub.kick(victim, room, text, by=conn.nick, reason=reason)
        except Refused as exc:  # another server's member while Redis is away: said, never undone unsaid
            door.app.send_line(conn, f"ERROR {exc}")
    return 2.0


def invite(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``INVITE nick #room``: the invited member may join past the key once (341 to the inviter)."""
    if len(msg.params) < 2:
        door.numeric(conn, "461", "INVITE", "Not enough parameters")
        return 1.0
    target = door.hub.find(msg.params[0])
    if target is None:
        door.numeric(conn, "401", msg.params[0], "No such nick/channel")
        return 1.0
    room = _room(door, conn, msg.params[1])
    if room is None:
        return 1.0
    if room.name in target.rooms:
        door.numeric(conn, "443", target.nick, room.name, "is already on channel")
        return 1.0
    if (room.rules.key or room.rules.invite_only or room.rules.limit) and not door.is_op(conn, room):
        door.numeric(conn, "482", room.name, "You're not channel operator")
        return 1.0
    if (why := target.unreachable()) is not None:  # another server's member while Redis is away: never lost unsaid
        door.app.send_line(conn, f"ERROR {target.nick} was not invited to {room.name}: {why}; try again")
        return 1.0
    door.numeric(conn, "341", target.nick, room.name)
    target.invite(room.name)  # the model's invitation, whatever the target's door (a remote member: its node)
    if isinstance(target, IrcConnection):
        tags = door.server_tags(target)
        if conn.account and target.irccaps & {"account-tag", "message-tags"}:
            tags["account"] = conn.account
        door.message(target, "INVITE", target.nick, room.name, source=conn.source, tags=tags)
    else:
        door.app.send_line(target, f"* {conn.nick} invites you to {room.name}: /join {room.name}")
    return 2.0


# -- WHO and WHOIS -------------------------------------------------------------------------------------------
def who(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``WHO #room`` / ``WHO nick`` (352, 315); WHOX ``WHO target %fields[,token]`` (354)."""
    mask = msg.params[0] if msg.params else "*"
    whox = msg.params[1][1:] if len(msg.params) > 1 and msg.params[1].startswith("%") else None
    room = door.hub.room(mask) if mask.startswith("#") else None
    rows: list[tuple[Any, Any]] = []
    if room is not None and visible(door, conn, room):
        rows = [(m, room) for m in room.members.values()]
    elif mask.startswith("#"):
        rows = []
    elif "*" in mask or "?" in mask:  # a mask: every visible member whose nick matches (+i: sharing a room)
        pattern = casefold(mask)
        rows = [(m, next(iter(m.rooms.values()), None)) for m in door.hub.members.values()
                if fnmatch.fnmatchcase(casefold(m.nick), pattern) and _visible(conn, m)]
    else:
        found = door.hub.find(mask)
        rows = [(found, next(iter(found.rooms.values()), None))] if found is not None else []
    for member, where in rows:
        flags = ("G" if member.away else "H") + ("*" if door.is_admin(member) else "") + \
                (_prefix(door, conn, member, where) if where is not None else "")
        user, host = door.mask_of(member.nick).split("!", 1)[1].split("@", 1)
        channel = where.name if where is not None else "*"
        if whox is None:
            door.numeric(conn, "352", channel, user, host, door.server_name, member.nick, flags,
                         f"0 {getattr(member, 'realname', '') or member.nick}")
        else:
            door.numeric(conn, "354", *_whox(door, whox, member, channel, user, host, flags))
    door.numeric(conn, "315", mask, "End of WHO list")
    return 3.0


def visible(door: IrcDoor, conn: IrcConnection, room: Room) -> bool:
    """May *conn* see *room*'s members and topic (:mod:`chatroom.model.access`: it may read the room, and a
    secret room only as a member)."""
    viewer = door.hub.rooms.viewer(conn)
    return listed_to(viewer, room) and may_read(viewer, room)


def _visible(conn: IrcConnection, member: Member) -> bool:
    """May *conn* find *member* by a mask: itself, a member without ``+i``, or one sharing a room."""
    if member is conn or "i" not in getattr(member, "umodes", ""):
        return True
    return any(name in conn.rooms for name in member.rooms)


def _whox(door: IrcDoor, spec: str, member: Member, channel: str, user: str, host: str, flags: str) -> list[str]:
    """The WHOX fields asked for, in the protocol's order (t c u i h s n f d l a o r)."""
    fields, _, token = spec.partition(",")
    values = {"t": token or "0", "c": channel, "u": user, "i": "255.255.255.255", "h": host, "s": door.server_name,
              "n": member.nick, "f": flags, "d": "0", "l": "0", "a": member.account or "0", "o": "0",
              "r": getattr(member, "realname", "") or member.nick}
    return [values[f] for f in "tcuihsnfdlaor" if f in fields]


def whois(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``WHOIS [server] nick``: 311, 319, 312, 313 (admin), 301 (away), 330 (account), 318; 401 if none."""
    name = msg.params[-1]
    member = door.hub.find(name)
    if member is None:
        door.numeric(conn, "401", name, "No such nick/channel")
        door.numeric(conn, "318", name, "End of /WHOIS list")
        return 2.0
    user, host = door.mask_of(member.nick).split("!", 1)[1].split("@", 1)
    door.numeric(conn, "311", member.nick, user, host, "*", getattr(member, "realname", "") or member.nick)
    shown = [(_prefix(door, conn, member, r) + r.name) for r in member.rooms.values() if visible(door, conn, r)]
    if shown:
        door.numeric(conn, "319", member.nick, " ".join(shown))
    door.numeric(conn, "312", member.nick, door.server_name, "chatroom")
    if door.is_admin(member):
        door.numeric(conn, "313", member.nick, "is a server admin")
    if member.away:
        door.numeric(conn, "301", member.nick, member.away)
    if member.account:
        door.numeric(conn, "330", member.nick, member.account, "is logged in as")
    if member is conn:
        door.numeric(conn, "378", member.nick, f"is connecting from *@{irc_host(conn.host)} {conn.host}")
    door.numeric(conn, "318", member.nick, "End of /WHOIS list")
    return 2.0


# -- MODE ----------------------------------------------------------------------------------------------
def mode(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``MODE #room [changes args...]`` (room rules) or ``MODE nick [+i|-i|+w|-w]`` (user modes)."""
    target = msg.params[0]
    if not target.startswith("#"):
        return _user_mode(door, conn, target, msg.params[1:])
    room = _room(door, conn, target, member=False)
    if room is None:
        return 1.0
    if len(msg.params) == 1:
        rules = room.rules
        modes = "+" + "i" * rules.invite_only + "m" * rules.moderated + "n" * (not rules.external) + "s" * rules.secret \
            + "t" * rules.topic_locked
        args = []
        if rules.key:
            modes += "k"
            args.append(rules.key if room.name in conn.rooms else "*")
        if rules.limit:
            modes += "l"
            args.append(str(rules.limit))
        door.numeric(conn, "324", room.name, modes, *args)
        created = door.app.history.room(room.name)
        door.numeric(conn, "329", room.name, str(int(created.created if created else 0)))
        return 1.0
    return change_modes(door, conn, room, msg.params[1], msg.params[2:])


def _user_mode(door: IrcDoor, conn: IrcConnection, target: str, args: list[str]) -> float:
    if door.hub.find(target) is not conn:
        door.numeric(conn, "502" if door.hub.find(target) else "401", target,
                     "Can't change mode for other users" if door.hub.find(target) else "No such nick/channel")
        return 1.0
    if not args:
        door.numeric(conn, "221", "+" + conn.umodes)
        return 1.0
    sign, changed, unknown = "+", "", False
    for char in args[0]:
        if char in "+-":
            sign = char
        elif char in "iw":
            if (sign == "+") != (char in conn.umodes):
                conn.umodes = conn.umodes + char if sign == "+" else conn.umodes.replace(char, "")
                changed += sign + char
        else:
            unknown = True
    if unknown:
        door.numeric(conn, "501", "Unknown MODE flag")
    if changed:
        door.message(conn, "MODE", conn.nick, changed, source=conn.source)
    return 1.0


def install(door: IrcDoor) -> None:
    """Register this module's commands with *door*."""
    door.show_join = lambda conn, room: show_join(door, conn, room)
    door.show_part = lambda conn, room, reason: show_part(door, conn, room, reason)
    door.command("JOIN", join, params=1)
    door.command("PART", part, params=1)
    door.command("TOPIC", topic, params=1)
    door.command("NAMES", names)
    door.command("LIST", list_)
    door.command("KICK", kick, params=2)
    door.command("INVITE", invite, params=2)
    door.command("WHO", who)
    door.command("WHOIS", whois, params=1)
    door.command("MODE", mode, params=1)
