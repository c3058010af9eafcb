"""``chatroom-server --plugin-dir DIR --reload`` (issue 11, development loop): a changed plugin file is
reloaded; a broken new version is refused and the old one keeps running (Prosody's reload with rollback)."""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path

import pytest

from chatroom.server.reload import PluginReloader

WAIT = 20.0

V1 = '''
from chatroom import Command, hookimpl

def ver(ctx, args):
    ctx.state["calls"] = ctx.state.get("calls", 0) + 1
    ctx.reply(f"{VERSION} call {ctx.state['calls']}")

VERSION = "v1"

@hookimpl
def register_commands():
    return [Command("ver", ver)]

@hookimpl
def startup(ctx):
    ctx.log.info("ver %s starting", VERSION)
    ctx.call_later(3600, lambda: ctx.log.info("old timer fired"))

@hookimpl
def shutdown(ctx):
    ctx.log.info("ver %s shutting down", VERSION)
'''


def write(path: Path, text: str) -> None:
    """Write then rename, as an editor's safe save does."""
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Stderr:
    """Collects the server's stderr (its log) on a thread; ``wait_for`` blocks until a line contains a text."""

    def __init__(self, stream) -> None:  # type: ignore[no-untyped-def]
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=lambda: [self.lines.put(line) for line in stream], daemon=True).start()

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no log line with {text!r} in {WAIT} s; seen: {self.seen[-10:]}")


