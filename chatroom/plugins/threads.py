"""Thread and lifetime rules of the plugin context: the loop-thread check, the parts of a context usable
from any thread, and :class:`ContextExpired`.

Everything a :class:`~chatroom.plugins.context.Context` does to the server
must happen on the event-loop thread (the thread that ran
``Server.start``/``serve_forever``, or the test's thread in the kit). A
context used from another thread (a ``run_in_thread`` job, a plugin's own
bridge thread) raises :class:`RuntimeError` naming the method and the way
back, ``ctx.call_soon_threadsafe``. Before the loop thread is known (the
server is being built) every thread is allowed.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import warnings
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from chatroom.model.errors import Refused
from chatroom.model.store import plugin_store_path, transaction

if TYPE_CHECKING:
    from chatroom.model.member import Member
    from chatroom.plugins.port import Host

__all__ = ["ContextExpired", "Now", "ThreadSafeParts", "check_loop_thread"]


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


class ThreadSafeParts:
    """The base of :class:`~chatroom.plugins.context.Context`: its server (``_server``, checked) and the
    clocks, folder, transactions and thread hand-off (``call_soon_threadsafe``, ``now``, ``monotonic`` and
    ``data_dir`` work from any thread)."""

    __slots__ = ()
    _srv: Host
    plugin: str
    client: Member | None

    @property
    def expired(self) -> bool:
        """True once the client of this context left the server: its client parts (``reply``, ``room``,
        ``members``, ``join``...) no longer work; its room-wide parts do (``say(room, ...)``). Any thread."""
        return self.client is not None and self.client.gone

    def _caller(self) -> Member:
        """The caller, for a method that acts on it: Refused without one, ContextExpired once it left."""
        client = self.client
        if client is None:
            raise Refused("this needs a client")
        if client.gone:
            what = sys._getframe(1).f_code.co_name
            self._server.context_expired(self.plugin, what, client)
            raise ContextExpired(f"ctx.{what}: its client {client.nick} left")
        return client

    def _live(self, what: str) -> Member | None:
        """The caller, for output to it: None without one, or once it left (reported: see :attr:`expired`)."""
        client = self.client
        if client is not None and client.gone:
            self._server.context_expired(self.plugin, what, client)
            return None
        return client

    @property
    def _server(self) -> Host:  # the host, on the loop thread only (names the calling method otherwise)
        check_loop_thread(self._srv)
        return self._srv

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        """From any thread (a bridge's own thread): run ``fn(*args)`` on the loop thread at its next pass,
        waking it, with this plugin's fault isolation."""
        self._srv.call_soon_threadsafe(fn, args, self.plugin)

    @property
    def now(self) -> Now:
        """``ctx.now()``: the wall clock, Unix seconds (``float``; the kit's fake clock moves it). ``ctx.now``
        uncalled, as a number: the loop's monotonic clock at the start of the pass (as before API 1.0; use
        ``ctx.monotonic()``)."""
        return Now(self._srv.now, self._srv.wall_clock)

    def monotonic(self) -> float:
        """The loop's monotonic clock in seconds (``float``; the kit's fake clock, from 0.0): for timeouts."""
        return self._srv.monotonic()

    @property
    def data_dir(self) -> Path:
        """This plugin's own folder, ``DATA_DIR/plugins/<plugin>/`` (a ``Path``), created on first use."""
        folder = plugin_store_path(self._srv.data_dir, self.plugin).with_suffix("")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """``with ctx.transaction() as db:``: the block in one ``BEGIN IMMEDIATE`` transaction on ``ctx.store``
        (``COMMIT``; ``ROLLBACK`` and re-raise if it raises; not re-entrant). Loop thread only. See
        :func:`chatroom.model.store.transaction`."""
        return transaction(self._server.plugin_store(self.plugin))
