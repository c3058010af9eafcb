"""The client's catch-up rule "never show an id twice per room", without sockets (chatroom/client/catchup.py).

A scale-out node killed before its paced commit stored a line it had sent loses that line locally; restarted,
it fetches it again from Redis and sends it live to the room, where the client that reconnected to it has
shown it already (tests/test_scaleout_e2e.py's killed-and-restarted test, about 1 run in 3 before the rule).
"""

from __future__ import annotations

from test_client_parts import Console, Wire, tag

from chatroom.client.catchup import PAGE, CatchUp
from chatroom.client.replies import Replies


def connected(wire: Wire, console: Console) -> tuple[Replies, CatchUp]:
    """A client named alice with tags on, synced on #lobby (last id 0), that was shown ``bob: seen`` (id 1)."""
    replies = Replies(wire.send)
    rooms = CatchUp(replies, console, me=lambda: "alice", sync_ids=True, on_caught_up=lambda: None)
    rooms.tags_answered(True)
    rooms.after_reply("nick", named=True)
    assert wire.take() == ["/history 1"]
    replies.take("OK history #lobby 0 lines")
    assert rooms.line(tag(1, "#lobby", "bob", "bob: seen"))
    assert console.lines == ["bob: seen"]
    return replies, rooms


def reconnect(wire: Wire, replies: Replies, rooms: CatchUp) -> None:
    """Lose the connection, hand-shake again, get the /join answered; the /history since stays asked."""
    rooms.begin_rejoin(lost_at=1.0)
    assert rooms.line("* Welcome to chatroom, room lobby. You are guest2.")
    rooms.tags_answered(True)
    rooms.after_reply("nick", named=True)
    assert wire.take() == ["/join #lobby", f"/history #lobby since 1 {PAGE}"]  # after the last id seen
    rooms.after_reply(replies.take("OK join #lobby (2 members)") or "", named=True)


def test_a_line_shown_before_the_loss_and_sent_live_again_after_the_catch_up_is_not_shown_twice() -> None:
    wire, console = Wire(), Console()
    replies, rooms = connected(wire, console)
    reconnect(wire, replies, rooms)
    rooms.after_reply(replies.take("OK history #lobby 0 lines") or "", named=True)  # the node lacks id 1 yet
    assert console.lines[1].endswith("; nothing missed")
    # the restarted node's own catch-up from Redis: id 1 again, then what was said meanwhile, all live
    for msgid, text in ((1, "bob: seen"), (2, "bob: missed one"), (3, "bob: missed two"), (2, "bob: missed one")):
        assert rooms.line(tag(msgid, "#lobby", "bob", text))
    assert console.lines[2:] == ["bob: missed one", "bob: missed two"]
    assert rooms.last_ids == {"#lobby": 3}


def test_held_live_lines_are_shown_unless_seen_before_the_loss_or_among_the_missed_lines() -> None:
    wire, console = Wire(), Console()
    replies, rooms = connected(wire, console)
    reconnect(wire, replies, rooms)
    for msgid, text in ((1, "bob: seen"), (2, "bob: missed one"), (5, "bob: live")):  # held meanwhile
        assert rooms.line(tag(msgid, "#lobby", "bob", text))
    # a line the server had not stored (id 3: its store was full) came live only; 2 and 4 come as missed
    assert rooms.line(tag(3, "#lobby", "bob", "bob: live only"))
    for msgid, text in ((2, "[00:02] bob: missed one"), (4, "[00:03] bob: missed two")):
        assert rooms.line(tag(msgid, "#lobby", "bob", text, history=True))
    rooms.after_reply(replies.take("OK history #lobby 2 lines") or "", named=True)
    assert console.lines[1].endswith("; 2 missed lines in #lobby")
    assert console.lines[2:] == ["[00:02] bob: missed one", "[00:03] bob: missed two", "bob: live", "bob: live only"]
    assert rooms.last_ids == {"#lobby": 5}
    assert rooms.line(tag(5, "#lobby", "bob", "bob: live"))  # once caught up: the same rule for live lines
    assert rooms.line(tag(6, "#lobby", "bob", "bob: new"))
    assert console.lines[6:] == ["bob: new"]


def test_a_history_listing_the_person_asked_for_is_shown_even_with_ids_seen() -> None:
    wire, console = Wire(), Console()
    replies, rooms = connected(wire, console)
    assert rooms.line(tag(1, "#lobby", "bob", "[00:01] bob: seen", history=True))  # /history #lobby 10
    assert rooms.line(tag(1, "#lobby", "bob", "bob: seen"))  # live again: not shown
    assert rooms.line(tag(1, "#den", "carol", "[#den] carol: hi"))  # another room's ids are its own
    assert console.lines == ["bob: seen", "[00:01] bob: seen", "[#den] carol: hi"]


def test_e2e_a_nick_change_is_shown_without_its_tags_in_line_mode(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A line-mode client that asked for tags (``--reconnect`` does, to catch up) shows a server notice of no room,
    a nick change, as people read it (before: ``@time=...;kind=notice * guest2 is now known as bob``)."""
    from test_e2e_transfer import ClientProcess

    alice = ClientProcess(server.port, tmp_path / "alice", "--name", "alice", "--reconnect")
    try:
        alice.expect(lambda line: line.startswith("* Welcome"))
        bob = server.connect()
        bob.send("/nick bob")
        shown = alice.expect(lambda line: line.endswith("is now known as bob"))
        assert shown.startswith("* guest"), shown
    finally:
        alice.kill()
