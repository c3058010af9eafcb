"""The loop: one thread, one ``selectors`` selector, every connection.

Read top to bottom: :meth:`Loop.run_once` waits for events; a readable
listener accepts, a readable connection is handed to its transport (which
reads at most one slice), a writable one is noted. Connections
with parsed input left over from the previous pass get one more slice each
(:data:`chatroom.net.tcp.SLICE` events), then timers and worker results run,
then the ``before_write`` steps (the room model's fan-out, handing the
pass's history lines to the writer thread), then every connection with
pending output (or that became writable) gets one bounded ``sendmsg``.
Nothing here waits for the disk: output never waits for a commit
(docs/protocol.md, "Durability"). Output is only ever *queued* during a pass: a connection's
:meth:`~chatroom.net.connection.Connection.deliver` checks its output budget
(``max_queue``) when bytes are queued and dooms a connection that would pass
it; doomed connections are closed at the end of the pass.

The loop takes its selector, clock and scheduler from its constructor, so the
test kit builds it from fakes (:mod:`chatroom.testing`).
"""

from __future__ import annotations

import logging
import selectors
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from chatroom.net.connection import Connection
from chatroom.net.logs import CONN, ERR
from chatroom.net.scheduler import Scheduler, Timer
from chatroom.sockets.wakeup import Waker

__all__ = ["DEFAULT_MAX_QUEUE", "LOW_WATER", "MAX_WAIT", "PASS_BUDGET", "STREAM_BATCH", "WRITE_SIZE", "Loop"]

log = logging.getLogger("chatroom.server")

