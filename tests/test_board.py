"""The bulletin board plugin (chatroom.builtin.board).

Unit tests drive the plugin through the real Context against a small stand-in for
the server (no sockets); the end-to-end tests at the end run the real
``chatroom-server`` and talk TCP."""

from __future__ import annotations

import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from chatroom.builtin import board
from chatroom.commands import CommandError, Registry, UsageError, split_command
from chatroom.context import Context
from chatroom.store import close_store, open_store, plugin_store_path

PLUGIN = "board"


class FakeClient:
    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.capture: Any = None
        self.closed = False
        self.room = None
        self.out: list[str] = []
        self.dispatched: list[str] = []


class FakeServer:
    """Just what Context calls: plugin state and store, line output, streams, dispatch."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.states: dict[str, dict[str, Any]] = {}
        self.stores: dict[str, sqlite3.Connection] = {}
        self.streams: list[tuple[FakeClient, Iterator[str]]] = []
        self.registry = Registry()
        for command in board.register_commands():
            self.registry.add(command)

    def plugin_state(self, plugin: str) -> dict[str, Any]:
        return self.states.setdefault(plugin, {})

    def plugin_store(self, plugin: str) -> sqlite3.Connection:
        if plugin not in self.stores:
            self.stores[plugin] = open_store(plugin_store_path(self.data_dir, plugin))
        return self.stores[plugin]

    def send_line(self, client: FakeClient, text: str) -> None:
        client.out.append(text)

    def stream(self, client: FakeClient, lines: Iterator[str], plugin: str) -> None:
        self.streams.append((client, lines))

    def handle_line(self, client: FakeClient, line: str, bypass_capture: bool = False) -> None:
        client.dispatched.append(line)

    def close(self) -> None:
        for conn in self.stores.values():
            close_store(conn)

    # -- what the core does with a typed line ---------------------------------
    def type(self, client: FakeClient, line: str) -> None:
        ctx = Context(self, PLUGIN, client)  # type: ignore[arg-type]
        if client.capture is not None:
            _, on_line, _ = client.capture
            on_line(ctx, line)
            return
        name, text = split_command(line)
        command = self.registry.get(name)
        assert command is not None, line
        ctx.text = text
        try:
            command.handler(ctx, command.parse_args(text))
        except UsageError as exc:
            client.out.append(f"ERROR usage: {exc}")
        except CommandError as exc:
            client.out.append(f"ERROR {exc}")

    def leave(self, client: FakeClient, reason: str) -> None:
        if client.capture is not None:
            _, _, on_end = client.capture
            client.capture = None
            on_end(Context(self, PLUGIN, client), reason)  # type: ignore[arg-type]

    def drain(self, client: FakeClient) -> list[str]:
        """Run every stream queued for *client* to the end; return and clear its output."""
        for who, lines in self.streams:
            if who is client:
                client.out.extend(lines)
        self.streams = [(w, s) for w, s in self.streams if w is not client]
        out, client.out = client.out, []
        return out


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FakeServer]:
    srv = FakeServer(tmp_path)
    yield srv
    srv.close()


def post(server: FakeServer, client: FakeClient, *lines: str) -> list[str]:
    server.type(client, "/post")
    for line in lines:
        server.type(client, line)
    server.type(client, "#")
    return server.drain(client)


def test_origin_transcript(server: FakeServer) -> None:
    alice = FakeClient("alice")
    server.type(alice, "/post")
    assert alice.capture is not None
    for line in ("Welcome socket programming", "Text#!", "more text."):
        server.type(alice, line)
        assert alice.out == []  # nothing is said until the lone "#"
    server.type(alice, "#")
    assert alice.capture is None
    assert server.drain(alice) == ["OK"]
    server.type(alice, "/read")
    assert server.drain(alice) == ["Welcome socket programming", "Text#!", "more text.", "#"]


def test_read_empty_board(server: FakeServer) -> None:
    bob = FakeClient("bob")
    server.type(bob, "/read")
    assert server.drain(bob) == ["#"]
    server.type(bob, "/read 3")
    assert server.drain(bob) == ["#"]


def test_post_lines_that_look_like_commands_are_post_lines(server: FakeServer) -> None:
    alice = FakeClient("alice")
    lines = ("/read", "/nick mallory", " #", "# ", "##", "", "/quit now", "/quitter", "//quit", "//QUIT", "///quit")
    assert post(server, alice, *lines) == ["OK"]
    assert alice.dispatched == []
    server.type(alice, "/read")
    assert server.drain(alice) == [*lines[:8], "/quit", "/QUIT", "///quit", "#"]


def test_quit_in_mid_post_keeps_nothing_and_quits(server: FakeServer) -> None:
    alice = FakeClient("alice")
    post(server, alice, "first post")
    server.type(alice, "/post")
    server.type(alice, "half written")
    server.type(alice, "/QUIT")
    assert alice.capture is None
    assert alice.dispatched == ["/QUIT"]  # the core's /quit runs
    server.type(alice, "/read")
    assert server.drain(alice) == ["first post", "#"]


def test_disconnect_in_mid_post_keeps_nothing(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(board, "FLUSH_LINES", 10)  # so part of the draft is already on disk
    alice, bob = FakeClient("alice"), FakeClient("bob")
    server.type(alice, "/post")
    for i in range(25):
        server.type(alice, f"line {i}")
    conn = server.plugin_store(PLUGIN)
    assert conn.execute("SELECT count(*) FROM lines").fetchone()[0] == 20  # flushed, not yet a post
    server.leave(alice, "connection lost")
    assert conn.execute("SELECT count(*) FROM lines").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 0
    server.type(bob, "/read")
    assert server.drain(bob) == ["#"]


def test_long_post_is_flushed_in_chunks_and_kept_in_order(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(board, "FLUSH_LINES", 100)
    monkeypatch.setattr(board, "PAGE", 7)
    alice, bob = FakeClient("alice"), FakeClient("bob")
    lines = [f"line {i}" for i in range(1234)]
    server.type(alice, "/post")
    server.type(bob, "/post")  # two posts being written at once
    for i, line in enumerate(lines):
        server.type(alice, line)
        if i % 100 == 0:
            server.type(bob, f"bob {i}")
    server.type(bob, "#")
    server.type(alice, "#")
    assert server.drain(alice) == ["OK"] and server.drain(bob) == ["OK"]
    server.type(alice, "/read")
    bob_lines = [f"bob {i}" for i in range(0, 1234, 100)]
    assert server.drain(alice) == [*bob_lines, *lines, "#"]  # in order of completion, each post whole
    assert server.plugin_store(PLUGIN).execute("SELECT count(*) FROM posts WHERE seq IS NULL").fetchone()[0] == 0
    server.type(alice, "/read -v 1")
    out = server.drain(alice)
    assert out[0].startswith("-- post 2 by alice ") and out[1:] == [*lines, "#"]


def test_read_last_n_and_verbose(server: FakeServer) -> None:
    alice, bob = FakeClient("alice"), FakeClient("bob")
    post(server, alice, "a1", "a2")
    post(server, bob, "b1")
    post(server, alice, "c1", "c2", "c3")
    server.type(bob, "/read 2")
    assert server.drain(bob) == ["b1", "c1", "c2", "c3", "#"]
    server.type(bob, "/read 10")
    assert server.drain(bob) == ["a1", "a2", "b1", "c1", "c2", "c3", "#"]
    server.type(bob, "/read -v 2")
    out = server.drain(bob)
    assert out[0].startswith("-- post 2 by bob at ") and out[0].endswith(" UTC (1 lines) --")
    assert out[1] == "b1"
    assert out[2].startswith("-- post 3 by alice at ") and out[2].endswith("(3 lines) --")
    assert out[3:] == ["c1", "c2", "c3", "#"]
    for bad in ("/read 0", "/read x", "/read -1", "/read 1 2"):
        server.type(bob, bad)
        assert server.drain(bob) == [f"ERROR usage: {board.READ_USAGE}"]


def test_read_pages_mix_small_and_long_posts(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(board, "PAGE", 4)
    alice = FakeClient("alice")
    expected: list[str] = []
    for i in range(30):
        lines = [f"p{i} l{j}" for j in range(1 + (i * 7) % 4 if i != 12 else 11)]  # post 13 is long
        post(server, alice, *lines)
        expected.extend(lines)
    server.type(alice, "/read")
    assert server.drain(alice) == [*expected, "#"]
    server.type(alice, "/read -v")
    out = server.drain(alice)
    headers = [line for line in out if line.startswith("-- post ")]
    assert [h.split()[2] for h in headers] == [str(i) for i in range(1, 31)]
    assert [line for line in out if not line.startswith("-- post ")] == [*expected, "#"]


def test_read_is_a_snapshot_and_lazy(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(board, "PAGE", 2)
    alice, bob = FakeClient("alice"), FakeClient("bob")
    post(server, alice, "1", "2", "3")
    server.type(bob, "/read")
    (_, lines), = server.streams
    assert next(lines) == "1"
    post(server, alice, "later")  # posted while bob's read is in progress
    assert list(lines) == ["2", "3", "#"]


def test_one_line_post_and_lone_hash(server: FakeServer) -> None:
    alice = FakeClient("alice")
    server.type(alice, "/post Hello board")
    assert server.drain(alice) == ["OK"]
    assert alice.capture is None
    server.type(alice, "/post #")
    assert server.drain(alice) == ['ERROR a post line cannot be exactly "#"']
    assert post(server, alice) == ["OK"]  # an empty post: OK, nothing stored
    server.type(alice, "/read")
    assert server.drain(alice) == ["Hello board", "#"]


def test_too_long_post_keeps_nothing(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(board, "MAX_POST_LINES", 5)
    alice = FakeClient("alice")
    reply = post(server, alice, *[str(i) for i in range(8)])
    assert len(reply) == 1 and reply[0].startswith("ERROR post too long")
    assert alice.capture is None
    server.type(alice, "/read")
    assert server.drain(alice) == ["#"]


def test_posts_persist_in_the_store(tmp_path: Path) -> None:
    first = FakeServer(tmp_path)
    post(first, FakeClient("alice"), "kept", "Text#!")
    first.close()
    second = FakeServer(tmp_path)
    bob = FakeClient("bob")
    second.type(bob, "/read -v")
    out = second.drain(bob)
    second.close()
    assert out[0].startswith("-- post 1 by alice at ")
    assert out[1:] == ["kept", "Text#!", "#"]


def test_half_written_posts_are_dropped_at_startup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(board, "FLUSH_LINES", 2)
    first = FakeServer(tmp_path)
    alice = FakeClient("alice")
    post(first, alice, "kept")
    first.type(alice, "/post")
    for line in ("half", "written", "post"):
        first.type(alice, line)
    first.close()  # as if the server were killed: on_end never runs
    conn = open_store(plugin_store_path(tmp_path, PLUGIN))
    assert conn.execute("SELECT count(*) FROM lines").fetchone()[0] == 3
    close_store(conn)
    second = FakeServer(tmp_path)
    board.startup(Context(second, PLUGIN))  # type: ignore[arg-type]
    conn = second.plugin_store(PLUGIN)
    assert conn.execute("SELECT count(*) FROM lines").fetchone()[0] == 1
    assert conn.execute("SELECT seq FROM posts").fetchall() == [(1,)]
    bob = FakeClient("bob")
    second.type(bob, "/read")
    assert second.drain(bob) == ["kept", "#"]
    second.close()


def test_commands_are_declared() -> None:
    names = {c.name: c for c in board.register_commands()}
    assert set(names) == {"post", "read"}
    assert "/quit" in names["post"].summary and "#" in names["post"].summary
    with pytest.raises(UsageError):
        names["read"].parse_args("1 2 3")


# -- end to end: the real chatroom-server over TCP ------------------------------------------

TRANSCRIPT = ["Welcome socket programming", "Text#!", "more text."]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_e2e_origin_transcript_and_post_lines_not_broadcast(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory("--quiet")
    bob = srv.connect("bob")
    alice = srv.connect("alice")
    bob.expect_where(lambda line: line.endswith(" is now known as alice"), "alice's nick")
    alice.send("/post")
    for line in TRANSCRIPT:
        alice.send(line)
    alice.send("#")
    assert alice.expect("OK") == []
    alice.send("/read")
    assert alice.expect("#") == TRANSCRIPT
    alice.send("after the post")
    assert bob.expect("alice: after the post") == []  # no post line reached the room
    alice.send("/quit")
    assert alice.expect("OK") == []
    assert alice.closed_by_server()
    log = srv.log_text()
    assert "[GENERAL] chatroom.plugin.board: post 1 by alice: 3 lines" in log


def test_e2e_read_empty_board(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory("--quiet")
    alice = srv.connect("alice")
    alice.send("/read")
    assert alice.expect("#") == []
    alice.send("/read -v 5")
    assert alice.expect("#") == []


def test_e2e_quit_or_disconnect_in_mid_post_keeps_nothing(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory("--quiet")
    bob = srv.connect("bob")
    alice = srv.connect("alice")
    alice.send("/post")
    alice.send("half a post")
    alice.send("/quit")
    assert alice.expect("OK") == []
    assert alice.closed_by_server()
    carol = srv.connect("carol")
    carol.send("/post")
    carol.send("another half")
    carol.close()
    bob.expect("* carol left lobby (connection lost)")
    bob.send("/read")
    assert bob.expect("#") == []


def test_e2e_posts_survive_sigkill_and_sigterm(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "board-data"
    srv = server_factory("--quiet", data_dir=data)
    alice = srv.connect("alice")
    alice.send("/post")
    for line in TRANSCRIPT:
        alice.send(line)
    alice.send("#")
    alice.expect("OK")
    alice.send("/post")
    alice.send("never finished")  # half a post when the server dies
    srv.stop(signal.SIGKILL)
    srv = server_factory("--quiet", data_dir=data)
    bob = srv.connect("bob")
    bob.send("/read")
    assert bob.expect("#") == TRANSCRIPT
    bob.send("/post second post")
    bob.expect("OK")
    assert srv.stop(signal.SIGTERM) == 0
    srv = server_factory("--quiet", data_dir=data)
    carol = srv.connect("carol")
    carol.send("/read -v")
    out = carol.expect("#")
    assert out[0].startswith("-- post 1 by alice at ") and out[1:4] == TRANSCRIPT
    assert out[4].startswith("-- post 2 by bob at ") and out[5:] == ["second post"]


def test_e2e_read_100000_lines_while_chat_flows(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A 100,000-line /read is streamed with backpressure: while the reader does not read, the
    server neither stalls the room nor buffers the board (its memory stays flat); then every line
    arrives exactly."""
    srv = server_factory("--quiet")
    reader = srv.connect("reader")
    carol = srv.connect("carol")
    carol.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay between pings
    dave = srv.connect("dave")
    poster = srv.connect("poster")
    lines = [f"{i:06d} " + "board text " * 9 for i in range(100_000)]  # ~10 MB of board
    poster.send_raw(("/post\n" + "\n".join(lines) + "\n#\n").encode())
    poster.expect("OK", timeout=30)
    rss_before = _rss_kib(srv.proc.pid)

    reader.send("/read")  # ... and do not read it yet
    worst = 0.0
    for i in range(50):
        start = time.monotonic()
        carol.send(f"ping {i}")
        dave.expect(f"carol: ping {i}")
        worst = max(worst, time.monotonic() - start)
    growth_kib = _rss_kib(srv.proc.pid) - rss_before
    assert worst < 1.0, f"chat stalled {worst:.3f} s behind a stalled /read"
    assert growth_kib < 5 * 1024, f"server grew {growth_kib} KiB while a 10 MB /read was pending"

    got: list[str] = []
    done = threading.Event()

    def read_all() -> None:
        got.extend(line for line in reader.expect("#", timeout=30) if not line.startswith(("carol: ", "* ")))
        done.set()

    thread = threading.Thread(target=read_all)
    thread.start()
    pings = 0
    while not done.is_set() and pings < 10_000:  # chat keeps flowing while the reader drains
        start = time.monotonic()
        carol.send(f"pong {pings}")
        dave.expect(f"carol: pong {pings}")
        worst = max(worst, time.monotonic() - start)
        pings += 1
    thread.join(timeout=30)
    assert got == lines
    assert worst < 1.0
