"""Resumable transfers end to end: the real ``chatroom-server`` and ``chatroom-client`` processes over TCP.

A transfer is interrupted by killing the server (and starting it again on the same port and data dir),
by a proxy in the test that cuts the receiver's TCP stream at a random byte, by killing the receiving
client (and starting it again), with a chunk damaged on the disk in between; and a third party tries
tokens. Every case checks that the file arrives byte for byte and how much of it was sent again (the
sender's ``resumed ... sent the missing N bytes`` line). The proxy holds or cuts the stream at a byte
count it was given and reports it, so the tests synchronise on that and on printed lines, never on sleeps.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ServerProcess
from test_e2e_transfer import DEADLINE, ClientProcess, starts

from chatroom.wire import lines as protocol

MiB = 1024 * 1024
SIZE = 48 * MiB
CHUNK = MiB  # chatroom-client's chunk for files up to 64 GiB


class Proxy:
    """A TCP proxy on 127.0.0.1 to the server's *port*. Its first connection may be cut (both ends closed)
    or held (nothing more forwarded) once *limit* bytes went from the server to the client (or, *upward*,
    from the client to the server); ``reached`` is set then, and a held connection is closed on
    ``release``. Later connections pass everything through."""

    def __init__(self, port: int, limit: int, *, cut: bool, upward: bool = False) -> None:
        self.port, self.limit, self.cut, self.upward = port, limit, cut, upward
        self.reached = threading.Event()
        self.release = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()[1]
        self._first = True
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
            except OSError:
                client.close()  # the server is down: the client tries again later
                continue
            self._socks += [client, upstream]
            limit, self._first = (self.limit if self._first else None), False
            up, down = (limit, None) if self.upward else (None, limit)
            threading.Thread(target=self._pipe, args=(client, upstream, up), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, down), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        moved = 0
        try:
            while True:
                want = 65536 if limit is None else min(65536, limit - moved)
                data = source.recv(want) if want else b""
                if not data:
                    break
                sink.sendall(data)
                moved += len(data)
            if limit is not None and moved >= limit:
                self.reached.set()
                if not self.cut:
                    self.release.wait(DEADLINE * 3)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.release.set()
        self.listener.close()
        for sock in self._socks:
            sock.close()


@pytest.fixture
def proxies() -> Iterator[Callable[..., Proxy]]:
    made: list[Proxy] = []

    def make(port: int, limit: int, *, cut: bool, upward: bool = False) -> Proxy:
        made.append(Proxy(port, limit, cut=cut, upward=upward))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


@pytest.fixture
def people(tmp_path: Path) -> Iterator[Callable[..., ClientProcess]]:
    """``people(port, nick, *args, folder=None)``: a ``chatroom-client`` in ``tmp_path/(folder or nick)`` past the
    greeting (killed at teardown)."""
    started: list[ClientProcess] = []

    def start(port: int, nick: str, *args: str, folder: str | None = None) -> ClientProcess:
        client = ClientProcess(port, tmp_path / (folder or nick), "--name", nick, *args)
        started.append(client)
        client.expect(starts("* Welcome"))
        return client

    yield start
    for client in started:
        client.kill()


def resent(line: str) -> int:
    """The bytes a sender's ``resumed "NAME" ... sent the missing N bytes`` line says went again."""
    match = re.search(r"sent the missing (\d+) bytes", line)
    assert match, line
    return int(match.group(1))


def sidecar(folder: Path) -> Path:
    found = list(folder.glob(".*.chunks"))
    assert len(found) == 1, sorted(p.name for p in folder.iterdir())
    return found[0]


def offer_file(alice: ClientProcess, bob: ClientProcess, content: bytes) -> None:
    (alice.send_dir / "f.bin").write_bytes(content)
    alice.send("/sendfile f.bin")
    bob.expect(starts('* alice is sending "f.bin"'))


def arrived(bob: ClientProcess, content: bytes, timeout: float = 60) -> str:
    line = bob.expect(starts('received "f.bin"'), timeout)
    assert "sha256 ok" in line and (bob.received_dir / "f.bin").read_bytes() == content
    assert sorted(os.listdir(bob.received_dir)) == ["f.bin"]  # no part file, no sidecar left
    return line


UNITS = {"B": 1, "KiB": 1024, "MiB": MiB, "GiB": 1024 * MiB}


