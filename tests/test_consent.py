"""Consent for files and per-sender quotas (issue 10), and ``chatroom-client --password``.

Relay units run against the fakes of ``test_transfer.py`` (a fake clock drives
the offer timeout); end-to-end tests start the real ``chatroom-server`` with a
short ``--file-offer-timeout`` and talk to it with raw frame clients and real
``chatroom-client`` processes. Every wait is on a printed line or a received
event, with a deadline.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_client import start as start_client
from test_e2e_room import Pty
from test_e2e_transfer import ClientProcess, data, join_all, next_frame, starts
from test_transfer import Clock, FakeClient, FakeServer, data_frame, frames, lines

from chatroom.client.cli import UsageFailure, resolve_password
from chatroom.client.io import load_transfer
from chatroom.model.errors import Refused
from chatroom.net.quota import Quota
from chatroom.net.relay import Relay
from chatroom.wire.lines import Frame, encode_frame

DEADLINE = 20.0


@pytest.fixture
def room() -> tuple[FakeServer, Relay, FakeClient, FakeClient, FakeClient]:
    server = FakeServer()
    relay = Relay(server, offer_timeout=60, clock=Clock())  # type: ignore[arg-type]
    server.relay = relay
    alice = FakeClient(1, "alice", server.lobby)
    bob = FakeClient(2, "bob", server.lobby)
    carol = FakeClient(3, "carol", server.lobby)
    return server, relay, alice, bob, carol


def ask(relay: Relay, *clients: FakeClient) -> None:
    for client in clients:
        relay.set_policy(client, "ask")


# -- relay units ---------------------------------------------------------------------------------


def test_asked_receivers_get_an_offer_and_only_acceptors_get_bytes(room: Any) -> None:
    _, relay, alice, bob, carol = room
    ask(relay, bob, carol)
    tid = relay.start(alice, "report.pdf", 4)
    for receiver in (bob, carol):
        events = receiver.drain()
        assert lines(events) == ['* alice is sending "report.pdf" (4 bytes)']
        assert frames(events) == [f"file-offer {tid} 4 alice report.pdf"]  # no file-begin yet
    assert lines(alice.drain()) == [('* offering "report.pdf" (4 bytes) to bob, carol: waiting up to 60 s '
                                     "for their answers")]  # no OK sendfile yet: the sender waits
    with pytest.raises(Refused, match="no offer 99 is waiting"):
        relay.answer(bob, 99, True)
    relay.answer(bob, tid, True)
    assert lines(bob.drain()) == [f'OK accepted {tid} "report.pdf" from alice']
    assert alice.drain() == []  # carol has not answered
    relay.answer(carol, tid, False)
    assert lines(carol.drain()) == [f'OK declined {tid} "report.pdf" from alice']
    assert frames(bob.drain()) == [f"file-begin {tid} 4 alice report.pdf"]
    assert lines(alice.drain()) == ['* "report.pdf": accepted by bob; declined by carol', f"OK sendfile {tid} report.pdf"]
    relay.on_frame(alice, data_frame(tid, b"abcd"))
    digest = hashlib.sha256(b"abcd").hexdigest()
    relay.on_frame(alice, Frame(f"file-end {tid} {digest}", b""))
    assert bob.drain() == [Frame(f"file-data {tid}", b"abcd"), Frame(f"file-end {tid} {digest}", b"")]
    assert carol.drain() == []  # the decliner never gets a byte
    assert frames(alice.drain()) == [f"file-done {tid} bob"]


def test_no_answer_within_the_timeout_counts_as_declined(room: Any) -> None:
    server, relay, alice, bob, carol = room
    ask(relay, bob, carol)
    tid = relay.start(alice, "x", 3)
    relay.answer(bob, tid, True)
    for receiver in (alice, bob, carol):
        receiver.drain()
    assert relay.check_frame(alice, f"file-data {tid}", 3) == (
        f"file-data {tid}: the receivers have not answered yet; wait for OK sendfile")
    for _ in range(59):
        relay.clock.now += 1  # type: ignore[attr-defined]
        server.run_timers()
    assert alice.drain() == []
    relay.clock.now += 1  # type: ignore[attr-defined]
    server.run_timers()
    assert frames(carol.drain()) == [f"file-abort {tid} no answer in 60 s: declined"]
    assert frames(bob.drain()) == [f"file-begin {tid} 3 alice x"]
    assert lines(alice.drain()) == ['* "x": accepted by bob; no answer from carol', f"OK sendfile {tid} x"]
    with pytest.raises(Refused, match="counts as declined after 60 s"):
        relay.answer(carol, tid, True)  # too late


def test_nobody_accepting_refuses_the_file_and_refunds_the_quota() -> None:
    server = FakeServer()
    relay = Relay(server, files_per_hour=1, clock=Clock())  # type: ignore[arg-type]
    alice, bob = FakeClient(1, "alice", server.lobby), FakeClient(2, "bob", server.lobby)
    relay.set_policy(bob, "none")
    relay.start(alice, "x", 3)
    assert lines(alice.drain()) == ["ERROR sendfile x: nobody accepted the file (declined by bob)"]
    assert frames(bob.drain()) == [] and relay.transfers == {}
    relay.set_policy(bob, "ask")
    tid = relay.start(alice, "y", 3)  # the refused offer did not use the quota
    relay.set_policy(bob, "all")  # answers the waiting offer too
    assert frames(bob.drain()) == [f"file-offer {tid} 3 alice y", f"file-begin {tid} 3 alice y"]
    assert lines(alice.drain())[-1] == f"OK sendfile {tid} y"


def test_cancelling_an_offer_and_an_asked_receiver_leaving(room: Any) -> None:
    _, relay, alice, bob, _carol = room
    ask(relay, bob)
    tid = relay.start(alice, "x", 3)
    bob.drain()
    relay.on_frame(alice, Frame(f"file-abort {tid} changed my mind", b""))
    assert frames(bob.drain()) == [f"file-abort {tid} sender cancelled: changed my mind"]
    tid = relay.start(alice, "y", 3)
    bob.drain()
    relay.on_client_left(bob)  # an asked receiver leaving counts as no answer
    assert lines(alice.drain())[-2:] == ['* "y": accepted by carol; no answer from bob', f"OK sendfile {tid} y"]


def test_quota_files_per_hour_and_bytes_per_day() -> None:
    clock = Clock()
    quota = Quota(files_per_hour=2, bytes_per_day=100, clock=clock)
    assert quota.check("k", 10) is None
    quota.charge("k", 10)
    clock.now += 600
    quota.charge("k", 10)
    reason = quota.check("k", 10)
    assert reason == ("quota: you offered 2 files in the last hour and the server allows 2 "
                      "(--quota-files-per-hour); try again in 3000 s")
    clock.now += 3000
    assert quota.check("k", 10) is None and quota.check("other", 10) is None
    assert quota.check("k", 81) == ("quota: you sent 20 of the 100 bytes a day the server allows "
                                    "(--quota-bytes-per-day) and this file needs 81; try again in 82800 s")
    assert "more than the 100 bytes a day" in str(quota.check("k", 101))
    assert Quota(clock=clock).check("k", 1 << 40) is None  # 0: unlimited


def test_quota_is_checked_before_any_byte_moves() -> None:
    server = FakeServer()
    relay = Relay(server, bytes_per_day=10, clock=Clock())  # type: ignore[arg-type]
    alice, bob = FakeClient(1, "alice", server.lobby), FakeClient(2, "bob", server.lobby)
    relay.start(alice, "a", 8)
    bob.drain()
    with pytest.raises(Refused, match=r"you sent 8 of the 10 bytes a day .* needs 3"):
        relay.start(alice, "b", 3)
    assert bob.drain() == [] and len(relay.transfers) == 1


def test_resolve_password_never_asks_off_a_terminal() -> None:
    asked: list[str] = []

    def fake_getpass(prompt: str) -> str:
        asked.append(prompt)
        return "s3cret-pw"

    assert resolve_password(None, {}, tty=True, ask=fake_getpass) is None
    assert resolve_password("given-pw", {"CHATROOM_PASSWORD": "env-pw"}, tty=True, ask=fake_getpass) == "given-pw"
    assert resolve_password(None, {"CHATROOM_PASSWORD": "env-pw"}, tty=False, ask=fake_getpass) == "env-pw"
    assert asked == []
    assert resolve_password("", {}, tty=True, ask=fake_getpass) == "s3cret-pw" and asked == ["password: "]
    with pytest.raises(UsageFailure, match="needs a terminal"):
        resolve_password("", {}, tty=False, ask=fake_getpass)


def test_bare_password_flag_takes_the_environment_s_password() -> None:
    """``CHATROOM_PASSWORD=... chatroom-client --name carol --password`` in a script logs in with the
    variable, as the README's "or $CHATROOM_PASSWORD" reads; it used to stop with "give $CHATROOM_PASSWORD"."""
    def no_prompt(prompt: str) -> str:
        raise AssertionError("asked although $CHATROOM_PASSWORD is set")

    for tty in (False, True):
        assert resolve_password("", {"CHATROOM_PASSWORD": "env-pw"}, tty=tty, ask=no_prompt) == "env-pw"


