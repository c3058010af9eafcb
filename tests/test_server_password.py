"""The shared server password (issue 10, Accounts): ``chatroom-server --password-file FILE``.

End to end: the real ``chatroom-server`` on port 0, nc-like :class:`LineClient` connections (one over TLS
with the stdlib ``ssl`` client, verification off), and the real ``chatroom-client`` in pipe mode.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

from conftest import DEADLINE, LineClient, ServerProcess
from test_e2e_room import Pty

PW = "open sesame"  # a server password may hold spaces: the whole first line, stripped
ASK = "* This server needs a password: /pass PASSWORD"
FIRST = "ERROR send /pass PASSWORD first"


def gated_server(server_factory: Any, tmp_path: Path, *args: str) -> ServerProcess:
    """A server whose password is :data:`PW` (the first line of a file; the second is ignored)."""
    path = tmp_path / "server-password"
    path.write_text(f"  {PW}  \nnot this line\n")
    return server_factory("--password-file", str(path), *args)


def passed(server: ServerProcess, nick: str) -> LineClient:
    """A connection past the password, named *nick*."""
    client = server.raw_client()
    assert client.next_line() == ASK
    client.send(f"/pass {PW}")
    assert client.next_line() == "OK pass"
    assert client.next_line().startswith("* Welcome to chatroom, room lobby. You are guest")
    client.send(f"/nick {nick}")
    client.expect(f"OK nick {nick}")
    return client


def run_client(server: ServerProcess, cwd: Path, *args: str, stdin: str = "",
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CHATROOM_SERVER_PASSWORD"}
    return subprocess.run(["chatroom-client", "--port", str(server.port), *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=DEADLINE,
                          env={**environ, "XDG_CONFIG_HOME": str(cwd / "config"), **(env or {})})


def test_a_new_connection_gets_only_the_question_and_errors_until_the_right_password(server_factory,
                                                                                      tmp_path: Path) -> None:
    server = gated_server(server_factory, tmp_path)
    bob = passed(server, "bob")
    bob.send("said before carol came")
    bob.sync("one")
    carol = server.raw_client()
    assert carol.next_line() == ASK
    bob.send("said while carol waits at the door")
    assert not any(line.startswith("* guest") for line in bob.sync("two"))  # no join announced
    for line in ("hello", "/nick carol", "/caps binary", "/join #other", "/who", "/upper x"):
        carol.send(line)
    carol.send("/PASS   wrong  ")
    carol.send(f"/pass {PW}")
    assert carol.expect("ERROR wrong password") == [FIRST] * 6  # nothing else: no room, history or chat
    assert carol.next_line() == "OK pass"
    welcome = carol.next_line()
    assert welcome.startswith("* Welcome to chatroom, room lobby. You are guest")
    guest = welcome.split("You are ")[1].split(".")[0]
    before = carol.sync("in")
    assert any("bob: said before carol came" in line for line in before), before
    assert any("bob: said while carol waits at the door" in line for line in before), before
    bob.expect(f"* {guest} joined lobby")
    carol.send("/nick carol")
    carol.expect("OK nick carol")
    carol.send("hi bob")
    bob.expect("carol: hi bob")
    bob.send("hi carol")
    carol.expect("bob: hi carol")


def test_three_wrong_passwords_disconnect_and_the_log_never_holds_a_password(server_factory,
                                                                             tmp_path: Path) -> None:
    server = gated_server(server_factory, tmp_path)
    mallory = server.raw_client()
    assert mallory.next_line() == ASK
    for attempt in ("guess-one", "guess-two", "guess-three"):
        mallory.send(f"/pass {attempt}")
        assert mallory.next_line() == "ERROR wrong password"
    assert mallory.closed_by_server()
    bob = passed(server, "bob")  # the server itself goes on
    bob.sync()
    log = server.log_text()
    assert "wrong server password (3 of 3)" in log and "127.0.0.1" in log
    for secret in ("guess-one", "guess-two", "guess-three", PW, "sesame"):
        assert secret not in log


def test_quit_before_the_password_says_ok_and_closes(server_factory, tmp_path: Path) -> None:
    server = gated_server(server_factory, tmp_path)
    client = server.raw_client()
    assert client.next_line() == ASK
    client.send("/quit")
    assert client.next_line() == "OK"
    assert client.closed_by_server()


def test_the_password_gates_tls_connections_too(server_factory, tmp_path: Path) -> None:
    server = gated_server(server_factory, tmp_path, "--tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((server.host, server.port), timeout=DEADLINE)
    client = LineClient.from_socket(context.wrap_socket(raw, server_hostname="localhost"))
    server.clients.append(client)
    assert client.next_line() == ASK
    client.send("hello")
    assert client.next_line() == FIRST
    client.send(f"/pass {PW}")
    assert client.next_line() == "OK pass"
    assert client.next_line().startswith("* Welcome to chatroom, room lobby.")
    client.sync()


def test_the_client_gives_the_password_from_its_option_or_the_environment(server_factory, tmp_path: Path) -> None:
    server = gated_server(server_factory, tmp_path)
    bob = passed(server, "bob")
    done = run_client(server, tmp_path, "--name", "carol", "--server-password", PW, stdin="hi from carol\n")
    assert done.returncode == 0, done.stderr
    assert PW not in done.stdout + done.stderr
    assert done.stdout.startswith("* Welcome to chatroom, room lobby.")  # the question and OK pass are not shown
    assert "ERROR" not in done.stdout + done.stderr  # the refused early handshake replies are not shown
    bob.expect("carol: hi from carol")
    done = run_client(server, tmp_path, "--name", "dave", stdin="hi from dave\n",
                      env={"CHATROOM_SERVER_PASSWORD": PW})
    assert done.returncode == 0, done.stderr
    bob.expect("dave: hi from dave")


def test_the_client_without_a_password_or_with_a_wrong_one_exits_2(server_factory, tmp_path: Path) -> None:
    server = gated_server(server_factory, tmp_path)
    done = run_client(server, tmp_path, "--name", "carol", stdin="never sent\n")
    assert done.returncode == 2
    assert ASK in done.stderr.splitlines() and "--server-password" in done.stderr
    done = run_client(server, tmp_path, "--name", "carol", "--server-password", "not-it", stdin="never sent\n")
    assert done.returncode == 2
    assert "ERROR wrong password" in done.stderr.splitlines() and "not-it" not in done.stdout + done.stderr
    assert "never sent" not in server.log_text()


def test_the_terminal_client_asks_without_showing_what_is_typed(server_factory, tmp_path: Path) -> None:
    server = gated_server(server_factory, tmp_path)
    bob = passed(server, "bob")
    term = Pty(["--name", "carol", "--port", str(server.port)], tmp_path / "carol")
    try:
        term.read_until(lambda out: b"server password:" in out, "the server password prompt")
        mark = len(term.raw)
        term.type("wrong-guess\r")
        term.read_until(lambda out: b"ERROR wrong password" in out and out.rstrip().endswith(b"server password:"),
                        "the prompt again after a wrong password", start=mark)
        mark = len(term.raw)
        term.type(PW + "\r")
        term.read_until(lambda out: out.rstrip().endswith(b">"), "the chat prompt", start=mark)
        term.type("hi from the terminal\r")
        bob.expect("carol: hi from the terminal")
        assert b"wrong-guess" not in term.raw and PW.encode() not in term.raw  # never shown
    finally:
        term.close()


def test_an_unreadable_or_empty_password_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n   \n")
    for path, reason in ((tmp_path / "missing", "cannot read --password-file"), (empty, "is empty")):
        done = subprocess.run(["chatroom-server", "--port", "0", "--data-dir", str(tmp_path / "data"),
                               "--password-file", str(path)], capture_output=True, text=True, timeout=DEADLINE)
        assert done.returncode == 2 and done.stdout == ""
        assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("chatroom-server: error: ")
        assert reason in done.stderr
