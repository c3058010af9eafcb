"""What the person types, and quitting, for :class:`chatroom.client.loop.ClientLoop`.

A mixin: these methods run on the client loop's thread. Input items come off
the loop's queue in order: ``("line", text)``, ``("eof", None)`` (end of
input, Ctrl-D) and ``("quit", force)`` (Ctrl-C; *force* aborts transfers).

* Typed lines wait while the name is not accepted yet or a handshake reply is
  still due, and while the client is reconnecting; then they go out in order.
* While reconnecting (offline, or a new connection not through its rejoin),
  ``/quit``, end of input and Ctrl-C end the client at once with status 0;
  lines typed meanwhile are not sent (the client says how many).
* Otherwise quitting waits for running transfers (see the loop's docstring),
  sends ``/quit`` and waits ``quit_timeout`` seconds for the server's ``OK``.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from chatroom.wire.lines import sanitize

__all__ = ["CTRL_C_HINT", "CTRL_C_WINDOW", "CtrlC", "InputSide"]


class InputSide:
    """Typed lines, end of input and Ctrl-C (see the module docstring)."""

    console: Any
    interactive: bool
    naming: bool
    asking_password: bool
    offline: bool
    quit_wait: float
    quit_timeout: float
    _queue: queue.SimpleQueue[tuple[str, Any]]
    _held: deque[tuple[str, Any]]
    _pending: deque[str]
    _named: bool
    _status: int | None
    _tm: Any
    _quit: str
    _quit_deadline: float
    _arrivals_deadline: float
    _lost_at: float

    if TYPE_CHECKING:  # provided by ClientLoop and its other mixins (type-only: no stub shadows them)
        @property
        def busy(self) -> bool: ...
        def _send(self, text: str) -> None: ...
        def _flush(self) -> None: ...
        def _changed(self) -> None: ...
        def _send_nick(self, name: str) -> None: ...
        def _typed_password(self, text: str) -> None: ...
        def _file_command(self, cmd: str, rest: str) -> bool: ...
        def _typed_room_command(self, cmd: str, rest: str) -> None: ...
        def _stop_dialing(self) -> None: ...

    def _drain_queue(self) -> None:
        """Act on queued input in order; typed lines wait while the name is not accepted yet."""
        while True:
            try:
                self._held.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if self._lost_at and any(_ends(kind, value) for kind, value in self._held):
            self._give_up_reconnecting()
            return
        while self._held and self._status is None:
            waiting = self._lost_at or not self._named or self._pending
            if waiting and not self.naming and not self.asking_password:
                # Waiting for the server to accept the name: only Ctrl-C acts now.
                if any(kind == "quit" for kind, _ in self._held):
                    self._on_input("quit", True)
                return
            kind, value = self._held.popleft()
            self._on_input(kind, value)

    def _give_up_reconnecting(self) -> None:
        """``/quit``, Ctrl-D or Ctrl-C while reconnecting: end now."""
        unsent = sum(1 for kind, value in self._held if kind == "line" and not _ends(kind, value) and value.strip())
        self._held.clear()
        self._stop_dialing()
        if unsent:
            self.console.error(f"not reconnected; {unsent} typed line{'s' * (unsent != 1)} not sent")
        self._status = 0

    def _on_input(self, kind: str, value: Any) -> None:
        if kind == "eof":
            self._want_quit()
        elif kind == "quit":
            if value and self._tm is not None:
                self._tm.close()
                self._tm = None
            if not self._named:
                self._status = 0  # not in the room yet: nothing to say goodbye to
                return
            self._want_quit()
        elif kind == "line":
            self._on_typed(value)

    def _on_typed(self, raw: str) -> None:
        text = sanitize(raw.rstrip("\r\n"))
        if self.asking_password:
            self._typed_password(text)
            return
        head, _, rest = text.partition(" ")
        cmd = head.lower() if text.startswith("/") and not text.startswith("//") else ""
        if self.naming:
            if cmd == "/quit":
                self._status = 0  # no name yet: nothing to say goodbye to
            elif text.strip():
                self.naming = False  # typed lines wait again until the server answers
                self._send_nick(text.strip())
                self._changed()
            else:
                self.console.error("a name is needed")
            return
        if self._quit != "no" or not text.strip():
            if self._quit != "no" and text.strip() and self.interactive:
                self.console.error(f"not sent (quitting): {text}")
            return
        if cmd == "/quit":
            self._want_quit()
            return
        if self._file_command(cmd, rest):  # /sendfile /transfers /cancel /accept /decline (files.py)
            return
        if cmd:
            self._typed_room_command(cmd, rest)
        self._send(text)

    def _want_quit(self) -> None:
        if self._quit == "no":
            self._quit = "wanted"
            self._arrivals_deadline = time.monotonic() + self.quit_wait
            if self.busy:
                self.console.error(f"waiting for file transfers to finish before quitting "
                                   f"(files arriving get {self.quit_wait:g} s at most)")

    def _advance_quit(self) -> None:
        if (self._quit == "wanted" and self._tm is not None and self._tm.receiving
                and time.monotonic() >= self._arrivals_deadline):
            self._tm.discard_incoming(f"still arriving {self.quit_wait:g} s after quitting")
        if self._quit == "wanted" and not self.busy and not self._pending:
            self._send("/quit")
            self._flush()
            self._quit = "sent"
            self._quit_deadline = time.monotonic() + self.quit_timeout
        elif self._quit in ("sent", "ok") and time.monotonic() >= self._quit_deadline:
            if self._quit == "ok":
                self._status = 0
            else:
                self.console.error("no reply to /quit from the server; closing")
                self._status = 1


def _ends(kind: str, value: Any) -> bool:
    """True for input that ends the client: end of input, Ctrl-C, a typed ``/quit``."""
    if kind in ("eof", "quit"):
        return True
    return kind == "line" and isinstance(value, str) and value.strip().lower() == "/quit"


#: Seconds within which a second Ctrl-C quits.
CTRL_C_WINDOW = 2.0
CTRL_C_HINT = "* Ctrl-C again within 2 s quits (or /quit); your typed line is kept"


class CtrlC:
    """What Ctrl-C at the terminal UI's prompt does (UI thread only).

    The first press quits nothing and loses nothing: the line being typed stays
    in the prompt and :data:`CTRL_C_HINT` is shown (``"hint"``). A second press
    within :data:`CTRL_C_WINDOW` seconds quits (``"quit"``: running transfers
    finish first); any press after that aborts them (``"abort"``).
    """

    def __init__(self, window: float = CTRL_C_WINDOW) -> None:
        self.window = window
        self._last = float("-inf")
        self._quitting = False

    def press(self, now: float) -> str:
        """*now* is ``time.monotonic()``; returns ``"hint"``, ``"quit"`` or ``"abort"``."""
        if self._quitting:
            return "abort"
        if now - self._last <= self.window:
            self._quitting = True
            return "quit"
        self._last = now
        return "hint"
