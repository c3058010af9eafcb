"""The plugin test kit (chatroom.testing): an in-process room driven by the real server code."""

from __future__ import annotations

import hashlib
import sys
import textwrap
import threading
import time
from types import SimpleNamespace

import pytest

from chatroom import Command, CommandError, hookimpl
from chatroom.model.store import migrate
from chatroom.testing import InProcessRoom, PluginLoadError, RoomNotSettled

pytest_plugins = ["pytester"]


def commands(*cmds: Command, **hooks) -> SimpleNamespace:
    plugin = SimpleNamespace(register_commands=hookimpl(lambda: list(cmds)))
    for name, fn in hooks.items():
        setattr(plugin, name, hookimpl(specname=name)(fn))
    return plugin


def test_join_greets_and_names_like_a_real_connection(chatroom_room):
    room = chatroom_room()
    alice = room.join("alice")
    assert alice.received[0].startswith("* Welcome to chatroom, room lobby. You are guest1.")
    assert alice.received[1:] == ["OK nick alice"]
    bob = room.join()
    assert bob.nick == "guest2"
    assert alice.received[-1] == "* guest2 joined lobby"
    with pytest.raises(ValueError, match="taken"):
        room.join("ALICE")


def test_say_returns_only_the_speakers_lines_and_chat_reaches_the_others(chatroom_room):
    room = chatroom_room()
    alice, bob = room.join("alice"), room.join("bob")
    assert alice.say("hello") == []
    assert bob.last == "alice: hello"
    assert alice.say("/who") == ["* 2 in lobby: alice, bob"]
    assert bob.say("/nosuch") == ["ERROR - Command not understood"]


def test_advance_fires_timers_in_order_each_at_its_own_time(chatroom_room):
    fired: list[tuple[str, float]] = []

    def arm(ctx, args):
        def tick(n: int) -> None:
            fired.append((f"tick{n}", room.now))
            if n < 3:
                ctx.call_later(1, tick, n + 1)

        ctx.call_later(1, tick, 1)
        ctx.call_later(2.5, lambda: fired.append(("half", room.now)))
        ctx.call_later(10, lambda: fired.append(("late", room.now)))

    room = chatroom_room(plugins=[("timers", commands(Command("arm", arm)))])
    room.join("alice").say("/arm")
    started = time.monotonic()
    room.advance(3)
    assert fired == [("tick1", 1.0), ("tick2", 2.0), ("half", 2.5), ("tick3", 3.0)]
    assert room.now == 3.0
    assert [t.when for t in room.timers] == [10.0]
    room.advance(3600)
    assert fired[-1] == ("late", 10.0)
    assert time.monotonic() - started < 1.0, "the fake clock never sleeps"
    with pytest.raises(ValueError):
        room.advance(-1)


def test_cancelled_timers_do_not_fire(chatroom_room):
    def arm(ctx, args):
        ctx.state["timer"] = ctx.call_later(5, ctx.reply, "should not arrive")

    def disarm(ctx, args):
        ctx.state["timer"].cancel()
        ctx.reply("OK")

    room = chatroom_room(plugins=[("t", commands(Command("arm", arm), Command("disarm", disarm)))])
    alice = room.join("alice")
    alice.say("/arm")
    alice.say("/disarm")
    assert room.timers == []
    room.advance(10)
    assert alice.last == "OK"


def test_run_in_thread_work_and_callback_run_right_after_the_command_on_this_thread(chatroom_room):
    threads: list[threading.Thread] = []

    def slow(ctx, args):
        ctx.reply("working")

        def work():
            threads.append(threading.current_thread())
            if args:
                raise OSError("disk on fire")
            return 41 + 1

        ctx.run_in_thread(work, lambda result, error: ctx.reply(f"result {result} error {error!r}"))

    room = chatroom_room(plugins=[("w", commands(Command("work", slow)))])
    alice = room.join("alice")
    before = threading.active_count()
    assert alice.say("/work") == ["working", "result 42 error None"]
    assert alice.say("/work fail") == ["working", "result None error OSError('disk on fire')"]
    assert threads == [threading.current_thread()] * 2
    assert threading.active_count() == before


