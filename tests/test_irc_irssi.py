"""A real IRC client in the rooms: irssi (Debian's package; scripts/install-test-packages.sh installs it) on a
pseudo-terminal, drawn by pyte (tests/screen.py), logged in with SASL PLAIN to a chatroom account, in a room
with a line-protocol member (what ``nc`` speaks) and a real ``chatroom-client``: lines, ``/me``, the topic,
kicks, private lines both ways."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from irc_kit import start_irc
from screen import Term
from test_e2e_transfer import ClientProcess

pytestmark = pytest.mark.skipif(shutil.which("irssi") is None,
                                reason="irssi is missing: scripts/install-test-packages.sh installs it")

CONFIG = """
servers = ( {{ address = "127.0.0.1"; port = "{port}"; chatnet = "chatroom"; autoconnect = "yes"; }} );
chatnets = {{ chatroom = {{ type = "IRC"; sasl_mechanism = "PLAIN"; sasl_username = "alice";
                           sasl_password = "{password}"; }}; }};
settings = {{
  core = {{ real_name = "Alice"; user_name = "alice"; nick = "alice"; }};
  "fe-common/core" = {{ autocreate_query_level = "none"; theme = "default"; }};
  "fe-text" = {{ actlist_sort = "refnum"; }};
}};
"""


def _irssi(tmp_path: Path, port: int, password: str) -> Term:
    home = tmp_path / "irssi"
    home.mkdir()
    (home / "config").write_text(CONFIG.format(port=port, password=password))
    return Term([f"--home={home}"], tmp_path / "cwd", cols=120, rows=40, command="irssi")


def test_irssi_talks_with_line_and_terminal_members(server_factory: Any, tmp_path: Path) -> None:
    server = start_irc(server_factory)
    owner = server.connect("alice")  # the account irssi logs in to
    owner.send("/register correct-horse")
    owner.expect_prefix("OK registered alice")
    owner.send("/quit")
    owner.expect("OK")
    bob = server.connect("bob")
    bob.send("/join #team")
    bob.expect_prefix("OK join #team")
    dave = ClientProcess(server.port, tmp_path / "dave", "--name", "dave")  # the terminal client, line mode
    dave.send("/join #team")
    dave.expect(lambda line: "OK join #team" in line)
    term = _irssi(tmp_path, server.irc_port, "correct-horse")
    try:
        term.wait_for(r"Welcome to the chatroom IRC door alice!", "irssi registered")
        assert re.search(r"authenticat", term.text(), re.IGNORECASE), term.text()  # SASL, before the welcome
        term.type("/join #team\r")
        bob.expect("* alice joined team")
        term.wait_for(r"alice.*has joined #team", "irssi in #team")
        term.type("hello from irssi\r")
        bob.expect("alice: hello from irssi")
        dave.expect(lambda line: "alice: hello from irssi" in line)
        dave.send("hi from the terminal client")
        term.wait_for(r"dave> hi from the terminal client", "the terminal client's line in irssi")
        bob.send("hi irssi")
        term.wait_for(r"bob> hi irssi", "bob's line in irssi")
        term.type("/me waves\r")
        bob.expect("* alice waves")
        bob.send("/me nods")
        term.wait_for(r"\* bob nods", "bob's /me in irssi")
        term.type("/topic a topic from irssi\r")
        bob.expect("* alice set the topic of team: a topic from irssi")
        bob.send("/topic set from nc")
        term.wait_for(r"changed the topic of #team to: set from nc", "the topic in irssi")
        term.type("/msg bob psst\r")
        bob.expect("alice (private): psst")
        bob.send("/msg alice secret reply")
        bob.expect("OK sent to alice")
        term.type("/window 1\r")
        term.wait_for(r"bob.*secret reply", "the private line in irssi")
        term.type("/window 2\r")
        bob.send("/op alice")  # bob made #team: he operates it and names alice, an account, operator
        bob.expect("OK op alice")
        term.wait_for(r"mode/#team \[\+o alice\] by bob", "alice is operator in irssi")
        bob.send("/kick alice out you go")
        term.wait_for(r"You have been kicked from #team by bob \(out you go\)|kicked from #team by bob",
                      "the kick in irssi")
        term.type("/join #team\r")
        bob.expect("* alice joined team")
        term.wait_for(r"alice.*has joined #team.*\n(.*\n)*.*", "back in #team")
        carol = server.connect("carol")
        carol.send("/join #team")
        carol.expect_prefix("OK join #team")
        term.wait_for(r"carol.*has joined #team", "carol in irssi")
        term.type("/kick carol enough\r")
        carol.expect("* alice kicked carol from team (enough)")
        bob.expect("* alice kicked carol from team (enough)")
        term.type("/quit leaving now\r")
        bob.expect("* alice left team (leaving now)")
        assert term.exit_status(timeout=10) is not None
        dave.expect(lambda line: "alice left team (leaving now)" in line)
    finally:
        term.close()
        dave.kill()
