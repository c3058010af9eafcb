"""Lines the client sends on its own, and the replies it takes for them: :class:`Replies`.

The server answers commands in order, each with one ``OK ...`` or ``ERROR ...`` line (docs/protocol.md).
The handshake (``/caps``, ``/files``, ``/nick``, ``/login``, ``/pass``) and the catch-up after a
reconnect (``/history``, ``/join``, ``/part``) send lines whose replies the person must not see: each
is :meth:`Replies.ask`-ed with a label and a handler, and the next reply goes to the oldest one
(:meth:`Replies.take`). Typed lines wait while any is outstanding, so their replies never interleave.

A server that wants its password first refuses everything sent before ``/pass``:
:meth:`Replies.forget` turns the outstanding entries into *stale* replies, which are swallowed.
Sans-I/O: the owner passes the function that sends a line. Loop thread only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

__all__ = ["Replies", "ReplyHandler", "is_reply"]

#: Called with ``(label, text)`` for the reply to a line asked under *label*.
ReplyHandler = Callable[[str, str], None]


def is_reply(text: str) -> bool:
    """True for ``OK``/``ERROR`` lines: the reply to a command."""
    return text in ("OK", "ERROR") or text.startswith(("OK ", "ERROR "))


class Replies:
    """Outstanding replies to the client's own lines, oldest first; *send* queues one line."""

    def __init__(self, send: Callable[[str], None]) -> None:
        self._send = send
        self._waiting: deque[tuple[str, ReplyHandler]] = deque()
        self._stale = 0  # replies still to come for lines the server refused before /pass: ignored

    def ask(self, text: str, label: str, handler: ReplyHandler) -> None:
        """Send *text*; its reply will go to ``handler(label, reply)``, not to the person."""
        self._send(text)
        self._waiting.append((label, handler))

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def __contains__(self, label: object) -> bool:
        return any(label == entry[0] for entry in self._waiting)

    @property
    def head(self) -> str | None:
        """The label the next reply answers, or None."""
        return self._waiting[0][0] if self._waiting else None

    def forget(self) -> None:
        """Every outstanding line is refused by the server (before ``/pass``): swallow their replies."""
        self._stale += len(self._waiting)
        self._waiting.clear()

    def reset(self) -> None:
        """A new connection: nothing is outstanding."""
        self._waiting.clear()
        self._stale = 0

    def take(self, text: str) -> str | None:
        """Give reply *text* to its handler: returns its label, ``""`` for a stale reply, None if no line
        of the client's own waits for it (it answers a typed line)."""
        if not is_reply(text):
            return None
        if self._stale:
            self._stale -= 1
            return ""
        if not self._waiting:
            return None
        label, handler = self._waiting.popleft()
        handler(label, text)
        return label
