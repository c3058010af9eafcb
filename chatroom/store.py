"""Kept for plugins written before chatroom 0.2: the SQLite helpers now live in
:mod:`chatroom.model.store`; import them from :mod:`chatroom` (``from chatroom import migrate``)."""

from chatroom.model.store import *  # noqa: F403
from chatroom.model.store import __all__  # noqa: F401