# -- end to end ------------------------------------------------------------------------------------


def raw_receiver(server: Any, nick: str, policy: str | None) -> Any:
    client = server.connect(nick, binary=True)
    if policy:
        client.send(f"/files {policy}")
        client.expect(f"OK files {policy}")
    return client


def test_e2e_raw_clients_accept_decline_and_time_out(server_factory: Any) -> None:
    server = server_factory("--file-offer-timeout", "1")
    alice = server.connect("alice", binary=True)
    bob, carol, dave = (raw_receiver(server, n, "ask") for n in ("bob", "carol", "dave"))
    erin = raw_receiver(server, "erin", None)  # an old-style pipe client: accepts without a word
    join_all(alice, "bob", "carol", "dave", "erin")
    payload = os.urandom(5000)
    alice.send(f"/sendfile f.bin {len(payload)}")
    offers = {c: next_frame(c).meta for c in (bob, carol, dave)}
    tid = int(offers[bob].split()[1])
    assert set(offers.values()) == {f"file-offer {tid} {len(payload)} alice f.bin"}
    bob.send(f"/accept {tid}")
    bob.expect(f'OK accepted {tid} "f.bin" from alice')
    carol.send(f"/decline {tid}")
    carol.expect(f'OK declined {tid} "f.bin" from alice')
    # dave says nothing: after 1 s he counts as declined
    assert next_frame(dave).meta == f"file-abort {tid} no answer in 1 s: declined"
    alice.expect('* "f.bin": accepted by erin, bob; declined by carol; no answer from dave')
    alice.expect(f"OK sendfile {tid} f.bin")
    alice.send_raw(data(tid, payload))
    alice.send_raw(protocol_end(tid, payload))
    done = next_frame(alice)
    assert done.meta == f"file-done {tid} erin,bob"
    for receiver in (bob, erin):
        got = [next_frame(receiver) for _ in range(3)]
        assert [f.meta.split()[0] for f in got] == ["file-begin", "file-data", "file-end"]
        assert got[1].payload == payload
    for other in (carol, dave):  # not one more frame for them before their own sync
        assert frames_until_sync(other) == []