def until_arriving(person: ClientProcess, at_least: int = 0) -> None:
    """Ask *person*'s ``/transfers`` until it lists one file arriving with at least *at_least* bytes verified (its
    row's ``N MiB of ...``). Its record is made as it starts arriving (the sidecar is written and synced first,
    then the part file is opened: chatroom.client.journal), so both are on the disk then; and every verified chunk
    but the last two sync batches (fewer than 2 * SYNC_BYTES) is listed in the sidecar."""
    deadline = time.monotonic() + DEADLINE
    while True:
        person.send("/transfers")
        summary = person.expect(starts("transfers: "))
        if re.match(r"transfers: \d+ out, 1 in(,|$)", summary):
            row = person.expect(starts("  down "))
            have = re.search(r": ([0-9.]+) (B|KiB|MiB|GiB) of ", row)
            assert have, row
            if float(have[1]) * UNITS[have[2]] >= at_least:
                return
        assert time.monotonic() < deadline, f"/transfers never listed the file arriving; last: {summary!r}"


def until_none(person: ClientProcess) -> None:
    """Ask *person*'s ``/transfers`` until it lists nothing (``transfers: none``): an offer that ended is gone."""
    deadline = time.monotonic() + DEADLINE
    while True:
        person.send("/transfers")
        summary = person.expect(starts("transfers: "))
        if summary == "transfers: none":
            return
        assert time.monotonic() < deadline, f"/transfers still lists a transfer; last: {summary!r}"


def test_the_server_is_killed_mid_transfer_and_started_again(server_factory: Any, people: Any, proxies: Any,
                                                             tmp_path: Path) -> None:
    server = server_factory("--flood-rate", "0")
    port, data_dir = server.port, server.data_dir
    content = os.urandom(SIZE)
    hold = SIZE * 2 // 5
    proxy = proxies(port, hold, cut=False)
    bob = people(proxy.address, "bob", "--reconnect")
    alice = people(port, "alice", "--reconnect")
    bob.expect(lambda line: line.endswith("is now known as alice"))
    offer_file(alice, bob, content)
    assert proxy.reached.wait(DEADLINE)  # bob has had 40 % of the bytes, and no more
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(DEADLINE)
    proxy.release.set()  # bob's connection goes down with the server's
    again = server_factory("--flood-rate", "0", "--port", str(port), data_dir=data_dir)
    assert again.port == port
    line = alice.expect(starts('resumed "f.bin"'), 60)
    arrived(bob, content)
    assert resent(line) <= SIZE - hold + 2 * CHUNK  # at most what bob had not had, and a chunk in flight
    until_none(alice)  # the offer ends (file-gone) once bob's client confirmed the file, after his line above
    assert not list(alice.send_dir.glob(".*.send"))  # the sender's record goes once bob has the file


