"""Nick rules: which names a client may take.

A nick is 1 to :data:`MAX_NICK` characters: ASCII letters, digits, ``_``,
``-`` and ``.``, starting with a letter or ``_``. Nicks are compared
case-insensitively (``Alice`` and ``alice`` are the same person). The
``guestN`` form is reserved for unnamed connections, and a few words that
would read like server replies are reserved too.
"""

from __future__ import annotations

import re

MAX_NICK = 32
_NICK = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,%d}" % (MAX_NICK - 1))
_GUEST = re.compile(r"guest\d+", re.IGNORECASE)
RESERVED = frozenset({"server", "ok", "error", "chatroom", "you"})


def nick_key(nick: str) -> str:
    """The case-insensitive key a nick is unique under."""
    return nick.casefold()


def check_nick(nick: str) -> str | None:
    """Return None if *nick* is a valid chosen nick, else the reason (``str``) it is not."""
    if not nick:
        return "a nick cannot be empty"
    if len(nick) > MAX_NICK:
        return f"a nick is at most {MAX_NICK} characters"
    if _NICK.fullmatch(nick) is None:
        return "a nick uses letters, digits, _ - . and starts with a letter or _"
    if nick_key(nick) in RESERVED or _GUEST.fullmatch(nick):
        return f"the nick {nick} is reserved"
    return None
