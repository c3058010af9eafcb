"""The server's side of the plugin port (:class:`chatroom.plugins.port.Host`).

:class:`ServerPort` is what every plugin context, the command dispatcher and the plugin events are bound
to: it implements each service of the port with the server's parts (the hub, the history, the loop, the
relay, the dispatcher) and keeps what belongs to the plugins (each plugin's ``ctx.state`` and ``ctx.store``,
the record of contexts used after their client left). The server builds one (``Server.port``); so does
the test kit, through the same server. A new door or a shared-state backend changes the parts behind
these methods, not the plugins. Loop thread only, except where :class:`~chatroom.plugins.port.Host` says.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from chatroom.model import access
from chatroom.model.errors import Refused
from chatroom.model.checkpoint import Checkpointer, no_autocheckpoint
from chatroom.model.store import close_store, open_store, plugin_store_path
from chatroom.net.logs import CONN, ERR
from chatroom.wire.render import hit_line
from chatroom.plugins.threads import ContextExpired

if TYPE_CHECKING:
    from chatroom.model.accounts import AccountStore
    from chatroom.model.errors import SpeakRefused
    from chatroom.model.history import Entry, History
    from chatroom.model.hub import Hub
    from chatroom.model.member import Member
    from chatroom.model.room import Room
    from chatroom.model.search import SearchCursor, SearchPage
    from chatroom.net.connection import Connection
    from chatroom.net.loop import Loop
    from chatroom.net.relay import Relay
    from chatroom.net.scheduler import Timer
    from chatroom.plugins.dispatch import Dispatcher
    from chatroom.plugins.events import PluginEvents
    from chatroom.plugins.manager import PluginHost
    from chatroom.plugins.port import Delivered, Membership

__all__ = ["ServerPort"]

log = logging.getLogger("chatroom.server")


class Assembly(Protocol):
    """The parts of :class:`chatroom.server.app.Server` the port is built on (named here: the server imports
    this module)."""

    hub: Hub
    history: History
    loop: Loop
    relay: Relay
    dispatcher: Dispatcher
    events: PluginEvents
    plugins: PluginHost
    accounts: AccountStore
    data_dir: Path
    loop_thread: int | None
    wall_clock: Callable[[], float]

    def send_line(self, member: Member, text: str) -> None: ...
    def send_private(self, nick: str, account: str | None, target: Member, text: str, *,
                     notice: bool = False) -> None: ...
    def broadcast(self, room: Room, text: str, exclude: Member | None = None) -> None: ...
    def stream(self, member: Member, lines: Iterator[str], plugin: str) -> None: ...
    def close_client(self, member: Member, reason: str, *, flush: bool = False, tell: bool = False) -> None: ...
    def call_hook(self, hook: str, client: Member | None, /, **kwargs: Any) -> list[Any]: ...
    def find_client(self, nick: str) -> Member | None: ...
    def set_nick(self, member: Member, nick: str) -> None: ...
    def replay_recent(self, member: Member, room: Room) -> int: ...
    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any, plugin: str = "core") -> Timer: ...
    def run_in_thread(self, fn: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None],
                      *, plugin: str = "core", serial: bool = False) -> None: ...


class ServerPort:
    """The plugin port of one server (*server*: its assembly). ``strict``: a context used after its client left
    raises :class:`~chatroom.plugins.threads.ContextExpired` (the kit) instead of being logged once and
    ignored."""

    def __init__(self, server: Assembly, *, checkpoints: bool = True) -> None:
        self._server = server
        self._state: dict[str, dict[str, Any]] = {}
        self._stores: dict[str, sqlite3.Connection] = {}
        self._checkpoints: list[Checkpointer] | None = [] if checkpoints else None  # None: the kit, no threads
        self._told: set[tuple[str, str]] = set()  # (plugin, method) used after the client left, logged once
        self.strict = False

    # -- the plugin floor's own parts ---------------------------------------------------------
    plugins = property(lambda self: self._server.plugins, doc="The plugin manager.")
    data_dir = property(lambda self: self._server.data_dir, doc="The server's data folder.")

    def plugin_state(self, plugin: str) -> dict[str, Any]:
        """*plugin*'s private dict, kept for the server's lifetime (``ctx.state``)."""
        return self._state.setdefault(plugin, {})

    def plugin_folder(self, plugin: str) -> Path:
        """*plugin*'s own folder, ``DATA_DIR/plugins/<plugin>/``, created on first use. Any thread."""
        folder = plugin_store_path(self.data_dir, plugin).with_suffix("")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def plugin_store(self, plugin: str) -> sqlite3.Connection:
        """*plugin*'s SQLite connection, opened on first use (see :func:`chatroom.model.store.open_store`). Its
        commits run on the loop but never checkpoint (the ``fsync`` that stalled the room): a
        :class:`~chatroom.model.checkpoint.Checkpointer` thread watching the file does it."""
        store = self._stores.get(plugin)
        if store is None:
            path = plugin_store_path(self.data_dir, plugin)
            store = self._stores[plugin] = open_store(path)
            if self._checkpoints is not None:
                no_autocheckpoint(store)
                self._checkpoints.append(Checkpointer(path, name=f"chatroom-{plugin}-checkpoint", watch=True))
        return store

    def close(self) -> None:
        """Close every plugin store (the server's last step)."""
        for checkpointer in self._checkpoints or ():
            checkpointer.close()
        for store in self._stores.values():
            close_store(store)
        self._stores.clear()

    def context_expired(self, plugin: str, what: str, member: Member) -> None:
        """See :meth:`chatroom.plugins.port.Host.context_expired`."""
        error = ContextExpired(f"ctx.{what} of plugin {plugin} used after its client {member.nick} (connection "
                               f"{member.id}) left; see docs/plugins.md, \"How long a ctx stays usable\"")
        if self.strict:
            raise error
        if (plugin, what) not in self._told:
            self._told.add((plugin, what))
            log.error("%s; ignored (logged once per plugin and method)", error, extra=ERR)

    # -- time and threads ---------------------------------------------------------------------
    loop_thread = property(lambda self: self._server.loop_thread, doc="The loop's thread id (None: not started).")
    now = property(lambda self: self._server.loop.now, doc="The loop's clock at the start of this pass.")

    def monotonic(self) -> float:
        """The loop's clock now (seconds)."""
        return float(self._server.loop.clock())

    def wall_clock(self) -> float:
        """Unix seconds."""
        return float(self._server.wall_clock())

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any, plugin: str = "core") -> Timer:
        """See :meth:`chatroom.net.scheduler.Scheduler.call_later`."""
        return self._server.call_later(delay, fn, *args, plugin=plugin)

    def call_soon_threadsafe(self, fn: Callable[..., Any], args: tuple[Any, ...], plugin: str) -> None:
        """Any thread: ``fn(*args)`` on the loop at its next pass."""
        self._server.loop.scheduler.call_soon_threadsafe(fn, args, plugin)

    def run_in_thread(self, fn: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None], *,
                      plugin: str = "core", serial: bool = False) -> None:
        """See :meth:`chatroom.net.scheduler.Scheduler.run_in_thread`."""
        self._server.run_in_thread(fn, on_done, plugin=plugin, serial=serial)

    def cancel_timers(self, plugin: str) -> None:
        """Cancel *plugin*'s pending timers."""
        self._server.loop.scheduler.cancel_plugin(plugin)

    # -- members ------------------------------------------------------------------------------
    def is_admin(self, member: Member | None) -> bool:
        """Is *member* logged in to an admin's account (the server's rule, ``Rooms.is_admin``)?"""
        return member is not None and self._server.hub.rooms.is_admin(member.account)

    accounts = property(lambda self: self._server.accounts, doc="The account store.")

    def find_client(self, nick: str) -> Member | None:
        """The member called *nick*, or None."""
        return self._server.find_client(nick)

    def send_line(self, member: Member, text: str) -> None:
        """One line to *member*."""
        self._server.send_line(member, text)

    def send_private(self, nick: str, account: str | None, target: Member, text: str, *, notice: bool = False) -> None:
        """A private line to *target*."""
        self._server.send_private(nick, account, target, text, notice=notice)

    def stream(self, member: Member, lines: Iterator[str], plugin: str) -> None:
        """Many lines to *member*, as its queue drains."""
        self._server.stream(member, lines, plugin)

    def close_client(self, member: Member, reason: str, *, flush: bool = False, tell: bool = False) -> None:
        """Disconnect *member*."""
        self._server.close_client(member, reason, flush=flush, tell=tell)

    def set_nick(self, member: Member, nick: str) -> None:
        """Rename *member* (Refused if not allowed)."""
        self._server.set_nick(member, nick)

    def private(self, sender: Member | None, target: Member, text: str, *, notice: bool = False) -> bool:
        """See :meth:`chatroom.plugins.dispatch.Dispatcher.private`."""
        return self._server.dispatcher.private(sender, target, text, notice=notice)

    def log_in(self, member: Member, account: str) -> None:
        """See :meth:`chatroom.plugins.port.MemberPort.log_in`."""
        hub = self._server.hub
        registered = self._server.accounts.registered(account)
        if registered is None or registered.casefold() != account.casefold():
            raise Refused(f"no account {account}")
        account = registered
        if member.nick != account and (banned := hub.rooms.nick_refusal(member)) is not None:
            raise banned  # the rename below would be refused: refuse the login before it changes anything
        holders = {hub.find(account), hub.nicks.alike(account)} - {None, member}
        for other in holders:
            assert other is not None
            hub.set_account(other, None)
            old = hub.to_guest(other)
            log.info("%s is now known as %s (%s logged in)", old, other.nick, account, extra=CONN)
            self.send_line(other, f"* you are {other.nick} now: {account} logged in")
            self.call_hook("nick_changed", other, old=old, new=other.nick)
        hub.set_account(member, account)
        if not self.is_admin(member):  # an account ban holds whatever connection it logs in from (before the
            for room in list(member.rooms.values()):  # rename, which a room banning the account would refuse)
                if room.rules.banned(account, ""):
                    hub.part(member, room, notice=f"{account} is banned from {room.label}", by=member.nick)
        if member.nick != account:
            self.set_nick(member, account)
        else:
            self._server.events.named(member)

    def handle_line(self, member: Member, line: str, *, bypass_capture: bool = False) -> float:
        """*line* as if *member* typed it."""
        return self._server.dispatcher.handle_line(cast("Connection", member), line, bypass_capture=bypass_capture)

    def call_hook(self, hook: str, member: Member | None, /, **kwargs: Any) -> list[Any]:
        """*hook* on every plugin."""
        return self._server.call_hook(hook, member, **kwargs)

    def notify_admins(self, text: str) -> None:
        """``text`` to every connected admin."""
        for member in list(self._server.hub.members.values()):
            if self.is_admin(member):
                self.send_line(member, text)

    # -- rooms --------------------------------------------------------------------------------
    lobby = property(lambda self: self._server.hub.default_room, doc="The default room.")

    def rooms(self, reader: Member | None) -> list[Room]:
        """Every room listed to *reader*, by name."""
        return self._server.hub.rooms.listed(self._server.hub.rooms.viewer(reader))

    def find_room(self, name: str) -> Room | None:
        """The room called *name*, or None."""
        return self._server.hub.room(name)

    def named_room(self, room: Room | str) -> Room:
        """*room*, or the room it names (Refused if none)."""
        return self._server.hub.rooms.named(room) if isinstance(room, str) else room

    def read_refusal(self, reader: Member | None, room: Room) -> str | None:
        """The model's room access rule for *reader* (None: the server)."""
        return access.read_refusal(self._server.hub.rooms.viewer(reader), room)

    def speak_refusal(self, member: Member, room: Room) -> SpeakRefused | None:
        """The model's speak rule for *member* in *room* (:meth:`chatroom.model.rooms.Rooms.speak_refusal`)."""
        return self._server.hub.rooms.speak_refusal(member, room)

    def enter(self, member: Member, name: str, key: str | None) -> tuple[Room, bool]:
        """*member* into the room *name* (the model's join rule: :meth:`chatroom.model.hub.Hub.enter`)."""
        return self._server.hub.enter(member, name, key)

    def part(self, member: Member, room: Room, reason: str = "", *, notice: str = "", by: str = "") -> None:
        """*member* out of *room* (*by*: kicked, :meth:`chatroom.model.hub.Hub.kick`, Refused if unreachable)."""
        if by:
            self._server.hub.kick(member, room, notice, by=by, reason=reason)
        else:
            self._server.hub.part(member, room, reason, notice=notice)

    def say(self, member: Member, room: Room, text: str, kind: str) -> Entry:
        """*member* says *text* in *room*."""
        return self._server.hub.say(member, room, text, kind)

    def chat(self, member: Member, text: str, kind: str) -> None:
        """*member* chats in its current room, through the hooks."""
        self._server.dispatcher.chat(cast("Connection", member), text, kind)

    def broadcast(self, room: Room, text: str, exclude: Member | None = None) -> None:
        """*text*, as it is, to *room*."""
        self._server.broadcast(room, text, exclude)

    def mode(self, room: Room, by: Member | None, change: str, text: str) -> None:
        """A moderation change persisted and told to *room*."""
        self._server.hub.mode(room, by, change, text)

    def set_topic(self, member: Member, room: Room, text: str) -> None:
        """*room*'s topic, set by *member*."""
        self._server.hub.set_topic(member, room, text)

    def save_rules(self, room: Room) -> None:
        """Persist ``room.rules`` (the test kit's operators; plugins persist through :meth:`mode`)."""
        self._server.hub.save_rules(room)

    def history(self, reader: Member | None, room: Room, *, last: int | None, since: int | None,
                before: int | None) -> list[Entry]:
        """Stored lines of *room*, as *reader* may read them (the model's one way to read a room)."""
        rooms = self._server.hub.rooms
        return rooms.read(rooms.viewer(reader), room, last=last, since=since, before=before)

    def search(self, reader: Member | None, query: str | SearchCursor, limit: int, show: bool) -> SearchPage:
        """A page of a full-text search of what *reader* may read (see :meth:`chatroom.model.rooms.Rooms.search`);
        with *show*, *reader* is sent the hits (``Member.hit``)."""
        rooms = self._server.hub.rooms
        page = rooms.search(rooms.viewer(reader), query, limit=limit)
        if show and reader is not None:
            self._server.hub.flush_for(reader)
            for entry in page.hits:
                reader.hit(entry, hit_line(entry, reader.tagged))
        return page

    def replay(self, member: Member, entries: Iterable[Entry]) -> int:
        """History *entries* to *member*."""
        return self._server.hub.replay(member, entries)

    def replay_recent(self, member: Member, room: Room) -> int:
        """The last lines of *room* to *member*."""
        return self._server.replay_recent(member, room)

    def watch_rooms(self, delivered: Delivered | None, membership: Membership | None) -> None:
        """Report fanned-out lines to *delivered*, joins and leaves to *membership*: those of this server's own
        members (with ``--redis``, a member of another server, ``"remote"`` in its caps, is reported by its own
        server: a kick made here runs ``member_left`` there once, docs/plugins.md "Several servers")."""
        self._server.hub.fanout.on_delivered = delivered
        self._server.hub.on_membership = membership if membership is None else _own(membership)

    # -- files --------------------------------------------------------------------------------
    def start_transfer(self, member: Member, name: str, size: int) -> int:
        """Offer a file from *member* to its room."""
        return self._server.relay.start(cast("Connection", member), name, size)

    def answer_offer(self, member: Member, transfer_id: int | None, accept: bool) -> None:
        """*member* answers an offer."""
        self._server.relay.answer(cast("Connection", member), transfer_id, accept)

    def set_file_policy(self, member: Member, policy: str) -> None:
        """How offers to *member* are answered."""
        self._server.relay.set_policy(cast("Connection", member), policy)


def _own(membership: Membership) -> Membership:
    """*membership*, told only of this server's own members."""
    def told(member: Member, room: Room, joined: bool, reason: str) -> None:
        if "remote" not in member.caps:
            membership(member, room, joined, reason)
    return told
