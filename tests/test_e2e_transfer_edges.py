"""File transfers at their edges, end to end: the real ``chatroom-server`` and ``chatroom-client`` processes.

What a user meets first when many files go at once, a folder cannot be written, a receiver gives up, or a
name is long: every file arrives or the user is told plainly why, and no message contradicts another. The
tests synchronise on printed lines, never on sleeps.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import subprocess
from pathlib import Path
from typing import Any

from test_e2e_transfer import DEADLINE, ClientProcess, clients, files, next_frame, starts  # noqa: F401 - fixture

from chatroom.wire.lines import encode_frame

MiB = 1024 * 1024


def test_more_files_than_the_server_keeps_open_wait_in_the_client_and_all_arrive(server: Any, clients: Any) -> None:
    """The server refuses a sender's ninth open transfer; the client queues the rest instead of losing them
    (``--auto-send`` dropping a folder of twelve files used to send eight)."""
    bob = clients("bob")
    alice = clients("alice")
    bob.expect(lambda line: line.endswith("is now known as alice"))
    contents = {f"f{i}.bin": os.urandom(MiB + i) for i in range(11)}
    for name, content in contents.items():
        (alice.send_dir / name).write_bytes(content)
    for name in contents:
        alice.send(f"/sendfile {name}")
    waits = alice.expect(starts('sendfile: "f8.bin" waits: 8 files are on their way'))
    assert '/cancel "f8.bin" drops it' in waits
    alice.send('/cancel "f10.bin"')
    alice.expect('"f10.bin" will not be sent')
    for name in [n for n in contents if n != "f10.bin"]:
        bob.saw(starts(f'received "{name}"'), 30)
        assert (bob.received_dir / name).read_bytes() == contents[name]
    assert not any("ERROR" in line for line in alice.out), alice.out
    assert "f10.bin" not in files(bob.received_dir)


def test_a_received_folder_that_cannot_be_made_is_one_line_and_exit_2(server: Any, tmp_path: Path) -> None:
    """``--received-dir`` naming a file (or a folder that cannot be made) is a usage mistake: one line on stderr,
    exit 2, no traceback (before: a FileExistsError traceback once connected)."""
    (tmp_path / "taken").write_text("not a folder")
    for option in ("--received-dir", "--send-dir"):
        done = subprocess.run(["chatroom-client", "--port", str(server.port), "--name", "bob", option, "taken"],
                              cwd=tmp_path, input="", capture_output=True, text=True, timeout=DEADLINE)
        assert done.returncode == 2, done
        assert done.stderr == f"chatroom-client: {option} taken: cannot make that folder: a file has that name\n"


def raw_receiver(server: Any) -> Any:
    """bob, a raw client that can resume and reads only what the test asks for (the transfer stays in flight)."""
    bob = server.silent_client(rcvbuf=65536)
    bob.expect_prefix("* Welcome")
    for line in ("/caps binary", "/caps resume", "/nick bob"):
        bob.send(line)
    bob.expect("OK nick bob")
    return bob


def cancel_as_it_begins(bob: Any, name: str, reason: str) -> None:
    """The raw receiver *bob* gives up on *name* for good as soon as its token comes (``file-chunks``)."""
    frame = next_frame(bob)
    while not frame.meta.startswith("file-chunks "):
        frame = next_frame(bob)
    token = frame.meta.split()[2]
    bob.send_raw(encode_frame(f"file-cancel {token} {reason}", b""))
    bob.expect(f"OK cancel {token} {name}")  # reading on: a receiver's full queue may hold its input back


def test_the_only_receiver_giving_up_ends_the_send_with_one_line_and_no_record(server: Any, clients: Any) -> None:
    """A receiver that gives up for good (``file-cancel``: its disk is full, or /cancel) while the file moves: the
    sender hears once that it stopped and why, and keeps no record to resume (before: ``paused ... it resumes when
    the receivers are back`` and at once ``offer ... ended``, two lines that contradict each other)."""
    bob = raw_receiver(server)
    alice = clients("alice")
    (alice.send_dir / "big.bin").write_bytes(os.urandom(24 * MiB))
    alice.send("/sendfile big.bin")
    cancel_as_it_begins(bob, "big.bin", "disk full")
    stopped = alice.expect(starts('sending "big.bin" '))
    assert stopped == 'sending "big.bin" stopped: cancelled by bob: disk full'
    alice.send("/transfers")
    assert alice.expect(starts("transfers: ")) == "transfers: none"
    assert not list(alice.send_dir.glob(".*.send"))
    assert not [line for line in alice.out if "ended" in line or "paused" in line], alice.out


def test_offers_waiting_for_answers_when_the_server_restarts_are_said_to_have_ended(server_factory: Any,
                                                                                  tmp_path: Path) -> None:
    """The server restarts while an offer waits for its receiver's answer: nothing can resume it (no receiver
    took it yet), so both ends are told it ended and how to offer it again (before: it vanished without a word,
    and the sender waited for an answer that could never come)."""
    server = server_factory()
    port, data_dir = server.port, server.data_dir
    alice = ClientProcess(port, tmp_path / "alice", "--name", "alice", "--reconnect")
    alice.expect(starts("* Welcome"))
    bob = ClientProcess(port, tmp_path / "bob", "--name", "bob", "--reconnect", "--accept-files", "ask")
    try:
        alice.expect(lambda line: line.endswith("is now known as bob"))
        (alice.send_dir / "my notes.txt").write_bytes(os.urandom(200_000))
        alice.send('/sendfile "my notes.txt"')
        tid = bob.expect(starts('alice offers "my notes.txt"')).rsplit(" ", 1)[1]
        alice.expect(starts('* offering "my notes.txt"'))
        server.stop()
        assert alice.expect(starts('offer of "my notes.txt" ended: ')) == \
            "offer of \"my notes.txt\" ended: connection to server lost (/sendfile 'my notes.txt' offers it again)"
        assert bob.expect(starts(f"offer {tid} ")) == \
            f'offer {tid} of "my notes.txt" from alice ended: connection to server lost'
        server_factory("--port", str(port), data_dir=data_dir)
        alice.expect(starts("* reconnected"))
        alice.send("/transfers")  # nothing waits for an answer that cannot come
        assert alice.expect(starts("transfers: ")) == "transfers: none"
    finally:
        alice.kill()
        bob.kill()


def test_a_file_written_after_it_was_offered_is_not_sent_as_the_old_one(server: Any, tmp_path: Path) -> None:
    """alice's file changes between her offer (its hash list) and bob's answer: her client stops at the first
    chunk and says why, bob hears why (before: every byte went, alice read ``sent "f.bin" ... sha256 ...``, bob a
    line per chunk that did not match, and only the resend found the change)."""
    alice = ClientProcess(server.port, tmp_path / "alice", "--name", "alice")
    alice.expect(starts("* Welcome"))
    bob = ClientProcess(server.port, tmp_path / "bob", "--name", "bob", "--accept-files", "ask")
    try:
        alice.expect(lambda line: line.endswith("is now known as bob"))
        (alice.send_dir / "f.bin").write_bytes(os.urandom(8 * MiB))
        alice.send("/sendfile f.bin")
        bob.expect(starts('alice offers "f.bin"'))
        with open(alice.send_dir / "f.bin", "r+b") as file:  # written in place: same size, new bytes
            file.write(os.urandom(MiB))
            os.utime(file.fileno(), ns=(1, 1))  # a time no write keeps: file systems with coarse clocks too
        bob.send("/accept")
        assert alice.expect(starts('sending "f.bin" ')) == \
            'sending "f.bin" cancelled: the file changed since it was offered'
        assert bob.expect(starts('discarded "f.bin"')) == \
            'discarded "f.bin" from alice: cancelled by alice: the file changed since it was offered'
        assert not [line for line in bob.out if "did not match" in line]
        assert files(bob.received_dir) == []
    finally:
        alice.kill()
        bob.kill()


def test_chunks_that_do_not_match_their_hashes_are_one_line_not_one_each(server: Any, clients: Any) -> None:
    """A sender whose chunks do not match the hash list it announced (a hostile one, or a file changed under it):
    the receiver says so once per attempt, with the count (before: a line per chunk, 1,024 for a GiB)."""
    bob = clients("bob")
    mallory = server.connect("mallory", binary=True)
    mallory.send("/caps resume")
    mallory.expect("OK caps binary resume")
    chunk, content = 65536, os.urandom(4 * 65536)
    hashes = os.urandom(32 * 4)  # no chunk matches
    mallory.send_raw(encode_frame(f"file-announce {len(content)} {chunk} {hashlib.sha256(content).hexdigest()} x.bin",
                                  hashes))
    tid = mallory.expect_prefix("OK sendfile ").split()[2]
    for i in range(4):
        mallory.send_raw(encode_frame(f"file-data {tid} {i}", content[i * chunk:(i + 1) * chunk]))
    mallory.send_raw(encode_frame(f"file-end {tid} {hashlib.sha256(content).hexdigest()}", b""))
    bob.expect('"x.bin" from mallory: 4 chunks did not match their SHA-256; asking for the rest')
    assert [line for line in bob.out if "did not match" in line] == [
        'chunk 0 of "x.bin" did not match its SHA-256: it is asked for again',
        '"x.bin" from mallory: 4 chunks did not match their SHA-256; asking for the rest']


def test_a_file_sent_before_it_settled_is_neither_hinted_nor_auto_sent_again(server: Any, clients: Any) -> None:
    """``/sendfile x`` typed as soon as x lands in send/: the watcher, finding x settled a moment later, neither
    says ``send/x is ready: /sendfile x`` (it went) nor, with --auto-send, sends it a second time."""
    bob = clients("bob")
    hinting = clients("alice", "--settle", "0.3")
    auto = clients("carol", "--settle", "0.3", "--auto-send")
    bob.expect(lambda line: line.endswith("is now known as carol"))
    for person in (hinting, auto):
        (person.send_dir / f"{person.cwd.name}.bin").write_bytes(os.urandom(300_000))
        person.send(f"/sendfile {person.cwd.name}.bin")
        person.expect(starts(f'sent "{person.cwd.name}.bin"'))
        (person.send_dir / "later.bin").write_bytes(os.urandom(1000))  # the watcher reports in order
    hinting.expect("send/later.bin is ready: /sendfile later.bin")
    assert not [line for line in hinting.out if "alice.bin is ready" in line]
    bob.expect(starts('received "later.bin" (1000 bytes) from carol'))
    assert len([line for line in bob.out if line.startswith('received "carol')]) == 1, bob.out
    assert len([line for line in auto.out if line.startswith('sent "carol.bin"')]) == 1, auto.out


class LimitedClient(ClientProcess):
    """A ``chatroom-client`` whose files may grow to *limit* bytes (``RLIMIT_FSIZE``, soft: a write past it fails
    with EFBIG, as on a full disk), until :meth:`make_room`."""

    def __init__(self, port: int, cwd: Path, limit: int, *args: str) -> None:
        real = subprocess.Popen

        def limited(*a: Any, **kw: Any) -> Any:
            return real(*a, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY)),
                        **kw)

        subprocess.Popen = limited  # type: ignore[misc]
        try:
            super().__init__(port, cwd, *args)
        finally:
            subprocess.Popen = real  # type: ignore[misc]

    def make_room(self) -> None:
        resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def test_a_full_disk_pauses_a_file_arriving_and_resume_takes_the_rest(server_factory: Any, tmp_path: Path) -> None:
    """No room left in received/ (the part file cannot grow): the file pauses, keeping what arrived, the sender
    hears why, and ``/resume`` fetches only the rest once there is room (before: the part file was discarded and
    the offer cancelled for good, ``discarded "f.bin" from alice: disk full``)."""
    server = server_factory("--flood-rate", "0")
    size = 24 * MiB
    bob = LimitedClient(server.port, tmp_path / "bob", 8 * MiB, "--name", "bob")
    bob.expect(starts("* Welcome"))
    alice = ClientProcess(server.port, tmp_path / "alice", "--name", "alice")
    try:
        bob.expect(lambda line: line.endswith("is now known as alice"))
        content = os.urandom(size)
        (alice.send_dir / "f.bin").write_bytes(content)
        alice.send("/sendfile f.bin")
        paused = bob.expect(starts('"f.bin" from alice paused at '))
        match = re.fullmatch(r'"f.bin" from alice paused at (\d+)%: no room left in received \(File too large\); '
                             r"make room, then /resume ([0-9a-f]{8})", paused)
        assert match and 0 < int(match[1]) < 50, paused
        assert alice.expect(starts('sending "f.bin" ')).startswith(
            'sending "f.bin" paused: bob: no room left (it resumes when the receivers are back')
        assert [p.name for p in bob.received_dir.iterdir() if p.name.endswith(".part")]  # what arrived is kept
        bob.make_room()
        bob.send(f"/resume {match[2]}")
        line = alice.expect(starts('resumed "f.bin"'), 60)
        assert bob.expect(starts('received "f.bin"'), 60).endswith("this time)")
        assert (bob.received_dir / "f.bin").read_bytes() == content
        resent = int(re.search(r"sent the missing (\d+) bytes", line)[1])  # type: ignore[index]
        assert resent <= size - 4 * MiB, line  # the chunks bob had were not sent again
    finally:
        alice.kill()
        bob.kill()
