"""Issue 17 row 7: a ``chatroom-client`` at the end of its piped input while a file trickles in (the issue's
sender: one byte every 5 s; here every 2 s, to keep the suite short), waits ``--quit-wait`` seconds for it,
then discards it and exits 0.

The real ``chatroom-server`` and ``chatroom-client`` console scripts over TCP; the sender is a raw frame
client. Synchronised on what the client prints; the trickle is paced by the wait for the client's exit
(bounded), never by a sleep.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

from conftest import DEADLINE
from test_e2e_transfer import ClientProcess, starts

from chatroom.wire.lines import encode_frame

#: The sender: one byte every this many seconds.
EVERY = 2.0
#: The client's --quit-wait: one trickled byte arrives while it waits, the next would come after it.
QUIT_WAIT = 3.0


def test_end_of_input_waits_quit_wait_for_a_trickling_file_then_discards_it_and_exits(
        server: Any, tmp_path: Path) -> None:
    bob = server.connect("bob", binary=True)
    alice = ClientProcess(server.port, tmp_path / "alice", "--name", "alice", "--quit-wait", f"{QUIT_WAIT:g}")
    try:
        bob.expect_where(lambda line: line.endswith("is now known as alice"), "alice named")
        bob.send("/sendfile slow.bin 1000")
        tid = int(bob.expect_prefix("OK sendfile ").split()[2])
        bob.send_raw(encode_frame(f"file-data {tid}", b"x"))
        alice.expect(starts('* bob is sending "slow.bin" (1000 bytes)'))
        alice.send("said before the end")
        assert alice.proc.stdin is not None
        alice.proc.stdin.close()  # end of input, the file still arriving
        alice.expect("waiting for file transfers to finish before quitting (files arriving get 3 s at most)")
        started = time.monotonic()
        trickled = 0
        for _ in range(int(2 * QUIT_WAIT / EVERY) + 2):  # bounded: a client that never ends fails below
            try:
                alice.proc.wait(EVERY)
                break
            except subprocess.TimeoutExpired:
                bob.send_raw(encode_frame(f"file-data {tid}", b"x"))
                trickled += 1
        elapsed = time.monotonic() - started
        assert alice.proc.returncode == 0, (alice.proc.returncode, alice.out)
        assert QUIT_WAIT - 0.5 <= elapsed < QUIT_WAIT + 3.0, elapsed  # not until the sender stops
        assert trickled >= 1  # bytes came while it waited, and did not make it wait longer
        discarded = alice.expect(starts('discarded "slow.bin" from bob: '))
        got = re.fullmatch(r'discarded "slow\.bin" from bob: still arriving 3 s after quitting \((\d+) of 1000 bytes\)',
                           discarded)
        assert got is not None and int(got.group(1)) >= 2, discarded
        alice.expect("OK")  # the server's answer to its /quit
        assert list((tmp_path / "alice" / "received").iterdir()) == []  # no part file left
        bob.expect("alice: said before the end")
        bob.expect_prefix("* alice left", timeout=DEADLINE)
    finally:
        alice.kill()
