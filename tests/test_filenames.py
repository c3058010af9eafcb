"""Untrusted file names become safe base names; received files never overwrite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom.wire.filenames import (
    FALLBACK,
    MAX_NAME_BYTES,
    safe_name,
    split_ext,
    unique_path,
)
from chatroom.wire.textsafety import INVISIBLE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("my file.txt", "my file.txt"),
        ("../../x", "x"),
        ("/etc/x", "x"),
        ("/etc/passwd/", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("C:\\boot.ini", "boot.ini"),
        ("a\x00b", "a_b"),
        ("a\nb\rc\x1b[31m", "a_b_c_[31m"),
        ("..", FALLBACK),
        (".", FALLBACK),
        ("", FALLBACK),
        ("/", FALLBACK),
        ("   ", FALLBACK),
        (".bashrc", "bashrc"),
        ("...hidden", "hidden"),
        ("trailing. . .", "trailing"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("com1", "_com1"),
        ("LPT9.log", "_LPT9.log"),
        ("console.txt", "console.txt"),
        ('what?<is>:"this"|*', "what__is___this___"),
        ("caf\u0065\u0301.txt", "caf\u00e9.txt"),
        # invisible characters (issue 8, item 14: Trojan Source, CVE-2021-42574)
        ("evil\u202etxt.exe", "eviltxt.exe"),  # would read "evilexe.txt"
        ("\u2066report\u2069.pdf", "report.pdf"),
        ("a\u200eb\u200fc\u061cd\u202ae\u202bf\u202cg\u202dh", "abcdefgh"),
        ("pay\u200b\u200c\u200droll\u2060\ufeff\u180e.xlsx", "payroll.xlsx"),
        ("line\u2028break\u2029.txt", "line break .txt"),
        ("\u2028\u2029", FALLBACK),
        ("\u200b.bashrc", "bashrc"),  # no hidden file behind a zero-width space
        ("\u200bCON", "_CON"),  # nor a device name
        ("e\u034f\u0301.txt", "\u00e9.txt"),  # stripped before NFC: still idempotent
        ("flag\U000e0041\U000e0042.png", "flag.png"),
        ("a\udcffb\ud800.txt", "a_b_.txt"),  # undecodable bytes from os.listdir (surrogateescape)
    ],
)
def test_safe_name(raw: str, expected: str) -> None:
    assert safe_name(raw) == expected


def test_long_name_is_capped_and_keeps_extension() -> None:
    name = safe_name("é" * 500 + ".tar")
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert name.endswith(".tar")
    assert name.startswith("é")


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=400))
def test_any_text_gives_a_harmless_base_name(raw: str) -> None:
    name = safe_name(raw)
    assert name and name not in (".", "..")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in name)
    assert not name.startswith(".") and not name.endswith((".", " "))
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert safe_name(name) == name
    root = Path("/srv/received")
    assert os.path.dirname(os.path.normpath(root / name)) == str(root)


INVISIBLE_CHARS = [chr(cp) for first, last, _ in INVISIBLE for cp in range(first, last + 1)] + ["\u2028", "\u2029"]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.one_of(st.sampled_from(INVISIBLE_CHARS), st.characters()), max_size=100))
def test_no_invisible_character_survives(raw: str) -> None:
    name = safe_name(raw)
    assert not set(name) & set(INVISIBLE_CHARS)
    assert safe_name(name) == name


def test_split_ext() -> None:
    assert split_ext("report.pdf") == ("report", ".pdf")
    assert split_ext("archive.tar.gz") == ("archive.tar", ".gz")
    assert split_ext("README") == ("README", "")


def test_unique_path_never_reuses_a_name(tmp_path: Path) -> None:
    assert unique_path(tmp_path, "a.txt") == tmp_path / "a.txt"
    (tmp_path / "a.txt").write_text("1")
    assert unique_path(tmp_path, "a.txt") == tmp_path / "a (1).txt"
    (tmp_path / "a (1).txt").write_text("2")
    assert unique_path(tmp_path, "a.txt") == tmp_path / "a (2).txt"
    (tmp_path / "noext").write_text("3")
    assert unique_path(tmp_path, "noext") == tmp_path / "noext (1)"


def test_unique_path_counts_a_dangling_symlink_as_taken(tmp_path: Path) -> None:
    (tmp_path / "a.txt").symlink_to(tmp_path / "missing")
    assert unique_path(tmp_path, "a.txt") == tmp_path / "a (1).txt"
