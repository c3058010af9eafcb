"""The client's network event loop: one socket, one ``selectors`` loop, no UI.

:class:`ClientLoop` owns the connection to the server. It runs on one thread
(the main thread in line mode, a background thread under the terminal UI) and
everything that touches the socket, the parser or the file transfers happens
on that thread. Other threads (the stdin reader, the prompt, the send-folder
watcher) talk to it only through :meth:`ClientLoop.submit`,
:meth:`ClientLoop.end_input`, :meth:`ClientLoop.request_quit` and
:meth:`ClientLoop.wake`, which put an item on the :class:`~chatroom.client.inputs.Inbox`
and write one byte to a wakeup socketpair registered in the selector (stdin
itself is never registered: epoll refuses regular files).

The loop moves bytes and time; what they mean is decided by parts with their
own state, wired here and routed by a :class:`~chatroom.client.session.Session`
(sans-I/O):

1. **Handshake** (:mod:`chatroom.client.handshake`): caps, file policy, name,
   login, server password; typed lines wait until every reply is in. A
   refused name ends the loop with status 2 (:attr:`ClientLoop.refused` says
   which: ``nick``, ``login`` or ``pass``), or, ``interactive``, makes the next
   typed line the new name (:attr:`ClientLoop.naming`).
2. **Chat.** Every server line is printed through ``Console.line``; frames go
   to the transfers (:mod:`chatroom.client.files`). Typed lines are sanitized
   and sent, except the client's own commands (:mod:`chatroom.client.commands`).
3. **Quit** (:mod:`chatroom.client.inputs`): ``/quit`` typed, end of input, or
   Ctrl-C. Files still arriving ``quit_wait`` seconds (default
   :data:`QUIT_WAIT`, ``--quit-wait``) after quitting began are discarded (part
   file removed, ``discarded "NAME" from SENDER: still arriving 30 s after
   quitting (DONE of SIZE bytes)``); the user's own sends are waited for until
   they end. Then ``/quit`` is sent and the loop ends with status 0 when the
   server says ``OK`` and closes (bounded by ``quit_timeout`` seconds). Ctrl-C
   (``request_quit(force=True)``) aborts every transfer at once.
4. **Reconnect** (*connect* given, :mod:`chatroom.client.reconnect`): a
   connection that drops while not quitting is dialled again with backoff;
   the handshake is redone and the rooms rejoined, and what was missed is
   fetched by history id (:mod:`chatroom.client.catchup`, needs ``tags``).

A lost connection first shows what the server still sent (a failed send can
come before the read that finds ``* server shutting down``), then ends the
running transfers. Exit statuses returned by :meth:`ClientLoop.run`: 0 after a
clean quit (or ``/quit``, Ctrl-D, Ctrl-C while reconnecting), 1 when the
connection is lost without reconnecting (``connection to server lost`` on the
error console), 2 when the name is refused in non-interactive mode.
"""

from __future__ import annotations

import argparse
import selectors
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatroom.client.catchup import CatchUp
from chatroom.client.commands import Help
from chatroom.client.connection import Connection, Transport, Waker
from chatroom.client.files import PROGRESS_INTERVAL, Transfers
from chatroom.client.handshake import Handshake
from chatroom.client.inputs import QUIT_WAIT, Inbox, Quit
from chatroom.client.io import LOST, Console, load_transfer
from chatroom.client.reconnect import Backoff, Reconnector
from chatroom.client.replies import Replies
from chatroom.client.session import Session

__all__ = ["LOST", "QUIT_WAIT", "ClientLoop"]

#: Rounds of "pump the transfers, flush" per pass while the kernel takes everything.
PUMP_ROUNDS = 8


