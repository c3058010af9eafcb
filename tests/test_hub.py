"""Unit tests of the room model (:class:`chatroom.model.hub.Hub`) and the line renderer
(:mod:`chatroom.wire.render`): no sockets, no loop, no plugins.

Members are :class:`Recorder` objects, a tiny :class:`~chatroom.model.member.Member`
subclass that keeps every buffer the hub delivers. The history is a real
:class:`~chatroom.model.history.History` in ``tmp_path`` with a fake clock.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chatroom.model.errors import Refused
from chatroom.model.history import Entry, History
from chatroom.model.hub import Hub
from chatroom.model.member import Member
from chatroom.wire import render as render_mod
from chatroom.wire.render import iso_time, render, room_label, stamp, tags

T0 = 1_790_000_000.25  # a fixed Unix time for the fake clock (2026-09-21, UTC)


class Recorder(Member):
    """A member that records every delivered buffer (``bytes``)."""

    __slots__ = ("buffers",)

    def __init__(self, mid: int, nick: str, *, tagged: int = 0) -> None:
        super().__init__(mid, nick)
        self.buffers: list[bytes] = []
        self.tagged = tagged

    def deliver(self, data: bytes | memoryview) -> None:
        self.buffers.append(bytes(data))

    @property
    def lines(self) -> list[str]:
        """Every delivered line, decoded, without newlines."""
        return b"".join(self.buffers).decode().splitlines()

    def take(self) -> list[str]:
        """The lines delivered so far; forgets them."""
        out = self.lines
        self.buffers.clear()
        return out


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def history(tmp_path: Path, clock: Clock):  # type: ignore[no-untyped-def]
    h = History(tmp_path / "rooms.sqlite3", clock=clock)
    yield h
    h.close()


@pytest.fixture
def hub(history: History, clock: Clock) -> Hub:
    return Hub(history, clock=clock)


def people(hub: Hub, *nicks: str, tagged: int = 0) -> list[Recorder]:
    """Add members *nicks* to *hub*, each put in the default room quietly."""
    out = []
    for nick in nicks:
        m = Recorder(len(hub.members) + 1 + 1000 * tagged, nick, tagged=tagged)
        hub.add(m)
        hub.join(m, hub.default_room, quiet=True)
        out.append(m)
    return out


# -- room names ---------------------------------------------------------------------------
def test_room_names_are_canonical_and_case_insensitive(hub: Hub) -> None:
    design = hub.open_room("Design")
    assert design.name == "#design" and design.label == "design"
    assert hub.open_room("#DESIGN") is design and hub.room("design") is design and hub.room("#Design") is design
    assert hub.room("#nothere") is None and hub.room("bad name") is None
    assert hub.default_room.name == "#lobby"
    assert hub.open_room("#" + "a" * 32).name == "#" + "a" * 32


@pytest.mark.parametrize("bad", ["#", "", "#BAD!", "#a b", "#" + "a" * 33, "#été", "##x", "#a.b"])
def test_bad_room_names_are_refused(hub: Hub, bad: str) -> None:
    with pytest.raises(Refused, match="is not a room name: # and 1-32 of a-z 0-9 _ -"):
        hub.open_room(bad)
    assert hub.room(bad) is None


def test_bad_default_room_is_refused(history: History) -> None:
    with pytest.raises(Refused):
        Hub(history, default_room="no way")


# -- join, part, current room --------------------------------------------------------------
def test_join_part_and_current_room(hub: Hub) -> None:
    alice, bob = people(hub, "alice", "bob")
    lobby = hub.default_room
    design = hub.open_room("#design")
    assert alice.room is lobby and list(alice.rooms) == ["#lobby"]
    assert hub.join(alice, design) is True
    assert alice.room is design and list(alice.rooms) == ["#lobby", "#design"]
    assert list(design.members) == [alice.id]
    assert hub.join(alice, lobby) is False  # already in it: it just becomes current
    assert alice.room is lobby and len(lobby) == 2
    hub.part(alice, lobby)
    assert alice.room is design and "#lobby" not in alice.rooms and lobby.nicks() == ["bob"]
    hub.part(alice, design, "bye")
    assert alice.room is None and alice.rooms == {}
    hub.flush()
    assert bob.take() == ["* alice left lobby"]  # not told of a room bob is not in


def test_join_and_part_are_announced_in_their_room_only(hub: Hub) -> None:
    alice, bob = people(hub, "alice", "bob")
    carol = Recorder(50, "carol")
    hub.add(carol)
    design = hub.open_room("#design")
    hub.join(carol, design)
    hub.flush()
    hub.join(bob, design)
    hub.flush()
    assert carol.take() == ["* bob joined design"]
    assert bob.take() == [] and alice.take() == []  # the joiner is not told; lobby hears nothing
    hub.join(bob, hub.default_room)  # bob's current room is lobby again
    hub.part(carol, design, "lunch")
    hub.flush()
    assert bob.take() == ["[#design] * carol left design (lunch)"]
    assert alice.take() == []


def test_remove_leaves_every_room_with_the_reason(hub: Hub) -> None:
    alice, bob = people(hub, "alice", "bob")
    design = hub.open_room("#design")
    hub.join(alice, design, quiet=True)
    hub.join(bob, design, quiet=True)
    hub.join(bob, hub.default_room)
    hub.remove(alice, "quit")
    hub.flush()
    assert sorted(bob.take()) == sorted(["* alice left lobby (quit)", "[#design] * alice left design (quit)"])
    assert hub.find("alice") is None and alice.id not in hub.members and len(design) == 1
    assert alice.take() == []


# -- fan-out -----------------------------------------------------------------------------------
def test_fan_out_variants_current_other_room_tags(hub: Hub) -> None:
    alice, here = people(hub, "alice", "here")
    (tagged,) = people(hub, "tagged", tagged=1)
    design = hub.open_room("#design")
    away = Recorder(90, "away")  # in #lobby, but its current room is #design
    hub.add(away)
    hub.join(away, hub.default_room, quiet=True)
    hub.join(away, design, quiet=True)
    entry = hub.say(alice, hub.default_room, "hello")
    assert (entry.room, entry.id, entry.ts, entry.kind, entry.nick, entry.text) == ("#lobby", 1, T0, "msg", "alice", "hello")
    hub.flush()
    assert alice.take() == []  # the sender never receives its own line
    assert here.take() == ["alice: hello"]
    assert away.take() == ["[#lobby] alice: hello"]
    assert tagged.take() == [f"@msgid=1;room=#lobby;time={iso_time(T0)};kind=msg;nick=alice alice: hello"]


def test_me_topic_and_notice_render_in_fan_out(hub: Hub) -> None:
    alice, bob = people(hub, "alice", "bob")
    (tagged,) = people(hub, "tagged", tagged=1)
    lobby = hub.default_room
    hub.say(alice, lobby, "waves", kind="me")
    hub.set_topic(alice, lobby, "plans")
    hub.set_topic(alice, lobby, "")
    hub.notice(lobby, "something happened")
    hub.flush()
    assert alice.take() == ["* alice set the topic of lobby: plans", "* alice cleared the topic of lobby",
                            "* something happened"]  # topic changes reach the setter too; its /me does not
    assert bob.take() == ["* alice waves", "* alice set the topic of lobby: plans",
                          "* alice cleared the topic of lobby", "* something happened"]
    got = tagged.take()
    assert got[0].startswith("@msgid=1;room=#lobby;") and got[0].endswith(";kind=me;nick=alice * alice waves")
    assert got[1].startswith("@msgid=2;") and ";kind=topic;nick=alice " in got[1]
    assert got[3] == f"@room=#lobby;time={iso_time(T0)};kind=notice * something happened"  # notices: no msgid
    assert (lobby.topic, lobby.topic_by) == ("", "alice")


def test_one_encode_per_variant_with_50_members(hub: Hub) -> None:
    plain = people(hub, *[f"p{i}" for i in range(25)])
    tagged = people(hub, *[f"t{i}" for i in range(25)], tagged=1)
    senders = [plain[0], plain[1], tagged[0]]
    for i, sender in enumerate(senders):
        hub.say(sender, hub.default_room, f"line {i}")
    hub.notice(hub.default_room, "a notice")
    events = len(senders) + 1
    calls: list[tuple[str, int, bool]] = []
    real = hub.encoders[0]  # the line protocol's encoder (Hub.encode), as the hub calls it

    def counting(entry: Entry, tagged_: int, current: bool, history: bool = False) -> bytes:
        calls.append((entry.text, tagged_, current))
        return real(entry, tagged_, current, history)

    hub.encoders[0] = counting  # this hub only (a fresh one per test)
    hub.flush()
    own_batches = len(senders) * (events - 1)  # each sender gets the batch without its own line
    assert 2 * events <= len(calls) <= 2 * events + own_batches, calls
    # every non-sender of one variant got the very same buffer object's bytes
    quiet_plain = {p.buffers[0] for p in plain[2:]}
    quiet_tagged = {t.buffers[0] for t in tagged[1:]}
    assert len(quiet_plain) == 1 and len(quiet_tagged) == 1
    assert all(len(m.buffers) == 1 for m in plain + tagged)  # one buffer per member per pass
    assert plain[5].lines == ["p0: line 0", "p1: line 1", "t0: line 2", "* a notice"]
    assert plain[0].lines == ["p1: line 1", "t0: line 2", "* a notice"]
    assert [line.split(" ", 1)[1] for line in tagged[0].lines] == ["p0: line 0", "p1: line 1", "* a notice"]


def test_a_speaker_of_several_lines_in_one_pass_gets_everyone_elses_in_order(hub: Hub) -> None:
    alice, bob, carol = people(hub, "alice", "bob", "carol")
    room = hub.default_room
    for who, text in [(alice, "a1"), (bob, "b1"), (alice, "a2"), (alice, "a3"), (bob, "b2"), (alice, "a4")]:
        hub.say(who, room, text)
    hub.flush()
    assert alice.lines == ["bob: b1", "bob: b2"]  # its own lines first, between and last are cut out
    assert bob.lines == ["alice: a1", "alice: a2", "alice: a3", "alice: a4"]
    assert carol.lines == ["alice: a1", "bob: b1", "alice: a2", "alice: a3", "bob: b2", "alice: a4"]
    hub.say(alice, room, "alone")  # a pass with only its own line: nothing at all for it
    hub.flush()
    assert len(alice.buffers) == 1 and bob.lines[-1] == "alice: alone"


def test_a_second_wire_format_is_encoded_once_with_its_own_encoder(hub: Hub) -> None:
    calls: list[str] = []

    def other_wire(entry: Entry, tagged: int, current: bool, history: bool = False) -> bytes:
        calls.append(entry.text)
        return f"<{entry.nick}> {entry.text}\r\n".encode()

    index = hub.add_wire(other_wire)
    assert index == 1 and hub.encoders[1] is other_wire

    class OtherWire(Recorder):
        __slots__ = ()
        wire_index = index

    (alice, bob) = people(hub, "alice", "bob")
    others = [OtherWire(500 + i, f"irc{i}") for i in range(10)]
    for m in others:
        hub.add(m)
        hub.join(m, hub.default_room, quiet=True)
    hub.say(alice, hub.default_room, "to every wire")
    hub.flush()
    assert bob.take() == ["alice: to every wire"]
    assert {bytes(b"".join(m.buffers)) for m in others} == {b"<alice> to every wire\r\n"}
    assert calls == ["to every wire"]  # once for the ten members of that wire


def test_flush_for_sends_pending_room_lines_before_a_direct_line(hub: Hub) -> None:
    alice, bob = people(hub, "alice", "bob")
    hub.say(alice, hub.default_room, "first")
    hub.send(bob, Entry("", 0, T0, "notice", "", None, "direct"))
    hub.flush()
    assert bob.take() == ["alice: first", "* direct"]


def test_replay_marks_history_and_flushes_first(hub: Hub, history: History) -> None:
    alice, bob = people(hub, "alice", "bob")
    design = hub.open_room("#design")
    hub.join(alice, design, quiet=True)
    hub.say(alice, design, "in design")
    hub.join(alice, hub.default_room)
    hub.say(alice, hub.default_room, "in lobby")
    hub.flush()
    history.commit()
    bob.take()
    hub.say(alice, hub.default_room, "pending")
    assert hub.replay(bob, history.last("#design", 5) + history.last("#lobby", 1)) == 2
    hh = stamp(T0)  # not today: "[YYYY-MM-DD HH:MM] "
    assert hh == time.strftime("[%Y-%m-%d %H:%M] ", time.localtime(T0))
    assert bob.take() == ["alice: pending", f"[#design] {hh}alice: in design", f"{hh}alice: pending"]


def test_lines_said_in_two_rooms_in_one_pass_arrive_in_order(hub: Hub) -> None:
    """A reader in both rooms must get one sender's lines in the order they were said."""
    alice, bob = people(hub, "alice", "bob")
    design = hub.open_room("#design")
    for m in (alice, bob):
        hub.join(m, design, quiet=True)
    hub.join(bob, hub.default_room)
    hub.say(alice, design, "one (design)")
    hub.say(alice, hub.default_room, "two (lobby)")
    hub.flush()
    assert bob.take() == ["[#design] alice: one (design)", "alice: two (lobby)"]


