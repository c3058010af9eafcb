"""Unit tests of both ends of a file transfer, without sockets.

The client side (:class:`TransferManager`) writes bytes into a fake output
buffer; the server side (:class:`Relay`) runs against a fake server whose
clients record what was queued for them. Wiring the two together moves real
files through the real frame encoding and parser.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from chatroom.builtin.sendfile import register_commands, sendfile
from chatroom.model.errors import Refused
from chatroom.plugins.commands import UsageError
from chatroom.wire.lines import Frame, Line, Parser, encode_frame, encode_frame_header
from chatroom.net.relay import Relay
from chatroom.client.partfile import PartFile
from chatroom.client.transfer import TransferManager

# -- fakes ---------------------------------------------------------------------


class FakeRoom:
    def __init__(self, name: str = "#lobby") -> None:
        self.name = name
        self.label = name.lstrip("#")
        self.members: dict[int, FakeClient] = {}


class FakeClient:
    def __init__(self, cid: int, nick: str, room: FakeRoom, binary: bool = True) -> None:
        self.id, self.nick, self.room = cid, nick, room
        self.caps = {"binary"} if binary else set()
        self.closed = False
        self.out = bytearray()
        self.paused = False
        room.members[cid] = self

    @property
    def queued(self) -> int:
        return len(self.out)

    def frame(self, meta: str, payload: bytes = b"") -> bytes:  # the line protocol's, as Connection's
        return encode_frame(meta, payload)

    def frame_header(self, meta: str, size: int) -> bytes:
        return encode_frame_header(meta, size)

    def drain(self) -> list[Any]:
        """Everything queued for this client, parsed; empties the queue."""
        events = Parser().feed(bytes(self.out))
        self.out.clear()
        return events


class FakeServer:
    def __init__(self, max_file_size: int = 1 << 30, max_queue: int = 8 << 20) -> None:
        self.max_file_size = max_file_size
        self.max_queue = max_queue
        self.lobby = FakeRoom()
        self.hooks: list[tuple[str, str, dict[str, Any]]] = []
        self.offer_answer: str | None = None
        self.timers: list[tuple[float, Any]] = []
        self.relay: Relay | None = None

    def send_line(self, client: FakeClient, text: str) -> None:
        client.out += text.encode() + b"\n"

    def send_bytes(self, client: FakeClient, data: bytes) -> None:
        assert "binary" in client.caps, "frames sent to a client without /caps binary"
        client.out += data

    def broadcast(self, room: FakeRoom, text: str, exclude: FakeClient | None = None) -> None:
        for c in room.members.values():
            if c is not exclude:
                self.send_line(c, text)

    def pause_reading(self, client: FakeClient) -> None:
        client.paused = True

    def resume_reading(self, client: FakeClient) -> None:
        client.paused = False

    def call_hook(self, hook: str, client: FakeClient | None, /, **kwargs: Any) -> list[Any]:
        self.hooks.append((hook, client.nick if client else "", kwargs))
        return [self.offer_answer] if hook == "file_offered" and self.offer_answer else []

    def call_later(self, delay: float, fn: Any, *args: Any, plugin: str = "core") -> Any:
        self.timers.append((delay, fn))
        return None

    def run_timers(self) -> None:
        timers, self.timers = self.timers, []
        for _, fn in timers:
            fn()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def room() -> tuple[FakeServer, Relay, FakeClient, FakeClient, FakeClient, FakeClient]:
    server = FakeServer()
    relay = Relay(server, high_water=64 * 1024, stall_timeout=30, idle_timeout=60, clock=Clock())  # type: ignore[arg-type]
    server.relay = relay
    alice = FakeClient(1, "alice", server.lobby)
    bob = FakeClient(2, "bob", server.lobby)
    carol = FakeClient(3, "carol", server.lobby)
    dave = FakeClient(4, "dave", server.lobby, binary=False)  # a person on nc
    return server, relay, alice, bob, carol, dave


def frames(events: list[Any]) -> list[str]:
    return [e.meta for e in events if isinstance(e, Frame)]


def lines(events: list[Any]) -> list[str]:
    return [e.text for e in events if isinstance(e, Line)]


def data_frame(tid: int, payload: bytes) -> Frame:
    return Frame(f"file-data {tid}", payload)


# -- relay ------------------------------------------------------------------------


def test_relay_forwards_to_binary_members_and_tells_nc_users(room: Any) -> None:
    server, relay, alice, bob, carol, dave = room
    tid = relay.start(alice, "../../etc/report.pdf", 10)
    assert lines(dave.drain()) == ['* alice is sending "report.pdf" (10 bytes)']
    for receiver in (bob, carol):
        events = receiver.drain()
        assert lines(events) == ['* alice is sending "report.pdf" (10 bytes)']
        assert frames(events) == [f"file-begin {tid} 10 alice report.pdf"]
    assert lines(alice.drain()) == [f"OK sendfile {tid} report.pdf"]  # nobody asked for consent: at once
    relay.on_frame(alice, data_frame(tid, b"0123456789"))
    digest = hashlib.sha256(b"0123456789").hexdigest()
    relay.on_frame(alice, Frame(f"file-end {tid} {digest}", b""))
    for receiver in (bob, carol):
        events = receiver.drain()
        assert events == [Frame(f"file-data {tid}", b"0123456789"), Frame(f"file-end {tid} {digest}", b"")]
    assert dave.drain() == []
    assert frames(alice.drain()) == [f"file-done {tid} bob,carol"]
    assert relay.transfers == {}
    assert server.hooks[-1] == (
        "file_delivered", "alice", {"name": "report.pdf", "size": 10, "receivers": ["bob", "carol"], "ok": True}
    )


def test_relay_refuses_before_any_byte_moves(room: Any) -> None:
    server, relay, alice, bob, carol, dave = room
    server.max_file_size = 100
    with pytest.raises(Refused, match="over the server's limit of 100 bytes"):
        relay.start(alice, "big.bin", 101)
    with pytest.raises(Refused, match="caps binary"):
        relay.start(dave, "x", 1)
    server.offer_answer = "no files on Sundays"
    with pytest.raises(Refused, match="no files on Sundays"):
        relay.start(alice, "x", 1)
    assert [h[0] for h in server.hooks] == ["file_offered"]
    assert server.hooks[0][2] == {"name": "x", "size": 1}
    for client in (alice, bob, carol, dave):
        assert client.drain() == []
    assert relay.transfers == {}


def test_relay_refuses_when_nobody_can_receive() -> None:
    server = FakeServer()
    relay = Relay(server)  # type: ignore[arg-type]
    alice = FakeClient(1, "alice", server.lobby)
    FakeClient(2, "dave", server.lobby, binary=False)
    with pytest.raises(Refused, match="nobody else in lobby can receive files"):
        relay.start(alice, "x", 1)


def test_relay_rejects_more_data_than_announced(room: Any) -> None:
    server, relay, alice, bob, *_ = room
    tid = relay.start(alice, "x", 4)
    bob.drain()
    relay.on_frame(alice, data_frame(tid, b"12345"))
    assert frames(bob.drain()) == [f"file-abort {tid} more data than the announced 4 bytes"]
    assert frames(alice.drain()) == [f"file-abort {tid} more data than the announced 4 bytes"]
    relay.on_frame(alice, data_frame(tid, b"late chunk"))  # in flight: dropped quietly
    assert alice.drain() == [] and bob.drain() == []
    assert server.hooks[-1][2]["ok"] is False


def test_relay_checks_size_at_the_end(room: Any) -> None:
    _, relay, alice, bob, *_ = room
    tid = relay.start(alice, "x", 4)
    relay.on_frame(alice, data_frame(tid, b"12"))
    bob.drain()
    relay.on_frame(alice, Frame(f"file-end {tid} {'0' * 64}", b""))
    assert frames(bob.drain()) == [f"file-abort {tid} size mismatch: sent 2 of 4 bytes"]


def test_relay_rejects_frames_of_other_clients_and_unknown_kinds(room: Any) -> None:
    _, relay, alice, bob, *_ = room
    tid = relay.start(alice, "x", 4)
    relay.on_frame(bob, data_frame(tid, b"1234"))
    assert lines(bob.drain())[-1] == f"ERROR file-data: no transfer {tid} of yours is open"
    relay.on_frame(bob, Frame("file-explode 1", b""))
    assert lines(bob.drain()) == ["ERROR unknown frame kind: file-explode"]
    assert relay.transfers[tid].relayed == 0


def test_sender_leaving_aborts_for_receivers(room: Any) -> None:
    server, relay, alice, bob, carol, _ = room
    tid = relay.start(alice, "x", 100)
    relay.on_frame(alice, data_frame(tid, b"a" * 10))
    bob.drain(), carol.drain()
    alice.closed = True
    relay.on_client_left(alice)
    for receiver in (bob, carol):
        assert frames(receiver.drain()) == [f"file-abort {tid} alice disconnected"]
    assert relay.transfers == {}
    assert server.hooks[-1] == ("file_delivered", "alice", {"name": "x", "size": 100, "receivers": [], "ok": False})


def test_sender_abort_is_relayed(room: Any) -> None:
    _, relay, alice, bob, *_ = room
    tid = relay.start(alice, "x", 100)
    bob.drain()
    alice.drain()
    relay.on_frame(alice, Frame(f"file-abort {tid} changed my mind", b""))
    assert frames(bob.drain()) == [f"file-abort {tid} sender cancelled: changed my mind"]
    assert alice.drain() == []


def test_receiver_leaving_does_not_disturb_the_others(room: Any) -> None:
    _, relay, alice, bob, carol, _ = room
    tid = relay.start(alice, "x", 8)
    relay.on_frame(alice, data_frame(tid, b"1234"))
    bob.closed = True
    relay.on_client_left(bob)
    relay.on_frame(alice, data_frame(tid, b"5678"))
    relay.on_frame(alice, Frame(f"file-end {tid} {hashlib.sha256(b'12345678').hexdigest()}", b""))
    assert b"".join(e.payload for e in carol.drain() if isinstance(e, Frame)) == b"12345678"
    assert frames(alice.drain()) == [f"file-done {tid} carol"]


def test_last_receiver_leaving_stops_the_sender(room: Any) -> None:
    _, relay, alice, bob, carol, _ = room
    tid = relay.start(alice, "x", 8)
    for c in (bob, carol):
        c.closed = True
        relay.on_client_left(c)
    assert frames(alice.drain()) == [f"file-abort {tid} every receiver left"]


def test_backpressure_pauses_the_sender_until_receivers_drain(room: Any) -> None:
    _, relay, alice, bob, carol, _ = room
    tid = relay.start(alice, "x", 1 << 20)
    bob.drain(), carol.drain()
    relay.on_frame(alice, data_frame(tid, b"x" * 32 * 1024))
    assert not alice.paused
    relay.on_frame(alice, data_frame(tid, b"x" * 40 * 1024))
    assert alice.paused
    bob.drain()
    relay.on_drain(bob)
    assert alice.paused  # carol still holds more than the high-water mark
    carol.drain()
    relay.on_drain(carol)
    assert not alice.paused


def test_a_full_receiver_pauses_every_sender_to_it(room: Any) -> None:
    _, relay, alice, bob, carol, _ = room
    t1 = relay.start(alice, "a", 1 << 20)
    relay.start(bob, "b", 1 << 20)
    carol.drain()
    relay.on_frame(alice, data_frame(t1, b"x" * 100 * 1024))  # carol is now over the high-water mark
    assert alice.paused and bob.paused
    bob.drain()
    carol.drain()
    relay.on_drain(carol)
    assert not alice.paused and not bob.paused


def test_two_transfers_from_two_senders(room: Any) -> None:
    _, relay, alice, bob, carol, _ = room
    t1 = relay.start(alice, "a.txt", 3)
    t2 = relay.start(bob, "b.txt", 3)
    assert t1 != t2
    relay.on_frame(alice, data_frame(t1, b"aaa"))
    relay.on_frame(bob, data_frame(t2, b"bbb"))
    relay.on_frame(bob, Frame(f"file-end {t2} {hashlib.sha256(b'bbb').hexdigest()}", b""))
    relay.on_frame(alice, Frame(f"file-end {t1} {hashlib.sha256(b'aaa').hexdigest()}", b""))
    got = [(e.meta, e.payload) for e in carol.drain() if isinstance(e, Frame)]
    assert (f"file-data {t1}", b"aaa") in got and (f"file-data {t2}", b"bbb") in got
    assert frames(alice.drain())[-1] == f"file-done {t1} bob,carol"
    assert f"file-done {t2} alice,carol" in frames(bob.drain())


def test_stalled_receiver_is_dropped_and_the_sender_resumes(room: Any) -> None:
    server, relay, alice, bob, carol, _ = room
    clock = relay.clock
    tid = relay.start(alice, "x", 1 << 20)
    relay.on_frame(alice, data_frame(tid, b"x" * 100 * 1024))
    assert alice.paused
    bob.drain()
    relay.on_drain(bob)  # bob keeps up; carol reads a little, but never drains
    read = bytearray()
    for _ in range(29):
        clock.now += 1
        server.run_timers()
        read += carol.out[:100]  # carol reads a trickle
        del carol.out[:100]
    assert alice.paused and bob.id in relay.transfers[tid].receivers and carol.id in relay.transfers[tid].receivers
    for _ in range(2):
        clock.now += 1
        server.run_timers()
    carol.out[:0] = read
    assert frames(carol.drain())[-1] == f"file-abort {tid} too slow: carol held the transfer back for 30 s"
    assert not alice.paused
    assert list(relay.transfers[tid].receivers) == [bob.id]


def test_idle_sender_loses_its_transfer(room: Any) -> None:
    server, relay, alice, bob, *_ = room
    tid = relay.start(alice, "x", 10)
    bob.drain()
    for _ in range(61):
        relay.clock.now += 1
        server.run_timers()
    assert frames(bob.drain()) == [f"file-abort {tid} the sender sent nothing for 60 s"]
    assert relay.transfers == {} and server.timers == []


def test_too_many_open_transfers_are_refused(room: Any) -> None:
    _, relay, alice, *_ = room
    for _ in range(relay.max_active):
        relay.start(alice, "x", 1)
    with pytest.raises(Refused, match="already have 8 transfers open"):
        relay.start(alice, "x", 1)


# -- the sendfile command ---------------------------------------------------------------


class FakeCtx:
    def __init__(self, relay: Relay, client: FakeClient) -> None:
        self.relay, self.client = relay, client
        self.replies: list[str] = []

    def start_transfer(self, name: str, size: int) -> int:
        return self.relay.start(self.client, name, size)  # type: ignore[arg-type]

    def reply(self, text: str) -> None:
        self.replies.append(text)


def test_sendfile_command(room: Any) -> None:
    server, relay, alice, *_ = room
    command, *consent = register_commands()
    assert command.name == "sendfile" and [c.name for c in consent] == ["accept", "decline", "files"]
    with pytest.raises(UsageError, match=r"/sendfile NAME SIZE"):
        command.parse_args("x")
    assert command.parse_args('"my file.txt" 12') == ["my file.txt", "12"]
    ctx = FakeCtx(relay, alice)
    sendfile(ctx, ["../my file.txt", "12"])  # type: ignore[arg-type]
    assert ctx.replies == [] and lines(alice.drain()) == ["OK sendfile 1 my file.txt"]  # the relay replies
    server.max_file_size = 5
    sendfile(ctx, ["big.bin", "6"])  # type: ignore[arg-type]
    assert ctx.replies[-1] == "ERROR sendfile big.bin: 6 bytes is over the server's limit of 5 bytes (--max-file-size)"
    with pytest.raises(UsageError):
        sendfile(ctx, ["x", "-1"])  # type: ignore[arg-type]


# -- client side, wired through the relay ------------------------------------------------


class Peer:
    """A TransferManager whose output goes to the relay as FakeClient *client*'s input."""

    def __init__(self, tmp: Path, client: FakeClient, relay: Relay, **kw: Any) -> None:
        self.client, self.relay = client, relay
        self.send_dir, self.received_dir = tmp / client.nick / "send", tmp / client.nick / "received"
        self.send_dir.mkdir(parents=True)
        self.out = bytearray()
        self.emitted: list[str] = []
        self.parser = Parser()
        self.tm = TransferManager(self.send_dir, self.received_dir, self.out.extend, lambda: len(self.out),
                                  self.emitted.append, **kw)  # fmt: skip

    def flush_to_server(self, server: FakeServer) -> None:
        """Deliver this peer's output to the server: commands and frames."""
        data = bytes(self.out)
        self.out.clear()
        for event in self.parser.feed(data):
            if isinstance(event, Frame):
                self.relay.on_frame(self.client, event)
            else:
                name, size = event.text.split(" ", 1)[1].rsplit(" ", 1)
                ctx = FakeCtx(self.relay, self.client)
                sendfile(ctx, [shlex.split(name)[0], size])  # type: ignore[arg-type]
                for reply in ctx.replies:
                    server.send_line(self.client, reply)

    def receive(self) -> list[str]:
        """Feed what the server queued for this peer into its manager; return unconsumed lines."""
        rest = []
        for event in self.client.drain():
            if isinstance(event, Frame):
                self.tm.handle_frame(event)
            elif not self.tm.handle_line(event.text):
                rest.append(event.text)
        return rest


