"""Events of the room model that are not stored: joins, parts, renames, kicks, modes, quits, private lines.

Every wire renders a :class:`Notice` its own way (the line protocol as a ``* ...`` notice, the browser's JSON
and IRC structurally: :mod:`chatroom.wire.render`, :mod:`chatroom.wire.jsonwire`, :mod:`chatroom.wire.irc`).
The hub (:mod:`chatroom.model.hub`) makes them and re-exports the name.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Notice"]


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
