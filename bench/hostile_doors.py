"""Hostile clients against the IRC and web doors of a real chatroom-server, by hand: does anything crash, hang or grow?

Usage::

    python bench/hostile_doors.py [--server-args "..."]

Starts ``chatroom-server --port 0 --irc-port 0 --web-port 0 --data-dir TMP --max-per-address 400`` (the ports read
from what it prints), registers two IRC members in ``#safe``, then runs each attack below in turn (each bounded in
bytes and seconds). After each, one member says a numbered line and the other must get it within 10 s (else the
script stops: the room hung), and the server's resident memory (``VmRSS``) is printed. At the end: the server's
peak (``VmHWM``), and how many tracebacks its log and stderr hold (each one a bug: input must get an answer or a
disconnect, never an exception). The server is stopped by its PID.

Attacks: IRC garbage, a 20 MB line, 100,000 tags, UTF-8 cut byte by byte, unicode digits where numbers go,
floods of PING / CAP LS / AUTHENTICATE before registration, slowloris, 300 connections that never register;
WebSocket frames of every opcode, fragmented and oversized pings, a ping inside a fragmented message, unmasked,
RSV and 2^63-length frames, a 20 MB text in 64 KiB fragments, 100,000 pings, invalid UTF-8 across fragments;
100,000 pipelined HTTP requests, oversized heads, 2 MB of garbage. docs/irc.md and docs/protocol.md ("Hostile
input") give what it showed.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from wsproto import ConnectionType, WSConnection
from wsproto.events import Request

DEADLINE = 10.0


class Server:
    """The chatroom-server under attack, with its IRC and web ports."""

    def __init__(self, data: Path, extra: list[str]) -> None:
        self.data = data
        self.stderr = open(data / "stderr.txt", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["chatroom-server", "--port", "0", "--irc-port", "0", "--web-port", "0", "--data-dir", str(data / "d"),
             "--irc-server-name", "irc.test", "--max-per-address", "400", *extra],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.irc = self.web = 0
        assert self.proc.stdout is not None
        for _ in range(50):
            line = self.proc.stdout.readline()
            if found := re.match(r"chatroom-server IRC on .*:(\d+)", line):
                self.irc = int(found.group(1))
            if found := re.match(r"chatroom-server web https?://[^/]+:(\d+)/", line):
                self.web = int(found.group(1))
            if self.irc and self.web:
                break
        else:
            raise SystemExit("the server printed no IRC and web addresses")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout or ()], daemon=True).start()

    def memory(self, field: str = "VmRSS") -> int:
        """The server's *field* of /proc/PID/status, in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def stop(self) -> tuple[int, int]:
        """Stop the server (by PID); the tracebacks in its log and on its stderr."""
        self.proc.terminate()
        self.proc.wait(10)
        self.stderr.close()
        log = self.data / "d" / "chatroom.log"
        text = log.read_text() if log.exists() else ""
        return text.count("Traceback"), (self.data / "stderr.txt").read_text().count("Traceback")


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)


def push(sock: socket.socket, data: bytes, seconds: float = 3.0) -> int:
    """Send as much of *data* as the server takes within *seconds*; the bytes sent."""
    end, sent = time.monotonic() + seconds, 0
    sock.setblocking(False)
    while sent < len(data) and time.monotonic() < end:
        try:
            sent += sock.send(data[sent:sent + 65536])
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:
            break
    sock.settimeout(DEADLINE)
    return sent


def drain(sock: socket.socket, quiet: float = 0.5) -> bytes:
    """What the server sends until it is quiet for *quiet* s, closes, or 5 quiet periods and 2 s passed."""
    sock.settimeout(quiet)
    out, end = b"", time.monotonic() + 5 * quiet + 2
    try:
        while time.monotonic() < end:
            data = sock.recv(65536)
            if not data:
                return out + b"<closed>"
            out += data
        return out + b"<still open>"
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        return out


def tail(data: bytes, size: int = 40) -> str:
    return repr(data[-size:])