def test_a_joiner_does_not_get_what_was_said_before_it_joined(hub: Hub, history: History) -> None:
    """Events pending in a room from earlier in the pass belong to the members present then.

    The server replays the room's recent history (buffered lines included) to a
    joiner, so a line said earlier in the same pass must not also reach it live.
    """
    alice, bob = people(hub, "alice", "bob")
    design = hub.open_room("#design")
    hub.join(alice, design, quiet=True)
    hub.say(alice, design, "before bob")
    hub.join(bob, design)
    hub.replay(bob, history.last("#design", 20))  # what the server does on join
    hub.flush()
    assert bob.take() == [f"{stamp(T0)}alice: before bob"]


# -- nicks ------------------------------------------------------------------------------------
def test_rename_tells_each_co_member_once(hub: Hub) -> None:
    alice, bob, dave = people(hub, "alice", "bob", "dave")
    design, other = hub.open_room("#design"), hub.open_room("#other")
    carol, erin = Recorder(70, "carol"), Recorder(71, "erin")
    for m in (carol, erin):
        hub.add(m)
    hub.join(carol, design, quiet=True)
    hub.join(erin, other, quiet=True)
    hub.join(alice, design, quiet=True)
    hub.join(bob, design, quiet=True)  # bob shares two rooms with alice
    hub.part(dave, hub.default_room)
    hub.flush()
    for m in (alice, bob, carol, dave, erin):
        m.take()
    assert hub.rename(alice, "alicia") == "alice"
    hub.flush()
    assert bob.take() == ["* alice is now known as alicia"]
    assert carol.take() == ["* alice is now known as alicia"]
    assert alice.take() == [] and dave.take() == [] and erin.take() == []
    assert hub.find("ALICIA") is alice and hub.find("alice") is None
    hub.rename(alice, "alicia")  # same nick: nobody told
    hub.flush()
    assert bob.take() == []


