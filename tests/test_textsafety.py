"""Display safety: invisible characters are stripped, look-alike nicks share a skeleton."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatroom.wire.textsafety import INVISIBLE, LINE_BREAKS, nick_skeleton, skeleton, strip_invisible

INVISIBLE_CHARS = [chr(cp) for first, last, _ in INVISIBLE for cp in range(first, last + 1)]
REQUIRED = (
    [chr(cp) for cp in range(0x202A, 0x202F)]  # LRE RLE PDF LRO RLO
    + [chr(cp) for cp in range(0x2066, 0x206A)]  # LRI RLI FSI PDI
    + ["\u200e", "\u200f", "\u061c", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u180e"]
)


def test_the_required_characters_are_all_stripped() -> None:
    for char in REQUIRED:
        assert char in INVISIBLE_CHARS, f"U+{ord(char):04X}"
        assert strip_invisible(f"a{char}b") == "ab", f"U+{ord(char):04X}"


@pytest.mark.parametrize("char", INVISIBLE_CHARS, ids=lambda c: f"U+{ord(c):04X}")
def test_every_listed_character_is_stripped(char: str) -> None:
    assert strip_invisible(char * 3 + "x" + char) == "x"


def test_line_and_paragraph_separators_become_spaces() -> None:
    assert [chr(cp) for cp in LINE_BREAKS] == ["\u2028", "\u2029"]
    assert strip_invisible("hi\u2028bob: forged line\u2029end") == "hi bob: forged line end"


def test_trojan_source_examples() -> None:
    # CVE-2021-42574: an override makes the name read "evilexe.txt" on screen
    assert strip_invisible("evil\u202etxt.exe") == "eviltxt.exe"
    assert strip_invisible("if access_level != \"user\u202e \u2066// Check if admin\u2069 \u2066\":") == (
        'if access_level != "user // Check if admin ":'
    )
    assert strip_invisible("pay\u200bpal \U000e0069\U000e0067\U000e006e\U000e006f\U000e0072\U000e0065") == "paypal "


def test_plain_ascii_is_returned_as_is() -> None:
    line = "hello " * 10_000
    assert strip_invisible(line) is line
    text = "café ünïcode 日本語 مرحبا"
    assert strip_invisible(text) is text  # nothing found: no copy


def test_visible_text_and_variation_selectors_are_kept() -> None:
    for text in ("café", "e\u0301", "日本語", "مرحبا", "שלום", "\u2764\ufe0f", "\u845b\U000e0100", "a\u00a0b", "\t"):
        assert strip_invisible(text) == text


@given(st.text(max_size=200))
def test_idempotent_never_longer_and_nothing_invisible_left(text: str) -> None:
    out = strip_invisible(text)
    assert strip_invisible(out) == out
    assert len(out) <= len(text)
    assert not set(out) & set(INVISIBLE_CHARS) and "\u2028" not in out and "\u2029" not in out


@given(st.text(alphabet=st.sampled_from(INVISIBLE_CHARS + ["\u2028", "a", "é", " "]), max_size=100))
def test_only_the_listed_characters_go(text: str) -> None:
    assert strip_invisible(text) == "".join(
        " " if c == "\u2028" else c for c in text if c not in INVISIBLE_CHARS
    )


# -- skeletons ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("aIice", "alice"),  # capital i
        ("AIice", "alice"),
        ("a1ice", "alice"),
        ("rnallory", "mallory"),
        ("Mallory", "rnallory"),
        ("b0b", "bob"),
        ("B0B", "bob"),
        ("BOB", "bob"),
        ("0", "O"),
        ("0", "o"),
        ("1", "l"),
        ("I", "l"),
        ("L", "l"),
        ("rn", "m"),
        ("c1aire", "claire"),
    ],
)
def test_look_alikes_share_a_skeleton(a: str, b: str) -> None:
    assert nick_skeleton(a) == nick_skeleton(b)


@pytest.mark.parametrize(("a", "b"), [("alice", "bob"), ("aiice", "alice"), ("r_n", "m"), ("rm", "mm"), ("a.b", "a-b")])
def test_different_nicks_have_different_skeletons(a: str, b: str) -> None:
    assert nick_skeleton(a) != nick_skeleton(b)


def test_skeleton_is_uts39_on_ascii() -> None:
    assert skeleton("I") == "l" and skeleton("i") == "i"  # case-sensitive, as the standard
    assert skeleton("m0") == "rnO"
    assert skeleton("e\u0301") == unicodedata.normalize("NFD", "é") == skeleton("é")


NICK_CHARS = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@given(st.text(alphabet=NICK_CHARS, min_size=1, max_size=32))
def test_nick_skeleton_is_idempotent_lowercase_and_case_consistent(nick: str) -> None:
    key = nick_skeleton(nick)
    assert nick_skeleton(key) == key
    assert key == key.casefold()
    assert not set(key) & set("01Im")
    if "i" not in nick.lower():  # only I/i look different from each other's case
        assert nick_skeleton(nick.swapcase()) == key
