"""What the person types, and quitting: :class:`Inbox`, :class:`Quit` and :class:`CtrlC`.

:class:`Inbox` is the only door between the UI threads and the client loop: ``("line", text)``,
``("eof", None)`` (end of input, Ctrl-D) and ``("quit", force)`` (Ctrl-C; *force* aborts transfers)
are put from any thread and acted on, in order, on the loop's thread by :meth:`Inbox.drain`:

* typed lines wait while the handler is :meth:`~InputHandler.holding` them (the name not accepted yet,
  a handshake reply still due, a reconnect under way; never while the next line is a name or the
  server password); only Ctrl-C acts meanwhile;
* while reconnecting, ``/quit``, end of input and Ctrl-C end the client at once: the handler's
  :meth:`~InputHandler.give_up` learns how many typed lines were not sent.

:class:`Quit` is quitting (``/quit``, end of input, Ctrl-C), a small state machine
``no -> wanted -> sent -> ok``: once quitting began, files still *arriving* get ``quit_wait`` seconds,
then are discarded; the person's own sends are waited for until they end (they move as fast as the
server takes them, and the server aborts a transfer that stops moving). Then ``/quit`` goes out and the
server has ``quit_timeout`` seconds to answer ``OK``. A sender trickling a byte every few seconds can
therefore delay a client's exit by ``quit_wait`` seconds at most.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["CTRL_C_HINT", "CTRL_C_WINDOW", "QUIT_WAIT", "Arrivals", "CtrlC", "Inbox", "InputHandler", "Quit"]

#: Default seconds files still arriving are waited for once quitting began (``--quit-wait``).
QUIT_WAIT = 30.0


class InputHandler(Protocol):
    """What :meth:`Inbox.drain` hands input to (the client session)."""

    def holding(self) -> bool:
        """True while typed lines must wait."""

    def recovering(self) -> bool:
        """True from a lost connection until the new one has rejoined."""

    def running(self) -> bool:
        """False once the client is ending."""

    def typed(self, text: str) -> None:
        """One typed line."""

    def end_of_input(self) -> None:
        """End of input (Ctrl-D, the end of a pipe)."""

    def interrupt(self, force: bool) -> None:
        """Ctrl-C; *force*: abort running transfers."""

    def give_up(self, unsent: int) -> None:
        """``/quit``, end of input or Ctrl-C while reconnecting; *unsent* typed lines are dropped."""


class Inbox:
    """Input from any thread, acted on by the loop's thread (see the module docstring)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._held: deque[tuple[str, Any]] = deque()  # taken off the queue, not acted on yet

    def put(self, kind: str, value: Any = None) -> None:
        """``("line", text)``, ``("eof", None)`` or ``("quit", force)``; thread-safe, never blocks."""
        self._queue.put((kind, value))
        self._wake()

    def drain(self, handler: InputHandler) -> None:
        """Act on queued input in order, as far as *handler* lets it (loop thread)."""
        held = self._held
        while True:
            try:
                held.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if handler.recovering() and any(_ends(kind, value) for kind, value in held):
            unsent = sum(1 for kind, value in held if kind == "line" and not _ends(kind, value) and value.strip())
            held.clear()
            handler.give_up(unsent)
            return
        while held and handler.running():
            if handler.holding():
                if any(kind == "quit" for kind, _ in held):
                    handler.interrupt(True)  # only Ctrl-C acts now
                return
            kind, value = held.popleft()
            if kind == "eof":
                handler.end_of_input()
            elif kind == "quit":
                handler.interrupt(bool(value))
            elif kind == "line":
                handler.typed(value)


def _ends(kind: str, value: Any) -> bool:
    """True for input that ends the client: end of input, Ctrl-C, a typed ``/quit``."""
    if kind in ("eof", "quit"):
        return True
    return kind == "line" and isinstance(value, str) and value.strip().lower() == "/quit"


class Arrivals(Protocol):
    """The transfers as quitting sees them."""

    @property
    def busy(self) -> bool:
        """Any transfer in flight, in or out."""

    @property
    def receiving(self) -> bool:
        """Any file arriving."""

    def discard_incoming(self, reason: str) -> None:
        """Give up on the files arriving."""


class Quit:
    """Quitting (see the module docstring); *now* is ``time.monotonic()`` wherever it is passed."""

    def __init__(self, *, quit_wait: float = QUIT_WAIT, quit_timeout: float = 5.0,
                 error: Callable[[str], None]) -> None:
        self.quit_wait = quit_wait
        self.quit_timeout = quit_timeout
        self._error = error
        #: ``no``, ``wanted`` (waiting for transfers), ``sent`` (``/quit`` out) or ``ok`` (the server said OK).
        self.state = "no"
        self._arrivals_deadline = 0.0  # files still arriving after this are discarded
        self._deadline = 0.0  # the server's OK must come before this

    def want(self, files: Arrivals, now: float | None = None) -> None:
        """Quitting begins (again: nothing changes)."""
        if self.state != "no":
            return
        self.state = "wanted"
        self._arrivals_deadline = (time.monotonic() if now is None else now) + self.quit_wait
        if files.busy:
            self._error(f"waiting for file transfers to finish before quitting "
                        f"(files arriving get {self.quit_wait:g} s at most)")

    def advance(self, files: Arrivals, replies_due: bool, send: Callable[[str], None],
                now: float | None = None) -> int | None:
        """One step (each loop pass): discard late arrivals, send ``/quit`` when nothing holds it back,
        give up on the server's answer. Returns the exit status once the client may end, else None."""
        now = time.monotonic() if now is None else now
        if self.state == "wanted" and files.receiving and now >= self._arrivals_deadline:
            files.discard_incoming(f"still arriving {self.quit_wait:g} s after quitting")
        if self.state == "wanted" and not files.busy and not replies_due:
            send("/quit")
            self.state = "sent"
            self._deadline = now + self.quit_timeout
        elif self.state in ("sent", "ok") and now >= self._deadline:
            if self.state == "ok":
                return 0
            self._error("no reply to /quit from the server; closing")
            return 1
        return None

    def reply(self, text: str) -> None:
        """A server line: the ``OK`` after ``/quit``."""
        if self.state == "sent" and text.startswith("OK"):
            self.state = "ok"

    def wait(self, now: float) -> float | None:
        """Seconds the loop may sleep before the server's answer is overdue (None: no deadline)."""
        return max(0.0, self._deadline - now) if self.state in ("sent", "ok") else None


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
