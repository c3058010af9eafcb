"""Unit tests of the client's pieces: arguments, stdin reader, console, and the network loop.

The loop tests drive :class:`chatroom.client.loop.ClientLoop` over a
``socket.socketpair()``: the test plays the server on the other end, so every
byte the client sends is checked exactly, with deadlines and no sleeps.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest

from chatroom.client import cli as client_mod
from chatroom.client.cli import (
    UsageFailure,
    build_parser,
    parse_port,
    read_line_fd,
    resolve_args,
    stdin_reader,
)
from chatroom.client.console import LineConsole, format_bars
from chatroom.client.io import OutQueue, ready_hint
from chatroom.client.loop import LOST, ClientLoop
from chatroom.wire.lines import Frame, Line, Parser, encode_frame

DEADLINE = 5.0


# ---- arguments ----------------------------------------------------------------------


def test_parse_port_accepts_range_and_rejects_rest() -> None:
    assert parse_port(" 5000 ") == 5000
    assert parse_port("65535") == 65535
    for bad in ("0", "65536", "-1", "abc", ""):
        with pytest.raises(ValueError):
            parse_port(bad)


def test_parser_defaults_and_options() -> None:
    args = build_parser().parse_args(["--name", "alice", "--port", "4000"])
    assert (args.name, args.port, args.host) == ("alice", 4000, "127.0.0.1")
    assert args.send_dir == Path("send") and args.received_dir == Path("received")
    assert args.auto_send is False and args.quit_wait == 30.0
    args = build_parser().parse_args(
        ["--port", "1", "--host", "10.0.0.2", "--send-dir", "s", "--received-dir", "r", "--auto-send"]
    )
    assert args.name is None and args.send_dir == Path("s") and args.received_dir == Path("r") and args.auto_send


@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "soon"])
def test_parser_rejects_bad_quit_wait(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--quit-wait", bad])
    assert exc.value.code == 2
    assert "invalid seconds" in capsys.readouterr().err
    assert build_parser().parse_args(["--quit-wait", "0"]).quit_wait == 0.0


def test_parser_rejects_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--port", "http"])
    assert exc.value.code == 2
    assert "invalid port" in capsys.readouterr().err


def _ns(name: str | None = None, port: int | None = None) -> argparse.Namespace:
    return argparse.Namespace(name=name, port=port)


def test_the_help_has_a_short_usage_and_groups_the_file_options() -> None:
    """The usage names what a first run needs (it ran to 11 lines of every flag), and the file options
    have their own group, apart from the connection's."""
    text = build_parser().format_help()
    assert text.startswith("usage: chatroom-client [--name NAME] [--port PORT] [--host HOST] [OPTION]...\n\n")
    files = text[text.index("\nfiles:\n"):text.index("\nTLS:\n")]
    for flag in ("--send-dir DIR", "--received-dir DIR", "--auto-send", "--settle S", "--quit-wait S",
                 "--accept-files"):
        assert f"  {flag}" in files, flag


def test_version_says_which_chatroom_this_is(capsys: pytest.CaptureFixture[str]) -> None:
    """A bug report starts with the version: the server had ``--version``, the client did not."""
    from chatroom import __version__

    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"chatroom {__version__}\n"


def test_missing_name_and_port_are_asked_for() -> None:
    err = io.StringIO()
    args = resolve_args(_ns(), io.BytesIO(b"alice\n4242\nhello\n").readline, err, interactive=False)
    assert (args.name, args.port) == ("alice", 4242)
    assert err.getvalue() == "name: port: "


def test_interactive_asks_again_until_valid() -> None:
    err = io.StringIO()
    args = resolve_args(_ns(port=7), io.BytesIO(b"\n  bob \n").readline, err, interactive=True)
    assert args.name == "bob"
    args = resolve_args(_ns(name="x"), io.BytesIO(b"nope\n99999\n81\n").readline, err, interactive=True)
    assert args.port == 81
    assert err.getvalue().count("a port is an integer") == 2


