"""chatroom plugin: ``/remind 10s stand up`` tells you "stand up" in ten seconds.

Commands:

- ``/remind DURATION TEXT``: remind the caller of TEXT after DURATION
  (``90``, ``90s``, ``5m``, ``1h30m``, ``2d``); answers ``OK reminder ID in DURATION``
  and later sends ``* reminder: TEXT``.
- ``/remind cancel ID``: drop a pending reminder (``OK cancelled ID``).
- ``/reminders``: list your pending reminders.

A guest's reminders belong to its connection: they follow a nick change and
are dropped when it leaves. A logged-in member's reminders belong to its
account and are kept in the plugin's store (``ctx.store``, one transaction
per change): they survive a server restart, and one that comes due while
nobody is logged in to the account is delivered when someone is
(the ``member_ready`` hook). Settings (``[plugins.remind]`` in the server's
``--config`` file, declared with ``config_schema`` and checked at start-up):
``max_per_user`` (default 10) and ``max_duration`` (seconds, default 86400).

It shows the plugin API 1.0 surface: typed arguments and a subcommand
(``Param``), ``examples`` run as tests, ``config_schema``, ``migrate`` and
``ctx.transaction()``, ``ctx.now()`` (the kit's fake clock moves it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chatroom import Command, CommandError, Context, Param, Setting, hookimpl, migrate

__version__ = "0.2.0"

_PART = re.compile(r"(\d+)([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

MIGRATIONS = [
    "CREATE TABLE reminders (id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, text TEXT NOT NULL, "
    "seconds INTEGER NOT NULL, due REAL NOT NULL)",
]


def parse_duration(text: str) -> int:
    """``"90"``, ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"`` -> seconds (``int``).

    Raises ValueError for anything else, or for zero.
    """
    text = text.strip().lower()
    pos, total = 0, 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(f"not a duration: {text!r} (try 90s, 5m, 1h30m)")
        total += int(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if total <= 0:
        raise ValueError(f"not a duration: {text!r} (try 90s, 5m, 1h30m)")
    return total


def format_duration(seconds: int) -> str:
    """3690 -> ``"1h1m30s"``; 10 -> ``"10s"``."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


@dataclass
class Reminder:
    id: int
    owner: str  # "@account" (kept in the store) or "#<connection id>" (a guest's, in memory only)
    text: str
    seconds: int
    timer: Any = None  # the handle ctx.call_later returned (has cancel())


def _owner(ctx: Context) -> str:
    assert ctx.client is not None
    return f"@{ctx.client.account}" if ctx.client.account else f"#{ctx.client.id}"


def _pending(ctx: Context) -> dict[int, Reminder]:
    """Every pending reminder, by id (the plugin's private ctx.state)."""
    return ctx.state.setdefault("pending", {})


def _mine(ctx: Context) -> list[Reminder]:
    owner = _owner(ctx)
    return [r for r in _pending(ctx).values() if r.owner == owner]


def _deliver(ctx: Context, reminder: Reminder) -> bool:
    """Tell the reminder's owner, if connected; True if told (then it is forgotten)."""
    owner = reminder.owner
    target = ctx.state.get("members", {}).get(owner)
    if target is None:
        return False
    ctx.send(target, f"* reminder: {reminder.text}")
    _pending(ctx).pop(reminder.id, None)
    if owner.startswith("@"):
        with ctx.transaction() as db:
            db.execute("DELETE FROM reminders WHERE id = ?", (reminder.id,))
    return True


def _arm(ctx: Context, reminder: Reminder, delay: float) -> None:
    def fire() -> None:  # on the loop thread, `delay` seconds later
        reminder.timer = None
        _deliver(ctx, reminder)  # an account nobody is logged in to: kept until member_ready

    reminder.timer = ctx.call_later(max(0.0, delay), fire)


def remind(ctx: Context, args: Any) -> None:
    """``/remind DURATION TEXT``."""
    seconds, text = args.duration, args.text
    limit = ctx.config["max_duration"]
    if seconds > limit:
        raise CommandError(f"at most {format_duration(limit)} ahead")
    mine = _mine(ctx)
    if len(mine) >= ctx.config["max_per_user"]:
        raise CommandError(f"you have {len(mine)} reminders pending; /remind cancel ID one first")
    owner = _owner(ctx)
    with ctx.transaction() as db:  # ids come from the store, for guests too, so they never repeat
        cursor = db.execute("INSERT INTO reminders (account, text, seconds, due) VALUES (?, ?, ?, ?)",
                            (owner, text, seconds, ctx.now() + seconds))
        rid = int(cursor.lastrowid or 0)
        if not owner.startswith("@"):
            db.execute("DELETE FROM reminders WHERE id = ?", (rid,))
    reminder = _pending(ctx)[rid] = Reminder(rid, owner, text, seconds)
    _arm(ctx, reminder, seconds)
    ctx.reply(f"OK reminder {rid} in {format_duration(seconds)}")


