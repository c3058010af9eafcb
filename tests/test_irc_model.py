"""The room model's parts every door shares, added for the IRC door: room operators while connected, structured
kick / quit / away / mode notices each wire renders its own way, wire variants beyond tags on/off."""

from __future__ import annotations

from pathlib import Path

from chatroom.model.history import History
from chatroom.model.hub import Hub, Notice
from chatroom.model.member import Member


class Recorder(Member):
    """A member that records what the hub delivers (any wire)."""

    __slots__ = ("buffers", "wire_index")

    def __init__(self, mid: int, nick: str, wire: int = 0, tagged: int = 0) -> None:
        super().__init__(mid, nick)
        self.buffers: list[bytes] = []
        self.wire_index = wire  # type: ignore[misc]
        self.tagged = tagged

    def deliver(self, data: bytes | memoryview) -> None:
        self.buffers.append(bytes(data))

    def take(self) -> list[str]:
        out = b"".join(self.buffers).decode().splitlines()
        self.buffers.clear()
        return out


def _hub(tmp_path: Path) -> Hub:
    return Hub(History(tmp_path / "rooms.sqlite3"))


def _structured(entry: object, tagged: int, current: bool, history: bool = False) -> bytes:
    """A wire that shows every event as ``kind|room|nick|extra|by|cause|tagged``."""
    e: Notice = entry  # type: ignore[assignment]
    return f"{e.kind}|{e.room}|{e.nick}|{getattr(e, 'extra', '')}|{getattr(e, 'by', '')}|" \
           f"{getattr(e, 'cause', '')}|{tagged}\n".encode()


def test_first_member_of_an_unowned_room_operates_it_while_it_stays(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    alice, bob = Recorder(1, "alice"), Recorder(2, "bob")
    for m in (alice, bob):
        hub.add(m)
    room = hub.open_room("#new")
    hub.join(alice, room)
    hub.join(bob, room)
    assert room.operated_by(alice) and not room.operated_by(bob)
    hub.part(alice, room)
    assert not room.operated_by(alice) and not room.ops  # nobody inherits it
    hub.join(alice, room)
    assert not room.operated_by(alice)  # the room was not empty
    owned = hub.open_room("#owned", owner="carol")
    hub.join(bob, owned)
    assert not owned.operated_by(bob)  # an owned room has its owner and the operators it named
    hub.part(bob, hub.default_room) if hub.default_room.name in bob.rooms else None
    hub.join(bob, hub.default_room)
    assert not hub.default_room.operated_by(bob)  # admins moderate the default room
    hub.remove(bob, "quit")
    assert bob.id not in owned.ops


def test_kick_is_a_part_with_its_author_and_cause(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    wire = hub.add_wire(_structured)
    alice, bob, carol = Recorder(1, "alice"), Recorder(2, "bob"), Recorder(3, "carol", wire)
    room = hub.open_room("#r")
    for m in (alice, bob, carol):
        hub.add(m)
        hub.join(m, room)
    hub.flush()
    for m in (alice, bob, carol):
        m.take()
    hub.part(bob, room, "spam", notice="alice kicked bob from r (spam)", by="alice")
    hub.flush()
    assert alice.take() == ["* alice kicked bob from r (spam)"]  # the line protocol: as before
    assert carol.take() == ["part|#r|bob|spam|alice|kick|0"]


def test_quit_is_told_once_to_wires_that_want_it_and_per_room_to_the_others(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    wire = hub.add_wire(_structured, once=True)
    alice, bob, carol = Recorder(1, "alice"), Recorder(2, "bob"), Recorder(3, "carol", wire)
    rooms = [hub.open_room("#a"), hub.open_room("#b")]
    for m in (alice, bob, carol):
        hub.add(m)
        for room in rooms:
            hub.join(m, room)
    hub.flush()
    for m in (alice, bob, carol):
        m.take()
    hub.remove(alice, "bye")
    hub.flush()
    assert bob.take() == ["[#a] * alice left a (bye)", "* alice left b (bye)"]
    quits = carol.take()
    assert quits[0] == "quit||alice|bye|||0"  # once, before the per-room parts
    assert quits[1:] == ["part|#a|alice|bye||quit|0", "part|#b|alice|bye||quit|0"]


def test_away_reaches_co_members_of_wires_that_show_it(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    wire = hub.add_wire(_structured, once=True)
    alice, bob, carol, dave = Recorder(1, "alice"), Recorder(2, "bob"), Recorder(3, "carol", wire), \
        Recorder(4, "dave", wire)
    room = hub.open_room("#r")
    for m in (alice, bob, carol):
        hub.add(m)
        hub.join(m, room)
    hub.add(dave)  # in no room with alice
    hub.flush()
    for m in (alice, bob, carol):
        m.take()
    hub.set_away(alice, "lunch")
    assert alice.away == "lunch"
    assert bob.take() == [] and dave.take() == []
    assert carol.take() == ["away||alice|lunch|||0"]
    hub.set_away(alice, "")
    assert carol.take() == ["away||alice||||0"]


def test_mode_notice_has_a_structure_and_a_human_text(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    wire = hub.add_wire(_structured)
    alice, carol = Recorder(1, "alice"), Recorder(3, "carol", wire, tagged=5)
    room = hub.open_room("#r")
    for m in (alice, carol):
        hub.add(m)
        hub.join(m, room)
    hub.flush()
    alice.take(), carol.take()
    hub.mode(room, alice, "+k", "alice set a key on r")
    hub.flush()
    assert alice.take() == ["* alice set a key on r"]
    assert carol.take() == ["mode|#r|alice|+k|alice||5"]  # a wire's own variant number reaches its encoder


def test_room_rules_irc_modes_name_hold_for_every_door(tmp_path: Path) -> None:
    from chatroom.model.access import Viewer, join_block, join_refusal, listed_to
    from chatroom.model.moderation import Ban

    hub = _hub(tmp_path)
    alice, bob, carol = Recorder(1, "alice"), Recorder(2, "bob"), Recorder(3, "carol")
    room = hub.open_room("#r")
    for m in (alice, bob, carol):
        hub.add(m)
    hub.join(alice, room)  # the first member: its operator
    rules = room.rules
    guest = Viewer.of(bob)
    assert guest.mask == "bob!bob@chatroom"
    rules.invite_only = True
    assert join_block(guest, room, None) == "invite" and join_block(guest, room, None, invited=True) is None
    assert join_refusal(guest, room, None) == "#r is invite-only: it needs an invitation"
    rules.invite_only, rules.limit = False, 1
    assert join_refusal(guest, room, None) == "#r is full"
    rules.limit = 0
    rules.add_ban(Ban("mask", "b*!*@*", "b*!*@*"))
    assert join_block(guest, room, None, invited=True) == "banned"  # an invitation never passes a ban
    assert join_block(Viewer.of(carol), room, None) is None
    rules.secret = True
    assert not listed_to(guest, room) and listed_to(Viewer.of(alice), room)
    rules.moderated = True
    hub.join(carol, room)
    assert room.may_speak(alice) and not room.may_speak(carol)
    room.voices.add(carol.id)
    assert room.may_speak(carol)
    hub.part(carol, room)
    assert carol.id not in room.voices  # voice lasts while the member stays