def test_a_command_is_not_taken_for_the_name_asked_for() -> None:
    """``echo "/login carol PW" | chatroom-client --port P`` used to send ``/nick /login carol PW`` and print
    the refusal, password and all; a /command where the name is asked for is refused, never sent."""
    with pytest.raises(UsageFailure, match=r"a name is needed \(--name\); the first line of input is a command") as caught:
        resolve_args(_ns(port=7), io.BytesIO(b"/login carol s3cret-pw\n").readline, io.StringIO(), interactive=False)
    assert "s3cret-pw" not in str(caught.value)
    err = io.StringIO()
    args = resolve_args(_ns(port=7), io.BytesIO(b"/login carol s3cret-pw\ncarol\n").readline, err, interactive=True)
    assert args.name == "carol" and "s3cret-pw" not in err.getvalue()
    assert err.getvalue() == "name: a name first (log in once connected: --password, or /login NICK PASSWORD)\nname: "


def test_non_interactive_bad_or_missing_answer_fails() -> None:
    with pytest.raises(UsageFailure, match="invalid port"):
        resolve_args(_ns(name="x"), io.BytesIO(b"abc\n").readline, io.StringIO(), interactive=False)
    with pytest.raises(UsageFailure, match="name"):
        resolve_args(_ns(), io.BytesIO(b"").readline, io.StringIO(), interactive=False)
    with pytest.raises(UsageFailure, match="name"):
        resolve_args(_ns(), io.BytesIO(b"\n").readline, io.StringIO(), interactive=False)


@pytest.fixture
def empty_stdin(monkeypatch: pytest.MonkeyPatch):
    """``sys.stdin`` is a pipe already at end of input (main() needs a real file descriptor)."""
    r, w = os.pipe()
    os.close(w)
    with os.fdopen(r, "r") as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        yield stdin


def test_main_without_name_at_end_of_input_exits_2(empty_stdin, capsys) -> None:
    assert client_mod.main(["--port", "5"]) == 2
    assert "a name is needed" in capsys.readouterr().err


def test_main_unreachable_server_exits_1(empty_stdin, capsys) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on this port now
    assert client_mod.main(["--name", "a", "--port", str(port)]) == 1
    assert f"cannot connect to 127.0.0.1:{port}" in capsys.readouterr().err


# ---- stdin reader and console -------------------------------------------------------


def test_stdin_reader_decodes_lines_and_signals_end() -> None:
    got: list[str] = []
    ended: list[bool] = []
    # Reads of 3 bytes split lines and a multi-byte character across reads.
    data = io.BytesIO(b"hi\r\n\xff bad\n" + "ünï".encode() + b"\nlast-no-newline")
    stdin_reader(lambda n: data.read(3), got.append, lambda: ended.append(True))
    assert got == ["hi", "\ufffd bad", "ünï", "last-no-newline"]
    assert ended == [True]


def test_read_line_fd_reads_one_line_unbuffered() -> None:
    r, w = os.pipe()
    os.write(w, b"alice\nrest\n")
    os.close(w)
    try:
        assert read_line_fd(r) == b"alice\n"
        assert os.read(r, 100) == b"rest\n"  # nothing beyond the line was consumed
        assert read_line_fd(r) == b""
    finally:
        os.close(r)


def test_ready_hint_quotes_names_with_spaces() -> None:
    assert ready_hint("send", "a.txt") == "send/a.txt is ready: /sendfile a.txt"
    assert ready_hint("send", "my file.txt") == 'send/my file.txt is ready: /sendfile "my file.txt"'
    # a control character never survives a typed line: no /sendfile that would find no file
    assert ready_hint("send", "x\x01y") == "send/xy is ready, but its name has characters that cannot be typed: " \
                                           "rename it to send it"


