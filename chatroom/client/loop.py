"""The client's network event loop: one socket, one ``selectors`` loop, no UI.

:class:`ClientLoop` owns the connection to the server. It runs on one thread
(the main thread in line mode, a background thread under the terminal UI) and
everything that touches the socket, the :class:`~chatroom.wire.stream.StreamParser` or
the file-transfer component happens on that thread. Other threads (the stdin
reader, the prompt, the send-folder watcher) talk to it only through
:meth:`ClientLoop.submit`, :meth:`ClientLoop.end_input`,
:meth:`ClientLoop.request_quit` and :meth:`ClientLoop.wake`, which put an item
on a queue and write one byte to a wakeup socketpair registered in the
selector (stdin itself is never registered: epoll refuses regular files).

Life of a connection:

1. **Handshake** (:mod:`chatroom.client.handshake`). ``/caps binary`` (only
   when the transfer component is installed, so frames can be handled),
   ``/files ask|none`` (``accept_files``), ``/nick NAME`` and, with a
   password, ``/login NAME PASSWORD`` are sent at once; their ``OK`` replies
   are consumed, anything else is printed (a server that first asks for its
   password gets ``/pass`` and the handshake again). A refused name or login
   (``ERROR ...``) ends the loop with status 2, or, when
   ``interactive=True``, makes the next submitted line the new name
   (:attr:`ClientLoop.naming` is then true so the UI can say so). Typed lines
   wait in the queue until every handshake reply is in.
2. **Chat.** Every server line is printed through ``Console.line``; frames go
   to the transfer component. Typed lines are sanitized and sent, except the
   client-side commands ``/quit`` and the file commands of
   :mod:`chatroom.client.files` (``/sendfile NAME``, ``/transfers``,
   ``/cancel ID``, ``/accept [ID]``, ``/decline [ID]``).
3. **Quit.** ``/quit`` typed, end of input, or Ctrl-C: once no transfer is in
   flight, ``/quit`` is sent; the loop ends with status 0 when the server says
   ``OK`` and closes (bounded by ``quit_timeout`` seconds).

   The wait for transfers is bounded for files *arriving*, never for the
   user's own sends: files still arriving ``quit_wait`` seconds (default
   :data:`QUIT_WAIT`, ``--quit-wait``) after quitting began are discarded
   (part file removed, ``discarded "NAME" from SENDER: still arriving 30 s
   after quitting (DONE of SIZE bytes)``), and so is any file that starts
   arriving after that. A sender trickling one byte every few seconds can
   therefore delay a client's exit by ``quit_wait`` seconds at most. The
   user's own sends are waited for until they end: they move as fast as the
   server takes them, and the server aborts a transfer that stops moving.
   Ctrl-C (``request_quit(force=True)``) aborts everything at once.

4. **Reconnect** (*connect* given, :mod:`chatroom.client.reconnect`): a
   connection that drops while not quitting is dialled again with backoff;
   the handshake is redone and the rooms rejoined, and what was missed is
   fetched by history id (:mod:`chatroom.client.catchup`, needs ``tags``).
   Typed input: :mod:`chatroom.client.inputs`.

A lost connection first shows what the server still sent (a failed send can
come before the read that finds ``* server shutting down``), then ends the
running transfers. Exit statuses returned by :meth:`ClientLoop.run`: 0 after a
clean quit (or ``/quit``, Ctrl-D, Ctrl-C while reconnecting), 1 when the
connection is lost without reconnecting (``connection to server lost`` on the
error console), 2 when the name is refused in non-interactive mode
(:attr:`ClientLoop.refused` says which: ``nick``, ``login`` or ``pass``).
"""

from __future__ import annotations

import queue
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatroom.client.catchup import RoomSide
from chatroom.client.files import PROGRESS_INTERVAL, FileSide
from chatroom.client.handshake import HandshakeSide
from chatroom.client.inputs import InputSide
from chatroom.client.io import Console, OutQueue
from chatroom.client.reconnect import LOST, Backoff, ReconnectSide
from chatroom.wire.lines import Frame, Line, TooLong, encode_line, sanitize
from chatroom.wire.stream import StreamParser
from chatroom.sockets.wakeup import Waker

