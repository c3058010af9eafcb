"""The context object: the only way a plugin acts on the room, a thin facade over the plugin port.

Bound to the host (:class:`chatroom.plugins.port.Host`: the rules live behind it, in the room model and the server),
the plugin called (its ``ctx.state`` and ``ctx.store``) and the client concerned, if any. Every call returns at once
(output is queued). Loop thread only (:func:`chatroom.plugins.threads.check_loop_thread`), but ``call_soon_threadsafe``,
``now``, ``monotonic``, ``data_dir``, ``config``, ``log``. The client parts (``reply``, ``room``, ``join``...) stop
working when the client leaves (``ctx.expired``, :class:`~chatroom.plugins.threads.ContextExpired`; docs/plugins.md).
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import warnings
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, NamedTuple

from chatroom.model.errors import Refused
from chatroom.model.moderation import denied
from chatroom.model.room import permitted
from chatroom.model.store import transaction
from chatroom.plugins.commands import RunningCommand
from chatroom.plugins.threads import ContextExpired, Now, check_loop_thread

if TYPE_CHECKING:
    from chatroom.model.accounts import AccountStore
    from chatroom.model.history import Entry
    from chatroom.model.member import Member as Client
    from chatroom.model.room import Room
    from chatroom.model.search import SearchCursor, SearchPage
    from chatroom.net.scheduler import Timer
    from chatroom.plugins.commands import Command
    from chatroom.plugins.info import PluginInfo
    from chatroom.plugins.port import Host

LineHandler = Callable[["Context", str], None]


class Capture(NamedTuple):
    """A client's input taken by a plugin (``Member.capture``; :meth:`Context.capture` makes it): ``plugin`` (its
    name; ``""`` once that plugin went away: the input is swallowed up to ``terminator``), ``on_line`` and
    ``on_end`` (its handlers, None when it went away) and ``terminator`` (the line that ends the input, or None)."""

    plugin: str
    on_line: LineHandler | None
    on_end: Callable[[Context, str], None] | None
    terminator: str | None


class Context:
    """What a plugin may do, bound to ``(host, plugin, client)``. Attributes: ``plugin`` (``str``, the plugin's name),
    ``client`` (the member concerned, a :class:`~chatroom.model.member.Member`, or None for server events), ``args`` and
    ``text`` (for a command: the split arguments, or the :class:`~chatroom.plugins.params.Args` of a command with
    ``params``, and the raw argument text), ``command`` (for a command call: the
    :class:`~chatroom.plugins.commands.Command` being run, the subcommand when one was named; else None). Everything a
    plugin does goes through the methods below (the host behind them, :class:`~chatroom.plugins.port.Host`, is private).
    """

    __slots__ = ("_srv", "plugin", "client", "args", "text", "_command", "_room")

    def __init__(self, host: Host, plugin: str, client: Client | None = None, text: str = "",
                 command: Command | None = None, *, room: Room | None = None) -> None:
        self._srv, self.plugin, self.client, self.text, self._command = host, plugin, client, text, command
        self._room = room  # the room the event is in, when it is not the client's current one (chat_message)
        self.args: Any = []

    # -- lifetime, clocks and threads ------------------------------------------------------------
    @property
    def expired(self) -> bool:
        """True once the client of this context left the server: its client parts (``reply``, ``room``,
        ``members``, ``join``...) no longer work; its room-wide parts do (``say(room, ...)``). Any thread."""
        return self.client is not None and self.client.gone

    def _caller(self) -> Client:  # the caller, to act on: Refused without one, ContextExpired (reported) once it left
        if self.client is None:
            raise Refused("this needs a client")
        if self._live(what := sys._getframe(1).f_code.co_name) is None:
            raise ContextExpired(f"ctx.{what}: its client {self.client.nick} left")
        return self.client

    def _live(self, what: str) -> Client | None:  # the caller, for output: None without one or once it left (reported)
        if self.client is None or not self.client.gone:
            return self.client
        self._server.context_expired(self.plugin, what, self.client)
        return None

    @property
    def _server(self) -> Host:  # the host, on the loop thread only (names the calling method otherwise)
        check_loop_thread(self._srv)
        return self._srv

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        """From any thread (a bridge's own thread): run ``fn(*args)`` on the loop thread at its next pass,
        waking it, with this plugin's fault isolation."""
        self._srv.call_soon_threadsafe(fn, args, self.plugin)

    @property
    def now(self) -> Now:
        """``ctx.now()``: the wall clock, Unix seconds (``float``; the kit's fake clock moves it). ``ctx.now``
        uncalled, as a number: the loop's monotonic clock at the start of the pass (as before API 1.0; use
        ``ctx.monotonic()``)."""
        return Now(self._srv.now, self._srv.wall_clock)

    def monotonic(self) -> float:
        """The loop's monotonic clock in seconds (``float``; the kit's fake clock, from 0.0): for timeouts."""
        return self._srv.monotonic()

    @property
    def data_dir(self) -> Path:
        """This plugin's own folder, ``DATA_DIR/plugins/<plugin>/`` (a ``Path``), created on first use."""
        return self._srv.plugin_folder(self.plugin)

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """``with ctx.transaction() as db:``: the block in one ``BEGIN IMMEDIATE`` transaction on ``ctx.store``
        (``COMMIT``; ``ROLLBACK`` and re-raise if it raises; not re-entrant). Loop thread only. See
        :func:`chatroom.model.store.transaction`."""
        return transaction(self._server.plugin_store(self.plugin))

    @property
    def command(self) -> RunningCommand:
        """For a command call, the :class:`~chatroom.plugins.commands.Command` being run (the subcommand
        when one was named), through a proxy that is falsy in hooks; calling it, ``ctx.command(name)``,
        is the deprecated lookup (use :meth:`lookup_command`). Any thread."""
        return RunningCommand(self._command, self.lookup_command)

    # -- who and where -----------------------------------------------------------------------------
    @property
    def nick(self) -> str:
        """The calling client's nick (``""`` for server events)."""
        return self.client.nick if self.client else ""

    @property
    def room(self) -> Room:
        """The calling client's current room (the default room for server events, or when the client
        is in no room); in ``chat_message``, the room the line is said in. A client part: see :attr:`expired`."""
        client = self._live("room")
        if client is not None and self._room is not None:
            return self._room
        return (client.room if client else None) or self._server.lobby

    def find(self, nick: str) -> Client | None:
        """The connected client named *nick* (case-insensitive), or None."""
        return self._server.find_client(nick)

    def members(self) -> list[Client]:
        """The clients in the caller's room, in join order."""
        return list(self.room.members.values())

    # -- per-plugin resources ----------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        """A dict private to this plugin, kept for the server's lifetime."""
        return self._server.plugin_state(self.plugin)

    @property
    def store(self) -> sqlite3.Connection:
        """This plugin's SQLite connection (``DATA_DIR/plugins/<plugin>.sqlite3``), opened on first use. WAL, autocommit
        (``isolation_level=None``: ``with store:`` gives no atomicity; group writes with :meth:`transaction`). Loop
        thread only. Migrations: :mod:`chatroom.model.store`."""
        return self._server.plugin_store(self.plugin)

    @property
    def config(self) -> Mapping[str, Any]:
        """This plugin's settings, read-only (empty when it has none). They come from the ``[plugins.NAME]`` table of
        the server's ``--config`` TOML file (``NAME`` is the plugin's name, as ``/plugins`` shows it), or from
        ``chatroom_room(config={NAME: {...}})`` in the test kit. Values are TOML types (``str``, ``int``, ``float``,
        ``bool``, lists, tables). Example: ``ctx.config.get("words", [])``."""
        return self._srv.plugins.config_for(self.plugin)

    @property
    def log(self) -> logging.Logger:
        """A logger for this plugin; records are tagged ``[GENERAL]`` unless
        given ``extra={"category": "ERROR"}`` (or use ``log.error``)."""
        return logging.getLogger("chatroom.plugin." + self.plugin)

    # -- output ------------------------------------------------------------------------------------
    def reply(self, text: str) -> None:
        """Send one line (``str``, no newline) to the caller (see :attr:`expired`)."""
        if (client := self._live("reply")) is not None:
            self._server.send_line(client, text)

    def send(self, to: Client | str, text: str) -> bool:
        """Send one line to the client *to* (or the nick *to*); False if there is no such client."""
        if (client := self._member(to)) is not None:
            self._server.send_line(client, text)
        return client is not None

    def _member(self, to: Client | str) -> Client | None:
        member = self._server.find_client(to) if isinstance(to, str) else to
        return None if member is None or member.gone else member

    def private(self, to: Client | str, text: str, *, notice: bool = False) -> bool:
        """Send the caller's private line *text* to *to* as ``NICK (private): text`` (what ``/msg`` does), after
        the ``private_message`` hooks (which may rewrite or drop it); False if there is no such member or a hook
        dropped it. *notice*: an IRC ``NOTICE`` (bots never answer one). A member that cannot be reached now (of
        another server while the servers' Redis is unavailable: docs/scale-out.md): in a command, Refused (its
        caller is answered ``ERROR not delivered to NICK: ...``); elsewhere (a hook, a timer) False. Loop thread
        only."""
        target = self._member(to)
        if target is None or (self.client is not None and self._live("private") is None):
            return False
        try:
            return self._server.private(self.client, target, text, notice=notice)
        except Refused:
            if self._command is not None:
                raise
            return False

    def broadcast(self, text: str, *, include_self: bool = False, room: Room | str | None = None) -> None:
        """Send one line, as it is, to everyone in *room* (a Room or its name; default: the caller's current
        room) but the caller (the caller too if *include_self*): as :meth:`say` does."""
        target = self.room if room is None else self._server.named_room(room)
        self._server.broadcast(target, text, exclude=None if include_self else self.client)

    def say(self, room: Room | str | None = None, text: str | None = None, *, kind: str | None = None) -> None:
        """``ctx.say(room, text)``: say *text* in *room* (a Room or its name) as this plugin: every member gets
        the line as it is (``[#room] text`` where another room is current), a room event on every door (the
        browser's ``raw`` event carries the room), reported to ``message_delivered``, not recorded. Works from
        any context, a timer's whose client left too. Refused for an unknown room name. (1.0's
        ``ctx.say(text, kind=...)``, the caller chatting, still works with a DeprecationWarning: :meth:`chat`.)"""
        if room is None or text is None:
            warnings.warn("ctx.say(text) is deprecated since plugin API 1.1: use ctx.chat(text) to speak as the "
                          "caller, or ctx.say(room, text) to say something in a room", DeprecationWarning, stacklevel=2)
            return self.chat(str(text if room is None else room), kind=kind or "msg")
        if kind is not None:
            raise TypeError("ctx.say(room, text) takes no kind: ctx.chat(text, kind=...) speaks as the caller")
        self._server.broadcast(self._server.named_room(room), text)

    def stream(self, lines: Iterable[str]) -> None:
        """Send many lines to the caller, pulled lazily as its output queue drains. *lines* is any iterable of ``str``;
        it is consumed on the loop thread, at most 2,000 lines per loop pass and only while the caller's queue is below
        its 256 KiB low-water mark, so a huge listing never sits in memory and never stalls other clients. Lines later
        sent to the caller with :meth:`reply` or :meth:`send` queue behind the stream, keeping replies in order; room
        broadcasts may arrive in between."""
        if (client := self._live("stream")) is not None:
            self._server.stream(client, iter(lines), self.plugin)

    def disconnect(self, client: Client | None = None, reason: str = "disconnected") -> None:
        """Close *client* (default: the caller) once its output is sent, ``ERROR disconnected (REASON)`` last."""
        if (target := client or self.client) is not None and not target.gone:
            self._server.close_client(target, reason, flush=True, tell=reason != "quit")  # /quit got its OK

    # -- input -------------------------------------------------------------------------------------
    def capture(self, on_line: LineHandler, on_end: Callable[[Context, str], None] | None = None,
                *, terminator: str | None = None) -> None:
        """Take over the caller's next lines until :meth:`release`. Every line the caller sends (sanitized ``str``) goes
        to ``on_line(ctx, line)`` instead of chat or commands. ``on_end(ctx, reason)`` is called if the client leaves
        while captured. *terminator* is the line that ends the input (``"#"`` for a post): if the plugin is disabled
        while it holds the capture, the server discards the caller's lines up to and including the terminator, so the
        rest of the input is never broadcast as chat (without a terminator, the capture ends at once). Raises
        RuntimeError if the caller's input is already captured."""
        if (client := self._caller()).capture is not None:
            raise RuntimeError("input already captured")
        client.capture = Capture(self.plugin, on_line, on_end, terminator)

    def release(self) -> None:
        """Give the caller's input back to chat and commands."""
        if self.client is not None:
            self.client.capture = None

    def dispatch(self, line: str) -> None:
        """Handle *line* as if the caller typed it (chat or command), bypassing any capture."""
        self._server.handle_line(self._caller(), line, bypass_capture=True)

    # -- time and threads --------------------------------------------------------------------------
    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Call ``fn(*args)`` on the loop thread after *delay* seconds; returns a handle with ``cancel()``."""
        return self._server.call_later(delay, fn, *args, plugin=self.plugin)

    def run_in_thread(self, fn: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None],
                      *, serial: bool = False) -> None:
        """Run blocking ``fn()`` on a worker thread; then ``on_done(result, error)`` on the loop thread. Without
        *serial*: a shared pool, completion order undefined. ``serial=True``: one at a time, in submission order, on
        this plugin's own worker thread. ``fn`` must not use the context. Queued jobs and their ``on_done`` still run at
        shutdown (5 s at most), before the ``shutdown`` hook."""
        self._server.run_in_thread(fn, on_done, plugin=self.plugin, serial=serial)

    # -- names, rooms and history ------------------------------------------------------------------
    def rename(self, nick: str) -> None:
        """Give the caller the nick *nick* (everyone sharing a room hears it; ``nick_changed`` hooks run). Raises
        :class:`~chatroom.plugins.commands.CommandError`-compatible :class:`~chatroom.model.errors.Refused` if it is
        invalid, taken or looks like (same confusable skeleton as) another member's nick."""
        self._server.set_nick(self._caller(), nick)

    def set_caps(self, caps: Iterable[str]) -> frozenset[str]:
        """Add capabilities to the caller's (``binary``: frames; ``tags``: message tags on room lines);
        returns them all."""
        return self._caller().add_caps(caps)

    def rooms(self) -> list[Room]:
        """Every room listed to the caller, by name (docs/protocol.md, "Room lifetime"); see :meth:`may_read`."""
        return self._server.rooms(self.client)

    def find_room(self, name: str) -> Room | None:
        """The room called *name* (``#name`` or ``name``, any case; a lingering one too), or None."""
        return self._server.find_room(name)

    def may_read(self, room: Room, member: Client | None = None) -> bool:
        """May *member* (default: the caller; none: the server) read *room*'s history, members and topic?
        (:mod:`chatroom.model.access`: a member reads, a banned viewer never, a keyed room only its members.)"""
        return self._server.read_refusal(member or self.client, room) is None

    def require_read(self, room: Room) -> None:
        """Raise Refused (``you are banned from #den``, ``#den has a key: ...``) unless :meth:`may_read`."""
        if (reason := self._server.read_refusal(self.client, room)) is not None:
            raise Refused(reason)

    def join(self, name: str, key: str | None = None) -> tuple[Room, bool]:
        """Put the caller in room *name* (created if new, owned by the caller's account) and make it current.
        Returns ``(room, joined)``: *joined* is False when the caller was in it already (the room just
        became current). Raises Refused for a bad room name, what the room's rules refuse
        (:func:`chatroom.model.access.join_refusal`: a ban, a key, invite-only, full), or, for a new room, a
        caller creating rooms too fast or a server at ``--max-rooms`` (docs/protocol.md, "Room lifetime")."""
        return self._server.enter(self._caller(), name, key)

    def replay_recent(self, room: Room) -> int:
        """Send the caller the last lines of *room* (``--history-on-join`` of them), marked as history."""
        return self._server.replay_recent(self._caller(), room)

    def part(self, room: Room, reason: str = "") -> None:
        """Take the caller out of *room* (announced); its current room becomes the last one it joined."""
        self._server.part(self._caller(), room, reason)

    def chat(self, text: str, *, kind: str = "msg") -> None:
        """The caller says *text* in its current room, as if typed (``NICK: text``; ``kind="me"``: ``* NICK text``),
        after the ``chat_message`` hooks, recorded in the history. (``ctx.say(text)`` in plugin API 1.0.)"""
        self._server.chat(self._caller(), text, kind)

    def set_topic(self, room: Room, text: str) -> None:
        """Set *room*'s topic (``""`` clears it): persisted, recorded, told to the room."""
        self._server.set_topic(self._caller(), room, text)

    def history(self, room: Room, *, last: int | None = None, since: int | None = None,
                before: int | None = None) -> list[Entry]:
        """Stored lines of *room*, oldest first: the *last* N, those after id *since*, or the N=*last* before id
        *before* (N 1..500, else ValueError), as the caller may read them (Refused if not, :meth:`may_read`)."""
        return self._server.history(self.client, room, last=last, since=since, before=before)

    def search(self, query: str | SearchCursor, *, limit: int = 20, show: bool = False) -> SearchPage:
        """A page (1..200 hits) of a full-text search of what the caller may read ("Search" in docs/plugins.md);
        *show*: send the hits to the caller too. Refused: a query that cannot run, a ``#room`` it may not read."""
        return self._server.search(self.client, query, limit, show)

    def replay(self, entries: Iterable[Entry]) -> int:
        """Send history *entries* to the caller, marked as history (``[HH:MM] ``); returns how many."""
        return self._server.replay(self._caller(), entries)

    def commands(self) -> list[Command]:
        """Every registered command, by name (what ``/help`` lists)."""
        return self._server.plugins.registry.sorted()

    def lookup_command(self, name: str) -> Command | None:
        """The command called *name* (or with that alias, any case, with or without ``/``), or None. (Before API 1.0
        this was ``ctx.command(name)``; ``ctx.command`` is now the command being run.)"""
        return self._server.plugins.registry.get(name.lstrip("/"))

    def plugins(self) -> list[PluginInfo]:
        """What is known of every loaded plugin (name, source, version, hooks, commands, faults)."""
        return list(self._server.plugins.info.values())

    # -- permissions and moderation (the model's rule: chatroom.model.room.permitted) -------------
    @property
    def is_admin(self) -> bool:
        """True if the caller is logged in to an account named in the server's ``admins`` (config file)."""
        return self.admin(self.client)

    def admin(self, member: Client | None) -> bool:
        """True if *member* is logged in to an admin's account."""
        return self._server.is_admin(member)

    def allowed(self, requires: str, room: Room | None = None) -> bool:
        """May the caller do what needs *requires* (``"anyone"``, ``"account"``, ``"operator"``,
        ``"admin"``) in *room* (default: its current room)? The check the core makes for commands."""
        room = self.client.room if room is None and self.client is not None else room
        return permitted(requires, self.client, room, self.is_admin)

    def require(self, requires: str, what: str, room: Room | None = None) -> None:
        """Raise Refused ``permission denied: WHAT needs a room operator`` (etc.) unless :meth:`allowed`."""
        if not self.allowed(requires, room):
            raise Refused(denied(requires, what))

    def may(self, command: Command) -> bool:
        """True if the caller may use *command* (its ``requires``; its plugin enabled): what ``/help`` lists."""
        return self._server.plugins.is_active(command.plugin) and self.allowed(command.requires)

    def address(self, member: Client | None = None) -> str:
        """*member*'s (default: the caller's) address without the port, ``""`` if unknown."""
        return str(getattr(member or self.client, "host", "") or "")

    def moderate(self, room: Room, action: str, *, mode: str = "") -> None:
        """Persist ``room.rules``, tell *room* ``* ACTION`` (*mode*: as an IRC mode, ``"+o bob"``) and log who did it."""
        self._server.mode(room, self.client, mode, action)  # persisted, then told
        self.log.info("%s: %s (by %s, account %s)", room.name, action, self.nick, self.account or "-")

    def kick(self, member: Client, room: Room, notice: str) -> None:
        """Take *member* out of *room*: the room and *member* are told ``* NOTICE`` (IRC: ``KICK``), always. Raises
        Refused when *member* cannot be reached now (of another server while Redis is unavailable)."""
        self._server.part(member, room, notice=notice, by=self.nick)

    def set_plugin_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable the plugin *name* at run time (admins: ``/plugins enable|disable NAME``). Raises Refused
        for an unknown plugin, for ``core`` (it holds ``/plugins``), or to enable a plugin switched off after faults."""
        self._server.plugins.set_enabled(name, enabled)

    # -- accounts ----------------------------------------------------------------------------------
    @property
    def account(self) -> str | None:
        """The account the caller is logged in to (``str``, as registered), or None (a guest)."""
        return self.client.account if self.client else None

    @property
    def accounts(self) -> AccountStore:
        """The server's account store (``DATA_DIR/accounts.sqlite3``; see :class:`chatroom.AccountStore`). Loop thread
        only: compute password hashes with :func:`chatroom.hash_password` and :func:`chatroom.verify_password` in
        ``ctx.run_in_thread``, never on the loop."""
        return self._server.accounts

    def login(self, account: str) -> None:
        """Log the caller in to *account* (a registered account's name) and give it that nick. Checks no password: the
        caller (the ``accounts`` built-in) has. Whoever else holds the nick or a look-alike of it (a guest, or another
        connection logged in to the same account) is logged out, renamed back to its ``guestN`` nick and told ``* you
        are guestN now: ACCOUNT logged in``. Everyone sharing a room hears the renames; ``nick_changed`` hooks run.
        Raises Refused if *account* is not registered."""
        self._server.log_in(self._caller(), account)

    # -- files -------------------------------------------------------------------------------------
    def start_transfer(self, name: str, size: int) -> int:
        """Open a relay of the file *name* (*size* bytes) from the caller to the room's other frame-capable
        members; returns the transfer id. Raises :class:`~chatroom.plugins.commands.CommandError` with the
        reason if the caller never sent ``/caps binary``, *size* is negative or over ``--max-file-size``, the
        caller has too many transfers open, nobody else can receive files, or a ``file_offered`` hook refuses."""
        return self._server.start_transfer(self._caller(), name, size)

    def answer_offer(self, transfer_id: int | None, accept: bool) -> None:
        """The caller accepts (or declines) the file offered to it as *transfer_id*; the relay
        replies ``OK accepted ...``/``OK declined ...`` itself. Raises Refused for an unknown or
        expired offer (see docs/protocol.md, "Consent and quotas")."""
        self._server.answer_offer(self._caller(), transfer_id, accept)

    def set_file_policy(self, policy: str) -> None:
        """How offers to the caller are answered from now on: ``"ask"``, ``"all"`` or ``"none"``
        (offers already waiting are answered by ``all``/``none``). Raises Refused otherwise."""
        self._server.set_file_policy(self._caller(), policy)
