"""The sans-I/O protocol module, without sockets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom.wire import irc, lines
from chatroom.wire.irc import IrcParser, Message
from chatroom.wire.lines import (
    FRAME_MARK,
    MAX_LINE,
    Frame,
    Line,
    Parser,
    TooLong,
    encode_frame,
    encode_line,
    sanitize,
    skip_line,
)


def feed_all(parser: Parser, *chunks: bytes) -> list:
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events


def test_lines_split_on_newline_and_crlf() -> None:
    assert feed_all(Parser(), b"hello\nwor", b"ld\r\n\n") == [Line("hello"), Line("world"), Line("")]


def test_partial_line_is_held_until_its_newline() -> None:
    parser = Parser()
    assert parser.feed(b"no newline yet") == []
    assert parser.buffered == len(b"no newline yet")
    assert parser.feed(b"!\n") == [Line("no newline yet!")]
    assert parser.buffered == 0


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert Parser().feed(b"caf\xc3\xa9 \xff\xfe ok\n") == [Line("café \ufffd\ufffd ok")]


def test_over_long_line_is_reported_and_stream_stays_in_sync() -> None:
    parser = Parser(max_line=16)
    events = feed_all(parser, b"x" * 10, b"y" * 30, b"z\nnext\n")
    assert events == [TooLong("line", 42), Line("next")]
    assert parser.buffered == 0  # nothing of the long line was kept


def test_over_long_line_in_one_chunk() -> None:
    assert Parser(max_line=8).feed(b"123456789\nok\n") == [TooLong("line", 10), Line("ok")]


def test_skip_line_drops_what_came_of_the_line_and_counts_it_until_its_end() -> None:
    buf = bytearray(b"keep" + b"y" * 30)  # 4 bytes before pos stay; 12 bytes of the line were dropped already
    assert skip_line(buf, 4, -1, 12) == (42, None)
    assert buf == b"keep"  # nothing of the line is held
    buf += b"yz\r\nnext\n"
    nl = buf.find(b"\n", 4)
    assert skip_line(buf, 4, nl, 42) == (0, TooLong("line", 42 + 4))  # "yz\r\n": the LF is the line's
    assert buf == b"keepyz\r\nnext\n"  # with its end in sight nothing is deleted: the parser moves past nl


@pytest.mark.parametrize("parser, after", [(Parser(max_line=16), Line("next")),
                                           (IrcParser(max_line=16), Message("next"))], ids=["lines", "irc"])
def test_both_parsers_skip_an_over_long_line_sent_in_pieces(parser: Parser | IrcParser, after: object) -> None:
    """The line protocol's parser and the IRC parser share skip_line: an over-long line that comes in several
    receive_data calls is dropped as it comes and reported once, with its whole size, at its end."""
    events = []
    for piece in (b"x" * 20, b"y" * 30, b"y" * 7, b"z\r\nnext\r\n"):
        parser.receive_data(piece)
        while (event := parser.next_event()) is not None:
            events.append(event)
        if piece[-1:] != b"\n":
            assert parser.partial and parser.buffered == 0  # skipping: nothing of the line is held
    assert events == [TooLong("line", 20 + 30 + 7 + 3), after]
    assert not parser.partial


def test_the_parsers_call_skip_line_only_for_an_over_long_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """skip_line is off the hot path: a stream of normal lines never calls it."""
    calls = []

    def counted(buf: bytearray, pos: int, nl: int, skipped: int) -> tuple[int, TooLong | None]:
        calls.append(nl)
        return skip_line(buf, pos, nl, skipped)

    monkeypatch.setattr(lines, "skip_line", counted)
    monkeypatch.setattr(irc, "skip_line", counted)
    for parser, line in ((Parser(max_line=64), b"hello there\r\n"), (IrcParser(), b"PRIVMSG #r :hello\r\n")):
        for chunk in (line * 50, line[:5], line[5:] * 3):
            parser.receive_data(chunk)
            while parser.next_event() is not None:
                pass
        assert calls == []
        for _ in range(2):
            parser.receive_data(b"x" * 600)  # the first starts the skipping, the second goes on with it
            assert parser.next_event() is None
        parser.receive_data(b"x\n")
        assert isinstance(parser.next_event(), TooLong)
        assert calls == [-1, 1]  # once while the line went on, once at its end (the LF's index)
        calls.clear()


def test_line_at_exactly_the_limit_is_accepted() -> None:
    line = b"a" * (MAX_LINE - 1) + b"\n"
    assert Parser().feed(line) == [Line("a" * (MAX_LINE - 1))]


def test_frame_between_lines() -> None:
    payload = bytes(range(256)) * 3 + b"\n\n\x10"
    data = encode_line("before") + encode_frame("file-data 7", payload) + encode_line("after")
    assert Parser().feed(data) == [Line("before"), Frame("file-data 7", payload), Line("after")]


def test_frame_header_format() -> None:
    assert encode_frame("file-end 3 abc", b"") == b"\x100 file-end 3 abc\n"
    assert encode_frame("x", b"12") == b"\x102 x\n12"


def test_oversized_frame_is_skipped_in_sync() -> None:
    parser = Parser(max_frame=4)
    data = encode_frame("big", b"0123456789") + encode_line("after")
    assert feed_all(parser, data[:5], data[5:]) == [TooLong("frame", 10), Line("after")]


def test_malformed_frame_header_becomes_a_visible_line() -> None:
    assert Parser().feed(b"\x10abc def\nok\n") == [Line("abc def"), Line("ok")]


def test_sanitize_strips_escapes_and_controls() -> None:
    assert sanitize("plain text stays") == "plain text stays"
    assert sanitize("a\x1b[31mred\x1b[0m b") == "ared b"
    assert sanitize("title\x1b]0;pwned\x07 done") == "title done"
    assert sanitize("bell\x07 nul\x00 tab\tok") == "bell nul tab\tok"
    assert sanitize("\x10frame mark") == "frame mark"
    assert sanitize("c1\x9b2Jx") == "c1x"


@given(st.text(max_size=200))
def test_sanitized_text_never_starts_a_frame_or_holds_controls(text: str) -> None:
    clean = sanitize(text)
    assert not clean.startswith(chr(FRAME_MARK))
    assert all(ch == "\t" or not (ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F) for ch in clean)


_line_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x10"), max_size=40
)
_items = st.lists(
    st.one_of(
        _line_text.map(lambda t: ("line", t)),
        st.tuples(st.just("frame"), st.binary(max_size=300)),
        st.just(("long", "")),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(items=_items, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30))
def test_any_split_of_the_stream_gives_the_same_events(items: list, cuts: list[int]) -> None:
    max_line = 64
    stream = b""
    expected: list = []
    for kind, value in items:
        if kind == "line":
            stream += encode_line(value)
            size = len(encode_line(value))
            expected.append(Line(value) if size <= max_line else TooLong("line", size))
        elif kind == "frame":
            stream += encode_frame("file-data 1", value)
            expected.append(Frame("file-data 1", value))
        else:
            stream += b"L" * 100 + b"\n"
            expected.append(TooLong("line", 101))
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)])]
    parser = Parser(max_line=max_line)
    assert feed_all(parser, *chunks) == expected
    assert parser.buffered == 0
