"""The life of a ``chatroom-client`` connection, end to end: reconnecting after a server restart (rooms
rejoined, missed lines fetched by history id and shown exactly once), quitting while reconnecting, the
name the client ends up with, and a refused name explained.

Real ``chatroom-server`` and ``chatroom-client`` console scripts on port 0; the restarted server takes the
same port and data dir. Everything synchronises on printed lines with deadlines; nothing sleeps.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from pathlib import Path

from conftest import DEADLINE, LineClient
from chatroom.wire.lines import Frame
from test_e2e_transfer import ClientProcess


def joined(nick: str):  # type: ignore[no-untyped-def]
    return lambda line: line == f"* {nick} joined lobby" or line.endswith(f" is now known as {nick}")


def rest_of_output(client: ClientProcess) -> list[str]:
    """Every line the client printed, once its output ended (bounded by the deadline)."""
    try:
        client.expect(lambda line: False)
    except EOFError:
        return client.out
    raise AssertionError("unreachable")


def test_reconnect_after_a_restart_rejoins_and_shows_missed_lines_once(server_factory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = server_factory(data_dir=data)
    port = first.port
    bob = first.connect("bob")
    alice = ClientProcess(port, tmp_path / "alice", "--name", "alice", "--reconnect")
    try:
        bob.expect_where(joined("alice"), "alice's nick")
        alice.send("/join #design")
        alice.expect(lambda line: line.startswith("OK join #design"))
        alice.send("/join #lobby")
        alice.expect("OK current room #lobby")
        bob.send("seen live")
        alice.expect("bob: seen live")
        alice.send("said by alice before")
        bob.expect("alice: said by alice before")

        first.stop()  # SIGTERM: the server tells everyone and closes
        alice.expect("* server shutting down")
        alice.expect(lambda line: line.startswith("connection to server lost; reconnecting in "))

        # While alice keeps trying the old port, the rooms go on elsewhere on the same data dir.
        interim = server_factory(data_dir=data)
        bob = interim.connect("bob")
        bob.send("missed one")
        bob.send("missed two")
        bob.send("/join #design")
        bob.expect("OK join #design (1 member)")
        bob.send("missed in design")
        bob.sync()
        interim.stop()
        second = server_factory("--port", str(port), data_dir=data)  # the old port again: alice gets in
        summary = alice.expect(lambda line: line.startswith("* reconnected after "), timeout=3 * DEADLINE)
        assert summary.endswith("; 1 missed line in #design, 2 in #lobby"), summary
        missed = alice.lines_until(lambda line: "missed two" in line)
        assert [line.split("] ", 2)[-1] for line in missed] == ["bob: missed in design", "bob: missed one"]
        assert missed[0].startswith("[#design] [")

        # bob comes back only once alice has caught up: her next retry may reach the new server at any
        # moment, so a bob who came first raced her rejoin (his /join said "(2 members)" when she won).
        bob = second.connect("bob")
        bob.send("/join #design")
        bob.expect("OK join #design (2 members)")  # alice rejoined it
        bob.send("live after")
        alice.expect("[#design] bob: live after")
        alice.send("back again")
        bob.expect("[#lobby] alice: back again")  # her current room is #lobby again
        alice.send("/quit")
        assert alice.proc.wait(DEADLINE) == 0
        out = rest_of_output(alice)
        assert sum("seen live" in line for line in out) == 1, out
        assert sum("said by alice before" in line for line in out) == 0, out
        for text in ("missed one", "missed two", "missed in design", "live after"):
            assert sum(text in line for line in out) == 1, (text, out)
    finally:
        alice.kill()


def reconnecting_client(server, cwd: Path) -> ClientProcess:  # type: ignore[no-untyped-def]
    """A pipe-mode ``--reconnect`` client whose server was just stopped: it is trying to reconnect."""
    client = ClientProcess(server.port, cwd, "--name", "alice", "--reconnect")
    client.send("/upper ready")
    client.expect("READY")
    server.stop()
    client.expect(lambda line: line.startswith("connection to server lost; reconnecting in "))
    return client


def test_quit_while_reconnecting_ends_at_once(server, tmp_path: Path) -> None:
    alice = reconnecting_client(server, tmp_path / "alice")
    try:
        alice.send("typed while away")
        began = time.monotonic()
        alice.send("/quit")
        assert alice.proc.wait(DEADLINE) == 0
        assert time.monotonic() - began < 2.0
        alice.expect("not reconnected; 1 typed line not sent")
    finally:
        alice.kill()


def test_end_of_input_while_reconnecting_ends_at_once(server, tmp_path: Path) -> None:
    alice = reconnecting_client(server, tmp_path / "alice")
    try:
        began = time.monotonic()
        alice.proc.stdin.close()  # type: ignore[union-attr]
        assert alice.proc.wait(DEADLINE) == 0
        assert time.monotonic() - began < 2.0
    finally:
        alice.kill()


def test_pipe_mode_does_not_reconnect_by_default(server_factory, tmp_path: Path) -> None:
    server = server_factory()
    alice = ClientProcess(server.port, tmp_path / "alice", "--name", "alice")
    try:
        alice.send("/upper ready")
        alice.expect("READY")
        server.stop()
        assert alice.proc.wait(DEADLINE) == 1
        alice.expect("connection to server lost")
    finally:
        alice.kill()


def test_a_refused_name_in_pipe_mode_says_what_to_do(server, tmp_path: Path) -> None:
    server.connect("carol")
    dup = ClientProcess(server.port, tmp_path / "dup", "--name", "carol")
    try:
        assert dup.proc.wait(DEADLINE) == 2
        dup.expect(lambda line: line.startswith("ERROR") and "carol" in line)
        hint = dup.expect(lambda line: line.startswith("chatroom-client: the server refused the name carol"))
        assert "--name NAME" in hint
    finally:
        dup.kill()


def test_a_sender_sees_the_shutdown_notice_when_the_server_stops_mid_transfer(server, tmp_path: Path) -> None:
    stuck = server.connect("stuck", binary=True)  # reads one chunk, then nothing: the sender stalls
    alice = ClientProcess(server.port, tmp_path / "alice", "--name", "alice")
    try:
        stuck.expect_where(joined("alice"), "alice's nick")
        (alice.send_dir / "huge.bin").write_bytes(os.urandom(64 * 1024 * 1024))
        alice.send("/sendfile huge.bin")
        frame = stuck.next_event()
        while not (isinstance(frame, Frame) and frame.meta.startswith("file-data ")):
            frame = stuck.next_event()  # the transfer is under way
        server.stop()
        assert alice.proc.wait(DEADLINE) == 1
        out = rest_of_output(alice)
        assert "* server shutting down" in out, out
        assert out[-1] == "connection to server lost", out
    finally:
        alice.kill()


SERVER_PW = "letmein-pass"
ALICE_PW = "alice-secret-1"


def tls_client(server, nick: str | None = None):  # type: ignore[no-untyped-def]
    """A raw line client over TLS past the server password (named *nick*), with message tags."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((server.host, server.port), timeout=DEADLINE)
    client = LineClient.from_socket(context.wrap_socket(raw, server_hostname="localhost"))
    server.clients.append(client)
    client.expect_prefix("* This server needs a password")
    client.send(f"/pass {SERVER_PW}")
    client.expect("OK pass")
    client.send("/caps tags")
    client.expect("OK caps tags")
    if nick:
        client.send(f"/nick {nick}")
        client.expect(f"OK nick {nick}")
    return client


