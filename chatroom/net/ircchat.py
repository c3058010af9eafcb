"""What IRC clients say: PRIVMSG, NOTICE, TAGMSG, AWAY, CHATHISTORY, and every other command handed to chatroom's
commands.

A ``PRIVMSG #room`` is chat in that room (through the ``chat_message`` hooks
and the history, like a line typed by any member; the room does not become
the sender's current one); ``\\x01ACTION ...\\x01`` is ``/me``; a ``PRIVMSG
nick`` is a private line (``private_message`` hooks), to a member of any door.
With ``echo-message`` the sender gets its own line back, with the ``msgid``
and ``time`` everyone got. A command the door does not know (``BOARD``,
``TWEET -d #tag``: ``/quote board`` in irssi) is run as ``/board`` by
chatroom's commands, whose replies come back as NOTICEs; one nobody knows is
``421``. ``draft/chathistory`` (ircv3.net/specs/extensions/chathistory)
reads the rooms' history by ``msgid`` (``ROOM-ID``). Loop thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from chatroom.model.errors import Refused
from chatroom.model.member import Member
from chatroom.model.room import Room
from chatroom.model.access import may_read
from chatroom.model.history import Entry
from chatroom.net.irc import IrcConnection, IrcDoor, tagged
from chatroom.net.ircregister import MAX_HISTORY, MAX_TARGETS
from chatroom.wire.irc import MAX_LINE, Message, clean, encode
from chatroom.wire.ircevents import parse_msgid, render_event
from chatroom.wire.lines import sanitize
from chatroom.wire.numbers import parse_uint
from chatroom.wire.render import iso_time

__all__ = ["install", "other_command"]



def privmsg(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``PRIVMSG target[,target] :text``: 411 without a target, 412 without text, 401/403/404 for a bad target."""
    return _message(door, conn, msg, notice=False)


