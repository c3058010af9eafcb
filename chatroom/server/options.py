"""Value types for ``chatroom-server``'s options: sizes, ports, numbers, room names, retention.

Each is an argparse ``type=``: it returns the parsed value or raises
``argparse.ArgumentTypeError`` with a message that names the bad value.
"""

from __future__ import annotations

import argparse
import math
import re

from chatroom.model.names import room_key

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"1GiB"``, ``"500M"``, ``"65536"`` -> bytes (``int``); k/M/G/T are powers of 1024.

    Raises argparse.ArgumentTypeError for anything else.
    """
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 65536, 500M, 1GiB)")
    number, unit, _ = match.groups()
    return int(float(number) * 1024 ** " kmgt".index(unit.lower() or " "))


def parse_port(text: str) -> int:
    """``"5000"`` -> 5000: a TCP port, 0-65535 (0: the kernel picks one). Raises argparse.ArgumentTypeError."""
    if not re.fullmatch(r"[0-9]{1,5}", text.strip()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: an integer 0-65535 (0 lets the kernel pick)")
    return int(text)


def _number(kind: type, text: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more: {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """``"2.5"`` -> 2.5; refuses negative, NaN and infinite values (argparse.ArgumentTypeError)."""
    return float(_number(float, text))


def positive_float(text: str) -> float:
    """Like :func:`non_negative_float`, but 0 is refused too."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """``"64"`` -> 64; refuses negative numbers and non-integers (argparse.ArgumentTypeError)."""
    return int(_number(int, text))


def room_count(text: str) -> int:
    """``"1000"`` -> 1000: a number of rooms, 1 to 1,000,000; raises argparse.ArgumentTypeError otherwise."""
    value = non_negative_int(text)
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"from 1 to 1000000 rooms: {text!r}")
    return value


def history_lines(text: str) -> int:
    """``"20"`` -> 20: a number of history lines, 0 to 500; raises argparse.ArgumentTypeError otherwise."""
    value = non_negative_int(text)
    if value > 500:
        raise argparse.ArgumentTypeError(f"at most 500 lines: {text!r}")
    return value


def room_name(text: str) -> str:
    """``lobby`` or ``#Lobby`` -> ``#lobby``; raises argparse.ArgumentTypeError for a bad room name."""
    key = room_key(text)
    if key is None:
        raise argparse.ArgumentTypeError(f"not a room name: {text!r} (# and 1-32 of a-z 0-9 _ -)")
    return key


def history_keep(text: str) -> tuple[int | None, float | None]:
    """``"100000"`` -> (100000, None); ``"30d"`` -> (None, 30.0); ``"100000,30d"`` -> both.

    Raises argparse.ArgumentTypeError for anything else.
    """
    lines: int | None = None
    days: float | None = None
    for part in text.replace(" ", "").split(","):
        try:
            if part.endswith("d"):
                days = float(part[:-1])
                if not days > 0:
                    raise ValueError
            else:
                lines = int(part)
                if lines < 1:
                    raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a retention: {text!r} (LINES, DAYSd or LINES,DAYSd)") from None
    return lines, days


# -- the web listener (chatroom.net.web) --------------------------------------------------------------
def web_port(text: str) -> int | None:
    """``--web-port``: ``"8080"`` -> 8080, ``"0"`` -> 0 (the kernel picks), ``"off"`` -> None (no web listener).

    Raises argparse.ArgumentTypeError for anything else.
    """
    if text.strip().lower() in ("off", "no", "none"):
        return None
    return parse_port(text)
