"""The plugin host: loading from entry points, folders and built-ins, and fault isolation.

Installed distributions are faked the way importlib.metadata finds real ones:
a ``NAME-VERSION.dist-info`` folder with ``METADATA`` and ``entry_points.txt``
next to the module, on ``sys.path``. Rooms are in-process (the test kit).

Hermetic: every test sees only the fake distributions of its own ``site``
folder, never the chatroom plugins installed in the environment that runs the
suite (:func:`only_fake_distributions`).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from chatroom import Command, CommandError, hookimpl
from chatroom.server import cli as server_cli
from chatroom.builtin.core import describe_plugins
from chatroom.plugins.loader import BUILTIN_PLUGINS
from chatroom.plugins.manager import FAULT, PluginHost
from chatroom.testing import PluginLoadError


# -- helpers ------------------------------------------------------------------------------
def make_dist(site: Path, dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Write a fake installed distribution into *site* (a folder on sys.path)."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[chatroom]\n{lines}")
    for filename, source in modules.items():
        (site / filename).write_text(textwrap.dedent(source))


@pytest.fixture(autouse=True)
def only_fake_distributions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entry points come only from the test's ``site`` folder, not from what is installed.

    ``importlib.metadata.entry_points`` (which the plugin host calls) is
    replaced by one that reads the distributions in ``tmp_path/site`` alone,
    so a plugin package installed next to chatroom cannot change a result.
    """
    folder = tmp_path / "site"

    def entry_points(**params: str) -> importlib.metadata.EntryPoints:
        found: list[importlib.metadata.EntryPoint] = []
        if folder.is_dir():
            for dist in importlib.metadata.distributions(path=[str(folder)]):
                found.extend(dist.entry_points)
        return importlib.metadata.EntryPoints(found).select(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_installed_plugins_are_invisible_to_these_tests(tmp_path: Path) -> None:
    assert list(importlib.metadata.entry_points(group="chatroom")) == []
    host = load()
    assert {info.source for info in host.info.values()} == {"builtin"} and host.load_errors == []


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A folder on sys.path for fake distributions; modules imported from it are forgotten afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        if str(getattr(module, "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def host_log(caplog: pytest.LogCaptureFixture):
    """Log records of the plugin host, as ``[LEVEL] message`` strings."""
    logger = logging.getLogger("chatroom")
    old = logger.propagate
    logger.propagate = True  # an earlier in-process server_cli.main may have turned it off
    caplog.set_level(logging.INFO, logger="chatroom")
    yield caplog
    logger.propagate = old


GOOD = """
    from chatroom import hookimpl, Command

    @hookimpl
    def register_commands():
        return [Command("good", lambda ctx, args: ctx.reply("good"), usage="/good", summary="Works")]
"""


def load(**options) -> PluginHost:
    host = PluginHost(**options)
    host.load_builtins()
    host.load_entry_points()
    host.finish_loading()
    return host


# -- entry points ---------------------------------------------------------------------------
def test_a_broken_entry_point_is_reported_and_the_others_still_load(site, host_log):
    make_dist(site, "chatroom-aaa-broken", "1.2", {"aaa": "aaa_broken"},
              {"aaa_broken.py": "import no_such_module_anywhere\n"})
    make_dist(site, "chatroom-zzz-good", "0.3", {"zzz": "zzz_good"}, {"zzz_good.py": GOOD})
    host = load()
    assert "zzz" in host.info and "aaa" not in host.info
    assert host.info["zzz"].distribution == "chatroom-zzz-good" and host.info["zzz"].version == "0.3"
    assert host.registry.get("good") is not None
    [error] = [e for e in host.load_errors if "aaa" in e]
    assert "distribution chatroom-aaa-broken 1.2" in error
    assert "ModuleNotFoundError" in error and "no_such_module_anywhere" in error
    assert any(r.levelno == logging.ERROR and "chatroom-aaa-broken" in r.getMessage() for r in host_log.records)


def test_an_entry_point_whose_module_raises_or_exits_does_not_stop_loading(site):
    make_dist(site, "chatroom-raises", "1.0", {"raises": "mod_raises"}, {"mod_raises.py": "1 / 0\n"})
    make_dist(site, "chatroom-exits", "1.0", {"exits": "mod_exits"}, {"mod_exits.py": "raise SystemExit(3)\n"})
    make_dist(site, "chatroom-attr", "1.0", {"attr": "zzz_good:missing"}, {"zzz_good.py": GOOD})
    host = load()
    errors = "\n".join(host.load_errors)
    assert "plugin raises from distribution chatroom-raises 1.0 failed to load" in errors and "ZeroDivisionError" in errors
    assert "plugin exits from distribution chatroom-exits 1.0 failed to load" in errors and "SystemExit(3)" in errors
    assert "plugin attr from distribution chatroom-attr 1.0 failed to load (zzz_good:missing)" in errors
    assert {"raises", "exits", "attr"}.isdisjoint(host.info)
    assert "core" in host.info


def test_a_plugin_that_fails_to_register_is_reported(site):
    make_dist(site, "chatroom-badargs", "2.0", {"badargs": "mod_badargs"}, {"mod_badargs.py": """
        from chatroom import hookimpl

        @hookimpl
        def chat_message(ctx, txt):
            return txt
    """})
    host = load()
    [error] = [e for e in host.load_errors if "badargs" in e]
    assert "plugin badargs (entry point chatroom-badargs 2.0) failed to register" in error and "txt" in error
    assert "badargs" not in host.info and not host.implemented("chat_message")


def test_every_unknown_hook_is_reported_with_a_suggestion(site):
    make_dist(site, "chatroom-typos", "1.0", {"typos": "mod_typos"}, {"mod_typos.py": """
        from chatroom import hookimpl

        @hookimpl
        def chat_mesage(ctx, text):
            return text

        @hookimpl
        def on_join(ctx):
            pass

        @hookimpl(optionalhook=True)
        def maybe_later(ctx):
            pass

        @hookimpl
        def startup(ctx):
            pass
    """})
    host = load()
    errors = [e for e in host.load_errors if "typos" in e]
    assert any("unknown hook 'chat_mesage' (did you mean 'chat_message'?)" in e for e in errors)
    assert any("unknown hook 'on_join'" in e for e in errors)
    assert not any("maybe_later" in e for e in errors)
    assert host.info["typos"].hooks == ["startup"]  # the plugin still loads; its real hooks work


def test_a_plugin_cannot_take_a_builtins_name(site):
    make_dist(site, "chatroom-fake-core", "9.9", {"core": "zzz_good"}, {"zzz_good.py": GOOD})
    host = load()
    assert host.info["core"].source == "builtin"
    assert any("plugin core (entry point chatroom-fake-core 9.9) not loaded: the name is taken by builtin" in e
               for e in host.load_errors)


# -- drop-in folders --------------------------------------------------------------------------
def test_plugin_dir_loads_drop_in_modules(tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "dropgood.py").write_text(textwrap.dedent(GOOD))
    (folder / "_helper.py").write_text("raise RuntimeError('never imported')\n")
    (folder / "dropbroken.py").write_text("def oops(:\n")
    (folder / "core.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    host = PluginHost()
    host.load_builtins()
    host.load_dir(folder)
    host.load_dir(tmp_path / "missing")
    host.finish_loading()
    assert host.info["dropgood"].source == "file"
    assert host.info["dropgood"].path == str(folder / "dropgood.py")
    assert host.info["dropgood"].commands == ["good"]
    assert "_helper" not in host.info
    errors = "\n".join(host.load_errors)
    assert f"plugin dropbroken from file {folder / 'dropbroken.py'} failed to import: SyntaxError" in errors
    assert f"plugin folder {tmp_path / 'missing'} does not exist" in errors
    assert "plugin core (file" in errors and "the name is taken by builtin" in errors
    assert not (tmp_path / "ran").exists(), "a file shadowing a built-in must not even be imported"


# -- the command line: --disable-plugin, env var, --no-plugins, --config -------------------------
def cli_args(*argv: str) -> argparse.Namespace:
    return server_cli.build_parser().parse_args(list(argv))


def test_disable_by_option_env_var_or_distribution_name(site, tmp_path, monkeypatch, host_log):
    make_dist(site, "chatroom-one", "1.0", {"one": "mod_one"}, {"mod_one.py": GOOD})
    make_dist(site, "chatroom-two", "1.0", {"two": "mod_two"}, {"mod_two.py": "raise SystemExit('imported')\n"})
    make_dist(site, "chatroom-three", "1.0", {"three": "mod_three"}, {"mod_three.py": "raise SystemExit('imported')\n"})
    monkeypatch.setenv(server_cli.DISABLE_ENV, " two , nosuch")
    host = server_cli.load_plugins(cli_args("--disable-plugin", "chatroom-three", "--disable-plugin", "tweet"))
    assert "one" in host.info and "two" not in host.info and "three" not in host.info and "tweet" not in host.info
    assert not any("imported" in e for e in host.load_errors), "a disabled plugin is not imported"
    assert host.registry.get("tweet") is None
    assert any("--disable-plugin nosuch: no plugin of that name was found" in r.getMessage() for r in host_log.records)


def test_no_plugins_loads_builtins_only(site, tmp_path):
    make_dist(site, "chatroom-one", "1.0", {"one": "mod_one"}, {"mod_one.py": GOOD})
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "dropgood.py").write_text(textwrap.dedent(GOOD))
    host = server_cli.load_plugins(cli_args("--no-plugins", "--plugin-dir", str(folder)))
    assert {info.source for info in host.info.values()} == {"builtin"}
    assert set(host.info) == {m.rsplit(".", 1)[1] for m in BUILTIN_PLUGINS}


def test_config_file_gives_each_plugin_its_table(tmp_path):
    config = tmp_path / "room.toml"
    config.write_text('[plugins.one]\nwords = ["a", "b"]\nlimit = 3\n[plugins.two]\nmode = "drop"\n')
    host = PluginHost(config=server_cli.read_config(config))
    assert host.config_for("one") == {"words": ["a", "b"], "limit": 3}
    with pytest.raises(TypeError):
        host.config_for("one")["words"].append("c")  # deep-frozen: arrays are read-only lists
    assert host.config_for("two")["mode"] == "drop"
    assert host.config_for("three") == {}
    with pytest.raises(TypeError):
        host.config_for("one")["limit"] = 4  # type: ignore[index]


def test_config_file_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    config = tmp_path / "env.toml"
    config.write_text('[plugins.one]\nlevel = 2\n')
    monkeypatch.setenv(server_cli.CONFIG_ENV, str(config))
    args = cli_args()
    assert args.config == config
    assert server_cli.read_config(args.config) == {"one": {"level": 2}}
    monkeypatch.delenv(server_cli.CONFIG_ENV)
    assert cli_args().config is None and server_cli.read_config(None) == {}


@pytest.mark.parametrize("text, message", [
    ("[plugins\n", "cannot read config file"),
    ("plugins = 3\n", "'plugins' must be a table"),
    ("[plugins]\none = 3\n", "plugins.one must be a table"),
])
def test_a_bad_config_file_is_refused_with_the_reason(tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ValueError, match=message):
        server_cli.read_config(config)


def test_list_plugins_prints_name_origin_hooks_and_commands(site, tmp_path, capsys):
    make_dist(site, "chatroom-one", "1.5", {"one": "mod_one"}, {"mod_one.py": textwrap.dedent(GOOD) + textwrap.dedent("""
        @hookimpl
        def client_joined(ctx):
            pass
    """)})
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "dropped.py").write_text("from chatroom import hookimpl\n\n@hookimpl\ndef chat_message(ctx, text):\n    pass\n")
    logger = logging.getLogger("chatroom")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    try:
        assert server_cli.main(["--list-plugins", "--plugin-dir", str(folder), "--data-dir", str(tmp_path / "d")]) == 0
    finally:
        for handler in logger.handlers:
            handler.close()
        logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]
    out = capsys.readouterr().out.splitlines()
    assert "one (entry point: chatroom-one 1.5) commands: /good; hooks: client_joined" in out
    assert f"dropped (file: {folder / 'dropped.py'}) commands: -; hooks: chat_message" in out
    assert any(line.startswith("core (builtin: chatroom ") and "/nick" in line for line in out)
    assert not (tmp_path / "d").exists(), "--list-plugins starts no server"


# -- commands: clashes and bad registrations -----------------------------------------------------
def command_plugin(*commands: Command) -> SimpleNamespace:
    return SimpleNamespace(register_commands=hookimpl(lambda: list(commands)))


def noop(ctx, args):
    ctx.reply("noop")


def test_clashing_commands_are_reported_naming_both_providers(chatroom_room):
    first = command_plugin(Command("roll", noop))
    second = command_plugin(Command("dice", noop, aliases=("roll",)), Command("flip", noop))
    room = chatroom_room(plugins=[("first", first), ("second", second)], strict=False)
    [clash] = [e for e in room.plugins.load_errors if "roll" in e]
    assert "plugin 'second'" in clash and "plugin 'first'" in clash and "keeping 'first'" in clash
    assert room.plugins.registry.get("roll").plugin == "first"
    assert room.plugins.registry.get("flip").plugin == "second"  # its other commands still work


def test_a_builtin_command_is_never_replaced(chatroom_room):
    def evil_nick(ctx, args):
        ctx.reply("stolen")

    thief = command_plugin(Command("nick", evil_nick), Command("help2", noop, aliases=("HELP",)))
    room = chatroom_room(plugins=[("thief", thief)], strict=False)
    errors = "\n".join(room.plugins.load_errors)
    assert "command /nick from plugin 'thief' clashes with /nick from plugin 'core'" in errors
    assert "command /help from plugin 'thief' clashes with /help from plugin 'core'" in errors
    assert room.join("alice").say("/nick alicia") == ["OK nick alicia"]


def test_the_kit_refuses_plugins_with_load_errors_by_default(chatroom_room):
    with pytest.raises(PluginLoadError, match="clashes with /nick"):
        chatroom_room(plugins=[("thief", command_plugin(Command("nick", noop)))])


@pytest.mark.parametrize("returned, message", [
    (42, "register_commands returned 42, not a list of Command"),
    (["hello"], "returned 'hello' from register_commands, not a Command"),
    ([Command("two words", noop)], "command name 'two words' is not a valid command name"),
    ([Command("", noop)], "command name '' is not a valid command name"),
])
def test_bad_register_commands_results_are_reported(chatroom_room, returned, message):
    plugin = SimpleNamespace(register_commands=hookimpl(lambda: returned))
    room = chatroom_room(plugins=[("odd", plugin)], strict=False)
    assert any(message in e for e in room.plugins.load_errors)
    assert room.join("alice").say("/who")[0].startswith("* 1 in lobby")


def test_a_single_command_may_be_returned_bare(chatroom_room):
    room = chatroom_room(plugins=[("one", SimpleNamespace(register_commands=hookimpl(lambda: Command("one", noop))))])
    assert room.join("alice").say("/one") == ["noop"]


def test_slash_plugins_in_the_room_lists_the_plugins(chatroom_room):
    plugin = command_plugin(Command("roll", noop))
    plugin.client_joined = hookimpl(lambda ctx: None)
    room = chatroom_room(plugins=[("dice", plugin)])
    lines = room.join("alice").say("/plugins")
    assert lines == describe_plugins(room.plugins.info.values())
    assert "* dice (test: SimpleNamespace) commands: /roll; hooks: client_joined" in lines
    assert any(line.startswith("* core (builtin: chatroom") for line in lines)


# -- fault isolation ---------------------------------------------------------------------------
class Recorder:
    """A well-behaved plugin that records which hooks reached it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def client_joined(self, ctx):
        self.calls.append(f"joined {ctx.nick}")

    @hookimpl
    def chat_message(self, ctx, text):
        self.calls.append(f"chat {text}")

    @hookimpl
    def nick_changed(self, ctx, old, new):
        self.calls.append(f"nick {old} {new}")


class Faulty:
    """Raises in every hook and command."""

    @hookimpl
    def register_commands(self):
        return [Command("boom", self.boom), Command("refuse", self.refuse)]

    def boom(self, ctx, args):
        raise ZeroDivisionError("kaboom")

    def refuse(self, ctx, args):
        raise CommandError("not today")

    @hookimpl(tryfirst=True)
    def client_joined(self, ctx):
        raise RuntimeError("join hook broke")

    @hookimpl(tryfirst=True)
    def chat_message(self, ctx, text):
        raise KeyError(text)

    @hookimpl(tryfirst=True)
    def nick_changed(self, ctx, old, new):
        raise SystemExit("a plugin must not stop the server")


def test_a_raising_hook_does_not_stop_the_other_plugins_hooks(chatroom_room):
    recorder = Recorder()
    room = chatroom_room(plugins=[("recorder", recorder), ("faulty", Faulty())], fault_limit=100)
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("hello")
    assert bob.last == "alice: hello"
    assert recorder.calls == ["joined guest1", "nick guest1 alice", "joined guest2", "nick guest2 bob", "chat hello"]
    assert [plugin for plugin, _ in room.faults] == ["faulty"] * 5
    assert "RuntimeError: join hook broke" in room.faults[0][1]
    assert any(line.startswith("[ERROR] chatroom.plugins: plugin faulty raised:") for line in room.errors)


def test_a_raising_command_gets_the_caller_an_error_and_the_room_goes_on(chatroom_room):
    room = chatroom_room(plugins=[("faulty", Faulty())], fault_limit=100)
    alice, bob = room.join("alice"), room.join("bob")
    assert alice.say("/boom") == ["ERROR /boom failed: internal error in plugin faulty"]
    assert alice.say("/refuse") == ["ERROR not today"]
    assert len([p for p, t in room.faults if "ZeroDivisionError: kaboom" in t]) == 1  # CommandError is no fault
    alice.say("still here")
    assert bob.last == "alice: still here"


def test_a_plugin_that_keeps_failing_is_disabled_with_a_log_line(chatroom_room):
    recorder = Recorder()
    room = chatroom_room(plugins=[("recorder", recorder), ("faulty", Faulty())], fault_limit=3)
    alice = room.join("alice")  # client_joined and nick_changed: two faults of its own
    for _ in range(4):  # a command's fault is that command's error: answered, never counted
        assert alice.say("/boom") == ["ERROR /boom failed: internal error in plugin faulty"]
    assert not any("disabled after" in line for line in room.errors)
    bob = room.join()  # client_joined again: third fault of its own, disabled
    assert "[ERROR] chatroom.plugins: plugin faulty disabled after 3 faults" in room.errors
    assert alice.say("/boom")[0] == "ERROR - Command not understood"
    faults = len(room.faults)
    alice.say("hi")
    assert bob.last == "alice: hi"
    assert len(room.faults) == faults, "a disabled plugin's hooks are no longer called"
    assert recorder.calls[-1] == "chat hi"
    assert any(line.startswith("* faulty (test: Faulty) [disabled after 3 faults]") for line in alice.say("/plugins"))


def test_every_plugins_shutdown_runs_once_whether_switched_off_quarantined_or_paused(chatroom_room):
    calls: list[str] = []

    def plugin(name: str) -> SimpleNamespace:
        def trip(ctx, text, room):
            if text == f"trip {name}":
                raise RuntimeError(f"{name} tripped")

        return SimpleNamespace(chat_message=hookimpl(trip),
                               shutdown=hookimpl(lambda ctx: calls.append(f"{name} {ctx.plugin}")))

    room = chatroom_room(plugins=[("faulty", plugin("faulty")), ("paused", plugin("paused")),
                                  ("plain", plugin("plain"))], fault_limit=1)
    alice = room.join("alice")
    alice.say("trip faulty")  # one fault: switched off for good, and its shutdown runs now
    assert calls == ["faulty faulty"]
    assert "[ERROR] chatroom.plugins: plugin faulty disabled after 1 faults" in room.errors
    root = room.join("root", admin=True)
    assert root.say("/plugins disable paused") == ["OK plugin paused disabled"]
    assert calls == ["faulty faulty"]  # a pause may be undone: its shutdown waits for the stop
    room.close()
    assert sorted(calls) == ["faulty faulty", "paused paused", "plain plain"]


def test_a_disabled_plugins_timers_and_thread_results_are_dropped(chatroom_room):
    ran: list[str] = []

    def arm(ctx, args):
        ctx.call_later(5, ran.append, "timer")
        ctx.run_in_thread(lambda: 1, lambda result, error: ran.append("thread"))
        ctx.dispatch("trip")  # its own chat_message hook raises: a fault of its own, disabled at once

    def trip(ctx, text):
        raise RuntimeError("fault after arming")

    plugin = command_plugin(Command("arm", arm))
    plugin.chat_message = hookimpl(trip)
    room = chatroom_room(plugins=[("armed", plugin)], fault_limit=1)
    room.join("alice").say("/arm")
    room.advance(10)
    assert ran == []
    assert "[ERROR] chatroom.plugins: plugin armed disabled after 1 faults" in room.errors


def test_a_capturing_plugin_that_faults_keeps_its_capture_and_its_input_is_never_broadcast(chatroom_room):
    def grab(ctx, args):
        ctx.capture(lambda c, line: 1 / 0)
        ctx.call_later(10, lambda: 1 / 0)  # a fault of its own, later: disables it
        ctx.reply("OK captured")

    room = chatroom_room(plugins=[("grabber", command_plugin(Command("grab", grab)))], fault_limit=1)
    alice, bob = room.join("alice"), room.join("bob")
    assert alice.say("/grab") == ["OK captured"]
    assert alice.say("first") == ["ERROR internal error in plugin grabber"]
    assert alice.say("second") == ["ERROR internal error in plugin grabber"]  # not counted: still captured
    room.advance(10)
    assert "[ERROR] chatroom.plugins: plugin grabber disabled after 1 faults" in room.errors
    assert alice.say("third") == ["ERROR what you typed was discarded: the plugin that took it is gone"]
    alice.say("free again")
    assert bob.last == "alice: free again"
    assert not any(line in ("alice: first", "alice: second", "alice: third") for line in bob.received)
    assert alice.say("/quit") == ["OK"]


def test_a_capture_with_a_terminator_swallows_input_up_to_it_when_its_plugin_goes_away(chatroom_room):
    def grab(ctx, args):
        ctx.capture(lambda c, line: None, terminator="#")
        ctx.call_later(1, lambda: 1 / 0)
        ctx.reply("OK captured")

    room = chatroom_room(plugins=[("grabber", command_plugin(Command("grab", grab)))], fault_limit=1)
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("/grab")
    room.advance(1)
    assert alice.say("secret line") == []
    assert alice.say("#") == ["ERROR what you typed was discarded: the plugin that took it is gone"]
    alice.say("public")
    assert bob.last == "alice: public"
    assert "alice: secret line" not in bob.received


@pytest.mark.parametrize("returned", [42, b"bytes", ["list"]])
def test_a_chat_message_hook_returning_garbage_is_a_fault_and_the_line_goes_through(chatroom_room, returned):
    plugin = SimpleNamespace(chat_message=hookimpl(lambda ctx, text: returned))
    room = chatroom_room(plugins=[("garbage", plugin)])
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("plain")
    assert bob.last == "alice: plain"
    assert room.faults and "chat_message returned" in room.faults[0][1] and "expected str" in room.faults[0][1]


def test_chat_message_false_drops_the_line_and_stops_the_chain(chatroom_room):
    later = Recorder()
    dropper = SimpleNamespace(chat_message=hookimpl(tryfirst=True)(lambda ctx, text: False if "drop" in text else None))
    room = chatroom_room(plugins=[("later", later), ("dropper", dropper)])
    alice, bob = room.join("alice"), room.join("bob")
    bob.clear()
    alice.say("please drop me")
    alice.say("keep me")
    assert bob.received == ["alice: keep me"]
    assert [c for c in later.calls if c.startswith("chat")] == ["chat keep me"]


def test_a_failing_stream_is_cut_short_with_an_error(chatroom_room):
    def lines():
        yield "one"
        yield "two"
        raise ValueError("source broke")

    room = chatroom_room(plugins=[("lister", command_plugin(Command("list", lambda ctx, args: ctx.stream(lines()))))])
    alice = room.join("alice")
    assert alice.say("/list") == ["one", "two", "ERROR plugin lister failed while streaming output"]
    assert "ValueError: source broke" in room.faults[0][1]


def test_a_slow_hook_is_logged_naming_the_plugin(chatroom_room):
    def slow(ctx, args):
        time.sleep(0.15)  # the plugin under test blocks the loop on purpose
        ctx.reply("done")

    room = chatroom_room(plugins=[("sluggish", command_plugin(Command("slow", slow)))])
    assert room.join("alice").say("/slow") == ["done"]
    # only sluggish's line: on a loaded machine a built-in can pass the 100 ms limit too
    [warning] = [line for line in room.errors if "plugin sluggish blocked the loop" in line]
    assert warning.startswith("[ERROR] chatroom.plugins: plugin sluggish blocked the loop for ")
    assert "ms in test_a_slow_hook_is_logged_naming_the_plugin.<locals>.slow (limit 100 ms)" in warning


def test_a_plugin_that_blocks_twice_is_quarantined_and_an_admin_lifts_it(chatroom_room):
    calls = []

    def slow(ctx, args):
        calls.append(1)
        time.sleep(0.12)  # the plugin under test blocks the loop on purpose
        ctx.reply("done")

    room = chatroom_room(plugins=[("sluggish", command_plugin(Command("slow", slow)))], slow_seconds=0.1)
    alice = room.join("alice")
    assert alice.say("/slow") == ["done"]
    assert not room.plugins.info["sluggish"].disabled  # once is a warning
    assert alice.say("/slow") == ["done"]
    info = room.plugins.info["sluggish"]
    assert info.disabled and info.quarantined.startswith("it blocked the loop 2 times in 10 minutes, the last for ")
    assert alice.say("/slow") == ["ERROR plugin sluggish is quarantined: it blocked the loop; "
                                  "an admin may /plugins enable sluggish"]
    assert len(calls) == 2
    assert any("plugin sluggish quarantined: it blocked the loop 2 times" in line for line in room.errors)
    room.plugins.set_enabled("sluggish", True)
    assert not info.quarantined and alice.say("/slow") == ["done"] and len(calls) == 3
    assert not info.disabled  # its slow calls were forgotten: this one is the first again


def test_slow_one_off_hooks_and_a_zero_slow_limit_never_quarantine(chatroom_room):
    class Plugin:
        @hookimpl
        def startup(self, ctx):
            time.sleep(0.12)  # a migration may take long once

        @hookimpl
        def register_commands(self):
            return [Command("slow", lambda ctx, args: time.sleep(0.12))]

    room = chatroom_room(plugins=[("starter", Plugin())], slow_seconds=0.1)
    room.restart()
    assert not room.plugins.info["starter"].disabled
    patient = chatroom_room(plugins=[("starter", Plugin())], slow_seconds=0.1, slow_limit=0)
    alice = patient.join("alice")
    for _ in range(3):
        assert alice.say("/slow") == []
    assert not patient.plugins.info["starter"].disabled


def test_run_and_call_safely_return_fault_for_a_raising_callable():
    host = PluginHost()
    assert host.call_safely("x", lambda: 1 / 0) is FAULT
    assert host.run("x", lambda: 1 / 0) is FAULT
    with pytest.raises(CommandError):
        host.run("x", lambda: (_ for _ in ()).throw(CommandError("no")))


# -- threads: hooks, timers and worker results run on the loop thread ----------------------------------
def test_hooks_timers_and_worker_results_run_on_the_loop_thread(tmp_path):
    from conftest import LineClient

    from chatroom.server.app import Server, ServerOptions

    seen: list[tuple[str, int]] = []
    done = threading.Event()

    def mark(what: str) -> None:
        seen.append((what, threading.get_ident()))

    def probe(ctx, args):
        mark("command")
        ctx.call_later(0.01, lambda: (mark("timer"), ctx.reply("timer")))

        def work():
            mark("worker")
            return 7

        ctx.run_in_thread(work, lambda result, error: (mark("on_done"), ctx.reply(f"worker {result}")))

    plugin = command_plugin(Command("probe", probe))
    for hook in ("startup", "client_joined", "nick_changed", "client_left"):
        setattr(plugin, hook, hookimpl(specname=hook)(lambda ctx, _h=hook, **kw: mark(_h)))
    plugin.chat_message = hookimpl(lambda ctx, text: mark("chat_message"))
    plugin.shutdown = hookimpl(lambda ctx: (mark("shutdown"), done.set()))
    host = PluginHost()
    host.load_builtins()
    host.register(plugin, "probe", __import__("chatroom.plugins.manager").plugins.manager.PluginInfo("probe", "test"))
    host.finish_loading()
    server = Server(ServerOptions(port=0, data_dir=tmp_path), plugins=host)
    loop = threading.Thread(target=server.serve_forever)
    loop.start()
    client = LineClient(*server.address)
    try:
        client.expect_prefix("* Welcome")
        client.send("/nick alice")
        client.expect("OK nick alice")
        client.send("hello")
        client.send("/probe")
        lines = {client.next_line(), client.next_line()}
        assert lines == {"timer", "worker 7"}
        client.send("/quit")
        client.expect("OK")
        assert client.closed_by_server()
    finally:
        client.close()
        server.shutdown()
        loop.join(10)
    assert done.is_set() and not loop.is_alive()
    on_loop = {what for what, ident in seen if ident == loop.ident}
    assert on_loop == {"startup", "client_joined", "nick_changed", "chat_message", "command", "timer", "on_done",
                       "client_left", "shutdown"}
    assert [ident for what, ident in seen if what == "worker"] != [loop.ident]
