"""The server side of resumable transfers without sockets: the relay's ``file-announce``, ``file-resume``,
``file-cancel`` and ``file-received`` frames (chatroom/net/resume.py) against the fake server of
test_transfer.py, and the book that keeps offers across restarts (chatroom/model/resumable.py)."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from test_transfer import Clock, FakeClient, FakeServer, frames, lines

from chatroom.model.resumable import MAX_PER_SENDER, ResumeBook, token_key
from chatroom.net.relay import Relay
from chatroom.wire.chunks import bitmap, chunk_count, hash_list, set_bits
from chatroom.wire.lines import Frame

CHUNK = 64 * 1024


class Wall:
    """A wall clock (Unix seconds) the test moves."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def client(cid: int, nick: str, server: FakeServer, *, resume: bool = True, account: str | None = None) -> FakeClient:
    c = FakeClient(cid, nick, server.lobby)
    if resume:
        c.caps.add("resume")
    c.account = account  # type: ignore[attr-defined]
    c.host = "127.0.0.1"  # type: ignore[attr-defined]
    return c


def pieces(content: bytes) -> list[bytes]:
    return [content[i:i + CHUNK] for i in range(0, len(content), CHUNK)]


def announce(relay: Relay, sender: FakeClient, content: bytes, name: str = "f.bin") -> Frame:
    sha = hashlib.sha256(content).hexdigest()
    return Frame(f"file-announce {len(content)} {CHUNK} {sha} {name}", hash_list(pieces(content)))


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    server, wall = FakeServer(), Wall()
    book = ResumeBook(tmp_path / "transfers.sqlite3", keep=3600, clock=wall)
    relay = Relay(server, clock=Clock(), book=book)  # type: ignore[arg-type]
    alice = client(1, "alice", server, account="alice")
    bob = client(2, "bob", server)
    carol = client(3, "carol", server, resume=False)  # an older client: no resume for it
    yield server, relay, book, wall, alice, bob, carol
    book.close()


def start(relay: Relay, alice: FakeClient, content: bytes) -> tuple[int, str]:
    """Announce *content* from alice; returns the session id and alice's token."""
    assert relay.check_frame(alice, announce(relay, alice, content).meta, len(hash_list(pieces(content)))) is None
    relay.on_frame(alice, announce(relay, alice, content))
    events = alice.drain()
    ident = [f for f in frames(events) if f.startswith("file-id ")][0].split()
    tid = int(ident[1])
    assert f"OK sendfile {tid} f.bin" in lines(events)
    return tid, ident[2]


def send_chunks(relay: Relay, sender: FakeClient, tid: int, content: bytes, indices: list[int]) -> None:
    for i in indices:
        frame = Frame(f"file-data {tid} {i}", pieces(content)[i])
        assert relay.check_frame(sender, frame.meta, len(frame.payload)) is None, i
        relay.on_frame(sender, frame)


def test_an_announced_file_goes_out_with_tokens_and_indexed_chunks(setup: Any) -> None:
    server, relay, book, wall, alice, bob, carol = setup
    content = os.urandom(3 * CHUNK + 100)
    tid, sender_token = start(relay, alice, content)
    bob_events, carol_events = bob.drain(), carol.drain()
    chunks_frame = [e for e in bob_events if isinstance(e, Frame) and e.meta.startswith("file-chunks")][0]
    _, _, bob_token, size, chunk, sha = chunks_frame.meta.split()
    assert chunks_frame.payload == hash_list(pieces(content)) and int(chunk) == CHUNK and int(size) == len(content)
    assert sha == hashlib.sha256(content).hexdigest() and bob_token != sender_token
    assert frames(bob_events)[-1] == f"file-begin {tid} {len(content)} alice f.bin"
    assert frames(carol_events) == [f"file-begin {tid} {len(content)} alice f.bin"]  # nothing new for carol
    # the book keeps hashes of the tokens, never the tokens
    rows = book.db.execute("SELECT key FROM offers UNION ALL SELECT key FROM legs").fetchall()
    assert sorted(r[0] for r in rows) == sorted([token_key(sender_token), token_key(bob_token)])
    # a chunk out of order is refused before its payload is read; the plan's next one goes through
    assert relay.check_frame(alice, f"file-data {tid} 1", CHUNK) == f"file-data {tid}: chunk 1 is not the next one (0 is)"
    assert relay.check_frame(alice, f"file-data {tid} 0", CHUNK - 1) == f"file-data {tid}: chunk 0 is {CHUNK} bytes, not {CHUNK - 1}"
    send_chunks(relay, alice, tid, content, [0, 1, 2, 3])
    assert [e.meta for e in bob.drain()] == [f"file-data {tid} {i}" for i in range(4)]
    assert [e.meta for e in carol.drain()] == [f"file-data {tid}"] * 4
    relay.on_frame(alice, Frame(f"file-end {tid} {sha}", b""))
    assert frames(alice.drain()) == [f"file-done {tid} bob,carol"]
    relay.on_frame(bob, Frame(f"file-received {bob_token}", b""))
    assert frames(alice.drain()) == [f"file-gone {sender_token} every receiver has it"]
    assert book.offers == {} and book.db.execute("SELECT count(*) FROM legs").fetchone() == (0,)


