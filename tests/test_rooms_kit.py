"""Rooms and history through the in-process kit (:mod:`chatroom.testing`, fixture ``chatroom_room``).

The kit runs the real server (hub, history, dispatcher, built-in room
commands) on fake I/O, so these tests can put several clients' input into ONE
loop pass (``client.sock.inbound += ...`` then ``room.settle()``), move the
clock, restart a room on the same data folder, and drive a plugin that uses
the public room API: things an end-to-end test cannot arrange exactly.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from chatroom import Command, hookimpl
from chatroom.wire import lines as protocol

STAMP = r"\[\d\d:\d\d\] "


def stamped(line: str, text: str, prefix: str = "") -> bool:
    return re.fullmatch(re.escape(prefix) + STAMP + re.escape(text), line) is not None


def tags_of(line: str) -> dict[str, str | bool]:
    head, _, _ = line.partition(" ")
    assert head.startswith("@"), line
    return {k: (v if eq else True) for k, eq, v in (p.partition("=") for p in head[1:].split(";"))}


def same_pass(*inputs: tuple[object, bytes]) -> None:
    """Queue each client's bytes, then run the loop: everything is read in one pass."""
    room = None
    for client, data in inputs:
        client.sock.inbound += data  # type: ignore[attr-defined]
        room = client.room  # type: ignore[attr-defined]
    room.settle()  # type: ignore[union-attr]


