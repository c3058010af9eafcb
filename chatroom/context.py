"""Kept for plugins written before chatroom 0.2: ``Context`` now lives in :mod:`chatroom.plugins.context`;
import it from :mod:`chatroom` (``from chatroom import Context``)."""

import warnings

warnings.warn("chatroom.context is deprecated since plugin API 1.0 and will go in 2.0: from chatroom import Context",
              DeprecationWarning, stacklevel=2)


from chatroom.plugins.context import Context, LineHandler

__all__ = ["Context", "LineHandler"]
