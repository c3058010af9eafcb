"""Tests for chatroom-transcript, with chatroom's test kit, on real worker threads (threads=True)."""

import json

import chatroom_transcript
import pytest

from chatroom.testing import PluginLoadError, example_tests

test_examples = example_tests(("transcript", chatroom_transcript))


def lines_of(room, name="lobby"):
    folder = room.server.data_dir / "plugins" / "transcript" / name
    return [json.loads(line) for f in sorted(folder.glob("*.jsonl")) for line in f.read_text().splitlines()]


def test_every_line_is_written_in_order_off_the_loop(chatroom_room):
    room = chatroom_room(plugins=[("transcript", chatroom_transcript)], threads=True)
    alice, bob = room.join("alice"), room.join("bob")
    for i in range(200):
        (alice if i % 2 else bob).say(f"line {i} :shrug:")
    alice.say("/me waves")
    room.close()  # queued jobs are drained before the stores close
    written = lines_of(room)
    assert [r["text"] for r in written[:200]] == [f"line {i} ¯\\_(ツ)_/¯" for i in range(200)]
    assert written[-1]["kind"] == "me" and written[-1]["nick"] == "alice"
    assert [r["id"] for r in written] == sorted(r["id"] for r in written)
    assert room.faults == []


def test_only_the_configured_rooms_and_no_emoji(chatroom_room):
    room = chatroom_room(plugins=[("transcript", chatroom_transcript)],
                         config={"transcript": {"rooms": ["#side"], "emoji": False}})
    alice = room.join("alice")
    alice.say("not recorded")
    alice.say("/join #side")
    alice.say(":shrug:")
    room.close()
    assert [r["text"] for r in lines_of(room, "side")] == [":shrug:"]
    assert lines_of(room) == []


def test_a_bad_setting_is_refused(chatroom_room):
    with pytest.raises(PluginLoadError, match=r"\[plugins.transcript\] emoji must be true or false"):
        chatroom_room(plugins=[("transcript", chatroom_transcript)], config={"transcript": {"emoji": "yes"}})
