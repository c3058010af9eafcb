"""Small things a new user tripped on in chatroom-client's terminal UI (issue 17 row 15): passwords
never shown, your own ``/me``, ``/help`` with the client's commands, the rate of a tiny transfer, and a
padded chat line that cannot pass for somebody else's.

The real ``chatroom-server`` and ``chatroom-client`` on a pseudo-terminal (:class:`screen.Term`:
pexpect plus pyte); the others are raw line clients. Every wait is bounded and synchronised on the
screen or on what a peer receives.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from test_client_screen import joined, term  # noqa: F401  (term: the terminal fixture of that module)


def test_passwords_are_masked_as_typed_and_in_the_echo(server: Any, term: Any) -> None:
    alice = term()
    alice.type("/register hunter2pass")
    alice.wait_for(r"^#lobby> /register \*{11}$", "the password drawn as stars while typed")
    alice.type("\r")
    alice.wait_for(r"^\d\d:\d\d > /register \*{8}$", "the masked echo")
    alice.wait_for(r"OK registered alice; you are logged in$", "the server's answer")
    alice.type("/password hunter2pass n3wpassword\r")
    alice.wait_for(r"^\d\d:\d\d > /password \*{8} \*{8}$", "both passwords masked")
    alice.wait_for(r"^\d\d:\d\d OK password changed", "the change")
    alice.type("/login alice n3wpassword")
    alice.wait_for(r"^#lobby> /login alice \*{11}$", "the nick shown, the password not")
    alice.type("\r")
    alice.wait_for(r"^\d\d:\d\d > /login alice \*{8}$", "the masked echo of /login")
    alice.wait_for(r"OK logged in as alice", "the login")
    for secret in (b"hunter2pass", b"n3wpassword"):
        assert secret not in alice.raw  # never drawn, not even for a moment


def test_your_own_me_line_reads_as_the_others_see_it(server: Any, term: Any) -> None:
    bob = server.connect("bob")
    alice = term()
    bob.expect_where(joined("alice"), "alice's nick")
    alice.type("/me waves\r")
    bob.expect("* alice waves")
    alice.wait_for(r"^\d\d:\d\d \* alice waves$", "the echo as * alice waves")
    assert "/me waves" not in alice.text()


def test_help_lists_the_clients_own_commands_after_the_servers(server: Any, term: Any) -> None:
    alice = term()
    alice.type("/help\r")
    alice.wait_for(r"^\d\d:\d\d /switch #ROOM - ", "the client's last command")
    lines = alice.lines()
    header = next(i for i, line in enumerate(lines) if line.endswith("* chatroom-client's own commands:"))
    server_list = [i for i, line in enumerate(lines) if re.match(r"\d\d:\d\d /(who|join|upper) ", line)]
    assert len(server_list) == 3 and max(server_list) < header, alice.text()
    ours = [line[6:].split(" - ")[0] for line in lines[header + 1:] if re.match(r"\d\d:\d\d /", line)]
    assert ours == ["/sendfile NAME", "/transfers", "/resume ID", "/cancel ID", "/accept [ID]", "/decline [ID]",
                    "/quit", "/switch #ROOM"]
    assert "no such command" not in alice.text()  # the end-of-list marker is never shown
    twice = [line for line in lines[:header] if re.match(r"\d\d:\d\d /(accept ID|decline ID|quit|sendfile NAME SIZE) - ", line)]
    assert not twice, twice  # the server's lines for the client's own commands: shown once, in the client's words
    alice.type("/tr\t")
    alice.wait_for(r"^#lobby> /transfers$", "the client's command completes too")


def test_a_tiny_transfer_reports_its_time_not_zero_mb_per_second(server: Any, term: Any, tmp_path: Path) -> None:
    bob = server.connect("bob", binary=True)
    alice = term()
    bob.expect_where(joined("alice"), "alice's nick")
    (tmp_path / "alice" / "send" / "tiny.txt").write_text("tiny\n")
    alice.type("/sendfile tiny.txt\r")
    done = alice.wait_for(r'sent "tiny.txt" \(5 bytes\) to bob: (.*), sha256 ', "the summary").group(1)
    assert re.fullmatch(r"in \d+ ms|in \d+\.\d s", done), done
    assert "0.0 MB/s" not in alice.text()


def test_a_chat_line_padded_with_spaces_cannot_start_a_row_as_somebody_else(server: Any, term: Any) -> None:
    mallory = server.connect("mallory")
    bob = server.connect("bob")
    alice = term("alice", "--no-timestamps")
    bob.expect_where(joined("alice"), "alice's nick")
    mallory.send("hi" + " " * 149 + "bob: please send me your password")  # "bob:" at column 80 if soft-wrapped
    bob.send("bob: a real line")  # what a line of bob's looks like, for comparison
    alice.wait_for(r"^bob: bob: a real line$", "bob's line")
    rows = alice.lines()
    assert not [row for row in rows if row.startswith("bob: please")], alice.text()
    assert alice.shows("mallory: hi bob: please send me your password")
    [spoof] = [row for row in rows if "please send me" in row]
    assert spoof.startswith(" " * len("mallory: ")), alice.text()  # indented inside mallory's line
