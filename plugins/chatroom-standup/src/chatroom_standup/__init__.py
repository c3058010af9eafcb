"""chatroom plugin: ``/standup start`` gives each member of a room the floor in turn, on a timer.

Commands (in the caller's current room):

- ``/standup start [SECONDS]``: a stand-up of everyone in the room, in join order, SECONDS each
  (default: the ``turn`` setting, 60). At most one per room at a time, and one start per room per minute.
- ``/standup next``: the speaker is done (an operator may skip anyone).
- ``/standup stop``: operators end it early.
- ``/standup note TEXT``: keep a line of what you said; ``/standup notes [N]``: the room's last N.

A room-aware timed bot on plugin API 1.1: the turns are said in the room with ``ctx.say(room, text)``
(a room event every door shows as the room's, even to members whose current room is another, or who
set no timer); a member who joins the room during a stand-up is added at the end and one who leaves
is dropped (the ``member_joined`` and ``member_left`` hooks, with the room), so nothing polls. The timer
keeps the context of whoever started the stand-up and uses only what outlives its client
(``ctx.say(room, ...)``, ``ctx.call_later``, ``ctx.state``): the stand-up goes on after its starter
leaves. A refused start (one already running) does not spend the room's rate limit. Notes are kept in
the plugin's store, keyed by the room's name (``#name``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatroom import (
    Command,
    CommandError,
    Context,
    Member,
    Param,
    Rate,
    Room,
    Setting,
    hookimpl,
    migrate,
)

__version__ = "0.1.0"

MIGRATIONS = [
    "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL, ts REAL NOT NULL, "
    "nick TEXT NOT NULL, account TEXT, text TEXT NOT NULL)",
    "CREATE INDEX notes_by_room ON notes (room, id)",
]


@dataclass
class Standup:
    """One running stand-up: its room, who is still to speak, the speaker, seconds per turn."""

    room: Room
    queue: list[Member]
    turn: int
    speaker: Member | None = None
    spoken: list[str] = field(default_factory=list)
    timer: Any = None  # the handle ctx.call_later returned


def _running(ctx: Context) -> dict[str, Standup]:
    """Room name -> its running stand-up (the plugin's ctx.state)."""
    return ctx.state.setdefault("running", {})


def _here(ctx: Context) -> Room:
    assert ctx.client is not None
    if ctx.client.room is None:
        raise CommandError("you are in no room: /join #room first")
    return ctx.client.room


def start(ctx: Context, args: Any) -> None:
    """``/standup start [SECONDS]``."""
    room = _here(ctx)
    if room.name in _running(ctx):  # refused: does not count against the room's Rate
        raise CommandError(f"a stand-up is already running in {room.name}: /standup next or /standup stop")
    turn = args.seconds or ctx.config["turn"]
    standup = _running(ctx)[room.name] = Standup(room, list(room.members.values()), turn)
    ctx.reply(f"OK stand-up in {room.name}: {len(standup.queue)} members, {turn} s each")
    ctx.say(room, f"* stand-up started by {ctx.nick}: {', '.join(m.nick for m in standup.queue)}")
    _next_turn(ctx, standup)


def _next_turn(ctx: Context, standup: Standup) -> None:
    """Give the floor to the next member still in the room, or end the stand-up. Uses only what outlives the
    client of *ctx* (it may be a timer's, set by someone who has left since)."""
    if standup.timer is not None:
        standup.timer.cancel()
    if standup.speaker is not None:
        standup.spoken.append(standup.speaker.nick)
    standup.queue = [m for m in standup.queue if not m.gone and standup.room.name in m.rooms]
    if not standup.queue:
        _running(ctx).pop(standup.room.name, None)
        ctx.say(standup.room, f"* stand-up done: {len(standup.spoken)} spoke; /standup notes shows the notes")
        return
    standup.speaker = standup.queue.pop(0)
    ctx.say(standup.room, f"* stand-up: {standup.speaker.nick}, your turn ({standup.turn} s; /standup next "
                          "when you are done)")
    standup.timer = ctx.call_later(standup.turn, _next_turn, ctx, standup)


def next_(ctx: Context, args: Any) -> None:
    """``/standup next``."""
    room = _here(ctx)
    standup = _running(ctx).get(room.name)
    if standup is None:
        raise CommandError(f"no stand-up is running in {room.name}")
    if standup.speaker is not ctx.client:
        ctx.require("operator", "/standup next for someone else")
    ctx.reply("OK next")
    _next_turn(ctx, standup)


def stop(ctx: Context, args: Any) -> None:
    """``/standup stop`` (operators)."""
    room = _here(ctx)
    standup = _running(ctx).pop(room.name, None)
    if standup is None:
        raise CommandError(f"no stand-up is running in {room.name}")
    if standup.timer is not None:
        standup.timer.cancel()
    ctx.reply("OK stopped")
    ctx.say(room, f"* stand-up stopped by {ctx.nick}")


def note(ctx: Context, args: Any) -> None:
    """``/standup note TEXT``."""
    room = _here(ctx)
    with ctx.transaction() as db:
        db.execute("INSERT INTO notes (room, ts, nick, account, text) VALUES (?, ?, ?, ?, ?)",
                   (room.name, ctx.now(), ctx.nick, ctx.account, args.text))
    ctx.reply(f"OK noted in {room.name}")


def notes(ctx: Context, args: Any) -> None:
    """``/standup notes [N]``: the room's last N notes, oldest first, then ``OK N notes``."""
    room = _here(ctx)
    rows = ctx.store.execute("SELECT nick, text FROM notes WHERE room = ? ORDER BY id DESC LIMIT ?",
                             (room.name, args.count)).fetchall()
    for nick, text in reversed(rows):
        ctx.reply(f"* {nick}: {text}")
    ctx.reply(f"OK {len(rows)} note{'s' * (len(rows) != 1)}")


@hookimpl
def config_schema() -> dict[str, Setting]:
    return {"turn": Setting(int, default=60, min=10, max=900, help="seconds each member has by default")}


@hookimpl
def startup(ctx: Context) -> None:
    migrate(ctx.store, MIGRATIONS)


@hookimpl
def member_joined(ctx: Context, room: Room) -> None:
    """Someone joined a room during its stand-up: they speak last."""
    standup = _running(ctx).get(room.name)
    if standup is not None and ctx.client is not None and ctx.client not in standup.queue:
        standup.queue.append(ctx.client)
        ctx.say(room, f"* stand-up: {ctx.nick} joined and speaks last")


@hookimpl
def member_left(ctx: Context, room: Room, reason: str) -> None:
    """Someone left a room during its stand-up: dropped from the queue; if it was their turn, the next one."""
    standup = _running(ctx).get(room.name)
    if standup is None or ctx.client is None:
        return
    if ctx.client in standup.queue:
        standup.queue.remove(ctx.client)
    if standup.speaker is ctx.client:
        _next_turn(ctx, standup)  # ctx's client may have left the server: only room-wide parts are used


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("standup", lambda ctx, args: ctx.reply("* /standup start [SECONDS], next, stop, note TEXT, notes [N]"),
                summary="A stand-up: each member of the room speaks in turn", max_args=0,
                subcommands=[
                    Command("start", start, summary="Start a stand-up of everyone in your room",
                            params=[Param("seconds", int, default=0, min=10, max=900,
                                          help="seconds each member has (default: the server's setting)")],
                            rate=Rate(room=60, message="a stand-up was started here less than a minute ago; "
                                                       "try again in {seconds} s")),
                    Command("next", next_, summary="Done: the next member speaks (operators: skip anyone)"),
                    Command("stop", stop, requires="operator", summary="End the stand-up",
                            examples=[("/standup stop",
                                       "ERROR permission denied: /standup stop needs a room operator")]),
                    Command("note", note, summary="Keep a line of what you said",
                            params=[Param("text", rest=True, help="what you did, what is next, what blocks you")]),
                    Command("notes", notes, summary="Show your room's last notes",
                            params=[Param("count", int, default=5, min=1, max=50, help="how many, 1 to 50")],
                            examples=[("/standup notes", "OK 0 notes")]),
                ]),
    ]
