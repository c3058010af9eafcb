"""The per-line fast paths of the loop (docs/benchmarks.md, "Fan-out hot path") give exactly what the general
paths give: the line protocol's and IRC's encoding of a chat line, the size check of a relayed line (the IRC
parser's fast path is held to the message format by tests/test_irc_codec.py); and a line said in an empty
room goes to that room."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom.model.history import Entry
from chatroom.plugins.dispatch import PREFIX_RESERVE
from chatroom.testing import InProcessRoom
from chatroom.wire.irc import Message, encode_whole
from chatroom.wire.ircevents import plain_privmsg, render_event
from chatroom.wire.lines import MAX_LINE, encode_line
from chatroom.wire.render import encode_event, render

T = 1_790_000_000.5
TEXTS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40) | st.sampled_from(
    ["", ":colon", "a b", " lead", "x" * (MAX_LINE - 10), "é" * (MAX_LINE // 2), "nul\0cr\r", "\ud800 lone"])


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.sampled_from(["alice", "bób", "x" * 30]))
def test_a_chat_line_encodes_as_the_general_path_would(text: str, nick: str) -> None:
    entry = Entry("#r", 3, T, "msg", nick, None, text)
    assert encode_event(entry, 0, True) == encode_line(render("msg", "#r", nick, text))


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.sampled_from(["alice!~alice@127.0.0.1", "bób!u@h", ""]))
def test_a_plain_privmsg_is_the_codec_s_line_or_none(text: str, source: str) -> None:
    whole = encode_whole(Message("PRIVMSG", ["#r", text], source=source))
    fast = plain_privmsg(source, "#r", text)
    if fast is not None:
        assert fast == whole
    else:  # the general path cuts or cleans it
        assert whole is None or any(c in text for c in "\0\r\n")
    entry = Entry("#r", 3, T, "msg", "alice", None, text)
    assert render_event(entry, 0, lambda nick: source, "irc.test") == (fast or render_event(
        entry, 0, lambda nick: source, "irc.test"))


def test_a_line_said_in_an_empty_room_goes_to_that_room(tmp_path: Path) -> None:
    with InProcessRoom(data_dir=tmp_path, history_on_join=0) as room:
        alice = room.join("alice")
        server = room.server
        empty = server.hub.open_room("#empty")
        assert not empty.members and alice.client.room is not empty
        assert server.dispatcher.chat(alice.client, "from outside", "msg", empty) is None  # the speak rule
        room.settle()
        assert alice.last == "ERROR you are not in #empty: /join #empty first"
        empty.rules.external = True  # it takes lines from outside (IRC's -n): the empty room, not alice's, gets it
        entry = server.dispatcher.chat(alice.client, "to the empty room", "msg", empty)
        assert entry is not None and entry.room == "#empty"


def test_the_size_check_counts_the_relayed_line_in_bytes(tmp_path: Path) -> None:
    with InProcessRoom(data_dir=tmp_path, history_on_join=0) as room:
        bob = room.join("bob")
        most = MAX_LINE - PREFIX_RESERVE - len("bob: \n")  # bytes of text that fit, relayed as "bob: text\n"
        assert not any(line.startswith("ERROR") for line in bob.say("é" * (most // 2)))  # two bytes each
        assert bob.say("é" * (most // 2) + "x")[-1].startswith("ERROR line too long for the room")


class _Partial:
    """A socket that takes at most *room* bytes per ``sendmsg`` (a full kernel buffer)."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.got = bytearray()

    def sendmsg(self, buffers: list[bytes | bytearray | memoryview]) -> int:
        data = b"".join(bytes(b) for b in buffers)[: self.room]
        self.got += data
        return len(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=9000), min_size=1, max_size=4), st.integers(1, 10_000),
       st.sampled_from([0, 100, 64 * 1024]))
def test_the_output_queue_sends_every_byte_once_in_order(pieces: list[bytes], room: int, limit: int) -> None:
    from chatroom.sockets.outqueue import OutQueue

    queue, sock = OutQueue(), _Partial(room)
    for piece in pieces:
        queue.append(piece)
    total = sum(map(len, pieces))
    for _ in range(total + 1):
        if not queue:
            break
        sent = queue.send_to(sock, limit)
        assert 0 < sent <= room and (not limit or sent <= max(limit, 64 * 1024))
        assert queue.size == total - len(sock.got)
    assert bytes(sock.got) == b"".join(pieces) and queue.size == 0
