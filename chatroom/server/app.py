"""The server: the floors wired together.

:class:`Server` builds the loop (:mod:`chatroom.net.loop`), the room model (:mod:`chatroom.model.hub`)
with its history, the plugin host, the command dispatcher, the file relay and the line transport over
TCP, and is the application the transport calls (``on_connect``, ``on_line``, ``on_frame``, ``on_close``)
and the services the relay uses (``send_line``, ``broadcast``, ``call_hook``...); plugins reach it only
through its plugin port (``port``, :class:`chatroom.server.port.ServerPort`). Every
part is given its collaborators at construction: the test kit builds the same server from a fake
selector, clock and listener (:mod:`chatroom.testing`).
"""

from __future__ import annotations

import logging
import selectors
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from chatroom.model.accounts import AccountStore
from chatroom.model.errors import JoinRefused
from chatroom.model.history import MAX_FETCH, History
from chatroom.model.hub import Hub
from chatroom.model.member import Member
from chatroom.model.resumable import ResumeBook
from chatroom.model.room import Room
from chatroom.net.filelinks import link_base
from chatroom.net.connection import Connection
from chatroom.net.logs import CONN, ERR
from chatroom.net.loop import DEFAULT_MAX_QUEUE, Loop
from chatroom.net.relay import Relay
from chatroom.net.scheduler import Scheduler, Timer
from chatroom.net.tcp import LineTransport
from chatroom.plugins.context import Capture, Context
from chatroom.plugins.dispatch import Dispatcher
from chatroom.plugins.events import PluginEvents
from chatroom.plugins.manager import PluginHost
from chatroom.server.claim import Claim, take
from chatroom.server.doors import open_doors
from chatroom.server.gate import PasswordGate
from chatroom.server.keeper import HistoryKeeper
from chatroom.server.options import DEFAULT_MAX_FILE_SIZE, ServerOptions
from chatroom.server.port import ServerPort
from chatroom.server.scale import attach
from chatroom.wire.lines import encode_line, sanitize

__all__ = ["DEFAULT_MAX_FILE_SIZE", "DEFAULT_MAX_QUEUE", "Server", "ServerOptions", "default_plugins"]

log = logging.getLogger("chatroom.server")


def _connection(member: Member) -> Connection:
    """*member* as the loop's connection (of the door it came through); TypeError for any other member."""
    if not isinstance(member, Connection):
        raise TypeError(f"{member!r} is not a connection of this server")
    return member


