"""End-to-end: the real ``chatroom-server`` with real ``chatroom-client`` processes over TCP.

Each test starts the server on port 0 (the ``server`` fixture from
``conftest.py``), ``chatroom-client`` subprocesses in line mode (stdin and
stdout are pipes) in their own working folders, and raw socket clients that
speak the line protocol like a person with ``nc``. Every wait is on a printed
line with a deadline; nothing sleeps. The last test drives the terminal UI
under a pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import os
import queue
import re
import select
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

DEADLINE = 10.0


class ClientProcess:
    """A ``chatroom-client`` subprocess in line mode; stdout and stderr are read by threads into queues."""

    def __init__(self, port: int, cwd: Path, *args: str) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["chatroom-client", "--port", str(port), *args],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._queues = {"out": queue.Queue(), "err": queue.Queue()}
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, "out"), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, "err"), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, stream: IO[str], which: str) -> None:
        for line in stream:
            self._queues[which].put(line.rstrip("\n"))
        self._queues[which].put(None)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def expect(self, test: str | Callable[[str], bool], which: str = "out", timeout: float = DEADLINE) -> str:
        """Read *which* stream ("out"/"err") until a line equals *test* (or satisfies it); return that line."""
        pred = test if callable(test) else (lambda line: line == test)
        seen = self.out if which == "out" else self.err
        start = len(seen)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"never saw {test!r} on {which}; saw {seen[start:][-10:]}")
            try:
                line = self._queues[which].get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self._queues[which].put(None)
                raise EOFError(f"{which} ended before {test!r}; saw {seen[start:][-10:]}")
            seen.append(line)
            if pred(line):
                return line

    def wait(self, timeout: float = DEADLINE) -> int:
        """Exit status; then the rest of stdout/stderr is in ``out``/``err``."""
        code = self.proc.wait(timeout)
        for t in self._threads:
            t.join(timeout)
        for which, seen in (("out", self.out), ("err", self.err)):
            while (line := self._queues[which].get_nowait()) is not None:
                seen.append(line)
            self._queues[which].put(None)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass


@pytest.fixture
def clients(server, tmp_path: Path) -> Iterator[Callable[..., ClientProcess]]:
    """``clients(name, *extra_args)`` starts a named ``chatroom-client`` (killed at teardown) in ``tmp_path/name``."""
    started: list[ClientProcess] = []

    def start(name: str | None, *args: str, cwd: str | None = None) -> ClientProcess:
        extra = ["--name", name] if name else []
        client = ClientProcess(server.port, tmp_path / (cwd or name or "anon"), *extra, *args)
        started.append(client)
        return client

    yield start
    for client in started:
        client.kill()


def joined(nick: str) -> Callable[[str], bool]:
    """The notice a room member sees once *nick* has named itself."""
    return lambda line: line.endswith(f" is now known as {nick}")


def test_broadcast_between_three_clients(server, clients) -> None:
    carol = server.connect("carol")  # a raw client, like nc
    alice = clients("alice")
    carol.expect_where(joined("alice"), "alice's nick")
    bob = clients("bob")
    carol.expect_where(joined("bob"), "bob's nick")
    alice.expect(joined("bob"))

    alice.send("hello room")
    bob.expect("alice: hello room")
    carol.expect("alice: hello room")
    carol.send("hi from nc")
    alice.expect("carol: hi from nc")
    bob.expect("carol: hi from nc")
    bob.send("//slash is literal")
    alice.expect("bob: /slash is literal")
    carol.expect("bob: /slash is literal")
    assert "alice: hello room" not in alice.out  # chat goes to the *other* members only

    bob.close_stdin()  # end of input: /quit, OK, exit 0
    assert bob.wait() == 0
    assert bob.out[-1] == "OK" and bob.err == []
    carol.expect("* bob left lobby (quit)")
    alice.expect("* bob left lobby (quit)")


def test_upper_help_msg_and_unknown_command(server, clients) -> None:
    carol = server.connect("carol")
    alice = clients("alice")
    carol.expect_where(joined("alice"), "alice's nick")
    alice.send("/upper make me loud")
    alice.expect("MAKE ME LOUD")
    alice.send("/help")
    alice.expect(lambda line: line.startswith("/upper TEXT") and "upper case" in line)
    alice.send("/HELP msg")
    alice.expect(lambda line: line.startswith("/msg NAME TEXT"))
    alice.send("/msg carol psst, just you")
    carol.expect("alice (private): psst, just you")
    alice.expect("OK sent to carol")
    alice.send("/frobnicate now")
    alice.expect("ERROR - Command not understood")
    alice.send("still chatting")
    carol.expect("alice: still chatting")  # the connection is still usable
    assert "alice: /upper make me loud" not in carol.seen  # commands are not chat


def test_quit_any_case_and_the_room_notice(server, clients) -> None:
    carol = server.connect("carol")
    alice = clients("alice")
    carol.expect_where(joined("alice"), "alice's nick")
    alice.send("/QUIT")
    alice.expect("OK")
    assert alice.wait() == 0
    assert alice.err == []
    carol.expect("* alice left lobby (quit)")


def test_taken_name_exits_non_zero_with_the_servers_error(server, clients) -> None:
    server.connect("carol")
    dup = clients("CAROL")
    assert dup.wait() == 2
    assert any(line.startswith("ERROR") and "CAROL" in line and "taken" in line for line in dup.err), dup.err


def test_missing_name_and_port_are_asked_for(server, clients, tmp_path: Path) -> None:
    carol = server.connect("carol")
    proc = subprocess.Popen(
        ["chatroom-client"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _out, err = proc.communicate(f"dave\n{server.port}\nasked and answered\n", timeout=DEADLINE)
    assert proc.returncode == 0, err
    assert err.startswith("name: port: ")
    carol.expect_where(joined("dave"), "dave's nick")
    carol.expect("dave: asked and answered")
    carol.expect("* dave left lobby (quit)")


def test_lost_server_exits_1_with_a_clear_message(server, clients) -> None:
    carol = server.connect("carol")
    alice = clients("alice")  # stdin stays open: only the server can end this session
    carol.expect_where(joined("alice"), "alice's nick")
    server.proc.send_signal(signal.SIGKILL)
    assert alice.wait() == 1
    assert alice.err == ["connection to server lost"]


# ---- the terminal UI, under a pseudo-terminal ---------------------------------------

_ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|[\x08]")


class Pty:
    """``chatroom-client`` with stdin/stdout/stderr on a pseudo-terminal (80x24, TERM=xterm)."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
        self.proc = subprocess.Popen(
            ["chatroom-client", *args], stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.raw = b""

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def read_until(self, test: Callable[[bytes], bool], what: str, start: int = 0, timeout: float = DEADLINE) -> None:
        """Read the terminal output until ``test(plain_text_since(start))`` holds."""
        deadline = time.monotonic() + timeout
        while not test(self.plain(start)):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"never saw {what}; screen output: {self.plain(start)[-400:]!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: the client closed the terminal
                    data = b""
                if not data:
                    raise EOFError(f"terminal closed before {what}; output: {self.plain(start)[-400:]!r}")
                self.raw += data

    def plain(self, start: int = 0) -> bytes:
        """Output since byte *start*, with terminal escape sequences removed.

    Cursor movements are dropped too, so a space the renderer skipped over
    may be missing: match prompts as ``> ?``.
    """
        return _ANSI.sub(b"", self.raw[start:])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)


