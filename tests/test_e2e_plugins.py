"""Third-party plugins for real: pip-installed into a folder, loaded by the real ``chatroom-server``, used over TCP.

The example distributions in plugins/ are installed with
``pip install --no-deps --no-build-isolation --target DIR`` and the server
runs with ``PYTHONPATH=DIR``, exactly as a user's would after ``pip install``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ["chatroom-remind", "chatroom-standup", "chatroom-tell", "chatroom-transcript", "chatroom-wordfilter"]
PIP_ENV = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_ROOT_USER_ACTION": "ignore", "PIP_NO_INPUT": "1"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugins, installed into a folder of their own."""
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), *(str(ROOT / "plugins" / name) for name in EXAMPLES)],
        capture_output=True, text=True, timeout=120, env={**os.environ, **PIP_ENV}, check=False,
    )
    assert result.returncode == 0, result.stderr
    return target


def pythonpath(*folders: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(str(f) for f in folders)}


def list_plugins(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["chatroom-server", "--list-plugins", *args], capture_output=True, text=True, check=False,
                          timeout=60, env={**os.environ, **env})


def fake_broken_dist(folder: Path) -> Path:
    """A third-party distribution whose plugin module fails to import, written as pip would install it."""
    info = folder / "chatroom_broken-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: chatroom-broken\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[chatroom]\nbroken = chatroom_broken\n")
    (folder / "chatroom_broken.py").write_text("import requests_that_are_not_installed\n")
    return folder


def test_list_plugins_shows_the_installed_distributions(site):
    result = list_plugins(env=pythonpath(site))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "remind (entry point: chatroom-remind 0.2.0) commands: /remind /reminders; hooks: client_joined, client_left, config_schema, member_ready, nick_changed, startup" in lines
    assert "wordfilter (entry point: chatroom-wordfilter 0.2.0) commands: -; hooks: chat_message, config_schema" in lines
    assert "[ERROR]" not in result.stderr


def test_installed_plugins_work_in_a_running_room(site, server_factory, tmp_path):
    config = tmp_path / "room.toml"
    config.write_text('[plugins.wordfilter]\nwords = ["spoiler"]\nmask = "#"\n\n[plugins.remind]\nmax_per_user = 1\n')
    server = server_factory("--quiet", "--config", str(config), env=pythonpath(site))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("no spoiler please")
    bob.expect("alice: no s###### please")
    alice.send("/remind 1s stretch")
    alice.expect("OK reminder 1 in 1s")
    alice.send("/remind 1s again")
    alice.expect("ERROR you have 1 reminders pending; /remind cancel ID one first")
    alice.expect("* reminder: stretch")  # a real second later, from the server's timer
    bob.send("/plugins")
    listing = bob.expect_where(lambda line: line.startswith("* wordfilter"), "wordfilter line")
    assert any(line.startswith("* remind (entry point: chatroom-remind 0.2.0)") for line in listing)


def test_a_broken_third_party_plugin_is_reported_and_the_room_still_works(site, server_factory, tmp_path):
    broken = fake_broken_dist(tmp_path / "broken-site")
    server = server_factory("--quiet", env=pythonpath(broken, site))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("darn, hello")
    bob.expect("alice: d***, hello")
    alice.send("/remind 5m later")
    alice.expect("OK reminder 1 in 5m")
    log = server.log_text()
    [error] = [line for line in log.splitlines() if "chatroom-broken" in line]
    assert "[ERROR] chatroom.plugins: plugin broken from distribution chatroom-broken 0.0 failed to load" in error
    assert "No module named 'requests_that_are_not_installed'" in error


def test_disable_plugin_option_env_var_and_no_plugins(site, server_factory):
    server = server_factory("--quiet", "--disable-plugin", "remind",
                            env={**pythonpath(site), "CHATROOM_DISABLE_PLUGINS": "chatroom-wordfilter"})
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("/remind 1s x")
    alice.expect("ERROR - Command not understood")
    alice.send("darn")
    bob.expect("alice: darn")
    result = list_plugins("--no-plugins", env=pythonpath(site))
    assert result.returncode == 0
    assert {line.split()[0] for line in result.stdout.splitlines()} == {"core", "rooms", "accounts", "board", "tweet", "sendfile",
                                                                         "moderation", "search"}