def test_a_changed_file_is_reloaded_and_a_broken_one_is_refused(server_factory, tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    plugin = folder / "ver.py"
    write(plugin, V1)
    server = server_factory("--plugin-dir", str(folder), "--reload")
    log = Stderr(server.proc.stderr)
    log.wait_for("watching")
    alice = server.connect("alice")
    alice.send("/ver")
    alice.expect("v1 call 1")

    write(plugin, V1.replace('VERSION = "v1"', 'VERSION = "v2"'))
    log.wait_for("ver v1 shutting down")
    log.wait_for("ver v2 starting")
    log.wait_for("reloaded plugin ver from")
    alice.send("/ver")
    alice.expect("v2 call 1")  # the new version, with a fresh ctx.state

    write(plugin, V1.replace("def ver(ctx, args):", "def ver(ctx, args) oops"))
    line = log.wait_for("reload of plugin ver")
    assert "import failed: SyntaxError" in line and "the old version keeps running" in line
    write(plugin, V1.replace('Command("ver", ver)', 'Command("help", ver)'))
    line = log.wait_for("reload of plugin ver")
    assert "command /help is taken by plugin 'core'" in line
    write(plugin, V1 + "\n@hookimpl\ndef chat_mesage(ctx, text):\n    return text\n")
    assert "unknown hook 'chat_mesage'" in log.wait_for("reload of plugin ver")
    alice.send("/ver")
    alice.expect("v2 call 2")  # still v2, its state intact

    write(folder / "extra.py", V1.replace('"ver"', '"extra"').replace('"v1"', '"x1"'))
    log.wait_for("loaded plugin extra from")
    alice.send("/extra")
    alice.expect("x1 call 1")


def test_reload_without_plugin_dir_is_refused_and_no_plugins_warns(server_factory, tmp_path):
    import subprocess

    result = subprocess.run(["chatroom-server", "--reload", "--port", "0", "--data-dir", str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--reload needs --plugin-dir DIR" in result.stderr
    folder = tmp_path / "plugins"
    folder.mkdir()
    write(folder / "ver.py", V1)
    server = server_factory("--no-plugins", "--plugin-dir", str(folder))
    log = Stderr(server.proc.stderr)
    log.wait_for(f"warning: --no-plugins: not loading the --plugin-dir folder {folder}")
    alice = server.connect("alice")
    alice.send("/ver")
    alice.expect("ERROR - Command not understood")


@pytest.fixture
def ver_room(chatroom_room, tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    write(folder / "ver.py", V1)
    room = chatroom_room(strict=True)
    reloader = PluginReloader(room.server, [folder])
    assert reloader.reload(folder / "ver.py")  # a new file: loaded
    room.settle()
    return room, reloader, folder / "ver.py"


def test_reload_swaps_hooks_commands_timers_and_state_in_order(ver_room):
    room, reloader, path = ver_room
    alice = room.join("alice")
    assert alice.say("/ver") == ["v1 call 1"]
    assert [t.plugin for t in room.timers] == ["ver"]
    old_timer = room.timers[0]
    write(path, V1.replace('"v1"', '"v2"'))
    assert reloader.reload(path)
    room.settle()
    assert old_timer.cancelled and [t.plugin for t in room.timers] == ["ver"]  # the new version's timer only
    assert alice.say("/ver") == ["v2 call 1"]
    logs = "\n".join(room.logs)
    assert logs.index("ver v1 shutting down") < logs.index("ver v2 starting") < logs.index("reloaded plugin ver")


@pytest.mark.parametrize("broken, why", [
    ("raise RuntimeError('boom')\n", "import failed: RuntimeError('boom')"),
    ("@hookimpl\ndef startup(ctx, extra):\n    pass\n", "it does not register"),
    ("@hookimpl\ndef config_schema():\n    return {'x': int}\n", "config_schema entry 'x' is not a Setting"),
])
def test_a_broken_new_version_leaves_the_old_one_running(ver_room, broken, why):
    room, reloader, path = ver_room
    alice = room.join("alice")
    write(path, V1.replace('"v1"', '"v2"') + "\n" + broken)
    assert not reloader.reload(path)
    assert any(why in line and "the old version keeps running" in line for line in room.errors), room.errors
    assert alice.say("/ver") == ["v1 call 1"]
    assert room.plugins.info["ver"].commands == ["ver"]


def test_an_installed_plugin_is_not_reloaded_from_a_file(chatroom_room, tmp_path):
    room = chatroom_room()
    path = tmp_path / "core.py"
    write(path, V1)
    assert not PluginReloader(room.server, [tmp_path]).reload(path)
    assert any("it is a builtin plugin; only --plugin-dir files reload" in line for line in room.errors)


def test_a_new_version_whose_startup_raises_is_rolled_back(ver_room):
    """Issue 17 row 11: the swap is undone; the old version runs again (its startup re-arms its timer)."""
    import sys

    room, reloader, path = ver_room
    alice = room.join("alice")
    old_module = sys.modules["chatroom_plugin_ver"]
    write(path, V1.replace('"v1"', '"v2"').replace('ctx.log.info("ver %s starting", VERSION)',
                                                    'ctx.call_later(60, lambda: None)\n    raise RuntimeError("v2 cannot start")'))
    assert not reloader.reload(path)
    room.settle()
    assert any("reload of plugin ver" in line and "its startup hook raised" in line
               and "the old version is back" in line for line in room.errors), room.errors
    assert "RuntimeError: v2 cannot start" in room.faults[-1][1]
    assert alice.say("/ver") == ["v1 call 1"]  # the old code; its state started empty, as after any reload
    assert sys.modules["chatroom_plugin_ver"] is old_module
    assert [t.plugin for t in room.timers] == ["ver"] and room.timers[0].when >= 3600  # v1's timer, not v2's
    info = room.plugins.info["ver"]
    assert info.commands == ["ver"] and not info.disabled and info.faults == 0
    logs = "\n".join(room.logs)
    assert logs.rindex("ver v1 starting") > logs.index("v2 cannot start")  # the old startup ran again
    write(path, V1.replace('"v1"', '"v3"'))  # and a good version still reloads afterwards
    assert reloader.reload(path)
    assert alice.say("/ver") == ["v3 call 1"]


def test_a_new_plugin_whose_startup_raises_is_not_loaded(chatroom_room, tmp_path):
    import sys

    path = tmp_path / "fresh.py"
    write(path, V1.replace('"ver"', '"fresh"').replace('ctx.log.info("ver %s starting", VERSION)', "1 / 0"))
    room = chatroom_room()
    assert not PluginReloader(room.server, [tmp_path]).reload(path)
    assert "fresh" not in room.plugins.info and "chatroom_plugin_fresh" not in sys.modules
    assert room.join("alice").say("/fresh") == ["ERROR - Command not understood"]
    assert room.timers == []


def test_a_failed_reimport_keeps_the_old_module_in_sys_modules(ver_room):
    import sys

    room, reloader, path = ver_room
    old_module = sys.modules["chatroom_plugin_ver"]
    write(path, V1 + "\nraise ImportError('no such dependency')\n")
    assert not reloader.reload(path)
    assert sys.modules["chatroom_plugin_ver"] is old_module
    write(path, V1.replace('Command("ver", ver)', 'Command("help", ver)'))  # imports, then fails its checks
    assert not reloader.reload(path)
    assert sys.modules["chatroom_plugin_ver"] is old_module
    assert room.join("alice").say("/ver") == ["v1 call 1"]