def run(server: FakeServer, peers: list[Peer], rounds: int = 1000) -> None:
    """Move bytes until nobody is busy (bounded)."""
    for _ in range(rounds):
        for p in peers:
            p.tm.pump()
            if not p.client.paused:
                p.flush_to_server(server)
        for p in peers:
            p.receive()
        for p in peers:
            server.relay.on_drain(p.client)  # type: ignore[union-attr]
        if not any(p.tm.busy for p in peers) and not any(p.out for p in peers):
            return
    raise AssertionError("transfer did not finish")


@pytest.fixture
def peers(tmp_path: Path) -> tuple[FakeServer, Peer, Peer, Peer]:
    server = FakeServer()
    relay = Relay(server)  # type: ignore[arg-type]
    server.relay = relay
    a = Peer(tmp_path, FakeClient(1, "alice", server.lobby), relay, chunk=64 * 1024, out_limit=128 * 1024)
    b = Peer(tmp_path, FakeClient(2, "bob", server.lobby), relay)
    c = Peer(tmp_path, FakeClient(3, "carol", server.lobby), relay)
    return server, a, b, c


def test_file_reaches_every_receiver_intact(peers: Any) -> None:
    server, a, b, c = peers
    data = os.urandom(1_000_003)
    (a.send_dir / "my file.bin").write_bytes(data)
    a.tm.send_file("my file.bin")
    assert a.tm.busy
    run(server, [a, b, c])
    for p in (b, c):
        assert (p.received_dir / "my file.bin").read_bytes() == data
        assert os.listdir(p.received_dir) == ["my file.bin"]
        assert p.emitted[0].startswith('received "my file.bin" (1000003 bytes) from alice: ')
        assert "sha256 ok" in p.emitted[0]
    assert a.emitted[0].startswith('sent "my file.bin" (1000003 bytes) to bob, carol: ')
    assert a.tm.progress() == [] and not a.tm.busy


