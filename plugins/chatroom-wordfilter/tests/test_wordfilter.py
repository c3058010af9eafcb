"""Tests for chatroom-wordfilter, with chatroom's test kit (the ``chatroom_room`` fixture)."""

import chatroom_wordfilter
import pytest

from chatroom import hookimpl
from chatroom.testing import PluginLoadError


def make_room(chatroom_room, **settings):
    return chatroom_room(plugins=[("wordfilter", chatroom_wordfilter)], config={"wordfilter": settings})


def test_default_words_are_masked_for_everyone_else(chatroom_room):
    room = make_room(chatroom_room)
    alice, bob = room.join("alice"), room.join("bob")
    assert alice.say("well DARN it, heck") == []
    assert bob.last == "alice: well D*** it, h***"


def test_clean_lines_pass_unchanged(chatroom_room):
    room = make_room(chatroom_room)
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("darning socks is heckling-free")  # whole words only
    assert bob.last == "alice: darning socks is heckling-free"


def test_configured_words_and_mask(chatroom_room):
    room = make_room(chatroom_room, words=["spoiler", "ending"], mask="#")
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("no Spoiler about the ending, darn")
    assert bob.last == "alice: no S###### about the e#####, darn"


def test_drop_mode_tells_the_sender_and_nobody_else(chatroom_room):
    room = make_room(chatroom_room, mode="drop")
    alice, bob = room.join("alice"), room.join("bob")
    bob.clear()
    assert alice.say("oh heck") == ["* your message was not sent: it contains a filtered word"]
    assert bob.received == []
    alice.say("oh well")
    assert bob.received == ["alice: oh well"]


def test_commands_are_not_filtered(chatroom_room):
    room = make_room(chatroom_room)
    alice = room.join("alice")
    assert alice.say("/upper darn") == ["DARN"]


def test_bad_config_is_refused_at_startup(chatroom_room):
    with pytest.raises(PluginLoadError) as caught:
        make_room(chatroom_room, words="darn", mode="shout", mask="**", colour="red")
    message = str(caught.value)
    assert "[plugins.wordfilter] words must be an array, not 'darn'" in message
    assert "[plugins.wordfilter] mode must be one of 'mask', 'drop', not 'shout'" in message
    assert "[plugins.wordfilter] mask is '**'; the most allowed is 1 long" in message
    assert "[plugins.wordfilter] has unknown setting 'colour'" in message


def test_bad_config_falls_back_to_the_defaults_when_not_strict(chatroom_room):
    room = chatroom_room(plugins=[("wordfilter", chatroom_wordfilter)], strict=False,
                         config={"wordfilter": {"words": "darn", "mode": "shout"}})
    assert any("mode must be one of" in line for line in room.errors)
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("darn")
    assert bob.last == "alice: d***"


def test_empty_word_list_filters_nothing(chatroom_room):
    room = make_room(chatroom_room, words=[])
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("darn")
    assert bob.last == "alice: darn"


class Shouter:
    """Another chat_message plugin, to check the filter composes with others."""

    @hookimpl
    def chat_message(self, text):
        return text.upper()


@pytest.mark.parametrize("order", ["filter first", "shouter first"])
def test_composes_with_other_chat_message_plugins(chatroom_room, order):
    plugins = [("wordfilter", chatroom_wordfilter), ("shouter", Shouter())]
    if order == "shouter first":
        plugins.reverse()
    room = chatroom_room(plugins=plugins)
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("darn it")
    assert bob.last == "alice: D*** IT"
