"""``chatroom-client`` on a pseudo-terminal (pexpect), as a person sees it: the name it ends up with, a
refused name explained, Ctrl-C that loses nothing typed, and reconnecting after a server restart.

Real ``chatroom-server`` and ``chatroom-client`` console scripts; synchronised on what the terminal shows,
with deadlines; nothing sleeps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from chatroom.client.inputs import CTRL_C_HINT
from conftest import DEADLINE


def joined(nick: str):  # type: ignore[no-untyped-def]
    return lambda line: line == f"* {nick} joined lobby" or line.endswith(f" is now known as {nick}")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator:
    """``terminal(*args)``: ``chatroom-client ARGS`` on an 80x24 pseudo-terminal (closed at the end)."""
    started: list[pexpect.spawn] = []

    def start(*args: str) -> pexpect.spawn:
        cwd = tmp_path / f"term{len(started)}"
        cwd.mkdir()
        env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "XDG_CONFIG_HOME": str(tmp_path),
               "XDG_DATA_HOME": str(tmp_path / "data-home")}
        child = pexpect.spawn("chatroom-client", list(args), cwd=str(cwd), env=env, dimensions=(24, 80),
                              encoding="utf-8", timeout=DEADLINE)
        started.append(child)
        return child

    yield start
    for child in started:
        if child.isalive():
            child.terminate(force=True)
        child.close()


def ready(child: pexpect.spawn) -> None:
    """Wait until the prompt reads keys: Ctrl-C and Ctrl-D sent before it runs would hit the terminal's
    line discipline (SIGINT, end of file) instead. Typed text is kept by the terminal until then."""
    child.send("/upper ready\r")
    child.expect_exact("READY")


def wait_exit(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF, timeout=DEADLINE)
    child.close()
    return child.exitstatus


def test_the_client_says_the_name_it_ends_up_with(server, terminal) -> None:
    carol = server.connect("carol")
    tina = terminal("--name", "tina", "--port", str(server.port))
    tina.expect_exact("* you are tina")
    carol.expect_where(joined("tina"), "tina's nick")
    ready(tina)
    tina.sendcontrol("d")
    assert wait_exit(tina) == 0


def test_a_refused_name_is_explained_and_another_asked_for(server, terminal) -> None:
    carol = server.connect("carol")
    dup = terminal("--name", "carol", "--port", str(server.port))
    dup.expect_exact("taken")
    dup.expect_exact("* the server refused the name carol: type another name (or /quit)")
    dup.expect_exact("name:")
    dup.send("tina\r")
    dup.expect_exact("* you are tina")
    carol.expect_where(joined("tina"), "tina's nick")
    ready(dup)
    dup.sendcontrol("d")
    assert wait_exit(dup) == 0


def test_ctrl_c_keeps_the_typed_line_and_lines_typed_after_it_are_sent(server, terminal) -> None:
    carol = server.connect("carol")
    tina = terminal("--name", "tina", "--port", str(server.port))
    tina.expect_exact("* you are tina")
    carol.expect_where(joined("tina"), "tina's nick")
    ready(tina)
    tina.send("half typ")
    tina.expect_exact("half typ")
    tina.sendcontrol("c")
    tina.expect_exact(CTRL_C_HINT)
    tina.send("ed line\r")
    carol.expect("tina: half typed line")  # nothing typed before the Ctrl-C was lost
    tina.send("the next line\r")
    carol.expect("tina: the next line")  # and the client did not start quitting
    tina.sendcontrol("c")
    tina.sendcontrol("c")  # twice within 2 s: quit
    carol.expect("* tina left lobby (quit)")
    assert wait_exit(tina) == 0


def test_reconnect_on_a_terminal_and_quit_while_reconnecting(server_factory, terminal, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = server_factory(data_dir=data)
    port = first.port
    carol = first.connect("carol")
    tina = terminal("--name", "tina", "--port", str(port))
    tina.expect_exact("* you are tina")
    carol.expect_where(joined("tina"), "tina's nick")
    carol.send("before the restart")
    tina.expect_exact("carol: before the restart")

    first.stop()
    tina.expect_exact("* server shutting down")
    tina.expect_exact("connection to server lost; reconnecting in ")
    second = server_factory("--port", str(port), data_dir=data)
    carol = second.connect("carol")
    tina.expect_exact("* reconnected after ")
    tina.expect_exact("; nothing missed")
    carol.expect_where(joined("tina"), "tina back")
    tina.send("back again\r")
    carol.expect("tina: back again")
    assert "before the restart" not in tina.before  # the rejoin's replay is not shown again

    second.stop()
    tina.expect_exact("connection to server lost; reconnecting in ")
    began = time.monotonic()
    tina.send("/quit\r")
    assert wait_exit(tina) == 0
    assert time.monotonic() - began < 2.0