def test_existing_file_is_never_overwritten(peers: Any) -> None:
    server, a, b, c = peers
    (a.send_dir / "a.txt").write_bytes(b"new")
    b.received_dir.mkdir(parents=True)
    (b.received_dir / "a.txt").write_bytes(b"old")
    a.tm.send_file("a.txt")
    a.tm.send_file("a.txt")
    run(server, [a, b, c])
    assert (b.received_dir / "a.txt").read_bytes() == b"old"
    assert (b.received_dir / "a (1).txt").read_bytes() == b"new"
    assert (b.received_dir / "a (2).txt").read_bytes() == b"new"
    assert sorted(os.listdir(c.received_dir)) == ["a (1).txt", "a.txt"]


def test_empty_file(peers: Any) -> None:
    server, a, b, c = peers
    (a.send_dir / "empty").write_bytes(b"")
    a.tm.send_file("empty")
    run(server, [a, b, c])
    assert (b.received_dir / "empty").read_bytes() == b""


@pytest.mark.parametrize("name", ["../secret", "/etc/passwd", "sub", "missing.txt", ""])
def test_send_file_refuses_paths_outside_send_and_non_files(peers: Any, name: str) -> None:
    _, a, *_ = peers
    (a.send_dir.parent / "secret").write_text("x")
    (a.send_dir / "sub").mkdir()
    a.tm.send_file(name)
    assert a.out == bytearray() and not a.tm.busy
    assert len(a.emitted) == 1