def frames_until_sync(raw: Any) -> list[str]:
    raw.send("/upper sync")
    got = []
    for _ in range(1000):
        event = raw.next_event()
        if isinstance(event, Frame):
            got.append(event.meta)
        elif getattr(event, "text", None) == "SYNC":
            return got
    raise AssertionError("no SYNC")


def protocol_end(tid: int, payload: bytes) -> bytes:
    return encode_frame(f"file-end {tid} {hashlib.sha256(payload).hexdigest()}", b"")


def test_e2e_quota_refuses_with_a_clear_error(server_factory: Any) -> None:
    server = server_factory("--quota-files-per-hour", "1", "--quota-bytes-per-day", "1KiB")
    alice = server.connect("alice", binary=True)
    bob = raw_receiver(server, "bob", None)
    join_all(alice, "bob")
    alice.send("/sendfile big 2000")
    alice.expect("ERROR sendfile big: quota: 2000 bytes is more than the 1024 bytes a day the server allows "
                 "each sender (--quota-bytes-per-day)")
    alice.send("/sendfile a 10")
    alice.expect_prefix("OK sendfile ")
    alice.send("/sendfile b 10")
    line = alice.expect_prefix("ERROR sendfile b: quota: you offered 1 files in the last hour")
    assert "(--quota-files-per-hour); try again in" in line
    assert all(not line.startswith("* alice is sending \"b\"") for line in bob.sync())


