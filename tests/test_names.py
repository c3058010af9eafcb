"""Nick rules: validity, reserved words, case-insensitive keys and look-alike skeleton keys."""

from __future__ import annotations

import pytest

from chatroom.model.names import MAX_NICK, check_nick, nick_key, nick_skeleton_key, too_alike


@pytest.mark.parametrize("nick", ["alice", "Bob", "_x", "a.b-c_d", "x" * MAX_NICK, "guest", "guestbook", "oks", "you2", "_0K", "b0b"])
def test_valid_nicks(nick: str) -> None:
    assert check_nick(nick) is None


@pytest.mark.parametrize(
    ("nick", "reason"),
    [
        ("", "a nick cannot be empty"),
        ("x" * (MAX_NICK + 1), f"a nick is at most {MAX_NICK} characters"),
        ("1abc", "a nick uses letters, digits, _ - . and starts with a letter or _"),
        ("al ice", "a nick uses letters, digits, _ - . and starts with a letter or _"),
        ("alice\u202e", "a nick uses letters, digits, _ - . and starts with a letter or _"),
        ("аlice", "a nick uses letters, digits, _ - . and starts with a letter or _"),  # Cyrillic а
        ("OK", "the nick OK is reserved"),
        ("Server", "the nick Server is reserved"),
        ("guest12", "the nick guest12 is reserved"),
        ("GUEST7", "the nick GUEST7 is reserved"),
        ("Y0U", "the nick Y0U is too much like you, which is reserved"),
        ("chatr0orn", "the nick chatr0orn is too much like chatroom, which is reserved"),
        ("guestI2", "the nick guestI2 is too much like a guest's, which is reserved"),
        ("guestlO", "the nick guestlO is too much like a guest's, which is reserved"),
    ],
)
def test_refused_nicks(nick: str, reason: str) -> None:
    assert check_nick(nick) == reason


def test_keys() -> None:
    assert nick_key("Alice") == nick_key("ALICE") == "alice"
    assert nick_skeleton_key("aIice") == nick_skeleton_key("AIice") == nick_skeleton_key("alice") == "alice"
    assert nick_skeleton_key("rnallory") == nick_skeleton_key("Mallory") == nick_skeleton_key("mallory")
    assert nick_skeleton_key("b0b") == nick_skeleton_key("bob")
    assert nick_skeleton_key("bi11") == nick_skeleton_key("bill")
    assert nick_skeleton_key("alice") != nick_skeleton_key("aiice")
    # guests' nicks never collide with each other (0 -> o and 1 -> l is one-to-one on digits)
    keys = {nick_skeleton_key(f"guest{n}") for n in range(10_000)}
    assert len(keys) == 10_000


def test_too_alike_message() -> None:
    assert too_alike("aIice", "alice") == "the nick aIice is too much like alice, who is here"