def test_send_file_refuses_symlink_out_of_send(peers: Any) -> None:
    _, a, *_ = peers
    (a.send_dir.parent / "secret").write_text("x")
    (a.send_dir / "link").symlink_to(a.send_dir.parent / "secret")
    a.tm.send_file("link")
    assert a.out == bytearray() and "not inside send/" in a.emitted[0]


def test_refused_offer_is_reported(peers: Any) -> None:
    server, a, *_ = peers
    server.max_file_size = 10
    (a.send_dir / "big").write_bytes(b"x" * 11)
    a.tm.send_file("big")
    assert a.out == bytearray(b"/sendfile big 11\n")
    a.flush_to_server(server)
    assert a.receive() == []
    assert a.emitted == ["ERROR sendfile big: 11 bytes is over the server's limit of 10 bytes (--max-file-size)"]
    assert not a.tm.busy
    a.tm.pump()
    assert a.out == bytearray()


def receiver(tmp_path: Path) -> tuple[TransferManager, list[str], Path]:
    emitted: list[str] = []
    tm = TransferManager(tmp_path / "send", tmp_path / "received", lambda b: None, lambda: 0, emitted.append)
    return tm, emitted, tmp_path / "received"


def test_hostile_names_land_as_safe_names_inside_received(tmp_path: Path) -> None:
    tm, emitted, received = receiver(tmp_path)
    for tid, name in enumerate(["../../x", "/etc/x", "a\x00b", "..", "NUL"], start=1):
        tm.handle_frame(Frame(f"file-begin {tid} 2 mallory {name}", b""))
        tm.handle_frame(Frame(f"file-data {tid}", b"hi"))
        tm.handle_frame(Frame(f"file-end {tid} {hashlib.sha256(b'hi').hexdigest()}", b""))
    assert sorted(os.listdir(received)) == ["_NUL", "a_b", "file", "x", "x (1)"]
    assert not (tmp_path / "x").exists()
    assert all("sha256 ok" in line for line in emitted)


