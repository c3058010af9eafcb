"""Shared room rules (chatroom/scaleout/rules.py) when Redis does not take them: SharedRules on a fake command link
that records every call and lets the test answer it, lose the connection (every call in flight gets
``Unavailable``, as RedisLink's teardown does) or refuse it with an error reply (``-OOM``, ``-READONLY``...).

A room's change, its creation and its resync read are each done again until Redis answered them: on the link's
return (``ready()``, as the node calls it, then its resync) or, on a live link, on a timer that backs off; never
with older rules than the room's current ones, never overwriting the rules of a room the chat already had."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import redis_fakes
from redis_fakes import Call, since

from chatroom.model.hub import Hub
from chatroom.model.member import Member
from chatroom.model.room import Room
from chatroom.scaleout.bus import Keys
from chatroom.scaleout.resp import ReplyError
from chatroom.scaleout.rules import SharedRules

META = "chatroom:{#den}:meta"


class FakeLink(redis_fakes.FakeLink):
    def back(self, rules: SharedRules) -> None:
        """Reconnected: what the node does on its link's return (``ready()``, then a resync of every room)."""
        self.ready = True
        rules.ready()
        rules.resync(list(rules.hub.rooms))


def writes(calls: list[Call]) -> list[dict[str, Any]]:
    """The rules each call overwrites #den's with (an ``HSET``, or a script that sets them unconditionally)."""
    found = []
    for call in calls:
        args = call.args
        if args[0] == "HSET" and args[1] == META and args[2] == "rules":
            found.append(json.loads(args[3]))
        elif args[0] == "EVAL" and args[3] == META and "HSET" in args[1] and "EXISTS" not in args[1] and \
                "HSETNX" not in args[1]:
            found.append(json.loads(args[4]))
    return found


def creations(calls: list[Call]) -> list[dict[str, Any]]:
    """The rules of #den's creation scripts (set only if the chat has no such room)."""
    return [json.loads(c.args[4]) for c in calls if c.args[0] == "EVAL" and c.args[3] == META and "EXISTS" in c.args[1]]


def restores(calls: list[Call]) -> list[dict[str, Any]]:
    """The rules of #den's restoring scripts (set only if Redis has no rules for it)."""
    return [json.loads(c.args[4]) for c in calls if c.args[0] == "EVAL" and c.args[3] == META and "HSETNX" in c.args[1]]


def reads(calls: list[Call]) -> list[Call]:
    return [c for c in calls if c.args[:3] == ("HGET", META, "rules")]


@pytest.fixture
def setup() -> tuple[Hub, FakeLink, SharedRules]:
    hub = Hub(None)
    link = FakeLink()
    rules = SharedRules(hub, link, Keys("chatroom"), "a", "chatroom:ctl")  # type: ignore[arg-type]
    return hub, link, rules


def den(hub: Hub, link: FakeLink) -> Room:
    """#den, created here and new to the chat (its creation answered)."""
    room = hub.rooms.open("#den", owner="alice")
    (create,) = [c for c in link.pending if c.args[0] == "EVAL"]
    link.answer(create, [1])
    return room


def set_key(hub: Hub, room: Room, key: str) -> None:
    room.rules.key = key
    hub.rooms.save_rules(room)


def test_a_change_whose_connection_is_lost_before_the_reply_is_shared_again_when_the_link_is_back(setup) -> None:  # type: ignore[no-untyped-def]
    hub, link, rules = setup
    room = den(hub, link)
    mark = len(link.calls)
    set_key(hub, room, "door")
    assert [w["key"] for w in writes(since(link, mark))] == ["door"]
    link.lose()  # before Redis answered: it may not have run
    assert "#den" in rules.unsent
    mark = len(link.calls)
    link.back(rules)
    assert [w["key"] for w in writes(since(link, mark))] == ["door"]  # sent again...
    assert not reads(since(link, mark))  # ...and not read back over (this node's change is the newer)
    link.answer_all(1)
    assert not rules.unsent
    mark = len(link.calls)
    link.lose()
    link.back(rules)
    assert not writes(since(link, mark))  # once Redis took it, never again


