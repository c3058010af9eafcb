"""The IRC codec (chatroom/wire/irc.py), without sockets: parsing, limits, tags, encoding, case mapping."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom.wire.irc import (
    MAX_CLIENT_TAGS, MAX_LINE, IrcParser, Message, TooLong, casefold, encode, escape_tag, format_tags, parse_line,
    parse_tags, split_text, unescape_tag,
)


def test_parse_the_parts_of_a_message() -> None:
    msg = parse_line("@time=2026-01-01T00:00:00.000Z;+draft/x=a\\sb;flag :nick!u@h PRIVMSG #chan :hello there")
    assert msg == Message("PRIVMSG", ["#chan", "hello there"], source="nick!u@h",
                          tags={"time": "2026-01-01T00:00:00.000Z", "+draft/x": "a b", "flag": ""})


def test_parse_params_without_trailing_and_repeated_spaces() -> None:
    assert parse_line("USER  u 0  *   :Real Name") == Message("USER", ["u", "0", "*", "Real Name"])
    assert parse_line("JOIN #a,#b key") == Message("JOIN", ["#a,#b", "key"])
    assert parse_line("PING :") == Message("PING", [""])
    assert parse_line("QUIT") == Message("QUIT", [])
    assert parse_line("PRIVMSG #c ::-)") == Message("PRIVMSG", ["#c", ":-)"])
    assert parse_line("PRIVMSG #c a:b") == Message("PRIVMSG", ["#c", "a:b"])


def test_lines_without_a_command_are_nothing() -> None:
    for line in ("", "   ", "@a=b", "@a=b ", ":source", ":source  ", ":src :trailing only"):
        assert parse_line(line) is None, line


def test_more_than_fifteen_params_join_into_the_last() -> None:
    msg = parse_line("CMD " + " ".join(str(i) for i in range(20)))
    assert msg is not None and len(msg.params) == 15 and msg.params[-1] == "14 15 16 17 18 19"


def test_tag_escapes_both_ways() -> None:
    assert unescape_tag("a\\:b\\sc\\\\d\\re\\nf") == "a;b c\\d\re\nf"
    assert unescape_tag("\\b") == "b" and unescape_tag("end\\") == "end"
    assert escape_tag("a;b c\\d\re\nf") == "a\\:b\\sc\\\\d\\re\\nf"
    assert parse_tags("a=1;;=x;a=2;b") == {"a": "2", "b": ""}
    assert format_tags({"msgid": "7", "x": ""}) == "@msgid=7;x "
    assert format_tags({}) == ""


@settings(deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=50))
def test_tag_values_round_trip(value: str) -> None:
    assert unescape_tag(escape_tag(value)) == value


def test_encode_adds_a_colon_only_when_needed() -> None:
    assert encode(Message("PRIVMSG", ["#c", "hi"], source="a!b@c")) == b":a!b@c PRIVMSG #c hi\r\n"
    assert encode(Message("PRIVMSG", ["#c", "hi there"])) == b"PRIVMSG #c :hi there\r\n"
    assert encode(Message("PRIVMSG", ["#c", ""])) == b"PRIVMSG #c :\r\n"
    assert encode(Message("PRIVMSG", ["#c", ":)"])) == b"PRIVMSG #c ::)\r\n"
    assert encode(Message("001", ["nick", "Welcome"], source="srv", tags={"time": "t"})) == b"@time=t :srv 001 nick Welcome\r\n"
    assert encode(Message("NOTICE", ["n", "a\r\nQUIT\0"])) == b"NOTICE n aQUIT\r\n"  # no line injection


def test_encode_never_passes_512_bytes_without_tags() -> None:
    data = encode(Message("PRIVMSG", ["#c", "\u00e9" * 600], source="n!u@h", tags={"x": "y" * 100}))
    body = data.split(b" ", 1)[1]
    assert len(body) <= MAX_LINE and body.endswith(b"\r\n")
    body.decode()  # never cut inside a character


@settings(deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\0\r\n ", blacklist_categories=("Cs",)),
                        min_size=1, max_size=8), min_size=1, max_size=5),
       st.text(alphabet=st.characters(blacklist_characters="\0\r\n", blacklist_categories=("Cs",)), max_size=40))
def test_encode_then_parse_round_trips(middle: list[str], trailing: str) -> None:
    middle = [m if not m.startswith(":") else "x" + m for m in middle]
    msg = Message("CMD", [*middle, trailing], source="s", tags={"k": trailing})
    assert parse_line(encode(msg)[:-2].decode()) == msg


def test_parser_splits_lines_on_crlf_and_lf_any_way_they_arrive() -> None:
    stream = b"NICK a\r\nUSER u 0 * :R N\nPING x\r\n\r\n"
    expected = [Message("NICK", ["a"]), Message("USER", ["u", "0", "*", "R N"]), Message("PING", ["x"])]
    assert IrcParser().feed(stream) == expected
    parser = IrcParser()
    got = [e for byte in stream for e in parser.feed(bytes([byte]))]
    assert got == expected and not parser.partial


def test_parser_line_limit_is_512_with_crlf() -> None:
    parser = IrcParser()
    fits = b"PRIVMSG #c :" + b"a" * (MAX_LINE - 14) + b"\r\n"
    assert len(fits) == MAX_LINE
    assert parser.feed(fits) == [Message("PRIVMSG", ["#c", "a" * (MAX_LINE - 14)])]
    over = b"PRIVMSG #c :" + b"a" * (MAX_LINE - 13) + b"\r\n"
    assert parser.feed(over) == [TooLong("line", MAX_LINE + 1)]
    # a bare LF counts like CR LF
    assert parser.feed(fits[:-2] + b"\n") == [Message("PRIVMSG", ["#c", "a" * (MAX_LINE - 14)])]
    assert parser.feed(b"PING x\r\n") == [Message("PING", ["x"])]  # back in sync


def test_parser_discards_an_endless_line_without_holding_it() -> None:
    parser = IrcParser()
    for _ in range(100):
        assert parser.feed(b"a" * 1000) == []
        assert parser.buffered <= MAX_CLIENT_TAGS + MAX_LINE
    assert parser.feed(b"\r\nPING y\r\n") == [TooLong("line", 100_002), Message("PING", ["y"])]


def test_parser_tags_have_their_own_limit() -> None:
    parser = IrcParser()
    ok = b"@foo=bar;+baz=" + b"a" * 4081 + b" TAGMSG #test\r\n"
    assert ok.index(b"TAGMSG") == 4096
    [msg] = parser.feed(ok)
    assert isinstance(msg, Message) and msg.tags["+baz"] == "a" * 4081
    excess = b"@foo=bar;+baz=" + b"a" * 4082 + b" TAGMSG #test\r\n"
    [event] = parser.feed(excess)
    assert isinstance(event, TooLong) and event.kind == "tags"
    full = b"@foo=bar;+baz=" + b"a" * 4081 + b" PRIVMSG #test " + b"b" * 496 + b"\r\n"
    assert len(full) == 4096 + 512
    [msg] = parser.feed(full)
    assert isinstance(msg, Message) and msg.params == ["#test", "b" * 496]
    [event] = parser.feed(full[:-2] + b"b\r\n")
    assert event == TooLong("line", len(full) + 1)


def test_parser_replaces_invalid_utf8_and_drops_nul() -> None:
    [msg] = IrcParser().feed(b"PRIVMSG #c :caf\xe9\x00!\r\n")
    assert isinstance(msg, Message) and msg.params[1] == "caf\ufffd!"


def test_case_mappings() -> None:
    assert casefold("Alice[]\\~") == "alice[]\\~"
    assert casefold("Alice[]\\~", "rfc1459") == "alice{}|^"
    assert casefold("\u00c9T\u00c9") == "\u00c9t\u00c9"  # neither mapping folds beyond ASCII


def test_split_text_fits_each_piece_and_loses_nothing() -> None:
    text = "word " * 300 + "\u00e9" * 300
    pieces = split_text(text, 400)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= 400 for p in pieces)
    assert pieces[0].endswith(" ")  # cut at a space when one is near
    assert split_text("", 10) == [""] and split_text("short", 10) == ["short"]


@settings(deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=600))
def test_parser_never_raises_and_any_split_gives_the_same_events(data: bytes, cut: int) -> None:
    whole = IrcParser().feed(data)
    parser = IrcParser()
    parts = parser.feed(data[:cut]) + parser.feed(data[cut:])
    assert parts == whole
