"""End-to-end file transfer: the real ``chatroom-server`` and ``chatroom-client`` processes.

Each ``chatroom-client`` runs in line mode in its own working folder (so its
``send/`` and ``received/`` are its own). Hand-made raw socket clients (the
``server.connect(..., binary=True)`` helper from ``conftest.py``) speak the
frame protocol directly where a test needs control a real client does not
give: hostile names, stopping in mid-file, a receiver that never reads.
Every wait is on a printed line or a received event, with a deadline.
"""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from chatroom.wire import lines as protocol

DEADLINE = 20.0
MiB = 1024 * 1024


class ClientProcess:
    """A ``chatroom-client`` in line mode in folder *cwd*; stdout lines are read by a thread."""

    def __init__(self, port: int, cwd: Path, *args: str) -> None:
        self.cwd = cwd
        (cwd / "send").mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["chatroom-client", "--port", str(port), *args],
            cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, encoding="utf-8",
        )  # fmt: skip
        self.out: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    @property
    def send_dir(self) -> Path:
        return self.cwd / "send"

    @property
    def received_dir(self) -> Path:
        return self.cwd / "received"

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, test: str | Callable[[str], bool], timeout: float = DEADLINE) -> str:
        """Read output lines until one equals *test* (or satisfies it); return it."""
        pred = test if callable(test) else (lambda line: line == test)
        deadline = time.monotonic() + timeout
        start = len(self.out)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"never saw {test!r}; saw {self.out[start:][-10:]}")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self._lines.put(None)
                raise EOFError(f"output ended before {test!r}; saw {self.out[start:][-10:]}")
            self.out.append(line)
            if pred(line):
                return line

    def lines_until(self, test: str | Callable[[str], bool], timeout: float = DEADLINE) -> list[str]:
        """Like :meth:`expect`, but return the lines read before the one that matched."""
        start = len(self.out)
        ClientProcess.expect(self, test, timeout)  # not self.expect: a subclass may alias it to this
        return self.out[start:-1]

    def saw(self, test: Callable[[str], bool], timeout: float = DEADLINE) -> str:
        """Like :meth:`expect`, but a line already read also counts (for lines in any order)."""
        for line in self.out:
            if test(line):
                return line
        return self.expect(test, timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass


@pytest.fixture
def clients(server: Any, tmp_path: Path) -> Iterator[Callable[..., ClientProcess]]:
    """``clients(nick, *args)``: a ``chatroom-client`` in ``tmp_path/nick`` that has joined (killed at teardown)."""
    started: list[ClientProcess] = []

    def start(nick: str, *args: str, port: int | None = None) -> ClientProcess:
        client = ClientProcess(port or server.port, tmp_path / nick, "--name", nick, *args)
        started.append(client)
        client.expect(lambda line: line.startswith("* Welcome"))
        return client

    yield start
    for client in started:
        client.kill()


def starts(prefix: str) -> Callable[[str], bool]:
    return lambda line: line.startswith(prefix)


def join_all(watcher: Any, *nicks: str) -> None:
    """Wait until the raw client *watcher* has seen every nick in *nicks* named."""
    for nick in nicks:
        watcher.expect_where(lambda line, n=nick: line.endswith(f"is now known as {n}"), nick)


def next_frame(client: Any, timeout: float = DEADLINE) -> protocol.Frame:
    """The next frame a raw client receives (lines before it are kept in ``client.seen``)."""
    deadline = time.monotonic() + timeout
    while True:
        event = client.next_event(max(0.01, deadline - time.monotonic()))
        if isinstance(event, protocol.Frame):
            return event
        if isinstance(event, protocol.Line):
            client.seen.append(event.text)


def offer(raw: Any, name: str, size: int) -> int:
    """Offer a file from a raw client; return the transfer id from ``OK sendfile ID NAME``."""
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raw.send(f"/sendfile {quoted} {size}")
    reply = raw.expect_prefix("OK sendfile ")
    return int(reply.split()[2])


def data(tid: int, payload: bytes) -> bytes:
    return protocol.encode_frame(f"file-data {tid}", payload)


def end(tid: int, content: bytes) -> bytes:
    return protocol.encode_frame(f"file-end {tid} {hashlib.sha256(content).hexdigest()}", b"")


def files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


# -- the tests --------------------------------------------------------------------


def test_file_with_spaces_reaches_two_receivers_byte_identical(server: Any, clients: Any) -> None:
    dave = server.connect("dave")  # a person on nc: gets one line, never a frame
    bob, carol = clients("bob"), clients("carol")
    alice = clients("alice")
    join_all(dave, "bob", "carol", "alice")
    content = os.urandom(6 * MiB + 123)
    (alice.send_dir / "my report.bin").write_bytes(content)
    alice.send('/SendFile "my report.bin"')
    sent = alice.expect(starts('sent "my report.bin"'))
    assert sent.startswith(f'sent "my report.bin" ({len(content)} bytes) to ') and "MB/s" in sent
    assert {"bob", "carol"} == set(sent.split(" to ", 1)[1].split(":")[0].split(", "))
    for receiver in (bob, carol):
        line = receiver.expect(starts('received "my report.bin"'))
        assert f"({len(content)} bytes) from alice" in line and "MB/s" in line and "sha256 ok" in line
        assert (receiver.received_dir / "my report.bin").read_bytes() == content
        assert files(receiver.received_dir) == ["my report.bin"]
        assert f'* alice is sending "my report.bin" ({len(content)} bytes)' in receiver.out
    dave.expect(f'* alice is sending "my report.bin" ({len(content)} bytes)')
    dave.send("/sendfile x")
    dave.expect("ERROR usage: /sendfile NAME SIZE")  # frames cannot be typed; no binary ever came
    dave.send("/sendfile x 10")
    assert dave.expect_prefix("ERROR sendfile x: ").endswith("send /caps binary first (chatroom-client does)")
    assert dave.pending == [] and not any(isinstance(e, protocol.Frame) for e in dave.pending)


def test_two_transfers_at_once(server: Any, clients: Any) -> None:
    alice, bob, carol = clients("alice"), clients("bob"), clients("carol")
    bob.expect(lambda line: line.endswith("is now known as carol"))
    a1, a2, b1 = os.urandom(3 * MiB), os.urandom(2 * MiB + 1), os.urandom(3 * MiB + 7)
    (alice.send_dir / "a1.bin").write_bytes(a1)
    (alice.send_dir / "a2.bin").write_bytes(a2)
    (bob.send_dir / "b1.bin").write_bytes(b1)
    alice.send("/sendfile a1.bin")
    alice.send("/sendfile a2.bin")
    bob.send("/sendfile b1.bin")
    for receiver, names in ((carol, ["a1.bin", "a2.bin", "b1.bin"]), (bob, ["a1.bin", "a2.bin"]), (alice, ["b1.bin"])):
        for name in names:
            receiver.saw(starts(f'received "{name}"'))
        assert files(receiver.received_dir) == names
    for name, content in (("a1.bin", a1), ("a2.bin", a2), ("b1.bin", b1)):
        assert (carol.received_dir / name).read_bytes() == content


def test_hostile_names_land_only_as_safe_names(server: Any, clients: Any, tmp_path: Path) -> None:
    bob = clients("bob")
    mallory = server.connect("mallory", binary=True)
    bob.expect(lambda line: line.endswith("is now known as mallory"))
    hostile = ["../../x", "/etc/x", "a\x00b.txt", "..", "CON", ".bashrc"]
    expected = ["x", "x (1)", "ab.txt", "file", "_CON", "bashrc"]  # the server strips NUL from lines
    for name in hostile:
        tid = offer(mallory, name, 2)
        mallory.send_raw(data(tid, b"hi") + end(tid, b"hi"))
        next_frame(mallory)  # file-done
    for name in expected:
        bob.expect(starts(f'received "{name.split(" (")[0]}"'))
    assert files(bob.received_dir) == sorted(expected)
    assert all((bob.received_dir / n).read_bytes() == b"hi" for n in expected)
    assert not (tmp_path / "x").exists() and not (bob.cwd / "x").exists() and files(bob.cwd) == ["received", "send"]


def test_chat_crosses_the_room_during_a_transfer(server: Any, clients: Any) -> None:
    bob, carol = clients("bob"), clients("carol")
    alice = server.connect("alice", binary=True)  # a raw sender that pauses in mid-file
    bob.expect(lambda line: line.endswith("is now known as alice"))
    content = os.urandom(3 * MiB)
    tid = offer(alice, "big.bin", len(content))
    alice.send_raw(data(tid, content[: 2 * MiB]))
    alice.send("halfway there")
    bob.expect("alice: halfway there")
    carol.expect("alice: halfway there")
    bob.send("go on, alice")
    alice.expect("bob: go on, alice")
    assert files(bob.received_dir) == [f".big.bin.{tid}.part"]  # still in flight
    alice.send_raw(data(tid, content[2 * MiB :]) + end(tid, content))
    for receiver in (bob, carol):
        receiver.expect(starts('received "big.bin"'))
        assert (receiver.received_dir / "big.bin").read_bytes() == content
    assert next_frame(alice).meta == f"file-done {tid} bob,carol"


def test_sender_killed_mid_transfer_pauses_a_resumable_receiver_and_aborts_the_others(server_factory: Any,
                                                                                      clients: Any) -> None:
    stall = 3  # --file-stall-timeout: how long the stuck receiver may hold alice back before it is dropped
    server = server_factory("--file-stall-timeout", str(stall))
    bob = clients("bob", port=server.port)
    stuck = server.connect("stuck", binary=True)  # reads one chunk, then nothing: the sender stalls
    alice = clients("alice", port=server.port)
    join_all(stuck, "alice")
    (alice.send_dir / "huge.bin").write_bytes(os.urandom(64 * MiB))
    alice.send("/sendfile huge.bin")
    assert next_frame(stuck).meta.startswith("file-begin ")
    assert next_frame(stuck).meta.startswith("file-data ")  # the transfer is under way
    alice.proc.send_signal(signal.SIGKILL)
    # Usually the server reads alice's end at once. If the relay had just paused her (stuck is full), her
    # kernel still holds unsent bytes and the FIN waits behind them: the server learns she is gone only
    # when the stalled receiver is dropped (after --file-stall-timeout) and she is read again. Both are right.
    line = bob.expect(starts('"huge.bin" from alice paused at '), timeout=stall + 15)
    assert ": alice disconnected (it resumes when alice is back; /cancel " in line
    kept = files(bob.received_dir)  # bob can resume: only his hidden part file and its sidecar of verified chunks
    assert len(kept) == 2 and {Path(name).suffix for name in kept} == {".part", ".chunks"}, kept
    bob.send(f"/cancel {line.rsplit('/cancel ', 1)[1].split()[0]}")  # he gives up: nothing is left
    bob.expect(starts('discarded "huge.bin" from alice'))
    assert files(bob.received_dir) == []
    for _ in range(200):  # the stalled receiver gets the abort after the chunks queued before it
        frame = next_frame(stuck)
        if not frame.meta.startswith("file-data"):
            break
    assert frame.meta.startswith("file-abort ")
    assert frame.meta.endswith("alice disconnected") or " too slow: stuck held the transfer back" in frame.meta


def test_a_receiver_that_stalls_is_dropped_after_the_file_stall_timeout_and_the_others_get_the_file(
        server_factory: Any, clients: Any) -> None:
    server = server_factory("--file-stall-timeout", "1")
    bob = clients("bob", port=server.port)
    stuck = server.connect("stuck", binary=True)  # reads two frames, then nothing
    alice = clients("alice", port=server.port)
    join_all(stuck, "alice")
    content = os.urandom(32 * MiB)  # more than the kernel's buffers and the relay's high water hold for stuck
    (alice.send_dir / "f.bin").write_bytes(content)
    alice.send("/sendfile f.bin")
    assert next_frame(stuck).meta.startswith("file-begin ")
    bob.expect(starts('received "f.bin"'), timeout=30)
    assert (bob.received_dir / "f.bin").read_bytes() == content
    for _ in range(2000):  # stuck gets the abort after the chunks queued before it
        frame = next_frame(stuck)
        if not frame.meta.startswith("file-data"):
            break
    assert frame.meta.endswith(" too slow: stuck held the transfer back for 1 s"), frame.meta


def test_receiver_leaving_does_not_disturb_the_others(server: Any, clients: Any) -> None:
    bob = clients("bob")
    quitter = server.connect("quitter", binary=True)
    alice = clients("alice")
    join_all(quitter, "alice")
    content = os.urandom(24 * MiB)
    (alice.send_dir / "f.bin").write_bytes(content)
    alice.send("/sendfile f.bin")
    next_frame(quitter)
    next_frame(quitter)
    quitter.close()
    bob.expect(starts('received "f.bin"'))
    assert (bob.received_dir / "f.bin").read_bytes() == content
    assert alice.expect(starts('sent "f.bin"')).split(" to ")[1].startswith("bob:")


def test_oversize_file_is_refused_before_any_data_moves(server_factory: Any, clients: Any) -> None:
    small = server_factory("--max-file-size", "1000")
    watcher = small.connect("watcher", binary=True)
    bob = clients("bob", port=small.port)
    alice = clients("alice", port=small.port)
    join_all(watcher, "bob", "alice")
    (alice.send_dir / "big.bin").write_bytes(b"x" * 1001)
    alice.send("/sendfile big.bin")
    alice.expect("ERROR sendfile big.bin: 1001 bytes is over the server's limit of 1000 bytes (--max-file-size)")
    alice.send("after the refusal")
    before = watcher.expect("alice: after the refusal")
    assert before == [] and watcher.pending == []  # no notice, no frame
    bob.expect("alice: after the refusal")
    assert not any("is sending" in line for line in bob.out)
    assert files(bob.received_dir) == []


def test_watchdog_finds_slow_and_moved_files_and_auto_send_sends_once(
    server: Any, clients: Any, tmp_path: Path
) -> None:
    bob = clients("bob")
    alice = clients("alice", "--auto-send")
    watcher_alice = clients("hinted")  # no --auto-send: prints the ready hint only
    bob.expect(lambda line: line.endswith("is now known as hinted"))
    with open(alice.send_dir / "slow.txt", "wb") as f:
        f.write(b"first part, ")
        f.flush()
        (alice.send_dir / "marker1.txt").write_text("m1")
        bob.expect(starts('received "marker1.txt"'))
        assert "slow.txt" not in files(bob.received_dir)  # still open for writing: not sent
        f.write(b"second part")
    bob.expect(starts('received "slow.txt"'))
    assert (bob.received_dir / "slow.txt").read_bytes() == b"first part, second part"
    outside = tmp_path / "outside.bin"
    outside.write_bytes(os.urandom(100_000))
    os.rename(outside, alice.send_dir / "moved in.bin")
    bob.expect(starts('received "moved in.bin"'))
    (alice.send_dir / ".hidden").write_text("h")
    (alice.send_dir / "x.part").write_text("p")
    subprocess.run(["touch", str(alice.send_dir / "slow.txt")], check=True)  # same content: not again
    (alice.send_dir / "marker2.txt").write_text("m2")
    bob.expect(starts('received "marker2.txt"'))
    assert files(bob.received_dir) == ["marker1.txt", "marker2.txt", "moved in.bin", "slow.txt"]
    (watcher_alice.send_dir / "report.pdf").write_bytes(b"%PDF")
    watcher_alice.expect("send/report.pdf is ready: /sendfile report.pdf")


def _proc_stat(pid: int) -> tuple[int, int]:
    """(minor page faults, peak RSS in KiB) of process *pid*."""
    minflt = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])
    hwm = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmHWM:"))  # fmt: skip
    return minflt, hwm


def test_relay_memory_is_flat_and_reused(server: Any) -> None:
    """64 MiB through the relay: peak RSS stays small and chunk buffers are reused, not faulted in anew."""
    alice = server.connect("alice", binary=True)
    bob = server.connect("bob", binary=True)
    size = 64 * MiB
    chunk = os.urandom(MiB)
    tid = offer(alice, "flat.bin", size)
    assert next_frame(bob).meta == f"file-begin {tid} {size} alice flat.bin"
    faults0, _ = _proc_stat(server.proc.pid)

    def send() -> None:
        for _ in range(size // MiB):
            alice.send_raw(data(tid, chunk))
        alice.send_raw(end(tid, chunk * (size // MiB)))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    got = 0
    while (frame := next_frame(bob)).meta.startswith("file-data"):
        got += len(frame.payload)
    sender.join(DEADLINE)
    assert frame.meta.startswith(f"file-end {tid} ") and got == size
    faults, hwm = _proc_stat(server.proc.pid)
    assert hwm < 100 * 1024, f"server peak RSS {hwm} KiB"
    assert faults - faults0 < 100 * size // MiB, f"{faults - faults0} page faults for {size // MiB} MiB"  # ~730/MiB untuned