def test_a_receiver_that_drops_resumes_with_what_it_lacks(setup: Any) -> None:
    server, relay, book, wall, alice, bob, carol = setup
    content = os.urandom(4 * CHUNK)
    tid, sender_token = start(relay, alice, content)
    bob_token = [f for f in frames(bob.drain()) if f.startswith("file-chunks")][0].split()[2]
    send_chunks(relay, alice, tid, content, [0, 1])
    bob.closed = True
    relay.on_client_left(bob)
    send_chunks(relay, alice, tid, content, [2, 3])  # carol goes on
    relay.on_frame(alice, Frame(f"file-end {tid} {hashlib.sha256(content).hexdigest()}", b""))
    assert frames(alice.drain()) == [f"file-done {tid} carol"]
    bob2 = client(5, "bob", server)
    relay.on_frame(bob2, Frame(f"file-resume {bob_token}", bitmap([1, 2, 3], 4)))  # chunk 1 did not make it
    events = bob2.drain()
    assert lines(events) == [f"OK resume {bob_token} f.bin: resuming from alice (3 chunks to go)"]
    new = int(frames(events)[0].split()[1])
    assert frames(events) == [f"file-chunks {new} {bob_token} {len(content)} {CHUNK} {hashlib.sha256(content).hexdigest()}",
                              f"file-begin {new} {len(content)} alice f.bin"]
    resend = alice.drain()[0]
    assert resend.meta == f"file-resend {new} {sender_token}" and set_bits(resend.payload, 4) == [1, 2, 3]
    assert relay.check_frame(alice, f"file-data {new} 0", CHUNK) is not None  # only what bob lacks
    send_chunks(relay, alice, new, content, [1, 2, 3])
    relay.on_frame(alice, Frame(f"file-end {new} {hashlib.sha256(content).hexdigest()}", b""))
    assert [e.meta for e in bob2.drain()][-1].startswith(f"file-end {new} ")
    assert frames(alice.drain()) == [f"file-done {new} bob"]
    assert book.offers[token_key(sender_token)].legs[token_key(bob_token)].sent == 5 * CHUNK


def test_the_sender_drops_and_both_come_back_after_a_server_restart(setup: Any, tmp_path: Path) -> None:
    server, relay, book, wall, alice, bob, carol = setup
    content = os.urandom(2 * CHUNK + 7)
    tid, sender_token = start(relay, alice, content)
    bob_token = [f for f in frames(bob.drain()) if f.startswith("file-chunks")][0].split()[2]
    carol.drain()
    send_chunks(relay, alice, tid, content, [0])
    alice.closed = True
    relay.on_client_left(alice)
    assert frames(bob.drain())[-1] == f"file-pause {tid} alice disconnected"  # bob keeps what he has
    assert frames(carol.drain())[-1] == f"file-abort {tid} alice disconnected"  # carol cannot resume
    book.close()
    # the server restarts: a new relay over the same file
    server2, wall.now = FakeServer(), wall.now + 600
    book2 = ResumeBook(tmp_path / "transfers.sqlite3", keep=3600, clock=wall)
    relay2 = Relay(server2, clock=Clock(), book=book2)  # type: ignore[arg-type]
    alice2, bob2 = client(1, "alice", server2, account="alice"), client(2, "bob", server2)
    relay2.on_frame(alice2, Frame(f"file-resume {sender_token}", b""))
    assert lines(alice2.drain()) == [f"OK resume {sender_token} f.bin: waiting for bob"]
    relay2.on_frame(bob2, Frame(f"file-resume {bob_token}", bitmap([1, 2], 3)))
    assert lines(bob2.drain())[0] == f"OK resume {bob_token} f.bin: resuming from alice (2 chunks to go)"
    resend = alice2.drain()[0]
    new = int(resend.meta.split()[1])
    send_chunks(relay2, alice2, new, content, [1, 2])
    assert [e.payload for e in bob2.drain() if e.meta.startswith("file-data")] == pieces(content)[1:]


