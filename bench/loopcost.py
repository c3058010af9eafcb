"""The loop thread's CPU per line in, in-process, over real loopback sockets: the line protocol and the IRC door.

Usage::

    python bench/loopcost.py [--door line,irc] [--members 50] [--speakers 20] [--lines 6] [--passes 100]
                             [--repeat 7] [--no-history]

A real ``Server`` (built as ``chatroom-server --port 0 --irc-port 0 --web-port off --max-per-address 0
--flood-rate 100000 --flood-burst 100000`` builds it, with its history writer thread) and ``--members``
clients of one door, connected over loopback TCP in this process and joined to one room. Each pass, each
of ``--speakers`` clients sends ``--lines`` chat lines of ``bench/fanout.py`` (59 characters), then the
server runs ``Loop.run_once`` until every line was read and fanned out (``recv``, parse, dispatch,
history append, fan-out, ``sendmsg``); the receivers' sockets are drained outside the timing. Only
the loop thread's CPU (``time.thread_time``) inside ``run_once`` is counted, so the writer thread's work
(``bench/hotpath.py``, history part) and the clients' are not: per line in and per delivery (a line
makes ``--members`` - 1 deliveries), best of ``--repeat``.

It is what ``bench/fanout.py``'s server CPU per delivery minus the writer thread is, without the load
generator's noise: a tool to compare the loop's per-line path before and after a change, not a
figure to compare with another server (epoll waits for nothing here: every pass has work).
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

TEXT = "K01S00000001T1234567890123456789 " + "x" * 26  # the fan-out bench's 59 characters


def build(data_dir: Path, history: bool) -> Any:
    """A server on free loopback ports, as ``chatroom-server`` builds it (see the module docstring)."""
    from chatroom.server.app import Server
    from chatroom.server.claim import take
    from chatroom.server.cli import load_plugins
    from chatroom.server.flags import build_parser
    from chatroom.server.options import ServerOptions

    argv = ["--port", "0", "--irc-port", "0", "--web-port", "off", "--data-dir", str(data_dir), "--quiet",
            "--max-per-address", "0", "--flood-rate", "100000", "--flood-burst", "100000"]
    if not history:
        argv.append("--no-history")
    args = build_parser().parse_args(argv)
    options = ServerOptions.from_args(args)
    claim = take(options)
    server = Server(options, plugins=load_plugins(args, {}, options), claim=claim)
    server.start()
    return server


def drain(socks: list[socket.socket]) -> int:
    """Read whatever waits on *socks* (non-blocking); returns the bytes read."""
    total = 0
    for sock in socks:
        while True:
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                break
            if not data:
                break
            total += len(data)
    return total


def settle(server: Any, socks: list[socket.socket], until: float = 0.2) -> None:
    """Run passes (untimed) and drain the clients until nothing moves for *until* seconds."""
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < until:
        busy = server.loop.run_once(0.01)
        if drain(socks) or busy:
            quiet_since = time.monotonic()


def connect(server: Any, door: str, members: int) -> list[socket.socket]:
    """*members* clients of *door* (``line`` or ``irc``), named and joined to ``#bench``."""
    port = server.address[1] if door == "line" else server.irc_addresses[0][1]
    socks = []
    for i in range(members):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        socks.append(sock)
        nick = f"s{i:02d}" if i < 20 else f"r{i:04d}"
        if door == "line":
            sock.send(f"/nick {nick}\n/join #bench\n".encode())
        else:
            sock.send(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN #bench\r\n".encode())
        if i % 20 == 19:
            settle(server, socks, 0.05)
    settle(server, socks, 0.3)
    return socks


def measure(server: Any, socks: list[socket.socket], door: str, speakers: int, lines: int, passes: int) -> float:
    """Loop-thread CPU seconds per line in over *passes* rounds (see the module docstring)."""
    line = (TEXT + "\n" if door == "line" else f"PRIVMSG #bench :{TEXT}\r\n").encode() * lines
    want = speakers * lines
    spent = 0.0
    run_once, select = server.loop.run_once, server.loop.selector.select
    for _ in range(passes):
        for sock in socks[:speakers]:
            sock.send(line)
        for _ in range(50):  # until every line was read and fanned out (one pass usually does it)
            start = time.thread_time()
            busy = run_once(0)
            spent += time.thread_time() - start
            if not busy and not select(0):
                break
        drain(socks)
    return spent / (passes * want)


def main() -> None:
    """Print one Markdown row per door: the loop thread's CPU per line in and per delivery."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--door", default="line,irc")
    ap.add_argument("--members", type=int, default=50)
    ap.add_argument("--speakers", type=int, default=20)
    ap.add_argument("--lines", type=int, default=6, help="lines per speaker per pass")
    ap.add_argument("--passes", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-history", action="store_true")
    args = ap.parse_args()
    print("| door | members | lines/pass | loop us/line | loop us/deliv |")
    print("|---|---:|---:|---:|---:|")
    for door in args.door.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            server = build(Path(tmp), not args.no_history)
            try:
                socks = connect(server, door, args.members)
                best = min(measure(server, socks, door, args.speakers, args.lines, args.passes)
                           for _ in range(args.repeat))
                per_line = best * 1e6
                print(f"| {door} | {args.members} | {args.speakers * args.lines} | {per_line:.2f} | "
                      f"{per_line / (args.members - 1):.3f} |", flush=True)
                for sock in socks:
                    sock.close()
            finally:
                server.close()


if __name__ == "__main__":
    main()