def notice(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``NOTICE target :text``: as PRIVMSG, but never answered with an error (RFC 2812 3.3.2)."""
    return _message(door, conn, msg, notice=True)


def _message(door: IrcDoor, conn: IrcConnection, msg: Message, *, notice: bool) -> float:
    if not msg.params or not msg.params[0]:
        if not notice:
            door.numeric(conn, "411", f"No recipient given ({msg.command.upper()})")
        return 1.0
    if len(msg.params) < 2 or not msg.params[1]:
        if not notice:
            door.numeric(conn, "412", "No text to send")
        return 1.0
    targets, text = msg.params[0], msg.params[1]
    # client-only tags travel with the line (hot path: most lines have no tags at all)
    tags = {k: v for k, v in msg.tags.items() if k.startswith("+")} if msg.tags else {}
    if "," not in targets and targets[0] == "#":  # hot path: one room
        _to_room(door, conn, targets, text, notice, tags)
        return 1.0
    cost = 0.0
    names = targets.split(",")
    if len(names) > MAX_TARGETS and not notice:  # past ISUPPORT TARGMAX: refused, never dropped unsaid (one 407)
        door.numeric(conn, "407", names[MAX_TARGETS], f"Too many recipients: sent to the first {MAX_TARGETS} "
                                                      f"(TARGMAX), not to the other {len(names) - MAX_TARGETS}")
    for target in names[:MAX_TARGETS]:
        cost += 1.0
        if target.startswith("#"):
            _to_room(door, conn, target, text, notice, tags)
        else:
            _to_member(door, conn, target, text, notice, tags)
    return cost


#: The reason a ``404`` gives for each way the speak rule refuses (:func:`chatroom.model.access.speak_block`).
_CANNOT = {"outside": "you are not in it", "banned": "you are banned", "moderated": "+m"}


def _silenced(door: IrcDoor, conn: IrcConnection, room: Room, *, answer: bool) -> bool:
    """Whether the speak rule (:meth:`chatroom.model.rooms.Rooms.speak_refusal`) refuses *conn* a line in *room*;
    if so and *answer*, tell it with ``404 ERR_CANNOTSENDTOCHAN`` and the reason (RFC 2812 3.3.1; never for a
    NOTICE, 3.3.2). A member of a free room passes on the rule's fast path."""
    refused = door.hub.rooms.speak_refusal(conn, room)
    if refused is None:
        return False
    if answer:
        door.numeric(conn, "404", room.name, f"Cannot send to channel ({_CANNOT[refused.block]})")
    return True


def _to_room(door: IrcDoor, conn: IrcConnection, name: str, text: str, notice: bool, tags: dict[str, str]) -> None:
    room = conn.rooms.get(name)  # hot path: the exact name of one of its rooms, no parsing, a member
    if room is None:  # (never "or": a Room's truth is its len(), a call, and an empty room is falsy)
        room = door.hub.room(name)
        if room is None:
            if not notice:
                door.numeric(conn, "403", name, "No such channel")
            return
    if _silenced(door, conn, room, answer=not notice):
        return
    kind = "notice" if notice else "msg"
    if text[:1] == "\x01":  # CTCP (one check for every other line)
        if not (text.startswith("\x01ACTION ") or text == "\x01ACTION\x01"):
            return  # other CTCP to a room (VERSION, PING...): nobody there answers them
        kind, text = "me", text[8:].rstrip("\x01")
    text = clean(text)  # what every door prints: no terminal escapes (IRC's formatting codes stay)
    if not text:
        if not notice:
            door.numeric(conn, "412", "No text to send")
        return
    if relayed_size(conn.source, "NOTICE" if notice else "PRIVMSG", room.name, text, kind == "me") > MAX_LINE:
        door.numeric(conn, "417", "Input line was too long (with your address, for the others)")
        return
    entry = door.app.dispatcher.speak(conn, room, text, kind)
    if entry is not None:
        if tags:
            door.keep_tags(entry, tags)
        if "echo-message" in conn.irccaps and door.hub.bus is None:  # with a bus: once stored, with its id
            door.send(conn, render_event(entry, conn.tagged, door.mask_of, door.server_name, more=tags))


def _to_member(door: IrcDoor, conn: IrcConnection, name: str, text: str, notice: bool, tags: dict[str, str]) -> None:
    target = door.hub.find(name)
    if target is None:
        if not notice:
            door.numeric(conn, "401", name, "No such nick/channel")
        return
    if relayed_size(conn.source, "PRIVMSG", target.nick, text) > MAX_LINE:
        door.numeric(conn, "417", "Input line was too long (with your address, for the others)")
        return
    if text.startswith("\x01DCC "):  # no DCC: it would bypass the relay, its consent and its quotas
        if not notice:
            door.message(conn, "NOTICE", conn.nick, f"* DCC is not relayed here, {target.nick} got nothing: offer "
                                                    "files with SENDFILE #channel (a one-time upload link)")
        return
    if not isinstance(target, IrcConnection):  # other doors print it: no control characters, no CTCP
        if text.startswith("\x01ACTION "):
            text = f"* {conn.nick} {text[8:].rstrip(chr(1))}"
        elif text.startswith("\x01"):
            if not notice:  # a CTCP query (VERSION, PING...): nothing there answers it; a reply (NOTICE): dropped
                query = text.strip("\x01").split(" ", 1)[0]
                door.message(conn, "NOTICE", conn.nick, f"* {target.nick} is not on IRC: its client does not "
                                                        f"answer CTCP {query}")
            return
        text = sanitize(text)
    door.private_tags = {**tags, "msgid": f"pm-{next(door.batches)}"}  # the same msgid for the echo
    try:
        if not door.app.say_private(conn, target, text, notice=notice):
            return
    except Refused as exc:  # not deliverable now (another node's member while Redis is away): never lost unsaid
        door.app.send_line(conn, f"ERROR {exc}")
        return
    finally:
        more, door.private_tags = door.private_tags, None
    if "echo-message" in conn.irccaps:
        echo = door.server_tags(conn)
        if "message-tags" in conn.irccaps:
            echo.update(more)
        door.message(conn, "NOTICE" if notice else "PRIVMSG", target.nick, text, source=conn.source, tags=echo)
    if target.away and not notice:
        door.numeric(conn, "301", target.nick, target.away)


def relayed_size(source: str, command: str, target: str, text: str, action: bool = False) -> int:
    """Bytes of ``:SOURCE COMMAND TARGET :TEXT`` CR LF as relayed (the ``:`` only when needed; *action*: the
    text goes in ``\x01ACTION ...\x01``); the hot path's cheap form of :func:`chatroom.wire.irc.line_size`."""
    size = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
    if action:
        size += 9
    colon = action or not text or " " in text or text[0] == ":"
    return len(source) + len(command) + len(target) + size + 6 + colon


def tagmsg(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``TAGMSG target``: the client-only tags (``+typing``...) to the room's or the member's IRC clients that
    negotiated ``message-tags``; nothing to other doors, nothing stored. To a room it meets the speak rule as a
    PRIVMSG does (``404`` in a moderated room, under a ban, from outside a ``+n`` room; ``403`` for no room)."""
    client_tags = {k: v for k, v in msg.tags.items() if k.startswith("+")}
    target = msg.params[0]
    if target.startswith("#"):
        room = door.hub.room(target)
        if room is None:
            door.numeric(conn, "403", target, "No such channel")
            return 1.0
        if _silenced(door, conn, room, answer=True):  # the speak rule, as PRIVMSG (ergo and solanum alike)
            return 1.0
        members = [m for m in room.members.values() if m is not conn]
        target = room.name
    else:
        found = door.hub.find(target)
        if found is None:
            door.numeric(conn, "401", target, "No such nick/channel")
            return 1.0
        members = [found]
        target = found.nick
    tags = {**client_tags, **door.server_tags(conn), "msgid": f"tag-{next(door.batches)}"}  # a TAGMSG is not stored
    relayed = encode(Message("TAGMSG", [target], source=conn.source, tags=tags))
    for member in members:  # as any relayed line: never part of the sender's labeled reply, even sent to itself
        if isinstance(member, IrcConnection) and "message-tags" in member.irccaps:
            door.hub.flush_for(member)
            member.deliver(relayed)
    if "echo-message" in conn.irccaps:
        door.send(conn, encode(Message("TAGMSG", [target], source=conn.source, tags=tags)))
    return 1.0


def away(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``AWAY :message`` (306) or ``AWAY`` (305); co-members with ``away-notify`` see it."""
    text = msg.params[0][:200] if msg.params else ""
    door.hub.set_away(conn, sanitize(text))
    if text:
        door.numeric(conn, "306", "You have been marked as being away")
    else:
        door.numeric(conn, "305", "You are no longer marked as being away")
    return 1.0


# -- history -----------------------------------------------------------------------------------------------------
def chathistory(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN #room ref [ref] limit`` and ``TARGETS`` (:func:`_targets`): a
    ``chathistory`` batch; references are ``*`` or ``msgid=ROOM-ID``. Read access is the room's: members only."""
    sub = msg.params[0].upper()
    if sub == "TARGETS":
        return _targets(door, conn, msg.params[1:])
    if len(msg.params) < 4 or sub not in ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"):
        door.message(conn, "FAIL", "CHATHISTORY", "INVALID_PARAMS", sub, "Invalid parameters")
        return 1.0
    room = door.hub.room(msg.params[1])
    if room is None or not may_read(door.hub.rooms.viewer(conn), room):  # the access rule for reading a room
        door.message(conn, "FAIL", "CHATHISTORY", "INVALID_TARGET", sub, msg.params[1], "No such channel you may read")
        return 1.0
    limit_text = msg.params[-1]
    limit = min(parse_uint(limit_text, max_digits=9) or 0, MAX_HISTORY)  # never int('²')
    refs = [_ref(door, room, r) for r in msg.params[2:-1]]
    if not limit or any(r is None for r in refs) or (sub != "LATEST" and refs[0] == 0):
        door.message(conn, "FAIL", "CHATHISTORY", "INVALID_PARAMS", sub, "Invalid parameters")
        return 1.0
    entries = _query(lambda **how: door.hub.rooms.read(conn, room, **how), sub, [r or 0 for r in refs], limit)
    if "draft/event-playback" not in conn.irccaps:  # without it, the lines said, not the topic changes
        entries = [e for e in entries if e.kind in ("msg", "me") or (e.kind == "notice" and e.nick)]
    batch = _open_batch(door, conn, "chathistory", room.name)
    for entry in entries:
        line = render_event(entry, conn.tagged, door.mask_of, door.server_name, history=True)
        door.send(conn, b"".join(tagged(part, b"batch=" + batch.encode()) for part in line.splitlines(keepends=True)))
    door.message(conn, "BATCH", f"-{batch}")
    return 3.0


def _targets(door: IrcDoor, conn: IrcConnection, params: list[str]) -> float:
    """``CHATHISTORY TARGETS timestamp=A timestamp=B limit``: the client's rooms whose latest line falls strictly
    between A and B (either order), earliest first, at most *limit*, each with that line's time."""
    bounds = [_timestamp(p) for p in params[:2]]
    limit = min(parse_uint(params[2], max_digits=9) or 0, MAX_HISTORY) if len(params) > 2 else 0  # never int('²')
    if len(params) < 3 or not limit or None in bounds:
        door.message(conn, "FAIL", "CHATHISTORY", "INVALID_PARAMS", "TARGETS", "Invalid parameters")
        return 1.0
    low, high = sorted(b or "" for b in bounds)
    found = []
    for room in conn.rooms.values():
        last = door.hub.rooms.read(conn, room, last=1)  # the access rule for reading a room
        if last and low < (when := iso_time(last[0].ts)) < high:  # one format: the strings sort as the times
            found.append((when, room.name))
    batch = _open_batch(door, conn, "draft/chathistory-targets")
    for when, name in sorted(found)[:limit]:
        door.message(conn, "CHATHISTORY", "TARGETS", name, when, tags={"batch": batch})
    door.message(conn, "BATCH", f"-{batch}")
    return 3.0


def _timestamp(text: str) -> str | None:
    """``timestamp=2026-01-02T03:04:05.678Z`` (any ISO 8601 form with a zone, or none: UTC) as :func:`iso_time`
    writes times (``2026-01-02T03:04:05.678Z``); None if it is not one."""
    if not text.startswith("timestamp="):
        return None
    try:
        when = datetime.fromisoformat(text[10:])
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{when.microsecond // 1000:03d}Z"


def _ref(door: IrcDoor, room: Room, text: str) -> int | None:
    """``*`` -> 0; ``msgid=ROOM-ID`` of this room -> ID; anything else None."""
    if text == "*":
        return 0
    if text.startswith("msgid="):
        found = parse_msgid(text[6:])
        if found is not None and found[0] == room.name:
            return found[1]
    return None


def _query(read: Callable[..., list[Entry]], sub: str, refs: list[int], limit: int) -> list[Entry]:
    """The entries a CHATHISTORY subcommand asks for, through *read* (``Rooms.read`` for the room and viewer)."""
    if sub == "LATEST":
        return read(since=refs[0], last=limit)[-limit:] if refs[0] else read(last=limit)
    if sub == "BEFORE":
        return read(before=refs[0], last=limit)
    if sub == "AFTER":
        return read(since=refs[0], last=limit)
    if sub == "AROUND":  # the line itself, centred: (limit - 1) // 2 before it
        wanted = (limit - 1) // 2
        before = read(before=refs[0], last=wanted) if wanted else []
        return before + read(since=refs[0] - 1, last=limit - len(before))
    first, second = refs[0], refs[1] if len(refs) > 1 else refs[0]
    if first <= second:  # between, both excluded: the *limit* lines nearest the first reference
        return [e for e in read(since=first, last=limit) if e.id < second]
    return [e for e in read(before=first, last=limit) if e.id > second]


def _open_batch(door: IrcDoor, conn: IrcConnection, kind: str, *params: str) -> str:
    ref = f"h{next(door.batches)}"
    door.message(conn, "BATCH", f"+{ref}", kind, *params)
    return ref


# -- everything else: chatroom's commands -----------------------------------------------------------------------------
def other_command(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """A command the door does not know: chatroom's ``/COMMAND params`` if a plugin provides it (replies come back
    as NOTICEs), else ``421``. Returns the command's flood cost."""
    name = msg.command.lower()
    if door.app.plugins.registry.get(name) is None:
        door.numeric(conn, "421", msg.command.upper(), "Unknown command")
        return 5.0
    return float(door.app.on_line(conn, "/" + " ".join([name, *msg.params])))


def install(door: IrcDoor) -> None:
    """Register this module's commands with *door*."""
    door.command("PRIVMSG", privmsg)
    door.command("NOTICE", notice)
    door.command("TAGMSG", tagmsg, params=1)
    door.command("AWAY", away)
    door.command("CHATHISTORY", chathistory, params=1)
    door.fallback = other_command
