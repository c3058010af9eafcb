"""The receiving side of a resumable transfer on disk (chatroom.client.journal.Incoming and its sidecar,
chatroom.client.chunklog.ChunkLog), without a socket:
verified chunks are recorded in the sidecar only through the sync thread, after the part file was flushed;
a chunk that does not hash right is never recorded; a failing disk is reported, not swallowed; and what a
restart reads back counts only the chunks that still hash right."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from pathlib import Path

import pytest

from chatroom.client import chunklog
from chatroom.client.journal import Incoming, SendRecord, load_incoming, load_sends

CHUNK = 4096


def make(folder: Path, content: bytes) -> Incoming:
    hashes = b"".join(hashlib.sha256(content[i:i + CHUNK]).digest() for i in range(0, len(content), CHUNK))
    return Incoming.create(folder, token=secrets.token_hex(16), name="f.bin", sender="alice", size=len(content),
                           chunk=CHUNK, sha256=hashlib.sha256(content).hexdigest(), hashes=hashes)


def recorded(incoming: Incoming) -> list[int]:
    return [int(line) for line in incoming.sidecar.read_text().splitlines()[1:]]


def test_chunks_are_recorded_by_the_sync_thread_only_when_they_hashed_right(tmp_path: Path) -> None:
    content = os.urandom(10 * CHUNK + 100)
    incoming = make(tmp_path, content)
    assert incoming.write(0, content[:CHUNK]) is True
    assert incoming.write(2, b"\0" * CHUNK) is False  # zero-filled: not the chunk the hash list names
    assert incoming.write(1, content[CHUNK:CHUNK + 100]) is None  # pieces of one chunk, in order
    assert incoming.write(1, content[CHUNK + 100:2 * CHUNK]) is True
    assert recorded(incoming) == []  # a batch waits for SYNC_BYTES or SYNC_SECONDS
    incoming.log.flush()
    assert recorded(incoming) == [0, 1]
    assert incoming.missing() == list(range(2, 11))
    for index in range(2, 11):
        incoming.write(index, content[index * CHUNK:(index + 1) * CHUNK])
    incoming.log.sync()  # handed to the sync thread; close() waits for it
    incoming.close()
    assert sorted(recorded(incoming)) == list(range(11))
    (again,) = load_incoming(tmp_path)
    assert again.verify() == []
    dest = again.finish(tmp_path)
    assert dest.read_bytes() == content and sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_a_failing_disk_is_reported_by_the_next_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    content = os.urandom(2 * CHUNK)
    incoming = make(tmp_path, content)

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(chunklog.os, "fdatasync", broken)
    incoming.write(0, content[:CHUNK])
    incoming.log.sync()  # the batch fails on the sync thread...
    with pytest.raises(OSError, match="Input/output error"):
        incoming.log.flush()  # ...and the loop hears of it
    assert recorded(incoming) == []  # nothing counts that was not flushed
    incoming.close()


def test_a_restart_trusts_only_chunks_that_still_hash_right(tmp_path: Path) -> None:
    content = os.urandom(4 * CHUNK)
    incoming = make(tmp_path, content)
    for index in range(3):
        incoming.write(index, content[index * CHUNK:(index + 1) * CHUNK])
    incoming.close()  # waits for nothing: the batch is not handed over yet, so it is lost, as in a crash
    assert recorded(incoming) == []
    incoming = load_incoming(tmp_path)[0]
    for index in range(3):
        incoming.write(index, content[index * CHUNK:(index + 1) * CHUNK])
    incoming.log.flush()
    incoming.close()
    with open(incoming.part, "r+b") as part:  # a chunk damaged on the disk, and one claimed but never written
        part.seek(CHUNK + 7)
        part.write(b"\0")
    with open(incoming.sidecar, "a") as side:
        side.write("3\n")
    again = load_incoming(tmp_path)[0]
    assert sorted(again.verified) == [0, 1, 2, 3]
    assert again.verify() == [1, 3]
    assert again.missing() == [1, 3] and recorded(again) == [0, 2]
    again.close()


@pytest.mark.parametrize("name", ["n" * 240 + ".bin", "sub/dir.bin", "é" * 120 + ".txt"])
def test_a_send_record_is_written_for_long_names_and_files_in_subfolders(tmp_path: Path, name: str) -> None:
    """A sender's record is named after the file's safe name: a 240-byte name (a file system takes 255, the record
    adds 39) or a file in a subfolder of send/ still gets one, and it keeps the name whole for a resend."""
    (tmp_path / "sub").mkdir()
    token = secrets.token_hex(16)
    record = SendRecord.create(tmp_path, token, name, 10, 1, 65536, "0" * 64, b"\1" * 32)
    assert record.path.parent == tmp_path and record.path.exists()
    (loaded,) = load_sends(tmp_path)
    assert (loaded.token, loaded.name) == (token, name)
