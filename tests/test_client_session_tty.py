"""``chatroom-client`` on a pseudo-terminal, as a person sees it (``tests/screen.py``: pexpect + pyte): the
name it ends up with, a refused name explained, Ctrl-C that loses nothing typed, and reconnecting after a
server restart.

Real ``chatroom-server`` and ``chatroom-client`` console scripts; synchronised on what the screen shows,
with deadlines; nothing sleeps.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatroom.client.inputs import CTRL_C_HINT
from screen import Term


def joined(nick: str):  # type: ignore[no-untyped-def]
    return lambda line: line == f"* {nick} joined lobby" or line.endswith(f" is now known as {nick}")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator:
    """``terminal(*args)``: ``chatroom-client ARGS`` on an 80x24 screen (closed at the end)."""
    started: list[Term] = []

    def start(*args: str) -> Term:
        term = Term(list(args), tmp_path / f"term{len(started)}")
        started.append(term)
        return term

    yield start
    for term in started:
        term.close()


def ready(term: Term) -> None:
    """Wait until the prompt reads keys: Ctrl-C and Ctrl-D sent before it runs would hit the terminal's
    line discipline (SIGINT, end of file) instead. Typed text is kept by the terminal until then."""
    term.type("/upper ready\r")
    term.wait_for(r"^(?!.*/upper).*READY", "the reply to /upper ready")


def test_the_client_says_the_name_it_ends_up_with(server, terminal) -> None:
    carol = server.connect("carol")
    tina = terminal("--name", "tina", "--port", str(server.port))
    tina.wait_for(r"\* you are tina")
    carol.expect_where(joined("tina"), "tina's nick")
    ready(tina)
    tina.type("\x04")
    assert tina.exit_status() == 0


def test_a_refused_name_is_explained_and_another_asked_for(server, terminal) -> None:
    carol = server.connect("carol")
    dup = terminal("--name", "carol", "--port", str(server.port))
    dup.wait_for(r"ERROR .*carol.*taken")
    dup.wait_for(re.escape("* the server refused the name carol: type another name (or /quit)"))
    dup.wait(lambda: "name:" in dup.cursor_row(), "the name prompt")
    dup.type("tina\r")
    dup.wait_for(r"\* you are tina")
    carol.expect_where(joined("tina"), "tina's nick")
    ready(dup)
    dup.type("\x04")
    assert dup.exit_status() == 0


def test_ctrl_c_keeps_the_typed_line_and_lines_typed_after_it_are_sent(server, terminal) -> None:
    carol = server.connect("carol")
    tina = terminal("--name", "tina", "--port", str(server.port))
    tina.wait_for(r"\* you are tina")
    carol.expect_where(joined("tina"), "tina's nick")
    ready(tina)
    tina.type("half typ")
    tina.wait(lambda: tina.cursor_row().endswith("half typ"), "the typed text")
    tina.type("\x03")
    tina.wait_for(re.escape(CTRL_C_HINT))
    tina.wait(lambda: tina.cursor_row().endswith("half typ"), "the typed text kept in the prompt")
    tina.type("ed line\r")
    carol.expect("tina: half typed line")  # nothing typed before the Ctrl-C was lost
    tina.type("the next line\r")
    carol.expect("tina: the next line")  # and the client did not start quitting
    tina.type("\x03\x03")  # twice within 2 s: quit
    carol.expect("* tina left lobby (quit)")
    assert tina.exit_status() == 0


def test_reconnect_on_a_terminal_and_quit_while_reconnecting(server_factory, terminal, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = server_factory(data_dir=data)
    port = first.port
    carol = first.connect("carol")
    tina = terminal("--name", "tina", "--port", str(port))
    tina.wait_for(r"\* you are tina")
    carol.expect_where(joined("tina"), "tina's nick")
    carol.send("before the restart")
    tina.wait_for(r"carol: before the restart")

    first.stop()
    tina.wait_for(r"\* server shutting down")
    tina.wait_for(r"connection to server lost; reconnecting in ")
    second = server_factory("--port", str(port), data_dir=data)
    carol = second.connect("carol")
    tina.wait_for(r"\* reconnected after \d+ s; nothing missed")
    tina.type("back again\r")
    carol.expect("tina: back again")
    assert tina.text().count("before the restart") == 1  # the rejoin's replay is not shown again

    second.stop()
    tina.wait_for(r"(?s)reconnected after.*connection to server lost; reconnecting in ")
    began = time.monotonic()
    tina.type("/quit\r")
    assert tina.exit_status() == 0
    assert time.monotonic() - began < 2.0
