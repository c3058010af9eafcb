"""Rooms are bounded (issue 17 row 2), end to end against the real ``chatroom-server`` over TCP: rooms without
an owner go when empty, also across a restart; a per-connection creation rate and ``--max-rooms``; ``/rooms``
and the web page's room list bounded and paged; a restart's catch-up by history id. Model-level and
linger-expiry tests (a fake clock): tests/test_room_lifetime.py.
"""

from __future__ import annotations

import re
import signal
import sqlite3
from pathlib import Path
from typing import Iterator

import pytest
from web_kit import WSClient, close_all, web_url

from chatroom.model.rooms import CREATE_BURST

PW = "sesame-seeds"


@pytest.fixture(autouse=True)
def _close_websockets() -> Iterator[None]:
    yield
    close_all()


def rooms_on_disk(data: Path) -> list[str]:
    db = sqlite3.connect(data / "rooms.sqlite3")
    try:
        return [name for (name,) in db.execute("SELECT name FROM rooms ORDER BY name")]
    finally:
        db.close()


def test_300_rounds_of_join_and_part_by_a_guest_leave_a_bounded_number_of_rooms(
        server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    server = server_factory("--flood-rate", "0", data_dir=data)  # only the room rules slow this guest
    nc = server.raw_client()
    nc.expect_prefix("* Welcome")
    nc.send_raw(b"".join(f"/join #r{i}\n/part #r{i}\n".encode() for i in range(300)))
    nc.send("/rooms")
    replies = nc.expect("OK 1 room")
    assert replies[:2 * CREATE_BURST] == [line for i in range(CREATE_BURST) for line in (
        f"OK join #r{i} (1 member)", f"OK part #r{i}; current room #lobby")]
    refusals = replies[2 * CREATE_BURST:-1]
    assert len(refusals) == 2 * (300 - CREATE_BURST)
    assert re.fullmatch(r"ERROR you are creating rooms too fast \(10 at once, then one every 30 s\): try again in "
                        r"\d+ s, or join a room that exists \(/rooms\)", refusals[0])
    assert refusals[1] == f"ERROR you are not in #r{CREATE_BURST}"
    assert replies[-1] == "* #lobby (1)"
    assert server.stop(signal.SIGTERM) == 0
    assert rooms_on_disk(data) == ["#lobby"]
    server = server_factory(data_dir=data)
    nc = server.connect("again")
    nc.send("/rooms")
    assert nc.expect("OK 1 room") == ["* #lobby (1)"]


def test_a_restart_keeps_a_guest_room_for_its_members_to_catch_up_by_id(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    server = server_factory(data_dir=data)
    alice = server.connect("alice")
    alice.send("/caps tags")
    alice.expect("OK caps tags")
    alice.send("/join #team")
    alice.expect("OK join #team (1 member)")
    alice.send("seen before the restart")
    alice.send("/history 1")
    last_seen = int(re.match(r"@msgid=(\d+);", alice.next_line()).group(1))  # type: ignore[union-attr]
    alice.expect("OK history #team 1 line")
    bob = server.connect("bob")
    bob.send("/join #team")
    bob.expect("OK join #team (2 members)")
    bob.send("missed by alice")
    alice.expect_where(lambda line: line.endswith("bob: missed by alice"), "bob's line")
    alice.close()  # alice's connection is gone; the line below is said while she is away
    bob.send("also missed")
    bob.sync()
    assert server.stop(signal.SIGTERM) == 0
    assert "#team" in rooms_on_disk(data)  # it holds lines: kept for its members to come back
    server = server_factory(data_dir=data)
    carol = server.connect("carol")
    carol.send("/rooms")
    assert carol.expect("OK 1 room") == ["* #lobby (1)"]  # not listed while nobody is in it
    alice = server.connect("alice")  # as a terminal client does: rejoin, then /history since the last id
    alice.send("/caps tags")
    alice.expect("OK caps tags")
    alice.send("/join #team")
    alice.expect("OK join #team (1 member)")
    alice.send(f"/history #team since {last_seen}")
    got = alice.expect("OK history #team 2 lines")
    assert [line.rsplit(": ", 1)[-1] for line in got] == ["missed by alice", "also missed"]
    assert re.match(rf"@msgid={last_seen + 2};", got[-1])
    alice.send("after the restart")
    alice.send("/history 1")
    assert alice.next_line().startswith(f"@msgid={last_seen + 3};")  # ids go on


def test_max_rooms_refuses_a_new_room_with_a_clear_error_and_a_lingering_room_makes_way(
        server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--max-rooms", "3")
    alice = server.connect("alice")
    alice.send(f"/register {PW}")
    alice.expect("OK registered alice; you are logged in")
    alice.send("/join #owned")  # alice's: it persists, and counts
    alice.expect("OK join #owned (1 member)")
    bob = server.connect("bob")
    bob.send("/join #guests")
    bob.expect("OK join #guests (1 member)")
    bob.send("kept a while")
    bob.send("/join #more")
    bob.expect("ERROR this server holds 3 rooms, its limit: join one of them (/rooms)")
    bob.send("/part #guests")
    bob.expect("OK part #guests; current room #lobby")  # it lingers (it holds a line): it makes way
    bob.send("/join #more")
    bob.expect("OK join #more (1 member)")
    bob.send("/history #guests")
    bob.expect("ERROR no such room: #guests")
    alice.send("/rooms")
    assert alice.expect("OK 3 rooms")[-3:] == ["* #lobby (2)", "* #more (1)", "* #owned (1)"]


def test_rooms_and_the_web_room_list_are_bounded_and_paged(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--flood-rate", "0", "--web-port", "0")
    _, host, port = web_url(server)
    makers = [server.connect(f"maker{n}") for n in range(12)]
    for n, maker in enumerate(makers):  # 120 rooms with a member each, CREATE_BURST per connection
        maker.send_raw(b"".join(f"/join #room{n:02d}x{i}\n".encode() for i in range(CREATE_BURST)))
        maker.expect(f"OK join #room{n:02d}x{CREATE_BURST - 1} (1 member)")
    page = WSClient(host, port)
    hello = page.expect("hello")
    assert len(hello["rooms"]) == 100 and hello["rooms"] == sorted(hello["rooms"])
    reader = server.connect("reader")
    reader.send("/rooms")
    first = reader.expect("OK 121 rooms (page 1 of 3: /rooms 2 for more)")
    assert len(first) == 50 and first[0] == "* #lobby (14)" and first[1] == "* #room00x0 (1)"
    reader.send("/rooms 3")
    last = reader.expect("OK 121 rooms (page 3 of 3)")
    assert len(last) == 21 and last[-1] == "* #room11x9 (1)"
    reader.send("/rooms x9")
    assert len(reader.expect("OK 12 rooms matching x9")) == 12
    reader.send("/rooms room0 2")
    assert len(reader.expect("OK 100 rooms matching room0 (page 2 of 2)")) == 50
    reader.send("/rooms 4")
    reader.expect("ERROR usage: /rooms [MATCH] [PAGE] (PAGE from 1 to 3)")
