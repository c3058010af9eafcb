"""The bulletin board plugin (chatroom.builtin.board).

Unit tests drive the plugin through the real Context against a small stand-in for
the server (no sockets); the end-to-end tests at the end run the real
``chatroom-server`` and talk TCP."""

from __future__ import annotations

import sqlite3
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
    assert conn.execute("SELECT count(*) FROM drafts").fetchone()[0] == 20
    server.leave(alice, "connection lost")
    assert conn.execute("SELECT count(*) FROM drafts").fetchone()[0] == 0
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
    assert server.plugin_store(PLUGIN).execute("SELECT count(*) FROM drafts").fetchone()[0] == 0


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


def test_stale_drafts_are_dropped_at_startup(tmp_path: Path) -> None:
    conn = open_store(plugin_store_path(tmp_path, PLUGIN))
    from chatroom.store import migrate

    migrate(conn, board.MIGRATIONS)
    conn.execute("INSERT INTO drafts(draft, text) VALUES (1, 'from a killed server')")
    close_store(conn)
    srv = FakeServer(tmp_path)
    board.startup(Context(srv, PLUGIN))  # type: ignore[arg-type]
    assert srv.plugin_store(PLUGIN).execute("SELECT count(*) FROM drafts").fetchone()[0] == 0
    srv.close()


def test_commands_are_declared() -> None:
    names = {c.name: c for c in board.register_commands()}
    assert set(names) == {"post", "read"}
    assert "/quit" in names["post"].summary and "#" in names["post"].summary
    with pytest.raises(UsageError):
        names["read"].parse_args("1 2 3")
