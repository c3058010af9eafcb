"""Tests for chatroom-tell, with chatroom's test kit (the ``chatroom_room`` fixture)."""

import chatroom_tell
import pytest

from chatroom.testing import example_tests

test_examples = example_tests(("tell", chatroom_tell.plugin))


@pytest.fixture
def room(chatroom_room):
    return chatroom_room(plugins=[("tell", chatroom_tell.plugin)], builtins=True)


def test_a_message_waits_until_its_nick_is_ready(room):
    alice = room.join("alice")
    assert alice.say("/later bob lunch at noon") == ["OK I will tell bob"]
    room.advance(120)
    bob = room.join("bob")
    assert "* alice told you 2m ago: lunch at noon" in bob.received
    bob.clear()
    bob.say("hello")
    assert not any("told you" in line for line in bob.received)  # delivered once


def test_taking_the_nick_or_speaking_delivers_too(room):
    alice, guest = room.join("alice"), room.join()
    alice.say("/later Bob call me")
    guest.clear()
    guest.say("/nick bob")
    assert guest.received[0] == "* alice told you just now: call me"  # nick_changed: before the OK


def test_delivered_at_once_when_present(room):
    alice, bob = room.join("alice"), room.join("bob")
    bob.clear()
    assert alice.say("/later bob hi") == ["OK I will tell bob"]
    assert bob.received == ["* alice told you just now: hi"]


def test_refusals(chatroom_room):
    room = chatroom_room(plugins=[("tell", chatroom_tell.plugin)], builtins=True, config={"tell": {"max_pending": 1}})
    alice = room.join("alice")
    assert alice.say("/later alice me") == ["ERROR tell yourself in person"]
    assert alice.say("/later") == ["ERROR usage: /later NICK MESSAGE: NICK is missing"]
    alice.say("/later bob one")
    assert alice.say("/later bob two") == ["ERROR you have 1 messages waiting already (/later list)"]


def test_list_and_purge_which_needs_an_operator(room):
    alice = room.join("alice")
    alice.say("/later carol one")
    assert alice.say("/later list") == ["* for carol: one", "OK 1 waiting"]
    assert alice.say("/later purge carol") == ["ERROR permission denied: /later purge needs a room operator"]
    olga = room.join("olga", operator="#lobby")
    assert olga.say("/later purge carol") == ["OK dropped 1 for carol"]
    assert alice.say("/later list") == ["OK 0 waiting"]


def test_seen_names_the_room_only_to_who_may_read_it(room):
    alice, bob = room.join("alice"), room.join("bob")
    bob.say("/join #den")
    bob.say("/key #den s3cret")
    bob.say("in the den")
    bob.leave()
    room.advance(3600)
    assert alice.say("/seen bob") == ["* bob spoke 1h ago"]  # #den has a key and alice is not in it
    assert alice.say("/seen zed") == ["ERROR I have not seen zed speak"]
    alice.say("hi")
    carol = room.join("carol")
    assert carol.say("/seen alice") == ["* alice is here"]
    alice.leave()
    assert carol.say("/seen alice") == ["* alice spoke just now in #lobby"]


def test_messages_survive_a_restart(room):
    room.join("alice").say("/later bob see you tomorrow")
    bob = room.restart().join("bob")
    assert "* alice told you just now: see you tomorrow" in bob.received


def test_old_messages_expire(chatroom_room):
    room = chatroom_room(plugins=[("tell", chatroom_tell.plugin)], builtins=True, config={"tell": {"max_age_days": 1}})
    room.join("alice").say("/later bob old news")
    room.advance(86400 + 3600)
    assert not any("old news" in line for line in room.join("bob").received)


def test_the_inbox_thread_hands_lines_to_the_loop(chatroom_room):
    room = chatroom_room(plugins=[("tell", chatroom_tell.plugin)], builtins=True, threads=True,
                         config={"tell": {"inbox_poll": 0.05}})
    bob = room.join("bob")
    inbox = room.context("tell").data_dir / "inbox.txt"
    with inbox.open("a") as f:
        f.write("bob the build is green\ncarol the build")  # carol's line is not finished yet
    room.wait_for(lambda: "* inbox told you just now: the build is green" in bob.received)
    with inbox.open("a") as f:
        f.write(" is red\n")
    carol = room.join("carol")
    room.wait_for(lambda: "* inbox told you just now: the build is red" in carol.received)