def test_terminal_ui_keeps_the_half_typed_line_intact(server, tmp_path: Path) -> None:
    carol = server.connect("carol")
    term = Pty(["--name", "carol", "--port", str(server.port)], tmp_path / "tina")
    try:
        # The name is taken: the client says so and the prompt asks for another one.
        term.read_until(lambda out: re.search(rb"taken\r\n.*name:", out, re.DOTALL) is not None, "the name prompt")
        term.type("tina\r")
        carol.expect_where(joined("tina"), "tina's nick")
        term.read_until(lambda out: out.rstrip().endswith(b">"), "the chat prompt")

        term.type("half typ")
        term.read_until(lambda out: re.search(rb"> ?half typ$", out) is not None, "the typed text")
        mark = len(term.raw)
        carol.send("incoming while typing")
        # The incoming line is printed on its own line, and the prompt with the
        # half-typed text is drawn again below it.
        term.read_until(
            lambda out: re.search(rb"carol: incoming while typing\r\n.*> ?half typ$", out, re.DOTALL) is not None,
            "the incoming line above an intact prompt",
            start=mark,
        )
        assert b"half typcarol" not in term.plain(mark)
        mark = len(term.raw)
        term.type("ed line\r")
        carol.expect("tina: half typed line")  # what was typed before and after arrived whole
        term.read_until(lambda out: re.search(rb"\n(?:#\S+)?> ?$", out) is not None, "the next prompt", start=mark)

        term.type("\x04")  # Ctrl-D: /quit, OK, exit 0
        carol.expect("* tina left lobby (quit)")
        assert term.proc.wait(DEADLINE) == 0
    finally:
        term.close()