def test_rename_refuses_taken_look_alike_and_invalid_nicks(hub: Hub) -> None:
    alice, bob = people(hub, "alice", "bob")
    with pytest.raises(Refused, match="the nick ALICE is taken"):
        hub.rename(bob, "ALICE")
    with pytest.raises(Refused, match="the nick aIice is too much like alice, who is here"):
        hub.rename(bob, "aIice")
    with pytest.raises(Refused):
        hub.rename(bob, "9lives")
    with pytest.raises(Refused):
        hub.rename(bob, "guest7")
    assert bob.nick == "bob" and hub.find("bob") is bob
    hub.rename(alice, "aIice")  # a look-alike of one's own nick is allowed
    assert hub.find("aIice") is alice
    hub.flush()
    assert bob.take() == ["* alice is now known as aIice"]


# -- announce limit ----------------------------------------------------------------------------
def test_announce_limit_silences_joins_and_leaves_of_big_rooms(history: History, clock: Clock) -> None:
    hub = Hub(history, clock=clock, announce_limit=2)
    first, second = people(hub, "first", "second")
    third, fourth = Recorder(30, "third"), Recorder(31, "fourth")
    hub.add(third)
    hub.add(fourth)
    hub.join(third, hub.default_room)  # 2 members: still announced
    hub.flush()
    assert first.take() == ["* third joined lobby"]
    hub.join(fourth, hub.default_room)  # 3 members: more than the limit
    hub.remove(third, "gone")
    hub.say(second, hub.default_room, "chat still flows")
    hub.flush()
    assert first.take() == ["second: chat still flows"]
    always = Hub(None, clock=clock, announce_limit=0, default_room="#big")
    (a,) = people(always, "a")
    c = Recorder(9, "c")
    always.add(c)
    always.join(c, always.default_room)
    always.flush()
    assert a.take() == ["* c joined big"]


