"""Typing in chatroom-client's terminal UI while a room pours in chat: key-to-screen latency, lost lines.

Starts ``chatroom-server`` (port 0, flood control off, a fresh data dir),
``chatroom-client`` on a pseudo-terminal (pexpect; 120x40, TERM=xterm-256color),
and a flood sender that says ``flood N`` at ``--rate`` lines per second in
``#lobby`` (paced on a monotonic clock, in 10 ms batches). Meanwhile the
bench types into the client, one key at a time: it writes a key to the pty,
then reads the pty until that key's character is drawn, and records the time
between the two (the key-to-screen latency: prompt_toolkit reading the key,
redrawing the prompt, the pty). Keys are upper-case letters that no chat line
and no escape sequence the client writes contains (``EFILNOQUVWXYZ``), 13 per
line, then Enter (the line is sent, and echoed above the prompt: the bench
waits for that echo; a listener checks the line arrives); so a key is "on
screen" exactly when its letter first appears in the output after it was
written.

Each run does a quiet phase (no flood: the baseline, same run) then the flood
phase. At the end it waits (bounded) until every ``flood N`` line was written
to the terminal and every typed line reached the listener; the lost counts
are what never came.

    python bench/client_typing.py [--rate 1000] [--seconds 10] [--runs 3] [--keys-per-second 20]

Prints one line per phase and run (p50, p90, p99, max in ms; lines lost), then
the medians over runs. Run by hand, never under pytest; one benchmark at a time.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pexpect

KEYS = "EFILNOQUVWXYZ"
DEADLINE = 30.0


def start_server(data: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        ["chatroom-server", "--port", "0", "--data-dir", str(data), "--flood-rate", "0", "--max-per-address", "0",
         "--history-on-join", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if not first.startswith("chatroom-server listening on "):
        proc.kill()
        raise SystemExit(f"server did not start: {first!r}")
    return proc, int(first.strip().rsplit(":", 1)[1])


class Peer:
    """A plain line client (the flood sender, the listener)."""

    def __init__(self, port: int, nick: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.lines: list[str] = []
        self.send(f"/nick {nick}")
        self.wait_line(lambda line: line == f"OK nick {nick}")

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\n")

    def pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if ready:
            data = self.sock.recv(1 << 20)
            if not data:
                raise SystemExit("server closed a peer")
            self.buf += data
            *done, self.buf = self.buf.split(b"\n")
            self.lines += [d.decode("utf-8", "replace") for d in done]

    def wait_line(self, test, timeout: float = DEADLINE) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            while seen < len(self.lines):
                if test(self.lines[seen]):
                    return
                seen += 1
            self.pump(0.1)
        raise SystemExit("a peer never saw the line it waited for")


def flood(port: int, rate: float, seconds: float, first: int, stop: threading.Event) -> int:
    """Say ``flood N`` at *rate* lines/s for *seconds*; returns how many were sent."""
    peer = Peer(port, "flooder")
    n = 0
    start = time.monotonic()
    while not stop.is_set():
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        due = int(elapsed * rate)
        if due > n:
            peer.sock.sendall(b"".join(f"flood {first + i}\n".encode() for i in range(n, due)))
            n = due
        time.sleep(0.01)
    # /quit and read until the server closes: closing with unread input would reset the connection
    # and could throw away the last lines before the server read them.
    peer.send("/quit")
    deadline = time.monotonic() + DEADLINE
    try:
        while time.monotonic() < deadline:
            peer.pump(0.5)
    except SystemExit:
        pass
    peer.sock.close()
    return n


class Screen:
    """The client's pty output, read in a loop with timestamps."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child
        self.out = bytearray()

    def read_until(self, test, timeout: float = DEADLINE) -> float:  # type: ignore[no-untyped-def]
        """Read until ``test(self.out)``; the monotonic time it became true."""
        deadline = time.monotonic() + timeout
        fd = self.child.child_fd
        while not test(self.out):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the screen never showed what was waited for")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                try:
                    self.out += os.read(fd, 1 << 20)
                except OSError:
                    raise SystemExit("the client closed its terminal") from None
        return time.monotonic()

    def drain(self, seconds: float) -> None:
        """Keep reading for *seconds*, as a terminal does (a pty nobody reads blocks the client's writes)."""
        end = time.monotonic() + seconds
        fd = self.child.child_fd
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                try:
                    self.out += os.read(fd, 1 << 20)
                except OSError:
                    raise SystemExit("the client closed its terminal") from None


