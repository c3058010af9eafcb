"""Thread rules of the plugin context: the loop-thread check and the clock value ``ctx.now``.

Everything a :class:`~chatroom.plugins.context.Context` does to the server
must happen on the event-loop thread (the thread that ran
``Server.start``/``serve_forever``, or the test's thread in the kit). A
context used from another thread (a ``run_in_thread`` job, a plugin's own
bridge thread) raises :class:`RuntimeError` naming the method and the way
back, ``ctx.call_soon_threadsafe``. Before the loop thread is known (the
server is being built) every thread is allowed.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable

__all__ = ["Now", "check_loop_thread"]


def check_loop_thread(server: Any, depth: int = 2) -> None:
    """Raise RuntimeError ``ctx.NAME called off the loop thread; use ctx.call_soon_threadsafe``
    unless the caller runs on *server*'s loop thread (``server.loop_thread``; None: not started, allowed).

    *depth* is how many frames up the context method's name is found (for the message).
    """
    owner = getattr(server, "loop_thread", None)
    if owner is None or owner == threading.get_ident():
        return
    name = sys._getframe(depth).f_code.co_name
    raise RuntimeError(f"ctx.{name} called off the loop thread; use ctx.call_soon_threadsafe")


class Now(float):
    """What ``ctx.now`` gives: calling it, ``ctx.now()``, is the wall clock in Unix seconds (``float``).

    Used without the call, as a number, it is the loop's monotonic clock in seconds, as ``ctx.now`` was
    before plugin API 1.0 (the accounts plugin's rate limits): prefer ``ctx.monotonic()`` for that.
    """

    __slots__ = ("_wall",)

    def __new__(cls, monotonic: float, wall: Callable[[], float]) -> Now:
        value = super().__new__(cls, monotonic)
        value._wall = wall
        return value

    def __call__(self) -> float:
        return float(self._wall())
