"""Accounts (issue 10): /register, /login, /password, the nick guard, rate limits, verified authorship,
``chatroom-server --reset-password``, and passwords that never reach the log.

Most tests run in the in-process kit (``chatroom_room``: ``ctx.run_in_thread`` work runs inline, on a
fake clock); a few start the real server, whose password checks run on worker threads.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatroom import AccountStore, author_label, check_password, hash_password, verify_password
from chatroom.builtin.accounts import Backoff
from chatroom.model.accounts import Account, reset_password

PW = "correct-horse"
DEADLINE = 10.0


@pytest.fixture(autouse=True)
def forget_new_loggers() -> Iterator[None]:
    """Drop the plugin loggers (``ctx.log``) a test here created: ``lint_imports`` (tests/test_layers.py) runs
    ``logging.config.dictConfig``, which disables every existing logger, and later kit tests read the logs
    of the board and tweet plugins."""
    before = set(logging.Logger.manager.loggerDict)
    yield
    for name in set(logging.Logger.manager.loggerDict) - before:
        if name.startswith("chatroom.plugin."):  # ctx.log loggers; never a module's own
            del logging.Logger.manager.loggerDict[name]


def tags_of(line: str) -> dict[str, str]:
    """The message tags of a ``@k=v;k=v line`` (``{}`` without tags)."""
    if not line.startswith("@"):
        return {}
    return dict(part.partition("=")[::2] for part in line[1:].split(" ", 1)[0].split(";"))


def registered(room, nick: str = "alice", password: str = PW):  # type: ignore[no-untyped-def]
    client = room.join(nick)
    assert client.say(f"/register {password}") == [f"OK registered {nick}; you are logged in"]
    return client


# -- hashes ------------------------------------------------------------------------------


def test_hashes_are_salted_scrypt_and_checked_in_constant_time() -> None:
    first, second = hash_password(PW), hash_password(PW)
    assert first.startswith("scrypt$16384$8$1$") and first != second  # salted
    assert PW not in first
    assert verify_password(PW, first) and verify_password(PW, second)
    assert not verify_password(PW + "x", first)
    for bad in ("", "plain", "md5$1$2$3$4$5", "scrypt$16384$8$1$!!$!!", "scrypt$1073741824$8$1$AAAA$AAAA"):
        assert verify_password(PW, bad) is False  # malformed or too costly: never raises
    assert check_password("short") == "a password needs at least 8 characters"
    assert check_password("with space") == "a password cannot contain spaces"
    assert check_password("x" * 257) == "a password has at most 256 characters"
    assert check_password(PW) is None
    assert author_label("bob", None) == "bob"
    assert author_label("alice", "Alice") == "alice (verified)"
    assert author_label("al", "alice") == "al (verified as alice)"


def test_backoff_doubles_after_the_free_failures_and_forgets() -> None:
    limiter = Backoff(2, base=2.0, cap=5.0, forget=100.0)
    assert limiter.wait("k", 0.0) == 0.0
    limiter.charge("k", 0.0)
    limiter.charge("k", 0.0)
    assert limiter.wait("k", 0.0) == 2.0 and limiter.wait("k", 1.5) == 0.5 and limiter.wait("k", 2.0) == 0.0
    limiter.charge("k", 2.0)
    assert limiter.wait("k", 2.0) == 4.0
    limiter.charge("k", 6.0)
    assert limiter.wait("k", 6.0) == 5.0  # capped
    limiter.refund("k")
    assert limiter.wait("k", 6.0) == 4.0
    assert limiter.wait("k", 106.0) == 0.0  # forgotten
    limiter.charge("k", 106.0)
    assert limiter.wait("k", 106.0) == 0.0  # counted from zero again
    limiter.clear("k")
    assert limiter.keys == {}


# -- in the kit -------------------------------------------------------------------------------


def test_register_stores_a_hash_and_logs_in(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice = registered(room)
    assert alice.client.account == "alice"
    stored = room.server.accounts.get("ALICE")
    assert stored is not None and stored.name == "alice" and verify_password(PW, stored.password_hash)
    assert alice.say(f"/register {PW}") == ["ERROR you are logged in as alice already"]
    bob = room.join("bob")
    assert bob.say("/register short") == ["ERROR a password needs at least 8 characters"]
    assert bob.say("/register two words") == ["ERROR usage: /register PASSWORD"]
    assert bob.say("/register") == ["ERROR usage: /register PASSWORD"]
    guest = room.join()
    assert guest.say(f"/register {PW}") == ["ERROR choose your nick first: /nick NAME, then /register PASSWORD"]
    assert (room.server.data_dir / "accounts.sqlite3").is_file()


def test_a_registered_nick_is_taken_only_by_logging_in(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    registered(room).leave()
    bob = room.join("bob")
    assert bob.say("/nick alice") == ["ERROR alice is registered; /login alice PASSWORD"]
    assert bob.say("/nick ALICE") == ["ERROR ALICE is registered; /login ALICE PASSWORD"]
    assert bob.say("/nick aIice") == ["ERROR the nick aIice is too much like the registered nick alice"]
    assert bob.say("/register " + PW) == ["OK registered bob; you are logged in"]
    carol = room.join("carol")
    assert carol.say("/nick bob") == ["ERROR bob is registered; /login bob PASSWORD"]
    assert bob.nick == "bob"
    # the owner may rename and come back; the nick stays theirs
    assert bob.say("/nick bobby") == ["OK nick bobby"]
    assert carol.say("/nick bob") == ["ERROR bob is registered; /login bob PASSWORD"]
    assert bob.say("/nick bob") == ["OK nick bob"]


def test_login_takes_the_nick_back_from_whoever_holds_it(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    bob = room.join("alice")  # a guest holds the nick when the account appears (made elsewhere)
    room.server.accounts.create("alice", hash_password(PW))
    alice = room.join("al")
    out = alice.say(f"/login alice {PW}")
    assert out[-1] == "OK logged in as alice" and alice.nick == "alice"
    guest = f"guest{bob.client.id}"
    assert bob.nick == guest and bob.client.account is None
    assert f"* you are {guest} now: alice logged in" in bob.received
    assert "* al is now known as alice" in bob.received
    # a second connection logging in to the same account takes over; the first is logged out
    again = room.join()
    assert again.say(f"/login Alice {PW}")[-1] == "OK logged in as alice"
    assert again.nick == "alice" and alice.nick == f"guest{alice.client.id}" and alice.client.account is None


def test_wrong_password_and_unknown_account(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    registered(room).leave()
    bob = room.join("bob")
    assert bob.say("/login alice wrong-password") == ["ERROR wrong password for alice"]
    assert bob.nick == "bob" and bob.client.account is None
    assert bob.say(f"/login carol {PW}") == ["ERROR no account carol"]
    assert bob.say("/login alice") == ["ERROR usage: /login NICK PASSWORD"]
    assert "[ERROR] chatroom.plugin.accounts: /login alice *** from 127.0.0.1: wrong password" in room.logs


def test_failed_logins_back_off_per_account(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    registered(room).leave()
    bob = room.join("bob")
    for _ in range(5):
        assert bob.say("/login alice wrong-password") == ["ERROR wrong password for alice"]
    assert bob.say(f"/login alice {PW}") == ["ERROR too many failed logins; try again in 2 s"]  # even the right one
    carol = room.join("carol")  # the account is locked, whoever asks
    assert carol.say(f"/login alice {PW}") == ["ERROR too many failed logins; try again in 2 s"]
    room.advance(1.5)
    assert bob.say("/login alice wrong-password") == ["ERROR too many failed logins; try again in 1 s"]
    room.advance(0.5)
    assert bob.say("/login alice wrong-password") == ["ERROR wrong password for alice"]
    assert bob.say("/login alice wrong-password") == ["ERROR too many failed logins; try again in 4 s"]
    room.advance(4)
    assert carol.say(f"/login alice {PW}")[-1] == "OK logged in as alice"
    assert bob.say("/login alice wrong-password") == ["ERROR wrong password for alice"]  # success cleared it


def test_failed_logins_back_off_per_address(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    registered(room).leave()
    mallory = room.join("mallory")  # every kit client comes from 127.0.0.1
    for n in range(10):
        assert mallory.say(f"/login user{n} {PW}") == [f"ERROR no account user{n}"]
    assert mallory.say(f"/login alice {PW}") == ["ERROR too many failed logins; try again in 2 s"]
    room.advance(2)
    assert mallory.say(f"/login alice {PW}")[-1] == "OK logged in as alice"


def test_one_password_check_at_a_time_per_connection(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    registered(room).leave()
    bob = room.join("bob")
    # both lines are handled in one loop pass, before the first check has run on its worker
    assert bob.send_bytes(f"/login alice wrong-password\n/login alice {PW}\n".encode()) == [
        "ERROR a password check of yours is running; wait for its answer", "ERROR wrong password for alice"]
    assert room.faults == []


def test_password_change(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    bob = room.join("bob")
    assert bob.say(f"/password {PW} new-password") == ["ERROR log in first: /login NICK PASSWORD"]
    alice = registered(room)
    assert alice.say(f"/password {PW} short") == ["ERROR a password needs at least 8 characters"]
    assert alice.say("/password not-the-password new-password") == [
        "ERROR wrong password; the password was not changed"]
    assert alice.say(f"/password {PW} new-password") == ["OK password changed"]
    alice.leave()
    assert bob.say(f"/login alice {PW}") == ["ERROR wrong password for alice"]
    assert bob.say("/login alice new-password")[-1] == "OK logged in as alice"


def test_verified_authors_in_read_tweets_and_history_tags(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice = registered(room)
    bob = room.join("bob")
    assert alice.say("/post from alice") == ["OK"]
    assert bob.say("/post from bob") == ["OK"]
    assert alice.say("/nick al") == ["OK nick al"]
    assert alice.say("/post renamed") == ["OK"]
    out = bob.say("/read -v")
    headers = [line for line in out if line.startswith("-- post ")]
    assert headers[0].startswith("-- post 1 by alice (verified) at ")
    assert headers[1].startswith("-- post 2 by bob at ")  # a guest nick, as it always read
    assert headers[2].startswith("-- post 3 by al (verified as alice) at ")
    assert alice.say("/tweet -u hi #x") == ["OK"] and bob.say("/tweet -u yo #x") == ["OK"]
    listed = bob.say("/tweets")
    assert listed[0].startswith("tweet 1 by al (verified as alice) at ") and listed[1].startswith("tweet 2 by bob at ")
    alice.say("/nick alice")
    alice.say("said by alice")
    bob.say("said by bob")
    bob.say("/caps tags")
    lines = bob.say("/history 2")
    assert tags_of(lines[0])["nick"] == "alice" and tags_of(lines[0])["account"] == "alice"
    assert lines[0].endswith("alice: said by alice")
    assert tags_of(lines[1])["nick"] == "bob" and "account" not in tags_of(lines[1])
    alice.say("/caps tags")
    bob.say("live from bob")
    assert tags_of(alice.last)["nick"] == "bob" and "account" not in tags_of(alice.last)
    alice.say("live from alice")
    assert tags_of(bob.last)["account"] == "alice" and bob.last.endswith("alice: live from alice")


def test_passwords_never_reach_the_log(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice = registered(room, password="secret-one")
    alice.say("/password secret-one secret-two")
    alice.say("/password wrong-three secret-four")
    alice.leave()
    bob = room.join("bob")
    bob.say("/login alice wrong-five")
    bob.say("/login alice secret-two")
    text = "\n".join(room.logs)
    assert "/login alice *** from 127.0.0.1: ok" in text
    for secret in ("secret-one", "secret-two", "wrong-three", "secret-four", "wrong-five"):
        assert secret not in text


def test_accounts_persist_in_the_data_dir(chatroom_room, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = chatroom_room()
    registered(first)
    data_dir = first.server.data_dir
    first.close()
    second = chatroom_room()
    assert second.server.data_dir != data_dir
    with AccountStore(data_dir / "accounts.sqlite3") as store:
        assert store.count() == 1 and store.registered("ALICE") == "alice" and store.registered("bob") is None


# -- the real server -------------------------------------------------------------------------


def test_e2e_register_restart_login_and_the_log(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    server = server_factory(data_dir=data)
    alice = server.connect("alice")
    alice.send(f"/register {PW}")
    alice.expect("OK registered alice; you are logged in")
    alice.send("/caps tags")
    alice.expect("OK caps tags")
    alice.send("hello from alice")
    alice.send("/quit")
    alice.expect("OK")
    server.stop()
    server = server_factory(data_dir=data)  # the account and the authorship survive a restart
    bob = server.connect("bob")
    bob.send("/nick alice")
    bob.expect("ERROR alice is registered; /login alice PASSWORD")
    bob.send("/login alice wrong-password")
    bob.expect("ERROR wrong password for alice")
    bob.send(f"/login alice {PW}")
    bob.expect("OK logged in as alice")
    bob.send("/caps tags")
    bob.send("/history 1")
    line = bob.expect_prefix("@")
    assert tags_of(line)["account"] == "alice" and line.endswith("alice: hello from alice")
    bob.send("/quit")
    bob.expect("OK")
    assert server.stop() == 0
    log = (data / "chatroom.log").read_text()
    assert "/login alice *** from 127.0.0.1: ok" in log and "alice registered from 127.0.0.1" in log
    assert PW not in log and "wrong-password" not in log


def test_look_outside_tells_on_change_only_what_another_process_changed(tmp_path: Path) -> None:
    path = tmp_path / "accounts.sqlite3"
    told: list[str] = []
    with AccountStore(path, inline=True) as store:  # its writer's own connection, on this thread
        store.look_outside()  # nobody listens: no look at all
        store.on_change = lambda account: told.append(f"{account.name} {account.password_hash}")
        store.create("alice", "hash-a", now=100.0)  # (long ago: a look tells again what changed in its last minute)
        store.create("bob", "hash-b", now=100.0)
        store.look_outside()  # the first look on the writer's connection: what changed lately (nothing here)
        assert told == ["alice hash-a", "bob hash-b"]  # (when created)
        told.clear()
        store.look_outside()
        store.set_password("alice", "hash-a2")  # its own change: told once, when committed
        store.put(Account("carol", "hash-c", 1.0, time.time()))  # another node's: never told back
        store.look_outside()
        assert told == ["alice hash-a2"]
        reset_password(path, "BOB", lambda name: "new-password")  # another connection: as the console does
        store.look_outside()
        account = store.get("bob")
        assert account is not None and f"bob {account.password_hash}" in told[1:]
        assert set(told[1:]) <= {f"bob {account.password_hash}", "alice hash-a2", "carol hash-c"}  # (the last
        # minute's changes are told again: a look cannot tell whose they were; harmless, the newer change wins)
        assert verify_password("new-password", account.password_hash)
        count = len(told)
        store.look_outside()  # nothing new since
        assert len(told) == count


def reset(data: Path, nick: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chatroom-server", "--data-dir", str(data), "--reset-password", nick],
                          input=stdin, capture_output=True, text=True, timeout=DEADLINE)


def test_e2e_reset_password_at_the_console(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    missing = reset(data, "alice", "new-password\n")
    assert missing.returncode == 2 and "no account alice" in missing.stderr and not data.exists()  # a usage mistake
    server = server_factory(data_dir=data)
    alice = server.connect("alice")
    alice.send(f"/register {PW}")
    alice.expect("OK registered alice; you are logged in")
    unknown = reset(data, "carol", "new-password\n")
    assert (unknown.returncode, unknown.stderr) == (2, "chatroom-server: error: no account carol\n")
    refused = reset(data, "alice", "short\n")
    assert refused.returncode == 2 and "a password needs at least 8 characters" in refused.stderr
    done = reset(data, "ALICE", "new-password\n")  # while the server runs: it reads the store at each login
    assert (done.returncode, done.stdout) == (0, "OK password of alice reset\n") and "new-password" not in done.stderr
    bob = server.connect("bob")
    bob.send(f"/login alice {PW}")
    bob.expect("ERROR wrong password for alice")
    bob.send("/login alice new-password")
    bob.expect("OK logged in as alice")
    assert "new-password" not in server.log_text()


def read_until(fd: int, wanted: bytes, deadline: float) -> bytes:
    """Read the pty master *fd* until *wanted* appears (or the deadline passes); return what was read."""
    seen = b""
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_e2e_reset_password_on_a_terminal_asks_twice_without_echo(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with AccountStore(data / "accounts.sqlite3") as store:
        store.create("alice", hash_password(PW))
    master, slave = os.openpty()
    proc = subprocess.Popen(["chatroom-server", "--data-dir", str(data), "--reset-password", "alice"],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        deadline = time.monotonic() + DEADLINE
        seen = read_until(master, b"new password for alice: ", deadline)
        os.write(master, b"typed-secret\n")
        seen += read_until(master, b"the same again: ", deadline)
        os.write(master, b"typed-secret\n")
        seen += read_until(master, b"reset", deadline)
        assert proc.wait(DEADLINE) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"OK password of alice reset" in seen and b"typed-secret" not in seen  # never echoed
    with AccountStore(data / "accounts.sqlite3") as store:
        account = store.get("alice")
        assert account is not None and verify_password("typed-secret", account.password_hash)


@pytest.mark.parametrize("first, second", [("typed-secret", "other-secret")])
def test_e2e_reset_password_on_a_terminal_refuses_two_different_passwords(tmp_path: Path, first: str,
                                                                          second: str) -> None:
    data = tmp_path / "data"
    with AccountStore(data / "accounts.sqlite3") as store:
        store.create("alice", hash_password(PW))
    master, slave = os.openpty()
    proc = subprocess.Popen(["chatroom-server", "--data-dir", str(data), "--reset-password", "alice"],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        deadline = time.monotonic() + DEADLINE
        read_until(master, b"new password for alice: ", deadline)
        os.write(master, first.encode() + b"\n")
        read_until(master, b"the same again: ", deadline)
        os.write(master, second.encode() + b"\n")
        seen = read_until(master, b"nothing was changed", deadline)
        assert proc.wait(DEADLINE) == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"the two passwords differ" in seen
    with AccountStore(data / "accounts.sqlite3") as store:
        account = store.get("alice")
        assert account is not None and verify_password(PW, account.password_hash)
