"""The life of a ``chatroom-client`` connection, end to end: reconnecting after a server restart (rooms
rejoined, missed lines fetched by history id and shown exactly once), quitting while reconnecting, the
name the client ends up with, and a refused name explained.

Real ``chatroom-server`` and ``chatroom-client`` console scripts on port 0; the restarted server takes the
same port and data dir. Everything synchronises on printed lines with deadlines; nothing sleeps.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import DEADLINE
from chatroom.wire.lines import Frame
from test_e2e_transfer import ClientProcess


def joined(nick: str):  # type: ignore[no-untyped-def]
    return lambda line: line == f"* {nick} joined lobby" or line.endswith(f" is now known as {nick}")


def named(server, nick: str, source: str | None = None):  # type: ignore[no-untyped-def]
    client = server.silent_client(source=source)
    client.expect_prefix("* Welcome")
    client.send(f"/nick {nick}")
    client.expect(f"OK nick {nick}")
    return client


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

        second = server_factory("--port", str(port), "--max-per-address", "1", data_dir=data)
        blocker = second.silent_client()  # 127.0.0.1's only slot: alice cannot get back in yet
        blocker.expect_prefix("* Welcome")
        bob = named(second, "bob", source="127.0.0.2")
        bob.send("missed one")
        bob.send("missed two")
        bob.send("/join #design")
        bob.expect("OK join #design (1 member)")
        bob.send("missed in design")
        bob.sync()
        blocker.close()  # now alice's next attempt gets in

        summary = alice.expect(lambda line: line.startswith("* reconnected after "), timeout=3 * DEADLINE)
        assert summary.endswith("; 1 missed line in #design, 2 in #lobby"), summary
        missed = alice.lines_until(lambda line: "missed two" in line)
        assert [line.split("] ", 2)[-1] for line in missed] == ["bob: missed in design", "bob: missed one"]
        assert missed[0].startswith("[#design] [")
        bob.expect_where(lambda line: line == "* alice joined design", "alice back in #design")
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