def test_streams_are_drained_completely_by_each_call(chatroom_room):
    def many(ctx, args):
        ctx.stream(f"line {i}" for i in range(int(args[0])))

    room = chatroom_room(plugins=[("s", commands(Command("many", many)))])
    alice = room.join("alice")
    lines = alice.say("/many 50000")  # ~500 KB: more than the server pulls in one pass
    assert len(lines) == 50000 and lines[0] == "line 0" and lines[-1] == "line 49999"


def test_an_endless_stream_is_reported_not_hung(chatroom_room, monkeypatch):
    import itertools

    import chatroom.testing

    monkeypatch.setattr(chatroom.testing, "MAX_PASSES", 5)
    room = chatroom_room(plugins=[("s", commands(Command("forever", lambda ctx, args: ctx.stream(
        f"x{i}" for i in itertools.count()))))])
    alice = room.join("alice")
    with pytest.raises(RoomNotSettled):
        alice.say("/forever")
    alice.leave()


def test_leave_and_quit_are_seen_by_the_room_and_the_hooks(chatroom_room):
    left: list[tuple[str, str]] = []
    room = chatroom_room(plugins=[("l", commands(client_left=lambda ctx, reason: left.append((ctx.nick, reason))))])
    alice, bob, carol = room.join("alice"), room.join("bob"), room.join("carol")
    alice.leave()
    assert bob.last == "* alice left lobby (connection lost)"
    assert bob.say("/quit") == ["OK"]
    assert bob.closed and not carol.closed
    assert carol.last == "* bob left lobby (quit)"
    assert left == [("alice", "connection lost"), ("bob", "quit")]
    with pytest.raises(RuntimeError):
        bob.say("anyone?")


def test_a_stalled_client_is_dropped_by_the_real_backpressure_code(chatroom_room):
    room = chatroom_room(max_queue=64 * 1024)
    alice, bob, carol = room.join("alice"), room.join("bob"), room.join("carol")
    bob.stall()
    for i in range(200):
        alice.say(f"{i:03d} " + "x" * 1000)
    assert not bob.closed  # it leaves the room at once, and has a few seconds to read what it had and why
    room.advance(3)
    assert bob.closed
    assert carol.last.startswith("alice: 199 ")
    assert "* bob left lobby (too slow)" in carol.received


def test_a_stalled_client_gets_everything_once_it_reads_again(chatroom_room):
    room = chatroom_room()
    alice, bob = room.join("alice"), room.join("bob")
    bob.stall()
    bob.clear()
    alice.say("one")
    alice.say("two")
    assert bob.received == []
    bob.resume()
    assert bob.received == ["alice: one", "alice: two"]


def test_hook_calls_a_hook_as_the_server_would(chatroom_room):
    plugin = commands(file_offered=lambda ctx, name, size: f"{ctx.nick} may not send {name}" if size > 10 else None)
    room = chatroom_room(plugins=[("guard", plugin)])
    alice = room.join("alice")
    assert room.hook("file_offered", alice, name="big.iso", size=11) == ["alice may not send big.iso"]
    assert room.hook("file_offered", alice, name="small.txt", size=3) == []


def test_file_transfer_through_the_real_relay_reaches_the_hooks(chatroom_room):
    delivered: list[tuple] = []
    plugin = commands(file_delivered=lambda ctx, name, size, receivers, ok: delivered.append(
        (ctx.nick, name, size, receivers, ok)))
    room = chatroom_room(plugins=[("audit", plugin)])
    alice, bob = room.join("alice", binary=True), room.join("bob", binary=True)
    data = b"hello"
    assert alice.say(f'/sendfile "a b.txt" {len(data)}') == ["OK sendfile 1 a b.txt"]
    alice.send_frame("file-data 1", data)
    alice.send_frame(f"file-end 1 {hashlib.sha256(data).hexdigest()}")
    assert [f.meta for f in bob.frames] == ["file-begin 1 5 alice a b.txt", "file-data 1",
                                            f"file-end 1 {hashlib.sha256(data).hexdigest()}"]
    assert bob.frames[1].payload == data
    assert delivered == [("alice", "a b.txt", 5, ["bob"], True)]


