"""The receive-side StreamParser (chatroom.wire.stream) gives the same events as the shared Parser, for
any bytes in any split, payloads arriving as views of one buffer that is never grown (issue 12 speed)."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_fuzz import SMALL_FRAME, SMALL_LINE, hostile_bytes

from chatroom.wire import lines as protocol
from chatroom.wire.stream import StreamParser


def _merged(events: list[Any]) -> list[Any]:
    """Events with consecutive frames of the same meta joined (a payload may come in pieces)."""
    out: list[Any] = []
    for event in events:
        if isinstance(event, protocol.Frame):
            payload = bytes(event.payload)
            if out and isinstance(out[-1], tuple) and out[-1][0] == event.meta:
                out[-1] = (event.meta, out[-1][1] + payload)
                continue
            out.append((event.meta, payload))
        else:
            out.append(event)
    return out


def _stream_events(parser: StreamParser, data: bytes, cuts: list[int]) -> list[Any]:
    """Feed *data* the way the client loop does (into get_buffer), *cuts* giving the read sizes."""
    events: list[Any] = []
    offset, turn = 0, 0
    buffer_id = id(parser._buf)  # noqa: SLF001 - the buffer must never be replaced or grown
    size = len(parser._buf)  # noqa: SLF001
    while offset < len(data):
        free = parser.get_buffer()
        assert len(free) > 0
        want = cuts[turn % len(cuts)] if cuts else len(data)
        turn += 1
        n = max(1, min(want, len(free), len(data) - offset))
        free[:n] = data[offset:offset + n]
        parser.buffer_updated(n)
        offset += n
        for event in parser.events():
            if isinstance(event, protocol.Frame):
                event = protocol.Frame(event.meta, bytes(event.payload))  # used before the next get_buffer
            events.append(event)
        assert parser.buffered < parser.max_line
    assert id(parser._buf) == buffer_id and len(parser._buf) == size  # noqa: SLF001
    return events


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(data=hostile_bytes, cuts=st.lists(st.integers(min_value=1, max_value=300), max_size=8))
@example(data=b"\x10" + b"300 file-data 1\n" + b"x" * 300 + b"hi\n", cuts=[7])
@example(data=b"\x10" + b"1" * 5000 + b" x\n", cuts=[3])
@example(data=b"y" * 200 + b"\r\nok\r\n", cuts=[64])
def test_stream_parser_gives_the_parsers_events_in_any_split(data: bytes, cuts: list[int]) -> None:
    # Padding completes a frame cut off at the end: the Parser yields it only once whole, the
    # StreamParser piece by piece as it arrives. The padding itself is an unfinished line: no event.
    data += b"\x00" * (SMALL_FRAME + 1)
    expected = protocol.Parser(max_line=SMALL_LINE, max_frame=SMALL_FRAME).feed(data)
    got = _stream_events(StreamParser(size=2 * SMALL_LINE, max_line=SMALL_LINE, max_frame=SMALL_FRAME), data, cuts)
    assert _merged(got) == _merged(expected)
    fed = StreamParser(size=2 * SMALL_LINE, max_line=SMALL_LINE, max_frame=SMALL_FRAME).feed(data)
    assert _merged(fed) == _merged(expected)


def test_a_big_payload_leaves_as_views_of_the_buffer_without_copies() -> None:
    parser = StreamParser()
    chunk = bytes(range(256)) * 4096  # 1 MiB
    data = protocol.encode_frame("file-data 7", chunk) + protocol.encode_line("after")
    free = parser.get_buffer()
    free[:len(data)] = data
    parser.buffer_updated(len(data))
    events = list(parser.events())
    assert [type(e) for e in events] == [protocol.Frame, protocol.Line]
    frame = events[0]
    assert isinstance(frame.payload, memoryview) and frame.payload.obj is parser._buf  # noqa: SLF001
    assert frame.meta == "file-data 7" and frame.payload == chunk and events[1] == protocol.Line("after")
