"""chatroom-client's file side end to end (issue 12): --auto-send sends a file once, whole; /transfers,
/cancel, /accept and /decline; a server shutting down during a transfer.

The real ``chatroom-server`` and ``chatroom-client`` console scripts in line (pipe) mode, with
``ClientProcess`` from ``test_e2e_transfer``; every wait is on a printed line, with a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from test_e2e_transfer import MiB, ClientProcess, clients, data, end, files, next_frame, starts  # noqa: F401 - clients: fixture


def test_auto_send_sends_a_file_appended_in_five_steps_once_whole(server: Any, clients: Any) -> None:
    bob = clients("bob")
    alice = clients("alice", "--auto-send", "--settle", "0.5")
    bob.expect(lambda line: line.endswith("is now known as alice"))
    log = alice.send_dir / "log.txt"
    for step in range(5):  # each step opens, appends and closes, 0.1 s apart (under --settle)
        with open(log, "ab") as f:
            f.write(b"step %d\n" % step)
        time.sleep(0.1)  # a writer's pace, not a synchronisation
    bob.expect(starts('received "log.txt" (35 bytes) from alice'))
    assert (bob.received_dir / "log.txt").read_bytes() == log.read_bytes()
    (alice.send_dir / "marker.txt").write_text("m")
    bob.expect(starts('received "marker.txt"'))  # events are handled in order: log.txt was not sent again
    assert sum(line.startswith('received "log.txt"') for line in bob.out) == 1
    assert files(bob.received_dir) == ["log.txt", "marker.txt"]
    with open(log, "ab") as f:
        f.write(b"step 5\n")
    alice.expect("send/log.txt changed after it was sent; not sent again (/sendfile log.txt sends it)")
    alice.send("/sendfile log.txt")
    bob.expect(starts('received "log.txt" (42 bytes) from alice'))
    assert (bob.received_dir / "log (1).txt").read_bytes() == log.read_bytes()


def test_transfers_lists_and_cancel_stops_a_send(server: Any, clients: Any) -> None:
    stuck = server.connect("stuck", binary=True)  # reads the first frames, then nothing: the send stalls
    alice = clients("alice")
    alice.send("/transfers")
    alice.expect("transfers: none")
    (alice.send_dir / "big.bin").write_bytes(os.urandom(48 * MiB))
    alice.send("/sendfile big.bin")
    begin = next_frame(stuck).meta
    tid = int(begin.split()[1])
    assert next_frame(stuck).meta == f"file-data {tid}"
    alice.send("/transfers")
    alice.expect("transfers: 1 out, 0 in")
    row = alice.expect(starts(f"  up {tid} big.bin: "))
    assert re.fullmatch(rf"  up {tid} big\.bin: [0-9.]+ MiB of 48\.0 MiB \([0-9]+%\), [0-9.]+ MB/s; /cancel {tid}", row)
    alice.send(f"/cancel {tid}")
    alice.expect('sending "big.bin" stopped: cancelled')
    alice.send("/transfers")
    alice.expect("transfers: none")
    alice.send("/cancel 99")
    alice.expect("no transfer 99 (see /transfers)")
    for _ in range(100):  # the chunks queued before the abort come first
        frame = next_frame(stuck)
        if not frame.meta.startswith("file-data"):
            break
    assert frame.meta == f"file-abort {tid} sender cancelled: cancelled"


def test_ask_mode_in_a_pipe_accept_alone_decline_and_cancel(server: Any, clients: Any) -> None:
    sam = server.connect("sam", binary=True)
    bob = clients("bob", "--accept-files", "ask")
    sam.expect_where(lambda line: line.endswith("is now known as bob"), "bob")
    bob.send("/accept")
    bob.expect("no file offer is waiting for your answer (/accept ID)")
    sam.send("/sendfile one.txt 3")
    offer = bob.expect(starts('sam offers "one.txt" (3 bytes): /accept '))
    first = offer.rsplit(" ", 1)[1]
    sam.send("/sendfile two.txt 4")
    bob.expect(starts('sam offers "two.txt" (4 bytes): /accept '))
    bob.send("/accept")
    bob.expect(starts("2 file offers are waiting for your answer ("))
    bob.send("/transfers")
    bob.expect("transfers: 0 out, 0 in, 2 offers")
    bob.expect(f'  offer {first} "one.txt" (3 B) from sam: waiting for your answer: /accept {first} or /decline {first}')
    bob.send(f"/decline {first}")
    bob.expect(starts(f"OK declined {first}"))
    bob.send("/accept")  # the only one waiting now: two.txt
    bob.expect(starts("OK accepted "))
    sam.expect_prefix("ERROR sendfile one.txt: nobody accepted")
    second = int(sam.expect_prefix("OK sendfile ").split()[2])
    sam.send_raw(data(second, b"abcd") + end(second, b"abcd"))
    bob.expect(starts('received "two.txt" (4 bytes) from sam: '))
    assert (bob.received_dir / "two.txt").read_bytes() == b"abcd"
    sam.send("/sendfile three.txt 5")
    third = bob.expect(starts('sam offers "three.txt"')).rsplit(" ", 1)[1]
    bob.send(f"/cancel {third}")  # not answered yet: declined
    bob.expect(starts(f"OK declined {third}"))
    sam.expect_prefix("ERROR sendfile three.txt: nobody accepted")


def test_a_sender_sees_the_shutdown_notice_when_the_server_stops_mid_transfer(
        server_factory: Any, tmp_path: Path) -> None:
    server = server_factory()
    bob = ClientProcess(server.port, tmp_path / "bob", "--name", "bob")
    bob.expect(starts("* Welcome"))
    alice = ClientProcess(server.port, tmp_path / "alice", "--name", "alice")
    try:
        alice.expect(starts("* Welcome"))
        bob.expect(lambda line: line.endswith("is now known as alice"))
        (alice.send_dir / "big.bin").write_bytes(os.urandom(128 * MiB))
        alice.send("/sendfile big.bin")
        bob.expect(starts('* alice is sending "big.bin"'))
        server.stop(signal.SIGTERM)
        lines = alice.lines_until(starts('sending "big.bin" paused: '))  # it can resume: its record stays
        assert "* server shutting down" in lines
        assert alice.out[-1] == ('sending "big.bin" paused: connection to server lost '
                                 '(it resumes when you are both connected again)')
        assert [p.name for p in alice.send_dir.glob(".big.bin.*.send")]
        alice.expect("connection to server lost")
        assert alice.proc.wait(10) == 1
    finally:
        bob.kill()
        alice.kill()


def test_progress_bars_shorten_on_a_narrow_terminal_instead_of_vanishing() -> None:
    from types import SimpleNamespace

    from chatroom.client.console import format_bars

    now = time.monotonic()
    item = SimpleNamespace(desc="quarterly report final.pdf from alice", done=150 * MiB, total=1000 * MiB,
                           started=now - 12, direction="recv")
    wide = format_bars([item], 120, now=now)
    assert wide.startswith("↓ quarterly report final.pdf from alice:  15%|") and wide.endswith("13.1MB/s]")
    for width, kept in ((80, "150M/0.98G [00:12<01:08, 13.1MB/s]"), (50, "150M/0.98G 13.1MB/s"), (30, "15%|▌   |")):
        line = format_bars([item], width, now=now)
        assert len(line) <= width - 1, (width, line)
        assert line.startswith("↓ quar") and "…:  15%|" in line and "▌" in line and line.endswith(kept), (width, line)
    unsized = SimpleNamespace(desc="empty.txt", done=0, total=0, started=now, direction="send")
    assert format_bars([unsized], 50, now=now).startswith("↑ empty.txt: 0.00B")
