"""chatroom plugin: ``/later NICK MESSAGE`` leaves a message that NICK gets when next around; ``/seen NICK``.

Commands:

- ``/later NICK MESSAGE``: keep MESSAGE for NICK (``OK I will tell NICK``); NICK gets
  ``* alice told you 5m ago: MESSAGE`` when it is ready (connected and named, from any door: line
  protocol, web page, IRC), takes that nick, or speaks. (``/tell`` is the built-in ``/msg``'s alias.)
- ``/later list``: the caller's messages not delivered yet; ``/later purge NICK`` (room operators):
  drop the messages waiting for NICK.
- ``/seen NICK``: when NICK last spoke, and in which room if the caller may read it.

Messages and sightings live in the plugin's store (``ctx.store``, ``migrate``, ``ctx.transaction()``), so
they survive a restart; an hourly timer (``ctx.call_later``) drops messages older than ``max_age_days``.

A mail-like inbox shows a plugin's **own thread**: lines ``NICK MESSAGE`` appended to
``DATA_DIR/plugins/tell/inbox.txt`` (by cron, a CI job, a script) are read by a watcher thread started in
``startup`` and stopped in ``shutdown``; the thread never touches ``ctx`` but to hand each line to the loop
with ``ctx.call_soon_threadsafe`` (its tests wait for it with the kit's ``room.wait_for``).

Settings (``[plugins.tell]``): ``max_pending`` (messages one sender may leave, default 20),
``max_age_days`` (default 30), ``inbox_poll`` (seconds between inbox checks, default 1.0).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from chatroom import Command, CommandError, Context, Param, Setting, hookimpl, migrate

__version__ = "0.1.0"

MIGRATIONS = [
    "CREATE TABLE tells (id INTEGER PRIMARY KEY AUTOINCREMENT, sender TEXT NOT NULL, target TEXT NOT NULL, "
    "text TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX tells_target ON tells (target)",
    "CREATE TABLE seen (nick TEXT PRIMARY KEY, room TEXT NOT NULL, at REAL NOT NULL)",
]
MAX_TEXT = 400  # characters of one message
EXPIRE_EVERY = 3600.0  # seconds between two purges of old messages


def ago(seconds: float) -> str:
    """Seconds -> ``"just now"``, ``"5m ago"``, ``"2h ago"``, ``"3d ago"``."""
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now"


class Tell:
    """The plugin: hookimpls as methods; the instance owns the inbox watcher thread."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- commands ------------------------------------------------------------------------
    def later(self, ctx: Context, args: Any) -> None:
        if args.nick.lower() == ctx.nick.lower():
            raise CommandError("tell yourself in person")
        waiting = ctx.store.execute("SELECT count(*) FROM tells WHERE sender = ?", (ctx.nick.lower(),)).fetchone()[0]
        if waiting >= ctx.config["max_pending"]:
            raise CommandError(f"you have {waiting} messages waiting already (/later list)")
        self._keep(ctx, ctx.nick, args.nick, args.message)
        ctx.reply(f"OK I will tell {args.nick}")
        member = ctx.find(args.nick)
        if member is not None:  # here already: at once
            self._deliver(ctx, member)

    def pending(self, ctx: Context, args: Any) -> None:
        rows = ctx.store.execute("SELECT target, text FROM tells WHERE sender = ? ORDER BY id",
                                 (ctx.nick.lower(),)).fetchall()
        for target, text in rows:
            ctx.reply(f"* for {target}: {text}")
        ctx.reply(f"OK {len(rows)} waiting")

    def purge(self, ctx: Context, args: Any) -> None:
        with ctx.transaction() as db:
            dropped = db.execute("DELETE FROM tells WHERE target = ?", (args.nick.lower(),)).rowcount
        ctx.reply(f"OK dropped {dropped} for {args.nick}")

    def seen(self, ctx: Context, args: Any) -> None:
        if ctx.find(args.nick) is not None:
            ctx.reply(f"* {args.nick} is here")
            return
        row = ctx.store.execute("SELECT room, at FROM seen WHERE nick = ?", (args.nick.lower(),)).fetchone()
        if row is None:
            raise CommandError(f"I have not seen {args.nick} speak")
        room = ctx.find_room(row[0])  # None: the room is gone; show it only to whoever may read it
        where = f" in {row[0]}" if room is not None and ctx.may_read(room) else ""
        ctx.reply(f"* {args.nick} spoke {ago(ctx.now() - row[1])}{where}")

    @hookimpl
    def register_commands(self) -> list[Command]:
        return [
            Command("later", self.later, summary="Leave a message for someone who is not here",
                    params=[Param("nick", help="who gets it, when next around"), Param("message", rest=True, max=MAX_TEXT)],
                    subcommands=[
                        Command("list", self.pending, summary="Your messages not delivered yet"),
                        Command("purge", self.purge, requires="operator", params=[Param("nick")],
                                summary="Drop the messages waiting for NICK"),
                    ],
                    examples=[("/later carol lunch at noon", "OK I will tell carol")]),
            Command("seen", self.seen, summary="When NICK last spoke", params=[Param("nick")]),
        ]

    # -- delivery ------------------------------------------------------------------------
    def _keep(self, ctx: Context, sender: str, target: str, text: str) -> None:
        with ctx.transaction() as db:
            db.execute("INSERT INTO tells (sender, target, text, at) VALUES (?, ?, ?, ?)",
                       (sender.lower(), target.lower(), text, ctx.now()))

    def _deliver(self, ctx: Context, member: Any) -> None:
        with ctx.transaction() as db:
            rows = db.execute("SELECT sender, text, at FROM tells WHERE target = ? ORDER BY id",
                              (member.nick.lower(),)).fetchall()
            if rows:
                db.execute("DELETE FROM tells WHERE target = ?", (member.nick.lower(),))
        for sender, text, at in rows:
            ctx.send(member, f"* {sender} told you {ago(ctx.now() - at)}: {text}")

    @hookimpl
    def member_ready(self, ctx: Context) -> None:
        self._deliver(ctx, ctx.client)

    @hookimpl
    def nick_changed(self, ctx: Context, old: str, new: str) -> None:
        self._deliver(ctx, ctx.client)

    @hookimpl
    def chat_message(self, ctx: Context, text: str, room: Any) -> None:
        with ctx.transaction() as db:  # room: where the line is said (an IRC client has no "current" channel)
            db.execute("INSERT OR REPLACE INTO seen (nick, room, at) VALUES (?, ?, ?)",
                       (ctx.nick.lower(), room.name, ctx.now()))
        self._deliver(ctx, ctx.client)

    # -- start, stop, the expiry timer and the inbox thread ---------------------------------------
    @hookimpl
    def config_schema(self) -> dict[str, Setting]:
        return {
            "max_pending": Setting(int, default=20, min=1, max=1000, help="messages one sender may leave"),
            "max_age_days": Setting(int, default=30, min=1, max=3650, help="days a message is kept"),
            "inbox_poll": Setting(float, default=1.0, min=0.05, max=60.0, help="seconds between inbox checks"),
        }

    @hookimpl
    def startup(self, ctx: Context) -> None:
        migrate(ctx.store, MIGRATIONS)
        self._expire(ctx)
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch, args=(ctx, ctx.data_dir / "inbox.txt"),
                                         name="chatroom-tell inbox", daemon=True)
        self._watcher.start()

    @hookimpl
    def shutdown(self, ctx: Context) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(5)
            self._watcher = None

    def _expire(self, ctx: Context) -> None:
        cutoff = ctx.now() - ctx.config["max_age_days"] * 86400
        with ctx.transaction() as db:
            dropped = db.execute("DELETE FROM tells WHERE at < ?", (cutoff,)).rowcount
        if dropped:
            ctx.log.info("dropped %d messages older than %d days", dropped, ctx.config["max_age_days"])
        ctx.call_later(EXPIRE_EVERY, self._expire, ctx)

    def _watch(self, ctx: Context, inbox: Path) -> None:
        """The watcher thread: reads new lines of *inbox*; uses nothing of ``ctx`` but the thread-safe parts."""
        poll = ctx.config["inbox_poll"]
        offset = inbox.stat().st_size if inbox.exists() else 0  # only what arrives from now on
        while not self._stop.wait(poll):
            try:
                with inbox.open("rb") as f:
                    f.seek(offset)
                    data = f.read(1 << 20)
            except FileNotFoundError:
                continue
            complete, newline, rest = data.rpartition(b"\n")  # an unfinished last line waits for the next check
            if not newline:
                offset += len(rest) if len(rest) >= 1 << 20 else 0  # a 1 MiB line is no message: skip it
                continue
            offset += len(complete) + 1
            for raw in complete.split(b"\n"):
                nick, _, text = raw.decode("utf-8", "replace").strip().partition(" ")
                if nick and text.strip():
                    ctx.call_soon_threadsafe(self._from_inbox, ctx, nick, text.strip()[:MAX_TEXT])

    def _from_inbox(self, ctx: Context, nick: str, text: str) -> None:  # on the loop thread
        self._keep(ctx, "inbox", nick, text)
        member = ctx.find(nick)
        if member is not None:
            self._deliver(ctx, member)


plugin = Tell()