def client(server: Any, tmp_path: Path, nick: str, *args: str) -> ClientProcess:
    proc = ClientProcess(server.port, tmp_path / nick, "--name", nick, *args)
    proc.expect(starts("* Welcome"))
    return proc


def test_e2e_chatroom_clients_accept_files_none_and_all(server_factory: Any, tmp_path: Path) -> None:
    server = server_factory()
    bob = client(server, tmp_path, "bob", "--accept-files", "none")
    carol = client(server, tmp_path, "carol")  # stdin is a pipe: all
    alice = client(server, tmp_path, "alice")
    (alice.send_dir / "a.txt").write_bytes(b"hello")
    try:
        alice.send("/who")
        alice.expect(lambda line: "bob" in line and "carol" in line)
        alice.send("/sendfile a.txt")
        alice.expect('* "a.txt": accepted by carol; declined by bob')
        alice.expect(starts('sent "a.txt" (5 bytes) to carol: '))
        carol.expect(starts('received "a.txt" (5 bytes) from alice: '))
        assert (carol.received_dir / "a.txt").read_bytes() == b"hello"
        bob.send("/upper sync")
        bob.expect("SYNC")
        assert not (bob.received_dir / "a.txt").exists()
    finally:
        for proc in (alice, bob, carol):
            proc.kill()


def test_e2e_chatroom_client_ask_mode_shows_the_offer(server_factory: Any, tmp_path: Path) -> None:
    server = server_factory("--file-offer-timeout", "30")
    bob = client(server, tmp_path, "bob", "--accept-files", "ask")
    alice = client(server, tmp_path, "alice")
    (alice.send_dir / "b.txt").write_bytes(b"12345678")
    try:
        alice.send("/who")
        alice.expect(lambda line: "bob" in line)
        alice.send("/sendfile b.txt")
        offer = bob.expect(starts("alice offers "))
        tid = offer.rsplit(" ", 1)[1]
        assert offer == f'alice offers "b.txt" (8 bytes): /accept {tid} or /decline {tid}'
        alice.expect(starts('* offering "b.txt" (8 bytes) to bob'))
        bob.send(f"/accept {tid}")
        bob.expect(starts('received "b.txt" (8 bytes) from alice'))
        alice.expect('* "b.txt": accepted by bob')
        assert (bob.received_dir / "b.txt").read_bytes() == b"12345678"
    finally:
        for proc in (alice, bob):
            proc.kill()


def test_e2e_password_logs_in_and_a_wrong_one_exits_2(server_factory: Any, tmp_path: Path) -> None:
    server = server_factory()
    owner = server.connect("alice")
    owner.send("/register correct-horse")
    owner.expect_prefix("OK registered alice")
    owner.send("/quit")
    owner.expect("OK")
    watcher = server.connect("watcher")
    alice = ClientProcess(server.port, tmp_path / "alice", "--name", "alice", "--password", "correct-horse")
    try:
        alice.expect(starts("* Welcome"))
        alice.send("/me waves")
        watcher.expect("* alice waves")
        alice.send("/quit")
        assert alice.proc.wait(timeout=DEADLINE) == 0
        assert not any("correct-horse" in line for line in alice.out)
    finally:
        alice.kill()
    env = {**os.environ, "CHATROOM_PASSWORD": "wrong-password"}
    proc = subprocess.run(["chatroom-client", "--port", str(server.port), "--name", "alice"], input="hi\n",
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=DEADLINE, check=False)
    assert proc.returncode == 2
    assert "ERROR wrong password for alice" in proc.stderr + proc.stdout
    assert "wrong-password" not in proc.stderr + proc.stdout


