"""Sending shared state to Redis until it took it: the last call of each name decides, and a retry timer backs off.

Shared state a node sends to Redis (room rules, :mod:`chatroom.scaleout.rules`; accounts,
:mod:`chatroom.scaleout.accounts`) stays unsent until Redis answered it. :class:`LastCalls` sends each call on
behalf of a name (a room, an account) and tells its owner how the *last* call of that name ended (a room changed
twice in one round trip: the first reply decides nothing). A lost connection needs no timer (its reconnection
sends again), but an error reply (``-OOM``, ``-READONLY``, ``-BUSY``...) or a full output queue
(:class:`~chatroom.scaleout.link.Backpressure`) leaves the link up: nothing would ever send it again. The owner
calls :meth:`RetryTimer.schedule` on each such failure; one timer at a time runs its *retry* after
:data:`DELAYS` (1 s, doubling after each round, at most 30 s), and :meth:`RetryTimer.reset` starts the delays over
once nothing fails. Loop thread only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chatroom.scaleout.link import Unavailable

if TYPE_CHECKING:
    from chatroom.net.scheduler import Timer
    from chatroom.scaleout.link import RedisLink

__all__ = ["DELAYS", "LastCalls", "RetryTimer"]

#: Seconds before a retry round: the first delay, doubled after each round, up to the longest.
DELAYS = (1.0, 30.0)


class RetryTimer:
    """Runs *retry()* once after a backing-off delay each time :meth:`schedule` is called (one timer pending at
    most: calls while it is pending add nothing). *call_later(seconds, fn)* starts a timer and returns it with a
    ``cancel()`` (the loop's ``call_later``); *delays* is ``(first, longest)`` in seconds. Loop thread only."""

    def __init__(self, call_later: Callable[[float, Callable[[], None]], Timer], retry: Callable[[], None],
                 delays: tuple[float, float] = DELAYS) -> None:
        self.call_later = call_later
        self.retry = retry
        self.first, self.longest = delays
        #: Rounds scheduled since the last :meth:`reset` (the exponent of the next delay).
        self.rounds = 0
        self._timer: Timer | None = None
        self._closed = False

    @property
    def pending(self) -> bool:
        """A retry is due (scheduled, not run yet, not cancelled)."""
        return self._timer is not None

    def next_delay(self) -> float:
        """Seconds the next :meth:`schedule` waits: *first* * 2 ** rounds, at most *longest*."""
        return min(self.longest, self.first * 2.0 ** min(self.rounds, 16))

    def schedule(self) -> None:
        """Something failed: run *retry* after :meth:`next_delay` seconds, unless a retry is pending already or
        the timer is closed; the delay after this one doubles."""
        if self._timer is None and not self._closed:
            self._timer = self.call_later(self.next_delay(), self._fire)
            self.rounds += 1

    def reset(self) -> None:
        """Nothing fails any more (or the link came back): the next round waits *first* seconds again. A retry
        pending still runs."""
        self.rounds = 0

    def close(self) -> None:
        """Cancel the pending retry; :meth:`schedule` does nothing from now on (the server stops)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        self.retry()


class LastCalls:
    """Calls to Redis through *link*, each on behalf of a name (a room, an account), of which the last one of each
    name decides. Its reply goes to ``ok(name)`` then to the call's ``done(reply)``; an error reply (a
    :class:`~chatroom.scaleout.resp.ReplyError`), the connection lost first, or the call refused at once
    (:class:`~chatroom.scaleout.link.Unavailable`, :class:`~chatroom.scaleout.link.Backpressure`) to
    ``failed(name, exc)``. The replies of a name's earlier calls, and every reply after :meth:`close`, are dropped.
    Holds one number per name in flight. Loop thread only."""

    def __init__(self, link: RedisLink, ok: Callable[[str], None],
                 failed: Callable[[str, Exception], None]) -> None:
        self.link = link
        self.ok = ok
        self.failed = failed
        self._count = 0
        self._sent: dict[str, int] = {}  # name -> number of its last call in flight
        self._closed = False

    def __contains__(self, name: object) -> bool:
        """A call of *name* is in flight (its reply decides)."""
        return name in self._sent

    def send(self, name: str, done: Callable[[Any], None], *command: str | int) -> None:
        """Send *command* on behalf of *name*; it supersedes *name*'s calls in flight."""
        self._count += 1
        number = self._sent[name] = self._count
        try:
            self.link.call(*command, on_reply=functools.partial(self._answered, name, number, done))
        except Unavailable as exc:
            del self._sent[name]  # (an earlier call still in flight decides nothing now)
            self.failed(name, exc)

    def close(self) -> None:
        """Drop every reply from now on (the server stops)."""
        self._closed = True

    def _answered(self, name: str, number: int, done: Callable[[Any], None], reply: Any) -> None:
        if self._closed or self._sent.get(name) != number:  # (a later call of *name* decides)
            return
        del self._sent[name]
        if isinstance(reply, Exception):
            self.failed(name, reply)
        else:
            self.ok(name)
            done(reply)