FLAKY = '''
    import time

    from chatroom import Command, hookimpl


    def boom(ctx, args):
        raise RuntimeError("flaky plugin failed")


    def slow(ctx, args):
        time.sleep(0.2)  # blocks the loop on purpose
        ctx.reply("OK slow")


    @hookimpl
    def client_joined(ctx):
        raise RuntimeError("flaky plugin failed on its own")


    @hookimpl
    def register_commands():
        return [Command("boom", boom), Command("slow", slow)]
'''


def test_a_failing_and_slow_drop_in_plugin_is_contained(server_factory, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "flaky.py").write_text(textwrap.dedent(FLAKY))
    server = server_factory("--quiet", "--plugin-dir", str(folder), "--plugin-fault-limit", "2")
    alice = server.connect("alice")  # client_joined raises: the plugin's own fault, counted (1 of 2)
    alice.send("/slow")
    alice.expect("OK slow")
    for _ in range(3):  # a command's fault is that command's error: answered, never counted
        alice.send("/boom")
        alice.expect("ERROR /boom failed: internal error in plugin flaky")
    bob = server.connect("bob")  # a second fault of its own: disabled
    alice.send("/boom")
    alice.expect("ERROR - Command not understood")
    alice.send("still chatting")
    bob.expect("alice: still chatting")
    bob.send("/plugins")
    bob.expect_where(lambda line: line.startswith("* flaky (file: ") and "[disabled after 2 faults]" in line, "flaky")
    log = server.log_text()
    assert "[ERROR] chatroom.plugins: plugin flaky blocked the loop for " in log
    assert "RuntimeError: flaky plugin failed" in log
    assert "[ERROR] chatroom.plugins: plugin flaky disabled after 2 faults" in log


WORKER = '''
    import threading

    from chatroom import Command, hookimpl

    stop = threading.Event()


    @hookimpl
    def startup(ctx):
        # a worker of its own, not a daemon: the process cannot end while it runs
        threading.Thread(target=stop.wait, name="worker-plugin", daemon=False).start()
        ctx.state["mark"] = ctx.data_dir / "stopped"


    @hookimpl
    def shutdown(ctx):
        stop.set()
        ctx.state["mark"].write_text("stopped\\n", encoding="utf-8")


    @hookimpl
    def chat_message(ctx, text, room):
        if text == "trip":
            raise RuntimeError("worker plugin failed")
'''


@pytest.mark.parametrize("how", ["faults", "admin"])
def test_a_plugin_switched_off_or_disabled_still_gets_its_shutdown_and_the_server_stops(server_factory, tmp_path,
                                                                                         how):
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "worker.py").write_text(textwrap.dedent(WORKER))
    config = tmp_path / "chatroom.toml"
    config.write_text('admins = ["root"]\n')
    server = server_factory("--quiet", "--plugin-dir", str(folder), "--plugin-fault-limit", "1",
                            "--config", str(config))
    mark = server.data_dir / "plugins" / "worker" / "stopped"
    root = server.connect("root")
    if how == "faults":
        bob = server.connect("bob")
        root.send("trip")  # its own fault: switched off for good at once, and its shutdown hook runs then
        bob.expect("root: trip")
        root.send("/plugins")
        root.expect_where(lambda line: line.startswith("* worker (file: ") and "[disabled after 1 faults]" in line,
                          "worker switched off")
        assert mark.read_text(encoding="utf-8") == "stopped\n"
    else:  # paused by an admin: it may be enabled again, so its shutdown waits for the server's stop
        root.send("/register correct-horse")
        root.expect("OK registered root; you are logged in")
        root.send("/plugins disable worker")
        root.expect("OK plugin worker disabled")
        assert not mark.exists()
    assert server.stop() == 0  # before: the plugin's thread kept the process alive after SIGTERM
    assert mark.read_text(encoding="utf-8") == "stopped\n"
    assert server.log_text().count("RuntimeError: worker plugin failed") == (how == "faults")


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_example_plugins_own_tests_pass_with_the_kit(site, name):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT / "plugins" / name, capture_output=True, text=True, timeout=120,
        env={**os.environ, **pythonpath(site)}, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


SLEEPY = '''
    import time

    from chatroom import Command, hookimpl


    def nap(ctx, args):
        time.sleep(0.6)  # blocks the loop on purpose (limit: --slow-hook-ms 150)
        ctx.reply("OK napped")


    @hookimpl
    def register_commands():
        return [Command("nap", nap)]
'''