# -- the client loop against a scripted server (test_client's socketpair harness) --------------------


def test_client_logs_in_after_nick_and_holds_typed_lines_until_then() -> None:
    server, console, run = start_client("alice", password="correct-horse")
    run.loop.submit("hello")
    server.expect("/nick alice")
    server.expect("/login alice correct-horse")
    server.say("ERROR alice is registered; /login alice PASSWORD")  # the login decides, not this
    server.say("OK logged in as alice")
    server.expect("hello")
    run.loop.end_input()
    server.expect("/quit")
    server.say("OK")
    server.sock.shutdown(socket.SHUT_WR)
    assert run.result() == 0
    assert console.errors == [] and not any("correct-horse" in line for line in console.lines)


def test_client_refused_login_exits_2_in_pipe_mode() -> None:
    server, console, run = start_client("alice", password="wrong-password")
    server.expect("/nick alice")
    server.expect("/login alice wrong-password")
    server.say("OK nick alice", "ERROR wrong password for alice")
    assert run.result() == 2
    assert console.errors == ["ERROR wrong password for alice"]


def test_client_ask_mode_shows_offers_and_their_end(tmp_path: Path) -> None:
    server, console, run = start_client("bob", accept_files="ask", transfer=load_transfer(),
                                        send_dir=tmp_path / "send", received_dir=tmp_path / "received")
    server.expect("/caps binary")
    server.expect("/caps resume")
    server.expect("/files ask")
    server.expect("/nick bob")
    server.say("OK caps binary", "OK caps binary resume", "OK files ask", "OK nick bob")
    server.sock.sendall(encode_frame("file-offer 7 12 alice a b.txt", b"")
                        + encode_frame("file-abort 7 no answer in 60 s: declined", b""))
    console.wait_for(lambda: len(console.lines) >= 2, "the offer and its end")
    assert console.lines == ['alice offers "a b.txt" (12 bytes): /accept 7 or /decline 7',
                             'offer 7 of "a b.txt" from alice: no answer in 60 s: declined']
    run.loop.request_quit(force=True)
    server.expect("/quit")
    server.say("OK")
    server.sock.shutdown(socket.SHUT_WR)
    assert run.result() == 0


# -- a real terminal: the password prompt does not echo, and offers are asked by default ------------


def test_terminal_client_prompts_for_the_password_without_echo_and_asks_before_files(
        server_factory: Any, tmp_path: Path) -> None:
    server = server_factory()
    owner = server.connect("alice")
    owner.send("/register correct-horse")
    owner.expect_prefix("OK registered alice")
    owner.send("/quit")
    owner.expect("OK")
    sender = server.connect("sam", binary=True)
    term = Pty(["--name", "alice", "--port", str(server.port), "--password"], tmp_path / "alice")
    try:
        term.read_until(lambda out: b"password:" in out, "the password prompt")
        mark = len(term.raw)
        term.type("correct-horse\r")
        sender.expect_where(lambda line: "alice" in line, "alice logging in")
        term.read_until(lambda out: out.rstrip().endswith(b">"), "the chat prompt", start=mark)
        assert b"correct-horse" not in term.raw  # never echoed, never printed
        sender.send("/sendfile f.txt 3")
        term.read_until(lambda out: re.search(rb'sam offers "f.txt" \(3 bytes\): /accept (\d+)', out) is not None,
                        "the offer (ask is the default on a terminal)")
        match = re.search(rb"/accept (\d+)", term.plain())
        assert match is not None
        tid = int(match.group(1))
        term.type(f"/accept {tid}\r")
        sender.expect(f"OK sendfile {tid} f.txt")
        sender.send_raw(data(tid, b"abc") + protocol_end(tid, b"abc"))
        term.read_until(lambda out: b'received "f.txt" (3 bytes) from sam' in out, "the file")
        assert (tmp_path / "alice" / "received" / "f.txt").read_bytes() == b"abc"
    finally:
        term.close()