def test_context_lets_a_test_call_plugin_code_directly(chatroom_room):
    room = chatroom_room(config={"mine": {"level": 3}}, strict=False)  # no plugin "mine" is loaded: reported
    assert room.errors == ["[ERROR] chatroom.plugins: config table [plugins.mine] names no plugin; it is ignored"]
    alice = room.join("alice")
    ctx = room.context("mine", alice)
    assert ctx.nick == "alice" and ctx.config["level"] == 3
    ctx.broadcast("* from a test", include_self=True)
    room.settle()
    assert alice.last == "* from a test"


def test_each_plugin_gets_its_own_store_state_and_config(chatroom_room, tmp_path):
    def note(ctx, args):
        migrate(ctx.store, ["CREATE TABLE notes (text TEXT);"])
        ctx.store.execute("INSERT INTO notes VALUES (?)", (ctx.text,))
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        count = ctx.store.execute("SELECT count(*) FROM notes").fetchone()[0]
        ctx.reply(f"{ctx.plugin}: {count} notes, state {ctx.state['n']}, prefix {ctx.config.get('prefix')}")

    room = chatroom_room(plugins=[("one", commands(Command("n1", note))), ("two", commands(Command("n2", note)))],
                         config={"one": {"prefix": ">"}}, data_dir=tmp_path / "data")
    alice = room.join("alice")
    alice.say("/n1 a")
    assert alice.say("/n1 b") == ["one: 2 notes, state 2, prefix >"]
    assert alice.say("/n2 c") == ["two: 1 notes, state 1, prefix None"]
    assert (tmp_path / "data" / "plugins" / "one.sqlite3").exists()


def test_faults_and_error_log_lines_are_collected(chatroom_room):
    def boom(ctx, args):
        raise ZeroDivisionError("kaboom")

    room = chatroom_room(plugins=[("bad", commands(Command("boom", boom), Command("no", lambda c, a: (
        _ for _ in ()).throw(CommandError("refused")))))])
    alice = room.join("alice")
    assert alice.say("/boom") == ["ERROR /boom failed: internal error in plugin bad"]
    assert alice.say("/no") == ["ERROR refused"]
    [(plugin, trace)] = room.faults
    assert plugin == "bad" and "ZeroDivisionError: kaboom" in trace
    assert any(line.startswith("[ERROR] chatroom.plugins: plugin bad raised:") for line in room.errors)


def test_strict_rooms_refuse_broken_plugins_and_lenient_ones_report(chatroom_room):
    typo = SimpleNamespace(chat_mesage=hookimpl(lambda ctx, text: text))
    with pytest.raises(PluginLoadError, match="unknown hook 'chat_mesage'"):
        chatroom_room(plugins=[("typo", typo)])
    room = chatroom_room(plugins=[("typo", typo)], strict=False)
    assert "unknown hook 'chat_mesage'" in room.plugins.load_errors[0]


def test_close_runs_the_shutdown_hook_and_tells_the_clients(tmp_path):
    stopped: list[str] = []
    plugin = commands(shutdown=lambda ctx: (stopped.append("down"), ctx.broadcast("* bye from the plugin")))
    with InProcessRoom([("p", plugin)], data_dir=tmp_path) as room:
        alice = room.join("alice")
    assert stopped == ["down"]
    assert alice.received[-2:] == ["* bye from the plugin", "* server shutting down"]
    assert alice.closed
    room.close()  # idempotent
    assert stopped == ["down"]


