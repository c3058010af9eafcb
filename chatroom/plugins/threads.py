"""Thread and lifetime rules of the plugin context: the loop-thread check (:func:`check_loop_thread`), the
clock ``ctx.now`` gives (:class:`Now`), and :class:`ContextExpired`.

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
import warnings
from typing import TYPE_CHECKING, Any, Callable


if TYPE_CHECKING:
    from chatroom.plugins.port import Host

__all__ = ["ContextExpired", "Now", "check_loop_thread"]


class ContextExpired(RuntimeError):
    """A context's client part (``ctx.reply``, ``ctx.room``, ``ctx.join``...) was used after that client left
    (docs/plugins.md, "How long a ctx stays usable"). The server ignores such output, logging it once per
    plugin and method, and refuses such actions with this error; the test kit raises it for both, out of the
    call that ran the plugin (``alice.say``, ``room.advance``...), so a plugin's tests catch the mistake."""


def check_loop_thread(host: Host, depth: int = 2) -> None:
    """Raise RuntimeError ``ctx.NAME called off the loop thread; use ctx.call_soon_threadsafe``
    unless the caller runs on *host*'s loop thread (``host.loop_thread``; None: not started, allowed).

    *depth* is how many frames up the context method's name is found (for the message).
    """
    owner = host.loop_thread
    if owner is None or owner == threading.get_ident():
        return
    name = sys._getframe(depth).f_code.co_name
    raise RuntimeError(f"ctx.{name} called off the loop thread; use ctx.call_soon_threadsafe")


#: The warning ``ctx.now`` gives when it is used as a number.
NOW_AS_NUMBER = ("ctx.now used as a number (the loop's monotonic clock, not the time of day) is deprecated since "
                 "plugin API 1.1: call ctx.monotonic() for that clock, or ctx.now() for the wall clock")


class Now(float):
    """What ``ctx.now`` gives: calling it, ``ctx.now()``, is the wall clock in Unix seconds (``float``).

    Used without the call, as a number, it is the loop's monotonic clock in seconds, as ``ctx.now`` was
    before plugin API 1.0, so ``ctx.now + 60`` silently mixed two clocks: since 1.1 every such use (arithmetic,
    comparison, ``float()``, ``int()``, formatting) still works but warns ``DeprecationWarning`` naming
    ``ctx.monotonic()`` and ``ctx.now()``.
    """

    __slots__ = ("_wall",)
    _wall: Callable[[], float]

    def __new__(cls, monotonic: float, wall: Callable[[], float]) -> Now:
        value = super().__new__(cls, monotonic)
        value._wall = wall
        return value

    def __call__(self) -> float:
        return float(self._wall())

    def __hash__(self) -> int:
        return float.__hash__(self)


def _as_number(name: str) -> Callable[..., Any]:
    number = getattr(float, name)

    def use(self: Now, *args: Any) -> Any:
        warnings.warn(NOW_AS_NUMBER, DeprecationWarning, stacklevel=2)
        return number(self, *args)
    use.__name__ = name
    return use


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
              "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__divmod__", "__pow__", "__neg__", "__abs__",
              "__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__", "__float__", "__int__", "__round__",
              "__trunc__", "__floor__", "__ceil__", "__bool__", "__format__", "__str__"):
    setattr(Now, _name, _as_number(_name))
