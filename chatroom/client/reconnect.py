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

* :class:`Reconnector`: the offline state of one client. The client loop
  (:mod:`chatroom.client.loop`) tells it when the connection dropped
  (:meth:`Reconnector.lost`) and polls it for a new socket; it gives up after
  :data:`GIVE_UP` seconds of failed attempts, or at once when the server's TLS
  certificate is refused (``TrustRefused``: retrying would not change it).
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from typing import cast

from chatroom.client.connection import Transport
from chatroom.client.io import LOST, Console

__all__ = ["CAP", "FIRST", "GIVE_UP", "LOST", "Backoff", "Dialer", "Reconnector"]

#: Seconds before the first attempt (the upper end; jitter takes up to half off).
FIRST = 0.5
#: Longest wait between two attempts, seconds.
CAP = 30.0
#: Seconds of failed attempts after which the client stops trying (a day: a client left open overnight).
GIVE_UP = 24 * 3600.0


class Backoff:
    """Delays between attempts: ``next()`` -> seconds; ``reset()`` after a success. Any thread, not shared."""

    def __init__(self, first: float = FIRST, cap: float = CAP, rng: Callable[[], float] = random.random) -> None:
        self.first = first
        self.cap = cap
        self.rng = rng
        self.attempts = 0

    def next(self) -> float:
        """The wait before the next attempt, in seconds: half of the step plus up to another half at random."""
        step = min(self.cap, self.first * 2.0 ** min(self.attempts, 32))
        self.attempts += 1
        return step / 2 + self.rng() * step / 2

    def reset(self) -> None:
        self.attempts = 0


class Dialer:
    """One connection attempt on a daemon thread: ``deliver(sock)`` or ``deliver(exception)``.

    *connect* returns a connected socket (TLS wrapped or not) or raises.
    :meth:`start` and :meth:`cancel` may be called from any thread.
    """

    def __init__(self, connect: Callable[[], Transport], deliver: Callable[[object], None]) -> None:
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
                cast(Transport, result).close()
            except OSError:
                pass


class Reconnector:
    """Whether and when to dial again after a loss (loop thread only, except the dialer's delivery).

    *connect* (None: reconnecting is off) returns a new connected socket and may block; *wake* wakes
    the loop when an attempt ends; *end* ends the client with a status (1: gave up). While
    :attr:`offline` the loop has no socket: it sleeps at most :meth:`wait` seconds and polls
    :meth:`poll`. :attr:`lost_at` stays set from the loss until :meth:`recovered` (the rejoin is through).
    """

    def __init__(self, connect: Callable[[], Transport] | None, console: Console, *,
                 wake: Callable[[], None], end: Callable[[int], None], backoff: Backoff | None = None) -> None:
        self._connect = connect
        self.console = console
        self._wake = wake
        self._end = end
        self._backoff = backoff or Backoff()
        #: True from a lost connection until a new one is attached (no socket meanwhile).
        self.offline = False
        #: ``time.monotonic()`` of the loss being recovered from; 0.0 when connected and caught up.
        self.lost_at = 0.0
        self._dial_at = 0.0
        self._dialer: Dialer | None = None
        self._dialed: queue.SimpleQueue[object] = queue.SimpleQueue()

    @property
    def enabled(self) -> bool:
        """True when a lost connection is dialled again."""
        return self._connect is not None

    def lost(self, now: float | None = None) -> None:
        """The connection dropped (or a new one closed before its rejoin): schedule the next attempt."""
        now = time.monotonic() if now is None else now
        self.offline = True
        if self.lost_at:  # a reconnect that did not get through: keep backing off
            self._retry_later("the server closed the connection", now)
            return
        self.lost_at = now
        self._backoff.reset()
        delay = self._backoff.next()
        self._dial_at = now + delay
        self.console.error(f"{LOST}; reconnecting in {delay:.1f} s (/quit or Ctrl-D gives up)")

    def wait(self, now: float) -> float:
        """Seconds the loop may sleep before the next attempt is due (0 when due or dialing)."""
        return 0.0 if self._dialer is None and now >= self._dial_at else max(0.0, self._dial_at - now)

    def poll(self) -> Transport | None:
        """Start the attempt when due; the new connected socket once one got through, else None."""
        if self._dialer is None and time.monotonic() >= self._dial_at and self._connect is not None:
            self._dialer = Dialer(self._connect, self._deliver)
            self._dialer.start()
        try:
            result = self._dialed.get_nowait()
        except queue.Empty:
            return None
        self._dialer = None
        if isinstance(result, BaseException):
            self._attempt_failed(result)
            return None
        self.offline = False
        return cast(Transport, result)  # a Dialer delivers what connect() returned, or an exception

    def recovered(self) -> None:
        """The new connection has rejoined: the loss is over."""
        self.lost_at = 0.0

    def _attempt_failed(self, exc: BaseException) -> None:
        if type(exc).__name__ == "TrustRefused":
            self.console.error(f"chatroom-client: {exc}")
            self._end(1)
            return
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        self._retry_later(reason, time.monotonic())

    def _retry_later(self, reason: str, now: float) -> None:
        if now - self.lost_at > GIVE_UP:
            self.console.error(f"{LOST}: gave up reconnecting after {GIVE_UP / 3600:g} h")
            self._end(1)
            return
        delay = self._backoff.next()
        self._dial_at = now + delay
        self.console.error(f"cannot reconnect yet ({reason}); next try in {delay:.1f} s")

    def _deliver(self, result: object) -> None:  # the dialer's thread
        self._dialed.put(result)
        self._wake()

    def stop(self) -> None:
        """No more attempts; a socket still coming is closed."""
        if self._dialer is not None:
            self._dialer.cancel()
            self._dialer = None
