"""A history store that fails and recovers, against the real ``chatroom-server`` over TCP.

The failure is real: the test holds SQLite's write lock on ``rooms.sqlite3`` from another connection
(another process would do the same), so every attempt of the server's writer thread ends in
"database is locked". What is checked is what docs/protocol.md ("Durability") promises: the room never
waits for the store (lines reach the others while nothing can be committed), at most
``--history-max-unsaved`` lines wait and the next speaker alone is told ``ERROR history store
unavailable ...``, an acknowledgement (``OK topic``) only comes once its change is saved, the failure
and the recovery are logged once each, and every line that was delivered is in the history after a
restart.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from conftest import DEADLINE, LineClient, ServerProcess
from irc_kit import IrcClient


def wait_for_log(server: ServerProcess, text: str, timeout: float = DEADLINE) -> str:
    """The server's log once it holds *text* (the log file is what the program prints to)."""
    deadline = time.monotonic() + timeout
    while text not in (log := server.log_text()):
        assert time.monotonic() < deadline, f"the log never said {text!r}: {log[-2000:]}"
        time.sleep(0.02)
    return log


def nothing_arrives(client: LineClient, seconds: float) -> bool:
    """True if *client* receives no line for *seconds* (a bounded look, for what must not come yet)."""
    try:
        line = client.next_line(seconds)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected line {line!r}")


def test_a_locked_store_stalls_nobody_refuses_past_the_cap_and_recovers(server_factory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = server_factory("--history-max-unsaved", "4", data_dir=data)
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("/topic before")
    alice.expect("OK topic")  # committed: the file and its tables exist
    lock = sqlite3.connect(data / "rooms.sqlite3", timeout=DEADLINE, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the write lock: the server's writer cannot commit
    try:
        alice.send("one")
        bob.expect("alice: one", timeout=3.0)  # delivered at once, not after a commit
        log = wait_for_log(server, "history store unavailable: database is locked")
        alice.send("two")
        bob.expect("alice: two")
        alice.send("three")
        bob.expect("alice: three")
        alice.send("/topic during")  # the 4th line waiting: kept, shown to the room, not acknowledged yet
        bob.expect("* alice set the topic of lobby: during")
        assert nothing_arrives(alice, 1.0)  # no OK while the change is not saved
        bob.send("four")  # the 5th: over the cap, refused to its speaker alone
        assert bob.expect_prefix("ERROR history store unavailable (database is locked): your line was not sent")
        bob.send("/upper still here")
        assert bob.expect("STILL HERE") == []  # the speaker is served on; nothing else was sent to him
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    # all of alice's output waited with her OK (her own topic line too); bob's refused line never reached her
    assert alice.expect("OK topic") == ["* alice set the topic of lobby: during"]
    log = wait_for_log(server, "history store recovered after")
    assert log.count("history store unavailable") == 1 and log.count("history store recovered") == 1
    assert "4 lines saved" in log
    alice.send("five")
    bob.expect("alice: five")
    assert server.stop() == 0
    again = server_factory(data_dir=data)
    carol = again.connect("carol")
    carol.send("/history 10")
    shown = carol.expect("OK history #lobby 6 lines")
    assert [line.split("] ", 1)[1] for line in shown] == [
        "* alice set the topic of lobby: before", "alice: one", "alice: two", "alice: three",
        "* alice set the topic of lobby: during", "alice: five"]


def test_a_locked_account_store_fails_the_register_alone_and_stalls_nobody(server_factory, tmp_path: Path) -> None:
    """``/register`` is written by the account store's writer thread: while another connection holds the
    file's write lock the room goes on, and the registrant gets an ERROR (nothing kept), never an OK."""
    data = tmp_path / "data"
    server = server_factory(data_dir=data)
    alice, bob, carol = server.connect("alice"), server.connect("bob"), server.connect("carol")
    lock = sqlite3.connect(data / "accounts.sqlite3", timeout=DEADLINE, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        alice.send("/register correct-horse")
        bob.send("still talking")
        carol.expect("bob: still talking", timeout=3.0)  # the loop never waits for the account store
        error = alice.expect_prefix("ERROR account store error: database is locked")
        assert "OK registered" not in " ".join(alice.seen) and error
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    alice.send("/register correct-horse")
    alice.expect("OK registered alice; you are logged in")
    assert server.stop() == 0
    again = server_factory(data_dir=data)
    dave = again.connect()
    dave.send("/nick alice")
    assert dave.expect_prefix("ERROR alice is registered")  # the OK meant it was committed


def test_an_irc_topic_is_answered_once_saved_and_irc_chat_never_waits(server_factory, tmp_path: Path) -> None:
    """The same rule through the IRC door: with the room store locked, a PRIVMSG reaches the room and its
    echo comes back at once; a TOPIC is shown to the room at once, but its setter's echo waits for the commit."""
    data = tmp_path / "data"
    server = server_factory("--irc-port", "0", "--irc-server-name", "irc.test", "--flood-rate", "0", data_dir=data)
    irc_port = next(int(line.strip().rpartition(":")[2]) for line in iter(server.proc.stdout.readline, "")
                    if line.startswith("chatroom-server IRC on "))
    bob = server.connect("bob")
    alice = IrcClient(irc_port)
    try:
        alice.register("alice", "echo-message")
        alice.send("JOIN #lobby")
        alice.expect("366")
        lock = sqlite3.connect(data / "rooms.sqlite3", timeout=DEADLINE, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            alice.send("PRIVMSG #lobby :said over IRC")
            bob.expect("alice: said over IRC", timeout=3.0)
            alice.expect("PRIVMSG", lambda m: m.params[-1] == "said over IRC", timeout=3.0)  # its echo: at once
            alice.send("TOPIC #lobby :set over IRC")
            bob.expect("* alice set the topic of lobby: set over IRC", timeout=3.0)
            with pytest.raises((AssertionError, TimeoutError)):  # nothing for alice while the topic is not saved
                alice.next(timeout=1.5)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert alice.expect("TOPIC").params[-1] == "set over IRC"  # once saved
    finally:
        alice.close()
