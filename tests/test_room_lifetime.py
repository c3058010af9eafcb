"""Room lifetime (chatroom.model.rooms and History.drop_room): which rooms persist, which go and when, what
happens to their history and ids, and the bounds on creating rooms. Model-level with a fake clock, then
through the in-process server (the kit) where the clock must run past a linger.

Over TCP against the real chatroom-server: tests/test_lifetime_e2e.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from chatroom.model.errors import Refused
from chatroom.model.history import History
from chatroom.model.hub import Hub
from chatroom.model.member import Member
from chatroom.model.rooms import CREATE_BURST, CREATE_EVERY, LINGER

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Person(Member):
    __slots__ = ()

    def deliver(self, data: bytes | memoryview) -> None:
        pass


@pytest.fixture
def clock() -> Clock:
    return Clock()


def people(hub: Hub, *nicks: str) -> list[Person]:
    out = []
    for nick in nicks:
        person = Person(len(hub.members) + 1, nick)
        hub.add(person)
        out.append(person)
    return out


def visit(hub: Hub, member: Member, name: str, *lines: str) -> None:
    """*member* joins *name* (creating it), says *lines*, and parts."""
    room = hub.open_room(name, creator=member)
    hub.join(member, room)
    for line in lines:
        hub.say(member, room, line)
    hub.part(member, room)


def listed(hub: Hub) -> list[str]:
    return [room.name for room in hub.rooms.listed()]


# -- what persists, what goes ---------------------------------------------------------------------------
def test_an_empty_room_without_an_owner_goes_at_once_when_it_holds_nothing(tmp_path: Path, clock: Clock) -> None:
    with History(tmp_path / "rooms.sqlite3", clock=clock) as history:
        hub = Hub(history, clock=clock)
        (guest,) = people(hub, "guest1")
        visit(hub, guest, "#r1")
        assert "#r1" not in hub.rooms and history.room("#r1") is None
        assert listed(hub) == ["#lobby"]
        hub.part(guest, hub.default_room)
        assert "#lobby" in hub.rooms  # the default room persists


def test_a_room_that_holds_lines_lingers_unlisted_and_comes_back_as_it_was(tmp_path: Path, clock: Clock) -> None:
    with History(tmp_path / "rooms.sqlite3", clock=clock) as history:
        hub = Hub(history, clock=clock)
        alice, bob = people(hub, "alice", "bob")
        visit(hub, alice, "#team", "one", "two")
        team = hub.room("#team")
        assert team is not None and team.emptied == T0 and listed(hub) == ["#lobby"]
        team.rules.key = "door"  # what it held comes back: key, topic, lines, ids
        clock.now += LINGER - 1
        assert not hub.rooms.expire() and hub.room("#team") is team
        hub.join(bob, team)
        assert team.emptied == 0.0 and listed(hub) == ["#lobby", "#team"]
        assert hub.say(bob, team, "three").id == 3
        hub.part(bob, team)
        clock.now += LINGER - 1  # the linger starts again from the last leave
        hub.rooms.expire()
        assert hub.room("#team") is team


def test_owned_rooms_persist_and_a_topic_alone_is_worth_keeping(tmp_path: Path, clock: Clock) -> None:
    with History(tmp_path / "rooms.sqlite3", clock=clock) as history:
        hub = Hub(history, clock=clock, record=False)  # --no-history: only the topic holds something
        alice, guest = people(hub, "alice", "guest2")
        alice.account = "alice"
        owned = hub.open_room("#owned", owner="alice", creator=alice)
        hub.join(alice, owned)
        hub.part(alice, owned)
        topical = hub.open_room("#topical", creator=guest)
        hub.join(guest, topical)
        hub.set_topic(guest, topical, "kept a while")
        hub.part(guest, topical)
        clock.now += LINGER + 1
        hub.rooms.expire()
        assert listed(hub) == ["#lobby", "#owned"] and "#topical" not in hub.rooms
        assert history.room("#topical") is None and history.room("#owned") is not None


def test_after_the_linger_the_room_and_its_history_are_deleted_and_ids_are_never_reused(
        tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "rooms.sqlite3"
    with History(path, clock=clock) as history:
        hub = Hub(history, clock=clock)
        alice, bob = people(hub, "alice", "bob")
        visit(hub, alice, "#team", *[f"line {i}" for i in range(1, 6)])
        history.commit()
        clock.now += LINGER
        hub.rooms.expire()
        assert hub.room("#team") is None and history.room("#team") is None
        assert history.last("#team", 10) == [] and history.since("#team", 0, 10) == []  # hidden at once
        assert not history.prune(None, None)  # deleted in bounded steps, then the counter goes
        assert history.latest_id("#team") == 0
        visit(hub, bob, "#team", "a new team")
        new = history.since("#team", 5, 10)  # a client that saw id 5 of the old room catches up
        assert [(e.id, e.text) for e in new] == [(6, "a new team")]
        history.commit()
    with History(path, clock=clock) as history:  # the watermark survives a restart
        assert [(e.id, e.text) for e in history.since("#team", 0, 10)] == [(6, "a new team")]
        assert history.append("#fresh", "msg", "carol", "hi").id == 6  # any new name starts above it


def test_a_name_reused_before_its_old_lines_are_deleted_continues_their_ids(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "rooms.sqlite3"
    with History(path, clock=clock) as history:
        for i in range(1, 6):
            history.append("#team", "msg", "alice", f"old {i}")
        history.records.ensure_room("#team")
        history.commit()
        history.drop_room("#team")  # not pruned yet
        history.records.ensure_room("#team")
        assert history.append("#team", "msg", "bob", "new").id == 6
        assert [e.text for e in history.last("#team", 50)] == ["new"]
        history.commit()
    with History(path, clock=clock) as history:  # after a restart too
        assert [e.text for e in history.last("#team", 50)] == ["new"]
        assert [e.text for e in history.before("#team", 7, 50)] == ["new"]
        assert history.prune(None, None, max_rows=2)  # the old lines go two at a time
        while history.prune(None, None, max_rows=2):
            pass
        assert history.latest_id("#team") == 6 and [e.id for e in history.since("#team", 0, 50)] == [6]


def test_a_restart_starts_every_linger_again_and_deletes_rooms_that_hold_nothing(
        tmp_path: Path, clock: Clock) -> None:
    """Clients come back seconds after a restart: rooms without an owner linger from start-up; the 301 empty
    rooms a guest made before this rule existed (records only) are deleted at the first start."""
    path = tmp_path / "rooms.sqlite3"
    with History(path, clock=clock) as history:
        for i in range(301):
            history.records.ensure_room(f"#r{i}")
        history.append("#kept", "msg", "alice", "said")
        history.records.ensure_room("#kept")
        history.records.save_rules("#owned", '{"owner": "alice"}')
    clock.now += 3600
    with History(path, clock=clock) as history:
        hub = Hub(history, clock=clock)
        assert sorted(hub.rooms) == ["#kept", "#lobby", "#owned"]
        assert hub.rooms["#kept"].emptied == clock.now and listed(hub) == ["#lobby", "#owned"]
    with History(path, clock=clock) as history:
        assert [r.name for r in history.records.rooms()] == ["#kept", "#lobby", "#owned"]


# -- bounds on creation --------------------------------------------------------------------------------
def test_a_connection_creates_rooms_at_a_bounded_rate(tmp_path: Path, clock: Clock) -> None:
    with History(tmp_path / "rooms.sqlite3", clock=clock) as history:
        hub = Hub(history, clock=clock)
        guest, other = people(hub, "guest1", "guest2")
        refused = []
        for i in range(300):  # the 300 rounds of /join #rN + /part
            try:
                visit(hub, guest, f"#r{i}")
            except Refused as exc:
                refused.append(str(exc))
        assert len(refused) == 300 - CREATE_BURST and len(hub.rooms) == 1
        assert refused[0].startswith(f"you are creating rooms too fast ({CREATE_BURST} at once, then one every ")
        assert "try again in 30 s" in refused[0]
        visit(hub, other, "#other")  # per connection: another one is not slowed
        hub.join(guest, hub.open_room("#lobby", creator=guest))  # joining a room that exists costs nothing
        clock.now += CREATE_EVERY
        visit(hub, guest, "#one-more")
        with pytest.raises(Refused):
            visit(hub, guest, "#and-another")
        guest.account = "root"
        hub.rooms.is_admin = lambda account: account == "root"
        visit(hub, guest, "#admins-are-exempt")
        hub.remove(guest, "quit")
        assert guest.id not in hub.rooms._buckets  # the bucket goes with the connection


def test_the_server_holds_at_most_max_rooms_deleting_the_longest_lingering_first(
        tmp_path: Path, clock: Clock) -> None:
    with History(tmp_path / "rooms.sqlite3", clock=clock) as history:
        hub = Hub(history, clock=clock, max_rooms=3)
        alice, bob = people(hub, "alice", "bob")
        hub.join(alice, hub.open_room("#a", creator=alice))
        visit(hub, bob, "#b", "kept a while")
        clock.now += 1
        assert len(hub.rooms) == 3
        hub.join(bob, hub.open_room("#c", creator=bob))  # #b lingers: it makes room
        assert sorted(hub.rooms) == ["#a", "#c", "#lobby"] and history.last("#b", 5) == []
        with pytest.raises(Refused, match="this server holds 3 rooms, its limit: join one of them"):
            hub.open_room("#d", creator=bob)
        hub.open_room("#a", creator=bob)  # existing rooms are still joined


# -- through the server: the minute timer ----------------------------------------------------------------
def test_the_server_deletes_lingering_rooms_and_a_reused_name_never_confuses_a_catch_up(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice = room.join("alice")
    assert alice.say("/caps tags") == ["OK caps tags"]
    alice.say("/join #team")
    alice.say("first")
    alice.say("second")
    assert alice.say("/history 1")[0].startswith("@msgid=2;")
    alice.say("/part")
    room.advance(LINGER - 60)
    assert alice.say("/history #team 1")[-1] == "OK history #team 1 line"  # still lingering
    room.advance(121)  # the linger is over and the minute timer ran
    assert alice.say("/history #team 1") == ["ERROR no such room: #team"]
    bob = room.join("bob")
    assert bob.say("/join #team") == ["OK join #team (1 member)"]  # a new room: nothing replayed
    bob.say("a new team")
    got = alice.say("/history #team since 2")  # alice's catch-up from the last id she saw
    assert len(got) == 2 and got[0].startswith("@msgid=3;") and got[0].endswith("bob: a new team")
    room.restart()
    carol = room.join("carol")
    assert carol.say("/caps tags") == ["OK caps tags"]
    got = carol.say("/join #team")  # it lingers after the restart, its ids going on
    assert got[0].startswith("@msgid=3;") and got[-1] == "OK join #team (1 member)"
    carol.say("after the restart")
    assert carol.say("/history 1")[0].startswith("@msgid=4;")


def test_a_failing_store_keeps_the_room_lingering_until_it_can_be_deleted(
        tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    with History(tmp_path / "rooms.sqlite3", clock=clock) as history:
        hub = Hub(history, clock=clock)
        (guest,) = people(hub, "guest1")
        real_drop = history.drop_room

        def broken(name: str) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(history, "drop_room", broken)
        visit(hub, guest, "#r1")  # holds nothing, but cannot be deleted now: it lingers, nothing raises
        assert hub.room("#r1") is not None and hub.room("#r1").emptied == T0  # type: ignore[union-attr]
        clock.now += LINGER
        assert hub.rooms.expire() is False and hub.room("#r1") is not None
        monkeypatch.setattr(history, "drop_room", real_drop)
        assert hub.rooms.expire() is False and hub.room("#r1") is None and history.room("#r1") is None


def test_listing_shows_each_viewer_what_the_access_rule_lets_it_see(tmp_path: Path, clock: Clock) -> None:
    with History(tmp_path / "rooms.sqlite3", clock=clock) as history:
        hub = Hub(history, clock=clock)
        alice, bob = people(hub, "alice", "bob")
        den = hub.open_room("#den", creator=alice)
        hub.join(alice, den)
        hub.set_topic(alice, den, "secret plans")
        den.rules.key = "door"
        views = {v.name: v for v in hub.rooms.listing(hub.rooms.viewer(bob))}
        assert (views["#den"].members, views["#den"].keyed, views["#den"].topic) == (1, True, "")
        assert hub.rooms.listing(hub.rooms.viewer(alice), "de")[0].topic == "secret plans"
        assert [v.name for v in hub.rooms.listing(hub.rooms.viewer(bob), "#LOB")] == ["#lobby"]
