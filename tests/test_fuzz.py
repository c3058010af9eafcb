"""Issue 8: property-based fuzzing of the parser and the dispatcher with hostile bytes (hypothesis).

Two targets:

* :class:`chatroom.wire.lines.Parser` fed arbitrary bytes in arbitrary splits:
  no exception escapes, and ``parser.buffered`` never exceeds
  ``max_line + max_frame`` after any ``feed``.
* The in-process room (``chatroom_room`` fixture): one client sends arbitrary
  bytes in arbitrary chunks (``FakeClient.send_bytes``): no exception escapes,
  another client can still chat afterwards, the sender's parser stays bounded,
  and no plugin fault was recorded (``room.faults == []``: input a client
  chooses must be answered with an error, never crash a plugin).

The byte strategies mix raw bytes with the pieces attacks are made of
(frame marks, non-ASCII digits such as ``²``, long digit runs, command
names), so short searches reach the interesting paths; the known attacks
from the issue are pinned as explicit examples. Searches are derandomized and
bounded (``max_examples``), so the file runs the same way every time, in a
few seconds.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chatroom.wire import lines as protocol

#: Numbers as a hostile peer writes them: non-ASCII digits, signs, huge and empty ones.
TRICKY_NUMBERS = ["\u00b2", "\u0663", "\uff11", "1" * 5000, "9" * 25, "0", "", "-1", "+1", "1_0", " 1", "4194304"]
numberish = st.one_of(
    st.sampled_from(TRICKY_NUMBERS),
    st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=6),  # any Unicode digit
    st.integers(min_value=0, max_value=10**30).map(str),
).map(lambda text: text.encode("utf-8"))
#: Commands that take numbers or names, and the kinds of frame a client may send.
COMMANDS = [b"/read ", b"/read -v ", b"/tweets ", b"/tweet -d ", b"/sendfile x ", b"/sendfile ", b"/upper ",
            b"/nick ", b"/msg bob ", b"/help ", b"/subscribe #", b"/post "]
FRAME_KINDS = [b"x", b"file-data ", b"file-end ", b"file-abort ", b"file-begin "]
frame = st.builds(
    lambda size, kind, tid, payload: b"\x10" + size + b" " + kind + tid + b"\n" + payload,
    st.one_of(numberish, st.integers(min_value=0, max_value=64).map(lambda n: b"%d" % n)),
    st.sampled_from(FRAME_KINDS), numberish, st.binary(max_size=64),
)
command = st.builds(lambda name, arg: name + arg + b"\n", st.sampled_from(COMMANDS), numberish)
#: Other pieces hostile input is made of.
PIECES = [
    b"\n", b"\r\n", b"\x10", b" ", b"#\n", b"\xff", b"\x1b[2J", b"\xe2\x80\xae", b"\xe2\x80\xa8", b"x" * 300,
    b"/post\n", b"/caps binary\n", b"/who\n", b"/quit\n", b"//", b"/x\n",
]
_piece = st.one_of(frame, command, st.sampled_from(PIECES), st.binary(min_size=1, max_size=40))
hostile_bytes = st.lists(_piece, max_size=30).map(b"".join)
chunks = st.lists(hostile_bytes, min_size=1, max_size=6)

SMALL_LINE, SMALL_FRAME = 64, 256  # small limits, so the fuzzer reaches them


def _check_parser(parser: protocol.Parser, pieces: list[bytes]) -> None:
    bound = parser.max_line + parser.max_frame
    for piece in pieces:
        events = parser.feed(piece)
        assert all(isinstance(e, (protocol.Line, protocol.Frame, protocol.TooLong)) for e in events)
        assert parser.buffered <= bound, f"{parser.buffered} bytes buffered, bound {bound}"


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(data=hostile_bytes, cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=12))
@example(data=b"\x10\xc2\xb2 x\n", cuts=[])
@example(data=b"\x10" + b"1" * 5000 + b" x\n", cuts=[3])
def test_parser_survives_any_bytes_in_any_split_with_small_limits(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    pieces = [data[a:b] for a, b in zip(bounds, bounds[1:])] or [b""]
    _check_parser(protocol.Parser(max_line=SMALL_LINE, max_frame=SMALL_FRAME), pieces)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(pieces=chunks)
@example(pieces=[b"\x10\xc2\xb2 x\n"])
@example(pieces=[b"\x10" + b"1" * 5000, b" x\n"])
def test_parser_survives_any_bytes_with_the_default_limits(pieces: list[bytes]) -> None:
    _check_parser(protocol.Parser(), pieces)


ROOM_ATTACKS = [
    [b"/read \xc2\xb2\n"],
    [b"/read 99999999999999999999\n"],
    [b"/tweets \xc2\xb2\n"],
    [b"/sendfile x " + b"9" * 5000 + b"\n"],
    [b"/caps binary\n", protocol.encode_frame("file-data \u00b2", b"abc")],
    [b"/caps binary\n", protocol.encode_frame("file-data " + "1" * 5000, b"abc")],
    [b"\x10\xc2\xb2 x\n"],
]


@settings(max_examples=120, deadline=None, derandomize=True, database=None,  # a whole room per example: ~0.2 s
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(pieces=chunks)
@example(pieces=ROOM_ATTACKS[0])
@example(pieces=ROOM_ATTACKS[1])
@example(pieces=ROOM_ATTACKS[2])
@example(pieces=ROOM_ATTACKS[3])
@example(pieces=ROOM_ATTACKS[4])
@example(pieces=ROOM_ATTACKS[5])
@example(pieces=ROOM_ATTACKS[6])
def test_the_room_survives_any_bytes_from_one_client(chatroom_room, pieces: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    # a fresh room per example (the fixture is a factory; each room is closed here)
    room = chatroom_room()
    try:
        alice, bob = room.join("alice"), room.join("bob", binary=True)
        mallory = room.join()
        parser = mallory.client.parser
        for piece in pieces:
            if mallory.closed:
                break
            mallory.send_bytes(piece)
            assert parser.buffered <= parser.max_line + parser.max_frame
        assert room.faults == [], f"client input caused plugin faults: {[p for p, _ in room.faults]}"
        alice.say("still here")
        assert bob.last == "alice: still here"
        assert alice.say("/upper ok") == ["OK"]
    finally:
        room.close()
