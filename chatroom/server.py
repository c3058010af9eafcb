"""The chatroom server: one thread, one ``selectors`` loop, every client.

Read top to bottom: :meth:`Server.serve_forever` waits for events, reads what
arrived on each readable socket, feeds it to that connection's sans-I/O
:class:`~chatroom.protocol.Parser`, and acts on the events (chat is fanned
out to the room, ``/commands`` go to plugins, frames to the transfer relay).
Output is only *queued* while handling events: each recipient's bytes are
appended to its output buffer, and at the end of the pass every client with
pending output gets one ``send`` (a fan-out of one line to 200 clients costs
200 buffer appends and, per pass, one syscall per recipient, however many
lines arrived). A client whose socket is full is registered for
``EVENT_WRITE`` until its buffer drains; one whose buffer passes
``max_queue`` bytes is disconnected as too slow, so nobody waits for it.
"""

from __future__ import annotations

import itertools
import logging
import selectors
import signal
import socket
import sqlite3
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

from chatroom import protocol
from chatroom.commands import CommandError
from chatroom.connection import Client
from chatroom.context import Context
from chatroom.dispatch import Dispatcher
from chatroom.logs import CONN, ERR
from chatroom.names import check_nick, nick_key
from chatroom.plugins import PluginHost
from chatroom.relay import Relay
from chatroom.room import Room
from chatroom.scheduler import Scheduler, Timer
from chatroom.store import close_store, open_store, plugin_store_path
from chatroom.wakeup import Waker

log = logging.getLogger("chatroom.server")

READ_SIZE = 256 * 1024
#: A client's queue below this many bytes pulls more from streams and wakes paused senders.
LOW_WATER = 256 * 1024
#: Lines pulled from a client's streams per loop pass (about 80 KB of board lines).
STREAM_BATCH = 2000
DEFAULT_MAX_QUEUE = 8 * 1024 * 1024
DEFAULT_MAX_FILE_SIZE = 1024**3