class ClientLoop:
    """The connection to one server, driven by :meth:`run` on a single thread.

    *sock* is a connected TCP socket (made non-blocking here). *console*
    prints. *send_dir*/*received_dir* are the transfer folders (created when
    missing); *auto_send* sends every file the watcher reports. *transfer* is
    the ``(TransferManager, SendFolderWatcher)`` pair from
    :func:`~chatroom.client.io.load_transfer` (None: no file transfer, ``/caps
    binary`` is not sent; a None watcher: the send folder is not watched).
    *quit_wait* is how many seconds files still arriving are waited for once
    quitting began; *quit_timeout* how many seconds the server has to answer
    ``/quit``. *on_change* is called (from the loop thread) when
    :attr:`naming`, :attr:`asking_password` or :attr:`progress` change, so a
    UI can redraw. *accept_files* (``ask``, ``all``, ``none``) is how offered
    files are answered, *password* logs in to the account NAME,
    *server_password* answers a server that asks for one. *tags* asks for
    message tags (``/caps tags``; they are taken off before printing) so rooms
    and history ids are known; *connect* (no arguments, returns a new
    connected socket, may block) turns on reconnecting, with *backoff*
    (default :class:`~chatroom.client.reconnect.Backoff`).
    """

    def __init__(
        self,
        sock: Transport,
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
        connect: Callable[[], Transport] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.sock = sock
        self.console = console
        self.on_change = on_change
        self._sel = selectors.DefaultSelector()
        self._waker = Waker()
        self._conn: Connection | None = None
        self._write_registered = False
        self._hurry = False  # the last pass stopped pumping early: do not block in select
        self._inbox = Inbox(self.wake)
        self._reconnect = Reconnector(connect, console, wake=self.wake, end=self._end, backoff=backoff)
        manager, watcher = transfer if transfer is not None else (None, None)
        transfers = Transfers(self, console, manager=manager, watcher=watcher, send_dir=send_dir,
                              received_dir=received_dir, auto_send=auto_send, accept_files=accept_files,
                              wake=self.wake, changed=self._changed)
        replies = Replies(self.send)
        rooms = CatchUp(replies, console, me=lambda: handshake.name, sync_ids=tags and connect is not None,
                        on_caught_up=self._reconnect.recovered)
        handshake = Handshake(replies, console, name=name, interactive=interactive, password=password,
                              server_password=server_password, binary=transfers.available,
                              accept_files=accept_files, tags=tags, changed=self._changed, end=self._end,
                              on_tags=rooms.tags_answered, on_resume=transfers.resume_answered)
        self.session = Session(self, console, replies=replies, handshake=handshake, rooms=rooms,
                               transfers=transfers,
                               quitting=Quit(quit_wait=quit_wait, quit_timeout=quit_timeout, error=console.error),
                               recovery=self._reconnect, help_list=Help(console, self.send, terminal=interactive))

    @classmethod
    def from_args(cls, args: argparse.Namespace, sock: Transport, console: Console, *,
                  interactive: bool) -> ClientLoop:
        """The loop ``chatroom-client``'s parsed *args* ask for (:mod:`chatroom.client.cli`). On a terminal
        (*interactive*) offers are asked about and message tags always asked for; in line mode every file
        is taken and tags are asked for only when reconnecting (``args.connect``)."""
        connect = getattr(args, "connect", None)
        return cls(sock, args.name, console, interactive=interactive, send_dir=args.send_dir,
                   received_dir=args.received_dir, auto_send=args.auto_send,
                   transfer=load_transfer(settle=getattr(args, "settle", None)), quit_wait=args.quit_wait,
                   accept_files=args.accept_files or ("ask" if interactive else "all"), password=args.password,
                   server_password=getattr(args, "server_password", None), tags=interactive or connect is not None,
                   connect=connect)

    # ---- called from any thread -------------------------------------------------------

    def wake(self) -> None:
        """Wake the loop (thread-safe, never blocks)."""
        self._waker.wake()

    def submit(self, text: str) -> None:
        """A line the user typed (thread-safe)."""
        self._inbox.put("line", text)

    def end_input(self) -> None:
        """The user's input ended (EOF): quit once transfers are done (thread-safe)."""
        self._inbox.put("eof")

    def request_quit(self, force: bool = False) -> None:
        """Quit (Ctrl-C). With *force*, abort running transfers instead of waiting (thread-safe)."""
        self._inbox.put("quit", force)

    # ---- what the UIs read (any thread: plain attribute reads) ----------------------------

    @property
    def busy(self) -> bool:
        """True while file transfers are in flight."""
        return self.session.transfers.busy

    @property
    def progress(self) -> list[Any]:
        """Snapshot of the running transfers (``progress()`` items), refreshed every 0.2 s."""
        return self.session.transfers.progress

    @property
    def name(self) -> str:
        """The nick asked for (and, once accepted, the nick the server knows)."""
        return self.session.handshake.name

    @property
    def naming(self) -> bool:
        """True while the server has refused the name and the next submitted line is a new one."""
        return self.session.handshake.naming

    @property
    def asking_password(self) -> bool:
        """True while the server wants its password and the next submitted line is it."""
        return self.session.handshake.asking_password

    @property
    def refused(self) -> str | None:
        """Why the loop ended with status 2: ``"nick"``, ``"login"`` or ``"pass"``."""
        return self.session.handshake.refused

    @property
    def last_ids(self) -> dict[str, int]:
        """Room -> last history id seen (with ``tags``)."""
        return self.session.rooms.last_ids

    @property
    def current_room(self) -> str | None:
        """The current room as the server's replies and tags tell it (with ``tags``)."""
        return self.session.rooms.current_room

    @property
    def offline(self) -> bool:
        """True while reconnecting, with no connection."""
        return self._reconnect.offline

    # ---- the Link the parts send through (loop thread) ------------------------------------

    def send(self, text: str) -> None:
        """Queue one line to the server (dropped while offline)."""
        if self._conn is not None:
            self._conn.send(text)

    def write(self, data: bytes) -> None:
        """Queue bytes as they are (frames)."""
        if self._conn is not None:
            self._conn.write(data)

    def queued(self) -> int:
        """Bytes queued for the server, not yet taken by the kernel."""
        return self._conn.queued if self._conn is not None else 0

    # ---- the loop -------------------------------------------------------------------------

    def run(self) -> int:
        """Run until quit, or connection loss without reconnecting; returns the exit status (0, 1 or 2)."""
        self._sel.register(self._waker, selectors.EVENT_READ, "wake")
        self.session.transfers.start()
        self._attach(self.sock)
        session = self.session
        try:
            while session.status is None:
                self._pass()
        finally:
            self._shutdown()
        return session.status

    def _attach(self, sock: Transport) -> None:
        """Start a connection on *sock*: fresh parser and output, the handshake sent."""
        self.sock = sock
        self._conn = Connection(sock)
        self._write_registered = False
        self._sel.register(self._conn, selectors.EVENT_READ, "sock")
        self.session.connected()
        self._flush()

    def _pass(self) -> None:
        session = self.session
        now = time.monotonic()
        timeout = 0.0 if self._hurry else PROGRESS_INTERVAL
        quit_wait = session.quit.wait(now)
        if quit_wait is not None:
            timeout = min(timeout, quit_wait)
        if self._conn is None:
            timeout = min(timeout, self._reconnect.wait(now))
        readable = False
        for key, mask in self._sel.select(timeout):
            if key.data == "wake":
                self._waker.drain()
            elif mask & selectors.EVENT_READ:
                readable = True
        if readable and self._conn is not None:
            self._read(self._conn)
            if session.status is not None:
                return
        self._inbox.drain(session)
        if self._conn is None:
            if session.status is None:
                self._offline_pass()
            return
        session.poll_watcher()
        self._pump()
        session.advance_quit()
        self._flush()
        session.transfers.refresh()

    def _read(self, conn: Connection) -> None:
        session = self.session
        for event in conn.events():
            session.event(event)
            if session.status is not None:
                return
        if conn.closed:
            self._closed(conn)

    def _closed(self, conn: Connection) -> None:
        """The server closed the connection (or a send failed): show what it sent, then reconnect or end."""
        if self.session.closed(conn.rest()):
            self._detach(conn)
            self._reconnect.lost()

    def _detach(self, conn: Connection) -> None:
        try:
            self._sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()
        self._conn = None

    def _offline_pass(self) -> None:
        sock = self._reconnect.poll()
        if sock is not None:
            self._attach(sock)

    # ---- outgoing ---------------------------------------------------------------------------

    def _pump(self) -> None:
        """Let the transfers queue chunks, and send; repeat while the kernel takes it all."""
        self._hurry = False
        session = self.session
        for _ in range(PUMP_ROUNDS):
            before = self.queued()
            session.transfers.pump()
            produced = self.queued() > before
            self._flush()
            if self.queued() or not produced or session.status is not None or self._conn is None:
                return
        # The kernel took everything, 8 times over: there may be more to send, and no
        # write event will come (nothing is queued), so the next select must not wait.
        self._hurry = True

    def _flush(self) -> None:
        conn = self._conn
        if conn is None:
            return
        if not conn.flush():
            self._closed(conn)
            return
        want = conn.queued > 0
        if want != self._write_registered:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0)
            self._sel.modify(conn, events, "sock")
            self._write_registered = want

    # ---- the end ----------------------------------------------------------------------------

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _end(self, status: int) -> None:
        self.session.end(status)

    def _shutdown(self) -> None:
        self._reconnect.stop()
        self.session.transfers.stop()
        self._sel.close()
        if self._conn is not None:
            self._conn.close()
        self._waker.close()