def type_for(screen: Screen, seconds: float, keys_per_second: float, listener: Peer) -> tuple[list[float], int]:
    """Type for *seconds*; returns the key latencies (s) and how many lines were sent."""
    latencies: list[float] = []
    lines = 0
    gap = 1.0 / keys_per_second
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for ch in KEYS:
            start = len(screen.out)
            t0 = time.monotonic()
            screen.child.send(ch)
            t1 = screen.read_until(lambda out, s=start, c=ch.encode(): c in out[s:])
            latencies.append(t1 - t0)
            screen.drain(gap - (time.monotonic() - t0))
        start = len(screen.out)
        screen.child.send("\r")
        lines += 1
        # The echo of the sent line holds every key letter: wait for it before the next key.
        screen.read_until(lambda out, s=start: KEYS.encode() in out[s:])
    return latencies, lines


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def one_run(args: argparse.Namespace) -> dict[str, tuple[float, ...]]:
    tmp = Path(tempfile.mkdtemp(prefix="chatroom-typing-"))
    server, port = start_server(tmp / "server")
    child = None
    try:
        env = {**os.environ, "TERM": "xterm-256color", "XDG_DATA_HOME": str(tmp / "data")}
        env.pop("NO_COLOR", None)
        child = pexpect.spawn("chatroom-client", ["--name", "typist", "--port", str(port)], cwd=str(tmp), env=env,
                              dimensions=(40, 120))
        child.delaybeforesend = None  # pexpect sleeps 50 ms before every send by default
        screen = Screen(child)
        screen.read_until(lambda out: b"#lobby>" in out)
        listener = Peer(port, "listener")
        results: dict[str, tuple[float, ...]] = {}
        total_sent = 0
        for phase, rate in (("quiet", 0.0), ("flood", args.rate)):
            stop = threading.Event()
            sent: list[int] = []
            first = total_sent
            flooder = threading.Thread(target=lambda: sent.append(flood(port, rate, args.seconds, first, stop)))
            if rate:
                flooder.start()
            lat, lines = type_for(screen, args.seconds, args.keys_per_second, listener)
            stop.set()
            if rate:
                flooder.join()
            n = sent[0] if sent else 0
            total_sent += n
            want = {f"flood {i}" for i in range(first, first + n)}
            text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", bytes(screen.out)).decode("utf-8", "replace")

            def all_shown(out: bytearray) -> bool:
                nonlocal text
                text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", bytes(out)).decode("utf-8", "replace")
                return all(w in shown for w in want) if (shown := set(re.findall(r"flood \d+", text))) else not want

            try:
                screen.read_until(all_shown, timeout=DEADLINE)
            except TimeoutError:
                pass
            shown = set(re.findall(r"flood \d+", text))
            lost = len(want - shown)
            if lost:
                missing = sorted(want - shown, key=lambda w: int(w.split()[1]))
                print(f"  not on screen: {missing[:10]}", flush=True)
                if args.dump:
                    before = f"flood {int(missing[0].split()[1]) - 1}".encode()
                    at = bytes(screen.out).find(before)
                    print(f"  around it: {bytes(screen.out)[at - 100:at + 400]!r}", flush=True)
            typed = KEYS
            try:
                listener.wait_line(lambda line, k=lines: sum(1 for x in listener.lines if x == f"typist: {typed}") >= k,
                                   timeout=DEADLINE)
            except SystemExit:
                pass
            got = sum(1 for x in listener.lines if x == f"typist: {typed}")
            listener.lines = [x for x in listener.lines if x != f"typist: {typed}"]
            results[phase] = (pct(lat, 50), pct(lat, 90), pct(lat, 99), max(lat) * 1000, len(lat), n, lost,
                              lines - got)
            print(f"{phase:5}: keys {len(lat)}, latency p50 {results[phase][0]:.1f} ms, p90 {results[phase][1]:.1f}, "
                  f"p99 {results[phase][2]:.1f}, max {results[phase][3]:.1f}; chat lines {n} at {rate:g}/s, "
                  f"lost on screen {lost}; typed lines {lines}, lost {lines - got}", flush=True)
        return results
    finally:
        if child is not None:
            child.terminate(force=True)
        server.kill()
        server.wait()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rate", type=float, default=1000.0, help="incoming chat lines per second (default 1000)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds per phase (default 10)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dump", action="store_true", help="print the terminal output around a lost line")
    p.add_argument("--keys-per-second", type=float, default=20.0, help="typing speed (default 20: fast typing)")
    args = p.parse_args()
    print(f"# {' '.join(sys.argv)}; python {sys.version.split()[0]}, {os.cpu_count()} cores", flush=True)
    runs = [one_run(args) for _ in range(args.runs)]
    for phase in ("quiet", "flood"):
        med = [statistics.median(r[phase][i] for r in runs) for i in range(8)]
        print(f"median {phase}: p50 {med[0]:.1f} ms, p90 {med[1]:.1f}, p99 {med[2]:.1f}, max {med[3]:.1f}; "
              f"lost chat lines {med[6]:g} of {med[5]:g}; lost typed lines {med[7]:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
