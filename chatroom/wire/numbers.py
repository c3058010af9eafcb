"""Parsing numbers from untrusted text (the wire, command arguments).

``str.isdigit()`` followed by ``int()`` is not a safe parser: ``"²".isdigit()``
is true but ``int("²")`` raises, ``int("٣")`` (an Arabic-Indic digit) is 3,
``int(" 1")``, ``int("+1")`` and ``int("1_000")`` succeed, and ``int()``
refuses strings over 4,300 digits (``sys.set_int_max_str_digits``). Every
number the server reads from a peer goes through :func:`parse_uint`
instead: ASCII digits only, bounded in length before any conversion, and
bounded in value.
"""

from __future__ import annotations

__all__ = ["parse_uint"]


def parse_uint(text: str, *, max_digits: int = 10, minimum: int = 0, maximum: int | None = None) -> int | None:
    """The unsigned integer that *text* spells, or ``None`` if it is not one.

    *text* must be 1 to *max_digits* ASCII digits ``[0-9]`` and nothing else:
    no sign, space, underscore, newline or non-ASCII digit (``"²"``, ``"٣"``).
    Leading zeros are allowed (``"007"`` is 7). The value must lie in
    ``[minimum, maximum]`` (``maximum=None``: only the digit count bounds it,
    so the default allows up to 9,999,999,999).

    Never raises (for a ``str``): a refusal is ``None``, and callers answer it
    with their usage error. The length is checked before conversion, so a
    5,000-digit string costs one ``len()``.
    """
    if not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None  # for ASCII strings, isdigit() is exactly [0-9]+
    value = int(text)
    if value < minimum or (maximum is not None and value > maximum):
        return None
    return value
