"""chatroom plugin: ``/remind 10s stand up`` tells you "stand up" in ten seconds.

Commands:

- ``/remind DURATION TEXT``: remind the caller of TEXT after DURATION
  (``90``, ``90s``, ``5m``, ``1h30m``, ``2d``); answers ``OK reminder ID in DURATION``
  and later sends ``* reminder: TEXT``.
- ``/remind cancel ID``: drop a pending reminder (``OK cancelled ID``).
- ``/reminders``: list your pending reminders.

Reminders belong to the connection: they follow a nick change and are
dropped when the client leaves. Settings (``[plugins.remind]`` in the
server's ``--config`` file): ``max_per_user`` (default 10) and
``max_duration`` (seconds, default 86400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chatroom import Command, CommandError, UsageError, hookimpl
from chatroom.context import Context

__version__ = "0.1.0"

USAGE = "/remind DURATION TEXT | /remind cancel ID"

_PART = re.compile(r"(\d+)([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


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
    text: str
    seconds: int
    timer: Any  # the handle ctx.call_later returned (has cancel())


def _mine(ctx: Context) -> dict[int, Reminder]:
    """The caller's pending reminders, by id (kept in the plugin's private ctx.state)."""
    assert ctx.client is not None
    return ctx.state.setdefault("by_client", {}).setdefault(ctx.client.id, {})


def remind(ctx: Context, args: list[str]) -> None:
    # raw=True: args is [the whole argument text], so "don't" needs no quoting.
    when, _, text = ctx.text.partition(" ")
    text = text.strip()
    if when.lower() == "cancel":
        cancel(ctx, text)
        return
    if not text:
        raise UsageError(USAGE)
    try:
        seconds = parse_duration(when)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    limit = int(ctx.config.get("max_duration", 86400))
    if seconds > limit:
        raise CommandError(f"at most {format_duration(limit)} ahead")
    mine = _mine(ctx)
    if len(mine) >= int(ctx.config.get("max_per_user", 10)):
        raise CommandError(f"you have {len(mine)} reminders pending; /remind cancel ID one first")
    rid = ctx.state["next_id"] = ctx.state.get("next_id", 0) + 1

    def fire() -> None:  # runs on the loop thread, `seconds` later
        mine.pop(rid, None)
        ctx.reply(f"* reminder: {text}")

    mine[rid] = Reminder(rid, text, seconds, ctx.call_later(seconds, fire))
    ctx.reply(f"OK reminder {rid} in {format_duration(seconds)}")


def cancel(ctx: Context, rid: str) -> None:
    if not rid.isdigit():
        raise UsageError("/remind cancel ID")
    reminder = _mine(ctx).pop(int(rid), None)
    if reminder is None:
        raise CommandError(f"no pending reminder {rid} of yours")
    reminder.timer.cancel()
    ctx.reply(f"OK cancelled {reminder.id}")


def reminders(ctx: Context, args: list[str]) -> None:
    mine = _mine(ctx)
    if not mine:
        ctx.reply("* no pending reminders")
    for reminder in mine.values():
        ctx.reply(f"* reminder {reminder.id} (set for {format_duration(reminder.seconds)}): {reminder.text}")


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("remind", remind, usage=USAGE, summary="Remind yourself of TEXT after DURATION (10s, 5m, 1h30m)",
                min_args=1, raw=True),
        Command("reminders", reminders, usage="/reminders", summary="List your pending reminders", max_args=0),
    ]


@hookimpl
def client_left(ctx: Context, reason: str) -> None:
    """Drop the leaving client's reminders: nobody is there to tell."""
    assert ctx.client is not None
    for reminder in ctx.state.get("by_client", {}).pop(ctx.client.id, {}).values():
        reminder.timer.cancel()
