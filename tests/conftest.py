"""Shared fixtures: start the real ``chatroom-server`` and talk to it over TCP.

Everything synchronises on lines the programs print, with deadlines; nothing
sleeps to wait.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from chatroom.wire import lines as protocol

DEADLINE = 10.0  # seconds any single expectation may take


class ServerProcess:
    """A ``chatroom-server`` subprocess on port 0; ``port`` is read from its first stdout line."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            ["chatroom-server", "--port", "0", "--data-dir", str(data_dir), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first.startswith("chatroom-server listening on "):
            self.proc.kill()
            err = self.proc.stderr.read()  # type: ignore[union-attr]
            self.proc.wait()
            self.proc.stdout.close()
            self.proc.stderr.close()  # type: ignore[union-attr]
            raise RuntimeError(f"server did not start: {first!r} {err!r}")
        self.host, _, port = first.strip().rpartition(" ")[2].rpartition(":")
        self.host = self.host.strip("[]")  # an IPv6 address is printed in brackets
        self.port = int(port)
        self.clients: list[LineClient] = []

    def raw_client(self, host: str | None = None) -> "LineClient":
        """A connected :class:`LineClient` that has read nothing yet (closed at teardown)."""
        client = LineClient(host or self.host, self.port)
        self.clients.append(client)
        return client

    def connect(self, nick: str | None = None, *, binary: bool = False) -> "LineClient":
        """A client past the greeting, optionally named and frame-capable."""
        client = self.raw_client()
        client.expect_prefix("* Welcome")
        if binary:
            client.send("/caps binary")
            client.expect("OK caps binary")
        if nick:
            client.send(f"/nick {nick}")
            client.expect(f"OK nick {nick}")
        return client

    def stop(self, sig: int | None = None, timeout: float = DEADLINE) -> int:
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    # -- helpers for the hostile-client tests (tests/test_hostile.py) ----------------
    def proc_status_kib(self, field: str) -> int:
        """A ``kB`` field of ``/proc/PID/status`` of the server (``VmRSS``, ``VmHWM``...), in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.proc.pid}/status")

    def rss_kib(self) -> int:
        """The server's resident set size now (``VmRSS``), in KiB."""
        return self.proc_status_kib("VmRSS")

    def peak_rss_kib(self) -> int:
        """The server's peak resident set size (``VmHWM``), in KiB; see :meth:`reset_peak_rss`."""
        return self.proc_status_kib("VmHWM")

    def reset_peak_rss(self) -> None:
        """Reset ``VmHWM`` to the current RSS (Linux >= 4.0: ``echo 5 > /proc/PID/clear_refs``).

        If the kernel refuses, ``VmHWM`` keeps its old value, which only overstates later growth.
        """
        try:
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        except OSError:
            pass

    def open_fds(self) -> int:
        """Number of file descriptors the server process holds open now."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def unread_input_bytes(self) -> int:
        """Bytes clients sent that sit in the kernel, not yet read by the server.

        The sum of ``rx_queue`` over the server's TCP sockets on its port
        (``/proc/net/tcp`` and ``tcp6``); 0 once the server has read everything.
        """
        total = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                rows = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == self.port and fields[3] == "01":  # ESTABLISHED
                    total += int(fields[4].split(":")[1], 16)
        return total

    def silent_client(self, rcvbuf: int | None = None, source: str | None = None) -> "LineClient":
        """A connected :class:`LineClient` (closed at teardown) whose receive buffer is *rcvbuf* bytes
        (set before connecting, so the TCP window stays small), for clients that never read.

        *source* binds the client to that local address first (any ``127.x.y.z``
        reaches a server on 127.0.0.1), to spread many connections over addresses.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            sock.bind((source, 0))
        sock.settimeout(DEADLINE)
        sock.connect((self.host, self.port))
        client = LineClient.from_socket(sock)
        self.clients.append(client)
        return client

    def log_text(self) -> str:
        path = self.data_dir / "chatroom.log"
        return path.read_text() if path.exists() else ""