__all__ = ["LOST", "QUIT_WAIT", "ClientLoop"]

#: Bytes read from the socket per ``recv`` call.
RECV_SIZE = 256 * 1024
#: ``recv`` calls per readable event, so typing and pumping are never starved.
RECV_ROUNDS = 16
#: Default seconds files still arriving are waited for once quitting began (see the module docstring).
QUIT_WAIT = 30.0


def _is_reply(text: str) -> bool:
    return text in ("OK", "ERROR") or text.startswith(("OK ", "ERROR "))


class ClientLoop(FileSide, HandshakeSide, RoomSide, InputSide, ReconnectSide):
    """The connection to one server, driven by :meth:`run` on a single thread.

    *sock* is a connected TCP socket (made non-blocking here). *console*
    prints. *send_dir*/*received_dir* are the transfer folders (created when
    missing); *auto_send* sends every file the watcher reports. *transfer* is
    the ``(TransferManager, SendFolderWatcher)`` pair from
    :func:`load_transfer` (None: no file transfer, ``/caps binary`` is not
    sent; a None watcher: the send folder is not watched). *quit_wait* is
    how many seconds files still arriving are waited for once quitting
    began (then they are discarded); *quit_timeout* how many seconds the
    server has to answer ``/quit``. *on_change* is called (from the loop
    thread) when :attr:`naming` or :attr:`progress` change, so a UI can
    redraw. *accept_files* (``ask``, ``all``, ``none``) is how offered files
    are answered, *password* logs in to the account NAME, *server_password*
    answers a server that asks for one (:mod:`chatroom.client.handshake`).
    *tags* asks for message tags (``/caps tags``; they are taken off before
    printing) so rooms and history ids are known; *connect* (no arguments,
    returns a new connected socket, may block) turns on reconnecting, with
    *backoff* (default :class:`~chatroom.client.reconnect.Backoff`).
    """

    def __init__(
        self,
        sock: socket.socket,
        name: str,
        console: Console,
        *,
        interactive: bool = False,
        send_dir: Path = Path("send"),
        received_dir: Path = Path("received"),
        auto_send: bool = False,
        transfer: tuple[Any, Any] | None = None,
        quit_timeout: float = 5.0,
        quit_wait: float = QUIT_WAIT,
        on_change: Callable[[], None] | None = None,
        accept_files: str = "all",
        password: str | None = None,
        server_password: str | None = None,
        tags: bool = False,
        connect: Callable[[], socket.socket] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.sock = sock
        self.name = name
        self.console = console
        self.interactive = interactive
        self.send_dir = Path(send_dir)
        self.received_dir = Path(received_dir)
        self.auto_send = auto_send
        self.quit_timeout = quit_timeout
        self.quit_wait = quit_wait
        self.on_change = on_change
        self.accept_files = accept_files
        self.password = password
        self.server_password = server_password
        self.tags = tags
        self.sync_ids = tags and connect is not None
        self.asking_password = False
        self._init_rooms()
        self._init_reconnect(connect, backoff)
        self._confirmed = False  # "* you are NAME" was shown
        #: Set when the loop ends with status 2: ``"name"`` (refused name or login) or ``"pass"``.
        self.refused: str | None = None
        self._stale = 0
        self._greeted = False  # the server's first line came
        self._offered: dict[str, tuple[str, str]] = {}  # file offers waiting for the person's answer
        #: True while the server has refused the name and the next submitted line is a new one.
        self.naming = False
        #: Snapshot of the transfer component's ``progress()`` list, refreshed every 0.2 s.
        self.progress: list[Any] = []
        self._parser = StreamParser()
        self._out = OutQueue()
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._held: deque[tuple[str, Any]] = deque()  # input taken off the queue, not acted on yet
        self._sel = selectors.DefaultSelector()
        self._waker = Waker()
        self._pending: deque[str] = deque()  # handshake replies still expected: "caps", "files", "nick", "login"
        self._named = False
        self._quit = "no"  # no -> wanted (waiting for transfers) -> sent -> ok
        self._quit_deadline = 0.0
        self._arrivals_deadline = 0.0  # once quitting: files still arriving after this are discarded
        self._status: int | None = None
        self._next_progress = 0.0
        self._write_registered = False
        self._hurry = False  # the last pass stopped pumping early: do not block in select
        self._tm: Any = None
        self._watcher: Any = None
        self._transfer = transfer
        if transfer is not None:
            manager_cls, watcher_cls = transfer
            self.send_dir.mkdir(parents=True, exist_ok=True)
            self.received_dir.mkdir(parents=True, exist_ok=True)
            self._tm = manager_cls(self.send_dir, self.received_dir, self._write, self._out_queued, console.line)
            if watcher_cls is not None:
                self._watcher = watcher_cls(self.send_dir, self.wake)

    # ---- called from any thread -------------------------------------------------

    def wake(self) -> None:
        """Wake the loop (thread-safe, never blocks)."""
        self._waker.wake()

    def submit(self, text: str) -> None:
        """A line the user typed (thread-safe)."""
        self._queue.put(("line", text))
        self.wake()

    def end_input(self) -> None:
        """The user's input ended (EOF): quit once transfers are done (thread-safe)."""
        self._queue.put(("eof", None))
        self.wake()

    def request_quit(self, force: bool = False) -> None:
        """Quit (Ctrl-C). With *force*, abort running transfers instead of waiting (thread-safe)."""
        self._queue.put(("quit", force))
        self.wake()

    @property
    def busy(self) -> bool:
        """True while file transfers are in flight."""
        return bool(self._tm is not None and self._tm.busy)

    # ---- the loop ------------------------------------------------------------------

    def run(self) -> int:
        """Run until quit, or connection loss without reconnecting; returns the exit status (0, 1 or 2)."""
        self._sel.register(self._waker, selectors.EVENT_READ, "wake")
        if self._watcher is not None:
            self._watcher.start()
        self._attach(self.sock, first=True)
        try:
            while self._status is None:
                self._pass()
        finally:
            self._shutdown()
        return self._status

    def _attach(self, sock: socket.socket, first: bool = False) -> None:
        """Start a connection on *sock*: fresh parser and output, the handshake sent."""
        self.sock = sock
        sock.setblocking(False)
        self._sel.register(sock, selectors.EVENT_READ, "sock")
        if not first:
            self._parser = StreamParser()
            self._out = OutQueue()
            self._pending.clear()
            self._stale = 0
            self._greeted = False
            self._named = False
            self._write_registered = False
            self._offered.clear()
            if self._transfer is not None and self._tm is None:
                manager_cls = self._transfer[0]
                self._tm = manager_cls(self.send_dir, self.received_dir, self._write, self._out_queued,
                                       self.console.line)
        self._start_handshake()
        self._flush()

    def _pass(self) -> None:
        now = time.monotonic()
        timeout = 0.0 if self._hurry else PROGRESS_INTERVAL
        if self._quit == "sent" or self._quit == "ok":
            timeout = max(0.0, min(timeout, self._quit_deadline - now))
        if self.offline:
            timeout = min(timeout, self._offline_wait(now))
        readable = False
        for key, mask in self._sel.select(timeout):
            if key.data == "wake":
                self._waker.drain()
            elif mask & selectors.EVENT_READ:
                readable = True
        if readable and not self.offline:
            self._read()
            if self._status is not None:
                return
        if self.offline:
            self._drain_queue()
            if self._status is None:
                self._offline_pass()
            return
        self._drain_queue()
        self._drain_watcher()
        self._pump()
        self._advance_quit()
        self._refresh_progress()

    def _read(self) -> None:
        """Read straight into the parser's buffer; frame payloads reach the transfer component as views
        of it (no copy, no allocation per chunk: :mod:`chatroom.wire.stream`)."""
        parser = self._parser
        for _ in range(RECV_ROUNDS):
            free = parser.get_buffer()
            try:
                got = self.sock.recv_into(free, len(free))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                got = 0
            if not got:
                self._closed_by_server()
                return
            parser.buffer_updated(got)
            for event in parser.events():
                self._on_event(event)
                if self._status is not None:
                    return
            if got < len(free) and not (hasattr(self.sock, "pending") and self.sock.pending()):
                return

    def _closed_by_server(self) -> None:
        if self._quit == "ok":
            self._status = 0
            return
        self._read_rest()
        if self._status is not None:
            return
        if self._tm is not None:
            self._tm.close(LOST)  # 'sending "NAME" stopped: connection to server lost'
            self._tm = None
        if self._connect is not None and self._quit == "no" and (self._confirmed or self._lost_at):
            self.progress = []  # the transfers ended with the connection
            self._changed()
            self._go_offline()
            return
        self.console.error(LOST)
        self._status = 1

    def _read_rest(self) -> None:
        """Show what the server sent before the connection broke (a failed send may come first)."""
        for _ in range(RECV_ROUNDS):
            try:
                data = self.sock.recv(RECV_SIZE)
            except OSError:
                return
            if not data:
                return
            for event in self._parser.feed(data):
                self._on_event(event)
                if self._status is not None:
                    return

    # ---- incoming ------------------------------------------------------------------

    def _on_event(self, event: Line | Frame | TooLong) -> None:
        if isinstance(event, Frame):
            if self._tm is not None:
                self._file_frame(event)
            return
        if isinstance(event, TooLong):
            self.console.error(f"discarded an over-long {event.kind} from the server ({event.size} bytes)")
            return
        text = sanitize(event.text)
        if not self._greeted:
            self._greeted = True
            if self._asked_for_password(text):
                return
        if self._stale and _is_reply(text):
            self._stale -= 1
            return
        if self._pending and _is_reply(text):
            what = self._pending.popleft()
            if what != "pass":
                self._muted = False  # a reconnect's greeting and replay came before this
            if not self._catchup_reply(what, text):
                self._handshake_reply(what, text)
            self._after_handshake_reply()
            return
        if self._tm is not None and self._tm.handle_line(text):
            return
        if self._quit == "sent" and text.startswith("OK"):
            self._quit = "ok"
        if _is_reply(text):
            self._room_reply(text)
            if text.startswith(("OK nick ", "OK logged in as ")):
                self.name = text.split()[-1]  # the name a reconnect asks for
        elif self._room_event(text):
            return
        self.console.line(text)

    # ---- outgoing ------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        self._out.append(data)

    def _out_queued(self) -> int:
        return self._out.size

    def _send(self, text: str) -> None:
        self._out.append(encode_line(text))

    def _pump(self) -> None:
        """Let the transfer component queue chunks, and send; repeat while the kernel takes it all."""
        self._hurry = False
        for _ in range(8):
            before = self._out.size
            if self._tm is not None:
                self._tm.pump()
            produced = self._out.size > before
            self._flush()
            if self._out.size or not produced or self._status is not None:
                return
        # The kernel took everything, 8 times over: there may be more to send, and no
        # write event will come (nothing is queued), so the next select must not wait.
        self._hurry = True

    def _flush(self) -> None:
        if self._out.size:
            try:
                self._out.send_to(self.sock)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._closed_by_server()
                return
        want = self._out.size > 0
        if want != self._write_registered:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0)
            self._sel.modify(self.sock, events, "sock")
            self._write_registered = want

    # ---- progress ------------------------------------------------------------------

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _shutdown(self) -> None:
        self._stop_dialing()
        if self._watcher is not None:
            self._watcher.stop()
        if self._tm is not None:
            self._tm.close()
            self._tm = None
        self.progress = []
        self._changed()
        self._sel.close()
        self.sock.close()
        self._waker.close()
