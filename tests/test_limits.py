"""Budgets that need a special setting to be seen: file-descriptor exhaustion, flood control in the kit,
fairness of input slices, and the order of one sender's lines through the batched fan-out."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from conftest import DEADLINE, LineClient

from chatroom import Command, hookimpl
from chatroom.net.tcp import SLICE


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _assert_once_per_episode(text: str, port: int) -> None:
    """The pause is logged once per episode: an episode ends only when an accept succeeds ("accepting
    connections again"), which a descriptor the server freed for a moment (one of its own files) may allow;
    never two pause lines in a row, and a handful at most in 2 s (a spinning accept would log thousands)."""
    mine = [line for line in text.splitlines() if f"127.0.0.1:{port}" in line]
    marks = [("pause" if "pausing new connections" in line else "again") for line in mine
             if "pausing new connections" in line or "accepting connections again" in line]
    assert marks and marks[0] == "pause", marks
    assert all(a != b for a, b in zip(marks, marks[1:])), f"logged twice in one episode: {marks}\n{text[-3000:]}"
    assert marks.count("pause") <= 3, f"the log is flooded: {marks}\n{text[-3000:]}"


def test_out_of_file_descriptors_pauses_accepting_logs_once_and_recovers(tmp_path: Path) -> None:
    """RLIMIT_NOFILE 48 (the server keeps about 40 for itself and needs a few more for a moment while it
    starts) and 80 connects: the server neither spins nor floods its log, and accepts again once
    descriptors are free."""
    data = tmp_path / "data"
    proc = subprocess.Popen(
        ["prlimit", "--nofile=48:48", "chatroom-server", "--port", "0", "--web-port", "off", "--quiet",
         "--data-dir", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    socks: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip().rsplit(":", 1)[1])
        for _ in range(80):  # more than the server can hold: the rest wait in its listen backlog
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=DEADLINE))
        log = data / "chatroom.log"
        deadline = time.monotonic() + DEADLINE
        while "pausing new connections" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the server never ran out of descriptors"
            time.sleep(0.05)
        cpu = _cpu_seconds(proc.pid)
        time.sleep(2.0)  # measuring a duration: the server must stay idle while it cannot accept
        assert _cpu_seconds(proc.pid) - cpu < 0.5, "accepting spins while out of descriptors"
        _assert_once_per_episode(log.read_text(), port)
        for sock in socks:  # every descriptor comes back (the pending ones are accepted, then see their EOF)
            sock.close()
        late = LineClient("127.0.0.1", port)
        try:
            assert late.next_line().startswith("* Welcome to chatroom")
        finally:
            late.close()
    finally:
        for sock in socks:
            sock.close()
        proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def _echo_plugin():
    return type("Echo", (), {"register_commands": hookimpl(
        lambda self: [Command("echo", lambda ctx, args: ctx.reply("echo " + ctx.text), raw=True)])})()


def test_flood_control_in_the_kit_slows_a_burst_and_the_clock_lets_it_through(chatroom_room) -> None:
    room = chatroom_room(plugins=[("echo", _echo_plugin())], flood_rate=10.0, flood_burst=5.0)
    alice = room.join()
    burst = b"".join(b"/echo %d\n" % i for i in range(20))
    got = alice.send_bytes(burst)
    assert got == [f"echo {i}" for i in range(5)], "the burst is cut at the bucket's size"
    room.advance(2.0)  # 10 tokens per second: the other 15 lines go through, in order
    assert alice.received[-15:] == [f"echo {i}" for i in range(5, 20)]


def test_a_flood_from_one_client_is_served_one_slice_per_pass(chatroom_room) -> None:
    room = chatroom_room(plugins=[("echo", _echo_plugin())])
    alice, bob = room.join("alice"), room.join("bob")
    alice.sock.inbound += b"".join(b"/echo %d\n" % i for i in range(SLICE * 3))
    bob.sock.inbound += b"/echo bob\n"
    for _ in range(2):  # two loop passes: bob is served in the first, alice only a slice per pass
        room._pass()
    assert "echo bob" in bob.received
    assert len([line for line in alice.received if line.startswith("echo ")]) == 2 * SLICE
    room.settle()
    assert alice.received[-1] == f"echo {SLICE * 3 - 1}"


def test_one_senders_chat_and_private_lines_keep_their_order(chatroom_room) -> None:
    room = chatroom_room()
    alice, bob = room.join("alice"), room.join("bob")
    alice.send_bytes(b"one\n/msg bob two\nthree\n/msg bob four\n")
    assert bob.received[-4:] == ["alice: one", "alice (private): two", "alice: three", "alice (private): four"]


def test_out_queue_sends_within_a_limit_and_survives_partial_sends_of_its_tail() -> None:
    """A write limit that falls inside the coalesced tail, then a partial send by the kernel: the tail is
    resized in place (the crash under attack 4 of issue 8 was a view on it still alive)."""
    from chatroom.sockets.outqueue import OutQueue

    a, b = socket.socketpair()
    a.setblocking(False)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    queue = OutQueue()
    expected = b"".join(b"line %d\n" % i for i in range(20_000)) + b"x" * 100_000
    for i in range(20_000):
        queue.append(b"line %d\n" % i)
    queue.append(b"x" * 100_000)
    got = bytearray()
    for _ in range(100_000):
        if not queue.size:
            break
        try:
            queue.send_to(a, 1000)
        except BlockingIOError:
            pass
        b.setblocking(False)
        try:
            got += b.recv(1 << 20)
        except BlockingIOError:
            pass
    while len(got) < len(expected):
        got += b.recv(1 << 20)
    assert bytes(got) == expected and queue.size == 0
    a.close()
    b.close()


def test_a_timer_a_month_away_waits_in_hour_long_selects() -> None:
    """epoll refuses a wait over ~24.8 days (OverflowError on every pass, and the loop gives up after 100): a
    plugin's 30-day reminder, alone in the scheduler, must make the loop wait at most MAX_WAIT at a time."""
    from chatroom.net.loop import MAX_WAIT, Loop

    loop = Loop()
    try:
        loop.call_later(30 * 86400, lambda: None)
        assert loop.timeout() == MAX_WAIT
        assert loop.run_once(0) is False  # a real epoll pass with the timer armed
    finally:
        loop.close()