def test_a_newer_change_is_never_overwritten_by_a_retry_of_an_older_one(setup) -> None:  # type: ignore[no-untyped-def]
    hub, link, rules = setup
    room = den(hub, link)
    set_key(hub, room, "old")
    set_key(hub, room, "new")  # while "old" is in flight
    link.lose()
    mark = len(link.calls)
    link.back(rules)
    assert [w["key"] for w in writes(since(link, mark))] == ["new"]  # the room's current rules, once
    link.answer_all(1)
    assert not rules.unsent
    set_key(hub, room, "newest")
    first_error = [c for c in link.pending if writes([c])]
    link.answer(first_error[0], ReplyError("OOM command not allowed when used memory > 'maxmemory'."))
    set_key(hub, room, "last")  # in flight while Redis refused "newest"
    link.answer_all(1)  # Redis took "last": nothing left to share (and "newest" is never sent again)
    assert not rules.unsent
    mark = len(link.calls)
    while [t for t in link.loop.timers if not t.cancelled]:
        link.loop.fire()
    assert not writes(since(link, mark))


def test_an_error_reply_is_retried_on_a_backing_off_timer_logged_once(setup, caplog) -> None:  # type: ignore[no-untyped-def]
    hub, link, rules = setup
    room = den(hub, link)
    caplog.set_level(logging.INFO, logger="chatroom.server")
    set_key(hub, room, "door")
    delays = []
    for code in ("READONLY You can't write against a read only replica.", "OOM command not allowed", "BUSY script"):
        mark = len(link.calls)
        link.answer_all(ReplyError(code))
        assert not since(link, mark)  # no busy retry: nothing sent again until the timer
        delays.append(link.loop.fire())
        assert [w["key"] for w in writes(since(link, mark))] == ["door"]  # the link is up: sent again
    assert delays == sorted(delays) and delays[0] >= 0.5 and delays[-1] > delays[0], delays
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "#den" in r.getMessage()]
    assert len(errors) == 1, [r.getMessage() for r in errors]  # once per failure, not per retry
    link.answer_all(1)
    assert not rules.unsent
    assert any(r.getMessage() == "#den: Redis answered about its rules again" and r.levelno == logging.INFO
               for r in caplog.records)  # recovery said, as good news ([GENERAL], not [ERROR])
    assert not [t for t in link.loop.timers if not t.cancelled]


def test_a_full_output_queue_on_a_live_link_is_retried_on_the_timer(setup) -> None:  # type: ignore[no-untyped-def]
    hub, link, rules = setup
    room = den(hub, link)
    link.full = True
    set_key(hub, room, "door")  # refused at once (Backpressure): the link stays up, so no ready() will come
    link.full = False
    mark = len(link.calls)
    link.loop.fire()
    assert [w["key"] for w in writes(since(link, mark))] == ["door"]
    link.answer_all(1)
    assert not rules.unsent


def test_a_resync_read_refused_or_lost_is_read_again(setup) -> None:  # type: ignore[no-untyped-def]
    hub, link, rules = setup
    room = den(hub, link)
    rules.resync(["#den"])
    (read,) = reads(link.pending)
    link.answer(read, ReplyError("BUSY Redis is busy running a script."))
    mark = len(link.calls)
    link.loop.fire()
    (read,) = reads(since(link, mark))  # read again on the timer (the link is up)
    link.answer(read, json.dumps({"owner": "carol", "key": "door"}).encode())
    assert room.rules.owner == "carol" and room.rules.key == "door"
    rules.resync(["#den"])
    link.lose()  # the read in flight is lost with the connection
    mark = len(link.calls)
    link.back(rules)
    (read,) = reads(since(link, mark))
    link.answer(read, json.dumps({"owner": "carol", "key": "other"}).encode())
    assert room.rules.key == "other"


def test_a_creation_lost_before_its_answer_is_asked_again_and_the_chats_rules_win(setup) -> None:  # type: ignore[no-untyped-def]
    hub, link, rules = setup
    room = hub.rooms.open("#den", owner="alice")  # alice creates #den here; the chat may have it
    assert [c["owner"] for c in creations(link.pending)] == ["alice"]
    link.lose()
    mark = len(link.calls)
    link.back(rules)
    assert [c["owner"] for c in creations(since(link, mark))] == ["alice"]  # asked again
    link.answer_all([0, json.dumps({"owner": "carol", "key": "door"}).encode()])  # carol's room, keyed
    assert room.rules.owner == "carol" and room.rules.key == "door"


