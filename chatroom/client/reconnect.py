"""Reconnecting after the connection dropped: when to try again, and trying without blocking the loop.

* :class:`Backoff`: exponential backoff with jitter ("equal jitter": half the
  step fixed, half random), from :data:`FIRST` (0.5 s) doubling up to
  :data:`CAP` (30 s): delays of about 0.25-0.5, 0.5-1, 1-2 ... 15-30 s.
* :class:`Dialer`: one connection attempt (TCP, and TLS when asked: whatever
  the *connect* callable does, which may block up to its own timeout) on a
  daemon thread, so the client loop keeps answering ``/quit`` and Ctrl-D at
  once. The result (a socket or the exception) is handed to *deliver* from
  that thread; a socket that arrives after :meth:`Dialer.cancel` is closed
  instead.

The client loop (:mod:`chatroom.client.loop`) drives these: it gives up after
:data:`GIVE_UP` seconds of failed attempts, or at once when the server's TLS
certificate is refused (``TrustRefused``: retrying would not change it).
"""

from __future__ import annotations

import queue
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

__all__ = ["CAP", "FIRST", "GIVE_UP", "LOST", "Backoff", "Dialer", "ReconnectSide"]

#: Seconds before the first attempt (the upper end; jitter takes up to half off).
FIRST = 0.5
#: Longest wait between two attempts, seconds.
CAP = 30.0
#: Seconds of failed attempts after which the client stops trying (a day: a client left open overnight).
GIVE_UP = 24 * 3600.0
LOST = "connection to server lost"


class Backoff:
    """Delays between attempts: ``next()`` -> seconds; ``reset()`` after a success. Any thread, not shared."""

    def __init__(self, first: float = FIRST, cap: float = CAP, rng: Callable[[], float] = random.random) -> None:
        self.first = first
        self.cap = cap
        self.rng = rng
        self.attempts = 0

    def next(self) -> float:
        """The wait before the next attempt, in seconds: half of the step plus up to another half at random."""
        step = min(self.cap, self.first * (2 ** min(self.attempts, 32)))
        self.attempts += 1
        return step / 2 + self.rng() * step / 2

    def reset(self) -> None:
        self.attempts = 0


class Dialer:
    """One connection attempt on a daemon thread: ``deliver(sock)`` or ``deliver(exception)``.

    *connect* returns a connected socket (TLS wrapped or not) or raises.
    :meth:`start` and :meth:`cancel` may be called from any thread.
    """

    def __init__(self, connect: Callable[[], socket.socket], deliver: Callable[[object], None]) -> None:
        self._connect = connect
        self._deliver = deliver
        self._lock = threading.Lock()
        self._cancelled = False

    def start(self) -> None:
        threading.Thread(target=self._run, name="chatroom-reconnect", daemon=True).start()

    def cancel(self) -> None:
        """Nothing is delivered after this; a socket still coming is closed."""
        with self._lock:
            self._cancelled = True

    def _run(self) -> None:
        try:
            result: object = self._connect()
        except Exception as exc:  # noqa: BLE001 - every failure is the loop's to judge
            result = exc
        with self._lock:
            if not self._cancelled:
                self._deliver(result)
                return
        if not isinstance(result, BaseException):
            try:
                result.close()  # type: ignore[attr-defined]
            except OSError:
                pass


class ReconnectSide:
    """The reconnecting state of :class:`chatroom.client.loop.ClientLoop` (a mixin; loop thread only).

    While :attr:`offline`, the loop has no socket: it waits for the next
    attempt (at most :data:`CAP` seconds away) or for the person, whose
    ``/quit``, Ctrl-D or Ctrl-C ends the client at once (status 0).
    """

    console: Any
    _status: int | None
    _tm: Any
    _lost_at: float
    _sel: Any
    sock: Any
    _connect: Callable[[], socket.socket] | None

    if TYPE_CHECKING:  # provided by ClientLoop and RoomSide (type-only: no stub shadows them)
        def _attach(self, sock: socket.socket) -> None: ...
        def _begin_rejoin(self) -> None: ...
        def wake(self) -> None: ...

    def _init_reconnect(self, connect: Callable[[], socket.socket] | None, backoff: Backoff | None) -> None:
        self._connect = connect
        self._backoff = backoff or Backoff()
        #: True from a lost connection until a new one is attached (no socket meanwhile).
        self.offline = False
        self._dial_at = 0.0
        self._dialer: Dialer | None = None
        self._dialed: queue.SimpleQueue[object] = queue.SimpleQueue()

    def _go_offline(self) -> None:
        """The connection dropped (or a new one closed before its rejoin): schedule the next attempt."""
        try:
            self._sel.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()
        self.offline = True
        now = time.monotonic()
        if self._lost_at:  # a reconnect that did not get through: keep backing off
            self._retry_later("the server closed the connection", now)
            return
        self._lost_at = now
        self._backoff.reset()
        delay = self._backoff.next()
        self._dial_at = now + delay
        self.console.error(f"{LOST}; reconnecting in {delay:.1f} s (/quit or Ctrl-D gives up)")

    def _offline_wait(self, now: float) -> float:
        """Seconds the loop may sleep before the next attempt is due (0 when due or dialing)."""
        return 0.0 if self._dialer is None and now >= self._dial_at else max(0.0, self._dial_at - now)

    def _offline_pass(self) -> None:
        now = time.monotonic()
        if self._dialer is None and now >= self._dial_at:
            self._dialer = Dialer(self._connect, self._deliver)  # type: ignore[arg-type]
            self._dialer.start()
        try:
            result = self._dialed.get_nowait()
        except queue.Empty:
            return
        self._dialer = None
        if isinstance(result, BaseException):
            self._attempt_failed(result)
            return
        self.offline = False
        self._begin_rejoin()
        self._attach(result)  # type: ignore[arg-type]

    def _attempt_failed(self, exc: BaseException) -> None:
        if type(exc).__name__ == "TrustRefused":
            self.console.error(f"chatroom-client: {exc}")
            self._status = 1
            return
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        self._retry_later(reason, time.monotonic())

    def _retry_later(self, reason: str, now: float) -> None:
        if now - self._lost_at > GIVE_UP:
            self.console.error(f"{LOST}: gave up reconnecting after {GIVE_UP / 3600:g} h")
            self._status = 1
            return
        delay = self._backoff.next()
        self._dial_at = now + delay
        self.console.error(f"cannot reconnect yet ({reason}); next try in {delay:.1f} s")

    def _deliver(self, result: object) -> None:  # the dialer's thread
        self._dialed.put(result)
        self.wake()

    def _stop_dialing(self) -> None:
        if self._dialer is not None:
            self._dialer.cancel()
            self._dialer = None
