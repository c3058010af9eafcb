"""Tests for chatroom-standup, with chatroom's test kit (the ``chatroom_room`` fixture)."""

import chatroom_standup
import pytest

from chatroom.testing import example_tests

test_examples = example_tests(("standup", chatroom_standup))


@pytest.fixture
def room(chatroom_room):
    return chatroom_room(plugins=[("standup", chatroom_standup)], config={"standup": {"turn": 30}})


def test_each_member_gets_the_floor_in_turn_said_in_the_room(room):
    alice, bob, carol = room.join("alice"), room.join("bob"), room.join("carol")
    assert alice.say("/standup start") == [
        "OK stand-up in #lobby: 3 members, 30 s each",
        "* stand-up started by alice: alice, bob, carol",
        "* stand-up: alice, your turn (30 s; /standup next when you are done)",
    ]
    assert carol.received[-1] == "* stand-up: alice, your turn (30 s; /standup next when you are done)"
    room.advance(30)
    assert bob.last == "* stand-up: bob, your turn (30 s; /standup next when you are done)"
    assert bob.say("/standup next")[0] == "OK next"
    assert alice.last == "* stand-up: carol, your turn (30 s; /standup next when you are done)"
    room.advance(30)
    assert alice.last == "* stand-up done: 3 spoke; /standup notes shows the notes"
    assert room.timers == []


def test_a_member_elsewhere_sees_the_turns_marked_with_the_room(room):
    alice, bob = room.join("alice"), room.join("bob")
    bob.say("/join #side")  # bob is still in #lobby, but #side is current now
    alice.say("/standup start 10")
    assert "[#lobby] * stand-up: alice, your turn (10 s; /standup next when you are done)" in bob.received


def test_newcomers_speak_last_and_leavers_are_dropped(room):
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("/standup start")
    carol = room.join("carol")  # joins #lobby during the stand-up (as guest3, then named): member_joined
    assert "* stand-up: guest3 joined and speaks last" in alice.received
    bob.leave()  # the member_left hook: bob never gets the floor
    room.advance(30)
    assert alice.last == "* stand-up: carol, your turn (30 s; /standup next when you are done)"
    carol.say("/part")  # the speaker leaves the room: the next turn at once (here: the end)
    assert alice.last == "* stand-up done: 2 spoke; /standup notes shows the notes"


def test_it_goes_on_after_its_starter_left(room):
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("/standup start")
    alice.leave()  # the timer keeps alice's context; it only says things in the room
    assert bob.last == "* stand-up: bob, your turn (30 s; /standup next when you are done)"
    room.advance(30)
    assert bob.last == "* stand-up done: 2 spoke; /standup notes shows the notes"


def test_a_refused_start_does_not_spend_the_rooms_rate(room):
    alice, bob = room.join("alice"), room.join("bob", operator="#lobby")
    carol = room.join("carol")
    alice.say("/standup start 40")  # 3 turns of 40 s
    room.advance(30)
    assert bob.say("/standup start") == ["ERROR a stand-up was started here less than a minute ago; "
                                         "try again in 30 s"]  # the Rate, before the handler
    room.advance(40)
    assert bob.say("/standup start") == ["ERROR a stand-up is already running in #lobby: /standup next or "
                                         "/standup stop"]  # the handler's refusal: spends nothing
    assert carol.say("/standup stop") == ["ERROR permission denied: /standup stop needs a room operator"]
    assert bob.say("/standup stop")[0] == "OK stopped"
    assert bob.say("/standup start")[0] == "OK stand-up in #lobby: 3 members, 30 s each"  # not locked out
    assert bob.say("/standup stop")[0] == "OK stopped"
    assert alice.say("/standup start") == ["ERROR a stand-up was started here less than a minute ago; "
                                           "try again in 60 s"]


def test_notes_are_kept_per_room_across_a_restart(room):
    alice = room.join("alice")
    assert alice.say("/standup note fixed the build") == ["OK noted in #lobby"]
    alice.say("/join #ops")
    alice.say("/standup note paged at 3am")
    room.restart()
    alice = room.join("alice")
    assert alice.say("/standup notes") == ["* alice: fixed the build", "OK 1 note"]
