"""The chatroom server: one thread, one ``selectors`` loop, every client.

Read top to bottom: :meth:`Server.run_once` waits for events, reads at most
:data:`READ_SIZE` bytes from each readable socket into that connection's
sans-I/O :class:`~chatroom.wire.lines.Parser`, and handles at most
:data:`SLICE` of its events per pass (chat goes to the room, ``/commands`` to
plugins, frames to the transfer relay); a connection with more waiting is
served again on the next pass, before its socket is read again, so one flood
delays the others by at most one slice. Every connection lives within
budgets (:mod:`chatroom.net.budget`): its input is bounded (one read plus one
partial line or accepted frame), its output is counted when it is queued and
a client whose queue would pass ``max_queue`` bytes is dropped as too slow
before memory grows, and its token bucket slows a flood by not reading it.

Output is only *queued* while handling events. Room broadcasts of one pass
are batched: at the end of the pass each room's lines are joined once and
appended once to every member (a sender gets the batch without its own
lines), then every client with pending output gets one ``sendmsg``. Anything
sent straight to a client first flushes the batches of its room, so one
sender's lines always arrive in order.
"""

from __future__ import annotations

import errno
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

from chatroom.wire import lines as protocol
from chatroom.net.budget import TOO_LONG_COST, FloodPolicy
from chatroom.plugins.commands import CommandError
from chatroom.net.connection import Client
from chatroom.plugins.context import Context
from chatroom.plugins.dispatch import Dispatcher
from chatroom.net.logs import CONN, ERR
from chatroom.model.names import check_nick, nick_key, nick_skeleton_key, too_alike
from chatroom.plugins.manager import PluginHost
from chatroom.net.relay import Relay
from chatroom.net.room_legacy import Room
from chatroom.net.scheduler import Scheduler, Timer
from chatroom.model.store import close_store, open_store, plugin_store_path
from chatroom.wire.wakeup import Waker

log = logging.getLogger("chatroom.server")