def test_a_plugin_that_keeps_blocking_the_loop_is_quarantined(server_factory, tmp_path):
    """Issue 17 row 8: the second call over --slow-hook-ms quarantines the plugin, so a third never stalls the
    room; the admins are told, the log says why, and an admin's /plugins enable takes it back."""
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "sleepy.py").write_text(textwrap.dedent(SLEEPY))
    config = tmp_path / "room.toml"
    config.write_text('admins = ["root"]\n')
    server = server_factory("--quiet", "--plugin-dir", str(folder), "--slow-hook-ms", "150", "--config", str(config))
    root = server.connect("root")
    root.send("/register correct-horse")
    root.expect("OK registered root; you are logged in")
    guest, bob = server.connect("guest"), server.connect("bob")
    for _ in range(2):
        guest.send("/nap")
        guest.expect("OK napped")
    notice = root.expect_prefix("* plugin sleepy quarantined: it blocked the loop 2 times in 10 minutes")
    assert "in nap (limit 150 ms)" in notice and notice.endswith("until an admin types /plugins enable sleepy")
    guest.send("/nap")  # the third call: refused at once, the handler never runs
    guest.expect("ERROR plugin sleepy is quarantined: it blocked the loop; an admin may /plugins enable sleepy")
    guest.send("still here")
    bob.expect("guest: still here")
    bob.send("/plugins")
    bob.expect_where(lambda line: line.startswith("* sleepy (file: ") and "[quarantined: it blocked the loop]" in line,
                     "sleepy quarantined")
    bob.send("/help nap")
    bob.expect("/nap - ")  # still a known command, only unavailable
    assert "[ERROR] chatroom.plugins: plugin sleepy quarantined: it blocked the loop 2 times" in server.log_text()
    root.send("/plugins enable sleepy")
    root.expect("OK plugin sleepy enabled")
    guest.send("/nap")
    guest.expect("OK napped")


SAYER = '''
    from chatroom import Command, hookimpl


    def announce(ctx, args):
        ctx.say(args[0], " ".join(args[1:]))


    @hookimpl
    def register_commands():
        return [Command("announce", announce, min_args=2)]


    @hookimpl
    def member_joined(ctx, room):
        if room.name == "#ops":
            ctx.say(room, f"* welcome to ops, {ctx.nick}")
'''


def test_a_plugins_room_line_is_a_room_event_on_every_door(server_factory, tmp_path):
    """Issue 22: ctx.say(room, text) reaches a browser as a room event (``raw`` with its room), not a roomless
    ``line``; an IRC client as a NOTICE to the channel; a terminal whose current room is another sees
    ``[#ops] ...``; member_joined greets in the room."""
    from irc_kit import IrcClient
    from web_kit import WSClient, close_all

    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "sayer.py").write_text(textwrap.dedent(SAYER))
    server = server_factory("--quiet", "--plugin-dir", str(folder), "--web-port", "0", "--irc-port", "0",
                            "--irc-server-name", "irc.test", "--flood-rate", "0")
    doors: dict[str, str] = {}
    while len(doors) < 2:  # the web URL and the IRC address, in the order the server prints them
        line = server.proc.stdout.readline()
        assert line, "the server printed no web URL or IRC address"
        for door, prefix in (("web", "chatroom-server web http://"), ("irc", "chatroom-server IRC on ")):
            if line.startswith(prefix):
                doors[door] = line.strip()[len(prefix):].rstrip("/")
    host, _, port = doors["web"].rpartition(":")
    irc = IrcClient(int(doors["irc"].rpartition(":")[2]))
    irc.register("ircy")
    irc.send("JOIN #ops")
    assert irc.expect("NOTICE", lambda m: m.params[0] == "#ops").params[1] == "* welcome to ops, ircy"
    try:
        browser = WSClient(host, int(port))
        browser.expect("you")
        browser.send("/nick webby")
        browser.send("/join #ops")
        assert browser.expect("raw", room="#ops")["text"] == "* welcome to ops, webby"
        bob = server.connect("bob")
        bob.send("/join #ops")
        bob.expect("* welcome to ops, bob")
        bob.send("/join #side")
        bob.expect_prefix("OK join #side")
        alice = server.connect("alice")
        alice.send("/announce #ops the build is green")
        event = browser.expect("raw", text="the build is green")
        assert event["room"] == "#ops" and event["time"]
        bob.expect("[#ops] the build is green")
        notice = irc.expect("NOTICE", lambda m: m.params[-1] == "the build is green")
        assert notice.params[0] == "#ops" and notice.source == "irc.test"
    finally:
        irc.sock.close()
        close_all()
