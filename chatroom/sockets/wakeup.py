"""A self-pipe that wakes a ``selectors`` loop from another thread or a signal.

Both the server and the client loop block in ``select``; worker threads,
the watchdog observer, the prompt thread and signal handlers wake them by
writing one byte to a non-blocking socketpair whose read end is registered in
the selector (the classic self-pipe trick; a socketpair rather than
``os.pipe`` so it works wherever sockets do).
"""

from __future__ import annotations

import socket


class Waker:
    """Register the object itself for ``EVENT_READ`` (it has ``fileno()``); call :meth:`wake` from anywhere."""

    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)

    def fileno(self) -> int:
        """The read end, for the selector."""
        return self._r.fileno()

    @property
    def write_fd(self) -> int:
        """The write end, for ``signal.set_wakeup_fd``."""
        return self._w.fileno()

    def wake(self) -> None:
        """Make the loop's next ``select`` return (thread-safe, never blocks, never raises)."""
        try:
            self._w.send(b"\0")
        except OSError:  # BlockingIOError: a wakeup is already pending; other: closing
            pass

    def drain(self) -> None:
        """Read every pending wakeup byte (loop thread)."""
        try:
            while self._r.recv(4096):
                pass
        except OSError:  # BlockingIOError: drained
            pass

    def close(self) -> None:
        self._r.close()
        self._w.close()
