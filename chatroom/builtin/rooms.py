"""Built-in room commands: /join, /part, /rooms, /topic, /me, /history.

A connection can be in several rooms; one is its *current* room, where its
plain lines go. Lines from the current room look exactly as they always did
(``NICK: text``); lines from the other rooms it is in carry ``[#room] ``.
Room names are ``#`` plus 1-32 of ``a-z 0-9 _ -``, any case (``/join lobby``
is ``/join #lobby``). Written against the public plugin API only, like any
third-party plugin. The wire format is in docs/protocol.md ("Rooms").
"""

from __future__ import annotations

import time

from chatroom import Command, CommandError, Context, Room, UsageError, hookimpl, parse_uint

JOIN_USAGE = "/join #ROOM [KEY]"
PART_USAGE = "/part [#ROOM] [REASON]"  # the # may be left out when the word names one of your rooms
TOPIC_USAGE = "/topic [TEXT | --clear | lock | unlock]"
HISTORY_USAGE = "/history [#ROOM] [N] | since ID [N] | before ID [N] | around ID [N]"
ROOMS_USAGE = "/rooms [MATCH] [PAGE]"
#: Most lines one /history call returns.
MAX_HISTORY = 500
#: Rooms per page of /rooms.
ROOMS_PAGE = 50


def join(ctx: Context, args: list[str]) -> None:
    """``/join #room [KEY]``: join (creating it: you own it if logged in) and make it current; topic,
    recent history, then ``OK``. A room with a key (``/key``) needs it; a ban keeps you out."""
    if len(args) > 1:  # a KEY for a room without one is a mistake worth saying
        found = ctx.find_room(args[0])
        if found is None or not found.rules.key:
            raise UsageError(f"{JOIN_USAGE} (KEY only for a room with a key; {args[0]} has none)")
    room, joined = ctx.join(args[0], args[1] if len(args) > 1 else None)
    if not joined:
        ctx.reply(f"OK current room {room.name}")
        return
    if room.topic:
        ctx.reply(f"* topic of {room.label}: {room.topic}")
    ctx.replay_recent(room)
    ctx.reply(f"OK join {room.name} ({len(room)} member{'s' * (len(room) != 1)})")


def part(ctx: Context, args: list[str]) -> None:
    """``/part [#room] [reason]``: leave the room (default: the current one)."""
    assert ctx.client is not None
    first, _, rest = ctx.text.partition(" ")
    room = ctx.find_room(first) if first else None
    if room is not None and room.name not in ctx.client.rooms:
        room = None
    if first.startswith("#") and room is None:
        raise CommandError(f"you are not in {first}")
    if room is None:  # the first word names no room of yours: it is part of the reason
        room, rest = ctx.client.room, ctx.text
    if room is None:
        raise CommandError("you are in no room")
    ctx.part(room, rest.strip()[:200])
    now = ctx.client.room
    ctx.reply(f"OK part {room.name}; " + (f"current room {now.name}" if now else "you are in no room: /join #room"))


