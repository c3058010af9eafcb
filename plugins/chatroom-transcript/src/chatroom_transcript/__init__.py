"""chatroom plugin: a JSON Lines transcript of every room, written on the plugin's ordered worker.

``message_delivered`` sees each room line once it was queued to its readers;
the plugin turns it into one JSON object and appends it to
``ctx.data_dir / ROOM / YYYY-MM-DD.jsonl`` with ``ctx.run_in_thread(...,
serial=True)``: one job at a time, in submission order, on the plugin's own
worker thread, so the file is in the order the lines were said and the
server's loop never waits for the disk. At shutdown the host drains queued
jobs before the stores close, so the last lines are written too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from chatroom import Command, Context, Entry, Room, Setting, hookimpl

__version__ = "0.1.0"

EMOJI = {":shrug:": "¯\\_(ツ)_/¯", ":tableflip:": "(╯°□°)╯︵ ┻━┻", ":lenny:": "( ͡° ͜ʖ ͡°)"}


def rewrite(text: str) -> str:
    """*text* with the emoji shortcodes of :data:`EMOJI` replaced."""
    for code, face in EMOJI.items():
        text = text.replace(code, face)
    return text


def path_for(folder: Path, room: str, ts: float) -> Path:
    """The transcript file of *room* (``#name``) for the UTC day of *ts*."""
    return folder / room.lstrip("#") / (time.strftime("%Y-%m-%d", time.gmtime(ts)) + ".jsonl")


def append(path: Path, line: str) -> None:
    """Append one line to *path* (worker thread: the only place the file is touched)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


@hookimpl
def config_schema() -> dict[str, Setting]:
    return {
        "rooms": Setting(list, default=(), items=str, help="rooms to record; empty: every room"),
        "emoji": Setting(bool, default=True, help="rewrite :shrug: and friends"),
    }


@hookimpl
def message_delivered(ctx: Context, room: Room, entry: Entry, recipients: int) -> None:
    rooms = ctx.config["rooms"]
    if entry.kind == "notice" or (rooms and room.name not in rooms):
        return
    text = rewrite(entry.text) if ctx.config["emoji"] else entry.text
    record = {"room": room.name, "id": entry.id, "kind": entry.kind, "nick": entry.nick,
              "account": entry.account, "text": text,
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.ts))}
    path = path_for(ctx.data_dir, room.name, entry.ts)
    line = json.dumps(record, ensure_ascii=False)
    counts = ctx.state.setdefault("counts", {})
    counts[room.name] = counts.get(room.name, 0) + 1

    def done(result: Any, error: BaseException | None) -> None:  # back on the loop thread
        if error is not None:
            ctx.log.error("cannot write %s: %s", path, error)

    ctx.run_in_thread(lambda: append(path, line), done, serial=True)


def show(ctx: Context, args: Any) -> None:
    """``/transcript``."""
    count = ctx.state.get("counts", {}).get(ctx.room.name, 0)
    ctx.reply(f"* {ctx.room.label}: {count} lines recorded since start-up, "
              f"in {ctx.plugin}/{ctx.room.name.lstrip('#')}/ of the server's data folder")


@hookimpl
def register_commands() -> list[Command]:
    return [Command("transcript", show, max_args=0, summary="Where this room's transcript is written",
                    examples=[("/transcript", "* lobby: 0 lines recorded since start-up, "
                                              "in transcript/lobby/ of the server's data folder")])]
