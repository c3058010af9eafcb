"""Test kit for chatroom plugins: a whole room in-process, with no network, threads or sleeps.

Installed with chatroom as a pytest plugin (the ``pytest11`` entry point), so
every test can ask for the ``chatroom_room`` fixture::

    import my_plugin

    def test_remind(chatroom_room):
        room = chatroom_room(plugins=[my_plugin])
        alice = room.join("alice")
        assert alice.say("/remind 10s stand up") == ["OK reminder 1 in 10s"]
        room.advance(10)
        assert alice.received[-1] == "* reminder: stand up"

How it works: the room is a real :class:`chatroom.server.app.Server` (real
loop, plugin host, command dispatch, rooms and history, fan-out, streams,
nick rules, file relay, budgets) built from public parts: an in-memory
selector, listener and client sockets, the clients' end of them
(:class:`FakeClient`; both :mod:`chatroom.fakeio`), a fake clock
you move with :meth:`InProcessRoom.advance`, and worker-thread jobs run on the test's thread (``threads=True``: on
real worker threads, which the room waits for, so a test catches a context used off the loop thread). Each call
(``join``, ``say``, ``advance``...) then runs event-loop passes until nothing is left to do, so every reply is in
``received`` when the call returns. No socket is ever opened, and the data
dir is not locked (chatroom-server allows one server per data dir; rooms of
the kit may share one, to play a crash and a restart).

Plugin faults are caught and logged as in a real room; they are also
collected in :attr:`InProcessRoom.faults`, and the room's log records in
:attr:`InProcessRoom.logs`. Stricter than a server in one way: a context
used for its client after that client left (docs/plugins.md, "How long a
ctx stays usable") raises ``chatroom.ContextExpired`` out of the call that
ran the plugin, where the server only logs it and ignores it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from chatroom.plugins.context import Context
from chatroom.plugins.threads import ContextExpired
from chatroom.fakeio import FakeClient, FakeListener, FakeSelector, FakeWaker, LogCollector
from chatroom.plugins.info import PluginInfo
from chatroom.net.scheduler import Timer
from chatroom.kitexamples import example_tests, plugin_name  # noqa: F401 - part of the kit

__all__ = ["InProcessRoom", "FakeClient", "PluginLoadError", "RoomNotSettled", "chatroom_room", "example_tests",
           "plugin_name"]

#: The password hash of the accounts :meth:`InProcessRoom.join` makes: no password matches it.
LOCKED_PASSWORD = "!"
#: Loop passes :meth:`InProcessRoom.settle` runs before it gives up...
MAX_PASSES = 10_000
#: ...and seconds (wall clock) it may take: a safety net for runaway plugins, not a timing.
MAX_SETTLE_SECONDS = 10.0


class PluginLoadError(Exception):
    """A plugin given to the kit failed to load or register (the message lists every problem)."""


class RoomNotSettled(RuntimeError):
    """The room still had work after :data:`MAX_PASSES` loop passes (an endless stream or timer chain?)."""


class InProcessRoom:
    """A chat room running in the test's thread; see the module docstring.

    ``plugins``: modules or objects with hookimpls, or ``(name, plugin)``
    pairs. A plugin's name keys its ``ctx.config``, ``ctx.state`` and
    ``ctx.store``; without a pair it is the name of the installed entry
    point whose value is the module, else the module's last dotted part
    (``my_pkg.remind`` -> ``remind``), so pass ``("NAME", module)`` when
    testing from source under the entry point's NAME. ``config``: plugin name -> its settings
    (``ctx.config``). ``builtins``: also load chatroom's built-in commands
    (``/nick``, ``/help``, ``/quit``...). ``entry_points``: also load the
    installed ``chatroom`` entry points. ``strict``: raise
    :class:`PluginLoadError` when any plugin fails to load, register or names
    an unknown hook. ``fault_limit``, ``slow_seconds`` and ``slow_limit`` are the host's.
    ``max_queue`` is each client's output budget in bytes. Flood control is
    off in the kit (``flood_rate=0.0``) so a test can send any number of
    lines; pass ``flood_rate``/``flood_burst`` to test a plugin under it
    (throttled clients resume as :meth:`advance` moves the clock).
    ``threads``: run ``ctx.run_in_thread`` jobs on real worker threads (as
    the server does) instead of on the test's thread; every call still
    waits (at most :data:`MAX_SETTLE_SECONDS`) for the jobs it started.
    Any other keyword is a field of
    :class:`~chatroom.server.options.ServerOptions`, as the command line
    would set it (``max_file_size=1000``, ``default_room="#class"``,
    ``admins=["root"]``, ``server_password="s3cret"``...), checked the same
    way (``ValueError`` naming it, ``TypeError`` for an unknown name); the
    whole set is ``room.server.options``.

    Use it as a context manager, or call :meth:`close`; the
    ``chatroom_room`` fixture closes its rooms itself.
    """

    def __init__(
        self,
        plugins: Iterable[object | tuple[str, object]] = (),
        *,
        data_dir: Path,
        config: Mapping[str, Mapping[str, Any]] | None = None,
        builtins: bool = True,
        entry_points: bool = False,
        disabled: Iterable[str] = (),
        strict: bool = True,
        fault_limit: int = 5,
        slow_seconds: float = 0.1,
        slow_limit: int = 2,
        max_queue: int | None = None,
        flood_rate: float = 0.0,
        flood_burst: float = 250.0,
        history_on_join: int = 20,
        announce_limit: int = 200,
        threads: bool = False,
        **options: Any,
    ) -> None:
        from chatroom.server.options import ServerOptions  # not at import: pytest loads this module everywhere

        kit = dict(data_dir=Path(data_dir), flood_rate=flood_rate, flood_burst=flood_burst,
                   history_on_join=history_on_join, announce_limit=announce_limit, plugin_fault_limit=fault_limit,
                   slow_hook_ms=slow_seconds * 1000, web=False,  # no flood control, no web door
                   irc_server_name="chatroom.test")  # the IRC door's name, whatever the machine's
        if max_queue is not None:
            kit["max_queue"] = max_queue
        server_options = ServerOptions(**{**kit, **options})  # a field named outright wins over its kit alias
        self._setup: dict[str, Any] = dict(plugins=list(plugins), config=config, builtins=builtins, entry_points=entry_points,
                           disabled=tuple(disabled), strict=strict, threads=threads, slow_limit=slow_limit,
                           options=server_options)
        self.faults: list[tuple[str, str]] = []
        self._expired: list[str] = []  # ContextExpired faults, raised by the next settle()
        self.logs: list[str] = []
        self._log_handler = LogCollector(self.logs)
        self._logger = logging.getLogger("chatroom")
        self._old_level = self._logger.level
        self._logger.addHandler(self._log_handler)
        if self._logger.getEffectiveLevel() > logging.INFO:
            self._logger.setLevel(logging.INFO)
        self._now = 0.0
        self._wall_start = time.time()
        self._build(**self._setup)

    def _build(self, plugins: list[Any], config: Any, builtins: bool, entry_points: bool, disabled: tuple[str, ...],
               strict: bool, threads: bool, slow_limit: int, options: Any) -> None:
        """Load the plugins and start a server on the fake I/O parts (see :meth:`__init__`, :meth:`restart`)."""
        from chatroom.server.app import Server, plugin_host  # not at import: pytest loads this module everywhere
        from chatroom.server.claim import take

        self.plugins = plugin_host(options, disabled=disabled, config=config, slow_limit=slow_limit,
                                   on_fault=self._fault)
        if builtins:
            self.plugins.load_builtins()
        if entry_points:
            self.plugins.load_entry_points()
        for item in plugins:
            name, plugin = item if isinstance(item, tuple) else (plugin_name(item), item)
            self.plugins.register(plugin, name, PluginInfo(name, "test", getattr(plugin, "__name__", type(plugin).__name__)))
        self.plugins.finish_loading()
        if strict and self.plugins.load_errors:
            self._logger.removeHandler(self._log_handler)
            self._logger.setLevel(self._old_level)
            raise PluginLoadError("; ".join(self.plugins.load_errors))
        self._listener, self._irc_listener = FakeListener(), FakeListener()  # the line door and the IRC door
        claim = take(options, listener=self._listener, irc_listener=self._irc_listener,
                     lock=False)  # rooms may share a data dir: a crash, a restart
        self.server = Server(options, plugins=self.plugins, selector=FakeSelector(), claim=claim, waker=FakeWaker(),
                             clock=lambda: self._now, wall_clock=lambda: self._wall_start + self._now,
                             inline_threads=not threads)
        self.server.port.strict = True  # a context used after its client left raises ContextExpired
        self._scheduler = self.server.loop.scheduler
        self.clients: list[FakeClient] = []
        self._closed = False
        self.server.start()
        if strict and self.plugins.load_errors:  # a startup hook raised: the plugin is off
            self.close()
            raise PluginLoadError("; ".join(self.plugins.load_errors))
        self.settle()

    def restart(self) -> InProcessRoom:
        """Stop the server as :meth:`close` does and start a new one on the same data folder, plugins and
        options, as a restarted ``chatroom-server`` would (the clock goes on; every client is gone: join
        again). Returns the room itself, so a persistence test is ``room.restart().join("alice")``."""
        self.close()
        self._logger.addHandler(self._log_handler)
        if self._logger.getEffectiveLevel() > logging.INFO:
            self._logger.setLevel(logging.INFO)
        self._build(**self._setup)
        return self

    # -- people ---------------------------------------------------------------------
    def join(self, nick: str | None = None, *, binary: bool = False, account: bool = False, admin: bool = False,
             operator: str | Iterable[str] = (), door: str = "line") -> FakeClient:
        """Connect a new client (it gets the greeting), then ``/nick NICK`` and ``/caps binary`` if asked.

        ``account=True``: instead of ``/nick``, log in to the account NICK as ``/login`` does (created if new,
        with no password ``/login`` accepts: join with ``account=True`` again). ``admin=True``: that account is
        a server admin too (the config file's ``admins``). ``operator="#den"`` (or several): it is an operator
        of those rooms (created if new) and put in them (``ctx.join``; the last is current). Both imply
        ``account``. Raises ValueError if the server refuses the nick.

        ``door="irc"``: an IRC client instead (since plugin API 1.3), registered with ``NICK`` and ``USER``
        (*nick* needed; ``binary`` refused); like a real one it is in no room until it sends ``JOIN #lobby``
        (``operator=`` puts it in those rooms). Its ``received`` holds raw IRC messages, and commands reach the
        plugins as ``/quote CMD ...`` or an unknown IRC command does, answered with NOTICEs (docs/irc.md).
        """
        operators = (operator,) if isinstance(operator, str) else tuple(operator)
        if (account or admin or operators) and not nick:
            raise ValueError("account=, admin= and operator= need a nick")
        if door == "irc" and (not nick or binary):
            raise ValueError("an IRC client needs a nick, and has no binary frames")
        fake, before = FakeClient(self, door), set(self.server.clients)
        sock: object = fake.sock  # a FakeSocket, held where a connection holds its socket
        (self._irc_listener if door == "irc" else self._listener).pending.append(fake.sock)
        self.settle()
        if door == "irc":  # it enters the server's table once registered
            reply = fake.say(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}")
            if not any(line.split(" ", 2)[1:2] == ["001"] for line in reply):
                raise ValueError(f"the IRC door refused NICK {nick}: {reply}")
        new = [c for cid, c in self.server.clients.items() if cid not in before and c.sock is sock]
        if not new:
            raise RuntimeError("the server did not accept the connection")
        fake.client = new[0]
        self.clients.append(fake)
        if account or admin or operators:
            self._log_in(fake, str(nick), admin, operators)
        elif nick is not None and door == "line":
            reply = fake.say(f"/nick {nick}")
            if f"OK nick {nick}" not in reply:
                raise ValueError(f"/nick {nick} refused: {reply}")
        if binary:
            fake.say("/caps binary")
        return fake

    def _log_in(self, fake: FakeClient, name: str, admin: bool, operators: tuple[str, ...]) -> None:
        port = self.server.port
        if port.accounts.get(name) is None:
            port.accounts.create(name, LOCKED_PASSWORD)
        name = port.accounts.registered(name) or name
        if admin:
            self.server.admins = self.server.admins | {name.casefold()}
        ctx = Context(port, "accounts", fake.client)
        ctx.login(name)
        for room_name in operators:
            room = self.server.hub.open_room(room_name)
            room.rules.operators[name.casefold()] = name
            port.save_rules(room)
            ctx.join(room.name)
        self.settle()

    # -- time ----------------------------------------------------------------------
    @property
    def now(self) -> float:
        """The fake clock, in seconds (starts at 0.0; only :meth:`advance` moves it)."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing every timer that falls due, in order, each at its own time."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        target = self._now + seconds
        self.settle()
        for _ in range(MAX_PASSES):
            due = self._scheduler.next_due()
            if due is None or due > target:
                break
            self._now = max(self._now, due)
            self.settle()
        else:
            raise RoomNotSettled("timers keep re-arming inside the advanced interval")
        self._now = target
        self.settle()

    @property
    def timers(self) -> list[Timer]:
        """Pending (not cancelled) timers of plugins, soonest first; each has ``when``, ``plugin``, ``fn``.

        The server's own housekeeping timers (``plugin == "core"``) are left out.
        """
        return [t for t in self._scheduler.pending() if t.plugin != "core"]

    # -- hooks and contexts ------------------------------------------------------------
    def hook(self, hook: str, client: FakeClient | None = None, /, **kwargs: Any) -> list[Any]:
        """Call *hook* on every plugin as the server would (``ctx.client`` is *client*'s), then settle.

        Returns the non-None results. Example: ``room.hook("file_offered", alice, name="a.txt", size=3)``.
        """
        target = client.client if client else None
        results = self.server.call_hook(hook, target, **kwargs)
        self.settle()
        return results

    def context(self, plugin: str, client: FakeClient | None = None) -> Context:
        """A :class:`~chatroom.plugins.context.Context` for the plugin named *plugin* (a ``str``: the name it was
        given, which keys its ``ctx.state``, ``ctx.store`` and ``ctx.config``; not the module) and bound to
        *client*'s connection (None: a server event's context), to call plugin code directly. It follows the
        server's rules: used after *client* left, its client parts raise ``ContextExpired``."""
        return Context(self.server.port, plugin, client.client if client else None)

    def find(self, nick: str) -> FakeClient | None:
        """The connected FakeClient whose nick is *nick* (case-insensitive), or None."""
        client = self.server.find_client(nick)
        return next((f for f in self.clients if f.client is client and client is not None), None)

    @property
    def errors(self) -> list[str]:
        """The ``[ERROR]`` log lines so far (faults, slow hooks, rejected input)."""
        return [line for line in self.logs if line.startswith("[ERROR]")]

    # -- the loop --------------------------------------------------------------------
    def settle(self) -> None:
        """Run event-loop passes until nothing is left to read, run or write.

        Raises :class:`RoomNotSettled` after :data:`MAX_PASSES` busy passes or :data:`MAX_SETTLE_SECONDS`
        seconds; ``ContextExpired`` if a plugin used a context's client part after that client left.
        """
        deadline = time.monotonic() + MAX_SETTLE_SECONDS
        for _ in range(MAX_PASSES):
            if not self._pass():
                if not self._scheduler.outstanding:
                    if self._expired:  # a plugin used a context after its client left: fail the call that ran it
                        error = ContextExpired(self._expired[0])
                        self._expired.clear()
                        raise error
                    return
                self._scheduler.wait_done(max(0.0, deadline - time.monotonic()))  # threads=True: a job runs
            if time.monotonic() > deadline:
                break
        raise RoomNotSettled("the room is still busy (an endless ctx.stream, a 0 s timer re-arming itself, "
                             "or a worker job that never ends?)")

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Settle until ``predicate()`` is true and return its value: for work a plugin's **own** thread hands
        to the loop with ``ctx.call_soon_threadsafe`` (a bridge, a file watcher), which no call of the kit
        waits for. Wakes as soon as such a call is queued (and checks every 50 ms for anything else); raises
        ``TimeoutError`` after *timeout* seconds of real time (the fake clock does not move). Test thread only.
        """
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.05) + 1_000_000):  # bounded by the deadline long before the count
            self.settle()
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._scheduler.wait_done(min(left, 0.05))
        raise TimeoutError(f"room.wait_for: {getattr(predicate, '__name__', predicate)} still false after {timeout} s")

    def _fault(self, plugin: str, trace: str) -> None:
        self.faults.append((plugin, trace))
        if "\nchatroom.plugins.threads.ContextExpired: " in trace:
            self._expired.append(f"plugin {plugin}: {trace.rstrip().rsplit(chr(10), 1)[-1].split(': ', 1)[1]}\n"
                                 f"{trace}")

    def _pass(self) -> bool:
        """One loop pass (``Server.loop.run_once``), else a wait for the history's writer; True if either ran."""
        writer = self.server.history.writes.writer  # threads=True: an acknowledgement waits for its commit
        return self.server.loop.run_once(0) or (writer.pending > 0 and writer.wait(MAX_SETTLE_SECONDS) in (True, False))

    # -- end -------------------------------------------------------------------------
    def close(self) -> None:
        """Shut the room down like the server does: ``shutdown`` hook, clients told and closed, stores closed."""
        if self._closed:
            return
        self._closed = True
        for fake in self.clients:
            fake.sock.stalled = False
        self.settle()
        self.server.close()
        self._logger.removeHandler(self._log_handler)
        self._logger.setLevel(self._old_level)

    def __enter__(self) -> InProcessRoom:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def chatroom_room(tmp_path: Path) -> Iterator[Callable[..., InProcessRoom]]:
    """A factory of in-process rooms: ``room = chatroom_room(plugins=[my_plugin], config={...})``.

    Takes the keyword arguments of :class:`InProcessRoom` (``data_dir``
    defaults to a fresh folder under ``tmp_path``). Every room it made is
    closed (``shutdown`` hook, stores closed) when the test ends.
    """
    rooms: list[InProcessRoom] = []

    def make(plugins: Iterable[object | tuple[str, object]] = (), **options: Any) -> InProcessRoom:
        options.setdefault("data_dir", tmp_path / f"chatroom-data-{len(rooms)}")
        room = InProcessRoom(plugins, **options)
        rooms.append(room)
        return room

    yield make
    for room in rooms:
        room.close()