def test_room_commands_replies(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice, bob = room.join("alice"), room.join("bob")
    assert alice.say("/join #Design") == ["OK join #design (1 member)"]
    assert bob.say("/j design") == ["OK join #design (2 members)"]
    assert alice.received[-1] == "* bob joined design"
    assert alice.say("/topic ship it") == ["* alice set the topic of design: ship it", "OK topic"]
    assert bob.received[-1] == "* alice set the topic of design: ship it"
    assert bob.say("/rooms") == ["* #design (2): ship it", "* #lobby (2)", "OK 2 rooms"]
    assert bob.say("/who") == ["* 2 in design: alice, bob"]
    assert bob.say("/who #lobby") == ["* 2 in lobby: alice, bob"]
    assert bob.say("/who #nowhere") == ["ERROR no such room: #nowhere"]
    assert bob.say("/me nods") == []
    assert alice.received[-1] == "* bob nods"
    assert bob.say("/join #lobby") == ["OK current room #lobby"]
    assert alice.say("in design") == []
    assert bob.received[-1] == "[#design] alice: in design"
    assert alice.say("/part #lobby") == ["OK part #lobby; current room #design"]
    assert bob.received[-1] == "* alice left lobby"
    assert alice.say("/part #lobby") == ["ERROR you are not in #lobby"]
    assert alice.say("/part because") == ["OK part #design; you are in no room: /join #room"]
    assert bob.received[-1] == "[#design] * alice left design (because)"
    assert alice.say("hello?") == ["ERROR you are in no room: /join #room first"]
    assert alice.say("/me is lost") == ["ERROR you are in no room: /join #room first"]
    assert alice.say("/history") == ["ERROR you are in no room: /join #room first"]
    assert alice.say("/join #x y")[0].startswith("ERROR usage")
    assert alice.say("/join #no!") == ["ERROR '#no!' is not a room name: # and 1-32 of a-z 0-9 _ -"]
    assert bob.say("/rooms") == ["* #design (1): ship it", "* #lobby (1)", "OK 2 rooms"]


def test_a_joiner_gets_a_line_of_the_same_pass_once(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    """A line said in the pass where someone joins reaches the joiner once (live or as history, not both)."""
    room = chatroom_room()
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("/join #design")
    bob.clear()
    same_pass((alice, b"said as bob joins\n"), (bob, b"/join #design\n"))
    got = [line for line in bob.received if "said as bob joins" in line]
    assert got == ["alice: said as bob joins"] or (len(got) == 1 and stamped(got[0], "alice: said as bob joins"))
    bob.clear()
    same_pass((bob, b"/join #fresh\n"), (alice, b"/join #fresh\nfirst words\n"))
    assert len([line for line in bob.received if "first words" in line]) == 1


def test_one_pass_keeps_a_speakers_order_across_rooms(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice, bob = room.join("alice"), room.join("bob")
    for who in (alice, bob):
        who.say("/join #design")
    bob.say("/join #lobby")
    bob.clear()
    same_pass((alice, b"one\n/join #lobby\ntwo\n/me three\n/join #design\n/topic four\n/msg bob five\n"))
    assert bob.received == ["[#design] alice: one", "alice: two", "* alice three",
                            "[#design] * alice set the topic of design: four", "alice (private): five"]


def test_direct_line_follows_the_room_line_before_it(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice, bob = room.join("alice"), room.join("bob")
    bob.clear()
    same_pass((alice, b"public first\n/msg bob private second\n"))
    assert bob.received == ["alice: public first", "alice (private): private second"]


def test_rename_is_told_once_and_leaving_is_told_in_every_room(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice, bob, carol = room.join("alice"), room.join("bob"), room.join("carol")
    for who in (alice, bob):
        who.say("/join #design")
    carol.say("/part")
    for who in (alice, bob, carol):
        who.clear()
    alice.say("/nick alicia")
    assert bob.received == ["* alice is now known as alicia"]
    assert carol.received == []  # shares no room with alice
    bob.say("/join #lobby")
    bob.clear()
    alice.leave()
    assert sorted(bob.received) == ["* alicia left lobby (connection lost)",
                                    "[#design] * alicia left design (connection lost)"]


def test_tags_ids_and_coming_back_for_what_was_missed(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room(history_on_join=0)
    alice, bob = room.join("alice"), room.join("bob")
    assert bob.say("/caps tags") == ["OK caps tags"]
    alice.say("/join #design")
    bob.say("/join #design")
    alice.say("seen live")
    tags = tags_of(bob.last)
    assert tags["room"] == "#design" and tags["kind"] == "msg" and tags["nick"] == "alice"
    last_seen = int(str(tags["msgid"]))
    bob.say("/quit")
    assert bob.closed
    alice.say("missed 1")
    alice.say("/me missed 2")
    alice.say("/topic missed 3")
    back = room.join("bob")
    assert back.received[1:] == ["OK nick bob"]  # --history-on-join 0: no history after the welcome
    back.say("/caps tags")
    got = back.say(f"/history #design since {last_seen}")
    assert got[-1] == "OK history #design 3 lines"
    assert [int(str(tags_of(line)["msgid"])) for line in got[:-1]] == [last_seen + 1, last_seen + 2, last_seen + 3]
    assert [tags_of(line)["kind"] for line in got[:-1]] == ["msg", "me", "topic"]
    assert all(tags_of(line)["history"] is True for line in got[:-1])
    assert got[0].split(" ", 1)[1].startswith("[#design] [")  # not its current room: prefixed, then stamped
    plain = room.join("carol")
    assert plain.say("/history #design 1")[0].startswith("[#design] [")  # no tags unless asked


def test_history_stamp_shows_the_date_when_not_today(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice = room.join("alice")
    room.advance(3 * 86400)  # the kit's wall clock moves with its loop clock
    alice.say("three days on")
    line = room.join("bob").received[1]
    day = time.strftime("%Y-%m-%d", time.localtime(time.time() + 3 * 86400))
    assert re.fullmatch(re.escape(f"[{day} ") + r"\d\d:\d\d\] alice: three days on", line), line


def test_announce_limit_in_the_kit(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room(announce_limit=1)
    first = room.join("first")
    room.join("second")
    assert "* guest2 joined lobby" in first.received
    first.clear()
    room.join("third")
    assert not [line for line in first.received if "joined" in line]
    assert first.received == []  # nor renames (issue 17: 10,000 /nick in a big room were 10,000 x 10,000 notices)


def test_rooms_topics_and_history_persist_in_the_data_dir(chatroom_room, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "kept"
    first = chatroom_room(data_dir=data)
    alice = first.join("alice")
    alice.say("/join #design")
    alice.say("/topic remembered")
    alice.say("remember this")
    alice.say("/join #quiet")
    alice.say("/part")
    first.close()
    second = chatroom_room(data_dir=data)
    bob = second.join("bob")
    # alice is a guest: her rooms have no owner. #quiet held nothing and went with its last member; #design
    # lingers (not listed) and comes back as it was to whoever joins it (chatroom.model.rooms)
    assert bob.say("/rooms") == ["* #lobby (1)", "OK 1 room"]
    assert bob.say("/history #quiet") == ["ERROR no such room: #quiet"]
    got = bob.say("/join #design")
    assert got[0] == "* topic of design: remembered"
    assert stamped(got[1], "* alice set the topic of design: remembered") and stamped(got[2], "alice: remember this")
    assert got[3] == "OK join #design (1 member)"


class RoomsPlugin:
    """A third-party plugin using the public room API only."""

    @hookimpl
    def register_commands(self) -> list[Command]:
        return [Command("where", self.where, usage="/where", summary="your rooms", max_args=0),
                Command("shout", self.shout, usage="/shout TEXT", summary="broadcast", raw=True, min_args=1)]

    @staticmethod
    def where(ctx, args) -> None:  # type: ignore[no-untyped-def]
        ctx.reply(f"current {ctx.room.name}; all " + ",".join(r.name for r in ctx.rooms()))

    @staticmethod
    def shout(ctx, args) -> None:  # type: ignore[no-untyped-def]
        ctx.broadcast(ctx.text.upper())


def test_a_plugin_sees_rooms_and_broadcasts_into_the_current_one(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room(plugins=[("roomsplugin", RoomsPlugin())])
    alice, bob, carol = room.join("alice"), room.join("bob"), room.join("carol")
    alice.say("/join #design")
    bob.say("/join #design")
    bob.say("/join #lobby")
    assert alice.say("/where") == ["current #design; all #design,#lobby"]
    carol.clear()
    assert alice.say("/shout hey") == []
    assert bob.last == "[#design] HEY"
    assert carol.received == []  # not in #design


def test_the_longest_line_fits_with_every_prefix(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    """A chat line the server accepts still fits the line limit for a reader with tags and a room prefix."""
    room = chatroom_room()
    nick = "n" * 32
    long_room = "#" + "r" * 32
    sender, reader = room.join(nick), room.join("reader")
    reader.say("/caps tags")
    for who in (sender, reader):
        who.say(f"/join {long_room}")
    reader.say("/join #lobby")
    sender.say(f"/topic {'t' * 300}")
    reader.clear()
    text = "x" * (protocol.MAX_LINE - 1 - len(nick) - 2 - 1024)
    for _ in range(20):  # grow the line to the largest the server accepts (bounded search)
        reply = sender.say(text + "x" * 64)
        if reply:
            assert reply[0].startswith("ERROR line too long for the room")
            break
        text += "x" * 64
    else:
        raise AssertionError("no line was ever refused")
    got = [line for line in reader.received if "x" * 100 in line]
    assert got and all(len(line.encode()) + 1 <= protocol.MAX_LINE for line in got)
    assert got[-1].endswith(f"[{long_room}] {nick}: {text}")
    reader.clear()
    assert reader.say(f"/history {long_room} 1")[0].endswith(text)  # the history line fits too


def test_history_defaults_and_paging(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    """Join replays the newest 20; /history 20; since ID pages by 50 (again while a page is full); before ID."""
    room = chatroom_room()
    alice = room.join("alice")
    same_pass((alice, b"".join(b"n%d\n" % i for i in range(1, 61))))
    bob = room.join("bob")
    replay = bob.received[1:-1]  # between the welcome and OK nick
    assert len(replay) == 20 and stamped(replay[0], "alice: n41") and stamped(replay[-1], "alice: n60")
    assert len(bob.say("/history")) == 21
    bob.say("/caps tags")
    page = bob.say("/history since 0")
    assert page[-1] == "OK history #lobby 50 lines"
    ids = [int(str(tags_of(line)["msgid"])) for line in page[:-1]]
    assert ids == list(range(1, 51))
    page = bob.say(f"/history since {ids[-1]}")
    assert page[-1] == "OK history #lobby 10 lines" and tags_of(page[0])["msgid"] == "51"
    page = bob.say("/history before 11 3")
    assert [tags_of(line)["msgid"] for line in page[:-1]] == ["8", "9", "10"]
    assert bob.say("/history before 1") == ["OK history #lobby 0 lines"]
    assert bob.say("/history since 999999999999999999") == ["OK history #lobby 0 lines"]
    assert bob.say("/history since 9999999999999999999")[0].startswith("ERROR usage: /history")
    assert bob.say("/history 500")[-1] == "OK history #lobby 60 lines"


def test_no_room_line_reaches_a_socket_before_it_is_committed(chatroom_room, tmp_path: Path,
                                                               monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The durability rule: a line anyone received is already in rooms.sqlite3 (committed), so a
    SIGKILL right after cannot lose it. Here bob has output waiting (his socket was full), so the
    loop sees him writable in the same pass where alice says a line and then /msg's him (which
    fans her room's pending line out into bob's queue at once)."""
    import sqlite3

    data = tmp_path / "durable-kit"
    room = chatroom_room(data_dir=data)
    alice, bob = room.join("alice"), room.join("bob")
    db = sqlite3.connect(data / "rooms.sqlite3")
    uncommitted: list[str] = []
    real_send = bob.sock.send

    def checking_send(chunk):  # type: ignore[no-untyped-def]
        for line in bytes(chunk).decode().splitlines():
            if line.startswith("alice: "):  # room lines only (a /msg is "alice (private): ...")
                text = line.split(": ", 1)[1]
                if not db.execute("SELECT count(*) FROM history WHERE text = ?", (text,)).fetchone()[0]:
                    uncommitted.append(line)
        return real_send(chunk)

    monkeypatch.setattr(bob.sock, "send", checking_send)
    bob.stall()
    alice.say("queued while bob is full")
    bob.sock.stalled = False  # bob can take bytes again; the loop finds out at its next select
    same_pass((alice, b"said in the same pass\n/msg bob psst\n"))
    assert bob.received[-3:] == ["alice: queued while bob is full", "alice: said in the same pass",
                                 "alice (private): psst"]
    db.close()
    assert uncommitted == []


# -- a plugin's own thread: room.wait_for --------------------------------------------------------------------
class Bridge:
    """A plugin with a thread of its own (a bridge) that hands lines to the loop with ctx.call_soon_threadsafe."""

    def __init__(self) -> None:
        self.go = threading.Event()

    @hookimpl
    def startup(self, ctx):  # type: ignore[no-untyped-def]
        def run() -> None:
            if self.go.wait(5):
                ctx.call_soon_threadsafe(lambda: ctx.broadcast("* from the bridge", room="#lobby"))
        threading.Thread(target=run, daemon=True).start()


def test_wait_for_settles_until_a_plugin_thread_delivered(chatroom_room):
    bridge = Bridge()
    room = chatroom_room(plugins=[("bridge", bridge)])
    alice = room.join("alice")
    bridge.go.set()
    assert room.wait_for(lambda: "* from the bridge" in alice.received, timeout=5) is True
    with pytest.raises(TimeoutError, match="still false after 0.2 s"):
        room.wait_for(lambda: "never" in alice.received, timeout=0.2)