class Irc:
    """A registered IRC member: ``send`` a line, ``wait`` for bytes."""

    def __init__(self, port: int, nick: str) -> None:
        self.sock = connect(port)
        self.buf = b""
        self.send(f"NICK {nick}")
        self.send("USER u 0 * :r")
        self.wait(b" 422 ")

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def wait(self, what: bytes) -> None:
        end = time.monotonic() + DEADLINE
        while what not in self.buf:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            data = self.sock.recv(65536)
            if not data:
                raise SystemExit(f"the server closed a member: {self.buf[-200:]!r}")
            self.buf += data
        self.buf = self.buf[self.buf.index(what) + len(what):]


def ws_open(port: int) -> socket.socket:
    """A WebSocket to ``/ws`` (its 101 read), as a raw socket."""
    sock = connect(port)
    sock.sendall(WSConnection(ConnectionType.CLIENT).send(Request(host=f"127.0.0.1:{port}", target="/ws")))
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 101"), head[:100]
    return sock


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv: int = 0,
          size: int | None = None) -> bytes:
    """A client frame built by hand (RFC 6455 5.2); *size* announces another length."""
    size = len(payload) if size is None else size
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask = 0x80 if masked else 0
    if size < 126:
        head += bytes([mask | size])
    elif size < 65536:
        head += bytes([mask | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([mask | 127]) + size.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = b"abcd"
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def close_code(out: bytes) -> int | None:
    """The code of the server's Close frame at the end of *out* (None: no Close frame)."""
    at = out.rfind(b"\x88")
    return int.from_bytes(out[at + 2:at + 4], "big") if at >= 0 else None


def attacks(irc: int, web: int) -> list[tuple[str, Callable[[], str]]]:
    """(name, run) for every attack; run returns what the attacker saw."""

    def irc_bytes(data: bytes, quiet: float = 0.5) -> Callable[[], str]:
        def run() -> str:
            sock = connect(irc)
            sent = push(sock, data)
            return f"sent {sent // 1024} KiB, got {tail(drain(sock, quiet))}"
        return run

    def ws_bytes(data: bytes) -> Callable[[], str]:
        def run() -> str:
            sock = ws_open(web)
            sent = push(sock, data)
            out = drain(sock)
            sock.close()
            return f"sent {sent // 1024} KiB, close {close_code(out)}"
        return run

    def http_bytes(data: bytes) -> Callable[[], str]:
        def run() -> str:
            sock = connect(web)
            push(sock, data)
            return repr(drain(sock)[:14])
        return run

    def utf8_split() -> str:
        sock = connect(irc)
        data = "NICK m\u00e9\r\nUSER u 0 * :r\u00e9\r\nJOIN #safe\r\nPRIVMSG #safe :\u00e9\U0001f600\r\n".encode()
        for i in range(len(data)):
            sock.sendall(data[i:i + 1])
        sock.sendall(b"PRIVMSG #safe :\xf0\x9f\r\nPRIVMSG #safe :\xff\xfe\r\nQUIT\r\n")
        return tail(drain(sock))

    def slowloris() -> str:
        socks = [connect(irc) for _ in range(100)]
        for _ in range(20):
            for sock in socks:
                sock.sendall(b"N")
            time.sleep(0.05)
        for sock in socks:
            sock.close()
        return "100 connections, a byte each every 50 ms"

    def unregistered() -> str:
        socks = [connect(irc) for _ in range(300)]
        time.sleep(0.5)
        for sock in socks:
            sock.close()
        return "300 opened"

    def pipelined() -> str:
        sock = connect(web)
        got = [0]

        def reader() -> None:
            try:
                while data := sock.recv(1 << 20):
                    got[0] += len(data)
            except OSError:
                pass

        thread = threading.Thread(target=reader)
        thread.start()
        sent = push(sock, f"GET /app.js HTTP/1.1\r\nHost: 127.0.0.1:{web}\r\n\r\n".encode() * 100_000, 5)
        sock.shutdown(socket.SHUT_WR)
        thread.join(DEADLINE)
        return f"sent {sent // 1024} KiB, read {got[0] // 1024} KiB"

    digits = "CAP LS \u00b2\r\nNICK u2\r\nUSER u 0 * :r\r\nJOIN #u2\r\nMODE #u2 +l \u00b2\r\nWHOWAS bob \u00b2\r\n" \
             "CHATHISTORY LATEST #u2 * \u00b2\r\nAUTHENTICATE \u00e9\r\nQUIT\r\n"
    out: list[tuple[str, Callable[[], str]]] = [
        ("irc: 2 MB of random bytes", irc_bytes(os.urandom(2 << 20))),
        ("irc: a 20 MB line", irc_bytes(b"PRIVMSG #safe :" + b"x" * 20_000_000 + b"\r\nPING done\r\n", 2)),
        ("irc: 100,000 tags", irc_bytes(b"@" + b"a=b;" * 100_000 + b" PING x\r\n@+k=" + b"\\" * 4000 + b" PING y\r\n")),
        ("irc: UTF-8 cut byte by byte", utf8_split),
        ("irc: unicode digits where numbers go", irc_bytes(digits.encode())),
        ("irc: 200,000 PINGs before registration", irc_bytes(b"PING x\r\n" * 200_000)),
        ("irc: 100,000 CAP LS before registration", irc_bytes(b"CAP LS 302\r\n" * 100_000)),
        ("irc: 50,000 AUTHENTICATE chunks", irc_bytes(b"CAP REQ sasl\r\nAUTHENTICATE PLAIN\r\n"
                                                       + (b"AUTHENTICATE " + b"A" * 400 + b"\r\n") * 50_000)),
        ("irc: slowloris", slowloris),
        ("irc: 300 connections never registering", unregistered),
    ]
    out += [(f"ws: opcode {op}", ws_bytes(frame(op, b"/upper hi" if op in (0, 1) else b"xx"))) for op in range(16)]
    out += [
        ("ws: fragmented ping", ws_bytes(frame(9, b"a", fin=False) + frame(0, b"b"))),
        ("ws: 126-byte ping", ws_bytes(frame(9, b"a" * 126))),
        ("ws: ping inside a fragmented text", ws_bytes(frame(1, b"/upper ", fin=False) + frame(9, b"p")
                                                       + frame(0, b"mid"))),
        ("ws: unmasked frame", ws_bytes(frame(1, b"hi", masked=False))),
        ("ws: RSV bit", ws_bytes(frame(1, b"hi", rsv=4))),
        ("ws: 2^63-byte length", ws_bytes(frame(1, b"", size=2**63))),
        ("ws: 20 MB text in 64 KiB fragments", ws_bytes(frame(1, b"x" * 65536, fin=False)
                                                        + frame(0, b"x" * 65536, fin=False) * 300
                                                        + frame(0, b"") + frame(1, b"/upper after"))),
        ("ws: 100,000 pings", ws_bytes(frame(9, b"p") * 100_000)),
        ("ws: invalid UTF-8 across fragments", ws_bytes(frame(1, b"\xe2\x82", fin=False) + frame(0, b"\xac ok")
                                                        + frame(1, b"\xc0\x80"))),
        ("http: 100,000 pipelined GET /app.js", pipelined),
        ("http: a 100 KB header", http_bytes(b"GET / HTTP/1.1\r\nX: " + b"y" * 100_000 + b"\r\n\r\n")),
        ("http: 100 headers", http_bytes(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-A: 1\r\n" * 100 + b"\r\n")),
        ("http: a 5,000-digit Content-Length", http_bytes(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                                                           + b"9" * 5000 + b"\r\n\r\n")),
        ("http: 2 MB of random bytes", http_bytes(os.urandom(2 << 20))),
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--server-args", default="", help="more chatroom-server arguments")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), shlex.split(args.server_args))
        try:
            alice, bob = Irc(server.irc, "alice"), Irc(server.irc, "bob")
            for member in (alice, bob):
                member.send("JOIN #safe")
                member.wait(b" 366 ")
            start = server.memory()
            print(f"server RSS at start: {start} KiB")
            for number, (name, run) in enumerate(attacks(server.irc, server.web), 1):
                began = time.monotonic()
                try:
                    seen = run()
                except OSError as exc:
                    seen = f"attacker: {type(exc).__name__}"
                alice.send(f"PRIVMSG #safe :alive {number}")
                bob.wait(f"alive {number}\r\n".encode())  # SystemExit or a timeout if the room hung
                print(f"{name:42s} {time.monotonic() - began:5.1f} s  RSS {server.memory():6d} KiB  {seen}")
            peak = server.memory("VmHWM")
        finally:
            logged, stderr = server.stop()
        print(f"peak RSS {peak} KiB (start {start}); tracebacks: {logged} in the log, {stderr} on stderr")


if __name__ == "__main__":
    main()