def test_reconnect_over_tls_gives_the_server_password_and_logs_in_again(server_factory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    secret = tmp_path / "server-password"
    secret.write_text(SERVER_PW + "\n")
    first = server_factory("--tls", "--password-file", str(secret), data_dir=data)
    fingerprint = first.proc.stdout.readline().split(" fingerprint ")[1].strip()  # type: ignore[union-attr]
    port = first.port
    registrar = tls_client(first, "alice")
    registrar.send(f"/register {ALICE_PW}")
    registrar.expect_prefix("OK registered alice")
    registrar.send("/quit")
    registrar.expect("OK")
    bob = tls_client(first, "bob")
    alice = ClientProcess(port, tmp_path / "alice", "--name", "alice", "--reconnect", "--tls", "--fingerprint",
                          fingerprint, "--server-password", SERVER_PW, "--password", ALICE_PW)
    try:
        bob.expect_where(lambda line: line.endswith(" is now known as alice"), "alice logged in")
        alice.send("/upper ready")
        alice.expect("READY")
        first.stop()
        alice.expect(lambda line: line.startswith("connection to server lost; reconnecting in "))

        interim = server_factory("--tls", "--password-file", str(secret), data_dir=data)  # another port
        away = tls_client(interim, "bob")
        away.send("said while alice was away")
        away.sync()
        interim.stop()
        second = server_factory("--port", str(port), "--tls", "--password-file", str(secret), data_dir=data)
        bob = tls_client(second, "bob")
        summary = alice.expect(lambda line: line.startswith("* reconnected after "), timeout=3 * DEADLINE)
        assert summary.endswith("; 1 missed line in #lobby"), summary
        alice.expect(lambda line: line.endswith("bob: said while alice was away"))
        alice.send("back, logged in")
        bob.expect_where(lambda text: text.endswith(" alice: back, logged in"), "alice's line")
        assert "account=alice" in bob.seen[-1].split(" ", 1)[0].lstrip("@").split(";"), bob.seen[-1]
        alice.send("/quit")
        assert alice.proc.wait(DEADLINE) == 0
        out = rest_of_output(alice)
        assert SERVER_PW not in "\n".join(out) and ALICE_PW not in "\n".join(out)
    finally:
        alice.kill()
