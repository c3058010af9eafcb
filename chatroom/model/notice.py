"""Events the room model tells but does not store: joins, parts, renames, private lines, modes, quits.

:class:`Notice` has the fields of :class:`~chatroom.model.history.Entry` and a few of its own; the hub
(:mod:`chatroom.model.hub`, which re-exports it) fans notices out like room lines, and each wire renders them
(``chatroom.wire.render``, ``chatroom.wire.jsonwire``, the IRC door).
"""

from __future__ import annotations

from typing import NamedTuple, TypeAlias

from chatroom.model.history import Entry

__all__ = ["Event", "Notice"]


class Notice(NamedTuple):
    """An event that is not stored: the fields of :class:`~chatroom.model.history.Entry` (``id`` 0) plus two.

    ``kind`` is ``"notice"``, ``"raw"``, ``"join"`` / ``"part"`` (``nick``
    joined or left ``room``; ``extra`` the reason of a part), ``"nick"``
    (``room`` ``""``; ``nick`` the new nick, ``extra`` the old one) or
    ``"private"`` (``/msg`` to ``extra``), ``"mode"`` (``by`` set ``extra``: ``+o bob``), once per co-member
    ``"quit"``/``"away"`` (``extra``: reason, message). ``text``: the human notice. ``quiet``: past the announce
    limit (structured wires only). ``by``: a kick's or mode's author; ``cause``: ``"kick"``, ``"quit"``, ``"notice"``.
    """

    room: str
    id: int
    ts: float
    kind: str
    nick: str
    account: str | None
    text: str
    extra: str = ""
    quiet: bool = False
    by: str = ""
    cause: str = ""


#: What the hub fans out and each wire's encoder renders: a stored line or a notice (``kind`` tells them apart for
#: the wires; :func:`isinstance` for the type checker).
Event: TypeAlias = "Entry | Notice"