def rooms(ctx: Context, args: list[str]) -> None:
    """``/rooms [MATCH] [PAGE]``: the listed rooms (whose name contains MATCH), :data:`ROOMS_PAGE` a page, by
    name: ``* #design (2): TOPIC`` (``[key]`` for a keyed room; the topic only of rooms you may read), then
    ``OK N rooms`` (``OK N rooms (page 1 of 7: /rooms 2 for more)`` when there are more pages)."""
    page = parse_uint(args[-1], max_digits=9, minimum=1) if args else None
    match = " ".join(args[:-1] if page is not None else args)
    if len(args) > 1 and page is None:
        raise UsageError(ROOMS_USAGE)
    wanted = match.lower().lstrip("#")
    listed = [room for room in ctx.rooms() if wanted in room.name[1:]]
    pages = max(1, -(-len(listed) // ROOMS_PAGE))
    page = page or 1
    if page > pages:
        raise UsageError(f"{ROOMS_USAGE} (PAGE from 1 to {pages})")
    for room in listed[(page - 1) * ROOMS_PAGE:page * ROOMS_PAGE]:
        topic = f": {room.topic}" if room.topic and ctx.may_read(room) else ""
        ctx.reply(f"* {room.name} ({len(room)}){' [key]' * bool(room.rules.key)}{topic}")
    count = f"{len(listed)} room{'s' * (len(listed) != 1)}" + (f" matching {match}" if match else "")
    more = f" /rooms {match + ' ' if match else ''}{page + 1} for more" if page < pages else ""
    ctx.reply(f"OK {count}" + (f" (page {page} of {pages}{':' * bool(more)}{more})" if pages > 1 else ""))


def topic(ctx: Context, args: list[str]) -> None:
    """``/topic``: show the current room's topic; ``/topic TEXT`` sets it, ``/topic --clear`` clears it."""
    room = _current(ctx)
    text = ctx.text.strip()
    if not text:
        if room.topic:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(room.topic_at))
            ctx.reply(f"* topic of {room.label}: {room.topic} (set by {room.topic_by}, {when})")
        else:
            ctx.reply(f"* {room.label} has no topic")
        return
    if text.lower() in ("lock", "unlock"):  # operators only: declared in sub_requires, checked by the core
        room.rules.topic_locked = text.lower() == "lock"
        ctx.moderate(room, f"{ctx.nick} {text.lower()}ed the topic of {room.label}",
                     mode="+t" if text.lower() == "lock" else "-t")
        ctx.reply(f"OK topic {text.lower()}ed")
        return
    if room.rules.topic_locked:
        ctx.require("operator", f"/topic in {room.label} (locked)")
    ctx.set_topic(room, "" if text == "--clear" else text[:400])
    ctx.reply("OK topic")


def me(ctx: Context, args: list[str]) -> None:
    """``/me TEXT``: ``* NICK TEXT`` to the current room, recorded like chat."""
    ctx.chat(ctx.text, kind="me")


def history(ctx: Context, args: list[str]) -> None:
    """``/history [#room] [N]``, ``/history since ID [N]``, ``/history before ID [N]``, ``/history around ID [N]``
    (the line ID, or the first after it, with up to N/2 lines before it: where a search hit was said): stored
    lines (marked as history), then ``OK N lines``."""
    if args and args[0].startswith("#"):
        found = ctx.find_room(args[0])
        if found is None:
            raise CommandError(f"no such room: {args[0]}")
        room, args = found, args[1:]
    else:
        room = _current(ctx)
    if args and args[0] in ("since", "before", "around"):
        if len(args) not in (2, 3):
            raise UsageError(HISTORY_USAGE)
        anchor = parse_uint(args[1], max_digits=18)
        count = _count(args[2:], 20 if args[0] == "around" else 50)
        if anchor is None:
            raise UsageError(HISTORY_USAGE)
        if args[0] == "around":
            entries = ctx.history(room, last=count // 2, before=anchor) if count > 1 else []
            entries += ctx.history(room, last=count - len(entries), since=max(anchor - 1, 0))
        else:
            entries = ctx.history(room, last=count, **{args[0]: anchor})
    else:
        if len(args) > 1:
            raise UsageError(HISTORY_USAGE)
        entries = ctx.history(room, last=_count(args, 20))
    shown = ctx.replay(entries)
    ctx.reply(f"OK history {room.name} {shown} line{'s' * (shown != 1)}")


def _count(args: list[str], default: int) -> int:
    if not args:
        return default
    count = parse_uint(args[0], maximum=MAX_HISTORY, minimum=1)
    if count is None:
        raise UsageError(f"{HISTORY_USAGE} (N from 1 to {MAX_HISTORY})")
    return count


def _current(ctx: Context) -> Room:
    room = ctx.client.room if ctx.client is not None else None
    if not isinstance(room, Room):  # None: in no room (Member.room is untyped: the room imports the member)
        raise CommandError("you are in no room: /join #room first")
    return room


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("join", join, usage=JOIN_USAGE, summary="Join a room (created if new) and make it your current room",
                min_args=1, max_args=2, aliases=("j",)),
        Command("part", part, usage=PART_USAGE, summary="Leave a room (default: your current room)", raw=True,
                aliases=("leave",)),
        Command("rooms", rooms, usage=ROOMS_USAGE, max_args=2, cost=3.0,
                summary=f"List the rooms with their member counts and topics, {ROOMS_PAGE} a page (MATCH: in the name)"),
        Command("topic", topic, usage=TOPIC_USAGE, raw=True, sub_requires=(("lock", "operator"), ("unlock", "operator")),
                summary="Show or set your current room's topic (operators: lock or unlock it)"),
        Command("me", me, usage="/me TEXT", summary="Say * NICK TEXT in your current room", min_args=1, raw=True),
        Command("history", history, usage=HISTORY_USAGE,
                summary="Show stored lines of your current room (ids need /caps tags)", max_args=4, cost=3.0),
    ]