def test_line_console_prints_and_draws_no_bars_off_terminal() -> None:
    out, err = io.StringIO(), io.StringIO()
    console = LineConsole(out, err)
    console.update([SimpleNamespace(desc="a.bin", done=5, total=10, started=time.monotonic(), direction="send")])
    console.line("bob: hi")
    console.error("oops")
    console.close()
    assert out.getvalue() == "bob: hi\n"
    assert err.getvalue() == "oops\n"


def test_format_bars_one_meter_per_transfer() -> None:
    now = time.monotonic()
    items = [
        SimpleNamespace(desc="a.bin", done=512 * 1024, total=1024 * 1024, started=now - 2, direction="send"),
        SimpleNamespace(desc="b.bin from bob", done=0, total=2048, started=now, direction="recv"),
    ]
    text = format_bars(items, 100, now=now)
    first, second = text.split("\n")
    assert first.startswith("↑ a.bin") and "50%" in first and "512k/1.00M" in first.replace("kB", "k").replace("MB", "M")
    assert second.startswith("↓ b.bin from bob") and "0%" in second
    assert all(len(line) <= 100 for line in (first, second))
    assert format_bars([], 80) == ""


# ---- the network loop over a socketpair ---------------------------------------------


class RecordingConsole:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.cond = threading.Condition()

    def line(self, text: str) -> None:
        with self.cond:
            self.lines.append(text)
            self.cond.notify_all()

    def error(self, text: str) -> None:
        with self.cond:
            self.errors.append(text)
            self.cond.notify_all()

    def wait_for(self, pred, what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {what}: lines={self.lines} errors={self.errors}"
                self.cond.wait(left)


class FakeServer:
    """The test's end of the socketpair: reads the client's lines and frames, writes replies."""

    open: ClassVar[list[FakeServer]] = []

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(DEADLINE)
        FakeServer.open.append(self)
        self.parser = Parser()
        self.events: list = []

    def next_event(self):
        deadline = time.monotonic() + DEADLINE
        while not self.events:
            assert time.monotonic() < deadline, "client sent nothing"
            data = self.sock.recv(65536)
            assert data, "client closed the connection"
            self.events.extend(self.parser.feed(data))
        return self.events.pop(0)

    def expect(self, text: str) -> None:
        assert self.next_event() == Line(text)

    def say(self, *lines: str) -> None:
        self.sock.sendall(b"".join(line.encode() + b"\n" for line in lines))

    def at_eof(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True


@pytest.fixture(autouse=True)
def _close_fake_servers():
    yield
    while FakeServer.open:
        FakeServer.open.pop().sock.close()


class Running:
    def __init__(self, loop: ClientLoop) -> None:
        self.loop = loop
        self.status: list[int] = []
        self.thread = threading.Thread(target=lambda: self.status.append(loop.run()), daemon=True)
        self.thread.start()

    def result(self) -> int:
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "client loop did not finish"
        return self.status[0]


def start(name: str = "alice", **kw) -> tuple[FakeServer, RecordingConsole, Running]:
    ours, theirs = socket.socketpair()
    console = RecordingConsole()
    loop = ClientLoop(theirs, name, console, **kw)
    return FakeServer(ours), console, Running(loop)


def test_handshake_chat_and_clean_quit_at_end_of_input() -> None:
    server, console, run = start()
    run.loop.submit("early line")  # typed before the name is accepted: held back
    server.say("* Welcome to chatroom, room lobby. You are guest1.")
    server.expect("/nick alice")
    server.say("* guest1 is now known as alice", "OK nick alice", "bob: hi there")
    server.expect("early line")
    run.loop.submit("//slash text")
    run.loop.submit("/upper x")
    run.loop.submit("")  # empty lines are not sent
    run.loop.submit("tab\there \x1b[31mred\x1b[0m\x07")
    server.expect("//slash text")
    server.expect("/upper x")
    server.expect("tab\there red")
    run.loop.end_input()
    server.expect("/quit")
    server.say("OK")
    server.sock.shutdown(socket.SHUT_WR)
    assert run.result() == 0
    assert console.lines == [
        "* Welcome to chatroom, room lobby. You are guest1.",
        "* guest1 is now known as alice",
        "bob: hi there",
        "OK",
    ]
    assert console.errors == []
    assert server.at_eof()


def test_typed_quit_any_case_is_sent_once_and_later_lines_dropped() -> None:
    server, _console, run = start()
    server.expect("/nick alice")
    server.say("OK")
    run.loop.submit("/QUIT")
    run.loop.submit("after quit")
    run.loop.end_input()
    server.expect("/quit")
    server.say("OK")
    server.sock.close()
    assert run.result() == 0


def test_refused_name_in_line_mode_exits_2_with_the_error() -> None:
    server, console, run = start("bob")
    server.expect("/nick bob")
    server.say("ERROR nick bob is taken")
    assert run.result() == 2
    assert console.errors == ["ERROR nick bob is taken"]
    assert server.at_eof()


def test_refused_name_on_a_terminal_asks_for_another() -> None:
    changes: list[bool] = []
    server, console, run = start("bob", interactive=True)
    run.loop.on_change = lambda: changes.append(run.loop.naming)
    server.expect("/nick bob")
    server.say("ERROR nick bob is taken")
    console.wait_for(lambda: console.errors, "the error")
    assert run.loop.naming and changes[-1] is True
    run.loop.submit("  ")  # empty: asked again
    run.loop.submit(" bob2 ")
    server.expect("/nick bob2")
    server.say("OK nick bob2")
    run.loop.submit("hello")
    server.expect("hello")
    assert not run.loop.naming and run.loop.name == "bob2"
    run.loop.request_quit()
    server.expect("/quit")
    server.say("OK")
    server.sock.close()
    assert run.result() == 0
    assert console.errors == ["ERROR nick bob is taken", "a name is needed"]


def test_lost_server_exits_1_with_message() -> None:
    server, console, run = start()
    server.expect("/nick alice")
    server.say("OK", "bob: last words")
    server.sock.close()
    assert run.result() == 1
    assert console.lines == ["bob: last words"]
    assert console.errors == [LOST]


def test_quit_without_reply_gives_up_after_timeout() -> None:
    server, console, run = start(quit_timeout=0.3)
    server.expect("/nick alice")
    server.say("OK")
    run.loop.end_input()
    server.expect("/quit")
    assert run.result() == 1
    assert console.errors == ["no reply to /quit from the server; closing"]


# ---- integration with the transfer component, through its contract ------------------


class FakeTransferManager:
    """Test double with the TransferManager contract; records what the client calls."""

    instances: ClassVar[list[FakeTransferManager]] = []

    def __init__(self, send_dir, received_dir, write, out_queued, emit, *, journal=None) -> None:
        self.dirs = (send_dir, received_dir)
        self.journal = journal
        self.write, self.out_queued, self.emit = write, out_queued, emit
        self.sent: list[str] = []
        self.frames: list[Frame] = []
        self.busy = False
        self.receiving = False
        self.discarded: list[str] = []
        self.closed = False
        self.pumps = 0
        self.to_write: list[bytes] = []
        FakeTransferManager.instances.append(self)

    def send_file(self, name: str) -> None:
        self.sent.append(name)
        self.emit(f"queued {name}")

    def handle_line(self, text: str) -> bool:
        return text.startswith("OK sendfile")

    def handle_frame(self, frame: Frame) -> None:
        self.frames.append(frame)

    def pump(self) -> None:
        self.pumps += 1
        while self.to_write and self.out_queued() < 1 << 20:
            self.write(self.to_write.pop(0))

    def progress(self) -> list:
        return []

    def queued(self) -> list[str]:
        return []

    def sent_before(self, name: str) -> bool:
        return False

    def discard_incoming(self, reason: str) -> int:
        self.discarded.append(reason)
        self.receiving = False
        self.emit(f"discarded: {reason}")
        return 1

    def close(self, reason: str = "cancelled") -> None:
        self.closed = True

    def server_resumes(self) -> None:
        pass

    def present_all(self) -> None:
        pass

    def running(self, token: str) -> bool:
        return False


class FakeWatcher:
    instances: ClassVar[list[FakeWatcher]] = []

    def __init__(self, send_dir: Path, wake) -> None:
        self.send_dir, self.wake = send_dir, wake
        self.paths: list[Path] = []
        self.started = self.stopped = False
        FakeWatcher.instances.append(self)

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def ready(self) -> list[Path]:
        out, self.paths = self.paths, []
        return out


def start_with_transfer(tmp_path: Path, **kw):
    FakeTransferManager.instances.clear()
    FakeWatcher.instances.clear()
    server, console, run = start(
        transfer=(FakeTransferManager, FakeWatcher),
        send_dir=tmp_path / "out",
        received_dir=tmp_path / "in",
        **kw,
    )
    server.expect("/caps binary")
    server.expect("/caps resume")
    server.expect("/nick alice")
    server.say("OK caps binary", "ERROR unknown capability: resume (known: binary tags)", "OK nick alice")
    return server, console, run, FakeTransferManager.instances[0], FakeWatcher.instances[0]


def test_transfer_component_gets_commands_frames_and_replies(tmp_path: Path) -> None:
    server, console, run, tm, watcher = start_with_transfer(tmp_path)
    assert tm.dirs == (tmp_path / "out", tmp_path / "in") and (tmp_path / "in").is_dir()
    assert watcher.started
    run.loop.submit('/SendFile "my file.txt"')
    run.loop.submit("/sendfile")  # usage error, handled locally
    run.loop.submit("/sendfile a b")
    server.sock.sendall(b"OK sendfile 7 my file.txt\n" + encode_frame("file-data 3", b"\x00\x10\n") + b"carol: hi\n")
    console.wait_for(lambda: "carol: hi" in console.lines, "chat after the frame")
    assert tm.sent == ["my file.txt"]
    assert tm.frames == [Frame("file-data 3", b"\x00\x10\n")]
    # The consumed transfer reply is not printed (the emit and the chat may come in either order).
    assert sorted(console.lines) == ["carol: hi", "queued my file.txt"]
    assert len(console.errors) == 2 and all(e.startswith("usage: /sendfile") for e in console.errors)
    # Chunks the component writes reach the server.
    tm.to_write.append(encode_frame("file-data 7", b"x" * 100))
    run.loop.wake()
    assert server.next_event() == Frame("file-data 7", b"x" * 100)
    run.loop.request_quit()
    server.expect("/quit")
    server.say("OK")
    server.sock.close()
    assert run.result() == 0
    assert tm.closed and watcher.stopped


def test_end_of_input_waits_for_running_transfers(tmp_path: Path) -> None:
    server, console, run, tm, _watcher = start_with_transfer(tmp_path)
    tm.busy = True
    run.loop.submit("/sendfile big.bin")
    run.loop.end_input()
    console.wait_for(lambda: console.errors, "the waiting notice")
    assert console.errors == ["waiting for file transfers to finish before quitting (files arriving get 30 s at most)"]
    server.say("ping")  # the loop keeps serving while it waits
    console.wait_for(lambda: "ping" in console.lines, "a line during the wait")
    tm.busy = False
    run.loop.wake()
    server.expect("/quit")
    server.say("OK")
    server.sock.close()
    assert run.result() == 0


def test_ready_files_are_announced_or_auto_sent(tmp_path: Path) -> None:
    server, console, run, tm, watcher = start_with_transfer(tmp_path)
    watcher.paths = [tmp_path / "out" / "report.pdf"]
    watcher.wake()
    console.wait_for(lambda: console.lines, "the ready line")
    assert console.lines == [f"{(tmp_path / 'out').as_posix()}/report.pdf is ready: /sendfile report.pdf"]
    assert tm.sent == []
    run.loop.request_quit()
    server.expect("/quit")
    server.say("OK")
    server.sock.close()
    assert run.result() == 0

    server, console, run, tm, watcher = start_with_transfer(tmp_path, auto_send=True)
    watcher.paths = [tmp_path / "out" / "a b.txt"]
    watcher.wake()
    console.wait_for(lambda: console.lines, "the auto-send")
    assert console.lines == ["queued a b.txt"]
    assert tm.sent == ["a b.txt"]
    run.loop.request_quit()
    server.expect("/quit")
    server.say("OK")
    server.sock.close()
    assert run.result() == 0


def test_out_queue_sends_partially_and_keeps_order() -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.settimeout(DEADLINE)
    try:
        q = OutQueue()
        parts = [b"line one\n", bytearray(b"x" * 300_000), b"", b"tail\n"]
        for part in parts:
            q.append(part)
        parts[1][:] = b"y" * 300_000  # the queue copied the mutable buffer
        assert q.size == 9 + 300_000 + 5
        expected = b"line one\n" + b"x" * 300_000 + b"tail\n"
        got = bytearray()
        deadline = time.monotonic() + DEADLINE
        while q.size:
            assert time.monotonic() < deadline
            try:
                q.send_to(a)  # partial: the socket buffer is smaller than the queue
            except BlockingIOError:
                pass
            got += b.recv(1 << 20)
        while len(got) < len(expected):
            got += b.recv(1 << 20)
        assert bytes(got) == expected
    finally:
        a.close()
        b.close()


def test_pump_never_stalls_when_the_kernel_takes_everything(tmp_path: Path) -> None:
    """A sender whose chunks the kernel always accepts must not wait for the 0.2 s select timeout."""
    server, _console, run, tm, _watcher = start_with_transfer(tmp_path)
    chunks = [encode_frame(f"file-data {i}", b"z" * 512) for i in range(200)]

    def pump_one() -> None:  # one small chunk per pump() call, like a slow disk read
        tm.pumps += 1
        if chunks:
            tm.write(chunks.pop(0))

    tm.pump = pump_one
    started = time.monotonic()
    run.loop.wake()
    for i in range(200):
        assert server.next_event() == Frame(f"file-data {i}", b"z" * 512)
    elapsed = time.monotonic() - started
    # 200 chunks at 8 per loop pass would be 25 passes: 5 s if each waited for the select timeout.
    assert elapsed < 2.0, elapsed
    run.loop.request_quit()
    server.expect("/quit")
    server.say("OK")
    server.sock.close()
    assert run.result() == 0


# ---- quitting while files arrive: bounded by quit_wait (issue 8, item 15) ---------------------


def start_receiving(tmp_path: Path, quit_wait: float):
    """A client with the real TransferManager (no watcher), past the handshake."""
    from chatroom.client.transfer import TransferManager

    server, console, run = start(transfer=(TransferManager, None), send_dir=tmp_path / "out",
                                 received_dir=tmp_path / "in", quit_wait=quit_wait)
    server.expect("/caps binary")
    server.expect("/caps resume")
    server.expect("/nick alice")
    server.say("OK caps binary", "ERROR unknown capability: resume (known: binary tags)", "OK nick alice")
    return server, console, run


def part_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.part"))


def begin_incoming(server: FakeServer, console: RecordingConsole, frames: bytes) -> None:
    """Send *frames*, then a marker line; once the client prints the marker, it has handled the frames."""
    server.sock.sendall(frames + b"* marker\n")
    console.wait_for(lambda: "* marker" in console.lines, "the marker after the frames")


def trickle_until_quit(server: FakeServer, tid: int, every: float, most: int) -> int:
    """Send one byte of transfer *tid* every *every* seconds until the client sends ``/quit``.

    Returns the bytes trickled; fails after *most* bytes without ``/quit``.
    The pacing is the bounded wait for the client's next bytes, not a sleep.
    """
    for sent in range(most):
        server.sock.settimeout(every)
        try:
            data = server.sock.recv(65536)
        except socket.timeout:
            server.sock.sendall(encode_frame(f"file-data {tid}", b"x"))
            continue
        assert data, "client closed the connection"
        server.events.extend(server.parser.feed(data))
        if Line("/quit") in server.events:
            server.sock.settimeout(DEADLINE)
            return sent
    raise AssertionError(f"no /quit after {most} trickled bytes")


def test_a_trickling_incoming_file_does_not_keep_the_client_after_end_of_input(tmp_path: Path) -> None:
    server, console, run = start_receiving(tmp_path, quit_wait=0.5)
    begin_incoming(server, console, encode_frame("file-begin 4 1000 bob slow.bin", b"") + encode_frame("file-data 4", b"x"))
    assert run.loop.busy and len(part_files(tmp_path / "in")) == 1
    started = time.monotonic()
    run.loop.end_input()
    trickled = trickle_until_quit(server, 4, every=0.05, most=200)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2.5, elapsed
    assert trickled >= 3, "bytes kept arriving while the client waited"
    server.say("OK")
    server.sock.close()
    assert run.result() == 0
    assert console.errors == ["waiting for file transfers to finish before quitting (files arriving get 0.5 s at most)"]
    [discarded] = [line for line in console.lines if line.startswith("discarded")]
    assert discarded.startswith('discarded "slow.bin" from bob: still arriving 0.5 s after quitting (')
    assert discarded.endswith(" of 1000 bytes)")
    assert part_files(tmp_path / "in") == [] and list((tmp_path / "in").iterdir()) == []


def test_an_incoming_file_that_finishes_within_quit_wait_is_kept(tmp_path: Path) -> None:
    import hashlib

    server, console, run = start_receiving(tmp_path, quit_wait=30)
    body = b"hello file\n" * 100
    begin_incoming(server, console,
                   encode_frame(f"file-begin 9 {len(body)} bob notes.txt", b"") + encode_frame("file-data 9", body[:500]))
    run.loop.end_input()
    console.wait_for(lambda: console.errors, "the waiting notice")
    server.sock.sendall(encode_frame("file-data 9", body[500:])
                        + encode_frame(f"file-end 9 {hashlib.sha256(body).hexdigest()}", b""))
    server.expect("/quit")
    server.say("OK")
    server.sock.close()
    assert run.result() == 0
    assert (tmp_path / "in" / "notes.txt").read_bytes() == body
    assert any(line.startswith('received "notes.txt"') for line in console.lines)


def test_quit_wait_zero_discards_incoming_files_at_once(tmp_path: Path) -> None:
    server, console, run = start_receiving(tmp_path, quit_wait=0)
    begin_incoming(server, console, encode_frame("file-begin 2 50 bob x.bin", b"") + encode_frame("file-data 2", b"12345"))
    run.loop.end_input()
    server.expect("/quit")
    server.say("OK")
    server.sock.close()
    assert run.result() == 0
    assert 'discarded "x.bin" from bob: still arriving 0 s after quitting (5 of 50 bytes)' in console.lines
    assert part_files(tmp_path / "in") == []


def test_own_sends_are_finished_however_long_and_late_arrivals_are_discarded(tmp_path: Path) -> None:
    server, console, run, tm, _watcher = start_with_transfer(tmp_path, quit_wait=0)
    tm.busy = True  # a send of ours is running
    run.loop.end_input()
    console.wait_for(lambda: console.errors, "the waiting notice")
    server.say("ping")
    console.wait_for(lambda: "ping" in console.lines, "a line while waiting")
    server.sock.settimeout(0.3)
    with pytest.raises(socket.timeout):  # no /quit while our send runs, although quit_wait is 0
        server.sock.recv(65536)
    assert tm.discarded == []
    tm.receiving = True  # a file starts arriving after the deadline: given up at once
    run.loop.wake()
    console.wait_for(lambda: tm.discarded, "the discard")
    assert tm.discarded == ["still arriving 0 s after quitting"]
    tm.busy = False
    run.loop.wake()
    server.sock.settimeout(DEADLINE)
    server.expect("/quit")
    server.say("OK")
    server.sock.close()
    assert run.result() == 0


def test_transfer_manager_discard_incoming_frees_busy_and_ignores_later_frames(tmp_path: Path) -> None:
    from chatroom.client.transfer import TransferManager

    emitted: list[str] = []
    tm = TransferManager(tmp_path / "out", tmp_path / "in", lambda data: None, lambda: 0, emitted.append)
    tm.handle_frame(Frame("file-begin 1 10 bob a.bin", b""))
    tm.handle_frame(Frame("file-data 1", b"abc"))
    assert tm.busy and tm.receiving
    assert tm.discard_incoming("bored") == 1
    assert not tm.busy and not tm.receiving
    assert emitted == ['discarded "a.bin" from bob: bored (3 of 10 bytes)']
    tm.handle_frame(Frame("file-data 1", b"def"))  # still in flight: ignored
    tm.handle_frame(Frame("file-end 1 " + "0" * 64, b""))
    assert emitted == ['discarded "a.bin" from bob: bored (3 of 10 bytes)'] and part_files(tmp_path / "in") == []
    assert tm.discard_incoming("again") == 0


def test_a_real_pipe_driven_client_exits_although_a_sender_trickles(server_factory, tmp_path: Path) -> None:
    """Item 15 end to end: real server, real ``chatroom-client`` on a pipe, a raw sender trickling bytes."""
    import queue
    import subprocess

    server = server_factory("--quiet")
    bob = server.connect("bob", binary=True)
    alice = subprocess.Popen(
        ["chatroom-client", "--name", "alice", "--port", str(server.port), "--quit-wait", "1"],
        cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert alice.stdout is not None
        for line in alice.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def expect(prefix: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while True:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            assert line is not None, f"client ended before {prefix!r}"
            if line.startswith(prefix):
                return

    try:
        bob.expect_prefix("* guest")  # alice's join
        bob.expect(f"* {bob.seen[-1].split()[1]} is now known as alice")
        bob.send("/sendfile slow.bin 1000")
        tid = int(bob.expect_prefix("OK sendfile ").split()[2])
        bob.send_raw(encode_frame(f"file-data {tid}", b"x"))
        expect('* bob is sending "slow.bin" (1000 bytes)')
        assert alice.stdin is not None
        alice.stdin.write("hello\n")
        alice.stdin.close()  # end of input, with the file still arriving
        started = time.monotonic()
        for _ in range(100):  # one byte every 0.1 s (the wait for the client's exit paces it), 10 s at most
            try:
                alice.wait(0.1)
                break
            except subprocess.TimeoutExpired:
                bob.send_raw(encode_frame(f"file-data {tid}", b"x"))
        elapsed = time.monotonic() - started
        assert alice.returncode == 0 and 1.0 <= elapsed < 6.0, (alice.returncode, elapsed)
        reader.join(DEADLINE)
        out: list[str] = []
        while (line := lines.get_nowait()) is not None:
            out.append(line)
        assert any(line.startswith('discarded "slow.bin" from bob: still arriving 1 s after quitting (') for line in out), out
        assert list((tmp_path / "received").iterdir()) == []
        bob.expect("alice: hello")
    finally:
        if alice.poll() is None:
            alice.kill()
            alice.wait()
        if alice.stdout is not None:
            alice.stdout.close()