def test_builtins_can_be_left_out(chatroom_room):
    room = chatroom_room(builtins=False, plugins=[("only", commands(Command("only", lambda c, a: c.reply("me"))))])
    alice = room.join()
    assert alice.say("/only") == ["me"]
    assert alice.say("/help") == ["ERROR - Command not understood"]
    with pytest.raises(ValueError):
        room.join("bob")  # no /nick without the core plugin


def test_a_module_is_named_after_its_installed_entry_point(chatroom_room, tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "chatroom_kit_probe-1.0.dist-info").mkdir(parents=True)
    (site / "chatroom_kit_probe-1.0.dist-info" / "METADATA").write_text("Name: chatroom-kit-probe\nVersion: 1.0\n")
    (site / "chatroom_kit_probe-1.0.dist-info" / "entry_points.txt").write_text("[chatroom]\nprobe = kit_probe_mod\n")
    (site / "kit_probe_mod.py").write_text(textwrap.dedent("""
        from chatroom import hookimpl, Command

        @hookimpl
        def register_commands():
            return [Command("whoami", lambda ctx, args: ctx.reply(ctx.plugin))]
    """))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "kit_probe_mod", raising=False)
    import kit_probe_mod

    room = chatroom_room(plugins=[kit_probe_mod])
    assert room.join("alice").say("/whoami") == ["probe"]
    installed = chatroom_room(entry_points=True)
    assert installed.join("alice").say("/whoami") == ["probe"]
    assert installed.plugins.info["probe"].distribution == "chatroom-kit-probe"
    monkeypatch.delitem(sys.modules, "kit_probe_mod")


def test_an_object_plugin_is_named_after_its_module_colon_object_entry_point(chatroom_room, tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "chatroom_kit_obj-1.0.dist-info").mkdir(parents=True)
    (site / "chatroom_kit_obj-1.0.dist-info" / "METADATA").write_text("Name: chatroom-kit-obj\nVersion: 1.0\n")
    (site / "chatroom_kit_obj-1.0.dist-info" / "entry_points.txt").write_text(
        "[chatroom]\ncounter = kit_obj_mod:plugin\n")
    (site / "kit_obj_mod.py").write_text(textwrap.dedent("""
        from chatroom import hookimpl, Command

        class Counter:
            def __init__(self):
                self.calls = 0

            def count(self, ctx, args):
                self.calls += 1
                ctx.reply(f"{ctx.plugin} {self.calls}")

            @hookimpl
            def register_commands(self):
                return [Command("count", self.count)]

        plugin = Counter()
    """))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "kit_obj_mod", raising=False)
    import kit_obj_mod

    room = chatroom_room(plugins=[kit_obj_mod.plugin])
    assert room.join("alice").say("/count") == ["counter 1"]
    installed = chatroom_room(entry_points=True)
    assert installed.join("alice").say("/count") == ["counter 2"]  # the same object, loaded by the server
    monkeypatch.delitem(sys.modules, "kit_obj_mod")


def test_the_fixture_is_available_to_any_project_through_the_pytest11_entry_point(pytester):
    """A plugin author's project gets ``chatroom_room`` without a conftest or an import."""
    pytester.makepyfile(test_author="""
        from chatroom import Command, hookimpl

        class Hello:
            @hookimpl
            def register_commands(self):
                return [Command("hello", lambda ctx, args: ctx.reply("hello " + ctx.nick))]

        def test_hello(chatroom_room):
            room = chatroom_room(plugins=[("hello", Hello())])
            assert room.join("zoe").say("/hello") == ["hello zoe"]
    """)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_restart_keeps_the_data_folder_and_drops_clients_and_state(chatroom_room):
    def note(ctx, args):
        migrate(ctx.store, ["CREATE TABLE notes (text TEXT);"])
        with ctx.transaction() as db:
            db.execute("INSERT INTO notes VALUES (?)", (ctx.text,))
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        count = ctx.store.execute("SELECT COUNT(*) FROM notes").fetchone()[0]
        ctx.reply(f"OK {count} stored, {ctx.state['n']} this run")

    plugin = SimpleNamespace(register_commands=hookimpl(lambda: [Command("note", note)]))
    room = chatroom_room(plugins=[("notes", plugin)])
    alice = room.join("alice")
    assert alice.say("/note one") == ["OK 1 stored, 1 this run"]
    alice.say("hello before the restart")
    data_dir = room.server.data_dir
    assert room.restart() is room
    assert alice.closed and room.clients == [] and room.server.data_dir == data_dir
    bob = room.join("bob")
    assert bob.say("/note two") == ["OK 2 stored, 1 this run"]  # the store survived, ctx.state did not
    assert any(line.endswith("alice: hello before the restart") for line in bob.received)  # history too