def test_the_receivers_stream_is_cut_at_a_random_byte(server: Any, people: Any, proxies: Any) -> None:
    seed = random.randrange(1 << 30)
    cut = random.Random(seed).randrange(SIZE // 5, SIZE * 4 // 5)
    content = os.urandom(SIZE)
    proxy = proxies(server.port, cut, cut=True)
    bob = people(proxy.address, "bob", "--reconnect")
    alice = people(server.port, "alice")
    bob.expect(lambda line: line.endswith("is now known as alice"))
    offer_file(alice, bob, content)
    assert proxy.reached.wait(DEADLINE), f"seed {seed}"
    assert alice.expect(starts('sending "f.bin" paused: ')).endswith(
        "every receiver left (it resumes when the receivers are back; /cancel " + alice_token(alice)[:8] + " gives up)")
    line = alice.expect(starts('resumed "f.bin"'), 60)
    received = arrived(bob, content)
    assert received.endswith("this time)")
    assert resent(line) <= SIZE - cut + 2 * CHUNK, f"seed {seed}: cut at {cut}, {line}"


def alice_token(alice: ClientProcess) -> str:
    record = list(alice.send_dir.glob(".*.send"))
    assert len(record) == 1
    return str(json.loads(record[0].read_text())["token"])


def test_the_receiving_client_restarts_and_a_damaged_chunk_is_fetched_again(server: Any, people: Any,
                                                                             proxies: Any) -> None:
    content = os.urandom(SIZE)
    hold = SIZE // 2
    proxy = proxies(server.port, hold, cut=False)
    bob = people(proxy.address, "bob")
    alice = people(server.port, "alice")
    bob.expect(lambda line: line.endswith("is now known as alice"))
    offer_file(alice, bob, content)
    assert proxy.reached.wait(DEADLINE)
    until_arriving(bob, 16 * MiB)  # 16 chunks verified: at least 9 in the sidecar (a batch is 4 chunks)
    side = sidecar(bob.received_dir)
    bob.kill()  # SIGKILL: whatever was not synced yet is lost, and must not count
    proxy.release.set()
    alice.expect(starts('sending "f.bin" paused: '))
    header, *indices = side.read_text().splitlines()
    meta = json.loads(header)
    kept = sorted(int(i) for i in indices)
    part = side.with_name(side.name.replace(".chunks", ".part")).read_bytes()
    for i in kept:  # every chunk the sidecar lists is on the disk, whole: nothing trusted that is not
        assert hashlib.sha256(part[i * CHUNK:(i + 1) * CHUNK]).digest() == \
            bytes.fromhex(meta["hashes"])[i * 32:(i + 1) * 32]
    assert len(kept) >= 8 and len(kept) * CHUNK <= hold
    # between the attempts: damage a recorded chunk, and claim one that was never written (a zero-filled hole)
    with open(side.with_name(side.name.replace(".chunks", ".part")), "r+b") as f:
        f.seek(kept[3] * CHUNK + 100)
        f.write(b"\x00" * 10)
    hole = max(kept) + 8
    with open(side, "a") as f:
        f.write(f"{hole}\n")
    bob = people(server.port, "bob")  # started again, in the same folder
    assert bob.expect(starts('"f.bin": ')) == ('"f.bin": 2 chunks on the disk no longer matched their SHA-256 and '
                                               "will be fetched again")
    line = alice.expect(starts('resumed "f.bin"'), 60)
    arrived(bob, content)
    assert resent(line) == SIZE - (len(kept) - 1) * CHUNK  # the damaged chunk again, and the rest


def test_a_third_party_guessing_or_stealing_ids_learns_nothing(server_factory: Any, people: Any, proxies: Any) -> None:
    server = server_factory("--flood-rate", "0")
    registrar = server.connect("alice")
    registrar.send("/register correct-horse")
    registrar.expect_prefix("OK registered alice")
    registrar.send("/quit")
    content = os.urandom(8 * MiB)
    proxy = proxies(server.port, 3 * MiB, cut=False)
    bob = people(proxy.address, "bob", "--reconnect")
    alice = people(server.port, "alice", "--password", "correct-horse")
    bob.expect(lambda line: line.endswith("is now known as alice"))
    offer_file(alice, bob, content)
    assert proxy.reached.wait(DEADLINE)
    token = alice_token(alice)  # alice's token, bound to her account, stolen from her disk
    mallory = server.connect("mallory", binary=True)
    mallory.send("/caps resume")
    mallory.expect("OK caps binary resume")
    answers = set()
    for guess in [*(secrets.token_hex(16) for _ in range(40)), token]:
        for kind in ("file-resume", "file-cancel", "file-received"):
            mallory.send_raw(protocol.encode_frame(f"{kind} {guess}", b""))
        mallory.send("/upper sync")
        answers.add(tuple(line.replace(guess, "ID") for line in mallory.expect("SYNC")))
    assert answers == {(
        "ERROR resume ID: no transfer of yours has this id (it may have finished, been cancelled or expired)",
        "ERROR cancel ID: no transfer of yours has this id (it may have finished, been cancelled or expired)")}
    proxy.release.set()  # nothing was disturbed: bob's held stream drops, he comes back and gets the rest
    bob.expect(starts("* f.bin: resuming from alice"), DEADLINE)
    arrived(bob, content)
    assert not any("mallory" in line or "cancel" in line for line in alice.out)


def test_an_older_client_still_sends_and_receives_without_resume(server: Any, people: Any) -> None:
    dave = server.connect("dave", binary=True)  # an older client: frames, but never /caps resume
    bob = people(server.port, "bob")
    alice = people(server.port, "alice")
    dave.expect_where(lambda line: line.endswith("is now known as alice"), "alice")
    content = os.urandom(3 * MiB + 5)
    offer_file(alice, bob, content)
    metas, got = [], b""
    while not metas or not metas[-1].startswith(("file-end", "file-abort")):
        event = dave.next_event()
        if isinstance(event, protocol.Frame):
            metas.append(event.meta)
            got += event.payload if event.meta.startswith("file-data") else b""
    assert metas[0].startswith("file-begin ") and not any(m.startswith(("file-chunks", "file-id")) for m in metas)
    assert {m for m in metas if m.startswith("file-data")} == {f"file-data {metas[0].split()[1]}"}  # no index
    assert got == content and metas[-1].endswith(hashlib.sha256(content).hexdigest())
    arrived(bob, content)
    # and the other way: an older sender's file reaches a client that could resume, the old way
    back = os.urandom(100_000)
    dave.send("/sendfile old.bin 100000")
    tid = int(dave.expect_prefix("OK sendfile ").split()[2])
    dave.send_raw(protocol.encode_frame(f"file-data {tid}", back))
    dave.send_raw(protocol.encode_frame(f"file-end {tid} {hashlib.sha256(back).hexdigest()}", b""))
    assert "sha256 ok" in bob.expect(starts('received "old.bin"'))
    assert (bob.received_dir / "old.bin").read_bytes() == back


PAUSED_ROW = (r"  (up|down) ([0-9a-f]{8}) (.+): (.+), (interrupted|the server does not know it now); "
              r"/resume \2, /cancel \2")


def paused_row(person: ClientProcess, summary: str) -> re.Match[str]:
    """``/transfers`` on *person*: the *summary* line, then the one interrupted transfer's row, parsed."""
    person.send("/transfers")
    person.expect(summary)
    row = person.expect(starts("  "))
    match = re.fullmatch(PAUSED_ROW, row)
    assert match, row
    return match


def test_the_senders_stream_is_cut_at_a_random_byte(server: Any, people: Any, proxies: Any) -> None:
    seed = random.randrange(1 << 30)
    cut = random.Random(seed).randrange(SIZE // 5, SIZE * 4 // 5)
    content = os.urandom(SIZE)
    proxy = proxies(server.port, cut, cut=True, upward=True)
    bob = people(server.port, "bob")
    alice = people(proxy.address, "alice", "--reconnect")
    bob.expect(lambda line: line.endswith("is now known as alice"))
    offer_file(alice, bob, content)
    assert proxy.reached.wait(DEADLINE), f"seed {seed}"
    assert bob.expect(starts('"f.bin" from alice paused at ')).endswith("(it resumes when alice is back; /cancel "
                                                                        f"{bob_token(bob)[:8]} gives up)")
    line = alice.expect(starts('resumed "f.bin"'), 60)
    arrived(bob, content)
    assert resent(line) <= SIZE - cut + 2 * CHUNK, f"seed {seed}: cut at {cut}, {line}"


def bob_token(bob: ClientProcess) -> str:
    return str(json.loads(sidecar(bob.received_dir).read_text().splitlines()[0])["token"])


def test_the_sending_client_restarts_and_transfers_shows_the_wait(server: Any, people: Any, proxies: Any) -> None:
    content = os.urandom(SIZE)
    hold = SIZE // 2
    proxy = proxies(server.port, hold, cut=False, upward=True)
    bob = people(server.port, "bob")
    alice = people(proxy.address, "alice")
    bob.expect(lambda line: line.endswith("is now known as alice"))
    offer_file(alice, bob, content)
    assert proxy.reached.wait(DEADLINE)
    alice.kill()  # SIGKILL: the sending client dies with its file half sent
    proxy.release.set()
    bob.expect(starts('"f.bin" from alice paused at '))
    row = paused_row(bob, "transfers: 0 out, 0 in, 1 interrupted")
    assert row[1] == "down" and row[3] == "f.bin from alice" and row[5] == "interrupted"
    assert row[2] == bob_token(bob)[:8]
    have = re.fullmatch(r"([0-9.]+) MiB of 48\.0 MiB \((\d+)%\)", row[4])
    assert have and 8 <= float(have[1]) <= hold / MiB, row[4]
    alice = people(server.port, "alice")  # started again in her folder: her record presents itself
    line = alice.expect(starts('resumed "f.bin"'), 60)
    arrived(bob, content)
    assert resent(line) <= SIZE - int(float(have[1])) * CHUNK  # what bob had when he listed it is not sent again
    bob.send("/transfers")
    bob.expect("transfers: none")


def test_a_sent_offer_waiting_for_its_receivers_to_confirm_is_not_listed_as_interrupted(server: Any,
                                                                                       people: Any) -> None:
    dave = server.connect("dave", binary=True)  # takes every byte, never says file-received
    dave.send("/caps resume")
    dave.expect("OK caps binary resume")
    alice = people(server.port, "alice")
    dave.expect_where(lambda line: line.endswith("is now known as alice"), "alice")
    content = os.urandom(MiB + 7)
    (alice.send_dir / "f.bin").write_bytes(content)
    alice.send("/sendfile f.bin")
    metas = []
    while not metas or not metas[-1].startswith(("file-end", "file-abort")):
        event = dave.next_event()
        if isinstance(event, protocol.Frame):
            metas.append(event.meta)
    assert metas[-1].startswith("file-end"), metas[-3:]
    alice.expect(starts('sent "f.bin"'))
    token = alice_token(alice)  # kept: dave has not confirmed
    alice.send("/transfers")
    assert alice.expect(starts("transfers: ")) == "transfers: 1 out, 0 in"
    assert alice.expect(starts("  ")) == (f"  up {token[:8]} f.bin: 1.0 MiB, sent, waiting for the receivers to "
                                          f"confirm; /cancel {token[:8]}")


def test_a_refused_resume_is_listed_and_resume_asks_again_after_a_login(server_factory: Any, people: Any,
                                                                        proxies: Any) -> None:
    server = server_factory("--flood-rate", "0")
    registrar = server.connect("bob")
    registrar.send("/register correct-horse")
    registrar.expect_prefix("OK registered bob")
    registrar.send("/quit")
    content = os.urandom(SIZE)
    hold = SIZE // 2
    proxy = proxies(server.port, hold, cut=False)
    bob = people(proxy.address, "bob", "--password", "correct-horse")
    alice = people(server.port, "alice")
    bob.expect(lambda line: line.endswith("is now known as alice"))
    offer_file(alice, bob, content)
    assert proxy.reached.wait(DEADLINE)
    until_arriving(bob)  # his sidecar is on the disk
    token = bob_token(bob)
    bob.kill()
    proxy.release.set()
    alice.expect(starts('sending "f.bin" paused: '))
    # bob's client starts again in his folder without logging in: his token is bound to his account
    guest = people(server.port, "bobby", folder="bob")
    assert guest.expect(lambda line: f"/resume {token[:8]} asks again" in line).startswith(
        '"f.bin" from alice: no transfer of yours has this id')  # which transfer it is about
    row = paused_row(guest, "transfers: 0 out, 0 in, 1 interrupted")
    assert row.group(1, 2, 3) == ("down", token[:8], "f.bin from alice") and row[5] == "the server does not know it now"
    guest.send("/login bob correct-horse")
    guest.expect("OK logged in as bob")
    guest.send(f"/resume {token[:8]}")
    guest.expect(starts("* f.bin: resuming from alice"))
    alice.expect(starts('resumed "f.bin"'), 60)
    arrived(guest, content)


def test_cancel_ends_an_interrupted_transfer_on_both_ends(server: Any, people: Any, proxies: Any) -> None:
    content = os.urandom(8 * MiB)
    proxy = proxies(server.port, 3 * MiB, cut=False, upward=True)
    bob = people(server.port, "bob")
    alice = people(proxy.address, "alice")
    bob.expect(lambda line: line.endswith("is now known as alice"))
    offer_file(alice, bob, content)
    assert proxy.reached.wait(DEADLINE)
    alice.kill()
    proxy.release.set()
    bob.expect(starts('"f.bin" from alice paused at '))
    short = paused_row(bob, "transfers: 0 out, 0 in, 1 interrupted")[2]
    bob.send(f"/cancel {short}")  # bob gives up while alice is away
    bob.expect(starts('discarded "f.bin" from alice'))
    assert os.listdir(bob.received_dir) == []  # no part file, no sidecar
    bob.send("/transfers")
    bob.expect("transfers: none")
    alice = people(server.port, "alice")  # back: she hears why, and her record goes
    alice.expect('offer of "f.bin" ended: cancelled by bob')
    assert not list(alice.send_dir.glob(".*.send"))
    alice.send("/transfers")
    alice.expect("transfers: none")
    # the other way: alice gives up while bob is away; bob's client, started again, discards what it has
    proxy = proxies(server.port, 3 * MiB, cut=False)
    bob.kill()
    bob = people(proxy.address, "bob")
    offer_file(alice, bob, os.urandom(SIZE))  # more than the buffers between the server and the held stream
    assert proxy.reached.wait(DEADLINE)
    until_arriving(bob)  # (the proxy passed bytes bob's client may not have read: killed before, he has no record)
    bob.kill()
    proxy.release.set()
    alice.expect(starts('sending "f.bin" paused: '))
    short = paused_row(alice, "transfers: 0 out, 0 in, 1 interrupted")[2]
    alice.send(f"/cancel {short}")
    alice.expect(starts('sending "f.bin" cancelled'))
    assert not list(alice.send_dir.glob(".*.send"))
    assert len(os.listdir(bob.received_dir)) == 2  # bob's part file and sidecar, until he is back
    bob = people(server.port, "bob")
    bob.expect('discarded "f.bin" from alice: cancelled by alice')
    assert os.listdir(bob.received_dir) == []
