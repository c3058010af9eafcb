"""Tests for chatroom-remind, with chatroom's test kit (the ``chatroom_room`` fixture)."""

import chatroom_remind
import pytest
from chatroom_remind import format_duration, parse_duration

from chatroom.testing import example_tests


@pytest.fixture
def room(chatroom_room):
    return chatroom_room(plugins=[("remind", chatroom_remind)])


def test_reminder_arrives_after_its_delay_and_not_before(room):
    alice = room.join("alice")
    assert alice.say("/remind 10s stand up") == ["OK reminder 1 in 10s"]
    room.advance(9.9)
    assert alice.last == "OK reminder 1 in 10s"
    room.advance(0.1)
    assert alice.last == "* reminder: stand up"
    assert room.timers == []


def test_reminder_goes_to_the_caller_only(room):
    alice, bob = room.join("alice"), room.join("bob")
    bob.clear()
    alice.say("/remind 1m stretch")
    room.advance(60)
    assert alice.last == "* reminder: stretch"
    assert bob.received == []


def test_text_is_kept_verbatim_quotes_and_all(room):
    alice = room.join("alice")
    alice.say("/remind 5s don't forget \"the\" milk")
    room.advance(5)
    assert alice.last == "* reminder: don't forget \"the\" milk"


def test_reminders_fire_in_time_order(room):
    alice = room.join("alice")
    alice.say("/remind 1h30m late")
    alice.say("/remind 90 early")
    room.advance(2 * 3600)
    assert alice.received[-2:] == ["* reminder: early", "* reminder: late"]


def test_list_and_cancel(room):
    alice = room.join("alice")
    alice.say("/remind 10s one")
    alice.say("/remind 20s two")
    assert alice.say("/reminders") == ["* reminder 1 (set for 10s): one", "* reminder 2 (set for 20s): two"]
    assert alice.say("/remind cancel 1") == ["OK cancelled 1"]
    room.advance(30)
    assert "* reminder: one" not in alice.received
    assert alice.last == "* reminder: two"
    assert alice.say("/reminders") == ["* no pending reminders"]


def test_cannot_cancel_someone_elses_reminder(room):
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("/remind 10s mine")
    assert bob.say("/remind cancel 1") == ["ERROR no pending reminder 1 of yours"]
    room.advance(10)
    assert alice.last == "* reminder: mine"


@pytest.mark.parametrize("line, reply", [
    ("/remind", "ERROR usage: /remind DURATION TEXT: DURATION is missing"),
    ("/remind 10s", "ERROR usage: /remind DURATION TEXT: TEXT is missing"),
    ("/remind soon wake up", "ERROR usage: /remind DURATION TEXT: not a duration: 'soon' (try 90s, 5m, 1h30m)"),
    ("/remind 0s now", "ERROR usage: /remind DURATION TEXT: not a duration: '0s' (try 90s, 5m, 1h30m)"),
    ("/remind 2d later", "ERROR at most 1d ahead"),
    ("/remind cancel x", "ERROR usage: /remind cancel ID: ID must be a whole number"),
    ("/remind cancel 0", "ERROR usage: /remind cancel ID: ID must be at least 1"),
])
def test_misuse_is_answered_with_an_error(room, line, reply):
    alice = room.join("alice")
    assert alice.say(line) == [reply]
    assert room.timers == []


def test_reminders_follow_a_nick_change(room):
    alice = room.join("alice")
    alice.say("/remind 10s hello")
    alice.say("/nick alicia")
    room.advance(10)
    assert alice.last == "* reminder: hello"


def test_leaving_cancels_pending_reminders(room):
    alice = room.join("alice")
    alice.say("/remind 10s never delivered")
    assert len(room.timers) == 1
    alice.leave()
    assert room.timers == []
    room.advance(10)
    assert room.faults == []


def test_config_limits(chatroom_room):
    room = chatroom_room(plugins=[("remind", chatroom_remind)],
                         config={"remind": {"max_per_user": 2, "max_duration": 60}})
    alice = room.join("alice")
    alice.say("/remind 1m a")
    alice.say("/remind 1m b")
    assert alice.say("/remind 1m c") == ["ERROR you have 2 reminders pending; /remind cancel ID one first"]
    assert alice.say("/remind 61s d") == ["ERROR at most 1m ahead"]


test_examples = example_tests(("remind", chatroom_remind))


def test_an_accounts_reminders_survive_a_restart_and_wait_for_it_to_log_in(chatroom_room):
    room = chatroom_room(plugins=[("remind", chatroom_remind)])
    alice = room.join("alice")
    assert alice.say("/register hunter2hunter2")[0].startswith("OK registered")
    assert alice.say("/remind 1h water the plants") == ["OK reminder 1 in 1h"]
    room.restart()  # the server stops and starts again; the reminder was in the store
    assert len(room.timers) == 1
    room.advance(3600)  # due while nobody is logged in to alice
    guest = room.join()
    assert guest.say("/login alice hunter2hunter2") == ["OK logged in as alice", "* reminder: water the plants"]
    assert guest.say("/reminders") == ["* no pending reminders"]


def test_a_failed_insert_leaves_nothing_behind(chatroom_room):
    room = chatroom_room(plugins=[("remind", chatroom_remind)], config={"remind": {"max_per_user": 1}})
    alice = room.join("alice")
    alice.say("/remind 10s one")
    assert alice.say("/remind 10s two") == ["ERROR you have 1 reminders pending; /remind cancel ID one first"]
    assert alice.say("/reminders") == ["* reminder 1 (set for 10s): one"]


def test_help_lists_the_commands(room):
    alice = room.join("alice")
    lines = alice.say("/help")
    assert any(line.startswith("/remind DURATION TEXT") for line in lines)
    assert any(line.startswith("/reminders") for line in lines)


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2D", 172800)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "1x", "-5s", "0", "1.5m"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration():
    assert [format_duration(s) for s in (10, 60, 3690, 86400)] == ["10s", "1m", "1h1m30s", "1d"]