def test_mismatch_and_abort_leave_nothing(tmp_path: Path) -> None:
    tm, emitted, received = receiver(tmp_path)
    tm.handle_frame(Frame("file-begin 1 4 alice a.txt", b""))
    tm.handle_frame(Frame("file-data 1", b"abcd"))
    assert [p.name for p in received.iterdir()] == [".a.txt.1.part"]
    assert tm.progress()[0].done == 4 and tm.progress()[0].direction == "recv"
    tm.handle_frame(Frame(f"file-end 1 {hashlib.sha256(b'abce').hexdigest()}", b""))
    tm.handle_frame(Frame("file-begin 2 4 alice b.txt", b""))
    tm.handle_frame(Frame("file-data 2", b"ab"))
    tm.handle_frame(Frame("file-abort 2 alice disconnected", b""))
    tm.handle_frame(Frame("file-begin 3 4 alice c.txt", b""))
    tm.handle_frame(Frame("file-data 3", b"ab"))
    tm.handle_frame(Frame(f"file-end 3 {hashlib.sha256(b'ab').hexdigest()}", b""))
    tm.handle_frame(Frame("file-begin 4 4 alice d.txt", b""))
    tm.close()
    assert list(received.iterdir()) == []
    assert emitted[0].startswith('discarded "a.txt" from alice: sha256 mismatch')
    assert emitted[1] == 'discarded "b.txt" from alice: alice disconnected'
    assert emitted[2] == 'discarded "c.txt" from alice: size mismatch: got 2 of 4 bytes'
    assert emitted[3] == 'discarded "d.txt" from alice: connection closed before the file was complete'
    assert not tm.busy