# -- the IRC door ------------------------------------------------------------------------------------------
def test_an_irc_client_joins_chats_and_reaches_a_plugins_command_as_a_notice(chatroom_room):
    def greet(ctx, args):
        ctx.reply(f"hello {ctx.nick}")
        ctx.broadcast(f"* {ctx.nick} was greeted")

    room = chatroom_room(plugins=[commands(Command("greet", greet))])
    alice = room.join("alice")
    dave = room.join("dave", door="irc")
    assert dave.received[0] == ":chatroom.test 001 dave :Welcome to the chatroom IRC door dave!~dave@127.0.0.1"
    assert dave.nick == "dave" and dave.client in room.server.clients.values()
    assert dave.say("JOIN #lobby")[0] == ":dave!~dave@127.0.0.1 JOIN #lobby"
    alice.say("hi dave")
    assert dave.last == ":alice!alice@127.0.0.1 PRIVMSG #lobby :hi dave"
    assert dave.say("PRIVMSG #lobby :hi alice") == [] and alice.last == "dave: hi alice"
    assert dave.say("GREET") == [":chatroom.test NOTICE dave :hello dave"]  # a broadcast leaves out its caller
    assert alice.last == "* dave was greeted"
    with pytest.raises(ValueError, match="an IRC client has none"):
        dave.send_frame("file-end 1")


def test_an_irc_nick_the_door_refuses_raises_and_irc_needs_a_nick(chatroom_room):
    room = chatroom_room()
    room.join("alice")
    with pytest.raises(ValueError, match="433"):
        room.join("alice", door="irc")
    with pytest.raises(ValueError, match="needs a nick"):
        room.join(door="irc")
    with pytest.raises(ValueError, match="door must be"):
        room.join("bob", door="web")


def test_an_irc_client_is_told_join_and_part_whatever_path_moves_it(chatroom_room):
    """IRC clients keep channel state from JOIN and PART: a plugin's ctx.join or ctx.part must send them, as the
    client's own JOIN and PART do (before, the member was in #den in the model and outside it in irssi)."""
    def go(ctx, args):
        ctx.join(args[0])

    def leave(ctx, args):
        ctx.part(ctx.room, "done here")

    room = chatroom_room(plugins=[commands(Command("go", go), Command("goaway", leave))])
    room.join("alice").say("/join #den")
    room.server.hub.rooms.get("#den").topic = "plans"
    dave = room.join("dave", door="irc")
    assert dave.say("GO #den") == [":dave!~dave@127.0.0.1 JOIN #den", ":chatroom.test 332 dave #den plans",
                                   ":chatroom.test 333 dave #den chatroom.test 0",
                                   ":chatroom.test 353 dave = #den :@alice dave",
                                   ":chatroom.test 366 dave #den :End of /NAMES list"]
    assert dave.say("GOAWAY") == [":dave!~dave@127.0.0.1 PART #den :done here"]
    assert dave.say("PART #den") == [":chatroom.test 442 dave #den :You're not on that channel"]
    ops = room.join("opx", door="irc", operator="#ops")  # the kit's own ctx.join: told too
    assert ":opx!~opx@127.0.0.1 JOIN #ops" in ops.received