#: Bytes read from one socket per readable event.
READ_SIZE = 64 * 1024
#: Events (lines, frames) handled per connection per loop pass.
SLICE = 64
#: Bytes written to one socket per loop pass at most, so one huge queue (a relayed 4 MiB chunk to many
#: receivers) is spread over passes instead of stalling one.
WRITE_SIZE = 64 * 1024
#: A client's queue below this many bytes pulls more from streams and wakes paused senders.
LOW_WATER = 256 * 1024
#: Lines pulled from a client's streams per loop pass (about 80 KB of board lines).
STREAM_BATCH = 2000
DEFAULT_MAX_QUEUE = 8 * 1024 * 1024
DEFAULT_MAX_FILE_SIZE = 1024**3
#: Seconds a closing connection may take to read its last output before it is closed anyway.
CLOSE_GRACE = 3.0
#: Seconds accepting pauses after the process ran out of file descriptors.
ACCEPT_PAUSE = 0.5
_OUT_OF_FDS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class Server:
    """A chat server bound at construction; run it with :meth:`serve_forever`.

    ``address`` is the bound ``(host, port)``. Budgets: ``max_queue`` bytes
    of output per client; ``flood`` (a :class:`~chatroom.net.budget.FloodPolicy`,
    or ``flood_rate``/``flood_burst``/``flood_kill``); ``partial_timeout``
    seconds a connection may hold an unfinished line or frame;
    ``max_per_address`` connections per peer address (0: no limit);
    ``announce_limit``: rooms with more members do not announce joins and
    leaves (0: always). :meth:`shutdown` may be called from any thread; the
    rest only from the loop thread. Raises OSError if the address cannot be
    bound.
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
        flood_rate: float = 25.0,
        flood_burst: float = 250.0,
        flood_kill: float = 30.0,
        partial_timeout: float = 60.0,
        max_per_address: int = 64,
        announce_limit: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.max_queue = max_queue
        self.max_file_size = max_file_size
        self.flood = FloodPolicy(flood_rate, flood_burst, flood_kill)
        self.partial_timeout = partial_timeout
        self.max_per_address = max_per_address
        self.announce_limit = announce_limit
        self.clock = clock
        self.lobby = Room("lobby")
        self.clients: dict[int, Client] = {}
        self.nicks: dict[str, Client] = {}
        self.skeletons: dict[str, Client] = {}  # confusable skeleton -> member (UTS #39), for look-alike nicks
        self.per_address: dict[str, int] = {}
        self.plugins = plugins if plugins is not None else default_plugins()
        self.now = clock()
        self._ids = itertools.count(1)
        self._dirty: list[Client] = []
        self._doomed: list[Client] = []
        self._rooms_pending: list[Room] = []
        self._backlog: set[Client] = set()
        self._streaming: set[Client] = set()
        self._watch: set[Client] = set()  # closing, or holding an unfinished line or frame
        self._sweep: Timer | None = None
        self._accept_paused = False
        self._waker = Waker()
        self.scheduler = Scheduler(self.plugins.call_safely, self._waker.wake)
        self.dispatcher = Dispatcher(self)
        self._state: dict[str, dict[str, Any]] = {}
        self._stores: dict[str, Any] = {}
        self._running = False
        self._stop_reason = ""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=512, reuse_port=False)
        self._listener.setblocking(False)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, _READ, "accept")
        self._sel.register(self._waker, _READ, "wake")
        self.relay = Relay(self)

    # -- the loop ------------------------------------------------------------
    def serve_forever(self) -> None:
        """Run until :meth:`shutdown` or a signal (see :meth:`install_signal_handlers`)."""
        self._running = True
        log.info("listening on %s:%d", *self.address)
        self.call_hook("startup", None)
        errors = 0
        while self._running:
            try:
                self.run_once(self._timeout())
                errors = 0
            except Exception:  # noqa: BLE001 - a bug of ours: log it and serve on, unless it repeats every pass
                errors += 1
                log.error("internal error in the loop (%d in a row):\n%s", errors, traceback.format_exc().rstrip(),
                          extra=ERR)
                if errors >= 100:
                    self._stop_reason = "server error"
                    break
        self._close_all()

    def run_once(self, timeout: float | None) -> None:
        """One loop pass: wait up to *timeout* seconds for events, handle them, run timers, flush."""
        backlog = list(self._backlog)  # served after this pass's reads: one slice per client per pass
        events = self._sel.select(timeout)
        self.now = self.clock()
        for key, mask in events:
            data = key.data
            if data.__class__ is Client:
                if mask & _READ:
                    self._readable(data)
                if mask & _WRITE and not data.closed:
                    self._write(data)
            elif data == "accept":
                self._accept()
            else:
                self._waker.drain()
        for client in backlog:
            if client.backlog and not client.throttled:
                self._serve(client)
        self.scheduler.run_ready()
        self._flush()

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
        return 0 if (self._streaming or self._backlog or self._doomed) else self.scheduler.timeout()

    # -- connections -----------------------------------------------------------
    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_FDS:
                    self._pause_accepting(exc)
                else:
                    log.error("accept failed: %s", exc, extra=ERR)
                return
            if self._accept_paused:
                self._accept_paused = False
                log.warning("accepting connections again", extra=ERR)
            self._admit(sock, addr)

    def _admit(self, sock: socket.socket, addr: Any) -> None:
        host = str(addr[0]) if isinstance(addr, tuple) else ""
        count = self.per_address.get(host, 0)
        if self.max_per_address and count >= self.max_per_address:
            try:
                sock.send(protocol.encode_line(f"ERROR too many connections from {host} (max {self.max_per_address})"))
            except OSError:
                pass
            sock.close()
            log.info("refused a connection from %s: %d open already", host, count, extra=CONN)
            return
        self.per_address[host] = count + 1
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = Client(next(self._ids), sock, addr, tokens=self.flood.burst, now=self.now)
        client.parser.frame_filter = lambda meta, size: self.relay.check_frame(client, meta, size)
        self.clients[client.id] = client
        self.nicks[nick_key(client.nick)] = client
        self.skeletons[nick_skeleton_key(client.nick)] = client
        self._sel.register(sock, _READ, client)
        log.info("%s connected from %s:%s", client.nick, host, addr[1] if isinstance(addr, tuple) else "", extra=CONN)
        self.send_line(
            client,
            f"* Welcome to chatroom, room {self.lobby.name}. You are {client.nick}. "
            "Type /nick NAME to choose a name, /help for commands.",
        )
        self.announce(self.lobby, f"* {client.nick} joined {self.lobby.name}", exclude=client)
        self.lobby.join(client)
        self.call_hook("client_joined", client)

    def _pause_accepting(self, exc: OSError) -> None:
        """Out of file descriptors: stop accepting for ACCEPT_PAUSE s instead of spinning; log once per episode."""
        if not self._accept_paused:
            self._accept_paused = True
            log.error("accept failed: %s; pausing new connections (logged once until accepting works again)",
                      exc, extra=ERR)
        self._sel.unregister(self._listener)
        self.scheduler.call_later(ACCEPT_PAUSE, self._resume_accepting)

    def _resume_accepting(self) -> None:
        if self._running or self._listener.fileno() >= 0:
            self._sel.register(self._listener, _READ, "accept")

    def _readable(self, client: Client) -> None:
        try:
            data = client.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close_client(client, "connection lost")
            return
        client.parser.receive_data(data)
        self._serve(client)

    def _serve(self, client: Client) -> None:
        """Handle up to SLICE of *client*'s events; a fault caused by its bytes closes it alone."""
        try:
            self._handle_events(client)
        except Exception:  # our own bug, triggered by this client's input: never the loop's end
            log.error("closing %s: internal error handling its input:\n%s", client.nick,
                      traceback.format_exc().rstrip(), extra=ERR)
            self._backlog.discard(client)
            if not client.closed:
                self.send_line(client, "ERROR internal error; closing the connection")
                self.close_client(client, "internal error", flush=True)

    def _handle_events(self, client: Client) -> None:
        parser, flood, now = client.parser, self.flood, self.now
        for _ in range(SLICE):
            if client.closing or client.closed or client.paused:
                return  # closing: input is over; paused: resume_reading puts it back in the backlog
            event = client.held or parser.next_event()
            client.held = None
            if event is None:  # input ran dry: the slice is over, and any flood episode too
                client.flood_since = 0.0
                self._backlog.discard(client)
                client.backlog = False
                self._track_partial(client)
                self._set_mask(client)
                return
            if flood.rate:
                if flood.empty(client.tokens):
                    client.tokens = flood.refill(client.tokens, client.stamp, now)
                    client.stamp = now
                    if flood.empty(client.tokens):
                        client.held = event
                        self._throttle(client)
                        return
            kind = event.__class__
            if kind is protocol.Line:
                cost = self.dispatcher.handle_line(client, event.text)  # type: ignore[union-attr]
            elif kind is protocol.Frame:
                cost = 0.0
                self.relay.on_frame(client, event)  # type: ignore[arg-type]
            else:
                cost = TOO_LONG_COST
                self._refuse_input(client, event)  # type: ignore[arg-type]
            client.tokens -= cost
        if not (client.closed or client.closing or client.paused or client.throttled):
            client.backlog = True
            self._backlog.add(client)
            self._set_mask(client)

    def _refuse_input(self, client: Client, event: protocol.TooLong | protocol.Refused) -> None:
        if event.__class__ is protocol.Refused:
            if event.reason:  # type: ignore[union-attr]
                self.send_line(client, f"ERROR {event.reason}")  # type: ignore[union-attr]
                self.dispatcher.log_rejected(client, f"a frame: {event.reason}")  # type: ignore[union-attr]
            return
        limit = protocol.MAX_LINE if event.kind == "line" else protocol.MAX_FRAME  # type: ignore[union-attr]
        self.send_line(client, f"ERROR {event.kind} too long ({event.size} bytes, max {limit})")  # type: ignore[union-attr]
        self.dispatcher.log_rejected(client, f"a {event.kind} of {event.size} bytes: discarded")  # type: ignore[union-attr]

    def _throttle(self, client: Client) -> None:
        """The flood bucket is empty: stop reading *client* until it refills; past the hard limit, drop it."""
        if not client.flood_since:
            client.flood_since = self.now
        elif self.flood.kill and self.now - client.flood_since >= self.flood.kill:
            log.warning("dropping %s: excess flood (throttled for %.0f s)", client.nick,
                        self.now - client.flood_since, extra=CONN)
            self.send_line(client, "ERROR excess flood")
            self.close_client(client, "excess flood", flush=True)
            return
        client.throttled = True
        self._backlog.discard(client)
        self._set_mask(client)
        self.scheduler.call_later(self.flood.wait(client.tokens), self._unthrottle, client)

    def _unthrottle(self, client: Client) -> None:
        if client.closed or not client.throttled:
            return
        client.throttled = False
        self.now = self.clock()
        self._serve(client)

    def _track_partial(self, client: Client) -> None:
        if client.parser.partial:
            if not client.partial_since:
                client.partial_since = self.now
                self._watch_client(client)
        else:
            client.partial_since = 0.0

    def _watch_client(self, client: Client) -> None:
        self._watch.add(client)
        if self._sweep is None:
            self._sweep = self.scheduler.call_later(1.0, self._sweep_watched)

    def _sweep_watched(self) -> None:
        """Close connections that held an unfinished line or frame too long, and reap closing ones."""
        self._sweep = None
        now = self.now = self.clock()
        for client in list(self._watch):
            if client.closed:
                self._watch.discard(client)
            elif client.closing:
                if now >= client.deadline:
                    self.close_client(client, "quit")
            elif not client.partial_since:
                self._watch.discard(client)
            elif client.paused or client.throttled:
                client.partial_since = now  # not reading it: its clock does not run
            elif self.partial_timeout and now - client.partial_since >= self.partial_timeout:
                what = "frame" if client.parser.in_frame else "line"
                self.send_line(client, f"ERROR timeout: unfinished {what} for {self.partial_timeout:g} s")
                self.close_client(client, "timeout", flush=True)
        if self._watch:
            self._sweep = self.scheduler.call_later(1.0, self._sweep_watched)

    def close_client(self, client: Client, reason: str, *, flush: bool = False) -> None:
        """Disconnect *client*; with *flush*, after its queued output is sent (or CLOSE_GRACE s)."""
        if client.closed:
            return
        if flush and (client.out or client.streams) and not client.closing:
            client.closing = True
            client.deadline = self.clock() + CLOSE_GRACE
            self._backlog.discard(client)
            self._set_mask(client)
            self._mark(client)
            self._watch_client(client)
            self._leave(client, reason)  # ends any capture
            return
        client.closed = True
        if client.mask:
            self._sel.unregister(client.sock)
            client.mask = 0
        client.sock.close()
        self._streaming.discard(client)
        self._backlog.discard(client)
        self._watch.discard(client)
        client.out.clear()
        client.streams = None
        client.held = None
        host = client.host
        left = self.per_address.get(host, 1) - 1
        if left > 0:
            self.per_address[host] = left
        else:
            self.per_address.pop(host, None)
        if not client.closing:
            self._leave(client, reason)
        self.clients.pop(client.id, None)

    def _leave(self, client: Client, reason: str) -> None:
        if client.capture is not None:
            plugin, _, on_end, _ = client.capture
            client.capture = None
            if on_end is not None:
                self.plugins.run_for_client(plugin, on_end, Context(self, plugin, client), reason)
        if self.nicks.get(nick_key(client.nick)) is client:
            del self.nicks[nick_key(client.nick)]
        if self.skeletons.get(nick_skeleton_key(client.nick)) is client:
            del self.skeletons[nick_skeleton_key(client.nick)]
        room = client.room
        room.leave(client)
        log.info("%s disconnected (%s)", client.nick, reason, extra=CONN)
        self.announce(room, f"* {client.nick} left {room.name} ({reason})")
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
                if key.data.__class__ is Client and mask & _WRITE:
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
    def _queue(self, client: Client, data: bytes | memoryview) -> None:
        """Append *data* to *client*'s output, within its budget: past ``max_queue`` it is dropped as too slow."""
        if client.closed or client.doomed:
            return
        out = client.out
        if out.size and out.size + len(data) > self.max_queue:
            self._too_slow(client)
            return
        out.append(data)
        if not client.dirty:
            client.dirty = True
            self._dirty.append(client)

    def send_line(self, client: Client, text: str) -> None:
        """Queue one line (``str`` without newline) for *client*, after any output it is streaming."""
        if client.closed:
            return
        if client.streams:  # keep replies in order behind a listing still being pulled
            client.streams.append((iter((text,)), "core"))
            return
        if client.room is not None and client.room.pending:
            self._fan_out(client.room)
        self._queue(client, protocol.encode_line(text))

    def send_bytes(self, client: Client, data: bytes | memoryview) -> None:
        """Queue raw bytes (frames) for *client*; only for clients with ``"binary"`` in caps."""
        if client.room is not None and client.room.pending:
            self._fan_out(client.room)
        self._queue(client, data)

    def broadcast(self, room: Room, text: str, exclude: Client | None = None) -> None:
        """Queue one line for every member of *room* except *exclude*.

        The line is encoded once now and fanned out with the rest of the
        pass's lines at the end of the pass (:meth:`_fan_out`).
        """
        if not room.pending:
            self._rooms_pending.append(room)
        room.pending.append((exclude.id if exclude is not None else 0, protocol.encode_line(text)))

    def announce(self, room: Room, text: str, exclude: Client | None = None) -> None:
        """Broadcast a join or leave notice, unless *room* is bigger than ``announce_limit``."""
        if not self.announce_limit or len(room.members) <= self.announce_limit:
            self.broadcast(room, text, exclude)

    def _fan_out(self, room: Room) -> None:
        """Append *room*'s pending lines to each member's queue: one join, one append per member."""
        pending, room.pending = room.pending, []
        if len(pending) == 1:
            sender, batch = pending[0]
            senders = {sender}
        else:
            batch = b"".join([line for _, line in pending])
            senders = {sender for sender, _ in pending}
        queue = self._queue
        for member in list(room.members.values()):
            if member.id not in senders:
                queue(member, batch)
            else:
                own = b"".join([line for sender, line in pending if sender != member.id])
                if own:
                    queue(member, own)

    def stream(self, client: Client, lines: Iterator[str], plugin: str) -> None:
        """Queue a lazy source of lines, pulled while *client*'s queue is below LOW_WATER."""
        if client.streams is None:
            client.streams = []
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
        for _ in range(4):  # dropping a slow client broadcasts its leave: a few rounds settle it
            while self._rooms_pending:
                self._fan_out(self._rooms_pending.pop())
            if not self._doomed:
                break
            doomed, self._doomed = self._doomed, []
            for client in doomed:
                self.close_client(client, client.doomed)
        dirty, self._dirty = self._dirty, []
        for client in dirty:
            client.dirty = False
            if not client.closed and not client.want_write:
                self._write(client)

    def _write(self, client: Client) -> None:
        """Send what *client* has queued (one bounded ``sendmsg``); an unexpected error closes it alone."""
        try:
            self._send_queued(client)
        except Exception:  # noqa: BLE001 - our bug, one connection's: never the loop's end
            log.error("closing %s: internal error writing to it:\n%s", client.nick,
                      traceback.format_exc().rstrip(), extra=ERR)
            client.out.clear()
            self.close_client(client, "internal error")

    def _send_queued(self, client: Client) -> None:
        out = client.out
        was_high = out.size >= LOW_WATER
        try:
            out.send_to(client.sock, WRITE_SIZE)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.close_client(client, "connection lost")
            return
        if out.size:
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
        if out.size < LOW_WATER:
            if client.streams:
                self._streaming.add(client)  # pump more on the next pass
            if was_high:
                self.relay.on_drain(client)

    def _pump(self, client: Client) -> None:
        """Pull up to STREAM_BATCH lines from *client*'s streams, if its queue is below LOW_WATER.

        One batch per loop pass keeps a long listing from delaying other
        clients' chat; the client is pumped again on the next pass once its
        queue drains (see :meth:`_write`). A stream that raises is a fault of
        the command that started it: the caller gets ``ERROR`` and the
        plugin is not counted towards auto-disable.
        """
        streams = client.streams
        budget = STREAM_BATCH
        while streams and budget > 0 and client.out.size < LOW_WATER and not client.closed:
            lines, plugin = streams[0]
            chunk: list[bytes] = []
            size = client.out.size
            try:
                while len(chunk) < budget and size < LOW_WATER:
                    data = protocol.encode_line(next(lines))
                    chunk.append(data)
                    size += len(data)
            except StopIteration:
                streams.pop(0)
            except BaseException:  # noqa: BLE001 - plugin code: isolated, see docs/plugins.md
                streams.pop(0)
                self.plugins.fault(plugin, traceback.format_exc(), count=False)
                chunk.append(protocol.encode_line(f"ERROR plugin {plugin} failed while streaming output"))
            budget -= len(chunk) + 1
            if chunk:
                self._queue(client, b"".join(chunk))

    def _too_slow(self, client: Client) -> None:
        log.warning("dropping %s: output queue %d bytes would pass the %d limit", client.nick,
                    client.out.size, self.max_queue, extra=CONN)
        client.doomed = "too slow"
        client.out.clear()
        client.streams = None
        self._doomed.append(client)

    def _set_mask(self, client: Client) -> None:
        reading = not (client.paused or client.throttled or client.closing or client.backlog)
        mask = _READ if reading else 0
        if client.want_write:
            mask |= _WRITE
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
        """Undo :meth:`pause_reading`; events already parsed are handled on the next pass."""
        if client.paused and not client.closed:
            client.paused = False
            client.backlog = True
            self._backlog.add(client)
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
        """Rename *client*; raises CommandError if *nick* is invalid, taken, or looks like
        (same UTS #39 confusable skeleton as) another connected member's nick."""
        reason = check_nick(nick)
        if reason:
            raise CommandError(reason)
        other = self.nicks.get(nick_key(nick))
        if other is not None and other is not client:
            raise CommandError(f"the nick {nick} is taken")
        skeleton = nick_skeleton_key(nick)
        alike = self.skeletons.get(skeleton)
        if alike is not None and alike is not client:
            raise CommandError(too_alike(nick, alike.nick))
        old = client.nick
        del self.nicks[nick_key(old)]
        if self.skeletons.get(nick_skeleton_key(old)) is client:
            del self.skeletons[nick_skeleton_key(old)]
        self.nicks[nick_key(nick)] = client
        self.skeletons[skeleton] = client
        client.nick = nick
        log.info("%s is now known as %s", old, nick, extra=CONN)
        if old != nick:
            self.broadcast(client.room, f"* {old} is now known as {nick}", exclude=client)
            self.call_hook("nick_changed", client, old=old, new=nick)

    def plugin_state(self, plugin: str) -> dict[str, Any]:
        """*plugin*'s private dict, kept for the server's lifetime (``ctx.state``)."""
        return self._state.setdefault(plugin, {})

    def plugin_store(self, plugin: str) -> sqlite3.Connection:
        """*plugin*'s SQLite connection, opened on first use (see :func:`chatroom.model.store.open_store`)."""
        store = self._stores.get(plugin)
        if store is None:
            store = open_store(plugin_store_path(self.data_dir, plugin))
            self._stores[plugin] = store
        return store

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any, plugin: str = "core") -> Timer:
        """See :meth:`chatroom.net.scheduler.Scheduler.call_later`."""
        return self.scheduler.call_later(delay, fn, *args, plugin=plugin)

    def run_in_thread(self, fn: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None],
                      *, plugin: str = "core") -> None:
        """See :meth:`chatroom.net.scheduler.Scheduler.run_in_thread`."""
        self.scheduler.run_in_thread(fn, on_done, plugin=plugin)


def default_plugins() -> PluginHost:
    """A plugin manager with the built-in plugins only."""
    host = PluginHost()
    host.load_builtins()
    host.finish_loading()
    return host