def test_third_parties_learn_nothing_from_tokens(setup: Any) -> None:
    server, relay, book, wall, alice, bob, carol = setup
    content = os.urandom(CHUNK)
    tid, sender_token = start(relay, alice, content)
    bob_token = [f for f in frames(bob.drain()) if f.startswith("file-chunks")][0].split()[2]
    mallory = client(9, "mallory", server, account="mallory")
    guessed = [secrets.token_hex(16) for _ in range(50)]
    answers = set()
    for token in [*guessed, sender_token]:  # alice's token is bound to her account
        relay.on_frame(mallory, Frame(f"file-resume {token}", b""))
        relay.on_frame(mallory, Frame(f"file-cancel {token}", b""))
        relay.on_frame(mallory, Frame(f"file-received {token}", b""))
        answers.add(tuple(line.replace(token, "T") for line in lines(mallory.drain())))
    assert answers == {("ERROR resume T: no transfer of yours has this id (it may have finished, been cancelled "
                        "or expired)",
                        "ERROR cancel T: no transfer of yours has this id (it may have finished, been cancelled "
                        "or expired)")}
    assert relay.check_frame(carol, f"file-resume {bob_token}", 1) == "file-resume needs /caps resume first"
    assert len(book.offers) == 1 and alice.drain() == [] and bob.drain() == []  # nothing changed, nobody told


def test_cancel_by_either_party(setup: Any) -> None:
    server, relay, book, wall, alice, bob, carol = setup
    dave = client(4, "dave", server)
    content = os.urandom(2 * CHUNK)
    tid, sender_token = start(relay, alice, content)
    tokens = {c.nick: [f for f in frames(c.drain()) if f.startswith("file-chunks")][0].split()[2] for c in (bob, dave)}
    relay.on_frame(dave, Frame(f"file-cancel {tokens['dave']} no room", b""))
    assert lines(dave.drain()) == [f"OK cancel {tokens['dave']} f.bin"]
    send_chunks(relay, alice, tid, content, [0, 1])
    assert dave.drain() == [] and len(bob.drain()) == 2  # dave is out of the session, bob is not
    relay.on_frame(alice, Frame(f"file-cancel {sender_token}", b""))
    assert lines(alice.drain()) == [f"OK cancel {sender_token} f.bin"]
    assert frames(bob.drain()) == [f"file-abort {tid} cancelled by alice"]
    assert book.offers == {}
    relay.on_frame(bob, Frame(f"file-resume {tokens['bob']}", bitmap([0], 2)))
    assert lines(bob.drain())[0].startswith(f"ERROR resume {tokens['bob']}: no transfer of yours")


def test_a_party_away_when_its_transfer_ended_hears_why_once_after_a_restart(setup: Any, tmp_path: Path) -> None:
    server, relay, book, wall, alice, bob, carol = setup
    content = os.urandom(2 * CHUNK)
    tid, first = start(relay, alice, content)  # 1: bob cancels while alice is away
    bob_first = [f for f in frames(bob.drain()) if f.startswith("file-chunks")][0].split()[2]
    alice.closed = True
    relay.on_client_left(alice)
    relay.on_frame(bob, Frame(f"file-cancel {bob_first} no room", b""))
    assert lines(bob.drain()) == [f"OK cancel {bob_first} f.bin"]
    alice = client(6, "alice", server, account="alice")
    tid, second = start(relay, alice, content)  # 2: alice cancels while bob is away
    bob_second = [f for f in frames(bob.drain()) if f.startswith("file-chunks")][0].split()[2]
    bob.closed = True
    relay.on_client_left(bob)
    relay.on_frame(alice, Frame(f"file-cancel {second}", b""))
    assert lines(alice.drain()) == [f"OK cancel {second} f.bin"] and book.offers == {}
    book.close()
    server2 = FakeServer()  # the server restarts
    book2 = ResumeBook(tmp_path / "transfers.sqlite3", keep=3600, clock=wall)
    relay2 = Relay(server2, clock=Clock(), book=book2)  # type: ignore[arg-type]
    mallory = client(9, "mallory", server2, account="mallory")
    relay2.on_frame(mallory, Frame(f"file-resume {first}", b""))  # alice's token, bound to her account
    assert lines(mallory.drain()) == [f"ERROR resume {first}: no transfer of yours has this id (it may have "
                                      "finished, been cancelled or expired)"]
    alice2, bob2 = client(1, "alice", server2, account="alice"), client(2, "bob", server2)
    relay2.on_frame(alice2, Frame(f"file-resume {first}", b""))
    assert frames(alice2.drain()) == [f"file-gone {first} cancelled by bob: no room"]
    relay2.on_frame(bob2, Frame(f"file-resume {bob_second}", bitmap([0, 1], 2)))
    assert frames(bob2.drain()) == [f"file-gone {bob_second} cancelled by alice"]
    relay2.on_frame(alice2, Frame(f"file-resume {second}", b""))  # alice cancelled it herself: nothing to tell
    relay2.on_frame(alice2, Frame(f"file-resume {first}", b""))  # told once
    assert [line.split(":")[0] for line in lines(alice2.drain())] == [f"ERROR resume {second}",
                                                                      f"ERROR resume {first}"]
    assert book2.db.execute("SELECT count(*) FROM ended").fetchone() == (0,)