class Server:
    """A chat server bound at construction; run it with :meth:`serve_forever`.

    ``address`` is the bound ``(host, port)``. :meth:`shutdown` may be called
    from any thread. Raises OSError if the address cannot be bound.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        data_dir: Path = Path("chatroom-data"),
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
        plugins: PluginHost | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.max_queue = max_queue
        self.max_file_size = max_file_size
        self.lobby = Room("lobby")
        self.clients: dict[int, Client] = {}
        self.nicks: dict[str, Client] = {}
        self.plugins = plugins if plugins is not None else default_plugins()
        self._ids = itertools.count(1)
        self._dirty: list[Client] = []
        self._streaming: set[Client] = set()
        self._waker = Waker()
        self.scheduler = Scheduler(self.plugins.call_safely, self._waker.wake)
        self.dispatcher = Dispatcher(self)
        self._state: dict[str, dict[str, Any]] = {}
        self._stores: dict[str, Any] = {}
        self._running = False
        self._stop_reason = ""
        self._listener = socket.create_server((host, port), backlog=512, reuse_port=False)
        self._listener.setblocking(False)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ, "accept")
        self._sel.register(self._waker, selectors.EVENT_READ, "wake")
        self.relay = Relay(self)

    # -- the loop ------------------------------------------------------------
    def serve_forever(self) -> None:
        """Run until :meth:`shutdown` or a signal (see :meth:`install_signal_handlers`)."""
        self._running = True
        log.info("listening on %s:%d", *self.address)
        self.call_hook("startup", None)
        select = self._sel.select
        while self._running:
            for key, mask in select(self._timeout()):
                data = key.data
                if data.__class__ is Client:
                    if mask & selectors.EVENT_READ:
                        self._read(data)
                    if mask & selectors.EVENT_WRITE and not data.closed:
                        self._write(data)
                elif data == "accept":
                    self._accept()
                else:
                    self._waker.drain()
            self.scheduler.run_ready()
            self._flush()
        self._close_all()

    def shutdown(self, reason: str = "server shutting down") -> None:
        """Ask the loop to stop (thread-safe); it tells the clients and closes."""
        self._stop_reason = reason
        self._running = False
        self._waker.wake()

    def install_signal_handlers(self) -> None:
        """Make SIGINT and SIGTERM stop the loop cleanly (main thread only)."""
        signal.set_wakeup_fd(self._waker.write_fd, warn_on_full_buffer=False)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: self.shutdown())

    def _timeout(self) -> float | None:
        return 0 if self._streaming else self.scheduler.timeout()

    # -- connections -----------------------------------------------------------
    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: log, keep serving
                log.error("accept failed: %s", exc, extra=ERR)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = Client(next(self._ids), sock, addr)
            self.clients[client.id] = client
            self.nicks[nick_key(client.nick)] = client
            self._sel.register(sock, selectors.EVENT_READ, client)
            log.info("%s connected from %s:%d", client.nick, addr[0], addr[1], extra=CONN)
            self.send_line(
                client,
                f"* Welcome to chatroom, room {self.lobby.name}. You are {client.nick}. "
                "Type /nick NAME to choose a name, /help for commands.",
            )
            self.broadcast(self.lobby, f"* {client.nick} joined {self.lobby.name}")
            self.lobby.join(client)
            self.call_hook("client_joined", client)

    def _read(self, client: Client) -> None:
        try:
            data = client.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close_client(client, "connection lost")
            return
        for event in client.parser.feed(data):
            if client.closing or client.closed:
                return
            kind = event.__class__
            if kind is protocol.Line:
                self.dispatcher.handle_line(client, event.text)  # type: ignore[union-attr]
            elif kind is protocol.Frame:
                self.relay.on_frame(client, event)
            else:
                limit = protocol.MAX_LINE if event.kind == "line" else protocol.MAX_FRAME  # type: ignore[union-attr]
                self.send_line(client, f"ERROR {event.kind} too long ({event.size} bytes, max {limit})")  # type: ignore[union-attr]
                log.warning("%s sent a %s of %d bytes: discarded", client.nick, event.kind, event.size, extra=ERR)  # type: ignore[union-attr]

    def close_client(self, client: Client, reason: str, *, flush: bool = False) -> None:
        """Disconnect *client*; with *flush*, after its queued output is sent."""
        if client.closed:
            return
        if flush and (client.out or client.streams) and not client.closing:
            client.closing = True
            self._set_mask(client)
            self._mark(client)
            self._leave(client, reason)  # ends any capture
            return
        client.closed = True
        if client.mask:
            self._sel.unregister(client.sock)
            client.mask = 0
        client.sock.close()
        self._streaming.discard(client)
        client.out = bytearray()
        if not client.closing:
            self._leave(client, reason)
        self.clients.pop(client.id, None)

    def _leave(self, client: Client, reason: str) -> None:
        if client.capture is not None:
            plugin, _, on_end = client.capture
            client.capture = None
            if on_end is not None:
                self.plugins.call_safely(plugin, on_end, Context(self, plugin, client), reason)
        if self.nicks.get(nick_key(client.nick)) is client:
            del self.nicks[nick_key(client.nick)]
        room = client.room
        room.leave(client)
        log.info("%s disconnected (%s)", client.nick, reason, extra=CONN)
        self.broadcast(room, f"* {client.nick} left {room.name} ({reason})")
        self.relay.on_client_left(client)
        self.call_hook("client_left", client, reason=reason)

    def _close_all(self) -> None:
        reason = self._stop_reason or "server shutting down"
        log.info("shutting down: %s", reason)
        self.call_hook("shutdown", None)
        self.broadcast(self.lobby, f"* {reason}")
        self._flush()
        deadline = time.monotonic() + 2.0
        while any(c.out for c in self.clients.values()) and time.monotonic() < deadline:
            for key, mask in self._sel.select(0.05):
                if key.data.__class__ is Client and mask & selectors.EVENT_WRITE:
                    self._write(key.data)
        for client in list(self.clients.values()):
            self.close_client(client, reason)  # a capture's on_end still runs
        for store in self._stores.values():
            close_store(store)
        self.scheduler.close()
        self._sel.close()
        self._listener.close()
        self._waker.close()
        log.info("stopped")

    # -- output --------------------------------------------------------------
    def send_line(self, client: Client, text: str) -> None:
        """Queue one line (``str`` without newline) for *client*, after any output it is streaming."""
        if client.closed:
            return
        if client.streams:  # keep replies in order behind a listing still being pulled
            client.streams.append((iter((text,)), "core"))
            return
        client.out += protocol.encode_line(text)
        self._mark(client)

    def send_bytes(self, client: Client, data: bytes) -> None:
        """Queue raw bytes (frames) for *client*; only for clients with ``"binary"`` in caps."""
        if not client.closed:
            client.out += data
            self._mark(client)

    def broadcast(self, room: Room, text: str, exclude: Client | None = None) -> None:
        """Queue one line for every member of *room* except *exclude*: encode once, append to each."""
        data = protocol.encode_line(text)
        dirty = self._dirty
        for client in room.members.values():
            if client is not exclude:
                client.out += data
                if not client.dirty:
                    client.dirty = True
                    dirty.append(client)

    def stream(self, client: Client, lines: Iterator[str], plugin: str) -> None:
        """Queue a lazy source of lines, pulled while *client*'s queue is below LOW_WATER."""
        client.streams.append((lines, plugin))
        self._streaming.add(client)

    def _mark(self, client: Client) -> None:
        if not client.dirty:
            client.dirty = True
            self._dirty.append(client)

    def _flush(self) -> None:
        if self._streaming:
            streaming, self._streaming = self._streaming, set()
            for client in streaming:
                self._pump(client)
        dirty, self._dirty = self._dirty, []
        for client in dirty:
            client.dirty = False
            if client.closed:
                continue
            if not client.want_write:
                self._write(client)
            elif len(client.out) > self.max_queue:
                self._too_slow(client)

    def _write(self, client: Client) -> None:
        out = client.out
        was_high = len(out) >= LOW_WATER
        try:
            sent = client.sock.send(out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close_client(client, "connection lost")
            return
        del out[:sent]
        if out:
            if len(out) > self.max_queue:
                self._too_slow(client)
                return
            if not client.want_write:
                client.want_write = True
                self._set_mask(client)
        else:
            if client.closing and not client.streams:
                self.close_client(client, "quit")
                return
            if client.want_write:
                client.want_write = False
                self._set_mask(client)
        if len(out) < LOW_WATER:
            if client.streams:
                self._streaming.add(client)  # pump more on the next pass
            if was_high:
                self.relay.on_drain(client)

    def _pump(self, client: Client) -> None:
        """Pull up to STREAM_BATCH lines from *client*'s streams, if its queue is below LOW_WATER.

        One batch per loop pass keeps a long listing from delaying other
        clients' chat; the client is pumped again on the next pass once its
        queue drains (see :meth:`_write`).
        """
        budget = STREAM_BATCH
        while client.streams and budget > 0 and len(client.out) < LOW_WATER and not client.closed:
            lines, plugin = client.streams[0]
            out = client.out
            taken = 0
            try:
                while taken < budget and len(out) < LOW_WATER:
                    out += protocol.encode_line(next(lines))
                    taken += 1
            except StopIteration:
                client.streams.pop(0)
            except Exception:
                client.streams.pop(0)
                self.plugins.fault(plugin, traceback.format_exc())
                out += protocol.encode_line(f"ERROR plugin {plugin} failed while streaming output")
            budget -= taken + 1
            self._mark(client)

    def _too_slow(self, client: Client) -> None:
        log.warning("dropping %s: output queue %d bytes over the %d limit", client.nick,
                    len(client.out), self.max_queue, extra=CONN)
        self.close_client(client, "too slow")

    def _set_mask(self, client: Client) -> None:
        mask = 0 if (client.paused or client.closing) else selectors.EVENT_READ
        if client.want_write:
            mask |= selectors.EVENT_WRITE
        if mask == client.mask or client.closed:
            return
        if not client.mask:
            self._sel.register(client.sock, mask, client)
        elif not mask:
            self._sel.unregister(client.sock)
        else:
            self._sel.modify(client.sock, mask, client)
        client.mask = mask

    def pause_reading(self, client: Client) -> None:
        """Stop reading *client*'s socket (backpressure) until :meth:`resume_reading`."""
        if not client.paused and not client.closed:
            client.paused = True
            self._set_mask(client)

    def resume_reading(self, client: Client) -> None:
        """Undo :meth:`pause_reading`."""
        if client.paused and not client.closed:
            client.paused = False
            self._set_mask(client)

    # -- services for plugins --------------------------------------------------------
    def call_hook(self, hook: str, client: Client | None, /, **kwargs: Any) -> list[Any]:
        """Call *hook* on every plugin with ``ctx.client`` = *client* (see :meth:`PluginHost.call`).

        Returns the non-None results. Positional-only, so hooks may take an argument called ``name``.
        """
        return self.plugins.call(hook, lambda plugin: Context(self, plugin, client), **kwargs)

    def find_client(self, nick: str) -> Client | None:
        """The connected client named *nick* (case-insensitive), or None."""
        return self.nicks.get(nick_key(nick))

    def set_nick(self, client: Client, nick: str) -> None:
        """Rename *client*; raises CommandError if *nick* is invalid or taken."""
        reason = check_nick(nick)
        if reason:
            raise CommandError(reason)
        other = self.nicks.get(nick_key(nick))
        if other is not None and other is not client:
            raise CommandError(f"the nick {nick} is taken")
        old = client.nick
        del self.nicks[nick_key(old)]
        self.nicks[nick_key(nick)] = client
        client.nick = nick
        log.info("%s is now known as %s", old, nick, extra=CONN)
        if old != nick:
            self.broadcast(client.room, f"* {old} is now known as {nick}", exclude=client)
            self.call_hook("nick_changed", client, old=old, new=nick)

    def plugin_state(self, plugin: str) -> dict[str, Any]:
        """*plugin*'s private dict, kept for the server's lifetime (``ctx.state``)."""
        return self._state.setdefault(plugin, {})

    def plugin_store(self, plugin: str) -> sqlite3.Connection:
        """*plugin*'s SQLite connection, opened on first use (see :func:`chatroom.store.open_store`)."""
        store = self._stores.get(plugin)
        if store is None:
            store = open_store(plugin_store_path(self.data_dir, plugin))
            self._stores[plugin] = store
        return store

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any, plugin: str = "core") -> Timer:
        """See :meth:`chatroom.scheduler.Scheduler.call_later`."""
        return self.scheduler.call_later(delay, fn, *args, plugin=plugin)

    def run_in_thread(self, fn: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None],
                      *, plugin: str = "core") -> None:
        """See :meth:`chatroom.scheduler.Scheduler.run_in_thread`."""
        self.scheduler.run_in_thread(fn, on_done, plugin=plugin)


def default_plugins() -> PluginHost:
    """A plugin manager with the built-in plugins only."""
    host = PluginHost()
    host.load_builtins()
    host.finish_loading()
    return host