def test_disk_full_discards_and_keeps_going(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tm, emitted, received = receiver(tmp_path)
    tm.handle_frame(Frame("file-begin 1 4 alice a.txt", b""))
    assert tm.receiving

    def full(self: PartFile, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PartFile, "write", full)  # the disk is full from now on
    tm.handle_frame(Frame("file-data 1", b"ab"))
    assert emitted == ['discarded "a.txt" from alice: disk full']
    assert list(received.iterdir()) == []
    tm.handle_frame(Frame("file-data 1", b"cd"))  # the rest is ignored
    tm.handle_frame(Frame(f"file-end 1 {'0' * 64}", b""))
    assert len(emitted) == 1 and not tm.busy
    monkeypatch.undo()  # room again
    tm.handle_frame(Frame("file-begin 2 1 alice b.txt", b""))
    tm.handle_frame(Frame("file-data 2", b"z"))
    tm.handle_frame(Frame(f"file-end 2 {hashlib.sha256(b'z').hexdigest()}", b""))
    assert (received / "b.txt").read_bytes() == b"z"


def test_close_aborts_running_sends(tmp_path: Path) -> None:
    out = bytearray()
    emitted: list[str] = []
    send = tmp_path / "send"
    send.mkdir()
    (send / "a").write_bytes(b"x" * 300)
    tm = TransferManager(send, tmp_path / "r", out.extend, lambda: 0, emitted.append, chunk=100)
    tm.send_file("a")
    assert tm.handle_line("OK sendfile 7 a")
    assert not tm.handle_line("OK")
    out.clear()
    tm.out_queued = lambda: len(out)
    tm.out_limit = 150
    tm.pump()
    assert Parser().feed(bytes(out)) == [Frame("file-data 7", b"x" * 100), Frame("file-data 7", b"x" * 100)]
    out.clear()
    tm.close()
    assert Parser().feed(bytes(out)) == [Frame("file-abort 7 the sender quit", b"")]
    assert not tm.busy


def test_server_abort_stops_the_sender(tmp_path: Path) -> None:
    out = bytearray()
    emitted: list[str] = []
    (tmp_path / "send").mkdir()
    (tmp_path / "send" / "a").write_bytes(b"x" * 300)
    tm = TransferManager(tmp_path / "send", tmp_path / "r", out.extend, lambda: 0, emitted.append)
    tm.send_file("a")
    tm.handle_line("OK sendfile 3 a")
    tm.handle_frame(Frame("file-abort 3 every receiver left", b""))
    assert emitted == ['sending "a" stopped: every receiver left']
    assert not tm.busy


def test_quoted_offer_line(tmp_path: Path) -> None:
    out = bytearray()
    (tmp_path / "send").mkdir()
    (tmp_path / "send" / "it's mine.txt").write_bytes(b"abc")
    tm = TransferManager(tmp_path / "send", tmp_path / "r", out.extend, lambda: 0, lambda s: None)
    tm.send_file("it's mine.txt")
    assert shlex.split(out.decode()) == ["/sendfile", "it's mine.txt", "3"]
    tm.close()
    assert encode_frame("x", b"") == b"\x100 x\n"


def test_a_file_waiting_in_the_clients_queue_counts_as_sent_for_the_folder_watcher(tmp_path: Path) -> None:
    # a /sendfile typed while 8 files are on their way waits in the client; when the watcher then finds the file
    # settled, it must not be hinted ("ready: /sendfile") or --auto-sent a second time
    tm, emitted, _ = receiver(tmp_path)
    send = tmp_path / "send"
    send.mkdir()
    for i in range(9):
        (send / f"f{i}.bin").write_bytes(b"x" * 10)
        tm.send_file(f"f{i}.bin")
    assert tm.queued() == ["f8.bin"]
    assert all(tm.sent_before(f"f{i}.bin") for i in range(9))
    tm.close()