def test_the_book_expires_idle_offers_and_bounds_what_it_keeps(setup: Any) -> None:
    server, relay, book, wall, alice, bob, carol = setup
    content = os.urandom(CHUNK)
    tid, sender_token = start(relay, alice, content)
    relay.on_frame(alice, Frame(f"file-abort {tid} later", b""))  # paused, not cancelled
    assert frames(bob.drain())[-1] == f"file-pause {tid} paused by the sender: later"
    wall.now += 3599
    relay.resumes.expire()
    assert len(book.offers) == 1
    wall.now += 2
    relay.resumes.expire()
    assert book.offers == {} and frames(alice.drain()) == [f"file-gone {sender_token} expired"]
    for n in range(MAX_PER_SENDER + 3):  # one sender keeps at most MAX_PER_SENDER: the oldest make room
        wall.now += 1
        tid, _ = start(relay, alice, content)
        relay.on_frame(alice, Frame(f"file-abort {tid} later", b""))
    assert len(book.offers) == MAX_PER_SENDER
    assert book.db.execute("SELECT count(*) FROM offers").fetchone() == (MAX_PER_SENDER,)


def test_chunk_arithmetic_and_bitmaps() -> None:
    assert chunk_count(0, CHUNK) == 0 and chunk_count(1, CHUNK) == 1 and chunk_count(CHUNK + 1, CHUNK) == 2
    assert bitmap([0, 9], 10) == bytes([0x80, 0x40]) and set_bits(bytes([0x80, 0x40]), 10) == [0, 9]
    assert set_bits(bytes([0x80, 0x20]), 10) is None  # a spare bit past the last chunk
    assert set_bits(b"\x80", 10) is None  # the wrong length


def test_the_offers_file_never_checkpoints_in_a_commit(tmp_path: Path) -> None:
    """transfers.sqlite3 is written on the loop (a few rows per session): its connection has SQLite's
    automatic checkpoint off (the fsync inside a commit was issue 17's stall), and the book's own watching
    checkpoint thread copies the WAL into the file instead."""
    import time

    path = tmp_path / "transfers.sqlite3"
    book = ResumeBook(path, keep=3600, clock=Wall())
    try:
        assert book.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        server = FakeServer()
        sender = client(1, "alice", server, account="alice")
        made = book.create(name="f.bin", size=10, sha256="0" * 64, chunk=CHUNK, sender=sender, sender_key="k",
                           receivers=[client(2, "bob", server)])
        assert made is not None
        deadline = time.monotonic() + 10
        while book._checkpointer is not None and book._checkpointer.checkpoints < 1:
            assert time.monotonic() < deadline, "the offers file was never checkpointed"
            time.sleep(0.05)
        assert b"f.bin" in path.read_bytes()  # copied from the WAL into the database file itself
    finally:
        book.close()


def test_a_receiver_out_of_room_pauses_its_session_and_resumes_later(setup: Any) -> None:
    """``file-pause TOKEN`` from a receiver (its disk is full): its session stops, the sender hears why with a
    pause (its record stays), the leg waits; a third party's pause gets the one answer for ids not its own."""
    server, relay, book, wall, alice, bob, carol = setup
    carol.closed = True
    relay.on_client_left(carol)
    content = os.urandom(4 * CHUNK)
    tid, sender_token = start(relay, alice, content)
    bob_token = [f for f in frames(bob.drain()) if f.startswith("file-chunks")][0].split()[2]
    send_chunks(relay, alice, tid, content, [0, 1])
    mallory, guess = client(9, "mallory", server), secrets.token_hex(16)
    for token in (guess, sender_token):  # unknown, or not a receiver's
        relay.on_frame(mallory if token == guess else alice, Frame(f"file-pause {token}", b""))
    assert lines(mallory.drain() + alice.drain()) == [
        f"ERROR pause {token}: no transfer of yours has this id (it may have finished, been cancelled or expired)"
        for token in (guess, sender_token)]
    assert relay.check_frame(bob, f"file-pause {bob_token} no room left", 0) is None
    relay.on_frame(bob, Frame(f"file-pause {bob_token} no room left", b""))
    assert lines(bob.drain()) == [f"OK pause {bob_token} f.bin"]
    assert frames(alice.drain()) == [f"file-pause {tid} bob: no room left"]
    assert relay.transfers == {} and token_key(sender_token) in book.offers
    relay.on_frame(bob, Frame(f"file-resume {bob_token}", bitmap([2, 3], 4)))
    assert lines(bob.drain())[0] == f"OK resume {bob_token} f.bin: resuming from alice (2 chunks to go)"
    resend = alice.drain()[0]
    assert resend.meta.startswith("file-resend ") and set_bits(resend.payload, 4) == [2, 3]
