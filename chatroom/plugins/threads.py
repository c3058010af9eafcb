"""Thread rules of the plugin context: the loop-thread check, and the parts of it usable from any thread.

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
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from chatroom.model.store import plugin_store_path, transaction

if TYPE_CHECKING:
    from chatroom.plugins.port import Host

__all__ = ["Now", "ThreadSafeParts", "check_loop_thread"]


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


class ThreadSafeParts:
    """The base of :class:`~chatroom.plugins.context.Context`: its server (``_server``, checked) and the
    clocks, folder, transactions and thread hand-off (``call_soon_threadsafe``, ``now``, ``monotonic`` and
    ``data_dir`` work from any thread)."""

    __slots__ = ()
    _srv: Host
    plugin: str

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