class LineClient:
    """A raw TCP client speaking the line protocol, like a person with ``nc``."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=DEADLINE)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = protocol.Parser(max_frame=64 * 1024 * 1024)
        self.pending: list[protocol.Line | protocol.Frame | protocol.TooLong] = []
        self.seen: list[str] = []

    @classmethod
    def from_socket(cls, sock: socket.socket) -> "LineClient":
        """Wrap an already connected socket (its timeout is left as it is)."""
        client = cls.__new__(cls)
        client.sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.parser = protocol.Parser(max_frame=64 * 1024 * 1024)
        client.pending = []
        client.seen = []
        return client

    def send_some(self, data: bytes, timeout: float = 1.0) -> int:
        """Send as much of *data* as the server takes within *timeout* seconds; return the bytes sent.

        Never blocks longer than *timeout*, and a connection the server closed or
        reset just ends the sending (for floods and frames the server may refuse).
        """
        deadline = time.monotonic() + timeout
        sent = 0
        view = memoryview(data)
        while sent < len(data):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.sock.settimeout(remaining)
            try:
                sent += self.sock.send(view[sent:])
            except (socket.timeout, OSError):
                break
        return sent

    def sync(self, tag: str = "sync", timeout: float = DEADLINE) -> list[str]:
        """Send ``/upper TAG`` and read up to its reply; return the lines that came before it."""
        self.send(f"/upper {tag}")
        return self.expect(tag.upper(), timeout)

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def next_event(self, timeout: float = DEADLINE) -> protocol.Line | protocol.Frame | protocol.TooLong:
        deadline = time.monotonic() + timeout
        while not self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no event within {timeout:.1f}s; {self.received()}")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:  # the socket's own "timed out" would hide what came
                raise TimeoutError(f"no event within {timeout:.1f}s; {self.received()}") from None
            except ConnectionError as exc:  # a reset: the same class, saying what came before it
                raise type(exc)(f"{exc.strerror or exc}; {self.received()}") from exc
            if not data:
                raise ConnectionError(f"server closed the connection; {self.received()}")
            self.pending.extend(self.parser.feed(data))
        return self.pending.pop(0)

    def received(self, last: int = 10) -> str:
        """What came so far, for assertion messages: the last *last* lines (and how many in all), and how many
        bytes wait unparsed (a line not ended yet, a frame not whole)."""
        text = f"last {min(last, len(self.seen))} of {len(self.seen)} lines received: {self.seen[-last:]}"
        waiting = self.parser.buffered
        return text + (f"; {waiting} bytes of an unfinished line or frame" if waiting else "")

    def next_line(self, timeout: float = DEADLINE) -> str:
        """The next text line (frames are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(max(0.01, deadline - time.monotonic()))
            if isinstance(event, protocol.Line):
                self.seen.append(event.text)
                return event.text

    def expect(self, wanted: str, timeout: float = DEADLINE) -> list[str]:
        """Read lines until one equals *wanted*; return the lines before it."""
        return self.expect_where(lambda line: line == wanted, wanted, timeout)

    def expect_prefix(self, prefix: str, timeout: float = DEADLINE) -> str:
        """Read lines until one starts with *prefix*; return that line."""
        self.expect_where(lambda line: line.startswith(prefix), prefix, timeout)
        return self.seen[-1]

    def expect_where(self, test, what: str, timeout: float = DEADLINE) -> list[str]:  # type: ignore[no-untyped-def]
        """Read lines until ``test(line)``; return the lines before it. On a timeout or a closed connection
        the error names *what* and lists the last lines received."""
        deadline = time.monotonic() + timeout
        before: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError("deadline passed")
                line = self.next_line(remaining)
            except TimeoutError:
                raise TimeoutError(f"never saw {what!r} within {timeout:.1f}s ({len(before)} other line(s) read "
                                   f"meanwhile); {self.received()}") from None
            except ConnectionError as exc:  # the same class (a reset stays a ConnectionResetError)
                raise type(exc)(f"waiting for {what!r}: {exc}") from exc
            if test(line):
                return before
            before.append(line)

    def closed_by_server(self, timeout: float = DEADLINE) -> bool:
        """True once the server closes this connection (reading and discarding until then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(1 << 16):
                    return True
            except socket.timeout:
                return False
            except OSError:
                return True
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator:
    """Call ``server_factory(*extra_args, data_dir=None, env=None)`` to start servers; all are stopped at the end."""
    started: list[ServerProcess] = []

    def start(*args: str, data_dir: Path | None = None, env: dict[str, str] | None = None) -> ServerProcess:
        server = ServerProcess(data_dir or tmp_path / f"data{len(started)}", *args, env=env)
        started.append(server)
        return server

    yield start
    stop_servers(started)


def stop_servers(started: list) -> None:  # type: ignore[type-arg]
    """Close each server's clients, kill the server if it still runs, and close its pipes (fixture teardown)."""
    for server in started:
        for client in server.clients:
            client.close()
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.wait()
        for stream in (server.proc.stdout, server.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture
def server(server_factory) -> ServerProcess:  # type: ignore[no-untyped-def]
    """One running ``chatroom-server`` on a free loopback port."""
    return server_factory()


def python_exe() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def chromium():  # type: ignore[no-untyped-def]
    """One headless Chromium (Playwright, Debian's ``chromium``) for every browser test of the session;
    see tests/browser_kit.py."""
    from browser_kit import launch_chromium

    yield from launch_chromium()


@pytest.fixture
def redis_factory() -> Iterator:  # type: ignore[type-arg]
    """``start(appendonly=True, extra=()) -> RedisServer``: real ``redis-server`` processes on unix sockets in
    short temporary folders (a socket path has at most 107 bytes), stopped by PID at teardown
    (tests/redis_kit.py)."""
    import shutil
    import tempfile

    from redis_kit import RedisServer

    started: list[RedisServer] = []
    folders: list[str] = []

    def start(*, appendonly: bool = True, extra: tuple[str, ...] = ()) -> RedisServer:
        folders.append(tempfile.mkdtemp(prefix="cr-redis-"))
        started.append(RedisServer(Path(folders[-1]), appendonly=appendonly, extra=extra).start())
        return started[-1]

    yield start
    for redis in started:
        redis.stop()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis_server(redis_factory):  # type: ignore[no-untyped-def]
    """One running ``redis-server`` with append-only persistence on a unix socket (tests/redis_kit.py)."""
    return redis_factory()