class Server:
    """A chat server bound at construction; run it with :meth:`serve_forever`.

    *options* (:class:`~chatroom.server.options.ServerOptions`, checked already) configure it: where it listens,
    budgets and limits (docs/protocol.md, "Budgets and limits"), rooms and history, files, TLS, the web door, admins
    and the server password. The rest are its parts, injectable for the test kit: *plugins* (the plugin host;
    default: the built-ins), ``selector``, ``clock`` (loop seconds), ``wall_clock`` (Unix seconds for message
    times), ``listener`` (a bound listening socket, or the kit's fake; else one is bound as the options say),
    ``waker``, ``inline_threads`` (``ctx.run_in_thread`` work runs on the loop thread), and *claim*: the data dir's
    lock and the bound listeners (:func:`chatroom.server.claim.take`, which the command line calls before it loads
    plugins; else the server takes it here). ``address`` is the bound ``(host, port)``, ``tls_address`` and
    ``web_address`` the TLS and web ones (or None). A server password gates every connection (``gate``:
    :class:`~chatroom.server.gate.PasswordGate`). ``irc_addresses``: the IRC door's (clear first, then TLS).
    :meth:`shutdown` may be called from any thread; the rest only from the loop thread. Raises
    :class:`~chatroom.server.checks.StartupError` (one line) if the data dir is another server's or an address
    cannot be bound, sqlite3.Error if the history cannot be opened.
    """

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        plugins: PluginHost | None = None,
        selector: selectors.BaseSelector | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        listener: Any = None, waker: Any = None,
        inline_threads: bool = False,
        claim: Claim | None = None,
    ) -> None:
        self.options = options = options if options is not None else ServerOptions()
        #: The data dir's lock and the bound listeners (chatroom.server.claim); the lock goes in close().
        self.claim = claim if claim is not None else take(options, listener=listener)
        self.data_dir = options.data_dir
        self.max_file_size = options.max_file_size
        self.history_on_join = min(options.history_on_join, MAX_FETCH)
        self.plugins = plugins if plugins is not None else default_plugins(options)
        self.wall_clock = wall_clock  # ctx.now(); the loop's clock is ctx.monotonic()
        self.loop_thread: int | None = None  # the thread that ran start(): contexts check it (chatroom.plugins.threads)
        self.loop = Loop(selector=selector, clock=clock, waker=waker, run=self.plugins.call_safely,
                         max_queue=options.max_queue)
        if inline_threads:
            self.loop.scheduler.inline = True
        self.loop.stream_fault = lambda owner, trace: self.plugins.fault(owner, trace, count=False)
        self.history = History(self.data_dir / "rooms.sqlite3", clock=wall_clock, wake=self.loop.wake,
                               inline=inline_threads, max_unsaved=options.history_max_unsaved)  # kit: no thread
        self.hub = Hub(self.history, default_room=options.default_room, announce_limit=options.announce_limit,
                       clock=wall_clock, record=options.record_history, max_rooms=options.max_rooms)
        self.accounts = AccountStore(self.data_dir / "accounts.sqlite3", post=self.loop.scheduler.call_soon_threadsafe,
                                     inline=inline_threads)  # registered nicks (ctx.accounts); writes off the loop
        self.hub.nicks.registered = self.accounts.registered
        #: Casefolded account names of the admins (the config file's ``admins``; see chatroom.model.moderation).
        self.admins = frozenset(a.casefold() for a in options.admins)
        self.hub.rooms.is_admin = lambda account: account is not None and account.casefold() in self.admins
        self.gate = PasswordGate(self, options.server_password)  # --password-file: who still must give it
        self.port = ServerPort(self, checkpoints=not inline_threads)  # what plugins see: the typed plugin port
        self.dispatcher = Dispatcher(self.port, self.plugins)
        self.events = PluginEvents(self.port, self.plugins, options.ready_grace)  # member_ready, message_delivered
        self.relay = Relay(self, clock=clock, offer_timeout=options.file_offer_timeout,
                           stall_timeout=options.file_stall_timeout,
                           files_per_hour=options.quota_files_per_hour,
                           bytes_per_day=options.quota_bytes_per_day,  # consent and quotas: chatroom.net.consent
                           book=ResumeBook(self.data_dir / "transfers.sqlite3", options.resume_keep, wall_clock))
        self.loop.on_drain = self.relay.on_drain
        #: Each pass's commit, answers held until saved, retention (chatroom.server.keeper).
        self.keeper = HistoryKeeper(self.history, self.loop, self.hub.rooms, self.relay.resumes, options.history_keep)
        self.loop.before_write += [self.hub.flush, self.keeper.commit]
        doors = open_doors(self.loop, self, self.hub, self.claim, options)  # chatroom.server.doors
        self.transport: LineTransport = doors.transport
        #: Every transport (the TLS listener beside the clear one, if any); they share ids, connections, budgets.
        self.transports: list[LineTransport] = doors.transports
        self.address, self.tls_address, self.web_address = doors.address, doors.tls_address, doors.web_address
        self.irc_addresses = doors.irc_addresses
        if self.web_address is not None:  # the IRC door's file links point at the web door
            self.relay.links.base = link_base("http" if self.claim.tls is None else "https", self.web_address[1])
        self.scaleout = (attach(options, self.loop, self.hub, self.history, self.send_line, self.transports,
                                self.accounts) if options.redis is not None else None)  # --redis: a scaleout Node
        self._left = False  # set by close() once every member got client_left

    # -- running -------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Run until :meth:`shutdown` or a signal (see :meth:`install_signal_handlers`), then close."""
        self.start()
        self.loop.serve_forever()
        self.close()

    def start(self) -> None:
        """Call the ``startup`` hook and arm the history retention (the kit calls this instead of serving)."""
        log.info("listening on %s:%d", *self.address)
        for note in self.claim.notes:
            log.info("%s", note)
        self.loop_thread = threading.get_ident()
        if self.scaleout is not None:
            self.scaleout.start()
        self.plugins.start(lambda plugin: Context(self.port, plugin, None))  # a startup that raises: plugin off
        self.events.refresh()
        self.keeper.start()

    def shutdown(self, reason: str = "server shutting down") -> None:
        """Ask the loop to stop (thread-safe); it tells the clients and closes."""
        self.loop.shutdown(reason)

    def install_signal_handlers(self) -> None:
        """Make SIGINT and SIGTERM stop the loop cleanly (main thread only)."""
        self.loop.install_signal_handlers()

    def close(self) -> None:
        """Shut down, in this order (docs/plugins.md, "Shutdown order"): stop accepting; ``client_left`` for
        every member (the reason); queued worker jobs drained and their ``on_done`` run (5 s at most, logged if
        exceeded); ``shutdown`` hook (its lines still reach the clients); every connection told the reason, output
        flushed (2 s at most), connections closed (no second ``client_left``); scale-out, history, stores closed."""
        reason = self.loop.stop_reason or "server shutting down"
        log.info("shutting down: %s", reason)
        for transport in self.transports:
            transport.shutdown()
        for conn in list(self.clients.values()):
            if conn.id not in self.gate.held:
                self.call_hook("client_left", conn, reason=reason)
        self._left = True  # on_close: client_left ran already
        self.events.stop()  # nor member_left for the connections closed below
        self.scheduler.drain(5.0)
        self.plugins.stop(lambda plugin: Context(self.port, plugin, None))  # every plugin's shutdown, once
        for conn in list(self.clients.values()):  # once per connection, whatever rooms it is in, in its door's words
            self.hub.flush_for(conn)
            conn.deliver(conn.encode_farewell(reason))
        self.loop.flush()
        deadline = time.monotonic() + 2.0
        while any(c.out for c in self.clients.values()) and time.monotonic() < deadline:
            for key, mask in self.loop.selector.select(0.05):
                if isinstance(key.data, Connection) and mask & selectors.EVENT_WRITE:
                    self.loop.write(key.data)
        for conn in list(self.clients.values()):
            conn.transport.close(conn, reason)  # a capture's on_end still runs
        self.transport.finish(1.0)  # closed gracefully: their input drained until they close (1 s at most)
        self.hub.flush()
        if self.scaleout is not None:
            self.scaleout.close()
        self.keeper.commit()
        self.port.close()
        try:
            self.history.close()
        except (sqlite3.Error, TimeoutError) as exc:
            log.error("room history: %s", exc, extra=ERR)
        log.info("room history: %s", self.history.writes.lag_report())
        self.accounts.close()
        self.relay.resumes.book.close()
        self.loop.close()
        self.claim.release()
        log.info("stopped")

    # -- the application the transport calls ------------------------------------------------
    def on_connect(self, conn: Connection, *, passed: bool = False) -> None:
        """A new connection: greet it, put it in the default room with its recent history; with a server
        password not *passed* yet, only ask for it and wait for ``/pass`` (:class:`~chatroom.server.gate.PasswordGate`);
        a door whose clients choose their rooms (``greeted`` False: IRC) gets no welcome line and no join."""
        if self.gate.needed and not passed:
            return self.gate.hold(conn)
        self.hub.add(conn)
        room = self.hub.default_room
        if not conn.greeted:
            self.call_hook("client_joined", conn)
            self.events.joined(conn)
            return self.events.named(conn)  # it chose its nick to register (IRC's NICK): ready after the welcome
        self.loop.send_line(conn, f"* Welcome to chatroom, room {room.label}. You are {conn.nick}. "
                                  "Type /nick NAME to choose a name, /help for commands.")
        try:  # the default room's rules, as for any join (a ban by address or mask, a key, invite-only, a limit)
            self.hub.enter(conn, room.name)
        except JoinRefused as exc:
            self.loop.send_line(conn, f"* {exc}" + ": /join another room" * (exc.block != "key"))
        else:
            self.replay_recent(conn, room)
        self.call_hook("client_joined", conn)
        self.events.joined(conn)

    def on_line(self, conn: Connection, text: str) -> float:
        """One line from *conn*; returns its flood cost. A line that changed a room's state (a topic, a new
        room, its rules) has its answer held until that change is committed (:meth:`answer_when_saved`)."""
        if conn.id in self.gate.held:
            return self.gate.line(conn, sanitize(text).strip())
        records = self.history.records
        changes = records.version
        try:
            return self.dispatcher.handle_line(conn, text)
        finally:
            if records.version != changes:
                self.keeper.answer_when_saved(conn)

    def say_private(self, member: Member, target: Member, text: str, *, notice: bool = False) -> bool:
        """A private line (*notice*: an IRC NOTICE) from *member* to *target* through the ``private_message``
        hooks (what ``/msg`` does); False if a hook dropped it."""
        return self.dispatcher.private(member, target, text, notice=notice)

    def on_frame(self, conn: Connection, frame: Any) -> float:
        """One frame from *conn* (file transfer); returns its flood cost."""
        return self.relay.on_frame(conn, frame)

    def check_frame(self, conn: Connection, meta: str, size: int) -> str | None:
        """May *conn* send this frame? (see :meth:`chatroom.net.relay.Relay.check_frame`)."""
        return self.relay.check_frame(conn, meta, size)

    def on_close(self, conn: Connection, reason: str) -> None:
        """*conn* stops taking part: end its capture, leave its rooms, end its transfers, tell plugins."""
        if self.gate.held.pop(conn.id, None) is not None:  # never got past the server password: nothing to undo
            return log.info("%s disconnected (%s)", conn.nick, reason, extra=CONN)
        capture: Capture | None = conn.capture
        if capture is not None:
            conn.capture = None
            if capture.on_end is not None:
                ctx = Context(self.port, capture.plugin, conn)
                self.plugins.run_for_client(capture.plugin, capture.on_end, ctx, reason)
        self.hub.remove(conn, reason)
        log.info("%s disconnected (%s)", conn.nick, reason, extra=CONN)
        self.relay.on_client_left(conn)
        self.events.left(conn)
        self.dispatcher.left(conn)
        if not self._left:
            self.call_hook("client_left", conn, reason=reason)

    def answer_when_saved(self, member: Member) -> None:
        """Hold what *member* is sent until its room-store changes are committed
        (:meth:`chatroom.server.keeper.HistoryKeeper.answer_when_saved`)."""
        self.keeper.answer_when_saved(member)

    # -- services for plugins, the dispatcher and the relay ------------------------------------------
    @property
    def clients(self) -> dict[int, Connection]:
        """Connection id -> every open connection."""
        return self.transport.connections

    now = property(lambda self: self.loop.now, doc="The loop's clock at the start of this pass (seconds).")
    lobby = property(lambda self: self.hub.default_room, doc="The default room (a Room).")

    @property
    def max_queue(self) -> int:
        """Every connection's output budget in bytes."""
        return self.loop.max_queue

    def send_line(self, member: Member, text: str) -> None:
        """Queue one line for *member*, after its rooms' pending lines and behind any listing it is streaming."""
        self.hub.flush_for(member)
        if isinstance(member, Connection):
            self.loop.send_line(member, text)
        elif not member.gone:  # another process's member (--redis: chatroom.scaleout.remote): its node gets it
            member.deliver(encode_line(text))

    def send_private(self, nick: str, account: str | None, target: Member, text: str, *, notice: bool = False) -> None:
        """A ``/msg`` *text* from *nick* to *target* (a line ``NICK (private): text``, or a ``private`` event)."""
        self.hub.private(nick, account, target, text, notice=notice)

    def send_bytes(self, member: Member, data: bytes | memoryview) -> None:
        """Queue raw bytes (frames) for *member*; only for members with ``"binary"`` in caps."""
        self.hub.flush_for(member)
        member.deliver(data)

    def broadcast(self, room: Room, text: str, exclude: Member | None = None) -> None:
        """Send the line *text* to everyone in *room* but *exclude*, fanned out at the end of the pass."""
        self.hub.post(room, text, exclude)

    def stream(self, member: Member, lines: Iterator[str], plugin: str) -> None:
        """Send many lines to *member*, pulled lazily as its queue drains."""
        self.hub.flush_for(member)
        self.loop.stream(_connection(member), lines, plugin)

    def close_client(self, member: Member, reason: str, *, flush: bool = False, tell: bool = False) -> None:
        """Disconnect *member*; with *flush*, after its queued output is sent; with *tell*, its last line is
        ``ERROR disconnected (REASON)`` (just ``ERROR disconnected`` for the reason ``"disconnected"``) in its door's
        words (:meth:`Loop.send_closing <chatroom.net.loop.Loop.send_closing>`: IRC's ``ERROR :Closing Link``)."""
        conn = _connection(member)
        if tell:
            self.hub.flush_for(conn)
            self.loop.send_closing(conn, "disconnected" + (f" ({reason})" if reason != "disconnected" else ""))
        conn.transport.close(conn, reason, flush=flush)

    def pause_reading(self, member: Member) -> None:
        """Stop reading *member*'s input (file backpressure)."""
        self.loop.pause_reading(_connection(member))

    def resume_reading(self, member: Member) -> None:
        """Undo :meth:`pause_reading`."""
        self.loop.resume_reading(_connection(member))

    def call_hook(self, hook: str, client: Member | None, /, **kwargs: Any) -> list[Any]:
        """Call *hook* on every plugin with ``ctx.client`` = *client*; returns the non-None results."""
        return self.plugins.call(hook, lambda plugin: Context(self.port, plugin, client), **kwargs)

    def find_client(self, nick: str) -> Member | None:
        """The member called *nick* (case-insensitive), or None."""
        return self.hub.find(nick)

    def set_nick(self, member: Member, nick: str) -> None:
        """Rename *member*; raises Refused if *nick* is invalid, taken or looks like another member's."""
        old = self.hub.rename(member, nick)
        log.info("%s is now known as %s", old, nick, extra=CONN)
        if old != nick:
            self.call_hook("nick_changed", member, old=old, new=nick)
        self.events.named(member)

    def replay_recent(self, member: Member, room: Room) -> int:
        """Send *member* the last ``history_on_join`` lines of *room*, marked as history; returns how many."""
        if not self.history_on_join:
            return 0
        return self.hub.replay(member, self.hub.rooms.read(member, room, last=self.history_on_join))

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any, plugin: str = "core") -> Timer:
        """Call ``fn(*args)`` on the loop thread after *delay* seconds, with *plugin*'s fault isolation."""
        return self.loop.call_later(delay, fn, *args, owner=plugin)

    def run_in_thread(self, fn: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None],
                      *, plugin: str = "core", serial: bool = False) -> None:
        """See :meth:`chatroom.net.scheduler.Scheduler.run_in_thread`."""
        self.loop.scheduler.run_in_thread(fn, on_done, plugin=plugin, serial=serial)

    @property
    def scheduler(self) -> Scheduler:
        """The loop's timers and worker threads."""
        return self.loop.scheduler


def default_plugins(options: ServerOptions | None = None) -> PluginHost:
    """A plugin manager with the built-in plugins only (fault limits from *options*, if given)."""
    host = plugin_host(options or ServerOptions())
    host.load_builtins()
    host.finish_loading()
    return host


def plugin_host(options: ServerOptions, **more: Any) -> PluginHost:
    """An empty plugin manager with *options*' ``plugin_fault_limit`` and ``slow_hook_ms`` (and *more* of
    :class:`~chatroom.plugins.manager.PluginHost`'s keyword arguments: ``disabled``, ``config``, ``on_fault``)."""
    return PluginHost(fault_limit=options.plugin_fault_limit, slow_seconds=options.slow_hook_ms / 1000, **more)

