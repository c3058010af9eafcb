"""A retry timer that backs off: what Redis refused on a live link is tried again later, less often each round.

Shared state a node sends to Redis (room rules, :mod:`chatroom.scaleout.rules`; accounts,
:mod:`chatroom.scaleout.accounts`) stays unsent until Redis answered it. A lost connection needs no timer (its
reconnection sends it again), but an error reply (``-OOM``, ``-READONLY``, ``-BUSY``...) or a full output queue
(:class:`~chatroom.scaleout.link.Backpressure`) leaves the link up: nothing would ever send it again. The owner
calls :meth:`RetryTimer.schedule` on each such failure; one timer at a time runs its *retry* after
:data:`DELAYS` (1 s, doubling after each round, at most 30 s), and :meth:`RetryTimer.reset` starts the delays over
once nothing fails. Loop thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatroom.net.scheduler import Timer

__all__ = ["DELAYS", "RetryTimer"]

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
