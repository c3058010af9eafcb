"""Files in chatroom-client's terminal UI, as a person sees them (issue 12): the consent prompt,
/accept alone, /decline, /transfers, /cancel of a file arriving, and a progress bar that shortens at
50 columns instead of vanishing.

The real ``chatroom-server`` and ``chatroom-client`` on a pseudo-terminal (:class:`screen.Term`:
pexpect plus pyte); the sender is a raw frame client. Every wait is bounded and synchronised on the
screen or on what the sender receives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from screen import Term
from test_e2e_transfer import MiB, data, end


@pytest.fixture
def term(server: Any, tmp_path: Path) -> Iterator[Callable[..., Term]]:
    started: list[Term] = []

    def start(name: str = "alice", *extra: str, cols: int = 80) -> Term:
        t = Term(["--name", name, "--port", str(server.port), "--no-timestamps", *extra], tmp_path / name, cols=cols)
        started.append(t)
        t.wait_for(r"^#lobby>", "the prompt")
        return t

    yield start
    for t in started:
        t.close()


def test_an_offer_is_asked_on_a_terminal_and_answered_with_accept_alone_or_decline(server: Any, term: Any,
                                                                                  tmp_path: Path) -> None:
    sam = server.connect("sam", binary=True)
    alice = term(cols=100)
    sam.expect_where(lambda line: line.endswith("is now known as alice"), "alice")
    sam.send("/sendfile notes.txt 3")
    match = alice.wait_for(r'sam offers "notes\.txt" \(3 bytes\): /accept (\d+) or /decline \1$', "the offer")
    tid = int(match.group(1))
    alice.type("/transfers\r")
    alice.wait_for(rf'^transfers: 0 out, 0 in, 1 offer\n  offer {tid} "notes\.txt" \(3 B\) from sam: '
                   rf"waiting for your answer: /accept {tid} or /decline {tid}$", "the offer in /transfers")
    alice.type("/accept\r")  # the only offer waiting
    sam.expect(f"OK sendfile {tid} notes.txt")
    sam.send_raw(data(tid, b"abc") + end(tid, b"abc"))
    alice.wait_for(r'^received "notes\.txt" \(3 bytes\) from sam: .*sha256 ok', "the file")
    assert (tmp_path / "alice" / "received" / "notes.txt").read_bytes() == b"abc"
    sam.send("/sendfile other.txt 5")
    alice.wait_for(r'sam offers "other\.txt" \(5 bytes\)', "the second offer")
    alice.type("/decline\r")
    assert sam.expect_prefix("ERROR sendfile other.txt: nobody accepted").endswith("(declined by alice)")


def test_a_file_arriving_shows_a_shortened_bar_at_50_columns_and_cancel_discards_it(
        server: Any, term: Any, tmp_path: Path) -> None:
    sam = server.connect("sam", binary=True)
    alice = term(cols=50)
    sam.expect_where(lambda line: line.endswith("is now known as alice"), "alice")
    name = "a-rather-long-file-name-for-a-narrow-terminal.bin"
    sam.send(f"/sendfile {name} {4 * MiB}")
    tid = int(alice.wait_for(r"/accept (\d+)", "the offer").group(1))
    alice.type(f"/accept {tid}\r")
    sam.expect(f"OK sendfile {tid} {name}")
    sam.send_raw(data(tid, os.urandom(MiB)))  # a quarter, then the sender pauses
    bar = alice.wait_for(r"^↓ a-rather-long.*…:\s+25%\|.*\|.*$", "a shortened progress bar").group(0)
    assert len(bar) <= 49, bar
    alice.type("/transfers\r")
    alice.wait_for(r"^transfers: 0 out, 1 in$", "/transfers")
    alice.wait(lambda: alice.shows(f"  down {tid} {name} from sam: 1.0 MiB of 4.0 MiB (25%), "),
               "the transfer in /transfers (wrapped at 50 columns)")
    alice.type(f"/cancel {tid}\r")
    alice.wait(lambda: alice.shows(f'discarded "{name}" from sam: cancelled (1048576 of 4194304 bytes)'),
               "the discard")
    received = tmp_path / "alice" / "received"
    assert sorted(os.listdir(received)) == []  # no file, no .part
    sam.send_raw(data(tid, os.urandom(3 * MiB)) + end(tid, b"x"))  # the rest still arrives: ignored
    sam.send("after the file")
    alice.wait_for(r"sam: after the file$", "chat after the cancelled file")
    assert sorted(os.listdir(received)) == []


def test_ctrl_c_three_times_says_the_transfers_were_interrupted(server: Any, term: Any, tmp_path: Path) -> None:
    """The third Ctrl-C while quitting ends the files still arriving and says why: interrupted by Ctrl-C (before:
    ``cancelled``, as if someone had cancelled it, or ``connection closed``)."""
    sam = server.connect("sam", binary=True)
    alice = term(cols=100)
    sam.expect_where(lambda line: line.endswith("is now known as alice"), "alice")
    sam.send(f"/sendfile big.bin {4 * MiB}")
    tid = int(alice.wait_for(r"/accept (\d+)", "the offer").group(1))
    alice.type(f"/accept {tid}\r")
    sam.expect(f"OK sendfile {tid} big.bin")
    sam.send_raw(data(tid, os.urandom(MiB)))  # a quarter, then the sender pauses
    alice.wait_for(r"^↓ big.bin.*25%", "the progress bar")
    alice.type("\x03")
    alice.wait_for(r"Ctrl-C again within 2 s quits", "the first Ctrl-C")
    alice.type("\x03")
    alice.wait_for(r"^waiting for file transfers to finish", "the quit waiting for the file")
    alice.type("\x03")
    assert alice.exit_status() == 0
    assert alice.shows('discarded "big.bin" from sam: interrupted (Ctrl-C)'), alice.text()