def cancel(ctx: Context, args: Any) -> None:
    """``/remind cancel ID``."""
    reminder = _pending(ctx).get(args.id)
    if reminder is None or reminder.owner != _owner(ctx):
        raise CommandError(f"no pending reminder {args.id} of yours")
    _pending(ctx).pop(reminder.id)
    if reminder.timer is not None:
        reminder.timer.cancel()
    with ctx.transaction() as db:
        db.execute("DELETE FROM reminders WHERE id = ?", (reminder.id,))
    ctx.reply(f"OK cancelled {reminder.id}")


def reminders(ctx: Context, args: Any) -> None:
    """``/reminders``."""
    mine = _mine(ctx)
    if not mine:
        ctx.reply("* no pending reminders")
    for reminder in mine:
        ctx.reply(f"* reminder {reminder.id} (set for {format_duration(reminder.seconds)}): {reminder.text}")


@hookimpl
def config_schema() -> dict[str, Setting]:
    return {
        "max_per_user": Setting(int, default=10, min=1, max=1000, help="pending reminders per member"),
        "max_duration": Setting(int, default=86400, min=1, max=30 * 86400, help="seconds ahead at most"),
    }


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("remind", remind, summary="Remind yourself of TEXT after DURATION (10s, 5m, 1h30m)",
                params=[Param("duration", parse_duration, help="90, 90s, 5m, 1h30m or 2d"),
                        Param("text", rest=True, help="what to remind you of, as you type it")],
                subcommands=[Command("cancel", cancel, summary="Drop a pending reminder",
                                     params=[Param("id", int, min=1)],
                                     examples=[("/remind cancel 7", "ERROR no pending reminder 7 of yours")])],
                examples=[("/remind 10s stand up", "OK reminder 1 in 10s"),
                          ("/remind soon stand up",
                           "ERROR usage: /remind DURATION TEXT: not a duration: 'soon' (try 90s, 5m, 1h30m)")]),
        Command("reminders", reminders, usage="/reminders", summary="List your pending reminders", max_args=0,
                examples=[("/reminders", "* no pending reminders")]),
    ]


@hookimpl
def startup(ctx: Context) -> None:
    """Migrate the store and re-arm the accounts' reminders kept across a restart."""
    migrate(ctx.store, MIGRATIONS)
    now = ctx.now()
    for rid, owner, text, seconds, due in ctx.store.execute("SELECT id, account, text, seconds, due FROM reminders"):
        reminder = _pending(ctx)[rid] = Reminder(rid, owner, text, seconds)
        _arm(ctx, reminder, due - now)


def _track(ctx: Context) -> None:
    """Keep ``owner key -> member`` right for the caller (a login changes its key)."""
    assert ctx.client is not None
    members = ctx.state.setdefault("members", {})
    for key, member in list(members.items()):
        if member is ctx.client:
            del members[key]
    members[_owner(ctx)] = ctx.client


@hookimpl
def client_joined(ctx: Context) -> None:
    _track(ctx)


@hookimpl
def nick_changed(ctx: Context, old: str, new: str) -> None:
    _track(ctx)


@hookimpl
def member_ready(ctx: Context) -> None:
    """Hand a member that just logged in the reminders that came due while nobody was."""
    _track(ctx)
    for reminder in list(_mine(ctx)):
        if reminder.timer is None:
            _deliver(ctx, reminder)


@hookimpl
def client_left(ctx: Context, reason: str) -> None:
    """Drop a leaving guest's reminders (nobody is there to tell); an account's stay in the store."""
    assert ctx.client is not None
    owner = _owner(ctx)
    ctx.state.setdefault("members", {}).pop(owner, None)
    if owner.startswith("#"):
        for reminder in [r for r in _pending(ctx).values() if r.owner == owner]:
            _pending(ctx).pop(reminder.id)
            if reminder.timer is not None:
                reminder.timer.cancel()
