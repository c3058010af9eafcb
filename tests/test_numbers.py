"""Numbers from untrusted text: ASCII digits only, bounded in length and value."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatroom.wire.numbers import parse_uint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1", 1),
        ("007", 7),
        ("4294967295", 4294967295),
        ("9999999999", 9999999999),  # 10 digits: the default limit
        ("", None),
        ("²", None),  # "²".isdigit() is True, int("²") raises
        ("1²", None),
        ("٣", None),  # Arabic-Indic three: int() would accept it
        ("１", None),  # fullwidth one
        ("+1", None),
        ("-1", None),
        (" 1", None),
        ("1 ", None),
        ("1\n", None),
        ("1_000", None),
        ("0x10", None),
        ("1e3", None),
        ("1.0", None),
        ("10000000000", None),  # 11 digits
        ("5" * 5000, None),  # int() would refuse it (> 4,300 digits)
        ("٣" * 5000, None),
    ],
)
def test_parse_uint(text: str, expected: int | None) -> None:
    assert parse_uint(text) == expected


def test_bounds() -> None:
    assert parse_uint("12", max_digits=2) == 12
    assert parse_uint("123", max_digits=2) is None
    assert parse_uint("1000000", maximum=1_000_000) == 1_000_000
    assert parse_uint("1000001", maximum=1_000_000) is None
    assert parse_uint("0", minimum=1) is None
    assert parse_uint("1", minimum=1) == 1
    assert parse_uint("99999999999999999999", max_digits=20, maximum=10**9) is None


def test_long_input_is_refused_cheaply() -> None:
    assert parse_uint("9" * 1_000_000) is None  # no int() of a huge string


@given(st.text(max_size=30))
def test_never_raises_and_agrees_with_the_ascii_grammar(text: str) -> None:
    value = parse_uint(text, max_digits=12)
    ascii_digits = 0 < len(text) <= 12 and all("0" <= c <= "9" for c in text)
    assert (value is not None) == ascii_digits
    if value is not None:
        assert value == int(text)


@given(st.integers(min_value=0, max_value=10**12))
def test_round_trip(n: int) -> None:
    assert parse_uint(str(n), max_digits=13) == n


# -- every number a built-in reads from a user goes through parse_uint ------------------


def test_the_builtins_answer_bad_numbers_with_usage_errors_never_a_fault(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    """Issue 8, item 2: each of these, sent five times, once disabled a built-in for everyone."""
    room = chatroom_room()  # the built-ins: core, board, tweet, sendfile
    alice, bob = room.join("alice", binary=True), room.join("bob", binary=True)
    attacks = ["/read ²", "/read 99999999999999999999", "/tweets ²", "/tweet -l ²", "/sendfile x ²",
               "/sendfile x " + "5" * 5000, "/sendfile x -1", "/sendfile x 1e3", "/sendfile x ٣"]
    bob.clear()
    for _ in range(6):  # more than the plugin host's fault limit
        for line in attacks:
            reply = alice.say(line)
            assert len(reply) == 1 and reply[0].startswith("ERROR usage: "), (line, reply)
    assert room.faults == []
    assert bob.received == []  # nothing reached the room
    # every built-in still works, for the attacker too
    assert alice.say("/post still here") == ["OK"]
    assert alice.say("/read 1") == ["still here", "#"]
    assert alice.say("/tweets 1") == ["OK 0 tweets"]
    assert alice.say(f"/sendfile x {'0' * 18}7") == ["OK sendfile 1 x"]


def test_sendfile_names_lose_invisible_characters(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice, _bob = room.join("alice", binary=True), room.join("bob", binary=True)
    assert alice.say('/sendfile "evil\u202etxt.exe" 5') == ["OK sendfile 1 eviltxt.exe"]
