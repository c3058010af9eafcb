"""The bulletin board plugin (chatroom.builtin.board).

The first tests run a whole room in-process with the test kit
(``chatroom_room``: the real server with fake sockets); the end-to-end tests
at the end run the real ``chatroom-server`` and talk TCP."""

from __future__ import annotations

import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from chatroom.builtin import board, boardpages
from chatroom.model.store import close_store, open_store, plugin_store_path
from chatroom.testing import FakeClient, InProcessRoom

TRANSCRIPT = ["Welcome socket programming", "Text#!", "more text."]


@pytest.fixture
def room(chatroom_room) -> InProcessRoom:  # type: ignore[no-untyped-def]
    return chatroom_room()  # the built-ins: core, board, tweet, sendfile


def post(client: FakeClient, *lines: str) -> list[str]:
    """Post *lines* as one post; return what the poster received."""
    data = "".join(line + "\n" for line in ("/post", *lines, "#"))
    return client.send_bytes(data.encode())


def count(room: InProcessRoom, sql: str) -> int:
    return room.context("board").store.execute(sql).fetchone()[0]


def test_origin_transcript(room: InProcessRoom) -> None:
    bob = room.join("bob")
    alice = room.join("alice")
    bob.clear()
    assert alice.say("/post") == []
    for line in TRANSCRIPT:
        assert alice.say(line) == []  # nothing is said until the lone "#"
    assert alice.say("#") == ["OK"]
    assert alice.say("/read") == [*TRANSCRIPT, "#"]
    assert bob.received == []  # post lines never reach the room
    assert "[GENERAL] chatroom.plugin.board: post 1 by alice: 3 lines, 42 bytes" in room.logs


def test_read_empty_board(room: InProcessRoom) -> None:
    bob = room.join("bob")
    assert bob.say("/read") == ["#"]
    assert bob.say("/read -v 3") == ["#"]


def test_post_lines_that_look_like_commands_are_post_lines(room: InProcessRoom) -> None:
    alice = room.join("alice")
    lines = ["/read", "/nick mallory", " #", "# ", "##", "", "/quit now", "/quitter", "//quit", "//QUIT", "///quit"]
    assert post(alice, *lines) == ["OK"]
    assert alice.nick == "alice"
    assert alice.say("/read") == [*lines[:8], "/quit", "/QUIT", "///quit", "#"]


def test_quit_in_mid_post_keeps_nothing_and_quits(room: InProcessRoom) -> None:
    alice, bob = room.join("alice"), room.join("bob")
    post(alice, "first post")
    alice.say("/post")
    alice.say("half written")
    assert alice.say("/QUIT") == ["OK"]  # the core's /quit runs
    assert alice.closed
    assert bob.say("/read") == ["first post", "#"]