DEFAULT_MAX_QUEUE = 8 * 1024 * 1024
#: A connection's queue below this many bytes pulls more from streams and wakes paused senders.
LOW_WATER = 256 * 1024
#: Lines pulled from a connection's streams per loop pass (about 80 KB of board lines).
STREAM_BATCH = 2000
#: Bytes written to one socket per loop pass at most, so one huge queue (a relayed 4 MiB chunk to many
#: receivers) is spread over passes instead of stalling one.
WRITE_SIZE = 64 * 1024
#: Seconds a pass may spend reading and serving input before it leaves the rest to the next pass.
PASS_BUDGET = 0.005
#: Longest wait of one ``select`` (seconds): epoll refuses waits over about 24.8 days (OverflowError), so a
#: timer further away (a plugin's 30-day reminder) only wakes the loop once an hour until it is due.
MAX_WAIT = 3600.0
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class Loop:
    """The event loop and the output side of every connection.

    *selector* (default ``selectors.DefaultSelector()``), *clock* (seconds,
    default ``time.monotonic``), *scheduler* (default a
    :class:`~chatroom.net.scheduler.Scheduler` on that clock running callbacks
    through *run*, a fault-isolating ``run(owner, fn, *args)``) and *waker*
    are injectable. ``max_queue`` is every connection's output budget in
    bytes. ``on_drain(conn)`` is called when a connection's queue drains
    below :data:`LOW_WATER` (the relay resumes senders). Loop thread only,
    except :meth:`shutdown` and :meth:`wake`.
    """

    def __init__(self, *, selector: selectors.BaseSelector | None = None, clock: Callable[[], float] = time.monotonic,
                 scheduler: Scheduler | None = None, waker: Any = None, run: Callable[..., Any] | None = None,
                 max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.selector = selector if selector is not None else selectors.DefaultSelector()
        self.clock = clock
        self.now = clock()
        self.max_queue = max_queue
        self.waker = waker if waker is not None else Waker()
        self.scheduler = scheduler if scheduler is not None else Scheduler(
            run or (lambda owner, fn, *args: fn(*args)), self.waker.wake, clock=clock)
        self.dirty: list[Connection] = []
        self.backlog: set[Connection] = set()
        self.before_write: list[Callable[[], None]] = []
        self.on_drain: Callable[[Connection], None] = lambda conn: None
        #: ``stream_fault(owner, traceback)``: a stream raised (the server sets the plugin host's fault accounting).
        self.stream_fault: Callable[[str, str], None] = self._log_stream_fault
        self._doomed: list[Connection] = []
        self._writable: list[Connection] = []
        #: Connections whose output waits for a commit (:meth:`gate`), with how many gates each holds.
        self._gated: dict[Connection, int] = {}
        self._turn = 0  # rotates where a pass starts reading and serving
        self._streaming: set[Connection] = set()
        self._stopping = False  # set once by shutdown(), never reset: a signal before serving still stops it
        self.stop_reason = ""
        self.selector.register(self.waker, _READ, self._wakeup)

    # -- running ---------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Run passes until :meth:`shutdown`; an unexpected error is logged and the loop serves on
        (after 100 in a row it stops)."""
        errors = 0
        while not self._stopping:
            try:
                self.run_once(self.timeout())
                errors = 0
            except Exception:  # noqa: BLE001 - a bug of ours: log it and serve on, unless it repeats every pass
                errors += 1
                log.error("internal error in the loop (%d in a row):\n%s", errors, traceback.format_exc().rstrip(),
                          extra=ERR)
                if errors >= 100:
                    self.stop_reason = "server error"
                    break

    def run_once(self, timeout: float | None) -> bool:
        """One pass: wait up to *timeout* seconds, handle events, one slice per backlogged connection,
        timers, the ``before_write`` steps, writes. Returns True if anything was done.

        A pass spends at most about :data:`PASS_BUDGET` seconds reading and
        serving input: past it, the remaining readable connections are left
        for the next pass (epoll reports them again) and the backlog waits;
        the starting point rotates every pass, so nobody is always last.
        """
        backlog = list(self.backlog)  # served after this pass's reads: one slice per connection per pass
        events = self.selector.select(timeout)
        self.now = self.clock()
        start = time.perf_counter()
        deadline = start + PASS_BUDGET
        self._turn += 1
        count = len(events)
        for i in range(count):
            key, mask = events[(self._turn + i) % count]
            data = key.data
            if isinstance(data, Connection):
                if mask & _READ and (time.perf_counter() < deadline or data.closing):
                    data.transport.readable(data)
                if mask & _WRITE:
                    self._writable.append(data)  # written in flush(), after the pass's fan-out
            else:
                data()
        count = len(backlog)
        for i in range(count):
            if time.perf_counter() >= deadline:
                break
            conn = backlog[(self._turn + i) % count]
            if conn.backlog and not conn.throttled:
                conn.transport.serve(conn)
        ran = self.scheduler.run_ready()
        busy = bool(events or backlog or ran or self.dirty or self._streaming or self._doomed)
        self.flush()
        return busy

    def timeout(self) -> float | None:
        """How long the next ``select`` may wait, in seconds (0 while work is pending; else until the next
        timer, at most :data:`MAX_WAIT`; None: until an event)."""
        if self._streaming or self.backlog or self._doomed or self.dirty or self._writable:
            return 0
        timeout = self.scheduler.timeout()
        if timeout is not None and timeout > MAX_WAIT:
            timeout = MAX_WAIT
        return timeout

    def shutdown(self, reason: str = "server shutting down") -> None:
        """Ask :meth:`serve_forever` to return (thread-safe)."""
        self.stop_reason = reason
        self._stopping = True
        self.waker.wake()

    def wake(self) -> None:
        """Make the next ``select`` return at once (thread-safe)."""
        self.waker.wake()

    def install_signal_handlers(self) -> None:
        """Make SIGINT and SIGTERM stop the loop cleanly (main thread only)."""
        signal.set_wakeup_fd(self.waker.write_fd, warn_on_full_buffer=False)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: self.shutdown())

    def _wakeup(self) -> None:
        self.waker.drain()

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any, owner: str = "core") -> Timer:
        """Call ``fn(*args)`` on the loop thread after *delay* seconds; returns the timer (``cancel()`` it)."""
        return self.scheduler.call_later(delay, fn, *args, plugin=owner)

    # -- output ---------------------------------------------------------------------------
    def send_line(self, conn: Connection, text: str) -> None:
        """Queue one line (``str``, no newline) for *conn*, behind any listing it is streaming."""
        if conn.closed:
            return
        if conn.streams:  # keep replies in order behind a listing still being pulled
            conn.streams.append((iter((text,)), "core"))
            return
        conn.deliver(conn.encode_text(text))

    def send_closing(self, conn: Connection, reason: str) -> None:
        """Queue the line telling *conn* the server closes it for *reason* (:meth:`Connection.encode_closing`, in
        its wire's words), dropping any listing it was still streaming. The caller closes it."""
        if conn.closed:
            return
        conn.streams = None
        conn.deliver(conn.encode_closing(reason))

    def stream(self, conn: Connection, lines: Iterator[str], owner: str) -> None:
        """Queue a lazy source of lines for *conn*, pulled while its queue is below LOW_WATER."""
        if conn.streams is None:
            conn.streams = []
        conn.streams.append((lines, owner))
        self._streaming.add(conn)

    def too_slow(self, conn: Connection) -> None:
        """*conn*'s queue would pass its budget: queue nothing more for it but why (``ERROR too slow``, past the
        budget by that line), close it at the end of the pass (its transport lets it read what it has, a few
        seconds at most)."""
        log.warning("dropping %s: output queue %d bytes would pass the %d limit", conn.nick, conn.out.size,
                    self.max_queue, extra=CONN)
        conn.doomed = "too slow"
        conn.streams = None
        conn.out.append(conn.encode_closing(f"too slow: more than {self.max_queue} bytes of output waiting for you"))
        self._doomed.append(conn)

    def mark(self, conn: Connection) -> None:
        """Put *conn* on this pass's write list."""
        if not conn.dirty:
            conn.dirty = True
            self.dirty.append(conn)

    def flush(self) -> None:
        """End of a pass: pump streams, run the ``before_write`` steps, close doomed connections, write."""
        if self._streaming:
            streaming, self._streaming = self._streaming, set()
            for conn in streaming:
                self._pump(conn)
        for _ in range(4):  # closing a doomed connection announces its leave: a few rounds settle it
            for step in self.before_write:
                step()
            if not self._doomed:
                break
            doomed, self._doomed = self._doomed, []
            for conn in doomed:
                conn.transport.close(conn, conn.doomed)
        deadline = time.perf_counter() + PASS_BUDGET  # writes too: what is left goes out next pass
        gated = self._gated
        writable, self._writable = self._writable, []
        for i, conn in enumerate(writable):
            if time.perf_counter() >= deadline:
                self._writable.extend(writable[i:])
                break
            if not conn.closed and not (gated and conn in gated):
                self.write(conn)
        dirty, self.dirty = self.dirty, []
        for i, conn in enumerate(dirty):
            if time.perf_counter() >= deadline:
                self.dirty.extend(dirty[i:])
                break
            conn.dirty = False  # a gated connection is marked again when its gate opens
            if not conn.closed and not conn.want_write and not (gated and conn in gated):
                try:  # what write() does, without its call: this runs for every member of a room every pass
                    self._send_queued(conn)
                except Exception:  # noqa: BLE001 - our bug, one connection's: never the loop's end
                    self._write_failed(conn)

    def gate(self, conn: Connection) -> None:
        """Hold everything queued for *conn*, now and later, until :meth:`ungate` (as many calls as gates):
        an acknowledgement waiting for its commit (``Server.answer_when_saved``). Only *conn* waits; the
        loop never does (no ``EPOLLOUT`` interest while held, so a held connection costs no pass)."""
        self._gated[conn] = self._gated.get(conn, 0) + 1
        if conn.want_write:
            conn.want_write = False
            self.set_mask(conn)

    def ungate(self, conn: Connection) -> None:
        """Open one gate of *conn*; with the last, its output goes out this pass or the next."""
        left = self._gated.get(conn, 0) - 1
        if left > 0:
            self._gated[conn] = left
            return
        self._gated.pop(conn, None)
        if not conn.closed:
            self.mark(conn)

    def write(self, conn: Connection) -> None:
        """Send what *conn* has queued (one bounded ``sendmsg``); an unexpected error closes it alone."""
        try:
            self._send_queued(conn)
        except Exception:  # noqa: BLE001 - our bug, one connection's: never the loop's end
            self._write_failed(conn)

    def _write_failed(self, conn: Connection) -> None:
        """Writing to *conn* raised an unexpected error (a bug of ours): log it, close *conn* alone."""
        log.error("closing %s: internal error writing to it:\n%s", conn.nick, traceback.format_exc().rstrip(),
                  extra=ERR)
        conn.out.clear()
        conn.transport.close(conn, "internal error")

    def _send_queued(self, conn: Connection) -> None:
        out = conn.out
        was_high = out.size >= LOW_WATER
        try:
            out.send_to(conn.sock, WRITE_SIZE)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            conn.transport.close(conn, "connection lost")
            return
        if out.size:
            if not conn.want_write:
                conn.want_write = True
                self.set_mask(conn)
        else:
            if conn.closing and not conn.streams:
                conn.transport.close(conn, "quit")
                return
            if conn.want_write:
                conn.want_write = False
                self.set_mask(conn)
        if out.size < LOW_WATER:
            if conn.streams:
                self._streaming.add(conn)  # pump more on the next pass
            if was_high:
                self.on_drain(conn)

    def _pump(self, conn: Connection) -> None:
        """Pull up to STREAM_BATCH lines from *conn*'s streams, if its queue is below LOW_WATER.

        A stream that raises is a fault of the command that started it: its
        owner is told through ``stream_fault(owner, traceback)`` (not counted
        towards disabling a plugin) and the caller gets ``ERROR``.
        """
        streams = conn.streams
        encode = conn.encode_text
        budget = STREAM_BATCH
        while streams and budget > 0 and conn.out.size < LOW_WATER and not conn.closed:
            lines, owner = streams[0]
            chunk: list[bytes] = []
            size = conn.out.size
            try:
                while len(chunk) < budget and size < LOW_WATER:
                    data = encode(next(lines))
                    chunk.append(data)
                    size += len(data)
            except StopIteration:
                streams.pop(0)
            except BaseException:  # noqa: BLE001 - plugin code: isolated, see docs/plugins.md
                streams.pop(0)
                self.stream_fault(owner, traceback.format_exc())
                chunk.append(encode(f"ERROR plugin {owner} failed while streaming output"))
            budget -= len(chunk) + 1
            if chunk:
                conn.deliver(b"".join(chunk))

    def _log_stream_fault(self, owner: str, trace: str) -> None:
        """A stream raised: log it (``stream_fault`` unless the server sets its own)."""
        log.error("stream of %s raised:\n%s", owner, trace.rstrip(), extra=ERR)

    # -- selector interest --------------------------------------------------------------
    def set_mask(self, conn: Connection) -> None:
        """Watch *conn* for reading unless paused, throttled, closing or backlogged; for writing while its queue waits."""
        reading = not (conn.paused or conn.throttled or conn.closing or conn.backlog)
        mask = _READ if reading else 0
        if conn.want_write:
            mask |= _WRITE
        if mask == conn.mask or conn.closed:
            return
        if not conn.mask:
            self.selector.register(conn.sock, mask, conn)
        elif not mask:
            self.selector.unregister(conn.sock)
        else:
            self.selector.modify(conn.sock, mask, conn)
        conn.mask = mask

    def pause_reading(self, conn: Connection) -> None:
        """Stop reading *conn*'s socket (backpressure) until :meth:`resume_reading`."""
        if not conn.paused and not conn.closed:
            conn.paused = True
            self.set_mask(conn)

    def resume_reading(self, conn: Connection) -> None:
        """Undo :meth:`pause_reading`; events already parsed are handled on the next pass."""
        if conn.paused and not conn.closed:
            conn.paused = False
            conn.backlog = True
            self.backlog.add(conn)
            self.set_mask(conn)

    def forget(self, conn: Connection) -> None:
        """*conn* is closed: drop it from every list and the selector."""
        if conn.mask:
            self.selector.unregister(conn.sock)
            conn.mask = 0
        self._streaming.discard(conn)
        self.backlog.discard(conn)
        self._gated.pop(conn, None)
        conn.out.clear()
        conn.streams = None
        conn.held = None

    def close(self) -> None:
        """Release the selector, scheduler and waker."""
        self.scheduler.close()
        self.selector.close()
        self.waker.close()
