"""Plugin API 1.0 (issue 11): threads and lifecycle; time, files and transactions."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from types import SimpleNamespace

import pytest

from chatroom import Command, hookimpl
from chatroom.net.scheduler import Scheduler

#: Bound on every wait of these tests (seconds): a safety net, never a timing.
WAIT = 10.0


def plugin(*cmds: Command, **hooks) -> SimpleNamespace:
    p = SimpleNamespace(register_commands=hookimpl(lambda: list(cmds)))
    for name, fn in hooks.items():
        setattr(p, name, hookimpl(specname=name)(fn))
    return p


def _work(i: int) -> None:
    """Uneven CPU work, so a pool of threads would finish jobs out of order."""
    sum(range(20_000 if i % 3 == 0 else 10))


# -- threads -----------------------------------------------------------------------------------
def test_serial_jobs_run_one_at_a_time_in_submission_order_on_real_threads(chatroom_room):
    ran: list[int] = []
    done: list[int] = []
    threads: set[int] = set()

    def log100(ctx, args):
        def job(i: int):
            def fn() -> int:
                _work(i)
                threads.add(threading.get_ident())
                ran.append(i)
                return i
            return fn
        for i in range(100):
            ctx.run_in_thread(job(i), lambda result, error: done.append(result), serial=True)

    room = chatroom_room(plugins=[("logger", plugin(Command("log100", log100)))], threads=True)
    room.join("alice").say("/log100")
    assert ran == list(range(100))
    assert done == list(range(100))
    assert len(threads) == 1 and threading.get_ident() not in threads  # one real worker, not the test's thread


def test_call_soon_threadsafe_runs_on_the_loop_thread_with_fault_isolation(chatroom_room):
    seen: list[tuple[str, int]] = []
    bridges: list[threading.Thread] = []

    def bridge(ctx, args):
        def relay() -> None:  # a plugin's own thread: it may only hand work to the loop
            ctx.call_soon_threadsafe(lambda text: (seen.append((text, threading.get_ident())), ctx.reply(text)),
                                     "from the bridge")
            ctx.call_soon_threadsafe(lambda: 1 / 0)
        thread = threading.Thread(target=relay)
        bridges.append(thread)
        thread.start()

    room = chatroom_room(plugins=[("bridge", plugin(Command("bridge", bridge)))])
    alice = room.join("alice")
    alice.say("/bridge")
    bridges[0].join(WAIT)
    room.settle()
    assert seen == [("from the bridge", threading.get_ident())]
    assert alice.last == "from the bridge"
    assert [p for p, _ in room.faults] == ["bridge"] and "ZeroDivisionError" in room.faults[0][1]


def test_call_soon_threadsafe_wakes_the_loop():
    woken = threading.Event()
    ran: list[str] = []
    scheduler = Scheduler(lambda owner, fn, *args: fn(*args), woken.set)
    thread = threading.Thread(target=scheduler.call_soon_threadsafe, args=(ran.append, ("x",), "p"))
    thread.start()
    thread.join(WAIT)
    assert woken.wait(WAIT)
    assert scheduler.run_ready() == 1 and ran == ["x"]


def test_context_used_off_the_loop_thread_raises_a_clear_error(chatroom_room):
    def off(ctx, args):
        use = {"reply": lambda: ctx.reply("racy"), "store": lambda: ctx.store,
               "broadcast": lambda: ctx.broadcast("racy")}[args[0]]
        ctx.run_in_thread(use, lambda result, error: ctx.reply(f"error: {error}"))

    room = chatroom_room(plugins=[("off", plugin(Command("off", off)))], threads=True)
    alice = room.join("alice")
    for method in ("reply", "store", "broadcast"):
        assert alice.say(f"/off {method}") == [
            f"error: ctx.{method} called off the loop thread; use ctx.call_soon_threadsafe"]
    ctx = room.context("off")
    assert ctx.store.execute("SELECT 1").fetchone() == (1,)  # the store was never opened on the worker


# -- shutdown -----------------------------------------------------------------------------------
def test_shutdown_order_client_left_then_queued_jobs_then_shutdown_then_stores_closed(chatroom_room):
    events: list[str] = []

    def client_left(ctx, reason):
        events.append(f"left {ctx.nick}: {reason}")
        nick = ctx.nick

        def write() -> str:  # a logger's job, queued while the server stops
            return nick

        def written(result, error):
            ctx.store.execute("CREATE TABLE IF NOT EXISTS leaves (nick TEXT)")  # the store is still open
            ctx.store.execute("INSERT INTO leaves VALUES (?)", (result,))
            events.append(f"written {result}")
        ctx.run_in_thread(write, written, serial=True)

    def shutdown(ctx):
        events.append("shutdown " + ",".join(n for (n,) in ctx.store.execute("SELECT nick FROM leaves")))

    room = chatroom_room(plugins=[("log", plugin(client_left=client_left, shutdown=shutdown))], threads=True)
    alice, bob = room.join("alice"), room.join("bob")
    room.close()
    assert events == ["left alice: server shutting down", "left bob: server shutting down",
                      "written alice", "written bob", "shutdown alice,bob"]
    assert alice.closed and bob.closed


def test_queued_inline_jobs_also_run_at_shutdown(chatroom_room):
    events: list[str] = []
    p = plugin(client_left=lambda ctx, reason: ctx.run_in_thread(lambda: "job", lambda r, e: events.append(r)),
               shutdown=lambda ctx: events.append("shutdown"))
    room = chatroom_room(plugins=[("p", p)])
    room.join("alice")
    room.close()
    assert events == ["job", "shutdown"]


def test_drain_gives_up_after_its_timeout_and_logs_it(caplog):
    release = threading.Event()
    done: list[object] = []
    scheduler = Scheduler(lambda owner, fn, *args: fn(*args), lambda: None)
    scheduler.run_in_thread(lambda: release.wait(WAIT), lambda r, e: done.append(r), serial=True, plugin="slow")
    with caplog.at_level(logging.ERROR, logger="chatroom.server"):
        assert scheduler.drain(0.05) is False
    assert "1 worker jobs still unfinished" in caplog.text
    release.set()
    assert scheduler.drain(WAIT) is True and done == [True]
    scheduler.close()


# -- time, files, transactions --------------------------------------------------------------------------
def test_now_and_monotonic_follow_the_kit_clock(chatroom_room):
    room = chatroom_room(plugins=[("p", plugin())])
    ctx = room.context("p")
    wall, mono = ctx.now(), ctx.monotonic()
    assert mono == 0.0 and abs(wall - time.time()) < 60
    room.advance(90)
    assert ctx.monotonic() == 90.0
    assert ctx.now() == pytest.approx(wall + 90)
    with pytest.warns(DeprecationWarning, match=r"ctx.now used as a number .* deprecated since plugin API 1.1: "
                                                r"call ctx.monotonic\(\) for that clock, or ctx.now\(\) for the wall"):
        assert ctx.now + 0.0 == 90.0  # before API 1.0 ctx.now was the loop's clock as a number: still is, loudly
    for use in (lambda n: n < 100, lambda n: float(n), lambda n: int(n), lambda n: f"{n:.0f}", lambda n: 60 + n):
        with pytest.warns(DeprecationWarning, match="ctx.now used as a number"):
            use(ctx.now)


def test_data_dir_is_a_per_plugin_folder_created_on_first_use(chatroom_room, tmp_path):
    room = chatroom_room(plugins=[("notes", plugin()), ("other", plugin())], data_dir=tmp_path / "data")
    folder = room.context("notes").data_dir
    assert folder == tmp_path / "data" / "plugins" / "notes" and folder.is_dir()
    (folder / "a.txt").write_text("kept")
    assert room.context("other").data_dir != folder


def test_transaction_commits_or_rolls_back(chatroom_room):
    room = chatroom_room(plugins=[("p", plugin())])
    ctx = room.context("p")
    ctx.store.execute("CREATE TABLE t (x INTEGER)")
    with ctx.transaction() as db:
        db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError, match="boom"), ctx.transaction() as db:
        db.execute("INSERT INTO t VALUES (2)")
        assert ctx.store.in_transaction
        raise RuntimeError("boom")
    assert [x for (x,) in ctx.store.execute("SELECT x FROM t")] == [1]
    assert not ctx.store.in_transaction
    with pytest.raises(sqlite3.OperationalError), ctx.transaction(), ctx.transaction():  # not re-entrant
        pass


# -- a startup hook that raises -----------------------------------------------------------------------------
class HalfStarted:
    """A plugin whose startup (a migration, a config check) fails: its commands would run on missing state."""

    def __init__(self) -> None:
        self.shutdowns = 0

    @hookimpl
    def startup(self, ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("migration failed")

    @hookimpl
    def shutdown(self, ctx):  # type: ignore[no-untyped-def]
        self.shutdowns += 1  # releases what startup took before it raised

    @hookimpl
    def register_commands(self):  # type: ignore[no-untyped-def]
        return [Command("half", lambda ctx, args: ctx.reply("half ran"))]

    @hookimpl
    def chat_message(self, ctx, text):  # type: ignore[no-untyped-def]
        return text.upper()


def test_a_plugin_whose_startup_raises_is_switched_off_not_left_half_started(chatroom_room):
    half = HalfStarted()
    room = chatroom_room(plugins=[("half", half)], builtins=True, strict=False)
    assert half.shutdowns == 1  # switched off: its shutdown hook ran at once
    alice, bob = room.join("alice"), room.join("bob")
    assert alice.say("/half") == ["ERROR - Command not understood"]
    alice.say("hello")
    assert bob.last.endswith("alice: hello")  # not HELLO: its chat_message hook is off too
    assert any(line.startswith("* half (test: HalfStarted) [disabled: its startup hook raised]")
               for line in alice.say("/plugins"))
    assert any("plugin half is off: its startup hook raised" in line for line in room.errors)
    root = room.join("root", admin=True)
    assert root.say("/plugins enable half") == ["ERROR plugin half is off: its startup hook raised; restart the server"]
    room.close()
    assert half.shutdowns == 1  # once, not again when the server stops
    with pytest.raises(Exception, match="plugin half is off: its startup hook raised"):
        chatroom_room(plugins=[("half", HalfStarted())])  # strict (the default): the test fails at once