def test_changes_made_before_the_creation_is_answered_never_overwrite_the_chats_room(setup) -> None:  # type: ignore[no-untyped-def]
    hub, link, rules = setup
    told: list[tuple[str, str]] = []
    rules.tell = lambda member, line: told.append((member.nick, line))
    link.ready = False  # Redis unreachable: alice creates #den here and keys it
    room = hub.rooms.open("#den", owner="alice")
    alice = Member(7, "alice")
    hub.add(alice)
    hub.join(alice, room)
    set_key(hub, room, "mine")
    mark = len(link.calls)
    link.back(rules)
    assert not writes(since(link, mark))  # not before Redis said whether the chat has #den
    assert [c["key"] for c in creations(since(link, mark))] == ["mine"]
    link.answer_all([0, json.dumps({"owner": "carol", "key": "door"}).encode()])
    assert room.rules.owner == "carol" and room.rules.key == "door"
    assert not rules.unsent and not writes(link.calls)  # carol's rules were never overwritten
    assert told == [("alice", "ERROR #den needs a key: /join #den KEY")]  # carol's key keeps her out
    mark = len(link.calls)
    link.lose()
    link.back(rules)
    assert not writes(since(link, mark))


def test_a_member_whose_change_the_chats_rules_replaced_is_told_it_was_not_kept(setup) -> None:  # type: ignore[no-untyped-def]
    hub, link, rules = setup
    told: list[tuple[str, str]] = []
    rules.tell = lambda member, line: told.append((member.nick, line))
    link.ready = False  # Redis unreachable: alice creates #den here and keys it (she was answered OK)
    room = hub.rooms.open("#den", owner="alice")
    alice = Member(7, "alice")
    hub.add(alice)
    hub.join(alice, room)
    set_key(hub, room, "mine")
    link.back(rules)
    link.answer_all([0, json.dumps({"owner": "carol"}).encode()])  # the chat's #den: carol's, no key
    assert room.rules.owner == "carol" and not room.rules.key and alice.id in room.members
    assert told == [("alice", "* #den: the other servers had this room already and its rules are theirs: changes "
                              "made here before they answered were not kept")]


def test_a_change_made_while_a_new_rooms_creation_is_in_flight_is_shared_after_it(setup) -> None:  # type: ignore[no-untyped-def]
    hub, link, rules = setup
    room = hub.rooms.open("#den", owner="alice")
    set_key(hub, room, "door")  # a client pipelining "/join #den" and "/key door"
    assert not writes(link.calls)
    link.answer_all([1])  # the chat's first #den: alice's, as created (without the key)
    assert [w["key"] for w in writes(link.calls)] == ["door"]
    link.answer_all(1)
    assert not rules.unsent


def test_close_cancels_the_retry_and_ignores_late_replies(setup, caplog) -> None:  # type: ignore[no-untyped-def]
    hub, link, rules = setup
    room = den(hub, link)
    set_key(hub, room, "door")
    link.answer_all(ReplyError("OOM command not allowed"))
    assert [t for t in link.loop.timers if not t.cancelled]  # a retry is due...
    set_key(hub, room, "other")
    caplog.set_level(logging.INFO, logger="chatroom.server")
    caplog.clear()
    rules.close()  # ...but the server stops
    assert link.loop.timers and all(t.cancelled for t in link.loop.timers)
    link.lose()  # (the link's close fails what was in flight)
    assert not caplog.records


def test_a_room_whose_rules_redis_lost_gets_this_nodes_copy_back_unless_another_node_restored_it_first(setup) -> None:  # type: ignore[no-untyped-def]
    hub, link, rules = setup
    room = den(hub, link)
    set_key(hub, room, "door")
    link.answer_all(1)
    link.lose()  # Redis restarted empty: the node reads #den's rules again and finds none
    mark = len(link.calls)
    link.back(rules)
    (read,) = reads(since(link, mark))
    link.answer(read, None)
    assert [r["key"] for r in restores(link.pending)] == ["door"]  # this node's copy, unless Redis has some by then
    assert not writes(link.pending)  # (never overwriting rules another node restored first)
    link.lose()  # lost before the answer: asked again, the same way
    mark = len(link.calls)
    link.back(rules)
    assert [r["key"] for r in restores(since(link, mark))] == ["door"] and not creations(since(link, mark))
    link.answer_all([0, json.dumps({"owner": "alice", "key": "theirs"}).encode()])  # node b's copy came first
    assert room.rules.key == "theirs" and not rules.uncreated and not rules.unsent
