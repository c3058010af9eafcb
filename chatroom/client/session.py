"""One client's conversation with the server, without sockets: :class:`Session` routes between the parts.

The parts own their state; the session only decides where each thing goes (the client loop,
:mod:`chatroom.client.loop`, moves the bytes and calls it):

* a server line goes first to the :class:`~chatroom.client.handshake.Handshake` (the greeting may
  ask for the server password), then, when it replies to a line the client sent on its own, to that
  line's owner through :class:`~chatroom.client.replies.Replies` (the handshake, or the
  :class:`~chatroom.client.catchup.CatchUp`, which learns the next step after each one); otherwise to
  the :class:`~chatroom.client.files.Transfers` (replies to own offers), to :class:`~chatroom.client.inputs.Quit`
  (the ``OK`` after ``/quit``), to the catch-up (room lines: tags off, ids kept), and to the console;
* a frame goes to the transfers;
* typed input comes from the :class:`~chatroom.client.inputs.Inbox`: a line is the new name or server
  password while the handshake wants one, else a client command (``/quit``, the file commands,
  ``/help``) or a line to send (the catch-up notes ``/join #room KEY``);
* after a lost connection the :class:`Recovery` (the reconnector) says whether to dial again.

:attr:`Session.status` is set once the client is to end (0, 1 or 2; the first one set wins).
Loop thread only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from chatroom.client.catchup import CatchUp
from chatroom.client.commands import Help
from chatroom.client.connection import ServerEvent
from chatroom.client.files import Link, Transfers
from chatroom.client.handshake import Handshake
from chatroom.client.inputs import Quit
from chatroom.client.io import LOST, Console
from chatroom.client.replies import Replies, is_reply
from chatroom.wire.lines import Frame, TooLong, sanitize

__all__ = ["Recovery", "Session"]


class Recovery(Protocol):
    """The reconnecting state as the session sees it (:class:`chatroom.client.reconnect.Reconnector`)."""

    @property
    def enabled(self) -> bool:
        """A lost connection is dialled again."""

    @property
    def lost_at(self) -> float:
        """``time.monotonic()`` of the loss being recovered from; 0.0 when there is none."""

    def recovered(self) -> None:
        """The new connection has rejoined."""

    def stop(self) -> None:
        """No more attempts."""


class Session:
    """The routing between the client's parts (see the module docstring)."""

    def __init__(self, link: Link, console: Console, *, replies: Replies, handshake: Handshake, rooms: CatchUp,
                 transfers: Transfers, quitting: Quit, recovery: Recovery, help_list: Help) -> None:
        self.link = link
        self.console = console
        self.replies = replies
        self.handshake = handshake
        self.rooms = rooms
        self.transfers = transfers
        self.quit = quitting
        self.recovery = recovery
        self.help = help_list
        #: The exit status once the client is to end, else None.
        self.status: int | None = None

    def end(self, status: int) -> None:
        """End the client with *status* (unless it is ending already)."""
        if self.status is None:
            self.status = status

    # ---- the connection ----------------------------------------------------------------

    def connected(self) -> None:
        """A new connection (the first, or one after a loss): the handshake goes out."""
        self.replies.reset()
        self.help.reset()
        if self.recovery.lost_at:
            self.rooms.begin_rejoin(self.recovery.lost_at)
        self.transfers.connected()
        self.handshake.start()

    def closed(self, rest: Iterable[ServerEvent]) -> bool:
        """The connection ended; *rest* is what the server sent before (shown first). True when the
        loop should reconnect; otherwise :attr:`status` is set."""
        if self.quit.state == "ok":
            self.end(0)
            return False
        for event in rest:
            self.event(event)
            if self.status is not None:
                return False
        self.transfers.lost()  # 'sending "NAME" stopped: connection to server lost'
        recovery = self.recovery
        if recovery.enabled and self.quit.state == "no" and (self.handshake.confirmed or recovery.lost_at):
            return True
        self.console.error(LOST)
        self.end(1)
        return False

    # ---- what the server sends ---------------------------------------------------------

    def event(self, event: ServerEvent) -> None:
        """One event from the server's stream."""
        if isinstance(event, Frame):
            self.transfers.frame(event)
            return
        if isinstance(event, TooLong):
            self.console.error(f"discarded an over-long {event.kind} from the server ({event.size} bytes)")
            return
        text = sanitize(event.text)
        if self.handshake.greeting(text):
            return
        label = self.replies.take(text)
        if label is not None:
            if label:  # not a stale reply
                self.rooms.after_reply(label, self.handshake.named)
            return
        if self.transfers.line(text) or self.help.reply(text):
            return
        self.quit.reply(text)
        if is_reply(text):
            self.rooms.reply(text)
            self.handshake.learn(text)
        elif self.rooms.line(text):
            return
        self.console.line(text)

    # ---- typed input (an InputHandler for the Inbox) -------------------------------------

    def holding(self) -> bool:
        """Typed lines wait while the name is not accepted, a reply is due or a reconnect runs (not while
        the next line is a name or the server password)."""
        waiting = bool(self.recovery.lost_at) or not self.handshake.named or bool(self.replies)
        return waiting and not self.handshake.wants_input

    def recovering(self) -> bool:
        return bool(self.recovery.lost_at)

    def running(self) -> bool:
        return self.status is None

    def typed(self, raw: str) -> None:
        text = sanitize(raw.rstrip("\r\n"))
        if self.handshake.wants_input:
            self.handshake.typed(text)
            return
        head, _, rest = text.partition(" ")
        cmd = head.lower() if text.startswith("/") and not text.startswith("//") else ""
        if self.quit.state != "no" or not text.strip():
            if self.quit.state != "no" and text.strip() and self.handshake.interactive:
                self.console.error(f"not sent (quitting): {text}")
            return
        if cmd == "/quit":
            self.quit.want(self.transfers)
        elif not (self.transfers.command(cmd, rest) or (cmd == "/help" and self.help.typed(rest))):
            if cmd:
                self.rooms.typed(cmd, rest)
            self.link.send(text)

    def end_of_input(self) -> None:
        self.quit.want(self.transfers)

    def interrupt(self, force: bool) -> None:
        if force:
            self.transfers.abort("interrupted (Ctrl-C)")
        if not self.handshake.named:
            self.end(0)  # not in the room yet: nothing to say goodbye to
            return
        self.quit.want(self.transfers)

    def give_up(self, unsent: int) -> None:
        self.recovery.stop()
        if unsent:
            self.console.error(f"not reconnected; {unsent} typed line{'s' * (unsent != 1)} not sent")
        self.end(0)

    # ---- each pass -----------------------------------------------------------------------

    def poll_watcher(self) -> None:
        """Files the send folder's watcher found complete (once named, not while quitting)."""
        if self.handshake.named and self.quit.state == "no":
            self.transfers.poll_watcher()
        if self.handshake.settled:
            self.transfers.ready()

    def advance_quit(self) -> None:
        """The next step of quitting, if it began."""
        status = self.quit.advance(self.transfers, bool(self.replies), self.link.send)
        if status is not None:
            self.end(status)
