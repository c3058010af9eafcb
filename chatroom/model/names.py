"""Name rules: which nicks a member may take, and what a room may be called (:func:`room_key`).

A nick is 1 to :data:`MAX_NICK` characters: ASCII letters, digits, ``_``,
``-`` and ``.``, starting with a letter or ``_``. Nicks are compared
case-insensitively (``Alice`` and ``alice`` are the same person). The
``guestN`` form is reserved for unnamed connections, and a few words that
would read like server replies are reserved too, as is anything that looks
like them (``0K``, ``guestI2``).

Look-alikes: two nicks whose :func:`nick_skeleton_key` is equal look alike
(``aIice`` with a capital i and ``alice``; ``rnallory`` and ``mallory``;
``b0b`` and ``bob``). The server keeps, beside its ``nick_key -> client``
table, a ``nick_skeleton_key -> client`` table of everyone connected (guests
included), and refuses a nick whose skeleton key belongs to another
connected client, with ``ERROR`` + :func:`too_alike` (``ERROR the nick aIice
is too much like alice, who is here``). Renaming oneself to a look-alike of
one's own nick is allowed.
"""

from __future__ import annotations

import re

from chatroom.wire.textsafety import nick_skeleton

__all__ = ["MAX_NICK", "RESERVED", "check_nick", "nick_key", "nick_skeleton_key", "room_key", "too_alike"]

MAX_NICK = 32
_NICK = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,%d}" % (MAX_NICK - 1))
_GUEST = re.compile(r"guest\d+", re.IGNORECASE)
RESERVED = frozenset({"server", "ok", "error", "chatroom", "you"})
_RESERVED_SKELETONS = {nick_skeleton(word): word for word in RESERVED}
# The skeleton key of guestN: digits 0 and 1 become o and l, the others stay.
_GUEST_SKELETON = re.compile(r"guest[lo2-9]+")


def nick_key(nick: str) -> str:
    """The case-insensitive key a nick is unique under."""
    return nick.casefold()


def nick_skeleton_key(nick: str) -> str:
    """The key under which look-alike nicks collide (``str``): the case-folded UTS #39 skeleton.

    See :func:`chatroom.wire.textsafety.nick_skeleton`. ``"aIice"``, ``"AIice"``
    and ``"alice"`` all give ``"alice"``. Nicks that differ only in case may
    give different keys (``"ALICE"`` gives ``"allce"``): check
    :func:`nick_key` as well.
    """
    return nick_skeleton(nick)


def too_alike(nick: str, other: str) -> str:
    """The refusal (without ``ERROR``) when *nick* looks like the connected member *other*."""
    return f"the nick {nick} is too much like {other}, who is here"


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
    skeleton = nick_skeleton_key(nick)
    if skeleton in _RESERVED_SKELETONS:
        return f"the nick {nick} is too much like {_RESERVED_SKELETONS[skeleton]}, which is reserved"
    if _GUEST_SKELETON.fullmatch(skeleton):
        return f"the nick {nick} is too much like a guest's, which is reserved"
    return None


_ROOM = re.compile(r"#?[a-z0-9_-]{1,32}")


def room_key(name: str) -> str | None:
    """The canonical name of a room: ``"lobby"``, ``"#Lobby"`` -> ``"#lobby"``; None if *name* is not one.

    A room name is ``#`` plus 1 to 32 of ``a-z 0-9 _ -`` (ASCII only),
    compared case-insensitively; the ``#`` may be left out when typing it.
    """
    lowered = name.strip().lower()
    if not lowered.isascii() or _ROOM.fullmatch(lowered) is None:
        return None
    return lowered if lowered.startswith("#") else "#" + lowered