# -- persistence -------------------------------------------------------------------------------
def test_rooms_topics_and_lines_persist_through_history(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "persist" / "rooms.sqlite3"
    with History(path, clock=clock) as history:
        hub = Hub(history, clock=clock)
        (alice,) = people(hub, "alice")
        design = hub.open_room("#design")
        hub.open_room("#empty")  # no owner, nothing said: deleted at the restart (chatroom.model.rooms)
        hub.open_room("#owned", owner="alice")  # an owner: persists empty
        hub.join(alice, design)
        hub.say(alice, design, "kept")
        hub.set_topic(alice, design, "the plan")
        hub.flush()
        history.commit()
    clock.now += 60
    with History(path, clock=clock) as history:
        hub = Hub(history, clock=clock)
        assert sorted(hub.rooms) == ["#design", "#lobby", "#owned"]  # #design lingers: it holds lines
        design = hub.room("#design")
        assert design is not None and (design.topic, design.topic_by, design.topic_at) == ("the plan", "alice", T0)
        assert [(e.id, e.kind, e.text) for e in history.last("#design", 10)] == [(1, "msg", "kept"), (2, "topic", "the plan")]
        (bob,) = people(hub, "bob")
        assert hub.say(bob, design, "after restart").id == 3  # ids continue, never reused


def test_no_record_keeps_rooms_but_no_lines(tmp_path: Path, clock: Clock) -> None:
    with History(tmp_path / "rooms.sqlite3", clock=clock) as history:
        hub = Hub(history, clock=clock, record=False)
        alice, bob = people(hub, "alice", "bob")
        (tagged,) = people(hub, "tagged", tagged=1)
        entry = hub.say(alice, hub.default_room, "unrecorded")
        hub.set_topic(alice, hub.default_room, "still a topic")
        hub.flush()
        history.commit()
        assert entry.id == 0 and history.latest_id("#lobby") == 0
        assert bob.take() == ["alice: unrecorded", "* alice set the topic of lobby: still a topic"]
        assert not tagged.take()[0].startswith("@msgid")  # no ids without recording
    with History(tmp_path / "rooms.sqlite3", clock=clock) as history:
        assert history.room("#lobby").topic == "still a topic"  # type: ignore[union-attr]


# -- render ---------------------------------------------------------------------------------
def test_render_kinds_and_room_prefix() -> None:
    assert render("msg", "#lobby", "alice", "hi") == "alice: hi"
    assert render("me", "#lobby", "alice", "waves") == "* alice waves"
    assert render("topic", "#design", "bob", "plans") == "* bob set the topic of design: plans"
    assert render("topic", "#design", "bob", "") == "* bob cleared the topic of design"
    assert render("notice", "#lobby", "", "carol joined lobby") == "* carol joined lobby"
    assert render("raw", "#lobby", "", "as it is") == "as it is"
    assert render("msg", "#design", "alice", "hi", current=False) == "[#design] alice: hi"
    assert room_label("#lobby") == "lobby" and room_label("lobby") == "lobby"
    assert render_mod.KINDS == ("msg", "me", "topic", "notice", "raw")


def test_tags_order_skips_and_escapes() -> None:
    assert tags() == ""
    assert tags(a=None, b=False) == ""
    assert tags(msgid=42, room="#lobby", history=True) == "@msgid=42;room=#lobby;history "
    assert tags(nick="a b;c\\d\r\n") == "@nick=a\\sb\\:c\\\\d\\r\\n "


def test_iso_time_and_stamp() -> None:
    assert iso_time(0) == "1970-01-01T00:00:00.000Z"
    assert iso_time(1_764_630_845.123456) == "2025-12-01T23:14:05.123Z"
    now = time.time()
    assert stamp(now, now) == time.strftime("[%H:%M] ", time.localtime(now))
    old = now - 3 * 86400
    assert stamp(old, now) == time.strftime("[%Y-%m-%d %H:%M] ", time.localtime(old))
    assert stamp(now).startswith("[") and stamp(now).endswith("] ")