def test_disconnect_in_mid_post_keeps_nothing(room: InProcessRoom, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(board, "FLUSH_LINES", 10)  # so part of the post is already in the store
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("/post")
    alice.send_bytes("".join(f"line {i}\n" for i in range(25)).encode())
    assert count(room, "SELECT count(*) FROM lines") == 20  # flushed, not yet a post
    alice.leave()
    assert count(room, "SELECT count(*) FROM lines") == 0
    assert count(room, "SELECT count(*) FROM posts") == 0
    assert bob.say("/read") == ["#"]


def test_long_posts_are_flushed_in_chunks_and_kept_whole(room: InProcessRoom, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(board, "FLUSH_LINES", 100)
    monkeypatch.setattr(boardpages, "PAGE", 7)
    alice, bob = room.join("alice"), room.join("bob")
    lines = [f"line {i}" for i in range(1234)]
    alice.say("/post")
    bob.say("/post")  # two posts being written at once
    for i, line in enumerate(lines):
        alice.say(line)
        if i % 100 == 0:
            bob.say(f"bob {i}")
    assert bob.say("#") == ["OK"]
    assert alice.say("#") == ["OK"]
    bob_lines = [f"bob {i}" for i in range(0, 1234, 100)]
    assert alice.say("/read") == [*bob_lines, *lines, "#"]  # in order of completion, each post whole
    assert count(room, "SELECT count(*) FROM posts WHERE seq IS NULL") == 0
    out = alice.say("/read -v 1")
    assert out[0].startswith("-- post 2 by alice ") and out[1:] == [*lines, "#"]


def test_read_last_n_and_verbose(room: InProcessRoom) -> None:
    alice, bob = room.join("alice"), room.join("bob")
    post(alice, "a1", "a2")
    post(bob, "b1")
    post(alice, "c1", "c2", "c3")
    assert bob.say("/read 2") == ["b1", "c1", "c2", "c3", "#"]
    assert bob.say("/read 10") == ["a1", "a2", "b1", "c1", "c2", "c3", "#"]
    out = bob.say("/read -v 2")
    assert out[0].startswith("-- post 2 by bob at ") and out[0].endswith(" UTC (1 lines) --")
    assert out[1] == "b1"
    assert out[2].startswith("-- post 3 by alice at ") and out[2].endswith("(3 lines) --")
    assert out[3:] == ["c1", "c2", "c3", "#"]
    for bad in ("/read 0", "/read x", "/read -1", "/read 1 2"):
        assert bob.say(bad) == [f"ERROR usage: {board.READ_USAGE}"]


def test_read_pages_mix_small_and_long_posts(room: InProcessRoom, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boardpages, "PAGE", 4)
    alice = room.join("alice")
    expected: list[str] = []
    for i in range(30):
        lines = [f"p{i} l{j}" for j in range(1 + (i * 7) % 4 if i != 12 else 11)]  # post 13 is long
        post(alice, *lines)
        expected.extend(lines)
    assert alice.say("/read") == [*expected, "#"]
    out = alice.say("/read -v")
    headers = [line for line in out if line.startswith("-- post ")]
    assert [h.split()[2] for h in headers] == [str(i) for i in range(1, 31)]
    assert [line for line in out if not line.startswith("-- post ")] == [*expected, "#"]


def test_read_is_a_snapshot_streamed_with_backpressure(room: InProcessRoom) -> None:
    alice, bob = room.join("alice"), room.join("bob")
    lines = [f"{i:05d} " + "x" * 100 for i in range(5000)]  # ~520 KB: more than one output queue's worth
    post(alice, *lines)
    bob.clear()
    bob.stall()
    bob.say("/read")
    assert 0 < bob.client.queued < 400_000  # pulled up to the low-water mark, not the whole board
    assert post(alice, "posted during the read") == ["OK"]
    bob.resume()
    assert bob.received == [*lines, "#"]  # the read ends where the board ended when it started
    assert bob.say("/read 1") == ["posted during the read", "#"]


def test_one_line_post_and_lone_hash(room: InProcessRoom) -> None:
    alice = room.join("alice")
    assert alice.say("/post Hello board") == ["OK"]
    assert alice.say("/post #") == ['ERROR a post line cannot be exactly "#"']
    assert post(alice) == ["OK"]  # an empty post: OK, nothing stored
    assert alice.say("/read") == ["Hello board", "#"]
    assert any(line.startswith("[ERROR] chatroom.plugin.board: post by alice rejected") for line in room.logs)


def test_too_long_post_keeps_nothing(room: InProcessRoom, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(board, "MAX_POST_LINES", 5)
    alice = room.join("alice")
    reply = post(alice, *[str(i) for i in range(8)])
    assert len(reply) == 1 and reply[0].startswith("ERROR post too long")
    assert alice.say("/read") == ["#"]


def test_read_n_is_bounded_ascii_digits_and_misuse_is_never_a_fault(room: InProcessRoom) -> None:
    """Issue 8, item 2: each of these once crashed the handler, and five faults disabled the board
    for everyone; now each is a usage error, however often it is sent."""
    alice = room.join("alice")
    post(alice, "kept")
    usage = [f"ERROR usage: {board.READ_USAGE}"]
    assert "1000000" in board.READ_USAGE  # the bound is in the usage line
    bad = ["²", "99999999999999999999", "1000001", "٣", "１", "+1", "1_0", "0x1", "9" * 5000, "-v ²", "1 1"]
    for _ in range(6):  # more than the plugin host's fault limit
        for arg in bad:
            assert alice.say(f"/read {arg}") == usage, arg
    assert room.faults == []
    assert alice.say("/read 1000000") == ["kept", "#"]
    assert alice.say("/read -v 01")[1:] == ["kept", "#"]
    assert post(alice, "the board still works") == ["OK"]


class FullDisk:
    """A board store whose writes fail as SQLite's do when the disk is full (SQLITE_FULL),
    once ``full`` is set; deletes and reads still work."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.full = False
        self.refused = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.conn, name)

    def _check(self, sql: str) -> None:
        if self.full and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "COMMIT")):
            self.refused += 1
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        self._check(sql)
        return self.conn.execute(sql, *args)

    def executemany(self, sql: str, *args: object) -> sqlite3.Cursor:
        self._check(sql)
        return self.conn.executemany(sql, *args)


@pytest.fixture
def full_disk(room: InProcessRoom, monkeypatch: pytest.MonkeyPatch) -> FullDisk:
    real = board._db
    disk = FullDisk(real(room.context("board")))
    monkeypatch.setattr(board, "_db", lambda ctx: (real(ctx), disk)[1])
    return disk


def test_a_full_disk_in_mid_post_says_so_and_keeps_nothing(
    room: InProcessRoom, full_disk: FullDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8, item 16: the flush of a long post fails with SQLITE_FULL."""
    monkeypatch.setattr(board, "FLUSH_LINES", 10)
    alice, bob = room.join("alice"), room.join("bob")
    post(alice, "before")
    bob.clear()
    alice.say("/post")
    alice.send_bytes("".join(f"line {i}\n" for i in range(15)).encode())
    assert count(room, "SELECT count(*) FROM lines WHERE post_id IN (SELECT id FROM posts WHERE seq IS NULL)") == 10
    full_disk.full = True
    assert alice.send_bytes("".join(f"more {i}\n" for i in range(20)).encode()) == []  # still post lines
    assert full_disk.refused == 2  # the flush, then the delete of the flushed part; later lines are dropped
    assert alice.say("#") == ["ERROR post not saved: disk full"]
    assert bob.received == []  # nothing of the post reached the room
    full_disk.full = False
    assert alice.say("/read") == ["before", "#"]
    assert "[ERROR] chatroom.plugin.board: post by alice rejected: post not saved: disk full" in room.logs
    assert room.faults == []
    # the full disk refused even the delete of the flushed part: it goes with the next post
    assert count(room, "SELECT count(*) FROM lines") == 1 + 10
    assert post(alice, "after") == ["OK"]  # the disk has room again
    assert count(room, "SELECT count(*) FROM posts") == 2
    assert count(room, "SELECT count(*) FROM lines") == 2
    assert alice.say("/read") == ["before", "after", "#"]


def test_a_full_disk_at_commit_says_so_and_keeps_nothing(room: InProcessRoom, full_disk: FullDisk) -> None:
    alice = room.join("alice")
    full_disk.full = True
    assert post(alice, "short", "post") == ["ERROR post not saved: disk full"]
    assert alice.say("/post one line") == ["ERROR post not saved: disk full"]
    full_disk.full = False
    assert count(room, "SELECT count(*) FROM posts") == 0 and count(room, "SELECT count(*) FROM lines") == 0
    assert alice.say("/read") == ["#"]
    assert room.faults == []


def test_other_database_errors_are_reported_as_such(room: InProcessRoom) -> None:
    assert board.not_saved(sqlite3.OperationalError("database or disk is full")) == "post not saved: disk full"
    assert board.not_saved(sqlite3.OperationalError("disk I/O error")) == "post not saved: disk I/O error"


def test_posts_persist_and_half_written_ones_are_dropped(
    chatroom_room, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setattr(board, "FLUSH_LINES", 2)
    data = tmp_path / "data"
    first = chatroom_room(data_dir=data)
    alice = first.join("alice")
    post(alice, "kept", "Text#!")
    alice.say("/post")
    alice.send_bytes(b"half\nwritten\npost\n")
    conn = open_store(plugin_store_path(data, "board"))
    assert conn.execute("SELECT count(*) FROM lines").fetchone()[0] == 2 + 2  # the post's first 2 lines were flushed
    close_store(conn)
    # as after a crash (the first server never finished the post): start-up drops the half-written post
    second = chatroom_room(data_dir=data)
    assert count(second, "SELECT count(*) FROM lines") == 2
    out = second.join("bob").say("/read -v")
    assert out[0].startswith("-- post 1 by alice at ")
    assert out[1:] == ["kept", "Text#!", "#"]
    first.close()


def test_a_clean_shutdown_mid_post_discards_the_post(chatroom_room, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(board, "FLUSH_LINES", 2)
    data = tmp_path / "data"
    first = chatroom_room(data_dir=data)
    alice = first.join("alice")
    post(alice, "kept")
    alice.say("/post")
    alice.send_bytes(b"half\nwritten\npost\n")
    first.close()  # the capture's on_end runs at shutdown: nothing half-written is kept
    conn = open_store(plugin_store_path(data, "board"))
    assert conn.execute("SELECT count(*) FROM lines").fetchone()[0] == 1
    close_store(conn)


def test_commands_are_declared() -> None:
    names = {c.name: c for c in board.register_commands()}
    assert set(names) == {"post", "read"}
    assert "/quit" in names["post"].summary and "#" in names["post"].summary
    assert "/quit aborts the post and disconnects" in names["post"].summary
    assert "1000000" in names["read"].usage


# -- end to end: the real chatroom-server over TCP ------------------------------------------


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
    # a generous bound (a shared CI machine): without backpressure chat would wait for ever behind the read
    assert worst < 5.0, f"chat stalled {worst:.3f} s behind a stalled /read"
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
    assert worst < 5.0
