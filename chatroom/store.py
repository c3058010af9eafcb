"""Kept for plugins written before chatroom 0.2: the SQLite helpers now live in
:mod:`chatroom.model.store`; import them from :mod:`chatroom` (``from chatroom import migrate``)."""

import warnings

warnings.warn("chatroom.store is deprecated since plugin API 1.0 and will go in 2.0: from chatroom import migrate, transaction, MigrationError",
              DeprecationWarning, stacklevel=2)


from chatroom.model.store import *  # noqa: F403
from chatroom.model.store import __all__  # noqa: F401
